//! Repository tests for orders and payment notifications, on SQLite and (when configured)
//! PostgreSQL: the state machine in SQL and exactly-once application under concurrency.

use paydesk_core::db::PoolSizes;
use paydesk_core::error::ConflictReason;
use paydesk_core::notify::{self, Verdict};
use paydesk_core::orders::{self, NewOrder, NewOrderItem, OrderStatus, OutTradeNo};
use paydesk_core::testing::{
    self, assert_invalid, create_order as new_order, databases, merchant, TestDb,
};
use paydesk_core::wal::WalLimits;
use paydesk_core::{CoreError, Db};
use wxpay::SignType;

/// A payment notification from the test merchant with this `result_code` and
/// `transaction_id` (docs/wechatpay-v2.md §8.8).
fn notification(no: &str, fee: i64, result: &str, tid: &str) -> Vec<u8> {
    let mut p = testing::notification_params(no, fee);
    for (k, v) in [
        ("result_code", result),
        ("fee_type", "CNY"),
        ("transaction_id", tid),
    ] {
        p.insert(k.into(), v.into());
    }
    p.insert("cash_fee".into(), fee.to_string());
    testing::signed(p, testing::MERCHANT_KEY, SignType::Md5)
}

#[tokio::test]
async fn the_order_state_machine_holds_in_sql() {
    for t in databases().await {
        // Arrange
        let a = new_order(&t.db, "SM-CLOSE", 100).await;
        let b = new_order(&t.db, "SM-REFUND", 100).await;
        assert_eq!(a.status, OrderStatus::NotPay, "{}", t.label);
        assert_eq!(a.total_fee, 100);

        // Act / Assert: NOTPAY → CLOSED, and a closed order can never be paid
        let closed = orders::transition(&t.db, a.id, OrderStatus::Closed)
            .await
            .unwrap();
        assert_eq!(closed.status, OrderStatus::Closed, "{}", t.label);
        let err = orders::transition(&t.db, a.id, OrderStatus::Paid)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::Conflict(ConflictReason::IllegalTransition { .. })
            ),
            "{}: {err:?}",
            t.label
        );

        // NOTPAY → PAID → PARTIALLY_REFUNDED → REFUNDED, and never back
        for next in [
            OrderStatus::Paid,
            OrderStatus::PartiallyRefunded,
            OrderStatus::Refunded,
        ] {
            let o = orders::transition(&t.db, b.id, next).await.unwrap();
            assert_eq!(o.status, next, "{}", t.label);
        }
        for back in [OrderStatus::Paid, OrderStatus::NotPay] {
            assert!(orders::transition(&t.db, b.id, back).await.is_err());
        }
        let b = testing::stored_order(&t.db, "SM-REFUND").await;
        assert_eq!(b.status, OrderStatus::Refunded, "{}", t.label);
        assert!(orders::find_by_out_trade_no(&t.db, "NOPE")
            .await
            .unwrap()
            .is_none());
    }
}

#[tokio::test]
async fn an_out_trade_no_can_be_used_once() {
    for t in databases().await {
        new_order(&t.db, "ONCE-1", 5).await;
        let err = orders::create_order(
            &t.db,
            NewOrder {
                out_trade_no: OutTradeNo::parse("ONCE-1").unwrap(),
                openid: "o".into(),
                description: "again".into(),
                items: vec![NewOrderItem {
                    product_id: None,
                    name: "x".into(),
                    unit_price_fen: 7,
                    quantity: 2,
                }],
                sign_type: SignType::HmacSha256,
                client_ip: None,
                idempotency_key: None,
                expires_at: None,
                next_sync_at: None,
            },
        )
        .await
        .unwrap_err();
        assert_invalid(&err, "out_trade_no", t.label);
    }
}

#[tokio::test]
async fn fifty_concurrent_copies_of_one_notification_apply_exactly_once() {
    for t in databases().await {
        // Arrange
        let order = new_order(&t.db, "CONC-1", 2500).await;
        let body = notification("CONC-1", 2500, "SUCCESS", "4200000001202611220000000001");
        let m = merchant();

        // Act
        let outcomes = futures::future::join_all((0..50).map(|i| {
            let (db, m, body) = (t.db.clone(), m.clone(), body.clone());
            tokio::spawn(async move {
                notify::receive_payment_notification(&db, &m, Some(format!("10.0.0.{i}")), &body)
                    .await
            })
        }))
        .await;

        // Assert
        let verdicts: Vec<Verdict> = outcomes.into_iter().map(|o| o.unwrap().verdict).collect();
        let applied = verdicts.iter().filter(|v| **v == Verdict::Applied).count();
        let duplicate = verdicts
            .iter()
            .filter(|v| **v == Verdict::Duplicate)
            .count();
        assert_eq!((applied, duplicate), (1, 49), "{}: {verdicts:?}", t.label);
        let paid = testing::stored_order(&t.db, "CONC-1").await;
        assert_eq!(paid.status, OrderStatus::Paid, "{}", t.label);
        assert_eq!(
            paid.transaction_id.as_deref(),
            Some("4200000001202611220000000001")
        );
        assert_eq!(paid.bank_type.as_deref(), Some("CMB_CREDIT"));
        // time_end 2026-11-22 18:00:00 Beijing = 10:00:00 UTC
        assert_eq!(paid.paid_at, Some(1_795_341_600_000), "{}", t.label);
        let rows = paydesk_core::testing::recent_notifications(&t.db, Some("CONC-1"), 100)
            .await
            .unwrap();
        assert_eq!(rows.len(), 50, "{}", t.label);
        assert!(rows
            .iter()
            .all(|r| r.reply == "SUCCESS" && r.order_id == Some(order.id)));
        assert_eq!(
            rows.iter()
                .filter(|r| r.verdict == Verdict::Applied)
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn a_late_success_notification_never_moves_a_refunded_order_backwards() {
    for t in databases().await {
        // Arrange: paid by notification, then refunded
        let order = new_order(&t.db, "LATE-1", 300).await;
        let body = notification("LATE-1", 300, "SUCCESS", "4200000002");
        let first = notify::receive_payment_notification(&t.db, &merchant(), None, &body).await;
        assert_eq!(first.verdict, Verdict::Applied, "{}", t.label);
        orders::transition(&t.db, order.id, OrderStatus::Refunded)
            .await
            .unwrap();

        // Act: the same notification arrives again
        let late = notify::receive_payment_notification(&t.db, &merchant(), None, &body).await;

        // Assert
        assert_eq!(late.verdict, Verdict::Duplicate, "{}", t.label);
        assert_eq!(late.reply_body, wxpay::notify::REPLY_SUCCESS);
        let o = testing::stored_order(&t.db, "LATE-1").await;
        assert_eq!(o.status, OrderStatus::Refunded, "{}", t.label);
    }
}

#[tokio::test]
async fn a_failed_payment_marks_an_unpaid_order_payerror_and_a_later_success_pays_it() {
    for t in databases().await {
        new_order(&t.db, "FAIL-1", 300).await;
        let failed = notify::receive_payment_notification(
            &t.db,
            &merchant(),
            None,
            &notification("FAIL-1", 300, "FAIL", "4200000003"),
        )
        .await;
        assert_eq!(failed.verdict, Verdict::ResultFail, "{}", t.label);
        // Recorded and acknowledged: a resend cannot change a failed attempt (§8.8).
        assert!(failed.reply_body.contains("SUCCESS"));
        let o = testing::stored_order(&t.db, "FAIL-1").await;
        assert_eq!(o.status, OrderStatus::PayError, "{}", t.label);
        // The shopper tries again and pays: the order is paid after all.
        let success = notify::receive_payment_notification(
            &t.db,
            &merchant(),
            None,
            &notification("FAIL-1", 300, "SUCCESS", "4200000004"),
        )
        .await;
        assert_eq!(success.verdict, Verdict::Applied, "{}", t.label);
        let o = testing::stored_order(&t.db, "FAIL-1").await;
        assert_eq!(o.status, OrderStatus::Paid, "{}", t.label);
    }
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_still_recorded_as_malformed() {
    for t in databases().await {
        let raw = b"\xff\xfe<xml>\x00\x80 not xml";
        let out = notify::receive_payment_notification(
            &t.db,
            &merchant(),
            Some("203.0.113.9:4000".into()),
            raw,
        )
        .await;
        assert_eq!(out.verdict, Verdict::Malformed, "{}", t.label);
        let rows = paydesk_core::testing::recent_notifications(&t.db, None, 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(Some(rows[0].id), out.notification_id);
        assert_eq!(
            rows[0].raw_body,
            String::from_utf8_lossy(raw).replace('\0', "\u{FFFD}")
        );
        assert_eq!(rows[0].peer.as_deref(), Some("203.0.113.9:4000"));
        assert_eq!(rows[0].reply, "FAIL");
    }
}

/// Sends a paid notification for `no` (an 800-fen order) while `lock` holds the SQLite
/// write lock; asserts that it waits, and is applied once `lock` commits.
async fn waits_for_the_lock_then_applies(
    db: &Db,
    no: &str,
    lock: sqlx::Transaction<'static, sqlx::Any>,
) {
    // Act
    let body = notification(no, 800, "SUCCESS", "4200000001202611220000000077");
    let (pending_db, m) = (db.clone(), merchant());
    let pending = tokio::spawn(async move {
        notify::receive_payment_notification(&pending_db, &m, None, &body).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let waited = !pending.is_finished();
    lock.commit().await.unwrap();
    let outcome = pending.await.unwrap();

    // Assert
    assert!(waited, "the notification did not wait for the write lock");
    assert_eq!(outcome.verdict, Verdict::Applied);
    let paid = testing::stored_order(db, no).await;
    assert_eq!(paid.status, OrderStatus::Paid);
}

/// SQLite: the group commit runs on a connection of its own (notify/group_commit/sqlite.rs).
/// While another connection (another process, say `paydesk user …`) holds the write lock,
/// a notification waits for it — without failing and without blocking the runtime — and is
/// applied once the lock is released.
#[tokio::test]
async fn a_notification_waits_while_another_connection_holds_the_sqlite_write_lock() {
    let t = testing::sqlite().await.unwrap();
    new_order(&t.db, "LOCK-1", 800).await;
    let other = Db::connect(&t.url, paydesk_core::db::PoolSizes::default())
        .await
        .unwrap();
    let lock = other.begin_write().await.unwrap();
    waits_for_the_lock_then_applies(&t.db, "LOCK-1", lock).await;
    other.close().await;
}

/// SQLite, the same process: while a write through the writer pool is open (an admin's
/// change, the sync job), the group commit queues for the pool's connection instead of
/// beginning beside it, and applies the notification once that write has committed.
#[tokio::test]
async fn a_notification_waits_for_a_write_of_this_process_then_applies() {
    let t = testing::sqlite().await.unwrap();
    new_order(&t.db, "LOCK-2", 800).await;
    let lock = t.db.begin_write().await.unwrap();
    waits_for_the_lock_then_applies(&t.db, "LOCK-2", lock).await;
}

/// A fresh SQLite database whose write-ahead log is restarted past `restart_frames` and
/// forced past `force_frames` (wal.rs), with the path of its log file.
async fn sqlite_with_wal(restart_frames: i64, force_frames: i64) -> (TestDb, std::path::PathBuf) {
    let t = testing::sqlite_with(PoolSizes {
        wal: WalLimits {
            restart_frames,
            force_frames,
        },
        ..PoolSizes::default()
    })
    .await
    .unwrap();
    let file = t.url.strip_prefix("sqlite://").unwrap();
    let wal = std::path::PathBuf::from(format!("{file}-wal"));
    (t, wal)
}

/// How many times the write-ahead log has started again from its beginning: the checkpoint
/// sequence number in its header, which SQLite counts up at every restart.
fn wal_restarts(wal: &std::path::Path) -> u32 {
    let header = std::fs::read(wal).unwrap_or_default();
    header
        .get(12..16)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .unwrap_or(0)
}

/// Runs `write` until the log has restarted `times` more times, for at most 30 seconds;
/// returns how many writes that took.
async fn write_until_the_log_restarts<F: std::future::Future<Output = ()>>(
    wal: &std::path::Path,
    times: u32,
    mut write: impl FnMut(usize) -> F,
) -> Result<usize, String> {
    let first = wal_restarts(wal);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut writes = 0;
    while wal_restarts(wal) < first + times {
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "the log restarted {} times in {writes} writes over 30 s",
                wal_restarts(wal) - first
            ));
        }
        for _ in 0..20 {
            write(writes).await;
            writes += 1;
        }
    }
    Ok(writes)
}

/// SQLite: under a steady stream of notifications the write-ahead log keeps starting again
/// from its beginning. A background checkpoint alone never lets it (a commit always lands
/// while it runs), so the log grew without end; the committer now finishes the checkpoint
/// between two batches when the log passes its limit (wal.rs).
#[tokio::test]
async fn steady_notifications_keep_the_write_ahead_log_restarting() {
    // Arrange: a small limit, and no forced restarts
    let (t, wal) = sqlite_with_wal(64, i64::MAX / 8192).await;
    new_order(&t.db, "WAL-1", 100).await;
    let body = notification("WAL-1", 100, "SUCCESS", "4200000001202611220000000099");
    let m = merchant();

    // Act: notifications one after another (the first applies, the rest are duplicates;
    // each is a commit of the group committer)
    let writes = write_until_the_log_restarts(&wal, 3, |_| async {
        let outcome = notify::receive_payment_notification(&t.db, &m, None, &body).await;
        assert!(outcome.verdict.acknowledged(), "{:?}", outcome.verdict);
    })
    .await;

    // Assert
    let stats = t.db.wal_stats().unwrap();
    assert!(writes.is_ok(), "{writes:?}; {stats:?}");
    assert!(stats.committer_checkpoints >= 1, "{stats:?}");
    assert_eq!(stats.forced_restarts, 0, "{stats:?}");
}

/// SQLite: when the log grows past its hard limit with no notification committer to
/// restart it (here: steady order creation), the background task forces a restart.
#[tokio::test]
async fn other_steady_writes_get_the_write_ahead_log_restarted_by_force() {
    // Arrange
    let (t, wal) = sqlite_with_wal(64, 256).await;

    // Act
    let writes = write_until_the_log_restarts(&wal, 2, |i| {
        let db = t.db.clone();
        async move {
            new_order(&db, &format!("WAL-F-{i}"), 100).await;
        }
    })
    .await;

    // Assert
    let stats = t.db.wal_stats().unwrap();
    assert!(writes.is_ok(), "{writes:?}; {stats:?}");
    assert!(stats.forced_restarts >= 1, "{stats:?}");
    assert_eq!(stats.committer_checkpoints, 0, "{stats:?}");
}
