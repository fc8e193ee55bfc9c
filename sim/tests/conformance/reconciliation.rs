//! What a reconciliation compares, made to differ on demand: bill faults (`amount`, `lag`,
//! `omit`) and refunds made in WeChat's merchant platform (`refund-outside`) that the
//! merchant's system never hears of (docs/wechatpay-v2.md §8.7, §10.3).

use std::time::Duration;

use serde_json::{json, Value};
use time::{Date, OffsetDateTime};
use wxpay::wxtime::BEIJING;
use wxpay::{Bill, BillRecord, BillType, Client, Error, OrderRef, RefundQuery, RefundRequest};

use crate::common::*;

/// Past 10:00 Beijing the day after anything a test made: every bill is ready.
const BILLS_READY: Duration = Duration::from_secs(36 * 3600);

/// The Beijing date the simulator bills an order's payment under (without faults).
fn billed_date(sim: &TestSim, out_trade_no: &str) -> Date {
    let paid_at = sim.order(out_trade_no).unwrap().time_end.unwrap();
    paid_at.to_offset(BEIJING).date()
}

async fn bill(client: &Client, date: Date, bill_type: BillType) -> Bill {
    client.download_bill(date, bill_type).await.unwrap()
}

/// The payment row of an order (trade state SUCCESS).
fn payment_row(records: &[BillRecord], out_trade_no: &str) -> Option<BillRecord> {
    records
        .iter()
        .find(|r| {
            r.out_trade_no.as_deref() == Some(out_trade_no)
                && r.trade_state.as_deref() == Some("SUCCESS")
        })
        .cloned()
}

/// The refund row of a refund.
fn refund_row(records: &[BillRecord], out_refund_no: &str) -> Option<BillRecord> {
    records
        .iter()
        .find(|r| r.out_refund_no.as_deref() == Some(out_refund_no))
        .cloned()
}

/// 总交易单数, 订单总金额, 应结订单总金额, 手续费总金额 and 退款总金额 are the sums of the rows.
fn assert_summary_is_the_sum_of_the_rows(bill: &Bill) {
    let records = bill.records().unwrap();
    let summary = bill.summary().unwrap();
    let sum = |cell: fn(&BillRecord) -> Option<i64>| -> i64 {
        records.iter().map(|r| cell(r).unwrap_or(0)).sum()
    };
    let count = i64::try_from(records.len()).unwrap();
    assert_eq!(summary.trade_count, Some(count), "{bill:?}");
    assert_eq!(summary.total_fee, Some(sum(|r| r.total_fee)), "{bill:?}");
    assert_eq!(
        summary.settlement_total_fee,
        Some(sum(|r| r.settlement_total_fee)),
        "{bill:?}"
    );
    assert_eq!(
        summary.poundage_millifen,
        Some(sum(|r| r.poundage_millifen)),
        "{bill:?}"
    );
    assert_eq!(
        summary.refund_total_fee,
        Some(sum(|r| r.settlement_refund_fee)),
        "{bill:?}"
    );
}

async fn post_faults(sim: &TestSim, plan: Value) -> (u16, Value) {
    let resp = Control::of(sim).post("/sim/faults", Some(plan)).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// The first Beijing midnight after `t`.
fn next_beijing_midnight(t: OffsetDateTime) -> OffsetDateTime {
    let day = t.to_offset(BEIJING).date().next_day().unwrap();
    day.midnight().assume_offset(BEIJING)
}

/// Move the simulator clock forward to `t`.
fn advance_to(sim: &TestSim, t: OffsetDateTime) {
    sim.advance_clock((t - sim.now()).try_into().unwrap());
}

fn unix(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(OffsetDateTime::unix_timestamp)
}

#[tokio::test]
async fn an_amount_bill_fault_changes_the_order_amounts_on_the_bill_and_the_summary_follows() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "BA-1", 12345).await;
    paid_order(&sim, &client, "BA-2", 500).await;
    paid_order(&sim, &client, "BA-3", 100).await;
    let refund = RefundRequest::new(OrderRef::OutTradeNo("BA-1".into()), "BAR-1", 12345, 345);
    client.refund(&refund).await.unwrap();
    let date = billed_date(&sim, "BA-1");
    sim.advance_clock(BILLS_READY);

    // Act
    let (status, active) = post_faults(
        &sim,
        json!({"bills": [
            {"fault": "amount", "out_trade_no": "BA-1"},
            {"fault": "amount", "out_trade_no": "BA-2", "delta_fen": -100}
        ]}),
    )
    .await;
    let (refused, _) = post_faults(
        &sim,
        json!({"bills": [{"fault": "amount", "out_trade_no": "BA-3", "delta_fen": -100}]}),
    )
    .await;
    let shown = Control::of(&sim).get("/sim/faults").await;
    let all = bill(&client, date, BillType::All).await;
    let success = bill(&client, date, BillType::Success).await;
    let queried = client
        .order_query(wxpay::OrderQuery::ByOutTradeNo("BA-1".into()))
        .await
        .unwrap();

    // Assert
    assert_eq!(status, 200);
    assert_eq!(
        active["bills"],
        json!([
            {"fault": "amount", "out_trade_no": "BA-1", "delta_fen": 1},
            {"fault": "amount", "out_trade_no": "BA-2", "delta_fen": -100}
        ])
    );
    assert_eq!(refused, 400, "BA-3 would be billed 0 fen");
    assert_eq!(shown["bills"], active["bills"]);
    let records = all.records().unwrap();
    assert_eq!(records.len(), 4);
    let one = payment_row(&records, "BA-1").unwrap();
    assert_eq!(one.total_fee, Some(12346));
    assert_eq!(one.settlement_total_fee, Some(12346));
    assert_eq!(one.poundage_millifen, Some(12346 * 6));
    let two = payment_row(&records, "BA-2").unwrap();
    assert_eq!(two.total_fee, Some(400));
    assert_eq!(two.settlement_total_fee, Some(400));
    assert_eq!(two.poundage_millifen, Some(400 * 6));
    assert_eq!(payment_row(&records, "BA-3").unwrap().total_fee, Some(100));
    let refunded = refund_row(&records, "BAR-1").unwrap();
    assert_eq!(refunded.settlement_refund_fee, Some(345));
    assert_summary_is_the_sum_of_the_rows(&all);
    assert_eq!(all.summary().unwrap().total_fee, Some(12346 + 400 + 100));
    assert_summary_is_the_sum_of_the_rows(&success);
    let success_row = payment_row(&success.records().unwrap(), "BA-1").unwrap();
    assert_eq!(success_row.total_fee, Some(12346));
    // Only the bill differs: the simulator's own record and orderquery keep the amount.
    assert_eq!(queried.total_fee, Some(12345));
    assert_eq!(sim.order("BA-1").unwrap().total_fee, 12345);
}

#[tokio::test]
async fn a_lag_bill_fault_files_a_trade_just_before_midnight_under_the_next_day() {
    // Arrange: one trade 30 s and one (with a refund) 5 s before midnight, Beijing time.
    let sim = start_sim().await;
    let client = client(&sim);
    let midnight = next_beijing_midnight(sim.now() + time::Duration::minutes(1));
    advance_to(&sim, midnight - time::Duration::seconds(30));
    paid_order(&sim, &client, "BL-1", 100).await;
    advance_to(&sim, midnight - time::Duration::seconds(5));
    paid_order(&sim, &client, "BL-2", 200).await;
    let refund = RefundRequest::new(OrderRef::OutTradeNo("BL-2".into()), "BLR-2", 200, 50);
    client.refund(&refund).await.unwrap();
    let day = billed_date(&sim, "BL-2");
    let next_day = day.next_day().unwrap();
    let paid_at = |no: &str| sim.order(no).unwrap().time_end.unwrap();
    let refunded_at = sim.refund("BLR-2").unwrap().created_at;
    sim.advance_clock(BILLS_READY);
    let control = Control::of(&sim);

    // Act
    let (status, active) =
        post_faults(&sim, json!({"bills": [{"fault": "lag", "ms": 10000}]})).await;
    let lagged_day = bill(&client, day, BillType::All).await;
    let lagged_next = bill(&client, next_day, BillType::All).await;
    let lagged_refunds = bill(&client, next_day, BillType::Refund).await;
    let one_order = json!({"replace": true, "bills": [
        {"fault": "lag", "ms": 40000, "out_trade_no": "BL-1"}
    ]});
    let replaced = control.post("/sim/faults", Some(one_order)).await.status();
    let only_one_day = bill(&client, day, BillType::All).await;
    let only_one_next = bill(&client, next_day, BillType::All).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(
        active["bills"],
        json!([{"fault": "lag", "ms": 10000, "out_trade_no": null}])
    );
    assert!(paid_at("BL-2") < midnight && refunded_at < midnight);
    let ten_s = time::Duration::seconds(10);
    let day_rows = lagged_day.records().unwrap();
    assert_eq!(day_rows.len(), 1, "{lagged_day:?}");
    let one = payment_row(&day_rows, "BL-1").unwrap();
    assert_eq!(unix(one.trade_time), unix(Some(paid_at("BL-1") + ten_s)));
    let next_rows = lagged_next.records().unwrap();
    assert_eq!(next_rows.len(), 2, "{lagged_next:?}");
    let two = payment_row(&next_rows, "BL-2").unwrap();
    assert_eq!(unix(two.trade_time), unix(Some(paid_at("BL-2") + ten_s)));
    assert_eq!(two.trade_time.unwrap().to_offset(BEIJING).date(), next_day);
    let refund_rows = lagged_refunds.records().unwrap();
    let refunded = refund_row(&refund_rows, "BLR-2").unwrap();
    assert_eq!(unix(refunded.trade_time), unix(Some(refunded_at + ten_s)));
    assert_eq!(
        unix(refunded.refund_apply_time),
        unix(Some(refunded_at + ten_s))
    );
    for bill in [&lagged_day, &lagged_next, &lagged_refunds] {
        assert_summary_is_the_sum_of_the_rows(bill);
    }
    assert_eq!(replaced, 200);
    let day_rows = only_one_day.records().unwrap();
    assert_eq!(day_rows.len(), 2, "BL-2 and its refund, not lagged");
    assert!(payment_row(&day_rows, "BL-2").is_some());
    assert!(refund_row(&day_rows, "BLR-2").is_some());
    let next_rows = only_one_next.records().unwrap();
    assert_eq!(next_rows.len(), 1);
    assert!(payment_row(&next_rows, "BL-1").is_some());
    assert_summary_is_the_sum_of_the_rows(&only_one_day);
    assert_summary_is_the_sum_of_the_rows(&only_one_next);
}

#[tokio::test]
async fn an_omit_bill_fault_leaves_the_order_and_its_refunds_out_of_the_bill() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "BO-1", 300).await;
    paid_order(&sim, &client, "BO-2", 200).await;
    let refund = RefundRequest::new(OrderRef::OutTradeNo("BO-1".into()), "BOR-1", 300, 100);
    client.refund(&refund).await.unwrap();
    let date = billed_date(&sim, "BO-1");
    sim.advance_clock(BILLS_READY);

    // Act
    let (status, _) = post_faults(
        &sim,
        json!({"bills": [{"fault": "omit", "out_trade_no": "BO-1"}]}),
    )
    .await;
    let all = bill(&client, date, BillType::All).await;
    let refunds = client.download_bill(date, BillType::Refund).await;

    // Assert
    assert_eq!(status, 200);
    let records = all.records().unwrap();
    assert_eq!(records.len(), 1, "{all:?}");
    assert!(payment_row(&records, "BO-2").is_some());
    assert_summary_is_the_sum_of_the_rows(&all);
    assert_eq!(all.summary().unwrap().total_fee, Some(200));
    assert!(
        matches!(&refunds, Err(Error::BillFail { return_msg, .. }) if return_msg == "No Bill Exist"),
        "{refunds:?}"
    );
}

#[tokio::test]
async fn replacing_the_fault_plan_clears_the_bill_faults() {
    // Arrange
    let sim = start_sim().await;
    let client = client(&sim);
    paid_order(&sim, &client, "BC-1", 100).await;
    let date = billed_date(&sim, "BC-1");
    sim.advance_clock(BILLS_READY);
    post_faults(
        &sim,
        json!({"bills": [
            {"fault": "omit", "out_trade_no": "BC-1"},
            {"fault": "amount", "out_trade_no": "BC-1", "delta_fen": 7}
        ]}),
    )
    .await;
    let omitted = client.download_bill(date, BillType::All).await;

    // Act
    let (status, active) = post_faults(&sim, json!({"replace": true})).await;
    let shown = Control::of(&sim).get("/sim/faults").await;
    let restored = bill(&client, date, BillType::All).await;

    // Assert
    assert!(
        matches!(&omitted, Err(Error::BillFail { return_msg, .. }) if return_msg == "No Bill Exist"),
        "{omitted:?}"
    );
    assert_eq!(status, 200);
    assert_eq!(active["bills"], json!([]));
    assert_eq!(shown["bills"], json!([]));
    let row = payment_row(&restored.records().unwrap(), "BC-1").unwrap();
    assert_eq!(row.total_fee, Some(100));
}

#[tokio::test]
async fn unknown_bill_fault_fields_and_kinds_are_refused() {
    // Arrange
    let sim = start_sim().await;

    // Act
    let (field, _) = post_faults(
        &sim,
        json!({"bills": [{"fault": "omit", "out_trade_no": "X", "ms": 5}]}),
    )
    .await;
    let (kind, _) = post_faults(&sim, json!({"bills": [{"fault": "shift", "ms": 5}]})).await;
    let (too_long, _) = post_faults(
        &sim,
        json!({"bills": [{"fault": "lag", "ms": 93_u64 * 24 * 3600 * 1000}]}),
    )
    .await;

    // Assert
    assert_eq!((field, kind, too_long), (400, 400, 400));
    assert_eq!(
        Control::of(&sim).get("/sim/faults").await["bills"],
        json!([])
    );
}

/// `POST /sim/orders/{out_trade_no}/refund-outside`.
async fn refund_outside(sim: &TestSim, out_trade_no: &str, body: Value) -> reqwest::Response {
    let path = format!("/sim/orders/{out_trade_no}/refund-outside");
    Control::of(sim).post(&path, Some(body)).await
}

/// Wait until the simulator's refund reaches SUCCESS.
async fn wait_for_refund_success(sim: &TestSim, out_refund_no: &str) {
    for _ in 0..500 {
        if sim.refund(out_refund_no).unwrap().status == paydesk_sim::RefundState::Success {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("refund {out_refund_no} did not succeed");
}

#[tokio::test]
async fn a_refund_made_outside_the_api_is_queried_and_billed_but_never_notified() {
    // Arrange: API refunds of this simulator are notified (a configured refund notify URL).
    let receiver = Receiver::always_success().await;
    let url = receiver.url.clone();
    let sim = start_sim_with(|c| c.default_refund_notify_url = Some(url)).await;
    let client = client(&sim);
    paid_order(&sim, &client, "RO-1", 1000).await;
    placed_order(&client, "RO-2", 100, NO_NOTIFY).await;
    let date = billed_date(&sim, "RO-1");
    let control = Control::of(&sim);
    // Act
    let made = refund_outside(
        &sim,
        "RO-1",
        json!({"out_refund_no": "RO-R1", "refund_fee": 300}),
    )
    .await;
    let made_status = made.status().as_u16();
    let made: Value = made.json().await.unwrap();
    let generated = sim.refund_outside("RO-1", None, 200).unwrap();
    let too_much = refund_outside(&sim, "RO-1", json!({"refund_fee": 501})).await;
    let too_much = (too_much.status().as_u16(), too_much.text().await.unwrap());
    let reused = refund_outside(
        &sim,
        "RO-1",
        json!({"out_refund_no": "RO-R1", "refund_fee": 300}),
    )
    .await;
    let unpaid = refund_outside(&sim, "RO-2", json!({"refund_fee": 1})).await;
    let unknown = refund_outside(&sim, "RO-NONE", json!({"refund_fee": 1})).await;
    let zero = refund_outside(&sim, "RO-1", json!({"refund_fee": 0})).await;
    let api = RefundRequest::new(OrderRef::OutTradeNo("RO-1".into()), "RO-R3", 1000, 100);
    client.refund(&api).await.unwrap();
    wait_for_refund_success(&sim, "RO-R1").await;
    wait_for_refund_success(&sim, &generated.out_refund_no).await;
    let api_notified = sim
        .wait_for_notifications(Duration::from_secs(5), |a| {
            a.iter()
                .any(|a| a.out_refund_no.as_deref() == Some("RO-R3") && a.success)
        })
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attempts = control.get("/sim/notifications?out_trade_no=RO-1").await;
    let queried = client
        .refund_query(RefundQuery::ByOutRefundNo("RO-R1".into()))
        .await
        .unwrap();
    let by_order = client
        .refund_query(RefundQuery::ByOutTradeNo("RO-1".into()))
        .await
        .unwrap();
    sim.advance_clock(BILLS_READY);
    let all = bill(&client, date, BillType::All).await;

    // Assert
    assert_eq!(made_status, 200, "{made}");
    assert_eq!(made["out_refund_no"], "RO-R1");
    assert_eq!(made["out_trade_no"], "RO-1");
    assert_eq!(made["refund_fee"], 300);
    assert_eq!(made["total_fee"], 1000);
    assert_eq!(made["status"], "PROCESSING");
    assert_eq!(made["notify_url"], Value::Null);
    assert_eq!(made["refund_request_source"], "VENDOR_PLATFORM");
    let refund_id = made["refund_id"].as_str().unwrap();
    assert!(refund_id.len() == 29 && refund_id.starts_with("50"));
    assert_eq!(generated.out_refund_no, generated.refund_id);
    assert_eq!(too_much.0, 409);
    assert!(
        too_much.1.contains("累计退款金额大于支付金额"),
        "{}",
        too_much.1
    );
    assert_eq!(reused.status().as_u16(), 409);
    assert_eq!(unpaid.status().as_u16(), 409);
    assert_eq!(unknown.status().as_u16(), 404);
    assert_eq!(zero.status().as_u16(), 400);
    assert!(api_notified
        .iter()
        .any(|a| a.out_refund_no.as_deref() == Some("RO-R3")));
    let attempts = attempts.as_array().unwrap();
    assert!(!attempts.is_empty());
    assert!(
        attempts.iter().all(|a| a["out_refund_no"] == "RO-R3"),
        "{attempts:?}"
    );
    assert_eq!(receiver.bodies().len(), attempts.len());
    assert_eq!(queried.refunds.len(), 1);
    assert_eq!(queried.refunds[0].refund_id, refund_id);
    assert_eq!(queried.refunds[0].refund_fee, 300);
    assert_eq!(
        queried.refunds[0].refund_status,
        wxpay::RefundStatus::Success
    );
    assert_eq!(by_order.refunds.len(), 3);
    assert_eq!(sim.order("RO-1").unwrap().refunded_fee, 600);
    let records = all.records().unwrap();
    assert_eq!(
        refund_row(&records, "RO-R1").unwrap().settlement_refund_fee,
        Some(300)
    );
    let generated_row = refund_row(&records, &generated.out_refund_no).unwrap();
    assert_eq!(generated_row.refund_id, Some(generated.refund_id.clone()));
    assert!(refund_row(&records, "RO-R3").is_some());
    assert_summary_is_the_sum_of_the_rows(&all);
}
