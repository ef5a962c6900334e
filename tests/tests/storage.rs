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

use common::images::{self, GrubHash};
use common::{kvm_available, Guest, TempDir};

const GRUB_TIMEOUT: Duration = Duration::from_secs(120);

/// A GRUB ISO whose script is `script` (after the serial set-up), with a file `hello.txt` on it.
fn grub_iso(tag: &str, script: &str) -> PathBuf {
    images::grub_iso(
        tag,
        &format!("{}{script}", images::SERIAL_SETUP),
        &[("hello.txt", b"hello from the CD\n")],
    )
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
    let iso = grub_iso(
        "storage-cd",
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
    let iso = grub_iso("storage-insert", "echo INSERTED-CD-BOOTED\nhalt\n");
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

/// The headline path: boot='dc' boots the install ISO from the CD; GRUB (the "installer") reads and checksums a
/// payload on the IDE disk through the BIOS and through its own ATA/ATAPI driver, writes to the disk both ways
/// (`save_env`) and powers off. The host then finds the written values in the image, and the ISO unchanged.
#[test]
fn install_from_iso_reads_and_writes_the_disk_through_bios_and_native_ata() {
    if !kvm_available() {
        return;
    }
    let scenario = images::cd_and_disk(GrubHash::Crc32, 512 * 1024);
    let dir = TempDir::new("install");
    let disk = images::writable_copy(&scenario.disk, dir.path());
    let iso_before = sha256(&scenario.iso);
    let extra = format!(
        "boot = 'dc'\ndisk = ['file:{},ioemu:hda,w', 'file:{},hdc:cdrom,r']",
        disk.display(),
        scenario.iso.display()
    );
    let mut guest = Guest::start("install", &config("install", &extra), &[]);
    let status = guest.wait_exit(Duration::from_secs(400));
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    if let Err(why) = scenario.check(guest.stdout().as_bytes(), &disk) {
        panic!("{why}\n{}", guest.report());
    }
    assert_eq!(
        sha256(&scenario.iso),
        iso_before,
        "the ISO is bit-for-bit unchanged"
    );
}

/// A disk made bootable on the host (GRUB boot sector and core image from Debian's GRUB tools) boots with boot='c'.
#[test]
fn boot_c_boots_a_disk_made_bootable_on_the_host() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("bootdisk");
    let disk = images::writable_copy(&images::bootable_disk(), dir.path());
    let extra = format!("boot = 'c'\ndisk = ['file:{},hda,w']", disk.display());
    let mut guest = Guest::start("bootdisk", &config("bootdisk", &extra), &[]);
    let status = guest.wait_exit(GRUB_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    if let Err(why) = images::check_disk_boot_output(guest.stdout().as_bytes()) {
        panic!("{why}\n{}", guest.report());
    }
    assert!(guest.firmware().contains("Booting from Hard Disk..."));
}

fn disk_with_script(tag: &str, script: &str) -> PathBuf {
    images::bootable_grub_disk(tag, &format!("{}{script}", images::SERIAL_SETUP), &[])
}

/// A write the guest saw completed survives `kill -9` of the device model: nothing is held back in the process.
#[test]
fn completed_disk_writes_survive_kill_9() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("kill9-disk");
    let disk = images::writable_copy(
        &disk_with_script(
            "storage-kill9",
            "insmod loadenv\nset MARK=survives-kill-9\n\
             if save_env -f (hd0,msdos1)/grubenv MARK; then echo SAVED; else echo SAVE-FAILED; fi\nsleep 3600\n",
        ),
        dir.path(),
    );
    let extra = format!("boot = 'c'\ndisk = ['file:{},hda,w']", disk.display());
    let mut guest = Guest::start("kill9-disk", &config("killnine", &extra), &[]);
    guest.wait_for("GRUB to report the write", GRUB_TIMEOUT, |_, out| {
        out.contains("SAVED") || out.contains("SAVE-FAILED")
    });
    assert!(
        !guest.stdout().contains("SAVE-FAILED"),
        "{}",
        guest.report()
    );
    guest.kill9();
    assert_eq!(
        images::grubenv_get(&disk, "MARK").as_deref(),
        Some("survives-kill-9"),
        "{}",
        guest.report()
    );
}

/// With mode `r` the guest's writes fail and the image file stays bit-for-bit the same.
#[test]
fn read_only_disks_refuse_writes_and_are_never_written() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("ro-disk");
    let disk = images::writable_copy(
        &disk_with_script(
            "storage-readonly",
            "insmod loadenv\nset MARK=x\n\
             if save_env -f (hd0,msdos1)/grubenv MARK; then echo WRITE-ACCEPTED; else echo WRITE-REFUSED; fi\nhalt\n",
        ),
        dir.path(),
    );
    let before = sha256(&disk);
    let extra = format!("boot = 'c'\ndisk = ['file:{},hda,r']", disk.display());
    let mut guest = Guest::start("ro-disk", &config("rodisk", &extra), &[]);
    let status = guest.wait_exit(GRUB_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    assert!(
        guest.stdout().contains("WRITE-REFUSED"),
        "{}",
        guest.report()
    );
    assert_eq!(sha256(&disk), before);
}

/// Two domains cannot both write one image: the second is refused before it starts.
#[test]
fn a_writable_image_is_locked_against_a_second_domain() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("locked");
    let disk = images::writable_copy(&images::bootable_disk(), dir.path());
    let extra = format!(
        "boot = 'c'\ndisk = ['file:{},hda,w']\non_poweroff = 'preserve'",
        disk.display()
    );
    let mut first = Guest::start("locked-1", &config("first", &extra), &[]);
    first.wait_firmware("Booting from Hard Disk", GRUB_TIMEOUT);
    let mut second = Guest::start("locked-2", &config("second", &extra), &[]);
    let status = second.wait_exit(GRUB_TIMEOUT);
    assert_eq!(status.code(), Some(1), "{}", second.report());
    assert!(second.stderr().contains("locked"), "{}", second.report());
}

/// boot='dc' with an empty CD-ROM drive falls back to the disk, as SeaBIOS's boot order names both.
#[test]
fn boot_dc_falls_back_to_the_disk_when_the_cd_is_empty() {
    if !kvm_available() {
        return;
    }
    let dir = TempDir::new("fallback");
    let disk = images::writable_copy(&images::bootable_disk(), dir.path());
    let extra = format!(
        "boot = 'dc'\ndisk = ['file:{},hda,w', ',hdc:cdrom,r']",
        disk.display()
    );
    let mut guest = Guest::start("fallback", &config("fallback", &extra), &[]);
    let status = guest.wait_exit(GRUB_TIMEOUT);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    if let Err(why) = images::check_disk_boot_output(guest.stdout().as_bytes()) {
        panic!("{why}\n{}", guest.report());
    }
    let fw = guest.firmware();
    let cd = fw
        .find("Booting from DVD/CD...")
        .expect("the CD is tried first");
    let hd = fw.find("Booting from Hard Disk...").expect("then the disk");
    assert!(cd < hd);
}
