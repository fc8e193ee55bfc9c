//! What became of a notification (stored in `notifications.verdict`): `Verdict` lives in
//! `paydesk-types` (the browser shows it too); the reply it sends needs the protocol's XML,
//! so that stays here.

use wxpay::notify::REPLY_SUCCESS;

pub use paydesk_types::Verdict;

/// The reply a [`Verdict`] sends.
pub trait VerdictReply {
    /// The exact reply body (docs/wechatpay-v2.md §8.8). The FAIL message is the verdict
    /// name only: no detail reaches the sender.
    fn reply_body(self) -> String;
}

impl VerdictReply for Verdict {
    fn reply_body(self) -> String {
        if self.acknowledged() {
            REPLY_SUCCESS.to_owned()
        } else {
            wxpay::notify::reply_fail(self.as_str())
        }
    }
}
