//! Block back-ends: where an emulated disk's or CD's sectors live.
//!
//! A [`BlockBackend`] is a byte-addressed image with a fixed length. Storage devices (the IDE disk and CD-ROM
//! in [`crate::storage`]) turn guest commands into [`BlockBackend::read_at`] / [`BlockBackend::write_at`] calls
//! of at most a few hundred KiB each, so the memory one guest request can pin stays bounded however many
//! sectors it asks for.
//!
//! I/O is synchronous (`pread`/`pwrite` on the calling vCPU thread): an IDE channel runs one command at a
//! time, and the PIO/DMA protocols let a command take as long as the disk needs, so there is nothing to gain
//! from an asynchronous engine at this layer. [`BlockBackend::flush`] must reach stable storage
//! (`fdatasync`), because the guest's FLUSH CACHE is its only way to order writes against a host crash.
//!
//! Two formats exist: raw images (regular files or host block devices, [`raw::RawFile`]) and qcow2 version 2
//! and 3 ([`qcow2::Qcow2File`], through the `imago` crate). [`open_image`] opens either, by the configured
//! format or by the file's header, and refuses the mismatches that would hurt: a qcow image served as raw
//! (the guest would see its metadata as disk contents, and its writes would destroy the image) and the old
//! qcow version 1 format.

pub mod qcow2;
pub mod raw;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub use qcow2::Qcow2File;
pub use raw::RawFile;

/// The sector size the guest sees on ATA disks; image lengths are measured in these.
pub const SECTOR_SIZE: u64 = 512;

/// Why a back-end operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The image could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The image path.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Another process (another domain's device model) holds a conflicting lock on the image.
    #[error(
        "{path} is locked by another process ({wanted} lock refused): \
         is the image already in use by another domain?"
    )]
    Locked {
        /// The image path.
        path: String,
        /// "exclusive" for a writable image, "shared" for a read-only one.
        wanted: &'static str,
    },
    /// The path is neither a regular file nor a block device.
    #[error("{path} is neither a regular file nor a block device")]
    NotAnImage {
        /// The image path.
        path: String,
    },
    /// The image's size could not be determined.
    #[error("cannot find the size of {path}: {source}")]
    Size {
        /// The image path.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A write to a read-only image.
    #[error("the image is read-only")]
    ReadOnly,
    /// A request that does not lie within the image.
    #[error("request {offset:#x}+{len:#x} lies outside the image of {size:#x} bytes")]
    OutOfRange {
        /// First byte asked for.
        offset: u64,
        /// Bytes asked for.
        len: u64,
        /// The image's guest-visible length.
        size: u64,
    },
    /// The host I/O failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not a usable image of the format it was opened as (corrupt, truncated, or using a feature
    /// that is not supported).
    #[error("{path} is not a usable {format} image: {reason}")]
    BadImage {
        /// The image path.
        path: String,
        /// The format it was opened as.
        format: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A qcow version 1 image: an old format neither imago nor QEMU's newer tools write any more.
    #[error(
        "{path} is a qcow (version 1) image, which is not supported: convert it with \
         `qemu-img convert -O qcow2 {path} NEW.qcow2` (or `-O raw` for a raw image) and use the result"
    )]
    QcowV1 {
        /// The image path.
        path: String,
    },
    /// The configured format and the one the file's header shows disagree.
    #[error("{path} was configured as {configured} but {found}")]
    FormatMismatch {
        /// The image path.
        path: String,
        /// The configured format.
        configured: &'static str,
        /// What the header shows, and why that matters.
        found: &'static str,
    },
    /// A backing file of a qcow2 image could not be opened.
    #[error("cannot open {backing}, the backing file of {path}: {source}")]
    Backing {
        /// The image naming the backing file.
        path: String,
        /// The backing file, as resolved.
        backing: String,
        /// Why it could not be opened.
        source: Box<BlockError>,
    },
    /// A qcow2 read, write or flush failed: host I/O, or corrupt metadata met on the way.
    #[error("qcow2 {op} on {path} failed: {source}")]
    Qcow2Io {
        /// The image path.
        path: String,
        /// "read", "write", "flush" or "sync".
        op: &'static str,
        /// What failed.
        source: std::io::Error,
    },
}

/// A fixed-length, byte-addressed disk image.
///
/// Implementations are shared between the device (vCPU threads) and the toolstack side (medium changes), so
/// every method takes `&self`.
pub trait BlockBackend: Send + Sync {
    /// The guest-visible length in bytes. For raw images this is the file length rounded UP to a whole
    /// 512-byte sector (see [`raw`]).
    fn len_bytes(&self) -> u64;
    /// Fills `buf` with the bytes at `offset`. Bytes past the end of the underlying file (the padding of a
    /// partial last sector) read as zeros. A request past [`BlockBackend::len_bytes`] is an error.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError>;
    /// Writes `buf` at `offset`. A request past [`BlockBackend::len_bytes`] is an error; so is any write to a
    /// read-only image.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), BlockError>;
    /// Makes every completed write durable (`fdatasync`).
    fn flush(&self) -> Result<(), BlockError>;
    /// Whether writes are refused.
    fn is_read_only(&self) -> bool;
    /// The guest-visible length in whole 512-byte sectors.
    fn sectors(&self) -> u64 {
        self.len_bytes() / SECTOR_SIZE
    }
}

/// Checks that `offset..offset+len` lies within `size` bytes.
pub(crate) fn check_range(offset: u64, len: u64, size: u64) -> Result<(), BlockError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BlockError::OutOfRange { offset, len, size }),
    }
}

/// The image format a disk is configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// Decide by the file's header: qcow2 if it has a qcow2 header, raw otherwise.
    Auto,
    /// A raw image; a file with a qcow header is refused.
    Raw,
    /// A qcow2 image; anything else is refused.
    Qcow2,
}

/// What the first bytes of an image file show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// No qcow magic: raw (a raw image can hold anything, so this is only "not qcow").
    Raw,
    /// The qcow magic with version 2 or 3.
    Qcow2,
    /// The qcow magic with version 1.
    QcowV1,
    /// The qcow magic with a version no qcow format has.
    QcowUnknown(u32),
}

/// The magic number that starts qcow and qcow2 images.
const QCOW_MAGIC: [u8; 4] = *b"QFI\xfb";

/// Reads the magic and version at the start of `file` (named `path` in errors). A file shorter than those
/// 8 bytes cannot be qcow, so it is raw.
pub(crate) fn sniff(file: &File, path: &str) -> Result<Detected, BlockError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(BlockError::Open {
                    path: path.to_string(),
                    source,
                })
            }
        }
    }
    if got < head.len() || head[..4] != QCOW_MAGIC {
        return Ok(Detected::Raw);
    }
    Ok(
        match u32::from_be_bytes([head[4], head[5], head[6], head[7]]) {
            1 => Detected::QcowV1,
            2 | 3 => Detected::Qcow2,
            v => Detected::QcowUnknown(v),
        },
    )
}

/// Opens the disk image at `path` as `format`, read-write (exclusive lock) or read-only (shared lock).
///
/// The file is opened and locked once, and its header read from that same descriptor, so what is checked is
/// what is served. [`ImageKind::Auto`] serves qcow2 (version 2 or 3) images as qcow2 and everything else as
/// raw. A qcow version 1 image is refused with [`BlockError::QcowV1`] (saying how to convert it) whatever
/// the format, and so is a qcow header with an unknown version. [`ImageKind::Raw`] refuses any qcow header
/// with [`BlockError::FormatMismatch`]: served raw, the guest would see the image's metadata and its writes
/// would destroy the image. [`ImageKind::Qcow2`] refuses anything but qcow2.
pub fn open_image(
    path: &Path,
    read_only: bool,
    format: ImageKind,
) -> Result<Arc<dyn BlockBackend>, BlockError> {
    let name = path.display().to_string();
    let (file, file_len) = raw::open_locked(path, read_only)?;
    let detected = sniff(&file, &name)?;
    match (format, detected) {
        (_, Detected::QcowV1) => Err(BlockError::QcowV1 { path: name }),
        (_, Detected::QcowUnknown(version)) => Err(BlockError::BadImage {
            path: name,
            format: "qcow2",
            reason: format!("it has the qcow magic number but an unknown version {version}"),
        }),
        (ImageKind::Raw, Detected::Qcow2) => Err(BlockError::FormatMismatch {
            path: name,
            configured: "raw",
            found: "it has a qcow2 header: served as raw, the guest would see the qcow2 metadata as disk \
                    contents and its writes would destroy the image (configure it as qcow2)",
        }),
        (ImageKind::Qcow2, Detected::Raw) => Err(BlockError::FormatMismatch {
            path: name,
            configured: "qcow2",
            found: "it has no qcow2 header (is it a raw image?)",
        }),
        (ImageKind::Auto | ImageKind::Qcow2, Detected::Qcow2) => Ok(Arc::new(
            Qcow2File::from_locked(file, file_len, path, read_only)?,
        )),
        (ImageKind::Auto | ImageKind::Raw, Detected::Raw) => {
            Ok(Arc::new(RawFile::from_locked(file, file_len, read_only)))
        }
    }
}
