//! `NOTPAY | PAYERROR → PAID` for many orders in one statement: the group commit's form of
//! [`super::pay`] (notify/group_commit.rs), one conditional update with a `case` per
//! column, so a batch of notifications costs one round trip instead of one per order.
//!
//! The orders are found by their ids; the status test only filters them. Written as
//! `status in (…)`, PostgreSQL's planner scanned `orders_status_created_at_idx` for
//! `NOTPAY` instead: its statistics say few orders are unpaid, but that index range also
//! holds an entry for every order paid since the last vacuum (dead until then), so each
//! batch read 200+ index pages and the update took 0.5–2.4 ms for five orders, most of
//! the committer's time at 1,000 notifications/s (docs/benchmarks.md, issue 18).
//! `(status || '')` is no index's key, so the only way in is the primary key.

use std::collections::HashSet;
use std::fmt::Write as _;

use sqlx::{Any, Executor};

use super::{awaiting_payment, payable, Payment};
use crate::CoreError;

/// `NOTPAY | PAYERROR → PAID` for each `(order id, payment)` (ids distinct); returns the
/// ids this call moved (the others were no longer waiting for their payment).
pub(crate) async fn pay<'e, E>(
    executor: E,
    orders: &[(i64, Payment<'_>)],
    now: i64,
) -> Result<HashSet<i64>, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    payable()?;
    let mut sql = String::with_capacity(200 + orders.len() * 90);
    let mut cases = [String::new(), String::new(), String::new()];
    let mut ids = String::new();
    for k in 0..orders.len() {
        let p = 2 + 4 * k;
        for (c, col) in cases.iter_mut().zip(1..) {
            let _ = write!(c, " when ${p} then ${}", p + col);
        }
        let _ = write!(ids, "{}${p}", if k == 0 { "" } else { ", " });
    }
    let _ = write!(
        sql,
        "update orders set status = 'PAID', transaction_id = case id{} end, \
         bank_type = case id{} end, paid_at = case id{} end, next_sync_at = null, \
         updated_at = $1 where id in ({ids}) and (status || '') in ({}) returning id",
        cases[0],
        cases[1],
        cases[2],
        awaiting_payment!()
    );
    let mut update = sqlx::query_scalar::<_, i64>(&sql).bind(now);
    for (id, payment) in orders {
        update = update
            .bind(*id)
            .bind(payment.transaction_id)
            .bind(payment.bank_type)
            .bind(payment.paid_at);
    }
    Ok(update.fetch_all(executor).await?.into_iter().collect())
}
