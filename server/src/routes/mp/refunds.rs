//! `POST /api/mp/orders/{out_trade_no}/refund-requests`: the shopper asks for a refund of
//! their own paid order (issue "refunds end to end"). It waits for a manager's approval on
//! the dashboard; the answer is the stored request.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use paydesk_core::error::ConflictReason;
use paydesk_core::orders::OutTradeNo;
use paydesk_core::refunds::{self, Refund, Requester};
use paydesk_core::CoreError;
use serde::{Deserialize, Serialize};

use super::error::MpError;
use super::{MpJson, Shopper};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefundRequestIn {
    /// Fen; what is still refundable when left out.
    amount_fen: Option<i64>,
    reason: String,
}

/// What the mini program gets back for a refund request.
#[derive(Serialize)]
pub(super) struct RefundOut {
    out_refund_no: String,
    out_trade_no: String,
    amount_fen: i64,
    reason: String,
    status: &'static str,
    created_at: i64,
}

impl From<Refund> for RefundOut {
    fn from(r: Refund) -> Self {
        RefundOut {
            out_refund_no: r.out_refund_no,
            out_trade_no: r.out_trade_no,
            amount_fen: r.amount_fen,
            reason: r.reason,
            status: r.status.as_str(),
            created_at: r.created_at,
        }
    }
}

/// `POST /api/mp/orders/{out_trade_no}/refund-requests {amount_fen?, reason}`: 201 with the
/// request (`PENDING_APPROVAL`); 400 for an amount above what is refundable (the message
/// names it) or a missing reason; 404 for an order that is not the shopper's; 409 for an
/// order that cannot be refunded (unpaid, refunded in full) or that already has an open
/// request from the shopper (`REFUND_REQUEST_OPEN`).
pub(super) async fn create(
    State(state): State<AppState>,
    shopper: Shopper,
    Path(no): Path<String>,
    MpJson(req): MpJson<RefundRequestIn>,
) -> Result<(StatusCode, Json<RefundOut>), MpError> {
    if OutTradeNo::parse(&no).is_err() {
        return Err(MpError::order_not_found());
    }
    let requester = Requester::Customer {
        openid: shopper.customer.openid.clone(),
    };
    let refund = refunds::request(
        &state.db,
        &state.events,
        &no,
        req.amount_fen,
        &req.reason,
        requester,
    )
    .await
    .map_err(|e| match e {
        CoreError::Conflict(why) => {
            tracing::info!(order.out_trade_no = %no, %why, "refund request refused");
            match why {
                ConflictReason::RefundRequestOpen => MpError::refund_request_open(),
                _ => MpError::refund_not_allowed(),
            }
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(refund.into())))
}
