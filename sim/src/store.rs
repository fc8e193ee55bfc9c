//! The simulator's state: orders (docs/wechatpay-v2.md §10.1), refunds with their per-order ledger (§10.2),
//! jscode2session codes (§8.10) and the merchant balance (`NOTENOUGH`, §7). Everything sits
//! behind one mutex in [`crate::Sim`]; no lock is held across an `.await`.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use wxpay::{Params, SignType};

/// State of an order (docs/wechatpay-v2.md §8.3 `trade_state`, §10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    /// Created by unifiedorder, not paid yet.
    Notpay,
    /// Paid.
    Success,
    /// A refund was accepted on the paid order ("转入退款").
    Refund,
    /// Closed by closeorder or by expiry.
    Closed,
    /// The payment failed (bank error).
    Payerror,
}

impl OrderState {
    /// The `trade_state` wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Notpay => "NOTPAY",
            OrderState::Success => "SUCCESS",
            OrderState::Refund => "REFUND",
            OrderState::Closed => "CLOSED",
            OrderState::Payerror => "PAYERROR",
        }
    }

    /// `trade_state_desc` as WeChat words it.
    pub fn desc(self) -> &'static str {
        match self {
            OrderState::Notpay => "订单未支付",
            OrderState::Success => "支付成功",
            OrderState::Refund => "订单发生过退款，退款详情请查询退款单",
            OrderState::Closed => "订单已关闭",
            OrderState::Payerror => "支付失败，请重新下单支付",
        }
    }

    /// Whether the shopper can still pay it (NOTPAY, or PAYERROR after a failed attempt)
    /// until it expires.
    pub fn is_payable(self) -> bool {
        matches!(self, OrderState::Notpay | OrderState::Payerror)
    }

    /// Whether the order was paid (SUCCESS or REFUND).
    pub fn is_paid(self) -> bool {
        matches!(self, OrderState::Success | OrderState::Refund)
    }
}

/// State of a refund (docs/wechatpay-v2.md §8.6 `refund_status`, §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundState {
    /// Accepted, in progress.
    Processing,
    /// Done.
    Success,
    /// Closed: failed, final; the amount becomes refundable again.
    Refundclose,
    /// Abnormal (e.g. card cancelled): needs manual handling, not final.
    Change,
}

impl RefundState {
    /// The `refund_status` wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundState::Processing => "PROCESSING",
            RefundState::Success => "SUCCESS",
            RefundState::Refundclose => "REFUNDCLOSE",
            RefundState::Change => "CHANGE",
        }
    }
}

/// Who asked for a refund: the refund notification's `refund_request_source` (§8.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundSource {
    /// The merchant's system, through the refund API (§8.5).
    Api,
    /// The merchant, by hand in WeChat's merchant platform (商户平台): the merchant's system
    /// never asked for it (`POST /sim/orders/{out_trade_no}/refund-outside`).
    VendorPlatform,
}

impl RefundSource {
    /// The `refund_request_source` wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundSource::Api => "API",
            RefundSource::VendorPlatform => "VENDOR_PLATFORM",
        }
    }
}

fn ser_sign_type<S: serde::Serializer>(t: &SignType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

/// An order as the simulator holds it (docs/wechatpay-v2.md §10.1); the JSON of `GET /sim/orders`.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// Merchant order id.
    pub out_trade_no: String,
    /// Current state.
    pub state: OrderState,
    /// Amount in fen.
    pub total_fee: i64,
    /// `body`.
    pub body: String,
    /// `attach`, echoed in orderquery and the notification.
    pub attach: Option<String>,
    /// `device_info`.
    pub device_info: Option<String>,
    /// Payer openid (JSAPI).
    pub openid: Option<String>,
    /// `trade_type`.
    pub trade_type: String,
    /// Where payment notifications go.
    pub notify_url: String,
    /// Algorithm of the unifiedorder request: notifications are signed with it (§5.2).
    #[serde(serialize_with = "ser_sign_type")]
    pub sign_type: SignType,
    /// Created under a sandbox prefix: its notifications and `paySign` use the sandbox key
    /// (§3).
    pub sandbox: bool,
    /// Current `prepay_id`.
    pub prepay_id: String,
    /// When the `prepay_id` stops being valid (2 h after issue).
    #[serde(with = "time::serde::rfc3339")]
    pub prepay_expires_at: OffsetDateTime,
    /// When the order can no longer be paid (`time_expire`, else the default lifetime).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When unifiedorder first succeeded.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// WeChat's transaction id once paid (28 digits, `4200…`).
    pub transaction_id: Option<String>,
    /// Payment time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub time_end: Option<OffsetDateTime>,
    /// Payer's bank (`OTHERS`, `CMB_CREDIT`…).
    pub bank_type: Option<String>,
    /// Cash part of the payment (the rest is coupons).
    pub cash_fee: Option<i64>,
    /// Failure code of a failed payment.
    pub err_code: Option<String>,
    /// Failure text of a failed payment.
    pub err_code_des: Option<String>,
    /// Sum of the refunds that are not REFUNDCLOSE.
    pub refunded_fee: i64,
    /// `out_refund_no`s of the order's refunds, oldest first.
    pub refunds: Vec<String>,
    /// The business parameters of the first unifiedorder (re-entry must repeat them, §8.1).
    #[serde(skip)]
    pub request: Params,
    #[serde(skip)]
    pub(crate) seq: u64,
}

/// A refund (docs/wechatpay-v2.md §8.5, §10.2); the JSON of `GET /sim/refunds`.
#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    /// Merchant refund id (the idempotency key).
    pub out_refund_no: String,
    /// WeChat's refund id (29 digits, `50…`).
    pub refund_id: String,
    /// The order.
    pub out_trade_no: String,
    /// The order's transaction id.
    pub transaction_id: String,
    /// `total_fee` of the request (= the order amount).
    pub total_fee: i64,
    /// This refund's amount in fen.
    pub refund_fee: i64,
    /// Current status.
    pub status: RefundState,
    /// `refund_desc`.
    pub refund_desc: Option<String>,
    /// Where the refund notification goes (request `notify_url`, else the configured default).
    pub notify_url: Option<String>,
    /// `refund_account`.
    pub refund_account: String,
    /// `refund_recv_accout` (sic).
    pub refund_recv_accout: String,
    /// Who asked for it: the refund API, or the merchant in WeChat's merchant platform.
    pub refund_request_source: RefundSource,
    /// When the refund was accepted.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it reached SUCCESS.
    #[serde(with = "time::serde::rfc3339::option")]
    pub success_time: Option<OffsetDateTime>,
    /// Sign type of the refund request (the response was signed with it).
    #[serde(serialize_with = "ser_sign_type")]
    pub sign_type: SignType,
    /// Requested under a sandbox prefix: its notification's `req_info` is encrypted with the
    /// sandbox key (§3).
    pub sandbox: bool,
    /// Bumped whenever a new outcome is scheduled, so a stale timer does nothing.
    #[serde(skip)]
    pub(crate) generation: u64,
    #[serde(skip)]
    pub(crate) seq: u64,
}

/// A planned refund outcome (control API), applied when the refund exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOutcome {
    /// Final (or CHANGE) status.
    pub outcome: RefundState,
    /// Real milliseconds after acceptance (or after the control call).
    pub delay_ms: Option<u64>,
}

/// A jscode2session code mapping (§8.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeMapping {
    /// The openid the code logs in as.
    pub openid: String,
    /// Optional unionid.
    pub unionid: Option<String>,
}

/// All mutable state.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub orders: BTreeMap<String, Order>,
    pub by_transaction_id: HashMap<String, String>,
    pub refunds: BTreeMap<String, Refund>,
    pub by_refund_id: HashMap<String, String>,
    pub planned: HashMap<String, PlannedOutcome>,
    pub codes: HashMap<String, CodeMapping>,
    pub used_codes: HashSet<String>,
    /// Refundable merchant balance in fen; `None` = unlimited.
    pub balance: Option<i64>,
    pub seq: u64,
}

impl Store {
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Close a NOTPAY order whose payable window has passed (§10.1 "expiry ► CLOSED").
    pub fn expire(&mut self, out_trade_no: &str, now: OffsetDateTime) {
        if let Some(o) = self.orders.get_mut(out_trade_no) {
            if o.state.is_payable() && now >= o.expires_at {
                o.state = OrderState::Closed;
            }
        }
    }

    /// Apply expiry to every order (before listing them).
    pub fn expire_all(&mut self, now: OffsetDateTime) {
        for o in self.orders.values_mut() {
            if o.state.is_payable() && now >= o.expires_at {
                o.state = OrderState::Closed;
            }
        }
    }

    /// An order by `transaction_id` (wins) or `out_trade_no`.
    pub fn find_order(&self, txn: Option<&str>, otn: Option<&str>) -> Option<&Order> {
        match txn {
            Some(t) => self
                .by_transaction_id
                .get(t)
                .and_then(|o| self.orders.get(o)),
            None => otn.and_then(|o| self.orders.get(o)),
        }
    }

    /// Orders oldest first.
    pub fn orders_sorted(&self) -> Vec<Order> {
        let mut v: Vec<Order> = self.orders.values().cloned().collect();
        v.sort_by_key(|o| o.seq);
        v
    }

    /// Refunds oldest first.
    pub fn refunds_sorted(&self) -> Vec<Refund> {
        let mut v: Vec<Refund> = self.refunds.values().cloned().collect();
        v.sort_by_key(|r| r.seq);
        v
    }
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.gen_range(0..10)))
        .collect()
}

fn beijing_compact(now: OffsetDateTime) -> String {
    wxpay::wxtime::format_compact(now)
}

/// `wx` + 14-digit Beijing time + 20 hex (the observed shape, §8.1; treated as opaque).
pub(crate) fn new_prepay_id(now: OffsetDateTime) -> String {
    let mut rng = rand::thread_rng();
    let hex: String = (0..20)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect();
    format!("wx{}{hex}", beijing_compact(now))
}

/// 28 digits starting `4200` (§10.1): `4200` + 6-digit sequence + Beijing date + 10 random.
pub(crate) fn new_transaction_id(seq: u64, now: OffsetDateTime) -> String {
    format!(
        "4200{:06}{}{}",
        seq % 1_000_000,
        &beijing_compact(now)[..8],
        random_digits(10)
    )
}

/// 29 digits starting `50` (§10.2): `50` + 9-digit sequence + Beijing date + 10 random.
pub(crate) fn new_refund_id(seq: u64, now: OffsetDateTime) -> String {
    format!(
        "50{:09}{}{}",
        seq % 1_000_000_000,
        &beijing_compact(now)[..8],
        random_digits(10)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_wechat_shapes() {
        // Arrange
        let now = OffsetDateTime::now_utc();

        // Act
        let txn = new_transaction_id(7, now);
        let refund_id = new_refund_id(7, now);
        let prepay = new_prepay_id(now);

        // Assert
        assert_eq!(txn.len(), 28);
        assert!(txn.starts_with("4200") && txn.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(refund_id.len(), 29);
        assert!(refund_id.starts_with("50") && refund_id.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(prepay.len(), 36);
        assert!(prepay.starts_with("wx"));
    }
}
