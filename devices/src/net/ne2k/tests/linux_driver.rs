//! Linux's 8390 driver as a test client: the register sequences of `lib8390.c` (NS8390_init, ei_start_xmit,
//! NS8390_trigger_send, ei_interrupt, ei_receive, ei_rx_overrun, ei_tx_intr/ei_tx_err) with the board glue
//! of `ne2k-pci.c` (32-bit data port, word mode) and `ne.c` (ISA probe; 16-bit or 8-bit data port).
//! Re-expressed from the drivers' documented behaviour to drive the model exactly as they do.

use super::Io;

pub const CMD: u8 = 0x00;
pub const NODMA: u8 = 0x20;
pub const PAGE0: u8 = 0x00;
pub const PAGE1: u8 = 0x40;
pub const PAGE2: u8 = 0x80;
pub const STOP: u8 = 0x01;
pub const START: u8 = 0x02;
pub const TRANS: u8 = 0x04;
pub const RREAD: u8 = 0x08;
pub const RWRITE: u8 = 0x10;

pub const EN0_STARTPG: u8 = 0x01;
pub const EN0_STOPPG: u8 = 0x02;
pub const EN0_BOUNDARY: u8 = 0x03;
pub const EN0_TSR: u8 = 0x04;
pub const EN0_TPSR: u8 = 0x04;
pub const EN0_TCNTLO: u8 = 0x05;
pub const EN0_TCNTHI: u8 = 0x06;
pub const EN0_ISR: u8 = 0x07;
pub const EN0_RSARLO: u8 = 0x08;
pub const EN0_RSARHI: u8 = 0x09;
pub const EN0_RCNTLO: u8 = 0x0a;
pub const EN0_RCNTHI: u8 = 0x0b;
pub const EN0_RXCR: u8 = 0x0c;
pub const EN0_RSR: u8 = 0x0c;
pub const EN0_TXCR: u8 = 0x0d;
pub const EN0_COUNTER0: u8 = 0x0d;
pub const EN0_DCFG: u8 = 0x0e;
pub const EN0_COUNTER1: u8 = 0x0e;
pub const EN0_IMR: u8 = 0x0f;
pub const EN0_COUNTER2: u8 = 0x0f;
pub const EN1_PHYS: u8 = 0x01;
pub const EN1_CURPAG: u8 = 0x07;
pub const EN1_MULT: u8 = 0x08;
pub const NE_DATAPORT: u8 = 0x10;
pub const NE_RESET: u8 = 0x1f;

pub const ENISR_RX: u8 = 0x01;
pub const ENISR_TX: u8 = 0x02;
pub const ENISR_RX_ERR: u8 = 0x04;
pub const ENISR_TX_ERR: u8 = 0x08;
pub const ENISR_OVER: u8 = 0x10;
pub const ENISR_COUNTERS: u8 = 0x20;
pub const ENISR_RDC: u8 = 0x40;
pub const ENISR_RESET: u8 = 0x80;
pub const ENISR_ALL: u8 = 0x3f;

pub const E8390_RXCONFIG: u8 = 0x04;
pub const E8390_RXOFF: u8 = 0x20;
pub const E8390_TXCONFIG: u8 = 0x00;
pub const E8390_TXOFF: u8 = 0x02;

pub const ENTSR_PTX: u8 = 0x01;
pub const ENTSR_ABT: u8 = 0x08;
pub const ENRSR_RXOK: u8 = 0x01;

/// Which board glue moves the data.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Glue {
    /// ne2k-pci: `insl`/`outsl` with 16-bit and 8-bit tails; word mode.
    Pci32,
    /// ne.c on a 16-bit card: `insw`/`outsw`, odd byte with `inb`; word mode.
    Isa16,
    /// ne.c on an 8-bit card: `insb`/`outsb`; byte mode.
    Isa8,
}

/// The driver statistics the tests look at.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_length_errors: u64,
    pub rx_missed_errors: u64,
    pub rx_over_errors: u64,
    pub tx_packets: u64,
    pub tx_aborted_errors: u64,
    pub tx_errors: u64,
}

/// One Linux 8390 net device.
pub struct Linux<'a> {
    pub io: &'a Io,
    pub glue: Glue,
    pub tx_start_page: u8,
    pub rx_start_page: u8,
    pub stop_page: u8,
    pub current_page: u8,
    pub dev_addr: [u8; 6],
    pub mcfilter: [u8; 8],
    pub promisc: bool,
    pub allmulti: bool,
    pub multicast: Vec<[u8; 6]>,
    pub txing: bool,
    pub received: Vec<Vec<u8>>,
    pub stats: Stats,
}

impl<'a> Linux<'a> {
    /// A device with ne2k-pci's (and 16-bit ne.c's) memory layout: TX at 0x40 (12 pages), ring 0x4C-0x80.
    pub fn new(io: &'a Io, glue: Glue) -> Linux<'a> {
        let (tx, stop) = match glue {
            Glue::Isa8 => (0x20, 0x40),
            _ => (0x40, 0x80),
        };
        Linux {
            io,
            glue,
            tx_start_page: tx,
            rx_start_page: tx + 12,
            stop_page: stop,
            current_page: tx + 12,
            dev_addr: [0; 6],
            mcfilter: [0; 8],
            promisc: false,
            allmulti: false,
            multicast: Vec::new(),
            txing: false,
            received: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn word16(&self) -> bool {
        self.glue != Glue::Isa8
    }

    /// ne2k_pci_reset_8390 / ne_reset_8390: read the reset port, write it back, wait for RST, ack it.
    pub fn reset_8390(&self) -> Result<(), &'static str> {
        let v = self.io.inb(NE_RESET);
        self.io.outb(NE_RESET, v);
        let mut tries = 0;
        while self.io.inb(EN0_ISR) & ENISR_RESET == 0 {
            tries += 1;
            if tries > 100 {
                return Err("reset not done");
            }
        }
        self.io.outb(EN0_ISR, ENISR_RESET);
        Ok(())
    }

    /// ne2k_pci_init_one's probe: reset, then read the station-address PROM with 32 byte reads in word
    /// mode. Returns the 32 PROM bytes read.
    pub fn probe_pci(&mut self) -> Result<[u8; 32], &'static str> {
        let v = self.io.inb(NE_RESET);
        self.io.outb(NE_RESET, v);
        let mut tries = 0;
        while self.io.inb(EN0_ISR) & ENISR_RESET == 0 {
            tries += 1;
            if tries > 100 {
                return Err("Card failure (no reset ack)");
            }
        }
        self.io.outb(EN0_ISR, 0xff);
        for (value, offset) in [
            (NODMA + PAGE0 + STOP, CMD),
            (0x49, EN0_DCFG),
            (0x00, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_IMR),
            (0xff, EN0_ISR),
            (E8390_RXOFF, EN0_RXCR),
            (E8390_TXOFF, EN0_TXCR),
            (32, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_RSARLO),
            (0x00, EN0_RSARHI),
            (RREAD + START, CMD),
        ] {
            self.io.outb(offset, value);
        }
        let mut prom = [0u8; 32];
        for b in prom.iter_mut() {
            *b = self.io.inb(NE_DATAPORT);
        }
        self.io.outb(EN0_DCFG, 0x49);
        self.dev_addr.copy_from_slice(&prom[..6]);
        Ok(prom)
    }

    /// ne.c's ne_probe1 up to the signature check. Returns the de-doubled 16-byte PROM and the word length
    /// it concluded.
    pub fn probe_isa(&mut self) -> Result<([u8; 16], u8), &'static str> {
        let reg0 = self.io.inb(CMD);
        if reg0 == 0xff {
            return Err("no card");
        }
        // Preliminary verification that this is an 8390: MAR5 scribbled in page 1, CNTR0 must clear on read.
        self.io.outb(CMD, NODMA + PAGE1 + STOP);
        let regd = self.io.inb(0x0d);
        self.io.outb(0x0d, 0xff);
        self.io.outb(CMD, NODMA + PAGE0);
        self.io.inb(EN0_COUNTER0);
        if self.io.inb(EN0_COUNTER0) != 0 {
            self.io.outb(CMD, reg0);
            self.io.outb(0x0d, regd);
            return Err("not an 8390");
        }
        self.reset_8390()?;
        self.io.outb(EN0_ISR, 0xff);
        for (value, offset) in [
            (NODMA + PAGE0 + STOP, CMD),
            (0x48, EN0_DCFG),
            (0x00, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_IMR),
            (0xff, EN0_ISR),
            (E8390_RXOFF, EN0_RXCR),
            (E8390_TXOFF, EN0_TXCR),
            (32, EN0_RCNTLO),
            (0x00, EN0_RCNTHI),
            (0x00, EN0_RSARLO),
            (0x00, EN0_RSARHI),
            (RREAD + START, CMD),
        ] {
            self.io.outb(offset, value);
        }
        let mut sa = [0u8; 32];
        let mut wordlength = 2;
        for i in (0..32).step_by(2) {
            sa[i] = self.io.inb(NE_DATAPORT);
            sa[i + 1] = self.io.inb(NE_DATAPORT);
            if sa[i] != sa[i + 1] {
                wordlength = 1;
            }
        }
        let mut prom = [0u8; 16];
        if wordlength == 2 {
            for i in 0..16 {
                prom[i] = sa[i + i];
            }
            self.io.outb(EN0_DCFG, 0x49);
        } else {
            prom.copy_from_slice(&sa[..16]);
        }
        if !(prom[14] == 0x57 && prom[15] == 0x57) {
            return Err("invalid signature");
        }
        self.dev_addr.copy_from_slice(&prom[..6]);
        Ok((prom, wordlength))
    }

    /// NS8390_init.
    pub fn init(&mut self, startp: bool) {
        let io = self.io;
        let endcfg = if self.word16() { 0x49 } else { 0x48 };
        io.outb(CMD, NODMA + PAGE0 + STOP);
        io.outb(EN0_DCFG, endcfg);
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
        for i in 0..6u8 {
            io.outb(EN1_PHYS + i, self.dev_addr[usize::from(i)]);
            assert_eq!(io.inb(EN1_PHYS + i), self.dev_addr[usize::from(i)]);
        }
        io.outb(EN1_CURPAG, self.rx_start_page);
        io.outb(CMD, NODMA + PAGE0 + STOP);
        self.txing = false;
        if startp {
            io.outb(EN0_ISR, 0xff);
            io.outb(EN0_IMR, ENISR_ALL);
            io.outb(CMD, NODMA + PAGE0 + START);
            io.outb(EN0_TXCR, E8390_TXCONFIG);
            io.outb(EN0_RXCR, E8390_RXCONFIG);
            self.set_multicast_list();
        }
    }

    /// do_set_multicast_list with the device's flags and multicast addresses.
    pub fn set_multicast_list(&mut self) {
        let io = self.io;
        if self.promisc || self.allmulti {
            self.mcfilter = [0xff; 8];
        } else {
            self.mcfilter = [0; 8];
            for addr in &self.multicast {
                let crc = super::ether_crc(addr);
                self.mcfilter[(crc >> 29) as usize] |= 1 << ((crc >> 26) & 7);
            }
        }
        io.outb(EN0_RXCR, E8390_RXCONFIG);
        io.outb(CMD, NODMA + PAGE1);
        for i in 0..8u8 {
            io.outb(EN1_MULT + i, self.mcfilter[usize::from(i)]);
            assert_eq!(
                io.inb(EN1_MULT + i),
                self.mcfilter[usize::from(i)],
                "Multicast filter read/write mismap {i}"
            );
        }
        io.outb(CMD, NODMA + PAGE0);
        let rxcr = if self.promisc {
            E8390_RXCONFIG | 0x18
        } else if self.allmulti || !self.multicast.is_empty() {
            E8390_RXCONFIG | 0x08
        } else {
            E8390_RXCONFIG
        };
        io.outb(EN0_RXCR, rxcr);
    }

    /// The board's block_input: `count` bytes from local address `ring_offset`.
    pub fn block_input(&self, count: usize, ring_offset: u16) -> Vec<u8> {
        let io = self.io;
        io.outb(CMD, NODMA + PAGE0 + START);
        io.outb(EN0_RCNTLO, count as u8);
        io.outb(EN0_RCNTHI, (count >> 8) as u8);
        io.outb(EN0_RSARLO, ring_offset as u8);
        io.outb(EN0_RSARHI, (ring_offset >> 8) as u8);
        io.outb(CMD, RREAD + START);
        let mut buf = match self.glue {
            Glue::Pci32 => {
                let mut b = io.ins(NE_DATAPORT, 4, count >> 2);
                if count & 2 != 0 {
                    b.extend_from_slice(&io.inw(NE_DATAPORT).to_le_bytes());
                }
                if count & 1 != 0 {
                    b.push(io.inb(NE_DATAPORT));
                }
                b
            }
            Glue::Isa16 => {
                let mut b = io.ins(NE_DATAPORT, 2, count >> 1);
                if count & 1 != 0 {
                    b.push(io.inb(NE_DATAPORT));
                }
                b
            }
            Glue::Isa8 => io.ins(NE_DATAPORT, 1, count),
        };
        buf.truncate(count);
        io.outb(EN0_ISR, ENISR_RDC);
        buf
    }

    /// The board's get_8390_hdr.
    pub fn get_hdr(&self, ring_page: u8) -> [u8; 4] {
        let h = self.block_input(4, u16::from(ring_page) << 8);
        [h[0], h[1], h[2], h[3]]
    }

    /// The board's block_output; fails as the driver's "timeout waiting for Tx RDC" would.
    pub fn block_output(&self, buf: &[u8], start_page: u8) -> Result<(), &'static str> {
        let io = self.io;
        let mut count = buf.len();
        let mut data = buf.to_vec();
        if self.word16() && count & 1 != 0 {
            count += 1;
            data.push(0);
        }
        io.outb(CMD, PAGE0 + START + NODMA);
        io.outb(EN0_ISR, ENISR_RDC);
        io.outb(EN0_RCNTLO, count as u8);
        io.outb(EN0_RCNTHI, (count >> 8) as u8);
        io.outb(EN0_RSARLO, 0);
        io.outb(EN0_RSARHI, start_page);
        io.outb(CMD, RWRITE + START);
        match self.glue {
            Glue::Pci32 => {
                io.outs(NE_DATAPORT, 4, &data[..count & !3]);
                if count & 2 != 0 {
                    let i = count & !3;
                    io.outw(NE_DATAPORT, u16::from_le_bytes([data[i], data[i + 1]]));
                }
            }
            Glue::Isa16 => io.outs(NE_DATAPORT, 2, &data[..count]),
            Glue::Isa8 => io.outs(NE_DATAPORT, 1, &data[..count]),
        }
        if io.inb(EN0_ISR) & ENISR_RDC == 0 {
            return Err("timeout waiting for Tx RDC");
        }
        io.outb(EN0_ISR, ENISR_RDC);
        Ok(())
    }

    /// ei_start_xmit (single TX buffer use) and NS8390_trigger_send.
    pub fn start_xmit(&mut self, frame: &[u8]) -> Result<(), &'static str> {
        let io = self.io;
        let mut data = frame.to_vec();
        if data.len() < 60 {
            data.resize(60, 0);
        }
        io.outb(EN0_IMR, 0x00);
        self.block_output(&data, self.tx_start_page)?;
        if !self.txing {
            self.txing = true;
            io.outb(CMD, NODMA + PAGE0);
            if io.inb(CMD) & TRANS != 0 {
                return Err("trigger_send() called with the transmitter busy");
            }
            io.outb(EN0_TCNTLO, data.len() as u8);
            io.outb(EN0_TCNTHI, (data.len() >> 8) as u8);
            io.outb(EN0_TPSR, self.tx_start_page);
            io.outb(CMD, NODMA + TRANS + START);
        }
        io.outb(EN0_IMR, ENISR_ALL);
        Ok(())
    }

    /// ei_interrupt: services the card until ISR reads zero.
    pub fn interrupt(&mut self) {
        let io = self.io;
        io.outb(CMD, NODMA + PAGE0);
        let mut serviced = 0;
        loop {
            let interrupts = io.inb(EN0_ISR);
            if interrupts == 0 {
                break;
            }
            serviced += 1;
            assert!(
                serviced < 12,
                "too much work at interrupt, status {interrupts:#04x}"
            );
            if interrupts & ENISR_OVER != 0 {
                self.rx_overrun();
            } else if interrupts & (ENISR_RX | ENISR_RX_ERR) != 0 {
                self.receive();
            }
            if interrupts & ENISR_TX != 0 {
                self.tx_intr();
            } else if interrupts & ENISR_TX_ERR != 0 {
                self.tx_err();
            }
            if interrupts & ENISR_COUNTERS != 0 {
                io.inb(EN0_COUNTER0);
                io.inb(EN0_COUNTER1);
                self.stats.rx_missed_errors += u64::from(io.inb(EN0_COUNTER2));
                io.outb(EN0_ISR, ENISR_COUNTERS);
            }
            if interrupts & ENISR_RDC != 0 {
                io.outb(EN0_ISR, ENISR_RDC);
            }
            // RST alone is not an interrupt source; drop it from the loop condition as the chip would after
            // the restart below.
            io.outb(CMD, NODMA + PAGE0 + START);
            if interrupts == ENISR_RESET {
                break;
            }
        }
    }

    fn tx_intr(&mut self) {
        let io = self.io;
        let status = io.inb(EN0_TSR);
        io.outb(EN0_ISR, ENISR_TX);
        self.txing = false;
        if status & ENTSR_PTX != 0 {
            self.stats.tx_packets += 1;
        } else {
            self.stats.tx_errors += 1;
        }
        if status & ENTSR_ABT != 0 {
            self.stats.tx_aborted_errors += 1;
        }
    }

    fn tx_err(&mut self) {
        let io = self.io;
        let txsr = io.inb(EN0_TSR);
        io.outb(EN0_ISR, ENISR_TX_ERR);
        if txsr & ENTSR_ABT != 0 {
            self.tx_intr();
        } else {
            self.stats.tx_errors += 1;
        }
    }

    /// ei_receive.
    pub fn receive(&mut self) {
        let io = self.io;
        let num_rx_pages = i32::from(self.stop_page) - i32::from(self.rx_start_page);
        let mut rx_pkt_count = 0;
        while {
            rx_pkt_count += 1;
            rx_pkt_count < 10
        } {
            io.outb(CMD, NODMA + PAGE1);
            let rxing_page = io.inb(EN1_CURPAG);
            io.outb(CMD, NODMA + PAGE0);
            let mut this_frame = io.inb(EN0_BOUNDARY).wrapping_add(1);
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
            let count = i32::from(u16::from_le_bytes([hdr[2], hdr[3]]));
            let pkt_len = count - 4;
            let pkt_stat = hdr[0];
            let mut next_frame = i32::from(this_frame) + 1 + ((pkt_len + 4) >> 8);
            let next = i32::from(hdr[1]);
            if next != next_frame
                && next != next_frame + 1
                && next != next_frame - num_rx_pages
                && next != next_frame + 1 - num_rx_pages
            {
                self.current_page = rxing_page;
                io.outb(EN0_BOUNDARY, self.current_page.wrapping_sub(1));
                self.stats.rx_errors += 1;
                continue;
            }
            if !(60..=1518).contains(&pkt_len) {
                self.stats.rx_errors += 1;
                self.stats.rx_length_errors += 1;
            } else if pkt_stat & 0x0f == ENRSR_RXOK {
                let len = pkt_len as usize;
                let offset = current_offset + 4;
                // ei_block_input: a frame crossing PSTOP is read in two moves.
                let stop = usize::from(self.stop_page) << 8;
                let data = if usize::from(offset) + len > stop {
                    let semi = stop - usize::from(offset);
                    let mut d = self.block_input(semi, offset);
                    d.extend(self.block_input(len - semi, u16::from(self.rx_start_page) << 8));
                    d
                } else {
                    self.block_input(len, offset)
                };
                self.received.push(data);
                self.stats.rx_packets += 1;
            } else {
                self.stats.rx_errors += 1;
            }
            next_frame = next;
            if next_frame >= i32::from(self.stop_page) {
                next_frame = i32::from(self.rx_start_page);
            }
            self.current_page = next_frame as u8;
            io.outb(EN0_BOUNDARY, (next_frame - 1) as u8);
        }
        io.outb(EN0_ISR, ENISR_RX | ENISR_RX_ERR);
    }

    /// ei_rx_overrun: the datasheet's recovery procedure.
    pub fn rx_overrun(&mut self) {
        let io = self.io;
        let was_txing = io.inb(CMD) & TRANS != 0;
        io.outb(CMD, NODMA + PAGE0 + STOP);
        self.stats.rx_over_errors += 1;
        io.outb(EN0_RCNTLO, 0);
        io.outb(EN0_RCNTHI, 0);
        let must_resend = was_txing && io.inb(EN0_ISR) & (ENISR_TX | ENISR_TX_ERR) == 0;
        io.outb(EN0_TXCR, E8390_TXOFF);
        io.outb(CMD, NODMA + PAGE0 + START);
        self.receive();
        io.outb(EN0_ISR, ENISR_OVER);
        io.outb(EN0_TXCR, E8390_TXCONFIG);
        if must_resend {
            io.outb(CMD, NODMA + PAGE0 + START + TRANS);
        }
    }
}
