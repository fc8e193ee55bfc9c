//! Group commit for verified payment notifications: concurrent notifications share one write
//! transaction instead of queueing for the writer one transaction each.
//!
//! One committer per [`Db`] (a thread on SQLite, a task on PostgreSQL, see
//! [`POSTGRES_COMMITTERS`]) owns the apply queue. It takes every request waiting, and in one
//! transaction runs one conditional `update orders … where status = 'NOTPAY' returning id`
//! for all of them, one read of the orders that did not change (to tell a duplicate from a
//! conflict), and one multi-row insert of their `notifications` rows; then commits, and only
//! then answers each caller. There is no waiting for a batch to fill: while one commits, the
//! next gathers (on PostgreSQL the other tasks commit on other connections meanwhile), so an
//! idle server commits each notification alone at once. On SQLite the committer applies
//! the batch one request at a time, and what arrives meanwhile joins the same transaction
//! (`sqlite.rs`, `Connection::apply_and_commit`): only during the commit itself does an
//! arrival wait for others.
//!
//! Exactly once, as with one transaction per notification: the update is conditional on
//! `NOTPAY`, so an order changes at most once whatever else runs (other batches, the sync
//! job, another committing task or another instance on PostgreSQL: a concurrent update of
//! the same row waits for the first to commit, then finds it no longer `NOTPAY`). Within a
//! batch only the first request for an order takes part in the update; the later ones are
//! decided from the order as it is after it, exactly as if they had run one after the
//! other. If the shared transaction fails (a deadlock with another instance included),
//! nothing of it stays (rollback) and each request is applied again on its own, so one bad
//! row cannot fail the others. A caller whose request never comes back (the task is gone)
//! applies it itself.
//!
//! The order itself is not read here: its id comes from the notification check, from
//! memory when held (`order_keys.rs`: only columns that never change are held there).

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use wxpay::notify::PaymentNotification;

mod sqlite;

#[cfg(feature = "testing")]
pub(crate) use sqlite::INSERT as SQLITE_INSERT;

use super::payment::{applied, apply, not_applied, paid_at, Applied};
use super::{elapsed_us, Decision, Findings, NotificationRow};
use crate::events::Event;
use crate::orders::transitions::{self, Payment};
use crate::orders::OrderKey;
use crate::wal::Wal;
use crate::{now_ms, Backend, CoreError, Db};

/// The most notifications one transaction takes (at 11 bound values per notification row,
/// well under SQLite's and PostgreSQL's limits on bound parameters).
const MAX_BATCH: usize = 128;

/// Committing tasks on PostgreSQL. SQLite has one writer connection, so one task. Several
/// tasks on PostgreSQL (sharded by order id, so two of our transactions never wait on each
/// other's order rows and cannot deadlock) were measured in round 2 of docs/benchmarks.md
/// and were slower on the 2-core test machine, so PostgreSQL runs one task too; raise this
/// only with a measurement on the production machine.
const POSTGRES_COMMITTERS: usize = 1;

/// The sending side of a database's apply queues (kept in [`Db`], started on first use).
pub(crate) struct GroupCommit {
    queues: Vec<mpsc::UnboundedSender<Request>>,
}

impl fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// One verified notification waiting to be applied, with everything its row needs.
struct Request {
    received_at: i64,
    peer: Option<String>,
    raw_body: Arc<str>,
    findings: Findings,
    order: OrderKey,
    n: Box<PaymentNotification>,
    started: Instant,
    reply: oneshot::Sender<Result<Applied, CoreError>>,
}

impl Request {
    fn row(&self) -> NotificationRow<'_> {
        NotificationRow {
            received_at: self.received_at,
            peer: self.peer.as_deref(),
            raw_body: &self.raw_body,
            raw_length: None,
        }
    }

    fn transaction_id(&self) -> &str {
        self.n.transaction_id.as_deref().unwrap_or_default()
    }

    /// What paying its order sets.
    fn payment(&self, now: i64) -> Payment<'_> {
        Payment {
            transaction_id: self.transaction_id(),
            bank_type: self.n.bank_type.as_deref(),
            paid_at: paid_at(&self.n, now),
        }
    }
}

impl GroupCommit {
    /// Applies a verified notification for `order` and records it, answering once the
    /// transaction that holds both has committed.
    pub(super) async fn apply(
        db: &Db,
        row: &NotificationRow<'_>,
        raw_body: &Arc<str>,
        findings: &Findings,
        order: OrderKey,
        n: Box<PaymentNotification>,
        started: Instant,
    ) -> Result<Applied, CoreError> {
        let queues = &db
            .group_commit()
            .get_or_init(|| GroupCommit::start(db))
            .queues;
        let queue = &queues[order.id.rem_euclid(queues.len() as i64) as usize];
        let (reply, answer) = oneshot::channel();
        let request = Request {
            received_at: row.received_at,
            peer: row.peer.map(str::to_owned),
            raw_body: Arc::clone(raw_body),
            findings: findings.clone(),
            order,
            n,
            started,
            reply,
        };
        let request = match queue.send(request) {
            Ok(()) => match answer.await {
                Ok(result) => return result,
                Err(_) => None,
            },
            Err(mpsc::error::SendError(request)) => Some(request),
        };
        // The queue's task is gone (its runtime ended): apply here, alone. When the request
        // was lost inside the task, its outcome is unknown; the conditional update makes a
        // second attempt safe (it finds a duplicate if the first one committed).
        tracing::warn!("the notification apply queue is gone; applying directly");
        match request {
            Some(r) => apply(db.writer(), &r.row(), &r.findings, &r.order, &r.n, started).await,
            None => Err(CoreError::Internal(anyhow::anyhow!(
                "the notification apply queue stopped before answering"
            ))),
        }
    }

    fn start(db: &Db) -> GroupCommit {
        let committers = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => POSTGRES_COMMITTERS,
        };
        // The tasks hold the pool, not the Db: when the last Db clone goes, the senders go,
        // and the tasks end.
        let queues = (0..committers)
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                let writer = db.writer().clone();
                let wal = db.wal().cloned();
                let journal_size_limit = wal.as_deref().map(Wal::journal_size_limit);
                match db
                    .sqlite_file()
                    .map(|file| sqlite::Connection::open(file, journal_size_limit, db.max_pages()))
                {
                    Some(Ok(conn)) => {
                        let runtime = tokio::runtime::Handle::current();
                        let spawned = std::thread::Builder::new()
                            .name("paydesk-committer".into())
                            .spawn(move || run_sqlite(runtime, writer, conn, wal, rx));
                        if let Err(e) = spawned {
                            // The receiver went with the closure: every request falls back
                            // to applying itself (`GroupCommit::apply`).
                            tracing::error!(error = %e, "no thread for the notification committer");
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "no SQLite connection for group commit; committing through the writer pool");
                        drop(tokio::spawn(run(writer, rx, false)));
                    }
                    None => drop(tokio::spawn(run(writer, rx, true))),
                }
                tx
            })
            .collect();
        GroupCommit { queues }
    }
}

/// Where a [`Db`] keeps its queue.
pub(crate) type Slot = OnceLock<GroupCommit>;

/// `lock_rows`: PostgreSQL, where other instances commit batches too ([`commit`]).
async fn run(writer: AnyPool, mut rx: mpsc::UnboundedReceiver<Request>, lock_rows: bool) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcome = commit(&writer, &batch, lock_rows).await;
        answer(&writer, &mut batch, outcome).await;
    }
}

/// How long a SQLite batch's transaction keeps taking the notifications that arrive while
/// it runs (sqlite.rs, `Connection::apply_and_commit`): a few batches' worth at a million
/// orders (a batch of 22 took about 1 ms), so that its first callers' answers, and any other
/// write waiting for the lock, are not held back by a long run of late joiners (one that
/// must read cold pages from disk takes milliseconds).
const JOIN_FOR: Duration = Duration::from_millis(5);

/// How long the SQLite committer waits for another process's write lock before the batch
/// counts as failed (then applied one by one through the pool, with its busy timeout): the
/// same 5 s as the pools' `busy_timeout`.
const SQLITE_BUSY_WAIT: Duration = Duration::from_secs(5);

/// SQLite: each batch in one run of plain calls on the committer's connection
/// (`sqlite.rs`), on a thread of its own. The commit waits for the disk (`synchronous =
/// full`: one fsync per batch) and may wait for pages the kernel must read back; on a tokio
/// worker each such wait stopped that worker from receiving and verifying the next
/// notifications, so on two cores half the server sat idle while the batch it was gathering
/// grew (docs/benchmarks.md, issue 18). Here only this thread waits.
///
/// When another write of this process holds or waits for the writer pool's one
/// connection, the batch waits for it in the pool's queue first.
fn run_sqlite(
    runtime: tokio::runtime::Handle,
    writer: AnyPool,
    mut conn: sqlite::Connection,
    wal: Option<Arc<Wal>>,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    // The pool's connections go back to it through tasks on this runtime.
    let _runtime = runtime.enter();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        // The writer pool's connection idle: no other write of this process is open or
        // waiting, so begin at once. Taking it and giving it back cost sqlx's on-release
        // ping (a round trip to its connection thread) before the next batch could take
        // it again: 1.5–4 ms of a batch's wait whenever the machine was busy
        // (docs/benchmarks.md). Otherwise queue for it like every other writer, so that a
        // write waiting in its busy handler gets its turn instead of starving behind
        // batches. Either way SQLite's lock (`BEGIN IMMEDIATE`) is what keeps writes apart.
        let writer_slot = if writer.num_idle() > 0 {
            Ok(None)
        } else {
            runtime.block_on(writer.acquire()).map(Some)
        };
        let outcome = match writer_slot {
            Ok(writer_slot) => {
                let holds_writer = writer_slot.is_some();
                let began = Instant::now();
                // Arrivals join while the transaction is young and no other write of this
                // process has come to wait for the writer meanwhile (it would sit in
                // SQLite's busy handler until this commit).
                let more = || {
                    let join =
                        began.elapsed() < JOIN_FOR && (holds_writer || writer.num_idle() > 0);
                    join.then(|| rx.try_recv().ok()).flatten()
                };
                let outcome = match begin_sqlite(&mut conn) {
                    Ok(()) => conn.apply_and_commit(&mut batch, MAX_BATCH, more),
                    Err(e) => Err(e),
                };
                drop(writer_slot);
                outcome
            }
            Err(e) => Err(e.into()),
        };
        if outcome.is_ok() {
            if let Some(wal) = wal.as_deref() {
                let (written, read) = conn.take_page_counters();
                wal.committer_committed(written, read);
            }
        }
        match outcome {
            Ok(results) => answer_committed(&mut batch, results),
            Err(e) => runtime.block_on(answer(&writer, &mut batch, Err(e))),
        }
        // The write-ahead log has grown past its limit under steady writes: with no write
        // open, copy what the background checkpoint left, so that the next batch starts
        // the log from its beginning again (wal.rs). After the answers, so that it costs
        // the callers just answered nothing, and at low load nobody at all.
        if let Some(wal) = wal.as_deref().filter(|wal| wal.restart_wanted()) {
            checkpoint_sqlite(&mut conn, wal);
        }
    }
}

/// The committer's share of keeping the write-ahead log bounded (wal.rs): a passive
/// checkpoint between batches. Another checkpoint running, or a reader still on old frames,
/// leaves it to the next batch or the next background round.
fn checkpoint_sqlite(conn: &mut sqlite::Connection, wal: &Wal) {
    let started = Instant::now();
    match conn.checkpoint() {
        Ok(Some((frames, copied))) if copied >= frames => {
            wal.committer_checkpointed();
            tracing::debug!(
                frames,
                took_ms = started.elapsed().as_secs_f64() * 1e3,
                "WAL copied between batches; the next batch restarts it"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "checkpointing the WAL between batches failed"),
    }
}

/// `BEGIN IMMEDIATE`, waiting (on the committer's own thread) while another process writes.
fn begin_sqlite(conn: &mut sqlite::Connection) -> Result<(), CoreError> {
    let deadline = Instant::now() + SQLITE_BUSY_WAIT;
    let mut pause = Duration::from_millis(1);
    while !conn.begin()? {
        if Instant::now() >= deadline {
            return Err(CoreError::Internal(anyhow::anyhow!(
                "the SQLite database stayed locked by another connection for {SQLITE_BUSY_WAIT:?}"
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

/// Answers every request of a committed batch with its result.
fn answer_committed(batch: &mut Vec<Request>, results: Vec<Applied>) {
    for (request, result) in batch.drain(..).zip(results) {
        let _ = request.reply.send(Ok(result));
    }
}

/// Answers every request of a committed batch; after a failed one, applies each request
/// on its own (the one-by-one path) and answers that.
async fn answer(
    writer: &AnyPool,
    batch: &mut Vec<Request>,
    outcome: Result<Vec<Applied>, CoreError>,
) {
    match outcome {
        Ok(results) => answer_committed(batch, results),
        Err(e) => {
            if batch.len() > 1 {
                tracing::warn!(error = %e, size = batch.len(), "a shared notification transaction failed; applying one by one");
            }
            for r in batch.drain(..) {
                let result = apply(writer, &r.row(), &r.findings, &r.order, &r.n, r.started).await;
                let _ = r.reply.send(result);
            }
        }
    }
}

/// One transaction for the whole batch; the results in the batch's order.
async fn commit(
    writer: &AnyPool,
    batch: &[Request],
    lock_rows: bool,
) -> Result<Vec<Applied>, CoreError> {
    let now = now_ms();
    let mut tx = writer.begin().await?;

    // 0. Every order of the batch locked first, in id order. With several instances each
    // commits batches of its own, and the same order can be in two at once (WeChat Pay's
    // resends): the update takes its orders' rows, then the notifications' foreign keys
    // take a share of others' (the update changes `transaction_id`, a key), so two batches
    // locking in different orders deadlocked, and PostgreSQL ended one a second later
    // (docs/benchmarks.md, issue 20). Locked in one order up front, one batch waits for the
    // other instead.
    if lock_rows {
        let mut ids: Vec<i64> = batch.iter().map(|r| r.order.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut sql = String::from("select id from orders where id in (");
        for k in 0..ids.len() {
            let _ = write!(sql, "{}${}", if k == 0 { "" } else { ", " }, k + 1);
        }
        sql.push_str(") order by id for update");
        let mut lock = sqlx::query_scalar::<_, i64>(&sql);
        for id in &ids {
            lock = lock.bind(*id);
        }
        lock.fetch_all(&mut *tx).await?;
    }

    // 1. The conditional update, for the first request of each order.
    let mut seen = HashSet::with_capacity(batch.len());
    let first: Vec<(i64, Payment<'_>)> = batch
        .iter()
        .filter(|r| seen.insert(r.order.id))
        .map(|r| (r.order.id, r.payment(now)))
        .collect();
    let updated = transitions::batched::pay(&mut *tx, &first, now).await?;

    // 2. Decide each request: the first of an order that changed is applied; every other
    // one is judged from the order as it is now.
    let mut decided: Vec<Option<(Decision, Option<Event>)>> = Vec::with_capacity(batch.len());
    let mut taken = HashSet::with_capacity(updated.len());
    for r in batch {
        decided.push(
            (updated.contains(&r.order.id) && taken.insert(r.order.id))
                .then(|| applied(&r.order, r.transaction_id(), paid_at(&r.n, now))),
        );
    }
    let pending: HashSet<i64> = batch
        .iter()
        .zip(&decided)
        .filter(|(_, d)| d.is_none())
        .map(|(r, _)| r.order.id)
        .collect();
    if !pending.is_empty() {
        let mut sql = String::from("select id, status, transaction_id from orders where id in (");
        for k in 0..pending.len() {
            let _ = write!(sql, "{}${}", if k == 0 { "" } else { ", " }, k + 1);
        }
        sql.push(')');
        let mut select = sqlx::query_as::<_, (i64, String, Option<String>)>(&sql);
        for id in &pending {
            select = select.bind(*id);
        }
        let states: HashMap<i64, (String, Option<String>)> = select
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, status, tid)| (id, (status, tid)))
            .collect();
        for (r, d) in batch.iter().zip(decided.iter_mut()) {
            if d.is_none() {
                let (status, tid) = states.get(&r.order.id).ok_or(CoreError::NotFound)?;
                *d = Some((
                    not_applied(status, tid.as_deref(), r.transaction_id())?,
                    None,
                ));
            }
        }
    }
    let decided: Vec<(Decision, Option<Event>)> = decided.into_iter().flatten().collect();

    // 3. Every notification's row, in one statement.
    let mut sql = String::with_capacity(300 + batch.len() * 80);
    sql.push_str(
        "insert into notifications (kind, received_at, peer, raw_body, out_trade_no, \
         transaction_id, total_fee, verdict, detail, reply, duration_us, order_id, \
         created_at, updated_at) values ",
    );
    for k in 0..batch.len() {
        let p = 2 + 11 * k;
        let _ = write!(
            sql,
            "{}('payment', ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, $1, $1)",
            if k == 0 { "" } else { ", " },
            p,
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5,
            p + 6,
            p + 7,
            p + 8,
            p + 9,
            p + 10
        );
    }
    sql.push_str(" returning id");
    let mut insert = sqlx::query_scalar::<_, i64>(&sql).bind(now);
    for (r, (decision, _)) in batch.iter().zip(&decided) {
        insert = insert
            .bind(r.received_at)
            .bind(r.peer.as_deref())
            .bind(&*r.raw_body)
            .bind(r.findings.out_trade_no.as_deref())
            .bind(r.findings.transaction_id.as_deref())
            .bind(r.findings.total_fee)
            .bind(decision.verdict.as_str())
            .bind(decision.detail.as_str())
            .bind(decision.verdict.reply_code())
            .bind(elapsed_us(r.started))
            .bind(r.findings.order_id);
    }
    // Row ids are handed out in the order of the VALUES list, but RETURNING does not
    // promise to list them in that order: sort them.
    let mut ids = insert.fetch_all(&mut *tx).await?;
    ids.sort_unstable();
    if ids.len() != batch.len() || decided.len() != batch.len() {
        return Err(CoreError::Internal(anyhow::anyhow!(
            "{} notification rows and {} decisions for {} notifications",
            ids.len(),
            decided.len(),
            batch.len()
        )));
    }
    tx.commit().await?;
    Ok(decided
        .into_iter()
        .zip(ids)
        .map(|((decision, event), id)| (decision, id, event))
        .collect())
}
