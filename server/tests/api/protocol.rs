//! Issue 17's protocol behaviours, each through the app's own simulator on every database
//! backend (docs/wechatpay-v2.md): what paydesk and the simulator used to get wrong together.

use std::time::Duration;

use paydesk_core::orders::{self, Order, OrderStatus};
use paydesk_core::{now_ms, testing};
use paydesk_sim::{DeliveryAttempt, PayRequest, RunningSim};
use serde_json::json;
use wxpay::UnifiedOrderRequest;

use crate::helpers::{spawn_apps_with, TestApp};

/// The sync job at full speed: an order is first due a second after it was placed.
fn fast_sync() -> serde_json::Value {
    json!({"sync": {"first_delay_seconds": 1, "tick_millis": 50}})
}

fn sim(app: &TestApp) -> &RunningSim {
    app.sim
        .as_deref()
        .expect("sandbox mode starts the simulator")
}

/// Stores `no` (an hour to live, first due for the sync job in a second) and takes it to
/// WeChat Pay with unifiedorder, as `POST /api/mp/orders` does.
async fn order_at_wechat(app: &TestApp, no: &str, fee: i64) -> Order {
    let mut new = testing::new_order(no, fee);
    new.expires_at = Some(now_ms() + 3_600_000);
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
    order
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
            order_at_wechat(&app, no, 880).await;
            sim.pay_order(no, &failed_at_the_bank()).unwrap();
            let attempts = answered_notifications(sim, no, 1).await;

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
