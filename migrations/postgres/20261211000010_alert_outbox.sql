-- Merchant alerts are queued in the payment's own transaction (an outbox). Whichever
-- statement moves an order to PAID (the group commit, a lone notification, the sync job's
-- orderquery), this trigger inserts the order's alert_deliveries row in the same
-- transaction, so a crash between the commit and the alert job loses no alert. Only while
-- alerts are on: alert_settings holds one row, the webhook's host, kept alive (alive_until)
-- by every instance that has a webhook configured and sends the alerts, so alerts stay on
-- while one such instance runs (and an instance started without one changes nothing). The
-- payload is built when the alert is first sent ('' until then). Times by the database's
-- clock, as the claims that send them.
create table alert_settings (
    id bigint primary key check (id = 1),
    target text not null,
    alive_until bigint not null,
    updated_at bigint not null
);

create function order_paid_alert() returns trigger language plpgsql as $$
declare
    now_ms bigint := (extract(epoch from statement_timestamp()) * 1000)::bigint;
begin
    insert into alert_deliveries (order_id, out_trade_no, target, payload, status, attempts,
        next_attempt_at, created_at, updated_at)
    select new.id, new.out_trade_no, s.target, '', 'pending', 0, now_ms, new.updated_at,
        new.updated_at
    from alert_settings s where s.id = 1 and s.alive_until > now_ms
    on conflict (order_id) do nothing;
    return null;
end
$$;

create trigger orders_paid_alert
after update of status on orders
for each row when (new.status = 'PAID' and old.status is distinct from 'PAID')
execute function order_paid_alert();
