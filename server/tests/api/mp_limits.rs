//! Throttles on the mini-program API, on every database backend (issue 15): per-token and
//! per-address limits answered with 429 `{code, message}` and `Retry-After`, the address
//! taken after the trusted-proxy rule, logins limited per address, one orderquery per
//! interval for one order across instances, one open refund request per order, and
//! dashboard filing that answers the refund it created.

use paydesk_core::api_calls;
use paydesk_core::orders::{self, NewOrder, OrderStatus};
use paydesk_core::testing;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{mp_call, mp_login, spawn_apps_with, spawn_sibling, TestApp, ADMIN_PASSWORD};

/// Asserts the API's own 429: `{code: RATE_LIMITED, message}` and a `Retry-After`.
fn assert_rate_limited(
    label: &str,
    (status, retry_after, body): &(StatusCode, Option<u64>, Value),
) {
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{label}: {body}");
    assert_eq!(body["code"], "RATE_LIMITED", "{label}: {body}");
    assert!(!body["message"].as_str().unwrap().is_empty(), "{body}");
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "{label}: {retry_after:?}"
    );
}

/// Settings with `limits` merged into `mp_limits`, 127.0.0.1 trusted as a reverse proxy.
fn limits(limits: Value) -> Value {
    json!({ "mp_limits": limits, "trusted_proxies": "127.0.0.1" })
}

#[tokio::test]
async fn a_token_beyond_its_limit_gets_429_and_another_token_behind_the_same_address_does_not() {
    let settings = limits(json!({ "per_token_per_minute": 1, "per_token_burst": 3 }));
    for app in spawn_apps_with(settings).await {
        // Arrange: two shoppers behind one carrier NAT address
        let (ann, bob) = (
            app.shopper_token("ann-code").await,
            app.shopper_token("bob-code").await,
        );
        let nat = Some("203.0.113.7");
        let orders = |token: String| {
            let base = app.base.clone();
            async move {
                mp_call(
                    &base,
                    Method::GET,
                    "/api/mp/orders",
                    Some(&token),
                    nat,
                    None,
                )
                .await
            }
        };

        // Act
        let mut ann_calls = Vec::new();
        for _ in 0..4 {
            ann_calls.push(orders(ann.clone()).await);
        }
        let mut bob_calls = Vec::new();
        for _ in 0..3 {
            bob_calls.push(orders(bob.clone()).await);
        }

        // Assert
        for (i, (status, _, body)) in ann_calls[..3].iter().enumerate() {
            assert_eq!(*status, 200, "{} call {i}: {body}", app.db.label);
        }
        assert_rate_limited(app.db.label, &ann_calls[3]);
        for (status, _, body) in &bob_calls {
            assert_eq!(*status, 200, "{}: bob is not ann: {body}", app.db.label);
        }
    }
}

#[tokio::test]
async fn the_address_limit_counts_the_forwarded_client_behind_a_trusted_proxy() {
    let settings = limits(json!({ "per_address_per_minute": 1, "per_address_burst": 3 }));
    for app in spawn_apps_with(settings).await {
        // Arrange
        let products = |ip: &'static str| {
            let base = app.base.clone();
            async move { mp_call(&base, Method::GET, "/api/mp/products", None, Some(ip), None).await }
        };

        // Act: every request reaches us from the proxy (127.0.0.1)
        let mut first = Vec::new();
        for _ in 0..4 {
            first.push(products("198.51.100.20").await);
        }
        let other = products("198.51.100.21").await;

        // Assert
        for (status, _, body) in &first[..3] {
            assert_eq!(*status, 200, "{}: {body}", app.db.label);
        }
        assert_rate_limited(app.db.label, &first[3]);
        assert_eq!(
            other.0, 200,
            "{}: another client behind the proxy",
            app.db.label
        );
    }
}

#[tokio::test]
async fn logins_are_limited_per_address() {
    let settings = limits(json!({ "login_per_address_per_minute": 1, "login_burst": 2 }));
    for app in spawn_apps_with(settings).await {
        // Act
        let mut from_one = Vec::new();
        for i in 0..3 {
            from_one.push(mp_login(&app.base, &format!("login-{i}"), Some("192.0.2.10")).await);
        }
        let (refused_status, _, refused) = mp_call(
            &app.base,
            Method::POST,
            "/api/mp/login",
            None,
            Some("192.0.2.10"),
            Some(json!({ "code": "login-3" })),
        )
        .await;
        let (elsewhere, body) = mp_login(&app.base, "login-4", Some("192.0.2.11")).await;

        // Assert
        assert_eq!(from_one[0].0, 200, "{}: {}", app.db.label, from_one[0].1);
        assert_eq!(from_one[1].0, 200);
        assert_eq!(from_one[2].0, 429, "{}: {}", app.db.label, from_one[2].1);
        assert_eq!(from_one[2].1["code"], "RATE_LIMITED");
        assert_eq!(refused_status, 429);
        assert_eq!(refused["code"], "RATE_LIMITED");
        assert_eq!(elsewhere, 200, "{}: {body}", app.db.label);
        // The refused logins never reached jscode2session: two customers from that address.
        let customers: i64 = sqlx::query_scalar("select count(*) from customers")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        assert_eq!(customers, 3, "{}", app.db.label);
    }
}

#[tokio::test]
async fn status_polls_of_one_order_on_two_instances_make_one_orderquery_per_interval() {
    let settings = json!({ "mp_limits": { "order_query_interval_seconds": 600 } });
    for app in spawn_apps_with(settings.clone()).await {
        // Arrange: an unpaid order with a prepay_id, a second instance on the same database
        let sibling = spawn_sibling(&app, settings.clone()).await;
        let token = app.shopper_token("poller").await;
        let (_, _, catalogue) =
            mp_call(&app.base, Method::GET, "/api/mp/products", None, None, None).await;
        let product = catalogue["products"][0]["id"].as_i64().unwrap();
        let (status, _, created) = mp_call(
            &app.base,
            Method::POST,
            "/api/mp/orders",
            Some(&token),
            None,
            Some(json!({ "items": [{ "product_id": product, "quantity": 1 }], "idempotency_key": "poll-1" })),
        )
        .await;
        assert_eq!(status, 201, "{}: {created}", app.db.label);
        let no = created["out_trade_no"].as_str().unwrap().to_owned();
        let path = format!("/api/mp/orders/{no}");

        // Act: the shopper polls both instances, five times each, all at once
        let polls = (0..10).map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                sibling.base.clone()
            };
            let (path, token) = (path.clone(), token.clone());
            async move { mp_call(&base, Method::GET, &path, Some(&token), None, None).await }
        });
        let answers = futures::future::join_all(polls).await;
        app.state.api_calls.flush().await;
        sibling.state.api_calls.flush().await;

        // Assert: every poll answered, one orderquery made
        for (status, _, body) in &answers {
            assert_eq!(*status, 200, "{}: {body}", app.db.label);
            assert_eq!(body["status"], "NOTPAY");
        }
        let queries = api_calls::recent(&app.db.db, Some(&no), 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.endpoint == "/pay/orderquery")
            .count();
        assert_eq!(queries, 1, "{}", app.db.label);
    }
}

/// A paid order of 10 yuan by the shopper who logged in with `code`.
async fn paid_order_of(app: &TestApp, code: &str, no: &str) {
    let sim = app.sim.as_deref().expect("sandbox mode");
    let order = orders::create_order(
        &app.db.db,
        NewOrder {
            openid: paydesk_sim::default_openid(sim.appid(), code),
            ..testing::new_order(no, 1000)
        },
    )
    .await
    .unwrap();
    orders::transition(&app.db.db, order.id, OrderStatus::Paid)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_shopper_has_at_most_one_open_refund_request_per_order() {
    for app in spawn_apps_with(Value::Null).await {
        // Arrange
        let token = app.shopper_token("one-open").await;
        paid_order_of(&app, "one-open", "LIM-RF-1").await;
        let path = "/api/mp/orders/LIM-RF-1/refund-requests";
        let ask = |reason: &'static str| {
            let (base, token) = (app.base.clone(), token.clone());
            async move {
                mp_call(
                    &base,
                    Method::POST,
                    path,
                    Some(&token),
                    None,
                    Some(json!({ "amount_fen": 100, "reason": reason })),
                )
                .await
            }
        };

        // Act: two requests at once, then one after a manager rejected the first
        let (a, b) = tokio::join!(ask("broken lid"), ask("broken lid"));
        let statuses = [a.0.as_u16(), b.0.as_u16()];
        let created = if a.0 == 201 { &a.2 } else { &b.2 };
        let refused = if a.0 == 201 { &b.2 } else { &a.2 };
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        let id = paydesk_core::refunds::find_by_out_refund_no(
            &app.db.db,
            created["out_refund_no"].as_str().unwrap_or("-"),
        )
        .await
        .unwrap()
        .map(|r| r.id.to_string());
        if let Some(id) = &id {
            app.call_expect(
                &admin,
                "refunds/reject",
                &[("id", id), ("reason", "photo please")],
                200,
            )
            .await;
        }
        let again = ask("here is the photo").await;

        // Assert
        let mut sorted = statuses;
        sorted.sort_unstable();
        assert_eq!(sorted, [201, 409], "{}: {a:?} {b:?}", app.db.label);
        assert_eq!(refused["code"], "REFUND_REQUEST_OPEN", "{refused}");
        assert!(!refused["message"].as_str().unwrap().is_empty());
        let order = app.stored_order("LIM-RF-1").await;
        let refunds = paydesk_core::refunds::for_order(&app.db.db, order.id)
            .await
            .unwrap();
        assert_eq!(again.0, 201, "{}: {:?}", app.db.label, again.2);
        assert_eq!(
            refunds.len(),
            2,
            "{}: one refused, one after the decision",
            app.db.label
        );
    }
}

#[tokio::test]
async fn filing_from_the_dashboard_answers_the_refund_it_created_however_many_are_pending() {
    for app in spawn_apps_with(Value::Null).await {
        // Arrange: 600 refunds of another order wait for approval, filed earlier by support
        paid_order_of(&app, "queue", "LIM-Q-1").await;
        paid_order_of(&app, "queue", "LIM-Q-2").await;
        let other = app.stored_order("LIM-Q-1").await;
        sqlx::query(
            r#"with recursive n (i) as (select 1 union all select i + 1 from n where i < 600)
               insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
                   requester, status, created_at, updated_at)
               select 'RFQUEUE' || i, $1, 1, 'queued', 'staff', 'support', 'PENDING_APPROVAL',
                   $2, $2
               from n"#,
        )
        .bind(other.id)
        .bind(paydesk_core::now_ms() - 60_000)
        .execute(app.db.db.writer())
        .await
        .unwrap();
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;

        // Act: support files for another order, then for the same one
        let mut answers = Vec::new();
        for no in ["LIM-Q-2", "LIM-Q-1"] {
            let res = app
                .call(
                    &admin,
                    "refunds/request",
                    &[
                        ("out_trade_no", no),
                        ("amount", "1.00"),
                        ("reason", "少发一件"),
                    ],
                )
                .await;
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            answers.push((no, status, body));
        }

        // Assert: each answer is the refund it made, stored once
        for (no, status, body) in answers {
            assert_eq!(status, 200, "{} {no}: {body}", app.db.label);
            let stored = paydesk_core::refunds::find(&app.db.db, body["id"].as_i64().unwrap())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(stored.out_trade_no, no);
            assert_eq!(body["out_refund_no"], stored.out_refund_no.as_str());
            assert_eq!(body["amount_fen"], 100);
            assert_eq!(body["status"], "PENDING_APPROVAL");
            let order = app.stored_order(no).await;
            let filed = paydesk_core::refunds::for_order(&app.db.db, order.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.reason == "少发一件")
                .count();
            assert_eq!(filed, 1, "{} {no}", app.db.label);
        }
    }
}
