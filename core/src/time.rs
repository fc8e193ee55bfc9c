//! Time: UTC milliseconds (every timestamp column), Asia/Shanghai days (every date the
//! dashboard shows or filters on), and the days and clock times support types.

use ::time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};
pub use paydesk_types::{duration_ms, unix_ms, DAY_MS};
use paydesk_types::{SHANGHAI, SHANGHAI_OFFSET_MS};

/// The Asia/Shanghai calendar day of `ms` (UTC ms), numbered as days since 1970-01-01
/// there: the key of the running totals and of a job's "today".
pub fn day_number(ms: i64) -> i64 {
    (ms + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS)
}

/// When Shanghai day number `day` starts (UTC ms).
pub fn day_number_start(day: i64) -> i64 {
    day * DAY_MS - SHANGHAI_OFFSET_MS
}

/// The minute of its Shanghai day that `ms` (UTC ms) falls in.
pub fn minute_of_day(ms: i64) -> i64 {
    (ms + SHANGHAI_OFFSET_MS).rem_euclid(DAY_MS) / 60_000
}

/// The current time as UTC milliseconds, the unit every timestamp column uses.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// The Asia/Shanghai day `YYYY-MM-DD` as `[start, end)` in UTC ms: a date filter's value.
pub fn shanghai_day(text: &str) -> Option<(i64, i64)> {
    let start = paydesk_types::shanghai_date_to_ms(text)?;
    Some((start, start + DAY_MS))
}

pub(crate) fn day_range(day: Date) -> Option<(i64, i64)> {
    Some((date_start(day), date_start(day.next_day()?)))
}

/// The first millisecond of `date` in Asia/Shanghai (UTC ms).
pub(crate) fn date_start(date: Date) -> i64 {
    unix_ms(date.with_time(Time::MIDNIGHT).assume_offset(SHANGHAI))
}

/// A leading number of at most `max` digits and what follows it.
pub(crate) fn take_number(text: &str, max: usize) -> Option<(u32, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if end == 0 || end > max {
        return None;
    }
    Some((text[..end].parse().ok()?, &text[end..]))
}

/// The day at the start of `text` (see [`AmountQuery::parse`]), if there is one, and the
/// rest. `None` when the text starts like a day but is not a valid one.
pub(crate) fn parse_day<'a>(text: &'a str, today: Date) -> Option<(Option<Date>, &'a str)> {
    for (words, back) in [
        (&["今天", "today"][..], 0),
        (&["昨天", "yesterday"][..], 1),
        (&["前天"][..], 2),
    ] {
        for word in words {
            if let Some(rest) = text.strip_prefix(word) {
                return Some((Some(today - Duration::days(back)), rest));
            }
        }
    }
    let Some((first, after_first)) = take_number(text, 4) else {
        return Some((None, text));
    };
    let sep = after_first.chars().next();
    let is_sep = |c: Option<char>| matches!(c, Some('-' | '/' | '.' | '年' | '月'));
    if !is_sep(sep) {
        // `15点`, `15:00`: a time, not a day.
        return Some((None, text));
    }
    let after_sep = &after_first[sep?.len_utf8()..];
    let date = |y: i32, m: u32, d: u32| {
        let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
        Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()
    };
    let strip_day_mark = |s: &'a str| s.strip_prefix(['日', '号']).unwrap_or(s);
    if text.len() - after_first.len() == 4 {
        // Year first: 2026-11-20, 2026/11/20, 2026年11月20日.
        let (month, rest) = take_number(after_sep, 2)?;
        let rest = rest.strip_prefix(['-', '/', '.', '月'])?;
        let (day, rest) = take_number(rest, 2)?;
        let year = i32::try_from(first).ok()?;
        return Some((Some(date(year, month, day)?), strip_day_mark(rest)));
    }
    if sep == Some('年') {
        return None;
    }
    // Month first: 11月20日, 11-20, 11/20 — this year unless that is still ahead.
    let (day, rest) = take_number(after_sep, 2)?;
    let mut d = date(today.year(), first, day)?;
    if d > today {
        d = date(today.year() - 1, first, day)?;
    }
    Some((Some(d), strip_day_mark(rest)))
}

/// A time of day (see [`AmountQuery::parse`]); the whole text must be one.
pub(crate) fn parse_clock(text: &str) -> Option<Time> {
    let mut text = text.trim();
    let mut period = None;
    for word in ["凌晨", "早上", "上午", "中午", "下午", "晚上", "傍晚"] {
        if let Some(rest) = text.strip_prefix(word) {
            period = Some(word);
            text = rest.trim_start();
            break;
        }
    }
    let (hour, rest) = take_number(text, 2)?;
    let (minute, rest) = if let Some(rest) = rest.strip_prefix([':', '：']) {
        let (m, rest) = take_number(rest, 2)?;
        let rest = match rest.strip_prefix([':', '：']) {
            Some(secs) => take_number(secs, 2)?.1,
            None => rest,
        };
        (m, rest)
    } else if let Some(rest) = rest.strip_prefix(['点', '时']) {
        if let Some(rest) = rest.strip_prefix('半') {
            (30, rest)
        } else if let Some((m, rest)) = take_number(rest, 2) {
            (m, rest.strip_prefix('分').unwrap_or(rest))
        } else {
            (0, rest)
        }
    } else {
        return None;
    };
    if !rest.trim().is_empty() {
        return None;
    }
    let hour = match (period, hour) {
        (Some("下午" | "晚上" | "傍晚"), h @ 1..=11) => h + 12,
        (Some("中午"), h @ 1..=2) => h + 12,
        (Some("凌晨"), 12) => 0,
        (_, h) => h,
    };
    Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, 0).ok()
}

pub(crate) fn shanghai_ms(date: Date, t: Time) -> Option<i64> {
    let at = PrimitiveDateTime::new(date, t).assume_offset(SHANGHAI);
    Some(unix_ms(at))
}

/// Today's start in Asia/Shanghai (UTC ms): the "today" of the orders page's date filter.
pub fn shanghai_day_start(now: i64) -> i64 {
    day_number_start(day_number(now))
}

/// `days` days before `now` (UTC ms).
pub fn days_ago(now: i64, days: i64) -> i64 {
    now - Duration::days(days).whole_milliseconds() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use paydesk_types::format_shanghai;

    #[test]
    fn shanghai_day_starts_at_local_midnight() {
        let now = 1_795_336_200_000; // 2026-11-22 16:30 +08
        assert_eq!(
            format_shanghai(shanghai_day_start(now)),
            "2026-11-22 00:00:00"
        );
        assert_eq!(days_ago(now, 1), now - 86_400_000);
        let (from, to) = shanghai_day("2026-11-22").unwrap();
        assert_eq!(format_shanghai(from), "2026-11-22 00:00:00");
        assert_eq!(to - from, 86_400_000);
        assert_eq!(shanghai_day("2026-11-31"), None);
    }
}
