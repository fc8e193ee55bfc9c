//! Free space on the filesystem that holds the SQLite database. A full disk stops every
//! write: new orders, notifications, sessions. Checked every minute or so by a job (never per
//! request: `statvfs` is a system call, cheap but not free), and read by `/readyz` and the
//! dashboard's banner from memory.
//!
//! PostgreSQL's files are on the database server, whose disk this process cannot see: there
//! the check does not apply ([`DiskStatus::NotApplicable`]). A write refused for lack of
//! space is handled the same on both engines (notify.rs: the callback is answered `FAIL`
//! and a verified one is kept in memory until it can be written).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Db;

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskStatus {
    /// PostgreSQL: the database's disk is not ours to see.
    NotApplicable,
    /// Not checked yet, or `statvfs` failed (logged).
    Unknown,
    /// Free space, in bytes, and whether it is below the threshold.
    Checked {
        /// Bytes available to this process.
        free_bytes: u64,
        /// The threshold, in bytes.
        threshold_bytes: u64,
    },
}

impl DiskStatus {
    /// Whether free space is below the threshold.
    pub fn is_low(self) -> bool {
        matches!(self, DiskStatus::Checked { free_bytes, threshold_bytes } if free_bytes < threshold_bytes)
    }
}

/// No value yet in [`DiskMonitor::free`].
const UNKNOWN: u64 = u64::MAX;

/// The free-space check for one database, shared by the job that runs it and its readers.
#[derive(Debug)]
pub struct DiskMonitor {
    /// SQLite: the database file (`None` on PostgreSQL).
    path: Option<PathBuf>,
    threshold_bytes: u64,
    free: AtomicU64,
}

impl DiskMonitor {
    /// A monitor for `db`'s file, low below `threshold_bytes`. Not checked yet.
    pub fn new(db: &Db, threshold_bytes: u64) -> DiskMonitor {
        DiskMonitor {
            path: db.sqlite_file().map(Path::to_owned),
            threshold_bytes,
            free: AtomicU64::new(UNKNOWN),
        }
    }

    /// Checks now and remembers the result.
    pub fn check(&self) -> DiskStatus {
        let Some(path) = &self.path else {
            return DiskStatus::NotApplicable;
        };
        match free_bytes(path) {
            Ok(free) => {
                let was_low = self.status().is_low();
                self.free.store(free.min(UNKNOWN - 1), Ordering::Relaxed);
                let now = self.status();
                if now.is_low() && !was_low {
                    tracing::warn!(
                        free_mib = free / (1024 * 1024),
                        threshold_mib = self.threshold_bytes / (1024 * 1024),
                        "the database's disk is nearly full: free space before writes start failing"
                    );
                } else if was_low && !now.is_low() {
                    tracing::info!(
                        free_mib = free / (1024 * 1024),
                        "the database's disk has room again"
                    );
                }
                now
            }
            Err(e) => {
                tracing::warn!(error = %e, "checking free space on the database's disk failed");
                self.free.store(UNKNOWN, Ordering::Relaxed);
                DiskStatus::Unknown
            }
        }
    }

    /// What the last [`DiskMonitor::check`] found.
    pub fn status(&self) -> DiskStatus {
        if self.path.is_none() {
            return DiskStatus::NotApplicable;
        }
        match self.free.load(Ordering::Relaxed) {
            UNKNOWN => DiskStatus::Unknown,
            free_bytes => DiskStatus::Checked {
                free_bytes,
                threshold_bytes: self.threshold_bytes,
            },
        }
    }
}

/// Bytes available to an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_space_of_the_temp_folder_is_read() {
        let free = super::free_bytes(&std::env::temp_dir()).unwrap();
        assert!(free > 0);
    }
}
