//! Direct kernel boot in the machine: the firmware's work, done by the device model at power-on and at
//! every platform reset, for a config whose `kernel` is a Linux kernel.
//!
//! * the kernel, initrd, command line, boot information and MP table go into guest RAM
//!   ([`firmware::direct::DirectKernel::load`]);
//! * the PIIX3 PCI interrupt links are routed to IRQs 10, 10, 11, 11 through the configuration ports, as
//!   SeaBIOS does on a firmware boot (the MP table describes exactly this routing; a platform reset puts the
//!   links back to "not routed", so it is done again each time).
//!
//! PCI BARs are left for the kernel to assign (Linux assigns unassigned resources from the e820 gaps): the
//! IDE channels work from their legacy ports, and the kernel's drivers enable their devices themselves.

use devices::bus::Bus;
use devices::memory::GuestMemory;
use firmware::direct::{mptable::PIRQ_IRQS, BootEntry, DirectBootError, DirectKernel};
use firmware::layout::MemoryLayout;

use crate::config::{Boot, Config};

/// PCI configuration address port and data port (mechanism #1).
const CONFIG_ADDRESS: u64 = 0xcf8;
const CONFIG_DATA: u64 = 0xcfc;
/// The PIIX3 ISA bridge: 00:01.0, PIRQRC A at register 0x60.
const PIIX3_DEVFN: u32 = 1 << 3;
const PIRQ_ROUTE: u32 = 0x60;

/// A direct boot's kernel, read and checked once, loaded at every power-on and reset.
pub struct DirectBoot {
    kernel: DirectKernel,
}

impl DirectBoot {
    /// Reads and checks the config's kernel and initrd; `None` for a firmware boot.
    pub fn prepare(config: &Config) -> Result<Option<DirectBoot>, DirectBootError> {
        let Boot::Kernel {
            path,
            ramdisk,
            cmdline,
        } = &config.boot
        else {
            return Ok(None);
        };
        let layout = MemoryLayout::new(config.memory_mib).map_err(|e| DirectBootError {
            key: "memory",
            found: e.to_string(),
            expected: "a memory size the machine can lay out".into(),
        })?;
        let kernel = DirectKernel::open(path, ramdisk.as_deref(), cmdline, layout, config.vcpus)?;
        log::info!(
            "direct kernel boot: {} ({}){}, command line '{cmdline}'",
            path.display(),
            kernel.format().describe(),
            kernel
                .initrd_range()
                .map_or(String::new(), |(addr, len)| format!(
                    ", initrd of {len} bytes at {addr:#x}"
                )),
        );
        Ok(Some(DirectBoot { kernel }))
    }

    /// Writes everything the kernel needs into RAM and routes the PCI interrupt links; returns the boot
    /// vCPU's entry state.
    pub fn load(&self, mem: &GuestMemory, pio: &Bus) -> Result<BootEntry, DirectBootError> {
        let entry = self.kernel.load(mem)?;
        route_pci_interrupts(pio);
        Ok(entry)
    }
}

/// Writes PIRQRC A-D of the PIIX3 through the configuration ports, as a guest's firmware does.
fn route_pci_interrupts(pio: &Bus) {
    for (link, irq) in PIRQ_IRQS.iter().enumerate() {
        let reg = PIRQ_ROUTE + link as u32;
        let address = 0x8000_0000 | (PIIX3_DEVFN << 8) | (reg & !3);
        pio.write(CONFIG_ADDRESS, &address.to_le_bytes());
        pio.write(CONFIG_DATA + u64::from(reg & 3), &[*irq]);
    }
}
