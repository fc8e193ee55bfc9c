//! The JSON control API under `/sim/` (docs/design.md Contract, docs/wechatpay-v2.md §10.3): test-only, clearly
//! separated from the WeChat surface. Handlers are thin: parse, call the same functions the
//! in-process [`crate::RunningSim`] handles call, map the result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::hosts::{Host, HostMode};
use crate::notify::{self, PayRequest};
use crate::store::{CodeMapping, RefundState};
use crate::{Sim, SimError};

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        let status = match &self {
            SimError::NotFound(_) => StatusCode::NOT_FOUND,
            SimError::Conflict(_) => StatusCode::CONFLICT,
            SimError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Parse a JSON body; an empty body reads as `{}`.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SimError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| SimError::Invalid(format!("invalid JSON body: {e}")))
}

/// The `/sim/` routes.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/health", get(get_health))
        .route("/orders", get(list_orders))
        .route("/orders/{out_trade_no}", get(get_order))
        .route("/orders/{out_trade_no}/pay", post(pay_order))
        .route(
            "/orders/{out_trade_no}/refund-outside",
            post(refund_outside),
        )
        .route("/request-payment", post(request_payment))
        .route("/refunds", get(list_refunds))
        .route("/refunds/{out_refund_no}/outcome", post(set_refund_outcome))
        .route("/notifications", get(list_notifications))
        .route("/api-calls", get(list_api_calls))
        .route(
            "/faults",
            get(get_faults).post(post_faults).delete(delete_faults),
        )
        .route("/clock/advance", post(advance_clock))
        .route("/merchant/balance", post(set_balance))
        .route("/jscode", post(register_code))
        .route("/hosts", get(get_hosts))
        .route("/hosts/{host}", post(set_host_mode))
}

/// The hosts this simulator serves (the backup only when configured) and their modes.
fn hosts_view(sim: &Sim) -> serde_json::Value {
    let mut view = json!({ "primary": sim.hosts.mode(Host::Primary) });
    if sim.config.backup_listen.is_some() {
        view["backup"] = json!(sim.hosts.mode(Host::Backup));
    }
    view
}

async fn get_hosts(State(sim): State<Arc<Sim>>) -> Json<serde_json::Value> {
    Json(hosts_view(&sim))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostModeRequest {
    mode: HostMode,
}

/// `POST /sim/hosts/{primary|backup}` with `{"mode":"up"|"refuse"|"error_503"}`.
async fn set_host_mode(
    State(sim): State<Arc<Sim>>,
    Path(host): Path<String>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, SimError> {
    let host = Host::parse(&host)
        .filter(|h| *h == Host::Primary || sim.config.backup_listen.is_some())
        .ok_or_else(|| {
            SimError::NotFound(format!(
                "host {host} (primary, or backup when --backup-listen is set)"
            ))
        })?;
    let req: HostModeRequest = body(&bytes)?;
    sim.hosts.set(host, req.mode);
    tracing::info!(host = host.as_str(), mode = ?req.mode, "host mode changed");
    Ok(Json(hosts_view(&sim)))
}

async fn get_health(State(sim): State<Arc<Sim>>) -> Json<serde_json::Value> {
    let mut info = sim.info.get().cloned().unwrap_or_else(|| json!({}));
    info["status"] = json!("ok");
    info["now"] = json!(sim
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default());
    Json(info)
}

async fn list_orders(State(sim): State<Arc<Sim>>) -> Json<Vec<crate::Order>> {
    let mut store = sim.store();
    store.expire_all(sim.clock.now());
    Json(store.orders_sorted())
}

async fn get_order(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
) -> Result<Json<crate::Order>, SimError> {
    let mut store = sim.store();
    store.expire(&out_trade_no, sim.clock.now());
    store
        .orders
        .get(&out_trade_no)
        .cloned()
        .map(Json)
        .ok_or_else(|| SimError::NotFound(format!("order {out_trade_no}")))
}

async fn pay_order(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    bytes: Bytes,
) -> Result<Json<crate::Order>, SimError> {
    let req: PayRequest = body(&bytes)?;
    notify::pay_order(&sim, &out_trade_no, &req).map(Json)
}

/// A refund made in WeChat's merchant platform: `{"out_refund_no":"R…","refund_fee":100}`,
/// `out_refund_no` optional (default: the `refund_id`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutsideRefundRequest {
    #[serde(default)]
    out_refund_no: Option<String>,
    refund_fee: i64,
}

/// `POST /sim/orders/{out_trade_no}/refund-outside`: the refund, never notified.
async fn refund_outside(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    bytes: Bytes,
) -> Result<Json<crate::Refund>, SimError> {
    let req: OutsideRefundRequest = body(&bytes)?;
    let no = req.out_refund_no.as_deref();
    crate::refunds::refund_outside(&sim, &out_trade_no, no, req.refund_fee).map(Json)
}

/// `wx.requestPayment`: the five parameters plus the optional fields of [`PayRequest`].
#[derive(Deserialize)]
struct RequestPaymentBody {
    #[serde(rename = "timeStamp")]
    time_stamp: String,
    #[serde(rename = "nonceStr")]
    nonce_str: String,
    package: String,
    #[serde(rename = "signType")]
    sign_type: String,
    #[serde(rename = "paySign")]
    pay_sign: String,
    result: Option<String>,
    bank_type: Option<String>,
    err_code: Option<String>,
    err_code_des: Option<String>,
    cash_fee: Option<i64>,
    notify: Option<bool>,
}

async fn request_payment(
    State(sim): State<Arc<Sim>>,
    bytes: Bytes,
) -> Result<Json<crate::Order>, SimError> {
    let b: RequestPaymentBody = body(&bytes)?;
    let sign_type = b
        .sign_type
        .parse()
        .map_err(|_| SimError::Invalid("requestPayment:fail 支付验证签名失败".into()))?;
    let params = wxpay::JsapiPayParams {
        time_stamp: b.time_stamp,
        nonce_str: b.nonce_str,
        package: b.package,
        sign_type,
        pay_sign: b.pay_sign,
    };
    let pay = PayRequest {
        result: b.result.unwrap_or_else(|| "SUCCESS".into()),
        bank_type: b.bank_type,
        err_code: b.err_code,
        err_code_des: b.err_code_des,
        cash_fee: b.cash_fee,
        notify: b.notify,
    };
    notify::request_payment(&sim, &params, &pay).map(Json)
}

async fn list_refunds(State(sim): State<Arc<Sim>>) -> Json<Vec<crate::Refund>> {
    Json(sim.store().refunds_sorted())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeRequest {
    outcome: RefundState,
    #[serde(default)]
    delay_ms: Option<u64>,
}

async fn set_refund_outcome(
    State(sim): State<Arc<Sim>>,
    Path(out_refund_no): Path<String>,
    bytes: Bytes,
) -> Result<Response, SimError> {
    let req: OutcomeRequest = body(&bytes)?;
    match notify::set_refund_outcome(&sim, &out_refund_no, req.outcome, req.delay_ms)? {
        Some(refund) => Ok(Json(refund).into_response()),
        None => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "planned": { "out_refund_no": out_refund_no, "outcome": req.outcome, "delay_ms": req.delay_ms }
            })),
        )
            .into_response()),
    }
}

async fn list_notifications(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Vec<crate::DeliveryAttempt>> {
    let attempts = sim.attempts.lock().unwrap_or_else(|e| e.into_inner());
    Json(
        attempts
            .iter()
            .filter(|a| q.get("out_trade_no").is_none_or(|o| *o == a.out_trade_no))
            .filter(|a| {
                q.get("out_refund_no")
                    .is_none_or(|o| Some(o) == a.out_refund_no.as_ref())
            })
            .cloned()
            .collect(),
    )
}

async fn list_api_calls(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Vec<crate::ApiCall>> {
    let calls = sim.api_calls.lock().unwrap_or_else(|e| e.into_inner());
    Json(
        calls
            .iter()
            .filter(|c| q.get("endpoint").is_none_or(|e| *e == c.endpoint))
            .filter(|c| {
                q.get("out_trade_no")
                    .is_none_or(|o| Some(o) == c.out_trade_no.as_ref())
            })
            .cloned()
            .collect(),
    )
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<crate::ActiveFaults> {
    Json(sim.faults().active())
}

async fn post_faults(
    State(sim): State<Arc<Sim>>,
    bytes: Bytes,
) -> Result<Json<crate::ActiveFaults>, SimError> {
    let plan: crate::FaultPlan = body(&bytes)?;
    crate::faults::apply_plan(&sim, plan).map(Json)
}

async fn delete_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.faults().clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: u64,
}

async fn advance_clock(
    State(sim): State<Arc<Sim>>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, SimError> {
    let req: AdvanceRequest = body(&bytes)?;
    sim.clock.advance(Duration::from_secs(req.seconds));
    let now = sim
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(Json(json!({ "now": now })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BalanceRequest {
    balance_fen: Option<i64>,
}

async fn set_balance(
    State(sim): State<Arc<Sim>>,
    bytes: Bytes,
) -> Result<Json<serde_json::Value>, SimError> {
    let req: BalanceRequest = body(&bytes)?;
    sim.store().balance = req.balance_fen;
    Ok(Json(json!({ "balance_fen": req.balance_fen })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    code: String,
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
}

async fn register_code(State(sim): State<Arc<Sim>>, bytes: Bytes) -> Result<StatusCode, SimError> {
    let req: CodeRequest = body(&bytes)?;
    if req.code.is_empty() || req.openid.is_empty() {
        return Err(SimError::Invalid("code and openid are required".into()));
    }
    sim.store().codes.insert(
        req.code,
        CodeMapping {
            openid: req.openid,
            unionid: req.unionid,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}
