//! What staff do to one order from its page (issue #6 "Order detail": support and up): ask
//! WeChat Pay about it now, or close it while unpaid. Both go through [`crate::sync`], the
//! same code the sync job and the mini program use, so a staff click races safely with a
//! notification or the job; both are audited with the order number as target (so the
//! order's timeline shows them) and the outcome in the detail. Role checks are the caller's.

use wxpay::Api;

use crate::audit::{self, action, Actor};
use crate::error::ConflictReason;
use crate::events::EventBus;
use crate::orders::{self, Order};
use crate::{sync, CoreError, Db};

/// Asks WeChat Pay about the order now (orderquery, see [`sync::refresh_order`]) and returns
/// it as stored afterwards. Only an unpaid order is asked about; any other is returned as
/// stored (nothing WeChat could say would change it). Audited as `order.sync`, failures
/// included; an unknown order is [`CoreError::NotFound`].
#[tracing::instrument(skip_all, fields(order.out_trade_no = %out_trade_no))]
pub async fn sync_now(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    actor: &Actor,
    out_trade_no: &str,
) -> Result<Order, CoreError> {
    let order = find(db, out_trade_no).await?;
    let result = sync::refresh_order(db, api, events, &order).await;
    let detail = match (&result, order.status) {
        (Ok(after), before) if before.awaits_payment() => {
            format!("orderquery: {} → {}", order.status, after.status)
        }
        (Ok(after), _) => format!("no orderquery: the order is {}", after.status),
        (Err(e), _) => format!("orderquery failed: {}", describe(e)),
    };
    record(db, actor, action::ORDER_SYNC, out_trade_no, &detail).await?;
    result
}

/// Closes the unpaid order (closeorder, see [`sync::close_order`]) and returns it as stored
/// afterwards (`CLOSED`, or `PAID` if WeChat Pay says it was paid after all). An order that
/// no longer awaits its payment (`NOTPAY`, `PAYERROR`) is [`CoreError::Conflict`] and nothing is called or audited; an attempt
/// that reached WeChat Pay is audited as `order.close`, failures included.
#[tracing::instrument(skip_all, fields(order.out_trade_no = %out_trade_no))]
pub async fn close_now(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    actor: &Actor,
    out_trade_no: &str,
) -> Result<Order, CoreError> {
    let order = find(db, out_trade_no).await?;
    if !order.status.awaits_payment() {
        return Err(CoreError::Conflict(ConflictReason::NotClosable {
            status: order.status.to_string(),
        }));
    }
    let result = sync::close_order(db, api, events, &order).await;
    if let Err(CoreError::Conflict(ConflictReason::TooEarlyToClose { .. })) = &result {
        // Too young for WeChat Pay's closeorder: nothing was called, so nothing is audited.
        return result;
    }
    let detail = match &result {
        Ok(after) => format!("closeorder: {} → {}", order.status, after.status),
        Err(e) => format!("closeorder failed: {}", describe(e)),
    };
    record(db, actor, action::ORDER_CLOSE, out_trade_no, &detail).await?;
    result
}

/// The error for the audit log: WeChat Pay's error code and message when there is one
/// (nothing secret: the client never puts the key or certificates in its errors).
fn describe(e: &CoreError) -> String {
    match e {
        CoreError::Internal(e) => format!("{e:#}"),
        other => other.to_string(),
    }
}

async fn find(db: &Db, out_trade_no: &str) -> Result<Order, CoreError> {
    orders::find_by_out_trade_no(db, out_trade_no.trim())
        .await?
        .ok_or(CoreError::NotFound)
}

async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    out_trade_no: &str,
    detail: &str,
) -> Result<(), CoreError> {
    audit::record(
        db.writer(),
        audit::Entry {
            actor,
            action,
            target: Some(out_trade_no.trim()),
            detail: Some(detail),
        },
    )
    .await
}
