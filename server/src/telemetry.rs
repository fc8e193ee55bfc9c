//! Tracing setup: human-readable by default, JSON with `PAYDESK_LOG_FORMAT=json`, level from
//! `RUST_LOG` (default `info`). Secrets are never logged: settings print redacted, spans use
//! `skip_all`, and raw callback bodies are stored, not logged (docs/style.md §15).

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored so tests can call it too).
/// `to_stderr`: a one-shot command's logs go to stderr, so its stdout stays what it prints
/// for scripts; the server logs to stdout.
pub fn init(json: bool, to_stderr: bool) {
    let writer = move || -> Box<dyn std::io::Write> {
        if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn,leptos_axum=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(writer),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_writer(writer),
            )
            .try_init()
    };
    drop(result);
}
