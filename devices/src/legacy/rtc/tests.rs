//! The RTC driven through ports 0x70/0x71 on a bus, as SeaBIOS and OS drivers drive it, with a fake clock.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::bus::Bus;
use crate::clock::FakeClock;
use crate::irq::RecordingIrq;

/// 2024-02-29 23:59:58 UTC, a Thursday, two seconds before a leap-day rollover.
const START: i64 = 1_709_251_198;
const MS: u64 = 1_000_000;
const US: u64 = 1_000;

struct Harness {
    clock: Arc<FakeClock>,
    irq: Arc<RecordingIrq>,
    rtc: Arc<RtcDevice>,
    bus: Bus,
    kicks: Arc<AtomicUsize>,
}

impl Harness {
    fn new(start: i64) -> Self {
        let clock = Arc::new(FakeClock::new());
        let irq = RecordingIrq::new();
        let kicks = Arc::new(AtomicUsize::new(0));
        let k = kicks.clone();
        let kick = TimerKick::new(Arc::new(move || {
            k.fetch_add(1, Ordering::SeqCst);
        }));
        let rtc = Arc::new(RtcDevice::new(start, clock.clone(), irq.clone(), kick));
        let bus = Bus::new("pio");
        bus.insert(0x70, 2, 1, rtc.clone()).unwrap();
        Harness {
            clock,
            irq,
            rtc,
            bus,
            kicks,
        }
    }

    fn read(&self, reg: u8) -> u8 {
        self.bus.write(0x70, &[reg]);
        let mut b = [0u8];
        self.bus.read(0x71, &mut b);
        b[0]
    }

    fn write(&self, reg: u8, value: u8) {
        self.bus.write(0x70, &[reg]);
        self.bus.write(0x71, &[value]);
    }

    /// [sec, min, hour, weekday, day, month, year, century] as the guest reads them.
    fn time(&self) -> [u8; 8] {
        TIME_REGS.map(|r| self.read(r))
    }

    /// Runs the timer loop until `end`: at each deadline the device advances and, with `ack`, the guest's
    /// interrupt handler reads C. Returns every C value the handler read.
    fn run_until(&self, end: u64, ack: bool) -> Vec<u8> {
        let mut seen = Vec::new();
        loop {
            let next = self.rtc.advance(self.clock.now_ns());
            if ack && self.irq.level() {
                seen.push(self.read(REG_C));
                assert!(!self.irq.level(), "reading C must lower IRQ 8");
            }
            match next {
                Some(d) if d <= end => {
                    assert!(d > self.clock.now_ns(), "deadline must lie in the future");
                    self.clock.set(d);
                }
                _ => break,
            }
        }
        self.clock.set(end);
        seen
    }
}

#[test]
fn power_on_registers_and_bcd_time() {
    let h = Harness::new(START);
    assert_eq!(h.read(REG_A), 0x26);
    assert_eq!(h.read(REG_B), 0x02);
    assert_eq!(h.read(REG_C), 0x00);
    assert_eq!(h.read(REG_D), 0x80);
    assert_eq!(h.time(), [0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]);
    assert!(
        h.rtc.advance(0).is_none(),
        "no interrupt enabled, no deadline"
    );
    // Index reads float.
    let mut b = [0u8];
    h.bus.read(0x70, &mut b);
    assert_eq!(b[0], 0xff);
}

#[test]
fn seabios_style_uip_polling_then_reading_the_time() {
    let h = Harness::new(START);
    // 100 µs before the first update, UIP is up.
    h.clock.set(NS_PER_SEC - 100 * US);
    assert_ne!(h.read(REG_A) & A_UIP, 0);
    // Poll as rtc_updating() does, with the clock moving 20 µs per poll: it must clear, and quickly.
    let mut polls = 0;
    while h.read(REG_A) & A_UIP != 0 {
        polls += 1;
        assert!(polls < 10, "UIP stuck");
        h.clock.advance(20 * US);
    }
    assert_eq!(h.read(REG_A), 0x26);
    // The update has happened: 2024-02-29 23:59:59.
    assert_eq!(h.time(), [0x59, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]);
    // UIP is up for 244 µs of every second and no longer.
    let mut up = 0;
    let steps = 3_000_000 / 4; // 3 s in 4 µs steps
    for _ in 0..steps {
        h.clock.advance(4 * US);
        if h.read(REG_A) & A_UIP != 0 {
            up += 1;
        }
    }
    assert_eq!(
        up,
        3 * (244 / 4),
        "UIP high for [update - 244 µs, update) each second"
    );
}

#[test]
fn leap_day_rolls_over_into_march_and_binary_mode() {
    let h = Harness::new(START);
    h.clock.set(2 * NS_PER_SEC);
    assert_eq!(h.time(), [0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20]);
    h.write(REG_B, B_24H | B_DM_BINARY);
    assert_eq!(h.time(), [0, 0, 0, 6, 1, 3, 24, 20]);
    h.clock.set(2 * NS_PER_SEC + 3_723 * NS_PER_SEC);
    assert_eq!(h.time(), [3, 2, 1, 6, 1, 3, 24, 20]);
}

#[test]
fn twelve_hour_mode_sets_the_pm_bit() {
    let h = Harness::new(START);
    h.write(REG_B, 0x00); // 12-hour BCD
    assert_eq!(h.read(REG_HOURS), 0x91, "23:xx is 11 PM");
    h.clock.set(2 * NS_PER_SEC);
    assert_eq!(h.read(REG_HOURS), 0x12, "00:xx is 12 AM, no PM bit");
    h.write(REG_B, B_DM_BINARY); // 12-hour binary
    assert_eq!(h.read(REG_HOURS), 12);
    h.clock.set((2 + 12 * 3600) * NS_PER_SEC);
    assert_eq!(h.read(REG_HOURS), 0x80 | 12, "noon is 12 PM");
    h.clock.set((2 + 13 * 3600) * NS_PER_SEC);
    assert_eq!(h.read(REG_HOURS), 0x80 | 1);
}

#[test]
fn setting_the_time_through_set_moves_the_clock_and_keeps_the_phase() {
    let h = Harness::new(START);
    h.clock.set(300 * MS);
    h.write(REG_B, B_SET | B_24H);
    // Frozen while SET is 1, and no update-ended flag either.
    h.clock.set(5 * NS_PER_SEC + 300 * MS);
    assert_eq!(
        h.read(REG_SECONDS),
        0x58,
        "frozen at the snapshot taken when SET went to 1"
    );
    for (reg, v) in [
        (REG_SECONDS, 0x59),
        (REG_MINUTES, 0x59),
        (REG_HOURS, 0x23),
        (REG_DAY, 0x31),
        (REG_MONTH, 0x12),
        (REG_YEAR, 0x99),
        (REG_CENTURY, 0x19),
    ] {
        h.write(reg, v);
        assert_eq!(h.read(reg), v, "written clock bytes read back while SET");
    }
    h.clock.set(7 * NS_PER_SEC + 300 * MS);
    assert_eq!(h.read(REG_SECONDS), 0x59);
    assert_eq!(h.read(REG_C) & C_UF, 0, "no updates while SET");
    h.write(REG_B, B_24H);
    assert_eq!(h.time(), [0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19]);
    // The next update stays on the old one-second grid: at 8 s, not 1 s after the commit.
    h.clock.set(8 * NS_PER_SEC - 1);
    assert_eq!(h.read(REG_SECONDS), 0x59);
    h.clock.set(8 * NS_PER_SEC);
    assert_eq!(
        h.time(),
        [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20],
        "Y2K, a Saturday"
    );
}

#[test]
fn writing_a_clock_byte_without_set_takes_effect_at_once() {
    let h = Harness::new(START);
    h.write(REG_MINUTES, 0x10);
    assert_eq!(h.time(), [0x58, 0x10, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]);
    h.clock.set(NS_PER_SEC);
    assert_eq!(h.read(REG_SECONDS), 0x59);
    assert_eq!(h.read(REG_MINUTES), 0x10);
}

#[test]
fn periodic_interrupt_rates_follow_rs() {
    for (rs, hz) in [
        (1u8, 256usize),
        (2, 128),
        (3, 8192),
        (6, 1024),
        (10, 64),
        (15, 2),
    ] {
        let h = Harness::new(START);
        h.write(REG_A, A_DV_RUNNING | rs);
        h.write(REG_B, B_24H | B_PIE);
        let seen = h.run_until(NS_PER_SEC, true);
        assert_eq!(h.irq.rising_edges(), hz, "RS={rs}");
        assert_eq!(seen.len(), hz);
        // Every interrupt is a periodic one (UF rides along at the whole second, but is not enabled).
        assert!(
            seen.iter().all(|&c| c & !C_UF == C_IRQF | C_PF),
            "RS={rs}: {seen:x?}"
        );
        // And the next second gives the same count: no drift.
        h.irq.take_events();
        h.run_until(2 * NS_PER_SEC, true);
        assert_eq!(h.irq.rising_edges(), hz, "RS={rs}, second 2");
    }
}

#[test]
fn unacknowledged_periodic_interrupt_stays_high_until_c_is_read() {
    let h = Harness::new(START);
    h.write(REG_B, B_24H | B_PIE); // RS=6 from A's default
    h.run_until(NS_PER_SEC, false);
    assert_eq!(h.irq.rising_edges(), 1);
    assert!(h.irq.level());
    assert_eq!(
        h.read(REG_C),
        C_IRQF | C_PF | C_UF,
        "UF is set too, just not enabled"
    );
    assert!(!h.irq.level());
    assert_eq!(h.read(REG_C), 0, "reading C cleared it");
}

#[test]
fn flags_are_set_without_their_enables_but_raise_no_interrupt() {
    let h = Harness::new(START);
    assert!(h.rtc.advance(0).is_none());
    h.clock.set(10 * MS);
    assert!(h.rtc.advance(10 * MS).is_none());
    assert_eq!(h.read(REG_C), C_PF, "PF at 1024 Hz, no IRQF");
    h.clock.set(NS_PER_SEC);
    assert_eq!(h.read(REG_C), C_PF | C_UF);
    assert_eq!(h.irq.rising_edges(), 0);
    // Enabling PIE while PF is pending asserts IRQ 8 at once, as on the chip.
    h.clock.set(NS_PER_SEC + 10 * MS);
    h.write(REG_B, B_24H | B_PIE);
    assert!(h.irq.level());
    // Disabling it again releases the line.
    h.write(REG_B, B_24H);
    assert!(!h.irq.level());
}

#[test]
fn rs_zero_or_a_stopped_divider_gives_no_periodic_interrupt() {
    let h = Harness::new(START);
    h.write(REG_A, A_DV_RUNNING);
    h.write(REG_B, B_24H | B_PIE);
    assert!(h.rtc.advance(0).is_none());
    h.clock.set(NS_PER_SEC / 2);
    assert_eq!(h.read(REG_C), 0);
    h.write(REG_A, 0x70 | 6); // divider in reset
    assert!(h.rtc.advance(h.clock.now_ns()).is_none());
    h.clock.set(5 * NS_PER_SEC);
    assert_eq!(h.read(REG_C), 0);
    assert_eq!(
        h.read(REG_SECONDS),
        0x58,
        "time frozen while the divider is in reset"
    );
    assert_eq!(h.read(REG_A) & A_UIP, 0);
    // Out of reset, the first update comes half a second later.
    h.write(REG_A, A_DV_RUNNING);
    h.clock.set(5 * NS_PER_SEC + 500 * MS - 1);
    assert_eq!(h.read(REG_SECONDS), 0x58);
    h.clock.set(5 * NS_PER_SEC + 500 * MS);
    assert_eq!(h.read(REG_SECONDS), 0x59);
    assert_eq!(h.irq.rising_edges(), 0);
}

#[test]
fn update_ended_interrupt_once_per_second() {
    let h = Harness::new(START);
    h.clock.set(100 * MS);
    h.write(REG_B, B_24H | B_UIE);
    assert_eq!(h.rtc.advance(100 * MS), Some(NS_PER_SEC));
    let seen = h.run_until(3 * NS_PER_SEC + 100 * MS, true);
    // PF is set by the default RS too; the power-on alarm bytes (00:00:00) match at midnight, 2 s in.
    let plain = C_IRQF | C_UF | C_PF;
    assert_eq!(seen, vec![plain, plain | C_AF, plain]);
    assert_eq!(h.irq.rising_edges(), 3);
    // SET clears UIE and stops updates.
    h.write(REG_B, B_SET | B_24H | B_UIE);
    assert_eq!(h.read(REG_B), B_SET | B_24H);
    assert!(h.rtc.advance(h.clock.now_ns()).is_none());
}

fn set_alarm(h: &Harness, hour: u8, min: u8, sec: u8) {
    h.write(REG_HOURS_ALARM, hour);
    h.write(REG_MINUTES_ALARM, min);
    h.write(REG_SECONDS_ALARM, sec);
}

#[test]
fn alarm_interrupt_fires_when_time_matches() {
    let h = Harness::new(START);
    set_alarm(&h, 0x00, 0x00, 0x05); // 00:00:05, 7 s after the start
    h.write(REG_A, A_DV_RUNNING); // no periodic flags, to keep C simple
    h.write(REG_B, B_24H | B_AIE);
    let seen = h.run_until(6 * NS_PER_SEC, true);
    assert!(seen.is_empty(), "{seen:x?}");
    let seen = h.run_until(7 * NS_PER_SEC, true);
    assert_eq!(seen, vec![C_IRQF | C_AF | C_UF]);
    assert_eq!(h.clock.now_ns(), 7 * NS_PER_SEC);
    let seen = h.run_until(100 * NS_PER_SEC, true);
    assert!(seen.is_empty(), "once a day only: {seen:x?}");
}

#[test]
fn alarm_dont_care_bytes_match_anything() {
    let h = Harness::new(START);
    set_alarm(&h, 0xff, 0xc0, 0x30); // every minute at :30
    h.write(REG_A, A_DV_RUNNING);
    h.write(REG_B, B_24H | B_AIE);
    let seen = h.run_until(182 * NS_PER_SEC, true);
    assert_eq!(seen.len(), 3, "00:00:30, 00:01:30, 00:02:30");
    // All three don't-care: every update.
    set_alarm(&h, 0xc0, 0xd5, 0xff);
    h.irq.take_events();
    h.run_until(187 * NS_PER_SEC, true);
    assert_eq!(h.irq.rising_edges(), 5);
}

#[test]
fn alarm_in_12_hour_mode_compares_the_pm_bit() {
    let h = Harness::new(START);
    h.write(REG_B, 0x00); // 12h BCD
    set_alarm(&h, 0x12, 0x00, 0x00); // 12 AM: midnight, 2 s away
    h.write(REG_B, B_AIE);
    let seen = h.run_until(2 * NS_PER_SEC, true);
    assert_eq!(seen.len(), 1);
    assert_ne!(seen[0] & C_AF, 0);
}

#[test]
fn alarm_missed_in_a_long_gap_is_still_flagged() {
    let h = Harness::new(START);
    set_alarm(&h, 0x00, 0x00, 0x05);
    h.clock.set(100 * NS_PER_SEC);
    assert_eq!(h.read(REG_C), C_PF | C_AF | C_UF);
    h.clock.set(50_000 * NS_PER_SEC);
    assert_eq!(h.read(REG_C), C_PF | C_UF, "00:00:05 did not come again");
}

#[test]
fn platform_reset_clears_enables_and_flags_but_keeps_time_and_cmos() {
    let h = Harness::new(START);
    h.rtc.set_cmos(0x3d, 0x23).unwrap();
    h.write(0x38, 0x01);
    h.write(REG_B, B_24H | B_DM_BINARY | B_SQWE | B_PIE | B_UIE | B_AIE);
    h.run_until(NS_PER_SEC, false);
    assert!(h.irq.level());
    h.rtc.reset();
    assert!(!h.irq.level());
    assert_eq!(h.read(REG_B), B_24H | B_DM_BINARY);
    assert_eq!(h.read(REG_C), 0);
    assert_eq!(h.read(REG_A), A_DEFAULT);
    assert_eq!(h.read(REG_SECONDS), 59);
    assert_eq!(h.read(0x3d), 0x23);
    assert_eq!(h.read(0x38), 0x01);
    assert!(h.rtc.advance(h.clock.now_ns()).is_none());
}

#[test]
fn nmi_bit_is_kept_apart_from_the_index() {
    let h = Harness::new(START);
    h.rtc.set_cmos(0x0f, 0x5a).unwrap();
    h.bus.write(0x70, &[0x8f]);
    assert!(h.rtc.nmi_masked());
    let mut b = [0u8];
    h.bus.read(0x71, &mut b);
    assert_eq!(b[0], 0x5a);
    h.bus.write(0x70, &[0x0f]);
    assert!(!h.rtc.nmi_masked());
    // Indexes 0x80-0xff alias 0x00-0x7f.
    h.write(0xbd, 0x77);
    assert_eq!(h.rtc.cmos(0x3d), Ok(0x77));
}

#[test]
fn machine_cmos_access_refuses_clock_registers_and_out_of_range() {
    let h = Harness::new(START);
    for idx in [0x00, 0x02, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x32] {
        assert_eq!(h.rtc.set_cmos(idx, 1), Err(RtcError::ClockRegister(idx)));
    }
    assert_eq!(h.rtc.set_cmos(0x80, 1), Err(RtcError::OutOfRange(0x80)));
    assert_eq!(h.rtc.cmos(0xff), Err(RtcError::OutOfRange(0xff)));
    h.rtc.set_cmos(0x01, 0x30).unwrap(); // an alarm byte is plain storage
    h.rtc.set_cmos(0x5f, 3).unwrap();
    assert_eq!(h.read(0x5f), 3);
    assert_eq!(h.rtc.cmos(REG_SECONDS), Ok(0x58));
    // Peeking at C through the machine accessor does not clear it.
    h.clock.set(10 * MS);
    assert_eq!(h.rtc.cmos(REG_C), Ok(C_PF));
    assert_eq!(h.read(REG_C), C_PF);
}

#[test]
fn guest_writes_to_a_and_b_kick_the_timer_loop_only_on_change() {
    let h = Harness::new(START);
    h.write(REG_A, A_DEFAULT);
    h.write(REG_B, B_DEFAULT);
    h.write(0x40, 1);
    assert_eq!(h.kicks.load(Ordering::SeqCst), 0);
    h.write(REG_A, A_DV_RUNNING | 3);
    assert_eq!(h.kicks.load(Ordering::SeqCst), 1);
    h.write(REG_B, B_24H | B_PIE);
    assert_eq!(h.kicks.load(Ordering::SeqCst), 2);
    // The new rate is in effect for the next deadline: 8192 Hz.
    assert_eq!(h.rtc.advance(0), Some(122_071));
}

#[test]
fn garbage_in_every_register_and_odd_accesses_do_no_harm() {
    let h = Harness::new(START);
    for value in [0x00u8, 0xff, 0x80, 0x7f, 0xaa, 0x5c, 0x99] {
        for reg in 0..=0xffu8 {
            h.write(reg, value);
            h.clock.advance(37 * US);
            let _ = h.read(reg);
        }
        // Whatever happened, the clock is readable, and deadlines never lie in the past.
        let now = h.clock.now_ns();
        if let Some(d) = h.rtc.advance(now) {
            assert!(d > now);
        }
        let _ = h.time();
        h.write(REG_B, B_24H);
    }
    // Garbage time written through SET commits to some time, never a panic.
    h.write(REG_A, A_DEFAULT);
    h.write(REG_B, B_SET | B_24H);
    for reg in TIME_REGS {
        h.write(reg, 0xff);
    }
    h.write(REG_B, B_24H);
    h.clock.advance(NS_PER_SEC);
    let _ = h.time();
    // Wide and out-of-range accesses straight at the adapter.
    let mut wide = [0u8; 8];
    h.rtc.read(1, &mut wide);
    h.rtc.read(7, &mut wide);
    assert_eq!(wide, [0xff; 8]);
    h.rtc.write(5, &[1, 2]);
    h.rtc.write(1, &[]);
    h.rtc.read(0, &mut []);
    // The bus refuses 2-byte accesses (max width 1).
    let mut w = [0u8; 2];
    assert_eq!(h.bus.read(0x70, &mut w), crate::bus::Access::Refused);
}

#[test]
fn extreme_start_times_are_clamped() {
    let h = Harness::new(i64::MAX);
    assert_eq!(h.read(REG_CENTURY), 0x99);
    assert_eq!(h.read(REG_YEAR), 0x99);
    h.clock.set(10 * NS_PER_SEC);
    let _ = h.time();
    let h = Harness::new(i64::MIN);
    assert_eq!(h.read(REG_CENTURY), 0x00);
    assert_eq!(h.read(REG_MONTH), 0x01);
}

#[test]
fn state_round_trips_and_bad_state_is_refused() {
    let h = Harness::new(START);
    h.rtc.set_cmos(0x3d, 0x23).unwrap();
    h.write(REG_B, B_24H | B_PIE);
    h.run_until(NS_PER_SEC, false);
    let state = h.rtc.state();
    let other = Harness::new(0);
    other.clock.set(NS_PER_SEC);
    other.rtc.restore(state.clone()).unwrap();
    assert!(other.irq.level(), "restore re-drives IRQ 8");
    assert_eq!(other.time(), h.time());
    assert_eq!(other.read(0x3d), 0x23);
    assert_eq!(other.read(REG_C), C_IRQF | C_PF | C_UF);
    let mut bad = state;
    bad.cmos.truncate(10);
    assert_eq!(other.rtc.restore(bad), Err(RtcError::BadCmosLength(10)));
}
