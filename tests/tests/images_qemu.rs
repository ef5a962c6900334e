//! The test-image builders of `common::images`, checked two ways:
//! - without any guest (run by default): the images have the layout they claim, and files read back;
//! - under Debian's QEMU (`#[ignore]`d: they validate the images and GRUB scripts against the reference
//!   device model, for developers; CI need not run them, and each takes minutes here). Run them with
//!   `cargo test -p integration-tests --test images_qemu -- --ignored --nocapture`.
//!   They need `qemu-system-x86_64` and `/dev/kvm`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::images::{self, GrubHash};
use common::TempDir;

// ---------------------------------------------------------------------------------------------------------
// Builders, no guest
// ---------------------------------------------------------------------------------------------------------

#[test]
fn ext2_disk_has_one_partition_at_1mib_with_the_files_and_a_grubenv() {
    let data = images::payload(7, 300_000);
    let disk = images::ext2_disk(
        "unit-ext2",
        &[("a.txt", b"alpha\n"), ("sub/dir/b.bin", &data)],
        4,
    );
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 4 << 20);
    assert_eq!(images::first_partition_offset(&disk), 1 << 20);
    assert_eq!(images::read_file_from_disk(&disk, "a.txt"), b"alpha\n");
    assert_eq!(images::read_file_from_disk(&disk, "/sub/dir/b.bin"), data);
    let env = images::read_file_from_disk(&disk, "grubenv");
    assert_eq!(env.len(), 1024);
    assert!(env.starts_with(b"# GRUB Environment Block\n"));
    assert!(images::grubenv_vars(&env).is_empty());
    // The same inputs give the same cached file.
    let again = images::ext2_disk(
        "unit-ext2",
        &[("a.txt", b"alpha\n"), ("sub/dir/b.bin", &data)],
        4,
    );
    assert_eq!(disk, again);
}

#[test]
#[should_panic(expected = "debugfs cat /missing")]
fn reading_a_missing_file_panics() {
    let disk = images::ext2_disk("unit-missing", &[("a.txt", b"x")], 2);
    images::read_file_from_disk(&disk, "missing");
}

#[test]
fn bootable_disk_has_grub_boot_sector_core_image_and_modules() {
    let disk = images::bootable_disk();
    let bytes = std::fs::read(&disk).unwrap();
    let boot_img = std::fs::read(Path::new(images::GRUB_DIR).join("boot.img")).unwrap();
    // boot.img's code, with the kernel sector pointing at LBA 1, boot drive from DL, drive check nop'ed.
    assert_eq!(&bytes[..3], &boot_img[..3]);
    assert_eq!(&bytes[0x5a..0x5c], &boot_img[0x5a..0x5c]);
    assert_eq!(&bytes[0x5c..0x64], &1u64.to_le_bytes());
    assert_eq!(bytes[0x64], 0xff);
    assert_eq!(&bytes[0x66..0x68], &[0x90, 0x90]);
    assert_eq!(&bytes[0x68..0x1b8], &boot_img[0x68..0x1b8]);
    assert_eq!(&bytes[0x1fe..0x200], &[0x55, 0xaa]);
    // The partition table survived: one Linux partition from LBA 2048.
    assert_eq!(bytes[0x1be + 4], 0x83);
    assert_eq!(images::first_partition_offset(&disk), 1 << 20);
    // core.img from LBA 1: diskboot.img, whose blocklist covers the rest from LBA 2 to segment 0x820.
    let diskboot = std::fs::read(Path::new(images::GRUB_DIR).join("diskboot.img")).unwrap();
    assert_eq!(&bytes[512..512 + 0x100], &diskboot[..0x100]);
    let bl = 1024 - 12;
    assert_eq!(&bytes[bl..bl + 8], &2u64.to_le_bytes());
    let len = u16::from_le_bytes([bytes[bl + 8], bytes[bl + 9]]);
    assert!(len > 10 && u64::from(len) < 2046, "blocklist length {len}");
    assert_eq!(&bytes[bl + 10..bl + 12], &0x820u16.to_le_bytes());
    assert_eq!(&bytes[bl - 12..bl], &[0u8; 12]);
    // The partition has the script and the modules.
    assert_eq!(
        images::read_file_from_disk(&disk, "boot/grub/grub.cfg"),
        images::disk_boot_script().as_bytes()
    );
    for m in [
        "normal",
        "serial",
        "halt",
        "terminal",
        "pata",
        "gcry_sha256",
    ] {
        let path = format!("boot/grub/i386-pc/{m}.mod");
        assert_eq!(
            images::read_file_from_disk(&disk, &path),
            std::fs::read(Path::new(images::GRUB_DIR).join(format!("{m}.mod"))).unwrap(),
            "{path}"
        );
    }
    assert!(!images::read_file_from_disk(&disk, "boot/grub/i386-pc/command.lst").is_empty());
}

#[test]
fn grub_iso_is_small_and_el_torito_bootable() {
    let iso = images::grub_iso(
        "unit-iso",
        &format!("{}echo hi\nhalt\n", images::SERIAL_SETUP),
        &[("x/y.txt", b"y\n")],
    );
    let bytes = std::fs::read(&iso).unwrap();
    assert!(bytes.len() < 2 << 20, "ISO is {} bytes", bytes.len());
    // ISO 9660 primary volume descriptor at sector 16, El Torito boot record at sector 17.
    assert_eq!(&bytes[0x8001..0x8006], b"CD001");
    assert_eq!(&bytes[0x8801..0x8806], b"CD001");
    assert_eq!(&bytes[0x8807..0x8807 + 23], b"EL TORITO SPECIFICATION");
}

#[test]
fn scripts_and_checkers_agree() {
    let s = images::cd_and_disk_script(GrubHash::Crc32, "b", "n");
    assert!(s.starts_with(images::SERIAL_SETUP));
    assert!(s.contains("if crc (hd0,msdos1)/payload.bin; then echo STEP-OK bios-read;"));
    assert!(s.contains("save_env -f (ata0,msdos1)/grubenv NATIVE_MARK"));
    for step in images::CD_AND_DISK_STEPS {
        assert!(s.contains(&format!("STEP-OK {step};")), "{step}");
    }
    assert!(s.ends_with("halt\n"));
    assert_eq!(images::crc32_hex(b"123456789"), "cbf43926");
    assert_eq!(
        images::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        images::clean_serial(b"\x1b[H\x1b[J\x1b[1;1HISO-BOOTED\r\n\rx"),
        "ISO-BOOTED\nx"
    );
    assert!(images::check_cd_and_disk_output(b"nothing", GrubHash::Crc32, b"").is_err());
}

// ---------------------------------------------------------------------------------------------------------
// Under QEMU
// ---------------------------------------------------------------------------------------------------------

/// QEMU running one guest, COM1 into a file that the test polls.
struct Qemu {
    child: Child,
    serial: PathBuf,
    start: Instant,
    _dir: TempDir,
}

impl Qemu {
    /// `-M pc -enable-kvm -m 128`, no floppy (`-nodefaults`: GRUB's `ls` would probe an empty floppy drive
    /// through the BIOS, which costs about a minute here), standard VGA, COM1 to a file, and `drives`
    /// as `-drive` arguments.
    fn start(tag: &str, boot: &str, drives: &[String]) -> Qemu {
        let dir = TempDir::new(tag);
        let serial = dir.path().join("serial.log");
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args([
            "-M",
            "pc",
            "-enable-kvm",
            "-m",
            "128",
            "-nodefaults",
            "-vga",
            "std",
        ])
        .args(["-display", "none", "-monitor", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .args(["-boot", boot]);
        for d in drives {
            cmd.arg("-drive").arg(d);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 (apt-get install qemu-system-x86)");
        Qemu {
            child,
            serial,
            start: Instant::now(),
            _dir: dir,
        }
    }

    fn serial(&self) -> Vec<u8> {
        std::fs::read(&self.serial).unwrap_or_default()
    }

    fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Waits for `needle` on COM1 (cleaned of escape sequences), printing when it appeared.
    fn wait_for(&mut self, needle: &str, timeout: Duration) {
        loop {
            if images::clean_serial(&self.serial()).contains(needle) {
                eprintln!("[{:6.1}s] {needle}", self.elapsed().as_secs_f64());
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                if images::clean_serial(&self.serial()).contains(needle) {
                    continue;
                }
                panic!(
                    "QEMU exited ({status}) before {needle:?}\n{}",
                    self.report()
                );
            }
            assert!(
                self.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {needle:?}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for QEMU to exit by itself (GRUB's `halt`), and checks that it exited cleanly.
    fn wait_exit(&mut self, timeout: Duration) {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                eprintln!(
                    "[{:6.1}s] QEMU exited: {status}",
                    self.elapsed().as_secs_f64()
                );
                assert!(status.success(), "QEMU: {status}\n{}", self.report());
                return;
            }
            assert!(
                self.elapsed() < timeout,
                "QEMU did not exit within {timeout:?}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn report(&self) -> String {
        format!(
            "--- serial (cleaned) ---\n{}",
            images::clean_serial(&self.serial())
        )
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn qemu_ok() -> bool {
    Path::new("/dev/kvm").exists()
}

fn cd_and_disk_under_qemu(hash: GrubHash) {
    assert!(qemu_ok(), "/dev/kvm is missing");
    let t = Instant::now();
    let sc = images::cd_and_disk(hash, 1 << 20);
    eprintln!("images ready in {:.1}s", t.elapsed().as_secs_f64());
    let iso_sum = images::sha256_file(&sc.iso);
    let work = TempDir::new("cd-and-disk-disk");
    let disk = images::writable_copy(&sc.disk, work.path());
    let mut q = Qemu::start(
        "cd-and-disk",
        "dc",
        &[
            format!("file={},if=ide,index=0,format=raw", disk.display()),
            format!(
                "file={},if=ide,index=2,media=cdrom,format=raw",
                sc.iso.display()
            ),
        ],
    );
    let limit = Duration::from_secs(600);
    for marker in ["ISO-BOOTED", "DEVICES-LISTED"] {
        q.wait_for(marker, limit);
    }
    for step in images::CD_AND_DISK_STEPS {
        q.wait_for(&format!("STEP-OK {step}"), limit);
    }
    q.wait_for("SCRIPT-DONE", limit);
    q.wait_exit(limit);
    sc.check(&q.serial(), &disk)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(images::sha256_file(&sc.iso), iso_sum, "the ISO changed");
    eprintln!("{}", images::clean_serial(&q.serial()));
}

/// boot='dc': GRUB from the ISO reads and hashes (SHA-256) a 1 MiB payload on the IDE disk through the
/// BIOS and then through its own ATA driver, reads a file from the CD both ways, writes the grubenv on the
/// disk both ways, and powers off.
#[test]
#[ignore = "validates the images against QEMU; minutes; for developers"]
fn qemu_cd_boots_and_reads_and_writes_the_disk_sha256() {
    cd_and_disk_under_qemu(GrubHash::Sha256);
}

/// The same with CRC-32, which GRUB computes about ten times faster under emulation than SHA-256.
#[test]
#[ignore = "validates the images against QEMU; minutes; for developers"]
fn qemu_cd_boots_and_reads_and_writes_the_disk_crc32() {
    cd_and_disk_under_qemu(GrubHash::Crc32);
}

/// boot='c': the disk of `bootable_grub_disk` boots GRUB by itself, runs its grub.cfg and powers off.
#[test]
#[ignore = "validates the images against QEMU; minutes; for developers"]
fn qemu_disk_boots_on_its_own() {
    assert!(qemu_ok(), "/dev/kvm is missing");
    let disk = images::bootable_disk();
    let work = TempDir::new("boot-disk");
    let disk = images::writable_copy(&disk, work.path());
    let mut q = Qemu::start(
        "boot-disk",
        "c",
        &[format!("file={},if=ide,index=0,format=raw", disk.display())],
    );
    let limit = Duration::from_secs(300);
    q.wait_for(images::DISK_BOOTED, limit);
    q.wait_for("SCRIPT-DONE", limit);
    q.wait_exit(limit);
    images::check_disk_boot_output(&q.serial()).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", images::clean_serial(&q.serial()));
}
