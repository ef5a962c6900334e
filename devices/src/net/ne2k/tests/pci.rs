//! The RTL8029 as a PCI function: identity, BAR0, INTx through the PIRQ router, reset and snapshots.

use super::linux_driver::{Glue, Linux, EN0_ISR, EN0_TXCR, ENISR_RX};
use super::{frame, pci_card, PCI_IO_BASE, PCI_SLOT};
use crate::net::testing::RecordingNet;
use crate::net::NetReceiver;

use super::super::{Model, Ne2000, Ne2kError, Ne2kPci};

#[test]
fn configuration_space_identifies_an_rtl8029_with_a_32_byte_io_bar() {
    let c = pci_card();
    let tb = &c.tb;
    assert_eq!(tb.cfg_read(PCI_SLOT, 0, 0x00, 4), 0x8029_10ec);
    assert_eq!(tb.cfg_read(PCI_SLOT, 0, 0x08, 4) >> 8, 0x02_00_00);
    assert_eq!(
        tb.cfg_read(PCI_SLOT, 0, 0x0e, 1),
        0,
        "single-function type 0 header"
    );
    assert_eq!(tb.cfg_read(PCI_SLOT, 0, 0x3d, 1), 1, "INTA#");
    // Sizing BAR0 the way firmware does it.
    tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 0);
    tb.cfg_write(PCI_SLOT, 0, 0x10, 4, 0xffff_ffff);
    assert_eq!(tb.cfg_read(PCI_SLOT, 0, 0x10, 4), 0xffff_ffe1);
    for bar in 1..6u8 {
        tb.cfg_write(PCI_SLOT, 0, 0x10 + 4 * bar, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(PCI_SLOT, 0, 0x10 + 4 * bar, 4), 0, "BAR{bar}");
    }
    tb.cfg_write(PCI_SLOT, 0, 0x10, 4, u32::from(PCI_IO_BASE) | 1);
    // With I/O decoding off the ports float; on, the NIC answers (CR after power-on: stopped, DMA aborted).
    assert_eq!(tb.pio_read(u64::from(PCI_IO_BASE), 1), 0xff);
    tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 1);
    assert_eq!(tb.pio_read(u64::from(PCI_IO_BASE), 1), 0x21);
    // The reset port is the last of the 32.
    assert_eq!(tb.pio_read(u64::from(PCI_IO_BASE) + 0x1f, 1), 0);
    assert_eq!(tb.pio_read(u64::from(PCI_IO_BASE) + 0x20, 1), 0xff);
}

#[test]
fn intx_follows_isr_and_imr_and_respects_intx_disable() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    let status = |c: &super::PciCard| c.tb.cfg_read(PCI_SLOT, 0, 0x06, 2) & 0x08;

    // COMMAND.INTX_DISABLE holds the pin low; STATUS.INTERRUPT still shows the condition.
    c.tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 0x0401);
    assert!(c.net.deliver(&frame(super::MAC, 60, 1)));
    assert!(!c.tb.gsi.level(c.gsi));
    assert_eq!(status(&c), 0x08);
    c.tb.cfg_write(PCI_SLOT, 0, 0x04, 2, 0x0001);
    assert!(
        c.tb.gsi.level(c.gsi),
        "re-enabling delivers the pending interrupt"
    );
    c.io.outb(EN0_ISR, ENISR_RX);
    assert!(!c.tb.gsi.level(c.gsi));
    assert_eq!(status(&c), 0);
}

#[test]
fn platform_reset_returns_function_and_nic_to_power_on() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    assert!(c.net.deliver(&frame(super::MAC, 60, 1)));
    assert!(c.tb.gsi.level(c.gsi));
    c.card.reset();
    assert!(!c.tb.gsi.level(c.gsi));
    assert_eq!(c.tb.cfg_read(PCI_SLOT, 0, 0x04, 2), 0, "decoding off");
    assert_eq!(c.tb.cfg_read(PCI_SLOT, 0, 0x10, 4), 1, "BAR0 unassigned");
    let state = c.card.snapshot();
    assert_eq!(state.nic.regs.cr, 0x21);
    assert_eq!(state.nic.regs.isr, 0x80);
    assert!(state.nic.ram.iter().all(|&b| b == 0));
    assert!(!c.card.nic().can_receive());
}

#[test]
fn a_snapshot_carries_unread_frames_to_a_new_card() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    let frames: Vec<Vec<u8>> = (0..5u8).map(|n| frame(super::MAC, 900, n)).collect();
    for f in &frames {
        assert!(c.net.deliver(f));
    }
    let state = c.card.snapshot();
    let current_page = drv.current_page;

    // A second machine, the same configuration, restored from the snapshot.
    let d = pci_card();
    d.card.restore(state.clone()).unwrap();
    d.tb.root
        .refresh(crate::pci::PciAddress::new(0, PCI_SLOT, 0).unwrap());
    assert!(d.tb.gsi.level(d.gsi), "the pending PRX is re-driven");
    let mut drv2 = Linux::new(&d.io, Glue::Pci32);
    drv2.dev_addr = super::MAC;
    drv2.current_page = current_page;
    drv2.interrupt();
    assert_eq!(drv2.received, frames);
    assert_eq!(d.card.snapshot().config, state.config);

    // A snapshot of the other board, or with another RAM size, is refused.
    let isa = Ne2000::new(
        super::MAC,
        RecordingNet::new(),
        crate::irq::RecordingIrq::new(),
    );
    assert_eq!(
        isa.restore(state.nic.clone()),
        Err(Ne2kError::Model {
            snapshot: Model::Rtl8029,
            device: Model::Ne2000Isa
        })
    );
    let mut short = state.nic.clone();
    short.ram.truncate(100);
    assert_eq!(
        d.card.nic().restore(short),
        Err(Ne2kError::RamSize {
            snapshot: 100,
            device: 32 * 1024
        })
    );
}

#[test]
fn the_rtl8029_packet_ram_is_32_kib() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.probe_pci().unwrap();
    drv.init(true);
    // A ring in the upper 16 KiB, which only the PCI board has: 0x80-0xC0.
    c.io.outb(0, 0x21);
    drv.rx_start_page = 0x80;
    drv.stop_page = 0xc0;
    drv.init(true);
    c.io.outb(EN0_TXCR, 0);
    let f = frame(super::MAC, 700, 3);
    assert!(c.net.deliver(&f));
    drv.interrupt();
    assert_eq!(drv.received, vec![f]);
    // Without an INTx line the card still works; it just cannot interrupt.
    let quiet = Ne2kPci::new(super::MAC, RecordingNet::new(), None).unwrap();
    assert_eq!(quiet.nic().model(), Model::Rtl8029);
}
