//! One drive position on an IDE channel: its task-file copy, its transfer in progress, its settings, and
//! (outside the serialisable state) the back-end behind it.
//!
//! Both devices on a cable latch every task-file write, and each answers reads only while selected, so each
//! drive keeps its own [`Taskfile`]. That is what lets a master disk show the ATA signature (0/0) and a slave
//! CD the ATAPI one (0x14/0xEB) after the same software reset.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::regs::status;
use super::IdeError;
use crate::block::{BlockBackend, BlockError};

/// Bytes per ATA sector.
pub const ATA_SECTOR: u64 = 512;
/// Bytes per CD-ROM (mode 1) block.
pub const CD_BLOCK: u64 = 2048;
/// The largest READ/WRITE MULTIPLE block we advertise (IDENTIFY word 47), in sectors.
pub const MAX_MULTIPLE: u8 = 16;
/// The most bytes one step of a transfer moves through a buffer: one PIO DRQ block or one piece of a PRD
/// entry. This is what bounds per-command memory whatever sector count the guest asks for.
pub const CHUNK: usize = 64 * 1024;

/// The kind of device at a drive position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriveKind {
    /// An ATA hard disk.
    Disk,
    /// An ATAPI CD/DVD-ROM drive.
    Cdrom,
}

/// The identification strings a drive reports (IDENTIFY words 10–19, 23–26, 27–46; INQUIRY for a CD).
///
/// The defaults are the strings qemu-dm's IDE emulation reported, so that guests installed under Xen see
/// the same device identity after moving to this device model (Windows keys its device instances on them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveIdentity {
    /// Serial number, at most 20 ASCII characters.
    pub serial: String,
    /// Model, at most 40 ASCII characters.
    pub model: String,
    /// Firmware revision, at most 8 ASCII characters.
    pub firmware: String,
}

impl DriveIdentity {
    /// The default identity of a `kind` drive at overall position `index` (0 = primary master … 3).
    pub fn default_for(kind: DriveKind, index: usize) -> Self {
        DriveIdentity {
            serial: format!("QM{:05}", index + 1),
            model: match kind {
                DriveKind::Disk => "QEMU HARDDISK".into(),
                DriveKind::Cdrom => "QEMU DVD-ROM".into(),
            },
            firmware: "0.10.2".into(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), IdeError> {
        for (field, value, max) in [
            ("serial", &self.serial, 20),
            ("model", &self.model, 40),
            ("firmware", &self.firmware, 8),
        ] {
            if value.len() > max || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(IdeError::BadIdentity { field, max });
            }
        }
        Ok(())
    }
}

/// What the configuration puts at a drive position.
#[derive(Clone)]
pub struct DriveConfig {
    /// Disk or CD-ROM.
    pub kind: DriveKind,
    /// The image: required for a disk; a CD-ROM may start empty.
    pub backend: Option<Arc<dyn BlockBackend>>,
    /// Identification strings.
    pub identity: DriveIdentity,
}

/// The non-serialisable side of a present drive: its kind, medium and strings.
pub(crate) struct DriveMedia {
    pub(crate) kind: DriveKind,
    pub(crate) backend: Option<Arc<dyn BlockBackend>>,
    pub(crate) identity: DriveIdentity,
}

impl DriveMedia {
    pub(crate) fn is_cd(&self) -> bool {
        self.kind == DriveKind::Cdrom
    }
}

/// A drive's copy of the task-file registers. Each LBA48 register is a two-deep FIFO: a write pushes the
/// current value into the `hob_` copy (read back with device control HOB set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taskfile {
    pub(crate) feature: u8,
    pub(crate) hob_feature: u8,
    pub(crate) nsector: u8,
    pub(crate) hob_nsector: u8,
    pub(crate) lbal: u8,
    pub(crate) hob_lbal: u8,
    pub(crate) lbam: u8,
    pub(crate) hob_lbam: u8,
    pub(crate) lbah: u8,
    pub(crate) hob_lbah: u8,
    pub(crate) device: u8,
}

impl Taskfile {
    /// The 48-bit LBA of an EXT command.
    pub(crate) fn lba48(&self) -> u64 {
        u64::from(self.hob_lbah) << 40
            | u64::from(self.hob_lbam) << 32
            | u64::from(self.hob_lbal) << 24
            | u64::from(self.lbah) << 16
            | u64::from(self.lbam) << 8
            | u64::from(self.lbal)
    }

    /// The sector count of an EXT command (0 means 65536).
    pub(crate) fn count48(&self) -> u64 {
        match u64::from(self.hob_nsector) << 8 | u64::from(self.nsector) {
            0 => 65536,
            n => n,
        }
    }

    /// The sector count of a 28-bit command (0 means 256).
    pub(crate) fn count28(&self) -> u64 {
        match self.nsector {
            0 => 256,
            n => u64::from(n),
        }
    }

    /// The ATAPI byte count limit (LBA mid/high).
    pub(crate) fn byte_count(&self) -> u16 {
        u16::from(self.lbah) << 8 | u16::from(self.lbam)
    }

    /// Puts an ATAPI byte count in LBA mid/high.
    pub(crate) fn set_byte_count(&mut self, n: u16) {
        self.lbam = n as u8;
        self.lbah = (n >> 8) as u8;
    }

    /// Loads the signature a device shows after reset or diagnostics.
    pub(crate) fn set_signature(&mut self, kind: DriveKind) {
        self.nsector = 1;
        self.lbal = 1;
        let (mid, high) = match kind {
            DriveKind::Disk => (0, 0),
            DriveKind::Cdrom => (0x14, 0xeb),
        };
        self.lbam = mid;
        self.lbah = high;
        self.hob_nsector = 0;
        self.hob_lbal = 0;
        self.hob_lbam = 0;
        self.hob_lbah = 0;
    }
}

/// Where the data of a device-to-host transfer comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// Bytes of the medium: the next `remaining` bytes from `offset`.
    Medium {
        /// Next byte of the image.
        offset: u64,
        /// Bytes still to send.
        remaining: u64,
    },
    /// A reply built by the device (IDENTIFY data, an ATAPI response).
    Bytes {
        /// The whole reply.
        data: Vec<u8>,
        /// Bytes already sent.
        pos: usize,
    },
}

impl Source {
    /// Bytes still to send.
    pub(crate) fn remaining(&self) -> u64 {
        match self {
            Source::Medium { remaining, .. } => *remaining,
            Source::Bytes { data, pos } => data.len().saturating_sub(*pos) as u64,
        }
    }

    /// Takes the next `n` bytes (at most `remaining()`; callers bound `n` by [`CHUNK`]).
    pub(crate) fn take(
        &mut self,
        n: usize,
        backend: Option<&Arc<dyn BlockBackend>>,
    ) -> Result<Vec<u8>, BlockError> {
        let n = n.min(self.remaining() as usize);
        match self {
            Source::Medium { offset, remaining } => {
                let backend = backend.ok_or(BlockError::OutOfRange {
                    offset: *offset,
                    len: n as u64,
                    size: 0,
                })?;
                let mut buf = vec![0u8; n];
                backend.read_at(*offset, &mut buf)?;
                *offset += n as u64;
                *remaining -= n as u64;
                Ok(buf)
            }
            Source::Bytes { data, pos } => {
                let start = (*pos).min(data.len());
                let end = start.saturating_add(n).min(data.len());
                *pos = end;
                Ok(data[start..end].to_vec())
            }
        }
    }
}

/// Where a host-to-device data transfer goes: the next `remaining` bytes of the medium from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sink {
    /// Next byte of the image.
    pub(crate) offset: u64,
    /// Bytes still to receive.
    pub(crate) remaining: u64,
}

/// The protocol a transfer belongs to, which decides how DRQ blocks are announced and how it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proto {
    /// An ATA data command: `block` bytes per DRQ block (512 or the multiple count × 512).
    Ata {
        /// Bytes per DRQ block.
        block: u32,
    },
    /// An ATAPI packet command's data phase: DRQ blocks up to the host's byte count `limit`.
    Atapi {
        /// Byte count limit from LBA mid/high at PACKET time (already made even and non-zero).
        limit: u16,
    },
}

/// A transfer in progress on a drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transfer {
    /// Nothing in progress.
    #[default]
    Idle,
    /// PIO device-to-host: the host reads `block[pos..]`; then the next block comes from `rest`.
    PioIn {
        /// The current DRQ block.
        block: Vec<u8>,
        /// Bytes of `block` already read.
        pos: usize,
        /// The data after this block.
        rest: Source,
        /// How blocks are sized and announced.
        proto: Proto,
    },
    /// PIO host-to-device of a disk write: the host fills `block`; it goes to the medium when full.
    PioOut {
        /// The current DRQ block.
        block: Vec<u8>,
        /// Bytes of `block` already written by the host.
        pos: usize,
        /// Where `block` goes, and what follows it.
        sink: Sink,
        /// Bytes per DRQ block.
        block_size: u32,
    },
    /// An ATAPI command packet being written (12 bytes).
    Packet {
        /// Packet bytes received so far.
        cdb: Vec<u8>,
        /// Whether the host asked for DMA (features bit 0).
        dma: bool,
    },
    /// A DMA transfer waiting for (or run by) the bus master.
    Dma(DmaTransfer),
}

/// A DMA transfer of a drive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DmaTransfer {
    /// Device to memory.
    In {
        /// The data.
        source: Source,
        /// Whether it is an ATAPI data phase (decides the completion protocol).
        atapi: bool,
    },
    /// Memory to device (disk writes).
    Out(Sink),
}

impl DmaTransfer {
    /// Bytes still to move.
    pub(crate) fn remaining(&self) -> u64 {
        match self {
            DmaTransfer::In { source, .. } => source.remaining(),
            DmaTransfer::Out(sink) => sink.remaining,
        }
    }
}

/// A pending media event for GET EVENT STATUS NOTIFICATION (media class), MMC event codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaEvent {
    /// Nothing to report.
    #[default]
    None = 0,
    /// The user (toolstack) asked for an eject while the guest prevents removal.
    EjectRequest = 1,
    /// A medium was inserted.
    NewMedia = 2,
    /// The medium was removed.
    MediaRemoval = 3,
}

/// Sense data of an ATAPI device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
}

/// ATAPI-specific state of a CD-ROM drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AtapiState {
    /// The sense data REQUEST SENSE returns next.
    pub(crate) sense: Sense,
    /// A medium change happened that the guest has not yet been told about (UNIT ATTENTION pending).
    pub(crate) unit_attention: bool,
    /// The guest holds PREVENT MEDIUM REMOVAL.
    pub(crate) locked: bool,
    /// The tray is open (guest START STOP UNIT eject): the medium stays attached but cannot be read.
    pub(crate) tray_open: bool,
    /// The event GET EVENT STATUS NOTIFICATION reports next.
    pub(crate) event: MediaEvent,
}

/// The serialisable state of one drive position (present or not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveState {
    pub(crate) tf: Taskfile,
    pub(crate) status: u8,
    pub(crate) error: u8,
    /// The drive's interrupt request (INTRQ before nIEN gating).
    pub(crate) intrq: bool,
    pub(crate) xfer: Transfer,
    /// Sectors per READ/WRITE MULTIPLE block; 0 = multiple mode disabled.
    pub(crate) mult: u8,
    /// Current CHS translation (INITIALIZE DEVICE PARAMETERS): heads and sectors per track.
    pub(crate) cur_heads: u8,
    pub(crate) cur_spt: u8,
    pub(crate) write_cache: bool,
    /// The transfer mode last set with SET FEATURES (its sector-count encoding).
    pub(crate) xfer_mode: u8,
    pub(crate) standby: bool,
    pub(crate) atapi: AtapiState,
}

/// Transfer mode value for multiword DMA mode 2 (the PIIX3's best mode), the power-on selection.
pub(crate) const XFER_MWDMA2: u8 = 0x22;

impl DriveState {
    /// A drive at power-on, showing the signature of `kind`.
    pub(crate) fn power_on(kind: DriveKind) -> Self {
        let mut st = DriveState {
            tf: Taskfile::default(),
            status: 0,
            error: 0,
            intrq: false,
            xfer: Transfer::Idle,
            mult: MAX_MULTIPLE,
            cur_heads: 16,
            cur_spt: 63,
            write_cache: true,
            xfer_mode: XFER_MWDMA2,
            standby: false,
            atapi: AtapiState::default(),
        };
        st.after_reset(kind);
        st
    }

    /// What a software or hardware reset leaves: signature, diagnostics passed, ready (ATA) or not (ATAPI,
    /// whose DRDY stays clear until a command, as drivers expect), no transfer and no interrupt.
    pub(crate) fn after_reset(&mut self, kind: DriveKind) {
        self.tf.set_signature(kind);
        self.error = super::regs::error::DIAG_PASSED;
        self.status = match kind {
            DriveKind::Disk => status::DRDY | status::DSC,
            DriveKind::Cdrom => 0,
        };
        self.xfer = Transfer::Idle;
        self.intrq = false;
        self.standby = false;
    }
}
