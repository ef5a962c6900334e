//! An RTL8139 driven as Linux `8139too` drives it in C mode: reset, MAC from IDR0-5, the receive ring in
//! guest RAM (RBSTART, 8 KiB + 16 with WRAP so frames never split), four transmit descriptors used round
//! robin (TSAD buffer address, TSD size with OWN clear starts the DMA, TOK when sent), frames read from the
//! ring at CAPR + 16 behind their 4-byte header and CAPR moved past them.

use devices::memory::{Bytes, GuestAddress};
use devices::net::testing::client::NicDriver;
use devmodel::harness::TestMachine;

use super::poll;

const IDR0: u16 = 0x00;
const MAR0: u16 = 0x08;
const TSD0: u16 = 0x10;
const TSAD0: u16 = 0x20;
const RBSTART: u16 = 0x30;
const CR: u16 = 0x37;
const CAPR: u16 = 0x38;
const IMR: u16 = 0x3c;
const ISR: u16 = 0x3e;
const TCR: u16 = 0x40;
const RCR: u16 = 0x44;
const CFG9346: u16 = 0x50;

const CR_RST: u8 = 0x10;
const CR_RE: u8 = 0x08;
const CR_TE: u8 = 0x04;
const CR_BUFE: u8 = 0x01;
const ISR_ROK: u16 = 0x01;
const ISR_TOK: u16 = 0x04;
const TSD_OWN: u32 = 1 << 13;
const TSD_TOK: u32 = 1 << 15;
/// Accept broadcast, multicast and our address; WRAP; 8 KiB + 16 ring; unlimited DMA burst.
const RCR_VALUE: u32 = 0x02 | 0x04 | 0x08 | 0x80 | (7 << 8);
/// Maximum DMA burst, normal IFG.
const TCR_VALUE: u32 = (6 << 8) | (3 << 24);

/// Ring length (RBLEN 0).
const RING: u32 = 8192;
/// Guest RAM used by the driver: the ring (plus the 16-byte pad and room for a frame past the end, which
/// WRAP needs), then four 2 KiB transmit buffers.
const RING_ADDR: u64 = 0x0010_0000;
const TX_ADDR: u64 = RING_ADDR + 0x4000;

/// The driver.
pub struct Rtl8139Driver<'a> {
    machine: &'a TestMachine,
    io: u16,
    /// Next transmit descriptor.
    tx_next: u16,
    /// Offset of the next frame in the ring.
    rx_offset: u32,
    /// The MAC read from IDR at probe time.
    pub mac: [u8; 6],
}

impl<'a> Rtl8139Driver<'a> {
    /// Probes and opens the NIC whose BAR0 the firmware put at `io`.
    pub fn open(machine: &'a TestMachine, io: u16) -> Rtl8139Driver<'a> {
        let m = machine;
        m.outb(io + CR, CR_RST);
        poll("software reset", || m.inb(io + CR) & CR_RST == 0);
        let mut mac = [0u8; 6];
        for (i, b) in mac.iter_mut().enumerate() {
            *b = m.inb(io + IDR0 + i as u16);
        }
        // Unlock the config registers as 8139too does before touching them, then lock again.
        m.outb(io + CFG9346, 0xc0);
        m.outb(io + CFG9346, 0x00);
        m.outl(io + RBSTART, RING_ADDR as u32);
        m.outb(io + CR, CR_RE | CR_TE);
        m.outl(io + RCR, RCR_VALUE);
        m.outl(io + TCR, TCR_VALUE);
        // Every multicast (the filter as Linux sets it for IFF_ALLMULTI).
        m.outl(io + MAR0, 0xffff_ffff);
        m.outl(io + MAR0 + 4, 0xffff_ffff);
        for i in 0..4u16 {
            m.outl(io + TSAD0 + 4 * i, (TX_ADDR + 0x800 * u64::from(i)) as u32);
        }
        m.outw(io + IMR, ISR_ROK | ISR_TOK);
        m.outw(io + CAPR, (0u16).wrapping_sub(16));
        Rtl8139Driver {
            machine,
            io,
            tx_next: 0,
            rx_offset: 0,
            mac,
        }
    }

    /// Acknowledges every pending interrupt cause.
    pub fn ack(&self) -> u16 {
        let isr = self.machine.inw(self.io + ISR);
        self.machine.outw(self.io + ISR, isr);
        isr
    }
}

impl NicDriver for Rtl8139Driver<'_> {
    fn send(&mut self, frame: &[u8]) {
        let (m, io) = (self.machine, self.io);
        let slot = self.tx_next;
        self.tx_next = (self.tx_next + 1) % 4;
        let tsd = io + TSD0 + 4 * slot;
        // A descriptor is free once the chip gave it back (OWN set).
        poll("a free transmit descriptor", || {
            m.inl(tsd) & TSD_OWN != 0 || m.inl(tsd) == 0
        });
        let buffer = TX_ADDR + 0x800 * u64::from(slot);
        m.platform
            .mem
            .write_slice(frame, GuestAddress(buffer))
            .unwrap();
        let len = frame.len().max(60) as u32;
        m.outl(tsd, len);
        poll("transmit OK", || m.inl(tsd) & TSD_TOK != 0);
        m.outw(io + ISR, ISR_TOK);
    }

    fn poll_receive(&mut self) -> Option<Vec<u8>> {
        let (m, io) = (self.machine, self.io);
        if m.inb(io + CR) & CR_BUFE != 0 {
            return None;
        }
        let mut header = [0u8; 4];
        let at = RING_ADDR + u64::from(self.rx_offset);
        m.platform
            .mem
            .read_slice(&mut header, GuestAddress(at))
            .unwrap();
        let status = u16::from_le_bytes([header[0], header[1]]);
        let len = u32::from(u16::from_le_bytes([header[2], header[3]]));
        assert!(status & 1 != 0, "ring entry without ROK: {status:#x}");
        assert!((64..=1522).contains(&len), "ring entry of {len} bytes");
        // WRAP: the chip wrote the frame contiguously even past the ring's end.
        let mut frame = vec![0u8; (len - 4) as usize];
        m.platform
            .mem
            .read_slice(&mut frame, GuestAddress(at + 4))
            .unwrap();
        self.rx_offset = (self.rx_offset + len + 4 + 3) & !3;
        self.rx_offset %= RING;
        m.outw(io + CAPR, (self.rx_offset as u16).wrapping_sub(16));
        m.outw(io + ISR, ISR_ROK);
        Some(frame)
    }
}
