//! Accepting a refund (docs/wechatpay-v2.md §8.5, §10.2): the per-order ledger rules, shared
//! by the refund API (`wechat.rs`) and a refund the merchant makes by hand in WeChat's
//! merchant platform (`POST /sim/orders/{out_trade_no}/refund-outside`), one WeChat knows
//! and the merchant's system never asked for.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use wxpay::SignType;

use crate::store::{self, Order, OrderState, Refund, RefundSource, RefundState, Store};
use crate::{notify, Sim, SimError};

/// The account refunds come from when none is named (§8.5 `refund_account`).
pub(crate) const UNSETTLED_FUNDS: &str = "REFUND_SOURCE_UNSETTLED_FUNDS";

/// The order a refund is for: by `transaction_id` (wins) or `out_trade_no`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderKey<'a> {
    pub transaction_id: Option<&'a str>,
    pub out_trade_no: Option<&'a str>,
}

/// What a refund asks for, already checked for format.
#[derive(Debug, Clone)]
pub(crate) struct RefundAsk {
    /// `None`: the `refund_id` is used (a merchant-platform refund names none).
    pub out_refund_no: Option<String>,
    /// Must be the order's amount.
    pub total_fee: i64,
    pub refund_fee: i64,
    pub refund_desc: Option<String>,
    /// Where the outcome is notified; `None`: not notified.
    pub notify_url: Option<String>,
    pub refund_account: String,
    pub source: RefundSource,
    pub sign_type: SignType,
    pub sandbox: bool,
}

/// Why a refund is refused; the API words it as `err_code` + `err_code_des` (§7, §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    UnknownOrder,
    NumberOfAnotherOrder,
    AmountsDiffer,
    NotPaid,
    TooMany,
    OverRefund,
    NotEnough,
}

impl Refusal {
    /// The API's `err_code`.
    pub fn err_code(self) -> &'static str {
        match self {
            Refusal::UnknownOrder | Refusal::NotPaid => "ORDERNOTEXIST",
            Refusal::NumberOfAnotherOrder | Refusal::AmountsDiffer => "INVALID_REQUEST",
            Refusal::TooMany | Refusal::OverRefund => "ERROR",
            Refusal::NotEnough => "NOTENOUGH",
        }
    }

    /// The API's `err_code_des`, as WeChat words it.
    pub fn description(self) -> &'static str {
        match self {
            Refusal::UnknownOrder => "订单不存在",
            Refusal::NotPaid => "订单未支付，无法退款",
            Refusal::NumberOfAnotherOrder => "商户退款单号已被其他订单使用",
            Refusal::AmountsDiffer => "订单金额或退款金额与之前请求不一致，请核实后再试",
            Refusal::TooMany => "订单已经超过可退款的最大次数（50次）",
            Refusal::OverRefund => "累计退款金额大于支付金额",
            Refusal::NotEnough => "基本账户余额不足，请充值后重新发起",
        }
    }
}

impl From<Refusal> for SimError {
    fn from(r: Refusal) -> Self {
        let text = format!("{} {}", r.err_code(), r.description());
        match r {
            Refusal::UnknownOrder => SimError::NotFound(text),
            _ => SimError::Conflict(text),
        }
    }
}

/// An accepted refund and its order after it.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub refund: Refund,
    pub order: Order,
    /// The `out_refund_no` was already accepted with the same amounts: this is the original
    /// acceptance, nothing new happened (§8.5 idempotency).
    pub replayed: bool,
}

/// Accept a refund under the ledger rules (§8.5): idempotent `out_refund_no`, paid orders
/// only, the order's amount, 50 refunds, Σ refunds ≤ paid, `NOTENOUGH`. A new refund is
/// PROCESSING and gets its outcome scheduled (a planned one, else SUCCESS after the refund
/// delay), notified to `notify_url` if it has one.
pub(crate) fn accept_refund(
    sim: &Arc<Sim>,
    key: OrderKey,
    ask: RefundAsk,
) -> Result<Accepted, Refusal> {
    let now = sim.clock.now();
    let mut store = sim.store();
    let order = store
        .find_order(key.transaction_id, key.out_trade_no)
        .cloned()
        .ok_or(Refusal::UnknownOrder)?;
    let existing = ask
        .out_refund_no
        .as_ref()
        .and_then(|n| store.refunds.get(n));
    if let Some(existing) = existing {
        return replay(existing, order, &ask);
    }
    check_ledger(&store, &order, &ask)?;
    let refund = record(&mut store, &order, ask, now);
    let planned = store.planned.remove(&refund.out_refund_no);
    let order = store
        .orders
        .get(&order.out_trade_no)
        .cloned()
        .unwrap_or(order);
    drop(store);
    let (outcome, delay) = match planned {
        Some(plan) => (
            plan.outcome,
            Duration::from_millis(plan.delay_ms.unwrap_or(0)),
        ),
        None => (
            RefundState::Success,
            sim.clock.real(sim.config.refund_delay),
        ),
    };
    notify::schedule_refund_outcome(sim, refund.out_refund_no.clone(), outcome, delay, 1);
    Ok(Accepted {
        refund,
        order,
        replayed: false,
    })
}

/// The same `out_refund_no` again: the original acceptance if it is the same refund.
fn replay(existing: &Refund, order: Order, ask: &RefundAsk) -> Result<Accepted, Refusal> {
    if existing.out_trade_no != order.out_trade_no {
        return Err(Refusal::NumberOfAnotherOrder);
    }
    if existing.total_fee != ask.total_fee || existing.refund_fee != ask.refund_fee {
        return Err(Refusal::AmountsDiffer);
    }
    Ok(Accepted {
        refund: existing.clone(),
        order,
        replayed: true,
    })
}

fn check_ledger(store: &Store, order: &Order, ask: &RefundAsk) -> Result<(), Refusal> {
    if !order.state.is_paid() {
        return Err(Refusal::NotPaid);
    }
    if ask.total_fee != order.total_fee {
        return Err(Refusal::AmountsDiffer);
    }
    if order.refunds.len() >= 50 {
        return Err(Refusal::TooMany);
    }
    let refunded = order.refunded_fee.checked_add(ask.refund_fee);
    if refunded.is_none_or(|sum| sum > order.total_fee) {
        return Err(Refusal::OverRefund);
    }
    if store.balance.is_some_and(|b| b < ask.refund_fee) {
        return Err(Refusal::NotEnough);
    }
    Ok(())
}

/// Write a new PROCESSING refund into the ledger: the order's refunded sum and state, the
/// balance, the indexes.
fn record(store: &mut Store, order: &Order, ask: RefundAsk, now: OffsetDateTime) -> Refund {
    let seq = store.next_seq();
    let refund_id = store::new_refund_id(seq, now);
    let refund = Refund {
        out_refund_no: ask.out_refund_no.unwrap_or_else(|| refund_id.clone()),
        refund_id,
        out_trade_no: order.out_trade_no.clone(),
        transaction_id: order.transaction_id.clone().unwrap_or_default(),
        total_fee: ask.total_fee,
        refund_fee: ask.refund_fee,
        status: RefundState::Processing,
        refund_desc: ask.refund_desc,
        notify_url: ask.notify_url,
        refund_account: ask.refund_account,
        refund_recv_accout: "支付用户的零钱".to_owned(),
        refund_request_source: ask.source,
        created_at: now,
        success_time: None,
        sign_type: ask.sign_type,
        sandbox: ask.sandbox,
        generation: 1,
        seq,
    };
    if let Some(b) = store.balance.as_mut() {
        *b -= refund.refund_fee;
    }
    if let Some(o) = store.orders.get_mut(&order.out_trade_no) {
        o.refunded_fee += refund.refund_fee;
        o.refunds.push(refund.out_refund_no.clone());
        o.state = OrderState::Refund;
    }
    store
        .by_refund_id
        .insert(refund.refund_id.clone(), refund.out_refund_no.clone());
    store
        .refunds
        .insert(refund.out_refund_no.clone(), refund.clone());
    tracing::info!(
        refund.out_refund_no = %refund.out_refund_no,
        refund.refund_fee = refund.refund_fee,
        source = refund.refund_request_source.as_str(),
        "refund accepted"
    );
    refund
}

/// A refund the merchant makes by hand in WeChat's merchant platform (`POST
/// /sim/orders/{out_trade_no}/refund-outside`): accepted under the refund API's rules, with
/// the same `refund_id` and PROCESSING → SUCCESS lifecycle, but with no notify URL, so the
/// merchant's system hears nothing of it; refundquery and the bill show it. Without
/// `out_refund_no` the refund's `refund_id` is used.
pub(crate) fn refund_outside(
    sim: &Arc<Sim>,
    out_trade_no: &str,
    out_refund_no: Option<&str>,
    refund_fee: i64,
) -> Result<Refund, SimError> {
    if refund_fee <= 0 {
        return Err(SimError::Invalid(
            "refund_fee must be a positive number of fen".into(),
        ));
    }
    if let Some(no) = out_refund_no.filter(|no| !crate::wechat::out_refund_no_ok(no)) {
        return Err(SimError::Invalid(format!(
            "out_refund_no {no:?}: at most 64 of [0-9A-Za-z_-|*@]"
        )));
    }
    let ask = {
        let store = sim.store();
        let order = store
            .orders
            .get(out_trade_no)
            .ok_or_else(|| SimError::NotFound(format!("order {out_trade_no}")))?;
        RefundAsk {
            out_refund_no: out_refund_no.map(str::to_owned),
            total_fee: order.total_fee,
            refund_fee,
            refund_desc: None,
            notify_url: None,
            refund_account: UNSETTLED_FUNDS.to_owned(),
            source: RefundSource::VendorPlatform,
            sign_type: order.sign_type,
            sandbox: order.sandbox,
        }
    };
    let key = OrderKey {
        transaction_id: None,
        out_trade_no: Some(out_trade_no),
    };
    let accepted = accept_refund(sim, key, ask)?;
    if accepted.replayed {
        return Err(SimError::Conflict(format!(
            "out_refund_no {} is already used",
            accepted.refund.out_refund_no
        )));
    }
    Ok(accepted.refund)
}
