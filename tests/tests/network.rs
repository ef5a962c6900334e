//! Real-guest network tests on KVM: the real `devmodel` binary with `vif` entries, each run inside a private
//! network namespace made for it (`unshare --net`) holding the bridge `xenbr0`, so the host's own network is
//! never touched. SeaBIOS and GRUB are the guests: GRUB's `lspci` lists the NICs, and with `boot='n'` SeaBIOS
//! runs each PCI NIC's iPXE ROM (its banner reaches COM1) and boots the first. iPXE itself then crashes on the CI
//! machines' software KVM (shared/research/kvm-on-these-machines.md), so nothing after its banner is asserted.
//!
//! Needs `/dev/kvm` (else fails unless `DEVMODEL_SKIP_KVM=1`), root with `unshare` and `ip` (else fails unless
//! `DEVMODEL_SKIP_NETNS=1`), and Debian's `ipxe-qemu`, `grub-pc-bin`, `xorriso`, `mtools`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::images;
use common::{devmodel_bin, kvm_available, Guest, TempDir};

const TIMEOUT: Duration = Duration::from_secs(120);

/// Whether namespace tests can run: root, `unshare` and `ip`. Panics when they cannot, unless
/// `DEVMODEL_SKIP_NETNS=1` asks to skip.
fn netns_available() -> bool {
    let works = Command::new("unshare")
        .args(["--net", "ip", "link", "add", "probe0", "type", "bridge"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return true;
    }
    if std::env::var("DEVMODEL_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: cannot make a network namespace with a bridge and DEVMODEL_SKIP_NETNS=1"
        );
        return false;
    }
    panic!(
        "cannot make a private network namespace with a bridge (needs root, unshare and ip from iproute2; \
         set DEVMODEL_SKIP_NETNS=1 to skip these tests explicitly)"
    );
}

/// A launcher that runs `devmodel` in a fresh network namespace with the bridge `xenbr0` up. `unshare` and the
/// shell exec into `devmodel`, so the guest's process id is the namespace's holder.
fn netns_launcher(dir: &Path) -> PathBuf {
    let path = dir.join("devmodel-in-netns");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nexec unshare --net -- /bin/sh -c 'ip link set lo up && ip link add xenbr0 type bridge && \
             ip link set xenbr0 up && exec \"$0\" \"$@\"' {} \"$@\"\n",
            devmodel_bin().display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

/// Runs `ip args` in the network namespace of process `pid`.
fn ip_in(pid: u32, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg("ip")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(name: &str, extra: &str) -> String {
    format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\n\
         nographic = 1\nserial = 'stdio'\nvnc = 0\nacpi = 1\non_poweroff = 'destroy'\n{extra}\n"
    )
}

const THREE_NICS: &str =
    "vif = [ 'type=ioemu, mac=00:16:3e:00:00:21, bridge=xenbr0, model=rtl8139', \
     'type=ioemu, mac=00:16:3e:00:00:22, bridge=xenbr0, model=ne2k_pci', \
     'type=ioemu, mac=00:16:3e:00:00:23, bridge=xenbr0, model=ne2k_isa' ]";

/// Starts `config` in its own namespace.
fn start(launcher_dir: &TempDir, tag: &str, config: &str, args: &[&str]) -> Guest {
    let launcher = netns_launcher(launcher_dir.path());
    Guest::start_with(&launcher, tag, config, args, &[])
}

/// Waits until `probe` holds for the namespace's `ip` output, or panics.
fn wait_ip(guest: &mut Guest, args: &[&str], probe: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = ip_in(guest.pid(), args);
        if probe(&out) {
            return out;
        }
        if Instant::now() > deadline || guest.exited().is_some() {
            panic!(
                "ip {args:?} never showed what was expected:\n{out}\n{}",
                guest.report()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn grub_lspci_lists_both_pci_nics_and_the_taps_join_the_bridge() {
    if !kvm_available() || !netns_available() {
        return;
    }
    let iso = images::grub_iso(
        "network-lspci",
        &format!(
            "{}echo LSPCI-BEGIN\nlspci\necho LSPCI-END\nsleep 3\nhalt\n",
            images::SERIAL_SETUP
        ),
        &[],
    );
    let dir = TempDir::new("net-lspci");
    let extra = format!(
        "boot = 'd'\ndisk = ['file:{},hdc:cdrom,r']\n{THREE_NICS}",
        iso.display()
    );
    let mut guest = start(&dir, "net-lspci", &config("netlspci", &extra), &[]);
    guest.wait_for("GRUB's lspci", TIMEOUT, |_, out| out.contains("LSPCI-END"));
    // While the guest runs: three taps named after the domain id, all on the bridge and up.
    let taps = wait_ip(
        &mut guest,
        &["-o", "link", "show", "master", "xenbr0"],
        |o| o.lines().count() >= 3,
    );
    for tap in ["tap1.0", "tap1.1", "tap1.2"] {
        let line = taps
            .lines()
            .find(|l| l.contains(&format!(" {tap}:")))
            .unwrap_or_else(|| panic!("{tap} is not on xenbr0:\n{taps}\n{}", guest.report()));
        assert!(
            line.contains(",UP") || line.contains("<UP"),
            "{tap} is down: {line}"
        );
    }
    let status = guest.wait_exit(TIMEOUT);
    assert_eq!(
        status.code(),
        Some(0),
        "halt powers off\n{}",
        guest.report()
    );
    let out = guest.stdout();
    for expected in [
        "00:04.0 10ec:8139 [0200] Ethernet Controller",
        "00:05.0 10ec:8029 [0200] Ethernet Controller",
    ] {
        assert!(
            out.contains(expected),
            "missing {expected:?}\n{}",
            guest.report()
        );
    }
    // SeaBIOS enumerated them too, and ran both NICs' iPXE ROMs at POST without booting them (boot='d').
    let fw = guest.firmware();
    assert!(
        fw.contains("PCI: init bdf=00:04.0 id=10ec:8139"),
        "{}",
        guest.report()
    );
    assert!(
        fw.contains("PCI: init bdf=00:05.0 id=10ec:8029"),
        "{}",
        guest.report()
    );
    assert!(
        out.contains("iPXE (http://ipxe.org) 00:04.0"),
        "{}",
        guest.report()
    );
    assert!(
        out.contains("iPXE (http://ipxe.org) 00:05.0"),
        "{}",
        guest.report()
    );
    assert!(!out.contains("starting execution"), "{}", guest.report());
}

#[test]
fn boot_n_runs_the_first_nics_ipxe_rom() {
    if !kvm_available() || !netns_available() {
        return;
    }
    let dir = TempDir::new("net-pxe");
    // The NE2000 first: the boot order follows the vif order, not the model.
    let vifs =
        "vif = [ 'mac=00:16:3e:00:00:31, model=ne2k_pci', 'mac=00:16:3e:00:00:32, model=rtl8139' ]";
    let cfg = config(
        "netpxe",
        &format!("boot = 'n'\non_crash = 'destroy'\n{vifs}"),
    );
    let mut guest = start(&dir, "net-pxe", &cfg, &[]);
    guest.wait_for("iPXE to start", TIMEOUT, |_, out| {
        out.contains("iPXE (PCI 00:04.0) starting execution")
    });
    let out = guest.stdout();
    let fw = guest.firmware();
    guest.kill9();
    assert!(fw.contains("PCI: init bdf=00:04.0 id=10ec:8029"), "{fw}");
    assert!(fw.contains("PCI: init bdf=00:05.0 id=10ec:8139"), "{fw}");
    // Both ROMs ran at POST and installed their boot entries; the bootorder named the NICs in vif order and
    // SeaBIOS booted the first one.
    assert!(out.contains("iPXE (http://ipxe.org) 00:04.0"), "{out}");
    assert!(out.contains("iPXE (http://ipxe.org) 00:05.0"), "{out}");
    assert!(
        fw.contains("Searching bootorder for: /pci@i0cf8/*@4"),
        "{fw}"
    );
    assert!(fw.contains("Booting from ROM..."), "{fw}");
    let banner = out.find("iPXE (http://ipxe.org) 00:04.0").unwrap();
    let booting = out.find("Booting from ROM...").unwrap();
    assert!(banner < booting, "{out}");
}

#[test]
fn a_missing_bridge_stops_the_start_with_how_to_create_it() {
    if !kvm_available() || !netns_available() {
        return;
    }
    let dir = TempDir::new("net-nobridge");
    let cfg = config("netnobr", "vif = [ 'bridge=nosuchbr' ]");
    let mut guest = start(&dir, "net-nobridge", &cfg, &[]);
    let status = guest.wait_exit(Duration::from_secs(30));
    let err = guest.stderr();
    assert_ne!(status.code(), Some(0), "{}", guest.report());
    assert!(
        err.contains("'nosuchbr' does not exist")
            && err.contains("ip link add nosuchbr type bridge"),
        "{}",
        guest.report()
    );
    assert!(
        !guest.firmware().contains("SeaBIOS"),
        "the guest never ran\n{}",
        guest.report()
    );
}

#[test]
fn vifname_script_and_set_link() {
    if !kvm_available() || !netns_available() {
        return;
    }
    let dir = TempDir::new("net-script");
    // A vif script as Xen's were called: SCRIPT TAP BRIDGE. It records its arguments and does the attaching.
    let script = dir.path().join("vif-test");
    let record = dir.path().join("script-args");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" > {}\nip link set \"$1\" master \"$2\" && ip link set \"$1\" up\n",
            record.display()
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let vifs = format!(
        "vif = [ 'vifname=guestnet0, model=rtl8139', 'model=ne2k_pci, script={}' ]",
        script.display()
    );
    // No bootable drive: after the disk SeaBIOS tries the NICs' ROMs too, so keep the crashed guest (iPXE
    // crashes here) instead of restarting it over and over; the device model, its taps and its verbs stay.
    let cfg = config(
        "netscript",
        &format!("boot = 'c'\non_crash = 'preserve'\n{vifs}"),
    );
    let mut guest = start(&dir, "net-script", &cfg, &[]);
    let on_bridge = wait_ip(
        &mut guest,
        &["-o", "link", "show", "master", "xenbr0"],
        |o| o.contains(" guestnet0:") && o.contains(" tap1.1:"),
    );
    assert!(on_bridge.contains("guestnet0"), "{on_bridge}");
    assert_eq!(
        std::fs::read_to_string(&record).unwrap().trim(),
        "tap1.1 xenbr0",
        "the script gets TAP BRIDGE"
    );
    // set-link takes the first NIC's tap down and up again, as QEMU's set_link does.
    let run_dir = guest.dir.path().join("run");
    let set_link = |state: &str| {
        let out = Command::new(devmodel_bin())
            .args(["set-link", "netscript", "0", state])
            .env("DEVMODEL_RUN_DIR", &run_dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "set-link {state}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set_link("down");
    wait_ip(&mut guest, &["-o", "link", "show", "guestnet0"], |o| {
        !o.contains(",UP") && !o.contains("<UP")
    });
    set_link("up");
    wait_ip(&mut guest, &["-o", "link", "show", "guestnet0"], |o| {
        o.contains(",UP") || o.contains("<UP")
    });
    // A NIC the domain does not have is refused.
    let out = Command::new(devmodel_bin())
        .args(["set-link", "netscript", "7", "down"])
        .env("DEVMODEL_RUN_DIR", &run_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no NIC 7"),
        "{out:?}"
    );
}
