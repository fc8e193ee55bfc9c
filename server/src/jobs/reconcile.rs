//! The reconciliation job (`paydesk_core::reconcile`): each day from
//! `PAYDESK_RECONCILIATION__RUN_AT` (Asia/Shanghai), one instance among those sharing the
//! database fetches yesterday's bill and compares it with our books. The day is claimed with
//! a lease in the database (`paydesk_core::leases`), so several instances never run it
//! twice. A bill that is not ready yet (or a failed fetch) is tried again every
//! `retry_minutes`, until the day can be compared. Once a day, whatever the time, one
//! instance also catches up on earlier days never reconciled (the server was down at the
//! run time; the sandbox's first start with weeks of history).

use std::time::Duration;

use paydesk_core::reconcile::{self, DayStatus, Reconciler};
use paydesk_core::{leases, time};

use super::Stop;
use crate::state::AppState;

/// How often the job looks whether today's run is due.
const EVERY: Duration = Duration::from_secs(60);
/// How long a claim keeps other instances away: far longer than one fetch and comparison.
const LEASE_MS: i64 = 30 * 60_000;

pub(super) async fn run(state: AppState, mut stop: Stop) {
    let settings = &state.settings.reconciliation;
    // Checked by Settings::validate; the default is only for a value it let through.
    let run_at = settings.run_at_minute().unwrap_or(10 * 60 + 30);
    let retry_ms = i64::from(settings.retry_minutes.max(1)) * 60_000;
    let holder = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    let policy = super::refunds::policy(&state);
    loop {
        if let Err(e) = catch_up(&state, &policy, &holder, retry_ms).await {
            tracing::warn!(error = %e, "the reconciliation catch-up failed; another try when its lease runs out");
        }
        if let Err(e) = turn(&state, &policy, &holder, run_at, retry_ms).await {
            tracing::warn!(error = %e, "the reconciliation run failed; another try when its lease runs out");
        }
        if stop.sleep(EVERY).await {
            break;
        }
    }
}

/// Once a day, on one instance: the earlier days never reconciled or still waiting
/// (`reconcile::days_to_catch_up`), each tried once. Their bills are ready whatever the
/// time of day; when one could not be reconciled, the pass runs again after `retry_ms`.
async fn catch_up(
    state: &AppState,
    policy: &paydesk_core::refunds::RefundPolicy,
    holder: &str,
    retry_ms: i64,
) -> Result<(), paydesk_core::CoreError> {
    let now = paydesk_core::now_ms();
    let today = time::day_number(now);
    if !leases::claim_day(
        &state.db,
        reconcile::CATCH_UP_JOB,
        holder,
        now,
        today,
        LEASE_MS,
    )
    .await?
    {
        return Ok(());
    }
    let r = reconciler(state, policy);
    let days = reconcile::days_to_catch_up(&state.db, today - 1).await?;
    let mut unfinished = 0;
    for day in &days {
        let report = reconcile::reconcile_day(&r, *day).await?;
        if matches!(report.day.status, DayStatus::Waiting | DayStatus::Failed) {
            unfinished += 1;
        }
        tracing::info!(
            day = %reconcile::day_text(*day),
            status = report.day.status.as_str(),
            open = report.day.open_count,
            "an earlier day reconciled (catch-up)"
        );
    }
    let done = paydesk_core::now_ms();
    if unfinished > 0 {
        tracing::info!(
            days = unfinished,
            "earlier days could not be reconciled yet; trying again later"
        );
        return leases::postpone(&state.db, reconcile::CATCH_UP_JOB, holder, retry_ms, done).await;
    }
    leases::finish_day(&state.db, reconcile::CATCH_UP_JOB, holder, today, done).await
}

fn reconciler<'a>(
    state: &'a AppState,
    policy: &'a paydesk_core::refunds::RefundPolicy,
) -> Reconciler<'a> {
    Reconciler {
        db: &state.db,
        api: &*state.wxpay,
        events: &state.events,
        appid: &state.merchant.appid,
        refund_policy: policy,
    }
}

/// Yesterday's run, when it is due and this instance claims it.
async fn turn(
    state: &AppState,
    policy: &paydesk_core::refunds::RefundPolicy,
    holder: &str,
    run_at: i64,
    retry_ms: i64,
) -> Result<(), paydesk_core::CoreError> {
    let now = paydesk_core::now_ms();
    if time::minute_of_day(now) < run_at {
        return Ok(());
    }
    let yesterday = time::day_number(now) - 1;
    if !leases::claim_day(&state.db, reconcile::JOB, holder, now, yesterday, LEASE_MS).await? {
        return Ok(());
    }
    let report = reconcile::reconcile_day(&reconciler(state, policy), yesterday).await?;
    let done = paydesk_core::now_ms();
    match report.day.status {
        DayStatus::Waiting | DayStatus::Failed => {
            tracing::info!(
                status = report.day.status.as_str(),
                error = report.day.error.as_deref().unwrap_or(""),
                "yesterday's bill could not be reconciled yet; trying again later"
            );
            leases::postpone(&state.db, reconcile::JOB, holder, retry_ms, done).await
        }
        status => {
            tracing::info!(
                status = status.as_str(),
                open = report.day.open_count,
                pending = report.day.pending_count,
                "yesterday reconciled with WeChat Pay's bill"
            );
            leases::finish_day(&state.db, reconcile::JOB, holder, yesterday, done).await
        }
    }
}
