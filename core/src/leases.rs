//! Daily jobs that run on one instance among several (retention, reconciliation): each has
//! a row in `job_leases`. A claim is one conditional update, taken only when no other
//! instance holds an unexpired lease and the day has not been done yet; a crashed run's
//! lease runs out and another instance takes the day over.
//!
//! Every lease in paydesk (these, the order sync's, the refunds', the merchant alerts') is
//! timed by the database's clock ([`clock_ms`]), never by the instance's: two instances
//! whose clocks disagree still agree on whether a lease ran out, so they never both hold
//! one unit of work.

use crate::{Backend, CoreError, Db};

/// The database's clock as UTC milliseconds, as a SQL expression with one value per
/// statement: what every lease is taken, extended and judged expired by.
pub(crate) fn clock_ms(backend: Backend) -> &'static str {
    match backend {
        // statement_timestamp(): the same value for every row of one statement
        // (clock_timestamp() moves during it, now() stops at the transaction's start).
        Backend::Postgres => "(extract(epoch from statement_timestamp()) * 1000)::bigint",
        // 'now' is fixed for one sqlite3_step(); one host, so it is every instance's clock.
        Backend::Sqlite => "cast(round(unixepoch('subsec') * 1000) as integer)",
    }
}

/// The database's clock now, in UTC milliseconds.
pub async fn db_now_ms(db: &Db) -> Result<i64, CoreError> {
    Ok(
        sqlx::query_scalar(&format!("select {}", clock_ms(db.backend())))
            .fetch_one(db.reader())
            .await?,
    )
}

/// Claims `day` of `job` for `holder` for `lease_ms` from the database's clock (`now`, the
/// instance's, only stamps the row). True when this call took it.
pub async fn claim_day(
    db: &Db,
    job: &str,
    holder: &str,
    now: i64,
    day: i64,
    lease_ms: i64,
) -> Result<bool, CoreError> {
    let clock = clock_ms(db.backend());
    let claimed = sqlx::query(&format!(
        r#"update job_leases set holder = $1, leased_until = {clock} + $2, updated_at = $3
           where name = $4 and leased_until < {clock}
             and (last_run_day is null or last_run_day < $5)"#
    ))
    .bind(holder)
    .bind(lease_ms)
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

/// Keeps `job` from every instance for `for_ms` more (by the database's clock) without
/// marking the day done: the next try of a day that could not be finished yet.
pub async fn postpone(
    db: &Db,
    job: &str,
    holder: &str,
    for_ms: i64,
    now: i64,
) -> Result<(), CoreError> {
    let clock = clock_ms(db.backend());
    sqlx::query(&format!(
        r#"update job_leases set leased_until = {clock} + $1, updated_at = $2
           where name = $3 and holder = $4"#
    ))
    .bind(for_ms)
    .bind(now)
    .bind(job)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(())
}
