-- Only paid orders in the paid_at index. Unpaid orders all had paid_at null there, sorted by
-- amount: paying one deleted its entry from a page somewhere among every unpaid order of
-- that amount, so at a million orders each payment notification read and rewrote one page
-- no other notification of its batch shared (docs/benchmarks.md, issue 18). Now a payment
-- only adds an entry at the index's end, beside the other recent payments. Every query on
-- paid_at names a paid_at bound or `paid_at is not null` (paydesk_core::stats), which the
-- partial index answers.
drop index orders_paid_at_fee_idx;
create index orders_paid_at_fee_idx on orders (paid_at, total_fee) where paid_at is not null;
