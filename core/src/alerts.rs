//! Merchant alerts (seed 004's real-time order alert): each paid order announced to a
//! webhook once — one POST per order to a JSON webhook, or to a WeCom group robot (20
//! messages a minute) one message per turn for every order due — kept in `alert_deliveries`
//! and retried with backoff until delivered or out of attempts. The row is an outbox: it is
//! written by a trigger in the transaction that marks the order paid ([`configure`]), and
//! sent afterwards by the alert job of whichever instance claims it ([`claim_due`]) or holds
//! the robot's turn ([`take_robot_turn`]). Sending happens beside the notification path,
//! never in it: the notification reply does not wait for the merchant's webhook.

use sqlx::FromRow;

use crate::sql::placeholders;
use crate::{Backend, CoreError, Db};

/// Waits before attempt 2, 3, …: 10 s, 30 s, 1 min, 5 min, 15 min, 1 h, 3 h. After the last
/// the delivery is `failed`.
pub const BACKOFF_SECONDS: [i64; 7] = [10, 30, 60, 300, 900, 3600, 10_800];

/// How long a claimed delivery is reserved for the instance sending it.
pub const CLAIM_MS: i64 = 60_000;

/// A delivery waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Delivery {
    /// Row id.
    pub id: i64,
    /// The paid order.
    pub order_id: i64,
    /// Its number.
    pub out_trade_no: String,
    /// The webhook's host.
    pub target: String,
    /// The JSON body to POST.
    pub payload: String,
    /// Attempts made so far.
    pub attempts: i64,
    /// The claim's end (`next_attempt_at` as claimed): recording the attempt checks it, so
    /// a claim that ran out and was taken over records nothing.
    pub claimed_until: Option<i64>,
}

/// A delivery as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct DeliveryStatus {
    /// Row id.
    pub id: i64,
    /// The order's number.
    pub out_trade_no: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last HTTP status.
    pub http_status: Option<i64>,
    /// The last error.
    pub last_error: Option<String>,
}

/// How long one instance's word keeps alerts on ([`configure`]): an instance with a webhook
/// renews it every [`RENEW_MS`], so alerts stop being queued this long after the last such
/// instance stopped.
pub const ALIVE_MS: i64 = 5 * 60_000;

/// How often an instance with a webhook renews [`ALIVE_MS`].
pub const RENEW_MS: i64 = 60_000;

/// Keeps the outbox on for [`ALIVE_MS`] more, queuing for `target` (the webhook's host), or
/// turns it off at once with `None`. While it is on, every order moved to `PAID` gets its
/// delivery row in the payment's own transaction (the trigger `orders_paid_alert`,
/// migrations/*/20261211000010_alert_outbox.sql), whichever path paid it; while it is off
/// none is queued. The setting is the database's, shared by every instance on it: each
/// instance with `PAYDESK_ALERTS__WEBHOOK_URL` keeps it on, one without changes nothing.
pub async fn configure(db: &Db, target: Option<&str>) -> Result<(), CoreError> {
    match target {
        Some(target) => {
            let clock = crate::leases::clock_ms(db.backend());
            sqlx::query(&format!(
                r#"insert into alert_settings (id, target, alive_until, updated_at)
                   values (1, $1, {clock} + $2, {clock})
                   on conflict (id) do update set target = excluded.target,
                       alive_until = excluded.alive_until, updated_at = excluded.updated_at"#
            ))
            .bind(target)
            .bind(ALIVE_MS)
            .execute(db.writer())
            .await?;
        }
        None => {
            sqlx::query("delete from alert_settings")
                .execute(db.writer())
                .await?;
        }
    }
    Ok(())
}

/// The webhook host the outbox queues alerts for, if alerts are on.
pub async fn configured_target(db: &Db) -> Result<Option<String>, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    Ok(sqlx::query_scalar(&format!(
        "select target from alert_settings where id = 1 and alive_until > {clock}"
    ))
    .fetch_optional(db.reader())
    .await?)
}

/// Claims up to `limit` pending deliveries that are due, reserving them for [`CLAIM_MS`]
/// (on PostgreSQL rows another instance is claiming are skipped). Due and reserved are
/// judged by the database's clock ([`crate::leases::clock_ms`]), so instances whose clocks
/// disagree never send one alert at once.
pub async fn claim_due(db: &Db, limit: i64) -> Result<Vec<Delivery>, CoreError> {
    claim_with(db.writer(), db.backend(), limit).await
}

async fn claim_with<'e, E>(
    executor: E,
    backend: Backend,
    limit: i64,
) -> Result<Vec<Delivery>, CoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let clock = crate::leases::clock_ms(backend);
    let lock = match backend {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    Ok(sqlx::query_as::<_, Delivery>(&format!(
        r#"update alert_deliveries set next_attempt_at = {clock} + $1, updated_at = {clock}
           where id in (select id from alert_deliveries
                        where status = 'pending' and next_attempt_at <= {clock}
                        order by next_attempt_at limit $2 {lock})
           returning id, order_id, out_trade_no, target, payload, attempts,
               next_attempt_at as claimed_until"#
    ))
    .bind(CLAIM_MS)
    .bind(limit)
    .fetch_all(executor)
    .await?)
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The webhook took it.
    Delivered {
        /// HTTP status.
        http_status: u16,
    },
    /// It did not; `error` says why (no URL, no secrets).
    Failed {
        /// HTTP status, if an answer came.
        http_status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// Records an attempt: delivered, retried later per [`BACKOFF_SECONDS`], or failed for good;
/// and the body it sent (built from the order on the first attempt: the outbox row is
/// written without one). Only while the claim holds: false when it ran out and another
/// instance took the delivery over (it records its own attempt).
pub async fn record_attempt(
    db: &Db,
    delivery: &Delivery,
    attempt: &Attempt,
) -> Result<bool, CoreError> {
    record_with(db.writer(), db.backend(), delivery, attempt).await
}

/// Records a round of attempts ([`record_attempt`] for each: whether it was recorded) and
/// claims the next round of up to `limit` ([`claim_due`]; none with 0), in one
/// transaction: on SQLite every write transaction waits for the notification committer's
/// and costs an fsync, so the alert job writes once per round, not twice per alert.
pub async fn record_and_claim(
    db: &Db,
    attempts: &[(Delivery, Attempt)],
    limit: i64,
) -> Result<(Vec<bool>, Vec<Delivery>), CoreError> {
    let mut tx = db.writer().begin().await?;
    let mut recorded = std::collections::HashSet::new();
    // One statement per chunk: a statement per alert held the write lock (and with it the
    // notification committer) for milliseconds on SQLite.
    for chunk in attempts.chunks(RECORD_CHUNK) {
        recorded.extend(record_many(&mut *tx, db.backend(), chunk).await?);
    }
    let next = if limit > 0 {
        claim_with(&mut *tx, db.backend(), limit).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let recorded = attempts
        .iter()
        .map(|(d, _)| recorded.contains(&d.id))
        .collect();
    Ok((recorded, next))
}

/// How many attempts one statement records (8 values each, far under both engines' limit
/// on bound values).
const RECORD_CHUNK: usize = 256;

/// What recording an attempt writes: status, attempts, the wait before the next one (ms,
/// from the database's clock), HTTP status, error.
fn outcome_of(
    delivery: &Delivery,
    attempt: &Attempt,
) -> (&'static str, i64, Option<i64>, Option<i64>, Option<String>) {
    let attempts = delivery.attempts + 1;
    match attempt {
        Attempt::Delivered { http_status } => (
            "delivered",
            attempts,
            None,
            Some(i64::from(*http_status)),
            None,
        ),
        Attempt::Failed { http_status, error } => {
            let wait = usize::try_from(attempts - 1)
                .ok()
                .and_then(|i| BACKOFF_SECONDS.get(i));
            let status = if wait.is_some() { "pending" } else { "failed" };
            (
                status,
                attempts,
                wait.map(|s| s * 1000),
                http_status.map(i64::from),
                Some(error.clone()),
            )
        }
    }
}

/// [`record_with`] for many attempts in one statement (a `case` per column, the claim
/// checked per row); the ids it recorded.
async fn record_many<'e, E>(
    executor: E,
    backend: Backend,
    attempts: &[(Delivery, Attempt)],
) -> Result<Vec<i64>, CoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    use std::fmt::Write as _;
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let clock = crate::leases::clock_ms(backend);
    let columns = [
        "status",
        "attempts",
        "next_attempt_at",
        "http_status",
        "last_error",
        "payload",
    ];
    let mut cases: Vec<String> = vec![String::new(); columns.len() + 1];
    let mut ids = String::new();
    for k in 0..attempts.len() {
        let p = 1 + 8 * k;
        for (c, case) in cases.iter_mut().enumerate() {
            let value = if c == 2 {
                format!("{clock} + ${}", p + 1 + c)
            } else {
                format!("${}", p + 1 + c)
            };
            let _ = write!(case, " when ${p} then {value}");
        }
        let _ = write!(ids, "{}${p}", if k == 0 { "" } else { ", " });
    }
    let mut sql = String::from("update alert_deliveries set updated_at = ");
    sql.push_str(clock);
    for (column, case) in columns.iter().zip(&cases) {
        let _ = write!(sql, ", {column} = case id{case} end");
    }
    let _ = write!(
        sql,
        " where id in ({ids}) and status = 'pending' and next_attempt_at = case id{} end returning id",
        cases[columns.len()]
    );
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for (delivery, attempt) in attempts {
        let (status, tries, wait, http_status, error) = outcome_of(delivery, attempt);
        query = query
            .bind(delivery.id)
            .bind(status)
            .bind(tries)
            .bind(wait)
            .bind(http_status)
            .bind(error)
            .bind(delivery.payload.clone())
            .bind(delivery.claimed_until);
    }
    Ok(query.fetch_all(executor).await?)
}

async fn record_with<'e, E>(
    executor: E,
    backend: Backend,
    delivery: &Delivery,
    attempt: &Attempt,
) -> Result<bool, CoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let (status, attempts, next, http_status, error) = outcome_of(delivery, attempt);
    // The next attempt is timed by the database's clock, like the claim that will take it.
    let clock = crate::leases::clock_ms(backend);
    let recorded = sqlx::query(&format!(
        r#"update alert_deliveries
           set status = $1, attempts = $2, next_attempt_at = {clock} + $3, http_status = $4,
               last_error = $5, updated_at = {clock}, payload = $6
           where id = $7 and status = 'pending' and next_attempt_at = $8"#
    ))
    .bind(status)
    .bind(attempts)
    .bind(next)
    .bind(http_status)
    .bind(error)
    .bind(&delivery.payload)
    .bind(delivery.id)
    .bind(delivery.claimed_until)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(recorded == 1)
}

/// The least time between two messages to a WeCom group robot: it takes 20 a minute and
/// answers `errcode 45009` beyond (README, "Merchant alerts"); 3 s and a margin for a robot
/// that counts whole seconds.
pub const ROBOT_GAP_MS: i64 = 3_200;

/// How long taking the robot's turn holds it: the send (at most 5 s) and its record, with
/// room; an instance that dies holding it gives it up then.
pub const ROBOT_SEND_HOLD_MS: i64 = 15_000;

/// How long the robot's turn waits after it said 45009 (it is shared with another sender):
/// its minute.
pub const ROBOT_HOLD_MS: i64 = 60_000;

/// Takes the robot's turn (`alert_settings.next_send_at`, shared by the instances, by the
/// database's clock) for [`ROBOT_SEND_HOLD_MS`]: `Ok(turn)`, the value that proves it is
/// still this instance's ([`record_batch`], [`robot_turn_done`]), or `Err(ms)` until it is
/// free. The turn is the lease of a robot's deliveries: only its holder sends or records
/// them. A turn set further ahead than any hold (the database's clock stepped back) is free.
pub async fn take_robot_turn(db: &Db) -> Result<Result<i64, i64>, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    let taken: Option<i64> = sqlx::query_scalar(&format!(
        r#"update alert_settings set next_send_at = {clock} + $1
           where id = 1 and (next_send_at <= {clock} or next_send_at > {clock} + $2)
           returning next_send_at"#
    ))
    .bind(ROBOT_SEND_HOLD_MS)
    .bind(ROBOT_HOLD_MS)
    .fetch_optional(db.writer())
    .await?;
    if let Some(turn) = taken {
        return Ok(Ok(turn));
    }
    let wait: Option<i64> = sqlx::query_scalar(&format!(
        "select next_send_at - {clock} from alert_settings where id = 1"
    ))
    .fetch_optional(db.reader())
    .await?;
    // No row: alerts were turned off meanwhile; nothing is queued until they are back.
    Ok(Err(wait.unwrap_or(ROBOT_HOLD_MS).max(1)))
}

/// Ends the turn [`take_robot_turn`] gave, if it is still this one: the next message may go
/// `after_ms` from now ([`ROBOT_GAP_MS`], or [`ROBOT_HOLD_MS`] after a 45009).
pub async fn robot_turn_done(db: &Db, turn: i64, after_ms: i64) -> Result<(), CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    sqlx::query(&format!(
        "update alert_settings set next_send_at = {clock} + $1 where id = 1 and next_send_at = $2"
    ))
    .bind(after_ms)
    .bind(turn)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Whether any delivery is due: a read, so an idle robot costs no write.
pub async fn any_due(db: &Db) -> Result<bool, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    let due: Option<i64> = sqlx::query_scalar(&format!(
        "select id from alert_deliveries where status = 'pending' and next_attempt_at <= {clock} limit 1"
    ))
    .fetch_optional(db.reader())
    .await?;
    Ok(due.is_some())
}

/// A paid order as an alert shows it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct AlertOrder {
    /// Its number.
    pub out_trade_no: String,
    /// What was bought.
    pub description: String,
    /// Fen.
    pub total_fee: i64,
    /// WeChat Pay's number.
    pub transaction_id: Option<String>,
    /// When it was paid.
    pub paid_at: Option<i64>,
}

/// Deliveries due together, to be sent as one message ([`due_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The rows, by id.
    pub ids: Vec<i64>,
    /// The database's clock when they were read: each was due by then, and recording
    /// checks it still is (not sent or claimed meanwhile).
    pub as_of: i64,
    /// How many orders the batch covers.
    pub count: i64,
    /// Their total, fen.
    pub total_fen: i64,
    /// The first of them (by delivery id), to list one by one.
    pub first: Vec<AlertOrder>,
}

/// How many ids one `in (…)` list binds, and one transaction records: far under both
/// engines' limit on bound values, and a short hold of SQLite's write lock.
const ID_CHUNK: usize = 500;

/// Up to `limit` due deliveries as one batch (one message to a robot that takes few a
/// minute: a message per order would be refused), with their count and total and the
/// first `listed` orders; `None` when nothing is due. Reads only: the caller holds the
/// robot's turn ([`take_robot_turn`]), which keeps other instances from them, so they cost
/// no claim write.
pub async fn due_batch(db: &Db, limit: i64, listed: usize) -> Result<Option<Batch>, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    let mut tx = db.reader().begin().await?;
    let as_of: i64 = sqlx::query_scalar(&format!("select {clock}"))
        .fetch_one(&mut *tx)
        .await?;
    let mut due: Vec<(i64, i64)> = sqlx::query_as(
        r#"select id, order_id from alert_deliveries
           where status = 'pending' and next_attempt_at <= $1
           order by next_attempt_at limit $2"#,
    )
    .bind(as_of)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if due.is_empty() {
        return Ok(None);
    }
    due.sort_unstable();
    let (mut count, mut total_fen) = (0_i64, 0_i64);
    for chunk in due.chunks(ID_CHUNK) {
        let sql = format!(
            // PostgreSQL's sum of bigints is a numeric.
            "select count(*), cast(coalesce(sum(total_fee), 0) as bigint) from orders where id in ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for (_, order_id) in chunk {
            query = query.bind(*order_id);
        }
        let (n, fen) = query.fetch_one(&mut *tx).await?;
        count += n;
        total_fen += fen;
    }
    let head = &due[..due.len().min(listed)];
    let sql = format!(
        r#"select id, out_trade_no, description, total_fee, transaction_id, paid_at
           from orders where id in ({})"#,
        placeholders(1, head.len())
    );
    let mut query =
        sqlx::query_as::<_, (i64, String, String, i64, Option<String>, Option<i64>)>(&sql);
    for (_, order_id) in head {
        query = query.bind(*order_id);
    }
    let mut first = query.fetch_all(&mut *tx).await?;
    tx.commit().await?;
    first.sort_by_key(|row| head.iter().position(|(_, order_id)| *order_id == row.0));
    Ok(Some(Batch {
        ids: due.iter().map(|(id, _)| *id).collect(),
        as_of,
        count,
        total_fen,
        first: first
            .into_iter()
            .map(
                |(_, out_trade_no, description, total_fee, transaction_id, paid_at)| AlertOrder {
                    out_trade_no,
                    description,
                    total_fee,
                    transaction_id,
                    paid_at,
                },
            )
            .collect(),
    }))
}

/// Records one attempt for every delivery of a batch ([`record_attempt`] for each,
/// set-wise: the wait before a retry follows each row's own attempts), while `turn` is
/// still the robot's turn and each row is still as read; how many were recorded. A
/// transaction per [`ID_CHUNK`] rows: on SQLite each holds the write lock, and with it the
/// notification committer, only briefly.
pub async fn record_batch(
    db: &Db,
    batch: &Batch,
    turn: i64,
    attempt: &Attempt,
) -> Result<u64, CoreError> {
    use std::fmt::Write as _;
    let clock = crate::leases::clock_ms(db.backend());
    let (set, http_status, error) = match attempt {
        Attempt::Delivered { http_status } => (
            format!("status = 'delivered', next_attempt_at = {clock}"),
            i64::from(*http_status),
            None,
        ),
        Attempt::Failed { http_status, error } => {
            let mut wait = String::from("case attempts");
            for (k, seconds) in BACKOFF_SECONDS.iter().enumerate() {
                let _ = write!(wait, " when {k} then {}", seconds * 1000);
            }
            wait.push_str(" else 0 end");
            (
                format!(
                    "status = case when attempts >= {} then 'failed' else 'pending' end, \
                     next_attempt_at = {clock} + {wait}",
                    BACKOFF_SECONDS.len()
                ),
                http_status.map_or(-1, i64::from),
                Some(error.as_str()),
            )
        }
    };
    let mut recorded = 0;
    for chunk in batch.ids.chunks(ID_CHUNK) {
        let sql = format!(
            r#"update alert_deliveries
               set {set}, attempts = attempts + 1, updated_at = {clock},
                   http_status = case when $1 < 0 then null else $1 end, last_error = $2
               where status = 'pending' and next_attempt_at <= $3
                 and exists (select 1 from alert_settings where id = 1 and next_send_at = $4)
                 and id in ({})"#,
            placeholders(5, chunk.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(http_status)
            .bind(error)
            .bind(batch.as_of)
            .bind(turn);
        for id in chunk {
            query = query.bind(*id);
        }
        recorded += query.execute(db.writer()).await?.rows_affected();
    }
    Ok(recorded)
}

/// The delivery for an order, if one was queued.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Option<DeliveryStatus>, CoreError> {
    Ok(sqlx::query_as::<_, DeliveryStatus>(
        r#"select id, out_trade_no, status, attempts, http_status, last_error
           from alert_deliveries where order_id = $1"#,
    )
    .bind(order_id)
    .fetch_optional(db.reader())
    .await?)
}

impl From<&crate::orders::Order> for AlertOrder {
    fn from(o: &crate::orders::Order) -> Self {
        AlertOrder {
            out_trade_no: o.out_trade_no.clone(),
            description: o.description.clone(),
            total_fee: o.total_fee,
            transaction_id: o.transaction_id.clone(),
            paid_at: o.paid_at,
        }
    }
}
