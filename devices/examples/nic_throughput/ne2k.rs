//! The NE2000, driven as Linux's 8390 library drives it (`NS8390_init`, `ei_start_xmit`,
//! `NS8390_trigger_send`, `ei_interrupt`, `ei_receive`, `ei_tx_intr`), with the board glue of `ne2k-pci`
//! (RTL8029 on PCI: 32-bit `insl`/`outsl` on the data port, a single `inl` for the ring header) or of
//! `ne.c` on a 16-bit ISA card (`insw`/`outsw`). Re-expressed from the drivers' documented register
//! sequences. Every access goes through the test bed's port bus: the PCI card's BAR0 through the PCI root,
//! the ISA card at 0x300.

use std::sync::Arc;

use devices::net::ne2k::{Ne2000, Ne2kPci, NE2K_MAX_WIDTH, NE2K_PORTS};
use devices::net::{NetBackend, NetReceiver};
use devices::pci::testing::PciTestbed;

use crate::common::{Guest, Io, NIC_MAC};

const CMD: u8 = 0x00;
const NODMA: u8 = 0x20;
const PAGE0: u8 = 0x00;
const PAGE1: u8 = 0x40;
const STOP: u8 = 0x01;
const START: u8 = 0x02;
const TRANS: u8 = 0x04;
const RREAD: u8 = 0x08;
const RWRITE: u8 = 0x10;

const EN0_STARTPG: u8 = 0x01;
const EN0_STOPPG: u8 = 0x02;
const EN0_BOUNDARY: u8 = 0x03;
const EN0_TSR: u8 = 0x04;
const EN0_TPSR: u8 = 0x04;
const EN0_TCNTLO: u8 = 0x05;
const EN0_TCNTHI: u8 = 0x06;
const EN0_ISR: u8 = 0x07;
const EN0_RSARLO: u8 = 0x08;
const EN0_RSARHI: u8 = 0x09;
const EN0_RCNTLO: u8 = 0x0a;
const EN0_RCNTHI: u8 = 0x0b;
const EN0_RXCR: u8 = 0x0c;
const EN0_TXCR: u8 = 0x0d;
const EN0_DCFG: u8 = 0x0e;
const EN0_IMR: u8 = 0x0f;
const EN1_PHYS: u8 = 0x01;
const EN1_CURPAG: u8 = 0x07;
const EN1_MULT: u8 = 0x08;
const NE_DATAPORT: u8 = 0x10;
const NE_RESET: u8 = 0x1f;

const ENISR_RX: u8 = 0x01;
const ENISR_TX: u8 = 0x02;
const ENISR_RX_ERR: u8 = 0x04;
const ENISR_TX_ERR: u8 = 0x08;
const ENISR_OVER: u8 = 0x10;
const ENISR_COUNTERS: u8 = 0x20;
const ENISR_RDC: u8 = 0x40;
const ENISR_RESET: u8 = 0x80;
const ENISR_ALL: u8 = 0x3f;

const E8390_RXCONFIG: u8 = 0x04;
const E8390_RXOFF: u8 = 0x20;
const E8390_TXCONFIG: u8 = 0x00;
const E8390_TXOFF: u8 = 0x02;
const ENTSR_PTX: u8 = 0x01;
const ENRSR_RXOK: u8 = 0x01;
/// ei_interrupt's MAX_SERVICE.
const MAX_SERVICE: usize = 12;

/// Which board glue moves the data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Glue {
    /// ne2k-pci on the RTL8029: `insl`/`outsl` with 16- and 8-bit tails.
    Pci32,
    /// ne.c on a 16-bit ISA card: `insw`/`outsw`, odd byte with `inb`.
    Isa16,
}

/// Where the PCI card's BAR0 goes.
const PCI_SLOT: u8 = 4;
const PCI_IO_BASE: u16 = 0xc100;
/// The ISA card's defaults.
const ISA_BASE: u16 = 0x300;
const ISA_IRQ: u32 = 9;

/// An NE2000 on the test bed's port bus, opened by Linux's 8390 driver.
pub struct Lib8390 {
    _tb: PciTestbed,
    _pci: Option<Ne2kPci>,
    nic: Arc<Ne2000>,
    io: Io,
    glue: Glue,
    tx_start_page: u8,
    rx_start_page: u8,
    stop_page: u8,
    current_page: u8,
    txing: bool,
    /// The driver's skb for block_input (kept, so the benchmark does not measure the allocator).
    buf: Vec<u8>,
    /// The padded copy ei_start_xmit makes of a short frame.
    scratch: Vec<u8>,
}

impl Lib8390 {
    /// The PCI RTL8029 in slot 4 (BAR0 at 0xC100, INTA# through the PIIX3), or the ISA card at 0x300/IRQ 9,
    /// on `backend`, probed and opened.
    pub fn open(glue: Glue, backend: Arc<dyn NetBackend>) -> Lib8390 {
        let tb = PciTestbed::new();
        let (nic, pci, base) = match glue {
            Glue::Pci32 => {
                let card = Ne2kPci::new(NIC_MAC, backend, Some(tb.intx_line(PCI_SLOT, 1)))
                    .unwrap_or_else(|e| panic!("cannot build the RTL8029: {e}"));
                tb.add(PCI_SLOT, 0, card.function());
                tb.route_pirqs_like_seabios();
                tb.cfg_write(PCI_SLOT, 0, 0x10, 4, u32::from(PCI_IO_BASE) | 1);
                tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 0x0001);
                (card.nic().clone(), Some(card), PCI_IO_BASE)
            }
            Glue::Isa16 => {
                let nic = Ne2000::new(NIC_MAC, backend, tb.mux.line(ISA_IRQ));
                tb.pio
                    .insert(u64::from(ISA_BASE), NE2K_PORTS, NE2K_MAX_WIDTH, nic.clone())
                    .unwrap_or_else(|e| panic!("cannot insert the ISA NE2000: {e}"));
                (nic, None, ISA_BASE)
            }
        };
        let io = Io {
            bus: tb.pio.clone(),
            base: u64::from(base),
        };
        // ne2k-pci's memory layout (16-bit ne.c uses the same): TX at 0x40 (12 pages), ring 0x4C-0x80.
        let mut d = Lib8390 {
            _tb: tb,
            _pci: pci,
            nic,
            io,
            glue,
            tx_start_page: 0x40,
            rx_start_page: 0x4c,
            stop_page: 0x80,
            current_page: 0x4c,
            txing: false,
            buf: vec![0; 2048],
            scratch: vec![0; 60],
        };
        d.reset_8390();
        d.init();
        d
    }

    /// The board's reset_8390: read the reset port, write it back, wait for RST, acknowledge it.
    fn reset_8390(&self) {
        let io = &self.io;
        let v = io.inb(NE_RESET);
        io.outb(NE_RESET, v);
        let mut tries = 0;
        while io.inb(EN0_ISR) & ENISR_RESET == 0 {
            tries += 1;
            assert!(tries < 100, "NE2000 reset not done");
        }
        io.outb(EN0_ISR, ENISR_RESET);
    }

    /// NS8390_init(dev, 1), with do_set_multicast_list for no multicast addresses.
    fn init(&mut self) {
        let io = &self.io;
        io.outb(CMD, NODMA + PAGE0 + STOP);
        io.outb(EN0_DCFG, 0x49);
        io.outb(EN0_RCNTLO, 0);
        io.outb(EN0_RCNTHI, 0);
        io.outb(EN0_RXCR, E8390_RXOFF);
        io.outb(EN0_TXCR, E8390_TXOFF);
        io.outb(EN0_TPSR, self.tx_start_page);
        io.outb(EN0_STARTPG, self.rx_start_page);
        io.outb(EN0_BOUNDARY, self.stop_page - 1);
        self.current_page = self.rx_start_page;
        io.outb(EN0_STOPPG, self.stop_page);
        io.outb(EN0_ISR, 0xff);
        io.outb(EN0_IMR, 0x00);
        io.outb(CMD, NODMA + PAGE1 + STOP);
        for (i, &b) in NIC_MAC.iter().enumerate() {
            io.outb(EN1_PHYS + i as u8, b);
            assert_eq!(io.inb(EN1_PHYS + i as u8), b, "station address");
        }
        io.outb(EN1_CURPAG, self.rx_start_page);
        io.outb(CMD, NODMA + PAGE0 + STOP);
        self.txing = false;
        io.outb(EN0_ISR, 0xff);
        io.outb(EN0_IMR, ENISR_ALL);
        io.outb(CMD, NODMA + PAGE0 + START);
        io.outb(EN0_TXCR, E8390_TXCONFIG);
        io.outb(EN0_RXCR, E8390_RXCONFIG);
        io.outb(CMD, NODMA + PAGE1);
        for i in 0..8u8 {
            io.outb(EN1_MULT + i, 0);
            io.inb(EN1_MULT + i);
        }
        io.outb(CMD, NODMA + PAGE0);
        io.outb(EN0_RXCR, E8390_RXCONFIG);
    }

    /// Sets up a remote read of `count` bytes at `addr` (the first six writes of get_8390_hdr/block_input).
    fn remote_read(&self, count: usize, addr: u16) {
        let io = &self.io;
        io.outb(CMD, NODMA + PAGE0 + START);
        io.outb(EN0_RCNTLO, count as u8);
        io.outb(EN0_RCNTHI, (count >> 8) as u8);
        io.outb(EN0_RSARLO, addr as u8);
        io.outb(EN0_RSARHI, (addr >> 8) as u8);
        io.outb(CMD, RREAD + START);
    }

    /// The board's get_8390_hdr: status, next page, byte count.
    fn get_hdr(&self, ring_page: u8) -> [u8; 4] {
        self.remote_read(4, u16::from(ring_page) << 8);
        let hdr = match self.glue {
            Glue::Pci32 => self.io.inl(NE_DATAPORT).to_le_bytes(),
            Glue::Isa16 => {
                let mut h = [0u8; 4];
                self.io.ins(NE_DATAPORT, 2, &mut h);
                h
            }
        };
        self.io.outb(EN0_ISR, ENISR_RDC);
        hdr
    }

    /// The board's block_input: `count` bytes from local address `ring_offset` into `self.buf[at..]`.
    fn block_input(&mut self, at: usize, count: usize, ring_offset: u16) {
        self.remote_read(count, ring_offset);
        let io = &self.io;
        let buf = &mut self.buf[at..at + count];
        match self.glue {
            Glue::Pci32 => {
                let words = count & !3;
                io.ins(NE_DATAPORT, 4, &mut buf[..words]);
                let mut i = words;
                if count & 2 != 0 {
                    buf[i..i + 2].copy_from_slice(&io.inw(NE_DATAPORT).to_le_bytes());
                    i += 2;
                }
                if count & 1 != 0 {
                    buf[i] = io.inb(NE_DATAPORT);
                }
            }
            Glue::Isa16 => {
                let words = count & !1;
                io.ins(NE_DATAPORT, 2, &mut buf[..words]);
                if count & 1 != 0 {
                    buf[words] = io.inb(NE_DATAPORT);
                }
            }
        }
        io.outb(EN0_ISR, ENISR_RDC);
    }

    /// The board's block_output of `data` to `start_page`, waiting for RDC.
    fn block_output(&self, data: &[u8], start_page: u8) {
        let io = &self.io;
        // Word transfers move an even count; the byte past an odd frame is whatever follows it.
        let count = (data.len() + 1) & !1;
        io.outb(CMD, PAGE0 + START + NODMA);
        io.outb(EN0_ISR, ENISR_RDC);
        io.outb(EN0_RCNTLO, count as u8);
        io.outb(EN0_RCNTHI, (count >> 8) as u8);
        io.outb(EN0_RSARLO, 0);
        io.outb(EN0_RSARHI, start_page);
        io.outb(CMD, RWRITE + START);
        match self.glue {
            Glue::Pci32 => {
                let words = count & !3;
                io.outs(NE_DATAPORT, 4, &data[..words]);
                if count & 2 != 0 {
                    let lo = data[words];
                    let hi = data.get(words + 1).copied().unwrap_or(0);
                    io.outw(NE_DATAPORT, u16::from_le_bytes([lo, hi]));
                }
            }
            Glue::Isa16 => {
                io.outs(NE_DATAPORT, 2, &data[..data.len() & !1]);
                if data.len() & 1 != 0 {
                    io.outw(NE_DATAPORT, u16::from(data[data.len() - 1]));
                }
            }
        }
        let mut tries = 0;
        while io.inb(EN0_ISR) & ENISR_RDC == 0 {
            tries += 1;
            assert!(tries < 100, "timeout waiting for Tx RDC");
        }
        io.outb(EN0_ISR, ENISR_RDC);
    }

    /// ei_interrupt: services the card until ISR reads zero; returns the frames received.
    fn interrupt(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        self.io.outb(CMD, NODMA + PAGE0);
        let mut received = 0;
        let mut serviced = 0;
        loop {
            let interrupts = self.io.inb(EN0_ISR);
            if interrupts == 0 {
                break;
            }
            serviced += 1;
            assert!(
                serviced < MAX_SERVICE,
                "too much work at interrupt, status {interrupts:#04x}"
            );
            assert_eq!(interrupts & ENISR_OVER, 0, "receive ring overrun");
            if interrupts & (ENISR_RX | ENISR_RX_ERR) != 0 {
                received += self.receive(len, compare);
            }
            if interrupts & ENISR_TX != 0 {
                self.tx_intr();
            } else if interrupts & ENISR_TX_ERR != 0 {
                panic!("transmit error");
            }
            if interrupts & ENISR_COUNTERS != 0 {
                panic!("tally counters overflowed: frames were missed");
            }
            if interrupts & ENISR_RDC != 0 {
                self.io.outb(EN0_ISR, ENISR_RDC);
            }
            self.io.outb(CMD, NODMA + PAGE0 + START);
            if interrupts == ENISR_RESET {
                break;
            }
        }
        received
    }

    /// ei_tx_intr.
    fn tx_intr(&mut self) {
        let status = self.io.inb(EN0_TSR);
        self.io.outb(EN0_ISR, ENISR_TX);
        self.txing = false;
        assert_ne!(status & ENTSR_PTX, 0, "transmit not completed");
    }

    /// ei_receive: at most nine frames per call, as the driver does.
    fn receive(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        let num_rx_pages = i32::from(self.stop_page) - i32::from(self.rx_start_page);
        let mut received = 0;
        let mut rx_pkt_count = 0;
        while {
            rx_pkt_count += 1;
            rx_pkt_count < 10
        } {
            self.io.outb(CMD, NODMA + PAGE1);
            let rxing_page = self.io.inb(EN1_CURPAG);
            self.io.outb(CMD, NODMA + PAGE0);
            let mut this_frame = self.io.inb(EN0_BOUNDARY).wrapping_add(1);
            if this_frame >= self.stop_page {
                this_frame = self.rx_start_page;
            }
            assert_eq!(
                this_frame, self.current_page,
                "mismatched read page pointers"
            );
            if this_frame == rxing_page {
                break;
            }
            let current_offset = u16::from(this_frame) << 8;
            let hdr = self.get_hdr(this_frame);
            let count = usize::from(u16::from_le_bytes([hdr[2], hdr[3]]));
            let pkt_len = count - 4;
            let next = hdr[1];
            let next_frame = i32::from(this_frame) + 1 + ((pkt_len as i32 + 4) >> 8);
            let n = i32::from(next);
            assert!(
                n == next_frame
                    || n == next_frame + 1
                    || n == next_frame - num_rx_pages
                    || n == next_frame + 1 - num_rx_pages,
                "bogus next page {next:#04x} in the ring header"
            );
            assert!(
                hdr[0] & 0x0f == ENRSR_RXOK && pkt_len == len.max(60),
                "bad ring header {hdr:02x?} for a {len}-byte frame"
            );
            // ei_block_input: a frame crossing PSTOP is read in two moves.
            let offset = current_offset + 4;
            let stop = usize::from(self.stop_page) << 8;
            if usize::from(offset) + pkt_len > stop {
                let semi = stop - usize::from(offset);
                self.block_input(0, semi, offset);
                self.block_input(semi, pkt_len - semi, u16::from(self.rx_start_page) << 8);
            } else {
                self.block_input(0, pkt_len, offset);
            }
            if let Some(expect) = compare {
                assert_eq!(&self.buf[..expect.len()], expect, "received frame content");
            }
            received += 1;
            let next_frame = if next >= self.stop_page {
                self.rx_start_page
            } else {
                next
            };
            self.current_page = next_frame;
            self.io.outb(EN0_BOUNDARY, next_frame.wrapping_sub(1));
        }
        self.io.outb(EN0_ISR, ENISR_RX | ENISR_RX_ERR);
        received
    }
}

impl Guest for Lib8390 {
    fn receiver(&self) -> Arc<dyn NetReceiver> {
        self.nic.clone()
    }

    fn rx_burst(&self, len: usize) -> usize {
        // ei_receive takes at most nine frames per interrupt (and stops at the ninth look); the 52-page ring
        // holds eight full-sized frames of six pages.
        let pages = (4 + len.max(60) + 4).div_ceil(256);
        let ring = usize::from(self.stop_page - self.rx_start_page);
        ((ring - 1) / pages).min(8)
    }

    fn prepare_tx(&mut self, _frame: &[u8]) {}

    fn transmit(&mut self, frame: &[u8]) {
        // ei_start_xmit: IMR off, the frame into the first transmit buffer, trigger, IMR on.
        let data: &[u8] = if frame.len() < 60 {
            self.scratch.fill(0);
            self.scratch[..frame.len()].copy_from_slice(frame);
            &self.scratch
        } else {
            frame
        };
        let send_length = data.len();
        self.io.outb(EN0_IMR, 0x00);
        self.block_output(data, self.tx_start_page);
        assert!(!self.txing, "transmitter still busy");
        self.txing = true;
        // NS8390_trigger_send.
        let io = &self.io;
        io.outb(CMD, NODMA + PAGE0);
        assert_eq!(
            io.inb(CMD) & TRANS,
            0,
            "trigger_send with the transmitter busy"
        );
        io.outb(EN0_TCNTLO, send_length as u8);
        io.outb(EN0_TCNTHI, (send_length >> 8) as u8);
        io.outb(EN0_TPSR, self.tx_start_page);
        io.outb(CMD, NODMA + TRANS + START);
        io.outb(EN0_IMR, ENISR_ALL);
        // The PTX interrupt, as IMR is turned back on.
        self.interrupt(0, None);
        assert!(!self.txing, "transmit interrupt not serviced");
    }

    fn service_rx(&mut self, len: usize, compare: Option<&[u8]>) -> usize {
        self.interrupt(len, compare)
    }

    fn device_counts(&self) -> (u64, u64) {
        let c = self.nic.counters();
        (c.rx_frames, c.tx_frames)
    }
}
