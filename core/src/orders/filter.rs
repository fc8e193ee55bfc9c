//! The orders page's filters as they travel in a URL query (`?status=PAID&from=2026-11-01&
//! to=2026-11-30&min=10&max=99.5&openid=…`), so a filtered view is a link, works without
//! JavaScript, and the CSV export reads exactly the filter the page shows. Both the page's
//! server function and the export route parse it here.
//!
//! Dates are Asia/Shanghai calendar days, both ends included (`to` covers the whole day);
//! amounts are yuan, both ends included.

use time::{Date, Time};

use crate::orders::OrderStatus;
use crate::search::OrderFilter;
use crate::CoreError;
use paydesk_types::{Fen, SHANGHAI};

/// The filter fields as typed (empty or absent: not set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterQuery {
    /// Status names (`PAID`, …); repeated `status=` keys or one comma-separated value.
    pub statuses: Vec<String>,
    /// First day, `YYYY-MM-DD` (Asia/Shanghai).
    pub from: String,
    /// Last day, `YYYY-MM-DD` (Asia/Shanghai), included.
    pub to: String,
    /// Smallest amount in yuan.
    pub min: String,
    /// Largest amount in yuan.
    pub max: String,
    /// One customer's openid.
    pub openid: String,
}

impl FilterQuery {
    /// Reads the filter keys from a URL query's pairs; other keys are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> FilterQuery {
        let mut q = FilterQuery::default();
        for (key, value) in pairs {
            let value = value.trim();
            match key {
                "status" => q.statuses.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                ),
                "from" => q.from = value.to_owned(),
                "to" => q.to = value.to_owned(),
                "min" => q.min = value.to_owned(),
                "max" => q.max = value.to_owned(),
                "openid" => q.openid = value.to_owned(),
                _ => {}
            }
        }
        q
    }

    /// The filter, or [`CoreError::Invalid`] naming the field that cannot be read.
    pub fn parse(&self) -> Result<OrderFilter, CoreError> {
        let mut statuses = Vec::new();
        for name in &self.statuses {
            let status = name
                .parse::<OrderStatus>()
                .map_err(|_| CoreError::invalid("status", format!("unknown status {name:?}")))?;
            if !statuses.contains(&status) {
                statuses.push(status);
            }
        }
        let created_from = day("from", &self.from)?.map(day_start);
        let created_to =
            day("to", &self.to)?.map(|d| d.next_day().map(day_start).unwrap_or(i64::MAX));
        if let (Some(from), Some(to)) = (created_from, created_to) {
            if from >= to {
                return Err(CoreError::invalid(
                    "to",
                    "the last day is before the first day",
                ));
            }
        }
        let min_fee = yuan("min", &self.min)?;
        let max_fee = yuan("max", &self.max)?;
        if let (Some(min), Some(max)) = (min_fee, max_fee) {
            if min > max {
                return Err(CoreError::invalid(
                    "max",
                    "the largest amount is below the smallest",
                ));
            }
        }
        let openid = match self.openid.as_str() {
            "" => None,
            o if o.len() > 128 || o.chars().any(char::is_whitespace) => {
                return Err(CoreError::invalid("openid", "not an openid"))
            }
            o => Some(o.to_owned()),
        };
        Ok(OrderFilter {
            statuses,
            created_from,
            created_to,
            min_fee,
            max_fee,
            openid,
        })
    }

    /// The query string of this filter (without `?`), keys in a fixed order, empty fields
    /// left out: what the export link and the page links carry.
    pub fn to_query(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|s| format!("status={}", encode(s)))
            .collect();
        for (key, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("min", &self.min),
            ("max", &self.max),
            ("openid", &self.openid),
        ] {
            if !value.is_empty() {
                parts.push(format!("{key}={}", encode(value)));
            }
        }
        parts.join("&")
    }
}

fn day(field: &'static str, text: &str) -> Result<Option<Date>, CoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &fmt)
        .map(Some)
        .map_err(|_| CoreError::invalid(field, "a day is written YYYY-MM-DD"))
}

/// The first millisecond of `date` in Asia/Shanghai (UTC ms).
fn day_start(date: Date) -> i64 {
    let at = date.with_time(Time::MIDNIGHT).assume_offset(SHANGHAI);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn yuan(field: &'static str, text: &str) -> Result<Option<i64>, CoreError> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<Fen>() {
        Ok(Fen(fen)) if fen >= 0 => Ok(Some(fen)),
        _ => Err(CoreError::invalid(field, "an amount in yuan, e.g. 12.50")),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_shanghai_days_with_the_last_day_included() {
        let q = FilterQuery::from_pairs([("from", "2026-11-22"), ("to", "2026-11-22")]);
        let f = q.parse().unwrap();
        // 2026-11-22 00:00 +08 = 2026-11-21 16:00 UTC.
        assert_eq!(f.created_from, Some(1_795_276_800_000));
        assert_eq!(f.created_to, Some(f.created_from.unwrap() + 86_400_000));
    }

    #[test]
    fn statuses_amounts_and_openid_parse_and_bad_input_names_its_field() {
        let q = FilterQuery::from_pairs([
            ("status", "PAID,REFUNDED"),
            ("status", "PAID"),
            ("min", "10"),
            ("max", "¥99.50"),
            ("openid", "oAbc"),
            ("after", "ignored"),
        ]);
        let f = q.parse().unwrap();
        assert_eq!(f.statuses, [OrderStatus::Paid, OrderStatus::Refunded]);
        assert_eq!((f.min_fee, f.max_fee), (Some(1000), Some(9950)));
        assert_eq!(f.openid.as_deref(), Some("oAbc"));
        for (pairs, field) in [
            (vec![("status", "PAYED")], "status"),
            (vec![("from", "22/11/2026")], "from"),
            (vec![("from", "2026-11-22"), ("to", "2026-11-21")], "to"),
            (vec![("min", "1.234")], "min"),
            (vec![("min", "5"), ("max", "4")], "max"),
            (vec![("openid", "a b")], "openid"),
        ] {
            match FilterQuery::from_pairs(pairs.clone()).parse() {
                Err(CoreError::Invalid { field: f, .. }) => assert_eq!(f, field, "{pairs:?}"),
                other => panic!("{pairs:?}: {other:?}"),
            }
        }
        assert_eq!(
            FilterQuery::default().parse().unwrap(),
            OrderFilter::default()
        );
    }

    #[test]
    fn the_query_string_round_trips() {
        let q = FilterQuery::from_pairs([
            ("status", "PAID"),
            ("status", "CLOSED"),
            ("from", "2026-11-01"),
            ("max", "¥9.50"),
            ("openid", "o+x/y"),
        ]);
        let text = q.to_query();
        assert_eq!(
            text,
            "status=PAID&status=CLOSED&from=2026-11-01&max=%C2%A59.50&openid=o%2Bx%2Fy"
        );
    }
}
