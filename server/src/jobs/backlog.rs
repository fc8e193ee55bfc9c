//! Writes notification rows that the database refused (it was down or read-only) once it
//! takes writes again, so every callback ends up in `notifications`; and adds the refused
//! callbacks counted in memory to `refused_callback_counts` (paydesk_core::notify's
//! flood.rs), once a second, so a flood costs one upsert a second instead of a row a
//! request.

use std::time::Duration;

use paydesk_core::notify::Intake;

use super::Stop;

/// How often the backlog is retried while it is not empty, and the counts added.
const EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(intake: Intake, mut stop: Stop) {
    loop {
        if stop.sleep(EVERY).await {
            break;
        }
        flush_counts(&intake).await;
        if intake.backlog_len() == 0 {
            continue;
        }
        match intake.flush_backlog().await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "late notification rows recorded"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, waiting = intake.backlog_len(), bytes = intake.backlog_bytes(), "the database still refuses notification rows")
            }
        }
    }
    // One last try so a clean shutdown loses nothing it can avoid losing.
    flush_counts(&intake).await;
    if intake.backlog_len() > 0 {
        if let Err(e) = intake.flush_backlog().await {
            tracing::error!(error = %e, lost = intake.backlog_len(), "notification rows could not be recorded before shutdown");
        }
    }
}

async fn flush_counts(intake: &Intake) {
    if !intake.has_counts() {
        return;
    }
    if let Err(e) = intake.flush_counts().await {
        tracing::warn!(error = %e, "the database refuses the counts of refused callbacks; kept for the next second");
    }
}
