//! What became of a callback (stored in `notifications.verdict`), and what WeChat Pay is
//! answered for it.

use std::fmt;

use wxpay::notify::REPLY_SUCCESS;

/// What became of a notification (stored in `notifications.verdict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Verified and applied: the order is now paid.
    Applied,
    /// Verified, and already applied earlier: nothing changed.
    Duplicate,
    /// The signature is missing, wrong, or uses a refused algorithm (docs/wechatpay-v2.md §5.2, §5.3).
    BadSignature,
    /// Not a well-formed notification (not XML, fields missing or invalid).
    Malformed,
    /// XML with a DOCTYPE or entity declaration (docs/wechatpay-v2.md §11.1).
    ForbiddenXml,
    /// Signed, but for another appid (docs/wechatpay-v2.md §11.2 item 4).
    WrongAppid,
    /// Signed, but for another merchant (docs/wechatpay-v2.md §11.2 item 4).
    WrongMchId,
    /// Signed, but we have no order with this `out_trade_no`.
    UnknownOrder,
    /// Signed, but `total_fee` differs from the order's (docs/wechatpay-v2.md §8.8 item 2).
    AmountMismatch,
    /// A refund notification's `req_info` could not be decrypted (docs/wechatpay-v2.md §8.9).
    DecryptFailed,
    /// Signed, `result_code=FAIL`: the payment failed.
    ResultFail,
    /// We could not process it (database failure, inconsistent state).
    InternalError,
}

impl Verdict {
    /// Every verdict.
    pub const ALL: [Verdict; 12] = [
        Verdict::Applied,
        Verdict::Duplicate,
        Verdict::BadSignature,
        Verdict::Malformed,
        Verdict::ForbiddenXml,
        Verdict::WrongAppid,
        Verdict::WrongMchId,
        Verdict::UnknownOrder,
        Verdict::AmountMismatch,
        Verdict::DecryptFailed,
        Verdict::ResultFail,
        Verdict::InternalError,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Applied => "applied",
            Verdict::Duplicate => "duplicate",
            Verdict::BadSignature => "bad_signature",
            Verdict::Malformed => "malformed",
            Verdict::ForbiddenXml => "forbidden_xml",
            Verdict::WrongAppid => "wrong_appid",
            Verdict::WrongMchId => "wrong_mch_id",
            Verdict::UnknownOrder => "unknown_order",
            Verdict::AmountMismatch => "amount_mismatch",
            Verdict::DecryptFailed => "decrypt_failed",
            Verdict::ResultFail => "result_fail",
            Verdict::InternalError => "internal_error",
        }
    }

    /// Whether WeChat is told `SUCCESS` (stop sending): only when the notification is in
    /// effect, i.e. applied now or before (docs/wechatpay-v2.md §8.8).
    pub const fn acknowledged(self) -> bool {
        matches!(self, Verdict::Applied | Verdict::Duplicate)
    }

    /// `SUCCESS` or `FAIL`, as stored in `notifications.reply`.
    pub const fn reply_code(self) -> &'static str {
        if self.acknowledged() {
            "SUCCESS"
        } else {
            "FAIL"
        }
    }

    /// The exact reply body (docs/wechatpay-v2.md §8.8). The FAIL message is the verdict name only: no
    /// detail reaches the sender.
    pub fn reply_body(self) -> String {
        if self.acknowledged() {
            REPLY_SUCCESS.to_owned()
        } else {
            wxpay::notify::reply_fail(self.as_str())
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verdict {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verdict::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown verdict {s:?}"))
    }
}
