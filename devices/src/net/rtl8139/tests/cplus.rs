//! C+ mode as Linux 8139cp drives it: descriptor rings with EOR wrap, fragments, VLAN, the tally dump.

use super::*;
use crate::net::rtl8139::cplus::desc;

pub(super) const RING: u64 = 0x10_0000;
const RX_BUFS: u64 = 0x20_0000;
const TX_BUFS: u64 = 0x30_0000;
const RING_SIZE: usize = 64;
pub(super) const BUF_SZ: u32 = 1536;
const CP_INTR_MASK: u16 =
    0x0001 | 0x0002 | 0x0010 | 0x0040 | 0x8000 | 0x0020 | 0x0004 | 0x0008 | 0x0080;
const CP_RX_INTR_MASK: u16 = 0x0001 | 0x0002 | 0x0010 | 0x0040;
/// PCIMulRW | RxChkSum | CpRxOn | CpTxOn, as cp_init_one sets it.
pub(super) const CPCMD: u16 = 0x0008 | 0x0020 | 0x0002 | 0x0001;

/// A received descriptor's view: the frame without FCS, opts1, opts2.
pub(super) type Rx = (Vec<u8>, u32, u32);

/// The parts of `struct cp_private` the data path uses.
pub(super) struct Cp {
    rx_tail: usize,
    tx_head: usize,
    tx_tail: usize,
    pub(super) tx_ok: usize,
    pub(super) tx_err: usize,
}

pub(super) fn rx_desc(i: usize) -> u64 {
    RING + 16 * i as u64
}
pub(super) fn tx_desc(i: usize) -> u64 {
    RING + 16 * (RING_SIZE + i) as u64
}
const STATS: u64 = RING + 32 * RING_SIZE as u64;

fn set_desc(rig: &Rig, at: u64, opts1: u32, opts2: u32, addr: u64) {
    rig.put32(at + 4, opts2);
    rig.put64(at + 8, addr);
    rig.put32(at, opts1);
}

/// cp_init_one up to the MAC: cp_stop_hw, then the EEPROM.
pub(super) fn cp_probe(rig: &Rig) -> [u8; 6] {
    rig.w16(ISR, !rig.r16(ISR));
    rig.w16(IMR, 0);
    rig.w8(CR, 0);
    rig.w16(CPCR, 0);
    rig.w16(ISR, !rig.r16(ISR));
    rig.linux_eeprom_mac()
}

/// cp_open: rings, cp_init_hw (with `cpcmd`), interrupts on.
pub(super) fn cp_open(rig: &Rig, mac: [u8; 6], cpcmd: u16) -> Cp {
    for i in 0..RING_SIZE {
        set_desc(rig, tx_desc(i), 0, 0, 0);
        let eor = if i == RING_SIZE - 1 { desc::EOR } else { 0 };
        set_desc(
            rig,
            rx_desc(i),
            desc::OWN | eor | BUF_SZ,
            0,
            RX_BUFS + 2048 * i as u64,
        );
    }
    rig.put32(tx_desc(RING_SIZE - 1), desc::EOR);
    rig.chip_reset();
    rig.w8(CR9346, 0xc0);
    rig.w32(IDR0, u32::from_le_bytes(mac[..4].try_into().unwrap()));
    rig.w32(IDR0 + 4, u32::from(u16::from_le_bytes([mac[4], mac[5]])));
    // cp_start_hw
    rig.w16(CPCR, cpcmd);
    rig.w32(THPDS, 0);
    rig.w32(THPDS + 4, 0);
    rig.w32(RDSAR, RING as u32);
    rig.w32(RDSAR + 4, 0);
    rig.w32(TNPDS, tx_desc(0) as u32);
    rig.w32(TNPDS + 4, 0);
    rig.w8(CR, cr::RE | cr::TE);
    rig.w8(ETTHR, 0x06);
    // __cp_set_rx_mode
    rig.w32(RCR, (5 << 13) | (4 << 8) | rcr::AB | rcr::APM);
    rig.w32(MAR0, 0);
    rig.w32(MAR0 + 4, 0);
    rig.w32(TCR, (3 << 24) | (6 << 8));
    rig.w8(CONFIG1, rig.r8(CONFIG1) | 0x21);
    rig.w8(CONFIG3, 0x40);
    rig.w8(CONFIG5, rig.r8(CONFIG5) & 1);
    rig.w16(MULINT, 0);
    rig.w8(CR9346, 0);
    rig.w16(IMR, CP_INTR_MASK);
    Cp {
        rx_tail: 0,
        tx_head: 0,
        tx_tail: 0,
        tx_ok: 0,
        tx_err: 0,
    }
}

impl Cp {
    /// cp_start_xmit: `frags` in consecutive descriptors, the first handed over last, then TxPoll.
    pub(super) fn xmit(&mut self, rig: &Rig, frags: &[&[u8]], flags: u32, opts2: u32) {
        self.queue(rig, frags, flags, opts2);
        rig.w8(TPPOLL, tppoll::NPQ);
    }

    /// The descriptor part of cp_start_xmit, without the poll.
    pub(super) fn queue(&mut self, rig: &Rig, frags: &[&[u8]], flags: u32, opts2: u32) {
        let first = self.tx_head;
        let mut entry = first;
        let mut first_opts = 0;
        for (n, frag) in frags.iter().enumerate() {
            let buf = TX_BUFS + 2048 * entry as u64;
            rig.put(buf, frag);
            let eor = if entry == RING_SIZE - 1 { desc::EOR } else { 0 };
            let mut opts1 = desc::OWN | flags | eor | frag.len() as u32;
            if n == 0 {
                opts1 |= desc::FS;
            }
            if n + 1 == frags.len() {
                opts1 |= desc::LS;
            }
            if n == 0 {
                set_desc(rig, tx_desc(entry), 0, opts2, buf);
                first_opts = opts1;
            } else {
                set_desc(rig, tx_desc(entry), opts1, opts2, buf);
            }
            entry = (entry + 1) % RING_SIZE;
        }
        rig.put32(tx_desc(first), first_opts);
        self.tx_head = entry;
    }

    /// cp_tx: reclaims completed descriptors.
    pub(super) fn tx_done(&mut self, rig: &Rig) {
        while self.tx_tail != self.tx_head {
            let status = rig.get32(tx_desc(self.tx_tail));
            if status & desc::OWN != 0 {
                break;
            }
            if status & desc::LS != 0 {
                if status & (desc::TX_ERROR | desc::TX_UNDERRUN) != 0 {
                    self.tx_err += 1;
                } else {
                    self.tx_ok += 1;
                }
            }
            self.tx_tail = (self.tx_tail + 1) % RING_SIZE;
        }
    }

    /// cp_rx_poll: every frame the chip handed back, descriptors re-armed.
    pub(super) fn rx_poll(&mut self, rig: &Rig) -> Vec<Rx> {
        rig.w16(ISR, CP_RX_INTR_MASK);
        let mut out = Vec::new();
        loop {
            let at = rx_desc(self.rx_tail);
            let status = rig.get32(at);
            if status & desc::OWN != 0 {
                break;
            }
            let opts2 = rig.get32(at + 4);
            let len = (status & 0x1fff) as usize - 4;
            assert_eq!(status & (desc::FS | desc::LS), desc::FS | desc::LS);
            let data = rig.get(RX_BUFS + 2048 * self.rx_tail as u64, len + 4);
            let (frame, crc) = data.split_at(len);
            assert_eq!(u32::from_le_bytes(crc.try_into().unwrap()), fcs(frame));
            out.push((frame.to_vec(), status, opts2));
            let eor = if self.rx_tail == RING_SIZE - 1 {
                desc::EOR
            } else {
                0
            };
            set_desc(
                rig,
                at,
                desc::OWN | eor | BUF_SZ,
                0,
                RX_BUFS + 2048 * self.rx_tail as u64,
            );
            self.rx_tail = (self.rx_tail + 1) % RING_SIZE;
        }
        rig.w16(IMR, CP_INTR_MASK);
        out
    }

    /// cp_interrupt: acknowledges the non-receive sources and reclaims transmit descriptors.
    pub(super) fn interrupt(&mut self, rig: &Rig) -> u16 {
        let status = rig.r16(ISR);
        rig.w16(ISR, status & !CP_RX_INTR_MASK);
        if status & (int::TOK | int::TER | int::TDU | int::SW_INT) != 0 {
            self.tx_done(rig);
        }
        status
    }
}

#[test]
fn linux_8139cp_transmits_and_receives_around_both_rings() {
    let rig = Rig::new();
    let mac = cp_probe(&rig);
    assert_eq!(mac, MAC);
    let mut cp = cp_open(&rig, mac, CPCMD);
    // 70 frames: the transmit ring wraps through its EOR descriptor.
    let frames: Vec<Vec<u8>> = (0..70u32)
        .map(|i| {
            eth(
                PEER,
                MAC,
                0x0800,
                &vec![i as u8; 46 + (i as usize * 19) % 1400],
            )
        })
        .collect();
    for f in &frames {
        cp.xmit(&rig, &[f], 0, 0);
        assert!(rig.irq.level());
        assert_ne!(cp.interrupt(&rig) & int::TOK, 0);
    }
    assert_eq!((cp.tx_ok, cp.tx_err), (70, 0));
    assert_eq!(rig.net.take_sent(), frames);
    // 150 frames: the receive ring wraps twice.
    let mut got = Vec::new();
    for i in 0..150u8 {
        let f = if i % 5 == 0 {
            eth([0xff; 6], PEER, 0x0806, &[i; 28])
        } else {
            frame_to_us(60 + usize::from(i) * 9, i)
        };
        assert!(rig.net.deliver(&f), "frame {i}");
        if i % 10 == 9 {
            assert!(rig.irq.level());
            assert_ne!(cp.interrupt(&rig) & int::ROK, 0);
            got.extend(cp.rx_poll(&rig));
        }
    }
    assert_eq!(got.len(), 150);
    for (i, (frame, status, opts2)) in got.iter().enumerate() {
        let bcast = i % 5 == 0;
        assert_eq!(frame.len(), if bcast { 60 } else { 60 + i * 9 });
        assert_eq!(frame[..6], if bcast { [0xff; 6] } else { MAC });
        let kind = status & (desc::RX_BAR | desc::RX_PAM | desc::RX_MAR);
        assert_eq!(kind, if bcast { desc::RX_BAR } else { desc::RX_PAM });
        assert_eq!(*opts2, 0);
    }
    assert_eq!(rig.nic.counters().rx_frames, 150);
}

#[test]
fn fragments_are_gathered_and_given_back_together() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    let f = eth(
        PEER,
        MAC,
        0x0800,
        &(0..1000).map(|i| i as u8).collect::<Vec<_>>(),
    );
    // Head, two page fragments: handed over first descriptor last, as 8139cp does.
    cp.xmit(&rig, &[&f[..54], &f[54..600], &f[600..]], 0, 0);
    assert_eq!(rig.net.take_sent(), vec![f.clone()]);
    for i in 0..3 {
        let opts1 = rig.get32(tx_desc(i));
        assert_eq!(opts1 & desc::OWN, 0, "descriptor {i} given back");
        assert_eq!(opts1 & desc::TX_ERROR, 0);
    }
    cp.interrupt(&rig);
    assert_eq!(cp.tx_ok, 1);
    // A frame whose first descriptor is not handed over yet is not sent.
    cp.queue(&rig, &[&f[..100], &f[100..]], 0, 0);
    rig.put32(tx_desc(3), rig.get32(tx_desc(3)) & !desc::OWN);
    rig.w8(TPPOLL, tppoll::NPQ);
    assert!(rig.net.take_sent().is_empty());
    assert_ne!(rig.get32(tx_desc(4)) & desc::OWN, 0, "not consumed");
    rig.put32(tx_desc(3), rig.get32(tx_desc(3)) | desc::OWN);
    rig.w8(TPPOLL, tppoll::NPQ);
    assert_eq!(rig.net.take_sent(), vec![f]);
}

#[test]
fn high_priority_ring_and_software_interrupt() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    let hp = RING + 0x8000;
    let f = eth(PEER, MAC, 0x0800, &[0x42; 100]);
    rig.put(TX_BUFS, &f);
    set_desc(
        &rig,
        hp,
        desc::OWN | desc::EOR | desc::FS | desc::LS | f.len() as u32,
        0,
        TX_BUFS,
    );
    rig.w32(THPDS, hp as u32);
    rig.w8(TPPOLL, tppoll::HPQ | tppoll::FSW_INT);
    assert_eq!(rig.net.take_sent(), vec![f]);
    assert_eq!(
        rig.r16(ISR) & (int::TOK | int::SW_INT),
        int::TOK | int::SW_INT
    );
}

#[test]
fn tally_counters_are_dumped_to_memory() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    for i in 0..3 {
        cp.xmit(&rig, &[&eth(PEER, MAC, 0x0800, &[i; 50])], 0, 0);
    }
    for i in 0..4 {
        assert!(rig.net.deliver(&frame_to_us(80, i)));
    }
    assert!(rig.net.deliver(&eth([0xff; 6], PEER, 0x0806, &[0; 46])));
    // cp_get_ethtool_stats
    rig.w32(TSD0 + 4, 0);
    rig.w32(TSD0, STATS as u32 | 0x8);
    rig.r32(TSD0);
    assert_eq!(rig.r32(TSD0) & 0x8, 0, "dump complete");
    rig.w32(TSD0, 0);
    rig.w32(TSD0 + 4, 0);
    let dump = rig.get(STATS, 64);
    let u64_at = |o: usize| u64::from_le_bytes(dump[o..o + 8].try_into().unwrap());
    assert_eq!(u64_at(0), 3, "tx_ok");
    assert_eq!(u64_at(8), 5, "rx_ok");
    assert_eq!(u64_at(40), 4, "rx_ok_phys");
    assert_eq!(u64_at(48), 1, "rx_ok_bcast");
}

#[test]
fn vlan_tags_are_inserted_and_stripped() {
    let rig = Rig::new();
    // RxVlanOn, as NETIF_F_HW_VLAN_CTAG_RX sets it.
    let mut cp = cp_open(&rig, MAC, CPCMD | 0x40);
    let f = eth(PEER, MAC, 0x0800, &[7; 100]);
    // VLAN 100, priority 5: TCI 0xa064, stored by 8139cp as swab16 in opts2.
    let tci: u16 = 0xa064;
    cp.xmit(&rig, &[&f], 0, desc::TX_TAG | u32::from(tci.swap_bytes()));
    let sent = rig.net.take_sent();
    let mut tagged = f[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0xa0, 0x64]);
    tagged.extend_from_slice(&f[12..]);
    assert_eq!(sent, vec![tagged.clone()]);

    // The same frame comes back to us tagged: the tag goes to opts2, the frame loses it.
    let mut incoming = tagged.clone();
    incoming[..6].copy_from_slice(&MAC);
    incoming[6..12].copy_from_slice(&PEER);
    assert!(rig.net.deliver(&incoming));
    let got = cp.rx_poll(&rig);
    assert_eq!(got.len(), 1);
    let (frame, _, opts2) = &got[0];
    let mut untagged = incoming[..12].to_vec();
    untagged.extend_from_slice(&incoming[16..]);
    assert_eq!(frame, &untagged);
    assert_eq!(opts2 & desc::RX_TAGGED, desc::RX_TAGGED);
    // 8139cp: swab16(opts2 & 0xffff) is the TCI.
    assert_eq!(((opts2 & 0xffff) as u16).swap_bytes(), tci);

    // Without RxVlanOn the tag stays in the frame.
    rig.w16(CPCR, CPCMD);
    assert!(rig.net.deliver(&incoming));
    let got = cp.rx_poll(&rig);
    assert_eq!(got[0].0, incoming);
    assert_eq!(got[0].2, 0);
}

#[test]
fn receive_descriptor_unavailable_drops_and_counts() {
    let rig = Rig::new();
    let mut cp = cp_open(&rig, MAC, CPCMD);
    for i in 0..64u8 {
        assert!(rig.net.deliver(&frame_to_us(100, i)));
    }
    assert!(!rig.nic.can_receive(), "ring full");
    assert!(!rig.net.deliver(&frame_to_us(100, 64)));
    assert_ne!(rig.r16(ISR) & int::RXOVW, 0, "RDU");
    assert_eq!(rig.r32(MPC), 1);
    assert_eq!(rig.nic.counters().rx_dropped_ring_full, 1);
    assert_eq!(cp.rx_poll(&rig).len(), 64);
    // Re-arming descriptors is announced by the IMR write at the end of the poll.
    assert_eq!(rig.net.rx_ready_calls.load(Ordering::SeqCst), 1);
    assert!(rig.net.deliver(&frame_to_us(100, 65)));
}

#[test]
fn frames_scatter_over_small_receive_buffers() {
    let rig = Rig::new();
    cp_open(&rig, MAC, CPCMD);
    for i in 0..4 {
        set_desc(
            &rig,
            rx_desc(i),
            desc::OWN | 256,
            0,
            RX_BUFS + 2048 * i as u64,
        );
    }
    let f = frame_to_us(600, 3);
    assert!(rig.net.deliver(&f));
    let mut data = Vec::new();
    let opts: Vec<u32> = (0..4).map(|i| rig.get32(rx_desc(i))).collect();
    for (i, o) in opts.iter().enumerate().take(3) {
        assert_eq!(o & desc::OWN, 0);
        data.extend(rig.get(RX_BUFS + 2048 * i as u64, 256));
    }
    assert_eq!(opts[0] & (desc::FS | desc::LS), desc::FS);
    assert_eq!(opts[1] & (desc::FS | desc::LS), 0);
    assert_eq!(opts[2] & (desc::FS | desc::LS), desc::LS);
    assert_eq!(
        opts[2] & 0x1fff,
        604,
        "frame length with FCS in the last descriptor"
    );
    assert_ne!(opts[3] & desc::OWN, 0, "untouched");
    assert_eq!(&data[..600], &f[..]);
    assert_eq!(
        u32::from_le_bytes(data[600..604].try_into().unwrap()),
        fcs(&f)
    );
}
