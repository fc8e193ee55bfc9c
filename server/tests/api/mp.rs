//! The mini-program API (`/api/mp`) against the running app and its in-process simulator, on
//! every database backend: login, catalogue, idempotent orders with real unifiedorder and
//! pay parameters the simulator accepts, ownership, cancel, errors, OpenAPI.

use std::time::Duration;

use paydesk_core::api_calls;
use paydesk_core::orders::{self, OrderStatus};
use paydesk_sim::PayRequest;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{mp_call, set_faults, spawn_apps, TestApp};

/// [`mp_call`] from loopback, without `Retry-After`.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, value) = mp_call(&app.base, method, path, token, None, body).await;
    (status, value)
}

async fn first_product(app: &TestApp) -> (i64, i64) {
    let (status, body) = call(app, Method::GET, "/api/mp/products", None, None).await;
    assert_eq!(status, 200);
    let p = &body["products"][0];
    (p["id"].as_i64().unwrap(), p["price_fen"].as_i64().unwrap())
}

async fn order(app: &TestApp, token: &str, items: Value, key: &str) -> (StatusCode, Value) {
    call(
        app,
        Method::POST,
        "/api/mp/orders",
        Some(token),
        Some(json!({ "items": items, "idempotency_key": key })),
    )
    .await
}

/// One of `product` ordered with idempotency key `key` (asserted created); its out_trade_no.
async fn placed(app: &TestApp, token: &str, product: i64, key: &str) -> String {
    let items = json!([{ "product_id": product, "quantity": 1 }]);
    let (status, created) = order(app, token, items, key).await;
    assert!(status.is_success(), "{}: {status} {created}", app.db.label);
    created["out_trade_no"].as_str().unwrap().to_owned()
}

/// The order as `GET /api/mp/orders/{no}` shows it to the shopper holding `token`.
async fn shown_order(app: &TestApp, token: &str, no: &str) -> (StatusCode, Value) {
    let path = format!("/api/mp/orders/{no}");
    call(app, Method::GET, &path, Some(token), None).await
}

/// `POST /api/mp/orders/{no}/cancel` by the shopper holding `token`.
async fn cancel(app: &TestApp, token: &str, no: &str) -> (StatusCode, Value) {
    let path = format!("/api/mp/orders/{no}/cancel");
    call(app, Method::POST, &path, Some(token), None).await
}

async fn wait_for_status(app: &TestApp, no: &str, want: OrderStatus) -> orders::Order {
    for _ in 0..100 {
        let o = app.stored_order(no).await;
        if o.status == want {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{}: order {no} never became {want}", app.db.label);
}

#[tokio::test]
async fn a_shopper_logs_in_orders_pays_in_the_simulator_and_sees_the_order_paid() {
    for app in spawn_apps().await {
        // Arrange
        let token = app.shopper_token("happy-path-code").await;
        let (product, price) = first_product(&app).await;

        // Act: order two, pay with exactly the parameters we handed out
        let (status, created) = order(
            &app,
            &token,
            json!([{ "product_id": product, "quantity": 2 }]),
            "k-happy-1",
        )
        .await;
        assert_eq!(status, 201, "{}: {created}", app.db.label);
        let no = created["out_trade_no"].as_str().unwrap().to_owned();
        let pay: wxpay::JsapiPayParams = serde_json::from_value(created["pay"].clone()).unwrap();
        app.simulator()
            .request_payment(&pay, &PayRequest::default())
            .expect("the simulator accepts our paySign");

        // Assert: priced on the server, paid by the notification, visible to the shopper
        assert_eq!(created["total_fee"], price * 2);
        assert_eq!(created["status"], "NOTPAY");
        assert!(pay.package.starts_with("prepay_id="));
        let paid = wait_for_status(&app, &no, OrderStatus::Paid).await;
        assert!(paid.transaction_id.is_some());
        let (status, shown) = shown_order(&app, &token, &no).await;
        assert_eq!(status, 200);
        assert_eq!(shown["status"], "PAID", "{}", app.db.label);
        assert_eq!(shown["items"][0]["quantity"], 2);
        let (_, list) = call(&app, Method::GET, "/api/mp/orders", Some(&token), None).await;
        assert_eq!(list["orders"][0]["out_trade_no"], no.as_str());
        app_calls_include(&app, &no, "/pay/unifiedorder").await;
        let customers: i64 = sqlx::query_scalar("select count(*) from customers")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        assert_eq!(customers, 1);
    }
}

async fn app_calls_include(app: &TestApp, no: &str, endpoint: &str) {
    for _ in 0..100 {
        let calls = api_calls::recent(&app.db.db, Some(no), 50).await.unwrap();
        if calls.iter().any(|c| c.endpoint == endpoint) {
            let c = calls.iter().find(|c| c.endpoint == endpoint).unwrap();
            assert!(c.request_body.as_deref().unwrap().contains("<sign>"));
            assert!(!c
                .request_body
                .as_deref()
                .unwrap()
                .contains(app.merchant.api_key.expose()));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{}: no {endpoint} call recorded for {no}", app.db.label);
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_order_and_reuses_the_prepay_id() {
    for app in spawn_apps().await {
        // Arrange
        let token = app.shopper_token("idem-code").await;
        let (product, _) = first_product(&app).await;
        let items = json!([{ "product_id": product, "quantity": 1 }]);

        // Act: a normal retry, then ten at once with a fresh key, then another cart
        let (s1, first) = order(&app, &token, items.clone(), "k-idem-1").await;
        let (s2, again) = order(&app, &token, items.clone(), "k-idem-1").await;
        let burst = futures::future::join_all(
            (0..10).map(|_| order(&app, &token, items.clone(), "k-idem-burst")),
        )
        .await;
        let (s3, conflict) = order(
            &app,
            &token,
            json!([{ "product_id": product, "quantity": 3 }]),
            "k-idem-1",
        )
        .await;

        // Assert
        assert_eq!((s1.as_u16(), s2.as_u16()), (201, 200), "{}", app.db.label);
        assert_eq!(first["out_trade_no"], again["out_trade_no"]);
        assert_eq!(first["pay"]["package"], again["pay"]["package"]);
        let no = first["out_trade_no"].as_str().unwrap();
        let unified = app
            .simulator()
            .api_calls()
            .into_iter()
            .filter(|c| c.endpoint == "/pay/unifiedorder" && c.out_trade_no.as_deref() == Some(no))
            .count();
        assert_eq!(unified, 1, "paying again reuses the prepay_id");
        let burst_nos: std::collections::BTreeSet<String> = burst
            .iter()
            .map(|(s, b)| {
                assert!(s.is_success(), "{}: {s} {b}", app.db.label);
                b["out_trade_no"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(burst_nos.len(), 1, "{}: {burst_nos:?}", app.db.label);
        assert_eq!(s3, 409);
        assert_eq!(conflict["code"], "IDEMPOTENCY_KEY_REUSED");
    }
}

#[tokio::test]
async fn a_failed_unifiedorder_is_a_clear_502_and_the_same_key_succeeds_later() {
    for app in spawn_apps().await {
        // Arrange
        let token = app.shopper_token("retry-code").await;
        let (product, _) = first_product(&app).await;
        let items = json!([{ "product_id": product, "quantity": 1 }]);
        set_faults(
            app.simulator(),
            json!({
                "api": [{ "fault": "system_error", "endpoint": "/pay/unifiedorder" }]
            }),
        );

        // Act
        let (s1, failed) = order(&app, &token, items.clone(), "k-retry").await;
        let (s2, retried) = order(&app, &token, items, "k-retry").await;

        // Assert
        assert_eq!(s1, 502, "{}: {failed}", app.db.label);
        assert_eq!(failed["code"], "PAYMENT_UNAVAILABLE");
        assert!(!failed["message"].as_str().unwrap().contains("SYSTEMERROR"));
        assert_eq!(s2, 200, "{}: {retried}", app.db.label);
        assert!(retried["pay"]["paySign"].is_string());
        let stored: i64 = sqlx::query_scalar("select count(*) from orders")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        assert_eq!(
            stored, 1,
            "the failed attempt's order is the one paid later"
        );
    }
}

#[tokio::test]
async fn a_status_check_asks_orderquery_when_the_notification_is_missing() {
    for app in spawn_apps().await {
        // Arrange: every notification attempt dropped
        let token = app.shopper_token("query-code").await;
        let (product, _) = first_product(&app).await;
        let no = placed(&app, &token, product, "k-query").await;
        set_faults(
            app.simulator(),
            json!({ "notifications": [{ "fault": "drop", "count": 16 }] }),
        );
        app.simulator()
            .pay_order(&no, &PayRequest::default())
            .unwrap();

        // Act
        let (status, shown) = shown_order(&app, &token, &no).await;

        // Assert
        assert_eq!(status, 200);
        assert_eq!(shown["status"], "PAID", "{}: {shown}", app.db.label);
        assert!(shown["transaction_id"].is_string());
        app_calls_include(&app, &no, "/pay/orderquery").await;
    }
}

#[tokio::test]
async fn a_shopper_cancels_an_unpaid_order_and_cannot_pay_it_afterwards() {
    for app in spawn_apps().await {
        // Arrange
        let token = app.shopper_token("cancel-code").await;
        let (product, _) = first_product(&app).await;
        let items = json!([{ "product_id": product, "quantity": 1 }]);
        let no = placed(&app, &token, product, "k-cancel").await;
        // Within 5 minutes of creation WeChat Pay takes no closeorder: the cancel is
        // answered 409 and the order is set to close by itself at that moment.
        let (early, scheduled) = cancel(&app, &token, &no).await;
        assert_eq!(early, 409, "{}: {scheduled}", app.db.label);
        assert_eq!(scheduled["code"], "CLOSE_SCHEDULED", "{scheduled}");
        let young = app.stored_order(&no).await;
        let closes_at = young.created_at + 5 * 60_000;
        assert_eq!(young.status, OrderStatus::NotPay);
        assert_eq!(young.expires_at, Some(closes_at), "{}", app.db.label);
        assert!(young.next_sync_at.is_some_and(|at| at <= closes_at));
        assert_eq!(
            app.simulator().order(&no).unwrap().state,
            paydesk_sim::OrderState::Notpay
        );
        app.age_order(&no).await;

        // Act
        let (s1, cancelled) = cancel(&app, &token, &no).await;
        let (s2, _) = cancel(&app, &token, &no).await;
        let (s3, pay_again) = order(&app, &token, items, "k-cancel").await;

        // Assert
        assert_eq!(
            (s1.as_u16(), s2.as_u16()),
            (200, 200),
            "{}: {cancelled}",
            app.db.label
        );
        assert_eq!(cancelled["status"], "CLOSED");
        assert_eq!(
            app.simulator().order(&no).unwrap().state,
            paydesk_sim::OrderState::Closed
        );
        assert_eq!(s3, 409);
        assert_eq!(pay_again["code"], "ORDER_STATE");
    }
}

#[tokio::test]
async fn shoppers_only_see_their_own_orders_and_errors_are_json() {
    for app in spawn_apps().await {
        // Arrange
        let alice = app.shopper_token("alice-code").await;
        let bob = app.shopper_token("bob-code").await;
        let (product, _) = first_product(&app).await;
        let no = placed(&app, &alice, product, "k-own").await;

        // Act + Assert: each refusal has its status and code, and says nothing internal
        let cases: Vec<(StatusCode, Value, u16, &str)> = vec![
            {
                let (s, b) = shown_order(&app, &bob, &no).await;
                (s, b, 404, "ORDER_NOT_FOUND")
            },
            {
                let (s, b) = cancel(&app, &bob, &no).await;
                (s, b, 404, "ORDER_NOT_FOUND")
            },
            {
                let (s, b) = call(&app, Method::GET, "/api/mp/orders", None, None).await;
                (s, b, 401, "UNAUTHENTICATED")
            },
            {
                let (s, b) = call(
                    &app,
                    Method::GET,
                    "/api/mp/orders",
                    Some("forged-token"),
                    None,
                )
                .await;
                (s, b, 401, "UNAUTHENTICATED")
            },
            {
                let (s, b) = order(
                    &app,
                    &alice,
                    json!([{ "product_id": 999_999, "quantity": 1 }]),
                    "k-x",
                )
                .await;
                (s, b, 400, "INVALID_REQUEST")
            },
            {
                let (s, b) = order(
                    &app,
                    &alice,
                    json!([{ "product_id": product, "quantity": 0 }]),
                    "k-y",
                )
                .await;
                (s, b, 400, "INVALID_REQUEST")
            },
            {
                let (s, b) = call(
                    &app,
                    Method::POST,
                    "/api/mp/orders",
                    Some(&alice),
                    Some(json!({ "items": "x" })),
                )
                .await;
                (s, b, 400, "INVALID_REQUEST")
            },
            {
                let (s, b) = call(
                    &app,
                    Method::POST,
                    "/api/mp/login",
                    None,
                    Some(json!({ "code": "invalid-code" })),
                )
                .await;
                (s, b, 401, "LOGIN_FAILED")
            },
            {
                let (s, b) = call(&app, Method::GET, "/api/mp/nope", None, None).await;
                (s, b, 404, "NOT_FOUND")
            },
            {
                let (s, b) = call(&app, Method::DELETE, "/api/mp/products", None, None).await;
                (s, b, 405, "METHOD_NOT_ALLOWED")
            },
        ];
        for (status, body, want_status, want_code) in cases {
            assert_eq!(status.as_u16(), want_status, "{}: {body}", app.db.label);
            assert_eq!(body["code"], want_code, "{body}");
            let text = body["message"].as_str().unwrap();
            assert!(
                !text.contains("sqlx") && !text.contains("SELECT") && !text.contains("select"),
                "{text}"
            );
        }
        // A logged-out token stops working.
        let (s, _) = call(&app, Method::POST, "/api/mp/logout", Some(&bob), None).await;
        assert_eq!(s, 204);
        let (s, _) = call(&app, Method::GET, "/api/mp/orders", Some(&bob), None).await;
        assert_eq!(s, 401);
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = spawn_apps().await.remove(0);
    let (status, doc) = call(&app, Method::GET, "/api/mp/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: std::collections::BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served = [
        ("post", "/api/mp/login"),
        ("post", "/api/mp/logout"),
        ("get", "/api/mp/products"),
        ("post", "/api/mp/orders"),
        ("get", "/api/mp/orders"),
        ("get", "/api/mp/orders/{out_trade_no}"),
        ("post", "/api/mp/orders/{out_trade_no}/cancel"),
        ("post", "/api/mp/orders/{out_trade_no}/refund-requests"),
        ("get", "/api/mp/openapi.json"),
    ];
    for (method, path) in served {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    assert_eq!(
        paths.len(),
        served
            .iter()
            .map(|(_, p)| *p)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    // Every documented error code is one the API can answer.
    for code in doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
    {
        assert!(
            server::routes::mp::error::CODES.contains(&code.as_str().unwrap()),
            "{code}"
        );
    }
}
