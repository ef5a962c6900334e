//! The NE2000: a National Semiconductor DP8390 network controller with 16 or 32 KiB of packet RAM that the
//! host reaches only through programmed I/O. Two boards are modelled: the ISA Novell NE2000 (`ne2k_isa`, I/O
//! 0x300 and IRQ 9 by default, see [`isa`]) and the PCI Realtek RTL8029AS (`ne2k_pci`, 10EC:8029, see
//! [`pci`]). Both decode 32 ports from their base:
//!
//! - **0x00-0x0F, the DP8390 registers** ([`regs`]), in four pages selected by CR.PS. Page 0 holds the ring,
//!   transmit, remote DMA, interrupt and configuration registers (several offsets read one register and write
//!   another), page 1 the station address PAR0-5, CURR and the multicast filter MAR0-7, page 2 reads back
//!   page 0's write-only registers. The RTL8029 answers its chip ID "PC" at page 0 offsets 0x0A/0x0B.
//! - **0x10-0x17, the data port**: the host end of the *remote DMA* channel. The guest loads RSAR (address)
//!   and RBCR (count), issues a remote read or write in CR, and then moves the bytes through the port; the
//!   channel raises ISR.RDC when the count runs out. DCR.WTS selects word transfers: then every access moves
//!   16-bit words (a 32-bit access, which the RTL8029 and Linux's ne2k-pci use, moves two), and a byte
//!   access is a word transfer of which the low lane is seen. A string (`rep insw/insl/outsw/outsl`, one
//!   exit) is moved under one lock, and its runs of whole words that are a plain copy of packet RAM as one
//!   copy, with the same effect as word by word.
//! - **0x18-0x1F, the reset port**: reading it resets the NIC (stopped, ISR.RST set); drivers then write the
//!   value back.
//!
//! # The NIC's memory
//!
//! The DP8390 addresses a 64 KiB local space: the station-address PROM at 0x0000 (the MAC, zeros and the
//! NE2000 signature 0x57 0x57 at bytes 14-15, each byte doubled across a word), the packet RAM from 0x4000
//! (to 0x7FFF on the NE2000, 0xBFFF on the RTL8029), and nothing elsewhere (reads all ones, writes dropped).
//! Frames to transmit are copied into RAM by remote writes and sent with CR.TXP from TPSR, TBCR bytes.
//! Received frames go into the *receive ring*: pages PSTART..PSTOP, written at CURR, each behind a 4-byte
//! header (receive status, next page, byte count including the 4-byte FCS, which is stored too); the ring
//! wraps at PSTOP, and the host reads frames up to CURR and writes BNRY to give pages back.
//!
//! # Defensive handling
//!
//! Every address the guest programs (RSAR, TPSR, the ring pages) is decoded against the PROM and the RAM
//! only; a remote DMA that runs off the RAM reads all ones and writes nothing, and the address wraps within
//! 16 bits. A ring whose pages are not all packet RAM, that is empty (PSTART >= PSTOP) or whose CURR lies
//! outside it is not written to at all: frames are dropped and counted. A frame that does not fit between
//! CURR and BNRY is dropped whole, with ISR.OVW and the missed-packet tally, and the frames already in the
//! ring are not touched. A transmit count of zero or above [`crate::net::MAX_FRAME`], or a buffer that leaves
//! the RAM, aborts the transmission (ISR.TXE, TSR.ABT). Back-end frames longer than `MAX_FRAME` or shorter
//! than an Ethernet header are dropped; shorter than 60 bytes are padded as the wire would have them.
//! [`Ne2kCounters`] counts every drop.
//!
//! # Interrupts and filters
//!
//! The interrupt output is the OR of ISR & IMR (PRX, PTX, RXE, TXE, OVW, CNT, RDC; RST is not maskable and
//! not an interrupt). RCR selects what the receiver takes: frames to PAR, broadcasts with AB, multicasts with
//! AM whose hash bit is set in MAR (the top six bits of the destination's CRC-32, see
//! [`dp8390::multicast_index`]), every unicast with PRO; MON stores nothing and counts frames as missed.
//! While TCR selects a loopback mode the receiver hears only the NIC's own frames (stored in the FIFO
//! register, not the ring), which is how Linux and iPXE keep the ring quiet while they set it up.
//!
//! Transmission is instantaneous: the frame goes to the back-end and PTX is raised in the same register
//! write. A back-end that refuses the frame (busy) loses it as a congested wire would, counted in
//! [`Ne2kCounters::tx_backend_errors`].
//!
//! # Design and locks
//!
//! [`dp8390::Dp8390`] is the plain state machine. [`Ne2000`] puts it behind a mutex, implements the port
//! layout as a [`BusDevice`] (the ISA card inserts it directly; the PCI function forwards its BAR0 to it)
//! and [`NetReceiver`] for the back-end. The interrupt line is driven with the state lock held (lock order:
//! PCI function → NIC state → interrupt line), so two vCPUs cannot reorder level changes. The back-end is
//! called with the state lock released: transmitted frames are handed over after the register write
//! returns, and [`NetBackend::rx_ready`] is signalled after a guest access that gave ring space back to a
//! receiver that had refused frames.

pub mod dp8390;
pub mod isa;
pub mod pci;
pub mod regs;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::bus::{read_each, write_each, BusDevice};
use crate::irq::IrqLine;
use crate::net::{NetBackend, NetReceiver};

pub use dp8390::{Model, Ne2kCounters, Ne2kState};
pub use isa::{ISA_DEFAULTS, ISA_DEFAULT_BASE, ISA_DEFAULT_IRQ};
pub use pci::{Ne2kPci, Ne2kPciState};

use dp8390::Dp8390;
use regs::port;

/// Number of ports an NE2000 decodes (ISA range length, PCI BAR0 size).
pub const NE2K_PORTS: u64 = port::COUNT;
/// Widest port access the NE2000 accepts (32-bit data-port transfers; register accesses wider than a byte
/// reach consecutive registers).
pub const NE2K_MAX_WIDTH: usize = 4;

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ne2kError {
    /// The snapshot is of the other board.
    #[error("snapshot is of a {snapshot:?}, device is a {device:?}")]
    Model {
        /// Board in the snapshot.
        snapshot: Model,
        /// Board of this device.
        device: Model,
    },
    /// The snapshot's packet RAM has the wrong size.
    #[error("snapshot has {snapshot} bytes of packet RAM, device has {device}")]
    RamSize {
        /// RAM size in the snapshot.
        snapshot: usize,
        /// RAM size of this device.
        device: usize,
    },
}

struct Locked {
    core: Dp8390,
    /// The level last driven on the interrupt line.
    irq_high: bool,
}

/// An NE2000 on its ports, connected to a back-end and an interrupt line. See the module documentation.
pub struct Ne2000 {
    state: Mutex<Locked>,
    backend: Arc<dyn NetBackend>,
    irq: Arc<dyn IrqLine>,
}

/// What an access leaves to do once the state lock is released.
#[derive(Default)]
struct After {
    transmit: Option<Vec<u8>>,
    rx_ready: bool,
}

impl Ne2000 {
    /// An ISA NE2000 (16 KiB) with station address `mac`, sending through `backend` and interrupting on
    /// `irq`. It attaches itself to `backend` as the receiver. Insert it on the port bus at its base with
    /// length [`NE2K_PORTS`] and max width [`NE2K_MAX_WIDTH`].
    pub fn new(mac: [u8; 6], backend: Arc<dyn NetBackend>, irq: Arc<dyn IrqLine>) -> Arc<Ne2000> {
        Ne2000::with_model(Model::Ne2000Isa, mac, backend, irq)
    }

    /// An NE2000 of `model`; attaches itself to `backend`.
    pub fn with_model(
        model: Model,
        mac: [u8; 6],
        backend: Arc<dyn NetBackend>,
        irq: Arc<dyn IrqLine>,
    ) -> Arc<Ne2000> {
        let nic = Arc::new(Ne2000 {
            state: Mutex::new(Locked {
                core: Dp8390::new(model, mac),
                irq_high: false,
            }),
            backend,
            irq,
        });
        let receiver: Weak<dyn NetReceiver> = Arc::downgrade(&nic) as Weak<dyn NetReceiver>;
        nic.backend.attach(receiver);
        nic
    }

    fn lock(&self) -> MutexGuard<'_, Locked> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state machine, then drives the interrupt line and notes whether the back-end may
    /// deliver again, all under the lock.
    fn access<R>(&self, f: impl FnOnce(&mut Dp8390, &mut After) -> R) -> (R, After) {
        let mut after = After::default();
        let mut st = self.lock();
        let result = f(&mut st.core, &mut after);
        self.sync_irq(&mut st, false);
        if st.core.rx_refused && st.core.can_receive() {
            st.core.rx_refused = false;
            after.rx_ready = true;
        }
        (result, after)
    }

    fn sync_irq(&self, st: &mut Locked, force: bool) {
        let level = st.core.irq_level();
        if force || level != st.irq_high {
            st.irq_high = level;
            self.irq.set_level(level);
        }
    }

    /// Hands over what the access left to do, without the state lock.
    fn finish(&self, after: After) {
        if let Some(frame) = after.transmit {
            if let Err(e) = self.backend.send(&frame) {
                self.lock().core.counters_mut().tx_backend_errors += 1;
                crate::rate_limited!(log::Level::Debug, "ne2k: transmitted frame lost: {e}");
            }
        }
        if after.rx_ready {
            self.backend.rx_ready();
        }
    }

    /// Platform reset: power-on registers, packet RAM cleared, interrupt low.
    pub fn reset(&self) {
        let ((), after) = self.access(|core, _| core.power_on());
        self.finish(after);
    }

    /// The board.
    pub fn model(&self) -> Model {
        self.lock().core.model()
    }

    /// Host-side statistics.
    pub fn counters(&self) -> Ne2kCounters {
        self.lock().core.counters().clone()
    }

    /// A snapshot of registers and packet RAM.
    pub fn state(&self) -> Ne2kState {
        self.lock().core.state()
    }

    /// Restores a snapshot taken from the same board, and re-drives the interrupt line.
    pub fn restore(&self, state: Ne2kState) -> Result<(), Ne2kError> {
        let (result, after) = {
            let mut after = After::default();
            let mut st = self.lock();
            let result = st.core.restore(state);
            self.sync_irq(&mut st, true);
            // A back-end may have been waiting for room before the restore.
            after.rx_ready = result.is_ok() && st.core.can_receive();
            st.core.rx_refused = false;
            (result, after)
        };
        self.finish(after);
        result
    }

    fn port_read(core: &mut Dp8390, offset: u64, data: &mut [u8]) {
        if offset < port::NIC_END {
            for (i, byte) in data.iter_mut().enumerate() {
                let reg = offset + i as u64;
                *byte = if reg < port::NIC_END {
                    core.read(reg as u8)
                } else {
                    0xff
                };
            }
        } else if offset < port::RESET {
            core.data_in(data);
        } else if offset < port::COUNT {
            core.board_reset();
            data.fill(0);
        } else {
            data.fill(0xff);
        }
    }

    fn port_write(core: &mut Dp8390, offset: u64, data: &[u8], after: &mut After) {
        if offset < port::NIC_END {
            for (i, &byte) in data.iter().enumerate() {
                let reg = offset + i as u64;
                if reg < port::NIC_END {
                    if let Some(frame) = core.write(reg as u8, byte) {
                        after.transmit = Some(frame);
                    }
                }
            }
        } else if offset < port::RESET {
            core.data_out(data);
        }
        // Writes to the reset port end the reset pulse on a real board; the reset has already happened here.
    }

    /// How much of a data-port string of `width`-byte elements to move next: the whole elements within
    /// `bulk` bytes that copy as one piece, or else one element. An element of one byte in word mode is a
    /// word transfer of which one lane is seen, never part of a plain copy, and `bulk_len` covers whole
    /// words only, so only even widths are joined.
    fn string_piece(bulk: usize, width: usize) -> usize {
        let joined = if width & 1 == 0 {
            bulk - bulk % width
        } else {
            0
        };
        joined.max(width)
    }

    fn is_data_port(offset: u64) -> bool {
        (port::DATA..port::RESET).contains(&offset)
    }
}

impl BusDevice for Ne2000 {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let ((), after) = self.access(|core, _| Ne2000::port_read(core, offset, data));
        self.finish(after);
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let ((), after) = self.access(|core, after| Ne2000::port_write(core, offset, data, after));
        self.finish(after);
    }

    fn read_repeated(&self, offset: u64, width: usize, data: &mut [u8]) {
        if !Ne2000::is_data_port(offset) {
            return read_each(self, offset, width, data);
        }
        // A whole `rep insw/insl` under one lock; runs of elements that are a plain copy of packet RAM move
        // in one piece, which has the same effect as moving them one by one.
        let ((), after) = self.access(|core, _| {
            let width = width.max(1);
            let whole = data.len() - data.len() % width;
            let mut rest = &mut data[..whole];
            while !rest.is_empty() {
                let n = Ne2000::string_piece(core.bulk_len(rest.len(), false), width);
                let (now, later) = rest.split_at_mut(n);
                core.data_in(now);
                rest = later;
            }
        });
        self.finish(after);
    }

    fn write_repeated(&self, offset: u64, width: usize, data: &[u8]) {
        if !Ne2000::is_data_port(offset) {
            return write_each(self, offset, width, data);
        }
        let ((), after) = self.access(|core, _| {
            let width = width.max(1);
            let whole = data.len() - data.len() % width;
            let mut rest = &data[..whole];
            while !rest.is_empty() {
                let n = Ne2000::string_piece(core.bulk_len(rest.len(), true), width);
                let (now, later) = rest.split_at(n);
                core.data_out(now);
                rest = later;
            }
        });
        self.finish(after);
    }
}

impl NetReceiver for Ne2000 {
    fn receive(&self, frame: &[u8]) -> bool {
        // A receive neither transmits nor gives ring space back, so there is nothing to hand over afterwards.
        let mut st = self.lock();
        let taken = st.core.receive(frame);
        self.sync_irq(&mut st, false);
        taken
    }

    fn can_receive(&self) -> bool {
        let mut st = self.lock();
        let can = st.core.can_receive();
        if !can {
            st.core.rx_refused = true;
        }
        can
    }
}
