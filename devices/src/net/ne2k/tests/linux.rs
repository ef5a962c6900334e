//! Linux's ne2k-pci and ne.c drivers against both boards.

use super::linux_driver::{Glue, Linux, EN0_COUNTER2, EN0_ISR, ENISR_OVER, ENISR_RX};
use super::{frame, isa_card, padded, pci_card, MAC};
use crate::net::NetReceiver;

const BROADCAST: [u8; 6] = [0xff; 6];
const OTHER: [u8; 6] = [0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc];

#[test]
fn ne2k_pci_probe_reads_the_mac_with_byte_reads_in_word_mode() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    let prom = drv.probe_pci().unwrap();
    assert_eq!(drv.dev_addr, MAC);
    // Word transfers of the doubled PROM: each logical byte once, the 'W' 'W' signature at 14/15, and
    // nothing once the 32-byte count (16 words) is used up.
    assert_eq!(&prom[..6], &MAC);
    assert_eq!(&prom[6..14], &[0; 8]);
    assert_eq!(&prom[14..16], b"WW");
    assert_eq!(&prom[16..], &[0xff; 16]);
    // The RTL8029 identifies itself on page 0.
    assert_eq!(c.io.inb(0x0a), b'P');
    assert_eq!(c.io.inb(0x0b), b'C');
}

#[test]
fn ne2k_pci_transmits_frames_with_a_ptx_interrupt_on_its_pirq() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    assert!(!c.tb.gsi.level(c.gsi));

    let f = frame(BROADCAST, 100, 1);
    drv.start_xmit(&f).unwrap();
    assert_eq!(c.net.take_sent(), vec![f]);
    assert!(c.tb.gsi.level(c.gsi), "PTX is unmasked");
    assert_eq!(c.tb.cfg_read(super::PCI_SLOT, 0, 0x06, 2) & 0x08, 0x08);
    drv.interrupt();
    assert!(!c.tb.gsi.level(c.gsi));
    assert_eq!(c.tb.cfg_read(super::PCI_SLOT, 0, 0x06, 2) & 0x08, 0);
    assert_eq!(drv.stats.tx_packets, 1);

    // Linux pads a 42-byte ARP to 60; an odd length goes out as it is (the driver rounds only the copy).
    let arp = frame(BROADCAST, 42, 7);
    drv.start_xmit(&arp).unwrap();
    drv.interrupt();
    let odd = frame(OTHER, 61, 9);
    drv.start_xmit(&odd).unwrap();
    drv.interrupt();
    assert_eq!(c.net.take_sent(), vec![padded(&arp), odd]);
    assert_eq!(drv.stats.tx_packets, 3);
    assert_eq!(c.card.nic().counters().tx_frames, 3);
    assert_eq!(c.tb.gsi.rising_edges(c.gsi), 3);
}

#[test]
fn ne2k_pci_receives_frames_through_the_ring_with_headers_and_fcs() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);

    let short = frame(MAC, 42, 3);
    let long = frame(BROADCAST, 1514, 4);
    let odd = frame(MAC, 333, 5);
    for f in [&short, &long, &odd] {
        assert!(c.net.deliver(f));
    }
    assert!(c.tb.gsi.level(c.gsi));

    // The ring as the chip wrote it: header at PSTART (status PRX, next page, count = frame + FCS), the
    // padded frame, then its FCS.
    let hdr = drv.get_hdr(drv.rx_start_page);
    assert_eq!(hdr, [0x01, drv.rx_start_page + 1, 64, 0]);
    let fcs = drv.block_input(4, (u16::from(drv.rx_start_page) << 8) + 4 + 60);
    assert_eq!(fcs, super::fcs(&padded(&short)).to_le_bytes());
    // The broadcast is flagged as such (PHY) and takes ceil((4 + 1514 + 4) / 256) = 6 pages.
    let hdr = drv.get_hdr(drv.rx_start_page + 1);
    assert_eq!(hdr, [0x21, drv.rx_start_page + 7, 0xee, 0x05]);

    drv.interrupt();
    assert!(!c.tb.gsi.level(c.gsi));
    assert_eq!(drv.received, vec![padded(&short), long, odd]);
    assert_eq!(drv.stats.rx_packets, 3);
    assert_eq!(drv.stats.rx_errors, 0);
    assert_eq!(c.card.nic().counters().rx_frames, 3);
}

#[test]
fn frames_wrap_around_pstop_and_are_read_back_in_two_moves() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    let mut wraps = 0;
    let mut expected = Vec::new();
    for n in 0..40u8 {
        // 1000-1039 bytes: four pages each, so the 52-page ring wraps every 13 frames at a different
        // offset inside the frame.
        let f = frame(MAC, 1000 + usize::from(n), n);
        let before = drv.current_page;
        assert!(c.net.deliver(&f), "frame {n}");
        drv.interrupt();
        if drv.current_page < before {
            wraps += 1;
        }
        expected.push(f);
    }
    assert!(wraps >= 3, "the ring wrapped {wraps} times");
    assert_eq!(drv.received, expected);
    assert_eq!(drv.stats.rx_errors, 0);
}

#[test]
fn overflow_drops_and_counts_new_frames_and_keeps_unread_ones() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    let nic = c.card.nic();

    // The guest never advances BNRY: 52 ring pages, one always left free before BNRY and one gap page,
    // so twelve 4-page frames fit.
    let frames: Vec<Vec<u8>> = (0..20u8).map(|n| frame(MAC, 1000, n)).collect();
    let taken: Vec<bool> = frames.iter().map(|f| c.net.deliver(f)).collect();
    assert_eq!(taken.iter().filter(|&&t| t).count(), 12);
    assert!(taken[..12].iter().all(|&t| t));
    assert!(!nic.can_receive(), "the back-end is told to hold frames");
    let counters = nic.counters();
    assert_eq!(counters.rx_frames, 12);
    assert_eq!(counters.rx_dropped_ring_full, 8);
    assert_eq!(
        c.io.inb(EN0_ISR) & (ENISR_OVER | ENISR_RX),
        ENISR_OVER | ENISR_RX
    );
    // The missed-packet tally counted them (and reading clears it).
    assert_eq!(c.io.inb(EN0_COUNTER2), 8);
    assert_eq!(c.io.inb(EN0_COUNTER2), 0);

    // Linux's overrun recovery (stop, loopback, restart, drain, ack) empties the ring in two passes.
    drv.interrupt();
    assert_eq!(drv.stats.rx_over_errors, 1);
    let late = frame(MAC, 200, 0xee);
    assert!(nic.can_receive());
    assert!(c.net.deliver(&late));
    drv.interrupt();
    let mut expected = frames[..12].to_vec();
    expected.push(late);
    assert_eq!(drv.received, expected, "no unread frame was overwritten");
    assert_eq!(drv.stats.rx_errors, 0);
}

#[test]
fn receive_filters_follow_rcr_par_and_the_multicast_hash() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    let nic = c.card.nic();

    let mdns = [0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb];
    let index = |a: &[u8; 6]| super::ether_crc(a) >> 26;
    // A second group whose hash bit differs from mDNS's.
    let other_group = (1..=255u8)
        .map(|n| [0x01, 0x00, 0x5e, 0x00, 0x01, n])
        .find(|a| index(a) != index(&mdns))
        .unwrap();

    assert!(!c.net.deliver(&frame(OTHER, 80, 0)), "not our address");
    assert!(c.net.deliver(&frame(BROADCAST, 80, 1)), "AB is on");
    assert!(!c.net.deliver(&frame(mdns, 80, 2)), "no multicast list yet");

    drv.multicast = vec![mdns];
    drv.set_multicast_list();
    assert!(c.net.deliver(&frame(mdns, 80, 3)));
    assert!(!c.net.deliver(&frame(other_group, 80, 4)), "hash bit clear");

    drv.promisc = true;
    drv.set_multicast_list();
    assert!(c.net.deliver(&frame(OTHER, 80, 5)));
    assert!(c.net.deliver(&frame(other_group, 80, 6)));

    drv.interrupt();
    assert_eq!(drv.received.len(), 4);
    assert_eq!(nic.counters().rx_dropped_filtered, 3);
}

#[test]
fn ne_c_probes_the_isa_card_at_0x300_and_runs_it_in_word_mode() {
    let c = isa_card();
    let mut drv = Linux::new(&c.io, Glue::Isa16);
    let (prom, wordlength) = drv.probe_isa().unwrap();
    assert_eq!(wordlength, 2, "doubled PROM bytes: a 16-bit card");
    assert_eq!(&prom[..6], &MAC);
    assert_eq!(&prom[14..], b"WW");
    // A plain DP8390: no Realtek ID.
    assert_eq!(c.io.inb(0x0a), 0xff);

    drv.init(true);
    let f = frame(OTHER, 99, 1);
    drv.start_xmit(&f).unwrap();
    assert_eq!(c.net.take_sent(), vec![f]);
    assert!(c.irq.level());
    drv.interrupt();
    assert!(!c.irq.level());

    let odd = frame(MAC, 129, 2);
    assert!(c.net.deliver(&odd));
    assert!(c.irq.level());
    drv.interrupt();
    assert_eq!(drv.received, vec![odd]);
    assert_eq!(c.irq.rising_edges(), 2);
}

#[test]
fn byte_wide_data_port_moves_one_byte_per_access() {
    let c = isa_card();
    let mut drv = Linux::new(&c.io, Glue::Isa8);
    drv.probe_isa().unwrap();
    // Byte mode on the 16-bit card's memory layout.
    drv.tx_start_page = 0x40;
    drv.rx_start_page = 0x4c;
    drv.stop_page = 0x80;
    drv.init(true);
    assert_eq!(c.io.inb(0x0e), 0, "page 0 offset 0x0e reads CNTR1");
    let f = frame(OTHER, 75, 3);
    drv.start_xmit(&f).unwrap();
    assert_eq!(c.net.take_sent(), vec![f]);
    let r = frame(MAC, 301, 4);
    assert!(c.net.deliver(&r));
    drv.interrupt();
    assert_eq!(drv.received, vec![r]);
    assert_eq!(drv.stats.tx_packets, 1);
}
