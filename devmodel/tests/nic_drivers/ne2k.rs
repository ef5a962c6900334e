//! An NE2000 (ISA card or RTL8029) driven as Linux `ne.c`/`ne2k-pci` and the shared 8390 code drive it:
//! reset through the reset port, the PROM read in byte mode, then word mode with the receive ring in packet
//! RAM (BNRY/CURR), frames copied in and out through remote DMA on the data port, TXP to transmit.

use devices::net::testing::client::NicDriver;
use devmodel::harness::TestMachine;

use super::poll;

const CR: u16 = 0x00;
const PSTART: u16 = 0x01;
const PSTOP: u16 = 0x02;
const BNRY: u16 = 0x03;
const TPSR: u16 = 0x04;
const TBCR0: u16 = 0x05;
const TBCR1: u16 = 0x06;
const ISR: u16 = 0x07;
const RSAR0: u16 = 0x08;
const RSAR1: u16 = 0x09;
const RBCR0: u16 = 0x0a;
const RBCR1: u16 = 0x0b;
const RCR: u16 = 0x0c;
const TCR: u16 = 0x0d;
const DCR: u16 = 0x0e;
const IMR: u16 = 0x0f;
const PAR0: u16 = 0x01; // page 1
const CURR: u16 = 0x07; // page 1
const MAR0: u16 = 0x08; // page 1
const DATA: u16 = 0x10;
const RESET: u16 = 0x1f;

const CR_STP: u8 = 0x01;
const CR_STA: u8 = 0x02;
const CR_TXP: u8 = 0x04;
const CR_RREAD: u8 = 0x08;
const CR_RWRITE: u8 = 0x10;
const CR_NODMA: u8 = 0x20;
const CR_PAGE1: u8 = 0x40;
const ISR_PRX: u8 = 0x01;
const ISR_PTX: u8 = 0x02;
const ISR_RDC: u8 = 0x40;
const ISR_RST: u8 = 0x80;

/// Transmit buffer: six pages at the start of packet RAM, then the receive ring to the end of RAM.
const TX_PAGE: u8 = 0x40;
const RX_START: u8 = 0x46;

/// The driver.
pub struct Ne2kDriver<'a> {
    machine: &'a TestMachine,
    io: u16,
    stop_page: u8,
    /// The MAC read from the PROM.
    pub mac: [u8; 6],
}

impl<'a> Ne2kDriver<'a> {
    /// Probes and opens the card at `io`; `pci` selects the RTL8029's 32 KiB of RAM (pages up to 0xC0)
    /// instead of the NE2000's 16 KiB (up to 0x80).
    pub fn open(machine: &'a TestMachine, io: u16, pci: bool) -> Ne2kDriver<'a> {
        let m = machine;
        let _ = m.inb(io + RESET);
        m.outb(io + RESET, 0);
        poll("reset", || m.inb(io + ISR) & ISR_RST != 0);
        m.outb(io + ISR, 0xff);
        // ne_probe: stop, byte-wide DMA, no interrupts, monitor mode, internal loopback; then the PROM.
        m.outb(io + CR, CR_NODMA | CR_STP);
        m.outb(io + DCR, 0x48);
        m.outb(io + RBCR0, 0);
        m.outb(io + RBCR1, 0);
        m.outb(io + IMR, 0);
        m.outb(io + ISR, 0xff);
        m.outb(io + RCR, 0x20);
        m.outb(io + TCR, 0x02);
        let mut driver = Ne2kDriver {
            machine,
            io,
            stop_page: if pci { 0xc0 } else { 0x80 },
            mac: [0; 6],
        };
        let mut prom = [0u8; 32];
        driver.remote_read_bytes(0, &mut prom);
        for (i, b) in driver.mac.iter_mut().enumerate() {
            *b = prom[2 * i];
        }
        assert_eq!(&prom[28..32], &[0x57; 4], "NE2000 signature in the PROM");
        // NS8390_init: word mode, the ring, station address, multicast filter, start.
        m.outb(io + CR, CR_NODMA | CR_STP);
        m.outb(io + DCR, 0x49);
        m.outb(io + RBCR0, 0);
        m.outb(io + RBCR1, 0);
        m.outb(io + RCR, 0x20);
        m.outb(io + TCR, 0x02);
        m.outb(io + TPSR, TX_PAGE);
        m.outb(io + PSTART, RX_START);
        m.outb(io + BNRY, driver.stop_page - 1);
        m.outb(io + PSTOP, driver.stop_page);
        m.outb(io + ISR, 0xff);
        m.outb(io + IMR, 0x00);
        m.outb(io + CR, CR_NODMA | CR_PAGE1 | CR_STP);
        for (i, b) in driver.mac.iter().enumerate() {
            m.outb(io + PAR0 + i as u16, *b);
        }
        for i in 0..8 {
            m.outb(io + MAR0 + i, 0xff);
        }
        m.outb(io + CURR, RX_START);
        m.outb(io + CR, CR_NODMA | CR_STP);
        m.outb(io + ISR, 0xff);
        m.outb(io + IMR, 0x3f);
        m.outb(io + CR, CR_NODMA | CR_STA);
        m.outb(io + TCR, 0x00);
        // Broadcasts and multicasts too (AB | AM).
        m.outb(io + RCR, 0x0c);
        driver
    }

    fn set_remote(&self, addr: u16, count: u16) {
        let (m, io) = (self.machine, self.io);
        m.outb(io + RBCR0, count as u8);
        m.outb(io + RBCR1, (count >> 8) as u8);
        m.outb(io + RSAR0, addr as u8);
        m.outb(io + RSAR1, (addr >> 8) as u8);
    }

    fn wait_rdc(&self) {
        let (m, io) = (self.machine, self.io);
        poll("remote DMA complete", || m.inb(io + ISR) & ISR_RDC != 0);
        m.outb(io + ISR, ISR_RDC);
    }

    /// A remote read in byte mode (the PROM, before word mode is on).
    fn remote_read_bytes(&self, addr: u16, out: &mut [u8]) {
        let (m, io) = (self.machine, self.io);
        self.set_remote(addr, out.len() as u16);
        m.outb(io + CR, CR_RREAD | CR_STA);
        for b in out.iter_mut() {
            *b = m.inb(io + DATA);
        }
        self.wait_rdc();
    }

    /// A remote read in word mode: `insw` as the 8390 block-input code does, an odd count rounded up.
    fn remote_read(&self, addr: u16, len: usize) -> Vec<u8> {
        let m = self.machine;
        let words = len.div_ceil(2);
        self.set_remote(addr, (words * 2) as u16);
        m.outb(self.io + CR, CR_RREAD | CR_STA);
        let mut data = vec![0u8; words * 2];
        m.ins(self.io + DATA, 2, &mut data);
        self.wait_rdc();
        data.truncate(len);
        data
    }
}

impl NicDriver for Ne2kDriver<'_> {
    fn send(&mut self, frame: &[u8]) {
        let (m, io) = (self.machine, self.io);
        let len = frame.len().max(60);
        let mut padded = frame.to_vec();
        padded.resize(len.div_ceil(2) * 2, 0);
        self.set_remote(u16::from(TX_PAGE) << 8, padded.len() as u16);
        m.outb(io + CR, CR_RWRITE | CR_STA);
        m.outs(io + DATA, 2, &padded);
        self.wait_rdc();
        m.outb(io + TPSR, TX_PAGE);
        m.outb(io + TBCR0, len as u8);
        m.outb(io + TBCR1, (len >> 8) as u8);
        m.outb(io + CR, CR_NODMA | CR_TXP | CR_STA);
        poll("packet transmitted", || m.inb(io + ISR) & ISR_PTX != 0);
        m.outb(io + ISR, ISR_PTX);
    }

    fn poll_receive(&mut self) -> Option<Vec<u8>> {
        let (m, io) = (self.machine, self.io);
        m.outb(io + CR, CR_NODMA | CR_PAGE1 | CR_STA);
        let curr = m.inb(io + CURR);
        m.outb(io + CR, CR_NODMA | CR_STA);
        let bnry = m.inb(io + BNRY);
        let mut page = bnry + 1;
        if page >= self.stop_page {
            page = RX_START;
        }
        if page == curr {
            return None;
        }
        let header = self.remote_read(u16::from(page) << 8, 4);
        let (status, next) = (header[0], header[1]);
        let count = usize::from(u16::from_le_bytes([header[2], header[3]]));
        assert!(status & 0x01 != 0, "ring entry without PRX: {status:#x}");
        assert!(
            (64..=1522).contains(&count) && (RX_START..self.stop_page).contains(&next),
            "bad ring header {header:?}"
        );
        // The frame (without its FCS) follows the header, maybe wrapping from the ring's end to its start.
        let len = count - 4;
        let start = (usize::from(page) << 8) + 4;
        let ring_end = usize::from(self.stop_page) << 8;
        let mut frame = if start + len > ring_end {
            let first = ring_end - start;
            let mut f = self.remote_read(start as u16, first);
            f.extend(self.remote_read(u16::from(RX_START) << 8, len - first));
            f
        } else {
            self.remote_read(start as u16, len)
        };
        frame.truncate(len);
        let new_bnry = if next == RX_START {
            self.stop_page - 1
        } else {
            next - 1
        };
        m.outb(io + BNRY, new_bnry);
        m.outb(io + ISR, ISR_PRX);
        Some(frame)
    }
}
