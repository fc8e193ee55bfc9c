//! Finding orders by what a customer can read out: the search box's exact match on any id,
//! and support's lookup by amount and time.

use ::time::OffsetDateTime;
use paydesk_types::SHANGHAI;

use super::{Order, ORDER_COLUMNS};
use crate::time::{day_range, parse_clock, parse_day, shanghai_ms};
use crate::{now_ms, CoreError, Db};

/// What the search box found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per search; boxing would only burden the page's match"
)]
pub enum Found {
    /// An order (by out_trade_no or transaction_id, or the order of a refund by
    /// out_refund_no or refund_id): the page jumps to it.
    Order(Order),
    /// A customer (by openid) and their latest orders, newest first.
    Customer {
        /// The openid searched for.
        openid: String,
        /// Their newest orders (at most [`CUSTOMER_ORDERS`]).
        orders: Vec<Order>,
    },
    /// No exact match.
    Nothing,
}

/// How many of a customer's orders [`find_by_any_id`] returns.
pub const CUSTOMER_ORDERS: i64 = 50;

/// The longest text worth looking up: every id is at most 64 characters (out_refund_no,
/// refund_id), most 32.
const MAX_ID_LEN: usize = 64;

/// Exact match on any id a customer can read out: out_trade_no, transaction_id,
/// out_refund_no, refund_id, or openid (→ that customer's latest orders). Surrounding
/// whitespace is ignored. Each probe is an equality lookup on a unique or plain index; the
/// order probes run as one statement, the openid ones only when no order matched.
pub async fn find_by_any_id(db: &Db, text: &str) -> Result<Found, CoreError> {
    let id = text.trim();
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_whitespace) {
        return Ok(Found::Nothing);
    }
    // The four order probes in one statement (one round trip instead of four; on
    // PostgreSQL each was ~0.3 ms of network and scheduling), best probe first.
    let probes = format!(
        "select {ORDER_COLUMNS} from (\
         select 0 as probe, {ORDER_COLUMNS} from orders where out_trade_no = $1 \
         union all select 1, {ORDER_COLUMNS} from orders where transaction_id = $1 \
         union all select 2, {ORDER_COLUMNS} from orders where id = \
           (select order_id from refunds where out_refund_no = $1) \
         union all select 3, {ORDER_COLUMNS} from orders where id = \
           (select order_id from refunds where refund_id = $1 limit 1)\
         ) as found order by probe limit 1"
    );
    if let Some(order) = sqlx::query_as::<_, Order>(&probes)
        .bind(id)
        .fetch_optional(db.reader())
        .await?
    {
        return Ok(Found::Order(order));
    }
    let orders = crate::orders::list_for_openid(db, id, CUSTOMER_ORDERS).await?;
    if !orders.is_empty() {
        return Ok(Found::Customer {
            openid: id.to_owned(),
            orders,
        });
    }
    // A customer who logged in but never ordered is still a customer.
    let known: Option<i64> = sqlx::query_scalar("select id from customers where openid = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?;
    Ok(match known {
        Some(_) => Found::Customer {
            openid: id.to_owned(),
            orders: Vec::new(),
        },
        None => Found::Nothing,
    })
}

/// The most orders [`lookup`] returns.
pub const LOOKUP_LIMIT: i64 = 50;

/// How far either side of a stated time [`lookup`] looks.
const LOOKUP_WINDOW_MS: i64 = 2 * 3600 * 1000;
/// How far back [`lookup`] looks for an amount without a time.
const LOOKUP_DAYS_MS: i64 = 7 * 24 * 3600 * 1000;

/// An amount and an optional time, parsed from what support pasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountQuery {
    /// The amount in fen.
    pub fen: i64,
    /// Created within this range (UTC ms, `[from, to)`).
    pub from: i64,
    /// End of the range.
    pub to: i64,
}

impl AmountQuery {
    /// Parses an amount (`¥12.34`, `12.34`, `12.34元`) and, optionally, when — the way
    /// support hears it from a customer, in Asia/Shanghai time:
    ///
    /// - a day: `今天`/`today`, `昨天`/`yesterday`, `前天`, `2026-11-20` (also `/` or `.`),
    ///   `2026年11月20日`, `11月20日` (or `号`), `11-20` / `11/20` (this year, or last year
    ///   when that date is still ahead);
    /// - a time: `15:00` (also `：`, seconds allowed), `15点`, `3点半`, `3点20(分)`, with an
    ///   optional `凌晨`/`早上`/`上午`/`中午`/`下午`/`晚上`/`傍晚` before it (`下午3点` = 15:00).
    ///
    /// A time without a day is today, or yesterday when it is more than two hours ahead.
    /// With a time the range is ±2 hours around it; a day alone is that whole day; nothing
    /// is the last 7 days up to `now`. Spaces between the parts are optional
    /// (`12.34元昨天下午3点`).
    pub fn parse(text: &str, now: i64) -> Option<AmountQuery> {
        let text = text.trim();
        let split = text
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || matches!(c, '.' | '¥' | '￥' | '元')))
            .map_or(text.len(), |(i, _)| i);
        let fen = parse_yuan(&text[..split])?;
        let when = text[split..].trim();
        if when.is_empty() {
            return Some(AmountQuery {
                fen,
                from: now - LOOKUP_DAYS_MS,
                to: now + 1,
            });
        }
        let today = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
            .ok()?
            .to_offset(SHANGHAI)
            .date();
        let (day, rest) = parse_day(when, today)?;
        let rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == 'T');
        let time = if rest.is_empty() {
            None
        } else {
            Some(parse_clock(rest)?)
        };
        let (from, to) = match (day, time) {
            (Some(day), None) => day_range(day)?,
            (Some(day), Some(t)) => {
                let at = shanghai_ms(day, t)?;
                (at - LOOKUP_WINDOW_MS, at + LOOKUP_WINDOW_MS)
            }
            (None, Some(t)) => {
                let mut at = shanghai_ms(today, t)?;
                if at > now + LOOKUP_WINDOW_MS {
                    at -= 24 * 3600 * 1000;
                }
                (at - LOOKUP_WINDOW_MS, at + LOOKUP_WINDOW_MS)
            }
            (None, None) => return None,
        };
        Some(AmountQuery { fen, from, to })
    }
}

/// `12.34` (optionally with `¥`/`￥` before or `元` after) in fen: positive, at most two
/// decimals, no sign or exponent (wxpay's exact parser does the arithmetic).
fn parse_yuan(text: &str) -> Option<i64> {
    let text = text.trim_start_matches(['¥', '￥']).trim_end_matches('元');
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 9 || frac.len() > 2 || !digits(whole) || !digits(frac) {
        return None;
    }
    wxpay::money::yuan_to_fen(text).ok().filter(|fen| *fen > 0)
}

/// For support: what they pasted — an id (as [`find_by_any_id`]), or an amount with an
/// optional time (see [`AmountQuery::parse`]) matched exactly on `total_fee` — and the
/// matching orders, newest first, at most [`LOOKUP_LIMIT`].
///
/// An id is tried first: a transaction_id is all digits, and so is an amount.
pub async fn lookup(db: &Db, text: &str) -> Result<Vec<Order>, CoreError> {
    let text = text.trim();
    if !text.contains(char::is_whitespace) {
        match find_by_any_id(db, text).await? {
            Found::Order(order) => return Ok(vec![order]),
            Found::Customer { orders, .. } => return Ok(orders),
            Found::Nothing => {}
        }
    }
    let Some(q) = AmountQuery::parse(text, now_ms()) else {
        return Ok(Vec::new());
    };
    // The (total_fee, created_at) index: one equality and one range.
    Ok(sqlx::query_as::<_, Order>(&format!(
        r#"select {ORDER_COLUMNS} from orders
           where total_fee = $1 and created_at >= $2 and created_at < $3
           order by created_at desc, id desc limit $4"#
    ))
    .bind(q.fen)
    .bind(q.from)
    .bind(q.to)
    .bind(LOOKUP_LIMIT)
    .fetch_all(db.reader())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paydesk_types::format_shanghai;

    #[test]
    fn amounts_parse_to_fen() {
        assert_eq!(parse_yuan("12.34"), Some(1234));
        assert_eq!(parse_yuan("¥12.3"), Some(1230));
        assert_eq!(parse_yuan("￥12"), Some(1200));
        assert_eq!(parse_yuan("12元"), Some(1200));
        for bad in ["", "0", "12.345", "1e3", "-1", "abc", "¥", "12,00"] {
            assert_eq!(parse_yuan(bad), None, "{bad}");
        }
    }

    #[test]
    fn amount_queries_take_an_optional_shanghai_time() {
        // 2026-11-22 16:30 Asia/Shanghai = 08:30 UTC.
        let now = 1_795_336_200_000;
        let hour = 3_600_000;
        let q = AmountQuery::parse("¥12.34", now).unwrap();
        assert_eq!((q.fen, q.from, q.to), (1234, now - 7 * 24 * hour, now + 1));
        let q = AmountQuery::parse("12.34 15:00", now).unwrap();
        let at = now - 90 * 60_000;
        assert_eq!((q.from, q.to), (at - 2 * hour, at + 2 * hour));
        let q = AmountQuery::parse("12.34 2026-11-21 15:00", now).unwrap();
        assert_eq!(q.from, at - 24 * hour - 2 * hour);
        // 23:00 is more than two hours ahead of 16:30: yesterday evening.
        let q = AmountQuery::parse("12.34 23：00", now).unwrap();
        assert_eq!(q.from, now + 6 * hour + 30 * 60_000 - 24 * hour - 2 * hour);
        assert_eq!(AmountQuery::parse("12.34 25:00", now), None);
    }

    #[test]
    fn amount_queries_take_the_times_customers_say() {
        // 2026-11-22 16:30 Asia/Shanghai = 08:30 UTC.
        let now = 1_795_336_200_000;
        let hour = 3_600_000;
        let today_15 = now - 90 * 60_000;
        let around = |at: i64| (at - 2 * hour, at + 2 * hour);
        let range = |text: &str| {
            let q = AmountQuery::parse(text, now).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(q.fen, 1234, "{text}");
            (q.from, q.to)
        };
        for text in [
            "12.34 昨天下午3点",
            "12.34 昨天 下午3点",
            "12.34元昨天下午3点",
            "¥12.34 yesterday 15:00",
            "12.34 2026-11-21 15:00",
            "12.34 2026/11/21 15:00:00",
            "12.34 2026年11月21日 下午3点",
            "12.34 11月21日 15点",
            "12.34 11-21 15:00",
            "12.34 2026-11-21T15:00",
        ] {
            assert_eq!(range(text), around(today_15 - 24 * hour), "{text}");
        }
        assert_eq!(range("12.34 今天下午3点"), around(today_15));
        assert_eq!(range("12.34 下午3点"), around(today_15));
        assert_eq!(range("12.34 前天 15:00"), around(today_15 - 48 * hour));
        assert_eq!(
            range("12.34 3点半"),
            around(today_15 - 11 * hour - 30 * 60_000)
        );
        // 20:20 is more than two hours ahead of 16:30: yesterday evening.
        assert_eq!(
            range("12.34 晚上8点20分"),
            around(today_15 + 5 * hour + 20 * 60_000 - 24 * hour)
        );
        assert_eq!(range("12.34 中午12点"), around(today_15 - 3 * hour));
        // A day alone is that whole Shanghai day.
        let midnight = today_15 - 15 * hour;
        assert_eq!(range("12.34 昨天"), (midnight - 24 * hour, midnight));
        assert_eq!(range("12.34 2026-11-22"), (midnight, midnight + 24 * hour));
        // A month-day still ahead this year is last year's.
        let q = AmountQuery::parse("12.34 12月25日", now).unwrap();
        assert_eq!(format_shanghai(q.from), "2025-12-25 00:00:00");
        for bad in [
            "12.34 下午",
            "12.34 2026-13-01",
            "12.34 11月32日",
            "12.34 明天见",
            "12.34 昨天 25点",
            "12.34 15:00 extra",
            "昨天 12.34",
        ] {
            assert_eq!(AmountQuery::parse(bad, now), None, "{bad}");
        }
    }
}
