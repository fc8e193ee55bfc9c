//! WeChat Pay callbacks: verify, apply exactly once, record every one (design.md "Notify",
//! style.md §5 and §10, spec §8.8 and §11).
//!
//! Callbacks have no error type. Whatever arrives ends as a [`Verdict`], stored with the raw
//! body in `notifications` and mapped to the reply: `SUCCESS` for [`Verdict::Applied`] and
//! [`Verdict::Duplicate`], `FAIL` (WeChat resends) for everything else.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sqlx::{Any, AnyPool, Executor, FromRow};
use wxpay::notify::{
    ParsedPaymentNotification, PaymentNotification, RefundNotification, REPLY_SUCCESS,
};
use wxpay::{ApiKey, SignType};

use crate::events::{Event, EventBus, PaidVia};
use backlog::Backlog;
use flood::{Fate, Named, Refusals};
use group_commit::GroupCommit;

mod backlog;
mod flood;
mod group_commit;
pub mod log;

pub use flood::{
    counted_since, sender_of, CountedRefusals, FloodPolicy, ALL_SENDERS_FACTOR,
    DEFAULT_BACKLOG_BYTES, DEFAULT_REFUSED_BODY_BYTES, DEFAULT_REFUSED_PER_MINUTE,
    MAX_SENDERS_PER_MINUTE, OTHER_SENDERS, PER_ORDER_PER_DAY,
};

use crate::orders::{self, OrderKey, OrderStatus, OutTradeNo};
use crate::refunds::{self, RefundStatus};
use crate::{now_ms, CoreError, Db};
pub(crate) use group_commit::Slot as GroupCommitSlot;

pub use paydesk_types::Verdict;

/// The reply a [`Verdict`] sends (the enum itself is in `paydesk-types`, shared with the
/// browser; the reply needs the protocol's XML).
pub trait VerdictReply {
    /// The exact reply body (spec §8.8). The FAIL message is the verdict name only: no
    /// detail reaches the sender.
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

/// Handles one payment notification (spec §8.8) end to end: records the raw body whatever
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
async fn receive_payment(
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
    let mut events = Vec::new();
    let (verdict, notification_id, unrecorded) = match result {
        Ok((decision, id, event)) => {
            events.extend(event);
            (decision.verdict, Some(id), None)
        }
        Err(e) => {
            tracing::error!(error = %e, "applying a payment notification failed");
            let failure = decide(
                Verdict::InternalError,
                "database error while applying the notification; WeChat Pay will resend it",
            );
            match record(db.writer(), &row, &findings, &failure, started).await {
                Ok(id) => (Verdict::InternalError, Some(id), None),
                Err(e) => {
                    tracing::error!(error = %e, "recording a payment notification failed; kept in memory");
                    let late = Unrecorded::new("payment", &row, &findings, &failure, started);
                    (Verdict::InternalError, None, Some(late))
                }
            }
        }
    };
    // Every notification is in the database with its verdict; the log gets the refused ones
    // (at `debug`, the accepted ones too: one line per payment is a cost at high rates).
    if verdict.acknowledged() {
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
        &findings,
    )
}

/// What a receiver answers: the verdict's reply, and a `notification_rejected` event for
/// every verdict WeChat Pay is not told SUCCESS for.
fn outcome(
    kind: &str,
    verdict: Verdict,
    notification_id: Option<i64>,
    mut events: Vec<Event>,
    unrecorded: Option<Unrecorded>,
    findings: &Findings,
) -> NotificationOutcome {
    if !verdict.acknowledged() {
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
    }
}

/// Records a body longer than [`MAX_BODY`] (of which `prefix` is the first [`MAX_BODY`]
/// bytes) as [`Verdict::Malformed`] without parsing it, cut like every refused body (and
/// limited like them by [`Intake`]), and answers `FAIL`.
pub async fn receive_oversize(
    db: &Db,
    kind: &'static str,
    peer: Option<String>,
    prefix: &[u8],
) -> NotificationOutcome {
    receive_oversize_limited(db, None, kind, peer, prefix).await
}

async fn receive_oversize_limited(
    db: &Db,
    refusals: Option<&Refusals>,
    kind: &'static str,
    peer: Option<String>,
    prefix: &[u8],
) -> NotificationOutcome {
    let findings = Findings::default();
    let refusal = Refusal {
        kind,
        peer: peer.as_deref(),
        received_at: now_ms(),
        findings: &findings,
        decision: decide(
            Verdict::Malformed,
            format!("the body is longer than {MAX_BODY} bytes; only its start was read"),
        ),
        started: Instant::now(),
    };
    refuse(db, refusals, prefix, refusal).await
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

/// What nothing verified takes the refused path: a decision reached before the signature
/// checked, and equally a database error before it (the order lookup failing under load),
/// so junk is stored cut and within its sender's allowance even then. Anything else goes on
/// to be recorded or applied.
trait Decided {
    fn decided(self) -> Result<Decision, Self>
    where
        Self: Sized;
}

impl Decided for Checked {
    fn decided(self) -> Result<Decision, Self> {
        match self {
            Checked::Done(decision) => Ok(decision),
            other => Err(other),
        }
    }
}

impl Decided for RefundChecked {
    fn decided(self) -> Result<Decision, Self> {
        match self {
            RefundChecked::Done(decision) => Ok(decision),
            other => Err(other),
        }
    }
}

fn unverified<C: Decided>(
    checked: Result<C, CoreError>,
    verified: bool,
) -> Result<Result<C, CoreError>, Decision> {
    if verified {
        return Ok(checked);
    }
    match checked {
        Ok(c) => match c.decided() {
            Ok(decision) => Err(decision),
            Err(c) => Ok(Ok(c)),
        },
        Err(e) => {
            tracing::error!(error = %e, "a callback nothing verified could not be checked");
            Err(decide(
                Verdict::InternalError,
                "database error before the signature was checked; WeChat Pay will resend it",
            ))
        }
    }
}

/// Stores a callback nothing verified cut to a prefix, within its sender's allowance when
/// `refusals` limits it, or counts it (flood.rs); answers `FAIL`. The refused ones that are
/// stored are logged and published; the counted ones only counted (one log line and one
/// event per request would be a flood of their own).
async fn refuse(
    db: &Db,
    refusals: Option<&Refusals>,
    raw: &[u8],
    refusal: Refusal<'_>,
) -> NotificationOutcome {
    let cap = refusals.map_or(DEFAULT_REFUSED_BODY_BYTES, |r| {
        r.policy().refused_body_bytes
    });
    let (raw_text, raw_length) = cut(raw, cap);
    let row = NotificationRow {
        received_at: refusal.received_at,
        peer: refusal.peer,
        raw_body: &raw_text,
        raw_length,
    };
    let sender = sender_of(refusal.peer);
    let verdict = refusal.decision.verdict;
    let fate = match refusals {
        None => refusal.insert(db.writer(), &row).await.map(Fate::Stored),
        Some(r) if r.known_over(&sender, refusal.received_at, &refusal.findings.named) => {
            Ok(Fate::Counted)
        }
        Some(r) => r.store_within(db, &sender, &refusal, &row).await,
    };
    let (id, unrecorded) = match fate {
        Ok(Fate::Stored(id)) => (Some(id), None),
        Ok(Fate::Counted) => {
            if let Some(r) = refusals {
                r.count(&sender, verdict, refusal.received_at);
            }
            tracing::debug!(
                kind = refusal.kind,
                verdict = verdict.as_str(),
                sender,
                "refused callback counted"
            );
            return NotificationOutcome {
                verdict,
                reply_body: verdict.reply_body(),
                notification_id: None,
                events: Vec::new(),
                unrecorded: None,
            };
        }
        Err(e) => {
            tracing::error!(error = %e, "recording a refused callback failed; kept in memory");
            let late = Unrecorded::new(
                refusal.kind,
                &row,
                refusal.findings,
                &refusal.decision,
                refusal.started,
            );
            (None, Some(late))
        }
    };
    tracing::info!(
        kind = refusal.kind,
        verdict = verdict.as_str(),
        order.out_trade_no = refusal.findings.out_trade_no.as_deref().unwrap_or("-"),
        "callback refused"
    );
    outcome(
        refusal.kind,
        verdict,
        id,
        Vec::new(),
        unrecorded,
        refusal.findings,
    )
}

/// The body as stored when nothing verified it: at most `cap` bytes of it (cut at a
/// character boundary of its stored text), and its full length when that is more.
fn cut(raw: &[u8], cap: usize) -> (Cow<'_, str>, Option<i64>) {
    if raw.len() <= cap {
        return (stored_text(raw), None);
    }
    let text = stored_text(&raw[..cap]);
    let mut end = text.len().min(cap);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = match text {
        Cow::Borrowed(t) => Cow::Borrowed(&t[..end]),
        Cow::Owned(mut t) => {
            t.truncate(end);
            Cow::Owned(t)
        }
    };
    (text, Some(i64::try_from(raw.len()).unwrap_or(i64::MAX)))
}

/// The body as stored: invalid UTF-8 becomes U+FFFD, and so does NUL, which PostgreSQL's
/// text cannot hold (the same text on both engines). Borrowed when nothing needs replacing.
fn stored_text(raw: &[u8]) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
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

/// Notifications as the server receives them: [`receive_payment_notification`] plus the
/// flood limits (flood.rs), publishing its events after the commit, and keeping rows the
/// database refused (bounded in bytes, backlog.rs) until [`Intake::flush_backlog`] can
/// write them.
#[derive(Clone)]
pub struct Intake {
    db: Db,
    merchant: Arc<MerchantCredentials>,
    events: EventBus,
    refusals: Arc<Refusals>,
    backlog: Arc<Mutex<Backlog>>,
}

impl Intake {
    /// An intake for this database, merchant and event bus, with the default
    /// [`FloodPolicy`].
    pub fn new(db: Db, merchant: Arc<MerchantCredentials>, events: EventBus) -> Intake {
        Intake::with_policy(db, merchant, events, FloodPolicy::default())
    }

    /// [`Intake::new`] with these flood limits.
    pub fn with_policy(
        db: Db,
        merchant: Arc<MerchantCredentials>,
        events: EventBus,
        policy: FloodPolicy,
    ) -> Intake {
        Intake {
            db,
            merchant,
            events,
            refusals: Arc::new(Refusals::new(policy)),
            backlog: Arc::new(Mutex::new(Backlog::new(policy.backlog_bytes))),
        }
    }

    /// The merchant notifications are verified against.
    pub fn merchant(&self) -> &MerchantCredentials {
        &self.merchant
    }

    /// Receives one payment notification (see [`receive_payment_notification`]).
    pub async fn payment(&self, peer: Option<String>, raw: &[u8]) -> NotificationOutcome {
        let outcome =
            receive_payment(&self.db, &self.merchant, Some(&self.refusals), peer, raw).await;
        self.after(outcome)
    }

    /// Receives one refund notification (see [`receive_refund_notification`]).
    pub async fn refund(&self, peer: Option<String>, raw: &[u8]) -> NotificationOutcome {
        let outcome =
            receive_refund(&self.db, &self.merchant, Some(&self.refusals), peer, raw).await;
        self.after(outcome)
    }

    /// Records an over-long body (see [`receive_oversize`]).
    pub async fn oversize(
        &self,
        kind: &'static str,
        peer: Option<String>,
        prefix: &[u8],
    ) -> NotificationOutcome {
        let outcome =
            receive_oversize_limited(&self.db, Some(&self.refusals), kind, peer, prefix).await;
        self.after(outcome)
    }

    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn after(&self, mut outcome: NotificationOutcome) -> NotificationOutcome {
        for event in outcome.events.drain(..) {
            self.events.publish(event);
        }
        if let Some(late) = outcome.unrecorded.take() {
            let evicted = self.backlog().push(late);
            // Refused rows that no longer fit in memory are counted instead.
            for row in evicted {
                self.refusals.count(
                    &sender_of(row.peer.as_deref()),
                    row.verdict,
                    row.received_at,
                );
            }
        }
        outcome
    }

    /// Rows waiting for the database.
    pub fn backlog_len(&self) -> usize {
        self.backlog().len()
    }

    /// Bytes of rows waiting for the database (at most [`FloodPolicy::backlog_bytes`]).
    pub fn backlog_bytes(&self) -> usize {
        self.backlog().bytes()
    }

    /// Writes the waiting rows, verified ones first, stopping at the first failure.
    /// Returns how many were written.
    pub async fn flush_backlog(&self) -> Result<usize, CoreError> {
        let mut written = 0;
        loop {
            let Some(late) = self.backlog().take() else {
                return Ok(written);
            };
            if let Err(e) = late.write(&self.db).await {
                self.backlog().put_back(late);
                return Err(e);
            }
            written += 1;
        }
    }

    /// Whether refusals counted in memory wait for [`Intake::flush_counts`].
    pub fn has_counts(&self) -> bool {
        self.refusals.has_tallies()
    }

    /// Adds the refusals counted since the last call to `refused_callback_counts` (the
    /// server does this every second). Returns how many (sender, cause, minute) rows were
    /// added to; what the database refuses is kept for the next call.
    pub async fn flush_counts(&self) -> Result<usize, CoreError> {
        self.refusals.flush(&self.db).await
    }
}

enum Checked {
    /// The verdict is known without writing to the order.
    Done(Decision),
    /// Verified `result_code=FAIL`: mark the order `PAYERROR` if it is still `NOTPAY`.
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
/// notification row, in one transaction.
async fn mark_payerror(
    db: &Db,
    row: &NotificationRow<'_>,
    findings: &Findings,
    order: OrderKey,
    decision: Decision,
    started: Instant,
) -> Result<Applied, CoreError> {
    let mut tx = db.writer().begin().await?;
    let updated = sqlx::query(
        r#"update orders set status = 'PAYERROR', next_sync_at = null, updated_at = $1
           where id = $2 and status = 'NOTPAY'"#,
    )
    .bind(now_ms())
    .bind(order.id)
    .execute(&mut *tx)
    .await?;
    let id = record(&mut *tx, row, findings, &decision, started).await?;
    tx.commit().await?;
    let event = (updated.rows_affected() == 1).then(|| Event::OrderClosed {
        order_id: order.id,
        out_trade_no: order.out_trade_no.clone(),
        status: OrderStatus::PayError.as_str().into(),
    });
    Ok((decision, id, event))
}

/// The one write transaction for a single notification: the conditional update, then the
/// notification row. [`GroupCommit`] does the same for many notifications at once, and
/// falls back to this one by one when a shared transaction fails.
async fn apply(
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
    let updated = sqlx::query(
        r#"update orders
           set status = 'PAID', transaction_id = $1, bank_type = $2, paid_at = $3,
               next_sync_at = null, updated_at = $4
           where id = $5 and status = 'NOTPAY'"#,
    )
    .bind(transaction_id)
    .bind(n.bank_type.as_deref())
    .bind(paid_at)
    .bind(now)
    .bind(order.id)
    .execute(&mut *tx)
    .await?;
    let (decision, event) = if updated.rows_affected() == 1 {
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
type Applied = (Decision, i64, Option<Event>);

/// `paid_at` from `time_end`, or now when WeChat sent none.
fn paid_at(n: &PaymentNotification, now: i64) -> i64 {
    n.time_end
        .map(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(now))
        .unwrap_or(now)
}

/// The conditional update took: the order went `NOTPAY → PAID`.
fn applied(order: &OrderKey, transaction_id: &str, paid_at: i64) -> (Decision, Option<Event>) {
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
fn not_applied(
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

struct NotificationRow<'a> {
    received_at: i64,
    peer: Option<&'a str>,
    raw_body: &'a str,
    /// The body's full length when `raw_body` is only its start.
    raw_length: Option<i64>,
}

fn elapsed_us(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX)
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

/// A stored notification (for the dashboard's logs and for tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// `payment` or `refund`.
    pub kind: String,
    /// When it arrived (UTC ms).
    pub received_at: i64,
    /// The sender's address.
    pub peer: Option<String>,
    /// The body as received (lossy UTF-8), or only its start when nothing verified it (then
    /// `raw_length` says how long it was).
    pub raw_body: String,
    /// The body's full length in bytes when `raw_body` holds only its start.
    pub raw_length: Option<i64>,
    /// `out_trade_no` as claimed (unverified unless the verdict says otherwise).
    pub out_trade_no: Option<String>,
    /// `transaction_id` from the verified notification.
    pub transaction_id: Option<String>,
    /// `total_fee` from the verified notification.
    pub total_fee: Option<i64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, for people.
    pub detail: String,
    /// `SUCCESS` or `FAIL`.
    pub reply: String,
    /// Handling time in microseconds.
    pub duration_us: i64,
    /// The order it concerns, once verified.
    pub order_id: Option<i64>,
}

#[derive(FromRow)]
struct StoredRow {
    id: i64,
    kind: String,
    received_at: i64,
    peer: Option<String>,
    raw_body: String,
    raw_length: Option<i64>,
    out_trade_no: Option<String>,
    transaction_id: Option<String>,
    total_fee: Option<i64>,
    verdict: String,
    detail: String,
    reply: String,
    duration_us: i64,
    order_id: Option<i64>,
}

impl TryFrom<StoredRow> for Notification {
    type Error = CoreError;

    fn try_from(r: StoredRow) -> Result<Self, CoreError> {
        Ok(Notification {
            id: r.id,
            kind: r.kind,
            received_at: r.received_at,
            peer: r.peer,
            raw_body: r.raw_body,
            raw_length: r.raw_length,
            out_trade_no: r.out_trade_no,
            transaction_id: r.transaction_id,
            total_fee: r.total_fee,
            verdict: r.verdict.parse()?,
            detail: r.detail,
            reply: r.reply,
            duration_us: r.duration_us,
            order_id: r.order_id,
        })
    }
}

const NOTIFICATION_COLUMNS: &str = "id, kind, received_at, peer, raw_body, raw_length, \
    out_trade_no, transaction_id, total_fee, verdict, detail, reply, duration_us, order_id";

/// The most recent notifications, newest first, optionally only those claiming
/// `out_trade_no`.
pub async fn recent(
    db: &Db,
    out_trade_no: Option<&str>,
    limit: i64,
) -> Result<Vec<Notification>, CoreError> {
    let rows = match out_trade_no {
        Some(no) => {
            sqlx::query_as::<_, StoredRow>(&format!(
                r#"select {NOTIFICATION_COLUMNS} from notifications
                   where out_trade_no = $1
                   order by id desc
                   limit $2"#
            ))
            .bind(no)
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
        None => {
            sqlx::query_as::<_, StoredRow>(&format!(
                r#"select {NOTIFICATION_COLUMNS} from notifications
                   order by id desc
                   limit $1"#
            ))
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
    };
    rows.into_iter().map(Notification::try_from).collect()
}

// ---------------------------------------------------------------------------------------
// Refund notifications (spec §8.9).

/// Handles one refund notification (spec §8.9) end to end: records the raw body whatever it
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
async fn receive_refund(
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
    let mut events = Vec::new();
    let (verdict, notification_id, unrecorded) = match result {
        Ok((decision, id, event)) => {
            events.extend(event);
            (decision.verdict, Some(id), None)
        }
        Err(e) => {
            tracing::error!(error = %e, "applying a refund notification failed");
            let failure = decide(
                Verdict::InternalError,
                "database error while applying the refund notification; WeChat Pay will resend it",
            );
            match record_refund(db, &row, &findings, &ids, &failure, started).await {
                Ok(id) => (Verdict::InternalError, Some(id), None),
                Err(e) => {
                    tracing::error!(error = %e, "recording a refund notification failed; kept in memory");
                    let late = Unrecorded::new("refund", &row, &findings, &failure, started);
                    (Verdict::InternalError, None, Some(late))
                }
            }
        }
    };
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
        &findings,
    )
}

/// The refund's ids in a refund notification row (besides the order's in [`Findings`]).
#[derive(Debug, Default)]
struct RefundIds {
    out_refund_no: Option<String>,
    refund_fee: Option<i64>,
}

enum RefundChecked {
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
        success_at: info.success_time.map(refunds::to_ms),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_applied_and_duplicate_are_acknowledged() {
        for v in Verdict::ALL {
            let ok = matches!(v, Verdict::Applied | Verdict::Duplicate);
            assert_eq!(v.acknowledged(), ok, "{v}");
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
