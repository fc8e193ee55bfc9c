//! Repository tests for refunds, on SQLite and (when configured) PostgreSQL: requests never
//! exceed what is refundable (also under concurrency), decisions happen once and never by
//! the requester, the executor against a fake WeChat Pay (`wxpay::MockApi`), and refund
//! notifications.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paydesk_core::audit::Actor;
use paydesk_core::error::{ConflictReason, ForbiddenReason};
use paydesk_core::events::EventBus;
use paydesk_core::notify::{self, Verdict};
use paydesk_core::orders::OrderStatus;
use paydesk_core::refunds::{self, Refund, RefundPolicy, RefundStatus, Requester};
use paydesk_core::testing::{self, assert_invalid, databases, merchant, paid_order};
use paydesk_core::{now_ms, CoreError, Db};
use wxpay::{ApiKey, MockApi, Params, RefundQueryResponse, RefundResponse};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const KEY: &str = testing::MERCHANT_KEY;

/// A manager, acting from the shop's own address.
async fn staff(db: &Db, name: &str) -> Actor {
    Actor {
        ip: Some("127.0.0.1".into()),
        ..testing::manager(db, name).await
    }
}

fn customer() -> Requester {
    Requester::Customer {
        openid: OPENID.into(),
    }
}

async fn approved(db: &Db, events: &EventBus, no: &str, fee: i64) -> Refund {
    paid_order(db, no, fee).await;
    let r = refunds::request(db, events, no, None, "broken cup", customer())
        .await
        .unwrap();
    let boss = staff(db, &format!("boss{no}")).await;
    refunds::approve(db, events, &boss, r.id, "ok")
        .await
        .unwrap()
}

/// `n` requests of `amount` fen on order `no`, each by `requester()` on a task of its own,
/// all at once; their results.
async fn requests_at_once(
    db: &Db,
    events: &EventBus,
    n: usize,
    no: &'static str,
    amount: i64,
    requester: impl Fn() -> Requester,
) -> Vec<Result<Refund, CoreError>> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (db, events, requester) = (db.clone(), events.clone(), requester());
            tokio::spawn(async move {
                refunds::request(&db, &events, no, Some(amount), "at once", requester).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

fn fast() -> RefundPolicy {
    RefundPolicy {
        retry_base: Duration::from_millis(1),
        retry_max: Duration::from_millis(1),
        query_delay: Duration::from_millis(1),
        query_max: Duration::from_millis(1),
        ..RefundPolicy::default()
    }
}

/// Claims every due refund (after the schedule passed) and works on each once.
async fn run_once(db: &Db, api: &MockApi, events: &EventBus) -> Vec<Refund> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    run_at(db, api, events, now_ms()).await
}

/// Claims what is due at `at` (ms) and works on each once. The job's leases and schedules
/// follow the database's clock, so the time is moved by moving the refunds' times: back by
/// `at - now` before the run, forward by as much after it (what the run wrote, in the
/// database's time, lands in the test's).
async fn run_at(db: &Db, api: &MockApi, events: &EventBus, at: i64) -> Vec<Refund> {
    let shift = at - now_ms();
    let move_times = |by: i64| async move {
        sqlx::query(
            "update refunds set next_attempt_at = next_attempt_at + $1, updated_at = updated_at + $1",
        )
        .bind(by)
        .execute(db.writer())
        .await
        .unwrap();
    };
    move_times(-shift).await;
    let mut out = Vec::new();
    for c in refunds::claim_due(db, Duration::from_secs(60), 10)
        .await
        .unwrap()
    {
        out.push(
            refunds::process_claimed(db, api, events, &fast(), &c)
                .await
                .unwrap(),
        );
    }
    move_times(shift).await;
    out
}

fn accepted(no: &str, fee: i64) -> RefundResponse {
    let mut p = Params::new();
    p.insert("out_refund_no".into(), no.into());
    p.insert("refund_id".into(), "50000000382019052709732678859".into());
    p.insert("refund_fee".into(), fee.to_string());
    RefundResponse::from_params(p).unwrap()
}

fn queried(no: &str, fee: i64, status: &str) -> RefundQueryResponse {
    let mut p = Params::new();
    for (k, v) in [
        ("refund_count", "1".to_string()),
        ("out_refund_no_0", no.into()),
        ("refund_id_0", "50000000382019052709732678859".into()),
        ("refund_fee_0", fee.to_string()),
        ("refund_status_0", status.into()),
    ] {
        p.insert(k.into(), v);
    }
    RefundQueryResponse::from_params(p).unwrap()
}

fn result_fail(code: &str) -> wxpay::Error {
    wxpay::Error::ResultFail {
        err_code: code.into(),
        err_code_des: "test".into(),
    }
}

#[tokio::test]
async fn a_request_defaults_to_the_refundable_rest_and_never_exceeds_it() {
    for t in databases().await {
        // Arrange
        let (db, events) = (&t.db, EventBus::new());
        paid_order(db, "RQ1", 1000).await;
        let support = staff(db, "sue").await;

        // Act
        let part = refunds::request(
            db,
            &events,
            "RQ1",
            Some(300),
            "one cup broken",
            Requester::Staff {
                actor: support.clone(),
            },
        )
        .await
        .unwrap();
        let over = refunds::request(db, &events, "RQ1", Some(701), "more", customer()).await;
        let zero = refunds::request(db, &events, "RQ1", Some(0), "none", customer()).await;
        let rest = refunds::request(db, &events, "RQ1", None, "the rest", customer())
            .await
            .unwrap();
        let nothing_left = refunds::request(db, &events, "RQ1", None, "again", customer()).await;

        // Assert
        assert_eq!(part.status, RefundStatus::PendingApproval, "{}", t.label);
        assert_eq!(part.requester_kind, "staff");
        assert_eq!(part.requester, "sue");
        assert_eq!(part.requester_user_id, support.user_id);
        assert!(part.out_refund_no.len() <= 32 && part.out_refund_no.starts_with("RF"));
        assert!(
            matches!(&over, Err(CoreError::Invalid { field: "amount", message, .. }) if message.contains("¥7.00")),
            "{}: {over:?}",
            t.label
        );
        assert_invalid(zero.as_ref().unwrap_err(), "amount", t.label);
        assert_eq!(rest.amount_fen, 700, "{}", t.label);
        assert_eq!(rest.requester_kind, "customer");
        assert_invalid(nothing_left.as_ref().unwrap_err(), "amount", t.label);
        let audit = paydesk_core::audit::list(db, None, Some("refund.request"), 10)
            .await
            .unwrap();
        assert_eq!(audit.len(), 2, "{}", t.label);
    }
}

#[tokio::test]
async fn only_paid_orders_of_the_shopper_can_be_refunded() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        paid_order(db, "RQ2", 500).await;
        testing::create_order(db, "RQ3", 100).await;
        let stranger = Requester::Customer {
            openid: "oSomebodyElse".into(),
        };

        let foreign = refunds::request(db, &events, "RQ2", None, "mine?", stranger).await;
        let unpaid = refunds::request(db, &events, "RQ3", None, "why", customer()).await;
        let missing = refunds::request(db, &events, "NOPE", None, "why", customer()).await;
        let no_reason = refunds::request(db, &events, "RQ2", None, "  ", customer()).await;

        assert!(matches!(foreign, Err(CoreError::NotFound)), "{}", t.label);
        assert!(
            matches!(&unpaid, Err(CoreError::Conflict(ConflictReason::NotRefundable { status })) if status == "NOTPAY"),
            "{unpaid:?}"
        );
        assert!(matches!(missing, Err(CoreError::NotFound)));
        assert_invalid(no_reason.as_ref().unwrap_err(), "reason", t.label);
    }
}

#[tokio::test]
async fn concurrent_requests_never_sum_above_the_total() {
    for t in databases().await {
        // Arrange
        let events = EventBus::new();
        paid_order(&t.db, "RQ4", 1000).await;

        // Act: 20 requests of 1.50 yuan at once on a 10 yuan order, filed by support (a
        // customer has one open request at a time).
        let support = staff(&t.db, "sue").await;
        let results = requests_at_once(&t.db, &events, 20, "RQ4", 150, || Requester::Staff {
            actor: support.clone(),
        })
        .await;
        let mut ok = 0;
        for result in results {
            match result {
                Ok(_) => ok += 1,
                Err(CoreError::Invalid {
                    field: "amount", ..
                }) => {}
                Err(e) => panic!("{}: {e:?}", t.label),
            }
        }

        // Assert
        let order = testing::stored_order(&t.db, "RQ4").await;
        let sum: i64 = refunds::for_order(&t.db, order.id)
            .await
            .unwrap()
            .iter()
            .map(|r| r.amount_fen)
            .sum();
        assert_eq!(ok, 6, "{}", t.label);
        assert_eq!(sum, 900, "{}", t.label);
    }
}

#[tokio::test]
async fn a_customer_has_one_open_request_per_order_even_when_asking_twice_at_once() {
    for t in databases().await {
        // Arrange
        let events = EventBus::new();
        paid_order(&t.db, "RQ7", 1000).await;
        let boss = staff(&t.db, "boss").await;

        // Act: ten requests at once, then support files one, then the customer again
        // after the open one was rejected
        let results = requests_at_once(&t.db, &events, 10, "RQ7", 100, customer).await;
        let mut filed = Vec::new();
        for result in results {
            match result {
                Ok(r) => filed.push(r),
                Err(CoreError::Conflict(_)) => {}
                Err(e) => panic!("{}: {e:?}", t.label),
            }
        }
        let by_support = refunds::request(
            &t.db,
            &events,
            "RQ7",
            Some(100),
            "called in",
            Requester::Staff {
                actor: boss.clone(),
            },
        )
        .await;
        let still_open =
            refunds::request(&t.db, &events, "RQ7", Some(100), "again", customer()).await;
        let other = staff(&t.db, "ann").await;
        refunds::reject(&t.db, &events, &other, filed[0].id, "no")
            .await
            .unwrap();
        let after = refunds::request(&t.db, &events, "RQ7", Some(100), "again", customer()).await;

        // Assert
        assert_eq!(filed.len(), 1, "{}", t.label);
        assert!(by_support.is_ok(), "{}: {by_support:?}", t.label);
        assert!(
            matches!(still_open, Err(CoreError::Conflict(_))),
            "{}: {still_open:?}",
            t.label
        );
        assert!(after.is_ok(), "{}: {after:?}", t.label);
        // The database holds the rule too for requests waiting for a manager, whatever the
        // code above it does.
        let order = testing::stored_order(&t.db, "RQ7").await;
        let now = now_ms();
        let direct = sqlx::query(
            r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
                   requester, status, created_at, updated_at)
               values ('RFDIRECT7', $1, 1, 'direct', 'customer', $2, 'PENDING_APPROVAL', $3, $3)"#,
        )
        .bind(order.id)
        .bind(OPENID)
        .bind(now)
        .execute(t.db.writer())
        .await;
        assert!(
            matches!(&direct, Err(e) if paydesk_core::error::is_unique_violation(e)),
            "{}: {direct:?}",
            t.label
        );
    }
}

#[tokio::test]
async fn a_failed_refund_adopting_wechats_processing_is_never_refused_by_the_one_open_request_rule()
{
    for t in databases().await {
        // Arrange: the customer's first refund ended FAILED (an unknown outcome earlier), so
        // they asked again and that request waits for a manager.
        let events = EventBus::new();
        paid_order(&t.db, "RQ-LATE", 1000).await;
        let first = refunds::request(&t.db, &events, "RQ-LATE", Some(100), "a", customer())
            .await
            .unwrap();
        sqlx::query("update refunds set status = 'FAILED' where id = $1")
            .bind(first.id)
            .execute(t.db.writer())
            .await
            .unwrap();
        let second = refunds::request(&t.db, &events, "RQ-LATE", Some(100), "b", customer())
            .await
            .unwrap();

        // Act: WeChat Pay's late word on the first one (what a refund notification or
        // refundquery applies) while the second still waits
        let moved = sqlx::query(
            "update refunds set status = 'PROCESSING' where id = $1 and status = 'FAILED'",
        )
        .bind(first.id)
        .execute(t.db.writer())
        .await;

        // Assert: the database takes it; the waiting request is untouched
        assert_eq!(
            moved.map(|r| r.rows_affected()).map_err(|e| e.to_string()),
            Ok(1),
            "{}",
            t.label
        );
        assert_eq!(second.status, RefundStatus::PendingApproval, "{}", t.label);
    }
}

#[tokio::test]
async fn a_request_is_decided_once_and_never_by_its_requester() {
    for t in databases().await {
        // Arrange
        let (db, events) = (&t.db, EventBus::new());
        paid_order(db, "RQ5", 800).await;
        let sue = staff(db, "sue").await;
        let (ann, bob) = (staff(db, "ann").await, staff(db, "bob").await);
        let filed = refunds::request(
            db,
            &events,
            "RQ5",
            Some(100),
            "late delivery",
            Requester::Staff { actor: sue.clone() },
        )
        .await
        .unwrap();
        let mut rx = events.subscribe();

        // Act
        let own = refunds::approve(db, &events, &sue, filed.id, "mine").await;
        let no_reason = refunds::reject(db, &events, &ann, filed.id, " ").await;
        let (a, b) = tokio::join!(
            refunds::approve(db, &events, &ann, filed.id, "fine"),
            refunds::approve(db, &events, &bob, filed.id, "fine too"),
        );

        // Assert
        assert!(
            matches!(
                &own,
                Err(CoreError::Forbidden(ForbiddenReason::OwnRefundRequest))
            ),
            "{}: {own:?}",
            t.label
        );
        assert_invalid(no_reason.as_ref().unwrap_err(), "reason", t.label);
        let (winner, loser) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("{}: exactly one decision expected, got {other:?}", t.label),
        };
        assert_eq!(winner.status, RefundStatus::Approved);
        assert!(winner.decided_by.is_some() && winner.decided_at.is_some());
        assert!(
            matches!(&loser, CoreError::Conflict(ConflictReason::AlreadyDecided { status, by })
                if status == "APPROVED" && by.is_some()),
            "{loser:?}"
        );
        let event = rx.try_recv().unwrap();
        assert_eq!(event.kind(), "refund_changed");
        assert!(rx.try_recv().is_err(), "{}: one event only", t.label);
        let late = refunds::reject(db, &events, &ann, filed.id, "no").await;
        assert!(matches!(
            late,
            Err(CoreError::Conflict(ConflictReason::AlreadyDecided { .. }))
        ));
        let audit = paydesk_core::audit::list(db, None, Some("refund.approve"), 10)
            .await
            .unwrap();
        assert_eq!(audit.len(), 1, "{}", t.label);
    }
}

#[tokio::test]
async fn the_dashboard_list_puts_the_approval_queue_first() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        paid_order(db, "RQ6", 1000).await;
        let boss = staff(db, "boss").await;
        let first = refunds::request(db, &events, "RQ6", Some(100), "a", customer())
            .await
            .unwrap();
        let support = staff(db, "sue").await;
        let by_support = || Requester::Staff {
            actor: support.clone(),
        };
        let second = refunds::request(db, &events, "RQ6", Some(200), "b", by_support())
            .await
            .unwrap();
        let third = refunds::request(db, &events, "RQ6", Some(300), "c", by_support())
            .await
            .unwrap();
        refunds::reject(db, &events, &boss, first.id, "no")
            .await
            .unwrap();

        let list = refunds::list_for_dashboard(db, 50).await.unwrap();

        let ids: Vec<i64> = list.iter().map(|v| v.refund.id).collect();
        assert_eq!(ids, [second.id, third.id, first.id], "{}", t.label);
        assert_eq!(list[0].order_total_fee, 1000);
        assert_eq!(list[0].refundable_left, 500, "{}", t.label);
        assert_eq!(list[0].earlier_refunds, 0, "rejected refunds do not count");
        assert_eq!(list[1].earlier_refunds, 1, "{}", t.label);
        assert_eq!(list[0].openid, OPENID);
        assert_eq!(
            refunds::find_by_out_refund_no(db, &third.out_refund_no)
                .await
                .unwrap(),
            Some(third.clone())
        );
        assert_eq!(refunds::find(db, third.id).await.unwrap(), Some(third));
    }
}

#[tokio::test]
async fn an_approved_refund_is_accepted_then_settled_by_refundquery() {
    for t in databases().await {
        // Arrange
        let (db, events) = (&t.db, EventBus::new());
        let r = approved(db, &events, "EX1", 500).await;
        let mut api = MockApi::new();
        api.expect_refund().times(1).returning(move |req| {
            assert_eq!((req.total_fee, req.refund_fee), (500, 500));
            Ok(accepted(&req.out_refund_no, req.refund_fee))
        });
        let no = r.out_refund_no.clone();
        api.expect_refund_query()
            .times(1)
            .returning(move |_| Ok(queried(&no, 500, "SUCCESS")));

        // Act
        let after_call = run_once(db, &api, &events).await;
        let after_query = run_once(db, &api, &events).await;

        // Assert
        assert_eq!(
            after_call[0].status,
            RefundStatus::Processing,
            "{}",
            t.label
        );
        assert_eq!(after_call[0].attempts, 1);
        assert!(after_call[0].refund_id.is_some());
        assert_eq!(after_query[0].status, RefundStatus::Success, "{}", t.label);
        let order = testing::stored_order(db, "EX1").await;
        assert_eq!(order.status, OrderStatus::Refunded, "{}", t.label);
    }
}

#[tokio::test]
async fn a_timed_out_refund_is_asked_about_before_anything_is_sent_again() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        let r = approved(db, &events, "EX5", 200).await;
        let mut api = MockApi::new();
        api.expect_refund().times(1).returning(|_| {
            Err(wxpay::Error::Timeout {
                endpoint: "/secapi/pay/refund".into(),
            })
        });
        let no = r.out_refund_no.clone();
        api.expect_refund_query()
            .times(1)
            .returning(move |_| Ok(queried(&no, 200, "PROCESSING")));

        let first = run_once(db, &api, &events).await;
        let second = run_once(db, &api, &events).await;

        assert_eq!(first[0].status, RefundStatus::Submitted, "{}", t.label);
        assert_eq!(first[0].last_error_code.as_deref(), Some("TIMEOUT"));
        assert_eq!(second[0].status, RefundStatus::Processing, "{}", t.label);
        assert_eq!(second[0].attempts, 1, "no second refund call");
    }
}

#[tokio::test]
async fn a_system_error_is_retried_with_the_same_number_after_asking_first() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        let r = approved(db, &events, "EX2", 300).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let mut api = MockApi::new();
        let (c, no) = (calls.clone(), r.out_refund_no.clone());
        api.expect_refund().times(2).returning(move |req| {
            assert_eq!(req.out_refund_no, no);
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(result_fail("SYSTEMERROR"))
            } else {
                Ok(accepted(&req.out_refund_no, req.refund_fee))
            }
        });
        api.expect_refund_query()
            .times(1)
            .returning(|_| Err(result_fail("REFUNDNOTEXIST")));

        let first = run_once(db, &api, &events).await;
        let second = run_once(db, &api, &events).await;

        assert_eq!(first[0].status, RefundStatus::Submitted, "{}", t.label);
        assert_eq!(first[0].last_error_code.as_deref(), Some("SYSTEMERROR"));
        assert_eq!(second[0].status, RefundStatus::Processing, "{}", t.label);
        assert_eq!(second[0].attempts, 2);
        assert_eq!(second[0].last_error, None);
    }
}

#[tokio::test]
async fn business_errors_and_a_missing_certificate_end_failed_with_a_reason() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        let broke = approved(db, &events, "EX3", 300).await;
        let bare = approved(db, &events, "EX4", 300).await;
        let mut api = MockApi::new();
        let no = broke.out_refund_no.clone();
        api.expect_refund().times(2).returning(move |req| {
            if req.out_refund_no == no {
                Err(result_fail("NOTENOUGH"))
            } else {
                Err(wxpay::Error::NoIdentity)
            }
        });

        run_once(db, &api, &events).await;

        let broke = refunds::find(db, broke.id).await.unwrap().unwrap();
        let bare = refunds::find(db, bare.id).await.unwrap().unwrap();
        assert_eq!(broke.status, RefundStatus::Failed, "{}", t.label);
        assert_eq!(broke.last_error_code.as_deref(), Some("NOTENOUGH"));
        assert!(broke.last_error.as_deref().unwrap().contains("balance"));
        assert_eq!(bare.status, RefundStatus::Failed);
        assert_eq!(bare.last_error_code.as_deref(), Some("NO_CERTIFICATE"));
        // A failed refund no longer counts: the amount can be requested again.
        let again = refunds::request(db, &events, "EX3", None, "retry", customer())
            .await
            .unwrap();
        assert_eq!(again.amount_fen, 300, "{}", t.label);
    }
}

#[tokio::test]
async fn a_refund_failed_after_an_unknown_outcome_is_checked_again_and_adopted_if_made() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        // Arrange: "made" and "never" time out, are not found, and are refused when sent
        // again (FAILED after two calls); "refused" is refused at its only call.
        let made = approved(db, &events, "EX6", 200).await;
        let never = approved(db, &events, "EX7", 300).await;
        let refused = approved(db, &events, "EX8", 400).await;
        let calls = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
            String,
            usize,
        >::new()));
        let checks = Arc::new(AtomicUsize::new(0));
        let mut api = MockApi::new();
        let (c, refused_no) = (calls.clone(), refused.out_refund_no.clone());
        api.expect_refund().returning(move |req| {
            let mut calls = c.lock().unwrap();
            let n = calls.entry(req.out_refund_no.clone()).or_default();
            *n += 1;
            if req.out_refund_no == refused_no {
                Err(result_fail("NOTENOUGH"))
            } else if *n == 1 {
                Err(wxpay::Error::Timeout {
                    endpoint: "/secapi/pay/refund".into(),
                })
            } else {
                Err(result_fail("ERROR"))
            }
        });
        let (made_no, k) = (made.out_refund_no.clone(), checks.clone());
        api.expect_refund_query().returning(move |req| {
            let wxpay::RefundQuery::ByOutRefundNo(no) = &req.query else {
                panic!("queried by {:?}", req.query)
            };
            // Before the failure nothing is found; at the check, "made" went through.
            if k.load(Ordering::SeqCst) > 0 && *no == made_no {
                Ok(queried(no, 200, "SUCCESS"))
            } else {
                Err(result_fail("REFUNDNOTEXIST"))
            }
        });

        // Act 1: the timeouts, then the resends that are refused
        let now = now_ms();
        run_at(db, &api, &events, now).await;
        run_at(db, &api, &events, now + 60_000).await;
        let failed_at = now_ms();
        let find = |id| async move { refunds::find(db, id).await.unwrap().unwrap() };
        for r in [&made, &never, &refused] {
            assert_eq!(
                find(r.id).await.status,
                RefundStatus::Failed,
                "{} {}",
                r.out_trade_no,
                t.label
            );
        }
        assert_eq!(find(made.id).await.attempts, 2);
        assert!(
            run_at(db, &api, &events, failed_at + 9 * 60_000)
                .await
                .is_empty(),
            "checked before 10 min"
        );

        // Act 2: the check 10 minutes on
        checks.fetch_add(1, Ordering::SeqCst);
        let checked = run_at(db, &api, &events, failed_at + 11 * 60_000).await;

        // Assert: "made" is adopted, "never" waits for the day's check, "refused" is never asked
        assert_eq!(checked.len(), 2, "{checked:?} {}", t.label);
        let made = find(made.id).await;
        assert_eq!(made.status, RefundStatus::Success, "{}", t.label);
        let order = testing::stored_order(db, "EX6").await;
        assert_eq!(order.status, OrderStatus::Refunded, "{}", t.label);
        let never_now = find(never.id).await;
        assert_eq!(never_now.status, RefundStatus::Failed);
        assert!(run_at(db, &api, &events, failed_at + 23 * 3_600_000)
            .await
            .is_empty());
        let last = run_at(db, &api, &events, failed_at + 25 * 3_600_000).await;
        assert_eq!(last.len(), 1, "the day's check ({})", t.label);
        assert_eq!(last[0].status, RefundStatus::Failed);
        assert!(
            run_at(db, &api, &events, failed_at + 30 * 86_400_000)
                .await
                .is_empty(),
            "no checks after the last ({})",
            t.label
        );
        assert_eq!(calls.lock().unwrap().get(&refused.out_refund_no), Some(&1));
    }
}

/// A refund notification as WeChat Pay sends it (docs/wechatpay-v2.md §8.9), encrypted with `key`.
fn refund_notification(
    refund: &Refund,
    total_fee: i64,
    refund_fee: i64,
    status: &str,
    key: &str,
) -> Vec<u8> {
    let mut inner = Params::new();
    for (k, v) in [
        ("out_refund_no", refund.out_refund_no.clone()),
        ("refund_id", "50000000382019052709732678859".into()),
        ("out_trade_no", refund.out_trade_no.clone()),
        ("transaction_id", "4200000000000000000000000001".into()),
        ("total_fee", total_fee.to_string()),
        ("refund_fee", refund_fee.to_string()),
        ("refund_status", status.into()),
        ("success_time", "2026-11-23 10:00:00".into()),
        ("refund_recv_accout", "支付用户零钱".into()),
    ] {
        inner.insert(k.into(), v);
    }
    let req_info = wxpay::notify::encrypt_req_info(&inner, &ApiKey::new(key));
    let mut outer = Params::new();
    for (k, v) in [
        ("return_code", "SUCCESS".to_string()),
        ("appid", "wx2421b1c4370ec43b".into()),
        ("mch_id", "10000100".into()),
        ("nonce_str", "abc".into()),
        ("req_info", req_info),
    ] {
        outer.insert(k.into(), v);
    }
    wxpay::xml::write(&outer).into_bytes()
}

#[tokio::test]
async fn refund_notifications_apply_once_and_record_every_verdict() {
    for t in databases().await {
        // Arrange
        let (db, events) = (&t.db, EventBus::new());
        let r = approved(db, &events, "NT1", 400).await;
        sqlx::query("update refunds set status = 'PROCESSING' where id = $1")
            .bind(r.id)
            .execute(db.writer())
            .await
            .unwrap();
        let m = merchant();
        let wrong_key = "00000000000000000000000000000000";

        // Act
        let bad_key = notify::receive_refund_notification(
            db,
            &m,
            None,
            &refund_notification(&r, 400, 400, "SUCCESS", wrong_key),
        )
        .await;
        let bad_amount = notify::receive_refund_notification(
            db,
            &m,
            None,
            &refund_notification(&r, 400, 401, "SUCCESS", KEY),
        )
        .await;
        let body = refund_notification(&r, 400, 400, "SUCCESS", KEY);
        let first = notify::receive_refund_notification(db, &m, None, &body).await;
        let again = notify::receive_refund_notification(db, &m, None, &body).await;
        let stale = notify::receive_refund_notification(
            db,
            &m,
            None,
            &refund_notification(&r, 400, 400, "CHANGE", KEY),
        )
        .await;
        let mut unknown = r.clone();
        unknown.out_refund_no = "RFNOTOURS".into();
        let stranger = notify::receive_refund_notification(
            db,
            &m,
            None,
            &refund_notification(&unknown, 400, 400, "SUCCESS", KEY),
        )
        .await;

        // Assert
        let verdicts = [
            bad_key.verdict,
            bad_amount.verdict,
            first.verdict,
            again.verdict,
            stale.verdict,
            stranger.verdict,
        ];
        assert_eq!(
            verdicts,
            [
                Verdict::DecryptFailed,
                Verdict::AmountMismatch,
                Verdict::Applied,
                Verdict::Duplicate,
                Verdict::Duplicate,
                Verdict::UnknownOrder
            ],
            "{}",
            t.label
        );
        assert!(first.reply_body.contains("SUCCESS"));
        assert!(bad_key.reply_body.contains("FAIL"));
        let refund = refunds::find(db, r.id).await.unwrap().unwrap();
        assert_eq!(refund.status, RefundStatus::Success, "{}", t.label);
        assert!(refund.succeeded_at.is_some());
        let order = testing::stored_order(db, "NT1").await;
        assert_eq!(order.status, OrderStatus::Refunded);
        let stored = paydesk_core::testing::recent_notifications(db, None, 10)
            .await
            .unwrap();
        assert_eq!(stored.len(), 6, "{}", t.label);
        assert!(stored.iter().all(|n| n.kind == "refund"));
        let (no, fee): (Option<String>, Option<i64>) = sqlx::query_as(
            "select out_refund_no, refund_fee from notifications where verdict = 'applied'",
        )
        .fetch_one(db.reader())
        .await
        .unwrap();
        assert_eq!(no.as_deref(), Some(r.out_refund_no.as_str()));
        assert_eq!(fee, Some(400));
    }
}

#[tokio::test]
async fn partial_refunds_move_the_order_to_partially_refunded_then_refunded() {
    for t in databases().await {
        let (db, events) = (&t.db, EventBus::new());
        paid_order(db, "PR1", 1000).await;
        let boss = staff(db, "boss").await;
        let m = merchant();
        let mut statuses = Vec::new();
        for amount in [300, 700] {
            let r = refunds::request(db, &events, "PR1", Some(amount), "part", customer())
                .await
                .unwrap();
            refunds::approve(db, &events, &boss, r.id, "ok")
                .await
                .unwrap();
            sqlx::query("update refunds set status = 'PROCESSING' where id = $1")
                .bind(r.id)
                .execute(db.writer())
                .await
                .unwrap();
            let body = refund_notification(&r, 1000, amount, "SUCCESS", KEY);
            let outcome = notify::receive_refund_notification(db, &m, None, &body).await;
            assert_eq!(outcome.verdict, Verdict::Applied, "{}", t.label);
            let order = testing::stored_order(db, "PR1").await;
            statuses.push(order.status);
        }
        assert_eq!(
            statuses,
            [OrderStatus::PartiallyRefunded, OrderStatus::Refunded],
            "{}",
            t.label
        );
    }
}
