//! Character back-ends: where a serial port's bytes go and come from.
//!
//! [`CharSpec`] is one entry of the `serial` config key, in the forms qemu-dm accepted; [`open`] turns it into
//! an [`OpenedChar`]: a [`CharBackend`] for the UART plus, for back-ends with file descriptors, a
//! [`CharSubscriber`] the machine adds to its `event_manager::EventManager`.
//!
//! # Flow control in both directions
//!
//! Guest output is never lost while somebody could still read it. [`CharBackend::write`] is non-blocking:
//! it takes what the host side can accept now (the kernel's buffer, then a bounded buffer of
//! [`OUTPUT_BUFFER`] bytes) and returns the count. Whatever it refuses stays in the UART's THR/TX FIFO,
//! with LSR.THRE clear, so the guest's driver waits as for a slow line. Once the buffer has drained, the
//! back-end calls [`CharFrontend::tx_ready`] and the UART sends the rest. Sockets are the exception, as in
//! qemu: while no client is connected, output is dropped so that a guest does not stall for want of a
//! listener.
//!
//! Input runs the other way: the event loop reads only as many bytes as [`CharFrontend::rx_room`] reports
//! and stops polling the descriptor when the receiver is full; the UART calls [`CharBackend::rx_ready`]
//! when the guest has read, which wakes the loop to read again. The kernel buffers the rest, and the
//! sender eventually blocks, which is the back-pressure a real line gives.
//!
//! # Threads and lock order
//!
//! `write` and `rx_ready` run on a vCPU thread; reading, accepting and draining run on the event thread.
//! The UART never holds its state lock while calling a back-end, and a back-end never holds its own lock
//! while calling the UART, so neither order of nesting exists and the two threads cannot deadlock. The
//! vCPU thread wakes the event thread through an eventfd owned by the back-end; there is no thread per
//! back-end.

mod open;
mod spec;
mod stream;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

pub use open::open;
pub use spec::{CharSpec, CharSpecError};
pub use stream::CharSubscriber;

/// Bytes of guest output a back-end buffers beyond what the kernel takes, before it holds the UART.
pub const OUTPUT_BUFFER: usize = 64 * 1024;

/// The host side of a serial port.
pub trait CharBackend: Send + Sync {
    /// Offers guest output; returns how many leading bytes of `data` were taken (never blocks). When fewer
    /// than all, the back-end calls the frontend's [`CharFrontend::tx_ready`] once it can take more.
    fn write(&self, data: &[u8]) -> usize;
    /// The frontend refused input earlier and has room again.
    fn rx_ready(&self) {}
    /// Connects the device that receives input and flow-control notifications. Called once at wiring.
    fn attach(&self, _frontend: Weak<dyn CharFrontend>) {}
}

/// The device side of a serial port, as a back-end sees it. Called without any back-end lock held.
pub trait CharFrontend: Send + Sync {
    /// How many input bytes the device can take now. Zero means full; the device then calls
    /// [`CharBackend::rx_ready`] when it has room.
    fn rx_room(&self) -> usize;
    /// Delivers input; returns how many leading bytes were taken (the rest must be offered again after
    /// [`CharBackend::rx_ready`]).
    fn receive(&self, data: &[u8]) -> usize;
    /// The back-end can take output again.
    fn tx_ready(&self);
}

/// Why a back-end could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CharError {
    /// Opening or creating a file failed.
    #[error("cannot open {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Allocating or configuring a pseudo-terminal failed.
    #[error("cannot set up a pty ({step}): {source}")]
    Pty {
        /// Which step failed.
        step: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// Listening on, accepting on or connecting to a socket failed.
    #[error("{what} {address}: {source}")]
    Socket {
        /// "listen on", "connect to", "accept on".
        what: &'static str,
        /// The socket path or HOST:PORT.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// Setting up standard input/output failed.
    #[error("cannot use stdio ({step}): {source}")]
    Stdio {
        /// Which step failed.
        step: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// The event loop wake-up eventfd could not be created.
    #[error("cannot create an eventfd: {0}")]
    EventFd(std::io::Error),
}

/// An opened back-end.
pub struct OpenedChar {
    /// Give this to the UART.
    pub backend: Arc<dyn CharBackend>,
    /// Add this to the machine's event manager (`add_subscriber`); `None` for `null` and `file:`.
    pub subscriber: Option<CharSubscriber>,
    /// For `pty`: the slave's path, to print as `char device redirected to PATH` and to record for
    /// `xm console`.
    pub pty_path: Option<PathBuf>,
    /// For a listening `tcp:` server: the address actually bound (useful with port 0 in tests).
    pub local_addr: Option<std::net::SocketAddr>,
}

/// `null`: output discarded, no input.
#[derive(Debug, Default)]
pub struct NullBackend;

impl CharBackend for NullBackend {
    fn write(&self, data: &[u8]) -> usize {
        data.len()
    }
}

/// `file:PATH`: output appended to a file, no input.
///
/// Regular files never report "would block", so the write happens on the vCPU thread. A failing write
/// (disk full, I/O error) drops the bytes with a warning rather than stalling the guest forever.
#[derive(Debug)]
pub struct FileBackend {
    file: Mutex<File>,
    path: PathBuf,
}

impl FileBackend {
    /// Opens `path` for appending, creating it if needed.
    pub fn open(path: &std::path::Path) -> Result<Self, CharError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| CharError::File {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::from_file(file, path.to_path_buf()))
    }

    /// Writes to an already open file; `path` names it in log messages.
    pub fn from_file(file: File, path: PathBuf) -> Self {
        FileBackend {
            file: Mutex::new(file),
            path,
        }
    }
}

impl CharBackend for FileBackend {
    fn write(&self, data: &[u8]) -> usize {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(data) {
            crate::rate_limited!(
                log::Level::Warn,
                "serial output to {}: {e}; {} bytes dropped",
                self.path.display(),
                data.len()
            );
        }
        data.len()
    }
}
