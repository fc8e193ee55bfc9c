//! One order's history (issue #6 "Order detail"): everything that happened to it, oldest
//! first, each entry pointing at its raw record — the order's creation, every call to WeChat
//! Pay about it or its refunds (unifiedorder, orderquery, closeorder, refund, refundquery),
//! every callback that claimed it (duplicates and refused ones included), its refunds'
//! requests, decisions and outcomes, and the staff actions audited against it.
//!
//! Four indexed queries, run together on the reader pool: refunds by `order_id`; api_calls
//! by `out_trade_no` or by the order's refund numbers (a refundquery that failed before any
//! answer only carries `out_refund_no`); notifications by `order_id`, by the claimed
//! `out_trade_no` (a refused callback never got an `order_id`) or by refund number; audit
//! entries whose target is the order number. Refund requests and decisions come from the
//! refunds table (amount, reason, who), not from their audit rows, so nothing shows twice.

use sqlx::FromRow;

use crate::notify::Verdict;
use crate::orders::Order;
use crate::refunds::{self, Refund, RefundStatus};
use crate::{CoreError, Db};

/// What happened: a call to WeChat Pay and a callback as this module reads them (the
/// variants and their order among entries of the same instant are `paydesk_types`', shared
/// with the order's page).
pub type Event = paydesk_types::OrderEvent<CallSummary, NotificationSummary>;

/// One call to WeChat Pay, without its bodies (those are on the call's own page).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CallSummary {
    /// `api_calls.id`.
    pub id: i64,
    /// Endpoint path, e.g. `/pay/orderquery`.
    pub endpoint: String,
    /// The refund it concerned.
    pub out_refund_no: Option<String>,
    /// HTTP status, if a response arrived.
    pub http_status: Option<i64>,
    /// `return_code`.
    pub return_code: Option<String>,
    /// `result_code`.
    pub result_code: Option<String>,
    /// `err_code`.
    pub err_code: Option<String>,
    /// The transport or protocol error.
    pub error: Option<String>,
    /// Round trip in milliseconds.
    pub latency_ms: i64,
    /// When (UTC ms).
    pub created_at: i64,
}

impl CallSummary {
    /// Whether WeChat Pay answered `SUCCESS` twice (return and result).
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
            && self.return_code.as_deref() == Some("SUCCESS")
            && self.result_code.as_deref() != Some("FAIL")
    }
}

/// One callback, without its raw body (the same on the order's page).
pub use paydesk_types::NotificationSummary;

/// One entry of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When (UTC ms).
    pub at: i64,
    /// What.
    pub event: Event,
}

/// An order's history and what the detail page reads along with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Everything that happened, oldest first.
    pub entries: Vec<Entry>,
    /// The order's refunds, oldest first.
    pub refunds: Vec<Refund>,
    /// `trade_type` as sent to unifiedorder (`JSAPI` for the mini program), when the call
    /// was recorded.
    pub trade_type: Option<String>,
}

impl History {
    /// Fen refunded (refunds that reached `SUCCESS`).
    pub fn refunded_fen(&self) -> i64 {
        self.refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Success)
            .map(|r| r.amount_fen)
            .sum()
    }

    /// Fen still refundable: the total less every refund that counts against the order.
    pub fn refundable_fen(&self, order: &Order) -> i64 {
        let committed: i64 = self
            .refunds
            .iter()
            .filter(|r| r.status.counts_against_order())
            .map(|r| r.amount_fen)
            .sum();
        (order.total_fee - committed).max(0)
    }
}

#[derive(FromRow)]
struct CallRow {
    #[sqlx(flatten)]
    call: CallSummary,
    unifiedorder_request: Option<String>,
}

#[derive(FromRow)]
struct NotificationRow {
    id: i64,
    kind: String,
    received_at: i64,
    verdict: String,
    detail: String,
    reply: String,
    out_refund_no: Option<String>,
}

#[derive(FromRow)]
struct AuditRow {
    id: i64,
    created_at: i64,
    actor: String,
    action: String,
    detail: Option<String>,
}

/// The order's refund numbers, as a subquery on its id (`$1`).
const REFUND_NUMBERS: &str = "select out_refund_no from refunds where order_id = $1";

/// Everything that happened to `order`, oldest first (see the module docs), with its refunds.
pub async fn for_order(db: &Db, order: &Order) -> Result<History, CoreError> {
    let no = order.out_trade_no.as_str();
    let call_columns = "id, endpoint, out_refund_no, http_status, return_code, result_code, \
        err_code, error, latency_ms, created_at, \
        case when endpoint = '/pay/unifiedorder' then request_body end as unifiedorder_request";
    let calls_sql = format!(
        r#"select {call_columns} from api_calls where out_trade_no = $2
           union
           select {call_columns} from api_calls where out_refund_no in ({REFUND_NUMBERS})"#
    );
    let calls = sqlx::query_as::<_, CallRow>(&calls_sql)
        .bind(order.id)
        .bind(no)
        .fetch_all(db.reader());
    let notification_columns = "id, kind, received_at, verdict, detail, reply, out_refund_no";
    let notifications_sql = format!(
        r#"select {notification_columns} from notifications where order_id = $1
           union
           select {notification_columns} from notifications where out_trade_no = $2
           union
           select {notification_columns} from notifications
           where out_refund_no in ({REFUND_NUMBERS})"#
    );
    let notifications = sqlx::query_as::<_, NotificationRow>(&notifications_sql)
        .bind(order.id)
        .bind(no)
        .fetch_all(db.reader());
    let audit = sqlx::query_as::<_, AuditRow>(
        "select id, created_at, actor, action, detail from audit_log where target = $1",
    )
    .bind(no)
    .fetch_all(db.reader());
    let (refunds, calls, notifications, audit) = tokio::try_join!(
        refunds::for_order(db, order.id),
        async { calls.await.map_err(CoreError::from) },
        async { notifications.await.map_err(CoreError::from) },
        async { audit.await.map_err(CoreError::from) },
    )?;

    let mut entries = vec![Entry {
        at: order.created_at,
        event: Event::Created {
            total_fee: order.total_fee,
        },
    }];
    let mut trade_type = None;
    for row in calls {
        if let Some(body) = &row.unifiedorder_request {
            if trade_type.is_none() {
                trade_type = wxpay::xml::parse(body.as_bytes())
                    .ok()
                    .and_then(|p| p.get("trade_type").cloned());
            }
        }
        entries.push(Entry {
            at: row.call.created_at,
            event: Event::ApiCall(row.call),
        });
    }
    for n in notifications {
        entries.push(Entry {
            at: n.received_at,
            event: Event::Notification(NotificationSummary {
                id: n.id,
                kind: n.kind,
                verdict: n.verdict.parse()?,
                detail: n.detail,
                reply: n.reply,
                out_refund_no: n.out_refund_no,
            }),
        });
    }
    if let Some(paid_at) = order.paid_at {
        // `time_end` has whole seconds, so it can read earlier than the order's own creation
        // and calls: the payment is placed no earlier than what it follows (the first
        // applied payment notification, else the unifiedorder call).
        let evidence = entries
            .iter()
            .filter_map(|e| match &e.event {
                Event::Notification(n) if n.kind == "payment" && n.verdict == Verdict::Applied => {
                    Some(e.at)
                }
                _ => None,
            })
            .min()
            .or_else(|| {
                entries
                    .iter()
                    .filter(|e| {
                        matches!(&e.event, Event::ApiCall(c) if c.endpoint == "/pay/unifiedorder")
                    })
                    .map(|e| e.at)
                    .min()
            })
            .unwrap_or(order.created_at);
        entries.push(Entry {
            at: paid_at.max(evidence),
            event: Event::Paid {
                transaction_id: order.transaction_id.clone(),
            },
        });
    }
    for r in &refunds {
        entries.extend(refund_entries(r));
    }
    for a in audit {
        entries.push(Entry {
            at: a.created_at,
            event: Event::Staff {
                audit_id: a.id,
                actor: a.actor,
                action: a.action,
                detail: a.detail,
            },
        });
    }
    entries.sort_by_key(|e| (e.at, e.event.rank(), entry_id(&e.event)));
    Ok(History {
        entries,
        refunds,
        trade_type,
    })
}

/// A refund's request, decision and outcome.
fn refund_entries(r: &Refund) -> Vec<Entry> {
    let mut out = vec![Entry {
        at: r.created_at,
        event: Event::RefundRequested {
            out_refund_no: r.out_refund_no.clone(),
            amount_fen: r.amount_fen,
            reason: r.reason.clone(),
            requester_kind: r.requester_kind.clone(),
            requester: r.requester.clone(),
        },
    }];
    if let (Some(at), Some(by)) = (r.decided_at, &r.decided_by) {
        out.push(Entry {
            at,
            event: Event::RefundDecided {
                out_refund_no: r.out_refund_no.clone(),
                approved: r.status != RefundStatus::Rejected,
                by: by.clone(),
                reason: r.decision_reason.clone(),
            },
        });
    }
    // When we recorded the outcome (a final refund is not updated again; WeChat's own
    // success_time has whole seconds and can read earlier than the calls that led to it).
    let outcome_at = match r.status {
        RefundStatus::Success
        | RefundStatus::Failed
        | RefundStatus::RefundClose
        | RefundStatus::Change => Some(r.updated_at),
        _ => None,
    };
    if let Some(at) = outcome_at {
        out.push(Entry {
            at,
            event: Event::RefundOutcome {
                out_refund_no: r.out_refund_no.clone(),
                status: r.status,
                amount_fen: r.amount_fen,
                refund_id: r.refund_id.clone(),
                last_error: r.last_error.clone(),
            },
        });
    }
    out
}

/// The raw record's id, to keep same-time entries of one kind in insertion order.
fn entry_id(event: &Event) -> i64 {
    match event {
        Event::ApiCall(c) => c.id,
        Event::Notification(n) => n.id,
        Event::Staff { audit_id, .. } => *audit_id,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::audit::{self, action, Actor};
    use crate::events::EventBus;
    use crate::orders::{self, OrderStatus};
    use crate::refunds::Requester;
    use crate::testing;

    async fn order(db: &Db, no: &str) -> Order {
        testing::create_order(db, no, 3000).await
    }

    async fn call(db: &Db, endpoint: &str, no: Option<&str>, refund: Option<&str>, at: i64) {
        sqlx::query(
            r#"insert into api_calls (endpoint, out_trade_no, out_refund_no, return_code,
                   result_code, latency_ms, request_body, response_body, created_at, updated_at)
               values ($1, $2, $3, 'SUCCESS', 'SUCCESS', 12, $4, '<xml/>', $5, $5)"#,
        )
        .bind(endpoint)
        .bind(no)
        .bind(refund)
        .bind("<xml><trade_type>JSAPI</trade_type><out_trade_no>x</out_trade_no></xml>")
        .bind(at)
        .execute(db.writer())
        .await
        .unwrap();
    }

    async fn notification(
        db: &Db,
        kind: &str,
        verdict: &str,
        order_id: Option<i64>,
        no: Option<&str>,
        refund: Option<&str>,
        at: i64,
    ) -> i64 {
        sqlx::query_scalar(
            r#"insert into notifications (kind, received_at, raw_body, out_trade_no, verdict,
                   detail, reply, duration_us, order_id, out_refund_no, created_at, updated_at)
               values ($1, $2, '<xml/>', $3, $4, 'd', 'SUCCESS', 5, $5, $6, $2, $2)
               returning id"#,
        )
        .bind(kind)
        .bind(at)
        .bind(no)
        .bind(verdict)
        .bind(order_id)
        .bind(refund)
        .fetch_one(db.writer())
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn an_orders_timeline_has_everything_about_it_oldest_first_and_nothing_else() {
        for t in testing::databases().await {
            let db = &t.db;
            // Arrange: this order and a neighbour whose records must stay out.
            let mine = order(db, "TL-1").await;
            let other = order(db, "TL-2").await;
            let t0 = mine.created_at;
            call(db, "/pay/unifiedorder", Some("TL-1"), None, t0 + 10).await;
            call(db, "/pay/unifiedorder", Some("TL-2"), None, t0 + 11).await;
            let applied = notification(
                db,
                "payment",
                "applied",
                Some(mine.id),
                Some("TL-1"),
                None,
                t0 + 20,
            )
            .await;
            let dup = notification(
                db,
                "payment",
                "duplicate",
                Some(mine.id),
                Some("TL-1"),
                None,
                t0 + 30,
            )
            .await;
            // A forged callback claiming the order never got an order_id.
            let forged = notification(
                db,
                "payment",
                "bad_signature",
                None,
                Some("TL-1"),
                None,
                t0 + 25,
            )
            .await;
            notification(
                db,
                "payment",
                "applied",
                Some(other.id),
                Some("TL-2"),
                None,
                t0 + 26,
            )
            .await;
            orders::transition(db, mine.id, OrderStatus::Paid)
                .await
                .unwrap();
            let staff = Actor {
                user_id: None,
                name: "support1".into(),
                ip: None,
            };
            let refund = refunds::request(
                db,
                &EventBus::new(),
                "TL-1",
                Some(1000),
                "少发一件",
                Requester::Staff {
                    actor: staff.clone(),
                },
            )
            .await
            .unwrap();
            let manager = Actor {
                user_id: None,
                name: "manager1".into(),
                ip: None,
            };
            refunds::approve(db, &EventBus::new(), &manager, refund.id, "ok")
                .await
                .unwrap();
            // A refundquery that failed before any answer carries only the refund number.
            let later = crate::now_ms() + 1000;
            call(
                db,
                "/pay/refundquery",
                None,
                Some(&refund.out_refund_no),
                later,
            )
            .await;
            let refund_note = notification(
                db,
                "refund",
                "applied",
                None,
                None,
                Some(&refund.out_refund_no),
                later + 1,
            )
            .await;
            audit::record(
                db.writer(),
                audit::Entry {
                    actor: &staff,
                    action: action::ORDER_SYNC,
                    target: Some("TL-1"),
                    detail: Some("orderquery: NOTPAY"),
                },
            )
            .await
            .unwrap();
            audit::record(
                db.writer(),
                audit::Entry {
                    actor: &staff,
                    action: action::ORDER_SYNC,
                    target: Some("TL-2"),
                    detail: None,
                },
            )
            .await
            .unwrap();

            // Act
            let mine = orders::find_by_out_trade_no(db, "TL-1")
                .await
                .unwrap()
                .unwrap();
            let history = for_order(db, &mine).await.unwrap();

            // Assert
            let e = &history.entries;
            assert!(
                e.windows(2).all(|w| w[0].at <= w[1].at),
                "{}: oldest first",
                t.label
            );
            assert!(matches!(e[0].event, Event::Created { total_fee: 3000 }));
            let calls: Vec<&str> = e
                .iter()
                .filter_map(|x| match &x.event {
                    Event::ApiCall(c) => Some(c.endpoint.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(
                calls,
                ["/pay/unifiedorder", "/pay/refundquery"],
                "{}",
                t.label
            );
            let notes: Vec<(i64, Verdict)> = e
                .iter()
                .filter_map(|x| match &x.event {
                    Event::Notification(n) => Some((n.id, n.verdict)),
                    _ => None,
                })
                .collect();
            assert_eq!(
                notes,
                [
                    (applied, Verdict::Applied),
                    (forged, Verdict::BadSignature),
                    (dup, Verdict::Duplicate),
                    (refund_note, Verdict::Applied),
                ],
                "{}",
                t.label
            );
            assert!(e.iter().any(|x| matches!(&x.event,
                Event::RefundRequested { amount_fen: 1000, requester, .. } if requester == "support1")));
            assert!(e.iter().any(|x| matches!(&x.event,
                Event::RefundDecided { approved: true, by, .. } if by == "manager1")));
            let staff_actions: Vec<&str> = e
                .iter()
                .filter_map(|x| match &x.event {
                    Event::Staff { action, .. } => Some(action.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(staff_actions, [action::ORDER_SYNC], "{}", t.label);
            assert_eq!(history.trade_type.as_deref(), Some("JSAPI"));
            assert_eq!(history.refunds.len(), 1);
            assert_eq!(history.refunded_fen(), 0, "approved is not refunded yet");
            assert_eq!(history.refundable_fen(&mine), 2000);
        }
    }
}
