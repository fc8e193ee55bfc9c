//! `GET /reconciliation/differences.csv?day=YYYY-MM-DD`: a day's reconciliation differences
//! as CSV, for managers and up (the page's "导出差异 CSV" link). A plain GET route so the
//! browser downloads it from a link; the session's user and role are checked here on the
//! server: signed out → 401, a lower role → 403. A day has few differences, so the file is
//! built whole (`paydesk_core::reconcile::differences_csv`).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use paydesk_core::{reconcile, Db, Role};
use serde::Deserialize;
use tower_sessions::Session;

use crate::state::AppState;

/// The route.
pub fn router() -> Router<AppState> {
    Router::new().route("/reconciliation/differences.csv", get(differences_csv))
}

#[derive(Deserialize)]
struct DayQuery {
    day: String,
}

async fn differences_csv(
    State(db): State<Db>,
    session: Session,
    Query(q): Query<DayQuery>,
) -> Response {
    if let Err(refused) =
        super::user_with_role(&session, &db, Role::Manager, "reconciliation").await
    {
        return refused;
    }
    let Some((start, _)) = paydesk_core::time::shanghai_day(&q.day) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, "day: YYYY-MM-DD\n").into_response();
    };
    let day = paydesk_core::time::day_number(start);
    match reconcile::differences(&db, day).await {
        Ok(rows) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"paydesk-reconciliation-{}.csv\"",
                        reconcile::day_text(day)
                    ),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
            reconcile::differences_csv(&rows),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading a day's differences for the CSV failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
