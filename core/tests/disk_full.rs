//! A full disk while WeChat Pay's callbacks keep arriving, on SQLite (a real `SQLITE_FULL`
//! from the engine: the database capped at its size with `pragma max_page_count`) and
//! PostgreSQL (its disk-full error, SQLSTATE 53100, raised by a trigger: the database
//! server's disk cannot be filled from a test). The verified callback is answered `FAIL` so
//! WeChat Pay resends it, kept in memory, and written once there is room; nothing verified
//! is lost, and the resend is applied once.

use paydesk_core::db::PoolSizes;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{Intake, Verdict};
use paydesk_core::orders::{self, OrderStatus};
use paydesk_core::testing::{self, TestDb};
use paydesk_core::{Backend, Db};

/// Fills the SQLite database, capped at its size, until the engine says it is full: rows of
/// nearly a page each in `notifications` itself, so the next notification row needs a new
/// page. Returns the error the engine gave.
async fn fill(db: &Db) -> sqlx::Error {
    let filler = "f".repeat(3900);
    for _ in 0..100_000 {
        let inserted = sqlx::query(
            r#"insert into notifications (kind, received_at, raw_body, verdict, detail, reply,
                   duration_us, created_at, updated_at)
               values ('payment', 0, $1, 'malformed', 'filler', 'FAIL', 0, 0, 0)"#,
        )
        .bind(&filler)
        .execute(db.writer())
        .await;
        if let Err(e) = inserted {
            return e;
        }
    }
    panic!("the capped database never filled up");
}

/// Makes `db` refuse writes as a full disk does: SQLite for real, PostgreSQL by its error.
/// Returns the database the intake must use (SQLite: a handle capped at the file's size).
async fn disk_full(t: &TestDb) -> Db {
    match t.db.backend() {
        Backend::Sqlite => {
            let full = Db::connect(
                &t.url,
                PoolSizes {
                    max_pages: Some(1),
                    ..PoolSizes::default()
                },
            )
            .await
            .unwrap();
            let e = fill(&full).await;
            let code = e
                .as_database_error()
                .and_then(|d| d.code().map(|c| c.into_owned()));
            assert_eq!(code.as_deref(), Some("13"), "SQLITE_FULL expected: {e}");
            full
        }
        Backend::Postgres => {
            sqlx::raw_sql(
                r#"create function disk_full() returns trigger language plpgsql as $$
                   begin raise exception 'could not extend file: No space left on device'
                       using errcode = 'disk_full'; end $$;
                   create trigger disk_full_orders before update on orders
                       for each row execute function disk_full();
                   create trigger disk_full_notifications before insert on notifications
                       for each row execute function disk_full();"#,
            )
            .execute(t.db.writer())
            .await
            .unwrap();
            t.db.clone()
        }
    }
}

/// Frees space again: the filler goes (SQLite), the triggers go (PostgreSQL).
async fn room_again(t: &TestDb, db: &Db) {
    let sql = match t.db.backend() {
        Backend::Sqlite => "delete from notifications where detail = 'filler'",
        Backend::Postgres => {
            "drop trigger disk_full_orders on orders; \
             drop trigger disk_full_notifications on notifications"
        }
    };
    sqlx::raw_sql(sql).execute(db.writer()).await.unwrap();
}

#[tokio::test]
async fn a_full_disk_answers_fail_keeps_the_verified_callback_and_writes_it_once_there_is_room() {
    let mut dbs = vec![testing::sqlite().await.unwrap()];
    dbs.extend(testing::postgres().await.unwrap());
    for t in dbs {
        // Arrange
        let label = t.label;
        let order = orders::create_order(&t.db, testing::new_order("FULL-1", 990))
            .await
            .unwrap();
        let db = disk_full(&t).await;
        let intake = Intake::new(
            db.clone(),
            std::sync::Arc::new(testing::merchant()),
            EventBus::new(),
        );
        let body = testing::paid_notification("FULL-1", 990);

        // Act: WeChat Pay delivers while the disk is full
        let out = intake.payment(Some("203.0.113.9".into()), &body).await;

        // Assert: FAIL (WeChat Pay resends), the order untouched, the callback kept
        assert_eq!(out.verdict, Verdict::InternalError, "{label}");
        assert!(
            out.reply_body.contains("FAIL"),
            "{label}: {}",
            out.reply_body
        );
        assert_eq!(intake.backlog_len(), 1, "{label}");
        let still = testing::stored_order(&db, "FULL-1").await;
        assert_eq!(still.status, OrderStatus::NotPay, "{label}");

        // Act: room again; the kept row is written, and WeChat Pay's resend is applied
        room_again(&t, &db).await;
        let written = intake.flush_backlog().await.unwrap();
        let resent = intake.payment(Some("203.0.113.9".into()), &body).await;

        // Assert
        assert_eq!(written, 1, "{label}");
        assert_eq!(intake.backlog_len(), 0, "{label}");
        assert_eq!(resent.verdict, Verdict::Applied, "{label}");
        let rows = paydesk_core::testing::recent_notifications(&db, Some("FULL-1"), 10)
            .await
            .unwrap();
        let mut verdicts: Vec<_> = rows.iter().map(|r| r.verdict).collect();
        verdicts.sort_by_key(|v| v.as_str());
        assert_eq!(
            verdicts,
            [Verdict::Applied, Verdict::InternalError],
            "{label}"
        );
        let late = rows
            .iter()
            .find(|r| r.verdict == Verdict::InternalError)
            .unwrap();
        assert_eq!(late.raw_body.as_bytes(), body.as_slice(), "{label}");
        assert_eq!(late.order_id, Some(order.id), "{label}");
        let paid_order = testing::stored_order(&db, "FULL-1").await;
        assert_eq!(paid_order.status, OrderStatus::Paid, "{label}");
        if db.backend() == Backend::Sqlite {
            db.close().await;
        }
    }
}
