//! Every emulated device of the device model.
//!
//! A device is a plain state machine (registers and logic, a serialisable `State` struct) plus a thin adapter
//! that puts it on a bus ([`bus::BusDevice`]). Devices see the rest of the machine only through injected objects:
//! interrupt lines ([`irq::IrqLine`]), a clock ([`clock::Clock`]), guest memory ([`memory::GuestMemory`]),
//! platform requests such as reset or power-off ([`system::SystemEvents`]) and back-end traits
//! ([`chardev::CharBackend`]). This crate has no KVM dependency, so every device can be driven from a unit
//! test exactly as a guest driver drives it.

pub mod block;
pub mod bus;
pub mod chardev;
pub mod chipset;
pub mod clock;
pub mod display;
pub mod fw_cfg;
pub mod irq;
pub mod legacy;
pub mod memory;
pub mod net;
pub mod pci;
pub mod ratelimit;
pub mod storage;
pub mod system;
pub mod timer;
pub mod uart;
pub mod vga;
