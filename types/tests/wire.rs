//! The wire names are a contract: stored in the database, sent in live events and server
//! function payloads, used in URLs. Every variant is listed here with its exact name, so
//! renaming one fails here before it fails in production.

use paydesk_types::{
    Event, NotificationSummary, OrderEvent, OrderStatus, PaidVia, RefundStatus, Verdict,
};
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
        (
            Event::ExceptionsChanged { open: 4 },
            json!({"type": "exceptions_changed", "open": 4}),
        ),
    ];
    for (event, expected) in events {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json, expected);
        assert_eq!(json["type"], event.kind());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
    }
}

/// A call as a page might carry it: any struct with named fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
struct Record {
    id: i64,
}

#[test]
fn order_timeline_entries_keep_their_json() {
    let entries: [(OrderEvent<Record, NotificationSummary>, serde_json::Value); 8] = [
        (
            OrderEvent::Created { total_fee: 3000 },
            json!({"Created": {"total_fee": 3000}}),
        ),
        (
            OrderEvent::ApiCall(Record { id: 1 }),
            json!({"ApiCall": {"id": 1}}),
        ),
        (
            OrderEvent::Notification(NotificationSummary {
                id: 2,
                kind: "payment".into(),
                verdict: Verdict::BadSignature,
                detail: "signature mismatch".into(),
                reply: "FAIL".into(),
                out_refund_no: None,
            }),
            json!({"Notification": {"id": 2, "kind": "payment", "verdict": "bad_signature",
                   "detail": "signature mismatch", "reply": "FAIL", "out_refund_no": null}}),
        ),
        (
            OrderEvent::Paid {
                transaction_id: Some("4200".into()),
            },
            json!({"Paid": {"transaction_id": "4200"}}),
        ),
        (
            OrderEvent::RefundRequested {
                out_refund_no: "R1".into(),
                amount_fen: 100,
                reason: "broken".into(),
                requester_kind: "staff".into(),
                requester: "support1".into(),
            },
            json!({"RefundRequested": {"out_refund_no": "R1", "amount_fen": 100,
                   "reason": "broken", "requester_kind": "staff", "requester": "support1"}}),
        ),
        (
            OrderEvent::RefundDecided {
                out_refund_no: "R1".into(),
                approved: true,
                by: "manager1".into(),
                reason: None,
            },
            json!({"RefundDecided": {"out_refund_no": "R1", "approved": true, "by": "manager1",
                   "reason": null}}),
        ),
        (
            OrderEvent::RefundOutcome {
                out_refund_no: "R1".into(),
                status: RefundStatus::Success,
                amount_fen: 100,
                refund_id: Some("5000".into()),
                last_error: None,
            },
            json!({"RefundOutcome": {"out_refund_no": "R1", "status": "SUCCESS", "amount_fen": 100,
                   "refund_id": "5000", "last_error": null}}),
        ),
        (
            OrderEvent::Staff {
                audit_id: 7,
                actor: "support1".into(),
                action: "order.sync".into(),
                detail: None,
            },
            json!({"Staff": {"audit_id": 7, "actor": "support1", "action": "order.sync",
                   "detail": null}}),
        ),
    ];
    for (entry, expected) in entries {
        let json = serde_json::to_value(&entry).unwrap();
        assert_eq!(json, expected);
        assert_eq!(
            serde_json::from_value::<OrderEvent<Record, NotificationSummary>>(json).unwrap(),
            entry
        );
        // Turning the call and the callback into another form keeps every other entry and
        // its place among entries of the same instant.
        let mapped = entry.clone().map(
            |c| Record { id: c.id + 10 },
            |n| NotificationSummary {
                detail: "cut".into(),
                ..n
            },
        );
        assert_eq!(mapped.rank(), entry.rank());
        match (&entry, mapped) {
            (OrderEvent::ApiCall(c), OrderEvent::ApiCall(m)) => assert_eq!(m.id, c.id + 10),
            (OrderEvent::Notification(n), OrderEvent::Notification(m)) => {
                assert_eq!((m.id, m.detail.as_str()), (n.id, "cut"))
            }
            (_, mapped) => assert_eq!(mapped, entry),
        }
    }
}
