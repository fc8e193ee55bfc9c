//! A WeCom robot's alerts: one turn at a time among instances, read as one batch, and
//! recorded only while the turn is still the reader's.

use paydesk_core::alerts::{self, Attempt};
use paydesk_core::testing::{self, databases};

#[tokio::test]
async fn the_robots_turn_is_one_instances_and_a_stale_turn_records_nothing() {
    for t in databases().await {
        // Arrange: alerts on, three paid orders queued by the outbox
        let l = t.label;
        alerts::configure(&t.db, Some("qyapi.weixin.qq.com"))
            .await
            .unwrap();
        for (k, fee) in [120, 340, 560].into_iter().enumerate() {
            testing::paid_order(&t.db, &format!("AL-TURN-{k}"), fee).await;
        }

        // Act: one instance takes the turn, another asks for it
        let turn = alerts::take_robot_turn(&t.db).await.unwrap().unwrap();
        let other = alerts::take_robot_turn(&t.db).await.unwrap();
        let batch = alerts::due_batch(&t.db, 100, 2).await.unwrap().unwrap();
        let failed = Attempt::Failed {
            http_status: Some(200),
            error: "errcode 45009: api freq out of limit".into(),
        };
        let stale = alerts::record_batch(&t.db, &batch, turn + 1, &failed)
            .await
            .unwrap();
        let recorded = alerts::record_batch(&t.db, &batch, turn, &failed)
            .await
            .unwrap();
        let again = alerts::record_batch(&t.db, &batch, turn, &failed)
            .await
            .unwrap();
        alerts::robot_turn_done(&t.db, turn, 0).await.unwrap();
        let next = alerts::take_robot_turn(&t.db).await.unwrap();

        // Assert
        let wait = other.unwrap_err();
        assert!(
            wait > alerts::ROBOT_SEND_HOLD_MS - 5_000 && wait <= alerts::ROBOT_SEND_HOLD_MS,
            "{l}: {wait}"
        );
        assert_eq!((batch.count, batch.total_fen), (3, 1_020), "{l}");
        let listed: Vec<&str> = batch
            .first
            .iter()
            .map(|o| o.out_trade_no.as_str())
            .collect();
        assert_eq!(listed, ["AL-TURN-0", "AL-TURN-1"], "{l}");
        assert_eq!((stale, recorded, again), (0, 3, 0), "{l}");
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "select status, attempts, http_status from alert_deliveries order by id",
        )
        .fetch_all(t.db.reader())
        .await
        .unwrap();
        assert_eq!(rows, vec![("pending".to_owned(), 1, Some(200)); 3], "{l}");
        assert!(
            alerts::due_batch(&t.db, 100, 2).await.unwrap().is_none(),
            "{l}: retried in 10 s, not now"
        );
        assert!(next.is_ok(), "{l}: the turn was handed back");
    }
}

#[tokio::test]
async fn a_batch_is_delivered_or_retried_by_each_rows_attempts_until_the_last_fails() {
    for t in databases().await {
        // Arrange: two queued alerts, one of them already at its last attempt
        let l = t.label;
        alerts::configure(&t.db, Some("qyapi.weixin.qq.com"))
            .await
            .unwrap();
        for k in 0..2 {
            testing::paid_order(&t.db, &format!("AL-LAST-{k}"), 100).await;
        }
        let last = alerts::BACKOFF_SECONDS.len() as i64;
        sqlx::query("update alert_deliveries set attempts = $1 where out_trade_no = 'AL-LAST-1'")
            .bind(last)
            .execute(t.db.writer())
            .await
            .unwrap();
        let failed = Attempt::Failed {
            http_status: None,
            error: "timed out".into(),
        };

        // Act: a failure, then (made due again) a delivery
        let turn = alerts::take_robot_turn(&t.db).await.unwrap().unwrap();
        let batch = alerts::due_batch(&t.db, 100, 12).await.unwrap().unwrap();
        alerts::record_batch(&t.db, &batch, turn, &failed)
            .await
            .unwrap();
        alerts::robot_turn_done(&t.db, turn, 0).await.unwrap();
        let after_failure: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
            r#"select out_trade_no, status, attempts, http_status from alert_deliveries
               order by out_trade_no"#,
        )
        .fetch_all(t.db.reader())
        .await
        .unwrap();
        sqlx::query("update alert_deliveries set next_attempt_at = 0 where status = 'pending'")
            .execute(t.db.writer())
            .await
            .unwrap();
        let turn = alerts::take_robot_turn(&t.db).await.unwrap().unwrap();
        let batch = alerts::due_batch(&t.db, 100, 12).await.unwrap().unwrap();
        let delivered = Attempt::Delivered { http_status: 200 };
        let n = alerts::record_batch(&t.db, &batch, turn, &delivered)
            .await
            .unwrap();

        // Assert
        assert_eq!(
            after_failure,
            [
                ("AL-LAST-0".to_owned(), "pending".to_owned(), 1, None),
                ("AL-LAST-1".to_owned(), "failed".to_owned(), last + 1, None),
            ],
            "{l}"
        );
        assert_eq!((batch.count, n), (1, 1), "{l}: only the pending one");
        let status: (String, i64, Option<i64>) = sqlx::query_as(
            "select status, attempts, http_status from alert_deliveries where out_trade_no = 'AL-LAST-0'",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(status, ("delivered".to_owned(), 2, Some(200)), "{l}");
    }
}
