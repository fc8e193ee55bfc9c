//! The exceptions inbox on SQLite and (when configured) PostgreSQL: each kind of condition is
//! raised exactly once (a second scan raises nothing), an item clears itself when its
//! condition goes away, a person closes the rest with a note (audited), and a closed item is
//! not raised again.

use paydesk_core::audit;
use paydesk_core::exceptions::{self, Kind};
use paydesk_core::testing::{self, databases};
use paydesk_core::{now_ms, orders, Db};

const DAY: i64 = 86_400_000;

async fn exec(db: &Db, sql: &str, texts: &[&str], ints: &[i64]) {
    let mut q = sqlx::query(sql);
    for t in texts {
        q = q.bind(*t);
    }
    for i in ints {
        q = q.bind(*i);
    }
    q.execute(db.writer()).await.unwrap();
}

/// A notification row for order `id` as the intake records one it verified but did not
/// apply.
async fn refused_payment(db: &Db, id: i64, no: &str, tid: &str, fee: i64, verdict: &str) {
    exec(
        db,
        "insert into notifications (kind, received_at, raw_body, out_trade_no, transaction_id, \
         total_fee, verdict, detail, reply, duration_us, order_id, created_at, updated_at) \
         values ('payment', $5, '<xml/>', $1, $2, $6, $3, $4, 'SUCCESS', 1, $7, $5, $5)",
        &[no, tid, verdict, "test"],
        &[now_ms(), fee, id],
    )
    .await;
}

async fn refund(db: &Db, order_id: i64, no: &str, status: &str, created_at: i64) -> i64 {
    exec(
        db,
        "insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind, \
         requester, status, attempts, created_at, updated_at, last_error) \
         values ($1, $4, 100, 'test', 'staff', 'tester', $2, 1, $5, $5, $3)",
        &[no, status, "余额不足"],
        &[order_id, created_at],
    )
    .await;
    sqlx::query_scalar("select id from refunds where out_refund_no = $1")
        .bind(no)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

async fn open_kinds(db: &Db) -> Vec<(Kind, Option<String>)> {
    let mut kinds: Vec<(Kind, Option<String>)> = exceptions::list(db, false, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.out_trade_no))
        .collect();
    kinds.sort_by_key(|(k, no)| (k.as_str(), no.clone()));
    kinds
}

#[tokio::test]
async fn each_condition_is_raised_once_clears_itself_or_is_closed_with_a_note() {
    for t in databases().await {
        let (db, l) = (&t.db, t.label);
        let now = now_ms();
        // Each order its own amount, so no two of them look like the same cart.
        let closed = testing::create_order(db, "EXC-CLOSED", 101).await;
        exec(
            db,
            "update orders set status = 'CLOSED' where id = $1",
            &[],
            &[closed.id],
        )
        .await;
        refused_payment(
            db,
            closed.id,
            "EXC-CLOSED",
            "4200CLOSED",
            101,
            "internal_error",
        )
        .await;
        let twice = testing::paid_order(db, "EXC-TWICE", 102).await;
        exec(
            db,
            "update orders set transaction_id = '4200FIRST' where id = $1",
            &[],
            &[twice.id],
        )
        .await;
        refused_payment(
            db,
            twice.id,
            "EXC-TWICE",
            "4200SECOND",
            102,
            "internal_error",
        )
        .await;
        let mismatch = testing::create_order(db, "EXC-AMOUNT", 103).await;
        refused_payment(
            db,
            mismatch.id,
            "EXC-AMOUNT",
            "4200AMOUNT",
            104,
            "amount_mismatch",
        )
        .await;
        // WeChat Pay resends the same mismatch: still one item.
        refused_payment(
            db,
            mismatch.id,
            "EXC-AMOUNT",
            "4200AMOUNT",
            104,
            "amount_mismatch",
        )
        .await;
        let refunded = testing::paid_order(db, "EXC-REFUNDS", 105).await;
        let stuck = refund(db, refunded.id, "EXC-R-STUCK", "PROCESSING", now - 2 * DAY).await;
        refund(
            db,
            refunded.id,
            "EXC-R-RECENT",
            "PROCESSING",
            now - 3_600_000,
        )
        .await;
        let failed = refund(db, refunded.id, "EXC-R-FAILED", "FAILED", now - 3_600_000).await;
        let alerted = testing::paid_order(db, "EXC-ALERT", 106).await;
        exec(
            db,
            "insert into alert_deliveries (order_id, out_trade_no, target, payload, status, \
             attempts, last_error, created_at, updated_at) \
             values ($3, $1, 'https://example.com/hook', '{}', 'failed', 8, $2, $4, $4)",
            &["EXC-ALERT", "HTTP 500"],
            &[alerted.id, now],
        )
        .await;
        // The same cart twice within 10 minutes (same shopper, same items), and a third
        // order of the same cart an hour later, which is no double payment.
        let cart_a = testing::paid_order(db, "EXC-CART-A", 107).await;
        let cart_b = testing::paid_order(db, "EXC-CART-B", 107).await;
        let cart_late = testing::paid_order(db, "EXC-CART-LATE", 107).await;
        exec(
            db,
            "update orders set paid_at = $1 where out_trade_no like 'EXC-CART-%'",
            &[],
            &[now],
        )
        .await;
        exec(
            db,
            "update orders set created_at = created_at - 300000 where id = $1",
            &[],
            &[cart_a.id],
        )
        .await;
        exec(
            db,
            "update orders set created_at = created_at + 3600000 where id = $1",
            &[],
            &[cart_late.id],
        )
        .await;
        exec(
            db,
            "insert into recon_differences (day, class, ref_no, out_trade_no, our_fen, their_fen, \
             state, first_seen_at, last_seen_at, created_at, updated_at) \
             values ($3, 'paid_there_only', $1, $2, 500, 500, 'open', $4, $4, $4, $4)",
            &["EXC-RECON", "EXC-RECON"],
            &[paydesk_core::time::day_number(now) - 1, now],
        )
        .await;

        // Act: scan twice
        let first = exceptions::scan(db, now_ms()).await.unwrap();
        let again = exceptions::scan(db, now_ms()).await.unwrap();

        // Assert: each cause once
        let expected = vec![
            (Kind::AlertFailed, Some("EXC-ALERT".to_owned())),
            (Kind::AmountMismatch, Some("EXC-AMOUNT".to_owned())),
            (Kind::DoubleCart, Some(cart_b.out_trade_no.clone())),
            (Kind::PaidAfterClose, Some("EXC-CLOSED".to_owned())),
            (Kind::Reconciliation, Some("EXC-RECON".to_owned())),
            (Kind::RefundFailed, Some("EXC-REFUNDS".to_owned())),
            (Kind::RefundStuck, Some("EXC-REFUNDS".to_owned())),
            (Kind::SecondPayment, Some("EXC-TWICE".to_owned())),
        ];
        assert_eq!(open_kinds(db).await, expected, "{l}");
        assert_eq!(first.raised, 8, "{l}");
        assert_eq!(
            (again.raised, again.cleared),
            (0, 0),
            "{l}: a second scan changes nothing"
        );
        assert_eq!(exceptions::open_count(db).await.unwrap(), 8, "{l}");
        let items = exceptions::list(db, false, 100).await.unwrap();
        let second = items
            .iter()
            .find(|e| e.kind == Kind::SecondPayment)
            .unwrap();
        assert_eq!(
            (second.amount_fen, second.other_fen),
            (Some(102), Some(102)),
            "{l}"
        );
        let amount = items
            .iter()
            .find(|e| e.kind == Kind::AmountMismatch)
            .unwrap();
        assert_eq!(
            (amount.amount_fen, amount.other_fen),
            (Some(103), Some(104)),
            "{l}"
        );

        // Conditions that go away clear their items: the stuck refund succeeded, the
        // difference was synced, the double payment refunded.
        exec(
            db,
            "update refunds set status = 'SUCCESS' where id = $1",
            &[],
            &[stuck],
        )
        .await;
        exec(
            db,
            "update recon_differences set state = 'cleared'",
            &[],
            &[],
        )
        .await;
        exec(
            db,
            "update orders set status = 'PARTIALLY_REFUNDED' where id = $1",
            &[],
            &[cart_b.id],
        )
        .await;
        let cleared = exceptions::scan(db, now_ms()).await.unwrap();
        assert_eq!((cleared.raised, cleared.cleared), (0, 3), "{l}");
        assert_eq!(exceptions::open_count(db).await.unwrap(), 5, "{l}");

        // A person closes one with a note; it is audited and not raised again.
        let failed_item = exceptions::list(db, false, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.kind == Kind::RefundFailed)
            .unwrap();
        assert_eq!(failed_item.subject, failed.to_string(), "{l}");
        let manager = testing::manager(db, "boss").await;
        assert!(
            exceptions::close(db, failed_item.id, "  ", &manager)
                .await
                .is_err(),
            "{l}: a note is required"
        );
        exceptions::close(db, failed_item.id, "已线下转账退款", &manager)
            .await
            .unwrap();
        assert!(
            exceptions::close(db, failed_item.id, "again", &manager)
                .await
                .is_err(),
            "{l}: closed once"
        );
        let after = exceptions::scan(db, now_ms()).await.unwrap();
        assert_eq!(after.raised, 0, "{l}: a closed item is not raised again");
        let done = exceptions::list(db, true, 10).await.unwrap();
        let closed_item = done.iter().find(|e| e.id == failed_item.id).unwrap();
        assert_eq!(closed_item.state, "closed", "{l}");
        assert_eq!(closed_item.note.as_deref(), Some("已线下转账退款"), "{l}");
        assert_eq!(closed_item.closed_by.as_deref(), Some("boss"), "{l}");
        assert_eq!(
            done.iter().filter(|e| e.state == "cleared").count(),
            3,
            "{l}"
        );
        let audited = audit::list(db, None, Some(audit::action::EXCEPTION_CLOSE), 10)
            .await
            .unwrap();
        assert_eq!(audited.len(), 1, "{l}");
        let _ = orders::find_by_out_trade_no(db, "EXC-CLOSED")
            .await
            .unwrap();
    }
}
