//! Operations endpoints: `/healthz` (alive), `/readyz` (database reachable, and free space
//! on its disk), `/metrics` (bearer token `PAYDESK_METRICS_TOKEN`; without one configured it
//! does not exist).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use paydesk_core::disk::DiskStatus;
use secrecy::ExposeSecret as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

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

/// The database answers; 503 otherwise, so a load balancer stops sending traffic (and 503
/// `stopping` once the instance is shutting down). The first
/// line is `ready` as before; the lines after it report the database's disk as of the last
/// check (`paydesk_core::disk`), one `key value` per line. A low disk stays 200: the server
/// still works, and taking it out of rotation would stop callbacks too; the operator must act.
async fn get_readiness(State(state): State<AppState>) -> impl IntoResponse {
    if state.stopping.is_set() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n".to_owned());
    }
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

/// Prometheus text exposition, for `Authorization: Bearer <PAYDESK_METRICS_TOKEN>` only:
/// route names and request counts tell an outsider what is in use and how busy the shop
/// is. Unset, the endpoint answers 404 as if it did not exist; a wrong or missing token
/// gets 401.
async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.settings.metrics_token else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given, token.expose_secret()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a metrics token is required\n",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render() + &render_wal(state.db.wal_stats()),
    )
        .into_response()
}

/// SQLite's write-ahead log and the notification committer's page counts (nothing on
/// PostgreSQL): pages written per commit is what the disk pays for each notification batch
/// (docs/benchmarks.md).
fn render_wal(stats: Option<paydesk_core::wal::WalStats>) -> String {
    use std::fmt::Write as _;
    let Some(w) = stats else {
        return String::new();
    };
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "paydesk_sqlite_wal_frames",
            "gauge",
            "Frames in the write-ahead log at the last background checkpoint.",
            w.frames.max(0) as u64,
        ),
        (
            "paydesk_sqlite_committer_commits_total",
            "counter",
            "Transactions the payment-notification committer committed (one per batch).",
            w.committer_commits,
        ),
        (
            "paydesk_sqlite_committer_pages_written_total",
            "counter",
            "Pages the notification committer wrote to the write-ahead log.",
            w.committer_pages_written,
        ),
        (
            "paydesk_sqlite_committer_pages_read_total",
            "counter",
            "Pages the notification committer read from the database file (not in SQLite's cache).",
            w.committer_pages_read,
        ),
        (
            "paydesk_sqlite_wal_committer_checkpoints_total",
            "counter",
            "Checkpoints the committer finished between batches so that the log could restart.",
            w.committer_checkpoints,
        ),
        (
            "paydesk_sqlite_wal_forced_restarts_total",
            "counter",
            "RESTART checkpoints the background task forced.",
            w.forced_restarts,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// Compares in time independent of where the two differ and of their lengths: the
/// SHA-256 digests (always 32 bytes) are compared in constant time.
fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_same_token_matches() {
        assert!(same_secret("s3cret-token", "s3cret-token"));
        assert!(!same_secret("s3cret-tokeN", "s3cret-token"));
        assert!(!same_secret("", "s3cret-token"));
        assert!(!same_secret("s3cret-token-and-more", "s3cret-token"));
    }
}
