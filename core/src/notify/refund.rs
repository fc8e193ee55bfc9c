//! Refund notifications (docs/wechatpay-v2.md §8.9): decrypt, match, then apply the refund's result in the
//! same transaction as the row.

use std::time::Instant;

use sqlx::Any;
use wxpay::notify::RefundNotification;

use super::flood::{Named, Refusals};
use super::refused::{refuse, unverified};
use super::{
    decide, elapsed_us, insert_row, outcome, stored_text, Decision, Failure, Findings,
    MerchantCredentials, NotificationOutcome, NotificationRow, Refusal, Verdict,
};
use crate::events::Event;
use crate::refunds::{self, RefundStatus};
use crate::{now_ms, CoreError, Db};

/// Handles one refund notification (docs/wechatpay-v2.md §8.9) end to end: records the raw body whatever it
/// is; parses the outer XML strictly; checks the outer `appid`/`mch_id`; decrypts `req_info`
/// with the API key ([`Verdict::DecryptFailed`] if that fails: the envelope is unsigned,
/// so the encryption is all the authenticity there is); matches `out_refund_no` to a refund
/// we asked for ([`Verdict::UnknownOrder`] otherwise) with the same order, `refund_fee` and
/// `total_fee` ([`Verdict::AmountMismatch`]); then applies `SUCCESS` / `CHANGE` /
/// `REFUNDCLOSE` with one conditional update, in the same transaction as the notification
/// row, so of many copies one is [`Verdict::Applied`] and the others
/// [`Verdict::Duplicate`]. A result older than what we know (a `CHANGE` after `SUCCESS`) is
/// acknowledged as a duplicate and changes nothing. Never returns an error, like
/// [`receive_payment_notification`].
/// Until `req_info` decrypts nothing is authentic: such a body is stored cut, like a
/// payment notification's that fails verification.
pub async fn receive_refund_notification(
    db: &Db,
    merchant: &MerchantCredentials,
    peer: Option<String>,
    raw: &[u8],
) -> NotificationOutcome {
    receive_refund(db, merchant, None, peer, raw).await
}

/// [`receive_refund_notification`], with the flood limits when `refusals` is given.
#[tracing::instrument(skip_all, fields(peer = peer.as_deref().unwrap_or("-")))]
pub(super) async fn receive_refund(
    db: &Db,
    merchant: &MerchantCredentials,
    refusals: Option<&Refusals>,
    peer: Option<String>,
    raw: &[u8],
) -> NotificationOutcome {
    let started = Instant::now();
    let received_at = now_ms();
    let mut findings = Findings::default();
    let mut ids = RefundIds::default();
    let checked = check_refund(db, merchant, raw, &mut findings, &mut ids).await;
    let checked = match unverified(checked, findings.verified) {
        Ok(checked) => checked,
        Err(decision) => {
            let refusal = Refusal {
                kind: "refund",
                peer: peer.as_deref(),
                received_at,
                findings: &findings,
                decision,
                started,
            };
            return refuse(db, refusals, raw, refusal).await;
        }
    };
    let raw_text = stored_text(raw);
    let row = NotificationRow {
        received_at,
        peer: peer.as_deref(),
        raw_body: &raw_text,
        raw_length: None,
    };
    let result = match checked {
        Ok(RefundChecked::Done(decision)) => {
            record_refund(db, &row, &findings, &ids, &decision, started)
                .await
                .map(|id| (decision, id, None))
        }
        Ok(RefundChecked::Apply(refund, result)) => {
            apply_refund(db, &row, &findings, &ids, &refund, &result, started).await
        }
        Err(e) => Err(e),
    };
    let (row, findings, refund_ids) = (&row, &findings, &ids);
    let failure = Failure {
        kind: "refund",
        detail: "database error while applying the refund notification; WeChat Pay will resend it",
        row,
        findings,
        started,
    };
    let (verdict, notification_id, events, unrecorded) = failure
        .settle(result, |failed| async move {
            let recorded = record_refund(db, row, findings, refund_ids, &failed, started).await;
            (failed, recorded)
        })
        .await;
    tracing::info!(
        verdict = verdict.as_str(),
        refund.out_refund_no = ids.out_refund_no.as_deref().unwrap_or("-"),
        "refund notification handled"
    );
    outcome(
        "refund",
        verdict,
        notification_id,
        events,
        unrecorded,
        findings,
    )
}

/// The refund's ids in a refund notification row (besides the order's in [`Findings`]).
#[derive(Debug, Default)]
struct RefundIds {
    out_refund_no: Option<String>,
    refund_fee: Option<i64>,
}

pub(super) enum RefundChecked {
    Done(Decision),
    Apply(Box<refunds::Refund>, refunds::WxResult),
}

/// Everything before the write: parse, merchant, decrypt, match, compare.
async fn check_refund(
    db: &Db,
    merchant: &MerchantCredentials,
    raw: &[u8],
    findings: &mut Findings,
    ids: &mut RefundIds,
) -> Result<RefundChecked, CoreError> {
    let done = |verdict, detail: String| Ok(RefundChecked::Done(decide(verdict, detail)));
    let outer = match RefundNotification::parse(raw) {
        Ok(n) => n,
        Err(e) if e.is_forbidden_xml() => return done(Verdict::ForbiddenXml, e.to_string()),
        Err(e @ wxpay::Error::ReturnFail { .. }) => {
            return done(Verdict::ResultFail, e.to_string())
        }
        Err(e) => return done(Verdict::Malformed, e.to_string()),
    };
    match outer.check_merchant(&merchant.appid, &merchant.mch_id) {
        Ok(()) => {}
        Err(e @ wxpay::Error::AppIdMismatch { .. }) => {
            return done(Verdict::WrongAppid, e.to_string())
        }
        Err(e) => return done(Verdict::WrongMchId, e.to_string()),
    }
    // Our appid and mch_id in the clear: a real refund notification, perhaps, even if
    // `req_info` does not decrypt with our key (flood.rs).
    findings.named = Named::Merchant;
    let info = match outer.decrypt(&merchant.api_key) {
        Ok(info) => info,
        Err(e @ wxpay::Error::DecryptFailed { .. }) => {
            return done(Verdict::DecryptFailed, e.to_string())
        }
        Err(e) if e.is_forbidden_xml() => return done(Verdict::ForbiddenXml, e.to_string()),
        Err(e) => return done(Verdict::Malformed, format!("decrypted req_info: {e}")),
    };
    // `req_info` decrypted with our key: that is the authenticity (the envelope is unsigned).
    findings.verified = true;
    findings.out_trade_no = Some(info.out_trade_no.clone());
    findings.transaction_id = Some(info.transaction_id.clone());
    findings.total_fee = Some(info.total_fee);
    ids.out_refund_no = Some(info.out_refund_no.clone());
    ids.refund_fee = Some(info.refund_fee);
    let Some(refund) = refunds::find_by_out_refund_no(db, &info.out_refund_no).await? else {
        return done(
            Verdict::UnknownOrder,
            format!(
                "we never asked for a refund numbered {:?}",
                info.out_refund_no
            ),
        );
    };
    if refund.out_trade_no != info.out_trade_no {
        return done(
            Verdict::UnknownOrder,
            format!(
                "refund {} belongs to order {}, the notification says {}",
                refund.out_refund_no, refund.out_trade_no, info.out_trade_no
            ),
        );
    }
    findings.order_id = Some(refund.order_id);
    let total_fee: i64 = sqlx::query_scalar("select total_fee from orders where id = $1")
        .bind(refund.order_id)
        .fetch_one(db.reader())
        .await?;
    if info.refund_fee != refund.amount_fen || info.total_fee != total_fee {
        return done(
            Verdict::AmountMismatch,
            format!(
                "refund_fee {} / total_fee {} differ from ours {} / {}",
                info.refund_fee, info.total_fee, refund.amount_fen, total_fee
            ),
        );
    }
    let status = match refunds::from_wechat(&info.refund_status) {
        Some(s @ (RefundStatus::Success | RefundStatus::Change | RefundStatus::RefundClose)) => s,
        _ => {
            return done(
                Verdict::Malformed,
                format!(
                    "refund_status {} is not a refund result",
                    info.refund_status
                ),
            )
        }
    };
    let result = refunds::WxResult {
        status,
        refund_id: Some(info.refund_id),
        recv_accout: info.refund_recv_accout,
        success_at: info.success_time.map(crate::time::unix_ms),
    };
    Ok(RefundChecked::Apply(Box::new(refund), result))
}

/// The one write transaction: the conditional transition, then the notification row.
async fn apply_refund(
    db: &Db,
    row: &NotificationRow<'_>,
    findings: &Findings,
    ids: &RefundIds,
    refund: &refunds::Refund,
    result: &refunds::WxResult,
    started: Instant,
) -> Result<(Decision, i64, Option<Event>), CoreError> {
    let mut tx = db.writer().begin().await?;
    let policy = refunds::RefundPolicy::default();
    let applied = refunds::apply_result(&mut tx, db.backend(), &policy, refund.id, result).await?;
    let now = applied.refund.status;
    let decision = if applied.changed {
        decide(
            Verdict::Applied,
            format!("refund {} → {now}", refund.status),
        )
    } else if now == result.status || now.is_final() {
        decide(
            Verdict::Duplicate,
            format!("no change: the refund is already {now}"),
        )
    } else {
        decide(
            Verdict::InternalError,
            format!(
                "the refund is {now}; WeChat Pay says {}: needs a look",
                result.status
            ),
        )
    };
    let id = insert_refund_row(&mut tx, row, findings, ids, &decision, started).await?;
    tx.commit().await?;
    let event = applied.changed.then(|| Event::RefundChanged {
        refund_id: applied.refund.id,
        out_refund_no: applied.refund.out_refund_no.clone(),
        order_id: applied.refund.order_id,
        status: now.as_str().into(),
    });
    Ok((decision, id, event))
}

/// Records a refund notification row on its own.
async fn record_refund(
    db: &Db,
    row: &NotificationRow<'_>,
    findings: &Findings,
    ids: &RefundIds,
    decision: &Decision,
    started: Instant,
) -> Result<i64, CoreError> {
    let mut tx = db.writer().begin().await?;
    let id = insert_refund_row(&mut tx, row, findings, ids, decision, started).await?;
    tx.commit().await?;
    Ok(id)
}

/// A `refund` row: the common columns, then the refund's own.
async fn insert_refund_row(
    tx: &mut sqlx::Transaction<'_, Any>,
    row: &NotificationRow<'_>,
    findings: &Findings,
    ids: &RefundIds,
    decision: &Decision,
    started: Instant,
) -> Result<i64, CoreError> {
    let id = insert_row(
        &mut **tx,
        "refund",
        row,
        findings,
        decision,
        elapsed_us(started),
    )
    .await?;
    sqlx::query("update notifications set out_refund_no = $1, refund_fee = $2 where id = $3")
        .bind(ids.out_refund_no.as_deref())
        .bind(ids.refund_fee)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}
