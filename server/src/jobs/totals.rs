//! Folds the running totals' log into the totals (PostgreSQL only: SQLite's triggers keep
//! the totals themselves). Reads are exact either way; folding keeps the log short so they
//! stay fast (`paydesk_core::orders::totals`).

use std::time::Duration;

use paydesk_core::Db;

use super::Stop;

/// How often the log is folded.
const EVERY: Duration = Duration::from_secs(2);

pub(super) async fn run(db: Db, mut stop: Stop) {
    loop {
        if stop.sleep(EVERY).await {
            break;
        }
        match paydesk_core::orders::totals::fold(&db).await {
            Ok(n) if n > 0 => tracing::trace!(rows = n, "order totals folded"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "folding the order totals failed; will retry"),
        }
    }
}
