-- Refunds (issue: refunds end to end; design.md "Data" refunds, "Refund"; spec §8.5, §8.6,
-- §8.9, §10.2). out_refund_no is fixed when the request is made and reused on every retry:
-- it is WeChat Pay's idempotency key, so one request can never become two refunds.
--
-- Status: PENDING_APPROVAL → APPROVED → SUBMITTED → PROCESSING → SUCCESS, or REJECTED,
-- CHANGE (abnormal, not final), REFUNDCLOSE, FAILED. The refunds that count against the
-- order (all but REJECTED, FAILED, REFUNDCLOSE) never sum above its total_fee: the request
-- checks that inside its transaction, with the order row locked on PostgreSQL.
--
-- next_attempt_at is the job's schedule and lease (like orders.next_sync_at): claiming a
-- refund pushes it forward so another instance skips it until the claim runs out.
create table refunds (
    id bigint generated always as identity primary key,
    out_refund_no text not null constraint refunds_out_refund_no_key unique
        check (length(out_refund_no) between 1 and 64),
    order_id bigint not null references orders (id),
    amount_fen bigint not null check (amount_fen > 0),
    reason text not null,
    requester_kind text not null check (requester_kind in ('customer', 'staff')),
    requester text not null,
    requester_user_id bigint references users (id),
    status text not null check (status in
        ('PENDING_APPROVAL', 'APPROVED', 'SUBMITTED', 'PROCESSING', 'SUCCESS', 'REJECTED',
         'CHANGE', 'REFUNDCLOSE', 'FAILED')),
    decided_by text,
    decided_by_user_id bigint references users (id),
    decided_at bigint,
    decision_reason text,
    refund_id text,
    attempts bigint not null default 0,
    last_error_code text,
    last_error text,
    next_attempt_at bigint,
    succeeded_at bigint,
    refund_recv_accout text,
    created_at bigint not null,
    updated_at bigint not null
);
create index refunds_status_idx on refunds (status, created_at);
create index refunds_order_id_idx on refunds (order_id);
create index refunds_next_attempt_at_idx on refunds (next_attempt_at)
    where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE');

-- Refund notifications carry these besides the order's ids (spec §8.9).
alter table notifications add column out_refund_no text;
alter table notifications add column refund_fee bigint;
create index notifications_out_refund_no_idx on notifications (out_refund_no);
