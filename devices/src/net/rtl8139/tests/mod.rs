//! Tests that drive the RTL8139 as Linux's 8139too and 8139cp and iPXE's rtl8139 drive it: register
//! sequences through the BARs, buffers, rings and descriptors in guest memory, frames through a recording
//! back-end, interrupts on a recording line, time from a fake clock.

mod cmode;
mod cplus;
mod hostile;
mod misc;
mod offload;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::regs::*;
use super::Rtl8139;
use crate::clock::FakeClock;
use crate::irq::RecordingIrq;
use crate::memory::{test_memory, Bytes, GuestAddress, GuestMemory};
use crate::net::testing::RecordingNet;
use crate::net::{NetBackend, NetError, NetReceiver};
use crate::pci::{RegionId, SharedFunction};
use crate::timer::TimerKick;

/// The NIC's MAC address in every test.
pub(super) const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// Another station.
pub(super) const PEER: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Guest RAM of the tests.
pub(super) const MEM_SIZE: usize = 4 << 20;

/// A [`RecordingNet`] whose link can be taken down, and which counts `rx_ready` calls.
#[derive(Default)]
pub(super) struct LinkNet {
    pub(super) inner: RecordingNet,
    down: AtomicBool,
    pub(super) rx_ready_calls: AtomicUsize,
}

impl LinkNet {
    pub(super) fn set_link(&self, up: bool) {
        self.down.store(!up, Ordering::SeqCst);
    }
    pub(super) fn take_sent(&self) -> Vec<Vec<u8>> {
        self.inner.take_sent()
    }
    pub(super) fn deliver(&self, frame: &[u8]) -> bool {
        self.inner.deliver(frame)
    }
}

impl NetBackend for LinkNet {
    fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        self.inner.send(frame)
    }
    fn link_up(&self) -> bool {
        !self.down.load(Ordering::SeqCst)
    }
    fn rx_ready(&self) {
        self.rx_ready_calls.fetch_add(1, Ordering::SeqCst);
    }
    fn attach(&self, receiver: Weak<dyn NetReceiver>) {
        self.inner.attach(receiver)
    }
}

/// A NIC in 4 MiB of guest memory, PCI decoding and bus mastering on.
pub(super) struct Rig {
    pub(super) nic: Arc<Rtl8139>,
    pub(super) func: SharedFunction,
    pub(super) mem: GuestMemory,
    pub(super) net: Arc<LinkNet>,
    pub(super) irq: Arc<RecordingIrq>,
    pub(super) clock: Arc<FakeClock>,
    /// The BAR register accesses go through (Linux maps BAR1, iPXE uses BAR0).
    pub(super) bar: u8,
}

impl Rig {
    pub(super) fn new() -> Rig {
        let mem = test_memory(MEM_SIZE);
        let net = Arc::new(LinkNet::default());
        let irq = RecordingIrq::new();
        let clock = Arc::new(FakeClock::new());
        let nic = Rtl8139::new(
            MAC,
            net.clone(),
            mem.clone(),
            clock.clone(),
            irq.clone(),
            TimerKick::none(),
        )
        .unwrap();
        let func = nic.pci_function();
        // pci_enable_device + pci_set_master: I/O, memory, bus master.
        func.lock().unwrap().config_write(4, &[0x07, 0x00]);
        Rig {
            nic,
            func,
            mem,
            net,
            irq,
            clock,
            bar: 1,
        }
    }

    fn read(&self, off: u8, width: usize) -> u32 {
        let mut d = [0u8; 4];
        self.func.lock().unwrap().bar_read(
            RegionId::Bar(self.bar),
            u64::from(off),
            &mut d[..width],
        );
        u32::from_le_bytes(d)
    }

    fn write(&self, off: u8, width: usize, v: u32) {
        let d = v.to_le_bytes();
        self.func
            .lock()
            .unwrap()
            .bar_write(RegionId::Bar(self.bar), u64::from(off), &d[..width]);
    }

    pub(super) fn r8(&self, off: u8) -> u8 {
        self.read(off, 1) as u8
    }
    pub(super) fn r16(&self, off: u8) -> u16 {
        self.read(off, 2) as u16
    }
    pub(super) fn r32(&self, off: u8) -> u32 {
        self.read(off, 4)
    }
    pub(super) fn w8(&self, off: u8, v: u8) {
        self.write(off, 1, u32::from(v))
    }
    pub(super) fn w16(&self, off: u8, v: u16) {
        self.write(off, 2, u32::from(v))
    }
    pub(super) fn w32(&self, off: u8, v: u32) {
        self.write(off, 4, v)
    }

    pub(super) fn put(&self, addr: u64, data: &[u8]) {
        self.mem.write_slice(data, GuestAddress(addr)).unwrap();
    }
    pub(super) fn get(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(addr)).unwrap();
        v
    }
    pub(super) fn put32(&self, addr: u64, v: u32) {
        self.put(addr, &v.to_le_bytes());
    }
    pub(super) fn get32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.get(addr, 4).try_into().unwrap())
    }
    pub(super) fn put64(&self, addr: u64, v: u64) {
        self.put(addr, &v.to_le_bytes());
    }

    /// Linux's `read_eeprom`: one READ command per word, `addr_len` address bits, CS dropped after.
    pub(super) fn linux_read_eeprom(&self, location: u16, addr_len: u32) -> u16 {
        const EE_CS: u8 = 0x08;
        const EE_SK: u8 = 0x04;
        const EE_DI: u8 = 0x02;
        const EE_ENB: u8 = 0x80 | EE_CS;
        let cmd = u32::from(location) | (6 << addr_len);
        self.w8(CR9346, EE_ENB & !EE_CS);
        self.w8(CR9346, EE_ENB);
        self.r8(CR9346);
        for i in (0..=4 + addr_len).rev() {
            let d = if cmd & (1 << i) != 0 { EE_DI } else { 0 };
            self.w8(CR9346, EE_ENB | d);
            self.r8(CR9346);
            self.w8(CR9346, EE_ENB | d | EE_SK);
            self.r8(CR9346);
        }
        self.w8(CR9346, EE_ENB);
        self.r8(CR9346);
        let mut v = 0u16;
        for _ in 0..16 {
            self.w8(CR9346, EE_ENB | EE_SK);
            self.r8(CR9346);
            v = (v << 1) | u16::from(self.r8(CR9346) & 1);
            self.w8(CR9346, EE_ENB);
            self.r8(CR9346);
        }
        self.w8(CR9346, 0);
        v
    }

    /// Linux's probe: the address width from word 0, then the MAC from words 7-9.
    pub(super) fn linux_eeprom_mac(&self) -> [u8; 6] {
        let addr_len = if self.linux_read_eeprom(0, 8) == 0x8129 {
            8
        } else {
            6
        };
        let mut mac = [0u8; 6];
        for i in 0..3 {
            let w = self.linux_read_eeprom(7 + i, addr_len);
            mac[2 * usize::from(i)..2 * usize::from(i) + 2].copy_from_slice(&w.to_le_bytes());
        }
        mac
    }

    /// `rtl8139_chip_reset` / `cp_reset_hw`: RST, then poll until it clears.
    pub(super) fn chip_reset(&self) {
        self.w8(CR, cr::RST);
        let mut polls = 0;
        while self.r8(CR) & cr::RST != 0 {
            polls += 1;
            assert!(polls < 1000, "reset never completes");
        }
    }
}

/// An Ethernet frame.
pub(super) fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A frame of `len` bytes to us whose payload is a pattern seeded by `seed`.
pub(super) fn frame_to_us(len: usize, seed: u8) -> Vec<u8> {
    let payload: Vec<u8> = (0..len.saturating_sub(14))
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    eth(MAC, PEER, 0x88b5, &payload)
}

pub(super) use crate::net::testing::packets::fcs;

/// The multicast filter bit Linux computes for `addr`: `ether_crc(6, addr) >> 26`, bit by bit.
pub(super) fn linux_mc_bit(addr: &[u8; 6]) -> usize {
    let mut crc = 0xffff_ffffu32;
    for &octet in addr {
        let mut o = octet;
        for _ in 0..8 {
            let feedback = ((crc >> 31) as u8 ^ (o & 1)) != 0;
            crc <<= 1;
            if feedback {
                crc ^= 0x04c1_1db7;
            }
            o >>= 1;
        }
    }
    (crc >> 26) as usize
}

/// RFC 1071 checksum over 16-bit big-endian words, summed in a u32 and folded (test's own version).
pub(super) fn inet_sum(parts: &[&[u8]]) -> u16 {
    let mut bytes = Vec::new();
    for p in parts {
        bytes.extend_from_slice(p);
    }
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = 0;
    for w in bytes.chunks(2) {
        sum += u32::from(w[0]) << 8 | u32::from(w[1]);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 + TCP frame (checksums left zero) with the given fields and payload.
pub(super) fn tcp_frame(id: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    let total = (20 + 20 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&id.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut body = ip;
    body.extend_from_slice(&tcp);
    body.extend_from_slice(payload);
    eth(PEER, MAC, 0x0800, &body)
}

/// An IPv4 + UDP frame (checksums zero).
pub(super) fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    let total = (20 + 8 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[4..6].copy_from_slice(&7u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[192, 168, 0, 1]);
    ip[16..20].copy_from_slice(&[192, 168, 0, 2]);
    let mut udp = vec![0u8; 8];
    udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    let mut body = ip;
    body.extend_from_slice(&udp);
    body.extend_from_slice(payload);
    eth(PEER, MAC, 0x0800, &body)
}

/// Checks a TCP/IPv4 frame's IP and TCP checksums the way a receiver would (test's own arithmetic).
pub(super) fn assert_tcp_checksums(f: &[u8]) {
    let ihl = usize::from(f[14] & 0xf) * 4;
    assert_eq!(inet_sum(&[&f[14..14 + ihl]]), 0, "IP header checksum");
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let seg = &f[14 + ihl..14 + total];
    let len = (seg.len() as u16).to_be_bytes();
    let pseudo = [&f[26..34], &[0, 6], &len[..]].concat();
    assert_eq!(inet_sum(&[&pseudo, seg]), 0, "TCP checksum");
}
