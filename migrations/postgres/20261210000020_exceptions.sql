-- The exceptions inbox (异常, core/src/exceptions.rs): one queue of everything that needs a
-- person. A background scan raises an item when a condition appears (a reconciliation
-- difference, a paid-amount mismatch, a payment after close, a second payment, a refund
-- stuck or failed, an alert that gave up, the same cart paid twice) and clears it when the
-- condition goes away; otherwise a person closes it with a note (audited). (kind, subject)
-- is unique: the same cause is never raised twice, and a closed item is not raised again.
create table exceptions (
    id bigint generated always as identity primary key,
    kind text not null,
    subject text not null,
    order_id bigint references orders (id),
    out_trade_no text,
    out_refund_no text,
    amount_fen bigint,
    other_fen bigint,
    detail text,
    state text not null check (state in ('open', 'cleared', 'closed')),
    raised_at bigint not null,
    note text,
    closed_by text,
    closed_by_user_id bigint references users (id),
    closed_at bigint,
    created_at bigint not null,
    updated_at bigint not null,
    constraint exceptions_kind_subject_key unique (kind, subject)
);
create index exceptions_state_raised_at_idx on exceptions (state, raised_at);
