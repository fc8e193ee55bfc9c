-- The home page (paydesk_core::stats::dashboard): today's paid amount, the 14-day revenue
-- chart and the latest payments all read orders by paid_at, which had no index (a full
-- scan of a million orders). With total_fee in the index the sums are index-only ranges,
-- and the latest payments walk it backwards and stop after a few.
create index orders_paid_at_fee_idx on orders (paid_at, total_fee);
