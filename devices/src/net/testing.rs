//! Test helpers for NICs and back-ends.
//!
//! - [`RecordingNet`]: a back-end that keeps what a NIC sent and delivers frames to it on request.
//! - [`FrameQueue`]: a receiver that keeps what a back-end delivered, for back-end tests without a NIC.
//! - With the `test-util` feature (always in this crate's tests): [`packets`] (building and parsing Ethernet,
//!   ARP, IPv4, ICMP, UDP, DHCP), [`client`] (a test host that gets a DHCP lease, ARPs and pings through any
//!   [`client::NicDriver`]), and [`netns`] (private network namespaces with a bridge and a real `dnsmasq`).

#[cfg(any(test, feature = "test-util"))]
pub mod client;
#[cfg(any(test, feature = "test-util"))]
pub mod netns;
#[cfg(any(test, feature = "test-util"))]
pub mod packets;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use super::{NetBackend, NetError, NetReceiver};

/// Records every frame a NIC sends; [`RecordingNet::deliver`] hands a frame to the attached NIC.
#[derive(Default)]
pub struct RecordingNet {
    sent: Mutex<Vec<Vec<u8>>>,
    receiver: Mutex<Option<Weak<dyn NetReceiver>>>,
    busy: std::sync::atomic::AtomicBool,
}

impl RecordingNet {
    /// A new recorder, shared.
    pub fn new() -> Arc<RecordingNet> {
        Arc::new(RecordingNet::default())
    }

    /// Takes the frames sent so far.
    pub fn take_sent(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes `send` refuse frames with [`NetError::WouldBlock`] while `busy`.
    pub fn set_busy(&self, busy: bool) {
        self.busy.store(busy, std::sync::atomic::Ordering::SeqCst);
    }

    /// Offers `frame` to the attached NIC; returns what the NIC answered (false without a NIC).
    pub fn deliver(&self, frame: &[u8]) -> bool {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(Weak::upgrade);
        receiver.is_some_and(|r| r.receive(frame))
    }
}

impl NetBackend for RecordingNet {
    fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        if frame.is_empty() || frame.len() > super::MAX_FRAME {
            return Err(NetError::BadLength(frame.len()));
        }
        if self.busy.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(NetError::WouldBlock);
        }
        self.sent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(frame.to_vec());
        Ok(())
    }

    fn attach(&self, receiver: Weak<dyn NetReceiver>) {
        *self.receiver.lock().unwrap_or_else(|e| e.into_inner()) = Some(receiver);
    }
}

/// Frames a [`FrameQueue`] keeps at most; further frames are refused as a full ring refuses them.
pub const FRAME_QUEUE_LIMIT: usize = 4096;

/// A [`NetReceiver`] that queues what it is offered, for testing back-ends without a NIC model. It can be
/// told to say it has no room ([`FrameQueue::set_full`]) or to refuse frames ([`FrameQueue::set_refuse`]).
#[derive(Default)]
pub struct FrameQueue {
    frames: Mutex<VecDeque<Vec<u8>>>,
    arrived: Condvar,
    full: AtomicBool,
    refuse: AtomicBool,
    offered: AtomicU64,
}

impl FrameQueue {
    /// An empty queue, shared.
    pub fn new() -> Arc<FrameQueue> {
        Arc::new(FrameQueue::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the oldest frame.
    pub fn pop(&self) -> Option<Vec<u8>> {
        self.lock().pop_front()
    }

    /// Takes every frame queued.
    pub fn take_all(&self) -> Vec<Vec<u8>> {
        self.lock().drain(..).collect()
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits up to `timeout` for a frame to be queued; whether one is.
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut frames = self.lock();
        while frames.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            frames = self
                .arrived
                .wait_timeout(frames, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Waits up to `timeout` for a frame and takes it.
    pub fn wait_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.wait(timeout).then(|| self.pop()).flatten()
    }

    /// Makes [`NetReceiver::can_receive`] say no while `full`.
    pub fn set_full(&self, full: bool) {
        self.full.store(full, Ordering::SeqCst);
    }

    /// Makes [`NetReceiver::receive`] refuse every frame while `refuse`.
    pub fn set_refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// How many frames were offered through `receive`, taken or not.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::SeqCst)
    }
}

impl NetReceiver for FrameQueue {
    fn receive(&self, frame: &[u8]) -> bool {
        self.offered.fetch_add(1, Ordering::SeqCst);
        if self.refuse.load(Ordering::SeqCst) {
            return false;
        }
        let mut frames = self.lock();
        if frames.len() >= FRAME_QUEUE_LIMIT {
            return false;
        }
        frames.push_back(frame.to_vec());
        self.arrived.notify_all();
        true
    }

    fn can_receive(&self) -> bool {
        !self.full.load(Ordering::SeqCst)
    }
}
