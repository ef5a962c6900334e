//! The RTL8139C+ register file: offsets, bits, the serialisable register state and the decoding of
//! guest accesses of any width into register reads and writes.
//!
//! Registers are 1, 2 or 4 bytes wide at fixed offsets of the 256-byte window (the same in the I/O and
//! the memory BAR). A guest may access them with any width: an access is split into the registers it
//! touches, and each touched register sees a read, or a write of the merged value with a mask of the
//! bytes written (so that a byte write to a word register behaves as a read-modify-write, and a byte
//! write to ISR clears only bits of that byte).

use serde::{Deserialize, Serialize};

use super::eeprom::Eeprom;

// Register offsets (C mode names; the C+ aliases share offsets).
/// ID registers (MAC address), six bytes.
pub const IDR0: u8 = 0x00;
/// Multicast hash filter, eight bytes.
pub const MAR0: u8 = 0x08;
/// Transmit status of descriptor 0-3 (C mode); in C+ mode DTCCR, the tally dump command at 0x10-0x17.
pub const TSD0: u8 = 0x10;
/// Transmit start address 0-3 (C mode); in C+ mode TNPDS (0x20) and THPDS (0x28), 64 bits each.
pub const TSAD0: u8 = 0x20;
/// C+ normal-priority transmit ring address.
pub const TNPDS: u8 = 0x20;
/// C+ high-priority transmit ring address.
pub const THPDS: u8 = 0x28;
/// Receive buffer start address.
pub const RBSTART: u8 = 0x30;
/// Early receive byte count (no early receive here: 0).
pub const ERBCR: u8 = 0x34;
/// Early receive status.
pub const ERSR: u8 = 0x36;
/// Command register.
pub const CR: u8 = 0x37;
/// Current address of packet read (the driver's read pointer, minus 16).
pub const CAPR: u8 = 0x38;
/// Current buffer address (the chip's write offset).
pub const CBR: u8 = 0x3a;
/// Interrupt mask.
pub const IMR: u8 = 0x3c;
/// Interrupt status.
pub const ISR: u8 = 0x3e;
/// Transmit configuration.
pub const TCR: u8 = 0x40;
/// Receive configuration.
pub const RCR: u8 = 0x44;
/// Timer count (33 MHz free-running counter).
pub const TCTR: u8 = 0x48;
/// Missed packet counter (24 bits).
pub const MPC: u8 = 0x4c;
/// 93C46 command register.
pub const CR9346: u8 = 0x50;
/// Configuration register 0.
pub const CONFIG0: u8 = 0x51;
/// Configuration register 1.
pub const CONFIG1: u8 = 0x52;
/// Timer interrupt register.
pub const TIMER_INT: u8 = 0x54;
/// Media status.
pub const MSR: u8 = 0x58;
/// Configuration register 3.
pub const CONFIG3: u8 = 0x59;
/// Configuration register 4.
pub const CONFIG4: u8 = 0x5a;
/// Halt clock ('R' runs, 'H' halts).
pub const HLTCLK: u8 = 0x5b;
/// Multiple interrupt select.
pub const MULINT: u8 = 0x5c;
/// PCI revision ID, as a register.
pub const RERID: u8 = 0x5e;
/// Transmit status of all descriptors.
pub const TSAD_SUMMARY: u8 = 0x60;
/// PHY basic mode control.
pub const BMCR: u8 = 0x62;
/// PHY basic mode status.
pub const BMSR: u8 = 0x64;
/// Auto-negotiation advertisement.
pub const ANAR: u8 = 0x66;
/// Auto-negotiation link partner ability.
pub const ANLPAR: u8 = 0x68;
/// Auto-negotiation expansion.
pub const ANER: u8 = 0x6a;
/// Chip status and configuration (link bits).
pub const CSCR: u8 = 0x74;
/// Configuration register 5.
pub const CONFIG5: u8 = 0xd8;
/// C+ transmit poll.
pub const TPPOLL: u8 = 0xd9;
/// C+ maximum receive packet size.
pub const RX_MAX_SIZE: u8 = 0xda;
/// C+ command register.
pub const CPCR: u8 = 0xe0;
/// C+ interrupt mitigation.
pub const INTR_MITIGATE: u8 = 0xe2;
/// C+ receive descriptor ring address (64 bits).
pub const RDSAR: u8 = 0xe4;
/// C+ early transmit threshold.
pub const ETTHR: u8 = 0xec;

/// CR bits.
pub mod cr {
    /// Software reset (self-clearing).
    pub const RST: u8 = 0x10;
    /// Receiver enable.
    pub const RE: u8 = 0x08;
    /// Transmitter enable.
    pub const TE: u8 = 0x04;
    /// Receive buffer empty (read-only).
    pub const BUFE: u8 = 0x01;
}

/// ISR/IMR bits.
pub mod int {
    /// Receive OK.
    pub const ROK: u16 = 1 << 0;
    /// Receive error.
    pub const RER: u16 = 1 << 1;
    /// Transmit OK.
    pub const TOK: u16 = 1 << 2;
    /// Transmit error.
    pub const TER: u16 = 1 << 3;
    /// C mode: receive buffer overflow; C+ mode: receive descriptor unavailable.
    pub const RXOVW: u16 = 1 << 4;
    /// Packet underrun / link change.
    pub const LINK_CHG: u16 = 1 << 5;
    /// Receive FIFO overflow.
    pub const FOVW: u16 = 1 << 6;
    /// C+ transmit descriptor unavailable.
    pub const TDU: u16 = 1 << 7;
    /// C+ software interrupt.
    pub const SW_INT: u16 = 1 << 8;
    /// Cable length change.
    pub const LEN_CHG: u16 = 1 << 13;
    /// Timer (TCTR reached TimerInt).
    pub const TIMEOUT: u16 = 1 << 14;
    /// System error (a DMA master abort here).
    pub const SERR: u16 = 1 << 15;
    /// Bits that exist (9-12 are reserved).
    pub const ALL: u16 = 0xe1ff;
}

/// TSD bits (C mode).
pub mod tsd {
    /// Frame size.
    pub const SIZE: u32 = 0x1fff;
    /// The host owns the descriptor again (DMA of the frame done).
    pub const OWN: u32 = 1 << 13;
    /// FIFO underrun.
    pub const TUN: u32 = 1 << 14;
    /// Transmit OK.
    pub const TOK: u32 = 1 << 15;
    /// Early transmit threshold.
    pub const ERTXTH: u32 = 0x3f << 16;
    /// Transmit aborted.
    pub const TABT: u32 = 1 << 30;
    /// Carrier sense lost.
    pub const CRS: u32 = 1 << 31;
}

/// RCR bits.
pub mod rcr {
    /// Accept all frames with a physical (unicast) destination.
    pub const AAP: u32 = 1 << 0;
    /// Accept frames to our own address.
    pub const APM: u32 = 1 << 1;
    /// Accept multicast frames that pass the hash filter.
    pub const AM: u32 = 1 << 2;
    /// Accept broadcast frames.
    pub const AB: u32 = 1 << 3;
    /// Do not wrap frames at the end of the ring (write past it instead).
    pub const WRAP: u32 = 1 << 7;
    /// Shift of the 2-bit ring length (8K << n).
    pub const RBLEN_SHIFT: u32 = 11;
    /// Bits the guest can write (bit 6 says which EEPROM is fitted: 0, a 93C46).
    pub const WRITABLE: u32 = 0x0f03_ffbf;
}

/// TCR bits.
pub mod tcr {
    /// Loopback mode (both bits).
    pub const LOOPBACK: u32 = 3 << 17;
    /// Hardware version bits of an RTL8139C+ (bits 30-26, 23-22 = 1110110).
    pub const VERSION_8139CPLUS: u32 = 0x7480_0000;
    /// Bits the guest can write: IFG, loopback, CRC, MXDMA, retry count.
    pub const WRITABLE: u32 = 0x0307_07f0;
}

/// CpCmd (C+ command) bits.
pub mod cpcr {
    /// Strip received VLAN tags into the descriptor.
    pub const RX_VLAN: u16 = 1 << 6;
    /// Check received IP/TCP/UDP checksums.
    pub const RX_CHKSUM: u16 = 1 << 5;
    /// C+ receive enable.
    pub const RX_ON: u16 = 1 << 1;
    /// C+ transmit enable.
    pub const TX_ON: u16 = 1 << 0;
    /// Bits the guest can write.
    pub const WRITABLE: u16 = 0x007b;
}

/// 9346CR modes (bits 7-6).
pub mod cr9346 {
    /// Normal operation.
    pub const NORMAL: u8 = 0;
    /// Reload the EEPROM and reset.
    pub const AUTOLOAD: u8 = 1;
    /// Drive the EEPROM pins.
    pub const PROGRAM: u8 = 2;
    /// Configuration registers writable.
    pub const CONFIG_WRITE: u8 = 3;
    /// EECS pin.
    pub const EECS: u8 = 0x08;
    /// EESK pin.
    pub const EESK: u8 = 0x04;
    /// EEDI pin.
    pub const EEDI: u8 = 0x02;
    /// EEDO pin (read-only).
    pub const EEDO: u8 = 0x01;
}

/// TPPOLL bits.
pub mod tppoll {
    /// Poll the high-priority ring.
    pub const HPQ: u8 = 1 << 7;
    /// Poll the normal-priority ring.
    pub const NPQ: u8 = 1 << 6;
    /// Raise the software interrupt.
    pub const FSW_INT: u8 = 1 << 0;
}

/// PHY register values.
pub mod phy {
    /// BMCR at reset: 100 Mb/s, auto-negotiation on, full duplex.
    pub const BMCR_DEFAULT: u16 = 0x3100;
    /// BMCR reset (self-clearing).
    pub const BMCR_RESET: u16 = 0x8000;
    /// BMCR bits writable only with 9346CR in config-write mode: speed, auto-negotiation, duplex.
    pub const BMCR_LOCKED: u16 = 0x3100;
    /// BMCR bits always writable: loopback, power down, isolate.
    pub const BMCR_FREE: u16 = 0x4c00;
    /// BMSR without link: 100BASE-TX/10BASE-T full/half, auto-negotiation able, extended capability.
    pub const BMSR_BASE: u16 = 0x7809;
    /// BMSR link status.
    pub const BMSR_LINK: u16 = 0x0004;
    /// BMSR auto-negotiation complete.
    pub const BMSR_AN_DONE: u16 = 0x0020;
    /// ANAR at reset: all 10/100 modes, flow control, IEEE 802.3.
    pub const ANAR_DEFAULT: u16 = 0x05e1;
    /// ANLPAR with a link: the partner offers the same, with acknowledge.
    pub const ANLPAR_LINK: u16 = 0x45e1;
    /// ANER: the partner is auto-negotiation able.
    pub const ANER_DEFAULT: u16 = 0x0001;
    /// CSCR link OK.
    pub const CSCR_LINK_OK: u16 = 0x0400;
    /// CSCR link changed (cleared by reading CSCR).
    pub const CSCR_LINK_CHANGE: u16 = 0x0800;
    /// CSCR at reset (LD, heartbeat, F_LINK_100).
    pub const CSCR_BASE: u16 = 0x0340;
    /// MSR without link bits: aux power, receive/transmit flow control.
    pub const MSR_BASE: u8 = 0xd0;
    /// MSR link fail.
    pub const MSR_LINKB: u8 = 0x04;
    /// MSR 10 Mb/s.
    pub const MSR_SPEED_10: u8 = 0x08;
}

/// The register bytes an access at `offset` touches: `(base, size)` of the register holding `offset`.
pub fn register_at(offset: u8) -> (u8, u8) {
    match offset {
        0x10..=0x33 | 0x40..=0x4f | 0x54..=0x57 | 0xe4..=0xeb => (offset & !3, 4),
        0x34 | 0x35 | 0x38..=0x3f | 0x5c | 0x5d | 0x60..=0x75 | 0xda | 0xdb | 0xe0..=0xe3 => {
            (offset & !1, 2)
        }
        _ => (offset, 1),
    }
}

/// The C+ tally counters, dumped to guest memory by DTCCR.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub tx_ok: u64,
    pub rx_ok: u64,
    pub tx_err: u64,
    pub rx_err: u32,
    pub missed: u16,
    pub frame_align: u16,
    pub tx_one_collision: u32,
    pub tx_multi_collision: u32,
    pub rx_ok_physical: u64,
    pub rx_ok_broadcast: u64,
    pub rx_ok_multicast: u32,
    pub tx_abort: u16,
    pub tx_underrun: u16,
}

impl Tally {
    /// The 64-byte little-endian dump layout.
    pub fn to_bytes(self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let mut put = |at: usize, v: &[u8]| {
            if let Some(d) = b.get_mut(at..at + v.len()) {
                d.copy_from_slice(v);
            }
        };
        put(0, &self.tx_ok.to_le_bytes());
        put(8, &self.rx_ok.to_le_bytes());
        put(16, &self.tx_err.to_le_bytes());
        put(24, &self.rx_err.to_le_bytes());
        put(28, &self.missed.to_le_bytes());
        put(30, &self.frame_align.to_le_bytes());
        put(32, &self.tx_one_collision.to_le_bytes());
        put(36, &self.tx_multi_collision.to_le_bytes());
        put(40, &self.rx_ok_physical.to_le_bytes());
        put(48, &self.rx_ok_broadcast.to_le_bytes());
        put(56, &self.rx_ok_multicast.to_le_bytes());
        put(60, &self.tx_abort.to_le_bytes());
        put(62, &self.tx_underrun.to_le_bytes());
        b
    }
}

/// Every guest-visible register, as saved in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regs {
    pub idr: [u8; 6],
    pub mar: [u8; 8],
    pub tsd: [u32; 4],
    pub tsad: [u32; 4],
    pub rbstart: u32,
    /// CR's RE and TE bits.
    pub cr: u8,
    /// The driver's read offset in the receive ring (CAPR + 16, modulo the ring size).
    pub rx_read: u32,
    /// The chip's write offset in the receive ring (CBR).
    pub rx_write: u32,
    pub imr: u16,
    pub isr: u16,
    pub tcr: u32,
    pub rcr: u32,
    /// Machine time at which TCTR was 0.
    pub tctr_base_ns: u64,
    pub timer_int: u32,
    /// When TCTR next equals TimerInt (None while TimerInt is 0).
    pub timer_deadline_ns: Option<u64>,
    pub mpc: u32,
    /// 9346CR: mode in bits 7-6, the last pin levels written in bits 3-1.
    pub cr9346: u8,
    pub config0: u8,
    pub config1: u8,
    pub config3: u8,
    pub config4: u8,
    pub config5: u8,
    pub clock_running: bool,
    pub mulint: u16,
    pub bmcr: u16,
    pub anar: u16,
    pub link_up: bool,
    /// CSCR's link-change bit.
    pub link_changed: bool,
    pub cpcr: u16,
    /// Whether CpCmd was written since reset: TSD0-3 are then DTCCR.
    pub cplus: bool,
    pub intr_mitigate: u16,
    pub rx_max_size: u16,
    pub tx_thresh: u8,
    pub rdsar: u64,
    /// Next C-mode transmit descriptor (0-3).
    pub tx_next: u8,
    /// Next C+ transmit descriptor of the normal and the high-priority ring.
    pub cp_tx_next: [u8; 2],
    /// Next C+ receive descriptor.
    pub cp_rx_next: u8,
    pub tally: Tally,
    pub eeprom: Eeprom,
}

impl Regs {
    /// Power-on values, with IDR loaded from the EEPROM.
    pub fn power_on(eeprom: Eeprom, link_up: bool) -> Regs {
        let mut r = Regs {
            idr: eeprom.mac(),
            mar: [0; 8],
            tsd: [tsd::OWN; 4],
            tsad: [0; 4],
            rbstart: 0,
            cr: 0,
            rx_read: 0,
            rx_write: 0,
            imr: 0,
            isr: 0,
            tcr: 0,
            rcr: 0,
            tctr_base_ns: 0,
            timer_int: 0,
            timer_deadline_ns: None,
            mpc: 0,
            cr9346: 0,
            config0: 0,
            // I/O and memory mapping available.
            config1: 0x0c,
            // Fast back-to-back capable.
            config3: 0x01,
            config4: 0,
            config5: 0,
            clock_running: true,
            mulint: 0,
            bmcr: phy::BMCR_DEFAULT,
            anar: phy::ANAR_DEFAULT,
            link_up,
            link_changed: false,
            cpcr: 0,
            cplus: false,
            intr_mitigate: 0,
            rx_max_size: 0,
            tx_thresh: 0,
            rdsar: 0,
            tx_next: 0,
            cp_tx_next: [0; 2],
            cp_rx_next: 0,
            tally: Tally::default(),
            eeprom,
        };
        r.soft_reset();
        r
    }

    /// CR.RST: transmitter and receiver off, ring pointers and descriptors back to their start,
    /// interrupts masked and clear, C+ mode off. IDR, MAR, TCR, RCR, the configuration registers and the
    /// PHY keep their values (the datasheet: a software reset leaves IDR, MAR and PCI configuration alone).
    pub fn soft_reset(&mut self) {
        self.tsd = [tsd::OWN; 4];
        self.cr = 0;
        self.rx_read = 0;
        self.rx_write = 0;
        self.imr = 0;
        self.isr = 0;
        self.tx_next = 0;
        self.cp_tx_next = [0; 2];
        self.cp_rx_next = 0;
        self.cpcr = 0;
        self.cplus = false;
        self.rdsar = 0;
    }

    /// The receive ring length in C mode: 8, 16, 32 or 64 KiB.
    pub fn ring_size(&self) -> u32 {
        8192 << ((self.rcr >> rcr::RBLEN_SHIFT) & 3)
    }

    /// Whether a frame that reaches the end of the ring continues past it (RCR.WRAP; not with 64 KiB).
    pub fn writes_past_end(&self) -> bool {
        self.rcr & rcr::WRAP != 0 && self.ring_size() < 65536
    }

    /// Repairs values a snapshot could carry that the chip never produces.
    pub fn sanitize(&mut self) {
        let size = self.ring_size();
        self.rx_read %= size;
        self.rx_write %= size;
        self.tx_next %= 4;
        self.cp_tx_next = self.cp_tx_next.map(|n| n % super::cplus::RING_MAX as u8);
        self.cp_rx_next %= super::cplus::RING_MAX as u8;
        self.isr &= int::ALL;
        self.imr &= int::ALL;
        self.mpc &= 0x00ff_ffff;
        self.eeprom.sanitize();
    }
}
