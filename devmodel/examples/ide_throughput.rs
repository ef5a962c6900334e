//! Raw IDE throughput of the device model, measured on the no-vCPU harness: the production machine with a raw
//! disk image, driven through its ports and a PRD table in guest memory exactly as a driver drives it.
//! A benchmark, not a test: `cargo run --release -p devmodel --example ide_throughput [MiB]`.
//!
//! PIO moves every 16-bit word through the port bus (what one `rep insw` exit turns into); DMA moves 128 KiB per
//! command through the bus-master engine. The image is read once before measuring, so reads come from the page
//! cache.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use devices::memory::{Bytes, GuestAddress};
use devmodel::harness::TestMachine;
use devmodel::machine::MachineOptions;

const SECTORS_PER_COMMAND: u16 = 256;
const BMIDE: u16 = 0xc000;
const PRD_TABLE: u64 = 0x10000;
const BUFFER: u64 = 0x100000;

fn wait_not_busy(m: &TestMachine) -> u8 {
    loop {
        let status = m.inb(0x1f7);
        if status & 0x80 == 0 {
            return status;
        }
    }
}

fn command(m: &TestMachine, lba: u64, count: u16, cmd: u8) {
    // LBA48 register pairs: high bytes first, then low.
    m.outb(0x1f6, 0x40);
    m.outb(0x1f2, (count >> 8) as u8);
    m.outb(0x1f3, (lba >> 24) as u8);
    m.outb(0x1f4, (lba >> 32) as u8);
    m.outb(0x1f5, (lba >> 40) as u8);
    m.outb(0x1f2, count as u8);
    m.outb(0x1f3, lba as u8);
    m.outb(0x1f4, (lba >> 8) as u8);
    m.outb(0x1f5, (lba >> 16) as u8);
    m.outb(0x1f7, cmd);
}

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let dir = std::env::temp_dir().join(format!("devmodel-ide-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![0x5au8; (mib << 20) as usize]).unwrap();
    let _ = std::fs::read(&image).unwrap(); // into the page cache
    let config = format!(
        "kernel='/usr/lib/xen/boot/hvmloader'\nbuilder='hvm'\nname='bench'\nmemory=64\n\
         disk=['file:{},hda,w']\n",
        image.display()
    );
    let m = TestMachine::from_config(&config, &MachineOptions::default()).unwrap();
    // Map BAR4 at 0xC000 with I/O decoding and bus mastering, as firmware and the driver do.
    m.pci_write32(1, 1, 0x20, u32::from(BMIDE) | 1);
    m.pci_write32(1, 1, 0x04, 0x0005);
    m.outb(0x3f6, 0x02); // nIEN: polled, as the benchmark loop does not take interrupts

    let bytes_per_command = u64::from(SECTORS_PER_COMMAND) * 512;
    let commands = (mib << 20) / bytes_per_command;

    // DMA reads: one PRD entry of 128 KiB... split in two 64 KiB entries (the 16-bit count's limit).
    let prd: Vec<u8> = [
        (BUFFER as u32, 0u16, 0u16),
        ((BUFFER + 0x10000) as u32, 0u16, 0x8000u16),
    ]
    .iter()
    .flat_map(|&(addr, count, flags)| {
        let mut e = addr.to_le_bytes().to_vec();
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e
    })
    .collect();
    m.platform
        .mem
        .write_slice(&prd, GuestAddress(PRD_TABLE))
        .unwrap();
    m.outl(BMIDE + 4, PRD_TABLE as u32);
    let start = Instant::now();
    for i in 0..commands {
        command(
            &m,
            i * u64::from(SECTORS_PER_COMMAND),
            SECTORS_PER_COMMAND,
            0x25,
        );
        m.outb(BMIDE, 0x09); // start, device-to-memory
        let status = wait_not_busy(&m);
        assert_eq!(status & 0x01, 0, "DMA read failed");
        m.outb(BMIDE, 0x00);
        m.outb(BMIDE + 2, 0x06); // acknowledge interrupt and error bits
    }
    let dma_read = (mib as f64) / start.elapsed().as_secs_f64();
    let mut check = [0u8; 16];
    m.platform
        .mem
        .read_slice(&mut check, GuestAddress(BUFFER))
        .unwrap();
    assert_eq!(check, [0x5a; 16]);

    // DMA writes of the same size.
    let start = Instant::now();
    for i in 0..commands {
        command(
            &m,
            i * u64::from(SECTORS_PER_COMMAND),
            SECTORS_PER_COMMAND,
            0x35,
        );
        m.outb(BMIDE, 0x01); // start, memory-to-device
        let status = wait_not_busy(&m);
        assert_eq!(status & 0x01, 0, "DMA write failed");
        m.outb(BMIDE, 0x00);
        m.outb(BMIDE + 2, 0x06);
    }
    let dma_write = (mib as f64) / start.elapsed().as_secs_f64();

    // PIO reads of a quarter of the disk, one `rep insw` of a sector per DRQ block, as SeaBIOS and Linux do:
    // KVM hands such a string over in one exit.
    let pio_commands = commands / 4;
    let mut sector = [0u8; 512];
    let start = Instant::now();
    for i in 0..pio_commands {
        command(
            &m,
            i * u64::from(SECTORS_PER_COMMAND),
            SECTORS_PER_COMMAND,
            0x24,
        );
        for _ in 0..SECTORS_PER_COMMAND {
            wait_not_busy(&m);
            m.ins(0x1f0, 2, &mut sector);
        }
    }
    assert_eq!(sector, [0x5a; 512]);
    let pio_read = ((pio_commands * bytes_per_command) as f64 / (1 << 20) as f64)
        / start.elapsed().as_secs_f64();

    println!("| IDE on the no-vCPU harness ({mib} MiB image) | MB/s |");
    println!("|---|---|");
    println!("| DMA read (READ DMA EXT, 128 KiB per command) | {dma_read:.0} |");
    println!("| DMA write (WRITE DMA EXT, 128 KiB per command) | {dma_write:.0} |");
    println!(
        "| PIO read (READ SECTORS EXT, `rep insw` of 512 bytes per DRQ block) | {pio_read:.0} |"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
