-- The callback flood (issue 15). A refused callback that nothing verified is stored in
-- `notifications` only while its sender is within its allowance (60 a minute by default,
-- PAYDESK_CALLBACKS__REFUSED_PER_MINUTE); beyond that it is counted here, one row per
-- sender, cause (the verdict) and minute, so a flood costs a few rows a minute, not a row a
-- request. `stored` is the sender's allowance used in that minute: the claim every instance
-- makes before storing one, so the limit holds across instances. `count` is how many were
-- refused and not stored. Times are UTC ms; `minute` is the start of the minute.
create table refused_callback_counts (
    sender text not null,
    cause text not null,
    minute bigint not null,
    count bigint not null default 0,
    stored bigint not null default 0,
    first_seen bigint not null,
    last_seen bigint not null,
    created_at bigint not null,
    updated_at bigint not null,
    primary key (sender, cause, minute)
);
-- The failures view reads a window of minutes; retention prunes by age.
create index refused_callback_counts_minute_idx on refused_callback_counts (minute);

-- A refused body is stored cut to a prefix (8 KiB by default); this is its full length in
-- bytes then (null: raw_body is the whole body).
alter table notifications add column raw_length bigint;
