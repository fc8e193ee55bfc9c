//! Business refusals without `sign` (docs/wechatpay-v2.md §6): the profile switch and the
//! `unsigned_errors` fault. A refusal's `err_code` still reaches the client; a success
//! stays signed.

use serde_json::json;
use wxpay::{Error, OrderQuery, TradeState};

use crate::common::*;

#[tokio::test]
async fn the_profile_switch_leaves_sign_out_of_every_business_refusal_only() {
    // Arrange
    let sim = start_sim_with(|c| c.unsigned_business_errors = true).await;
    let client = client(&sim);
    paid_order(&sim, &client, "UNS-1", 100).await;

    // Act
    let close = client.close_order("UNS-1").await.unwrap_err();
    let query = client
        .order_query(OrderQuery::ByOutTradeNo("UNS-1".into()))
        .await;
    let raw = raw_post(
        &sim,
        "/pay/closeorder",
        signed(&sim, &[("out_trade_no", "UNS-1")], None),
    )
    .await;

    // Assert: ORDERPAID arrives unsigned, the paid answer signed.
    assert!(
        matches!(&close, Error::UnsignedResultFail { err_code, .. } if err_code == "ORDERPAID"),
        "{close:?}"
    );
    assert_eq!(query.unwrap().trade_state, TradeState::Success);
    let body = wxpay::xml::parse(raw.1.as_bytes()).unwrap();
    assert_eq!(body["result_code"], "FAIL");
    assert!(!body.contains_key("sign"), "{body:?}");
}

#[tokio::test]
async fn the_unsigned_errors_fault_processes_the_call_and_unsigns_only_a_refusal() {
    // Arrange: the default simulator signs its refusals.
    let sim = start_sim().await;
    let client = client(&sim);
    let signed_refusal = client.close_order("UNS-NONE").await.unwrap_err();
    sim.set_faults(
        serde_json::from_value(json!({
            "api": [{"fault": "unsigned_errors", "endpoint": "/pay/closeorder", "count": 2}]
        }))
        .unwrap(),
    );
    client
        .unified_order(&order("UNS-2", 100, NO_NOTIFY))
        .await
        .unwrap();

    // Past WeChat's 5 minutes between creating and closing an order (§8.4).
    sim.advance_clock(std::time::Duration::from_secs(6 * 60));

    // Act
    let unsigned = client.close_order("UNS-NONE").await.unwrap_err();
    let closed = client.close_order("UNS-2").await;

    // Assert
    assert!(
        matches!(&signed_refusal, Error::ResultFail { err_code, .. } if err_code == "ORDERNOTEXIST"),
        "{signed_refusal:?}"
    );
    assert!(
        matches!(&unsigned, Error::UnsignedResultFail { err_code, .. } if err_code == "ORDERNOTEXIST"),
        "{unsigned:?}"
    );
    closed.expect("a success under the fault is still signed and accepted");
    assert_eq!(
        sim.order("UNS-2").unwrap().state,
        paydesk_sim::OrderState::Closed
    );
}
