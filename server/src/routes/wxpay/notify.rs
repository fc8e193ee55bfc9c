//! `POST /wxpay/notify/payment` (spec §8.8, style.md §10). Thin on purpose: the raw body,
//! the peer and our merchant credentials go to [`paydesk_core::notify`], which records,
//! verifies and applies it and says what to answer. The raw body is never logged.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use paydesk_core::notify::MerchantCredentials;
use paydesk_core::Db;

use crate::startup::AppState;

/// The payment notification URL path (the `notify_url` given to unifiedorder ends in it).
pub const PAYMENT_PATH: &str = "/wxpay/notify/payment";

/// The notification routes, with bodies limited to what the XML parser accepts.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(PAYMENT_PATH, post(receive_payment_notification))
        .layer(DefaultBodyLimit::max(wxpay::xml::MAX_BODY))
}

/// Receives a payment notification and answers with the verdict's reply (HTTP 200,
/// `text/xml`): `SUCCESS` only after the change is committed (spec §8.8).
async fn receive_payment_notification(
    State(db): State<Db>,
    State(merchant): State<Arc<MerchantCredentials>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> impl IntoResponse {
    let outcome = paydesk_core::notify::receive_payment_notification(
        &db,
        &merchant,
        Some(peer.to_string()),
        &body,
    )
    .await;
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        outcome.reply_body,
    )
}
