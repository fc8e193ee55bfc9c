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
        state.metrics.render(),
    )
        .into_response()
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
