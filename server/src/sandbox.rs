//! The sandbox a newcomer sees (sandbox mode only; merchant mode never calls this).
//!
//! On every start, before serving:
//! 1. an empty catalogue gets the demo products;
//! 2. the first start of an empty database fills [`HISTORY_DAYS`] days of realistic history
//!    (`paydesk_core::seed`), unless `PAYDESK_DEMO_HISTORY=off`;
//! 3. the in-process simulator, whose state lives in memory only, is told what the database
//!    holds: the [`RESTORE_MAX_ORDERS`] newest orders and the refunds WeChat Pay accepted on
//!    them. Orderquery, refunds, refundquery and bills then agree with the dashboard after a
//!    restart or a `paydesk seed`, as they would with WeChat Pay, which never forgets an
//!    order. Older orders are unknown to it (`ORDERNOTEXIST`, a defined outcome).
//!
//! 4. the first start with history plants one reconciliation difference in the simulator's
//!    bills (`plant_demo_difference`); the reconciliation job's catch-up then reconciles
//!    the history, all ✓ but that day.
//!
//! What only the simulator knew is lost with it: a payment it made whose notification had
//! not reached paydesk before the restart (the order stays NOTPAY until it expires).

use anyhow::Context as _;
use paydesk_core::orders::{Order, OrderStatus};
use paydesk_core::refunds::Refund;
use paydesk_core::Db;
use paydesk_sim::{KnownOrder, KnownRefund, OrderState, RefundState, RunningSim};
use paydesk_types::RefundStatus;
use time::OffsetDateTime;

use crate::state::PayConfig;

/// How far back the first start's history reaches.
pub const HISTORY_DAYS: u32 = 21;
/// How many orders the first start's history holds (about 110 a day: a busy small shop).
pub const HISTORY_ORDERS: u64 = 2_400;
/// The most orders handed to the simulator at start: bounds its memory (a few hundred
/// bytes each) and the start time whatever `paydesk seed` put in the database.
pub const RESTORE_MAX_ORDERS: i64 = 100_000;

/// Prepares the sandbox (module docs). `fresh`: this start created the first admin, i.e.
/// the database was empty.
pub async fn prepare(
    db: &Db,
    sim: &RunningSim,
    pay: &PayConfig,
    fresh: bool,
    fill_history: bool,
) -> anyhow::Result<()> {
    let added = paydesk_core::products::seed_demo(db).await?;
    if added > 0 {
        tracing::info!(
            products = added,
            "demo catalogue added (sandbox mode, empty catalogue)"
        );
    }
    if fresh && fill_history {
        let report = paydesk_core::seed::seed(
            db,
            paydesk_core::seed::SeedOptions {
                orders: HISTORY_ORDERS,
                days: HISTORY_DAYS,
                rng_seed: None,
            },
            |_| {},
        )
        .await
        .context("filling the sandbox's demo history (PAYDESK_DEMO_HISTORY=off skips it)")?;
        tracing::info!(
            orders = report.orders,
            refunds = report.refunds,
            days = HISTORY_DAYS,
            "demo history added (sandbox mode, first start; PAYDESK_DEMO_HISTORY=off skips it)"
        );
    }
    restore_simulator(db, sim, pay).await?;
    if fresh && fill_history {
        plant_demo_difference(db, sim).await?;
    }
    Ok(())
}

/// The demo's one reconciliation difference: WeChat Pay's bill shows a payment of three days
/// ago ¥1.00 higher than ours, so the Reconciliation page has a red day to open (the
/// reconciliation job's catch-up finds it on this first start). Everything else of the
/// history reconciles ✓. The simulator keeps the fault in memory only: a later start
/// leaves the recorded day as it is.
async fn plant_demo_difference(db: &Db, sim: &RunningSim) -> anyhow::Result<()> {
    use paydesk_core::time::{day_number, day_number_start, DAY_MS};
    let day = day_number(paydesk_core::now_ms()) - 3;
    let start = day_number_start(day);
    let order = paydesk_core::orders::first_paid_between(db, start, start + DAY_MS).await?;
    let Some(out_trade_no) = order.map(|o| o.out_trade_no) else {
        return Ok(());
    };
    sim.set_faults(paydesk_sim::FaultPlan {
        bills: vec![paydesk_sim::BillFault::Amount {
            out_trade_no: out_trade_no.clone(),
            delta_fen: 100,
        }],
        ..paydesk_sim::FaultPlan::default()
    });
    tracing::info!(
        order.out_trade_no = %out_trade_no,
        "demo: WeChat Pay's bill shows this payment ¥1.00 higher, for the Reconciliation page"
    );
    Ok(())
}

/// Tells the simulator what the database holds (step 3 of the module docs).
pub(crate) async fn restore_simulator(
    db: &Db,
    sim: &RunningSim,
    pay: &PayConfig,
) -> anyhow::Result<()> {
    let orders = paydesk_core::orders::newest(db, RESTORE_MAX_ORDERS).await?;
    let Some(oldest) = orders.first().map(|o| o.created_at) else {
        return Ok(());
    };
    let refunds = paydesk_core::refunds::accepted_for_orders_since(db, oldest).await?;
    let report = tell_simulator(sim, &orders, &refunds, pay);
    tracing::info!(
        orders = report.orders,
        refunds = report.refunds,
        skipped = report.skipped,
        "the simulator was told the orders and refunds this database holds"
    );
    Ok(())
}

/// Tells the simulator about these orders and the refunds WeChat Pay accepted on them (a
/// refund of an order it was not told about is skipped), as WeChat Pay would know them.
/// The reconciliation benchmark hands it one day's trades this way.
pub fn tell_simulator(
    sim: &RunningSim,
    orders: &[Order],
    refunds: &[Refund],
    pay: &PayConfig,
) -> paydesk_sim::RestoreReport {
    let known_orders = orders.iter().map(|o| known_order(o, pay)).collect();
    let known_refunds = refunds
        .iter()
        .filter_map(|r| known_refund(r, pay))
        .collect();
    sim.restore(known_orders, known_refunds)
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn known_order(o: &Order, pay: &PayConfig) -> KnownOrder {
    let state = match o.status {
        OrderStatus::NotPay => OrderState::Notpay,
        OrderStatus::PayError => OrderState::Payerror,
        OrderStatus::Closed => OrderState::Closed,
        // Refunds turn it into REFUND as they are restored.
        OrderStatus::Paid | OrderStatus::PartiallyRefunded | OrderStatus::Refunded => {
            OrderState::Success
        }
    };
    let created_at = at(o.created_at);
    let expires_at = o
        .expires_at
        .map(at)
        .unwrap_or(created_at + pay.order_expire);
    KnownOrder {
        out_trade_no: o.out_trade_no.clone(),
        state,
        total_fee: o.total_fee,
        body: o.description.clone(),
        openid: Some(o.openid.clone()),
        notify_url: pay.notify_url.clone(),
        sign_type: o.sign_type,
        prepay_id: o.prepay_id.clone(),
        prepay_expires_at: o
            .prepay_expires_at
            .map(at)
            .unwrap_or(created_at + time::Duration::hours(2)),
        expires_at,
        created_at,
        transaction_id: o.transaction_id.clone(),
        time_end: o.paid_at.map(at),
        bank_type: o.bank_type.clone(),
    }
}

fn known_refund(r: &Refund, pay: &PayConfig) -> Option<KnownRefund> {
    let status = match r.status {
        RefundStatus::Processing => RefundState::Processing,
        RefundStatus::Success => RefundState::Success,
        RefundStatus::Change => RefundState::Change,
        RefundStatus::RefundClose => RefundState::Refundclose,
        _ => return None,
    };
    Some(KnownRefund {
        out_refund_no: r.out_refund_no.clone(),
        refund_id: r.refund_id.clone()?,
        out_trade_no: r.out_trade_no.clone(),
        refund_fee: r.amount_fen,
        status,
        refund_desc: wxpay::refund_desc(&r.reason),
        notify_url: Some(pay.refund_notify_url.clone()),
        refund_recv_accout: "支付用户的零钱".to_owned(),
        // WeChat Pay's own time for the refund: when it accepted it (the bill's day).
        created_at: at(r.accepted_at.unwrap_or(r.created_at)),
        success_time: r.succeeded_at.map(at),
    })
}
