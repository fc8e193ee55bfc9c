//! Merchant alerts: for each paid order, a POST to the configured webhook (a WeCom group
//! robot by default). The delivery row is queued in the payment's own transaction (the
//! outbox of [`paydesk_core::alerts`]); this job claims due rows, builds each body from the
//! order on its first attempt, sends it and retries with backoff. It looks at once when an
//! order is paid (the event bus) and every [`TICK`] for the rest (retries, rows another
//! instance's crash left), so the notification reply never waits for it and no alert waits
//! for a restart. Logs name the webhook's host only: its URL carries the robot's key.

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
        format,
        http,
    });
    tracing::info!(%target, "merchant alerts on");
    // This instance keeps the outbox on while it runs (startup turned it on).
    let mut renewed = tokio::time::Instant::now();
    let renew_every = Duration::from_millis(alerts::RENEW_MS.unsigned_abs());
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
        if renewed.elapsed() >= renew_every {
            match alerts::configure(&sender.db, Some(&target)).await {
                Ok(()) => renewed = tokio::time::Instant::now(),
                Err(e) => {
                    tracing::warn!(error = %e, "keeping merchant alerts on failed; tried again at the next tick")
                }
            }
        }
        send_due(&sender, &stop).await;
    }
}

/// Sends what is due in rounds of up to [`ROUND`] at once: each round's attempts are
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
pub fn payload(format: Format, order: &orders::Order) -> serde_json::Value {
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
                    order.description,
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
            delivery.payload = payload(self.format, &order).to_string();
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
