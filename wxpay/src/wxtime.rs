//! Times on the wire (docs/wechatpay-v2.md §9): `yyyyMMddHHmmss` (`time_start`, `time_expire`, `time_end`) and
//! `yyyy-MM-dd HH:mm:ss` (`success_time`, `refund_success_time_$n`, bill 交易时间), both in
//! Beijing time, UTC+8, a fixed offset (China has no DST). Local time is never used: a server
//! in another zone sending its local time is a known cause of `交易有效截止时间非法` (§9).

use time::format_description::BorrowedFormatItem;
use time::macros::{format_description, offset};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Beijing time, UTC+8 (§9).
pub const BEIJING: UtcOffset = offset!(+8);

const COMPACT: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day][hour][minute][second]");
const DISPLAY: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const DATE: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]");

/// Format as `yyyyMMddHHmmss` in UTC+8 (§8.1 `time_start` / `time_expire`).
pub fn format_compact(t: OffsetDateTime) -> String {
    t.to_offset(BEIJING).format(COMPACT).unwrap_or_default()
}

/// Parse `yyyyMMddHHmmss` as UTC+8 (§8.3 / §8.8 `time_end`).
pub fn parse_compact(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    Ok(PrimitiveDateTime::parse(s, COMPACT)?.assume_offset(BEIJING))
}

/// Format as `yyyy-MM-dd HH:mm:ss` in UTC+8 (§8.9 `success_time`).
pub fn format_display(t: OffsetDateTime) -> String {
    t.to_offset(BEIJING).format(DISPLAY).unwrap_or_default()
}

/// Parse `yyyy-MM-dd HH:mm:ss` as UTC+8 (§8.6 `refund_success_time_$n`, §8.9 `success_time`).
pub fn parse_display(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    Ok(PrimitiveDateTime::parse(s, DISPLAY)?.assume_offset(BEIJING))
}

/// Format a Beijing calendar date as `yyyyMMdd` (§8.7 `bill_date`).
pub fn format_date(d: Date) -> String {
    d.format(DATE).unwrap_or_default()
}

/// Parse `yyyyMMdd` (§8.7 `bill_date`).
pub fn parse_date(s: &str) -> Result<Date, time::error::Parse> {
    Date::parse(s, DATE)
}

/// Today's date in Beijing (for `bill_date`, §8.7).
pub fn today_in_beijing() -> Date {
    OffsetDateTime::now_utc().to_offset(BEIJING).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_in_beijing_time_whatever_the_input_offset() {
        let t = datetime!(2024-01-01 04:00:00 UTC);
        assert_eq!(format_compact(t), "20240101120000");
        assert_eq!(format_display(t), "2024-01-01 12:00:00");
        assert_eq!(parse_compact("20240101120000").unwrap(), t);
        assert_eq!(parse_display("2024-01-01 12:00:00").unwrap(), t);
        assert!(parse_compact("2024010112000").is_err());
        assert!(parse_compact("20241301120000").is_err());
        assert_eq!(format_date(parse_date("20240229").unwrap()), "20240229");
    }
}
