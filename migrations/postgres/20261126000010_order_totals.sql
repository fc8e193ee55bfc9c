-- Running totals of orders, so the sums the dashboard shows do not read every order:
-- the orders page's count and sum over the whole table or a status (a million index
-- entries, 95–250 ms at a million orders), the amount-range sums, and the home page's
-- success rate and fourteen-day chart (docs/benchmarks.md, "Order totals").
--
--   order_totals_by_day       per Asia/Shanghai calendar day of created_at, per status
--   order_totals_by_band      per whole yuan of total_fee (total_fee / 100), per status
--   order_totals_paid_by_day  per Asia/Shanghai calendar day of paid_at (paid, refunded
--                             later or not)
--
-- A day is (ms + 8 h) / 24 h, integer division: China has had no daylight saving since
-- 1991. `orders` are counted in `orders`, their total_fee in `fen`.
--
-- Unlike SQLite (one writer, so its triggers update the totals in place), PostgreSQL runs
-- many writers at once, possibly from several instances: updating today's row from every
-- transaction that creates or pays an order would queue them all behind its row lock (and
-- could deadlock batches that touch two days in different orders). So the trigger only
-- appends signed changes to order_totals_log, which takes no shared lock, and
-- paydesk_core::order_totals::fold moves the log into the totals in one statement (a job
-- does it every two seconds). Readers add the log's rows to the totals' in the same
-- statement, so a sum is exact whether or not the log has been folded.
create table order_totals_by_day (
    day bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (day, status)
);

create table order_totals_by_band (
    band bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (band, status)
);

create table order_totals_paid_by_day (
    day bigint not null primary key,
    orders bigint not null,
    fen bigint not null
);

-- A status change: day, band and status set, paid_day null. A payment: paid_day set,
-- the others null.
create table order_totals_log (
    day bigint,
    band bigint,
    status text,
    paid_day bigint,
    orders bigint not null,
    fen bigint not null
);

insert into order_totals_by_day (day, status, orders, fen)
select (created_at + 28800000) / 86400000, status, count(*), sum(total_fee)
from orders group by 1, 2;

insert into order_totals_by_band (band, status, orders, fen)
select total_fee / 100, status, count(*), sum(total_fee)
from orders group by 1, 2;

insert into order_totals_paid_by_day (day, orders, fen)
select (paid_at + 28800000) / 86400000, count(*), sum(total_fee)
from orders where paid_at is not null group by 1;

create function order_totals_track() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into order_totals_log (day, band, status, orders, fen)
        values ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status,
                1, new.total_fee);
        if new.paid_at is not null then
            insert into order_totals_log (paid_day, orders, fen)
            values ((new.paid_at + 28800000) / 86400000, 1, new.total_fee);
        end if;
    elsif tg_op = 'DELETE' then
        insert into order_totals_log (day, band, status, orders, fen)
        values ((old.created_at + 28800000) / 86400000, old.total_fee / 100, old.status,
                -1, -old.total_fee);
        if old.paid_at is not null then
            insert into order_totals_log (paid_day, orders, fen)
            values ((old.paid_at + 28800000) / 86400000, -1, -old.total_fee);
        end if;
    else
        if old.status is distinct from new.status
            or old.total_fee is distinct from new.total_fee
            or old.created_at is distinct from new.created_at then
            insert into order_totals_log (day, band, status, orders, fen)
            values ((old.created_at + 28800000) / 86400000, old.total_fee / 100, old.status,
                    -1, -old.total_fee),
                   ((new.created_at + 28800000) / 86400000, new.total_fee / 100, new.status,
                    1, new.total_fee);
        end if;
        if old.paid_at is distinct from new.paid_at
            or (new.paid_at is not null and old.total_fee is distinct from new.total_fee) then
            if old.paid_at is not null then
                insert into order_totals_log (paid_day, orders, fen)
                values ((old.paid_at + 28800000) / 86400000, -1, -old.total_fee);
            end if;
            if new.paid_at is not null then
                insert into order_totals_log (paid_day, orders, fen)
                values ((new.paid_at + 28800000) / 86400000, 1, new.total_fee);
            end if;
        end if;
    end if;
    return null;
end
$$;

create trigger orders_totals
after insert or update of status, total_fee, created_at, paid_at or delete on orders
for each row execute function order_totals_track();
