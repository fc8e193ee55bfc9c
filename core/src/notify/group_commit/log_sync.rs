//! SQLite: the log's fsync off the committer's path. The committer commits a batch without
//! waiting for the disk (`synchronous = normal` on its connection), hands the batch's
//! answers here, and goes on to the next batch; this thread fsyncs the write-ahead log and
//! only then answers. One fsync covers every batch committed before it began, so while the
//! disk is busy the batches that arrive meanwhile share the next one.
//!
//! Why this is as durable as `synchronous = full`: in WAL mode the only thing `full` adds
//! to `normal` is an fsync of the log file after each commit (SQLite's documentation of
//! `pragma synchronous`); a commit is durable once its frames, commit frame included, are
//! on disk. Here the same fsync runs after the commit and before anyone hears of it, so
//! what is answered SUCCESS has been on disk first. The log file is never deleted while the
//! committer's connection is open, and when a checkpoint lets the log start again from its
//! beginning, SQLite has synced the log before copying it and the database file after, in
//! `normal` as in `full`: frames a later commit overwrites were durable in the database
//! file first. The fsync is of the file, not of one descriptor (Linux `fsync(2)`), so the
//! descriptor opened here covers what SQLite's own wrote.
//!
//! Before this, the committer itself waited for each commit's fsync (0.25–0.7 ms on an
//! idle disk, tens of milliseconds while the kernel writes back other dirty pages), and
//! nothing else could be committed meanwhile (docs/benchmarks.md, issue 18).
//!
//! If the fsync fails, what the kernel still holds is unknown (after a failed fsync Linux
//! may drop the dirty pages): the batches waiting are answered with an error (WeChat Pay
//! is told FAIL and resends; the resend finds the order as committed), and every later
//! round fsyncs again before answering.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use super::super::payment::Applied;
use crate::CoreError;

/// A committed batch: each caller's answer channel with its result.
pub(super) type Committed = Vec<(
    tokio::sync::oneshot::Sender<Result<Applied, CoreError>>,
    Applied,
)>;

/// The sending side: the committer hands each committed batch to
/// [`LogSync::answer_when_synced`].
pub(super) struct LogSync {
    tx: mpsc::Sender<Committed>,
    log: PathBuf,
}

impl LogSync {
    /// Starts the thread that fsyncs `log` (the database's `-wal` file) and answers; `after`
    /// is called once per fsync (the metrics).
    pub(super) fn start(
        log: PathBuf,
        after: impl Fn() + Send + 'static,
    ) -> std::io::Result<LogSync> {
        let (tx, rx) = mpsc::channel();
        let path = log.clone();
        std::thread::Builder::new()
            .name("paydesk-log-sync".into())
            .spawn(move || run(&rx, || sync_file(&path), after))?;
        Ok(LogSync { tx, log })
    }

    /// Answers `batch` once the log is on disk: on the log's thread, or here after an fsync
    /// of its own when that thread is gone.
    pub(super) fn answer_when_synced(&self, batch: Committed) {
        if let Err(mpsc::SendError(batch)) = self.tx.send(batch) {
            answer(vec![batch], &sync_file(&self.log));
        }
    }
}

/// fsync (data and the size) of the file at `path`.
fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_data()
}

/// Until the committer goes: takes every batch waiting, fsyncs once, answers them all.
fn run(
    rx: &mpsc::Receiver<Committed>,
    mut sync: impl FnMut() -> std::io::Result<()>,
    after: impl Fn(),
) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let synced = sync();
        after();
        answer(waiting, &synced);
    }
}

/// Each caller its result once `synced` succeeded; an error for each when it failed.
fn answer(batches: Vec<Committed>, synced: &std::io::Result<()>) {
    if let Err(e) = synced {
        tracing::error!(error = %e, batches = batches.len(), "the write-ahead log could not be synced to disk; answering the committed notifications with an error");
    }
    for (reply, result) in batches.into_iter().flatten() {
        let _ = reply.send(match synced {
            Ok(()) => Ok(result),
            Err(_) => Err(CoreError::Internal(anyhow::anyhow!(
                "the write-ahead log could not be synced to disk"
            ))),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::notify::{decide, Verdict};

    fn applied(id: i64) -> Applied {
        (decide(Verdict::Applied, ""), id, None)
    }

    /// A batch of `n` answers, and their receivers.
    fn batch(
        n: i64,
    ) -> (
        Committed,
        Vec<oneshot::Receiver<Result<Applied, CoreError>>>,
    ) {
        (0..n)
            .map(|id| {
                let (tx, rx) = oneshot::channel();
                ((tx, applied(id)), rx)
            })
            .unzip()
    }

    /// The thread with a stand-in fsync that waits for the test's word.
    fn start(
        results: mpsc::Receiver<std::io::Result<()>>,
    ) -> (mpsc::Sender<Committed>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let (tx, rx) = mpsc::channel();
        let (syncs, reported) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (s, r) = (syncs.clone(), reported.clone());
        std::thread::spawn(move || {
            run(
                &rx,
                || {
                    s.fetch_add(1, Ordering::SeqCst);
                    results.recv().unwrap()
                },
                move || {
                    r.fetch_add(1, Ordering::SeqCst);
                },
            )
        });
        (tx, syncs, reported)
    }

    fn wait_for(what: &AtomicUsize, n: usize) {
        for _ in 0..1000 {
            if what.load(Ordering::SeqCst) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("waited in vain for {n}");
    }

    #[test]
    fn nobody_is_answered_before_the_log_is_on_disk_and_one_fsync_covers_the_waiting() {
        let (disk, results) = mpsc::channel();
        let (tx, syncs, reported) = start(results);
        let (first, mut first_rx) = batch(2);
        tx.send(first).unwrap();
        wait_for(&syncs, 1);
        // The fsync is under way: no answer yet; two more batches arrive meanwhile.
        std::thread::sleep(Duration::from_millis(20));
        assert!(first_rx
            .iter_mut()
            .all(|rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))));
        let (second, mut second_rx) = batch(3);
        let (third, third_rx) = batch(1);
        tx.send(second).unwrap();
        tx.send(third).unwrap();
        disk.send(Ok(())).unwrap();
        let ids: Vec<i64> = first_rx
            .into_iter()
            .map(|rx| rx.blocking_recv().unwrap().unwrap().1)
            .collect();
        assert_eq!(ids, [0, 1], "each caller gets its own answer");
        // The two later ones wait for an fsync that began after their commit.
        wait_for(&syncs, 2);
        std::thread::sleep(Duration::from_millis(20));
        assert!(matches!(
            second_rx[0].try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        ));
        disk.send(Ok(())).unwrap();
        let ids: Vec<i64> = second_rx
            .into_iter()
            .chain(third_rx)
            .map(|rx| rx.blocking_recv().unwrap().unwrap().1)
            .collect();
        assert_eq!(ids, [0, 1, 2, 0]);
        assert_eq!(syncs.load(Ordering::SeqCst), 2, "one fsync for both");
        assert_eq!(
            reported.load(Ordering::SeqCst),
            2,
            "the metrics count each fsync"
        );
    }

    #[test]
    fn a_failed_fsync_answers_an_error_and_the_next_round_syncs_again() {
        let (disk, results) = mpsc::channel();
        let (tx, syncs, _) = start(results);
        let (first, first_rx) = batch(2);
        tx.send(first).unwrap();
        disk.send(Err(std::io::Error::other("EIO"))).unwrap();
        for rx in first_rx {
            let answer = rx.blocking_recv().unwrap();
            assert!(answer.is_err(), "a failed fsync is never SUCCESS");
        }
        let (second, second_rx) = batch(1);
        tx.send(second).unwrap();
        disk.send(Ok(())).unwrap();
        for rx in second_rx {
            assert!(rx.blocking_recv().unwrap().is_ok());
        }
        assert_eq!(syncs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_log_file_is_synced_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paydesk.db-wal");
        std::fs::write(&path, b"frames").unwrap();
        sync_file(&path).unwrap();
        assert!(sync_file(&dir.path().join("none-wal")).is_err());
    }
}
