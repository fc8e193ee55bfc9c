//! Every way an order's status changes (`orders::transitions`), run through the same
//! scenario on SQLite and (when configured) PostgreSQL: an order is paid, a second payment
//! with another transaction_id changes nothing, the order is refunded and stays refunded
//! when paid again; an order closed unpaid stays closed when a payment arrives. Each path
//! must leave the same end state: the notification (group commit: the raw SQLite statement
//! on SQLite, the multi-row update on PostgreSQL), orderquery (the sync job), and each form
//! of the update on its own.

use paydesk_core::alerts;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{self, Verdict};
use paydesk_core::orders::{self, Order, OrderStatus};
use paydesk_core::sync;
use paydesk_core::testing::{self, databases, PayPath, TestDb};
use paydesk_core::{Backend, Db};
use wxpay::{MockApi, OrderQueryResponse, Params};

const FEE: i64 = 1280;
const BANK: &str = "CMB_CREDIT";
/// `time_end` 2026-12-06 18:00:00 Beijing time, in UTC milliseconds.
const TIME_END: &str = "20261206180000";
const PAID_AT: i64 = 1_796_551_200_000;

/// One way of telling paydesk that an order was paid.
#[derive(Debug, Clone, Copy)]
enum Path {
    Notification,
    OrderQuery,
    Transition(PayPath),
}

impl Path {
    fn all(t: &TestDb) -> Vec<Path> {
        let mut paths = vec![
            Path::Notification,
            Path::OrderQuery,
            Path::Transition(PayPath::Single),
            Path::Transition(PayPath::Batched),
        ];
        if t.label == "sqlite" {
            paths.push(Path::Transition(PayPath::RawSqlite));
        }
        paths
    }

    /// Reports a payment of `order` with `tid`; whether paydesk took it as the order's
    /// payment (the order moved, or it already had this payment).
    async fn pay(self, db: &Db, order: &Order, tid: &str) -> bool {
        match self {
            Path::Notification => {
                let mut p = testing::notification_params(&order.out_trade_no, FEE);
                p.insert("transaction_id".into(), tid.into());
                p.insert("bank_type".into(), BANK.into());
                p.insert("time_end".into(), TIME_END.into());
                let raw = testing::signed(p, testing::MERCHANT_KEY, wxpay::SignType::Md5);
                let outcome =
                    notify::receive_payment_notification(db, &testing::merchant(), None, &raw)
                        .await;
                assert!(outcome.notification_id.is_some());
                matches!(outcome.verdict, Verdict::Applied | Verdict::Duplicate)
            }
            Path::OrderQuery => {
                let mut api = MockApi::new();
                let answer = paid_answer(&order.out_trade_no, tid);
                api.expect_order_query()
                    .times(1)
                    .returning(move |_| Ok(answer.clone()));
                // The order as the job last saw it: NOTPAY, so it asks.
                let stale = Order {
                    status: OrderStatus::NotPay,
                    ..order.clone()
                };
                sync::refresh_order(db, &api, &EventBus::new(), &stale)
                    .await
                    .is_ok()
            }
            Path::Transition(path) => {
                let moved = testing::pay_via(db, path, order.id, tid, Some(BANK), PAID_AT)
                    .await
                    .unwrap();
                // Not moved: taken only if it already is this payment (as a notification's
                // `Duplicate`).
                let now = stored(db, order).await;
                moved || (now.status.was_paid() && now.transaction_id.as_deref() == Some(tid))
            }
        }
    }
}

fn paid_answer(no: &str, tid: &str) -> OrderQueryResponse {
    let mut p = Params::new();
    for (k, v) in [
        ("out_trade_no", no),
        ("trade_state", "SUCCESS"),
        ("transaction_id", tid),
        ("bank_type", BANK),
        ("time_end", TIME_END),
    ] {
        p.insert(k.into(), v.into());
    }
    p.insert("total_fee".into(), FEE.to_string());
    OrderQueryResponse::from_params(p).unwrap()
}

async fn stored(db: &Db, order: &Order) -> Order {
    testing::stored_order(db, &order.out_trade_no).await
}

/// A transaction_id of its own (they are unique across orders) for payment `n` of test
/// order `k`.
fn tid(n: u8, k: usize) -> String {
    format!("42000000002026120{n}{k:010}")
}

/// A new order `no`, due for the sync job now.
async fn due_order(db: &Db, no: &str) -> Order {
    let order = orders::NewOrder {
        next_sync_at: Some(paydesk_core::now_ms()),
        ..testing::new_order(no, FEE)
    };
    orders::create_order(db, order).await.unwrap()
}

/// The order as stored has `status` and exactly the payment `tid` (paid at [`PAID_AT`]).
async fn assert_paid_once(db: &Db, order: &Order, status: OrderStatus, tid: &str, what: &str) {
    let order = stored(db, order).await;
    assert_eq!(order.status, status, "{what}");
    assert_eq!(order.transaction_id.as_deref(), Some(tid), "{what}");
    assert_eq!(order.bank_type.as_deref(), Some(BANK), "{what}");
    assert_eq!(order.paid_at, Some(PAID_AT), "{what}");
    assert_eq!(order.next_sync_at, None, "{what}");
}

#[tokio::test]
async fn every_payment_path_pays_once_and_never_moves_an_order_backwards() {
    for t in databases().await {
        for (k, path) in Path::all(&t).into_iter().enumerate() {
            let what = format!("{} {path:?}", t.label);
            let order = due_order(&t.db, &format!("TR-PAID-{k}")).await;
            let (first, second) = (tid(1, k), tid(2, k));

            // Paid: NOTPAY → PAID with the payment's fields.
            assert!(path.pay(&t.db, &order, &first).await, "{what}");
            assert_paid_once(&t.db, &order, OrderStatus::Paid, &first, &what).await;

            // The same payment again is taken as a duplicate and changes nothing.
            assert!(path.pay(&t.db, &order, &first).await, "{what}: duplicate");
            assert_paid_once(&t.db, &order, OrderStatus::Paid, &first, &what).await;

            // Another payment for a paid order is not taken and changes nothing.
            assert!(!path.pay(&t.db, &order, &second).await, "{what}: second");
            assert_paid_once(&t.db, &order, OrderStatus::Paid, &first, &what).await;

            // Refunded, then paid again: still refunded, with the first payment.
            orders::transition(&t.db, order.id, OrderStatus::Refunded)
                .await
                .unwrap();
            assert!(!path.pay(&t.db, &order, &second).await, "{what}: refunded");
            assert_paid_once(&t.db, &order, OrderStatus::Refunded, &first, &what).await;

            // Closed unpaid, then paid: still closed, with no payment.
            let closed =
                orders::create_order(&t.db, testing::new_order(&format!("TR-CLOSED-{k}"), FEE))
                    .await
                    .unwrap();
            orders::transition(&t.db, closed.id, OrderStatus::Closed)
                .await
                .unwrap();
            assert!(
                !path.pay(&t.db, &closed, &tid(3, k)).await,
                "{what}: closed"
            );
            let after = stored(&t.db, &closed).await;
            assert_eq!(after.status, OrderStatus::Closed, "{what}");
            assert_eq!(after.transaction_id, None, "{what}");
            assert_eq!(after.paid_at, None, "{what}");
        }
    }
}

#[tokio::test]
async fn a_forbidden_move_is_refused_and_changes_nothing() {
    for t in databases().await {
        let order = orders::create_order(&t.db, testing::new_order("TR-BACK", FEE))
            .await
            .unwrap();
        assert!(orders::transition(&t.db, order.id, OrderStatus::Refunded)
            .await
            .is_err());
        testing::pay_via(&t.db, PayPath::Single, order.id, &tid(1, 99), None, PAID_AT)
            .await
            .unwrap();
        assert!(orders::transition(&t.db, order.id, OrderStatus::NotPay)
            .await
            .is_err());
        assert_eq!(
            stored(&t.db, &order).await.status,
            OrderStatus::Paid,
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn every_payment_path_pays_an_order_whose_first_attempt_failed() {
    for t in databases().await {
        for (k, path) in Path::all(&t).into_iter().enumerate() {
            let what = format!("{} {path:?}", t.label);
            let order = due_order(&t.db, &format!("TR-RETRY-{k}")).await;
            // The shopper's first attempt failed at the bank (docs/wechatpay-v2.md §8.8).
            orders::transition(&t.db, order.id, OrderStatus::PayError)
                .await
                .unwrap();

            // The second attempt is paid: PAYERROR → PAID with the payment's fields.
            assert!(path.pay(&t.db, &order, &tid(4, k)).await, "{what}");
            assert_paid_once(&t.db, &order, OrderStatus::Paid, &tid(4, k), &what).await;
        }
    }
}

/// Every path that pays an order writes its merchant alert in the payment's transaction
/// (the outbox): queued once per paid order while alerts are on, never while they are off,
/// and a payment whose alert cannot be written is not committed either.
#[tokio::test]
async fn every_payment_path_queues_the_alert_with_the_payment_and_only_then() {
    for t in databases().await {
        for (k, path) in Path::all(&t).into_iter().enumerate() {
            let what = format!("{} {path:?}", t.label);

            // Alerts on: paid once (and reported twice) is one pending alert for the host.
            alerts::configure(&t.db, Some("qyapi.weixin.qq.com"))
                .await
                .unwrap();
            let order = due_order(&t.db, &format!("TR-ALERT-{k}")).await;
            assert!(path.pay(&t.db, &order, &tid(4, k)).await, "{what}");
            assert!(path.pay(&t.db, &order, &tid(4, k)).await, "{what}: again");
            let queued = alerts::for_order(&t.db, order.id).await.unwrap();
            let queued = queued.unwrap_or_else(|| panic!("{what}: no alert queued"));
            assert_eq!(queued.status, "pending", "{what}");
            assert_eq!(queued.attempts, 0, "{what}");
            let rows: i64 =
                sqlx::query_scalar("select count(*) from alert_deliveries where order_id = $1")
                    .bind(order.id)
                    .fetch_one(t.db.reader())
                    .await
                    .unwrap();
            assert_eq!(rows, 1, "{what}");

            // Alerts off: a paid order queues nothing.
            alerts::configure(&t.db, None).await.unwrap();
            let quiet = due_order(&t.db, &format!("TR-QUIET-{k}")).await;
            assert!(path.pay(&t.db, &quiet, &tid(5, k)).await, "{what}");
            assert_eq!(
                alerts::for_order(&t.db, quiet.id).await.unwrap(),
                None,
                "{what}"
            );

            // An alert that cannot be written takes the payment down with it.
            alerts::configure(&t.db, Some("qyapi.weixin.qq.com"))
                .await
                .unwrap();
            refuse_alerts(&t, true).await;
            let refused = due_order(&t.db, &format!("TR-REFUSED-{k}")).await;
            let taken = match path {
                Path::Transition(p) => {
                    testing::pay_via(&t.db, p, refused.id, &tid(6, k), Some(BANK), PAID_AT)
                        .await
                        .is_ok()
                }
                _ => path.pay(&t.db, &refused, &tid(6, k)).await,
            };
            refuse_alerts(&t, false).await;
            assert!(!taken, "{what}: paid without its alert");
            let after = stored(&t.db, &refused).await;
            assert_eq!(after.status, OrderStatus::NotPay, "{what}");
            assert_eq!(
                alerts::for_order(&t.db, refused.id).await.unwrap(),
                None,
                "{what}"
            );
            alerts::configure(&t.db, None).await.unwrap();
        }
    }
}

/// Makes every insert into the alert outbox fail (`on`), or stops doing so.
async fn refuse_alerts(t: &TestDb, on: bool) {
    let sql = match (t.db.backend(), on) {
        (Backend::Sqlite, true) => {
            "create trigger refuse_alerts before insert on alert_deliveries \
             begin select raise(abort, 'alert outbox refused'); end;"
        }
        (Backend::Sqlite, false) => "drop trigger refuse_alerts;",
        (Backend::Postgres, true) => {
            "create function refuse_alerts() returns trigger language plpgsql as $$ \
             begin raise exception 'alert outbox refused'; end $$; \
             create trigger refuse_alerts before insert on alert_deliveries \
             for each row execute function refuse_alerts();"
        }
        (Backend::Postgres, false) => {
            "drop trigger refuse_alerts on alert_deliveries; drop function refuse_alerts();"
        }
    };
    sqlx::raw_sql(sql).execute(t.db.writer()).await.unwrap();
}
