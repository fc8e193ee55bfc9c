//! Finding orders: the orders page's filtered, keyset-paginated list and its totals, the
//! one search box that takes any id a customer can read out, support's lookup by amount and
//! time, and the managers' CSV export (design.md "Users and what they need").
//!
//! Every query is built from the filters actually set, so each engine plans it with the
//! real constraints and picks the matching index (migration `…_order_search`): an
//! `(x is null or col = x)` predicate would hide the constraint from SQLite's planner and
//! force a scan. Values are always bound; only the status names (from [`OrderStatus`],
//! never from input) are written into the SQL text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use crate::audit::{self, action, Actor};
use crate::orders::{Order, OrderRow, OrderStatus, ORDER_COLUMNS};
use crate::{now_ms, CoreError, Db};
use paydesk_types::{format_shanghai, SHANGHAI};
use wxpay::money::fen_to_yuan;

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

/// A bound value of a built query.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// A `where` clause under construction, with its `$n` placeholders numbered in order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    pub(crate) sql: Vec<String>,
    pub(crate) args: Vec<Arg>,
}

impl Conditions {
    /// Adds `arg` and returns its placeholder.
    pub(crate) fn bind(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub(crate) fn push(&mut self, condition: String) {
        self.sql.push(condition);
    }

    /// `where a and b …`, or nothing.
    pub(crate) fn where_clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!("where {}", self.sql.join(" and "))
        }
    }
}

/// Binds `args` to a query in order.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}
pub(crate) use bind_all;

/// Adds the keyset condition "after `cursor`" for a list ordered by `time_col desc, id desc`.
/// `time_col <= at` gives both engines a range to start the index walk at (see
/// [`list_orders`]).
pub(crate) fn push_after(c: &mut Conditions, time_col: &str, cursor: &Cursor) {
    let at = c.bind(Arg::Int(cursor.created_at));
    let id = c.bind(Arg::Int(cursor.id));
    c.push(format!(
        "{time_col} <= {at} and ({time_col} < {at} or id < {id})"
    ));
}

/// Cuts a page fetched with one row more than `limit` back to `limit`, and returns the
/// cursor for the next page when that extra row was there.
pub(crate) fn finish_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> Cursor,
) -> Option<Cursor> {
    if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(cursor)
    } else {
        None
    }
}

impl OrderFilter {
    /// The conditions for every filter except the statuses (which [`list_orders`] may split
    /// into one branch per status). `for_list`: an amount range is written `+total_fee`, which
    /// keeps both planners off the `(total_fee, created_at)` index for a newest-first page:
    /// that index would hand back every order in the range, to be sorted before the first 50
    /// are known (SQLite chooses it without statistics), while walking `created_at`
    /// backwards stops after a page. An exact amount (min = max) keeps the index: equal
    /// amounts come out in `created_at` order.
    fn conditions_without_status(&self, for_list: bool) -> Conditions {
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

/// Where the next page starts: the `(created_at, id)` of the last order shown. Opaque to
/// the browser ([`Cursor::encode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last order's `created_at` (UTC ms).
    pub created_at: i64,
    /// The last order's id.
    pub id: i64,
}

impl Cursor {
    /// URL-safe text for a `?after=` parameter.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_at, self.id))
    }

    /// The cursor [`Cursor::encode`] made, or `None` for anything else (a tampered or
    /// truncated parameter just starts from the first page).
    pub fn decode(text: &str) -> Option<Cursor> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let (created_at, id) = text.split_once('.')?;
        Some(Cursor {
            created_at: created_at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }

    fn of(order: &Order) -> Cursor {
        Cursor {
            created_at: order.created_at,
            id: order.id,
        }
    }
}

/// One page of orders, newest first, and where the next one starts (`None`: this was the
/// last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPage {
    /// The orders on this page.
    pub orders: Vec<Order>,
    /// The cursor for the next page, if there is one.
    pub next: Option<Cursor>,
}

/// The largest page [`list_orders`] returns.
pub const MAX_PAGE: i64 = 500;

/// One page of the orders matching `filter`, newest first (`created_at desc, id desc`),
/// starting after `after`. `limit` is clamped to 1..=[`MAX_PAGE`].
///
/// Keyset pagination: the page after a cursor is `(created_at, id) < cursor`, an index range
/// that costs the same on page 1 and page 20,000 (OFFSET would read and discard every
/// earlier row). Several statuses become one branch per status (`union all`), each an
/// ordered range of the `(status, created_at, id)` index, so neither engine has to sort all
/// matching orders to find the newest.
pub async fn list_orders(
    db: &Db,
    filter: &OrderFilter,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<OrderPage, CoreError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let mut c = filter.conditions_without_status(true);
    if let Some(cursor) = after {
        let at = c.bind(Arg::Int(cursor.created_at));
        let id = c.bind(Arg::Int(cursor.id));
        // `created_at <= at` gives both engines a range to start the index walk at; the `or`
        // alone (or a row value on SQLite) left PostgreSQL scanning from the newest order
        // and filtering: 200 ms for a page in the middle of a million.
        c.push(format!(
            "created_at <= {at} and (created_at < {at} or id < {id})"
        ));
    }
    // One more than asked tells whether a next page exists.
    let take = c.bind(Arg::Int(limit + 1));
    let order_by = "order by created_at desc, id desc";
    let statuses = filter.distinct_statuses();
    let sql = if statuses.len() <= 1 {
        if let Some(cond) = OrderFilter::status_condition(&statuses) {
            c.push(cond);
        }
        format!(
            "select {ORDER_COLUMNS} from orders {} {order_by} limit {take}",
            c.where_clause()
        )
    } else {
        let branches = statuses
            .iter()
            .enumerate()
            .map(|(i, status)| {
                let mut sql = c.sql.clone();
                sql.push(format!("status = '{}'", status.as_str()));
                format!(
                    "select {ORDER_COLUMNS} from (select {ORDER_COLUMNS} from orders where {} \
                     {order_by} limit {take}) as s{i}",
                    sql.join(" and ")
                )
            })
            .collect::<Vec<_>>()
            .join(" union all ");
        format!("select {ORDER_COLUMNS} from ({branches}) as u {order_by} limit {take}")
    };
    let rows = bind_all!(sqlx::query_as::<_, OrderRow>(&sql), &c.args)
        .fetch_all(db.reader())
        .await?;
    let mut orders = rows
        .into_iter()
        .map(Order::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders.last().map(Cursor::of)
    } else {
        None
    };
    Ok(OrderPage { orders, next })
}

/// How many orders match `filter` and the sum of their amounts (fen): from the running
/// totals when they can answer it ([`crate::orders::totals`]), otherwise from the orders.
pub async fn totals(db: &Db, filter: &OrderFilter) -> Result<(i64, i64), CoreError> {
    if let Some(found) = crate::orders::totals::totals(db, filter).await? {
        return Ok(found);
    }
    totals_from_orders(db, filter).await
}

/// [`totals`] read from the orders themselves, for the filters the running totals cannot
/// answer (and for tests to compare with).
pub async fn totals_from_orders(db: &Db, filter: &OrderFilter) -> Result<(i64, i64), CoreError> {
    let mut c = filter.conditions_without_status(false);
    if let Some(cond) = OrderFilter::status_condition(&filter.distinct_statuses()) {
        c.push(cond);
    }
    // `coalesce(…, 0)`: sum over no rows is NULL. The cast keeps PostgreSQL's sum of
    // bigint (a numeric) readable as i64 through `Any`.
    let sql = format!(
        "select count(*), cast(coalesce(sum(total_fee), 0) as bigint) from orders {}",
        c.where_clause()
    );
    let (count, sum): (i64, i64) = bind_all!(sqlx::query_as(&sql), &c.args)
        .fetch_one(db.reader())
        .await?;
    Ok((count, sum))
}

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
    if let Some(row) = sqlx::query_as::<_, OrderRow>(&probes)
        .bind(id)
        .fetch_optional(db.reader())
        .await?
    {
        return Ok(Found::Order(row.try_into()?));
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

/// The Asia/Shanghai day `YYYY-MM-DD` as `[start, end)` in UTC ms: a date filter's value.
pub fn shanghai_day(text: &str) -> Option<(i64, i64)> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    day_range(Date::parse(text.trim(), &fmt).ok()?)
}

fn day_range(day: Date) -> Option<(i64, i64)> {
    Some((
        shanghai_ms(day, Time::MIDNIGHT)?,
        shanghai_ms(day.next_day()?, Time::MIDNIGHT)?,
    ))
}

/// A leading number of at most `max` digits and what follows it.
fn take_number(text: &str, max: usize) -> Option<(u32, &str)> {
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
fn parse_day<'a>(text: &'a str, today: Date) -> Option<(Option<Date>, &'a str)> {
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
fn parse_clock(text: &str) -> Option<Time> {
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

fn shanghai_ms(date: Date, t: Time) -> Option<i64> {
    let at = PrimitiveDateTime::new(date, t).assume_offset(SHANGHAI);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
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
    let rows = sqlx::query_as::<_, OrderRow>(&format!(
        r#"select {ORDER_COLUMNS} from orders
           where total_fee = $1 and created_at >= $2 and created_at < $3
           order by created_at desc, id desc limit $4"#
    ))
    .bind(q.fen)
    .bind(q.from)
    .bind(q.to)
    .bind(LOOKUP_LIMIT)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter().map(Order::try_from).collect()
}

/// The CSV export's header: Chinese and English names, as managers read both.
pub const CSV_HEADER: [&str; 9] = [
    "商户订单号 out_trade_no",
    "微信支付单号 transaction_id",
    "用户 openid",
    "商品 description",
    "金额(元) amount_yuan",
    "状态 status",
    "下单时间 created_at",
    "支付时间 paid_at",
    "付款银行 bank_type",
];

/// How many orders the export reads per query.
const EXPORT_BATCH: i64 = 500;

/// Writes the orders matching `filter` as CSV to `out`, newest first, and returns how many
/// rows it wrote. Reads them in keyset pages of [`EXPORT_BATCH`], so memory stays flat at a
/// million orders and a slow client only slows the export down.
///
/// UTF-8 with a byte-order mark (Excel on a Chinese Windows opens a BOM-less file as GBK),
/// CRLF line ends (RFC 4180), amounts as yuan text (`12.34`), times in Asia/Shanghai
/// (`YYYY-MM-DD HH:MM:SS`). Text that a spreadsheet would run as a formula (any of
/// [`FORMULA_LEADS`] first) is prefixed with `'`.
pub async fn export_csv<W>(db: &Db, filter: &OrderFilter, out: &mut W) -> Result<u64, CoreError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = String::from("\u{feff}");
    push_csv_row(&mut buf, CSV_HEADER.iter().map(|s| s.to_string()));
    write(out, &mut buf).await?;
    let mut after = None;
    let mut rows = 0u64;
    loop {
        let page = list_orders(db, filter, after.as_ref(), EXPORT_BATCH).await?;
        for o in &page.orders {
            push_csv_row(
                &mut buf,
                [
                    o.out_trade_no.clone(),
                    o.transaction_id.clone().unwrap_or_default(),
                    o.openid.clone(),
                    o.description.clone(),
                    fen_to_yuan(o.total_fee),
                    o.status.as_str().to_owned(),
                    format_shanghai(o.created_at),
                    o.paid_at.map(format_shanghai).unwrap_or_default(),
                    o.bank_type.clone().unwrap_or_default(),
                ]
                .into_iter(),
            );
            rows += 1;
        }
        write(out, &mut buf).await?;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    out.flush()
        .await
        .map_err(|e| CoreError::Internal(e.into()))?;
    Ok(rows)
}

async fn write<W: AsyncWrite + Unpin + ?Sized>(
    out: &mut W,
    buf: &mut String,
) -> Result<(), CoreError> {
    out.write_all(buf.as_bytes())
        .await
        .map_err(|e| CoreError::Internal(anyhow::Error::new(e).context("writing the export")))?;
    buf.clear();
    Ok(())
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP "CSV
/// Injection"): `=`, `+`, `-`, `@`, and tab and carriage return, which Excel and LibreOffice
/// skip before looking for the others.
pub const FORMULA_LEADS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn push_csv_row(buf: &mut String, fields: impl Iterator<Item = String>) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            buf.push(',');
        }
        let field = if field.starts_with(FORMULA_LEADS) {
            format!("'{field}")
        } else {
            field
        };
        if field.contains([',', '"', '\n', '\r']) {
            buf.push('"');
            buf.push_str(&field.replace('"', "\"\""));
            buf.push('"');
        } else {
            buf.push_str(&field);
        }
    }
    buf.push_str("\r\n");
}

/// Records an export in the audit log (action `order.export`), with the filter in the
/// detail. The export route calls it before it starts streaming.
pub async fn record_export(db: &Db, actor: &Actor, filter: &OrderFilter) -> Result<(), CoreError> {
    let detail = describe_filter(filter);
    audit::record(
        db.writer(),
        audit::Entry {
            actor,
            action: action::ORDER_EXPORT,
            target: None,
            detail: Some(&detail),
        },
    )
    .await
}

/// The filter in words, for the audit log.
fn describe_filter(f: &OrderFilter) -> String {
    let mut parts = Vec::new();
    if !f.statuses.is_empty() {
        let names: Vec<&str> = f.distinct_statuses().iter().map(|s| s.as_str()).collect();
        parts.push(format!("status {}", names.join("|")));
    }
    if let Some(from) = f.created_from {
        parts.push(format!("from {}", format_shanghai(from)));
    }
    if let Some(to) = f.created_to {
        parts.push(format!("before {}", format_shanghai(to)));
    }
    if let Some(min) = f.min_fee {
        parts.push(format!("amount ≥ {}", fen_to_yuan(min)));
    }
    if let Some(max) = f.max_fee {
        parts.push(format!("amount ≤ {}", fen_to_yuan(max)));
    }
    if let Some(openid) = &f.openid {
        parts.push(format!("openid {openid}"));
    }
    if parts.is_empty() {
        "all orders".into()
    } else {
        format!("orders: {}", parts.join(", "))
    }
}

/// Today's start in Asia/Shanghai (UTC ms): the "today" of the orders page's date filter.
pub fn shanghai_day_start(now: i64) -> i64 {
    let date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .map(|t| t.to_offset(SHANGHAI).date())
        .unwrap_or(Date::MIN);
    shanghai_ms(date, Time::MIDNIGHT).unwrap_or(0)
}

/// `days` days before `now` (UTC ms).
pub fn days_ago(now: i64, days: i64) -> i64 {
    now - Duration::days(days).whole_milliseconds() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_garbage_is_none() {
        let c = Cursor {
            created_at: 1_795_365_000_123,
            id: 42,
        };
        let text = c.encode();
        assert!(text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(Cursor::decode(&text), Some(c));
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("1.x")] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

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

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        let mut buf = String::new();
        push_csv_row(
            &mut buf,
            ["a,b", "say \"hi\"", "=1+1", "plain"]
                .into_iter()
                .map(String::from),
        );
        assert_eq!(buf, "\"a,b\",\"say \"\"hi\"\"\",'=1+1,plain\r\n");
    }

    #[test]
    fn every_formula_lead_character_is_defused() {
        for lead in ['=', '+', '-', '@', '\t', '\r'] {
            let mut buf = String::new();
            push_csv_row(&mut buf, [format!("{lead}cmd|' /C calc'!A0")].into_iter());
            let cell = buf.trim_end_matches("\r\n").trim_start_matches('"');
            assert!(cell.starts_with('\''), "{lead:?}: {buf:?}");
        }
    }

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
