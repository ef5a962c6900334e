//! The NICs on the machine without vCPUs: the production wiring, driven as firmware and the guests' drivers
//! drive it (see `nic_drivers`). With recording back-ends first; then, inside a private network namespace
//! with a bridge and a real `dnsmasq`, on real taps opened as the runner opens them: a DHCP lease, ARP and
//! ICMP with the namespace's kernel through each NIC model, and two machines talking through their NICs.
//!
//! The namespace tests need root, `/dev/net/tun`, `ip` and `dnsmasq`; without them they fail unless
//! `DEVMODEL_SKIP_NETNS=1`.

#![allow(clippy::unwrap_used)]

mod nic_drivers;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use devices::net::testing::client::{NicDriver, TestHost};
use devices::net::testing::netns::{self, NetLab, LAB_ADDRESS};
use devices::net::NetBackend;
use devmodel::config::MacAddr;
use devmodel::harness::TestMachine;
use devmodel::machine::MachineOptions;
use devmodel::net_host::open_nic_backend;
use event_manager::{EventManager, MutEventSubscriber, SubscriberOps};

use nic_drivers::ne2k::Ne2kDriver;
use nic_drivers::rtl8139::Rtl8139Driver;
use nic_drivers::{enable_pci, route_inta};

const TIMEOUT: Duration = Duration::from_secs(20);
const RTL_IO: u16 = 0xc000;
const NE2K_PCI_IO: u16 = 0xc100;
const MACS: [[u8; 6]; 3] = [
    [0x00, 0x16, 0x3e, 0x00, 0x00, 0x21],
    [0x00, 0x16, 0x3e, 0x00, 0x00, 0x22],
    [0x00, 0x16, 0x3e, 0x00, 0x00, 0x23],
];

fn config(vifs: &str) -> String {
    format!(
        "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='net'\nmemory=64\nnographic=1\n\
         serial='pty'\nvif = [ {vifs} ]\n"
    )
}

fn three_nics(bridge: &str) -> String {
    config(&format!(
        "'mac=00:16:3e:00:00:21, model=rtl8139, bridge={bridge}', \
         'mac=00:16:3e:00:00:22, model=ne2k_pci, bridge={bridge}', \
         'mac=00:16:3e:00:00:23, model=ne2k_isa, bridge={bridge}'"
    ))
}

/// A frame from `src` to everyone, tagged so it can be recognised.
fn broadcast(src: [u8; 6], tag: u8, len: usize) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental ethertype
    f.extend((0..len - 14).map(|i| tag.wrapping_add(i as u8)));
    f
}

#[test]
fn each_nic_enumerates_sends_receives_and_interrupts_as_its_driver_expects() {
    let m = TestMachine::from_config(&three_nics("xenbr0"), &MachineOptions::default()).unwrap();
    // PCI identity as lspci and SeaBIOS read it.
    for (slot, id) in [(4u8, 0x8139_10ec_u32), (5, 0x8029_10ec)] {
        assert_eq!(m.pci_read32(slot, 0, 0x00), id, "slot {slot}");
        assert_eq!(
            m.pci_read32(slot, 0, 0x08) >> 8,
            0x02_0000,
            "Ethernet class"
        );
        assert_eq!((m.pci_read32(slot, 0, 0x3c) >> 8) & 0xff, 1, "INTA#");
        // The ROM BAR holds the iPXE ROM with this NIC's IDs in its PCI data structure.
        m.pci_write32(slot, 0, 0x30, 0xfffff800);
        let size = !(m.pci_read32(slot, 0, 0x30) & 0xffff_f800) + 1;
        assert!(size >= 64 * 1024, "ROM BAR of {size} bytes");
        let base = 0xe000_0000u32 + u32::from(slot) * 0x0010_0000;
        m.pci_write32(slot, 0, 0x30, base | 1);
        m.pci_write32(slot, 0, 0x04, 0x0002);
        let rom = |off: u64| m.mmio_read(u64::from(base) + off, 4) as u32;
        assert_eq!(rom(0) & 0xffff, 0xaa55);
        let pcir = u64::from(rom(0x18) & 0xffff);
        assert_eq!(rom(pcir), u32::from_le_bytes(*b"PCIR"));
        assert_eq!(rom(pcir + 4), id, "the ROM names the NIC");
        m.pci_write32(slot, 0, 0x30, 0);
    }
    enable_pci(&m, 4, RTL_IO, Some(0xfebf_0000));
    enable_pci(&m, 5, NE2K_PCI_IO, None);
    let rtl_irq = route_inta(&m, 4);
    let ne2k_irq = route_inta(&m, 5);
    assert_eq!((rtl_irq, ne2k_irq), (11, 10));

    let mut rtl = Rtl8139Driver::open(&m, RTL_IO);
    let mut ne2k_pci = Ne2kDriver::open(&m, NE2K_PCI_IO, true);
    let mut ne2k_isa = Ne2kDriver::open(&m, 0x300, false);
    assert_eq!([rtl.mac, ne2k_pci.mac, ne2k_isa.mac], MACS);

    let drivers: [(&mut dyn NicDriver, u32); 3] = [
        (&mut rtl, rtl_irq),
        (&mut ne2k_pci, ne2k_irq),
        (&mut ne2k_isa, 9),
    ];
    for (index, (driver, irq)) in drivers.into_iter().enumerate() {
        let net = &m.nets[index];
        // Transmit: short frames are padded to 60 bytes on the wire; a full one goes whole.
        for len in [42usize, 1514] {
            let frame = broadcast(MACS[index], index as u8, len);
            driver.send(&frame);
            let sent = net.take_sent();
            assert_eq!(sent.len(), 1, "NIC {index}: one frame out");
            assert_eq!(&sent[0][..len], &frame[..], "NIC {index}");
            assert_eq!(sent[0].len(), len.max(60), "NIC {index}");
        }
        // Receive: a frame to the NIC's MAC and a broadcast, in order, with the interrupt line raised.
        assert!(!m.irq(irq), "NIC {index}: IRQ {irq} idle");
        let mut to_me = broadcast([0x02, 0, 0, 0, 0, 1], 0x40, 100);
        to_me[..6].copy_from_slice(&MACS[index]);
        let everyone = broadcast([0x02, 0, 0, 0, 0, 1], 0x80, 1514);
        assert!(net.deliver(&to_me), "NIC {index} takes a frame to its MAC");
        assert!(net.deliver(&everyone), "NIC {index} takes a broadcast");
        assert!(m.irq(irq), "NIC {index}: IRQ {irq} raised on receive");
        assert_eq!(
            driver.poll_receive().as_deref(),
            Some(&to_me[..]),
            "NIC {index}"
        );
        assert_eq!(
            driver.poll_receive().as_deref(),
            Some(&everyone[..]),
            "NIC {index}"
        );
        assert_eq!(driver.poll_receive(), None, "NIC {index}: ring empty");
        assert!(!m.irq(irq), "NIC {index}: IRQ {irq} low once acknowledged");
        // A frame to another station is filtered out.
        let mut other = to_me.clone();
        other[5] ^= 0x55;
        assert!(!net.deliver(&other), "NIC {index} ignores other stations");
    }
}

/// The taps' event loop on its own thread, stopped and joined on drop.
struct TapLoop {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TapLoop {
    fn start(subscribers: Vec<devices::net::tap::TapSubscriber>) -> TapLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut manager: EventManager<Box<dyn MutEventSubscriber + Send>> =
                EventManager::new().unwrap();
            for s in subscribers {
                manager.add_subscriber(Box::new(s));
            }
            while !flag.load(Ordering::SeqCst) {
                manager.run_with_timeout(20).unwrap();
            }
        });
        TapLoop {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for TapLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A machine whose NICs (from `vifs`) are on taps joined to the lab's bridge, as the runner sets them up for
/// domain `domid`.
fn machine_on_lab(lab: &NetLab, domid: u32, vifs: &str) -> (TestMachine, TapLoop) {
    let text = config(vifs).replace("BRIDGE", lab.bridge());
    let parsed = devmodel::config::load_source(
        std::path::Path::new("net.hvm"),
        &text,
        &[],
        &devmodel::config::HostFacts {
            memory_mib: 1 << 20,
            max_vcpus: 8,
            files: Box::new(devmodel::config::HostFiles),
        },
    )
    .unwrap();
    let mut backends: Vec<Arc<dyn NetBackend>> = Vec::new();
    let mut subscribers = Vec::new();
    for (index, nic) in devmodel::machine::machine_nics(&parsed) {
        let host = open_nic_backend(nic, domid, index).unwrap();
        backends.push(host.backend);
        subscribers.push(host.subscriber);
    }
    let m = TestMachine::with_nic_backends(&text, &MachineOptions::default(), backends).unwrap();
    (m, TapLoop::start(subscribers))
}

fn lease_arp_ping(lab: &NetLab, driver: &mut dyn NicDriver, mac: [u8; 6], what: &str) {
    let mut host = TestHost::new(mac);
    let lease = host
        .dhcp(driver, TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: {e}; dnsmasq says:\n{}", lab.log()));
    assert_eq!(lease.server, LAB_ADDRESS, "{what}");
    let mac_text = MacAddr(mac).to_string();
    assert!(
        lab.leases().contains(&format!("{mac_text} {}", lease.ip)),
        "{what}: {}",
        lab.leases()
    );
    host.arp(driver, LAB_ADDRESS, TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: ARP: {e}"));
    host.ping(driver, LAB_ADDRESS, b"through the NIC model", TIMEOUT)
        .unwrap_or_else(|e| panic!("{what}: ping: {e}"));
    // The kernel pinging us: our host answers its ARP request and the echo request.
    let ip = lease.ip.to_string();
    let pinger = std::thread::spawn(move || netns::run("ping", &["-c", "2", "-W", "5", &ip]));
    host.serve(driver, Duration::from_secs(2));
    let answered = pinger.join().unwrap();
    assert!(answered.is_ok(), "{what}: the kernel's ping: {answered:?}");
    assert!(host.stats.echo_answered >= 1, "{what}: {:?}", host.stats);
}

#[test]
fn a_dhcp_lease_arp_and_ping_through_each_nic_model_on_real_taps() {
    netns::with_lab(|lab| {
        let vifs = "'mac=00:16:3e:00:00:21, model=rtl8139, bridge=BRIDGE', \
                    'mac=00:16:3e:00:00:22, model=ne2k_pci, bridge=BRIDGE', \
                    'mac=00:16:3e:00:00:23, model=ne2k_isa, bridge=BRIDGE'";
        let (m, _loop) = machine_on_lab(lab, 5, vifs);
        let members = netns::ip(&["-o", "link", "show", "master", lab.bridge()]);
        for tap in ["tap5.0", "tap5.1", "tap5.2"] {
            assert!(members.contains(&format!(" {tap}:")), "{tap}: {members}");
        }
        enable_pci(&m, 4, RTL_IO, Some(0xfebf_0000));
        enable_pci(&m, 5, NE2K_PCI_IO, None);
        let mut rtl = Rtl8139Driver::open(&m, RTL_IO);
        lease_arp_ping(lab, &mut rtl, MACS[0], "rtl8139");
        let mut ne2k_pci = Ne2kDriver::open(&m, NE2K_PCI_IO, true);
        lease_arp_ping(lab, &mut ne2k_pci, MACS[1], "ne2k_pci");
        let mut ne2k_isa = Ne2kDriver::open(&m, 0x300, false);
        lease_arp_ping(lab, &mut ne2k_isa, MACS[2], "ne2k_isa");
    });
}

#[test]
fn two_machines_on_one_bridge_talk_through_their_nics() {
    netns::with_lab(|lab| {
        let a_mac = [0x00, 0x16, 0x3e, 0x00, 0x0a, 0x01];
        let b_mac = [0x00, 0x16, 0x3e, 0x00, 0x0b, 0x01];
        let a_ip = Ipv4Addr::new(10, 0, 2, 201);
        let b_ip = Ipv4Addr::new(10, 0, 2, 202);
        std::thread::scope(|s| {
            // Machine B (NE2000 PCI) waits for a datagram and answers it.
            let b = s.spawn(|| {
                let (m, _loop) = machine_on_lab(
                    lab,
                    11,
                    "'mac=00:16:3e:00:0b:01, model=ne2k_pci, bridge=BRIDGE'",
                );
                enable_pci(&m, 4, NE2K_PCI_IO, None);
                let mut driver = Ne2kDriver::open(&m, NE2K_PCI_IO, true);
                let mut host = TestHost::new(b_mac);
                host.ip = Some(b_ip);
                let ((from, port), payload) = host.receive_udp(&mut driver, 7000, TIMEOUT).unwrap();
                assert_eq!((from, port), (a_ip, 6000));
                let mut answer = b"pong: ".to_vec();
                answer.extend_from_slice(&payload);
                host.send_udp(&mut driver, 7000, (a_ip, 6000), &answer, TIMEOUT)
                    .unwrap();
                host.serve(&mut driver, Duration::from_millis(500));
            });
            // Machine A (RTL8139) sends it and waits for the answer.
            let (m, _loop) = machine_on_lab(
                lab,
                10,
                "'mac=00:16:3e:00:0a:01, model=rtl8139, bridge=BRIDGE'",
            );
            enable_pci(&m, 4, RTL_IO, Some(0xfebf_0000));
            let mut driver = Rtl8139Driver::open(&m, RTL_IO);
            let mut host = TestHost::new(a_mac);
            host.ip = Some(a_ip);
            // B may still be starting: ARP until it answers, then the datagram.
            let mut resolved = None;
            for _ in 0..10 {
                if let Ok(mac) = host.arp(&mut driver, b_ip, Duration::from_secs(2)) {
                    resolved = Some(mac);
                    break;
                }
            }
            assert_eq!(resolved, Some(b_mac), "B answers ARP through its NE2000");
            host.send_udp(&mut driver, 6000, (b_ip, 7000), b"ping from A", TIMEOUT)
                .unwrap();
            let ((from, _), payload) = host.receive_udp(&mut driver, 6000, TIMEOUT).unwrap();
            assert_eq!(from, b_ip);
            assert_eq!(payload, b"pong: ping from A");
            b.join().unwrap();
        });
    });
}
