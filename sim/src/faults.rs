//! Fault injection (docs/wechatpay-v2.md §10.3): a JSON fault plan whose entries each apply to the next
//! `count` notification delivery attempts or API calls.

use serde::{Deserialize, Serialize};

use crate::notify::NotificationKind;

/// A fault plan, the body of `POST /sim/faults`. Entries are appended to the active ones
/// unless `replace` is true.
///
/// ```json
/// {"notifications": [{"fault": "duplicate", "copies": 3, "count": 1}],
///  "api": [{"fault": "system_error", "endpoint": "/pay/orderquery", "count": 2}]}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// Faults for notification delivery attempts.
    #[serde(default)]
    pub notifications: Vec<NotifyFault>,
    /// Faults for calls to the WeChat Pay API endpoints.
    #[serde(default)]
    pub api: Vec<ApiFault>,
    /// Clear the active faults first.
    #[serde(default)]
    pub replace: bool,
}

/// What happens to a notification delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFaultKind {
    /// Not sent at all; counts as a failed attempt, so the retry schedule goes on.
    Drop,
    /// Sent after `delay_ms` real milliseconds.
    Delay,
    /// Sent `copies` times in parallel ("two WeChat servers"); the attempt succeeds if any
    /// copy is answered SUCCESS.
    Duplicate,
    /// Held back until `count` attempts have joined (or `window_ms` passed), then sent in
    /// reverse order.
    Reorder,
    /// One character of `sign` changed (refund notifications: `req_info` corrupted).
    TamperSign,
    /// `total_fee` (payment) or `refund_fee` (refund) increased by 1 fen and correctly
    /// re-signed/re-encrypted: only an amount check catches it.
    TamperAmount,
    /// `appid` replaced by another appid, correctly re-signed.
    WrongAppid,
}

/// One notification fault entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyFault {
    /// What to do.
    pub fault: NotifyFaultKind,
    /// How many delivery attempts it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Only `payment` or only `refund` notifications (default: both).
    #[serde(default)]
    pub kind: Option<NotificationKind>,
    /// `delay`: real milliseconds to wait (default 1000).
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// `duplicate`: number of parallel copies (default 2).
    #[serde(default)]
    pub copies: Option<u32>,
    /// `reorder`: how long to wait for the group to fill, real ms (default 2000).
    #[serde(default)]
    pub window_ms: Option<u64>,
}

/// What happens to an API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiFaultKind {
    /// `result_code=FAIL`, `err_code=SYSTEMERROR`, signed; the request is not processed.
    SystemError,
    /// `result_code=FAIL` with the given `err_code` / `err_code_des` (e.g.
    /// `FREQUENCY_LIMITED`, `BIZERR_NEED_RETRY`); not processed.
    ErrCode,
    /// HTTP `status` (default 500) with an HTML gateway page; not processed.
    HttpStatus,
    /// HTTP 200 with a body that is not XML (an HTML page); not processed.
    NotXml,
    /// Wait `hang_ms` real milliseconds (default 30000, past the client timeout), then
    /// process the request normally: the classic "unknown outcome".
    Hang,
    /// Process the request normally, but answer a business refusal (`result_code=FAIL`:
    /// `ORDERPAID`, `ORDERCLOSED`, `REFUNDNOTEXIST`, …) without `sign`, as WeChat Pay
    /// sometimes does (§6). Successful answers stay signed.
    UnsignedErrors,
}

/// One API fault entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFault {
    /// What to do.
    pub fault: ApiFaultKind,
    /// How many calls it applies to (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Only calls to this path, without sandbox prefix (e.g. `/pay/orderquery`,
    /// `/secapi/pay/refund`); default: every endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `http_status`: the status (default 500).
    #[serde(default)]
    pub status: Option<u16>,
    /// `hang`: real milliseconds (default 30000).
    #[serde(default)]
    pub hang_ms: Option<u64>,
    /// `err_code`: the code.
    #[serde(default)]
    pub err_code: Option<String>,
    /// `err_code`: the text.
    #[serde(default)]
    pub err_code_des: Option<String>,
}

fn one() -> u32 {
    1
}

/// A notification fault taken by one attempt; `group` identifies a reorder group.
#[derive(Debug, Clone)]
pub(crate) struct TakenNotifyFault {
    pub fault: NotifyFault,
    pub group: u64,
}

#[derive(Debug, Clone)]
struct Active<T> {
    id: u64,
    remaining: u32,
    fault: T,
}

/// The active faults (what is left of the plans).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    notifications: Vec<Active<NotifyFault>>,
    api: Vec<Active<ApiFault>>,
    next_id: u64,
}

/// What is left of the plans, as `GET /sim/faults` shows it (`count` = remaining).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFaults {
    /// Remaining notification faults.
    pub notifications: Vec<NotifyFault>,
    /// Remaining API faults.
    pub api: Vec<ApiFault>,
}

impl Faults {
    pub fn apply(&mut self, plan: FaultPlan) {
        if plan.replace {
            self.notifications.clear();
            self.api.clear();
        }
        for fault in plan.notifications.into_iter().filter(|f| f.count > 0) {
            self.next_id += 1;
            self.notifications.push(Active {
                id: self.next_id,
                remaining: fault.count,
                fault,
            });
        }
        for fault in plan.api.into_iter().filter(|f| f.count > 0) {
            self.next_id += 1;
            self.api.push(Active {
                id: self.next_id,
                remaining: fault.count,
                fault,
            });
        }
    }

    pub fn clear(&mut self) {
        self.notifications.clear();
        self.api.clear();
    }

    pub fn active(&self) -> ActiveFaults {
        ActiveFaults {
            notifications: self
                .notifications
                .iter()
                .map(|a| NotifyFault {
                    count: a.remaining,
                    ..a.fault.clone()
                })
                .collect(),
            api: self
                .api
                .iter()
                .map(|a| ApiFault {
                    count: a.remaining,
                    ..a.fault.clone()
                })
                .collect(),
        }
    }

    /// Every active notification fault matching `kind` applies once to this attempt (at most
    /// one entry per fault kind).
    pub fn take_notify(&mut self, kind: NotificationKind) -> Vec<TakenNotifyFault> {
        let mut taken: Vec<TakenNotifyFault> = Vec::new();
        for a in &mut self.notifications {
            let matches = a.fault.kind.is_none_or(|k| k == kind);
            let dup = taken.iter().any(|t| t.fault.fault == a.fault.fault);
            if matches && !dup && a.remaining > 0 {
                a.remaining -= 1;
                taken.push(TakenNotifyFault {
                    fault: a.fault.clone(),
                    group: a.id,
                });
            }
        }
        self.notifications.retain(|a| a.remaining > 0);
        taken
    }

    /// The first active API fault matching `endpoint` applies to this call.
    pub fn take_api(&mut self, endpoint: &str) -> Option<ApiFault> {
        let a = self.api.iter_mut().find(|a| {
            a.remaining > 0 && a.fault.endpoint.as_deref().is_none_or(|e| e == endpoint)
        })?;
        a.remaining -= 1;
        let fault = a.fault.clone();
        self.api.retain(|a| a.remaining > 0);
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_plan_entries_apply_to_the_next_count_calls_only() {
        // Arrange
        let plan: FaultPlan = serde_json::from_str(
            r#"{"api":[{"fault":"system_error","endpoint":"/pay/orderquery","count":2}],
                "notifications":[{"fault":"drop","kind":"payment"}]}"#,
        )
        .unwrap();
        let mut faults = Faults::default();

        // Act
        faults.apply(plan);
        let other = faults.take_api("/pay/closeorder");
        let first = faults.take_api("/pay/orderquery");
        let second = faults.take_api("/pay/orderquery");
        let third = faults.take_api("/pay/orderquery");
        let refund = faults.take_notify(NotificationKind::Refund);
        let payment = faults.take_notify(NotificationKind::Payment);

        // Assert
        assert!(other.is_none());
        assert!(first.is_some() && second.is_some() && third.is_none());
        assert!(refund.is_empty());
        assert_eq!(payment.len(), 1);
        assert_eq!(faults.active(), ActiveFaults::default());
    }

    #[test]
    fn unknown_fault_fields_are_refused() {
        let r: Result<FaultPlan, _> =
            serde_json::from_str(r#"{"api":[{"fault":"system_error","cuont":2}]}"#);
        assert!(r.is_err());
    }
}
