//! Network boot ROMs: the iPXE option ROM that goes into a NIC's PCI ROM BAR.
//!
//! QEMU gives each PCI NIC the iPXE build for its chip (`romfile=`, default `pxe-<model>.rom` or the EFI
//! variant), and SeaBIOS runs it at POST: the ROM installs itself as a boot entry (a PnP BEV) that the boot
//! order then picks when `n` is chosen. We use the same files, from Debian's `ipxe-qemu` package, looked up in
//! [`PXE_ROM_DIRS`] in order. The ISA NE2000 has no ROM BAR and so no network boot, as under QEMU.

use std::path::{Path, PathBuf};

use crate::seabios::{option_rom, FirmwareFileError};

/// The Debian package that ships the ROMs.
pub const PXE_PACKAGE: &str = "ipxe-qemu";
/// Where the ROMs are looked for: Debian's `ipxe-qemu` directory, then QEMU's data directory (where other
/// distributions and local QEMU builds keep them).
pub const PXE_ROM_DIRS: [&str; 2] = ["/usr/lib/ipxe/qemu", "/usr/share/qemu"];

/// The ROM file name for a PCI NIC model, by its config name (`rtl8139`, `ne2k_pci`).
pub fn pxe_rom_file(model: &str) -> Option<&'static str> {
    match model {
        "rtl8139" => Some("pxe-rtl8139.rom"),
        "ne2k_pci" => Some("pxe-ne2k_pci.rom"),
        _ => None,
    }
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

/// Loads and checks the iPXE ROM `file` (see [`pxe_rom_file`]).
pub fn pxe_rom(file: &str) -> Result<Vec<u8>, FirmwareFileError> {
    option_rom("PXE ROM", PXE_PACKAGE, &pxe_rom_path(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_with_a_rom_bar_have_their_ipxe_file() {
        assert_eq!(pxe_rom_file("rtl8139"), Some("pxe-rtl8139.rom"));
        assert_eq!(pxe_rom_file("ne2k_pci"), Some("pxe-ne2k_pci.rom"));
        assert_eq!(pxe_rom_file("ne2k_isa"), None);
    }

    #[test]
    fn a_missing_rom_names_the_package() {
        let err = pxe_rom("pxe-no-such-card.rom").unwrap_err();
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
        for file in ["pxe-rtl8139.rom", "pxe-ne2k_pci.rom"] {
            let rom = pxe_rom(file).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&rom[..2], &[0x55, 0xAA]);
            // A PCI data structure naming the chip (vendor 10EC).
            let pcir = usize::from(u16::from_le_bytes([rom[0x18], rom[0x19]]));
            assert_eq!(&rom[pcir..pcir + 4], b"PCIR");
            assert_eq!(&rom[pcir + 4..pcir + 6], &0x10ecu16.to_le_bytes());
        }
    }
}
