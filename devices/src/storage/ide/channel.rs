//! The channel state machine: task-file registers, selection, device control and software reset, the PIO
//! data port, and the transfer steps shared by ATA and ATAPI commands.

use std::sync::Arc;

use super::bmdma::BmState;
use super::drive::{
    AtapiState, DmaTransfer, DriveKind, DriveMedia, DriveState, MediaEvent, Proto, Sense, Sink,
    Source, Transfer, CHUNK,
};
use super::regs::{bm, devctl, error, ireason, port, status};
use super::{ChannelState, IdeError};
use crate::block::BlockBackend;
use crate::memory::GuestMemory;

/// The channel's logic: the serialisable state plus the drives' back-ends and guest memory.
pub(crate) struct ChannelCore {
    pub(crate) st: ChannelState,
    pub(crate) media: [Option<DriveMedia>; 2],
    pub(crate) mem: GuestMemory,
}

impl ChannelCore {
    pub(crate) fn new(media: [Option<DriveMedia>; 2], mem: GuestMemory) -> Self {
        let kinds = [
            media[0].as_ref().map(|m| m.kind),
            media[1].as_ref().map(|m| m.kind),
        ];
        let drive = |k: Option<DriveKind>| DriveState::power_on(k.unwrap_or(DriveKind::Disk));
        ChannelCore {
            st: ChannelState {
                drives: [drive(kinds[0]), drive(kinds[1])],
                unit: 0,
                devctl: 0,
                bm: BmState::default(),
                kinds,
            },
            media,
            mem,
        }
    }

    /// The selected unit, 0 or 1.
    pub(crate) fn unit(&self) -> usize {
        usize::from(self.st.unit & 1)
    }

    pub(crate) fn present(&self, unit: usize) -> bool {
        self.media.get(unit).is_some_and(|m| m.is_some())
    }

    fn empty_channel(&self) -> bool {
        !self.present(0) && !self.present(1)
    }

    pub(crate) fn backend(&self, unit: usize) -> Option<Arc<dyn BlockBackend>> {
        self.media.get(unit)?.as_ref()?.backend.clone()
    }

    pub(crate) fn kind(&self, unit: usize) -> Option<DriveKind> {
        Some(self.media.get(unit)?.as_ref()?.kind)
    }

    /// The level the channel's interrupt line should have.
    pub(crate) fn irq_level(&self) -> bool {
        let unit = self.unit();
        self.present(unit) && self.st.drives[unit].intrq && self.st.devctl & devctl::NIEN == 0
    }

    /// Raises `unit`'s INTRQ; if that drives the line, the bus master notes it in its status.
    pub(crate) fn raise(&mut self, unit: usize) {
        self.st.drives[unit].intrq = true;
        if unit == self.unit() && self.st.devctl & devctl::NIEN == 0 {
            self.st.bm.status |= bm::ST_INTERRUPT;
        }
    }

    /// A task-file register read (offsets 1–7).
    pub(crate) fn read_reg(&mut self, offset: u64) -> u8 {
        if self.empty_channel() || offset > port::STATUS_COMMAND {
            return 0xff;
        }
        let unit = self.unit();
        let present = self.present(unit);
        let hob = self.st.devctl & devctl::HOB != 0;
        let d = &mut self.st.drives[unit];
        let tf = &d.tf;
        let pick = |low: u8, high: u8| if hob { high } else { low };
        match offset {
            port::DEVICE => tf.device,
            _ if !present => 0,
            port::ERROR_FEATURES => d.error,
            port::NSECTOR => pick(tf.nsector, tf.hob_nsector),
            port::LBA_LOW => pick(tf.lbal, tf.hob_lbal),
            port::LBA_MID => pick(tf.lbam, tf.hob_lbam),
            port::LBA_HIGH => pick(tf.lbah, tf.hob_lbah),
            port::STATUS_COMMAND => {
                // Reading status acknowledges the drive's interrupt.
                d.intrq = false;
                d.status
            }
            _ => 0xff,
        }
    }

    /// The alternate status register: status without acknowledging the interrupt.
    pub(crate) fn alt_status(&self) -> u8 {
        if self.empty_channel() {
            return 0xff;
        }
        let unit = self.unit();
        if self.present(unit) {
            self.st.drives[unit].status
        } else {
            0
        }
    }

    /// A task-file register write (offsets 1–7). Both drives latch the registers; the command goes to the
    /// selected one.
    pub(crate) fn write_reg(&mut self, offset: u64, value: u8) {
        if offset != port::STATUS_COMMAND {
            // Any command block write clears HOB (so that reads return the current values again).
            self.st.devctl &= !devctl::HOB;
        }
        for d in self.st.drives.iter_mut() {
            let tf = &mut d.tf;
            match offset {
                port::ERROR_FEATURES => tf.hob_feature = std::mem::replace(&mut tf.feature, value),
                port::NSECTOR => tf.hob_nsector = std::mem::replace(&mut tf.nsector, value),
                port::LBA_LOW => tf.hob_lbal = std::mem::replace(&mut tf.lbal, value),
                port::LBA_MID => tf.hob_lbam = std::mem::replace(&mut tf.lbam, value),
                port::LBA_HIGH => tf.hob_lbah = std::mem::replace(&mut tf.lbah, value),
                port::DEVICE => tf.device = value,
                _ => {}
            }
        }
        match offset {
            port::DEVICE => self.st.unit = (value & super::regs::device::DEV != 0).into(),
            port::STATUS_COMMAND => self.command(value),
            _ => {}
        }
    }

    fn command(&mut self, cmd: u8) {
        let unit = self.unit();
        let Some(kind) = self.kind(unit) else {
            return; // no device answers at an absent position
        };
        let d = &mut self.st.drives[unit];
        if d.status & (status::BSY | status::DRQ) != 0
            && !(cmd == super::regs::cmd::DEVICE_RESET && kind == DriveKind::Cdrom)
        {
            crate::rate_limited!(
                log::Level::Warn,
                "ide: command {cmd:#04x} ignored: unit {unit} is busy (status {:#04x})",
                d.status
            );
            return;
        }
        d.intrq = false;
        d.error = 0;
        self.exec_command(unit, kind, cmd);
    }

    /// A device control write: nIEN, HOB, and SRST (both drives reset while it is set, and show their
    /// signatures when it is released).
    pub(crate) fn write_devctl(&mut self, value: u8) {
        let old = self.st.devctl;
        self.st.devctl = value;
        let asserted = value & devctl::SRST != 0 && old & devctl::SRST == 0;
        let released = value & devctl::SRST == 0 && old & devctl::SRST != 0;
        if asserted {
            for d in self.st.drives.iter_mut() {
                d.status = status::BSY;
                d.xfer = Transfer::Idle;
                d.intrq = false;
            }
        } else if released {
            for unit in 0..2 {
                let kind = self.kind(unit).unwrap_or(DriveKind::Disk);
                let d = &mut self.st.drives[unit];
                d.after_reset(kind);
                d.tf.device = 0;
            }
            self.st.unit = 0;
        }
    }

    /// A data port read of `data.len()` bytes.
    pub(crate) fn read_data(&mut self, data: &mut [u8]) {
        data.fill(0);
        let unit = self.unit();
        if self.empty_channel() {
            data.fill(0xff);
            return;
        }
        let Transfer::PioIn { block, pos, .. } = &mut self.st.drives[unit].xfer else {
            return;
        };
        let start = (*pos).min(block.len());
        let n = data.len().min(block.len() - start);
        data[..n].copy_from_slice(&block[start..start + n]);
        *pos = start + data.len();
        if *pos >= block.len() {
            self.pio_in_block_done(unit);
        }
    }

    /// A data port write of `data.len()` bytes.
    pub(crate) fn write_data(&mut self, data: &[u8]) {
        let unit = self.unit();
        match &mut self.st.drives[unit].xfer {
            Transfer::PioOut { block, pos, .. } => {
                let start = (*pos).min(block.len());
                let n = data.len().min(block.len() - start);
                block[start..start + n].copy_from_slice(&data[..n]);
                *pos = start + n;
                if *pos >= block.len() {
                    self.pio_out_block_done(unit);
                }
            }
            Transfer::Packet { cdb, .. } => {
                let room = super::atapi::PACKET_SIZE.saturating_sub(cdb.len());
                cdb.extend_from_slice(&data[..data.len().min(room)]);
                if cdb.len() >= super::atapi::PACKET_SIZE {
                    self.exec_packet(unit);
                }
            }
            _ => {}
        }
    }

    /// Starts the next PIO data-in block of a transfer from `rest`: loads it, sets DRQ and interrupts.
    pub(crate) fn start_pio_in(&mut self, unit: usize, mut rest: Source, proto: Proto) {
        let size = match proto {
            Proto::Ata { block } => block as usize,
            Proto::Atapi { limit } => usize::from(limit),
        }
        .min(CHUNK);
        let backend = self.backend(unit);
        match rest.take(size, backend.as_ref()) {
            Ok(block) => {
                let d = &mut self.st.drives[unit];
                if let Proto::Atapi { .. } = proto {
                    d.tf.nsector = ireason::IO;
                    d.tf.set_byte_count(block.len() as u16);
                }
                d.xfer = Transfer::PioIn {
                    block,
                    pos: 0,
                    rest,
                    proto,
                };
                d.status = status::DRDY | status::DSC | status::DRQ;
                self.raise(unit);
            }
            Err(e) => {
                crate::rate_limited!(log::Level::Warn, "ide: unit {unit}: read failed: {e}");
                self.read_failed(unit, matches!(proto, Proto::Atapi { .. }));
            }
        }
    }

    fn pio_in_block_done(&mut self, unit: usize) {
        let Transfer::PioIn { rest, proto, .. } = std::mem::take(&mut self.st.drives[unit].xfer)
        else {
            return;
        };
        if rest.remaining() > 0 {
            self.start_pio_in(unit, rest, proto);
            return;
        }
        match proto {
            // ATA PIO data-in ends without an interrupt: the last block's interrupt came before its data.
            Proto::Ata { .. } => self.st.drives[unit].status = status::DRDY | status::DSC,
            Proto::Atapi { .. } => self.atapi_ok(unit),
        }
    }

    /// Starts a PIO data-out (disk write) transfer: DRQ for the first block, without an interrupt.
    pub(crate) fn start_pio_out(&mut self, unit: usize, sink: Sink, block_size: u32) {
        let size = (block_size as usize)
            .min(CHUNK)
            .min(sink.remaining as usize);
        let d = &mut self.st.drives[unit];
        d.xfer = Transfer::PioOut {
            block: vec![0; size],
            pos: 0,
            sink,
            block_size,
        };
        d.status = status::DRDY | status::DSC | status::DRQ;
    }

    fn pio_out_block_done(&mut self, unit: usize) {
        let Transfer::PioOut {
            block,
            mut sink,
            block_size,
            ..
        } = std::mem::take(&mut self.st.drives[unit].xfer)
        else {
            return;
        };
        if let Err(e) = self.write_medium(unit, sink.offset, &block) {
            crate::rate_limited!(log::Level::Warn, "ide: unit {unit}: write failed: {e}");
            self.ata_error(unit, error::ABRT);
            return;
        }
        sink.offset += block.len() as u64;
        sink.remaining = sink.remaining.saturating_sub(block.len() as u64);
        if sink.remaining > 0 {
            self.start_pio_out(unit, sink, block_size);
            self.raise(unit);
        } else {
            self.ata_ok(unit);
        }
    }

    /// Writes to the medium, honouring a disabled write cache (write-through: flushed before completion).
    pub(crate) fn write_medium(
        &mut self,
        unit: usize,
        offset: u64,
        data: &[u8],
    ) -> Result<(), crate::block::BlockError> {
        let backend = self
            .backend(unit)
            .ok_or(crate::block::BlockError::ReadOnly)?;
        backend.write_at(offset, data)?;
        if !self.st.drives[unit].write_cache {
            backend.flush()?;
        }
        Ok(())
    }

    /// Queues a DMA transfer on `unit`; it runs now if the bus master is already started.
    pub(crate) fn start_dma(&mut self, unit: usize, t: DmaTransfer) {
        let d = &mut self.st.drives[unit];
        d.xfer = Transfer::Dma(t);
        d.status = status::DRDY | status::DSC | status::DRQ;
        self.run_dma();
    }

    /// A successful ATA command completion with an interrupt.
    pub(crate) fn ata_ok(&mut self, unit: usize) {
        let d = &mut self.st.drives[unit];
        d.status = status::DRDY | status::DSC;
        d.xfer = Transfer::Idle;
        self.raise(unit);
    }

    /// An ATA command ending in error with `err` bits in the error register.
    pub(crate) fn ata_error(&mut self, unit: usize, err: u8) {
        let d = &mut self.st.drives[unit];
        d.status = status::DRDY | status::ERR;
        d.error = err;
        d.xfer = Transfer::Idle;
        self.raise(unit);
    }

    /// A successful ATAPI command completion: interrupt reason "command complete" (CoD and IO).
    pub(crate) fn atapi_ok(&mut self, unit: usize) {
        let d = &mut self.st.drives[unit];
        d.tf.nsector = ireason::IO | ireason::COD;
        d.status = status::DRDY | status::DSC;
        d.error = 0;
        d.xfer = Transfer::Idle;
        self.raise(unit);
    }

    /// An ATAPI CHECK CONDITION: `sense` for REQUEST SENSE, the key in error bits 7:4.
    pub(crate) fn atapi_check(&mut self, unit: usize, sense: Sense) {
        let d = &mut self.st.drives[unit];
        d.atapi.sense = sense;
        d.tf.nsector = ireason::IO | ireason::COD;
        d.status = status::DRDY | status::ERR;
        d.error = sense.key << 4;
        d.xfer = Transfer::Idle;
        self.raise(unit);
    }

    /// A read from the medium failed in the middle of a command.
    pub(crate) fn read_failed(&mut self, unit: usize, atapi: bool) {
        if atapi {
            self.atapi_check(unit, super::mmc::sense::UNRECOVERED_READ_ERROR);
        } else {
            self.ata_error(unit, error::UNC);
        }
    }

    /// The platform reset.
    pub(crate) fn hard_reset(&mut self) {
        for unit in 0..2 {
            let kind = self.kind(unit).unwrap_or(DriveKind::Disk);
            let d = &mut self.st.drives[unit];
            let kept = AtapiState {
                tray_open: d.atapi.tray_open,
                unit_attention: d.atapi.unit_attention,
                event: d.atapi.event,
                ..AtapiState::default()
            };
            *d = DriveState::power_on(kind);
            d.atapi = kept;
        }
        self.st.unit = 0;
        self.st.devctl = 0;
        self.st.bm = BmState::default();
    }

    fn cd_unit(&self, unit: usize) -> Result<(), IdeError> {
        match self.kind(unit) {
            _ if unit > 1 => Err(IdeError::NoSuchUnit(unit)),
            Some(DriveKind::Cdrom) => Ok(()),
            _ => Err(IdeError::NotCdrom(unit)),
        }
    }

    pub(crate) fn insert_medium(
        &mut self,
        unit: usize,
        backend: Arc<dyn BlockBackend>,
    ) -> Result<(), IdeError> {
        self.cd_unit(unit)?;
        if let Some(m) = self.media[unit].as_mut() {
            m.backend = Some(backend);
        }
        let a = &mut self.st.drives[unit].atapi;
        a.tray_open = false;
        a.unit_attention = true;
        a.event = MediaEvent::NewMedia;
        Ok(())
    }

    pub(crate) fn eject_medium(&mut self, unit: usize, force: bool) -> Result<(), IdeError> {
        self.cd_unit(unit)?;
        let a = &mut self.st.drives[unit].atapi;
        if a.locked && !force {
            a.event = MediaEvent::EjectRequest;
            return Err(IdeError::MediumLocked(unit));
        }
        a.locked = false;
        a.event = MediaEvent::MediaRemoval;
        if let Some(m) = self.media[unit].as_mut() {
            m.backend = None;
        }
        Ok(())
    }

    pub(crate) fn has_medium(&self, unit: usize) -> bool {
        self.cd_unit(unit).is_ok() && self.backend(unit).is_some()
    }

    pub(crate) fn tray_open(&self, unit: usize) -> bool {
        self.cd_unit(unit).is_ok() && self.st.drives[unit].atapi.tray_open
    }

    pub(crate) fn restore(&mut self, state: ChannelState) -> Result<(), IdeError> {
        let kinds = [self.kind(0), self.kind(1)];
        if state.kinds != kinds {
            return Err(IdeError::StateMismatch);
        }
        self.st = state;
        Ok(())
    }
}
