//! C+ mode: descriptor rings in guest memory, the tally counter dump, and the glue to the offloads.
//!
//! A descriptor is 16 bytes: opts1 (OWN, EOR, FS, LS, flags, length), opts2 (VLAN), and a 64-bit
//! buffer address. A ring starts at TNPDS/THPDS (transmit, normal and high priority) or RDSAR
//! (receive) and ends at the descriptor with EOR, or after [`RING_MAX`] descriptors, whichever comes
//! first. A ring address of 0 means "not set up yet" (Linux enables the receiver before it programs
//! RDSAR), so nothing is read or written there.
//!
//! **Transmit.** A TPPOLL write makes the chip walk the polled ring from its current descriptor. A frame
//! is the run of owned descriptors from one with FS to one with LS; it is taken only once all of it is
//! owned by the chip (Linux hands the first descriptor over last). Its fragments are gathered (at most
//! 64 KiB), the offloads of the first descriptor applied ([`super::offload`]), the VLAN tag of opts2
//! inserted, and every descriptor is given back with OWN clear (and TES set if the frame was refused).
//! Malformed runs (no FS, a new FS before LS, no LS in a whole ring, zero or oversized total length) are
//! given back with TES and counted, so a confused guest cannot stall or crash the ring.
//!
//! **Receive.** A received frame (VLAN tag stripped into opts2 if RxVlanOn, padded, with its FCS) is
//! scattered over as many owned descriptors as its length needs, FS on the first and LS on the last;
//! if they are not all owned the frame is dropped with RDU (ISR bit 4) and counted in MPC.

use super::chip::{AddressKind, Chip, TXQ_BATCH};
use super::offload::{self, TxFault};
use super::regs::{cpcr, cr, int, tppoll};
use crate::net::MIN_FRAME;

/// The most descriptors a ring holds.
pub const RING_MAX: usize = 64;
/// Size of a descriptor.
const DESC_SIZE: u64 = 16;
/// The most bytes one transmitted frame (or large-send block) gathers from its fragments.
const TX_GATHER_MAX: usize = 64 << 10;

/// Descriptor bits.
pub mod desc {
    /// Owned by the chip.
    pub const OWN: u32 = 1 << 31;
    /// End of ring.
    pub const EOR: u32 = 1 << 30;
    /// First segment of a frame.
    pub const FS: u32 = 1 << 29;
    /// Last segment of a frame.
    pub const LS: u32 = 1 << 28;
    /// Transmit: error summary, set when a frame was not sent.
    pub const TX_ERROR: u32 = 1 << 23;
    /// Transmit: FIFO underrun.
    pub const TX_UNDERRUN: u32 = 1 << 25;
    /// Transmit buffer length.
    pub const TX_LEN: u32 = 0xffff;
    /// Transmit opts2: insert the VLAN tag in bits 15-0 (network byte order in memory).
    pub const TX_TAG: u32 = 1 << 17;
    /// Receive buffer size (from the driver) and received length (from the chip).
    pub const RX_LEN: u32 = 0x1fff;
    /// Receive: multicast.
    pub const RX_MAR: u32 = 1 << 26;
    /// Receive: physical address match.
    pub const RX_PAM: u32 = 1 << 25;
    /// Receive: broadcast.
    pub const RX_BAR: u32 = 1 << 24;
    /// Receive opts2: a VLAN tag was stripped into bits 15-0.
    pub const RX_TAGGED: u32 = 1 << 16;
}

/// A descriptor as read from the ring, with its own address.
#[derive(Debug, Clone, Copy, Default)]
struct Desc {
    at: u64,
    opts1: u32,
    opts2: u32,
    addr: u64,
}

/// The outcome of looking at a transmit ring once.
enum TxStep {
    /// The current descriptor is the driver's: nothing to send.
    Idle,
    /// A frame is only partly handed over, or the ring is unreadable: try again at the next poll.
    Wait,
    /// A frame (or a malformed run) was consumed.
    Done { ok: bool },
}

fn next_index(index: u8, opts1: u32) -> u8 {
    if opts1 & desc::EOR != 0 || usize::from(index) + 1 >= RING_MAX {
        0
    } else {
        index + 1
    }
}

impl Chip {
    fn ring_entry(base: u64, index: u8) -> Option<u64> {
        base.checked_add(u64::from(index) * DESC_SIZE)
    }

    fn read_desc(&mut self, at: u64) -> Option<Desc> {
        let mut b = [0u8; 16];
        if !self.dma_read(at, &mut b, "descriptor") {
            return None;
        }
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some(Desc {
            at,
            opts1: word(0),
            opts2: word(4),
            addr: u64::from(word(8)) | (u64::from(word(12)) << 32),
        })
    }

    /// DTCCR (TSD0-3 once CpCmd was written): bit 3 of the low dword starts a dump of the tally
    /// counters to the 64-byte aligned address, and clears when it is done.
    pub fn write_dtccr(&mut self, n: usize, value: u32) {
        if let Some(t) = self.regs.tsd.get_mut(n) {
            *t = value;
        }
        if n == 0 && value & 0x8 != 0 {
            let addr = (u64::from(self.regs.tsd[1]) << 32) | u64::from(value & !0x3f);
            let dump = self.regs.tally.to_bytes();
            self.dma_write(addr, &dump, "tally counter dump");
            self.regs.tsd[0] &= !0x8;
        }
    }

    /// A TPPOLL write.
    pub fn write_tppoll(&mut self, value: u8) {
        if value & tppoll::FSW_INT != 0 {
            self.raise(int::SW_INT);
        }
        if value & tppoll::HPQ != 0 {
            self.cplus_transmit(1);
        }
        if value & tppoll::NPQ != 0 {
            self.cplus_transmit(0);
        }
    }

    /// Continues transmitting after the queued frames were sent ([`Chip::tx_resume`]).
    pub fn resume_transmit(&mut self) {
        self.tx_resume = false;
        self.cplus_transmit(1);
        self.cplus_transmit(0);
    }

    fn tx_ring_base(&self, queue: usize) -> u64 {
        let t = &self.regs.tsad;
        let (lo, hi) = if queue == 0 {
            (t[0], t[1])
        } else {
            (t[2], t[3])
        };
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// Sends frames from transmit ring `queue` (0 normal, 1 high priority) until none is ready, or
    /// until a batch is queued (then [`Chip::tx_resume`] is set).
    pub fn cplus_transmit(&mut self, queue: usize) {
        let active = self.regs.cr & cr::TE != 0 && self.regs.cpcr & cpcr::TX_ON != 0;
        let base = self.tx_ring_base(queue);
        if !active || base == 0 {
            return;
        }
        let (mut sent, mut failed, mut first) = (false, false, true);
        // Each step consumes at least one descriptor, so a ring's worth of steps covers every frame.
        for _ in 0..RING_MAX {
            if self.txq.bytes() >= TXQ_BATCH {
                self.tx_resume = true;
                break;
            }
            match self.cplus_tx_step(queue, base) {
                TxStep::Idle => {
                    if first {
                        self.raise(int::TDU);
                    }
                    break;
                }
                TxStep::Wait => break,
                TxStep::Done { ok } => {
                    sent |= ok;
                    failed |= !ok;
                }
            }
            first = false;
        }
        let bits = if sent { int::TOK } else { 0 } | if failed { int::TER } else { 0 };
        self.raise(bits);
    }

    fn cplus_tx_step(&mut self, queue: usize, base: u64) -> TxStep {
        let mut descs = [Desc::default(); RING_MAX];
        let mut count = 0;
        let mut index = self.regs.cp_tx_next[queue];
        let mut fault: Option<&'static str> = None;
        let mut total = 0usize;
        loop {
            let Some(at) = Self::ring_entry(base, index) else {
                self.dma_fault("transmit ring address", base);
                return TxStep::Wait;
            };
            let Some(d) = self.read_desc(at) else {
                self.counters.tx_dma_errors += 1;
                return TxStep::Wait;
            };
            if d.opts1 & desc::OWN == 0 {
                return if count == 0 {
                    TxStep::Idle
                } else {
                    TxStep::Wait
                };
            }
            if count == 0 && d.opts1 & desc::FS == 0 {
                fault = Some("transmit descriptor without a first segment");
            } else if count > 0 && d.opts1 & desc::FS != 0 {
                // A new frame starts before this one ended: give back what came before it.
                fault = Some("transmit frame without a last segment");
                break;
            }
            descs[count] = d;
            count += 1;
            total += (d.opts1 & desc::TX_LEN) as usize;
            index = next_index(index, d.opts1);
            if d.opts1 & desc::LS != 0 {
                break;
            }
            if count == RING_MAX {
                fault = Some("transmit ring without a last segment");
                break;
            }
        }
        self.regs.cp_tx_next[queue] = index;
        let descs = &descs[..count];
        if fault.is_none() && (total == 0 || total > TX_GATHER_MAX) {
            fault = Some("transmit frame length 0 or above 64 KiB");
        }
        let ok = match fault {
            Some(why) => {
                crate::rate_limited!(log::Level::Warn, "rtl8139: {}", why);
                self.counters.tx_bad_descriptor += 1;
                false
            }
            None => self.cplus_send(descs, total),
        };
        let t = &mut self.regs.tally;
        if ok {
            t.tx_ok = t.tx_ok.wrapping_add(1);
        } else {
            t.tx_err = t.tx_err.wrapping_add(1);
            t.tx_abort = t.tx_abort.wrapping_add(1);
        }
        for d in descs {
            let mut opts1 = d.opts1 & !(desc::OWN | desc::TX_ERROR | desc::TX_UNDERRUN);
            if !ok {
                opts1 |= desc::TX_ERROR;
            }
            self.dma_write(d.at, &opts1.to_le_bytes(), "descriptor");
        }
        TxStep::Done { ok }
    }

    /// Gathers a frame's fragments and queues it through the offloads.
    fn cplus_send(&mut self, descs: &[Desc], total: usize) -> bool {
        let mut buf = std::mem::take(&mut self.tx_buf);
        buf.clear();
        buf.resize(total, 0);
        let mut at = 0;
        let mut ok = true;
        for d in descs {
            let len = (d.opts1 & desc::TX_LEN) as usize;
            if !self.dma_read(d.addr, &mut buf[at..at + len], "transmit buffer") {
                self.counters.tx_dma_errors += 1;
                ok = false;
                break;
            }
            at += len;
        }
        if ok {
            let (opts1, opts2) = (descs[0].opts1, descs[0].opts2);
            let vlan = (opts2 & desc::TX_TAG != 0).then_some([opts2 as u8, (opts2 >> 8) as u8]);
            self.txq.loopback =
                self.regs.tcr & super::regs::tcr::LOOPBACK == super::regs::tcr::LOOPBACK;
            match offload::transmit(&mut buf, opts1, vlan, &mut self.seg_buf, &mut self.txq) {
                Ok(_) => {}
                Err(TxFault::Oversize) => {
                    self.counters.tx_oversize += 1;
                    ok = false;
                }
                Err(TxFault::Malformed(why)) => {
                    crate::rate_limited!(log::Level::Warn, "rtl8139: frame not sent: {}", why);
                    self.counters.tx_malformed += 1;
                    ok = false;
                }
            }
        }
        // Keep a large-send sized buffer only while it is in use.
        if buf.capacity() > 4 * crate::net::MAX_FRAME {
            buf = Vec::with_capacity(crate::net::MAX_FRAME);
        }
        self.tx_buf = buf;
        ok
    }

    /// Whether the current receive descriptor is the chip's (a peek: no SERR if unreadable).
    pub fn cplus_rx_descriptor_ready(&self) -> bool {
        let Some(at) = Self::ring_entry(self.regs.rdsar, self.regs.cp_rx_next) else {
            return true;
        };
        let mut b = [0u8; 4];
        use crate::memory::{Bytes, GuestAddress};
        match self.mem.read_slice(&mut b, GuestAddress(at)) {
            Ok(()) => u32::from_le_bytes(b) & desc::OWN != 0,
            // Let `receive` find out and report it.
            Err(_) => true,
        }
    }

    /// C+ receive. See the module documentation.
    pub fn receive_cplus(&mut self, frame: &[u8], kind: AddressKind) -> bool {
        let mut buf = std::mem::take(&mut self.rx_buf);
        let ok = self.receive_cplus_into(frame, kind, &mut buf);
        self.rx_buf = buf;
        ok
    }

    fn receive_cplus_into(&mut self, frame: &[u8], kind: AddressKind, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let strip = self.regs.cpcr & cpcr::RX_VLAN != 0
            && frame.len() >= 18
            && frame[12..14] == [0x81, 0x00];
        let mut opts2 = 0;
        if strip {
            opts2 = desc::RX_TAGGED | u32::from(frame[14]) | (u32::from(frame[15]) << 8);
            buf.extend_from_slice(&frame[..12]);
            buf.extend_from_slice(&frame[16..]);
        } else {
            buf.extend_from_slice(frame);
        }
        if buf.len() < MIN_FRAME {
            buf.resize(MIN_FRAME, 0);
        }
        let csum = if self.regs.cpcr & cpcr::RX_CHKSUM != 0 {
            offload::rx_checksum_status(buf)
        } else {
            0
        };
        let fcs = crc32fast::hash(buf);
        buf.extend_from_slice(&fcs.to_le_bytes());

        // Find owned descriptors enough for the whole record.
        let mut descs = [Desc::default(); RING_MAX];
        let (mut count, mut room) = (0, 0usize);
        let mut index = self.regs.cp_rx_next;
        while room < buf.len() {
            if count == RING_MAX {
                return self.rx_bad_descriptor("receive ring too small for a frame");
            }
            let Some(at) = Self::ring_entry(self.regs.rdsar, index) else {
                self.dma_fault("receive ring address", self.regs.rdsar);
                self.counters.rx_dma_errors += 1;
                return false;
            };
            let Some(d) = self.read_desc(at) else {
                self.counters.rx_dma_errors += 1;
                return false;
            };
            if d.opts1 & desc::OWN == 0 {
                self.counters.rx_dropped_ring_full += 1;
                self.missed(int::RXOVW);
                return false;
            }
            let size = (d.opts1 & desc::RX_LEN) as usize;
            if size == 0 {
                return self.rx_bad_descriptor("receive descriptor with a zero-length buffer");
            }
            descs[count] = d;
            count += 1;
            room += size;
            index = next_index(index, d.opts1);
        }

        // Data first, then the descriptors, the first one last (the driver polls it).
        let mut at = 0;
        for d in &descs[..count] {
            let len = ((d.opts1 & desc::RX_LEN) as usize).min(buf.len() - at);
            if !self.dma_write(d.addr, &buf[at..at + len], "receive buffer") {
                self.counters.rx_dma_errors += 1;
                return false;
            }
            at += len;
        }
        let kind_bits = match kind {
            AddressKind::Broadcast => desc::RX_BAR,
            AddressKind::Multicast => desc::RX_MAR,
            AddressKind::Physical => desc::RX_PAM,
            AddressKind::Other => 0,
        };
        let mut at = 0;
        let mut updates = [(0u64, 0u32, 0u32); RING_MAX];
        for (i, d) in descs[..count].iter().enumerate() {
            let len = ((d.opts1 & desc::RX_LEN) as usize).min(buf.len() - at);
            at += len;
            let mut opts1 = (d.opts1 & desc::EOR) | kind_bits | csum;
            if i == 0 {
                opts1 |= desc::FS;
            }
            if i + 1 == count {
                opts1 |= desc::LS | buf.len() as u32;
            } else {
                opts1 |= len as u32;
            }
            updates[i] = (d.at, opts1, opts2);
        }
        for &(at, opts1, opts2) in updates[..count].iter().rev() {
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&opts1.to_le_bytes());
            b[4..].copy_from_slice(&opts2.to_le_bytes());
            // opts2 before opts1: the driver must not see OWN clear with a stale opts2.
            if !self.dma_write(at + 4, &b[4..], "descriptor")
                || !self.dma_write(at, &b[..4], "descriptor")
            {
                self.counters.rx_dma_errors += 1;
                return false;
            }
        }
        self.regs.cp_rx_next = index;
        true
    }

    fn rx_bad_descriptor(&mut self, why: &str) -> bool {
        crate::rate_limited!(log::Level::Warn, "rtl8139: frame dropped: {}", why);
        self.counters.rx_dropped_bad_descriptor += 1;
        self.missed(int::RXOVW);
        false
    }
}
