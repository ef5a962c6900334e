//! The xm-style verbs on real KVM guests: create → list → console → pause/unpause → shutdown/destroy, two
//! domains at once, clean-up after `kill -9`, and config mistakes refused before anything starts.
//!
//! Each test has its own runtime and log directories (`DEVMODEL_RUN_DIR`, `DEVMODEL_LOG_DIR`), so tests and
//! users stay apart. Needs `/dev/kvm`; fails loudly without it unless `DEVMODEL_SKIP_KVM=1` is set.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{devmodel_bin, kvm_available, option_rom, TempDir};

struct Toolstack {
    dir: TempDir,
}

impl Toolstack {
    fn new(tag: &str) -> Toolstack {
        Toolstack {
            dir: TempDir::new(tag),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(devmodel_bin());
        cmd.args(args)
            .env("DEVMODEL_RUN_DIR", self.dir.path().join("run"))
            .env("DEVMODEL_LOG_DIR", self.dir.path().join("log"))
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "devmodel {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.hvm"));
        std::fs::write(
            &path,
            format!(
                "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\n\
                 vcpus = 1\nboot = 'c'\nnographic = 1\nserial = 'pty'\nacpi = 1\n{extra}\n"
            ),
        )
        .unwrap();
        path
    }

    /// `list` rows as (name, id, mem, vcpus, state).
    fn list(&self) -> Vec<(String, u32, u64, u32, String)> {
        self.ok(&["list"])
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (
                    f[0].to_string(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].to_string(),
                )
            })
            .collect()
    }

    fn firmware_log(&self, name: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("log")
                .join(format!("{name}-firmware.log")),
        )
        .unwrap_or_default()
    }

    fn wait_firmware(&self, name: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.firmware_log(name).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{name}: firmware never printed {needle:?}:\n{}",
                self.firmware_log(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid_of(&self, id: u32) -> i32 {
        let record = std::fs::read_to_string(
            self.dir
                .path()
                .join("run")
                .join(id.to_string())
                .join("domain"),
        )
        .unwrap();
        record
            .lines()
            .find_map(|l| l.strip_prefix("pid="))
            .unwrap()
            .parse()
            .unwrap()
    }

    fn wait_gone(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.list().iter().any(|r| r.0 == name) {
            assert!(Instant::now() < deadline, "{name} still listed");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Toolstack {
    fn drop(&mut self) {
        // Never leave guests behind, whatever the test did.
        for (name, ..) in self.list() {
            let _ = self.run(&["destroy", &name]);
        }
    }
}

#[test]
fn create_list_console_pause_unpause_destroy() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("lifecycle");
    let cfg = ts.config("alpha", "");
    let out = ts.ok(&["create", cfg.to_str().unwrap()]);
    assert_eq!(out.trim(), "Started domain alpha (id=1)");
    let rows = ts.list();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1, rows[0].2, rows[0].3),
        ("alpha", 1, 128, 1)
    );
    assert!(
        rows[0].4 == "r-----" || rows[0].4 == "-b----",
        "{:?}",
        rows[0]
    );

    // The console shows what SeaBIOS printed on COM1 before anyone attached, and Ctrl-] detaches.
    ts.wait_firmware("alpha", "No bootable device");
    let mut console = ts
        .command(&["console", "alpha"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = console.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        if text.contains("SeaBIOS (version") && text.contains("No bootable device") {
            break;
        }
        assert!(Instant::now() < deadline, "console showed {text:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    console.stdin.as_mut().unwrap().write_all(&[0x1d]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = console.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "Ctrl-] did not detach");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert_eq!(ts.list().len(), 1, "detaching leaves the guest running");

    ts.ok(&["pause", "alpha"]);
    assert_eq!(ts.list()[0].4, "--p---");
    assert!(
        !ts.run(&["pause", "alpha"]).status.success(),
        "already paused"
    );
    ts.ok(&["unpause", "1"]);
    assert_ne!(ts.list()[0].4, "--p---");

    let pid = ts.pid_of(1);
    ts.ok(&["destroy", "alpha"]);
    assert!(ts.list().is_empty());
    // The device model has ended (gone, or a zombie waiting for whoever adopted it to reap it).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty()
            || stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z')),
        "{stat}"
    );
    assert!(
        !ts.dir.path().join("run").join("1").exists(),
        "runtime entry removed"
    );
}

#[test]
fn two_domains_get_distinct_ids_and_names_stay_unique() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("two");
    let a = ts.config("one", "");
    let b = ts.config("two", "memory = 64\nvcpus = 2");
    assert_eq!(
        ts.ok(&["create", a.to_str().unwrap()]).trim(),
        "Started domain one (id=1)"
    );
    assert_eq!(
        ts.ok(&["create", b.to_str().unwrap()]).trim(),
        "Started domain two (id=2)"
    );
    let dup = ts.run(&["create", a.to_str().unwrap()]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&dup.stderr)
            .contains("a domain named 'one' is already running as id 1"),
        "{}",
        String::from_utf8_lossy(&dup.stderr)
    );
    let rows = ts.list();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1, rows[1].2, rows[1].3),
        ("two", 2, 64, 2)
    );
    ts.ok(&["destroy", "1"]);
    // The freed id is the smallest free one again; a command-line override renames the domain.
    let out = ts.ok(&["create", a.to_str().unwrap(), "name=three"]);
    assert_eq!(out.trim(), "Started domain three (id=1)");
}

#[test]
fn kill_9_leaves_nothing_behind() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("kill9");
    let cfg = ts.config("victim", "");
    ts.ok(&["create", cfg.to_str().unwrap()]);
    let pid = ts.pid_of(1);
    // SAFETY: kill(2) on the device-model process this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    ts.wait_gone("victim");
    assert!(
        !ts.dir.path().join("run").join("1").exists(),
        "stale entry cleaned"
    );
    assert_eq!(
        ts.ok(&["create", cfg.to_str().unwrap()]).trim(),
        "Started domain victim (id=1)"
    );
}

#[test]
fn config_mistakes_are_refused_before_anything_starts() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("badcfg");
    let cfg = ts.config("bad", "memory = 0");
    let out = ts.run(&["create", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.hvm:10: memory"), "{err}");
    assert!(ts.list().is_empty());
    let pv = ts.dir.path().join("pv.cfg");
    std::fs::write(
        &pv,
        "kernel = '/boot/vmlinuz'\nname = 'pv'\nmemory = 128\nroot = '/dev/xvda1 ro'\n",
    )
    .unwrap();
    let out = ts.run(&["create", pv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("builder='hvm'"));
}

/// A tiny "ACPI OS" as an option ROM: enables ACPI, enables the power button, waits for it to be pressed and
/// then powers off through S5, as an OS does when the user presses the power button.
fn power_button_os() -> Vec<u8> {
    vec![
        0x66, 0xb8, 0x40, 0x0b, 0x00, 0x80, // mov eax, 0x80000B40 (00:01.3 PMBA)
        0xba, 0xf8, 0x0c, //                   mov dx, 0xcf8
        0x66, 0xef, //                         out dx, eax
        0xba, 0xfc, 0x0c, //                   mov dx, 0xcfc
        0x66, 0xed, //                         in eax, dx
        0x25, 0xc0, 0xff, //                   and ax, 0xffc0
        0x89, 0xc3, //                         mov bx, ax          ; PM base
        0xb0, 0xf1, //                         mov al, 0xf1
        0xe6, 0xb2, //                         out 0xb2, al        ; ACPI enable
        0x89, 0xda, //                         mov dx, bx
        0x83, 0xc2, 0x02, //                   add dx, 2           ; PM1_EN
        0xb8, 0x00, 0x01, //                   mov ax, 0x100       ; PWRBTN_EN
        0xef, //                               out dx, ax
        0x89, 0xda, //                   wait: mov dx, bx          ; PM1_STS
        0xed, //                               in ax, dx
        0xa9, 0x00, 0x01, //                   test ax, 0x100      ; PWRBTN_STS
        0x74, 0xf8, //                         jz wait
        0x89, 0xda, //                         mov dx, bx
        0x83, 0xc2, 0x04, //                   add dx, 4           ; PM1a_CNT
        0xb8, 0x00, 0x20, //                   mov ax, 0x2000      ; SLP_EN, S5
        0xef, //                               out dx, ax
        0xeb, 0xfe, //                         jmp $
    ]
}

#[test]
fn shutdown_presses_the_power_button_and_waits() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("shutdown");
    let rom = ts.dir.path().join("acpi-os.rom");
    std::fs::write(&rom, option_rom(&power_button_os())).unwrap();
    // No OS listens to the power button in plain SeaBIOS: shutdown says so and the guest keeps running.
    let plain = ts.config("plain", "");
    ts.ok(&["create", plain.to_str().unwrap()]);
    ts.wait_firmware("plain", "No bootable device");
    let refused = ts.run(&["shutdown", "plain"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("power button"));
    ts.ok(&["destroy", "plain"]);

    // With the ROM's "OS" waiting for the button, shutdown -w returns once the guest has powered off.
    let cfg = ts.config("acpi", "on_poweroff = 'destroy'");
    // `create` takes no --option-rom: start the domain with `run` in the background instead.
    let mut run = ts
        .command(&[
            "run",
            cfg.to_str().unwrap(),
            "--option-rom",
            rom.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // The VGA BIOS at c000 runs first; wait for the test's own ROM.
    let test_rom_ran = |log: String| {
        log.lines()
            .any(|l| l.starts_with("Running option rom at") && !l.contains("c000:"))
    };
    while !test_rom_ran(ts.firmware_log("acpi")) {
        assert!(Instant::now() < deadline, "the ROM never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    ts.ok(&["shutdown", "-w", "acpi"]);
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(0), "powered off cleanly");
    assert!(ts.list().is_empty());
}

#[test]
fn reboot_resets_the_machine() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("reboot");
    let cfg = ts.config("rb", "on_reboot = 'restart'");
    ts.ok(&["create", cfg.to_str().unwrap()]);
    ts.wait_firmware("rb", "No bootable device");
    ts.ok(&["reboot", "rb"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ts.firmware_log("rb").matches("BUILD:").count() < 2 {
        assert!(Instant::now() < deadline, "POST did not run again");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ts.list()[0].1, 1, "same domain, same id");
}

#[test]
fn check_prints_the_resolved_machine_with_overrides() {
    // No guest runs: this needs no KVM.
    let ts = Toolstack::new("check");
    let cfg = ts.config(
        "checked",
        "boot = 'dc'\nserial = ['pty', 'null']\non_crash = 'preserve'",
    );
    let out = ts.ok(&["check", cfg.to_str().unwrap(), "memory=512", "vcpus=2"]);
    for line in [
        "guest:      checked",
        "boot order: CD-ROM (d), hard disk (c)",
        "memory:     512 MiB",
        "vcpus:      2",
        "serial:     COM1 pty",
        "serial:     COM2 null",
        "actions:    poweroff destroy, reboot restart, crash preserve",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    let bad = ts.run(&["check", cfg.to_str().unwrap(), "vcpus=0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("command line 'vcpus=0'"));
}

#[test]
fn create_prints_the_vnc_address_and_vncviewer_finds_it() {
    if !kvm_available() {
        return;
    }
    let ts = Toolstack::new("vncaddr");
    let cfg = ts.config(
        "vncguest",
        "nographic = 0\nvnc = 1\nvnclisten = '127.0.0.1'\nvncunused = 1",
    );
    let out = ts.ok(&["create", cfg.to_str().unwrap()]);
    // Display = domain id (1 in this private registry) unless taken, then the next free one.
    let line = out
        .lines()
        .find(|l| l.starts_with("VNC server listening on 127.0.0.1:59"))
        .unwrap_or_else(|| panic!("no VNC line in\n{out}"));
    let port: u16 = line["VNC server listening on 127.0.0.1:".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(port >= 5901, "{line}");
    let target = ts.ok(&["vncviewer", "--print", "vncguest"]);
    assert_eq!(target.trim(), format!("127.0.0.1:{}", port - 5900));
    // A real client reads the screen through that address.
    ts.wait_firmware("vncguest", "No bootable device");
    let shot = common::screen::Shot::load(&common::screen::gvnccapture(
        &format!("127.0.0.1:{port}"),
        ts.dir.path(),
        "vncguest",
    ));
    assert_eq!((shot.width, shot.height), (720, 400));
    ts.ok(&["destroy", "vncguest"]);
    // A domain without VNC says so.
    let cfg = ts.config("novnc", "");
    ts.ok(&["create", cfg.to_str().unwrap()]);
    let none = ts.run(&["vncviewer", "--print", "novnc"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("has no VNC server (set vnc=1"));
    ts.ok(&["destroy", "novnc"]);
}
