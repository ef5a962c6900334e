//! The one wiring file: builds the emulated PC from a config.
//!
//! [`Platform::build`] creates every device, puts it on the port-I/O and MMIO buses, connects its interrupt
//! lines and fills the firmware's fw_cfg items and CMOS bytes. It knows nothing about KVM: what it needs from
//! outside (the clock, where GSI levels go, where system requests go, the serial back-ends, the debug-port
//! sink) comes in a [`PlatformEnv`]. The KVM runner (`crate::runner`) and the no-vCPU test harness
//! (`crate::harness`) both call it, so tests exercise exactly the production wiring.
//!
//! Fixed layout (as QEMU `-M pc` and Xen's qemu-dm had it):
//!
//! | what | where | IRQ |
//! |---|---|---|
//! | i8042 keyboard controller | 0x60, 0x64 | 1, 12 |
//! | RTC/CMOS | 0x70–0x71 | 8 |
//! | System Control Port A | 0x92 | — |
//! | firmware debug port | 0x402 | — |
//! | fw_cfg | 0x510–0x51B | — |
//! | COM1–COM4 | 0x3F8, 0x2F8, 0x3E8, 0x2E8 | 4, 3, 4, 3 |
//! | PCI config mechanism #1, reset control | 0xCF8–0xCFF | — |
//! | 00:00.0 i440FX host bridge | PCI | — |
//! | 00:01.0 PIIX3 ISA bridge (PIRQ routing) | PCI | PIRQA–D → 10, 10, 11, 11 as SeaBIOS routes them |
//! | 00:01.3 PIIX4-compatible PM (`acpi=1`) | PCI, PM block where the guest puts it | SCI 9 |
//! | 00:02.0 standard VGA 1234:1111 (Bochs VBE), VGA BIOS in its ROM BAR | 0x3B4–0x3DA, 0x1CE–0x1D0, 0xA0000–0xBFFFF, BAR0 framebuffer | — |
//! | 00:04.0, 00:05.0, … PCI NICs (`rtl8139` 10EC:8139, `ne2k_pci` 10EC:8029) in `vif` order, iPXE in the ROM BAR | BARs where the firmware puts them | INTA# through the PIIX3 links |
//! | ISA NICs (`ne2k_isa`) | 0x300, 0x320, 0x340, … or `iobase=` | 9, 10, 11, … or `irq=` |
//!
//! NICs start at slot 4, where qemu-dm put them (it kept slot 3 for the Xen platform device), so a guest
//! installed under Xen finds its network card where it left it and keeps that card's settings.
//! The VGA is always there, as on QEMU's and qemu-dm's PC (Cirrus is not built yet: the standard VGA stands in
//! for it). Its screen is rendered into a [`DisplayHub`] about 30 times a second while a front-end watches.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use devices::block::{open_image as open_image_file, BlockBackend, ImageKind};
use devices::bus::{Bus, BusError};
use devices::chardev::CharBackend;
use devices::chipset::piix4_pm::Piix4PmHandle;
use devices::chipset::PmWiring;
use devices::clock::Clock;
use devices::display::{DisplayHub, DisplayRefresh};
use devices::fw_cfg::{FwCfg, FwCfgDevice, FwCfgError};
use devices::irq::{GsiSink, IrqMux};
use devices::legacy::debugcon::Debugcon;
use devices::legacy::i8042::I8042;
use devices::legacy::port92::Port92;
use devices::legacy::rtc::RtcDevice;
use devices::memory::{Bytes, GuestAddress, GuestMemory};
use devices::net::ne2k::{Ne2000, Ne2kPci, ISA_DEFAULTS, NE2K_MAX_WIDTH, NE2K_PORTS};
use devices::net::rtl8139::Rtl8139;
use devices::net::NetBackend;
use devices::pci::{PciAddress, PciRoot};
use devices::storage::ide::{DriveConfig, DriveIdentity, DriveKind, IdeChannel};
use devices::storage::piix_ide::PiixIde;
use devices::system::SystemEvents;
use devices::timer::{Timed, TimerKick};
use devices::uart::{Serial, COM_PORTS, UART_MAX_WIDTH, UART_PORTS};
use devices::vga::StdVga;
use firmware::hvmloader::{FirmwareConfig, HvmloaderError};
use firmware::seabios::{BiosImage, FirmwareFileError};

use crate::config::{Config, Disk, ImageFormat, Media, Nic, NicModel};
use crate::direct_boot::DirectBoot;
use firmware::direct::BootEntry;

/// Why the machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The BIOS or an option ROM could not be loaded.
    #[error(transparent)]
    FirmwareFile(#[from] FirmwareFileError),
    /// fw_cfg items or CMOS bytes could not be computed.
    #[error(transparent)]
    Hvmloader(#[from] HvmloaderError),
    /// Guest RAM could not be mapped.
    #[error("cannot map {mib} MiB of guest RAM: {reason}")]
    Memory { mib: u64, reason: String },
    /// A disk image could not be opened.
    #[error("disk {slot} ({path}): {source}")]
    Disk {
        slot: &'static str,
        path: PathBuf,
        #[source]
        source: devices::block::BlockError,
    },
    /// The IDE channels refused their drives.
    #[error("IDE: {0}")]
    Ide(#[from] devices::storage::ide::IdeError),
    /// A PCI function could not be added: a wiring bug.
    #[error("PCI: {0}")]
    Pci(#[from] devices::pci::PciError),
    /// Two devices claim the same addresses: a wiring bug.
    #[error("wiring error: {0}")]
    Bus(#[from] BusError),
    /// The chipset could not be built: a wiring bug.
    #[error("chipset: {0}")]
    Chipset(#[from] devices::chipset::ChipsetError),
    /// An fw_cfg item was refused.
    #[error("fw_cfg: {0}")]
    FwCfg(#[from] FwCfgError),
    /// The VGA could not be built (`videoram` out of range).
    #[error("VGA: {0}")]
    Vga(#[from] devices::vga::VgaError),
    /// An option ROM file could not be read.
    #[error("cannot read option ROM {path}: {source}")]
    OptionRom {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The config asks for firmware this build cannot load.
    #[error("{0}")]
    Unsupported(String),
    /// A direct boot's kernel or initrd cannot be loaded.
    #[error(transparent)]
    DirectBoot(#[from] firmware::direct::DirectBootError),
}

/// Options that come from the command line rather than the config file.
#[derive(Debug, Clone, Default)]
pub struct MachineOptions {
    /// A BIOS image instead of Debian's `/usr/share/seabios/bios-256k.bin`.
    pub bios: Option<PathBuf>,
    /// Extra option ROMs, given to SeaBIOS as fw_cfg `genroms/` files (QEMU's `-option-rom`).
    pub option_roms: Vec<PathBuf>,
    /// Milliseconds SeaBIOS waits before rebooting when nothing boots (QEMU's `-boot reboot-timeout`).
    pub boot_fail_wait_ms: Option<u32>,
}

/// What the platform needs from its surroundings; production and the test harness fill it differently.
pub struct PlatformEnv {
    /// Machine time for every device timer.
    pub clock: Arc<dyn Clock>,
    /// Where GSI levels go (KVM's `KVM_IRQ_LINE`, or a recorder).
    pub gsi: Arc<dyn GsiSink>,
    /// Where reset, power-off and crash requests go.
    pub system: Arc<dyn SystemEvents>,
    /// Wakes the timer loop when a device's deadline changes.
    pub kick: TimerKick,
    /// The guest's RTC time at power-on, in Unix seconds (host time, `localtime`, `rtc_timeoffset` applied).
    pub rtc_start: i64,
    /// Where the firmware debug port's bytes go.
    pub debugcon: Box<dyn Write + Send>,
    /// The opened back-ends of COM1, COM2, ... (at most four), in the order of the `serial` key.
    pub serial: Vec<Arc<dyn CharBackend>>,
    /// One network back-end per NIC [`machine_nics`] lists, in the same order.
    pub nics: Vec<Arc<dyn NetBackend>>,
}

/// PCI slot of the VGA (00:02.0, where QEMU's PC puts it and Windows installs expect it).
pub const VGA_SLOT: u8 = 2;
/// PCI slot of the first PCI NIC; the next ones follow in `vif` order (qemu-dm's layout).
pub const FIRST_NIC_SLOT: u8 = 4;

/// A NIC model as wired into the machine.
pub enum NicDevice {
    /// Realtek RTL8139.
    Rtl8139(Arc<Rtl8139>),
    /// RTL8029 (PCI NE2000).
    Ne2kPci(Ne2kPci),
    /// ISA NE2000.
    Ne2kIsa(Arc<Ne2000>),
}

impl NicDevice {
    /// The host side of the link went up or down: a NIC with a link status (the RTL8139's PHY) reports it
    /// to the guest. The NE2000 has none; its frames simply stop flowing.
    pub fn link_changed(&self) {
        if let NicDevice::Rtl8139(nic) = self {
            nic.update_link();
        }
    }
}

/// Where a NIC sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicLocation {
    /// A PCI function (its BARs are where the firmware puts them).
    Pci(PciAddress),
    /// An ISA card's jumpers.
    Isa {
        /// First of its 32 ports.
        base: u16,
        /// Its ISA IRQ.
        irq: u32,
    },
}

/// A NIC of the machine.
pub struct WiredNic {
    /// The device.
    pub device: NicDevice,
    /// Where it is.
    pub location: NicLocation,
    /// Whether its network boot ROM is in its ROM BAR.
    pub boot_rom: bool,
}

/// Something to do at every platform reset.
type ResetFn = Box<dyn Fn() + Send + Sync>;

/// The emulated PC without its CPUs.
pub struct Platform {
    /// Port-I/O bus.
    pub pio: Arc<Bus>,
    /// MMIO bus.
    pub mmio: Arc<Bus>,
    /// Guest RAM.
    pub mem: GuestMemory,
    /// The BIOS image, mapped at the top of 4 GiB by the runner and copied below 1 MiB at every reset.
    pub bios: BiosImage,
    /// Devices with timers, for the timer loop.
    pub timed: Vec<Arc<dyn Timed>>,
    /// Shared interrupt lines.
    pub irqs: Arc<IrqMux>,
    /// The RTC (the harness reads CMOS through it).
    pub rtc: Arc<RtcDevice>,
    /// The ACPI power-management function (`acpi=1`): the power button for a clean shutdown request.
    pub pm: Option<Piix4PmHandle>,
    /// The IDE channels (primary: hda/hdb, secondary: hdc/hdd), for medium changes.
    pub ide: [Arc<IdeChannel>; 2],
    /// PCI bus 0 (the runner installs its memory mapper here, for the VGA's framebuffer BAR).
    pub pci: Arc<PciRoot>,
    /// The standard VGA.
    pub vga: Arc<StdVga>,
    /// The rendered screen, for the VNC server and the SDL window.
    pub display: Arc<DisplayHub>,
    /// The PS/2 controller, whose keyboard and mouse take the front-ends' input.
    pub i8042: Arc<I8042>,
    /// The NICs, in `vif` order.
    pub nics: Vec<WiredNic>,
    /// Direct kernel boot: the kernel loaded at power-on and every reset in place of the BIOS low copy.
    pub direct: Option<DirectBoot>,
    /// The boot vCPU's entry state of a direct boot (the runner gives it to vCPU 0).
    pub boot_entry: Option<BootEntry>,
    resets: Vec<ResetFn>,
}

impl Platform {
    /// Builds the whole platform for `config`.
    pub fn build(
        config: &Config,
        options: &MachineOptions,
        env: PlatformEnv,
    ) -> Result<Platform, MachineError> {
        let bios = BiosImage::load(options.bios.as_deref())?;
        let direct = DirectBoot::prepare(config)?;
        let drives = open_drives(config)?;
        let mut fw_config =
            FirmwareConfig::new(config.memory_mib, config.vcpus, config.boot_order.clone());
        fw_config.nographic = config.display.nographic;
        for (slot, drive) in fw_config.ide.iter_mut().zip(&drives) {
            *slot = match drive {
                None => firmware::boot::IdeSlot::Empty,
                Some(d) if d.kind == DriveKind::Cdrom => firmware::boot::IdeSlot::Cdrom,
                Some(d) => firmware::boot::IdeSlot::Disk {
                    sectors: d.backend.as_ref().map_or(0, |b| b.sectors()),
                },
            };
        }
        if let Some(ms) = options.boot_fail_wait_ms {
            fw_config.boot_fail_wait_ms = ms;
        }
        let nic_plan = plan_nics(config)?;
        fw_config.nics = nic_plan
            .iter()
            .filter_map(|(_, location)| match location {
                // SeaBIOS matches a ROM's boot entry by its PCI path with the device name as a wildcard.
                NicLocation::Pci(a) => Some(format!("/pci@i0cf8/ethernet@{:x}", a.device())),
                NicLocation::Isa { .. } => None,
            })
            .collect();
        let mem = guest_memory(config.memory_mib)?;
        let mut fw_cfg = FwCfg::new(mem.clone());
        let firmware = firmware::hvmloader::setup(&fw_config, &mut fw_cfg)?;
        for path in &options.option_roms {
            let rom = std::fs::read(path).map_err(|source| MachineError::OptionRom {
                path: path.clone(),
                source,
            })?;
            let name = path
                .file_name()
                .map_or_else(|| "option.rom".into(), |n| n.to_string_lossy().into_owned());
            fw_cfg.add_file(&format!("genroms/{name}"), rom)?;
        }

        let pio = Arc::new(Bus::new("pio"));
        let mmio = Arc::new(Bus::new("mmio"));
        let irqs = IrqMux::new(env.gsi.clone());
        let mut resets: Vec<ResetFn> = Vec::new();
        let mut timed: Vec<Arc<dyn Timed>> = Vec::new();

        // i440FX, PIIX3 (PIRQ routing, reset control) and, with ACPI, the PIIX4-compatible PM function.
        let chipset = devices::chipset::build(
            pio.clone(),
            mmio.clone(),
            &irqs,
            env.system.clone(),
            config.platform.acpi.then(|| PmWiring {
                clock: env.clock.clone(),
                kick: env.kick.clone(),
            }),
        )?;
        if let Some(pm) = &chipset.pm {
            timed.push(Arc::new(pm.clone()));
        }
        {
            let host = chipset.host.clone();
            resets.push(Box::new(move || host.reset()));
        }

        // PIIX3 IDE at 00:01.1: legacy channels at their fixed ports, bus master in BAR4. The channels are reset
        // with the PCI function.
        let [hda, hdb, hdc, hdd] = drives;
        let primary = IdeChannel::new([hda, hdb], irqs.line(14), mem.clone())?;
        let secondary = IdeChannel::new([hdc, hdd], irqs.line(15), mem.clone())?;
        for (channel, command, control) in [(&primary, 0x1f0, 0x3f6), (&secondary, 0x170, 0x376)] {
            pio.insert(command, 8, 4, channel.command_block())?;
            pio.insert(control, 1, 1, channel.control_block())?;
        }
        let ide_function = PiixIde::new(primary.clone(), secondary.clone())?;
        chipset.root.add(
            PciAddress::new(0, devices::chipset::PIIX_SLOT, 1)?,
            Arc::new(std::sync::Mutex::new(ide_function)),
        )?;

        // RTC/CMOS with the firmware's platform bytes.
        let rtc = Arc::new(RtcDevice::new(
            env.rtc_start,
            env.clock.clone(),
            irqs.line(8),
            env.kick.clone(),
        ));
        for &(index, value) in &firmware.cmos {
            if let Err(e) = rtc.set_cmos(index, value) {
                log::warn!("CMOS byte {index:#x}: {e}");
            }
        }
        pio.insert(0x70, 2, 1, rtc.clone())?;
        timed.push(rtc.clone());
        {
            let rtc = rtc.clone();
            resets.push(Box::new(move || {
                rtc.reset();
                // Shutdown status 0: a normal boot, not a resume path (SeaBIOS reads it on its way up).
                let _ = rtc.set_cmos(0x0f, 0);
            }));
        }

        let port92 = Arc::new(Port92::new(env.system.clone()));
        pio.insert(0x92, 1, 1, port92.clone())?;
        resets.push(Box::new(move || port92.reset()));

        let i8042 = I8042::new(irqs.line(1), irqs.line(12), env.system.clone());
        pio.insert(0x60, 1, 1, i8042.data_port())?;
        pio.insert(0x64, 1, 1, i8042.command_port())?;
        {
            let i8042 = i8042.clone();
            resets.push(Box::new(move || i8042.reset()));
        }

        // The standard VGA at 00:02.0 with Debian's SeaVGABIOS in its ROM BAR; SeaBIOS runs the ROM at POST.
        let vga = StdVga::new(config.display.videoram_mib, env.clock.clone())?;
        let vga_bios = firmware::seabios::vga_rom(None)?;
        chipset.root.add_with_rom(
            PciAddress::new(0, VGA_SLOT, 0)?,
            vga.pci_function(),
            vga_bios,
        )?;
        for range in vga.legacy_ports() {
            pio.insert(range.base, range.len, range.max_width, range.device)?;
        }
        mmio.insert(
            devices::vga::VGA_WINDOW_BASE,
            devices::vga::VGA_WINDOW_LEN,
            devices::vga::VGA_WINDOW_MAX_WIDTH,
            vga.vga_window(),
        )?;
        {
            let vga = vga.clone();
            resets.push(Box::new(move || vga.reset()));
        }
        let display = DisplayHub::new(vga.clone(), &config.name);
        timed.push(DisplayRefresh::new(display.clone()));

        // COM1..COM4 in the order the `serial` key lists their back-ends.
        for (backend, &(base, irq)) in env.serial.into_iter().zip(COM_PORTS.iter()) {
            let uart = Serial::new(backend, irqs.line(irq), env.clock.clone(), env.kick.clone());
            pio.insert(u64::from(base), UART_PORTS, UART_MAX_WIDTH, uart.clone())?;
            timed.push(uart.clone());
            resets.push(Box::new(move || uart.reset()));
        }

        let nics = wire_nics(
            config,
            nic_plan,
            env.nics,
            NicWiring {
                pio: &pio,
                root: &chipset.root,
                piix3: &chipset.piix3,
                irqs: &irqs,
                mem: &mem,
                clock: &env.clock,
                kick: &env.kick,
            },
            &mut timed,
            &mut resets,
        )?;

        let debugcon = Arc::new(Debugcon::new(env.debugcon));
        pio.insert(0x402, 1, 1, debugcon)?;

        let fw_cfg = Arc::new(FwCfgDevice::new(fw_cfg));
        pio.insert(
            devices::fw_cfg::PORT_BASE,
            devices::fw_cfg::PORT_LEN,
            devices::fw_cfg::MAX_ACCESS_WIDTH,
            fw_cfg.clone(),
        )?;
        resets.push(Box::new(move || fw_cfg.lock().reset()));

        let mut platform = Platform {
            pio,
            mmio,
            mem,
            bios,
            timed,
            irqs,
            rtc,
            pm: chipset.pm,
            ide: [primary, secondary],
            pci: chipset.root,
            vga,
            display,
            i8042,
            nics,
            direct,
            boot_entry: None,
            resets,
        };
        platform.boot_entry = platform.load_boot()?;
        Ok(platform)
    }

    /// Puts what the boot CPU starts in into RAM: the BIOS's low copy, or a direct boot's kernel and boot data
    /// (then returning its entry state).
    fn load_boot(&self) -> Result<Option<BootEntry>, MachineError> {
        match &self.direct {
            None => {
                self.copy_bios_low();
                Ok(None)
            }
            Some(direct) => Ok(Some(direct.load(&self.mem, &self.pio)?)),
        }
    }

    /// Copies the top of the BIOS image below 1 MiB, as the chipset's shadow RAM holds it after power-on.
    fn copy_bios_low(&self) {
        let (addr, bytes) = self.bios.low_copy();
        if let Err(e) = self.mem.write_slice(bytes, GuestAddress(addr)) {
            log::error!("cannot copy the BIOS below 1 MiB: {e}");
        }
    }

    /// Ejects the CD in `device` (hda..hdd) and, unless `path` is empty, inserts the image at `path`
    /// read-only. A guest that locked the tray (PREVENT ALLOW MEDIUM REMOVAL) keeps its medium and is asked to
    /// eject it. Errors are messages for the toolstack.
    pub fn change_medium(&self, device: &str, path: &str) -> Result<String, String> {
        let slot = ["hda", "hdb", "hdc", "hdd"]
            .iter()
            .position(|d| *d == device)
            .ok_or_else(|| format!("unknown drive '{device}' (expected hda, hdb, hdc or hdd)"))?;
        let channel = &self.ide[slot / 2];
        let unit = slot % 2;
        let image = if path.is_empty() {
            None
        } else {
            Some(
                open_image_file(std::path::Path::new(path), true, ImageKind::Raw)
                    .map_err(|e| e.to_string())?,
            )
        };
        if channel.has_medium(unit) {
            channel
                .eject_medium(unit, false)
                .map_err(|e| format!("{device}: {e}"))?;
        }
        if let Some(image) = image {
            channel
                .insert_medium(unit, image)
                .map_err(|e| format!("{device}: {e}"))?;
        }
        Ok(String::new())
    }

    /// A platform reset: every device back to its power-on state and a fresh copy of the BIOS in low RAM
    /// (SeaBIOS's F-segment may have been changed by the last boot), or the direct boot's kernel loaded again.
    pub fn reset(&self) {
        for reset in &self.resets {
            reset();
        }
        if let Err(e) = self.load_boot() {
            log::error!("reloading the boot code after a reset: {e}");
        }
    }
}

/// The configured NICs this build has a model for, with their index among the `vif` entries (which names
/// their taps). The others were announced as not available when the config was read.
pub fn machine_nics(config: &Config) -> impl Iterator<Item = (usize, &Nic)> {
    config
        .nics
        .iter()
        .enumerate()
        .filter(|(_, n)| crate::config::notices::BUILT.nic_models.contains(&n.model))
}

/// Where each NIC goes: PCI NICs in slots from [`FIRST_NIC_SLOT`], ISA NICs at their `iobase=`/`irq=` or the
/// next of the usual pairs.
fn plan_nics(config: &Config) -> Result<Vec<(NicModel, NicLocation)>, MachineError> {
    let mut slot = FIRST_NIC_SLOT;
    let mut isa_defaults = ISA_DEFAULTS.iter();
    let mut plan = Vec::new();
    for (index, nic) in machine_nics(config) {
        let location = match nic.model {
            NicModel::Rtl8139 | NicModel::Ne2kPci => {
                if slot > 31 {
                    return Err(MachineError::Unsupported(format!(
                        "NIC {index}: no PCI slot left (PCI NICs take slots {FIRST_NIC_SLOT} to 31)"
                    )));
                }
                let address = PciAddress::new(0, slot, 0)?;
                slot += 1;
                NicLocation::Pci(address)
            }
            NicModel::Ne2kIsa => {
                let default = isa_defaults.next();
                let base = nic.isa_base.or(default.map(|d| d.0));
                let irq = nic.isa_irq.map(u32::from).or(default.map(|d| d.1));
                match (base, irq) {
                    (Some(base), Some(irq)) => NicLocation::Isa { base, irq },
                    _ => {
                        return Err(MachineError::Unsupported(format!(
                            "NIC {index}: more ISA NE2000 cards than usual settings; give this one \
                             iobase= and irq= in its vif entry"
                        )))
                    }
                }
            }
            other => {
                return Err(MachineError::Unsupported(format!(
                "NIC {index}: the {} model is not available in this build (use rtl8139, ne2k_pci \
                     or ne2k_isa)",
                other.name()
            )))
            }
        };
        plan.push((nic.model, location));
    }
    Ok(plan)
}

/// What the NICs are connected to.
struct NicWiring<'a> {
    pio: &'a Arc<Bus>,
    root: &'a Arc<PciRoot>,
    piix3: &'a devices::chipset::piix3::Piix3Handle,
    irqs: &'a Arc<IrqMux>,
    mem: &'a GuestMemory,
    clock: &'a Arc<dyn Clock>,
    kick: &'a TimerKick,
}

/// The iPXE ROM for a PCI NIC. A missing ROM is an error only when the boot order asks for the network (as
/// QEMU refuses to start without a NIC's romfile); otherwise the NIC works without network boot.
fn nic_boot_rom(
    model: NicModel,
    wants_network_boot: bool,
) -> Result<Option<Vec<u8>>, MachineError> {
    let Some(rom) = firmware::pxe::pxe_rom_file(model.name()) else {
        return Ok(None);
    };
    match firmware::pxe::pxe_rom(rom) {
        Ok(rom) => Ok(Some(rom)),
        Err(e) if wants_network_boot => Err(e.into()),
        Err(e) => {
            log::warn!("{} NIC without network boot: {e}", model.name());
            Ok(None)
        }
    }
}

/// Builds the NICs where `plan` puts them, each on its back-end.
fn wire_nics(
    config: &Config,
    plan: Vec<(NicModel, NicLocation)>,
    backends: Vec<Arc<dyn NetBackend>>,
    w: NicWiring<'_>,
    timed: &mut Vec<Arc<dyn Timed>>,
    resets: &mut Vec<ResetFn>,
) -> Result<Vec<WiredNic>, MachineError> {
    if backends.len() != plan.len() {
        return Err(MachineError::Unsupported(format!(
            "{} NICs configured but {} network back-ends given",
            plan.len(),
            backends.len()
        )));
    }
    let wants_network_boot = matches!(config.boot, crate::config::Boot::Firmware { .. })
        && config
            .boot_order
            .devices()
            .contains(&firmware::boot::BootDevice::Network);
    let mut wired = Vec::with_capacity(plan.len());
    for (((_, nic), (model, location)), backend) in machine_nics(config).zip(plan).zip(backends) {
        let mac = nic.mac.0;
        let (device, boot_rom) = match location {
            NicLocation::Pci(address) => {
                let intx = w.piix3.intx_line(address.device(), 1)?;
                let (device, function) = match model {
                    NicModel::Rtl8139 => {
                        let nic = Rtl8139::new(
                            mac,
                            backend,
                            w.mem.clone(),
                            w.clock.clone(),
                            intx,
                            w.kick.clone(),
                        )?;
                        timed.push(nic.clone());
                        let function = nic.pci_function();
                        (NicDevice::Rtl8139(nic), function)
                    }
                    _ => {
                        let nic = Ne2kPci::new(mac, backend, Some(intx))?;
                        let function = nic.function();
                        (NicDevice::Ne2kPci(nic), function)
                    }
                };
                // PCI functions are reset with the PCI host (PciHost::reset).
                match nic_boot_rom(model, wants_network_boot)? {
                    Some(rom) => {
                        w.root.add_with_rom(address, function, rom)?;
                        (device, true)
                    }
                    None => {
                        w.root.add(address, function)?;
                        (device, false)
                    }
                }
            }
            NicLocation::Isa { base, irq } => {
                let nic = Ne2000::new(mac, backend, w.irqs.line(irq));
                w.pio
                    .insert(u64::from(base), NE2K_PORTS, NE2K_MAX_WIDTH, nic.clone())
                    .map_err(|e| {
                        MachineError::Unsupported(format!(
                            "ne2k_isa at {base:#x}: its ports 0x{base:x}-0x{:x} are taken by another \
                             device ({e}); choose another iobase= in its vif entry",
                            u64::from(base) + NE2K_PORTS - 1
                        ))
                    })?;
                {
                    let nic = nic.clone();
                    resets.push(Box::new(move || nic.reset()));
                }
                (NicDevice::Ne2kIsa(nic), false)
            }
        };
        wired.push(WiredNic {
            device,
            location,
            boot_rom,
        });
    }
    Ok(wired)
}

/// Maps guest RAM as the memory layout puts it (below the PCI hole, the rest above 4 GiB).
pub fn guest_memory(memory_mib: u64) -> Result<GuestMemory, MachineError> {
    let layout =
        firmware::layout::MemoryLayout::new(memory_mib).map_err(|e| MachineError::Memory {
            mib: memory_mib,
            reason: e.to_string(),
        })?;
    let ranges: Vec<(GuestAddress, usize)> = layout
        .ram_ranges()
        .into_iter()
        .map(|(addr, len)| (GuestAddress(addr), len as usize))
        .collect();
    GuestMemory::from_ranges(&ranges).map_err(|e| MachineError::Memory {
        mib: memory_mib,
        reason: e.to_string(),
    })
}

/// Opens every configured drive, in slot order hda..hdd. Read-only (`r`) images and CD-ROMs are opened read-only,
/// so they are never written; writable images are locked so that two domains cannot both write one.
fn open_drives(config: &Config) -> Result<[Option<DriveConfig>; 4], MachineError> {
    let mut drives: [Option<DriveConfig>; 4] = Default::default();
    for disk in &config.disks {
        let index = disk.slot as usize;
        let kind = match disk.media {
            Media::Disk => DriveKind::Disk,
            Media::Cdrom => DriveKind::Cdrom,
        };
        let backend = match &disk.path {
            Some(path) => Some(open_image(disk, path, kind)?),
            None => None,
        };
        if let Some(slot) = drives.get_mut(index) {
            *slot = Some(DriveConfig {
                kind,
                backend,
                identity: DriveIdentity::default_for(kind, index),
            });
        }
    }
    Ok(drives)
}

fn open_image(
    disk: &Disk,
    path: &std::path::Path,
    kind: DriveKind,
) -> Result<Arc<dyn BlockBackend>, MachineError> {
    let slot = disk.slot.name();
    // `tap:qcow2:` says qcow2; `tap:qcow:` is often written for qcow2 files too, so its header decides (a real
    // qcow v1 file gets a clear conversion message); a raw prefix must hold a raw image, since serving a qcow2
    // file raw would show the guest its metadata and let guest writes destroy it.
    let format = match disk.format {
        ImageFormat::Raw => ImageKind::Raw,
        ImageFormat::Qcow2 => ImageKind::Qcow2,
        ImageFormat::Qcow => ImageKind::Auto,
        other => {
            return Err(MachineError::Unsupported(format!(
                "disk {slot} ({}): {other:?} images are not available in this build; convert with \
                 `qemu-img convert -O qcow2` or `-O raw`",
                path.display()
            )))
        }
    };
    let read_only = kind == DriveKind::Cdrom || !disk.mode.writable();
    open_image_file(path, read_only, format).map_err(|source| MachineError::Disk {
        slot,
        path: path.to_path_buf(),
        source,
    })
}
