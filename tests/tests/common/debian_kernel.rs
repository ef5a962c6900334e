//! Debian's x86-64 kernel for the direct-boot tests, as an uncompressed ELF `vmlinux` with its PVH note.
//!
//! The kernel package that `linux-image-amd64` depends on is fetched with `apt-get download` (the package
//! lists must be present: `apt-get update`), its `/boot/vmlinuz-*` taken out of the `.deb` with `dpkg-deb
//! --fsys-tarfile | tar`, and the compressed payload of that bzImage located through its setup header
//! (`payload_offset`, `payload_length`, boot protocol 2.08+) and decompressed with the matching Debian tool
//! (`xz`, `zstd`, `gzip`, ...). The result is cached in `target/test-images/` under the package's name and
//! version, so later runs (and CI runs on the same machine) skip all of it. Nothing is committed.
//!
//! [`initramfs`] builds the small `newc` cpio archive given as `ramdisk`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::images::{cached, run};

/// The meta package whose dependency names the current kernel.
pub const META_PACKAGE: &str = "linux-image-amd64";

fn text(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// The versioned kernel package (`linux-image-6.1.0-NN-amd64`) and its version.
pub fn kernel_package() -> (String, String) {
    let depends = text(Command::new("apt-cache").args(["depends", META_PACKAGE]));
    let package = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .map(|p| p.trim_matches(|c| c == '<' || c == '>').to_string())
        .find(|p| p.starts_with("linux-image-") && !p.ends_with("-unsigned"))
        .unwrap_or_else(|| {
            panic!(
                "apt-cache depends {META_PACKAGE} names no kernel package (run `apt-get update` first):\n{depends}"
            )
        });
    let show = text(Command::new("apt-cache").args(["show", "--no-all-versions", &package]));
    let version = show
        .lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .unwrap_or_else(|| panic!("no version for {package}:\n{show}"))
        .trim()
        .to_string();
    (package, version)
}

/// The `vmlinux` of Debian's current kernel, downloaded and extracted on first use.
pub fn vmlinux() -> PathBuf {
    let (package, version) = kernel_package();
    let name: String = format!("debian-vmlinux-{package}-{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    cached(&name, |out, scratch| {
        run(Command::new("apt-get")
            .args(["download", "-q", &package])
            .current_dir(scratch));
        let deb = std::fs::read_dir(scratch)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .expect("apt-get download produced no .deb");
        let bzimage = extract_vmlinuz(&deb, scratch);
        let elf = decompress_payload(&std::fs::read(bzimage).unwrap(), scratch);
        assert!(
            elf.starts_with(b"\x7fELF"),
            "the bzImage payload is no ELF file"
        );
        std::fs::write(out, elf).unwrap();
    })
}

/// Takes `/boot/vmlinuz-*` out of the package without unpacking the modules.
fn extract_vmlinuz(deb: &Path, dir: &Path) -> PathBuf {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .expect("dpkg-deb (package dpkg)");
    let tar = Command::new("tar")
        .args(["-xf", "-", "--wildcards", "./boot/vmlinuz-*"])
        .current_dir(dir)
        .stdin(dpkg.stdout.take().unwrap())
        .status()
        .expect("tar");
    assert!(
        dpkg.wait().unwrap().success(),
        "dpkg-deb --fsys-tarfile failed"
    );
    assert!(
        tar.success(),
        "tar found no ./boot/vmlinuz-* in {}",
        deb.display()
    );
    std::fs::read_dir(dir.join("boot"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .expect("no vmlinuz extracted")
}

/// The compressed kernel inside a bzImage, by its setup header: it starts `payload_offset` bytes into the
/// protected-mode part, which follows the `setup_sects + 1` real-mode sectors.
pub fn payload(bzimage: &[u8]) -> &[u8] {
    assert_eq!(&bzimage[0x202..0x206], b"HdrS", "not a bzImage");
    let version = u16::from_le_bytes([bzimage[0x206], bzimage[0x207]]);
    assert!(
        version >= 0x0208,
        "boot protocol {version:#x} has no payload fields"
    );
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let u32_at = |o: usize| u32::from_le_bytes(bzimage[o..o + 4].try_into().unwrap()) as usize;
    let start = (setup_sects + 1) * 512 + u32_at(0x248);
    &bzimage[start..start + u32_at(0x24c)]
}

/// Decompresses the payload with the Debian tool for its format (found by its magic number).
fn decompress_payload(bzimage: &[u8], scratch: &Path) -> Vec<u8> {
    let data = payload(bzimage);
    let tool: &[&str] = if data.starts_with(b"\xfd7zXZ\0") {
        // The kernel appends the uncompressed size after the stream: read one stream only.
        &["xz", "-dc", "--single-stream"]
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        &["zstd", "-dcq"]
    } else if data.starts_with(&[0x1f, 0x8b]) {
        &["gzip", "-dc"]
    } else if data.starts_with(&[0x5d, 0, 0]) {
        &["xz", "-dc", "--format=lzma"]
    } else if data.starts_with(b"BZh") {
        &["bzip2", "-dc"]
    } else if data.starts_with(&[0x02, 0x21, 0x4c, 0x18]) {
        &["lz4", "-dc"]
    } else {
        panic!(
            "unknown compression, payload starts {:02x?}",
            &data[..8.min(data.len())]
        );
    };
    let input = scratch.join("payload");
    std::fs::write(&input, data).unwrap();
    let out = run(Command::new(tool[0])
        .args(&tool[1..])
        .stdin(std::fs::File::open(&input).unwrap()));
    out.stdout
}

/// A `newc` cpio archive (what the kernel unpacks as an initramfs) holding `files` as regular files,
/// mode 0755, then the trailer.
pub fn initramfs(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: usize, name: &str, mode: u32, data: &[u8]| {
        let fields = [
            ino as u32,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    for (i, (name, data)) in files.iter().enumerate() {
        entry(i + 1, name, 0o100_755, data);
    }
    entry(0, "TRAILER!!!", 0, &[]);
    out
}
