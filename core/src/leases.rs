//! Daily jobs that run on one instance among several (retention, reconciliation): each has
//! a row in `job_leases`. A claim is one conditional update, taken only when no other
//! instance holds an unexpired lease and the day has not been done yet; a crashed run's
//! lease runs out and another instance takes the day over.

use crate::{CoreError, Db};

/// Claims `day` of `job` for `holder` until `now + lease_ms`. True when this call took it.
pub async fn claim_day(
    db: &Db,
    job: &str,
    holder: &str,
    now: i64,
    day: i64,
    lease_ms: i64,
) -> Result<bool, CoreError> {
    let claimed = sqlx::query(
        r#"update job_leases set holder = $1, leased_until = $2, updated_at = $3
           where name = $4 and leased_until < $3
             and (last_run_day is null or last_run_day < $5)"#,
    )
    .bind(holder)
    .bind(now.saturating_add(lease_ms))
    .bind(now)
    .bind(job)
    .bind(day)
    .execute(db.writer())
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Marks `day` of `job` done by `holder` and gives up the lease.
pub async fn finish_day(
    db: &Db,
    job: &str,
    holder: &str,
    day: i64,
    now: i64,
) -> Result<(), CoreError> {
    sqlx::query(
        r#"update job_leases set last_run_day = $1, last_finished_at = $2, leased_until = 0,
               updated_at = $2
           where name = $3 and holder = $4"#,
    )
    .bind(day)
    .bind(now)
    .bind(job)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Keeps `job` from every instance until `until` without marking the day done: the next
/// try of a day that could not be finished yet.
pub async fn postpone(
    db: &Db,
    job: &str,
    holder: &str,
    until: i64,
    now: i64,
) -> Result<(), CoreError> {
    sqlx::query(
        r#"update job_leases set leased_until = $1, updated_at = $2
           where name = $3 and holder = $4"#,
    )
    .bind(until)
    .bind(now)
    .bind(job)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(())
}
