//! The retention job (`paydesk_core::retention`): once a day, from `PAYDESK_RETENTION__RUN_AT`
//! (Asia/Shanghai), one instance among those sharing the database deletes what the policy
//! says has aged out. The day is claimed with a lease in the database, so several instances
//! never run it twice on one day, and a crashed run is taken over when its lease ends.

use std::time::Duration;

use paydesk_core::retention;

use super::Stop;
use crate::state::AppState;

/// How often the job looks whether today's run is due.
const EVERY: Duration = Duration::from_secs(60);

pub(super) async fn run(state: AppState, mut stop: Stop) {
    let settings = &state.settings.retention;
    let policy = settings.policy();
    // Checked by Settings::validate; the default is only for a value it let through.
    let run_at = settings.run_at_minute().unwrap_or(4 * 60);
    // Names this instance in the lease (never compared with anything but itself).
    let holder = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    // Looks at once, so an instance started after the run time still runs today.
    loop {
        match retention::run_if_due(&state.db, &policy, &holder, run_at).await {
            Ok(Some(report)) => tracing::debug!(rows = report.total_rows(), "retention run done"),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the retention run failed; another try when its lease runs out")
            }
        }
        if stop.sleep(EVERY).await {
            break;
        }
    }
}
