//! Unix time ↔ the broken-down calendar the MC146818 keeps, and the BCD conversions its registers use.
//!
//! The RTC counts seconds; guests see (and write) seconds, minutes, hours, weekday, day, month, year and
//! century. The conversion is the proleptic Gregorian calendar, computed with whole-era arithmetic so that it
//! is exact for any year and needs no tables.

/// Seconds since 1970-01-01 00:00:00 of 0000-01-01 00:00:00, the earliest time the RTC is given.
pub(crate) const MIN_UNIX: i64 = -62_167_219_200;
/// Seconds since 1970-01-01 00:00:00 of 9999-12-31 23:59:59, the latest time the RTC is given.
pub(crate) const MAX_UNIX: i64 = 253_402_300_799;

const SECS_PER_DAY: i64 = 86_400;
/// Days in a 400-year Gregorian era.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 (the start of the era arithmetic's year) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;

/// One moment as the RTC's registers show it, before BCD/12-hour encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    /// 1 to 12.
    pub month: u8,
    /// 1 to 31.
    pub day: u8,
    /// 0 to 23.
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// 1 (Sunday) to 7 (Saturday), the MC146818's convention.
    pub weekday: u8,
}

/// Days since 1970-01-01 of a date; `month` is 1 to 12, `day` may run past the month's end (it simply counts on).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start on 1 March so that the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT
}

/// The date of `days` since 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z - era * DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The calendar fields of `secs` seconds since 1970-01-01 00:00:00 (clamped to years 0 to 9999).
pub(crate) fn civil_from_unix(secs: i64) -> Civil {
    let secs = secs.clamp(MIN_UNIX, MAX_UNIX);
    let days = secs.div_euclid(SECS_PER_DAY);
    let in_day = secs.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (weekday 5 counting Sunday as 1).
    let weekday = (days + 4).rem_euclid(7) + 1;
    // Every narrowing below is of a value the arithmetic above bounds (month ≤ 12, day ≤ 31, ...).
    Civil {
        year,
        month: month as u8,
        day: day as u8,
        hour: (in_day / 3600) as u8,
        minute: (in_day / 60 % 60) as u8,
        second: (in_day % 60) as u8,
        weekday: weekday as u8,
    }
}

/// Seconds since 1970-01-01 00:00:00 of a moment; fields may be out of their usual ranges (a guest wrote them)
/// and simply count on, except the month, which is clamped to 1-12. The result is clamped to years 0 to 9999.
pub(crate) fn unix_from_civil(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
) -> i64 {
    // Register bytes give small values; the clamps only keep arbitrary callers away from overflow.
    let small = |v: i64| v.clamp(-1_000, 1_000);
    let days = days_from_civil(year.clamp(-1, 10_000), month.clamp(1, 12), small(day));
    let secs = days * SECS_PER_DAY + small(hour) * 3600 + small(minute) * 60 + small(second);
    secs.clamp(MIN_UNIX, MAX_UNIX)
}

/// `value` (0-99) as two BCD digits.
pub(crate) fn to_bcd(value: u8) -> u8 {
    ((value / 10 % 10) << 4) | (value % 10)
}

/// Two BCD digits as a number. Garbage (digits above 9) gives a number above 99, never a panic.
pub(crate) fn from_bcd(value: u8) -> u8 {
    (value >> 4) * 10 + (value & 0x0f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_round_trip() {
        // 2024-02-29 23:59:58 UTC, a Thursday.
        let c = civil_from_unix(1_709_251_198);
        assert_eq!(
            c,
            Civil {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 58,
                weekday: 5
            }
        );
        assert_eq!(unix_from_civil(2024, 2, 29, 23, 59, 58), 1_709_251_198);
        assert_eq!(civil_from_unix(0).weekday, 5);
        let c = civil_from_unix(-1);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.second),
            (1969, 12, 31, 23, 59)
        );
        assert_eq!(civil_from_unix(MAX_UNIX).year, 9999);
        assert_eq!(civil_from_unix(MIN_UNIX).year, 0);
        assert_eq!(civil_from_unix(i64::MAX).year, 9999);
        for secs in (MIN_UNIX..MAX_UNIX).step_by(86_400 * 397 + 3_601) {
            let c = civil_from_unix(secs);
            let back = unix_from_civil(
                c.year,
                c.month.into(),
                c.day.into(),
                c.hour.into(),
                c.minute.into(),
                c.second.into(),
            );
            assert_eq!(back, secs);
        }
    }

    #[test]
    fn bcd_conversions_and_garbage() {
        assert_eq!(to_bcd(59), 0x59);
        assert_eq!(from_bcd(0x59), 59);
        assert_eq!(from_bcd(0xff), 165);
        assert_eq!(
            unix_from_civil(2000, 13, 1, 0, 0, 0),
            unix_from_civil(2000, 12, 1, 0, 0, 0)
        );
        assert_eq!(unix_from_civil(i64::MAX / 1000, 1, 1, 0, 0, 0), MAX_UNIX);
    }
}
