//! The guest's screen and input on the host: the VNC server (and starting a viewer on it), as qemu-dm offered
//! them to Xen users. The SDL window is [`crate::sdl`].
//!
//! Where the VNC server listens follows qemu-dm: display number = domain id (TCP 5900 + id) unless `vncdisplay`
//! names one; `vnclisten` (default 127.0.0.1, a host name is resolved); `vncunused=1` moves on to the next free
//! display when the port is taken. The real address is printed (the line xend parsed), logged and recorded for
//! the toolstack (`devmodel list -l`, `devmodel vncviewer`).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use devices::display::{DisplayHub, KeyboardInput, PointerInput};
use vnc::{Keymap, Listen, VncConfig, VncServer};

use crate::config::Vnc;

/// Why a display front-end could not start.
#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    /// `vnclisten` names a host that does not resolve.
    #[error("vnclisten: cannot resolve '{host}': {reason}")]
    Resolve { host: String, reason: String },
    /// The VNC server could not listen.
    #[error("VNC server: {0}")]
    Vnc(#[from] vnc::VncError),
    /// The SDL window could not open.
    #[error(transparent)]
    Sdl(#[from] crate::sdl::SdlError),
}

/// The address `vnclisten` names: an IP address as written, or the first address a host name resolves to.
pub fn listen_address(listen: &str) -> Result<IpAddr, FrontendError> {
    if let Ok(ip) = listen.parse::<IpAddr>() {
        return Ok(ip);
    }
    let resolve_error = |reason: String| FrontendError::Resolve {
        host: listen.to_string(),
        reason,
    };
    (listen, 0)
        .to_socket_addrs()
        .map_err(|e| resolve_error(e.to_string()))?
        .next()
        .map(|a| a.ip())
        .ok_or_else(|| resolve_error("no address".into()))
}

/// The keymap for clients that send keysyms only. qemu-dm shipped more layouts than this build has tables for;
/// those fall back to en-us with a warning (clients speaking QEMU's Extended Key Event send scancodes and are
/// not affected).
pub fn keymap(name: &str) -> Keymap {
    name.parse().unwrap_or_else(|_| {
        log::warn!(
            "keymap '{name}': no table in this build (en-us, de, fr, ja); using en-us for VNC clients that send \
             keysyms only"
        );
        Keymap::EnUs
    })
}

/// Starts the VNC server for domain `domid` as `vnc` configures it.
pub fn start_vnc(
    vnc: &Vnc,
    keymap_name: &str,
    domid: u32,
    hub: Arc<DisplayHub>,
    keyboard: Arc<dyn KeyboardInput>,
    pointer: Arc<dyn PointerInput>,
) -> Result<VncServer, FrontendError> {
    let addr = listen_address(&vnc.listen)?;
    // Display numbers beyond the port range are refused by the server with a clear message.
    let display = vnc
        .display
        .unwrap_or_else(|| u16::try_from(domid).unwrap_or(u16::MAX));
    let mut config = VncConfig::new(Listen::Display { addr, display });
    config.unused = vnc.find_unused;
    config.password = vnc.password.as_ref().map(|p| p.0.clone());
    config.keymap = keymap(keymap_name);
    Ok(VncServer::start(config, hub, keyboard, pointer)?)
}

/// The `host:display` form vncviewer takes for `addr` (`host::port` when the port is outside the display range).
pub fn viewer_target(addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
        IpAddr::V4(ip) => ip.to_string(),
    };
    match addr.port().checked_sub(vnc::BASE_PORT) {
        Some(display) if display < 100 => format!("{host}:{display}"),
        _ => format!("{host}::{}", addr.port()),
    }
}

/// The first `vncviewer` (TigerVNC, TightVNC, RealVNC all install one under that name) or `gvncviewer` on
/// `PATH`.
pub fn find_viewer() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["vncviewer", "gvncviewer"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Starts a viewer on `target` in the background (`vncconsole=1`), as xm did; says so when none is installed.
pub fn spawn_viewer(target: &str) {
    let Some(viewer) = find_viewer() else {
        log::warn!(
            "vncconsole: no vncviewer or gvncviewer on PATH; connect to {target} with any VNC viewer"
        );
        return;
    };
    match std::process::Command::new(&viewer)
        .arg(target)
        .stdin(std::process::Stdio::null())
        .spawn()
    {
        // The viewer lives on its own; xm did not wait for it either. Reap it on a thread so it leaves no
        // zombie behind.
        Ok(mut child) => {
            let _ = std::thread::Builder::new()
                .name("vncviewer-reaper".into())
                .spawn(move || child.wait());
        }
        Err(e) => log::warn!("vncconsole: cannot start {}: {e}", viewer.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_targets_use_display_numbers() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(viewer_target(a("127.0.0.1:5903")), "127.0.0.1:3");
        assert_eq!(viewer_target(a("0.0.0.0:5900")), "127.0.0.1:0");
        assert_eq!(viewer_target(a("[::1]:5901")), "[::1]:1");
        assert_eq!(viewer_target(a("10.0.0.1:6100")), "10.0.0.1::6100");
        assert_eq!(viewer_target(a("10.0.0.1:80")), "10.0.0.1::80");
    }

    #[test]
    fn listen_addresses_and_keymaps() {
        assert_eq!(
            listen_address("0.0.0.0").unwrap(),
            "0.0.0.0".parse::<IpAddr>().unwrap()
        );
        assert!(listen_address("localhost").unwrap().is_loopback());
        let err = listen_address("no-such-host.invalid").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("vnclisten: cannot resolve 'no-such-host.invalid'"));
        assert_eq!(keymap("de"), Keymap::De);
        assert_eq!(keymap("en-gb"), Keymap::EnUs);
    }
}
