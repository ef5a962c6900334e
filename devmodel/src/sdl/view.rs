//! The SDL window's decisions, kept apart from SDL so they are tested in every build: where the guest screen
//! goes in the window, the title, the Ctrl-Alt hot keys, and the keys and buttons the guest holds.

use devices::display::Buttons;

use super::keys;

/// Where the guest screen is drawn in the window, in window pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub w: u32,
    /// Height.
    pub h: u32,
}

/// The largest rectangle with the guest's aspect ratio that fits the window, centred (black bars fill the
/// rest, as QEMU's SDL window letterboxes). A window of the guest's size shows it 1:1.
pub fn fit(guest: (u32, u32), window: (u32, u32)) -> Placement {
    let (gw, gh) = (u64::from(guest.0), u64::from(guest.1));
    let (ww, wh) = (u64::from(window.0), u64::from(window.1));
    if gw == 0 || gh == 0 || ww == 0 || wh == 0 {
        return Placement {
            x: 0,
            y: 0,
            w: window.0,
            h: window.1,
        };
    }
    // Compare ww/wh with gw/gh without rounding: the narrower side decides the scale.
    let (w, h) = if ww * gh <= wh * gw {
        (ww, (ww * gh / gw).max(1))
    } else {
        ((wh * gw / gh).max(1), wh)
    };
    Placement {
        x: ((ww - w) / 2) as u32,
        y: ((wh - h) / 2) as u32,
        w: w as u32,
        h: h as u32,
    }
}

/// The guest pixel under window position (`x`, `y`), clamped to the screen (a pointer over the black bars
/// sits on the nearest edge).
pub fn to_guest(place: Placement, guest: (u32, u32), x: i32, y: i32) -> (u32, u32) {
    let axis = |pos: i32, start: u32, len: u32, size: u32| -> u32 {
        if len == 0 || size == 0 {
            return 0;
        }
        let offset = (i64::from(pos) - i64::from(start)).clamp(0, i64::from(len) - 1) as u64;
        (offset * u64::from(size) / u64::from(len)) as u32
    };
    (
        axis(x, place.x, place.w, guest.0),
        axis(y, place.y, place.h, guest.1),
    )
}

/// The window title: the domain name, and how to let go of the pointer while it is grabbed.
pub fn title(name: &str, grabbed: bool) -> String {
    if grabbed {
        format!("{name} - press Ctrl-Alt-G to release the mouse")
    } else {
        name.to_string()
    }
}

/// What one key event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    /// Pass this set-1 scancode to the guest.
    Guest(u16, bool),
    /// Ctrl-Alt-G: grab or release the pointer.
    ToggleGrab,
    /// Ctrl-Alt-F: full screen on or off.
    ToggleFullScreen,
    /// Nothing (a key a PC keyboard lacks, or the release of a hot key).
    None,
}

/// The keyboard as the window sees it: which modifiers are down (for the hot keys) and which keys the guest
/// was told are down (to lift them when the window loses the keyboard, so no key sticks in the guest).
#[derive(Debug, Default)]
pub struct KeyState {
    ctrl: [bool; 2],
    alt: [bool; 2],
    /// Set-1 scancodes the guest holds down, in the order pressed.
    held: Vec<u16>,
    /// Hot keys whose release must not reach the guest either.
    swallowed: Vec<u16>,
}

impl KeyState {
    /// A key (by SDL scancode / HID usage) went down or up; `down` repeats while a key is held.
    pub fn key(&mut self, usage: u16, down: bool) -> KeyAction {
        match usage {
            keys::LEFT_CTRL => self.ctrl[0] = down,
            keys::RIGHT_CTRL => self.ctrl[1] = down,
            keys::LEFT_ALT => self.alt[0] = down,
            keys::RIGHT_ALT => self.alt[1] = down,
            _ => {}
        }
        let chord = self.ctrl.contains(&true) && self.alt.contains(&true);
        if down && chord && !self.swallowed.contains(&usage) {
            let action = match usage {
                keys::KEY_G => Some(KeyAction::ToggleGrab),
                keys::KEY_F => Some(KeyAction::ToggleFullScreen),
                _ => None,
            };
            if let Some(action) = action {
                self.swallowed.push(usage);
                return action;
            }
        }
        if let Some(i) = self.swallowed.iter().position(|&u| u == usage) {
            // Auto-repeat of a held hot key, or its release: the guest never saw it go down.
            if !down {
                self.swallowed.swap_remove(i);
            }
            return KeyAction::None;
        }
        let Some(code) = keys::set1(usage) else {
            return KeyAction::None;
        };
        if down {
            if !self.held.contains(&code) {
                self.held.push(code);
            }
        } else {
            self.held.retain(|&c| c != code);
        }
        KeyAction::Guest(code, down)
    }

    /// The window lost the keyboard: every key the guest holds, to be released (the latest first); the
    /// modifiers are forgotten.
    pub fn release_all(&mut self) -> Vec<u16> {
        let mut held = std::mem::take(&mut self.held);
        *self = KeyState::default();
        held.reverse();
        held
    }
}

/// Pointer buttons for the guest from SDL's button state.
pub fn buttons(left: bool, middle: bool, right: bool) -> Buttons {
    u8::from(left) | u8::from(middle) << 1 | u8::from(right) << 2
}

/// A wheel turn of `steps` notches (SDL: positive away from the user, "up") as the guest pointer sees it:
/// `dz` (negative is up, as the VNC server reports it) and the wheel button bit (3 up, 4 down).
pub fn wheel(steps: i32) -> (i32, Buttons) {
    match steps.signum() {
        1 => (-steps, 0x08),
        -1 => (-steps, 0x10),
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_screen_fits_the_window_keeping_its_shape() {
        let p = |x, y, w, h| Placement { x, y, w, h };
        // Same size: 1:1.
        assert_eq!(fit((720, 400), (720, 400)), p(0, 0, 720, 400));
        // Twice the size.
        assert_eq!(fit((640, 480), (1280, 960)), p(0, 0, 1280, 960));
        // Wider window: bars left and right.
        assert_eq!(fit((640, 480), (1000, 480)), p(180, 0, 640, 480));
        // Taller window: bars above and below.
        assert_eq!(fit((800, 600), (800, 1000)), p(0, 200, 800, 600));
        // Full screen 1920x1080 with a 4:3 guest.
        assert_eq!(fit((1024, 768), (1920, 1080)), p(240, 0, 1440, 1080));
        // A tiny window still shows a pixel.
        assert_eq!(fit((4096, 16), (10, 10)), p(0, 4, 10, 1));
        // Degenerate sizes fill the window rather than divide by zero.
        assert_eq!(fit((0, 0), (300, 200)), p(0, 0, 300, 200));
        assert_eq!(fit((640, 480), (0, 0)), p(0, 0, 0, 0));
    }

    #[test]
    fn window_positions_map_to_guest_pixels() {
        let guest = (640, 480);
        let place = fit(guest, (1000, 480));
        assert_eq!(to_guest(place, guest, 180, 0), (0, 0));
        assert_eq!(to_guest(place, guest, 819, 479), (639, 479));
        // Over the bars: clamped to the edges.
        assert_eq!(to_guest(place, guest, 5, 100), (0, 100));
        assert_eq!(to_guest(place, guest, 999, -4), (639, 0));
        let place = fit(guest, (1280, 960));
        assert_eq!(to_guest(place, guest, 641, 3), (320, 1));
        assert_eq!(to_guest(fit((0, 0), (10, 10)), (0, 0), 5, 5), (0, 0));
    }

    #[test]
    fn titles() {
        assert_eq!(title("web1", false), "web1");
        assert_eq!(
            title("web1", true),
            "web1 - press Ctrl-Alt-G to release the mouse"
        );
    }

    const G: u16 = keys::KEY_G;
    const F: u16 = keys::KEY_F;

    #[test]
    fn ctrl_alt_g_and_f_are_hot_keys_the_guest_never_sees() {
        let mut k = KeyState::default();
        assert_eq!(k.key(G, true), KeyAction::Guest(0x22, true));
        assert_eq!(k.key(G, false), KeyAction::Guest(0x22, false));
        assert_eq!(k.key(keys::LEFT_CTRL, true), KeyAction::Guest(0x1D, true));
        assert_eq!(k.key(keys::LEFT_ALT, true), KeyAction::Guest(0x38, true));
        assert_eq!(k.key(G, true), KeyAction::ToggleGrab);
        // Auto-repeat and release of the hot key stay with the window.
        assert_eq!(k.key(G, true), KeyAction::None);
        assert_eq!(k.key(G, false), KeyAction::None);
        assert_eq!(k.key(F, true), KeyAction::ToggleFullScreen);
        // Released after the modifiers: still swallowed.
        assert_eq!(k.key(keys::LEFT_ALT, false), KeyAction::Guest(0x38, false));
        assert_eq!(k.key(F, false), KeyAction::None);
        // Ctrl alone does not make a chord; the right-hand modifiers do.
        assert_eq!(k.key(G, true), KeyAction::Guest(0x22, true));
        assert_eq!(k.key(G, false), KeyAction::Guest(0x22, false));
        assert_eq!(k.key(keys::LEFT_CTRL, false), KeyAction::Guest(0x1D, false));
        k.key(keys::RIGHT_CTRL, true);
        k.key(keys::RIGHT_ALT, true);
        assert_eq!(k.key(F, true), KeyAction::ToggleFullScreen);
        // Other keys with Ctrl-Alt go to the guest (Ctrl-Alt-Delete).
        assert_eq!(k.key(0x4C, true), KeyAction::Guest(0xE053, true));
        // Keys a PC keyboard lacks do nothing.
        assert_eq!(k.key(0x68, true), KeyAction::None);
    }

    #[test]
    fn losing_the_keyboard_lifts_every_held_key() {
        let mut k = KeyState::default();
        k.key(keys::LEFT_CTRL, true);
        k.key(keys::LEFT_ALT, true);
        k.key(G, true); // swallowed
        k.key(0x04, true); // A
        k.key(0x04, true); // repeat
        k.key(0x52, true); // Up
        k.key(0x52, false);
        assert_eq!(k.release_all(), vec![0x1E, 0x38, 0x1D]);
        assert_eq!(k.release_all(), Vec::<u16>::new());
        // Modifiers were forgotten: G alone reaches the guest, and G's swallowed release is forgotten too.
        assert_eq!(k.key(G, true), KeyAction::Guest(0x22, true));
    }

    #[test]
    fn buttons_and_wheel() {
        assert_eq!(buttons(true, false, false), 0x01);
        assert_eq!(buttons(false, true, true), 0x06);
        assert_eq!(wheel(1), (-1, 0x08));
        assert_eq!(wheel(-2), (2, 0x10));
        assert_eq!(wheel(0), (0, 0));
    }
}
