//! [`Intake`]: callbacks as the server receives them.

use std::sync::{Arc, Mutex};

use super::backlog::Backlog;
use super::flood::Refusals;
use super::payment::receive_payment;
use super::refund::receive_refund;
use super::refused::receive_oversize_limited;
use super::{sender_of, FloodPolicy, MerchantCredentials, NotificationOutcome};
use crate::events::EventBus;
use crate::{CoreError, Db};

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

    /// Holds back the answer when the callback was only counted (flood.rs,
    /// `Refusals::hold`); returns at once for every other outcome. Call it after letting
    /// go of the body.
    pub async fn hold(&self, outcome: &NotificationOutcome) {
        if outcome.counted {
            self.refusals.hold().await;
        }
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
