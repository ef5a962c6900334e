//! Register-level behaviour on the ISA card: reset port, interrupt mask, page 2, loopback, tallies, remote
//! DMA details and receive flow control.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::linux_driver::*;
use super::{frame, isa_card, Io, MAC};
use crate::bus::Bus;
use crate::irq::RecordingIrq;
use crate::net::testing::RecordingNet;
use crate::net::{NetBackend, NetError, NetReceiver};

use super::super::{Ne2000, NE2K_MAX_WIDTH, NE2K_PORTS};

/// Starts the NIC the way Linux leaves it, with the 16-bit layout.
fn up(io: &Io) -> Linux<'_> {
    let mut drv = Linux::new(io, Glue::Isa16);
    drv.dev_addr = MAC;
    drv.init(true);
    drv
}

#[test]
fn reading_the_reset_port_stops_the_nic_and_sets_rst() {
    let c = isa_card();
    let _drv = up(&c.io);
    assert_eq!(c.io.inb(CMD) & (START | STOP), START);
    assert_eq!(c.io.inb(EN0_ISR), 0);
    // Any of 0x18-0x1F resets; writing it does nothing more.
    let v = c.io.inb(0x18);
    c.io.outb(0x18, v);
    assert_eq!(c.io.inb(EN0_ISR), ENISR_RESET);
    assert_eq!(c.io.inb(CMD), NODMA | STOP);
    c.io.outb(CMD, NODMA | PAGE2 | STOP);
    assert_eq!(c.io.inb(0x0f), 0, "IMR cleared");
    assert_eq!(c.io.inb(0x0d) & 0x06, 0, "loopback off");
    assert_eq!(c.io.inb(0x01), 0x4c, "the ring survives a reset");
    // RST is not an interrupt and writes cannot clear it; START does.
    c.io.outb(CMD, NODMA | PAGE0 | STOP);
    c.io.outb(EN0_ISR, 0xff);
    assert_eq!(c.io.inb(EN0_ISR), ENISR_RESET);
    assert!(!c.irq.level());
    c.io.outb(CMD, NODMA | PAGE0 | START);
    assert_eq!(c.io.inb(EN0_ISR), 0);
}

#[test]
fn the_line_is_the_or_of_unmasked_status_bits() {
    let c = isa_card();
    let _drv = up(&c.io);
    c.io.outb(EN0_IMR, 0);
    assert!(c.net.deliver(&frame(MAC, 64, 0)));
    assert!(!c.irq.level(), "PRX masked");
    c.io.outb(EN0_IMR, ENISR_RX);
    assert!(c.irq.level());
    c.io.outb(EN0_IMR, ENISR_TX);
    assert!(!c.irq.level());
    c.io.outb(EN0_IMR, ENISR_ALL);
    assert!(c.irq.level());
    c.io.outb(EN0_ISR, ENISR_TX);
    assert!(c.irq.level(), "clearing another bit keeps PRX");
    c.io.outb(EN0_ISR, ENISR_RX);
    assert!(!c.irq.level());
    // RDC is maskable separately: ENISR_ALL leaves it out, so remote DMA does not interrupt Linux.
    c.io.outb(EN0_RCNTLO, 0);
    c.io.outb(EN0_RCNTHI, 0);
    c.io.outb(CMD, RREAD | START);
    assert_eq!(
        c.io.inb(EN0_ISR),
        ENISR_RDC,
        "a zero-byte transfer completes at once"
    );
    assert!(!c.irq.level());
    c.io.outb(EN0_IMR, ENISR_RDC);
    assert!(c.irq.level());
    assert_eq!(c.irq.rising_edges(), 3);
}

#[test]
fn page_2_reads_back_the_write_only_registers() {
    let c = isa_card();
    let _drv = up(&c.io);
    c.io.outb(EN0_TPSR, 0x41);
    c.io.outb(CMD, NODMA | PAGE2 | START);
    let p2: Vec<u8> = (1..=0x0f).map(|r| c.io.inb(r)).collect();
    assert_eq!(p2[0], 0x4c, "PSTART");
    assert_eq!(p2[1], 0x80, "PSTOP");
    assert_eq!(p2[2], 0x7f, "remote next packet pointer = BNRY");
    assert_eq!(p2[3], 0x41, "TPSR");
    assert_eq!(p2[4], 0x4c, "local next packet pointer = CURR");
    assert_eq!(p2[0x0b], E8390_RXCONFIG, "RCR");
    assert_eq!(p2[0x0c], E8390_TXCONFIG, "TCR");
    assert_eq!(p2[0x0d], 0x49, "DCR");
    assert_eq!(p2[0x0e], ENISR_ALL, "IMR");
    // Page 2 is read-only here: writing it changes nothing.
    c.io.outb(0x01, 0x55);
    assert_eq!(c.io.inb(0x01), 0x4c);
}

#[test]
fn internal_loopback_keeps_frames_off_the_wire_and_out_of_the_ring() {
    let c = isa_card();
    let drv = up(&c.io);
    c.io.outb(EN0_TXCR, E8390_TXOFF);
    let f = frame(MAC, 64, 0x10);
    drv.block_output(&f, 0x40).unwrap();
    c.io.outb(EN0_TCNTLO, 64);
    c.io.outb(EN0_TCNTHI, 0);
    c.io.outb(EN0_TPSR, 0x40);
    c.io.outb(CMD, NODMA | TRANS | START);
    assert!(c.net.take_sent().is_empty());
    assert_eq!(c.io.inb(EN0_TSR), ENTSR_PTX);
    assert_eq!(c.io.inb(EN0_ISR), ENISR_TX);
    assert_eq!(c.io.inb(EN0_RSR), ENRSR_RXOK, "our own address");
    // The FIFO holds the last 8 bytes the receiver saw: the frame's tail and its FCS.
    let fifo: Vec<u8> = (0..8).map(|_| c.io.inb(0x06)).collect();
    let mut tail = f[60..].to_vec();
    tail.extend_from_slice(&super::fcs(&f).to_le_bytes());
    assert_eq!(fifo, tail);
    // While looped back the receiver does not listen to the wire.
    assert!(!c.net.deliver(&frame(MAC, 64, 0)));
    assert!(!c.nic.can_receive());
    c.io.outb(CMD, NODMA | PAGE1 | START);
    assert_eq!(c.io.inb(EN1_CURPAG), 0x4c, "nothing stored");
    c.io.outb(CMD, NODMA | PAGE0 | START);
    let counters = c.nic.counters();
    assert_eq!(counters.tx_loopback, 1);
    assert_eq!(counters.rx_dropped_stopped, 1);
    // External loopback does reach the wire.
    c.io.outb(EN0_TXCR, 0x06);
    c.io.outb(CMD, NODMA | TRANS | START);
    assert_eq!(c.net.take_sent(), vec![f]);
}

#[test]
fn monitor_mode_counts_missed_frames_and_raises_cnt_at_128() {
    let c = isa_card();
    let _drv = up(&c.io);
    c.io.outb(EN0_RXCR, E8390_RXOFF);
    for n in 0..127u8 {
        assert!(!c.net.deliver(&frame(MAC, 60, n)));
    }
    assert_eq!(c.io.inb(EN0_ISR) & ENISR_COUNTERS, 0);
    assert!(!c.net.deliver(&frame(MAC, 60, 0)));
    assert_eq!(c.io.inb(EN0_ISR) & ENISR_COUNTERS, ENISR_COUNTERS);
    assert!(c.irq.level());
    assert_eq!(c.io.inb(EN0_RSR) & 0x10, 0x10, "missed packet");
    assert_eq!(c.io.inb(EN0_COUNTER2), 128);
    assert_eq!(c.io.inb(EN0_COUNTER2), 0, "cleared by reading");
    assert_eq!(c.nic.counters().rx_dropped_monitor, 128);
    c.io.outb(CMD, NODMA | PAGE1 | START);
    assert_eq!(c.io.inb(EN1_CURPAG), 0x4c, "monitor mode stores nothing");
}

#[test]
fn remote_dma_wraps_from_pstop_to_pstart_and_reports_its_address() {
    let c = isa_card();
    let drv = up(&c.io);
    let tail: Vec<u8> = (0..8).collect();
    let head: Vec<u8> = (8..16).collect();
    // One remote write starting 8 bytes before PSTOP continues at PSTART.
    c.io.outb(EN0_RCNTLO, 16);
    c.io.outb(EN0_RCNTHI, 0);
    c.io.outb(EN0_RSARLO, 0xf8);
    c.io.outb(EN0_RSARHI, 0x7f);
    c.io.outb(CMD, RWRITE | START);
    let mut data = tail.clone();
    data.extend_from_slice(&head);
    c.io.outs(NE_DATAPORT, 2, &data);
    assert_eq!(c.io.inb(0x08), 0x08, "CRDA low: PSTART page + 8");
    assert_eq!(c.io.inb(0x09), 0x4c, "CRDA high");
    assert_eq!(drv.block_input(8, 0x4c00), head);
    assert_eq!(drv.block_input(8, 0x7ff8), tail);
    // One read across PSTOP returns both halves in ring order.
    assert_eq!(drv.block_input(16, 0x7ff8), data);
}

#[test]
fn string_and_single_data_port_accesses_agree() {
    let c = isa_card();
    let drv = up(&c.io);
    let pattern: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
    drv.block_output(&pattern, 0x40).unwrap();
    let read_with = |width: usize, string: bool| -> Vec<u8> {
        c.io.outb(EN0_RCNTLO, 64);
        c.io.outb(EN0_RCNTHI, 0);
        c.io.outb(EN0_RSARLO, 0);
        c.io.outb(EN0_RSARHI, 0x40);
        c.io.outb(CMD, RREAD | START);
        if string {
            c.io.ins(NE_DATAPORT, width, 64 / width)
        } else {
            (0..64 / width)
                .flat_map(|_| match width {
                    2 => c.io.inw(NE_DATAPORT).to_le_bytes().to_vec(),
                    _ => c.io.inl(NE_DATAPORT).to_le_bytes().to_vec(),
                })
                .collect()
        }
    };
    for width in [2, 4] {
        assert_eq!(read_with(width, true), pattern, "rep ins{width}");
        assert_eq!(read_with(width, false), pattern, "in{width}");
    }
    // Past the count the channel is idle: reads float and are counted.
    assert_eq!(c.io.inw(NE_DATAPORT), 0xffff);
    assert_eq!(c.nic.counters().dma_idle_accesses, 1);
    // Big-endian byte order (DCR.BOS) swaps the lanes of each word.
    c.io.outb(EN0_DCFG, 0x4b);
    c.io.outb(EN0_RCNTLO, 2);
    c.io.outb(EN0_RSARLO, 0);
    c.io.outb(EN0_RSARHI, 0x40);
    c.io.outb(CMD, RREAD | START);
    assert_eq!(
        c.io.inw(NE_DATAPORT),
        u16::from_be_bytes([pattern[0], pattern[1]])
    );
}

/// A back-end that counts `rx_ready` calls around a recorder.
struct CountingNet {
    inner: Arc<RecordingNet>,
    ready: AtomicUsize,
}

impl NetBackend for CountingNet {
    fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        self.inner.send(frame)
    }
    fn rx_ready(&self) {
        self.ready.fetch_add(1, Ordering::SeqCst);
    }
    fn attach(&self, receiver: Weak<dyn NetReceiver>) {
        self.inner.attach(receiver);
    }
}

#[test]
fn a_refused_backend_hears_rx_ready_once_the_guest_makes_room() {
    let net = Arc::new(CountingNet {
        inner: RecordingNet::new(),
        ready: AtomicUsize::new(0),
    });
    let bus = Arc::new(Bus::new("pio"));
    let nic = Ne2000::new(MAC, net.clone(), RecordingIrq::new());
    bus.insert(0x300, NE2K_PORTS, NE2K_MAX_WIDTH, nic.clone())
        .unwrap();
    let io = Io { bus, base: 0x300 };

    // Stopped at power-on: refused, then the start in NS8390_init signals readiness.
    assert!(!nic.can_receive());
    assert!(!net.inner.deliver(&frame(MAC, 60, 0)));
    let mut drv = up(&io);
    assert_eq!(net.ready.load(Ordering::SeqCst), 1);
    assert!(nic.can_receive());

    // Fill the ring; the back-end learns of the room when the driver gives pages back.
    let mut n = 0u8;
    while nic.can_receive() {
        assert!(net.inner.deliver(&frame(MAC, 1500, n)));
        n += 1;
    }
    assert_eq!(net.ready.load(Ordering::SeqCst), 1);
    drv.interrupt();
    assert_eq!(net.ready.load(Ordering::SeqCst), 2);
    assert_eq!(drv.received.len(), usize::from(n));
}
