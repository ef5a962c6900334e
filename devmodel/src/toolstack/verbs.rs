//! The verbs themselves, as `main.rs` calls them. Each returns the process exit status.

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use super::console;
use super::control::{self, Command};
use super::registry::{alive, run_dir, DomainRecord, Registry, RegistryError};

/// How long `create` waits for the new domain to register.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `destroy` waits for the process to end before killing it.
const DESTROY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a verb failed.
#[derive(Debug, thiserror::Error)]
pub enum VerbError {
    /// The runtime directory.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The domain's control socket.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// The console.
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
    /// Something else, said in words.
    #[error("{0}")]
    Other(String),
}

fn registry() -> Result<Registry, VerbError> {
    Ok(Registry::open(run_dir())?)
}

/// The directory for per-domain log files: `$DEVMODEL_LOG_DIR`, or `/var/log/devmodel`.
pub fn log_dir() -> std::path::PathBuf {
    std::env::var_os("DEVMODEL_LOG_DIR").map_or_else(
        || std::path::PathBuf::from("/var/log/devmodel"),
        std::path::PathBuf::from,
    )
}

/// `create [-c] CONFIG [key=value ...]`: starts `devmodel run` in the background, waits until the domain is
/// registered and prints its name and id; with `attach`, then connects to its first serial port.
pub fn create(
    config: &Path,
    overrides: &[String],
    name: &str,
    attach: bool,
) -> Result<u8, VerbError> {
    // Refuse a duplicate name here, before its log is touched; the new process checks again under the lock.
    if let Ok(existing) = registry()?.find(name) {
        return Err(RegistryError::NameTaken {
            name: name.to_string(),
            id: existing.id,
        }
        .into());
    }
    let logs = log_dir();
    std::fs::create_dir_all(&logs).map_err(|e| {
        VerbError::Other(format!(
            "cannot create the log directory {}: {e}",
            logs.display()
        ))
    })?;
    let log_path = logs.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| {
            VerbError::Other(format!("cannot open the log {}: {e}", log_path.display()))
        })?;
    let exe = std::env::current_exe()
        .map_err(|e| VerbError::Other(format!("cannot find myself: {e}")))?;
    let err_log = log
        .try_clone()
        .map_err(|e| VerbError::Other(format!("log: {e}")))?;
    let mut child = {
        use std::os::unix::process::CommandExt;
        Process::new(exe)
            .arg("run")
            .arg(config)
            .args(overrides)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            // Its own process group: the terminal's Ctrl-C and hang-up do not reach the domain.
            .process_group(0)
            .spawn()
            .map_err(|e| VerbError::Other(format!("cannot start the device model: {e}")))?
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let record = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(|e| VerbError::Other(e.to_string()))?
        {
            let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last: Vec<&str> = tail.lines().rev().take(5).collect();
            for line in last.iter().rev() {
                eprintln!("{line}");
            }
            return Ok(status.code().map_or(1, |c| c.clamp(1, 255) as u8));
        }
        let pid = child.id() as i32;
        let reg = registry()?;
        if let Some(rec) = reg.domains()?.into_iter().find(|r| r.pid == pid) {
            // Registered is not yet started: the domain is up once its control socket answers.
            if control::request(&reg.control_path(rec.id), &Command::Info).is_ok() {
                break rec;
            }
        }
        if Instant::now() > deadline {
            return Err(VerbError::Other(format!(
                "the domain did not start within {START_TIMEOUT:?}; see {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(addr) = &record.vnc {
        let target = addr
            .parse()
            .map(crate::frontends::viewer_target)
            .unwrap_or_else(|_| addr.clone());
        println!("VNC server listening on {addr} (vncviewer {target})");
    }
    println!("Started domain {} (id={})", record.name, record.id);
    if attach {
        return console(&record.id.to_string(), 0);
    }
    Ok(0)
}

/// One `list` line's state column, as xm printed it: six positions r b p s c d.
fn state_column(letter: char) -> String {
    "rbpscd"
        .chars()
        .map(|c| if c == letter { c } else { '-' })
        .collect()
}

/// `list`: every running domain, like `xm list`.
pub fn list() -> Result<u8, VerbError> {
    let reg = registry()?;
    println!(
        "{:<32} {:>5} {:>8} {:>5} {:>10} {:>9}",
        "Name", "ID", "Mem(MiB)", "VCPUs", "State", "Time(s)"
    );
    for rec in reg.domains()? {
        let (state, time) = match control::request(&reg.control_path(rec.id), &Command::Info) {
            Ok(info) => parse_info(&info),
            Err(_) => ('-', String::from("-")),
        };
        println!(
            "{:<32} {:>5} {:>8} {:>5} {:>10} {:>9}",
            rec.name,
            rec.id,
            rec.memory_mib,
            rec.vcpus,
            state_column(state),
            time
        );
    }
    Ok(0)
}

fn parse_info(info: &str) -> (char, String) {
    let mut state = '-';
    let mut time = String::from("-");
    for field in info.split_whitespace() {
        if let Some(s) = field.strip_prefix("state=") {
            state = s.chars().next().unwrap_or('-');
        } else if let Some(t) = field.strip_prefix("time=") {
            time = t.to_string();
        }
    }
    (state, time)
}

/// `console NAME|ID [N]`.
pub fn console(domain: &str, port: usize) -> Result<u8, VerbError> {
    let rec: DomainRecord = registry()?.find(domain)?;
    let Some(pty) = rec.ptys.get(&port) else {
        return Err(VerbError::Other(format!(
            "serial port {port} of domain '{}' has no pty back-end (set serial='pty' in its config)",
            rec.name
        )));
    };
    console::attach(pty)?;
    Ok(0)
}

/// `vncviewer NAME|ID [--print]`: where the domain's VNC server listens (like `xl vncviewer`); starts a viewer on
/// it unless `print_only` or no viewer is installed, in which case the address is printed.
pub fn vncviewer(domain: &str, print_only: bool) -> Result<u8, VerbError> {
    let rec: DomainRecord = registry()?.find(domain)?;
    let Some(addr) = rec.vnc.as_deref() else {
        return Err(VerbError::Other(format!(
            "domain '{}' has no VNC server (set vnc=1 in its config)",
            rec.name
        )));
    };
    let target = addr
        .parse()
        .map(crate::frontends::viewer_target)
        .unwrap_or_else(|_| addr.to_string());
    let viewer = if print_only {
        None
    } else {
        crate::frontends::find_viewer()
    };
    match viewer {
        Some(viewer) => {
            let status = std::process::Command::new(&viewer)
                .arg(&target)
                .status()
                .map_err(|e| VerbError::Other(format!("cannot start {}: {e}", viewer.display())))?;
            Ok(u8::from(!status.success()))
        }
        None => {
            println!("{target}");
            Ok(0)
        }
    }
}

/// `destroy`, `shutdown [-w]`, `reboot`, `pause`, `unpause` by name or id.
pub fn control_verb(domain: &str, command: Command, wait: bool) -> Result<u8, VerbError> {
    let reg = registry()?;
    let rec = reg.find(domain)?;
    control::request(&reg.control_path(rec.id), &command)?;
    if command == Command::Destroy {
        let deadline = Instant::now() + DESTROY_TIMEOUT;
        while alive(rec.pid) {
            if Instant::now() > deadline {
                // SAFETY: kill on the pid the domain registered; it is a devmodel process we were asked to end.
                unsafe {
                    libc::kill(rec.pid, libc::SIGKILL);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    } else if wait {
        while alive(rec.pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(0)
}

/// `block-configure NAME DEV PATH`: puts the image at `path` into CD-ROM drive `dev` (hdc or `hdc:cdrom`;
/// `file:`/`phy:` prefixes accepted as in `disk=`), or ejects the medium when `path` is empty.
pub fn block_configure(domain: &str, device: &str, path: &str) -> Result<u8, VerbError> {
    let device = device
        .trim_end_matches(":cdrom")
        .trim_start_matches("ioemu:");
    let path = ["file:", "phy:", "tap:aio:"]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .unwrap_or(path);
    let absolute = if path.is_empty() {
        String::new()
    } else {
        std::fs::canonicalize(path)
            .map_err(|e| VerbError::Other(format!("{path}: {e}")))?
            .to_string_lossy()
            .into_owned()
    };
    control_verb(
        domain,
        Command::BlockConfigure {
            device: device.to_string(),
            path: absolute,
        },
        false,
    )
}

/// `set-link NAME NIC up|down`: takes the link of the domain's NIC number `nic` (counting `vif` entries from
/// 0) down or brings it up again, as QEMU's monitor command `set_link` does: the tap goes down or up and the
/// NIC reports the change to the guest where it has a link status (RTL8139).
pub fn set_link(domain: &str, nic: usize, state: &str) -> Result<u8, VerbError> {
    let up = match state {
        "up" | "on" => true,
        "down" | "off" => false,
        other => {
            return Err(VerbError::Other(format!(
                "link state '{other}': expected up or down"
            )))
        }
    };
    control_verb(domain, Command::SetLink { nic, up }, false)
}
