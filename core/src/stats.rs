//! The home page's numbers: today's takings, the payment success rate, what is waiting for
//! someone, a 14-day revenue chart and the latest payments — computed in three statements,
//! each an index range (migration `home_stats`: `orders (paid_at, total_fee)`; the status
//! and verdict indexes for the rest), so the page stays fast at a million orders.
//!
//! "Today" and the chart's days are Asia/Shanghai calendar days (UTC+8, no daylight saving
//! since 1991), whatever the server's time zone.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::notify::Verdict;
use crate::orders::OrderStatus;
use crate::search::shanghai_day_start;
use crate::{CoreError, Db};

const DAY_MS: i64 = 24 * 3_600_000;
/// Days in the revenue chart, today included.
pub const CHART_DAYS: usize = 14;
/// Latest payments shown.
pub const LATEST_PAID: i64 = 10;

/// Everything the home page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    /// Start of today in Asia/Shanghai (UTC ms).
    pub today_start: i64,
    /// Orders paid today (by `paid_at`), refunded later or not.
    pub today_paid_count: i64,
    /// Their amount in fen, before refunds.
    pub today_paid_fen: i64,
    /// Orders created today that ended paid (`PAID`, or refunded since).
    pub today_created_paid: i64,
    /// Orders created today that ended unpaid (`CLOSED`, `PAYERROR`).
    pub today_created_unpaid: i64,
    /// Refund requests waiting for a manager (`PENDING_APPROVAL`).
    pub refunds_pending: i64,
    /// Callbacks refused (every verdict WeChat is answered `FAIL` for) in the last 24 hours.
    pub failures_24h: i64,
    /// The last [`CHART_DAYS`] Shanghai days, oldest first, days without payments included.
    pub days: Vec<DayRevenue>,
    /// The most recent payments, newest first.
    pub latest_paid: Vec<PaidOrder>,
}

impl Dashboard {
    /// Paid ÷ (paid + closed + payment failed) among today's orders that have ended, in
    /// per mille; `None` when none has ended yet. Orders still awaiting payment are not
    /// counted either way.
    pub fn success_permille(&self) -> Option<i64> {
        let ended = self.today_created_paid + self.today_created_unpaid;
        (ended > 0).then(|| (self.today_created_paid * 1000 + ended / 2) / ended)
    }
}

/// One day of the revenue chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRevenue {
    /// The day's start in Asia/Shanghai (UTC ms).
    pub day_start: i64,
    /// Orders paid that day.
    pub count: i64,
    /// Their amount in fen.
    pub amount_fen: i64,
}

/// One recent payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromRow)]
pub struct PaidOrder {
    /// The merchant order number.
    pub out_trade_no: String,
    /// The amount in fen.
    pub total_fee: i64,
    /// When it was paid (UTC ms).
    pub paid_at: i64,
    /// WeChat's transaction id.
    pub transaction_id: Option<String>,
    /// The order's status now (it may have been refunded since).
    pub status: String,
    /// What was bought.
    pub description: String,
}

#[derive(FromRow)]
struct Counts {
    today_paid_count: i64,
    today_paid_fen: i64,
    today_created_paid: i64,
    today_created_unpaid: i64,
    refunds_pending: i64,
    failures_24h: i64,
}

/// `'A', 'B'` for an `in (…)` list of known constant names (never user input).
fn sql_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The home page's numbers as of `now` (UTC ms).
///
/// Three statements on the reader pool: one row of counts (each an index range: paid_at
/// for today's takings, status + created_at for the success rate, refund status,
/// verdict + received_at), the chart's fourteen days (one index-only paid_at range each),
/// and the latest payments (paid_at backwards). 20 ms on SQLite at a million orders, nearly
/// all of it the fortnight's ~140,000 index entries (docs/benchmarks.md).
pub async fn dashboard(db: &Db, now: i64) -> Result<Dashboard, CoreError> {
    let today_start = shanghai_day_start(now);
    let tomorrow = today_start + DAY_MS;
    let chart_start = today_start - (CHART_DAYS as i64 - 1) * DAY_MS;
    let paid = sql_list(
        OrderStatus::ALL
            .into_iter()
            .filter(|s| s.was_paid())
            .map(OrderStatus::as_str),
    );
    let unpaid = sql_list([OrderStatus::Closed.as_str(), OrderStatus::PayError.as_str()]);
    let failing = sql_list(
        Verdict::ALL
            .into_iter()
            .filter(|v| !v.acknowledged())
            .map(Verdict::as_str),
    );
    // `coalesce`/`cast`: a sum over no rows is NULL, and PostgreSQL's sum of bigint is a
    // numeric, which `Any` cannot read as i64.
    let counts_sql = format!(
        r#"select
             (select count(*) from orders where paid_at >= $1 and paid_at < $2) as today_paid_count,
             (select cast(coalesce(sum(total_fee), 0) as bigint) from orders
                where paid_at >= $1 and paid_at < $2) as today_paid_fen,
             (select count(*) from orders where status in ({paid})
                and created_at >= $1 and created_at < $2) as today_created_paid,
             (select count(*) from orders where status in ({unpaid})
                and created_at >= $1 and created_at < $2) as today_created_unpaid,
             (select count(*) from refunds where status = 'PENDING_APPROVAL') as refunds_pending,
             (select count(*) from notifications where verdict in ({failing})
                and received_at >= $3) as failures_24h"#
    );
    let counts: Counts = sqlx::query_as(&counts_sql)
        .bind(today_start)
        .bind(tomorrow)
        .bind(now - DAY_MS)
        .fetch_one(db.reader())
        .await?;

    // One index-only range per day, as one statement: `$1`…`$15` are the 15 day boundaries.
    // (A single `group by` over the fortnight's range reads the same index entries but
    // sorts them in a temporary B-tree: 53 ms against 20 ms at a million orders on SQLite.)
    let chart_sql = (0..CHART_DAYS)
        .map(|i| {
            format!(
                "select {i} as day, count(*), cast(coalesce(sum(total_fee), 0) as bigint) \
                 from orders where paid_at >= ${} and paid_at < ${}",
                i + 1,
                i + 2
            )
        })
        .collect::<Vec<_>>()
        .join(" union all ");
    let mut chart = sqlx::query_as::<_, (i64, i64, i64)>(&chart_sql);
    for i in 0..=CHART_DAYS as i64 {
        chart = chart.bind(chart_start + i * DAY_MS);
    }
    let by_day = chart.fetch_all(db.reader()).await?;
    let days = (0..CHART_DAYS as i64)
        .map(|i| {
            let (count, amount_fen) = by_day
                .iter()
                .find(|(d, _, _)| *d == i)
                .map(|(_, c, s)| (*c, *s))
                .unwrap_or((0, 0));
            DayRevenue {
                day_start: chart_start + i * DAY_MS,
                count,
                amount_fen,
            }
        })
        .collect();

    let latest_paid = sqlx::query_as::<_, PaidOrder>(
        r#"select out_trade_no, total_fee, paid_at, transaction_id, status, description
           from orders
           where paid_at is not null and paid_at < $1
           order by paid_at desc
           limit $2"#,
    )
    .bind(tomorrow)
    .bind(LATEST_PAID)
    .fetch_all(db.reader())
    .await?;

    Ok(Dashboard {
        today_start,
        today_paid_count: counts.today_paid_count,
        today_paid_fen: counts.today_paid_fen,
        today_created_paid: counts.today_created_paid,
        today_created_unpaid: counts.today_created_unpaid,
        refunds_pending: counts.refunds_pending,
        failures_24h: counts.failures_24h,
        days,
        latest_paid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(paid: i64, unpaid: i64) -> Dashboard {
        Dashboard {
            today_start: 0,
            today_paid_count: 0,
            today_paid_fen: 0,
            today_created_paid: paid,
            today_created_unpaid: unpaid,
            refunds_pending: 0,
            failures_24h: 0,
            days: vec![],
            latest_paid: vec![],
        }
    }

    #[test]
    fn success_rate_is_paid_over_ended_and_none_without_ended_orders() {
        assert_eq!(with(0, 0).success_permille(), None);
        assert_eq!(with(3, 1).success_permille(), Some(750));
        assert_eq!(with(2, 1).success_permille(), Some(667));
        assert_eq!(with(0, 5).success_permille(), Some(0));
    }
}
