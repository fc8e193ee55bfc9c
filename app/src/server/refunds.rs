//! The Refunds page: support files requests for customers, managers approve or reject them,
//! and anyone from support up follows their execution. Every rule that matters (the
//! refundable amount, nobody approving their own request, one decision only) is enforced in
//! `paydesk_core::refunds`, inside the database transaction; these functions check roles.

use leptos::prelude::*;

use crate::dto::{ChannelCheck, RefundRow};
use crate::error::AppError;

#[cfg(feature = "ssr")]
fn row(
    v: paydesk_core::refunds::RefundView,
    viewer: &paydesk_core::users::User,
    now: i64,
) -> RefundRow {
    use paydesk_core::refunds::RefundStatus;
    use paydesk_types::Role;

    let r = v.refund;
    let can_decide = r.status == RefundStatus::PendingApproval
        && viewer.role.includes(Role::Manager)
        && r.requester_user_id != Some(viewer.id);
    RefundRow {
        id: r.id,
        out_refund_no: r.out_refund_no,
        out_trade_no: r.out_trade_no,
        openid: v.openid,
        amount_fen: r.amount_fen,
        order_total_fee: v.order_total_fee,
        refundable_left: v.refundable_left,
        earlier_refunds: v.earlier_refunds,
        status: r.status,
        reason: r.reason,
        requester_kind: r.requester_kind,
        requester: r.requester,
        age_ms: (now - r.created_at).max(0),
        created_at: r.created_at,
        decided_by: r.decided_by,
        decision_reason: r.decision_reason,
        refund_id: r.refund_id,
        attempts: r.attempts,
        last_error_code: r.last_error_code,
        last_error: r.last_error,
        can_decide,
        paid_by_you: false,
    }
}

#[cfg(feature = "ssr")]
fn required_reason(reason: &str) -> Result<String, AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(AppError::invalid(
            "reason",
            "a reason of 1 to 200 characters is required",
        ));
    }
    Ok(reason.to_owned())
}

/// Refunds, pending ones first (support and up).
#[server(endpoint = "refunds/list")]
pub async fn list_refunds() -> Result<Vec<RefundRow>, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |viewer| async move {
        let db = &viewer.server.db;
        let views = paydesk_core::refunds::list_for_dashboard(db, 200).await?;
        let own: Vec<String> = paydesk_core::own_openids::list(db, viewer.user.id)
            .await?
            .into_iter()
            .map(|o| o.openid)
            .collect();
        let now = paydesk_core::now_ms();
        Ok(views
            .into_iter()
            .map(|v| {
                let mut r = row(v, &viewer.user, now);
                r.paid_by_you = own.contains(&r.openid);
                r
            })
            .collect())
    })
    .await
}

/// Files a refund request for a customer's paid order (support and up) and answers the
/// refund it created. `amount` is in yuan; empty means everything still refundable.
#[server(endpoint = "refunds/request")]
pub async fn request_refund(
    out_trade_no: String,
    amount: String,
    reason: String,
) -> Result<RefundRow, AppError> {
    super::ssr::as_role(paydesk_types::Role::Support, |staff| async move {
        use paydesk_core::refunds::{self, Requester};
        use paydesk_types::Fen;

        let reason = required_reason(&reason)?;
        let amount_fen = match amount.trim() {
            "" => None,
            text => Some(
                text.parse::<Fen>()
                    .map(|f| f.0)
                    .map_err(|e| AppError::invalid("amount", e.to_string()))?,
            ),
        };
        let actor = staff.actor().await;
        // The refund it created, read by its id inside the same transaction: nothing can
        // fail after the commit, however many refunds are pending.
        let view = refunds::file(
            &staff.server.db,
            &staff.server.events,
            out_trade_no.trim(),
            amount_fen,
            &reason,
            Requester::Staff { actor },
        )
        .await?;
        Ok(row(view, &staff.user, paydesk_core::now_ms()))
    })
    .await
}

/// Approves a pending refund (manager and up; never one's own request).
#[server(endpoint = "refunds/approve")]
pub async fn approve_refund(id: i64, reason: String) -> Result<String, AppError> {
    decide(id, reason, true).await
}

/// Rejects a pending refund with a reason (manager and up; never one's own request).
#[server(endpoint = "refunds/reject")]
pub async fn reject_refund(id: i64, reason: String) -> Result<String, AppError> {
    decide(id, reason, false).await
}

/// One decision on a pending refund; the core makes it exactly once.
#[cfg(feature = "ssr")]
async fn decide(id: i64, reason: String, approve: bool) -> Result<String, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |manager| async move {
        let reason = required_reason(&reason)?;
        let actor = manager.actor().await;
        let (db, events) = (&manager.server.db, &manager.server.events);
        let refund = if approve {
            paydesk_core::refunds::approve(db, events, &actor, id, &reason).await?
        } else {
            paydesk_core::refunds::reject(db, events, &actor, id, &reason).await?
        };
        Ok(refund.out_refund_no)
    })
    .await
}

/// Probes the refund endpoint over mutual TLS without moving money (manager and up): the
/// handshake with our certificate, and WeChat Pay's answer to an empty request.
#[server(endpoint = "refunds/check_channel")]
pub async fn check_refund_channel() -> Result<ChannelCheck, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |manager| async move {
        let client = manager.server.wxpay;
        let cert = client
            .config()
            .identity
            .as_ref()
            .and_then(|i| i.certificate_info().ok());
        let (subject, not_after) = match &cert {
            Some(c) => (
                Some(c.subject.clone()),
                Some(paydesk_types::unix_ms(c.not_after)),
            ),
            None => (None, None),
        };
        let started = std::time::Instant::now();
        let result = client.check_refund_channel().await;
        let latency_ms = paydesk_types::duration_ms(started.elapsed());
        let (ok, detail) = match result {
            Ok(status) => (
                true,
                format!(
                    "HTTP {} · return_code {} · {}",
                    status.http_status,
                    status.return_code.as_deref().unwrap_or("-"),
                    status.return_msg.as_deref().unwrap_or("")
                ),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "refund channel check failed");
                (false, e.to_string())
            }
        };
        Ok(ChannelCheck {
            ok,
            detail,
            latency_ms,
            subject,
            not_after,
        })
    })
    .await
}
