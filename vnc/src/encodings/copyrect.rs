//! CopyRect: the rectangle's content is at (`src_x`, `src_y`) of the client's current framebuffer.
//!
//! It only pays off when the server knows that a region moved (scrolling, a dragged window). The
//! [`DisplaySource`](devices::display::DisplaySource) interface reports changed rectangles, not moves, so the
//! server does not send CopyRect today; this is the wire form for when a source learns to report moves
//! (VGA start-address panning, for instance).

/// Appends the CopyRect body.
pub fn encode(src_x: u16, src_y: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&src_x.to_be_bytes());
    out.extend_from_slice(&src_y.to_be_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_is_the_source_position() {
        let mut out = Vec::new();
        super::encode(0x0102, 0x0304, &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
    }
}
