//! The home page's numbers: today's takings, the payment success rate, what is waiting for
//! someone, a 14-day revenue chart and the latest payments — computed in three statements
//! that read the running totals of [`crate::orders::totals`] and a few index entries, so the
//! page costs the same at a million orders as at a hundred.
//!
//! "Today" and the chart's days are Asia/Shanghai calendar days (UTC+8, no daylight saving
//! since 1991), whatever the server's time zone.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use crate::notify::Verdict;
use crate::orders::totals as order_totals;
use crate::orders::OrderStatus;
use crate::time::shanghai_day_start;
use crate::{CoreError, Db};

use crate::time::DAY_MS;
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

pub use paydesk_types::PaidOrder;

/// A [`PaidOrder`] as stored.
#[derive(FromRow)]
struct PaidRow {
    out_trade_no: String,
    total_fee: i64,
    paid_at: i64,
    transaction_id: Option<String>,
    status: String,
    description: String,
}

impl PaidRow {
    fn parse(self) -> Result<PaidOrder, CoreError> {
        Ok(PaidOrder {
            out_trade_no: self.out_trade_no,
            total_fee: self.total_fee,
            paid_at: self.paid_at,
            transaction_id: self.transaction_id,
            status: self.status.parse()?,
            description: self.description,
        })
    }
}

#[derive(FromRow)]
struct Counts {
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
/// Three statements on the reader pool, none of which reads more than a few dozen rows
/// whatever the number of orders: one row of counts (the success rate's two counts from
/// the per-day totals of [`crate::orders::totals`], pending refunds on `refunds (status,
/// created_at)`, refused callbacks on `notifications (verdict, received_at)`), the
/// fortnight's takings from the paid-per-day totals (today's takings are its last day), and
/// the latest payments (the `paid_at` index backwards, ten entries).
pub async fn dashboard(db: &Db, now: i64) -> Result<Dashboard, CoreError> {
    let today_start = shanghai_day_start(now);
    let today = crate::time::day_number(today_start);
    let tomorrow = today_start + DAY_MS;
    let first_day = today - (CHART_DAYS as i64 - 1);
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
            .filter(|v| v.is_failure())
            .map(Verdict::as_str),
    );
    let backend = db.backend();
    let counts_sql = format!(
        r#"select
             ({}) as today_created_paid,
             ({}) as today_created_unpaid,
             (select count(*) from refunds where status = 'PENDING_APPROVAL') as refunds_pending,
             (select count(*) from notifications where verdict in ({failing})
                and received_at >= $2) as failures_24h"#,
        order_totals::created_on_day_sql(backend, "$1", &paid),
        order_totals::created_on_day_sql(backend, "$1", &unpaid),
    );
    let (counts, by_day) = tokio::try_join!(
        async {
            sqlx::query_as::<_, Counts>(&counts_sql)
                .bind(today)
                .bind(now - DAY_MS)
                .fetch_one(db.reader())
                .await
                .map_err(CoreError::from)
        },
        order_totals::paid_by_day(db, first_day, today),
    )?;
    let days: Vec<DayRevenue> = (first_day..=today)
        .map(|day| {
            let (count, amount_fen) = by_day
                .iter()
                .find(|(d, _, _)| *d == day)
                .map(|(_, c, s)| (*c, *s))
                .unwrap_or((0, 0));
            DayRevenue {
                day_start: crate::time::day_number_start(day),
                count,
                amount_fen,
            }
        })
        .collect();
    let (today_paid_count, today_paid_fen) = days
        .last()
        .map(|d| (d.count, d.amount_fen))
        .unwrap_or((0, 0));

    let latest_paid = sqlx::query_as::<_, PaidRow>(
        r#"select out_trade_no, total_fee, paid_at, transaction_id, status, description
           from orders
           where paid_at is not null and paid_at < $1
           order by paid_at desc
           limit $2"#,
    )
    .bind(tomorrow)
    .bind(LATEST_PAID)
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(PaidRow::parse)
    .collect::<Result<_, _>>()?;

    Ok(Dashboard {
        today_start,
        today_paid_count,
        today_paid_fen,
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
