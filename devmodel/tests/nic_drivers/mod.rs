//! Test-side NIC drivers for the no-vCPU machine: each drives its NIC model through the machine's ports and
//! guest RAM in the order its guest driver does (RTL8139 as Linux `8139too` in C mode, NE2000 as Linux
//! `ne2k-pci`/`ne.c`), and implements [`NicDriver`] so that the same DHCP/ARP/ICMP client talks through
//! either. Every wait is bounded.

#![allow(dead_code, clippy::unwrap_used)]

pub mod ne2k;
pub mod rtl8139;

use std::time::{Duration, Instant};

use devmodel::harness::TestMachine;

/// How long a driver waits for the NIC to finish a command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Polls `done` until it holds or [`COMMAND_TIMEOUT`] passes.
pub fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "the NIC never finished: {what}");
        std::thread::yield_now();
    }
}

/// Programs a PCI function as firmware does: BAR0 at the I/O port `io_base`, `mmio` (when given) in BAR1,
/// then I/O, memory and bus-master decoding on.
pub fn enable_pci(m: &TestMachine, slot: u8, io_base: u16, mmio: Option<u32>) {
    m.pci_write32(slot, 0, 0x10, u32::from(io_base) | 1);
    if let Some(addr) = mmio {
        m.pci_write32(slot, 0, 0x14, addr);
    }
    m.pci_write32(slot, 0, 0x04, 0x0007);
}

/// The ISA IRQ SeaBIOS routes the INTA# of `slot` to: PIRQ link `(slot + 1 - 2) & 3`, links A-D on 10, 10,
/// 11, 11. Programs the PIIX3's PIRQ route registers that way and returns the IRQ.
pub fn route_inta(m: &TestMachine, slot: u8) -> u32 {
    const ROUTE: [u8; 4] = [10, 10, 11, 11];
    for (link, irq) in ROUTE.iter().enumerate() {
        m.pci_write8(1, 0, 0x60 + link as u8, *irq);
    }
    let link = usize::from((slot + 1 - 2) & 3);
    u32::from(ROUTE[link])
}
