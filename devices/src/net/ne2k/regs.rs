//! DP8390 register offsets and bits, and the NE2000 port layout around them.
//!
//! The DP8390 has 16 byte-wide registers per page; offset 0 is the command register (CR) on every page and
//! CR.PS1/PS0 select which of pages 0-3 offsets 1-15 reach. Many page-0 offsets are different registers for
//! reads and writes (e.g. offset 1 writes PSTART, reads CLDA0).

/// Command register, on every page.
pub const CR: u8 = 0x00;

/// Page 0, write side.
pub mod p0w {
    /// Receive ring first page.
    pub const PSTART: u8 = 0x01;
    /// Receive ring end page (exclusive).
    pub const PSTOP: u8 = 0x02;
    /// Boundary: the last ring page the host has read.
    pub const BNRY: u8 = 0x03;
    /// Transmit page start.
    pub const TPSR: u8 = 0x04;
    /// Transmit byte count, low byte.
    pub const TBCR0: u8 = 0x05;
    /// Transmit byte count, high byte.
    pub const TBCR1: u8 = 0x06;
    /// Interrupt status; writing 1s clears bits.
    pub const ISR: u8 = 0x07;
    /// Remote start address, low byte.
    pub const RSAR0: u8 = 0x08;
    /// Remote start address, high byte.
    pub const RSAR1: u8 = 0x09;
    /// Remote byte count, low byte.
    pub const RBCR0: u8 = 0x0a;
    /// Remote byte count, high byte.
    pub const RBCR1: u8 = 0x0b;
    /// Receive configuration.
    pub const RCR: u8 = 0x0c;
    /// Transmit configuration.
    pub const TCR: u8 = 0x0d;
    /// Data configuration.
    pub const DCR: u8 = 0x0e;
    /// Interrupt mask.
    pub const IMR: u8 = 0x0f;
}

/// Page 0, read side.
pub mod p0r {
    /// Current local DMA address, low byte.
    pub const CLDA0: u8 = 0x01;
    /// Current local DMA address, high byte.
    pub const CLDA1: u8 = 0x02;
    /// Boundary.
    pub const BNRY: u8 = 0x03;
    /// Transmit status.
    pub const TSR: u8 = 0x04;
    /// Number of collisions of the last transmission.
    pub const NCR: u8 = 0x05;
    /// The loopback FIFO.
    pub const FIFO: u8 = 0x06;
    /// Interrupt status.
    pub const ISR: u8 = 0x07;
    /// Current remote DMA address, low byte.
    pub const CRDA0: u8 = 0x08;
    /// Current remote DMA address, high byte.
    pub const CRDA1: u8 = 0x09;
    /// Reserved on the DP8390; the RTL8029's chip ID 'P'.
    pub const ID0: u8 = 0x0a;
    /// Reserved on the DP8390; the RTL8029's chip ID 'C'.
    pub const ID1: u8 = 0x0b;
    /// Receive status.
    pub const RSR: u8 = 0x0c;
    /// Tally: frame alignment errors.
    pub const CNTR0: u8 = 0x0d;
    /// Tally: CRC errors.
    pub const CNTR1: u8 = 0x0e;
    /// Tally: missed packets.
    pub const CNTR2: u8 = 0x0f;
}

/// Page 1 (read and write).
pub mod p1 {
    /// Physical address, first byte (PAR0-PAR5 at 1-6).
    pub const PAR0: u8 = 0x01;
    /// Current page: where the next received frame goes.
    pub const CURR: u8 = 0x07;
    /// Multicast hash filter, first byte (MAR0-MAR7 at 8-15).
    pub const MAR0: u8 = 0x08;
}

/// Page 2 (read side: the page-0 write-only registers, for diagnostics).
pub mod p2r {
    /// PSTART.
    pub const PSTART: u8 = 0x01;
    /// PSTOP.
    pub const PSTOP: u8 = 0x02;
    /// Remote next packet pointer.
    pub const RNPP: u8 = 0x03;
    /// TPSR.
    pub const TPSR: u8 = 0x04;
    /// Local next packet pointer.
    pub const LNPP: u8 = 0x05;
    /// Local address counter, high byte.
    pub const ADDR_HI: u8 = 0x06;
    /// Local address counter, low byte.
    pub const ADDR_LO: u8 = 0x07;
    /// RCR.
    pub const RCR: u8 = 0x0c;
    /// TCR.
    pub const TCR: u8 = 0x0d;
    /// DCR.
    pub const DCR: u8 = 0x0e;
    /// IMR.
    pub const IMR: u8 = 0x0f;
}

/// Command register bits.
pub mod cr {
    /// Stop: the NIC goes off line (ISR.RST is set).
    pub const STP: u8 = 0x01;
    /// Start.
    pub const STA: u8 = 0x02;
    /// Transmit the packet at TPSR, TBCR bytes long.
    pub const TXP: u8 = 0x04;
    /// Remote DMA command field (RD2-RD0).
    pub const RD_MASK: u8 = 0x38;
    /// RD = 001: remote read.
    pub const RD_READ: u8 = 0x08;
    /// RD = 010: remote write.
    pub const RD_WRITE: u8 = 0x10;
    /// RD = 011: send packet.
    pub const RD_SEND: u8 = 0x18;
    /// RD = 1xx: abort or complete remote DMA.
    pub const RD_ABORT: u8 = 0x20;
    /// Page select field (PS1-PS0).
    pub const PS_MASK: u8 = 0xc0;
    /// Shift of the page select field.
    pub const PS_SHIFT: u8 = 6;
}

/// Interrupt status and mask bits (the mask has no RST bit).
pub mod isr {
    /// Packet received.
    pub const PRX: u8 = 0x01;
    /// Packet transmitted.
    pub const PTX: u8 = 0x02;
    /// Receive error.
    pub const RXE: u8 = 0x04;
    /// Transmit error (aborted).
    pub const TXE: u8 = 0x08;
    /// Receive ring overwrite warning: a frame did not fit.
    pub const OVW: u8 = 0x10;
    /// A tally counter's top bit is set.
    pub const CNT: u8 = 0x20;
    /// Remote DMA complete.
    pub const RDC: u8 = 0x40;
    /// The NIC is in the reset (stopped) state. Not maskable, not cleared by writes.
    pub const RST: u8 = 0x80;
    /// The bits IMR can enable and ISR writes can clear.
    pub const MASKABLE: u8 = 0x7f;
}

/// Data configuration bits.
pub mod dcr {
    /// Word transfer select: remote DMA moves 16-bit words.
    pub const WTS: u8 = 0x01;
    /// Byte order select: the even byte goes on the high lane (big-endian).
    pub const BOS: u8 = 0x02;
    /// Writable bits (bit 7 is reserved).
    pub const MASK: u8 = 0x7f;
}

/// Transmit configuration bits.
pub mod tcr {
    /// Inhibit CRC generation.
    pub const CRC: u8 = 0x01;
    /// Loopback mode field: 00 normal, 01 internal, 10 through the ENDEC, 11 external.
    pub const LB_MASK: u8 = 0x06;
    /// LB = 01: internal loopback (Linux's "transmitter off").
    pub const LB_INTERNAL: u8 = 0x02;
    /// LB = 11: external loopback; the frame does reach the wire.
    pub const LB_EXTERNAL: u8 = 0x06;
    /// Writable bits.
    pub const MASK: u8 = 0x1f;
}

/// Receive configuration bits.
pub mod rcr {
    /// Save errored packets.
    pub const SEP: u8 = 0x01;
    /// Accept runt packets.
    pub const AR: u8 = 0x02;
    /// Accept broadcast.
    pub const AB: u8 = 0x04;
    /// Accept multicast (through the MAR hash).
    pub const AM: u8 = 0x08;
    /// Promiscuous physical: accept every unicast destination.
    pub const PRO: u8 = 0x10;
    /// Monitor: check frames but store none (they count as missed).
    pub const MON: u8 = 0x20;
    /// Writable bits.
    pub const MASK: u8 = 0x3f;
}

/// Receive status bits (also the first byte of each ring header).
pub mod rsr {
    /// Packet received intact.
    pub const PRX: u8 = 0x01;
    /// Missed packet: no room in the ring, or monitor mode.
    pub const MPA: u8 = 0x10;
    /// The destination was multicast or broadcast.
    pub const PHY: u8 = 0x20;
}

/// Transmit status bits.
pub mod tsr {
    /// Packet transmitted.
    pub const PTX: u8 = 0x01;
    /// Transmission aborted.
    pub const ABT: u8 = 0x08;
}

/// NE2000 board port offsets (from the I/O base).
pub mod port {
    /// Number of ports the board decodes.
    pub const COUNT: u64 = 0x20;
    /// First DP8390 register (CR); the registers are offsets 0x00-0x0F.
    pub const NIC_END: u64 = 0x10;
    /// The data port: offsets 0x10-0x17 all reach it (drivers use 0x10).
    pub const DATA: u64 = 0x10;
    /// The reset port: offsets 0x18-0x1F all reach it (drivers use 0x1F). Reading it resets the board.
    pub const RESET: u64 = 0x18;
}
