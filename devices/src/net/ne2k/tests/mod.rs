//! NE2000 tests: guest drivers (Linux's 8390 library with ne.c/ne2k-pci, iPXE's ns8390) replayed against the
//! ports, plus hostile register values. Shared here: port access through a real bus, the two boards on
//! their buses, and frame helpers.

mod dma;
mod hostile;
mod ipxe;
mod isa;
mod linux;
mod linux_driver;
mod pci;

use std::sync::Arc;

use crate::bus::{le_value, put_le_value, Bus};
use crate::irq::RecordingIrq;
use crate::net::testing::RecordingNet;
use crate::pci::testing::PciTestbed;

use super::{Ne2000, Ne2kPci, NE2K_MAX_WIDTH, NE2K_PORTS};

/// The MAC the tests give the cards.
pub const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// Port access at a base, as a guest's `in`/`out`/`rep ins`/`rep outs` do it.
pub struct Io {
    pub bus: Arc<Bus>,
    pub base: u64,
}

impl Io {
    fn port(&self, offset: u8) -> u64 {
        self.base + u64::from(offset)
    }

    pub fn inb(&self, offset: u8) -> u8 {
        let mut d = [0u8; 1];
        self.bus.read(self.port(offset), &mut d);
        d[0]
    }

    pub fn outb(&self, offset: u8, value: u8) {
        self.bus.write(self.port(offset), &[value]);
    }

    pub fn inw(&self, offset: u8) -> u16 {
        let mut d = [0u8; 2];
        self.bus.read(self.port(offset), &mut d);
        le_value(&d) as u16
    }

    pub fn outw(&self, offset: u8, value: u16) {
        let mut d = [0u8; 2];
        put_le_value(&mut d, u64::from(value));
        self.bus.write(self.port(offset), &d);
    }

    pub fn inl(&self, offset: u8) -> u32 {
        let mut d = [0u8; 4];
        self.bus.read(self.port(offset), &mut d);
        le_value(&d) as u32
    }

    pub fn outl(&self, offset: u8, value: u32) {
        self.bus.write(self.port(offset), &value.to_le_bytes());
    }

    /// `rep ins` of `count` elements of `width` bytes.
    pub fn ins(&self, offset: u8, width: usize, count: usize) -> Vec<u8> {
        let mut buf = vec![0u8; width * count];
        self.bus.read_repeated(self.port(offset), width, &mut buf);
        buf
    }

    /// `rep outs` of `data` in elements of `width` bytes.
    pub fn outs(&self, offset: u8, width: usize, data: &[u8]) {
        self.bus.write_repeated(self.port(offset), width, data);
    }
}

/// An ISA NE2000 at 0x300 on a port bus.
pub struct IsaCard {
    pub io: Io,
    pub nic: Arc<Ne2000>,
    pub net: Arc<RecordingNet>,
    pub irq: Arc<RecordingIrq>,
}

pub fn isa_card() -> IsaCard {
    let bus = Arc::new(Bus::new("pio"));
    let net = RecordingNet::new();
    let irq = RecordingIrq::new();
    let nic = Ne2000::new(MAC, net.clone(), irq.clone());
    bus.insert(
        u64::from(super::ISA_DEFAULT_BASE),
        NE2K_PORTS,
        NE2K_MAX_WIDTH,
        nic.clone(),
    )
    .unwrap();
    IsaCard {
        io: Io {
            bus,
            base: u64::from(super::ISA_DEFAULT_BASE),
        },
        nic,
        net,
        irq,
    }
}

/// Where the tests put the PCI card.
pub const PCI_SLOT: u8 = 4;
/// The I/O address the tests give BAR0 (as SeaBIOS would pick).
pub const PCI_IO_BASE: u16 = 0xc100;

/// An RTL8029 in slot 4 of a PCI test bed, BAR0 at 0xC100, I/O decoding on, PIRQs routed like SeaBIOS.
pub struct PciCard {
    pub tb: PciTestbed,
    pub io: Io,
    pub card: Ne2kPci,
    pub net: Arc<RecordingNet>,
    /// The ISA IRQ the card's INTA# reaches.
    pub gsi: u32,
}

pub fn pci_card() -> PciCard {
    let tb = PciTestbed::new();
    let net = RecordingNet::new();
    let card = Ne2kPci::new(MAC, net.clone(), Some(tb.intx_line(PCI_SLOT, 1))).unwrap();
    tb.add(PCI_SLOT, 0, card.function());
    tb.route_pirqs_like_seabios();
    tb.cfg_write(PCI_SLOT, 0, 0x10, 4, u32::from(PCI_IO_BASE) | 1);
    tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 0x0001);
    let link = crate::chipset::piix3::pirq_link(PCI_SLOT, 1).unwrap();
    let gsi = u32::from(tb.piix3.link_irq(link).unwrap());
    PciCard {
        io: Io {
            bus: tb.pio.clone(),
            base: u64::from(PCI_IO_BASE),
        },
        tb,
        card,
        net,
        gsi,
    }
}

/// A frame to `dest` from a fixed peer, EtherType 0x0800, `len` bytes in all, payload bytes counting up from
/// `seed`.
pub fn frame(dest: [u8; 6], len: usize, seed: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dest);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut b = seed;
    while f.len() < len {
        f.push(b);
        b = b.wrapping_add(1);
    }
    f.truncate(len);
    f
}

/// The frame as the NIC stores it: padded to 60 bytes.
pub fn padded(f: &[u8]) -> Vec<u8> {
    let mut p = f.to_vec();
    if p.len() < 60 {
        p.resize(60, 0);
    }
    p
}

/// The Ethernet CRC-32 written out bit by bit (MSB-first shift register fed LSB-first, no final
/// inversion), as the DP8390 hashes multicast destinations and Linux's `ether_crc` computes it. An
/// independent check of [`super::dp8390::multicast_index`].
pub fn ether_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0xffff_ffff;
    for &octet in data {
        let mut byte = octet;
        for _ in 0..8 {
            let top = crc >> 31;
            crc <<= 1;
            if top ^ u32::from(byte & 1) != 0 {
                crc ^= 0x04c1_1db7;
            }
            byte >>= 1;
        }
    }
    crc
}

pub use crate::net::testing::packets::fcs;

#[test]
fn reference_crcs_match_known_values_and_the_model() {
    // The check value of CRC-32/ISO-HDLC, the Ethernet FCS.
    assert_eq!(fcs(b"123456789"), 0xcbf4_3926);
    // The model's multicast hash agrees with the bit-by-bit register for a spread of addresses.
    for n in 0..=255u8 {
        let addr = [0x01, 0x00, 0x5e, n, n.wrapping_mul(7), 0x01];
        let expected = (ether_crc(&addr) >> 26) as usize;
        assert_eq!(
            super::dp8390::multicast_index(&addr),
            expected,
            "{addr:02x?}"
        );
    }
}
