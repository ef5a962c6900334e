//! IDENTIFY DEVICE (ATA disk) and IDENTIFY PACKET DEVICE (ATAPI CD-ROM) data.
//!
//! The words follow ATA/ATAPI-6/7. What guests actually look at:
//! - SeaBIOS: word 0 (ATAPI device type in bits 12:8), words 1/3/6 (CHS), 60/61 and 100–103 (capacity, the
//!   latter when word 83 bit 10 says LBA48), 27–46 (model, shown in the boot menu), 80 (ATA/ATAPI version).
//! - Linux libata: 49 (LBA/DMA), 53 (validity of 64–70 and 88), 59/47 (multiple mode), 63/88 (DMA modes), 82–87
//!   (write cache, FLUSH CACHE (EXT), LBA48), 93 (cable), 255 (integrity word: checked when its low byte is
//!   0xA5).
//!
//! The default geometry is the one QEMU and the firmware crate (CMOS byte 0x39) both assume: 16 heads, 63
//! sectors per track, and as many cylinders as fit, capped at 16383 (the ATA limit) and at least 2. Disks over
//! 1024 such cylinders (504 MiB) are marked for LBA translation in CMOS, so the BIOS never relies on this CHS
//! for them.

use super::drive::{DriveIdentity, DriveState, MAX_MULTIPLE};

/// Heads of the default geometry.
pub const HEADS: u16 = 16;
/// Sectors per track of the default geometry.
pub const SECTORS_PER_TRACK: u16 = 63;
/// The ATA limit on reported cylinders.
pub const MAX_CYLINDERS: u16 = 16383;

/// The default (cylinders, heads, sectors per track) of a disk of `sectors` 512-byte sectors.
pub fn default_geometry(sectors: u64) -> (u16, u16, u16) {
    let cyl = (sectors / u64::from(HEADS * SECTORS_PER_TRACK)).clamp(2, u64::from(MAX_CYLINDERS));
    (cyl as u16, HEADS, SECTORS_PER_TRACK)
}

/// Stores `s` into `words[first..first+n]`, space padded, two characters per word with the first one in the
/// high byte (the ATA string convention).
fn put_string(words: &mut [u16; 256], first: usize, n: usize, s: &str) {
    let mut bytes = s.bytes().chain(std::iter::repeat(b' '));
    for w in words.iter_mut().skip(first).take(n) {
        let hi = bytes.next().unwrap_or(b' ');
        let lo = bytes.next().unwrap_or(b' ');
        *w = u16::from(hi) << 8 | u16::from(lo);
    }
}

/// Sets word 255 so that the 512 bytes sum to zero, with the 0xA5 signature in its low byte.
fn put_checksum(words: &mut [u16; 256]) {
    words[255] = 0x00a5;
    let sum = words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .fold(0u8, |a, b| a.wrapping_add(b));
    words[255] |= u16::from(sum.wrapping_neg()) << 8;
}

/// Words 62/63/88 for the selected transfer mode (SET FEATURES sector-count encoding).
fn put_dma_modes(words: &mut [u16; 256], xfer_mode: u8) {
    let (mw_sel, udma_sel) = match xfer_mode >> 3 {
        4 => (1u16 << (xfer_mode & 7), 0u16),
        8 => (0, 1u16 << (xfer_mode & 7)),
        _ => (0, 0),
    };
    words[63] = 0x0007 | mw_sel << 8;
    words[88] = 0x003f | udma_sel << 8;
}

/// IDENTIFY DEVICE data of a disk with `sectors` 512-byte sectors.
pub(crate) fn identify_disk(sectors: u64, id: &DriveIdentity, st: &DriveState) -> [u16; 256] {
    let mut w = [0u16; 256];
    let (cyl, heads, spt) = default_geometry(sectors);
    w[0] = 0x0040; // fixed device, not removable
    w[1] = cyl;
    w[2] = 0xc837; // specific configuration: device does not require SET FEATURES to spin up, IDENTIFY complete
    w[3] = heads;
    w[6] = spt;
    put_string(&mut w, 10, 10, &id.serial);
    put_string(&mut w, 23, 4, &id.firmware);
    put_string(&mut w, 27, 20, &id.model);
    w[47] = 0x8000 | u16::from(MAX_MULTIPLE);
    w[49] = 0x0300; // LBA and DMA supported
    w[50] = 0x4000;
    w[51] = 0x0200; // PIO timing mode 2 (obsolete field)
    w[52] = 0x0200;
    w[53] = 0x0007; // words 54-58, 64-70 and 88 valid
    let cur_heads = u16::from(st.cur_heads);
    let cur_spt = u16::from(st.cur_spt);
    let cur_cyl = match u64::from(cur_heads) * u64::from(cur_spt) {
        0 => 0,
        hs => (sectors / hs).min(u64::from(u16::MAX)) as u16,
    };
    w[54] = cur_cyl;
    w[55] = cur_heads;
    w[56] = cur_spt;
    let cur_cap = u32::from(cur_cyl) * u32::from(cur_heads) * u32::from(cur_spt);
    w[57] = cur_cap as u16;
    w[58] = (cur_cap >> 16) as u16;
    w[59] = if st.mult != 0 {
        0x0100 | u16::from(st.mult)
    } else {
        0
    };
    let lba28 = sectors.min(0x0fff_ffff) as u32;
    w[60] = lba28 as u16;
    w[61] = (lba28 >> 16) as u16;
    put_dma_modes(&mut w, st.xfer_mode);
    w[64] = 0x0003; // PIO modes 3 and 4
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[80] = 0x00f0; // ATA/ATAPI-4 to -7
    w[81] = 0x0016;
    // Command sets: 82 bit 5 write cache, bit 14 NOP; 83 bit 14 "valid", bit 13 FLUSH CACHE EXT, bit 12
    // FLUSH CACHE, bit 10 LBA48; 84 bit 14 "valid".
    w[82] = 0x4020;
    w[83] = 0x7400;
    w[84] = 0x4000;
    w[85] = 0x4000 | if st.write_cache { 0x0020 } else { 0 };
    w[86] = 0x3400;
    w[87] = 0x4000;
    // Hardware reset result: valid (bit 14), device 0 passed diagnostics (bits 0 and 3), and CBLID above the
    // threshold (bit 13: an 80-wire cable), so drivers allow UDMA modes above 2 if the controller has them.
    w[93] = 0x6001 | 0x0008;
    w[100] = sectors as u16;
    w[101] = (sectors >> 16) as u16;
    w[102] = (sectors >> 32) as u16;
    w[103] = (sectors >> 48) as u16;
    put_checksum(&mut w);
    w
}

/// IDENTIFY PACKET DEVICE data of a CD/DVD-ROM drive.
pub(crate) fn identify_cdrom(id: &DriveIdentity, st: &DriveState) -> [u16; 256] {
    let mut w = [0u16; 256];
    // ATAPI (10b), CD-ROM device type 5, removable, DRQ within 50 µs of PACKET (no interrupt for the packet
    // phase), 12-byte packets.
    w[0] = 0x85c0;
    put_string(&mut w, 10, 10, &id.serial);
    put_string(&mut w, 23, 4, &id.firmware);
    put_string(&mut w, 27, 20, &id.model);
    w[49] = 0x0300; // LBA and DMA supported
    w[53] = 0x0006; // words 64-70 and 88 valid
    put_dma_modes(&mut w, st.xfer_mode);
    w[64] = 0x0003;
    w[65] = 120;
    w[66] = 120;
    w[67] = 120;
    w[68] = 120;
    w[71] = 30; // typical time (µs) for the release after PACKET
    w[72] = 30; // typical time for SERVICE
    w[80] = 0x001e; // ATA/ATAPI-1 to -4
    w[82] = 0x4010; // PACKET feature set, NOP
    w[83] = 0x4000;
    w[84] = 0x4000;
    w[85] = 0x4010;
    w[86] = 0x0000;
    w[87] = 0x4000;
    w[93] = 0x6001 | 0x0008;
    put_checksum(&mut w);
    w
}

/// The words as the 512 bytes a guest reads from the data port.
pub(crate) fn to_bytes(words: &[u16; 256]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::ide::DriveKind;

    fn kind_of(words: &[u16; 256]) -> DriveKind {
        if words[0] & 0xc000 == 0x8000 {
            DriveKind::Cdrom
        } else {
            DriveKind::Disk
        }
    }

    #[test]
    fn geometry_is_16_heads_63_sectors_capped() {
        assert_eq!(default_geometry(1024 * 16 * 63), (1024, 16, 63));
        assert_eq!(default_geometry(100), (2, 16, 63));
        assert_eq!(default_geometry(1 << 40), (16383, 16, 63));
    }

    #[test]
    fn strings_are_byte_swapped_and_padded_and_the_checksum_sums_to_zero() {
        let id = DriveIdentity {
            serial: "AB1".into(),
            model: "X".into(),
            firmware: "1.0".into(),
        };
        let st = DriveState::power_on(DriveKind::Disk);
        let w = identify_disk(1 << 20, &id, &st);
        let b = to_bytes(&w);
        assert_eq!(&b[20..26], b"BA 1  ");
        assert_eq!(&b[54..58], b" X  ");
        assert_eq!(b.iter().fold(0u8, |a, &x| a.wrapping_add(x)), 0);
        assert_eq!(b[510], 0xa5);
        assert_eq!(kind_of(&w), DriveKind::Disk);
        assert_eq!(kind_of(&identify_cdrom(&id, &st)), DriveKind::Cdrom);
    }
}
