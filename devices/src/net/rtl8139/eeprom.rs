//! The 93C46 serial EEPROM (64 words of 16 bits) behind the 9346CR register.
//!
//! Software reaches the EEPROM by putting 9346CR in programming mode (EEM = 10b) and driving the chip's
//! EECS, EESK and EEDI pins through bits 3, 2 and 1 of that register, reading EEDO back in bit 0. The
//! part speaks Microwire: with CS high, a 1 on DI clocked in by a rising SK edge is the start bit, then
//! come two opcode bits and six address bits (MSB first). After the last address bit of a READ the part
//! drives a dummy 0 on DO, and every further rising edge shifts out the next data bit, D15 first; at the
//! end of a word it carries on with the next address (sequential read), which iPXE's three-wire driver
//! relies on to read the MAC in one command. Linux reads one word per command and drops CS in between.
//!
//! Linux probes the address width by reading word 0 with an 8-bit address: on a 93C46 the two surplus
//! address bits clock out the dummy bit and D15, so the word read is shifted and does not equal the
//! 0x8129 signature, and the driver falls back to 6-bit addresses. This falls out of the model without
//! special-casing it.
//!
//! Writes (WRITE, ERASE, WRAL, ERAL) need a preceding EWEN and take effect when their last bit is
//! clocked in; the part then reports "ready" (DO high) while CS is high, as Linux's `write_eeprom`
//! polls for. Words 7-9 hold the MAC address (little-endian byte pairs), which the chip loads into IDR0-5
//! at power-on and on an auto-load command.

use serde::{Deserialize, Serialize};

/// Words in a 93C46 organised as 64 × 16 bits.
pub const WORDS: usize = 64;
/// Word address of the MAC address (three words).
pub const MAC_WORD: usize = 7;

/// Where the part is in a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// CS is low.
    Standby,
    /// CS is high, waiting for the start bit.
    AwaitStart,
    /// Shifting in opcode and address: `bits` received so far in `value`.
    Command { bits: u8, value: u16 },
    /// Shifting out words from `address`; `bit` data bits of the current word are out.
    Reading { address: u8, bit: u8 },
    /// Shifting in the 16 data bits of a WRITE (`all`: WRAL).
    Writing {
        address: u8,
        all: bool,
        bits: u8,
        value: u16,
    },
    /// The command is complete; further clocks are ignored until CS drops.
    Done,
}

/// The EEPROM: contents plus the serial interface state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eeprom {
    words: Vec<u16>,
    phase: Phase,
    cs: bool,
    sk: bool,
    data_out: bool,
    write_enabled: bool,
}

impl Eeprom {
    /// An EEPROM programmed as an RTL8139 board ships: the 0x8129 signature, PCI vendor/device and
    /// subsystem IDs, and the MAC address in words 7-9.
    pub fn new(mac: [u8; 6], subsystem: (u16, u16)) -> Self {
        let mut words = vec![0u16; WORDS];
        words[0] = 0x8129;
        words[1] = super::VENDOR_ID;
        words[2] = super::DEVICE_ID;
        words[3] = subsystem.0;
        words[4] = subsystem.1;
        for (i, pair) in mac.chunks_exact(2).enumerate() {
            words[MAC_WORD + i] = u16::from_le_bytes([pair[0], pair[1]]);
        }
        Eeprom {
            words,
            phase: Phase::Standby,
            cs: false,
            sk: false,
            data_out: false,
            write_enabled: false,
        }
    }

    /// The MAC address stored in words 7-9.
    pub fn mac(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        for (i, chunk) in mac.chunks_exact_mut(2).enumerate() {
            let w = self.word(MAC_WORD + i);
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        mac
    }

    /// Word `index` (0 past the end).
    pub fn word(&self, index: usize) -> u16 {
        self.words.get(index).copied().unwrap_or(0)
    }

    /// Drives the three input pins (levels after a 9346CR write in programming mode).
    pub fn set_pins(&mut self, cs: bool, sk: bool, di: bool) {
        let rising = sk && !self.sk;
        let selected = cs && !self.cs;
        self.cs = cs;
        self.sk = sk;
        if !cs {
            self.phase = Phase::Standby;
            return;
        }
        if selected {
            self.phase = Phase::AwaitStart;
            // Ready: no programming cycle is ever in progress.
            self.data_out = true;
        }
        if rising {
            self.clock(di);
        }
    }

    /// Deselects the part (9346CR left programming mode).
    pub fn deselect(&mut self) {
        self.set_pins(false, false, false);
    }

    /// The DO pin as bit 0 of 9346CR shows it (low while the part is not selected).
    pub fn data_out(&self) -> bool {
        self.cs && self.data_out
    }

    fn clock(&mut self, di: bool) {
        let bit = u16::from(di);
        self.phase = match self.phase {
            Phase::Standby => Phase::Standby,
            Phase::AwaitStart if di => Phase::Command { bits: 0, value: 0 },
            Phase::AwaitStart => Phase::AwaitStart,
            Phase::Command { bits, value } => {
                let value = (value << 1) | bit;
                let bits = bits.saturating_add(1);
                if bits >= 8 {
                    self.decode(value & 0xff)
                } else {
                    Phase::Command { bits, value }
                }
            }
            Phase::Reading { address, bit: out } => {
                let out = out.min(15);
                let word = self.word(usize::from(address));
                self.data_out = (word >> (15 - out)) & 1 != 0;
                if out == 15 {
                    Phase::Reading {
                        address: address.wrapping_add(1) % WORDS as u8,
                        bit: 0,
                    }
                } else {
                    Phase::Reading {
                        address,
                        bit: out + 1,
                    }
                }
            }
            Phase::Writing {
                address,
                all,
                bits,
                value,
            } => {
                let value = (value << 1) | bit;
                let bits = bits.saturating_add(1);
                if bits >= 16 {
                    if self.write_enabled {
                        if all {
                            self.words.fill(value);
                        } else if let Some(w) = self.words.get_mut(usize::from(address)) {
                            *w = value;
                        }
                    }
                    self.data_out = true;
                    Phase::Done
                } else {
                    Phase::Writing {
                        address,
                        all,
                        bits,
                        value,
                    }
                }
            }
            Phase::Done => Phase::Done,
        };
    }

    /// Decodes two opcode bits and six address bits.
    fn decode(&mut self, command: u16) -> Phase {
        let address = (command & 0x3f) as u8;
        match command >> 6 {
            0b10 => {
                // The dummy bit that precedes the data.
                self.data_out = false;
                Phase::Reading { address, bit: 0 }
            }
            0b01 => Phase::Writing {
                address,
                all: false,
                bits: 0,
                value: 0,
            },
            0b11 => {
                if self.write_enabled {
                    if let Some(w) = self.words.get_mut(usize::from(address)) {
                        *w = 0xffff;
                    }
                }
                Phase::Done
            }
            _ => match address >> 4 {
                0b11 => {
                    self.write_enabled = true;
                    Phase::Done
                }
                0b00 => {
                    self.write_enabled = false;
                    Phase::Done
                }
                0b10 => {
                    if self.write_enabled {
                        self.words.fill(0xffff);
                    }
                    Phase::Done
                }
                _ => Phase::Writing {
                    address: 0,
                    all: true,
                    bits: 0,
                    value: 0,
                },
            },
        }
    }

    /// Repairs a restored EEPROM: exactly 64 words (the interface state is robust to any value).
    pub fn sanitize(&mut self) {
        self.words.resize(WORDS, 0xffff);
    }
}
