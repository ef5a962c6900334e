//! NIC throughput of the device model: frames per second, MB/s and CPU time per frame through each NIC
//! model (RTL8139 in C mode, the PCI NE2000 and the ISA NE2000), transmit and receive, with 64- and
//! 1514-byte frames (lengths without the FCS, as the back-end hands frames over), on the no-vCPU harness
//! and through the real tap back-end.
//!
//! ```text
//! cargo run --release -p devices --features test-util --example nic_throughput -- [--runs N]
//!     [--frames N] [--tap-frames N] [--no-tap] [--only TEXT]
//! ```
//!
//! `bench/nic_throughput.py` builds this, runs it and prints the markdown table of BENCHMARKS.md.
//!
//! # What is measured
//!
//! Each NIC sits on a PCI test bed (the chipset's PCI root and port bus, configured by configuration
//! cycles as firmware does; interrupts through the PIIX3 into a recording interrupt controller) and is
//! driven by a simulated guest driver that makes exactly the register accesses its Linux driver makes per
//! frame (see `rtl.rs` and `ne2k.rs`), through the bus, with rings and buffers in guest memory. Every
//! case runs a fixed number of frames after an untimed warm-up (whose first frames are checked byte for
//! byte), `--runs` times on a freshly built device; the best run is reported.
//!
//! - **Receive**: frames are offered in bursts as the tap back-end offers them (`can_receive`, then
//!   `receive`), then the driver's interrupt handler (and NAPI poll) consumes the ring. The burst is what
//!   one interrupt takes: 16 frames for the RTL8139, 8 for the NE2000 (its ring holds eight full-sized
//!   frames and `ei_receive` takes at most nine per interrupt).
//! - **Transmit**: one frame per `start_xmit`, followed by the completion interrupt, as on a guest where
//!   the interrupt arrives as soon as the driver re-enables it. The harness back-end only counts frames.
//! - **Tap**: the same, with the real tap back-end in a private network namespace and a packet socket on
//!   the tap interface as the peer (see `tap.rs`).
//!
//! Frames per second are from wall time (the whole loop, peer included); CPU time per frame is the
//! thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, user + system) divided by the frames, with the tap peer's
//! share measured apart and left out. The simulated driver's own work (reading a 4-byte ring header from
//! guest memory, counting) is inside the CPU time and negligible; its copies of frame data out of guest
//! memory and into transmit buffers (guest work on a real machine) are done only in the warm-up checks.

mod common;
mod ne2k;
mod rtl;
mod tap;

use std::sync::Arc;
use std::time::{Duration, Instant};

use devices::net::NetBackend;

use common::{frame, thread_cpu, CountingNet, Guest, NIC_MAC, PEER_MAC};

/// The NIC models measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    Rtl8139,
    Ne2kPci,
    Ne2kIsa,
}

impl Model {
    const ALL: [Model; 3] = [Model::Rtl8139, Model::Ne2kPci, Model::Ne2kIsa];

    fn label(self) -> &'static str {
        match self {
            Model::Rtl8139 => "RTL8139 (8139too)",
            Model::Ne2kPci => "NE2000 PCI (ne2k-pci)",
            Model::Ne2kIsa => "NE2000 ISA (ne, 16-bit)",
        }
    }
}

/// A freshly built and opened device of `model` on `backend`.
pub fn open_guest(model: Model, backend: Arc<dyn NetBackend>) -> Box<dyn Guest> {
    match model {
        Model::Rtl8139 => Box::new(rtl::Too::open(backend)),
        Model::Ne2kPci => Box::new(ne2k::Lib8390::open(ne2k::Glue::Pci32, backend)),
        Model::Ne2kIsa => Box::new(ne2k::Lib8390::open(ne2k::Glue::Isa16, backend)),
    }
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Wall time of the timed loop.
    pub wall: Duration,
    /// The thread's CPU time in the loop.
    pub cpu: Duration,
    /// The part of `cpu` the tap peer spent (zero on the harness).
    pub peer_cpu: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Tx,
    Rx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Harness,
    Tap,
}

/// Receive on the harness: bursts offered as the tap back-end offers them, then the interrupt handler.
fn harness_rx(model: Model, len: usize, frames: u64, warmup: u64) -> Sample {
    let mut guest = open_guest(model, CountingNet::new());
    let receiver = guest.receiver();
    let f = frame(NIC_MAC, PEER_MAC, len);
    let burst = guest.rx_burst(len) as u64;
    let mut one_burst = |n: u64, compare: Option<&[u8]>| {
        for _ in 0..n {
            assert!(
                receiver.can_receive() && receiver.receive(&f),
                "frame refused: the driver fell behind"
            );
        }
        let got = guest.service_rx(len, compare) as u64;
        assert_eq!(got, n, "frames the driver found in the ring");
    };
    let mut done = 0;
    while done < warmup {
        let n = burst.min(warmup - done);
        one_burst(n, (done == 0).then_some(&f[..]));
        done += n;
    }
    let wall0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut done = 0;
    while done < frames {
        let n = burst.min(frames - done);
        one_burst(n, None);
        done += n;
    }
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed();
    assert_eq!(guest.device_counts().0, warmup + frames, "frames stored");
    Sample {
        wall,
        cpu,
        peer_cpu: Duration::ZERO,
    }
}

/// Transmit on the harness into a counting back-end.
fn harness_tx(model: Model, len: usize, frames: u64, warmup: u64) -> Sample {
    let net = CountingNet::new();
    let mut guest = open_guest(model, net.clone());
    let f = frame(PEER_MAC, NIC_MAC, len);
    guest.prepare_tx(&f);
    for _ in 0..warmup {
        guest.transmit(&f);
    }
    let mut expect = f.clone();
    expect.resize(len.max(60), 0);
    assert_eq!(net.first(), Some(&expect), "the frame the back-end got");
    let wall0 = Instant::now();
    let cpu0 = thread_cpu();
    for _ in 0..frames {
        guest.transmit(&f);
    }
    let cpu = thread_cpu() - cpu0;
    let wall = wall0.elapsed();
    let total = warmup + frames;
    assert_eq!(
        net.sent(),
        (total, total * expect.len() as u64),
        "frames sent"
    );
    Sample {
        wall,
        cpu,
        peer_cpu: Duration::ZERO,
    }
}

struct Options {
    runs: usize,
    frames: u64,
    tap_frames: u64,
    tap: bool,
    only: Option<String>,
}

fn parse_args() -> Options {
    let mut o = Options {
        runs: 5,
        frames: 1_000_000,
        tap_frames: 100_000,
        tap: true,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| panic!("{name} needs a value"))
        };
        let number = |name: &str, v: String| -> u64 {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: '{v}' is not a number"))
        };
        match a.as_str() {
            "--runs" => o.runs = number("--runs", value("--runs")).max(1) as usize,
            "--frames" => o.frames = number("--frames", value("--frames")).max(1),
            "--tap-frames" => o.tap_frames = number("--tap-frames", value("--tap-frames")).max(1),
            "--no-tap" => o.tap = false,
            "--only" => o.only = Some(value("--only")),
            "-h" | "--help" => {
                println!(
                    "nic_throughput [--runs N] [--frames N] [--tap-frames N] [--no-tap] [--only TEXT]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument '{other}' (see --help)"),
        }
    }
    o
}

struct Case {
    model: Model,
    path: Path,
    dir: Dir,
    len: usize,
}

impl Case {
    fn name(&self) -> String {
        format!(
            "{} {} {} {}",
            self.model.label(),
            match self.path {
                Path::Harness => "harness",
                Path::Tap => "tap",
            },
            match self.dir {
                Dir::Tx => "tx",
                Dir::Rx => "rx",
            },
            self.len
        )
    }

    fn run(&self, frames: u64) -> Sample {
        let warmup = (frames / 20).clamp(64, 20_000);
        match (self.path, self.dir) {
            (Path::Harness, Dir::Tx) => harness_tx(self.model, self.len, frames, warmup),
            (Path::Harness, Dir::Rx) => harness_rx(self.model, self.len, frames, warmup),
            (Path::Tap, Dir::Tx) => tap::tx(self.model, self.len, frames, warmup),
            (Path::Tap, Dir::Rx) => tap::rx(self.model, self.len, frames, warmup),
        }
    }

    /// Best of `runs`: the shortest wall time and, separately, the least device-side CPU time.
    fn measure(&self, frames: u64, runs: usize) {
        let samples: Vec<Sample> = (0..runs).map(|_| self.run(frames)).collect();
        let wall = samples.iter().map(|s| s.wall).min().unwrap_or_default();
        let cpu = samples
            .iter()
            .map(|s| s.cpu.saturating_sub(s.peer_cpu))
            .min()
            .unwrap_or_default();
        let peer = samples.iter().map(|s| s.peer_cpu).min().unwrap_or_default();
        let fps = frames as f64 / wall.as_secs_f64();
        let mbps = fps * self.len as f64 / 1e6;
        let cpu_ns = cpu.as_nanos() as f64 / frames as f64;
        let peer_ns = peer.as_nanos() as f64 / frames as f64;
        let burst = match self.dir {
            Dir::Tx => 1,
            Dir::Rx => open_guest(self.model, CountingNet::new()).rx_burst(self.len),
        };
        eprintln!(
            "{:<42} {:>9.0} frames/s {:>8.1} MB/s {:>8.0} ns CPU/frame{}",
            self.name(),
            fps,
            mbps,
            cpu_ns,
            if self.path == Path::Tap {
                format!(" (+ peer {peer_ns:.0} ns)")
            } else {
                String::new()
            }
        );
        // Machine-readable, for bench/nic_throughput.py.
        println!(
            "RESULT\t{}\t{}\t{}\t{}\t{frames}\t{burst}\t{runs}\t{fps:.0}\t{mbps:.1}\t{cpu_ns:.0}\t{peer_ns:.0}",
            self.model.label(),
            match self.path {
                Path::Harness => "harness",
                Path::Tap => "tap",
            },
            match self.dir {
                Dir::Tx => "tx",
                Dir::Rx => "rx",
            },
            self.len
        );
    }
}

fn cases(path: Path, only: &Option<String>) -> Vec<Case> {
    let mut v = Vec::new();
    for model in Model::ALL {
        for dir in [Dir::Tx, Dir::Rx] {
            for len in [64, 1514] {
                let c = Case {
                    model,
                    path,
                    dir,
                    len,
                };
                if only.as_ref().is_none_or(|o| c.name().contains(o.as_str())) {
                    v.push(c);
                }
            }
        }
    }
    v
}

fn main() {
    let o = parse_args();
    eprintln!(
        "NIC throughput: best of {} runs, {} frames per harness run, {} per tap run",
        o.runs, o.frames, o.tap_frames
    );
    for c in cases(Path::Harness, &o.only) {
        c.measure(o.frames, o.runs);
    }
    let tap_cases = cases(Path::Tap, &o.only);
    if o.tap && !tap_cases.is_empty() {
        let ran = devices::net::testing::netns::run_isolated(|| {
            tap::quiet_namespace();
            for c in &tap_cases {
                c.measure(o.tap_frames, o.runs);
            }
        });
        if ran.is_none() {
            eprintln!("tap cases skipped: no private network namespace here");
        }
    }
}
