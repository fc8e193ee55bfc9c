-- The running totals on SQLite are kept as on PostgreSQL: the triggers on `orders` append
-- signed changes to order_totals_log, and paydesk_core::orders::totals::fold moves the log
-- into the totals every two seconds; readers add the log's rows in the same statement.
--
-- Why: the triggers updated four totals tables in place, seven upserts for every payment,
-- and that was half of what applying a payment notification cost the single writer at a
-- million orders (36 of 71 µs per notification in batches of 16, docs/benchmarks.md,
-- issue 18). Appending three rows at the log's end costs a fraction of that, and the fold
-- sums a whole batch's changes to each totals row once.
--
-- `id` bounds a fold: it moves the rows up to the largest id it saw, in one transaction.
create table order_totals_log (
    id integer primary key,
    day bigint,
    band bigint,
    status text,
    paid_day bigint,
    orders bigint not null,
    fen bigint not null
);

drop trigger orders_totals_insert;
drop trigger orders_totals_status;
drop trigger orders_totals_paid;
drop trigger orders_totals_paid_changed;
drop trigger orders_totals_delete;

-- A status change: day, band and status set, paid_day null. A payment: paid_day set, the
-- others null (as on PostgreSQL).
create trigger orders_totals_insert after insert on orders
begin
    insert into order_totals_log (day, band, status, orders, fen)
    values ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status, 1,
            new.total_fee);
    insert into order_totals_log (paid_day, orders, fen)
    select (new.paid_at + 28800000) / 86400000, 1, new.total_fee
    where new.paid_at is not null;
end;

create trigger orders_totals_status after update of status, total_fee, created_at on orders
when old.status is not new.status
    or old.total_fee is not new.total_fee
    or old.created_at is not new.created_at
begin
    insert into order_totals_log (day, band, status, orders, fen)
    values ((old.created_at + 28800000) / 86400000, old.total_fee / 100, old.status, -1,
            -old.total_fee),
           ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status, 1,
            new.total_fee);
end;

create trigger orders_totals_paid_changed after update of paid_at, total_fee on orders
when old.paid_at is not new.paid_at
    or (new.paid_at is not null and old.total_fee is not new.total_fee)
begin
    insert into order_totals_log (paid_day, orders, fen)
    select (old.paid_at + 28800000) / 86400000, -1, -old.total_fee
    where old.paid_at is not null;
    insert into order_totals_log (paid_day, orders, fen)
    select (new.paid_at + 28800000) / 86400000, 1, new.total_fee
    where new.paid_at is not null;
end;

create trigger orders_totals_delete after delete on orders
begin
    insert into order_totals_log (day, band, status, orders, fen)
    values ((old.created_at + 28800000) / 86400000, old.total_fee / 100, old.status, -1,
            -old.total_fee);
    insert into order_totals_log (paid_day, orders, fen)
    select (old.paid_at + 28800000) / 86400000, -1, -old.total_fee
    where old.paid_at is not null;
end;
