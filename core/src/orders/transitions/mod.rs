//! The only writers of `orders.status`: every status change of an order is one of the
//! functions here (and in [`batched`] and [`raw_sqlite`], the group commit's forms of
//! `NOTPAY → PAID`). Each is one conditional update (`… where status = <from>`), so of two
//! concurrent changes only one takes, whichever instance runs them, and each first asks
//! [`OrderStatus::transition_to`] whether the state machine allows it.
//!
//! Who calls what:
//! - `NOTPAY | PAYERROR → PAID`: [`pay`] (a payment notification applied alone, and the sync
//!   job's orderquery), [`batched::pay`] (the group commit on PostgreSQL, or on SQLite
//!   without a connection of its own), [`raw_sqlite::Pay`] (the group commit on SQLite).
//! - `NOTPAY → PAYERROR`: [`payment_failed`] (a verified `result_code=FAIL` notification,
//!   orderquery's `PAYERROR`). The order keeps its place in the sync job: a failed attempt
//!   does not end it (docs/wechatpay-v2.md §8.8), the shopper may still pay.
//! - `NOTPAY | PAYERROR → CLOSED`: [`close`] (closeorder, orderquery, expiry).
//! - `PAID | PARTIALLY_REFUNDED → PARTIALLY_REFUNDED | REFUNDED`: [`set_status`] (a refund
//!   succeeded), and [`transition`] for any allowed move.
//!
//! Each takes an executor (a pool, or the caller's transaction), so the change commits
//! together with whatever else the caller writes.

use sqlx::{Any, Executor};

use super::{Order, OrderStatus, ORDER_COLUMNS};
use crate::error::ConflictReason;
use crate::{now_ms, CoreError, Db};

pub(crate) mod batched;
pub(crate) mod raw_sqlite;

/// The statuses an order still waits for its payment in
/// ([`OrderStatus::awaits_payment`]), as the inside of a SQL `in (…)`: every statement that
/// pays, closes or syncs an unpaid order uses it. A macro so that it can be `concat!`ed into
/// the prepared statements' constant text.
macro_rules! awaiting_payment {
    () => {
        "'NOTPAY', 'PAYERROR'"
    };
}
pub(crate) use awaiting_payment;

/// What a payment sets besides the status.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Payment<'a> {
    /// WeChat Pay's `transaction_id`.
    pub(crate) transaction_id: &'a str,
    /// The payer's bank.
    pub(crate) bank_type: Option<&'a str>,
    /// When it was paid (UTC ms).
    pub(crate) paid_at: i64,
}

/// The one guard every writer consults: the state machine's answer, as an internal error
/// (a caller asking for a move the machine forbids is a bug, not a conflict).
fn allowed(from: OrderStatus, to: OrderStatus) -> Result<(), CoreError> {
    from.transition_to(to)
        .map(drop)
        .map_err(|e| CoreError::Internal(e.into()))
}

/// Whether a payment may mark an order `PAID` from every status that awaits one.
fn payable() -> Result<(), CoreError> {
    allowed(OrderStatus::NotPay, OrderStatus::Paid)?;
    allowed(OrderStatus::PayError, OrderStatus::Paid)
}

/// `NOTPAY | PAYERROR → PAID` for one order, with its payment. True when this call moved it
/// (false: it was no longer waiting for its payment).
pub(crate) async fn pay<'e, E>(
    executor: E,
    id: i64,
    payment: &Payment<'_>,
    now: i64,
) -> Result<bool, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    payable()?;
    let updated = sqlx::query(concat!(
        "update orders set status = 'PAID', transaction_id = $1, bank_type = $2, ",
        "paid_at = $3, next_sync_at = null, updated_at = $4 ",
        "where id = $5 and status in (",
        awaiting_payment!(),
        ")"
    ))
    .bind(payment.transaction_id)
    .bind(payment.bank_type)
    .bind(payment.paid_at)
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// `NOTPAY → PAYERROR`: a payment attempt failed. The order stays due for the sync job
/// (`next_sync_at` is kept), which asks about it until it is paid or expires. True when
/// this call moved it.
pub(crate) async fn payment_failed<'e, E>(executor: E, id: i64, now: i64) -> Result<bool, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    allowed(OrderStatus::NotPay, OrderStatus::PayError)?;
    let updated = sqlx::query(
        r#"update orders set status = 'PAYERROR', updated_at = $1
           where id = $2 and status = 'NOTPAY'"#,
    )
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// `NOTPAY | PAYERROR → CLOSED` (the order ended unpaid; the sync job stops looking at it).
/// True when this call moved it.
pub(crate) async fn close<'e, E>(executor: E, id: i64, now: i64) -> Result<bool, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    allowed(OrderStatus::NotPay, OrderStatus::Closed)?;
    allowed(OrderStatus::PayError, OrderStatus::Closed)?;
    let updated = sqlx::query(concat!(
        "update orders set status = 'CLOSED', next_sync_at = null, updated_at = $1 ",
        "where id = $2 and status in (",
        awaiting_payment!(),
        ")"
    ))
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// `from → next` for one order, if the state machine allows it; true when this call moved
/// it (false: it was no longer `from`). A move the machine forbids is
/// [`crate::orders::IllegalTransition`], left to the caller to judge.
pub(crate) async fn set_status<'e, E>(
    executor: E,
    id: i64,
    from: OrderStatus,
    next: OrderStatus,
    now: i64,
) -> Result<Result<bool, super::IllegalTransition>, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    if let Err(e) = from.transition_to(next) {
        return Ok(Err(e));
    }
    let updated =
        sqlx::query("update orders set status = $1, updated_at = $2 where id = $3 and status = $4")
            .bind(next.as_str())
            .bind(now)
            .bind(id)
            .bind(from.as_str())
            .execute(executor)
            .await?;
    Ok(Ok(updated.rows_affected() == 1))
}

/// Moves an order to `next` if the state machine allows it from its current status. The
/// update is conditional on the status read (`where status = $current`), so of two
/// concurrent changes only one wins; the loser gets [`CoreError::Conflict`].
#[tracing::instrument(skip_all, fields(order.id = id, order.next = %next))]
pub async fn transition(db: &Db, id: i64, next: OrderStatus) -> Result<Order, CoreError> {
    let mut tx = db.begin_write().await?;
    let current: String = sqlx::query_scalar("select status from orders where id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CoreError::NotFound)?;
    let current: OrderStatus = current.parse()?;
    let moved = set_status(&mut *tx, id, current, next, now_ms())
        .await?
        .map_err(|e| {
            CoreError::Conflict(ConflictReason::IllegalTransition {
                from: e.from.to_string(),
                to: e.to.to_string(),
            })
        })?;
    if !moved {
        return Err(CoreError::Conflict(ConflictReason::StatusChanged {
            status: current.to_string(),
        }));
    }
    let updated =
        sqlx::query_as::<_, Order>(&format!("select {ORDER_COLUMNS} from orders where id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_list_names_exactly_the_statuses_awaiting_payment() {
        let listed: Vec<String> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.awaits_payment())
            .map(|s| format!("'{s}'"))
            .collect();
        assert_eq!(awaiting_payment!(), listed.join(", "));
    }
}
