//! What this build can honour, as data, and the notices for everything else.
//!
//! [`BUILT`] lists the devices and features the device model has today. [`collect`] compares a resolved
//! [`Config`] with it and returns one [`Notice`] per request that cannot be met, so the caller can print
//! them or refuse to start. When a device lands, flip its field in [`BUILT`] (and its tests): no other code
//! changes, and the notice disappears.
//!
//! Notices are raised for what a config *asks for*: every disk and NIC, and every key set to something other
//! than its default. A default the file never mentions (ACPI on, Cirrus VGA, COM1 on `null`) raises none;
//! `describe` shows those.

use std::path::Path;

use super::model::*;
use super::Origin;

/// The devices and features of a build.
#[derive(Debug, Clone, Copy)]
pub struct Built {
    /// PIIX3 IDE hard disks.
    pub ide_disk: bool,
    /// ATAPI CD-ROM drives.
    pub ide_cdrom: bool,
    /// Image formats the block layer reads.
    pub image_formats: &'static [ImageFormat],
    /// Emulated NIC models.
    pub nic_models: &'static [NicModel],
    /// Bochs VBE standard VGA (`stdvga=1`).
    pub std_vga: bool,
    /// Cirrus CLGD5446 VGA (the default, `stdvga=0`). Without it the standard VGA stands in.
    pub cirrus_vga: bool,
    /// VNC server.
    pub vnc: bool,
    /// Starting a VNC viewer (`vncconsole`).
    pub vnc_viewer: bool,
    /// SDL window (the `sdl` cargo feature: headless builds need no SDL libraries).
    pub sdl: bool,
    /// 16550A serial ports configured by `serial`.
    pub serial: bool,
    /// Parallel port.
    pub parallel: bool,
    /// qemu monitor.
    pub monitor: bool,
    /// PIIX3 UHCI controller.
    pub usb: bool,
    /// USB HID tablet.
    pub usb_tablet: bool,
    /// USB HID mouse.
    pub usb_mouse: bool,
    /// USB HID keyboard.
    pub usb_keyboard: bool,
    /// USB host passthrough.
    pub usb_host: bool,
    /// USB mass storage.
    pub usb_disk: bool,
    /// Sound cards.
    pub sound_cards: &'static [SoundCard],
    /// Floppy images.
    pub floppy: bool,
    /// Direct kernel boot (`kernel` other than hvmloader).
    pub direct_kernel: bool,
    /// Network boot (`boot` with `n`).
    pub network_boot: bool,
    /// Running without ACPI (`acpi=0`).
    pub acpi_off: bool,
    /// Running without APIC (`apic=0`).
    pub apic_off: bool,
    /// Hiding PAE (`pae=0`).
    pub pae_off: bool,
    /// HPET.
    pub hpet: bool,
    /// Hyper-V enlightenments.
    pub viridian: bool,
    /// An ISA-only machine.
    pub isa_only: bool,
    /// PCI passthrough.
    pub pci_passthrough: bool,
    /// Memory ballooning (`maxmem` above `memory`).
    pub ballooning: bool,
    /// vCPU host-CPU affinity (`cpus`, `cpu`).
    pub cpu_affinity: bool,
    /// CPUID overrides.
    pub cpuid: bool,
    /// vCPUs offline at boot (`vcpu_avail`).
    pub vcpu_hotplug: bool,
    /// RTC kept in local time / with an offset.
    pub rtc_offset: bool,
    /// Lifecycle actions other than destroy.
    pub actions: &'static [Action],
}

/// This build. Flip a field when its device or feature lands.
pub const BUILT: Built = Built {
    ide_disk: true,
    ide_cdrom: true,
    image_formats: &[ImageFormat::Raw, ImageFormat::Qcow, ImageFormat::Qcow2],
    nic_models: &[NicModel::Rtl8139, NicModel::Ne2kPci, NicModel::Ne2kIsa],
    std_vga: true,
    cirrus_vga: false,
    vnc: true,
    vnc_viewer: true,
    sdl: cfg!(feature = "sdl"),
    serial: true,
    parallel: false,
    monitor: false,
    usb: false,
    usb_tablet: false,
    usb_mouse: false,
    usb_keyboard: false,
    usb_host: false,
    usb_disk: false,
    sound_cards: &[],
    floppy: false,
    direct_kernel: true,
    network_boot: true,
    acpi_off: true,
    apic_off: false,
    pae_off: false,
    hpet: false,
    viridian: false,
    isa_only: false,
    pci_passthrough: false,
    ballooning: false,
    cpu_affinity: false,
    cpuid: true,
    vcpu_hotplug: false,
    rtc_offset: true,
    actions: &[
        Action::Destroy,
        Action::Restart,
        Action::Preserve,
        Action::RenameRestart,
    ],
};

/// Everything `cfg` asks for that `built` lacks; `path` is the config file (for keys left at defaults).
pub fn collect(cfg: &Config, built: &Built, path: &Path) -> Vec<Notice> {
    let mut out = Vec::new();
    // Cirrus is the default, so this is raised only when someone will look at the screen (or set stdvga=0):
    // the guest then gets the standard VGA, which needs a different driver in an installed OS.
    let shows_screen = cfg.display.vnc.is_some()
        || cfg.display.sdl.is_some()
        || cfg.origins.contains_key("stdvga");
    if cfg.display.vga == Vga::Cirrus && !built.cirrus_vga && built.std_vga && shows_screen {
        out.push(Notice {
            at: cfg.origins.get("stdvga").cloned().unwrap_or_else(|| Origin::File {
                path: path.to_path_buf(),
                line: 0,
            }),
            key: "stdvga".to_string(),
            kind: NoticeKind::NoEffect,
            message: "the Cirrus VGA (stdvga=0, the default) is not built yet: the guest gets the standard VGA \
                      (Bochs VBE, PCI 1234:1111); set stdvga=1 to say so"
                .to_string(),
        });
    }
    let mut push = |key: &str, message: String| {
        out.push(Notice {
            at: cfg
                .origins
                .get(key)
                .cloned()
                .unwrap_or_else(|| Origin::File {
                    path: path.to_path_buf(),
                    line: 0,
                }),
            key: key.to_string(),
            kind: NoticeKind::NotAvailable,
            message,
        })
    };
    let set = |key: &str| cfg.origins.contains_key(key);

    if let Boot::Kernel { path, .. } = &cfg.boot {
        if !built.direct_kernel {
            push("kernel", format!("direct kernel boot of '{}' (use kernel = '/usr/lib/xen/boot/hvmloader' to boot from the disks)", path.display()));
        }
    }
    for d in &cfg.disks {
        let what = match d.media {
            Media::Disk if !built.ide_disk => Some("IDE hard disk"),
            Media::Cdrom if !built.ide_cdrom => Some("IDE CD-ROM drive"),
            _ => None,
        };
        if let Some(what) = what {
            push("disk", format!("{what} {} ('{}')", d.slot.name(), d.target));
        } else if d.path.is_some() && !built.image_formats.contains(&d.format) {
            push(
                "disk",
                format!(
                    "the {:?} image format of {} ('{}')",
                    d.format,
                    d.slot.name(),
                    d.target
                ),
            );
        }
    }
    for (i, n) in cfg.nics.iter().enumerate() {
        if !built.nic_models.contains(&n.model) {
            push(
                "vif",
                format!(
                    "NIC {i}: the {} model (mac {}, bridge {})",
                    n.model.name(),
                    n.mac,
                    n.bridge
                ),
            );
        }
    }
    if set("boot")
        && matches!(cfg.boot, Boot::Firmware { .. })
        && cfg.boot_order.devices().contains(&BootDevice::Network)
        && !built.network_boot
    {
        push("boot", "network boot (n)".to_string());
    }
    if cfg.display.vga == Vga::Std && !built.std_vga {
        push("stdvga", "the standard VGA (stdvga=1)".to_string());
    }
    if let Some(v) = &cfg.display.vnc {
        if !built.vnc {
            push("vnc", format!("the VNC server on {}", v.listen));
        }
        if v.viewer && !built.vnc_viewer {
            push(
                if set("vncconsole") {
                    "vncconsole"
                } else {
                    "vncviewer"
                },
                "starting a VNC viewer".to_string(),
            );
        }
    }
    if cfg.display.sdl.is_some() && !built.sdl {
        push(
            "sdl",
            "the SDL window: this devmodel was built without it (cargo build --features sdl)"
                .to_string(),
        );
    }
    if set("serial") && !cfg.serial.is_empty() && !built.serial {
        push("serial", format!("{} serial port(s)", cfg.serial.len()));
    }
    if cfg.parallel.is_some() && !built.parallel {
        push("parallel", "the parallel port".to_string());
    }
    if cfg.monitor.is_some() && !built.monitor {
        push("monitor", "the qemu monitor".to_string());
    }
    if cfg.usb.controller && !built.usb {
        push(
            if set("usb") { "usb" } else { "usbdevice" },
            "the USB (UHCI) controller".to_string(),
        );
    }
    for dev in &cfg.usb.devices {
        let ok = match dev {
            UsbDevice::Tablet => built.usb_tablet,
            UsbDevice::Mouse => built.usb_mouse,
            UsbDevice::Keyboard => built.usb_keyboard,
            UsbDevice::HostBusAddr { .. } | UsbDevice::HostId { .. } => built.usb_host,
            UsbDevice::Disk(_) => built.usb_disk,
        };
        if !ok {
            push(
                "usbdevice",
                format!("the USB device {}", format!("{dev:?}").to_lowercase()),
            );
        }
    }
    for card in &cfg.sound {
        if !built.sound_cards.contains(card) {
            push("soundhw", format!("the {} sound card", card.name()));
        }
    }
    for (key, f) in [("fda", &cfg.fda), ("fdb", &cfg.fdb)] {
        if f.is_some() && !built.floppy {
            push(key, "floppy images".to_string());
        }
    }
    let p = &cfg.platform;
    for (off, key, have, what) in [
        (
            !p.acpi,
            "acpi",
            built.acpi_off,
            "running without ACPI (acpi=0)",
        ),
        (
            !p.apic,
            "apic",
            built.apic_off,
            "running without an APIC (apic=0)",
        ),
        (!p.pae, "pae", built.pae_off, "hiding PAE (pae=0)"),
        (p.hpet, "hpet", built.hpet, "the HPET"),
        (
            p.viridian,
            "viridian",
            built.viridian,
            "Hyper-V enlightenments (viridian=1)",
        ),
        (p.isa, "isa", built.isa_only, "an ISA-only machine (isa=1)"),
        (
            !cfg.pci_passthrough.is_empty(),
            "pci",
            built.pci_passthrough,
            "PCI passthrough",
        ),
        (
            cfg.gfx_passthru,
            "gfx_passthru",
            built.pci_passthrough,
            "graphics passthrough",
        ),
        (
            cfg.maxmem_mib > cfg.memory_mib,
            "maxmem",
            built.ballooning,
            "memory ballooning: the guest gets `memory` MiB",
        ),
        (
            cfg.cpus.is_some(),
            "cpus",
            built.cpu_affinity,
            "vCPU affinity",
        ),
        (
            cfg.cpu.is_some(),
            "cpu",
            built.cpu_affinity,
            "vCPU affinity",
        ),
        (
            !cfg.cpuid.is_empty(),
            "cpuid",
            built.cpuid,
            "CPUID overrides",
        ),
        (
            cfg.vcpu_avail.is_some(),
            "vcpu_avail",
            built.vcpu_hotplug,
            "vCPUs offline at boot",
        ),
        (
            cfg.rtc.localtime,
            "localtime",
            built.rtc_offset,
            "an RTC in local time",
        ),
        (
            cfg.rtc.offset_seconds != 0,
            "rtc_timeoffset",
            built.rtc_offset,
            "an RTC offset",
        ),
    ] {
        if off && !have && set(key) {
            push(key, what.to_string());
        }
    }
    for (key, a) in [
        ("on_poweroff", cfg.on_poweroff),
        ("on_reboot", cfg.on_reboot),
        ("on_crash", cfg.on_crash),
    ] {
        if !built.actions.contains(&a) && set(key) {
            push(
                key,
                format!("the action '{}' (the device model exits instead)", a.name()),
            );
        }
    }
    if !p.hap && set("hap") {
        out.push(Notice {
            at: cfg
                .origins
                .get("hap")
                .cloned()
                .unwrap_or_else(|| Origin::File {
                    path: path.to_path_buf(),
                    line: 0,
                }),
            key: "hap".to_string(),
            kind: NoticeKind::NoEffect,
            message: "shadow paging cannot be forced: KVM uses EPT/NPT whenever the host has it"
                .to_string(),
        });
    }
    if p.xen_platform_pci && set("xen_platform_pci") {
        out.push(Notice {
            at: cfg.origins.get("xen_platform_pci").cloned().unwrap_or_else(|| Origin::File { path: path.to_path_buf(), line: 0 }),
            key: "xen_platform_pci".to_string(),
            kind: NoticeKind::NoEffect,
            message: "the Xen platform device serves PV drivers, which need Xen hypercalls; it is not provided".to_string(),
        });
    }
    out
}
