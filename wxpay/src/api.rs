//! Typed requests and responses of the v2 endpoints (docs/wechatpay-v2.md §8) and the response evaluation of
//! §6, as pure functions: [`evaluate_response`] turns a response body into verified
//! parameters or a typed [`Error`]; each `*Response::from_params` reads the payload.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fields::{
    opt_compact_time, opt_display_time, opt_int, opt_string, req, req_int, req_string,
};
use crate::{sign, wxtime, xml, ApiKey, Error, Params, SignType};

/// Paths of the v2 endpoints, appended to the configured base URL (§2.2).
pub mod path {
    /// `POST /pay/unifiedorder` (§8.1).
    pub const UNIFIED_ORDER: &str = "/pay/unifiedorder";
    /// `POST /pay/orderquery` (§8.3).
    pub const ORDER_QUERY: &str = "/pay/orderquery";
    /// `POST /pay/closeorder` (§8.4).
    pub const CLOSE_ORDER: &str = "/pay/closeorder";
    /// `POST /secapi/pay/refund`, mutual TLS (§8.5).
    pub const REFUND: &str = "/secapi/pay/refund";
    /// `POST /pay/refundquery` (§8.6).
    pub const REFUND_QUERY: &str = "/pay/refundquery";
    /// `POST /pay/downloadbill` (§8.7).
    pub const DOWNLOAD_BILL: &str = "/pay/downloadbill";
    /// `GET /sns/jscode2session` on the login host (§8.10).
    pub const JSCODE2SESSION: &str = "/sns/jscode2session";
}

/// Evaluate a v2 response body per §6 and return its verified parameters.
///
/// 1. A body that is not XML (an HTML gateway page, text) → [`Error::NotXml`]; strict parse
///    (§4.2) → [`Error::Xml`].
/// 2. `return_code=FAIL` → [`Error::ReturnFail`] without verifying anything (FAIL envelopes
///    are unsigned). The sandbox's `retcode`/`retmsg` variant is treated the same (§8.11).
/// 3. `return_code=SUCCESS` → `sign` must be present ([`Error::MissingSign`]) and valid with the
///    algorithm **the request used** ([`Error::BadSignature`]); `appid` and `mch_id` must
///    equal ours ([`Error::AppIdMismatch`], [`Error::MchIdMismatch`]). The one exception: a
///    `result_code=FAIL` without any `sign` is [`Error::UnsignedResultFail`] (§6: WeChat Pay
///    sometimes leaves the sign out of business refusals), so its `err_code` still reaches
///    the caller; with a sign it must verify like any other answer.
/// 4. `result_code=FAIL` → [`Error::ResultFail`] with `err_code` / `err_code_des` (§7).
pub fn evaluate_response(
    endpoint: &str,
    body: &[u8],
    key: &ApiKey,
    sign_type: SignType,
    appid: &str,
    mch_id: &str,
) -> Result<Params, Error> {
    let params = parse_response_xml(endpoint, body)?;
    check_return_code(&params)?;
    unsigned_refusal(&params)?;
    sign::verify(&params, key, sign_type)?;
    check_merchant(&params, appid, mch_id)?;
    check_result_code(&params)?;
    Ok(params)
}

/// Verify a signed **request** body in one call, as WeChat Pay's side of a test does (§5.2
/// request row): strict parse, `sign_type` per [`request_sign_type`], signature valid.
/// Returns the parameters and the sign type, which the response must be signed with. The
/// simulator does not call it: it checks a request's envelope step by step in WeChat's
/// order (`mch_id` before the signature, a lowercase `sign` accepted when configured, each
/// failure with WeChat's own `return_msg`), using [`request_sign_type`] and [`verify`].
///
/// [`verify`]: crate::verify
pub fn verify_request(body: &[u8], key: &ApiKey) -> Result<(Params, SignType), Error> {
    let params = xml::parse(body)?;
    let sign_type = request_sign_type(&params)?;
    sign::verify(&params, key, sign_type)?;
    Ok((params, sign_type))
}

/// The sign type a request declares (§5.2 request row): `MD5` when `sign_type` is absent or
/// empty, otherwise exactly `MD5` or `HMAC-SHA256` (a lowercase `md5` is refused, as WeChat
/// Pay refuses it with `签名类型不支持`).
pub fn request_sign_type(params: &Params) -> Result<SignType, Error> {
    match params.get(sign::SIGN_TYPE_FIELD).map(String::as_str) {
        None | Some("") => Ok(SignType::Md5),
        Some(v) => v
            .parse()
            .map_err(|e: sign::UnknownSignType| Error::UnsupportedSignType { value: e.0 }),
    }
}

/// Step 1 of §6: sniff for a non-XML body, then parse strictly.
pub(crate) fn parse_response_xml(endpoint: &str, body: &[u8]) -> Result<Params, Error> {
    if !looks_like_xml(body) {
        return Err(Error::NotXml {
            endpoint: endpoint.to_owned(),
            body: snippet(body),
        });
    }
    Ok(xml::parse(body)?)
}

/// Whether a body can be a v2 XML message: after a BOM and whitespace it starts with `<`
/// and is not an HTML page (gopay treats `<HTML` as an error, §2.3).
pub(crate) fn looks_like_xml(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head: Vec<u8> = body[start..]
        .iter()
        .take(14)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<") && !head.starts_with(b"<html") && !head.starts_with(b"<!doctype html")
}

/// The first bytes of a body for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let cut = body.len().min(512);
    String::from_utf8_lossy(&body[..cut]).into_owned()
}

/// Step 2 of §6.
pub(crate) fn check_return_code(params: &Params) -> Result<(), Error> {
    match params.get("return_code").map(String::as_str) {
        Some("SUCCESS") => Ok(()),
        Some("FAIL") => Err(Error::ReturnFail {
            return_msg: params.get("return_msg").cloned().unwrap_or_default(),
        }),
        None if params.contains_key("retcode") => Err(Error::ReturnFail {
            return_msg: params.get("retmsg").cloned().unwrap_or_default(),
        }),
        None => Err(Error::MissingField {
            field: "return_code".into(),
        }),
        Some(other) => Err(Error::InvalidField {
            field: "return_code".into(),
            value: other.to_owned(),
            reason: "expected SUCCESS or FAIL",
        }),
    }
}

/// Step 3's exception: a business refusal (`result_code=FAIL`) that carries no `sign` at all
/// is [`Error::UnsignedResultFail`]; everything else goes on to the signature check (so a
/// `SUCCESS` without `sign` is [`Error::MissingSign`]).
fn unsigned_refusal(params: &Params) -> Result<(), Error> {
    let unsigned = params.get("sign").is_none_or(String::is_empty);
    if unsigned && params.get("result_code").map(String::as_str) == Some("FAIL") {
        return Err(Error::UnsignedResultFail {
            err_code: params.get("err_code").cloned().unwrap_or_default(),
            err_code_des: params.get("err_code_des").cloned().unwrap_or_default(),
        });
    }
    Ok(())
}

/// `appid` / `mch_id` must be ours (§6 step 3, §11.2 item 4).
pub fn check_merchant(params: &Params, appid: &str, mch_id: &str) -> Result<(), Error> {
    let found = params.get("appid").map(String::as_str).unwrap_or("");
    if found != appid {
        return Err(Error::AppIdMismatch {
            expected: appid.to_owned(),
            found: found.to_owned(),
        });
    }
    let found = params.get("mch_id").map(String::as_str).unwrap_or("");
    if found != mch_id {
        return Err(Error::MchIdMismatch {
            expected: mch_id.to_owned(),
            found: found.to_owned(),
        });
    }
    Ok(())
}

/// Step 4 of §6.
pub(crate) fn check_result_code(params: &Params) -> Result<(), Error> {
    match params.get("result_code").map(String::as_str) {
        Some("SUCCESS") => Ok(()),
        Some("FAIL") => Err(Error::ResultFail {
            err_code: params.get("err_code").cloned().unwrap_or_default(),
            err_code_des: params.get("err_code_des").cloned().unwrap_or_default(),
        }),
        None => Err(Error::MissingField {
            field: "result_code".into(),
        }),
        Some(other) => Err(Error::InvalidField {
            field: "result_code".into(),
            value: other.to_owned(),
            reason: "expected SUCCESS or FAIL",
        }),
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this crate does not know; kept verbatim and treated as non-final.
            Other(String),
        }

        impl $name {
            /// Parse the wire value (exact); unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)+
                    other => $name::Other(other.to_owned()),
                }
            }

            /// The wire value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok(Self::parse(&String::deserialize(d)?))
            }
        }
    };
}

wire_enum! {
    /// `trade_state` of orderquery (§8.3).
    TradeState {
        /// Paid.
        Success = "SUCCESS",
        /// A refund was initiated on the paid order.
        Refund = "REFUND",
        /// Not paid yet; the user can still pay until expiry or close.
        NotPay = "NOTPAY",
        /// Closed by closeorder or by the system.
        Closed = "CLOSED",
        /// Reversed (付款码 only).
        Revoked = "REVOKED",
        /// User entering the password (付款码 only).
        UserPaying = "USERPAYING",
        /// Payment failed.
        PayError = "PAYERROR",
        /// Accepted, waiting for debit.
        Accept = "ACCEPT",
    }
}

impl TradeState {
    /// Terminal states per §8.3 (`SUCCESS` may still become `REFUND`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            TradeState::Success
                | TradeState::Refund
                | TradeState::Closed
                | TradeState::Revoked
                | TradeState::PayError
        )
    }
}

wire_enum! {
    /// `refund_status` of refundquery and the refund notification (§8.6, §8.9).
    RefundStatus {
        /// Refunded.
        Success = "SUCCESS",
        /// Closed = failed, final.
        RefundClose = "REFUNDCLOSE",
        /// In progress.
        Processing = "PROCESSING",
        /// Abnormal (e.g. card cancelled); needs manual handling; not final.
        Change = "CHANGE",
    }
}

impl RefundStatus {
    /// Final states (§8.6): `SUCCESS` and `REFUNDCLOSE`. `CHANGE` and unknown values are not.
    pub fn is_final(&self) -> bool {
        matches!(self, RefundStatus::Success | RefundStatus::RefundClose)
    }
}

wire_enum! {
    /// `trade_type` (§8.1).
    TradeType {
        /// Mini Program / official-account payment.
        Jsapi = "JSAPI",
        /// QR code.
        Native = "NATIVE",
        /// App.
        App = "APP",
        /// Mobile web.
        Mweb = "MWEB",
    }
}

wire_enum! {
    /// `bill_type` of downloadbill (§8.7).
    BillType {
        /// All transactions (default).
        All = "ALL",
        /// Successful payments.
        Success = "SUCCESS",
        /// Refunds.
        Refund = "REFUND",
        /// Recharge-coupon refunds.
        RechargeRefund = "RECHARGE_REFUND",
    }
}

/// Reject values WeChat would mangle or refuse (§5.4: never send leading/trailing
/// whitespace; §4: no characters XML cannot carry).
fn check_value(field: &str, value: &str) -> Result<(), Error> {
    if value.trim() != value {
        return Err(Error::InvalidRequest {
            field: field.to_owned(),
            reason: "leading or trailing whitespace".into(),
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Error::InvalidRequest {
            field: field.to_owned(),
            reason: "control characters".into(),
        });
    }
    Ok(())
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::InvalidRequest {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// `out_trade_no`: ≤ 32 chars of `[0-9A-Za-z_-|*]` (§8.1, §9; `@` and the 6-char minimum of
/// some doc versions are not required, §14.13).
pub fn check_out_trade_no(v: &str) -> Result<(), Error> {
    if v.is_empty()
        || v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b))
    {
        return Err(invalid(
            "out_trade_no",
            "1–32 characters of [0-9A-Za-z_-|*]",
        ));
    }
    Ok(())
}

/// `out_refund_no`: ≤ 64 chars of `[0-9A-Za-z_-|*@]` (§8.5, §9).
pub fn check_out_refund_no(v: &str) -> Result<(), Error> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
    {
        return Err(invalid(
            "out_refund_no",
            "1–64 characters of [0-9A-Za-z_-|*@]",
        ));
    }
    Ok(())
}

fn check_fee(field: &str, fen: i64) -> Result<(), Error> {
    if fen <= 0 {
        return Err(invalid(field, "amount must be a positive number of fen"));
    }
    Ok(())
}

fn put(p: &mut Params, name: &str, value: impl Into<String>) {
    p.insert(name.to_owned(), value.into());
}

fn put_opt(p: &mut Params, name: &str, value: &Option<String>) {
    if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
        p.insert(name.to_owned(), v.clone());
    }
}

/// Validate and merge extra parameters (fields this crate has no typed slot for).
fn merge_extra(p: &mut Params, extra: &Params) -> Result<(), Error> {
    for (k, v) in extra {
        if !xml::is_valid_name(k)
            || matches!(
                k.as_str(),
                "sign" | "key" | "sign_type" | "appid" | "mch_id" | "nonce_str"
            )
        {
            return Err(invalid(k, "not allowed as an extra parameter"));
        }
        if !v.is_empty() {
            p.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

fn validate_all(p: &Params) -> Result<(), Error> {
    p.iter().try_for_each(|(k, v)| check_value(k, v))
}

/// Request of `POST /pay/unifiedorder` (§8.1). Common fields (`appid`, `mch_id`, `nonce_str`,
/// `sign_type`, `sign`) are added by the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnifiedOrderRequest {
    /// Short description, ≤ 127 bytes of UTF-8 (§8.1, §14.9).
    pub body: String,
    /// Merchant order id.
    pub out_trade_no: String,
    /// Amount in fen, > 0.
    pub total_fee: i64,
    /// IP of the machine calling the API.
    pub spbill_create_ip: String,
    /// Absolute URL without query string.
    pub notify_url: String,
    /// `JSAPI` for Mini Programs.
    pub trade_type: Option<TradeType>,
    /// Payer's openid under this appid (required for JSAPI).
    pub openid: Option<String>,
    /// `device_info`.
    pub device_info: Option<String>,
    /// `detail` (JSON text).
    pub detail: Option<String>,
    /// `attach`, echoed back (≤ 127).
    pub attach: Option<String>,
    /// `fee_type`, `CNY`.
    pub fee_type: Option<String>,
    /// `time_start`, written in UTC+8.
    pub time_start: Option<OffsetDateTime>,
    /// `time_expire`, written in UTC+8.
    pub time_expire: Option<OffsetDateTime>,
    /// `goods_tag`.
    pub goods_tag: Option<String>,
    /// `product_id` (NATIVE only).
    pub product_id: Option<String>,
    /// `limit_pay`, e.g. `no_credit`.
    pub limit_pay: Option<String>,
    /// `scene_info` (JSON text).
    pub scene_info: Option<String>,
    /// `profit_sharing`, `Y`/`N`.
    pub profit_sharing: Option<String>,
    /// Any further parameter, sent and signed verbatim.
    pub extra: Params,
}

impl UnifiedOrderRequest {
    /// A Mini Program (JSAPI) order (§8.1).
    pub fn jsapi(
        body: impl Into<String>,
        out_trade_no: impl Into<String>,
        total_fee: i64,
        spbill_create_ip: impl Into<String>,
        notify_url: impl Into<String>,
        openid: impl Into<String>,
    ) -> Self {
        UnifiedOrderRequest {
            body: body.into(),
            out_trade_no: out_trade_no.into(),
            total_fee,
            spbill_create_ip: spbill_create_ip.into(),
            notify_url: notify_url.into(),
            trade_type: Some(TradeType::Jsapi),
            openid: Some(openid.into()),
            ..Default::default()
        }
    }

    /// The endpoint parameters, validated (§8.1).
    pub fn to_params(&self) -> Result<Params, Error> {
        check_out_trade_no(&self.out_trade_no)?;
        check_fee("total_fee", self.total_fee)?;
        if self.body.is_empty() || self.body.len() > 127 {
            return Err(invalid("body", "1–127 bytes of UTF-8"));
        }
        if self.attach.as_ref().is_some_and(|a| a.len() > 127) {
            return Err(invalid("attach", "at most 127 bytes of UTF-8"));
        }
        if self.notify_url.is_empty() || self.notify_url.contains('?') {
            return Err(invalid(
                "notify_url",
                "an absolute URL without query string",
            ));
        }
        if self.spbill_create_ip.is_empty() {
            return Err(invalid("spbill_create_ip", "required"));
        }
        let trade_type = self.trade_type.clone().unwrap_or(TradeType::Jsapi);
        if trade_type == TradeType::Jsapi && self.openid.as_deref().unwrap_or("").is_empty() {
            return Err(invalid("openid", "required for trade_type JSAPI"));
        }
        let mut p = Params::new();
        put(&mut p, "body", &self.body);
        put(&mut p, "out_trade_no", &self.out_trade_no);
        put(&mut p, "total_fee", self.total_fee.to_string());
        put(&mut p, "spbill_create_ip", &self.spbill_create_ip);
        put(&mut p, "notify_url", &self.notify_url);
        put(&mut p, "trade_type", trade_type.as_str());
        put_opt(&mut p, "openid", &self.openid);
        put_opt(&mut p, "device_info", &self.device_info);
        put_opt(&mut p, "detail", &self.detail);
        put_opt(&mut p, "attach", &self.attach);
        put_opt(&mut p, "fee_type", &self.fee_type);
        put_opt(&mut p, "goods_tag", &self.goods_tag);
        put_opt(&mut p, "product_id", &self.product_id);
        put_opt(&mut p, "limit_pay", &self.limit_pay);
        put_opt(&mut p, "scene_info", &self.scene_info);
        put_opt(&mut p, "profit_sharing", &self.profit_sharing);
        if let Some(t) = self.time_start {
            put(&mut p, "time_start", wxtime::format_compact(t));
        }
        if let Some(t) = self.time_expire {
            put(&mut p, "time_expire", wxtime::format_compact(t));
        }
        merge_extra(&mut p, &self.extra)?;
        validate_all(&p)?;
        Ok(p)
    }
}

/// Payload of a successful unifiedorder (§8.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnifiedOrderResponse {
    /// `prepay_id`, valid for 2 hours; opaque.
    pub prepay_id: String,
    /// `trade_type` echoed.
    pub trade_type: Option<String>,
    /// `code_url` (NATIVE only).
    pub code_url: Option<String>,
    /// `mweb_url` (MWEB only).
    pub mweb_url: Option<String>,
    /// All verified parameters.
    pub params: Params,
}

impl UnifiedOrderResponse {
    /// Read from verified parameters (§8.1).
    pub fn from_params(params: Params) -> Result<Self, Error> {
        Ok(UnifiedOrderResponse {
            prepay_id: req_string(&params, "prepay_id")?,
            trade_type: opt_string(&params, "trade_type"),
            code_url: opt_string(&params, "code_url"),
            mweb_url: opt_string(&params, "mweb_url"),
            params,
        })
    }
}

/// Which order orderquery asks about (§8.3); `transaction_id` is the recommended key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderQuery {
    /// By merchant order id.
    ByOutTradeNo(String),
    /// By WeChat transaction id.
    ByTransactionId(String),
}

impl OrderQuery {
    /// The endpoint parameters (§8.3).
    pub fn to_params(&self) -> Result<Params, Error> {
        let mut p = Params::new();
        match self {
            OrderQuery::ByOutTradeNo(v) => {
                check_out_trade_no(v)?;
                put(&mut p, "out_trade_no", v);
            }
            OrderQuery::ByTransactionId(v) => {
                if v.is_empty() || v.len() > 32 {
                    return Err(invalid("transaction_id", "1–32 characters"));
                }
                put(&mut p, "transaction_id", v);
            }
        }
        validate_all(&p)?;
        Ok(p)
    }
}

/// One coupon of an order (`coupon_type_$n`, `coupon_id_$n`, `coupon_fee_$n`, §8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coupon {
    /// `coupon_id_$n`.
    pub id: Option<String>,
    /// `coupon_type_$n` (`CASH` / `NO_CASH`).
    pub coupon_type: Option<String>,
    /// `coupon_fee_$n` in fen.
    pub fee: Option<i64>,
}

fn coupons(
    p: &Params,
    count_field: &str,
    id: &str,
    ty: &str,
    fee: &str,
    suffix: &str,
) -> Result<Vec<Coupon>, Error> {
    let count = opt_int(p, count_field)?.unwrap_or(0).min(1000);
    (0..count)
        .map(|n| {
            Ok(Coupon {
                id: opt_string(p, &format!("{id}{suffix}{n}")),
                coupon_type: opt_string(p, &format!("{ty}{suffix}{n}")),
                fee: opt_int(p, &format!("{fee}{suffix}{n}"))?,
            })
        })
        .collect()
}

/// Payload of a successful orderquery (§8.3). Only `trade_state` says whether the order is
/// paid (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQueryResponse {
    /// `trade_state`.
    pub trade_state: TradeState,
    /// `trade_state_desc`.
    pub trade_state_desc: Option<String>,
    /// `out_trade_no`.
    pub out_trade_no: Option<String>,
    /// `transaction_id` (paid orders).
    pub transaction_id: Option<String>,
    /// `total_fee` in fen.
    pub total_fee: Option<i64>,
    /// `settlement_total_fee` in fen.
    pub settlement_total_fee: Option<i64>,
    /// `cash_fee` in fen.
    pub cash_fee: Option<i64>,
    /// `coupon_fee` in fen.
    pub coupon_fee: Option<i64>,
    /// Coupons `coupon_*_$n`.
    pub coupons: Vec<Coupon>,
    /// `fee_type`.
    pub fee_type: Option<String>,
    /// `openid`.
    pub openid: Option<String>,
    /// `trade_type`.
    pub trade_type: Option<String>,
    /// `bank_type`.
    pub bank_type: Option<String>,
    /// `attach`.
    pub attach: Option<String>,
    /// `time_end` (UTC+8).
    pub time_end: Option<OffsetDateTime>,
    /// All verified parameters.
    pub params: Params,
}

impl OrderQueryResponse {
    /// Read from verified parameters (§8.3).
    pub fn from_params(params: Params) -> Result<Self, Error> {
        Ok(OrderQueryResponse {
            trade_state: TradeState::parse(req(&params, "trade_state")?),
            trade_state_desc: opt_string(&params, "trade_state_desc"),
            out_trade_no: opt_string(&params, "out_trade_no"),
            transaction_id: opt_string(&params, "transaction_id"),
            total_fee: opt_int(&params, "total_fee")?,
            settlement_total_fee: opt_int(&params, "settlement_total_fee")?,
            cash_fee: opt_int(&params, "cash_fee")?,
            coupon_fee: opt_int(&params, "coupon_fee")?,
            coupons: coupons(
                &params,
                "coupon_count",
                "coupon_id",
                "coupon_type",
                "coupon_fee",
                "_",
            )?,
            fee_type: opt_string(&params, "fee_type"),
            openid: opt_string(&params, "openid"),
            trade_type: opt_string(&params, "trade_type"),
            bank_type: opt_string(&params, "bank_type"),
            attach: opt_string(&params, "attach"),
            time_end: opt_compact_time(&params, "time_end")?,
            params,
        })
    }

    /// `trade_state == SUCCESS` (§6: the only proof of payment besides a verified notification).
    pub fn is_paid(&self) -> bool {
        self.trade_state == TradeState::Success
    }
}

/// Payload of a successful closeorder (§8.4). `ORDERPAID` / `ORDERCLOSED` arrive as
/// [`Error::ResultFail`]; check [`Error::err_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOrderResponse {
    /// `result_msg` when present.
    pub result_msg: Option<String>,
    /// All verified parameters.
    pub params: Params,
}

impl CloseOrderResponse {
    /// Read from verified parameters (§8.4).
    pub fn from_params(params: Params) -> Self {
        CloseOrderResponse {
            result_msg: opt_string(&params, "result_msg"),
            params,
        }
    }
}

/// Which order a refund applies to (§8.5); `transaction_id` takes precedence at WeChat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// By merchant order id.
    OutTradeNo(String),
    /// By WeChat transaction id.
    TransactionId(String),
}

/// The shortest order lifetime unifiedorder takes: `time_expire` at least this far after
/// the request (§8.1: "刷卡至少1分钟，其他5分钟"; Mini Program orders are JSAPI).
pub const MIN_ORDER_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// How long after its creation an order can first be closed (§8.4: "订单生成后不能马上调用关单
/// 接口，最短调用时间间隔为5分钟").
pub const CLOSE_AFTER: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The most characters `refund_desc` may have (§8.5: `String(80)`; longer is refused).
pub const REFUND_DESC_MAX_CHARS: usize = 80;

/// `refund_desc` from a free-text refund reason (§8.5): WeChat Pay shows it in the refund
/// message the shopper receives. Runs of whitespace (line breaks included) become one space
/// and other control characters go (the request may carry neither), then the text is cut
/// to [`REFUND_DESC_MAX_CHARS`] characters — never inside a character — and trimmed.
/// `None` when nothing is left. The same reason always gives the same text, so a retry
/// repeats the original request.
pub fn refund_desc(reason: &str) -> Option<String> {
    let words: Vec<&str> = reason.split_whitespace().collect();
    let text: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(REFUND_DESC_MAX_CHARS)
        .collect();
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Request of `POST /secapi/pay/refund` (§8.5). Retry with the **same** `out_refund_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The order.
    pub order: OrderRef,
    /// Merchant refund id: the idempotency key.
    pub out_refund_no: String,
    /// The order's total amount in fen (must equal the paid amount).
    pub total_fee: i64,
    /// This refund's amount in fen.
    pub refund_fee: i64,
    /// `refund_fee_type`, `CNY`.
    pub refund_fee_type: Option<String>,
    /// `refund_desc` shown to the user (≤ [`REFUND_DESC_MAX_CHARS`] characters; see
    /// [`refund_desc`]).
    pub refund_desc: Option<String>,
    /// `refund_account`.
    pub refund_account: Option<String>,
    /// `notify_url` for the refund notification.
    pub notify_url: Option<String>,
    /// Any further parameter.
    pub extra: Params,
}

impl RefundRequest {
    /// A refund of `refund_fee` out of an order of `total_fee` (§8.5).
    pub fn new(
        order: OrderRef,
        out_refund_no: impl Into<String>,
        total_fee: i64,
        refund_fee: i64,
    ) -> Self {
        RefundRequest {
            order,
            out_refund_no: out_refund_no.into(),
            total_fee,
            refund_fee,
            refund_fee_type: None,
            refund_desc: None,
            refund_account: None,
            notify_url: None,
            extra: Params::new(),
        }
    }

    /// The endpoint parameters, validated (§8.5).
    pub fn to_params(&self) -> Result<Params, Error> {
        check_out_refund_no(&self.out_refund_no)?;
        check_fee("total_fee", self.total_fee)?;
        check_fee("refund_fee", self.refund_fee)?;
        if self.refund_fee > self.total_fee {
            return Err(invalid("refund_fee", "exceeds total_fee"));
        }
        let mut p = Params::new();
        match &self.order {
            OrderRef::OutTradeNo(v) => {
                check_out_trade_no(v)?;
                put(&mut p, "out_trade_no", v);
            }
            OrderRef::TransactionId(v) => put(&mut p, "transaction_id", v),
        }
        put(&mut p, "out_refund_no", &self.out_refund_no);
        put(&mut p, "total_fee", self.total_fee.to_string());
        put(&mut p, "refund_fee", self.refund_fee.to_string());
        put_opt(&mut p, "refund_fee_type", &self.refund_fee_type);
        if self
            .refund_desc
            .as_ref()
            .is_some_and(|d| d.chars().count() > REFUND_DESC_MAX_CHARS)
        {
            return Err(invalid("refund_desc", "longer than 80 characters"));
        }
        put_opt(&mut p, "refund_desc", &self.refund_desc);
        put_opt(&mut p, "refund_account", &self.refund_account);
        put_opt(&mut p, "notify_url", &self.notify_url);
        merge_extra(&mut p, &self.extra)?;
        validate_all(&p)?;
        Ok(p)
    }
}

/// Payload of an accepted refund (§8.5): accepted, not completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResponse {
    /// `transaction_id`.
    pub transaction_id: Option<String>,
    /// `out_trade_no`.
    pub out_trade_no: Option<String>,
    /// `out_refund_no`.
    pub out_refund_no: String,
    /// WeChat's `refund_id`.
    pub refund_id: String,
    /// `refund_fee` in fen.
    pub refund_fee: i64,
    /// `settlement_refund_fee` in fen.
    pub settlement_refund_fee: Option<i64>,
    /// `total_fee` in fen.
    pub total_fee: Option<i64>,
    /// `cash_fee` in fen.
    pub cash_fee: Option<i64>,
    /// `cash_refund_fee` in fen.
    pub cash_refund_fee: Option<i64>,
    /// `coupon_refund_fee` in fen.
    pub coupon_refund_fee: Option<i64>,
    /// All verified parameters.
    pub params: Params,
}

impl RefundResponse {
    /// Read from verified parameters (§8.5).
    pub fn from_params(params: Params) -> Result<Self, Error> {
        Ok(RefundResponse {
            transaction_id: opt_string(&params, "transaction_id"),
            out_trade_no: opt_string(&params, "out_trade_no"),
            out_refund_no: req_string(&params, "out_refund_no")?,
            refund_id: req_string(&params, "refund_id")?,
            refund_fee: req_int(&params, "refund_fee")?,
            settlement_refund_fee: opt_int(&params, "settlement_refund_fee")?,
            total_fee: opt_int(&params, "total_fee")?,
            cash_fee: opt_int(&params, "cash_fee")?,
            cash_refund_fee: opt_int(&params, "cash_refund_fee")?,
            coupon_refund_fee: opt_int(&params, "coupon_refund_fee")?,
            params,
        })
    }
}

/// Which refunds refundquery asks about (§8.6); precedence at WeChat: `refund_id` >
/// `out_refund_no` > `transaction_id` > `out_trade_no`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundQuery {
    /// By WeChat refund id.
    ByRefundId(String),
    /// By merchant refund id.
    ByOutRefundNo(String),
    /// All refunds of an order, by transaction id (paged, 10 per page).
    ByTransactionId(String),
    /// All refunds of an order, by merchant order id (paged, 10 per page).
    ByOutTradeNo(String),
}

/// Request of `POST /pay/refundquery` with optional 0-based `offset` paging (§8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQueryRequest {
    /// The key.
    pub query: RefundQuery,
    /// `offset` for orders with more than 10 refunds.
    pub offset: Option<u32>,
}

impl From<RefundQuery> for RefundQueryRequest {
    fn from(query: RefundQuery) -> Self {
        RefundQueryRequest {
            query,
            offset: None,
        }
    }
}

impl RefundQueryRequest {
    /// The endpoint parameters (§8.6).
    pub fn to_params(&self) -> Result<Params, Error> {
        let mut p = Params::new();
        let (name, value) = match &self.query {
            RefundQuery::ByRefundId(v) => ("refund_id", v),
            RefundQuery::ByOutRefundNo(v) => {
                check_out_refund_no(v)?;
                ("out_refund_no", v)
            }
            RefundQuery::ByTransactionId(v) => ("transaction_id", v),
            RefundQuery::ByOutTradeNo(v) => {
                check_out_trade_no(v)?;
                ("out_trade_no", v)
            }
        };
        if value.is_empty() {
            return Err(invalid(name, "required"));
        }
        put(&mut p, name, value);
        if let Some(offset) = self.offset {
            put(&mut p, "offset", offset.to_string());
        }
        validate_all(&p)?;
        Ok(p)
    }
}

/// One refund `_$n` of a refundquery answer (§8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundItem {
    /// `out_refund_no_$n`.
    pub out_refund_no: String,
    /// `refund_id_$n`.
    pub refund_id: String,
    /// `refund_channel_$n` (`ORIGINAL` / `BALANCE`).
    pub refund_channel: Option<String>,
    /// `refund_fee_$n` in fen.
    pub refund_fee: i64,
    /// `settlement_refund_fee_$n` in fen.
    pub settlement_refund_fee: Option<i64>,
    /// `coupon_refund_fee_$n` in fen.
    pub coupon_refund_fee: Option<i64>,
    /// Coupons `coupon_*_$n_$m`.
    pub coupons: Vec<Coupon>,
    /// `refund_status_$n`.
    pub refund_status: RefundStatus,
    /// `refund_account_$n`.
    pub refund_account: Option<String>,
    /// `refund_recv_accout_$n` (sic).
    pub refund_recv_accout: Option<String>,
    /// `refund_success_time_$n` (UTC+8).
    pub refund_success_time: Option<OffsetDateTime>,
}

/// Payload of a successful refundquery (§8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQueryResponse {
    /// `transaction_id`.
    pub transaction_id: Option<String>,
    /// `out_trade_no`.
    pub out_trade_no: Option<String>,
    /// `total_fee` in fen.
    pub total_fee: Option<i64>,
    /// `settlement_total_fee` in fen.
    pub settlement_total_fee: Option<i64>,
    /// `cash_fee` in fen.
    pub cash_fee: Option<i64>,
    /// `refund_count`: number of items on this page.
    pub refund_count: i64,
    /// `total_refund_count` when paging.
    pub total_refund_count: Option<i64>,
    /// The refunds on this page.
    pub refunds: Vec<RefundItem>,
    /// All verified parameters.
    pub params: Params,
}

impl RefundQueryResponse {
    /// Read from verified parameters (§8.6); items `_0 … _{refund_count-1}`.
    pub fn from_params(params: Params) -> Result<Self, Error> {
        let refund_count = req_int(&params, "refund_count")?;
        if refund_count > 100 {
            return Err(Error::InvalidField {
                field: "refund_count".into(),
                value: refund_count.to_string(),
                reason: "more items than a page can hold",
            });
        }
        let refunds = (0..refund_count)
            .map(|n| {
                let f = |name: &str| format!("{name}_{n}");
                Ok(RefundItem {
                    out_refund_no: req_string(&params, &f("out_refund_no"))?,
                    refund_id: req_string(&params, &f("refund_id"))?,
                    refund_channel: opt_string(&params, &f("refund_channel")),
                    refund_fee: req_int(&params, &f("refund_fee"))?,
                    settlement_refund_fee: opt_int(&params, &f("settlement_refund_fee"))?,
                    coupon_refund_fee: opt_int(&params, &f("coupon_refund_fee"))?,
                    coupons: coupons(
                        &params,
                        &f("coupon_refund_count"),
                        &f("coupon_refund_id"),
                        &f("coupon_type"),
                        &f("coupon_refund_fee"),
                        "_",
                    )?,
                    refund_status: RefundStatus::parse(req(&params, &f("refund_status"))?),
                    refund_account: opt_string(&params, &f("refund_account")),
                    refund_recv_accout: opt_string(&params, &f("refund_recv_accout")),
                    refund_success_time: opt_display_time(&params, &f("refund_success_time"))?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(RefundQueryResponse {
            transaction_id: opt_string(&params, "transaction_id"),
            out_trade_no: opt_string(&params, "out_trade_no"),
            total_fee: opt_int(&params, "total_fee")?,
            settlement_total_fee: opt_int(&params, "settlement_total_fee")?,
            cash_fee: opt_int(&params, "cash_fee")?,
            refund_count,
            total_refund_count: opt_int(&params, "total_refund_count")?,
            refunds,
            params,
        })
    }

    /// The `offset` of the next page, if `total_refund_count` says there is one (§8.6).
    pub fn next_offset(&self, current_offset: u32) -> Option<u32> {
        let total = self.total_refund_count?;
        let next = i64::from(current_offset) + self.refund_count;
        (self.refund_count > 0 && next < total)
            .then(|| u32::try_from(next).ok())
            .flatten()
    }
}

/// Answer of jscode2session (§8.10). `session_key` must never reach the client.
#[derive(Clone, PartialEq, Eq)]
pub struct Code2Session {
    /// The user's openid under this appid.
    pub openid: String,
    /// The session key (secret; redacted in `Debug`).
    pub session_key: SessionKey,
    /// `unionid` when the app is bound to an Open Platform account.
    pub unionid: Option<String>,
}

impl fmt::Debug for Code2Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Code2Session")
            .field("openid", &self.openid)
            .field("session_key", &self.session_key)
            .field("unionid", &self.unionid)
            .finish()
    }
}

/// The Mini Program `session_key` (§8.10): a secret, `Debug` prints `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(zeroize::Zeroizing<String>);

impl SessionKey {
    /// Wrap a session key.
    pub fn new(v: impl Into<String>) -> Self {
        SessionKey(zeroize::Zeroizing::new(v.into()))
    }

    /// The key itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// Decode a jscode2session JSON body (§8.10): `errcode` ≠ 0 → [`Error::Login`].
pub fn parse_code2session(body: &[u8]) -> Result<Code2Session, Error> {
    #[derive(Deserialize)]
    struct Raw {
        openid: Option<String>,
        session_key: Option<String>,
        unionid: Option<String>,
        #[serde(default)]
        errcode: i64,
        #[serde(default)]
        errmsg: String,
    }
    let raw: Raw = serde_json::from_slice(body)?;
    if raw.errcode != 0 {
        return Err(Error::Login {
            errcode: raw.errcode,
            errmsg: raw.errmsg,
        });
    }
    Ok(Code2Session {
        openid: raw
            .openid
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::MissingField {
                field: "openid".into(),
            })?,
        session_key: SessionKey::new(raw.session_key.filter(|s| !s.is_empty()).ok_or_else(
            || Error::MissingField {
                field: "session_key".into(),
            },
        )?),
        unionid: raw.unionid.filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn signed_body(mut params: Params, t: SignType) -> Vec<u8> {
        let s = sign::sign(&params, &ApiKey::new(KEY), t);
        params.insert("sign".into(), s);
        xml::write(&params).into_bytes()
    }

    fn evaluate(body: &[u8]) -> Result<Params, Error> {
        evaluate_response(
            "/pay/orderquery",
            body,
            &ApiKey::new(KEY),
            SignType::Md5,
            "wx1",
            "100",
        )
    }

    #[test]
    fn evaluation_follows_section_6_in_order() {
        let html = evaluate(b"<html><body>502</body></html>").unwrap_err();
        assert!(matches!(html, Error::NotXml { .. }));
        assert!(matches!(
            evaluate(b"<!DOCTYPE x><xml/>"),
            Err(Error::Xml(_))
        ));
        assert!(matches!(evaluate(b"plain text"), Err(Error::NotXml { .. })));
        assert!(matches!(
            evaluate(b"<xml><return_code>FAIL</return_code><return_msg>bad</return_msg></xml>"),
            Err(Error::ReturnFail { return_msg }) if return_msg == "bad"
        ));
        assert!(matches!(
            evaluate(b"<xml><return_code>SUCCESS</return_code></xml>"),
            Err(Error::MissingSign)
        ));
        let base = p(&[
            ("return_code", "SUCCESS"),
            ("appid", "wx1"),
            ("mch_id", "100"),
            ("result_code", "SUCCESS"),
        ]);
        assert!(evaluate(&signed_body(base.clone(), SignType::Md5)).is_ok());
        assert!(matches!(
            evaluate(&signed_body(base.clone(), SignType::HmacSha256)),
            Err(Error::BadSignature)
        ));
        let mut other = base.clone();
        other.insert("mch_id".into(), "999".into());
        assert!(matches!(
            evaluate(&signed_body(other, SignType::Md5)),
            Err(Error::MchIdMismatch { .. })
        ));
        let mut fail = base;
        fail.insert("result_code".into(), "FAIL".into());
        fail.insert("err_code".into(), "SYSTEMERROR".into());
        let err = evaluate(&signed_body(fail, SignType::Md5)).unwrap_err();
        assert_eq!(err.err_code(), Some("SYSTEMERROR"));
        assert!(err.retry_safe());
    }

    #[test]
    fn an_unsigned_business_refusal_is_an_unverified_error_with_its_code() {
        let refusal = p(&[
            ("return_code", "SUCCESS"),
            ("appid", "wx1"),
            ("mch_id", "100"),
            ("nonce_str", "n1"),
            ("result_code", "FAIL"),
            ("err_code", "ORDERPAID"),
            ("err_code_des", "订单已支付，不能发起关单"),
        ]);
        let err = evaluate(xml::write(&refusal).as_bytes()).unwrap_err();
        assert!(
            matches!(&err, Error::UnsignedResultFail { err_code_des, .. } if err_code_des == "订单已支付，不能发起关单"),
            "{err:?}"
        );
        assert_eq!(err.err_code(), Some("ORDERPAID"));
        assert!(!err.retry_safe());
        // A present sign must still verify: a refusal with a wrong one is not trusted.
        let mut forged = refusal.clone();
        forged.insert("sign".into(), "0".repeat(32));
        assert!(matches!(
            evaluate(xml::write(&forged).as_bytes()),
            Err(Error::BadSignature)
        ));
    }

    #[test]
    fn a_success_is_never_accepted_without_a_valid_sign() {
        let success = p(&[
            ("return_code", "SUCCESS"),
            ("appid", "wx1"),
            ("mch_id", "100"),
            ("result_code", "SUCCESS"),
            ("trade_state", "SUCCESS"),
        ]);
        assert!(matches!(
            evaluate(xml::write(&success).as_bytes()),
            Err(Error::MissingSign)
        ));
        let mut empty = success.clone();
        empty.insert("sign".into(), String::new());
        assert!(matches!(
            evaluate(xml::write(&empty).as_bytes()),
            Err(Error::MissingSign)
        ));
        // No result_code at all is not a refusal either.
        let mut bare = success;
        bare.remove("result_code");
        assert!(matches!(
            evaluate(xml::write(&bare).as_bytes()),
            Err(Error::MissingSign)
        ));
    }

    #[test]
    fn a_refund_reason_becomes_a_refund_desc_within_the_limit() {
        assert_eq!(
            refund_desc("  商品破损\r\n请退款 \t "),
            Some("商品破损 请退款".into())
        );
        assert_eq!(refund_desc(" \n "), None);
        assert_eq!(refund_desc("a\u{7}b"), Some("ab".into()));
        let long = "退".repeat(100);
        let cut = refund_desc(&long).unwrap();
        assert_eq!(cut.chars().count(), REFUND_DESC_MAX_CHARS);
        assert!(long.starts_with(&cut));
        let mut req = RefundRequest::new(OrderRef::OutTradeNo("A1".into()), "R1", 100, 100);
        req.refund_desc = refund_desc(&long);
        assert_eq!(req.to_params().unwrap()["refund_desc"], cut);
        req.refund_desc = Some(long);
        assert!(req.to_params().is_err());
    }

    #[test]
    fn unified_order_params_are_validated_and_times_are_beijing() {
        let mut req = UnifiedOrderRequest::jsapi(
            "腾讯-游戏",
            "A1_b-2",
            1,
            "127.0.0.1",
            "https://x.example/n",
            "openid1",
        );
        req.time_expire = Some(datetime!(2024-01-01 04:00:00 UTC));
        let params = req.to_params().unwrap();
        assert_eq!(params["time_expire"], "20240101120000");
        assert_eq!(params["trade_type"], "JSAPI");
        assert_eq!(params["total_fee"], "1");
        assert!(!params.contains_key("attach"));

        let bad = |f: fn(&mut UnifiedOrderRequest)| {
            let mut r = req.clone();
            f(&mut r);
            r.to_params().unwrap_err()
        };
        assert!(matches!(
            bad(|r| r.total_fee = 0),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.out_trade_no = "a@b".into()),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.out_trade_no = "x".repeat(33)),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.body = "字".repeat(43)),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.notify_url = "https://x/n?a=1".into()),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.openid = None),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| r.body = "trailing ".into()),
            Error::InvalidRequest { .. }
        ));
        assert!(matches!(
            bad(|r| {
                r.extra.insert("sign".into(), "x".into());
            }),
            Error::InvalidRequest { .. }
        ));
    }

    #[test]
    fn refund_query_reads_items_coupons_and_paging() {
        let params = p(&[
            ("refund_count", "2"),
            ("total_refund_count", "12"),
            ("out_trade_no", "A1"),
            ("total_fee", "100"),
            ("out_refund_no_0", "R0"),
            ("refund_id_0", "500"),
            ("refund_fee_0", "10"),
            ("refund_status_0", "SUCCESS"),
            ("refund_success_time_0", "2024-01-01 12:00:00"),
            ("refund_recv_accout_0", "支付用户零钱"),
            ("coupon_refund_count_0", "1"),
            ("coupon_refund_id_0_0", "C1"),
            ("coupon_refund_fee_0_0", "2"),
            ("coupon_type_0_0", "CASH"),
            ("out_refund_no_1", "R1"),
            ("refund_id_1", "501"),
            ("refund_fee_1", "20"),
            ("refund_status_1", "WEIRD"),
        ]);
        let r = RefundQueryResponse::from_params(params).unwrap();
        assert_eq!(r.refunds.len(), 2);
        assert_eq!(r.refunds[0].refund_status, RefundStatus::Success);
        assert!(r.refunds[0].refund_status.is_final());
        assert_eq!(r.refunds[0].coupons[0].id.as_deref(), Some("C1"));
        assert_eq!(r.refunds[0].coupons[0].fee, Some(2));
        assert_eq!(
            r.refunds[0].refund_success_time,
            Some(datetime!(2024-01-01 04:00:00 UTC))
        );
        assert_eq!(
            r.refunds[1].refund_status,
            RefundStatus::Other("WEIRD".into())
        );
        assert!(!r.refunds[1].refund_status.is_final());
        assert_eq!(r.next_offset(0), Some(2));
        assert_eq!(r.next_offset(10), None);
        let missing = p(&[("refund_count", "1"), ("out_refund_no_0", "R0")]);
        assert!(matches!(
            RefundQueryResponse::from_params(missing),
            Err(Error::MissingField { .. })
        ));
        let q = RefundQueryRequest {
            query: RefundQuery::ByOutTradeNo("A1".into()),
            offset: Some(10),
        };
        assert_eq!(
            q.to_params().unwrap(),
            p(&[("out_trade_no", "A1"), ("offset", "10")])
        );
    }

    #[test]
    fn order_query_and_code2session() {
        let q = OrderQueryResponse::from_params(p(&[
            ("trade_state", "NOTPAY"),
            ("out_trade_no", "A1"),
            ("total_fee", "01"),
        ]))
        .unwrap();
        assert!(!q.is_paid() && !q.trade_state.is_terminal());
        assert_eq!(q.total_fee, Some(1));
        assert!(OrderQueryResponse::from_params(p(&[
            ("trade_state", "SUCCESS"),
            ("total_fee", "1.00")
        ]))
        .is_err());
        assert!(matches!(
            parse_code2session(br#"{"errcode":-1,"errmsg":"busy"}"#),
            Err(e @ Error::Login { .. }) if e.retry_safe()
        ));
        let ok = parse_code2session(br#"{"openid":"o1","session_key":"k"}"#).unwrap();
        assert_eq!(ok.openid, "o1");
        assert!(!format!("{ok:?}").contains("\"k\""));
    }

    #[test]
    fn request_verification_for_the_simulator() {
        let body = signed_body(
            p(&[("a", "1"), ("sign_type", "HMAC-SHA256")]),
            SignType::HmacSha256,
        );
        let (params, t) = verify_request(&body, &ApiKey::new(KEY)).unwrap();
        assert_eq!(t, SignType::HmacSha256);
        assert_eq!(params["a"], "1");
        let lower = signed_body(p(&[("a", "1"), ("sign_type", "md5")]), SignType::Md5);
        assert!(matches!(
            verify_request(&lower, &ApiKey::new(KEY)),
            Err(Error::UnsupportedSignType { .. })
        ));
        let unsigned_type = signed_body(p(&[("a", "1")]), SignType::Md5);
        assert_eq!(
            verify_request(&unsigned_type, &ApiKey::new(KEY)).unwrap().1,
            SignType::Md5
        );
    }
}
