//! The exceptions inbox's scan (`paydesk_core::exceptions::scan`): every `scan_seconds`
//! (a minute by default), new
//! conditions are raised and the open items whose condition went away are cleared; when
//! anything changed, the dashboards hear it (`Event::ExceptionsChanged`) and the top bar's
//! count refreshes. Raising is one `insert … on conflict do nothing` per item, so several
//! instances scanning at once still raise each cause once.

use std::time::Duration;

use paydesk_core::events::Event;
use paydesk_core::exceptions;

use super::Stop;
use crate::state::AppState;

pub(super) async fn run(state: AppState, mut stop: Stop) {
    let every = Duration::from_secs(state.settings.exceptions.scan_seconds.max(1));
    loop {
        // A stop does not wait for a scan: its raises and clears are each idempotent, so
        // one cut off is simply done again by the next scan, here or on another instance
        // (a scan under load took longer than the stop's 10 s).
        let scanned = tokio::select! {
            scanned = exceptions::scan(&state.db, paydesk_core::now_ms()) => scanned,
            () = stop.begun() => break,
        };
        match scanned {
            Ok(report) if report.changed() => {
                tracing::info!(
                    raised = report.raised,
                    cleared = report.cleared,
                    "exceptions inbox updated"
                );
                publish_count(&state).await;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "scanning for exceptions failed; tried again at the next scan")
            }
        }
        if stop.sleep(every).await {
            break;
        }
    }
}

/// Tells the dashboards how many items are open now.
pub(crate) async fn publish_count(state: &AppState) {
    match exceptions::open_count(&state.db).await {
        Ok(open) => state.events.publish(Event::ExceptionsChanged { open }),
        Err(e) => tracing::warn!(error = %e, "counting open exceptions failed"),
    }
}
