//! Building and parsing the frames NIC tests exchange with real peers: Ethernet II, ARP, IPv4 (with its
//! header checksum), ICMP echo, UDP (with the pseudo-header checksum) and the DHCP messages a client sends
//! and receives (options 53 message type, 50 requested address, 54 server, 51 lease time, 1 subnet mask,
//! 3 router).
//!
//! Written here rather than taken from a crate: `etherparse` parses and builds Ethernet/IP/UDP/ICMP but has
//! no DHCP, and `smoltcp` has all of it but wants to own the whole exchange (its `Interface` and `Device`
//! token model, its own clock), while these tests need to see and assert on every byte a NIC model sent or
//! received. What is needed is about as long as the glue to either crate would be. Parsers check every
//! length against the buffer and return `None` on anything malformed; they never panic.

use std::net::Ipv4Addr;

/// A MAC address.
pub type Mac = [u8; 6];
/// `ff:ff:ff:ff:ff:ff`.
pub const BROADCAST: Mac = [0xff; 6];
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// UDP port of a DHCP server.
pub const DHCP_SERVER_PORT: u16 = 67;
/// UDP port of a DHCP client.
pub const DHCP_CLIENT_PORT: u16 = 68;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn ip_at(b: &[u8], at: usize) -> Option<Ipv4Addr> {
    be32(b, at).map(Ipv4Addr::from)
}

fn mac_at(b: &[u8], at: usize) -> Option<Mac> {
    b.get(at..at + 6)?.try_into().ok()
}

/// Formats a MAC as `00:16:3e:00:00:01`.
pub fn mac_string(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The Internet checksum (RFC 1071) of `data`, with `initial` folded in (for pseudo-headers).
pub fn internet_checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(proto),
        len as u16,
    ]
    .iter()
    .map(|&w| u32::from(w))
    .sum()
}

/// An Ethernet II frame seen by a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ethernet<'a> {
    /// Destination.
    pub dst: Mac,
    /// Source.
    pub src: Mac,
    /// EtherType (after a VLAN tag, if one was there).
    pub ethertype: u16,
    /// The 802.1Q tag's TCI, if the frame had one.
    pub vlan: Option<u16>,
    /// What follows the header (with any padding the sender added).
    pub payload: &'a [u8],
}

/// Builds an Ethernet II frame (no FCS, no padding).
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Parses an Ethernet II header, with or without one 802.1Q tag.
pub fn parse_ethernet(frame: &[u8]) -> Option<Ethernet<'_>> {
    let dst = mac_at(frame, 0)?;
    let src = mac_at(frame, 6)?;
    let mut ethertype = be16(frame, 12)?;
    let mut vlan = None;
    let mut at = 14;
    if ethertype == 0x8100 {
        vlan = Some(be16(frame, 14)?);
        ethertype = be16(frame, 16)?;
        at = 18;
    }
    Some(Ethernet {
        dst,
        src,
        ethertype,
        vlan,
        payload: frame.get(at..)?,
    })
}

/// ARP operation: request.
pub const ARP_REQUEST: u16 = 1;
/// ARP operation: reply.
pub const ARP_REPLY: u16 = 2;

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// [`ARP_REQUEST`] or [`ARP_REPLY`].
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// The ARP packet as the payload of an Ethernet frame (28 bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(28);
        p.extend_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
        p.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        p.extend_from_slice(&[6, 4]);
        p.extend_from_slice(&self.op.to_be_bytes());
        p.extend_from_slice(&self.sender_mac);
        p.extend_from_slice(&self.sender_ip.octets());
        p.extend_from_slice(&self.target_mac);
        p.extend_from_slice(&self.target_ip.octets());
        p
    }
}

/// A broadcast "who has `target_ip`" frame.
pub fn arp_request(sender_mac: Mac, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let arp = Arp {
        op: ARP_REQUEST,
        sender_mac,
        sender_ip,
        target_mac: [0; 6],
        target_ip,
    };
    ethernet(BROADCAST, sender_mac, ETHERTYPE_ARP, &arp.to_bytes())
}

/// The unicast answer to `request`: `my_mac` has `request.target_ip`.
pub fn arp_reply(my_mac: Mac, request: &Arp) -> Vec<u8> {
    let arp = Arp {
        op: ARP_REPLY,
        sender_mac: my_mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    ethernet(request.sender_mac, my_mac, ETHERTYPE_ARP, &arp.to_bytes())
}

/// Parses the ARP packet of an Ethernet payload (IPv4 over Ethernet only).
pub fn parse_arp(payload: &[u8]) -> Option<Arp> {
    if be16(payload, 0)? != 1 || be16(payload, 2)? != ETHERTYPE_IPV4 || payload.get(4..6)? != [6, 4]
    {
        return None;
    }
    Some(Arp {
        op: be16(payload, 6)?,
        sender_mac: mac_at(payload, 8)?,
        sender_ip: ip_at(payload, 14)?,
        target_mac: mac_at(payload, 18)?,
        target_ip: ip_at(payload, 24)?,
    })
}

/// An IPv4 packet seen by a parser (header checksum and lengths verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4<'a> {
    /// Source.
    pub src: Ipv4Addr,
    /// Destination.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// The payload, cut to the header's total length (Ethernet padding removed).
    pub payload: &'a [u8],
}

/// Builds an IPv4 packet (20-byte header, don't-fragment clear, TTL 64) with its header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, id: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&[0, 0, 64, protocol, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = internet_checksum(&p, 0);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Parses an IPv4 packet: version 4, a header whose checksum verifies, a total length within the buffer;
/// fragments are refused (the tests never fragment).
pub fn parse_ipv4(packet: &[u8]) -> Option<Ipv4<'_>> {
    let vihl = *packet.first()?;
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return None;
    }
    let header = packet.get(..ihl)?;
    if internet_checksum(header, 0) != 0 {
        return None;
    }
    let total = usize::from(be16(packet, 2)?);
    let frag = be16(packet, 6)?;
    if total < ihl || frag & 0x3fff != 0 {
        return None;
    }
    Some(Ipv4 {
        src: ip_at(packet, 12)?,
        dst: ip_at(packet, 16)?,
        protocol: packet[9],
        ttl: packet[8],
        id: be16(packet, 4)?,
        payload: packet.get(ihl..total)?,
    })
}

/// ICMP type of an echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP type of an echo request.
pub const ICMP_ECHO_REQUEST: u8 = 8;

/// An ICMP echo request or reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpEcho {
    /// [`ICMP_ECHO_REQUEST`] or [`ICMP_ECHO_REPLY`].
    pub kind: u8,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// The data carried (echoed back by the peer).
    pub data: Vec<u8>,
}

impl IcmpEcho {
    /// The ICMP message with its checksum.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = vec![self.kind, 0, 0, 0];
        m.extend_from_slice(&self.id.to_be_bytes());
        m.extend_from_slice(&self.seq.to_be_bytes());
        m.extend_from_slice(&self.data);
        let sum = internet_checksum(&m, 0);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
        m
    }
}

/// Parses an ICMP echo request or reply whose checksum verifies.
pub fn parse_icmp_echo(message: &[u8]) -> Option<IcmpEcho> {
    let kind = *message.first()?;
    if (kind != ICMP_ECHO_REQUEST && kind != ICMP_ECHO_REPLY)
        || *message.get(1)? != 0
        || internet_checksum(message, 0) != 0
    {
        return None;
    }
    Some(IcmpEcho {
        kind,
        id: be16(message, 4)?,
        seq: be16(message, 6)?,
        data: message.get(8..)?.to_vec(),
    })
}

/// A UDP datagram seen by a parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// The data, cut to the header's length.
    pub payload: &'a [u8],
}

/// Builds a UDP datagram with its checksum over the IPv4 pseudo-header.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut d = Vec::with_capacity(len);
    d.extend_from_slice(&src_port.to_be_bytes());
    d.extend_from_slice(&dst_port.to_be_bytes());
    d.extend_from_slice(&(len as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    let sum = match internet_checksum(&d, pseudo_header_sum(src, dst, PROTO_UDP, len)) {
        // Zero means "no checksum" in UDP; a computed zero is sent as all ones.
        0 => 0xffff,
        s => s,
    };
    d[6..8].copy_from_slice(&sum.to_be_bytes());
    d
}

/// Parses the UDP datagram of `ip`, verifying its checksum when the sender set one.
pub fn parse_udp<'a>(ip: &Ipv4<'a>) -> Option<Udp<'a>> {
    if ip.protocol != PROTO_UDP {
        return None;
    }
    let d = ip.payload;
    let len = usize::from(be16(d, 4)?);
    if len < 8 || len > d.len() {
        return None;
    }
    if be16(d, 6)? != 0
        && internet_checksum(&d[..len], pseudo_header_sum(ip.src, ip.dst, PROTO_UDP, len)) != 0
    {
        return None;
    }
    Some(Udp {
        src_port: be16(d, 0)?,
        dst_port: be16(d, 2)?,
        payload: &d[8..len],
    })
}

/// A whole Ethernet + IPv4 + UDP frame.
pub fn udp_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let datagram = udp(src.0, dst.0, src.1, dst.1, payload);
    let packet = ipv4(src.0, dst.0, PROTO_UDP, id, &datagram);
    ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, &packet)
}

/// A whole Ethernet + IPv4 + ICMP echo frame.
pub fn icmp_echo_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    echo: &IcmpEcho,
) -> Vec<u8> {
    let packet = ipv4(src, dst, PROTO_ICMP, echo.seq, &echo.to_bytes());
    ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, &packet)
}

/// DHCP message types (option 53).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpType {
    /// 1.
    Discover,
    /// 2.
    Offer,
    /// 3.
    Request,
    /// 4.
    Decline,
    /// 5.
    Ack,
    /// 6.
    Nak,
    /// 7.
    Release,
    /// 8.
    Inform,
}

impl DhcpType {
    fn code(self) -> u8 {
        match self {
            DhcpType::Discover => 1,
            DhcpType::Offer => 2,
            DhcpType::Request => 3,
            DhcpType::Decline => 4,
            DhcpType::Ack => 5,
            DhcpType::Nak => 6,
            DhcpType::Release => 7,
            DhcpType::Inform => 8,
        }
    }

    fn from_code(code: u8) -> Option<DhcpType> {
        Some(match code {
            1 => DhcpType::Discover,
            2 => DhcpType::Offer,
            3 => DhcpType::Request,
            4 => DhcpType::Decline,
            5 => DhcpType::Ack,
            6 => DhcpType::Nak,
            7 => DhcpType::Release,
            8 => DhcpType::Inform,
            _ => return None,
        })
    }
}

const DHCP_MAGIC: [u8; 4] = [99, 130, 83, 99];

/// A DHCP message, with the options the tests use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dhcp {
    /// 1 for a client's request, 2 for a server's reply.
    pub op: u8,
    /// Transaction id.
    pub xid: u32,
    /// The broadcast flag: the client asks for broadcast replies.
    pub broadcast: bool,
    /// `ciaddr`: the client's current address.
    pub ciaddr: Ipv4Addr,
    /// `yiaddr`: the address offered or assigned.
    pub yiaddr: Ipv4Addr,
    /// `siaddr`: the next server (TFTP for network boot).
    pub siaddr: Ipv4Addr,
    /// The client's hardware address.
    pub chaddr: Mac,
    /// Option 53.
    pub message_type: Option<DhcpType>,
    /// Option 50.
    pub requested_ip: Option<Ipv4Addr>,
    /// Option 54.
    pub server_id: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3 (the first router).
    pub router: Option<Ipv4Addr>,
}

impl Dhcp {
    /// A client message of `kind` from `mac` (all addresses zero; set what the message needs).
    pub fn client(kind: DhcpType, mac: Mac, xid: u32) -> Dhcp {
        Dhcp {
            op: 1,
            xid,
            broadcast: false,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::UNSPECIFIED,
            siaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: mac,
            message_type: Some(kind),
            requested_ip: None,
            server_id: None,
            lease_time: None,
            subnet_mask: None,
            router: None,
        }
    }

    /// The BOOTP message with its options (UDP payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = self.op;
        m[1] = 1; // Ethernet
        m[2] = 6;
        m[4..8].copy_from_slice(&self.xid.to_be_bytes());
        if self.broadcast {
            m[10] = 0x80;
        }
        m[12..16].copy_from_slice(&self.ciaddr.octets());
        m[16..20].copy_from_slice(&self.yiaddr.octets());
        m[20..24].copy_from_slice(&self.siaddr.octets());
        m[28..34].copy_from_slice(&self.chaddr);
        m.extend_from_slice(&DHCP_MAGIC);
        let mut option = |code: u8, data: &[u8]| {
            m.push(code);
            m.push(data.len() as u8);
            m.extend_from_slice(data);
        };
        if let Some(t) = self.message_type {
            option(53, &[t.code()]);
        }
        if let Some(ip) = self.requested_ip {
            option(50, &ip.octets());
        }
        if let Some(ip) = self.server_id {
            option(54, &ip.octets());
        }
        if let Some(t) = self.lease_time {
            option(51, &t.to_be_bytes());
        }
        if let Some(ip) = self.subnet_mask {
            option(1, &ip.octets());
        }
        if let Some(ip) = self.router {
            option(3, &ip.octets());
        }
        if self.op == 1 {
            // Parameter request list: subnet mask, router, lease time, server id.
            option(55, &[1, 3, 51, 54]);
        }
        m.push(255);
        // BOOTP's minimum message (300 bytes), which some servers still insist on.
        if m.len() < 300 {
            m.resize(300, 0);
        }
        m
    }
}

/// Parses a BOOTP/DHCP message (UDP payload) and the options [`Dhcp`] holds; unknown options are skipped.
pub fn parse_dhcp(message: &[u8]) -> Option<Dhcp> {
    if message.len() < 240 || message[1] != 1 || message[2] != 6 || message[236..240] != DHCP_MAGIC
    {
        return None;
    }
    let mut d = Dhcp {
        op: message[0],
        xid: be32(message, 4)?,
        broadcast: message[10] & 0x80 != 0,
        ciaddr: ip_at(message, 12)?,
        yiaddr: ip_at(message, 16)?,
        siaddr: ip_at(message, 20)?,
        chaddr: mac_at(message, 28)?,
        message_type: None,
        requested_ip: None,
        server_id: None,
        lease_time: None,
        subnet_mask: None,
        router: None,
    };
    let mut at = 240;
    while let Some(&code) = message.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let len = usize::from(*message.get(at + 1)?);
        let data = message.get(at + 2..at + 2 + len)?;
        let ip = || data.get(..4).and_then(|_| ip_at(data, 0));
        match code {
            53 => d.message_type = data.first().copied().and_then(DhcpType::from_code),
            50 => d.requested_ip = ip(),
            54 => d.server_id = ip(),
            51 => d.lease_time = be32(data, 0),
            1 => d.subnet_mask = ip(),
            3 => d.router = ip(),
            _ => {}
        }
        at += 2 + len;
    }
    Some(d)
}

/// A whole DHCP client frame: broadcast from 0.0.0.0:68 to 255.255.255.255:67, as a client without an
/// address sends it.
pub fn dhcp_client_frame(message: &Dhcp) -> Vec<u8> {
    udp_frame(
        BROADCAST,
        message.chaddr,
        (Ipv4Addr::UNSPECIFIED, DHCP_CLIENT_PORT),
        (Ipv4Addr::BROADCAST, DHCP_SERVER_PORT),
        0,
        &message.to_bytes(),
    )
}

/// A DHCP DISCOVER frame from `mac`.
pub fn dhcp_discover(mac: Mac, xid: u32) -> Vec<u8> {
    dhcp_client_frame(&Dhcp::client(DhcpType::Discover, mac, xid))
}

/// A DHCP REQUEST frame from `mac` taking `offered` from `server` (the SELECTING state's request).
pub fn dhcp_request(mac: Mac, xid: u32, offered: Ipv4Addr, server: Ipv4Addr) -> Vec<u8> {
    let mut m = Dhcp::client(DhcpType::Request, mac, xid);
    m.requested_ip = Some(offered);
    m.server_id = Some(server);
    dhcp_client_frame(&m)
}

/// The DHCP reply in `frame` (a server's UDP 67 → 68 message), if it is one.
pub fn parse_dhcp_reply(frame: &[u8]) -> Option<(Ethernet<'_>, Dhcp)> {
    let eth = parse_ethernet(frame)?;
    if eth.ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = parse_ipv4(eth.payload)?;
    let udp = parse_udp(&ip)?;
    if udp.src_port != DHCP_SERVER_PORT || udp.dst_port != DHCP_CLIENT_PORT {
        return None;
    }
    let dhcp = parse_dhcp(udp.payload)?;
    (dhcp.op == 2).then_some((eth, dhcp))
}

/// The IEEE 802.3 frame check sequence (CRC-32), computed bit by bit: an oracle independent of the `crc32fast`
/// the NIC models use.
pub fn fcs(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum (with carries folded) to ddf2.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0),
            !0xddf2
        );
        // An odd length pads with a zero byte.
        assert_eq!(internet_checksum(&[0xff], 0), !0xff00);
    }

    #[test]
    fn ipv4_header_of_a_known_packet() {
        // The header of a classic example packet: 192.168.0.1 -> 192.168.0.199, UDP, id 0x1c46, total 0x73
        // has checksum 0xb861 (worked through by hand in many textbooks).
        let mut header = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&header, 0), 0xb861);
        header[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        header.resize(0x73, 0);
        let p = parse_ipv4(&header).unwrap();
        assert_eq!(p.dst, Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!((p.protocol, p.payload.len()), (PROTO_UDP, 0x73 - 20));
        header[8] = 0x3f; // corrupt the TTL: the checksum no longer verifies
        assert!(parse_ipv4(&header).is_none());
    }

    #[test]
    fn dhcp_round_trip_and_frame_layout() {
        let mac = [0x00, 0x16, 0x3e, 0x01, 0x02, 0x03];
        let frame = dhcp_request(
            mac,
            0xdead_beef,
            Ipv4Addr::new(10, 0, 2, 150),
            Ipv4Addr::new(10, 0, 2, 1),
        );
        assert_eq!(&frame[..6], &BROADCAST);
        assert_eq!(&frame[6..12], &mac);
        let eth = parse_ethernet(&frame).unwrap();
        let ip = parse_ipv4(eth.payload).unwrap();
        assert_eq!(
            (ip.src, ip.dst),
            (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST)
        );
        let udp = parse_udp(&ip).unwrap();
        assert_eq!(
            (udp.src_port, udp.dst_port, udp.payload.len()),
            (68, 67, 300)
        );
        let d = parse_dhcp(udp.payload).unwrap();
        assert_eq!(d.message_type, Some(DhcpType::Request));
        assert_eq!(d.requested_ip, Some(Ipv4Addr::new(10, 0, 2, 150)));
        assert_eq!(d.server_id, Some(Ipv4Addr::new(10, 0, 2, 1)));
        assert_eq!((d.xid, d.chaddr, d.op), (0xdead_beef, mac, 1));
        // A client frame is not a server reply.
        assert!(parse_dhcp_reply(&frame).is_none());
    }

    #[test]
    fn arp_and_icmp_round_trip() {
        let a = [2, 0, 0, 0, 0, 1];
        let req = arp_request(a, Ipv4Addr::new(10, 0, 2, 100), Ipv4Addr::new(10, 0, 2, 1));
        assert_eq!(req.len(), 42);
        let eth = parse_ethernet(&req).unwrap();
        let arp = parse_arp(eth.payload).unwrap();
        assert_eq!(
            (arp.op, arp.target_ip),
            (ARP_REQUEST, Ipv4Addr::new(10, 0, 2, 1))
        );
        let b = [2, 0, 0, 0, 0, 2];
        let rep = arp_reply(b, &arp);
        let r = parse_arp(parse_ethernet(&rep).unwrap().payload).unwrap();
        assert_eq!(
            (r.op, r.sender_mac, r.sender_ip, r.target_mac),
            (ARP_REPLY, b, Ipv4Addr::new(10, 0, 2, 1), a)
        );

        let echo = IcmpEcho {
            kind: ICMP_ECHO_REQUEST,
            id: 7,
            seq: 3,
            data: b"abcdefg".to_vec(),
        };
        let bytes = echo.to_bytes();
        assert_eq!(internet_checksum(&bytes, 0), 0);
        assert_eq!(parse_icmp_echo(&bytes).unwrap(), echo);
    }

    #[test]
    fn parsers_refuse_truncated_input() {
        let frame = dhcp_discover([0, 0x16, 0x3e, 0, 0, 1], 1);
        for len in 0..frame.len() {
            let cut = &frame[..len];
            if let Some(eth) = parse_ethernet(cut) {
                if let Some(ip) = parse_ipv4(eth.payload) {
                    assert!(parse_udp(&ip).is_none(), "{len}");
                }
            }
            let _ = parse_dhcp(cut);
            let _ = parse_arp(cut);
            let _ = parse_icmp_echo(cut);
        }
    }
}
