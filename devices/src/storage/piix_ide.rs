//! The PIIX3 IDE function (00:01.1, 8086:7010) as the PCI bus sees it.
//!
//! The channels themselves ([`IdeChannel`]) sit at their fixed legacy ports (0x1F0/0x3F6 on IRQ 14, 0x170/0x376
//! on IRQ 15): programming interface 0x80 says "legacy mode, bus-master capable", so the function has no BARs 0-3
//! and no INTx pin. What the function adds is BAR4, the 16 bytes of bus-master registers (primary channel at
//! +0, secondary at +8), and the IDE timing registers at 0x40-0x47 that firmware writes (SeaBIOS sets the decode
//! enable bit in IDETIM) and that only matter to real silicon, so they are plain storage here.

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::pci::{BarKind, ConfigSpace, PciError, PciFunction, RegionId};

use super::ide::{BusMasterRegs, IdeChannel};

/// Intel's vendor id.
const VENDOR: u16 = 0x8086;
/// PIIX3 IDE.
const DEVICE: u16 = 0x7010;
/// Mass storage, IDE, programming interface 0x80 (legacy ports, bus master).
const CLASS: u32 = 0x01_01_80;
/// Size of the bus-master block in BAR4.
pub const BUS_MASTER_LEN: u64 = 16;

/// The PCI face of the PIIX3 IDE interface.
pub struct PiixIde {
    config: ConfigSpace,
    channels: [Arc<IdeChannel>; 2],
    bus_master: [Arc<BusMasterRegs>; 2],
}

impl PiixIde {
    /// The function for the two channels (primary, secondary).
    pub fn new(primary: Arc<IdeChannel>, secondary: Arc<IdeChannel>) -> Result<Self, PciError> {
        let mut config = ConfigSpace::new(VENDOR, DEVICE, CLASS, 0);
        config.add_bar(4, BarKind::Io, BUS_MASTER_LEN)?;
        // IDETIM (primary, secondary), SIDETIM and the rest of the timing block: stored, no effect.
        config.set_wmask(0x40, &[0xff; 8]);
        let bus_master = [primary.bus_master(), secondary.bus_master()];
        Ok(PiixIde {
            config,
            channels: [primary, secondary],
            bus_master,
        })
    }

    /// The channel for `index` (0 primary, 1 secondary).
    pub fn channel(&self, index: usize) -> Option<&Arc<IdeChannel>> {
        self.channels.get(index)
    }

    fn bus_master_at(&self, offset: u64) -> Option<(&Arc<BusMasterRegs>, u64)> {
        let channel = usize::try_from(offset / 8).ok()?;
        self.bus_master.get(channel).map(|bm| (bm, offset % 8))
    }
}

impl PciFunction for PiixIde {
    fn config(&self) -> &ConfigSpace {
        &self.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.config
    }

    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        match (region, self.bus_master_at(offset)) {
            // The root maps the 16-byte BAR whole, so the bus lets through an access that straddles the two
            // channels' 8-byte blocks; no driver does that, and it reads all ones like any unclaimed byte.
            (RegionId::Bar(4), Some((bm, off))) if off + data.len() as u64 <= 8 => {
                bm.read(off, data)
            }
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        if let (RegionId::Bar(4), Some((bm, off))) = (region, self.bus_master_at(offset)) {
            if off + data.len() as u64 <= 8 {
                bm.write(off, data);
            }
        }
    }

    fn reset(&mut self) {
        self.config.reset();
        for channel in &self.channels {
            channel.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::irq::RecordingIrq;
    use crate::memory::test_memory;
    use crate::pci::testing::PciTestbed;
    use std::sync::Mutex;

    #[test]
    fn identity_bar4_and_bus_master_registers_as_seabios_and_linux_see_them() {
        let tb = PciTestbed::new();
        let mem = test_memory(1 << 20);
        let ch = |irq| IdeChannel::new([None, None], irq, mem.clone()).unwrap();
        let ide = PiixIde::new(ch(RecordingIrq::new()), ch(RecordingIrq::new())).unwrap();
        tb.add(1, 1, Arc::new(Mutex::new(ide)));
        assert_eq!(tb.cfg_read(1, 1, 0x00, 4), 0x7010_8086);
        assert_eq!(tb.cfg_read(1, 1, 0x08, 4) >> 8, 0x01_01_80);
        assert_eq!(tb.cfg_read(1, 1, 0x3d, 1), 0, "legacy mode: no INTx pin");
        // BAR4 sizes as a 16-byte I/O BAR; BARs 0-3 are not implemented.
        tb.cfg_write(1, 1, 0x20, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(1, 1, 0x20, 4), 0xffff_fff1);
        tb.cfg_write(1, 1, 0x10, 4, 0xffff_ffff);
        assert_eq!(tb.cfg_read(1, 1, 0x10, 4), 0);
        // IDETIM as SeaBIOS writes it.
        tb.cfg_write(1, 1, 0x40, 2, 0x8000);
        assert_eq!(tb.cfg_read(1, 1, 0x40, 2), 0x8000);
        // Mapped at 0xC000 with I/O decoding on: the secondary channel's PRD pointer at +0xC round-trips.
        tb.cfg_write(1, 1, 0x20, 4, 0xc001);
        tb.cfg_write(1, 1, 0x04, 2, 0x0005);
        tb.pio_write(0xc00c, 4, 0x0001_2340);
        assert_eq!(tb.pio_read(0xc00c, 4), 0x0001_2340);
        assert_eq!(
            tb.pio_read(0xc004, 4),
            0,
            "the primary's pointer is separate"
        );
    }
}
