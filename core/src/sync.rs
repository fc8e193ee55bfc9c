//! Order sync (docs/design.md "Sync"; docs/wechatpay-v2.md §8.3, §8.4, §10.1): notifications are not guaranteed,
//! so orders still waiting for their payment (`NOTPAY`, or `PAYERROR` after a failed
//! attempt: the shopper may still pay) are asked about with orderquery, and expired ones are
//! closed with closeorder, until each ends `PAID` or `CLOSED`.
//!
//! [`refresh_order`] and [`close_order`] are also what the mini program's status and cancel
//! calls use. Both may run at the same time as the job, a notification, or each other: every
//! change is one conditional update from `NOTPAY` (`where status = 'NOTPAY'`), so of several
//! writers exactly one moves the order and publishes the event; the others read what won.
//!
//! The job claims due orders with [`claim_due_orders`]: one statement pushes their
//! `next_sync_at` forward by a lease, so another instance skips them until the lease runs
//! out (PostgreSQL: `for update skip locked`; SQLite: the statement is one write
//! transaction, and writers queue). [`sync_claimed_order`] then queries or closes one order
//! and, if it is still `NOTPAY`, schedules the next look with [`SyncPolicy::delay_after`].

use std::time::Duration;

use wxpay::{Api, OrderQuery, OrderQueryResponse, TradeState};

use crate::error::ConflictReason;
use crate::events::{Event, EventBus, PaidVia};
use crate::orders::transitions::{self, awaiting_payment, Payment};
use crate::orders::{self, Order, OrderStatus};
use crate::time::duration_ms;
use crate::{now_ms, Backend, CoreError, Db};

/// How the sync job paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// The wait before an order's first query (set by whoever creates it) and the base of
    /// the backoff.
    pub first_delay: Duration,
    /// The longest wait between two queries of one order.
    pub max_delay: Duration,
    /// How long a claim keeps other instances away from an order.
    pub lease: Duration,
}

/// The shortest backoff step, so that a first delay of 0 (tests, "query at once") does not
/// turn into a busy loop on an order that stays unpaid.
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);

/// How long a claim lasts when nothing else is configured: far longer than one orderquery
/// or closeorder with the client's timeouts, so a lease only runs out when its holder died.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

impl SyncPolicy {
    /// The wait after an order's `attempts`-th query (1 for the first): the first delay
    /// doubled `attempts` times, at least [`MIN_BACKOFF`] doubled, at most `max_delay`. With
    /// the defaults (60 s, 600 s) the gaps are 60 s (creation), 120, 240, 480, 600, 600, …
    pub fn delay_after(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
        self.first_delay
            .max(MIN_BACKOFF)
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

/// Asks WeChat Pay about an order (orderquery by `out_trade_no`, docs/wechatpay-v2.md §8.3) and applies the
/// answer:
///
/// - `SUCCESS`, or a later paid state (`REFUND`), with our `total_fee` → `PAID` with
///   `transaction_id`, `bank_type` and `paid_at` from `time_end`; publishes
///   [`Event::OrderPaid`] via [`PaidVia::Query`];
/// - paid with another `total_fee` → nothing changes; logged as an error and returned as
///   [`CoreError::Internal`]: someone must look;
/// - `CLOSED` / `REVOKED` → `CLOSED`; `PAYERROR` → `PAYERROR` ([`Event::OrderClosed`]),
///   still asked about until it expires (a later payment still marks it `PAID`);
/// - `NOTPAY`, `USERPAYING`, `ACCEPT` → unchanged;
/// - `ORDERNOTEXIST` → unchanged: a business answer, not a failure (WeChat Pay never took
///   the order — its unifiedorder failed or never happened, or its state was lost — so
///   nobody can pay it); the order waits for its expiry and is then closed locally (see
///   [`close_order`]).
///
/// An order that no longer awaits its payment ([`OrderStatus::awaits_payment`]) is returned
/// as stored without a call. Returns the order as stored afterwards.
#[tracing::instrument(skip_all, fields(order.out_trade_no = %order.out_trade_no))]
pub async fn refresh_order(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    order: &Order,
) -> Result<Order, CoreError> {
    if !order.status.awaits_payment() {
        return reload(db, order).await;
    }
    let answer = match api
        .order_query(OrderQuery::ByOutTradeNo(order.out_trade_no.clone()))
        .await
    {
        Ok(answer) => answer,
        Err(e) if e.err_code() == Some("ORDERNOTEXIST") => {
            tracing::info!(
                prepay_id = order.prepay_id.is_some(),
                "orderquery: WeChat Pay has no such order (ORDERNOTEXIST); it stays unpaid until it expires"
            );
            return reload(db, order).await;
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("orderquery for {}", order.out_trade_no))
                .into())
        }
    };
    apply_query(db, events, order, &answer).await
}

/// Closes an unpaid order (closeorder, docs/wechatpay-v2.md §8.4) and applies the answer: success or
/// `ORDERCLOSED` → `CLOSED` ([`Event::OrderClosed`]); `ORDERPAID` → it was paid after all,
/// so [`refresh_order`] records the payment; `ORDERNOTEXIST` → closed locally (WeChat Pay
/// never took the order, so nobody can pay it). `SYSTEMERROR`, transport errors and
/// anything else are [`CoreError::Internal`]: the order stays as it is and is tried again
/// later.
///
/// An order already `CLOSED` is returned as stored; any status but `NOTPAY` / `PAYERROR` is
/// [`CoreError::Conflict`] (only an unpaid order can be closed), and so is one younger than
/// [`wxpay::CLOSE_AFTER`] (`TooEarlyToClose`, nothing is called: WeChat Pay would refuse;
/// the sync job closes it once it may). Returns the order as stored afterwards.
#[tracing::instrument(skip_all, fields(order.out_trade_no = %order.out_trade_no))]
pub async fn close_order(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    order: &Order,
) -> Result<Order, CoreError> {
    match order.status {
        s if s.awaits_payment() => {}
        OrderStatus::Closed => return reload(db, order).await,
        other => {
            return Err(CoreError::Conflict(ConflictReason::NotClosable {
                status: other.to_string(),
            }))
        }
    }
    let closes_at = closable_from(order);
    if now_ms() < closes_at {
        return Err(CoreError::Conflict(ConflictReason::TooEarlyToClose {
            closes_at,
        }));
    }
    match api.close_order(&order.out_trade_no).await {
        Ok(_) => end_unpaid(db, events, order, OrderStatus::Closed).await,
        Err(e) => match e.err_code() {
            Some("ORDERCLOSED") => end_unpaid(db, events, order, OrderStatus::Closed).await,
            Some("ORDERPAID") => {
                tracing::info!("closeorder answered ORDERPAID: the order was paid after all");
                refresh_order(db, api, events, order).await
            }
            Some("ORDERNOTEXIST") => {
                tracing::info!(
                    prepay_id = order.prepay_id.is_some(),
                    "closeorder: WeChat Pay has no such order (ORDERNOTEXIST); closed here"
                );
                end_unpaid(db, events, order, OrderStatus::Closed).await
            }
            _ => Err(anyhow::Error::new(e)
                .context(format!("closeorder for {}", order.out_trade_no))
                .into()),
        },
    }
}

/// When `order` can first be closed: WeChat Pay refuses closeorder within
/// [`wxpay::CLOSE_AFTER`] of creation (docs/wechatpay-v2.md §8.4).
pub fn closable_from(order: &Order) -> i64 {
    order
        .created_at
        .saturating_add(duration_ms(wxpay::CLOSE_AFTER))
}

/// Claims up to `limit` due orders (awaiting payment, `next_sync_at <= now`) for this instance by
/// moving their `next_sync_at` to `now + lease` in one statement, and returns them as
/// claimed (their `next_sync_at` is the lease's end, which [`sync_claimed_order`] checks
/// before it reschedules). `now` is the database's clock ([`crate::leases`]), so an
/// instance whose clock runs ahead takes no order another instance still holds. On PostgreSQL rows another instance is claiming are skipped
/// (`for update skip locked`); on SQLite the statement is a single write transaction, so
/// concurrent claims queue behind each other and never return the same order.
pub async fn claim_due_orders(
    db: &Db,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Order>, CoreError> {
    let lock = match db.backend() {
        Backend::Postgres => "for update skip locked",
        Backend::Sqlite => "",
    };
    let clock = crate::leases::clock_ms(db.backend());
    // updated_at stays: a lease is bookkeeping, not a change of the order.
    let awaiting = awaiting_payment!();
    let claimed: Vec<String> = sqlx::query_scalar(&format!(
        r#"update orders set next_sync_at = {clock} + $1
           where status in ({awaiting})
             and id in (select id from orders
                        where status in ({awaiting}) and next_sync_at <= {clock}
                        order by next_sync_at
                        limit $2
                        {lock})
           returning out_trade_no"#
    ))
    .bind(duration_ms(lease))
    .bind(limit)
    .fetch_all(db.writer())
    .await?;
    let mut orders = Vec::with_capacity(claimed.len());
    for no in claimed {
        // Gone only if someone deleted it meanwhile; nothing to sync then.
        orders.extend(orders::find_by_out_trade_no(db, &no).await?);
    }
    Ok(orders)
}

/// Gives claimed orders back before their lease runs out (an instance stopping with work it
/// has not started): each is due again at once for any instance, unless its lease was
/// taken over meanwhile. Returns how many were given back.
pub async fn release(db: &Db, claimed: &[Order]) -> Result<u64, CoreError> {
    let clock = crate::leases::clock_ms(db.backend());
    let sql = format!(
        "update orders set next_sync_at = {clock} where id = $1 and next_sync_at = $2 \
         and status in ({})",
        awaiting_payment!()
    );
    let mut released = 0;
    for order in claimed {
        released += sqlx::query(&sql)
            .bind(order.id)
            .bind(order.next_sync_at)
            .execute(db.writer())
            .await?
            .rows_affected();
    }
    Ok(released)
}

/// Does the job's work on one order claimed by [`claim_due_orders`] at `now`: an expired
/// order (`expires_at <= now`) is closed with [`close_order`], any other is refreshed with
/// [`refresh_order`]. If it still awaits its payment afterwards (unpaid, or the call failed), its
/// `sync_attempts` grows by one and its next look is set [`SyncPolicy::delay_after`] from
/// now, provided this instance still holds the lease. A failure is logged here, with the
/// order number, and returned; the order is still scheduled (at worst by the lease).
#[tracing::instrument(skip_all, fields(order.out_trade_no = %claimed.out_trade_no))]
pub async fn sync_claimed_order(
    db: &Db,
    api: &dyn Api,
    events: &EventBus,
    policy: &SyncPolicy,
    claimed: &Order,
    now: i64,
) -> Result<Order, CoreError> {
    // Expired, and old enough for WeChat Pay to close it; a younger one is asked about.
    let expired = claimed.expires_at.is_some_and(|at| at <= now) && closable_from(claimed) <= now;
    let outcome = if expired {
        close_order(db, api, events, claimed).await
    } else {
        refresh_order(db, api, events, claimed).await
    };
    if let Err(e) = &outcome {
        tracing::warn!(error = %format!("{e:#}"), expired, "order sync failed; it is tried again later");
    }
    let rescheduled = reschedule(db, policy, claimed).await;
    if let Err(e) = &rescheduled {
        tracing::warn!(error = %e, "rescheduling the order failed; it is tried again when the lease runs out");
    }
    let order = outcome?;
    Ok(rescheduled?.unwrap_or(order))
}

/// Sets the next look at a claimed order that still awaits its payment; `None` when it
/// does not (it ended) or another instance took it over after the lease ran out.
async fn reschedule(
    db: &Db,
    policy: &SyncPolicy,
    claimed: &Order,
) -> Result<Option<Order>, CoreError> {
    let attempts = claimed.sync_attempts.saturating_add(1);
    // Timed by the database's clock, like the claim that will take it next.
    let clock = crate::leases::clock_ms(db.backend());
    let updated = sqlx::query(&format!(
        "update orders set next_sync_at = {clock} + $1, sync_attempts = $2, updated_at = {clock} \
         where id = $3 and next_sync_at = $4 and status in ({})",
        awaiting_payment!()
    ))
    .bind(duration_ms(policy.delay_after(attempts)))
    .bind(attempts)
    .bind(claimed.id)
    .bind(claimed.next_sync_at)
    .execute(db.writer())
    .await?;
    if updated.rows_affected() == 1 {
        Ok(Some(reload(db, claimed).await?))
    } else {
        Ok(None)
    }
}

/// Applies an orderquery answer for an order awaiting its payment (see [`refresh_order`]).
async fn apply_query(
    db: &Db,
    events: &EventBus,
    order: &Order,
    answer: &OrderQueryResponse,
) -> Result<Order, CoreError> {
    if let Some(no) = answer.out_trade_no.as_deref() {
        if no != order.out_trade_no {
            return Err(anyhow::anyhow!(
                "orderquery for {} answered about {no}",
                order.out_trade_no
            )
            .into());
        }
    }
    match &answer.trade_state {
        TradeState::Success | TradeState::Refund => mark_paid(db, events, order, answer).await,
        TradeState::Closed | TradeState::Revoked => {
            end_unpaid(db, events, order, OrderStatus::Closed).await
        }
        TradeState::PayError if order.status == OrderStatus::NotPay => {
            end_unpaid(db, events, order, OrderStatus::PayError).await
        }
        TradeState::PayError => reload(db, order).await,
        TradeState::NotPay | TradeState::UserPaying | TradeState::Accept | TradeState::Other(_) => {
            reload(db, order).await
        }
    }
}

/// `NOTPAY | PAYERROR → PAID` from a verified orderquery answer, if the amount is ours.
async fn mark_paid(
    db: &Db,
    events: &EventBus,
    order: &Order,
    answer: &OrderQueryResponse,
) -> Result<Order, CoreError> {
    if answer.total_fee != Some(order.total_fee) {
        tracing::error!(
            order.total_fee = order.total_fee,
            wxpay.total_fee = ?answer.total_fee,
            trade_state = %answer.trade_state,
            "orderquery says the order is paid with another amount; it stays NOTPAY until someone looks"
        );
        return Err(anyhow::anyhow!(
            "orderquery for {}: paid total_fee {:?} differs from the order's {}",
            order.out_trade_no,
            answer.total_fee,
            order.total_fee
        )
        .into());
    }
    let Some(transaction_id) = answer.transaction_id.as_deref() else {
        return Err(anyhow::anyhow!(
            "orderquery for {}: {} without transaction_id",
            order.out_trade_no,
            answer.trade_state
        )
        .into());
    };
    let now = now_ms();
    let paid_at = answer.time_end.map(crate::time::unix_ms).unwrap_or(now);
    let payment = Payment {
        transaction_id,
        bank_type: answer.bank_type.as_deref(),
        paid_at,
    };
    let moved = transitions::pay(db.writer(), order.id, &payment, now).await?;
    let stored = reload(db, order).await?;
    if moved {
        tracing::info!("orderquery: the order is paid");
        events.publish(Event::OrderPaid {
            order_id: order.id,
            out_trade_no: order.out_trade_no.clone(),
            total_fee: order.total_fee,
            transaction_id: Some(transaction_id.to_owned()),
            paid_at,
            via: PaidVia::Query,
        });
    } else if !stored.status.was_paid() || stored.transaction_id.as_deref() != Some(transaction_id)
    {
        // A notification with the same transaction_id got there first: nothing to say.
        // Anything else contradicts WeChat Pay and needs a person.
        tracing::error!(
            status = %stored.status,
            "orderquery says the order is paid, but it is stored otherwise: check for a double payment or a refund owed"
        );
        return Err(anyhow::anyhow!(
            "orderquery for {}: paid with {transaction_id}, stored as {} with {:?}",
            order.out_trade_no,
            stored.status,
            stored.transaction_id
        )
        .into());
    }
    Ok(stored)
}

/// `NOTPAY | PAYERROR → CLOSED` or `NOTPAY → PAYERROR` (`status`), publishing
/// [`Event::OrderClosed`] if this call moved it.
async fn end_unpaid(
    db: &Db,
    events: &EventBus,
    order: &Order,
    status: OrderStatus,
) -> Result<Order, CoreError> {
    let moved = if status == OrderStatus::PayError {
        transitions::payment_failed(db.writer(), order.id, now_ms()).await?
    } else {
        transitions::close(db.writer(), order.id, now_ms()).await?
    };
    if moved {
        tracing::info!(status = %status, "the order is unpaid: {status}");
        events.publish(Event::OrderClosed {
            order_id: order.id,
            out_trade_no: order.out_trade_no.clone(),
            status: status.as_str().into(),
        });
    }
    reload(db, order).await
}

/// The order as stored now.
async fn reload(db: &Db, order: &Order) -> Result<Order, CoreError> {
    orders::find_by_out_trade_no(db, &order.out_trade_no)
        .await?
        .ok_or(CoreError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(first: u64, max: u64) -> SyncPolicy {
        SyncPolicy {
            first_delay: Duration::from_secs(first),
            max_delay: Duration::from_secs(max),
            lease: DEFAULT_LEASE,
        }
    }

    #[test]
    fn backoff_doubles_the_first_delay_up_to_the_cap() {
        let p = policy(60, 600);
        let gaps: Vec<u64> = (1..=6).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(gaps, [120, 240, 480, 600, 600, 600]);
    }

    #[test]
    fn a_zero_first_delay_still_backs_off_from_one_second() {
        let p = policy(0, 600);
        let gaps: Vec<u64> = (1..=4).map(|n| p.delay_after(n).as_secs()).collect();
        assert_eq!(gaps, [2, 4, 8, 16]);
    }

    #[test]
    fn huge_attempt_counts_neither_overflow_nor_pass_the_cap() {
        let p = policy(60, 600);
        assert_eq!(p.delay_after(i64::MAX), Duration::from_secs(600));
        assert_eq!(p.delay_after(-5), Duration::from_secs(60));
    }
}
