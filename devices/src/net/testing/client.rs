//! A test-side IPv4 host that talks through any NIC: it gets a DHCP lease, resolves and answers ARP, pings
//! and answers pings, and sends and receives UDP.
//!
//! The NIC is reached through [`NicDriver`]: a NIC test implements it by driving the model's registers and
//! rings exactly as a guest driver does (and a back-end test by calling the back-end directly, see
//! [`BackendDriver`]), so the same exchange with a real `dnsmasq` and a real kernel checks every NIC model.
//! Every wait has a deadline; while waiting, the host answers ARP requests for its address and ICMP echo
//! requests to it, as a real one does, so that the peer kernel can reach it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::packets::{self, DhcpType, IcmpEcho, Mac};
use super::FrameQueue;
use crate::net::NetBackend;

/// The two things a test needs from a NIC: put a frame on the wire, take one off it.
pub trait NicDriver {
    /// Transmits one Ethernet frame (no FCS) as the guest's driver would.
    fn send(&mut self, frame: &[u8]);
    /// The next received frame, if the NIC has one now (never waits long).
    fn poll_receive(&mut self) -> Option<Vec<u8>>;
    /// Called between polls that found nothing; the default sleeps a millisecond so that waiting is not a
    /// busy loop. A harness driver may step its clock or run its event loop here instead.
    fn idle(&mut self) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A [`NicDriver`] straight over a back-end, for testing back-ends without a NIC model: frames go to
/// [`NetBackend::send`] and come from a [`FrameQueue`] attached as the receiver.
pub struct BackendDriver {
    /// The back-end under test.
    pub backend: Arc<dyn NetBackend>,
    /// What it delivered.
    pub queue: Arc<FrameQueue>,
}

impl BackendDriver {
    /// Attaches a fresh [`FrameQueue`] to `backend`.
    pub fn new(backend: Arc<dyn NetBackend>) -> BackendDriver {
        let queue = FrameQueue::new();
        let weak: std::sync::Weak<FrameQueue> = Arc::downgrade(&queue);
        backend.attach(weak);
        BackendDriver { backend, queue }
    }
}

impl NicDriver for BackendDriver {
    fn send(&mut self, frame: &[u8]) {
        if let Err(e) = self.backend.send(frame) {
            // As a NIC would: the frame is lost and the caller's retries take care of it.
            log::debug!("test driver: send failed: {e}");
        }
    }

    fn poll_receive(&mut self) -> Option<Vec<u8>> {
        self.queue.pop()
    }

    fn idle(&mut self) {
        self.queue.wait(Duration::from_millis(2));
    }
}

/// What a DHCP server granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Our address (`yiaddr` of the ACK).
    pub ip: Ipv4Addr,
    /// The server (option 54).
    pub server: Ipv4Addr,
    /// The MAC the ACK came from.
    pub server_mac: Mac,
    /// Option 1.
    pub subnet_mask: Option<Ipv4Addr>,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 51, seconds.
    pub lease_time: Option<u32>,
}

/// Why an exchange did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing suitable arrived before the deadline.
    #[error("timed out waiting for {what} ({frames} frames received meanwhile)")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How many frames arrived in the meantime.
        frames: u64,
    },
    /// The DHCP server refused the request.
    #[error("the DHCP server answered NAK")]
    Nak,
    /// The host has no address yet.
    #[error("no IP address: get a lease first")]
    NoAddress,
}

/// Counts of what the host saw and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Frames received.
    pub frames_received: u64,
    /// ARP requests for our address that we answered.
    pub arp_answered: u64,
    /// ICMP echo requests to us that we answered.
    pub echo_answered: u64,
}

/// A minimal IPv4 host on one NIC.
pub struct TestHost {
    /// Our MAC (the NIC's).
    pub mac: Mac,
    /// Our address, once leased or set.
    pub ip: Option<Ipv4Addr>,
    /// What we learned from ARP.
    neighbours: Vec<(Ipv4Addr, Mac)>,
    /// Frames received that nobody has asked for yet (UDP and such), oldest first, at most [`KEEP`].
    unclaimed: std::collections::VecDeque<Vec<u8>>,
    /// Counters.
    pub stats: ClientStats,
    next_id: u16,
}

/// Sends a request again while waiting for its answer.
type Resend<'a> = &'a mut dyn FnMut(&mut dyn NicDriver);

/// Unclaimed frames kept at most.
const KEEP: usize = 256;
/// DHCP retransmits after this long without an answer.
const DHCP_RETRY: Duration = Duration::from_millis(1000);

impl TestHost {
    /// A host with `mac` and no address.
    pub fn new(mac: Mac) -> TestHost {
        TestHost {
            mac,
            ip: None,
            neighbours: Vec::new(),
            unclaimed: std::collections::VecDeque::new(),
            stats: ClientStats::default(),
            next_id: 1,
        }
    }

    /// The MAC learned for `ip`, if any.
    pub fn neighbour(&self, ip: Ipv4Addr) -> Option<Mac> {
        self.neighbours
            .iter()
            .find(|(i, _)| *i == ip)
            .map(|(_, m)| *m)
    }

    fn learn(&mut self, ip: Ipv4Addr, mac: Mac) {
        if let Some(entry) = self.neighbours.iter_mut().find(|(i, _)| *i == ip) {
            entry.1 = mac;
        } else {
            self.neighbours.push((ip, mac));
        }
    }

    /// Handles what a host answers by itself (ARP for us, echo requests to us); returns the frame when it
    /// is something else.
    fn background(&mut self, driver: &mut dyn NicDriver, frame: Vec<u8>) -> Option<Vec<u8>> {
        self.stats.frames_received += 1;
        let Some(eth) = packets::parse_ethernet(&frame) else {
            return Some(frame);
        };
        if eth.dst != self.mac && eth.dst != packets::BROADCAST {
            // Not for us: a NIC in promiscuous mode, or a flooded unicast frame.
            return None;
        }
        if eth.ethertype == packets::ETHERTYPE_ARP {
            if let Some(arp) = packets::parse_arp(eth.payload) {
                if arp.sender_ip != Ipv4Addr::UNSPECIFIED {
                    self.learn(arp.sender_ip, arp.sender_mac);
                }
                if arp.op == packets::ARP_REQUEST && Some(arp.target_ip) == self.ip {
                    driver.send(&packets::arp_reply(self.mac, &arp));
                    self.stats.arp_answered += 1;
                    return None;
                }
            }
            return Some(frame);
        }
        if eth.ethertype == packets::ETHERTYPE_IPV4 {
            if let Some(ip) = packets::parse_ipv4(eth.payload) {
                if ip.protocol == packets::PROTO_ICMP && Some(ip.dst) == self.ip {
                    if let Some(echo) = packets::parse_icmp_echo(ip.payload) {
                        if echo.kind == packets::ICMP_ECHO_REQUEST {
                            let reply = IcmpEcho {
                                kind: packets::ICMP_ECHO_REPLY,
                                ..echo
                            };
                            let frame =
                                packets::icmp_echo_frame(eth.src, self.mac, ip.dst, ip.src, &reply);
                            driver.send(&frame);
                            self.stats.echo_answered += 1;
                            return None;
                        }
                    }
                }
            }
        }
        Some(frame)
    }

    /// Receives until `want` picks something out of a frame or `deadline` passes; other frames are handled
    /// in the background or kept as unclaimed.
    fn wait_for<T>(
        &mut self,
        driver: &mut dyn NicDriver,
        deadline: Instant,
        what: &str,
        mut want: impl FnMut(&mut Self, &[u8]) -> Option<T>,
        mut retry: Option<(Resend<'_>, Duration)>,
    ) -> Result<T, ClientError> {
        let mut last_send = Instant::now();
        loop {
            while let Some(frame) = driver.poll_receive() {
                let Some(frame) = self.background(driver, frame) else {
                    continue;
                };
                if let Some(found) = want(self, &frame) {
                    return Ok(found);
                }
                if self.unclaimed.len() >= KEEP {
                    self.unclaimed.pop_front();
                }
                self.unclaimed.push_back(frame);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    what: what.to_string(),
                    frames: self.stats.frames_received,
                });
            }
            if let Some((send, every)) = retry.as_mut() {
                if now.duration_since(last_send) >= *every {
                    send(driver);
                    last_send = now;
                }
            }
            driver.idle();
        }
    }

    /// Gets a lease by DISCOVER, OFFER, REQUEST, ACK, retransmitting every second, within `timeout`. The
    /// host then has the leased address.
    pub fn dhcp(
        &mut self,
        driver: &mut dyn NicDriver,
        timeout: Duration,
    ) -> Result<Lease, ClientError> {
        let deadline = Instant::now() + timeout;
        let mac = self.mac;
        let xid = u32::from_be_bytes([mac[2] ^ 0x5a, mac[3], mac[4], mac[5]]);
        'restart: loop {
            let discover = packets::dhcp_discover(mac, xid);
            driver.send(&discover);
            let offer = self.wait_for(
                driver,
                deadline,
                "a DHCP OFFER",
                |_, f| {
                    let (_, d) = packets::parse_dhcp_reply(f)?;
                    (d.xid == xid && d.chaddr == mac && d.message_type == Some(DhcpType::Offer))
                        .then_some(d)
                },
                Some((&mut |d: &mut dyn NicDriver| d.send(&discover), DHCP_RETRY)),
            )?;
            let server = offer.server_id.unwrap_or(offer.siaddr);
            let request = packets::dhcp_request(mac, xid, offer.yiaddr, server);
            driver.send(&request);
            let (server_mac, ack) = self.wait_for(
                driver,
                deadline,
                "a DHCP ACK",
                |_, f| {
                    let (eth, d) = packets::parse_dhcp_reply(f)?;
                    (d.xid == xid
                        && d.chaddr == mac
                        && matches!(d.message_type, Some(DhcpType::Ack | DhcpType::Nak)))
                    .then_some((eth.src, d))
                },
                Some((&mut |d: &mut dyn NicDriver| d.send(&request), DHCP_RETRY)),
            )?;
            if ack.message_type == Some(DhcpType::Nak) {
                if Instant::now() >= deadline {
                    return Err(ClientError::Nak);
                }
                continue 'restart;
            }
            self.ip = Some(ack.yiaddr);
            let server = ack.server_id.unwrap_or(server);
            self.learn(server, server_mac);
            return Ok(Lease {
                ip: ack.yiaddr,
                server,
                server_mac,
                subnet_mask: ack.subnet_mask,
                router: ack.router,
                lease_time: ack.lease_time,
            });
        }
    }

    /// Resolves `ip` with ARP requests (one a second) unless it is known already.
    pub fn resolve(
        &mut self,
        driver: &mut dyn NicDriver,
        ip: Ipv4Addr,
        timeout: Duration,
    ) -> Result<Mac, ClientError> {
        if let Some(mac) = self.neighbour(ip) {
            return Ok(mac);
        }
        self.arp(driver, ip, timeout)
    }

    /// Asks for `ip` with ARP requests (one a second) even if it is known, and returns the answer.
    pub fn arp(
        &mut self,
        driver: &mut dyn NicDriver,
        ip: Ipv4Addr,
        timeout: Duration,
    ) -> Result<Mac, ClientError> {
        let me = self.ip.ok_or(ClientError::NoAddress)?;
        let request = packets::arp_request(self.mac, me, ip);
        driver.send(&request);
        self.wait_for(
            driver,
            Instant::now() + timeout,
            &format!("an ARP reply from {ip}"),
            |host, f| {
                let eth = packets::parse_ethernet(f)?;
                let arp = packets::parse_arp(eth.payload)?;
                (arp.op == packets::ARP_REPLY && arp.sender_ip == ip && arp.target_mac == host.mac)
                    .then_some(arp.sender_mac)
            },
            Some((&mut |d: &mut dyn NicDriver| d.send(&request), DHCP_RETRY)),
        )
    }

    /// Sends one ICMP echo request to `ip` carrying `data` and waits for the matching reply; returns the
    /// round-trip time.
    pub fn ping(
        &mut self,
        driver: &mut dyn NicDriver,
        ip: Ipv4Addr,
        data: &[u8],
        timeout: Duration,
    ) -> Result<Duration, ClientError> {
        let deadline = Instant::now() + timeout;
        let me = self.ip.ok_or(ClientError::NoAddress)?;
        let dst_mac = self.resolve(driver, ip, timeout)?;
        let seq = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let id = u16::from_be_bytes([self.mac[4], self.mac[5]]);
        let echo = IcmpEcho {
            kind: packets::ICMP_ECHO_REQUEST,
            id,
            seq,
            data: data.to_vec(),
        };
        let start = Instant::now();
        driver.send(&packets::icmp_echo_frame(dst_mac, self.mac, me, ip, &echo));
        self.wait_for(
            driver,
            deadline,
            &format!("an ICMP echo reply from {ip}"),
            |_, f| {
                let eth = packets::parse_ethernet(f)?;
                let p = packets::parse_ipv4(eth.payload)?;
                let e = packets::parse_icmp_echo(p.payload)?;
                (p.src == ip
                    && e.kind == packets::ICMP_ECHO_REPLY
                    && e.id == id
                    && e.seq == seq
                    && e.data == data)
                    .then(|| start.elapsed())
            },
            None,
        )
    }

    /// Sends a UDP datagram to `dst` (resolving its MAC first).
    pub fn send_udp(
        &mut self,
        driver: &mut dyn NicDriver,
        src_port: u16,
        dst: (Ipv4Addr, u16),
        payload: &[u8],
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let me = self.ip.ok_or(ClientError::NoAddress)?;
        let dst_mac = self.resolve(driver, dst.0, timeout)?;
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        driver.send(&packets::udp_frame(
            dst_mac,
            self.mac,
            (me, src_port),
            dst,
            id,
            payload,
        ));
        Ok(())
    }

    /// Waits for a UDP datagram to our address and `port`; returns its source and payload.
    pub fn receive_udp(
        &mut self,
        driver: &mut dyn NicDriver,
        port: u16,
        timeout: Duration,
    ) -> Result<((Ipv4Addr, u16), Vec<u8>), ClientError> {
        let me = self.ip.ok_or(ClientError::NoAddress)?;
        let pick = |f: &[u8]| {
            let eth = packets::parse_ethernet(f)?;
            let p = packets::parse_ipv4(eth.payload)?;
            let u = packets::parse_udp(&p)?;
            (p.dst == me && u.dst_port == port).then(|| ((p.src, u.src_port), u.payload.to_vec()))
        };
        if let Some(at) = self.unclaimed.iter().position(|f| pick(f).is_some()) {
            if let Some(found) = self.unclaimed.remove(at).and_then(|f| pick(&f)) {
                return Ok(found);
            }
        }
        self.wait_for(
            driver,
            Instant::now() + timeout,
            &format!("a UDP datagram to port {port}"),
            |_, f| pick(f),
            None,
        )
    }

    /// Keeps receiving for `duration`, answering ARP and pings (for a peer that talks to us meanwhile).
    pub fn serve(&mut self, driver: &mut dyn NicDriver, duration: Duration) {
        let _ = self.wait_for::<()>(
            driver,
            Instant::now() + duration,
            "nothing",
            |_, _| None,
            None,
        );
    }
}

/// Gets a DHCP lease for `mac` through `driver`; see [`TestHost::dhcp`].
pub fn dhcp_lease(
    driver: &mut dyn NicDriver,
    mac: Mac,
    timeout: Duration,
) -> Result<Lease, ClientError> {
    TestHost::new(mac).dhcp(driver, timeout)
}

/// Gets a lease for `mac`, then pings `target`; returns the lease and the round-trip time.
pub fn lease_and_ping(
    driver: &mut dyn NicDriver,
    mac: Mac,
    target: Ipv4Addr,
    timeout: Duration,
) -> Result<(Lease, Duration), ClientError> {
    let mut host = TestHost::new(mac);
    let lease = host.dhcp(driver, timeout)?;
    let rtt = host.ping(driver, target, b"devmodel ping", timeout)?;
    Ok((lease, rtt))
}

/// Pings `target` from `my_ip` (already configured, e.g. from an earlier lease) through `driver`.
pub fn ping(
    driver: &mut dyn NicDriver,
    mac: Mac,
    my_ip: Ipv4Addr,
    target: Ipv4Addr,
    timeout: Duration,
) -> Result<Duration, ClientError> {
    let mut host = TestHost::new(mac);
    host.ip = Some(my_ip);
    host.ping(driver, target, b"devmodel ping", timeout)
}
