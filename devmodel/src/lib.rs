//! The device-model process as a library: config, KVM setup, machine wiring and event loop.
//! `main.rs` is only the command line around it.

pub mod config;
pub mod cpuid;
pub mod direct_boot;
pub mod event_loop;
pub mod frontends;
pub mod harness;
pub mod kvm;
pub mod machine;
pub mod net_host;
pub mod runner;
pub mod sdl;
pub mod toolstack;
