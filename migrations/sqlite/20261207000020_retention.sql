-- Retention (core/src/retention.rs): the daily job's lease and last run, and the indexes
-- its deletes walk. Every delete is `… where key in (select key … where <age column> <
-- cutoff and <condition> limit n)`, so each batch must be an index range on the age
-- column, not a scan of the table (EXPLAIN QUERY PLAN in core/tests/retention.rs).

-- Jobs that run once a day on one instance among several. A claim is one conditional
-- update (see retention::claim_day): it takes the row only when no other instance holds an
-- unexpired lease and the day has not been done yet. last_report is the last run's rows per
-- retention line (JSON), for the Settings page.
create table job_leases (
    name text primary key,
    holder text,
    leased_until bigint not null default 0,
    last_run_day bigint,
    last_finished_at bigint,
    last_report text,
    created_at bigint not null,
    updated_at bigint not null
);
insert into job_leases (name, leased_until, created_at, updated_at) values ('retention', 0, 0, 0);

-- Expired mini-program tokens, by expiry (only customer_id was indexed).
create index mp_sessions_expires_at_idx on mp_sessions (expires_at);

-- Finished alert deliveries, by status then age (pending ones are never deleted).
create index alert_deliveries_status_updated_at_idx on alert_deliveries (status, updated_at);

-- API calls whose bodies are still there, by age: once cut, a row leaves this index, so a
-- daily run reads only what it changes, not every old row again.
create index api_calls_bodies_created_at_idx on api_calls (created_at)
    where request_body is not null or response_body is not null;
