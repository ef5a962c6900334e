//! The PIIX3 PCI-to-ISA bridge, function 00:01.0 (8086:7000): PIRQ routing and the Reset Control Register.
//!
//! **PIRQ routing.** The i440FX board has four PCI interrupt links, PIRQA#-PIRQD#. A device in slot `D`
//! asserting pin `P` (1 = INTA#) drives link `(D + P - 2) & 3` (the board rotates pins per slot so that
//! single-function devices spread over the links). Config registers 0x60-0x63 (PIRQRC A-D) steer each
//! link to an ISA IRQ: bit 7 set = not routed (the reset value 0x80), bits 3:0 = the IRQ. Only IRQs 3-7,
//! 9-12, 14 and 15 are legal; other values act as "not routed". SeaBIOS writes 10, 10, 11, 11.
//!
//! PCI interrupts are level-triggered, active high, and shared: a link is high while any of its sources
//! is, and several links (and ISA devices such as the SCI) may land on one IRQ. The router therefore keeps,
//! per link, the set of asserting sources, and drives the ISA IRQ through an [`IrqMux`] (GSI = ISA IRQ),
//! one mux source per link, which ORs it with every other sharer. The route is looked up when the level
//! changes, and when the guest re-routes a link that is high (ACPI `_SRS` on LNKA-LNKD may do this at any
//! time) the level moves from the old IRQ to the new one.
//!
//! The mux is called with the PIIX3 lock held: two sources on one link changing at once must reach the
//! mux in the order their updates were applied, or a stale "high" could win. The mux never calls back.
//!
//! **ELCR** (ports 0x4D0/0x4D1, which mark IRQs level-triggered for the 8259s) belongs to the PIIX3 too,
//! but KVM's in-kernel PIC implements it, so it is not modelled here.
//!
//! **Reset Control Register** (port 0xCF9, byte): bit 1 selects a hard (system) reset, bit 2 resets the
//! CPU when written as 1. A write with bit 2 set asks the machine for a [`SystemRequest::Reset`] (the
//! bit itself is not kept, so each such write is a new 0→1 transition); reads return the stored bit 1.
//! SeaBIOS reboots by writing 0x02 then 0x06.
//!
//! The other registers (I/O recovery, X-bus chip select, top of memory, motherboard IRQ/DMA, APIC base,
//! SMI control...) are plain read/write bytes with their datasheet reset values: the machine has nothing
//! for them to control.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::irq::{IrqLine, IrqMux, SourceId};
use crate::pci::config::{ConfigSpace, COMMAND, STATUS};
use crate::pci::{PciError, PciFunction, SharedFunction};
use crate::system::{SystemEvents, SystemRequest};

/// PCI vendor ID (Intel).
pub const VENDOR_ID: u16 = 0x8086;
/// PIIX3 function 0 device ID.
pub const DEVICE_ID: u16 = 0x7000;
/// Bridge, ISA bridge.
pub const CLASS: u32 = 0x06_01_00;
/// PIRQRC A (0x60); the register of link n is at 0x60 + n.
pub const PIRQ_ROUTE: usize = 0x60;
/// PIRQRC bit 7: the link is not routed to any IRQ.
pub const PIRQ_DISABLED: u8 = 0x80;
/// Reset Control Register: hard reset select.
pub const RCR_SYSTEM_RESET: u8 = 1 << 1;
/// Reset Control Register: reset the CPU.
pub const RCR_RESET_CPU: u8 = 1 << 2;

/// Bit n set = ISA IRQ n may take a PCI link (3-7, 9-12, 14, 15).
const ROUTABLE_IRQS: u16 = 0b1101_1110_1111_1000;

/// The ISA IRQ a PIRQRC value routes to, if any.
pub fn route_irq(route: u8) -> Option<u8> {
    let irq = route & 0x0f;
    (route & PIRQ_DISABLED == 0 && ROUTABLE_IRQS & (1 << irq) != 0).then_some(irq)
}

/// The PIRQ link (0 = A) that pin `pin` (1 = INTA#) of slot `slot` drives.
pub fn pirq_link(slot: u8, pin: u8) -> Result<usize, PciError> {
    if slot > 31 {
        return Err(PciError::Address {
            device: slot,
            function: 0,
        });
    }
    if !(1..=4).contains(&pin) {
        return Err(PciError::Pin(pin));
    }
    // (slot + pin - 2) mod 4, without underflow for slot 0 INTA#.
    Ok((usize::from(slot) + usize::from(pin) + 2) & 3)
}

/// The serialisable state of the PIIX3 function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piix3State {
    /// Configuration space (PIRQRC included: it is the routing table).
    pub config: ConfigSpace,
    /// Per link, the INTx sources (line ids) holding it high.
    pub asserted: [Vec<u32>; 4],
    /// Per link, the ISA IRQ it holds high on the mux now.
    pub driven: [Option<u8>; 4],
    /// Reset Control Register (bit 1 only).
    pub rcr: u8,
    /// INTx lines handed out so far (the next line id).
    pub lines: u32,
}

/// The PIIX3 ISA bridge function.
pub struct Piix3 {
    state: Piix3State,
    mux: Arc<IrqMux>,
    link_sources: [SourceId; 4],
}

fn power_on_config() -> ConfigSpace {
    let mut c = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, 0);
    c.set_multifunction(true);
    c.init_u16(COMMAND, 0x0007);
    c.init_u16(STATUS, 0x0200);
    // Device-specific registers are plain read/write unless said otherwise.
    c.set_wmask(0x40, &[0xff; 0xc0]);
    c.init_u8(0x4c, 0x4d); // IORT
    c.init_u16(0x4e, 0x0003); // XBCS
    for n in 0..4 {
        c.init_u8(PIRQ_ROUTE + n, PIRQ_DISABLED);
        c.set_wmask(PIRQ_ROUTE + n, &[0x8f]); // bits 6:4 reserved
    }
    c.init_u8(0x69, 0x02); // TOM
    c.init_u8(0x70, 0x80); // MBIRQ0
    c.init_u16(0x76, 0x0c0c); // MBDMA0/1
    c.init_u16(0x78, 0x0002); // PCSC
    c.init_u8(0xa0, 0x08); // SMICNTL
    c.init_u8(0xa8, 0x0f); // FTMR
    c
}

impl Piix3 {
    fn new(mux: Arc<IrqMux>) -> Self {
        let link_sources = [
            mux.new_source(),
            mux.new_source(),
            mux.new_source(),
            mux.new_source(),
        ];
        Piix3 {
            state: Piix3State {
                config: power_on_config(),
                asserted: Default::default(),
                driven: [None; 4],
                rcr: 0,
                lines: 0,
            },
            mux,
            link_sources,
        }
    }

    /// Drives link `n`'s IRQ to match its sources and its current route.
    fn sync_link(&mut self, n: usize) {
        let (Some(asserted), Some(driven), Some(&source)) = (
            self.state.asserted.get(n),
            self.state.driven.get(n).copied(),
            self.link_sources.get(n),
        ) else {
            return;
        };
        let want = if asserted.is_empty() {
            None
        } else {
            route_irq(self.state.config.read_u8(PIRQ_ROUTE + n))
        };
        if want == driven {
            return;
        }
        if let Some(old) = driven {
            self.mux.set(u32::from(old), source, false);
        }
        if let Some(new) = want {
            self.mux.set(u32::from(new), source, true);
        }
        self.state.driven[n] = want;
    }

    fn set_source(&mut self, link: usize, id: u32, high: bool) {
        let Some(set) = self.state.asserted.get_mut(link) else {
            return;
        };
        let present = set.contains(&id);
        if high && !present {
            set.push(id);
        } else if !high && present {
            set.retain(|&s| s != id);
        }
        self.sync_link(link);
    }
}

impl PciFunction for Piix3 {
    fn config(&self) -> &ConfigSpace {
        &self.state.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.state.config
    }

    fn config_write(&mut self, offset: usize, data: &[u8]) {
        self.write_config_space(offset, data);
        for n in 0..4 {
            self.sync_link(n);
        }
    }

    fn reset(&mut self) {
        self.state.config.reset();
        self.state.rcr = 0;
        // All links become unrouted; their sources keep their levels until their devices reset.
        for n in 0..4 {
            self.sync_link(n);
        }
    }
}

/// A shared handle to the PIIX3: the PCI function, its PIRQ router and its reset register.
#[derive(Clone)]
pub struct Piix3Handle {
    inner: Arc<Mutex<Piix3>>,
    system: Arc<dyn SystemEvents>,
}

impl Piix3Handle {
    /// A PIIX3 at power-on whose PCI links drive ISA IRQs through `mux` and whose 0xCF9 register asks
    /// `system` for resets.
    pub fn new(mux: Arc<IrqMux>, system: Arc<dyn SystemEvents>) -> Self {
        Piix3Handle {
            inner: Arc::new(Mutex::new(Piix3::new(mux))),
            system,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Piix3> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The function to add to the root at 00:01.0.
    pub fn function(&self) -> SharedFunction {
        self.inner.clone()
    }

    /// The INTx output for pin `pin` (1-4) of a function in slot `slot`: a level line on PIRQ link
    /// `(slot + pin - 2) & 3`. Each call makes a new source, so functions sharing a link are ORed.
    pub fn intx_line(&self, slot: u8, pin: u8) -> Result<Arc<dyn IrqLine>, PciError> {
        let link = pirq_link(slot, pin)?;
        let id = {
            let mut p = self.lock();
            let id = p.state.lines;
            p.state.lines = id.wrapping_add(1);
            id
        };
        Ok(Arc::new(PirqLine {
            piix3: Arc::clone(&self.inner),
            link,
            id,
        }))
    }

    /// The Reset Control Register, for [`crate::pci::PciHost::new`] (byte accesses to 0xCF9).
    pub fn reset_control(&self) -> Arc<dyn BusDevice> {
        Arc::new(ResetControl {
            piix3: Arc::clone(&self.inner),
            system: Arc::clone(&self.system),
        })
    }

    /// The ISA IRQ link `link` (0 = PIRQA) is routed to now, if any.
    pub fn link_irq(&self, link: usize) -> Option<u8> {
        let p = self.lock();
        route_irq(p.state.config.read_u8(PIRQ_ROUTE.checked_add(link)?))
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> Piix3State {
        self.lock().state.clone()
    }

    /// Replaces the state. The mux's own state (which sources hold which GSI) is restored separately.
    pub fn restore(&self, state: Piix3State) {
        self.lock().state = state;
    }
}

/// One function's INTx output into the router.
struct PirqLine {
    piix3: Arc<Mutex<Piix3>>,
    link: usize,
    id: u32,
}

impl IrqLine for PirqLine {
    fn set_level(&self, high: bool) {
        let mut p = self.piix3.lock().unwrap_or_else(|e| e.into_inner());
        p.set_source(self.link, self.id, high);
    }
}

/// Port 0xCF9.
struct ResetControl {
    piix3: Arc<Mutex<Piix3>>,
    system: Arc<dyn SystemEvents>,
}

impl BusDevice for ResetControl {
    fn read(&self, _offset: u64, data: &mut [u8]) {
        let rcr = self
            .piix3
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .rcr;
        data.fill(0);
        if let Some(b) = data.first_mut() {
            *b = rcr;
        }
    }

    fn write(&self, _offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        self.piix3
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .state
            .rcr = value & RCR_SYSTEM_RESET;
        if value & RCR_RESET_CPU != 0 {
            self.system.request(SystemRequest::Reset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::PciTestbed;

    #[test]
    fn identity_and_multifunction_header() {
        let tb = PciTestbed::new();
        assert_eq!(tb.cfg_read(1, 0, 0x00, 4), 0x7000_8086);
        assert_eq!(tb.cfg_read(1, 0, 0x08, 4) >> 8, 0x060100);
        assert_eq!(tb.cfg_read(1, 0, 0x0e, 1), 0x80);
        for n in 0..4 {
            assert_eq!(tb.cfg_read(1, 0, 0x60 + n, 1), 0x80);
        }
        assert_eq!(tb.cfg_read(1, 0, 0x60, 4), 0x8080_8080);
    }

    #[test]
    fn link_formula_matches_the_board() {
        assert_eq!(pirq_link(1, 1), Ok(0));
        assert_eq!(pirq_link(2, 1), Ok(1));
        assert_eq!(pirq_link(3, 1), Ok(2));
        assert_eq!(pirq_link(3, 2), Ok(3));
        assert_eq!(pirq_link(4, 2), Ok(0));
        assert_eq!(pirq_link(0, 1), Ok(3));
        assert_eq!(pirq_link(2, 0), Err(PciError::Pin(0)));
        assert_eq!(pirq_link(2, 5), Err(PciError::Pin(5)));
        assert!(pirq_link(32, 1).is_err());
    }

    #[test]
    fn seabios_routing_with_two_devices_sharing_irq_11() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        assert_eq!(tb.cfg_read(1, 0, 0x60, 4), 0x0b0b_0a0a);
        // Slot 3 INTA: (3 + 1 - 2) & 3 = 2 → link C → IRQ 11; slot 3 INTB → link D → IRQ 11.
        let a = tb.piix3.intx_line(3, 1).unwrap();
        let b = tb.piix3.intx_line(3, 2).unwrap();
        a.set_level(true);
        assert!(tb.gsi.level(11));
        b.set_level(true);
        a.set_level(false);
        assert!(tb.gsi.level(11), "the sharer still holds IRQ 11");
        b.set_level(false);
        assert!(!tb.gsi.level(11));
        assert_eq!(tb.gsi.rising_edges(11), 1);
        assert!(!tb.gsi.level(10));
    }

    #[test]
    fn two_functions_on_one_link_are_ored() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        let f0 = tb.piix3.intx_line(1, 1).unwrap();
        let f2 = tb.piix3.intx_line(1, 1).unwrap();
        f0.set_level(true);
        f2.set_level(true);
        f0.set_level(false);
        assert!(tb.gsi.level(10));
        f2.set_level(false);
        assert!(!tb.gsi.level(10));
    }

    #[test]
    fn unrouted_and_illegal_routes_drive_nothing() {
        let tb = PciTestbed::new();
        let line = tb.piix3.intx_line(1, 1).unwrap(); // link A
        line.set_level(true);
        for irq in 0..16 {
            assert!(!tb.gsi.level(irq), "unrouted link raised IRQ {irq}");
        }
        for bad in [0u32, 1, 2, 8, 13] {
            tb.cfg_write(1, 0, 0x60, 1, bad);
            assert_eq!(tb.piix3.link_irq(0), None);
            for irq in 0..16 {
                assert!(!tb.gsi.level(irq), "route {bad} raised IRQ {irq}");
            }
        }
        // Reserved bits 6:4 do not stick.
        tb.cfg_write(1, 0, 0x60, 1, 0x7f);
        assert_eq!(tb.cfg_read(1, 0, 0x60, 1), 0x0f);
        assert!(tb.gsi.level(15), "0x0F routes to IRQ 15");
    }

    #[test]
    fn rerouting_an_asserted_link_moves_the_level() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        let line = tb.piix3.intx_line(2, 1).unwrap(); // link B → IRQ 10
        line.set_level(true);
        assert!(tb.gsi.level(10));
        tb.cfg_write(1, 0, 0x61, 1, 5);
        assert!(!tb.gsi.level(10));
        assert!(tb.gsi.level(5));
        tb.cfg_write(1, 0, 0x61, 1, 0x80);
        assert!(!tb.gsi.level(5));
        tb.cfg_write(1, 0, 0x60, 4, 0x0b0b_0b0a); // dword write re-routing all four
        assert!(tb.gsi.level(11));
        line.set_level(false);
        assert!(!tb.gsi.level(11));
    }

    #[test]
    fn reset_control_register() {
        let tb = PciTestbed::new();
        tb.pio_write(0xcf9, 1, 0x02);
        assert_eq!(tb.pio_read(0xcf9, 1), 0x02);
        assert!(tb.system.take().is_empty());
        tb.pio_write(0xcf9, 1, 0x06);
        assert_eq!(tb.system.take(), vec![SystemRequest::Reset]);
        tb.pio_write(0xcf9, 1, 0x04);
        assert_eq!(tb.system.take(), vec![SystemRequest::Reset]);
        assert_eq!(tb.pio_read(0xcf9, 1), 0x00);
        // A dword at 0xCF8 is CONFIG_ADDRESS, never the RCR.
        tb.pio_write(0xcf8, 4, 0x8000_0400);
        assert!(tb.system.take().is_empty());
    }

    #[test]
    fn reset_unroutes_links_and_clears_rcr() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        let line = tb.piix3.intx_line(1, 1).unwrap();
        line.set_level(true);
        tb.pio_write(0xcf9, 1, 0x02);
        tb.host.reset();
        assert!(!tb.gsi.level(10));
        assert_eq!(tb.cfg_read(1, 0, 0x60, 4), 0x8080_8080);
        assert_eq!(tb.pio_read(0xcf9, 1), 0);
        // The source is still high; routing again raises the IRQ again.
        tb.route_pirqs_like_seabios();
        assert!(tb.gsi.level(10));
    }

    #[test]
    fn snapshot_and_restore() {
        let tb = PciTestbed::new();
        tb.route_pirqs_like_seabios();
        let snap = tb.piix3.snapshot();
        tb.cfg_write(1, 0, 0x60, 1, 3);
        assert_eq!(tb.piix3.link_irq(0), Some(3));
        tb.piix3.restore(snap.clone());
        assert_eq!(tb.piix3.link_irq(0), Some(10));
        assert_eq!(tb.piix3.snapshot(), snap);
    }
}
