//! WeChat Pay's callbacks (docs/design.md "Notify"): `/wxpay/notify/…`.

pub mod notify;

use std::sync::Arc;

use axum::Router;
use paydesk_core::notify::Intake;

use crate::middleware::client_ip::TrustedProxies;

/// What the callback handlers get: the intake, and the proxies whose `X-Forwarded-For`
/// names the sender.
#[derive(Clone)]
pub struct CallbackState {
    /// Records, verifies and applies the callbacks.
    pub intake: Intake,
    /// The reverse proxies to believe (`crate::middleware::client_ip`).
    pub trusted_proxies: Arc<TrustedProxies>,
}

/// The callback routes, with only what they need as their state.
pub fn router<S>(intake: Intake, trusted_proxies: Arc<TrustedProxies>) -> Router<S> {
    notify::router().with_state(CallbackState {
        intake,
        trusted_proxies,
    })
}
