//! Merchant alerts (a WeCom group robot or any JSON webhook) for paid orders: sent beside
//! the notification reply, never in front of it, retried until the webhook takes it, and
//! the robot's key never stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use paydesk_core::alerts;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use wxpay::notify::REPLY_SUCCESS;
use wxpay::SignType;

use crate::callbacks::{create_order, post_notification, signed_notification};
use crate::helpers::{spawn_apps_with, TestApp};

/// A fake webhook: records every body; answers each request with the next scripted answer
/// (the last one repeats), but only once `gate` has a permit. With `limits`, it first
/// refuses as a real WeCom group robot does: more than 20 messages in a minute (`errcode
/// 45009`), markdown over 4096 bytes (`errcode 40058`).
#[derive(Clone)]
struct Robot {
    bodies: Arc<Mutex<Vec<Value>>>,
    answers: Arc<Mutex<Vec<Value>>>,
    gate: Arc<Semaphore>,
    limits: bool,
    /// When each message arrived, and the errcode it got.
    log: Arc<Mutex<Vec<(std::time::Instant, i64)>>>,
}

async fn robot_handler(State(robot): State<Robot>, Json(body): Json<Value>) -> Json<Value> {
    let now = std::time::Instant::now();
    let content_bytes = body["markdown"]["content"].as_str().map_or(0, str::len);
    robot.bodies.lock().unwrap().push(body);
    robot.gate.acquire().await.unwrap().forget();
    let refusal = {
        let log = robot.log.lock().unwrap();
        let last_minute = log
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < Duration::from_secs(60))
            .count();
        if !robot.limits {
            None
        } else if last_minute >= 20 {
            Some(json!({ "errcode": 45009, "errmsg": "api freq out of limit" }))
        } else if content_bytes > 4096 {
            Some(json!({ "errcode": 40058, "errmsg": "markdown.content exceed max length 4096" }))
        } else {
            None
        }
    };
    let answer = refusal.unwrap_or_else(|| {
        let mut answers = robot.answers.lock().unwrap();
        if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers[0].clone()
        }
    });
    let code = answer["errcode"].as_i64().unwrap_or(0);
    robot.log.lock().unwrap().push((now, code));
    Json(answer)
}

async fn start_robot(answers: Vec<Value>, open: bool) -> (Robot, String) {
    start_robot_with(answers, open, false).await
}

async fn start_robot_with(answers: Vec<Value>, open: bool, limits: bool) -> (Robot, String) {
    let robot = Robot {
        bodies: Arc::default(),
        answers: Arc::new(Mutex::new(answers)),
        gate: Arc::new(Semaphore::new(if open { 1000 } else { 0 })),
        limits,
        log: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/cgi-bin/webhook/send?key=robot-secret-key-0001",
        listener.local_addr().unwrap()
    );
    let app = Router::new()
        .route("/cgi-bin/webhook/send", post(robot_handler))
        .with_state(robot.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (robot, url)
}

async fn wait_for_delivery(
    app: &TestApp,
    order_id: i64,
    done: impl Fn(&alerts::DeliveryStatus) -> bool,
) -> alerts::DeliveryStatus {
    for _ in 0..200 {
        if let Some(d) = alerts::for_order(&app.db.db, order_id).await.unwrap() {
            if done(&d) {
                return d;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{}: the alert for order {order_id} never got there",
        app.db.label
    );
}

/// An order paid straight in the database (no notification, no event: the alert jobs find
/// its row when they next look); its id.
async fn paid_behind_their_backs(app: &TestApp, no: &str, fee: i64, transaction_id: &str) -> i64 {
    let order = create_order(app, no, fee, SignType::Md5).await;
    let paid = paydesk_core::testing::pay_via(
        &app.db.db,
        paydesk_core::testing::PayPath::Single,
        order.id,
        transaction_id,
        None,
        paydesk_core::now_ms(),
    )
    .await
    .unwrap();
    assert!(paid, "{no}");
    order.id
}

#[tokio::test]
async fn a_paid_order_alerts_the_wecom_robot_without_delaying_the_reply_and_retries_until_taken() {
    let script = || {
        vec![
            json!({ "errcode": 45009, "errmsg": "api freq out of limit" }),
            json!({ "errcode": 0, "errmsg": "ok" }),
        ]
    };
    let (robot, url) = start_robot(script(), false).await;
    for app in spawn_apps_with(json!({ "alerts": { "webhook_url": url } })).await {
        // Arrange
        robot.bodies.lock().unwrap().clear();
        *robot.answers.lock().unwrap() = script();
        let order = create_order(&app, "ALERT-1", 2350, SignType::Md5).await;

        // Act: the robot holds the first alert while the notification is answered
        let (_, reply) =
            post_notification(&app.base, signed_notification(&app, "ALERT-1", 2350)).await;
        for _ in 0..200 {
            if !robot.bodies.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let first_try_held = robot.bodies.lock().unwrap().len();
        robot.gate.add_permits(1);
        let failed = wait_for_delivery(&app, order.id, |d| d.attempts == 1).await;
        // After a 45009 the robot's turn waits out its minute.
        let held: i64 = sqlx::query_scalar("select next_send_at from alert_settings")
            .fetch_one(app.db.db.reader())
            .await
            .unwrap();
        // Make the retry due now instead of in 10 s, and the robot's turn free.
        sqlx::query("update alert_deliveries set next_attempt_at = 0 where order_id = $1")
            .bind(order.id)
            .execute(app.db.db.writer())
            .await
            .unwrap();
        sqlx::query("update alert_settings set next_send_at = 0")
            .execute(app.db.db.writer())
            .await
            .unwrap();
        robot.gate.add_permits(1);
        let delivered = wait_for_delivery(&app, order.id, |d| d.status == "delivered").await;

        // Assert
        assert_eq!(reply, REPLY_SUCCESS, "{}", app.db.label);
        assert_eq!(
            first_try_held, 1,
            "the reply came while the robot still held the alert"
        );
        assert_eq!(failed.status, "pending");
        assert!(
            failed.last_error.as_deref().unwrap().contains("45009"),
            "{failed:?}"
        );
        assert!(
            held > paydesk_core::now_ms() + 40_000,
            "{}: the next message waits about a minute after a 45009",
            app.db.label
        );
        assert_eq!((delivered.attempts, delivered.http_status), (2, Some(200)));
        let bodies = robot.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2, "one alert, sent twice");
        let content = bodies[1]["markdown"]["content"].as_str().unwrap();
        assert_eq!(bodies[1]["msgtype"], "markdown");
        assert!(
            content.contains("¥23.50") && content.contains("ALERT-1"),
            "{content}"
        );
        assert!(content.contains("2026-11-22 18:30:00"), "{content}");
        let stored: Vec<(String, String)> =
            sqlx::query_as("select target, payload from alert_deliveries")
                .fetch_all(app.db.db.reader())
                .await
                .unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].0, "127.0.0.1");
        assert!(!stored[0].1.contains("robot-secret-key"));
    }
}

#[tokio::test]
async fn a_json_webhook_gets_the_paid_order_once_even_when_the_notification_repeats() {
    let (robot, url) = start_robot(vec![json!({ "received": true })], true).await;
    for app in spawn_apps_with(json!({ "alerts": { "webhook_url": url, "format": "json" } })).await
    {
        // Arrange
        robot.bodies.lock().unwrap().clear();
        let order = create_order(&app, "ALERT-J", 990, SignType::Md5).await;

        // Act
        for _ in 0..3 {
            let (_, reply) =
                post_notification(&app.base, signed_notification(&app, "ALERT-J", 990)).await;
            assert_eq!(reply, REPLY_SUCCESS);
        }
        wait_for_delivery(&app, order.id, |d| d.status == "delivered").await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Assert
        let bodies = robot.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1, "{}: {bodies:?}", app.db.label);
        assert_eq!(bodies[0]["event"], "order_paid");
        assert_eq!(bodies[0]["out_trade_no"], "ALERT-J");
        assert_eq!(bodies[0]["total_fee"], 990);
        assert_eq!(bodies[0]["amount"], "¥9.90");
    }
}

#[tokio::test]
async fn two_instances_send_each_queued_alert_once() {
    let (robot, url) = start_robot(vec![json!({ "received": true })], true).await;
    let settings = json!({ "alerts": { "webhook_url": url, "format": "json" } });
    for app in spawn_apps_with(settings.clone()).await {
        // Arrange: a second instance with the same webhook on the same database, and 30
        // orders paid behind both instances' backs (their rows due at once)
        robot.bodies.lock().unwrap().clear();
        let _second = crate::helpers::spawn_sibling(&app, settings.clone()).await;
        let mut ids = Vec::new();
        for k in 0..30 {
            let no = format!("ALERT-2I-{k}");
            ids.push(
                paid_behind_their_backs(&app, &no, 100 + k, &format!("4200000000202612071{k:09}"))
                    .await,
            );
        }

        // Act: both instances' alert jobs look for due rows every 2 s
        for id in &ids {
            wait_for_delivery(&app, *id, |d| d.status == "delivered").await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Assert: each order's alert reached the webhook exactly once
        let bodies = robot.bodies.lock().unwrap().clone();
        let mut sent: Vec<String> = bodies
            .iter()
            .map(|b| b["out_trade_no"].as_str().unwrap().to_owned())
            .collect();
        sent.sort();
        let mut expected: Vec<String> = (0..30).map(|k| format!("ALERT-2I-{k}")).collect();
        expected.sort();
        assert_eq!(sent, expected, "{}", app.db.label);
    }
}

#[tokio::test]
async fn an_instance_without_a_webhook_leaves_alerts_on_for_the_others() {
    let (robot, url) = start_robot(vec![json!({ "received": true })], true).await;
    let settings = json!({ "alerts": { "webhook_url": url, "format": "json" } });
    for app in spawn_apps_with(settings).await {
        // Arrange: a second instance on the database started without a webhook
        robot.bodies.lock().unwrap().clear();
        let _plain = crate::helpers::spawn_sibling(&app, json!({})).await;
        let order = create_order(&app, "ALERT-PLAIN", 880, SignType::Md5).await;

        // Act
        let (_, reply) =
            post_notification(&app.base, signed_notification(&app, "ALERT-PLAIN", 880)).await;
        let delivered = wait_for_delivery(&app, order.id, |d| d.status == "delivered").await;

        // Assert: alerts are still on, and this order's went out
        assert_eq!(reply, REPLY_SUCCESS);
        assert_eq!(delivered.attempts, 1, "{}", app.db.label);
        assert_eq!(
            alerts::configured_target(&app.db.db)
                .await
                .unwrap()
                .as_deref(),
            Some("127.0.0.1"),
            "{}",
            app.db.label
        );
        let bodies = robot.bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 1, "{}: {bodies:?}", app.db.label);
        assert_eq!(bodies[0]["out_trade_no"], "ALERT-PLAIN");
    }
}

/// The amount after the first `<font color="info">` of a robot message, in fen.
fn first_amount(content: &str) -> i64 {
    let from = content.find("<font color=\"info\">¥").unwrap() + "<font color=\"info\">¥".len();
    let text: String = content[from..]
        .chars()
        .take_while(|c| *c != '<')
        .filter(|c| *c != ',')
        .collect();
    let (yuan, fen) = text.split_once('.').unwrap();
    yuan.parse::<i64>().unwrap() * 100 + fen.parse::<i64>().unwrap()
}

#[tokio::test]
async fn bursts_of_payments_reach_a_robot_with_real_limits_as_a_few_messages_and_each_order_once() {
    let (robot, url) =
        start_robot_with(vec![json!({ "errcode": 0, "errmsg": "ok" })], true, true).await;
    let settings = json!({ "alerts": { "webhook_url": url } });
    for app in spawn_apps_with(settings.clone()).await {
        // Arrange: two instances with the robot; 3 waves of 40 payments, 1 s apart
        let l = app.db.label;
        robot.bodies.lock().unwrap().clear();
        robot.log.lock().unwrap().clear();
        let _second = crate::helpers::spawn_sibling(&app, settings.clone()).await;
        let mut ids = Vec::new();
        let mut total = 0;
        for wave in 0..3 {
            for k in 0..40 {
                let no = format!("ALERT-W{wave}-{k}");
                let fee = 100 + 40 * wave + k;
                let tid = format!("420000000020261208{wave}{k:09}");
                ids.push(paid_behind_their_backs(&app, &no, fee, &tid).await);
                total += fee;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }

        // Act: the alert jobs send what is due, taking turns
        for id in &ids {
            wait_for_delivery(&app, *id, |d| d.status == "delivered").await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Assert: never refused; messages at least 3 s apart; together they count every
        // order once and add up to the payments; each lists some of them by number
        let log = robot.log.lock().unwrap().clone();
        assert!(log.iter().all(|(_, code)| *code == 0), "{l}: {log:?}");
        for pair in log.windows(2) {
            let gap = pair[1].0.duration_since(pair[0].0);
            assert!(
                gap >= Duration::from_millis(2_900),
                "{l}: {gap:?} between messages"
            );
        }
        let bodies = robot.bodies.lock().unwrap().clone();
        assert!(
            bodies.len() < 10,
            "{l}: {} messages for 120 orders",
            bodies.len()
        );
        let (mut counted, mut summed) = (0, 0);
        let mut listed = std::collections::HashSet::new();
        for body in &bodies {
            let content = body["markdown"]["content"].as_str().unwrap();
            assert!(content.len() <= 4096, "{l}");
            counted += match content.split_once(" 笔新订单已支付**") {
                Some((head, _)) => head.trim_start_matches("**").parse::<i64>().unwrap(),
                None => 1,
            };
            summed += first_amount(content);
            for no in content.split(" · ").filter(|p| p.starts_with("ALERT-W")) {
                assert!(listed.insert(no.to_owned()), "{l}: {no} listed twice");
            }
        }
        assert_eq!(counted, 120, "{l}: {bodies:?}");
        assert_eq!(summed, total, "{l}");
        assert!(
            listed.len() >= bodies.len(),
            "{l}: each message lists orders"
        );
    }
}
