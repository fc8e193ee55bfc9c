-- Password attempts (sign-in and changing one's own password), each recorded *before* its
-- password hash runs, so that parallel attempts are counted against one another and every
-- instance sharing the database adds to the same count (core/src/auth.rs). A successful
-- attempt removes its account's rows; rows older than the throttle window are deleted as
-- new attempts arrive, so the table holds at most one window of attempts.
create table login_attempts (
    id bigint generated always as identity primary key,
    username text not null,
    ip text,
    created_at bigint not null
);
create index login_attempts_username_idx on login_attempts (username, created_at);
create index login_attempts_ip_idx on login_attempts (ip, created_at);
create index login_attempts_created_at_idx on login_attempts (created_at);
