//! Issue 17's protocol behaviours, each through the app's own simulator on every database
//! backend (docs/wechatpay-v2.md): what paydesk and the simulator used to get wrong together.

use std::time::Duration;

use paydesk_core::events::Event;
use paydesk_core::notify::Verdict;
use paydesk_core::orders::{self, Order, OrderStatus};
use paydesk_core::refunds::{self, RefundStatus, Requester};
use paydesk_core::{now_ms, testing};
use paydesk_sim::{DeliveryAttempt, FaultPlan, PayRequest, RunningSim};
use reqwest::StatusCode;
use serde_json::{json, Value};
use wxpay::UnifiedOrderRequest;

use crate::helpers::{spawn_apps, spawn_apps_with, TestApp};

/// The sync job at full speed: an order is first due a second after it was placed.
fn fast_sync() -> serde_json::Value {
    json!({"sync": {"first_delay_seconds": 1, "tick_millis": 50}})
}

fn sim(app: &TestApp) -> &RunningSim {
    app.sim
        .as_deref()
        .expect("sandbox mode starts the simulator")
}

/// Stores `no` (payable until `expires_at`, first due for the sync job in a second) and
/// takes it to WeChat Pay with unifiedorder, as `POST /api/mp/orders` does.
async fn order_at_wechat(app: &TestApp, no: &str, fee: i64, expires_at: i64) -> Order {
    let mut new = testing::new_order(no, fee);
    new.expires_at = Some(expires_at);
    new.next_sync_at = Some(now_ms() + 1000);
    let order = orders::create_order(&app.db.db, new).await.unwrap();
    let request = UnifiedOrderRequest::jsapi(
        order.description.clone(),
        no,
        fee,
        "127.0.0.1",
        app.state.pay.notify_url.clone(),
        order.openid.clone(),
    );
    app.state.wxpay.unified_order(&request).await.unwrap();
    // Placed over 5 minutes ago: the sync job may close it once it expires.
    app.age_order(no).await
}

/// The order as stored once `done` holds (10 s at most).
async fn order_when(app: &TestApp, no: &str, done: impl Fn(&Order) -> bool) -> Order {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let order = orders::find_by_out_trade_no(&app.db.db, no)
            .await
            .unwrap()
            .unwrap();
        if done(&order) {
            return order;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {no} never got there; it is {order:?}",
            app.db.label
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The simulator's delivery attempts of payment notifications for `no`, once `n` were
/// answered (5 s at most).
async fn answered_notifications(sim: &RunningSim, no: &str, n: usize) -> Vec<DeliveryAttempt> {
    let about = |a: &DeliveryAttempt| a.out_trade_no == no && a.out_refund_no.is_none();
    sim.wait_for_notifications(Duration::from_secs(5), |all| {
        all.iter()
            .filter(|a| about(a) && a.http_status.is_some())
            .count()
            >= n
    })
    .await
    .into_iter()
    .filter(about)
    .collect()
}

fn failed_at_the_bank() -> PayRequest {
    PayRequest {
        result: "FAIL".into(),
        err_code: Some("BANKERROR".into()),
        err_code_des: Some("银行系统异常".into()),
        ..PayRequest::default()
    }
}

#[tokio::test]
async fn a_failed_payment_is_acknowledged_and_the_order_can_still_be_paid() {
    for app in spawn_apps_with(fast_sync()).await {
        let sim = sim(&app);
        for (no, notified) in [("PAYERR-NOTIFIED", true), ("PAYERR-QUERIED", false)] {
            // Arrange: the shopper's first attempt fails at the bank.
            order_at_wechat(&app, no, 880, now_ms() + 3_600_000).await;
            let mut events = app.state.events.subscribe();
            sim.pay_order(no, &failed_at_the_bank()).unwrap();
            let attempts = answered_notifications(sim, no, 1).await;

            // Announced as a failed payment, never as a refused callback.
            let announced = tokio::time::timeout(Duration::from_secs(5), events.recv())
                .await
                .expect("an event")
                .unwrap();
            assert!(
                matches!(&announced, Event::OrderClosed { status, .. } if status == "PAYERROR"),
                "{}: {announced:?}",
                app.db.label
            );
            assert!(events.try_recv().is_err(), "{}: one event", app.db.label);

            // Assert: recorded, answered SUCCESS at once (a resend cannot help), PAYERROR,
            // and still due for the sync job.
            assert_eq!(attempts.len(), 1, "{}: {attempts:?}", app.db.label);
            assert!(attempts[0].success, "{}: {attempts:?}", app.db.label);
            let failed = order_when(&app, no, |o| o.status == OrderStatus::PayError).await;
            assert!(
                failed.next_sync_at.is_some(),
                "{}: {failed:?}",
                app.db.label
            );

            // Act: the second attempt succeeds; WeChat Pay says so by notification, or
            // (notification lost) only orderquery can tell.
            let pay = PayRequest {
                notify: Some(notified),
                ..PayRequest::default()
            };
            let paid = sim.pay_order(no, &pay).unwrap();

            // Assert: PAID with the payment's transaction_id either way.
            let order = order_when(&app, no, |o| o.status == OrderStatus::Paid).await;
            assert_eq!(
                order.transaction_id, paid.transaction_id,
                "{}: {no}",
                app.db.label
            );
            assert_eq!(order.next_sync_at, None, "{}: {no}", app.db.label);
        }
    }
}

/// `POST /api/mp/{path}` with `body` (as the shopper with `token`, if any): the status and
/// the JSON answer.
async fn mp_post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new().post(app.url(&format!("/api/mp/{path}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.json(&body).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

#[tokio::test]
async fn a_reentry_refused_as_201_duplicate_number_is_queried_like_out_trade_no_used() {
    for app in spawn_apps().await {
        // Arrange: a shopper's order, paid at WeChat Pay with the notification lost, whose
        // prepay_id paydesk believes expired; WeChat Pay refuses the renewal as
        // INVALID_REQUEST "201 商户订单号重复" (the form it commonly uses, §7).
        let (_, login) = mp_post(&app, "login", None, json!({"code": "reentry-code"})).await;
        let token = login["token"].as_str().unwrap().to_owned();
        let catalogue: Value = reqwest::get(app.url("/api/mp/products"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cart = json!({
            "items": [{"product_id": catalogue["products"][0]["id"], "quantity": 1}],
            "idempotency_key": "k-reentry",
        });
        let (created, first) = mp_post(&app, "orders", Some(&token), cart.clone()).await;
        assert_eq!(created, 201, "{}: {first}", app.db.label);
        let no = first["out_trade_no"].as_str().unwrap().to_owned();
        let quiet = PayRequest {
            notify: Some(false),
            ..PayRequest::default()
        };
        let paid = sim(&app).pay_order(&no, &quiet).unwrap();
        let order = orders::find_by_out_trade_no(&app.db.db, &no)
            .await
            .unwrap()
            .unwrap();
        let prepay_id = order.prepay_id.clone().unwrap();
        orders::set_prepay(&app.db.db, order.id, &prepay_id, now_ms())
            .await
            .unwrap();
        let refusal: FaultPlan = serde_json::from_value(json!({"api": [{
            "fault": "err_code", "endpoint": "/pay/unifiedorder",
            "err_code": "INVALID_REQUEST", "err_code_des": "201 商户订单号重复",
        }]}))
        .unwrap();
        sim(&app).set_faults(refusal);

        // Act: the mini program asks for the order's payment again.
        let (status, again) = mp_post(&app, "orders", Some(&token), cart).await;

        // Assert: paydesk asked orderquery and learnt the payment, instead of a 502.
        assert_eq!(status, 200, "{}: {again}", app.db.label);
        assert_eq!(again["status"], "PAID", "{}: {again}", app.db.label);
        assert!(again.get("pay").is_none(), "{again}");
        let stored = orders::find_by_out_trade_no(&app.db.db, &no)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, OrderStatus::Paid, "{}", app.db.label);
        assert_eq!(stored.transaction_id, paid.transaction_id);
    }
}

#[tokio::test]
async fn closing_a_paid_order_whose_orderpaid_refusal_is_unsigned_still_finds_the_payment() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: paid at WeChat Pay with the notification lost, expired for paydesk, and
        // WeChat Pay's ORDERPAID refusal of closeorder comes without sign (§6).
        let no = "UNSIGNED-PAID";
        order_at_wechat(&app, no, 990, now_ms() - 1).await;
        let quiet = PayRequest {
            notify: Some(false),
            ..PayRequest::default()
        };
        let paid = sim(&app).pay_order(no, &quiet).unwrap();
        let unsigned: FaultPlan = serde_json::from_value(json!({"api": [
            {"fault": "unsigned_errors", "endpoint": "/pay/closeorder", "count": 100}
        ]}))
        .unwrap();
        sim(&app).set_faults(unsigned);

        // Act: the sync job closes the expired order.
        let order = order_when(&app, no, |o| o.status != OrderStatus::NotPay).await;

        // Assert: ORDERPAID reached its handling (orderquery, then PAID).
        assert_eq!(order.status, OrderStatus::Paid, "{}", app.db.label);
        assert_eq!(order.transaction_id, paid.transaction_id);
        let closes: Vec<_> = sim(&app)
            .api_calls()
            .into_iter()
            .filter(|c| c.endpoint == "/pay/closeorder")
            .collect();
        assert_eq!(closes.len(), 1, "{}: {closes:?}", app.db.label);
        assert_eq!(closes[0].err_code.as_deref(), Some("ORDERPAID"));
    }
}

#[tokio::test]
async fn the_refund_reason_reaches_wechat_pay_as_refund_desc_cut_to_its_limit() {
    let fast = json!({"refunds": {"tick_millis": 50, "retry_base_millis": 50}});
    for app in spawn_apps_with(fast).await {
        // Arrange: a paid order, and a refund asked for with a long, multi-line reason.
        let no = "REFUND-DESC";
        let order = order_at_wechat(&app, no, 1200, now_ms() + 3_600_000).await;
        sim(&app).pay_order(no, &PayRequest::default()).unwrap();
        order_when(&app, no, |o| o.status == OrderStatus::Paid).await;
        let reason = format!("杯子碎了\n{}", "运输途中包装破损，".repeat(12));
        let requester = Requester::Customer {
            openid: order.openid.clone(),
        };
        let events = &app.state.events;
        let refund = refunds::request(&app.db.db, events, no, None, &reason, requester)
            .await
            .unwrap();
        let manager = testing::manager(&app.db.db, "mia").await;

        // Act: approved, the refund job sends it.
        refunds::approve(&app.db.db, events, &manager, refund.id, "ok")
            .await
            .unwrap();

        // Assert: WeChat Pay accepted it with the reason, one line, 80 characters.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let sent = loop {
            let stored = refunds::find(&app.db.db, refund.id).await.unwrap().unwrap();
            if stored.status == RefundStatus::Processing || stored.status == RefundStatus::Success {
                break sim(&app).refund(&refund.out_refund_no).unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: the refund stayed {stored:?}",
                app.db.label
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let desc = sent.refund_desc.expect("refund_desc sent");
        assert_eq!(desc.chars().count(), wxpay::api::REFUND_DESC_MAX_CHARS);
        assert!(desc.starts_with("杯子碎了 运输途中"), "{desc}");
        assert!(reason.replace('\n', " ").starts_with(&desc), "{desc}");
    }
}

#[tokio::test]
async fn a_payment_for_an_order_we_do_not_have_is_recorded_acknowledged_and_raised() {
    for app in spawn_apps().await {
        // Arrange: WeChat Pay knows an order paydesk has no row for (a restored backup, a
        // second system sharing the notify URL) and takes the shopper's money.
        let no = "UNKNOWN-TO-US";
        let request = UnifiedOrderRequest::jsapi(
            "paid elsewhere",
            no,
            660,
            "127.0.0.1",
            app.state.pay.notify_url.clone(),
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
        );
        app.state.wxpay.unified_order(&request).await.unwrap();
        let mut events = app.state.events.subscribe();

        // Act
        sim(&app).pay_order(no, &PayRequest::default()).unwrap();
        let attempts = answered_notifications(sim(&app), no, 1).await;

        // Assert: answered SUCCESS at once (no 24 h of resends), recorded as unknown_order,
        // and raised for a person (the failures page's verdict, a live event).
        assert_eq!(attempts.len(), 1, "{}: {attempts:?}", app.db.label);
        assert!(attempts[0].success, "{}: {attempts:?}", app.db.label);
        let rows = testing::recent_notifications(&app.db.db, Some(no), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{}", app.db.label);
        assert_eq!(rows[0].verdict, Verdict::UnknownOrder);
        assert!(rows[0].verdict.is_failure());
        let raised = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(Event::NotificationRejected { verdict, .. }) = events.recv().await {
                    return verdict;
                }
            }
        })
        .await
        .expect("an event for a person");
        assert_eq!(raised, "unknown_order");
    }
}

#[tokio::test]
async fn ordernotexist_leaves_an_order_unpaid_until_it_expires_then_closes_it() {
    for app in spawn_apps_with(fast_sync()).await {
        // Arrange: two orders paydesk gave a prepay_id that WeChat Pay does not know (seeded
        // history, a simulator restarted with its state gone): one still payable, one
        // expired.
        for (no, expires_at) in [
            ("FORGOTTEN-LIVE", now_ms() + 3_600_000),
            ("FORGOTTEN-OLD", now_ms() - 1),
        ] {
            let mut new = testing::new_order(no, 700);
            new.expires_at = Some(expires_at);
            new.next_sync_at = Some(now_ms() + 1000);
            let order = orders::create_order(&app.db.db, new).await.unwrap();
            let prepay = "wx20261206120000abcdef0123456789";
            orders::set_prepay(&app.db.db, order.id, prepay, expires_at)
                .await
                .unwrap();
            // Placed over 5 minutes ago, so an expired one may be closed.
            testing::backdate(&app.db.db, no, testing::OLD_ENOUGH_TO_CLOSE).await;
        }
        let manager = testing::manager(&app.db.db, "mia").await;

        // Act: a person asks about the live one now; the job gets to both.
        let asked = orders::actions::sync_now(
            &app.db.db,
            app.state.wxpay.as_ref(),
            &app.state.events,
            &manager,
            "FORGOTTEN-LIVE",
        )
        .await;
        let old = order_when(&app, "FORGOTTEN-OLD", |o| o.status != OrderStatus::NotPay).await;
        let live = order_when(&app, "FORGOTTEN-LIVE", |o| o.sync_attempts >= 1).await;

        // Assert: ORDERNOTEXIST is an answer, not an error: the live order stays NOTPAY
        // (and is asked about again), the expired one is closed here.
        let asked = asked.expect("ORDERNOTEXIST is a business answer");
        assert_eq!(asked.status, OrderStatus::NotPay, "{}", app.db.label);
        assert_eq!(live.status, OrderStatus::NotPay, "{}", app.db.label);
        assert!(live.next_sync_at.is_some(), "{}", app.db.label);
        assert_eq!(old.status, OrderStatus::Closed, "{}", app.db.label);
        assert_eq!(old.next_sync_at, None, "{}", app.db.label);
        let sim_answers: Vec<_> = sim(&app)
            .api_calls()
            .into_iter()
            .filter(|c| {
                c.out_trade_no
                    .as_deref()
                    .is_some_and(|n| n.starts_with("FORGOTTEN"))
            })
            .collect();
        assert!(
            sim_answers
                .iter()
                .all(|c| c.err_code.as_deref() == Some("ORDERNOTEXIST")),
            "{}: {sim_answers:?}",
            app.db.label
        );
    }
}
