//! `devmodel console`: the user's terminal connected to a domain's serial port, as `xm console` did.
//!
//! The serial port's back-end must be a pty (`serial='pty'`, the usual HVM setting); the console opens it and
//! relays bytes both ways. Ctrl-] detaches, leaving the guest running. While attached, the terminal is in raw
//! mode so every key reaches the guest; it is restored on the way out.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

/// The detach key: Ctrl-].
pub const DETACH: u8 = 0x1d;

/// Why the console ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The pty could not be opened.
    #[error("cannot open the domain's serial port {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Relaying failed.
    #[error("console: {0}")]
    Io(#[from] std::io::Error),
}

/// Puts a terminal in raw mode and restores it when dropped; does nothing for a non-terminal.
struct RawMode {
    fd: RawFd,
    saved: Option<libc::termios>,
}

impl RawMode {
    fn enter(fd: RawFd) -> RawMode {
        // SAFETY: isatty/tcgetattr/tcsetattr only read or set terminal attributes of `fd`, into a local struct.
        let saved = unsafe {
            if libc::isatty(fd) != 1 {
                None
            } else {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(fd, &mut t) != 0 {
                    None
                } else {
                    let saved = t;
                    libc::cfmakeraw(&mut t);
                    libc::tcsetattr(fd, libc::TCSANOW, &t);
                    Some(saved)
                }
            }
        };
        RawMode { fd, saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the attributes read from the same descriptor in `enter`.
            unsafe {
                libc::tcsetattr(self.fd, libc::TCSANOW, saved);
            }
        }
    }
}

/// Relays between this process's stdin/stdout and the pty at `pty` until Ctrl-], end of input, or the domain
/// going away.
pub fn attach(pty: &Path) -> Result<(), ConsoleError> {
    let mut port = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(pty)
        .map_err(|source| ConsoleError::Open {
            path: pty.display().to_string(),
            source,
        })?;
    let stdin_fd = std::io::stdin().as_raw_fd();
    let _raw = RawMode::enter(stdin_fd);
    let mut stdout = std::io::stdout();
    let mut stdin_open = true;
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [
            libc::pollfd {
                fd: port.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { stdin_fd } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a live array of two pollfd structs for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match port.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    stdout.write_all(&buf[..n])?;
                    stdout.flush()?;
                }
                // EIO: the device model closed the pty (the domain is gone).
                Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if stdin_open && fds[1].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            // A plain read(2): std's buffered stdin could keep bytes that poll() then never reports.
            // SAFETY: reads at most `buf.len()` bytes into the live buffer.
            let n = unsafe { libc::read(stdin_fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            let n = n as usize;
            if n == 0 {
                // End of input: keep showing output until the domain ends or the user kills us.
                stdin_open = false;
                continue;
            }
            let data = &buf[..n];
            if let Some(pos) = data.iter().position(|&b| b == DETACH) {
                port.write_all(&data[..pos])?;
                return Ok(());
            }
            port.write_all(data)?;
        }
    }
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        // The pty must not become our controlling terminal.
        self.custom_flags(libc::O_NOCTTY)
    }
}
