//! Keys from VNC clients to PC scancodes.
//!
//! RFB's KeyEvent carries an X11 *keysym*: the symbol the client's layout produced ("a", "A", "@",
//! "Return"), not the key that was pressed. The guest, however, needs set-1 scancodes of physical keys,
//! interpreted by the guest's own layout. So a keysym is mapped back to the key that produces it on the
//! layout the guest uses ([`Keymap`], Xen's `keymap=`); the client sends Shift and AltGr as keys of their own,
//! so `A` and `a` both map to the A key. This only works when client and guest layouts agree, which is why the
//! QEMU Extended Key Event extension exists: capable clients (TigerVNC, gtk-vnc, noVNC) send the raw scancode
//! alongside the keysym, and [`xt_to_scancode`] turns QEMU's numbering of it into ours. Unknown keysyms are
//! ignored.
//!
//! Scancodes are PC set 1 as `u16`; keys with an 0xE0 prefix are `0xE0nn` (see
//! [`devices::display::KeyboardInput`]). Two keys have no two-byte form: Pause is reported as `0xE046` (as
//! QEMU does; a real keyboard sends `E1 1D 45 E1 9D C5` for it, and `E0 46` only as Ctrl+Break) and
//! Print Screen as `0xE037` (a real keyboard adds fake shifts around it, and sends `54` with Alt held).

use std::str::FromStr;

use thiserror::Error;

/// An unknown keymap name.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown keymap {0:?} (known: en-us, de, fr, ja)")]
pub struct UnknownKeymap(pub String);

/// The guest's keyboard layout, for clients that send only keysyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keymap {
    /// US English (QWERTY).
    #[default]
    EnUs,
    /// German (QWERTZ).
    De,
    /// French (AZERTY).
    Fr,
    /// Japanese (JIS 106/109).
    Ja,
}

impl FromStr for Keymap {
    type Err = UnknownKeymap;

    /// Xen/QEMU keymap names: `en-us` (also `us`, `en`), `de`, `fr`, `ja` (also `jp`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en-us" | "us" | "en" => Ok(Keymap::EnUs),
            "de" => Ok(Keymap::De),
            "fr" => Ok(Keymap::Fr),
            "ja" | "jp" => Ok(Keymap::Ja),
            _ => Err(UnknownKeymap(s.to_string())),
        }
    }
}

/// Keys that are the same on every layout: editing, function, modifier and keypad keys.
const SPECIAL: &[(u32, u16)] = &[
    (0xff08, 0x0E),   // BackSpace
    (0xff09, 0x0F),   // Tab
    (0xfe20, 0x0F),   // ISO_Left_Tab (Shift+Tab)
    (0xff0d, 0x1C),   // Return
    (0xff13, 0xE046), // Pause
    (0xff14, 0x46),   // Scroll_Lock
    (0xff15, 0xE037), // Sys_Req (Alt+Print)
    (0xff1b, 0x01),   // Escape
    (0xff50, 0xE047), // Home
    (0xff51, 0xE04B), // Left
    (0xff52, 0xE048), // Up
    (0xff53, 0xE04D), // Right
    (0xff54, 0xE050), // Down
    (0xff55, 0xE049), // Prior
    (0xff56, 0xE051), // Next
    (0xff57, 0xE04F), // End
    (0xff61, 0xE037), // Print
    (0xff63, 0xE052), // Insert
    (0xff67, 0xE05D), // Menu
    (0xff6b, 0xE046), // Break
    (0xff7e, 0xE038), // Mode_switch (AltGr)
    (0xfe03, 0xE038), // ISO_Level3_Shift (AltGr)
    (0xff7f, 0x45),   // Num_Lock
    (0xff8d, 0xE01C), // KP_Enter
    (0xff95, 0x47),   // KP_Home
    (0xff96, 0x4B),   // KP_Left
    (0xff97, 0x48),   // KP_Up
    (0xff98, 0x4D),   // KP_Right
    (0xff99, 0x50),   // KP_Down
    (0xff9a, 0x49),   // KP_Prior
    (0xff9b, 0x51),   // KP_Next
    (0xff9c, 0x4F),   // KP_End
    (0xff9d, 0x4C),   // KP_Begin
    (0xff9e, 0x52),   // KP_Insert
    (0xff9f, 0x53),   // KP_Delete
    (0xffaa, 0x37),   // KP_Multiply
    (0xffab, 0x4E),   // KP_Add
    (0xffac, 0x53),   // KP_Separator
    (0xffad, 0x4A),   // KP_Subtract
    (0xffae, 0x53),   // KP_Decimal
    (0xffaf, 0xE035), // KP_Divide
    (0xffb0, 0x52),   // KP_0
    (0xffb1, 0x4F),
    (0xffb2, 0x50),
    (0xffb3, 0x51),
    (0xffb4, 0x4B),
    (0xffb5, 0x4C),
    (0xffb6, 0x4D),
    (0xffb7, 0x47),
    (0xffb8, 0x48),
    (0xffb9, 0x49), // KP_9
    (0xffbe, 0x3B), // F1
    (0xffbf, 0x3C),
    (0xffc0, 0x3D),
    (0xffc1, 0x3E),
    (0xffc2, 0x3F),
    (0xffc3, 0x40),
    (0xffc4, 0x41),
    (0xffc5, 0x42),
    (0xffc6, 0x43),
    (0xffc7, 0x44),   // F10
    (0xffc8, 0x57),   // F11
    (0xffc9, 0x58),   // F12
    (0xffe1, 0x2A),   // Shift_L
    (0xffe2, 0x36),   // Shift_R
    (0xffe3, 0x1D),   // Control_L
    (0xffe4, 0xE01D), // Control_R
    (0xffe5, 0x3A),   // Caps_Lock
    (0xffe7, 0xE05B), // Meta_L
    (0xffe8, 0xE05C), // Meta_R
    (0xffe9, 0x38),   // Alt_L
    (0xffea, 0xE038), // Alt_R
    (0xffeb, 0xE05B), // Super_L
    (0xffec, 0xE05C), // Super_R
    (0xffff, 0xE053), // Delete
    (0xff2a, 0x29),   // Zenkaku_Hankaku (JIS)
    (0xff22, 0x7B),   // Muhenkan (JIS)
    (0xff23, 0x79),   // Henkan_Mode (JIS)
    (0xff27, 0x70),   // Hiragana_Katakana (JIS)
    (0xff30, 0x3A),   // Eisu_toggle (JIS, the Caps Lock key)
];

/// Letters at their QWERTY positions, digits and space: common to all layouts unless overridden.
const COMMON: &[(u32, u16)] = &[
    (b'a' as u32, 0x1E),
    (b'b' as u32, 0x30),
    (b'c' as u32, 0x2E),
    (b'd' as u32, 0x20),
    (b'e' as u32, 0x12),
    (b'f' as u32, 0x21),
    (b'g' as u32, 0x22),
    (b'h' as u32, 0x23),
    (b'i' as u32, 0x17),
    (b'j' as u32, 0x24),
    (b'k' as u32, 0x25),
    (b'l' as u32, 0x26),
    (b'm' as u32, 0x32),
    (b'n' as u32, 0x31),
    (b'o' as u32, 0x18),
    (b'p' as u32, 0x19),
    (b'q' as u32, 0x10),
    (b'r' as u32, 0x13),
    (b's' as u32, 0x1F),
    (b't' as u32, 0x14),
    (b'u' as u32, 0x16),
    (b'v' as u32, 0x2F),
    (b'w' as u32, 0x11),
    (b'x' as u32, 0x2D),
    (b'y' as u32, 0x15),
    (b'z' as u32, 0x2C),
    (b'1' as u32, 0x02),
    (b'2' as u32, 0x03),
    (b'3' as u32, 0x04),
    (b'4' as u32, 0x05),
    (b'5' as u32, 0x06),
    (b'6' as u32, 0x07),
    (b'7' as u32, 0x08),
    (b'8' as u32, 0x09),
    (b'9' as u32, 0x0A),
    (b'0' as u32, 0x0B),
    (b' ' as u32, 0x39),
];

const fn c(ch: char) -> u32 {
    ch as u32
}

const EN_US: &[(u32, u16)] = &[
    (c('`'), 0x29),
    (c('~'), 0x29),
    (c('!'), 0x02),
    (c('@'), 0x03),
    (c('#'), 0x04),
    (c('$'), 0x05),
    (c('%'), 0x06),
    (c('^'), 0x07),
    (c('&'), 0x08),
    (c('*'), 0x09),
    (c('('), 0x0A),
    (c(')'), 0x0B),
    (c('-'), 0x0C),
    (c('_'), 0x0C),
    (c('='), 0x0D),
    (c('+'), 0x0D),
    (c('['), 0x1A),
    (c('{'), 0x1A),
    (c(']'), 0x1B),
    (c('}'), 0x1B),
    (c('\\'), 0x2B),
    (c('|'), 0x2B),
    (c(';'), 0x27),
    (c(':'), 0x27),
    (c('\''), 0x28),
    (c('"'), 0x28),
    (c(','), 0x33),
    (c('<'), 0x33),
    (c('.'), 0x34),
    (c('>'), 0x34),
    (c('/'), 0x35),
    (c('?'), 0x35),
];

const DE: &[(u32, u16)] = &[
    (c('y'), 0x2C),
    (c('z'), 0x15),
    (c('!'), 0x02),
    (c('"'), 0x03),
    (c('²'), 0x03),
    (c('§'), 0x04),
    (c('³'), 0x04),
    (c('$'), 0x05),
    (c('%'), 0x06),
    (c('&'), 0x07),
    (c('/'), 0x08),
    (c('{'), 0x08),
    (c('('), 0x09),
    (c('['), 0x09),
    (c(')'), 0x0A),
    (c(']'), 0x0A),
    (c('='), 0x0B),
    (c('}'), 0x0B),
    (c('ß'), 0x0C),
    (c('?'), 0x0C),
    (c('\\'), 0x0C),
    (c('´'), 0x0D),
    (c('`'), 0x0D),
    (0xfe51, 0x0D), // dead_acute
    (0xfe50, 0x0D), // dead_grave
    (c('@'), 0x10),
    (0x20ac, 0x12), // EuroSign
    (c('ü'), 0x1A),
    (c('+'), 0x1B),
    (c('*'), 0x1B),
    (c('~'), 0x1B),
    (c('ö'), 0x27),
    (c('ä'), 0x28),
    (c('^'), 0x29),
    (c('°'), 0x29),
    (0xfe52, 0x29), // dead_circumflex
    (c('#'), 0x2B),
    (c('\''), 0x2B),
    (c('µ'), 0x32),
    (c(','), 0x33),
    (c(';'), 0x33),
    (c('.'), 0x34),
    (c(':'), 0x34),
    (c('-'), 0x35),
    (c('_'), 0x35),
    (c('<'), 0x56),
    (c('>'), 0x56),
    (c('|'), 0x56),
];

const FR: &[(u32, u16)] = &[
    (c('a'), 0x10),
    (c('q'), 0x1E),
    (c('z'), 0x11),
    (c('w'), 0x2C),
    (c('m'), 0x27),
    (c('&'), 0x02),
    (c('é'), 0x03),
    (c('~'), 0x03),
    (c('"'), 0x04),
    (c('#'), 0x04),
    (c('\''), 0x05),
    (c('{'), 0x05),
    (c('('), 0x06),
    (c('['), 0x06),
    (c('-'), 0x07),
    (c('|'), 0x07),
    (c('è'), 0x08),
    (c('`'), 0x08),
    (c('_'), 0x09),
    (c('\\'), 0x09),
    (c('ç'), 0x0A),
    (c('^'), 0x0A),
    (c('à'), 0x0B),
    (c('@'), 0x0B),
    (c(')'), 0x0C),
    (c('°'), 0x0C),
    (c(']'), 0x0C),
    (c('='), 0x0D),
    (c('+'), 0x0D),
    (c('}'), 0x0D),
    (0x20ac, 0x12), // EuroSign
    (0xfe52, 0x1A), // dead_circumflex
    (0xfe57, 0x1A), // dead_diaeresis
    (c('$'), 0x1B),
    (c('£'), 0x1B),
    (c('¤'), 0x1B),
    (c('ù'), 0x28),
    (c('%'), 0x28),
    (c('²'), 0x29),
    (c('*'), 0x2B),
    (c('µ'), 0x2B),
    (c(','), 0x32),
    (c('?'), 0x32),
    (c(';'), 0x33),
    (c('.'), 0x33),
    (c(':'), 0x34),
    (c('/'), 0x34),
    (c('!'), 0x35),
    (c('§'), 0x35),
    (c('<'), 0x56),
    (c('>'), 0x56),
];

const JA: &[(u32, u16)] = &[
    (c('!'), 0x02),
    (c('"'), 0x03),
    (c('#'), 0x04),
    (c('$'), 0x05),
    (c('%'), 0x06),
    (c('&'), 0x07),
    (c('\''), 0x08),
    (c('('), 0x09),
    (c(')'), 0x0A),
    (c('-'), 0x0C),
    (c('='), 0x0C),
    (c('^'), 0x0D),
    (c('~'), 0x0D),
    (c('¥'), 0x7D),
    (c('|'), 0x7D),
    (c('@'), 0x1A),
    (c('`'), 0x1A),
    (c('['), 0x1B),
    (c('{'), 0x1B),
    (c(';'), 0x27),
    (c('+'), 0x27),
    (c(':'), 0x28),
    (c('*'), 0x28),
    (c(']'), 0x2B),
    (c('}'), 0x2B),
    (c(','), 0x33),
    (c('<'), 0x33),
    (c('.'), 0x34),
    (c('>'), 0x34),
    (c('/'), 0x35),
    (c('?'), 0x35),
    (c('\\'), 0x73),
    (c('_'), 0x73),
];

fn lookup(table: &[(u32, u16)], keysym: u32) -> Option<u16> {
    table.iter().find(|(k, _)| *k == keysym).map(|(_, s)| *s)
}

/// Folds a keysym to the one the tables use: Unicode keysyms of Latin-1 characters to Latin-1, capital letters
/// (ASCII and Latin-1) to small ones.
fn normalize(keysym: u32) -> u32 {
    let ks = if keysym & 0xFF00_0000 == 0x0100_0000 {
        let cp = keysym & 0x00FF_FFFF;
        match cp {
            0x20..=0x7E | 0xA0..=0xFF => cp,
            0x20AC => 0x20AC, // the EuroSign keysym has this value too
            _ => keysym,
        }
    } else {
        keysym
    };
    match ks {
        0x41..=0x5A => ks + 0x20,
        0xC0..=0xDE if ks != 0xD7 => ks + 0x20,
        _ => ks,
    }
}

impl Keymap {
    /// The scancode of the key producing `keysym` on this layout, or `None` for keysyms the layout lacks.
    pub fn scancode(self, keysym: u32) -> Option<u16> {
        if let Some(s) = lookup(SPECIAL, keysym) {
            return Some(s);
        }
        let ks = normalize(keysym);
        let layout = match self {
            Keymap::EnUs => EN_US,
            Keymap::De => DE,
            Keymap::Fr => FR,
            Keymap::Ja => JA,
        };
        lookup(layout, ks).or_else(|| lookup(COMMON, ks))
    }
}

/// Converts a QEMU Extended Key Event keycode ("XT" numbering: set-1 code, `0x80 | code` for 0xE0-prefixed
/// keys) to our scancode form. QEMU numbers Print Screen 0x54 and Pause 0xC6; 0 (the client did not know the
/// key) and anything above 0xFF give `None`.
pub fn xt_to_scancode(keycode: u32) -> Option<u16> {
    match keycode {
        0x54 => Some(0xE037),
        0x01..=0x7F => Some(keycode as u16),
        0x81..=0xFF => Some(0xE000 | (keycode as u16 & 0x7F)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!("en-us".parse(), Ok(Keymap::EnUs));
        assert_eq!("DE".parse(), Ok(Keymap::De));
        assert_eq!("fr".parse(), Ok(Keymap::Fr));
        assert_eq!("ja".parse(), Ok(Keymap::Ja));
        assert!("xx".parse::<Keymap>().is_err());
    }

    #[test]
    fn en_us() {
        let k = Keymap::EnUs;
        assert_eq!(k.scancode(0x61), Some(0x1E)); // a
        assert_eq!(k.scancode(0x41), Some(0x1E)); // A
        assert_eq!(k.scancode(0x7A), Some(0x2C)); // z
        assert_eq!(k.scancode(0x40), Some(0x03)); // @ = Shift+2
        assert_eq!(k.scancode(0x30), Some(0x0B)); // 0
        assert_eq!(k.scancode(0x2F), Some(0x35)); // /
        assert_eq!(k.scancode(0xff0d), Some(0x1C)); // Return
        assert_eq!(k.scancode(0xff52), Some(0xE048)); // Up
        assert_eq!(k.scancode(0xffe4), Some(0xE01D)); // Control_R
        assert_eq!(k.scancode(0xffff), Some(0xE053)); // Delete
        assert_eq!(k.scancode(0xffc9), Some(0x58)); // F12
        assert_eq!(k.scancode(0xffaf), Some(0xE035)); // KP_Divide
        assert_eq!(k.scancode(0x0100_0061), Some(0x1E)); // Unicode 'a'
        assert_eq!(k.scancode(0xfc), None); // ü is not on a US keyboard
        assert_eq!(k.scancode(0x1234_5678), None);
        assert_eq!(k.scancode(0), None);
    }

    #[test]
    fn de() {
        let k = Keymap::De;
        assert_eq!(k.scancode(c('y')), Some(0x2C));
        assert_eq!(k.scancode(c('Z')), Some(0x15));
        assert_eq!(k.scancode(c('ü')), Some(0x1A));
        assert_eq!(k.scancode(c('Ü')), Some(0x1A));
        assert_eq!(k.scancode(c('ö')), Some(0x27));
        assert_eq!(k.scancode(c('ä')), Some(0x28));
        assert_eq!(k.scancode(c('ß')), Some(0x0C));
        assert_eq!(k.scancode(c('-')), Some(0x35));
        assert_eq!(k.scancode(c('@')), Some(0x10)); // AltGr+Q
        assert_eq!(k.scancode(c('<')), Some(0x56));
        assert_eq!(k.scancode(0x20ac), Some(0x12)); // €
        assert_eq!(k.scancode(0x0100_20ac), Some(0x12)); // € as Unicode keysym
        assert_eq!(k.scancode(c('a')), Some(0x1E));
        assert_eq!(k.scancode(c('1')), Some(0x02));
    }

    #[test]
    fn fr() {
        let k = Keymap::Fr;
        assert_eq!(k.scancode(c('a')), Some(0x10));
        assert_eq!(k.scancode(c('Q')), Some(0x1E));
        assert_eq!(k.scancode(c('z')), Some(0x11));
        assert_eq!(k.scancode(c('w')), Some(0x2C));
        assert_eq!(k.scancode(c('m')), Some(0x27));
        assert_eq!(k.scancode(c('é')), Some(0x03));
        assert_eq!(k.scancode(c('à')), Some(0x0B));
        assert_eq!(k.scancode(c('1')), Some(0x02)); // Shift+& key
        assert_eq!(k.scancode(c(',')), Some(0x32));
        assert_eq!(k.scancode(c('!')), Some(0x35));
        assert_eq!(k.scancode(c('ù')), Some(0x28));
    }

    #[test]
    fn ja() {
        let k = Keymap::Ja;
        assert_eq!(k.scancode(c('@')), Some(0x1A));
        assert_eq!(k.scancode(c(':')), Some(0x28));
        assert_eq!(k.scancode(c('"')), Some(0x03));
        assert_eq!(k.scancode(c('\\')), Some(0x73));
        assert_eq!(k.scancode(c('¥')), Some(0x7D));
        assert_eq!(k.scancode(0xff2a), Some(0x29)); // Zenkaku_Hankaku
        assert_eq!(k.scancode(0xff23), Some(0x79)); // Henkan
        assert_eq!(k.scancode(c('q')), Some(0x10));
    }

    #[test]
    fn layout_tables_have_no_duplicate_keysyms() {
        for t in [SPECIAL, COMMON, EN_US, DE, FR, JA] {
            for (i, (k, _)) in t.iter().enumerate() {
                assert!(
                    !t[i + 1..].iter().any(|(k2, _)| k2 == k),
                    "duplicate keysym {k:#x}"
                );
            }
        }
        // The US layout maps every printable ASCII character.
        for ch in 0x20u32..0x7F {
            assert!(Keymap::EnUs.scancode(ch).is_some(), "{ch:#x}");
        }
    }

    #[test]
    fn xt_keycodes() {
        assert_eq!(xt_to_scancode(0x1E), Some(0x1E)); // A
        assert_eq!(xt_to_scancode(0x9D), Some(0xE01D)); // Right Ctrl
        assert_eq!(xt_to_scancode(0xCD), Some(0xE04D)); // Right arrow
        assert_eq!(xt_to_scancode(0xB8), Some(0xE038)); // AltGr
        assert_eq!(xt_to_scancode(0xC6), Some(0xE046)); // Pause
        assert_eq!(xt_to_scancode(0x54), Some(0xE037)); // Print Screen
        assert_eq!(xt_to_scancode(0x73), Some(0x73)); // JIS Ro
        assert_eq!(xt_to_scancode(0), None);
        assert_eq!(xt_to_scancode(0x80), None);
        assert_eq!(xt_to_scancode(0x100), None);
        assert_eq!(xt_to_scancode(u32::MAX), None);
    }
}
