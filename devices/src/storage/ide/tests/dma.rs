//! Bus-master DMA through PRD tables in guest memory, as Linux's ata_bmdma does it.

use super::*;
use crate::storage::ide::regs::{bm, error};

const SECTORS: usize = 600;
const TABLE: u64 = 0x1000;

fn image() -> Vec<u8> {
    pattern(SECTORS * 512)
}

impl Rig {
    fn bm_status(&self) -> u8 {
        self.inb(BM + 2)
    }

    /// libata's order: PRD address, direction, command, then start.
    fn dma_cmd(&self, op: u8, lba: u32, count: u8, to_memory: bool) {
        self.outl(BM + 4, TABLE as u32);
        let dir = if to_memory {
            bm::CMD_WRITE_TO_MEMORY
        } else {
            0
        };
        self.outb(BM, dir);
        // Clear stale interrupt/error bits, keep the capability bits.
        self.outb(BM + 2, bm::ST_INTERRUPT | bm::ST_ERROR | bm::ST_DRIVE0_DMA);
        self.cmd28(0, op, lba, count);
        self.outb(BM, dir | bm::CMD_START);
    }

    /// libata's completion: BM status, stop the engine, clear the interrupt bit, ATA status.
    fn dma_finish(&self) -> (u8, u8) {
        let bms = self.bm_status();
        let cmd = self.inb(BM);
        self.outb(BM, cmd & !bm::CMD_START);
        self.outb(BM + 2, bms);
        (bms, self.status())
    }
}

#[test]
fn read_dma_scatters_over_entries_of_odd_lengths() {
    let r = disk_rig(SECTORS);
    r.prd_table(
        TABLE,
        &[
            (0x10000, 1000, false),
            (0x20000, 48, false),
            (0x30001, 1000, true),
        ],
    );
    r.dma_cmd(cmd::READ_DMA, 3, 4, true);
    assert!(r.irq.level());
    let (bms, st) = r.dma_finish();
    assert_eq!(
        bms & (bm::ST_ACTIVE | bm::ST_ERROR | bm::ST_INTERRUPT),
        bm::ST_INTERRUPT
    );
    assert_eq!(bms & bm::ST_DRIVE0_DMA, bm::ST_DRIVE0_DMA);
    assert_eq!(st, status::DRDY | status::DSC);
    assert!(!r.irq.level());
    let want = &image()[3 * 512..7 * 512];
    assert_eq!(r.peek(0x10000, 1000), want[..1000]);
    assert_eq!(r.peek(0x20000, 48), want[1000..1048]);
    // Bit 0 of the address is ignored: the region starts at 0x30000.
    assert_eq!(r.peek(0x30000, 1000), want[1048..]);
    assert_eq!(r.bm_status() & bm::ST_INTERRUPT, 0, "write 1 to clear");
}

#[test]
fn the_engine_may_be_started_before_the_command() {
    let r = disk_rig(SECTORS);
    r.prd_table(TABLE, &[(0x10000, 1024, true)]);
    r.outl(BM + 4, TABLE as u32);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    assert_eq!(r.bm_status() & bm::ST_ACTIVE, bm::ST_ACTIVE);
    assert!(!r.irq.level());
    r.cmd28(0, cmd::READ_DMA, 10, 2);
    let (bms, st) = r.dma_finish();
    assert_eq!(bms & 7, bm::ST_INTERRUPT);
    assert_eq!(st, status::DRDY | status::DSC);
    assert_eq!(r.peek(0x10000, 1024), image()[10 * 512..12 * 512]);
}

#[test]
fn a_zero_count_means_64k_and_lba48_dma_works() {
    let r = disk_rig(SECTORS);
    r.prd_table(TABLE, &[(0x100000, 0, false), (0x200000, 0, true)]);
    r.outl(BM + 4, TABLE as u32);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    r.cmd48(0, cmd::READ_DMA_EXT, 100, 256);
    assert_eq!(
        r.alt_status() & status::DRQ,
        status::DRQ,
        "waiting for the engine"
    );
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    let (bms, st) = r.dma_finish();
    assert_eq!(bms & 7, bm::ST_INTERRUPT);
    assert_eq!(st, status::DRDY | status::DSC);
    assert_eq!(r.peek(0x100000, 0x10000), image()[100 * 512..228 * 512]);
    assert_eq!(r.peek(0x200000, 0x10000), image()[228 * 512..356 * 512]);
}

#[test]
fn a_table_longer_than_the_transfer_leaves_active_set() {
    let r = disk_rig(SECTORS);
    r.prd_table(TABLE, &[(0x10000, 4096, true)]);
    r.dma_cmd(cmd::READ_DMA, 0, 1, true);
    let bms = r.bm_status();
    assert_eq!(bms & 7, bm::ST_ACTIVE | bm::ST_INTERRUPT);
    // An exact fit that ends on an entry without EOT also leaves the engine active.
    r.dma_finish();
    r.prd_table(TABLE, &[(0x10000, 512, false), (0x20000, 512, true)]);
    r.dma_cmd(cmd::READ_DMA, 0, 1, true);
    assert_eq!(r.bm_status() & 7, bm::ST_ACTIVE | bm::ST_INTERRUPT);
    let (_, st) = r.dma_finish();
    assert_eq!(st, status::DRDY | status::DSC);
    assert_eq!(r.bm_status() & bm::ST_ACTIVE, 0, "stopping clears active");
}

#[test]
fn write_dma_gathers_into_the_image() {
    let r = disk_rig(SECTORS);
    let data: Vec<u8> = (0..1536).map(|i| (i * 13 % 256) as u8).collect();
    r.poke(0x10000, &data[..700]);
    r.poke(0x50000, &data[700..]);
    r.prd_table(TABLE, &[(0x10000, 700, false), (0x50000, 836, true)]);
    r.dma_cmd(cmd::WRITE_DMA, 20, 3, false);
    let (bms, st) = r.dma_finish();
    assert_eq!(bms & 7, bm::ST_INTERRUPT);
    assert_eq!(st, status::DRDY | status::DSC);
    let file = r.images[0].contents();
    assert_eq!(&file[20 * 512..23 * 512], &data[..]);
    assert_eq!(&file[..20 * 512], &image()[..20 * 512]);
    assert_eq!(&file[23 * 512..], &image()[23 * 512..]);
}

fn assert_bus_error(r: &Rig) {
    assert!(r.irq.level(), "the drive interrupts");
    let bms = r.bm_status();
    assert_eq!(bms & 7, bm::ST_ERROR | bm::ST_INTERRUPT);
    let (_, st) = r.dma_finish();
    assert_eq!(st, status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    assert_eq!(r.bm_status() & 7, 0, "error cleared by writing 1");
}

#[test]
fn a_table_outside_ram_is_a_bus_error() {
    let r = disk_rig(SECTORS);
    r.outl(BM + 4, 0xfff0_0000);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    r.cmd28(0, cmd::READ_DMA, 0, 1);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    assert_bus_error(&r);
    // The drive takes the next command.
    r.prd_table(TABLE, &[(0x10000, 512, true)]);
    r.dma_cmd(cmd::READ_DMA, 1, 1, true);
    assert_eq!(r.dma_finish().1, status::DRDY | status::DSC);
    assert_eq!(r.peek(0x10000, 512), image()[512..1024]);
}

#[test]
fn an_entry_outside_ram_is_a_bus_error() {
    let r = disk_rig(SECTORS);
    // The first region is fine, the second is past the end of RAM.
    r.prd_table(
        TABLE,
        &[(0x10000, 512, false), ((MEM_SIZE - 256) as u32, 1024, true)],
    );
    r.dma_cmd(cmd::READ_DMA, 0, 3, true);
    assert_bus_error(&r);
    // A DMA write gathering from outside RAM writes nothing beyond what it had.
    r.prd_table(TABLE, &[(0x8000_0000, 512, true)]);
    r.dma_cmd(cmd::WRITE_DMA, 0, 1, false);
    assert_bus_error(&r);
    assert_eq!(r.images[0].contents(), image());
}

#[test]
fn a_table_without_end_is_bounded_by_its_page() {
    let r = disk_rig(SECTORS);
    // 8192 entries of 2 bytes fill the whole 64 KiB page: 16 KiB, less than the 32 KiB asked for.
    let entries = vec![(0x100000u32, 2u16, false); 8192];
    r.prd_table(0x20000, &entries);
    r.outl(BM + 4, 0x20000);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    r.cmd28(0, cmd::READ_DMA, 0, 64);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    assert_bus_error(&r);
    // A table that starts in the last slot of its page cannot continue into the next one.
    r.prd_table(0x2fff8, &[(0x100000, 2, false)]);
    r.prd_table(0x30000, &[(0x100000, 0, true)]);
    r.outl(BM + 4, 0x2fff8);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    r.cmd28(0, cmd::READ_DMA, 0, 1);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    assert_bus_error(&r);
}

#[test]
fn a_table_shorter_than_the_transfer_aborts_the_command() {
    let r = disk_rig(SECTORS);
    r.prd_table(TABLE, &[(0x10000, 512, true)]);
    r.dma_cmd(cmd::READ_DMA, 0, 2, true);
    assert!(r.irq.level());
    let (bms, st) = r.dma_finish();
    assert_eq!(bms & 7, bm::ST_INTERRUPT, "not a bus error");
    assert_eq!(st, status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    assert_eq!(r.peek(0x10000, 512), image()[..512]);
}

#[test]
fn polled_dma_completes_without_the_interrupt_bit() {
    let r = disk_rig(SECTORS);
    r.nien(true);
    r.prd_table(TABLE, &[(0x10000, 512, true)]);
    r.dma_cmd(cmd::READ_DMA, 4, 1, true);
    assert!(!r.irq.level());
    assert_eq!(r.bm_status() & 7, 0);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
    assert_eq!(r.peek(0x10000, 512), image()[4 * 512..5 * 512]);
}

#[test]
fn dma_on_a_read_only_disk_refuses_writes() {
    let r = rig(Some(Spec::RoDisk(image())), None);
    r.poke(0x10000, &[0xcc; 512]);
    r.prd_table(TABLE, &[(0x10000, 512, true)]);
    r.dma_cmd(cmd::WRITE_DMA, 0, 1, false);
    let (bms, st) = r.dma_finish();
    assert_eq!(bms & bm::ST_ERROR, 0);
    assert_eq!(st, status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    assert_eq!(r.images[0].contents(), image());
}

#[test]
fn bus_master_registers_behave_like_the_piix() {
    let r = disk_rig(8);
    r.outl(BM + 4, 0x1234_5677);
    assert_eq!(r.inl(BM + 4), 0x1234_5674, "dword aligned");
    r.outb(BM + 6, 0xab);
    assert_eq!(r.inb(BM + 6), 0xab);
    r.outb(BM, 0xff);
    assert_eq!(r.inb(BM), bm::CMD_START | bm::CMD_WRITE_TO_MEMORY);
    assert_eq!(r.bm_status() & bm::ST_ACTIVE, bm::ST_ACTIVE);
    // Active is read-only; capability bits are storage; reserved bytes read 0.
    r.outb(BM + 2, !(bm::ST_ERROR | bm::ST_INTERRUPT));
    assert_eq!(
        r.bm_status(),
        bm::ST_ACTIVE | bm::ST_DRIVE0_DMA | bm::ST_DRIVE1_DMA
    );
    assert_eq!((r.inb(BM + 1), r.inb(BM + 3)), (0, 0));
    r.outb(BM, 0);
    assert_eq!(r.bm_status(), bm::ST_DRIVE0_DMA | bm::ST_DRIVE1_DMA);
    assert_eq!(r.inw(BM + 2), 0x60);
}

#[test]
fn host_io_errors_end_dma_without_a_bus_error() {
    let r = rig_with(
        DriveKind::Disk,
        Arc::new(FailingImage {
            len: 64 * 512,
            fail_reads: true,
            fail_writes: true,
            fail_flush: false,
        }),
    );
    r.prd_table(TABLE, &[(0x10000, 1024, true)]);
    for (op, to_memory, err) in [
        (cmd::READ_DMA, true, error::UNC),
        (cmd::WRITE_DMA, false, error::ABRT),
    ] {
        r.dma_cmd(op, 0, 2, to_memory);
        assert!(r.irq.level());
        let (bms, st) = r.dma_finish();
        assert_eq!(bms & 7, bm::ST_INTERRUPT);
        assert_eq!(st, status::DRDY | status::ERR);
        assert_eq!(r.error(), err);
    }
}
