//! Reconciliation (对账): WeChat Pay's daily trade bill (downloadbill `ALL`, GZIP,
//! docs/wechatpay-v2.md §8.7) against our orders and refunds, one Asia/Shanghai day at a time.
//!
//! [`reconcile_day`] fetches the day's bill, checks that its summary is the sum of its rows
//! ([`lines::check_summary`]), keeps it (compressed, and as typed rows), compares it with
//! what we hold ([`compare`]) and records the day and its differences. A difference is
//! identified by (day, [`Class`], order or refund number): a re-run updates it, never adds a
//! second, and a resolution with its note survives the re-run. A difference a re-run no
//! longer finds is `cleared` (the order got paid, the refund caught up).
//!
//! - Matching is by out_trade_no / out_refund_no, fen-exact. Rows of another appid on the
//!   same merchant number are counted apart, never offered for 补单.
//! - Refund differences are re-checked with refundquery before being raised: a refund whose
//!   status is only stale here is brought up to date through the refund's normal path.
//! - A trade just before midnight that WeChat Pay filed under the next day is matched
//!   against that day's bill once it is here, and until then is `pending` (listed, not
//!   counted). Reconciling a day looks again at the day before's pending trades.
//! - "No Bill Exist" is a day without trades: matched only if we have none either.

mod compare;
mod lines;
mod store;

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use wxpay::{Api, BillType};

pub use compare::{refund_states_agree, Found, Neighbours, OurOrder, OurRefund, STRADDLE_MS};
pub use lines::{check_summary, read as read_bill, Damaged, Line, LineKind};
pub use store::{
    day_of, day_text, days_between, differences, differences_csv, find_difference, resolve, Day,
    DayStatus, Difference, DifferenceState,
};

use crate::audit::{self, Actor};
use crate::events::EventBus;
use crate::refunds::{self, Rechecked, RefundPolicy};
use crate::time::{day_number, day_number_start, now_ms, DAY_MS};
use crate::{CoreError, Db};

/// The job's row in `job_leases` for yesterday's run.
pub const JOB: &str = "reconciliation";
/// The job's row in `job_leases` for the daily pass over earlier days.
pub const CATCH_UP_JOB: &str = "reconciliation-catch-up";
/// How far back the catch-up pass looks.
pub const CATCH_UP_DAYS: i64 = 31;

/// How far back a day may be reconciled: WeChat Pay serves bills for about three months.
pub const MAX_DAYS_BACK: i64 = 90;

/// The most refundqueries one comparison makes to re-check refund differences (WeChat Pay
/// limits the call rate). Past it, a difference is raised as found; the next comparison
/// re-checks it again.
pub const MAX_RECHECKS: usize = 500;

/// What kind of difference (its stored name is [`Class::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Paid at WeChat Pay, still unpaid here (`NOTPAY` / `PAYERROR`): a lost notification
    /// (掉单). 补单 is offered: orderquery, then the normal payment path.
    PaidThereOnly,
    /// Paid at WeChat Pay, `CLOSED` here: paid after it was closed; a person decides.
    StatusDiffers,
    /// Paid at WeChat Pay under our appid with an order number we do not have.
    UnknownOrder,
    /// Paid here, not on WeChat Pay's bill.
    PaidHereOnly,
    /// Paid on both sides, for different amounts (订单金额 against our total_fee).
    AmountDiffers,
    /// Paid on both sides with different transaction ids: a second payment.
    TransactionDiffers,
    /// A refund on the bill that we never made (made in the merchant platform, or lost).
    RefundThereOnly,
    /// A refund WeChat Pay accepted by our records, which it does not know (refundquery
    /// agrees).
    RefundHereOnly,
    /// A refund of a different amount there.
    RefundAmountDiffers,
    /// A refund whose state differs there, after refundquery was asked.
    RefundStatusDiffers,
}

impl Class {
    /// Every class.
    pub const ALL: [Class; 10] = [
        Class::PaidThereOnly,
        Class::StatusDiffers,
        Class::UnknownOrder,
        Class::PaidHereOnly,
        Class::AmountDiffers,
        Class::TransactionDiffers,
        Class::RefundThereOnly,
        Class::RefundHereOnly,
        Class::RefundAmountDiffers,
        Class::RefundStatusDiffers,
    ];

    /// As stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::PaidThereOnly => "paid_there_only",
            Class::StatusDiffers => "status_differs",
            Class::UnknownOrder => "unknown_order",
            Class::PaidHereOnly => "paid_here_only",
            Class::AmountDiffers => "amount_differs",
            Class::TransactionDiffers => "transaction_differs",
            Class::RefundThereOnly => "refund_there_only",
            Class::RefundHereOnly => "refund_here_only",
            Class::RefundAmountDiffers => "refund_amount_differs",
            Class::RefundStatusDiffers => "refund_status_differs",
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether it is about a refund (its number is the out_refund_no).
    pub fn is_refund(self) -> bool {
        matches!(
            self,
            Class::RefundThereOnly
                | Class::RefundHereOnly
                | Class::RefundAmountDiffers
                | Class::RefundStatusDiffers
        )
    }

    /// Whether 补单 (query WeChat Pay and apply the payment) can settle it.
    pub fn offers_sync(self) -> bool {
        self == Class::PaidThereOnly
    }

    /// What it means and what to do, in plain words (Chinese).
    pub fn zh(self) -> &'static str {
        match self {
            Class::PaidThereOnly => "微信已收款，我方订单仍未支付（掉单）：可从微信同步（补单）",
            Class::StatusDiffers => {
                "微信已收款，我方订单已关闭：订单关闭后被支付，需人工处理（退款或补发货）"
            }
            Class::UnknownOrder => "微信账单上有本小程序的收款，我方没有这个订单号",
            Class::PaidHereOnly => "我方已支付，微信账单上没有这笔交易",
            Class::AmountDiffers => "双方都已支付，但金额不一致",
            Class::TransactionDiffers => "双方都已支付，但微信支付单号不同：可能重复支付",
            Class::RefundThereOnly => {
                "微信账单上有退款，我方没有这笔退款（可能在商户平台直接退款）"
            }
            Class::RefundHereOnly => "我方记录微信已受理的退款，微信查询不到",
            Class::RefundAmountDiffers => "退款金额不一致",
            Class::RefundStatusDiffers => "退款状态不一致（已用退款查询核实）",
        }
    }

    /// What it means and what to do, in plain words (English).
    pub fn en(self) -> &'static str {
        match self {
            Class::PaidThereOnly => "paid at WeChat Pay, still unpaid here (lost notification): sync it from WeChat",
            Class::StatusDiffers => "paid at WeChat Pay, closed here: paid after it was closed; a person decides (refund or deliver)",
            Class::UnknownOrder => "a payment under our appid on WeChat Pay's bill with an order number we do not have",
            Class::PaidHereOnly => "paid here, not on WeChat Pay's bill",
            Class::AmountDiffers => "paid on both sides, for different amounts",
            Class::TransactionDiffers => "paid on both sides with different transaction ids: maybe paid twice",
            Class::RefundThereOnly => "a refund on WeChat Pay's bill that we did not make (made in the merchant platform?)",
            Class::RefundHereOnly => "a refund WeChat Pay accepted by our records, which refundquery does not find",
            Class::RefundAmountDiffers => "the refund's amount differs",
            Class::RefundStatusDiffers => "the refund's state differs (checked with refundquery)",
        }
    }
}

/// What reconciliation needs besides the database.
pub struct Reconciler<'a> {
    /// The database.
    pub db: &'a Db,
    /// WeChat Pay.
    pub api: &'a dyn Api,
    /// Where order and refund changes are published.
    pub events: &'a EventBus,
    /// Our appid: rows of other appids are not ours.
    pub appid: &'a str,
    /// The refund job's policy, for refunds brought up to date by refundquery.
    pub refund_policy: &'a RefundPolicy,
}

/// A reconciled day: where it stands and every difference of it (resolved and cleared
/// ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The day.
    pub day: Day,
    /// Its differences.
    pub differences: Vec<Difference>,
}

impl Report {
    /// Differences that need a person (`open`).
    pub fn open(&self) -> impl Iterator<Item = &Difference> {
        self.differences
            .iter()
            .filter(|d| d.state == DifferenceState::Open)
    }
}

/// The `time::Date` of Shanghai day number `day`.
pub fn date_of(day: i64) -> Option<time::Date> {
    time::Date::from_calendar_date(1970, time::Month::January, 1)
        .ok()?
        .checked_add(time::Duration::days(day))
}

/// The Shanghai day number of `date`.
pub fn day_of_date(date: time::Date) -> i64 {
    day_number(crate::time::date_start(date))
}

/// Fetches the bill of Shanghai day `day`, keeps it, compares and records (module docs),
/// then looks again at the day before if it has pending trades. A bill that is not ready
/// (or a failed fetch) leaves the day `waiting`; a damaged bill leaves it `failed`; both
/// with the reason in [`Day::error`].
#[tracing::instrument(skip_all, fields(reconcile.day = day))]
pub async fn reconcile_day(r: &Reconciler<'_>, day: i64) -> Result<Report, CoreError> {
    let now = now_ms();
    let today = day_number(now);
    if day > today || day < today - MAX_DAYS_BACK {
        return Err(CoreError::invalid(
            "day",
            format!("a bill can be reconciled for the last {MAX_DAYS_BACK} days, up to today"),
        ));
    }
    let date = date_of(day).ok_or_else(|| CoreError::invalid("day", "no such date"))?;
    let started = std::time::Instant::now();
    let lines = match r.api.download_bill_gzip(date, BillType::All).await {
        Ok(fetched) => match lines::read(&fetched.bill, r.appid) {
            Ok((lines, summary)) => {
                let fetched_ms = started.elapsed().as_millis();
                store::keep_bill(r.db, day, &fetched, &lines, &summary, now).await?;
                tracing::info!(
                    rows = lines.len(),
                    gzip_bytes = fetched.gzip.len(),
                    fetched_and_read_ms = fetched_ms,
                    kept_ms = started.elapsed().as_millis() - fetched_ms,
                    "the day's bill fetched, checked and kept"
                );
                drop(fetched);
                Some(lines)
            }
            Err(damage) => {
                tracing::error!(error = %damage, "the day's bill is damaged; the day is not reconciled");
                store::keep_damaged_bill(r.db, day, &fetched, now).await?;
                store::mark(r.db, day, DayStatus::Failed, &damage.to_string(), now).await?;
                return report(r.db, day).await;
            }
        },
        Err(wxpay::Error::BillFail {
            return_msg,
            error_code,
        }) if error_code.as_deref() == Some("20002")
            || return_msg.eq_ignore_ascii_case("No Bill Exist") =>
        {
            store::keep_no_bill(r.db, day, now).await?;
            Some(Vec::new())
        }
        Err(e) => {
            let (status, what) = if e.retry_safe() {
                (DayStatus::Waiting, "not available yet; tried again later")
            } else {
                (DayStatus::Failed, "could not be fetched")
            };
            tracing::warn!(error = %e, "the day's bill {what}");
            store::mark(r.db, day, status, &format!("downloadbill: {e}"), now).await?;
            return report(r.db, day).await;
        }
    };
    let compared = std::time::Instant::now();
    let report = compare(r, day, lines.as_deref()).await?;
    tracing::info!(
        compared_ms = compared.elapsed().as_millis(),
        open = report.day.open_count,
        "the day compared"
    );
    if let Some(before) = store::day_of(r.db, day - 1).await? {
        if before.pending_count > 0 && before.bill != "missing" {
            compare_day(r, day - 1).await?;
        }
    }
    Ok(report)
}

/// Compares day `day` from its stored bill (no fetch) and records the outcome: after a
/// 补单, after the next day's bill arrived, or as [`reconcile_day`]'s second half.
pub async fn compare_day(r: &Reconciler<'_>, day: i64) -> Result<Report, CoreError> {
    let stored = store::day_of(r.db, day).await?;
    let lines = match stored.as_ref().map(|d| d.bill.as_str()) {
        Some("present") => store::lines(r.db, day).await?,
        Some("none") => Vec::new(),
        _ => {
            return Err(CoreError::invalid(
                "day",
                "its bill has not been fetched: reconcile it first",
            ))
        }
    };
    compare(r, day, Some(&lines)).await
}

/// Compares day `day` with the bill's rows (`None`: no bill) and records the outcome.
async fn compare(
    r: &Reconciler<'_>,
    day: i64,
    lines: Option<&[Line]>,
) -> Result<Report, CoreError> {
    let now = now_ms();
    let mut found = run_comparison(r.db, day, lines).await?;
    // Refund differences are re-checked with refundquery before being raised.
    if recheck_refunds(r, &found).await? {
        found = run_comparison(r.db, day, lines).await?;
    }
    let (mut found, totals) = found;
    drop_confirmed_there(r, &mut found).await?;
    store::record(r.db, day, &found, &totals, now).await?;
    report(r.db, day).await
}

async fn report(db: &Db, day: i64) -> Result<Report, CoreError> {
    let day_row = store::day_of(db, day).await?.ok_or(CoreError::NotFound)?;
    Ok(Report {
        day: day_row,
        differences: store::differences(db, day).await?,
    })
}

/// Loads our side of the day and compares.
async fn run_comparison(
    db: &Db,
    day: i64,
    lines: Option<&[Line]>,
) -> Result<(Vec<Found>, compare::Totals), CoreError> {
    let all = lines.unwrap_or(&[]);
    let ours = |kind| all.iter().filter(move |l| l.ours && l.kind == kind);
    let trade_nos: Vec<&str> = ours(LineKind::Payment)
        .filter_map(|l| l.out_trade_no.as_deref())
        .collect();
    let refund_nos: Vec<&str> = ours(LineKind::Refund)
        .filter_map(|l| l.out_refund_no.as_deref())
        .collect();
    let (start, end) = (day_number_start(day), day_number_start(day) + DAY_MS);
    let orders_on_bill: HashMap<String, OurOrder> = store::orders_by_number(db, &trade_nos)
        .await?
        .into_iter()
        .map(|o| (o.out_trade_no.clone(), o))
        .collect();
    let refunds_on_bill: HashMap<String, OurRefund> = store::refunds_by_number(db, &refund_nos)
        .await?
        .into_iter()
        .map(|r| (r.out_refund_no.clone(), r))
        .collect();
    let paid_that_day = store::orders_paid_between(db, start, end).await?;
    let refunds_that_day = store::refunds_accepted_between(db, start, end).await?;
    let on_bill: HashSet<&str> = trade_nos.iter().chain(&refund_nos).copied().collect();
    let candidates: Vec<&str> = paid_that_day
        .iter()
        .map(|o| o.out_trade_no.as_str())
        .chain(refunds_that_day.iter().map(|r| r.out_refund_no.as_str()))
        .filter(|no| !on_bill.contains(no))
        .collect();
    let neighbours = if candidates.is_empty() {
        Neighbours::default()
    } else {
        Neighbours {
            before: store::numbers_on_bill(db, day - 1, &candidates).await?,
            after: store::numbers_on_bill(db, day + 1, &candidates).await?,
        }
    };
    Ok(compare::compare(&compare::Inputs {
        day,
        lines,
        orders_on_bill: &orders_on_bill,
        paid_that_day: &paid_that_day,
        refunds_on_bill: &refunds_on_bill,
        refunds_that_day: &refunds_that_day,
        neighbours: &neighbours,
    }))
}

/// Asks refundquery about every refund whose state differs (at most [`MAX_RECHECKS`]), and
/// applies what it says through the refund's normal path. Returns whether any refund moved.
async fn recheck_refunds(
    r: &Reconciler<'_>,
    found: &(Vec<Found>, compare::Totals),
) -> Result<bool, CoreError> {
    let mut moved = false;
    let status_differs = found
        .0
        .iter()
        .filter(|f| f.class == Class::RefundStatusDiffers && !f.pending);
    for f in status_differs.take(MAX_RECHECKS) {
        let Some(id) = f.refund_row_id else { continue };
        let Some(refund) = refunds::find(r.db, id).await? else {
            continue;
        };
        if let Rechecked::Found(after) =
            refunds::recheck(r.db, r.api, r.events, r.refund_policy, &refund).await?
        {
            moved |= after.status != refund.status;
        }
    }
    Ok(moved)
}

/// A refund the bill lacks but refundquery finds is WeChat Pay's: it is filed on another
/// day's bill, where it is matched. Only one refundquery does not find is raised (at most
/// [`MAX_RECHECKS`] are asked about; the rest are raised as found).
async fn drop_confirmed_there(r: &Reconciler<'_>, found: &mut Vec<Found>) -> Result<(), CoreError> {
    let mut kept = Vec::with_capacity(found.len());
    let mut asked = 0;
    for f in found.drain(..) {
        if f.class == Class::RefundHereOnly && !f.pending && asked < MAX_RECHECKS {
            asked += 1;
            if let Some(refund) = match f.refund_row_id {
                Some(id) => refunds::find(r.db, id).await?,
                None => None,
            } {
                match refunds::recheck(r.db, r.api, r.events, r.refund_policy, &refund).await? {
                    Rechecked::Found(_) => continue,
                    Rechecked::NotExist | Rechecked::Failed(_) => {}
                }
            }
        }
        kept.push(f);
    }
    *found = kept;
    Ok(())
}

/// 补单 for a difference that offers it ([`Class::offers_sync`]): asks WeChat Pay about the
/// order with orderquery and applies the payment through the normal path (a conditional
/// transition: a notification arriving at the same moment applies it once between them),
/// audited; then compares the day again. Returns the difference afterwards.
pub async fn sync_from_wechat(
    r: &Reconciler<'_>,
    id: i64,
    actor: &Actor,
) -> Result<Difference, CoreError> {
    let d = find_difference(r.db, id)
        .await?
        .ok_or(CoreError::NotFound)?;
    if !d.class.offers_sync() {
        return Err(CoreError::invalid(
            "difference",
            "only a payment WeChat Pay has and we do not can be synced from WeChat",
        ));
    }
    let order = crate::orders::find_by_out_trade_no(r.db, &d.ref_no)
        .await?
        .ok_or(CoreError::NotFound)?;
    let after = crate::sync::refresh_order(r.db, r.api, r.events, &order).await?;
    audit::record(
        r.db.writer(),
        audit::Entry {
            actor,
            action: audit::action::RECONCILE_SYNC,
            target: Some(&d.ref_no),
            detail: Some(&format!(
                "day {} {}: {} → {}",
                store::day_text(d.day),
                d.class.as_str(),
                order.status.as_str(),
                after.status.as_str()
            )),
        },
    )
    .await?;
    compare_day(r, d.day).await?;
    find_difference(r.db, id).await?.ok_or(CoreError::NotFound)
}

/// Reconciles `day` as `actor` asked (the page's button, `paydesk reconcile`), audited.
pub async fn reconcile_day_as(
    r: &Reconciler<'_>,
    day: i64,
    actor: &Actor,
) -> Result<Report, CoreError> {
    let report = reconcile_day(r, day).await?;
    audit::record(
        r.db.writer(),
        audit::Entry {
            actor,
            action: audit::action::RECONCILE_RUN,
            target: Some(&store::day_text(day)),
            detail: Some(&format!(
                "{}: {} open, {} pending",
                report.day.status.as_str(),
                report.day.open_count,
                report.day.pending_count
            )),
        },
    )
    .await?;
    Ok(report)
}

/// The days before `yesterday` (at most [`CATCH_UP_DAYS`] back, never before our first
/// order: a merchant's trades from before paydesk are not ours to explain) that were never
/// reconciled or still wait for their bill, oldest first: after the server was down at
/// the run time, or the sandbox's first start with weeks of history.
pub async fn days_to_catch_up(db: &Db, yesterday: i64) -> Result<Vec<i64>, CoreError> {
    let first_order: Option<i64> = sqlx::query_scalar("select min(created_at) from orders")
        .fetch_one(db.reader())
        .await?;
    let Some(first_order) = first_order else {
        return Ok(Vec::new());
    };
    let from = (yesterday - CATCH_UP_DAYS).max(day_number(first_order));
    let to = yesterday - 1;
    if from > to {
        return Ok(Vec::new());
    }
    let done: HashSet<i64> = days_between(db, from, to)
        .await?
        .into_iter()
        .filter(|d| d.status != DayStatus::Waiting)
        .map(|d| d.day)
        .collect();
    Ok((from..=to).filter(|d| !done.contains(d)).collect())
}
