//! Refunds end to end (docs/design.md "Data" refunds, "Refund"; docs/wechatpay-v2.md §8.5, §8.6, §8.9, §10.2).
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
//!
//! Here: the model and its reads. The request and the manager's decision are in
//! [`request`], the execution against WeChat Pay (the refund job) in [`job`], and applying
//! what WeChat Pay says (refund answer, refundquery, refund notification) in [`outcome`].

use sqlx::{Any, FromRow, Transaction};

use crate::audit::Actor;
use crate::events::{Event, EventBus};
use crate::{CoreError, Db};

mod job;
pub(crate) mod outcome;
mod request;
mod status;

pub use job::{claim_due, process_claimed, recheck, release, Claimed, Rechecked, RefundPolicy};
pub(crate) use outcome::{apply_result, from_wechat, WxResult};
pub use request::{approve, file, reject, request};
pub use status::RefundStatus;
pub(crate) use status::StatusSql;

/// The statuses that do not count against the order, as an SQL list.
const NOT_COUNTING: &str = "'REJECTED', 'FAILED', 'REFUNDCLOSE'";

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
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
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
    #[sqlx(try_from = "String")]
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
    /// When WeChat Pay accepted it (its refund_id arrived; UTC ms): the day its row is on
    /// the daily bill.
    pub accepted_at: Option<i64>,
    /// Created (UTC ms).
    pub created_at: i64,
    /// Last changed (UTC ms).
    pub updated_at: i64,
}

/// A refund's columns, with the order's number (`refunds r join orders o`).
const REFUND_COLUMNS: &str = "r.id, r.out_refund_no, r.order_id, o.out_trade_no, r.amount_fen, \
    r.reason, r.requester_kind, r.requester, r.requester_user_id, r.status, r.decided_by, \
    r.decided_at, r.decision_reason, r.refund_id, r.attempts, r.last_error_code, r.last_error, \
    r.succeeded_at, r.accepted_at, r.created_at, r.updated_at";

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

/// A refund with what a manager weighs (`refunds r join orders o`), as [`RefundView`].
#[derive(FromRow)]
struct ViewRow {
    #[sqlx(flatten)]
    refund: Refund,
    order_total_fee: i64,
    committed: i64,
    earlier_refunds: i64,
    openid: String,
}

impl From<ViewRow> for RefundView {
    fn from(r: ViewRow) -> Self {
        RefundView {
            refund: r.refund,
            order_total_fee: r.order_total_fee,
            refundable_left: r.order_total_fee - r.committed,
            earlier_refunds: r.earlier_refunds,
            openid: r.openid,
        }
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
    Ok(sqlx::query_as::<_, ViewRow>(&select_views(
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
    .map(RefundView::from)
    .collect())
}

/// One refund as the dashboard shows it, read inside a transaction.
async fn load_view(tx: &mut Transaction<'_, Any>, id: i64) -> Result<RefundView, CoreError> {
    Ok(
        load_row::<ViewRow>(tx, &select_views("where r.id = $1"), id)
            .await?
            .into(),
    )
}

/// An order's refunds, oldest first.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Vec<Refund>, CoreError> {
    sqlx::query_as::<_, Refund>(&select_refunds(
        "where r.order_id = $1 order by r.created_at, r.id",
    ))
    .bind(order_id)
    .fetch_all(db.reader())
    .await
    .map_err(Into::into)
}

/// The refunds WeChat Pay accepted (`PROCESSING`, `SUCCESS`, `CHANGE`, `REFUNDCLOSE`) on
/// orders created at or after `orders_from` (UTC ms), oldest first: what a fresh sandbox
/// simulator is told besides the orders.
pub async fn accepted_for_orders_since(
    db: &Db,
    orders_from: i64,
) -> Result<Vec<Refund>, CoreError> {
    sqlx::query_as::<_, Refund>(&select_refunds(
        "where o.created_at >= $1 and r.refund_id is not null \
         and r.status in ('PROCESSING', 'SUCCESS', 'CHANGE', 'REFUNDCLOSE') \
         order by r.created_at, r.id",
    ))
    .bind(orders_from)
    .fetch_all(db.reader())
    .await
    .map_err(Into::into)
}

/// The refund with this row id, if any.
pub async fn find(db: &Db, id: i64) -> Result<Option<Refund>, CoreError> {
    sqlx::query_as::<_, Refund>(&select_refunds("where r.id = $1"))
        .bind(id)
        .fetch_optional(db.reader())
        .await
        .map_err(Into::into)
}

/// The refund with this number, if any.
pub async fn find_by_out_refund_no(db: &Db, no: &str) -> Result<Option<Refund>, CoreError> {
    sqlx::query_as::<_, Refund>(&select_refunds("where r.out_refund_no = $1"))
        .bind(no)
        .fetch_optional(db.reader())
        .await
        .map_err(Into::into)
}

/// The refund as stored, read inside a transaction.
async fn load(tx: &mut Transaction<'_, Any>, id: i64) -> Result<Refund, CoreError> {
    load_row(tx, &select_refunds("where r.id = $1"), id).await
}

/// The one row `sql` (with `$1` = `id`) reads inside a transaction.
async fn load_row<R>(tx: &mut Transaction<'_, Any>, sql: &str, id: i64) -> Result<R, CoreError>
where
    R: for<'r> FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    sqlx::query_as::<_, R>(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(CoreError::NotFound)
}

fn publish(events: &EventBus, refund: &Refund) {
    events.publish(Event::RefundChanged {
        refund_id: refund.id,
        out_refund_no: refund.out_refund_no.clone(),
        order_id: refund.order_id,
        status: refund.status.as_str().into(),
    });
}

async fn reload(db: &Db, id: i64) -> Result<Refund, CoreError> {
    find(db, id).await?.ok_or(CoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
