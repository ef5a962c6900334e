//! The i8042 driven through ports 0x60/0x64 on a bus, as SeaBIOS and OS drivers drive it.

use super::*;
use crate::bus::{Access, Bus};
use crate::irq::RecordingIrq;
use crate::system::RecordingSystem;

struct Harness {
    bus: Bus,
    ctrl: Arc<I8042>,
    irq1: Arc<RecordingIrq>,
    irq12: Arc<RecordingIrq>,
    system: Arc<RecordingSystem>,
}

impl Harness {
    fn new() -> Self {
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

    fn inb(&self, port: u64) -> u8 {
        let mut b = [0u8];
        assert_eq!(self.bus.read(port, &mut b), Access::Handled);
        b[0]
    }

    fn outb(&self, port: u64, v: u8) {
        assert_eq!(self.bus.write(port, &[v]), Access::Handled);
    }

    fn status(&self) -> u8 {
        self.inb(0x64)
    }

    /// Waits for OBF as `i8042_wait_read` does (it must already be set: nothing here is slow), then reads.
    fn recv(&self) -> u8 {
        assert_ne!(self.status() & STATUS_OBF, 0, "expected a byte");
        self.inb(0x60)
    }

    /// Reads every waiting byte.
    fn drain(&self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.status() & STATUS_OBF != 0 {
            out.push(self.inb(0x60));
            assert!(out.len() <= QUEUE_MAX + CTRL_QUEUE_MAX + 1, "never empties");
        }
        out
    }

    fn write_ctr(&self, v: u8) {
        self.outb(0x64, 0x60);
        self.outb(0x60, v);
    }

    fn read_ctr(&self) -> u8 {
        self.outb(0x64, 0x20);
        self.recv()
    }

    /// A keyboard command framed as SeaBIOS's `__ps2_command` frames it: `ps2ctr` is SeaBIOS's copy of the
    /// command byte (it never reads it back); interrupts are off and only the keyboard port is enabled during
    /// the exchange, and `ps2ctr` is written at the end.
    fn kbd_command(&self, ps2ctr: u8, bytes: &[u8], replies: usize) -> Vec<u8> {
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
fn disabled_keyboard_port_holds_its_bytes() {
    let h = Harness::new();
    h.outb(0x64, 0xad);
    assert_eq!(h.read_ctr() & CMD_KBD_DISABLE, CMD_KBD_DISABLE);
    h.outb(0x60, 0xee);
    assert_eq!(h.status() & STATUS_OBF, 0);
    h.outb(0x64, 0xae);
    assert_eq!(h.recv(), 0xee);
    assert_eq!(h.read_ctr() & CMD_KBD_DISABLE, 0);
}

#[test]
fn keyboard_commands_and_arguments() {
    let h = Harness::new();
    let send = |b: u8| {
        h.outb(0x60, b);
        h.drain()
    };
    assert_eq!(send(0xed), vec![0xfa]);
    assert_eq!(send(0x07), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0x07);
    assert_eq!(send(0xf3), vec![0xfa]);
    assert_eq!(send(0x2b), vec![0xfa]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x00), vec![0xfa, 0x02]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x03), vec![0xfa]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x00), vec![0xfa, 0x03]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x09), vec![0xfe], "no scan set 9");
    assert_eq!(send(0xee), vec![0xee]);
    assert_eq!(send(0x12), vec![0xfe]);
    assert_eq!(send(0xf7), vec![0xfe], "set-3 key commands unsupported");
    assert_eq!(send(0xfe), vec![0xfe], "resend repeats the last byte");
    assert_eq!(send(0xf5), vec![0xfa]);
    assert_eq!(send(0xfe), vec![0xfa]);
    assert!(!h.ctrl.state().keyboard().scanning());
    assert_eq!(send(0xf6), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().scan_set(), 2, "defaults restored");
    assert_eq!(send(0xf4), vec![0xfa]);
    assert!(h.ctrl.state().keyboard().scanning());
    assert_eq!(send(0xff), vec![0xfa, 0xaa]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0);
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
fn writes_to_the_output_buffer_and_to_the_absent_mouse() {
    let h = Harness::new();
    h.irq1.take_events();
    h.outb(0x64, 0xd2);
    h.outb(0x60, 0x42);
    assert_eq!(h.status() & (STATUS_OBF | STATUS_AUX), STATUS_OBF);
    assert!(h.irq1.level());
    assert_eq!(h.inb(0x60), 0x42);
    h.outb(0x64, 0xd3);
    h.outb(0x60, 0x43);
    assert_eq!(
        h.status() & (STATUS_OBF | STATUS_AUX | STATUS_TIMEOUT),
        STATUS_OBF | STATUS_AUX
    );
    assert!(h.irq12.level());
    assert!(!h.irq1.level());
    assert_eq!(h.inb(0x60), 0x43);
    assert!(!h.irq12.level());
    // The aux port passes its interface test, but nothing answers on it.
    h.outb(0x64, 0xa9);
    assert_eq!(h.recv(), 0x00);
    h.outb(0x64, 0xd4);
    h.outb(0x60, 0xf2);
    assert_eq!(
        h.status() & (STATUS_OBF | STATUS_AUX | STATUS_TIMEOUT),
        STATUS_OBF | STATUS_AUX | STATUS_TIMEOUT
    );
    assert_eq!(h.inb(0x60), 0xfe);
    assert_eq!(
        h.status() & STATUS_TIMEOUT,
        0,
        "the timeout bit goes with its byte"
    );
    assert_eq!(h.irq12.rising_edges(), 2);
    // Aux enable/disable commands.
    h.outb(0x64, 0xa7);
    assert_ne!(h.read_ctr() & CMD_AUX_DISABLE, 0);
    h.outb(0x64, 0xa8);
    assert_eq!(h.read_ctr() & CMD_AUX_DISABLE, 0);
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
    // A guest that never reads.
    for _ in 0..10_000 {
        h.outb(0x60, 0xf2);
        h.outb(0x64, 0x20);
    }
    let st = h.ctrl.state();
    assert!(st.kbd_queue.len() <= QUEUE_MAX);
    assert!(st.ctrl.len() <= CTRL_QUEUE_MAX);
    assert!(h.drain().len() <= QUEUE_MAX + CTRL_QUEUE_MAX + 1);
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
    h.ctrl.reset();
    assert!(!h.irq1.level());
    assert_eq!(h.status(), STATUS_UNLOCKED);
    assert_eq!(h.read_ctr(), CMD_DEFAULT);
}

#[test]
fn state_round_trips() {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT);
    h.outb(0x60, 0xf2);
    let _ = h.inb(0x60);
    let saved = h.ctrl.state();
    let other = Harness::new();
    other.ctrl.restore(saved);
    assert!(other.irq1.level(), "restore re-drives IRQ 1");
    assert_eq!(other.drain(), vec![0xab, 0x83]);
    assert_eq!(other.read_ctr(), CMD_KBD_INT);
    // A corrupt pending command is dropped rather than trusted.
    let mut bad = h.ctrl.state();
    bad.pending = Some(0x12);
    other.ctrl.restore(bad);
    assert_eq!(other.ctrl.state().pending, None);
}
