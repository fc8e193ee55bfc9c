-- Indexes for the orders page, the search box, support's lookup and the CSV export
-- (paydesk_core::search). Each list query reads the newest orders first and pages on
-- (created_at, id); each totals query counts and sums total_fee. Both should be an index
-- range, and the totals an index-only one (total_fee in the index), at a million orders.

-- No status filter: the newest-first list and its keyset pages walk this index backwards;
-- a date range is a range of it; the totals of a date range never touch the table.
-- Replaces orders_created_at_idx (created_at, id), of which it is a superset.
create index orders_created_at_fee_idx on orders (created_at, id, total_fee);
drop index orders_created_at_idx;

-- A status filter (with or without a date range): an equality then the same ordered range,
-- so a page never sorts; several statuses are one branch each. total_fee makes the status
-- totals index-only. Replaces orders_status_idx (status, created_at).
create index orders_status_created_at_idx on orders (status, created_at, id, total_fee);
drop index orders_status_idx;

-- Support's lookup (an exact amount around a time) is an equality then a range; the
-- amount-range totals are one range of it, index-only.
create index orders_total_fee_created_at_idx on orders (total_fee, created_at);

-- The search box finds a refund's order by WeChat's refund_id (out_refund_no is unique
-- already). Not unique: WeChat's id is only set once the refund is accepted, and we do
-- not want a stray duplicate in a notification to fail an update.
create index refunds_refund_id_idx on refunds (refund_id);
