//! Test-image builders for the real-guest storage tests: a GRUB 2 El Torito ISO, an MBR disk with an ext2
//! partition (and a GRUB environment block that GRUB can rewrite in place), and a disk that boots GRUB on its
//! own. Everything is built without root from Debian packages (`grub-pc-bin grub-common xorriso mtools
//! e2fsprogs fdisk`) into `target/test-images/`, under a name keyed by a hash of the inputs, so reruns reuse
//! the images. Two tests building the same image at once are safe: each builds under a private temporary
//! name and renames the result into place.
//!
//! Cached images are shared and must stay pristine: a test that lets a guest write to a disk works on
//! [`writable_copy`] of it.
//!
//! The GRUB scripts that the storage tests run are here too ([`cd_and_disk_script`], [`disk_boot_script`]),
//! with checkers for what they print on the serial port. They were validated against Debian's QEMU by
//! `tests/images_qemu.rs`; the device names they use are the ones GRUB 2.06 gives there:
//! through the BIOS `(hd0)`, `(hd0,msdos1)`, `(cd)`; after `nativedisk pata` (GRUB's own ATA/ATAPI driver)
//! `(ata0)`, `(ata0,msdos1)` for the primary master and `(ata2)` for the CD as secondary master.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where Debian's `grub-pc-bin` keeps the i386-pc (BIOS) modules and images.
pub const GRUB_DIR: &str = "/usr/lib/grub/i386-pc";

/// Bumped whenever a builder changes what it produces, so that old cached images are not reused.
const BUILDER_VERSION: &str = "images-v1";

/// The GRUB modules put on the ISO (`grub-mkrescue --install-modules`) and on the bootable disk, with their
/// dependencies. Restricting the ISO to these makes it small (~0.8 MiB) and, here, makes it boot about twice
/// as fast as an ISO with every module (less for GRUB to read at start through a slow BIOS).
pub const GRUB_MODULES: &[&str] = &[
    "normal",
    "serial",
    "terminal",
    "echo",
    "cat",
    "ls",
    "test",
    "sleep",
    "halt",
    "lspci",
    "hashsum",
    "gcry_sha256",
    "gcry_crc",
    "loadenv",
    "part_msdos",
    "ext2",
    "iso9660",
    "biosdisk",
    "nativedisk",
    "pata",
    "ahci",
];

/// The first lines of every script: GRUB talks on COM1 at 115200 baud, and reads from it too (keyboard
/// input through the BIOS does not work under this KVM). Before these run, GRUB prints only on the VGA
/// console. The serial output carries vt100 escape sequences and `\r`; see [`clean_serial`].
pub const SERIAL_SETUP: &str =
    "serial --unit=0 --speed=115200\nterminal_output serial\nterminal_input serial\n";

/// The ext2 partition through the BIOS disk driver (int 13h), the first IDE disk being BIOS drive 0x80.
pub const BIOS_DISK_PART: &str = "(hd0,msdos1)";
/// The El Torito CD we booted from, through the BIOS (int 13h extensions on drive 0xE0 here).
pub const BIOS_CD: &str = "(cd)";
/// The ext2 partition of the primary master after `nativedisk pata`.
pub const NATIVE_DISK_PART: &str = "(ata0,msdos1)";
/// The CD (secondary master, QEMU `index=2`) after `nativedisk pata`: ATAPI through GRUB's own driver.
pub const NATIVE_CD: &str = "(ata2)";

/// The payload file on the ext2 partition that the CD scenario reads twice.
pub const PAYLOAD_FILE: &str = "payload.bin";
/// The GRUB environment block on the ext2 partition, made by `grub-editenv`.
pub const GRUBENV_FILE: &str = "grubenv";
/// A small file on the ISO that the CD scenario reads through both drivers.
pub const CD_FILE: &str = "cdfile.txt";
/// Its content.
pub const CD_FILE_CONTENT: &[u8] = b"hello from the CD\n";

// ---------------------------------------------------------------------------------------------------------
// Commands, hashing, the cache
// ---------------------------------------------------------------------------------------------------------

/// Runs a command to completion; panics with its stderr (and stdout) if it cannot start or fails.
pub fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {shown}: {e} (are the Debian packages installed? {PACKAGES})")
    });
    if !out.status.success() {
        panic!(
            "{shown} failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    out
}

const PACKAGES: &str = "apt-get install grub-pc-bin grub-common xorriso mtools e2fsprogs fdisk";

/// A 128-bit FNV-1a hash of the parts (length-prefixed), as 32 hex digits: stable across Rust versions,
/// which `DefaultHasher` does not promise.
fn key(parts: &[&[u8]]) -> String {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    let mut feed = |bytes: &[u8]| {
        for &x in bytes {
            a = (a ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(x))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(5);
        }
    };
    feed(BUILDER_VERSION.as_bytes());
    // The GRUB build: modinfo.sh names the exact version of grub-pc-bin.
    feed(&std::fs::read(Path::new(GRUB_DIR).join("modinfo.sh")).unwrap_or_default());
    for p in parts {
        feed(&(p.len() as u64).to_le_bytes());
        feed(p);
    }
    format!("{a:016x}{b:016x}")
}

fn files_key(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut v = Vec::new();
    for (name, data) in files {
        v.extend_from_slice(&(name.len() as u64).to_le_bytes());
        v.extend_from_slice(name.as_bytes());
        v.extend_from_slice(&(data.len() as u64).to_le_bytes());
        v.extend_from_slice(data);
    }
    v
}

/// The image cache: `$CARGO_TARGET_DIR/test-images`, else the workspace's `target/test-images`.
pub fn cache_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| super::workspace().join("target"));
    let dir = target.join("test-images");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Returns `cache_dir()/file_name`, building it first if missing: `build(out, scratch)` must create `out`;
/// `scratch` is a private empty directory removed afterwards. The result is renamed into place atomically.
pub fn cached(file_name: &str, build: impl FnOnce(&Path, &Path)) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = cache_dir();
    let path = dir.join(file_name);
    if path.exists() {
        return path;
    }
    let scratch = dir.join(format!(
        ".build-{file_name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let out = scratch.join("out.img");
    build(&out, &scratch);
    assert!(out.exists(), "builder of {file_name} produced nothing");
    std::fs::rename(&out, &path).unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    path
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `files` (paths relative to `root`, `/`-separated, subdirectories created) under `root`.
fn populate(root: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let rel = name.trim_start_matches('/');
        assert!(
            !rel.is_empty() && !rel.split('/').any(|c| c == ".." || c.is_empty()),
            "bad file name {name:?}"
        );
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    }
}

/// A copy of `image` in `dir` that a guest may write to (cached images must stay pristine).
pub fn writable_copy(image: &Path, dir: &Path) -> PathBuf {
    let dest = dir.join(image.file_name().unwrap());
    std::fs::copy(image, &dest).unwrap();
    dest
}

/// SHA-256 of `data` as 64 lowercase hex digits (what GRUB's `sha256sum` prints), by coreutils' `sha256sum`.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// SHA-256 of a file, by `sha256sum`.
pub fn sha256_file(path: &Path) -> String {
    let out = run(Command::new("sha256sum").arg(path));
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// CRC-32 (IEEE, as zlib) of `data` as 8 lowercase hex digits: what GRUB's `crc` command prints.
pub fn crc32_hex(data: &[u8]) -> String {
    let mut crc: u32 = !0;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    format!("{:08x}", !crc)
}

/// `len` pseudo-random bytes from `seed` (xorshift64*): a payload that is the same on every run, so that
/// images holding it are cached, and that no simple driver bug (a repeated or zeroed sector) can fake.
pub fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

// ---------------------------------------------------------------------------------------------------------
// Builder 1: GRUB El Torito ISO
// ---------------------------------------------------------------------------------------------------------

/// A GRUB 2 El Torito ISO (BIOS, i386-pc only) made by `grub-mkrescue`, whose `/boot/grub/grub.cfg` is
/// `grub_cfg` (no menu: GRUB's normal mode runs the commands directly; start it with [`SERIAL_SETUP`] to
/// see anything on COM1). `extra_files` go into the ISO's root (`"dir/name"` makes subdirectories).
/// Only [`GRUB_MODULES`] and what they depend on are installed on it.
pub fn grub_iso(name: &str, grub_cfg: &str, extra_files: &[(&str, &[u8])]) -> PathBuf {
    grub_iso_with_modules(name, grub_cfg, extra_files, GRUB_MODULES)
}

/// Like [`grub_iso`], with `modules` (and their dependencies) instead of [`GRUB_MODULES`].
pub fn grub_iso_with_modules(
    name: &str,
    grub_cfg: &str,
    extra_files: &[(&str, &[u8])],
    modules: &[&str],
) -> PathBuf {
    let module_list = modules.join(" ");
    let k = if modules == GRUB_MODULES {
        key(&[b"grub_iso", grub_cfg.as_bytes(), &files_key(extra_files)])
    } else {
        key(&[
            b"grub_iso",
            grub_cfg.as_bytes(),
            &files_key(extra_files),
            module_list.as_bytes(),
        ])
    };
    cached(&format!("{}-{k}.iso", safe_name(name)), |out, scratch| {
        let root = scratch.join("iso");
        populate(&root, extra_files);
        populate(&root, &[("boot/grub/grub.cfg", grub_cfg.as_bytes())]);
        run(Command::new("grub-mkrescue")
            .arg("-d")
            .arg(GRUB_DIR)
            .arg("--locales=")
            .arg("--fonts=")
            .arg("--themes=")
            .arg(format!("--install-modules={module_list}"))
            .arg("-o")
            .arg(out)
            .arg(&root)
            .env("TMPDIR", scratch));
    })
}

/// GRUB modules for the display tests (the ISO stays small: GRUB reads it through a slow BIOS here).
pub const DISPLAY_MODULES: &[&str] = &[
    "normal",
    "serial",
    "terminal",
    "echo",
    "sleep",
    "halt",
    "test",
    "at_keyboard",
    "vbe",
    "gfxterm",
    "gfxterm_background",
];

/// A text-mode menu on the VGA console (and COM1, so the test can follow it), read with GRUB's own i8042
/// driver. Each entry prints which one was chosen.
pub const MENU_CFG: &str = "serial --unit=0 --speed=115200\n\
insmod at_keyboard\n\
terminal_input at_keyboard serial\n\
terminal_output console serial\n\
set timeout=-1\n\
menuentry 'Alpha entry' { echo CHOSEN-ALPHA; sleep 600 }\n\
menuentry 'Bravo entry' { echo CHOSEN-BRAVO; sleep 600 }\n\
menuentry 'Charlie entry' { echo CHOSEN-CHARLIE; sleep 600 }\n";

// ---------------------------------------------------------------------------------------------------------
// Builder 2: MBR disk with one ext2 partition
// ---------------------------------------------------------------------------------------------------------

/// The partition starts at 1 MiB (LBA 2048), like every modern partitioning tool; the gap before it is where
/// [`bootable_grub_disk`] puts GRUB's core image.
pub const PARTITION_START_LBA: u64 = 2048;

/// Builds the raw disk at `out`: MBR with one Linux partition from 1 MiB to the end, holding an ext2
/// filesystem with `files` and `/grubenv` (unless `files` has one).
fn build_ext2_disk(out: &Path, scratch: &Path, files: &[(&str, &[u8])], size_mib: u64) {
    assert!(size_mib >= 2, "the disk needs at least 2 MiB");
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).unwrap();
    populate(&root, files);
    if !files
        .iter()
        .any(|(n, _)| n.trim_start_matches('/') == GRUBENV_FILE)
    {
        run(Command::new("grub-editenv")
            .arg(root.join(GRUBENV_FILE))
            .arg("create"));
    }
    let part = scratch.join("part.img");
    let part_bytes = (size_mib - 1) * 1024 * 1024;
    // -d fills the filesystem from the directory without root; -E root_owner keeps files owned by 0:0.
    run(Command::new("mke2fs")
        .args([
            "-q",
            "-F",
            "-t",
            "ext2",
            "-L",
            "TESTDISK",
            "-E",
            "root_owner=0:0",
            "-d",
        ])
        .arg(&root)
        .arg(&part)
        .arg(format!("{}k", part_bytes / 1024)));
    let f = std::fs::File::create(out).unwrap();
    f.set_len(size_mib * 1024 * 1024).unwrap();
    drop(f);
    let mut sfdisk = Command::new("sfdisk");
    sfdisk
        .arg("-q")
        .arg(out)
        .stdin(std::process::Stdio::piped());
    sfdisk_with_input(
        sfdisk,
        &format!("label: dos\nstart={PARTITION_START_LBA}, type=83\n"),
    );
    run(Command::new("dd")
        .arg(format!("if={}", part.display()))
        .arg(format!("of={}", out.display()))
        .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]));
}

fn sfdisk_with_input(mut cmd: Command, input: &str) {
    use std::io::Write;
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e} ({PACKAGES})"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{shown} failed ({})\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An MBR-partitioned raw disk of `size_mib` MiB: one Linux partition from 1 MiB to the end with an ext2
/// filesystem holding `files` (`"dir/name"` makes subdirectories) and a GRUB environment block `/grubenv`
/// made by `grub-editenv`, which GRUB's `save_env -f (hd0,msdos1)/grubenv VAR` rewrites in place.
/// The returned path is a shared cached image: see [`writable_copy`].
pub fn ext2_disk(name: &str, files: &[(&str, &[u8])], size_mib: u64) -> PathBuf {
    let k = key(&[b"ext2_disk", &files_key(files), &size_mib.to_le_bytes()]);
    cached(&format!("{}-{k}.img", safe_name(name)), |out, scratch| {
        build_ext2_disk(out, scratch, files, size_mib)
    })
}

/// The byte offset of the first partition of an MBR disk image.
pub fn first_partition_offset(image: &Path) -> u64 {
    use std::io::Read;
    let mut mbr = [0u8; 512];
    std::fs::File::open(image)
        .unwrap()
        .read_exact(&mut mbr)
        .unwrap();
    assert_eq!(
        &mbr[510..],
        &[0x55, 0xaa],
        "{} has no MBR signature",
        image.display()
    );
    let lba = u32::from_le_bytes(mbr[0x1c6..0x1ca].try_into().unwrap());
    assert!(lba != 0, "{} has no first partition", image.display());
    u64::from(lba) * 512
}

/// Reads `path` from the ext2 filesystem on the first partition of `image`, with `debugfs` (read-only,
/// through its `image?offset=N` syntax, no copy). Panics if the file is missing.
pub fn read_file_from_disk(image: &Path, path: &str) -> Vec<u8> {
    let spec = format!(
        "{}?offset={}",
        image.display(),
        first_partition_offset(image)
    );
    let out = run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat /{}", path.trim_start_matches('/')))
        .arg(&spec));
    // debugfs exits 0 even when the file is missing; it says so on stderr after its version banner.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    assert!(
        complaints.is_empty(),
        "debugfs cat /{path} on {spec}: {stderr}"
    );
    out.stdout
}

/// The variables of a GRUB environment block (`NAME=value` lines; comments and `#` padding skipped).
pub fn grubenv_vars(block: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(block)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of `var` in the `/grubenv` of `image`'s ext2 partition.
pub fn grubenv_get(image: &Path, var: &str) -> Option<String> {
    grubenv_vars(&read_file_from_disk(image, GRUBENV_FILE))
        .into_iter()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------------------------------------
// Builder 3: a disk that boots GRUB on its own
// ---------------------------------------------------------------------------------------------------------

/// Offsets in GRUB's `boot.img` (`include/grub/i386/pc/boot.h`), and what `grub-bios-setup` (`util/setup.c`)
/// writes there when it embeds core.img after the MBR.
const BOOT_BPB_START: usize = 0x3;
const BOOT_BPB_END: usize = 0x5a;
/// 8-byte little-endian LBA of core.img's first sector.
const BOOT_KERNEL_SECTOR: usize = 0x5c;
/// 0xFF: use the drive number the BIOS passes in DL.
const BOOT_DRIVE: usize = 0x64;
/// A 2-byte `jmp` that setup replaces with two `nop`s on hard disks (trust DL only if it is 0x80..0x8F).
const BOOT_DRIVE_CHECK: usize = 0x66;
/// Disk signature, then the partition table, up to the 0x55AA signature.
const BOOT_WINDOWS_NT_MAGIC: usize = 0x1b8;
const BOOT_PART_END: usize = 0x1fe;
/// core.img's first sector (diskboot.img) ends with a blocklist `{u64 start; u16 len; u16 segment}` telling
/// where the rest of core.img is and where to load it (segment 0x820 = 0x8000 + 512 bytes).
const DISKBOOT_BLOCKLIST: usize = 0x200 - 12;
const CORE_LOAD_SEGMENT: u16 = 0x820;

/// The modules built into core.img: enough to find the ext2 partition holding `/boot/grub` through the BIOS.
/// The others are loaded from `/boot/grub/i386-pc/` on the partition.
pub const CORE_MODULES: &[&str] = &["biosdisk", "part_msdos", "ext2"];

/// `modules` and everything they depend on, from GRUB's `moddep.lst`.
fn module_closure(modules: &[&str]) -> Vec<String> {
    let moddep = std::fs::read_to_string(Path::new(GRUB_DIR).join("moddep.lst"))
        .unwrap_or_else(|e| panic!("{GRUB_DIR}/moddep.lst: {e} ({PACKAGES})"));
    let deps: std::collections::HashMap<&str, Vec<&str>> = moddep
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (m.trim(), d.split_whitespace().collect()))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut todo: Vec<&str> = modules.to_vec();
    while let Some(m) = todo.pop() {
        if out.iter().any(|o| o == m) {
            continue;
        }
        out.push(m.to_string());
        if let Some(d) = deps.get(m) {
            todo.extend(d.iter().copied());
        }
    }
    out.sort();
    out
}

/// A raw disk that boots GRUB by itself (boot='c'): the MBR is GRUB's `boot.img`, core.img (made by
/// `grub-mkimage -O i386-pc -p (hd0,msdos1)/boot/grub` with [`CORE_MODULES`]) sits in the gap after the
/// MBR from sector 1, and the ext2 partition of [`ext2_disk`] holds `/boot/grub/grub.cfg` (= `grub_cfg`),
/// the modules of [`GRUB_MODULES`] with their dependencies in `/boot/grub/i386-pc/`, `/grubenv`, and
/// `files`. The boot sector is patched exactly as `grub-bios-setup` does when it embeds core.img (which
/// cannot be used directly here: it insists on finding the OS device that holds its `--directory`).
pub fn bootable_grub_disk(name: &str, grub_cfg: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let k = key(&[
        b"bootable_grub_disk",
        grub_cfg.as_bytes(),
        &files_key(files),
    ]);
    cached(&format!("{}-{k}.img", safe_name(name)), |out, scratch| {
        let core = scratch.join("core.img");
        run(Command::new("grub-mkimage")
            .args([
                "-O",
                "i386-pc",
                "-d",
                GRUB_DIR,
                "-p",
                "(hd0,msdos1)/boot/grub",
                "-o",
            ])
            .arg(&core)
            .args(CORE_MODULES));
        let mut core = std::fs::read(&core).unwrap();

        // The partition's files: the caller's, grub.cfg, the modules and GRUB's *.lst (for autoloading).
        let mut owned: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, d)| (n.to_string(), d.to_vec()))
            .collect();
        owned.push(("boot/grub/grub.cfg".into(), grub_cfg.as_bytes().to_vec()));
        for m in module_closure(GRUB_MODULES) {
            let data = std::fs::read(Path::new(GRUB_DIR).join(format!("{m}.mod"))).unwrap();
            owned.push((format!("boot/grub/i386-pc/{m}.mod"), data));
        }
        for entry in std::fs::read_dir(GRUB_DIR).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "lst") {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                owned.push((format!("boot/grub/i386-pc/{n}"), std::fs::read(&p).unwrap()));
            }
        }
        let total: usize = owned.iter().map(|(_, d)| d.len() + 4096).sum();
        let size_mib = (total as u64 * 5 / 4) / (1024 * 1024) + 4;
        let borrowed: Vec<(&str, &[u8])> = owned
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        build_ext2_disk(out, scratch, &borrowed, size_mib);

        // Embed core.img at sector 1 (setup.c: the first sector is what boot.img loads, and the blocklist at
        // the end of that sector covers the rest, contiguous from sector 2, followed by a zero terminator).
        let sectors = core.len().div_ceil(512);
        assert!(
            (sectors as u64) < PARTITION_START_LBA,
            "core.img ({} bytes) does not fit before the partition",
            core.len()
        );
        core.resize(sectors * 512, 0);
        let bl = DISKBOOT_BLOCKLIST;
        assert_eq!(
            u16::from_le_bytes([core[bl + 10], core[bl + 11]]),
            CORE_LOAD_SEGMENT,
            "core.img's first sector is not diskboot.img as expected"
        );
        core[bl..bl + 8].copy_from_slice(&2u64.to_le_bytes());
        core[bl + 8..bl + 10].copy_from_slice(&u16::try_from(sectors - 1).unwrap().to_le_bytes());
        core[bl - 12..bl].fill(0);

        let mut disk = std::fs::read(out).unwrap();
        let existing: [u8; 512] = disk[..512].try_into().unwrap();
        let mut mbr: [u8; 512] = std::fs::read(Path::new(GRUB_DIR).join("boot.img"))
            .unwrap()
            .try_into()
            .expect("boot.img is 512 bytes");
        mbr[BOOT_BPB_START..BOOT_BPB_END].copy_from_slice(&existing[BOOT_BPB_START..BOOT_BPB_END]);
        mbr[BOOT_KERNEL_SECTOR..BOOT_KERNEL_SECTOR + 8].copy_from_slice(&1u64.to_le_bytes());
        mbr[BOOT_DRIVE] = 0xff;
        mbr[BOOT_DRIVE_CHECK..BOOT_DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
        mbr[BOOT_WINDOWS_NT_MAGIC..BOOT_PART_END]
            .copy_from_slice(&existing[BOOT_WINDOWS_NT_MAGIC..BOOT_PART_END]);
        assert_eq!(&mbr[510..], &[0x55, 0xaa]);
        disk[..512].copy_from_slice(&mbr);
        assert!(
            disk[512..512 + core.len()].iter().all(|&b| b == 0),
            "the post-MBR gap is not empty"
        );
        disk[512..512 + core.len()].copy_from_slice(&core);
        std::fs::write(out, &disk).unwrap();
    })
}

// ---------------------------------------------------------------------------------------------------------
// The scripts
// ---------------------------------------------------------------------------------------------------------

/// Which GRUB command hashes the payload. Under this machine's software-assisted KVM, GRUB's code runs at
/// emulation speed: `sha256sum` of 1 MiB costs ~45 s of CPU on top of the read, `crc` ~4 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrubHash {
    /// `sha256sum FILE` (module `hashsum`, with `gcry_sha256` autoloaded through `crypto.lst`).
    Sha256,
    /// `crc FILE` (module `hashsum`, with `gcry_crc`): CRC-32 as zlib computes it.
    Crc32,
}

impl GrubHash {
    pub fn command(self) -> &'static str {
        match self {
            GrubHash::Sha256 => "sha256sum",
            GrubHash::Crc32 => "crc",
        }
    }
    /// What GRUB prints for `data` (the hash, then the file name; GRUB may wrap the line).
    pub fn host(self, data: &[u8]) -> String {
        match self {
            GrubHash::Sha256 => sha256_hex(data),
            GrubHash::Crc32 => crc32_hex(data),
        }
    }
}

/// Runs `cmd` and prints `STEP-OK <step>` or `STEP-FAIL <step>` after its output.
fn step(script: &mut String, step: &str, cmd: &str) {
    writeln!(
        script,
        "if {cmd}; then echo STEP-OK {step}; else echo STEP-FAIL {step}; fi"
    )
    .unwrap();
}

/// The steps of [`cd_and_disk_script`], in order.
pub const CD_AND_DISK_STEPS: &[&str] = &[
    "bios-read",
    "bios-cd-read",
    "bios-save-env",
    "nativedisk",
    "native-read",
    "native-cd-read",
    "native-save-env",
];

/// The scenario of a GRUB ISO booted from the CD (boot='dc') with the [`ext2_disk`] as primary master and
/// the CD as secondary master (QEMU `index=2`):
/// 1. prints `ISO-BOOTED`, lists devices (`ls`) and prints `DEVICES-LISTED`;
/// 2. through the BIOS: hashes `(hd0,msdos1)/payload.bin`, prints `(cd)/cdfile.txt`, and writes
///    `BIOS_MARK=<bios_mark>` into `(hd0,msdos1)/grubenv` with `save_env`;
/// 3. `nativedisk pata` (GRUB's own ATA/ATAPI driver replaces the BIOS: the BIOS is no longer used for
///    disks), lists devices again, then the same three through `(ata0,msdos1)` and `(ata2)`, writing
///    `NATIVE_MARK=<native_mark>`;
/// 4. prints `SCRIPT-DONE` and `halt`s (ACPI poweroff through PIIX4 PM: QEMU exits 0).
///
/// Each step prints `STEP-OK name` or `STEP-FAIL name` (see [`CD_AND_DISK_STEPS`]); GRUB goes on after a
/// failed command. Check the output with [`check_cd_and_disk_output`], the disk with [`grubenv_get`].
pub fn cd_and_disk_script(hash: GrubHash, bios_mark: &str, native_mark: &str) -> String {
    let h = hash.command();
    let mut s = String::from(SERIAL_SETUP);
    // Load the filesystem and partition map first: otherwise GRUB probes every filesystem in fs.lst,
    // complaining about each module that is not installed.
    s.push_str("insmod part_msdos\ninsmod ext2\n");
    s.push_str("echo ISO-BOOTED\nls\necho\necho DEVICES-LISTED\n");
    step(
        &mut s,
        "bios-read",
        &format!("{h} {BIOS_DISK_PART}/{PAYLOAD_FILE}"),
    );
    step(&mut s, "bios-cd-read", &format!("cat {BIOS_CD}/{CD_FILE}"));
    writeln!(s, "set BIOS_MARK={bios_mark}").unwrap();
    step(
        &mut s,
        "bios-save-env",
        &format!("save_env -f {BIOS_DISK_PART}/{GRUBENV_FILE} BIOS_MARK"),
    );
    step(&mut s, "nativedisk", "nativedisk pata");
    s.push_str("ls\necho\necho NATIVE-DEVICES-LISTED root=$root\n");
    step(
        &mut s,
        "native-read",
        &format!("{h} {NATIVE_DISK_PART}/{PAYLOAD_FILE}"),
    );
    step(
        &mut s,
        "native-cd-read",
        &format!("cat {NATIVE_CD}/{CD_FILE}"),
    );
    writeln!(s, "set NATIVE_MARK={native_mark}").unwrap();
    step(
        &mut s,
        "native-save-env",
        &format!("save_env -f {NATIVE_DISK_PART}/{GRUBENV_FILE} NATIVE_MARK"),
    );
    s.push_str("echo SCRIPT-DONE\nhalt\n");
    s
}

/// GRUB's serial output without vt100 escape sequences and carriage returns.
pub fn clean_serial(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameters and intermediates, then one final byte in 0x40..=0x7E.
                    for d in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&d) {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            _ => out.push(c),
        }
    }
    out
}

/// Checks what [`cd_and_disk_script`] printed (raw serial bytes or [`clean_serial`] text): every step OK in
/// order, both hashes equal to `hash` of `payload`, the CD file read twice, the devices listed as expected.
pub fn check_cd_and_disk_output(
    serial: &[u8],
    hash: GrubHash,
    payload: &[u8],
) -> Result<(), String> {
    let text = clean_serial(serial);
    let fail = |why: String| Err(format!("{why}\n--- serial (cleaned) ---\n{text}"));
    let mut at = 0;
    let mut expect = |needle: &str| -> Result<(), String> {
        match text[at..].find(needle) {
            Some(i) => {
                at += i + needle.len();
                Ok(())
            }
            None => Err(format!("missing {needle:?} (in order)")),
        }
    };
    let digest = hash.host(payload);
    let cd_text = String::from_utf8_lossy(CD_FILE_CONTENT);
    let cd_line = cd_text.trim_end();
    let plan: Vec<String> = vec![
        "ISO-BOOTED".into(),
        "(hd0,msdos1)".into(),
        "(cd)".into(),
        "DEVICES-LISTED".into(),
        digest.clone(),
        "STEP-OK bios-read".into(),
        cd_line.into(),
        "STEP-OK bios-cd-read".into(),
        "STEP-OK bios-save-env".into(),
        "STEP-OK nativedisk".into(),
        "(ata0,msdos1)".into(),
        "(ata2)".into(),
        "NATIVE-DEVICES-LISTED".into(),
        digest,
        "STEP-OK native-read".into(),
        cd_line.into(),
        "STEP-OK native-cd-read".into(),
        "STEP-OK native-save-env".into(),
        "SCRIPT-DONE".into(),
    ];
    for needle in &plan {
        if let Err(e) = expect(needle) {
            return fail(e);
        }
    }
    if text.contains("STEP-FAIL") || text.contains("error:") {
        return fail("a step failed or GRUB reported an error".into());
    }
    Ok(())
}

/// Everything the CD-and-disk scenario needs, built (cached): see [`cd_and_disk_script`].
pub struct CdAndDisk {
    /// The boot ISO (read-only for the guest; check that it is unchanged with [`sha256_file`]).
    pub iso: PathBuf,
    /// The pristine cached disk: give the guest a [`writable_copy`].
    pub disk: PathBuf,
    pub payload: Vec<u8>,
    pub hash: GrubHash,
    pub bios_mark: String,
    pub native_mark: String,
}

/// Builds the ISO and disk of the CD-and-disk scenario with a `payload_len`-byte payload (keep it near
/// 1 MiB or below: BIOS disk reads are slow under this machine's KVM).
pub fn cd_and_disk(hash: GrubHash, payload_len: usize) -> CdAndDisk {
    let bios_mark = format!("bios-{payload_len}");
    let native_mark = format!("native-{payload_len}");
    let script = cd_and_disk_script(hash, &bios_mark, &native_mark);
    let iso = grub_iso("cd-and-disk", &script, &[(CD_FILE, CD_FILE_CONTENT)]);
    let payload = payload(0x5eed_0001, payload_len);
    let size_mib = (payload_len as u64).div_ceil(1024 * 1024) + 4;
    let disk = ext2_disk("data-disk", &[(PAYLOAD_FILE, &payload)], size_mib);
    CdAndDisk {
        iso,
        disk,
        payload,
        hash,
        bios_mark,
        native_mark,
    }
}

impl CdAndDisk {
    /// Checks the guest's serial output and the disk it wrote (`disk_copy`, the writable copy it ran on).
    pub fn check(&self, serial: &[u8], disk_copy: &Path) -> Result<(), String> {
        check_cd_and_disk_output(serial, self.hash, &self.payload)?;
        let bios = grubenv_get(disk_copy, "BIOS_MARK");
        let native = grubenv_get(disk_copy, "NATIVE_MARK");
        if bios.as_deref() != Some(&self.bios_mark) || native.as_deref() != Some(&self.native_mark)
        {
            return Err(format!(
                "grubenv on the disk: BIOS_MARK={bios:?} NATIVE_MARK={native:?}, expected {:?} and {:?}",
                self.bios_mark, self.native_mark
            ));
        }
        let payload_back = read_file_from_disk(disk_copy, PAYLOAD_FILE);
        if payload_back != self.payload {
            return Err("the payload on the disk changed".into());
        }
        Ok(())
    }
}

/// The marker [`disk_boot_script`] prints.
pub const DISK_BOOTED: &str = "DISK-BOOTED";

/// The script of the self-booting disk (boot='c'): prints `DISK-BOOTED root=(hd0,msdos1)`, lists the
/// partition, prints `SCRIPT-DONE` and halts.
pub fn disk_boot_script() -> String {
    format!("{SERIAL_SETUP}echo {DISK_BOOTED} root=$root\nls /\necho\necho SCRIPT-DONE\nhalt\n")
}

/// The self-booting disk with [`disk_boot_script`].
pub fn bootable_disk() -> PathBuf {
    bootable_grub_disk(
        "boot-disk",
        &disk_boot_script(),
        &[("hello.txt", b"hello from the disk\n")],
    )
}

/// Checks what [`disk_boot_script`] printed.
pub fn check_disk_boot_output(serial: &[u8]) -> Result<(), String> {
    let text = clean_serial(serial);
    let booted = format!("{DISK_BOOTED} root=hd0,msdos1");
    let ok = text.find(&booted).is_some_and(|i| {
        text[i..]
            .find("hello.txt")
            .is_some_and(|j| text[i + j..].contains("SCRIPT-DONE"))
    });
    if ok && !text.contains("error:") {
        Ok(())
    } else {
        Err(format!(
            "expected {booted:?}, hello.txt, SCRIPT-DONE in order\n--- serial ---\n{text}"
        ))
    }
}
