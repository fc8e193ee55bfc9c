//! SQLite's write-ahead log, kept bounded under steady writes.
//!
//! Checkpoints run in the background (`pragma wal_autocheckpoint = 0` on every connection,
//! a passive checkpoint every [`CHECKPOINT_EVERY`] from a reader), so that no commit pays
//! for one. But a passive checkpoint never lets the log start again from its beginning
//! under steady writes: SQLite restarts the log only when a write transaction begins with
//! every frame already copied, and at hundreds of commits a second one always lands while
//! the checkpoint runs. The file then grew without end (5 GB in one run of the notification
//! benchmark), and every checkpoint's fsync flushed megabytes of newly allocated log blocks
//! while the committer appended behind it (docs/benchmarks.md).
//!
//! So, when a background checkpoint finds more than [`WalLimits::restart_frames`] frames in
//! the log, it asks the payment-notification committer (the one steady writer) to finish
//! the job: between two batches, with no write open, the committer runs a passive
//! checkpoint of its own, which has only the frames written since the background one to
//! copy; when that copies everything, the committer's next transaction starts the log from
//! its beginning again (`notify/group_commit.rs`). Its cost, a few milliseconds once per
//! restart, falls on the requests that arrive meanwhile. The committer only takes the
//! request within [`RESTART_WINDOW`] of the checkpoint that made it, while what is left to
//! copy is small.
//!
//! When no committer acts (no notifications arrive; other writers keep the log growing)
//! and the log passes [`WalLimits::force_frames`], the background task runs a `RESTART`
//! checkpoint itself: it waits for the writer (the busy timeout), blocks writes while it
//! copies what is left, and makes the next writer restart the log. `journal_size_limit`
//! gives a burst's disk space back.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::sync::mpsc;

/// How often the background task copies the WAL into the database file. Often, so that each
/// checkpoint's fsync has little to write: at 1,000 notifications/s the log grows by about
/// 80 MB/s. With a checkpoint every 500 ms, 136 of 10,000 notifications waited past 1.5 ms,
/// in bursts at each checkpoint; every 50 ms, 20–47 did (docs/benchmarks.md). With nothing
/// new in the log a round costs a statement and no fsync.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// The page size SQLite gives a new database, which ours keep: a log frame holds one page.
const PAGE_SIZE: i64 = 4096;

/// When the log is restarted (see the module docs), in frames of one page.
#[derive(Debug, Clone, Copy)]
pub struct WalLimits {
    /// Past this many frames the notification committer finishes a checkpoint between two
    /// batches so that the log restarts (256 MiB by default: about three seconds of
    /// notifications at 1,000/s; each restart costs the batch after it a few milliseconds,
    /// so they are kept rare).
    pub restart_frames: i64,
    /// Past this many frames the background task forces a restart itself, blocking writes
    /// while it finishes (1 GiB by default).
    pub force_frames: i64,
}

impl Default for WalLimits {
    fn default() -> Self {
        WalLimits {
            restart_frames: 65_536,
            force_frames: 262_144,
        }
    }
}

impl WalLimits {
    /// `pragma journal_size_limit`, in bytes: what the file is cut back to when a restart
    /// finds it larger. Twice the restart size, so that in steady use the file is reused,
    /// never cut and grown again (growing it is what stalled the commits), and only a
    /// burst's excess is given back.
    pub(crate) fn journal_size_limit(&self) -> i64 {
        self.restart_frames.saturating_mul(2 * PAGE_SIZE)
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

/// How long after a background checkpoint the committer still finishes it. Its cost is the
/// frames written since that checkpoint began (and two fsyncs): right after one, a few
/// milliseconds; half a second later, after a bulk write with no notification to take the
/// chance, it could be tens. A later batch waits for the next round instead.
const RESTART_WINDOW: Duration = Duration::from_millis(100);

/// The log's state shared by the background checkpointer and the notification committer.
#[derive(Debug)]
pub(crate) struct Wal {
    limits: WalLimits,
    /// When this was made: the clock of `restart_wanted_at`.
    epoch: Instant,
    /// When a background checkpoint last asked for a restart (ms after `epoch`, plus one);
    /// 0: not asked.
    restart_wanted_at: AtomicU64,
    frames: AtomicI64,
    committer_checkpoints: AtomicU64,
    forced_restarts: AtomicU64,
}

impl Wal {
    pub(crate) fn new(limits: WalLimits) -> Wal {
        Wal {
            limits,
            epoch: Instant::now(),
            restart_wanted_at: AtomicU64::new(0),
            frames: AtomicI64::new(0),
            committer_checkpoints: AtomicU64::new(0),
            forced_restarts: AtomicU64::new(0),
        }
    }

    /// `pragma journal_size_limit` for a connection that may restart the log.
    pub(crate) fn journal_size_limit(&self) -> i64 {
        self.limits.journal_size_limit()
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn want_restart(&self, wanted: bool) {
        let at = if wanted { self.now() } else { 0 };
        self.restart_wanted_at.store(at, Ordering::Relaxed);
    }

    /// Whether the committer should finish a checkpoint before its next batch: a background
    /// checkpoint asked for it within [`RESTART_WINDOW`].
    pub(crate) fn restart_wanted(&self) -> bool {
        match self.restart_wanted_at.load(Ordering::Relaxed) {
            0 => false,
            at => self.now().saturating_sub(at) < RESTART_WINDOW.as_millis() as u64,
        }
    }

    /// The committer's checkpoint copied the whole log: its next transaction restarts it.
    pub(crate) fn committer_checkpointed(&self) {
        self.want_restart(false);
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
            self.want_restart(false);
            return Ok(());
        }
        self.want_restart(true);
        if frames < self.limits.force_frames {
            return Ok(());
        }
        let started = Instant::now();
        let (busy, after, copied) = checkpoint(pool, "restart").await?;
        if busy == 0 {
            self.forced_restarts.fetch_add(1, Ordering::Relaxed);
            self.want_restart(false);
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
