//! The mouse behind the controller's aux port: Linux psmouse's probe, SeaBIOS's INT 15h C2 framing, packets from
//! front-end motion, remote and wrap modes.

use super::tests::Harness;
use super::*;

/// A controller with both interrupts on and the mouse reporting in stream mode with device ID `id`.
fn streaming_mouse(id: u8) -> Harness {
    let h = Harness::new();
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT);
    let knock: &[u8] = match id {
        0 => &[],
        3 => &[0xf3, 200, 0xf3, 100, 0xf3, 80],
        _ => &[0xf3, 200, 0xf3, 200, 0xf3, 80],
    };
    h.aux_command(knock, 0);
    assert_eq!(h.aux_command(&[0xf2], 1), vec![0xfa, id]);
    assert_eq!(h.aux_command(&[0xf4], 0), vec![0xfa]);
    h
}

/// Reads every waiting byte, asserting they are all mouse bytes, and splits them into packets of `len`.
fn packets(h: &Harness, len: usize) -> Vec<Vec<u8>> {
    let bytes: Vec<u8> = h
        .drain_tagged()
        .into_iter()
        .map(|(b, aux)| {
            assert!(aux, "keyboard byte {b:#04x} among mouse bytes");
            b
        })
        .collect();
    assert_eq!(bytes.len() % len, 0, "whole packets: {bytes:02x?}");
    bytes.chunks(len).map(<[u8]>::to_vec).collect()
}

/// Decodes a packet's X and Y (9-bit two's complement with the sign bits of byte 0) and its overflow bits.
fn motion(p: &[u8]) -> (i32, i32, bool, bool) {
    let x = i32::from(p[1]) - if p[0] & 0x10 != 0 { 256 } else { 0 };
    let y = i32::from(p[2]) - if p[0] & 0x20 != 0 { 256 } else { 0 };
    (x, y, p[0] & 0x40 != 0, p[0] & 0x80 != 0)
}

#[test]
fn linux_psmouse_probe_finds_an_intellimouse_explorer() {
    let h = Harness::new();
    // psmouse_probe: get ID, then reset and disable.
    assert_eq!(h.aux_command(&[0xf2], 1), vec![0xfa, 0x00]);
    assert_eq!(h.aux_command(&[0xf6], 0), vec![0xfa]);
    // Synaptics probe: four resolution settings then status; a plain mouse answers with its resolution, not the
    // Synaptics 0x47.
    for _ in 0..4 {
        assert_eq!(h.aux_command(&[0xe8, 0x00], 0), vec![0xfa, 0xfa]);
    }
    assert_eq!(h.aux_command(&[0xe9], 3), vec![0xfa, 0x00, 0x00, 100]);
    // IntelliMouse knock, then Explorer knock.
    assert_eq!(
        h.aux_command(&[0xf3, 200, 0xf3, 100, 0xf3, 80, 0xf2], 1),
        vec![0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x03]
    );
    assert_eq!(
        h.aux_command(&[0xf3, 200, 0xf3, 200, 0xf3, 80, 0xf2], 1),
        vec![0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0xfa, 0x04]
    );
    // psmouse_initialize and activate: 100 samples/s, 8 counts/mm, 1:1, enable.
    assert_eq!(
        h.aux_command(&[0xf3, 100, 0xe8, 0x03, 0xe6, 0xf4], 0),
        vec![0xfa; 6]
    );
    let mouse = h.ctrl.state().mouse().clone();
    assert_eq!(
        (mouse.sample_rate(), mouse.resolution(), mouse.id()),
        (100, 3, 4)
    );
    assert!(mouse.reporting());
    assert_eq!(h.aux_command(&[0xe9], 3), vec![0xfa, 0x20, 0x03, 100]);
    // The i8042 driver turns the aux interrupt on; motion arrives as 4-byte packets on IRQ 12.
    let ctr = h.read_ctr();
    h.write_ctr(ctr | CMD_AUX_INT);
    h.irq12.take_events();
    h.pointer(2, 3, 1, 0x01);
    assert_eq!(packets(&h, 4), vec![vec![0x29, 0x02, 0xfd, 0x01]]);
    assert_eq!(h.irq12.rising_edges(), 4);
    assert!(!h.irq1.level());
}

#[test]
fn reset_answers_bat_and_id_and_forgets_the_wheel() {
    let h = streaming_mouse(3);
    assert_eq!(h.aux_command(&[0xff], 2), vec![0xfa, 0xaa, 0x00]);
    let mouse = h.ctrl.state().mouse().clone();
    assert_eq!(mouse.id(), 0);
    assert!(!mouse.reporting());
    assert!(!mouse.remote());
    h.pointer(5, 5, 0, 0);
    assert_eq!(h.status() & STATUS_OBF, 0, "reporting is off after reset");
}

#[test]
fn seabios_int15_mouse_commands() {
    // SeaBIOS frames each mouse command like a keyboard one: interrupts off, only the aux port enabled.
    let h = Harness::new();
    let ps2ctr = CMD_AUX_DISABLE | CMD_TRANSLATE | CMD_KBD_INT;
    h.write_ctr(ps2ctr);
    let framed = |bytes: &[u8], replies: usize| {
        let newctr = (ps2ctr | CMD_KBD_DISABLE | CMD_AUX_DISABLE) & !(CMD_KBD_INT | CMD_AUX_INT);
        h.write_ctr(newctr);
        h.write_ctr(newctr & !CMD_AUX_DISABLE);
        let got = h.aux_command(bytes, replies);
        h.write_ctr(ps2ctr);
        got
    };
    assert_eq!(framed(&[0xff], 2), vec![0xfa, 0xaa, 0x00]);
    // A key typed during an exchange waits on the disabled keyboard port instead of confusing it.
    let newctr = (ps2ctr | CMD_KBD_DISABLE | CMD_AUX_DISABLE) & !(CMD_KBD_INT | CMD_AUX_INT);
    h.write_ctr(newctr);
    h.write_ctr(newctr & !CMD_AUX_DISABLE);
    h.aux_send(0xf5);
    h.key(0x1e, true);
    assert_eq!(h.recv_aux(), 0xfa);
    assert_eq!(h.status() & STATUS_OBF, 0);
    h.write_ctr(ps2ctr);
    assert_eq!(h.drain(), vec![0x1e], "the key comes through afterwards");
    assert_eq!(framed(&[0xf2], 1), vec![0xfa, 0x00]);
    assert_eq!(framed(&[0xf3, 40], 0), vec![0xfa, 0xfa]);
    assert_eq!(framed(&[0xe8, 0x02], 0), vec![0xfa, 0xfa]);
    assert_eq!(framed(&[0xe7], 0), vec![0xfa]);
    assert_eq!(framed(&[0xe9], 3), vec![0xfa, 0x10, 0x02, 40]);
    assert_eq!(framed(&[0xf4], 0), vec![0xfa]);
    // SeaBIOS enables the aux port and interrupt when a handler is installed.
    h.write_ctr(CMD_KBD_INT | CMD_AUX_INT | CMD_TRANSLATE);
    h.pointer(1, 0, 0, 0x04);
    assert_eq!(packets(&h, 3), vec![vec![0x0a, 0x01, 0x00]], "right button");
}

#[test]
fn packets_carry_buttons_signs_and_the_wheel() {
    let h = streaming_mouse(0);
    h.pointer(10, 20, 0, 0x00);
    h.pointer(-10, -20, 0, 0x02); // middle
    h.pointer(0, 0, 0, 0x04); // right
    h.pointer(0, 0, 0, 0x00);
    h.pointer(0, 0, 3, 0x00); // no wheel on a standard mouse: nothing to send
    assert_eq!(
        packets(&h, 3),
        vec![
            vec![0x28, 10, 0xec],
            vec![0x1c, 0xf6, 20],
            vec![0x0a, 0, 0],
            vec![0x08, 0, 0],
        ]
    );

    let h = streaming_mouse(3);
    h.pointer(0, 0, 1, 0); // wheel down (towards the user)
    h.pointer(0, 0, -2, 0);
    h.pointer(0, 0, 300, 0); // split into the signed byte's range
    assert_eq!(
        packets(&h, 4),
        vec![
            vec![0x08, 0, 0, 0x01],
            vec![0x08, 0, 0, 0xfe],
            vec![0x08, 0, 0, 127],
            vec![0x08, 0, 0, 127],
            vec![0x08, 0, 0, 46],
        ]
    );

    let h = streaming_mouse(4);
    h.pointer(0, 0, -1, 0);
    h.pointer(0, 0, 9, 0x20); // button 4 held; the wheel splits at 7
    h.pointer(0, 0, 0, 0x40); // button 5
    assert_eq!(
        packets(&h, 4),
        vec![
            vec![0x08, 0, 0, 0x0f],
            vec![0x08, 0, 0, 0x17],
            vec![0x08, 0, 0, 0x12],
            vec![0x08, 0, 0, 0x20],
        ]
    );
}

#[test]
fn large_motion_splits_into_packets_of_at_most_255() {
    let h = streaming_mouse(0);
    h.pointer(600, -300, 0, 1);
    let got = packets(&h, 3);
    let decoded: Vec<_> = got.iter().map(|p| motion(p)).collect();
    assert_eq!(
        decoded,
        vec![
            (255, 255, false, false),
            (255, 45, false, false),
            (90, 0, false, false)
        ]
    );
    assert!(got.iter().all(|p| p[0] & 0x09 == 0x09), "left held in each");
    h.pointer(-256, 256, 0, 0);
    let decoded: Vec<_> = packets(&h, 3).iter().map(|p| motion(p)).collect();
    assert_eq!(
        decoded,
        vec![(-255, -255, false, false), (-1, -1, false, false)]
    );
}

#[test]
fn scaling_2_to_1_doubles_stream_packets() {
    let h = streaming_mouse(0);
    assert_eq!(h.aux_command(&[0xe7], 0), vec![0xfa]);
    let sent = [0, 1, 2, 3, 4, 5, 6, -4, 100];
    let scaled = [0, 1, 1, 3, 6, 9, 12, -6, 200];
    for (&dx, &want) in sent.iter().zip(&scaled) {
        h.pointer(dx, 0, 0, 0x01);
        let got = packets(&h, 3);
        assert_eq!(got.len(), 1, "dx {dx}");
        assert_eq!(motion(&got[0]).0, want, "dx {dx}");
        h.pointer(0, 0, 0, 0);
        let _ = h.drain();
    }
    // Bigger moves split at 127 before scaling, so scaled values still fit.
    h.pointer(300, 0, 0, 0);
    let xs: Vec<i32> = packets(&h, 3).iter().map(|p| motion(p).0).collect();
    assert_eq!(xs, vec![254, 254, 92]);
    assert_eq!(h.aux_command(&[0xe6], 0), vec![0xfa]);
    h.pointer(4, 0, 0, 0);
    assert_eq!(motion(&packets(&h, 3)[0]).0, 4);
}

#[test]
fn remote_mode_reports_only_when_read() {
    let h = streaming_mouse(0);
    assert_eq!(h.aux_command(&[0xf0], 0), vec![0xfa]);
    assert_eq!(h.aux_command(&[0xe9], 3), vec![0xfa, 0x60, 0x02, 100]);
    h.pointer(30, -40, 0, 0x01);
    h.pointer(5, 0, 0, 0x01);
    assert_eq!(h.status() & STATUS_OBF, 0);
    let got = h.aux_command(&[0xeb], 3);
    assert_eq!(got[0], 0xfa);
    assert_eq!(motion(&got[1..]), (35, 40, false, false));
    assert_eq!(got[1] & 0x07, 0x01);
    // The counters were cleared by the read.
    let got = h.aux_command(&[0xeb], 3);
    assert_eq!(got, vec![0xfa, 0x09, 0, 0]);
    // More than the 9-bit range: clamped, with the overflow bits.
    h.pointer(1000, 0, 0, 0);
    h.pointer(0, 300, 0, 0);
    let got = h.aux_command(&[0xeb], 3);
    assert_eq!(motion(&got[1..]), (255, -255, true, true));
    // Resend repeats the last reply.
    assert_eq!(h.aux_command(&[0xfe], 3), got);
    // Any other command clears the counters.
    h.pointer(7, 7, 0, 0);
    assert_eq!(h.aux_command(&[0xe9], 3), vec![0xfa, 0x60, 0x02, 100]);
    assert_eq!(h.aux_command(&[0xeb], 3), vec![0xfa, 0x08, 0, 0]);
    // Back to stream mode: packets flow again once motion arrives.
    assert_eq!(h.aux_command(&[0xea], 0), vec![0xfa]);
    h.pointer(1, 0, 0, 0);
    assert_eq!(packets(&h, 3), vec![vec![0x08, 1, 0]]);
}

#[test]
fn wrap_mode_echoes_until_reset() {
    let h = streaming_mouse(0);
    assert_eq!(h.aux_command(&[0xee], 0), vec![0xfa]);
    assert!(h.ctrl.state().mouse().wrap());
    h.pointer(10, 10, 0, 0);
    assert_eq!(h.status() & STATUS_OBF, 0, "no packets in wrap mode");
    for b in [0x12, 0xf4, 0xf2, 0xfe, 0xe9, 0x00] {
        assert_eq!(h.aux_command(&[b], 0), vec![b], "echo {b:#04x}");
    }
    assert_eq!(h.aux_command(&[0xec], 0), vec![0xfa]);
    assert!(!h.ctrl.state().mouse().wrap());
    assert_eq!(h.aux_command(&[0xee], 0), vec![0xfa]);
    assert_eq!(h.aux_command(&[0xff], 2), vec![0xfa, 0xaa, 0x00]);
    assert!(!h.ctrl.state().mouse().wrap());
}

#[test]
fn invalid_commands_and_arguments_are_refused() {
    let h = Harness::new();
    for cmd in [0x00, 0x88, 0xe5, 0xed, 0xef, 0xf1, 0xf7, 0xfa, 0xfd] {
        assert_eq!(h.aux_command(&[cmd], 0), vec![0xfe], "{cmd:#04x}");
    }
    // A bad resolution is asked for again.
    assert_eq!(
        h.aux_command(&[0xe8, 0x04, 0x01], 0),
        vec![0xfa, 0xfe, 0xfa]
    );
    assert_eq!(h.ctrl.state().mouse().resolution(), 1);
    assert_eq!(
        h.aux_command(&[0xf3, 0x00, 0x0a], 0),
        vec![0xfa, 0xfe, 0xfa]
    );
    assert_eq!(h.ctrl.state().mouse().sample_rate(), 10);
    // Resend while the argument is expected: the ACK again, and the argument still counts.
    assert_eq!(h.aux_command(&[0xf3, 0xfe, 40], 0), vec![0xfa, 0xfa, 0xfa]);
    assert_eq!(h.ctrl.state().mouse().sample_rate(), 40);
    // Defaults.
    assert_eq!(h.aux_command(&[0xf4, 0xe7, 0xf6], 0), vec![0xfa; 3]);
    assert_eq!(h.aux_command(&[0xe9], 3), vec![0xfa, 0x00, 0x02, 100]);
}

#[test]
fn disabling_reporting_discards_unread_motion() {
    let h = streaming_mouse(0);
    h.write_ctr(CMD_KBD_INT); // aux interrupt off: the driver polls
    h.pointer(1, 0, 0, 0);
    h.pointer(2, 0, 0, 0);
    // One byte already sits in the output buffer; the rest is still the mouse's, and F5 discards it.
    h.aux_send(0xf5);
    assert_eq!(h.drain(), vec![0x08, 0xfa]);
    h.pointer(3, 0, 0, 1);
    assert_eq!(h.status() & STATUS_OBF, 0);
    assert_eq!(h.aux_command(&[0xf4], 0), vec![0xfa]);
    // Enabling does not invent a packet for the button held meanwhile; the next motion carries it.
    assert_eq!(h.status() & STATUS_OBF, 0);
    h.pointer(1, 0, 0, 1);
    assert_eq!(packets(&h, 3), vec![vec![0x09, 1, 0]]);
}

#[test]
fn a_flood_of_pointer_events_is_bounded_and_accumulated() {
    let h = streaming_mouse(3);
    // 100 000 events while the guest reads nothing: the buffer fills, the rest waits in the counters.
    for _ in 0..100_000 {
        h.pointer(1, -1, 0, 0);
    }
    let st = h.ctrl.state();
    assert!(st.aux_queue.len() <= QUEUE_MAX);
    let (dx, dy, _) = st.mouse().pending_motion();
    assert_eq!((dx, dy), (mouse::MOTION_MAX, mouse::MOTION_MAX));
    let got = packets(&h, 4);
    // Each event of the first bufferful became its own packet; after that the counters hit their limit, which
    // the next packet reports with the overflow bits, and the rest comes in 255-count packets.
    let decoded: Vec<_> = got.iter().map(|p| motion(p)).collect();
    let firsts = QUEUE_MAX / 4;
    assert!(decoded[..firsts].iter().all(|&m| m == (1, 1, false, false)));
    assert_eq!(decoded[firsts], (255, 255, true, true));
    let total: i32 = decoded[firsts..].iter().map(|m| m.0).sum();
    assert_eq!(total, mouse::MOTION_MAX);
    assert!(decoded[firsts + 1..].iter().all(|m| !m.2 && !m.3));
    assert_eq!(h.ctrl.state().mouse().pending_motion(), (0, 0, 0));
}
