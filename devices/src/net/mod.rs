//! Network interface cards and where their frames go.
//!
//! A NIC model (NE2000, RTL8139) is a plain state machine that sends frames through a [`NetBackend`] and is
//! offered received frames through [`NetReceiver`], which it implements. The back-end (a tap device, or a
//! recorder in tests) never buffers without bound: received frames the NIC cannot take are dropped and counted
//! by the NIC, as a real card drops them when its ring is full.
//!
//! # Threads
//!
//! `send` runs on a vCPU thread (the guest's transmit command); `receive` runs on the event thread when the
//! back-end's descriptor is readable. Neither side holds its own lock while calling the other.

pub mod ne2k;
pub mod rtl8139;
pub mod tap;
pub mod testing;

use std::sync::Weak;

/// An Ethernet frame is at most this long without its FCS (1514 bytes plus a VLAN tag); longer frames from a
/// guest or a back-end are dropped.
pub const MAX_FRAME: usize = 1518;
/// Frames shorter than this (without FCS) are padded by a NIC on transmit, as the wire requires.
pub const MIN_FRAME: usize = 60;

/// Why a back-end did not take a frame.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The host side cannot take a frame now (its queue is full); the frame was dropped.
    #[error("the network back-end is busy; frame dropped")]
    WouldBlock,
    /// The frame is empty or longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes refused")]
    BadLength(usize),
    /// The host side failed.
    #[error("network back-end: {0}")]
    Io(#[from] std::io::Error),
}

/// The host side of a NIC.
pub trait NetBackend: Send + Sync {
    /// Sends one Ethernet frame (destination MAC first, no FCS). Never blocks.
    fn send(&self, frame: &[u8]) -> Result<(), NetError>;
    /// Whether the host side of the link is up (a NIC reports it in its link-status bits).
    fn link_up(&self) -> bool {
        true
    }
    /// The NIC has room for received frames again after [`NetReceiver::can_receive`] said no.
    fn rx_ready(&self) {}
    /// Connects the NIC that receives frames. Called once at wiring.
    fn attach(&self, _receiver: Weak<dyn NetReceiver>) {}
}

/// The NIC side, as a back-end sees it. Called without any back-end lock held.
pub trait NetReceiver: Send + Sync {
    /// Offers one received frame (no FCS). Returns false when the NIC did not take it (receiver off, ring
    /// full, filtered out); the NIC counts drops it is responsible for.
    fn receive(&self, frame: &[u8]) -> bool;
    /// Whether the NIC could take a frame now. A back-end may leave frames in the kernel's (bounded) queue while
    /// this is false and read again after [`NetBackend::rx_ready`]; what `receive` refuses is dropped.
    fn can_receive(&self) -> bool {
        true
    }
}
