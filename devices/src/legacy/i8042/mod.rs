//! The i8042 keyboard controller at ports 0x60 (data) and 0x64 (status / command), with a PS/2 keyboard on its
//! first port and a PS/2 wheel mouse on the auxiliary port.
//!
//! # Hardware behaviour
//!
//! The 8042 is a microcontroller between the CPU and two serial PS/2 ports. The CPU sees one output buffer
//! (read at 0x60), a status register (read at 0x64), and an input buffer that takes either a controller
//! command (written to 0x64) or data (written to 0x60: the argument of the pending controller command, or
//! else a byte for the keyboard).
//!
//! - **Status** (0x64): bit 0 OBF (a byte waits at 0x60), 1 IBF (the controller is still busy with the last
//!   write; never set here, writes are handled at once), 2 SYS (set by a passed self-test or by command byte
//!   bit 2), 3 A2 (the last write was a command), 4 "keyboard not inhibited" (no key lock: always 1),
//!   5 AUX (the waiting byte came from the aux port), 6 timeout and 7 parity error (never set: both devices
//!   are always there and the line never fails).
//! - **Command byte** (RAM byte 0, read with 0x20, written with 0x60): bit 0 keyboard interrupt (IRQ 1),
//!   1 aux interrupt (IRQ 12), 2 SYS, 4 keyboard port disabled, 5 aux port disabled, 6 translation to set 1.
//!   Commands 0x21-0x3F and 0x61-0x7F read and write the rest of the controller's 32 bytes of RAM.
//! - **Commands**: 0xAA self-test (→ 0x55, sets SYS), 0xAB / 0xA9 keyboard / aux interface test (→ 0x00),
//!   0xAD / 0xAE disable / enable the keyboard port, 0xA7 / 0xA8 the aux port, 0xD0 read the output port,
//!   0xD1 write it (bit 0 low = CPU reset, bit 1 = A20), 0xD2 / 0xD3 put the next data byte in the output
//!   buffer as if from the keyboard / aux port, 0xD4 send the next data byte to the mouse, 0xF0-0xFF
//!   pulse output-port bits 0-3 low for each 0 bit in the command (0xFE pulses bit 0: the reset line).
//! - **Disabled ports**: a disabled port's clock line is held low, so its device keeps its bytes until the port
//!   is enabled again. Sending a byte to a device enables its port, as the controller must release the clock to
//!   transmit (data written to 0x60 re-enables the keyboard port, 0xD4 data the aux port).
//! - **Translation**: with command byte bit 6 set, every byte from the keyboard passes through the 8042's
//!   translation table on its way to the output buffer (set 2 → set 1), and an `F0` break prefix is swallowed,
//!   setting bit 7 of the byte after it; see [`scancodes`]. Replies are translated too: the scan-set number 2
//!   reads 0x41 and the identify bytes AB 83 read AB 41, which is how drivers recognise a translating controller.
//!   Aux bytes and bytes from 0xD2 are never translated.
//!
//! # Model
//!
//! Replies of the controller itself wait in a small queue that has priority; each PS/2 device has its own
//! bounded [`PortQueue`], emptied into the output buffer only while that port is enabled, keyboard before mouse.
//! Whenever the output buffer is empty it is refilled at once, translating keyboard bytes with the command byte
//! of that moment. IRQ 1 / IRQ 12 are driven as levels: high while the output buffer holds a keyboard / aux
//! byte and the command byte enables that interrupt, low once 0x60 is read. On the 8042 these interrupt outputs
//! are just OBF gated by the enable bits; the ISA PIC sees a rising edge for each byte because reading the byte
//! drops the line before the next one raises it.
//!
//! The keyboard ([`keyboard`]) and the mouse ([`mouse`]) document their protocols. Display front-ends feed
//! them through [`KeyboardInput`] and [`PointerInput`], implemented by [`I8042`]: keys as set-1 scancodes, the
//! pointer as relative motion (there is no absolute device here, so [`PointerInput::absolute`] returns false).
//! Those calls come from the front-ends' threads; they take the state lock like a port access does and drive
//! the IRQ lines after dropping it.
//!
//! A20 written through 0xD1 is stored and reported but not enforced (KVM keeps A20 on), as for port 0x92.

pub mod keyboard;
pub mod mouse;
pub mod scancodes;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keyboard;
#[cfg(test)]
mod tests_mouse;

pub use keyboard::{PortQueue, Ps2Keyboard, QUEUE_MAX};
pub use mouse::Ps2Mouse;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::display::{Buttons, KeyboardInput, PointerInput};
use crate::irq::IrqLine;
use crate::system::{SystemEvents, SystemRequest};

use super::LevelSync;

/// Status: output buffer full.
pub const STATUS_OBF: u8 = 0x01;
/// Status: input buffer full (never set: writes are handled at once).
pub const STATUS_IBF: u8 = 0x02;
/// Status: system flag.
pub const STATUS_SYS: u8 = 0x04;
/// Status: last write was a command (0x64).
pub const STATUS_A2: u8 = 0x08;
/// Status: keyboard not inhibited by the key lock.
pub const STATUS_UNLOCKED: u8 = 0x10;
/// Status: the byte in the output buffer is from the aux port.
pub const STATUS_AUX: u8 = 0x20;
/// Status: timeout on the serial line (never set: both devices always answer).
pub const STATUS_TIMEOUT: u8 = 0x40;

/// Command byte: keyboard interrupt (IRQ 1) enable.
pub const CMD_KBD_INT: u8 = 0x01;
/// Command byte: aux interrupt (IRQ 12) enable.
pub const CMD_AUX_INT: u8 = 0x02;
/// Command byte: system flag.
pub const CMD_SYS: u8 = 0x04;
/// Command byte: keyboard port disabled.
pub const CMD_KBD_DISABLE: u8 = 0x10;
/// Command byte: aux port disabled.
pub const CMD_AUX_DISABLE: u8 = 0x20;
/// Command byte: translate keyboard scancodes to set 1.
pub const CMD_TRANSLATE: u8 = 0x40;

/// Output port: reset line (low = reset the CPU).
pub const OUT_RESET: u8 = 0x01;
/// Output port: A20 gate.
pub const OUT_A20: u8 = 0x02;
/// Output port: keyboard output buffer full (IRQ 1 line).
const OUT_KBD_OBF: u8 = 0x10;
/// Output port: aux output buffer full (IRQ 12 line).
const OUT_AUX_OBF: u8 = 0x20;
/// Output port after power-on: reset released, A20 on, unused bits and idle clock/data lines high.
pub const OUT_DEFAULT: u8 = 0xcf;

/// Command byte after power-on: both interrupts enabled, as the firmware expects to find them.
pub const CMD_DEFAULT: u8 = CMD_KBD_INT | CMD_AUX_INT;
/// Controller replies queued at most (a reply is one byte per command, so this never fills in practice).
const CTRL_QUEUE_MAX: usize = 16;
/// The keyboard's break prefix, which translation folds into the next byte.
const BREAK_PREFIX: u8 = 0xf0;

/// One byte for the output buffer, with where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutByte {
    /// The data byte.
    pub byte: u8,
    /// From the aux port (status bit 5, IRQ 12) rather than the keyboard side (IRQ 1).
    pub aux: bool,
}

/// The controller's state, for save and restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct I8042State {
    /// The 32 bytes of controller RAM; byte 0 is the command byte.
    ram: [u8; 32],
    /// Status bit 2.
    sys: bool,
    /// Status bit 3: the last write was to 0x64.
    a2: bool,
    /// A controller command waiting for its data byte.
    pending: Option<u8>,
    /// The output port as last written (bits 4 and 5 are computed on read).
    output_port: u8,
    /// The output buffer.
    out: Option<OutByte>,
    /// What 0x60 returns when the output buffer is empty: the last byte read.
    last_out: u8,
    /// Replies of the controller itself; they go before device bytes.
    ctrl: VecDeque<OutByte>,
    /// Translation swallowed an `F0`: the next keyboard byte is a break code.
    xlate_break: bool,
    /// Bytes from the keyboard, untranslated.
    kbd_queue: PortQueue,
    /// Bytes from the mouse.
    aux_queue: PortQueue,
    /// The keyboard on the first port.
    keyboard: Ps2Keyboard,
    /// The mouse on the aux port.
    mouse: Ps2Mouse,
}

impl Default for I8042State {
    fn default() -> Self {
        let mut ram = [0; 32];
        ram[0] = CMD_DEFAULT;
        I8042State {
            ram,
            sys: false,
            a2: false,
            pending: None,
            output_port: OUT_DEFAULT,
            out: None,
            last_out: 0,
            ctrl: VecDeque::new(),
            xlate_break: false,
            kbd_queue: PortQueue::default(),
            aux_queue: PortQueue::default(),
            keyboard: Ps2Keyboard::default(),
            mouse: Ps2Mouse::default(),
        }
    }
}

impl I8042State {
    fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    fn reply(&mut self, byte: u8, aux: bool) {
        if self.ctrl.len() < CTRL_QUEUE_MAX {
            self.ctrl.push_back(OutByte { byte, aux });
        }
    }

    /// The next keyboard byte as the CPU sees it: through the translation table when command byte bit 6 is set.
    fn next_keyboard_byte(&mut self) -> Option<u8> {
        if self.command_byte() & CMD_TRANSLATE == 0 {
            return self.kbd_queue.pop();
        }
        loop {
            let byte = self.kbd_queue.pop()?;
            if byte == BREAK_PREFIX {
                self.xlate_break = true;
                continue;
            }
            let release = if std::mem::take(&mut self.xlate_break) {
                0x80
            } else {
                0
            };
            return Some(scancodes::translate(byte) | release);
        }
    }

    /// Moves the next waiting byte into an empty output buffer: controller replies first, then the keyboard
    /// port, then the aux port, each only while its port is enabled.
    fn refill(&mut self) {
        if self.out.is_some() {
            return;
        }
        if let Some(reply) = self.ctrl.pop_front() {
            self.out = Some(reply);
            return;
        }
        let cmd = self.command_byte();
        if cmd & CMD_KBD_DISABLE == 0 {
            if let Some(byte) = self.next_keyboard_byte() {
                self.out = Some(OutByte { byte, aux: false });
                return;
            }
        }
        if cmd & CMD_AUX_DISABLE == 0 {
            // Motion held back while the buffer was full goes out now.
            self.mouse.stream(&mut self.aux_queue);
            if let Some(byte) = self.aux_queue.pop() {
                self.out = Some(OutByte { byte, aux: true });
            }
        }
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        let mut s = STATUS_UNLOCKED;
        if let Some(out) = self.out {
            s |= STATUS_OBF;
            if out.aux {
                s |= STATUS_AUX;
            }
        }
        if self.sys {
            s |= STATUS_SYS;
        }
        if self.a2 {
            s |= STATUS_A2;
        }
        s
    }

    /// A read of 0x60: the output buffer, which empties (and refills from the queues).
    pub fn read_data(&mut self) -> u8 {
        match self.out.take() {
            Some(out) => {
                self.last_out = out.byte;
                self.refill();
                out.byte
            }
            None => self.last_out,
        }
    }

    /// The output port as 0xD0 reports it.
    fn output_port(&self) -> u8 {
        let mut v = self.output_port & !(OUT_KBD_OBF | OUT_AUX_OBF);
        match self.out {
            Some(OutByte { aux: false, .. }) => v |= OUT_KBD_OBF,
            Some(OutByte { aux: true, .. }) => v |= OUT_AUX_OBF,
            None => {}
        }
        v
    }

    /// A write of 0x60. Returns whether the machine must reset.
    pub fn write_data(&mut self, value: u8) -> bool {
        self.a2 = false;
        let mut reset = false;
        match self.pending.take() {
            Some(cmd @ 0x60..=0x7f) => {
                self.ram[usize::from(cmd & 0x1f)] = value;
                if cmd == 0x60 {
                    self.sys = value & CMD_SYS != 0;
                }
            }
            Some(0xd1) => {
                // The reset line is only pulsed: the machine reset that follows restarts the CPU with it
                // released again.
                reset = value & OUT_RESET == 0;
                self.output_port = value | OUT_RESET;
            }
            Some(0xd2) => self.reply(value, false),
            Some(0xd3) => self.reply(value, true),
            // 0xD4 (the only other pending command): to the mouse, which needs its clock line released.
            Some(_) => {
                self.ram[0] &= !CMD_AUX_DISABLE;
                self.mouse.write(value, &mut self.aux_queue);
            }
            None => {
                self.ram[0] &= !CMD_KBD_DISABLE;
                // The keyboard abandons whatever it was sending to listen to the host.
                self.xlate_break = false;
                self.keyboard.write(value, &mut self.kbd_queue);
            }
        }
        self.refill();
        reset
    }

    /// A write of 0x64. Returns whether the machine must reset.
    pub fn write_command(&mut self, cmd: u8) -> bool {
        self.a2 = true;
        // A new command abandons one still waiting for its data byte.
        self.pending = None;
        let mut reset = false;
        match cmd {
            0x20..=0x3f => {
                let v = self.ram[usize::from(cmd & 0x1f)];
                self.reply(v, false);
            }
            0x60..=0x7f | 0xd1..=0xd4 => self.pending = Some(cmd),
            0xa7 => self.ram[0] |= CMD_AUX_DISABLE,
            0xa8 => self.ram[0] &= !CMD_AUX_DISABLE,
            0xa9 | 0xab => self.reply(0x00, false),
            0xaa => {
                self.sys = true;
                self.reply(0x55, false);
            }
            0xad => self.ram[0] |= CMD_KBD_DISABLE,
            0xae => self.ram[0] &= !CMD_KBD_DISABLE,
            0xd0 => {
                let v = self.output_port();
                self.reply(v, false);
            }
            // Pulse the output-port bits whose command bit is 0; bit 0 is the CPU reset line.
            0xf0..=0xff => reset = cmd & OUT_RESET == 0,
            _ => {
                crate::rate_limited!(
                    log::Level::Warn,
                    "i8042: unsupported controller command {:#04x} ignored",
                    cmd
                );
            }
        }
        self.refill();
        reset
    }

    /// A key from a front-end (set-1 scancode, `0xE0nn` for extended keys).
    pub fn key(&mut self, scancode: u16, down: bool) {
        self.keyboard.key(scancode, down, &mut self.kbd_queue);
        self.refill();
    }

    /// Relative pointer motion from a front-end (`dy` downwards, `dz` positive towards the user).
    pub fn pointer(&mut self, dx: i32, dy: i32, dz: i32, buttons: Buttons) {
        self.mouse.event(dx, dy, dz, buttons);
        self.mouse.stream(&mut self.aux_queue);
        self.refill();
    }

    /// Whether IRQ 1 is asserted.
    pub fn irq1_level(&self) -> bool {
        matches!(self.out, Some(OutByte { aux: false, .. }))
            && self.command_byte() & CMD_KBD_INT != 0
    }

    /// Whether IRQ 12 is asserted.
    pub fn irq12_level(&self) -> bool {
        matches!(self.out, Some(OutByte { aux: true, .. }))
            && self.command_byte() & CMD_AUX_INT != 0
    }

    /// Whether A20 is on in the output port.
    pub fn a20(&self) -> bool {
        self.output_port & OUT_A20 != 0
    }

    /// The keyboard on the first port.
    pub fn keyboard(&self) -> &Ps2Keyboard {
        &self.keyboard
    }

    /// The mouse on the aux port.
    pub fn mouse(&self) -> &Ps2Mouse {
        &self.mouse
    }

    /// Checks a restored state for values a guest could not have produced.
    fn sanitise(&mut self) {
        if !matches!(self.pending, Some(0x60..=0x7f | 0xd1..=0xd4) | None) {
            self.pending = None;
        }
        self.ctrl.truncate(CTRL_QUEUE_MAX);
        self.kbd_queue.sanitise();
        self.aux_queue.sanitise();
        self.keyboard.sanitise();
        self.mouse.sanitise();
        self.refill();
    }
}

/// The i8042 with its IRQ lines and reset path. Put [`I8042::data_port`] at 0x60 and
/// [`I8042::command_port`] at 0x64 (each length 1, max width 1); hand the same object to the display
/// front-ends as their [`KeyboardInput`] and [`PointerInput`].
pub struct I8042 {
    state: Mutex<I8042State>,
    irq1: LevelSync,
    irq12: LevelSync,
    system: Arc<dyn SystemEvents>,
}

impl I8042 {
    /// A controller after power-on. `irq1` and `irq12` are the ISA IRQ 1 and 12 lines; resets go to `system`.
    pub fn new(
        irq1: Arc<dyn IrqLine>,
        irq12: Arc<dyn IrqLine>,
        system: Arc<dyn SystemEvents>,
    ) -> Arc<Self> {
        Arc::new(I8042 {
            state: Mutex::new(I8042State::default()),
            irq1: LevelSync::new(irq1),
            irq12: LevelSync::new(irq12),
            system,
        })
    }

    fn lock(&self) -> MutexGuard<'_, I8042State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync_irqs(&self) {
        self.sync_irqs_after_read(false);
    }

    /// Drives both lines; `consumed` says a byte was just read from the output buffer, so a line that stays
    /// high (the next byte was loaded at once) must show a new edge.
    fn sync_irqs_after_read(&self, consumed: bool) {
        self.irq1.sync_edge(consumed, || self.lock().irq1_level());
        self.irq12.sync_edge(consumed, || self.lock().irq12_level());
    }

    /// The port-0x60 side, for the port bus.
    pub fn data_port(self: &Arc<Self>) -> Arc<dyn BusDevice> {
        Arc::new(I8042Port {
            ctrl: Arc::clone(self),
            command: false,
        })
    }

    /// The port-0x64 side, for the port bus.
    pub fn command_port(self: &Arc<Self>) -> Arc<dyn BusDevice> {
        Arc::new(I8042Port {
            ctrl: Arc::clone(self),
            command: true,
        })
    }

    /// A platform reset: back to the power-on state (the controller, keyboard and mouse lose their settings;
    /// pending bytes are dropped). Lowers both IRQs.
    pub fn reset(&self) {
        *self.lock() = I8042State::default();
        self.sync_irqs();
    }

    /// Whether A20 is on in the output port.
    pub fn a20(&self) -> bool {
        self.lock().a20()
    }

    /// The state, for saving.
    pub fn state(&self) -> I8042State {
        self.lock().clone()
    }

    /// Restores a saved state and re-drives both IRQ lines.
    pub fn restore(&self, state: I8042State) {
        let mut state = state;
        state.sanitise();
        *self.lock() = state;
        self.irq1.force(|| self.lock().irq1_level());
        self.irq12.force(|| self.lock().irq12_level());
    }

    fn read_port(&self, command: bool) -> u8 {
        let (value, consumed) = {
            let mut st = self.lock();
            if command {
                (st.status(), false)
            } else {
                let consumed = st.status() & STATUS_OBF != 0;
                (st.read_data(), consumed)
            }
        };
        if !command {
            self.sync_irqs_after_read(consumed);
        }
        value
    }

    fn write_port(&self, command: bool, value: u8) {
        let reset = {
            let mut st = self.lock();
            if command {
                st.write_command(value)
            } else {
                st.write_data(value)
            }
        };
        self.sync_irqs();
        if reset {
            self.system.request(SystemRequest::Reset);
        }
    }
}

impl KeyboardInput for I8042 {
    fn key(&self, scancode: u16, down: bool) {
        self.lock().key(scancode, down);
        self.sync_irqs();
    }

    fn leds(&self) -> u8 {
        self.lock().keyboard.leds()
    }
}

impl PointerInput for I8042 {
    fn relative(&self, dx: i32, dy: i32, dz: i32, buttons: Buttons) {
        self.lock().pointer(dx, dy, dz, buttons);
        self.sync_irqs();
    }

    /// There is no absolute pointing device on the i8042.
    fn absolute(&self, _x: u32, _y: u32, _width: u32, _height: u32, _buttons: Buttons) -> bool {
        false
    }
}

/// One of the controller's two ports on the bus.
struct I8042Port {
    ctrl: Arc<I8042>,
    command: bool,
}

impl BusDevice for I8042Port {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        if data.is_empty() {
            // Not a real access; it must not consume a byte.
            return;
        }
        let value = self.ctrl.read_port(self.command);
        data.fill(0xff);
        if let Some(b) = data.first_mut() {
            *b = value;
        }
    }

    fn write(&self, _offset: u64, data: &[u8]) {
        if let Some(&value) = data.first() {
            self.ctrl.write_port(self.command, value);
        }
    }
}
