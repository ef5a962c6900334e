//! `disk` entries: `'<type>:<path>,<target>[:cdrom],<mode>'`.
//!
//! Types: `file:`, `phy:` (a bare name such as `hdb1` means `/dev/hdb1`, as xend read it), `tap:aio:` and
//! `tap:sync:` (raw), `tap:qcow:`, `tap:qcow2:`, `tap:vhd:`, `tap:vmdk:`; a path with no type is a file (xl's
//! rule). Targets: `hda`–`hdd`, optionally with the `ioemu:` prefix Xen 3.0.2 required and the `:cdrom` suffix.
//!
//! A partition-style target such as `hdb1` names a partition only for a PV guest. qemu-dm looked at the
//! letter alone (`hd` + drive letter), so the image became the *whole* emulated `hdb` disk; we do the same and
//! say so in a notice, because a guest expecting a partition table there will not find one.
//! `xvdX` targets were emulated as `hdX` only when no `hd*` target existed (otherwise they were PV-only);
//! `sdX` targets needed a SCSI controller this device model does not have.

use std::path::PathBuf;

use super::model::{Disk, DiskBackend, DiskMode, IdeSlot, ImageFormat, Media, NoticeKind};
use super::options::{bad, Bad};

/// What the target named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `hdX` or `hdXN`.
    Ide,
    /// `xvdX`: emulated as `hdX` only without any `hd*` disk.
    Xvd,
    /// `sdX`: SCSI, not emulated.
    Scsi,
}

/// A parsed disk entry with its notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedDisk {
    pub disk: Disk,
    pub target: Target,
    pub notes: Vec<(NoticeKind, String)>,
}

const FORM: &str =
    "'type:path,target,mode' such as 'file:/var/images/hd.img,hda,w' or ',hdc:cdrom,r'";

fn slot(letter: char) -> Option<IdeSlot> {
    match letter {
        'a' => Some(IdeSlot::Hda),
        'b' => Some(IdeSlot::Hdb),
        'c' => Some(IdeSlot::Hdc),
        'd' => Some(IdeSlot::Hdd),
        _ => None,
    }
}

/// Splits `hdb1` into (`hd`, 'b', "1").
fn device_name(name: &str) -> Option<(&str, char, &str)> {
    for prefix in ["xvd", "hd", "sd"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let mut chars = rest.chars();
            let letter = chars.next()?;
            let digits = chars.as_str();
            if letter.is_ascii_lowercase() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Some((prefix, letter, digits));
            }
        }
    }
    None
}

/// Parses one `disk` entry.
pub(crate) fn parse(spec: &str) -> Result<ParsedDisk, Bad> {
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    let mut notes = Vec::new();
    if parts.len() == 4 {
        notes.push((
            NoticeKind::NoEffect,
            format!(
                "the back-end domain '{}' in '{spec}' is a Xen driver-domain setting",
                parts[3]
            ),
        ));
    } else if parts.len() != 3 {
        return Err(bad(
            format!("'{spec}' with {} comma-separated fields", parts.len()),
            FORM,
        ));
    }
    let (uname, target_text, mode_text) = (parts[0], parts[1], parts[2]);

    let (backend, format, path) = if uname.is_empty() {
        (DiskBackend::File, ImageFormat::Raw, None)
    } else if let Some(p) = uname.strip_prefix("file:") {
        (DiskBackend::File, ImageFormat::Raw, Some(p.to_string()))
    } else if let Some(p) = uname.strip_prefix("phy:") {
        let p = if p.starts_with('/') || p.is_empty() {
            p.to_string()
        } else {
            format!("/dev/{p}")
        };
        (DiskBackend::Phy, ImageFormat::Raw, Some(p))
    } else if let Some(rest) = uname.strip_prefix("tap:") {
        let (driver, p) = rest.split_once(':').ok_or_else(|| {
            bad(
                format!("'{uname}' without a tap driver"),
                "tap:aio:, tap:sync:, tap:qcow:, tap:qcow2:, tap:vhd: or tap:vmdk: before the path",
            )
        })?;
        let format = match driver {
            "aio" | "sync" => ImageFormat::Raw,
            "qcow" => ImageFormat::Qcow,
            "qcow2" => ImageFormat::Qcow2,
            "vhd" => ImageFormat::Vhd,
            "vmdk" => ImageFormat::Vmdk,
            other => {
                return Err(bad(
                    format!("the tap driver '{other}' in '{uname}'"),
                    "aio, sync, qcow, qcow2, vhd or vmdk",
                ))
            }
        };
        (DiskBackend::Tap, format, Some(p.to_string()))
    } else if let Some((kind, _)) = uname.split_once(':').filter(|(k, _)| !k.contains('/')) {
        return Err(bad(
            format!("the disk type '{kind}:' in '{spec}'"),
            "file:, phy:, tap:aio:, tap:sync:, tap:qcow:, tap:qcow2:, tap:vhd: or tap:vmdk:",
        ));
    } else {
        (DiskBackend::File, ImageFormat::Raw, Some(uname.to_string()))
    };
    if path.as_deref() == Some("") {
        return Err(bad(format!("'{uname}' without a path"), FORM));
    }

    let mut target = target_text.strip_prefix("ioemu:").unwrap_or(target_text);
    let mut media = Media::Disk;
    if let Some(t) = target.strip_suffix(":cdrom") {
        target = t;
        media = Media::Cdrom;
    } else if let Some(t) = target.strip_suffix(":disk") {
        target = t;
    }
    const TARGETS: &str =
        "a target hda, hdb, hdc or hdd (with optional ioemu: prefix and :cdrom suffix)";
    let (prefix, letter, partition) = device_name(target)
        .ok_or_else(|| bad(format!("the target '{target_text}' in '{spec}'"), TARGETS))?;
    let kind = match prefix {
        "hd" => Target::Ide,
        "xvd" => Target::Xvd,
        _ => Target::Scsi,
    };
    let ide_slot = match (kind, slot(letter)) {
        (_, Some(s)) => s,
        (Target::Scsi, None) => IdeSlot::Hda,
        (_, None) => {
            return Err(bad(
                format!("the target '{target_text}' in '{spec}' (the emulated IDE controller has four drives)"),
                TARGETS,
            ))
        }
    };
    if !partition.is_empty() && kind != Target::Scsi {
        notes.push((
            NoticeKind::NoEffect,
            format!(
                "'{target}' names a partition, which only a PV guest sees; as with qemu-dm the image is the whole emulated {} disk",
                ide_slot.name()
            ),
        ));
    }

    let mut mode = match mode_text {
        "r" | "ro" => DiskMode::ReadOnly,
        "w" | "rw" => DiskMode::ReadWrite,
        "w!" => DiskMode::ReadWriteShared,
        other => {
            return Err(bad(
                format!("the mode '{other}' in '{spec}'"),
                "r (read-only), w (read-write) or w! (shared read-write)",
            ))
        }
    };
    if media == Media::Cdrom && mode.writable() {
        notes.push((
            NoticeKind::NoEffect,
            format!("mode '{mode_text}' on the CD-ROM {target}: a CD-ROM is read-only"),
        ));
        mode = DiskMode::ReadOnly;
    }
    if path.is_none() && media != Media::Cdrom {
        return Err(bad(
            format!("'{spec}': an empty path for a hard disk"),
            "an image path (only a CD-ROM drive may be empty, as in ',hdc:cdrom,r')",
        ));
    }
    Ok(ParsedDisk {
        disk: Disk {
            slot: ide_slot,
            media,
            backend,
            format,
            path: path.map(PathBuf::from),
            mode,
            target: target_text.to_string(),
        },
        target: kind,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms() {
        let d = parse("file:/var/images/image1.img,ioemu:hda,w").unwrap();
        assert_eq!(
            (d.disk.slot, d.disk.media, d.disk.mode),
            (IdeSlot::Hda, Media::Disk, DiskMode::ReadWrite)
        );
        assert_eq!(d.disk.path, Some(PathBuf::from("/var/images/image1.img")));
        assert!(d.notes.is_empty());

        let d = parse("phy:/dev/hda1,hdb1,w").unwrap();
        assert_eq!(
            (d.disk.slot, d.disk.backend),
            (IdeSlot::Hdb, DiskBackend::Phy)
        );
        assert!(d.notes[0].1.contains("whole emulated hdb"));

        assert_eq!(
            parse("phy:hdb2,hdb2,w").unwrap().disk.path,
            Some(PathBuf::from("/dev/hdb2"))
        );

        let d = parse("file:/iso,hdc:cdrom,r").unwrap();
        assert_eq!(
            (d.disk.slot, d.disk.media, d.disk.mode),
            (IdeSlot::Hdc, Media::Cdrom, DiskMode::ReadOnly)
        );

        let d = parse(",hdc:cdrom,r").unwrap();
        assert_eq!(d.disk.path, None);

        let d = parse("tap:qcow2:/x.qcow2,hdd,w!").unwrap();
        assert_eq!(
            (d.disk.format, d.disk.mode, d.disk.backend),
            (
                ImageFormat::Qcow2,
                DiskMode::ReadWriteShared,
                DiskBackend::Tap
            )
        );
        assert_eq!(
            parse("tap:aio:/x,hda,w").unwrap().disk.format,
            ImageFormat::Raw
        );
        assert_eq!(
            parse("tap:qcow:/x,hda,w").unwrap().disk.format,
            ImageFormat::Qcow
        );
        assert_eq!(
            parse("/plain.img,hda,w").unwrap().disk.backend,
            DiskBackend::File
        );
        assert_eq!(parse("file:/x,xvda,w").unwrap().target, Target::Xvd);
        assert_eq!(parse("tap:aio:/x,sda1,w").unwrap().target, Target::Scsi);
    }

    #[test]
    fn cdrom_written_as_w_is_read_only_with_a_note() {
        let d = parse("file:/iso,hdc:cdrom,w").unwrap();
        assert_eq!(d.disk.mode, DiskMode::ReadOnly);
        assert!(d.notes[0].1.contains("read-only"));
    }

    #[test]
    fn bad_entries_say_what_was_expected() {
        for (spec, found) in [
            ("file:/x,hda", "2 comma-separated"),
            ("nbd:host:1,hda,w", "'nbd:'"),
            ("tap:ram:/x,hda,w", "'ram'"),
            ("file:/x,hde,w", "'hde'"),
            ("file:/x,fd0,w", "'fd0'"),
            ("file:/x,hda,rw!", "'rw!'"),
            (",hda,w", "empty path"),
            ("file:,hda,w", "without a path"),
        ] {
            let e = parse(spec).unwrap_err();
            assert!(e.found.contains(found), "{spec}: {e:?}");
            assert!(!e.expected.is_empty());
        }
    }
}
