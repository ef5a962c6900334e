//! PCI identity and INTx, the timer, the link, the receive filter, the EEPROM, resets and snapshots.

use super::cmode::{linux_open, linux_probe};
use super::*;
use crate::chipset::piix3::pirq_link;
use crate::pci::testing::PciTestbed;
use crate::timer::Timed;

#[test]
fn pci_identity_bars_and_intx_through_the_chipset() {
    let tb = PciTestbed::new();
    tb.route_pirqs_like_seabios();
    let mem = test_memory(MEM_SIZE);
    let net = Arc::new(LinkNet::default());
    let nic = Rtl8139::new(
        MAC,
        net.clone(),
        mem.clone(),
        tb.clock.clone(),
        tb.intx_line(3, 1),
        TimerKick::none(),
    )
    .unwrap();
    tb.add(3, 0, nic.pci_function());
    assert_eq!(tb.cfg_read(3, 0, 0x00, 4), 0x8139_10ec);
    assert_eq!(
        tb.cfg_read(3, 0, 0x08, 4),
        0x0200_0020,
        "class 020000, rev 0x20"
    );
    assert_eq!(tb.cfg_read(3, 0, 0x2c, 4), 0x1100_1af4);
    assert_eq!(tb.cfg_read(3, 0, 0x3d, 1), 1, "INTA#");
    tb.cfg_write(3, 0, 0x10, 4, 0xffff_ffff);
    assert_eq!(tb.cfg_read(3, 0, 0x10, 4), 0xffff_ff01, "256-byte I/O BAR");
    tb.cfg_write(3, 0, 0x14, 4, 0xffff_ffff);
    assert_eq!(
        tb.cfg_read(3, 0, 0x14, 4),
        0xffff_ff00,
        "256-byte memory BAR"
    );
    tb.cfg_write(3, 0, 0x10, 4, 0xc101);
    tb.cfg_write(3, 0, 0x14, 4, 0xfebf_1000);
    tb.cfg_write(3, 0, 0x04, 2, 0x0007);
    // The same registers through both BARs.
    assert_eq!(
        tb.pio_read(0xc100, 4),
        u32::from_le_bytes(MAC[..4].try_into().unwrap())
    );
    assert_eq!(
        tb.mmio_read(0xfebf_1004, 2),
        u64::from(u16::from_le_bytes([MAC[4], MAC[5]]))
    );
    tb.pio_write(0xc100 + u64::from(IMR), 2, u32::from(int::TOK));
    assert_eq!(
        tb.mmio_read(0xfebf_1000 + u64::from(IMR), 2),
        u64::from(int::TOK)
    );

    // A transmitted frame raises TOK on the GSI the PIRQ router maps slot 3's INTA# to.
    let gsi = [10, 10, 11, 11][pirq_link(3, 1).unwrap()];
    let frame = eth(PEER, MAC, 0x0800, &[5; 60]);
    mem.write_slice(&frame, GuestAddress(0x8000)).unwrap();
    tb.pio_write(0xc100 + u64::from(TSAD0), 4, 0x8000);
    tb.pio_write(0xc100 + u64::from(CR), 1, u32::from(cr::TE));
    tb.pio_write(0xc100 + u64::from(TSD0), 4, frame.len() as u32);
    assert_eq!(net.take_sent(), vec![frame]);
    assert!(tb.gsi.level(gsi));
    assert_ne!(tb.cfg_read(3, 0, 0x06, 2) & 0x8, 0, "STATUS.INTERRUPT");
    // COMMAND.INTX_DISABLE masks the pin, not the condition.
    tb.cfg_write(3, 0, 0x04, 2, 0x0407);
    assert!(!tb.gsi.level(gsi));
    assert_ne!(tb.cfg_read(3, 0, 0x06, 2) & 0x8, 0);
    tb.cfg_write(3, 0, 0x04, 2, 0x0007);
    assert!(tb.gsi.level(gsi));
    tb.pio_write(0xc100 + u64::from(ISR), 2, u32::from(int::TOK));
    assert!(!tb.gsi.level(gsi));
    assert_eq!(tb.cfg_read(3, 0, 0x06, 2) & 0x8, 0);
}

#[test]
fn bus_mastering_off_means_no_dma() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    rig.func.lock().unwrap().config_write(4, &[0x03, 0x00]);
    assert!(!rig.net.deliver(&frame_to_us(100, 0)));
    assert_eq!(rig.nic.counters().rx_dropped_disabled, 1);
    assert!(too.xmit(&rig, &eth(PEER, MAC, 0x0800, &[0; 50])));
    assert!(rig.net.take_sent().is_empty());
    assert_ne!(rig.r16(ISR) & int::TER, 0, "the descriptor aborts");
}

#[test]
fn timer_interrupt_when_tctr_reaches_timerint() {
    let rig = Rig::new();
    let timed: &dyn Timed = &*rig.nic;
    assert_eq!(timed.advance(0), None, "no TimerInt, no deadline");
    rig.clock.set(5_000_000);
    rig.w16(IMR, int::TIMEOUT);
    // 33000 ticks of the 33 MHz counter: 1 ms after TCTR is reset.
    rig.w32(TIMER_INT, 33_000);
    rig.w32(TCTR, 0);
    assert_eq!(rig.r32(TCTR), 0);
    assert_eq!(timed.advance(5_000_000), Some(6_000_000));
    rig.clock.set(5_500_000);
    assert_eq!(rig.r32(TCTR), 16_500);
    assert_eq!(timed.advance(5_500_000), Some(6_000_000));
    assert!(!rig.irq.level());
    rig.clock.set(6_000_000);
    let next = timed.advance(6_000_000).unwrap();
    assert!(rig.irq.level(), "TimeOut raised");
    assert_eq!(rig.r16(ISR), int::TIMEOUT);
    // The counter wraps after 2^32 ticks before it matches again.
    assert_eq!(
        next,
        5_000_000 + ((1u64 << 32) + 33_000) * 1_000_000_000 / 33_000_000 + 1
    );
    rig.w16(ISR, int::TIMEOUT);
    assert!(!rig.irq.level());
    // TimerInt 0 switches the timer off.
    rig.w32(TIMER_INT, 0);
    assert_eq!(timed.advance(7_000_000), None);
}

#[test]
fn link_state_follows_the_backend() {
    let rig = Rig::new();
    linux_open(&rig, linux_probe(&rig));
    rig.w16(IMR, int::LINK_CHG);
    assert_eq!(rig.r8(MSR) & 0x04, 0, "link up: LINKB clear");
    assert_eq!(rig.r16(BMSR), 0x782d);
    assert_eq!(rig.r16(ANLPAR), 0x45e1);
    rig.net.set_link(false);
    rig.nic.update_link();
    assert!(rig.irq.level(), "LinkChg");
    assert_eq!(rig.r16(BMSR) & 0x0004, 0);
    assert_ne!(rig.r8(MSR) & 0x04, 0);
    assert_eq!(rig.r16(ANLPAR), 0);
    let cscr = rig.r16(CSCR);
    assert_eq!(cscr & 0x0c00, 0x0800, "link change, no link OK");
    assert_eq!(rig.r16(CSCR) & 0x0800, 0, "cleared by the read");
    // No carrier: frames are not sent.
    rig.put(0x20_0000, &eth(PEER, MAC, 0x0800, &[0; 50]));
    rig.w32(TSD0, 64);
    assert!(rig.net.take_sent().is_empty());
    assert_eq!(rig.nic.counters().tx_dropped_link_down, 1);
    rig.w16(ISR, 0xffff);
    // The guest polling BMSR sees the link come back, with an interrupt.
    rig.net.set_link(true);
    assert_ne!(rig.r16(BMSR) & 0x0004, 0);
    assert_eq!(rig.r16(ISR) & int::LINK_CHG, int::LINK_CHG);
}

#[test]
fn receive_filter_broadcast_multicast_unicast_promiscuous() {
    let rig = Rig::new();
    linux_open(&rig, linux_probe(&rig));
    let base = (2 << 11) | rcr::WRAP;
    let group: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let other_group: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x01];
    let bit = linux_mc_bit(&group);
    assert_ne!(bit, linux_mc_bit(&other_group), "test addresses hash apart");
    // The device's CRC shortcut agrees with Linux's bitwise ether_crc on many addresses.
    for n in 0..500u32 {
        let a = [
            0x01,
            0x00,
            0x5e,
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8 ^ 0x5a,
        ];
        assert_eq!(
            usize::from(super::super::multicast_hash(&a)),
            linux_mc_bit(&a)
        );
    }
    let mut mar = [0u8; 8];
    mar[bit >> 3] |= 1 << (bit & 7);
    rig.w32(MAR0, u32::from_le_bytes(mar[..4].try_into().unwrap()));
    rig.w32(MAR0 + 4, u32::from_le_bytes(mar[4..].try_into().unwrap()));
    let f = |dst: [u8; 6]| eth(dst, PEER, 0x0800, &[0; 50]);
    let stranger = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    let cases: &[(u32, [u8; 6], bool)] = &[
        (rcr::APM, MAC, true),
        (rcr::APM, stranger, false),
        (rcr::APM, [0xff; 6], false),
        (rcr::AB, [0xff; 6], true),
        (rcr::AB, MAC, false),
        (rcr::AM, group, true),
        (rcr::AM, other_group, false),
        (rcr::APM, group, false),
        (rcr::AAP, stranger, true),
        (rcr::AAP, MAC, true),
        (rcr::AAP, [0xff; 6], false),
    ];
    let mut dropped = 0;
    for &(mode, dst, want) in cases {
        rig.w32(RCR, base | mode);
        assert_eq!(rig.net.deliver(&f(dst)), want, "RCR {mode:#x}, {dst:02x?}");
        dropped += u64::from(!want);
    }
    assert_eq!(rig.nic.counters().rx_dropped_filtered, dropped);
    // The status bits of the stored records: PAM, BAR, MAR, none (promiscuous), PAM.
    let statuses: Vec<u32> = {
        let mut v = Vec::new();
        let mut off = 0u64;
        for _ in 0..5 {
            let h = rig.get32(0x10_0000 + off);
            v.push(h & 0xe001);
            off += u64::from(((h >> 16) + 4 + 3) & !3);
        }
        v
    };
    assert_eq!(statuses, vec![0x4001, 0x2001, 0x8001, 0x0001, 0x4001]);
}

#[test]
fn eeprom_written_as_linux_does_and_autoloaded_into_idr() {
    let rig = Rig::new();
    const CS: u8 = 0x08;
    const SK: u8 = 0x04;
    const DI: u8 = 0x02;
    const ENB: u8 = 0x80 | CS;
    let start = || {
        rig.w8(CR9346, ENB & !CS);
        rig.w8(CR9346, ENB);
    };
    let bits = |v: u32, n: u32| {
        for i in (0..n).rev() {
            let d = if v & (1 << i) != 0 { DI } else { 0 };
            rig.w8(CR9346, ENB | d);
            rig.w8(CR9346, ENB | d | SK);
        }
        rig.w8(CR9346, ENB);
    };
    let end = || rig.w8(CR9346, 0);
    let new_mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    // Linux's write_eeprom per word: EWEN, WRITE, wait for ready, EWDS.
    for (i, pair) in new_mac.chunks(2).enumerate() {
        start();
        bits((4 << 6) | (3 << 4), 9);
        end();
        start();
        bits((5 << 6) | (7 + i as u32), 9);
        bits(u32::from(u16::from_le_bytes([pair[0], pair[1]])), 16);
        end();
        start();
        assert_eq!(rig.r8(CR9346) & 1, 1, "ready");
        end();
        start();
        bits(4 << 6, 9);
        end();
    }
    // Without EWEN a write does nothing.
    start();
    bits((5 << 6) | 1, 9);
    bits(0xdead, 16);
    end();
    assert_eq!(rig.linux_read_eeprom(1, 6), 0x10ec);
    assert_eq!(rig.linux_eeprom_mac(), new_mac);
    assert_eq!(rig.nic.mac(), MAC, "IDR keeps its value until a reload");
    rig.w8(CR9346, 0x40);
    assert_eq!(rig.nic.mac(), new_mac, "auto-load");
    assert_eq!(rig.r8(CR9346) >> 6, 0, "back in normal mode");
}

#[test]
fn soft_reset_keeps_idr_and_mar_platform_reset_restores_the_eeprom_mac() {
    let rig = Rig::new();
    rig.w32(IDR0, 0x0403_0201);
    rig.w32(MAR0, 0xdead_beef);
    rig.w16(IMR, 0xffff);
    rig.w8(CR, cr::RE | cr::TE);
    rig.chip_reset();
    assert_eq!(rig.r32(IDR0), 0x0403_0201);
    assert_eq!(rig.r32(MAR0), 0xdead_beef);
    assert_eq!((rig.r16(IMR), rig.r8(CR) & 0x0c), (0, 0));
    rig.func.lock().unwrap().reset();
    assert_eq!(rig.nic.mac(), MAC);
    assert_eq!(rig.r32(MAR0), 0);
    assert_eq!(rig.func.lock().unwrap().config().command(), 0);
}

#[test]
fn config_registers_need_the_9346cr_unlock() {
    let rig = Rig::new();
    rig.w8(CONFIG3, 0x60);
    assert_eq!(rig.r8(CONFIG3), 0x01);
    rig.w16(BMCR, 0x0000);
    assert_eq!(rig.r16(BMCR), 0x3100, "speed/AN/duplex locked");
    rig.w8(CR9346, 0xc0);
    rig.w8(CONFIG3, 0x60);
    assert_eq!(rig.r8(CONFIG3), 0x61);
    rig.w16(BMCR, 0x0000);
    assert_eq!(rig.r16(BMCR), 0x0000);
    assert_ne!(rig.r8(MSR) & 0x08, 0, "forced 10 Mb/s");
    rig.w16(BMCR, 0x8000);
    assert_eq!(rig.r16(BMCR), 0x3100, "PHY reset");
}

#[test]
fn snapshot_restores_into_a_new_device() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    for i in 0..5 {
        assert!(rig.net.deliver(&frame_to_us(200, i)));
    }
    rig.w32(TIMER_INT, 1000);
    let state = rig.nic.state();
    let rig2 = Rig::new();
    rig2.mem
        .write_slice(&rig.get(0x10_0000, 32 << 10), GuestAddress(0x10_0000))
        .unwrap();
    rig2.nic.restore(state.clone());
    assert_eq!(rig2.nic.state(), state);
    assert!(
        rig2.irq.level(),
        "the pending ROK drives INTx after the restore"
    );
    // The driver carries on against the restored device.
    let got = too.interrupt(&rig2);
    assert_eq!(got.len(), 5);
    assert_eq!(got[4], frame_to_us(200, 4));
}

#[test]
fn loopback_mode_receives_what_is_transmitted() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    rig.w32(TCR, rig.r32(TCR) | tcr::LOOPBACK);
    let f = eth(MAC, MAC, 0x0800, &[0x77; 100]);
    assert!(too.xmit(&rig, &f));
    assert!(rig.net.take_sent().is_empty(), "nothing on the wire");
    assert_eq!(too.interrupt(&rig), vec![f]);
}
