//! Asking for a refund, and a manager's decision on it (docs/design.md "Refund").

use paydesk_types::Fen;
use rand::Rng as _;
use sqlx::{Any, FromRow, Transaction};

use time::OffsetDateTime;

use super::{load, load_view, publish, Refund, RefundStatus, RefundView, Requester, NOT_COUNTING};
use crate::audit::{self, action, Actor};
use crate::error::{unique_violation, ConflictReason, ForbiddenReason, UniqueKey};
use crate::events::EventBus;
use crate::orders::OrderStatus;
use crate::{now_ms, Backend, CoreError, Db};

/// The statuses of a refund still open (not [final](RefundStatus::is_final)), as an SQL
/// list: a customer may have one such request per order, checked in the request's
/// transaction. The partial unique index `refunds_one_open_customer_request` (migration
/// 20261207000040) holds only `PENDING_APPROVAL`, the status every request is inserted
/// with: a refund past approval may still move between open and failed states, and a
/// constraint must never refuse WeChat Pay's word for it.
fn open_sql() -> String {
    RefundStatus::ALL
        .into_iter()
        .filter(|s| !s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(FromRow)]
struct OrderForRefund {
    id: i64,
    openid: String,
    total_fee: i64,
    status: String,
}

/// Requests a refund of a paid order (docs/design.md "Refund"): the order must be `PAID` or
/// `PARTIALLY_REFUNDED` ([`CoreError::Conflict`] otherwise); a customer may only ask about
/// their own order ([`CoreError::NotFound`] otherwise). The amount defaults to what is still
/// refundable and must be 1 fen up to that ([`CoreError::Invalid`] `amount` naming it in
/// yuan). All of it is one transaction — the order row is locked on PostgreSQL and SQLite
/// has a single writer — so concurrent requests never together exceed the total. The refund
/// is stored `PENDING_APPROVAL` with a new `out_refund_no`, audited, and published.
///
/// A customer may have one open request per order (not yet final: waiting for a manager
/// or on its way): another is [`CoreError::Conflict`], checked in the transaction and held
/// by a partial unique index on both engines. Support can still file for the customer.
pub async fn request(
    db: &Db,
    events: &EventBus,
    out_trade_no: &str,
    amount_fen: Option<i64>,
    reason: &str,
    requester: Requester,
) -> Result<Refund, CoreError> {
    file(db, events, out_trade_no, amount_fen, reason, requester)
        .await
        .map(|view| view.refund)
}

/// [`request`], answering the new refund as the dashboard shows it — read by its id inside
/// the transaction that inserted it, so nothing after the commit can fail and the answer
/// is this refund however many others are pending.
#[tracing::instrument(skip_all, fields(order.out_trade_no = %out_trade_no))]
pub async fn file(
    db: &Db,
    events: &EventBus,
    out_trade_no: &str,
    amount_fen: Option<i64>,
    reason: &str,
    requester: Requester,
) -> Result<RefundView, CoreError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CoreError::invalid("reason", "say why the refund is needed"));
    }
    if reason.chars().count() > 200 {
        return Err(CoreError::invalid(
            "reason",
            "the reason may have at most 200 characters",
        ));
    }
    let lock = match db.backend() {
        Backend::Postgres => "for update",
        Backend::Sqlite => "",
    };
    let mut tx = db.begin_write().await?;
    let order = sqlx::query_as::<_, OrderForRefund>(&format!(
        "select id, openid, total_fee, status from orders where out_trade_no = $1 {lock}"
    ))
    .bind(out_trade_no)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CoreError::NotFound)?;
    if let Requester::Customer { openid } = &requester {
        if *openid != order.openid {
            return Err(CoreError::NotFound);
        }
    }
    let status: OrderStatus = order.status.parse()?;
    match status {
        OrderStatus::Paid | OrderStatus::PartiallyRefunded => {}
        OrderStatus::Refunded => return Err(CoreError::Conflict(ConflictReason::RefundedInFull)),
        other => {
            return Err(CoreError::Conflict(ConflictReason::NotRefundable {
                status: other.to_string(),
            }))
        }
    }
    let committed = committed_fen(&mut tx, order.id).await?;
    let left = order.total_fee - committed;
    if left <= 0 {
        return Err(CoreError::invalid(
            "amount",
            "nothing is left to refund on this order (other refunds take the whole amount)",
        ));
    }
    let amount = amount_fen.unwrap_or(left);
    if !(1..=left).contains(&amount) {
        return Err(CoreError::invalid(
            "amount",
            format!(
                "the amount must be between ¥0.01 and {} (what is still refundable)",
                Fen(left)
            ),
        ));
    }
    if matches!(requester, Requester::Customer { .. })
        && has_open_customer_request(&mut tx, order.id).await?
    {
        return Err(open_request_conflict());
    }
    let (kind, name, user_id, actor) = match &requester {
        Requester::Customer { openid } => (
            "customer",
            openid.clone(),
            None,
            Actor {
                user_id: None,
                name: format!("customer {openid}"),
                ip: None,
            },
        ),
        Requester::Staff { actor } => ("staff", actor.name.clone(), actor.user_id, actor.clone()),
    };
    let now = now_ms();
    let out_refund_no = new_out_refund_no();
    let id: i64 = sqlx::query_scalar(
        r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
               requester, requester_user_id, status, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, 'PENDING_APPROVAL', $8, $8)
           returning id"#,
    )
    .bind(&out_refund_no)
    .bind(order.id)
    .bind(amount)
    .bind(reason)
    .bind(kind)
    .bind(&name)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match unique_violation(&e) {
        // The check above already holds this on both engines (the order row is locked,
        // SQLite has one writer); the index makes it a rule of the database.
        Some(UniqueKey::OneOpenCustomerRequest) => open_request_conflict(),
        _ => e.into(),
    })?;
    let detail = format!("{} of order {out_trade_no}: {reason}", Fen(amount));
    audit::record(
        &mut *tx,
        audit::Entry {
            actor: &actor,
            action: action::REFUND_REQUEST,
            target: Some(&out_refund_no),
            detail: Some(&detail),
        },
    )
    .await?;
    let view = load_view(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(refund.out_refund_no = %view.refund.out_refund_no, amount_fen = amount, "refund requested");
    publish(events, &view.refund);
    Ok(view)
}

/// Whether the customer already has an open request for this order.
async fn has_open_customer_request(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
) -> Result<bool, CoreError> {
    let open: Option<i64> = sqlx::query_scalar(&format!(
        r#"select id from refunds
           where order_id = $1 and requester_kind = 'customer' and status in ({})
           limit 1"#,
        open_sql()
    ))
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(open.is_some())
}

fn open_request_conflict() -> CoreError {
    CoreError::Conflict(ConflictReason::RefundRequestOpen)
}

/// The fen of an order's refunds that count against it.
async fn committed_fen(tx: &mut Transaction<'_, Any>, order_id: i64) -> Result<i64, CoreError> {
    // PostgreSQL's sum(bigint) is numeric: cast it back so both engines give an i64.
    Ok(sqlx::query_scalar(&format!(
        r#"select cast(coalesce(sum(amount_fen), 0) as bigint) from refunds
           where order_id = $1 and status not in ({NOT_COUNTING})"#
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// A new refund number: `RF`, Beijing time to the second, 10 random characters (26
/// characters; WeChat Pay allows 64 of `[0-9A-Za-z_-|*@]`, §8.5).
fn new_out_refund_no() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!(
        "RF{}{suffix}",
        wxpay::wxtime::format_compact(OffsetDateTime::now_utc())
    )
}

/// Approves a pending refund (the refund job then executes it). See [`reject`] for the rules.
#[tracing::instrument(skip_all, fields(refund.id = refund_id))]
pub async fn approve(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
) -> Result<Refund, CoreError> {
    decide(db, events, actor, refund_id, reason, RefundStatus::Approved).await
}

/// Rejects a pending refund; a reason is required ([`CoreError::Invalid`] `reason`). Only a
/// `PENDING_APPROVAL` refund can be decided, and by someone other than who filed it
/// ([`CoreError::Forbidden`]). The decision is one conditional update, so of two managers
/// acting at once exactly one decides; the other gets `Forbidden("already decided …")`.
/// Audited; [`Event::RefundChanged`] is published after the commit. Role checks are the
/// caller's.
#[tracing::instrument(skip_all, fields(refund.id = refund_id))]
pub async fn reject(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
) -> Result<Refund, CoreError> {
    decide(db, events, actor, refund_id, reason, RefundStatus::Rejected).await
}

async fn decide(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
    to: RefundStatus,
) -> Result<Refund, CoreError> {
    let reason = reason.trim();
    if to == RefundStatus::Rejected && reason.is_empty() {
        return Err(CoreError::invalid(
            "reason",
            "say why the refund is rejected",
        ));
    }
    if reason.chars().count() > 200 {
        return Err(CoreError::invalid(
            "reason",
            "the reason may have at most 200 characters",
        ));
    }
    let mut tx = db.begin_write().await?;
    let refund = load(&mut tx, refund_id).await?;
    if refund.status != RefundStatus::PendingApproval {
        return Err(already_decided(&refund));
    }
    let own = refund.requester_kind == "staff"
        && match (refund.requester_user_id, actor.user_id) {
            (Some(a), Some(b)) => a == b,
            _ => refund.requester == actor.name,
        };
    if own {
        return Err(CoreError::Forbidden(ForbiddenReason::OwnRefundRequest));
    }
    if to == RefundStatus::Approved {
        refuse_own_payment(&mut tx, actor, refund.order_id).await?;
    }
    let now = now_ms();
    // Approved refunds are due for the refund job at once.
    let next_attempt_at = (to == RefundStatus::Approved).then_some(now);
    let updated = sqlx::query(
        r#"update refunds
           set status = $1, decided_by = $2, decided_by_user_id = $3, decided_at = $4,
               decision_reason = $5, next_attempt_at = $6, updated_at = $4
           where id = $7 and status = 'PENDING_APPROVAL'"#,
    )
    .bind(to.as_str())
    .bind(&actor.name)
    .bind(actor.user_id)
    .bind(now)
    .bind(reason)
    .bind(next_attempt_at)
    .bind(refund_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Another decider committed between our read and our update (PostgreSQL).
        let current = load(&mut tx, refund_id).await?;
        return Err(already_decided(&current));
    }
    let (act, verb) = match to {
        RefundStatus::Approved => (action::REFUND_APPROVE, "approved"),
        _ => (action::REFUND_REJECT, "rejected"),
    };
    let detail = format!(
        "{verb} {} of order {}: {reason}",
        Fen(refund.amount_fen),
        refund.out_trade_no
    );
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: act,
            target: Some(&refund.out_refund_no),
            detail: Some(&detail),
        },
    )
    .await?;
    let refund = load(&mut tx, refund_id).await?;
    tx.commit().await?;
    tracing::info!(refund.out_refund_no = %refund.out_refund_no, status = %to, "refund decided");
    publish(events, &refund);
    Ok(refund)
}

/// Nobody approves the refund of an order paid by one of their own openids (recorded on My
/// account, `own_openids`): [`CoreError::OwnPayment`]. Read inside the decision's
/// transaction.
async fn refuse_own_payment(
    tx: &mut Transaction<'_, Any>,
    actor: &Actor,
    order_id: i64,
) -> Result<(), CoreError> {
    let Some(user_id) = actor.user_id else {
        return Ok(());
    };
    let own: Option<String> = sqlx::query_scalar(
        r#"select u.openid from user_openids u join orders o on o.openid = u.openid
           where o.id = $1 and u.user_id = $2"#,
    )
    .bind(order_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    match own {
        Some(openid) => Err(CoreError::OwnPayment { openid }),
        None => Ok(()),
    }
}

fn already_decided(refund: &Refund) -> CoreError {
    CoreError::Conflict(ConflictReason::AlreadyDecided {
        status: refund.status.to_string(),
        by: refund.decided_by.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_open_request_index_holds_only_the_status_requests_are_filed_in() {
        for dir in ["sqlite", "postgres"] {
            let migration = std::fs::read_to_string(format!(
                "{}/../migrations/{dir}/20261207000040_mp_throttles.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let index = &migration[migration.find("create unique index").unwrap()..];
            assert!(index.contains("status = 'PENDING_APPROVAL';"), "{dir}");
        }
        assert!(open_sql().contains("'PENDING_APPROVAL'"));
        assert!(!RefundStatus::PendingApproval.is_final());
    }

    #[test]
    fn refund_numbers_fit_wechat_limits() {
        let no = new_out_refund_no();
        assert_eq!(no.len(), 26);
        assert!(no.starts_with("RF") && no.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(no, new_out_refund_no());
    }
}
