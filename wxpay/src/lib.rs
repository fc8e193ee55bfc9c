#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod api;
pub mod bill;
mod client;
mod error;
pub mod explain;
mod fields;
mod identity;
pub mod money;
pub mod notify;
pub mod notify_url;
pub mod sandbox;
mod sign;
pub mod wxtime;
pub mod xml;

pub use api::{
    check_merchant, evaluate_response, refund_desc, request_sign_type, verify_request, BillType,
    CloseOrderResponse, Code2Session, OrderQuery, OrderQueryResponse, OrderRef, RefundQuery,
    RefundQueryRequest, RefundQueryResponse, RefundRequest, RefundResponse, RefundStatus,
    SessionKey, TradeState, TradeType, UnifiedOrderRequest, UnifiedOrderResponse, CLOSE_AFTER,
    MIN_ORDER_LIFETIME,
};
pub use bill::{Bill, BillRecord, BillSummary, GzippedBill};
#[cfg(feature = "mock")]
pub use client::MockApi;
pub use client::{
    default_backup_base_url, url_host, Api, AppSecret, CallObserver, CallRecord, Client,
    ClientConfig, RefundChannelStatus, BACKUP_BASE_URL, LOGIN_BASE_URL, PRODUCTION_BASE_URL,
    SANDBOX_BASE_URL,
};
pub use error::Error;
pub use explain::{explain, Explanation};
pub use identity::{CertificateInfo, MerchantIdentity};
pub use notify::{PaymentNotification, RefundNotification, REPLY_SUCCESS};
pub use notify_url::{check_notify_url, NotifyUrlError, NotifyUrlRules, MAX_NOTIFY_URL_LEN};
pub use sign::{
    canonical_string, is_signed_field, nonce_str, pay_sign, resolve_sign_type, sign,
    sign_canonical, signs_equal, verify, verify_resolved, ApiKey, JsapiPayParams, SignType,
    UnknownSignType, SIGN_FIELD, SIGN_TYPE_FIELD,
};
pub use xml::XmlError;

/// Parameters of a message: name → value, both strings (docs/wechatpay-v2.md §4.2 rule 8). `BTreeMap`
/// iteration order is byte order, which is exactly the signing order of §5.1 step 3.
pub type Params = std::collections::BTreeMap<String, String>;
