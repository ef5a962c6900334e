//! The hvmloader role: everything the guest's firmware needs from the device model, as pure data.
//!
//! SeaBIOS (Debian's QEMU build) runs directly from the reset vector and learns about the machine from the
//! CMOS RAM and the fw_cfg device. This crate computes what goes there and where the firmware goes in guest
//! memory; it knows nothing about KVM, so every rule here is unit-tested without a VM:
//!
//! * [`layout`]: RAM below and above 4 GiB, KVM's real-mode pages, BIOS image placement;
//! * [`e820`]: the `etc/e820` memory map;
//! * [`cmos`]: the platform CMOS bytes (memory size, CPUs, boot devices, floppy and disk parameters);
//! * [`boot`]: Xen `boot` letters, CMOS boot codes and the `bootorder` device paths;
//! * [`seabios`]: finding and validating the BIOS image and the VGA ROM on the host;
//! * [`pxe`]: the iPXE network boot ROMs for the NICs' ROM BARs;
//! * [`direct`]: direct kernel boot (PVH vmlinux or bzImage) with its boot data and MP table;
//! * [`hvmloader`]: one call that fills a [`devices::fw_cfg::FwCfg`] and returns the CMOS bytes.

pub mod boot;
pub mod cmos;
pub mod direct;
pub mod e820;
pub mod hvmloader;
pub mod layout;
pub mod pxe;
pub mod seabios;
