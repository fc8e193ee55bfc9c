//! The order sync job (docs/design.md "Sync"): every `tick_millis` it claims the orders whose
//! next look is due and, a few at a time, asks orderquery about them or closes the expired
//! ones with closeorder (`paydesk_core::sync`), so that an order whose notification never
//! arrived still ends `PAID` or `CLOSED`. Claims are leases in the database, so any number
//! of instances can run this job on one PostgreSQL database.

use std::time::Duration;

use paydesk_core::orders::Order;
use paydesk_core::sync::{self, SyncPolicy, DEFAULT_LEASE};
use tokio::task::JoinSet;

use super::Stop;
use crate::state::AppState;

/// How many orders one claim takes at most.
const BATCH: i64 = 32;
/// How many orders are worked on at once: a handful of calls, not a burst against
/// WeChat Pay's rate limits.
const CONCURRENCY: usize = 4;

pub(super) async fn run(state: AppState, mut stop: Stop) {
    let settings = &state.settings.sync;
    let policy = SyncPolicy {
        first_delay: Duration::from_secs(settings.first_delay_seconds),
        max_delay: Duration::from_secs(settings.max_delay_seconds),
        lease: DEFAULT_LEASE,
    };
    let tick = Duration::from_millis(settings.tick_millis);
    while !stop.sleep(tick).await {
        // A full batch means more may be due: claim again at once rather than a tick later.
        loop {
            let now = paydesk_core::now_ms();
            let claimed = match sync::claim_due_orders(&state.db, policy.lease, BATCH).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming orders to sync failed; trying again next tick");
                    break;
                }
            };
            let full = i64::try_from(claimed.len()).unwrap_or(i64::MAX) >= BATCH;
            if !claimed.is_empty() {
                tracing::debug!(orders = claimed.len(), "syncing due orders");
                work_on(&state, policy, claimed, now, &stop).await;
            }
            if !full || stop.is_set() {
                break;
            }
        }
    }
}

/// Syncs the claimed orders, [`CONCURRENCY`] at a time. Each runs in its own task, so even
/// a panic costs one order one round (its lease runs out and it is claimed again), never
/// the loop.
async fn work_on(state: &AppState, policy: SyncPolicy, claimed: Vec<Order>, now: i64, stop: &Stop) {
    let mut running = JoinSet::new();
    let mut claimed = claimed.into_iter();
    while let Some(order) = claimed.next() {
        while running.len() >= CONCURRENCY {
            finished(running.join_next().await);
        }
        if stop.is_set() {
            // Stopping: what has not started goes back to every instance now, not when
            // its lease runs out.
            let rest: Vec<Order> = std::iter::once(order).chain(claimed).collect();
            match sync::release(&state.db, &rest).await {
                Ok(n) => tracing::info!(orders = n, "stopping: claimed orders given back"),
                Err(e) => {
                    tracing::warn!(error = %e, "giving claimed orders back failed; their leases run out")
                }
            }
            break;
        }
        let (db, api, events) = (state.db.clone(), state.wxpay.clone(), state.events.clone());
        running.spawn(async move {
            // Failures are logged, with the order number, where they happen.
            let _ = sync::sync_claimed_order(&db, &*api, &events, &policy, &order, now).await;
        });
    }
    while let Some(done) = running.join_next().await {
        finished(Some(done));
    }
}

fn finished(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(e)) = done {
        tracing::error!(error = %e, "an order sync task panicked; the order is tried again when its lease runs out");
    }
}
