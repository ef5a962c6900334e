//! qcow2 images, through the [`imago`] crate's qcow2 driver.
//!
//! The qcow2 format itself (L1/L2 tables, refcounts, cluster allocation, copy-on-write of clusters shared with
//! internal snapshots, compressed clusters) is entirely imago's: it is written by a QEMU block-layer
//! maintainer and tested against QEMU's own images, which a home-grown implementation would not be. imago is
//! built with its `sync` feature, so every call is a plain blocking function on the calling vCPU thread, as
//! the [`BlockBackend`] contract wants; there is no async runtime.
//!
//! What this module adds around imago:
//!
//! * **Opening like [`super::RawFile`].** The image file is opened by [`super::raw::open_locked`] (`O_RDONLY`
//!   and a shared `flock` for a read-only image, an exclusive non-blocking `flock` for a writable one, a
//!   clear [`BlockError::Locked`] when refused) and handed to imago already open, so imago never opens the
//!   image path itself.
//! * **A sanity check of the header before imago sees it** ([`check_header`]): imago bounds its own tables
//!   (the L1 table is at most 32 MiB) but reads past the end of the file as zeros, so an L1 or refcount table
//!   lying past the end of a truncated image would silently read as "nothing allocated"; it also does not
//!   look at the encryption field. We refuse such images, as QEMU does, with a [`BlockError::BadImage`]
//!   saying what is wrong, and also refuse the dirty and corrupt bits with the `qemu-img check -r all`
//!   repair hint.
//! * **Backing files, opened by us rather than by imago's implicit-open machinery.** A qcow2 image may name a
//!   backing file whose data shows through wherever the image has no cluster allocated (imago handles the
//!   reads; writes allocate a cluster in the top image, copying the rest of that cluster from the backing
//!   file). We resolve the name relative to the image's directory, open the backing file read-only with a
//!   shared lock (so no other domain can hold it writable while it backs ours, and we never write to it),
//!   take its format from the header's backing-format extension or, when absent, from its own header
//!   (`qcow2` or `raw`; any other named format is refused), and follow chains at most [`MAX_BACKING_DEPTH`]
//!   deep, which also stops a chain that loops. External data files (a qcow2 v3 feature used by almost
//!   nobody) are refused. Like QEMU and Xen's qemu-dm, we trust the backing-file name in an image header as
//!   much as the administrator-configured image path itself: an image from an untrusted source can name
//!   any file the device model may read as its backing file.
//! * **Sizes.** The guest-visible length is the header's virtual size rounded DOWN to a whole sector, as
//!   QEMU's qcow2 driver does (`qemu-img` only creates sector multiples anyway).
//! * **Flushing.** [`BlockBackend::flush`] writes imago's cached metadata (L2 tables, refcount blocks) and
//!   then `fsync`s the image file, so a completed guest FLUSH CACHE survives a host crash. Dropping a
//!   [`Qcow2File`] flushes imago's caches too (errors there can only be logged).

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use imago::file::File as ImagoFile;
use imago::qcow2::Qcow2;
use imago::raw::Raw;
use imago::{DenyImplicitOpenGate, FormatAccess, FormatDriverBuilder, StorageOpenOptions};

use super::raw::open_locked;
use super::{check_range, sniff, BlockBackend, BlockError, Detected, SECTOR_SIZE};

/// How many backing files deep a chain may go. Real chains (a base image plus a few overlays) are short;
/// the limit turns a chain that loops back on itself into an error instead of endless recursion.
pub const MAX_BACKING_DEPTH: usize = 16;

/// The largest L1 table we accept, in entries: 32 MiB, QEMU's `QCOW_MAX_L1_SIZE` and imago's own limit.
const MAX_L1_ENTRIES: u64 = 4 * 1024 * 1024;
/// The largest refcount table we accept, in bytes: QEMU's `QCOW_MAX_REFTABLE_SIZE`.
const MAX_REFTABLE_BYTES: u64 = 8 * 1024 * 1024;
/// Length of the version 2 header, and of the fixed part of the version 3 header.
const V2_HEADER_LEN: u64 = 72;
const V3_HEADER_LEN: u64 = 104;
/// Incompatible feature bits we explain ourselves rather than leaving imago's generic refusal.
const INCOMPAT_DIRTY: u64 = 1 << 0;
const INCOMPAT_CORRUPT: u64 = 1 << 1;

/// A qcow2 (version 2 or 3) image, possibly with a chain of backing files.
pub struct Qcow2File {
    image: FormatAccess<ImagoFile>,
    /// The guest-visible length: the virtual size rounded down to a sector.
    len: u64,
    read_only: bool,
    /// The backing files actually opened, nearest first.
    backing_chain: Vec<PathBuf>,
    path: String,
}

impl fmt::Debug for Qcow2File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qcow2File")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("read_only", &self.read_only)
            .field("backing_chain", &self.backing_chain)
            .finish_non_exhaustive()
    }
}

impl Qcow2File {
    /// Opens the qcow2 image at `path`, read-write (exclusive lock) or read-only (`O_RDONLY`, shared lock),
    /// with its backing chain (read-only, shared locks). A file that is not qcow2 version 2 or 3 is refused.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, BlockError> {
        let (file, file_len) = open_locked(path, read_only)?;
        Self::from_locked(file, file_len, path, read_only)
    }

    /// Opens the qcow2 image in `file`, already opened and locked by [`open_locked`].
    pub(crate) fn from_locked(
        file: File,
        file_len: u64,
        path: &Path,
        read_only: bool,
    ) -> Result<Self, BlockError> {
        let mut backing_chain = Vec::new();
        let image = open_qcow2(file, file_len, path, read_only, 0, &mut backing_chain)?;
        Ok(Qcow2File {
            len: image.size() / SECTOR_SIZE * SECTOR_SIZE,
            image,
            read_only,
            backing_chain,
            path: path.display().to_string(),
        })
    }

    /// The backing files in use (resolved paths), nearest first; empty for a standalone image.
    pub fn backing_chain(&self) -> &[PathBuf] {
        &self.backing_chain
    }
}

impl BlockBackend for Qcow2File {
    fn len_bytes(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        check_range(offset, buf.len() as u64, self.len)?;
        self.image
            .read(buf, offset)
            .map_err(|e| self.io_error("read", e))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), BlockError> {
        if self.read_only {
            return Err(BlockError::ReadOnly);
        }
        check_range(offset, buf.len() as u64, self.len)?;
        self.image
            .write(buf, offset)
            .map_err(|e| self.io_error("write", e))
    }

    fn flush(&self) -> Result<(), BlockError> {
        if self.read_only {
            return Ok(());
        }
        // Metadata first (imago's caches of L2 tables and refcount blocks), then the file itself to disk.
        self.image.flush().map_err(|e| self.io_error("flush", e))?;
        self.image.sync().map_err(|e| self.io_error("sync", e))
    }

    fn is_read_only(&self) -> bool {
        self.read_only
    }
}

impl Qcow2File {
    /// An I/O failure inside imago (the host's I/O or corrupt metadata found on the way), naming the image.
    fn io_error(&self, op: &'static str, source: std::io::Error) -> BlockError {
        BlockError::Qcow2Io {
            path: self.path.clone(),
            op,
            source,
        }
    }
}

/// Opens one qcow2 layer from its locked `file`, then its backing file (recursively, `depth` deep so far),
/// recording every backing file opened in `chain`.
fn open_qcow2(
    file: File,
    file_len: u64,
    path: &Path,
    read_only: bool,
    depth: usize,
    chain: &mut Vec<PathBuf>,
) -> Result<FormatAccess<ImagoFile>, BlockError> {
    let name = path.display().to_string();
    let bad = |reason: String| BlockError::BadImage {
        path: name.clone(),
        format: "qcow2",
        reason,
    };
    check_header(&file, file_len, !read_only).map_err(&bad)?;

    // imago keeps `filename` only for resolving relative names, which we do ourselves; it never reopens it.
    let opts = StorageOpenOptions::new().write(!read_only).filename(path);
    let storage = ImagoFile::from_open_file(file, opts).map_err(|e| bad(e.to_string()))?;
    let mut qcow2 =
        Qcow2::<ImagoFile>::open_image(storage, !read_only).map_err(|e| bad(e.to_string()))?;

    if qcow2.requires_external_data_file() {
        return Err(bad(
            "it keeps its data in an external data file, which is not supported; \
             convert it with `qemu-img convert -O qcow2`"
                .into(),
        ));
    }
    qcow2.set_data_file(None);

    let backing = match qcow2.implicit_backing_file() {
        None => None,
        Some(backing_name) => {
            let backing_format = qcow2.implicit_backing_format().cloned();
            let backing_path = resolve_backing(path, backing_name);
            Some(
                open_backing(&backing_path, backing_format.as_deref(), depth + 1, chain).map_err(
                    |source| BlockError::Backing {
                        path: name.clone(),
                        backing: backing_path.display().to_string(),
                        source: Box::new(source),
                    },
                )?,
            )
        }
    };
    qcow2.set_backing(backing);
    Ok(FormatAccess::new(qcow2))
}

/// A backing file name from a header, relative names being relative to the directory of the image naming it
/// (as QEMU resolves them).
fn resolve_backing(image: &Path, backing: &str) -> PathBuf {
    let backing = Path::new(backing);
    if backing.is_absolute() {
        return backing.to_path_buf();
    }
    match image.parent() {
        Some(dir) => dir.join(backing),
        None => backing.to_path_buf(),
    }
}

/// Opens a backing file read-only (shared lock): qcow2 or raw, by the format the overlay names or, when it
/// names none, by the backing file's own header.
fn open_backing(
    path: &Path,
    format: Option<&str>,
    depth: usize,
    chain: &mut Vec<PathBuf>,
) -> Result<FormatAccess<ImagoFile>, BlockError> {
    let name = path.display().to_string();
    if depth > MAX_BACKING_DEPTH {
        return Err(BlockError::BadImage {
            path: name,
            format: "qcow2",
            reason: format!(
                "the backing chain is more than {MAX_BACKING_DEPTH} files deep (does it loop back on itself?)"
            ),
        });
    }
    let (file, file_len) = open_locked(path, true)?;
    chain.push(path.to_path_buf());
    let detected = sniff(&file, &name)?;
    let is_qcow2 = match format {
        Some("qcow2") => true,
        Some("raw") => false,
        Some(other) => {
            return Err(BlockError::BadImage {
                path: name,
                format: "backing",
                reason: format!("backing format {other:?} is not supported (only qcow2 and raw)"),
            })
        }
        None => match detected {
            Detected::Qcow2 => true,
            Detected::Raw => false,
            Detected::QcowV1 => return Err(BlockError::QcowV1 { path: name }),
            Detected::QcowUnknown(version) => {
                return Err(BlockError::BadImage {
                    path: name,
                    format: "qcow2",
                    reason: format!("unknown qcow version {version}"),
                })
            }
        },
    };
    if is_qcow2 {
        return open_qcow2(file, file_len, path, true, depth, chain);
    }
    if detected != Detected::Raw {
        // The overlay says raw; honour it (that is what the header asks for), but the guest will then see
        // the backing file's qcow metadata as data. Reading cannot damage anything, so this is allowed.
        log::warn!("{name}: used as a raw backing file, but its header looks like qcow");
    }
    let opts = StorageOpenOptions::new().write(false).filename(path);
    let storage = ImagoFile::from_open_file(file, opts).map_err(|e| BlockError::BadImage {
        path: name.clone(),
        format: "raw",
        reason: e.to_string(),
    })?;
    let raw = Raw::builder(storage)
        .write(false)
        .open(DenyImplicitOpenGate::default())
        .map_err(|e| BlockError::BadImage {
            path: name,
            format: "raw",
            reason: e.to_string(),
        })?;
    Ok(FormatAccess::new(raw))
}

/// Big-endian fields of the qcow2 header.
fn be32(h: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(s) = h.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    u32::from_be_bytes(b)
}

fn be64(h: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = h.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_be_bytes(b)
}

/// Refuses qcow2 headers that imago would accept but that cannot be served correctly: truncated headers,
/// encryption, the dirty/corrupt bits, tables lying past the end of the file, an L1 table too small for the
/// virtual size or absurdly large. Everything else (cluster sizes, alignment, header extensions, unknown
/// incompatible features) imago checks itself. A `writable` image's refcounts are checked too
/// ([`check_refcounts`]). Returns why the image is refused.
fn check_header(file: &File, file_len: u64, writable: bool) -> Result<(), String> {
    let mut h = [0u8; V3_HEADER_LEN as usize];
    let want = file_len.min(V3_HEADER_LEN) as usize;
    file.read_exact_at(&mut h[..want], 0)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    if want < 8 {
        return Err(format!("truncated header ({file_len} bytes)"));
    }
    let version = be32(&h, 4);
    let header_len = match version {
        2 => V2_HEADER_LEN,
        3 => V3_HEADER_LEN,
        v => return Err(format!("qcow version {v} is not qcow2 (version 2 or 3)")),
    };
    if file_len < header_len {
        return Err(format!(
            "truncated header ({file_len} bytes, a version {version} header has {header_len})"
        ));
    }
    let cluster_bits = be32(&h, 20);
    if !(9..=21).contains(&cluster_bits) {
        return Err(format!(
            "cluster size 2^{cluster_bits} is outside 512 bytes..2 MiB"
        ));
    }
    let cluster_size = 1u64 << cluster_bits;
    let size = be64(&h, 24);
    if size > i64::MAX as u64 {
        return Err(format!("virtual size {size:#x} is absurd"));
    }
    if be32(&h, 32) != 0 {
        return Err(
            "it is encrypted, which is not supported; decrypt it with `qemu-img convert`".into(),
        );
    }
    if version == 3 {
        let incompat = be64(&h, 72);
        if incompat & INCOMPAT_CORRUPT != 0 {
            return Err(
                "it is marked corrupt; check and repair it with `qemu-img check -r all` first"
                    .into(),
            );
        }
        if incompat & INCOMPAT_DIRTY != 0 {
            return Err(
                "it is marked dirty (not closed cleanly with lazy refcounts); repair it with \
                 `qemu-img check -r all` first"
                    .into(),
            );
        }
    }

    // The L1 table must cover the whole virtual size: one entry per L2 table, each mapping
    // cluster_size / 8 clusters.
    let l1_entries = u64::from(be32(&h, 36));
    let bytes_per_l1_entry = cluster_size * (cluster_size / 8);
    let needed = size.div_ceil(bytes_per_l1_entry);
    if l1_entries > MAX_L1_ENTRIES {
        return Err(format!(
            "L1 table of {l1_entries} entries is absurd (at most {MAX_L1_ENTRIES})"
        ));
    }
    if l1_entries < needed {
        return Err(format!(
            "L1 table of {l1_entries} entries is too small for a virtual size of {size} bytes ({needed} needed)"
        ));
    }
    let l1_offset = be64(&h, 40);
    if l1_entries > 0 {
        check_table("L1 table", l1_offset, l1_entries * 8, file_len)?;
    }

    let reftable_bytes = u64::from(be32(&h, 56)).saturating_mul(cluster_size);
    if reftable_bytes == 0 || reftable_bytes > MAX_REFTABLE_BYTES {
        return Err(format!(
            "refcount table of {reftable_bytes} bytes is absurd (1 cluster..{MAX_REFTABLE_BYTES} bytes)"
        ));
    }
    let reftable_offset = be64(&h, 48);
    check_table("refcount table", reftable_offset, reftable_bytes, file_len)?;

    if writable {
        let refcount_order = if version == 3 { be32(&h, 96) } else { 4 };
        if refcount_order > 6 {
            return Err(format!("refcount order {refcount_order} is absurd"));
        }
        let refcounts = Refcounts {
            file,
            file_len,
            cluster_bits,
            refcount_bits: 1 << refcount_order,
            reftable_offset,
            reftable_bytes,
        };
        let mut metadata = vec![(0, cluster_size, "the header")];
        metadata.push((reftable_offset, reftable_bytes, "the refcount table"));
        if l1_entries > 0 {
            metadata.push((l1_offset, l1_entries * 8, "the L1 table"));
        }
        refcounts.check(&metadata)?;
    }
    Ok(())
}

/// Just enough of a writable image's refcount structure to know that imago's cluster allocator can work on
/// it without destroying it or recursing without bound.
///
/// imago's allocator trusts the refcounts: a cluster with refcount 0 is free for the taking, and a part of
/// the file with no refcount block gets a new block placed at the first cluster that part covers. On an
/// image whose refcount table lost an entry, that lands the new block on the header (cluster 0), and we have
/// seen the allocator then recurse until the stack overflows, which aborts the whole device model. So a
/// writable image must have a refcount block for every cluster of the file, each inside the file, and the
/// clusters of the header, the refcount table, the refcount blocks and the L1 table must be counted as in
/// use. (QEMU guards the same cases with its metadata-overlap checks; imago has none.) This is not a full
/// `qemu-img check`: wrong refcounts of data clusters and L2 tables can still make writes overwrite data,
/// as they can under QEMU.
struct Refcounts<'a> {
    file: &'a File,
    file_len: u64,
    cluster_bits: u32,
    refcount_bits: u64,
    reftable_offset: u64,
    reftable_bytes: u64,
}

impl Refcounts<'_> {
    const REPAIR: &'static str = "repair it with `qemu-img check -r all` or open it read-only";

    fn check(&self, metadata: &[(u64, u64, &str)]) -> Result<(), String> {
        let cluster_size = 1u64 << self.cluster_bits;
        let per_block = (cluster_size * 8) / self.refcount_bits;
        let file_clusters = self.file_len.div_ceil(cluster_size);
        let blocks = file_clusters.div_ceil(per_block);
        if blocks * 8 > self.reftable_bytes {
            return Err(format!(
                "its refcount table does not cover the whole file; {}",
                Self::REPAIR
            ));
        }
        for block in 0..blocks {
            let offset = self.block_offset(block)?;
            self.check_in_use(offset, cluster_size, "a refcount block")?;
        }
        for &(offset, len, what) in metadata {
            self.check_in_use(offset, len, what)?;
        }
        Ok(())
    }

    /// The offset of refcount block `block`, which must exist, be aligned and lie inside the file.
    fn block_offset(&self, block: u64) -> Result<u64, String> {
        let entry = self.read_be(self.reftable_offset + block * 8, 8)?;
        let offset = entry & !0x1ff;
        let cluster_size = 1u64 << self.cluster_bits;
        if entry == 0
            || offset % cluster_size != 0
            || offset.saturating_add(cluster_size) > self.file_len
        {
            return Err(format!(
                "refcount table entry {block} ({entry:#x}) does not point to a refcount block inside the \
                 file; {}",
                Self::REPAIR
            ));
        }
        Ok(offset)
    }

    /// Every cluster of `offset..offset+len` must have a non-zero refcount.
    fn check_in_use(&self, offset: u64, len: u64, what: &str) -> Result<(), String> {
        let cluster_size = 1u64 << self.cluster_bits;
        let per_block = (cluster_size * 8) / self.refcount_bits;
        let first = offset >> self.cluster_bits;
        let end = offset.saturating_add(len).div_ceil(cluster_size);
        for cluster in first..end {
            let block = self.block_offset(cluster / per_block)?;
            let index = cluster % per_block;
            let bit = index * self.refcount_bits;
            let refcount = if self.refcount_bits >= 8 {
                self.read_be(block + bit / 8, (self.refcount_bits / 8) as usize)?
            } else {
                // Sub-byte refcounts are packed from the least significant bit of each byte up (as QEMU does).
                let byte = self.read_be(block + bit / 8, 1)?;
                (byte >> (bit % 8)) & ((1 << self.refcount_bits) - 1)
            };
            if refcount == 0 {
                return Err(format!(
                    "cluster {cluster} ({what}) has refcount 0, so it would be handed out again; {}",
                    Self::REPAIR
                ));
            }
        }
        Ok(())
    }

    /// A big-endian number of `len` (at most 8) bytes at `offset`.
    fn read_be(&self, offset: u64, len: usize) -> Result<u64, String> {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b[8 - len..], offset)
            .map_err(|e| format!("cannot read its refcounts at {offset:#x}: {e}"))?;
        Ok(u64::from_be_bytes(b))
    }
}

/// Checks that a table of `len` bytes at `offset` lies inside the file.
fn check_table(what: &str, offset: u64, len: u64, file_len: u64) -> Result<(), String> {
    match offset.checked_add(len) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(format!(
            "{what} at {offset:#x} ({len} bytes) lies past the end of the file ({file_len} bytes): \
             the image is truncated or corrupt"
        )),
    }
}

#[cfg(test)]
mod tests;
