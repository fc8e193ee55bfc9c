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
//!
//! After every round the background task also asks the kernel to read into its cache the
//! part of the log file that the next commits will overwrite ([`steer_cache`]). A frame is a
//! page plus a 24-byte header, so frames straddle the file system's blocks, and overwriting
//! part of a block that is no longer cached makes the writer read it from disk first. The
//! kernel drops cold file pages (memory pressure, or proactive reclaim as on the benchmark
//! VMs), and without the read-ahead the committer waited on such reads 60–100 times a
//! second at 1,000 notifications/s, up to 1.7 ms each (docs/benchmarks.md).

use std::path::{Path, PathBuf};
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

/// The log file's header, and each frame's header before its page (SQLite's file format).
const WAL_HEADER: u64 = 32;
const FRAME_HEADER: u64 = 24;

/// How much of the log file ahead of the writer [`steer_cache`] asks for: at 1,000
/// notifications/s about 100 ms of commits, two rounds of the background task.
const PREFETCH_BYTES: u64 = 8 << 20;

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
    /// Transactions the notification committer committed (one per batch).
    pub committer_commits: u64,
    /// Pages the committer wrote to the log (frames, of one page each): what its commits
    /// cost the disk, divided by the notifications they held.
    pub committer_pages_written: u64,
    /// Pages the committer had to read from the file (not in SQLite's own cache): from the
    /// kernel's page cache, or from the disk when the kernel had dropped them.
    pub committer_pages_read: u64,
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
    /// The log file (`<database>-wal`), for [`steer_cache`].
    path: PathBuf,
    /// When this was made: the clock of `restart_wanted_at`.
    epoch: Instant,
    /// When a background checkpoint last asked for a restart (ms after `epoch`, plus one);
    /// 0: not asked.
    restart_wanted_at: AtomicU64,
    frames: AtomicI64,
    committer_checkpoints: AtomicU64,
    forced_restarts: AtomicU64,
    committer_commits: AtomicU64,
    committer_pages_written: AtomicU64,
    committer_pages_read: AtomicU64,
}

impl Wal {
    /// The log of the database file at `database`.
    pub(crate) fn new(limits: WalLimits, database: &Path) -> Wal {
        let mut path = database.as_os_str().to_owned();
        path.push("-wal");
        Wal {
            limits,
            path: PathBuf::from(path),
            epoch: Instant::now(),
            restart_wanted_at: AtomicU64::new(0),
            frames: AtomicI64::new(0),
            committer_checkpoints: AtomicU64::new(0),
            forced_restarts: AtomicU64::new(0),
            committer_commits: AtomicU64::new(0),
            committer_pages_written: AtomicU64::new(0),
            committer_pages_read: AtomicU64::new(0),
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

    /// The committer committed a batch, writing and reading these many pages.
    pub(crate) fn committer_committed(&self, pages_written: u64, pages_read: u64) {
        self.committer_commits.fetch_add(1, Ordering::Relaxed);
        self.committer_pages_written
            .fetch_add(pages_written, Ordering::Relaxed);
        self.committer_pages_read
            .fetch_add(pages_read, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            frames: self.frames.load(Ordering::Relaxed),
            committer_checkpoints: self.committer_checkpoints.load(Ordering::Relaxed),
            forced_restarts: self.forced_restarts.load(Ordering::Relaxed),
            committer_commits: self.committer_commits.load(Ordering::Relaxed),
            committer_pages_written: self.committer_pages_written.load(Ordering::Relaxed),
            committer_pages_read: self.committer_pages_read.load(Ordering::Relaxed),
        }
    }

    /// One round of the background task: a passive checkpoint, then what its result asks.
    async fn tick(&self, pool: &AnyPool) -> Result<(), sqlx::Error> {
        let (_, frames, copied) = checkpoint(pool, "passive").await?;
        self.frames.store(frames, Ordering::Relaxed);
        let at = Position {
            frames,
            // Everything copied: the next writer starts the log from its beginning and cuts
            // the file back to `journal_size_limit`.
            all_copied: copied == frames,
            // Past the restart size the committer may restart it before the next round.
            restart_soon: copied == frames || frames >= self.limits.restart_frames,
        };
        let (path, limit) = (self.path.clone(), self.limits.journal_size_limit());
        let steered = tokio::task::spawn_blocking(move || steer_cache(&path, at, limit)).await;
        match steered {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "advising the kernel on the WAL's cache failed")
            }
            Err(e) => tracing::warn!(error = %e, "the WAL cache task failed"),
        }
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

/// Where the writer is in the log, as a passive checkpoint left it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    /// Frames in the log: the next commit writes after them.
    pub frames: i64,
    /// The checkpoint copied every frame.
    pub all_copied: bool,
    /// The log may start again from its beginning before the next round.
    pub restart_soon: bool,
}

/// Tells the kernel which parts of the log file's cache matter next:
/// - **Read ahead** [`PREFETCH_BYTES`] where the next commit writes, and at the beginning
///   when a restart may come first. Pages already cached cost a lookup; missing ones are
///   read in the background, so that the writer finds them there instead of waiting for
///   the disk. Nothing past the end of the file is asked for: appending needs no read.
/// - **Drop** what the next restart cuts off: with every frame copied and the file longer
///   than `journal_size_limit` (after a burst), the writer that restarts the log truncates
///   the file, and freeing the cached pages of the cut is what takes the time (12 ms for
///   about 140 MB, measured, with every commit waiting). The pages are clean (the checkpoint
///   synced the log before copying it), so dropping them loses nothing, and the truncate
///   then has nothing to free.
///
/// The file is opened for each call, so a log deleted and made again (when every
/// connection closed) is followed. Opening and closing it beside SQLite is safe: SQLite
/// takes no locks on the log file (its locks are on the database and `-shm` files).
pub(crate) fn steer_cache(
    path: &Path,
    at: Position,
    journal_size_limit: i64,
) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let offset =
        WAL_HEADER + u64::try_from(at.frames).unwrap_or(0) * (PAGE_SIZE as u64 + FRAME_HEADER);
    let head = (at.restart_soon && offset > 0).then_some(0);
    for from in std::iter::once(offset).chain(head) {
        if from < size {
            advise(
                &file,
                from,
                PREFETCH_BYTES.min(size - from),
                Advice::WillNeed,
            )?;
        }
    }
    // The restart writes from the beginning, so only the read-ahead there is kept.
    let limit = u64::try_from(journal_size_limit).unwrap_or(u64::MAX);
    let cut = limit.max(PREFETCH_BYTES);
    if at.all_copied && cut < size {
        advise(&file, cut, size - cut, Advice::DontNeed)?;
    }
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
use rustix::fs::Advice;

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn advise(file: &std::fs::File, offset: u64, len: u64, advice: Advice) -> std::io::Result<()> {
    rustix::fs::fadvise(file, offset, std::num::NonZeroU64::new(len), advice)?;
    Ok(())
}

/// Elsewhere the kernel manages its cache alone.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
#[derive(Clone, Copy)]
enum Advice {
    WillNeed,
    DontNeed,
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn advise(_file: &std::fs::File, _offset: u64, _len: u64, _advice: Advice) -> std::io::Result<()> {
    Ok(())
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

#[cfg(all(test, target_os = "linux"))]
#[allow(
    unsafe_code,
    reason = "mmap and mincore, to see which pages the kernel holds; test-only"
)]
mod tests {
    use std::io::Write as _;
    use std::os::fd::AsRawFd as _;

    use super::*;

    const MIB: usize = 1 << 20;

    /// Which 4 KiB pages of the file are in the kernel's cache.
    fn resident(file: &std::fs::File, len: usize) -> Vec<bool> {
        // SAFETY: a read-only shared mapping of an open file, unmapped before returning;
        // mincore only fills `vec`, which has a byte per page.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(addr, libc::MAP_FAILED, "mmap");
            let mut vec = vec![0u8; len.div_ceil(4096)];
            assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0, "mincore");
            libc::munmap(addr, len);
            vec.into_iter().map(|b| b & 1 == 1).collect()
        }
    }

    fn evict(file: &std::fs::File, len: usize) {
        advise(file, 0, len as u64, Advice::DontNeed).unwrap();
    }

    /// Waits until `pages` are all cached: the reads are asynchronous, and behind a test
    /// suite's other writes the disk once took over 5 s to serve 8 MiB; 60 s at
    /// most, which only a machine that never reads them in waits out.
    fn wait_cached(file: &std::fs::File, len: usize, pages: std::ops::Range<usize>) -> Vec<bool> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = resident(file, len);
            if now[pages.clone()].iter().all(|&r| r) || Instant::now() > deadline {
                return now;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn at(frames: usize, all_copied: bool, restart_soon: bool) -> Position {
        Position {
            frames: frames as i64,
            all_copied,
            restart_soon,
        }
    }

    #[test]
    fn the_log_is_read_ahead_of_the_writer_and_what_a_restart_cuts_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paydesk.db-wal");
        let len = 24 * MIB;
        let limit = 12 * MIB as i64;
        {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(&vec![7u8; len]).unwrap();
            f.sync_all().unwrap();
        }
        let file = std::fs::File::open(&path).unwrap();
        evict(&file, len);
        if resident(&file, len).iter().any(|&r| r) {
            // tmpfs and the like keep every page: nothing to observe here.
            eprintln!("skipped: this file system does not drop cached pages on request");
            return;
        }
        let page = |bytes: usize| bytes / 4096;
        let prefetched = page(PREFETCH_BYTES as usize);

        // The writer is at frame 1,000 (4.1 MB in): the 8 MiB after it come in; the file's
        // beginning and its end stay out.
        let frames = 1_000;
        let writer =
            page(WAL_HEADER as usize + frames * (PAGE_SIZE as usize + FRAME_HEADER as usize));
        let ahead = writer..writer + prefetched;
        steer_cache(&path, at(frames, false, false), limit).unwrap();
        let cached = wait_cached(&file, len, ahead.clone());
        assert!(
            cached[ahead].iter().all(|&r| r),
            "the 8 MiB ahead of the writer were not read in"
        );
        assert!(
            !cached[0],
            "the beginning was read without a restart in sight"
        );
        assert!(!cached[page(len) - 1], "the file's end was read");

        // A restart is near: the beginning, where the next commits will write, comes in too.
        evict(&file, len);
        steer_cache(&path, at(frames, false, true), limit).unwrap();
        let head = 0..prefetched;
        let cached = wait_cached(&file, len, head.clone());
        assert!(
            cached[head].iter().all(|&r| r),
            "the log's beginning was not read in"
        );
        assert!(!cached[page(len) - 1], "the file's end was read");

        // Everything copied after a burst, the writer at the end of a file past its limit:
        // what the restart will cut (from 12 MiB) leaves the cache; the rest stays.
        std::io::Read::read_to_end(&mut std::fs::File::open(&path).unwrap(), &mut Vec::new())
            .unwrap();
        assert!(
            resident(&file, len).iter().all(|&r| r),
            "reading the file cached it"
        );
        let at_end = (len - WAL_HEADER as usize) / (PAGE_SIZE as usize + FRAME_HEADER as usize);
        steer_cache(&path, at(at_end, true, true), limit).unwrap();
        let cached = resident(&file, len);
        let cut = page(limit as usize);
        assert!(
            cached[..cut].iter().all(|&r| r),
            "pages before the limit were dropped"
        );
        assert!(
            cached[cut..].iter().all(|&r| !r),
            "pages past the limit stayed"
        );

        // Not everything copied: no restart comes, so nothing is dropped.
        std::io::Read::read_to_end(&mut std::fs::File::open(&path).unwrap(), &mut Vec::new())
            .unwrap();
        steer_cache(&path, at(frames, false, true), limit).unwrap();
        assert!(
            resident(&file, len).iter().all(|&r| r),
            "pages were dropped with frames left to copy"
        );

        // A missing log (no connection open) is NotFound, which the checkpointer ignores.
        let missing =
            steer_cache(&dir.path().join("none-wal"), at(0, true, true), limit).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }
}
