//! Checks free space on the SQLite database's filesystem every `PAYDESK_DISK__CHECK_SECONDS`
//! (`paydesk_core::disk`); `/readyz` and the dashboard's banner read the last result.

use std::sync::Arc;
use std::time::Duration;

use paydesk_core::disk::DiskMonitor;

use super::Stop;

pub(super) async fn run(disk: Arc<DiskMonitor>, every: Duration, mut stop: Stop) {
    while !stop.sleep(every).await {
        disk.check();
    }
}
