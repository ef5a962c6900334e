//! Direct kernel boot and `cpuid` in the config reader: the command line xm and xl built, the notices, and
//! kernels and initrds checked on the real file system before anything starts.

use std::path::{Path, PathBuf};

use super::tests_examples::host;
use super::*;

const HEAD: &str = "builder = 'hvm'\nname = 'k'\n";

fn load_with(text: &str, host: &HostFacts) -> Result<Config, ConfigError> {
    load_source(Path::new("/etc/xen/k.cfg"), text, &[], host)
}

fn real_host() -> HostFacts {
    HostFacts {
        memory_mib: 4096,
        max_vcpus: 8,
        files: Box::new(HostFiles),
    }
}

fn notice<'a>(c: &'a Config, key: &str, kind: NoticeKind) -> Option<&'a Notice> {
    c.unsupported
        .iter()
        .find(|n| n.key == key && n.kind == kind)
}

#[test]
fn xl_cmdline_replaces_root_and_extra() {
    let text = format!(
        "{HEAD}kernel = '/boot/vmlinuz'\nroot = '/dev/hda1 ro'\nextra = 'quiet'\ncmdline = ' console=ttyS0 root=/dev/sda1 '\n"
    );
    let c = load_with(&text, &host()).unwrap();
    assert_eq!(
        c.boot,
        Boot::Kernel {
            path: "/boot/vmlinuz".into(),
            ramdisk: None,
            cmdline: "console=ttyS0 root=/dev/sda1".into()
        }
    );
    for key in ["root", "extra"] {
        let n = notice(&c, key, NoticeKind::NoEffect).unwrap();
        assert!(n.message.contains("in favour of cmdline"), "{n}");
    }
    // root alone, with the "root=" xm added; extra alone.
    let c = load_with(
        &format!("{HEAD}kernel = '/k'\nroot = '/dev/hda1 ro'\n"),
        &host(),
    )
    .unwrap();
    assert!(matches!(&c.boot, Boot::Kernel { cmdline, .. } if cmdline == "root=/dev/hda1 ro"));
    let c = load_with(&format!("{HEAD}kernel = '/k'\nextra = '4'\n"), &host()).unwrap();
    assert!(matches!(&c.boot, Boot::Kernel { cmdline, .. } if cmdline == "4"));
}

#[test]
fn boot_order_is_ignored_with_a_notice_in_direct_boot() {
    let c = load_with(&format!("{HEAD}kernel = '/k'\nboot = 'dcn'\n"), &host()).unwrap();
    let n = notice(&c, "boot", NoticeKind::NoEffect).unwrap();
    assert_eq!(
        n.to_string(),
        "/etc/xen/k.cfg:4: boot: no effect: a direct kernel boot starts the kernel, not a boot device"
    );
    assert!(
        notice(&c, "boot", NoticeKind::NotAvailable).is_none(),
        "no network-boot notice either"
    );
}

#[test]
fn cpuid_forms_resolve_and_bad_names_are_config_errors() {
    let c = load_with(
        &format!("{HEAD}kernel = '/usr/lib/xen/boot/hvmloader'\ncpuid = 'host,cx16=0,xsave=0'\n"),
        &host(),
    )
    .unwrap();
    assert_eq!(
        c.cpuid.changes(),
        "hides cmpxchg16, xsave; forces on nothing"
    );
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);
    let c = load_with(
        &format!(
            "{HEAD}kernel = '/usr/lib/xen/boot/hvmloader'\ncpuid = ['0x1:ecx=xxxxx0xxxxxxxxxxxxxxxxxxxxxxxxxx',\n  '0x80000001:edx=xx0xxxxxxxxxxxxxxxxxxxxxxxxxxxxx']\n"
        ),
        &host(),
    )
    .unwrap();
    assert_eq!(c.cpuid.changes(), "hides xsave, lm; forces on nothing");
    let e = load_with(
        &format!("{HEAD}kernel = '/usr/lib/xen/boot/hvmloader'\n\ncpuid = 'host,sse9=0'\n"),
        &host(),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.starts_with("/etc/xen/k.cfg:5: cpuid: found the unknown CPU feature 'sse9', expected a libxl feature name"),
        "{msg}"
    );
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("cfg-direct-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A minimal bzImage header: protocol 2.15, 64-bit entry, decompressing at 16 MiB into `init_size` bytes.
fn bzimage(init_size: u32) -> Vec<u8> {
    let mut b = vec![0u8; 1024 + 4096];
    b[0x1f1] = 1;
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x211] = 1;
    b[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    b[0x236..0x238].copy_from_slice(&1u16.to_le_bytes());
    b[0x238..0x23c].copy_from_slice(&255u32.to_le_bytes());
    b[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    b[0x260..0x264].copy_from_slice(&init_size.to_le_bytes());
    b
}

#[test]
fn kernels_and_initrds_are_checked_before_anything_starts() {
    let dir = Scratch::new("check");
    let good = dir.file("vmlinuz", &bzimage(0x100_0000));
    let script = dir.file("script", b"#!/bin/sh\n");
    let initrd = dir.file("initrd", &[7; 4096]);
    let cfg = |kernel: &Path, extra: &str| {
        format!(
            "{HEAD}memory = 64\nkernel = '{}'\nramdisk = '{}'\n{extra}",
            kernel.display(),
            initrd.display()
        )
    };
    let c = load_with(&cfg(&good, "root = '/dev/hda1 ro'\n"), &real_host()).unwrap();
    assert!(c.unsupported.is_empty(), "{:?}", c.unsupported);

    let msg = load_with(&cfg(&script, ""), &real_host())
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("/etc/xen/k.cfg:4: kernel: found a file of 10 bytes that is neither an ELF file nor a bzImage, expected a Linux bzImage"),
        "{msg}"
    );
    // 16 MiB + 64 MiB of decompression space does not fit 64 MiB of RAM.
    let huge = dir.file("huge", &bzimage(0x400_0000));
    let msg = load_with(&cfg(&huge, ""), &real_host())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("kernel: found a bzImage that decompresses itself needing guest memory up to"),
        "{msg}"
    );
    assert!(msg.contains("expected a larger memory setting"), "{msg}");
    // The initrd must fit between the kernel's 32 MiB and the end of the 64 MiB.
    let big = dir.file("big", &vec![0; 40 << 20]);
    let text = format!(
        "{HEAD}memory = 64\nkernel = '{}'\nramdisk = '{}'\n",
        good.display(),
        big.display()
    );
    let msg = load_with(&text, &real_host()).unwrap_err().to_string();
    assert!(
        msg.starts_with("/etc/xen/k.cfg:5: ramdisk: found an initrd of 40960 KiB"),
        "{msg}"
    );
    // A command line longer than the kernel's cmdline_size is blamed on the key that made it.
    let msg = load_with(
        &cfg(&good, &format!("extra = '{}'\n", "x".repeat(300))),
        &real_host(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.starts_with("/etc/xen/k.cfg:6: extra: found a kernel command line of 300 bytes, expected at most 255 bytes"), "{msg}");
    // A missing kernel is the usual missing-file message.
    let msg = load_with(&cfg(&dir.0.join("nope"), ""), &real_host())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("kernel: found '") && msg.contains("which does not exist"),
        "{msg}"
    );
}
