//! Detection, register and interrupt semantics: what firmware and drivers probe before any data moves.

use super::*;
use crate::bus::BusDevice;
use crate::storage::ide::regs::error;

/// SeaBIOS `ata_detect` for one unit: select, 0x55/0xAA echo, SRST pulse (nIEN set, HD15 bit as SeaBIOS
/// writes it), wait for !BSY, reselect, read the signature. Returns (echo ok, LBA mid, LBA high).
fn seabios_probe(r: &Rig, unit: u8) -> (bool, u8, u8) {
    let dh = 0xa0 | unit << 4;
    r.outb(CMD + 6, dh);
    r.outb(CMD + 2, 0x55);
    r.outb(CMD + 3, 0xaa);
    let echo = r.inb(CMD + 2) == 0x55 && r.inb(CMD + 3) == 0xaa && r.inb(CMD + 6) == dh;
    if !echo {
        return (false, 0, 0);
    }
    r.outb(CTL, 0x08 | devctl::NIEN | devctl::SRST);
    assert_eq!(
        r.alt_status() & status::BSY,
        status::BSY,
        "busy during reset"
    );
    r.outb(CTL, 0x08 | devctl::NIEN);
    assert_eq!(r.alt_status() & status::BSY, 0);
    r.outb(CMD + 6, dh);
    assert_eq!(r.inb(CMD + 6), dh);
    (true, r.inb(CMD + 4), r.inb(CMD + 5))
}

#[test]
fn seabios_detects_a_disk_master_and_a_cd_slave() {
    let r = rig(
        Some(Spec::Disk(pattern(2048 * 512))),
        Some(Spec::Cd(Some(pattern(4 * 2048)))),
    );
    assert_eq!(seabios_probe(&r, 0), (true, 0, 0));
    // The disk refuses IDENTIFY PACKET with ERR/ABRT, then answers IDENTIFY.
    let st = r.identify(0, cmd::IDENTIFY_PACKET_DEVICE).unwrap_err();
    assert_eq!(
        st & (status::ERR | status::DRDY),
        status::ERR | status::DRDY
    );
    assert_eq!(r.error(), error::ABRT);
    let w = r.identify(0, cmd::IDENTIFY_DEVICE).unwrap();
    assert_eq!(w[0], 0x0040);
    assert_eq!((w[1], w[3], w[6]), (2, 16, 63));
    assert_eq!(u32::from(w[61]) << 16 | u32::from(w[60]), 2048);
    assert_eq!(w[83] & (1 << 10), 1 << 10, "LBA48 supported");
    assert_eq!(w[100], 2048);
    let model: Vec<u8> = w[27..47].iter().flat_map(|w| w.to_be_bytes()).collect();
    assert_eq!(&model[..], b"QEMU HARDDISK                           ");
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);

    assert_eq!(seabios_probe(&r, 1), (true, 0x14, 0xeb));
    let w = r.identify(1, cmd::IDENTIFY_PACKET_DEVICE).unwrap();
    assert_eq!(w[0], 0x85c0);
    assert_eq!((w[0] >> 8) & 0x1f, 5, "CD-ROM device type");
    let model: Vec<u8> = w[27..47].iter().flat_map(|w| w.to_be_bytes()).collect();
    assert!(model.starts_with(b"QEMU DVD-ROM "));
    assert_eq!(w[80], 0x1e);
    // The CD aborts IDENTIFY DEVICE and shows its signature.
    r.outb(CMD + 4, 0);
    r.outb(CMD + 5, 0);
    let st = r.identify(1, cmd::IDENTIFY_DEVICE).unwrap_err();
    assert_eq!(st & status::ERR, status::ERR);
    assert_eq!(r.error(), error::ABRT);
    assert_eq!((r.inb(CMD + 4), r.inb(CMD + 5)), (0x14, 0xeb));
}

#[test]
fn a_channel_without_drives_floats_high() {
    let r = rig(None, None);
    for off in 1..8 {
        assert_eq!(r.inb(CMD + off), 0xff, "register {off}");
    }
    assert_eq!(r.alt_status(), 0xff);
    assert_eq!(r.inw(CMD), 0xffff);
    assert!(!seabios_probe(&r, 0).0);
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    assert_eq!(r.status(), 0xff);
    assert_eq!(r.irq.rising_edges(), 0);
}

#[test]
fn an_absent_slave_reads_zero_and_ignores_commands() {
    let r = disk_rig(64);
    assert!(!seabios_probe(&r, 1).0, "0x55/0xAA echo fails");
    r.select(1);
    assert_eq!(r.inb(CMD + 6), 0xf0, "the device register reads back");
    for off in [1, 2, 3, 4, 5, 7] {
        assert_eq!(r.inb(CMD + off), 0, "register {off}");
    }
    assert_eq!(r.alt_status(), 0);
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    assert_eq!(r.status(), 0);
    assert_eq!(r.inw(CMD), 0);
    assert!(!r.irq.level());
    // The master is unaffected.
    assert!(r.identify(0, cmd::IDENTIFY_DEVICE).is_ok());
}

#[test]
fn software_reset_shows_each_drives_signature() {
    let r = rig(Some(Spec::Cd(None)), Some(Spec::Disk(pattern(64 * 512))));
    // Leave garbage in the task file and a PIO transfer pending on the disk.
    r.select(1);
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    assert_eq!(r.alt_status() & status::DRQ, status::DRQ);
    r.outb(CTL, devctl::SRST);
    r.outb(CTL, 0);
    assert!(!r.irq.level(), "reset does not interrupt");
    // Device 0 is selected after a reset.
    assert_eq!(r.inb(CMD + 6) & 0x10, 0);
    assert_eq!(r.alt_status(), 0, "ATAPI: DRDY clear after reset");
    assert_eq!(
        [
            r.error(),
            r.inb(CMD + 2),
            r.inb(CMD + 3),
            r.inb(CMD + 4),
            r.inb(CMD + 5)
        ],
        [error::DIAG_PASSED, 1, 1, 0x14, 0xeb]
    );
    r.select(1);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC, "no DRQ left");
    assert_eq!(
        [
            r.error(),
            r.inb(CMD + 2),
            r.inb(CMD + 3),
            r.inb(CMD + 4),
            r.inb(CMD + 5)
        ],
        [error::DIAG_PASSED, 1, 1, 0, 0]
    );
}

#[test]
fn execute_device_diagnostic_and_device_reset() {
    let r = rig(Some(Spec::Disk(pattern(64 * 512))), Some(Spec::Cd(None)));
    r.select(0);
    r.outb(CMD + 4, 0x33);
    r.outb(CMD + 7, cmd::EXECUTE_DEVICE_DIAGNOSTIC);
    assert!(r.irq.level());
    assert_eq!(r.status(), status::DRDY | status::DSC);
    assert_eq!((r.error(), r.inb(CMD + 4)), (error::DIAG_PASSED, 0));
    r.select(1);
    assert_eq!((r.inb(CMD + 4), r.inb(CMD + 5)), (0x14, 0xeb));
    // DEVICE RESET is for packet devices only; it abandons a packet in progress.
    r.outb(CMD + 7, cmd::PACKET);
    assert_eq!(r.alt_status() & status::DRQ, status::DRQ);
    r.outb(CMD + 7, cmd::DEVICE_RESET);
    assert_eq!(r.alt_status(), 0);
    assert_eq!((r.inb(CMD + 4), r.inb(CMD + 5)), (0x14, 0xeb));
    r.select(0);
    r.outb(CMD + 7, cmd::DEVICE_RESET);
    assert_eq!(r.status() & status::ERR, status::ERR);
    assert_eq!(r.error(), error::ABRT);
}

#[test]
fn interrupts_follow_nien_and_status_reads() {
    let r = disk_rig(64);
    r.select(0);
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    assert!(r.irq.level());
    assert_eq!(r.irq.rising_edges(), 1);
    // Alternate status does not acknowledge; status does.
    r.alt_status();
    assert!(r.irq.level());
    // nIEN takes the line down while the request stays pending.
    r.nien(true);
    assert!(!r.irq.level());
    r.nien(false);
    assert!(r.irq.level());
    r.status();
    assert!(!r.irq.level());
    r.insw(512);
    assert!(
        !r.irq.level(),
        "no interrupt at the end of a PIO data-in command"
    );

    // With nIEN set a command completes without touching the line (SeaBIOS polls).
    r.irq.take_events();
    r.nien(true);
    r.outb(CMD + 7, cmd::FLUSH_CACHE);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
    assert!(r.irq.take_events().iter().all(|&l| !l));
    // A new command clears a request nobody acknowledged.
    r.outb(CMD + 7, cmd::SEEK);
    r.outb(CMD + 7, cmd::SEEK);
    r.nien(false);
    assert!(r.irq.level());
    r.status();
    assert!(!r.irq.level());
    // Selecting a drive without a request drops the line.
    r.outb(CMD + 7, cmd::SEEK);
    assert!(r.irq.level());
    r.select(1);
    assert!(!r.irq.level());
}

#[test]
fn hob_reads_the_previous_register_values() {
    let r = disk_rig(64);
    r.select(0);
    for (reg, v) in [(2, 0x12), (3, 0x34), (4, 0x56), (5, 0x78)] {
        r.outb(CMD + reg, v);
        r.outb(CMD + reg, v + 1);
    }
    r.outb(CTL, devctl::HOB);
    assert_eq!(
        [
            r.inb(CMD + 2),
            r.inb(CMD + 3),
            r.inb(CMD + 4),
            r.inb(CMD + 5)
        ],
        [0x12, 0x34, 0x56, 0x78]
    );
    // A command block write clears HOB.
    r.outb(CMD + 6, 0xe0);
    assert_eq!(r.inb(CMD + 2), 0x13);
}

#[test]
fn wide_accesses_to_byte_registers_are_split() {
    let r = disk_rig(64);
    r.select(0);
    // outw to 0x1F2 writes sector count and LBA low.
    r.outw(CMD + 2, 0x3412);
    assert_eq!((r.inb(CMD + 2), r.inb(CMD + 3)), (0x12, 0x34));
    assert_eq!(r.inw(CMD + 2), 0x3412);
    // A dword read at 0x1F4 covers LBA mid/high, device and status.
    let v = r.inl(CMD + 4);
    assert_eq!(v >> 24, u32::from(status::DRDY | status::DSC));
    // Odd, oversized or empty accesses do no harm.
    let mut wide = [0u8; 8];
    r.ch.command_block().read(7, &mut wide);
    r.ch.command_block().write(7, &[]);
    r.ch.control_block().write(0, &[]);
    r.ch.bus_master().read(6, &mut wide);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
}

#[test]
fn garbage_on_the_data_port_is_harmless() {
    let r = disk_rig(64);
    r.select(0);
    assert_eq!(r.inl(CMD), 0, "no transfer: reads 0");
    r.outl(CMD, 0xdead_beef);
    r.outw(CMD, 0x1234);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
    // Reading past the end of a block returns zeros and ends the block.
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    r.status();
    r.insw(510);
    assert_eq!(r.inl(CMD) >> 16, 0);
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
}

#[test]
fn commands_are_ignored_while_a_transfer_is_pending() {
    let r = disk_rig(64);
    r.cmd28(0, cmd::READ_SECTORS, 3, 1);
    r.status();
    r.outb(CMD + 7, cmd::IDENTIFY_DEVICE);
    assert_eq!(r.insw(512), pattern(64 * 512)[3 * 512..4 * 512]);
}

#[test]
fn state_round_trips_and_rejects_other_drive_layouts() {
    let r = disk_rig(64);
    r.cmd28(0, cmd::READ_SECTORS, 1, 1);
    let saved = r.ch.state();
    r.status();
    let first = r.insw(512);
    assert!(!r.irq.level());
    r.ch.restore(saved.clone()).unwrap();
    assert!(r.irq.level(), "the restored request drives the line");
    r.status();
    assert_eq!(r.insw(512), first);
    let other = rig(Some(Spec::Cd(None)), None);
    assert_eq!(
        other.ch.restore(saved),
        Err(crate::storage::ide::IdeError::StateMismatch)
    );
    r.ch.reset();
    assert!(!r.irq.level());
    assert_eq!(r.alt_status(), status::DRDY | status::DSC);
}
