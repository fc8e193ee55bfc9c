-- A refund that ended FAILED after more than one call is asked about again with refundquery
-- (core/src/refunds.rs, RefundPolicy::failed_checks): the refund job now claims FAILED rows
-- whose next_attempt_at is set, so the schedule's index covers them too.
drop index refunds_next_attempt_at_idx;
create index refunds_next_attempt_at_idx on refunds (next_attempt_at)
    where status in ('APPROVED', 'SUBMITTED', 'PROCESSING', 'CHANGE', 'FAILED');
