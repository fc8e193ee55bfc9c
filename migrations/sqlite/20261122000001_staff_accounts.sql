-- Staff accounts, the audit log and the session store (issue: foundation).

create table users (
    id integer primary key,
    username text not null constraint users_username_key unique,
    password_hash text not null,
    role text not null check (role in ('staff', 'support', 'manager', 'admin')),
    disabled_at bigint,
    last_login_at bigint,
    password_changed_at bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);

-- Who did what, to what, when, from where. Append-only: rows are never updated.
create table audit_log (
    id integer primary key,
    created_at bigint not null,
    actor_user_id bigint references users (id),
    actor text not null,
    action text not null,
    target text,
    detail text,
    ip text
);
create index audit_log_created_at_idx on audit_log (created_at);
create index audit_log_action_target_idx on audit_log (action, target, created_at);
create index audit_log_action_ip_idx on audit_log (action, ip, created_at);
create index audit_log_actor_idx on audit_log (actor_user_id, created_at);

-- tower-sessions' three columns (tower-sessions-stores sqlx-store), with the expiry as
-- UTC milliseconds and the record as JSON text so one query serves both engines.
create table sessions (
    id text primary key not null,
    data text not null,
    expiry_date bigint not null
);
create index sessions_expiry_date_idx on sessions (expiry_date);
