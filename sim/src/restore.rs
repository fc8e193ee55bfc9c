//! Handing a fresh simulator what the merchant already holds, so that a sandbox that
//! restarts (its simulator keeps its state in memory only) or was seeded with history
//! answers orderquery, refunds, refundquery and bills for those orders as WeChat Pay would:
//! it remembers every order it ever took.
//!
//! What cannot be restored is what only the simulator knew: a payment it made whose
//! notification never reached the merchant before the restart is lost with it, as the
//! merchant's record says NOTPAY.

use std::sync::Arc;

use time::OffsetDateTime;
use wxpay::SignType;

use crate::store::{self, Order, OrderState, Refund, RefundState};
use crate::{notify, Sim};

/// An order as the merchant's database holds it.
#[derive(Debug, Clone)]
pub struct KnownOrder {
    /// Merchant order id.
    pub out_trade_no: String,
    /// `trade_state` the merchant recorded (a refunded order is `REFUND`).
    pub state: OrderState,
    /// Amount in fen.
    pub total_fee: i64,
    /// `body`.
    pub body: String,
    /// Payer openid.
    pub openid: Option<String>,
    /// Where its payment notification went.
    pub notify_url: String,
    /// Algorithm of its unifiedorder.
    pub sign_type: SignType,
    /// Its `prepay_id`, if one was issued.
    pub prepay_id: Option<String>,
    /// When that `prepay_id` stops being valid.
    pub prepay_expires_at: OffsetDateTime,
    /// When the order can no longer be paid.
    pub expires_at: OffsetDateTime,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// WeChat's transaction id, once paid.
    pub transaction_id: Option<String>,
    /// Payment time.
    pub time_end: Option<OffsetDateTime>,
    /// Payer's bank.
    pub bank_type: Option<String>,
}

/// A refund the merchant's database holds as sent to WeChat Pay and accepted.
#[derive(Debug, Clone)]
pub struct KnownRefund {
    /// Merchant refund id.
    pub out_refund_no: String,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The order.
    pub out_trade_no: String,
    /// Amount in fen.
    pub refund_fee: i64,
    /// Status as last known (`PROCESSING` ones finish after the configured refund delay).
    pub status: RefundState,
    /// `refund_desc`.
    pub refund_desc: Option<String>,
    /// Where its refund notification goes.
    pub notify_url: Option<String>,
    /// `refund_recv_accout`.
    pub refund_recv_accout: String,
    /// When it was accepted.
    pub created_at: OffsetDateTime,
    /// When it succeeded.
    pub success_time: Option<OffsetDateTime>,
}

/// What [`crate::RunningSim::restore`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Orders added.
    pub orders: usize,
    /// Refunds added.
    pub refunds: usize,
    /// Skipped: already known to the simulator (its own record wins), or a refund whose
    /// order is unknown or paid less than its refunds.
    pub skipped: usize,
}

/// Adds `orders` (oldest first keeps the bill's order) and then `refunds` to the store.
pub(crate) fn restore(
    sim: &Arc<Sim>,
    orders: Vec<KnownOrder>,
    refunds: Vec<KnownRefund>,
) -> RestoreReport {
    let mut report = RestoreReport::default();
    let mut processing = Vec::new();
    {
        let mut store = sim.store();
        for k in orders {
            if store.orders.contains_key(&k.out_trade_no) {
                report.skipped += 1;
                continue;
            }
            let seq = store.next_seq();
            let paid = k.state.is_paid();
            let order = Order {
                out_trade_no: k.out_trade_no.clone(),
                state: k.state,
                total_fee: k.total_fee,
                body: k.body,
                attach: None,
                device_info: None,
                openid: k.openid,
                trade_type: "JSAPI".to_owned(),
                notify_url: k.notify_url,
                sign_type: k.sign_type,
                // The merchant's production orders: the sandbox keeps its own.
                sandbox: false,
                prepay_id: k
                    .prepay_id
                    .unwrap_or_else(|| store::new_prepay_id(k.created_at)),
                prepay_expires_at: k.prepay_expires_at,
                expires_at: k.expires_at,
                created_at: k.created_at,
                transaction_id: k.transaction_id.filter(|_| paid),
                time_end: k.time_end.filter(|_| paid),
                bank_type: k.bank_type.filter(|_| paid),
                cash_fee: paid.then_some(k.total_fee),
                err_code: (k.state == OrderState::Payerror).then(|| "BANKERROR".to_owned()),
                err_code_des: (k.state == OrderState::Payerror).then(|| "银行系统异常".to_owned()),
                refunded_fee: 0,
                refunds: Vec::new(),
                // The first unifiedorder's parameters are not kept by the merchant: a
                // re-entry is answered as one with changed parameters.
                request: wxpay::Params::new(),
                seq,
            };
            if let Some(t) = &order.transaction_id {
                store
                    .by_transaction_id
                    .insert(t.clone(), order.out_trade_no.clone());
            }
            store.orders.insert(k.out_trade_no, order);
            report.orders += 1;
        }
        for k in refunds {
            if store.refunds.contains_key(&k.out_refund_no) {
                report.skipped += 1;
                continue;
            }
            let counts = k.status != RefundState::Refundclose;
            let Some(order) = store.orders.get_mut(&k.out_trade_no) else {
                report.skipped += 1;
                continue;
            };
            let Some(transaction_id) = order.transaction_id.clone() else {
                report.skipped += 1;
                continue;
            };
            if counts && order.refunded_fee + k.refund_fee > order.total_fee {
                report.skipped += 1;
                continue;
            }
            if counts {
                order.refunded_fee += k.refund_fee;
            }
            order.refunds.push(k.out_refund_no.clone());
            order.state = OrderState::Refund;
            let total_fee = order.total_fee;
            let sign_type = order.sign_type;
            let seq = store.next_seq();
            let refund = Refund {
                out_refund_no: k.out_refund_no.clone(),
                refund_id: k.refund_id,
                out_trade_no: k.out_trade_no,
                transaction_id,
                total_fee,
                refund_fee: k.refund_fee,
                status: k.status,
                refund_desc: k.refund_desc,
                notify_url: k.notify_url,
                refund_account: "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned(),
                refund_recv_accout: k.refund_recv_accout,
                refund_request_source: crate::RefundSource::Api,
                created_at: k.created_at,
                success_time: k.success_time.filter(|_| k.status == RefundState::Success),
                sign_type,
                sandbox: false,
                generation: 1,
                seq,
            };
            if k.status == RefundState::Processing {
                processing.push(refund.out_refund_no.clone());
            }
            store
                .by_refund_id
                .insert(refund.refund_id.clone(), refund.out_refund_no.clone());
            store.refunds.insert(k.out_refund_no, refund);
            report.refunds += 1;
        }
    }
    // A refund in flight when the simulator stopped finishes as a new one would.
    let delay = sim.clock.real(sim.config.refund_delay);
    for out_refund_no in processing {
        notify::schedule_refund_outcome(sim, out_refund_no, RefundState::Success, delay, 1);
    }
    report
}
