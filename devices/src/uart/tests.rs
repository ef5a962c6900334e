//! Tests of the 16550A, driven through the port bus as SeaBIOS and Linux's 8250 driver drive it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::regs::*;
use super::*;
use crate::bus::Bus;
use crate::chardev::CharFrontend;
use crate::clock::FakeClock;
use crate::irq::RecordingIrq;

const COM1: u64 = 0x3f8;
const RBR: u64 = COM1;
const THR: u64 = COM1;
const IER: u64 = COM1 + 1;
const IIR: u64 = COM1 + 2;
const FCR: u64 = COM1 + 2;
const LCR: u64 = COM1 + 3;
const MCR: u64 = COM1 + 4;
const LSR: u64 = COM1 + 5;
const MSR: u64 = COM1 + 6;
const SCR: u64 = COM1 + 7;

/// A back-end that takes at most `room` bytes of output and records them.
#[derive(Default)]
struct TestBackend {
    out: Mutex<Vec<u8>>,
    room: Mutex<usize>,
    rx_ready_calls: AtomicUsize,
    frontend: Mutex<Option<Weak<dyn CharFrontend>>>,
}

impl TestBackend {
    fn new(room: usize) -> Arc<Self> {
        let b = Arc::new(Self::default());
        *b.room.lock().unwrap() = room;
        b
    }
    fn frontend(&self) -> Arc<dyn CharFrontend> {
        self.frontend
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .upgrade()
            .unwrap()
    }
    fn set_room(&self, room: usize) {
        *self.room.lock().unwrap() = room;
    }
    fn output(&self) -> Vec<u8> {
        self.out.lock().unwrap().clone()
    }
}

impl crate::chardev::CharBackend for TestBackend {
    fn write(&self, data: &[u8]) -> usize {
        let mut room = self.room.lock().unwrap();
        let n = data.len().min(*room);
        *room -= n;
        self.out.lock().unwrap().extend_from_slice(&data[..n]);
        n
    }
    fn rx_ready(&self) {
        self.rx_ready_calls.fetch_add(1, Ordering::SeqCst);
    }
    fn attach(&self, frontend: Weak<dyn CharFrontend>) {
        *self.frontend.lock().unwrap() = Some(frontend);
    }
}

struct Rig {
    bus: Bus,
    serial: Arc<Serial>,
    backend: Arc<TestBackend>,
    irq: Arc<RecordingIrq>,
    clock: Arc<FakeClock>,
}

impl Rig {
    fn new() -> Self {
        Self::with_room(usize::MAX)
    }
    fn with_room(room: usize) -> Self {
        let backend = TestBackend::new(room);
        let irq = RecordingIrq::new();
        let clock = Arc::new(FakeClock::new());
        let serial = Serial::new(
            backend.clone(),
            irq.clone(),
            clock.clone(),
            TimerKick::none(),
        );
        let bus = Bus::new("pio");
        bus.insert(COM1, UART_PORTS, UART_MAX_WIDTH, serial.clone())
            .unwrap();
        Rig {
            bus,
            serial,
            backend,
            irq,
            clock,
        }
    }
    fn inb(&self, port: u64) -> u8 {
        let mut b = [0u8; 1];
        self.bus.read(port, &mut b);
        b[0]
    }
    fn outb(&self, port: u64, v: u8) {
        self.bus.write(port, &[v]);
    }
    fn receive(&self, data: &[u8]) -> usize {
        self.backend.frontend().receive(data)
    }
}

#[test]
fn seabios_detection_sees_a_uart() {
    let r = Rig::new();
    // serial.c detect_serial: IER=0x02 must read back and IIR&0x3f must say "THR empty".
    r.outb(IER, 0x02);
    assert_eq!(r.inb(IER), 0x02);
    assert_eq!(r.inb(IIR) & 0x3f, 0x02);
    r.outb(IER, 0);
    // A port with nothing behind it floats to 0xff and fails the same test.
    let mut b = [0u8; 1];
    r.bus.read(0x2f9, &mut b);
    assert_eq!(b[0], 0xff);
}

#[test]
fn linux_autoconfig_identifies_a_16550a() {
    let r = Rig::new();
    // IER: the high nibble reads as zero, the low nibble is writable.
    r.outb(IER, 0);
    assert_eq!(r.inb(IER) & 0x0f, 0);
    r.outb(IER, 0x0f);
    assert_eq!(r.inb(IER) & 0x0f, 0x0f);
    r.outb(IER, 0xff);
    assert_eq!(
        r.inb(IER),
        0x0f,
        "UUE and other high bits are not implemented"
    );
    r.outb(IER, 0);
    // Loopback test: MCR = LOOP|OUT2|RTS must show DCD|CTS in MSR.
    r.outb(MCR, MCR_LOOP | 0x0a);
    assert_eq!(r.inb(MSR) & 0xf0, 0x90);
    r.outb(MCR, 0);
    // FIFO probe: IIR bits 7:6 = 11 once enabled, and no 64-byte FIFO (bit 5 stays 0).
    r.outb(LCR, 0xbf);
    r.outb(FCR, 0); // "EFR" write on a 16550A is an FCR write
    r.outb(LCR, 0);
    r.outb(FCR, FCR_ENABLE);
    assert_eq!(r.inb(IIR) >> 6, 3);
    r.outb(FCR, FCR_ENABLE | 0x20);
    assert_eq!(r.inb(IIR) >> 5, 6);
    // With DLAB set, offset 2 still reads IIR and is non-zero (no EFR of a 650).
    r.outb(LCR, 0x80);
    assert_ne!(r.inb(IIR), 0);
    r.outb(LCR, 0);
    r.outb(SCR, 0x5a);
    assert_eq!(r.inb(SCR), 0x5a);
}

#[test]
fn divisor_latch_shadows_rbr_thr_and_ier() {
    let r = Rig::new();
    r.outb(IER, 0x05);
    r.outb(LCR, LCR_DLAB | 0x03);
    r.outb(COM1, 0x01);
    r.outb(COM1 + 1, 0x00);
    assert_eq!(r.inb(COM1), 0x01);
    assert_eq!(r.inb(COM1 + 1), 0x00);
    assert!(r.backend.output().is_empty(), "DLL writes are not data");
    r.outb(LCR, 0x03);
    assert_eq!(r.inb(IER), 0x05);
    assert_eq!(r.inb(LCR), 0x03);
    r.outb(THR, b'X');
    assert_eq!(r.backend.output(), b"X");
    let st = r.serial.state();
    assert_eq!((st.uart.dll, st.uart.dlm), (1, 0));
}

#[test]
fn fifo_trigger_levels_decide_the_rda_interrupt() {
    for (bits, level) in [(0x00u8, 1usize), (0x40, 4), (0x80, 8), (0xc0, 14)] {
        let r = Rig::new();
        r.outb(MCR, MCR_OUT2);
        r.outb(FCR, FCR_ENABLE | FCR_CLEAR_RX | FCR_CLEAR_TX | bits);
        r.outb(IER, IER_ERBFI);
        for i in 1..level {
            assert_eq!(r.receive(&[i as u8]), 1);
            assert_eq!(r.inb(IIR), 0xc1, "below trigger {level}");
            assert!(!r.irq.level());
        }
        assert_eq!(r.receive(b"z"), 1);
        assert_eq!(r.inb(IIR), 0xc4, "at trigger {level}");
        assert!(r.irq.level());
        assert_eq!(r.inb(LSR) & LSR_DR, LSR_DR);
        r.inb(RBR);
        // Below the trigger again: the RDA interrupt clears (level 1 empties the FIFO).
        assert_eq!(r.inb(IIR), 0xc1);
        assert!(!r.irq.level());
    }
}

#[test]
fn fifo_holds_sixteen_and_then_refuses_until_read() {
    let r = Rig::new();
    r.outb(FCR, FCR_ENABLE);
    assert_eq!(r.receive(&[7u8; 20]), 16);
    assert_eq!(r.serial.rx_room(), 0);
    assert_eq!(r.backend.rx_ready_calls.load(Ordering::SeqCst), 0);
    r.inb(RBR);
    assert_eq!(r.backend.rx_ready_calls.load(Ordering::SeqCst), 1);
    assert_eq!(r.receive(&[8, 9]), 1);
    assert_eq!(
        r.inb(LSR) & LSR_OE,
        0,
        "flow-controlled input never overruns"
    );
    // Without FIFOs the receiver holds a single byte.
    r.outb(FCR, 0);
    assert_eq!(r.receive(b"ab"), 1);
    assert_eq!(r.inb(RBR), b'a');
    assert_eq!(r.inb(LSR) & LSR_DR, 0);
}

#[test]
fn character_timeout_fires_after_four_char_times() {
    let r = Rig::new();
    r.outb(MCR, MCR_OUT2);
    // 115200 baud, 8N1: 10 bits per character.
    r.outb(LCR, LCR_DLAB | 3);
    r.outb(COM1, 1);
    r.outb(COM1 + 1, 0);
    r.outb(LCR, 3);
    r.outb(FCR, FCR_ENABLE | 0x80); // trigger 8
    r.outb(IER, IER_ERBFI);
    r.clock.set(1_000);
    r.receive(b"hi");
    let four_chars = 4 * 10 * 1_000_000_000 / 115_200;
    let deadline = r.serial.advance(r.clock.now_ns()).unwrap();
    assert_eq!(deadline, 1_000 + four_chars);
    assert_eq!(r.inb(IIR), 0xc1);
    assert_eq!(r.serial.advance(deadline - 1), Some(deadline));
    assert!(!r.irq.level());
    r.clock.set(deadline);
    assert_eq!(r.serial.advance(deadline), None);
    assert_eq!(r.inb(IIR), 0xcc);
    assert!(r.irq.level());
    // Reading one character clears the timeout and restarts the timer.
    r.clock.set(deadline + 10);
    assert_eq!(r.inb(RBR), b'h');
    assert_eq!(r.inb(IIR), 0xc1);
    assert!(!r.irq.level());
    assert_eq!(
        r.serial.advance(deadline + 10),
        Some(deadline + 10 + four_chars)
    );
    // The timeout exists only in FIFO mode.
    r.outb(FCR, 0);
    r.receive(b"x");
    assert_eq!(r.serial.advance(u64::MAX), None);
    assert_eq!(r.inb(IIR), 0x04);
}

#[test]
fn thre_interrupt_rules() {
    let r = Rig::new();
    r.outb(MCR, MCR_OUT2);
    r.outb(IER, IER_ETBEI);
    assert!(r.irq.level(), "enabling ETBEI with THR empty raises THRE");
    assert_eq!(r.inb(IIR), 0x02);
    // Reading IIR while THRE is the reported source acknowledges it.
    assert_eq!(r.inb(IIR), 0x01);
    assert!(!r.irq.level());
    // Re-enabling ETBEI re-arms it (Linux's UART_BUG_TXEN test).
    r.outb(IER, 0);
    r.outb(IER, IER_ETBEI);
    assert_eq!(r.inb(IIR), 0x02);
    // A THR write clears it, and the transmitter emptying raises it again.
    r.outb(THR, b'a');
    assert!(r.irq.level());
    assert_eq!(r.backend.output(), b"a");
    // THRE is not reported (nor acknowledged) while a higher source is pending.
    r.outb(IER, IER_ETBEI | IER_ERBFI);
    r.receive(b"q");
    assert_eq!(r.inb(IIR), 0x04);
    r.inb(RBR);
    assert_eq!(
        r.inb(IIR),
        0x02,
        "THRE still pending after the RDA was served"
    );
    assert_eq!(r.inb(IIR), 0x01);
}

#[test]
fn out2_gates_the_irq_line() {
    let r = Rig::new();
    r.outb(IER, IER_ERBFI);
    r.receive(b"x");
    assert_eq!(r.inb(IIR), 0x04, "the UART's own INTR is pending");
    assert!(
        !r.irq.level(),
        "but without OUT2 the PC's IRQ line stays low"
    );
    r.outb(MCR, MCR_OUT2);
    assert!(r.irq.level());
    r.outb(MCR, 0);
    assert!(!r.irq.level());
}

#[test]
fn loopback_routes_thr_to_rbr_and_mcr_to_msr() {
    let r = Rig::new();
    assert_eq!(
        r.inb(MSR),
        DEFAULT_MODEM_INPUTS,
        "a live line: DCD, DSR, CTS"
    );
    r.outb(MCR, MCR_LOOP);
    // All inputs dropped: delta CTS, DSR and DCD.
    assert_eq!(r.inb(MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
    assert_eq!(r.inb(MSR), 0, "reading MSR clears the deltas");
    r.outb(MCR, MCR_LOOP | 0x0f);
    assert_eq!(r.inb(MSR), 0xf0 | MSR_DCTS | MSR_DDSR | MSR_DDCD);
    r.outb(MCR, MCR_LOOP | 0x0b); // OUT1 off: RI falls
    assert_eq!(r.inb(MSR), 0xb0 | MSR_TERI);
    // Modem status interrupt.
    r.outb(IER, IER_EDSSI);
    r.outb(MCR, MCR_LOOP | MCR_OUT2);
    assert_eq!(r.inb(IIR), 0x00);
    assert!(r.irq.level());
    r.inb(MSR);
    assert_eq!(r.inb(IIR), 0x01);
    // Data loops back and never reaches the back-end; outside input waits.
    r.outb(THR, b'L');
    assert_eq!(r.inb(LSR) & (LSR_DR | LSR_THRE | LSR_TEMT), 0x61);
    assert_eq!(r.serial.rx_room(), 0);
    assert_eq!(r.inb(RBR), b'L');
    assert!(r.backend.output().is_empty());
    r.outb(MCR, 0);
    assert_eq!(
        r.backend.rx_ready_calls.load(Ordering::SeqCst),
        1,
        "leaving loopback lets input in again"
    );
}

#[test]
fn loopback_overrun_sets_oe_and_raises_line_status() {
    let r = Rig::new();
    r.outb(MCR, MCR_LOOP | MCR_OUT2);
    r.outb(IER, IER_ELSI | IER_ERBFI | IER_ETBEI);
    r.outb(THR, 1);
    r.outb(THR, 2); // no FIFO: overwrites the holding register
    assert_eq!(
        r.inb(IIR),
        0x06,
        "line status beats data available and THRE"
    );
    assert!(r.irq.level());
    assert_eq!(r.inb(LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    assert_eq!(r.inb(LSR) & LSR_OE, 0, "reading LSR clears OE");
    assert_eq!(r.inb(IIR), 0x04);
    assert_eq!(r.inb(RBR), 2);
    // In FIFO mode the 17th character is lost and the FIFO kept.
    r.outb(FCR, FCR_ENABLE);
    for i in 0..17 {
        r.outb(THR, i);
    }
    assert_eq!(r.inb(LSR) & LSR_OE, LSR_OE);
    assert_eq!(r.inb(RBR), 0);
    r.outb(FCR, FCR_ENABLE | FCR_CLEAR_RX);
    assert_eq!(r.inb(LSR) & LSR_DR, 0);
}

#[test]
fn full_backend_holds_thre_clear_until_it_drains() {
    let r = Rig::with_room(0);
    r.outb(MCR, MCR_OUT2);
    r.outb(IER, IER_ETBEI);
    r.inb(IIR);
    r.outb(THR, b'a');
    assert_eq!(
        r.inb(LSR) & (LSR_THRE | LSR_TEMT),
        0,
        "the byte waits in THR"
    );
    assert!(!r.irq.level());
    assert_eq!(r.inb(IIR), 0x01);
    // A driver that ignores THRE loses the byte, as on hardware.
    r.outb(THR, b'b');
    // FIFO mode: sixteen bytes wait.
    r.outb(FCR, FCR_ENABLE);
    assert_eq!(
        r.inb(LSR) & LSR_THRE,
        LSR_THRE,
        "switching modes emptied THR"
    );
    r.inb(IIR);
    for &b in b"0123456789abcdefX" {
        r.outb(THR, b);
    }
    assert_eq!(r.inb(LSR) & LSR_THRE, 0);
    r.backend.set_room(10);
    r.backend.frontend().tx_ready();
    assert_eq!(r.backend.output(), b"0123456789");
    assert_eq!(r.inb(LSR) & LSR_THRE, 0);
    r.backend.set_room(100);
    r.backend.frontend().tx_ready();
    assert_eq!(r.backend.output(), b"0123456789abcdef");
    assert_eq!(r.inb(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
    assert!(r.irq.level(), "THR emptying raises THRE");
    assert_eq!(r.inb(IIR), 0xc2);
}

#[test]
fn clearing_the_tx_fifo_drops_held_output() {
    let r = Rig::with_room(0);
    r.outb(FCR, FCR_ENABLE);
    r.outb(THR, b'a');
    r.outb(FCR, FCR_ENABLE | FCR_CLEAR_TX);
    assert_eq!(r.inb(LSR) & LSR_TEMT, LSR_TEMT);
    r.backend.set_room(10);
    r.backend.frontend().tx_ready();
    assert!(r.backend.output().is_empty());
}

#[test]
fn reset_and_state_round_trip() {
    let r = Rig::new();
    r.outb(MCR, MCR_OUT2 | MCR_DTR);
    r.outb(FCR, FCR_ENABLE | 0x40);
    r.outb(IER, IER_ERBFI);
    r.receive(b"abcd");
    assert!(r.irq.level());
    let saved = r.serial.state();
    let json_like = saved.clone();
    r.serial.reset();
    assert!(!r.irq.level());
    assert_eq!(r.inb(IIR), 0x01);
    assert_eq!(r.inb(LSR), LSR_THRE | LSR_TEMT);
    assert_eq!(r.inb(MCR), 0);
    r.serial.restore(json_like);
    assert!(r.irq.level());
    assert_eq!(r.inb(RBR), b'a');
    assert_eq!(r.serial.state().uart.rx.len(), 3);
    // A corrupt snapshot is trimmed, not trusted.
    let mut bad = saved;
    bad.uart.rx = (0..200).map(|i| i as u8).collect();
    bad.uart.fcr = 0;
    bad.uart.ier = 0xff;
    r.serial.restore(bad);
    assert_eq!(r.serial.state().uart.rx.len(), 1);
    assert_eq!(r.inb(IER), 0x0f);
}

#[test]
fn odd_widths_and_offsets_are_harmless() {
    let r = Rig::new();
    let mut w = [0u8; 2];
    r.serial.read(0, &mut w);
    assert_eq!(w, [0xff, 0xff]);
    r.serial.write(0, &[1, 2]);
    r.serial.write(9, &[1]);
    r.serial.write(u64::MAX, &[1]);
    r.serial.write(0, &[]);
    let mut b = [0u8; 1];
    r.serial.read(8, &mut b);
    assert_eq!(b, [0xff]);
    r.serial.read(0, &mut []);
    assert!(r.backend.output().is_empty());
    // Through the bus, wide accesses are refused before they reach the device.
    let mut d = [0u8; 4];
    assert_eq!(r.bus.read(COM1, &mut d), crate::bus::Access::Refused);
}

#[test]
fn garbage_register_traffic_never_panics() {
    let r = Rig::with_room(3);
    let mut x: u64 = 0x1234_5678_9abc_def0;
    for i in 0..50_000u64 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = COM1 + (x % 8);
        let v = (x >> 8) as u8;
        match (x >> 16) % 6 {
            0 | 1 => r.outb(port, v),
            2 | 3 => {
                r.inb(port);
            }
            4 => {
                r.receive(&[v; 5]);
            }
            _ => {
                r.clock.advance(x % 1_000_000);
                r.serial.advance(r.clock.now_ns());
                if i % 7 == 0 {
                    r.backend.set_room((x % 5) as usize);
                    r.backend.frontend().tx_ready();
                }
            }
        }
        let st = r.serial.state().uart;
        assert!(st.rx.len() <= FIFO_SIZE && st.tx.len() <= FIFO_SIZE);
    }
}
