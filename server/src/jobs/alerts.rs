//! Merchant alerts: for each paid order, a POST to the configured webhook (a WeCom group
//! robot by default). The delivery row is queued in the payment's own transaction (the
//! outbox of [`paydesk_core::alerts`]); this job claims due rows, sends them and retries
//! with backoff. A JSON webhook gets one POST per order, its body built from the order on
//! the first attempt. A WeCom robot takes 20 messages a minute (`errcode 45009` beyond), so
//! it gets one message per turn covering every order due, the first few listed and the rest
//! counted and summed; the turn is shared by the instances ([`alerts::take_robot_turn`]),
//! one every [`alerts::ROBOT_GAP_MS`]. The job looks at once when an order is paid (the
//! event bus) and every [`TICK`] for the rest (retries, rows another instance's crash
//! left), so the notification reply never waits for it and no alert waits for a restart.
//! Logs name the webhook's host only: its URL carries the robot's key.

use std::sync::Arc;
use std::time::Duration;

use paydesk_core::alerts::{self, Attempt, Delivery};
use paydesk_core::events::Event;
use paydesk_core::{orders, Db, Fen};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;

use super::Stop;
use crate::state::AppState;

/// How often queued retries (and deliveries left by a restart) are looked for.
const TICK: Duration = Duration::from_secs(2);
/// How many alerts one round claims, at most: one write records them all.
const ROUND: i64 = 256;
/// How many of a round are being sent at once.
const CONCURRENT: usize = 32;
/// A round starts this long after the payment that called for it, and follows a full one
/// after this pause: on SQLite every write of another connection empties the notification
/// committer's page cache and waits for its lock, so the alert job writes a few times a
/// second, not once per payment (docs/benchmarks.md, issue 20).
const PACE: Duration = Duration::from_millis(100);
/// How long the webhook gets to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many orders in one robot message: with a turn every 3 s, 3,333 alerts a
/// second; beyond, the rest wait for the next turns.
const ROBOT_BATCH: i64 = 10_000;
/// Orders a robot message lists one by one (as many as fit); the rest are counted and summed.
const ROBOT_LISTED: usize = 12;
/// The most a WeCom markdown message may hold, in bytes of UTF-8 (`errcode 40058` beyond).
const WECOM_MAX_BYTES: usize = 4096;
/// The most characters of an order's description a robot message shows.
const DESCRIPTION_CHARS: usize = 24;

/// The body the webhook gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A WeCom group robot markdown message; success is `{"errcode":0}`.
    WeCom,
    /// The order as JSON; success is any 2xx.
    Json,
}

struct Sender {
    db: Db,
    url: SecretString,
    /// The webhook's host ([`target_host`]).
    target: String,
    format: Format,
    http: reqwest::Client,
}

/// The webhook's host, the only part of its URL that is logged or stored.
pub fn target_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "webhook".into())
}

pub(super) async fn run(state: AppState, url: SecretString, format: Format, mut stop: Stop) {
    let mut events = state.events.subscribe();
    let target = target_host(url.expose_secret());
    let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "merchant alerts disabled: no HTTP client");
            return;
        }
    };
    let sender = Arc::new(Sender {
        db: state.db.clone(),
        url,
        target: target.clone(),
        format,
        http,
    });
    tracing::info!(%target, "merchant alerts on");
    // This instance keeps the outbox on while it runs (startup turned it on).
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            received = events.recv() => match received {
                // Its row was written with the payment; a lag loses nothing but the hurry.
                Ok(Event::OrderPaid { .. }) | Err(RecvError::Lagged(_)) => {
                    // One round for a burst of payments, not one per payment.
                    if stop.sleep(PACE).await {
                        break;
                    }
                    while events.try_recv().is_ok() {}
                }
                Ok(_) => continue,
                Err(RecvError::Closed) => break,
            },
            done = stop.sleep(TICK) => {
                if done {
                    break;
                }
            }
        }
        let mut again = sender.send_due(&stop, &mut renewed).await;
        // A robot's turn is not free yet, or more are due than one message took.
        while let Some(wait) = again {
            // Not longer than a tick: a holder that frees the turn early is not waited out.
            if stop.sleep(wait.min(TICK)).await {
                return;
            }
            while !matches!(
                events.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {}
            again = sender.send_due(&stop, &mut renewed).await;
        }
    }
}

impl Sender {
    /// Keeps the outbox on (every [`alerts::RENEW_MS`]) and sends what is due: how long to
    /// wait before calling again, when it should be called before the next payment or tick.
    async fn send_due(
        self: &Arc<Self>,
        stop: &Stop,
        renewed: &mut tokio::time::Instant,
    ) -> Option<Duration> {
        if renewed.elapsed() >= Duration::from_millis(alerts::RENEW_MS.unsigned_abs()) {
            match alerts::configure(&self.db, Some(&self.target)).await {
                Ok(()) => *renewed = tokio::time::Instant::now(),
                Err(e) => {
                    tracing::warn!(error = %e, "keeping merchant alerts on failed; tried again at the next tick")
                }
            }
        }
        match self.format {
            Format::WeCom => self.send_to_robot().await,
            Format::Json => {
                send_due(self, stop).await;
                None
            }
        }
    }

    /// One message to the robot for every order due (up to [`ROBOT_BATCH`]), when it is
    /// this instance's turn; how long until the next turn when more are waiting.
    async fn send_to_robot(&self) -> Option<Duration> {
        let db = &self.db;
        match alerts::any_due(db).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "looking for due merchant alerts failed");
                return None;
            }
        }
        let turn = match alerts::take_robot_turn(db).await {
            Ok(Ok(turn)) => turn,
            Ok(Err(wait_ms)) => return Some(Duration::from_millis(wait_ms.unsigned_abs())),
            Err(e) => {
                tracing::warn!(error = %e, "taking the robot's turn failed");
                return None;
            }
        };
        let batch = match alerts::due_batch(db, ROBOT_BATCH, ROBOT_LISTED).await {
            Ok(Some(batch)) => batch,
            outcome => {
                if let Err(e) = outcome {
                    tracing::warn!(error = %e, "reading due merchant alerts failed");
                }
                // Another instance's message took them: the turn is free again at once.
                self.end_robot_turn(turn, 0).await;
                return None;
            }
        };
        let message = robot_message(&batch);
        let outcome = self.send(&message.to_string()).await;
        let target = &self.target;
        let refused =
            matches!(&outcome, Attempt::Failed { error, .. } if error.starts_with("errcode 45009"));
        match &outcome {
            Attempt::Delivered { http_status } => tracing::info!(
                %target,
                orders = batch.count,
                total = %Fen(batch.total_fen).display_yuan(),
                http_status,
                "merchant alert delivered"
            ),
            Attempt::Failed { http_status, error } => tracing::warn!(
                %target,
                orders = batch.count,
                http_status,
                %error,
                "merchant alert not delivered; will retry"
            ),
        }
        // A message sent but not recorded would be sent again at the next turn: the record
        // is tried a few times, and when it still fails the turn is kept until its hold
        // runs out (15 s), not handed on after the usual gap.
        let mut recorded = None;
        for wait_ms in [0, 200, 1_000, 3_000] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match alerts::record_batch(db, &batch, turn, &outcome).await {
                Ok(n) => {
                    recorded = Some(n);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, alerts = batch.ids.len(), "recording merchant alert attempts failed; trying again")
                }
            }
        }
        match recorded {
            Some(n) if n < batch.ids.len() as u64 => tracing::warn!(
                alerts = batch.ids.len() as u64 - n,
                "the robot's turn ran out while its message was sent; another instance sends those alerts again"
            ),
            Some(_) => {}
            None => {
                tracing::error!(alerts = batch.ids.len(), "recording merchant alert attempts failed; they are sent again when the robot's turn runs out");
                return None;
            }
        }
        // A 45009 (the robot is shared with another sender) waits out the robot's minute.
        self.end_robot_turn(
            turn,
            if refused {
                alerts::ROBOT_HOLD_MS
            } else {
                alerts::ROBOT_GAP_MS
            },
        )
        .await;
        let full = i64::try_from(batch.ids.len()).unwrap_or(i64::MAX) >= ROBOT_BATCH;
        (full && !refused).then(|| Duration::from_millis(alerts::ROBOT_GAP_MS.unsigned_abs()))
    }

    async fn end_robot_turn(&self, turn: i64, after_ms: i64) {
        if let Err(e) = alerts::robot_turn_done(&self.db, turn, after_ms).await {
            tracing::warn!(error = %e, "giving the robot's turn back failed; it frees itself in a minute");
        }
    }
}

/// The robot message for a batch: one order as [`payload`] shows it; several as a count and
/// total, the first listed one per line while they fit in [`WECOM_MAX_BYTES`], the rest
/// counted and summed.
pub fn robot_message(batch: &alerts::Batch) -> serde_json::Value {
    if let ([only], 1) = (batch.first.as_slice(), batch.count) {
        return payload(Format::WeCom, only);
    }
    let mut content = format!(
        "**{} 笔新订单已支付** 合计 <font color=\"info\">{}</font>",
        batch.count,
        Fen(batch.total_fen).display_yuan()
    );
    // Room for the closing line, whatever its numbers.
    let reserve = 120;
    let (mut listed, mut listed_fen) = (0_i64, 0_i64);
    for o in &batch.first {
        let line = format!(
            "\n>{} {} · {} · {}",
            Fen(o.total_fee).display_yuan(),
            plain(&o.description, DESCRIPTION_CHARS),
            o.out_trade_no,
            o.paid_at
                .map(paydesk_types::format_shanghai)
                .unwrap_or_default()
        );
        if content.len() + line.len() + reserve > WECOM_MAX_BYTES {
            break;
        }
        content.push_str(&line);
        listed += 1;
        listed_fen += o.total_fee;
    }
    let rest = batch.count - listed;
    if rest > 0 {
        content.push_str(&format!(
            "\n>……另有 {rest} 笔，合计 {}",
            Fen(batch.total_fen - listed_fen).display_yuan()
        ));
    }
    json!({ "msgtype": "markdown", "markdown": { "content": content } })
}

/// Text from an order for a markdown line: one line, no markup or entities, at most `max`
/// characters.
fn plain(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            '&' => '＆',
            '*' | '`' | '[' | ']' | '\u{2028}' | '\u{2029}' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// A JSON webhook's alerts: sends what is due in rounds of up to [`ROUND`] at once: each round's attempts are
/// recorded, and the next round claimed, in one transaction ([`alerts::record_and_claim`]),
/// until a round comes back short. Stopping, the round in flight is finished and recorded
/// (a send cut off would be sent again by another instance once its claim ran out) and no
/// other is claimed.
async fn send_due(sender: &Arc<Sender>, stop: &Stop) {
    let mut due = match alerts::claim_due(&sender.db, ROUND).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "looking for due merchant alerts failed");
            return;
        }
    };
    while !due.is_empty() {
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= ROUND;
        let mut sending = JoinSet::new();
        let mut attempts = Vec::new();
        let mut finished = |done: Option<Result<Option<(Delivery, Attempt)>, _>>| match done {
            Some(Ok(Some(attempt))) => attempts.push(attempt),
            Some(Err(e)) => {
                tracing::error!(error = %e, "a merchant alert task panicked; its claim runs out")
            }
            _ => {}
        };
        for delivery in due {
            while sending.len() >= CONCURRENT {
                finished(sending.join_next().await);
            }
            let s = sender.clone();
            sending.spawn(async move { s.attempt(delivery).await });
        }
        while let Some(done) = sending.join_next().await {
            finished(Some(done));
        }
        let next = if full && !stop.is_set() { ROUND } else { 0 };
        match alerts::record_and_claim(&sender.db, &attempts, next).await {
            Ok((recorded, next_due)) => {
                for ((delivery, _), recorded) in attempts.iter().zip(recorded) {
                    if !recorded {
                        tracing::warn!(order.out_trade_no = %delivery.out_trade_no, "a merchant alert's claim ran out while it was sent; another instance has it");
                    }
                }
                due = next_due;
                if !due.is_empty() {
                    tokio::time::sleep(PACE).await;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, alerts = attempts.len(), "recording merchant alert attempts failed; their claims run out and they are sent again");
                return;
            }
        }
    }
}

/// The message for a paid order.
pub fn payload(format: Format, order: &alerts::AlertOrder) -> serde_json::Value {
    let amount = Fen(order.total_fee).display_yuan();
    let paid_at = order
        .paid_at
        .map(paydesk_types::format_shanghai)
        .unwrap_or_default();
    match format {
        Format::WeCom => json!({
            "msgtype": "markdown",
            "markdown": {
                "content": format!(
                    "**新订单已支付** <font color=\"info\">{amount}</font>\n>商品：{}\n>商户订单号：{}\n>微信支付单号：{}\n>支付时间：{paid_at}",
                    plain(&order.description, DESCRIPTION_CHARS * 4),
                    order.out_trade_no,
                    order.transaction_id.as_deref().unwrap_or("-"),
                )
            }
        }),
        Format::Json => json!({
            "event": "order_paid",
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
            "total_fee": order.total_fee,
            "amount": amount,
            "description": order.description,
            "paid_at": order.paid_at,
            "paid_at_shanghai": paid_at,
        }),
    }
}

impl Sender {
    /// The body of a claimed delivery: the one stored, or (first attempt) built from the
    /// order; [`alerts::record_attempt`] stores it with the attempt, so every retry sends
    /// the same.
    async fn with_payload(
        &self,
        mut delivery: Delivery,
    ) -> Result<Delivery, paydesk_core::CoreError> {
        if delivery.payload.is_empty() {
            let order = orders::find_by_out_trade_no(&self.db, &delivery.out_trade_no)
                .await?
                .ok_or(paydesk_core::CoreError::NotFound)?;
            delivery.payload = payload(self.format, &(&order).into()).to_string();
        }
        Ok(delivery)
    }

    /// One attempt at a claimed delivery, logged; what to record (`None` when its body
    /// could not be built: the claim runs out and a later round tries again).
    async fn attempt(&self, delivery: Delivery) -> Option<(Delivery, Attempt)> {
        let no = delivery.out_trade_no.clone();
        let delivery = match self.with_payload(delivery).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, order.out_trade_no = %no, "building a merchant alert failed");
                return None;
            }
        };
        let outcome = self.send(&delivery.payload).await;
        match &outcome {
            Attempt::Delivered { http_status } => tracing::info!(
                order.out_trade_no = %delivery.out_trade_no,
                target = %delivery.target,
                http_status,
                "merchant alert delivered"
            ),
            Attempt::Failed { http_status, error } => tracing::warn!(
                order.out_trade_no = %delivery.out_trade_no,
                target = %delivery.target,
                attempt = delivery.attempts + 1,
                http_status,
                %error,
                "merchant alert not delivered; will retry"
            ),
        }
        Some((delivery, outcome))
    }

    async fn send(&self, payload: &str) -> Attempt {
        let res = self
            .http
            .post(self.url.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(payload.to_owned())
            .send()
            .await;
        let res = match res {
            Ok(r) => r,
            // reqwest's error text includes the URL: keep only its kind.
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "request failed"
                };
                return Attempt::Failed {
                    http_status: None,
                    error: kind.into(),
                };
            }
        };
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        if !(200..300).contains(&status) {
            return Attempt::Failed {
                http_status: Some(status),
                error: format!("HTTP {status}"),
            };
        }
        if self.format == Format::WeCom {
            let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let code = answer["errcode"].as_i64();
            if code != Some(0) {
                let msg: String = answer["errmsg"]
                    .as_str()
                    .unwrap_or("no errcode in the answer")
                    .chars()
                    .take(200)
                    .collect();
                return Attempt::Failed {
                    http_status: Some(status),
                    error: format!(
                        "errcode {}: {msg}",
                        code.map_or("-".into(), |c| c.to_string())
                    ),
                };
            }
        }
        Attempt::Delivered {
            http_status: status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(k: i64, description: &str) -> alerts::AlertOrder {
        alerts::AlertOrder {
            out_trade_no: format!("PD{k:030}"),
            description: description.to_owned(),
            total_fee: 1_000 + k,
            transaction_id: Some(format!("4200{k:028}")),
            paid_at: Some(1_796_000_000_000 + k),
        }
    }

    #[test]
    fn a_robot_message_lists_what_fits_and_counts_and_sums_the_rest() {
        // Arrange: 500 orders, the first twelve with long descriptions that try markup
        let long = "限定礼盒<font color=\"warning\">假</font>\n> 伪造一行".repeat(20);
        let first: Vec<_> = (0..12).map(|k| order(k, &long)).collect();
        let listed_fen: i64 = first.iter().map(|o| o.total_fee).sum();
        let batch = alerts::Batch {
            ids: (1..=500).collect(),
            as_of: 0,
            count: 500,
            total_fen: 123_456_789,
            first,
        };

        // Act
        let message = robot_message(&batch);

        // Assert
        let content = message["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= WECOM_MAX_BYTES, "{}", content.len());
        assert!(content
            .starts_with("**500 笔新订单已支付** 合计 <font color=\"info\">¥1,234,567.89</font>"));
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 1 + 12 + 1, "{content}");
        assert!(lines[1..13].iter().all(|l| l.starts_with(">¥10.")));
        assert!(!content.contains("<font color=\"warning\">"), "{content}");
        assert_eq!(content.matches("<font").count(), 1, "{content}");
        assert_eq!(
            *lines.last().unwrap(),
            format!(
                ">……另有 488 笔，合计 {}",
                Fen(123_456_789 - listed_fen).display_yuan()
            )
        );
    }

    #[test]
    fn one_order_is_the_single_message() {
        let only = order(7, "咖啡豆");
        let batch = alerts::Batch {
            ids: vec![1],
            as_of: 0,
            count: 1,
            total_fen: only.total_fee,
            first: vec![only.clone()],
        };
        assert_eq!(robot_message(&batch), payload(Format::WeCom, &only));
    }
}
