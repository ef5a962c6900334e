//! Real-guest storage tests on KVM: GRUB 2 ISOs built by the tests with Debian's `grub-mkrescue` boot from our
//! ATAPI CD-ROM on PIIX3 IDE, talk on COM1 and power off through ACPI.
//!
//! Needs `/dev/kvm` and Debian's grub-pc-bin, grub-common, xorriso and mtools (scripts/setup.sh installs them);
//! fails loudly without KVM unless `DEVMODEL_SKIP_KVM=1` is set.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{kvm_available, Guest, TempDir};

const GRUB_TIMEOUT: Duration = Duration::from_secs(120);

/// Serial console set-up every test script starts with.
const SERIAL: &str =
    "serial --unit=0 --speed=115200\nterminal_output serial\nterminal_input serial\n";

/// A GRUB El Torito ISO whose grub.cfg is `script`, built into `dir`.
fn grub_iso(dir: &Path, script: &str) -> PathBuf {
    let root = dir.join("iso-root");
    std::fs::create_dir_all(root.join("boot/grub")).unwrap();
    std::fs::write(root.join("boot/grub/grub.cfg"), format!("{SERIAL}{script}")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello from the CD\n").unwrap();
    let iso = dir.join("grub.iso");
    let out = Command::new("grub-mkrescue")
        .args(["-d", "/usr/lib/grub/i386-pc", "-o"])
        .arg(&iso)
        .arg(&root)
        .output()
        .expect("grub-mkrescue (Debian packages grub-pc-bin, grub-common, xorriso, mtools)");
    assert!(
        out.status.success(),
        "grub-mkrescue failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    iso
}

fn config(name: &str, extra: &str) -> String {
    format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\n\
         serial = 'stdio'\nacpi = 1\non_poweroff = 'destroy'\non_crash = 'destroy'\n{extra}\n"
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn boot_dc_boots_grub_from_the_cd_and_grub_powers_off() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("grub-cd");
    let iso = grub_iso(
        dir.path(),
        "echo ISO-BOOTED\nlspci\nls\ncat (cd)/hello.txt\nhalt\n",
    );
    let before = sha256(&iso);
    let extra = format!("boot = 'dc'\ndisk = ['file:{},hdc:cdrom,r']", iso.display());
    let mut guest = Guest::start("grub-cd", &config("grubcd", &extra), &[]);
    let status = guest.wait_exit(GRUB_TIMEOUT);
    let out = guest.stdout();
    assert_eq!(
        status.code(),
        Some(0),
        "halt powers off cleanly\n{}",
        guest.report()
    );
    for expected in [
        "ISO-BOOTED",
        "00:01.1 8086:7010 [0101] IDE Controller",
        "(cd)",
        "hello from the CD",
    ] {
        assert!(
            out.contains(expected),
            "missing {expected:?}\n{}",
            guest.report()
        );
    }
    let fw = guest.firmware();
    assert!(
        fw.contains("DVD/CD [ata1-0: QEMU DVD-ROM ATAPI-4 DVD/CD]"),
        "{}",
        guest.report()
    );
    assert!(fw.contains("Booting from DVD/CD..."), "{}", guest.report());
    assert_eq!(
        sha256(&iso),
        before,
        "a read-only CD image is never written"
    );
}

#[test]
fn an_empty_drive_gets_a_cd_through_block_configure() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("grub-insert");
    let iso = grub_iso(dir.path(), "echo INSERTED-CD-BOOTED\nhalt\n");
    let mut guest = Guest::start(
        "grub-insert",
        &config(
            "insert",
            "boot = 'dc'\ndisk = [ ',hdc:cdrom,r' ]\non_reboot = 'restart'",
        ),
        &["--boot-fail-wait", "1000"],
    );
    guest.wait_firmware("MEDIUM NOT PRESENT", GRUB_TIMEOUT);
    guest.wait_firmware("No bootable device", GRUB_TIMEOUT);
    let out = Command::new(common::devmodel_bin())
        .args(["block-configure", "insert", "hdc:cdrom"])
        .arg(format!("file:{}", iso.display()))
        .env("DEVMODEL_RUN_DIR", guest.dir.path().join("run"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SeaBIOS retries a second later, now finds the CD and boots it.
    let status = guest.wait_exit(GRUB_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    assert!(
        guest.stdout().contains("INSERTED-CD-BOOTED"),
        "{}",
        guest.report()
    );
}
