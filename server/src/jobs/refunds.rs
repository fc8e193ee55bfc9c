//! The refund job (docs/design.md "Refund"): executes approved refunds over mutual TLS and
//! settles those in flight with refundquery (`paydesk_core::refunds`). It wakes at once when
//! a refund is approved, and every `tick_millis` for retries and queries that fell due.
//! Claims are leases in the database (`next_attempt_at`), so any number of instances can run
//! it on one PostgreSQL database; a refund is `SUBMITTED` (committed) before each call and
//! asked about before any resend, so neither a second instance nor a restart refunds twice.

use std::time::Duration;

use paydesk_core::events::Event;
use paydesk_core::refunds::{self, Claimed, RefundPolicy};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use super::Stop;
use crate::state::AppState;

/// How many refunds one claim takes at most.
const BATCH: i64 = 16;
/// How many refunds are worked on at once (WeChat Pay discourages bursts of refunds).
const CONCURRENCY: usize = 2;

/// The job's policy from the settings.
pub fn policy(state: &AppState) -> RefundPolicy {
    policy_from(&state.settings, &state.pay)
}

/// The policy from the settings and the resolved pay flow (the command line has no state).
pub fn policy_from(
    settings: &crate::config::Settings,
    pay: &crate::state::PayConfig,
) -> RefundPolicy {
    let s = &settings.refunds;
    RefundPolicy {
        retry_base: Duration::from_millis(s.retry_base_millis),
        query_delay: Duration::from_secs(s.query_delay_seconds),
        lease: Duration::from_secs(s.lease_seconds),
        notify_url: Some(pay.refund_notify_url.clone()),
        ..RefundPolicy::default()
    }
}

pub(super) async fn run(state: AppState, mut stop: Stop) {
    let policy = policy(&state);
    let tick = Duration::from_millis(state.settings.refunds.tick_millis);
    let mut events = state.events.subscribe();
    loop {
        // Work first: refunds approved or left SUBMITTED before a restart are due now.
        loop {
            let claimed = match refunds::claim_due(&state.db, policy.lease, BATCH).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming refunds failed; trying again next tick");
                    break;
                }
            };
            let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= BATCH;
            if !claimed.is_empty() {
                work_on(&state, &policy, claimed, &stop).await;
            }
            if !full || stop.is_set() {
                break;
            }
        }
        tokio::select! {
            stopping = stop.sleep(tick) => if stopping { break },
            () = approval(&mut events) => {}
        }
        if stop.is_set() {
            break;
        }
    }
}

/// Completes when a refund is approved (or events were missed: look anyway).
async fn approval(events: &mut broadcast::Receiver<Event>) {
    loop {
        match events.recv().await {
            Ok(Event::RefundChanged { status, .. }) if status == "APPROVED" => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Works on the claimed refunds, [`CONCURRENCY`] at a time, each in its own task (a panic
/// costs one refund one round: its lease runs out and it is claimed again).
async fn work_on(state: &AppState, policy: &RefundPolicy, claimed: Vec<Claimed>, stop: &Stop) {
    let mut running = JoinSet::new();
    let mut claimed = claimed.into_iter();
    while let Some(c) = claimed.next() {
        while running.len() >= CONCURRENCY {
            finished(running.join_next().await);
        }
        if stop.is_set() {
            // Stopping: what has not started goes back to every instance now, not when
            // its lease runs out.
            let rest: Vec<Claimed> = std::iter::once(c).chain(claimed).collect();
            match refunds::release(&state.db, &rest).await {
                Ok(n) => tracing::info!(refunds = n, "stopping: claimed refunds given back"),
                Err(e) => {
                    tracing::warn!(error = %e, "giving claimed refunds back failed; their leases run out")
                }
            }
            break;
        }
        let (db, api, events, policy) = (
            state.db.clone(),
            state.wxpay.clone(),
            state.events.clone(),
            policy.clone(),
        );
        running.spawn(async move {
            if let Err(e) = refunds::process_claimed(&db, &*api, &events, &policy, &c).await {
                tracing::warn!(refund.out_refund_no = %c.refund.out_refund_no, error = %e, "refund round failed; tried again when its lease runs out");
            }
        });
    }
    while let Some(done) = running.join_next().await {
        finished(Some(done));
    }
}

fn finished(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(e)) = done {
        tracing::error!(error = %e, "a refund task panicked; the refund is tried again when its lease runs out");
    }
}
