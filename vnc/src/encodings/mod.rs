//! Rectangle encoders.
//!
//! Every encoder takes a rectangle of *client pixel values* (already converted with
//! [`PixelWriter::value`](crate::pixel::PixelWriter::value), row-major, `width * height` of them) and appends
//! the encoded bytes that follow the rectangle header. Analysing client values rather than the hub's colours
//! lets colours that become equal at low depth share palette entries and runs.
//!
//! - [`raw`]: pixels as they are; every client supports it.
//! - [`hextile`]: 16×16 tiles of background plus subrectangles; cheap, supported by nearly every client.
//! - [`zrle`]: 64×64 tiles with palettes and run lengths through one zlib stream per connection.
//! - [`tight`]: fill / palette / full-colour pieces through four zlib streams (no JPEG).
//! - [`copyrect`]: "copy from here", sent when the display hub found that the screen scrolled.
//!
//! The zlib-based encoders keep their stream state for the life of the connection, because the client's
//! inflater does too: every rectangle ends with a sync flush so the client can decode it completely.

pub mod copyrect;
pub mod hextile;
pub mod raw;
pub mod tight;
pub mod zrle;

use flate2::{Compress, FlushCompress};
use thiserror::Error;

use crate::protocol::encoding;

/// An encoder failure (zlib only; the others cannot fail).
#[derive(Debug, Error)]
pub enum EncodeError {
    /// zlib refused the data.
    #[error("zlib: {0}")]
    Zlib(#[from] flate2::CompressError),
    /// zlib made no progress (should not happen).
    #[error("zlib made no progress")]
    Stalled,
}

/// The pixel encodings the server can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Raw.
    Raw,
    /// Hextile.
    Hextile,
    /// ZRLE.
    Zrle,
    /// Tight.
    Tight,
}

impl Encoding {
    /// The wire number.
    pub fn number(self) -> i32 {
        match self {
            Encoding::Raw => encoding::RAW,
            Encoding::Hextile => encoding::HEXTILE,
            Encoding::Zrle => encoding::ZRLE,
            Encoding::Tight => encoding::TIGHT,
        }
    }

    /// The encoding for a wire number, if the server implements it.
    pub fn from_number(n: i32) -> Option<Encoding> {
        match n {
            encoding::RAW => Some(Encoding::Raw),
            encoding::HEXTILE => Some(Encoding::Hextile),
            encoding::ZRLE => Some(Encoding::Zrle),
            encoding::TIGHT => Some(Encoding::Tight),
            _ => None,
        }
    }

    /// The first encoding in a client's preference list that the server implements; Raw otherwise.
    pub fn preferred(list: &[i32]) -> Encoding {
        list.iter()
            .find_map(|&n| Encoding::from_number(n))
            .unwrap_or(Encoding::Raw)
    }
}

/// Compresses `input` through the persistent stream `z` and appends the output, ending with a sync flush
/// so that everything written so far can be inflated.
pub(crate) fn deflate_sync(
    z: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut consumed = 0usize;
    loop {
        let remaining = input.len() - consumed;
        out.reserve(remaining + remaining / 8 + 64);
        let in_before = z.total_in();
        let out_before = out.len();
        z.compress_vec(&input[consumed..], out, FlushCompress::Sync)?;
        let used = (z.total_in() - in_before) as usize;
        consumed += used;
        // The flush is complete once all input is in and zlib left output space unused.
        if consumed >= input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        if used == 0 && out.len() == out_before {
            return Err(EncodeError::Stalled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_follows_the_client_order() {
        assert_eq!(Encoding::preferred(&[-223, 16, 5, 0]), Encoding::Zrle);
        assert_eq!(Encoding::preferred(&[7, 16]), Encoding::Tight);
        assert_eq!(Encoding::preferred(&[1, 5]), Encoding::Hextile);
        assert_eq!(Encoding::preferred(&[2, 4, 6]), Encoding::Raw);
        assert_eq!(Encoding::preferred(&[]), Encoding::Raw);
    }

    #[test]
    fn sync_flushed_output_inflates_completely() {
        let mut z = Compress::new(flate2::Compression::new(6), true);
        let mut d = flate2::Decompress::new(true);
        for round in 0..3u8 {
            let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ round).collect();
            let mut out = Vec::new();
            deflate_sync(&mut z, &input, &mut out).unwrap();
            let mut back = Vec::with_capacity(input.len() + 16);
            d.decompress_vec(&out, &mut back, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(back, input);
        }
    }
}
