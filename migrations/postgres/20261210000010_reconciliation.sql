-- Reconciliation (对账, core/src/reconcile): WeChat Pay's daily trade bill (downloadbill,
-- spec §8.7) against our orders and refunds. Days are Asia/Shanghai day numbers (days since
-- 1970-01-01 there, paydesk_core::time::day_number), like the running totals.

-- One row per reconciled day: where it stands and both sides' totals. status: matched (✓,
-- nothing open), differences (✗), pending (only trades waiting for the next day's bill),
-- waiting (the bill is not ready yet, or fetching it failed: tried again), failed (the
-- bill came but could not be used, e.g. its summary disagrees with its rows).
create table recon_days (
    day bigint primary key,
    status text not null
        check (status in ('matched', 'differences', 'pending', 'waiting', 'failed')),
    -- present: a bill came; none: WeChat Pay answered "No Bill Exist"; missing: not yet.
    bill text not null check (bill in ('present', 'none', 'missing')),
    our_paid_count bigint not null default 0,
    our_paid_fen bigint not null default 0,
    our_refund_count bigint not null default 0,
    our_refund_fen bigint not null default 0,
    -- The bill's own summary (all appids of the merchant number).
    bill_trade_count bigint,
    bill_total_fen bigint,
    bill_settlement_fen bigint,
    bill_refund_fen bigint,
    bill_fee_millifen bigint,
    -- Its rows of our appid: payments, refunds.
    bill_paid_count bigint not null default 0,
    bill_paid_fen bigint not null default 0,
    bill_refund_count bigint not null default 0,
    bill_refund_fen_ours bigint not null default 0,
    -- Rows of another appid on the same merchant number: counted apart, never ours.
    not_ours_count bigint not null default 0,
    not_ours_fen bigint not null default 0,
    open_count bigint not null default 0,
    pending_count bigint not null default 0,
    error text,
    attempts bigint not null default 0,
    reconciled_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);

-- The bill as WeChat Pay sent it (gzip), kept beside its rows.
create table recon_bills (
    day bigint primary key,
    gzip bytea not null,
    text_bytes bigint not null,
    row_count bigint not null,
    fetched_at bigint not null
);
-- Retention deletes bills (and their rows) by age (core/src/retention.rs).
create index recon_bills_fetched_at_idx on recon_bills (fetched_at);

-- The bill's detail rows, typed (amounts in fen, the fee in milli-fen). kind: payment (交易状态
-- SUCCESS) or refund (a refund row: out_refund_no set). ours: the row's appid is ours.
create table recon_bill_rows (
    day bigint not null,
    line bigint not null,
    kind text not null check (kind in ('payment', 'refund')),
    ours bigint not null,
    appid text,
    out_trade_no text,
    transaction_id text,
    out_refund_no text,
    refund_id text,
    state text,
    trade_time bigint,
    total_fee bigint,
    settlement_fee bigint,
    refund_fee bigint,
    fee_millifen bigint,
    fetched_at bigint not null,
    primary key (day, line)
);
create index recon_bill_rows_fetched_at_idx on recon_bill_rows (fetched_at);
create index recon_bill_rows_out_trade_no_idx on recon_bill_rows (out_trade_no);
create index recon_bill_rows_out_refund_no_idx on recon_bill_rows (out_refund_no)
    where out_refund_no is not null;

-- A difference is identified by (day, class, ref_no): a re-run finds the same one again and
-- updates it, never a second. state: open (needs a person), pending (waits for the next
-- day's bill; does not count), cleared (a re-run no longer finds it: the order got paid,
-- the refund caught up), resolved (closed by a person with a note; kept resolved on re-runs).
create table recon_differences (
    id bigint generated always as identity primary key,
    day bigint not null,
    class text not null,
    ref_no text not null,
    out_trade_no text,
    out_refund_no text,
    order_id bigint references orders (id),
    refund_row_id bigint references refunds (id),
    our_fen bigint,
    their_fen bigint,
    our_status text,
    their_status text,
    their_time bigint,
    transaction_id text,
    state text not null check (state in ('open', 'pending', 'cleared', 'resolved')),
    note text,
    resolved_by text,
    resolved_by_user_id bigint references users (id),
    resolved_at bigint,
    first_seen_at bigint not null,
    last_seen_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint recon_differences_day_class_ref_no_key unique (day, class, ref_no)
);
create index recon_differences_state_day_idx on recon_differences (state, day);
create index recon_differences_order_id_idx on recon_differences (order_id)
    where order_id is not null;

-- When WeChat Pay accepted a refund (its refund_id arrived): the day its row is on the
-- bill. Refunds accepted before this column existed get their creation time.
alter table refunds add column accepted_at bigint;
update refunds set accepted_at = created_at where refund_id is not null;
create index refunds_accepted_at_idx on refunds (accepted_at) where accepted_at is not null;

-- The daily job's leases (see retention's row in job_leases): 'reconciliation' is
-- yesterday's run (last_run_day: the bill day last done); 'reconciliation-catch-up' is the
-- once-a-day pass over earlier days never reconciled or still waiting (last_run_day: the
-- day it ran).
insert into job_leases (name, leased_until, created_at, updated_at)
values ('reconciliation', 0, 0, 0), ('reconciliation-catch-up', 0, 0, 0);
