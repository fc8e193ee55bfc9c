-- The pay flow (issue: pay end to end): mini-program sessions, order expiry and sync
-- scheduling, merchant alert deliveries.

-- When the order stops being payable (time_expire sent to unifiedorder), and when the sync
-- job next looks at it. next_sync_at doubles as the job's lease: claiming an order pushes
-- it forward, so another instance skips it until the claim runs out.
alter table orders add column expires_at bigint;
alter table orders add column next_sync_at bigint;
alter table orders add column sync_attempts bigint not null default 0;
create index orders_next_sync_at_idx on orders (next_sync_at) where status = 'NOTPAY';

-- Our own opaque bearer tokens for the mini program. Only a SHA-256 of the token is
-- stored; session_key (from jscode2session) never leaves the server.
create table mp_sessions (
    token_hash text primary key,
    customer_id bigint not null references customers (id),
    session_key text not null,
    expires_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);
create index mp_sessions_customer_id_idx on mp_sessions (customer_id);

-- One row per merchant alert (webhook POST for a paid order), retried with backoff.
-- target is the webhook's host only: the full URL carries the robot's key.
create table alert_deliveries (
    id bigint generated always as identity primary key,
    order_id bigint not null references orders (id),
    out_trade_no text not null,
    target text not null,
    payload text not null,
    status text not null check (status in ('pending', 'delivered', 'failed')),
    attempts bigint not null default 0,
    next_attempt_at bigint,
    http_status bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    constraint alert_deliveries_order_id_key unique (order_id)
);
create index alert_deliveries_due_idx on alert_deliveries (next_attempt_at) where status = 'pending';

-- The outbound call log is read by order and by time on the dashboard.
create index api_calls_endpoint_created_at_idx on api_calls (endpoint, created_at);
