//! C mode as Linux 8139too and iPXE drive it: probe, open, four transmit descriptors, the receive ring.

use super::*;

/// 8139too's 32 KiB ring with its 16 + 2048 bytes of slack (RCR.WRAP lets frames run past the end).
const RX_BUF_LEN: u32 = 32 << 10;
const RX_RING: u64 = 0x10_0000;
const TX_BUFS: u64 = 0x20_0000;
const TX_BUF_SIZE: u64 = 1536;
/// 8139too's RxConfig: 32K ring, WRAP, FIFO threshold 7, DMA burst 7.
const RX_CONFIG: u32 = (2 << 11) | rcr::WRAP | (7 << 13) | (7 << 8);
const INTR_MASK: u16 = 0x8000 | 0x4000 | 0x20 | 0x10 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01;
const RX_ACK_BITS: u16 = 0x40 | 0x10 | 0x01;

/// The parts of `struct rtl8139_private` the data path uses.
pub(super) struct Too {
    cur_rx: u32,
    cur_tx: usize,
    dirty_tx: usize,
    pub(super) tx_ok: usize,
}

/// `rtl8139_init_board` + `rtl8139_init_one`: returns the MAC read from the EEPROM.
pub(super) fn linux_probe(rig: &Rig) -> [u8; 6] {
    rig.w8(HLTCLK, b'R');
    let tcr = rig.r32(TCR);
    assert_ne!(tcr, 0xffff_ffff, "chip not responding");
    // HW_REVID_MASK: bits 30-26 and 23-22.
    assert_eq!(tcr & 0x7cc0_0000, 0x7480_0000, "RTL8139C+ version bits");
    rig.chip_reset();
    rig.linux_eeprom_mac()
}

/// `rtl8139_open` → `rtl8139_hw_start` (and `__set_rx_mode` without multicast).
pub(super) fn linux_open(rig: &Rig, mac: [u8; 6]) -> Too {
    rig.w8(HLTCLK, b'R');
    rig.chip_reset();
    rig.w8(CR9346, 0xc0);
    rig.w32(IDR0, u32::from_le_bytes(mac[..4].try_into().unwrap()));
    rig.r32(IDR0);
    rig.w32(IDR0 + 4, u32::from(u16::from_le_bytes([mac[4], mac[5]])));
    rig.r32(IDR0 + 4);
    rig.w32(RBSTART, RX_RING as u32);
    rig.r32(RBSTART);
    rig.w8(CR, cr::RE | cr::TE);
    let rx_config = RX_CONFIG | rcr::AB | rcr::APM;
    rig.w32(RCR, rx_config);
    rig.w32(TCR, (3 << 24) | (6 << 8) | (8 << 4));
    // rtl_check_media reads BMSR/ANLPAR through mdio_read.
    assert_ne!(rig.r16(BMSR) & 0x0004, 0, "link up");
    rig.w8(CONFIG3, rig.r8(CONFIG3) & !0x20);
    rig.w8(CR9346, 0);
    for i in 0..4u8 {
        rig.w32(TSAD0 + 4 * i, (TX_BUFS + u64::from(i) * TX_BUF_SIZE) as u32);
        rig.r32(TSAD0 + 4 * i);
    }
    rig.w32(MPC, 0);
    // __set_rx_mode: same RxConfig, no multicast.
    rig.w32(MAR0, 0);
    rig.w32(MAR0 + 4, 0);
    rig.w16(MULINT, rig.r16(MULINT) & 0xf000);
    let tmp = rig.r8(CR);
    assert_eq!(tmp & (cr::RE | cr::TE), cr::RE | cr::TE);
    rig.w16(IMR, INTR_MASK);
    Too {
        cur_rx: 0,
        cur_tx: 0,
        dirty_tx: 0,
        tx_ok: 0,
    }
}

impl Too {
    /// `rtl8139_start_xmit`: false when the queue is stopped (four frames in flight).
    pub(super) fn xmit(&mut self, rig: &Rig, frame: &[u8]) -> bool {
        if self.cur_tx - self.dirty_tx >= 4 {
            return false;
        }
        let entry = self.cur_tx % 4;
        let buf = TX_BUFS + entry as u64 * TX_BUF_SIZE;
        let len = frame.len().max(60);
        rig.put(buf, &[0u8; 60]);
        rig.put(buf, frame);
        let tx_flag = (256u32 << 11) & 0x003f_0000;
        rig.w32(TSD0 + 4 * entry as u8, tx_flag | len as u32);
        rig.r32(TSD0 + 4 * entry as u8);
        self.cur_tx += 1;
        true
    }

    /// `rtl8139_tx_interrupt`.
    fn tx_interrupt(&mut self, rig: &Rig) {
        while self.cur_tx > self.dirty_tx {
            let entry = (self.dirty_tx % 4) as u8;
            let status = rig.r32(TSD0 + 4 * entry);
            if status & (tsd::TOK | tsd::TUN | tsd::TABT) == 0 {
                break;
            }
            assert_eq!(status & tsd::TABT, 0, "descriptor {entry} aborted");
            self.tx_ok += 1;
            self.dirty_tx += 1;
        }
    }

    /// `rtl8139_rx`: returns the frames (without FCS) and checks each record's FCS.
    pub(super) fn rx(&mut self, rig: &Rig) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while rig.r8(CR) & cr::BUFE == 0 {
            let ring_offset = self.cur_rx % RX_BUF_LEN;
            let rx_status = rig.get32(RX_RING + u64::from(ring_offset));
            let rx_size = rx_status >> 16;
            assert!(
                (8..=1536 + 4).contains(&rx_size) && rx_status & 1 != 0,
                "bad record {rx_status:#x} at {ring_offset:#x}"
            );
            let pkt = rig.get(RX_RING + u64::from(ring_offset) + 4, rx_size as usize);
            let (data, crc) = pkt.split_at(pkt.len() - 4);
            assert_eq!(
                u32::from_le_bytes(crc.try_into().unwrap()),
                fcs(data),
                "FCS"
            );
            out.push(data.to_vec());
            self.cur_rx = (self.cur_rx + rx_size + 4 + 3) & !3;
            rig.w16(CAPR, self.cur_rx.wrapping_sub(16) as u16);
            // rtl8139_isr_ack
            if rig.r16(ISR) & RX_ACK_BITS != 0 {
                rig.w16(ISR, RX_ACK_BITS);
                rig.r16(ISR);
            }
        }
        out
    }

    /// `rtl8139_interrupt` plus the NAPI poll it schedules.
    pub(super) fn interrupt(&mut self, rig: &Rig) -> Vec<Vec<u8>> {
        let status = rig.r16(ISR);
        let ackstat = status & !(RX_ACK_BITS | int::TER);
        if ackstat != 0 {
            rig.w16(ISR, ackstat);
        }
        let mut rx = Vec::new();
        if status & RX_ACK_BITS != 0 {
            rig.w16(IMR, INTR_MASK & !(0x40 | 0x10 | 0x01));
            rx = self.rx(rig);
            rig.w16(IMR, INTR_MASK);
        }
        if status & (int::TOK | int::TER) != 0 {
            self.tx_interrupt(rig);
            if status & int::TER != 0 {
                rig.w16(ISR, int::TER);
            }
        }
        rx
    }
}

#[test]
fn linux_8139too_probe_reads_the_mac_through_the_eeprom_and_idr() {
    let rig = Rig::new();
    // Word 0 read with 8 address bits is shifted by two bits on a 93C46, so Linux picks 6 bits.
    assert_ne!(rig.linux_read_eeprom(0, 8), 0x8129);
    assert_eq!(rig.linux_read_eeprom(0, 6), 0x8129);
    assert_eq!(rig.linux_read_eeprom(1, 6), 0x10ec);
    assert_eq!(rig.linux_read_eeprom(2, 6), 0x8139);
    let mac = linux_probe(&rig);
    assert_eq!(mac, MAC);
    let idr: Vec<u8> = (0..6).map(|i| rig.r8(IDR0 + i)).collect();
    assert_eq!(idr, MAC, "IDR0-5 loaded from the EEPROM at power-on");
    assert_eq!(rig.r8(RERID), 0x20);
    assert_eq!(rig.r8(CR) & cr::BUFE, cr::BUFE, "empty ring after reset");
    assert_eq!(rig.r16(CAPR), 0xfff0);
}

#[test]
fn linux_8139too_open_programs_the_chip() {
    let rig = Rig::new();
    let mac = linux_probe(&rig);
    linux_open(&rig, mac);
    assert_eq!(rig.r32(RBSTART), RX_RING as u32);
    assert_eq!(rig.r32(RCR), RX_CONFIG | rcr::AB | rcr::APM);
    assert_eq!(rig.r32(TCR), 0x7480_0000 | (3 << 24) | (6 << 8) | (8 << 4));
    assert_eq!(rig.r16(IMR), INTR_MASK);
    assert_eq!(rig.r8(CR) & (cr::RE | cr::TE), cr::RE | cr::TE);
    assert_eq!(
        rig.r8(CONFIG3) & 0x20,
        0,
        "magic packet off (written unlocked)"
    );
    assert_eq!(
        rig.r16(TSAD_SUMMARY) & 0xf,
        0xf,
        "all four descriptors are the host's"
    );
    assert!(!rig.irq.level());
}

#[test]
fn linux_8139too_transmits_through_the_four_descriptors() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    let frames: Vec<Vec<u8>> = (0..10)
        .map(|i| eth(PEER, MAC, 0x0800, &vec![i as u8; 30 + 100 * i]))
        .collect();
    let mut edges = 0;
    for f in &frames {
        assert!(too.xmit(&rig, f), "queue stopped with a free descriptor");
        assert!(rig.irq.level(), "TOK interrupt");
        edges += 1;
        assert_eq!(rig.r16(ISR) & int::TOK, int::TOK);
        too.interrupt(&rig);
        assert!(!rig.irq.level(), "acknowledged");
    }
    assert_eq!(too.tx_ok, 10);
    assert_eq!(rig.irq.rising_edges(), edges);
    let sent = rig.net.take_sent();
    assert_eq!(sent.len(), 10);
    for (s, f) in sent.iter().zip(&frames) {
        let mut padded = f.clone();
        padded.resize(f.len().max(60), 0);
        assert_eq!(s, &padded);
    }
    // The last descriptor used was 1 (10 frames): TOK and OWN in TSD and in the summary.
    let tsd1 = rig.r32(TSD0 + 4);
    assert_eq!(tsd1 & (tsd::TOK | tsd::OWN), tsd::TOK | tsd::OWN);
    assert_eq!(tsd1 & tsd::SIZE, frames[9].len() as u32);
    assert_eq!(rig.r16(TSAD_SUMMARY), 0xf00f);
    let c = rig.nic.counters();
    assert_eq!((c.tx_frames, c.tx_backend_errors), (10, 0));
}

#[test]
fn descriptors_written_ahead_of_the_current_one_wait_their_turn() {
    let rig = Rig::new();
    linux_open(&rig, linux_probe(&rig));
    let f = |b: u8| eth(PEER, MAC, 0x0800, &[b; 50]);
    rig.put(TX_BUFS + TX_BUF_SIZE, &f(2));
    rig.put(TX_BUFS, &f(1));
    // Descriptor 1 first: the chip is at descriptor 0, which the host still owns.
    rig.w32(TSD0 + 4, 64);
    assert!(rig.net.take_sent().is_empty());
    rig.w32(TSD0, 64);
    let sent = rig.net.take_sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0][14], 1);
    assert_eq!(sent[1][14], 2);
}

#[test]
fn transmitter_off_holds_descriptors_until_enabled() {
    let rig = Rig::new();
    linux_open(&rig, linux_probe(&rig));
    rig.w8(CR, cr::RE);
    rig.put(TX_BUFS, &eth(PEER, MAC, 0x0800, &[9; 50]));
    rig.w32(TSD0, 64);
    assert!(rig.net.take_sent().is_empty());
    assert_eq!(rig.r32(TSD0) & tsd::OWN, 0);
    rig.w8(CR, cr::RE | cr::TE);
    assert_eq!(rig.net.take_sent().len(), 1);
}

#[test]
fn linux_8139too_receives_many_frames_with_wrap_around() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    let mut expected = Vec::new();
    let mut got = Vec::new();
    let mut wrapped_past_end = 0;
    for i in 0..200u32 {
        let len = [60, 64, 1510, 333, 999, 1000, 61][(i % 7) as usize] + (i % 5) as usize;
        let f = frame_to_us(len, i as u8);
        let before = u32::from(rig.r16(CBR));
        assert!(rig.net.deliver(&f), "frame {i} refused");
        let record = 4 + f.len().max(60) as u32 + 4;
        if before + record > RX_BUF_LEN {
            wrapped_past_end += 1;
        }
        expected.push(f);
        // The driver is woken every third frame.
        if i % 3 == 2 {
            assert!(rig.irq.level(), "ROK interrupt");
            got.extend(too.interrupt(&rig));
            assert!(!rig.irq.level());
        }
    }
    got.extend(too.interrupt(&rig));
    assert!(
        wrapped_past_end >= 3,
        "the ring wrapped {wrapped_past_end} times"
    );
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        let mut padded = e.clone();
        padded.resize(e.len().max(60), 0);
        assert_eq!(g, &padded);
    }
    let c = rig.nic.counters();
    assert_eq!((c.rx_frames, c.rx_dropped_ring_full), (200, 0));
    assert_eq!(rig.r8(CR) & cr::BUFE, cr::BUFE);
}

#[test]
fn overflow_when_the_driver_does_not_advance_capr() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    let mut accepted = Vec::new();
    let mut refused = 0;
    for i in 0..40u8 {
        let f = frame_to_us(1514, i);
        if rig.net.deliver(&f) {
            accepted.push(f);
        } else {
            refused += 1;
        }
    }
    // Records of 1514-byte frames take 1524 bytes: after 21 of them 764 bytes are left, too few.
    assert_eq!(accepted.len(), 21);
    assert_eq!(refused, 19);
    assert_eq!(rig.r32(MPC), 19);
    assert_ne!(rig.r16(ISR) & int::RXOVW, 0);
    assert_eq!(rig.nic.counters().rx_dropped_ring_full, 19);
    // Nothing the driver has not read was overwritten.
    let got = too.interrupt(&rig);
    assert_eq!(got, accepted);
    // Room again.
    assert!(rig.net.deliver(&frame_to_us(100, 1)));
    assert_eq!(too.interrupt(&rig).len(), 1);
}

#[test]
fn a_refused_backend_hears_rx_ready_once_capr_frees_space() {
    let rig = Rig::new();
    let mut too = linux_open(&rig, linux_probe(&rig));
    let receiver: &dyn NetReceiver = &*rig.nic;
    assert!(receiver.can_receive());
    while receiver.can_receive() {
        assert!(rig.net.deliver(&frame_to_us(1514, 0)));
    }
    assert_eq!(rig.net.rx_ready_calls.load(Ordering::SeqCst), 0);
    too.interrupt(&rig);
    assert_eq!(rig.net.rx_ready_calls.load(Ordering::SeqCst), 1);
    assert!(receiver.can_receive());
}

/// iPXE's three-wire EEPROM access: read-modify-write of 9346CR, one READ for the whole MAC.
fn ipxe_read_mac(rig: &Rig) -> [u8; 6] {
    const SS: u8 = 0x88; // EE_CS | EE_M1
    const SK: u8 = 0x04;
    const DI: u8 = 0x02;
    let set = |mask: u8, on: bool| {
        let v = rig.r8(CR9346) & !mask;
        rig.w8(CR9346, v | if on { mask } else { 0 });
    };
    set(SS, true);
    // Start bit and READ opcode (110), then the 6-bit address 7, MSB first.
    let cmd: u32 = (0b110 << 6) | 7;
    for i in (0..9).rev() {
        set(DI, cmd & (1 << i) != 0);
        set(SK, true);
        set(SK, false);
    }
    let mut bytes = [0u8; 6];
    // Three consecutive words, each sent MSB first: iPXE stores them as little-endian words.
    for w in 0..3 {
        let mut v = 0u16;
        for _ in 0..16 {
            set(SK, true);
            v = (v << 1) | u16::from(rig.r8(CR9346) & 1);
            set(SK, false);
        }
        bytes[2 * w..2 * w + 2].copy_from_slice(&v.to_le_bytes());
    }
    set(SS, false);
    bytes
}

#[test]
fn ipxe_reads_the_mac_in_one_sequential_eeprom_read_and_runs_an_8k_ring() {
    let mut rig = Rig::new();
    rig.bar = 0;
    rig.w8(CR, cr::RST);
    assert_eq!(rig.r16(RCR) & 0x40, 0, "93C46, not 93C56");
    assert_eq!(ipxe_read_mac(&rig), MAC);
    // rtl_open
    for (i, b) in MAC.iter().enumerate() {
        rig.w8(IDR0 + i as u8, *b);
    }
    let ring = 0x30_0000u64;
    rig.w32(RBSTART, ring as u32);
    rig.w8(CR, cr::RE | cr::TE);
    rig.w32(RCR, (4 << 13) | (4 << 8) | rcr::AB | rcr::AM | rcr::APM);
    rig.w32(MAR0, 0xffff_ffff);
    rig.w32(MAR0 + 4, 0xffff_ffff);
    rig.w32(TCR, (4 << 8) | (3 << 24));
    // Transmit one frame from descriptor 0, poll TxSummary as rtl_poll does.
    let f = eth([0xff; 6], MAC, 0x0806, &[1; 28]);
    rig.put(0x31_0000, &f);
    rig.w32(TSAD0, 0x31_0000);
    rig.w32(TSD0, ((256 & 0x7e0) << 11) | 60);
    assert_ne!(
        rig.r16(TSAD_SUMMARY) & 1,
        0,
        "descriptor 0 back with the host"
    );
    let mut padded = f.clone();
    padded.resize(60, 0);
    assert_eq!(rig.net.take_sent(), vec![padded]);
    // Receive across the end of the 8 KiB ring without WRAP: records wrap to the start.
    let mut offset = 0u32;
    for i in 0..30u8 {
        let f = frame_to_us(700, i);
        assert!(rig.net.deliver(&f));
        let status = rig.r16(ISR);
        rig.w16(ISR, status);
        // iPXE reads ChipCmd with a (misaligned) word access.
        while rig.r16(CR) & u16::from(cr::BUFE) == 0 {
            let hdr = rig.get32(ring + u64::from(offset));
            let len = (hdr >> 16) as usize;
            assert_eq!(hdr & 1, 1);
            let first = (len as u32).min(8192 - offset - 4) as usize;
            let mut data = rig.get(ring + u64::from(offset) + 4, first);
            data.extend(rig.get(ring, len - first));
            assert_eq!(&data[..len - 4], &f[..]);
            offset = ((offset + 4 + len as u32 + 3) & !3) % 8192;
            rig.w16(CAPR, offset.wrapping_sub(16) as u16);
        }
    }
}
