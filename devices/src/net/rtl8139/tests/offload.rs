//! C+ offloads as 8139cp requests them: checksums, large send, the receive checksum check.

use super::cplus::{cp_open, CPCMD};
use super::*;
use crate::net::rtl8139::offload::{flags, rx};

const IPCS: u32 = flags::IPCS;
const TCPCS: u32 = flags::TCPCS;
const UDPCS: u32 = flags::UDPCS;

fn lgsend(mss: u32) -> u32 {
    flags::LGSEND | (mss << flags::MSS_SHIFT)
}

#[test]
fn tcp_and_ip_checksums_are_filled_in() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let payload: Vec<u8> = (0..777).map(|i| (i * 13) as u8).collect();
    let f = tcp_frame(0x1111, 1000, 0x18, &payload);
    cp.xmit(&rig, &[&f[..54], &f[54..]], IPCS | TCPCS, 0);
    let sent = rig.net.take_sent();
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!(s.len(), f.len());
    assert_tcp_checksums(s);
    // Only the checksum fields changed.
    let mut expect = f.clone();
    expect[24..26].copy_from_slice(&s[24..26]);
    expect[50..52].copy_from_slice(&s[50..52]);
    assert_eq!(s, &expect);
    assert_ne!(&s[24..26], &[0, 0]);
    cp.tx_done(&rig);
    assert_eq!(cp.tx_ok, 1);
}

#[test]
fn udp_checksum_and_odd_length() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let f = udp_frame(b"an odd-length DNS-ish payload!!");
    cp.xmit(&rig, &[&f], IPCS | UDPCS, 0);
    let s = &rig.net.take_sent()[0];
    assert_eq!(inet_sum(&[&s[14..34]]), 0);
    let udp = &s[34..];
    let pseudo = [&s[26..34], &[0, 17], &(udp.len() as u16).to_be_bytes()[..]].concat();
    assert_eq!(inet_sum(&[&pseudo, udp]), 0, "UDP checksum");
    assert_ne!(&udp[6..8], &[0, 0]);
}

#[test]
fn checksum_flags_on_a_non_ip_frame_send_it_unchanged() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let f = eth(PEER, MAC, 0x0806, &[1; 46]);
    cp.xmit(&rig, &[&f], IPCS | TCPCS, 0);
    assert_eq!(rig.net.take_sent(), vec![f]);
}

/// Checks the segments of a large send of `payload` with `mss` against the original frame.
fn check_segments(segs: &[Vec<u8>], orig: &[u8], payload: &[u8], mss: usize) {
    let id = u16::from_be_bytes([orig[18], orig[19]]);
    let seq = u32::from_be_bytes(orig[38..42].try_into().unwrap());
    let n = payload.len().div_ceil(mss);
    assert_eq!(segs.len(), n);
    let mut data = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let chunk = mss.min(payload.len() - i * mss);
        assert_eq!(s.len(), 54 + chunk, "segment {i} length");
        assert_eq!(&s[..14], &orig[..14]);
        assert_eq!(
            u16::from_be_bytes([s[16], s[17]]) as usize,
            40 + chunk,
            "IP total length"
        );
        assert_eq!(
            u16::from_be_bytes([s[18], s[19]]),
            id.wrapping_add(i as u16),
            "IP id"
        );
        let s_seq = u32::from_be_bytes(s[38..42].try_into().unwrap());
        assert_eq!(s_seq, seq.wrapping_add((i * mss) as u32), "sequence number");
        let last = i + 1 == n;
        assert_eq!(
            s[47] & 0x09,
            if last { orig[47] & 0x09 } else { 0 },
            "PSH/FIN"
        );
        assert_eq!(s[47] & 0x10, orig[47] & 0x10, "ACK on every segment");
        assert_tcp_checksums(s);
        data.extend_from_slice(&s[54..]);
    }
    assert_eq!(data, payload);
}

#[test]
fn large_send_splits_4000_bytes_into_mss_sized_segments() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let payload: Vec<u8> = (0..4000u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    // ACK|PSH|FIN, sequence near the wrap.
    let f = tcp_frame(0xfffe, 0xffff_f000, 0x19, &payload);
    cp.xmit(&rig, &[&f[..54], &f[54..2054], &f[2054..]], lgsend(1448), 0);
    let segs = rig.net.take_sent();
    check_segments(&segs, &f, &payload, 1448);
    assert_eq!(
        segs.iter().map(|s| s.len() - 54).collect::<Vec<_>>(),
        vec![1448, 1448, 1104]
    );
    cp.tx_done(&rig);
    assert_eq!((cp.tx_ok, cp.tx_err), (1, 0));
    // A smaller MSS: 8 segments of at most 536 bytes.
    cp.xmit(&rig, &[&f], lgsend(536), 0);
    check_segments(&rig.net.take_sent(), &f, &payload, 536);
    // An MSS larger than the MTU allows is capped at 1460.
    cp.xmit(&rig, &[&f], lgsend(2000), 0);
    check_segments(&rig.net.take_sent(), &f, &payload, 1460);
    assert_eq!(rig.nic.counters().tx_frames, 3 + 8 + 3);
}

#[test]
fn large_send_with_vlan_insertion_tags_every_segment() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let payload = vec![0x5a; 3000];
    let f = tcp_frame(1, 1, 0x10, &payload);
    cp.xmit(&rig, &[&f], lgsend(1460), desc_tag(0x0123));
    let segs = rig.net.take_sent();
    assert_eq!(segs.len(), 3);
    let untagged: Vec<Vec<u8>> = segs
        .iter()
        .map(|s| {
            assert_eq!(&s[12..16], &[0x81, 0x00, 0x01, 0x23]);
            [&s[..12], &s[16..]].concat()
        })
        .collect();
    check_segments(&untagged, &f, &payload, 1460);
}

fn desc_tag(tci: u16) -> u32 {
    crate::net::rtl8139::cplus::desc::TX_TAG | u32::from(tci.swap_bytes())
}

#[test]
fn received_checksums_are_checked_when_rxchksum_is_on() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let mut good = tcp_frame(9, 9, 0x10, &[1, 2, 3, 4, 5]);
    good[..6].copy_from_slice(&MAC);
    good[6..12].copy_from_slice(&PEER);
    let ip = inet_sum(&[&good[14..34]]);
    good[24..26].copy_from_slice(&ip.to_be_bytes());
    let seg = good[34..].to_vec();
    let pseudo = [
        &good[26..34],
        &[0, 6],
        &(seg.len() as u16).to_be_bytes()[..],
    ]
    .concat();
    let tcp = inet_sum(&[&pseudo, &seg]);
    good[50..52].copy_from_slice(&tcp.to_be_bytes());
    let mut bad_tcp = good.clone();
    bad_tcp[58] ^= 0xff;
    let mut bad_ip = good.clone();
    bad_ip[22] ^= 1;
    let mut udp = udp_frame(&[9; 9]);
    udp[..6].copy_from_slice(&MAC);
    let ip = inet_sum(&[&udp[14..34]]);
    udp[24..26].copy_from_slice(&ip.to_be_bytes());
    for f in [&good, &bad_tcp, &bad_ip, &udp] {
        assert!(rig.net.deliver(f));
    }
    let got = cp.rx_poll(&rig);
    let status: Vec<u32> = got.iter().map(|(_, s, _)| s & 0x3e000).collect();
    let tcp_pid = 1 << rx::PID_SHIFT;
    let udp_pid = 2 << rx::PID_SHIFT;
    assert_eq!(
        status,
        vec![
            tcp_pid,
            tcp_pid | rx::TCPF,
            // The TTL change breaks the IP checksum and, through nothing else, leaves TCP valid.
            tcp_pid | rx::IPF,
            // A UDP checksum of zero means "none".
            udp_pid,
        ]
    );
    // Off: no protocol bits.
    rig.w16(CPCR, CPCMD & !0x20);
    assert!(rig.net.deliver(&good));
    assert_eq!(cp.rx_poll(&rig)[0].1 & 0x3e000, 0);
}

#[test]
fn a_ring_of_large_sends_is_sent_in_batches_in_order() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let payload: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    // 30 large sends (two fragments each) of 40 segments: more than one transmit batch.
    for n in 0..30u16 {
        let f = tcp_frame(n * 100, u32::from(n) * 4000, 0x10, &payload);
        cp.queue(&rig, &[&f[..2027], &f[2027..]], lgsend(100), 0);
    }
    rig.w8(crate::net::rtl8139::regs::TPPOLL, tppoll::NPQ);
    let sent = rig.net.take_sent();
    assert_eq!(sent.len(), 30 * 40);
    assert!(sent.iter().map(Vec::len).sum::<usize>() > 128 << 10);
    for (n, segs) in sent.chunks(40).enumerate() {
        let f = tcp_frame(n as u16 * 100, n as u32 * 4000, 0x10, &payload);
        check_segments(segs, &f, &payload, 100);
    }
    cp.tx_done(&rig);
    assert_eq!((cp.tx_ok, cp.tx_err), (30, 0));
}
