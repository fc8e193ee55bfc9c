//! Operations endpoints: `/healthz` (alive), `/readyz` (database reachable, and free space
//! on its disk), `/metrics`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use paydesk_core::disk::DiskStatus;

use crate::AppState;

/// `/healthz`, `/readyz`, `/metrics`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(get_health))
        .route("/readyz", get(get_readiness))
        .route("/metrics", get(get_metrics))
}

/// The process is up and serving.
async fn get_health() -> &'static str {
    "ok\n"
}

/// The database answers; 503 otherwise, so a load balancer stops sending traffic. The first
/// line is `ready` as before; the lines after it report the database's disk as of the last
/// check (`paydesk_core::disk`), one `key value` per line. A low disk stays 200: the server
/// still works, and taking it out of rotation would stop callbacks too; the operator must act.
async fn get_readiness(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            format!("ready\n{}", disk_report(state.disk.status())),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unreachable\n".to_owned(),
            )
        }
    }
}

/// `/readyz`'s lines about the disk.
fn disk_report(status: DiskStatus) -> String {
    match status {
        DiskStatus::NotApplicable => {
            "disk_check not_applicable (PostgreSQL: the database server's disk)\n".to_owned()
        }
        DiskStatus::Unknown => "disk_check unknown\n".to_owned(),
        DiskStatus::Checked {
            free_bytes,
            threshold_bytes,
        } => format!(
            "disk_low {}\ndisk_free_bytes {free_bytes}\ndisk_low_threshold_bytes {threshold_bytes}\n",
            status.is_low()
        ),
    }
}

/// Prometheus text exposition.
async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
