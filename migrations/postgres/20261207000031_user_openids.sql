-- A staff member's own WeChat openids, recorded by themself on 我的账户 (My account), so
-- that nobody approves the refund of an order they paid for (core/src/own_openids.rs,
-- core/src/refunds.rs). Kept with the account: a handful of rows per person.
create table user_openids (
    id bigint generated always as identity primary key,
    user_id bigint not null references users (id),
    openid text not null,
    created_at bigint not null,
    updated_at bigint not null,
    constraint user_openids_user_id_openid_key unique (user_id, openid)
);
create index user_openids_openid_idx on user_openids (openid);
