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
//! Only raw images (regular files or host block devices) exist so far ([`raw::RawFile`]). qcow2 and other
//! formats are not implemented; they would be further implementations of the same trait.

pub mod raw;

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
