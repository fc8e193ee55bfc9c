//! Payment notifications: signing, the retry schedule (scaled), recorded attempts and the
//! notification faults (docs/wechatpay-v2.md §8.8, §10.3).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use paydesk_sim::{
    FaultPlan, NotifyFault, NotifyFaultKind, PayRequest, RunningSim, RETRY_SCHEDULE_SECS,
};
use wxpay::{notify::PaymentNotification, Error, SignType};

use crate::common::*;

fn fault(kind: NotifyFaultKind) -> NotifyFault {
    NotifyFault {
        fault: kind,
        count: 1,
        kind: None,
        delay_ms: None,
        copies: None,
        window_ms: None,
    }
}

fn plan(faults: Vec<NotifyFault>) -> FaultPlan {
    FaultPlan {
        notifications: faults,
        ..FaultPlan::default()
    }
}

/// A payment notification of an MD5 order, parsed and verified as paydesk does (§5.2).
fn verify_md5(sim: &RunningSim, body: &[u8]) -> Result<PaymentNotification, Error> {
    PaymentNotification::parse_and_verify(body, sim.api_key(), Some(SignType::Md5))
}

#[tokio::test]
async fn payment_notification_of_an_hmac_order_verifies_in_wxpay_without_sign_type() {
    // Arrange
    let sim = start_sim().await;
    let client = client_with(&sim, SignType::HmacSha256);
    let receiver = Receiver::always_success().await;
    placed_order(&client, "N-1", 123, &receiver.url).await;

    // Act
    let paid = sim.pay_order("N-1", &pay()).unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;
    let attempts = sim
        .wait_for_notifications(Duration::from_secs(5), |a| !a.is_empty())
        .await;

    // Assert
    let n = PaymentNotification::parse_and_verify(
        &bodies[0],
        sim.api_key(),
        Some(SignType::HmacSha256),
    )
    .unwrap();
    assert!(n.is_paid());
    n.check_merchant(sim.appid(), sim.mch_id()).unwrap();
    assert!(!n.params.contains_key("sign_type"));
    assert_eq!(n.params["sign"].len(), 64);
    assert_eq!(n.params["total_fee"], "123");
    assert_eq!(n.params["transaction_id"], paid.transaction_id.unwrap());
    assert_eq!(attempts.len(), 1);
    assert!(attempts[0].success && attempts[0].attempt == 1);
    assert_eq!(attempts[0].http_status, Some(200));
    assert_eq!(
        attempts[0].reply_body.as_deref(),
        Some(wxpay::REPLY_SUCCESS)
    );
}

#[tokio::test]
async fn retries_follow_the_scaled_schedule_and_stop_at_the_first_success() {
    // Arrange: FAIL, a non-XML 200, HTTP 500, then SUCCESS
    let sim = start_sim_with(|c| c.time_scale = 1000.0).await;
    let client = client(&sim);
    let receiver = Receiver::start(Arc::new(|n| match n {
        0 => (StatusCode::OK, wxpay::notify::reply_fail("busy")),
        1 => (StatusCode::OK, "success".to_owned()),
        2 => (
            StatusCode::INTERNAL_SERVER_ERROR,
            wxpay::REPLY_SUCCESS.to_owned(),
        ),
        _ => (StatusCode::OK, wxpay::REPLY_SUCCESS.to_owned()),
    }))
    .await;
    placed_order(&client, "N-2", 100, &receiver.url).await;

    // Act
    sim.pay_order("N-2", &pay()).unwrap();
    let attempts = sim
        .wait_for_notifications(Duration::from_secs(10), |a| a.iter().any(|a| a.success))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // > the next interval (180 ms)

    // Assert
    let attempts_after = sim.notifications();
    assert_eq!(attempts_after.len(), 4, "{attempts_after:#?}");
    assert_eq!(attempts.len(), 4);
    let flags: Vec<bool> = attempts.iter().map(|a| a.success).collect();
    assert_eq!(flags, [false, false, false, true]);
    assert_eq!(attempts[2].http_status, Some(500));
    for (i, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1].elapsed_ms - pair[0].elapsed_ms;
        let expected = RETRY_SCHEDULE_SECS[i] * 1000 / 1000; // ms at 1000x
        assert!(gap >= expected, "gap {i}: {gap} ms < {expected} ms");
        assert!(
            gap < expected + 1000,
            "gap {i}: {gap} ms, expected ~{expected} ms"
        );
    }
    assert_eq!(receiver.bodies().len(), 4);
}

#[tokio::test]
async fn the_sender_gives_up_after_sixteen_attempts() {
    // Arrange: 24h4m at 40000x ≈ 2.2 s
    let sim = start_sim_with(|c| c.time_scale = 40_000.0).await;
    let client = client(&sim);
    let receiver = Receiver::start(Arc::new(|_| {
        (StatusCode::OK, wxpay::notify::reply_fail("no"))
    }))
    .await;
    placed_order(&client, "N-3", 100, &receiver.url).await;

    // Act
    sim.pay_order("N-3", &pay()).unwrap();
    let attempts = sim
        .wait_for_notifications(Duration::from_secs(15), |a| a.len() >= 16)
        .await;
    tokio::time::sleep(Duration::from_millis(700)).await; // longer than the last interval

    // Assert
    assert_eq!(attempts.len(), 16);
    assert_eq!(sim.notifications().len(), 16);
    let numbers: Vec<u32> = attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, (1..=16).collect::<Vec<u32>>());
    assert!(attempts.iter().all(|a| !a.success && a.error.is_some()));
    let total: u64 = RETRY_SCHEDULE_SECS.iter().sum();
    assert_eq!(total, 24 * 3600 + 4 * 60);
    assert!(attempts[15].elapsed_ms >= total * 1000 / 40_000);
}

#[tokio::test]
async fn a_tampered_sign_really_fails_verification_in_wxpay() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    placed_order(&client, "N-4", 100, &receiver.url).await;
    sim.set_faults(plan(vec![fault(NotifyFaultKind::TamperSign)]));

    // Act
    sim.pay_order("N-4", &pay()).unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;

    // Assert
    let result = verify_md5(&sim, &bodies[0]);
    assert!(matches!(result, Err(Error::BadSignature)), "{result:?}");
    let attempts = sim.notifications();
    assert_eq!(attempts[0].faults, ["tamper_sign"]);
}

#[tokio::test]
async fn tampered_amount_and_wrong_appid_are_validly_signed_but_caught_by_the_checks() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    placed_order(&client, "N-5", 100, &receiver.url).await;
    placed_order(&client, "N-6", 100, &receiver.url).await;

    // Act
    sim.set_faults(plan(vec![fault(NotifyFaultKind::TamperAmount)]));
    sim.pay_order("N-5", &pay()).unwrap();
    receiver.wait_for(1, Duration::from_secs(5)).await;
    sim.set_faults(plan(vec![fault(NotifyFaultKind::WrongAppid)]));
    sim.pay_order("N-6", &pay()).unwrap();
    let bodies = receiver.wait_for(2, Duration::from_secs(5)).await;

    // Assert
    let amount = verify_md5(&sim, &bodies[0]).unwrap();
    assert_eq!(amount.params["total_fee"], "101");
    let appid = verify_md5(&sim, &bodies[1]).unwrap();
    assert!(matches!(
        appid.check_merchant(sim.appid(), sim.mch_id()),
        Err(Error::AppIdMismatch { .. })
    ));
}

#[tokio::test]
async fn duplicates_arrive_in_parallel_and_a_dropped_attempt_is_retried() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    placed_order(&client, "N-7", 100, &receiver.url).await;
    placed_order(&client, "N-8", 100, &receiver.url).await;
    let mut dup = fault(NotifyFaultKind::Duplicate);
    dup.copies = Some(3);

    // Act
    sim.set_faults(plan(vec![dup]));
    sim.pay_order("N-7", &pay()).unwrap();
    receiver.wait_for(3, Duration::from_secs(5)).await;
    sim.set_faults(plan(vec![fault(NotifyFaultKind::Drop)]));
    sim.pay_order("N-8", &pay()).unwrap();
    let bodies = receiver.wait_for(4, Duration::from_secs(5)).await;

    // Assert
    assert_eq!(bodies.len(), 4);
    assert_eq!(bodies[0], bodies[1]);
    let attempts = sim.notifications();
    let n7: Vec<_> = attempts
        .iter()
        .filter(|a| a.out_trade_no == "N-7")
        .collect();
    assert_eq!(n7.len(), 3);
    assert!(n7.iter().all(|a| a.attempt == 1 && a.success));
    let mut copies: Vec<u32> = n7.iter().map(|a| a.copy).collect();
    copies.sort_unstable();
    assert_eq!(copies, [1, 2, 3]);
    let n8: Vec<_> = attempts
        .iter()
        .filter(|a| a.out_trade_no == "N-8")
        .collect();
    assert_eq!(n8.len(), 2);
    assert!(!n8[0].success && n8[0].http_status.is_none() && n8[0].faults == ["drop"]);
    assert!(n8[1].success && n8[1].attempt == 2);
}

#[tokio::test]
async fn reordered_notifications_arrive_in_reverse_order() {
    // Arrange
    let (sim, client, receiver) = sim_with_receiver().await;
    for otn in ["N-9", "N-10"] {
        placed_order(&client, otn, 100, &receiver.url).await;
    }
    let mut reorder = fault(NotifyFaultKind::Reorder);
    reorder.count = 2;
    sim.set_faults(plan(vec![reorder]));

    // Act
    sim.pay_order("N-9", &pay()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    sim.pay_order("N-10", &pay()).unwrap();
    let bodies = receiver.wait_for(2, Duration::from_secs(5)).await;

    // Assert
    let otn = |b: &[u8]| wxpay::xml::parse(b).unwrap()["out_trade_no"].clone();
    assert_eq!(otn(&bodies[0]), "N-10");
    assert_eq!(otn(&bodies[1]), "N-9");
}

#[tokio::test]
async fn a_failed_payment_is_notified_with_result_code_fail() {
    // Arrange
    let sim = start_sim_with(|c| c.notify_include_sign_type = true).await;
    let client = client(&sim);
    let receiver = Receiver::always_success().await;
    placed_order(&client, "N-11", 100, &receiver.url).await;

    // Act
    sim.pay_order(
        "N-11",
        &PayRequest {
            result: "FAIL".into(),
            bank_type: Some("CMB_DEBIT".into()),
            err_code: Some("BANKERROR".into()),
            ..PayRequest::default()
        },
    )
    .unwrap();
    let bodies = receiver.wait_for(1, Duration::from_secs(5)).await;

    // Assert
    let n = verify_md5(&sim, &bodies[0]).unwrap();
    assert!(!n.is_paid());
    assert_eq!(n.params["sign_type"], "MD5");
    assert_eq!(n.params["err_code"], "BANKERROR");
    assert_eq!(n.params["bank_type"], "CMB_DEBIT");
}
