//! Demo shoppers (sandbox mode only, on unless `PAYDESK_DEMO_SHOPPERS=off`): simulated shoppers
//! log in, order and pay through the real `/api/mp` API over HTTP at a gentle rate, and the
//! in-process simulator now and then drops, duplicates or tampers with a notification, so a
//! newcomer sees a living dashboard — paid orders, a few failures, a few abandoned carts,
//! the sync job catching dropped notifications.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use paydesk_sim::{PayRequest, RunningSim};
use rand::seq::SliceRandom as _;
use rand::Rng as _;
use serde_json::{json, Value};

use super::Stop;

/// The shoppers (fixed openids, so customers come back).
const SHOPPERS: usize = 12;

struct Demo {
    base: String,
    sim: Arc<RunningSim>,
    http: reqwest::Client,
    tokens: HashMap<usize, String>,
}

pub(super) async fn run(base: String, sim: Arc<RunningSim>, per_minute: u32, mut stop: Stop) {
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "demo shoppers disabled: no HTTP client");
            return;
        }
    };
    let mut demo = Demo {
        base,
        sim,
        http,
        tokens: HashMap::new(),
    };
    let every = Duration::from_secs_f64(60.0 / f64::from(per_minute.max(1)));
    tracing::info!(per_minute, "demo shoppers on");
    loop {
        let jitter = rand::thread_rng().gen_range(0.5..1.5);
        if stop.sleep(every.mul_f64(jitter)).await {
            break;
        }
        if let Err(e) = demo.one_visit().await {
            tracing::warn!(error = %e, "a demo shopper's visit failed");
        }
    }
}

fn openid(i: usize) -> String {
    format!("oDemoShopper{i:02}xxxxxxxxxxxxxx")
}

impl Demo {
    async fn token(&mut self, shopper: usize) -> anyhow::Result<String> {
        if let Some(t) = self.tokens.get(&shopper) {
            return Ok(t.clone());
        }
        let code = format!("demo-{}", rand::thread_rng().gen::<u64>());
        self.sim.register_code(&code, &openid(shopper), None);
        let answer = self
            .call(
                reqwest::Method::POST,
                "/api/mp/login",
                None,
                Some(json!({ "code": code })),
            )
            .await?;
        let token = answer["token"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("login answered {answer}"))?
            .to_owned();
        self.tokens.insert(shopper, token.clone());
        Ok(token)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let value: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!("{path}: HTTP {status} {value}");
        }
        Ok(value)
    }

    async fn one_visit(&mut self) -> anyhow::Result<()> {
        let shopper = rand::thread_rng().gen_range(0..SHOPPERS);
        let token = self.token(shopper).await?;
        let catalogue = self
            .call(reqwest::Method::GET, "/api/mp/products", None, None)
            .await?;
        let ids: Vec<i64> = catalogue["products"]
            .as_array()
            .map(|ps| ps.iter().filter_map(|p| p["id"].as_i64()).collect())
            .unwrap_or_default();
        let (items, key, roll) = {
            let mut rng = rand::thread_rng();
            let lines = rng.gen_range(1..=3).min(ids.len());
            let items: Vec<Value> = ids
                .choose_multiple(&mut rng, lines)
                .map(|id| json!({ "product_id": id, "quantity": rng.gen_range(1..=3) }))
                .collect();
            (
                items,
                format!("demo-{}", rng.gen::<u64>()),
                rng.gen_range(0..100),
            )
        };
        if items.is_empty() {
            anyhow::bail!("the catalogue is empty");
        }
        let created = match self
            .call(
                reqwest::Method::POST,
                "/api/mp/orders",
                Some(&token),
                Some(json!({ "items": items, "idempotency_key": key })),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                // An expired or unknown token: log in again next time.
                self.tokens.remove(&shopper);
                return Err(e);
            }
        };
        let no = created["out_trade_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Ok(pay) = serde_json::from_value::<wxpay::JsapiPayParams>(created["pay"].clone())
        else {
            anyhow::bail!("order {no} came without pay parameters");
        };
        // Some notifications misbehave, as WeChat Pay's sometimes do.
        let fault = match roll {
            0..=7 => Some(json!({ "notifications": [{ "fault": "drop" }] })),
            8..=15 => Some(json!({ "notifications": [{ "fault": "duplicate", "copies": 3 }] })),
            16..=18 => Some(json!({ "notifications": [{ "fault": "tamper_sign" }] })),
            _ => None,
        };
        if let Some(plan) = fault {
            self.sim.set_faults(serde_json::from_value(plan)?);
        }
        match roll {
            // Most shoppers pay.
            0..=84 => {
                self.sim
                    .request_payment(&pay, &PayRequest::default())
                    .map_err(|e| anyhow::anyhow!("paying {no}: {e:?}"))?;
            }
            // A few payments fail at the bank.
            85..=89 => {
                let failed = PayRequest {
                    result: "FAIL".into(),
                    ..PayRequest::default()
                };
                self.sim
                    .request_payment(&pay, &failed)
                    .map_err(|e| anyhow::anyhow!("paying {no}: {e:?}"))?;
            }
            // Some change their mind. Within 5 minutes of creation WeChat Pay takes no
            // closeorder: the answer is 409 CLOSE_SCHEDULED and the order closes by itself.
            90..=94 => {
                let cancelled = self
                    .call(
                        reqwest::Method::POST,
                        &format!("/api/mp/orders/{no}/cancel"),
                        Some(&token),
                        None,
                    )
                    .await;
                if let Err(e) = cancelled {
                    if !e.to_string().contains("CLOSE_SCHEDULED") {
                        return Err(e);
                    }
                }
            }
            // And some walk away (the sync job closes the order when it expires).
            _ => {}
        }
        tracing::debug!(order.out_trade_no = %no, roll, "demo shopper visit");
        Ok(())
    }
}
