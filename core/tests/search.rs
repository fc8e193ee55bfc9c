//! Repository tests for finding orders (`orders::{list, lookup, export}`), on SQLite and (when
//! configured) PostgreSQL: keyset pages cover every matching order exactly once and in
//! order, totals agree with the pages, the search box finds every id kind, support's lookup
//! by amount and time, and the CSV export.

use paydesk_core::audit::{self, action, Actor};
use paydesk_core::orders::export::{self, export_csv};
use paydesk_core::orders::filter::OrderFilter;
use paydesk_core::orders::list::{list_orders, page_and_totals, totals};
use paydesk_core::orders::lookup::{find_by_any_id, lookup, Found};
use paydesk_core::orders::{Order, OrderStatus};
use paydesk_core::sql::Cursor;
use paydesk_core::testing::databases;
use paydesk_core::{now_ms, Db};

const MINUTE: i64 = 60_000;
const OPENID_A: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";
const OPENID_B: &str = "oUpF8uN95-Ptaags6E_roPHg7AG0";

/// One fixture order as inserted.
#[derive(Debug, Clone)]
struct Row {
    no: String,
    status: OrderStatus,
    fee: i64,
    created_at: i64,
    openid: &'static str,
}

/// 90 orders over ten days: two at each minute (so the keyset's `id` tie-break matters),
/// every status, amounts 1.00–5.99, two customers.
async fn fixture(db: &Db, now: i64) -> Vec<Row> {
    let start = now - 10 * 24 * 60 * MINUTE;
    let mut rows = Vec::new();
    for i in 0..90i64 {
        let row = Row {
            no: format!("S{i:04}"),
            status: OrderStatus::ALL[(i % 6) as usize],
            fee: 100 + (i * 37) % 500,
            created_at: start + (i / 2) * 300 * MINUTE,
            openid: if i % 3 == 0 { OPENID_A } else { OPENID_B },
        };
        let paid = row.status.was_paid();
        sqlx::query(
            r#"insert into orders (out_trade_no, openid, description, total_fee, status,
                   sign_type, transaction_id, paid_at, created_at, updated_at)
               values ($1, $2, $3, $4, $5, 'MD5', $6, $7, $8, $8)"#,
        )
        .bind(&row.no)
        .bind(row.openid)
        .bind(if i == 7 {
            "茶, \"特级\""
        } else {
            "燕麦拿铁"
        })
        .bind(row.fee)
        .bind(row.status.as_str())
        .bind(paid.then(|| format!("42000000{i:020}")))
        .bind(paid.then_some(row.created_at + MINUTE))
        .bind(row.created_at)
        .execute(db.writer())
        .await
        .unwrap();
        rows.push(row);
    }
    rows
}

/// What `filter` should select from the fixture, newest first.
fn expected(rows: &[Row], f: &OrderFilter) -> Vec<String> {
    let mut hits: Vec<(i64, usize, &Row)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            (f.statuses.is_empty() || f.statuses.contains(&r.status))
                && f.created_from.is_none_or(|t| r.created_at >= t)
                && f.created_to.is_none_or(|t| r.created_at < t)
                && f.min_fee.is_none_or(|m| r.fee >= m)
                && f.max_fee.is_none_or(|m| r.fee <= m)
                && f.openid.as_deref().is_none_or(|o| r.openid == o)
        })
        .map(|(i, r)| (r.created_at, i, r))
        .collect();
    // Ids follow insertion order, so the index stands in for the id.
    hits.sort_by_key(|h| std::cmp::Reverse((h.0, h.1)));
    hits.into_iter().map(|(_, _, r)| r.no.clone()).collect()
}

fn filters(now: i64) -> Vec<(&'static str, OrderFilter)> {
    let day = 24 * 60 * MINUTE;
    vec![
        ("everything", OrderFilter::default()),
        (
            "paid",
            OrderFilter {
                statuses: vec![OrderStatus::Paid],
                ..Default::default()
            },
        ),
        (
            "refunded either way",
            OrderFilter {
                statuses: vec![OrderStatus::Refunded, OrderStatus::PartiallyRefunded],
                ..Default::default()
            },
        ),
        (
            "last 3 days",
            OrderFilter {
                created_from: Some(now - 3 * day),
                ..Default::default()
            },
        ),
        (
            "amount 2.00–4.00",
            OrderFilter {
                min_fee: Some(200),
                max_fee: Some(400),
                ..Default::default()
            },
        ),
        (
            // 18 of 90: cheaper through the amount index than walking time (list.rs, Walk).
            "a rare amount range",
            OrderFilter {
                min_fee: Some(500),
                max_fee: Some(599),
                ..Default::default()
            },
        ),
        (
            "an exact amount",
            OrderFilter {
                min_fee: Some(137),
                max_fee: Some(137),
                ..Default::default()
            },
        ),
        (
            "paid or closed, a date window",
            OrderFilter {
                statuses: vec![OrderStatus::Paid, OrderStatus::Closed],
                created_from: Some(now - 8 * day),
                created_to: Some(now - 2 * day),
                ..Default::default()
            },
        ),
        (
            "one customer",
            OrderFilter {
                openid: Some(OPENID_A.into()),
                min_fee: Some(150),
                ..Default::default()
            },
        ),
    ]
}

#[tokio::test]
async fn keyset_pages_cover_every_matching_order_once_in_order_and_totals_agree() {
    for t in databases().await {
        let now = now_ms();
        let rows = fixture(&t.db, now).await;
        for (name, filter) in filters(now) {
            let want = expected(&rows, &filter);
            assert!(!want.is_empty(), "{}: {name}: empty fixture", t.label);
            let mut got = Vec::new();
            let mut after: Option<Cursor> = None;
            loop {
                // Through the opaque text, as the page will pass it.
                let page = list_orders(&t.db, &filter, after.as_ref(), 7)
                    .await
                    .unwrap();
                assert!(page.orders.len() <= 7);
                got.extend(page.orders.iter().map(|o| o.out_trade_no.clone()));
                match page.next {
                    Some(next) => after = Some(Cursor::decode(&next.encode()).unwrap()),
                    None => break,
                }
            }
            assert_eq!(got, want, "{}: {name}", t.label);

            let (count, sum) = totals(&t.db, &filter).await.unwrap();
            let want_sum: i64 = rows
                .iter()
                .filter(|r| want.contains(&r.no))
                .map(|r| r.fee)
                .sum();
            assert_eq!(
                (count, sum),
                (want.len() as i64, want_sum),
                "{}: {name}",
                t.label
            );
            // The page view's pair: the same first page and the same totals.
            let (first, both) = page_and_totals(&t.db, &filter, None, 7).await.unwrap();
            assert_eq!(both, (count, sum), "{}: {name}", t.label);
            assert_eq!(
                first,
                list_orders(&t.db, &filter, None, 7).await.unwrap(),
                "{}: {name}",
                t.label
            );
        }
        // An exact page size ends without an empty extra page; limits are clamped.
        let all = list_orders(&t.db, &OrderFilter::default(), None, 90)
            .await
            .unwrap();
        assert_eq!((all.orders.len(), all.next), (90, None), "{}", t.label);
        let one = list_orders(&t.db, &OrderFilter::default(), None, 0)
            .await
            .unwrap();
        assert_eq!(one.orders.len(), 1, "{}", t.label);
        let none = OrderFilter {
            min_fee: Some(1_000_000),
            ..Default::default()
        };
        assert_eq!(totals(&t.db, &none).await.unwrap(), (0, 0), "{}", t.label);
        let empty = list_orders(&t.db, &none, None, 7).await.unwrap();
        assert_eq!((empty.orders.len(), empty.next), (0, None), "{}", t.label);
    }
}

async fn add_refund(db: &Db, order: &str, out_refund_no: &str, refund_id: &str) {
    let now = now_ms();
    sqlx::query(
        r#"insert into refunds (out_refund_no, order_id, amount_fen, reason, requester_kind,
               requester, status, refund_id, created_at, updated_at)
           values ($1, (select id from orders where out_trade_no = $2), 100, 'test',
               'customer', 'customer', 'SUCCESS', $3, $4, $4)"#,
    )
    .bind(out_refund_no)
    .bind(order)
    .bind(refund_id)
    .bind(now)
    .execute(db.writer())
    .await
    .unwrap();
}

fn order_no(found: Found) -> String {
    match found {
        Found::Order(o) => o.out_trade_no,
        other => panic!("expected an order, got {other:?}"),
    }
}

#[tokio::test]
async fn the_search_box_finds_every_id_kind_exactly() {
    for t in databases().await {
        let db = &t.db;
        let now = now_ms();
        fixture(db, now).await;
        add_refund(
            db,
            "S0004",
            "RF20261122153000abcdefghij",
            "50000000382019052709732678859",
        )
        .await;

        let by = |text: &'static str| async move { find_by_any_id(db, text).await.unwrap() };
        assert_eq!(order_no(by("S0013").await), "S0013", "{}", t.label);
        assert_eq!(order_no(by("  S0013\n").await), "S0013", "{}", t.label);
        assert_eq!(
            order_no(by("4200000000000000000000000001").await),
            "S0001",
            "{}",
            t.label
        );
        assert_eq!(
            order_no(by("RF20261122153000abcdefghij").await),
            "S0004",
            "{}",
            t.label
        );
        assert_eq!(
            order_no(by("50000000382019052709732678859").await),
            "S0004",
            "{}",
            t.label
        );
        match by(OPENID_A).await {
            Found::Customer { openid, orders } => {
                assert_eq!(openid, OPENID_A);
                assert_eq!(orders.len(), 30, "{}", t.label);
                assert!(orders.iter().all(|o| o.openid == OPENID_A));
                assert!(orders
                    .windows(2)
                    .all(|w| w[0].created_at >= w[1].created_at));
            }
            other => panic!("{}: expected the customer, got {other:?}", t.label),
        }
        for miss in [
            "",
            "   ",
            "S9999",
            "s0013",
            "S00",
            "S0013 S0014",
            &"x".repeat(65),
        ] {
            assert_eq!(
                by_owned(db, miss).await,
                Found::Nothing,
                "{}: {miss:?}",
                t.label
            );
        }
    }
}

async fn by_owned(db: &Db, text: &str) -> Found {
    find_by_any_id(db, text).await.unwrap()
}

fn nos(orders: &[Order]) -> Vec<&str> {
    orders.iter().map(|o| o.out_trade_no.as_str()).collect()
}

#[tokio::test]
async fn support_looks_up_by_id_or_by_amount_and_approximate_time() {
    for t in databases().await {
        let db = &t.db;
        let now = now_ms();
        fixture(db, now).await;
        // Three orders of ¥66.66: an hour ago, five days ago, twenty days ago.
        for (no, ago) in [("L1", 60), ("L2", 5 * 24 * 60), ("L3", 20 * 24 * 60)] {
            sqlx::query(
                r#"insert into orders (out_trade_no, openid, description, total_fee, status,
                       sign_type, created_at, updated_at)
                   values ($1, $2, 'x', 6666, 'PAID', 'MD5', $3, $3)"#,
            )
            .bind(no)
            .bind(OPENID_B)
            .bind(now - ago * MINUTE)
            .execute(db.writer())
            .await
            .unwrap();
        }
        let l2_at = now - 5 * 24 * 60 * MINUTE + 70 * MINUTE;
        let l2_time = paydesk_types::format_shanghai(l2_at);
        let l2_text = &l2_time[..16]; // YYYY-MM-DD HH:MM, 70 minutes off

        assert_eq!(
            nos(&lookup(db, "66.66").await.unwrap()),
            ["L1", "L2"],
            "{}",
            t.label
        );
        assert_eq!(
            nos(&lookup(db, "¥66.66").await.unwrap()),
            ["L1", "L2"],
            "{}",
            t.label
        );
        assert_eq!(
            nos(&lookup(db, &format!("￥66.66 {l2_text}")).await.unwrap()),
            ["L2"],
            "{}",
            t.label
        );
        assert!(lookup(db, "66.67").await.unwrap().is_empty(), "{}", t.label);
        assert!(lookup(db, "66.66 昨天 下午3点").await.unwrap().is_empty());
        // Ids work here too.
        assert_eq!(nos(&lookup(db, " S0002 ").await.unwrap()), ["S0002"]);
        assert_eq!(lookup(db, OPENID_A).await.unwrap().len(), 30);
    }
}

#[tokio::test]
async fn csv_export_has_the_header_and_exactly_the_filtered_rows() {
    for t in databases().await {
        let db = &t.db;
        let now = now_ms();
        let rows = fixture(db, now).await;
        let filter = OrderFilter {
            statuses: vec![OrderStatus::PayError, OrderStatus::NotPay],
            ..Default::default()
        };
        let mut out: Vec<u8> = Vec::new();
        let written = export_csv(db, &filter, &mut out).await.unwrap();
        let text = String::from_utf8(out).unwrap();
        let text = text
            .strip_prefix('\u{feff}')
            .expect("a UTF-8 byte-order mark");
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines[0], export::CSV_HEADER.join(","));
        let want = expected(&rows, &filter);
        assert_eq!(written as usize, want.len());
        let got: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(got, want, "{}", t.label);

        // Amounts as yuan text, Shanghai times, quoted text.
        let mut out: Vec<u8> = Vec::new();
        export_csv(
            db,
            &OrderFilter {
                statuses: vec![OrderStatus::Paid],
                ..Default::default()
            },
            &mut out,
        )
        .await
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let s7 = &rows[7];
        let line = text
            .lines()
            .find(|l| l.starts_with("S0007,"))
            .expect("S0007 is PAID");
        assert_eq!(
            line,
            format!(
                "S0007,4200000000000000000000000007,{},\"茶, \"\"特级\"\"\",{}.{:02},PAID,{},{},",
                s7.openid,
                s7.fee / 100,
                s7.fee % 100,
                paydesk_types::format_shanghai(s7.created_at),
                paydesk_types::format_shanghai(s7.created_at + MINUTE),
            ),
            "{}",
            t.label
        );

        // The route records the export.
        let actor = Actor::cli();
        export::record_export(db, &actor, &filter).await.unwrap();
        let log = audit::list(db, None, Some(action::ORDER_EXPORT), 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            log[0].detail.as_deref(),
            Some("orders: status NOTPAY|PAYERROR")
        );
    }
}
