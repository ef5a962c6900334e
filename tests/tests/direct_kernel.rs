//! Direct kernel boot on KVM: Debian's own kernel, started through its PVH entry point by an xm-style HVM
//! config (`kernel=`, `ramdisk=`, `root=`, `extra=`, IDE disk, `cpuid`), must print on the emulated COM1 its
//! version banner, exactly the command line the config built, the e820 map of `memory`, the MP table we
//! wrote and the initrd where we put it.
//!
//! On the CI machines the kernel runs under a KVM that emulates guest kernel code instruction by instruction
//! (see shared/research/kvm-on-these-machines.md): the early messages take about a minute, after which the
//! kernel meets instructions this KVM cannot emulate. The test stops once the early messages are seen.
//!
//! Needs `/dev/kvm`, apt package lists and Debian's dpkg, tar and xz-utils (scripts/setup.sh); the kernel
//! package is downloaded and cached by `common::debian_kernel`. Also: bad kernels are refused with exit
//! status 2 before anything starts (no KVM needed).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::debian_kernel;
use common::{devmodel_bin, kvm_available, Guest, TempDir};

const MEMORY_MIB: u64 = 128;
/// Two vCPUs: the MP table lists both; the second waits for INIT/SIPI (the test ends before SMP bring-up).
const VCPUS: u32 = 2;
const EXTRA: &str = "console=ttyS0 earlyprintk=serial noxsave";
/// How long the early messages may take (about a minute here, instantly on hardware virtualization).
const EARLY_MESSAGES: Duration = Duration::from_secs(300);

/// The seeds' style of config as an HVM guest.
fn config(name: &str, kernel: &Path, ramdisk: &Path, disk: &Path, serial: &Path) -> String {
    format!(
        "builder = 'hvm'\nname = '{name}'\nmemory = {MEMORY_MIB}\nvcpus = {VCPUS}\n\
         kernel = '{}'\nramdisk = '{}'\nroot = '/dev/hda1 ro'\nextra = '{EXTRA}'\n\
         disk = ['file:{},hda,w']\nboot = 'c'\n\
         cpuid = 'host,cx16=0,xsave=0'\nserial = 'file:{}'\nnographic = 1\nvnc = 0\n\
         on_reboot = 'destroy'\non_crash = 'destroy'\n",
        kernel.display(),
        ramdisk.display(),
        disk.display(),
        serial.display()
    )
}

fn serial_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).replace('\r', ""))
        .unwrap_or_default()
}

#[test]
fn debian_kernel_starts_through_pvh_with_the_configured_command_line_memory_and_initrd() {
    if !kvm_available() {
        return;
    }
    let vmlinux = debian_kernel::vmlinux();
    let dir = TempDir::new("direct");
    let initrd_bytes = debian_kernel::initramfs(&[("init", b"#!/bin/sh\necho hello\n")]);
    let initrd = dir.path().join("initrd.cpio");
    std::fs::write(&initrd, &initrd_bytes).unwrap();
    let disk = dir.path().join("hda.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let serial = dir.path().join("com1.log");
    let cfg = config("debian-pvh", &vmlinux, &initrd, &disk, &serial);

    let started = Instant::now();
    let mut guest = Guest::start("direct", &cfg, &[]);
    // The early messages end with the initrd's reservation and the MP table's contents.
    let done = |text: &str| text.contains("RAMDISK: [mem") && text.contains("Processors: ");
    loop {
        let text = serial_text(&serial);
        if done(&text) {
            break;
        }
        assert!(
            started.elapsed() < EARLY_MESSAGES,
            "no early kernel messages within {EARLY_MESSAGES:?}\n--- COM1 ---\n{text}\n{}",
            guest.report()
        );
        if let Some(status) = guest.exited() {
            panic!(
                "devmodel exited ({status}) before the early messages\n--- COM1 ---\n{text}\n{}",
                guest.report()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("early messages after {:?}", started.elapsed());
    guest.kill9();
    let text = serial_text(&serial);
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, rest)| rest))
        .collect();
    let has = |want: &str| lines.contains(&want);

    assert!(
        lines.iter().any(|l| l.starts_with("Linux version ")),
        "{text}"
    );
    assert!(
        has(&format!("Command line: root=/dev/hda1 ro {EXTRA}")),
        "{text}"
    );
    // The e820 map: RAM below the EBDA, the BIOS areas, RAM from 1 MiB to `memory`, KVM's pages.
    let e820: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("BIOS-e820: "))
        .copied()
        .collect();
    assert_eq!(
        e820,
        [
            "BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff] usable".to_string(),
            "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved".to_string(),
            format!(
                "BIOS-e820: [mem 0x0000000000100000-{:#018x}] usable",
                (MEMORY_MIB << 20) - 1
            ),
            "BIOS-e820: [mem 0x00000000feffc000-0x00000000feffffff] reserved".to_string(),
        ],
        "{text}"
    );
    // The initrd at the top of RAM, page aligned (the kernel prints its page-rounded range).
    let size = initrd_bytes.len() as u64;
    let start = ((MEMORY_MIB << 20) - size) & !0xfff;
    let end = ((start + size + 0xfff) & !0xfff) - 1;
    assert!(
        has(&format!("RAMDISK: [mem {start:#010x}-{end:#010x}]")),
        "expected the initrd at {start:#x}\n{text}"
    );
    // The MP table: our OEM id, both CPUs, KVM's IOAPIC (id = the CPU count, as SeaBIOS numbers it).
    assert!(has("MPTABLE: OEM ID: DEVMODEL"), "{text}");
    assert!(has("Processor #0 (Bootup-CPU)"), "{text}");
    assert!(has("Processor #1"), "{text}");
    assert!(has(&format!("Processors: {VCPUS}")), "{text}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "IOAPIC[0]: apic_id {VCPUS}, version 17, address 0xfec00000"
        ))),
        "{text}"
    );
    // `boot` means nothing to a direct boot, and says so.
    assert!(
        guest
            .stderr()
            .contains("boot: no effect: a direct kernel boot starts the kernel"),
        "{}",
        guest.report()
    );
}

/// A 64-bit ELF with one loadable segment at 16 MiB and no PVH note.
fn elf_without_pvh_note() -> Vec<u8> {
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    e.resize(16, 0);
    e.extend_from_slice(&2u16.to_le_bytes());
    e.extend_from_slice(&62u16.to_le_bytes());
    e.extend_from_slice(&1u32.to_le_bytes());
    e.extend_from_slice(&0x100_0000u64.to_le_bytes());
    e.extend_from_slice(&64u64.to_le_bytes());
    e.extend_from_slice(&[0; 12]);
    e.extend_from_slice(&[64, 0, 56, 0, 1, 0, 64, 0, 0, 0, 0, 0]);
    let mut ph = Vec::new();
    ph.extend_from_slice(&1u32.to_le_bytes());
    ph.extend_from_slice(&5u32.to_le_bytes());
    ph.extend_from_slice(&120u64.to_le_bytes());
    ph.extend_from_slice(&0x100_0000u64.to_le_bytes());
    ph.extend_from_slice(&0x100_0000u64.to_le_bytes());
    ph.extend_from_slice(&16u64.to_le_bytes());
    ph.extend_from_slice(&16u64.to_le_bytes());
    ph.extend_from_slice(&16u64.to_le_bytes());
    e.extend_from_slice(&ph);
    e.extend_from_slice(&[0x90; 16]);
    e
}

#[test]
fn bad_kernels_are_refused_with_exit_status_2_before_anything_starts() {
    let dir = TempDir::new("badkernel");
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not a kernel\n").unwrap();
    let no_note = dir.path().join("vmlinux-no-pvh");
    std::fs::write(&no_note, elf_without_pvh_note()).unwrap();
    let big_initrd = dir.path().join("initrd.big");
    std::fs::File::create(&big_initrd)
        .unwrap()
        .set_len(20 << 20)
        .unwrap();
    let run_dir = dir.path().join("run");
    let cases: [(&Path, Option<&Path>, &str); 3] = [
        (
            &text_file,
            None,
            "kernel: found a file of 13 bytes that is neither an ELF file nor a bzImage",
        ),
        (
            &no_note,
            None,
            "kernel: found an ELF kernel without a PVH entry note",
        ),
        (&dir.path().join("missing"), None, "which does not exist"),
    ];
    for (kernel, ramdisk, message) in cases {
        let cfg = dir.path().join("bad.hvm");
        let mut text = format!(
            "builder = 'hvm'\nname = 'bad'\nmemory = 32\nkernel = '{}'\nserial = 'null'\n",
            kernel.display()
        );
        if let Some(r) = ramdisk {
            text.push_str(&format!("ramdisk = '{}'\n", r.display()));
        }
        std::fs::write(&cfg, text).unwrap();
        for verb in ["run", "check"] {
            let out = Command::new(devmodel_bin())
                .arg(verb)
                .arg(&cfg)
                .env("DEVMODEL_RUN_DIR", &run_dir)
                .env("DEVMODEL_LOG_DIR", dir.path().join("log"))
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
            assert!(stderr.contains(message), "{verb}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains("bad.hvm:4: kernel:"), "{verb}: {stderr}");
        }
    }
    // Nothing was registered: no domain started.
    assert!(!run_dir.exists() || std::fs::read_dir(&run_dir).unwrap().next().is_none());

    // An initrd that does not fit beside a kernel that does.
    let kernel = dir.path().join("vmlinux-ok");
    let mut notes = Vec::new();
    notes.extend_from_slice(&4u32.to_le_bytes());
    notes.extend_from_slice(&4u32.to_le_bytes());
    notes.extend_from_slice(&18u32.to_le_bytes());
    notes.extend_from_slice(b"Xen\0");
    notes.extend_from_slice(&0x100_0000u32.to_le_bytes());
    let mut elf = elf_without_pvh_note();
    // Add the note as a second program header: rewrite the count and append header and note.
    elf[56] = 2;
    let note_off = (elf.len() + 56) as u64;
    let mut ph = Vec::new();
    ph.extend_from_slice(&4u32.to_le_bytes());
    ph.extend_from_slice(&4u32.to_le_bytes());
    ph.extend_from_slice(&note_off.to_le_bytes());
    ph.extend_from_slice(&[0; 16]);
    ph.extend_from_slice(&(notes.len() as u64).to_le_bytes());
    ph.extend_from_slice(&(notes.len() as u64).to_le_bytes());
    ph.extend_from_slice(&4u64.to_le_bytes());
    // The headers must stay contiguous: put the second right after the first (before the segment data).
    let data = elf.split_off(120);
    elf.extend_from_slice(&ph);
    let seg_off = elf.len() as u64;
    elf[64 + 8..64 + 16].copy_from_slice(&seg_off.to_le_bytes());
    elf.extend_from_slice(&data);
    let note_off = elf.len() as u64;
    elf[120 + 8..120 + 16].copy_from_slice(&note_off.to_le_bytes());
    elf.extend_from_slice(&notes);
    std::fs::write(&kernel, elf).unwrap();
    let cfg = dir.path().join("initrd.hvm");
    std::fs::write(
        &cfg,
        format!(
            "builder = 'hvm'\nname = 'bad'\nmemory = 32\nkernel = '{}'\nramdisk = '{}'\n",
            kernel.display(),
            big_initrd.display()
        ),
    )
    .unwrap();
    let out = Command::new(devmodel_bin())
        .arg("check")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("initrd.hvm:5: ramdisk: found an initrd of 20480 KiB, which does not fit"),
        "{stderr}"
    );
}
