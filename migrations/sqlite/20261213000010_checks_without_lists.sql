-- The status checks of the tables every payment writes, as chains of `=` instead of
-- `in (…)` lists. Same rule, same rows allowed; only how SQLite evaluates it changes.
--
-- Why: SQLite evaluates `x in ('a', 'b', 'c', …)` with more than two constants by building
-- a temporary B-tree of the constants (its own page cache included) each time the
-- statement runs, and a CHECK is evaluated on every insert and on every update of its
-- column. A payment ran three of them (orders.status, notifications.verdict,
-- alert_deliveries.status), all on the one connection that commits notifications:
-- about 2.5 µs each on the test machine, some 23 % of that connection's instructions per
-- payment (callgrind, docs/benchmarks.md, issue 18). A chain of `=` is a few comparisons.
--
-- How: SQLite's documented procedure for a table change that leaves the stored rows as
-- they are (https://www.sqlite.org/lang_altertable.html, "Making Other Kinds Of Table
-- Schema Changes"): rewrite the table's CREATE statement in sqlite_schema, reload, and
-- bump the schema version so that every other connection reloads too. The old text is
-- the one the earlier migrations wrote, character for character; `replace` leaves any
-- other text unchanged (then the check stays a list: slower, equally strict), and
-- core/tests/schema.rs fails when a payment's statements still build a temporary B-tree.
-- The new checks are exactly the old ones: the columns are `text not null`, both compare
-- with the column's binary collation, and both refuse anything but the listed names.
-- New checks over more than two values are written this way from the start
-- (migrations/README.md). The refunds table keeps its lists for now: a partial index of it
-- has one in its predicate, which the refunds job's query matches by its text, and a
-- refund is written a handful of times, not once per payment.
pragma writable_schema = on;

update sqlite_schema
set sql = replace(sql,
    'check (status in
        (''NOTPAY'', ''PAID'', ''CLOSED'', ''PAYERROR'', ''PARTIALLY_REFUNDED'', ''REFUNDED''))',
    'check (status = ''NOTPAY'' or status = ''PAID'' or status = ''CLOSED''
        or status = ''PAYERROR'' or status = ''PARTIALLY_REFUNDED'' or status = ''REFUNDED'')')
where type = 'table' and name = 'orders';

update sqlite_schema
set sql = replace(sql,
    'check (verdict in
        (''applied'', ''duplicate'', ''bad_signature'', ''malformed'', ''forbidden_xml'', ''wrong_appid'',
         ''wrong_mch_id'', ''unknown_order'', ''amount_mismatch'', ''decrypt_failed'', ''result_fail'',
         ''internal_error''))',
    'check (verdict = ''applied'' or verdict = ''duplicate'' or verdict = ''bad_signature''
        or verdict = ''malformed'' or verdict = ''forbidden_xml'' or verdict = ''wrong_appid''
        or verdict = ''wrong_mch_id'' or verdict = ''unknown_order''
        or verdict = ''amount_mismatch'' or verdict = ''decrypt_failed''
        or verdict = ''result_fail'' or verdict = ''internal_error'')')
where type = 'table' and name = 'notifications';

update sqlite_schema
set sql = replace(sql,
    'check (status in (''pending'', ''delivered'', ''failed''))',
    'check (status = ''pending'' or status = ''delivered'' or status = ''failed'')')
where type = 'table' and name = 'alert_deliveries';

-- Writing off, and this connection reads the schema again.
pragma writable_schema = reset;

-- Any other connection reloads its schema when the schema version has moved; these two
-- statements move it.
create table checks_without_lists_reload (x);
drop table checks_without_lists_reload;
