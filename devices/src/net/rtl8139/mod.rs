//! The Realtek RTL8139C+ Fast Ethernet controller: PCI 10EC:8139 revision 0x20, QEMU's `rtl8139`.
//!
//! # What a guest sees
//!
//! - **PCI function** 10EC:8139 rev 0x20, class 0x020000, subsystem 1AF4:1100 (as QEMU), BAR0 = 256
//!   bytes of I/O ports and BAR1 = the same 256 bytes of registers as memory, INTA#. Revision 0x20 makes
//!   Linux bind `8139cp` (C+ mode; `8139too` declines revisions from 0x20 on); iPXE, DOS and Windows
//!   drivers use C mode. TCR carries the RTL8139C+ hardware version bits; a C-mode driver that does not
//!   know them (8139too's table lacks them) treats the chip as an RTL8139, which works because C mode is
//!   the common subset.
//! - **EEPROM** ([`eeprom`]): a 93C46 bit-banged through 9346CR, holding the MAC in words 7-9, loaded into
//!   IDR0-5 at power-on and by the 9346CR auto-load command. 9346CR = 0xC0 unlocks CONFIG0-4 and BMCR's
//!   speed/duplex bits.
//! - **Interrupts**: ISR bits are set by events and cleared by writing 1; INTx is high while ISR & IMR is
//!   non-zero (and PCI COMMAND.INTX_DISABLE is clear). ROK/TOK/RER/TER, RXOVW (C mode ring overflow; RDU
//!   in C+ mode: no receive descriptor), LinkChg, TDU and SWInt (C+), TimeOut (timer) and SERR (a DMA
//!   address outside guest RAM, also reported as a received master abort in PCI STATUS).
//! - **Timer**: TCTR counts at 33 MHz from its last write; when it reaches a non-zero TimerInt, ISR.TimeOut
//!   is set. The device implements [`Timed`] for that deadline.
//! - **PHY and link**: BMCR/BMSR/ANAR/ANLPAR/ANER at 0x62-0x6B, MSR and CSCR; link status follows
//!   [`NetBackend::link_up`], polled when the guest reads a link register and by
//!   [`Rtl8139::update_link`]; a change raises LinkChg and sets CSCR's link-change bit.
//! - **Receive filter**: broadcast (RCR.AB), multicast through the 64-bit MAR hash (RCR.AM), our own
//!   address (RCR.APM) and every unicast address (RCR.AAP).
//!
//! # C mode
//!
//! **Transmit**: four descriptors, each a start address (TSAD0-3) and a status register (TSD0-3). The
//! driver writes the frame length with OWN clear; the chip sends descriptors in order from the current
//! one, sets OWN and TOK and raises ISR.TOK. A length below 12 or above the largest frame, or a buffer
//! outside guest RAM, aborts the descriptor (TABT, ISR.TER) and is counted.
//!
//! **Receive**: a ring of 8, 16, 32 or 64 KiB at RBSTART (RCR.RBLEN). Each frame is stored at CBR as a
//! 4-byte header (status, and length including the 4-byte FCS), the frame padded to 60 bytes, and its
//! FCS; the next record starts 4-byte aligned. A record reaching the end of the ring wraps to its start,
//! or with RCR.WRAP continues past the end (the driver reserves room there, as the datasheet asks). The
//! driver reads up to its own offset and writes it to CAPR minus 16 (the register's well-known offset);
//! ChipCmd.BUFE is set while CBR equals CAPR + 16. A frame that does not fit between CBR and the read
//! offset is dropped: ISR.RXOVW, MPC + 1. Enabling the receiver resets both offsets.
//!
//! # C+ mode
//!
//! Descriptor rings for transmit (normal and high priority) and receive, IP/TCP/UDP checksum offload,
//! large send (TSO) and VLAN tag insertion and stripping, the tally counter dump: see [`cplus`] and
//! [`offload`].
//!
//! # Guest input
//!
//! Every guest value is checked before use: register offsets are decoded within the 256-byte window,
//! ring offsets are reduced modulo the ring, descriptor walks are bounded by the ring size, every DMA
//! goes through vm-memory's checked accessors with the full length, and frame lengths are checked
//! against the frame (see [`offload`] for CVE-2015-5165). What a guest cannot be allowed to do is
//! dropped and counted in [`Counters`].
//!
//! # Threads and locks
//!
//! The chip is one state machine behind one mutex, shared by the PCI function ([`Rtl8139::pci_function`],
//! locked by the PCI root for each access, then the chip), the receive path (the event thread calls
//! [`NetReceiver::receive`], which locks only the chip) and the timer loop. Frames to transmit are
//! queued inside the chip and handed to the back-end after the chip lock is released, so a back-end
//! may call `receive` from within `send`. INTx is driven with the chip lock held (chip → PIRQ router →
//! IRQ mux). The receive path allocates nothing: records are built in a buffer the chip keeps, and
//! written to guest memory with one bulk copy (two when the ring wraps).

mod chip;
pub mod cplus;
pub mod eeprom;
pub mod offload;
mod pci;
pub mod regs;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::irq::IrqLine;
use crate::memory::GuestMemory;
use crate::net::{NetBackend, NetReceiver};
use crate::pci::{ConfigSpace, PciError, SharedFunction};
use crate::timer::{Timed, TimerKick};

pub use chip::multicast_hash;
use chip::Chip;
pub use pci::Rtl8139Pci;
pub use regs::Regs;

/// Realtek's PCI vendor ID.
pub const VENDOR_ID: u16 = 0x10ec;
/// RTL8139.
pub const DEVICE_ID: u16 = 0x8139;
/// Revision 0x20: an RTL8139C+.
pub const REVISION: u8 = 0x20;
/// Network controller, Ethernet.
pub const CLASS: u32 = 0x02_00_00;
/// Subsystem vendor and ID (QEMU's).
pub const SUBSYSTEM: (u16, u16) = (0x1af4, 0x1100);
/// Size of the register window in BAR0 (I/O) and BAR1 (memory).
pub const REGS_LEN: u64 = 256;

/// What the device dropped or refused, and why; host-side statistics for tests and benchmarks (the
/// guest sees MPC, ISR bits and the tally counters instead).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Frames stored for the guest.
    pub rx_frames: u64,
    /// Bytes of those frames (as received, without padding or FCS).
    pub rx_bytes: u64,
    /// Dropped: receiver off, clock halted, bus mastering off or no C+ ring programmed.
    pub rx_dropped_disabled: u64,
    /// Dropped by the address filter.
    pub rx_dropped_filtered: u64,
    /// Dropped: no room in the C-mode ring, or no owned C+ descriptor.
    pub rx_dropped_ring_full: u64,
    /// Dropped: shorter than an Ethernet header or longer than the largest frame.
    pub rx_dropped_length: u64,
    /// Dropped: C+ descriptors with zero-length buffers, or a whole ring too small for the frame.
    pub rx_dropped_bad_descriptor: u64,
    /// Dropped: a receive DMA address outside guest memory.
    pub rx_dma_errors: u64,
    /// Frames handed to the back-end (or looped back).
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Frames the back-end refused.
    pub tx_backend_errors: u64,
    /// Frames not sent because the link was down.
    pub tx_dropped_link_down: u64,
    /// Frames longer than the wire takes.
    pub tx_oversize: u64,
    /// Offload frames whose IP/TCP/UDP headers contradict their lengths (CVE-2015-5165 style), large
    /// sends of non-TCP packets, an MSS of 0.
    pub tx_malformed: u64,
    /// Malformed descriptors: C-mode length below 12, C+ runs without FS or LS, frames of 0 or over 64 KiB.
    pub tx_bad_descriptor: u64,
    /// Transmit DMA (buffer or descriptor) outside guest memory.
    pub tx_dma_errors: u64,
}

/// A snapshot of the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rtl8139State {
    /// The chip's registers, EEPROM and timer.
    pub regs: Regs,
    /// PCI configuration space.
    pub config: ConfigSpace,
}

/// The chip with what it is connected to; the PCI function and the back-end hold it.
pub(crate) struct Nic {
    chip: Mutex<Chip>,
    backend: Arc<dyn NetBackend>,
    clock: Arc<dyn Clock>,
    kick: TimerKick,
    intx: Arc<dyn IrqLine>,
    /// `can_receive` said no to the back-end: tell it with `rx_ready` once there is room.
    rx_blocked: AtomicBool,
}

impl Nic {
    fn lock(&self) -> MutexGuard<'_, Chip> {
        self.chip.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A register read through either BAR.
    fn reg_read(&self, offset: u64, data: &mut [u8]) {
        let end = offset.saturating_add(data.len() as u64);
        let reads_link = [regs::MSR, regs::BMSR, regs::ANLPAR, regs::CSCR]
            .iter()
            .any(|&r| (offset..end).contains(&u64::from(r)));
        if reads_link {
            // Polled before the chip lock is taken: the back-end is never called under it.
            let up = self.backend.link_up();
            self.lock().set_link(up);
        }
        let now = self.clock.now_ns();
        self.lock().read(offset, data, now);
    }

    /// A register write through either BAR, then whatever it started.
    fn reg_write(&self, offset: u64, data: &[u8]) {
        let now = self.clock.now_ns();
        let fx = self.lock().write(offset, data, now);
        if fx.kick {
            self.kick.kick();
        }
        self.flush_tx();
        if fx.rx_space && self.rx_blocked.load(Ordering::Acquire) && self.lock().can_receive() {
            self.rx_blocked.store(false, Ordering::Release);
            self.backend.rx_ready();
        }
    }

    /// Sends what the transmitter queued, without the chip lock; continues a C+ transmit that stopped
    /// at its batch limit.
    fn flush_tx(&self) {
        loop {
            let mut queue = {
                let mut chip = self.lock();
                if chip.tx_resume {
                    chip.resume_transmit();
                }
                if chip.txq.is_empty() {
                    return;
                }
                std::mem::take(&mut chip.txq)
            };
            let mut done = Counters::default();
            if queue.loopback {
                for frame in queue.frames() {
                    self.receive(frame);
                    done.tx_frames += 1;
                    done.tx_bytes += frame.len() as u64;
                }
            } else {
                let up = self.backend.link_up();
                for frame in queue.frames() {
                    if !up {
                        done.tx_dropped_link_down += 1;
                    } else if self.backend.send(frame).is_ok() {
                        done.tx_frames += 1;
                        done.tx_bytes += frame.len() as u64;
                    } else {
                        done.tx_backend_errors += 1;
                    }
                }
            }
            queue.clear();
            let mut chip = self.lock();
            let c = &mut chip.counters;
            c.tx_frames += done.tx_frames;
            c.tx_bytes += done.tx_bytes;
            c.tx_dropped_link_down += done.tx_dropped_link_down;
            c.tx_backend_errors += done.tx_backend_errors;
            if chip.txq.is_empty() {
                // Keep the allocation for the next batch.
                chip.txq = queue;
            }
        }
    }
}

impl NetReceiver for Nic {
    fn receive(&self, frame: &[u8]) -> bool {
        self.lock().receive(frame)
    }

    fn can_receive(&self) -> bool {
        let ok = self.lock().can_receive();
        if !ok {
            self.rx_blocked.store(true, Ordering::Release);
        }
        ok
    }
}

/// The RTL8139 device: the PCI function to put on the bus, the receiver the back-end feeds, the timer.
pub struct Rtl8139 {
    nic: Arc<Nic>,
    pci: Arc<Mutex<Rtl8139Pci>>,
}

impl Rtl8139 {
    /// A powered-on RTL8139 with MAC `mac` (stored in its EEPROM), sending through `backend` (which it
    /// attaches itself to as receiver), doing DMA in `mem`, timing TCTR with `clock`. `intx` is its INTA#
    /// line (`Piix3Handle::intx_line(slot, 1)`) and `kick` wakes the timer loop when the guest programs
    /// the timer.
    pub fn new(
        mac: [u8; 6],
        backend: Arc<dyn NetBackend>,
        mem: GuestMemory,
        clock: Arc<dyn Clock>,
        intx: Arc<dyn IrqLine>,
        kick: TimerKick,
    ) -> Result<Arc<Rtl8139>, PciError> {
        let config = pci::config_space()?;
        let eeprom = eeprom::Eeprom::new(mac, SUBSYSTEM);
        let chip = Chip::new(eeprom, mem, Arc::clone(&intx), backend.link_up());
        let nic = Arc::new(Nic {
            chip: Mutex::new(chip),
            backend,
            clock,
            kick,
            intx,
            rx_blocked: AtomicBool::new(false),
        });
        let receiver: Weak<dyn NetReceiver> = Arc::downgrade(&nic) as Weak<Nic>;
        nic.backend.attach(receiver);
        let pci = Arc::new(Mutex::new(Rtl8139Pci {
            config,
            nic: Arc::clone(&nic),
        }));
        Ok(Arc::new(Rtl8139 { nic, pci }))
    }

    fn lock_pci(&self) -> MutexGuard<'_, Rtl8139Pci> {
        self.pci.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The PCI function, for [`crate::pci::PciRoot::add`].
    pub fn pci_function(&self) -> SharedFunction {
        self.pci.clone()
    }

    /// What was dropped or refused so far.
    pub fn counters(&self) -> Counters {
        self.nic.lock().counters
    }

    /// The MAC address the chip filters on now (IDR0-5).
    pub fn mac(&self) -> [u8; 6] {
        self.nic.lock().regs.idr
    }

    /// Polls the back-end's link state: PHY registers follow, a change raises LinkChg. Call it when the
    /// host side of the link may have changed.
    pub fn update_link(&self) {
        let up = self.nic.backend.link_up();
        self.nic.lock().set_link(up);
    }

    /// A platform reset: configuration space and chip to power-on values, INTx low.
    pub fn reset(&self) {
        let mut pci = self.lock_pci();
        pci.config.reset();
        self.nic.lock().hard_reset();
        drop(pci);
        self.nic.kick.kick();
    }

    /// The state to save.
    pub fn state(&self) -> Rtl8139State {
        let pci = self.lock_pci();
        let regs = self.nic.lock().regs.clone();
        Rtl8139State {
            regs,
            config: pci.config.clone(),
        }
    }

    /// Restores a saved state (values a chip never holds are repaired). The caller refreshes the PCI
    /// root's mappings afterwards ([`crate::pci::PciRoot::refresh`]), since the BARs may have moved.
    pub fn restore(&self, state: Rtl8139State) {
        let mut pci = self.lock_pci();
        pci.config = state.config;
        let bus_master = pci.config.bus_master_enabled();
        let intx_disabled = pci.config.intx_disabled();
        {
            let mut chip = self.nic.lock();
            chip.set_pci_command(bus_master, intx_disabled);
            chip.restore(state.regs);
        }
        drop(pci);
        self.nic.kick.kick();
    }
}

impl NetReceiver for Rtl8139 {
    fn receive(&self, frame: &[u8]) -> bool {
        self.nic.receive(frame)
    }

    fn can_receive(&self) -> bool {
        self.nic.can_receive()
    }
}

impl Timed for Rtl8139 {
    fn advance(&self, now_ns: u64) -> Option<u64> {
        let mut chip = self.nic.lock();
        chip.catch_up_timer(now_ns);
        chip.timer_deadline()
    }
}
