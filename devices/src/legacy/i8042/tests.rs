//! The i8042 driven through ports 0x60/0x64 on a bus, as SeaBIOS and OS drivers drive it.

use super::*;
use crate::bus::{Access, Bus};
use crate::display::{KeyboardInput, PointerInput};
use crate::irq::RecordingIrq;
use crate::system::RecordingSystem;

/// The controller on a port bus with recording IRQ lines, driven as firmware and OS drivers drive it.
pub(super) struct Harness {
    pub(super) bus: Bus,
    pub(super) ctrl: Arc<I8042>,
    pub(super) irq1: Arc<RecordingIrq>,
    pub(super) irq12: Arc<RecordingIrq>,
    pub(super) system: Arc<RecordingSystem>,
}

/// The most bytes that can wait anywhere in the controller: its own replies, each device's replies and data, the
/// packets the mouse's counters still hold (at least 127 counts each) and the output buffer.
pub(super) const MAX_WAITING: usize = CTRL_QUEUE_MAX
    + 2 * (keyboard::REPLY_MAX + QUEUE_MAX)
    + 4 * (mouse::MOTION_MAX as usize / 127 + 2)
    + 1;

impl Harness {
    pub(super) fn new() -> Self {
        let irq1 = RecordingIrq::new();
        let irq12 = RecordingIrq::new();
        let system = Arc::new(RecordingSystem::new());
        let ctrl = I8042::new(irq1.clone(), irq12.clone(), system.clone());
        let bus = Bus::new("pio");
        bus.insert(0x60, 1, 1, ctrl.data_port()).unwrap();
        bus.insert(0x64, 1, 1, ctrl.command_port()).unwrap();
        Harness {
            bus,
            ctrl,
            irq1,
            irq12,
            system,
        }
    }

    pub(super) fn inb(&self, port: u64) -> u8 {
        let mut b = [0u8];
        assert_eq!(self.bus.read(port, &mut b), Access::Handled);
        b[0]
    }

    pub(super) fn outb(&self, port: u64, v: u8) {
        assert_eq!(self.bus.write(port, &[v]), Access::Handled);
    }

    pub(super) fn status(&self) -> u8 {
        self.inb(0x64)
    }

    /// Waits for OBF as `i8042_wait_read` does (it must already be set: nothing here is slow), then reads.
    pub(super) fn recv(&self) -> u8 {
        assert_ne!(self.status() & STATUS_OBF, 0, "expected a byte");
        self.inb(0x60)
    }

    /// Reads a byte that must come from the aux port.
    pub(super) fn recv_aux(&self) -> u8 {
        let st = self.status();
        assert_eq!(
            st & (STATUS_OBF | STATUS_AUX),
            STATUS_OBF | STATUS_AUX,
            "expected a mouse byte, status {st:#04x}"
        );
        self.inb(0x60)
    }

    /// Reads every waiting byte.
    pub(super) fn drain(&self) -> Vec<u8> {
        self.drain_tagged().into_iter().map(|(b, _)| b).collect()
    }

    /// Reads every waiting byte with whether it came from the aux port.
    pub(super) fn drain_tagged(&self) -> Vec<(u8, bool)> {
        let mut out = Vec::new();
        loop {
            let st = self.status();
            if st & STATUS_OBF == 0 {
                break;
            }
            out.push((self.inb(0x60), st & STATUS_AUX != 0));
            assert!(out.len() <= MAX_WAITING, "never empties");
        }
        out
    }

    pub(super) fn write_ctr(&self, v: u8) {
        self.outb(0x64, 0x60);
        self.outb(0x60, v);
    }

    pub(super) fn read_ctr(&self) -> u8 {
        self.outb(0x64, 0x20);
        self.recv()
    }

    /// A keyboard command framed as SeaBIOS's `__ps2_command` frames it: `ps2ctr` is SeaBIOS's copy of the
    /// command byte (it never reads it back); interrupts are off and only the keyboard port is enabled during
    /// the exchange, and `ps2ctr` is written at the end.
    pub(super) fn kbd_command(&self, ps2ctr: u8, bytes: &[u8], replies: usize) -> Vec<u8> {
        let newctr = (ps2ctr | CMD_KBD_DISABLE | CMD_AUX_DISABLE) & !(CMD_KBD_INT | CMD_AUX_INT);
        self.write_ctr(newctr);
        self.write_ctr(newctr & !CMD_KBD_DISABLE);
        let mut got = Vec::new();
        for &b in bytes {
            self.outb(0x60, b);
            got.push(self.recv());
        }
        for _ in 0..replies {
            got.push(self.recv());
        }
        self.write_ctr(ps2ctr);
        got
    }

    /// Sends one byte to the mouse (0xD4 prefix).
    pub(super) fn aux_send(&self, byte: u8) {
        self.outb(0x64, 0xd4);
        self.outb(0x60, byte);
    }

    /// A mouse command as Linux's libps2 sends it: each byte through 0xD4, each acknowledged by the mouse, then
    /// `replies` further bytes. Returns everything read.
    pub(super) fn aux_command(&self, bytes: &[u8], replies: usize) -> Vec<u8> {
        let mut got = Vec::new();
        for &b in bytes {
            self.aux_send(b);
            got.push(self.recv_aux());
        }
        for _ in 0..replies {
            got.push(self.recv_aux());
        }
        got
    }

    /// A front-end key event.
    pub(super) fn key(&self, scancode: u16, down: bool) {
        KeyboardInput::key(&*self.ctrl, scancode, down);
    }

    /// Presses and releases a key; returns (bytes on press, bytes on release) as the CPU reads them.
    pub(super) fn tap(&self, scancode: u16) -> (Vec<u8>, Vec<u8>) {
        self.key(scancode, true);
        let make = self.drain();
        self.key(scancode, false);
        (make, self.drain())
    }

    /// A front-end pointer event.
    pub(super) fn pointer(&self, dx: i32, dy: i32, dz: i32, buttons: u8) {
        PointerInput::relative(&*self.ctrl, dx, dy, dz, buttons);
    }
}

#[test]
fn power_on_status_and_empty_reads() {
    let h = Harness::new();
    assert_eq!(h.status(), STATUS_UNLOCKED);
    assert_eq!(
        h.inb(0x60),
        0,
        "empty output buffer reads the last byte (none yet)"
    );
    assert_eq!(h.read_ctr(), CMD_DEFAULT);
    assert!(!h.irq1.level());
}

#[test]
fn seabios_keyboard_setup_sequence() {
    let h = Harness::new();
    // i8042_flush: nothing waiting.
    assert_eq!(h.status() & STATUS_OBF, 0);
    // Controller self-test.
    h.outb(0x64, 0xaa);
    assert_eq!(
        h.status(),
        STATUS_OBF | STATUS_SYS | STATUS_A2 | STATUS_UNLOCKED
    );
    assert_eq!(h.inb(0x60), 0x55);
    assert_eq!(h.status(), STATUS_SYS | STATUS_A2 | STATUS_UNLOCKED);
    // Keyboard interface test.
    h.outb(0x64, 0xab);
    assert_eq!(h.recv(), 0x00);
    h.irq1.take_events();
    // SeaBIOS's own copy of the command byte: both ports disabled.
    let ctr = CMD_KBD_DISABLE | CMD_AUX_DISABLE;
    // Keyboard reset: ACK then BAT passed.
    assert_eq!(h.kbd_command(ctr, &[0xff], 1), vec![0xfa, 0xaa]);
    // Reset and disable, scan set 2, enable.
    assert_eq!(h.kbd_command(ctr, &[0xf5], 0), vec![0xfa]);
    assert!(!h.ctrl.state().keyboard().scanning());
    assert_eq!(h.kbd_command(ctr, &[0xf0, 0x02], 0), vec![0xfa, 0xfa]);
    let ctr = CMD_AUX_DISABLE | CMD_TRANSLATE | CMD_KBD_INT;
    assert_eq!(h.kbd_command(ctr, &[0xf4], 0), vec![0xfa]);
    assert!(h.ctrl.state().keyboard().scanning());
    assert_eq!(h.ctrl.state().keyboard().scan_set(), 2);
    // Interrupts were off for every exchange, so IRQ 1 never fired.
    assert_eq!(h.irq1.rising_edges(), 0);
    assert_eq!(h.irq12.rising_edges(), 0);
    assert_eq!(h.status() & STATUS_OBF, 0, "nothing left over");
    assert_eq!(h.read_ctr(), ctr);
    assert!(h.system.take().is_empty());
}

#[test]
fn command_byte_and_controller_ram_round_trip() {
    let h = Harness::new();
    h.write_ctr(0x65);
    assert_eq!(h.read_ctr(), 0x65);
    assert_ne!(h.status() & STATUS_SYS, 0, "SYS follows command byte bit 2");
    h.write_ctr(0x61);
    assert_eq!(h.status() & STATUS_SYS, 0);
    // The rest of the RAM.
    h.outb(0x64, 0x7f);
    assert_ne!(h.status() & STATUS_A2, 0, "A2: last write was a command");
    h.outb(0x60, 0x5a);
    assert_eq!(h.status() & STATUS_A2, 0);
    h.outb(0x64, 0x3f);
    assert_eq!(h.recv(), 0x5a);
    assert_eq!(
        h.read_ctr(),
        0x61,
        "other RAM bytes leave the command byte alone"
    );
}

#[test]
fn irq1_is_high_while_a_keyboard_byte_waits_and_drops_on_read() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT | CMD_AUX_DISABLE);
    h.irq1.take_events();
    h.outb(0x60, 0xf2); // identify
    assert!(h.irq1.level());
    let mut ids = Vec::new();
    for _ in 0..3 {
        assert!(h.irq1.level());
        ids.push(h.inb(0x60));
    }
    assert_eq!(ids, vec![0xfa, 0xab, 0x83]);
    assert!(!h.irq1.level());
    assert_eq!(h.irq1.rising_edges(), 3, "one edge per byte");
    assert_eq!(
        h.irq1.take_events(),
        vec![true, false, true, false, true, false]
    );
    assert_eq!(
        h.inb(0x60),
        0x83,
        "an empty buffer reads the last byte again"
    );
    assert!(!h.irq1.level());
    assert_eq!(h.irq12.rising_edges(), 0);

    // Interrupt disabled: the byte waits without IRQ; enabling the interrupt raises the line at once.
    h.write_ctr(CMD_AUX_DISABLE | CMD_TRANSLATE);
    h.outb(0x60, 0xf2);
    assert_ne!(h.status() & STATUS_OBF, 0);
    assert!(!h.irq1.level());
    h.outb(0x64, 0x60);
    h.outb(0x60, CMD_KBD_INT | CMD_AUX_DISABLE | CMD_TRANSLATE);
    assert!(h.irq1.level());
    assert_eq!(h.drain(), vec![0xfa, 0xab, 0x41], "translated identify");
    assert!(!h.irq1.level());
}

#[test]
fn reset_through_pulse_commands() {
    let h = Harness::new();
    h.outb(0x64, 0xfe);
    assert_eq!(h.system.take(), vec![SystemRequest::Reset]);
    // Commands that leave bit 0 high pulse other lines only.
    for cmd in [0xff, 0xfd, 0xf1, 0xfb] {
        h.outb(0x64, cmd);
    }
    assert!(h.system.take().is_empty());
    h.outb(0x64, 0xf0);
    h.outb(0x64, 0xfc);
    assert_eq!(h.system.take().len(), 2);
}

#[test]
fn output_port_write_controls_a20_and_reset() {
    let h = Harness::new();
    assert!(h.ctrl.a20());
    h.outb(0x64, 0xd0);
    assert_eq!(h.recv(), OUT_DEFAULT);
    h.outb(0x64, 0xd1);
    h.outb(0x60, 0xdd); // A20 off, reset released
    assert!(!h.ctrl.a20());
    assert!(h.system.take().is_empty());
    h.outb(0x64, 0xd0);
    assert_eq!(h.recv(), 0xdd & !OUT_KBD_OBF);
    h.outb(0x64, 0xd1);
    h.outb(0x60, 0xdf);
    assert!(h.ctrl.a20());
    h.outb(0x64, 0xd1);
    h.outb(0x60, 0xde); // bit 0 low: reset
    assert_eq!(h.system.take(), vec![SystemRequest::Reset]);
    // A byte waiting shows in the output port's OBF bits.
    h.outb(0x60, 0xee);
    h.outb(0x64, 0xd0);
    assert_eq!(h.recv(), 0xee);
    assert_eq!(h.recv() & OUT_KBD_OBF, OUT_KBD_OBF);
}

#[test]
fn a_new_command_abandons_a_pending_one() {
    let h = Harness::new();
    h.outb(0x64, 0x60);
    h.outb(0x64, 0xaa);
    assert_eq!(h.recv(), 0x55);
    // The data byte now goes to the keyboard, not into the command byte.
    h.outb(0x60, 0xee);
    assert_eq!(h.recv(), 0xee);
    assert_eq!(h.read_ctr(), CMD_DEFAULT);
}

#[test]
fn disabled_ports_hold_device_bytes_until_enabled() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT);
    h.aux_command(&[0xf4], 0);
    h.outb(0x64, 0xad);
    assert_eq!(h.read_ctr() & CMD_KBD_DISABLE, CMD_KBD_DISABLE);
    h.key(0x1e, true);
    assert_eq!(h.status() & STATUS_OBF, 0, "the keyboard's clock is held");
    assert!(!h.irq1.level());
    h.outb(0x64, 0xa7);
    h.pointer(1, 0, 0, 0);
    assert_eq!(h.status() & STATUS_OBF, 0, "and the mouse's");
    h.outb(0x64, 0xa8);
    assert_eq!(
        h.drain_tagged(),
        vec![(0x08, true), (0x01, true), (0x00, true)]
    );
    h.outb(0x64, 0xae);
    assert!(h.irq1.level());
    assert_eq!(h.drain(), vec![0x1c]);
}

#[test]
fn sending_to_a_device_enables_its_port() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_DISABLE | CMD_AUX_DISABLE);
    // Data to the keyboard: the controller releases its clock to send it, and the answer comes through.
    h.outb(0x60, 0xee);
    assert_eq!(h.recv(), 0xee);
    assert_eq!(h.read_ctr(), CMD_AUX_DISABLE);
    h.aux_send(0xf2);
    assert_eq!(h.drain_tagged(), vec![(0xfa, true), (0x00, true)]);
    assert_eq!(h.read_ctr(), 0);
}

#[test]
fn keyboard_bytes_go_before_mouse_bytes() {
    let h = Harness::new();
    h.aux_command(&[0xf4], 0);
    h.pointer(3, 0, 0, 0);
    h.key(0x1e, true);
    // The first mouse byte was already in the output buffer; the keyboard's bytes come before the rest.
    assert_eq!(
        h.drain_tagged(),
        vec![(0x08, true), (0x1c, false), (0x03, true), (0x00, true)]
    );
}

#[test]
fn irq12_follows_mouse_bytes_and_its_enable_bit() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT);
    assert_eq!(h.aux_command(&[0xf4], 0), vec![0xfa]);
    assert!(!h.irq12.level(), "aux interrupt disabled");
    h.irq12.take_events();
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT);
    h.pointer(-1, 1, 0, 1);
    assert!(h.irq12.level());
    assert!(!h.irq1.level());
    let mut packet = Vec::new();
    for _ in 0..3 {
        assert!(h.irq12.level());
        packet.push(h.recv_aux());
    }
    assert!(!h.irq12.level());
    // Left button, X negative, Y negative (the front-end's down is the mouse's minus).
    assert_eq!(packet, vec![0x39, 0xff, 0xff]);
    assert_eq!(h.irq12.rising_edges(), 3, "one edge per byte");
    // Interrupt disabled while a byte waits: the line drops, and rises again when re-enabled.
    h.pointer(0, 0, 0, 0);
    assert!(h.irq12.level());
    h.write_ctr(CMD_KBD_INT);
    assert!(!h.irq12.level());
    assert_ne!(h.status() & STATUS_AUX, 0);
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT);
    assert!(h.irq12.level());
    assert_eq!(h.drain(), vec![0x08, 0x00, 0x00]);
    assert!(!h.irq1.level());
    assert_eq!(h.irq1.rising_edges(), 0);
}

#[test]
fn linux_i8042_aux_port_probe() {
    // What i8042_controller_selftest, i8042_controller_init and i8042_check_aux do.
    let h = Harness::new();
    h.outb(0x64, 0xaa);
    assert_eq!(h.recv(), 0x55);
    let ctr = h.read_ctr();
    h.write_ctr((ctr | CMD_KBD_DISABLE) & !(CMD_KBD_INT | CMD_AUX_INT));
    // Internal loopback: the byte written with 0xD3 comes back as mouse data.
    h.outb(0x64, 0xd3);
    h.outb(0x60, 0x5a);
    assert_eq!(h.recv_aux(), 0x5a);
    // The multiplexer probe (0xF0, 0x56, 0xA4 looped back unchanged: no multiplexer).
    for b in [0xf0, 0x56, 0xa4] {
        h.outb(0x64, 0xd3);
        h.outb(0x60, b);
        assert_eq!(h.recv_aux(), b);
    }
    // Bit assignment test.
    h.outb(0x64, 0xa7);
    assert_ne!(h.read_ctr() & CMD_AUX_DISABLE, 0);
    h.outb(0x64, 0xa8);
    assert_eq!(h.read_ctr() & CMD_AUX_DISABLE, 0);
    // IRQ delivery test: loopback with the aux interrupt on.
    let ctr = h.read_ctr();
    h.write_ctr(ctr | CMD_AUX_INT);
    h.irq12.take_events();
    h.outb(0x64, 0xd3);
    h.outb(0x60, 0xa5);
    assert!(h.irq12.level());
    assert_eq!(h.recv_aux(), 0xa5);
    assert!(!h.irq12.level());
    // The aux interface test passes: a mouse is there.
    h.outb(0x64, 0xa9);
    assert_eq!(h.recv(), 0x00);
}

#[test]
fn front_ends_see_the_controller_through_the_display_traits() {
    let h = Harness::new();
    let keyboard: Arc<dyn KeyboardInput> = h.ctrl.clone();
    let pointer: Arc<dyn PointerInput> = h.ctrl.clone();
    assert_eq!(keyboard.leds(), 0);
    h.outb(0x60, 0xed);
    h.outb(0x60, 0x05);
    assert_eq!(h.drain(), vec![0xfa, 0xfa]);
    assert_eq!(keyboard.leds(), 0x05, "scroll and caps lock");
    assert!(!pointer.absolute(10, 10, 640, 480, 0));
    keyboard.key(0x1e, true);
    assert_eq!(h.drain(), vec![0x1c]);
    // The mouse reports nothing until the guest enables it.
    pointer.relative(5, 5, 0, 1);
    assert_eq!(h.status() & STATUS_OBF, 0);
    // Input from another thread raises the line like a port access does.
    h.irq1.take_events();
    std::thread::scope(|s| {
        s.spawn(|| keyboard.key(0x1e, false));
    });
    assert!(h.irq1.level());
    assert_eq!(h.drain(), vec![0xf0, 0x1c]);
}

#[test]
fn garbage_never_panics_and_queues_stay_bounded() {
    let h = Harness::new();
    for cmd in 0..=0xffu8 {
        for data in [0x00u8, 0x01, 0x7f, 0x80, 0xf0, 0xfe, 0xff] {
            h.outb(0x64, cmd);
            h.outb(0x60, data);
            let _ = h.status();
        }
        // Re-enable everything so that nothing is held back forever.
        h.write_ctr(CMD_DEFAULT);
        let _ = h.drain();
    }
    h.system.take();
    // A guest that never reads, while the front-ends keep sending.
    h.aux_command(&[0xff], 2);
    h.aux_command(&[0xf4], 0);
    for i in 0..10_000 {
        h.outb(0x60, 0xf2);
        h.outb(0x64, 0x20);
        h.key(0x1e, i % 2 == 0);
        h.pointer(100, -100, 0, 1);
    }
    let st = h.ctrl.state();
    assert!(st.kbd_queue.len() <= QUEUE_MAX + keyboard::REPLY_MAX);
    assert!(st.aux_queue.len() <= QUEUE_MAX + keyboard::REPLY_MAX);
    assert!(st.ctrl.len() <= CTRL_QUEUE_MAX);
    assert!(h.drain().len() <= MAX_WAITING);
    // Odd widths.
    let mut w = [0u8; 2];
    assert_eq!(h.bus.read(0x60, &mut w), Access::Refused);
    assert_eq!(h.bus.write(0x64, &[0xfe, 0xfe]), Access::Refused);
    assert!(h.system.take().is_empty());
    let port = h.ctrl.data_port();
    h.outb(0x60, 0xee);
    port.read(0, &mut []);
    port.write(0, &[]);
    let mut wide = [0u8; 4];
    port.read(0, &mut wide);
    assert_eq!(wide, [0xee, 0xff, 0xff, 0xff]);
}

#[test]
fn platform_reset_restores_power_on_state() {
    let h = Harness::new();
    h.outb(0x64, 0xaa);
    h.write_ctr(0x74);
    h.outb(0x64, 0xd2);
    h.outb(0x60, 0x99);
    assert!(!h.irq1.level());
    h.write_ctr(CMD_KBD_INT);
    assert!(h.irq1.level());
    assert_eq!(h.drain(), vec![0x55, 0x99]);
    h.aux_command(&[0xf3, 0xc8, 0xf3, 0x64, 0xf3, 0x50, 0xf4], 0);
    assert_eq!(h.ctrl.state().mouse().id(), 3);
    h.outb(0x60, 0xf0);
    h.outb(0x60, 0x01);
    h.ctrl.reset();
    assert!(!h.irq1.level());
    assert!(!h.irq12.level());
    assert_eq!(h.status(), STATUS_UNLOCKED);
    assert_eq!(h.read_ctr(), CMD_DEFAULT);
    let st = h.ctrl.state();
    assert_eq!(st.mouse(), &Ps2Mouse::default());
    assert_eq!(st.keyboard(), &Ps2Keyboard::default());
}

#[test]
fn state_round_trips() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT | CMD_TRANSLATE);
    h.aux_command(&[0xf3, 0xc8, 0xf3, 0xc8, 0xf3, 0x50, 0xe7, 0xf4], 0);
    h.outb(0x60, 0xf2);
    let _ = h.inb(0x60);
    h.key(0x2a, true);
    let saved = h.ctrl.state();
    let other = Harness::new();
    other.ctrl.restore(saved.clone());
    assert_eq!(other.ctrl.state(), saved);
    assert!(other.irq1.level(), "restore re-drives IRQ 1");
    assert_eq!(
        other.drain(),
        vec![0xab, 0x41, 0x2a],
        "translated as before"
    );
    assert_eq!(other.read_ctr(), CMD_KBD_INT | CMD_AUX_INT | CMD_TRANSLATE);
    assert_eq!(other.ctrl.state().mouse().id(), 4);
    assert!(other.ctrl.state().mouse().scaling_2to1());
    // The restored keyboard still knows Shift is held: Print Screen sends its shifted form.
    other.key(0xe037, true);
    assert_eq!(other.drain(), vec![0xe0, 0x37]);
    // A corrupt pending command is dropped rather than trusted.
    let mut bad = h.ctrl.state();
    bad.pending = Some(0x12);
    other.ctrl.restore(bad);
    assert_eq!(other.ctrl.state().pending, None);
}
