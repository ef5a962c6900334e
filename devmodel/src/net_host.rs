//! Host networking policy for emulated NICs: which tap each NIC gets, and how it joins the host's network.
//!
//! qemu-dm created one tap per `type=ioemu` vif and ran `/etc/xen/qemu-ifup TAP BRIDGE`, which brought the
//! tap up and added it to the bridge (`ifconfig TAP 0.0.0.0 up; brctl addif BRIDGE TAP`). We do the same:
//!
//! - **Name**: `vifname=` as given, else `tap<domid>.<n>` with `n` the NIC's index among the emulated NICs,
//!   as xend named them. (xend prefixed a given vifname with `tap-` because the PV `vif` interface of the
//!   same NIC already had the plain name; there is no PV interface here, so the name is used as written.)
//! - **No `script=`**: what qemu-ifup did, built in: the tap joins `bridge=` (default `xenbr0`) and is
//!   brought up. A bridge that does not exist is an error naming it and saying how to create one, as
//!   qemu-ifup's `brctl addif` failure was the first thing users of a host without `xenbr0` saw.
//! - **`script=PATH`**: run as qemu-dm ran its network script, `PATH TAP BRIDGE`, once the tap exists and
//!   before the guest runs; the script does the attaching and bringing up, and we do neither. A name without
//!   a `/` is looked up in Xen's script directory `/etc/xen/scripts`, where Xen kept vif scripts. A script
//!   that cannot be started, exits non-zero, or runs longer than [`SCRIPT_TIMEOUT`] is an error (qemu-dm
//!   stopped with "could not launch network script"); its output is part of the message.
//! - **`script=no`**: qemu's spelling for "no script": the tap is created and left as it is, down and on no
//!   bridge, for the administrator's tooling to take over (libxl passed `script=no` and did this in its own
//!   hotplug scripts).
//!
//! Everything happens in the network namespace of the calling thread; the tap and its control socket stay
//! there for life.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::net::tap::{valid_ifname, TapBackend, TapError, TapSubscriber};

use crate::config::Nic;

/// Where a `script=` given without a directory is looked up.
pub const XEN_SCRIPT_DIR: &str = "/etc/xen/scripts";
/// How long a network script may run.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of a script's output kept for messages.
const SCRIPT_OUTPUT: u64 = 4096;

/// Why a NIC's host side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetHostError {
    /// The tap name is not one Linux accepts (too long, usually).
    #[error("NIC {index}: '{name}' cannot be a network interface name (1 to 15 characters, no '/', ':' or spaces); give the vif a vifname=")]
    BadName {
        /// The NIC's index.
        index: usize,
        /// The name.
        name: String,
    },
    /// The tap could not be created or configured.
    #[error("NIC {index}: {source}")]
    Tap {
        /// The NIC's index.
        index: usize,
        /// Why.
        source: TapError,
    },
    /// The bridge is missing.
    #[error("NIC {index}: the bridge '{bridge}' does not exist, so tap {tap} cannot join it. Create it with `ip link add {bridge} type bridge && ip link set {bridge} up` (and add the host's uplink: `ip link set eth0 master {bridge}`), or name an existing bridge with bridge= in the vif entry")]
    NoBridge {
        /// The NIC's index.
        index: usize,
        /// The bridge.
        bridge: String,
        /// The tap.
        tap: String,
    },
    /// Adding the tap to the bridge failed.
    #[error("NIC {index}: cannot add tap {tap} to the bridge '{bridge}': {source}{}", bridge_hint(.source))]
    Bridge {
        /// The NIC's index.
        index: usize,
        /// The bridge.
        bridge: String,
        /// The tap.
        tap: String,
        /// Why.
        source: std::io::Error,
    },
    /// The script is not there.
    #[error("NIC {index}: the network script '{script}' was not found (looked for {looked})")]
    ScriptMissing {
        /// The NIC's index.
        index: usize,
        /// As configured.
        script: PathBuf,
        /// Where it was looked for.
        looked: PathBuf,
    },
    /// The script could not be started.
    #[error("NIC {index}: could not launch the network script {script}: {source}")]
    ScriptSpawn {
        /// The NIC's index.
        index: usize,
        /// The script.
        script: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The script failed.
    #[error("NIC {index}: the network script `{command}` failed ({status}){}", output_suffix(.output))]
    ScriptFailed {
        /// The NIC's index.
        index: usize,
        /// The command line run: `SCRIPT TAP BRIDGE`.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed (cut to a few KiB).
        output: String,
    },
}

fn bridge_hint(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::EINVAL | libc::ENOTTY) => {
            " (it is not a bridge: create one with `ip link add NAME type bridge`)"
        }
        Some(libc::EPERM) => " (the device model needs CAP_NET_ADMIN)",
        Some(libc::EBUSY) => " (the tap is already on another bridge)",
        _ => "",
    }
}

fn output_suffix(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// How a NIC's tap joined the host's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// Built in: on this bridge, and up.
    Bridge(String),
    /// By this script (run as `SCRIPT TAP BRIDGE`).
    Script(PathBuf),
    /// `script=no`: left alone.
    None,
}

/// A NIC's host side, ready for wiring: give `backend` to the NIC model and add `subscriber` to the
/// machine's event manager.
#[derive(Debug)]
pub struct NicHost {
    /// The tap back-end (a `devices::net::NetBackend`).
    pub backend: Arc<TapBackend>,
    /// Its event-loop half.
    pub subscriber: TapSubscriber,
    /// How the tap joined the network.
    pub attachment: Attachment,
}

/// The tap name for the emulated NIC `index` of domain `domid`: `vifname=` or `tap<domid>.<index>`.
pub fn tap_name(nic: &Nic, domid: u32, index: usize) -> String {
    nic.vifname
        .clone()
        .unwrap_or_else(|| format!("tap{domid}.{index}"))
}

/// Creates the tap of the emulated NIC `index` (counting emulated NICs only) of domain `domid` and joins it
/// to the host's network as the module documentation describes. On error the tap is gone again.
pub fn open_nic_backend(nic: &Nic, domid: u32, index: usize) -> Result<NicHost, NetHostError> {
    let name = tap_name(nic, domid, index);
    if !valid_ifname(&name) {
        return Err(NetHostError::BadName { index, name });
    }
    let (backend, subscriber) =
        TapBackend::open(&name).map_err(|source| NetHostError::Tap { index, source })?;
    let attachment = match nic.script.as_deref() {
        Some(p) if p == Path::new("no") => Attachment::None,
        Some(script) => {
            let path = resolve_script(script, index)?;
            run_script(&path, &name, &nic.bridge, index, SCRIPT_TIMEOUT)?;
            Attachment::Script(path)
        }
        None => {
            attach_to_bridge(&backend, &nic.bridge, index)?;
            backend
                .set_link(true)
                .map_err(|source| NetHostError::Tap { index, source })?;
            Attachment::Bridge(nic.bridge.clone())
        }
    };
    log::info!(
        "NIC {index} ({} {}): tap {name}, {}",
        nic.model.name(),
        nic.mac,
        match &attachment {
            Attachment::Bridge(b) => format!("on bridge {b}"),
            Attachment::Script(s) => format!("set up by {}", s.display()),
            Attachment::None => "left unconfigured (script=no)".to_string(),
        }
    );
    Ok(NicHost {
        backend,
        subscriber,
        attachment,
    })
}

fn attach_to_bridge(tap: &TapBackend, bridge: &str, index: usize) -> Result<(), NetHostError> {
    let missing = || NetHostError::NoBridge {
        index,
        bridge: bridge.to_string(),
        tap: tap.name().to_string(),
    };
    // Asked first so that a missing bridge is told apart from a missing tap (both are ENODEV below).
    if !tap.interface_exists(bridge).unwrap_or(true) {
        return Err(missing());
    }
    tap.add_to_bridge(bridge).map_err(|source| {
        if source.raw_os_error() == Some(libc::ENODEV) {
            missing()
        } else {
            NetHostError::Bridge {
                index,
                bridge: bridge.to_string(),
                tap: tap.name().to_string(),
                source,
            }
        }
    })
}

fn resolve_script(script: &Path, index: usize) -> Result<PathBuf, NetHostError> {
    let path = if script.components().count() > 1 || script.is_absolute() {
        script.to_path_buf()
    } else {
        Path::new(XEN_SCRIPT_DIR).join(script)
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(NetHostError::ScriptMissing {
            index,
            script: script.to_path_buf(),
            looked: path,
        })
    }
}

/// Reads at most [`SCRIPT_OUTPUT`] bytes of a child's output on a thread, discarding the rest so that the
/// child never blocks on a full pipe.
fn collect(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let Some(mut stream) = stream else {
            return String::new();
        };
        let mut kept = Vec::new();
        let _ = (&mut stream).take(SCRIPT_OUTPUT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    })
}

fn run_script(
    script: &Path,
    tap: &str,
    bridge: &str,
    index: usize,
    timeout: Duration,
) -> Result<(), NetHostError> {
    let mut child = Command::new(script)
        .arg(tap)
        .arg(bridge)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetHostError::ScriptSpawn {
            index,
            script: script.to_path_buf(),
            source,
        })?;
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status: Result<ExitStatus, String> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "still running after {} ms; killed",
                    timeout.as_millis()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => break Err(format!("waiting for it failed: {e}")),
        }
    };
    // The pipes close when the script has exited, unless it left something running in the background that
    // holds them: give the readers a moment, and never wait on them beyond that.
    let grace = Instant::now() + Duration::from_secs(1);
    let output = |h: std::thread::JoinHandle<String>| {
        while !h.is_finished() && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            h.join().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let text = format!("{}{}", output(stdout), output(stderr));
    let failed = |status: String, output: String| NetHostError::ScriptFailed {
        index,
        command: format!("{} {tap} {bridge}", script.display()),
        status,
        output,
    };
    match status {
        Ok(s) if s.success() => {
            if !text.trim().is_empty() {
                log::info!("network script {}: {}", script.display(), text.trim());
            }
            Ok(())
        }
        Ok(s) => Err(failed(s.to_string(), text)),
        Err(why) => Err(failed(why, text)),
    }
}

#[cfg(test)]
mod tests;
