//! downloadbill, jscode2session and the sandbox prefixes (docs/wechatpay-v2.md §8.7, §8.10, §2.1).

use std::io::Read as _;
use std::time::Duration;

use wxpay::{BillType, Client, Error, OrderRef, RefundRequest};

use crate::common::*;

#[tokio::test]
async fn downloadbill_builds_the_days_bill_from_payments_and_refunds() {
    // Arrange: the refund stays PROCESSING so every download sees the same bill
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(3600 * 24 * 365)).await;
    let client = client(&sim);
    paid_order(&sim, &client, "B-1", 12345).await;
    paid_order(&sim, &client, "B-2", 100).await;
    placed_order(&client, "B-3", 100, NO_NOTIFY).await; // unpaid: not billed
    client
        .refund(&RefundRequest::new(
            OrderRef::OutTradeNo("B-1".into()),
            "BR-1",
            12345,
            345,
        ))
        .await
        .unwrap();
    let today = wxpay::wxtime::today_in_beijing();

    // Act
    let creating = client
        .download_bill(today, BillType::All)
        .await
        .unwrap_err();
    sim.advance_clock(Duration::from_secs(36 * 3600));
    let all = client.download_bill(today, BillType::All).await.unwrap();
    let success = client
        .download_bill(today, BillType::Success)
        .await
        .unwrap();
    let refunds = client.download_bill(today, BillType::Refund).await.unwrap();
    let none = client
        .download_bill(today.previous_day().unwrap(), BillType::All)
        .await
        .unwrap_err();
    let gz = reqwest::Client::new()
        .post(format!("{}/pay/downloadbill", sim.http_base_url()))
        .body(signed(
            &sim,
            &[
                ("bill_date", &wxpay::wxtime::format_date(today)),
                ("bill_type", "ALL"),
                ("tar_type", "GZIP"),
            ],
            None,
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    // Assert
    assert!(
        matches!(&creating, Error::BillFail { return_msg, .. } if return_msg == "Bill Creating"),
        "{creating:?}"
    );
    let records = all.records().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].out_trade_no.as_deref(), Some("B-1"));
    assert_eq!(records[0].total_fee, Some(12345));
    assert_eq!(records[0].poundage_millifen, Some(12345 * 6));
    assert_eq!(records[0].rate.as_deref(), Some("0.60%"));
    assert_eq!(records[2].trade_state.as_deref(), Some("REFUND"));
    assert_eq!(records[2].settlement_refund_fee, Some(345));
    assert_eq!(records[2].out_refund_no.as_deref(), Some("BR-1"));
    let summary = all.summary().unwrap();
    assert_eq!(summary.trade_count, Some(3));
    assert_eq!(summary.settlement_total_fee, Some(12445));
    assert_eq!(summary.refund_total_fee, Some(345));
    assert_eq!(summary.poundage_millifen, Some((12445 - 345) * 6));
    assert_eq!(success.records().unwrap().len(), 2);
    assert_eq!(success.header.len(), 20);
    assert_eq!(refunds.records().unwrap().len(), 1);
    assert!(refunds.header.contains(&"退款申请时间".to_owned()));
    assert!(all.rows.iter().all(|r| r.len() == all.header.len()));
    assert!(
        matches!(&none, Error::BillFail { return_msg, .. } if return_msg == "No Bill Exist"),
        "{none:?}"
    );
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(wxpay::Bill::parse(&text).unwrap(), all);
}

#[tokio::test]
async fn jscode2session_maps_codes_to_openids_once_and_checks_the_secret() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    sim.register_code(
        "mapped-code",
        "oMappedOpenid000000000000001",
        Some("uUnion"),
    );
    let mut wrong = sim.client_config().unwrap();
    wrong.app_secret = Some(wxpay::AppSecret::new("not-the-secret"));

    // Act
    let first = client.jscode2session("code-a").await.unwrap();
    let reused = client.jscode2session("code-a").await.unwrap_err();
    let second = client.jscode2session("code-b").await.unwrap();
    let mapped = client.jscode2session("mapped-code").await.unwrap();
    let busy = client.jscode2session("busy-1").await.unwrap_err();
    let bad_secret = Client::new(wrong)
        .unwrap()
        .jscode2session("code-c")
        .await
        .unwrap_err();

    // Assert
    assert_eq!(
        first.openid,
        paydesk_sim::default_openid(sim.appid(), "code-a")
    );
    assert_eq!(first.openid.len(), 28);
    assert_ne!(first.openid, second.openid);
    assert!(!first.session_key.expose().is_empty());
    assert!(
        matches!(reused, Error::Login { errcode: 40029, .. }),
        "{reused:?}"
    );
    assert_eq!(mapped.openid, "oMappedOpenid000000000000001");
    assert_eq!(mapped.unionid.as_deref(), Some("uUnion"));
    assert!(busy.retry_safe());
    assert!(
        matches!(bad_secret, Error::Login { errcode: 40125, .. }),
        "{bad_secret:?}"
    );
}

#[tokio::test]
async fn the_sandbox_prefixes_serve_the_same_api() {
    // Arrange
    let sim = start_sim().await;
    let mut config = sim.client_config().unwrap();
    config.base_url = format!("{}/sandboxnew", sim.http_base_url());
    config.refund_base_url = Some(format!("{}/sandboxnew", sim.tls_base_url()));
    let client = Client::new(config).unwrap();
    let mut xdc = sim.client_config().unwrap();
    xdc.base_url = format!("{}/xdc/apiv2sandbox", sim.http_base_url());
    xdc.refund_base_url = Some(format!("{}/xdc/apiv2sandbox", sim.tls_base_url()));
    let xdc = Client::new(xdc).unwrap();

    // Act
    let created = client.unified_order(&order("SB-1", 101, NO_NOTIFY)).await;
    sim.pay_order(
        "SB-1",
        &paydesk_sim::PayRequest {
            notify: Some(false),
            ..pay()
        },
    )
    .unwrap();
    let refunded = client
        .refund(&RefundRequest::new(
            OrderRef::OutTradeNo("SB-1".into()),
            "SBR-1",
            101,
            101,
        ))
        .await;
    let queried = xdc
        .order_query(wxpay::OrderQuery::ByOutTradeNo("SB-1".into()))
        .await;
    let (_, key) = raw_post(&sim, "/sandboxnew/pay/getsignkey", signed(&sim, &[], None)).await;

    // Assert
    assert!(created.is_ok(), "{created:?}");
    assert!(refunded.is_ok(), "{refunded:?}");
    assert!(queried.is_ok(), "{queried:?}");
    let key = wxpay::xml::parse(key.as_bytes()).unwrap();
    assert_eq!(key["return_code"], "SUCCESS");
    assert_eq!(key["sandbox_signkey"].len(), 32);
}

#[tokio::test]
async fn the_refund_bill_says_when_each_refund_was_asked_for_and_when_it_succeeded() {
    // Arrange: one refund succeeds at once, the other stays PROCESSING.
    let sim = start_sim_with(|c| c.refund_delay = Duration::from_secs(3600 * 24 * 365)).await;
    let client = client(&sim);
    paid_order(&sim, &client, "BT-1", 500).await;
    sim.set_refund_outcome("BTR-1", paydesk_sim::RefundState::Success, None)
        .unwrap();
    for (no, amount) in [("BTR-1", 100), ("BTR-2", 200)] {
        let refund = RefundRequest::new(OrderRef::OutTradeNo("BT-1".into()), no, 500, amount);
        client.refund(&refund).await.unwrap();
    }
    // The chosen outcome is applied by a task of its own: wait for it.
    for _ in 0..200 {
        if sim.refund("BTR-1").unwrap().status == paydesk_sim::RefundState::Success {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let today = wxpay::wxtime::today_in_beijing();
    sim.advance_clock(Duration::from_secs(36 * 3600));

    // Act
    let bill = client.download_bill(today, BillType::Refund).await.unwrap();

    // Assert: the typed records keep both times, as the simulator holds them.
    let records = bill.records().unwrap();
    assert_eq!(records.len(), 2);
    for record in &records {
        let no = record.out_refund_no.as_deref().unwrap();
        let held = sim.refund(no).unwrap();
        let seconds = |t: time::OffsetDateTime| t.unix_timestamp();
        assert_eq!(
            record.refund_apply_time.map(seconds),
            Some(seconds(held.created_at)),
            "{no}"
        );
        assert_eq!(
            record.refund_success_time.map(seconds),
            held.success_time.map(seconds),
            "{no}"
        );
    }
    let done = records
        .iter()
        .find(|r| r.out_refund_no.as_deref() == Some("BTR-1"));
    assert!(done.unwrap().refund_success_time.is_some());
    let waiting = records
        .iter()
        .find(|r| r.out_refund_no.as_deref() == Some("BTR-2"));
    assert_eq!(waiting.unwrap().refund_success_time, None);
}
