//! Tests that drive the channel through its port adapters, as SeaBIOS and Linux's ata_piix/libata do.

mod ata;
mod atapi;
mod dma;
mod probe;

use std::sync::Arc;

use super::regs::{cmd, devctl, ireason, status};
use super::{DriveConfig, DriveIdentity, DriveKind, IdeChannel};
use crate::block::raw::tests::TempImage;
use crate::block::{BlockBackend, RawFile};
use crate::bus::Bus;
use crate::irq::RecordingIrq;
use crate::memory::{test_memory, Bytes, GuestAddress, GuestMemory};

pub(super) use crate::block::raw::tests::pattern;

/// Primary channel command block.
pub(super) const CMD: u64 = 0x1f0;
/// Primary channel control block.
pub(super) const CTL: u64 = 0x3f6;
/// Where the tests map the bus-master window.
pub(super) const BM: u64 = 0xc000;
/// Guest RAM of the tests.
pub(super) const MEM_SIZE: usize = 0x40_0000;

/// What to put at a drive position.
pub(super) enum Spec {
    /// A writable disk with these contents.
    Disk(Vec<u8>),
    /// A read-only disk.
    RoDisk(Vec<u8>),
    /// A CD-ROM drive, with or without a medium.
    Cd(Option<Vec<u8>>),
}

pub(super) struct Rig {
    pub(super) bus: Bus,
    pub(super) mem: GuestMemory,
    pub(super) irq: Arc<RecordingIrq>,
    pub(super) ch: Arc<IdeChannel>,
    /// The image files, master then slave (kept alive and removed at the end).
    pub(super) images: Vec<TempImage>,
}

pub(super) fn open(img: &TempImage, read_only: bool) -> Arc<dyn BlockBackend> {
    Arc::new(RawFile::open(&img.0, read_only).unwrap())
}

pub(super) fn rig(master: Option<Spec>, slave: Option<Spec>) -> Rig {
    let mut images = Vec::new();
    let mut configs: [Option<DriveConfig>; 2] = [None, None];
    for (unit, spec) in [master, slave].into_iter().enumerate() {
        let Some(spec) = spec else { continue };
        let (kind, backend) = match spec {
            Spec::Disk(c) => {
                let img = TempImage::new(&c);
                let b = open(&img, false);
                images.push(img);
                (DriveKind::Disk, Some(b))
            }
            Spec::RoDisk(c) => {
                let img = TempImage::new(&c);
                let b = open(&img, true);
                images.push(img);
                (DriveKind::Disk, Some(b))
            }
            Spec::Cd(c) => (
                DriveKind::Cdrom,
                c.map(|c| {
                    let img = TempImage::new(&c);
                    let b = open(&img, true);
                    images.push(img);
                    b
                }),
            ),
        };
        configs[unit] = Some(DriveConfig {
            kind,
            backend,
            identity: DriveIdentity::default_for(kind, unit),
        });
    }
    let mem = test_memory(MEM_SIZE);
    let irq = RecordingIrq::new();
    let ch = IdeChannel::new(configs, irq.clone(), mem.clone()).unwrap();
    let bus = Bus::new("pio");
    bus.insert(CMD, 8, 4, ch.command_block()).unwrap();
    bus.insert(CTL, 1, 1, ch.control_block()).unwrap();
    bus.insert(BM, 8, 4, ch.bus_master()).unwrap();
    Rig {
        bus,
        mem,
        irq,
        ch,
        images,
    }
}

/// A disk of `sectors` sectors of [`pattern`] as the primary master.
pub(super) fn disk_rig(sectors: usize) -> Rig {
    rig(Some(Spec::Disk(pattern(sectors * 512))), None)
}

impl Rig {
    pub(super) fn outb(&self, port: u64, v: u8) {
        self.bus.write(port, &[v]);
    }
    pub(super) fn inb(&self, port: u64) -> u8 {
        let mut b = [0u8];
        self.bus.read(port, &mut b);
        b[0]
    }
    pub(super) fn inw(&self, port: u64) -> u16 {
        let mut b = [0u8; 2];
        self.bus.read(port, &mut b);
        u16::from_le_bytes(b)
    }
    pub(super) fn outw(&self, port: u64, v: u16) {
        self.bus.write(port, &v.to_le_bytes());
    }
    pub(super) fn inl(&self, port: u64) -> u32 {
        let mut b = [0u8; 4];
        self.bus.read(port, &mut b);
        u32::from_le_bytes(b)
    }
    pub(super) fn outl(&self, port: u64, v: u32) {
        self.bus.write(port, &v.to_le_bytes());
    }

    /// Status (acknowledges the interrupt).
    pub(super) fn status(&self) -> u8 {
        self.inb(CMD + 7)
    }
    pub(super) fn alt_status(&self) -> u8 {
        self.inb(CTL)
    }
    pub(super) fn error(&self) -> u8 {
        self.inb(CMD + 1)
    }

    /// Selects `unit` in LBA mode, as Linux's dev_select does.
    pub(super) fn select(&self, unit: u8) {
        self.outb(CMD + 6, 0xe0 | unit << 4);
    }

    /// Issues a 28-bit LBA command.
    pub(super) fn cmd28(&self, unit: u8, op: u8, lba: u32, count: u8) {
        self.outb(CMD + 2, count);
        self.outb(CMD + 3, lba as u8);
        self.outb(CMD + 4, (lba >> 8) as u8);
        self.outb(CMD + 5, (lba >> 16) as u8);
        self.outb(CMD + 6, 0xe0 | unit << 4 | ((lba >> 24) as u8 & 0x0f));
        self.outb(CMD + 7, op);
    }

    /// Issues a 48-bit command: high bytes first, as libata's tf_load does.
    pub(super) fn cmd48(&self, unit: u8, op: u8, lba: u64, count: u16) {
        self.outb(CMD + 2, (count >> 8) as u8);
        self.outb(CMD + 3, (lba >> 24) as u8);
        self.outb(CMD + 4, (lba >> 32) as u8);
        self.outb(CMD + 5, (lba >> 40) as u8);
        self.outb(CMD + 2, count as u8);
        self.outb(CMD + 3, lba as u8);
        self.outb(CMD + 4, (lba >> 8) as u8);
        self.outb(CMD + 5, (lba >> 16) as u8);
        self.outb(CMD + 6, 0x40 | unit << 4);
        self.outb(CMD + 7, op);
    }

    /// `n` bytes from the data port with 16-bit reads (`rep insw`).
    pub(super) fn insw(&self, n: usize) -> Vec<u8> {
        (0..n / 2)
            .flat_map(|_| self.inw(CMD).to_le_bytes())
            .collect()
    }

    /// `n` bytes from the data port with 32-bit reads (`rep insl`).
    pub(super) fn insl(&self, n: usize) -> Vec<u8> {
        (0..n / 4)
            .flat_map(|_| self.inl(CMD).to_le_bytes())
            .collect()
    }

    pub(super) fn outsw(&self, data: &[u8]) {
        for w in data.chunks(2) {
            self.outw(CMD, u16::from_le_bytes([w[0], w[1]]));
        }
    }

    pub(super) fn outsl(&self, data: &[u8]) {
        for w in data.chunks(4) {
            self.outl(CMD, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
    }

    /// Reads a PIO data-in command's blocks of `block` bytes, checking DRQ and one interrupt per block.
    pub(super) fn pio_read(&self, blocks: usize, block: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..blocks {
            assert!(self.irq.level(), "an interrupt announces each block");
            let st = self.status();
            assert_eq!(st & (status::BSY | status::DRQ | status::ERR), status::DRQ);
            assert!(!self.irq.level(), "reading status acknowledges");
            out.extend(self.insw(block));
        }
        assert_eq!(self.alt_status(), status::DRDY | status::DSC);
        out
    }

    /// Writes a PIO data-out command's blocks, checking the protocol: DRQ without an interrupt first, then
    /// an interrupt after each block.
    pub(super) fn pio_write(&self, data: &[u8], block: usize) {
        assert!(!self.irq.level(), "no interrupt before the first block");
        for chunk in data.chunks(block) {
            assert_eq!(self.alt_status() & (status::BSY | status::DRQ), status::DRQ);
            self.outsw(chunk);
            assert!(self.irq.level(), "an interrupt after each block");
            self.status();
        }
        assert_eq!(self.alt_status(), status::DRDY | status::DSC);
    }

    /// Identify data of the selected unit (IDENTIFY DEVICE or IDENTIFY PACKET DEVICE), or the status if
    /// the command failed.
    pub(super) fn identify(&self, unit: u8, op: u8) -> Result<[u16; 256], u8> {
        self.select(unit);
        self.outb(CMD + 7, op);
        let st = self.status();
        if st & status::ERR != 0 {
            return Err(st);
        }
        assert_eq!(st & status::DRQ, status::DRQ);
        let bytes = self.insw(512);
        let mut w = [0u16; 256];
        for (i, c) in bytes.chunks(2).enumerate() {
            w[i] = u16::from_le_bytes([c[0], c[1]]);
        }
        Ok(w)
    }

    /// Writes guest memory.
    pub(super) fn poke(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }

    /// Reads guest memory.
    pub(super) fn peek(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }

    /// Writes a PRD table at `table`: (address, count, eot) entries.
    pub(super) fn prd_table(&self, table: u64, entries: &[(u32, u16, bool)]) {
        for (i, &(addr, count, eot)) in entries.iter().enumerate() {
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&addr.to_le_bytes());
            e[4..6].copy_from_slice(&count.to_le_bytes());
            e[7] = if eot { 0x80 } else { 0 };
            self.poke(table + 8 * i as u64, &e);
        }
    }

    /// Sends an ATAPI packet by PIO and collects the data blocks. Returns (data, block sizes, final status,
    /// error register).
    pub(super) fn packet(&self, unit: u8, cdb: &[u8], limit: u16) -> (Vec<u8>, Vec<usize>, u8, u8) {
        self.select(unit);
        self.outb(CMD + 1, 0); // PIO
        self.outb(CMD + 4, limit as u8);
        self.outb(CMD + 5, (limit >> 8) as u8);
        self.outb(CMD + 7, cmd::PACKET);
        let st = self.alt_status();
        assert_eq!(
            st & (status::BSY | status::DRQ),
            status::DRQ,
            "DRQ for the packet"
        );
        assert_eq!(self.inb(CMD + 2) & 3, ireason::COD);
        assert!(!self.irq.level(), "no interrupt for the packet phase");
        let mut p = [0u8; 12];
        p[..cdb.len()].copy_from_slice(cdb);
        self.outsw(&p);
        let mut data = Vec::new();
        let mut blocks = Vec::new();
        for _ in 0..100_000 {
            assert!(
                self.irq.level(),
                "an interrupt for each data block and at completion"
            );
            let st = self.status();
            if st & status::DRQ == 0 {
                assert_eq!(self.inb(CMD + 2) & 3, ireason::IO | ireason::COD);
                return (data, blocks, st, self.error());
            }
            assert_eq!(self.inb(CMD + 2) & 3, ireason::IO);
            let n = usize::from(self.inb(CMD + 4)) | usize::from(self.inb(CMD + 5)) << 8;
            let limit = if limit == 0 { 0xfffe } else { limit };
            assert!(n > 0 && n <= usize::from(limit));
            blocks.push(n);
            let mut block = self.insw(n + (n & 1));
            block.truncate(n);
            data.extend(block);
        }
        panic!("the packet command never completed");
    }

    /// REQUEST SENSE by PIO: (key, asc, ascq).
    pub(super) fn sense(&self, unit: u8) -> (u8, u8, u8) {
        let (d, _, st, _) = self.packet(unit, &[0x03, 0, 0, 0, 18], 18);
        assert_eq!(st & status::ERR, 0);
        assert_eq!(d.len(), 18);
        (d[2] & 0x0f, d[12], d[13])
    }

    /// Turns interrupts off (nIEN), as SeaBIOS polls.
    pub(super) fn nien(&self, on: bool) {
        self.outb(CTL, if on { devctl::NIEN } else { 0 });
    }
}

/// A back-end whose host I/O fails, to drive the error paths a dying disk or a full host file system
/// produce (a real image cannot be made to fail on demand).
pub(super) struct FailingImage {
    pub(super) len: u64,
    pub(super) fail_reads: bool,
    pub(super) fail_writes: bool,
    pub(super) fail_flush: bool,
}

impl FailingImage {
    fn err() -> crate::block::BlockError {
        std::io::Error::from_raw_os_error(libc::EIO).into()
    }
}

impl BlockBackend for FailingImage {
    fn len_bytes(&self) -> u64 {
        self.len
    }
    fn read_at(&self, _offset: u64, buf: &mut [u8]) -> Result<(), crate::block::BlockError> {
        if self.fail_reads {
            return Err(Self::err());
        }
        buf.fill(0x11);
        Ok(())
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<(), crate::block::BlockError> {
        if self.fail_writes {
            return Err(Self::err());
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), crate::block::BlockError> {
        if self.fail_flush {
            return Err(Self::err());
        }
        Ok(())
    }
    fn is_read_only(&self) -> bool {
        false
    }
}

/// A channel with `backend` as a drive of `kind` at the master position.
pub(super) fn rig_with(kind: DriveKind, backend: Arc<dyn BlockBackend>) -> Rig {
    let mem = test_memory(MEM_SIZE);
    let irq = RecordingIrq::new();
    let ch = IdeChannel::new(
        [
            Some(DriveConfig {
                kind,
                backend: Some(backend),
                identity: DriveIdentity::default_for(kind, 0),
            }),
            None,
        ],
        irq.clone(),
        mem.clone(),
    )
    .unwrap();
    let bus = Bus::new("pio");
    bus.insert(CMD, 8, 4, ch.command_block()).unwrap();
    bus.insert(CTL, 1, 1, ch.control_block()).unwrap();
    bus.insert(BM, 8, 4, ch.bus_master()).unwrap();
    Rig {
        bus,
        mem,
        irq,
        ch,
        images: Vec::new(),
    }
}
