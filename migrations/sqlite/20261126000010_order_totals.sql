-- Running totals of orders, so the sums the dashboard shows do not read every order:
-- the orders page's count and sum over the whole table or a status (a million index
-- entries, 55–90 ms at a million orders), the amount-range sums, and the home page's
-- success rate and fourteen-day chart (docs/benchmarks.md, "Order totals").
--
--   order_totals_by_day       per Asia/Shanghai calendar day of created_at, per status
--   order_totals_by_band      per whole yuan of total_fee (total_fee / 100), per status
--   order_totals_paid_by_day  per Asia/Shanghai calendar day of paid_at (paid, refunded
--                             later or not)
--
-- (Without the per-yuan totals an amount range with a status, "PAID, ¥100.50–¥150", read
-- the status of each of 180,000 orders: 95 ms p95 at a million orders.)
--
-- A day is (ms + 8 h) / 24 h, integer division: China has had no daylight saving since
-- 1991. `orders` are counted in `orders`, their total_fee in `fen`.
--
-- On SQLite the triggers below keep them in the same transaction as the change to the
-- order (one writer at a time, so the few rows they touch are never contended). On
-- PostgreSQL the triggers append to a log that a job folds in (see that migration).
create table order_totals_by_day (
    day bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (day, status)
) without rowid;

create table order_totals_by_band (
    band bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (band, status)
) without rowid;

create table order_totals_paid_by_day (
    day bigint not null primary key,
    orders bigint not null,
    fen bigint not null
) without rowid;

insert into order_totals_by_day (day, status, orders, fen)
select (created_at + 28800000) / 86400000, status, count(*), sum(total_fee)
from orders group by 1, 2;

insert into order_totals_by_band (band, status, orders, fen)
select total_fee / 100, status, count(*), sum(total_fee)
from orders group by 1, 2;

insert into order_totals_paid_by_day (day, orders, fen)
select (paid_at + 28800000) / 86400000, count(*), sum(total_fee)
from orders where paid_at is not null group by 1;

create trigger orders_totals_insert after insert on orders
begin
    insert into order_totals_by_day (day, status, orders, fen)
    values ((new.created_at + 28800000) / 86400000, new.status, 1, new.total_fee)
    on conflict (day, status) do update
        set orders = orders + 1, fen = fen + excluded.fen;
    insert into order_totals_by_band (band, status, orders, fen)
    values (new.total_fee / 100, new.status, 1, new.total_fee)
    on conflict (band, status) do update
        set orders = orders + 1, fen = fen + excluded.fen;
    insert into order_totals_paid_by_day (day, orders, fen)
    select (new.paid_at + 28800000) / 86400000, 1, new.total_fee
    where new.paid_at is not null
    on conflict (day) do update
        set orders = orders + 1, fen = fen + excluded.fen;
end;

-- A change of status is one statement per table: the order leaves its old row and joins its
-- new one (the same row when only the amount changed), two rows of one upsert. Payment
-- notifications pay for these triggers on every status change, so they are kept to three
-- statements: two here and orders_totals_paid (callgrind, docs/benchmarks.md).
create trigger orders_totals_status after update of status, total_fee, created_at on orders
when old.status is not new.status
    or old.total_fee is not new.total_fee
    or old.created_at is not new.created_at
begin
    insert into order_totals_by_day (day, status, orders, fen)
    values ((old.created_at + 28800000) / 86400000, old.status, -1, -old.total_fee),
           ((new.created_at + 28800000) / 86400000, new.status, 1, new.total_fee)
    on conflict (day, status) do update
        set orders = orders + excluded.orders, fen = fen + excluded.fen;
    insert into order_totals_by_band (band, status, orders, fen)
    values (old.total_fee / 100, old.status, -1, -old.total_fee),
           (new.total_fee / 100, new.status, 1, new.total_fee)
    on conflict (band, status) do update
        set orders = orders + excluded.orders, fen = fen + excluded.fen;
end;

-- Paid for the first time (the usual case): one upsert.
create trigger orders_totals_paid after update of paid_at on orders
when old.paid_at is null and new.paid_at is not null
begin
    insert into order_totals_paid_by_day (day, orders, fen)
    values ((new.paid_at + 28800000) / 86400000, 1, new.total_fee)
    on conflict (day) do update
        set orders = orders + 1, fen = fen + excluded.fen;
end;

-- A payment time or a paid amount corrected, or a payment taken back (none of which
-- paydesk does): the old contribution out, the new one in.
create trigger orders_totals_paid_changed after update of paid_at, total_fee on orders
when old.paid_at is not null
    and (old.paid_at is not new.paid_at or old.total_fee is not new.total_fee)
begin
    insert into order_totals_paid_by_day (day, orders, fen)
    select (old.paid_at + 28800000) / 86400000, -1, -old.total_fee
    union all
    select (new.paid_at + 28800000) / 86400000, 1, new.total_fee where new.paid_at is not null
    on conflict (day) do update
        set orders = orders + excluded.orders, fen = fen + excluded.fen;
end;

create trigger orders_totals_delete after delete on orders
begin
    update order_totals_by_day
        set orders = orders - 1, fen = fen - old.total_fee
        where day = (old.created_at + 28800000) / 86400000 and status = old.status;
    update order_totals_by_band
        set orders = orders - 1, fen = fen - old.total_fee
        where band = old.total_fee / 100 and status = old.status;
    update order_totals_paid_by_day
        set orders = orders - 1, fen = fen - old.total_fee
        where old.paid_at is not null and day = (old.paid_at + 28800000) / 86400000;
end;
