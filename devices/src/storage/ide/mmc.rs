//! The MMC (SCSI multimedia) commands of the ATAPI CD/DVD-ROM drive, as pure functions of the drive's
//! ATAPI state and medium: each packet gives a [`Reply`], which [`super::atapi`] turns into a data phase.
//!
//! The set is what SeaBIOS (TEST UNIT READY, REQUEST SENSE, READ(10)), GRUB, Linux `sr`/libata and Windows'
//! `cdrom.sys` send while probing and reading a data disc: INQUIRY, READ CAPACITY, READ(10)/(12), READ CD
//! (user data only), READ TOC/PMA/ATIP formats 0–2, GET CONFIGURATION, GET EVENT STATUS NOTIFICATION (polled,
//! media class), MODE SENSE(6)/(10) pages 0x01, 0x0E, 0x2A and 0x3F, START STOP UNIT, PREVENT ALLOW MEDIUM
//! REMOVAL, READ DISC INFORMATION, MECHANISM STATUS, SET CD SPEED and SEEK. Anything else is ILLEGAL
//! REQUEST / INVALID COMMAND OPERATION CODE. There is no audio, no writing and no MODE SELECT.
//!
//! The medium is a single-session disc with one data track (mode 1, 2048-byte blocks) starting at LBA 0,
//! whose length is the image length rounded down to whole blocks. Images larger than an 80-minute CD report
//! the DVD-ROM profile.
//!
//! Sense rules: every command except REQUEST SENSE clears the sense data first. After a medium is
//! inserted, the first command other than INQUIRY, REQUEST SENSE, GET CONFIGURATION and GET EVENT STATUS
//! NOTIFICATION fails once with UNIT ATTENTION / MEDIUM MAY HAVE CHANGED, as the MMC spec prescribes, so
//! drivers re-read the capacity and TOC. Commands needing a medium fail with NOT READY / MEDIUM NOT PRESENT
//! (ASCQ 1 with the tray closed, 2 with it open).

use std::sync::Arc;

use super::drive::{AtapiState, DriveIdentity, MediaEvent, Sense, CD_BLOCK};
use crate::block::BlockBackend;

/// Sense data values used by the drive.
pub(crate) mod sense {
    use super::Sense;

    const fn s(key: u8, asc: u8, ascq: u8) -> Sense {
        Sense { key, asc, ascq }
    }
    pub(crate) const NO_SENSE: Sense = s(0, 0, 0);
    pub(crate) const NOT_PRESENT_TRAY_CLOSED: Sense = s(2, 0x3a, 0x01);
    pub(crate) const NOT_PRESENT_TRAY_OPEN: Sense = s(2, 0x3a, 0x02);
    pub(crate) const UNRECOVERED_READ_ERROR: Sense = s(3, 0x11, 0);
    pub(crate) const INVALID_OPCODE: Sense = s(5, 0x20, 0);
    pub(crate) const LBA_OUT_OF_RANGE: Sense = s(5, 0x21, 0);
    pub(crate) const INVALID_FIELD: Sense = s(5, 0x24, 0);
    pub(crate) const SAVING_NOT_SUPPORTED: Sense = s(5, 0x39, 0);
    pub(crate) const REMOVAL_PREVENTED: Sense = s(5, 0x53, 0x02);
    pub(crate) const MEDIUM_MAY_HAVE_CHANGED: Sense = s(6, 0x28, 0);
    pub(crate) const ABORTED: Sense = s(0x0b, 0, 0);
}

/// MMC operation codes.
pub(crate) mod op {
    pub(crate) const TEST_UNIT_READY: u8 = 0x00;
    pub(crate) const REQUEST_SENSE: u8 = 0x03;
    pub(crate) const INQUIRY: u8 = 0x12;
    pub(crate) const MODE_SENSE_6: u8 = 0x1a;
    pub(crate) const START_STOP_UNIT: u8 = 0x1b;
    pub(crate) const PREVENT_ALLOW: u8 = 0x1e;
    pub(crate) const READ_CAPACITY: u8 = 0x25;
    pub(crate) const READ_10: u8 = 0x28;
    pub(crate) const SEEK_10: u8 = 0x2b;
    pub(crate) const READ_TOC: u8 = 0x43;
    pub(crate) const GET_CONFIGURATION: u8 = 0x46;
    pub(crate) const GET_EVENT_STATUS: u8 = 0x4a;
    pub(crate) const READ_DISC_INFO: u8 = 0x51;
    pub(crate) const MODE_SENSE_10: u8 = 0x5a;
    pub(crate) const READ_12: u8 = 0xa8;
    pub(crate) const SET_CD_SPEED: u8 = 0xbb;
    pub(crate) const MECHANISM_STATUS: u8 = 0xbd;
    pub(crate) const READ_CD: u8 = 0xbe;
}

/// Blocks of an 80-minute CD; larger images are presented as DVDs.
const CD_MAX_BLOCKS: u64 = 80 * 60 * 75;

/// What a packet command produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Good status, no data.
    Done,
    /// Data for the host (already cut to the allocation length).
    Data(Vec<u8>),
    /// `len` bytes of the medium from byte `offset`.
    Read { offset: u64, len: u64 },
    /// CHECK CONDITION with this sense.
    Check(Sense),
}

/// The drive as the MMC commands see it.
pub(crate) struct Cd<'a> {
    pub(crate) atapi: &'a mut AtapiState,
    pub(crate) backend: Option<&'a Arc<dyn BlockBackend>>,
    pub(crate) identity: &'a DriveIdentity,
}

fn be16(b: &[u8]) -> usize {
    usize::from(b[0]) << 8 | usize::from(b[1])
}

fn be32(b: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `v` cut to the allocation length.
fn data(mut v: Vec<u8>, alloc: usize) -> Reply {
    v.truncate(alloc);
    Reply::Data(v)
}

/// Minutes/seconds/frames of an LBA (which starts 2 seconds into the disc), saturating at 255:59:74.
pub(crate) fn msf(lba: u64) -> [u8; 3] {
    let f = lba + 150;
    let m = f / (60 * 75);
    if m > 255 {
        return [255, 59, 74];
    }
    [m as u8, (f / 75 % 60) as u8, (f % 75) as u8]
}

impl Cd<'_> {
    /// The number of 2048-byte blocks of a readable medium, or why there is none.
    fn ready(&self) -> Result<u64, Sense> {
        if self.atapi.tray_open {
            return Err(sense::NOT_PRESENT_TRAY_OPEN);
        }
        self.backend
            .map(|b| b.len_bytes() / CD_BLOCK)
            .ok_or(sense::NOT_PRESENT_TRAY_CLOSED)
    }

    fn is_dvd(&self) -> bool {
        self.ready().is_ok_and(|blocks| blocks > CD_MAX_BLOCKS)
    }
}

/// Runs one packet command.
pub(crate) fn execute(cd: &mut Cd<'_>, cdb: &[u8; 12]) -> Reply {
    let opcode = cdb[0];
    if opcode != op::REQUEST_SENSE {
        cd.atapi.sense = sense::NO_SENSE;
        let exempt = matches!(
            opcode,
            op::INQUIRY | op::GET_CONFIGURATION | op::GET_EVENT_STATUS
        );
        if cd.atapi.unit_attention && !exempt {
            cd.atapi.unit_attention = false;
            return Reply::Check(sense::MEDIUM_MAY_HAVE_CHANGED);
        }
    }
    let result = match opcode {
        op::TEST_UNIT_READY => cd.ready().map(|_| Reply::Done),
        op::REQUEST_SENSE => Ok(request_sense(cd, usize::from(cdb[4]))),
        op::INQUIRY => inquiry(cd, cdb),
        op::MODE_SENSE_6 => mode_sense(cd, cdb[2], usize::from(cdb[4]), false),
        op::MODE_SENSE_10 => mode_sense(cd, cdb[2], be16(&cdb[7..9]), true),
        op::START_STOP_UNIT => start_stop(cd, cdb[4]),
        op::PREVENT_ALLOW => {
            cd.atapi.locked = cdb[4] & 0x01 != 0;
            Ok(Reply::Done)
        }
        op::READ_CAPACITY => cd.ready().map(|blocks| {
            let last = blocks.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
            let mut v = last.to_be_bytes().to_vec();
            v.extend_from_slice(&(CD_BLOCK as u32).to_be_bytes());
            Reply::Data(v)
        }),
        op::READ_10 => read(cd, be32(&cdb[2..6]), be16(&cdb[7..9]) as u64),
        op::READ_12 => read(cd, be32(&cdb[2..6]), be32(&cdb[6..10])),
        op::READ_CD => read_cd(cd, cdb),
        op::SEEK_10 => cd.ready().map(|_| Reply::Done),
        op::READ_TOC => read_toc(cd, cdb),
        op::GET_CONFIGURATION => get_configuration(cd, cdb),
        op::GET_EVENT_STATUS => event_status(cd, cdb),
        op::READ_DISC_INFO => read_disc_info(cd, cdb),
        op::MECHANISM_STATUS => {
            let mut v = vec![0u8; 8];
            v[1] = if cd.atapi.tray_open { 0x10 } else { 0 };
            Ok(data(v, be16(&cdb[8..10])))
        }
        op::SET_CD_SPEED => Ok(Reply::Done),
        _ => {
            crate::rate_limited!(
                log::Level::Warn,
                "ide: unsupported ATAPI command {opcode:#04x} (invalid opcode)"
            );
            Err(sense::INVALID_OPCODE)
        }
    };
    result.unwrap_or_else(Reply::Check)
}

fn request_sense(cd: &mut Cd<'_>, alloc: usize) -> Reply {
    let mut s = cd.atapi.sense;
    if s == sense::NO_SENSE && cd.atapi.unit_attention {
        cd.atapi.unit_attention = false;
        s = sense::MEDIUM_MAY_HAVE_CHANGED;
    }
    cd.atapi.sense = sense::NO_SENSE;
    let mut v = vec![0u8; 18];
    v[0] = 0x70; // current error, fixed format
    v[2] = s.key;
    v[7] = 10; // additional sense length
    v[12] = s.asc;
    v[13] = s.ascq;
    data(v, alloc)
}

fn inquiry(cd: &Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    if cdb[1] & 0x01 != 0 {
        return Err(sense::INVALID_FIELD); // no vital product data pages
    }
    let mut v = vec![0u8; 36];
    v[0] = 0x05; // CD/DVD device
    v[1] = 0x80; // removable
    v[3] = 0x21; // ATAPI transport, response data format 1
    v[4] = 31; // additional length
    let model = &cd.identity.model;
    let vendor = model.split(' ').next().unwrap_or("");
    let fields: [(&str, usize, usize); 3] = [
        (vendor, 8, 8),
        (model, 16, 16),
        (&cd.identity.firmware, 32, 4),
    ];
    for (text, at, len) in fields {
        let field = &mut v[at..at + len];
        field.fill(b' ');
        let n = text.len().min(len);
        field[..n].copy_from_slice(&text.as_bytes()[..n]);
    }
    Ok(data(v, be16(&cdb[3..5])))
}

fn start_stop(cd: &mut Cd<'_>, flags: u8) -> Result<Reply, Sense> {
    let (load_eject, start) = (flags & 0x02 != 0, flags & 0x01 != 0);
    if load_eject {
        if !start {
            if cd.atapi.locked {
                return Err(sense::REMOVAL_PREVENTED);
            }
            if !cd.atapi.tray_open {
                cd.atapi.tray_open = true;
                cd.atapi.event = MediaEvent::MediaRemoval;
            }
        } else if cd.atapi.tray_open {
            cd.atapi.tray_open = false;
            if cd.backend.is_some() {
                cd.atapi.event = MediaEvent::NewMedia;
                cd.atapi.unit_attention = true;
            }
        }
    }
    Ok(Reply::Done)
}

fn read(cd: &Cd<'_>, lba: u64, count: u64) -> Result<Reply, Sense> {
    let blocks = cd.ready()?;
    match lba.checked_add(count) {
        Some(end) if end <= blocks => {}
        _ => return Err(sense::LBA_OUT_OF_RANGE),
    }
    if count == 0 {
        return Ok(Reply::Done);
    }
    Ok(Reply::Read {
        offset: lba * CD_BLOCK,
        len: count * CD_BLOCK,
    })
}

/// READ CD for user data of data sectors (what drivers use it for); raw and subchannel reads are refused.
fn read_cd(cd: &Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    let sector_type = (cdb[1] >> 2) & 0x07;
    if !matches!(sector_type, 0 | 2) || cdb[10] & 0x07 != 0 {
        return Err(sense::INVALID_FIELD);
    }
    let count = u64::from(cdb[6]) << 16 | u64::from(cdb[7]) << 8 | u64::from(cdb[8]);
    match cdb[9] & 0xf8 {
        0x00 => cd.ready().map(|_| Reply::Done),
        0x10 => read(cd, be32(&cdb[2..6]), count),
        _ => Err(sense::INVALID_FIELD),
    }
}

/// An address in a TOC: big-endian LBA, or 0/M/S/F.
fn toc_address(lba: u64, use_msf: bool) -> [u8; 4] {
    if use_msf {
        let [m, s, f] = msf(lba);
        [0, m, s, f]
    } else {
        (lba.min(u64::from(u32::MAX)) as u32).to_be_bytes()
    }
}

/// ADR 1 (Q sub-channel gives position), control 4 (data track, copy not permitted).
const ADR_CONTROL_DATA: u8 = 0x14;

fn read_toc(cd: &Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    let blocks = cd.ready()?;
    let use_msf = cdb[1] & 0x02 != 0;
    // Format is in byte 2 (MMC); older drivers (SFF-8020) put it in the top bits of byte 9.
    let format = match cdb[2] & 0x0f {
        0 => cdb[9] >> 6,
        f => f,
    };
    let start_track = cdb[6];
    let alloc = be16(&cdb[7..9]);
    let mut v = vec![0u8, 0, 1, 1];
    match format {
        0 => {
            if start_track > 1 && start_track != 0xaa {
                return Err(sense::INVALID_FIELD);
            }
            if start_track <= 1 {
                v.extend_from_slice(&[0, ADR_CONTROL_DATA, 1, 0]);
                v.extend_from_slice(&toc_address(0, use_msf));
            }
            v.extend_from_slice(&[0, ADR_CONTROL_DATA, 0xaa, 0]);
            v.extend_from_slice(&toc_address(blocks, use_msf));
        }
        1 => {
            // Session information: first and last session 1, first track of the last session at LBA 0.
            v.extend_from_slice(&[0, ADR_CONTROL_DATA, 1, 0]);
            v.extend_from_slice(&toc_address(0, use_msf));
        }
        2 => {
            // Full TOC: points A0 (first track), A1 (last track), A2 (lead-out) and track 1; always MSF.
            let [lm, ls, lf] = msf(blocks);
            let [tm, ts, tf] = msf(0);
            for (point, p) in [
                (0xa0, [1, 0, 0]),
                (0xa1, [1, 0, 0]),
                (0xa2, [lm, ls, lf]),
                (0x01, [tm, ts, tf]),
            ] {
                v.extend_from_slice(&[1, ADR_CONTROL_DATA, 0, point, 0, 0, 0, 0]);
                v.extend_from_slice(&p);
            }
        }
        _ => return Err(sense::INVALID_FIELD),
    }
    let len = (v.len() - 2) as u16;
    v[..2].copy_from_slice(&len.to_be_bytes());
    Ok(data(v, alloc))
}

fn get_configuration(cd: &Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    let rt = cdb[1] & 0x03;
    let start = be16(&cdb[2..4]) as u16;
    let alloc = be16(&cdb[7..9]);
    if rt == 3 {
        return Err(sense::INVALID_FIELD);
    }
    let ready = cd.ready().is_ok();
    let dvd = cd.is_dvd();
    let profile: u16 = match (ready, dvd) {
        (false, _) => 0,
        (true, true) => 0x0010,
        (true, false) => 0x0008,
    };
    let cur = |c: bool| u8::from(c);
    // (feature code, descriptor): byte 2 holds version << 2 | persistent << 1 | current.
    let features: [(u16, Vec<u8>); 7] = [
        (
            0x0000,
            vec![
                0,
                0,
                0x03,
                8,
                0x00,
                0x10,
                cur(profile == 0x10),
                0,
                0x00,
                0x08,
                cur(profile == 0x08),
                0,
            ],
        ),
        // Core: ATAPI physical interface (2).
        (0x0001, vec![0, 1, 0x03, 4, 0, 0, 0, 2]),
        // Morphing: polled event status only.
        (0x0002, vec![0, 2, 0x07, 4, 0, 0, 0, 0]),
        // Removable medium: tray loading mechanism, ejectable, lockable.
        (0x0003, vec![0, 3, 0x03, 4, 0x29, 0, 0, 0]),
        // Random readable: 2048-byte blocks, blocking 16.
        (
            0x0010,
            vec![0, 0x10, cur(ready), 8, 0, 0, 0x08, 0, 0, 0x10, 0, 0],
        ),
        (0x001e, vec![0, 0x1e, cur(profile == 0x08), 0]),
        (0x001f, vec![0, 0x1f, cur(profile == 0x10), 0]),
    ];
    let mut v = vec![0u8; 8];
    v[6..8].copy_from_slice(&profile.to_be_bytes());
    for (code, desc) in features.iter() {
        let wanted = match rt {
            0 => *code >= start,
            1 => *code >= start && desc[2] & 0x01 != 0,
            _ => *code == start,
        };
        if wanted {
            v.extend_from_slice(desc);
        }
    }
    let len = (v.len() - 4) as u32;
    v[..4].copy_from_slice(&len.to_be_bytes());
    Ok(data(v, alloc))
}

fn event_status(cd: &mut Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    if cdb[1] & 0x01 == 0 {
        return Err(sense::INVALID_FIELD); // only polled operation
    }
    let alloc = be16(&cdb[7..9]);
    const MEDIA_CLASS: u8 = 0x10;
    if cdb[4] & MEDIA_CLASS == 0 {
        // No event class we support was asked for: "no event available", listing what we support.
        return Ok(data(vec![0, 2, 0x80, MEDIA_CLASS], alloc));
    }
    let event = std::mem::take(&mut cd.atapi.event);
    let present = cd.backend.is_some() && !cd.atapi.tray_open;
    let status = u8::from(present) << 1 | u8::from(cd.atapi.tray_open);
    Ok(data(
        vec![0, 6, 0x04, MEDIA_CLASS, event as u8, status, 0, 0],
        alloc,
    ))
}

fn read_disc_info(cd: &Cd<'_>, cdb: &[u8; 12]) -> Result<Reply, Sense> {
    cd.ready()?;
    if cdb[1] & 0x07 != 0 {
        return Err(sense::INVALID_FIELD);
    }
    let mut v = vec![0u8; 34];
    v[1] = 32; // length after this field
    v[2] = 0x0e; // last session complete, disc complete (finalised)
    v[3] = 1; // first track
    v[4] = 1; // sessions
    v[5] = 1; // first track in last session
    v[6] = 1; // last track in last session
    v[16..24].fill(0xff); // no lead-in start / last possible lead-out: the disc is complete
    Ok(data(v, be16(&cdb[7..9])))
}

/// The mode pages, current values.
fn mode_page(cd: &Cd<'_>, page: u8) -> Vec<u8> {
    match page {
        // Read/write error recovery: default parameters, read retry count 5.
        0x01 => vec![0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0],
        // CD audio control: ports 0/1 on channels 0/1 at full volume.
        0x0e => vec![
            0x0e, 0x0e, 0x04, 0, 0, 0, 0, 0, 0x01, 0xff, 0x02, 0xff, 0, 0, 0, 0,
        ],
        // Capabilities and mechanical status.
        _ => {
            let mut p = vec![0u8; 22];
            p[0] = 0x2a;
            p[1] = 0x14;
            p[2] = 0x3b; // reads CD-R, CD-RW, method 2, DVD-ROM, DVD-R
            p[4] = 0x40; // multi-session
            p[6] = 0x29 | if cd.atapi.locked { 0x02 } else { 0 }; // tray, eject, lock (+ lock state)
            p[8..10].copy_from_slice(&706u16.to_be_bytes()); // maximum read speed, KB/s (4x)
            p[12..14].copy_from_slice(&512u16.to_be_bytes()); // buffer size, KiB
            p[14..16].copy_from_slice(&706u16.to_be_bytes()); // current read speed
            p
        }
    }
}

fn mode_sense(cd: &Cd<'_>, page_byte: u8, alloc: usize, ten: bool) -> Result<Reply, Sense> {
    let control = page_byte >> 6;
    let page = page_byte & 0x3f;
    if control == 3 {
        return Err(sense::SAVING_NOT_SUPPORTED);
    }
    let pages: &[u8] = match page {
        0x01 => &[0x01],
        0x0e => &[0x0e],
        0x2a => &[0x2a],
        0x3f => &[0x01, 0x0e, 0x2a],
        _ => return Err(sense::INVALID_FIELD),
    };
    let mut v = vec![0u8; if ten { 8 } else { 4 }];
    for &p in pages {
        let mut bytes = mode_page(cd, p);
        if control == 1 {
            // Changeable values: nothing is.
            bytes[2..].fill(0);
        }
        v.extend_from_slice(&bytes);
    }
    if ten {
        let len = (v.len() - 2) as u16;
        v[..2].copy_from_slice(&len.to_be_bytes());
    } else {
        v[0] = (v.len() - 1) as u8;
    }
    Ok(data(v, alloc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msf_counts_from_two_seconds_and_saturates() {
        assert_eq!(msf(0), [0, 2, 0]);
        assert_eq!(msf(16), [0, 2, 16]);
        assert_eq!(msf(4350), [1, 0, 0]);
        assert_eq!(msf(u64::MAX / 2), [255, 59, 74]);
    }
}
