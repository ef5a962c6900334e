//! The i440FX PCI and memory controller (host bridge), function 00:00.0 (8086:1237 rev 02).
//!
//! On hardware this bridge also owns the configuration ports 0xCF8-0xCFF ([`crate::pci::PciHost`]); as a
//! PCI function it mostly describes the memory controller.
//!
//! **PAM registers** (0x59-0x5F) decide, per 16 KiB/64 KiB segment of 0xC0000-0xFFFFF, whether reads and
//! writes go to DRAM or to the ISA/flash side. Here they are a plain register file: writes are stored and
//! read back, and change nothing. The machine keeps all of 0xC0000-0xFFFFF as RAM and copies the BIOS
//! image into it at power-on and on every reset, so there is nothing to switch. They read 0x00 at reset
//! as on hardware: SeaBIOS reads PAM0 bit 4 ("RAM readable") to decide whether it must copy itself down
//! from the 4 GiB flash alias, and with 0x00 it always does, which is correct whatever the machine
//! pre-copied. The price is that the F-segment stays writable after POST (SeaBIOS write-protects it by
//! writing PAM0 = 0x10); no guest we target relies on that protection. Only the defined bits stick
//! (PAM0 has only the high nibble; the others 0x33).
//!
//! **SMRAM** (0x72) reads 0x02 at reset (C_BASE_SEG = 010, the A-segment). D_OPEN, D_CLS, D_LCK and
//! G_SMRAME are stored with their lock semantics (D_LCK clears D_OPEN and freezes the register until reset)
//! but there is no SMM: only SeaBIOS's SMM set-up writes it, and the PIIX4 PM function tells SeaBIOS to
//! skip that.
//!
//! The subsystem ID 1AF4:1100 is QEMU's; SeaBIOS then prints "Running on QEMU (i440fx)" and probes CD
//! media a little harder, which is harmless. The other device-specific registers (DRAM timing and row
//! boundaries, error reporting...) are plain read/write bytes.

use serde::{Deserialize, Serialize};

use crate::pci::config::{ConfigSpace, COMMAND, STATUS};
use crate::pci::PciFunction;

/// PCI vendor ID (Intel).
pub const VENDOR_ID: u16 = 0x8086;
/// i440FX device ID.
pub const DEVICE_ID: u16 = 0x1237;
/// Revision.
pub const REVISION: u8 = 0x02;
/// Bridge, host bridge.
pub const CLASS: u32 = 0x06_00_00;
/// PAM0; PAM0-PAM6 are 0x59-0x5F.
pub const PAM0: usize = 0x59;
/// SMRAM control.
pub const SMRAM: usize = 0x72;

const SMRAM_D_OPEN: u8 = 1 << 6;
const SMRAM_D_CLS: u8 = 1 << 5;
const SMRAM_D_LCK: u8 = 1 << 4;
const SMRAM_G_SMRAME: u8 = 1 << 3;

/// The serialisable state of the i440FX function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct I440fxState {
    /// Configuration space.
    pub config: ConfigSpace,
}

/// The i440FX host bridge function. Add it to the root at 00:00.0 as `Arc::new(Mutex::new(I440fx::new()))`.
pub struct I440fx {
    state: I440fxState,
}

impl Default for I440fx {
    fn default() -> Self {
        Self::new()
    }
}

impl I440fx {
    /// The bridge at power-on.
    pub fn new() -> Self {
        let mut c = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, REVISION);
        c.set_subsystem(0x1af4, 0x1100);
        c.init_u16(COMMAND, 0x0006);
        c.init_u16(STATUS, 0x0280);
        c.set_wmask(0x40, &[0xff; 0xc0]);
        c.set_wmask(PAM0, &[0x30, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33]);
        c.init_u8(SMRAM, 0x02);
        c.set_wmask(
            SMRAM,
            &[SMRAM_D_OPEN | SMRAM_D_CLS | SMRAM_D_LCK | SMRAM_G_SMRAME],
        );
        I440fx {
            state: I440fxState { config: c },
        }
    }

    /// PAM0-PAM6 as the guest last wrote them.
    pub fn pam(&self) -> [u8; 7] {
        let mut pam = [0u8; 7];
        self.state.config.read(PAM0, &mut pam);
        pam
    }

    /// The SMRAM control register.
    pub fn smram(&self) -> u8 {
        self.state.config.read_u8(SMRAM)
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> I440fxState {
        self.state.clone()
    }

    /// Replaces the state.
    pub fn restore(&mut self, state: I440fxState) {
        self.state = state;
    }
}

impl PciFunction for I440fx {
    fn config(&self) -> &ConfigSpace {
        &self.state.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.state.config
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        let old = self.smram();
        self.write_config_space(offset, data);
        let mut new = self.smram();
        if old & SMRAM_D_LCK != 0 {
            // Locked: only D_CLS may still change.
            new = (old & !SMRAM_D_CLS) | (new & SMRAM_D_CLS);
        }
        if new & SMRAM_D_LCK != 0 {
            new &= !SMRAM_D_OPEN;
        }
        self.state.config.set_u8(SMRAM, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::PciTestbed;

    #[test]
    fn identity_as_seabios_reads_it() {
        let tb = PciTestbed::new();
        assert_eq!(tb.cfg_read(0, 0, 0x00, 4), 0x1237_8086);
        assert_eq!(tb.cfg_read(0, 0, 0x08, 4), 0x0600_0002);
        assert_eq!(tb.cfg_read(0, 0, 0x2c, 4), 0x1100_1af4);
        assert_eq!(tb.cfg_read(0, 0, 0x0e, 1), 0x00, "single function");
        assert_eq!(tb.cfg_read(0, 0, SMRAM as u8, 1), 0x02);
    }

    #[test]
    fn pam_registers_read_zero_then_store_what_seabios_writes() {
        let tb = PciTestbed::new();
        assert_eq!(tb.cfg_read(0, 0, 0x58, 4), 0);
        assert_eq!(tb.cfg_read(0, 0, 0x5c, 4), 0);
        // make_bios_writable: PAM1..6 = 0x33, then PAM0 = 0x30 (byte writes through 0xCFD-0xCFF).
        for pam in 0x5a..=0x5f {
            tb.cfg_write(0, 0, pam, 1, 0x33);
        }
        tb.cfg_write(0, 0, 0x59, 1, 0x30);
        assert_eq!(tb.cfg_read(0, 0, 0x58, 4), 0x3333_3000);
        assert_eq!(tb.cfg_read(0, 0, 0x5c, 4), 0x3333_3333);
        // make_bios_readonly: PAM0 = 0x10, reserved bits do not stick.
        tb.cfg_write(0, 0, 0x59, 1, 0xff & 0x1f);
        tb.cfg_write(0, 0, 0x5a, 2, 0xffff);
        assert_eq!(tb.cfg_read(0, 0, 0x59, 1), 0x10);
        assert_eq!(tb.cfg_read(0, 0, 0x5a, 2), 0x3333);
        let i440 = tb
            .root
            .function(crate::pci::PciAddress::new(0, 0, 0).unwrap());
        assert!(i440.is_some());
        tb.host.reset();
        assert_eq!(
            tb.cfg_read(0, 0, 0x58, 4),
            0,
            "PAM reads 0 again after reset"
        );
    }

    #[test]
    fn smram_lock_freezes_the_register() {
        let mut b = I440fx::new();
        b.config_write(SMRAM, &[0xff]);
        assert_eq!(
            b.smram(),
            0x3a,
            "D_LCK set clears D_OPEN; C_BASE_SEG read-only"
        );
        b.config_write(SMRAM, &[0x40]);
        assert_eq!(b.smram(), 0x1a, "locked: only D_CLS changed");
        b.reset();
        assert_eq!(b.smram(), 0x02);
        b.config_write(SMRAM, &[0x4a]);
        assert_eq!(b.smram(), 0x4a);
        assert_eq!(b.pam(), [0; 7]);
    }
}
