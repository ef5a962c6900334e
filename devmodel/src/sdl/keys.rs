//! SDL scancodes to PC set-1 scancodes.
//!
//! SDL numbers physical keys by their USB HID usage (keyboard page 0x07) whatever the host's layout, so the
//! SDL window can hand the guest the key that was pressed and let the guest's own layout interpret it: no
//! keymap is involved, unlike VNC clients that send keysyms. The table covers every key of a 105-key PC
//! keyboard (the 104 US keys plus the ISO key beside the left Shift), the five extra keys of a Japanese
//! 106/109-key keyboard, and the common multimedia keys.
//!
//! Results use the form of [`devices::display::KeyboardInput`]: keys with an 0xE0 prefix are `0xE0nn`.
//! Pause and Print Screen follow the VNC server's convention (`vnc::keymap`): `0xE046` and `0xE037`.

/// One key: its USB HID usage (= SDL scancode) and its set-1 scancode.
struct Key {
    usage: u16,
    set1: u16,
}

const fn k(usage: u16, set1: u16) -> Key {
    Key { usage, set1 }
}

/// USB HID keyboard usages (HID Usage Tables, page 0x07) with the PC set-1 scancode of the same key.
const KEYS: &[Key] = &[
    // Letters, HID usages 0x04 (A) to 0x1D (Z).
    k(0x04, 0x1E), // A
    k(0x05, 0x30), // B
    k(0x06, 0x2E), // C
    k(0x07, 0x20), // D
    k(0x08, 0x12), // E
    k(0x09, 0x21), // F
    k(0x0A, 0x22), // G
    k(0x0B, 0x23), // H
    k(0x0C, 0x17), // I
    k(0x0D, 0x24), // J
    k(0x0E, 0x25), // K
    k(0x0F, 0x26), // L
    k(0x10, 0x32), // M
    k(0x11, 0x31), // N
    k(0x12, 0x18), // O
    k(0x13, 0x19), // P
    k(0x14, 0x10), // Q
    k(0x15, 0x13), // R
    k(0x16, 0x1F), // S
    k(0x17, 0x14), // T
    k(0x18, 0x16), // U
    k(0x19, 0x2F), // V
    k(0x1A, 0x11), // W
    k(0x1B, 0x2D), // X
    k(0x1C, 0x15), // Y
    k(0x1D, 0x2C), // Z
    // Digits 1..9, 0.
    k(0x1E, 0x02),
    k(0x1F, 0x03),
    k(0x20, 0x04),
    k(0x21, 0x05),
    k(0x22, 0x06),
    k(0x23, 0x07),
    k(0x24, 0x08),
    k(0x25, 0x09),
    k(0x26, 0x0A),
    k(0x27, 0x0B),
    k(0x28, 0x1C),   // Return
    k(0x29, 0x01),   // Escape
    k(0x2A, 0x0E),   // Backspace
    k(0x2B, 0x0F),   // Tab
    k(0x2C, 0x39),   // Space
    k(0x2D, 0x0C),   // - _
    k(0x2E, 0x0D),   // = +
    k(0x2F, 0x1A),   // [ {
    k(0x30, 0x1B),   // ] }
    k(0x31, 0x2B),   // \ | (US)
    k(0x32, 0x2B),   // ISO # ~ beside Return: the same key position, the same scancode
    k(0x33, 0x27),   // ; :
    k(0x34, 0x28),   // ' "
    k(0x35, 0x29),   // ` ~ (Hankaku/Zenkaku on JIS)
    k(0x36, 0x33),   // , <
    k(0x37, 0x34),   // . >
    k(0x38, 0x35),   // / ?
    k(0x39, 0x3A),   // Caps Lock (Eisu on JIS)
    k(0x3A, 0x3B),   // F1
    k(0x3B, 0x3C),   // F2
    k(0x3C, 0x3D),   // F3
    k(0x3D, 0x3E),   // F4
    k(0x3E, 0x3F),   // F5
    k(0x3F, 0x40),   // F6
    k(0x40, 0x41),   // F7
    k(0x41, 0x42),   // F8
    k(0x42, 0x43),   // F9
    k(0x43, 0x44),   // F10
    k(0x44, 0x57),   // F11
    k(0x45, 0x58),   // F12
    k(0x46, 0xE037), // Print Screen / SysRq
    k(0x47, 0x46),   // Scroll Lock
    k(0x48, 0xE046), // Pause / Break
    k(0x49, 0xE052), // Insert
    k(0x4A, 0xE047), // Home
    k(0x4B, 0xE049), // Page Up
    k(0x4C, 0xE053), // Delete
    k(0x4D, 0xE04F), // End
    k(0x4E, 0xE051), // Page Down
    k(0x4F, 0xE04D), // Right
    k(0x50, 0xE04B), // Left
    k(0x51, 0xE050), // Down
    k(0x52, 0xE048), // Up
    k(0x53, 0x45),   // Num Lock
    k(0x54, 0xE035), // Keypad /
    k(0x55, 0x37),   // Keypad *
    k(0x56, 0x4A),   // Keypad -
    k(0x57, 0x4E),   // Keypad +
    k(0x58, 0xE01C), // Keypad Enter
    k(0x59, 0x4F),   // Keypad 1 End
    k(0x5A, 0x50),   // Keypad 2 Down
    k(0x5B, 0x51),   // Keypad 3 PgDn
    k(0x5C, 0x4B),   // Keypad 4 Left
    k(0x5D, 0x4C),   // Keypad 5
    k(0x5E, 0x4D),   // Keypad 6 Right
    k(0x5F, 0x47),   // Keypad 7 Home
    k(0x60, 0x48),   // Keypad 8 Up
    k(0x61, 0x49),   // Keypad 9 PgUp
    k(0x62, 0x52),   // Keypad 0 Ins
    k(0x63, 0x53),   // Keypad . Del
    k(0x64, 0x56),   // ISO \ | beside the left Shift (the 105th key)
    k(0x65, 0xE05D), // Menu (Application)
    k(0x66, 0xE05E), // Power
    k(0x7F, 0xE020), // Mute
    k(0x80, 0xE030), // Volume Up
    k(0x81, 0xE02E), // Volume Down
    k(0x85, 0x7E),   // Keypad , (Brazilian ABNT2)
    // Japanese 106/109-key keyboard.
    k(0x87, 0x73), // International1: Ro (\ _), also the Brazilian / ? key
    k(0x88, 0x70), // International2: Katakana/Hiragana
    k(0x89, 0x7D), // International3: Yen (¥ |)
    k(0x8A, 0x79), // International4: Henkan
    k(0x8B, 0x7B), // International5: Muhenkan
    // Modifiers.
    k(0xE0, 0x1D),   // Left Ctrl
    k(0xE1, 0x2A),   // Left Shift
    k(0xE2, 0x38),   // Left Alt
    k(0xE3, 0xE05B), // Left GUI (Windows)
    k(0xE4, 0xE01D), // Right Ctrl
    k(0xE5, 0x36),   // Right Shift
    k(0xE6, 0xE038), // Right Alt (AltGr)
    k(0xE7, 0xE05C), // Right GUI
    // SDL's own numbers beyond the HID keyboard page (SDL_SCANCODE_AUDIONEXT and on), for the media keys.
    k(258, 0xE019), // Next track
    k(259, 0xE010), // Previous track
    k(260, 0xE024), // Stop
    k(261, 0xE022), // Play/Pause
    k(262, 0xE020), // Mute (SDL_SCANCODE_AUDIOMUTE)
    k(282, 0xE05F), // Sleep
];

/// Usages of the modifier keys the window's hot keys look at.
pub const LEFT_CTRL: u16 = 0xE0;
/// Right Ctrl.
pub const RIGHT_CTRL: u16 = 0xE4;
/// Left Alt.
pub const LEFT_ALT: u16 = 0xE2;
/// Right Alt (AltGr).
pub const RIGHT_ALT: u16 = 0xE6;
/// The G key (Ctrl-Alt-G releases the pointer).
pub const KEY_G: u16 = 0x0A;
/// The F key (Ctrl-Alt-F toggles full screen).
pub const KEY_F: u16 = 0x09;

/// The set-1 scancode of the key SDL calls `usage` (its `SDL_Scancode` value); `None` for keys a PC keyboard
/// does not have.
pub fn set1(usage: u16) -> Option<u16> {
    KEYS.iter()
        .find(|key| key.usage == usage)
        .map(|key| key.set1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HID usage of a letter: usages run alphabetically from 0x04.
    fn letter(ch: char) -> u16 {
        0x04 + (ch as u16 - 'a' as u16)
    }

    #[test]
    fn letters_follow_the_qwerty_rows() {
        // Set-1 codes run along each physical row of the PC keyboard.
        for (row, first) in [("qwertyuiop", 0x10), ("asdfghjkl", 0x1E), ("zxcvbnm", 0x2C)] {
            for (i, ch) in row.chars().enumerate() {
                assert_eq!(set1(letter(ch)), Some(first + i as u16), "{ch}");
            }
        }
    }

    #[test]
    fn digits_and_function_keys_run_in_order() {
        for d in 1..=10u16 {
            // HID 0x1E is 1 ... 0x27 is 0; set-1 0x02 is 1 ... 0x0B is 0.
            assert_eq!(set1(0x1D + d), Some(1 + d));
        }
        for f in 1..=10u16 {
            assert_eq!(set1(0x39 + f), Some(0x3A + f), "F{f}");
        }
        assert_eq!((set1(0x44), set1(0x45)), (Some(0x57), Some(0x58)));
    }

    /// The same physical keys through the VNC server's en-us keysym table, written independently: a keysym
    /// a US layout produces on each key.
    #[test]
    fn agrees_with_the_vnc_keysym_table() {
        let pairs: &[(u16, u32)] = &[
            (0x28, 0xff0d),      // Return
            (0x29, 0xff1b),      // Escape
            (0x2A, 0xff08),      // BackSpace
            (0x2B, 0xff09),      // Tab
            (0x2C, ' ' as u32),  // space
            (0x2D, '-' as u32),  // minus
            (0x2E, '=' as u32),  // equal
            (0x2F, '[' as u32),  // bracketleft
            (0x30, ']' as u32),  // bracketright
            (0x31, '\\' as u32), // backslash
            (0x33, ';' as u32),  // semicolon
            (0x34, '\'' as u32), // apostrophe
            (0x35, '`' as u32),  // grave
            (0x36, ',' as u32),  // comma
            (0x37, '.' as u32),  // period
            (0x38, '/' as u32),  // slash
            (0x39, 0xffe5),      // Caps_Lock
            (0x46, 0xff61),      // Print
            (0x47, 0xff14),      // Scroll_Lock
            (0x48, 0xff13),      // Pause
            (0x49, 0xff63),      // Insert
            (0x4A, 0xff50),      // Home
            (0x4B, 0xff55),      // Prior
            (0x4C, 0xffff),      // Delete
            (0x4D, 0xff57),      // End
            (0x4E, 0xff56),      // Next
            (0x4F, 0xff53),      // Right
            (0x50, 0xff51),      // Left
            (0x51, 0xff54),      // Down
            (0x52, 0xff52),      // Up
            (0x53, 0xff7f),      // Num_Lock
            (0x54, 0xffaf),      // KP_Divide
            (0x55, 0xffaa),      // KP_Multiply
            (0x56, 0xffad),      // KP_Subtract
            (0x57, 0xffab),      // KP_Add
            (0x58, 0xff8d),      // KP_Enter
            (0x62, 0xffb0),      // KP_0
            (0x63, 0xffae),      // KP_Decimal
            (0x65, 0xff67),      // Menu
            (0xE0, 0xffe3),      // Control_L
            (0xE1, 0xffe1),      // Shift_L
            (0xE2, 0xffe9),      // Alt_L
            (0xE3, 0xffeb),      // Super_L
            (0xE4, 0xffe4),      // Control_R
            (0xE5, 0xffe2),      // Shift_R
            (0xE6, 0xffea),      // Alt_R
            (0xE7, 0xffec),      // Super_R
        ];
        for &(usage, keysym) in pairs {
            assert_eq!(
                set1(usage),
                vnc::Keymap::EnUs.scancode(keysym),
                "HID {usage:#x} / keysym {keysym:#x}"
            );
        }
        for (i, usage) in (0x59..=0x61).enumerate() {
            // Keypad 1..9.
            assert_eq!(set1(usage), vnc::Keymap::EnUs.scancode(0xffb1 + i as u32));
        }
        // JIS keys through the Japanese keysym table.
        let ja: &[(u16, u32)] = &[
            (0x87, '\\' as u32),
            (0x89, '¥' as u32),
            (0x8A, 0xff23), // Henkan_Mode
            (0x8B, 0xff22), // Muhenkan
            (0x88, 0xff27), // Hiragana_Katakana
        ];
        for &(usage, keysym) in ja {
            assert_eq!(set1(usage), vnc::Keymap::Ja.scancode(keysym), "{usage:#x}");
        }
    }

    #[test]
    fn covers_a_105_key_keyboard_plus_jis_without_duplicates() {
        let pc105 = (0x04..=0x65).chain(0xE0..=0xE7).filter(|u| *u != 0x32);
        // 0x04..=0x65 holds 98 usages; without ISO # (same key as \ on a 105-key board) 97, plus 8 modifiers.
        assert_eq!(pc105.clone().count(), 105);
        for usage in pc105 {
            assert!(set1(usage).is_some(), "{usage:#x}");
        }
        for usage in 0x87..=0x8B {
            assert!(set1(usage).is_some(), "JIS {usage:#x}");
        }
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..].iter().all(|b| b.usage != a.usage),
                "usage {:#x} twice",
                a.usage
            );
            // Two usages may name one key (\ and ISO #, the two Mute usages); nothing else shares a code.
            let shared = KEYS.iter().filter(|b| b.set1 == a.set1).count();
            assert!(
                shared == 1 || [0x2B, 0xE020].contains(&a.set1),
                "{:#x}",
                a.set1
            );
            // Only make codes: break codes are the make code with bit 7 set.
            assert_eq!(a.set1 & 0x80, 0, "{:#x}", a.set1);
        }
        assert_eq!(set1(0x00), None);
        assert_eq!(set1(0x68), None, "F13 is not on a PC keyboard");
    }
}
