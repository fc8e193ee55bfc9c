//! The WeChat Pay v2 surface (docs/wechatpay-v2.md §2.3, §6, §7, §8): envelope checks with the wxpay
//! parser and signer, then one function per endpoint that applies the business rules to the
//! store and returns the payload fields or a failure.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use wxpay::{xml, Params, SignType, XmlError};

use crate::faults::ApiFaultKind;
use crate::hosts::{Host, HostMode};
use crate::refunds::{self, OrderKey, RefundAsk};
use crate::store::{self, Order, OrderState, Refund, RefundSource};
use crate::Sim;

/// The v2 endpoints the simulator serves (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    UnifiedOrder,
    OrderQuery,
    CloseOrder,
    Refund,
    RefundQuery,
    DownloadBill,
    GetSignKey,
}

impl Endpoint {
    /// The path without sandbox prefix (what API faults match on).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::UnifiedOrder => "/pay/unifiedorder",
            Endpoint::OrderQuery => "/pay/orderquery",
            Endpoint::CloseOrder => "/pay/closeorder",
            Endpoint::Refund => "/secapi/pay/refund",
            Endpoint::RefundQuery => "/pay/refundquery",
            Endpoint::DownloadBill => "/pay/downloadbill",
            Endpoint::GetSignKey => "/pay/getsignkey",
        }
    }
}

/// Where a request arrived: on which host, and whether under a sandbox prefix (then the
/// sandbox key signs and verifies everything, §3, §8.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    pub host: Host,
    pub sandbox: bool,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// `return_code=FAIL` with this `return_msg`, unsigned (§6).
    Envelope(String),
    /// `result_code=FAIL` with `err_code` / `err_code_des`, signed (§6, §7).
    Business { err_code: String, des: String },
}

pub(crate) fn biz(err_code: &str, des: &str) -> Failure {
    Failure::Business {
        err_code: err_code.into(),
        des: des.into(),
    }
}

fn envelope(msg: impl Into<String>) -> Failure {
    Failure::Envelope(msg.into())
}

/// What an endpoint answers on success.
pub(crate) enum Answer {
    /// Signed business payload (added to the common fields).
    Fields(Params),
    /// A non-XML body (the bill), unsigned.
    Raw {
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// The downloadbill failure envelope (`return_code=FAIL`, `error_code`).
    BillFail {
        return_msg: String,
        error_code: Option<String>,
    },
    /// getsignkey's answer: `return_code=SUCCESS`, unsigned extra fields.
    Unsigned(Params),
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

pub(crate) fn fail_envelope(msg: &str) -> Response {
    let p = Params::from([
        ("return_code".to_owned(), "FAIL".to_owned()),
        ("return_msg".to_owned(), msg.to_owned()),
    ]);
    xml_response(StatusCode::OK, xml::write(&p))
}

/// The nginx-style HTML page WeChat's gateway answers with (§2.3).
pub(crate) fn html_page(status: StatusCode, title: &str) -> Response {
    let body = format!(
        "<html>\r\n<head><title>{code} {title}</title></head>\r\n<body>\r\n<center><h1>{code} Bad Request</h1></center>\r\n<center>{title}</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
        code = status.as_u16()
    );
    (status, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}

/// One call to the WeChat Pay surface, as `GET /sim/api-calls` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// Sequence number.
    pub id: u64,
    /// When it arrived (RFC 3339, simulator clock).
    pub at: String,
    /// The endpoint path without sandbox prefix, e.g. `/pay/unifiedorder`.
    pub endpoint: String,
    /// The host that received it (`primary` or `backup`).
    pub host: Host,
    /// Whether it came under a sandbox prefix (`/sandboxnew`, `/xdc/apiv2sandbox`).
    pub sandbox: bool,
    /// `out_trade_no` of the request, if any.
    pub out_trade_no: Option<String>,
    /// `out_refund_no` of the request, if any.
    pub out_refund_no: Option<String>,
    /// HTTP status answered.
    pub http_status: u16,
    /// `return_code` answered (none for a bill or an HTML page).
    pub return_code: Option<String>,
    /// `return_msg` answered.
    pub return_msg: Option<String>,
    /// `result_code` answered.
    pub result_code: Option<String>,
    /// `err_code` answered (downloadbill: `error_code`).
    pub err_code: Option<String>,
    /// The injected API fault, if one applied.
    pub fault: Option<String>,
}

/// Handle one API call and record it (`GET /sim/api-calls`).
pub(crate) async fn handle(
    sim: Arc<Sim>,
    ep: Endpoint,
    route: Route,
    method: Method,
    body: Bytes,
) -> Response {
    let at = sim.clock.now();
    if sim.hosts.mode(route.host) == HostMode::Error503 {
        // The host's gateway is failing: nothing is processed, no fault is used up.
        let response = html_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Temporarily Unavailable",
        );
        let fault = Some("host_error_503".to_owned());
        return record(&sim, ep, route, at, &body, fault, response).await;
    }
    let fault = sim.faults().take_api(ep.path());
    let fault_name = fault.as_ref().map(|f| {
        serde_json::to_value(f.fault)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    });
    let hang = fault
        .as_ref()
        .is_some_and(|f| f.fault == ApiFaultKind::Hang);
    let run = async move {
        let response = answer(sim.clone(), ep, route, method, body.clone(), fault).await;
        record(&sim, ep, route, at, &body, fault_name, response).await
    };
    if hang {
        // The client gives up long before; the request is still processed and recorded, in a
        // task that outlives the dropped connection (the classic unknown outcome, §7).
        tokio::spawn(run)
            .await
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    } else {
        run.await
    }
}

async fn record(
    sim: &Sim,
    ep: Endpoint,
    route: Route,
    at: time::OffsetDateTime,
    request: &[u8],
    fault: Option<String>,
    response: Response,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let req = xml::parse(request).unwrap_or_default();
    let is_xml = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/xml"));
    let resp = if is_xml {
        xml::parse(&bytes).unwrap_or_default()
    } else {
        Params::new()
    };
    let get = |p: &Params, k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
    let call = ApiCall {
        id: sim
            .api_call_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1,
        at: at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        endpoint: ep.path().to_owned(),
        host: route.host,
        sandbox: route.sandbox,
        out_trade_no: get(&req, "out_trade_no"),
        out_refund_no: get(&req, "out_refund_no"),
        http_status: parts.status.as_u16(),
        return_code: get(&resp, "return_code"),
        return_msg: get(&resp, "return_msg"),
        result_code: get(&resp, "result_code"),
        err_code: get(&resp, "err_code").or_else(|| get(&resp, "error_code")),
        fault,
    };
    sim.api_calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(call);
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// Faults, method, body, envelope checks, the endpoint, the signed answer.
async fn answer(
    sim: Arc<Sim>,
    ep: Endpoint,
    route: Route,
    method: Method,
    body: Bytes,
    fault: Option<crate::ApiFault>,
) -> Response {
    if let Some(fault) = fault {
        tracing::info!(endpoint = ep.path(), fault = ?fault.fault, "injecting an API fault");
        match fault.fault {
            ApiFaultKind::SystemError | ApiFaultKind::ErrCode => {
                let failure = if fault.fault == ApiFaultKind::SystemError {
                    biz("SYSTEMERROR", "系统超时")
                } else {
                    biz(
                        fault.err_code.as_deref().unwrap_or("SYSTEMERROR"),
                        fault.err_code_des.as_deref().unwrap_or("injected fault"),
                    )
                };
                return match check_envelope(&sim, ep, route, &method, &body) {
                    Ok((params, sign_type)) => {
                        let signing = Signing::of(&sim, sign_type, false, route.sandbox);
                        signed_reply(&sim, &params, signing, Err(failure))
                    }
                    Err(msg) => fail_envelope(&msg),
                };
            }
            ApiFaultKind::HttpStatus => {
                let status = StatusCode::from_u16(fault.status.unwrap_or(500))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return html_page(status, "Injected gateway error");
            }
            ApiFaultKind::NotXml => {
                return html_page(StatusCode::OK, "Injected non-XML answer");
            }
            ApiFaultKind::Hang => {
                tokio::time::sleep(Duration::from_millis(fault.hang_ms.unwrap_or(30_000))).await;
            }
            ApiFaultKind::UnsignedErrors => return process(&sim, ep, route, &method, &body, true),
        }
    }
    process(&sim, ep, route, &method, &body, false)
}

/// How a business answer is signed: with the request's algorithm, except that a business
/// refusal goes out without `sign` when the simulator is told to (the
/// `unsigned_business_errors` profile switch, or the `unsigned_errors` fault).
/// The key is the sandbox key under a sandbox prefix (§3).
#[derive(Clone, Copy)]
struct Signing {
    sign_type: SignType,
    unsigned_errors: bool,
    sandbox: bool,
}

impl Signing {
    fn of(sim: &Sim, sign_type: SignType, unsigned_fault: bool, sandbox: bool) -> Signing {
        Signing {
            sign_type,
            unsigned_errors: unsigned_fault || sim.config.unsigned_business_errors,
            sandbox,
        }
    }
}

fn process(
    sim: &Arc<Sim>,
    ep: Endpoint,
    route: Route,
    method: &Method,
    body: &[u8],
    unsigned_errors: bool,
) -> Response {
    let (params, sign_type) = match check_envelope(sim, ep, route, method, body) {
        Ok(v) => v,
        Err(msg) => {
            tracing::debug!(endpoint = ep.path(), return_msg = %msg, "request refused at the envelope");
            return fail_envelope(&msg);
        }
    };
    let signing = Signing::of(sim, sign_type, unsigned_errors, route.sandbox);
    let result = match ep {
        Endpoint::UnifiedOrder => unified_order(sim, &params, sign_type, route.sandbox),
        Endpoint::OrderQuery => order_query(sim, &params),
        Endpoint::CloseOrder => close_order(sim, &params),
        Endpoint::Refund => refund(sim, &params, sign_type, route.sandbox),
        Endpoint::RefundQuery => refund_query(sim, &params),
        Endpoint::DownloadBill => crate::bill::download_bill(sim, &params),
        // The sandbox's own key, never the API key (§8.11).
        Endpoint::GetSignKey => Ok(Answer::Unsigned(Params::from([
            ("mch_id".to_owned(), sim.config.mch_id.clone()),
            (
                "sandbox_signkey".to_owned(),
                sim.sandbox_key.expose().to_owned(),
            ),
        ]))),
    };
    match result {
        Ok(Answer::Fields(fields)) => signed_reply(sim, &params, signing, Ok(fields)),
        Ok(Answer::Raw { content_type, body }) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Ok(Answer::BillFail {
            return_msg,
            error_code,
        }) => {
            let mut p = Params::from([
                ("return_code".to_owned(), "FAIL".to_owned()),
                ("return_msg".to_owned(), return_msg),
            ]);
            if let Some(code) = error_code {
                p.insert("error_code".into(), code);
            }
            xml_response(StatusCode::OK, xml::write(&p))
        }
        Ok(Answer::Unsigned(fields)) => {
            let mut p = fields;
            p.insert("return_code".into(), "SUCCESS".into());
            p.insert("return_msg".into(), "ok".into());
            xml_response(StatusCode::OK, xml::write(&p))
        }
        Err(Failure::Envelope(msg)) => fail_envelope(&msg),
        Err(f) => signed_reply(sim, &params, signing, Err(f)),
    }
}

/// The common business envelope, signed with the request's algorithm and without echoing
/// `sign_type` (§5.2, §6); a business refusal unsigned when `signing` says so (§6: some
/// `result_code=FAIL` answers come without `sign`).
fn signed_reply(
    sim: &Sim,
    request: &Params,
    signing: Signing,
    result: Result<Params, Failure>,
) -> Response {
    let mut p = Params::new();
    p.insert("return_code".into(), "SUCCESS".into());
    p.insert("return_msg".into(), "OK".into());
    p.insert("appid".into(), sim.config.appid.clone());
    p.insert("mch_id".into(), sim.config.mch_id.clone());
    p.insert("nonce_str".into(), wxpay::nonce_str());
    if let Some(d) = request.get("device_info").filter(|d| !d.is_empty()) {
        p.insert("device_info".into(), d.clone());
    }
    let refused = result.is_err();
    match result {
        Ok(fields) => {
            p.insert("result_code".into(), "SUCCESS".into());
            p.extend(fields);
        }
        Err(Failure::Business { err_code, des }) => {
            p.insert("result_code".into(), "FAIL".into());
            p.insert("err_code".into(), err_code);
            p.insert("err_code_des".into(), des);
        }
        Err(Failure::Envelope(msg)) => return fail_envelope(&msg),
    }
    if !(refused && signing.unsigned_errors) {
        let sign = wxpay::sign(&p, sim.key(signing.sandbox), signing.sign_type);
        p.insert("sign".into(), sign);
    }
    xml_response(StatusCode::OK, xml::write(&p))
}

fn xml_failure(e: &XmlError) -> String {
    match e {
        XmlError::NotUtf8 { .. } => "NOT_UTF8",
        XmlError::Empty => "POST_DATA_EMPTY",
        _ => "XML格式错误",
    }
    .to_owned()
}

/// The `return_msg` of an envelope failure (`required` only produces those).
fn envelope_msg(f: Failure) -> String {
    match f {
        Failure::Envelope(msg) => msg,
        Failure::Business { err_code, .. } => err_code,
    }
}

/// §2.3 + §6: method, body, strict parse, mch_id, sign_type, signature, appid, nonce_str.
/// Under a sandbox prefix the signature must be made with the sandbox key and MD5 (§5.2,
/// §8.11): the production key, or HMAC-SHA256, gets `签名错误` as the real sandbox answers.
fn check_envelope(
    sim: &Sim,
    ep: Endpoint,
    route: Route,
    method: &Method,
    body: &[u8],
) -> Result<(Params, SignType), String> {
    if method != Method::POST {
        return Err("REQUIRE_POST_METHOD".into());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("POST_DATA_EMPTY".into());
    }
    let params = xml::parse(body).map_err(|e| xml_failure(&e))?;
    let mch_id = required(&params, "mch_id").map_err(envelope_msg)?;
    if !mch_id.bytes().all(|b| b.is_ascii_digit()) || mch_id.len() > 32 {
        return Err("mch_id参数格式错误".into());
    }
    if mch_id != sim.config.mch_id {
        return Err("商户号mch_id或sub_mch_id不存在".into());
    }
    let sign_type = wxpay::request_sign_type(&params).map_err(|_| "签名类型不支持".to_owned())?;
    if ep == Endpoint::GetSignKey && sign_type != SignType::Md5 {
        return Err("签名类型不支持".into());
    }
    let sign = required(&params, "sign").map_err(envelope_msg)?;
    if route.sandbox && sign_type != SignType::Md5 {
        return Err("签名错误".into());
    }
    let key = sim.key(route.sandbox);
    if wxpay::verify(&params, key, sign_type).is_err() {
        // A lowercase hex sign is refused unless configured otherwise (§5.3, §14.2).
        let mut upper = params.clone();
        upper.insert("sign".into(), sign.to_ascii_uppercase());
        let relaxed =
            sim.config.accept_lowercase_sign && wxpay::verify(&upper, key, sign_type).is_ok();
        if !relaxed {
            return Err("签名错误".into());
        }
    }
    if ep != Endpoint::GetSignKey {
        let appid = required(&params, "appid").map_err(envelope_msg)?;
        if appid != sim.config.appid {
            return Err("appid和mch_id不匹配".into());
        }
    }
    let nonce = required(&params, "nonce_str").map_err(envelope_msg)?;
    if nonce.chars().count() > 32 {
        return Err("nonce_str参数长度有误".into());
    }
    Ok((params, sign_type))
}

/// A mandatory field: missing or empty → envelope `缺少参数<name>` (§6 simulator rule).
pub(crate) fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, Failure> {
    match p.get(name).map(String::as_str) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(envelope(format!("缺少参数{name}"))),
    }
}

pub(crate) fn optional<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn format_error(name: &str) -> Failure {
    envelope(format!("{name}参数格式错误"))
}

/// A positive integer amount in fen, digits only (§9).
pub(crate) fn fee(p: &Params, name: &str) -> Result<i64, Failure> {
    let v = required(p, name)?;
    if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format_error(name));
    }
    match v.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format_error(name)),
    }
}

fn max_bytes(p: &Params, name: &str, max: usize) -> Result<(), Failure> {
    match optional(p, name) {
        Some(v) if v.len() > max => Err(envelope(format!("{name}参数长度有误"))),
        _ => Ok(()),
    }
}

fn charset_ok(v: &str, max: usize, extra: &[u8]) -> bool {
    !v.is_empty()
        && v.chars().count() <= max
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b) || extra.contains(&b))
}

fn out_trade_no(p: &Params) -> Result<&str, Failure> {
    let v = required(p, "out_trade_no")?;
    if charset_ok(v, 32, b"") {
        Ok(v)
    } else {
        Err(format_error("out_trade_no"))
    }
}

/// A `notify_url` WeChat Pay would take (§8.1): public `https://`, no parameters; relaxed to
/// loopback `http://` only when the simulator was started with that allowance.
fn url_ok(sim: &Sim, v: &str) -> bool {
    wxpay::check_notify_url(v, sim.config.notify_url_rules()).is_ok()
}

/// `unifiedorder` (§8.1, §10.1).
fn unified_order(
    sim: &Sim,
    p: &Params,
    sign_type: SignType,
    sandbox: bool,
) -> Result<Answer, Failure> {
    let now = sim.clock.now();
    let otn = out_trade_no(p)?.to_owned();
    let body = required(p, "body")?;
    if body.len() > 127 {
        return Err(envelope("body参数长度有误"));
    }
    let total_fee = fee(p, "total_fee")?;
    if total_fee > 1_000_000_000 {
        return Err(envelope("invalid total_fee"));
    }
    let ip = required(p, "spbill_create_ip")?;
    if ip.len() > 64 || ip.parse::<IpAddr>().is_err() {
        return Err(format_error("spbill_create_ip"));
    }
    let notify_url = required(p, "notify_url")?;
    if !url_ok(sim, notify_url) {
        return Err(format_error("notify_url"));
    }
    let trade_type = required(p, "trade_type")?;
    if !matches!(trade_type, "JSAPI" | "NATIVE" | "APP" | "MWEB") {
        return Err(format_error("trade_type"));
    }
    max_bytes(p, "attach", 127)?;
    max_bytes(p, "device_info", 32)?;
    max_bytes(p, "detail", 8192)?;
    max_bytes(p, "goods_tag", 32)?;
    max_bytes(p, "openid", 128)?;
    max_bytes(p, "product_id", 32)?;
    max_bytes(p, "scene_info", 256)?;
    if optional(p, "fee_type").is_some_and(|f| f != "CNY") {
        return Err(format_error("fee_type"));
    }
    if optional(p, "limit_pay").is_some_and(|f| f != "no_credit") {
        return Err(format_error("limit_pay"));
    }
    if let Some(t) = optional(p, "time_start") {
        wxpay::wxtime::parse_compact(t).map_err(|_| format_error("time_start"))?;
    }
    let time_expire = match optional(p, "time_expire") {
        Some(t) => Some(wxpay::wxtime::parse_compact(t).map_err(|_| format_error("time_expire"))?),
        None => None,
    };
    if trade_type == "JSAPI" && optional(p, "openid").is_none() {
        return Err(biz(
            "LACK_PARAMS",
            "trade_type=JSAPI时（即JSAPI支付），必须传openid",
        ));
    }
    if trade_type == "NATIVE" && optional(p, "product_id").is_none() {
        return Err(biz(
            "LACK_PARAMS",
            "trade_type=NATIVE时（即扫码支付），此参数必传product_id",
        ));
    }

    let mut business = p.clone();
    business.remove("sign");
    business.remove("nonce_str");

    let mut store = sim.store();
    store.expire(&otn, now);
    if let Some(order) = store.orders.get_mut(&otn) {
        match order.state {
            OrderState::Success | OrderState::Refund => {
                return Err(biz("ORDERPAID", "该订单已支付"))
            }
            OrderState::Closed | OrderState::Payerror => {
                return Err(biz("ORDERCLOSED", "该订单已关闭"))
            }
            OrderState::Notpay => {}
        }
        if order.request != business {
            return Err(if sim.config.reentry_invalid_request {
                biz("INVALID_REQUEST", "201 商户订单号重复")
            } else {
                biz("OUT_TRADE_NO_USED", "商户订单号重复")
            });
        }
        // Re-entry with identical parameters: the same prepay_id while it is valid, a fresh
        // one (valid 2 h again) after that (§8.1, §14.5).
        if now >= order.prepay_expires_at {
            order.prepay_id = store::new_prepay_id(now);
            order.prepay_expires_at = now + Duration::from_secs(7200);
        }
        return Ok(Answer::Fields(prepay_fields(order)));
    }

    if let Some(expire) = time_expire {
        if expire < now + wxpay::MIN_ORDER_LIFETIME {
            return Err(biz(
                "INVALID_REQUEST",
                "time_expire时间过短，刷卡至少1分钟，其他5分钟",
            ));
        }
    }
    let seq = store.next_seq();
    let order = Order {
        out_trade_no: otn.clone(),
        state: OrderState::Notpay,
        total_fee,
        body: body.to_owned(),
        attach: optional(p, "attach").map(str::to_owned),
        device_info: optional(p, "device_info").map(str::to_owned),
        openid: optional(p, "openid").map(str::to_owned),
        trade_type: trade_type.to_owned(),
        notify_url: notify_url.to_owned(),
        sign_type,
        sandbox,
        prepay_id: store::new_prepay_id(now),
        prepay_expires_at: now + Duration::from_secs(7200),
        expires_at: time_expire.unwrap_or(now + sim.config.order_lifetime),
        created_at: now,
        transaction_id: None,
        time_end: None,
        bank_type: None,
        cash_fee: None,
        err_code: None,
        err_code_des: None,
        refunded_fee: 0,
        refunds: Vec::new(),
        request: business,
        seq,
    };
    let fields = prepay_fields(&order);
    tracing::info!(order.out_trade_no = %otn, total_fee, "order created");
    store.orders.insert(otn, order);
    Ok(Answer::Fields(fields))
}

fn prepay_fields(order: &Order) -> Params {
    let mut f = Params::new();
    f.insert("trade_type".into(), order.trade_type.clone());
    f.insert("prepay_id".into(), order.prepay_id.clone());
    if order.trade_type == "NATIVE" {
        f.insert(
            "code_url".into(),
            format!("weixin://wxpay/bizpayurl?pr={}", &order.prepay_id[16..]),
        );
    }
    if order.trade_type == "MWEB" {
        f.insert(
            "mweb_url".into(),
            format!(
                "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={}",
                order.prepay_id
            ),
        );
    }
    f
}

/// `orderquery` (§8.3): the full field set once paid, a subset before.
fn order_query(sim: &Sim, p: &Params) -> Result<Answer, Failure> {
    let now = sim.clock.now();
    let txn = optional(p, "transaction_id");
    let otn = optional(p, "out_trade_no");
    if txn.is_none() && otn.is_none() {
        return Err(envelope("缺少参数transaction_id或out_trade_no"));
    }
    let mut store = sim.store();
    let key = store.find_order(txn, otn).map(|o| o.out_trade_no.clone());
    let Some(key) = key else {
        return Err(biz("ORDERNOTEXIST", "订单不存在"));
    };
    store.expire(&key, now);
    let order = &store.orders[&key];
    Ok(Answer::Fields(order_query_fields(order)))
}

pub(crate) fn order_query_fields(o: &Order) -> Params {
    let mut f = Params::new();
    f.insert("out_trade_no".into(), o.out_trade_no.clone());
    f.insert("trade_state".into(), o.state.as_str().into());
    f.insert("trade_state_desc".into(), o.state.desc().into());
    f.insert("total_fee".into(), o.total_fee.to_string());
    if let Some(a) = &o.attach {
        f.insert("attach".into(), a.clone());
    }
    if o.state.is_paid() {
        let cash = o.cash_fee.unwrap_or(o.total_fee);
        f.insert("openid".into(), o.openid.clone().unwrap_or_default());
        f.insert("is_subscribe".into(), "N".into());
        f.insert("trade_type".into(), o.trade_type.clone());
        f.insert("bank_type".into(), o.bank_type.clone().unwrap_or_default());
        f.insert("fee_type".into(), "CNY".into());
        f.insert("cash_fee".into(), cash.to_string());
        if cash < o.total_fee {
            coupon_fields(&mut f, o.total_fee - cash);
        }
        f.insert(
            "transaction_id".into(),
            o.transaction_id.clone().unwrap_or_default(),
        );
        if let Some(t) = o.time_end {
            f.insert("time_end".into(), wxpay::wxtime::format_compact(t));
        }
    } else if o.state == OrderState::Payerror {
        if let Some(b) = &o.bank_type {
            f.insert("bank_type".into(), b.clone());
        }
    }
    f
}

/// One coupon covering the non-cash part (§8.3 `coupon_*`).
pub(crate) fn coupon_fields(f: &mut Params, coupon_fee: i64) {
    f.insert("coupon_fee".into(), coupon_fee.to_string());
    f.insert("coupon_count".into(), "1".into());
    f.insert("coupon_type_0".into(), "CASH".into());
    f.insert("coupon_id_0".into(), "10000000000".into());
    f.insert("coupon_fee_0".into(), coupon_fee.to_string());
}

/// `closeorder` (§8.4).
fn close_order(sim: &Sim, p: &Params) -> Result<Answer, Failure> {
    let now = sim.clock.now();
    let otn = out_trade_no(p)?.to_owned();
    let mut store = sim.store();
    store.expire(&otn, now);
    let Some(order) = store.orders.get_mut(&otn) else {
        return Err(biz("ORDERNOTEXIST", "订单不存在"));
    };
    match order.state {
        OrderState::Success | OrderState::Refund => {
            Err(biz("ORDERPAID", "订单已支付，不能发起关单"))
        }
        OrderState::Closed => Err(biz("ORDERCLOSED", "订单已关闭，无法重复关闭")),
        OrderState::Notpay | OrderState::Payerror => {
            if let Some(min) = sim.config.close_min_age {
                if now < order.created_at + min {
                    return Err(biz("TRADE_STATE_ERROR", "订单创建后5分钟内不能关单"));
                }
            }
            order.state = OrderState::Closed;
            tracing::info!(order.out_trade_no = %otn, "order closed");
            Ok(Answer::Fields(Params::from([(
                "result_msg".to_owned(),
                "OK".to_owned(),
            )])))
        }
    }
}

/// `refund` (§8.5): the request's formats here, the ledger rules in
/// [`refunds::accept_refund`] (idempotent `out_refund_no`, 50 refunds, amount caps,
/// `NOTENOUGH`). Accepted refunds are PROCESSING and get their outcome scheduled.
fn refund(
    sim: &Arc<Sim>,
    p: &Params,
    sign_type: SignType,
    sandbox: bool,
) -> Result<Answer, Failure> {
    let txn = optional(p, "transaction_id");
    let otn = optional(p, "out_trade_no");
    if txn.is_none() && otn.is_none() {
        return Err(envelope("缺少参数transaction_id或out_trade_no"));
    }
    let out_refund_no = required(p, "out_refund_no")?;
    if !out_refund_no_ok(out_refund_no) {
        return Err(format_error("out_refund_no"));
    }
    let total_fee = fee(p, "total_fee")?;
    let refund_fee = fee(p, "refund_fee")?;
    if optional(p, "refund_fee_type").is_some_and(|f| f != "CNY") {
        return Err(format_error("refund_fee_type"));
    }
    if optional(p, "refund_desc").is_some_and(|d| d.chars().count() > 80) {
        return Err(envelope("refund_desc参数长度有误"));
    }
    let refund_account = optional(p, "refund_account").unwrap_or(refunds::UNSETTLED_FUNDS);
    if !matches!(
        refund_account,
        refunds::UNSETTLED_FUNDS | "REFUND_SOURCE_RECHARGE_FUNDS"
    ) {
        return Err(format_error("refund_account"));
    }
    let notify_url = match optional(p, "notify_url") {
        Some(u) if !url_ok(sim, u) => return Err(format_error("notify_url")),
        Some(u) => Some(u.to_owned()),
        None => sim.config.default_refund_notify_url.clone(),
    };
    if let Some(t) = txn {
        if t.len() != 28 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(biz("INVALID_TRANSACTIONID", "无效transaction_id"));
        }
    }
    let ask = RefundAsk {
        out_refund_no: Some(out_refund_no.to_owned()),
        total_fee,
        refund_fee,
        refund_desc: optional(p, "refund_desc").map(str::to_owned),
        notify_url,
        refund_account: refund_account.to_owned(),
        source: RefundSource::Api,
        sign_type,
        sandbox,
    };
    let key = OrderKey {
        transaction_id: txn,
        out_trade_no: otn,
    };
    let accepted =
        refunds::accept_refund(sim, key, ask).map_err(|r| biz(r.err_code(), r.description()))?;
    Ok(Answer::Fields(refund_fields(
        &accepted.refund,
        &accepted.order,
    )))
}

/// A valid `out_refund_no` (§8.5): at most 64 of `[0-9A-Za-z_-|*@]`.
pub(crate) fn out_refund_no_ok(v: &str) -> bool {
    charset_ok(v, 64, b"@")
}

fn refund_fields(r: &Refund, o: &Order) -> Params {
    let cash = o.cash_fee.unwrap_or(o.total_fee);
    Params::from([
        ("transaction_id".to_owned(), r.transaction_id.clone()),
        ("out_trade_no".to_owned(), r.out_trade_no.clone()),
        ("out_refund_no".to_owned(), r.out_refund_no.clone()),
        ("refund_id".to_owned(), r.refund_id.clone()),
        ("refund_fee".to_owned(), r.refund_fee.to_string()),
        ("total_fee".to_owned(), r.total_fee.to_string()),
        ("cash_fee".to_owned(), cash.to_string()),
        (
            "cash_refund_fee".to_owned(),
            r.refund_fee.min(cash).to_string(),
        ),
        ("coupon_refund_fee".to_owned(), "0".to_owned()),
        ("coupon_refund_count".to_owned(), "0".to_owned()),
    ])
}

/// `refundquery` (§8.6): `refund_id` > `out_refund_no` > `transaction_id` > `out_trade_no`,
/// 10 refunds per page with `offset`.
fn refund_query(sim: &Sim, p: &Params) -> Result<Answer, Failure> {
    let store = sim.store();
    let not_exist = || biz("REFUNDNOTEXIST", "not exist");
    let (order, refunds, paged, offset) = if let Some(id) = optional(p, "refund_id") {
        let r = store
            .by_refund_id
            .get(id)
            .and_then(|k| store.refunds.get(k))
            .ok_or_else(not_exist)?;
        (&store.orders[&r.out_trade_no], vec![r], false, 0)
    } else if let Some(no) = optional(p, "out_refund_no") {
        let r = store.refunds.get(no).ok_or_else(not_exist)?;
        (&store.orders[&r.out_trade_no], vec![r], false, 0)
    } else {
        let txn = optional(p, "transaction_id");
        let otn = optional(p, "out_trade_no");
        if txn.is_none() && otn.is_none() {
            return Err(envelope(
                "缺少参数refund_id、out_refund_no、transaction_id或out_trade_no",
            ));
        }
        let order = store.find_order(txn, otn).ok_or_else(not_exist)?;
        let all: Vec<&Refund> = order
            .refunds
            .iter()
            .filter_map(|k| store.refunds.get(k))
            .collect();
        if all.is_empty() {
            return Err(not_exist());
        }
        let offset = match optional(p, "offset") {
            None => 0,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| biz("PARAM_ERROR", "offset参数错误"))?,
        };
        if offset >= all.len() {
            return Err(biz("PARAM_ERROR", "offset参数错误"));
        }
        (order, all, true, offset)
    };
    let total = refunds.len();
    let page: Vec<&Refund> = refunds.into_iter().skip(offset).take(10).collect();
    let cash = order.cash_fee.unwrap_or(order.total_fee);
    let mut f = Params::new();
    f.insert(
        "transaction_id".into(),
        order.transaction_id.clone().unwrap_or_default(),
    );
    f.insert("out_trade_no".into(), order.out_trade_no.clone());
    f.insert("total_fee".into(), order.total_fee.to_string());
    f.insert("cash_fee".into(), cash.to_string());
    f.insert("fee_type".into(), "CNY".into());
    f.insert("refund_count".into(), page.len().to_string());
    if paged {
        f.insert("total_refund_count".into(), total.to_string());
    }
    f.insert(
        "refund_fee".into(),
        page.iter().map(|r| r.refund_fee).sum::<i64>().to_string(),
    );
    for (n, r) in page.iter().enumerate() {
        let mut put = |name: &str, v: String| {
            f.insert(format!("{name}_{n}"), v);
        };
        put("out_refund_no", r.out_refund_no.clone());
        put("refund_id", r.refund_id.clone());
        put("refund_channel", "ORIGINAL".into());
        put("refund_fee", r.refund_fee.to_string());
        put("coupon_refund_fee", "0".into());
        put("refund_status", r.status.as_str().into());
        put("refund_account", r.refund_account.clone());
        put("refund_recv_accout", r.refund_recv_accout.clone());
        if let Some(t) = r.success_time {
            put("refund_success_time", wxpay::wxtime::format_display(t));
        }
    }
    Ok(Answer::Fields(f))
}
