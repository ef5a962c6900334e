//! The chip as one state machine: register semantics, interrupts, the timer, the link, the receive filter
//! and the C-mode transmitter and receive ring. The C+ rings and offloads are in [`super::cplus`].

use std::sync::Arc;

use crate::irq::IrqLine;
use crate::memory::{Bytes, GuestAddress, GuestMemory};
use crate::net::{MAX_FRAME, MIN_FRAME};

use super::eeprom::Eeprom;
use super::regs::*;
use super::Counters;

/// Length of an Ethernet header without a VLAN tag.
pub const ETH_HLEN: usize = 14;
/// PCI clock that TCTR counts.
const TCTR_HZ: u128 = 33_000_000;
/// Size of the receive record header (status and length).
const RX_HEADER: usize = 4;
/// Size of the frame check sequence the chip appends to a received frame.
const FCS: usize = 4;
/// The largest C-mode receive record: header, frame, FCS, alignment.
const RX_RECORD_MAX: u32 = (RX_HEADER + MAX_FRAME + FCS + 3) as u32;

/// C-mode receive status bits (the low half of a record header).
mod rx_status {
    /// Received OK.
    pub const ROK: u32 = 1 << 0;
    /// Broadcast address.
    pub const BAR: u32 = 1 << 13;
    /// Physical address matched.
    pub const PAM: u32 = 1 << 14;
    /// Multicast address.
    pub const MAR: u32 = 1 << 15;
}

/// What the receive filter made of a destination address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// All ones.
    Broadcast,
    /// Group bit set and the hash bit in MAR set.
    Multicast,
    /// Our IDR.
    Physical,
    /// Another unicast address, accepted in promiscuous mode.
    Other,
}

impl AddressKind {
    fn c_status(self) -> u32 {
        match self {
            AddressKind::Broadcast => rx_status::BAR,
            AddressKind::Multicast => rx_status::MAR,
            AddressKind::Physical => rx_status::PAM,
            AddressKind::Other => 0,
        }
    }
}

/// Frames the transmitter produced, in one buffer, sent after the chip lock is released.
#[derive(Debug, Default)]
pub struct TxQueue {
    data: Vec<u8>,
    ends: Vec<usize>,
    /// Loop the frames back into the receiver instead of sending them (TCR loopback).
    pub loopback: bool,
}

/// Once a batch of queued frames was sent, a queue that grew past this much is given back to the allocator.
const TXQ_KEEP: usize = 256 << 10;
/// The C+ transmitter hands its frames over for sending once this much is queued.
pub const TXQ_BATCH: usize = 128 << 10;

impl TxQueue {
    /// Appends a frame, inserting the VLAN tag `vlan` (TCI bytes in network order) after the addresses
    /// and padding to the minimum frame length. Refuses (false) a frame that would exceed [`MAX_FRAME`]
    /// or has no complete address pair.
    pub fn push(&mut self, frame: &[u8], vlan: Option<[u8; 2]>) -> bool {
        let tagged = usize::from(vlan.is_some()) * 4;
        if frame.len() < 12 || frame.len() + tagged > MAX_FRAME {
            return false;
        }
        let start = self.data.len();
        match vlan {
            Some(tci) => {
                self.data.extend_from_slice(&frame[..12]);
                self.data.extend_from_slice(&[0x81, 0x00, tci[0], tci[1]]);
                self.data.extend_from_slice(&frame[12..]);
            }
            None => self.data.extend_from_slice(frame),
        }
        if self.data.len() - start < MIN_FRAME {
            self.data.resize(start + MIN_FRAME, 0);
        }
        self.ends.push(self.data.len());
        true
    }

    /// The queued frames in order.
    pub fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends.iter().filter_map(move |&end| {
            let f = self.data.get(start..end);
            start = end;
            f
        })
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Empties the queue, keeping a reasonable allocation for the next batch.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
        if self.data.capacity() > TXQ_KEEP {
            self.data.shrink_to(TXQ_KEEP);
        }
        if self.ends.capacity() > TXQ_KEEP / 64 {
            self.ends.shrink_to(TXQ_KEEP / 64);
        }
    }
}

/// What a register write asks of the caller once the chip lock is released.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteEffects {
    /// The timer deadline changed: kick the timer loop.
    pub kick: bool,
    /// The receiver may have room again: tell a back-end that was refused.
    pub rx_space: bool,
}

/// The chip. See the module documentation.
pub struct Chip {
    pub regs: Regs,
    pub mem: GuestMemory,
    intx: Arc<dyn IrqLine>,
    /// COMMAND.BUS_MASTER, mirrored from configuration space.
    bus_master: bool,
    /// COMMAND.INTX_DISABLE, mirrored.
    intx_disabled: bool,
    /// The level last driven on INTx.
    irq_level: bool,
    /// A DMA access hit no memory since configuration space last looked (STATUS bit 13).
    pub master_abort: bool,
    pub counters: Counters,
    /// Reusable buffer for a received record.
    pub rx_buf: Vec<u8>,
    /// Reusable buffer for a transmitted frame (C mode) or a C+ frame assembled from its fragments.
    pub tx_buf: Vec<u8>,
    /// Reusable buffer for one TSO segment.
    pub seg_buf: Vec<u8>,
    /// Frames to send once the lock is released.
    pub txq: TxQueue,
    /// The C+ transmitter stopped at [`TXQ_BATCH`] with descriptors still to look at.
    pub tx_resume: bool,
}

impl Chip {
    /// A chip at power-on.
    pub fn new(eeprom: Eeprom, mem: GuestMemory, intx: Arc<dyn IrqLine>, link_up: bool) -> Chip {
        Chip {
            regs: Regs::power_on(eeprom, link_up),
            mem,
            intx,
            bus_master: false,
            intx_disabled: false,
            irq_level: false,
            master_abort: false,
            counters: Counters::default(),
            rx_buf: Vec::with_capacity(RX_HEADER + MAX_FRAME + FCS + 4),
            tx_buf: Vec::with_capacity(MAX_FRAME),
            seg_buf: Vec::with_capacity(MAX_FRAME),
            txq: TxQueue::default(),
            tx_resume: false,
        }
    }

    /// A platform reset: power-on registers (the EEPROM keeps its contents), INTx low.
    pub fn hard_reset(&mut self) {
        let eeprom = self.regs.eeprom.clone();
        let link = self.regs.link_up;
        self.regs = Regs::power_on(eeprom, link);
        self.bus_master = false;
        self.intx_disabled = false;
        self.master_abort = false;
        self.txq.clear();
        self.tx_resume = false;
        self.update_irq();
    }

    /// Restores saved registers (repaired) and re-drives INTx.
    pub fn restore(&mut self, mut regs: Regs) {
        regs.sanitize();
        self.regs = regs;
        self.txq.clear();
        self.tx_resume = false;
        // Drive the line whatever it was: the restored state decides it.
        let level = self.irq_pending() && !self.intx_disabled;
        self.irq_level = level;
        self.intx.set_level(level);
    }

    /// The PCI COMMAND bits the chip depends on.
    pub fn set_pci_command(&mut self, bus_master: bool, intx_disabled: bool) {
        self.bus_master = bus_master;
        self.intx_disabled = intx_disabled;
        self.update_irq();
    }

    /// Whether an enabled interrupt is pending (PCI STATUS.INTERRUPT).
    pub fn irq_pending(&self) -> bool {
        self.regs.isr & self.regs.imr != 0
    }

    /// Drives INTx from ISR & IMR, only when the level changes.
    pub fn update_irq(&mut self) {
        let level = self.irq_pending() && !self.intx_disabled;
        if level != self.irq_level {
            self.irq_level = level;
            self.intx.set_level(level);
        }
    }

    /// Sets interrupt status bits.
    pub fn raise(&mut self, bits: u16) {
        self.regs.isr |= bits & int::ALL;
        self.update_irq();
    }

    /// A DMA access outside guest memory: the PCI master abort the guest sees as SERR.
    pub fn dma_fault(&mut self, what: &str, addr: u64) {
        crate::rate_limited!(
            log::Level::Warn,
            "rtl8139: {} at {:#x} is outside guest memory",
            what,
            addr
        );
        self.master_abort = true;
        self.raise(int::SERR);
    }

    /// Reads guest memory for the chip; false (and SERR) when any of it lies outside RAM.
    pub fn dma_read(&mut self, addr: u64, buf: &mut [u8], what: &str) -> bool {
        if !self.bus_master {
            return false;
        }
        if self.mem.read_slice(buf, GuestAddress(addr)).is_err() {
            self.dma_fault(what, addr);
            return false;
        }
        true
    }

    /// Writes guest memory for the chip; false (and SERR) when any of it lies outside RAM.
    pub fn dma_write(&mut self, addr: u64, buf: &[u8], what: &str) -> bool {
        if !self.bus_master {
            return false;
        }
        if self.mem.write_slice(buf, GuestAddress(addr)).is_err() {
            self.dma_fault(what, addr);
            return false;
        }
        true
    }

    // ---- Register access ----

    /// A guest read of `data.len()` bytes at `offset` in the register window.
    pub fn read(&mut self, offset: u64, data: &mut [u8], now: u64) {
        let mut i = 0;
        while i < data.len() {
            let Some(off) = offset
                .checked_add(i as u64)
                .and_then(|o| u8::try_from(o).ok())
            else {
                data[i..].fill(0xff);
                break;
            };
            let (base, size) = register_at(off);
            let value = self.read_reg(base, now);
            let end = u16::from(base) + u16::from(size);
            let mut b = u16::from(off);
            while i < data.len() && b < end {
                data[i] = (value >> (8 * (b - u16::from(base)))) as u8;
                i += 1;
                b += 1;
            }
        }
    }

    /// A guest write of `data` at `offset` in the register window.
    pub fn write(&mut self, offset: u64, data: &[u8], now: u64) -> WriteEffects {
        let mut fx = WriteEffects::default();
        let mut i = 0;
        while i < data.len() {
            let Some(off) = offset
                .checked_add(i as u64)
                .and_then(|o| u8::try_from(o).ok())
            else {
                break;
            };
            let (base, size) = register_at(off);
            let end = u16::from(base) + u16::from(size);
            let (mut value, mut mask) = (0u32, 0u32);
            let mut b = u16::from(off);
            while i < data.len() && b < end {
                let shift = 8 * u32::from(b - u16::from(base));
                value |= u32::from(data[i]) << shift;
                mask |= 0xff << shift;
                i += 1;
                b += 1;
            }
            self.write_reg(base, value, mask, now, &mut fx);
        }
        fx
    }

    /// A register's value without read side effects.
    fn peek(&self, base: u8, now: u64) -> u32 {
        let r = &self.regs;
        match base {
            0x00..=0x05 => u32::from(r.idr[usize::from(base)]),
            0x08..=0x0f => u32::from(r.mar[usize::from(base - MAR0)]),
            0x10..=0x1f => r.tsd[usize::from((base - TSD0) / 4)],
            0x20..=0x2f => r.tsad[usize::from((base - TSAD0) / 4)],
            RBSTART => r.rbstart,
            CR => {
                let empty = if r.rx_read == r.rx_write { cr::BUFE } else { 0 };
                u32::from(r.cr | empty)
            }
            CAPR => r.rx_read.wrapping_sub(16) & 0xffff,
            CBR => r.rx_write & 0xffff,
            IMR => u32::from(r.imr),
            ISR => u32::from(r.isr),
            TCR => r.tcr | tcr::VERSION_8139CPLUS,
            RCR => r.rcr,
            TCTR => self.tctr(now),
            MPC => r.mpc,
            CR9346 => {
                let program = r.cr9346 >> 6 == cr9346::PROGRAM;
                let dout = if program && r.eeprom.data_out() {
                    cr9346::EEDO
                } else {
                    0
                };
                u32::from((r.cr9346 & 0xce) | dout)
            }
            CONFIG0 => u32::from(r.config0),
            CONFIG1 => u32::from(r.config1),
            TIMER_INT => r.timer_int,
            MSR => u32::from(self.msr()),
            CONFIG3 => u32::from(r.config3),
            CONFIG4 => u32::from(r.config4),
            HLTCLK => u32::from(r.clock_running),
            MULINT => u32::from(r.mulint),
            RERID => u32::from(super::REVISION),
            TSAD_SUMMARY => u32::from(self.tx_summary()),
            BMCR => u32::from(r.bmcr),
            BMSR => u32::from(self.bmsr()),
            ANAR => u32::from(r.anar),
            ANLPAR => u32::from(if r.link_up { phy::ANLPAR_LINK } else { 0 }),
            ANER => u32::from(phy::ANER_DEFAULT),
            CSCR => {
                let mut v = phy::CSCR_BASE;
                if r.link_up {
                    v |= phy::CSCR_LINK_OK;
                }
                if r.link_changed {
                    v |= phy::CSCR_LINK_CHANGE;
                }
                u32::from(v)
            }
            CONFIG5 => u32::from(r.config5),
            RX_MAX_SIZE => u32::from(r.rx_max_size),
            CPCR => u32::from(r.cpcr),
            INTR_MITIGATE => u32::from(r.intr_mitigate),
            RDSAR => r.rdsar as u32,
            0xe8 => (r.rdsar >> 32) as u32,
            ETTHR => u32::from(r.tx_thresh),
            _ => 0,
        }
    }

    fn read_reg(&mut self, base: u8, now: u64) -> u32 {
        match base {
            ISR => self.catch_up_timer(now),
            CSCR => {
                let v = self.peek(base, now);
                self.regs.link_changed = false;
                return v;
            }
            _ => {}
        }
        self.peek(base, now)
    }

    fn config_unlocked(&self) -> bool {
        self.regs.cr9346 >> 6 == cr9346::CONFIG_WRITE
    }

    fn write_reg(&mut self, base: u8, value: u32, mask: u32, now: u64, fx: &mut WriteEffects) {
        let merged = (self.peek(base, now) & !mask) | (value & mask);
        let byte = merged as u8;
        let word = merged as u16;
        let unlocked = self.config_unlocked();
        let r = &mut self.regs;
        match base {
            0x00..=0x05 => r.idr[usize::from(base)] = byte,
            0x08..=0x0f => r.mar[usize::from(base - MAR0)] = byte,
            0x10..=0x1f => self.write_tsd(usize::from((base - TSD0) / 4), merged),
            0x20..=0x2f => r.tsad[usize::from((base - TSAD0) / 4)] = merged,
            RBSTART => r.rbstart = merged,
            CR => {
                self.write_cr(byte);
                fx.rx_space = true;
            }
            CAPR => {
                r.rx_read = (u32::from(word) + 16) % r.ring_size();
                fx.rx_space = true;
            }
            IMR => {
                r.imr = word & int::ALL;
                self.update_irq();
                fx.rx_space = true;
            }
            ISR => {
                // Write 1 to clear, only in the bytes written.
                r.isr &= !((value & mask) as u16);
                self.update_irq();
                fx.rx_space = true;
            }
            TCR => r.tcr = merged & tcr::WRITABLE,
            RCR => {
                let old_size = r.ring_size();
                r.rcr = merged & rcr::WRITABLE;
                if r.ring_size() != old_size {
                    r.rx_read = 0;
                    r.rx_write = 0;
                }
            }
            TCTR => {
                r.tctr_base_ns = now;
                self.rearm_timer(now);
                fx.kick = true;
            }
            MPC => r.mpc = 0,
            CR9346 => self.write_9346(byte),
            CONFIG0 if unlocked => r.config0 = (r.config0 & 0xf8) | (byte & 0x07),
            CONFIG1 if unlocked => r.config1 = (r.config1 & 0x0c) | (byte & !0x0c),
            CONFIG3 if unlocked => r.config3 = (r.config3 & 0x8f) | (byte & 0x70),
            CONFIG4 if unlocked => r.config4 = (r.config4 & 0x0a) | (byte & !0x0a),
            TIMER_INT => {
                r.timer_int = merged;
                self.rearm_timer(now);
                fx.kick = true;
            }
            HLTCLK => match byte {
                b'R' => r.clock_running = true,
                b'H' => r.clock_running = false,
                _ => {}
            },
            MULINT => r.mulint = word & 0x0fff,
            BMCR => self.write_bmcr(word, unlocked),
            ANAR => r.anar = word,
            CONFIG5 => r.config5 = byte & 0x7f,
            TPPOLL => {
                self.write_tppoll(byte);
                fx.rx_space = true;
            }
            RX_MAX_SIZE => r.rx_max_size = word,
            CPCR => {
                r.cpcr = word & cpcr::WRITABLE;
                r.cplus = true;
                fx.rx_space = true;
            }
            INTR_MITIGATE => r.intr_mitigate = word,
            RDSAR => {
                r.rdsar = (r.rdsar & !0xffff_ffff) | u64::from(merged);
                fx.rx_space = true;
            }
            0xe8 => {
                r.rdsar = (r.rdsar & 0xffff_ffff) | (u64::from(merged) << 32);
                fx.rx_space = true;
            }
            ETTHR => r.tx_thresh = byte,
            _ => {}
        }
    }

    fn write_cr(&mut self, value: u8) {
        if value & cr::RST != 0 {
            self.regs.soft_reset();
            self.tx_resume = false;
            self.update_irq();
            return;
        }
        let old = self.regs.cr;
        self.regs.cr = value & (cr::RE | cr::TE);
        let rising = self.regs.cr & !old;
        if rising & cr::RE != 0 {
            self.regs.rx_read = 0;
            self.regs.rx_write = 0;
            self.regs.cp_rx_next = 0;
        }
        if rising & cr::TE != 0 {
            self.regs.cp_tx_next = [0; 2];
        }
        self.c_transmit();
    }

    fn write_9346(&mut self, value: u8) {
        match value >> 6 {
            cr9346::AUTOLOAD => {
                // Reload from the EEPROM: every register back to its default, IDR from words 7-9.
                let mut eeprom = self.regs.eeprom.clone();
                eeprom.deselect();
                let link = self.regs.link_up;
                self.regs = Regs::power_on(eeprom, link);
                self.tx_resume = false;
                self.update_irq();
            }
            cr9346::PROGRAM => {
                self.regs.cr9346 = value & 0xce;
                self.regs.eeprom.set_pins(
                    value & cr9346::EECS != 0,
                    value & cr9346::EESK != 0,
                    value & cr9346::EEDI != 0,
                );
            }
            _ => {
                self.regs.cr9346 = value & 0xce;
                self.regs.eeprom.deselect();
            }
        }
    }

    fn write_bmcr(&mut self, value: u16, unlocked: bool) {
        if value & phy::BMCR_RESET != 0 {
            self.regs.bmcr = phy::BMCR_DEFAULT;
            self.regs.anar = phy::ANAR_DEFAULT;
            return;
        }
        let writable = phy::BMCR_FREE | if unlocked { phy::BMCR_LOCKED } else { 0 };
        self.regs.bmcr = (self.regs.bmcr & !writable) | (value & writable);
    }

    fn msr(&self) -> u8 {
        let mut v = phy::MSR_BASE;
        if !self.regs.link_up {
            v |= phy::MSR_LINKB;
        }
        // Forced 10 Mb/s: auto-negotiation off and the speed bit clear.
        if self.regs.bmcr & 0x3000 == 0 {
            v |= phy::MSR_SPEED_10;
        }
        v
    }

    fn bmsr(&self) -> u16 {
        if self.regs.link_up {
            phy::BMSR_BASE | phy::BMSR_LINK | phy::BMSR_AN_DONE
        } else {
            phy::BMSR_BASE
        }
    }

    fn tx_summary(&self) -> u16 {
        let mut v = 0u16;
        for (i, &t) in self.regs.tsd.iter().enumerate() {
            let bit = |set: bool, shift: usize| u16::from(set) << (shift + i);
            v |= bit(t & tsd::OWN != 0, 0)
                | bit(t & tsd::TABT != 0, 4)
                | bit(t & tsd::TUN != 0, 8)
                | bit(t & tsd::TOK != 0, 12);
        }
        v
    }

    // ---- Link ----

    /// The back-end's link went up or down: PHY status follows and LinkChg is raised on a change.
    pub fn set_link(&mut self, up: bool) {
        if up != self.regs.link_up {
            self.regs.link_up = up;
            self.regs.link_changed = true;
            self.raise(int::LINK_CHG);
        }
    }

    // ---- Timer ----

    fn ticks_since_base(&self, now: u64) -> u64 {
        let ns = u128::from(now.saturating_sub(self.regs.tctr_base_ns));
        u64::try_from(ns * TCTR_HZ / 1_000_000_000).unwrap_or(u64::MAX)
    }

    fn tctr(&self, now: u64) -> u32 {
        self.ticks_since_base(now) as u32
    }

    /// Recomputes when TCTR next equals TimerInt (strictly after `now`).
    fn rearm_timer(&mut self, now: u64) {
        let r = &mut self.regs;
        if r.timer_int == 0 {
            r.timer_deadline_ns = None;
            return;
        }
        let ticks = u128::from(self.ticks_since_base(now));
        let mut target = (ticks & !0xffff_ffff) | u128::from(self.regs.timer_int);
        if target <= ticks {
            target += 1 << 32;
        }
        // The first nanosecond at which the counter has reached the target.
        let ns = (target * 1_000_000_000).div_ceil(TCTR_HZ);
        let deadline = u64::try_from(ns)
            .ok()
            .and_then(|ns| ns.checked_add(self.regs.tctr_base_ns));
        self.regs.timer_deadline_ns = deadline;
    }

    /// Raises TimeOut if TCTR reached TimerInt by `now`, and arms the next occurrence.
    pub fn catch_up_timer(&mut self, now: u64) {
        if let Some(deadline) = self.regs.timer_deadline_ns {
            if now >= deadline {
                self.rearm_timer(now);
                self.raise(int::TIMEOUT);
            }
        }
    }

    /// The next timer deadline.
    pub fn timer_deadline(&self) -> Option<u64> {
        self.regs.timer_deadline_ns
    }

    // ---- Receive ----

    /// Whether the receive path is on: RE, bus mastering and the clock running (and, in C+ mode, a ring).
    fn rx_active(&self) -> bool {
        let r = &self.regs;
        r.cr & cr::RE != 0
            && self.bus_master
            && r.clock_running
            && (!self.cplus_rx() || r.rdsar != 0)
    }

    /// Whether received frames go to the C+ descriptor ring.
    pub fn cplus_rx(&self) -> bool {
        self.regs.cpcr & cpcr::RX_ON != 0
    }

    /// Whether the NIC could take a full-sized frame now (see [`crate::net::NetReceiver::can_receive`]).
    pub fn can_receive(&mut self) -> bool {
        if !self.rx_active() {
            // Frames offered now are dropped and counted; there is no point in holding them back.
            return true;
        }
        if self.cplus_rx() {
            return self.cplus_rx_descriptor_ready();
        }
        self.ring_room() > RX_RECORD_MAX
    }

    /// Free bytes in the C-mode ring (an empty ring is all free).
    fn ring_room(&self) -> u32 {
        let r = &self.regs;
        let size = r.ring_size();
        if r.rx_read == r.rx_write {
            size
        } else {
            r.rx_read.wrapping_sub(r.rx_write) % size
        }
    }

    /// The address filter (RCR accept bits, IDR, MAR hash); None when the frame is not for us.
    pub fn classify(&self, dst: &[u8; 6]) -> Option<AddressKind> {
        let r = &self.regs;
        if dst[0] & 1 != 0 {
            if *dst == [0xff; 6] {
                return (r.rcr & rcr::AB != 0).then_some(AddressKind::Broadcast);
            }
            let bit = multicast_hash(dst);
            let hit = r.mar[usize::from(bit >> 3)] & (1 << (bit & 7)) != 0;
            return (r.rcr & rcr::AM != 0 && hit).then_some(AddressKind::Multicast);
        }
        if *dst == r.idr && r.rcr & (rcr::APM | rcr::AAP) != 0 {
            return Some(AddressKind::Physical);
        }
        (r.rcr & rcr::AAP != 0).then_some(AddressKind::Other)
    }

    /// A frame from the back-end (no FCS). Returns whether it was stored for the guest.
    pub fn receive(&mut self, frame: &[u8]) -> bool {
        if frame.len() < ETH_HLEN || frame.len() > MAX_FRAME {
            self.counters.rx_dropped_length += 1;
            return false;
        }
        if !self.rx_active() {
            self.counters.rx_dropped_disabled += 1;
            return false;
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let Some(kind) = self.classify(&dst) else {
            self.counters.rx_dropped_filtered += 1;
            return false;
        };
        let stored = if self.cplus_rx() {
            self.receive_cplus(frame, kind)
        } else {
            self.receive_ring(frame, kind)
        };
        if stored {
            let t = &mut self.regs.tally;
            t.rx_ok = t.rx_ok.wrapping_add(1);
            match kind {
                AddressKind::Broadcast => t.rx_ok_broadcast = t.rx_ok_broadcast.wrapping_add(1),
                AddressKind::Multicast => t.rx_ok_multicast = t.rx_ok_multicast.wrapping_add(1),
                AddressKind::Physical | AddressKind::Other => {
                    t.rx_ok_physical = t.rx_ok_physical.wrapping_add(1)
                }
            }
            self.counters.rx_frames += 1;
            self.counters.rx_bytes += frame.len() as u64;
            self.raise(int::ROK);
        }
        stored
    }

    /// A dropped frame the guest can see: MPC and the missed tally, plus `status` in ISR.
    pub fn missed(&mut self, status: u16) {
        self.regs.mpc = (self.regs.mpc + 1) & 0x00ff_ffff;
        let t = &mut self.regs.tally;
        t.missed = t.missed.wrapping_add(1);
        t.rx_err = t.rx_err.wrapping_add(1);
        self.raise(status);
    }

    /// C mode: header, frame (padded to 60 bytes), FCS, stored at CBR in the ring at RBSTART.
    fn receive_ring(&mut self, frame: &[u8], kind: AddressKind) -> bool {
        let len = frame.len().max(MIN_FRAME);
        let record = (RX_HEADER + len + FCS) as u32;
        let aligned = (record + 3) & !3;
        // Never fill the ring completely: equal pointers would then read as empty.
        if aligned >= self.ring_room() {
            self.counters.rx_dropped_ring_full += 1;
            self.missed(int::RXOVW);
            return false;
        }
        let header = rx_status::ROK | kind.c_status() | (((len + FCS) as u32) << 16);
        let buf = &mut self.rx_buf;
        buf.clear();
        buf.extend_from_slice(&header.to_le_bytes());
        buf.extend_from_slice(frame);
        buf.resize(RX_HEADER + len, 0);
        let fcs = crc32fast::hash(&buf[RX_HEADER..]);
        buf.extend_from_slice(&fcs.to_le_bytes());

        let size = self.regs.ring_size();
        let offset = self.regs.rx_write;
        let base = u64::from(self.regs.rbstart);
        let first = if self.regs.writes_past_end() {
            record
        } else {
            record.min(size - offset)
        };
        let buf = std::mem::take(&mut self.rx_buf);
        let (head, tail) = buf.split_at(first as usize);
        let ok = self.dma_write(base + u64::from(offset), head, "receive ring")
            && (tail.is_empty() || self.dma_write(base, tail, "receive ring"));
        self.rx_buf = buf;
        if !ok {
            self.counters.rx_dma_errors += 1;
            return false;
        }
        self.regs.rx_write = (offset + aligned) % size;
        true
    }

    // ---- C-mode transmit ----

    /// Sends every pending descriptor from the current one on, in order (TSD written with OWN clear).
    pub fn c_transmit(&mut self) {
        if self.regs.cr & cr::TE == 0 || self.regs.cplus {
            return;
        }
        for _ in 0..4 {
            let n = usize::from(self.regs.tx_next % 4);
            if self.regs.tsd[n] & tsd::OWN != 0 {
                break;
            }
            let ok = self.c_transmit_one(n);
            let t = &mut self.regs.tally;
            if ok {
                t.tx_ok = t.tx_ok.wrapping_add(1);
                self.regs.tsd[n] |= tsd::OWN | tsd::TOK;
                self.raise(int::TOK);
            } else {
                t.tx_err = t.tx_err.wrapping_add(1);
                t.tx_abort = t.tx_abort.wrapping_add(1);
                self.regs.tsd[n] |= tsd::OWN | tsd::TABT;
                self.raise(int::TER);
            }
            self.regs.tx_next = ((n + 1) % 4) as u8;
        }
    }

    fn c_transmit_one(&mut self, n: usize) -> bool {
        let size = (self.regs.tsd[n] & tsd::SIZE) as usize;
        if size < 12 {
            self.counters.tx_bad_descriptor += 1;
            return false;
        }
        if size > MAX_FRAME {
            self.counters.tx_oversize += 1;
            return false;
        }
        let mut buf = std::mem::take(&mut self.tx_buf);
        buf.clear();
        buf.resize(size, 0);
        let addr = u64::from(self.regs.tsad[n]);
        let ok = self.dma_read(addr, &mut buf, "transmit buffer");
        if ok {
            self.queue_frame(&buf, None);
        } else {
            self.counters.tx_dma_errors += 1;
        }
        self.tx_buf = buf;
        ok
    }

    /// Queues a finished frame for sending (or looping back).
    pub fn queue_frame(&mut self, frame: &[u8], vlan: Option<[u8; 2]>) -> bool {
        self.txq.loopback = self.regs.tcr & tcr::LOOPBACK == tcr::LOOPBACK;
        if self.txq.push(frame, vlan) {
            true
        } else {
            self.counters.tx_oversize += 1;
            false
        }
    }

    fn write_tsd(&mut self, n: usize, value: u32) {
        if self.regs.cplus {
            self.write_dtccr(n, value);
            return;
        }
        // Writing a descriptor clears its completion status; OWN as written (0 starts the transmission).
        self.regs.tsd[n] = value & (tsd::SIZE | tsd::OWN | tsd::ERTXTH);
        self.c_transmit();
    }
}

/// The bit of the 64-bit multicast filter for `dst`: the top six bits of the big-endian Ethernet CRC.
///
/// That CRC (shifted MSB first, initial value all ones, no final inversion) is the bit-reversal of the
/// complement of the usual reflected CRC-32, so crc32fast computes it.
pub fn multicast_hash(dst: &[u8; 6]) -> u8 {
    ((!crc32fast::hash(dst)).reverse_bits() >> 26) as u8
}
