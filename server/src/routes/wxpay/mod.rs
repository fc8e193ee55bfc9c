//! WeChat Pay's callbacks (design.md "Notify"): `/wxpay/notify/…`.

pub mod notify;

use axum::Router;
use paydesk_core::notify::Intake;

/// The callback routes, with the intake as their only state.
pub fn router<S>(intake: Intake) -> Router<S> {
    notify::router().with_state(intake)
}
