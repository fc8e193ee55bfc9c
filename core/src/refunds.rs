//! Refunds end to end (design.md "Data" refunds, "Refund"; spec §8.5, §8.6, §8.9, §10.2).
//!
//! A refund is requested (by the shopper in the mini program, or by support for a
//! customer), waits in `PENDING_APPROVAL`, is approved or rejected by a manager, and is then
//! executed against WeChat Pay by the refund job:
//!
//! ```text
//! PENDING_APPROVAL ─► APPROVED ─► SUBMITTED ─► PROCESSING ─► SUCCESS
//!        │                            │   ▲          ├──────► CHANGE ─► SUCCESS | REFUNDCLOSE
//!        └─► REJECTED                 │   └ retry    └──────► REFUNDCLOSE
//!                                     └─► FAILED (business error, certificate refused)
//! ```
//!
//! A refund that ends `FAILED` after earlier calls whose outcome was unknown (a timeout, a
//! 5xx) is asked about once more with refundquery [10 minutes and a day](RefundPolicy::failed_checks)
//! later: if one of those calls went through after all, WeChat Pay's state is adopted
//! (`FAILED → PROCESSING | SUCCESS | …`, as a late refund notification would).
//!
//! Money safety rests on three rules:
//!
//! 1. **Never above the total.** [`request`] sums every refund of the order that still
//!    [counts](RefundStatus::counts_against_order) inside its transaction (the order row
//!    locked on PostgreSQL; SQLite has one writer), so concurrent requests cannot together
//!    exceed `total_fee`.
//! 2. **One number, one refund.** `out_refund_no` is fixed at request time and every call
//!    sends it with the same amounts; WeChat Pay makes at most one refund per number (§8.5).
//! 3. **SUBMITTED before the call.** [`process_claimed`] commits `SUBMITTED` (attempts + 1)
//!    before it calls `/secapi/pay/refund`. A refund found `SUBMITTED` later (a retry, or
//!    after a crash) is asked about with refundquery first; only `REFUNDNOTEXIST` sends it
//!    again, with the same number.
//!
//! Decisions are one conditional update from `PENDING_APPROVAL`, so of two managers acting
//! at once exactly one decides. Results from the refund response, refundquery and the
//! refund notification all go through one conditional transition
//! ([`RefundStatus::can_move_to`]), so each is applied once and nothing moves backwards; a
//! `SUCCESS` moves the order to `PARTIALLY_REFUNDED` or `REFUNDED` from the sum of its
//! successful refunds.

use std::time::Duration;

use paydesk_types::Fen;
use rand::Rng as _;
use sqlx::{Any, FromRow, Transaction};
use time::OffsetDateTime;
use wxpay::{Api, OrderRef, RefundQuery, RefundQueryRequest, RefundRequest};

use crate::audit::{self, action, Actor};
use crate::error::is_unique_violation;
use crate::events::{Event, EventBus};
use crate::orders::OrderStatus;
use crate::{now_ms, Backend, CoreError, Db};

pub use paydesk_types::RefundStatus;

/// The SQL side of [`RefundStatus`] (the enum itself is in `paydesk-types`, shared with
/// the browser).
trait StatusSql {
    /// The stored names of the statuses `next` may be reached from, as an SQL list
    /// (`'A', 'B'`): the condition of every status update.
    fn sql_sources(next: RefundStatus) -> String;
}

impl StatusSql for RefundStatus {
    fn sql_sources(next: RefundStatus) -> String {
        RefundStatus::ALL
            .into_iter()
            .filter(|s| s.can_move_to(next))
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The statuses that do not count against the order, as an SQL list.
const NOT_COUNTING: &str = "'REJECTED', 'FAILED', 'REFUNDCLOSE'";

/// The statuses of a refund still open (not [final](RefundStatus::is_final)), as an SQL
/// list: a customer may have one such request per order, checked in the request's
/// transaction. The partial unique index `refunds_one_open_customer_request` (migration
/// 20261207000040) holds only `PENDING_APPROVAL`, the status every request is inserted
/// with: a refund past approval may still move between open and failed states, and a
/// constraint must never refuse WeChat Pay's word for it.
fn open_sql() -> String {
    RefundStatus::ALL
        .into_iter()
        .filter(|s| !s.is_final())
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The unique index that allows one open customer request per order.
const ONE_OPEN_CUSTOMER_REQUEST: &str = "refunds_one_open_customer_request";

/// Who asked for a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// The shopper, from the mini program (only for their own order).
    Customer {
        /// The shopper's openid.
        openid: String,
    },
    /// A staff member (support) filing it for a customer on the dashboard.
    Staff {
        /// The signed-in user.
        actor: Actor,
    },
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Row id.
    pub id: i64,
    /// Our refund number, fixed at request time (WeChat Pay's idempotency key).
    pub out_refund_no: String,
    /// The order.
    pub order_id: i64,
    /// The order's number.
    pub out_trade_no: String,
    /// The amount in fen.
    pub amount_fen: i64,
    /// Why the refund was asked for.
    pub reason: String,
    /// `customer` or `staff`.
    pub requester_kind: String,
    /// The requesting user's username, or the customer's openid.
    pub requester: String,
    /// The requesting user's id (staff only).
    pub requester_user_id: Option<i64>,
    /// Where it is.
    pub status: RefundStatus,
    /// Who approved or rejected it.
    pub decided_by: Option<String>,
    /// When (UTC ms).
    pub decided_at: Option<i64>,
    /// The approver's or rejecter's reason.
    pub decision_reason: Option<String>,
    /// WeChat Pay's `refund_id`, once accepted.
    pub refund_id: Option<String>,
    /// How many times it was sent to `/secapi/pay/refund`.
    pub attempts: i64,
    /// The last error's code (`SYSTEMERROR`, `NOTENOUGH`, `CERTIFICATE_REFUSED`, …).
    pub last_error_code: Option<String>,
    /// The last error in plain words (shown on the dashboard).
    pub last_error: Option<String>,
    /// When WeChat Pay said it succeeded (UTC ms).
    pub succeeded_at: Option<i64>,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last changed (UTC ms).
    pub updated_at: i64,
}

#[derive(FromRow)]
struct RefundRow {
    id: i64,
    out_refund_no: String,
    order_id: i64,
    out_trade_no: String,
    amount_fen: i64,
    reason: String,
    requester_kind: String,
    requester: String,
    requester_user_id: Option<i64>,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    decision_reason: Option<String>,
    refund_id: Option<String>,
    attempts: i64,
    last_error_code: Option<String>,
    last_error: Option<String>,
    succeeded_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<RefundRow> for Refund {
    type Error = CoreError;

    fn try_from(r: RefundRow) -> Result<Self, CoreError> {
        Ok(Refund {
            id: r.id,
            out_refund_no: r.out_refund_no,
            order_id: r.order_id,
            out_trade_no: r.out_trade_no,
            amount_fen: r.amount_fen,
            reason: r.reason,
            requester_kind: r.requester_kind,
            requester: r.requester,
            requester_user_id: r.requester_user_id,
            status: r.status.parse()?,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            decision_reason: r.decision_reason,
            refund_id: r.refund_id,
            attempts: r.attempts,
            last_error_code: r.last_error_code,
            last_error: r.last_error,
            succeeded_at: r.succeeded_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A refund's columns, with the order's number (`refunds r join orders o`).
const REFUND_COLUMNS: &str = "r.id, r.out_refund_no, r.order_id, o.out_trade_no, r.amount_fen, \
    r.reason, r.requester_kind, r.requester, r.requester_user_id, r.status, r.decided_by, \
    r.decided_at, r.decision_reason, r.refund_id, r.attempts, r.last_error_code, r.last_error, \
    r.succeeded_at, r.created_at, r.updated_at";

/// `select` of refunds with their order's number, then `rest` (`where …`, `order by …`).
fn select_refunds(rest: &str) -> String {
    format!("select {REFUND_COLUMNS} from refunds r join orders o on o.id = r.order_id {rest}")
}

/// A refund with what a manager needs to decide on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundView {
    /// The refund.
    pub refund: Refund,
    /// The order's total in fen.
    pub order_total_fee: i64,
    /// What the order can still refund now (total − every refund that counts, this one
    /// included if it counts), in fen.
    pub refundable_left: i64,
    /// How many other refunds of the same order, created before this one, count against it
    /// (the "earlier partial refunds" a manager weighs).
    pub earlier_refunds: i64,
    /// The payer's openid.
    pub openid: String,
}

#[derive(FromRow)]
struct OrderForRefund {
    id: i64,
    openid: String,
    total_fee: i64,
    status: String,
}

/// Requests a refund of a paid order (design.md "Refund"): the order must be `PAID` or
/// `PARTIALLY_REFUNDED` ([`CoreError::Forbidden`] otherwise); a customer may only ask about
/// their own order ([`CoreError::NotFound`] otherwise). The amount defaults to what is still
/// refundable and must be 1 fen up to that ([`CoreError::Invalid`] `amount` naming it in
/// yuan). All of it is one transaction — the order row is locked on PostgreSQL and SQLite
/// has a single writer — so concurrent requests never together exceed the total. The refund
/// is stored `PENDING_APPROVAL` with a new `out_refund_no`, audited, and published.
///
/// A customer may have one open request per order (not yet final: waiting for a manager
/// or on its way): another is [`CoreError::Conflict`], checked in the transaction and held
/// by a partial unique index on both engines. Support can still file for the customer.
pub async fn request(
    db: &Db,
    events: &EventBus,
    out_trade_no: &str,
    amount_fen: Option<i64>,
    reason: &str,
    requester: Requester,
) -> Result<Refund, CoreError> {
    file(db, events, out_trade_no, amount_fen, reason, requester)
        .await
        .map(|view| view.refund)
}

/// [`request`], answering the new refund as the dashboard shows it — read by its id inside
/// the transaction that inserted it, so nothing after the commit can fail and the answer
/// is this refund however many others are pending.
#[tracing::instrument(skip_all, fields(order.out_trade_no = %out_trade_no))]
pub async fn file(
    db: &Db,
    events: &EventBus,
    out_trade_no: &str,
    amount_fen: Option<i64>,
    reason: &str,
    requester: Requester,
) -> Result<RefundView, CoreError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(CoreError::invalid("reason", "say why the refund is needed"));
    }
    if reason.chars().count() > 200 {
        return Err(CoreError::invalid(
            "reason",
            "the reason may have at most 200 characters",
        ));
    }
    let lock = match db.backend() {
        Backend::Postgres => "for update",
        Backend::Sqlite => "",
    };
    let mut tx = db.begin_write().await?;
    let order = sqlx::query_as::<_, OrderForRefund>(&format!(
        "select id, openid, total_fee, status from orders where out_trade_no = $1 {lock}"
    ))
    .bind(out_trade_no)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CoreError::NotFound)?;
    if let Requester::Customer { openid } = &requester {
        if *openid != order.openid {
            return Err(CoreError::NotFound);
        }
    }
    let status: OrderStatus = order.status.parse()?;
    match status {
        OrderStatus::Paid | OrderStatus::PartiallyRefunded => {}
        OrderStatus::Refunded => {
            return Err(CoreError::Forbidden(
                "the order has been refunded in full".into(),
            ))
        }
        other => {
            return Err(CoreError::Forbidden(format!(
                "only a paid order can be refunded; this one is {other}"
            )))
        }
    }
    let committed = committed_fen(&mut tx, order.id).await?;
    let left = order.total_fee - committed;
    if left <= 0 {
        return Err(CoreError::invalid(
            "amount",
            "nothing is left to refund on this order (other refunds take the whole amount)",
        ));
    }
    let amount = amount_fen.unwrap_or(left);
    if !(1..=left).contains(&amount) {
        return Err(CoreError::invalid(
            "amount",
            format!(
                "the amount must be between ¥0.01 and {} (what is still refundable)",
                Fen(left)
            ),
        ));
    }
    if matches!(requester, Requester::Customer { .. })
        && has_open_customer_request(&mut tx, order.id).await?
    {
        return Err(open_request_conflict());
    }
    let (kind, name, user_id, actor) = match &requester {
        Requester::Customer { openid } => (
            "customer",
            openid.clone(),
            None,
            Actor {
                user_id: None,
                name: format!("customer {openid}"),
                ip: None,
            },
        ),
        Requester::Staff { actor } => ("staff", actor.name.clone(), actor.user_id, actor.clone()),
    };
    let now = now_ms();
    let out_refund_no = new_out_refund_no();
    let id: i64 = sqlx::query_scalar(
        r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
               requester, requester_user_id, status, created_at, updated_at)
           values ($1, $2, $3, $4, $5, $6, $7, 'PENDING_APPROVAL', $8, $8)
           returning id"#,
    )
    .bind(&out_refund_no)
    .bind(order.id)
    .bind(amount)
    .bind(reason)
    .bind(kind)
    .bind(&name)
    .bind(user_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        // The check above already holds this on both engines (the order row is locked,
        // SQLite has one writer); the index makes it a rule of the database. SQLite names
        // no constraint; PostgreSQL names the index.
        sqlx::Error::Database(d)
            if is_unique_violation(&e)
                && matches!(requester, Requester::Customer { .. })
                && d.constraint()
                    .is_none_or(|c| c == ONE_OPEN_CUSTOMER_REQUEST) =>
        {
            open_request_conflict()
        }
        _ => e.into(),
    })?;
    let detail = format!("{} of order {out_trade_no}: {reason}", Fen(amount));
    audit::record(
        &mut *tx,
        audit::Entry {
            actor: &actor,
            action: action::REFUND_REQUEST,
            target: Some(&out_refund_no),
            detail: Some(&detail),
        },
    )
    .await?;
    let view = load_view(&mut tx, id).await?;
    tx.commit().await?;
    tracing::info!(refund.out_refund_no = %view.refund.out_refund_no, amount_fen = amount, "refund requested");
    publish(events, &view.refund);
    Ok(view)
}

/// Whether the customer already has an open request for this order.
async fn has_open_customer_request(
    tx: &mut Transaction<'_, Any>,
    order_id: i64,
) -> Result<bool, CoreError> {
    let open: Option<i64> = sqlx::query_scalar(&format!(
        r#"select id from refunds
           where order_id = $1 and requester_kind = 'customer' and status in ({})
           limit 1"#,
        open_sql()
    ))
    .bind(order_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(open.is_some())
}

fn open_request_conflict() -> CoreError {
    CoreError::Conflict("a refund request for this order is already open".into())
}

/// The fen of an order's refunds that count against it.
async fn committed_fen(tx: &mut Transaction<'_, Any>, order_id: i64) -> Result<i64, CoreError> {
    // PostgreSQL's sum(bigint) is numeric: cast it back so both engines give an i64.
    Ok(sqlx::query_scalar(&format!(
        r#"select cast(coalesce(sum(amount_fen), 0) as bigint) from refunds
           where order_id = $1 and status not in ({NOT_COUNTING})"#
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// A new refund number: `RF`, Beijing time to the second, 10 random characters (26
/// characters; WeChat Pay allows 64 of `[0-9A-Za-z_-|*@]`, §8.5).
fn new_out_refund_no() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..10)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!(
        "RF{}{suffix}",
        wxpay::wxtime::format_compact(OffsetDateTime::now_utc())
    )
}

/// Approves a pending refund (the refund job then executes it). See [`reject`] for the rules.
#[tracing::instrument(skip_all, fields(refund.id = refund_id))]
pub async fn approve(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
) -> Result<Refund, CoreError> {
    decide(db, events, actor, refund_id, reason, RefundStatus::Approved).await
}

/// Rejects a pending refund; a reason is required ([`CoreError::Invalid`] `reason`). Only a
/// `PENDING_APPROVAL` refund can be decided, and by someone other than who filed it
/// ([`CoreError::Forbidden`]). The decision is one conditional update, so of two managers
/// acting at once exactly one decides; the other gets `Forbidden("already decided …")`.
/// Audited; [`Event::RefundChanged`] is published after the commit. Role checks are the
/// caller's.
#[tracing::instrument(skip_all, fields(refund.id = refund_id))]
pub async fn reject(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
) -> Result<Refund, CoreError> {
    decide(db, events, actor, refund_id, reason, RefundStatus::Rejected).await
}

async fn decide(
    db: &Db,
    events: &EventBus,
    actor: &Actor,
    refund_id: i64,
    reason: &str,
    to: RefundStatus,
) -> Result<Refund, CoreError> {
    let reason = reason.trim();
    if to == RefundStatus::Rejected && reason.is_empty() {
        return Err(CoreError::invalid(
            "reason",
            "say why the refund is rejected",
        ));
    }
    if reason.chars().count() > 200 {
        return Err(CoreError::invalid(
            "reason",
            "the reason may have at most 200 characters",
        ));
    }
    let mut tx = db.begin_write().await?;
    let refund = load(&mut tx, refund_id).await?;
    if refund.status != RefundStatus::PendingApproval {
        return Err(already_decided(&refund));
    }
    let own = refund.requester_kind == "staff"
        && match (refund.requester_user_id, actor.user_id) {
            (Some(a), Some(b)) => a == b,
            _ => refund.requester == actor.name,
        };
    if own {
        return Err(CoreError::Forbidden(
            "nobody approves or rejects a refund they requested themselves".into(),
        ));
    }
    if to == RefundStatus::Approved {
        refuse_own_payment(&mut tx, actor, refund.order_id).await?;
    }
    let now = now_ms();
    // Approved refunds are due for the refund job at once.
    let next_attempt_at = (to == RefundStatus::Approved).then_some(now);
    let updated = sqlx::query(
        r#"update refunds
           set status = $1, decided_by = $2, decided_by_user_id = $3, decided_at = $4,
               decision_reason = $5, next_attempt_at = $6, updated_at = $4
           where id = $7 and status = 'PENDING_APPROVAL'"#,
    )
    .bind(to.as_str())
    .bind(&actor.name)
    .bind(actor.user_id)
    .bind(now)
    .bind(reason)
    .bind(next_attempt_at)
    .bind(refund_id)
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Another decider committed between our read and our update (PostgreSQL).
        let current = load(&mut tx, refund_id).await?;
        return Err(already_decided(&current));
    }
    let (act, verb) = match to {
        RefundStatus::Approved => (action::REFUND_APPROVE, "approved"),
        _ => (action::REFUND_REJECT, "rejected"),
    };
    let detail = format!(
        "{verb} {} of order {}: {reason}",
        Fen(refund.amount_fen),
        refund.out_trade_no
    );
    audit::record(
        &mut *tx,
        audit::Entry {
            actor,
            action: act,
            target: Some(&refund.out_refund_no),
            detail: Some(&detail),
        },
    )
    .await?;
    let refund = load(&mut tx, refund_id).await?;
    tx.commit().await?;
    tracing::info!(refund.out_refund_no = %refund.out_refund_no, status = %to, "refund decided");
    publish(events, &refund);
    Ok(refund)
}

/// Nobody approves the refund of an order paid by one of their own openids (recorded on My
/// account, `own_openids`): [`CoreError::OwnPayment`]. Read inside the decision's
/// transaction.
async fn refuse_own_payment(
    tx: &mut Transaction<'_, Any>,
    actor: &Actor,
    order_id: i64,
) -> Result<(), CoreError> {
    let Some(user_id) = actor.user_id else {
        return Ok(());
    };
    let own: Option<String> = sqlx::query_scalar(
        r#"select u.openid from user_openids u join orders o on o.openid = u.openid
           where o.id = $1 and u.user_id = $2"#,
    )
    .bind(order_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await?;
    match own {
        Some(openid) => Err(CoreError::OwnPayment { openid }),
        None => Ok(()),
    }
}

fn already_decided(refund: &Refund) -> CoreError {
    CoreError::Forbidden(format!(
        "already decided: the refund is {}{}",
        refund.status,
        refund
            .decided_by
            .as_deref()
            .map(|by| format!(" (by {by})"))
            .unwrap_or_default()
    ))
}

/// A refund with what a manager weighs (`refunds r join orders o`), as [`RefundView`].
#[derive(FromRow)]
struct ViewRow {
    #[sqlx(flatten)]
    refund: RefundRow,
    order_total_fee: i64,
    committed: i64,
    earlier_refunds: i64,
    openid: String,
}

impl TryFrom<ViewRow> for RefundView {
    type Error = CoreError;

    fn try_from(r: ViewRow) -> Result<Self, CoreError> {
        Ok(RefundView {
            refund: r.refund.try_into()?,
            order_total_fee: r.order_total_fee,
            refundable_left: r.order_total_fee - r.committed,
            earlier_refunds: r.earlier_refunds,
            openid: r.openid,
        })
    }
}

/// `select` of [`ViewRow`]s, then `rest` (`where …`, `order by …`).
fn select_views(rest: &str) -> String {
    format!(
        r#"select {REFUND_COLUMNS}, o.total_fee as order_total_fee, o.openid,
               (select cast(coalesce(sum(c.amount_fen), 0) as bigint) from refunds c
                where c.order_id = r.order_id and c.status not in ({NOT_COUNTING}))
                   as committed,
               (select count(*) from refunds e
                where e.order_id = r.order_id and e.status not in ({NOT_COUNTING})
                  and (e.created_at < r.created_at
                       or (e.created_at = r.created_at and e.id < r.id)))
                   as earlier_refunds
           from refunds r join orders o on o.id = r.order_id
           {rest}"#
    )
}

/// Refunds for the dashboard: `PENDING_APPROVAL` first (oldest first, the queue), then the
/// rest newest first; at most `limit` (1–1000).
pub async fn list_for_dashboard(db: &Db, limit: i64) -> Result<Vec<RefundView>, CoreError> {
    sqlx::query_as::<_, ViewRow>(&select_views(
        r#"order by case when r.status = 'PENDING_APPROVAL' then 0 else 1 end,
                    case when r.status = 'PENDING_APPROVAL' then r.created_at
                         else -r.created_at end,
                    r.id
           limit $1"#,
    ))
    .bind(limit.clamp(1, 1000))
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(RefundView::try_from)
    .collect()
}

/// One refund as the dashboard shows it, read inside a transaction.
async fn load_view(tx: &mut Transaction<'_, Any>, id: i64) -> Result<RefundView, CoreError> {
    load_row::<ViewRow, _>(tx, &select_views("where r.id = $1"), id).await
}

/// An order's refunds, oldest first.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Vec<Refund>, CoreError> {
    sqlx::query_as::<_, RefundRow>(&select_refunds(
        "where r.order_id = $1 order by r.created_at, r.id",
    ))
    .bind(order_id)
    .fetch_all(db.reader())
    .await?
    .into_iter()
    .map(Refund::try_from)
    .collect()
}

/// The refund with this row id, if any.
pub async fn find(db: &Db, id: i64) -> Result<Option<Refund>, CoreError> {
    sqlx::query_as::<_, RefundRow>(&select_refunds("where r.id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await?
        .map(Refund::try_from)
        .transpose()
}

/// The refund with this number, if any.
pub async fn find_by_out_refund_no(db: &Db, no: &str) -> Result<Option<Refund>, CoreError> {
    sqlx::query_as::<_, RefundRow>(&select_refunds("where r.out_refund_no = $1"))
        .bind(no)
        .fetch_optional(db.reader())
        .await?
        .map(Refund::try_from)
        .transpose()
}

/// The refund as stored, read inside a transaction.
async fn load(tx: &mut Transaction<'_, Any>, id: i64) -> Result<Refund, CoreError> {
    load_row::<RefundRow, _>(tx, &select_refunds("where r.id = $1"), id).await
}

/// The one row `sql` (with `$1` = `id`) reads inside a transaction, converted.
async fn load_row<R, T>(tx: &mut Transaction<'_, Any>, sql: &str, id: i64) -> Result<T, CoreError>
where
    R: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    T: TryFrom<R, Error = CoreError>,
{
    sqlx::query_as::<_, R>(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(CoreError::NotFound)?
        .try_into()
}

fn publish(events: &EventBus, refund: &Refund) {
    events.publish(Event::RefundChanged {
        refund_id: refund.id,
        out_refund_no: refund.out_refund_no.clone(),
        order_id: refund.order_id,
        status: refund.status.as_str().into(),
    });
}

// ---------------------------------------------------------------------------------------
// Execution: the refund job.

/// How the refund job paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPolicy {
    /// The wait before the first retry after a transient failure; doubled per attempt.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// The wait before a `PROCESSING` refund is first asked about with refundquery (the
    /// notification usually comes first). Later waits grow with the refund's age, up to
    /// `query_max`.
    pub query_delay: Duration,
    /// The longest wait between two refundqueries of one refund.
    pub query_max: Duration,
    /// How long a claim keeps other instances away: longer than one call with the client's
    /// timeouts, so a lease only runs out when its holder died.
    pub lease: Duration,
    /// The refund `notify_url` sent with every refund (spec §8.5).
    pub notify_url: Option<String>,
    /// When a refund that ended `FAILED` after more than one call is asked about again
    /// with refundquery, counted from its failure: an earlier call's outcome was unknown,
    /// and WeChat Pay may have made the refund after all.
    pub failed_checks: [Duration; 2],
}

impl Default for RefundPolicy {
    fn default() -> Self {
        RefundPolicy {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            query_delay: Duration::from_secs(60),
            query_max: Duration::from_secs(3600),
            lease: Duration::from_secs(60),
            notify_url: None,
            failed_checks: [Duration::from_secs(600), Duration::from_secs(86_400)],
        }
    }
}

impl RefundPolicy {
    /// The wait after the `attempts`-th failed attempt: `retry_base` doubled per attempt
    /// after the first, at most `retry_max`.
    pub fn retry_after(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.retry_base
            .saturating_mul(1 << doublings)
            .min(self.retry_max)
    }

    /// The wait before the next refundquery of a refund that has been in its status for
    /// `age`: as long as it has already waited (so the gaps double), between `query_delay`
    /// and `query_max`.
    fn query_after(&self, age: Duration) -> Duration {
        age.clamp(self.query_delay, self.query_max.max(self.query_delay))
    }
}

/// A refund claimed by this instance with [`claim_due`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The refund as claimed.
    pub refund: Refund,
    /// The lease's end (`next_attempt_at`): every write checks it, so a claim that ran out
    /// and was taken over by another instance writes nothing.
    lease_until: i64,
    /// When it was claimed (the claim's `now`): which of its scheduled looks this is.
    claimed_at: i64,
}

/// Claims up to `limit` due refunds (`APPROVED`, `SUBMITTED`, `PROCESSING`, `CHANGE`, and
/// `FAILED` ones due for a [check](RefundPolicy::failed_checks), with
/// `next_attempt_at <= now`) by moving their `next_attempt_at` to `now + lease` in one
/// statement, exactly like the order sync's claim: PostgreSQL skips rows another instance
/// is claiming (`for update skip locked`); on SQLite the statement is one write transaction.
pub async fn claim_due(
    db: &Db,
    now: i64,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Claimed>, CoreError> {
    let lock = match db.backend() {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    let until = now.saturating_add(millis(lease));
    let ids: Vec<i64> = sqlx::query_scalar(&format!(
        r#"update refunds set next_attempt_at = $1
           where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED')
             and id in (select id from refunds
                        where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED')
                          and next_attempt_at <= $2
                        order by next_attempt_at
                        limit $3
                        {lock})
           returning id"#
    ))
    .bind(until)
    .bind(now)
    .bind(limit)
    .fetch_all(db.writer())
    .await?;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(refund) = find(db, id).await? {
            claimed.push(Claimed {
                refund,
                lease_until: until,
                claimed_at: now,
            });
        }
    }
    Ok(claimed)
}

/// Works on one refund claimed by [`claim_due`]:
///
/// - `APPROVED` → [submitted](RefundStatus::Submitted) (committed, attempts + 1), then
///   `/secapi/pay/refund` with the order's `total_fee`, the refund's amount and its
///   `out_refund_no`;
/// - `SUBMITTED` (an earlier call's outcome is unknown, or it failed transiently) →
///   refundquery first: found → its state is adopted; `REFUNDNOTEXIST` → sent again exactly
///   as before; anything else → asked again later;
/// - `PROCESSING`, `CHANGE` → refundquery; a changed state is applied, else it is asked
///   again later (waits growing with its age);
/// - `FAILED` (due for a [check](RefundPolicy::failed_checks)) → refundquery; found → its
///   state is adopted; otherwise the next check, or none after the last.
///
/// The refund call's answer: accepted → `PROCESSING` with `refund_id`; timeout, transport
/// error, 5xx, `SYSTEMERROR`, `BIZERR_NEED_RETRY`, `FREQUENCY_LIMITED` → stays `SUBMITTED`,
/// retried after [`RefundPolicy::retry_after`]; no certificate, a certificate refused in
/// the handshake, or a business error (`NOTENOUGH`, `ERROR`, …) → `FAILED` with the reason in
/// plain words. Returns the refund as stored afterwards.
#[tracing::instrument(skip_all, fields(refund.out_refund_no = %claimed.refund.out_refund_no))]
pub async fn process_claimed(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let refund = &claimed.refund;
    match refund.status {
        RefundStatus::Approved => submit(db, api, events, policy, claimed).await,
        RefundStatus::Submitted => match query(api, refund).await {
            Queried::Found(result) => {
                tracing::info!(status = %result.status, "refundquery found the submitted refund");
                apply_and_publish(db, events, policy, refund, &result).await
            }
            Queried::NotExist => submit(db, api, events, policy, claimed).await,
            Queried::Failed(e) => {
                let failure = classify(&e);
                retry_later(db, policy, claimed, &failure).await
            }
        },
        RefundStatus::Processing | RefundStatus::Change => {
            match query(api, refund).await {
                Queried::Found(result) if result.status != refund.status => {
                    return apply_and_publish(db, events, policy, refund, &result).await
                }
                Queried::Found(_) => {}
                Queried::NotExist => {
                    tracing::error!("refundquery does not know a refund WeChat Pay accepted");
                }
                Queried::Failed(e) => {
                    tracing::warn!(error = %e, "refundquery failed; asked again later");
                }
            }
            let age = Duration::from_millis(
                u64::try_from(now_ms().saturating_sub(refund.updated_at)).unwrap_or(0),
            );
            reschedule(db, claimed, policy.query_after(age)).await
        }
        RefundStatus::Failed => {
            match query(api, refund).await {
                Queried::Found(result) => {
                    tracing::warn!(status = %result.status, "a refund that ended FAILED went through after all (refundquery)");
                    return apply_and_publish(db, events, policy, refund, &result).await;
                }
                Queried::NotExist => {
                    tracing::info!("refundquery confirms the failed refund was never made");
                }
                Queried::Failed(e) => {
                    tracing::warn!(error = %e, "refundquery of a failed refund failed; asked at the next check");
                }
            }
            check_failed_later(db, policy, claimed).await
        }
        // Nothing to do (it changed after the claim was read).
        _ => reload(db, refund.id).await,
    }
}

/// Marks the refund `SUBMITTED` (committed), then calls the refund endpoint.
async fn submit(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let refund = &claimed.refund;
    let now = now_ms();
    // The lease is renewed with the mark, so it covers the call that follows.
    let lease_until = now.saturating_add(millis(policy.lease));
    let marked = sqlx::query(
        r#"update refunds
           set status = 'SUBMITTED', attempts = attempts + 1, next_attempt_at = $1,
               updated_at = $2
           where id = $3 and status in ('APPROVED', 'SUBMITTED') and next_attempt_at = $4"#,
    )
    .bind(lease_until)
    .bind(now)
    .bind(refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    if marked.rows_affected() != 1 {
        tracing::info!("the refund's lease was taken over; leaving it");
        return reload(db, refund.id).await;
    }
    let submitted = reload(db, refund.id).await?;
    if refund.status != RefundStatus::Submitted {
        publish(events, &submitted);
    }
    let total_fee: i64 = sqlx::query_scalar("select total_fee from orders where id = $1")
        .bind(refund.order_id)
        .fetch_one(db.reader())
        .await?;
    let mut req = RefundRequest::new(
        OrderRef::OutTradeNo(refund.out_trade_no.clone()),
        refund.out_refund_no.clone(),
        total_fee,
        refund.amount_fen,
    );
    req.notify_url = policy.notify_url.clone();
    let claimed = Claimed {
        refund: submitted,
        lease_until,
        claimed_at: claimed.claimed_at,
    };
    match api.refund(&req).await {
        Ok(accepted) => {
            if accepted.refund_fee != refund.amount_fen {
                tracing::error!(
                    wxpay.refund_fee = accepted.refund_fee,
                    "WeChat Pay accepted the refund with another amount; check it by hand"
                );
            }
            tracing::info!(refund.refund_id = %accepted.refund_id, "refund accepted");
            let result = WxResult {
                status: RefundStatus::Processing,
                refund_id: Some(accepted.refund_id),
                recv_accout: None,
                success_at: None,
            };
            apply_and_publish(db, events, policy, &claimed.refund, &result).await
        }
        Err(e) => {
            let failure = classify(&e);
            if failure.retry {
                tracing::warn!(error = %e, attempts = claimed.refund.attempts, "refund call failed; retried later with the same out_refund_no");
                retry_later(db, policy, &claimed, &failure).await
            } else {
                tracing::warn!(error = %e, code = %failure.code, "refund refused; it ends FAILED");
                fail(db, events, policy, &claimed, &failure).await
            }
        }
    }
}

/// A refund call's failure, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// Send it again later (the outcome is unknown or the error transient).
    retry: bool,
    /// `err_code`, or our own code for failures without one.
    code: String,
    /// Plain words for the dashboard.
    message: String,
}

/// Sorts a refund call's error (spec §7): what is retried with the same number, and what
/// ends the refund with a reason a person can act on.
fn classify(e: &wxpay::Error) -> Failure {
    let fail = |code: &str, message: String| Failure {
        retry: false,
        code: code.to_owned(),
        message,
    };
    let retry = |code: &str, message: String| Failure {
        retry: true,
        code: code.to_owned(),
        message,
    };
    match e {
        wxpay::Error::NoIdentity => fail(
            "NO_CERTIFICATE",
            "no merchant client certificate is configured: refunds need it for WeChat Pay's \
             mutual TLS (PAYDESK_WXPAY__CERT_PEM and __KEY_PEM, or __P12)"
                .into(),
        ),
        wxpay::Error::Identity { reason } => fail(
            "NO_CERTIFICATE",
            format!("the merchant client certificate could not be used: {reason}"),
        ),
        wxpay::Error::Transport { .. } if certificate_refused(e) => fail(
            "CERTIFICATE_REFUSED",
            format!(
                "WeChat Pay refused the merchant client certificate in the TLS handshake \
                 (is it this merchant's apiclient_cert, issued by WeChat Pay?): {}",
                error_chain(e)
            ),
        ),
        wxpay::Error::HttpStatus {
            status: 400, body, ..
        } if body.to_ascii_lowercase().contains("certificate") => fail(
            "CERTIFICATE_REFUSED",
            format!("WeChat Pay's gateway refused the client certificate: {body}"),
        ),
        wxpay::Error::ResultFail {
            err_code,
            err_code_des,
        } => match err_code.as_str() {
            "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" => retry(
                err_code,
                format!("WeChat Pay asked to try again later ({err_code}: {err_code_des})"),
            ),
            code => fail(code, business_message(code, err_code_des)),
        },
        wxpay::Error::ReturnFail { return_msg } => fail(
            "RETURN_FAIL",
            format!(
                "WeChat Pay refused the request itself (check appid, mch_id, key): {return_msg}"
            ),
        ),
        _ if e.is_unknown_outcome() || e.retry_safe() => retry(
            match e {
                wxpay::Error::Timeout { .. } => "TIMEOUT",
                wxpay::Error::HttpStatus { .. } => "HTTP_STATUS",
                _ => "TRANSPORT",
            },
            format!(
                "no answer from WeChat Pay; retried with the same refund number: {}",
                error_chain(e)
            ),
        ),
        other => fail("ERROR", format!("the refund could not be sent: {other}")),
    }
}

/// The dashboard's words for WeChat Pay's refund `err_code`s (spec §7).
fn business_message(code: &str, des: &str) -> String {
    let plain = match code {
        "NOTENOUGH" => "the merchant account's refundable balance is too low: top it up, then file the refund again",
        "TRADE_OVERDUE" => "the order was paid more than a year ago: WeChat Pay no longer refunds it; refund offline",
        "USER_ACCOUNT_ABNORMAL" => "the payer's WeChat account is closed or abnormal: refund offline",
        "ORDERNOTEXIST" => "WeChat Pay does not know this order as paid",
        "INVALID_REQUEST" | "REFUND_FEE_MISMATCH" => "WeChat Pay refused the amounts (over the refundable amount, or different from an earlier request with this number)",
        "ERROR" => "WeChat Pay refused the refund",
        "INVALID_TRANSACTIONID" => "WeChat Pay refused the order's transaction id",
        "PARAM_ERROR" => "WeChat Pay refused a parameter of the refund",
        _ => "WeChat Pay refused the refund",
    };
    if des.is_empty() {
        format!("{plain} ({code})")
    } else {
        format!("{plain} ({code}: {des})")
    }
}

/// Whether a transport error is the TLS handshake refusing our client certificate (the
/// server's alert names it). Nothing reached the refund endpoint then, so it is not an
/// unknown outcome: retrying cannot help until someone fixes the certificate.
fn certificate_refused(e: &wxpay::Error) -> bool {
    let chain = error_chain(e).to_ascii_lowercase();
    chain.contains("certificate") || chain.contains("alert") || chain.contains("handshake")
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Keeps a `SUBMITTED` refund for a later attempt (if this instance still holds it).
async fn retry_later(
    db: &Db,
    policy: &RefundPolicy,
    claimed: &Claimed,
    failure: &Failure,
) -> Result<Refund, CoreError> {
    let now = now_ms();
    let next = now.saturating_add(millis(policy.retry_after(claimed.refund.attempts.max(1))));
    sqlx::query(
        r#"update refunds
           set last_error_code = $1, last_error = $2, next_attempt_at = $3, updated_at = $4
           where id = $5 and status = 'SUBMITTED' and next_attempt_at = $6"#,
    )
    .bind(&failure.code)
    .bind(&failure.message)
    .bind(next)
    .bind(now)
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

/// `SUBMITTED → FAILED` with the reason. After more than one call (an earlier one's outcome
/// was unknown) the first [check](RefundPolicy::failed_checks) is scheduled.
async fn fail(
    db: &Db,
    events: &EventBus,
    policy: &RefundPolicy,
    claimed: &Claimed,
    failure: &Failure,
) -> Result<Refund, CoreError> {
    let now = now_ms();
    let check =
        (claimed.refund.attempts > 1).then(|| now.saturating_add(millis(policy.failed_checks[0])));
    let updated = sqlx::query(
        r#"update refunds
           set status = 'FAILED', last_error_code = $1, last_error = $2,
               next_attempt_at = $3, updated_at = $4
           where id = $5 and status = 'SUBMITTED' and next_attempt_at = $6"#,
    )
    .bind(&failure.code)
    .bind(&failure.message)
    .bind(check)
    .bind(now)
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    let refund = reload(db, claimed.refund.id).await?;
    if updated.rows_affected() == 1 {
        publish(events, &refund);
    }
    Ok(refund)
}

/// Schedules a checked `FAILED` refund's next [check](RefundPolicy::failed_checks): the
/// first one counted from its failure (`updated_at`) that falls after this check's claim,
/// or none after the last (if this instance still holds it).
async fn check_failed_later(
    db: &Db,
    policy: &RefundPolicy,
    claimed: &Claimed,
) -> Result<Refund, CoreError> {
    let failed_at = claimed.refund.updated_at;
    let next = policy
        .failed_checks
        .iter()
        .map(|d| failed_at.saturating_add(millis(*d)))
        .find(|at| *at > claimed.claimed_at);
    sqlx::query(
        r#"update refunds set next_attempt_at = $1
           where id = $2 and status = 'FAILED' and next_attempt_at = $3"#,
    )
    .bind(next)
    .bind(claimed.refund.id)
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

/// Sets the next look at a claimed refund (if this instance still holds it).
async fn reschedule(db: &Db, claimed: &Claimed, after: Duration) -> Result<Refund, CoreError> {
    // updated_at stays: it marks when the status last changed (the query backoff's base).
    sqlx::query(
        r#"update refunds set next_attempt_at = $1
           where id = $2 and status = $3 and next_attempt_at = $4"#,
    )
    .bind(now_ms().saturating_add(millis(after)))
    .bind(claimed.refund.id)
    .bind(claimed.refund.status.as_str())
    .bind(claimed.lease_until)
    .execute(db.writer())
    .await?;
    reload(db, claimed.refund.id).await
}

enum Queried {
    Found(WxResult),
    NotExist,
    Failed(wxpay::Error),
}

/// refundquery by `out_refund_no` (spec §8.6), reduced to this refund's state. An answer
/// whose amount differs from ours is not adopted (it is logged and treated as a failure).
async fn query(api: &dyn Api, refund: &Refund) -> Queried {
    let req = RefundQueryRequest::from(RefundQuery::ByOutRefundNo(refund.out_refund_no.clone()));
    match api.refund_query(req).await {
        Ok(answer) => {
            let Some(item) = answer
                .refunds
                .into_iter()
                .find(|i| i.out_refund_no == refund.out_refund_no)
            else {
                return Queried::NotExist;
            };
            if item.refund_fee != refund.amount_fen {
                tracing::error!(
                    wxpay.refund_fee = item.refund_fee,
                    "refundquery answers another amount for our refund number; check it by hand"
                );
                return Queried::Failed(wxpay::Error::InvalidField {
                    field: "refund_fee".into(),
                    value: item.refund_fee.to_string(),
                    reason: "differs from the requested amount",
                });
            }
            let Some(status) = from_wechat(&item.refund_status) else {
                tracing::warn!(status = %item.refund_status, "refundquery: unknown refund_status, treated as in progress");
                return Queried::Found(WxResult {
                    status: RefundStatus::Processing,
                    refund_id: Some(item.refund_id),
                    recv_accout: item.refund_recv_accout,
                    success_at: None,
                });
            };
            Queried::Found(WxResult {
                status,
                refund_id: Some(item.refund_id),
                recv_accout: item.refund_recv_accout,
                success_at: item.refund_success_time.map(to_ms),
            })
        }
        Err(e) if e.err_code() == Some("REFUNDNOTEXIST") => Queried::NotExist,
        Err(e) => Queried::Failed(e),
    }
}

/// Our status for WeChat Pay's `refund_status` (§8.6); `None` for values we do not know
/// (treated as not final).
pub(crate) fn from_wechat(s: &wxpay::RefundStatus) -> Option<RefundStatus> {
    match s {
        wxpay::RefundStatus::Success => Some(RefundStatus::Success),
        wxpay::RefundStatus::RefundClose => Some(RefundStatus::RefundClose),
        wxpay::RefundStatus::Processing => Some(RefundStatus::Processing),
        wxpay::RefundStatus::Change => Some(RefundStatus::Change),
        _ => None,
    }
}

pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What WeChat Pay says about a refund (refund answer, refundquery, notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WxResult {
    pub(crate) status: RefundStatus,
    pub(crate) refund_id: Option<String>,
    pub(crate) recv_accout: Option<String>,
    pub(crate) success_at: Option<i64>,
}

/// [`apply_result`] in its own transaction, publishing the change after the commit.
async fn apply_and_publish(
    db: &Db,
    events: &EventBus,
    policy: &RefundPolicy,
    refund: &Refund,
    result: &WxResult,
) -> Result<Refund, CoreError> {
    let mut tx = db.begin_write().await?;
    let applied = apply_result(&mut tx, db.backend(), policy, refund.id, result).await?;
    tx.commit().await?;
    if applied.changed {
        publish(events, &applied.refund);
    }
    Ok(applied.refund)
}

/// The outcome of [`apply_result`].
pub(crate) struct Applied {
    /// Whether this call moved the refund.
    pub(crate) changed: bool,
    /// The refund as stored afterwards (inside the transaction).
    pub(crate) refund: Refund,
}

/// Moves a refund to WeChat Pay's state if the state machine allows it from its current
/// one (one conditional update, so concurrent results apply once), and on `SUCCESS` moves
/// the order to `PARTIALLY_REFUNDED` or `REFUNDED` from the sum of its successful refunds
/// (never backwards; the order row is locked on PostgreSQL so two refunds succeeding at
/// once both count).
pub(crate) async fn apply_result(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    policy: &RefundPolicy,
    refund_id: i64,
    result: &WxResult,
) -> Result<Applied, CoreError> {
    let now = now_ms();
    let next_attempt_at = match result.status {
        RefundStatus::Processing => Some(now.saturating_add(millis(policy.query_delay))),
        RefundStatus::Change => Some(now.saturating_add(millis(policy.query_max))),
        _ => None,
    };
    let success_at =
        (result.status == RefundStatus::Success).then(|| result.success_at.unwrap_or(now));
    let updated = sqlx::query(&format!(
        r#"update refunds
           set status = $1, refund_id = coalesce($2, refund_id),
               refund_recv_accout = coalesce($3, refund_recv_accout),
               succeeded_at = coalesce($4, succeeded_at), next_attempt_at = $5,
               last_error_code = null, last_error = null, updated_at = $6
           where id = $7 and status in ({})"#,
        RefundStatus::sql_sources(result.status)
    ))
    .bind(result.status.as_str())
    .bind(result.refund_id.as_deref())
    .bind(result.recv_accout.as_deref())
    .bind(success_at)
    .bind(next_attempt_at)
    .bind(now)
    .bind(refund_id)
    .execute(&mut **tx)
    .await?;
    let changed = updated.rows_affected() == 1;
    let refund = load(tx, refund_id).await?;
    if changed && result.status == RefundStatus::Success {
        settle_order(tx, backend, refund.order_id).await?;
    }
    Ok(Applied { changed, refund })
}

/// Sets the order's status from its successful refunds: all of it → `REFUNDED`, part →
/// `PARTIALLY_REFUNDED`; only forwards.
async fn settle_order(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    order_id: i64,
) -> Result<(), CoreError> {
    let lock = match backend {
        Backend::Postgres => "for update",
        Backend::Sqlite => "",
    };
    let (status, total_fee): (String, i64) = sqlx::query_as(&format!(
        "select status, total_fee from orders where id = $1 {lock}"
    ))
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    let refunded: i64 = sqlx::query_scalar(
        r#"select cast(coalesce(sum(amount_fen), 0) as bigint) from refunds
           where order_id = $1 and status = 'SUCCESS'"#,
    )
    .bind(order_id)
    .fetch_one(&mut **tx)
    .await?;
    let current: OrderStatus = status.parse()?;
    let next = if refunded >= total_fee {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    match current.transition_to(next) {
        Ok(next) => {
            sqlx::query(
                "update orders set status = $1, updated_at = $2 where id = $3 and status = $4",
            )
            .bind(next.as_str())
            .bind(now_ms())
            .bind(order_id)
            .bind(current.as_str())
            .execute(&mut **tx)
            .await?;
        }
        Err(e) => {
            tracing::warn!(order.id = order_id, error = %e, "a successful refund does not move the order");
        }
    }
    Ok(())
}

async fn reload(db: &Db, id: i64) -> Result<Refund, CoreError> {
    find(db, id).await?.ok_or(CoreError::NotFound)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_open_request_index_holds_only_the_status_requests_are_filed_in() {
        for dir in ["sqlite", "postgres"] {
            let migration = std::fs::read_to_string(format!(
                "{}/../migrations/{dir}/20261207000040_mp_throttles.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let index = &migration[migration.find("create unique index").unwrap()..];
            assert!(index.contains("status = 'PENDING_APPROVAL';"), "{dir}");
        }
        assert!(open_sql().contains("'PENDING_APPROVAL'"));
        assert!(!RefundStatus::PendingApproval.is_final());
    }

    #[test]
    fn status_names_round_trip_and_counting_excludes_the_dead_ends() {
        for s in RefundStatus::ALL {
            assert_eq!(s.as_str().parse::<RefundStatus>().unwrap(), s);
            let dead = matches!(
                s,
                RefundStatus::Rejected | RefundStatus::Failed | RefundStatus::RefundClose
            );
            assert_eq!(s.counts_against_order(), !dead, "{s}");
        }
        assert!("PAID".parse::<RefundStatus>().is_err());
    }

    #[test]
    fn final_statuses_have_no_way_out_and_nothing_returns_to_pending() {
        for from in RefundStatus::ALL {
            for to in RefundStatus::ALL {
                if from.is_final() && from != RefundStatus::Failed {
                    assert!(!from.can_move_to(to), "{from} -> {to}");
                }
                if to == RefundStatus::PendingApproval || to == RefundStatus::Approved {
                    assert!(
                        !from.can_move_to(to) || from == RefundStatus::PendingApproval,
                        "{from} -> {to}"
                    );
                }
            }
        }
        assert!(RefundStatus::Change.can_move_to(RefundStatus::Success));
        assert!(!RefundStatus::Processing.can_move_to(RefundStatus::Submitted));
        assert_eq!(
            RefundStatus::sql_sources(RefundStatus::Success),
            "'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED'"
        );
    }

    #[test]
    fn refund_numbers_fit_wechat_limits() {
        let no = new_out_refund_no();
        assert_eq!(no.len(), 26);
        assert!(no.starts_with("RF") && no.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(no, new_out_refund_no());
    }

    #[test]
    fn retries_back_off_and_business_errors_fail() {
        let p = RefundPolicy::default();
        let gaps: Vec<u64> = (1..=9).map(|n| p.retry_after(n).as_secs()).collect();
        assert_eq!(gaps, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
        let sys = wxpay::Error::ResultFail {
            err_code: "SYSTEMERROR".into(),
            err_code_des: "系统超时".into(),
        };
        assert!(classify(&sys).retry);
        let broke = wxpay::Error::ResultFail {
            err_code: "NOTENOUGH".into(),
            err_code_des: "余额不足".into(),
        };
        let f = classify(&broke);
        assert!(!f.retry);
        assert_eq!(f.code, "NOTENOUGH");
        assert!(f.message.contains("balance"), "{}", f.message);
        let none = classify(&wxpay::Error::NoIdentity);
        assert!(!none.retry && none.code == "NO_CERTIFICATE");
        let timeout = wxpay::Error::Timeout {
            endpoint: "/secapi/pay/refund".into(),
        };
        assert!(classify(&timeout).retry);
    }
}
