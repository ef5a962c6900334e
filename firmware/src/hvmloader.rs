//! The hvmloader role: turn the guest's firmware-relevant config into fw_cfg items and CMOS bytes.
//!
//! Under Xen, hvmloader ran inside the guest before SeaBIOS and handed it tables. On KVM SeaBIOS runs first and
//! asks the device model through fw_cfg and CMOS instead, so "hvmloader" here is a host-side function the
//! machine calls once while building the guest (and whose items it re-adds identically on restore).
//!
//! # Where each table comes from
//!
//! | what | from |
//! |---|---|
//! | RAM map (INT 15h E820h) | our `etc/e820` (RAM, KVM pages reserved); SeaBIOS adds its own EBDA/BIOS/high-zone reservations |
//! | CPU count | `NB_CPUS`/`MAX_CPUS` legacy keys and CMOS 0x5F; SeaBIOS starts the APs itself |
//! | boot order | our `bootorder` file and CMOS 0x3D/0x38 |
//! | $PIR, MP table | SeaBIOS builds them (hard-coded PIIX3 routing; IRQ0 on IOAPIC pin 0, since we leave `IRQ0_OVERRIDE` at 0 to match KVM's default GSI routing) |
//! | SMBIOS | SeaBIOS builds its legacy tables (types 0, 1, 3, 4, 16, 17, 19, 32, 127) |
//! | ACPI | SeaBIOS builds RSDP/RSDT/FADT/FACS/DSDT/SSDT/MADT itself *when the machine has PIIX4-PM 8086:7113*; without it the guest gets none |
//! | VGA BIOS | the VGA device's PCI ROM BAR, or the `pciVVVV,DDDD.rom` file added here |
//!
//! # Items added
//!
//! Legacy keys `RAM_SIZE` (u64, for firmware other than SeaBIOS), `NOGRAPHIC`, `NB_CPUS`, `BOOT_MENU` and
//! `MAX_CPUS` (all u16 LE); files `etc/e820`, `bootorder` (only if it names at least one device),
//! `etc/boot-fail-wait`, `etc/sercon-port` (with `nographic`) and the VGA ROM file if configured.
//!
//! `etc/show-boot-menu` is deliberately *not* added as a file: SeaBIOS registers the legacy `BOOT_MENU` key
//! under that name, and a second entry would only shadow or be shadowed by it. `BOOT_MENU` = 0 also removes
//! the 2.5 s "Press ESC for boot menu" wait, which would otherwise cost every boot.
//!
//! `etc/boot-fail-wait` is [`DEFAULT_BOOT_FAIL_WAIT_MS`] = 60 s, SeaBIOS's own default and so what Xen guests
//! saw: when nothing boots SeaBIOS prints "No bootable device. Retrying in 60 seconds." and reboots, which lets
//! a CD inserted meanwhile be picked up. (QEMU instead passes 0xFFFFFFFF, "wait forever".)

use devices::fw_cfg::{
    FwCfg, FwCfgError, KEY_BOOT_MENU, KEY_MAX_CPUS, KEY_NB_CPUS, KEY_NOGRAPHIC, KEY_RAM_SIZE,
};

use crate::boot::{BootDevices, BootError, BootOrder, IdeSlot};
use crate::cmos::{cmos_bytes, CmosConfig, CmosError, FloppyType};
use crate::e820::{self, E820Entry};
use crate::layout::{LayoutError, MemoryLayout};

pub use crate::seabios::vga_rom;

/// Milliseconds SeaBIOS waits before rebooting when no device boots.
pub const DEFAULT_BOOT_FAIL_WAIT_MS: u32 = 60_000;
/// The serial port SeaBIOS mirrors its screen to with `nographic` (COM1).
pub const SERCON_PORT: u16 = 0x3F8;

/// A VGA BIOS handed to SeaBIOS as fw_cfg file `pciVVVV,DDDD.rom`, which it prefers to the device's ROM BAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VgaRomFile {
    /// PCI vendor ID of the VGA device the ROM belongs to (0x1234 for std VGA).
    pub vendor: u16,
    /// PCI device ID (0x1111 for std VGA).
    pub device: u16,
    /// The ROM image, e.g. from [`vga_rom`].
    pub rom: Vec<u8>,
}

impl VgaRomFile {
    /// The fw_cfg file name SeaBIOS looks for: `pci1234,1111.rom`.
    pub fn file_name(&self) -> String {
        format!("pci{:04x},{:04x}.rom", self.vendor, self.device)
    }
}

/// Everything the firmware needs to know about the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareConfig {
    /// RAM in MiB.
    pub memory_mib: u64,
    /// Number of vCPUs (1 to 255).
    pub vcpus: u32,
    /// Boot device kinds in order.
    pub boot: BootOrder,
    /// IDE slots hda..hdd.
    pub ide: [IdeSlot; 4],
    /// Floppy drives A and B.
    pub floppies: [FloppyType; 2],
    /// Firmware paths of the NICs (e.g. `/pci@i0cf8/ethernet@3`), for network boot.
    pub nics: Vec<String>,
    /// No display: SeaBIOS mirrors its screen to COM1.
    pub nographic: bool,
    /// Offer the "Press ESC for boot menu" prompt (and its 2.5 s wait).
    pub boot_menu: bool,
    /// See [`DEFAULT_BOOT_FAIL_WAIT_MS`].
    pub boot_fail_wait_ms: u32,
    /// A VGA ROM to pass as a fw_cfg file; `None` when the VGA device serves it through its ROM BAR (or there is
    /// no VGA).
    pub vga_rom: Option<VgaRomFile>,
}

impl FirmwareConfig {
    /// A config with no drives, NICs or VGA ROM file, graphics on, no boot menu and the default fail wait.
    pub fn new(memory_mib: u64, vcpus: u32, boot: BootOrder) -> Self {
        FirmwareConfig {
            memory_mib,
            vcpus,
            boot,
            ide: [IdeSlot::Empty; 4],
            floppies: [FloppyType::None; 2],
            nics: Vec::new(),
            nographic: false,
            boot_menu: false,
            boot_fail_wait_ms: DEFAULT_BOOT_FAIL_WAIT_MS,
            vga_rom: None,
        }
    }
}

/// Why the firmware could not be set up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HvmloaderError {
    /// The memory size.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The CPU count.
    #[error(transparent)]
    Cmos(#[from] CmosError),
    /// A NIC path.
    #[error(transparent)]
    Boot(#[from] BootError),
    /// An item the fw_cfg device refused (a duplicate file if called twice on one device).
    #[error(transparent)]
    FwCfg(#[from] FwCfgError),
}

/// What [`setup`] decided, for the machine (RAM slots, RTC) and for `devmodel check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// RAM placement.
    pub layout: MemoryLayout,
    /// The `etc/e820` table ([`e820::render`] prints it).
    pub e820: Vec<E820Entry>,
    /// (index, value) pairs to store in the RTC's CMOS RAM.
    pub cmos: Vec<(u8, u8)>,
    /// The `bootorder` text (empty: not added).
    pub bootorder: String,
}

/// Fills `fw_cfg` for `config` and returns the layout, e820 table and CMOS bytes. Call once per device.
pub fn setup(config: &FirmwareConfig, fw_cfg: &mut FwCfg) -> Result<Firmware, HvmloaderError> {
    let layout = MemoryLayout::new(config.memory_mib)?;
    let cmos = cmos_bytes(&CmosConfig {
        layout: &layout,
        vcpus: config.vcpus,
        boot: &config.boot,
        ide: &config.ide,
        floppies: config.floppies,
    })?;
    let floppies = config
        .floppies
        .iter()
        .filter(|t| **t != FloppyType::None)
        .count() as u8;
    let bootorder = config.boot.bootorder_file(&BootDevices {
        ide: config.ide,
        floppies,
        nics: config.nics.clone(),
    })?;
    let e820 = e820::e820_table(&layout);

    // cmos_bytes checked vcpus to be 1..=255.
    let cpus = (config.vcpus as u16).to_le_bytes().to_vec();
    let flag = |on: bool| u16::from(on).to_le_bytes().to_vec();
    fw_cfg.add_item(KEY_RAM_SIZE, layout.total().to_le_bytes().to_vec())?;
    fw_cfg.add_item(KEY_NOGRAPHIC, flag(config.nographic))?;
    fw_cfg.add_item(KEY_NB_CPUS, cpus.clone())?;
    fw_cfg.add_item(KEY_MAX_CPUS, cpus)?;
    fw_cfg.add_item(KEY_BOOT_MENU, flag(config.boot_menu))?;

    fw_cfg.add_file("etc/e820", e820::to_bytes(&e820))?;
    if !bootorder.is_empty() {
        fw_cfg.add_file("bootorder", bootorder.clone().into_bytes())?;
    }
    fw_cfg.add_file(
        "etc/boot-fail-wait",
        config.boot_fail_wait_ms.to_le_bytes().to_vec(),
    )?;
    if config.nographic {
        fw_cfg.add_file("etc/sercon-port", SERCON_PORT.to_le_bytes().to_vec())?;
    }
    if let Some(vga) = &config.vga_rom {
        fw_cfg.add_file(&vga.file_name(), vga.rom.clone())?;
    }

    Ok(Firmware {
        layout,
        e820,
        cmos,
        bootorder,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use devices::bus::Bus;
    use devices::fw_cfg::{FwCfgDevice, KEY_FILE_DIR, MAX_ACCESS_WIDTH, PORT_BASE, PORT_LEN};
    use devices::memory::test_memory;
    use std::sync::Arc;

    /// Sets up a device for `config` and returns the port bus SeaBIOS would see.
    fn boot(config: &FirmwareConfig) -> (Bus, Firmware) {
        let mut fw_cfg = FwCfg::new(test_memory(0x10000));
        let firmware = setup(config, &mut fw_cfg).unwrap();
        let bus = Bus::new("pio");
        bus.insert(
            PORT_BASE,
            PORT_LEN,
            MAX_ACCESS_WIDTH,
            Arc::new(FwCfgDevice::new(fw_cfg)),
        )
        .unwrap();
        (bus, firmware)
    }

    fn read(bus: &Bus, key: u16, n: usize) -> Vec<u8> {
        bus.write(0x510, &key.to_le_bytes());
        (0..n)
            .map(|_| {
                let mut b = [0u8];
                bus.read(0x511, &mut b);
                b[0]
            })
            .collect()
    }

    /// Looks a file up in the directory as SeaBIOS does and reads it whole.
    fn file(bus: &Bus, name: &str) -> Option<Vec<u8>> {
        let count = u32::from_be_bytes(read(bus, KEY_FILE_DIR, 4).try_into().unwrap()) as usize;
        let dir = read(bus, KEY_FILE_DIR, 4 + 64 * count);
        dir[4..].chunks(64).find_map(|e| {
            let end = e[8..].iter().position(|&b| b == 0).unwrap();
            (&e[8..8 + end] == name.as_bytes()).then(|| {
                let size = u32::from_be_bytes(e[0..4].try_into().unwrap()) as usize;
                read(bus, u16::from_be_bytes([e[4], e[5]]), size)
            })
        })
    }

    fn xen_dc() -> FirmwareConfig {
        let mut config = FirmwareConfig::new(512, 2, "dc".parse().unwrap());
        config.ide = [
            IdeSlot::Disk { sectors: 16 << 21 },
            IdeSlot::Empty,
            IdeSlot::Cdrom,
            IdeSlot::Empty,
        ];
        config
    }

    #[test]
    fn a_typical_guest_gets_its_items() {
        let (bus, firmware) = boot(&xen_dc());
        assert_eq!(read(&bus, KEY_NB_CPUS, 2), [2, 0]);
        assert_eq!(read(&bus, KEY_MAX_CPUS, 2), [2, 0]);
        assert_eq!(read(&bus, KEY_BOOT_MENU, 2), [0, 0]);
        assert_eq!(read(&bus, KEY_NOGRAPHIC, 2), [0, 0]);
        assert_eq!(read(&bus, KEY_RAM_SIZE, 8), (512u64 << 20).to_le_bytes());
        assert_eq!(
            file(&bus, "etc/e820").unwrap(),
            e820::to_bytes(&firmware.e820)
        );
        assert_eq!(
            file(&bus, "bootorder").unwrap(),
            b"/pci@i0cf8/ide@1,1/drive@1/disk@0\n/pci@i0cf8/ide@1,1/drive@0/disk@0\n"
        );
        assert_eq!(
            file(&bus, "etc/boot-fail-wait").unwrap(),
            60_000u32.to_le_bytes()
        );
        assert_eq!(file(&bus, "etc/sercon-port"), None);
        assert_eq!(file(&bus, "etc/show-boot-menu"), None);
        assert!(firmware.cmos.contains(&(0x3D, 0x23)));
        assert!(firmware.cmos.contains(&(0x5F, 1)));
        assert!(firmware.cmos.contains(&(0x39, 0x01)));
        assert_eq!(firmware.layout, MemoryLayout::new(512).unwrap());
    }

    #[test]
    fn nographic_and_boot_menu_are_passed_on() {
        let mut config = xen_dc();
        config.nographic = true;
        config.boot_menu = true;
        config.boot_fail_wait_ms = 5000;
        let (bus, _) = boot(&config);
        assert_eq!(read(&bus, KEY_NOGRAPHIC, 2), [1, 0]);
        assert_eq!(read(&bus, KEY_BOOT_MENU, 2), [1, 0]);
        assert_eq!(file(&bus, "etc/sercon-port").unwrap(), [0xF8, 0x03]);
        assert_eq!(
            file(&bus, "etc/boot-fail-wait").unwrap(),
            5000u32.to_le_bytes()
        );
    }

    #[test]
    fn a_boot_order_naming_no_device_adds_no_bootorder_file() {
        let (bus, firmware) = boot(&FirmwareConfig::new(128, 1, "n".parse().unwrap()));
        assert_eq!(file(&bus, "bootorder"), None);
        assert_eq!(firmware.bootorder, "");
        assert!(firmware.cmos.contains(&(0x3D, 0x04)));
    }

    #[test]
    fn the_vga_rom_becomes_a_pci_id_file() {
        let mut config = xen_dc();
        let mut rom = vec![0u8; 1024];
        rom[..2].copy_from_slice(&[0x55, 0xAA]);
        config.vga_rom = Some(VgaRomFile {
            vendor: 0x1234,
            device: 0x1111,
            rom: rom.clone(),
        });
        let (bus, _) = boot(&config);
        assert_eq!(file(&bus, "pci1234,1111.rom").unwrap(), rom);
    }

    #[test]
    fn bad_config_is_an_error_not_a_panic() {
        let mut fw_cfg = FwCfg::new(test_memory(0x1000));
        let bad_mem = FirmwareConfig::new(0, 1, "c".parse().unwrap());
        assert_eq!(
            setup(&bad_mem, &mut fw_cfg),
            Err(HvmloaderError::Layout(LayoutError::MemoryOutOfRange(0)))
        );
        let bad_cpus = FirmwareConfig::new(128, 0, "c".parse().unwrap());
        assert_eq!(
            setup(&bad_cpus, &mut fw_cfg),
            Err(HvmloaderError::Cmos(CmosError::BadVcpus(0)))
        );
        let mut bad_nic = FirmwareConfig::new(128, 1, "n".parse().unwrap());
        bad_nic.nics = vec!["a\nb".into()];
        assert!(matches!(
            setup(&bad_nic, &mut fw_cfg),
            Err(HvmloaderError::Boot(_))
        ));
        // Twice on one device: the files exist already.
        let good = FirmwareConfig::new(128, 1, "c".parse().unwrap());
        setup(&good, &mut fw_cfg).unwrap();
        assert!(matches!(
            setup(&good, &mut fw_cfg),
            Err(HvmloaderError::FwCfg(FwCfgError::DuplicateFile(_)))
        ));
    }
}
