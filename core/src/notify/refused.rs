//! The refused path: a callback nothing verified is stored cut to a prefix, within its
//! sender's allowance (flood.rs), or only counted; and so is a body too long to read.

use std::borrow::Cow;
use std::time::Instant;

use super::flood::{Fate, Refusals};
use super::payment::Checked;
use super::refund::RefundChecked;
use super::{
    decide, outcome, sender_of, stored_text, Decision, Findings, NotificationOutcome,
    NotificationRow, Refusal, Unrecorded, Verdict, VerdictReply, DEFAULT_REFUSED_BODY_BYTES,
    MAX_BODY,
};
use crate::{now_ms, CoreError, Db};

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

pub(super) async fn receive_oversize_limited(
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

/// What nothing verified takes the refused path: a decision reached before the signature
/// checked, and equally a database error before it (the order lookup failing under load),
/// so junk is stored cut and within its sender's allowance even then. Anything else goes on
/// to be recorded or applied.
pub(super) trait Decided {
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

pub(super) fn unverified<C: Decided>(
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
pub(super) async fn refuse(
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
                counted: true,
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
