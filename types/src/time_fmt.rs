//! Times are stored as UTC milliseconds and shown in Asia/Shanghai (UTC+8, no DST).

use time::{OffsetDateTime, UtcOffset};

/// Asia/Shanghai. China has had no daylight saving time since 1991, so a fixed offset is exact.
pub const SHANGHAI: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("UTC+8 is a valid offset"),
};

/// `t` as UTC milliseconds, the unit every stored time is in: the one conversion, for core,
/// server and app alike. Every `OffsetDateTime` fits (i64 milliseconds span ±292 million
/// years, the type at most ±999,999), so no caller needs a fallback of its own.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `d` in whole milliseconds, saturating at `i64::MAX` (292 million years).
pub fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// Asia/Shanghai's offset from UTC in milliseconds (UTC+8 all year, no daylight saving).
pub const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;

/// The civil date of a day counted from 1970-01-01 (proleptic Gregorian calendar; Howard
/// Hinnant's `civil_from_days`).
///
/// The dashboard's three date functions below are written out rather than left to the
/// `time` crate's formatter and parser: the browser's wasm carries every function a page
/// uses, and these few lines replace some 20 KB of it (docs/benchmarks.md "Dashboard first
/// load, split by page"). The tests check them against `time` over years 0000 to 9999.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day counted from 1970-01-01 of a civil date (the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400); // [0, 399]
    let month = i64::from(month);
    let mp = if month > 2 { month - 3 } else { month + 9 }; // [0, 11]
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The Asia/Shanghai date and time of day (ms into it) of a UTC millisecond timestamp, for
/// the years written with four digits; `None` outside them.
fn at_shanghai(ms: i64) -> Option<((i64, u32, u32), i64)> {
    let local = ms.checked_add(SHANGHAI_OFFSET_MS)?;
    let date = civil_from_days(local.div_euclid(DAY_MS));
    (0..=9999)
        .contains(&date.0)
        .then_some((date, local.rem_euclid(DAY_MS)))
}

/// `2026-11-22 21:13:05` in Asia/Shanghai for a UTC millisecond timestamp.
pub fn format_shanghai(ms: i64) -> String {
    match at_shanghai(ms) {
        Some(((y, mo, d), t)) => {
            let s = t / 1_000;
            format!(
                "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}",
                s / 3_600,
                s / 60 % 60,
                s % 60
            )
        }
        None => ms.to_string(),
    }
}

/// `2026-11-22` in Asia/Shanghai for a UTC millisecond timestamp.
pub fn format_shanghai_date(ms: i64) -> String {
    match at_shanghai(ms) {
        Some(((y, mo, d), _)) => format!("{y:04}-{mo:02}-{d:02}"),
        None => ms.to_string(),
    }
}

/// The start of a `YYYY-MM-DD` day in Asia/Shanghai as UTC milliseconds (the inverse of
/// [`format_shanghai_date`]); `None` for anything else.
pub fn shanghai_date_to_ms(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b.get(r)?.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (i64::from(digits(0..4)?), digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day) * DAY_MS - SHANGHAI_OFFSET_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_evening_is_next_morning_in_shanghai() {
        // 2026-11-22T16:30:00Z
        let ms = 1_795_365_000_000;
        assert_eq!(format_shanghai(ms), "2026-11-23 00:30:00");
        assert_eq!(format_shanghai_date(ms), "2026-11-23");
    }

    #[test]
    fn a_shanghai_date_starts_at_its_local_midnight() {
        let ms = shanghai_date_to_ms("2026-11-22").unwrap();
        assert_eq!(format_shanghai(ms), "2026-11-22 00:00:00");
        assert_eq!(format_shanghai_date(ms), "2026-11-22");
        for bad in [
            "",
            "2026-13-01",
            "22/11/2026",
            "2026-11-22x",
            "2026-02-29",
            "2026-04-31",
            "2026-00-10",
            "2026-01-00",
            "+026-01-01",
            "2026-1-011",
        ] {
            assert_eq!(shanghai_date_to_ms(bad), None, "{bad}");
        }
        assert!(shanghai_date_to_ms("2024-02-29").is_some());
        assert_eq!(shanghai_date_to_ms(" 1970-01-01 "), Some(-8 * 3_600_000));
    }

    /// What the `time` crate makes of the same timestamp (the implementation these
    /// functions replaced).
    fn by_time_crate(ms: i64) -> Option<(String, String)> {
        use time::macros::format_description;
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()?
            .to_offset(SHANGHAI);
        let full = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let date = format_description!("[year]-[month]-[day]");
        Some((t.format(&full).ok()?, t.format(&date).ok()?))
    }

    proptest::proptest! {
        #[test]
        fn formats_as_the_time_crate_did(ms in -62_167_248_000_000i64..=253_402_271_999_999) {
            // Years 0000 to 9999 in Shanghai, each second and millisecond.
            let (full, date) = by_time_crate(ms).expect("in time's range");
            proptest::prop_assert_eq!(format_shanghai(ms), full);
            proptest::prop_assert_eq!(format_shanghai_date(ms), date.clone());
            let start = shanghai_date_to_ms(&date).expect("a formatted date parses");
            proptest::prop_assert!(start <= ms && ms - start < DAY_MS);
            proptest::prop_assert_eq!(format_shanghai(start), format!("{date} 00:00:00"));
        }

        #[test]
        fn parses_as_the_time_crate_did(y in 0i64..=9999, m in 0u32..=13, d in 0u32..=32) {
            use time::macros::format_description;
            let text = format!("{y:04}-{m:02}-{d:02}");
            let fmt = format_description!("[year]-[month]-[day]");
            let expected = time::Date::parse(&text, &fmt)
                .ok()
                .map(|date| unix_ms(date.with_time(time::Time::MIDNIGHT).assume_offset(SHANGHAI)));
            proptest::prop_assert_eq!(shanghai_date_to_ms(&text), expected);
        }
    }

    /// Every day of years 0000 to 9999, both ways, against `time`'s calendar (proptest
    /// above samples; leap days of 1900, 2000 and 2100 and the ends need all of them).
    #[test]
    fn every_day_of_four_digit_years_matches_the_time_crate() {
        let first = days_from_civil(0, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        for days in first..=last {
            let date = time::Date::from_julian_day(i32::try_from(days + 2_440_588).unwrap())
                .expect("in time's range");
            let civil = (
                i64::from(date.year()),
                u32::from(u8::from(date.month())),
                u32::from(date.day()),
            );
            assert_eq!(civil_from_days(days), civil, "day {days}");
            assert_eq!(days_from_civil(civil.0, civil.1, civil.2), days);
        }
        assert_eq!(last - first + 1, 3_652_425, "10,000 Gregorian years");
    }

    /// A case proptest once found for a broken parser (kept in its regressions file too).
    #[test]
    fn a_late_first_of_the_month_parses_to_its_local_midnight() {
        let ms = shanghai_date_to_ms("2443-12-01").unwrap();
        assert_eq!(format_shanghai(ms), "2443-12-01 00:00:00");
    }

    #[test]
    fn outside_four_digit_years_the_timestamp_itself_is_shown() {
        for ms in [i64::MIN, i64::MAX, -62_167_248_000_001, 253_402_272_000_000] {
            assert_eq!(format_shanghai(ms), ms.to_string());
            assert_eq!(format_shanghai_date(ms), ms.to_string());
        }
    }
}
