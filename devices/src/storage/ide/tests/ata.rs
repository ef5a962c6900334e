//! ATA disk commands through the ports.

use super::*;
use crate::storage::ide::regs::{error, feature};

const SECTORS: usize = 300;

fn image() -> Vec<u8> {
    pattern(SECTORS * 512)
}

fn sectors(lba: usize, n: usize) -> Vec<u8> {
    image()[lba * 512..(lba + n) * 512].to_vec()
}

#[test]
fn read_sectors_with_word_and_dword_pio() {
    let r = disk_rig(SECTORS);
    r.cmd28(0, cmd::READ_SECTORS, 5, 3);
    assert_eq!(r.pio_read(3, 512), sectors(5, 3));
    // The same with 32-bit accesses.
    r.cmd28(0, cmd::READ_SECTORS, 7, 2);
    let mut got = Vec::new();
    for _ in 0..2 {
        assert_eq!(r.status() & status::DRQ, status::DRQ);
        got.extend(r.insl(512));
    }
    assert_eq!(got, sectors(7, 2));
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
}

#[test]
fn sector_count_zero_means_256() {
    let r = disk_rig(SECTORS);
    r.cmd28(0, cmd::READ_SECTORS, 10, 0);
    assert_eq!(r.pio_read(256, 512), sectors(10, 256));
}

#[test]
fn read_and_write_multiple_use_the_block_size() {
    let r = disk_rig(SECTORS);
    r.select(0);
    r.outb(CMD + 2, 4);
    r.outb(CMD + 7, cmd::SET_MULTIPLE_MODE);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!(w[59], 0x0104);
    assert_eq!(w[47], 0x8010);
    // 10 sectors come in blocks of 4, 4 and 2, one interrupt each.
    r.irq.take_events();
    r.cmd28(0, cmd::READ_MULTIPLE, 20, 10);
    let mut got = Vec::new();
    for n in [4, 4, 2] {
        assert!(r.irq.level());
        assert_eq!(r.status() & status::DRQ, status::DRQ);
        got.extend(r.insw(n * 512));
    }
    assert_eq!(got, sectors(20, 10));
    assert_eq!(r.irq.rising_edges(), 3);

    let data = pattern(6 * 512)
        .iter()
        .map(|b| b ^ 0x5a)
        .collect::<Vec<_>>();
    r.cmd48(0, cmd::WRITE_MULTIPLE_EXT, 100, 6);
    r.pio_write(&data, 4 * 512);
    let file = r.images[0].contents();
    assert_eq!(&file[100 * 512..106 * 512], &data[..]);
    assert_eq!(&file[..100 * 512], &image()[..100 * 512]);
    assert_eq!(&file[106 * 512..], &image()[106 * 512..]);

    r.cmd48(0, cmd::READ_MULTIPLE_EXT, 100, 6);
    let mut got = Vec::new();
    for n in [4, 2] {
        r.status();
        got.extend(r.insw(n * 512));
    }
    assert_eq!(got, data);
}

#[test]
fn multiple_mode_parameters_are_checked() {
    let r = disk_rig(SECTORS);
    r.select(0);
    for bad in [3u8, 32, 255] {
        r.outb(CMD + 2, bad);
        r.outb(CMD + 7, cmd::SET_MULTIPLE_MODE);
        assert_eq!(r.status(), status::DRDY | status::ERR, "count {bad}");
        assert_eq!(r.error(), error::ABRT);
    }
    // 0 disables multiple mode; READ MULTIPLE is then aborted.
    r.outb(CMD + 2, 0);
    r.outb(CMD + 7, cmd::SET_MULTIPLE_MODE);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    r.cmd28(0, cmd::READ_MULTIPLE, 0, 1);
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
}

#[test]
fn write_sectors_reach_the_image() {
    let r = disk_rig(SECTORS);
    let data: Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    r.cmd28(0, cmd::WRITE_SECTORS, 299 - 1, 2);
    r.pio_write(&data, 512);
    // 32-bit PIO writes too.
    r.cmd28(0, cmd::WRITE_SECTORS, 0, 1);
    r.outsl(&data[..512]);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    let file = r.images[0].contents();
    assert_eq!(&file[298 * 512..], &data[..]);
    assert_eq!(&file[..512], &data[..512]);
    assert_eq!(&file[512..298 * 512], &image()[512..298 * 512]);
}

#[test]
fn lba48_reaches_past_28_bits() {
    // A sparse image of 2^28 + 16 sectors (128 GiB) with a marker past the 28-bit limit.
    let img = TempImage::new(&[]);
    let total: u64 = (1 << 28) + 16;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&img.0)
        .unwrap();
    f.set_len(total * 512).unwrap();
    let marker = pattern(512).iter().map(|b| b ^ 0xa5).collect::<Vec<_>>();
    std::os::unix::fs::FileExt::write_all_at(&f, &marker, ((1 << 28) + 3) * 512).unwrap();
    drop(f);
    let mut r = rig_with(DriveKind::Disk, open(&img, false));
    r.images.push(img);
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!((w[60], w[61]), (0xffff, 0x0fff), "LBA28 capacity saturates");
    assert_eq!(
        (w[100], w[101], w[102], w[103]),
        (16, 0x1000, 0, 0),
        "LBA48 capacity"
    );
    assert_eq!(w[1], 16383, "cylinders capped");
    r.cmd48(0, cmd::READ_SECTORS_EXT, (1 << 28) + 3, 1);
    assert_eq!(r.pio_read(1, 512), marker);
    // The last sector is readable, one more is not.
    r.cmd48(0, cmd::READ_SECTORS_EXT, total - 1, 1);
    assert_eq!(r.pio_read(1, 512), vec![0; 512]);
    r.cmd48(0, cmd::READ_SECTORS_EXT, total - 1, 2);
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::IDNF);
}

#[test]
fn out_of_range_requests_end_in_idnf() {
    let r = disk_rig(SECTORS);
    for (op, lba, count) in [
        (cmd::READ_SECTORS, 299, 2u8),
        (cmd::WRITE_SECTORS, 300, 1),
        (cmd::READ_VERIFY, 0x0fff_ffff, 1),
        (cmd::READ_DMA, 250, 0),
    ] {
        r.cmd28(0, op, lba, count);
        assert!(r.irq.level());
        assert_eq!(r.status(), status::DRDY | status::ERR, "op {op:#x}");
        assert_eq!(r.error(), error::IDNF);
    }
    // LBA48 with an LBA + count that overflows nothing but exceeds the disk, and the largest values.
    r.cmd48(0, cmd::READ_SECTORS_EXT, (1 << 48) - 1, 0);
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::IDNF);
    r.cmd48(0, cmd::WRITE_DMA_EXT, 290, 11);
    assert_eq!(r.status(), status::DRDY | status::ERR);
    // The disk still works and nothing was written.
    r.cmd28(0, cmd::READ_SECTORS, 299, 1);
    assert_eq!(r.pio_read(1, 512), sectors(299, 1));
    assert_eq!(r.images[0].contents(), image());
}

#[test]
fn chs_addressing_uses_the_current_translation() {
    let r = disk_rig(SECTORS);
    // INITIALIZE DEVICE PARAMETERS: 4 heads, 17 sectors per track.
    r.outb(CMD + 2, 17);
    r.outb(CMD + 6, 0xa0 | 3);
    r.outb(CMD + 7, cmd::INITIALIZE_DEVICE_PARAMETERS);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!((w[54], w[55], w[56]), (300 / 68, 4, 17));
    // C/H/S 2/1/5 = (2*4 + 1)*17 + 4 = 157.
    let chs = |c: u16, h: u8, s: u8, n: u8| {
        r.outb(CMD + 2, n);
        r.outb(CMD + 3, s);
        r.outb(CMD + 4, c as u8);
        r.outb(CMD + 5, (c >> 8) as u8);
        r.outb(CMD + 6, 0xa0 | h);
        r.outb(CMD + 7, cmd::READ_SECTORS);
    };
    chs(2, 1, 5, 1);
    assert_eq!(r.pio_read(1, 512), sectors(157, 1));
    for (c, h, s) in [(0, 0, 0), (0, 0, 18), (0, 4, 1), (5, 0, 1)] {
        chs(c, h, s, 1);
        assert_eq!(r.status(), status::DRDY | status::ERR, "{c}/{h}/{s}");
        assert_eq!(r.error(), error::IDNF);
    }
}

#[test]
fn a_read_only_disk_refuses_writes_and_stays_unchanged() {
    let r = rig(Some(Spec::RoDisk(image())), None);
    for (op, lba48) in [
        (cmd::WRITE_SECTORS, false),
        (cmd::WRITE_MULTIPLE, false),
        (cmd::WRITE_DMA, false),
        (cmd::WRITE_SECTORS_EXT, true),
        (cmd::WRITE_DMA_EXT, true),
    ] {
        if lba48 {
            r.cmd48(0, op, 1, 1);
        } else {
            r.cmd28(0, op, 1, 1);
        }
        assert!(r.irq.level());
        assert_eq!(r.status(), status::DRDY | status::ERR, "no data phase");
        assert_eq!(r.error(), error::ABRT);
        r.outsw(&[0xee; 512]);
    }
    // Reads and FLUSH still work.
    r.cmd28(0, cmd::READ_SECTORS, 1, 1);
    assert_eq!(r.pio_read(1, 512), sectors(1, 1));
    r.outb(CMD + 7, cmd::FLUSH_CACHE);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    assert_eq!(r.images[0].contents(), image());
}

#[test]
fn flush_cache_completes_with_an_interrupt() {
    let r = disk_rig(SECTORS);
    r.cmd28(0, cmd::WRITE_SECTORS, 3, 1);
    r.pio_write(&[7; 512], 512);
    for op in [cmd::FLUSH_CACHE, cmd::FLUSH_CACHE_EXT] {
        r.irq.take_events();
        r.outb(CMD + 7, op);
        assert!(r.irq.level());
        assert_eq!(r.status(), status::DRDY | status::DSC);
    }
    assert_eq!(&r.images[0].contents()[3 * 512..4 * 512], &[7; 512]);
}

#[test]
fn set_features_changes_modes_and_write_cache() {
    let r = disk_rig(SECTORS);
    let set = |f: u8, n: u8| {
        r.select(0);
        r.outb(CMD + 1, f);
        r.outb(CMD + 2, n);
        r.outb(CMD + 7, cmd::SET_FEATURES);
        r.status()
    };
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!(w[63], 0x0407, "MWDMA2 selected at power-on");
    assert_eq!(w[85] & 0x20, 0x20, "write cache on");
    assert_eq!(
        set(feature::SET_TRANSFER_MODE, 0x45),
        status::DRDY | status::DSC
    );
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!((w[63], w[88]), (0x0007, 0x203f), "UDMA5 selected");
    assert_eq!(
        set(feature::SET_TRANSFER_MODE, 0x0c),
        status::DRDY | status::DSC
    );
    for bad in [0x46, 0x23, 0x0d, 0x10, 0xff] {
        assert_eq!(
            set(feature::SET_TRANSFER_MODE, bad),
            status::DRDY | status::ERR
        );
        assert_eq!(r.error(), error::ABRT);
    }
    assert_eq!(
        set(feature::DISABLE_WRITE_CACHE, 0),
        status::DRDY | status::DSC
    );
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!(w[85] & 0x20, 0, "write cache off");
    // Write-through writes still land.
    r.cmd28(0, cmd::WRITE_SECTORS, 9, 1);
    r.pio_write(&[9; 512], 512);
    assert_eq!(&r.images[0].contents()[9 * 512..10 * 512], &[9; 512]);
    assert_eq!(set(0x99, 0), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    // The checksum stays valid whatever the settings.
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    let sum = w
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .fold(0u8, |a, b| a.wrapping_add(b));
    assert_eq!(sum, 0);
}

#[test]
fn power_verify_seek_and_unknown_commands() {
    let r = disk_rig(SECTORS);
    let run = |op: u8| {
        r.select(0);
        r.outb(CMD + 7, op);
        assert!(r.irq.level(), "op {op:#x} interrupts");
        r.status()
    };
    assert_eq!(run(cmd::STANDBY_IMMEDIATE), status::DRDY | status::DSC);
    assert_eq!(run(cmd::CHECK_POWER_MODE), status::DRDY | status::DSC);
    assert_eq!(r.inb(CMD + 2), 0x00, "standby");
    assert_eq!(run(cmd::IDLE_IMMEDIATE), status::DRDY | status::DSC);
    assert_eq!(run(cmd::CHECK_POWER_MODE), status::DRDY | status::DSC);
    assert_eq!(r.inb(CMD + 2), 0xff, "active/idle");
    r.cmd28(0, cmd::READ_VERIFY, 0, 50);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    r.cmd48(0, cmd::READ_VERIFY_EXT, 250, 50);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    assert_eq!(run(cmd::SEEK), status::DRDY | status::DSC);
    assert_eq!(run(cmd::RECALIBRATE), status::DRDY | status::DSC);
    for op in [cmd::NOP, cmd::PACKET, 0xb0, 0xf8, 0x27, 0xff] {
        assert_eq!(run(op), status::DRDY | status::ERR, "op {op:#x}");
        assert_eq!(r.error(), error::ABRT);
    }
    r.cmd28(0, cmd::READ_SECTORS, 1, 1);
    assert_eq!(r.pio_read(1, 512), sectors(1, 1));
}

#[test]
fn a_partial_last_sector_reads_as_zero_padding() {
    let r = rig(Some(Spec::Disk(pattern(1000))), None);
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!(w[60], 2, "size rounded up to whole sectors");
    r.cmd28(0, cmd::READ_SECTORS, 1, 1);
    let got = r.pio_read(1, 512);
    assert_eq!(&got[..488], &pattern(1000)[512..]);
    assert!(got[488..].iter().all(|&b| b == 0));
    r.cmd28(0, cmd::WRITE_SECTORS, 1, 1);
    r.pio_write(&[0x77; 512], 512);
    let file = r.images[0].contents();
    assert_eq!(file.len(), 1000, "the image did not grow");
    assert!(file[512..].iter().all(|&b| b == 0x77));
}

#[test]
fn bad_configurations_are_refused() {
    use crate::storage::ide::IdeError;
    let mem = test_memory(0x1000);
    let cfg = |kind, backend, model: &str| DriveConfig {
        kind,
        backend,
        identity: DriveIdentity {
            model: model.into(),
            ..DriveIdentity::default_for(kind, 0)
        },
    };
    let err = |drives| IdeChannel::new(drives, RecordingIrq::new(), mem.clone()).err();
    assert_eq!(
        err([Some(cfg(DriveKind::Disk, None, "x")), None]),
        Some(IdeError::DiskWithoutImage(0))
    );
    let empty = TempImage::new(&[]);
    assert_eq!(
        err([
            None,
            Some(cfg(DriveKind::Disk, Some(open(&empty, true)), "x"))
        ]),
        Some(IdeError::EmptyDisk(1))
    );
    assert!(matches!(
        err([Some(cfg(DriveKind::Cdrom, None, &"x".repeat(41))), None]),
        Some(IdeError::BadIdentity { field: "model", .. })
    ));
    assert!(matches!(
        err([Some(cfg(DriveKind::Cdrom, None, "caf\u{e9}")), None]),
        Some(IdeError::BadIdentity { .. })
    ));
    let r = disk_rig(8);
    let img = TempImage::new(&[0; 4096]);
    assert_eq!(
        r.ch.insert_medium(0, open(&img, true)),
        Err(IdeError::NotCdrom(0))
    );
    assert_eq!(r.ch.eject_medium(1, false), Err(IdeError::NotCdrom(1)));
    assert_eq!(r.ch.eject_medium(2, false), Err(IdeError::NoSuchUnit(2)));
}

#[test]
fn host_io_errors_become_ata_errors() {
    let failing = |reads, writes, flush| {
        rig_with(
            DriveKind::Disk,
            Arc::new(FailingImage {
                len: 64 * 512,
                fail_reads: reads,
                fail_writes: writes,
                fail_flush: flush,
            }),
        )
    };
    let r = failing(true, false, false);
    r.cmd28(0, cmd::READ_SECTORS, 0, 2);
    assert!(r.irq.level());
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(
        r.error(),
        error::UNC,
        "a read error is an uncorrectable sector"
    );
    assert_eq!(r.inw(CMD), 0, "no data phase");

    let r = failing(false, true, false);
    r.cmd28(0, cmd::WRITE_SECTORS, 0, 2);
    r.outsw(&[0; 512]);
    assert!(r.irq.level());
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    // The second block is never asked for.
    r.outsw(&[0; 512]);
    assert_eq!(r.alt_status(), status::DRDY | status::ERR);

    let r = failing(false, false, true);
    r.outb(CMD + 7, cmd::FLUSH_CACHE_EXT);
    assert_eq!(r.status(), status::DRDY | status::ERR);
    assert_eq!(r.error(), error::ABRT);
    // With the write cache off every write is flushed, so it fails too.
    r.outb(CMD + 1, feature::DISABLE_WRITE_CACHE);
    r.outb(CMD + 7, cmd::SET_FEATURES);
    assert_eq!(r.status(), status::DRDY | status::ERR);
}
