//! ATA commands: what the disk does with each opcode, and the few non-packet commands a CD-ROM accepts.

use super::channel::ChannelCore;
use super::drive::{
    DmaTransfer, DriveKind, Proto, Sink, Source, Transfer, ATA_SECTOR, MAX_MULTIPLE,
};
use super::identify;
use super::regs::{cmd, device, error, feature, ireason, status};

/// How a read or write command moves its data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PIO, one sector per DRQ block.
    Single,
    /// PIO, the SET MULTIPLE count of sectors per DRQ block.
    Multiple,
    /// Bus-master DMA.
    Dma,
}

impl ChannelCore {
    /// Runs command `op` on present drive `unit`.
    pub(crate) fn exec_command(&mut self, unit: usize, kind: DriveKind, op: u8) {
        match kind {
            DriveKind::Disk => self.exec_disk(unit, op),
            DriveKind::Cdrom => self.exec_cd(unit, op),
        }
    }

    fn exec_disk(&mut self, unit: usize, op: u8) {
        if matches!(op, cmd::READ_SECTORS..=cmd::WRITE_MULTIPLE_EXT | cmd::READ_MULTIPLE..=0xcb) {
            self.st.drives[unit].standby = false;
        }
        match op {
            cmd::READ_SECTORS | cmd::READ_SECTORS_NORETRY => {
                self.rw(unit, false, false, Mode::Single)
            }
            cmd::READ_SECTORS_EXT => self.rw(unit, true, false, Mode::Single),
            cmd::READ_MULTIPLE => self.rw(unit, false, false, Mode::Multiple),
            cmd::READ_MULTIPLE_EXT => self.rw(unit, true, false, Mode::Multiple),
            cmd::READ_DMA | cmd::READ_DMA_NORETRY => self.rw(unit, false, false, Mode::Dma),
            cmd::READ_DMA_EXT => self.rw(unit, true, false, Mode::Dma),
            cmd::WRITE_SECTORS | cmd::WRITE_SECTORS_NORETRY => {
                self.rw(unit, false, true, Mode::Single)
            }
            cmd::WRITE_SECTORS_EXT => self.rw(unit, true, true, Mode::Single),
            cmd::WRITE_MULTIPLE => self.rw(unit, false, true, Mode::Multiple),
            cmd::WRITE_MULTIPLE_EXT => self.rw(unit, true, true, Mode::Multiple),
            cmd::WRITE_DMA | cmd::WRITE_DMA_NORETRY => self.rw(unit, false, true, Mode::Dma),
            cmd::WRITE_DMA_EXT => self.rw(unit, true, true, Mode::Dma),
            cmd::READ_VERIFY | cmd::READ_VERIFY_NORETRY => self.verify(unit, false),
            cmd::READ_VERIFY_EXT => self.verify(unit, true),
            cmd::IDENTIFY_DEVICE => {
                let sectors = self.backend(unit).map_or(0, |b| b.sectors());
                let Some(m) = self.media[unit].as_ref() else {
                    return;
                };
                let words = identify::identify_disk(sectors, &m.identity, &self.st.drives[unit]);
                self.send_identify(unit, words);
            }
            cmd::SET_MULTIPLE_MODE => {
                let n = self.st.drives[unit].tf.nsector;
                if n > MAX_MULTIPLE || !(n == 0 || n.is_power_of_two()) {
                    self.ata_error(unit, error::ABRT);
                } else {
                    self.st.drives[unit].mult = n;
                    self.ata_ok(unit);
                }
            }
            cmd::INITIALIZE_DEVICE_PARAMETERS => {
                let d = &mut self.st.drives[unit];
                d.cur_heads = (d.tf.device & 0x0f) + 1;
                d.cur_spt = d.tf.nsector;
                self.ata_ok(unit);
            }
            cmd::FLUSH_CACHE | cmd::FLUSH_CACHE_EXT => {
                let result = self.backend(unit).map(|b| b.flush());
                match result {
                    Some(Ok(())) => self.ata_ok(unit),
                    Some(Err(e)) => {
                        crate::rate_limited!(
                            log::Level::Warn,
                            "ide: unit {unit}: flush failed: {e}"
                        );
                        self.ata_error(unit, error::ABRT);
                    }
                    None => self.ata_error(unit, error::ABRT),
                }
            }
            cmd::SEEK | 0x10..=0x1f => self.ata_ok(unit),
            cmd::EXECUTE_DEVICE_DIAGNOSTIC => self.diagnostic(unit),
            cmd::SET_FEATURES => self.set_features(unit),
            op if self.power_command(unit, op) => {}
            _ => self.unknown(unit, op),
        }
    }

    fn exec_cd(&mut self, unit: usize, op: u8) {
        match op {
            cmd::PACKET => {
                let d = &mut self.st.drives[unit];
                let dma = d.tf.feature & 0x01 != 0;
                d.xfer = Transfer::Packet {
                    cdb: Vec::with_capacity(super::atapi::PACKET_SIZE),
                    dma,
                };
                d.tf.nsector = ireason::COD;
                // The packet is requested at once (IDENTIFY word 0 says "DRQ within 50 µs"), no interrupt.
                d.status = status::DRDY | status::DSC | status::DRQ;
            }
            cmd::IDENTIFY_PACKET_DEVICE => {
                let Some(m) = self.media[unit].as_ref() else {
                    return;
                };
                let words = identify::identify_cdrom(&m.identity, &self.st.drives[unit]);
                self.send_identify(unit, words);
            }
            cmd::DEVICE_RESET => {
                // Abandons any transfer and shows the signature again; no interrupt.
                self.st.drives[unit].after_reset(DriveKind::Cdrom);
            }
            cmd::IDENTIFY_DEVICE => {
                // A packet device aborts IDENTIFY DEVICE and shows its signature: that is how drivers tell it
                // from a disk.
                self.st.drives[unit].tf.set_signature(DriveKind::Cdrom);
                self.ata_error(unit, error::ABRT);
            }
            cmd::EXECUTE_DEVICE_DIAGNOSTIC => self.diagnostic(unit),
            cmd::SET_FEATURES => self.set_features(unit),
            op if self.power_command(unit, op) => {}
            _ => self.unknown(unit, op),
        }
    }

    fn unknown(&mut self, unit: usize, op: u8) {
        crate::rate_limited!(
            log::Level::Warn,
            "ide: unit {unit}: unsupported ATA command {op:#04x} aborted"
        );
        self.ata_error(unit, error::ABRT);
    }

    fn send_identify(&mut self, unit: usize, words: [u16; 256]) {
        let data = identify::to_bytes(&words);
        self.start_pio_in(
            unit,
            Source::Bytes { data, pos: 0 },
            Proto::Ata { block: 512 },
        );
    }

    /// EXECUTE DEVICE DIAGNOSTIC: every drive on the channel shows its signature and "passed".
    fn diagnostic(&mut self, unit: usize) {
        for u in 0..2 {
            if let Some(kind) = self.kind(u) {
                self.st.drives[u].after_reset(kind);
            }
        }
        self.raise(unit);
    }

    /// The power-management commands; returns false if `op` is not one.
    fn power_command(&mut self, unit: usize, op: u8) -> bool {
        let d = &mut self.st.drives[unit];
        match op {
            cmd::STANDBY | cmd::STANDBY_IMMEDIATE | cmd::SLEEP => d.standby = true,
            cmd::IDLE | cmd::IDLE_IMMEDIATE => d.standby = false,
            cmd::CHECK_POWER_MODE => d.tf.nsector = if d.standby { 0x00 } else { 0xff },
            _ => return false,
        }
        self.ata_ok(unit);
        true
    }

    fn set_features(&mut self, unit: usize) {
        let d = &mut self.st.drives[unit];
        let ok = match d.tf.feature {
            feature::SET_TRANSFER_MODE => {
                let v = d.tf.nsector;
                let valid = match v >> 3 {
                    0 => v <= 1,     // PIO default mode
                    1 => v & 7 <= 4, // PIO flow control modes 0-4
                    4 => v & 7 <= 2, // multiword DMA 0-2
                    8 => v & 7 <= 5, // Ultra DMA 0-5
                    _ => false,
                };
                if valid {
                    d.xfer_mode = v;
                }
                valid
            }
            feature::ENABLE_WRITE_CACHE | feature::DISABLE_WRITE_CACHE
                if self.media[unit].as_ref().is_some_and(|m| !m.is_cd()) =>
            {
                d.write_cache = d.tf.feature == feature::ENABLE_WRITE_CACHE;
                true
            }
            feature::ENABLE_READ_LOOKAHEAD
            | feature::DISABLE_READ_LOOKAHEAD
            | feature::DISABLE_REVERT
            | feature::ENABLE_REVERT => true,
            _ => false,
        };
        let write_through = !self.st.drives[unit].write_cache;
        if !ok {
            let f = self.st.drives[unit].tf.feature;
            crate::rate_limited!(
                log::Level::Warn,
                "ide: unit {unit}: SET FEATURES {f:#04x} not supported"
            );
            self.ata_error(unit, error::ABRT);
            return;
        }
        if write_through {
            // Switching the cache off must not leave earlier cached writes volatile.
            if let Some(b) = self.backend(unit) {
                if b.flush().is_err() {
                    self.ata_error(unit, error::ABRT);
                    return;
                }
            }
        }
        self.ata_ok(unit);
    }

    /// The first sector and count of a read/write command, or the error bits that end it.
    fn address(&self, unit: usize, ext: bool) -> Result<(u64, u64), u8> {
        let d = &self.st.drives[unit];
        let tf = &d.tf;
        let (lba, count) = if ext {
            (tf.lba48(), tf.count48())
        } else if tf.device & device::LBA != 0 {
            let lba = u64::from(tf.device & 0x0f) << 24
                | u64::from(tf.lbah) << 16
                | u64::from(tf.lbam) << 8
                | u64::from(tf.lbal);
            (lba, tf.count28())
        } else {
            // CHS through the current translation: sector numbers start at 1.
            let cyl = u64::from(tf.lbah) << 8 | u64::from(tf.lbam);
            let head = u64::from(tf.device & 0x0f);
            let sector = u64::from(tf.lbal);
            let (heads, spt) = (u64::from(d.cur_heads), u64::from(d.cur_spt));
            if sector == 0 || sector > spt || head >= heads {
                return Err(error::IDNF);
            }
            ((cyl * heads + head) * spt + sector - 1, tf.count28())
        };
        let sectors = self.backend(unit).map_or(0, |b| b.sectors());
        match lba.checked_add(count) {
            Some(end) if end <= sectors => Ok((lba, count)),
            _ => Err(error::IDNF),
        }
    }

    fn rw(&mut self, unit: usize, ext: bool, write: bool, mode: Mode) {
        let (lba, count) = match self.address(unit, ext) {
            Ok(a) => a,
            Err(bits) => {
                crate::rate_limited!(
                    log::Level::Warn,
                    "ide: unit {unit}: {} outside the disk",
                    if write { "write" } else { "read" }
                );
                self.ata_error(unit, bits);
                return;
            }
        };
        let mult = u32::from(self.st.drives[unit].mult);
        if mode == Mode::Multiple && mult == 0 {
            self.ata_error(unit, error::ABRT);
            return;
        }
        let writable = self.backend(unit).is_some_and(|b| !b.is_read_only());
        if write && !writable {
            crate::rate_limited!(
                log::Level::Warn,
                "ide: unit {unit}: write to a read-only disk image refused (ABRT)"
            );
            self.ata_error(unit, error::ABRT);
            return;
        }
        let offset = lba * ATA_SECTOR;
        let len = count * ATA_SECTOR;
        let block = match mode {
            Mode::Multiple => mult * ATA_SECTOR as u32,
            _ => ATA_SECTOR as u32,
        };
        match (mode, write) {
            (Mode::Dma, false) => self.start_dma(
                unit,
                DmaTransfer::In {
                    source: Source::Medium {
                        offset,
                        remaining: len,
                    },
                    atapi: false,
                },
            ),
            (Mode::Dma, true) => self.start_dma(
                unit,
                DmaTransfer::Out(Sink {
                    offset,
                    remaining: len,
                }),
            ),
            (_, false) => self.start_pio_in(
                unit,
                Source::Medium {
                    offset,
                    remaining: len,
                },
                Proto::Ata { block },
            ),
            (_, true) => self.start_pio_out(
                unit,
                Sink {
                    offset,
                    remaining: len,
                },
                block,
            ),
        }
    }

    /// READ VERIFY SECTORS: checks the range; the data is not transferred (and, like a disk with no media
    /// errors, always verifies).
    fn verify(&mut self, unit: usize, ext: bool) {
        match self.address(unit, ext) {
            Ok(_) => self.ata_ok(unit),
            Err(bits) => self.ata_error(unit, bits),
        }
    }
}
