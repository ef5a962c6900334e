//! The keyboard behind the controller: commands as SeaBIOS and Linux's atkbd send them, and keys from a
//! front-end in each scancode set, with and without the controller's translation.

use super::tests::Harness;
use super::*;

/// A controller whose keyboard is in scancode set `set`, with interrupts on and translation as given.
fn keyboard_in_set(set: u8, translate: bool) -> Harness {
    let h = Harness::new();
    let xlate = if translate { CMD_TRANSLATE } else { 0 };
    h.write_ctr(CMD_KBD_INT | CMD_AUX_DISABLE | xlate);
    h.outb(0x60, 0xf0);
    h.outb(0x60, set);
    assert_eq!(h.drain(), vec![0xfa, 0xfa]);
    assert_eq!(h.ctrl.state().keyboard().scan_set(), set);
    h
}

/// Sends one byte to the keyboard and reads every reply.
fn send(h: &Harness, byte: u8) -> Vec<u8> {
    h.outb(0x60, byte);
    h.drain()
}

#[test]
fn linux_atkbd_probe_and_typing_on_a_translating_controller() {
    let h = Harness::new();
    // What SeaBIOS leaves behind: aux port off, translation and the keyboard interrupt on.
    h.write_ctr(0x61);
    assert_eq!(h.read_ctr(), 0x61);
    h.irq1.take_events();
    // atkbd_probe: the identify bytes read translated, which is how atkbd learns translation is on.
    assert_eq!(send(&h, 0xf2), vec![0xfa, 0xab, 0x41]);
    assert_eq!(h.irq1.rising_edges(), 3, "one IRQ 1 edge per byte");
    assert_eq!(send(&h, 0xf5), vec![0xfa]);
    assert_eq!(send(&h, 0xf0), vec![0xfa]);
    assert_eq!(send(&h, 0x02), vec![0xfa]);
    assert_eq!(send(&h, 0xf0), vec![0xfa]);
    assert_eq!(
        send(&h, 0x00),
        vec![0xfa, 0x41],
        "set 2 reads 41 translated"
    );
    // atkbd_activate: LEDs off, repeat rate, enable.
    assert_eq!(send(&h, 0xed), vec![0xfa]);
    assert_eq!(send(&h, 0x00), vec![0xfa]);
    assert_eq!(send(&h, 0xf3), vec![0xfa]);
    assert_eq!(send(&h, 0x20), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().typematic(), 0x20);
    assert_eq!(send(&h, 0xf4), vec![0xfa]);
    // Typing: the keyboard sends set 2, the CPU reads set 1.
    assert_eq!(h.tap(0x1e), (vec![0x1e], vec![0x9e])); // A
    assert_eq!(h.tap(0xe048), (vec![0xe0, 0x48], vec![0xe0, 0xc8])); // Up
    assert_eq!(h.tap(0xe01d), (vec![0xe0, 0x1d], vec![0xe0, 0x9d])); // Right Ctrl
    assert_eq!(h.tap(0xe01c), (vec![0xe0, 0x1c], vec![0xe0, 0x9c])); // Keypad Enter
    assert_eq!(h.tap(0x41), (vec![0x41], vec![0xc1])); // F7: set 2 0x83
                                                       // Num Lock pressed: the guest turns its LED on, and the front-end sees it.
    assert_eq!(h.tap(0x45), (vec![0x45], vec![0xc5]));
    assert_eq!(send(&h, 0xed), vec![0xfa]);
    assert_eq!(send(&h, 0x02), vec![0xfa]);
    assert_eq!(KeyboardInput::leds(&*h.ctrl), 0x02);
    assert!(!h.irq12.level());
}

#[test]
fn every_key_in_translated_set_2_reads_as_set_1() {
    let set1 = keyboard_in_set(1, false);
    let set2 = keyboard_in_set(2, false);
    let xlated = keyboard_in_set(2, true);
    let keys = (0x01..=0x7fu16).chain(0xe001..=0xe07f);
    for sc in keys {
        let (make1, break1) = set1.tap(sc);
        assert_eq!(
            xlated.tap(sc),
            (make1.clone(), break1.clone()),
            "key {sc:#06x}"
        );
        let (make2, break2) = set2.tap(sc);
        if matches!(sc, 0xe037 | 0xe046) {
            continue; // Print Screen and Pause: their own tests.
        }
        // Set 1 codes as front-ends give them.
        let prefix: Vec<u8> = if sc > 0xff { vec![0xe0] } else { vec![] };
        let code = sc as u8;
        assert_eq!(make1, [prefix.clone(), vec![code]].concat(), "{sc:#06x}");
        assert_eq!(break1, [prefix.clone(), vec![code | 0x80]].concat());
        // Set 2: the same prefix, F0 before the code on release, and a code that translates back.
        let code2 = *make2.last().unwrap();
        assert_eq!(make2, [prefix.clone(), vec![code2]].concat(), "{sc:#06x}");
        assert_eq!(break2, [prefix, vec![0xf0, code2]].concat());
        assert_eq!(scancodes::translate(code2), code);
    }
}

#[test]
fn set_2_codes_match_the_published_table() {
    let h = keyboard_in_set(2, false);
    assert_eq!(h.tap(0x1e), (vec![0x1c], vec![0xf0, 0x1c])); // A
    assert_eq!(h.tap(0x01), (vec![0x76], vec![0xf0, 0x76])); // Esc
    assert_eq!(h.tap(0x41), (vec![0x83], vec![0xf0, 0x83])); // F7
    assert_eq!(h.tap(0x54), (vec![0x84], vec![0xf0, 0x84])); // Alt+SysRq
    assert_eq!(h.tap(0xe048), (vec![0xe0, 0x75], vec![0xe0, 0xf0, 0x75])); // Up
    assert_eq!(h.tap(0xe035), (vec![0xe0, 0x4a], vec![0xe0, 0xf0, 0x4a])); // Keypad /
    assert_eq!(h.tap(0xe038), (vec![0xe0, 0x11], vec![0xe0, 0xf0, 0x11])); // AltGr
    assert_eq!(h.tap(0xe05b), (vec![0xe0, 0x1f], vec![0xe0, 0xf0, 0x1f])); // Left Windows
}

#[test]
fn print_screen_and_pause_follow_the_modifiers() {
    const PRINT: u16 = 0xe037;
    const PAUSE: u16 = 0xe046;
    for (set, translate) in [(1, false), (2, false), (2, true)] {
        let h = keyboard_in_set(set, translate);
        let set1 = set == 1 || translate;
        let expect = |one: &[u8], two: &[u8]| if set1 { one.to_vec() } else { two.to_vec() };
        // Alone: fake shifts around it; Pause has no break code.
        assert_eq!(
            h.tap(PRINT),
            (
                expect(&[0xe0, 0x2a, 0xe0, 0x37], &[0xe0, 0x12, 0xe0, 0x7c]),
                expect(
                    &[0xe0, 0xb7, 0xe0, 0xaa],
                    &[0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12]
                ),
            ),
            "set {set} translate {translate}"
        );
        assert_eq!(
            h.tap(PAUSE),
            (
                expect(
                    &[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5],
                    &[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77]
                ),
                vec![]
            )
        );
        // With Shift (or Ctrl): Print Screen alone.
        h.key(0x36, true);
        let _ = h.drain();
        assert_eq!(
            h.tap(PRINT),
            (
                expect(&[0xe0, 0x37], &[0xe0, 0x7c]),
                expect(&[0xe0, 0xb7], &[0xe0, 0xf0, 0x7c])
            )
        );
        h.key(0x36, false);
        // With Ctrl: Pause becomes Break.
        h.key(0xe01d, true);
        let _ = h.drain();
        assert_eq!(
            h.tap(PAUSE),
            (
                expect(&[0xe0, 0x46, 0xe0, 0xc6], &[0xe0, 0x7e, 0xe0, 0xf0, 0x7e]),
                vec![]
            )
        );
        assert_eq!(
            h.tap(PRINT),
            (
                expect(&[0xe0, 0x37], &[0xe0, 0x7c]),
                expect(&[0xe0, 0xb7], &[0xe0, 0xf0, 0x7c])
            )
        );
        h.key(0xe01d, false);
        // With Alt: SysRq.
        h.key(0x38, true);
        let _ = h.drain();
        assert_eq!(
            h.tap(PRINT),
            (expect(&[0x54], &[0x84]), expect(&[0xd4], &[0xf0, 0x84]))
        );
        h.key(0x38, false);
        let _ = h.drain();
    }
}

#[test]
fn held_keys_repeat_as_the_front_end_repeats_them() {
    let h = keyboard_in_set(2, true);
    for _ in 0..3 {
        h.key(0x1e, true);
    }
    h.key(0x1e, false);
    assert_eq!(h.drain(), vec![0x1e, 0x1e, 0x1e, 0x9e]);
    // Pause does not repeat.
    h.key(0xe046, true);
    h.key(0xe046, true);
    h.key(0xe046, false);
    assert_eq!(h.drain(), vec![0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5]);
}

#[test]
fn set_3_sends_one_byte_per_key_with_per_key_attributes() {
    let h = keyboard_in_set(3, false);
    // Power-on attributes: most keys make-only and repeating; the shift-like keys make/break, not repeating.
    assert_eq!(h.tap(0x1e), (vec![0x1c], vec![])); // A
    assert_eq!(h.tap(0x2a), (vec![0x12], vec![0xf0, 0x12])); // Left Shift
    assert_eq!(h.tap(0x3a), (vec![0x14], vec![0xf0, 0x14])); // Caps Lock
    assert_eq!(h.tap(0xe05b), (vec![0x8b], vec![0xf0, 0x8b])); // Left Windows
    assert_eq!(h.tap(0xe048), (vec![0x63], vec![])); // Up
    assert_eq!(h.tap(0x01), (vec![0x08], vec![])); // Esc
    assert_eq!(h.tap(0xe037), (vec![0x57], vec![])); // Print Screen: nothing special
    assert_eq!(h.tap(0xe046), (vec![0x62], vec![])); // Pause
    assert_eq!(h.tap(0xe020), (vec![], vec![]), "Mute has no set-3 code");
    h.key(0x1e, true);
    h.key(0x1e, true);
    h.key(0x2a, true);
    h.key(0x2a, true);
    assert_eq!(
        h.drain(),
        vec![0x1c, 0x1c, 0x12],
        "A repeats, Shift does not"
    );
    h.key(0x1e, false);
    h.key(0x2a, false);
    assert_eq!(h.drain(), vec![0xf0, 0x12]);

    // 0xFA: every key typematic/make/break.
    assert_eq!(send(&h, 0xfa), vec![0xfa]);
    assert_eq!(h.tap(0x1e), (vec![0x1c], vec![0xf0, 0x1c]));
    // 0xF9: every key make-only; then 0xFC makes A and Left Shift make/break again. The list ends at the next
    // command (here 0xF4), which is carried out.
    assert_eq!(send(&h, 0xf9), vec![0xfa]);
    assert_eq!(h.tap(0x2a), (vec![0x12], vec![]));
    assert_eq!(send(&h, 0xfc), vec![0xfa]);
    assert_eq!(send(&h, 0x1c), vec![0xfa]);
    assert_eq!(send(&h, 0x12), vec![0xfa]);
    assert_eq!(send(&h, 0xf4), vec![0xfa]);
    assert!(h.ctrl.state().keyboard().set3_breaks(0x1c));
    assert_eq!(h.tap(0x1e), (vec![0x1c], vec![0xf0, 0x1c]));
    assert_eq!(h.tap(0x1f), (vec![0x1b], vec![]), "S stays make-only");
    h.key(0x1e, true);
    h.key(0x1e, true);
    assert_eq!(h.drain(), vec![0x1c], "make/break keys do not repeat");
    h.key(0x1e, false);
    let _ = h.drain();
    // 0xFB: typematic (make and repeat, no break); 0xFD: make only.
    assert_eq!(send(&h, 0xfb), vec![0xfa]);
    assert_eq!(send(&h, 0x1c), vec![0xfa]);
    assert_eq!(send(&h, 0xfd), vec![0xfa]);
    assert_eq!(send(&h, 0x12), vec![0xfa]);
    assert_eq!(send(&h, 0xee), vec![0xee]);
    h.key(0x1e, true);
    h.key(0x1e, true);
    h.key(0x1e, false);
    assert_eq!(h.drain(), vec![0x1c, 0x1c]);
    assert_eq!(h.tap(0x2a), (vec![0x12], vec![]));
    // 0xF8: all make/break; 0xF7: all typematic.
    assert_eq!(send(&h, 0xf8), vec![0xfa]);
    assert_eq!(h.tap(0x1f), (vec![0x1b], vec![0xf0, 0x1b]));
    assert_eq!(send(&h, 0xf7), vec![0xfa]);
    assert_eq!(h.tap(0x2a), (vec![0x12], vec![]));
    assert!(h.ctrl.state().keyboard().set3_repeats(0x12));
    // Reset restores the power-on attributes (and set 2).
    assert_eq!(send(&h, 0xff), vec![0xfa, 0xaa]);
    assert!(!h.ctrl.state().keyboard().set3_repeats(0x12));
    assert!(h.ctrl.state().keyboard().set3_breaks(0x12));
    assert_eq!(h.ctrl.state().keyboard().scan_set(), 2);
}

#[test]
fn set_3_through_translation() {
    // Nobody does this on purpose, but the controller translates whatever arrives.
    let h = keyboard_in_set(3, true);
    assert_eq!(h.tap(0x1e), (vec![0x1e], vec![]));
    assert_eq!(h.tap(0x2a), (vec![0x2a], vec![0xaa]));
    assert_eq!(send(&h, 0xf0), vec![0xfa]);
    assert_eq!(
        send(&h, 0x00),
        vec![0xfa, 0x3f],
        "set 3 reads 3F translated"
    );
}

#[test]
fn keys_are_dropped_while_scanning_is_disabled() {
    let h = keyboard_in_set(2, false);
    assert_eq!(send(&h, 0xf5), vec![0xfa]);
    assert!(!h.ctrl.state().keyboard().scanning());
    h.key(0x1e, true);
    h.key(0x1e, false);
    // Shift goes down while nothing is sent; the keyboard still knows it is held.
    h.key(0x2a, true);
    assert_eq!(h.status() & STATUS_OBF, 0);
    assert_eq!(send(&h, 0xf4), vec![0xfa]);
    assert_eq!(h.tap(0xe037), (vec![0xe0, 0x7c], vec![0xe0, 0xf0, 0x7c]));
    h.key(0x2a, false);
    assert_eq!(h.drain(), vec![0xf0, 0x12]);
}

/// Splits set-2 bytes into key events, asserting that every sequence is whole.
fn parse_set2(bytes: &[u8]) -> Vec<(u8, bool)> {
    let mut keys = Vec::new();
    let mut release = false;
    for &b in bytes {
        match b {
            0xf0 => release = true,
            _ => {
                keys.push((b, !release));
                release = false;
            }
        }
    }
    assert!(!release, "a break prefix without its code");
    keys
}

#[test]
fn a_flood_of_keys_overruns_once_and_stays_bounded() {
    for (set, translate, overrun) in [(2, false, 0x00), (2, true, 0xff), (1, false, 0xff)] {
        let h = keyboard_in_set(set, translate);
        // The guest reads nothing while 100 000 key events arrive.
        for i in 0..100_000 {
            h.key(0x1e, i % 2 == 0);
        }
        let st = h.ctrl.state();
        assert!(st.kbd_queue.len() <= QUEUE_MAX);
        let bytes = h.drain();
        assert!(bytes.len() <= QUEUE_MAX + 1);
        assert_eq!(
            bytes.last(),
            Some(&overrun),
            "set {set} translate {translate}"
        );
        let body = &bytes[..bytes.len() - 1];
        assert!(!body.contains(&overrun), "the overrun code comes once");
        let keys: Vec<(u8, bool)> = if set == 2 && !translate {
            parse_set2(body)
        } else {
            body.iter().map(|&b| (b & 0x7f, b & 0x80 == 0)).collect()
        };
        let code = if set == 2 && !translate { 0x1c } else { 0x1e };
        for (i, &(k, down)) in keys.iter().enumerate() {
            assert_eq!((k, down), (code, i % 2 == 0), "whole key events, in order");
        }
        // Once the host has read, keys flow again.
        h.key(0x30, true);
        let b = if set == 2 && !translate { 0x32 } else { 0x30 };
        assert_eq!(h.drain(), vec![b]);
    }
}

#[test]
fn keyboard_commands_and_arguments() {
    let h = Harness::new();
    let send = |b: u8| send(&h, b);
    assert_eq!(send(0xed), vec![0xfa]);
    assert_eq!(send(0x07), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0x07);
    assert_eq!(send(0xf3), vec![0xfa]);
    assert_eq!(send(0x2b), vec![0xfa]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x00), vec![0xfa, 0x02]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x03), vec![0xfa]);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x00), vec![0xfa, 0x03]);
    // A bad set number is asked for again; a command instead ends the wait.
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0x09), vec![0xfe], "no scan set 9");
    assert_eq!(send(0x01), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().scan_set(), 1);
    assert_eq!(send(0xf0), vec![0xfa]);
    assert_eq!(send(0xee), vec![0xee]);
    // The LED argument interrupted by a command: the command is carried out, the LEDs stay.
    assert_eq!(send(0xed), vec![0xfa]);
    assert_eq!(send(0xf2), vec![0xfa, 0xab, 0x83]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0x07);
    assert_eq!(send(0x12), vec![0xfe]);
    assert_eq!(send(0xef), vec![0xfe]);
    assert_eq!(send(0xfe), vec![0xfe], "resend repeats the last byte");
    assert_eq!(send(0xf5), vec![0xfa]);
    assert_eq!(send(0xfe), vec![0xfa]);
    assert!(!h.ctrl.state().keyboard().scanning());
    assert_eq!(h.ctrl.state().keyboard().scan_set(), 2, "defaults restored");
    assert_eq!(h.ctrl.state().keyboard().leds(), 0x07, "LEDs kept");
    assert_eq!(send(0xf6), vec![0xfa]);
    assert!(h.ctrl.state().keyboard().scanning(), "0xF6 scans again");
    // Resend while an argument is expected: the ACK again, and the argument still counts.
    assert_eq!(send(0xed), vec![0xfa]);
    assert_eq!(send(0xfe), vec![0xfa]);
    assert_eq!(send(0x02), vec![0xfa]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0x02);
    assert_eq!(send(0xff), vec![0xfa, 0xaa]);
    assert_eq!(h.ctrl.state().keyboard().leds(), 0);
    assert_eq!(
        h.ctrl.state().keyboard().typematic(),
        keyboard::TYPEMATIC_DEFAULT
    );
}

#[test]
fn replies_overtake_waiting_scancodes_and_stale_replies_are_dropped() {
    let h = keyboard_in_set(2, false);
    h.key(0x1e, true); // in the output buffer
    h.key(0x30, true); // waiting behind it
    h.outb(0x60, 0xf2);
    assert_eq!(h.drain(), vec![0x1c, 0xfa, 0xab, 0x83, 0x32]);
    h.key(0x1e, false); // F0 1C: F0 in the output buffer
    h.outb(0x60, 0xf2);
    // The host sends again before reading the identify reply: that reply is abandoned.
    h.outb(0x60, 0xee);
    assert_eq!(h.drain(), vec![0xf0, 0xee, 0x1c]);
}

#[test]
fn seabios_reads_keys_translated() {
    let h = Harness::new();
    let ctr = CMD_KBD_DISABLE | CMD_AUX_DISABLE;
    assert_eq!(h.kbd_command(ctr, &[0xff], 1), vec![0xfa, 0xaa]);
    assert_eq!(h.kbd_command(ctr, &[0xf5], 0), vec![0xfa]);
    assert_eq!(h.kbd_command(ctr, &[0xf0, 0x02], 0), vec![0xfa, 0xfa]);
    let ctr = CMD_AUX_DISABLE | CMD_TRANSLATE | CMD_KBD_INT;
    assert_eq!(h.kbd_command(ctr, &[0xf4], 0), vec![0xfa]);
    h.irq1.take_events();
    // Enter, as the BIOS's IRQ 1 handler sees it.
    h.key(0x1c, true);
    assert!(h.irq1.level());
    assert_eq!(h.inb(0x60), 0x1c);
    assert!(!h.irq1.level());
    h.key(0x1c, false);
    assert_eq!(h.inb(0x60), 0x9c);
    assert_eq!(h.irq1.rising_edges(), 2);
}
