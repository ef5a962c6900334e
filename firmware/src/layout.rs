//! Guest-physical memory layout of the i440FX PC: where RAM goes around the PCI hole, the pages KVM needs for
//! itself, and where the BIOS image is mapped.
//!
//! # RAM split
//!
//! The top of the 32-bit space is reserved for devices: the 32-bit PCI window that SeaBIOS fills top-down from
//! 0xFEC00000, the IOAPIC, LAPIC and HPET, the KVM pages below and the BIOS flash alias at the very top. RAM
//! therefore stops at 0xE0000000 (3.5 GiB) below 4 GiB; whatever does not fit continues at 4 GiB. That is
//! QEMU's traditional `-M pc` split (its newer machine types move the split to 3 GiB when RAM exceeds 3.5 GiB,
//! only to keep 1 GiB host pages aligned). SeaBIOS then puts its PCI window above the RAM (`pcimem_start =
//! RamSize` when RAM is above 3 GiB), leaving 0xE0000000–0xFEC00000, close to 500 MiB, for BARs.
//!
//! # KVM pages
//!
//! On Intel hosts without "unrestricted guest", KVM runs real mode through a TSS (3 pages) and an identity page
//! table (1 page) that live in guest-physical space. QEMU puts them at 0xFEFFC000 (identity map) and
//! 0xFEFFD000 (TSS) and reserves the 16 KiB in the e820 map so no guest uses them; we do the same.
//!
//! # BIOS image
//!
//! The whole image is mapped read-only at `4 GiB - size`, where the CPU's reset vector (0xFFFFFFF0) finds its
//! last 16 bytes. Its last `min(size, 256 KiB)` bytes are also copied into ordinary RAM ending at 1 MiB, at
//! power-on and at every reset: SeaBIOS is linked at its sub-1 MiB addresses, and the 256 KiB build has code
//! from 0xD2720 on, which a 128 KiB ISA alias would not cover.

/// One MiB.
pub const MIB: u64 = 1 << 20;
/// 4 GiB, where RAM above the PCI hole starts.
pub const FOUR_GIB: u64 = 1 << 32;
/// The most RAM placed below 4 GiB (QEMU's traditional `-M pc` split).
pub const MAX_RAM_BELOW_4G: u64 = 0xE000_0000;
/// Smallest memory size accepted: SeaBIOS needs low RAM, the 1 MiB BIOS area and room for its high zone.
pub const MIN_MEMORY_MIB: u64 = 16;
/// Largest memory size accepted (1 TiB), far beyond any host this runs on, but keeps all arithmetic in range.
pub const MAX_MEMORY_MIB: u64 = 1 << 20;

/// Guest address KVM is told to use for its real-mode identity page table (`KVM_SET_IDENTITY_MAP_ADDR`).
pub const KVM_IDENTITY_MAP_ADDR: u64 = 0xFEFF_C000;
/// Guest address of KVM's real-mode TSS (`KVM_SET_TSS_ADDR`), one page after the identity map.
pub const KVM_TSS_ADDR: u64 = 0xFEFF_D000;
/// Pages the TSS takes.
pub const KVM_TSS_PAGES: u64 = 3;
/// Length of the range reserved in e820 for the identity map and the TSS (16 KiB from the identity map).
pub const KVM_RESERVED_LEN: u64 = 0x4000;

/// Most of the image copied below 1 MiB.
pub const BIOS_LOW_COPY_MAX: u64 = 256 * 1024;
/// End of the low copy: the image's last byte lands at 0xFFFFF.
pub const BIOS_LOW_END: u64 = 0x10_0000;

/// Why a memory size is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Below [`MIN_MEMORY_MIB`] or above [`MAX_MEMORY_MIB`].
    #[error("memory = {0} MiB is out of range ({MIN_MEMORY_MIB} to {MAX_MEMORY_MIB} MiB)")]
    MemoryOutOfRange(u64),
}

/// Where the guest's RAM lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLayout {
    /// Bytes of RAM from address 0 (at most [`MAX_RAM_BELOW_4G`]).
    pub below_4g: u64,
    /// Bytes of RAM from 4 GiB.
    pub above_4g: u64,
}

impl MemoryLayout {
    /// Splits `memory_mib` MiB of RAM around the PCI hole.
    pub fn new(memory_mib: u64) -> Result<Self, LayoutError> {
        if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&memory_mib) {
            return Err(LayoutError::MemoryOutOfRange(memory_mib));
        }
        let total = memory_mib * MIB;
        let below_4g = total.min(MAX_RAM_BELOW_4G);
        Ok(MemoryLayout {
            below_4g,
            above_4g: total - below_4g,
        })
    }

    /// All RAM in bytes.
    pub fn total(&self) -> u64 {
        self.below_4g + self.above_4g
    }

    /// The RAM ranges as (guest address, length), for KVM memory slots.
    pub fn ram_ranges(&self) -> Vec<(u64, u64)> {
        let mut ranges = vec![(0, self.below_4g)];
        if self.above_4g > 0 {
            ranges.push((FOUR_GIB, self.above_4g));
        }
        ranges
    }
}

/// Guest address of a BIOS image of `size` bytes: it ends at 4 GiB.
pub fn bios_rom_base(size: u64) -> u64 {
    FOUR_GIB - size.min(FOUR_GIB)
}

/// Length of the part of a `size`-byte image that is copied below 1 MiB: its last `min(size, 256 KiB)` bytes.
pub fn bios_low_copy_len(size: u64) -> u64 {
    size.min(BIOS_LOW_COPY_MAX)
}

/// Guest address the low copy starts at, so that it ends at 1 MiB.
pub fn bios_low_copy_base(size: u64) -> u64 {
    BIOS_LOW_END - bios_low_copy_len(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    #[test]
    fn small_memory_lies_entirely_below_4g() {
        let l = MemoryLayout::new(128).unwrap();
        assert_eq!(
            l,
            MemoryLayout {
                below_4g: 128 * MIB,
                above_4g: 0
            }
        );
        assert_eq!(l.ram_ranges(), [(0, 128 * MIB)]);
        let l = MemoryLayout::new(3072).unwrap();
        assert_eq!(
            l,
            MemoryLayout {
                below_4g: 3 * GIB,
                above_4g: 0
            }
        );
        let l = MemoryLayout::new(3584).unwrap();
        assert_eq!(
            l,
            MemoryLayout {
                below_4g: 0xE000_0000,
                above_4g: 0
            }
        );
    }

    #[test]
    fn memory_beyond_3_5g_continues_at_4g() {
        let l = MemoryLayout::new(4096).unwrap();
        assert_eq!(
            l,
            MemoryLayout {
                below_4g: 0xE000_0000,
                above_4g: 512 * MIB
            }
        );
        assert_eq!(l.ram_ranges(), [(0, 0xE000_0000), (FOUR_GIB, 512 * MIB)]);
        let l = MemoryLayout::new(8192).unwrap();
        assert_eq!(
            l,
            MemoryLayout {
                below_4g: 0xE000_0000,
                above_4g: 8 * GIB - 0xE000_0000
            }
        );
        assert_eq!(l.total(), 8 * GIB);
    }

    #[test]
    fn the_kvm_pages_lie_in_the_hole_above_the_pci_window() {
        const {
            assert!(KVM_IDENTITY_MAP_ADDR >= 0xFEC0_0000);
            assert!(KVM_TSS_ADDR == KVM_IDENTITY_MAP_ADDR + 0x1000);
            assert!(
                KVM_IDENTITY_MAP_ADDR + KVM_RESERVED_LEN == KVM_TSS_ADDR + KVM_TSS_PAGES * 0x1000
            );
        }
        assert!(KVM_IDENTITY_MAP_ADDR + KVM_RESERVED_LEN <= bios_rom_base(16 * MIB));
        assert!(MemoryLayout::new(MAX_MEMORY_MIB).unwrap().below_4g <= KVM_IDENTITY_MAP_ADDR);
    }

    #[test]
    fn out_of_range_sizes_are_refused() {
        for mib in [0, 1, 15, MAX_MEMORY_MIB + 1, u64::MAX] {
            assert_eq!(
                MemoryLayout::new(mib),
                Err(LayoutError::MemoryOutOfRange(mib))
            );
        }
        assert!(MemoryLayout::new(MAX_MEMORY_MIB).is_ok());
    }

    #[test]
    fn bios_placement() {
        assert_eq!(bios_rom_base(256 * 1024), 0xFFFC_0000);
        assert_eq!(bios_rom_base(128 * 1024), 0xFFFE_0000);
        assert_eq!(bios_low_copy_base(256 * 1024), 0xC_0000);
        assert_eq!(bios_low_copy_base(128 * 1024), 0xE_0000);
        assert_eq!(bios_low_copy_len(1024 * 1024), 256 * 1024);
        assert_eq!(bios_low_copy_base(1024 * 1024), 0xC_0000);
        assert_eq!(bios_rom_base(u64::MAX), 0);
    }
}
