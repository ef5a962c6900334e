//! The SDL window (`sdl=1`): the guest's screen in a window on the host's X display, with the host keyboard
//! and mouse going into the guest, as qemu-dm's SDL console offered it.
//!
//! - The window is titled with the domain name. It shows the [`DisplayHub`](devices::display::DisplayHub)'s
//!   frames scaled to the window, keeping the guest's aspect ratio with black bars (QEMU's SDL letterboxes
//!   too); it follows mode changes, resizing itself to the guest's size unless the user resized it or it is
//!   full screen. `fullscreen=1` starts it full screen; Ctrl-Alt-F toggles full screen.
//! - Keys go to the guest by position (SDL's USB HID scancodes, turned into PC set-1 by [`keys`]), so the
//!   guest's own layout applies, whether or not the pointer is grabbed.
//! - A click in the window grabs the pointer (SDL relative mouse mode) when the guest has only a relative
//!   mouse; Ctrl-Alt-G grabs and releases it, and the title says how to get out while grabbed. With an
//!   absolute pointing device (a USB tablet) the pointer needs no grab. Hot keys never reach the guest.
//! - Closing the window powers the machine off, as closing qemu-dm's window did (it ended the domain).
//!
//! SDL wants its video calls on the process's main thread, so the runner moves its event loop to another
//! thread while the main thread runs [`SdlWindow::run`]. The window part is built only with the `sdl` cargo
//! feature (it links libSDL2); [`keys`] and [`view`] hold the decisions and are built and tested always.

// Without the window these are used by their tests only; they stay in every build so CI tests them.
#[cfg_attr(not(feature = "sdl"), allow(dead_code))]
pub mod keys;
#[cfg_attr(not(feature = "sdl"), allow(dead_code))]
pub mod view;
#[cfg(feature = "sdl")]
mod window;

#[cfg(feature = "sdl")]
pub use window::SdlWindow;

/// Why the SDL window could not open or keep running.
#[derive(Debug, thiserror::Error)]
#[error("SDL window: {what}: {message}")]
pub struct SdlError {
    /// What was being done.
    pub what: String,
    /// SDL's own message.
    pub message: String,
}

impl SdlError {
    /// An error while doing `what`, with SDL's message.
    pub fn new(what: impl Into<String>, message: impl ToString) -> SdlError {
        SdlError {
            what: what.into(),
            message: message.to_string(),
        }
    }
}
