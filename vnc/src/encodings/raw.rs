//! Raw encoding: `width * height` pixels in the client's format, row by row.

use crate::pixel::PixelWriter;

/// Appends `values` as raw pixels.
pub fn encode(values: &[u32], pw: &PixelWriter, out: &mut Vec<u8>) {
    out.reserve(values.len() * pw.bytes_per_pixel());
    for &v in values {
        pw.put(out, v);
    }
}
