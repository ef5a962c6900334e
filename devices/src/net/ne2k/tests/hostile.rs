//! Hostile and malformed values: ring registers, remote DMA addresses and counts, transmit counts and pages,
//! back-end frames, and a long random walk over all of them. Nothing may panic, and nothing outside the
//! packet RAM may change.

use std::sync::Arc;

use super::linux_driver::*;
use super::{frame, isa_card, pci_card, IsaCard, MAC};
use crate::net::NetReceiver;

use super::super::dp8390::RAM_BASE;

fn started(c: &IsaCard) -> Linux<'_> {
    let mut drv = Linux::new(&c.io, Glue::Isa16);
    drv.dev_addr = MAC;
    drv.init(true);
    drv
}

fn set_ring(c: &IsaCard, pstart: u8, pstop: u8, curr: u8) {
    c.io.outb(CMD, NODMA | PAGE0 | START);
    c.io.outb(EN0_STARTPG, pstart);
    c.io.outb(EN0_STOPPG, pstop);
    c.io.outb(CMD, NODMA | PAGE1 | START);
    c.io.outb(EN1_CURPAG, curr);
    c.io.outb(CMD, NODMA | PAGE0 | START);
}

#[test]
fn unusable_rings_store_nothing_and_count_the_drops() {
    let c = isa_card();
    let _drv = started(&c);
    let before = c.nic.state().ram;
    for (pstart, pstop, curr, what) in [
        (0x60, 0x60, 0x60, "PSTART == PSTOP"),
        (0x70, 0x50, 0x60, "PSTART > PSTOP"),
        (0x4c, 0x90, 0x4c, "PSTOP beyond the 16 KiB"),
        (0x20, 0x60, 0x30, "PSTART below the RAM"),
        (0x4c, 0x80, 0x90, "CURR above the ring"),
        (0x4c, 0x80, 0x40, "CURR below the ring"),
        (0x00, 0xff, 0x10, "the whole address space"),
    ] {
        set_ring(&c, pstart, pstop, curr);
        assert!(!c.nic.can_receive(), "{what}");
        assert!(!c.net.deliver(&frame(MAC, 1514, 1)), "{what}");
    }
    assert_eq!(c.nic.counters().rx_dropped_bad_ring, 7);
    assert_eq!(c.nic.state().ram, before, "no byte written");
    assert_eq!(c.io.inb(EN0_ISR) & ENISR_OVER, 0, "not an overflow");
    // A ring of two pages is valid but never has room for a frame: overflow, not a bad ring.
    set_ring(&c, 0x70, 0x72, 0x70);
    assert!(!c.net.deliver(&frame(MAC, 60, 1)));
    assert_eq!(c.nic.counters().rx_dropped_ring_full, 1);
    // BNRY outside the ring counts as the page before PSTART.
    set_ring(&c, 0x4c, 0x80, 0x4c);
    c.io.outb(EN0_BOUNDARY, 0x10);
    assert!(c.nic.can_receive());
    assert!(c.net.deliver(&frame(MAC, 60, 1)));
}

#[test]
fn remote_dma_past_the_ram_floats_and_wraps_within_16_bits() {
    let c = isa_card();
    let drv = started(&c);
    let before = c.nic.state().ram;
    // A write of 64 bytes starting 16 bytes before the end of the 16 KiB: only those 16 land.
    c.io.outb(EN0_ISR, 0xff);
    c.io.outb(EN0_RCNTLO, 64);
    c.io.outb(EN0_RCNTHI, 0);
    c.io.outb(EN0_RSARLO, 0xf0);
    c.io.outb(EN0_RSARHI, 0x7f);
    c.io.outb(CMD, RWRITE | START);
    // The ring (0x4C-0x80) would wrap the address at 0x8000; move PSTOP out of the way first.
    c.io.outb(CMD, NODMA | PAGE0 | START);
    c.io.outb(EN0_STOPPG, 0x7c);
    c.io.outb(CMD, RWRITE | START);
    c.io.outs(NE_DATAPORT, 2, &[0xab; 64]);
    assert_eq!(c.io.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    let after = c.nic.state().ram;
    let end = after.len();
    assert_eq!(&after[end - 16..], &[0xab; 16]);
    assert_eq!(&after[..end - 16], &before[..end - 16]);
    // Reading 0xFFF0 onwards: 16 bytes of nothing, then the address wraps to the PROM at 0.
    let bytes = drv.block_input(48, 0xfff0);
    assert_eq!(&bytes[..16], &[0xff; 16]);
    assert_eq!(
        &bytes[16..22],
        &[MAC[0], MAC[0], MAC[1], MAC[1], MAC[2], MAC[2]]
    );
    // The PROM ignores writes.
    drv.block_output(&[0; 32], 0x00).unwrap();
    assert_eq!(&drv.block_input(2, 0)[..], &[MAC[0], MAC[0]]);
    // A 64 KiB count over undecoded space ends normally.
    c.io.outb(EN0_RCNTLO, 0xff);
    c.io.outb(EN0_RCNTHI, 0xff);
    c.io.outb(EN0_RSARLO, 0);
    c.io.outb(EN0_RSARHI, 0x90);
    c.io.outb(CMD, RREAD | START);
    let junk = c.io.ins(NE_DATAPORT, 4, 0x4000);
    assert_eq!(junk.len(), 0x10000);
    assert_eq!(c.io.inb(EN0_ISR) & ENISR_RDC, ENISR_RDC);
    assert_eq!(c.nic.state().ram.len(), 16 * 1024);
}

#[test]
fn bad_transmit_counts_and_pages_abort_with_txe() {
    let c = isa_card();
    let mut drv = started(&c);
    for (tpsr, tbcr, what) in [
        (0x40u8, 0u16, "zero bytes"),
        (0x40, 1519, "longer than MAX_FRAME"),
        (0x40, 0xffff, "64 KiB"),
        (0x00, 300, "the PROM page"),
        (0x7f, 300, "running off the end of the RAM"),
        (0xff, 60, "undecoded space"),
    ] {
        c.io.outb(EN0_TCNTLO, tbcr as u8);
        c.io.outb(EN0_TCNTHI, (tbcr >> 8) as u8);
        c.io.outb(EN0_TPSR, tpsr);
        c.io.outb(CMD, NODMA | TRANS | START);
        assert_eq!(c.io.inb(EN0_TSR), ENTSR_ABT, "{what}");
        assert!(c.irq.level(), "{what}: TXE is unmasked");
        // Linux's ei_tx_err treats an abort like a finished transmission.
        drv.interrupt();
        assert!(!c.irq.level());
    }
    assert!(c.net.take_sent().is_empty());
    assert_eq!(c.nic.counters().tx_errors, 6);
    assert_eq!(drv.stats.tx_aborted_errors, 6);
    assert_eq!(c.io.inb(CMD) & TRANS, 0, "TXP reads back clear");
    // The longest legal frame still goes.
    let f = frame([0xff; 6], 1518, 0);
    drv.start_xmit(&f).unwrap();
    assert_eq!(c.net.take_sent(), vec![f]);
}

#[test]
fn malformed_backend_frames_and_a_busy_backend_are_counted() {
    let c = isa_card();
    let mut drv = started(&c);
    assert!(!c.net.deliver(&frame(MAC, 1519, 0)));
    assert!(!c.net.deliver(&frame(MAC, 9000, 0)));
    assert!(!c.net.deliver(&MAC[..]));
    assert!(!c.net.deliver(&[]));
    assert_eq!(c.nic.counters().rx_dropped_malformed, 4);
    assert_eq!(c.io.inb(EN0_ISR), 0);

    c.net.set_busy(true);
    drv.start_xmit(&frame(MAC, 100, 0)).unwrap();
    drv.interrupt();
    assert_eq!(drv.stats.tx_packets, 1, "the guest saw it go");
    assert_eq!(c.nic.counters().tx_backend_errors, 1);
    c.net.set_busy(false);
}

/// xorshift64*: a reproducible stream for the random walk.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random register values, data-port strings, resets and frames of every size; after each step the line
/// matches ISR & IMR and the packet RAM keeps its size.
fn random_walk(io: &super::Io, nic: &super::super::Ne2000, level: &dyn Fn() -> bool, seed: u64) {
    let mut rng = Rng(seed);
    let net_frame = |rng: &mut Rng| -> Vec<u8> {
        let len = rng.below(1600) as usize;
        let mut f: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len >= 6 && rng.below(2) == 0 {
            f[..6].copy_from_slice(&MAC);
        }
        f
    };
    // Start from a running NIC so that frames reach the ring before random writes derail it.
    let mut drv = Linux::new(io, Glue::Isa16);
    drv.dev_addr = MAC;
    drv.init(true);
    let ram_len = nic.state().ram.len();
    for step in 0..12_000 {
        if step % 3000 == 0 {
            drv.init(true);
        }
        match rng.below(16) {
            0..=6 => io.outb(rng.below(16) as u8, rng.next() as u8),
            7..=8 => {
                io.inb(rng.below(32) as u8);
            }
            9 => {
                let width = [1, 2, 4][rng.below(3) as usize];
                let data: Vec<u8> = (0..width * rng.below(600) as usize)
                    .map(|_| rng.next() as u8)
                    .collect();
                io.outs(0x10 + rng.below(8) as u8, width, &data);
            }
            10 => {
                let width = [1, 2, 4][rng.below(3) as usize];
                io.ins(0x10, width, rng.below(600) as usize);
            }
            11 => {
                let width = [2, 4][rng.below(2) as usize];
                let port = rng.below(32) as u8;
                if width == 2 {
                    io.outw(port, rng.next() as u16);
                } else {
                    io.outl(port, rng.next() as u32);
                }
            }
            12 => {
                if rng.below(8) == 0 {
                    io.inb(0x1f);
                }
            }
            _ => {
                let f = net_frame(&mut rng);
                nic.receive(&f);
                nic.can_receive();
            }
        }
        if step % 16 != 0 {
            continue;
        }
        let st = nic.state();
        assert_eq!(st.ram.len(), ram_len, "step {step}");
        assert_eq!(
            level(),
            st.regs.isr & st.regs.imr & 0x7f != 0,
            "step {step}: line and ISR & IMR disagree"
        );
    }
    let counters = nic.counters();
    assert!(counters.rx_frames > 0, "{counters:?}");
    assert!(counters.tx_frames + counters.tx_errors > 0, "{counters:?}");
}

#[test]
fn a_random_walk_over_registers_ports_and_frames_never_misbehaves() {
    for seed in [1u64, 0x9e37_79b9_7f4a_7c15, 42] {
        let c = isa_card();
        let irq = c.irq.clone();
        random_walk(&c.io, &c.nic, &move || irq.level(), seed);

        let p = pci_card();
        let tb = Arc::new(p.tb);
        let gsi = p.gsi;
        let tb2 = tb.clone();
        random_walk(&p.io, p.card.nic(), &move || tb2.gsi.level(gsi), seed);
    }
}

#[test]
fn every_page_a_guest_names_is_prom_ram_or_nothing() {
    let c = isa_card();
    let drv = started(&c);
    let ram = {
        // Fill the RAM with a pattern through the data port.
        let pattern: Vec<u8> = (0..16 * 1024)
            .map(|i: usize| (i / 256) as u8 ^ i as u8)
            .collect();
        drv.block_output(&pattern, 0x40).unwrap();
        pattern
    };
    for page in 0..=255u8 {
        let addr = u16::from(page) << 8;
        let w = drv.block_input(2, addr + 0x20);
        let expected = match usize::from(addr).checked_sub(usize::from(RAM_BASE)) {
            Some(i) if i < ram.len() => ram[i + 0x20..i + 0x22].to_vec(),
            // The PROM is only 32 bytes long; everything else floats.
            _ => vec![0xff, 0xff],
        };
        assert_eq!(w, expected, "page {page:#04x}");
    }
    assert_eq!(c.nic.state().ram, ram);
}
