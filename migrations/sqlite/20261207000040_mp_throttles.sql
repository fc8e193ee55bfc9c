-- Throttles on the mini-program API (issue 15, "Throttles that hold").
--
-- 1. The shopper's status call asks WeChat Pay's orderquery at most once per interval per
--    order, however often the mini program polls and whichever instance answers: the call
--    first claims the order with one conditional update of this column
--    (paydesk_core::orders::claim_status_query); a poll inside the interval is answered
--    from the database. No trigger watches this column (the totals' triggers name theirs).
alter table orders add column status_queried_at bigint;

-- 2. At most one open refund request by the customer per order (open: not yet final —
--    waiting for a manager, or on its way). Support can still file for the customer.
--    Requests filed twice before this rule: the later ones still waiting for a manager are
--    rejected with a reason, so the index can be built; none of them had moved money.
update refunds
set status = 'REJECTED',
    decided_by = 'paydesk',
    decided_at = cast(strftime('%s', 'now') as integer) * 1000,
    decision_reason = 'duplicate: the customer already had an open refund request for this order',
    updated_at = cast(strftime('%s', 'now') as integer) * 1000
where requester_kind = 'customer'
  and status = 'PENDING_APPROVAL'
  and exists (
      select 1 from refunds e
      where e.order_id = refunds.order_id
        and e.id <> refunds.id
        and e.requester_kind = 'customer'
        and e.status in ('PENDING_APPROVAL', 'APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE')
        and (e.status <> 'PENDING_APPROVAL' or e.id < refunds.id));
--    The index holds the request stage only (two customer requests waiting at once): a
--    refund already decided can still move (a FAILED one adopting WeChat Pay's PROCESSING
--    from a late notification or refundquery), and that must never break a constraint, or
--    the callback would be answered FAIL forever. The wider rule — no new request while
--    one is on its way — is checked in the request's transaction
--    (paydesk_core::refunds::file, order row locked on PostgreSQL, one writer on SQLite).
create unique index refunds_one_open_customer_request on refunds (order_id)
    where requester_kind = 'customer' and status = 'PENDING_APPROVAL';
