//! Merchant alerts: for each paid order, a POST to the configured webhook (a WeCom group
//! robot by default), queued in `alert_deliveries` and retried with backoff
//! ([`paydesk_core::alerts`]). It listens to the event bus, so the notification reply never
//! waits for it. Logs name the webhook's host only: its URL carries the robot's key.

use std::sync::Arc;
use std::time::Duration;

use paydesk_core::alerts::{self, Attempt, Delivery};
use paydesk_core::events::Event;
use paydesk_core::{orders, Db, Fen};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::Stop;
use crate::state::AppState;

/// How often queued retries (and deliveries left by a restart) are looked for.
const TICK: Duration = Duration::from_secs(2);
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
    let http = match reqwest::Client::builder().timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "merchant alerts disabled: no HTTP client");
            return;
        }
    };
    let target = target_host(url.expose_secret());
    let sender = Arc::new(Sender {
        db: state.db.clone(),
        url,
        format,
        http,
    });
    tracing::info!(%target, "merchant alerts on");
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(Event::OrderPaid { order_id, out_trade_no, .. }) => {
                    match queue(&sender, &target, order_id, &out_trade_no).await {
                        Ok(Some(delivery)) => {
                            let s = sender.clone();
                            tokio::spawn(async move { s.attempt(delivery).await });
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, order.out_trade_no = %out_trade_no, "queueing a merchant alert failed"),
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => tracing::error!(missed = n, "merchant alerts fell behind the event stream; some paid orders get no alert"),
                Err(RecvError::Closed) => break,
            },
            done = stop.sleep(TICK) => {
                if done {
                    break;
                }
                match alerts::claim_due(&sender.db, 20).await {
                    Ok(due) => {
                        for delivery in due {
                            let s = sender.clone();
                            tokio::spawn(async move { s.attempt(delivery).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "looking for due merchant alerts failed"),
                }
            }
        }
    }
}

async fn queue(
    sender: &Sender,
    target: &str,
    order_id: i64,
    out_trade_no: &str,
) -> Result<Option<Delivery>, paydesk_core::CoreError> {
    let order = orders::find_by_out_trade_no(&sender.db, out_trade_no)
        .await?
        .ok_or(paydesk_core::CoreError::NotFound)?;
    let payload = payload(sender.format, &order).to_string();
    alerts::enqueue(&sender.db, order_id, out_trade_no, target, &payload).await
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
    async fn attempt(&self, delivery: Delivery) {
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
        if let Err(e) = alerts::record_attempt(&self.db, &delivery, &outcome).await {
            tracing::error!(error = %e, order.out_trade_no = %delivery.out_trade_no, "recording a merchant alert attempt failed");
        }
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
