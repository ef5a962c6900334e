//! The DP8390 core with the NE2000's packet memory: registers, remote DMA, the receive ring and transmit.
//!
//! A plain state machine (`&mut self`, no locks, no I/O): [`super::Ne2000`] locks it, drives the interrupt
//! line from [`Dp8390::irq_level`] and hands the frames [`Dp8390::write`] returns to the back-end.
//!
//! Every address the guest programs is decoded by [`Dp8390::mem_read`]/[`Dp8390::mem_write`] against the
//! PROM and the packet RAM; nothing else is reachable. The receive path stores a frame only in a ring whose
//! every page lies in the packet RAM (see [`Ring`]).

use serde::{Deserialize, Serialize};

use super::regs::{cr, dcr, isr, p0r, p0w, p1, p2r, rcr, rsr, tcr, tsr, CR};
use crate::net::{MAX_FRAME, MIN_FRAME};

/// The DP8390 addresses its buffer memory in 256-byte pages.
pub const PAGE: usize = 256;
/// First address of the packet RAM in the NIC's 64 KiB local address space (page 0x40).
pub const RAM_BASE: u16 = 0x4000;
/// Bytes of station-address PROM at local address 0.
pub const PROM_LEN: usize = 32;
/// Ring pages the longest frame takes: 4-byte header, [`MAX_FRAME`] bytes and the 4-byte FCS.
pub const MAX_FRAME_PAGES: usize = (4 + MAX_FRAME + 4).div_ceil(PAGE);
/// Value of unused ID/reserved registers and of local addresses nothing decodes.
const FLOATING: u8 = 0xff;

/// Which board: the size of the packet RAM and what the chip-ID registers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Model {
    /// A Novell NE2000 (ISA): 16 KiB at 0x4000-0x7FFF, a plain DP8390 (reserved ID registers read 0xFF).
    Ne2000Isa,
    /// A Realtek RTL8029AS (PCI): 32 KiB at 0x4000-0xBFFF, chip ID "PC" at page 0 offsets 0x0A/0x0B.
    Rtl8029,
}

impl Model {
    /// Bytes of packet RAM.
    pub fn ram_size(self) -> usize {
        match self {
            Model::Ne2000Isa => 16 * 1024,
            Model::Rtl8029 => 32 * 1024,
        }
    }

    fn chip_id(self) -> [u8; 2] {
        match self {
            Model::Ne2000Isa => [FLOATING, FLOATING],
            Model::Rtl8029 => [b'P', b'C'],
        }
    }
}

/// What the remote DMA channel is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteDma {
    /// No transfer: data-port reads float high, writes are dropped.
    #[default]
    Idle,
    /// Data-port reads fetch from packet memory.
    Read,
    /// Data-port writes store to packet memory.
    Write,
}

/// The register file. Values a guest wrote that the hardware does not store (reserved bits) are masked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    /// CR as last written: page select, remote DMA command, STA/STP (TXP reads back clear: transmission is
    /// instantaneous here).
    pub cr: u8,
    /// Interrupt status.
    pub isr: u8,
    /// Interrupt mask (7 bits).
    pub imr: u8,
    /// Data configuration.
    pub dcr: u8,
    /// Transmit configuration.
    pub tcr: u8,
    /// Receive configuration.
    pub rcr: u8,
    /// Status of the last transmission.
    pub tsr: u8,
    /// Status of the last reception.
    pub rsr: u8,
    /// Receive ring start page.
    pub pstart: u8,
    /// Receive ring stop page (exclusive).
    pub pstop: u8,
    /// Boundary page.
    pub bnry: u8,
    /// Current page (next frame goes here).
    pub curr: u8,
    /// Transmit start page.
    pub tpsr: u8,
    /// Transmit byte count.
    pub tbcr: u16,
    /// Remote DMA address; RSAR writes load it, transfers advance it (CRDA reads it).
    pub rsar: u16,
    /// Remote DMA bytes left; RBCR writes load it.
    pub rbcr: u16,
    /// What the remote DMA channel is doing.
    pub dma: RemoteDma,
    /// Local DMA address after the last reception or transmission.
    pub clda: u16,
    /// Station address.
    pub par: [u8; 6],
    /// Multicast hash filter.
    pub mar: [u8; 8],
    /// Tally counters: frame alignment errors, CRC errors, missed packets.
    pub cntr: [u8; 3],
    /// The last 8 bytes of the last loopback frame, and the read position in them.
    pub fifo: [u8; 8],
    /// Next FIFO byte to read.
    pub fifo_pos: u8,
}

impl Regs {
    fn power_on() -> Regs {
        Regs {
            cr: cr::STP | cr::RD_ABORT,
            isr: isr::RST,
            ..Regs::default()
        }
    }

    /// Brings restored values into the ranges the hardware can hold.
    fn sanitize(&mut self) {
        self.imr &= isr::MASKABLE;
        self.dcr &= dcr::MASK;
        self.tcr &= tcr::MASK;
        self.rcr &= rcr::MASK;
        self.cr &= !cr::TXP;
        self.fifo_pos %= self.fifo.len() as u8;
    }
}

/// Host-side statistics (not guest-visible, not part of a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ne2kCounters {
    /// Frames stored in the receive ring.
    pub rx_frames: u64,
    /// Frames refused because the NIC was stopped or in loopback mode.
    pub rx_dropped_stopped: u64,
    /// Frames refused because the receiver was in monitor mode (counted as missed by the NIC, too).
    pub rx_dropped_monitor: u64,
    /// Frames whose destination the address filter rejected.
    pub rx_dropped_filtered: u64,
    /// Frames that did not fit in the ring (OVW, missed-packet tally).
    pub rx_dropped_ring_full: u64,
    /// Frames refused because the ring registers were unusable (PSTART >= PSTOP, pages outside the packet RAM,
    /// CURR outside the ring).
    pub rx_dropped_bad_ring: u64,
    /// Frames longer than [`MAX_FRAME`] or shorter than an Ethernet header.
    pub rx_dropped_malformed: u64,
    /// Frames handed to the back-end.
    pub tx_frames: u64,
    /// Frames the guest sent in internal loopback mode (not on the wire).
    pub tx_loopback: u64,
    /// Transmit commands refused: TBCR 0 or above [`MAX_FRAME`], or the buffer outside the packet RAM.
    pub tx_errors: u64,
    /// Frames the back-end refused (busy or failed); the guest saw a successful transmission.
    pub tx_backend_errors: u64,
    /// Data-port accesses with no remote DMA under way (reads floated, writes dropped).
    pub dma_idle_accesses: u64,
}

/// The snapshot of one NIC: registers and packet RAM (the PROM comes from the configured MAC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ne2kState {
    /// Which board the state belongs to.
    pub model: Model,
    /// The registers.
    pub regs: Regs,
    /// The packet RAM.
    pub ram: Vec<u8>,
}

/// The receive ring as the registers describe it, once checked to lie inside the packet RAM.
#[derive(Debug, Clone, Copy)]
struct Ring {
    start: u8,
    stop: u8,
    curr: u8,
    /// BNRY, or the page before PSTART (PSTOP - 1) when BNRY lies outside the ring: Linux writes
    /// PSTART - 1 after reading the frame that ends at PSTOP, meaning exactly that.
    bnry: u8,
}

impl Ring {
    fn pages(&self) -> usize {
        usize::from(self.stop - self.start)
    }

    /// Pages a frame may take now, starting at CURR. One page is always left between the last written page
    /// and BNRY: drivers disagree on whether BNRY == CURR means empty (BNRY = next page to read, as the
    /// DP8390's send-packet command assumes) or full (BNRY = last page read, as Linux and iPXE do), and with
    /// the gap the NIC never produces either ambiguous state.
    fn free_pages(&self) -> usize {
        let n = self.pages();
        let b = usize::from(self.bnry - self.start);
        let c = usize::from(self.curr - self.start);
        (b + n - c - 1) % n
    }

    /// The page `count` pages after `page`, wrapping at PSTOP.
    fn advance(&self, page: u8, count: usize) -> u8 {
        let offset = (usize::from(page - self.start) + count) % self.pages();
        // `offset` < pages() <= 255, so it fits, and start + offset < stop.
        self.start + offset as u8
    }
}

/// The DP8390 and the NE2000 board memory. See the module documentation.
pub struct Dp8390 {
    model: Model,
    prom: [u8; PROM_LEN],
    ram: Vec<u8>,
    regs: Regs,
    counters: Ne2kCounters,
    /// A frame was refused because the receiver was off or the ring full: the back-end may be holding frames
    /// until it hears `rx_ready`.
    pub(super) rx_refused: bool,
}

/// The DP8390 multicast hash of a destination address: the top six bits of the Ethernet CRC-32 computed
/// MSB-first without the final inversion (as Linux's `ether_crc`). That register is the bit reversal of the
/// reflected CRC-32 that `crc32fast` computes (before its final inversion), so it is derived from it.
pub fn multicast_index(dest: &[u8; 6]) -> usize {
    let reflected = !crc32fast::hash(dest);
    (reflected.reverse_bits() >> 26) as usize
}

impl Dp8390 {
    /// A powered-on NIC of `model` whose PROM holds `mac`.
    pub fn new(model: Model, mac: [u8; 6]) -> Dp8390 {
        // The 16 PROM bytes are the MAC, eight zeros and the NE2000 signature 'W' 'W' at 14-15; each sits on
        // both bytes of a word, so byte-wide reads see every byte twice (how Linux's ne.c tells a 16-bit card)
        // and word reads see each byte once.
        let mut logical = [0u8; PROM_LEN / 2];
        logical[..6].copy_from_slice(&mac);
        logical[14] = b'W';
        logical[15] = b'W';
        let mut prom = [0u8; PROM_LEN];
        for (pair, &byte) in prom.chunks_exact_mut(2).zip(logical.iter()) {
            pair.fill(byte);
        }
        Dp8390 {
            model,
            prom,
            ram: vec![0; model.ram_size()],
            regs: Regs::power_on(),
            counters: Ne2kCounters::default(),
            rx_refused: false,
        }
    }

    /// The board.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Power-on state: registers reset, packet RAM cleared.
    pub fn power_on(&mut self) {
        self.regs = Regs::power_on();
        self.ram.fill(0);
    }

    /// What the NE2000 reset port does (the DP8390's RESET pin): the NIC stops with ISR = RST, interrupts
    /// masked, remote DMA aborted and loopback off. Ring pointers, addresses and RAM are kept.
    pub fn board_reset(&mut self) {
        let r = &mut self.regs;
        r.cr = cr::STP | cr::RD_ABORT;
        r.isr = isr::RST;
        r.imr = 0;
        r.tcr &= !tcr::LB_MASK;
        r.dma = RemoteDma::Idle;
    }

    /// The interrupt output: any unmasked status bit.
    pub fn irq_level(&self) -> bool {
        self.regs.isr & self.regs.imr & isr::MASKABLE != 0
    }

    /// The statistics.
    pub fn counters(&self) -> &Ne2kCounters {
        &self.counters
    }

    pub(super) fn counters_mut(&mut self) -> &mut Ne2kCounters {
        &mut self.counters
    }

    /// A snapshot.
    pub fn state(&self) -> Ne2kState {
        Ne2kState {
            model: self.model,
            regs: self.regs.clone(),
            ram: self.ram.clone(),
        }
    }

    /// Restores a snapshot of the same model; out-of-range register values are masked.
    pub fn restore(&mut self, state: Ne2kState) -> Result<(), super::Ne2kError> {
        if state.model != self.model {
            return Err(super::Ne2kError::Model {
                snapshot: state.model,
                device: self.model,
            });
        }
        if state.ram.len() != self.ram.len() {
            return Err(super::Ne2kError::RamSize {
                snapshot: state.ram.len(),
                device: self.ram.len(),
            });
        }
        self.regs = state.regs;
        self.regs.sanitize();
        self.ram = state.ram;
        Ok(())
    }

    fn started(&self) -> bool {
        self.regs.cr & (cr::STA | cr::STP) == cr::STA
    }

    fn loopback(&self) -> u8 {
        self.regs.tcr & tcr::LB_MASK
    }

    fn page(&self) -> u8 {
        self.regs.cr >> cr::PS_SHIFT
    }

    // ---- Packet memory -------------------------------------------------------------------------------

    fn ram_end(&self) -> usize {
        usize::from(RAM_BASE) + self.ram.len()
    }

    /// A byte of the NIC's local address space: the PROM at 0x0000-0x001F, the packet RAM from 0x4000, and
    /// nothing (all ones) elsewhere.
    pub fn mem_read(&self, addr: u16) -> u8 {
        let a = usize::from(addr);
        if a < PROM_LEN {
            self.prom[a]
        } else if a >= usize::from(RAM_BASE) {
            self.ram
                .get(a - usize::from(RAM_BASE))
                .copied()
                .unwrap_or(FLOATING)
        } else {
            FLOATING
        }
    }

    /// Stores a byte if `addr` is packet RAM; the PROM and undecoded addresses ignore writes.
    pub fn mem_write(&mut self, addr: u16, value: u8) {
        if let Some(byte) = usize::from(addr)
            .checked_sub(usize::from(RAM_BASE))
            .and_then(|i| self.ram.get_mut(i))
        {
            *byte = value;
        }
    }

    // ---- Registers -----------------------------------------------------------------------------------

    /// A read of register `offset` (0-15) on the page CR selects. Reading a tally counter clears it; reading
    /// the FIFO advances it.
    pub fn read(&mut self, offset: u8) -> u8 {
        let offset = offset & 0x0f;
        if offset == CR {
            return self.regs.cr;
        }
        let page = self.page();
        let chip_id = self.model.chip_id();
        let r = &mut self.regs;
        match page {
            0 => match offset {
                p0r::CLDA0 => r.clda as u8,
                p0r::CLDA1 => (r.clda >> 8) as u8,
                p0r::BNRY => r.bnry,
                p0r::TSR => r.tsr,
                p0r::NCR => 0,
                p0r::FIFO => {
                    let i = usize::from(r.fifo_pos) % r.fifo.len();
                    r.fifo_pos = ((i + 1) % r.fifo.len()) as u8;
                    r.fifo[i]
                }
                p0r::ISR => r.isr,
                p0r::CRDA0 => r.rsar as u8,
                p0r::CRDA1 => (r.rsar >> 8) as u8,
                p0r::ID0 => chip_id[0],
                p0r::ID1 => chip_id[1],
                p0r::RSR => r.rsr,
                p0r::CNTR0..=p0r::CNTR2 => {
                    let i = usize::from(offset - p0r::CNTR0);
                    std::mem::take(&mut r.cntr[i])
                }
                _ => FLOATING,
            },
            1 => match offset {
                p1::CURR => r.curr,
                p1::MAR0..=0x0f => r.mar[usize::from(offset - p1::MAR0)],
                _ => r.par[usize::from(offset - p1::PAR0)],
            },
            2 => match offset {
                p2r::PSTART => r.pstart,
                p2r::PSTOP => r.pstop,
                p2r::RNPP => r.bnry,
                p2r::TPSR => r.tpsr,
                p2r::LNPP => r.curr,
                p2r::ADDR_HI => (r.clda >> 8) as u8,
                p2r::ADDR_LO => r.clda as u8,
                p2r::RCR => r.rcr,
                p2r::TCR => r.tcr,
                p2r::DCR => r.dcr,
                p2r::IMR => r.imr,
                _ => FLOATING,
            },
            // Page 3 holds the RTL8029's configuration registers (full duplex, LEDs); nothing there changes
            // how this model behaves, so they read as zero and ignore writes.
            _ => 0,
        }
    }

    /// A write of register `offset` (0-15). Returns a frame to put on the wire when the write was a transmit
    /// command.
    pub fn write(&mut self, offset: u8, value: u8) -> Option<Vec<u8>> {
        let offset = offset & 0x0f;
        if offset == CR {
            return self.write_cr(value);
        }
        let page = self.page();
        let started = self.started();
        let r = &mut self.regs;
        match page {
            0 => match offset {
                p0w::PSTART => r.pstart = value,
                p0w::PSTOP => r.pstop = value,
                p0w::BNRY => {
                    r.bnry = value;
                    // RST also flags a ring overflow; it clears once the host frees ring space.
                    if started {
                        r.isr &= !isr::RST;
                    }
                }
                p0w::TPSR => r.tpsr = value,
                p0w::TBCR0 => r.tbcr = (r.tbcr & 0xff00) | u16::from(value),
                p0w::TBCR1 => r.tbcr = (r.tbcr & 0x00ff) | (u16::from(value) << 8),
                p0w::ISR => r.isr &= !(value & isr::MASKABLE),
                p0w::RSAR0 => r.rsar = (r.rsar & 0xff00) | u16::from(value),
                p0w::RSAR1 => r.rsar = (r.rsar & 0x00ff) | (u16::from(value) << 8),
                p0w::RBCR0 => r.rbcr = (r.rbcr & 0xff00) | u16::from(value),
                p0w::RBCR1 => r.rbcr = (r.rbcr & 0x00ff) | (u16::from(value) << 8),
                p0w::RCR => r.rcr = value & rcr::MASK,
                p0w::TCR => r.tcr = value & tcr::MASK,
                p0w::DCR => r.dcr = value & dcr::MASK,
                p0w::IMR => r.imr = value & isr::MASKABLE,
                _ => {}
            },
            1 => match offset {
                p1::CURR => r.curr = value,
                p1::MAR0..=0x0f => r.mar[usize::from(offset - p1::MAR0)] = value,
                _ => r.par[usize::from(offset - p1::PAR0)] = value,
            },
            // Page 2 is read-only diagnostics in practice; page 3 is the RTL8029's configuration.
            _ => {}
        }
        None
    }

    fn write_cr(&mut self, value: u8) -> Option<Vec<u8>> {
        let r = &mut self.regs;
        let mut run = r.cr & (cr::STA | cr::STP);
        if value & cr::STP != 0 {
            run = cr::STP;
            r.isr |= isr::RST;
        } else if value & cr::STA != 0 {
            run = cr::STA;
            r.isr &= !isr::RST;
        }
        let rd = value & cr::RD_MASK;
        match rd {
            // RD = 000 is "not allowed" in the datasheet; drivers write it when they only switch pages
            // (iPXE writes 0x40/0x00), so it leaves the remote DMA as it was.
            0 => {}
            cr::RD_READ | cr::RD_WRITE => {
                r.dma = if rd == cr::RD_READ {
                    RemoteDma::Read
                } else {
                    RemoteDma::Write
                };
                // A transfer of zero bytes is complete at once.
                if r.rbcr == 0 {
                    r.dma = RemoteDma::Idle;
                    r.isr |= isr::RDC;
                }
            }
            cr::RD_SEND => {
                // Send Packet needs DCR.AR (auto-initialising remote DMA); no NE2000 driver uses it.
                r.dma = RemoteDma::Idle;
                crate::rate_limited!(
                    log::Level::Debug,
                    "ne2k: send-packet remote DMA command is not modelled"
                );
            }
            _ => r.dma = RemoteDma::Idle,
        }
        let rd_bits = if rd == 0 { r.cr & cr::RD_MASK } else { rd };
        r.cr = (value & cr::PS_MASK) | rd_bits | run;
        if value & cr::TXP != 0 && self.started() {
            return self.transmit();
        }
        None
    }

    // ---- Remote DMA (the data port) ------------------------------------------------------------------

    fn word_mode(&self) -> bool {
        self.regs.dcr & dcr::WTS != 0
    }

    /// Advances the remote DMA after moving `n` bytes: the address wraps from PSTOP to PSTART like the
    /// chip's, the count stops at zero and completion raises RDC.
    fn dma_advance(&mut self, n: u16) {
        let r = &mut self.regs;
        let mut next = r.rsar.wrapping_add(n);
        if r.pstart < r.pstop && next == u16::from(r.pstop) << 8 {
            next = u16::from(r.pstart) << 8;
        }
        r.rsar = next;
        r.rbcr = r.rbcr.saturating_sub(n);
        if r.rbcr == 0 {
            r.dma = RemoteDma::Idle;
            r.isr |= isr::RDC;
        }
    }

    /// The part of a word-mode string of `len` bytes that is a plain copy to or from the packet RAM, as a
    /// range of `self.ram`: whole words from the current (even) address, little-endian lanes (DCR.BOS
    /// clear), all in the RAM, stopping one word short of where the address wraps from PSTOP to PSTART and
    /// of the word that ends the count. Those last words, and everything a bulk copy cannot express, go
    /// word by word. `None` when the bulk part would be empty.
    ///
    /// Why: `rep insl`/`rep outsl` of a whole frame through the data port is most of what an NE2000 driver
    /// does; word by word it costs several times more than the copy.
    fn bulk_words(&self, len: usize) -> Option<std::ops::Range<usize>> {
        let r = &self.regs;
        if r.dcr & dcr::BOS != 0 {
            return None;
        }
        let start = usize::from(r.rsar & !1);
        let index = start.checked_sub(usize::from(RAM_BASE))?;
        let mut words = (len / 2).min(self.ram.len().saturating_sub(index) / 2);
        // The word that takes the count to zero sets RDC and ends the transfer: left to the slow path.
        words = words.min(usize::from(r.rbcr).saturating_sub(1) / 2);
        let stop = usize::from(r.pstop) << 8;
        if r.pstart < r.pstop && start < stop {
            // The word whose successor address is PSTOP wraps the address: left to the slow path too.
            words = words.min((stop - start) / 2 - 1);
        }
        (words > 0).then(|| index..index + 2 * words)
    }

    /// Bytes at the start of a data-port string of `len` bytes that the remote DMA, running in the direction
    /// asked, moves as one plain copy (see `bulk_words`); 0 when none do.
    pub(super) fn bulk_len(&self, len: usize, writing: bool) -> usize {
        let running = if writing {
            RemoteDma::Write
        } else {
            RemoteDma::Read
        };
        if self.regs.dma != running || !self.word_mode() {
            return 0;
        }
        self.bulk_words(len).map_or(0, |r| r.len())
    }

    /// Advances the remote DMA over `n` bytes of a bulk copy (which by construction neither wraps nor ends
    /// the count).
    fn bulk_advance(&mut self, n: usize) {
        let r = &mut self.regs;
        r.rsar = (r.rsar & !1).wrapping_add(n as u16);
        r.rbcr = r.rbcr.saturating_sub(n as u16);
    }

    /// The local addresses of the low and high byte lanes of a word transfer at the current address.
    fn word_lanes(&mut self) -> [u16; 2] {
        // Word transfers use even addresses.
        let even = self.regs.rsar & !1;
        self.regs.rsar = even;
        let odd = even.wrapping_add(1);
        if self.regs.dcr & dcr::BOS != 0 {
            [odd, even]
        } else {
            [even, odd]
        }
    }

    /// One data-port read of `out.len()` bytes. In byte mode each byte is one transfer; in word mode each
    /// pair of bytes is one word transfer, and a byte-wide read is a word transfer of which the low lane is
    /// seen (so byte reads of the doubled PROM in word mode return each PROM byte once, as Linux's ne2k-pci
    /// expects).
    pub fn data_in(&mut self, out: &mut [u8]) {
        if self.regs.dma != RemoteDma::Read {
            self.counters.dma_idle_accesses += 1;
            out.fill(FLOATING);
            return;
        }
        if self.word_mode() {
            let mut done = 0;
            if let Some(src) = self.bulk_words(out.len()).and_then(|r| self.ram.get(r)) {
                done = src.len();
                out[..done].copy_from_slice(src);
                self.bulk_advance(done);
            }
            for lanes in out[done..].chunks_mut(2) {
                if self.regs.dma != RemoteDma::Read {
                    lanes.fill(FLOATING);
                    continue;
                }
                let addrs = self.word_lanes();
                for (byte, addr) in lanes.iter_mut().zip(addrs) {
                    *byte = self.mem_read(addr);
                }
                self.dma_advance(2);
            }
        } else {
            for byte in out.iter_mut() {
                *byte = if self.regs.dma == RemoteDma::Read {
                    let v = self.mem_read(self.regs.rsar);
                    self.dma_advance(1);
                    v
                } else {
                    FLOATING
                };
            }
        }
    }

    /// One data-port write; see [`Dp8390::data_in`]. A byte-wide write in word mode stores its low lane only.
    pub fn data_out(&mut self, data: &[u8]) {
        if self.regs.dma != RemoteDma::Write {
            self.counters.dma_idle_accesses += 1;
            return;
        }
        if self.word_mode() {
            let mut done = 0;
            if let Some(dst) = self
                .bulk_words(data.len())
                .and_then(|r| self.ram.get_mut(r))
            {
                done = dst.len();
                dst.copy_from_slice(&data[..done]);
                self.bulk_advance(done);
            }
            for lanes in data[done..].chunks(2) {
                if self.regs.dma != RemoteDma::Write {
                    break;
                }
                let addrs = self.word_lanes();
                for (&byte, addr) in lanes.iter().zip(addrs) {
                    self.mem_write(addr, byte);
                }
                self.dma_advance(2);
            }
        } else {
            for &byte in data {
                if self.regs.dma != RemoteDma::Write {
                    break;
                }
                self.mem_write(self.regs.rsar, byte);
                self.dma_advance(1);
            }
        }
    }

    // ---- Transmit ------------------------------------------------------------------------------------

    fn transmit_error(&mut self) -> Option<Vec<u8>> {
        self.counters.tx_errors += 1;
        self.regs.tsr = tsr::ABT;
        self.regs.isr |= isr::TXE;
        None
    }

    /// Transmits TBCR bytes from TPSR. Transmission completes at once. A count of zero or above
    /// [`MAX_FRAME`], or a buffer not wholly in the packet RAM, aborts it (TXE, TSR.ABT), which drivers treat
    /// as excessive collisions. Frames shorter than [`MIN_FRAME`] are padded with zeros.
    fn transmit(&mut self) -> Option<Vec<u8>> {
        let len = usize::from(self.regs.tbcr);
        let start = usize::from(self.regs.tpsr) * PAGE;
        if len == 0 || len > MAX_FRAME {
            crate::rate_limited!(
                log::Level::Warn,
                "ne2k: transmit of {len} bytes refused (1-{MAX_FRAME})"
            );
            return self.transmit_error();
        }
        let Some(bytes) = start
            .checked_sub(usize::from(RAM_BASE))
            .and_then(|i| self.ram.get(i..i + len))
        else {
            crate::rate_limited!(
                log::Level::Warn,
                "ne2k: transmit buffer at {start:#x}+{len} is outside the packet RAM"
            );
            return self.transmit_error();
        };
        let mut frame = bytes.to_vec();
        self.regs.clda = (start + len) as u16;
        self.regs.tsr = tsr::PTX;
        self.regs.isr |= isr::PTX;
        let lb = self.loopback();
        if lb != 0 {
            self.loop_back(&frame);
        }
        if lb != 0 && lb != tcr::LB_EXTERNAL {
            self.counters.tx_loopback += 1;
            return None;
        }
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        self.counters.tx_frames += 1;
        Some(frame)
    }

    /// Loopback: the receiver sees the frame (with its FCS unless TCR.CRC inhibits it) but stores none of it;
    /// its last eight bytes stay in the FIFO, and RSR says whether the address filter accepted it.
    fn loop_back(&mut self, frame: &[u8]) {
        let fcs = crc32fast::hash(frame).to_le_bytes();
        let with_fcs = self.regs.tcr & tcr::CRC == 0;
        let mut tail = frame.to_vec();
        if with_fcs {
            tail.extend_from_slice(&fcs);
        }
        let status = match self.address_match(frame) {
            Some(true) => rsr::PRX | rsr::PHY,
            Some(false) => rsr::PRX,
            None => 0,
        };
        let r = &mut self.regs;
        r.fifo = [0; 8];
        let keep = tail.len().min(r.fifo.len());
        r.fifo[..keep].copy_from_slice(&tail[tail.len() - keep..]);
        r.fifo_pos = 0;
        r.rsr = status;
    }

    // ---- Receive -------------------------------------------------------------------------------------

    /// Whether the address filter takes a frame: `Some(multicast)` if it does.
    fn address_match(&self, frame: &[u8]) -> Option<bool> {
        let dest: [u8; 6] = frame.get(..6)?.try_into().ok()?;
        let r = &self.regs;
        if dest == [0xff; 6] {
            (r.rcr & rcr::AB != 0).then_some(true)
        } else if dest[0] & 1 != 0 {
            let index = multicast_index(&dest);
            (r.rcr & rcr::AM != 0 && r.mar[index >> 3] & (1 << (index & 7)) != 0).then_some(true)
        } else {
            (r.rcr & rcr::PRO != 0 || dest == r.par).then_some(false)
        }
    }

    /// The ring, if its registers describe pages inside the packet RAM with CURR among them.
    fn ring(&self) -> Option<Ring> {
        let r = &self.regs;
        let first = RAM_BASE >> 8;
        let end_page = self.ram_end() / PAGE;
        let valid = r.pstart < r.pstop
            && u16::from(r.pstart) >= first
            && usize::from(r.pstop) <= end_page
            && (r.pstart..r.pstop).contains(&r.curr);
        valid.then(|| Ring {
            start: r.pstart,
            stop: r.pstop,
            curr: r.curr,
            bnry: if (r.pstart..r.pstop).contains(&r.bnry) {
                r.bnry
            } else {
                r.pstop - 1
            },
        })
    }

    fn tally_missed(&mut self) {
        let c = &mut self.regs.cntr[2];
        *c = c.saturating_add(1);
        if *c & 0x80 != 0 {
            self.regs.isr |= isr::CNT;
        }
    }

    /// Whether a frame of any size could be stored now.
    pub fn can_receive(&self) -> bool {
        self.started()
            && self.loopback() == 0
            && self.regs.rcr & rcr::MON == 0
            && self
                .ring()
                .is_some_and(|ring| ring.free_pages() >= MAX_FRAME_PAGES)
    }

    /// A frame from the wire (destination first, no FCS). Returns whether it was stored in the ring.
    pub fn receive(&mut self, frame: &[u8]) -> bool {
        if frame.len() > MAX_FRAME || frame.len() < 14 {
            self.counters.rx_dropped_malformed += 1;
            return false;
        }
        if !self.started() || self.loopback() != 0 {
            // The receiver is off (stopped, or listening only to its own loopback).
            self.counters.rx_dropped_stopped += 1;
            self.rx_refused = true;
            return false;
        }
        let Some(multicast) = self.address_match(frame) else {
            self.counters.rx_dropped_filtered += 1;
            return false;
        };
        if self.regs.rcr & rcr::MON != 0 {
            self.regs.rsr = rsr::MPA;
            self.tally_missed();
            self.counters.rx_dropped_monitor += 1;
            return false;
        }
        let Some(ring) = self.ring() else {
            crate::rate_limited!(
                log::Level::Warn,
                "ne2k: receive ring unusable (PSTART {:#04x} PSTOP {:#04x} CURR {:#04x}); frame dropped",
                self.regs.pstart,
                self.regs.pstop,
                self.regs.curr
            );
            self.counters.rx_dropped_bad_ring += 1;
            return false;
        };
        // A real sender pads short frames on the wire; the back-end hands them over unpadded.
        let mut padded = [0u8; MIN_FRAME];
        let data = if frame.len() < MIN_FRAME {
            padded[..frame.len()].copy_from_slice(frame);
            &padded[..]
        } else {
            frame
        };
        let fcs = crc32fast::hash(data).to_le_bytes();
        // The byte count in the header covers the frame and its FCS, as on the wire.
        let count = data.len() + fcs.len();
        let pages = (4 + count).div_ceil(PAGE);
        if pages > ring.free_pages() {
            // Overflow: the frame is lost, the frames already in the ring are untouched.
            self.regs.isr |= isr::OVW | isr::RST;
            // RSR keeps PRX from the last stored frame: iPXE polls RSR.PRX to decide whether to look at
            // the ring at all, and the ring still holds frames.
            self.regs.rsr |= rsr::MPA;
            self.tally_missed();
            self.counters.rx_dropped_ring_full += 1;
            self.rx_refused = true;
            return false;
        }
        let status = if multicast {
            rsr::PRX | rsr::PHY
        } else {
            rsr::PRX
        };
        let next = ring.advance(ring.curr, pages);
        let header = [status, next, count as u8, (count >> 8) as u8];
        let mut addr = usize::from(ring.curr) * PAGE;
        for part in [&header[..], data, &fcs[..]] {
            addr = self.ring_store(&ring, addr, part);
        }
        let r = &mut self.regs;
        r.curr = next;
        r.rsr = status;
        r.isr |= isr::PRX;
        r.clda = addr as u16;
        self.counters.rx_frames += 1;
        true
    }

    /// Copies `bytes` into the ring at local address `addr`, wrapping at PSTOP; returns the address after them.
    fn ring_store(&mut self, ring: &Ring, mut addr: usize, mut bytes: &[u8]) -> usize {
        let start = usize::from(ring.start) * PAGE;
        let stop = usize::from(ring.stop) * PAGE;
        let base = usize::from(RAM_BASE);
        while !bytes.is_empty() {
            let room = stop.saturating_sub(addr);
            let n = room.min(bytes.len());
            // ring() guarantees start..stop lies in the RAM; `get_mut` keeps it so even if it did not.
            if let Some(dst) = addr
                .checked_sub(base)
                .and_then(|i| self.ram.get_mut(i..i + n))
            {
                dst.copy_from_slice(&bytes[..n]);
            }
            bytes = &bytes[n..];
            addr += n;
            if addr >= stop {
                addr = start;
            }
        }
        addr
    }
}
