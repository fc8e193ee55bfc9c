//! `RunningSim::restore`: a fresh simulator told what the merchant holds answers for those
//! orders and refunds as WeChat Pay would, and keeps its own record where it has one.

use std::time::Duration;

use paydesk_sim::{KnownOrder, KnownRefund, OrderState, RefundState};
use time::OffsetDateTime;
use wxpay::{OrderQuery, OrderRef, RefundRequest, SignType, TradeState};

use crate::common::*;

fn known(no: &str, state: OrderState, total_fee: i64) -> KnownOrder {
    let created_at = OffsetDateTime::now_utc() - time::Duration::hours(3);
    let paid = matches!(state, OrderState::Success | OrderState::Refund);
    KnownOrder {
        out_trade_no: no.to_owned(),
        state,
        total_fee,
        body: "咖啡".to_owned(),
        openid: Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".to_owned()),
        notify_url: "https://pay.example.com/wxpay/notify/payment".to_owned(),
        sign_type: SignType::Md5,
        prepay_id: None,
        prepay_expires_at: created_at + time::Duration::hours(2),
        expires_at: created_at + time::Duration::minutes(30),
        created_at,
        transaction_id: paid.then(|| format!("4200000001{no:0>18}")),
        time_end: paid.then(|| created_at + time::Duration::seconds(20)),
        bank_type: paid.then(|| "CMB_DEBIT".to_owned()),
    }
}

fn known_refund(no: &str, order: &str, fee: i64, status: RefundState) -> KnownRefund {
    KnownRefund {
        out_refund_no: no.to_owned(),
        refund_id: format!("50000000012026120100{no:0>9}"),
        out_trade_no: order.to_owned(),
        refund_fee: fee,
        status,
        refund_desc: Some("不想要了".to_owned()),
        notify_url: None,
        refund_recv_accout: "支付用户的零钱".to_owned(),
        created_at: OffsetDateTime::now_utc() - time::Duration::hours(1),
        success_time: (status == RefundState::Success)
            .then(|| OffsetDateTime::now_utc() - time::Duration::minutes(59)),
    }
}

#[tokio::test]
async fn restored_orders_and_refunds_are_answered_for_and_in_flight_refunds_finish() {
    // Arrange: a simulator that took one order itself, and what the merchant holds
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(60)).await;
    let client = client(&sim);
    let own = paid_order(&sim, &client, "OWN-1", 500).await;

    let mut open = known("OPEN-1", OrderState::Notpay, 300);
    open.expires_at = OffsetDateTime::now_utc() + time::Duration::minutes(20);

    // Act
    let report = sim.restore(
        vec![
            known("OWN-1", OrderState::Notpay, 999),
            known("PAID-1", OrderState::Success, 1_000),
            open,
            known("LATE-1", OrderState::Notpay, 300),
        ],
        vec![
            known_refund("RF-DONE", "PAID-1", 400, RefundState::Success),
            known_refund("RF-FLIGHT", "PAID-1", 100, RefundState::Processing),
            known_refund("RF-TOO-MUCH", "PAID-1", 600, RefundState::Success),
            known_refund("RF-NO-ORDER", "NONE-1", 100, RefundState::Success),
        ],
    );

    // Assert: its own record wins; refunds beyond the amount or without an order are skipped
    assert_eq!((report.orders, report.refunds, report.skipped), (3, 2, 3));
    assert_eq!(
        sim.order("OWN-1").unwrap().transaction_id,
        own.transaction_id
    );
    let paid = client
        .order_query(OrderQuery::ByOutTradeNo("PAID-1".into()))
        .await
        .unwrap();
    assert_eq!(paid.trade_state, TradeState::Refund);
    assert_eq!(paid.total_fee, Some(1_000));
    let open = client
        .order_query(OrderQuery::ByOutTradeNo("OPEN-1".into()))
        .await
        .unwrap();
    assert_eq!(open.trade_state, TradeState::NotPay);
    // What is left to refund is what the merchant's refunds left.
    let over = client
        .refund(&RefundRequest::new(
            OrderRef::OutTradeNo("PAID-1".into()),
            "RF-NEW",
            1_000,
            501,
        ))
        .await;
    assert!(over.is_err());
    client
        .refund(&RefundRequest::new(
            OrderRef::OutTradeNo("PAID-1".into()),
            "RF-NEW",
            1_000,
            500,
        ))
        .await
        .unwrap();
    // The refund in flight finishes on its own (60 s at 20,000× speed).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while sim.refund("RF-FLIGHT").unwrap().status != RefundState::Success {
        assert!(
            std::time::Instant::now() < deadline,
            "RF-FLIGHT never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // An unpaid order past its expiry is closed, as WeChat Pay closes it.
    let late = client
        .order_query(OrderQuery::ByOutTradeNo("LATE-1".into()))
        .await
        .unwrap();
    assert_eq!(late.trade_state, TradeState::Closed);
}
