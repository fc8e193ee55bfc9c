//! One badge for every status the dashboard shows: an order's, a refund's, a callback's
//! verdict. The statuses are the wire enums of `paydesk-types`; their words are in
//! [`StatusMsg`], keyed by the enums, and their look is one of five [`Tone`]s (the
//! `status-badge` classes in `style/main.css`), chosen here and nowhere else.

use leptos::prelude::*;
use paydesk_types::{OrderStatus, RefundStatus, Verdict};

use crate::i18n::{use_lang, Lang};

crate::messages! {
/// The words for each order status, refund status and verdict.
pub enum StatusMsg {
    NotPay => "未支付", "Unpaid";
    Paid => "已支付", "Paid";
    Closed => "已关闭", "Closed";
    PayError => "支付失败", "Payment failed";
    PartiallyRefunded => "部分退款", "Partially refunded";
    Refunded => "已全额退款", "Refunded";
    PendingApproval => "待审批", "Awaiting approval";
    Approved => "已批准", "Approved";
    Submitted => "已提交", "Submitted";
    Processing => "退款中", "Processing";
    Success => "退款成功", "Refunded";
    Rejected => "已拒绝", "Rejected";
    Change => "退款异常", "Refund failed at the bank";
    RefundClose => "退款关闭", "Refund closed";
    Failed => "退款失败", "Failed";
    Applied => "已入账", "Applied";
    Duplicate => "重复通知", "Duplicate";
    BadSignature => "签名错误", "Bad signature";
    Malformed => "报文格式错误", "Malformed";
    ForbiddenXml => "禁止的 XML", "Forbidden XML";
    WrongAppid => "AppID 不符", "Wrong appid";
    WrongMchId => "商户号不符", "Wrong mch_id";
    UnknownOrder => "订单不存在", "Unknown order";
    AmountMismatch => "金额不符", "Amount mismatch";
    DecryptFailed => "解密失败", "Decryption failed";
    ResultFail => "支付失败", "Payment failed";
    InternalError => "内部错误", "Internal error";
}
}

/// How a badge looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Done and good (paid, applied, refunded to the customer).
    Ok,
    /// Waiting for someone (unpaid, awaiting approval).
    Warn,
    /// Failed or refused.
    Bad,
    /// Ended without harm (closed, rejected, a duplicate).
    Off,
    /// Under way, or informational (refunds in progress, refunded orders).
    Info,
}

impl Tone {
    /// The badge's classes.
    pub const fn class(self) -> &'static str {
        match self {
            Tone::Ok => "status-badge status-badge--ok",
            Tone::Warn => "status-badge status-badge--warn",
            Tone::Bad => "status-badge status-badge--bad",
            Tone::Off => "status-badge status-badge--off",
            Tone::Info => "status-badge status-badge--info",
        }
    }

    /// `Ok` when `good`, else `Bad` (SUCCESS / FAIL replies, active accounts, …).
    pub const fn of(good: bool) -> Tone {
        if good {
            Tone::Ok
        } else {
            Tone::Bad
        }
    }
}

/// Anything a [`StatusBadge`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// An order's status.
    Order(OrderStatus),
    /// A refund's status.
    Refund(RefundStatus),
    /// A callback's verdict.
    Verdict(Verdict),
}

impl From<OrderStatus> for Status {
    fn from(s: OrderStatus) -> Self {
        Status::Order(s)
    }
}

impl From<RefundStatus> for Status {
    fn from(s: RefundStatus) -> Self {
        Status::Refund(s)
    }
}

impl From<Verdict> for Status {
    fn from(v: Verdict) -> Self {
        Status::Verdict(v)
    }
}

impl Status {
    /// The key of its words.
    pub const fn msg(self) -> StatusMsg {
        match self {
            Status::Order(s) => match s {
                OrderStatus::NotPay => StatusMsg::NotPay,
                OrderStatus::Paid => StatusMsg::Paid,
                OrderStatus::Closed => StatusMsg::Closed,
                OrderStatus::PayError => StatusMsg::PayError,
                OrderStatus::PartiallyRefunded => StatusMsg::PartiallyRefunded,
                OrderStatus::Refunded => StatusMsg::Refunded,
            },
            Status::Refund(s) => match s {
                RefundStatus::PendingApproval => StatusMsg::PendingApproval,
                RefundStatus::Approved => StatusMsg::Approved,
                RefundStatus::Submitted => StatusMsg::Submitted,
                RefundStatus::Processing => StatusMsg::Processing,
                RefundStatus::Success => StatusMsg::Success,
                RefundStatus::Rejected => StatusMsg::Rejected,
                RefundStatus::Change => StatusMsg::Change,
                RefundStatus::RefundClose => StatusMsg::RefundClose,
                RefundStatus::Failed => StatusMsg::Failed,
            },
            Status::Verdict(v) => match v {
                Verdict::Applied => StatusMsg::Applied,
                Verdict::Duplicate => StatusMsg::Duplicate,
                Verdict::BadSignature => StatusMsg::BadSignature,
                Verdict::Malformed => StatusMsg::Malformed,
                Verdict::ForbiddenXml => StatusMsg::ForbiddenXml,
                Verdict::WrongAppid => StatusMsg::WrongAppid,
                Verdict::WrongMchId => StatusMsg::WrongMchId,
                Verdict::UnknownOrder => StatusMsg::UnknownOrder,
                Verdict::AmountMismatch => StatusMsg::AmountMismatch,
                Verdict::DecryptFailed => StatusMsg::DecryptFailed,
                Verdict::ResultFail => StatusMsg::ResultFail,
                Verdict::InternalError => StatusMsg::InternalError,
            },
        }
    }

    /// Its name in `lang`.
    pub fn label(self, lang: Lang) -> &'static str {
        self.msg().text(lang)
    }

    /// How its badge looks.
    pub const fn tone(self) -> Tone {
        match self {
            Status::Order(s) => match s {
                OrderStatus::NotPay => Tone::Warn,
                OrderStatus::Paid => Tone::Ok,
                OrderStatus::Closed => Tone::Off,
                OrderStatus::PayError => Tone::Bad,
                OrderStatus::PartiallyRefunded | OrderStatus::Refunded => Tone::Info,
            },
            Status::Refund(s) => match s {
                RefundStatus::PendingApproval => Tone::Warn,
                RefundStatus::Approved | RefundStatus::Submitted | RefundStatus::Processing => {
                    Tone::Info
                }
                RefundStatus::Success => Tone::Ok,
                RefundStatus::Rejected => Tone::Off,
                RefundStatus::Change | RefundStatus::RefundClose | RefundStatus::Failed => {
                    Tone::Bad
                }
            },
            Status::Verdict(v) => match v {
                Verdict::Applied => Tone::Ok,
                Verdict::Duplicate => Tone::Off,
                Verdict::UnknownOrder | Verdict::ResultFail | Verdict::InternalError => Tone::Warn,
                _ => Tone::Bad,
            },
        }
    }
}

/// A status in words, in its tone.
#[component]
pub fn StatusBadge(
    /// What to show.
    #[prop(into)]
    status: Status,
    /// `data-testid`, if the page's tests look for it.
    #[prop(optional)]
    testid: Option<&'static str>,
    /// A tooltip.
    #[prop(optional, into)]
    title: Option<String>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <span class=status.tone().class() data-testid=testid title=title>{status.label(lang)}</span>
    }
}

/// A badge for a word that is no status (an account's state, a call's outcome, a reply).
#[component]
pub fn Badge(
    /// How it looks.
    tone: Tone,
    /// The word.
    children: Children,
) -> impl IntoView {
    view! { <span class=tone.class()>{children()}</span> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_words_in_both_languages() {
        let all: Vec<Status> = OrderStatus::ALL
            .into_iter()
            .map(Status::from)
            .chain(RefundStatus::ALL.into_iter().map(Status::from))
            .chain(Verdict::ALL.into_iter().map(Status::from))
            .collect();
        for lang in [Lang::Zh, Lang::En] {
            for s in &all {
                assert!(!s.label(lang).is_empty(), "{s:?}");
            }
        }
        let mut keys: Vec<StatusMsg> = all.iter().map(|s| s.msg()).collect();
        keys.dedup();
        assert_eq!(keys.len(), all.len(), "two statuses share a key");
    }
}
