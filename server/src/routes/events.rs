//! `GET /api/events`: the event bus as Server-Sent Events for the dashboard's live views
//! (issue "pay end to end": live events). Signed-in staff only (the session cookie, checked
//! here on the server); each event is one SSE message whose `event:` is its type
//! (`order_paid`, `order_closed`, `notification_rejected`, `refund_changed`,
//! `exceptions_changed`) and whose data is the event as JSON. A subscriber that falls behind
//! is told how many it missed (`event: lagged`) and carries on; so is every stream when
//! events from other instances may have been missed (the PostgreSQL relay's connection was
//! re-made, [`EventBus::missed`]), with `lagged` data `0`. A keep-alive comment every 15 s
//! holds proxies open.
//!
//! When the instance begins to shut down every stream ends, after a last message that asks
//! the browser to reconnect within [`RECONNECT`]: behind a proxy it reconnects to another
//! instance (and refetches, as after any reconnect).
//!
//! An open stream checks its session again every [`RECHECK`]: after a sign-out, a password
//! change or reset, or the account's deactivation it ends, and the browser's reconnect is
//! refused like any other request of that session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::stream::{self, Stream};
use paydesk_core::events::{Event, EventBus};
use paydesk_core::sessions::DbSessionStore;
use paydesk_core::Db;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tower_sessions::session::Id;
use tower_sessions::Session;

use crate::jobs::Stop;
use crate::state::AppState;

/// The live event route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/events", get(events))
}

/// How soon a browser whose stream ended because this instance stops should reconnect.
const RECONNECT: Duration = Duration::from_millis(500);

/// How often an open stream checks that its session still stands.
const RECHECK: Duration = Duration::from_secs(10);

async fn events(
    State(db): State<Db>,
    State(bus): State<EventBus>,
    State(stopping): State<Stop>,
    session: Session,
) -> Response {
    match app::server::ssr::session_user(&session, &db).await {
        Ok(Some(_)) => {}
        Ok(None) => return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    let Some(id) = session.id() else {
        return (StatusCode::UNAUTHORIZED, "sign in first\n").into_response();
    };
    Sse::new(stream_of(bus.subscribe(), bus.missed(), stopping, db, id))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// Whether session `id` still signs its user in, read afresh from the store and the user's
/// row (the same check as every other request). A database error keeps the stream: it is
/// no reason to sign anyone out.
async fn still_signed_in(db: &Db, id: Id) -> bool {
    let session = Session::new(Some(id), Arc::new(DbSessionStore::new(db.clone())), None);
    !matches!(app::server::ssr::session_user(&session, db).await, Ok(None))
}

/// An open stream: its events, and the session it checks every [`RECHECK`].
struct Open {
    rx: Receiver<Event>,
    missed: watch::Receiver<u64>,
    stopping: Stop,
    /// The last message went out: end.
    ended: bool,
    db: Db,
    id: Id,
    recheck: Interval,
}

fn stream_of(
    rx: Receiver<Event>,
    mut missed: watch::Receiver<u64>,
    stopping: Stop,
    db: Db,
    id: Id,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let mut recheck = tokio::time::interval_at(Instant::now() + RECHECK, RECHECK);
    recheck.set_missed_tick_behavior(MissedTickBehavior::Delay);
    missed.mark_unchanged();
    let open = Open {
        rx,
        missed,
        stopping,
        ended: false,
        db,
        id,
        recheck,
    };
    stream::unfold(open, |mut open| async move {
        if open.ended {
            return None;
        }
        let message = loop {
            tokio::select! {
                received = open.rx.recv() => break match received {
                    Ok(event) => SseEvent::default()
                        .event(event.kind())
                        .json_data(&event)
                        .unwrap_or_else(|_| SseEvent::default().event("error")),
                    Err(RecvError::Lagged(missed)) => {
                        SseEvent::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                },
                changed = open.missed.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                    break SseEvent::default().event("lagged").data("0");
                }
                () = open.stopping.begun() => {
                    open.ended = true;
                    break SseEvent::default().retry(RECONNECT).comment("this instance is stopping");
                }
                _ = open.recheck.tick() => {
                    if !still_signed_in(&open.db, open.id).await {
                        return None;
                    }
                }
            }
        };
        Some((Ok(message), open))
    })
}
