//! WeChat Pay callbacks: verify, apply exactly once, record every one (docs/design.md "Notify",
//! docs/style.md §5 and §10, docs/wechatpay-v2.md §8.8 and §11).
//!
//! Callbacks have no error type. Whatever arrives ends as a [`Verdict`], stored with the raw
//! body in `notifications` and mapped to the reply: `SUCCESS` for [`Verdict::Applied`],
//! [`Verdict::Duplicate`], [`Verdict::ResultFail`] and [`Verdict::UnknownOrder`]
//! ([`Verdict::acknowledged`]), `FAIL` (WeChat resends) for everything else.
//!
//! Where: [`payment`] (docs/wechatpay-v2.md §8.8, applied through [`group_commit`]), [`refund`] (§8.9),
//! [`refused`] (what nothing verified), [`intake`] (the server's entry: flood limits
//! ([`flood`]), events, and the [`backlog`] of rows the database refused), [`log`] (the
//! dashboard's read side). Here: what they share — the row, the findings, the outcome.

use std::borrow::Cow;
use std::fmt;
use std::time::Instant;

use sqlx::{Any, Executor};
use wxpay::ApiKey;

use crate::events::Event;
use flood::Named;

mod backlog;
mod flood;
mod group_commit;
#[cfg(feature = "testing")]
pub(crate) use group_commit::SQLITE_INSERT;
mod intake;
pub mod log;
mod payment;
mod refund;
mod refused;
mod verdict;

pub use flood::{
    counted_since, sender_of, CountedRefusals, FloodPolicy, ALL_SENDERS_FACTOR,
    DEFAULT_BACKLOG_BYTES, DEFAULT_HOLD_MS, DEFAULT_REFUSED_BODY_BYTES, DEFAULT_REFUSED_PER_MINUTE,
    MAX_HELD, MAX_SENDERS_PER_MINUTE, OTHER_SENDERS, PER_ORDER_PER_DAY,
};
pub(crate) use group_commit::Slot as GroupCommitSlot;
pub use intake::Intake;
pub use log::Notification;
pub use payment::receive_payment_notification;
pub use refund::receive_refund_notification;
pub use refused::receive_oversize;
pub use verdict::{Verdict, VerdictReply};

use crate::{now_ms, CoreError, Db};

/// Our merchant identity, against which notifications are verified.
#[derive(Clone)]
pub struct MerchantCredentials {
    /// Our appid.
    pub appid: String,
    /// Our mch_id.
    pub mch_id: String,
    /// The API v2 key.
    pub api_key: ApiKey,
}

impl fmt::Debug for MerchantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantCredentials")
            .field("appid", &self.appid)
            .field("mch_id", &self.mch_id)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// What [`receive_payment_notification`] decided and must answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationOutcome {
    /// The verdict.
    pub verdict: Verdict,
    /// The exact XML to answer with (HTTP 200, `text/xml`).
    pub reply_body: String,
    /// The `notifications` row, unless even recording failed.
    pub notification_id: Option<i64>,
    /// What to publish now that it is committed (see [`Intake`]).
    pub events: Vec<Event>,
    /// The row that could not be written (the database refused it), to be written later.
    pub unrecorded: Option<Unrecorded>,
    /// Refused and only counted, not stored (its sender is over its allowance, flood.rs):
    /// the answer is held back by [`Intake::hold`].
    pub counted: bool,
}

/// What goes into the `notifications` row besides the raw body, and what the flood limits
/// need to know (flood.rs).
#[derive(Debug, Default, Clone)]
struct Findings {
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    total_fee: Option<i64>,
    order_id: Option<i64>,
    /// The signature verified (a refund's `req_info` decrypted): stored whole, never
    /// limited.
    verified: bool,
    /// What an unverified callback names of ours, in the clear.
    named: Named,
}

struct Decision {
    verdict: Verdict,
    detail: String,
}

fn decide(verdict: Verdict, detail: impl Into<String>) -> Decision {
    Decision {
        verdict,
        detail: detail.into(),
    }
}

/// The largest body we read; anything longer is recorded cut at this size as malformed.
pub const MAX_BODY: usize = wxpay::xml::MAX_BODY;

/// What a receiver answers: the verdict's reply, and a `notification_rejected` event for
/// every verdict that is a failure ([`Verdict::is_failure`]).
fn outcome(
    kind: &str,
    verdict: Verdict,
    notification_id: Option<i64>,
    mut events: Vec<Event>,
    unrecorded: Option<Unrecorded>,
    findings: &Findings,
) -> NotificationOutcome {
    if verdict.is_failure() {
        events.push(Event::NotificationRejected {
            notification_id,
            kind: kind.into(),
            verdict: verdict.as_str().into(),
            out_trade_no: findings.out_trade_no.clone(),
        });
    }
    NotificationOutcome {
        verdict,
        reply_body: verdict.reply_body(),
        notification_id,
        events,
        unrecorded,
        counted: false,
    }
}

/// A callback nothing verified, before it is stored or counted.
struct Refusal<'a> {
    kind: &'static str,
    peer: Option<&'a str>,
    received_at: i64,
    findings: &'a Findings,
    decision: Decision,
    started: Instant,
}

impl Refusal<'_> {
    /// Its `notifications` row.
    async fn insert<'e, E>(&self, executor: E, row: &NotificationRow<'_>) -> Result<i64, CoreError>
    where
        E: Executor<'e, Database = Any>,
    {
        insert_row(
            executor,
            self.kind,
            row,
            self.findings,
            &self.decision,
            elapsed_us(self.started),
        )
        .await
    }
}

/// The body as stored: invalid UTF-8 becomes U+FFFD, and so does NUL, which PostgreSQL's
/// text cannot hold (the same text on both engines). Borrowed when nothing needs replacing.
fn stored_text(raw: &[u8]) -> Cow<'_, str> {
    // The checked conversion first: `from_utf8_lossy` walks a valid body byte by byte
    // (5,000 instructions for a 700-byte notification, callgrind); only a body that is not
    // UTF-8 needs its replacement characters.
    let text = match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    };
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        text
    }
}

/// A notification row the database refused (it was down or read-only), kept to be written
/// once it is back, so that no callback goes unrecorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    kind: &'static str,
    received_at: i64,
    peer: Option<String>,
    raw_body: String,
    raw_length: Option<i64>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    total_fee: Option<i64>,
    verdict: Verdict,
    detail: String,
    duration_us: i64,
    order_id: Option<i64>,
    /// Verified rows are kept before refused ones when memory runs short (backlog.rs).
    verified: bool,
}

impl Unrecorded {
    fn new(
        kind: &'static str,
        row: &NotificationRow<'_>,
        findings: &Findings,
        decision: &Decision,
        started: Instant,
    ) -> Unrecorded {
        Unrecorded {
            kind,
            received_at: row.received_at,
            peer: row.peer.map(str::to_owned),
            raw_body: row.raw_body.to_owned(),
            raw_length: row.raw_length,
            out_trade_no: findings.out_trade_no.clone(),
            transaction_id: findings.transaction_id.clone(),
            total_fee: findings.total_fee,
            verdict: decision.verdict,
            detail: decision.detail.clone(),
            duration_us: elapsed_us(started),
            order_id: findings.order_id,
            verified: findings.verified,
        }
    }

    /// Writes the row now (with a note that it was recorded late).
    pub async fn write(&self, db: &Db) -> Result<i64, CoreError> {
        let row = NotificationRow {
            received_at: self.received_at,
            peer: self.peer.as_deref(),
            raw_body: &self.raw_body,
            raw_length: self.raw_length,
        };
        let findings = Findings {
            out_trade_no: self.out_trade_no.clone(),
            transaction_id: self.transaction_id.clone(),
            total_fee: self.total_fee,
            order_id: self.order_id,
            verified: self.verified,
            named: Named::Nothing,
        };
        let decision = decide(
            self.verdict,
            format!(
                "{} (recorded late: the database was unavailable)",
                self.detail
            ),
        );
        insert_row(
            db.writer(),
            self.kind,
            &row,
            &findings,
            &decision,
            self.duration_us,
        )
        .await
    }
}

struct NotificationRow<'a> {
    received_at: i64,
    peer: Option<&'a str>,
    raw_body: &'a str,
    /// The body's full length when `raw_body` is only its start.
    raw_length: Option<i64>,
}

/// How a verified callback's write ends when it failed: logged, answered
/// [`Verdict::InternalError`] (WeChat Pay resends), and recorded on its own, or kept in memory
/// when even that is refused. Payment and refund notifications share it.
struct Failure<'a> {
    kind: &'static str,
    /// The row's `detail` after a failed write.
    detail: &'static str,
    row: &'a NotificationRow<'a>,
    findings: &'a Findings,
    started: Instant,
}

impl Failure<'_> {
    /// The verdict, row id, events and unrecorded row of a callback whose write gave
    /// `result`; after a failure, `record` writes the failure's row (and hands the decision
    /// back with its outcome).
    async fn settle<F, Fut>(
        &self,
        result: Result<(Decision, i64, Option<Event>), CoreError>,
        record: F,
    ) -> (Verdict, Option<i64>, Vec<Event>, Option<Unrecorded>)
    where
        F: FnOnce(Decision) -> Fut,
        Fut: std::future::Future<Output = (Decision, Result<i64, CoreError>)>,
    {
        let e = match result {
            Ok((decision, id, event)) => {
                return (
                    decision.verdict,
                    Some(id),
                    event.into_iter().collect(),
                    None,
                )
            }
            Err(e) => e,
        };
        tracing::error!(error = %e, "applying a {} notification failed", self.kind);
        let (failure, recorded) = record(decide(Verdict::InternalError, self.detail)).await;
        match recorded {
            Ok(id) => (Verdict::InternalError, Some(id), Vec::new(), None),
            Err(e) => {
                tracing::error!(error = %e, "recording a {} notification failed; kept in memory", self.kind);
                let late =
                    Unrecorded::new(self.kind, self.row, self.findings, &failure, self.started);
                (Verdict::InternalError, None, Vec::new(), Some(late))
            }
        }
    }
}

fn elapsed_us(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)
}

async fn insert_row<'e, E>(
    executor: E,
    kind: &str,
    row: &NotificationRow<'_>,
    findings: &Findings,
    decision: &Decision,
    duration_us: i64,
) -> Result<i64, CoreError>
where
    E: Executor<'e, Database = Any>,
{
    let now = now_ms();
    Ok(sqlx::query_scalar::<_, i64>(
        r#"insert into notifications (kind, received_at, peer, raw_body, out_trade_no,
               transaction_id, total_fee, verdict, detail, reply, duration_us, order_id,
               created_at, updated_at, raw_length)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)
           returning id"#,
    )
    .bind(kind)
    .bind(row.received_at)
    .bind(row.peer)
    .bind(row.raw_body)
    .bind(findings.out_trade_no.as_deref())
    .bind(findings.transaction_id.as_deref())
    .bind(findings.total_fee)
    .bind(decision.verdict.as_str())
    .bind(&decision.detail)
    .bind(decision.verdict.reply_code())
    .bind(duration_us)
    .bind(findings.order_id)
    .bind(now)
    .bind(row.raw_length)
    .fetch_one(executor)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_in_effect_or_recorded_for_good_is_acknowledged() {
        for v in Verdict::ALL {
            let ok = matches!(
                v,
                Verdict::Applied | Verdict::Duplicate | Verdict::ResultFail | Verdict::UnknownOrder
            );
            assert_eq!(v.acknowledged(), ok, "{v}");
            assert_eq!(v.is_failure(), !ok || v == Verdict::UnknownOrder, "{v}");
            assert_eq!(v.reply_code(), if ok { "SUCCESS" } else { "FAIL" });
            assert_eq!(v.reply_body().contains("SUCCESS"), ok, "{v}");
            assert_eq!(v.as_str().parse::<Verdict>().unwrap(), v);
        }
    }

    #[test]
    fn merchant_credentials_debug_hides_the_key() {
        let m = MerchantCredentials {
            appid: "wx1".into(),
            mch_id: "123".into(),
            api_key: ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
        };
        assert!(!format!("{m:?}").contains("192006250b4c"));
    }
}
