//! The MC146818 real-time clock and its 128 bytes of CMOS RAM, at ports 0x70 (index) and 0x71 (data).
//!
//! # Hardware behaviour
//!
//! Port 0x70 selects a register; on a PC its bit 7 also gates NMI, so the index is `value & 0x7F` and bit 7 is
//! kept apart (the chipset, not the RTC, would act on it; we only store it). Port 0x71 reads and writes the
//! selected byte. Bytes 0x00-0x09 are the clock (seconds, seconds alarm, minutes, minutes alarm, hours, hours
//! alarm, weekday, day, month, year), 0x0A-0x0D the status registers, and the rest is battery-backed RAM the
//! firmware uses for configuration (memory size, boot order, CPU count). Byte 0x32 is the century by PC
//! convention and is treated as part of the clock.
//!
//! - **Status A**: bit 7 UIP ("update in progress", read-only), bits 6:4 the divider (010 = running from a
//!   32.768 kHz crystal; 11x holds the chain in reset), bits 3:0 RS, the periodic-interrupt rate.
//! - **Status B**: SET (stop updates so that software can write the time), PIE/AIE/UIE (periodic, alarm and
//!   update-ended interrupt enables), SQWE, DM (1 = binary, 0 = BCD), 24/12 and DSE.
//! - **Status C**: IRQF, PF, AF, UF. The flags are set whenever their event happens, enabled or not; IRQF and
//!   the IRQ 8 output are set only for an enabled flag. Reading C returns and clears all of them, which also
//!   releases IRQ 8.
//! - **Status D**: bit 7 VRT, "the battery is good", always 1.
//!
//! Once a second (when the divider runs and SET is clear) the clock advances: UF is set and the alarm bytes
//! are compared with the time (an alarm byte of 0xC0-0xFF matches anything). UIP is 1 for the 244 µs before
//! each update, so that software which waits for UIP = 0 has that long to read a consistent time. The periodic
//! interrupt taps the same divider chain: RS = 1 and 2 give 256 and 128 Hz, RS = n ≥ 3 gives 32768 >> (n-1) Hz.
//! When the divider leaves reset, the first update comes half a second later.
//!
//! # Model
//!
//! Nothing here ticks. The time is `secs_offset + number of update instants since origin_ns`, the update
//! instants being `origin_ns + k · 1 s` on the injected machine clock, and the periodic instants are counted the
//! same way in units of the 32.768 kHz crystal. Each access first catches up on the events since the last one
//! (setting PF, UF and AF as the chip would have), so a guest that polls C without interrupts sees the same
//! flags as one that takes them. For interrupts, [`RtcDevice`] implements [`Timed`]: its next deadline is the
//! next periodic or update instant whose interrupt is enabled, and guest writes to A and B kick the timer loop.
//! Periodic interrupts the timer loop misses are not replayed: as on the chip, PF is a single flag, so a late
//! loop merges them into one. Writes to the clock bytes (with SET, committed when SET is cleared, or directly)
//! move `secs_offset` and keep the sub-second phase. The weekday byte is derived from the date; DSE and SQWE
//! are stored but have no effect (nothing is wired to the square-wave pin, and DST rules are the guest's
//! business, as on QEMU).

mod calendar;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::bus::BusDevice;
use crate::clock::{Clock, NS_PER_SEC};
use crate::irq::IrqLine;
use crate::timer::{Timed, TimerKick};

use super::LevelSync;
use calendar::{civil_from_unix, from_bcd, to_bcd, unix_from_civil, MAX_UNIX, MIN_UNIX};

/// Seconds register.
pub const REG_SECONDS: u8 = 0x00;
/// Seconds alarm register.
pub const REG_SECONDS_ALARM: u8 = 0x01;
/// Minutes register.
pub const REG_MINUTES: u8 = 0x02;
/// Minutes alarm register.
pub const REG_MINUTES_ALARM: u8 = 0x03;
/// Hours register (bit 7 = PM in 12-hour mode).
pub const REG_HOURS: u8 = 0x04;
/// Hours alarm register.
pub const REG_HOURS_ALARM: u8 = 0x05;
/// Day of week, 1 = Sunday.
pub const REG_WEEKDAY: u8 = 0x06;
/// Day of month.
pub const REG_DAY: u8 = 0x07;
/// Month.
pub const REG_MONTH: u8 = 0x08;
/// Year within the century.
pub const REG_YEAR: u8 = 0x09;
/// Status register A.
pub const REG_A: u8 = 0x0a;
/// Status register B.
pub const REG_B: u8 = 0x0b;
/// Status register C.
pub const REG_C: u8 = 0x0c;
/// Status register D.
pub const REG_D: u8 = 0x0d;
/// Century (PC convention).
pub const REG_CENTURY: u8 = 0x32;

/// A: update in progress.
pub const A_UIP: u8 = 0x80;
/// A: the divider bits.
pub const A_DV_MASK: u8 = 0x70;
/// A: divider value of a running 32.768 kHz time base.
pub const A_DV_RUNNING: u8 = 0x20;
/// A: rate select.
pub const A_RS_MASK: u8 = 0x0f;
/// B: stop updates while the time is set.
pub const B_SET: u8 = 0x80;
/// B: periodic interrupt enable.
pub const B_PIE: u8 = 0x40;
/// B: alarm interrupt enable.
pub const B_AIE: u8 = 0x20;
/// B: update-ended interrupt enable.
pub const B_UIE: u8 = 0x10;
/// B: square-wave enable.
pub const B_SQWE: u8 = 0x08;
/// B: binary (1) or BCD (0) data mode.
pub const B_DM_BINARY: u8 = 0x04;
/// B: 24-hour (1) or 12-hour (0) mode.
pub const B_24H: u8 = 0x02;
/// B: daylight-saving enable.
pub const B_DSE: u8 = 0x01;
/// C: an enabled flag is set (IRQ 8 asserted).
pub const C_IRQF: u8 = 0x80;
/// C: periodic flag.
pub const C_PF: u8 = 0x40;
/// C: alarm flag.
pub const C_AF: u8 = 0x20;
/// C: update-ended flag.
pub const C_UF: u8 = 0x10;
/// D: valid RAM and time.
pub const D_VRT: u8 = 0x80;

/// Status A after power-on: divider running, 1024 Hz rate selected.
pub const A_DEFAULT: u8 = 0x26;
/// Status B after power-on: 24-hour BCD, no interrupts.
pub const B_DEFAULT: u8 = 0x02;

/// Bytes of CMOS (clock, status and RAM).
pub const CMOS_SIZE: usize = 128;
/// How long UIP is 1 before each update, in ns.
pub const UIP_NS: u64 = 244_000;
/// The crystal's frequency: periodic rates are divisions of it.
const CRYSTAL_HZ: i128 = 32_768;
/// Updates checked for an alarm after a long gap: a day holds every hour/minute/second combination.
const MAX_ALARM_SCAN: i64 = 86_400;
/// The clock bytes (time, date, century), not counting the alarm bytes, which are plain storage.
const TIME_REGS: [u8; 8] = [
    REG_SECONDS,
    REG_MINUTES,
    REG_HOURS,
    REG_WEEKDAY,
    REG_DAY,
    REG_MONTH,
    REG_YEAR,
    REG_CENTURY,
];

/// Why a CMOS access or a restore was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtcError {
    /// CMOS has 128 bytes.
    #[error("CMOS index {0:#x} out of range (0 to 0x7f)")]
    OutOfRange(u8),
    /// The clock and status bytes are the RTC's own, not platform configuration.
    #[error("CMOS byte {0:#x} is a clock or status register")]
    ClockRegister(u8),
    /// A saved state whose CMOS is not 128 bytes long.
    #[error("saved CMOS has {0} bytes, expected 128")]
    BadCmosLength(usize),
}

/// Everything the RTC remembers, for save and restore. Times are in the machine clock's nanoseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcState {
    /// 128 bytes. The clock bytes hold what the guest wrote while SET is 1; the status bytes are unused.
    cmos: Vec<u8>,
    /// The selected register (0 to 0x7f).
    index: u8,
    /// Bit 7 of the last index write: NMI disabled.
    nmi_masked: bool,
    /// Status A without UIP.
    reg_a: u8,
    /// Status B.
    reg_b: u8,
    /// PF, AF and UF (IRQF is computed).
    flags: u8,
    /// The time is this plus the number of update instants since `origin_ns` (while the divider runs).
    secs_offset: i64,
    /// The divider chain's zero: updates happen at `origin_ns + k` seconds, k ≥ 1.
    origin_ns: i64,
    /// Events up to this machine time have been accounted for.
    last_ns: u64,
}

/// The RTC/CMOS state machine. All methods take the machine time they happen at.
pub struct Rtc {
    s: RtcState,
}

/// The rate-select value's period in crystal ticks, or `None` when RS = 0 (periodic interrupt off).
fn period_ticks(rs: u8) -> Option<i128> {
    match rs & A_RS_MASK {
        0 => None,
        1 => Some(128),
        2 => Some(256),
        n => Some(1 << (n - 1)),
    }
}

impl Rtc {
    /// A chip whose clock reads `start_unix` (seconds since 1970, the guest's local or UTC time as the machine
    /// decides) at machine time `now_ns`, with the power-on status registers.
    pub fn new(start_unix: i64, now_ns: u64) -> Self {
        Rtc {
            s: RtcState {
                cmos: vec![0; CMOS_SIZE],
                index: 0,
                nmi_masked: false,
                reg_a: A_DEFAULT,
                reg_b: B_DEFAULT,
                flags: 0,
                secs_offset: start_unix.clamp(MIN_UNIX, MAX_UNIX),
                origin_ns: i64::try_from(now_ns).unwrap_or(i64::MAX),
                last_ns: now_ns,
            },
        }
    }

    fn running(&self) -> bool {
        self.s.reg_a & A_DV_MASK == A_DV_RUNNING
    }

    fn set_mode(&self) -> bool {
        self.s.reg_b & B_SET != 0
    }

    fn binary(&self) -> bool {
        self.s.reg_b & B_DM_BINARY != 0
    }

    /// Nanoseconds since the divider's zero (may be negative only before the first update after a restart).
    fn since_origin(&self, now: u64) -> i128 {
        i128::from(now) - i128::from(self.s.origin_ns)
    }

    /// How many update instants lie in (origin, now].
    fn update_index(&self, now: u64) -> i64 {
        let n = self.since_origin(now).div_euclid(i128::from(NS_PER_SEC));
        i64::try_from(n).unwrap_or(0)
    }

    /// The machine time of the first update after `now`.
    fn next_update(&self, now: u64) -> u64 {
        let k = i128::from(self.update_index(now)) + 1;
        let t = i128::from(self.s.origin_ns) + k * i128::from(NS_PER_SEC);
        u64::try_from(t).unwrap_or(u64::MAX)
    }

    /// How many periodic instants of period `ticks` lie in (origin, now].
    fn periodic_index(&self, now: u64, ticks: i128) -> i128 {
        (self.since_origin(now) * CRYSTAL_HZ).div_euclid(i128::from(NS_PER_SEC) * ticks)
    }

    /// The machine time of the first periodic instant after `now`.
    fn next_periodic(&self, now: u64, ticks: i128) -> u64 {
        let n = self.periodic_index(now, ticks) + 1;
        let denom = CRYSTAL_HZ;
        let num = n * i128::from(NS_PER_SEC) * ticks;
        // Rounded up, so that the instant itself already counts as reached.
        let offset = (num + denom - 1).div_euclid(denom);
        u64::try_from(i128::from(self.s.origin_ns) + offset).unwrap_or(u64::MAX)
    }

    /// The clock in seconds since 1970 at `now` (meaningless while SET is 1: then the bytes are the truth).
    fn current_secs(&self, now: u64) -> i64 {
        if self.running() {
            self.s.secs_offset.saturating_add(self.update_index(now))
        } else {
            self.s.secs_offset
        }
    }

    /// The clock byte `reg` of time `secs`, encoded per DM and 24/12.
    fn encode(&self, reg: u8, secs: i64) -> u8 {
        let c = civil_from_unix(secs);
        let enc = |v: u8| if self.binary() { v } else { to_bcd(v) };
        match reg {
            REG_SECONDS => enc(c.second),
            REG_MINUTES => enc(c.minute),
            REG_HOURS => {
                if self.s.reg_b & B_24H != 0 {
                    enc(c.hour)
                } else {
                    let pm = if c.hour >= 12 { 0x80 } else { 0 };
                    let h12 = match c.hour % 12 {
                        0 => 12,
                        h => h,
                    };
                    enc(h12) | pm
                }
            }
            REG_WEEKDAY => enc(c.weekday),
            REG_DAY => enc(c.day),
            REG_MONTH => enc(c.month),
            // Both in 0..100 by construction.
            REG_YEAR => enc(c.year.rem_euclid(100) as u8),
            REG_CENTURY => enc(c.year.div_euclid(100).rem_euclid(100) as u8),
            _ => 0,
        }
    }

    /// Copies the running time into the clock bytes (when SET goes to 1, or before a direct write).
    fn snapshot_time(&mut self, now: u64) {
        let secs = self.current_secs(now);
        for reg in TIME_REGS {
            let v = self.encode(reg, secs);
            if let Some(b) = self.s.cmos.get_mut(usize::from(reg)) {
                *b = v;
            }
        }
    }

    fn cmos_byte(&self, reg: u8) -> u8 {
        self.s.cmos.get(usize::from(reg)).copied().unwrap_or(0)
    }

    /// Makes the clock bytes the running time (SET went to 0, or a direct write). Garbage counts on.
    fn commit_time(&mut self, now: u64) {
        let binary = self.binary();
        let dec = |v: u8| i64::from(if binary { v } else { from_bcd(v) });
        let hour_byte = self.cmos_byte(REG_HOURS);
        let hour = if self.s.reg_b & B_24H != 0 {
            dec(hour_byte)
        } else {
            let pm = if hour_byte & 0x80 != 0 { 12 } else { 0 };
            dec(hour_byte & 0x7f) % 12 + pm
        };
        let year = dec(self.cmos_byte(REG_CENTURY)) * 100 + dec(self.cmos_byte(REG_YEAR));
        let secs = unix_from_civil(
            year,
            dec(self.cmos_byte(REG_MONTH)),
            dec(self.cmos_byte(REG_DAY)).max(1),
            hour,
            dec(self.cmos_byte(REG_MINUTES)),
            dec(self.cmos_byte(REG_SECONDS)),
        );
        let elapsed = if self.running() {
            self.update_index(now)
        } else {
            0
        };
        self.s.secs_offset = secs.saturating_sub(elapsed);
    }

    fn alarm_matches(&self, secs: i64) -> bool {
        [
            (REG_SECONDS_ALARM, REG_SECONDS),
            (REG_MINUTES_ALARM, REG_MINUTES),
            (REG_HOURS_ALARM, REG_HOURS),
        ]
        .iter()
        .all(|&(alarm, reg)| {
            let a = self.cmos_byte(alarm);
            a & 0xc0 == 0xc0 || a == self.encode(reg, secs)
        })
    }

    /// Sets the flags of every periodic and update instant in (last access, now].
    pub fn catch_up(&mut self, now: u64) {
        let from = self.s.last_ns;
        if now <= from {
            return;
        }
        self.s.last_ns = now;
        if !self.running() {
            return;
        }
        if let Some(ticks) = period_ticks(self.s.reg_a) {
            if self.periodic_index(now, ticks) > self.periodic_index(from, ticks) {
                self.s.flags |= C_PF;
            }
        }
        if !self.set_mode() {
            let (u0, u1) = (self.update_index(from), self.update_index(now));
            if u1 > u0 {
                self.s.flags |= C_UF;
                let first = (u0 + 1).max(u1 - MAX_ALARM_SCAN + 1);
                let offset = self.s.secs_offset;
                if (first..=u1).any(|k| self.alarm_matches(offset.saturating_add(k))) {
                    self.s.flags |= C_AF;
                }
            }
        }
    }

    /// Whether IRQ 8 is asserted: some flag is set together with its enable bit.
    pub fn irq_level(&self) -> bool {
        self.s.flags & self.s.reg_b & (C_PF | C_AF | C_UF) != 0
    }

    /// The next machine time at which an enabled interrupt's event happens, after the last catch-up.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.running() {
            return None;
        }
        let now = self.s.last_ns;
        let periodic = period_ticks(self.s.reg_a)
            .filter(|_| self.s.reg_b & B_PIE != 0)
            .map(|ticks| self.next_periodic(now, ticks));
        let update = (!self.set_mode() && self.s.reg_b & (B_UIE | B_AIE) != 0)
            .then(|| self.next_update(now));
        match (periodic, update) {
            (Some(p), Some(u)) => Some(p.min(u)),
            (p, u) => p.or(u),
        }
    }

    /// Whether UIP reads 1 at `now`.
    fn uip(&self, now: u64) -> bool {
        self.running() && !self.set_mode() && self.next_update(now).saturating_sub(now) <= UIP_NS
    }

    /// A write to port 0x70.
    pub fn write_index(&mut self, value: u8) {
        self.s.nmi_masked = value & 0x80 != 0;
        self.s.index = value & 0x7f;
    }

    /// Whether the last index write disabled NMI (bit 7).
    pub fn nmi_masked(&self) -> bool {
        self.s.nmi_masked
    }

    /// The selected register's value at `now` without side effects (C is not cleared).
    fn peek(&self, reg: u8, now: u64) -> u8 {
        match reg {
            REG_A => self.s.reg_a | if self.uip(now) { A_UIP } else { 0 },
            REG_B => self.s.reg_b,
            REG_C => self.s.flags | if self.irq_level() { C_IRQF } else { 0 },
            REG_D => D_VRT,
            r if TIME_REGS.contains(&r) && !self.set_mode() => {
                self.encode(r, self.current_secs(now))
            }
            r => self.cmos_byte(r),
        }
    }

    /// A read of port 0x71 at `now`. Reading C clears it.
    pub fn read_data(&mut self, now: u64) -> u8 {
        self.catch_up(now);
        let value = self.peek(self.s.index, now);
        if self.s.index == REG_C {
            self.s.flags = 0;
        }
        value
    }

    /// A write of port 0x71 at `now`. Returns whether the next deadline may have changed (the timer loop
    /// must be kicked).
    pub fn write_data(&mut self, now: u64, value: u8) -> bool {
        // Events before the write happened under the old settings.
        self.catch_up(now);
        let reg = self.s.index;
        match reg {
            REG_A => {
                let was_running = self.running();
                let old = self.s.reg_a;
                self.s.reg_a = value & !A_UIP;
                let running = self.running();
                if was_running && !running && !self.set_mode() {
                    // Freeze: from now on the time is `secs_offset` itself.
                    self.s.secs_offset = self.current_secs_with_divider(now);
                } else if !was_running && running {
                    // Leaving reset, the chain starts half-way, so the first update comes 0.5 s later.
                    let origin = i128::from(now) - i128::from(NS_PER_SEC / 2);
                    self.s.origin_ns = i64::try_from(origin).unwrap_or(i64::MAX);
                }
                old != self.s.reg_a
            }
            REG_B => {
                let old = self.s.reg_b;
                let mut new = value;
                if new & B_SET != 0 {
                    // The chip clears UIE whenever SET is written as 1.
                    new &= !B_UIE;
                }
                self.s.reg_b = new;
                if old & B_SET == 0 && new & B_SET != 0 {
                    self.s.reg_b = old;
                    self.snapshot_time(now);
                    self.s.reg_b = new;
                } else if old & B_SET != 0 && new & B_SET == 0 {
                    self.commit_time(now);
                }
                old != new
            }
            REG_C | REG_D => false,
            r if TIME_REGS.contains(&r) => {
                if self.set_mode() {
                    self.store(r, value);
                } else {
                    // Without SET the chip takes the byte at once; keep the other bytes and move the time.
                    self.snapshot_time(now);
                    self.store(r, value);
                    self.commit_time(now);
                }
                false
            }
            r => {
                self.store(r, value);
                false
            }
        }
    }

    /// The running time assuming the divider ran until `now` (used when it is being stopped).
    fn current_secs_with_divider(&self, now: u64) -> i64 {
        self.s.secs_offset.saturating_add(self.update_index(now))
    }

    fn store(&mut self, reg: u8, value: u8) {
        if let Some(b) = self.s.cmos.get_mut(usize::from(reg)) {
            *b = value;
        }
    }

    /// A platform reset (the chip's RESET pin): clears PIE, AIE, UIE, SQWE and every flag. The time, the
    /// divider, the data mode and the RAM are kept.
    pub fn reset(&mut self) {
        self.s.reg_b &= !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.s.flags = 0;
    }

    /// A copy of the state.
    pub fn state(&self) -> RtcState {
        self.s.clone()
    }

    /// Replaces the state with a saved one.
    pub fn restore(&mut self, state: RtcState) -> Result<(), RtcError> {
        if state.cmos.len() != CMOS_SIZE {
            return Err(RtcError::BadCmosLength(state.cmos.len()));
        }
        let mut state = state;
        state.index &= 0x7f;
        self.s = state;
        Ok(())
    }
}

/// Whether `index` is a byte the machine may fill (platform RAM, alarms), not a clock or status register.
fn is_platform_byte(index: u8) -> Result<(), RtcError> {
    if usize::from(index) >= CMOS_SIZE {
        return Err(RtcError::OutOfRange(index));
    }
    if TIME_REGS.contains(&index) || (REG_A..=REG_D).contains(&index) {
        return Err(RtcError::ClockRegister(index));
    }
    Ok(())
}

/// The RTC on the port bus: 0x70 (index, offset 0) and 0x71 (data, offset 1), IRQ 8, timers.
pub struct RtcDevice {
    rtc: Mutex<Rtc>,
    clock: Arc<dyn Clock>,
    irq: LevelSync,
    kick: TimerKick,
}

impl RtcDevice {
    /// An RTC whose clock reads `start_unix` now. `clock` is the machine's monotonic clock, `irq8` the ISA
    /// IRQ 8 line, and `kick` wakes the timer loop when a guest write changes the next deadline.
    pub fn new(
        start_unix: i64,
        clock: Arc<dyn Clock>,
        irq8: Arc<dyn IrqLine>,
        kick: TimerKick,
    ) -> Self {
        let now = clock.now_ns();
        RtcDevice {
            rtc: Mutex::new(Rtc::new(start_unix, now)),
            clock,
            irq: LevelSync::new(irq8),
            kick,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rtc> {
        self.rtc.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sync_irq(&self) {
        self.irq.sync(|| self.lock().irq_level());
    }

    /// Stores a platform configuration byte (memory size, boot order, CPU count, ...). The clock and status
    /// registers (0x00-0x0D except the alarms, and the century 0x32) are refused.
    pub fn set_cmos(&self, index: u8, value: u8) -> Result<(), RtcError> {
        is_platform_byte(index)?;
        self.lock().store(index, value);
        Ok(())
    }

    /// The byte at `index` as the guest would read it now, without side effects (reading C here does not
    /// clear it).
    pub fn cmos(&self, index: u8) -> Result<u8, RtcError> {
        if usize::from(index) >= CMOS_SIZE {
            return Err(RtcError::OutOfRange(index));
        }
        let now = self.clock.now_ns();
        let mut rtc = self.lock();
        rtc.catch_up(now);
        Ok(rtc.peek(index, now))
    }

    /// A platform reset: see [`Rtc::reset`]. Lowers IRQ 8.
    pub fn reset(&self) {
        let now = self.clock.now_ns();
        {
            let mut rtc = self.lock();
            rtc.catch_up(now);
            rtc.reset();
        }
        self.sync_irq();
        self.kick.kick();
    }

    /// Whether NMI is disabled by bit 7 of the last port 0x70 write.
    pub fn nmi_masked(&self) -> bool {
        self.lock().nmi_masked()
    }

    /// The state, for saving.
    pub fn state(&self) -> RtcState {
        self.lock().state()
    }

    /// Restores a saved state (same machine clock base), re-driving IRQ 8 and kicking the timer loop.
    pub fn restore(&self, state: RtcState) -> Result<(), RtcError> {
        self.lock().restore(state)?;
        self.irq.force(|| self.lock().irq_level());
        self.kick.kick();
        Ok(())
    }
}

impl Timed for RtcDevice {
    fn advance(&self, now_ns: u64) -> Option<u64> {
        let deadline = {
            let mut rtc = self.lock();
            rtc.catch_up(now_ns);
            rtc.next_deadline()
        };
        self.sync_irq();
        deadline
    }
}

impl BusDevice for RtcDevice {
    fn read(&self, offset: u64, data: &mut [u8]) {
        if data.is_empty() {
            // Not a real access; it must not clear C.
            return;
        }
        let now = self.clock.now_ns();
        let value = match offset {
            1 => {
                let mut rtc = self.lock();
                rtc.catch_up(now);
                rtc.read_data(now)
            }
            // The index port is write-only: the bus floats.
            _ => 0xff,
        };
        data.fill(0xff);
        if let Some(b) = data.first_mut() {
            *b = value;
        }
        if offset == 1 {
            self.sync_irq();
        }
    }

    fn write(&self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else {
            return;
        };
        let now = self.clock.now_ns();
        let kick = {
            let mut rtc = self.lock();
            rtc.catch_up(now);
            match offset {
                0 => {
                    rtc.write_index(value);
                    false
                }
                1 => rtc.write_data(now, value),
                _ => false,
            }
        };
        self.sync_irq();
        if kick {
            self.kick.kick();
        }
    }
}
