//! CopyRect: the rectangle's content is at (`src_x`, `src_y`) of the client's current framebuffer.
//!
//! It pays off when a region moved: display sources report changed rectangles, not moves, so the
//! [`DisplayHub`](devices::display::DisplayHub) finds vertical scrolls itself by comparing with the previous
//! frame ([`devices::display::scroll`]) and hands them to consumers that accept moves as a
//! [`Move`](devices::display::Move). A one-line scroll of a text screen then costs a 16-byte CopyRect plus the
//! new line instead of the whole screen. The server sends it first in an update, before the rectangles to
//! repaint, and only when the client's copy of the source area is up to date or repainted afterwards.

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
