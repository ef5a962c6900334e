//! C+ task offloads on IPv4 frames: transmit checksums (IP header, TCP, UDP), large send (TCP
//! segmentation into MSS-sized frames) and the receive checksum check.
//!
//! Every length the guest's frame claims is checked against the frame before it is used: the IP header
//! length (at least 20 bytes and inside the frame), the IP total length (at least the header, and not past
//! the frame) and the TCP data offset (at least 20 bytes and inside the IP packet). QEMU's model trusted
//! the IP total length in large send and computed `total - header` without that check: a total length
//! below the header length wrapped to a huge payload and the device sent host heap memory to the wire
//! (CVE-2015-5165). Here such a frame is not sent at all; the caller counts it as malformed.
//!
//! The checksum is the Internet ones' complement sum (RFC 1071), written out here: it is a few lines
//! and the frames are already in one buffer.

use super::chip::TxQueue;

/// Descriptor bits the offloads look at (opts1 of the first descriptor of a frame).
pub mod flags {
    /// Large send (TCP segmentation).
    pub const LGSEND: u32 = 1 << 27;
    /// Shift of the 11-bit MSS of a large send.
    pub const MSS_SHIFT: u32 = 16;
    /// Mask of the MSS after shifting.
    pub const MSS_MASK: u32 = 0x7ff;
    /// Compute the IP header checksum.
    pub const IPCS: u32 = 1 << 18;
    /// Compute the UDP checksum.
    pub const UDPCS: u32 = 1 << 17;
    /// Compute the TCP checksum.
    pub const TCPCS: u32 = 1 << 16;
}

/// Receive descriptor status bits the checksum check sets.
pub mod rx {
    /// Shift of the protocol ID (0 non-IP, 1 TCP, 2 UDP, 3 other IP).
    pub const PID_SHIFT: u32 = 16;
    /// IP header checksum wrong.
    pub const IPF: u32 = 1 << 15;
    /// UDP checksum wrong.
    pub const UDPF: u32 = 1 << 14;
    /// TCP checksum wrong.
    pub const TCPF: u32 = 1 << 13;
}

/// Largest IP packet in a frame the wire takes (the Ethernet MTU).
const MTU: usize = 1500;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// Why a frame was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxFault {
    /// The headers contradict themselves or the frame (the reason, for the log).
    Malformed(&'static str),
    /// The frame is longer than the wire takes.
    Oversize,
}

/// An IPv4 header that passed the length checks.
#[derive(Debug, Clone, Copy)]
struct Ipv4 {
    /// Offset of the IP header in the frame.
    l3: usize,
    /// Header length in bytes.
    ihl: usize,
    /// Total length in bytes (header and payload).
    total: usize,
    proto: u8,
    /// A fragment (MF set or a non-zero offset): no transport checksum applies to it alone.
    fragment: bool,
}

impl Ipv4 {
    fn l4(&self) -> usize {
        self.l3 + self.ihl
    }
    fn end(&self) -> usize {
        self.l3 + self.total
    }
}

fn be16(frame: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

fn put_be16(frame: &mut [u8], at: usize, v: u16) {
    if let Some(d) = frame.get_mut(at..at + 2) {
        d.copy_from_slice(&v.to_be_bytes());
    }
}

/// Where the IPv4 header starts: after the Ethernet header, or after an 802.1Q tag in the frame.
fn l3_offset(frame: &[u8]) -> Option<usize> {
    match be16(frame, 12)? {
        0x0800 => Some(14),
        0x8100 if be16(frame, 16)? == 0x0800 => Some(18),
        _ => None,
    }
}

fn parse_ipv4(frame: &[u8], l3: usize) -> Result<Ipv4, TxFault> {
    let vihl = *frame
        .get(l3)
        .ok_or(TxFault::Malformed("IP header beyond the frame"))?;
    if vihl >> 4 != 4 {
        return Err(TxFault::Malformed("IP version is not 4"));
    }
    let ihl = usize::from(vihl & 0xf) * 4;
    if ihl < 20 {
        return Err(TxFault::Malformed("IP header length below 20 bytes"));
    }
    if l3 + ihl > frame.len() {
        return Err(TxFault::Malformed("IP header runs past the frame"));
    }
    let total = usize::from(be16(frame, l3 + 2).unwrap_or(0));
    if total < ihl {
        return Err(TxFault::Malformed(
            "IP total length shorter than the IP header",
        ));
    }
    if l3 + total > frame.len() {
        return Err(TxFault::Malformed("IP total length runs past the frame"));
    }
    let frag = be16(frame, l3 + 6).unwrap_or(0);
    Ok(Ipv4 {
        l3,
        ihl,
        total,
        proto: frame[l3 + 9],
        fragment: frag & 0x3fff != 0,
    })
}

/// The TCP header length of the segment in `ip`, checked against the packet.
fn tcp_header_len(frame: &[u8], ip: &Ipv4) -> Result<usize, TxFault> {
    let l4 = ip.l4();
    if l4 + 20 > ip.end() {
        return Err(TxFault::Malformed("TCP header runs past the IP packet"));
    }
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    if doff < 20 {
        return Err(TxFault::Malformed("TCP data offset below 20 bytes"));
    }
    if l4 + doff > ip.end() {
        return Err(TxFault::Malformed(
            "TCP data offset runs past the IP packet",
        ));
    }
    Ok(doff)
}

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `sum`.
fn sum_words(data: &[u8], mut sum: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a sum to 16 bits and complements it.
fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The ones' complement checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum_words(data, 0))
}

/// The pseudo-header sum: source, destination, protocol, transport length.
fn pseudo_sum(frame: &[u8], ip: &Ipv4, proto: u8, l4_len: usize) -> u64 {
    let addrs = frame.get(ip.l3 + 12..ip.l3 + 20).unwrap_or(&[]);
    sum_words(addrs, u64::from(proto) + l4_len as u64)
}

fn set_ip_checksum(frame: &mut [u8], ip: &Ipv4) {
    put_be16(frame, ip.l3 + 10, 0);
    let c = checksum(&frame[ip.l3..ip.l4()]);
    put_be16(frame, ip.l3 + 10, c);
}

/// Computes the transport checksum of the packet in `ip` into the field at `field` (offset in the
/// transport header). UDP writes an all-zero result as all ones, zero meaning "no checksum".
fn set_l4_checksum(frame: &mut [u8], ip: &Ipv4, proto: u8, field: usize) {
    let (l4, end) = (ip.l4(), ip.end());
    put_be16(frame, l4 + field, 0);
    let mut c = finish(sum_words(
        &frame[l4..end],
        pseudo_sum(frame, ip, proto, end - l4),
    ));
    if proto == PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    put_be16(frame, l4 + field, c);
}

/// Applies the offloads `opts1` asks for to `frame` and queues the frame(s) to send, with `vlan`
/// inserted. Returns the number of frames queued.
pub fn transmit(
    frame: &mut [u8],
    opts1: u32,
    vlan: Option<[u8; 2]>,
    seg: &mut Vec<u8>,
    queue: &mut TxQueue,
) -> Result<usize, TxFault> {
    if opts1 & flags::LGSEND != 0 {
        let mss = ((opts1 >> flags::MSS_SHIFT) & flags::MSS_MASK) as usize;
        return segment(frame, mss, vlan, seg, queue);
    }
    if opts1 & (flags::IPCS | flags::UDPCS | flags::TCPCS) != 0 {
        offload_checksums(frame, opts1)?;
    }
    if queue.push(frame, vlan) {
        Ok(1)
    } else {
        Err(TxFault::Oversize)
    }
}

/// The checksums of one frame. A frame that is not IPv4 is sent as it is (the chip has nothing to
/// compute); an IPv4 frame whose lengths do not add up is refused.
fn offload_checksums(frame: &mut [u8], opts1: u32) -> Result<(), TxFault> {
    let Some(l3) = l3_offset(frame) else {
        return Ok(());
    };
    let ip = parse_ipv4(frame, l3)?;
    if opts1 & flags::IPCS != 0 {
        set_ip_checksum(frame, &ip);
    }
    if ip.fragment {
        return Ok(());
    }
    if opts1 & flags::TCPCS != 0 && ip.proto == PROTO_TCP {
        tcp_header_len(frame, &ip)?;
        set_l4_checksum(frame, &ip, PROTO_TCP, 16);
    } else if opts1 & flags::UDPCS != 0 && ip.proto == PROTO_UDP {
        if ip.l4() + 8 > ip.end() {
            return Err(TxFault::Malformed("UDP header runs past the IP packet"));
        }
        set_l4_checksum(frame, &ip, PROTO_UDP, 6);
    }
    Ok(())
}

/// Large send: splits the TCP payload into segments of at most `mss` bytes (and at most what fits an
/// MTU-sized IP packet), each with its own IP length, ID (+1 per segment), IP checksum, sequence
/// number and TCP checksum; PSH and FIN only on the last segment, CWR only on the first.
fn segment(
    frame: &[u8],
    mss: usize,
    vlan: Option<[u8; 2]>,
    seg: &mut Vec<u8>,
    queue: &mut TxQueue,
) -> Result<usize, TxFault> {
    let l3 = l3_offset(frame).ok_or(TxFault::Malformed("large send of a non-IPv4 frame"))?;
    let ip = parse_ipv4(frame, l3)?;
    if ip.proto != PROTO_TCP {
        return Err(TxFault::Malformed("large send of a non-TCP packet"));
    }
    if ip.fragment {
        return Err(TxFault::Malformed("large send of an IP fragment"));
    }
    let thl = tcp_header_len(frame, &ip)?;
    if mss == 0 {
        return Err(TxFault::Malformed("large send with an MSS of 0"));
    }
    let headers = ip.l4() + thl;
    let room = MTU
        .checked_sub(ip.ihl + thl)
        .filter(|&r| r > 0)
        .ok_or(TxFault::Malformed("large send headers fill the MTU"))?;
    let chunk = mss.min(room);
    let payload = &frame[headers..ip.end()];
    let id = be16(frame, l3 + 4).unwrap_or(0);
    let l4 = ip.l4();
    let seq = frame
        .get(l4 + 4..l4 + 8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let flags_at = l4 + 13;
    let count = payload.len().div_ceil(chunk).max(1);
    for i in 0..count {
        let start = i * chunk;
        let data = payload
            .get(start..(start + chunk).min(payload.len()))
            .unwrap_or(&[]);
        seg.clear();
        seg.extend_from_slice(&frame[..headers]);
        seg.extend_from_slice(data);
        let seg_ip = Ipv4 {
            total: ip.ihl + thl + data.len(),
            ..ip
        };
        put_be16(seg, l3 + 2, seg_ip.total as u16);
        put_be16(seg, l3 + 4, id.wrapping_add(i as u16));
        set_ip_checksum(seg, &seg_ip);
        let s = seq.wrapping_add(start as u32).to_be_bytes();
        seg[l4 + 4..l4 + 8].copy_from_slice(&s);
        if i + 1 < count {
            // PSH and FIN belong to the end of the data.
            seg[flags_at] &= !0x09;
        }
        if i > 0 {
            // CWR belongs to the first segment.
            seg[flags_at] &= !0x80;
        }
        set_l4_checksum(seg, &seg_ip, PROTO_TCP, 16);
        if !queue.push(seg, vlan) {
            return Err(TxFault::Oversize);
        }
    }
    Ok(count)
}

/// The receive checksum status of a frame (C+ with RxChkSum): protocol ID and failure bits.
pub fn rx_checksum_status(frame: &[u8]) -> u32 {
    let Some(l3) = l3_offset(frame) else {
        return 0;
    };
    let Ok(ip) = parse_ipv4(frame, l3) else {
        return 0;
    };
    let mut status = 0;
    if checksum(&frame[ip.l3..ip.l4()]) != 0 {
        status |= rx::IPF;
    }
    let (l4, end) = (ip.l4(), ip.end());
    let l4_ok = |proto| {
        finish(sum_words(
            &frame[l4..end],
            pseudo_sum(frame, &ip, proto, end - l4),
        )) == 0
    };
    let pid = match ip.proto {
        _ if ip.fragment => 3,
        PROTO_TCP => {
            if tcp_header_len(frame, &ip).is_err() || !l4_ok(PROTO_TCP) {
                status |= rx::TCPF;
            }
            1
        }
        PROTO_UDP => {
            let unchecked = be16(frame, l4 + 6) == Some(0);
            if l4 + 8 > end || !(unchecked || l4_ok(PROTO_UDP)) {
                status |= rx::UDPF;
            }
            2
        }
        _ => 3,
    };
    status | (pid << rx::PID_SHIFT)
}
