//! The wait for the disk off the committer's path, on both engines. The committer commits a
//! batch without waiting for its log to reach the disk, hands the batch's answers here, and
//! goes on to the next batch; this side makes the log durable and only then answers. One
//! flush covers every batch committed before it began, so while the disk is busy the
//! batches that arrive meanwhile share the next one.
//!
//! **SQLite** ([`How::LogFile`]): the committer's connection runs `synchronous =
//! normal`, and the `-wal` file is fsynced here. That is as durable as `full`: in WAL
//! mode the only thing `full` adds to `normal` is an fsync of the log file after each
//! commit (SQLite's documentation of `pragma synchronous`), and a commit is durable once
//! its frames, commit frame included, are on disk. Here the same fsync runs after the
//! commit and before anyone hears of it. The log file is never deleted while the
//! committer's connection is open, and when a checkpoint lets the log start again from its
//! beginning, SQLite has synced the log before copying it and the database file after, in
//! `normal` as in `full`: frames a later commit overwrites were durable in the database
//! file first. The fsync is of the file, not of one descriptor (Linux `fsync(2)`), so the
//! descriptor opened here covers what SQLite's own wrote.
//!
//! **PostgreSQL** ([`How::Wal`]): the batch's transaction runs `set local
//! synchronous_commit = off`, so its `COMMIT` returns once the commit record is in the
//! server's WAL buffers; then one `select txid_current()` in a transaction of its own,
//! with the session's `synchronous_commit` (on by default), is answered only once the WAL
//! up to its own commit record is flushed (and, with synchronous replication configured,
//! confirmed by the standby). The WAL is one sequence, so that covers every batch committed
//! before it. A transaction without a transaction id would commit without waiting:
//! `txid_current()` is what assigns one.
//!
//! Before this, the committer itself waited for each commit's flush (0.25–0.7 ms on an
//! idle disk, tens of milliseconds while the kernel writes back other dirty pages), and
//! nothing else could be committed meanwhile (docs/benchmarks.md, issue 18).
//!
//! If the flush fails, whether the batches reached the disk is unknown (after a failed
//! fsync Linux may even drop the dirty pages): the batches waiting are answered with an
//! error (WeChat Pay is told FAIL and resends; the resend finds the order as committed and
//! is answered after a flush of its own), and every later round flushes again before
//! answering.

use std::future::Future;
use std::path::{Path, PathBuf};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::super::payment::Applied;
use crate::CoreError;

/// A committed batch: each caller's answer channel with its result.
pub(super) type Committed = Vec<(oneshot::Sender<Result<Applied, CoreError>>, Applied)>;

/// What makes a commit durable (module docs).
#[derive(Clone)]
pub(super) enum How {
    /// SQLite: fsync of the database's `-wal` file.
    LogFile(PathBuf),
    /// PostgreSQL: a flush of the server's WAL.
    Wal(AnyPool),
}

/// What the batch's transaction runs first on PostgreSQL when a [`Durable`] answers it.
pub(super) const ASYNC_COMMIT: &str = "set local synchronous_commit = off";

impl How {
    async fn flush(&self) -> Result<(), String> {
        match self {
            How::LogFile(path) => {
                let path = path.clone();
                match tokio::task::spawn_blocking(move || sync_file(&path)).await {
                    Ok(synced) => synced.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            // A transaction with a transaction id, committed with the session's
            // `synchronous_commit`: it returns once the WAL up to it is flushed.
            How::Wal(pool) => sqlx::query("select txid_current()")
                .execute(pool)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
        }
    }
}

/// fsync (data and the size) of the file at `path`.
fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_data()
}

/// The committer hands each committed batch to [`Durable::answer_when_durable`].
pub(super) struct Durable {
    tx: mpsc::UnboundedSender<Committed>,
    how: How,
}

impl Durable {
    /// Starts the task that flushes and answers; `after` is called once per flush (the
    /// metrics).
    pub(super) fn start(how: How, after: impl Fn() + Send + 'static) -> Durable {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = how.clone();
        drop(tokio::spawn(async move {
            run(rx, || task.flush(), after).await;
        }));
        Durable { tx, how }
    }

    /// Answers `batch` once it is durable: on the flushing task, or here after a flush of
    /// its own when that task is gone.
    pub(super) async fn answer_when_durable(&self, batch: Committed) {
        if let Err(mpsc::error::SendError(batch)) = self.tx.send(batch) {
            answer(vec![batch], &self.how.flush().await);
        }
    }
}

/// Until the committer goes: takes every batch waiting, flushes once, answers them all.
async fn run<F, Fut>(mut rx: mpsc::UnboundedReceiver<Committed>, mut flush: F, after: impl Fn())
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(batch) = rx.try_recv() {
            waiting.push(batch);
        }
        let flushed = flush().await;
        after();
        answer(waiting, &flushed);
    }
}

/// Each caller its result once `flushed` succeeded; an error for each when it failed.
fn answer(batches: Vec<Committed>, flushed: &Result<(), String>) {
    if let Err(e) = flushed {
        tracing::error!(error = %e, batches = batches.len(), "the log could not be flushed to disk; answering the committed notifications with an error");
    }
    for (reply, result) in batches.into_iter().flatten() {
        let _ = reply.send(match flushed {
            Ok(()) => Ok(result),
            Err(_) => Err(CoreError::Internal(anyhow::anyhow!(
                "the log could not be flushed to disk"
            ))),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::notify::{decide, Verdict};

    type Answer = oneshot::Receiver<Result<Applied, CoreError>>;

    fn applied(id: i64) -> Applied {
        (decide(Verdict::Applied, ""), id, None)
    }

    /// A batch of `n` answers, and their receivers.
    fn batch(n: i64) -> (Committed, Vec<Answer>) {
        (0..n)
            .map(|id| {
                let (tx, rx) = oneshot::channel();
                ((tx, applied(id)), rx)
            })
            .unzip()
    }

    /// The loop with a stand-in flush that waits for the test's word; the flushes begun
    /// and the ones reported to the metrics.
    fn start(
        disk: mpsc::UnboundedReceiver<Result<(), String>>,
    ) -> (
        mpsc::UnboundedSender<Committed>,
        Arc<AtomicUsize>,
        Arc<AtomicUsize>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (begun, reported) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (b, r) = (begun.clone(), reported.clone());
        let disk = Arc::new(tokio::sync::Mutex::new(disk));
        tokio::spawn(async move {
            run(
                rx,
                || {
                    b.fetch_add(1, Ordering::SeqCst);
                    let disk = disk.clone();
                    async move { disk.lock().await.recv().await.unwrap() }
                },
                move || {
                    r.fetch_add(1, Ordering::SeqCst);
                },
            )
            .await
        });
        (tx, begun, reported)
    }

    async fn wait_for(what: &AtomicUsize, n: usize) {
        for _ in 0..1000 {
            if what.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("waited in vain for {n}");
    }

    fn unanswered(rx: &mut Answer) -> bool {
        matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))
    }

    async fn ids(answers: Vec<Answer>) -> Vec<i64> {
        let mut ids = Vec::new();
        for rx in answers {
            ids.push(rx.await.unwrap().unwrap().1);
        }
        ids
    }

    #[tokio::test]
    async fn nobody_is_answered_before_the_flush_and_one_flush_covers_the_waiting() {
        let (disk, results) = mpsc::unbounded_channel();
        let (tx, begun, reported) = start(results);
        let (first, mut first_rx) = batch(2);
        tx.send(first).unwrap();
        wait_for(&begun, 1).await;
        // The flush is under way: no answer yet; two more batches arrive meanwhile.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(first_rx.iter_mut().all(unanswered));
        let (second, mut second_rx) = batch(3);
        let (third, third_rx) = batch(1);
        tx.send(second).unwrap();
        tx.send(third).unwrap();
        disk.send(Ok(())).unwrap();
        assert_eq!(
            ids(first_rx).await,
            [0, 1],
            "each caller gets its own answer"
        );
        // The two later ones wait for a flush that began after their commit.
        wait_for(&begun, 2).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(unanswered(&mut second_rx[0]));
        disk.send(Ok(())).unwrap();
        second_rx.extend(third_rx);
        assert_eq!(ids(second_rx).await, [0, 1, 2, 0]);
        assert_eq!(begun.load(Ordering::SeqCst), 2, "one flush for both");
        assert_eq!(
            reported.load(Ordering::SeqCst),
            2,
            "the metrics count each flush"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_answers_an_error_and_the_next_round_flushes_again() {
        let (disk, results) = mpsc::unbounded_channel();
        let (tx, begun, _) = start(results);
        let (first, first_rx) = batch(2);
        tx.send(first).unwrap();
        disk.send(Err("EIO".to_owned())).unwrap();
        for rx in first_rx {
            assert!(
                rx.await.unwrap().is_err(),
                "a failed flush is never SUCCESS"
            );
        }
        let (second, second_rx) = batch(1);
        tx.send(second).unwrap();
        disk.send(Ok(())).unwrap();
        assert_eq!(ids(second_rx).await, [0]);
        assert_eq!(begun.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_log_file_is_synced_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paydesk.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        How::LogFile(path).flush().await.unwrap();
        assert!(How::LogFile(dir.path().join("none-wal"))
            .flush()
            .await
            .is_err());
    }

    /// PostgreSQL: the flush is a real transaction, and a batch's transaction may turn its
    /// own synchronous commit off.
    #[tokio::test]
    async fn the_wal_flush_runs_on_postgres() {
        let Some(t) = crate::testing::postgres().await.unwrap() else {
            return;
        };
        let pool = t.db.writer().clone();
        How::Wal(pool.clone()).flush().await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(ASYNC_COMMIT).execute(&mut *tx).await.unwrap();
        let level: String = sqlx::query_scalar("show synchronous_commit")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert_eq!(level, "off");
        tx.commit().await.unwrap();
    }
}
