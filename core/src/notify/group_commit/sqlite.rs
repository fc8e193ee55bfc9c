//! SQLite's group commit in plain function calls: the batch's transaction runs through
//! SQLite's C API (crate::sqlite_raw) with statements prepared once, on the committing
//! task's own thread.
//!
//! Why: sqlx-sqlite runs every connection on a worker thread of its own, and each statement
//! — `BEGIN`, the update, the read, the insert, `COMMIT` — is a message to that thread and
//! an answer back: two thread wake-ups per statement, strictly one after another on the
//! single writer. Here a whole batch is one run of ordinary calls, so the per-row
//! statements are cheap and the batch needs no multi-row SQL built per batch size: each
//! notification gets the same update, read and insert as the one-by-one path ([`apply`]),
//! in one transaction. The result is the same as applying them one after the other.
//!
//! Why a connection of our own, not the writer pool's: the pool is an `AnyPool`, whose
//! connections do not expose the SQLite handle. SQLite's lock (`BEGIN IMMEDIATE`) keeps
//! the two connections' writes apart; to keep "one writer at a time" an orderly queue
//! inside the process, a batch that finds the writer pool's connection taken (another
//! write open or waiting) queues for it and holds it while its transaction runs
//! ([`super::run_sqlite`]); other processes are handled by `BEGIN IMMEDIATE` and the busy
//! timeout.
//!
//! [`apply`]: super::super::payment::apply

use std::path::Path;

use super::super::elapsed_us;
use super::super::payment::{applied, not_applied, Applied};
use super::Request;
use crate::orders::transitions::raw_sqlite;
use crate::sqlite_raw::{Handle, StatementId, Stepped, Value};
use crate::{now_ms, CoreError};

/// An SQLite connection for the committing task, with its statements prepared.
pub(super) struct Connection {
    handle: Handle,
    begin: StatementId,
    commit: StatementId,
    rollback: StatementId,
    /// The same conditional update as the one-by-one path: only `NOTPAY → PAID`.
    pay: raw_sqlite::Pay,
    select: StatementId,
    insert: StatementId,
    checkpoint: StatementId,
}

const SELECT: &str = "select status, transaction_id from orders where id = ?1";
pub(crate) const INSERT: &str = "insert into notifications (kind, received_at, peer, raw_body, \
     out_trade_no, transaction_id, total_fee, verdict, detail, reply, duration_us, order_id, \
     created_at, updated_at) values ('payment', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
     ?12, ?12)";

impl Connection {
    /// Opens the (existing, migrated) database file with the same settings as the pools'
    /// connections (db.rs) and prepares the statements.
    /// `journal_size_limit`: what the log file is cut back to when this connection restarts
    /// it (wal.rs); `None` leaves SQLite's default. `max_pages`: the pools' page limit
    /// (db.rs, `PoolSizes::max_pages`).
    pub(super) fn open(
        path: &Path,
        journal_size_limit: Option<i64>,
        max_pages: Option<u64>,
    ) -> Result<Connection, CoreError> {
        // No busy timeout: SQLite's busy handler would sleep on this thread (a tokio
        // worker); the committing task waits for the lock itself (super::begin_sqlite).
        // Statement journals: the update fires the totals' and the alert's triggers, so
        // SQLite keeps each statement's original pages to undo it alone. They stay in
        // memory, in one piece, up to 1 MiB (sqlite_raw::STATEMENT_JOURNAL_SPILL, set for
        // the process in configure_once); at SQLite's default of 64 KiB a batch of 15 wrote
        // ~160 pages to a temporary file, more write calls than the log itself (strace,
        // docs/benchmarks.md, issue 18). Not `temp_store = memory`: that keeps them in
        // 1 KiB pieces, a malloc and a free each.
        let setup = crate::db::sqlite_pragmas(0, journal_size_limit, max_pages).join("; ");
        let mut handle = Handle::open(path, &setup)?;
        Ok(Connection {
            begin: handle.prepare("begin immediate")?,
            commit: handle.prepare("commit")?,
            rollback: handle.prepare("rollback")?,
            pay: raw_sqlite::Pay::prepare(&mut handle)?,
            select: handle.prepare(SELECT)?,
            insert: handle.prepare(INSERT)?,
            checkpoint: handle.prepare("pragma wal_checkpoint(passive)")?,
            handle,
        })
    }

    /// Opens the write transaction (`BEGIN IMMEDIATE`). `Ok(false)`: another connection
    /// holds the write lock (another process: this one's writes wait for the committing
    /// task); the caller waits and tries again.
    pub(super) fn begin(&mut self) -> Result<bool, CoreError> {
        Ok(matches!(
            self.handle.try_step(self.begin, &[], |_| ())?,
            Stepped::Done(())
        ))
    }

    /// Pages written (log frames) and read from the file since the last call.
    pub(super) fn take_page_counters(&self) -> (u64, u64) {
        self.handle.take_page_counters()
    }

    /// A passive checkpoint, outside any transaction: `(frames in the log, frames copied)`,
    /// or `None` when another connection's checkpoint is running.
    pub(super) fn checkpoint(&mut self) -> Result<Option<(i64, i64)>, CoreError> {
        let row = self.handle.try_step(self.checkpoint, &[], |row| {
            row.map(|row| (row.int(0), row.int(1), row.int(2)))
        })?;
        Ok(match row {
            Stepped::Done(Some((0, frames, copied))) => Some((frames, copied)),
            Stepped::Done(_) | Stepped::Busy => None,
        })
    }

    /// In the transaction [`Connection::begin`] opened: applies and records the batch,
    /// and every request `more` yields once those are done (up to `max` in all), then
    /// commits; the results in the batch's order, which then holds every request taken.
    /// On any error the transaction is rolled back and nothing of it stays.
    ///
    /// Why `more`: a notification that arrives while the batch runs joins this
    /// transaction instead of waiting for its commit and then for a whole batch of its
    /// own. The commit (the fsync) is the only moment arrivals wait for others.
    pub(super) fn apply_and_commit(
        &mut self,
        batch: &mut Vec<Request>,
        max: usize,
        mut more: impl FnMut() -> Option<Request>,
    ) -> Result<Vec<Applied>, CoreError> {
        let result = self.apply_all(batch, max, &mut more).and_then(|applied| {
            self.handle.step(self.commit, &[], |_| ())?;
            Ok(applied)
        });
        if result.is_err() && !self.handle.autocommit() {
            // Still inside the transaction (a statement or COMMIT itself failed).
            if let Err(e) = self.handle.step(self.rollback, &[], |_| ()) {
                tracing::error!(error = %e, "rolling back a notification batch failed");
            }
        }
        result
    }

    /// For each request, one after the other (those `more` adds last, while fewer than
    /// `max` and while `more` yields them: the caller bounds the time): the conditional
    /// update; if it did not take, the order's state to judge it by; then its
    /// `notifications` row.
    fn apply_all(
        &self,
        batch: &mut Vec<Request>,
        max: usize,
        more: &mut dyn FnMut() -> Option<Request>,
    ) -> Result<Vec<Applied>, CoreError> {
        let mut results = Vec::with_capacity(batch.len());
        loop {
            if results.len() == batch.len() {
                match (batch.len() < max).then(&mut *more).flatten() {
                    Some(request) => batch.push(request),
                    None => return Ok(results),
                }
            }
            // Each its own time: one that joined late is not stamped before it arrived.
            results.push(self.apply(&batch[results.len()], now_ms())?);
        }
    }

    /// One request of [`Connection::apply_all`].
    fn apply(&self, r: &Request, now: i64) -> Result<Applied, CoreError> {
        let h = &self.handle;
        let payment = r.payment(now);
        let transaction_id = payment.transaction_id;
        let paid_at = payment.paid_at;
        let (decision, event) = if self.pay.run(h, r.order.id, &payment, now)? {
            applied(&r.order, transaction_id, paid_at)
        } else {
            let state = h.step(self.select, &[Value::Int(r.order.id)], |row| {
                row.map(|row| -> Result<_, CoreError> {
                    Ok((row.text(0)?.to_owned(), row.opt_text(1)?.map(str::to_owned)))
                })
            })?;
            let (status, stored_tid) = state.ok_or(CoreError::NotFound)??;
            (
                not_applied(&status, stored_tid.as_deref(), transaction_id)?,
                None,
            )
        };
        h.step(
            self.insert,
            &[
                Value::Int(r.received_at),
                Value::opt_text(r.peer.as_deref()),
                Value::Text(&r.raw_body),
                Value::opt_text(r.findings.out_trade_no.as_deref()),
                Value::opt_text(r.findings.transaction_id.as_deref()),
                Value::opt_int(r.findings.total_fee),
                Value::Text(decision.verdict.as_str()),
                Value::Text(&decision.detail),
                Value::Text(decision.verdict.reply_code()),
                Value::Int(elapsed_us(r.started)),
                Value::opt_int(r.findings.order_id),
                Value::Int(now),
            ],
            |_| (),
        )?;
        Ok((decision, h.last_insert_rowid(), event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verified request for the stored order `no` (100 fen), as the receiver queues it.
    async fn request(db: &crate::Db, no: &str) -> Request {
        let body = crate::testing::paid_notification(no, 100);
        let n = wxpay::notify::ParsedPaymentNotification::parse(&body)
            .unwrap()
            .verify(
                &crate::testing::merchant().api_key,
                Some(wxpay::SignType::Md5),
            )
            .unwrap();
        let order = crate::orders::find_key_by_out_trade_no(db, no)
            .await
            .unwrap()
            .unwrap();
        let findings = crate::notify::Findings {
            out_trade_no: Some(no.to_owned()),
            transaction_id: n.transaction_id.clone(),
            total_fee: Some(n.total_fee),
            order_id: Some(order.id),
            verified: true,
            ..Default::default()
        };
        Request {
            received_at: crate::now_ms(),
            peer: None,
            raw_body: std::sync::Arc::from(String::from_utf8(body).unwrap()),
            findings,
            order,
            n: Box::new(n),
            started: std::time::Instant::now(),
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    /// What arrives while a batch runs joins its transaction, up to the limit: one commit
    /// pays the orders, a copy among the late ones is judged a duplicate from what the
    /// transaction already did, and what is over the limit waits for the next batch.
    #[tokio::test]
    async fn requests_arriving_while_a_batch_runs_join_its_transaction() {
        let t = crate::testing::sqlite().await.unwrap();
        for no in ["join-1", "join-2", "join-3"] {
            crate::testing::create_order(&t.db, no, 100).await;
        }
        let file = t.db.sqlite_file().unwrap().to_owned();
        let mut conn = Connection::open(&file, Some(1 << 20), None).unwrap();
        let mut batch = vec![request(&t.db, "join-1").await];
        let mut arriving = vec![
            request(&t.db, "join-2").await,
            request(&t.db, "join-1").await,
            request(&t.db, "join-3").await,
        ]
        .into_iter();
        let _ = conn.take_page_counters();
        assert!(conn.begin().unwrap());
        let results = conn
            .apply_and_commit(&mut batch, 3, || arriving.next())
            .unwrap();
        assert!(conn.handle.autocommit(), "committed");
        let taken: Vec<&str> = batch
            .iter()
            .map(|r| r.order.out_trade_no.as_str())
            .collect();
        assert_eq!(taken, ["join-1", "join-2", "join-1"]);
        let verdicts: Vec<&str> = results.iter().map(|(d, _, _)| d.verdict.as_str()).collect();
        assert_eq!(verdicts, ["applied", "applied", "duplicate"]);
        assert_eq!(arriving.len(), 1, "the fourth waits for the next batch");
        for (no, status) in [("join-1", "PAID"), ("join-2", "PAID"), ("join-3", "NOTPAY")] {
            let order = crate::testing::stored_order(&t.db, no).await;
            assert_eq!(order.status.as_str(), status, "{no}");
        }
    }

    /// A request that joined and fails takes the whole transaction with it: nothing of the
    /// batch stays, and the batch holds every request taken, for the one-by-one path to
    /// answer each of them.
    #[tokio::test]
    async fn a_failing_joiner_rolls_back_the_whole_batch_and_stays_in_it() {
        let t = crate::testing::sqlite().await.unwrap();
        for no in ["fail-1", "fail-2"] {
            crate::testing::create_order(&t.db, no, 100).await;
        }
        let file = t.db.sqlite_file().unwrap().to_owned();
        let mut conn = Connection::open(&file, Some(1 << 20), None).unwrap();
        let mut batch = vec![request(&t.db, "fail-1").await];
        let mut gone = request(&t.db, "fail-2").await;
        gone.order.id = i64::MAX;
        let mut arriving = vec![gone].into_iter();
        assert!(conn.begin().unwrap());
        let failed = conn.apply_and_commit(&mut batch, 8, || arriving.next());
        assert!(matches!(failed, Err(CoreError::NotFound)), "not found");
        assert!(conn.handle.autocommit(), "rolled back");
        assert_eq!(batch.len(), 2, "the joiner is in the batch to be answered");
        let order = crate::testing::stored_order(&t.db, "fail-1").await;
        assert_eq!(order.status.as_str(), "NOTPAY");
    }

    /// The connection that commits before SUCCESS is answered syncs every commit, like the
    /// pools' (the repository test checks theirs): `synchronous = full` (2).
    #[tokio::test]
    async fn the_committers_connection_is_durable() {
        let t = crate::testing::sqlite().await.unwrap();
        let file = t.db.sqlite_file().unwrap().to_owned();
        let mut conn = Connection::open(&file, Some(1 << 20), None).unwrap();
        let synchronous = conn.handle.prepare("pragma synchronous").unwrap();
        let level = conn
            .handle
            .step(synchronous, &[], |row| row.map(|row| row.int(0)))
            .unwrap();
        assert_eq!(level, Some(2));
    }
}
