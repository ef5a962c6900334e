//! A domain's control socket: how the toolstack verbs reach a running device model.
//!
//! One Unix stream socket per domain (mode 0600 in the owner-only runtime directory). A client sends one line,
//! the command, and reads one line back: `ok[ details]` or `error: why`. The server runs on its own thread and
//! answers each client in turn with short timeouts, so a client that connects and says nothing can hold it for
//! at most [`CLIENT_TIMEOUT`], and never holds up the guest.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the server waits for a client's command, and a client for the answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest command line accepted.
const MAX_LINE: u64 = 256;

/// A command a toolstack verb sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// State and CPU time, for `list`.
    Info,
    /// Press the ACPI power button.
    Shutdown,
    /// Reset the machine (followed by `on_reboot`).
    Reboot,
    /// End the domain now.
    Destroy,
    /// Stop the vCPUs.
    Pause,
    /// Run the vCPUs again.
    Unpause,
    /// Change the medium of a CD-ROM drive (`path` empty: eject).
    BlockConfigure {
        /// The drive: hda..hdd.
        device: String,
        /// The new image, or empty to eject.
        path: String,
    },
    /// Take a NIC's link down or bring it up again (QEMU's `set_link`).
    SetLink {
        /// The NIC's index among the `vif` entries.
        nic: usize,
        /// Up or down.
        up: bool,
    },
}

impl Command {
    /// The line on the wire (without the newline).
    pub fn line(&self) -> String {
        match self {
            Command::Info => "info".into(),
            Command::Shutdown => "shutdown".into(),
            Command::Reboot => "reboot".into(),
            Command::Destroy => "destroy".into(),
            Command::Pause => "pause".into(),
            Command::Unpause => "unpause".into(),
            Command::BlockConfigure { device, path } => format!("block-configure {device} {path}"),
            Command::SetLink { nic, up } => {
                format!("set-link {nic} {}", if *up { "up" } else { "down" })
            }
        }
    }

    fn parse(line: &str) -> Option<Command> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        Some(match word {
            "info" => Command::Info,
            "shutdown" => Command::Shutdown,
            "reboot" => Command::Reboot,
            "destroy" => Command::Destroy,
            "pause" => Command::Pause,
            "unpause" => Command::Unpause,
            "block-configure" => {
                let (device, path) = rest.split_once(' ').unwrap_or((rest, ""));
                Command::BlockConfigure {
                    device: device.to_string(),
                    path: path.to_string(),
                }
            }
            "set-link" => {
                let (nic, state) = rest.split_once(' ')?;
                Command::SetLink {
                    nic: nic.parse().ok()?,
                    up: match state {
                        "up" => true,
                        "down" => false,
                        _ => return None,
                    },
                }
            }
            _ => return None,
        })
    }
}

/// Why talking to a domain failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be created or reached.
    #[error("control socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The domain refused the command.
    #[error("{0}")]
    Refused(String),
}

/// What the domain does for a command: `Ok(details)` or `Err(why)`.
pub type Handler = Arc<dyn Fn(Command) -> Result<String, String> + Send + Sync>;

/// The server side; stops (and removes the socket) when dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Listens on `path` (owner-only) and answers commands with `handler` on a thread of its own.
    pub fn start(path: &Path, handler: Handler) -> Result<ControlServer, ControlError> {
        let err = |source| ControlError::Io {
            path: path.to_path_buf(),
            source,
        };
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &handler);
                    }
                }
            })
            .map_err(err)?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

fn serve(stream: UnixStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let mut line = String::new();
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    if BufReader::new(reader.take(MAX_LINE))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let reply = match Command::parse(line.trim_end_matches(['\r', '\n'])) {
        Some(cmd) => match handler(cmd) {
            Ok(details) if details.is_empty() => "ok\n".to_string(),
            Ok(details) => format!("ok {details}\n"),
            Err(why) => format!("error: {why}\n"),
        },
        None => "error: unknown command\n".to_string(),
    };
    let mut stream = stream;
    let _ = stream.write_all(reply.as_bytes());
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept() so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends `command` to the domain listening on `path`; returns the details of an `ok`.
pub fn request(path: &Path, command: &Command) -> Result<String, ControlError> {
    let err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).map_err(err)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(err)?;
    let line = command.line();
    if line.contains('\n') {
        return Err(ControlError::Refused(
            "a path may not contain a newline".into(),
        ));
    }
    stream
        .write_all(format!("{line}\n").as_bytes())
        .map_err(err)?;
    let mut line = String::new();
    BufReader::new(stream.take(4096))
        .read_line(&mut line)
        .map_err(err)?;
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("ok") {
        Ok(rest.trim().to_string())
    } else if let Some(why) = line.strip_prefix("error: ") {
        Err(ControlError::Refused(why.to_string()))
    } else {
        Err(ControlError::Refused(format!("unexpected answer {line:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_garbage_is_refused() {
        let path = std::env::temp_dir().join(format!("devmodel-ctl-{}.sock", std::process::id()));
        let handler: Handler = Arc::new(|c| match c {
            Command::Info => Ok("state=r time=1.5".into()),
            Command::Shutdown => Err("the guest does not listen".into()),
            _ => Ok(String::new()),
        });
        let server = ControlServer::start(&path, handler).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(request(&path, &Command::Info).unwrap(), "state=r time=1.5");
        assert_eq!(request(&path, &Command::Pause).unwrap(), "");
        assert!(matches!(
            request(&path, &Command::Shutdown),
            Err(ControlError::Refused(why)) if why == "the guest does not listen"
        ));
        // A client sending garbage or a huge line gets an error and the server keeps serving.
        let mut raw = UnixStream::connect(&path).unwrap();
        raw.write_all(&[b'x'; 10_000]).unwrap();
        let mut answer = String::new();
        let _ = BufReader::new(raw).read_line(&mut answer);
        assert!(answer.starts_with("error"), "{answer:?}");
        assert_eq!(request(&path, &Command::Unpause).unwrap(), "");
        let change = Command::BlockConfigure {
            device: "hdc".into(),
            path: "/images/with space.iso".into(),
        };
        assert_eq!(Command::parse(&change.line()), Some(change));
        for up in [true, false] {
            let link = Command::SetLink { nic: 2, up };
            assert_eq!(Command::parse(&link.line()), Some(link));
        }
        assert_eq!(Command::parse("set-link 1 sideways"), None);
        assert_eq!(Command::parse("set-link x up"), None);
        drop(server);
        assert!(!path.exists());
    }
}
