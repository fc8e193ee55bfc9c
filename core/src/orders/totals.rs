//! Running totals of orders (migration `order_totals`): count and amount per Asia/Shanghai
//! day × status, per whole yuan × status, per day × whole yuan × status, and paid per day.
//! They let the dashboard's sums read a few hundred rows instead of every order: the orders
//! page's totals over the whole table, a status, an amount range (with dates or without),
//! and the home page's success rate and chart.
//!
//! The database keeps them itself, by triggers on `orders`, in the transaction that changes
//! the order; no Rust code that writes orders has to remember them. On SQLite the triggers
//! update the totals in place. On PostgreSQL they append signed changes to
//! `order_totals_log` (many writers at once would otherwise queue on today's row), and
//! [`fold`] moves the log into the totals; every read here adds the log's rows in the same
//! statement, so a sum is exact whether the log was folded a moment ago or never.
//!
//! [`totals`] answers only the filters the totals can answer exactly (whole Shanghai days,
//! no customer) and returns `None` for the rest, which [`crate::orders::list::totals`] then sums
//! from the orders themselves.

use crate::db::Backend;
use crate::orders::filter::OrderFilter;
use crate::sql::{bind_all, Arg, Conditions};
use crate::time::{day_number, day_number_start};
use crate::{CoreError, Db};

/// Fen per amount band: the by-band totals are per whole yuan.
pub(crate) const BAND_FEN: i64 = 100;

/// Whether `ms` is the start of a Shanghai day.
fn starts_a_day(ms: i64) -> bool {
    day_number_start(day_number(ms)) == ms
}

/// Count and sum of the orders `filter` selects, from the totals, or `None` when the totals
/// cannot answer it exactly: a customer (openid), a date bound that is not the start of a
/// Shanghai day, or an amount range narrower than one whole yuan. An amount range is
/// answered by whole-yuan bands (per day too when dates are given) plus the orders in the
/// partial yuan at either end (an index range on `total_fee, created_at` each).
pub async fn totals(db: &Db, filter: &OrderFilter) -> Result<Option<(i64, i64)>, CoreError> {
    if filter.openid.is_some()
        || filter.created_from.is_some_and(|t| !starts_a_day(t))
        || filter.created_to.is_some_and(|t| !starts_a_day(t))
    {
        return Ok(None);
    }
    let statuses = filter.distinct_statuses();
    let status = OrderFilter::status_condition(&statuses);
    let has_amount = filter.min_fee.is_some() || filter.max_fee.is_some();
    let has_dates = filter.created_from.is_some() || filter.created_to.is_some();
    let mut c = Conditions::default();
    let mut parts = Vec::new();
    if !has_amount {
        // Per day and status.
        let mut keys = Vec::new();
        if let Some(from) = filter.created_from {
            keys.push(format!("day >= {}", c.bind(Arg::Int(day_number(from)))));
        }
        if let Some(to) = filter.created_to {
            keys.push(format!("day < {}", c.bind(Arg::Int(day_number(to)))));
        }
        keys.extend(status);
        parts.push(branch("order_totals_by_day", &keys));
        if db.backend() == Backend::Postgres {
            keys.push("status is not null".to_owned());
            parts.push(branch("order_totals_log", &keys));
        }
    } else {
        // Whole yuan bands inside [min, max]: band b holds [100 b, 100 b + 99] fen. With
        // dates, per day as well (whole Shanghai days, checked above).
        let lo = filter
            .min_fee
            .map(|min| min.max(0).div_euclid(BAND_FEN) + i64::from(min.max(0) % BAND_FEN != 0));
        let hi = filter
            .max_fee
            .map(|max| (max - (BAND_FEN - 1)).div_euclid(BAND_FEN));
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo > hi {
                // Narrower than one whole yuan: the orders themselves, one index range.
                return Ok(None);
            }
        }
        let mut keys = Vec::new();
        // The same dates on the orders, for the partial yuan at either end.
        let mut created = Vec::new();
        if let Some(from) = filter.created_from {
            keys.push(format!("day >= {}", c.bind(Arg::Int(day_number(from)))));
            created.push(format!("created_at >= {}", c.bind(Arg::Int(from))));
        }
        if let Some(to) = filter.created_to {
            keys.push(format!("day < {}", c.bind(Arg::Int(day_number(to)))));
            created.push(format!("created_at < {}", c.bind(Arg::Int(to))));
        }
        if let Some(lo) = lo {
            keys.push(format!("band >= {}", c.bind(Arg::Int(lo))));
        }
        if let Some(hi) = hi {
            keys.push(format!("band <= {}", c.bind(Arg::Int(hi))));
        }
        keys.extend(status.clone());
        let table = if has_dates {
            "order_totals_by_day_band"
        } else {
            "order_totals_by_band"
        };
        parts.push(branch(table, &keys));
        if db.backend() == Backend::Postgres {
            keys.push("status is not null".to_owned());
            parts.push(branch("order_totals_log", &keys));
        }
        // The partial yuan below the first band and above the last, from the amount index
        // (`total_fee, created_at`: with dates, one short range per fen value).
        // `status || ''` keeps SQLite (no statistics) off the status index, which it prefers
        // for an equality: it would read every order of the status (178 ms for PAID at a
        // million orders) to find the few in a yuan.
        let status = OrderFilter::status_condition_on("status || ''", &statuses);
        if let (Some(min), Some(lo)) = (filter.min_fee, lo) {
            if min < lo * BAND_FEN {
                let mut edge = vec![
                    format!("total_fee >= {}", c.bind(Arg::Int(min))),
                    format!("total_fee < {}", c.bind(Arg::Int(lo * BAND_FEN))),
                ];
                edge.extend(created.iter().cloned());
                edge.extend(status.clone());
                parts.push(orders_branch(&edge));
            }
        }
        if let (Some(max), Some(hi)) = (filter.max_fee, hi) {
            if max >= (hi + 1) * BAND_FEN {
                let mut edge = vec![
                    format!("total_fee >= {}", c.bind(Arg::Int((hi + 1) * BAND_FEN))),
                    format!("total_fee <= {}", c.bind(Arg::Int(max))),
                ];
                edge.extend(created);
                edge.extend(status);
                parts.push(orders_branch(&edge));
            }
        }
    }
    let sql = format!(
        "select cast(coalesce(sum(n), 0) as bigint), cast(coalesce(sum(f), 0) as bigint) \
         from ({}) as t",
        parts.join(" union all ")
    );
    let (count, sum): (i64, i64) = bind_all!(sqlx::query_as(&sql), &c.args)
        .fetch_one(db.reader())
        .await?;
    Ok(Some((count, sum)))
}

/// `select orders as n, fen as f from {table} where …`.
fn branch(table: &str, conditions: &[String]) -> String {
    let mut sql = format!("select orders as n, fen as f from {table}");
    if !conditions.is_empty() {
        sql.push_str(" where ");
        sql.push_str(&conditions.join(" and "));
    }
    sql
}

/// The orders themselves, as one row of the same shape.
fn orders_branch(conditions: &[String]) -> String {
    format!(
        "select count(*) as n, coalesce(sum(total_fee), 0) as f from orders where {}",
        conditions.join(" and ")
    )
}

/// A scalar query: how many orders were created on the Shanghai day bound at `day_param`
/// with one of `statuses` (quoted names of [`crate::orders::OrderStatus`], never user input).
pub(crate) fn created_on_day_sql(backend: Backend, day_param: &str, statuses: &str) -> String {
    let log = if backend == Backend::Postgres {
        format!(
            " union all select orders as n, fen as f from order_totals_log \
             where day = {day_param} and status in ({statuses})"
        )
    } else {
        String::new()
    };
    format!(
        "select cast(coalesce(sum(n), 0) as bigint) from (select orders as n, fen as f \
         from order_totals_by_day where day = {day_param} and status in ({statuses}){log}) as t"
    )
}

/// Paid per Shanghai day (by paid_at) for days `from_day ..= to_day`: `(day, count, fen)`
/// for the days with rows (a day without payments may be missing or zero).
pub async fn paid_by_day(
    db: &Db,
    from_day: i64,
    to_day: i64,
) -> Result<Vec<(i64, i64, i64)>, CoreError> {
    let log = if db.backend() == Backend::Postgres {
        " union all select paid_day, orders, fen from order_totals_log \
         where paid_day >= $1 and paid_day <= $2"
    } else {
        ""
    };
    let sql = format!(
        "select day, cast(sum(n) as bigint), cast(sum(f) as bigint) from (\
         select day, orders as n, fen as f from order_totals_paid_by_day \
         where day >= $1 and day <= $2{log}) as t group by day order by day"
    );
    Ok(sqlx::query_as(&sql)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(db.reader())
        .await?)
}

/// Moves `order_totals_log` into the totals (PostgreSQL; SQLite keeps no log) and returns
/// how many log rows it moved.
///
/// One statement, committed on its own: the rows it deletes are exactly the rows it adds up
/// (a row written by a transaction that has not committed yet is neither, and waits for
/// the next fold), so a reader sees every change once, before or after. Two instances
/// folding at once are both correct: the second's delete waits for the first's and then
/// skips the rows it took, and its upserts wait for the first's row locks.
pub async fn fold(db: &Db) -> Result<u64, CoreError> {
    if db.backend() != Backend::Postgres {
        return Ok(0);
    }
    let (moved,): (i64,) = sqlx::query_as(
        r#"with moved as (
               delete from order_totals_log returning day, band, status, paid_day, orders, fen
           ), by_day as (
               insert into order_totals_by_day (day, status, orders, fen)
               select day, status, sum(orders), sum(fen) from moved
               where status is not null group by day, status
               on conflict (day, status) do update
                   set orders = order_totals_by_day.orders + excluded.orders,
                       fen = order_totals_by_day.fen + excluded.fen
           ), by_band as (
               insert into order_totals_by_band (band, status, orders, fen)
               select band, status, sum(orders), sum(fen) from moved
               where status is not null group by band, status
               on conflict (band, status) do update
                   set orders = order_totals_by_band.orders + excluded.orders,
                       fen = order_totals_by_band.fen + excluded.fen
           ), by_day_band as (
               insert into order_totals_by_day_band (day, band, status, orders, fen)
               select day, band, status, sum(orders), sum(fen) from moved
               where status is not null group by day, band, status
               on conflict (day, band, status) do update
                   set orders = order_totals_by_day_band.orders + excluded.orders,
                       fen = order_totals_by_day_band.fen + excluded.fen
           ), paid as (
               insert into order_totals_paid_by_day (day, orders, fen)
               select paid_day, sum(orders), sum(fen) from moved
               where paid_day is not null group by paid_day
               on conflict (day) do update
                   set orders = order_totals_paid_by_day.orders + excluded.orders,
                       fen = order_totals_paid_by_day.fen + excluded.fen
           )
           select count(*) from moved"#,
    )
    .fetch_one(db.writer())
    .await?;
    Ok(u64::try_from(moved).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_MS;

    #[test]
    fn days_are_shanghai_calendar_days() {
        // 2026-11-23 00:00 in Shanghai is 2026-11-22 16:00 UTC.
        let midnight = 1_795_392_000_000 - 8 * 3_600_000;
        assert!(starts_a_day(midnight));
        assert_eq!(day_number(midnight), day_number(midnight + DAY_MS - 1));
        assert_eq!(day_number(midnight) - 1, day_number(midnight - 1));
        assert_eq!(day_number_start(day_number(midnight + 5)), midnight);
        assert!(!starts_a_day(midnight + 1));
    }
}
