//! Word-mode remote DMA strings (`rep insw/insl`, `rep outsw/outsl` on the data port) against the
//! definition word by word: each transfer moves the bytes at the even address and the one after it
//! (little-endian lanes), the address wraps from PSTOP to PSTART and within 16 bits, the count runs down by
//! two and its end raises RDC and floats the rest; a byte-wide access is a word transfer of which the low
//! lane is seen (or stored). The model copies whole runs of words at once where
//! that is the same thing; these tests place strings across every edge where it is not (PSTOP, the end of
//! the RAM, the PROM, the end of the count) and compare with the word-by-word result computed here.

use super::linux_driver::*;
use super::{isa_card, pci_card, Io, MAC};
use crate::net::ne2k::dp8390::RAM_BASE;
use crate::net::ne2k::Ne2000;

/// xorshift64*: reproducible cases.
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

/// The NIC's 64 KiB local space as the tests model it: PROM (each MAC byte doubled, 'W' 'W' signature),
/// RAM from 0x4000, all ones elsewhere.
struct Space {
    ram: Vec<u8>,
}

impl Space {
    fn prom(addr: usize) -> u8 {
        let logical = addr / 2;
        match logical {
            0..=5 => MAC[logical],
            14 | 15 => b'W',
            _ => 0,
        }
    }

    fn get(&self, addr: u16) -> u8 {
        let a = usize::from(addr);
        if a < 32 {
            Space::prom(a)
        } else if let Some(&b) = a
            .checked_sub(usize::from(RAM_BASE))
            .and_then(|i| self.ram.get(i))
        {
            b
        } else {
            0xff
        }
    }

    fn set(&mut self, addr: u16, value: u8) {
        if let Some(b) = usize::from(addr)
            .checked_sub(usize::from(RAM_BASE))
            .and_then(|i| self.ram.get_mut(i))
        {
            *b = value;
        }
    }
}

/// The remote DMA registers a string starts from.
#[derive(Debug, Clone, Copy)]
struct Dma {
    rsar: u16,
    rbcr: u16,
    pstart: u8,
    pstop: u8,
}

impl Dma {
    /// The next word's address, and the channel after moving it: (address, still running).
    fn step(&mut self) -> (u16, bool) {
        let at = self.rsar & !1;
        let mut next = at.wrapping_add(2);
        if self.pstart < self.pstop && next == u16::from(self.pstop) << 8 {
            next = u16::from(self.pstart) << 8;
        }
        self.rsar = next;
        self.rbcr = self.rbcr.saturating_sub(2);
        (at, self.rbcr != 0)
    }
}

/// Word-by-word result of reading `len` bytes in `width`-byte elements: the bytes, the registers after,
/// whether RDC was raised. A one-byte element is a whole word transfer of which the low lane is seen.
fn expected_read(space: &Space, mut dma: Dma, width: usize, len: usize) -> (Vec<u8>, Dma, bool) {
    let mut out = Vec::with_capacity(len);
    let mut running = dma.rbcr != 0;
    while out.len() < len {
        for _ in 0..width.div_ceil(2) {
            if !running {
                out.extend_from_slice(&[0xff, 0xff][..width.min(2)]);
                continue;
            }
            let (at, still) = dma.step();
            out.push(space.get(at));
            if width > 1 {
                out.push(space.get(at.wrapping_add(1)));
            }
            running = still;
        }
    }
    (out, dma, !running)
}

/// Word-by-word effect of writing `data` in `width`-byte elements; a one-byte element stores its low lane.
fn expected_write(space: &mut Space, mut dma: Dma, width: usize, data: &[u8]) -> (Dma, bool) {
    let mut running = dma.rbcr != 0;
    for word in data.chunks(2.min(width)) {
        if !running {
            break;
        }
        let (at, still) = dma.step();
        for (i, &b) in word.iter().enumerate() {
            space.set(at.wrapping_add(i as u16), b);
        }
        running = still;
    }
    (dma, !running)
}

/// Programs PSTART/PSTOP, the count and the address in word mode, and starts a remote read or write.
fn start(io: &Io, dma: Dma, command: u8) {
    io.outb(CMD, NODMA | PAGE0 | START);
    io.outb(EN0_DCFG, 0x49);
    io.outb(EN0_ISR, ENISR_RDC);
    io.outb(EN0_STARTPG, dma.pstart);
    io.outb(EN0_STOPPG, dma.pstop);
    io.outb(EN0_RCNTLO, dma.rbcr as u8);
    io.outb(EN0_RCNTHI, (dma.rbcr >> 8) as u8);
    io.outb(EN0_RSARLO, dma.rsar as u8);
    io.outb(EN0_RSARHI, (dma.rsar >> 8) as u8);
    io.outb(CMD, command | START);
}

/// Where the channel is now (CRDA), and whether RDC is up.
fn channel(io: &Io) -> (u16, bool) {
    let lo = io.inb(EN0_RSARLO);
    let hi = io.inb(EN0_RSARHI);
    (
        u16::from_le_bytes([lo, hi]),
        io.inb(EN0_ISR) & ENISR_RDC != 0,
    )
}

/// A start address near one of the edges (or anywhere).
fn edge_address(rng: &mut Rng, ram_end: u16, pstop: u8) -> u16 {
    let near = |edge: u16, rng: &mut Rng| edge.wrapping_sub(rng.below(64) as u16).wrapping_add(8);
    match rng.below(6) {
        0 => near(u16::from(pstop) << 8, rng),
        1 => near(ram_end, rng),
        2 => near(RAM_BASE, rng),
        3 => rng.below(48) as u16,
        4 => near(0, rng),
        _ => RAM_BASE + rng.below(u64::from(ram_end - RAM_BASE)) as u16,
    }
}

fn run_cases(io: &Io, nic: &Ne2000, ram_len: usize, seed: u64) {
    let mut rng = Rng(seed);
    let ram_end = RAM_BASE + ram_len as u16;
    let ram_pages = (ram_len / 256) as u64;
    for case in 0..400 {
        // Random RAM, as the guest would have left it.
        let mut state = nic.state();
        for b in state.ram.iter_mut() {
            *b = rng.next() as u8;
        }
        nic.restore(state).unwrap();
        let mut space = Space {
            ram: nic.state().ram,
        };
        let pstart = 0x40 + rng.below(ram_pages) as u8;
        let pstop = match rng.below(4) {
            0 => pstart,
            1 => pstart.saturating_sub(rng.below(8) as u8),
            _ => pstart.saturating_add(1 + rng.below(ram_pages) as u8),
        };
        let rbcr = match rng.below(4) {
            0 => rng.below(8) as u16,
            1 => rng.below(0x10000) as u16,
            _ => rng.below(2100) as u16,
        };
        let dma = Dma {
            rsar: edge_address(&mut rng, ram_end, pstop),
            rbcr,
            pstart,
            pstop,
        };
        let width = [1, 2, 4][rng.below(3) as usize];
        let len = width * (1 + rng.below(600) as usize);
        let what = format!("case {case}: {dma:x?}, {len} bytes in {width}-byte elements");
        if rng.below(2) == 0 {
            start(io, dma, RREAD);
            let mut got = vec![0u8; len];
            io.bus
                .read_repeated(io.base + u64::from(NE_DATAPORT), width, &mut got);
            let (want, after, rdc) = expected_read(&space, dma, width, len);
            assert!(got == want, "{what}: bytes read differ");
            assert_eq!(channel(io), (after.rsar, rdc), "{what}: channel after");
        } else {
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            start(io, dma, RWRITE);
            io.outs(NE_DATAPORT, width, &data);
            let (after, rdc) = expected_write(&mut space, dma, width, &data);
            assert!(nic.state().ram == space.ram, "{what}: RAM after the write");
            assert_eq!(channel(io), (after.rsar, rdc), "{what}: channel after");
        }
    }
}

#[test]
fn word_mode_strings_match_the_word_by_word_definition_on_the_isa_card() {
    let c = isa_card();
    let mut drv = Linux::new(&c.io, Glue::Isa16);
    drv.dev_addr = MAC;
    drv.init(true);
    run_cases(&c.io, &c.nic, 16 * 1024, 0x9e37_79b9_7f4a_7c15);
}

#[test]
fn word_mode_strings_match_the_word_by_word_definition_through_the_pci_window() {
    let c = pci_card();
    let mut drv = Linux::new(&c.io, Glue::Pci32);
    drv.dev_addr = MAC;
    drv.init(true);
    run_cases(&c.io, c.card.nic(), 32 * 1024, 0x0123_4567_89ab_cdef);
}
