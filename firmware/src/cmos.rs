//! The platform bytes of the CMOS RAM behind the RTC (ports 0x70/0x71), as QEMU's `pc_cmos_init` fills them.
//!
//! SeaBIOS on an emulator reads its configuration from these bytes when fw_cfg does not say otherwise; old
//! operating systems read some of them too. The machine writes the returned (index, value) pairs into the RTC
//! at creation; the time and status registers are the RTC's own business.
//!
//! | index | value |
//! |---|---|
//! | 0x10 | floppy types: drive A in bits 7:4, B in 3:0 (0 = none, 4 = 1.44 MB) |
//! | 0x14 | equipment: FPU (bit 1), PS/2 mouse (bit 2), floppies present (bit 0, count − 1 in bits 7:6) |
//! | 0x15/0x16 | base memory in KiB: 640 |
//! | 0x17/0x18, 0x30/0x31 | KiB of RAM above 1 MiB (below 4 GiB), at most 65535 |
//! | 0x34/0x35 | 64 KiB units of RAM above 16 MiB (below 4 GiB), at most 65535; SeaBIOS's RAM size without `etc/e820` |
//! | 0x5B/0x5C/0x5D | 64 KiB units of RAM above 4 GiB (24 bits) |
//! | 0x5F | number of CPUs − 1: SeaBIOS waits until that many APs have checked in |
//! | 0x3D, 0x38 | boot device kinds (see [`crate::boot`]) |
//! | 0x39 | ATA geometry translation, 2 bits per IDE slot (hda in bits 1:0): 0 none, 1 LBA |
//!
//! **Translation.** SeaBIOS 1.16 takes the 0x39 bits as given for every ATA disk (it has no fallback when they
//! are 0), so a disk larger than 1024 cylinders × 16 heads × 63 sectors (504 MiB) must be marked LBA, or INT 13h
//! CHS callers (DOS, Windows 9x, boot loaders using CHS) see only its first 504 MiB. The rule is QEMU's for a
//! disk whose geometry is not guessed from a partition table: LBA above 1024 cylinders of 16 × 63, else none.
//! QEMU's guess from an existing MBR's partition geometry is not reproduced.
//!
//! The legacy hard-disk type bytes 0x12 and 0x19–0x2x are not filled: SeaBIOS does not read them, and the OSes
//! that did predate IDENTIFY.

use crate::boot::{BootOrder, IdeSlot};
use crate::layout::{MemoryLayout, MIB};

/// Most CPUs: CMOS 0x5F holds count − 1 in a byte, and SeaBIOS builds an MP table only up to 255 CPUs.
pub const MAX_VCPUS: u32 = 255;

/// A floppy drive type, as CMOS 0x10 encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FloppyType {
    /// No drive.
    #[default]
    None = 0,
    /// 5¼" 360 KB.
    K360 = 1,
    /// 5¼" 1.2 MB.
    M1_2 = 2,
    /// 3½" 720 KB.
    K720 = 3,
    /// 3½" 1.44 MB.
    M1_44 = 4,
    /// 3½" 2.88 MB.
    M2_88 = 5,
}

/// The BIOS geometry translation of an ATA disk (CMOS 0x39 encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtaTranslation {
    /// Logical CHS = physical CHS.
    None = 0,
    /// LBA-assisted translation (255 heads max).
    Lba = 1,
}

impl AtaTranslation {
    /// QEMU's automatic choice for a disk of `sectors` 512-byte sectors with the standard 16-head, 63-sector
    /// geometry: LBA once it has more than 1024 cylinders.
    pub fn auto(sectors: u64) -> Self {
        if sectors / (16 * 63) > 1024 {
            AtaTranslation::Lba
        } else {
            AtaTranslation::None
        }
    }
}

/// Why the CMOS bytes cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmosError {
    /// 0 CPUs or more than [`MAX_VCPUS`].
    #[error("vcpus = {0} is out of range (1 to {MAX_VCPUS})")]
    BadVcpus(u32),
}

/// What the CMOS bytes describe.
#[derive(Debug, Clone)]
pub struct CmosConfig<'a> {
    /// The RAM layout.
    pub layout: &'a MemoryLayout,
    /// Number of CPUs.
    pub vcpus: u32,
    /// Boot order.
    pub boot: &'a BootOrder,
    /// IDE slots hda..hdd.
    pub ide: &'a [IdeSlot; 4],
    /// Floppy drives A and B.
    pub floppies: [FloppyType; 2],
}

/// The (index, value) pairs to store in CMOS RAM.
pub fn cmos_bytes(config: &CmosConfig<'_>) -> Result<Vec<(u8, u8)>, CmosError> {
    if !(1..=MAX_VCPUS).contains(&config.vcpus) {
        return Err(CmosError::BadVcpus(config.vcpus));
    }
    let below_4g = config.layout.below_4g;
    let mut bytes = Vec::new();
    let mut word = |lo: u8, hi: u8, value: u64| {
        let value = value.min(0xFFFF) as u16;
        bytes.push((lo, value as u8));
        bytes.push((hi, (value >> 8) as u8));
    };
    word(0x15, 0x16, 640);
    let ext_kib = below_4g.saturating_sub(MIB) / 1024;
    word(0x17, 0x18, ext_kib);
    word(0x30, 0x31, ext_kib);
    word(0x34, 0x35, below_4g.saturating_sub(16 * MIB) / 0x10000);

    // 24 bits of 64 KiB units: up to 1 PiB, beyond any layout MemoryLayout accepts.
    let high = (config.layout.above_4g / 0x10000).min(0xFF_FFFF);
    bytes.push((0x5B, high as u8));
    bytes.push((0x5C, (high >> 8) as u8));
    bytes.push((0x5D, (high >> 16) as u8));

    // vcpus was checked to be 1..=255 above.
    bytes.push((0x5F, (config.vcpus - 1) as u8));

    let [a, b] = config.floppies;
    bytes.push((0x10, ((a as u8) << 4) | b as u8));
    let drives = config
        .floppies
        .iter()
        .filter(|t| **t != FloppyType::None)
        .count() as u8;
    let mut equipment = 0x02 | 0x04;
    if drives > 0 {
        equipment |= 0x01 | ((drives - 1) << 6);
    }
    bytes.push((0x14, equipment));

    bytes.extend_from_slice(&config.boot.cmos_bytes());

    let translation = config
        .ide
        .iter()
        .enumerate()
        .fold(0u8, |acc, (slot, kind)| match kind {
            IdeSlot::Disk { sectors } => {
                acc | ((AtaTranslation::auto(*sectors) as u8) << (slot * 2))
            }
            _ => acc,
        });
    bytes.push((0x39, translation));
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_for(memory_mib: u64, vcpus: u32, boot: &str, ide: [IdeSlot; 4]) -> Vec<(u8, u8)> {
        let layout = MemoryLayout::new(memory_mib).unwrap();
        let boot: BootOrder = boot.parse().unwrap();
        cmos_bytes(&CmosConfig {
            layout: &layout,
            vcpus,
            boot: &boot,
            ide: &ide,
            floppies: [FloppyType::None; 2],
        })
        .unwrap()
    }

    fn get(bytes: &[(u8, u8)], index: u8) -> u8 {
        let hits: Vec<u8> = bytes
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(hits.len(), 1, "index {index:#x} set exactly once");
        hits[0]
    }

    fn word(bytes: &[(u8, u8)], lo: u8) -> u16 {
        u16::from(get(bytes, lo)) | (u16::from(get(bytes, lo + 1)) << 8)
    }

    const NO_IDE: [IdeSlot; 4] = [IdeSlot::Empty; 4];

    #[test]
    fn memory_registers_for_256_mib() {
        let b = bytes_for(256, 1, "c", NO_IDE);
        assert_eq!(word(&b, 0x15), 640);
        // (256 - 1) MiB in KiB does not fit 16 bits.
        assert_eq!(word(&b, 0x17), 0xFFFF);
        assert_eq!(word(&b, 0x30), 0xFFFF);
        assert_eq!(word(&b, 0x34), 3840);
        assert_eq!([get(&b, 0x5B), get(&b, 0x5C), get(&b, 0x5D)], [0, 0, 0]);
    }

    #[test]
    fn memory_registers_saturate_and_count_above_4g() {
        let b = bytes_for(8192, 1, "c", NO_IDE);
        assert_eq!(word(&b, 0x30), 0xFFFF);
        assert_eq!(
            word(&b, 0x34),
            ((0xE000_0000u64 - 16 * MIB) / 0x10000) as u16
        );
        // 8 GiB - 3.5 GiB = 4.5 GiB = 0x12000 units of 64 KiB.
        assert_eq!(
            [get(&b, 0x5B), get(&b, 0x5C), get(&b, 0x5D)],
            [0x00, 0x20, 0x01]
        );
        let b = bytes_for(32, 1, "c", NO_IDE);
        assert_eq!(word(&b, 0x17), 31 * 1024);
        assert_eq!(word(&b, 0x34), 256);
        let b = bytes_for(16, 1, "c", NO_IDE);
        assert_eq!(word(&b, 0x34), 0);
        assert_eq!(word(&b, 0x30), 15 * 1024);
    }

    #[test]
    fn cpus_boot_order_and_equipment() {
        let b = bytes_for(128, 4, "dc", NO_IDE);
        assert_eq!(get(&b, 0x5F), 3);
        assert_eq!(get(&b, 0x3D), 0x23);
        assert_eq!(get(&b, 0x38), 0x00);
        assert_eq!(get(&b, 0x10), 0);
        assert_eq!(get(&b, 0x14), 0x06);
    }

    #[test]
    fn floppies_set_types_and_equipment_bits() {
        let layout = MemoryLayout::new(128).unwrap();
        let boot: BootOrder = "a".parse().unwrap();
        let config = |floppies| CmosConfig {
            layout: &layout,
            vcpus: 1,
            boot: &boot,
            ide: &NO_IDE,
            floppies,
        };
        let b = cmos_bytes(&config([FloppyType::M1_44, FloppyType::None])).unwrap();
        assert_eq!(get(&b, 0x10), 0x40);
        assert_eq!(get(&b, 0x14), 0x07);
        let b = cmos_bytes(&config([FloppyType::M1_44, FloppyType::M2_88])).unwrap();
        assert_eq!(get(&b, 0x10), 0x45);
        assert_eq!(get(&b, 0x14), 0x47);
    }

    #[test]
    fn large_disks_get_lba_translation_per_slot() {
        let small = IdeSlot::Disk {
            sectors: 1024 * 16 * 63,
        };
        let big = IdeSlot::Disk { sectors: 20 << 21 }; // 20 GiB
        assert_eq!(
            get(
                &bytes_for(128, 1, "c", [small, IdeSlot::Empty, IdeSlot::Cdrom, big]),
                0x39
            ),
            0x40
        );
        assert_eq!(
            get(
                &bytes_for(128, 1, "c", [big, big, IdeSlot::Cdrom, IdeSlot::Empty]),
                0x39
            ),
            0x05
        );
        assert_eq!(AtaTranslation::auto(1025 * 16 * 63), AtaTranslation::Lba);
        assert_eq!(AtaTranslation::auto(0), AtaTranslation::None);
    }

    #[test]
    fn cpu_counts_out_of_range_are_refused() {
        let layout = MemoryLayout::new(128).unwrap();
        let boot: BootOrder = "c".parse().unwrap();
        for vcpus in [0, 256, u32::MAX] {
            let config = CmosConfig {
                layout: &layout,
                vcpus,
                boot: &boot,
                ide: &NO_IDE,
                floppies: [FloppyType::None; 2],
            };
            assert_eq!(cmos_bytes(&config), Err(CmosError::BadVcpus(vcpus)));
        }
        let config = CmosConfig {
            layout: &layout,
            vcpus: 255,
            boot: &boot,
            ide: &NO_IDE,
            floppies: [FloppyType::None; 2],
        };
        assert_eq!(get(&cmos_bytes(&config).unwrap(), 0x5F), 254);
    }
}
