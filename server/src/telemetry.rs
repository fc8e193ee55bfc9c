//! Tracing setup: human-readable by default, JSON with `PAYDESK_LOG_FORMAT=json`, level from
//! `RUST_LOG` (default `info`). Secrets are never logged: settings print redacted, spans use
//! `skip_all`, and raw callback bodies are stored, not logged (docs/style.md §15).

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored so tests can call it too).
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,leptos_axum=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().with_target(false))
            .try_init()
    };
    drop(result);
}
