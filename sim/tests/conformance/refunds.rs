//! refund over mutual TLS, its rules, outcomes, refundquery and refund notifications
//! (docs/wechatpay-v2.md §8.5, §8.6, §8.9, §10.2).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use paydesk_sim::{NotificationKind, OrderState, RefundState};
use wxpay::{
    Client, Error, MerchantIdentity, OrderQuery, OrderRef, RefundNotification, RefundQuery,
    RefundQueryRequest, RefundRequest, RefundStatus, TradeState,
};

use crate::common::*;

fn refund(otn: &str, orn: &str, total: i64, amount: i64) -> RefundRequest {
    RefundRequest::new(OrderRef::OutTradeNo(otn.into()), orn, total, amount)
}

fn err_code(e: &Error) -> String {
    e.err_code().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn refund_over_mutual_tls_is_accepted_and_idempotent_per_out_refund_no() {
    // Arrange
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(3600 * 24 * 365)).await;
    let client = client(&sim);
    let order = paid_order(&sim, &client, "R-1", 300).await;

    // Act
    let first = client
        .refund(&refund("R-1", "RF-1", 300, 100))
        .await
        .unwrap();
    let by_txn = RefundRequest::new(
        OrderRef::TransactionId(order.transaction_id.clone().unwrap()),
        "RF-1",
        300,
        100,
    );
    let again = client.refund(&by_txn).await.unwrap();
    let changed = client
        .refund(&refund("R-1", "RF-1", 300, 101))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(first.refund_id.len(), 29);
    assert!(first.refund_id.starts_with("50"));
    assert_eq!(first.refund_id, again.refund_id);
    assert_eq!(err_code(&changed), "INVALID_REQUEST");
    assert!(
        matches!(&changed, Error::ResultFail { err_code_des, .. } if err_code_des == "订单金额或退款金额与之前请求不一致，请核实后再试")
    );
    assert_eq!(sim.refunds().len(), 1);
    assert_eq!(sim.refund("RF-1").unwrap().status, RefundState::Processing);
    let query = client
        .order_query(OrderQuery::ByOutTradeNo("R-1".into()))
        .await
        .unwrap();
    assert_eq!(query.trade_state, TradeState::Refund);
}

#[tokio::test]
async fn refund_is_refused_in_the_handshake_without_a_certificate_or_with_a_foreign_one() {
    // Arrange
    let sim = start_sim().await;
    let other = start_sim().await; // another CA, another merchant certificate
    let client = client(&sim);
    paid_order(&sim, &client, "R-2", 100).await;
    let ca = std::fs::read(&sim.cert_paths().ca).unwrap();
    let bare = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let mut foreign = sim.client_config().unwrap();
    foreign.identity = Some(
        MerchantIdentity::from_pem_files(
            &other.cert_paths().client_cert,
            &other.cert_paths().client_key,
        )
        .unwrap(),
    );
    let mut p12 = sim.client_config().unwrap();
    p12.identity = Some(
        MerchantIdentity::from_pkcs12_file(&sim.cert_paths().client_p12, sim.mch_id()).unwrap(),
    );

    // Act
    let no_cert = bare
        .post(format!("{}/secapi/pay/refund", sim.tls_base_url()))
        .body(signed(&sim, &[("out_trade_no", "R-2")], None))
        .send()
        .await;
    let foreign_cert = Client::new(foreign)
        .unwrap()
        .refund(&refund("R-2", "RF-2", 100, 10))
        .await
        .unwrap_err();
    let plain = reqwest::Client::new()
        .post(format!("{}/secapi/pay/refund", sim.http_base_url()))
        .body("<xml/>")
        .send()
        .await
        .unwrap();
    let with_p12 = Client::new(p12)
        .unwrap()
        .refund(&refund("R-2", "RF-3", 100, 10))
        .await;

    // Assert
    assert!(
        no_cert.is_err(),
        "a connection without client certificate was served"
    );
    assert!(
        matches!(foreign_cert, Error::Transport { .. }),
        "{foreign_cert:?}"
    );
    assert_eq!(plain.status(), 400);
    assert!(plain
        .text()
        .await
        .unwrap()
        .contains("No required SSL certificate was sent"));
    assert!(with_p12.is_ok(), "{with_p12:?}");
    assert!(sim.refund("RF-2").is_none());
}

#[tokio::test]
async fn refund_rules_total_fee_mismatch_over_refund_unpaid_and_notenough() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "R-3", 100).await;
    placed_order(&client, "R-4", 100, NO_NOTIFY).await;

    // Act
    let mismatch = client
        .refund(&refund("R-3", "RF-31", 99, 10))
        .await
        .unwrap_err();
    let ok = client.refund(&refund("R-3", "RF-32", 100, 60)).await;
    let over = client
        .refund(&refund("R-3", "RF-33", 100, 41))
        .await
        .unwrap_err();
    let unpaid = client
        .refund(&refund("R-4", "RF-41", 100, 1))
        .await
        .unwrap_err();
    let unknown = client
        .refund(&refund("R-5", "RF-51", 100, 1))
        .await
        .unwrap_err();
    sim.set_merchant_balance(Some(5));
    let notenough = client
        .refund(&refund("R-3", "RF-34", 100, 10))
        .await
        .unwrap_err();
    let fits = client.refund(&refund("R-3", "RF-35", 100, 5)).await;

    // Assert
    assert_eq!(err_code(&mismatch), "INVALID_REQUEST");
    assert!(ok.is_ok());
    assert_eq!(err_code(&over), "ERROR");
    assert!(
        matches!(&over, Error::ResultFail { err_code_des, .. } if err_code_des == "累计退款金额大于支付金额")
    );
    assert_eq!(err_code(&unpaid), "ORDERNOTEXIST");
    assert_eq!(err_code(&unknown), "ORDERNOTEXIST");
    assert_eq!(err_code(&notenough), "NOTENOUGH");
    assert!(notenough.retry_safe());
    assert!(fits.is_ok());
    assert_eq!(sim.order("R-3").unwrap().refunded_fee, 65);
}

#[tokio::test]
async fn fifty_refunds_per_order_at_most_and_refundquery_pages_by_ten() {
    // Arrange
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(3600 * 24 * 365)).await;
    let client = client(&sim);
    paid_order(&sim, &client, "R-50", 1000).await;
    for n in 0..50 {
        client
            .refund(&refund("R-50", &format!("RF50-{n:02}"), 1000, 1))
            .await
            .unwrap();
    }

    // Act
    let fifty_first = client
        .refund(&refund("R-50", "RF50-50", 1000, 1))
        .await
        .unwrap_err();
    let page0 = client
        .refund_query(RefundQuery::ByOutTradeNo("R-50".into()))
        .await
        .unwrap();
    let page_from = |offset| {
        client.refund_query(RefundQueryRequest {
            query: RefundQuery::ByOutTradeNo("R-50".into()),
            offset: Some(offset),
        })
    };
    let last = page_from(40).await.unwrap();
    let beyond = page_from(50).await.unwrap_err();
    let one = client
        .refund_query(RefundQuery::ByOutRefundNo("RF50-07".into()))
        .await
        .unwrap();
    let by_id = client
        .refund_query(RefundQuery::ByRefundId(one.refunds[0].refund_id.clone()))
        .await
        .unwrap();
    let none = client
        .refund_query(RefundQuery::ByOutRefundNo("NOPE".into()))
        .await
        .unwrap_err();

    // Assert
    assert_eq!(err_code(&fifty_first), "ERROR");
    assert_eq!(page0.refund_count, 10);
    assert_eq!(page0.total_refund_count, Some(50));
    assert_eq!(page0.next_offset(0), Some(10));
    assert_eq!(page0.refunds[0].out_refund_no, "RF50-00");
    assert_eq!(last.refund_count, 10);
    assert_eq!(last.refunds[9].out_refund_no, "RF50-49");
    assert_eq!(last.next_offset(40), None);
    assert_eq!(err_code(&beyond), "PARAM_ERROR");
    assert_eq!(one.refund_count, 1);
    assert_eq!(one.refunds[0].out_refund_no, "RF50-07");
    assert_eq!(one.refunds[0].refund_status, RefundStatus::Processing);
    assert_eq!(by_id.refunds[0].out_refund_no, "RF50-07");
    assert_eq!(err_code(&none), "REFUNDNOTEXIST");
}

#[tokio::test]
async fn refunds_succeed_after_the_scaled_delay_with_an_encrypted_notification() {
    // Arrange: 60 simulated seconds at 20000x = 3 ms
    let (sim, client, receiver) = sim_with_receiver().await;
    let order = paid_order(&sim, &client, "R-6", 500).await;
    let mut req = refund("R-6", "RF-6", 500, 200);
    req.notify_url = Some(receiver.url.clone());

    // Act
    let accepted = client.refund(&req).await.unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;
    let query = client
        .refund_query(RefundQuery::ByTransactionId(
            order.transaction_id.clone().unwrap(),
        ))
        .await
        .unwrap();

    // Assert
    assert_eq!(bodies.len(), 1);
    let (outer, info) = RefundNotification::parse_and_decrypt(&bodies[0], sim.api_key()).unwrap();
    outer.check_merchant(sim.appid(), sim.mch_id()).unwrap();
    assert!(
        !outer.params.contains_key("sign"),
        "refund notifications carry no sign"
    );
    assert_eq!(info.out_refund_no, "RF-6");
    assert_eq!(info.refund_id, accepted.refund_id);
    assert_eq!(info.refund_fee, 200);
    assert_eq!(info.total_fee, 500);
    assert_eq!(info.refund_status, RefundStatus::Success);
    assert!(info.success_time.is_some());
    assert_eq!(query.refunds[0].refund_status, RefundStatus::Success);
    assert!(query.refunds[0].refund_success_time.is_some());
    let attempts = sim.notifications();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].kind, NotificationKind::Refund);
    assert!(attempts[0].success);
}

#[tokio::test]
async fn a_chosen_refundclose_outcome_is_notified_and_frees_the_amount() {
    // Arrange
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(3600 * 24 * 365)).await;
    let client = client(&sim);
    let receiver =
        Receiver::start(Arc::new(|_| (StatusCode::OK, wxpay::REPLY_SUCCESS.into()))).await;
    paid_order(&sim, &client, "R-7", 100).await;
    let mut req = refund("R-7", "RF-7", 100, 100);
    req.notify_url = Some(receiver.url.clone());
    client.refund(&req).await.unwrap();
    // Planned before the refund exists: applied on acceptance.
    assert!(sim
        .set_refund_outcome("RF-8", RefundState::Change, None)
        .unwrap()
        .is_none());

    // Act
    sim.set_refund_outcome(
        "RF-7",
        RefundState::Refundclose,
        Some(Duration::from_millis(20)),
    )
    .unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;
    let again = client.refund(&refund("R-7", "RF-8", 100, 100)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Assert
    let (_, info) = RefundNotification::parse_and_decrypt(&bodies[0], sim.api_key()).unwrap();
    assert_eq!(info.refund_status, RefundStatus::RefundClose);
    assert!(info.success_time.is_none());
    assert!(
        again.is_ok(),
        "the closed amount is refundable again: {again:?}"
    );
    assert_eq!(sim.refund("RF-8").unwrap().status, RefundState::Change);
    assert_eq!(sim.order("R-7").unwrap().state, OrderState::Refund);
    assert!(sim
        .set_refund_outcome("RF-7", RefundState::Success, None)
        .is_err());
}

#[tokio::test]
async fn a_tampered_refund_notification_fails_decryption_in_wxpay() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    paid_order(&sim, &client, "R-8", 100).await;
    set_faults(
        &sim,
        serde_json::json!({
            "notifications": [{"fault": "tamper_sign", "kind": "refund"}]
        }),
    );
    let mut req = refund("R-8", "RF-80", 100, 10);
    req.notify_url = Some(receiver.url.clone());

    // Act
    client.refund(&req).await.unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;

    // Assert
    let result = RefundNotification::parse_and_decrypt(&bodies[0], sim.api_key());
    assert!(
        matches!(result, Err(Error::DecryptFailed { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn refund_desc_is_recorded_and_refused_over_80_characters() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "R-DESC", 300).await;
    let mut fits = refund("R-DESC", "RF-DESC-1", 300, 100);
    fits.refund_desc = Some("退".repeat(80));
    // Past the client's own check, as another client could send it.
    let mut too_long = refund("R-DESC", "RF-DESC-2", 300, 100);
    too_long.extra.insert("refund_desc".into(), "退".repeat(81));

    // Act
    client.refund(&fits).await.unwrap();
    let refused = client.refund(&too_long).await.unwrap_err();

    // Assert
    assert_eq!(
        sim.refund("RF-DESC-1").unwrap().refund_desc,
        Some("退".repeat(80))
    );
    assert!(
        matches!(&refused, Error::ReturnFail { return_msg } if return_msg == "refund_desc参数长度有误"),
        "{refused:?}"
    );
    assert!(sim.refund("RF-DESC-2").is_none());
}
