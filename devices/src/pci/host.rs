//! Configuration mechanism #1: the I/O ports 0xCF8-0xCFF of the i440FX host bridge.
//!
//! - **CONFIG_ADDRESS** (0xCF8, dword accesses only): bit 31 enables configuration cycles, bits 23:16
//!   select the bus, 15:11 the device, 10:8 the function and 7:2 the dword register. Bits 30:24 and 1:0
//!   are reserved and read as zero (i440FX CONFADD). Everything else reads back as written: SeaBIOS and
//!   Linux detect mechanism #1 by writing 0x80000000 and reading it back.
//! - **CONFIG_DATA** (0xCFC-0xCFF, byte/word/dword): the selected register; an access at port 0xCFC + n
//!   reaches configuration offset `register | n`. With bit 31 clear the ports decode nothing (reads float
//!   high). Accesses that would run past 0xCFF are dropped.
//! - **0xCF9**, a *byte* access inside the CONFIG_ADDRESS dword, is not the bridge's at all: it is the
//!   PIIX3's Reset Control Register. The host forwards byte accesses at 0xCF9 to the device given at
//!   construction. Other byte and word accesses at 0xCF8-0xCFB go nowhere (on hardware they are
//!   forwarded to the ISA bus, where nothing answers); this is also what makes Linux's probe for the old
//!   mechanism #2 (byte accesses at 0xCF8/0xCFA) fail, as it should.

use std::sync::{Arc, Mutex};

use crate::bus::{put_le_value, BusDevice};

use super::{PciAddress, PciRoot};

/// CONFIG_ADDRESS bit 31.
pub const CONFIG_ENABLE: u32 = 1 << 31;
/// The CONFIG_ADDRESS bits that hold state; the rest read zero.
const CONFIG_ADDRESS_MASK: u32 = 0x80ff_fffc;

/// The 0xCF8-0xCFF port block. Insert at [`PciHost::BASE`], length [`PciHost::LEN`], max width
/// [`PciHost::MAX_WIDTH`] on the port-I/O bus.
pub struct PciHost {
    root: Arc<PciRoot>,
    address: Mutex<u32>,
    reset_control: Option<Arc<dyn BusDevice>>,
}

impl PciHost {
    /// First port.
    pub const BASE: u64 = 0xcf8;
    /// Number of ports.
    pub const LEN: u64 = 8;
    /// Widest access.
    pub const MAX_WIDTH: usize = 4;

    /// The ports of `root`. `reset_control` receives byte accesses to 0xCF9 at offset 0 (the PIIX3's
    /// [`crate::chipset::piix3::Piix3Handle::reset_control`]); without it they float.
    pub fn new(root: Arc<PciRoot>, reset_control: Option<Arc<dyn BusDevice>>) -> Arc<Self> {
        Arc::new(PciHost {
            root,
            address: Mutex::new(0),
            reset_control,
        })
    }

    /// The root behind the ports.
    pub fn root(&self) -> &Arc<PciRoot> {
        &self.root
    }

    /// Platform reset: CONFIG_ADDRESS back to 0, then every function on the root.
    pub fn reset(&self) {
        *self.address.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.root.reset();
    }

    fn config_address(&self) -> u32 {
        *self.address.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The function and offset a data-port access at `port_offset` (4-7) of `len` bytes reaches, if any.
    fn target(&self, port_offset: u64, len: usize) -> Option<(PciAddress, usize)> {
        let lane = usize::try_from(port_offset.checked_sub(4)?).ok()?;
        if lane + len > 4 {
            return None;
        }
        let a = self.config_address();
        if a & CONFIG_ENABLE == 0 {
            return None;
        }
        let bus = ((a >> 16) & 0xff) as u8;
        let device = ((a >> 11) & 0x1f) as u8;
        let function = ((a >> 8) & 0x7) as u8;
        let address = PciAddress::new(bus, device, function).ok()?;
        Some((address, (a & 0xfc) as usize | lane))
    }
}

impl BusDevice for PciHost {
    fn read(&self, offset: u64, data: &mut [u8]) {
        match (offset, data.len()) {
            (0, 4) => put_le_value(data, u64::from(self.config_address())),
            (1, 1) => match &self.reset_control {
                Some(rcr) => rcr.read(0, data),
                None => data.fill(0xff),
            },
            (4..=7, len) => match self.target(offset, len) {
                Some((address, reg)) => self.root.config_read(address, reg, data),
                None => data.fill(0xff),
            },
            _ => data.fill(0xff),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        match (offset, data.len()) {
            (0, 4) => {
                let mut v = [0u8; 4];
                v.copy_from_slice(data);
                *self.address.lock().unwrap_or_else(|e| e.into_inner()) =
                    u32::from_le_bytes(v) & CONFIG_ADDRESS_MASK;
            }
            (1, 1) => {
                if let Some(rcr) = &self.reset_control {
                    rcr.write(0, data);
                }
            }
            (4..=7, len) => {
                if let Some((address, reg)) = self.target(offset, len) {
                    self.root.config_write(address, reg, data);
                }
            }
            // Linux's mechanism probe writes a byte to 0xCFB: expected, so not a warning.
            _ => crate::rate_limited!(
                log::Level::Debug,
                "pci host: {}-byte write at port {:#x} ignored",
                data.len(),
                PciHost::BASE + offset
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pci::testing::PciTestbed;

    #[test]
    fn config_address_reads_back_with_reserved_bits_clear() {
        let tb = PciTestbed::new();
        tb.pio_write(0xcf8, 4, 0x8000_0000);
        assert_eq!(tb.pio_read(0xcf8, 4), 0x8000_0000);
        tb.pio_write(0xcf8, 4, 0xffff_ffff);
        assert_eq!(tb.pio_read(0xcf8, 4), 0x80ff_fffc);
        // Linux's mechanism probes: byte write to 0xCFB ignored; byte/word reads of 0xCF8 float.
        tb.pio_write(0xcfb, 1, 0x01);
        assert_eq!(tb.pio_read(0xcf8, 4), 0x80ff_fffc);
        tb.pio_write(0xcf8, 1, 0x00);
        tb.pio_write(0xcfa, 1, 0x00);
        assert_eq!(tb.pio_read(0xcf8, 1), 0xff);
        assert_eq!(tb.pio_read(0xcfa, 1), 0xff);
        assert_eq!(tb.pio_read(0xcf8, 2), 0xffff);
        tb.pio_write(0xcf8, 2, 0);
        assert_eq!(
            tb.pio_read(0xcf8, 4),
            0x80ff_fffc,
            "word writes do not reach CONFIG_ADDRESS"
        );
    }

    #[test]
    fn data_port_byte_word_dword_accesses() {
        let tb = PciTestbed::new();
        tb.pio_write(0xcf8, 4, 0x8000_0000); // 00:00.0 register 0
        assert_eq!(tb.pio_read(0xcfc, 4), 0x1237_8086);
        assert_eq!(tb.pio_read(0xcfc, 1), 0x86);
        assert_eq!(tb.pio_read(0xcfd, 1), 0x80);
        assert_eq!(tb.pio_read(0xcfe, 2), 0x1237);
        assert_eq!(
            tb.pio_read(0xcfd, 2),
            0x3780,
            "unaligned word within the dword"
        );
        assert_eq!(tb.pio_read(0xcff, 2), 0xffff, "crossing 0xCFF is refused");
        assert_eq!(
            tb.pio_read(0xcfc, 8),
            0xffff_ffff,
            "8-byte accesses are refused"
        );
        // Register 0x3C: line writable by byte at 0xCFC, pin at 0xCFD read-only.
        tb.pio_write(0xcf8, 4, 0x8000_083c); // 00:01.0
        tb.pio_write(0xcfc, 1, 0x0b);
        tb.pio_write(0xcfd, 1, 0x0b);
        assert_eq!(tb.pio_read(0xcfc, 4), 0x0000_000b);
    }

    #[test]
    fn absent_functions_and_other_buses_read_all_ones() {
        let tb = PciTestbed::new();
        assert_eq!(tb.cfg_read(5, 0, 0, 4), 0xffff_ffff);
        assert_eq!(tb.cfg_read(31, 7, 0xfc, 4), 0xffff_ffff);
        tb.cfg_write(5, 0, 0x04, 2, 7); // dropped, no panic
        tb.pio_write(0xcf8, 4, 0x8001_0000); // bus 1, 00.0
        assert_eq!(tb.pio_read(0xcfc, 4), 0xffff_ffff);
        tb.pio_write(0xcfc, 4, 0);
        // Enable bit clear: the data ports decode nothing.
        tb.pio_write(0xcf8, 4, 0x0000_0000);
        assert_eq!(tb.pio_read(0xcfc, 4), 0xffff_ffff);
        tb.pio_write(0xcfc, 4, 0x1234_5678);
        assert_eq!(tb.cfg_read(0, 0, 0, 4), 0x1237_8086);
    }

    #[test]
    fn multifunction_scan_of_slot_1_as_seabios_does() {
        let tb = PciTestbed::with_pm();
        // Function 0 says multi-function, so the scan goes on through 1-7.
        assert_eq!(tb.cfg_read(1, 0, 0x0e, 1) & 0x80, 0x80);
        let found: Vec<u8> = (0..8)
            .filter(|&f| tb.cfg_read(1, f, 0, 2) != 0xffff)
            .collect();
        assert_eq!(found, vec![0, 3]);
        assert_eq!(tb.cfg_read(1, 3, 0, 4), 0x7113_8086);
        // The host bridge is single-function: software does not scan 00:00.1-7 (and they are absent).
        assert_eq!(tb.cfg_read(0, 0, 0x0e, 1) & 0x80, 0);
        assert_eq!(tb.cfg_read(0, 1, 0, 2), 0xffff);
    }

    #[test]
    fn garbage_on_every_port_and_width_does_not_panic() {
        let tb = PciTestbed::with_pm();
        let mut x: u32 = 0x1234_5678;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let port = 0xcf8 + u64::from(x % 8);
            let width = [1usize, 2, 4, 8, 3][(x >> 8) as usize % 5];
            if x & 0x100_0000 != 0 {
                // Keep CF9 out of it: bit 2 there legitimately asks for a reset.
                if port != 0xcf9 {
                    tb.pio_write(port, width.min(4), x.rotate_left(7));
                }
            } else {
                tb.pio_read(port, width);
            }
        }
        // The chipset still answers.
        assert_eq!(tb.cfg_read(0, 0, 0, 4), 0x1237_8086);
    }
}
