//! Network boot ROMs: the iPXE option ROM that goes into a NIC's PCI ROM BAR.
//!
//! QEMU gives each PCI NIC the iPXE build for its chip (`romfile=`, default `pxe-<model>.rom` or the EFI
//! variant), and SeaBIOS runs it at POST: the ROM installs itself as a boot entry (a PnP BEV) that the boot
//! order then picks when `n` is chosen. We use the same files, from Debian's `ipxe-qemu` package, looked up in
//! [`PXE_ROM_DIRS`] in order. The ISA NE2000 has no ROM BAR and so no network boot, as under QEMU.
//!
//! SeaBIOS runs a PCI ROM only if the vendor and device IDs in its PCI data structure ("PCIR") are the
//! device's own. Some iPXE builds serve several chips and carry other IDs there (Debian's
//! `pxe-ne2k_pci.rom` has 0000:0000), so [`pxe_rom`] writes the NIC's IDs into the structure and keeps the
//! image's byte sum at zero by adjusting iPXE's checksum byte (offset 6 of its ROM header, which iPXE keeps
//! for exactly this), as QEMU does when it loads such a ROM.

use std::path::{Path, PathBuf};

use crate::seabios::{option_rom, FirmwareFileError};

/// The Debian package that ships the ROMs.
pub const PXE_PACKAGE: &str = "ipxe-qemu";
/// Where the ROMs are looked for: Debian's `ipxe-qemu` directory, then QEMU's data directory (where other
/// distributions and local QEMU builds keep them).
pub const PXE_ROM_DIRS: [&str; 2] = ["/usr/lib/ipxe/qemu", "/usr/share/qemu"];

/// Offset of iPXE's checksum byte in its ROM header.
const CHECKSUM_BYTE: usize = 6;

/// A NIC's network boot ROM: which file, and the PCI IDs it must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PxeRom {
    /// File name in [`PXE_ROM_DIRS`].
    pub file: &'static str,
    /// The NIC's PCI vendor ID.
    pub vendor: u16,
    /// The NIC's PCI device ID.
    pub device: u16,
}

/// The ROM for a PCI NIC model, by its config name (`rtl8139`, `ne2k_pci`).
pub fn pxe_rom_file(model: &str) -> Option<PxeRom> {
    let (file, device) = match model {
        "rtl8139" => ("pxe-rtl8139.rom", 0x8139),
        "ne2k_pci" => ("pxe-ne2k_pci.rom", 0x8029),
        _ => return None,
    };
    Some(PxeRom {
        file,
        vendor: 0x10ec,
        device,
    })
}

/// Where the ROM `file` is: the first of [`PXE_ROM_DIRS`] holding it, else the first directory (for the
/// error message).
pub fn pxe_rom_path(file: &str) -> PathBuf {
    PXE_ROM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(PXE_ROM_DIRS[0]).join(file))
}

/// Loads and checks the iPXE ROM of `rom` (see [`pxe_rom_file`]) and gives it the NIC's PCI IDs.
pub fn pxe_rom(rom: PxeRom) -> Result<Vec<u8>, FirmwareFileError> {
    let path = pxe_rom_path(rom.file);
    let mut bytes = option_rom("PXE ROM", PXE_PACKAGE, &path)?;
    if !set_pci_ids(&mut bytes, rom.vendor, rom.device) {
        return Err(FirmwareFileError::NoRomSignature(path));
    }
    Ok(bytes)
}

/// Writes `vendor`/`device` into the first image's PCI data structure and restores the image's zero byte sum
/// through [`CHECKSUM_BYTE`]. False when the ROM has no PCI data structure.
pub fn set_pci_ids(rom: &mut [u8], vendor: u16, device: u16) -> bool {
    let Some(pcir) = rom
        .get(0x18..0x1a)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
    else {
        return false;
    };
    if rom.get(pcir..pcir + 4) != Some(b"PCIR".as_slice()) || rom.len() < pcir + 8 {
        return false;
    }
    let ids = [vendor.to_le_bytes(), device.to_le_bytes()].concat();
    if rom[pcir + 4..pcir + 8] == ids[..] {
        return true;
    }
    rom[pcir + 4..pcir + 8].copy_from_slice(&ids);
    // The image length the header declares (in 512-byte units), bounded by the file.
    let image = (usize::from(rom[2]) * 512).min(rom.len());
    let sum = rom[..image].iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    rom[CHECKSUM_BYTE] = rom[CHECKSUM_BYTE].wrapping_sub(sum);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_with_a_rom_bar_have_their_ipxe_file() {
        assert_eq!(pxe_rom_file("rtl8139").unwrap().file, "pxe-rtl8139.rom");
        let ne2k = pxe_rom_file("ne2k_pci").unwrap();
        assert_eq!(
            (ne2k.file, ne2k.vendor, ne2k.device),
            ("pxe-ne2k_pci.rom", 0x10ec, 0x8029)
        );
        assert_eq!(pxe_rom_file("ne2k_isa"), None);
    }

    fn byte_sum(rom: &[u8]) -> u8 {
        rom.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    #[test]
    fn ids_are_patched_and_the_sum_stays_zero() {
        let mut rom = vec![0u8; 1024];
        rom[..3].copy_from_slice(&[0x55, 0xAA, 2]);
        rom[0x18] = 0x40;
        rom[0x40..0x44].copy_from_slice(b"PCIR");
        rom[0x100] = 0x5a; // some code
        let fix = 0u8.wrapping_sub(byte_sum(&rom));
        rom[CHECKSUM_BYTE] = fix;
        assert_eq!(byte_sum(&rom), 0);
        assert!(set_pci_ids(&mut rom, 0x10ec, 0x8029));
        assert_eq!(&rom[0x44..0x48], &[0xec, 0x10, 0x29, 0x80]);
        assert_eq!(byte_sum(&rom), 0);
        // Already right: nothing changes.
        let before = rom.clone();
        assert!(set_pci_ids(&mut rom, 0x10ec, 0x8029));
        assert_eq!(rom, before);
        // No PCI data structure, or a pointer past the end: refused, untouched.
        let mut bare = vec![0x55, 0xAA, 1, 0, 0, 0, 0, 0];
        assert!(!set_pci_ids(&mut bare, 1, 2));
        let mut wild = vec![0u8; 64];
        wild[0x18] = 0xff;
        assert!(!set_pci_ids(&mut wild, 1, 2));
    }

    #[test]
    fn a_missing_rom_names_the_package() {
        let err = pxe_rom(PxeRom {
            file: "pxe-no-such-card.rom",
            vendor: 1,
            device: 2,
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ipxe-qemu"), "{text}");
        assert!(
            text.contains("/usr/lib/ipxe/qemu/pxe-no-such-card.rom"),
            "{text}"
        );
    }

    #[test]
    fn debian_roms_load() {
        // scripts/setup.sh installs ipxe-qemu, as it installs seabios for the BIOS tests.
        for model in ["rtl8139", "ne2k_pci"] {
            let want = pxe_rom_file(model).unwrap();
            let rom = pxe_rom(want).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&rom[..2], &[0x55, 0xAA]);
            // The PCI data structure names the NIC, as SeaBIOS requires, and the image still sums to zero.
            let pcir = usize::from(u16::from_le_bytes([rom[0x18], rom[0x19]]));
            assert_eq!(&rom[pcir..pcir + 4], b"PCIR");
            assert_eq!(&rom[pcir + 4..pcir + 6], &want.vendor.to_le_bytes());
            assert_eq!(&rom[pcir + 6..pcir + 8], &want.device.to_le_bytes());
            assert_eq!(byte_sum(&rom[..usize::from(rom[2]) * 512]), 0, "{model}");
        }
    }
}
