-- Running totals per Asia/Shanghai day × whole yuan × status, so that an amount range
-- together with whole-day dates (the orders page's "¥100–¥150, last 7 days") is summed from
-- a few rows per day instead of every order of those days (docs/benchmarks.md). The
-- trigger's log rows already carry day, band and status: paydesk_core's fold adds them
-- here too, and readers add the unfolded log as for the other totals.
create table order_totals_by_day_band (
    day bigint not null,
    band bigint not null,
    status text not null,
    orders bigint not null,
    fen bigint not null,
    primary key (day, band, status)
);

-- The orders as they are, less what the log holds and has not been folded yet: the next
-- fold adds those rows here as well, like everywhere else. (One statement, one snapshot:
-- a concurrent transaction is in both the orders and the log, or in neither.)
insert into order_totals_by_day_band (day, band, status, orders, fen)
select day, band, status, sum(orders), sum(fen)
from (
    select (created_at + 28800000) / 86400000 as day, total_fee / 100 as band, status,
           count(*) as orders, sum(total_fee) as fen
    from orders group by 1, 2, 3
    union all
    select day, band, status, -orders, -fen from order_totals_log where status is not null
) as t
group by day, band, status;
