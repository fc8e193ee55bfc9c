//! Applying what WeChat Pay says about a refund — the refund call's answer, refundquery,
//! the refund notification — through one conditional transition, and settling the order.

use sqlx::{Any, Transaction};

use super::job::RefundPolicy;
use super::{load, publish, Refund, RefundStatus, StatusSql};
use crate::events::EventBus;
use crate::orders::transitions;
use crate::orders::OrderStatus;
use crate::time::duration_ms;
use crate::{now_ms, Backend, CoreError, Db};

/// Our status for WeChat Pay's `refund_status` (§8.6); `None` for values we do not know
/// (treated as not final).
pub(crate) fn from_wechat(s: &wxpay::RefundStatus) -> Option<RefundStatus> {
    match s {
        wxpay::RefundStatus::Success => Some(RefundStatus::Success),
        wxpay::RefundStatus::RefundClose => Some(RefundStatus::RefundClose),
        wxpay::RefundStatus::Processing => Some(RefundStatus::Processing),
        wxpay::RefundStatus::Change => Some(RefundStatus::Change),
        _ => None,
    }
}

/// What WeChat Pay says about a refund (refund answer, refundquery, notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxResult {
    pub(crate) status: RefundStatus,
    pub(crate) refund_id: Option<String>,
    pub(crate) recv_accout: Option<String>,
    pub(crate) success_at: Option<i64>,
}

/// [`apply_result`] in its own transaction, publishing the change after the commit.
pub(super) async fn apply_and_publish(
    db: &Db,
    events: &EventBus,
    policy: &RefundPolicy,
    refund: &Refund,
    result: &WxResult,
) -> Result<Refund, CoreError> {
    let mut tx = db.begin_write().await?;
    let applied = apply_result(&mut tx, db.backend(), policy, refund.id, result).await?;
    tx.commit().await?;
    if applied.changed {
        publish(events, &applied.refund);
    }
    Ok(applied.refund)
}

/// The outcome of [`apply_result`].
pub(crate) struct Applied {
    /// Whether this call moved the refund.
    pub(crate) changed: bool,
    /// The refund as stored afterwards (inside the transaction).
    pub(crate) refund: Refund,
}

/// Moves a refund to WeChat Pay's state if the state machine allows it from its current
/// one (one conditional update, so concurrent results apply once), and on `SUCCESS` moves
/// the order to `PARTIALLY_REFUNDED` or `REFUNDED` from the sum of its successful refunds
/// (never backwards; the order row is locked on PostgreSQL so two refunds succeeding at
/// once both count).
pub(crate) async fn apply_result(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    policy: &RefundPolicy,
    refund_id: i64,
    result: &WxResult,
) -> Result<Applied, CoreError> {
    let now = now_ms();
    let next_attempt_at = match result.status {
        RefundStatus::Processing => Some(now.saturating_add(duration_ms(policy.query_delay))),
        RefundStatus::Change => Some(now.saturating_add(duration_ms(policy.query_max))),
        _ => None,
    };
    let success_at =
        (result.status == RefundStatus::Success).then(|| result.success_at.unwrap_or(now));
    let updated = sqlx::query(&format!(
        r#"update refunds
           set status = $1, refund_id = coalesce($2, refund_id),
               refund_recv_accout = coalesce($3, refund_recv_accout),
               succeeded_at = coalesce($4, succeeded_at), next_attempt_at = $5,
               last_error_code = null, last_error = null, updated_at = $6,
               accepted_at = coalesce(accepted_at, $8)
           where id = $7 and status in ({})"#,
        RefundStatus::sql_sources(result.status)
    ))
    .bind(result.status.as_str())
    .bind(result.refund_id.as_deref())
    .bind(result.recv_accout.as_deref())
    .bind(success_at)
    .bind(next_attempt_at)
    .bind(now)
    .bind(refund_id)
    // When WeChat Pay accepted it: the day its row is on the bill (reconciliation).
    .bind(result.refund_id.is_some().then_some(now))
    .execute(&mut **tx)
    .await?;
    let changed = updated.rows_affected() == 1;
    let refund = load(tx, refund_id).await?;
    if changed && result.status == RefundStatus::Success {
        settle_order(tx, backend, refund.order_id).await?;
    }
    Ok(Applied { changed, refund })
}

/// Sets the order's status from its successful refunds: all of it → `REFUNDED`, part →
/// `PARTIALLY_REFUNDED`; only forwards.
async fn settle_order(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    order_id: i64,
) -> Result<(), CoreError> {
    let lock = match backend {
        Backend::Postgres => "for update",
        Backend::Sqlite => "",
    };
    let (status, total_fee): (String, i64) = sqlx::query_as(&format!(
        "select status, total_fee from orders where id = $1 {lock}"
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    let refunded: i64 = sqlx::query_scalar(
        r#"select cast(coalesce(sum(amount_fen), 0) as bigint) from refunds
           where order_id = $1 and status = 'SUCCESS'"#,
    )
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    let current: OrderStatus = status.parse()?;
    let next = if refunded >= total_fee {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    match transitions::set_status(&mut **tx, order_id, current, next, now_ms()).await? {
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(order.id = order_id, error = %e, "a successful refund does not move the order");
        }
    }
    Ok(())
}
