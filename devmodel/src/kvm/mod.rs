//! The KVM side of the machine: the VM with its in-kernel interrupt controllers and PIT, guest memory slots,
//! and the vCPUs with their run loops.
//!
//! Everything guest-visible that is not a CPU lives in the `devices` crate; this module only connects those
//! devices to KVM: I/O and MMIO exits are dispatched to the buses, and GSI levels go to `KVM_IRQ_LINE`.

mod boot;
mod control;
mod dirty;
mod vcpu;

pub use control::{install_kick_handler, RunState, VcpuControl};
pub use dirty::{KvmBarMapper, DIRTY_PAGE_SIZE};
pub use vcpu::{Vcpu, VcpuExitReason};

use std::sync::Arc;

use devices::irq::GsiSink;
use devices::memory::GuestMemoryRegion;
use devices::memory::{GuestMemory, GuestMemoryBackend};
use kvm_bindings::{
    kvm_irqchip, kvm_pit_config, kvm_pit_state2, kvm_userspace_memory_region, CpuId,
    KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_MAX_CPUID_ENTRIES,
    KVM_MEM_READONLY, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Cap, Kvm, VmFd};

use crate::cpuid::CpuidPolicy;

/// Where QEMU puts KVM's identity-map page (and SeaBIOS expects it reserved): 0xFEFFC000, then the 3-page TSS.
pub const IDENTITY_MAP_ADDR: u64 = 0xFEFF_C000;
/// The TSS KVM needs for real mode on Intel without unrestricted guest: 3 pages after the identity map.
pub const TSS_ADDR: u64 = 0xFEFF_D000;

/// Why KVM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KvmError {
    /// `/dev/kvm` could not be opened.
    #[error(
        "cannot open /dev/kvm ({0}); is the kvm module loaded and do you have access to /dev/kvm?"
    )]
    Open(#[source] kvm_ioctls::Error),
    /// An ioctl failed; the text names it.
    #[error("KVM {what} failed: {source}")]
    Ioctl {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    /// The host KVM lacks a capability the machine needs.
    #[error("this host's KVM lacks {0}, which an HVM guest needs")]
    MissingCapability(&'static str),
    /// Mapping memory for a ROM failed.
    #[error("cannot map {len} bytes for the ROM at {addr:#x}: {source}")]
    RomMap {
        addr: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
    /// More vCPUs than KVM supports.
    #[error("{asked} vCPUs asked for, this host's KVM supports at most {max}")]
    TooManyVcpus { asked: usize, max: usize },
}

fn ioctl(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> KvmError {
    move |source| KvmError::Ioctl { what, source }
}

/// A KVM VM with in-kernel PIC, IOAPIC, LAPICs and PIT, as a PC-compatible HVM guest needs.
pub struct KvmVm {
    kvm: Kvm,
    vm: Arc<VmFd>,
    next_slot: std::sync::atomic::AtomicU32,
    initial_chips: Vec<kvm_irqchip>,
    initial_pit: kvm_pit_state2,
    roms: std::sync::Mutex<Vec<RomMapping>>,
}

/// An anonymous mapping backing a read-only ROM slot; unmapped when dropped.
struct RomMapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; KVM reads it, nothing in this process aliases it
// mutably after it was filled.
unsafe impl Send for RomMapping {}

impl Drop for RomMapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and are unmapped exactly once, here. The VM that
        // uses the mapping is dropped with the same `KvmVm`, and `KvmVm` drops its VmFd first (field order).
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

impl KvmVm {
    /// Opens `/dev/kvm` and creates a VM with the in-kernel irqchip and PIT.
    pub fn new() -> Result<Self, KvmError> {
        let kvm = Kvm::new().map_err(KvmError::Open)?;
        for (cap, name) in [
            (Cap::Irqchip, "the in-kernel irqchip (KVM_CAP_IRQCHIP)"),
            (Cap::Pit2, "the in-kernel PIT (KVM_CAP_PIT2)"),
            (Cap::UserMemory, "user memory slots (KVM_CAP_USER_MEMORY)"),
            (
                Cap::ReadonlyMem,
                "read-only memory slots (KVM_CAP_READONLY_MEM)",
            ),
        ] {
            if !kvm.check_extension(cap) {
                return Err(KvmError::MissingCapability(name));
            }
        }
        let vm = kvm.create_vm().map_err(ioctl("KVM_CREATE_VM"))?;
        // Both must precede vCPU creation. They place KVM's private pages where QEMU does, so the e820 map
        // SeaBIOS sees reserves exactly them.
        vm.set_identity_map_address(IDENTITY_MAP_ADDR)
            .map_err(ioctl("KVM_SET_IDENTITY_MAP_ADDR"))?;
        vm.set_tss_address(TSS_ADDR as usize)
            .map_err(ioctl("KVM_SET_TSS_ADDR"))?;
        vm.create_irq_chip().map_err(ioctl("KVM_CREATE_IRQCHIP"))?;
        let pit_config = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        vm.create_pit2(pit_config)
            .map_err(ioctl("KVM_CREATE_PIT2"))?;
        // Keep the power-on state of the in-kernel chips: a platform reset puts them back to it, since KVM has no
        // reset ioctl for them.
        let mut initial_chips = Vec::new();
        for chip_id in [
            KVM_IRQCHIP_PIC_MASTER,
            KVM_IRQCHIP_PIC_SLAVE,
            KVM_IRQCHIP_IOAPIC,
        ] {
            let mut chip = kvm_irqchip {
                chip_id,
                ..Default::default()
            };
            vm.get_irqchip(&mut chip)
                .map_err(ioctl("KVM_GET_IRQCHIP"))?;
            initial_chips.push(chip);
        }
        let initial_pit = vm.get_pit2().map_err(ioctl("KVM_GET_PIT2"))?;
        Ok(KvmVm {
            kvm,
            vm: Arc::new(vm),
            next_slot: std::sync::atomic::AtomicU32::new(0),
            initial_chips,
            initial_pit,
            roms: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The most vCPUs this host's KVM supports in one VM.
    pub fn max_vcpus(&self) -> usize {
        self.kvm.get_max_vcpus()
    }

    fn slot(&self) -> u32 {
        self.next_slot
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Registers guest RAM as memory slots, leaving out the legacy VGA window 0xA0000–0xBFFFF: accesses there
    /// exit to the VGA device (its planar memory paths), as on a PC where the chipset routes that range to the
    /// graphics card.
    pub fn map_ram(&self, mem: &GuestMemory) -> Result<(), KvmError> {
        for region in mem.iter() {
            let host = mem
                .get_host_address(region.start_addr())
                .map_err(|_| KvmError::Ioctl {
                    what: "guest memory lookup",
                    source: kvm_ioctls::Error::new(libc::EINVAL),
                })?;
            // Transparent huge pages for guest RAM, as QEMU asks for: fewer page-table entries for KVM to build and
            // walk, which matters most where KVM has to emulate guest memory accesses. Only advice: a kernel
            // without THP just ignores it.
            // SAFETY: the range is exactly the region's own mapping; MADV_HUGEPAGE changes no contents.
            unsafe {
                libc::madvise(host.cast(), region.len() as usize, libc::MADV_HUGEPAGE);
            }
            for (start, len) in slot_ranges(region.start_addr().0, region.len()) {
                let slot = kvm_userspace_memory_region {
                    slot: self.slot(),
                    flags: 0,
                    guest_phys_addr: start,
                    memory_size: len,
                    userspace_addr: host as u64 + (start - region.start_addr().0),
                };
                // SAFETY: the range lies inside the region's host mapping, which is owned by `mem`; the machine
                // keeps it alive for as long as the VM runs (it drops vCPUs and the VM before memory).
                unsafe { self.vm.set_user_memory_region(slot) }
                    .map_err(ioctl("KVM_SET_USER_MEMORY_REGION"))?;
            }
        }
        Ok(())
    }

    /// Maps `bytes` read-only at guest address `addr` (the BIOS flash alias below 4 GiB). Guest writes there exit
    /// as MMIO writes and are dropped, as writes to a real flash without a write-enable are.
    pub fn map_rom(&self, addr: u64, bytes: &[u8]) -> Result<(), KvmError> {
        let page = 4096usize;
        let len = bytes.len().div_ceil(page) * page;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(KvmError::RomMap {
                addr,
                len,
                source: std::io::Error::last_os_error(),
            });
        }
        let mapping = RomMapping { ptr, len };
        // SAFETY: the mapping is `len >= bytes.len()` bytes long, freshly made and not aliased.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), bytes.len()) };
        let slot = kvm_userspace_memory_region {
            slot: self.slot(),
            flags: KVM_MEM_READONLY,
            guest_phys_addr: addr,
            memory_size: len as u64,
            userspace_addr: ptr as u64,
        };
        // SAFETY: the mapping lives in `self.roms` until the VM is dropped.
        unsafe { self.vm.set_user_memory_region(slot) }
            .map_err(ioctl("KVM_SET_USER_MEMORY_REGION (ROM)"))?;
        self.roms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(mapping);
        Ok(())
    }

    /// The GSI sink that raises and lowers lines on the in-kernel PIC and IOAPIC.
    pub fn gsi_sink(&self) -> Arc<dyn GsiSink> {
        Arc::new(KvmGsi(Arc::clone(&self.vm)))
    }

    /// Creates `count` vCPUs with CPUID from KVM's supported set, each with its own APIC id, and the config's
    /// `cpuid` policy applied on top.
    pub fn create_vcpus(&self, count: usize, policy: &CpuidPolicy) -> Result<Vec<Vcpu>, KvmError> {
        let max = self.max_vcpus();
        if count == 0 || count > max {
            return Err(KvmError::TooManyVcpus { asked: count, max });
        }
        let supported = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(ioctl("KVM_GET_SUPPORTED_CPUID"))?;
        (0..count)
            .map(|id| {
                let fd = self
                    .vm
                    .create_vcpu(id as u64)
                    .map_err(ioctl("KVM_CREATE_VCPU"))?;
                let cpuid = vcpu_cpuid(&supported, id as u32, count as u32, policy);
                fd.set_cpuid2(&cpuid).map_err(ioctl("KVM_SET_CPUID2"))?;
                Vcpu::new(fd, id)
            })
            .collect()
    }

    /// Puts the in-kernel PIC, IOAPIC and PIT back in their power-on state (platform reset).
    pub fn reset_irqchips(&self) -> Result<(), KvmError> {
        for chip in &self.initial_chips {
            self.vm
                .set_irqchip(chip)
                .map_err(ioctl("KVM_SET_IRQCHIP"))?;
        }
        self.vm
            .set_pit2(&self.initial_pit)
            .map_err(ioctl("KVM_SET_PIT2"))
    }
}

/// KVM's supported CPUID as plain leaves (for `devmodel check`); `None` without a usable `/dev/kvm`.
pub fn supported_cpuid() -> Option<Vec<crate::cpuid::Leaf>> {
    let kvm = Kvm::new().ok()?;
    let table = kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).ok()?;
    Some(
        table
            .as_slice()
            .iter()
            .map(|e| crate::cpuid::Leaf {
                function: e.function,
                index: e.index,
                regs: [e.eax, e.ebx, e.ecx, e.edx],
            })
            .collect(),
    )
}

/// Adjusts KVM's supported CPUID for one vCPU: its APIC id, the logical processor count, then the config's
/// policy (last, so that what the user hid stays hidden).
fn vcpu_cpuid(supported: &CpuId, apic_id: u32, count: u32, policy: &CpuidPolicy) -> CpuId {
    let mut cpuid = supported.clone();
    for entry in cpuid.as_mut_slice() {
        match entry.function {
            1 => {
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package (valid with HTT).
                entry.ebx = (entry.ebx & 0x0000_ffff) | (apic_id << 24) | (count.min(255) << 16);
                if count > 1 {
                    entry.edx |= 1 << 28; // HTT: the package holds more than one logical processor.
                }
            }
            0xb | 0x1f => {
                // x2APIC topology leaves report the vCPU's own id in EDX.
                entry.edx = apic_id;
            }
            _ => {}
        }
        let mut regs = [entry.eax, entry.ebx, entry.ecx, entry.edx];
        policy.apply(entry.function, entry.index, &mut regs);
        [entry.eax, entry.ebx, entry.ecx, entry.edx] = regs;
    }
    cpuid
}

struct KvmGsi(Arc<VmFd>);

impl GsiSink for KvmGsi {
    fn set_gsi(&self, gsi: u32, high: bool) {
        if let Err(e) = self.0.set_irq_line(gsi, high) {
            devices::rate_limited!(log::Level::Error, "KVM_IRQ_LINE {gsi}={high} failed: {e}");
        }
    }
}

/// Start of the legacy VGA memory window, which is never guest RAM.
const VGA_HOLE_START: u64 = 0xa_0000;
/// End (exclusive) of the legacy VGA memory window.
const VGA_HOLE_END: u64 = 0xc_0000;

/// The parts of the RAM range `start..start+len` outside the VGA window, as (address, length).
fn slot_ranges(start: u64, len: u64) -> Vec<(u64, u64)> {
    let end = start.saturating_add(len);
    if end <= VGA_HOLE_START || start >= VGA_HOLE_END {
        return vec![(start, len)];
    }
    let mut ranges = Vec::new();
    if start < VGA_HOLE_START {
        ranges.push((start, VGA_HOLE_START - start));
    }
    if end > VGA_HOLE_END {
        ranges.push((VGA_HOLE_END, end - VGA_HOLE_END));
    }
    ranges
}

#[cfg(test)]
mod vga_hole_tests {
    use super::*;

    #[test]
    fn ram_slots_leave_out_the_vga_window() {
        assert_eq!(
            slot_ranges(0, 128 << 20),
            vec![(0, 0xa_0000), (0xc_0000, (128 << 20) - 0xc_0000)]
        );
        assert_eq!(slot_ranges(1 << 32, 1 << 30), vec![(1 << 32, 1 << 30)]);
        assert_eq!(slot_ranges(0, 0x8_0000), vec![(0, 0x8_0000)]);
        assert_eq!(slot_ranges(0xb_0000, 0x1_0000), vec![]);
    }
}
