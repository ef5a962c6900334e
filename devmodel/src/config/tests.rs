//! Bad input of every class, overrides, xm idioms and hostile input, through the public entry points.

use std::path::{Path, PathBuf};

use devices::chardev::CharSpec;

use super::tests_examples::{host, host_with, FakeFiles};
use super::*;

const BASE: &str = "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = 't'\n";

fn cfg_path() -> &'static Path {
    Path::new("/etc/xen/t.cfg")
}

fn load_text(text: &str, overrides: &[&str]) -> Result<Config, ConfigError> {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_source(cfg_path(), text, &o, &host())
}

fn ok(extra: &str) -> Config {
    match load_text(&format!("{BASE}{extra}"), &[]) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// Loads BASE + `extra` and returns the message, checking the exit code.
fn err(extra: &str) -> String {
    err_with(&format!("{BASE}{extra}"), &[], &host())
}

fn err_with(text: &str, overrides: &[&str], host: &HostFacts) -> String {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match load_source(cfg_path(), text, &o, host) {
        Ok(c) => panic!("accepted:\n{}", c.describe()),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

/// Asserts that `msg` names each of `parts`.
fn names(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{p:?} not in: {msg}");
    }
}

#[test]
fn malformed_syntax() {
    names(
        &err("memory = [1,\n  2\nvcpus = 1\n"),
        &["/etc/xen/t.cfg:6", "syntax error", "found", "expected"],
    );
    names(
        &err("memory = 512 512\n"),
        &["t.cfg:4: syntax error: found the number 512, expected the end of the line"],
    );
    names(
        &err("name = 'unterminated\n"),
        &["t.cfg:4", "line break inside a string"],
    );
    names(&err("memory = 0512\n"), &["t.cfg:4", "octal", "write 512"]);
    names(
        &err("full-screen = 1\n"),
        &[
            "t.cfg:4",
            "'full-screen' on the left of '='",
            "xmexample.hvm",
        ],
    );
    names(&err("for x in y:\n  pass\n"), &["t.cfg:4", "'for'"]);
    names(&err("memory = $\n"), &["t.cfg:4", "found '$'"]);
}

#[test]
fn evaluation_errors_name_the_key() {
    names(
        &err("arch_libdir = 'lib'\ndevice_model = '/usr/' + arch_libdr\n"),
        &[
            "t.cfg:5: device_model: found the name 'arch_libdr'",
            "did you mean 'arch_libdir'",
        ],
    );
    names(
        &err("memory = 'x' + 1\n"),
        &["t.cfg:4: memory: found a string + an integer"],
    );
    names(
        &err("import re\narch = 'x86_64'\nif re.search('6.', arch):\n    memory = 512\n"),
        &[
            "t.cfg:6: if: found the regular expression '6.'",
            "plain-text pattern",
        ],
    );
    names(
        &err("if 1:\n    memory = nothing\n"),
        &["t.cfg:5: memory: found the name 'nothing'"],
    );
}

#[test]
fn unknown_keys_suggest_the_closest() {
    names(
        &err("memroy = 512\n"),
        &["t.cfg:4: memroy: found an unknown key, expected a config key (did you mean 'memory'?)"],
    );
    names(
        &err("frobnicate = 1\n"),
        &[
            "t.cfg:4: frobnicate: found an unknown key",
            "such as name, memory",
        ],
    );
    // A helper variable read later, or a _private one, is not a key.
    let c = ok("base = 200\nmemory = base + 56\n_note = 'x'\n");
    assert_eq!(c.memory_mib, 256);
}

#[test]
fn wrong_types() {
    names(
        &err("memory = 'lots'\n"),
        &["t.cfg:4: memory: found the string 'lots', expected an integer"],
    );
    names(
        &err("vnc = 2\n"),
        &["t.cfg:4: vnc: found an integer 2, expected 0 or 1"],
    );
    names(
        &err("disk = 5\n"),
        &["t.cfg:4: disk: found an integer 5, expected a list of strings"],
    );
    names(
        &err("disk = ['file:/a,hda,w', 7]\n"),
        &["disk: found item 2 of the list is an integer 7"],
    );
    names(
        &err("vncunused = 'maybe'\n"),
        &["t.cfg:4: vncunused: found the string 'maybe', expected 0 or 1"],
    );
    names(
        &err("name = ['a']\n"),
        &["t.cfg:4: name: found a list ['a'], expected a string"],
    );
    // xm's int() conversion of numeric strings is kept.
    assert_eq!(ok("memory = '300'\n").memory_mib, 300);
}

#[test]
fn impossible_values() {
    names(
        &err("memory = 0\n"),
        &["t.cfg:4: memory: found 0 MiB, expected at least 2 MiB"],
    );
    names(
        &err("memory = 5000\n"),
        &["t.cfg:4: memory: found 5000 MiB, expected at most the host's 4096 MiB"],
    );
    names(
        &err("memory = -5\n"),
        &["t.cfg:4: memory: found -5, expected MiB from 0"],
    );
    names(
        &err("vcpus = 0\n"),
        &["t.cfg:4: vcpus: found 0, expected 1 to 8 (this host's limit)"],
    );
    names(
        &err("vcpus = 9\n"),
        &["t.cfg:4: vcpus: found 9, expected 1 to 8"],
    );
    names(
        &err("memory = 512\nmaxmem = 256\n"),
        &["t.cfg:5: maxmem: found 256 MiB, below memory=512"],
    );
    names(
        &err("boot = 'cx'\n"),
        &["t.cfg:4: boot: found 'cx' with the letter 'x', expected up to three distinct boot letters a"],
    );
    names(
        &err("on_reboot = 'explode'\n"),
        &["t.cfg:4: on_reboot: found 'explode', expected one of destroy, restart"],
    );
    names(
        &err("keymap = 'dvorak'\n"),
        &[
            "t.cfg:4: keymap: found the unknown layout 'dvorak'",
            "en-us",
        ],
    );
    names(
        &err("vnc = 1\nvnclisten = 'not an address'\n"),
        &["t.cfg:5: vnclisten: found 'not an address'"],
    );
    names(&err("serial = ['pty'] * 5\n"), &["'*'"]);
    names(
        &err("serial = ['pty','pty','pty','pty','null']\n"),
        &["t.cfg:4: serial: found 5 serial ports, expected at most 4"],
    );
    names(
        &err("serial = 'tcp:host:99999'\n"),
        &["t.cfg:4: serial: found 'tcp:host:99999', expected bad TCP port"],
    );
    names(
        &err("builder = 'hvm2'\n"),
        &["t.cfg:4: builder: found 'hvm2', expected 'hvm'"],
    );
    names(
        &err("uuid = 'nope'\n"),
        &["t.cfg:4: uuid: found 'nope', expected a UUID"],
    );
}

#[test]
fn duplicate_ide_slots() {
    names(
        &err("disk = ['file:/a.img,hda,w',\n        'file:/b.img,ioemu:hda,w']\n"),
        &["t.cfg:4: disk: found two disks in the hda slot ('hda' and 'ioemu:hda'), expected at most one disk per IDE slot"],
    );
}

#[test]
fn missing_image_and_read_only_image() {
    let files = FakeFiles {
        missing: vec![PathBuf::from("/img/gone.img")],
        read_only: vec![PathBuf::from("/img/ro.img")],
    };
    let msg = err_with(
        &format!("{BASE}disk = ['file:/img/gone.img,hda,w']\n"),
        &[],
        &host_with(files),
    );
    names(
        &msg,
        &["t.cfg:4: disk: found '/img/gone.img', which does not exist, expected an existing file"],
    );

    let files = FakeFiles {
        missing: vec![],
        read_only: vec![PathBuf::from("/img/ro.img")],
    };
    let msg = err_with(
        &format!("{BASE}disk = ['file:/img/ro.img,hda,w']\n"),
        &[],
        &host_with(files),
    );
    names(
        &msg,
        &[
            "t.cfg:4: disk: found '/img/ro.img' opened read-write, but it is read-only on the host",
            "mode r",
        ],
    );

    // The same read-only file is fine for a read-only disk or a CD-ROM.
    let files = FakeFiles {
        missing: vec![],
        read_only: vec![PathBuf::from("/img/ro.img")],
    };
    let text = format!("{BASE}disk = ['file:/img/ro.img,hda,r', 'file:/img/ro.img,hdc:cdrom,w']\n");
    let c = load_source(cfg_path(), &text, &[], &host_with(files)).unwrap();
    assert_eq!(c.disks[1].mode, DiskMode::ReadOnly);

    // An empty CD-ROM drive has no file to check.
    assert_eq!(ok("disk = [',hdc:cdrom,r']\n").disks[0].path, None);
}

#[test]
fn unknown_nic_model_and_sound_card() {
    names(&err("vif = ['type=ioemu, model=virtio']\n"), &["t.cfg:4: vif: found the unknown NIC model 'virtio', expected one of rtl8139, ne2k_pci, ne2k_isa"]);
    names(
        &err("soundhw = 'sb16,hda'\n"),
        &["t.cfg:4: soundhw: found the unknown sound card 'hda', expected a comma list of sb16"],
    );
    // Models qemu-dm had but this build lacks are notices, not errors.
    let c = ok("vif = ['model=e1000']\n");
    assert_eq!(c.nics[0].model, NicModel::E1000);
    assert!(c
        .unsupported
        .iter()
        .any(|n| n.key == "vif" && n.message.contains("e1000")));
}

#[test]
fn missing_name() {
    let msg = err_with("builder = 'hvm'\nmemory = 256\n", &[], &host());
    names(
        &msg,
        &["/etc/xen/t.cfg: name: found no name key, expected a domain name"],
    );
}

#[test]
fn overrides_win_and_name_the_command_line() {
    let c = load_text(
        &format!("{BASE}memory = 256\nboot = 'c'\n"),
        &[
            "memory=512",
            "boot=dc",
            "vnc=1",
            "vnclisten=0.0.0.0",
            "disk=file:/x.img,hda,w",
        ],
    )
    .unwrap();
    assert_eq!(c.memory_mib, 512);
    assert_eq!(
        c.boot_order.devices(),
        &[BootDevice::Cdrom, BootDevice::Disk]
    );
    assert_eq!(
        c.display.vnc.as_ref().map(|v| v.listen.as_str()),
        Some("0.0.0.0")
    );
    assert_eq!(c.disks[0].path, Some(PathBuf::from("/x.img")));
    assert_eq!(
        c.origins.get("memory"),
        Some(&Origin::CommandLine {
            arg: "memory=512".into()
        })
    );
    // Python syntax works too, including the file's variables.
    let c = load_text(
        &format!("{BASE}extra_disk = 'file:/y.img,hdb,w'\ndisk = ['file:/x.img,hda,w']\n"),
        &["disk=disk + [extra_disk]"],
    )
    .unwrap();
    assert_eq!(c.disks.len(), 2);
    // A name that is not a key is a variable set before the file runs, as xm's VAR=VAL.
    let c = load_text(
        &format!("{BASE}device_model = '/usr/' + arch_libdir + '/xen/bin/qemu-dm'\n"),
        &["arch_libdir=lib64"],
    )
    .unwrap();
    assert_eq!(
        c.device_model,
        Some(PathBuf::from("/usr/lib64/xen/bin/qemu-dm"))
    );

    names(
        &err_with(BASE, &["memory=0"], &host()),
        &["command line 'memory=0': memory: found 0 MiB, expected at least 2 MiB"],
    );
    names(
        &err_with(BASE, &["vcpus=many"], &host()),
        &["command line 'vcpus=many': vcpus: found the string 'many', expected an integer"],
    );
    names(
        &err_with(BASE, &["memroy=512"], &host()),
        &[
            "command line 'memroy=512': memroy: found an unknown key",
            "did you mean 'memory'",
        ],
    );
    names(
        &err_with(BASE, &["memory"], &host()),
        &["command line 'memory': found no '='"],
    );
    names(
        &err_with(BASE, &["disk=['x'"], &host()),
        &["command line 'disk=['x'': syntax error"],
    );
    names(
        &err_with(BASE, &["full-screen=1"], &host()),
        &["command line 'full-screen=1'", "a key name"],
    );
}

#[test]
fn pv_config_without_builder_is_refused() {
    let msg = err_with("kernel = '/boot/vmlinuz-xen'\nname = 'pv'\ndisk = ['phy:/dev/vg/pv,xvda1,w']\nroot = '/dev/xvda1 ro'\n", &[], &host());
    names(
        &msg,
        &[
            "t.cfg: found a paravirtualized (PV) guest config",
            "builder = 'hvm'",
            "'xvda1' -> 'hda'",
            "root only apply to a direct kernel boot",
        ],
    );
    // A PV config is refused before its PV-only keys could be called unknown.
    let msg = err_with(
        "kernel = '/boot/vmlinuz-xen'\nname = 'pv'\nbootloader = '/usr/bin/pygrub'\nfoo = 1\n",
        &[],
        &host(),
    );
    names(&msg, &["paravirtualized", "remove bootloader"]);
}

#[test]
fn xm_idioms() {
    let text = r#"# Python-style xm config
import os, re
arch = os.uname()[4]
if re.search('64', arch):
    arch_libdir = 'lib64'
else:
    arch_libdir = 'lib'
kernel = "/usr/lib/xen/boot/hvmloader"
builder = 'hvm'
name = "idioms"
memory = \
    256
disk = [ 'file:/var/images/a.img,hda,w',   # comment inside a list
         'file:/var/images/b.iso,hdc:cdrom,r',
       ]
disk += ['file:/var/images/c.img,hdb,w']
device_model = '/usr/' + arch_libdir + '/xen/bin/qemu-dm'
description = """A guest
with a long description"""
vif = [ 'mac=00:16:3e:%02x:00:%s, model=%s' % (1, '0a', 'ne2k_pci') ]
vcpus = 0x2
rtc_timeoffset = -3600
acpi = True; apic = False
usbdevice = None
"#;
    let e = load_text(text, &[]);
    // '%02x' is outside the supported conversions: the error says what is supported.
    let msg = e.unwrap_err().to_string();
    names(
        &msg,
        &["vif: found the conversion '%0'", "%s, %d, %i, %x, %X or %%"],
    );

    let text = text.replace("%02x", "%x");
    let c = load_text(&text, &[]).unwrap();
    assert!(c
        .device_model
        .as_ref()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with("/xen/bin/qemu-dm"));
    assert_eq!(c.memory_mib, 256);
    assert_eq!(c.disks.len(), 3);
    assert_eq!(c.disks[2].slot, IdeSlot::Hdb);
    assert_eq!(
        c.description.as_deref(),
        Some("A guest\nwith a long description")
    );
    assert_eq!(c.nics[0].mac.to_string(), "00:16:3e:01:00:0a");
    assert_eq!(c.nics[0].model, NicModel::Ne2kPci);
    assert_eq!(c.vcpus, 2);
    assert_eq!(c.rtc.offset_seconds, -3600);
    assert!(c.platform.acpi && !c.platform.apic);
    assert!(c.usb.devices.is_empty() && !c.usb.controller);
    // Line numbers follow continuation lines and multi-line lists.
    assert_eq!(
        c.origins.get("memory"),
        Some(&Origin::File {
            path: cfg_path().into(),
            line: 11
        })
    );
    assert_eq!(
        c.origins.get("device_model"),
        Some(&Origin::File {
            path: cfg_path().into(),
            line: 17
        })
    );
}

#[test]
fn serial_defaults_and_forms() {
    assert_eq!(ok("").serial, vec![CharSpec::Null]);
    assert_eq!(ok("nographic = 1\n").serial, vec![CharSpec::Stdio]);
    assert_eq!(ok("serial = []\n").serial, vec![]);
    assert_eq!(
        ok("serial = ['pty', 'file:/tmp/com2.log']\n").serial,
        vec![CharSpec::Pty, CharSpec::File("/tmp/com2.log".into())]
    );
    let c = ok("serial = 'vc'\n");
    assert_eq!(c.serial, vec![CharSpec::Null]);
    assert!(c
        .unsupported
        .iter()
        .any(|n| n.key == "serial" && n.message.contains("'vc'")));
}

#[test]
fn direct_kernel_boot_is_resolved_and_reported() {
    let text = "builder = 'hvm'\nname = 'k'\nkernel = '/boot/vmlinuz'\nramdisk = '/boot/initrd'\nroot = '/dev/hda1 ro'\nextra = 'console=ttyS0'\n";
    let c = load_text(text, &[]).unwrap();
    assert_eq!(
        c.boot,
        Boot::Kernel {
            path: "/boot/vmlinuz".into(),
            ramdisk: Some("/boot/initrd".into()),
            cmdline: "root=/dev/hda1 ro console=ttyS0".into()
        }
    );
    assert!(
        c.unsupported.is_empty(),
        "a direct boot is supported: {:?}",
        c.unsupported
    );
    let files = FakeFiles {
        missing: vec![PathBuf::from("/boot/initrd")],
        read_only: vec![],
    };
    names(
        &err_with(text, &[], &host_with(files)),
        &["t.cfg:4: ramdisk: found '/boot/initrd', which does not exist"],
    );
    // With firmware boot, root/extra are reported as having no effect.
    let c = ok("root = '/dev/hda1'\n");
    assert!(c
        .unsupported
        .iter()
        .any(|n| n.key == "root" && n.kind == NoticeKind::NoEffect));
}

#[test]
fn xen_only_keys_are_accepted_with_a_notice() {
    let c = ok("shadow_memory = 8\ntimer_mode = 2\ncpu_weight = 512\n");
    for key in ["shadow_memory", "timer_mode", "cpu_weight"] {
        assert!(
            c.unsupported
                .iter()
                .any(|n| n.key == key && n.kind == NoticeKind::NoEffect),
            "{key}"
        );
    }
}

#[test]
fn nics_pads_with_default_nics() {
    let c = ok("nics = 3\nvif = ['mac=00:16:3e:00:00:01']\n");
    assert_eq!(c.nics.len(), 3);
    assert!(!c.nics[0].mac_generated && c.nics[1].mac_generated && c.nics[2].mac_generated);
    names(
        &err("vif = ['mac=00:16:3e:00:00:01', 'mac=00:16:3e:00:00:01']\n"),
        &["vif: found two NICs with the MAC address 00:16:3e:00:00:01"],
    );
}

#[test]
fn files_too_large_or_not_text_are_refused() {
    let dir = std::env::temp_dir().join(format!("cfgtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.cfg");
    std::fs::write(&big, vec![b'#'; (MAX_FILE_SIZE + 1) as usize]).unwrap();
    let e = load(&big, &[], &host()).unwrap_err();
    assert!(matches!(e, ConfigError::TooLarge { .. }), "{e}");
    assert_eq!(e.exit_code(), 2);
    let bin = dir.join("bin.cfg");
    std::fs::write(&bin, b"name = 'x'\n\xff\xfe\n").unwrap();
    names(
        &load(&bin, &[], &host()).unwrap_err().to_string(),
        &["bin.cfg:2: syntax error: found bytes that are not UTF-8"],
    );
    names(
        &load(&dir.join("absent.cfg"), &[], &host())
            .unwrap_err()
            .to_string(),
        &["cannot read", "absent.cfg"],
    );
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        load_text(&"#".repeat(MAX_FILE_SIZE as usize + 1), &[]),
        Err(ConfigError::TooLarge { .. })
    ));
}

#[test]
fn hostile_input_is_refused_without_panic() {
    // Deep nesting of every kind.
    for open in ["[", "(", "-", "not ", "os.uname()[", "str("] {
        let text = format!("{BASE}memory = {}1\n", open.repeat(50_000));
        let msg = err_with(&text, &[], &host());
        assert!(msg.contains("nesting deeper than 64"), "{open}: {msg}");
    }
    // Exponential growth through variables.
    let grow = format!("{BASE}x = 'abcdefghijklmnop'\n{}", "x = x + x\n".repeat(40));
    names(&err_with(&grow, &[], &host()), &["evaluation limit"]);
    // Pseudo-random bytes and token soup.
    let mut seed: u64 = 0x1234_5678;
    let alphabet = b"abcxyz019_ =+-%[](),.:'\"\\#\n\t{}*<>!";
    for round in 0..300 {
        let len = 1 + (round * 37) % 400;
        let text: String = (0..len)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                alphabet[(seed >> 33) as usize % alphabet.len()] as char
            })
            .collect();
        let _ = load_text(&text, &[]);
        let _ = load_text(&format!("{BASE}{text}"), &[&text]);
    }
}

#[test]
fn sdl_window_settings() {
    let c = ok("sdl = 1\nfullscreen = 1\nopengl = 0\ndisplay = ':3'\nxauthority = '/x/auth'\n");
    let sdl = c.display.sdl.as_ref().unwrap();
    assert!(sdl.full_screen && !sdl.opengl);
    assert_eq!(sdl.x_display.as_deref(), Some(":3"));
    assert_eq!(sdl.xauthority.as_deref(), Some("/x/auth"));
    assert!(c
        .describe()
        .contains("sdl:        on, OpenGL off, full screen"));
    // Off by default; type-checked even while sdl is off.
    assert!(!ok("sdl = 1\n").display.sdl.unwrap().full_screen);
    names(&err("fullscreen = 'big'\n"), &["fullscreen"]);
    // The window is there exactly when the binary was built with the `sdl` feature.
    let notices: Vec<_> = c.unsupported.iter().filter(|n| n.key == "sdl").collect();
    if cfg!(feature = "sdl") {
        assert!(notices.is_empty(), "{notices:?}");
    } else {
        assert_eq!(notices.len(), 1, "{:?}", c.unsupported);
        assert_eq!(notices[0].kind, NoticeKind::NotAvailable);
        assert!(notices[0].to_string().contains("--features sdl"));
    }
    // nographic still wins.
    assert!(ok("sdl = 1\nnographic = 1\n").display.sdl.is_none());
}
