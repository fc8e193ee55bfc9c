//! The order sync job against the running app and its in-process simulator, on every
//! database backend (docs/design.md "Sync"; docs/wechatpay-v2.md §8.3, §8.4): a lost notification still ends
//! PAID, an expired order ends CLOSED at both ends, and several instances share the work
//! without querying an order twice per lease.

use std::time::Duration;

use paydesk_core::events::{Event, PaidVia};
use paydesk_core::orders::{NewOrder, Order, OrderStatus};
use paydesk_core::{api_calls, now_ms, testing};
use paydesk_sim::{OrderState, PayRequest, RunningSim};
use serde_json::json;
use tokio::sync::broadcast;

use crate::helpers::{set_faults, spawn_apps_with, spawn_sibling, TestApp};

const FEE: i64 = 2560;

/// The job at full speed: an order is first due a second after it was placed, and due
/// orders are looked at within 50 ms.
fn fast_sync() -> serde_json::Value {
    json!({"sync": {"first_delay_seconds": 1, "tick_millis": 50}})
}

/// When an order placed now is first due under [`fast_sync`]: time enough for the test to
/// send unifiedorder (and pay) before the job looks.
fn first_due() -> i64 {
    now_ms() + 1000
}

/// Stores an order and sends it to unifiedorder, as `POST /api/mp/orders` does.
/// An order placed at WeChat Pay over 5 minutes ago (so closeorder may be called for it).
async fn place_order(app: &TestApp, no: &str, expires_at: i64, next_sync_at: i64) -> Order {
    app.placed_at_wechat(NewOrder {
        description: "paydesk sync test".into(),
        expires_at: Some(expires_at),
        next_sync_at: Some(next_sync_at),
        ..testing::new_order(no, FEE)
    })
    .await;
    app.age_order(no).await
}

fn drop_payment_notifications(sim: &RunningSim) {
    set_faults(
        sim,
        json!({
            "notifications": [{"fault": "drop", "count": 100, "kind": "payment"}]
        }),
    );
}

fn in_an_hour() -> i64 {
    now_ms() + 3_600_000
}

/// Polls the order until `done` holds (10 s at most).
async fn wait_for_order(app: &TestApp, no: &str, done: impl Fn(&Order) -> bool) -> Order {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = app.stored_order(no).await;
        if done(&o) {
            return o;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {no} never got there; it is {o:?}",
            app.db.label
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The first event about `no` (5 s at most).
async fn event_about(rx: &mut broadcast::Receiver<Event>, no: &str) -> Event {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = rx.recv().await.unwrap();
            match &event {
                Event::OrderPaid { out_trade_no, .. } | Event::OrderClosed { out_trade_no, .. }
                    if out_trade_no == no =>
                {
                    return event
                }
                _ => {}
            }
        }
    })
    .await
    .expect("an event about the order")
}

/// How often the simulator saw `endpoint` called about `no`.
fn sim_calls(sim: &RunningSim, endpoint: &str, no: &str) -> usize {
    sim.api_calls()
        .iter()
        .filter(|c| c.endpoint == endpoint && c.out_trade_no.as_deref() == Some(no))
        .count()
}

/// Whether the app's own call log (`api_calls`) has a call to `endpoint` about `no` that
/// was answered `result_code`.
async fn recorded(app: &TestApp, endpoint: &str, no: &str, result_code: &str) -> bool {
    app.state.api_calls.flush().await;
    api_calls::recent(&app.db.db, Some(no), 50)
        .await
        .unwrap()
        .iter()
        .any(|c| c.endpoint == endpoint && c.result_code.as_deref() == Some(result_code))
}

#[tokio::test]
async fn a_dropped_payment_notification_is_recovered_by_orderquery() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: the shopper pays, but every notification is lost
        let sim = app.simulator();
        drop_payment_notifications(sim);
        let mut events = app.state.events.subscribe();
        place_order(&app, "SY-DROP-1", in_an_hour(), first_due()).await;
        sim.pay_order("SY-DROP-1", &PayRequest::default()).unwrap();

        // Act: the order becomes due; the job asks orderquery
        let paid = wait_for_order(&app, "SY-DROP-1", |o| o.status != OrderStatus::NotPay).await;

        // Assert
        assert_eq!(paid.status, OrderStatus::Paid, "{}", app.db.label);
        let sim_order = sim.order("SY-DROP-1").unwrap();
        assert_eq!(
            paid.transaction_id, sim_order.transaction_id,
            "{}",
            app.db.label
        );
        assert_eq!(paid.total_fee, FEE);
        assert_eq!(paid.next_sync_at, None);
        match event_about(&mut events, "SY-DROP-1").await {
            Event::OrderPaid {
                via,
                transaction_id,
                ..
            } => {
                assert_eq!(via, PaidVia::Query, "{}", app.db.label);
                assert_eq!(transaction_id, paid.transaction_id);
            }
            other => panic!("{}: {other:?}", app.db.label),
        }
        assert!(
            recorded(&app, "/pay/orderquery", "SY-DROP-1", "SUCCESS").await,
            "{}: the orderquery is in api_calls",
            app.db.label
        );
        let received =
            paydesk_core::testing::recent_notifications(&app.db.db, Some("SY-DROP-1"), 10)
                .await
                .unwrap();
        assert!(
            received.is_empty(),
            "{}: no notification got through",
            app.db.label
        );
    }
}

#[tokio::test]
async fn an_expired_order_is_closed_with_closeorder_at_both_ends() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: an order whose payment window has passed (WeChat Pay would still take it)
        let sim = app.simulator();
        let mut events = app.state.events.subscribe();
        place_order(&app, "SY-EXP-1", now_ms() - 1000, first_due()).await;

        // Act: the order becomes due; the job closes it
        let closed = wait_for_order(&app, "SY-EXP-1", |o| o.status != OrderStatus::NotPay).await;

        // Assert
        assert_eq!(closed.status, OrderStatus::Closed, "{}", app.db.label);
        assert_eq!(closed.next_sync_at, None);
        assert_eq!(
            sim.order("SY-EXP-1").unwrap().state,
            OrderState::Closed,
            "{}",
            app.db.label
        );
        assert_eq!(sim_calls(sim, "/pay/closeorder", "SY-EXP-1"), 1);
        assert_eq!(
            event_about(&mut events, "SY-EXP-1").await,
            Event::OrderClosed {
                order_id: closed.id,
                out_trade_no: "SY-EXP-1".into(),
                status: "CLOSED".into(),
            },
            "{}",
            app.db.label
        );
        assert!(
            recorded(&app, "/pay/closeorder", "SY-EXP-1", "SUCCESS").await,
            "{}: the closeorder is in api_calls",
            app.db.label
        );
    }
}

#[tokio::test]
async fn an_expired_order_paid_at_the_last_moment_ends_paid_when_closeorder_says_orderpaid() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: expired at our side, paid at WeChat Pay's, the notification lost
        let sim = app.simulator();
        drop_payment_notifications(sim);
        let mut events = app.state.events.subscribe();
        place_order(&app, "SY-LATE-1", now_ms() - 1000, first_due()).await;
        sim.pay_order("SY-LATE-1", &PayRequest::default()).unwrap();

        // Act: the order becomes due; the job tries to close it
        let paid = wait_for_order(&app, "SY-LATE-1", |o| o.status != OrderStatus::NotPay).await;

        // Assert: closeorder answered ORDERPAID, orderquery supplied the payment
        assert_eq!(paid.status, OrderStatus::Paid, "{}", app.db.label);
        assert_eq!(
            paid.transaction_id,
            sim.order("SY-LATE-1").unwrap().transaction_id
        );
        let close = sim
            .api_calls()
            .into_iter()
            .find(|c| {
                c.endpoint == "/pay/closeorder" && c.out_trade_no.as_deref() == Some("SY-LATE-1")
            })
            .expect("a closeorder call");
        assert_eq!(
            close.err_code.as_deref(),
            Some("ORDERPAID"),
            "{}",
            app.db.label
        );
        assert_eq!(sim_calls(sim, "/pay/orderquery", "SY-LATE-1"), 1);
        assert!(
            matches!(
                event_about(&mut events, "SY-LATE-1").await,
                Event::OrderPaid {
                    via: PaidVia::Query,
                    ..
                }
            ),
            "{}",
            app.db.label
        );
    }
}

#[tokio::test]
async fn two_instances_on_one_database_query_each_due_order_once_per_lease() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: a second instance on the same database, talking to the same simulator
        let sim = app.simulator();
        let mut second = fast_sync();
        second["simulator"] = json!("off");
        second["wxpay"] = json!({
            "appid": sim.appid(),
            "mch_id": sim.mch_id(),
            "api_key": sim.api_key().expose(),
            "base_url": sim.http_base_url(),
            "notify_url": app.url("/wxpay/notify/payment"),
            "refund_notify_url": app.url("/wxpay/notify/refund"),
            // The in-process simulator on loopback: the explicit relaxation.
            "allow_insecure_notify_urls": "on",
        });
        let _second = spawn_sibling(&app, second).await;
        let numbers: Vec<String> = (0..12).map(|i| format!("SY-TWO-{i}")).collect();
        let due = now_ms() + 1500;
        for no in &numbers {
            place_order(&app, no, in_an_hour(), due).await;
        }

        // Act: all due at the same moment; both instances' jobs race for them
        let mut synced = Vec::new();
        for no in &numbers {
            synced.push(wait_for_order(&app, no, |o| o.sync_attempts >= 1).await);
        }

        // Assert: one orderquery per order; the next one is backed off by 2 s
        for o in &synced {
            assert_eq!(
                sim_calls(sim, "/pay/orderquery", &o.out_trade_no),
                1,
                "{}: {}",
                app.db.label,
                o.out_trade_no
            );
            assert_eq!(
                app.stored_order(&o.out_trade_no).await.sync_attempts,
                1,
                "{}",
                app.db.label
            );
        }
    }
}

#[tokio::test]
async fn an_order_that_stays_unpaid_is_asked_about_with_growing_gaps_up_to_the_cap() {
    let settings =
        json!({"sync": {"first_delay_seconds": 0, "max_delay_seconds": 3, "tick_millis": 50}});
    for app in spawn_apps_with(settings).await {
        // Arrange
        let sim = app.simulator();
        place_order(&app, "SY-BACK-1", in_an_hour(), first_due()).await;

        // Act: the order becomes due; nobody pays
        let first = wait_for_order(&app, "SY-BACK-1", |o| o.sync_attempts == 1).await;
        let second = wait_for_order(&app, "SY-BACK-1", |o| o.sync_attempts == 2).await;

        // Assert: the first delay (1 s) doubled, then doubled again but capped at 3 s
        let gap = |o: &Order| o.next_sync_at.unwrap() - o.updated_at;
        assert_eq!(gap(&first), 2000, "{}", app.db.label);
        assert_eq!(gap(&second), 3000, "{}", app.db.label);
        assert!(
            second.updated_at - first.updated_at >= 2000,
            "{}: the second query came {} ms after the first",
            app.db.label,
            second.updated_at - first.updated_at
        );
        assert_eq!(second.status, OrderStatus::NotPay);
        assert_eq!(
            sim_calls(sim, "/pay/orderquery", "SY-BACK-1"),
            2,
            "{}",
            app.db.label
        );
    }
}
