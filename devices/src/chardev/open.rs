//! Opening a [`CharSpec`]: pseudo-terminals, standard I/O and sockets.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::stream::{new_stream_backend, Listener, Stream, StreamParts};
use super::{CharError, CharSpec, FileBackend, NullBackend, OpenedChar};

/// Opens the back-end `spec` names.
///
/// A `server` socket without `nowait` blocks here until the first client connects, as qemu-dm did: the
/// machine opens its back-ends before it starts the vCPUs, so the guest's first output reaches the client.
pub fn open(spec: &CharSpec) -> Result<OpenedChar, CharError> {
    let plain = |backend: Arc<dyn super::CharBackend>| OpenedChar {
        backend,
        subscriber: None,
        pty_path: None,
        local_addr: None,
    };
    match spec {
        CharSpec::Null => Ok(plain(Arc::new(NullBackend))),
        CharSpec::File(path) => Ok(plain(Arc::new(FileBackend::open(path)?))),
        CharSpec::Pty => open_pty(),
        CharSpec::Stdio => open_stdio(),
        CharSpec::Unix { path, server, wait } => open_unix(path, *server, *wait),
        CharSpec::Tcp {
            host,
            port,
            server,
            wait,
        } => open_tcp(host, *port, *server, *wait),
    }
}

fn pty_err(step: &'static str) -> impl FnOnce(io::Error) -> CharError {
    move |source| CharError::Pty { step, source }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts the terminal `fd` in raw mode; returns the settings it had.
fn make_raw(fd: RawFd) -> io::Result<libc::termios> {
    // SAFETY: termios is plain data; all-zero is a valid value to be overwritten by tcgetattr.
    let mut tio: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `tio` is a valid termios for tcgetattr to fill.
    if unsafe { libc::tcgetattr(fd, &mut tio) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let saved = tio;
    // SAFETY: `tio` is a valid, initialised termios.
    unsafe { libc::cfmakeraw(&mut tio) };
    // SAFETY: `tio` is a valid termios; fd is a terminal we hold.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &tio) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(saved)
}

/// A new pseudo-terminal. The slave is kept open inside the process: without it, the master reports a
/// hang-up (and reads fail with EIO) whenever nobody has the slave open, which would lose output and make
/// epoll spin. With it, output written before a user attaches waits in the slave's input queue (and, once
/// that is full, in our bounded buffer and then in the UART) until somebody opens `/dev/pts/N` and reads.
fn open_pty() -> Result<OpenedChar, CharError> {
    // SAFETY: posix_openpt takes flags only and returns a new descriptor or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if master < 0 {
        return Err(pty_err("posix_openpt")(io::Error::last_os_error()));
    }
    // SAFETY: `master` is a freshly opened descriptor that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    // SAFETY: grantpt/unlockpt on the pty master we own.
    if unsafe { libc::grantpt(master.as_raw_fd()) } != 0 {
        return Err(pty_err("grantpt")(io::Error::last_os_error()));
    }
    // SAFETY: as above.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } != 0 {
        return Err(pty_err("unlockpt")(io::Error::last_os_error()));
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is writable for its whole length, which is what we pass.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(pty_err("ptsname_r")(io::Error::from_raw_os_error(rc)));
    }
    // SAFETY: ptsname_r succeeded, so `name` holds a NUL-terminated string within its bounds.
    let path = unsafe { CStr::from_ptr(name.as_ptr()) };
    let path = PathBuf::from(path.to_string_lossy().into_owned());
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .map_err(pty_err("open slave"))?;
    // Raw mode: no echo of guest output back into its input, no line editing, 8-bit clean.
    make_raw(slave.as_raw_fd()).map_err(pty_err("raw mode"))?;
    set_nonblocking(master.as_raw_fd()).map_err(pty_err("non-blocking"))?;
    let (backend, subscriber) = new_stream_backend(StreamParts {
        name: format!("serial pty {}", path.display()),
        input: None,
        output: None,
        duplex: Some(Stream::File(File::from(master))),
        listener: None,
        keep: Some(slave),
        restore: None,
    })?;
    Ok(OpenedChar {
        backend,
        subscriber: Some(subscriber),
        pty_path: Some(path),
        local_addr: None,
    })
}

/// A new descriptor (close-on-exec) for the open file `fd` refers to.
fn dup_fd(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor and touches no memory.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(dup) })
}

/// A descriptor for standard stream `fd` that we may make non-blocking without changing the flags of the
/// file description the shell shares: reopening `/proc/self/fd/N` gives a new description for ttys and
/// pipes. `Ok(None)` when the stream is a regular file (epoll cannot watch it).
fn reopen_std(fd: RawFd, write: bool) -> Result<Option<File>, CharError> {
    let err = |step| move |source| CharError::Stdio { step, source };
    let proc_path = format!("/proc/self/fd/{fd}");
    let meta = std::fs::metadata(&proc_path).map_err(err("stat"))?;
    if meta.is_file() {
        return Ok(None);
    }
    let reopened = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(&proc_path);
    match reopened {
        Ok(f) => Ok(Some(f)),
        Err(_) if meta.file_type().is_socket() || meta.file_type().is_char_device() => {
            // Sockets cannot be reopened; share the description and make it non-blocking.
            let file = dup_fd(fd).map_err(err("dup"))?;
            set_nonblocking(file.as_raw_fd()).map_err(err("non-blocking"))?;
            Ok(Some(file))
        }
        Err(e) => Err(err("reopen")(e)),
    }
}

/// `stdio`: stdout for output, stdin for input. A terminal on stdin is put in raw mode (so that the guest
/// sees every key) and restored when the back-end goes away.
fn open_stdio() -> Result<OpenedChar, CharError> {
    let input = reopen_std(libc::STDIN_FILENO, false)?;
    let output = reopen_std(libc::STDOUT_FILENO, true)?;
    let Some(output) = output else {
        // Standard output is a regular file: write it like `file:`, and keep stdin input if any.
        log::info!("serial stdio: standard output is a file; input is not read");
        let stdout = dup_fd(libc::STDOUT_FILENO).map_err(|source| CharError::Stdio {
            step: "dup stdout",
            source,
        })?;
        let backend = FileBackend::from_file(stdout, PathBuf::from("stdout"));
        return Ok(OpenedChar {
            backend: Arc::new(backend),
            subscriber: None,
            pty_path: None,
            local_addr: None,
        });
    };
    // SAFETY: isatty only inspects the descriptor.
    let stdin_tty = unsafe { libc::isatty(libc::STDIN_FILENO) } == 1;
    let mut restore: Option<Box<dyn FnOnce() + Send>> = None;
    if stdin_tty && input.is_some() {
        match make_raw(libc::STDIN_FILENO) {
            Ok(saved) => {
                restore = Some(Box::new(move || {
                    // SAFETY: restores settings tcgetattr returned for the same descriptor.
                    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved) };
                }))
            }
            Err(e) => log::warn!("serial stdio: cannot put the terminal in raw mode: {e}"),
        }
    }
    let (backend, subscriber) = new_stream_backend(StreamParts {
        name: "serial stdio".into(),
        input: input.map(Stream::File),
        output: Some(Stream::File(output)),
        duplex: None,
        listener: None,
        keep: None,
        restore,
    })?;
    Ok(OpenedChar {
        backend,
        subscriber: Some(subscriber),
        pty_path: None,
        local_addr: None,
    })
}

fn open_unix(path: &Path, server: bool, wait: bool) -> Result<OpenedChar, CharError> {
    let address = path.display().to_string();
    let sock_err = |what: &'static str, address: &str| {
        let address = address.to_string();
        move |source| CharError::Socket {
            what,
            address,
            source,
        }
    };
    if !server {
        let stream = UnixStream::connect(path).map_err(sock_err("connect to", &address))?;
        stream
            .set_nonblocking(true)
            .map_err(sock_err("connect to", &address))?;
        return finish_socket(address, Some(Stream::Unix(stream)), None, None);
    }
    // A stale socket left by an earlier run would make bind fail; remove it, but nothing else.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(sock_err("listen on", &address))?;
    let listener = Listener::Unix(listener, path.to_path_buf());
    finish_server(address, listener, wait, None)
}

fn open_tcp(host: &str, port: u16, server: bool, wait: bool) -> Result<OpenedChar, CharError> {
    let address = format!("{host}:{port}");
    let sock_err = |what: &'static str| {
        let address = address.clone();
        move |source| CharError::Socket {
            what,
            address,
            source,
        }
    };
    let host = if host.is_empty() && server {
        "0.0.0.0"
    } else {
        host
    };
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(sock_err(if server { "listen on" } else { "connect to" }))?
        .collect();
    if !server {
        let stream = TcpStream::connect(&addrs[..]).map_err(sock_err("connect to"))?;
        stream
            .set_nonblocking(true)
            .map_err(sock_err("connect to"))?;
        let _ = stream.set_nodelay(true);
        return finish_socket(address, Some(Stream::Tcp(stream)), None, None);
    }
    let listener = TcpListener::bind(&addrs[..]).map_err(sock_err("listen on"))?;
    let local = listener.local_addr().ok();
    finish_server(address, Listener::Tcp(listener), wait, local)
}

fn finish_server(
    address: String,
    listener: Listener,
    wait: bool,
    local_addr: Option<std::net::SocketAddr>,
) -> Result<OpenedChar, CharError> {
    let accept_err = |source| CharError::Socket {
        what: "accept on",
        address: address.clone(),
        source,
    };
    let mut first = None;
    if wait {
        log::info!("serial: waiting for a connection on {address}");
        // The listener is still blocking here: this is the one place where we wait, before the guest runs.
        first = listener.accept().map_err(accept_err)?;
    }
    let fd = match &listener {
        Listener::Tcp(l) => l.set_nonblocking(true),
        Listener::Unix(l, _) => l.set_nonblocking(true),
    };
    fd.map_err(accept_err)?;
    finish_socket(address, first, Some(listener), local_addr)
}

fn finish_socket(
    address: String,
    stream: Option<Stream>,
    listener: Option<Listener>,
    local_addr: Option<std::net::SocketAddr>,
) -> Result<OpenedChar, CharError> {
    let (backend, mut subscriber) = new_stream_backend(StreamParts {
        name: format!("serial socket {address}"),
        input: None,
        output: None,
        duplex: None,
        listener,
        keep: None,
        restore: None,
    })?;
    if let Some(stream) = stream {
        subscriber.connect(stream);
    }
    Ok(OpenedChar {
        backend,
        subscriber: Some(subscriber),
        pty_path: None,
        local_addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn reopened_std_pipe_is_non_blocking_without_touching_the_shared_description() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors are fresh and owned by these Files from here on.
        let (read_end, mut write_end) =
            unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut reopened = reopen_std(read_end.as_raw_fd(), false).unwrap().unwrap();
        let mut buf = [0u8; 8];
        let e = reopened.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // SAFETY: F_GETFL on a descriptor we own.
        let flags = unsafe { libc::fcntl(read_end.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0, "the original stays blocking");
        write_end.write_all(b"key").unwrap();
        assert_eq!(reopened.read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"key");
    }

    #[test]
    fn a_regular_file_on_stdio_is_not_polled() {
        let path = std::env::temp_dir().join(format!("devmodel-{}-stdio-file", std::process::id()));
        let f = File::create(&path).unwrap();
        assert!(reopen_std(f.as_raw_fd(), true).unwrap().is_none());
        let _ = std::fs::remove_file(&path);
    }
}
