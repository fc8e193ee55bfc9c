//! Payment notifications (docs/wechatpay-v2.md §8.8): check, then apply through the group commit
//! (group_commit.rs) or alone, recording the row in the same transaction.

use std::sync::Arc;
use std::time::Instant;

use sqlx::{Any, AnyPool, Executor};
use wxpay::notify::{ParsedPaymentNotification, PaymentNotification};
use wxpay::SignType;

use super::flood::{Named, Refusals};
use super::group_commit::GroupCommit;
use super::refused::{refuse, unverified};
use super::{
    decide, elapsed_us, insert_row, outcome, stored_text, Decision, Failure, Findings,
    MerchantCredentials, NotificationOutcome, NotificationRow, Refusal, Verdict,
};
use crate::events::{Event, PaidVia};
use crate::orders::transitions::{self, Payment};
use crate::orders::{self, OrderKey, OrderStatus, OutTradeNo};
use crate::{now_ms, CoreError, Db};

/// Handles one payment notification (docs/wechatpay-v2.md §8.8) end to end: records the raw body whatever
/// it is, parses it strictly (DTDs refused), verifies the signature with the order's sign
/// type (an unknown order only after the signature verified by the §5.2 rule), checks appid,
/// mch_id and total_fee, then marks the order `PAID` with one conditional update in one
/// transaction, so of many concurrent copies exactly one is [`Verdict::Applied`] and the
/// others [`Verdict::Duplicate`]. The notification row is written in the same transaction.
/// Never returns an error: a database failure is [`Verdict::InternalError`] (reply `FAIL`),
/// and a row the database refused comes back in [`NotificationOutcome::unrecorded`].
///
/// A body nothing verified is stored cut to [`DEFAULT_REFUSED_BODY_BYTES`] with its full
/// length; [`Intake`] also limits how many of those each sender gets stored (flood.rs).
pub async fn receive_payment_notification(
    db: &Db,
    merchant: &MerchantCredentials,
    peer: Option<String>,
    raw: &[u8],
) -> NotificationOutcome {
    receive_payment(db, merchant, None, peer, raw).await
}

/// [`receive_payment_notification`], with the flood limits when `refusals` is given.
#[tracing::instrument(skip_all, fields(peer = peer.as_deref().unwrap_or("-")))]
pub(super) async fn receive_payment(
    db: &Db,
    merchant: &MerchantCredentials,
    refusals: Option<&Refusals>,
    peer: Option<String>,
    raw: &[u8],
) -> NotificationOutcome {
    let started = Instant::now();
    let received_at = now_ms();
    let mut findings = Findings::default();
    let checked = check(db, merchant, raw, &mut findings).await;
    let checked = match unverified(checked, findings.verified) {
        Ok(checked) => checked,
        Err(decision) => {
            let refusal = Refusal {
                kind: "payment",
                peer: peer.as_deref(),
                received_at,
                findings: &findings,
                decision,
                started,
            };
            return refuse(db, refusals, raw, refusal).await;
        }
    };
    // One copy of the body, shared with the apply queue.
    let raw_text: Arc<str> = Arc::from(&*stored_text(raw));
    let row = NotificationRow {
        received_at,
        peer: peer.as_deref(),
        raw_body: &raw_text,
        raw_length: None,
    };
    let result = match checked {
        Ok(Checked::Done(decision)) => record(db.writer(), &row, &findings, &decision, started)
            .await
            .map(|id| (decision, id, None)),
        Ok(Checked::Failed(order, decision)) => {
            mark_payerror(db, &row, &findings, order, decision, started).await
        }
        Ok(Checked::Apply(order, n)) => {
            GroupCommit::apply(db, &row, &raw_text, &findings, order, n, started).await
        }
        Err(e) => Err(e),
    };
    let (row, findings) = (&row, &findings);
    let failure = Failure {
        kind: "payment",
        detail: "database error while applying the notification; WeChat Pay will resend it",
        row,
        findings,
        started,
    };
    let (verdict, notification_id, events, unrecorded) = failure
        .settle(result, |failed| async move {
            let recorded = record(db.writer(), row, findings, &failed, started).await;
            (failed, recorded)
        })
        .await;
    // Every notification is in the database with its verdict; the log gets the refused ones
    // (at `debug`, the accepted ones too: one line per payment is a cost at high rates).
    if !verdict.is_failure() {
        tracing::debug!(
            verdict = verdict.as_str(),
            order.out_trade_no = findings.out_trade_no.as_deref().unwrap_or("-"),
            "payment notification handled"
        );
    } else {
        tracing::info!(
            verdict = verdict.as_str(),
            order.out_trade_no = findings.out_trade_no.as_deref().unwrap_or("-"),
            "payment notification handled"
        );
    }
    outcome(
        "payment",
        verdict,
        notification_id,
        events,
        unrecorded,
        findings,
    )
}

pub(super) enum Checked {
    /// The verdict is known without writing to the order.
    Done(Decision),
    /// Verified `result_code=FAIL`: mark the order `PAYERROR` if it is still `NOTPAY` (it
    /// stays payable: a later verified payment still marks it `PAID`).
    Failed(OrderKey, Decision),
    /// Verified and matching this order: apply it.
    Apply(OrderKey, Box<PaymentNotification>),
}

/// Everything before the write: parse, find the order, verify, compare.
async fn check(
    db: &Db,
    merchant: &MerchantCredentials,
    raw: &[u8],
    findings: &mut Findings,
) -> Result<Checked, CoreError> {
    let parsed = match ParsedPaymentNotification::parse(raw) {
        Ok(p) => p,
        Err(wxpay::Error::Xml(e)) if e.is_forbidden() => {
            return Ok(Checked::Done(decide(Verdict::ForbiddenXml, e.to_string())))
        }
        Err(e) => return Ok(Checked::Done(decide(Verdict::Malformed, e.to_string()))),
    };
    // Unverified: only used to find the order and to file the row.
    let claimed = parsed.out_trade_no().map(str::to_owned);
    findings.out_trade_no = claimed.clone();
    let order = match claimed.as_deref().map(OutTradeNo::parse) {
        Some(Ok(no)) => orders::find_key_by_out_trade_no(db, no.as_str()).await?,
        _ => None,
    };
    if let Some(o) = &order {
        findings.named = Named::Order(o.out_trade_no.clone());
    }
    let order_sign_type: Option<SignType> = order.as_ref().map(|o| o.sign_type);
    let n = match parsed.verify(&merchant.api_key, order_sign_type) {
        Ok(n) => n,
        Err(
            e @ (wxpay::Error::BadSignature
            | wxpay::Error::MissingSign
            | wxpay::Error::SignTypeDowngrade
            | wxpay::Error::UnsupportedSignType { .. }),
        ) => return Ok(Checked::Done(decide(Verdict::BadSignature, e.to_string()))),
        Err(e) => return Ok(Checked::Done(decide(Verdict::Malformed, e.to_string()))),
    };
    findings.verified = true;
    findings.transaction_id = n.transaction_id.clone();
    findings.total_fee = Some(n.total_fee);
    match n.check_merchant(&merchant.appid, &merchant.mch_id) {
        Ok(()) => {}
        Err(e @ wxpay::Error::AppIdMismatch { .. }) => {
            return Ok(Checked::Done(decide(Verdict::WrongAppid, e.to_string())))
        }
        Err(e) => return Ok(Checked::Done(decide(Verdict::WrongMchId, e.to_string()))),
    }
    let Some(order) = order else {
        return Ok(Checked::Done(decide(
            Verdict::UnknownOrder,
            "signed notification for an out_trade_no we do not have",
        )));
    };
    findings.order_id = Some(order.id);
    if !n.is_paid() {
        return Ok(Checked::Failed(
            order,
            decide(
                Verdict::ResultFail,
                format!(
                    "result_code={} err_code={} {}",
                    n.result_code,
                    n.err_code.as_deref().unwrap_or("-"),
                    n.err_code_des.as_deref().unwrap_or("")
                ),
            ),
        ));
    }
    if n.total_fee != order.total_fee {
        return Ok(Checked::Done(decide(
            Verdict::AmountMismatch,
            format!(
                "total_fee {} differs from the order's {}",
                n.total_fee, order.total_fee
            ),
        )));
    }
    if n.transaction_id.is_none() {
        return Ok(Checked::Done(decide(
            Verdict::Malformed,
            "a paid notification without transaction_id",
        )));
    }
    Ok(Checked::Apply(order, Box::new(n)))
}

/// A verified payment failure: `NOTPAY → PAYERROR` (never from any other status), and the
/// notification row, in one transaction. Answered `SUCCESS` (resending cannot change a
/// failed attempt, docs/wechatpay-v2.md §8.8); the order is still asked about until it
/// expires, and a later verified payment marks it `PAID`.
async fn mark_payerror(
    db: &Db,
    row: &NotificationRow<'_>,
    findings: &Findings,
    order: OrderKey,
    decision: Decision,
    started: Instant,
) -> Result<Applied, CoreError> {
    let mut tx = db.writer().begin().await?;
    let moved = transitions::payment_failed(&mut *tx, order.id, now_ms()).await?;
    let id = record(&mut *tx, row, findings, &decision, started).await?;
    tx.commit().await?;
    let event = moved.then(|| Event::OrderClosed {
        order_id: order.id,
        out_trade_no: order.out_trade_no.clone(),
        status: OrderStatus::PayError.as_str().into(),
    });
    Ok((decision, id, event))
}

/// The one write transaction for a single notification: the conditional update, then the
/// notification row. [`GroupCommit`] does the same for many notifications at once, and
/// falls back to this one by one when a shared transaction fails.
pub(super) async fn apply(
    writer: &AnyPool,
    row: &NotificationRow<'_>,
    findings: &Findings,
    order: &OrderKey,
    n: &PaymentNotification,
    started: Instant,
) -> Result<Applied, CoreError> {
    let transaction_id = n.transaction_id.as_deref().unwrap_or_default();
    let now = now_ms();
    let paid_at = paid_at(n, now);
    let mut tx = writer.begin().await?;
    let payment = Payment {
        transaction_id,
        bank_type: n.bank_type.as_deref(),
        paid_at,
    };
    let (decision, event) = if transitions::pay(&mut *tx, order.id, &payment, now).await? {
        applied(order, transaction_id, paid_at)
    } else {
        let (status, stored_tid): (String, Option<String>) =
            sqlx::query_as("select status, transaction_id from orders where id = $1")
                .bind(order.id)
                .fetch_one(&mut *tx)
                .await?;
        (
            not_applied(&status, stored_tid.as_deref(), transaction_id)?,
            None,
        )
    };
    let id = record(&mut *tx, row, findings, &decision, started).await?;
    tx.commit().await?;
    Ok((decision, id, event))
}

/// What applying produced: the decision, the notification row, the event to publish.
pub(super) type Applied = (Decision, i64, Option<Event>);

/// `paid_at` from `time_end`, or now when WeChat sent none.
pub(super) fn paid_at(n: &PaymentNotification, now: i64) -> i64 {
    n.time_end.map(crate::time::unix_ms).unwrap_or(now)
}

/// The conditional update took: the order went `NOTPAY → PAID`.
pub(super) fn applied(
    order: &OrderKey,
    transaction_id: &str,
    paid_at: i64,
) -> (Decision, Option<Event>) {
    let event = Event::OrderPaid {
        order_id: order.id,
        out_trade_no: order.out_trade_no.clone(),
        total_fee: order.total_fee,
        transaction_id: Some(transaction_id.to_owned()),
        paid_at,
        via: PaidVia::Notification,
    };
    (
        decide(Verdict::Applied, format!("{} → PAID", OrderStatus::NotPay)),
        Some(event),
    )
}

/// The conditional update did not take: why, from the order's status and transaction_id as
/// they are now (read in the same transaction).
pub(super) fn not_applied(
    status: &str,
    stored_tid: Option<&str>,
    transaction_id: &str,
) -> Result<Decision, CoreError> {
    let status: OrderStatus = status.parse()?;
    Ok(if status.was_paid() && stored_tid == Some(transaction_id) {
        decide(
            Verdict::Duplicate,
            format!("already applied; the order is {status}"),
        )
    } else if status.was_paid() {
        decide(
            Verdict::InternalError,
            format!(
                "the order is {status} with another transaction_id: check for a double payment"
            ),
        )
    } else {
        decide(
            Verdict::InternalError,
            format!(
                "paid notification for an order that is {status}: needs a manual refund or review"
            ),
        )
    })
}

async fn record<'e, E>(
    executor: E,
    row: &NotificationRow<'_>,
    findings: &Findings,
    decision: &Decision,
    started: Instant,
) -> Result<i64, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    insert_row(
        executor,
        "payment",
        row,
        findings,
        decision,
        elapsed_us(started),
    )
    .await
}
