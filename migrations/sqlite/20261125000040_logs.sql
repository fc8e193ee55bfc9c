-- Indexes for the dashboard's logs (issue #6): the notification log filtered by kind (and
-- verdict), newest first with keyset pages on (received_at, id), and the API call log
-- newest first on (created_at, id). Each filter is one ordered index range, so a page stops
-- after its rows instead of sorting every match. The verdict-only filter and the failures
-- view use notifications_verdict_received_at_idx.
create index notifications_received_at_id_idx on notifications (received_at, id);
create index notifications_kind_received_at_idx on notifications (kind, received_at, id);
create index notifications_kind_verdict_received_at_idx
    on notifications (kind, verdict, received_at, id);
create index api_calls_created_at_id_idx on api_calls (created_at, id);
-- Superseded by the (…, id) indexes above (their prefix).
drop index notifications_received_at_idx;
drop index api_calls_created_at_idx;
