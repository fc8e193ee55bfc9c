-- The order detail's timeline (paydesk_core::timeline) gathers everything that happened to
-- one order. Two of its lookups had no index:
--
-- refundquery asks by out_refund_no alone (spec §8.6), so a refund call that failed before
-- any answer (timeout, certificate refused) carries no out_trade_no: it is found by the
-- order's refund numbers.
create index api_calls_out_refund_no_idx on api_calls (out_refund_no);

-- Staff actions on an order (sync, close) are audited with the order number as target; the
-- existing (action, target, created_at) index needs the action first.
create index audit_log_target_idx on audit_log (target, created_at);
