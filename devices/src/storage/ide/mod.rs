//! An IDE channel of the PIIX3 (primary: 0x1F0–0x1F7 + 0x3F6, IRQ 14; secondary: 0x170–0x177 + 0x376,
//! IRQ 15) with up to two drives, an ATA disk or an ATAPI CD-ROM each, and its bus-master DMA engine.
//!
//! # Pieces and wiring
//! An [`IdeChannel`] holds the state of both drive positions and of the channel's bus master. Three thin
//! bus adapters expose it:
//! - [`IdeCommandBlock`], 8 ports at 0x1F0/0x170: the data port (16- and 32-bit PIO; byte accesses move one
//!   byte) and the 8-bit task-file registers (wider accesses to them are split into byte accesses, as on the
//!   ISA bus);
//! - [`IdeControlBlock`], 1 port at 0x3F6/0x376: alternate status (a status read without side effects) and
//!   device control (nIEN, SRST, HOB). Port 0x3F7 belongs to the floppy controller and is not claimed;
//! - [`BusMasterRegs`], the 8-byte BMIDE window the PIIX3 IDE function maps at BAR4 (primary) and BAR4+8
//!   (secondary): command (+0), status (+2), PRD table address (+4..+7).
//!
//! The PCI function (00:01.1, 8086:7010, class 0x010180, compatibility mode) is a thin wrapper over these and
//! is not part of this module.
//!
//! # Drive positions and the floating bus
//! A channel with no drive at all reads 0xFF from every register, as an unterminated ISA bus does; firmware
//! (SeaBIOS) and drivers take that as "no channel". On a channel with one drive, the absent position reads
//! 0 from status and task-file registers (the device register still reads back what was written), which makes
//! the 0x55/0xAA register echo test fail, so drivers see no device there (this is QEMU's behaviour). Commands
//! sent to an absent position are ignored.
//!
//! # Interrupts
//! Each drive has an interrupt request (INTRQ) that it raises at the points the ATA protocols define (a PIO
//! data-in block is ready, a PIO data-out block was taken, a command completed) and clears when the host reads
//! its status register or writes a new command. The channel's line is the selected drive's request gated by
//! nIEN; it is a level on the `IrqLine`, which the ISA PIC treats as an edge on IRQ 14/15, so a driver that
//! reads status to acknowledge each interrupt sees one edge per event, as on hardware. Reading alternate
//! status does not acknowledge. When the line rises the bus master's Interrupt status bit is set too, as the
//! PIIX does; drivers check it to tell a DMA completion from a shared-line interrupt.
//!
//! # Transfers and memory bounds
//! Everything is synchronous on the vCPU thread that touched the port: a command runs, and its data moves
//! between the back-end and a buffer of at most one DRQ block (≤ 8 KiB for ATA PIO, ≤ 64 KiB for ATAPI PIO)
//! or one PRD entry piece (≤ 64 KiB) at a time. A READ DMA EXT of 65536 sectors therefore moves 32 MiB but
//! never holds more than 64 KiB. DMA runs in full when both the drive has a DMA command and the bus master is
//! started (whichever comes second).
//!
//! # Errors the guest sees
//! - unknown or unsupported command, bad SET FEATURES/SET MULTIPLE parameter, READ/WRITE MULTIPLE without a
//!   multiple mode: status ERR, error ABRT;
//! - an LBA or count outside the disk (or a bad CHS address): ERR with IDNF ("ID not found"), which is what a
//!   real disk reports for a sector it does not have;
//! - a write command to a read-only image: ERR with ABRT before any data phase. ATA has no "write protected"
//!   error for fixed disks (WP belongs to the removable media status set we do not implement), so ABRT is the
//!   honest answer; a rate-limited warning names the cause on the host side;
//! - a back-end read error: ERR with UNC (uncorrectable data, what a bad sector gives); a back-end write or
//!   flush error: ERR with ABRT;
//! - ATAPI check conditions: ERR with the sense key in error bits 7:4 (sense in REQUEST SENSE).
//!
//! Not emulated: the task-file address registers are not updated with the last sector transferred; SMART,
//! security, HPA and power-management timers; qcow2 back-ends (see [`crate::block`]).

mod ata;
mod atapi;
pub mod bmdma;
mod channel;
pub mod drive;
pub mod identify;
mod mmc;
pub mod regs;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::block::BlockBackend;
use crate::bus::BusDevice;
use crate::irq::IrqLine;
use crate::legacy::LevelSync;
use crate::memory::GuestMemory;

use bmdma::BmState;
pub use drive::{DriveConfig, DriveIdentity, DriveKind};
use drive::{DriveMedia, DriveState};

pub(crate) use channel::ChannelCore;

/// Why a channel could not be built, or a medium change was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdeError {
    /// A disk position without an image.
    #[error("the disk at unit {0} has no image")]
    DiskWithoutImage(usize),
    /// An empty image for a disk.
    #[error("the disk image at unit {0} is empty")]
    EmptyDisk(usize),
    /// An identification string that is too long or not printable ASCII.
    #[error("drive {field} must be at most {max} printable ASCII characters")]
    BadIdentity {
        /// Which string.
        field: &'static str,
        /// Its maximum length.
        max: usize,
    },
    /// A unit number other than 0 (master) or 1 (slave).
    #[error("no drive position {0} on an IDE channel")]
    NoSuchUnit(usize),
    /// A medium operation on a position that holds no CD-ROM drive.
    #[error("unit {0} is not a CD-ROM drive")]
    NotCdrom(usize),
    /// The guest prevents medium removal; an eject request event was posted to it.
    #[error("the guest has locked the medium in unit {0}")]
    MediumLocked(usize),
    /// A saved state that does not match this channel's drives.
    #[error("saved IDE state does not match the configured drives")]
    StateMismatch,
}

/// The serialisable state of a channel: both drive positions, the selection and device control, and the
/// bus master's registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub(crate) drives: [DriveState; 2],
    /// The selected drive (device register bit 4).
    pub(crate) unit: u8,
    /// The last device control byte written.
    pub(crate) devctl: u8,
    pub(crate) bm: BmState,
    /// Which positions hold a drive of which kind, to check a restore against the configuration.
    pub(crate) kinds: [Option<DriveKind>; 2],
}

/// One IDE channel with its drives and bus-master engine.
pub struct IdeChannel {
    core: Mutex<ChannelCore>,
    irq: LevelSync,
}

impl IdeChannel {
    /// A channel with `drives[0]` as master and `drives[1]` as slave, interrupting on `irq` (IRQ 14 or 15),
    /// doing DMA into `mem`.
    pub fn new(
        drives: [Option<DriveConfig>; 2],
        irq: Arc<dyn IrqLine>,
        mem: GuestMemory,
    ) -> Result<Arc<Self>, IdeError> {
        let mut media: [Option<DriveMedia>; 2] = [None, None];
        for (unit, (slot, cfg)) in media.iter_mut().zip(drives).enumerate() {
            let Some(cfg) = cfg else { continue };
            cfg.identity.validate()?;
            if cfg.kind == DriveKind::Disk {
                let backend = cfg
                    .backend
                    .as_ref()
                    .ok_or(IdeError::DiskWithoutImage(unit))?;
                if backend.sectors() == 0 {
                    return Err(IdeError::EmptyDisk(unit));
                }
            }
            *slot = Some(DriveMedia {
                kind: cfg.kind,
                backend: cfg.backend,
                identity: cfg.identity,
            });
        }
        Ok(Arc::new(IdeChannel {
            core: Mutex::new(ChannelCore::new(media, mem)),
            irq: LevelSync::new(irq),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, ChannelCore> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the interrupt line in line with the state, after the state lock was dropped.
    fn sync_irq(&self) {
        self.irq.sync(|| self.lock().irq_level());
    }

    /// The platform reset: drives back to power-on (a CD keeps its medium and tray position), bus master idle.
    pub fn reset(&self) {
        self.lock().hard_reset();
        self.sync_irq();
    }

    /// Inserts `backend` as the medium of the CD-ROM drive at `unit` (replacing any medium), closing the
    /// tray. The guest sees a NEW MEDIA event and, on its next command, UNIT ATTENTION.
    pub fn insert_medium(
        &self,
        unit: usize,
        backend: Arc<dyn BlockBackend>,
    ) -> Result<(), IdeError> {
        self.lock().insert_medium(unit, backend)
    }

    /// Removes the CD-ROM medium at `unit`. Refused with [`IdeError::MediumLocked`] while the guest
    /// prevents removal, unless `force`; a refused request posts an eject request event the guest may act on
    /// (Linux and Windows unlock and eject when the user allows it).
    pub fn eject_medium(&self, unit: usize, force: bool) -> Result<(), IdeError> {
        self.lock().eject_medium(unit, force)
    }

    /// Whether the CD-ROM drive at `unit` has a medium (whatever its tray position).
    pub fn has_medium(&self, unit: usize) -> bool {
        self.lock().has_medium(unit)
    }

    /// Whether the guest opened the tray of the CD-ROM drive at `unit` (START STOP UNIT with LoEj).
    pub fn tray_open(&self, unit: usize) -> bool {
        self.lock().tray_open(unit)
    }

    /// The state, for saving.
    pub fn state(&self) -> ChannelState {
        self.lock().st.clone()
    }

    /// Restores a saved state; the configured drives must be of the same kinds as when it was saved.
    pub fn restore(&self, state: ChannelState) -> Result<(), IdeError> {
        self.lock().restore(state)?;
        self.irq.force(|| self.lock().irq_level());
        Ok(())
    }

    /// The adapter for the command block ports (8 ports; map with max width 4).
    pub fn command_block(self: &Arc<Self>) -> Arc<IdeCommandBlock> {
        Arc::new(IdeCommandBlock(Arc::clone(self)))
    }

    /// The adapter for the control block port (1 port; max width 1).
    pub fn control_block(self: &Arc<Self>) -> Arc<IdeControlBlock> {
        Arc::new(IdeControlBlock(Arc::clone(self)))
    }

    /// The adapter for the bus-master registers (8 bytes; max width 4).
    pub fn bus_master(self: &Arc<Self>) -> Arc<BusMasterRegs> {
        Arc::new(BusMasterRegs(Arc::clone(self)))
    }
}

/// The command block ports of an [`IdeChannel`] (0x1F0–0x1F7 or 0x170–0x177).
pub struct IdeCommandBlock(Arc<IdeChannel>);

impl BusDevice for IdeCommandBlock {
    fn read(&self, offset: u64, data: &mut [u8]) {
        {
            let mut core = self.0.lock();
            if offset == regs::port::DATA {
                core.read_data(data);
            } else {
                for (i, b) in data.iter_mut().enumerate() {
                    *b = core.read_reg(offset + i as u64);
                }
            }
        }
        self.0.sync_irq();
    }

    fn write(&self, offset: u64, data: &[u8]) {
        {
            let mut core = self.0.lock();
            if offset == regs::port::DATA {
                core.write_data(data);
            } else {
                for (i, &b) in data.iter().enumerate() {
                    core.write_reg(offset + i as u64, b);
                }
            }
        }
        self.0.sync_irq();
    }

    /// `rep insw`/`insd` on the data port under one lock: each element is still one data-port read, so block
    /// boundaries and status changes happen exactly as with single reads.
    fn read_repeated(&self, offset: u64, width: usize, data: &mut [u8]) {
        if offset != regs::port::DATA {
            return crate::bus::read_each(self, offset, width, data);
        }
        {
            let mut core = self.0.lock();
            for chunk in data.chunks_exact_mut(width.max(1)) {
                core.read_data(chunk);
            }
        }
        self.0.sync_irq();
    }

    /// `rep outsw`/`outsd` on the data port under one lock.
    fn write_repeated(&self, offset: u64, width: usize, data: &[u8]) {
        if offset != regs::port::DATA {
            return crate::bus::write_each(self, offset, width, data);
        }
        {
            let mut core = self.0.lock();
            for chunk in data.chunks_exact(width.max(1)) {
                core.write_data(chunk);
            }
        }
        self.0.sync_irq();
    }
}

/// The control block port of an [`IdeChannel`] (0x3F6 or 0x376).
pub struct IdeControlBlock(Arc<IdeChannel>);

impl BusDevice for IdeControlBlock {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        let value = self.0.lock().alt_status();
        data.fill(0xff);
        if let Some(b) = data.first_mut() {
            *b = value;
        }
    }

    fn write(&self, _offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        self.0.lock().write_devctl(value);
        self.0.sync_irq();
    }
}

/// The bus-master registers of an [`IdeChannel`] (BAR4 + 0 or + 8 of the PIIX3 IDE function).
pub struct BusMasterRegs(Arc<IdeChannel>);

impl BusDevice for BusMasterRegs {
    fn read(&self, offset: u64, data: &mut [u8]) {
        let core = self.0.lock();
        for (i, b) in data.iter_mut().enumerate() {
            *b = core.st.bm.read(offset + i as u64);
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        {
            let mut core = self.0.lock();
            for (i, &b) in data.iter().enumerate() {
                core.write_bm(offset + i as u64, b);
            }
        }
        self.0.sync_irq();
    }
}
