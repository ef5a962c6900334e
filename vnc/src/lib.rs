//! RFB (VNC) server for the device model: `vncviewer host:domid` shows the guest's screen and sends keys and
//! pointer events back.
//!
//! The server sits on the display and input traits of the `devices` crate only ([`DisplayHub`],
//! [`KeyboardInput`], [`PointerInput`]), never on a concrete device, so the VGA model, the PS/2 devices and
//! the USB tablet can change without touching it.
//!
//! What it speaks (RFC 6143 and the community RFB specification):
//! - RFB 3.3, 3.7 and 3.8; security None or VNC Authentication ([`auth`]); the handshake in [`handshake`].
//! - Client messages SetPixelFormat (any true-colour 8/16/32-bpp format in either byte order; colour-map formats
//!   get a fixed BGR233 palette via SetColourMapEntries), SetEncodings, FramebufferUpdateRequest, KeyEvent,
//!   PointerEvent, ClientCutText (dropped), SetDesktopSize (refused) and QEMU's Extended Key Event; anything
//!   else closes the connection ([`protocol`]).
//! - Encodings Raw, CopyRect (for scrolls the display hub detects), Hextile, ZRLE and Tight (zlib, no JPEG)
//!   ([`encodings`]); pseudo-encodings DesktopSize, ExtendedDesktopSize, QEMU Extended Key Event, QEMU
//!   pointer motion change and QEMU LED state.
//! - Keysym → scancode tables for en-us, de, fr and ja ([`keymap`]) for clients without Extended Key Event.
//!
//! Start it with [`VncServer::start`]; drop the handle to stop it. The caller drives [`DisplayHub::refresh`]
//! (about every 30 ms): the server only takes the changes the hub collected, per client, when that client
//! asks for an update.
//!
//! [`DisplayHub`]: devices::display::DisplayHub
//! [`DisplayHub::refresh`]: devices::display::DisplayHub::refresh
//! [`KeyboardInput`]: devices::display::KeyboardInput
//! [`PointerInput`]: devices::display::PointerInput

pub mod auth;
mod client;
pub mod dirty;
pub mod encodings;
pub mod handshake;
pub mod keymap;
pub mod pixel;
pub mod protocol;
mod server;
mod update;

pub use client::ClientError;
pub use keymap::Keymap;
pub use pixel::PixelFormat;
pub use server::{Listen, SharePolicy, VncConfig, VncError, VncServer, BASE_PORT};
pub use update::DEFAULT_ZLIB_LEVEL;
