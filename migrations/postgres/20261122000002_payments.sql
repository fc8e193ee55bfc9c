-- Catalogue and customers (design.md "Data"). Prices are fen; the server prices every cart.
create table products (
    id bigint generated always as identity primary key,
    name text not null,
    price_fen bigint not null check (price_fen > 0),
    active boolean not null default true,
    created_at bigint not null,
    updated_at bigint not null
);

create table customers (
    id bigint generated always as identity primary key,
    openid text not null constraint customers_openid_key unique,
    unionid text,
    first_seen bigint not null,
    last_seen bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);

-- Orders. `sign_type` is the algorithm the order was created with: a notification for an
-- HMAC-SHA256 order is never accepted with an MD5 signature (spec §5.2). transaction_id and
-- idempotency_key are unique when set (both engines allow many NULLs under a unique
-- constraint).
create table orders (
    id bigint generated always as identity primary key,
    out_trade_no text not null constraint orders_out_trade_no_key unique
        check (length(out_trade_no) between 1 and 32),
    openid text not null,
    description text not null,
    total_fee bigint not null check (total_fee > 0),
    status text not null check (status in
        ('NOTPAY', 'PAID', 'CLOSED', 'PAYERROR', 'PARTIALLY_REFUNDED', 'REFUNDED')),
    sign_type text not null check (sign_type in ('MD5', 'HMAC-SHA256')),
    prepay_id text,
    prepay_expires_at bigint,
    transaction_id text constraint orders_transaction_id_key unique,
    bank_type text,
    paid_at bigint,
    client_ip text,
    idempotency_key text constraint orders_idempotency_key_key unique,
    created_at bigint not null,
    updated_at bigint not null
);
create index orders_created_at_idx on orders (created_at, id);
create index orders_status_idx on orders (status, created_at);
create index orders_openid_idx on orders (openid, created_at);

create table order_items (
    id bigint generated always as identity primary key,
    order_id bigint not null references orders (id),
    product_id bigint references products (id),
    name text not null,
    unit_price_fen bigint not null check (unit_price_fen > 0),
    quantity bigint not null check (quantity > 0),
    created_at bigint not null,
    updated_at bigint not null
);
create index order_items_order_id_idx on order_items (order_id);

-- Every callback that reached us, kept whole, good or bad (design.md "Notify"). raw_body is
-- the body as received (lossy UTF-8 when it was not UTF-8); it is stored, never logged.
create table notifications (
    id bigint generated always as identity primary key,
    kind text not null check (kind in ('payment', 'refund')),
    received_at bigint not null,
    peer text,
    raw_body text not null,
    out_trade_no text,
    transaction_id text,
    total_fee bigint,
    verdict text not null check (verdict in
        ('applied', 'duplicate', 'bad_signature', 'malformed', 'forbidden_xml', 'wrong_appid',
         'wrong_mch_id', 'unknown_order', 'amount_mismatch', 'decrypt_failed', 'result_fail',
         'internal_error')),
    detail text not null,
    reply text not null check (reply in ('SUCCESS', 'FAIL')),
    duration_us bigint not null,
    order_id bigint references orders (id),
    created_at bigint not null,
    updated_at bigint not null
);
create index notifications_received_at_idx on notifications (received_at);
create index notifications_verdict_received_at_idx on notifications (verdict, received_at);
create index notifications_out_trade_no_idx on notifications (out_trade_no);
create index notifications_order_id_idx on notifications (order_id);

-- Every outbound call to WeChat Pay. Bodies keep `sign`; the API key and certificates are
-- never stored.
create table api_calls (
    id bigint generated always as identity primary key,
    endpoint text not null,
    out_trade_no text,
    out_refund_no text,
    transaction_id text,
    http_status bigint,
    return_code text,
    result_code text,
    err_code text,
    latency_ms bigint not null,
    request_body text,
    response_body text,
    error text,
    created_at bigint not null,
    updated_at bigint not null
);
create index api_calls_created_at_idx on api_calls (created_at);
create index api_calls_out_trade_no_idx on api_calls (out_trade_no);
