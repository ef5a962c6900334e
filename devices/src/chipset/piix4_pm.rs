//! PIIX4-compatible power management, function 00:01.3 (8086:7113 rev 03): the ACPI fixed hardware.
//!
//! QEMU's i440FX machine puts the PIIX4's PM function next to a PIIX3, and SeaBIOS's ACPI tables describe
//! exactly that; this model follows it.
//!
//! **Configuration space.** PMBA (0x40) holds the I/O base of the 64-byte PM block (bits 15:6; bit 0 reads
//! 1 to mark an I/O resource) and PMREGMISC (0x80) bit 0 enables it. While both say so, the block is
//! decoded on the port bus (as a [`RegionId::Device`] window, so the root moves it when the guest does).
//! SeaBIOS puts it at 0xB000 (or 0x600). DEVACTB's byte 0x5B reads 0x02 at reset, APMC_EN: SeaBIOS's
//! 256K build reads it as "SMM already initialised" and skips SMM set-up, which this machine could not
//! run (QEMU does the same when SMM is off). SMBBA (0x90) and the rest are plain registers; there is no
//! SMBus controller behind them.
//!
//! **PM block** (offsets from PMBA; what the FADT points at):
//! - +0 PM1_STS (W1C): TMR_STS bit 0, PWRBTN_STS bit 8, WAK_STS bit 15 (also BM/GBL/RTC status, never set).
//! - +2 PM1_EN: TMR_EN bit 0, GBL_EN bit 5, PWRBTN_EN bit 8, RTC_EN bit 10.
//! - +4 PM1_CNT: SCI_EN bit 0, BM_RLD bit 1, SLP_TYP bits 12:10, SLP_EN bit 13 (write-only). Writing
//!   SLP_EN with SLP_TYP 0 asks the machine to power off: SeaBIOS's tables declare `_S5 = 0` (and `_S4 = 2`
//!   when S4 is offered, which QEMU also treats as power-off, since the guest has saved itself to disk).
//!   S3 (type 1) is not supported; it and other types are ignored with a warning. Xen's own DSDT used type
//!   7 for S5, but with SeaBIOS building the tables that never reaches this device.
//! - +8 PM_TMR: a read-only 24-bit counter at 3.579545 MHz, computed from the injected clock (so it never
//!   drifts from machine time). Each time its bit 23 changes (every 2^23 ticks, about 2.34 s) TMR_STS is
//!   set; the state is brought up to date on every access and by [`Timed::advance`], which is only armed
//!   while TMR_EN is set (without it nobody needs the timer to fire).
//! - Other offsets read 0 and ignore writes (the PIIX4's GPIO, processor-control and global registers,
//!   which no ACPI table of ours refers to).
//!
//! **SCI** is a level on ISA IRQ 9, high while `SCI_EN` and an enabled event is pending
//! (`PM1_STS & PM1_EN`, or `GPE0_STS & GPE0_EN`). Without SCI_EN the events would be SMIs, and there is
//! no SMM, so nothing is signalled.
//!
//! **APM control** (ports 0xB2/0xB3, fixed): the FADT's SMI_CMD is 0xB2 with ACPI_ENABLE 0xF1 and
//! ACPI_DISABLE 0xF0. On hardware the write raises an SMI whose handler flips SCI_EN; here the device
//! flips it directly. 0xB3 is a scratch byte.
//!
//! **GPE0 block** (ports 0xAFE0-0xAFE3, fixed, as QEMU's and SeaBIOS's tables place it): GPE0_STS (2
//! bytes, W1C) and GPE0_EN (2 bytes). Nothing in this machine raises a GPE (no hotplug), but the block
//! exists so an ACPI OS reads sane zeros rather than a floating 0xFF status. The PCI and CPU hotplug ports
//! SeaBIOS's DSDT also mentions (0xAE00, 0xAF00) are not modelled here.
//!
//! `press_power_button` sets PWRBTN_STS, which an ACPI OS with PWRBTN_EN turns into an orderly shutdown.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::clock::{Clock, NS_PER_SEC};
use crate::irq::IrqLine;
use crate::pci::config::{ConfigSpace, STATUS};
use crate::pci::{AddressSpace, PciFunction, Region, RegionId, SharedFunction};
use crate::system::{SystemEvents, SystemRequest};
use crate::timer::{Timed, TimerKick};

/// PCI vendor ID (Intel).
pub const VENDOR_ID: u16 = 0x8086;
/// PIIX4 power-management function.
pub const DEVICE_ID: u16 = 0x7113;
/// Revision.
pub const REVISION: u8 = 0x03;
/// Bridge, other bridge.
pub const CLASS: u32 = 0x06_80_00;
/// PM base address register.
pub const PMBA: usize = 0x40;
/// DEVACTB byte 3 (bit 1 = APMC_EN).
pub const DEVACTB_HIGH: usize = 0x5b;
/// PM register miscellaneous (bit 0 = PM I/O space enable).
pub const PMREGMISC: usize = 0x80;
/// SMBus base address register.
pub const SMBBA: usize = 0x90;
/// Length of the PM I/O block.
pub const PM_BLOCK_LEN: u64 = 64;
/// The window id of the PM block.
pub const PM_BLOCK: RegionId = RegionId::Device(0);
/// APM control port (the FADT's SMI_CMD); status is the next port.
pub const APM_PORT: u64 = 0xb2;
/// GPE0 block port.
pub const GPE0_PORT: u64 = 0xafe0;
/// PM timer frequency.
pub const PM_TIMER_HZ: u64 = 3_579_545;

/// PM1_STS/EN: timer carry.
pub const TMR: u16 = 1 << 0;
/// PM1_STS: bus master status.
pub const BM_STS: u16 = 1 << 4;
/// PM1_STS/EN: global (BIOS release).
pub const GBL: u16 = 1 << 5;
/// PM1_STS/EN: power button.
pub const PWRBTN: u16 = 1 << 8;
/// PM1_STS/EN: RTC alarm.
pub const RTC: u16 = 1 << 10;
/// PM1_STS: wake status.
pub const WAK_STS: u16 = 1 << 15;
/// PM1_CNT: SCI (rather than SMI) delivery.
pub const SCI_EN: u16 = 1 << 0;
/// PM1_CNT: bus master reload.
pub const BM_RLD: u16 = 1 << 1;
/// PM1_CNT: sleep type field.
pub const SLP_TYP: u16 = 7 << 10;
/// PM1_CNT: sleep enable (write-only).
pub const SLP_EN: u16 = 1 << 13;
/// SLP_TYP value SeaBIOS's DSDT declares for S5.
pub const SLP_TYP_S5: u16 = 0;
/// SLP_TYP value SeaBIOS's SSDT declares for S4.
pub const SLP_TYP_S4: u16 = 2;
/// APM command: enable ACPI.
pub const ACPI_ENABLE: u8 = 0xf1;
/// APM command: disable ACPI.
pub const ACPI_DISABLE: u8 = 0xf0;

const PM1_STS_W1C: u16 = TMR | BM_STS | GBL | PWRBTN | RTC | WAK_STS;
const PM1_EN_MASK: u16 = TMR | GBL | PWRBTN | RTC;
const PM1_CNT_STORED: u16 = SCI_EN | BM_RLD | SLP_TYP;
const TIMER_CARRY_SHIFT: u32 = 23;

/// The serialisable state of the PM function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piix4PmState {
    /// Configuration space.
    pub config: ConfigSpace,
    /// PM1_STS.
    pub pm1_sts: u16,
    /// PM1_EN.
    pub pm1_en: u16,
    /// PM1_CNT (without the write-only SLP_EN).
    pub pm1_cnt: u16,
    /// GPE0_STS.
    pub gpe0_sts: u16,
    /// GPE0_EN.
    pub gpe0_en: u16,
    /// Last APM command byte (0xB2).
    pub apm_cnt: u8,
    /// APM status byte (0xB3).
    pub apm_sts: u8,
    /// PM timer ticks >> 23 when TMR_STS was last brought up to date.
    pub timer_carries: u64,
    /// The SCI level last driven.
    pub sci: bool,
}

/// The PM function's state machine.
pub struct Piix4Pm {
    state: Piix4PmState,
    clock: Arc<dyn Clock>,
    sci: Arc<dyn IrqLine>,
    system: Arc<dyn SystemEvents>,
    kick: TimerKick,
}

/// PM timer ticks at machine time `ns`.
fn ticks(ns: u64) -> u64 {
    let t = u128::from(ns) * u128::from(PM_TIMER_HZ) / u128::from(NS_PER_SEC);
    u64::try_from(t).unwrap_or(u64::MAX)
}

/// The first machine time at which the timer has reached `tick`.
fn time_of_tick(tick: u64) -> u64 {
    let hz = u128::from(PM_TIMER_HZ);
    let ns = (u128::from(tick) * u128::from(NS_PER_SEC)).div_ceil(hz);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

fn power_on_config() -> ConfigSpace {
    let mut c = ConfigSpace::new(VENDOR_ID, DEVICE_ID, CLASS, REVISION);
    // Pin 1 is a valid pin: cannot fail.
    let _ = c.set_interrupt_pin(1);
    c.init_u16(STATUS, 0x0280);
    c.set_wmask(0x40, &[0xff; 0xc0]);
    c.init_u32(PMBA, 1);
    c.set_wmask(PMBA, &[0xc0, 0xff, 0, 0]);
    c.init_u8(DEVACTB_HIGH, 0x02);
    c.set_wmask(PMREGMISC, &[0x01]);
    c.init_u32(SMBBA, 1);
    c.set_wmask(SMBBA, &[0xf0, 0xff, 0, 0]);
    c
}

fn merge_byte(reg: u16, byte: usize, value: u8, mask: u16) -> u16 {
    let shift = 8 * (byte & 1);
    let lane = 0xffu16 << shift;
    (reg & !(lane & mask)) | ((u16::from(value) << shift) & lane & mask)
}

impl Piix4Pm {
    fn new(
        clock: Arc<dyn Clock>,
        sci: Arc<dyn IrqLine>,
        system: Arc<dyn SystemEvents>,
        kick: TimerKick,
    ) -> Self {
        let carries = ticks(clock.now_ns()) >> TIMER_CARRY_SHIFT;
        Piix4Pm {
            state: Piix4PmState {
                config: power_on_config(),
                pm1_sts: 0,
                pm1_en: 0,
                pm1_cnt: 0,
                gpe0_sts: 0,
                gpe0_en: 0,
                apm_cnt: 0,
                apm_sts: 0,
                timer_carries: carries,
                sci: false,
            },
            clock,
            sci,
            system,
            kick,
        }
    }

    /// Sets TMR_STS if bit 23 of the timer changed since the last look.
    fn sync_timer(&mut self, now: u64) {
        let carries = ticks(now) >> TIMER_CARRY_SHIFT;
        if carries != self.state.timer_carries {
            self.state.timer_carries = carries;
            self.state.pm1_sts |= TMR;
        }
    }

    fn update_sci(&mut self) {
        let s = &self.state;
        let pending = s.pm1_sts & s.pm1_en & PM1_EN_MASK != 0 || s.gpe0_sts & s.gpe0_en != 0;
        let level = s.pm1_cnt & SCI_EN != 0 && pending;
        if level != s.sci {
            self.state.sci = level;
            self.sci.set_level(level);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.state.pm1_en & TMR == 0 {
            return None;
        }
        let next = self.state.timer_carries.checked_add(1)?;
        Some(time_of_tick(next.checked_mul(1 << TIMER_CARRY_SHIFT)?))
    }

    fn pm_byte(&self, offset: u64, timer: u32) -> u8 {
        let s = &self.state;
        let word = |v: u16| v.to_le_bytes()[(offset & 1) as usize];
        match offset {
            0 | 1 => word(s.pm1_sts),
            2 | 3 => word(s.pm1_en),
            4 | 5 => word(s.pm1_cnt),
            8..=11 => timer.to_le_bytes()[(offset - 8) as usize],
            _ => 0,
        }
    }

    fn pm_read(&mut self, offset: u64, data: &mut [u8]) {
        let now = self.clock.now_ns();
        self.sync_timer(now);
        self.update_sci();
        let timer = (ticks(now) & 0x00ff_ffff) as u32;
        for (i, d) in data.iter_mut().enumerate() {
            *d = self.pm_byte(offset.saturating_add(i as u64), timer);
        }
    }

    fn pm_write(&mut self, offset: u64, data: &[u8]) {
        let old_en = self.state.pm1_en;
        let mut sleep = None;
        for (i, &v) in data.iter().enumerate() {
            let o = offset.saturating_add(i as u64);
            let s = &mut self.state;
            match o {
                0 | 1 => s.pm1_sts &= !(merge_byte(0, o as usize, v, PM1_STS_W1C)),
                2 | 3 => s.pm1_en = merge_byte(s.pm1_en, o as usize, v, PM1_EN_MASK),
                4 => s.pm1_cnt = merge_byte(s.pm1_cnt, 0, v, PM1_CNT_STORED),
                5 => {
                    s.pm1_cnt = merge_byte(s.pm1_cnt, 1, v, PM1_CNT_STORED);
                    if u16::from(v) << 8 & SLP_EN != 0 {
                        sleep = Some((u16::from(v) << 8 & SLP_TYP) >> 10);
                    }
                }
                _ => crate::rate_limited!(
                    log::Level::Debug,
                    "piix4-pm: write to unmodelled PM register {:#x} ignored",
                    o
                ),
            }
        }
        self.update_sci();
        if (old_en ^ self.state.pm1_en) & TMR != 0 {
            self.kick.kick();
        }
        // The request is made with the PM lock held (the root's window adapter holds it around
        // bar_write); that is fine because `SystemEvents::request` must not block.
        match sleep {
            Some(SLP_TYP_S5 | SLP_TYP_S4) => self.system.request(SystemRequest::PowerOff),
            Some(other) => crate::rate_limited!(
                log::Level::Warn,
                "piix4-pm: sleep type {} (not S4/S5) not supported, ignored",
                other
            ),
            None => {}
        }
    }

    fn apm_write(&mut self, offset: u64, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            match offset.saturating_add(i as u64) {
                0 => {
                    self.state.apm_cnt = v;
                    match v {
                        ACPI_ENABLE => self.state.pm1_cnt |= SCI_EN,
                        ACPI_DISABLE => self.state.pm1_cnt &= !SCI_EN,
                        _ => {}
                    }
                }
                1 => self.state.apm_sts = v,
                _ => {}
            }
        }
        self.update_sci();
    }

    fn apm_read(&self, offset: u64, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            *d = match offset.saturating_add(i as u64) {
                0 => self.state.apm_cnt,
                1 => self.state.apm_sts,
                _ => 0xff,
            };
        }
    }

    fn gpe_write(&mut self, offset: u64, data: &[u8]) {
        for (i, &v) in data.iter().enumerate() {
            let o = offset.saturating_add(i as u64);
            match o {
                0 | 1 => self.state.gpe0_sts &= !merge_byte(0, o as usize, v, 0xffff),
                2 | 3 => self.state.gpe0_en = merge_byte(self.state.gpe0_en, o as usize, v, 0xffff),
                _ => {}
            }
        }
        self.update_sci();
    }

    fn gpe_read(&self, offset: u64, data: &mut [u8]) {
        for (i, d) in data.iter_mut().enumerate() {
            let o = offset.saturating_add(i as u64);
            let word = |v: u16| v.to_le_bytes()[(o & 1) as usize];
            *d = match o {
                0 | 1 => word(self.state.gpe0_sts),
                2 | 3 => word(self.state.gpe0_en),
                _ => 0xff,
            };
        }
    }
}

impl PciFunction for Piix4Pm {
    fn config(&self) -> &ConfigSpace {
        &self.state.config
    }

    fn config_mut(&mut self) -> &mut ConfigSpace {
        &mut self.state.config
    }

    fn regions(&self) -> Vec<Region> {
        let mut r = self.state.config.decoded_regions();
        if self.state.config.read_u8(PMREGMISC) & 1 != 0 {
            let block = Region {
                id: PM_BLOCK,
                space: AddressSpace::Io,
                base: u64::from(self.state.config.read_u32(PMBA) & 0xffc0),
                len: PM_BLOCK_LEN,
                max_width: 4,
            };
            if block.is_decodable() {
                r.push(block);
            }
        }
        r
    }

    fn bar_read(&mut self, region: RegionId, offset: u64, data: &mut [u8]) {
        match region {
            PM_BLOCK => self.pm_read(offset, data),
            _ => data.fill(0xff),
        }
    }

    fn bar_write(&mut self, region: RegionId, offset: u64, data: &[u8]) {
        if region == PM_BLOCK {
            self.pm_write(offset, data);
        }
    }

    fn reset(&mut self) {
        let carries = ticks(self.clock.now_ns()) >> TIMER_CARRY_SHIFT;
        let s = &mut self.state;
        s.config.reset();
        s.pm1_sts = 0;
        s.pm1_en = 0;
        s.pm1_cnt = 0;
        s.gpe0_sts = 0;
        s.gpe0_en = 0;
        s.apm_cnt = 0;
        s.apm_sts = 0;
        s.timer_carries = carries;
        self.update_sci();
        self.kick.kick();
    }
}

/// A shared handle to the PM function: its PCI side, its fixed ports, its timer and the power button.
#[derive(Clone)]
pub struct Piix4PmHandle {
    inner: Arc<Mutex<Piix4Pm>>,
}

impl Piix4PmHandle {
    /// The PM function at power-on. `sci` is ISA IRQ 9 (shared through the IRQ mux), `system` receives
    /// power-off requests, `kick` wakes the timer loop when TMR_EN changes.
    pub fn new(
        clock: Arc<dyn Clock>,
        sci: Arc<dyn IrqLine>,
        system: Arc<dyn SystemEvents>,
        kick: TimerKick,
    ) -> Self {
        Piix4PmHandle {
            inner: Arc::new(Mutex::new(Piix4Pm::new(clock, sci, system, kick))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Piix4Pm> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The function to add to the root at 00:01.3.
    pub fn function(&self) -> SharedFunction {
        self.inner.clone()
    }

    /// The APM control/status ports: insert at [`APM_PORT`], length 2, max width 2.
    pub fn apm_port(&self) -> Arc<dyn BusDevice> {
        Arc::new(ApmPort(Arc::clone(&self.inner)))
    }

    /// The GPE0 block: insert at [`GPE0_PORT`], length 4, max width 4.
    pub fn gpe0_block(&self) -> Arc<dyn BusDevice> {
        Arc::new(Gpe0Block(Arc::clone(&self.inner)))
    }

    /// The toolstack's "clean shutdown" button: sets PWRBTN_STS. Returns whether the guest will see it
    /// now (ACPI enabled and the power button event enabled); if not, the caller may fall back to a
    /// hard power-off after a grace period.
    pub fn press_power_button(&self) -> bool {
        let mut pm = self.lock();
        pm.state.pm1_sts |= PWRBTN;
        pm.update_sci();
        pm.state.sci && pm.state.pm1_en & PWRBTN != 0
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> Piix4PmState {
        self.lock().state.clone()
    }

    /// Replaces the state and re-drives the SCI line to match it.
    pub fn restore(&self, state: Piix4PmState) {
        let mut pm = self.lock();
        let level = state.sci;
        pm.state = state;
        pm.sci.set_level(level);
        pm.kick.kick();
    }
}

impl Timed for Piix4PmHandle {
    fn advance(&self, now_ns: u64) -> Option<u64> {
        let mut pm = self.lock();
        pm.sync_timer(now_ns);
        pm.update_sci();
        pm.next_deadline()
    }
}

struct ApmPort(Arc<Mutex<Piix4Pm>>);

impl BusDevice for ApmPort {
    fn read(&self, offset: u64, data: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apm_read(offset, data);
    }

    fn write(&self, offset: u64, data: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apm_write(offset, data);
    }
}

struct Gpe0Block(Arc<Mutex<Piix4Pm>>);

impl BusDevice for Gpe0Block {
    fn read(&self, offset: u64, data: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .gpe_read(offset, data);
    }

    fn write(&self, offset: u64, data: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .gpe_write(offset, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::testing::PciTestbed;

    const PM: u64 = 0xb000;

    /// What SeaBIOS's piix4_pm_setup writes: line 9, PMBA = 0xB001, PMREGMISC = 1, SMBus base.
    fn setup() -> (PciTestbed, Piix4PmHandle) {
        let tb = PciTestbed::with_pm();
        let pm = tb.pm.clone().unwrap();
        tb.cfg_write(1, 3, 0x3c, 1, 9);
        tb.cfg_write(1, 3, PMBA as u8, 4, (PM as u32) | 1);
        tb.cfg_write(1, 3, PMREGMISC as u8, 1, 1);
        tb.cfg_write(1, 3, SMBBA as u8, 4, (PM as u32 + 0x100) | 1);
        tb.cfg_write(1, 3, 0xd2, 1, 0x09);
        (tb, pm)
    }

    #[test]
    fn identity_and_seabios_relevant_presets() {
        let tb = PciTestbed::with_pm();
        assert_eq!(tb.cfg_read(1, 3, 0x00, 4), 0x7113_8086);
        assert_eq!(tb.cfg_read(1, 3, 0x08, 4), 0x0680_0003);
        assert_eq!(tb.cfg_read(1, 3, 0x3d, 1), 1, "INTA#");
        assert_eq!(
            tb.cfg_read(1, 3, 0x5b, 1),
            0x02,
            "APMC_EN: SeaBIOS skips SMM init"
        );
        assert_eq!(tb.cfg_read(1, 3, PMBA as u8, 4), 1);
        assert_eq!(tb.cfg_read(1, 3, SMBBA as u8, 4), 1);
        tb.cfg_write(1, 3, PMBA as u8, 4, 0xffff_ffff);
        assert_eq!(
            tb.cfg_read(1, 3, PMBA as u8, 4),
            0xffc1,
            "64-byte aligned 16-bit base"
        );
        tb.cfg_write(1, 3, PMREGMISC as u8, 1, 0xff);
        assert_eq!(tb.cfg_read(1, 3, PMREGMISC as u8, 1), 1);
    }

    #[test]
    fn pm_block_is_mapped_moved_and_unmapped_with_pmba_and_pmregmisc() {
        let tb = PciTestbed::with_pm();
        tb.cfg_write(1, 3, PMBA as u8, 4, 0xb001);
        assert!(!tb.pio.is_claimed(PM), "not decoded before PMREGMISC");
        tb.cfg_write(1, 3, PMREGMISC as u8, 1, 1);
        assert!(tb.pio.is_claimed(PM) && tb.pio.is_claimed(PM + 63));
        assert!(!tb.pio.is_claimed(PM + 64));
        tb.cfg_write(1, 3, PMBA as u8, 4, 0x601);
        assert!(!tb.pio.is_claimed(PM));
        assert!(tb.pio.is_claimed(0x600));
        tb.cfg_write(1, 3, PMREGMISC as u8, 1, 0);
        assert!(!tb.pio.is_claimed(0x600));
        // Independent of COMMAND.IO, as on the PIIX4.
        assert_eq!(tb.cfg_read(1, 3, 0x04, 2), 0);
    }

    #[test]
    fn pm_timer_counts_at_3_579545_mhz_and_wraps_at_24_bits() {
        let (tb, _pm) = setup();
        assert_eq!(tb.pio_read(PM + 8, 4), 0);
        tb.clock.advance(NS_PER_SEC);
        assert_eq!(tb.pio_read(PM + 8, 4), 3_579_545);
        tb.clock.advance(NS_PER_SEC / 1000);
        assert_eq!(tb.pio_read(PM + 8, 4), 3_579_545 + 3_579);
        // Just past 2^24 ticks the counter has wrapped.
        tb.clock.set(time_of_tick((1 << 24) + 5));
        assert_eq!(tb.pio_read(PM + 8, 4), 5);
        assert_eq!(tb.pio_read(PM + 8, 1), 5, "byte reads of the low byte");
        assert_eq!(tb.pio_read(PM + 11, 1), 0, "top byte always 0");
        tb.pio_write(PM + 8, 4, 0x1234);
        assert_eq!(tb.pio_read(PM + 8, 4), 5, "read-only");
    }

    #[test]
    fn tmr_sts_sets_on_bit_23_and_raises_sci_when_enabled() {
        let (tb, pm) = setup();
        assert_eq!(pm.advance(0), None, "timer not armed while TMR_EN is clear");
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        tb.pio_write(PM + 2, 2, u32::from(TMR));
        let deadline = pm.advance(tb.clock.now_ns()).unwrap();
        assert_eq!(deadline, time_of_tick(1 << 23));
        assert!(deadline > 2_343_000_000 && deadline < 2_344_000_000);
        tb.clock.set(deadline - 1);
        assert_eq!(pm.advance(deadline - 1), Some(deadline));
        assert_eq!(tb.pio_read(PM, 2) as u16 & TMR, 0);
        assert!(!tb.gsi.level(9));
        tb.clock.set(deadline);
        assert_eq!(pm.advance(deadline), Some(time_of_tick(2 << 23)));
        assert!(tb.gsi.level(9), "SCI on IRQ 9");
        assert_eq!(tb.pio_read(PM, 2) as u16 & TMR, TMR);
        tb.pio_write(PM, 2, u32::from(TMR));
        assert_eq!(tb.pio_read(PM, 2), 0);
        assert!(!tb.gsi.level(9), "W1C dropped the SCI");
    }

    #[test]
    fn tmr_sts_is_seen_by_polling_even_without_the_timer_loop() {
        let (tb, _pm) = setup();
        tb.clock.set(time_of_tick(3 << 23));
        assert_eq!(tb.pio_read(PM, 2) as u16 & TMR, TMR);
        assert!(!tb.gsi.level(9), "no SCI: neither TMR_EN nor SCI_EN");
    }

    #[test]
    fn acpi_enable_and_disable_through_the_smi_command_port() {
        let (tb, _pm) = setup();
        assert_eq!(tb.pio_read(PM + 4, 2), 0);
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        assert_eq!(tb.pio_read(PM + 4, 2) as u16 & SCI_EN, SCI_EN);
        assert_eq!(tb.pio_read(APM_PORT, 1), u32::from(ACPI_ENABLE));
        tb.pio_write(APM_PORT + 1, 1, 0x5a);
        assert_eq!(tb.pio_read(APM_PORT, 2), 0x5af1);
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_DISABLE));
        assert_eq!(tb.pio_read(PM + 4, 2) as u16 & SCI_EN, 0);
        tb.pio_write(APM_PORT, 1, 0x12); // any other command: no change
        assert_eq!(tb.pio_read(PM + 4, 2) as u16 & SCI_EN, 0);
    }

    #[test]
    fn s5_sleep_request_powers_off() {
        let (tb, _pm) = setup();
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        // Linux: SLP_TYP first, then SLP_TYP | SLP_EN, preserving SCI_EN.
        tb.pio_write(PM + 4, 2, u32::from(SCI_EN | (SLP_TYP_S5 << 10)));
        assert!(tb.system.take().is_empty());
        tb.pio_write(PM + 4, 2, u32::from(SCI_EN | (SLP_TYP_S5 << 10) | SLP_EN));
        assert_eq!(tb.system.take(), vec![SystemRequest::PowerOff]);
        assert_eq!(
            tb.pio_read(PM + 4, 2) as u16 & SLP_EN,
            0,
            "SLP_EN is write-only"
        );
        // The byte-wide form: high byte 0x20 at PM1_CNT+1.
        tb.pio_write(PM + 5, 1, 0x20);
        assert_eq!(tb.system.take(), vec![SystemRequest::PowerOff]);
        // S4 as QEMU treats it; S3 and undeclared types do nothing.
        tb.pio_write(PM + 4, 2, u32::from((SLP_TYP_S4 << 10) | SLP_EN));
        assert_eq!(tb.system.take(), vec![SystemRequest::PowerOff]);
        for typ in [1u16, 3, 5, 7] {
            tb.pio_write(PM + 4, 2, u32::from((typ << 10) | SLP_EN));
        }
        assert!(tb.system.take().is_empty());
        assert_eq!(
            tb.pio_read(PM + 4, 2) as u16 & SLP_TYP,
            7 << 10,
            "SLP_TYP reads back"
        );
    }

    #[test]
    fn power_button_raises_sci_only_when_acpi_listens() {
        let (tb, pm) = setup();
        assert!(!pm.press_power_button(), "no ACPI yet");
        assert!(!tb.gsi.level(9));
        assert_eq!(tb.pio_read(PM, 2) as u16 & PWRBTN, PWRBTN);
        tb.pio_write(PM, 2, u32::from(PWRBTN));
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        tb.pio_write(PM + 2, 2, u32::from(PWRBTN));
        assert!(pm.press_power_button());
        assert!(tb.gsi.level(9));
        // The OS acknowledges (W1C through the high byte alone).
        tb.pio_write(PM + 1, 1, 0x01);
        assert!(!tb.gsi.level(9));
        assert_eq!(tb.pio_read(PM, 2), 0);
        assert_eq!(tb.gsi.rising_edges(9), 1);
    }

    #[test]
    fn sci_shares_irq_9_with_a_pci_link_routed_there() {
        let (tb, pm) = setup();
        tb.cfg_write(1, 0, 0x60, 1, 9); // PIRQA → IRQ 9
        let line = tb.intx_line(1, 1);
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        tb.pio_write(PM + 2, 2, u32::from(PWRBTN));
        pm.press_power_button();
        line.set_level(true);
        tb.pio_write(PM, 2, u32::from(PWRBTN));
        assert!(tb.gsi.level(9), "the PCI link still holds IRQ 9");
        line.set_level(false);
        assert!(!tb.gsi.level(9));
    }

    #[test]
    fn gpe0_block_is_w1c_status_and_plain_enable() {
        let (tb, _pm) = setup();
        assert_eq!(tb.pio_read(GPE0_PORT, 4), 0);
        tb.pio_write(GPE0_PORT + 2, 2, 0xffff);
        assert_eq!(tb.pio_read(GPE0_PORT, 4), 0xffff_0000);
        tb.pio_write(GPE0_PORT, 2, 0xffff);
        assert_eq!(
            tb.pio_read(GPE0_PORT, 2),
            0,
            "nothing to clear, nothing set"
        );
        tb.pio_write(GPE0_PORT + 3, 1, 0x00);
        assert_eq!(tb.pio_read(GPE0_PORT + 2, 2), 0x00ff);
    }

    #[test]
    fn malformed_accesses_to_the_pm_block() {
        let (tb, _pm) = setup();
        // Unmodelled registers read 0 and ignore writes; odd offsets and widths do not panic.
        for off in [6u64, 7, 12, 0x10, 0x30, 63] {
            tb.pio_write(PM + off, 1, 0xff);
            assert_eq!(tb.pio_read(PM + off, 1), 0);
        }
        tb.pio_write(PM + 3, 1, 0xff);
        assert_eq!(
            tb.pio_read(PM + 2, 2) as u16,
            PWRBTN | RTC,
            "only EN bits stick"
        );
        tb.pio_write(PM + 1, 2, 0xffff); // unaligned word spanning STS high and EN low
        assert_eq!(tb.pio_read(PM + 2, 2) as u16, PWRBTN | RTC | TMR | GBL);
        assert_eq!(
            tb.pio_read(PM + 60, 8),
            0xffff_ffff,
            "8-byte access refused by the bus"
        );
        assert_eq!(
            tb.pio_read(PM + 62, 4),
            0xffff_ffff,
            "crossing the end refused"
        );
        tb.pio_write(PM + 4, 4, 0xffff_ffff);
        assert_eq!(tb.pio_read(PM + 4, 4) as u16, SCI_EN | BM_RLD | SLP_TYP);
        tb.system.take();
    }

    #[test]
    fn reset_returns_to_power_on() {
        let (tb, pm) = setup();
        tb.pio_write(APM_PORT, 1, u32::from(ACPI_ENABLE));
        tb.pio_write(PM + 2, 2, u32::from(PWRBTN));
        pm.press_power_button();
        assert!(tb.gsi.level(9));
        let snap = pm.snapshot();
        tb.host.reset();
        assert!(!tb.gsi.level(9));
        assert!(!tb.pio.is_claimed(PM), "PMREGMISC cleared: block unmapped");
        assert_eq!(tb.cfg_read(1, 3, 0x5b, 1), 0x02);
        assert_eq!(tb.pio_read(APM_PORT, 1), 0);
        assert_eq!(pm.advance(tb.clock.now_ns()), None);
        // Restoring the snapshot re-drives the SCI it recorded.
        pm.restore(snap);
        assert!(tb.gsi.level(9));
    }
}
