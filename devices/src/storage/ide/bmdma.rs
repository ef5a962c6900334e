//! The PIIX bus-master IDE engine of one channel (the 8-byte BMIDE window at BAR4 / BAR4+8).
//!
//! Registers: command at +0 (bit 0 start/stop, bit 3 direction: set = write to memory, i.e. a device read),
//! status at +2 (bit 0 active, read-only; bit 1 error and bit 2 interrupt, write 1 to clear; bits 5/6
//! "drive 0/1 DMA capable", plain storage for the BIOS and drivers), and the physical address of the PRD
//! table at +4..+7 (dword aligned: bits 1:0 read as 0). Offsets +1 and +3 are reserved and read 0.
//!
//! A PRD (physical region descriptor) is 8 bytes: a 32-bit memory address (bit 0 ignored), a 16-bit byte
//! count (bit 0 ignored; 0 means 64 KiB), and end-of-table in bit 31 of the second dword. The engine moves
//! the drive's data through the regions in order.
//!
//! The transfer runs, synchronously and in full, when the drive has a DMA command and the bus master is
//! started, whichever of the two happens last. The data direction is the drive's; the command register's
//! direction bit is stored but not checked against it (QEMU does the same, and a mismatch only hurts the
//! guest that programs it). How a transfer ends:
//! - the drive's data is exhausted: the command completes and interrupts (setting the Interrupt status bit);
//!   Active clears if the PRD table ended exactly there, and stays set when the table describes more memory
//!   than the transfer needed, as the PIIX documents;
//! - the table (end-of-table entry) is exhausted first: Active clears and the drive aborts the command
//!   (ERR/ABRT, interrupt), instead of waiting forever with DRQ set as real hardware would, so the guest's
//!   driver learns of its mistake at once;
//! - the table lies outside guest RAM, an entry points outside RAM, or the table runs past the end of its
//!   64 KiB page (the PIIX requires a table not to cross one; that bounds the walk to 8192 entries even
//!   without an end-of-table bit): Error is set, Active clears, and the drive aborts the command with an
//!   interrupt;
//! - the back-end fails: Active clears and the drive reports the error (UNC/ABRT, or MEDIUM ERROR sense).

use serde::{Deserialize, Serialize};

use super::channel::ChannelCore;
use super::drive::{DmaTransfer, Transfer, CHUNK};
use super::regs::{bm, error};
use crate::memory::{Bytes, GuestAddress, GuestMemory};

/// The bus master's registers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmState {
    pub(crate) cmd: u8,
    pub(crate) status: u8,
    pub(crate) prd: u32,
}

impl BmState {
    /// A register byte read at `offset` of the window.
    pub(crate) fn read(&self, offset: u64) -> u8 {
        match offset {
            bm::CMD => self.cmd,
            bm::STATUS => self.status,
            4..=7 => {
                let prd = self.prd & !3;
                prd.to_le_bytes()[(offset - 4) as usize]
            }
            _ => 0,
        }
    }
}

/// One PRD entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prd {
    pub(crate) addr: u64,
    pub(crate) len: u64,
    pub(crate) eot: bool,
}

/// Why a PRD walk stopped short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrdError {
    /// The table (or an entry of it) is not in guest RAM.
    #[error("PRD table entry at {0:#x} is outside guest RAM")]
    TableOutsideRam(u64),
    /// The table ran past the end of its 64 KiB page without an end-of-table entry.
    #[error("PRD table at {0:#x} runs past its 64 KiB page without an end-of-table entry")]
    TableTooLong(u64),
}

/// Reads a PRD table entry by entry, bounded to the table's 64 KiB page.
pub(crate) struct PrdWalker {
    next: u64,
    page_end: u64,
    done: bool,
}

impl PrdWalker {
    pub(crate) fn new(table: u32) -> Self {
        let next = u64::from(table & !3);
        PrdWalker {
            next,
            page_end: (next & !0xffff) + 0x1_0000,
            done: false,
        }
    }

    /// Whether the end-of-table entry has been read.
    pub(crate) fn finished(&self) -> bool {
        self.done
    }

    /// The next entry, `None` after the end-of-table entry.
    pub(crate) fn next(&mut self, mem: &GuestMemory) -> Result<Option<Prd>, PrdError> {
        if self.done {
            return Ok(None);
        }
        if self.next + 8 > self.page_end {
            return Err(PrdError::TableTooLong(self.next));
        }
        let mut raw = [0u8; 8];
        mem.read_slice(&mut raw, GuestAddress(self.next))
            .map_err(|_| PrdError::TableOutsideRam(self.next))?;
        self.next += 8;
        let addr = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) & !1;
        let count = u16::from_le_bytes([raw[4], raw[5]]) & !1;
        let eot = raw[7] & 0x80 != 0;
        self.done = eot;
        Ok(Some(Prd {
            addr: u64::from(addr),
            len: if count == 0 {
                0x1_0000
            } else {
                u64::from(count)
            },
            eot,
        }))
    }
}

/// How a DMA run ended.
enum Outcome {
    /// All data moved; `more_table` when the PRD table describes more memory than was used.
    Done { more_table: bool },
    /// The PRD table ended before the data.
    TableShort,
    /// A bus error: table or region not in RAM, or the table too long.
    BusError,
    /// The back-end failed.
    DeviceError,
}

impl ChannelCore {
    /// A bus-master register byte write.
    pub(crate) fn write_bm(&mut self, offset: u64, value: u8) {
        let b = &mut self.st.bm;
        match offset {
            bm::CMD => {
                let was_started = b.cmd & bm::CMD_START != 0;
                b.cmd = value & (bm::CMD_START | bm::CMD_WRITE_TO_MEMORY);
                if value & bm::CMD_START == 0 {
                    // Stopping: a transfer in progress would be abandoned; ours never is mid-way.
                    b.status &= !bm::ST_ACTIVE;
                } else if !was_started {
                    b.status |= bm::ST_ACTIVE;
                    self.run_dma();
                }
            }
            bm::STATUS => {
                let clear = value & (bm::ST_ERROR | bm::ST_INTERRUPT);
                let keep = b.status & (bm::ST_ACTIVE | bm::ST_ERROR | bm::ST_INTERRUPT) & !clear;
                b.status = keep | (value & (bm::ST_DRIVE0_DMA | bm::ST_DRIVE1_DMA));
            }
            4..=7 => {
                let mut bytes = b.prd.to_le_bytes();
                bytes[(offset - 4) as usize] = value;
                b.prd = u32::from_le_bytes(bytes);
            }
            _ => {}
        }
    }

    /// Runs the selected drive's DMA transfer if there is one and the bus master is started.
    pub(crate) fn run_dma(&mut self) {
        if self.st.bm.cmd & bm::CMD_START == 0 || self.st.bm.status & bm::ST_ACTIVE == 0 {
            return;
        }
        let unit = self.unit();
        if !matches!(self.st.drives[unit].xfer, Transfer::Dma(_)) {
            return;
        }
        let Transfer::Dma(mut t) = std::mem::take(&mut self.st.drives[unit].xfer) else {
            return;
        };
        let atapi = matches!(t, DmaTransfer::In { atapi: true, .. });
        let outcome = self.dma_walk(unit, &mut t);
        let b = &mut self.st.bm;
        match outcome {
            Outcome::Done { more_table } => {
                if !more_table {
                    b.status &= !bm::ST_ACTIVE;
                }
                let flush_failed = matches!(t, DmaTransfer::Out(_))
                    && !self.st.drives[unit].write_cache
                    && self.backend(unit).is_some_and(|be| be.flush().is_err());
                if flush_failed {
                    self.ata_error(unit, error::ABRT);
                } else if atapi {
                    self.atapi_ok(unit);
                } else {
                    self.ata_ok(unit);
                }
            }
            Outcome::TableShort => {
                b.status &= !bm::ST_ACTIVE;
                crate::rate_limited!(
                    log::Level::Warn,
                    "ide: unit {unit}: PRD table shorter than the transfer; command aborted"
                );
                self.dma_abort(unit, atapi);
            }
            Outcome::BusError => {
                b.status = (b.status | bm::ST_ERROR) & !bm::ST_ACTIVE;
                self.dma_abort(unit, atapi);
            }
            Outcome::DeviceError => {
                b.status &= !bm::ST_ACTIVE;
                match t {
                    DmaTransfer::Out(_) => self.ata_error(unit, error::ABRT),
                    DmaTransfer::In { .. } => self.read_failed(unit, atapi),
                }
            }
        }
    }

    fn dma_abort(&mut self, unit: usize, atapi: bool) {
        if atapi {
            self.atapi_check(unit, super::mmc::sense::ABORTED);
        } else {
            self.ata_error(unit, error::ABRT);
        }
    }

    /// Moves the data of `t` through the PRD table.
    fn dma_walk(&mut self, unit: usize, t: &mut DmaTransfer) -> Outcome {
        let backend = self.backend(unit);
        let mut walker = PrdWalker::new(self.st.bm.prd);
        loop {
            let prd = match walker.next(&self.mem) {
                Ok(Some(prd)) => prd,
                Ok(None) => return Outcome::TableShort,
                Err(e) => {
                    crate::rate_limited!(log::Level::Warn, "ide: unit {unit}: {e}");
                    return Outcome::BusError;
                }
            };
            let mut done = 0u64;
            while done < prd.len && t.remaining() > 0 {
                let n = (prd.len - done).min(t.remaining()).min(CHUNK as u64) as usize;
                let at = GuestAddress(prd.addr + done);
                match t {
                    DmaTransfer::In { source, .. } => {
                        let Ok(buf) = source.take(n, backend.as_ref()) else {
                            return Outcome::DeviceError;
                        };
                        if self.mem.write_slice(&buf, at).is_err() {
                            crate::rate_limited!(
                                log::Level::Warn,
                                "ide: unit {unit}: DMA region {:#x}+{n:#x} outside guest RAM",
                                at.0
                            );
                            return Outcome::BusError;
                        }
                    }
                    DmaTransfer::Out(sink) => {
                        let mut buf = vec![0u8; n];
                        if self.mem.read_slice(&mut buf, at).is_err() {
                            crate::rate_limited!(
                                log::Level::Warn,
                                "ide: unit {unit}: DMA region {:#x}+{n:#x} outside guest RAM",
                                at.0
                            );
                            return Outcome::BusError;
                        }
                        let Some(be) = backend.as_ref() else {
                            return Outcome::DeviceError;
                        };
                        if let Err(e) = be.write_at(sink.offset, &buf) {
                            crate::rate_limited!(
                                log::Level::Warn,
                                "ide: unit {unit}: write failed: {e}"
                            );
                            return Outcome::DeviceError;
                        }
                        sink.offset += n as u64;
                        sink.remaining -= n as u64;
                    }
                }
                done += n as u64;
            }
            if t.remaining() == 0 {
                return Outcome::Done {
                    more_table: done < prd.len || !walker.finished(),
                };
            }
        }
    }
}
