//! Refunds end to end against the running app and a real simulator over real mutual TLS, on
//! every database backend (issue "refunds end to end"; docs/wechatpay-v2.md §8.5, §8.6, §8.9): requests from
//! the mini program, approval, execution, retries, certificate failures, refund
//! notifications and the simulator's CHANGE / REFUNDCLOSE outcomes.

use paydesk_core::audit::Actor;
use paydesk_core::notify::Verdict;
use paydesk_core::orders::{NewOrder, OrderStatus};
use paydesk_core::refunds::{self, Refund, RefundStatus, Requester};
use paydesk_core::{testing, Db};
use paydesk_sim::{PayRequest, RefundState, RunningSim};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    merchant_against, mp_call, set_faults, spawn_apps_with, standalone_sim, wait_until, TestApp,
};

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// The refund job at full speed; the order sync job off (it is not what these test).
fn fast_refunds() -> Value {
    json!({
        "refunds": {"tick_millis": 50, "retry_base_millis": 50, "query_delay_seconds": 1},
        "sync": {"enabled": "off"},
    })
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// An order of `fee` fen by `openid`, sent to unifiedorder and paid at the simulator, as
/// stored once its payment notification arrived.
async fn paid_order(app: &TestApp, sim: &RunningSim, no: &str, fee: i64, openid: &str) {
    app.placed_at_wechat(NewOrder {
        openid: openid.into(),
        description: "paydesk refund test".into(),
        ..testing::new_order(no, fee)
    })
    .await;
    sim.pay_order(no, &PayRequest::default()).unwrap();
    wait_until(app, "the order to be paid", || async {
        order_status(&app.db.db, no).await == OrderStatus::Paid
    })
    .await;
}

async fn order_status(db: &Db, no: &str) -> OrderStatus {
    testing::stored_order(db, no).await.status
}

/// A manager (inserted directly; passwords are not what these tests are about).
async fn staff(app: &TestApp, name: &str) -> Actor {
    testing::manager(&app.db.db, name).await
}

async fn request(app: &TestApp, no: &str, amount: Option<i64>) -> Refund {
    refunds::request(
        &app.db.db,
        &app.state.events,
        no,
        amount,
        "the cup arrived broken",
        Requester::Customer {
            openid: OPENID.into(),
        },
    )
    .await
    .unwrap()
}

/// A refund request filed by `support` for the customer.
async fn filed_by(app: &TestApp, support: &Actor, no: &str, amount: Option<i64>) -> Refund {
    refunds::request(
        &app.db.db,
        &app.state.events,
        no,
        amount,
        "the customer called",
        Requester::Staff {
            actor: support.clone(),
        },
    )
    .await
    .unwrap()
}

/// A paid order of `fee` fen with a pending refund request of `amount`, and a manager.
async fn requested(
    app: &TestApp,
    sim: &RunningSim,
    no: &str,
    fee: i64,
    amount: Option<i64>,
) -> (Actor, Refund) {
    paid_order(app, sim, no, fee, OPENID).await;
    (staff(app, "mia").await, request(app, no, amount).await)
}

async fn approve(app: &TestApp, manager: &Actor, refund: &Refund) -> Refund {
    refunds::approve(&app.db.db, &app.state.events, manager, refund.id, "ok")
        .await
        .unwrap()
}

/// The refund once it reached `status` (15 s at most).
async fn wait_for_refund(app: &TestApp, id: i64, status: RefundStatus) -> Refund {
    wait_until(app, &format!("refund {id} to be {status}"), || async {
        refunds::find(&app.db.db, id).await.unwrap().unwrap().status == status
    })
    .await;
    refunds::find(&app.db.db, id).await.unwrap().unwrap()
}

fn sim_refunds_of(sim: &RunningSim, no: &str) -> Vec<paydesk_sim::Refund> {
    sim.refunds()
        .into_iter()
        .filter(|r| r.out_trade_no == no)
        .collect()
}

/// A shopper's POST to the mini-program API.
async fn mp_post(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, value) =
        mp_call(&app.base, Method::POST, path, Some(token), None, Some(body)).await;
    (status, value)
}

#[tokio::test]
async fn a_shopper_refunds_up_to_the_total_and_each_refund_happens_once() {
    for app in spawn_apps_with(fast_refunds()).await {
        // Arrange
        let sim = app.simulator();
        let token = app.shopper_token("rf-1").await;
        let openid = paydesk_sim::default_openid(sim.appid(), "rf-1");
        paid_order(&app, sim, "RF-MP-1", 1000, &openid).await;
        let manager = staff(&app, "mia").await;
        let path = "/api/mp/orders/RF-MP-1/refund-requests";

        // Act
        let (part_status, part) = mp_post(
            &app,
            path,
            &token,
            json!({"amount_fen": 300, "reason": "one cup broken"}),
        )
        .await;
        let (over_status, over) = mp_post(
            &app,
            path,
            &token,
            json!({"amount_fen": 701, "reason": "too much"}),
        )
        .await;
        // One open request per order: the rest waits until the first is final.
        let (open_status, open) = mp_post(&app, path, &token, json!({"reason": "the rest"})).await;
        let settle = |body: Value| {
            let (app, manager) = (&app, &manager);
            async move {
                let no = body["out_refund_no"].as_str().unwrap();
                sim.set_refund_outcome(no, RefundState::Success, None)
                    .unwrap();
                let refund = refunds::find_by_out_refund_no(&app.db.db, no)
                    .await
                    .unwrap()
                    .unwrap();
                approve(app, manager, &refund).await;
                wait_for_refund(app, refund.id, RefundStatus::Success).await;
            }
        };
        settle(part.clone()).await;
        let (rest_status, rest) = mp_post(&app, path, &token, json!({"reason": "the rest"})).await;
        let (none_status, _) = mp_post(&app, path, &token, json!({"reason": "again"})).await;
        let (foreign_status, foreign) = mp_post(
            &app,
            "/api/mp/orders/NOT-MINE/refund-requests",
            &token,
            json!({"reason": "x"}),
        )
        .await;
        settle(rest.clone()).await;

        // Assert
        assert_eq!(part_status, 201, "{}: {part}", app.db.label);
        assert_eq!(part["status"], "PENDING_APPROVAL");
        assert_eq!(over_status, 400, "{}: {over}", app.db.label);
        assert!(
            over["message"].as_str().unwrap().contains("¥7.00"),
            "{over}"
        );
        assert_eq!(open_status, 409, "{}: {open}", app.db.label);
        assert_eq!(open["code"], "REFUND_REQUEST_OPEN");
        assert_eq!(rest_status, 201);
        assert_eq!(rest["amount_fen"], 700);
        assert_eq!(none_status, 400);
        assert_eq!(foreign_status, 404, "{foreign}");
        wait_until(&app, "the order to be refunded", || async {
            order_status(&app.db.db, "RF-MP-1").await == OrderStatus::Refunded
        })
        .await;
        let at_sim = sim_refunds_of(sim, "RF-MP-1");
        assert_eq!(at_sim.len(), 2, "{}: {at_sim:?}", app.db.label);
        let order = app.stored_order("RF-MP-1").await;
        for r in refunds::for_order(&app.db.db, order.id).await.unwrap() {
            let r = wait_for_refund(&app, r.id, RefundStatus::Success).await;
            assert_eq!(r.attempts, 1, "{}", app.db.label);
            assert!(r.refund_id.is_some());
        }
        // The simulator's notifications were applied (or found already applied by a query).
        let applied = paydesk_core::testing::recent_notifications(&app.db.db, None, 50)
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.kind == "refund" && n.verdict.acknowledged())
            .count();
        assert!(
            applied >= 1,
            "{}: no refund notification applied",
            app.db.label
        );
    }
}

#[tokio::test]
async fn two_managers_approving_at_once_make_one_refund_at_the_simulator() {
    for app in spawn_apps_with(fast_refunds()).await {
        let sim = app.simulator();
        paid_order(&app, sim, "RF-2M-1", 500, OPENID).await;
        let filed = refunds::request(
            &app.db.db,
            &app.state.events,
            "RF-2M-1",
            None,
            "wrong size",
            Requester::Staff {
                actor: staff(&app, "sue").await,
            },
        )
        .await
        .unwrap();
        let sue = Actor {
            user_id: filed.requester_user_id,
            name: "sue".into(),
            ip: None,
        };
        let (ann, bob) = (staff(&app, "ann").await, staff(&app, "bob").await);
        sim.set_refund_outcome(&filed.out_refund_no, RefundState::Success, None)
            .unwrap();

        let own = refunds::approve(&app.db.db, &app.state.events, &sue, filed.id, "me").await;
        let (a, b) = tokio::join!(
            refunds::approve(&app.db.db, &app.state.events, &ann, filed.id, "yes"),
            refunds::approve(&app.db.db, &app.state.events, &bob, filed.id, "yes"),
        );

        assert!(own.is_err(), "{}: self-approval allowed", app.db.label);
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{}",
            app.db.label
        );
        wait_for_refund(&app, filed.id, RefundStatus::Success).await;
        assert_eq!(sim_refunds_of(sim, "RF-2M-1").len(), 1, "{}", app.db.label);
        assert_eq!(
            order_status(&app.db.db, "RF-2M-1").await,
            OrderStatus::Refunded
        );
    }
}

#[tokio::test]
async fn a_system_error_then_success_makes_one_refund() {
    for app in spawn_apps_with(fast_refunds()).await {
        let sim = app.simulator();
        let (manager, r) = requested(&app, sim, "RF-SYS-1", 600, Some(250)).await;
        sim.set_refund_outcome(&r.out_refund_no, RefundState::Success, None)
            .unwrap();
        set_faults(
            sim,
            json!({"api": [{"fault": "system_error", "endpoint": "/secapi/pay/refund", "count": 1}]}),
        );

        approve(&app, &manager, &r).await;

        let done = wait_for_refund(&app, r.id, RefundStatus::Success).await;
        assert_eq!(done.attempts, 2, "{}", app.db.label);
        assert_eq!(sim_refunds_of(sim, "RF-SYS-1").len(), 1, "{}", app.db.label);
        assert_eq!(
            order_status(&app.db.db, "RF-SYS-1").await,
            OrderStatus::PartiallyRefunded
        );
    }
}

#[tokio::test]
async fn a_business_error_ends_failed_with_the_reason_in_plain_words() {
    for app in spawn_apps_with(fast_refunds()).await {
        let sim = app.simulator();
        let (manager, r) = requested(&app, sim, "RF-NE-1", 600, None).await;
        set_faults(
            sim,
            json!({"api": [{"fault": "err_code", "err_code": "NOTENOUGH", "err_code_des": "基本账户余额不足", "endpoint": "/secapi/pay/refund"}]}),
        );

        approve(&app, &manager, &r).await;

        let failed = wait_for_refund(&app, r.id, RefundStatus::Failed).await;
        assert_eq!(failed.last_error_code.as_deref(), Some("NOTENOUGH"));
        assert!(
            failed.last_error.as_deref().unwrap().contains("balance"),
            "{failed:?}"
        );
        assert!(sim_refunds_of(sim, "RF-NE-1").is_empty());
        assert_eq!(order_status(&app.db.db, "RF-NE-1").await, OrderStatus::Paid);
    }
}

/// Requests and approves a refund of a new paid order `no`; it must end `FAILED` with
/// `code`, a reason naming the certificate, the request kept as it was, and nothing
/// refunded at the simulator.
async fn approved_refund_fails(app: &TestApp, sim: &RunningSim, no: &str, code: &str) {
    // Arrange
    let (manager, r) = requested(app, sim, no, 300, None).await;

    // Act
    approve(app, &manager, &r).await;

    // Assert
    let failed = wait_for_refund(app, r.id, RefundStatus::Failed).await;
    assert_eq!(
        failed.last_error_code.as_deref(),
        Some(code),
        "{}: {failed:?}",
        app.db.label
    );
    let reason = failed.last_error.as_deref().unwrap();
    assert!(reason.contains("certificate"), "{reason}");
    assert_eq!(failed.amount_fen, 300, "the request is kept as it was");
    assert_eq!(failed.out_refund_no, r.out_refund_no);
    assert!(sim_refunds_of(sim, no).is_empty());
}

#[tokio::test]
async fn a_foreign_certificate_ends_failed_with_a_clear_reason_and_keeps_the_request() {
    let other_dir = tempfile::tempdir().unwrap();
    let other = standalone_sim(&other_dir, |_| {}).await;
    let foreign = json!({"wxpay": {
        "cert_pem": other.cert_paths().client_cert,
        "key_pem": other.cert_paths().client_key,
    }});
    for app in spawn_apps_with(merged(fast_refunds(), foreign)).await {
        let sim = app.simulator();
        approved_refund_fails(&app, sim, "RF-CERT-1", "CERTIFICATE_REFUSED").await;
    }
}

#[tokio::test]
async fn a_missing_certificate_ends_failed_with_a_clear_reason_and_keeps_the_request() {
    // Merchant mode against a simulator of our own, with no client certificate configured.
    let dir = tempfile::tempdir().unwrap();
    let sim = standalone_sim(&dir, |_| {}).await;
    let mut merchant = merchant_against(&sim);
    for no_certificate in ["cert_pem", "key_pem"] {
        merchant["wxpay"]
            .as_object_mut()
            .unwrap()
            .remove(no_certificate);
    }
    for app in spawn_apps_with(merged(fast_refunds(), merchant)).await {
        let no = format!("RF-NOCERT-{}", app.db.label);
        approved_refund_fails(&app, &sim, &no, "NO_CERTIFICATE").await;
    }
}

#[tokio::test]
async fn a_refund_notification_with_a_wrong_key_is_recorded_as_decrypt_failed() {
    for app in spawn_apps_with(fast_refunds()).await {
        let sim = app.simulator();
        paid_order(&app, sim, "RF-KEY-1", 300, OPENID).await;
        let r = request(&app, "RF-KEY-1", None).await;
        let mut inner = wxpay::Params::new();
        for (k, v) in [
            ("out_refund_no", r.out_refund_no.as_str()),
            ("refund_id", "50000000382019052709732678859"),
            ("out_trade_no", "RF-KEY-1"),
            ("transaction_id", "4200000000000000000000000001"),
            ("total_fee", "300"),
            ("refund_fee", "300"),
            ("refund_status", "SUCCESS"),
        ] {
            inner.insert(k.into(), v.into());
        }
        let wrong = wxpay::ApiKey::new("00000000000000000000000000000000");
        let mut outer = wxpay::Params::new();
        for (k, v) in [
            ("return_code", "SUCCESS".to_string()),
            ("appid", sim.appid().into()),
            ("mch_id", sim.mch_id().into()),
            ("nonce_str", "n1".into()),
            ("req_info", wxpay::notify::encrypt_req_info(&inner, &wrong)),
        ] {
            outer.insert(k.into(), v);
        }

        let res = reqwest::Client::new()
            .post(app.url("/wxpay/notify/refund"))
            .body(wxpay::xml::write(&outer))
            .send()
            .await
            .unwrap();

        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("FAIL"));
        let stored = paydesk_core::testing::recent_notifications(&app.db.db, None, 5)
            .await
            .unwrap();
        assert_eq!(stored[0].kind, "refund", "{}", app.db.label);
        assert_eq!(stored[0].verdict, Verdict::DecryptFailed);
        let refund = refunds::find(&app.db.db, r.id).await.unwrap().unwrap();
        assert_eq!(refund.status, RefundStatus::PendingApproval);
    }
}

#[tokio::test]
async fn the_simulators_change_and_refundclose_outcomes_are_recorded() {
    for app in spawn_apps_with(fast_refunds()).await {
        // Arrange
        let sim = app.simulator();
        paid_order(&app, sim, "RF-OUT-1", 1000, OPENID).await;
        let manager = staff(&app, "mia").await;
        let changed = request(&app, "RF-OUT-1", Some(400)).await;
        // The shopper has one open request at a time; support files the second for them.
        let sue = staff(&app, "sue").await;
        let closed = filed_by(&app, &sue, "RF-OUT-1", Some(600)).await;
        sim.set_refund_outcome(&changed.out_refund_no, RefundState::Change, None)
            .unwrap();
        sim.set_refund_outcome(&closed.out_refund_no, RefundState::Refundclose, None)
            .unwrap();

        // Act
        approve(&app, &manager, &changed).await;
        approve(&app, &manager, &closed).await;

        // Assert
        let changed = wait_for_refund(&app, changed.id, RefundStatus::Change).await;
        let closed = wait_for_refund(&app, closed.id, RefundStatus::RefundClose).await;
        assert!(changed.refund_id.is_some() && closed.refund_id.is_some());
        assert_eq!(
            order_status(&app.db.db, "RF-OUT-1").await,
            OrderStatus::Paid
        );
        // A closed refund gives its amount back; a CHANGE one still holds its own.
        let again = filed_by(&app, &sue, "RF-OUT-1", None).await;
        assert_eq!(again.amount_fen, 600, "{}", app.db.label);
    }
}

#[tokio::test]
async fn two_instances_on_one_database_make_each_approved_refund_once() {
    for app in spawn_apps_with(fast_refunds()).await {
        // Arrange: a second instance with the same merchant and simulator, both refund
        // jobs running; eight paid orders with a pending refund request each
        let sim = app.simulator();
        let _second =
            crate::helpers::spawn_sibling(&app, merged(merchant_against(sim), fast_refunds()))
                .await;
        let manager = staff(&app, "max").await;
        let mut filed = Vec::new();
        for k in 0..8 {
            let no = format!("RF-TWO-{k}");
            paid_order(&app, sim, &no, 300 + k, OPENID).await;
            let refund = request(&app, &no, None).await;
            sim.set_refund_outcome(&refund.out_refund_no, RefundState::Success, None)
                .unwrap();
            filed.push((no, refund));
        }

        // Act: all approved at once; both instances' jobs race for them
        for (_, refund) in &filed {
            approve(&app, &manager, refund).await;
        }
        for (_, refund) in &filed {
            wait_for_refund(&app, refund.id, RefundStatus::Success).await;
        }

        // Assert: one refund call and one refund at the simulator per order
        for (no, _) in &filed {
            let calls = sim
                .api_calls()
                .iter()
                .filter(|c| {
                    c.endpoint == "/secapi/pay/refund" && c.out_trade_no.as_deref() == Some(no)
                })
                .count();
            assert_eq!(calls, 1, "{}: {no} refund calls", app.db.label);
            assert_eq!(sim_refunds_of(sim, no).len(), 1, "{}: {no}", app.db.label);
        }
    }
}
