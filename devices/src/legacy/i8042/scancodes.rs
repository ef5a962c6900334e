//! Scancode tables: the 8042's set-2 → set-1 translation, and what each key sends in scancode sets 1, 2 and 3.
//!
//! The facts come from the public "Keyboard scancodes" notes by Andries Brouwer (the controller's translation
//! table and the per-key correspondence of sets 1, 2 and 3); the tables below were written from them.
//!
//! - **Set 1** (the XT's codes): make code `c` or `E0 c`, break code `c | 0x80` (after the `E0`).
//! - **Set 2** (the AT keyboard's native set, what every keyboard sends after reset): make code `c` or `E0 c`,
//!   break code `F0 c` or `E0 F0 c`.
//! - **Set 3** (PS/2 terminal style): one byte per key, no prefixes; `F0 c` on release only for keys whose
//!   break code is enabled, see [`super::keyboard`].
//!
//! The 8042 translates set 2 into set 1 byte by byte: `F0` is swallowed and sets bit 7 of the byte after it, every
//! other byte goes through [`translate`]. Translation is one-to-one on 0x01-0x7F, so a key's set-2 code is the
//! translation table read backwards from its set-1 code; only F7 (set 2 `83`) and Alt+SysRq (`84`) have set-2 codes
//! above 0x7F, and the table maps those two down as well.
//!
//! Keys are named by their set-1 make code, as the display front-ends deliver them ([`Key`]).

/// A key: its set-1 make code in bits 0-6, bit 7 ([`EXTENDED`]) set for keys with an `E0` prefix.
pub type Key = u8;

/// [`Key`] bit for keys whose set-1 code has an `E0` prefix.
pub const EXTENDED: Key = 0x80;

/// Left Shift.
pub const KEY_LSHIFT: Key = 0x2a;
/// Right Shift.
pub const KEY_RSHIFT: Key = 0x36;
/// Left Ctrl.
pub const KEY_LCTRL: Key = 0x1d;
/// Right Ctrl (`E0 1D`).
pub const KEY_RCTRL: Key = EXTENDED | 0x1d;
/// Left Alt.
pub const KEY_LALT: Key = 0x38;
/// Right Alt / AltGr (`E0 38`).
pub const KEY_RALT: Key = EXTENDED | 0x38;
/// Print Screen / SysRq, as front-ends report it (`E0 37`).
pub const KEY_PRINT: Key = EXTENDED | 0x37;
/// Pause / Break, as front-ends report it (`E0 46`, the code a real keyboard sends for Ctrl+Break).
pub const KEY_PAUSE: Key = EXTENDED | 0x46;

/// The [`Key`] of a front-end scancode (`0x01`-`0x7F`, or `0xE001`-`0xE07F` for keys with an `E0` prefix), if it
/// is one.
pub fn key_from_scancode(scancode: u16) -> Option<Key> {
    match scancode {
        0x01..=0x7f => Some(scancode as u8),
        0xe001..=0xe07f => Some(EXTENDED | (scancode & 0x7f) as u8),
        _ => None,
    }
}

/// The 8042's translation of keyboard bytes 0x00-0x7F (set 2) into what the CPU reads (set 1).
const XLATE: [u8; 128] = [
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29,
    0x59, // 00
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03,
    0x5b, // 10
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06,
    0x5d, // 20
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09,
    0x5f, // 30
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c,
    0x61, // 40
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63,
    0x76, // 50
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f,
    0x6f, // 60
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46,
    0x54, // 70
];

/// The controller's translation of one keyboard byte other than the `F0` break prefix (which the caller handles:
/// it is dropped and sets bit 7 of the translated byte that follows).
pub fn translate(byte: u8) -> u8 {
    match byte {
        0x00..=0x7f => XLATE[usize::from(byte)],
        0x83 => 0x41, // F7
        0x84 => 0x54, // Alt+SysRq
        // Everything else above 0x7F (prefixes, ACK, BAT, echo, resend) passes unchanged.
        other => other,
    }
}

/// [`XLATE`] read backwards: the set-2 byte that translates to each set-1 byte 0x01-0x7F.
const SET2_OF_SET1: [u8; 128] = {
    let mut inverse = [0u8; 128];
    let mut set2 = 1;
    while set2 < 128 {
        inverse[XLATE[set2] as usize] = set2 as u8;
        set2 += 1;
    }
    inverse
};

/// A key's set-2 code (without the `E0` prefix that extended keys add).
pub fn set2_code(key: Key) -> u8 {
    match key {
        // The two keys whose set-2 codes lie above 0x7F; 0x02 and 0x7F, which translate to the same values, are
        // not sent by any key.
        0x41 => 0x83,
        0x54 => 0x84,
        _ => SET2_OF_SET1[usize::from(key & 0x7f)],
    }
}

/// A key's set-3 code; `None` for keys set 3 has no code for (the power-management and multimedia keys).
pub fn set3_code(key: Key) -> Option<u8> {
    const F1_TO_F10: [u8; 10] = [0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f];
    let code = match key {
        0x01 => 0x08,                                      // Esc
        0x3b..=0x44 => F1_TO_F10[usize::from(key - 0x3b)], // F1-F10
        0x57 => 0x56,                                      // F11
        0x58 => 0x5e,                                      // F12
        0x2b => 0x5c,                                      // \ |
        0x3a => 0x14,                                      // Caps Lock
        KEY_LCTRL => 0x11,
        KEY_LALT => 0x19,
        0x45 => 0x76, // Num Lock
        0x37 => 0x7e, // Keypad *
        0x4a => 0x84, // Keypad -
        0x4e => 0x7c, // Keypad +
        0x46 => 0x5f, // Scroll Lock
        0x54 => 0x57, // Alt+SysRq: the Print Screen key
        0x56 => 0x13, // the ISO key left of Z
        0x70 => 0x87, // Hiragana/Katakana
        0x79 => 0x86, // Henkan
        0x7b => 0x85, // Muhenkan
        0x73 => 0x51, // Ro
        0x7d => 0x5d, // Yen
        KEY_RALT => 0x39,
        KEY_RCTRL => 0x58,
        0xd2 => 0x67,      // Insert
        0xd3 => 0x64,      // Delete
        0xc7 => 0x6e,      // Home
        0xcf => 0x65,      // End
        0xc9 => 0x6f,      // Page Up
        0xd1 => 0x6d,      // Page Down
        0xcb => 0x61,      // Left
        0xc8 => 0x63,      // Up
        0xd0 => 0x60,      // Down
        0xcd => 0x6a,      // Right
        0xb5 => 0x77,      // Keypad /
        0x9c => 0x79,      // Keypad Enter
        KEY_PRINT => 0x57, // Print Screen
        KEY_PAUSE => 0x62, // Pause
        0xdb => 0x8b,      // Left Windows
        0xdc => 0x8c,      // Right Windows
        0xdd => 0x8d,      // Menu
        0xdf => 0x7f,      // Sleep
        // The remaining keys of the 101-key layout have the same code in sets 2 and 3. Set 3 of the rarer keys
        // (F13-F24, keypad = and the like) is not documented: they send nothing there.
        0x02..=0x53 => set2_code(key),
        _ => return None,
    };
    Some(code)
}

/// Set-3 codes whose break code is enabled after reset: the shift-like keys (Caps Lock, both Shifts, left Ctrl,
/// left Alt) and the keys the 101-key layout did not have (both Windows keys, Menu). Every other key sends its
/// make code only, and repeats.
pub const SET3_DEFAULT_MAKE_BREAK: [u8; 8] = [0x14, 0x12, 0x59, 0x11, 0x19, 0x8b, 0x8c, 0x8d];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_is_one_to_one_on_the_low_half() {
        let mut seen = [false; 128];
        for b in 1..0x80u8 {
            let t = translate(b);
            assert!((1..0x80).contains(&t), "{b:#x} translates to {t:#x}");
            assert!(!seen[usize::from(t)], "{t:#x} twice");
            seen[usize::from(t)] = true;
        }
        assert_eq!(translate(0x00), 0xff, "overrun");
        for b in [0xe0, 0xe1, 0xfa, 0xaa, 0xee, 0xfe, 0xab] {
            assert_eq!(translate(b), b);
        }
    }

    #[test]
    fn set2_codes_translate_back_to_set1() {
        for key in 1..0x80u8 {
            assert_eq!(translate(set2_code(key)), key, "key {key:#x}");
            assert_eq!(translate(set2_code(EXTENDED | key)), key);
        }
        // Spot checks against the published table.
        assert_eq!(set2_code(0x1e), 0x1c); // A
        assert_eq!(set2_code(0x01), 0x76); // Esc
        assert_eq!(set2_code(0x41), 0x83); // F7
        assert_eq!(set2_code(0x54), 0x84); // Alt+SysRq
        assert_eq!(set2_code(KEY_RALT), 0x11);
        assert_eq!(set2_code(0xc8), 0x75); // Up
        assert_eq!(set2_code(0xdb), 0x1f); // Left Windows
    }

    #[test]
    fn set3_codes_are_unique_per_key() {
        let mut owner = [None::<Key>; 256];
        for key in 1..=0xffu8 {
            if key == EXTENDED {
                continue;
            }
            if let Some(code) = set3_code(key) {
                // Alt+SysRq is the Print Screen key again.
                if key == 0x54 {
                    assert_eq!(code, set3_code(KEY_PRINT).unwrap());
                    continue;
                }
                if let Some(other) = owner[usize::from(code)] {
                    panic!("set-3 code {code:#x} for keys {other:#x} and {key:#x}");
                }
                owner[usize::from(code)] = Some(key);
            }
        }
        assert_eq!(set3_code(0x1e), Some(0x1c)); // A
        assert_eq!(set3_code(0xb7), Some(0x57)); // Print Screen
        assert_eq!(set3_code(0xa0), None); // Mute
    }

    #[test]
    fn front_end_scancodes() {
        assert_eq!(key_from_scancode(0x1e), Some(0x1e));
        assert_eq!(key_from_scancode(0xe048), Some(0xc8));
        for bad in [0x0000, 0x0080, 0x00ff, 0xe000, 0xe080, 0xe11d, 0xffff] {
            assert_eq!(key_from_scancode(bad), None, "{bad:#x}");
        }
    }
}
