//! WeChat Pay's callbacks (design.md "Notify"): `/wxpay/notify/…`.

pub mod notify;

use axum::Router;

use crate::startup::AppState;

/// The callback routes.
pub fn router() -> Router<AppState> {
    notify::router()
}
