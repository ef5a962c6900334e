//! The PS/2 mouse on the controller's aux port, with the IntelliMouse wheel and the IntelliMouse Explorer's
//! fourth and fifth buttons.
//!
//! # Commands (sent with the controller's 0xD4 prefix)
//!
//! | byte | command |
//! |------|---------|
//! | E6 / E7 | scaling 1:1 / 2:1 |
//! | E8 *n* | resolution: 1, 2, 4 or 8 counts/mm for *n* = 0-3 |
//! | E9 | status: ACK, then mode/enable/scaling/buttons, resolution, sample rate |
//! | EA / F0 | stream / remote mode |
//! | EB | read data: ACK and one movement packet (the way to read motion in remote mode) |
//! | EE / EC | enter / leave wrap mode (every other byte but FF is echoed back) |
//! | F2 | identify: ACK, then the device ID (00 standard, 03 IntelliMouse, 04 IntelliMouse Explorer) |
//! | F3 *n* | sample rate |
//! | F4 / F5 | enable / disable data reporting (stream mode) |
//! | F6 | defaults: 100 samples/s, 4 counts/mm, 1:1, reporting off |
//! | FE | resend the last packet or reply (an argument still expected stays expected) |
//! | FF | reset: ACK, AA, 00; defaults, stream mode, standard ID |
//!
//! Anything else, or an argument out of range, is answered with FE. Setting the sample rates 200, 100, 80 in a row
//! turns the mouse into an IntelliMouse (ID 3, 4-byte packets with a signed wheel byte); 200, 200, 80 into an
//! IntelliMouse Explorer (ID 4, 4-byte packets with a 4-bit wheel and buttons 4 and 5). Only a reset leaves
//! those modes. Every command but FE and EB clears the movement counters and discards packets not yet read, as
//! a mouse does when the host interrupts it.
//!
//! # Packets
//!
//! Byte 0: bit 0 left, 1 right, 2 middle button, 3 always 1, 4 X sign, 5 Y sign, 6 X overflow, 7 Y overflow.
//! Bytes 1 and 2: the low eight bits of X and Y, 9-bit two's complement with the sign bits; Y counts upwards.
//! Byte 3 (IDs 3 and 4): the wheel, positive when turned towards the user; for ID 4 in bits 0-3, with buttons 4
//! and 5 in bits 4 and 5.
//!
//! # Model
//!
//! Front-ends report relative motion in pixels, Y downwards, with [`crate::display::Buttons`] (bit 0 left, 1
//! middle, 2 right; bits 3 and 4, the wheel, arrive as `dz`). Bits 5 and 6, beyond what the display traits
//! document today, are taken as buttons 4 and 5. Motion accumulates in the counters; in stream mode with reporting
//! on, packets are sent at once (not paced by the sample rate, which is stored only), as many as the device's
//! bounded buffer takes, each carrying at most ±255 counts per axis (±127 before 2:1 scaling, ±127 or ±7 of
//! wheel). Motion that does not fit waits in the counters and goes out as the host reads, so a flood of events
//! costs no memory; counters that would pass ±[`MOTION_MAX`] stop there and the next packet carries the overflow
//! bit. A read in remote mode (EB) reports the counters whole, with the overflow bit where they exceed ±255.
//! Pixels are reported as counts whatever the resolution, since the guest's pointer acceleration is what a user
//! tunes.

use serde::{Deserialize, Serialize};

use super::keyboard::{PortQueue, ACK, BAT_OK, QUEUE_MAX, RESEND};
use crate::display::Buttons;

/// Device ID of a standard PS/2 mouse.
pub const ID_STANDARD: u8 = 0;
/// Device ID of an IntelliMouse (wheel).
pub const ID_INTELLIMOUSE: u8 = 3;
/// Device ID of an IntelliMouse Explorer (wheel, five buttons).
pub const ID_EXPLORER: u8 = 4;
/// The most counts a movement counter keeps while the host does not read.
pub const MOTION_MAX: i32 = 4095;

/// Sample rate after reset, per second.
const RATE_DEFAULT: u8 = 100;
/// Resolution after reset: 4 counts/mm.
const RESOLUTION_DEFAULT: u8 = 2;

/// Packet byte 0: always set.
const PACKET_SYNC: u8 = 0x08;

/// The mouse's settings, counters and protocol state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ps2Mouse {
    /// Remote mode (packets only on EB) rather than stream mode.
    remote: bool,
    /// Wrap (echo) mode.
    wrap: bool,
    /// Data reporting enabled (stream mode).
    reporting: bool,
    /// 2:1 scaling.
    scaling_2to1: bool,
    /// Resolution code, 0-3.
    resolution: u8,
    /// Samples per second.
    sample_rate: u8,
    /// Device ID: 0, 3 or 4.
    id: u8,
    /// The last three sample rates set, oldest first, for the ID knock sequences.
    rates: [u8; 3],
    /// A command waiting for its argument.
    awaiting: Option<u8>,
    /// Buttons held, in packet order: bit 0 left, 1 right, 2 middle, 3 button 4, 4 button 5.
    buttons: u8,
    /// The buttons as last reported.
    reported: u8,
    /// Movement counters (Y up), and the wheel (towards the user).
    dx: i32,
    dy: i32,
    dz: i32,
    /// A counter hit [`MOTION_MAX`] since the last packet.
    x_overflow: bool,
    y_overflow: bool,
    /// The last packet or reply, for FE.
    last: Vec<u8>,
}

impl Default for Ps2Mouse {
    fn default() -> Self {
        Ps2Mouse {
            remote: false,
            wrap: false,
            reporting: false,
            scaling_2to1: false,
            resolution: RESOLUTION_DEFAULT,
            sample_rate: RATE_DEFAULT,
            id: ID_STANDARD,
            rates: [0; 3],
            awaiting: None,
            buttons: 0,
            reported: 0,
            dx: 0,
            dy: 0,
            dz: 0,
            x_overflow: false,
            y_overflow: false,
            last: Vec::new(),
        }
    }
}

/// 2:1 scaling of one packet value.
fn scale_2to1(v: i32) -> i32 {
    let magnitude = match v.abs() {
        0 => 0,
        1 | 2 => 1,
        3 => 3,
        4 => 6,
        5 => 9,
        m => 2 * m,
    };
    magnitude * v.signum()
}

/// Takes at most ±`bound` off a counter.
fn take_chunk(counter: &mut i32, bound: i32) -> i32 {
    let chunk = (*counter).clamp(-bound, bound);
    *counter -= chunk;
    chunk
}

/// Adds `delta` to a counter, stopping at ±[`MOTION_MAX`]; returns whether it had to stop.
fn accumulate(counter: &mut i32, delta: i32) -> bool {
    let sum = counter.saturating_add(delta);
    *counter = sum.clamp(-MOTION_MAX, MOTION_MAX);
    *counter != sum
}

impl Ps2Mouse {
    /// The device ID (0, 3 or 4).
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Whether data reporting is on.
    pub fn reporting(&self) -> bool {
        self.reporting
    }

    /// Whether the mouse is in remote mode.
    pub fn remote(&self) -> bool {
        self.remote
    }

    /// Whether the mouse is in wrap mode.
    pub fn wrap(&self) -> bool {
        self.wrap
    }

    /// The sample rate last set.
    pub fn sample_rate(&self) -> u8 {
        self.sample_rate
    }

    /// The resolution code last set (0-3).
    pub fn resolution(&self) -> u8 {
        self.resolution
    }

    /// Whether 2:1 scaling is on.
    pub fn scaling_2to1(&self) -> bool {
        self.scaling_2to1
    }

    /// The motion not yet reported: (x, y up, wheel).
    pub fn pending_motion(&self) -> (i32, i32, i32) {
        (self.dx, self.dy, self.dz)
    }

    fn packet_len(&self) -> usize {
        if self.id == ID_STANDARD {
            3
        } else {
            4
        }
    }

    fn wheel_bound(&self) -> i32 {
        match self.id {
            ID_INTELLIMOUSE => 127,
            ID_EXPLORER => 7,
            _ => 0,
        }
    }

    /// Queues a reply group and remembers it for FE.
    fn reply(&mut self, out: &mut PortQueue, bytes: &[u8]) {
        for &b in bytes {
            out.reply(b);
        }
        self.last = bytes.to_vec();
    }

    /// Clears the counters and the packets not yet read.
    fn discard_motion(&mut self, out: &mut PortQueue) {
        out.clear_data();
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
        self.x_overflow = false;
        self.y_overflow = false;
    }

    /// The settings F6 restores.
    fn defaults(&mut self) {
        self.sample_rate = RATE_DEFAULT;
        self.resolution = RESOLUTION_DEFAULT;
        self.scaling_2to1 = false;
        self.reporting = false;
    }

    /// Handles one byte from the host; replies go to `out`.
    pub fn write(&mut self, byte: u8, out: &mut PortQueue) {
        out.drop_replies();
        if self.wrap && !matches!(byte, 0xec | 0xff) {
            self.reply(out, &[byte]);
            return;
        }
        if byte == RESEND {
            // The host missed the last packet or reply; an argument still expected stays expected.
            for &b in &self.last {
                out.reply(b);
            }
            return;
        }
        if let Some(cmd) = self.awaiting.take() {
            self.discard_motion(out);
            self.argument(cmd, byte, out);
            return;
        }
        if byte != 0xeb {
            self.discard_motion(out);
        }
        match byte {
            0xe6 | 0xe7 => {
                self.scaling_2to1 = byte == 0xe7;
                self.reply(out, &[ACK]);
            }
            0xe8 | 0xf3 => {
                self.awaiting = Some(byte);
                self.reply(out, &[ACK]);
            }
            0xe9 => {
                let status = u8::from(self.remote) << 6
                    | u8::from(self.reporting) << 5
                    | u8::from(self.scaling_2to1) << 4
                    | (self.buttons & 1) << 2 // left
                    | (self.buttons & 4) >> 1 // middle
                    | (self.buttons & 2) >> 1; // right
                self.reply(out, &[ACK, status, self.resolution, self.sample_rate]);
            }
            0xea | 0xf0 => {
                self.remote = byte == 0xf0;
                self.reply(out, &[ACK]);
            }
            0xeb => {
                out.clear_data();
                let mut reply = vec![ACK];
                reply.extend(self.read_packet());
                self.reply(out, &reply);
            }
            0xec | 0xee => {
                self.wrap = byte == 0xee;
                self.reply(out, &[ACK]);
            }
            0xf2 => self.reply(out, &[ACK, self.id]),
            0xf4 => {
                self.reporting = true;
                self.reported = self.buttons;
                self.reply(out, &[ACK]);
            }
            0xf5 => {
                self.reporting = false;
                self.reply(out, &[ACK]);
            }
            0xf6 => {
                self.defaults();
                self.reply(out, &[ACK]);
            }
            0xff => {
                out.clear();
                let buttons = self.buttons;
                *self = Ps2Mouse {
                    buttons,
                    reported: buttons,
                    ..Ps2Mouse::default()
                };
                self.reply(out, &[ACK, BAT_OK, ID_STANDARD]);
            }
            _ => out.reply(RESEND),
        }
    }

    fn argument(&mut self, cmd: u8, byte: u8, out: &mut PortQueue) {
        match cmd {
            0xe8 if byte <= 3 => self.resolution = byte,
            0xf3 if byte != 0 => {
                self.sample_rate = byte;
                self.rates = [self.rates[1], self.rates[2], byte];
                match self.rates {
                    [200, 100, 80] => self.id = ID_INTELLIMOUSE,
                    [200, 200, 80] => self.id = ID_EXPLORER,
                    _ => {}
                }
            }
            _ => {
                // Out of range: ask for the argument again.
                self.awaiting = Some(cmd);
                out.reply(RESEND);
                return;
            }
        }
        self.reply(out, &[ACK]);
    }

    /// Whether motion is counted now: in remote mode, or in stream mode with reporting on (not in wrap mode).
    fn counting(&self) -> bool {
        !self.wrap && (self.remote || self.reporting)
    }

    /// A front-end pointer event: relative motion in pixels (`dy` downwards), wheel steps (positive towards the
    /// user) and the buttons now held.
    pub fn event(&mut self, dx: i32, dy: i32, dz: i32, buttons: Buttons) {
        // Front-end order is left, middle, right; packets have left, right, middle.
        self.buttons =
            (buttons & 1) | (buttons & 2) << 1 | (buttons & 4) >> 1 | (buttons & 0x60) >> 2;
        if !self.counting() {
            return;
        }
        self.x_overflow |= accumulate(&mut self.dx, dx);
        self.y_overflow |= accumulate(&mut self.dy, dy.saturating_neg());
        if self.id != ID_STANDARD {
            accumulate(&mut self.dz, dz);
        }
    }

    /// Whether a stream packet is due.
    fn has_news(&self) -> bool {
        self.dx != 0
            || self.dy != 0
            || self.dz != 0
            || self.x_overflow
            || self.y_overflow
            || self.buttons != self.reported
    }

    /// In stream mode with reporting on, turns the counters and button changes into packets while `out` has room.
    pub fn stream(&mut self, out: &mut PortQueue) {
        if self.remote || self.wrap || !self.reporting {
            return;
        }
        // Each packet takes up to 255 counts off a counter that holds at most MOTION_MAX, so this ends quickly even
        // with room to spare.
        if self.id == ID_STANDARD {
            // No wheel byte to carry it (only a restored state can hold any).
            self.dz = 0;
        }
        while self.has_news() && out.data_room() >= self.packet_len() {
            let bound = if self.scaling_2to1 { 127 } else { 255 };
            let mut x = take_chunk(&mut self.dx, bound);
            let mut y = take_chunk(&mut self.dy, bound);
            if self.scaling_2to1 {
                x = scale_2to1(x);
                y = scale_2to1(y);
            }
            let wheel_bound = self.wheel_bound();
            let z = take_chunk(&mut self.dz, wheel_bound);
            let overflow = (
                std::mem::take(&mut self.x_overflow),
                std::mem::take(&mut self.y_overflow),
            );
            let packet = self.encode(x, y, z, overflow);
            out.push_data(&packet, QUEUE_MAX);
            self.last = packet;
        }
    }

    /// The packet for EB: the whole counters, with overflow bits where they exceed the 9-bit range.
    fn read_packet(&mut self) -> Vec<u8> {
        let overflow = (
            self.x_overflow || self.dx.abs() > 255,
            self.y_overflow || self.dy.abs() > 255,
        );
        let x = self.dx.clamp(-255, 255);
        let y = self.dy.clamp(-255, 255);
        let bound = self.wheel_bound();
        let z = self.dz.clamp(-bound, bound);
        self.dx = 0;
        self.dy = 0;
        self.dz = 0;
        self.x_overflow = false;
        self.y_overflow = false;
        self.encode(x, y, z, overflow)
    }

    /// One packet with the current buttons; marks them reported.
    fn encode(
        &mut self,
        x: i32,
        y: i32,
        z: i32,
        (x_overflow, y_overflow): (bool, bool),
    ) -> Vec<u8> {
        self.reported = self.buttons;
        let head = PACKET_SYNC
            | (self.buttons & 0x07)
            | u8::from(x < 0) << 4
            | u8::from(y < 0) << 5
            | u8::from(x_overflow) << 6
            | u8::from(y_overflow) << 7;
        // Two's complement: the low eight bits go in the data bytes, bit 8 is the sign bit above.
        let mut packet = vec![head, x as u8, y as u8];
        match self.id {
            ID_INTELLIMOUSE => packet.push(z as u8),
            ID_EXPLORER => packet.push((z as u8 & 0x0f) | (self.buttons & 0x18) << 1),
            _ => {}
        }
        packet
    }

    /// Replaces values a guest could not have produced (in a restored state) by power-on ones.
    pub(super) fn sanitise(&mut self) {
        if self.resolution > 3 {
            self.resolution = RESOLUTION_DEFAULT;
        }
        if !matches!(self.id, ID_STANDARD | ID_INTELLIMOUSE | ID_EXPLORER) {
            self.id = ID_STANDARD;
        }
        if !matches!(self.awaiting, Some(0xe8 | 0xf3) | None) {
            self.awaiting = None;
        }
        for counter in [&mut self.dx, &mut self.dy, &mut self.dz] {
            *counter = (*counter).clamp(-MOTION_MAX, MOTION_MAX);
        }
        self.last.truncate(8);
    }
}
