//! The sandbox a newcomer sees: the first start of an empty database fills three weeks of
//! history, and the in-process simulator (memory only) agrees with the database after every
//! start, so orderquery, refunds, refundquery and bills tell the dashboard's story.

use serde_json::json;
use server::sandbox::HISTORY_ORDERS;
use time::Duration;
use wxpay::{BillType, OrderQuery, OrderRef, RefundQuery, RefundRequest};

use crate::helpers::{spawn_apps_with, spawn_sibling};

async fn scalar(db: &paydesk_core::Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

async fn one(db: &paydesk_core::Db, sql: &str) -> (String, i64, String) {
    sqlx::query_as::<_, (String, i64, String)>(sql)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_new_sandbox_has_history_that_the_simulator_knows_across_restarts() {
    for app in spawn_apps_with(json!({ "demo_history": "on" })).await {
        let l = app.db.label;
        let db = &app.app_db;
        let wx = &app.state.wxpay;
        let sim = app.sim.as_ref().unwrap();

        // Three weeks of history, and the simulator was told every order of it.
        let orders = scalar(db, "select count(*) from orders").await;
        assert_eq!(orders as u64, HISTORY_ORDERS, "{l}");
        assert_eq!(sim.orders().len() as i64, orders, "{l}");

        // A paid order is paid at WeChat Pay too, with the same transaction id.
        let (paid_no, total, txid) = one(
            db,
            "select out_trade_no, total_fee, transaction_id from orders \
             where status = 'PAID' order by created_at limit 1",
        )
        .await;
        let q = wx
            .order_query(OrderQuery::ByOutTradeNo(paid_no.clone()))
            .await
            .unwrap_or_else(|e| panic!("{l}: orderquery of a seeded order: {e}"));
        assert_eq!(q.trade_state.as_str(), "SUCCESS", "{l}");
        assert_eq!(q.transaction_id.as_deref(), Some(txid.as_str()), "{l}");
        assert_eq!(q.total_fee, Some(total), "{l}");

        // A partly refunded order: WeChat Pay knows its refund and what is left of it.
        let (part_no, part_total, part_txid) = one(
            db,
            "select out_trade_no, total_fee, transaction_id from orders \
             where status = 'PARTIALLY_REFUNDED' order by created_at limit 1",
        )
        .await;
        let refunded = scalar(
            db,
            &format!(
                "select cast(sum(r.amount_fen) as bigint) from refunds r join orders o on o.id = r.order_id \
                 where o.out_trade_no = '{part_no}'"
            ),
        )
        .await;
        let rq = wx
            .refund_query(RefundQuery::ByOutTradeNo(part_no.clone()))
            .await
            .unwrap_or_else(|e| panic!("{l}: refundquery of a seeded refund: {e}"));
        assert_eq!(rq.refunds.len(), 1, "{l}");
        assert_eq!(rq.refunds[0].refund_fee, refunded, "{l}");
        assert_eq!(rq.refunds[0].refund_status.as_str(), "SUCCESS", "{l}");
        let refund = |no: &str, fee: i64| {
            RefundRequest::new(
                OrderRef::TransactionId(part_txid.clone()),
                no,
                part_total,
                fee,
            )
        };
        let left = part_total - refunded;
        let over = wx.refund(&refund("SANDBOX-OVER", left + 1)).await;
        assert!(over.is_err(), "{l}: more than is left was refunded");
        wx.refund(&refund("SANDBOX-REST", left))
            .await
            .unwrap_or_else(|e| panic!("{l}: refunding the rest of a seeded order: {e}"));

        // The bill of the day before yesterday (yesterday's is ready at 10:00 Beijing time) lists
        // what the database says was paid that day.
        let day = (time::OffsetDateTime::now_utc().to_offset(wxpay::wxtime::BEIJING)
            - Duration::days(2))
        .date();
        let start = day
            .midnight()
            .assume_offset(wxpay::wxtime::BEIJING)
            .unix_timestamp()
            * 1000;
        let paid_that_day = scalar(
            db,
            &format!(
                "select count(*) from orders where paid_at >= {start} and paid_at < {}",
                start + 86_400_000
            ),
        )
        .await;
        assert!(paid_that_day > 0, "{l}");
        let bill = wx
            .download_bill(day, BillType::Success)
            .await
            .unwrap_or_else(|e| panic!("{l}: the bill of {day}: {e}"));
        assert_eq!(bill.records().unwrap().len() as i64, paid_that_day, "{l}");

        // Another start on the same database (a restart: its simulator starts empty) adds
        // no second history, and its simulator knows the orders and refunds too.
        let again = spawn_sibling(&app, json!({ "demo_history": "on" })).await;
        assert_eq!(
            scalar(db, "select count(*) from orders").await,
            orders,
            "{l}"
        );
        let sim2 = again.state.simulator.as_ref().unwrap();
        assert_eq!(sim2.orders().len() as i64, orders, "{l}");
        let q = again
            .state
            .wxpay
            .order_query(OrderQuery::ByTransactionId(txid))
            .await
            .unwrap_or_else(|e| panic!("{l}: orderquery after a restart: {e}"));
        assert_eq!(q.out_trade_no.as_deref(), Some(paid_no.as_str()), "{l}");
        let accepted = scalar(
            db,
            "select count(*) from refunds where refund_id is not null \
             and status in ('PROCESSING', 'SUCCESS', 'CHANGE', 'REFUNDCLOSE')",
        )
        .await;
        assert!(accepted > 0, "{l}");
        assert_eq!(sim2.refunds().len() as i64, accepted, "{l}");
    }
}
