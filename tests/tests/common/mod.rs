//! Shared by the integration tests: finding the real `devmodel` binary, KVM availability, running a guest and
//! waiting (with a deadline, never open-ended) for what it prints, and building small test ROMs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod debian_kernel;
pub mod images;
pub mod screen;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `devmodel` binary, built on first use if `DEVMODEL_BIN` does not name one.
pub fn devmodel_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("DEVMODEL_BIN") {
        return PathBuf::from(bin);
    }
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "devmodel", "--bin", "devmodel"])
            .current_dir(workspace())
            .status()
            .expect("cargo build of devmodel");
        assert!(status.success(), "building devmodel failed");
    });
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    target.join("debug").join("devmodel")
}

/// The `devmodel` binary built with the `sdl` feature (the SDL window), built on first use into
/// `target/debug/devmodel-sdl` unless `DEVMODEL_SDL_BIN` names one. It shares the target directory (and so
/// every dependency already built) with the plain binary; only the device-model crate is built twice.
pub fn devmodel_sdl_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("DEVMODEL_SDL_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let out = target.join("debug").join("devmodel-sdl");
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "devmodel", "--bin", "devmodel"])
            .args(["--features", "sdl"])
            .current_dir(workspace())
            .status()
            .expect("cargo build of devmodel --features sdl");
        assert!(
            status.success(),
            "building devmodel with the sdl feature failed (it needs libsdl2-dev: scripts/setup.sh)"
        );
        // Cargo puts both builds at target/debug/devmodel; keep this one under its own name.
        std::fs::copy(target.join("debug").join("devmodel"), &out).expect("copy devmodel-sdl");
    });
    out
}

/// Whether KVM tests can run. Without `/dev/kvm` this panics, unless `DEVMODEL_SKIP_KVM=1` asks to skip.
pub fn kvm_available() -> bool {
    if Path::new("/dev/kvm").exists() {
        return true;
    }
    if std::env::var("DEVMODEL_SKIP_KVM").as_deref() == Ok("1") {
        eprintln!("SKIPPED: /dev/kvm missing and DEVMODEL_SKIP_KVM=1");
        return false;
    }
    panic!("/dev/kvm is missing: real-guest tests need KVM (set DEVMODEL_SKIP_KVM=1 to skip them explicitly)");
}

/// A scratch directory removed at drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "devmodel-test-{tag}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ (std::ptr::addr_of!(tag) as u128)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `devmodel run` process with its output collected.
pub struct Guest {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    pub dir: TempDir,
    pub firmware_log: PathBuf,
}

fn collect(mut source: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = source.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

impl Guest {
    /// Writes `config` to a file and starts `devmodel run` on it with `args` after the config path.
    pub fn start(tag: &str, config: &str, args: &[&str]) -> Guest {
        Guest::start_with(&devmodel_bin(), tag, config, args, &[])
    }

    /// Like [`Guest::start`], running `bin` with `env` added to its environment.
    pub fn start_with(
        bin: &Path,
        tag: &str,
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Guest {
        let dir = TempDir::new(tag);
        let cfg = dir.path().join("guest.hvm");
        std::fs::write(&cfg, config).unwrap();
        let firmware_log = dir.path().join("firmware.log");
        let mut child = Command::new(bin)
            .envs(env.iter().copied())
            .arg("run")
            .arg(&cfg)
            .args(args)
            .arg("--debugcon")
            .arg(&firmware_log)
            .env("DEVMODEL_RUN_DIR", dir.path().join("run"))
            .env("DEVMODEL_LOG_DIR", dir.path().join("log"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start devmodel");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Guest {
            child,
            stdout,
            stderr,
            dir,
            firmware_log,
        }
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
    pub fn firmware(&self) -> String {
        std::fs::read(&self.firmware_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Waits until `probe` finds what it looks for in (firmware log, stdout), or panics with everything seen.
    pub fn wait_for(&mut self, what: &str, timeout: Duration, probe: impl Fn(&str, &str) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if probe(&self.firmware(), &self.stdout()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One last look: the output may have arrived just before the exit.
                std::thread::sleep(Duration::from_millis(100));
                if probe(&self.firmware(), &self.stdout()) {
                    return;
                }
                panic!(
                    "devmodel exited ({status}) before {what}\n{}",
                    self.report()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the firmware debug log to contain `needle`.
    pub fn wait_firmware(&mut self, needle: &str, timeout: Duration) {
        let n = needle.to_string();
        self.wait_for(
            &format!("firmware log to show {needle:?}"),
            timeout,
            move |fw, _| fw.contains(&n),
        );
    }

    /// Waits for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "devmodel did not exit within {timeout:?}\n{}",
                    self.report()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The device model's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the device model has ended, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Kills the device model with SIGKILL and waits for it.
    /// The exit status, if the process has ended.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn report(&self) -> String {
        format!(
            "--- firmware log ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.firmware(),
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A PCI option ROM of 512 bytes (`55 AA 01`, init entry at offset 3) running `code` in real mode during POST,
/// with the checksum byte set so that SeaBIOS accepts it. `code` must end with `retf` (0xCB) or never return.
pub fn option_rom(code: &[u8]) -> Vec<u8> {
    let mut rom = vec![0u8; 512];
    rom[0] = 0x55;
    rom[1] = 0xaa;
    rom[2] = 1; // size in 512-byte units
    assert!(code.len() <= 500);
    rom[3..3 + code.len()].copy_from_slice(code);
    let sum = rom.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    rom[511] = 0u8.wrapping_sub(sum);
    rom
}

/// The minimal config for a SeaBIOS-only guest: no disks, headless, COM1 on stdio.
pub fn seabios_config(name: &str, extra: &str) -> String {
    format!(
        "kernel = '/usr/lib/xen/boot/hvmloader'\nbuilder = 'hvm'\nname = '{name}'\nmemory = 128\n\
         vcpus = 1\nboot = 'dc'\nnographic = 1\nserial = 'stdio'\nvnc = 0\nacpi = 1\n{extra}\n"
    )
}
