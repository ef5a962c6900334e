//! The PS/2 keyboard's command side: what a keyboard answers to the bytes the host sends it.
//!
//! A PS/2 keyboard acknowledges each command byte with 0xFA (ACK), answers 0xFE ("resend") to bytes it does
//! not understand, and some commands take one argument byte, which is acknowledged too. This is what firmware
//! and OS drivers exchange with a keyboard while probing and configuring it; key presses (scancodes) are a
//! separate stream that the full keyboard will feed into the same [`PortQueue`].
//!
//! Replies that an 8042 in translation mode would translate to set-1 values (the second identify byte and
//! the scan-set number) are given translated here, because the controller tells the keyboard whether it
//! translates; the general set-2 → set-1 translation of scancodes belongs with scancode generation.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Acknowledge.
pub const ACK: u8 = 0xfa;
/// "Send that again": the byte was not understood.
pub const RESEND: u8 = 0xfe;
/// Basic assurance test passed (after reset).
pub const BAT_OK: u8 = 0xaa;
/// Echo reply.
pub const ECHO: u8 = 0xee;
/// The most bytes a device's output queue holds; more are dropped (a guest that never reads cannot make it
/// grow).
pub const QUEUE_MAX: usize = 256;

/// Bytes a PS/2 device has for the host, oldest first, bounded by [`QUEUE_MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortQueue {
    bytes: VecDeque<u8>,
}

impl PortQueue {
    /// Appends `byte` unless the queue is full (then it is dropped, as a device with a full buffer drops).
    pub fn push(&mut self, byte: u8) {
        if self.bytes.len() < QUEUE_MAX {
            self.bytes.push_back(byte);
        }
    }

    /// The oldest byte.
    pub fn pop(&mut self) -> Option<u8> {
        self.bytes.pop_front()
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }

    /// How many bytes wait.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// The keyboard's settings and protocol state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ps2Keyboard {
    /// Scancode set, 1 to 3.
    scan_set: u8,
    /// Whether key presses are reported (0xF4 / 0xF5).
    scanning: bool,
    /// Scroll, num and caps lock LEDs (bits 0-2).
    leds: u8,
    /// Typematic rate and delay byte.
    typematic: u8,
    /// A command waiting for its argument byte.
    awaiting: Option<u8>,
    /// The last byte sent, for 0xFE.
    last_sent: u8,
}

/// Typematic setting after reset: 10.9 characters/s after 500 ms.
const TYPEMATIC_DEFAULT: u8 = 0x2b;

impl Default for Ps2Keyboard {
    fn default() -> Self {
        Ps2Keyboard {
            scan_set: 2,
            scanning: true,
            leds: 0,
            typematic: TYPEMATIC_DEFAULT,
            awaiting: None,
            last_sent: 0,
        }
    }
}

impl Ps2Keyboard {
    /// Back to the power-on state (what 0xFF does, besides its replies).
    pub fn reset(&mut self) {
        *self = Ps2Keyboard::default();
    }

    /// Whether key presses should be reported.
    pub fn scanning(&self) -> bool {
        self.scanning
    }

    /// The active scancode set (1 to 3).
    pub fn scan_set(&self) -> u8 {
        self.scan_set
    }

    /// The LED bits last set (bit 0 scroll, 1 num, 2 caps lock).
    pub fn leds(&self) -> u8 {
        self.leds
    }

    fn send(&mut self, out: &mut PortQueue, byte: u8) {
        self.last_sent = byte;
        out.push(byte);
    }

    /// The settings 0xF5/0xF6 restore, keeping the LEDs and the scanning state.
    fn defaults(&mut self) {
        self.scan_set = 2;
        self.typematic = TYPEMATIC_DEFAULT;
    }

    /// Handles one byte from the host; replies go to `out`. `translate` is the controller's translation
    /// bit: set-2 values in replies are then given as the set-1 values the controller would produce.
    pub fn write(&mut self, byte: u8, translate: bool, out: &mut PortQueue) {
        let xlate = |set2: u8| -> u8 {
            if !translate {
                return set2;
            }
            match set2 {
                0x83 => 0x41,
                0x01 => 0x43,
                0x02 => 0x41,
                0x03 => 0x3f,
                other => other,
            }
        };
        if let Some(cmd) = self.awaiting.take() {
            match cmd {
                0xed => {
                    self.leds = byte & 0x07;
                    self.send(out, ACK);
                }
                0xf3 => {
                    self.typematic = byte & 0x7f;
                    self.send(out, ACK);
                }
                // 0xF0: 0 asks for the current set, 1-3 select one.
                _ => match byte {
                    0 => {
                        self.send(out, ACK);
                        let set = xlate(self.scan_set);
                        self.send(out, set);
                    }
                    1..=3 => {
                        self.scan_set = byte;
                        self.send(out, ACK);
                    }
                    _ => self.send(out, RESEND),
                },
            }
            return;
        }
        match byte {
            0xff => {
                out.clear();
                self.reset();
                self.send(out, ACK);
                self.send(out, BAT_OK);
            }
            0xfe => {
                let last = self.last_sent;
                out.push(last);
            }
            0xf6 => {
                out.clear();
                self.defaults();
                self.send(out, ACK);
            }
            0xf5 => {
                out.clear();
                self.defaults();
                self.scanning = false;
                self.send(out, ACK);
            }
            0xf4 => {
                out.clear();
                self.scanning = true;
                self.send(out, ACK);
            }
            0xf3 | 0xf0 | 0xed => {
                self.awaiting = Some(byte);
                self.send(out, ACK);
            }
            0xf2 => {
                self.send(out, ACK);
                self.send(out, 0xab);
                let id = xlate(0x83);
                self.send(out, id);
            }
            0xee => self.send(out, ECHO),
            // Set-3 per-key commands (0xF7-0xFD) and anything else: not supported.
            _ => self.send(out, RESEND),
        }
    }
}
