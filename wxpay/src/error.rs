//! The one error type of the crate (house style §5, modelled on `crates_io_github::GitHubError`).

use crate::xml::XmlError;

/// Everything that can go wrong talking API v2, evaluated in the order of docs/wechatpay-v2.md §6: transport →
/// `return_code` → signature / appid / mch_id → `result_code` / `err_code` → payload.
///
/// [`Error::retry_safe`] says whether resending the **same** request (same `out_trade_no` /
/// `out_refund_no` and amounts; a new nonce and sign are fine, §7) is safe and sensible.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Connection / TLS / I/O failure before a response arrived (§6 step 1: unknown outcome).
    #[error("transport error calling {endpoint}: {source}")]
    Transport {
        /// Endpoint path, e.g. `/pay/unifiedorder`.
        endpoint: String,
        /// The underlying error (its URL is stripped so no query secret can leak).
        #[source]
        source: reqwest::Error,
    },
    /// No complete response within the configured timeout (§6 step 1: unknown outcome).
    #[error("timeout calling {endpoint}")]
    Timeout {
        /// Endpoint path.
        endpoint: String,
    },
    /// HTTP status other than 200, e.g. a gateway `400 The SSL certificate error` (§2.3).
    #[error("HTTP status {status} from {endpoint}")]
    HttpStatus {
        /// Endpoint path.
        endpoint: String,
        /// The status code.
        status: u16,
        /// The first bytes of the body, lossily decoded.
        body: String,
    },
    /// HTTP 200 but the body is not XML, e.g. an HTML gateway page (§2.3).
    #[error("response from {endpoint} is not XML")]
    NotXml {
        /// Endpoint path.
        endpoint: String,
        /// The first bytes of the body, lossily decoded.
        body: String,
    },
    /// `return_code=FAIL`: the request was refused at the protocol layer (§6). Such
    /// envelopes carry no sign and are not verified.
    #[error("return_code=FAIL: {return_msg}")]
    ReturnFail {
        /// WeChat's reason, e.g. `签名错误`.
        return_msg: String,
    },
    /// `result_code=FAIL`: the operation was refused at the business layer (§6, §7).
    #[error("result_code=FAIL: {err_code} ({err_code_des})")]
    ResultFail {
        /// The `err_code`, e.g. `SYSTEMERROR`, `ORDERPAID`.
        err_code: String,
        /// The `err_code_des` text.
        err_code_des: String,
    },
    /// `result_code=FAIL` in an answer that carries **no `sign`** (§6: WeChat Pay sometimes
    /// leaves it out of business refusals). Surfaced as the business error it claims to be
    /// — [`Error::err_code`] gives the code, so `ORDERPAID`, `ORDERCLOSED`,
    /// `REFUNDNOTEXIST`, … still reach their handling — but unverified: nothing in it is
    /// ours to trust beyond "the call did not succeed". A `SUCCESS` without a valid sign is
    /// never accepted ([`Error::MissingSign`]).
    #[error("result_code=FAIL (unsigned): {err_code} ({err_code_des})")]
    UnsignedResultFail {
        /// The `err_code`, e.g. `ORDERPAID`.
        err_code: String,
        /// The `err_code_des` text.
        err_code_des: String,
    },
    /// The signature does not match (§5.1, §5.3).
    #[error("signature mismatch")]
    BadSignature,
    /// `return_code=SUCCESS` (or a notification) without `sign` (§5.3).
    #[error("message has no sign")]
    MissingSign,
    /// An MD5 signature for an order created with HMAC-SHA256 (§5.2: never accept the downgrade).
    #[error("MD5 signature refused: the order was created with HMAC-SHA256")]
    SignTypeDowngrade,
    /// `sign_type` is neither `MD5` nor `HMAC-SHA256` exactly (§5.2).
    #[error("unsupported sign_type {value:?}")]
    UnsupportedSignType {
        /// The value received.
        value: String,
    },
    /// A message carries a parameter whose name is reserved, such as `key` (§5.4).
    #[error("reserved parameter name {field:?} in message")]
    ReservedField {
        /// The offending name.
        field: String,
    },
    /// `appid` of a response / notification is not ours (§6 step 3, §11.2 item 4).
    #[error("appid mismatch: expected {expected:?}, got {found:?}")]
    AppIdMismatch {
        /// Our appid.
        expected: String,
        /// The value received (empty when absent).
        found: String,
    },
    /// `mch_id` of a response / notification is not ours (§6 step 3, §11.2 item 4).
    #[error("mch_id mismatch: expected {expected:?}, got {found:?}")]
    MchIdMismatch {
        /// Our mch_id.
        expected: String,
        /// The value received (empty when absent).
        found: String,
    },
    /// The body was refused by the strict XML parser (§4.2); see [`XmlError::is_forbidden`].
    #[error("XML refused: {0}")]
    Xml(#[from] XmlError),
    /// A JSON body (jscode2session, §8.10) could not be decoded.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// jscode2session answered with a non-zero `errcode` (§8.10).
    #[error("jscode2session errcode {errcode}: {errmsg}")]
    Login {
        /// `errcode`, e.g. 40029 (invalid code), -1 (busy).
        errcode: i64,
        /// `errmsg`.
        errmsg: String,
    },
    /// downloadbill answered with its XML failure envelope (§7, §8.7).
    #[error("downloadbill failed: {return_msg} (error_code {error_code:?})")]
    BillFail {
        /// e.g. `No Bill Exist`, `Bill Creating`.
        return_msg: String,
        /// The numeric `error_code` when present (e.g. `20002`).
        error_code: Option<String>,
    },
    /// The bill text could not be parsed (§8.7).
    #[error("bill format error at line {line}: {reason}")]
    Bill {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A field the endpoint must return is missing (§8).
    #[error("missing field {field}")]
    MissingField {
        /// Field name.
        field: String,
    },
    /// A field has a value that cannot be interpreted (e.g. a non-integer `total_fee`).
    #[error("invalid value {value:?} for field {field}: {reason}")]
    InvalidField {
        /// Field name.
        field: String,
        /// The value received.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// A request was refused locally before sending (limits of §8 / §9).
    #[error("invalid request field {field}: {reason}")]
    InvalidRequest {
        /// Field name.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A `/secapi/` call (refund) without a merchant identity configured (§2.2, §3).
    #[error("no merchant client certificate configured: refunds need mutual TLS")]
    NoIdentity,
    /// The merchant certificate / key could not be loaded (§3).
    #[error("merchant identity: {reason}")]
    Identity {
        /// What was wrong (never contains key material).
        reason: String,
    },
    /// Invalid client configuration.
    #[error("configuration: {reason}")]
    Config {
        /// What was wrong.
        reason: String,
    },
    /// A refund notification's `req_info` could not be decrypted (§8.9): wrong key, bad base64,
    /// bad padding, or a plaintext that is not the expected XML.
    #[error("req_info decryption failed: {reason}")]
    DecryptFailed {
        /// What failed.
        reason: String,
    },
}

/// `err_code`s after which the same request may be sent again (§7).
const RETRYABLE_ERR_CODES: &[&str] = &[
    "SYSTEMERROR",
    "BIZERR_NEED_RETRY",
    "FREQUENCY_LIMITED",
    "NOTENOUGH",
    "USERPAYING",
];

/// The words of unifiedorder's `INVALID_REQUEST` for a re-entry with changed parameters
/// ("201 商户订单号重复", §7).
const DUPLICATE_NO: &str = "商户订单号重复";

impl Error {
    /// Whether resending the **same** request (same `out_trade_no` / `out_refund_no`, same
    /// amounts) is safe and may succeed (§6 step 1, §7): transport errors, timeouts, HTTP 5xx
    /// and 429, non-XML bodies (unknown outcome), `SYSTEMERROR`, `BIZERR_NEED_RETRY`,
    /// `FREQUENCY_LIMITED` and `NOTENOUGH` (later, with back-off), `Bill Creating`, and
    /// jscode2session `-1` / `45011`. Everything else needs a fix or a decision first
    /// (signature, configuration, `ORDERPAID`, `INVALID_REQUEST`, …).
    pub fn retry_safe(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::NotXml { .. } => true,
            Error::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            Error::ResultFail { err_code, .. } | Error::UnsignedResultFail { err_code, .. } => {
                RETRYABLE_ERR_CODES.contains(&err_code.as_str())
            }
            Error::BillFail { return_msg, .. } => {
                let m = return_msg.to_ascii_uppercase();
                m.contains("BILL CREATING") || m.contains("SYSTEMERROR")
            }
            Error::Login { errcode, .. } => *errcode == -1 || *errcode == 45011,
            _ => false,
        }
    }

    /// Whether WeChat may have processed the request although no answer was evaluated
    /// (§6 step 1): the caller must treat the outcome as unknown and query or retry with the
    /// same ids.
    pub fn is_unknown_outcome(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::NotXml { .. } => true,
            Error::HttpStatus { status, .. } => *status >= 500,
            Error::ResultFail { err_code, .. } | Error::UnsignedResultFail { err_code, .. } => {
                err_code == "SYSTEMERROR"
            }
            _ => false,
        }
    }

    /// The `err_code` of a `result_code=FAIL` answer, signed or not (or the `error_code` of
    /// a downloadbill failure) (§7).
    pub fn err_code(&self) -> Option<&str> {
        match self {
            Error::ResultFail { err_code, .. } | Error::UnsignedResultFail { err_code, .. } => {
                Some(err_code)
            }
            Error::BillFail { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    /// Whether unifiedorder refused a re-entry because the `out_trade_no` was already used
    /// with other parameters (§7, §8.1): `OUT_TRADE_NO_USED`, or `INVALID_REQUEST` with
    /// "201 商户订单号重复" (the form the real service commonly answers with). Either way
    /// the number exists at WeChat Pay: query it, then reuse it or take a new one. Other
    /// `INVALID_REQUEST`s are bad parameters and stay errors.
    pub fn is_out_trade_no_used(&self) -> bool {
        match self.err_code() {
            Some("OUT_TRADE_NO_USED") => true,
            Some("INVALID_REQUEST") => self
                .err_code_des()
                .is_some_and(|d| d.contains(DUPLICATE_NO)),
            _ => false,
        }
    }

    /// The `err_code_des` of a `result_code=FAIL` answer.
    pub fn err_code_des(&self) -> Option<&str> {
        match self {
            Error::ResultFail { err_code_des, .. }
            | Error::UnsignedResultFail { err_code_des, .. } => Some(err_code_des),
            _ => None,
        }
    }

    /// Whether the body was refused for DOCTYPE / entity content (§11.1) — the
    /// `forbidden_xml` verdict.
    pub fn is_forbidden_xml(&self) -> bool {
        matches!(self, Error::Xml(e) if e.is_forbidden())
    }

    /// Whether this is a signature problem (bad, missing, downgraded or unsupported type).
    pub fn is_signature_error(&self) -> bool {
        matches!(
            self,
            Error::BadSignature
                | Error::MissingSign
                | Error::SignTypeDowngrade
                | Error::UnsupportedSignType { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(code: &str) -> Error {
        Error::ResultFail {
            err_code: code.into(),
            err_code_des: String::new(),
        }
    }

    #[test]
    fn retry_classification_follows_section_7() {
        for code in ["SYSTEMERROR", "BIZERR_NEED_RETRY", "FREQUENCY_LIMITED"] {
            assert!(fail(code).retry_safe(), "{code}");
        }
        for code in [
            "ORDERPAID",
            "ORDERCLOSED",
            "INVALID_REQUEST",
            "SIGNERROR",
            "OUT_TRADE_NO_USED",
            "REFUNDNOTEXIST",
        ] {
            assert!(!fail(code).retry_safe(), "{code}");
        }
        assert!(Error::Timeout {
            endpoint: "/x".into()
        }
        .retry_safe());
        let status = |s| Error::HttpStatus {
            endpoint: "/x".into(),
            status: s,
            body: String::new(),
        };
        assert!(status(502).retry_safe());
        assert!(!status(400).retry_safe());
        assert!(!Error::ReturnFail {
            return_msg: "签名错误".into()
        }
        .retry_safe());
        assert!(!Error::BadSignature.retry_safe());
        assert_eq!(fail("ORDERPAID").err_code(), Some("ORDERPAID"));
    }

    #[test]
    fn a_refused_reentry_is_recognised_in_both_of_its_forms() {
        let invalid = |des: &str| Error::ResultFail {
            err_code: "INVALID_REQUEST".into(),
            err_code_des: des.into(),
        };
        assert!(fail("OUT_TRADE_NO_USED").is_out_trade_no_used());
        assert!(invalid("201 商户订单号重复").is_out_trade_no_used());
        assert!(!invalid("time_expire时间过短，刷卡至少1分钟，其他5分钟").is_out_trade_no_used());
        assert!(!fail("ORDERPAID").is_out_trade_no_used());
        assert!(!Error::ReturnFail {
            return_msg: "201 商户订单号重复".into()
        }
        .is_out_trade_no_used());
        assert!(Error::Xml(XmlError::Forbidden {
            what: "x".into(),
            offset: 0
        })
        .is_forbidden_xml());
    }
}
