//! Register semantics of each group.

use super::*;

#[test]
fn sequencer_and_graphics_take_byte_and_word_writes_with_masks() {
    let r = Rig::new();
    r.outb(0x3c4, 2);
    r.outb(0x3c5, 0xff);
    assert_eq!(r.inb(0x3c5), 0x0f, "map mask has 4 bits");
    r.outw(0x3c4, 0x0e04); // index 4, data 0x0e
    assert_eq!(r.inb(0x3c4), 4);
    assert_eq!(r.inb(0x3c5), 0x0e);
    assert_eq!(r.inw(0x3c4), 0x0e04, "a word read is index then data");
    r.seq(1, 0xff);
    assert_eq!(r.inw(0x3c4) >> 8, 0x3d);
    r.gr(5, 0xff);
    assert_eq!(r.inw(0x3ce), 0x7b05);
    r.gr(8, 0xa5);
    assert_eq!(r.inw(0x3ce), 0xa508);
    // Indexes beyond the implemented registers read 0 and ignore writes.
    r.seq(7, 0x55);
    assert_eq!(r.inb(0x3c5), 0);
    r.gr(0x0f, 0x55);
    assert_eq!(r.inb(0x3cf), 0);
}

#[test]
fn misc_output_selects_colour_or_mono_crtc_ports() {
    let r = Rig::new();
    r.outb(0x3c2, 0x67);
    assert_eq!(r.inb(0x3cc), 0x67);
    r.crtc(0x0e, 0x12);
    assert_eq!(r.crtc_read(0x0e), 0x12);
    assert_eq!(
        r.inb(0x3b5),
        0xff,
        "mono ports are not decoded in colour mode"
    );
    r.outb(0x3c2, 0x66);
    assert_eq!(
        r.inb(0x3d5),
        0xff,
        "colour ports are not decoded in mono mode"
    );
    r.outw(0x3b4, 0x340e);
    assert_eq!(r.inw(0x3b4), 0x340e);
    r.outb(0x3c2, 0x67);
    assert_eq!(r.crtc_read(0x0e), 0x34, "one CRTC behind both port sets");
}

#[test]
fn attribute_flip_flop_is_reset_by_input_status_1() {
    let r = Rig::new();
    r.outb(0x3c2, 0x01);
    r.inb(0x3da);
    r.outb(0x3c0, 0x03); // index 3
    r.outb(0x3c0, 0x2a); // data
    assert_eq!(r.inb(0x3c0), 0x03, "reads of 0x3C0 return the index");
    assert_eq!(r.inb(0x3c1), 0x2a);
    r.outb(0x3c0, 0x34); // index 0x14 with PAS
    assert_eq!(r.inb(0x3c0), 0x34);
    // Half-way: the next write would be data; reading 0x3DA makes it an index again.
    r.inb(0x3da);
    r.outb(0x3c0, 0x10);
    r.outb(0x3c0, 0xff);
    assert_eq!(r.inb(0x3c1), 0xef, "AR10 bit 4 is reserved");
    r.inb(0x3da);
    r.outb(0x3c0, 0x05);
    r.outb(0x3c0, 0xff);
    assert_eq!(r.inb(0x3c1), 0x3f, "palette entries are 6 bits");
    // Reading the status of the other (mono) set does not touch the flip-flop.
    r.outb(0x3c0, 0x06);
    assert_eq!(r.inb(0x3ba), 0xff);
    r.outb(0x3c0, 0x11);
    r.inb(0x3da);
    r.outb(0x3c0, 0x06);
    assert_eq!(r.inb(0x3c1), 0x11);
}

#[test]
fn dac_indexes_auto_increment_in_triplets() {
    let r = Rig::new();
    r.outb(0x3c8, 5);
    for v in [1, 2, 3, 4, 5, 0xff] {
        r.outb(0x3c9, v);
    }
    assert_eq!(r.inb(0x3c8), 7, "write index moved past two entries");
    assert_eq!(r.inb(0x3c7) & 3, 0, "DAC state: write mode");
    r.outb(0x3c7, 5);
    assert_eq!(r.inb(0x3c7) & 3, 3, "DAC state: read mode");
    let got: Vec<u8> = (0..6).map(|_| r.inb(0x3c9)).collect();
    assert_eq!(got, vec![1, 2, 3, 4, 5, 0x3f], "6-bit components");
    // The read index moved on to entry 7 (still zero).
    assert_eq!(r.inb(0x3c9), 0);
    // Index 255 wraps to 0.
    r.outb(0x3c8, 255);
    for v in [9, 9, 9, 8, 8, 8] {
        r.outb(0x3c9, v);
    }
    r.outb(0x3c7, 0);
    assert_eq!(r.inb(0x3c9), 8);
    r.outb(0x3c6, 0x0f);
    assert_eq!(r.inb(0x3c6), 0x0f);
}

#[test]
fn crtc_registers_0_to_7_are_write_protected_by_cr11_bit_7() {
    let r = Rig::new();
    r.outb(0x3c2, 0x67);
    r.crtc(0x11, 0x00);
    r.crtc(0x01, 0x4f);
    r.crtc(0x07, 0x1f);
    r.crtc(0x11, 0x80);
    r.crtc(0x01, 0x27);
    assert_eq!(r.crtc_read(0x01), 0x4f);
    r.crtc(0x07, 0x00);
    assert_eq!(
        r.crtc_read(0x07),
        0x0f,
        "only bit 4 (line compare bit 8) is writable"
    );
    r.crtc(0x09, 0x4f);
    assert_eq!(r.crtc_read(0x09), 0x4f, "CR08 and up are not protected");
    r.crtc(0x11, 0x00);
    r.crtc(0x01, 0x27);
    assert_eq!(r.crtc_read(0x01), 0x27);
    // Index beyond CR18 reads 0.
    r.crtc(0x30, 0x55);
    assert_eq!(r.crtc_read(0x30), 0);
}

#[test]
fn retrace_polling_loops_end() {
    let r = Rig::new();
    r.outb(0x3c2, 0x01);
    // Wait for the end of retrace, then for its start, then for display enable, as DOS programs do.
    let mut reads = 0;
    while r.inb(0x3da) & 0x08 != 0 {
        reads += 1;
        assert!(reads < 100);
    }
    while r.inb(0x3da) & 0x08 == 0 {
        reads += 1;
        assert!(reads < 100);
    }
    while r.inb(0x3da) & 0x01 != 0 {
        reads += 1;
        assert!(reads < 100);
    }
    // Both retrace states occur in every period, and bit 0 is set during vertical retrace.
    let v: Vec<u8> = (0..32).map(|_| r.inb(0x3da)).collect();
    assert!(v.iter().any(|s| s & 0x08 != 0));
    assert!(v.iter().any(|s| s & 0x08 == 0));
    assert!(v.iter().filter(|s| *s & 0x08 != 0).all(|s| s & 0x01 != 0));
    // Feature control: written at 0x3DA, read at 0x3CA.
    r.outb(0x3da, 0x03);
    assert_eq!(r.inb(0x3ca), 0x03);
}
