//! The ISA NE2000 (`ne2k_isa`): 32 ports at a jumpered base, one ISA IRQ, 16 KiB of packet RAM.
//!
//! [`super::Ne2000::new`] builds it; the integrator inserts it on the port bus
//! (`pio.insert(base, NE2K_PORTS, NE2K_MAX_WIDTH, nic)`) and gives it the ISA line of its IRQ. The ISA bus
//! signals edges; the card's INT pin is a level that rises when an unmasked status bit appears, so driving
//! the line's level (as the 8259 in edge mode samples it) gives the same edges. A second card needs its
//! own port range and IRQ: [`ISA_DEFAULTS`] lists the usual pairs.

/// The usual NE2000 base port.
pub const ISA_DEFAULT_BASE: u16 = 0x300;
/// The usual NE2000 IRQ.
pub const ISA_DEFAULT_IRQ: u32 = 9;
/// Base port and IRQ for the first, second, ... ISA NE2000 (the assignment QEMU's `-net nic,model=ne2k_isa`
/// makes, which Xen HVM guests configured with several ISA NICs saw). IRQs 3 and 4 collide with COM2 and
/// COM1: a machine that has those ports must pick other lines.
pub const ISA_DEFAULTS: [(u16, u32); 6] = [
    (0x300, 9),
    (0x320, 10),
    (0x340, 11),
    (0x360, 3),
    (0x280, 4),
    (0x380, 5),
];
