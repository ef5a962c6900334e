//! Micro-benchmark of the RTL8139's C-mode receive path: frames per second into the 32 KiB ring, with a
//! simulated 8139too driver reading each record header from guest memory and advancing CAPR.
//!
//! `cargo run --release -p devices --example rtl8139_rx`
//!
//! Two driver behaviours are measured: CAPR written after every frame (what 8139too's `rtl8139_rx`
//! does) and once per batch of 16 frames (the device's own cost dominates). Frames are offered through
//! `NetReceiver::receive`, as the event thread's back-end does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::clock::HostClock;
use devices::irq::IrqLine;
use devices::memory::{test_memory, Bytes, GuestAddress, GuestMemory};
use devices::net::rtl8139::regs::{cr, int, rcr, CAPR, CR, IMR, ISR, RBSTART, RCR};
use devices::net::rtl8139::Rtl8139;
use devices::net::testing::RecordingNet;
use devices::net::NetReceiver;
use devices::pci::{RegionId, SharedFunction};
use devices::timer::TimerKick;

const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const RING: u64 = 0x10_0000;
const RING_LEN: u32 = 32 << 10;
const BATCH: usize = 16;

/// An interrupt line that goes nowhere (the benchmark polls).
struct NoIrq;
impl IrqLine for NoIrq {
    fn set_level(&self, _high: bool) {}
}

fn write_reg(func: &SharedFunction, off: u8, width: usize, v: u32) {
    let d = v.to_le_bytes();
    func.lock().unwrap_or_else(|e| e.into_inner()).bar_write(
        RegionId::Bar(1),
        u64::from(off),
        &d[..width],
    );
}

/// A device opened as 8139too opens it: 32 KiB ring with WRAP, broadcast and own address.
fn open() -> (Arc<Rtl8139>, SharedFunction, GuestMemory) {
    let mem = test_memory(16 << 20);
    let nic = Rtl8139::new(
        MAC,
        RecordingNet::new(),
        mem.clone(),
        Arc::new(HostClock::new()),
        Arc::new(NoIrq),
        TimerKick::none(),
    )
    .unwrap_or_else(|e| panic!("cannot build the NIC: {e}"));
    let func = nic.pci_function();
    func.lock()
        .unwrap_or_else(|e| e.into_inner())
        .config_write(4, &[0x07, 0x00]);
    write_reg(&func, RBSTART, 4, RING as u32);
    write_reg(&func, CR, 1, u32::from(cr::RE | cr::TE));
    write_reg(
        &func,
        RCR,
        4,
        (2 << rcr::RBLEN_SHIFT) | rcr::WRAP | rcr::AB | rcr::APM,
    );
    write_reg(&func, IMR, 2, u32::from(int::ROK));
    (nic, func, mem)
}

/// Runs for about `time`; returns frames per second.
fn run(len: usize, capr_every_frame: bool, time: Duration) -> f64 {
    let (nic, func, mem) = open();
    let mut frame = vec![0u8; len];
    frame[..6].copy_from_slice(&MAC);
    frame[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let mut cur_rx = 0u32;
    let mut frames = 0u64;
    let start = Instant::now();
    while start.elapsed() < time {
        for _ in 0..256 {
            for _ in 0..BATCH {
                if !nic.receive(&frame) {
                    panic!("frame refused: the simulated driver fell behind");
                }
            }
            // The driver: each record's header from the ring, CAPR advanced past it.
            for _ in 0..BATCH {
                let header: u32 = mem
                    .read_obj(GuestAddress(RING + u64::from(cur_rx % RING_LEN)))
                    .unwrap_or_else(|e| panic!("ring read: {e}"));
                cur_rx = (cur_rx + (header >> 16) + 4 + 3) & !3;
                if capr_every_frame {
                    write_reg(&func, CAPR, 2, cur_rx.wrapping_sub(16) & 0xffff);
                }
            }
            if !capr_every_frame {
                write_reg(&func, CAPR, 2, cur_rx.wrapping_sub(16) & 0xffff);
            }
            write_reg(&func, ISR, 2, u32::from(int::ROK));
            frames += BATCH as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let c = nic.counters();
    assert_eq!(c.rx_frames, frames, "every frame stored");
    frames as f64 / secs
}

fn main() {
    let time = Duration::from_millis(
        std::env::var("RTL8139_BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1500),
    );
    println!(
        "RTL8139 C-mode receive, 32 KiB ring, {} ms per case",
        time.as_millis()
    );
    for len in [64usize, 1514] {
        for every in [true, false] {
            let fps = run(len, every, time);
            println!(
                "{len:>5}-byte frames, CAPR per {:<6}: {:>6.2} Mframes/s, {:>7.1} MB/s",
                if every { "frame" } else { "batch" },
                fps / 1e6,
                fps * len as f64 / 1e6
            );
        }
    }
}
