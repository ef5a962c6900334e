//! ATAPI packet commands over PIO and DMA, with exact reply bytes.

use super::*;
use crate::storage::ide::regs::bm;
use crate::storage::ide::IdeError;

const BLOCKS: usize = 40;

fn disc() -> Vec<u8> {
    pattern(BLOCKS * 2048)
}

fn cd_rig() -> Rig {
    rig(Some(Spec::Cd(Some(disc()))), None)
}

/// A packet that must succeed; returns its data.
fn ok(r: &Rig, cdb: &[u8]) -> Vec<u8> {
    let (data, _, st, err) = r.packet(0, cdb, 0xfffe);
    assert_eq!(
        st & status::ERR,
        0,
        "cdb {cdb:02x?} failed with error {err:#x}"
    );
    assert_eq!(st, status::DRDY | status::DSC);
    data
}

/// A packet that must fail; returns (key, asc, ascq) from the error register and REQUEST SENSE.
fn fails(r: &Rig, cdb: &[u8]) -> (u8, u8, u8) {
    let (data, _, st, err) = r.packet(0, cdb, 0xfffe);
    assert!(data.is_empty());
    assert_eq!(st & (status::ERR | status::DRQ | status::BSY), status::ERR);
    let sense = r.sense(0);
    assert_eq!(err >> 4, sense.0, "error register holds the sense key");
    sense
}

#[test]
fn test_unit_ready_and_sense_of_an_empty_drive() {
    let r = rig(Some(Spec::Cd(None)), None);
    assert_eq!(fails(&r, &[0x00]), (2, 0x3a, 0x01));
    // SeaBIOS's path: the sense is cleared once read.
    assert_eq!(r.sense(0), (0, 0, 0));
    assert_eq!(fails(&r, &[0x25]), (2, 0x3a, 0x01));
    assert_eq!(fails(&r, &[0x28, 0, 0, 0, 0, 16, 0, 0, 1]), (2, 0x3a, 0x01));
    assert_eq!(fails(&r, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12]), (2, 0x3a, 0x01));
    // INQUIRY needs no medium.
    assert_eq!(ok(&r, &[0x12, 0, 0, 0, 36]).len(), 36);
}

#[test]
fn inquiry_reports_a_removable_cd_device() {
    let r = cd_rig();
    let d = ok(&r, &[0x12, 0, 0, 0, 36]);
    assert_eq!(&d[..8], &[0x05, 0x80, 0x00, 0x21, 31, 0, 0, 0]);
    assert_eq!(&d[8..16], b"QEMU    ");
    assert_eq!(&d[16..32], b"QEMU DVD-ROM    ");
    assert_eq!(&d[32..36], b"0.10");
    // The allocation length cuts the reply, odd lengths included.
    assert_eq!(ok(&r, &[0x12, 0, 0, 0, 5]), d[..5]);
    assert_eq!(ok(&r, &[0x12, 0, 0, 0, 0]), Vec::<u8>::new());
    assert_eq!(fails(&r, &[0x12, 1, 0x80, 0, 36]), (5, 0x24, 0));
}

#[test]
fn read_capacity_and_reads() {
    let r = cd_rig();
    assert_eq!(ok(&r, &[0x25]), [0, 0, 0, 39, 0, 0, 8, 0]);
    // SeaBIOS: READ(10) with a 2048-byte limit, one block per DRQ.
    let (d, blocks, st, _) = r.packet(0, &[0x28, 0, 0, 0, 0, 17, 0, 0, 3], 2048);
    assert_eq!(st, status::DRDY | status::DSC);
    assert_eq!(blocks, [2048, 2048, 2048]);
    assert_eq!(d, disc()[17 * 2048..20 * 2048]);
    // A larger, odd limit: even blocks up to limit - 1.
    let (d, blocks, _, _) = r.packet(0, &[0x28, 0, 0, 0, 0, 1, 0, 0, 3], 5001);
    assert_eq!(blocks, [5000, 1144]);
    assert_eq!(d, disc()[2048..4 * 2048]);
    // READ(12) and READ CD (user data).
    assert_eq!(
        ok(&r, &[0xa8, 0, 0, 0, 0, 39, 0, 0, 0, 1]),
        disc()[39 * 2048..]
    );
    assert_eq!(
        ok(&r, &[0xbe, 0, 0, 0, 0, 2, 0, 0, 2, 0x10]),
        disc()[2 * 2048..4 * 2048]
    );
    assert_eq!(
        fails(&r, &[0xbe, 0, 0, 0, 0, 2, 0, 0, 1, 0xf8]),
        (5, 0x24, 0)
    );
    // Zero blocks is a no-op; past the end is an error.
    assert!(ok(&r, &[0x28, 0, 0, 0, 0, 5, 0, 0, 0]).is_empty());
    assert_eq!(fails(&r, &[0x28, 0, 0, 0, 0, 39, 0, 0, 2]), (5, 0x21, 0));
    assert_eq!(
        fails(
            &r,
            &[0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        ),
        (5, 0x21, 0)
    );
}

#[test]
fn read_toc_in_lba_and_msf() {
    let r = cd_rig();
    // Format 0, LBA.
    assert_eq!(
        ok(&r, &[0x43, 0, 0, 0, 0, 0, 0, 0, 100]),
        [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0, 40]
    );
    // Format 0, MSF: track 1 at 00:02:00, lead-out at 40 + 150 frames = 00:02:40.
    assert_eq!(
        ok(&r, &[0x43, 2, 0, 0, 0, 0, 0, 0, 100]),
        [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 2, 0, 0, 0x14, 0xaa, 0, 0, 0, 2, 40]
    );
    // Starting at the lead-out: only its descriptor.
    assert_eq!(
        ok(&r, &[0x43, 0, 0, 0, 0, 0, 0xaa, 0, 100]),
        [0, 10, 1, 1, 0, 0x14, 0xaa, 0, 0, 0, 0, 40]
    );
    assert_eq!(fails(&r, &[0x43, 0, 0, 0, 0, 0, 2, 0, 100]), (5, 0x24, 0));
    // The allocation length cuts the reply but not the length field.
    assert_eq!(ok(&r, &[0x43, 0, 0, 0, 0, 0, 0, 0, 4]), [0, 18, 1, 1]);
    // Format 1 (session info) in byte 2 and in the old place (byte 9 bits 7:6).
    let session = [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0];
    assert_eq!(ok(&r, &[0x43, 0, 1, 0, 0, 0, 0, 0, 12]), session);
    assert_eq!(ok(&r, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40]), session);
    assert_eq!(
        ok(&r, &[0x43, 2, 1, 0, 0, 0, 0, 0, 12]),
        [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 2, 0]
    );
    // Format 2 (full TOC): A0, A1, A2, track 1.
    let full = ok(&r, &[0x43, 2, 2, 0, 0, 0, 0, 0, 200]);
    assert_eq!(&full[..4], &[0, 46, 1, 1]);
    assert_eq!(&full[4..15], &[1, 0x14, 0, 0xa0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&full[15..26], &[1, 0x14, 0, 0xa1, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(&full[26..37], &[1, 0x14, 0, 0xa2, 0, 0, 0, 0, 0, 2, 40]);
    assert_eq!(&full[37..48], &[1, 0x14, 0, 0x01, 0, 0, 0, 0, 0, 2, 0]);
    assert_eq!(fails(&r, &[0x43, 0, 5, 0, 0, 0, 0, 0, 12]), (5, 0x24, 0));
}

#[test]
fn get_configuration_reports_the_profile() {
    let r = cd_rig();
    let d = ok(&r, &[0x46, 0, 0, 0, 0, 0, 0, 0x10, 0]);
    assert_eq!(
        &d[..8],
        &[0, 0, 0, 60, 0, 0, 0, 0x08],
        "CD-ROM profile current"
    );
    assert_eq!(d.len(), 64);
    assert_eq!(&d[8..20], &[0, 0, 3, 8, 0, 0x10, 0, 0, 0, 0x08, 1, 0]);
    // RT = 2: the one feature asked for.
    let d = ok(&r, &[0x46, 2, 0, 3, 0, 0, 0, 0, 100]);
    assert_eq!(d, [0, 0, 0, 12, 0, 0, 0, 8, 0, 3, 3, 4, 0x29, 0, 0, 0]);
    // RT = 1 from 0x10: only current features.
    let d = ok(&r, &[0x46, 1, 0, 0x10, 0, 0, 0, 0, 100]);
    assert_eq!(
        &d[8..],
        &[0, 0x10, 1, 8, 0, 0, 8, 0, 0, 0x10, 0, 0, 0, 0x1e, 1, 0]
    );
    assert_eq!(fails(&r, &[0x46, 3]), (5, 0x24, 0));
    // Without a medium: no current profile.
    let empty = rig(Some(Spec::Cd(None)), None);
    let d = ok(&empty, &[0x46, 0, 0, 0, 0, 0, 0, 0, 8]);
    assert_eq!(&d[6..8], &[0, 0]);
}

#[test]
fn mode_sense_pages() {
    let r = cd_rig();
    let caps = ok(&r, &[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 100]);
    assert_eq!(&caps[..8], &[0, 28, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&caps[8..16], &[0x2a, 0x14, 0x3b, 0, 0x40, 0, 0x29, 0]);
    assert_eq!(caps.len(), 30);
    let all = ok(&r, &[0x5a, 0, 0x3f, 0, 0, 0, 0, 0xff, 0xff]);
    assert_eq!(all.len(), 8 + 8 + 16 + 22);
    assert_eq!(&all[..2], &[0, 52]);
    assert_eq!((all[8], all[16], all[32]), (0x01, 0x0e, 0x2a));
    // MODE SENSE(6) has a 4-byte header.
    let six = ok(&r, &[0x1a, 0, 0x01, 0, 100]);
    assert_eq!(six, [11, 0, 0, 0, 0x01, 0x06, 0, 5, 0, 0, 0, 0]);
    // Changeable values: nothing.
    let ch = ok(&r, &[0x5a, 0, 0x40 | 0x2a, 0, 0, 0, 0, 0, 100]);
    assert!(ch[10..].iter().all(|&b| b == 0));
    assert_eq!(
        fails(&r, &[0x5a, 0, 0xc0 | 0x2a, 0, 0, 0, 0, 0, 100]),
        (5, 0x39, 0)
    );
    assert_eq!(
        fails(&r, &[0x5a, 0, 0x05, 0, 0, 0, 0, 0, 100]),
        (5, 0x24, 0)
    );
    // The lock state shows in the capabilities page.
    ok(&r, &[0x1e, 0, 0, 0, 1]);
    let caps = ok(&r, &[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 100]);
    assert_eq!(caps[14], 0x2b);
}

#[test]
fn disc_information_mechanism_status_and_speed() {
    let r = cd_rig();
    let d = ok(&r, &[0x51, 0, 0, 0, 0, 0, 0, 0, 34]);
    assert_eq!(&d[..9], &[0, 32, 0x0e, 1, 1, 1, 1, 0, 0]);
    assert_eq!(&d[16..24], &[0xff; 8]);
    assert_eq!(d.len(), 34);
    assert_eq!(fails(&r, &[0x51, 1, 0, 0, 0, 0, 0, 0, 34]), (5, 0x24, 0));
    assert_eq!(ok(&r, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8]), [0; 8]);
    assert!(ok(&r, &[0xbb, 0, 0xff, 0xff]).is_empty());
    assert!(ok(&r, &[0x2b, 0, 0, 0, 0, 5]).is_empty());
}

#[test]
fn unknown_commands_are_illegal_requests() {
    let r = cd_rig();
    for opcode in [0x0a, 0x2a, 0x55, 0xad, 0xff] {
        let (_, _, st, err) = r.packet(0, &[opcode], 0xfffe);
        assert_eq!(st, status::DRDY | status::ERR);
        assert_eq!(err, 0x50);
        assert_eq!(r.sense(0), (5, 0x20, 0));
    }
}

#[test]
fn a_new_medium_gives_one_unit_attention_and_a_media_event() {
    let r = rig(Some(Spec::Cd(None)), None);
    let gesn = [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8];
    assert_eq!(ok(&r, &gesn), [0, 6, 4, 0x10, 0, 0, 0, 0]);
    let img = TempImage::new(&disc());
    r.ch.insert_medium(0, open(&img, true)).unwrap();
    assert!(r.ch.has_medium(0));
    // Exempt commands pass; the event is reported once.
    assert_eq!(ok(&r, &gesn), [0, 6, 4, 0x10, 2, 2, 0, 0]);
    assert_eq!(ok(&r, &gesn), [0, 6, 4, 0x10, 0, 2, 0, 0]);
    ok(&r, &[0x12, 0, 0, 0, 36]);
    assert_eq!(fails(&r, &[0x00]), (6, 0x28, 0));
    ok(&r, &[0x00]);
    assert_eq!(ok(&r, &[0x25]), [0, 0, 0, 39, 0, 0, 8, 0]);
    // REQUEST SENSE reports a pending unit attention itself.
    r.ch.insert_medium(0, open(&img, true)).unwrap();
    assert_eq!(r.sense(0), (6, 0x28, 0));
    ok(&r, &[0x00]);
    // Ejecting: media removal event, then NOT READY.
    r.ch.eject_medium(0, false).unwrap();
    assert_eq!(ok(&r, &gesn), [0, 6, 4, 0x10, 3, 0, 0, 0]);
    assert_eq!(fails(&r, &[0x00]), (2, 0x3a, 1));
    // GESN must be polled; a request without the media class reports no event.
    assert_eq!(fails(&r, &[0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8]), (5, 0x24, 0));
    assert_eq!(
        ok(&r, &[0x4a, 1, 0, 0, 0x04, 0, 0, 0, 8]),
        [0, 2, 0x80, 0x10]
    );
}

#[test]
fn eject_is_refused_while_removal_is_prevented() {
    let r = cd_rig();
    ok(&r, &[0x1e, 0, 0, 0, 1]);
    assert_eq!(fails(&r, &[0x1b, 0, 0, 0, 0x02]), (5, 0x53, 0x02));
    assert_eq!(r.ch.eject_medium(0, false), Err(IdeError::MediumLocked(0)));
    assert!(r.ch.has_medium(0));
    // The refused request reaches the guest as an eject request event.
    let gesn = [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8];
    assert_eq!(ok(&r, &gesn)[4], 1);
    ok(&r, &[0x00]);
    // Allow, then the guest ejects: the tray opens.
    ok(&r, &[0x1e, 0, 0, 0, 0]);
    ok(&r, &[0x1b, 0, 0, 0, 0x02]);
    assert!(r.ch.tray_open(0));
    assert_eq!(fails(&r, &[0x00]), (2, 0x3a, 0x02));
    assert_eq!(ok(&r, &[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8])[1], 0x10);
    // Loading closes it; the medium is back after a unit attention.
    ok(&r, &[0x1b, 0, 0, 0, 0x03]);
    assert!(!r.ch.tray_open(0));
    assert_eq!(fails(&r, &[0x00]), (6, 0x28, 0));
    ok(&r, &[0x00]);
    // A forced eject ignores the lock.
    ok(&r, &[0x1e, 0, 0, 0, 1]);
    r.ch.eject_medium(0, true).unwrap();
    assert!(!r.ch.has_medium(0));
    assert_eq!(fails(&r, &[0x00]), (2, 0x3a, 0x01));
}

#[test]
fn the_byte_count_limit_splits_replies() {
    let r = cd_rig();
    let (d, blocks, st, _) = r.packet(0, &[0x12, 0, 0, 0, 36], 10);
    assert_eq!(st, status::DRDY | status::DSC);
    assert_eq!(blocks, [10, 10, 10, 6]);
    assert_eq!(&d[16..28], b"QEMU DVD-ROM");
    // A limit of 0 is treated as the largest one rather than hanging.
    let (_, blocks, _, _) = r.packet(0, &[0x28, 0, 0, 0, 0, 0, 0, 0, 2], 0);
    assert_eq!(blocks, [4096]);
}

#[test]
fn packets_may_be_written_with_dword_accesses() {
    let r = cd_rig();
    r.select(0);
    r.outb(CMD + 1, 0);
    r.outb(CMD + 4, 0x00);
    r.outb(CMD + 5, 0x08);
    r.outb(CMD + 7, cmd::PACKET);
    r.outsl(&[0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0, 0, 0]);
    assert_eq!(r.status() & status::DRQ, status::DRQ);
    assert_eq!(r.insl(2048), disc()[7 * 2048..8 * 2048]);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    assert_eq!(r.inb(CMD + 2), 3);
}

#[test]
fn read_10_by_dma() {
    let r = cd_rig();
    r.prd_table(0x1000, &[(0x10000, 3000, false), (0x20000, 0, true)]);
    r.outl(BM + 4, 0x1000);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    r.select(0);
    r.outb(CMD + 1, 0x01); // DMA
    r.outb(CMD + 4, 0);
    r.outb(CMD + 5, 0x08);
    r.outb(CMD + 7, cmd::PACKET);
    r.outsw(&[0x28, 0, 0, 0, 0, 3, 0, 0, 2, 0, 0, 0]);
    assert_eq!(
        r.alt_status() & status::DRQ,
        status::DRQ,
        "waiting for the engine"
    );
    assert!(!r.irq.level());
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY | bm::CMD_START);
    assert!(r.irq.level());
    assert_eq!(r.inb(BM + 2) & 7, bm::ST_ACTIVE | bm::ST_INTERRUPT);
    r.outb(BM, bm::CMD_WRITE_TO_MEMORY);
    assert_eq!(r.status(), status::DRDY | status::DSC);
    assert_eq!(r.inb(CMD + 2), 3);
    let want = &disc()[3 * 2048..5 * 2048];
    assert_eq!(r.peek(0x10000, 3000), want[..3000]);
    assert_eq!(r.peek(0x20000, 4096 - 3000), want[3000..]);
    // A DMA packet without data completes at once; an error needs no engine.
    let (_, _, st, _) = {
        r.outb(CMD + 1, 0x01);
        r.outb(CMD + 7, cmd::PACKET);
        r.outsw(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        (0, 0, r.status(), 0)
    };
    assert_eq!(st, status::DRDY | status::DSC);
    r.outb(CMD + 1, 0x01);
    r.outb(CMD + 7, cmd::PACKET);
    r.outsw(&[0x28, 0, 0, 0, 0, 50, 0, 0, 1, 0, 0, 0]);
    assert_eq!(r.status(), status::DRDY | status::ERR);
}

#[test]
fn platform_reset_releases_the_lock_and_keeps_the_medium() {
    let r = cd_rig();
    ok(&r, &[0x1e, 0, 0, 0, 1]);
    r.ch.reset();
    assert!(r.ch.has_medium(0));
    r.ch.eject_medium(0, false).unwrap();
}

#[test]
fn host_read_errors_are_medium_errors() {
    let r = rig_with(
        DriveKind::Cdrom,
        Arc::new(FailingImage {
            len: 8 * 2048,
            fail_reads: true,
            fail_writes: true,
            fail_flush: true,
        }),
    );
    assert_eq!(ok(&r, &[0x25]), [0, 0, 0, 7, 0, 0, 8, 0]);
    assert_eq!(fails(&r, &[0x28, 0, 0, 0, 0, 1, 0, 0, 1]), (3, 0x11, 0));
}
