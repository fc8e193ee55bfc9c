//! Times are stored as UTC milliseconds and shown in Asia/Shanghai (UTC+8, no DST).

use time::macros::format_description;
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

fn at_shanghai(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(|t| t.to_offset(SHANGHAI))
}

/// `2026-11-22 21:13:05` in Asia/Shanghai for a UTC millisecond timestamp.
pub fn format_shanghai(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    at_shanghai(ms)
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `2026-11-22` in Asia/Shanghai for a UTC millisecond timestamp.
pub fn format_shanghai_date(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    at_shanghai(ms)
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The start of a `YYYY-MM-DD` day in Asia/Shanghai as UTC milliseconds (the inverse of
/// [`format_shanghai_date`]); `None` for anything else.
pub fn shanghai_date_to_ms(text: &str) -> Option<i64> {
    let fmt = format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text.trim(), &fmt).ok()?;
    Some(unix_ms(
        date.with_time(time::Time::MIDNIGHT).assume_offset(SHANGHAI),
    ))
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
        for bad in ["", "2026-13-01", "22/11/2026", "2026-11-22x"] {
            assert_eq!(shanghai_date_to_ms(bad), None, "{bad}");
        }
    }
}
