//! API faults and the control API over HTTP (docs/design.md Contract, docs/wechatpay-v2.md §10.3).

use std::time::Duration;

use serde_json::{json, Value};
use wxpay::{Client, Error, OrderQuery, TradeState};

use crate::common::*;

#[tokio::test]
async fn systemerror_applies_to_the_next_n_calls_of_the_chosen_endpoint() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    placed_order(&client, "F-1", 100, NO_NOTIFY).await;
    let active: Value = Control::of(&sim)
        .post(
            "/sim/faults",
            Some(json!({"api": [{"fault": "system_error", "endpoint": "/pay/orderquery", "count": 2}]})),
        )
        .await
        .json()
        .await
        .unwrap();

    // Act
    let q = || client.order_query(OrderQuery::ByOutTradeNo("F-1".into()));
    let first = q().await.unwrap_err();
    let close_unaffected = client.unified_order(&order("F-2", 100, NO_NOTIFY)).await;
    let second = q().await.unwrap_err();
    let third = q().await.unwrap();

    // Assert
    assert_eq!(active["api"][0]["count"], 2);
    assert_eq!(first.err_code(), Some("SYSTEMERROR"));
    assert!(first.retry_safe());
    assert!(close_unaffected.is_ok());
    assert_eq!(second.err_code(), Some("SYSTEMERROR"));
    assert_eq!(third.trade_state, TradeState::NotPay);
    let calls: Vec<_> = sim
        .api_calls()
        .into_iter()
        .filter(|c| c.endpoint == "/pay/orderquery")
        .collect();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].fault.as_deref(), Some("system_error"));
    assert_eq!(calls[0].err_code.as_deref(), Some("SYSTEMERROR"));
    assert_eq!(calls[2].fault, None);
    assert_eq!(calls[2].result_code.as_deref(), Some("SUCCESS"));
    assert_eq!(calls[2].out_trade_no.as_deref(), Some("F-1"));
}

#[tokio::test]
async fn http_5xx_faults_answer_an_html_page_without_processing() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    set_faults(
        &sim,
        json!({"api": [{"fault": "http_status", "status": 503}, {"fault": "not_xml"}]}),
    );

    // Act
    let err = client
        .unified_order(&order("F-3", 100, NO_NOTIFY))
        .await
        .unwrap_err();
    let not_xml = client
        .unified_order(&order("F-3", 100, NO_NOTIFY))
        .await
        .unwrap_err();

    // Assert
    assert!(
        matches!(err, Error::HttpStatus { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.retry_safe());
    assert!(matches!(not_xml, Error::NotXml { .. }), "{not_xml:?}");
    assert!(sim.order("F-3").is_none());
}

#[tokio::test]
async fn a_hang_outlasts_the_client_timeout_but_the_request_is_still_processed() {
    // Arrange
    let sim = start_sim().await;
    let mut config = sim.client_config().unwrap();
    config.timeout = Duration::from_millis(300);
    let client = Client::new(config).unwrap();
    set_faults(
        &sim,
        json!({"api": [{"fault": "hang", "hang_ms": 800, "endpoint": "/pay/unifiedorder"}]}),
    );

    // Act
    let err = client
        .unified_order(&order("F-4", 100, NO_NOTIFY))
        .await
        .unwrap_err();
    tokio::time::sleep(Duration::from_millis(900)).await;

    // Assert
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.is_unknown_outcome());
    assert!(sim.order("F-4").is_some(), "the hung request was processed");
    let calls = sim.api_calls();
    assert_eq!(calls.len(), 1, "the hung call is recorded");
    assert_eq!(calls[0].fault.as_deref(), Some("hang"));
    assert_eq!(calls[0].result_code.as_deref(), Some("SUCCESS"));
}

#[tokio::test]
async fn refund_faults_reach_the_mutual_tls_listener() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "F-5", 100).await;
    set_faults(
        &sim,
        json!({"api": [{"fault": "err_code", "err_code": "FREQUENCY_LIMITED", "err_code_des": "频率限制", "endpoint": "/secapi/pay/refund"}]}),
    );
    let req = wxpay::RefundRequest::new(wxpay::OrderRef::OutTradeNo("F-5".into()), "FR-5", 100, 1);

    // Act
    let limited = client.refund(&req).await.unwrap_err();
    let retried = client.refund(&req).await;

    // Assert
    assert_eq!(limited.err_code(), Some("FREQUENCY_LIMITED"));
    assert!(retried.is_ok());
}

#[tokio::test]
async fn the_control_api_lists_orders_pays_them_and_shows_notification_attempts() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    placed_order(&client, "CTL-1", 100, &receiver.url).await;
    let control = Control::of(&sim);

    // Act
    let health = control.get("/sim/health").await;
    let paid = control
        .post(
            "/sim/orders/CTL-1/pay",
            Some(json!({"result": "SUCCESS", "bank_type": "CFT"})),
        )
        .await;
    let paid_status = paid.status();
    let paid: Value = paid.json().await.unwrap();
    let again = control.post("/sim/orders/CTL-1/pay", None).await;
    let missing = control.post("/sim/orders/NOPE/pay", None).await;
    let (bad, _) = raw_post(
        &sim,
        "/sim/orders/CTL-1/pay",
        b"{\"result\":\"MAYBE\"}".to_vec(),
    )
    .await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    sim.wait_for_notifications(Duration::from_secs(5), |a| !a.is_empty())
        .await;
    let orders = control.get("/sim/orders").await;
    let attempts = control.get("/sim/notifications?out_trade_no=CTL-1").await;
    let refunds = control.get("/sim/refunds").await;
    let calls = control
        .get("/sim/api-calls?endpoint=/pay/unifiedorder")
        .await;
    let outcome = control
        .post(
            "/sim/refunds/LATER-1/outcome",
            Some(json!({"outcome": "CHANGE", "delay_ms": 10})),
        )
        .await;

    // Assert
    assert_eq!(health["status"], "ok");
    assert_eq!(health["mch_id"], sim.mch_id());
    assert_eq!(paid_status, 200);
    assert_eq!(paid["state"], "SUCCESS");
    assert_eq!(paid["bank_type"], "CFT");
    assert_eq!(again.status(), 409);
    assert_eq!(missing.status(), 404);
    assert_eq!(bad, 400);
    assert_eq!(orders[0]["out_trade_no"], "CTL-1");
    assert_eq!(orders[0]["state"], "SUCCESS");
    assert_eq!(attempts.as_array().unwrap().len(), 1);
    assert_eq!(attempts[0]["success"], true);
    assert_eq!(attempts[0]["http_status"], 200);
    assert!(attempts[0]["latency_ms"].as_f64().is_some());
    assert_eq!(refunds, json!([]));
    assert_eq!(calls.as_array().unwrap().len(), 1);
    assert_eq!(calls[0]["return_code"], "SUCCESS");
    assert_eq!(calls[0]["result_code"], "SUCCESS");
    assert_eq!(outcome.status(), 202);
}
