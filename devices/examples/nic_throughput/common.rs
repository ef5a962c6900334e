//! What every case shares: port access through the bus, the benchmark's frames, a counting back-end, the
//! thread CPU clock, and the interface a simulated guest driver offers the measuring loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use devices::bus::{le_value, Bus};
use devices::net::{NetBackend, NetError, NetReceiver};

/// The NIC's MAC address in every case.
pub const NIC_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
/// The other station: the source of received frames, the destination of transmitted ones.
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// The EtherType of the benchmark's frames (IEEE "local experimental"): no protocol of the host kernel
/// takes them, so in the tap cases the kernel only switches or drops them.
pub const ETHERTYPE: u16 = 0x88b5;

/// A frame of `len` bytes (no FCS) from `src` to `dst`, payload bytes counting up.
pub fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    let mut b = 0u8;
    while f.len() < len {
        f.push(b);
        b = b.wrapping_add(1);
    }
    f.truncate(len);
    f
}

/// Port access at a base, as a guest's `in`/`out`/`rep ins`/`rep outs` reach the device: through the
/// machine's port bus (and, for a PCI function, the PCI root's BAR window on it).
pub struct Io {
    /// The port bus.
    pub bus: Arc<Bus>,
    /// The device's base port.
    pub base: u64,
}

impl Io {
    fn port(&self, offset: u8) -> u64 {
        self.base + u64::from(offset)
    }

    pub fn inb(&self, offset: u8) -> u8 {
        let mut d = [0u8; 1];
        self.bus.read(self.port(offset), &mut d);
        d[0]
    }

    pub fn inw(&self, offset: u8) -> u16 {
        let mut d = [0u8; 2];
        self.bus.read(self.port(offset), &mut d);
        le_value(&d) as u16
    }

    pub fn inl(&self, offset: u8) -> u32 {
        let mut d = [0u8; 4];
        self.bus.read(self.port(offset), &mut d);
        le_value(&d) as u32
    }

    pub fn outb(&self, offset: u8, value: u8) {
        self.bus.write(self.port(offset), &[value]);
    }

    pub fn outw(&self, offset: u8, value: u16) {
        self.bus.write(self.port(offset), &value.to_le_bytes());
    }

    pub fn outl(&self, offset: u8, value: u32) {
        self.bus.write(self.port(offset), &value.to_le_bytes());
    }

    /// `rep ins` of `buf.len() / width` elements (one KVM exit on a real machine).
    pub fn ins(&self, offset: u8, width: usize, buf: &mut [u8]) {
        self.bus.read_repeated(self.port(offset), width, buf);
    }

    /// `rep outs` of `data` in elements of `width` bytes.
    pub fn outs(&self, offset: u8, width: usize, data: &[u8]) {
        self.bus.write_repeated(self.port(offset), width, data);
    }
}

/// The harness back-end for transmit cases: counts what the NIC sends and keeps the first frame for the
/// content check. Allocates nothing per frame (a recording back-end's copies would be measured too).
#[derive(Default)]
pub struct CountingNet {
    frames: AtomicU64,
    bytes: AtomicU64,
    first: OnceLock<Vec<u8>>,
}

impl CountingNet {
    pub fn new() -> Arc<CountingNet> {
        Arc::new(CountingNet::default())
    }

    /// Frames and bytes sent so far.
    pub fn sent(&self) -> (u64, u64) {
        (
            self.frames.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// The first frame the NIC sent.
    pub fn first(&self) -> Option<&Vec<u8>> {
        self.first.get()
    }
}

impl NetBackend for CountingNet {
    fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        if self.first.get().is_none() {
            let _ = self.first.set(frame.to_vec());
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// CPU time the calling thread has used (user and system), from `CLOCK_THREAD_CPUTIME_ID`.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec, which `ts` is; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A NIC on its bus with a simulated guest driver that drives it through its registers, as the named Linux
/// driver does.
pub trait Guest {
    /// What the NIC offers the back-end for received frames.
    fn receiver(&self) -> Arc<dyn NetReceiver>;
    /// Received frames delivered per interrupt: as many as fit the driver's ring (and one NAPI or
    /// `ei_receive` pass) with frames of `len` bytes.
    fn rx_burst(&self, len: usize) -> usize;
    /// Untimed preparation of transmit cases: whatever the guest puts in its memory before the device
    /// sees it (the guest's own memcpy is not device-model work).
    fn prepare_tx(&mut self, frame: &[u8]);
    /// Transmits `frame` as the driver's `start_xmit` does, then runs the interrupt handler that the
    /// completion raises.
    fn transmit(&mut self, frame: &[u8]);
    /// Runs the receive interrupt handler (and poll) until the ring is empty; returns the frames
    /// consumed. Each record is checked for `len` bytes and good status; with `compare` the frame's bytes
    /// are read out of the ring (as the driver copies them) and compared with `expect`.
    fn service_rx(&mut self, len: usize, compare: Option<&[u8]>) -> usize;
    /// The device's own counters: frames stored for the guest, frames sent.
    fn device_counts(&self) -> (u64, u64);
}
