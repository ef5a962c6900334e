//! The resolved machine: what every key came to, in types the rest of the device model uses directly.
//!
//! Defaults are xm's (Xen 4.0 `create.py`), because the files this reads were written for xm; where xl
//! differed, the field's doc says so. Everything is `Serialize` so `devmodel check` can print it as data.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use devices::chardev::CharSpec;
use serde::{Serialize, Serializer};

use super::Origin;

/// A whole resolved HVM guest config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// `name`: the domain name (required).
    pub name: String,
    /// `uuid`, when given (lower-case, 8-4-4-4-12 hex).
    pub uuid: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// How the guest starts: firmware or a direct kernel.
    pub boot: Boot,
    /// `device_model`: the qemu-dm path the file named. Informational only: this program is the device model.
    pub device_model: Option<PathBuf>,
    /// `memory` in MiB (default 128).
    pub memory_mib: u64,
    /// `maxmem` in MiB (default: `memory`).
    pub maxmem_mib: u64,
    /// `vcpus` (default 1).
    pub vcpus: u32,
    /// `vcpu_avail`: vCPUs online at boot as a bit mask (default: all of them).
    pub vcpu_avail: Option<u64>,
    /// `cpus`: host CPU affinity as written (e.g. `"0-3,^1"`).
    pub cpus: Option<String>,
    /// `cpu`: host CPU for vCPU 0.
    pub cpu: Option<i64>,
    /// `cpuid`: features hidden from (or forced on for) every vCPU, in libxl's string or xend's list form.
    pub cpuid: crate::cpuid::CpuidPolicy,
    /// `boot`: boot order (xm default `c`; xl used `cd`).
    pub boot_order: BootOrder,
    /// `disk`: IDE drives, in file order.
    pub disks: Vec<Disk>,
    /// `vif` (padded by `nics`): emulated NICs, in file order.
    pub nics: Vec<Nic>,
    /// `vnc`, `sdl`, `nographic`, `stdvga`, `videoram`, `keymap`.
    pub display: Display,
    /// `serial`: COM1, COM2, … back-ends. Absent: COM1 on `null` (qemu-dm's default `vc`, a console inside the
    /// graphical display, has no equivalent here), or `stdio` with `nographic=1` as qemu did. `[]` means no
    /// serial port at all.
    pub serial: Vec<CharSpec>,
    /// `parallel`: LPT1 back-end; `None` when absent or `none` (qemu-dm defaulted to `vc`).
    pub parallel: Option<CharSpec>,
    /// `monitor`/`monitor_path`: the qemu monitor back-end when enabled (`vc` or a path as written).
    pub monitor: Option<String>,
    /// `usb`, `usbdevice`.
    pub usb: Usb,
    /// `soundhw`: sound cards.
    pub sound: Vec<SoundCard>,
    /// `fda`: floppy image for drive A.
    pub fda: Option<PathBuf>,
    /// `fdb`: floppy image for drive B.
    pub fdb: Option<PathBuf>,
    /// `localtime`, `rtc_timeoffset`.
    pub rtc: Rtc,
    /// `acpi`, `apic`, `pae`, `hap`, `viridian`, `hpet`, `xen_platform_pci`, `isa`.
    pub platform: Platform,
    /// `pci`: host PCI devices to pass through, as written.
    pub pci_passthrough: Vec<String>,
    /// `gfx_passthru`.
    pub gfx_passthru: bool,
    /// `on_poweroff` (default destroy).
    pub on_poweroff: Action,
    /// `on_reboot` (default restart).
    pub on_reboot: Action,
    /// `on_crash` (default restart).
    pub on_crash: Action,
    /// Keys that asked for something this build does not have, or that mean nothing on KVM. The caller
    /// decides whether to print them or refuse to start.
    pub unsupported: Vec<Notice>,
    /// Where each key present came from (file line or command line). Keys left at their default are absent.
    #[serde(skip)]
    pub origins: BTreeMap<String, Origin>,
}

/// How the guest starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Boot {
    /// `kernel`/`loader` names hvmloader: firmware (SeaBIOS) boots from the drives in `boot_order`. The path is
    /// the one the file gave; this device model loads its own SeaBIOS instead of hvmloader.
    Firmware {
        /// The hvmloader path as written.
        loader: PathBuf,
    },
    /// Any other `kernel`: a direct kernel boot.
    Kernel {
        /// Kernel image.
        path: PathBuf,
        /// `ramdisk`, if any.
        ramdisk: Option<PathBuf>,
        /// `root=<root> <extra>`, as xm built it, or xl's `cmdline` when given.
        cmdline: String,
    },
}

pub use firmware::boot::{BootDevice, BootOrder};

/// An IDE position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum IdeSlot {
    /// Primary master.
    Hda,
    /// Primary slave.
    Hdb,
    /// Secondary master.
    Hdc,
    /// Secondary slave.
    Hdd,
}

impl IdeSlot {
    /// All slots in order.
    pub const ALL: [IdeSlot; 4] = [IdeSlot::Hda, IdeSlot::Hdb, IdeSlot::Hdc, IdeSlot::Hdd];

    /// IDE channel: 0 primary (0x1F0, IRQ 14), 1 secondary (0x170, IRQ 15).
    pub fn channel(self) -> u8 {
        (self as u8) / 2
    }

    /// 0 master, 1 slave.
    pub fn unit(self) -> u8 {
        (self as u8) % 2
    }

    /// `hda` … `hdd`.
    pub fn name(self) -> &'static str {
        ["hda", "hdb", "hdc", "hdd"][self as usize]
    }
}

/// Disk or CD-ROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Media {
    /// An ATA hard disk.
    Disk,
    /// An ATAPI CD-ROM (`:cdrom`).
    Cdrom,
}

/// Where the image comes from, by the `disk` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DiskBackend {
    /// `file:` (or no prefix): an image file.
    File,
    /// `phy:`: a host block device (a bare name like `hdb1` means `/dev/hdb1`).
    Phy,
    /// `tap:<driver>:`: blktap; the driver gives the format.
    Tap,
}

/// Image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ImageFormat {
    /// Raw bytes (`file:`, `phy:`, `tap:aio:`, `tap:sync:`).
    Raw,
    /// `tap:qcow:`.
    Qcow,
    /// `tap:qcow2:`.
    Qcow2,
    /// `tap:vhd:`.
    Vhd,
    /// `tap:vmdk:`.
    Vmdk,
}

/// Access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DiskMode {
    /// `r`/`ro`.
    ReadOnly,
    /// `w`/`rw`.
    ReadWrite,
    /// `w!`: writable even if another guest uses the same image (xend skipped its sharing check).
    ReadWriteShared,
}

impl DiskMode {
    /// Whether the guest may write.
    pub fn writable(self) -> bool {
        !matches!(self, DiskMode::ReadOnly)
    }
}

/// One `disk` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disk {
    /// IDE position.
    pub slot: IdeSlot,
    /// Disk or CD-ROM.
    pub media: Media,
    /// Back-end kind.
    pub backend: DiskBackend,
    /// Image format.
    pub format: ImageFormat,
    /// Image path; `None` for an empty CD-ROM drive (`',hdc:cdrom,r'`).
    pub path: Option<PathBuf>,
    /// Access mode (a CD-ROM is always read-only).
    pub mode: DiskMode,
    /// The target as written (`ioemu:hda`, `hdb1`, `xvda`, …).
    pub target: String,
}

/// Emulated NIC models qemu-dm knew.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NicModel {
    /// Realtek RTL8139 (PCI 10EC:8139), the xend default.
    Rtl8139,
    /// NE2000 PCI (10EC:8029).
    Ne2kPci,
    /// NE2000 ISA at 0x300, IRQ 9.
    Ne2kIsa,
    /// Intel e1000.
    E1000,
    /// AMD PCnet.
    Pcnet,
    /// Intel 82551.
    I82551,
    /// Intel 82557B.
    I82557b,
    /// Intel 82559ER.
    I82559er,
}

impl NicModel {
    /// Every model with its config name.
    pub const ALL: [(NicModel, &'static str); 8] = [
        (NicModel::Rtl8139, "rtl8139"),
        (NicModel::Ne2kPci, "ne2k_pci"),
        (NicModel::Ne2kIsa, "ne2k_isa"),
        (NicModel::E1000, "e1000"),
        (NicModel::Pcnet, "pcnet"),
        (NicModel::I82551, "i82551"),
        (NicModel::I82557b, "i82557b"),
        (NicModel::I82559er, "i82559er"),
    ];

    /// The config name (`rtl8139`, …).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("?", |(_, n)| n)
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One emulated NIC (a `vif` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nic {
    /// `model=` (default rtl8139).
    pub model: NicModel,
    /// `mac=`, or a random `00:16:3e:xx:xx:xx` as xend made.
    pub mac: MacAddr,
    /// Whether `mac` was generated.
    pub mac_generated: bool,
    /// `bridge=` (default xenbr0).
    pub bridge: String,
    /// `vifname=`: host tap interface name.
    pub vifname: Option<String>,
    /// `ip=`: addresses the host scripts allowed (anti-spoofing), as written.
    pub ip: Option<String>,
    /// `script=`: host hotplug script.
    pub script: Option<PathBuf>,
    /// `type=`: false for `type=netfront`/`vif`, a PV-only interface with no emulated NIC.
    pub emulated: bool,
    /// `iobase=` (`ne2k_isa` only): the card's base port instead of the next of the usual ones.
    pub isa_base: Option<u16>,
    /// `irq=` (`ne2k_isa` only): the card's ISA IRQ instead of the next of the usual ones.
    pub isa_irq: Option<u8>,
}

/// The guest's graphics and its host-side consoles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Display {
    /// `stdvga`.
    pub vga: Vga,
    /// `videoram` in MiB (default 4, xend's; Cirrus always has 4).
    pub videoram_mib: u32,
    /// `vnc=1` (and not `nographic`).
    pub vnc: Option<Vnc>,
    /// `sdl=1` (and not `nographic`).
    pub sdl: Option<Sdl>,
    /// `nographic=1`.
    pub nographic: bool,
    /// `keymap` (default en-us).
    pub keymap: String,
}

/// VGA model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Vga {
    /// Cirrus CLGD5446 (PCI 1013:00B8), 4 MiB: the default.
    Cirrus,
    /// Bochs VBE standard VGA (1234:1111), `stdvga=1`.
    Std,
}

/// VNC server settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vnc {
    /// `vnclisten` (default 127.0.0.1).
    pub listen: String,
    /// `vncdisplay`; the port is 5900 + display. `None` (the default) means the domain id, as qemu-dm did.
    pub display: Option<u16>,
    /// `vncunused` (default 1).
    pub find_unused: bool,
    /// `vncpasswd` when non-empty; VNC DES authentication uses its first 8 bytes.
    pub password: Option<Password>,
    /// `vncconsole`/`vncviewer`: start a viewer.
    pub viewer: bool,
}

/// A secret that serializes and prints as `<set>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<set>)")
    }
}

impl Serialize for Password {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<set>")
    }
}

/// SDL window settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sdl {
    /// `opengl` (default 1).
    pub opengl: bool,
    /// `display`.
    pub x_display: Option<String>,
    /// `xauthority`.
    pub xauthority: Option<String>,
    /// `fullscreen` (default 0): the window starts full screen. xmexample.hvm has it as `full-screen`, a
    /// name Python cannot assign, so xend never read it; this is QEMU's `-full-screen`.
    pub full_screen: bool,
}

/// USB controller and devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Usb {
    /// `usb=1`, or implied by `usbdevice`.
    pub controller: bool,
    /// `usbdevice` entries.
    pub devices: Vec<UsbDevice>,
}

/// A `usbdevice` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum UsbDevice {
    /// `tablet`: absolute pointer (the cure for the VNC mouse drift).
    Tablet,
    /// `mouse`: relative USB mouse.
    Mouse,
    /// `keyboard`.
    Keyboard,
    /// `host:BUS.ADDR`.
    HostBusAddr {
        /// Host bus number.
        bus: u16,
        /// Device address.
        addr: u16,
    },
    /// `host:VID:PID` (hex).
    HostId {
        /// Vendor id.
        vendor: u16,
        /// Product id.
        product: u16,
    },
    /// `disk:PATH`: USB mass storage.
    Disk(PathBuf),
}

/// Sound cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SoundCard {
    /// Creative Sound Blaster 16 (ISA 0x220, IRQ 5, DMA 1/5).
    Sb16,
    /// Ensoniq AudioPCI ES1370 (PCI 1274:5000).
    Es1370,
    /// Intel AC97.
    Ac97,
    /// Yamaha OPL2 (AdLib).
    Adlib,
    /// Gravis Ultrasound.
    Gus,
    /// CS4231A.
    Cs4231a,
    /// PC speaker as an audio device.
    Pcspk,
}

impl SoundCard {
    /// Every card with its config name.
    pub const ALL: [(SoundCard, &'static str); 7] = [
        (SoundCard::Sb16, "sb16"),
        (SoundCard::Es1370, "es1370"),
        (SoundCard::Ac97, "ac97"),
        (SoundCard::Adlib, "adlib"),
        (SoundCard::Gus, "gus"),
        (SoundCard::Cs4231a, "cs4231a"),
        (SoundCard::Pcspk, "pcspk"),
    ];

    /// The cards `soundhw='all'` meant in qemu-dm's build.
    pub const ALL_KEYWORD: [SoundCard; 3] = [SoundCard::Sb16, SoundCard::Es1370, SoundCard::Ac97];

    /// The config name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("?", |(_, n)| n)
    }
}

/// RTC settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Rtc {
    /// `localtime`: the RTC keeps local time.
    pub localtime: bool,
    /// `rtc_timeoffset`: seconds added to the RTC's time.
    pub offset_seconds: i64,
}

/// Platform features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `acpi` (default on).
    pub acpi: bool,
    /// `apic` (default on).
    pub apic: bool,
    /// `pae` (default on).
    pub pae: bool,
    /// `hap` (default on). KVM uses EPT/NPT whenever the host has it.
    pub hap: bool,
    /// `viridian` (default off).
    pub viridian: bool,
    /// `hpet` (default off).
    pub hpet: bool,
    /// `xen_platform_pci` (Xen default on). The device is only useful with Xen hypercalls.
    pub xen_platform_pci: bool,
    /// `isa` (default off).
    pub isa: bool,
}

/// What the toolstack did when the guest stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    /// `destroy`: clean up.
    Destroy,
    /// `restart`: start a new guest in its place.
    Restart,
    /// `preserve`: keep the stopped guest until it is destroyed by hand.
    Preserve,
    /// `rename-restart`: keep the old guest under a new name and start a new one.
    RenameRestart,
    /// `coredump-destroy` (on_crash only).
    CoredumpDestroy,
    /// `coredump-restart` (on_crash only).
    CoredumpRestart,
}

impl Action {
    /// Every action with its config name.
    pub const ALL: [(Action, &'static str); 6] = [
        (Action::Destroy, "destroy"),
        (Action::Restart, "restart"),
        (Action::Preserve, "preserve"),
        (Action::RenameRestart, "rename-restart"),
        (Action::CoredumpDestroy, "coredump-destroy"),
        (Action::CoredumpRestart, "coredump-restart"),
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("?", |(_, n)| n)
    }
}

/// Why a key is listed in [`Config::unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NoticeKind {
    /// The config asks for a device or feature this build does not have (yet).
    NotAvailable,
    /// A Xen-only or PV-only setting: accepted, but it means nothing for this device model on KVM.
    NoEffect,
}

/// One key the machine will not honour as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// Where the key was set.
    pub at: Origin,
    /// The key.
    pub key: String,
    /// Not available, or no effect.
    pub kind: NoticeKind,
    /// What is missing and what happens instead.
    pub message: String,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NoticeKind::NotAvailable => "not available in this build",
            NoticeKind::NoEffect => "no effect",
        };
        write!(f, "{}: {}: {}: {}", self.at, self.key, kind, self.message)
    }
}
