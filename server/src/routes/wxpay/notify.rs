//! `POST /wxpay/notify/payment` (docs/wechatpay-v2.md §8.8) and `POST /wxpay/notify/refund` (docs/wechatpay-v2.md §8.9),
//! docs/style.md §10. Thin on purpose: the raw body and
//! the peer go to [`paydesk_core::notify::Intake`], which records, verifies and applies it,
//! publishes what happened and says what to answer. The raw body is never logged.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use http_body_util::BodyExt as _;
use paydesk_core::notify::{Intake, MAX_BODY};

use super::CallbackState;

/// The payment notification URL path (the `notify_url` given to unifiedorder ends in it).
pub const PAYMENT_PATH: &str = "/wxpay/notify/payment";

/// The refund notification URL path (the refund `notify_url` ends in it).
pub const REFUND_PATH: &str = "/wxpay/notify/refund";

/// The notification routes. Bodies are read up to [`MAX_BODY`] bytes by the handler itself
/// (no 413 from a body-limit layer), so an over-long callback is still recorded.
pub fn router() -> Router<CallbackState> {
    Router::new()
        .route(PAYMENT_PATH, post(receive_payment_notification))
        .route(REFUND_PATH, post(receive_refund_notification))
}

/// A body read up to the limit.
pub(crate) enum Capped {
    /// The whole body.
    Whole(Vec<u8>),
    /// The first [`MAX_BODY`] bytes of a longer body.
    Oversize(Vec<u8>),
}

/// Reads at most [`MAX_BODY`] bytes; stops reading (and says so) beyond that. A transport
/// error mid-body keeps what arrived (it is recorded as malformed).
pub(crate) async fn read_capped(body: Body) -> Capped {
    let mut body = body;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                let room = MAX_BODY - buf.len();
                buf.extend_from_slice(&data[..room]);
                return Capped::Oversize(buf);
            }
            buf.extend_from_slice(&data);
        }
    }
    Capped::Whole(buf)
}

/// Receives a payment notification and answers with the verdict's reply (HTTP 200,
/// `text/xml`): `SUCCESS` only after the change is committed (docs/wechatpay-v2.md §8.8).
async fn receive_payment_notification(
    State(state): State<CallbackState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> impl IntoResponse {
    receive("payment", &state, peer, request).await
}

/// Receives a refund notification (encrypted `req_info`, docs/wechatpay-v2.md §8.9) and answers with the
/// verdict's reply: `SUCCESS` only after the change is committed.
async fn receive_refund_notification(
    State(state): State<CallbackState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> impl IntoResponse {
    receive("refund", &state, peer, request).await
}

/// Reads the body (capped), hands it to the intake, and answers its reply.
async fn receive(
    kind: &'static str,
    state: &CallbackState,
    peer: SocketAddr,
    request: Request,
) -> impl IntoResponse {
    let intake: &Intake = &state.intake;
    // The sender: the TCP peer (address and port), or behind a trusted reverse proxy the
    // address it forwarded.
    let peer = Some(
        match state
            .trusted_proxies
            .forwarded(peer.ip(), request.headers())
        {
            Some(sender) => sender.to_string(),
            None => peer.to_string(),
        },
    );
    let body = request.into_body();
    // Each arm lets go of the body before the answer may be held back.
    let outcome = match read_capped(body).await {
        Capped::Whole(raw) if kind == "refund" => intake.refund(peer, &raw).await,
        Capped::Whole(raw) => intake.payment(peer, &raw).await,
        Capped::Oversize(prefix) => intake.oversize(kind, peer, &prefix).await,
    };
    intake.hold(&outcome).await;
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        outcome.reply_body,
    )
}
