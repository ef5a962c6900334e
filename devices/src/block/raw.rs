//! Raw images: a regular file or a host block device holding the guest's sectors one after another.
//!
//! **Locking.** Two device models writing one image would corrupt it silently, so a writable image is opened
//! with `flock(LOCK_EX | LOCK_NB)` and a read-only one with `flock(LOCK_SH | LOCK_NB)`: any number of domains
//! may share a read-only image (an installation ISO), but a writer excludes everyone else. A refused lock is
//! reported as [`BlockError::Locked`] at once instead of waiting. `flock` locks are advisory: they protect
//! against other device models (and `qemu-img`, which takes its own kind of locks, is not covered).
//!
//! **Sizes that are not a multiple of 512.** QEMU rounds the length of such an image UP to a whole sector
//! (its block layer computes the sector count with a round-up division) and reads of the missing tail
//! return zeros. We do the same, so a guest sees the same capacity under either device model. A write
//! covering that padding stores only the bytes that fall inside the file and drops the rest: the image never
//! grows (which would be impossible on a block device anyway), and nothing is written beyond what the guest
//! asked for.
//!
//! I/O uses positioned `pread`/`pwrite` (`FileExt`), so the file offset is never shared state.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

use super::{check_range, BlockBackend, BlockError, SECTOR_SIZE};

/// A raw image file or block device.
#[derive(Debug)]
pub struct RawFile {
    file: File,
    /// The length of the file itself.
    file_len: u64,
    /// The guest-visible length: `file_len` rounded up to a sector.
    len: u64,
    read_only: bool,
}

impl RawFile {
    /// Opens `path` read-write (`read_only = false`, exclusive lock) or read-only (`O_RDONLY`, shared lock).
    pub fn open(path: &Path, read_only: bool) -> Result<Self, BlockError> {
        let (file, file_len) = open_locked(path, read_only)?;
        Ok(Self::from_locked(file, file_len, read_only))
    }

    /// Wraps a file already opened and locked by [`open_locked`] (so that [`super::open_image`] can look at
    /// the header of the very file it then serves, without opening or locking it twice).
    pub(crate) fn from_locked(file: File, file_len: u64, read_only: bool) -> Self {
        let len = file_len.div_ceil(SECTOR_SIZE).saturating_mul(SECTOR_SIZE);
        RawFile {
            file,
            file_len,
            len,
            read_only,
        }
    }

    /// The length of the underlying file, which may end inside the last guest-visible sector.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }
}

/// Opens `path` for an image back-end of any format: read-write or `O_RDONLY`, checked to be a regular file or
/// a block device, and locked (`LOCK_EX` for a writer, `LOCK_SH` for a reader, never waiting; see the module
/// documentation). Returns the file and its length in bytes (block devices included).
pub(crate) fn open_locked(path: &Path, read_only: bool) -> Result<(File, u64), BlockError> {
    let name = path.display().to_string();
    let mut file = OpenOptions::new()
        .read(true)
        .write(!read_only)
        .open(path)
        .map_err(|source| BlockError::Open {
            path: name.clone(),
            source,
        })?;
    let file_type = file
        .metadata()
        .map_err(|source| BlockError::Size {
            path: name.clone(),
            source,
        })?
        .file_type();
    if !(file_type.is_file() || file_type.is_block_device()) {
        return Err(BlockError::NotAnImage { path: name });
    }
    let (op, wanted) = if read_only {
        (libc::LOCK_SH, "shared")
    } else {
        (libc::LOCK_EX, "exclusive")
    };
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(if err.kind() == std::io::ErrorKind::WouldBlock {
            BlockError::Locked { path: name, wanted }
        } else {
            BlockError::Open {
                path: name,
                source: err,
            }
        });
    }
    // Seeking to the end gives the size of block devices too, whose metadata length is 0.
    let file_len = file
        .seek(SeekFrom::End(0))
        .map_err(|source| BlockError::Size { path: name, source })?;
    Ok((file, file_len))
}

impl BlockBackend for RawFile {
    fn len_bytes(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len() as u64, self.len)?;
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            match self.file.read_at(&mut buf[done..], at) {
                // End of file: the rest is the zero padding of the last sector (or the file shrank under us).
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf[done..].fill(0);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, buf.len() as u64, self.len)?;
        // Only the part inside the file is stored; the padding of a partial last sector is dropped.
        let inside = self.file_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        self.file.write_all_at(&buf[..inside], offset)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        if self.read_only {
            return Ok(());
        }
        self.file.sync_data()?;
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A temporary file removed on drop.
    pub(crate) struct TempImage(pub(crate) PathBuf);

    impl TempImage {
        /// A new file in the temp directory holding `contents`.
        pub(crate) fn new(contents: &[u8]) -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "devices-block-test-{}-{}.img",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempImage(path)
        }

        pub(crate) fn contents(&self) -> Vec<u8> {
            std::fs::read(&self.0).unwrap()
        }
    }

    impl Drop for TempImage {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `n` bytes of a recognisable pattern (each 512-byte sector starts with its number).
    pub(crate) fn pattern(n: usize) -> Vec<u8> {
        let mut v: Vec<u8> = (0..n).map(|i| (i * 7 + i / 512) as u8).collect();
        for (s, chunk) in v.chunks_mut(512).enumerate() {
            let tag = (s as u32).to_le_bytes();
            let k = chunk.len().min(4);
            chunk[..k].copy_from_slice(&tag[..k]);
        }
        v
    }

    #[test]
    fn reads_and_writes_at_offsets() {
        let img = TempImage::new(&pattern(4096));
        let f = RawFile::open(&img.0, false).unwrap();
        assert_eq!(f.len_bytes(), 4096);
        assert_eq!(f.sectors(), 8);
        let mut buf = [0u8; 100];
        f.read_at(1000, &mut buf).unwrap();
        assert_eq!(&buf[..], &pattern(4096)[1000..1100]);
        f.write_at(512, &[0xab; 512]).unwrap();
        f.flush().unwrap();
        drop(f);
        let c = img.contents();
        assert_eq!(&c[512..1024], &[0xab; 512]);
        assert_eq!(&c[..512], &pattern(4096)[..512]);
    }

    #[test]
    fn partial_last_sector_is_padded_on_read_and_never_grows_the_file() {
        let img = TempImage::new(&pattern(1000));
        let f = RawFile::open(&img.0, false).unwrap();
        assert_eq!(f.file_len(), 1000);
        assert_eq!(f.len_bytes(), 1024, "rounded up like QEMU");
        let mut buf = [0xeeu8; 512];
        f.read_at(512, &mut buf).unwrap();
        assert_eq!(&buf[..488], &pattern(1000)[512..]);
        assert!(buf[488..].iter().all(|&b| b == 0));
        f.write_at(512, &[0x5a; 512]).unwrap();
        drop(f);
        let c = img.contents();
        assert_eq!(c.len(), 1000);
        assert!(c[512..].iter().all(|&b| b == 0x5a));
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let img = TempImage::new(&[0u8; 1024]);
        let f = RawFile::open(&img.0, false).unwrap();
        let mut buf = [0u8; 512];
        assert!(matches!(
            f.read_at(1024, &mut buf),
            Err(BlockError::OutOfRange { .. })
        ));
        assert!(matches!(
            f.read_at(u64::MAX - 10, &mut buf),
            Err(BlockError::OutOfRange { .. })
        ));
        assert!(matches!(
            f.write_at(600, &buf),
            Err(BlockError::OutOfRange { .. })
        ));
    }

    #[test]
    fn read_only_images_refuse_writes_and_stay_unchanged() {
        let img = TempImage::new(&pattern(1024));
        let f = RawFile::open(&img.0, true).unwrap();
        assert!(f.is_read_only());
        assert!(matches!(
            f.write_at(0, &[1; 512]),
            Err(BlockError::ReadOnly)
        ));
        f.flush().unwrap();
        drop(f);
        assert_eq!(img.contents(), pattern(1024));
    }

    #[test]
    fn a_writer_excludes_everyone_and_readers_share() {
        let img = TempImage::new(&[0u8; 512]);
        let r1 = RawFile::open(&img.0, true).unwrap();
        let r2 = RawFile::open(&img.0, true).unwrap();
        let err = RawFile::open(&img.0, false).unwrap_err();
        assert!(matches!(
            err,
            BlockError::Locked {
                wanted: "exclusive",
                ..
            }
        ));
        assert!(err.to_string().contains("locked"));
        drop((r1, r2));
        let w = RawFile::open(&img.0, false).unwrap();
        assert!(matches!(
            RawFile::open(&img.0, true),
            Err(BlockError::Locked {
                wanted: "shared",
                ..
            })
        ));
        assert!(matches!(
            RawFile::open(&img.0, false),
            Err(BlockError::Locked { .. })
        ));
        drop(w);
        assert!(RawFile::open(&img.0, false).is_ok());
    }

    #[test]
    fn missing_files_and_directories_are_refused() {
        let err = RawFile::open(Path::new("/nonexistent/disk.img"), true).unwrap_err();
        assert!(matches!(err, BlockError::Open { .. }));
        let err = RawFile::open(&std::env::temp_dir(), true).unwrap_err();
        assert!(matches!(err, BlockError::NotAnImage { .. }));
    }
}
