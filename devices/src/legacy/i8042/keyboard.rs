//! The PS/2 keyboard on the controller's first port: its command protocol and its scancodes.
//!
//! # Commands
//!
//! The keyboard acknowledges each command byte with 0xFA (ACK) and answers 0xFE (resend) to bytes it does not
//! understand. Commands with an argument acknowledge the argument too. A byte with bit 7 set where the LED or
//! typematic argument was expected is a new command instead (that is how a keyboard recovers from a host that
//! gave up half way), and the set-3 key lists of 0xFB-0xFD run until the next command byte (0xED or above).
//!
//! | byte | command |
//! |------|---------|
//! | ED *n* | set the LEDs: bit 0 Scroll, 1 Num, 2 Caps Lock |
//! | EE | echo: answers EE (no ACK) |
//! | F0 *n* | *n* = 0: answer the current scancode set (1-3); 1-3: select that set |
//! | F2 | identify: ACK, AB 83 (an MF2 keyboard) |
//! | F3 *n* | typematic rate and delay (stored; see below) |
//! | F4 | enable scanning (clears the output buffer) |
//! | F5 | defaults and disable scanning |
//! | F6 | defaults and enable scanning |
//! | F7 / F8 / F9 / FA | set 3: every key typematic / make-break / make-only / typematic-make-break |
//! | FB / FC / FD *keys…* | set 3: the listed keys typematic / make-break / make-only |
//! | FE | resend the last byte (an argument still expected stays expected) |
//! | FF | reset: ACK, then AA (self test passed); defaults, LEDs off, scanning on |
//!
//! "Defaults" are scancode set 2, typematic 10.9 characters/s after 500 ms, and the set-3 key attributes of
//! power-on. F0, F4, F5, F6 and FF also discard scancodes the host has not read yet.
//!
//! Replies are given in the keyboard's own terms (set number 2, identify AB 83); a controller with translation on
//! turns them into what the CPU sees (41, AB 41), exactly as it does for scancodes.
//!
//! Replies go ahead of scancodes still waiting, and a new byte from the host drops replies the host never read,
//! as a keyboard answers a command before it resumes sending keys and abandons an answer the host interrupted.
//!
//! # Keys
//!
//! Front-ends report keys by their set-1 codes ([`super::scancodes::Key`]); the keyboard sends them in its current
//! set. Print Screen and Pause depend on the modifiers held, as on a real keyboard:
//!
//! | key | set 1 | set 2 |
//! |-----|-------|-------|
//! | Print Screen | `E0 2A E0 37` / `E0 B7 E0 AA` | `E0 12 E0 7C` / `E0 F0 7C E0 F0 12` |
//! | … with Shift or Ctrl | `E0 37` / `E0 B7` | `E0 7C` / `E0 F0 7C` |
//! | … with Alt (SysRq) | `54` / `D4` | `84` / `F0 84` |
//! | Pause (make only) | `E1 1D 45 E1 9D C5` | `E1 14 77 E1 F0 14 F0 77` |
//! | … with Ctrl (Break) | `E0 46 E0 C6` | `E0 7E E0 F0 7E` |
//!
//! Set 3 sends one byte per key and has no special cases: each set-3 code has a break attribute (send `F0 c` on
//! release) and a typematic attribute (repeat the make code), set per key with F7-FD. The grey navigation keys'
//! "fake shift" codes some keyboards wrap around them in sets 1 and 2 are not sent (drivers discard them).
//!
//! **Typematic repeat** comes from the front-end: a VNC client or window system repeats a held key as further
//! key-down events, and the keyboard passes each one on as a repeated make code (in set 3 only for keys with the
//! typematic attribute; Pause never repeats). The rate set with F3 is stored and reported but not generated here,
//! which would only double the repeats.
//!
//! While scanning is disabled keys are dropped. The scancode buffer holds [`QUEUE_MAX`] bytes; a key whose bytes
//! do not fit is dropped and the overrun code (00 in sets 2 and 3, FF in set 1) is queued in its place, once,
//! until keys fit again. A key's bytes are queued whole or not at all, so the host never sees half a sequence.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::scancodes::{
    self, Key, KEY_LALT, KEY_LCTRL, KEY_LSHIFT, KEY_PAUSE, KEY_PRINT, KEY_RALT, KEY_RCTRL,
    KEY_RSHIFT, SET3_DEFAULT_MAKE_BREAK,
};

/// Acknowledge.
pub const ACK: u8 = 0xfa;
/// "Send that again": the byte was not understood.
pub const RESEND: u8 = 0xfe;
/// Basic assurance test passed (after reset).
pub const BAT_OK: u8 = 0xaa;
/// Echo reply.
pub const ECHO: u8 = 0xee;
/// The most scancode or movement-packet bytes a device holds for the host; more are dropped (keyboard) or held
/// back as accumulated motion (mouse), so a guest that never reads cannot make memory grow.
pub const QUEUE_MAX: usize = 256;
/// The most reply bytes a device holds. A reply is at most four bytes and a new command drops unread ones, so
/// this only bounds a restored state.
pub const REPLY_MAX: usize = 16;

/// Bytes a PS/2 device has for the host: replies to the last command first, then scancodes or movement packets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortQueue {
    /// Replies to the host's last byte.
    replies: VecDeque<u8>,
    /// Scancodes or movement packets, bounded by [`QUEUE_MAX`].
    data: VecDeque<u8>,
}

impl PortQueue {
    /// Queues a reply byte (dropped if [`REPLY_MAX`] are waiting).
    pub fn reply(&mut self, byte: u8) {
        if self.replies.len() < REPLY_MAX {
            self.replies.push_back(byte);
        }
    }

    /// Appends data bytes if all of them fit within `limit` (at most [`QUEUE_MAX`]) bytes of data; returns
    /// whether they were queued.
    pub fn push_data(&mut self, bytes: &[u8], limit: usize) -> bool {
        if self.data.len() + bytes.len() > limit.min(QUEUE_MAX) {
            return false;
        }
        self.data.extend(bytes);
        true
    }

    /// How many more data bytes fit.
    pub fn data_room(&self) -> usize {
        QUEUE_MAX.saturating_sub(self.data.len())
    }

    /// The next byte for the host.
    pub fn pop(&mut self) -> Option<u8> {
        self.replies.pop_front().or_else(|| self.data.pop_front())
    }

    /// Drops replies not yet read.
    pub fn drop_replies(&mut self) {
        self.replies.clear();
    }

    /// Drops scancodes or packets not yet read.
    pub fn clear_data(&mut self) {
        self.data.clear();
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.replies.clear();
        self.data.clear();
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.replies.len() + self.data.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.data.is_empty()
    }

    /// Cuts a restored queue to its bounds.
    pub(super) fn sanitise(&mut self) {
        self.replies.truncate(REPLY_MAX);
        self.data.truncate(QUEUE_MAX);
    }
}

/// A set of byte values (keys, or set-3 codes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    /// Every value.
    pub const ALL: ByteSet = ByteSet([u64::MAX; 4]);

    /// Whether `v` is in the set.
    pub fn contains(&self, v: u8) -> bool {
        self.0[usize::from(v >> 6)] & (1 << (v & 63)) != 0
    }

    /// Adds or removes `v`.
    pub fn set(&mut self, v: u8, on: bool) {
        let word = &mut self.0[usize::from(v >> 6)];
        if on {
            *word |= 1 << (v & 63);
        } else {
            *word &= !(1 << (v & 63));
        }
    }
}

/// Typematic setting after reset: 10.9 characters/s after 500 ms.
pub const TYPEMATIC_DEFAULT: u8 = 0x2b;

/// The keyboard's settings and protocol state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ps2Keyboard {
    /// Scancode set, 1 to 3.
    scan_set: u8,
    /// Whether key presses are reported (0xF4 / 0xF5).
    scanning: bool,
    /// Scroll, num and caps lock LEDs (bits 0-2).
    leds: u8,
    /// Typematic rate (bits 0-4) and delay (bits 5-6).
    typematic: u8,
    /// A command waiting for its argument byte(s).
    awaiting: Option<u8>,
    /// The last byte sent, for 0xFE.
    last_sent: u8,
    /// The keys the front-end holds down: repeats and the Print Screen / Pause variants depend on them.
    held: ByteSet,
    /// Set-3 codes that send a break code.
    set3_break: ByteSet,
    /// Set-3 codes that repeat.
    set3_repeat: ByteSet,
    /// An overrun code has been queued; further keys are dropped until one fits again.
    overrun: bool,
}

impl Default for Ps2Keyboard {
    fn default() -> Self {
        let (set3_break, set3_repeat) = set3_defaults();
        Ps2Keyboard {
            scan_set: 2,
            scanning: true,
            leds: 0,
            typematic: TYPEMATIC_DEFAULT,
            awaiting: None,
            last_sent: 0,
            held: ByteSet::default(),
            set3_break,
            set3_repeat,
            overrun: false,
        }
    }
}

/// The set-3 key attributes after reset: (keys with a break code, keys that repeat).
fn set3_defaults() -> (ByteSet, ByteSet) {
    let mut make_break = ByteSet::default();
    let mut repeat = ByteSet::ALL;
    for code in SET3_DEFAULT_MAKE_BREAK {
        make_break.set(code, true);
        repeat.set(code, false);
    }
    (make_break, repeat)
}

impl Ps2Keyboard {
    /// Whether key presses are reported.
    pub fn scanning(&self) -> bool {
        self.scanning
    }

    /// The active scancode set (1 to 3).
    pub fn scan_set(&self) -> u8 {
        self.scan_set
    }

    /// The LED bits last set (bit 0 Scroll, 1 Num, 2 Caps Lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    /// The typematic byte last set with 0xF3: bits 0-4 rate, 5-6 delay.
    pub fn typematic(&self) -> u8 {
        self.typematic
    }

    /// Whether set-3 code `code` sends a break code.
    pub fn set3_breaks(&self, code: u8) -> bool {
        self.set3_break.contains(code)
    }

    /// Whether set-3 code `code` repeats.
    pub fn set3_repeats(&self, code: u8) -> bool {
        self.set3_repeat.contains(code)
    }

    fn send(&mut self, out: &mut PortQueue, byte: u8) {
        self.last_sent = byte;
        out.reply(byte);
    }

    /// What 0xF5 and 0xF6 restore (the LEDs stay).
    fn defaults(&mut self) {
        self.scan_set = 2;
        self.typematic = TYPEMATIC_DEFAULT;
        (self.set3_break, self.set3_repeat) = set3_defaults();
        self.overrun = false;
    }

    /// Handles one byte from the host; replies go to `out`.
    pub fn write(&mut self, byte: u8, out: &mut PortQueue) {
        out.drop_replies();
        if byte == RESEND {
            // The host missed the last byte; an argument still expected stays expected.
            let last = self.last_sent;
            out.reply(last);
            return;
        }
        if let Some(cmd) = self.awaiting.take() {
            if self.argument(cmd, byte, out) {
                return;
            }
        }
        self.command(byte, out);
    }

    /// Takes `byte` as the argument of `cmd`; false when it is a new command instead.
    fn argument(&mut self, cmd: u8, byte: u8, out: &mut PortQueue) -> bool {
        match cmd {
            0xed | 0xf3 if byte & 0x80 != 0 => return false,
            0xed => self.leds = byte & 0x07,
            0xf3 => self.typematic = byte,
            0xf0 => match byte {
                0 => {
                    self.send(out, ACK);
                    let set = self.scan_set;
                    self.send(out, set);
                    return true;
                }
                1..=3 => self.scan_set = byte,
                0xed..=0xff => return false,
                _ => {
                    // Not a set: ask for the argument again.
                    self.awaiting = Some(cmd);
                    self.send(out, RESEND);
                    return true;
                }
            },
            // 0xFB-0xFD: one more key of the list, which goes on until a command.
            _ => {
                if byte >= 0xed {
                    return false;
                }
                let (make_break, repeat) = match cmd {
                    0xfb => (false, true),
                    0xfc => (true, false),
                    _ => (false, false),
                };
                self.set3_break.set(byte, make_break);
                self.set3_repeat.set(byte, repeat);
                self.awaiting = Some(cmd);
            }
        }
        self.send(out, ACK);
        true
    }

    fn command(&mut self, byte: u8, out: &mut PortQueue) {
        match byte {
            0xed | 0xf3 | 0xfb..=0xfd => {
                self.awaiting = Some(byte);
                self.send(out, ACK);
            }
            0xf0 => {
                out.clear_data();
                self.awaiting = Some(byte);
                self.send(out, ACK);
            }
            0xee => self.send(out, ECHO),
            0xf2 => {
                self.send(out, ACK);
                self.send(out, 0xab);
                self.send(out, 0x83);
            }
            0xf4 => {
                out.clear_data();
                self.scanning = true;
                self.overrun = false;
                self.send(out, ACK);
            }
            0xf5 | 0xf6 => {
                out.clear_data();
                self.defaults();
                self.scanning = byte == 0xf6;
                self.send(out, ACK);
            }
            0xf7..=0xfa => {
                let (make_break, repeat) = match byte {
                    0xf7 => (false, true),
                    0xf8 => (true, false),
                    0xf9 => (false, false),
                    _ => (true, true),
                };
                let pick = |all: bool| {
                    if all {
                        ByteSet::ALL
                    } else {
                        ByteSet::default()
                    }
                };
                self.set3_break = pick(make_break);
                self.set3_repeat = pick(repeat);
                self.send(out, ACK);
            }
            0xff => {
                out.clear();
                let held = self.held;
                *self = Ps2Keyboard {
                    held,
                    ..Ps2Keyboard::default()
                };
                self.send(out, ACK);
                self.send(out, BAT_OK);
            }
            _ => self.send(out, RESEND),
        }
    }

    /// A key went down or up at the front-end: `scancode` is its set-1 code (`0xE0nn` for extended keys). Queues
    /// the bytes the current set sends for it.
    pub fn key(&mut self, scancode: u16, down: bool, out: &mut PortQueue) {
        let Some(key) = scancodes::key_from_scancode(scancode) else {
            crate::rate_limited!(
                log::Level::Debug,
                "i8042: front-end key {:#06x} is not a PC scancode; dropped",
                scancode
            );
            return;
        };
        let repeat = down && self.held.contains(key);
        self.held.set(key, down);
        if !self.scanning {
            return;
        }
        let bytes = match self.scan_set {
            1 => self.set1_sequence(key, down, repeat),
            3 => self.set3_sequence(key, down, repeat),
            _ => self.set2_sequence(key, down, repeat),
        };
        if bytes.is_empty() {
            return;
        }
        // One byte stays free for the overrun code.
        if out.push_data(&bytes, QUEUE_MAX - 1) {
            self.overrun = false;
            self.last_sent = bytes[bytes.len() - 1];
        } else if !self.overrun {
            self.overrun = true;
            let code = if self.scan_set == 1 { 0xff } else { 0x00 };
            out.push_data(&[code], QUEUE_MAX);
            self.last_sent = code;
        }
    }

    fn held_any(&self, keys: [Key; 2]) -> bool {
        keys.iter().any(|&k| self.held.contains(k))
    }

    fn shift_held(&self) -> bool {
        self.held_any([KEY_LSHIFT, KEY_RSHIFT])
    }

    fn ctrl_held(&self) -> bool {
        self.held_any([KEY_LCTRL, KEY_RCTRL])
    }

    fn alt_held(&self) -> bool {
        self.held_any([KEY_LALT, KEY_RALT])
    }

    fn set1_sequence(&self, key: Key, down: bool, repeat: bool) -> Vec<u8> {
        let brk = if down { 0 } else { 0x80 };
        match key {
            KEY_PAUSE if !down || repeat => Vec::new(),
            KEY_PAUSE if self.ctrl_held() => vec![0xe0, 0x46, 0xe0, 0xc6],
            KEY_PAUSE => vec![0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5],
            KEY_PRINT if self.alt_held() => vec![0x54 | brk],
            KEY_PRINT if self.shift_held() || self.ctrl_held() => vec![0xe0, 0x37 | brk],
            KEY_PRINT if down => vec![0xe0, 0x2a, 0xe0, 0x37],
            KEY_PRINT => vec![0xe0, 0xb7, 0xe0, 0xaa],
            _ if key & scancodes::EXTENDED != 0 => vec![0xe0, (key & 0x7f) | brk],
            _ => vec![key | brk],
        }
    }

    fn set2_sequence(&self, key: Key, down: bool, repeat: bool) -> Vec<u8> {
        match key {
            KEY_PAUSE if !down || repeat => Vec::new(),
            KEY_PAUSE if self.ctrl_held() => vec![0xe0, 0x7e, 0xe0, 0xf0, 0x7e],
            KEY_PAUSE => vec![0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77],
            KEY_PRINT if self.alt_held() => {
                if down {
                    vec![0x84]
                } else {
                    vec![0xf0, 0x84]
                }
            }
            KEY_PRINT if self.shift_held() || self.ctrl_held() => {
                if down {
                    vec![0xe0, 0x7c]
                } else {
                    vec![0xe0, 0xf0, 0x7c]
                }
            }
            KEY_PRINT if down => vec![0xe0, 0x12, 0xe0, 0x7c],
            KEY_PRINT => vec![0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12],
            _ => {
                let mut seq = Vec::with_capacity(3);
                if key & scancodes::EXTENDED != 0 {
                    seq.push(0xe0);
                }
                if !down {
                    seq.push(0xf0);
                }
                seq.push(scancodes::set2_code(key));
                seq
            }
        }
    }

    fn set3_sequence(&self, key: Key, down: bool, repeat: bool) -> Vec<u8> {
        let Some(code) = scancodes::set3_code(key) else {
            return Vec::new();
        };
        if down {
            if repeat && !self.set3_repeat.contains(code) {
                Vec::new()
            } else {
                vec![code]
            }
        } else if self.set3_break.contains(code) {
            vec![0xf0, code]
        } else {
            Vec::new()
        }
    }

    /// Replaces values a guest could not have produced (in a restored state) by power-on ones.
    pub(super) fn sanitise(&mut self) {
        if !(1..=3).contains(&self.scan_set) {
            self.scan_set = 2;
        }
        self.leds &= 0x07;
        if !matches!(self.awaiting, Some(0xed | 0xf0 | 0xf3 | 0xfb..=0xfd) | None) {
            self.awaiting = None;
        }
    }
}
