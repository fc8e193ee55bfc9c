//! `GET /api/events`: the event bus as Server-Sent Events for the dashboard's live views
//! (issue "pay end to end": live events). Signed-in staff only (the session cookie, checked
//! here on the server); each event is one SSE message whose `event:` is its type
//! (`order_paid`, `order_closed`, `notification_rejected`, `refund_changed`) and whose data
//! is the event as JSON. A subscriber that falls behind is told how many it missed
//! (`event: lagged`) and carries on; a keep-alive comment every 15 s holds proxies open.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use paydesk_core::events::EventBus;
use paydesk_core::Db;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;

use crate::startup::AppState;

/// The live event route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

async fn events(State(db): State<Db>, State(bus): State<EventBus>, session: Session) -> Response {
    match app::server::ssr::session_user(&session, &db).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    Sse::new(stream_of(bus))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn stream_of(bus: EventBus) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(bus.subscribe(), |mut rx| async move {
        let message = match rx.recv().await {
            Ok(event) => SseEvent::default()
                .event(event.kind())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().event("error")),
            Err(RecvError::Lagged(missed)) => {
                SseEvent::default().event("lagged").data(missed.to_string())
            }
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(message), rx))
    })
}
