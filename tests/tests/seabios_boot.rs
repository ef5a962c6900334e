//! Real-guest tests on KVM: the real `devmodel` binary runs Debian's SeaBIOS, and the tests assert on what
//! SeaBIOS prints on its debug port (0x402) and, with `nographic=1`, on COM1. Small option ROMs that the tests
//! assemble byte by byte run inside SeaBIOS's POST to act as a guest OS would: power off through ACPI,
//! reboot through 0xCF9, port 0x92 or the keyboard controller, or triple-fault.
//!
//! Needs `/dev/kvm`; fails loudly without it unless `DEVMODEL_SKIP_KVM=1` is set.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::time::Duration;

use common::{kvm_available, option_rom, seabios_config, Guest};

const POST: Duration = Duration::from_secs(60);

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// SeaBIOS's POSTs in a debug log: its "BUILD:" line comes once per POST (SeaVGABIOS's own "VGABUILD:" line,
/// once per POST too, is not counted).
fn posts(log: &str) -> usize {
    log.lines().filter(|l| l.starts_with("BUILD:")).count()
}

#[test]
fn seabios_posts_and_reports_memory_cpus_pci_and_boot_attempts() {
    if !kvm_available() {
        return;
    }
    let mut guest = Guest::start("post", &seabios_config("post", "vcpus = 2"), &[]);
    guest.wait_firmware("No bootable device", POST);
    let fw = guest.firmware();
    for expected in [
        "SeaBIOS (version 1.16",
        "Found QEMU fw_cfg",
        "QEMU fw_cfg DMA interface supported",
        "Running on KVM",
        // Our etc/e820: 128 MiB of RAM from 0, and KVM's identity-map/TSS pages reserved.
        "qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
        "00000000feffc000 - 00000000ff000000 = 2 RESERVED",
        "Found 2 cpu(s) max supported 2 cpu(s)",
        "PCI: init bdf=00:00.0 id=8086:1237",
        "PCI: init bdf=00:01.0 id=8086:7000",
        "PIIX3/PIIX4 init: elcr=00 0c",
        "PCI: init bdf=00:01.3 id=8086:7113",
        "Found 1 serial ports",
        "PS2 keyboard initialized",
        "Booting from Floppy...",
        "Booting from Hard Disk...",
    ] {
        assert!(
            fw.contains(expected),
            "missing {expected:?}\n{}",
            guest.report()
        );
    }
    // SeaBIOS builds its ACPI tables only when it finds our PIIX4-compatible PM function.
    assert!(
        fw.contains("ACPI DSDT="),
        "no ACPI tables\n{}",
        guest.report()
    );
    // The boot attempts come in SeaBIOS's order for a machine without drives: the floppy, then the disk.
    let floppy = fw.find("Booting from Floppy...").unwrap();
    let disk = fw.find("Booting from Hard Disk...").unwrap();
    assert!(floppy < disk);
}

#[test]
fn nographic_mirrors_the_bios_screen_to_com1_on_stdio() {
    if !kvm_available() {
        return;
    }
    let mut guest = Guest::start("sercon", &seabios_config("sercon", ""), &[]);
    guest.wait_for("COM1 to show the boot failure", POST, |_, out| {
        out.contains("No bootable device")
    });
    let out = guest.stdout();
    assert!(out.contains("SeaBIOS (version 1.16"), "{}", guest.report());
    assert!(out.contains("Booting from Floppy..."), "{}", guest.report());
}

#[test]
fn four_vcpus_all_check_in() {
    if !kvm_available() {
        return;
    }
    let mut guest = Guest::start("smp", &seabios_config("smp", "vcpus = 4"), &[]);
    guest.wait_firmware("Found 4 cpu(s) max supported 4 cpu(s)", POST);
}

#[test]
fn no_bootable_device_reboots_and_post_runs_again() {
    if !kvm_available() {
        return;
    }
    let mut guest = Guest::start(
        "reboot",
        &seabios_config("reboot", "on_reboot = 'restart'\non_crash = 'destroy'"),
        &["--boot-fail-wait", "300"],
    );
    guest.wait_for("a third POST after two reboots", POST, |fw, _| {
        count(fw, "No bootable device") >= 3
    });
    // No instruction after SeaBIOS's resetting write may run: that would crash the guest here (its fallback
    // reset code is what this host's KVM cannot emulate), and on_crash='destroy' would end the process.
    assert!(!guest.stderr().contains("crashed"), "{}", guest.report());
    let fw = guest.firmware();
    assert!(fw.contains("Rebooting."), "{}", guest.report());
    assert!(posts(&fw) >= 2, "{}", guest.report());
}

#[test]
fn on_reboot_destroy_ends_the_process_cleanly() {
    if !kvm_available() {
        return;
    }
    let mut guest = Guest::start(
        "reboot-destroy",
        &seabios_config("rebootdestroy", "on_reboot = 'destroy'"),
        &["--boot-fail-wait", "300"],
    );
    let status = guest.wait_exit(POST);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    // "BUILD:" comes once per POST (the banner itself twice: on the debug port and again on the screen).
    assert_eq!(posts(&guest.firmware()), 1, "{}", guest.report());
    assert!(
        guest.stderr().contains("guest rebooted"),
        "{}",
        guest.report()
    );
}

/// Option ROM code: finds the PM I/O base in 00:01.3's PMBA register and writes SLP_EN with SLP_TYP 0
/// (SeaBIOS's _S5) to PM1a_CNT, exactly as an ACPI OS powers off.
fn acpi_poweroff_code() -> Vec<u8> {
    vec![
        0x66, 0xb8, 0x40, 0x0b, 0x00, 0x80, // mov eax, 0x80000B40 (00:01.3, register 0x40)
        0xba, 0xf8, 0x0c, //                   mov dx, 0xcf8
        0x66, 0xef, //                         out dx, eax
        0xba, 0xfc, 0x0c, //                   mov dx, 0xcfc
        0x66, 0xed, //                         in eax, dx
        0x25, 0xc0, 0xff, //                   and ax, 0xffc0
        0x05, 0x04, 0x00, //                   add ax, 4 (PM1a_CNT)
        0x89, 0xc2, //                         mov dx, ax
        0xb8, 0x00, 0x20, //                   mov ax, 0x2000 (SLP_EN, SLP_TYP = 0)
        0xef, //                               out dx, ax
        0xeb, 0xfe, //                         jmp $
    ]
}

fn write_rom(guest_dir: &std::path::Path, name: &str, code: &[u8]) -> String {
    let path = guest_dir.join(name);
    std::fs::write(&path, option_rom(code)).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn acpi_poweroff_ends_the_process_with_status_zero() {
    if !kvm_available() {
        return;
    }
    let dir = common::TempDir::new("poweroff-rom");
    let rom = write_rom(dir.path(), "poweroff.rom", &acpi_poweroff_code());
    let mut guest = Guest::start(
        "poweroff",
        &seabios_config("poweroff", "on_poweroff = 'destroy'"),
        &["--option-rom", &rom],
    );
    let status = guest.wait_exit(POST);
    assert_eq!(status.code(), Some(0), "{}", guest.report());
    assert!(
        guest.stderr().contains("guest powered off"),
        "{}",
        guest.report()
    );
    assert!(
        !guest.firmware().contains("Booting from"),
        "powered off during POST"
    );
}

/// Option ROM code that resets the machine once: it keeps a marker in CMOS byte 0x7F (CMOS survives a reset)
/// and on the second POST just returns.
fn reset_once_code(reset: &[u8]) -> Vec<u8> {
    let mut code = vec![
        0xb0, 0x7f, // mov al, 0x7f
        0xe6, 0x70, // out 0x70, al
        0xe4, 0x71, // in al, 0x71
        0x3c, 0x5a, // cmp al, 0x5a
        0x74, 0x00, // je done (patched below)
        0xb0, 0x5a, // mov al, 0x5a
        0xe6, 0x71, // out 0x71, al
    ];
    code.extend_from_slice(reset);
    code.extend_from_slice(&[0xeb, 0xfe]); // jmp $ (the reset comes first)
    code[9] = (code.len() - 10) as u8;
    code.push(0xcb); // done: retf
    code
}

fn reset_reruns_post(tag: &str, reset: &[u8]) {
    if !kvm_available() {
        return;
    }
    let dir = common::TempDir::new(tag);
    let rom = write_rom(dir.path(), "reset.rom", &reset_once_code(reset));
    let mut guest = Guest::start(
        tag,
        &seabios_config(tag, "on_reboot = 'restart'\non_crash = 'destroy'"),
        &["--option-rom", &rom],
    );
    guest.wait_firmware("No bootable device", POST);
    let fw = guest.firmware();
    assert_eq!(posts(&fw), 2, "two POSTs\n{}", guest.report());
    assert_eq!(count(&fw, "No bootable device"), 1, "{}", guest.report());
}

#[test]
fn reset_control_register_cf9_reboots() {
    // mov al, 6; mov dx, 0xcf9; out dx, al
    reset_reruns_post("cf9", &[0xb0, 0x06, 0xba, 0xf9, 0x0c, 0xee]);
}

#[test]
fn port_92_fast_reset_reboots() {
    // mov al, 1; out 0x92, al
    reset_reruns_post("p92", &[0xb0, 0x01, 0xe6, 0x92]);
}

#[test]
fn keyboard_controller_pulse_reboots() {
    // mov al, 0xfe; out 0x64, al
    reset_reruns_post("kbc", &[0xb0, 0xfe, 0xe6, 0x64]);
}

/// Loads an empty IDT, enters protected mode and raises an exception: no handler can be found. On hardware KVM
/// that is a triple fault (KVM_EXIT_SHUTDOWN); this host's software-assisted KVM reports an emulation failure
/// instead. Either way the vCPU cannot go on and the machine treats it as a guest crash.
fn crash_code() -> Vec<u8> {
    let mut code = vec![
        0xfa, //                             cli
        0x2e, 0x0f, 0x01, 0x1e, 0x00, 0x00, // lidt cs:[idt] (patched below)
        0x0f, 0x20, 0xc0, //                 mov eax, cr0
        0x0c, 0x01, //                       or al, 1 (PE)
        0x0f, 0x22, 0xc0, //                 mov cr0, eax
        0xcc, //                             int3
        0xeb, 0xfe, //                       jmp $
    ];
    // The ROM's code starts at offset 3 of the ROM segment; the 6-byte IDT descriptor follows the code.
    let idt = 3 + code.len() as u16;
    code[5..7].copy_from_slice(&idt.to_le_bytes());
    code.extend_from_slice(&[0; 6]);
    code
}

#[test]
fn guest_crash_with_on_crash_destroy_exits_with_failure() {
    if !kvm_available() {
        return;
    }
    let dir = common::TempDir::new("crash-rom");
    let rom = write_rom(dir.path(), "crash.rom", &crash_code());
    let mut guest = Guest::start(
        "crash",
        &seabios_config("crash", "on_crash = 'destroy'"),
        &["--option-rom", &rom],
    );
    let status = guest.wait_exit(POST);
    assert_eq!(status.code(), Some(1), "{}", guest.report());
    assert!(
        guest.stderr().contains("domain crash crashed: vCPU 0"),
        "{}",
        guest.report()
    );
}

#[test]
fn guest_crash_with_on_crash_restart_runs_post_again() {
    if !kvm_available() {
        return;
    }
    let dir = common::TempDir::new("crash-restart-rom");
    let rom = write_rom(dir.path(), "crash.rom", &crash_code());
    let mut guest = Guest::start(
        "crash-restart",
        &seabios_config("crashrestart", "on_crash = 'restart'"),
        &["--option-rom", &rom],
    );
    guest.wait_for("POST to run again after the crash", POST, |fw, _| {
        count(fw, "Scan for option roms") >= 2
    });
}

#[test]
fn pty_keeps_guest_output_until_someone_attaches() {
    if !kvm_available() {
        return;
    }
    let text = seabios_config("pty", "").replace("serial = 'stdio'", "serial = 'pty'");
    let mut guest = Guest::start("pty", &text, &[]);
    guest.wait_for("the pty path", POST, |_, out| {
        out.contains("char device redirected to ")
    });
    let out = guest.stdout();
    let line = out
        .lines()
        .find(|l| l.starts_with("char device redirected to "))
        .unwrap();
    let path = line
        .trim_start_matches("char device redirected to ")
        .trim()
        .to_string();
    // Attach only after SeaBIOS finished writing its screen: nothing may have been lost meanwhile.
    guest.wait_firmware("No bootable device", POST);
    let mut pty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pty.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.contains("SeaBIOS (version") && text.contains("No bootable device") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pty showed only {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
