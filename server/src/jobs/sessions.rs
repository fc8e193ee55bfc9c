//! Deletes dashboard sessions past their expiry (tower-sessions' `ExpiredDeletion`, docs/style.md
//! §14): at start, then every ten minutes. An expired session is refused whether or not its
//! row is gone; this keeps the table small.

use std::time::Duration;

use paydesk_core::sessions::DbSessionStore;
use paydesk_core::Db;
use tower_sessions::session_store::ExpiredDeletion as _;

use super::Stop;

/// How often expired sessions are deleted.
const EVERY: Duration = Duration::from_secs(600);

pub(super) async fn run(db: Db, mut stop: Stop) {
    let store = DbSessionStore::new(db);
    loop {
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "deleting expired sessions failed; will retry");
        }
        if stop.sleep(EVERY).await {
            break;
        }
    }
}
