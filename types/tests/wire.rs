//! The wire names are a contract: stored in the database, sent in live events and server
//! function payloads, used in URLs. Every variant is listed here with its exact name, so
//! renaming one fails here before it fails in production.

use paydesk_types::{Event, OrderStatus, PaidVia, RefundStatus, Verdict};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// `value` is `name` in `as_str`, `Display`, `FromStr` and JSON, both ways.
fn round_trips<T>(value: T, name: &str, as_str: fn(T) -> &'static str)
where
    T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
    T: Serialize + DeserializeOwned,
    <T as std::str::FromStr>::Err: std::fmt::Debug,
{
    assert_eq!(as_str(value), name);
    assert_eq!(value.to_string(), name);
    assert_eq!(name.parse::<T>().unwrap(), value);
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(json, format!("\"{name}\""));
    assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);
}

#[test]
fn order_statuses_keep_their_stored_names() {
    let names = [
        (OrderStatus::NotPay, "NOTPAY"),
        (OrderStatus::Paid, "PAID"),
        (OrderStatus::Closed, "CLOSED"),
        (OrderStatus::PayError, "PAYERROR"),
        (OrderStatus::PartiallyRefunded, "PARTIALLY_REFUNDED"),
        (OrderStatus::Refunded, "REFUNDED"),
    ];
    assert_eq!(names.map(|(s, _)| s), OrderStatus::ALL);
    for (status, name) in names {
        round_trips(status, name, OrderStatus::as_str);
    }
}

#[test]
fn refund_statuses_keep_their_stored_names() {
    let names = [
        (RefundStatus::PendingApproval, "PENDING_APPROVAL"),
        (RefundStatus::Approved, "APPROVED"),
        (RefundStatus::Submitted, "SUBMITTED"),
        (RefundStatus::Processing, "PROCESSING"),
        (RefundStatus::Success, "SUCCESS"),
        (RefundStatus::Rejected, "REJECTED"),
        (RefundStatus::Change, "CHANGE"),
        (RefundStatus::RefundClose, "REFUNDCLOSE"),
        (RefundStatus::Failed, "FAILED"),
    ];
    assert_eq!(names.map(|(s, _)| s), RefundStatus::ALL);
    for (status, name) in names {
        round_trips(status, name, RefundStatus::as_str);
    }
}

#[test]
fn verdicts_keep_their_stored_names() {
    let names = [
        (Verdict::Applied, "applied"),
        (Verdict::Duplicate, "duplicate"),
        (Verdict::BadSignature, "bad_signature"),
        (Verdict::Malformed, "malformed"),
        (Verdict::ForbiddenXml, "forbidden_xml"),
        (Verdict::WrongAppid, "wrong_appid"),
        (Verdict::WrongMchId, "wrong_mch_id"),
        (Verdict::UnknownOrder, "unknown_order"),
        (Verdict::AmountMismatch, "amount_mismatch"),
        (Verdict::DecryptFailed, "decrypt_failed"),
        (Verdict::ResultFail, "result_fail"),
        (Verdict::InternalError, "internal_error"),
    ];
    assert_eq!(names.map(|(v, _)| v), Verdict::ALL);
    for (verdict, name) in names {
        round_trips(verdict, name, Verdict::as_str);
    }
}

#[test]
fn unknown_and_differently_cased_names_are_refused() {
    assert!("SUCCESS".parse::<OrderStatus>().is_err());
    assert!("paid".parse::<OrderStatus>().is_err());
    assert!("PAID".parse::<RefundStatus>().is_err());
    assert!("Applied".parse::<Verdict>().is_err());
    assert_eq!(
        "nope".parse::<Verdict>().unwrap_err().to_string(),
        "unknown verdict \"nope\""
    );
    assert!(serde_json::from_str::<OrderStatus>("\"paid\"").is_err());
}

#[test]
fn live_events_keep_their_json() {
    let events = [
        (
            Event::OrderPaid {
                order_id: 1,
                out_trade_no: "P1".into(),
                total_fee: 1234,
                transaction_id: Some("4200".into()),
                paid_at: 5,
                via: PaidVia::Notification,
            },
            json!({"type": "order_paid", "order_id": 1, "out_trade_no": "P1", "total_fee": 1234,
                   "transaction_id": "4200", "paid_at": 5, "via": "notification"}),
        ),
        (
            Event::OrderPaid {
                order_id: 2,
                out_trade_no: "P2".into(),
                total_fee: 1,
                transaction_id: None,
                paid_at: 6,
                via: PaidVia::Query,
            },
            json!({"type": "order_paid", "order_id": 2, "out_trade_no": "P2", "total_fee": 1,
                   "transaction_id": null, "paid_at": 6, "via": "query"}),
        ),
        (
            Event::OrderClosed {
                order_id: 3,
                out_trade_no: "C3".into(),
                status: "CLOSED".into(),
            },
            json!({"type": "order_closed", "order_id": 3, "out_trade_no": "C3", "status": "CLOSED"}),
        ),
        (
            Event::NotificationRejected {
                notification_id: Some(7),
                kind: "payment".into(),
                verdict: "bad_signature".into(),
                out_trade_no: None,
            },
            json!({"type": "notification_rejected", "notification_id": 7, "kind": "payment",
                   "verdict": "bad_signature", "out_trade_no": null}),
        ),
        (
            Event::RefundChanged {
                refund_id: 9,
                out_refund_no: "R9".into(),
                order_id: 3,
                status: "APPROVED".into(),
            },
            json!({"type": "refund_changed", "refund_id": 9, "out_refund_no": "R9", "order_id": 3,
                   "status": "APPROVED"}),
        ),
    ];
    for (event, expected) in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json, expected);
        assert_eq!(json["type"], event.kind());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}
