//! Retention on SQLite and (when configured) PostgreSQL: the policy deletes exactly what is
//! old and keeps what must be kept, a dry run changes nothing and counts what the real run
//! then deletes, the daily claim runs once among several instances, every table has a
//! line, and every batch is an index range.

use paydesk_core::notify::Verdict;
use paydesk_core::retention::{self, Policy};
use paydesk_core::testing::{self, databases};
use paydesk_core::{now_ms, orders, Backend, Db};

const DAY: i64 = 86_400_000;

async fn exec(db: &Db, sql: &str, binds: &[i64]) {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.execute(db.writer()).await.unwrap();
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.reader())
        .await
        .unwrap()
}

async fn order(db: &Db, no: &str, created_at: i64) -> i64 {
    let o = orders::create_order(db, testing::new_order(no, 100))
        .await
        .unwrap();
    exec(
        db,
        "update orders set created_at = $1, updated_at = $1 where id = $2",
        &[created_at, o.id],
    )
    .await;
    o.id
}

async fn notification(db: &Db, verdict: Verdict, received_at: i64, order_id: Option<i64>) {
    sqlx::query(
        r#"insert into notifications (kind, received_at, peer, raw_body, verdict, detail, reply,
               duration_us, order_id, created_at, updated_at)
           values ('payment', $1, '203.0.113.9', $2, $3, 'test', $4, 1, $5, $1, $1)"#,
    )
    .bind(received_at)
    .bind(format!("<xml>{}</xml>", "x".repeat(100)))
    .bind(verdict.as_str())
    .bind(verdict.reply_code())
    .bind(order_id)
    .execute(db.writer())
    .await
    .unwrap();
}

/// Rows on both sides of every age, and old rows that are kept whatever their age.
async fn history(db: &Db, now: i64) -> (i64, i64) {
    let ancient = now - 5 * 365 * DAY;
    // Orders, refunds and the audit log older than every age.
    let paid = order(db, "RET-PAID", ancient).await;
    sqlx::query(
        r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
               requester, status, created_at, updated_at)
           values ('RF-RET-1', $1, 100, 'test', 'staff', 'admin', 'SUCCESS', $2, $2)"#,
    )
    .bind(paid)
    .bind(ancient)
    .execute(db.writer())
    .await
    .unwrap();
    exec(
        db,
        "insert into audit_log (created_at, actor, action) values ($1, 'admin', 'login.success')",
        &[ancient],
    )
    .await;

    // Notifications: every verdict, unmatched, old (100 days, over the 90) and recent (80
    // days); the applied and duplicate ones stay whatever their age; a refused one that
    // matched an order stays too.
    for verdict in Verdict::ALL {
        notification(db, verdict, now - 100 * DAY, None).await;
        notification(db, verdict, now - 80 * DAY, None).await;
        notification(db, verdict, ancient, None).await;
    }
    notification(db, Verdict::Applied, ancient, Some(paid)).await;
    notification(db, Verdict::AmountMismatch, ancient, Some(paid)).await;
    // A signed notification for an order we do not have: verified, so its transaction_id
    // is money WeChat Pay took; kept however old.
    exec(
        db,
        "update notifications set transaction_id = '4200000000202612070000000001' \
         where id = (select max(id) from notifications where verdict = 'unknown_order')",
        &[],
    )
    .await;

    // API calls: bodies older than 30 days go, the rows stay.
    for (age, with_bodies) in [(31, true), (400, true), (29, true), (400, false)] {
        sqlx::query(
            r#"insert into api_calls (endpoint, out_trade_no, return_code, latency_ms,
                   request_body, response_body, created_at, updated_at)
               values ('orderquery', 'RET-PAID', 'SUCCESS', 12, $1, $2, $3, $3)"#,
        )
        .bind(with_bodies.then_some("<xml>request</xml>"))
        .bind(with_bodies.then_some("<xml>response</xml>"))
        .bind(now - age * DAY)
        .execute(db.writer())
        .await
        .unwrap();
    }

    // Sessions and mini-program tokens: expired over a day ago go; expired an hour ago and
    // live ones stay.
    for (id, expiry) in [
        ("s-old", now - 2 * DAY),
        ("s-hour", now - 3_600_000),
        ("s-live", now + DAY),
    ] {
        sqlx::query("insert into sessions (id, data, expiry_date) values ($1, '{}', $2)")
            .bind(id)
            .bind(expiry)
            .execute(db.writer())
            .await
            .unwrap();
    }
    let customer: i64 = sqlx::query_scalar(
        r#"insert into customers (openid, first_seen, last_seen, created_at, updated_at)
           values ('o-ret', $1, $1, $1, $1) returning id"#,
    )
    .bind(ancient)
    .fetch_one(db.writer())
    .await
    .unwrap();
    for (hash, expiry) in [
        ("t-old", now - 3 * DAY),
        ("t-hour", now - 3_600_000),
        ("t-live", now + DAY),
    ] {
        sqlx::query(
            r#"insert into mp_sessions (token_hash, customer_id, session_key, expires_at,
                   created_at, updated_at)
               values ($1, $2, 'k', $3, $3, $3)"#,
        )
        .bind(hash)
        .bind(customer)
        .bind(expiry)
        .execute(db.writer())
        .await
        .unwrap();
    }

    // Alert deliveries: ended over 30 days ago go; pending ones stay however old.
    for (no, status, age) in [
        ("RET-A1", "delivered", 31),
        ("RET-A2", "failed", 40),
        ("RET-A3", "pending", 400),
        ("RET-A4", "delivered", 29),
    ] {
        let id = order(db, no, now - age * DAY).await;
        sqlx::query(
            r#"insert into alert_deliveries (order_id, out_trade_no, target, payload, status,
                   attempts, created_at, updated_at)
               values ($1, $2, 'example.com', '{"event":"order_paid"}', $3, 1, $4, $4)"#,
        )
        .bind(id)
        .bind(no)
        .bind(status)
        .bind(now - age * DAY)
        .execute(db.writer())
        .await
        .unwrap();
    }
    (paid, customer)
}

#[tokio::test]
async fn the_policy_deletes_exactly_what_is_old_and_keeps_what_must_be_kept() {
    for t in databases().await {
        // Arrange
        let db = &t.db;
        let now = now_ms();
        history(db, now).await;
        let notifications_before = count(db, "select count(*) from notifications").await;
        let policy = Policy::default();
        let refused_verdicts = Verdict::ALL.iter().filter(|v| v.is_failure()).count();

        // Act: a dry run, then the real run in batches of two (so the loop must go on)
        let preview = retention::preview(db, &policy, now).await.unwrap();
        let after_preview = count(db, "select count(*) from notifications").await;
        let report = retention::prune_in_batches(db, &policy, now, 2)
            .await
            .unwrap();
        let again = retention::preview(db, &policy, now).await.unwrap();

        // Assert: the dry run changed nothing and counted what the run then did
        let label = t.label;
        assert_eq!(after_preview, notifications_before, "{label}");
        let rows = |r: &retention::Report| {
            r.lines
                .iter()
                .map(|l| (l.name.clone(), l.rows))
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(&preview), rows(&report), "{label}");
        assert_eq!(again.total_rows(), 0, "{label}: {:?}", again);
        assert_eq!(
            report.rows("notifications.refused"),
            2 * refused_verdicts as u64 - 1,
            "{label}"
        );
        assert_eq!(report.rows("api_calls.bodies"), 2, "{label}");
        assert_eq!(report.rows("sessions"), 1, "{label}");
        assert_eq!(report.rows("mp_sessions"), 1, "{label}");
        assert_eq!(report.rows("alert_deliveries"), 2, "{label}");
        let bytes = preview
            .lines
            .iter()
            .find(|l| l.name == "api_calls.bodies")
            .and_then(|l| l.bytes);
        assert_eq!(
            bytes,
            Some(2 * ("<xml>request</xml>".len() + "<xml>response</xml>".len()) as i64),
            "{label}"
        );

        // Kept: everything that is no failure, the matched refusal, the recent refusals
        let kept = |sql: &'static str| count(db, sql);
        assert_eq!(
            kept("select count(*) from notifications where verdict in ('applied', 'duplicate')")
                .await,
            7,
            "{label}"
        );
        assert_eq!(
            kept("select count(*) from notifications where order_id is not null").await,
            2,
            "{label}"
        );
        assert_eq!(
            kept(
                "select count(*) from notifications \
                 where verdict not in ('applied', 'duplicate', 'result_fail')"
            )
            .await,
            refused_verdicts as i64 + 2,
            "{label}: the recent ones, the matched one and the verified unknown order"
        );
        // API call rows all stay; bodies only on the recent one.
        assert_eq!(kept("select count(*) from api_calls").await, 4, "{label}");
        assert_eq!(
            kept("select count(*) from api_calls where request_body is not null").await,
            1,
            "{label}"
        );
        assert_eq!(
            kept("select count(*) from sessions where id in ('s-hour', 's-live')").await,
            2,
            "{label}"
        );
        assert_eq!(kept("select count(*) from sessions").await, 2, "{label}");
        assert_eq!(
            kept("select count(*) from mp_sessions where token_hash in ('t-hour', 't-live')").await,
            2,
            "{label}"
        );
        assert_eq!(kept("select count(*) from mp_sessions").await, 2, "{label}");
        assert_eq!(
            kept(
                "select count(*) from alert_deliveries where out_trade_no in ('RET-A3', 'RET-A4')"
            )
            .await,
            2,
            "{label}"
        );
        assert_eq!(
            kept("select count(*) from alert_deliveries").await,
            2,
            "{label}"
        );
        // The books, whatever their age.
        assert_eq!(kept("select count(*) from orders").await, 5, "{label}");
        assert_eq!(kept("select count(*) from refunds").await, 1, "{label}");
        assert_eq!(kept("select count(*) from audit_log").await, 1, "{label}");
        assert_eq!(kept("select count(*) from customers").await, 1, "{label}");
    }
}

#[tokio::test]
async fn the_daily_run_is_claimed_once_among_instances() {
    for t in databases().await {
        // Arrange: two instances on one database
        let label = t.label;
        let other = Db::connect(&t.url, Default::default()).await.unwrap();
        let day = 86_400_000;
        // 2026-12-07 05:00 in Shanghai (16:00 UTC the day before is midnight there).
        let now = 1_796_572_800_000 + 5 * 3_600_000;
        let lease = 1_800_000;

        // Act / Assert: before the run time nothing is claimed
        assert_eq!(
            retention::claim_day(&t.db, "a", now, 6 * 60, lease)
                .await
                .unwrap(),
            None,
            "{label}"
        );
        // Both at once: exactly one gets the day
        let (a, b) = tokio::join!(
            retention::claim_day(&t.db, "a", now, 4 * 60, lease),
            retention::claim_day(&other, "b", now, 4 * 60, lease),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() ^ b.is_some(), "{label}: {a:?} {b:?}");
        let (holder, today) = if let Some(d) = a {
            ("a", d)
        } else {
            ("b", b.unwrap())
        };
        // While it runs, and once it is done, nobody gets the same day again
        assert_eq!(
            retention::claim_day(&other, "c", now + 60_000, 4 * 60, lease)
                .await
                .unwrap(),
            None,
            "{label}"
        );
        let report = retention::preview(&t.db, &Policy::default(), now)
            .await
            .unwrap();
        retention::record_run(&t.db, &report, Some((holder, today)))
            .await
            .unwrap();
        assert_eq!(
            retention::claim_day(&other, "c", now + 2 * lease, 4 * 60, lease)
                .await
                .unwrap(),
            None,
            "{label}: done today"
        );
        let (_, last) = retention::last_run(&t.db).await.unwrap().unwrap();
        assert_eq!(last, report, "{label}");
        // The next day it is due again; a holder that dies keeps it only until its lease ends
        assert_eq!(
            retention::claim_day(&other, "c", now + day, 4 * 60, lease)
                .await
                .unwrap(),
            Some(today + 1),
            "{label}"
        );
        assert_eq!(
            retention::claim_day(&t.db, "d", now + day + 1000, 4 * 60, lease)
                .await
                .unwrap(),
            None,
            "{label}: leased to c"
        );
        // Leases follow the database's clock: c's runs out when that clock passes it.
        sqlx::query("update job_leases set leased_until = leased_until - $1 where holder = 'c'")
            .bind(lease + 1000)
            .execute(t.db.writer())
            .await
            .unwrap();
        assert_eq!(
            retention::claim_day(&t.db, "d", now + day + 1000, 4 * 60, lease)
                .await
                .unwrap(),
            Some(today + 1),
            "{label}: c's lease ran out"
        );
        other.close().await;
    }
}

/// Every table in the schema, from the engine's catalogue.
async fn tables(db: &Db) -> Vec<String> {
    let sql = match db.backend() {
        Backend::Sqlite => {
            "select name from sqlite_master where type = 'table' \
             and name not like 'sqlite_%' and name <> '_sqlx_migrations'"
        }
        Backend::Postgres => {
            "select table_name::text from information_schema.tables \
             where table_schema = 'public' and table_name <> '_sqlx_migrations'"
        }
    };
    sqlx::query_scalar(sql)
        .fetch_all(db.reader())
        .await
        .unwrap()
}

#[tokio::test]
async fn retention_lines_cover_every_table() {
    for t in databases().await {
        let lines: Vec<&str> = retention::rules().iter().map(|r| r.table).collect();
        let missing: Vec<String> = tables(&t.db)
            .await
            .into_iter()
            .filter(|table| !lines.contains(&table.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: tables without a retention line in core/src/retention.rs (a delete with its \
             age, or kept with the reason): {missing:?}",
            t.label
        );
    }
}

#[tokio::test]
async fn every_batch_is_an_index_range() {
    for t in databases().await {
        let db = &t.db;
        for rule in retention::rules() {
            let Some(batch) = retention::batch(&rule, &Policy::default(), now_ms()) else {
                continue;
            };
            let sql = &batch.sql;
            let plan: Vec<String> = match db.backend() {
                Backend::Sqlite => {
                    let explain = retention::Batch {
                        sql: format!("explain query plan {sql}"),
                        ..batch.clone()
                    };
                    let rows = explain.query(1, 0).fetch_all(db.reader()).await.unwrap();
                    rows.iter()
                        .map(|r| sqlx::Row::get::<String, _>(r, 3))
                        .collect()
                }
                Backend::Postgres => {
                    // On a small table PostgreSQL rightly reads it whole; with sequential
                    // scans priced out it shows whether an index can serve the batch.
                    let mut tx = db.writer().begin().await.unwrap();
                    sqlx::query("set local enable_seqscan = off")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    let explain = retention::Batch {
                        sql: format!("explain {sql}"),
                        ..batch.clone()
                    };
                    let plan = explain
                        .query(1, 0)
                        .fetch_all(&mut *tx)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| sqlx::Row::get::<String, _>(r, 0))
                        .collect();
                    tx.rollback().await.unwrap();
                    plan
                }
            };
            let text = plan.join("\n");
            assert!(
                !text.contains("SCAN ") && !text.contains("Seq Scan"),
                "{}: {} reads its table whole:\n{sql}\n{text}",
                t.label,
                rule.name
            );
            // SQLite plans without statistics, as it will in production: the batch must be a
            // range of the age column, not of another indexed column.
            if db.backend() == Backend::Sqlite {
                let column = match &rule.action {
                    retention::Action::Delete { column, .. }
                    | retention::Action::Clear { column, .. } => *column,
                    retention::Action::Kept => unreachable!("kept lines have no batch"),
                };
                assert!(
                    text.contains(&format!("{column}<?")),
                    "{}: not a range of {column}:\n{sql}\n{text}",
                    rule.name
                );
            }
        }
    }
}
