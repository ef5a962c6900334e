//! iPXE's legacy ns8390 driver (NE2000 and NE2000/PCI paths) as a test client: its probe tells the card's
//! width by writing and reading back a test string at 8 KiB and then 16 KiB, reads the PROM with word
//! transfers, resets the NIC with its own sequence, sends frames as four separate remote writes of odd
//! lengths, and polls RSR/BNRY/CURR instead of taking interrupts.

use super::{frame, isa_card, padded, pci_card, Io, MAC};

const STP: u8 = 0x01;
const STA: u8 = 0x02;
const TXP: u8 = 0x04;
const RD0: u8 = 0x08;
const RD1: u8 = 0x10;
const RD2: u8 = 0x20;
const PS0: u8 = 0x00;
const PS1: u8 = 0x40;
const P0_PSTART: u8 = 0x01;
const P0_PSTOP: u8 = 0x02;
const P0_BOUND: u8 = 0x03;
const P0_TPSR: u8 = 0x04;
const P0_TBCR0: u8 = 0x05;
const P0_TBCR1: u8 = 0x06;
const P0_ISR: u8 = 0x07;
const P0_RSAR0: u8 = 0x08;
const P0_RSAR1: u8 = 0x09;
const P0_RBCR0: u8 = 0x0a;
const P0_RBCR1: u8 = 0x0b;
const P0_RCR: u8 = 0x0c;
const P0_RSR: u8 = 0x0c;
const P0_TCR: u8 = 0x0d;
const P0_DCR: u8 = 0x0e;
const P0_IMR: u8 = 0x0f;
const P1_PAR0: u8 = 0x01;
const P1_CURR: u8 = 0x07;
const P1_MAR0: u8 = 0x08;
const ISR_OVW: u8 = 0x10;
const ISR_RDC: u8 = 0x40;
const RSTAT_PRX: u8 = 0x01;
const DCR_WTS: u8 = 0x01;
const DCR_LS: u8 = 0x08;
const DCR_FT1: u8 = 0x40;
const RCR_MON: u8 = 0x20;
const NE_DATA: u8 = 0x10;
const NE_RESET: u8 = 0x1f;
const MEM_8192: u8 = 32;
const MEM_16384: u8 = 64;
const MEM_32768: u8 = 128;
const TXBUF_PAGES: u8 = 6;

struct Ipxe<'a> {
    io: &'a Io,
    word16: bool,
    memsize: u8,
    tx_start: u8,
    rx_start: u8,
    node_addr: [u8; 6],
    drain: bool,
    /// Frames the last overrun recovery threw away.
    discarded: usize,
}

impl<'a> Ipxe<'a> {
    fn pio_read(&self, src: u16, cnt: usize) -> Vec<u8> {
        let io = self.io;
        io.outb(0, RD2 | STA);
        io.outb(P0_RBCR0, cnt as u8);
        io.outb(P0_RBCR1, (cnt >> 8) as u8);
        io.outb(P0_RSAR0, src as u8);
        io.outb(P0_RSAR1, (src >> 8) as u8);
        io.outb(0, RD0 | STA);
        let mut out = Vec::new();
        if self.word16 {
            for _ in 0..cnt.div_ceil(2) {
                out.extend_from_slice(&io.inw(NE_DATA).to_le_bytes());
            }
        } else {
            for _ in 0..cnt {
                out.push(io.inb(NE_DATA));
            }
        }
        out
    }

    /// Writes `src` (word mode: rounded up to whole words, so an odd count writes one byte past it).
    fn pio_write(&self, src: &[u8], dst: u16) {
        let io = self.io;
        let cnt = src.len();
        io.outb(0, RD2 | STA);
        io.outb(P0_ISR, ISR_RDC);
        io.outb(P0_RBCR0, cnt as u8);
        io.outb(P0_RBCR1, (cnt >> 8) as u8);
        io.outb(P0_RSAR0, dst as u8);
        io.outb(P0_RSAR1, (dst >> 8) as u8);
        io.outb(0, RD1 | STA);
        if self.word16 {
            let mut data = src.to_vec();
            data.push(0);
            for w in data.chunks_exact(2) {
                io.outw(NE_DATA, u16::from_le_bytes([w[0], w[1]]));
            }
        } else {
            for &b in src {
                io.outb(NE_DATA, b);
            }
        }
        // iPXE spins on RDC without a time-out: the model must always raise it.
        let mut spins = 0;
        while io.inb(P0_ISR) & ISR_RDC != ISR_RDC {
            spins += 1;
            assert!(spins < 1000, "RDC never set");
        }
    }

    /// The NE*000 search of eth_probe at `io` (`pci`: the base is above the ISA range).
    fn probe(io: &'a Io, pci: bool) -> Option<Ipxe<'a>> {
        let test = b"NE*000 memory\0";
        let mut d = Ipxe {
            io,
            word16: false,
            memsize: MEM_16384,
            tx_start: 32,
            rx_start: 32 + TXBUF_PAGES,
            node_addr: [0; 6],
            drain: false,
            discarded: 0,
        };
        let c = io.inb(NE_RESET);
        io.outb(NE_RESET, c);
        io.outb(0, STP | RD2);
        io.outb(P0_RCR, RCR_MON);
        io.outb(P0_DCR, DCR_FT1 | DCR_LS);
        io.outb(P0_PSTART, MEM_8192);
        io.outb(P0_PSTOP, MEM_16384);
        d.pio_write(test, 8192);
        let found8 = d.pio_read(8192, test.len()) == test;
        if !found8 {
            d.word16 = true;
            d.memsize = MEM_32768;
            d.tx_start = 64;
            d.rx_start = 64 + TXBUF_PAGES;
            io.outb(P0_DCR, DCR_WTS | DCR_FT1 | DCR_LS);
            io.outb(P0_PSTART, MEM_16384);
            io.outb(P0_PSTOP, MEM_32768);
            d.pio_write(test, 16384);
            if d.pio_read(16384, test.len())[..test.len()] != test[..] {
                return None;
            }
        }
        if pci {
            d.word16 = true;
        }
        let rom = d.pio_read(0, 16);
        for i in 0..6 {
            d.node_addr[i] = rom[i + if d.word16 { i } else { 0 }];
        }
        d.reset();
        Some(d)
    }

    /// ns8390_reset, including enable_multicast's write-and-verify of MAR.
    fn reset(&mut self) {
        let io = self.io;
        self.drain = false;
        io.outb(0, PS0 | RD2 | STP);
        io.outb(P0_DCR, if self.word16 { 0x49 } else { 0x48 });
        io.outb(P0_RBCR0, 0);
        io.outb(P0_RBCR1, 0);
        io.outb(P0_RCR, 0x20);
        io.outb(P0_TCR, 2);
        io.outb(P0_TPSR, self.tx_start);
        io.outb(P0_PSTART, self.rx_start);
        io.outb(P0_PSTOP, self.memsize);
        io.outb(P0_BOUND, self.memsize - 1);
        io.outb(P0_ISR, 0xff);
        io.outb(P0_IMR, 0);
        io.outb(0, PS1 | RD2 | STP);
        for i in 0..6u8 {
            io.outb(P1_PAR0 + i, self.node_addr[usize::from(i)]);
        }
        // iPXE sets only the first six MAR bytes here (ETH_ALEN); enable_multicast does all eight.
        for i in 0..6u8 {
            io.outb(P1_MAR0 + i, 0xff);
        }
        io.outb(P1_CURR, self.rx_start);
        io.outb(0, PS0 | RD2 | STA);
        io.outb(P0_ISR, 0xff);
        io.outb(P0_TCR, 0);
        io.outb(P0_RCR, 4);
        // enable_multicast
        io.outb(P0_RCR, 4);
        io.outb(0, RD2 + PS1);
        for i in 0..8u8 {
            io.outb(P1_MAR0 + i, 0xff);
            assert_eq!(io.inb(P1_MAR0 + i), 0xff, "multicast filter mishap {i}");
        }
        io.outb(0, RD2 + PS0);
        io.outb(P0_RCR, 4 | 0x08);
    }

    /// ns8390_transmit: destination, source, type and payload as four remote writes.
    fn transmit(&self, dest: [u8; 6], ethertype: u16, payload: &[u8]) {
        let io = self.io;
        let base = u16::from(self.tx_start) << 8;
        self.pio_write(&dest, base);
        self.pio_write(&self.node_addr, base + 6);
        self.pio_write(&ethertype.to_be_bytes(), base + 12);
        self.pio_write(payload, base + 14);
        let s = (payload.len() + 14).max(60);
        io.outb(0, PS0 | RD2 | STA);
        io.outb(P0_TPSR, self.tx_start);
        io.outb(P0_TBCR0, s as u8);
        io.outb(P0_TBCR1, (s >> 8) as u8);
        io.outb(0, PS0 | TXP | RD2 | STA);
    }

    /// eth_rx_overrun: drains the ring into the void (each frame overwrites the last in iPXE's single
    /// packet buffer).
    fn rx_overrun(&mut self) {
        let io = self.io;
        io.outb(0, PS0 | RD2 | STP);
        io.outb(P0_RBCR0, 0);
        io.outb(P0_RBCR1, 0);
        io.outb(P0_TCR, 2);
        io.outb(0, PS0 | RD2 | STA);
        self.drain = true;
        self.discarded = 0;
        while self.poll_inner().is_some() {
            self.discarded += 1;
        }
        self.drain = false;
        io.outb(P0_ISR, ISR_OVW);
        io.outb(P0_TCR, 0);
    }

    /// ns8390_poll(retrieve = 1): `None` when nothing is waiting, `Some(None)` for a packet it rejected.
    fn poll_inner(&mut self) -> Option<Option<Vec<u8>>> {
        let io = self.io;
        if !self.drain && io.inb(P0_ISR) & ISR_OVW != 0 {
            self.rx_overrun();
            return None;
        }
        let rstat = io.inb(P0_RSR);
        if rstat & RSTAT_PRX == 0 {
            return None;
        }
        let mut next = io.inb(P0_BOUND).wrapping_add(1);
        if next >= self.memsize {
            next = self.rx_start;
        }
        io.outb(0, PS1);
        let mut curr = io.inb(P1_CURR);
        io.outb(0, PS0);
        if curr >= self.memsize {
            curr = self.rx_start;
        }
        if curr == next {
            return None;
        }
        let mut pktoff = u16::from(next) << 8;
        let hdr = self.pio_read(pktoff, 4);
        pktoff += 4;
        let mut len = usize::from(u16::from_le_bytes([hdr[2], hdr[3]])) - 4;
        let result = if hdr[0] & RSTAT_PRX == 0 || !(60..=1514).contains(&len) {
            None
        } else {
            let mut p = Vec::new();
            let frag = (usize::from(self.memsize) << 8) - usize::from(pktoff);
            if len > frag {
                p.extend_from_slice(&self.pio_read(pktoff, frag)[..frag]);
                pktoff = u16::from(self.rx_start) << 8;
                len -= frag;
            }
            p.extend_from_slice(&self.pio_read(pktoff, len)[..len]);
            Some(p)
        };
        let mut next = hdr[1];
        if next == self.rx_start {
            next = self.memsize;
        }
        io.outb(P0_BOUND, next - 1);
        Some(result)
    }

    /// Polls until the ring is empty; panics on a "Bogus packet".
    fn poll_all(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = self.poll_inner() {
            out.push(f.expect("Bogus packet, ignoring"));
        }
        out
    }
}

#[test]
fn probe_rejects_the_8bit_window_and_finds_a_16bit_card_on_both_boards() {
    let isa = isa_card();
    let drv = Ipxe::probe(&isa.io, false).expect("NE2000 found");
    assert!(drv.word16);
    assert_eq!(drv.memsize, MEM_32768);
    assert_eq!(drv.node_addr, MAC);

    let pci = pci_card();
    let drv = Ipxe::probe(&pci.io, true).expect("NE2000/PCI found");
    assert!(drv.word16);
    assert_eq!(drv.node_addr, MAC);
    // Probing wrote nothing outside the packet RAM and put nothing on the wire.
    assert!(pci.net.take_sent().is_empty());
}

#[test]
fn transmits_frames_assembled_from_odd_length_pieces() {
    let c = pci_card();
    let drv = Ipxe::probe(&c.io, true).unwrap();
    let payload: Vec<u8> = (0..301u32).map(|i| i as u8).collect();
    drv.transmit([0xff; 6], 0x0806, &payload);
    let mut expected = vec![0xff; 6];
    expected.extend_from_slice(&MAC);
    expected.extend_from_slice(&[0x08, 0x06]);
    expected.extend_from_slice(&payload);
    assert_eq!(c.net.take_sent(), vec![expected.clone()]);
    // A short one goes out with TBCR = 60; iPXE writes only 17 bytes (18 as words), so the rest is what
    // the transmit buffer held from the previous frame.
    drv.transmit([0xff; 6], 0x0806, &[1, 2, 3]);
    let sent = c.net.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 60);
    assert_eq!(&sent[0][14..17], &[1, 2, 3]);
    assert_eq!(sent[0][17], 0, "the pad byte of the odd word write");
    assert_eq!(&sent[0][18..], &expected[18..60]);
}

#[test]
fn polls_frames_from_the_ring_across_the_wrap() {
    let c = isa_card();
    let mut drv = Ipxe::probe(&c.io, false).unwrap();
    assert!(drv.poll_all().is_empty());
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for n in 0..30u8 {
        // Two frames per poll; 700-759 bytes take three pages each, 58 pages per lap.
        for k in 0..2 {
            let f = frame(MAC, 700 + usize::from(n) * 2 + k, n);
            assert!(c.net.deliver(&f));
            expected.push(f);
        }
        got.extend(drv.poll_all());
    }
    let short = frame([0xff; 6], 20, 9);
    assert!(c.net.deliver(&short));
    expected.push(padded(&short));
    got.extend(drv.poll_all());
    assert_eq!(got, expected);
    assert!(!c.irq.level(), "iPXE polls with IMR = 0");
}

#[test]
fn overrun_recovery_drains_the_ring_and_reception_resumes() {
    let c = pci_card();
    let mut drv = Ipxe::probe(&c.io, true).unwrap();
    let frames: Vec<Vec<u8>> = (0..30u8).map(|n| frame(MAC, 1200, n)).collect();
    let taken = frames.iter().filter(|f| c.net.deliver(f)).count();
    // 58 ring pages, 5 per frame, one page kept free and one gap: 11 frames.
    assert_eq!(taken, 11);
    assert_eq!(c.card.nic().counters().rx_dropped_ring_full, 19);
    // The first poll sees OVW and runs the recovery, which throws the ring's frames away.
    assert!(drv.poll_all().is_empty());
    assert_eq!(drv.discarded, 11);
    assert_eq!(c.io.inb(P0_ISR) & ISR_OVW, 0);
    let late = frame(MAC, 64, 0x77);
    assert!(c.net.deliver(&late));
    assert_eq!(drv.poll_all(), vec![late]);
}
