-- Only refund notifications carry out_refund_no. Indexing the NULLs of every payment
-- notification cost each payment's commit one more page in the write-ahead log (about one
-- frame in eighteen, docs/benchmarks.md) for entries no query reads: every lookup by
-- out_refund_no (`=` or `in`) implies it is not null, so SQLite still uses this index.
drop index notifications_out_refund_no_idx;
create index notifications_out_refund_no_idx on notifications (out_refund_no)
    where out_refund_no is not null;
