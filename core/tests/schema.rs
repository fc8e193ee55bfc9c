//! The schema's checks against the code's enums, on SQLite and (when configured)
//! PostgreSQL: every status and verdict the code can write is accepted, a name it cannot
//! write is refused. On SQLite also how the checks run: the statements every payment runs
//! build no temporary B-tree (migration 20261213000010: `in (…)` lists of more than two
//! constants in a CHECK did, on every execution).

use paydesk_core::notify::Verdict;
use paydesk_core::orders::OrderStatus;
use paydesk_core::refunds::RefundStatus;
use paydesk_core::testing::{self, databases};
use paydesk_core::Db;
use sqlx::Connection as _;

async fn exec(db: &Db, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(db.writer()).await.map(|_| ())
}

fn is_check_failure(e: &sqlx::Error) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("check constraint") || text.contains("violates check")
}

#[tokio::test]
async fn every_status_and_verdict_the_code_writes_passes_the_checks_and_nothing_else_does() {
    for t in databases().await {
        let db = &t.db;
        let label = t.label;

        // Orders: each status the code knows, then one it does not.
        for (i, status) in OrderStatus::ALL.iter().enumerate() {
            exec(
                db,
                &format!(
                    "insert into orders (out_trade_no, openid, description, total_fee, status, \
                     sign_type, created_at, updated_at) \
                     values ('S{i}', 'o', 'd', 100, '{}', 'MD5', 1, 1)",
                    status.as_str()
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: order status {status} refused: {e}"));
        }
        let e = exec(
            db,
            "insert into orders (out_trade_no, openid, description, total_fee, status, \
             sign_type, created_at, updated_at) values ('SX', 'o', 'd', 100, 'PAID ', 'MD5', 1, 1)",
        )
        .await
        .expect_err("an unknown order status must be refused");
        assert!(is_check_failure(&e), "{label}: {e}");
        let e = exec(
            db,
            "update orders set status = 'paid' where out_trade_no = 'S0'",
        )
        .await
        .expect_err("an update to an unknown order status must be refused");
        assert!(is_check_failure(&e), "{label}: {e}");
        let order_id: i64 = sqlx::query_scalar("select id from orders where out_trade_no = 'S0'")
            .fetch_one(db.reader())
            .await
            .unwrap();

        // Notifications: each verdict.
        let insert_notification = |verdict: &str| {
            format!(
                "insert into notifications (kind, received_at, raw_body, verdict, detail, reply, \
                 duration_us, order_id, created_at, updated_at) \
                 values ('payment', 1, '<xml/>', '{verdict}', '', 'SUCCESS', 1, {order_id}, 1, 1)"
            )
        };
        for verdict in Verdict::ALL {
            exec(db, &insert_notification(verdict.as_str()))
                .await
                .unwrap_or_else(|e| panic!("{label}: verdict {verdict} refused: {e}"));
        }
        let e = exec(db, &insert_notification("applied2"))
            .await
            .expect_err("an unknown verdict must be refused");
        assert!(is_check_failure(&e), "{label}: {e}");

        // Refunds: each status.
        let insert_refund = |no: &str, status: &str| {
            format!(
                "insert into refunds (out_refund_no, order_id, amount_fen, reason, \
                 requester_kind, requester, status, created_at, updated_at) \
                 values ('{no}', {order_id}, 1, 'r', 'staff', 's', '{status}', 1, 1)"
            )
        };
        for (i, status) in RefundStatus::ALL.iter().enumerate() {
            exec(db, &insert_refund(&format!("R{i}"), status.as_str()))
                .await
                .unwrap_or_else(|e| panic!("{label}: refund status {status} refused: {e}"));
        }
        let e = exec(db, &insert_refund("RX", "DONE"))
            .await
            .expect_err("an unknown refund status must be refused");
        assert!(is_check_failure(&e), "{label}: {e}");

        // Alert deliveries: the three states the alert job writes.
        for (i, status) in ["pending", "delivered", "failed"].iter().enumerate() {
            let order: i64 = sqlx::query_scalar(&format!(
                "select id from orders where out_trade_no = 'S{}'",
                i + 1
            ))
            .fetch_one(db.reader())
            .await
            .unwrap();
            exec(
                db,
                &format!(
                    "insert into alert_deliveries (order_id, out_trade_no, target, payload, \
                     status, created_at, updated_at) values ({order}, 'S', 't', '', '{status}', 1, 1)"
                ),
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: alert status {status} refused: {e}"));
        }
        let e = exec(
            db,
            &format!(
                "insert into alert_deliveries (order_id, out_trade_no, target, payload, status, \
                 created_at, updated_at) values ({order_id}, 'S', 't', '', 'sent', 1, 1)"
            ),
        )
        .await
        .expect_err("an unknown alert status must be refused");
        assert!(is_check_failure(&e), "{label}: {e}");
    }
}

#[tokio::test]
async fn a_payments_statements_build_no_temporary_btree_on_sqlite() {
    let t = testing::sqlite().await.unwrap();
    // The committer's own statements (their `?N` parameters as nulls: `explain` only
    // compiles), and the alert trigger's insert as the trigger runs it.
    let mut statements: Vec<String> = testing::sqlite_committer_statements()
        .iter()
        .map(|sql| {
            (1..=20).rev().fold(sql.to_string(), |sql, i| {
                sql.replace(&format!("?{i}"), "null")
            })
        })
        .collect();
    statements.push(
        "insert into alert_deliveries (order_id, out_trade_no, target, payload, status, \
         attempts, next_attempt_at, created_at, updated_at) \
         values (1, 'S', 't', '', 'pending', 0, 1, 1, 1)"
            .to_owned(),
    );
    // A connection of its own, opened after the migrations: `explain` compiles with the
    // schema a connection holds and, unlike a statement that runs, never checks whether
    // another connection changed it since (a pool's connection may still hold the schema
    // it read before the migrations ran).
    let mut conn = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    for sql in &statements {
        let rows: Vec<(i64, String)> = sqlx::query_as(&format!("explain {sql}"))
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("explain {sql}: {e}"));
        let ephemeral = rows.iter().filter(|(_, op)| op == "OpenEphemeral").count();
        assert_eq!(
            ephemeral, 0,
            "this statement builds {ephemeral} temporary B-tree(s) per execution \
             (an `in (…)` list of more than two constants in a CHECK?): {sql}"
        );
    }
}
