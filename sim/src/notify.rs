//! The notification sender (docs/wechatpay-v2.md §8.8, §8.9): payment notifications signed with the order's
//! algorithm, refund notifications with an encrypted `req_info`, delivered to the notify URL
//! with WeChat's retry schedule (time-scaled), every attempt recorded, faults applied.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use wxpay::{xml, Params, SignType};

use crate::faults::{NotifyFaultKind, TakenNotifyFault};
use crate::store::{OrderState, RefundState};
use crate::wechat::coupon_fields;
use crate::{Sim, SimError};

/// WeChat's retry intervals after the first attempt (§8.8): 15s/15s/30s/3m/10m/20m/30m/30m/
/// 30m/60m/3h/3h/3h/6h/6h — 16 attempts over 24h4m, divided by the time scale.
pub const RETRY_SCHEDULE_SECS: [u64; 15] = [
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
];

/// Payment or refund notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Payment result (§8.8).
    Payment,
    /// Refund result (§8.9).
    Refund,
}

/// One delivery attempt (one HTTP POST, or a dropped one), as `GET /sim/notifications`
/// lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    /// Sequence number of the attempt across the simulator.
    pub id: u64,
    /// The notification (all attempts of one notification share it).
    pub notification_id: u64,
    /// Payment or refund.
    pub kind: NotificationKind,
    /// The order.
    pub out_trade_no: String,
    /// The refund, for refund notifications.
    pub out_refund_no: Option<String>,
    /// 1 for the first attempt, up to 16.
    pub attempt: u32,
    /// Copy number for duplicated deliveries (1 otherwise).
    pub copy: u32,
    /// Where it was sent.
    pub url: String,
    /// When it was sent (RFC 3339, UTC, simulator clock).
    pub sent_at: String,
    /// Milliseconds since the notification's first attempt (real time).
    pub elapsed_ms: u64,
    /// HTTP status of the reply, if one came.
    pub http_status: Option<u16>,
    /// The reply body (lossy UTF-8, cut at 4 KiB).
    pub reply_body: Option<String>,
    /// Round trip in milliseconds.
    pub latency_ms: f64,
    /// Whether the reply was the exact SUCCESS acknowledgement.
    pub success: bool,
    /// Transport error, timeout, or why the reply did not count.
    pub error: Option<String>,
    /// Faults applied to this attempt (`drop`, `tamper_sign`…).
    pub faults: Vec<String>,
    /// The body that was (or would have been) sent.
    pub request_body: String,
}

/// What a notification carries, before per-attempt faults.
#[derive(Debug, Clone)]
/// A notification's content; `sandbox`: the order or refund came under a sandbox prefix,
/// so the sandbox key signs or encrypts it (§3).
enum Payload {
    Payment {
        params: Params,
        sign_type: SignType,
        sandbox: bool,
    },
    Refund {
        outer: Params,
        inner: Params,
        sandbox: bool,
    },
}

#[derive(Debug, Clone)]
struct Job {
    id: u64,
    kind: NotificationKind,
    url: String,
    out_trade_no: String,
    out_refund_no: Option<String>,
    payload: Payload,
}

/// Reorder groups: attempts waiting to be released in reverse order.
#[derive(Debug, Default)]
pub(crate) struct ReorderGroups {
    groups: HashMap<u64, Vec<oneshot::Sender<()>>>,
}

/// The outcome of `pay_order`: SUCCESS or FAIL, with optional details. `Default` is a
/// successful payment with a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    /// `SUCCESS` (default) or `FAIL`.
    #[serde(default = "success")]
    pub result: String,
    /// Payer's bank (default `OTHERS`; e.g. `CMB_CREDIT`, `CFT`).
    #[serde(default)]
    pub bank_type: Option<String>,
    /// For `FAIL`: the err_code (default `BANKERROR`).
    #[serde(default)]
    pub err_code: Option<String>,
    /// For `FAIL`: the text.
    #[serde(default)]
    pub err_code_des: Option<String>,
    /// Cash part in fen (default the whole amount; the rest is paid by a coupon).
    #[serde(default)]
    pub cash_fee: Option<i64>,
    /// Send the payment notification (default true).
    #[serde(default)]
    pub notify: Option<bool>,
}

fn success() -> String {
    "SUCCESS".into()
}

impl Default for PayRequest {
    fn default() -> Self {
        PayRequest {
            result: success(),
            bank_type: None,
            err_code: None,
            err_code_des: None,
            cash_fee: None,
            notify: None,
        }
    }
}

/// The shopper pays (or fails to pay) an order (§10.1): sets `transaction_id`, `time_end`,
/// `bank_type`, `cash_fee` and schedules the payment notification.
pub(crate) fn pay_order(
    sim: &Arc<Sim>,
    out_trade_no: &str,
    req: &PayRequest,
) -> Result<crate::Order, SimError> {
    let now = sim.clock.now();
    let ok = match req.result.as_str() {
        "SUCCESS" => true,
        "FAIL" => false,
        other => {
            return Err(SimError::Invalid(format!(
                "result must be SUCCESS or FAIL, not {other:?}"
            )))
        }
    };
    let mut store = sim.store();
    store.expire(out_trade_no, now);
    let seq = store.next_seq();
    let order = store
        .orders
        .get_mut(out_trade_no)
        .ok_or_else(|| SimError::NotFound(format!("order {out_trade_no}")))?;
    match order.state {
        // A failed attempt does not end the order: the shopper may try again (another card,
        // the balance) until it expires, and WeChat Pay then notifies the success too.
        OrderState::Notpay | OrderState::Payerror => {}
        OrderState::Closed if now >= order.expires_at => {
            return Err(SimError::Conflict(
                "该订单已过期，请重新下单 (order expired)".into(),
            ))
        }
        OrderState::Closed => return Err(SimError::Conflict("order is closed".into())),
        OrderState::Success | OrderState::Refund => {
            return Err(SimError::Conflict("order is already paid".into()))
        }
    }
    if now >= order.prepay_expires_at {
        return Err(SimError::Conflict(
            "prepay_id expired (2 h): call unifiedorder again".into(),
        ));
    }
    let cash = req.cash_fee.unwrap_or(order.total_fee);
    if cash < 0 || cash > order.total_fee {
        return Err(SimError::Invalid("cash_fee must be 0..=total_fee".into()));
    }
    order.bank_type = Some(req.bank_type.clone().unwrap_or_else(|| "OTHERS".into()));
    order.time_end = Some(now);
    if ok {
        order.state = OrderState::Success;
        order.err_code = None;
        order.err_code_des = None;
        order.cash_fee = Some(cash);
        let txn = crate::store::new_transaction_id(seq, now);
        order.transaction_id = Some(txn.clone());
        let otn = order.out_trade_no.clone();
        store.by_transaction_id.insert(txn, otn);
        if let Some(b) = store.balance.as_mut() {
            *b += cash;
        }
    } else {
        order.state = OrderState::Payerror;
        order.err_code = Some(req.err_code.clone().unwrap_or_else(|| "BANKERROR".into()));
        order.err_code_des = Some(
            req.err_code_des
                .clone()
                .unwrap_or_else(|| "银行系统异常".into()),
        );
    }
    let order = store.orders[out_trade_no].clone();
    drop(store);
    tracing::info!(order.out_trade_no = %out_trade_no, paid = ok, "shopper paid");
    if req.notify.unwrap_or(true) {
        let params = payment_params(sim, &order);
        let job = Job {
            id: sim.notify_seq.fetch_add(1, Ordering::Relaxed) + 1,
            kind: NotificationKind::Payment,
            url: order.notify_url.clone(),
            out_trade_no: order.out_trade_no.clone(),
            out_refund_no: None,
            payload: Payload::Payment {
                params,
                sign_type: order.sign_type,
                sandbox: order.sandbox,
            },
        };
        start_job(sim, job);
    }
    Ok(order)
}

/// What `wx.requestPayment` does with the parameters the merchant backend produced (§5.5,
/// §8.2): find the order by `package`'s prepay_id, check the prepay_id is still valid, that
/// `signType` is the unifiedorder's and that `paySign` verifies; then pay like
/// [`pay_order`]. Failures read like the Mini Program's `requestPayment:fail …`.
pub(crate) fn request_payment(
    sim: &Arc<Sim>,
    params: &wxpay::JsapiPayParams,
    req: &PayRequest,
) -> Result<crate::Order, SimError> {
    let sign_failed = || SimError::Invalid("requestPayment:fail 支付验证签名失败".into());
    let prepay_id = params.prepay_id().ok_or_else(sign_failed)?;
    let (out_trade_no, sign_type, prepay_expires_at, sandbox) = {
        let store = sim.store();
        let order = store
            .orders
            .values()
            .find(|o| o.prepay_id == prepay_id)
            .ok_or_else(|| SimError::NotFound(format!("prepay_id {prepay_id}")))?;
        (
            order.out_trade_no.clone(),
            order.sign_type,
            order.prepay_expires_at,
            order.sandbox,
        )
    };
    if params.time_stamp.len() != 10 || !params.time_stamp.bytes().all(|b| b.is_ascii_digit()) {
        return Err(sign_failed());
    }
    if params.sign_type != sign_type {
        return Err(sign_failed());
    }
    params
        .verify(&sim.config.appid, sim.key(sandbox))
        .map_err(|_| sign_failed())?;
    if sim.clock.now() >= prepay_expires_at {
        return Err(SimError::Conflict(
            "requestPayment:fail prepay_id已过期".into(),
        ));
    }
    pay_order(sim, &out_trade_no, req)
}

/// §8.8 fields (unsigned).
fn payment_params(sim: &Sim, o: &crate::Order) -> Params {
    let mut p = Params::new();
    let put = |p: &mut Params, k: &str, v: String| {
        p.insert(k.to_owned(), v);
    };
    put(&mut p, "return_code", "SUCCESS".into());
    put(&mut p, "return_msg", "OK".into());
    put(&mut p, "appid", sim.config.appid.clone());
    put(&mut p, "mch_id", sim.config.mch_id.clone());
    put(&mut p, "nonce_str", wxpay::nonce_str());
    put(&mut p, "out_trade_no", o.out_trade_no.clone());
    put(&mut p, "openid", o.openid.clone().unwrap_or_default());
    put(&mut p, "is_subscribe", "N".into());
    put(&mut p, "trade_type", o.trade_type.clone());
    put(&mut p, "bank_type", o.bank_type.clone().unwrap_or_default());
    put(&mut p, "total_fee", o.total_fee.to_string());
    put(&mut p, "fee_type", "CNY".into());
    if let Some(t) = o.time_end {
        put(&mut p, "time_end", wxpay::wxtime::format_compact(t));
    }
    if let Some(a) = &o.attach {
        put(&mut p, "attach", a.clone());
    }
    if let Some(d) = &o.device_info {
        put(&mut p, "device_info", d.clone());
    }
    if o.state == OrderState::Payerror {
        put(&mut p, "result_code", "FAIL".into());
        put(&mut p, "err_code", o.err_code.clone().unwrap_or_default());
        put(
            &mut p,
            "err_code_des",
            o.err_code_des.clone().unwrap_or_default(),
        );
    } else {
        let cash = o.cash_fee.unwrap_or(o.total_fee);
        put(&mut p, "result_code", "SUCCESS".into());
        put(&mut p, "cash_fee", cash.to_string());
        put(
            &mut p,
            "transaction_id",
            o.transaction_id.clone().unwrap_or_default(),
        );
        if cash < o.total_fee {
            coupon_fields(&mut p, o.total_fee - cash);
        }
    }
    if sim.config.notify_include_sign_type {
        put(&mut p, "sign_type", o.sign_type.as_str().into());
    }
    p
}

/// Choose a refund's outcome (control API): applied after `delay_ms` real milliseconds.
/// For a refund that does not exist yet, the outcome is remembered and applied when the
/// refund is accepted.
pub(crate) fn set_refund_outcome(
    sim: &Arc<Sim>,
    out_refund_no: &str,
    outcome: RefundState,
    delay_ms: Option<u64>,
) -> Result<Option<crate::Refund>, SimError> {
    if outcome == RefundState::Processing {
        return Err(SimError::Invalid(
            "outcome must be SUCCESS, CHANGE or REFUNDCLOSE".into(),
        ));
    }
    let mut store = sim.store();
    let Some(refund) = store.refunds.get_mut(out_refund_no) else {
        store.planned.insert(
            out_refund_no.to_owned(),
            crate::PlannedOutcome { outcome, delay_ms },
        );
        return Ok(None);
    };
    if matches!(
        refund.status,
        RefundState::Success | RefundState::Refundclose
    ) {
        return Err(SimError::Conflict(format!(
            "refund {out_refund_no} is already {}",
            refund.status.as_str()
        )));
    }
    refund.generation += 1;
    let generation = refund.generation;
    let view = refund.clone();
    drop(store);
    schedule_refund_outcome(
        sim,
        out_refund_no.to_owned(),
        outcome,
        Duration::from_millis(delay_ms.unwrap_or(0)),
        generation,
    );
    Ok(Some(view))
}

/// After `delay`, move the refund to `outcome` (if no newer outcome was chosen meanwhile)
/// and send the refund notification (§8.9, §10.2).
pub(crate) fn schedule_refund_outcome(
    sim: &Arc<Sim>,
    out_refund_no: String,
    outcome: RefundState,
    delay: Duration,
    generation: u64,
) {
    let sim2 = sim.clone();
    sim.spawn(async move {
        tokio::time::sleep(delay).await;
        finish_refund(&sim2, &out_refund_no, outcome, generation);
    });
}

fn finish_refund(sim: &Arc<Sim>, out_refund_no: &str, outcome: RefundState, generation: u64) {
    let now = sim.clock.now();
    let mut store = sim.store();
    let Some(refund) = store.refunds.get_mut(out_refund_no) else {
        return;
    };
    if refund.generation != generation
        || matches!(
            refund.status,
            RefundState::Success | RefundState::Refundclose
        )
    {
        return;
    }
    refund.status = outcome;
    if outcome == RefundState::Success {
        refund.success_time = Some(now);
    }
    let refund = refund.clone();
    if outcome == RefundState::Refundclose {
        // The money goes back: the amount is refundable again.
        if let Some(o) = store.orders.get_mut(&refund.out_trade_no) {
            o.refunded_fee -= refund.refund_fee;
        }
        if let Some(b) = store.balance.as_mut() {
            *b += refund.refund_fee;
        }
    }
    drop(store);
    tracing::info!(refund.out_refund_no = %out_refund_no, status = outcome.as_str(), "refund finished");
    let Some(url) = refund.notify_url.clone() else {
        return;
    };
    let mut inner = Params::new();
    let mut put = |k: &str, v: String| {
        inner.insert(k.to_owned(), v);
    };
    put("transaction_id", refund.transaction_id.clone());
    put("out_trade_no", refund.out_trade_no.clone());
    put("refund_id", refund.refund_id.clone());
    put("out_refund_no", refund.out_refund_no.clone());
    put("total_fee", refund.total_fee.to_string());
    put("refund_fee", refund.refund_fee.to_string());
    put("settlement_refund_fee", refund.refund_fee.to_string());
    put("refund_status", outcome.as_str().into());
    if let Some(t) = refund.success_time {
        put("success_time", wxpay::wxtime::format_display(t));
    }
    put("refund_recv_accout", refund.refund_recv_accout.clone());
    put("refund_account", refund.refund_account.clone());
    put(
        "refund_request_source",
        refund.refund_request_source.as_str().into(),
    );
    let outer = Params::from([
        ("return_code".to_owned(), "SUCCESS".to_owned()),
        ("appid".to_owned(), sim.config.appid.clone()),
        ("mch_id".to_owned(), sim.config.mch_id.clone()),
        ("nonce_str".to_owned(), wxpay::nonce_str()),
    ]);
    let job = Job {
        id: sim.notify_seq.fetch_add(1, Ordering::Relaxed) + 1,
        kind: NotificationKind::Refund,
        url,
        out_trade_no: refund.out_trade_no,
        out_refund_no: Some(refund.out_refund_no),
        payload: Payload::Refund {
            outer,
            inner,
            sandbox: refund.sandbox,
        },
    };
    start_job(sim, job);
}

fn start_job(sim: &Arc<Sim>, job: Job) {
    let sim2 = sim.clone();
    sim.spawn(async move { run_job(sim2, job).await });
}

/// First attempt at once, then one after each interval of the schedule; stop at the first
/// exact SUCCESS, give up after the last (§8.8).
async fn run_job(sim: Arc<Sim>, job: Job) {
    let started = Instant::now();
    for attempt in 1..=(RETRY_SCHEDULE_SECS.len() as u32 + 1) {
        if attempt > 1 {
            let wait = RETRY_SCHEDULE_SECS[attempt as usize - 2];
            tokio::time::sleep(sim.clock.real(Duration::from_secs(wait))).await;
        }
        if deliver(&sim, &job, attempt, started).await {
            tracing::info!(
                notification.id = job.id,
                attempt,
                "notification acknowledged"
            );
            return;
        }
    }
    tracing::warn!(
        notification.id = job.id,
        "notification not acknowledged after the whole schedule; giving up"
    );
}

/// The body of one attempt, with the tampering faults applied.
fn build_body(sim: &Sim, job: &Job, faults: &[TakenNotifyFault]) -> String {
    let has = |k: NotifyFaultKind| faults.iter().any(|f| f.fault.fault == k);
    match &job.payload {
        Payload::Payment {
            params,
            sign_type,
            sandbox,
        } => {
            let mut p = params.clone();
            if has(NotifyFaultKind::TamperAmount) {
                let fee = p
                    .get("total_fee")
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                p.insert("total_fee".into(), (fee + 1).to_string());
            }
            if has(NotifyFaultKind::WrongAppid) {
                p.insert("appid".into(), "wx0000000000000bad".into());
            }
            let mut sign = wxpay::sign(&p, sim.key(*sandbox), *sign_type);
            if has(NotifyFaultKind::TamperSign) {
                sign = tamper(&sign);
            }
            p.insert("sign".into(), sign);
            xml::write(&p)
        }
        Payload::Refund {
            outer,
            inner,
            sandbox,
        } => {
            let mut inner = inner.clone();
            let mut outer = outer.clone();
            if has(NotifyFaultKind::TamperAmount) {
                let fee = inner
                    .get("refund_fee")
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(0);
                inner.insert("refund_fee".into(), (fee + 1).to_string());
            }
            if has(NotifyFaultKind::WrongAppid) {
                outer.insert("appid".into(), "wx0000000000000bad".into());
            }
            let mut req_info = wxpay::notify::encrypt_req_info(&inner, sim.key(*sandbox));
            if has(NotifyFaultKind::TamperSign) {
                // No sign on refund notifications: corrupt the ciphertext instead.
                req_info = tamper(&req_info);
            }
            outer.insert("req_info".into(), req_info);
            xml::write(&outer)
        }
    }
}

/// Change the first character to a different valid one of the same alphabet.
fn tamper(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.first_mut() {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}

async fn deliver(sim: &Arc<Sim>, job: &Job, attempt: u32, started: Instant) -> bool {
    let faults = sim.faults().take_notify(job.kind);
    let names: Vec<String> = faults
        .iter()
        .map(|f| {
            serde_json::to_value(f.fault.fault)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        })
        .collect();
    let body = build_body(sim, job, &faults);
    let record = |copy: u32| DeliveryAttempt {
        id: 0,
        notification_id: job.id,
        kind: job.kind,
        out_trade_no: job.out_trade_no.clone(),
        out_refund_no: job.out_refund_no.clone(),
        attempt,
        copy,
        url: job.url.clone(),
        sent_at: String::new(),
        elapsed_ms: 0,
        http_status: None,
        reply_body: None,
        latency_ms: 0.0,
        success: false,
        error: None,
        faults: names.clone(),
        request_body: body.clone(),
    };
    if faults
        .iter()
        .any(|f| f.fault.fault == NotifyFaultKind::Drop)
    {
        let mut r = record(1);
        r.error = Some("dropped by fault injection".into());
        push_attempt(sim, r, started);
        return false;
    }
    for f in &faults {
        match f.fault.fault {
            NotifyFaultKind::Delay => {
                tokio::time::sleep(Duration::from_millis(f.fault.delay_ms.unwrap_or(1000))).await;
            }
            NotifyFaultKind::Reorder => {
                join_reorder_group(sim, f).await;
            }
            _ => {}
        }
    }
    let copies = faults
        .iter()
        .find(|f| f.fault.fault == NotifyFaultKind::Duplicate)
        .map_or(1, |f| f.fault.copies.unwrap_or(2).max(1));
    let sends = (1..=copies).map(|copy| {
        let mut r = record(copy);
        let body = body.clone();
        async move {
            post(sim, &job.url, body, &mut r).await;
            push_attempt(sim, r.clone(), started);
            r.success
        }
    });
    let results = futures::future::join_all(sends).await;
    results.into_iter().any(|ok| ok)
}

fn push_attempt(sim: &Sim, mut r: DeliveryAttempt, started: Instant) {
    r.id = sim.attempt_seq.fetch_add(1, Ordering::Relaxed) + 1;
    r.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if r.sent_at.is_empty() {
        r.sent_at = rfc3339(sim.clock.now());
    }
    sim.attempts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(r);
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// POST one body; success only for HTTP 200 and a reply that parses (strictly) with
/// `return_code=SUCCESS` (§8.8).
async fn post(sim: &Sim, url: &str, body: String, r: &mut DeliveryAttempt) {
    r.sent_at = rfc3339(sim.clock.now());
    let t0 = Instant::now();
    let sent = sim
        .http
        .post(url)
        .header("content-type", "text/xml")
        .timeout(sim.config.notify_timeout)
        .body(body)
        .send()
        .await;
    match sent {
        Err(e) => {
            r.error = Some(if e.is_timeout() {
                "no reply in time".into()
            } else {
                format!("transport error: {}", e.without_url())
            });
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            r.http_status = Some(status);
            match resp.bytes().await {
                Err(e) => r.error = Some(format!("reading the reply: {}", e.without_url())),
                Ok(bytes) => {
                    let cut = &bytes[..bytes.len().min(4096)];
                    r.reply_body = Some(String::from_utf8_lossy(cut).into_owned());
                    let acknowledged = xml::parse(&bytes).ok().is_some_and(|p| {
                        p.get("return_code").map(String::as_str) == Some("SUCCESS")
                    });
                    if status != 200 {
                        r.error = Some(format!("HTTP {status}"));
                    } else if !acknowledged {
                        r.error = Some("reply is not return_code=SUCCESS".into());
                    } else {
                        r.success = true;
                    }
                }
            }
        }
    }
    r.latency_ms = t0.elapsed().as_secs_f64() * 1000.0;
}

/// Wait in the fault's reorder group; the group is released in reverse arrival order when
/// `count` attempts have joined or `window_ms` passed.
async fn join_reorder_group(sim: &Arc<Sim>, fault: &TakenNotifyFault) {
    let (tx, rx) = oneshot::channel();
    let size = fault.fault.count as usize;
    let release_now = {
        let mut groups = sim.reorder.lock().unwrap_or_else(|e| e.into_inner());
        let members = groups.groups.entry(fault.group).or_default();
        members.push(tx);
        let first = members.len() == 1;
        if first {
            let sim2 = sim.clone();
            let group = fault.group;
            let window = Duration::from_millis(fault.fault.window_ms.unwrap_or(2000));
            sim.spawn(async move {
                tokio::time::sleep(window).await;
                release(&sim2, group).await;
            });
        }
        members.len() >= size
    };
    if release_now {
        let sim2 = sim.clone();
        let group = fault.group;
        sim.spawn(async move { release(&sim2, group).await });
    }
    let _ = rx.await;
}

async fn release(sim: &Sim, group: u64) {
    let members = sim
        .reorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .groups
        .remove(&group)
        .unwrap_or_default();
    for tx in members.into_iter().rev() {
        let _ = tx.send(());
        // Let the released attempt reach the wire before the next one.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
