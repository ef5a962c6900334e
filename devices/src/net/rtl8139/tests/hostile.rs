//! Guest values meant to break the device: CVE-2015-5165's frame, bad lengths, addresses outside RAM,
//! rings that wrap the address space, and random register traffic. None may panic, read or write
//! outside guest memory, or send anything the guest did not own.

use super::cmode::{linux_open, linux_probe};
use super::cplus::{cp_open, rx_desc, tx_desc, Cp, BUF_SZ, CPCMD};
use super::*;
use crate::net::rtl8139::cplus::desc;
use crate::net::rtl8139::offload::flags;

fn lgsend(mss: u32) -> u32 {
    flags::LGSEND | (mss << flags::MSS_SHIFT)
}

/// Sends `f` with `opts` and checks that nothing went out and the descriptor came back with TES.
fn refused(rig: &Rig, cp: &mut Cp, f: &[u8], opts: u32) {
    let before = rig.nic.counters().tx_malformed;
    cp.xmit(rig, &[f], opts, 0);
    assert!(rig.net.take_sent().is_empty(), "nothing sent");
    let err_before = cp.tx_err;
    cp.tx_done(rig);
    assert_eq!(cp.tx_err, err_before + 1, "descriptor given back with TES");
    assert_eq!(rig.nic.counters().tx_malformed, before + 1);
    assert_ne!(rig.r16(ISR) & int::TER, 0);
    rig.w16(ISR, 0xffff);
}

#[test]
fn cve_2015_5165_ip_total_length_below_the_header_is_not_sent() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let mut f = tcp_frame(1, 1, 0x10, &[0xaa; 200]);
    // QEMU computed ip_len - hlen = 10 - 20, wrapped to 65526 bytes of "payload" from its heap.
    f[16..18].copy_from_slice(&10u16.to_be_bytes());
    refused(&rig, &mut cp, &f, lgsend(1460));
    refused(&rig, &mut cp, &f, flags::IPCS | flags::TCPCS);
    // Total length 0, and exactly the IP header with a TCP header expected after it.
    f[16..18].copy_from_slice(&0u16.to_be_bytes());
    refused(&rig, &mut cp, &f, lgsend(1460));
    f[16..18].copy_from_slice(&20u16.to_be_bytes());
    refused(&rig, &mut cp, &f, lgsend(1460));
    refused(&rig, &mut cp, &f, flags::TCPCS);
    // Total length past the end of the frame.
    f[16..18].copy_from_slice(&1500u16.to_be_bytes());
    refused(&rig, &mut cp, &f, lgsend(1460));
    refused(&rig, &mut cp, &f, flags::IPCS);
    // The ring goes on working.
    let ok = tcp_frame(2, 2, 0x10, &[1; 100]);
    cp.xmit(&rig, &[&ok], lgsend(1460), 0);
    assert_eq!(rig.net.take_sent().len(), 1);
}

#[test]
fn bad_ip_and_tcp_header_lengths_and_mss_zero_are_refused() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let good = tcp_frame(1, 1, 0x10, &[0x55; 300]);
    for ihl in [0u8, 1, 4] {
        let mut f = good.clone();
        f[14] = 0x40 | ihl;
        refused(&rig, &mut cp, &f, lgsend(1000));
        refused(&rig, &mut cp, &f, flags::IPCS);
    }
    // IHL 15 (60 bytes) runs past a 40-byte packet.
    let mut f = tcp_frame(1, 1, 0x10, &[]);
    f[14] = 0x4f;
    refused(&rig, &mut cp, &f, flags::IPCS);
    // TCP data offset beyond the packet, and below 5 words.
    for doff in [15u8, 4, 0] {
        let mut f = tcp_frame(1, 1, 0x10, &[0x55; 20]);
        f[46] = doff << 4;
        refused(&rig, &mut cp, &f, lgsend(1000));
        refused(&rig, &mut cp, &f, flags::TCPCS);
    }
    refused(&rig, &mut cp, &good, lgsend(0));
    refused(&rig, &mut cp, &udp_frame(&[0; 3000]), lgsend(1000));
    refused(
        &rig,
        &mut cp,
        &eth(PEER, MAC, 0x86dd, &[0; 100]),
        lgsend(1000),
    );
    let mut v6 = good.clone();
    v6[14] = 0x65;
    refused(&rig, &mut cp, &v6, flags::IPCS);
}

#[test]
fn transmit_descriptor_lengths_zero_huge_and_oversized() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    // Zero length.
    rig.put32(tx_desc(0) + 4, 0);
    rig.put64(tx_desc(0) + 8, 0x30_0000);
    rig.put32(tx_desc(0), desc::OWN | desc::FS | desc::LS);
    rig.w8(TPPOLL, tppoll::NPQ);
    assert_eq!(
        rig.get32(tx_desc(0)) & (desc::OWN | desc::TX_ERROR),
        desc::TX_ERROR
    );
    // Two 64 KiB - 1 fragments: above the gather limit, refused before any DMA.
    for i in 1..3 {
        rig.put32(tx_desc(i) + 4, 0);
        rig.put64(tx_desc(i) + 8, 0xffff_ffff_ffff_0000);
        let fs_ls = if i == 1 { desc::FS } else { desc::LS };
        rig.put32(tx_desc(i), desc::OWN | fs_ls | 0xffff);
    }
    rig.w8(TPPOLL, tppoll::NPQ);
    assert_eq!(
        rig.get32(tx_desc(2)) & (desc::OWN | desc::TX_ERROR),
        desc::TX_ERROR
    );
    // A plain frame longer than the wire takes.
    let big = eth(PEER, MAC, 0x0800, &[0; 1600]);
    rig.put(0x30_0000, &big);
    rig.put64(tx_desc(3) + 8, 0x30_0000);
    rig.put32(
        tx_desc(3),
        desc::OWN | desc::FS | desc::LS | big.len() as u32,
    );
    rig.w8(TPPOLL, tppoll::NPQ);
    assert!(rig.net.take_sent().is_empty());
    assert_eq!(
        rig.get32(tx_desc(3)) & (desc::OWN | desc::TX_ERROR),
        desc::TX_ERROR
    );
    let c = rig.nic.counters();
    assert_eq!(
        (c.tx_bad_descriptor, c.tx_oversize, c.tx_dma_errors),
        (2, 1, 0)
    );
}

#[test]
fn descriptor_runs_without_first_or_last_segment() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    let f = eth(PEER, MAC, 0x0800, &[3; 100]);
    rig.put(0x30_0000, &f);
    // No FS: given back with an error. Then FS without LS followed by a new FS.
    let set = |i: usize, bits: u32| {
        rig.put64(tx_desc(i) + 8, 0x30_0000);
        rig.put32(tx_desc(i), desc::OWN | bits | f.len() as u32);
    };
    set(0, desc::LS);
    set(1, desc::FS);
    set(2, desc::FS | desc::LS);
    rig.w8(TPPOLL, tppoll::NPQ);
    assert_eq!(rig.net.take_sent(), vec![f.clone()], "only the good frame");
    for i in 0..2 {
        assert_eq!(
            rig.get32(tx_desc(i)) & (desc::OWN | desc::TX_ERROR),
            desc::TX_ERROR
        );
    }
    assert_eq!(rig.get32(tx_desc(2)) & (desc::OWN | desc::TX_ERROR), 0);
    // A whole ring of owned descriptors without LS and without EOR: one bounded walk, all refused.
    for i in 0..64 {
        rig.put64(tx_desc(i) + 8, 0x30_0000);
        rig.put32(
            tx_desc(i),
            desc::OWN | if i == 3 { desc::FS } else { 0 } | 10,
        );
    }
    rig.w8(TPPOLL, tppoll::NPQ);
    assert!(rig.net.take_sent().is_empty());
    assert_eq!(rig.nic.counters().tx_bad_descriptor, 3);
}

#[test]
fn dma_addresses_outside_guest_memory_raise_serr() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    // A transmit buffer past the end of RAM.
    rig.put64(tx_desc(0) + 8, MEM_SIZE as u64 - 10);
    rig.put32(tx_desc(0), desc::OWN | desc::FS | desc::LS | 100);
    rig.w8(TPPOLL, tppoll::NPQ);
    assert!(rig.net.take_sent().is_empty());
    assert_ne!(rig.r16(ISR) & int::SERR, 0);
    assert_eq!(rig.nic.counters().tx_dma_errors, 1);
    let status = rig.func.lock().unwrap().config().status();
    assert_eq!(
        status & (1 << 13),
        0,
        "STATUS is brought up to date on a configuration read"
    );
    let mut st = [0u8; 2];
    rig.func.lock().unwrap().config_read(6, &mut st);
    assert_ne!(
        u16::from_le_bytes(st) & (1 << 13),
        0,
        "received master abort"
    );
    assert_eq!(
        rig.get32(tx_desc(0)) & (desc::OWN | desc::TX_ERROR),
        desc::TX_ERROR
    );
    // A receive buffer past the end of RAM.
    rig.put64(rx_desc(0) + 8, u64::MAX - 100);
    assert!(!rig.net.deliver(&frame_to_us(500, 0)));
    assert_eq!(rig.nic.counters().rx_dma_errors, 1);
    assert_ne!(
        rig.get32(rx_desc(0)) & desc::OWN,
        0,
        "descriptor not given back"
    );
    // Rings whose entries run off the end of the address space.
    rig.w32(TNPDS, 0xffff_fff0);
    rig.w32(TNPDS + 4, 0xffff_ffff);
    rig.w8(TPPOLL, tppoll::NPQ);
    rig.w32(RDSAR, 0xffff_fff0);
    rig.w32(RDSAR + 4, 0xffff_ffff);
    assert!(rig.nic.can_receive());
    assert!(!rig.net.deliver(&frame_to_us(500, 0)));
    assert!(rig.net.take_sent().is_empty());
    assert_eq!(rig.nic.counters().rx_dma_errors, 2);
}

#[test]
fn receive_descriptors_too_small_or_empty_do_not_hang_the_ring() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    // Every descriptor owned with a 0-byte buffer.
    for i in 0..64 {
        rig.put32(rx_desc(i), desc::OWN | if i == 63 { desc::EOR } else { 0 });
    }
    assert!(!rig.net.deliver(&frame_to_us(100, 0)));
    // Every descriptor owned with 8 bytes and no EOR: the whole ring holds 512 bytes.
    for i in 0..64 {
        rig.put32(rx_desc(i), desc::OWN | 8);
    }
    assert!(!rig.net.deliver(&frame_to_us(1514, 0)));
    assert_eq!(rig.nic.counters().rx_dropped_bad_descriptor, 2);
    assert_eq!(rig.get32(rx_desc(0)), desc::OWN | 8, "nothing written");
    // Buffers sized as the driver says work again.
    for i in 0..64 {
        rig.put32(rx_desc(i), desc::OWN | BUF_SZ);
    }
    assert!(rig.net.deliver(&frame_to_us(1514, 0)));
}

#[test]
fn c_mode_hostile_lengths_and_addresses() {
    let rig = Rig::new();
    linux_open(&rig, linux_probe(&rig));
    // Size 0, size 0x1fff (above any frame), a buffer off the end of RAM: all aborted.
    rig.w32(TSD0, 0);
    rig.w32(TSD0 + 4, 0x1fff);
    rig.w32(TSAD0 + 8, (MEM_SIZE - 8) as u32);
    rig.w32(TSD0 + 8, 100);
    assert!(rig.net.take_sent().is_empty());
    for i in 0..3 {
        let t = rig.r32(TSD0 + 4 * i);
        assert_eq!(
            t & (tsd::OWN | tsd::TABT | tsd::TOK),
            tsd::OWN | tsd::TABT,
            "TSD{i}"
        );
    }
    let c = rig.nic.counters();
    assert_eq!(
        (c.tx_bad_descriptor, c.tx_oversize, c.tx_dma_errors),
        (1, 1, 1)
    );
    // A receive ring straddling the end of RAM: the write fails, nothing panics, CBR stays.
    rig.w32(RBSTART, (MEM_SIZE - 100) as u32);
    assert!(!rig.net.deliver(&frame_to_us(500, 0)));
    assert_eq!(rig.r16(CBR), 0);
    assert_eq!(rig.nic.counters().rx_dma_errors, 1);
    // Frames the back-end should never produce.
    for len in [0usize, 5, 13, 1519, 9000] {
        assert!(!rig.nic.receive(&vec![0xff; len]));
    }
    assert_eq!(rig.nic.counters().rx_dropped_length, 5);
    // CAPR anywhere: the ring bookkeeping stays modular.
    rig.w32(RBSTART, 0x10_0000);
    for capr in [0u16, 0xffff, 0x7ff3, 0x8000, 0x1234] {
        rig.w16(CAPR, capr);
        rig.net.deliver(&frame_to_us(1514, 1));
        assert!(u32::from(rig.r16(CBR)) < 32 << 10);
    }
}

/// A small deterministic generator (xorshift) for the register storm.
struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_register_and_ring_traffic_never_panics() {
    let rig = Rig::new();
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    for round in 0..20_000u32 {
        let r = rng.next();
        let off = (r >> 8) as u8;
        let width = [1usize, 2, 4][(r % 3) as usize];
        let value = (r >> 32) as u32;
        match r % 7 {
            0..=2 => {
                let bytes = value.to_le_bytes();
                rig.func.lock().unwrap().bar_write(
                    RegionId::Bar((r >> 4) as u8 & 1),
                    u64::from(off),
                    &bytes[..width],
                );
            }
            3 => {
                let mut d = [0u8; 8];
                rig.func.lock().unwrap().bar_read(
                    RegionId::Bar(1),
                    u64::from(off),
                    &mut d[..width],
                );
            }
            4 => {
                // Scribble over the rings and buffers the registers may point at.
                let addr = u64::from(value) % (MEM_SIZE as u64 - 16);
                rig.put64(addr, rng.next());
            }
            5 => {
                let len = (value % 1600) as usize;
                let mut f = vec![(round & 0xff) as u8; len];
                if len >= 6 {
                    f[..6].copy_from_slice(if r & 0x100 != 0 { &MAC } else { &[0xff; 6] });
                }
                rig.nic.receive(&f);
                rig.nic.can_receive();
            }
            _ => {
                // Keep the chip mostly switched on, in C or C+ mode, with rings in RAM.
                rig.w8(CR, cr::RE | cr::TE);
                rig.w32(RCR, value & 0x1fff);
                if r & 0x200 != 0 {
                    rig.w16(CPCR, 0x63);
                    rig.w32(RDSAR, (value % 0x30_0000) & !0xff);
                    rig.w32(TNPDS, (value.rotate_left(7) % 0x30_0000) & !0xff);
                    rig.w8(TPPOLL, 0xc1);
                }
                rig.func.lock().unwrap().config_write(4, &[0x07, 0x00]);
            }
        }
        // Large offset accesses straddling the end of the window.
        if round % 1000 == 0 {
            let mut d = [0u8; 8];
            rig.func
                .lock()
                .unwrap()
                .bar_read(RegionId::Bar(0), 252, &mut d);
            rig.func
                .lock()
                .unwrap()
                .bar_write(RegionId::Bar(0), 255, &[0xff; 8]);
            rig.func
                .lock()
                .unwrap()
                .bar_read(RegionId::Bar(0), u64::MAX - 2, &mut d);
            assert_eq!(d[3..], [0xff; 5]);
        }
    }
    // Whatever happened, every frame handed to the back-end was a legal Ethernet frame.
    for f in rig.net.take_sent() {
        assert!((60..=1518).contains(&f.len()));
    }
}
