//! A recording back-end for NIC tests: keeps what the NIC sent and delivers frames to it on request.

use std::sync::{Arc, Mutex, Weak};

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
