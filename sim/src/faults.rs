//! Fault injection (docs/wechatpay-v2.md §10.3): a JSON fault plan whose entries each apply to the next
//! `count` notification delivery attempts or API calls, and bill faults that change every
//! downloadbill (§8.7) until they are cleared.

use serde::{Deserialize, Serialize};

use crate::notify::NotificationKind;
use crate::store::{Order, Store};
use crate::{Sim, SimError};

/// A fault plan, the body of `POST /sim/faults`. Entries are appended to the active ones
/// unless `replace` is true.
///
/// ```json
/// {"notifications": [{"fault": "duplicate", "copies": 3, "count": 1}],
///  "api": [{"fault": "system_error", "endpoint": "/pay/orderquery", "count": 2}],
///  "bills": [{"fault": "amount", "out_trade_no": "A-1", "delta_fen": -5}]}
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
    /// Differences between the bill and the simulator's own records (§8.7): not used up by a
    /// count, they change every downloadbill until replaced or cleared.
    #[serde(default)]
    pub bills: Vec<BillFault>,
    /// Clear the active faults (bill faults included) first.
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

/// The largest lag a `lag` bill fault takes: the bill window itself (§8.7, 3 months).
pub(crate) const MAX_BILL_LAG_MS: u64 = 92 * 24 * 3600 * 1000;

/// The largest 订单金额 an `amount` bill fault may print, in fen (unifiedorder's own cap is
/// 10 000 000 CNY).
const MAX_BILLED_TOTAL_FEE: i64 = 10_000_000_000;

/// A difference between downloadbill (§8.7) and what the simulator holds, so that a
/// reconciliation can be tested against each kind. Unlike notification and API faults it is
/// not used up: it applies to every bill that includes the order until the plan is replaced
/// (`replace: true`) or the faults are cleared. Several entries for one order add up.
///
/// ```json
/// {"fault": "amount", "out_trade_no": "X", "delta_fen": 1}
/// {"fault": "lag", "ms": 200}
/// {"fault": "omit", "out_trade_no": "X"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case", deny_unknown_fields)]
pub enum BillFault {
    /// "The amount changed at WeChat": the order's payment row shows 订单金额 and 应结订单金额
    /// changed by `delta_fen`, its 手续费 computed from the changed amount, and the summary
    /// line summed from the rows as printed (the bill stays consistent in itself). The
    /// changed 订单金额 must stay > 0 and 应结订单金额 ≥ 0: the control API refuses an entry
    /// that breaks this for an order it knows (400), and a bill leaves such an entry out.
    Amount {
        /// The order whose payment row changes.
        out_trade_no: String,
        /// Fen added to the amounts (default +1; may be negative).
        #[serde(default = "plus_one_fen")]
        delta_fen: i64,
    },
    /// "Filed under the next day": every payment and refund (or only those of
    /// `out_trade_no`) goes into the bill of the Beijing date of its time + `ms`, with its
    /// 交易时间 (and a REFUND bill's 退款申请时间 / 退款成功时间) printed `ms` later: a trade
    /// at 23:59:59.9 with `ms: 200` is in the next day's bill. At most 92 days.
    Lag {
        /// Real milliseconds added to the billed times.
        ms: u64,
        /// Only this order's payment and refunds (default: every row).
        #[serde(default)]
        out_trade_no: Option<String>,
    },
    /// "Here but not there": the order's payment row and its refunds' rows are left out of
    /// the bill (and so of its summary).
    Omit {
        /// The order left out.
        out_trade_no: String,
    },
}

fn plus_one_fen() -> i64 {
    1
}

/// 订单金额 and 应结订单金额 of `order`'s payment row after `delta_fen`, if both stay valid
/// (订单金额 in 1 fen ..= 10 000 000 CNY, 应结订单金额 ≥ 0).
pub(crate) fn changed_amounts(order: &Order, delta_fen: i64) -> Option<(i64, i64)> {
    let total = order.total_fee.checked_add(delta_fen)?;
    let cash = order
        .cash_fee
        .unwrap_or(order.total_fee)
        .checked_add(delta_fen)?;
    ((1..=MAX_BILLED_TOTAL_FEE).contains(&total) && cash >= 0).then_some((total, cash))
}

impl BillFault {
    /// Whether it concerns the rows of `order`.
    fn applies_to(&self, order: &str) -> bool {
        match self {
            BillFault::Amount { out_trade_no, .. } | BillFault::Omit { out_trade_no } => {
                out_trade_no == order
            }
            BillFault::Lag { out_trade_no, .. } => {
                out_trade_no.as_deref().is_none_or(|o| o == order)
            }
        }
    }

    /// Why the control API refuses it, given what the simulator holds now.
    fn check(&self, store: &Store) -> Result<(), SimError> {
        match self {
            BillFault::Amount {
                out_trade_no,
                delta_fen,
            } => match store.orders.get(out_trade_no) {
                Some(order) if changed_amounts(order, *delta_fen).is_none() => {
                    Err(SimError::Invalid(format!(
                        "amount fault: delta_fen {delta_fen} leaves order {out_trade_no} \
                         (total_fee {}) without a positive amount",
                        order.total_fee
                    )))
                }
                _ => Ok(()),
            },
            BillFault::Lag { ms, .. } if *ms > MAX_BILL_LAG_MS => Err(SimError::Invalid(format!(
                "lag fault: ms must be at most {MAX_BILL_LAG_MS} (92 days)"
            ))),
            BillFault::Lag { .. } | BillFault::Omit { .. } => Ok(()),
        }
    }
}

/// The bill faults one downloadbill applies (a copy: the bill is built without the lock).
#[derive(Debug, Clone, Default)]
pub(crate) struct BillFaults(Vec<BillFault>);

impl BillFaults {
    /// Whether `out_trade_no`'s rows are left out (`omit`).
    pub fn omits(&self, out_trade_no: &str) -> bool {
        self.0
            .iter()
            .any(|f| matches!(f, BillFault::Omit { .. }) && f.applies_to(out_trade_no))
    }

    /// How much later `out_trade_no`'s rows are billed (`lag` entries add up).
    pub fn lag(&self, out_trade_no: &str) -> time::Duration {
        let ms: u64 = self
            .0
            .iter()
            .filter(|f| f.applies_to(out_trade_no))
            .map(|f| match f {
                BillFault::Lag { ms, .. } => *ms,
                _ => 0,
            })
            .fold(0, u64::saturating_add);
        time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Fen added to `out_trade_no`'s amounts (`amount` entries add up).
    pub fn amount_delta(&self, out_trade_no: &str) -> i64 {
        self.0
            .iter()
            .filter(|f| f.applies_to(out_trade_no))
            .map(|f| match f {
                BillFault::Amount { delta_fen, .. } => *delta_fen,
                _ => 0,
            })
            .fold(0, i64::saturating_add)
    }
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
    bills: Vec<BillFault>,
    next_id: u64,
}

/// What is left of the plans, as `GET /sim/faults` shows it (`count` = remaining).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFaults {
    /// Remaining notification faults.
    pub notifications: Vec<NotifyFault>,
    /// Remaining API faults.
    pub api: Vec<ApiFault>,
    /// Bill faults (active until replaced or cleared).
    #[serde(default)]
    pub bills: Vec<BillFault>,
}

/// Add a plan (`POST /sim/faults`, [`crate::RunningSim::try_set_faults`]) and return what is
/// active; refused as a whole when a bill fault cannot apply to what the simulator holds (an
/// `amount` that leaves a known order without a positive amount, a `lag` over 92 days).
pub(crate) fn apply_plan(sim: &Sim, plan: FaultPlan) -> Result<ActiveFaults, SimError> {
    {
        let store = sim.store();
        plan.bills.iter().try_for_each(|f| f.check(&store))?;
    }
    let mut faults = sim.faults();
    faults.apply(plan);
    Ok(faults.active())
}

impl Faults {
    pub fn apply(&mut self, plan: FaultPlan) {
        if plan.replace {
            self.clear();
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
        self.bills.extend(plan.bills);
    }

    pub fn clear(&mut self) {
        self.notifications.clear();
        self.api.clear();
        self.bills.clear();
    }

    /// The bill faults, for one downloadbill.
    pub fn bill_faults(&self) -> BillFaults {
        BillFaults(self.bills.clone())
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
            bills: self.bills.clone(),
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
    fn bill_faults_stay_until_replaced_and_add_up_per_order() {
        // Arrange
        let plan: FaultPlan = serde_json::from_str(
            r#"{"bills":[{"fault":"amount","out_trade_no":"A"},
                         {"fault":"amount","out_trade_no":"A","delta_fen":-3},
                         {"fault":"lag","ms":200},
                         {"fault":"lag","ms":50,"out_trade_no":"B"},
                         {"fault":"omit","out_trade_no":"C"}]}"#,
        )
        .unwrap();
        let mut faults = Faults::default();

        // Act
        faults.apply(plan);
        let bills = faults.bill_faults();
        let shown = faults.active().bills.len();
        faults.apply(FaultPlan {
            replace: true,
            ..FaultPlan::default()
        });

        // Assert
        assert_eq!(bills.amount_delta("A"), -2);
        assert_eq!(bills.amount_delta("B"), 0);
        assert_eq!(bills.lag("A"), time::Duration::milliseconds(200));
        assert_eq!(bills.lag("B"), time::Duration::milliseconds(250));
        assert!(bills.omits("C") && !bills.omits("A"));
        assert_eq!(shown, 5);
        assert_eq!(faults.active(), ActiveFaults::default());
    }

    #[test]
    fn unknown_fault_fields_are_refused() {
        let r: Result<FaultPlan, _> =
            serde_json::from_str(r#"{"api":[{"fault":"system_error","cuont":2}]}"#);
        assert!(r.is_err());
        let r: Result<FaultPlan, _> =
            serde_json::from_str(r#"{"bills":[{"fault":"omit","out_trade_no":"X","ms":1}]}"#);
        assert!(r.is_err());
    }
}
