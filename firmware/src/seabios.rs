//! Finding and checking the SeaBIOS image and option ROMs on the host.
//!
//! The default is Debian's `/usr/share/seabios/bios-256k.bin` from the `seabios` package, the same image QEMU
//! uses by default. The checks are what the mapping needs: a size that is a multiple of 64 KiB (KVM slots and
//! the flash alias are page-granular, and every real build is), at least 64 KiB (the reset vector and the
//! F-segment) and at most 16 MiB (it must fit below 4 GiB above the KVM pages at 0xFEFFC000 + 16 KiB, with
//! room to spare). Files are read through a size limit, so a huge or growing file costs at most the limit.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::layout::{bios_low_copy_base, bios_low_copy_len, bios_rom_base};

/// The image used when the config names none.
pub const DEFAULT_BIOS_PATH: &str = "/usr/share/seabios/bios-256k.bin";
/// The VGA BIOS for the Bochs/std VGA (PCI 1234:1111).
pub const DEFAULT_VGA_ROM_PATH: &str = "/usr/share/seabios/vgabios-stdvga.bin";
/// The Debian package that ships both.
pub const PACKAGE: &str = "seabios";
/// Size granularity and minimum of a BIOS image.
pub const BIOS_SIZE_UNIT: usize = 64 * 1024;
/// Largest BIOS image.
pub const BIOS_MAX_SIZE: usize = 16 * 1024 * 1024;
/// Largest option ROM (the PCI expansion ROM window SeaBIOS copies into is 0xC0000–0xEFFFF, 192 KiB).
pub const OPTION_ROM_MAX_SIZE: usize = 192 * 1024;

/// Why an image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareFileError {
    /// The file does not exist.
    #[error(
        "{kind} '{path}' not found (install the Debian package '{package}', or name another file)"
    )]
    Missing {
        /// "BIOS image", "VGA ROM" or "PXE ROM".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The Debian package that ships it.
        package: &'static str,
    },
    /// It exists but could not be read.
    #[error("cannot read {kind} '{path}': {source}")]
    Unreadable {
        /// "BIOS image" or "VGA ROM".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A size the mapping cannot take.
    #[error("{kind} '{path}' has an unusable size of {size} bytes ({expected})")]
    BadSize {
        /// "BIOS image" or "VGA ROM".
        kind: &'static str,
        /// The file.
        path: PathBuf,
        /// Its size, or the limit plus one if it is larger.
        size: usize,
        /// What would be accepted.
        expected: &'static str,
    },
    /// An option ROM without the 0x55 0xAA signature.
    #[error("option ROM '{0}' lacks the 0x55AA signature")]
    NoRomSignature(PathBuf),
}

/// Reads at most `max` bytes (plus one, to tell that the file is longer); a missing file names `package`.
pub(crate) fn read_limited(
    kind: &'static str,
    package: &'static str,
    path: &Path,
    max: usize,
) -> Result<Vec<u8>, FirmwareFileError> {
    let unreadable = |source| FirmwareFileError::Unreadable {
        kind,
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FirmwareFileError::Missing {
            kind,
            path: path.to_path_buf(),
            package,
        },
        _ => unreadable(e),
    })?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    Ok(bytes)
}

/// A validated BIOS image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosImage {
    bytes: Vec<u8>,
}

impl BiosImage {
    /// Loads `path`, or [`DEFAULT_BIOS_PATH`] when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, FirmwareFileError> {
        let path = path.unwrap_or(Path::new(DEFAULT_BIOS_PATH));
        let bytes = read_limited("BIOS image", PACKAGE, path, BIOS_MAX_SIZE)?;
        Self::from_bytes(bytes, path)
    }

    /// Validates an image already in memory; `origin` names it in errors.
    pub fn from_bytes(bytes: Vec<u8>, origin: &Path) -> Result<Self, FirmwareFileError> {
        let size = bytes.len();
        // The unit is a power of two; masking keeps to the workspace's minimum Rust version.
        if !(BIOS_SIZE_UNIT..=BIOS_MAX_SIZE).contains(&size) || size & (BIOS_SIZE_UNIT - 1) != 0 {
            return Err(FirmwareFileError::BadSize {
                kind: "BIOS image",
                path: origin.to_path_buf(),
                size,
                expected: "a multiple of 64 KiB from 64 KiB to 16 MiB",
            });
        }
        Ok(BiosImage { bytes })
    }

    /// The whole image.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Guest address of the read-only mapping of the whole image: 4 GiB − size.
    pub fn rom_base(&self) -> u64 {
        bios_rom_base(self.size())
    }

    /// What to copy into RAM below 1 MiB at power-on and every reset: (guest address, bytes), the image's last
    /// `min(size, 256 KiB)` bytes ending at 0xFFFFF.
    pub fn low_copy(&self) -> (u64, &[u8]) {
        // The low copy is never longer than the image, so the start index is in range.
        let len = bios_low_copy_len(self.size()) as usize;
        (
            bios_low_copy_base(self.size()),
            &self.bytes[self.bytes.len() - len..],
        )
    }
}

/// Loads a VGA option ROM: `path`, or [`DEFAULT_VGA_ROM_PATH`] when `None`. It must start with 0x55 0xAA and be
/// 512 bytes to 192 KiB long.
pub fn vga_rom(path: Option<&Path>) -> Result<Vec<u8>, FirmwareFileError> {
    let path = path.unwrap_or(Path::new(DEFAULT_VGA_ROM_PATH));
    option_rom("VGA ROM", PACKAGE, path)
}

/// Loads a PCI option ROM of `kind` shipped by `package`: it must start with 0x55 0xAA and be 512 bytes to
/// 192 KiB long.
pub(crate) fn option_rom(
    kind: &'static str,
    package: &'static str,
    path: &Path,
) -> Result<Vec<u8>, FirmwareFileError> {
    let bytes = read_limited(kind, package, path, OPTION_ROM_MAX_SIZE)?;
    if bytes.len() < 512 || bytes.len() > OPTION_ROM_MAX_SIZE {
        return Err(FirmwareFileError::BadSize {
            kind,
            path: path.to_path_buf(),
            size: bytes.len(),
            expected: "512 bytes to 192 KiB",
        });
    }
    if bytes[..2] != [0x55, 0xAA] {
        return Err(FirmwareFileError::NoRomSignature(path.to_path_buf()));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A file in the temp directory that is removed when dropped.
    pub(crate) struct TempFile(pub PathBuf);

    impl TempFile {
        pub(crate) fn with(bytes: &[u8]) -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "firmware-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn image(size: usize) -> Vec<u8> {
        (0..size).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_256k_image_maps_below_4g_and_fills_c0000_to_fffff() {
        let file = TempFile::with(&image(256 * 1024));
        let bios = BiosImage::load(Some(&file.0)).unwrap();
        assert_eq!(bios.rom_base(), 0xFFFC_0000);
        let (addr, low) = bios.low_copy();
        assert_eq!(addr, 0xC_0000);
        assert_eq!(low, bios.bytes());
    }

    #[test]
    fn a_large_image_copies_only_its_last_256k() {
        let bytes = image(1024 * 1024);
        let bios = BiosImage::from_bytes(bytes.clone(), Path::new("x")).unwrap();
        assert_eq!(bios.rom_base(), 0xFFF0_0000);
        let (addr, low) = bios.low_copy();
        assert_eq!(addr, 0xC_0000);
        assert_eq!(low, &bytes[768 * 1024..]);
        let small = BiosImage::from_bytes(image(128 * 1024), Path::new("x")).unwrap();
        assert_eq!(small.low_copy().0, 0xE_0000);
        assert_eq!(small.rom_base(), 0xFFFE_0000);
    }

    #[test]
    fn a_missing_image_names_the_file_and_the_package() {
        let path = Path::new("/nonexistent/dir/bios.bin");
        let err = BiosImage::load(Some(path)).unwrap_err();
        assert!(matches!(err, FirmwareFileError::Missing { .. }));
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/dir/bios.bin") && msg.contains("'seabios'"),
            "{msg}"
        );
    }

    #[test]
    fn bad_sizes_are_refused() {
        for size in [
            0,
            1,
            64 * 1024 - 1,
            64 * 1024 + 512,
            100_000,
            16 * 1024 * 1024 + 64 * 1024,
        ] {
            let file = TempFile::with(&image(size));
            let err = BiosImage::load(Some(&file.0)).unwrap_err();
            assert!(
                matches!(err, FirmwareFileError::BadSize { .. }),
                "size {size}: {err}"
            );
        }
        assert!(BiosImage::from_bytes(image(64 * 1024), Path::new("x")).is_ok());
        assert!(BiosImage::from_bytes(image(16 * 1024 * 1024), Path::new("x")).is_ok());
    }

    #[test]
    fn a_directory_is_unreadable_not_a_panic() {
        let err = BiosImage::load(Some(&std::env::temp_dir())).unwrap_err();
        assert!(matches!(err, FirmwareFileError::Unreadable { .. }), "{err}");
    }

    #[test]
    fn vga_roms_need_the_signature_and_a_sane_size() {
        let mut rom = vec![0u8; 4096];
        rom[0] = 0x55;
        rom[1] = 0xAA;
        let good = TempFile::with(&rom);
        assert_eq!(vga_rom(Some(&good.0)).unwrap(), rom);
        let unsigned = TempFile::with(&[0u8; 4096]);
        assert!(matches!(
            vga_rom(Some(&unsigned.0)),
            Err(FirmwareFileError::NoRomSignature(_))
        ));
        let tiny = TempFile::with(&[0x55, 0xAA]);
        assert!(matches!(
            vga_rom(Some(&tiny.0)),
            Err(FirmwareFileError::BadSize { .. })
        ));
        let mut huge = vec![0u8; OPTION_ROM_MAX_SIZE + 1];
        huge[..2].copy_from_slice(&[0x55, 0xAA]);
        let huge = TempFile::with(&huge);
        assert!(matches!(
            vga_rom(Some(&huge.0)),
            Err(FirmwareFileError::BadSize { .. })
        ));
    }

    /// The real Debian images. Skipped only when they are absent *and* DEVMODEL_SKIP_SEABIOS=1.
    #[test]
    fn the_debian_images_load() {
        if !Path::new(DEFAULT_BIOS_PATH).exists()
            && std::env::var("DEVMODEL_SKIP_SEABIOS").as_deref() == Ok("1")
        {
            eprintln!("skipping: {DEFAULT_BIOS_PATH} absent and DEVMODEL_SKIP_SEABIOS=1");
            return;
        }
        let bios = BiosImage::load(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bios.size(), 256 * 1024);
        assert_eq!(bios.rom_base(), 0xFFFC_0000);
        // The reset vector: ljmp F000:E05B in the last 16 bytes.
        let tail = &bios.bytes()[bios.bytes().len() - 16..];
        assert_eq!(&tail[..5], &[0xEA, 0x5B, 0xE0, 0x00, 0xF0]);
        let bios128 = BiosImage::load(Some(Path::new("/usr/share/seabios/bios.bin")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bios128.rom_base(), 0xFFFE_0000);
        let vga = vga_rom(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&vga[..2], &[0x55, 0xAA]);
    }
}
