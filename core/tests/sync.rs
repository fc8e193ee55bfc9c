//! Order sync against a fake WeChat Pay (`wxpay::MockApi`), on SQLite and (when configured)
//! PostgreSQL: how each `trade_state` and `err_code` is applied (docs/wechatpay-v2.md §8.3, §8.4), the
//! claim's lease, and the backoff.

use std::time::Duration;

use paydesk_core::error::ConflictReason;
use paydesk_core::events::{Event, EventBus, PaidVia};
use paydesk_core::orders::{self, NewOrder, OrderStatus};
use paydesk_core::sync::{self, SyncPolicy};
use paydesk_core::testing::{self, databases};
use paydesk_core::{now_ms, CoreError, Db};
use tokio::sync::broadcast::error::TryRecvError;
use wxpay::{CloseOrderResponse, MockApi, OrderQuery, OrderQueryResponse, Params};

const FEE: i64 = 1280;
const TID: &str = "4200000123202611231234567890";

/// The job's policy in these tests: a minute's first delay and lease, ten minutes' cap.
fn job_policy() -> SyncPolicy {
    SyncPolicy {
        first_delay: Duration::from_secs(60),
        max_delay: Duration::from_secs(600),
        lease: Duration::from_secs(60),
    }
}

/// An order created a little over 5 minutes ago, so closeorder may be called for it.
async fn new_order(db: &Db, no: &str, next_sync_at: Option<i64>) -> orders::Order {
    let order = NewOrder {
        next_sync_at,
        ..testing::new_order(no, FEE)
    };
    orders::create_order(db, order).await.unwrap();
    testing::backdate(db, no, testing::OLD_ENOUGH_TO_CLOSE).await
}

/// An order the sync job should ask about now.
async fn due_order(db: &Db, no: &str) -> orders::Order {
    new_order(db, no, Some(now_ms())).await
}

/// A due order that has meanwhile become `status` (the job's claim saw it unpaid).
async fn due_order_in(db: &Db, no: &str, status: OrderStatus) -> orders::Order {
    let order = due_order(db, no).await;
    orders::transition(db, order.id, status).await.unwrap()
}

/// `order` refreshed through `api`, with nobody listening for events.
async fn refreshed(db: &Db, api: &MockApi, order: &orders::Order) -> orders::Order {
    sync::refresh_order(db, api, &EventBus::new(), order)
        .await
        .unwrap()
}

/// Gives the order a prepay_id, as a successful unifiedorder would.
async fn with_prepay_id(db: &Db, order: &orders::Order) -> orders::Order {
    sqlx::query("update orders set prepay_id = $1 where id = $2")
        .bind("wx20261123150000abcdef0123456789")
        .bind(order.id)
        .execute(db.writer())
        .await
        .unwrap();
    stored(db, order).await
}

async fn stored(db: &Db, order: &orders::Order) -> orders::Order {
    testing::stored_order(db, &order.out_trade_no).await
}

/// An orderquery answer for `no` in `state`; paid states carry the payment fields.
fn answer(no: &str, state: &str, fee: i64) -> OrderQueryResponse {
    let mut p = Params::new();
    p.insert("out_trade_no".into(), no.into());
    p.insert("trade_state".into(), state.into());
    p.insert("total_fee".into(), fee.to_string());
    if matches!(state, "SUCCESS" | "REFUND") {
        p.insert("transaction_id".into(), TID.into());
        p.insert("bank_type".into(), "CMB_CREDIT".into());
        p.insert("time_end".into(), "20261123183000".into());
    }
    OrderQueryResponse::from_params(p).unwrap()
}

fn result_fail(err_code: &str) -> wxpay::Error {
    wxpay::Error::ResultFail {
        err_code: err_code.into(),
        err_code_des: "test".into(),
    }
}

/// A fake whose orderquery answers `answer` once for `no`.
fn querying(no: &str, answer: Result<OrderQueryResponse, wxpay::Error>) -> MockApi {
    let mut api = MockApi::new();
    let expected = OrderQuery::ByOutTradeNo(no.into());
    let mut answer = Some(answer);
    api.expect_order_query()
        .withf(move |q| *q == expected)
        .times(1)
        .returning(move |_| answer.take().expect("one answer"));
    api
}

/// A fake whose orderquery says once that `no` is in `state` with `fee` fen.
fn answering(no: &str, state: &str, fee: i64) -> MockApi {
    querying(no, Ok(answer(no, state, fee)))
}

fn closing(answer: Result<CloseOrderResponse, wxpay::Error>) -> MockApi {
    let mut api = MockApi::new();
    let mut answer = Some(answer);
    api.expect_close_order()
        .times(1)
        .returning(move |_| answer.take().expect("one answer"));
    api
}

fn closed_ok() -> Result<CloseOrderResponse, wxpay::Error> {
    Ok(CloseOrderResponse::from_params(Params::new()))
}

#[tokio::test]
async fn query_answering_success_with_our_amount_marks_the_order_paid_via_query() {
    for t in databases().await {
        // Arrange
        let order = due_order(&t.db, "S-PAID-1").await;
        let api = answering("S-PAID-1", "SUCCESS", FEE);
        let events = EventBus::new();
        let mut rx = events.subscribe();

        // Act
        let after = sync::refresh_order(&t.db, &api, &events, &order)
            .await
            .unwrap();

        // Assert
        assert_eq!(after.status, OrderStatus::Paid, "{}", t.label);
        assert_eq!(after.transaction_id.as_deref(), Some(TID));
        assert_eq!(after.bank_type.as_deref(), Some("CMB_CREDIT"));
        // 18:30 Beijing time is 10:30 UTC.
        assert_eq!(after.paid_at, Some(1_795_429_800_000));
        assert_eq!(after.next_sync_at, None, "{}", t.label);
        assert_eq!(after, stored(&t.db, &order).await);
        match rx.try_recv().unwrap() {
            Event::OrderPaid {
                via,
                transaction_id,
                ..
            } => {
                assert_eq!(via, PaidVia::Query);
                assert_eq!(transaction_id.as_deref(), Some(TID));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unpaid_order_already_refunded_at_wechat_pay_is_recorded_as_paid() {
    for t in databases().await {
        let order = due_order(&t.db, "S-REFUND-1").await;
        let api = answering("S-REFUND-1", "REFUND", FEE);

        let after = refreshed(&t.db, &api, &order).await;

        assert_eq!(after.status, OrderStatus::Paid, "{}", t.label);
        assert_eq!(after.transaction_id.as_deref(), Some(TID));
    }
}

#[tokio::test]
async fn a_paid_answer_with_another_amount_changes_nothing_and_is_an_error() {
    for t in databases().await {
        let order = due_order(&t.db, "S-AMOUNT-1").await;
        let api = answering("S-AMOUNT-1", "SUCCESS", FEE + 1);
        let events = EventBus::new();
        let mut rx = events.subscribe();

        let result = sync::refresh_order(&t.db, &api, &events, &order).await;

        assert!(
            matches!(result, Err(CoreError::Internal(_))),
            "{}: {result:?}",
            t.label
        );
        assert_eq!(stored(&t.db, &order).await, order, "{}", t.label);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[tokio::test]
async fn closed_revoked_and_payerror_answers_mark_the_order_unpaid() {
    for t in databases().await {
        for (i, (state, expected)) in [
            ("CLOSED", OrderStatus::Closed),
            ("REVOKED", OrderStatus::Closed),
            ("PAYERROR", OrderStatus::PayError),
        ]
        .into_iter()
        .enumerate()
        {
            let no = format!("S-END-{i}");
            let order = due_order(&t.db, &no).await;
            let api = answering(&no, state, FEE);
            let events = EventBus::new();
            let mut rx = events.subscribe();

            let after = sync::refresh_order(&t.db, &api, &events, &order)
                .await
                .unwrap();

            assert_eq!(after.status, expected, "{} {state}", t.label);
            // A failed attempt is still asked about until the order expires (it may yet be
            // paid); a closed order is not.
            assert_eq!(
                after.next_sync_at.is_some(),
                expected == OrderStatus::PayError,
                "{} {state}",
                t.label
            );
            assert_eq!(
                rx.try_recv().unwrap(),
                Event::OrderClosed {
                    order_id: order.id,
                    out_trade_no: no.clone(),
                    status: expected.as_str().into(),
                },
                "{} {state}",
                t.label
            );
        }
    }
}

#[tokio::test]
async fn notpay_and_userpaying_answers_leave_the_order_as_it_is() {
    for t in databases().await {
        for (i, state) in ["NOTPAY", "USERPAYING", "ACCEPT"].into_iter().enumerate() {
            let no = format!("S-WAIT-{i}");
            let order = due_order(&t.db, &no).await;
            let api = answering(&no, state, FEE);

            let after = refreshed(&t.db, &api, &order).await;

            assert_eq!(after, order, "{} {state}", t.label);
        }
    }
}

#[tokio::test]
async fn ordernotexist_is_a_business_answer_that_leaves_the_order_unpaid_prepay_id_or_not() {
    for t in databases().await {
        // Arrange
        let never_sent = due_order(&t.db, "S-NOEX-1").await;
        let sent = due_order(&t.db, "S-NOEX-2").await;
        let sent = with_prepay_id(&t.db, &sent).await;

        // Act
        let unchanged = sync::refresh_order(
            &t.db,
            &querying("S-NOEX-1", Err(result_fail("ORDERNOTEXIST"))),
            &EventBus::new(),
            &never_sent,
        )
        .await;
        let forgotten = sync::refresh_order(
            &t.db,
            &querying("S-NOEX-2", Err(result_fail("ORDERNOTEXIST"))),
            &EventBus::new(),
            &sent,
        )
        .await;

        // Assert: unchanged, no error (it is closed once it expires).
        assert_eq!(unchanged.unwrap(), never_sent, "{}", t.label);
        assert_eq!(forgotten.unwrap(), sent, "{}", t.label);
    }
}

#[tokio::test]
async fn refreshing_an_order_that_is_no_longer_unpaid_asks_nobody() {
    for t in databases().await {
        let closed = due_order_in(&t.db, "S-DONE-1", OrderStatus::Closed).await;
        // No expectations: any call would fail the test.
        let api = MockApi::new();

        let after = refreshed(&t.db, &api, &closed).await;

        assert_eq!(after.status, OrderStatus::Closed, "{}", t.label);
    }
}

#[tokio::test]
async fn a_query_after_the_notification_applied_the_same_payment_changes_nothing() {
    for t in databases().await {
        // Arrange: the job read the order while it was unpaid; then the notification won.
        let order = due_order(&t.db, "S-RACE-1").await;
        let first = answering("S-RACE-1", "SUCCESS", FEE);
        let paid = refreshed(&t.db, &first, &order).await;
        let late = answering("S-RACE-1", "SUCCESS", FEE);
        let events = EventBus::new();
        let mut rx = events.subscribe();

        // Act: the stale copy is refreshed again
        let after = sync::refresh_order(&t.db, &late, &events, &order)
            .await
            .unwrap();

        // Assert: the same payment, no second event
        assert_eq!(after, paid, "{}", t.label);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}

#[tokio::test]
async fn closeorder_success_or_orderclosed_closes_the_order() {
    for t in databases().await {
        for (i, answer) in [closed_ok(), Err(result_fail("ORDERCLOSED"))]
            .into_iter()
            .enumerate()
        {
            let order = due_order(&t.db, &format!("S-CLOSE-{i}")).await;
            let events = EventBus::new();
            let mut rx = events.subscribe();

            let after = sync::close_order(&t.db, &closing(answer), &events, &order)
                .await
                .unwrap();

            assert_eq!(after.status, OrderStatus::Closed, "{} {i}", t.label);
            assert_eq!(after.next_sync_at, None);
            assert!(matches!(rx.try_recv(), Ok(Event::OrderClosed { .. })));
        }
    }
}

#[tokio::test]
async fn closeorder_answering_orderpaid_records_the_payment_from_orderquery() {
    for t in databases().await {
        let order = due_order(&t.db, "S-CLPAID-1").await;
        let mut api = answering("S-CLPAID-1", "SUCCESS", FEE);
        api.expect_close_order()
            .times(1)
            .returning(|_| Err(result_fail("ORDERPAID")));
        let events = EventBus::new();
        let mut rx = events.subscribe();

        let after = sync::close_order(&t.db, &api, &events, &order)
            .await
            .unwrap();

        assert_eq!(after.status, OrderStatus::Paid, "{}", t.label);
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::OrderPaid {
                via: PaidVia::Query,
                ..
            })
        ));
    }
}

#[tokio::test]
async fn closeorder_ordernotexist_closes_an_order_wechat_pay_never_saw() {
    for t in databases().await {
        // Never sent, or sent and since forgotten (it has a prepay_id): closed either way.
        for (no, sent) in [("S-CLNOEX-1", false), ("S-CLNOEX-2", true)] {
            let mut order = due_order(&t.db, no).await;
            if sent {
                order = with_prepay_id(&t.db, &order).await;
            }

            let after = sync::close_order(
                &t.db,
                &closing(Err(result_fail("ORDERNOTEXIST"))),
                &EventBus::new(),
                &order,
            )
            .await
            .unwrap();

            assert_eq!(after.status, OrderStatus::Closed, "{} {no}", t.label);
        }
    }
}

#[tokio::test]
async fn closeorder_systemerror_is_an_error_and_the_order_stays_unpaid() {
    for t in databases().await {
        let order = due_order(&t.db, "S-CLSYS-1").await;

        let result = sync::close_order(
            &t.db,
            &closing(Err(result_fail("SYSTEMERROR"))),
            &EventBus::new(),
            &order,
        )
        .await;

        assert!(result.is_err(), "{}", t.label);
        assert_eq!(stored(&t.db, &order).await, order);
    }
}

#[tokio::test]
async fn closing_a_paid_order_is_refused_without_a_call() {
    for t in databases().await {
        let paid = due_order_in(&t.db, "S-CLNO-1", OrderStatus::Paid).await;

        let result = sync::close_order(&t.db, &MockApi::new(), &EventBus::new(), &paid).await;

        assert!(
            matches!(
                result,
                Err(CoreError::Conflict(ConflictReason::NotClosable { .. }))
            ),
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn a_claim_takes_only_due_unpaid_orders_and_concurrent_claims_never_share_one() {
    for t in databases().await {
        // Arrange: 20 due orders, one not due yet, one never synced
        let now = now_ms();
        for i in 0..20 {
            new_order(&t.db, &format!("S-CLAIM-{i}"), Some(now - 1000)).await;
        }
        new_order(&t.db, "S-LATER-1", Some(now + 60_000)).await;
        new_order(&t.db, "S-NEVER-1", None).await;
        let lease = Duration::from_secs(60);

        // Act: four claimers at once, five orders each at most
        let claims =
            futures::future::join_all((0..4).map(|_| sync::claim_due_orders(&t.db, lease, 5)))
                .await;

        // Assert
        let mut claimed: Vec<String> = claims
            .into_iter()
            .flat_map(|c| c.unwrap())
            .map(|o| {
                let until = o.next_sync_at.unwrap();
                assert!(
                    (now + 60_000..now + 65_000).contains(&until),
                    "{}: the lease ends 60 s from the claim: {until}",
                    t.label
                );
                o.out_trade_no
            })
            .collect();
        claimed.sort();
        let total = claimed.len();
        claimed.dedup();
        assert_eq!(
            claimed.len(),
            total,
            "{}: an order was claimed twice",
            t.label
        );
        assert_eq!(total, 20, "{}", t.label);
        assert!(claimed.iter().all(|no| no.starts_with("S-CLAIM-")));
        let again = sync::claim_due_orders(&t.db, lease, 50).await.unwrap();
        assert!(again.is_empty(), "{}: leases hold", t.label);
    }
}

#[tokio::test]
async fn a_lease_is_judged_by_the_database_clock() {
    for t in databases().await {
        // Arrange: an order another instance holds for 30 s more by the database's clock
        let db_now = paydesk_core::leases::db_now_ms(&t.db).await.unwrap();
        assert!(
            (db_now - now_ms()).abs() < 5_000,
            "{}: the database's clock is this host's",
            t.label
        );
        new_order(&t.db, "S-CLOCK-1", Some(db_now + 30_000)).await;
        let lease = Duration::from_secs(60);

        // Act
        let held = sync::claim_due_orders(&t.db, lease, 10).await.unwrap();
        sqlx::query("update orders set next_sync_at = $1 where out_trade_no = 'S-CLOCK-1'")
            .bind(db_now - 1)
            .execute(t.db.writer())
            .await
            .unwrap();
        let ran_out = sync::claim_due_orders(&t.db, lease, 10).await.unwrap();

        // Assert: taken only once the lease ran out, and the new one ends 60 s from the
        // database's now
        assert!(held.is_empty(), "{}: a held lease was taken", t.label);
        assert_eq!(ran_out.len(), 1, "{}", t.label);
        let until = ran_out[0].next_sync_at.unwrap();
        let after = paydesk_core::leases::db_now_ms(&t.db).await.unwrap();
        assert!(
            (db_now + 60_000..=after + 60_000).contains(&until),
            "{}: {until} not 60 s after {db_now}..{after}",
            t.label
        );
    }
}

#[tokio::test]
async fn claimed_orders_given_back_are_due_at_once_unless_taken_over() {
    for t in databases().await {
        // Arrange: three due orders claimed by an instance that is stopping
        let now = now_ms();
        for i in 0..3 {
            new_order(&t.db, &format!("S-BACK-{i}"), Some(now - 1000)).await;
        }
        let lease = Duration::from_secs(60);
        let claimed = sync::claim_due_orders(&t.db, lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 3, "{}", t.label);
        // One of them was taken over meanwhile (its lease ran out, another claimed it).
        sqlx::query(
            "update orders set next_sync_at = next_sync_at + 1 where out_trade_no = 'S-BACK-0'",
        )
        .execute(t.db.writer())
        .await
        .unwrap();

        // Act
        let released = sync::release(&t.db, &claimed).await.unwrap();
        let again = sync::claim_due_orders(&t.db, lease, 10).await.unwrap();

        // Assert: the two still held are due for anyone now; the taken one stays taken
        assert_eq!(released, 2, "{}", t.label);
        let mut again: Vec<String> = again.into_iter().map(|o| o.out_trade_no).collect();
        again.sort();
        assert_eq!(again, ["S-BACK-1", "S-BACK-2"], "{}", t.label);
    }
}

#[tokio::test]
async fn a_claimed_order_still_unpaid_is_rescheduled_with_backoff() {
    for t in databases().await {
        // Arrange
        let policy = job_policy();
        let start = now_ms();
        new_order(&t.db, "S-BACKOFF-1", Some(start)).await;
        let mut gaps = Vec::new();

        // Act: five rounds, each claiming once the time the last one scheduled has come
        // (the schedule moved back to now: leases and schedules follow the database's clock)
        let mut due = start;
        for _ in 0..5 {
            sqlx::query("update orders set next_sync_at = $1 where out_trade_no = 'S-BACKOFF-1'")
                .bind(now_ms() - 1)
                .execute(t.db.writer())
                .await
                .unwrap();
            let claimed = sync::claim_due_orders(&t.db, policy.lease, 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{}", t.label);
            let api = answering("S-BACKOFF-1", "NOTPAY", FEE);
            let before = now_ms();
            let after =
                sync::sync_claimed_order(&t.db, &api, &EventBus::new(), &policy, &claimed[0], due)
                    .await
                    .unwrap();
            let next = after.next_sync_at.unwrap();
            gaps.push(((next - before) as f64 / 1000.0).round() as i64);
            due = next;
        }

        // Assert
        assert_eq!(gaps, [120, 240, 480, 600, 600], "{}", t.label);
        let o = testing::stored_order(&t.db, "S-BACKOFF-1").await;
        assert_eq!(o.sync_attempts, 5, "{}", t.label);
        assert_eq!(o.status, OrderStatus::NotPay);
    }
}

#[tokio::test]
async fn an_expired_claimed_order_is_closed_and_not_rescheduled() {
    for t in databases().await {
        let policy = job_policy();
        let now = now_ms();
        let order = new_order(&t.db, "S-EXP-1", Some(now)).await;
        sqlx::query("update orders set expires_at = $1 where id = $2")
            .bind(now - 1)
            .bind(order.id)
            .execute(t.db.writer())
            .await
            .unwrap();
        let claimed = sync::claim_due_orders(&t.db, policy.lease, 10)
            .await
            .unwrap();

        let after = sync::sync_claimed_order(
            &t.db,
            &closing(closed_ok()),
            &EventBus::new(),
            &policy,
            &claimed[0],
            now,
        )
        .await
        .unwrap();

        assert_eq!(after.status, OrderStatus::Closed, "{}", t.label);
        assert_eq!(after.next_sync_at, None);
    }
}

#[tokio::test]
async fn a_failed_query_is_an_error_and_the_order_is_still_rescheduled() {
    for t in databases().await {
        let policy = job_policy();
        let now = now_ms();
        new_order(&t.db, "S-FAIL-1", Some(now)).await;
        let claimed = sync::claim_due_orders(&t.db, policy.lease, 10)
            .await
            .unwrap();

        let result = sync::sync_claimed_order(
            &t.db,
            &querying("S-FAIL-1", Err(result_fail("SYSTEMERROR"))),
            &EventBus::new(),
            &policy,
            &claimed[0],
            now,
        )
        .await;

        assert!(result.is_err(), "{}", t.label);
        let o = stored(&t.db, &claimed[0]).await;
        assert_eq!(o.sync_attempts, 1, "{}", t.label);
        let next = o.next_sync_at.unwrap();
        assert!(
            (now + 119_000..now + 125_000).contains(&next),
            "{}: {next}",
            t.label
        );
    }
}

#[tokio::test]
async fn a_status_query_is_claimed_once_per_interval_however_many_ask_at_once() {
    for t in databases().await {
        // Arrange
        let order = new_order(&t.db, "SQ1", None).await;
        let paid = new_order(&t.db, "SQ2", None).await;
        orders::transition(&t.db, paid.id, OrderStatus::Paid)
            .await
            .unwrap();
        let now = now_ms();

        // Act: twenty pollers at once, then within the interval, then after it
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let db = t.db.clone();
            tasks.push(tokio::spawn(async move {
                orders::claim_status_query(&db, order.id, now, 5000).await
            }));
        }
        let mut claimed = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                claimed += 1;
            }
        }
        let within = orders::claim_status_query(&t.db, order.id, now + 4999, 5000)
            .await
            .unwrap();
        let after = orders::claim_status_query(&t.db, order.id, now + 5000, 5000)
            .await
            .unwrap();
        let not_unpaid = orders::claim_status_query(&t.db, paid.id, now, 5000)
            .await
            .unwrap();

        // Assert
        assert_eq!(claimed, 1, "{}", t.label);
        assert!(!within, "{}", t.label);
        assert!(after, "{}", t.label);
        assert!(
            !not_unpaid,
            "{}: nothing to ask about a paid order",
            t.label
        );
    }
}

#[tokio::test]
async fn a_young_order_is_not_closed_at_wechat_pay_and_the_job_asks_about_it_instead() {
    for t in databases().await {
        // Arrange: created just now (WeChat Pay takes closeorder only after 5 minutes),
        // and already past its end.
        let now = now_ms();
        let order = orders::create_order(
            &t.db,
            NewOrder {
                next_sync_at: Some(now),
                expires_at: Some(now - 1),
                ..testing::new_order("S-YOUNG-1", FEE)
            },
        )
        .await
        .unwrap();
        let policy = job_policy();

        // Act: closing it calls nothing (MockApi without expectations panics on a call)
        let early = sync::close_order(&t.db, &MockApi::new(), &EventBus::new(), &order).await;
        let claimed = sync::claim_due_orders(&t.db, policy.lease, 10)
            .await
            .unwrap();
        let synced = sync::sync_claimed_order(
            &t.db,
            &answering("S-YOUNG-1", "NOTPAY", FEE),
            &EventBus::new(),
            &policy,
            &claimed[0],
            now,
        )
        .await
        .unwrap();

        // Assert
        let closes_at = sync::closable_from(&order);
        assert!(
            matches!(
                early,
                Err(CoreError::Conflict(ConflictReason::TooEarlyToClose { closes_at: at })) if at == closes_at
            ),
            "{}: {early:?}",
            t.label
        );
        assert_eq!(closes_at, order.created_at + 5 * 60_000);
        assert_eq!(synced.status, OrderStatus::NotPay, "{}", t.label);
        assert!(
            synced.next_sync_at.is_some(),
            "{}: still scheduled",
            t.label
        );
    }
}
