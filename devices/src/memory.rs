//! Guest memory as devices see it (DMA, fw_cfg, descriptor rings).
//!
//! The same `vm-memory` type serves KVM (which registers its regions as memory slots) and tests (which make
//! small anonymous mappings with [`test_memory`]). Every device access goes through `vm-memory`'s checked
//! accessors, so a guest address outside RAM is an error to handle, never an out-of-bounds access.

pub use vm_memory::{
    Bytes, GuestAddress, GuestMemory as GuestMemoryTrait, GuestMemoryBackend, GuestMemoryRegion,
};

/// Guest RAM as mapped into this process.
pub type GuestMemory = vm_memory::GuestMemoryMmap<()>;

/// Anonymous guest memory of `size` bytes at guest address 0, for tests.
pub fn test_memory(size: usize) -> GuestMemory {
    GuestMemory::from_ranges(&[(GuestAddress(0), size)])
        .unwrap_or_else(|e| panic!("cannot map {size} bytes of test memory: {e}"))
}
