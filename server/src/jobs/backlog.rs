//! Writes notification rows that the database refused (it was down or read-only) once it
//! takes writes again, so every callback ends up in `notifications`.

use std::time::Duration;

use paydesk_core::notify::Intake;

use super::Stop;

/// How often the backlog is retried while it is not empty.
const EVERY: Duration = Duration::from_secs(1);

pub(super) async fn run(intake: Intake, mut stop: Stop) {
    loop {
        if stop.sleep(EVERY).await {
            break;
        }
        if intake.backlog_len() == 0 {
            continue;
        }
        match intake.flush_backlog().await {
            Ok(n) if n > 0 => tracing::info!(rows = n, "late notification rows recorded"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, waiting = intake.backlog_len(), "the database still refuses notification rows")
            }
        }
    }
    // One last try so a clean shutdown loses nothing it can avoid losing.
    if intake.backlog_len() > 0 {
        if let Err(e) = intake.flush_backlog().await {
            tracing::error!(error = %e, lost = intake.backlog_len(), "notification rows could not be recorded before shutdown");
        }
    }
}
