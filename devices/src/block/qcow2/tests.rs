//! Tests against images made and checked by QEMU's own tools (`qemu-img`, `qemu-io` from qemu-utils).
//! They fail loudly when those tools are missing rather than skipping: CI installs qemu-utils.

use super::super::{open_image, ImageKind, RawFile};
use super::*;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const MIB: u64 = 1024 * 1024;

/// A temporary directory removed (with its contents) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "devices-qcow2-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a QEMU tool, failing the test loudly if it is missing or fails.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{tool} is needed by these tests (Debian package qemu-utils) but could not be run: {e}"
        )
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qemu_img(args: &[&str]) -> String {
    run("qemu-img", args)
}

/// Writes with `qemu-io` (pattern byte `pattern` over `len` bytes at `offset`).
fn qemu_io_write(image: &Path, pattern: u8, offset: u64, len: u64) {
    run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            &format!("write -P {pattern:#x} {offset} {len}"),
            p(image),
        ],
    );
}

/// The error opening `path` must give.
fn open_err(path: &Path, read_only: bool, kind: ImageKind) -> BlockError {
    match open_image(path, read_only, kind) {
        Ok(b) => panic!(
            "{} opened ({} bytes) as {kind:?}",
            path.display(),
            b.len_bytes()
        ),
        Err(e) => e,
    }
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A new qcow2 image of `size` bytes with `extra` creation options.
fn create(path: &Path, size: u64, extra: &[&str]) {
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend_from_slice(extra);
    args.push(p(path));
    args.push(&size);
    qemu_img(&args);
}

/// The guest-visible contents of `image` as QEMU sees them.
fn qemu_contents(dir: &TempDir, image: &Path) -> Vec<u8> {
    let out = dir.path("converted.raw");
    qemu_img(&["convert", "-O", "raw", p(image), p(&out)]);
    let data = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    data
}

/// `qemu-img check` must find no errors or leaks.
fn assert_qemu_check_clean(image: &Path) {
    let out = qemu_img(&["check", p(image)]);
    assert!(out.contains("No errors were found"), "{out}");
}

/// `n` bytes of a pattern that differs at every offset modulo 251 and per `seed`.
fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i % 251) as u8 ^ seed.wrapping_mul(37))
        .collect()
}

/// A 64 MiB image with 0xab over its first MiB and 0xcd over 64 KiB at 10 MiB.
fn sample_image(dir: &TempDir) -> PathBuf {
    let img = dir.path("sample.qcow2");
    create(&img, 64 * MIB, &[]);
    qemu_io_write(&img, 0xab, 0, MIB);
    qemu_io_write(&img, 0xcd, 10 * MIB, 65536);
    img
}

#[test]
fn reads_data_written_by_qemu_and_unallocated_clusters_as_zeros() {
    let dir = TempDir::new();
    let img = sample_image(&dir);
    let q = Qcow2File::open(&img, true).unwrap();
    assert_eq!(q.len_bytes(), 64 * MIB, "the virtual size, not the file's");
    assert_eq!(q.sectors(), 64 * MIB / 512);
    assert!(q.is_read_only());
    assert!(q.backing_chain().is_empty());

    let mut buf = vec![0u8; 65536];
    q.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0xab));
    // Straddling the end of the written MiB: written data then an unallocated cluster.
    q.read_at(MIB - 512, &mut buf[..1024]).unwrap();
    assert!(buf[..512].iter().all(|&b| b == 0xab));
    assert!(buf[512..1024].iter().all(|&b| b == 0));
    q.read_at(10 * MIB - 100, &mut buf[..300]).unwrap();
    assert!(buf[..100].iter().all(|&b| b == 0));
    assert!(buf[100..300].iter().all(|&b| b == 0xcd));
    buf.fill(0xee);
    q.read_at(64 * MIB - 65536, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0), "unallocated reads as zeros");
    assert!(matches!(
        q.read_at(64 * MIB - 512, &mut buf[..1024]),
        Err(BlockError::OutOfRange { .. })
    ));
}

#[test]
fn writes_survive_reopening_and_qemu_sees_exactly_them() {
    let dir = TempDir::new();
    let img = sample_image(&dir);
    let mut expected = qemu_contents(&dir, &img);
    assert_eq!(expected.len() as u64, 64 * MIB);

    let q = Qcow2File::open(&img, false).unwrap();
    assert!(!q.is_read_only());
    // Inside an allocated cluster, unaligned; across a cluster boundary into unallocated space (needs a new
    // cluster whose untouched part must read as zeros); a 64 KiB write at an odd sector; the last sector.
    let writes: [(u64, usize, u8); 5] = [
        (3 * 512 + 7, 4096, 1),
        (MIB - 4096, 8192, 2),
        (20 * MIB + 512, 65536, 3),
        (64 * MIB - 512, 512, 4),
        (10 * MIB + 100, 10, 5),
    ];
    for &(offset, len, seed) in &writes {
        let data = pattern(seed, len);
        q.write_at(offset, &data).unwrap();
        expected[offset as usize..offset as usize + len].copy_from_slice(&data);
    }
    // Read back before flushing: what imago has cached must be what it returns.
    let mut buf = vec![0u8; 65536];
    q.read_at(20 * MIB + 512, &mut buf).unwrap();
    assert_eq!(buf, pattern(3, 65536));
    assert!(matches!(
        q.write_at(64 * MIB, &[0; 512]),
        Err(BlockError::OutOfRange { .. })
    ));
    q.flush().unwrap();
    drop(q);

    let q = Qcow2File::open(&img, true).unwrap();
    for &(offset, len, seed) in &writes {
        let mut got = vec![0u8; len];
        q.read_at(offset, &mut got).unwrap();
        assert_eq!(got, pattern(seed, len), "at {offset:#x}");
    }
    let mut around = vec![0u8; 1024];
    q.read_at(20 * MIB, &mut around).unwrap();
    assert!(around[..512].iter().all(|&b| b == 0));
    drop(q);

    assert_qemu_check_clean(&img);
    assert!(
        qemu_contents(&dir, &img) == expected,
        "QEMU sees other contents than we wrote"
    );
}

#[test]
fn flush_alone_makes_writes_visible_to_qemu_while_the_image_stays_open() {
    let dir = TempDir::new();
    let img = dir.path("f.qcow2");
    create(&img, 4 * MIB, &[]);
    let q = Qcow2File::open(&img, false).unwrap();
    q.write_at(MIB, &pattern(9, 65536)).unwrap();
    q.flush().unwrap();
    // No drop: only what flush wrote is in the file. (qemu-img's own locks are not flock, so it may read.)
    let got = qemu_contents(&dir, &img);
    assert_eq!(
        &got[MIB as usize..MIB as usize + 65536],
        &pattern(9, 65536)[..]
    );
    assert_qemu_check_clean(&img);
    drop(q);
}

#[test]
fn version_2_images_and_small_clusters_work_too() {
    let dir = TempDir::new();
    let img = dir.path("v2.qcow2");
    create(&img, 8 * MIB, &["-o", "compat=0.10,cluster_size=4096"]);
    qemu_io_write(&img, 0x11, 4096, 4096);
    let q = open_image(&img, false, ImageKind::Auto).unwrap();
    assert_eq!(q.len_bytes(), 8 * MIB);
    let mut buf = [0u8; 8192];
    q.read_at(0, &mut buf).unwrap();
    assert!(buf[..4096].iter().all(|&b| b == 0));
    assert!(buf[4096..].iter().all(|&b| b == 0x11));
    q.write_at(7 * MIB, &pattern(7, 20000)).unwrap();
    q.flush().unwrap();
    drop(q);
    assert_qemu_check_clean(&img);
    let got = qemu_contents(&dir, &img);
    assert_eq!(
        &got[7 * MIB as usize..7 * MIB as usize + 20000],
        &pattern(7, 20000)[..]
    );
}

#[test]
fn read_only_images_refuse_writes_and_stay_bit_identical() {
    let dir = TempDir::new();
    let img = sample_image(&dir);
    let before = std::fs::read(&img).unwrap();
    let q = open_image(&img, true, ImageKind::Qcow2).unwrap();
    assert!(q.is_read_only());
    assert!(matches!(
        q.write_at(0, &[1; 512]),
        Err(BlockError::ReadOnly)
    ));
    let mut buf = vec![0u8; 65536];
    for i in 0..16 {
        q.read_at(i * 4 * MIB, &mut buf).unwrap();
    }
    q.flush().unwrap();
    // A second reader shares the image; a writer is refused while readers hold it.
    let q2 = Qcow2File::open(&img, true).unwrap();
    assert!(matches!(
        Qcow2File::open(&img, false),
        Err(BlockError::Locked {
            wanted: "exclusive",
            ..
        })
    ));
    drop((q, q2));
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only open changed the file"
    );
}

#[test]
fn a_second_writable_open_is_refused_as_locked() {
    let dir = TempDir::new();
    let img = sample_image(&dir);
    let w = Qcow2File::open(&img, false).unwrap();
    let err = Qcow2File::open(&img, false).unwrap_err();
    assert!(
        matches!(
            err,
            BlockError::Locked {
                wanted: "exclusive",
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(
        open_image(&img, false, ImageKind::Auto),
        Err(BlockError::Locked { .. })
    ));
    assert!(matches!(
        open_image(&img, true, ImageKind::Auto),
        Err(BlockError::Locked {
            wanted: "shared",
            ..
        })
    ));
    drop(w);
    assert!(Qcow2File::open(&img, false).is_ok());
}

#[test]
fn detection_by_header() {
    let dir = TempDir::new();
    let qcow2 = sample_image(&dir);

    // Auto on qcow2: the virtual size, and the guest sees the data, not the metadata.
    let b = open_image(&qcow2, true, ImageKind::Auto).unwrap();
    assert_eq!(b.len_bytes(), 64 * MIB);
    let mut head = [0u8; 4];
    b.read_at(0, &mut head).unwrap();
    assert_eq!(head, [0xab; 4]);
    drop(b);

    // Auto on a raw file, including one that is all garbage or shorter than a qcow header.
    for (name, contents) in [
        ("raw.img", pattern(1, 3 * 512)),
        ("garbage.img", b"QFI\xfa\0\0\0\x03 not quite qcow".to_vec()),
        ("short.img", b"QFI".to_vec()),
    ] {
        let path = dir.path(name);
        std::fs::write(&path, &contents).unwrap();
        let b = open_image(&path, true, ImageKind::Auto).unwrap();
        assert_eq!(
            b.len_bytes(),
            contents.len().div_ceil(512) as u64 * 512,
            "{name}"
        );
        let mut got = vec![0u8; contents.len()];
        b.read_at(0, &mut got).unwrap();
        assert_eq!(got, contents, "{name}");
        drop(b);
        assert!(open_image(&path, true, ImageKind::Raw).is_ok());
        let err = open_err(&path, true, ImageKind::Qcow2);
        assert!(matches!(err, BlockError::FormatMismatch { .. }), "{err}");
    }

    // A qcow2 file configured as raw would expose and then lose its metadata.
    let err = open_err(&qcow2, false, ImageKind::Raw);
    assert!(
        matches!(
            err,
            BlockError::FormatMismatch {
                configured: "raw",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("qcow2 header"), "{err}");

    // qcow version 1, whatever the configured format.
    let v1 = dir.path("v1.qcow");
    let mut header = b"QFI\xfb\0\0\0\x01".to_vec();
    header.resize(4096, 0);
    std::fs::write(&v1, &header).unwrap();
    for kind in [ImageKind::Auto, ImageKind::Raw, ImageKind::Qcow2] {
        let err = open_err(&v1, true, kind);
        assert!(matches!(err, BlockError::QcowV1 { .. }), "{kind:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("qemu-img convert -O qcow2") && msg.contains("-O raw"),
            "{msg}"
        );
    }
    assert!(matches!(
        Qcow2File::open(&v1, true),
        Err(BlockError::BadImage { .. })
    ));

    // The qcow magic with a version no qcow ever had.
    let v9 = dir.path("v9.qcow");
    header[7] = 9;
    std::fs::write(&v9, &header).unwrap();
    assert!(matches!(
        open_image(&v9, true, ImageKind::Auto),
        Err(BlockError::BadImage { .. })
    ));
}

#[test]
fn backing_files_show_through_and_are_never_written() {
    let dir = TempDir::new();
    let base_raw = dir.path("base.raw");
    let base_data = pattern(0x42, 2 * MIB as usize);
    std::fs::write(&base_raw, &base_data).unwrap();
    let mid = dir.path("mid.qcow2");
    // Relative backing names resolve against the overlay's directory.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        "base.raw",
        "-F",
        "raw",
        p(&mid),
        "4M",
    ]);
    qemu_io_write(&mid, 0x77, MIB, 65536);
    let top = dir.path("top.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        p(&mid),
        "-F",
        "qcow2",
        p(&top),
    ]);
    let mid_before = std::fs::read(&mid).unwrap();

    let q = Qcow2File::open(&top, false).unwrap();
    assert_eq!(q.len_bytes(), 4 * MIB);
    assert_eq!(q.backing_chain(), &[mid.clone(), base_raw.clone()]);
    let mut buf = vec![0u8; 4096];
    q.read_at(4096, &mut buf).unwrap();
    assert_eq!(buf, base_data[4096..8192]);
    q.read_at(MIB, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0x77));
    q.read_at(3 * MIB, &mut buf).unwrap();
    assert!(
        buf.iter().all(|&b| b == 0),
        "past the end of the raw backing file"
    );
    // The backing files are held shared: nobody may open them writable meanwhile.
    assert!(matches!(
        RawFile::open(&base_raw, false),
        Err(BlockError::Locked { .. })
    ));

    // A small write in the middle of a backed cluster: the rest of the cluster must still show the backing data.
    let mut expected = qemu_contents(&dir, &top);
    q.write_at(8192 + 512, &[0x99; 512]).unwrap();
    expected[8192 + 512..8192 + 1024].fill(0x99);
    q.read_at(8192, &mut buf).unwrap();
    assert_eq!(buf[..512], base_data[8192..8704]);
    assert_eq!(buf[512..1024], [0x99; 512]);
    assert_eq!(buf[1024..], base_data[9216..12288]);
    q.flush().unwrap();
    drop(q);

    assert_eq!(
        std::fs::read(&base_raw).unwrap(),
        base_data,
        "raw base written"
    );
    assert!(
        std::fs::read(&mid).unwrap() == mid_before,
        "qcow2 backing file written"
    );
    assert_qemu_check_clean(&top);
    assert!(qemu_contents(&dir, &top) == expected);
}

#[test]
fn bad_backing_chains_are_errors() {
    let dir = TempDir::new();
    let base = dir.path("base.qcow2");
    create(&base, 4 * MIB, &[]);
    let a = dir.path("a.qcow2");
    let b = dir.path("b.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        p(&base),
        "-F",
        "qcow2",
        p(&a),
    ]);
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        p(&a),
        "-F",
        "qcow2",
        p(&b),
    ]);
    // Unsafe rebase only rewrites the header: a -> b -> a -> ...
    qemu_img(&[
        "rebase",
        "-q",
        "-u",
        "-f",
        "qcow2",
        "-b",
        p(&b),
        "-F",
        "qcow2",
        p(&a),
    ]);
    let err = Qcow2File::open(&a, true).unwrap_err();
    assert!(err.to_string().contains("more than 16 files deep"), "{err}");
    // Writable, the loop meets our own exclusive lock on `a` first.
    let err = Qcow2File::open(&a, false).unwrap_err();
    assert!(matches!(err, BlockError::Backing { .. }), "{err}");
    assert!(err.to_string().contains("locked"), "{err}");

    // A missing backing file.
    let gone = dir.path("gone.qcow2");
    create(&gone, MIB, &[]);
    let orphan = dir.path("orphan.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-b",
        p(&gone),
        "-F",
        "qcow2",
        p(&orphan),
    ]);
    std::fs::remove_file(&gone).unwrap();
    let err = Qcow2File::open(&orphan, true).unwrap_err();
    assert!(matches!(err, BlockError::Backing { .. }), "{err}");
    assert!(err.to_string().contains("gone.qcow2"), "{err}");
}

/// Patches big-endian fields of a copy of `src`'s header, optionally truncating the copy.
fn patched(
    dir: &TempDir,
    src: &Path,
    name: &str,
    fields: &[(usize, &[u8])],
    truncate: Option<u64>,
) -> PathBuf {
    let mut data = std::fs::read(src).unwrap();
    for &(at, bytes) in fields {
        data[at..at + bytes.len()].copy_from_slice(bytes);
    }
    if let Some(len) = truncate {
        data.truncate(len as usize);
    }
    let path = dir.path(name);
    std::fs::write(&path, &data).unwrap();
    path
}

#[test]
fn corrupt_headers_are_refused_with_a_reason() {
    let dir = TempDir::new();
    let good = sample_image(&dir);
    let l1_offset = be64(&std::fs::read(&good).unwrap(), 40);
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        (
            "truncated",
            patched(&dir, &good, "t1", &[], Some(50)),
            "truncated header",
        ),
        (
            "tiny",
            patched(&dir, &good, "t2", &[], Some(12)),
            "truncated header",
        ),
        (
            "absurd size",
            patched(&dir, &good, "s1", &[(24, &u64::MAX.to_be_bytes())], None),
            "absurd",
        ),
        (
            "size beyond L1",
            patched(
                &dir,
                &good,
                "s2",
                &[(24, &(1u64 << 50).to_be_bytes())],
                None,
            ),
            "too small",
        ),
        (
            "absurd L1",
            patched(&dir, &good, "l1", &[(36, &u32::MAX.to_be_bytes())], None),
            "absurd",
        ),
        (
            "L1 offset past EOF",
            patched(
                &dir,
                &good,
                "l2",
                &[(40, &(1u64 << 40).to_be_bytes())],
                None,
            ),
            "past the end",
        ),
        (
            "L1 cut off by truncation",
            patched(&dir, &good, "l3", &[], Some(l1_offset + 4)),
            "past the end",
        ),
        (
            "refcount table past EOF",
            patched(
                &dir,
                &good,
                "r1",
                &[(48, &(1u64 << 45).to_be_bytes())],
                None,
            ),
            "past the end",
        ),
        (
            "no refcount table",
            patched(&dir, &good, "r2", &[(56, &0u32.to_be_bytes())], None),
            "refcount table",
        ),
        (
            "cluster bits",
            patched(&dir, &good, "c1", &[(20, &40u32.to_be_bytes())], None),
            "cluster size",
        ),
        (
            "encrypted",
            patched(&dir, &good, "e1", &[(32, &1u32.to_be_bytes())], None),
            "encrypted",
        ),
        (
            "dirty",
            patched(&dir, &good, "d1", &[(79, &[1])], None),
            "qemu-img check -r all",
        ),
        (
            "corrupt bit",
            patched(&dir, &good, "d2", &[(79, &[2])], None),
            "marked corrupt",
        ),
        (
            "unknown incompatible feature (imago's own check)",
            patched(&dir, &good, "i1", &[(72, &[0x80])], None),
            "incompatible",
        ),
        (
            "unaligned L1 (imago's own check)",
            patched(
                &dir,
                &good,
                "u1",
                &[(40, &(l1_offset + 8).to_be_bytes())],
                None,
            ),
            "Unaligned",
        ),
    ];
    for (what, path, needle) in cases {
        for read_only in [true, false] {
            let err = open_err(&path, read_only, ImageKind::Auto);
            assert!(matches!(err, BlockError::BadImage { .. }), "{what}: {err}");
            assert!(err.to_string().contains(needle), "{what}: {err}");
        }
    }
    // Too short even for the version: Auto serves it as raw (it cannot be qcow), Qcow2File refuses it.
    let stub = patched(&dir, &good, "t3", &[], Some(6));
    let err = Qcow2File::open(&stub, true).unwrap_err();
    assert!(err.to_string().contains("truncated header"), "{err}");
}

#[test]
fn writable_opens_need_sound_refcounts_but_read_only_ones_do_not() {
    let dir = TempDir::new();
    let good = sample_image(&dir);
    let data = std::fs::read(&good).unwrap();
    let reftable = be64(&data, 48) as usize;
    let refblock = (be64(&data, reftable) & !0x1ff) as usize;
    let l1 = be64(&data, 40) as usize;
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        // The case that overflowed imago's allocator stack: a refcount table entry lost.
        (
            "refcount block missing",
            patched(&dir, &good, "m1", &[(reftable, &[0; 8])], None),
            "refcount table entry 0",
        ),
        (
            "refcount block past EOF",
            patched(
                &dir,
                &good,
                "m2",
                &[(reftable, &(1u64 << 40).to_be_bytes())],
                None,
            ),
            "refcount table entry 0",
        ),
        (
            "header free",
            patched(&dir, &good, "m3", &[(refblock, &[0, 0])], None),
            "the header",
        ),
        (
            "L1 free",
            patched(
                &dir,
                &good,
                "m4",
                &[(refblock + 2 * (l1 >> 16), &[0, 0])],
                None,
            ),
            "the L1 table",
        ),
    ];
    for (what, path, needle) in cases {
        let err = open_err(&path, false, ImageKind::Auto);
        assert!(matches!(err, BlockError::BadImage { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(needle) && msg.contains("qemu-img check -r all"),
            "{what}: {msg}"
        );
        // Reading does not depend on refcounts.
        let q = open_image(&path, true, ImageKind::Auto).unwrap();
        let mut buf = [0u8; 512];
        q.read_at(0, &mut buf).unwrap();
        assert_eq!(buf, [0xab; 512], "{what}");
    }
}

/// A tiny deterministic PRNG (xorshift64*), so a failing case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random damage to the metadata (header, L1, refcount table and blocks, L2 tables) of a small image, then
/// open, read everything and write a little: every outcome is fine except a panic or a hang.
#[test]
fn randomly_corrupted_metadata_never_panics() {
    let dir = TempDir::new();
    let good = dir.path("small.qcow2");
    create(&good, 4 * MIB, &["-o", "cluster_size=4096"]);
    qemu_io_write(&good, 0xab, 0, 65536);
    qemu_io_write(&good, 0xcd, 3 * MIB, 8192);
    let original = std::fs::read(&good).unwrap();
    // Metadata (header, refcount table and block, L1, L2 tables) is interleaved with the data clusters.
    let metadata_end = original.len();
    let live_words: Vec<usize> = (0..metadata_end / 8)
        .map(|w| w * 8)
        .filter(|&at| {
            let w = &original[at..at + 8];
            w.iter().any(|&b| b != 0) && w != [0xab; 8] && w != [0xcd; 8]
        })
        .collect();
    let mut rng = Rng(0x5eed_1234_abcd_0077);
    let victim = dir.path("victim.qcow2");
    let (mut opened, mut failed_io) = (0, 0);
    for case in 0..1000 {
        let mut data = original.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly the words that mean something (header fields, table entries, refcounts), sometimes any.
            let at = if rng.below(4) == 0 {
                rng.below(metadata_end as u64) as usize & !7
            } else {
                live_words[rng.below(live_words.len() as u64) as usize]
            };
            match rng.below(3) {
                0 => data[at..at + 8].copy_from_slice(&rng.next().to_be_bytes()),
                // One flipped bit: an offset slightly off, a flag (COPIED, compressed, zero) toggled.
                1 => data[at + rng.below(8) as usize] ^= 1 << rng.below(8),
                _ => data[at + rng.below(8) as usize] = rng.next() as u8,
            }
        }
        std::fs::write(&victim, &data).unwrap();
        let read_only = case % 2 == 0;
        let Ok(q) = open_image(&victim, read_only, ImageKind::Auto) else {
            continue;
        };
        opened += 1;
        let mut buf = vec![0u8; 65536];
        let len = q.len_bytes().min(8 * MIB);
        let mut at = 0;
        while at + 65536 <= len {
            if q.read_at(at, &mut buf).is_err() {
                failed_io += 1;
            }
            at += 65536;
        }
        if !read_only && len >= 2 * MIB {
            for offset in [0, MIB + 512, 2 * MIB - 4096] {
                if q.write_at(offset, &[0x5a; 4096]).is_err() {
                    failed_io += 1;
                }
            }
            let _ = q.flush();
        }
    }
    // The damage must not be so mild that nothing interesting happens, nor so bad that nothing opens.
    assert!(
        opened > 100,
        "only {opened} of 1000 corrupted images opened"
    );
    eprintln!("{opened} corrupted images opened, {failed_io} failed reads/writes");
}
