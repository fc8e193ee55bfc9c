//! SQLite's write-ahead log, kept bounded under steady writes.
//!
//! Checkpoints run in the background (`pragma wal_autocheckpoint = 0` on every connection,
//! a passive checkpoint every [`CHECKPOINT_EVERY`] from a reader), so that no commit pays
//! for one. But a passive checkpoint never lets the log start again from its beginning
//! under steady writes: SQLite restarts the log only when a write transaction begins with
//! every frame already copied, and at hundreds of commits a second one always lands while
//! the checkpoint runs. The file then grows without end (2.8 GB in a ten-minute benchmark),
//! and every checkpoint's fsync has to flush megabytes of newly allocated log blocks, which
//! stalled the commits appending behind it for 5–20 ms (docs/benchmarks.md).
//!
//! So, when a background checkpoint finds more than [`WalLimits::restart_frames`] frames in
//! the log, it asks the payment-notification committer (the one steady writer) to finish
//! the job: between two batches, with no write open, the committer runs a passive
//! checkpoint of its own, which has only the frames written since the background one to
//! copy; when that copies everything, the committer's next transaction starts the log from
//! its beginning again (`notify/group_commit.rs`). Its cost — a few milliseconds, once per
//! restart — falls on the one batch that waits for it, instead of a growing log stalling
//! every commit.
//!
//! When no committer acts (no notifications arrive; other writers keep the log growing)
//! and the log passes [`WalLimits::force_frames`], the background task runs a `RESTART`
//! checkpoint itself: it waits for the writer (the busy timeout), blocks writes while it
//! copies what is left, and makes the next writer restart the log. `journal_size_limit`
//! (the same size) gives the disk space back after a burst.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// How often the background task copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// The page size SQLite gives a new database, which ours keep: a log frame holds one page.
const PAGE_SIZE: i64 = 4096;

/// When the log is restarted (see the module docs), in frames of one page.
#[derive(Debug, Clone, Copy)]
pub struct WalLimits {
    /// Past this many frames the notification committer finishes a checkpoint between two
    /// batches so that the log restarts (32 MiB by default: about half a second of
    /// notifications at 1,000/s).
    pub restart_frames: i64,
    /// Past this many frames the background task forces a restart itself, blocking writes
    /// while it finishes; also the size the file is cut back to after a restart (256 MiB
    /// by default: well above what a restart cycle writes even at full throughput, so the
    /// file is reused rather than cut and grown again).
    pub force_frames: i64,
}

impl Default for WalLimits {
    fn default() -> Self {
        WalLimits {
            restart_frames: 8_192,
            force_frames: 65_536,
        }
    }
}

impl WalLimits {
    /// `pragma journal_size_limit`, in bytes.
    pub(crate) fn journal_size_limit(&self) -> i64 {
        self.force_frames.saturating_mul(PAGE_SIZE)
    }
}

/// What the log has done since the database was opened (SQLite only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalStats {
    /// Frames in the log at the last background checkpoint.
    pub frames: i64,
    /// Checkpoints the notification committer finished so that the log could restart.
    pub committer_checkpoints: u64,
    /// `RESTART` checkpoints the background task forced.
    pub forced_restarts: u64,
}

/// The log's state shared by the background checkpointer and the notification committer.
#[derive(Debug)]
pub(crate) struct Wal {
    limits: WalLimits,
    restart_wanted: AtomicBool,
    frames: AtomicI64,
    committer_checkpoints: AtomicU64,
    forced_restarts: AtomicU64,
}

impl Wal {
    pub(crate) fn new(limits: WalLimits) -> Wal {
        Wal {
            limits,
            restart_wanted: AtomicBool::new(false),
            frames: AtomicI64::new(0),
            committer_checkpoints: AtomicU64::new(0),
            forced_restarts: AtomicU64::new(0),
        }
    }

    pub(crate) fn limits(&self) -> WalLimits {
        self.limits
    }

    /// Whether the committer should finish a checkpoint before its next batch.
    pub(crate) fn restart_wanted(&self) -> bool {
        self.restart_wanted.load(Ordering::Relaxed)
    }

    /// The committer's checkpoint copied the whole log: its next transaction restarts it.
    pub(crate) fn committer_checkpointed(&self) {
        self.restart_wanted.store(false, Ordering::Relaxed);
        self.committer_checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            frames: self.frames.load(Ordering::Relaxed),
            committer_checkpoints: self.committer_checkpoints.load(Ordering::Relaxed),
            forced_restarts: self.forced_restarts.load(Ordering::Relaxed),
        }
    }

    /// One round of the background task: a passive checkpoint, then what its result asks.
    async fn tick(&self, pool: &AnyPool) -> Result<(), sqlx::Error> {
        let (_, frames, _) = checkpoint(pool, "passive").await?;
        self.frames.store(frames, Ordering::Relaxed);
        if frames < self.limits.restart_frames {
            self.restart_wanted.store(false, Ordering::Relaxed);
            return Ok(());
        }
        self.restart_wanted.store(true, Ordering::Relaxed);
        if frames < self.limits.force_frames {
            return Ok(());
        }
        let started = Instant::now();
        let (busy, after, copied) = checkpoint(pool, "restart").await?;
        if busy == 0 {
            self.forced_restarts.fetch_add(1, Ordering::Relaxed);
            self.restart_wanted.store(false, Ordering::Relaxed);
        }
        tracing::info!(
            frames,
            after,
            copied,
            restarted = busy == 0,
            took_ms = started.elapsed().as_secs_f64() * 1e3,
            "SQLite's write-ahead log passed its limit; forced a restart"
        );
        Ok(())
    }
}

/// `pragma wal_checkpoint(MODE)`: (1 if it could not finish, frames in the log, frames
/// copied).
async fn checkpoint(pool: &AnyPool, mode: &str) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(&format!("pragma wal_checkpoint({mode})"))
        .fetch_one(pool)
        .await
}

/// Starts the background checkpointer; it stops when the returned sender and its clones are
/// gone (the last `Db` clone dropped) or the pool is closed.
pub(crate) fn start_checkpointer(pool: AnyPool, wal: Arc<Wal>) -> mpsc::Sender<()> {
    let (alive, mut gone) = mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = gone.recv() => break,
                _ = tick.tick() => {}
            }
            if pool.is_closed() {
                break;
            }
            if let Err(e) = wal.tick(&pool).await {
                tracing::warn!(error = %e, "SQLite WAL checkpoint failed; retrying");
            }
        }
    });
    alive
}
