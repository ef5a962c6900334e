//! The example files of the project's shared test data, read as documented.

use std::path::{Path, PathBuf};

use devices::chardev::CharSpec;

use super::*;

pub(super) const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/examples");

/// A file probe with chosen missing and read-only paths; everything else exists and is writable.
#[derive(Default)]
pub(super) struct FakeFiles {
    pub missing: Vec<PathBuf>,
    pub read_only: Vec<PathBuf>,
}

impl FileProbe for FakeFiles {
    fn probe(&self, path: &Path) -> FileState {
        if self.missing.iter().any(|p| p == path) {
            FileState::Missing
        } else if self.read_only.iter().any(|p| p == path) {
            FileState::ReadOnly
        } else {
            FileState::Writable
        }
    }
}

pub(super) fn host() -> HostFacts {
    host_with(FakeFiles::default())
}

pub(super) fn host_with(files: FakeFiles) -> HostFacts {
    HostFacts {
        memory_mib: 4096,
        max_vcpus: 8,
        files: Box::new(files),
    }
}

fn example(name: &str) -> PathBuf {
    let p = Path::new(EXAMPLES).join(name);
    assert!(
        p.exists(),
        "test data {} is missing (the repo must sit beside shared/)",
        p.display()
    );
    p
}

fn load_example(name: &str) -> Config {
    match load(&example(name), &[], &host()) {
        Ok(c) => c,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn notice<'a>(cfg: &'a Config, key: &str, kind: NoticeKind) -> Vec<&'a Notice> {
    cfg.unsupported
        .iter()
        .filter(|n| n.key == key && n.kind == kind)
        .collect()
}

fn line_of(cfg: &Config, key: &str) -> u32 {
    match cfg.origins.get(key) {
        Some(Origin::File { line, .. }) => *line,
        other => panic!("{key}: {other:?}"),
    }
}

#[test]
fn every_key_hvm_resolves_each_key() {
    let c = load_example("every-key.hvm");
    assert_eq!(c.name, "everykey");
    assert_eq!(
        c.boot,
        Boot::Firmware {
            loader: "/usr/lib/xen/boot/hvmloader".into()
        }
    );
    assert_eq!((c.memory_mib, c.maxmem_mib, c.vcpus), (384, 384, 2));
    assert_eq!(
        c.platform,
        Platform {
            acpi: true,
            apic: true,
            pae: true,
            hap: true,
            viridian: false,
            hpet: false,
            xen_platform_pci: true,
            isa: false
        }
    );
    assert_eq!(c.nics.len(), 2);
    assert_eq!(
        (
            c.nics[0].model,
            c.nics[0].mac.to_string(),
            c.nics[0].bridge.as_str()
        ),
        (NicModel::Rtl8139, "00:16:3e:00:00:21".to_string(), "xenbr0")
    );
    assert_eq!(
        (c.nics[1].model, c.nics[1].mac.to_string()),
        (NicModel::Ne2kPci, "00:16:3e:00:00:22".to_string())
    );
    assert!(c.nics.iter().all(|n| !n.mac_generated && n.emulated));

    let d: Vec<(IdeSlot, Media, DiskBackend, Option<&str>, DiskMode)> = c
        .disks
        .iter()
        .map(|d| {
            (
                d.slot,
                d.media,
                d.backend,
                d.path.as_deref().and_then(Path::to_str),
                d.mode,
            )
        })
        .collect();
    assert_eq!(
        d,
        vec![
            (
                IdeSlot::Hda,
                Media::Disk,
                DiskBackend::File,
                Some("/var/images/image1.img"),
                DiskMode::ReadWrite
            ),
            (
                IdeSlot::Hdb,
                Media::Disk,
                DiskBackend::Phy,
                Some("/dev/hda1"),
                DiskMode::ReadWrite
            ),
            (
                IdeSlot::Hdc,
                Media::Cdrom,
                DiskBackend::File,
                Some("/var/images/install1.iso"),
                DiskMode::ReadOnly
            ),
        ]
    );
    assert_eq!(c.disks[1].target, "hdb1");
    assert_eq!(
        c.boot_order.devices(),
        &[BootDevice::Floppy, BootDevice::Cdrom, BootDevice::Disk]
    );
    assert_eq!(c.device_model, Some("/usr/lib/xen/bin/qemu-dm".into()));
    assert_eq!(c.display.vga, Vga::Std);
    assert_eq!(c.display.videoram_mib, 8);
    assert_eq!(c.display.keymap, "en-us");
    assert!(c.display.sdl.is_none() && !c.display.nographic);
    let vnc = c.display.vnc.clone().unwrap();
    assert_eq!(
        (
            vnc.listen.as_str(),
            vnc.display,
            vnc.find_unused,
            vnc.viewer
        ),
        ("0.0.0.0", Some(3), false, false)
    );
    assert_eq!(vnc.password, Some(Password("secret12".into())));
    assert_eq!(c.serial, vec![CharSpec::Pty]);
    assert_eq!(
        c.usb,
        Usb {
            controller: true,
            devices: vec![UsbDevice::Tablet]
        }
    );
    assert_eq!(
        c.sound,
        vec![SoundCard::Sb16, SoundCard::Es1370, SoundCard::Ac97]
    );
    assert_eq!(
        c.rtc,
        Rtc {
            localtime: true,
            offset_seconds: 0
        }
    );
    assert_eq!(
        (c.on_poweroff, c.on_reboot, c.on_crash),
        (Action::Destroy, Action::Restart, Action::Preserve)
    );

    // Line numbers of multi-line assignments are those of the key.
    assert_eq!(
        (
            line_of(&c, "vif"),
            line_of(&c, "disk"),
            line_of(&c, "on_crash")
        ),
        (12, 14, 37)
    );
    // hdb1: the partition number is reported, not silently dropped.
    let hdb1 = notice(&c, "disk", NoticeKind::NoEffect);
    assert!(
        hdb1.iter()
            .any(|n| n.message.contains("hdb1") && n.message.contains("whole emulated hdb")),
        "{hdb1:?}"
    );
    // Devices this build does not have yet are each listed.
    for key in ["usb", "usbdevice", "soundhw"] {
        assert!(
            !notice(&c, key, NoticeKind::NotAvailable).is_empty(),
            "{key}: {:#?}",
            c.unsupported
        );
    }
    assert_eq!(notice(&c, "soundhw", NoticeKind::NotAvailable).len(), 3);
    let usb = &notice(&c, "usb", NoticeKind::NotAvailable)[0];
    assert!(
        usb.to_string()
            .contains(": usb: not available in this build"),
        "{usb}"
    );
    // Defaults and features we honour raise nothing.
    for key in [
        "vif",
        "memory",
        "vcpus",
        "acpi",
        "apic",
        "pae",
        "boot",
        "on_poweroff",
        "on_crash",
        "serial",
        "localtime",
        "keymap",
        "name",
        "vnc",
        "stdvga",
        "videoram",
    ] {
        assert!(
            c.unsupported.iter().all(|n| n.key != key),
            "{key}: {:#?}",
            c.unsupported
        );
    }
}

#[test]
fn hvmguest_hvm_with_imports_and_variables() {
    let c = load_example("hvmguest.hvm");
    assert_eq!(c.name, "hvmguest");
    assert_eq!(c.device_model, Some("/usr/lib/xen/bin/qemu-dm".into()));
    assert_eq!((c.memory_mib, c.vcpus), (256, 1));
    assert_eq!(
        c.boot_order.devices(),
        &[BootDevice::Cdrom, BootDevice::Disk]
    );
    assert_eq!(c.disks.len(), 2);
    assert_eq!(
        (c.disks[0].slot, c.disks[0].path.as_deref()),
        (IdeSlot::Hda, Some(Path::new("/var/images/your-hd.img")))
    );
    assert_eq!(
        (c.disks[1].slot, c.disks[1].media),
        (IdeSlot::Hdc, Media::Cdrom)
    );
    assert_eq!(c.nics[0].mac.to_string(), "00:16:3e:00:00:11");
    let vnc = c.display.vnc.clone().unwrap();
    assert_eq!(
        (
            vnc.listen.as_str(),
            vnc.display,
            vnc.find_unused,
            vnc.password
        ),
        ("127.0.0.1", None, true, None)
    );
    assert_eq!(c.display.vga, Vga::Cirrus);
    assert_eq!(c.display.videoram_mib, 4);
    assert_eq!(c.sound, vec![SoundCard::Sb16]);
    assert_eq!(c.usb.devices, vec![UsbDevice::Tablet]);
    assert!(!c.rtc.localtime);
    assert_eq!(c.on_crash, Action::Restart);
    // `arch_libdir` is a helper variable, not an unknown key.
    assert!(!c.origins.contains_key("arch_libdir"));
}

#[test]
fn install_from_iso_hvm_gets_defaults() {
    let c = load_example("install-from-iso.hvm");
    assert_eq!(
        (c.name.as_str(), c.memory_mib, c.maxmem_mib, c.vcpus),
        ("installer", 512, 512, 1)
    );
    assert_eq!(c.nics.len(), 1);
    let nic = &c.nics[0];
    assert_eq!(
        (nic.model, nic.bridge.as_str(), nic.mac_generated),
        (NicModel::Ne2kPci, "xenbr0", true)
    );
    assert_eq!(&nic.mac.0[..3], &[0x00, 0x16, 0x3e]);
    assert!(nic.mac.0[3] < 0x80);
    // usbdevice implies the controller even without usb=1.
    assert!(c.usb.controller);
    assert_eq!(c.sound, vec![SoundCard::Es1370]);
    assert_eq!(c.on_reboot, Action::Restart);
    assert_eq!(c.serial, vec![CharSpec::Pty]);
    assert_eq!(
        c.display
            .vnc
            .as_ref()
            .map(|v| (v.listen.as_str(), v.display)),
        Some(("127.0.0.1", None))
    );
    // The VNC server is built; the default Cirrus VGA is not, and the stand-in is announced.
    assert!(notice(&c, "vnc", NoticeKind::NotAvailable).is_empty());
    let vga = notice(&c, "stdvga", NoticeKind::NoEffect);
    assert!(
        vga.len() == 1 && vga[0].message.contains("standard VGA"),
        "{vga:?}"
    );
}

#[test]
fn pv_examples_are_refused_with_what_to_change() {
    for (file, renames) in [
        ("alt-pv.cfg", vec!["'hda1' -> 'hda'"]),
        ("centos5-pv.cfg", vec!["'sda1' -> 'hda'"]),
        ("vine31qemu-pv.cfg", vec!["'hdb1' -> 'hdb'"]),
        ("vine31u-pv.cfg", vec!["'hdb1' -> 'hdb'", "'hdb2' -> 'hda'"]),
    ] {
        let err = load(&example(file), &[], &host()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let ConfigError::NotHvm { explanation, .. } = &err else {
            panic!("{file}: {err}")
        };
        let msg = err.to_string();
        assert!(
            msg.contains(file) && msg.contains("paravirtualized (PV)"),
            "{msg}"
        );
        for want in [
            "builder = 'hvm'",
            "kernel = '/usr/lib/xen/boot/hvmloader'",
            "drivers for emulated PC hardware",
        ] {
            assert!(explanation.contains(want), "{file}: {want}\n{explanation}");
        }
        for r in renames {
            assert!(explanation.contains(r), "{file}: {r}\n{explanation}");
        }
    }
    let centos = load(&example("centos5-pv.cfg"), &[], &host())
        .unwrap_err()
        .to_string();
    assert!(
        centos.contains("root, ramdisk only apply to a direct kernel boot"),
        "{centos}"
    );
    let vine = load(&example("vine31qemu-pv.cfg"), &[], &host())
        .unwrap_err()
        .to_string();
    assert!(vine.contains("type=ioemu"), "{vine}");
}

#[test]
fn describe_renders_the_machine() {
    let c = load_example("every-key.hvm");
    let text = c.describe();
    for want in [
        "guest:      everykey",
        "boot order: floppy (a), CD-ROM (d), hard disk (c)",
        "memory:     384 MiB",
        "vcpus:      2",
        "ide hda:    disk  file /var/images/image1.img, read-write",
        "ide hdc:    cdrom file /var/images/install1.iso, read-only",
        "nic 0:      rtl8139 mac 00:16:3e:00:00:21 bridge xenbr0",
        "vga:        standard VGA (Bochs VBE), 8 MiB",
        "vnc:        0.0.0.0:3 (port 5903), password, keymap en-us",
        "serial:     COM1 pty",
        "usb:        UHCI controller; devices: tablet",
        "sound:      sb16, es1370, ac97",
        "actions:    poweroff destroy, reboot restart, crash preserve",
        "notices:",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("secret12"),
        "the VNC password must not be printed"
    );
}
