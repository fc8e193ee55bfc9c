-- Running totals per Asia/Shanghai day × whole yuan × status, so that an amount range
-- together with whole-day dates (the orders page's "¥100–¥150, last 7 days") is summed from
-- a few rows per day instead of every order of those days (26–47 ms at a million orders,
-- docs/benchmarks.md). Kept by the same triggers as the other totals, in the transaction
-- that changes the order; a payment's status change updates one more row pair, on today's
-- page.
create table order_totals_by_day_band (
    day bigint not null,
    band bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (day, band, status)
);

insert into order_totals_by_day_band (day, band, status, orders, fen)
select (created_at + 28800000) / 86400000, total_fee / 100, status, count(*), sum(total_fee)
from orders group by 1, 2, 3;

drop trigger orders_totals_insert;
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
    insert into order_totals_by_day_band (day, band, status, orders, fen)
    values ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status, 1,
            new.total_fee)
    on conflict (day, band, status) do update
        set orders = orders + 1, fen = fen + excluded.fen;
    insert into order_totals_paid_by_day (day, orders, fen)
    select (new.paid_at + 28800000) / 86400000, 1, new.total_fee
    where new.paid_at is not null
    on conflict (day) do update
        set orders = orders + 1, fen = fen + excluded.fen;
end;

drop trigger orders_totals_status;
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
    insert into order_totals_by_day_band (day, band, status, orders, fen)
    values ((old.created_at + 28800000) / 86400000, old.total_fee / 100, old.status, -1,
            -old.total_fee),
           ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status, 1,
            new.total_fee)
    on conflict (day, band, status) do update
        set orders = orders + excluded.orders, fen = fen + excluded.fen;
end;

drop trigger orders_totals_delete;
create trigger orders_totals_delete after delete on orders
begin
    update order_totals_by_day
        set orders = orders - 1, fen = fen - old.total_fee
        where day = (old.created_at + 28800000) / 86400000 and status = old.status;
    update order_totals_by_band
        set orders = orders - 1, fen = fen - old.total_fee
        where band = old.total_fee / 100 and status = old.status;
    update order_totals_by_day_band
        set orders = orders - 1, fen = fen - old.total_fee
        where day = (old.created_at + 28800000) / 86400000 and band = old.total_fee / 100
            and status = old.status;
    update order_totals_paid_by_day
        set orders = orders - 1, fen = fen - old.total_fee
        where old.paid_at is not null and day = (old.paid_at + 28800000) / 86400000;
end;
