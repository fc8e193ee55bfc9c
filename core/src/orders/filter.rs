//! The orders page's filters as they travel in a URL query (`?status=PAID&from=2026-11-01&
//! to=2026-11-30&min=10&max=99.5&openid=…`), so a filtered view is a link, works without
//! JavaScript, and the CSV export reads exactly the filter the page shows. Both the page's
//! server function and the export route parse it here.
//!
//! Dates are Asia/Shanghai calendar days, both ends included (`to` covers the whole day);
//! amounts are yuan, both ends included.

use time::Date;

use crate::orders::OrderStatus;
use crate::sql::{Arg, Conditions};
use crate::time::date_start;
use crate::CoreError;
use paydesk_types::Fen;

/// What the orders page filters on. `Default` is everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderFilter {
    /// Only these statuses (empty: any).
    pub statuses: Vec<OrderStatus>,
    /// Created at or after (UTC ms).
    pub created_from: Option<i64>,
    /// Created before (UTC ms): the range is `[from, to)`.
    pub created_to: Option<i64>,
    /// Amount at least (fen).
    pub min_fee: Option<i64>,
    /// Amount at most (fen).
    pub max_fee: Option<i64>,
    /// Only this customer's orders.
    pub openid: Option<String>,
}

impl OrderFilter {
    /// The conditions for every filter except the statuses (which [`list_orders`] may split
    /// into one branch per status). `for_list`: an amount range is written `+total_fee`, which
    /// keeps both planners off the `(total_fee, created_at)` index for a newest-first page:
    /// that index would hand back every order in the range, to be sorted before the first 50
    /// are known (SQLite chooses it without statistics), while walking `created_at`
    /// backwards stops after a page. An exact amount (min = max) keeps the index: equal
    /// amounts come out in `created_at` order.
    pub(crate) fn conditions_without_status(&self, for_list: bool) -> Conditions {
        let mut c = Conditions::default();
        if let Some(openid) = &self.openid {
            let p = c.bind(Arg::Text(openid.clone()));
            c.push(format!("openid = {p}"));
        }
        if let Some(from) = self.created_from {
            let p = c.bind(Arg::Int(from));
            c.push(format!("created_at >= {p}"));
        }
        if let Some(to) = self.created_to {
            let p = c.bind(Arg::Int(to));
            c.push(format!("created_at < {p}"));
        }
        match (self.min_fee, self.max_fee) {
            (Some(min), Some(max)) if min == max => {
                let p = c.bind(Arg::Int(min));
                c.push(format!("total_fee = {p}"));
            }
            (min, max) => {
                let col = if for_list { "+total_fee" } else { "total_fee" };
                if let Some(min) = min {
                    let p = c.bind(Arg::Int(min));
                    c.push(format!("{col} >= {p}"));
                }
                if let Some(max) = max {
                    let p = c.bind(Arg::Int(max));
                    c.push(format!("{col} <= {p}"));
                }
            }
        }
        c
    }

    /// The statuses as an SQL condition (`status = 'PAID'`, `status in ('A', 'B')`).
    pub(crate) fn status_condition(statuses: &[OrderStatus]) -> Option<String> {
        Self::status_condition_on("status", statuses)
    }

    /// [`Self::status_condition`] on another expression of the status column.
    pub(crate) fn status_condition_on(expr: &str, statuses: &[OrderStatus]) -> Option<String> {
        match statuses {
            [] => None,
            [one] => Some(format!("{expr} = '{}'", one.as_str())),
            many => Some(format!(
                "{expr} in ({})",
                many.iter()
                    .map(|s| format!("'{}'", s.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The distinct statuses asked for, in a stable order.
    pub(crate) fn distinct_statuses(&self) -> Vec<OrderStatus> {
        OrderStatus::ALL
            .into_iter()
            .filter(|s| self.statuses.contains(s))
            .collect()
    }
}

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
        let created_from = day("from", &self.from)?.map(date_start);
        let created_to =
            day("to", &self.to)?.map(|d| d.next_day().map(date_start).unwrap_or(i64::MAX));
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
