//! Realistic fake order history for demos and benchmarks (`paydesk seed --orders N`).
//!
//! Customers with WeChat-like openids; orders over the last `days` days with Asia/Shanghai's
//! daily rhythm (busy at lunch and in the evening), priced from the catalogue; mostly
//! `PAID`, some `CLOSED` and `PAYERROR`, a few `NOTPAY` in the last 30 minutes, some
//! refunded through real `SUCCESS` rows in `refunds`, a few of the last two days' awaiting a
//! manager's approval (`PENDING_APPROVAL`); nothing dated after now; a payment notification for every paid
//! order, plus duplicates, failing verdicts and refund notifications. WeChat Pay is never
//! called: transaction ids are made up in WeChat's shape, and the stored callback bodies
//! carry placeholder signatures (they are history to browse, not messages to verify).
//!
//! Written for speed: multi-row inserts of a few hundred rows per statement inside
//! transactions of [`COMMIT_EVERY`] orders. The caller decides whether the database may be
//! seeded (the CLI refuses outside sandbox mode).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng as _};
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use crate::orders::OrderStatus;
use crate::{now_ms, products, CoreError, Db};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    /// How many orders.
    pub orders: u64,
    /// Over how many days back from now.
    pub days: u32,
    /// The random seed; `None` for a fresh one (numbers then never collide with an earlier
    /// run's).
    pub rng_seed: Option<u64>,
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Orders inserted.
    pub orders: u64,
    /// Order lines inserted.
    pub items: u64,
    /// Customers inserted.
    pub customers: u64,
    /// Successful refunds inserted.
    pub refunds: u64,
    /// Notifications inserted.
    pub notifications: u64,
}

/// Orders per transaction: large enough that commits cost nothing, small enough that the
/// SQLite WAL stays modest and an interrupted seed keeps what it wrote.
pub const COMMIT_EVERY: u64 = 20_000;
/// Orders generated and inserted together (their ids are read back to link their lines,
/// refunds and notifications).
const ORDER_BATCH: usize = 500;
/// The most bound values in one statement. SQLite looks each `$n` parameter up by name
/// in a list while it prepares a statement, so preparing costs the square of this: 2,000
/// keeps it under a millisecond, and same-sized statements are prepared once (sqlx caches
/// them) however many batches follow.
const MAX_BINDS: usize = 2_000;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Relative order volume per Asia/Shanghai hour: quiet nights, lunch and evening peaks.
const HOURLY_WEIGHT: [u32; 24] = [
    3, 2, 1, 1, 1, 1, 2, 5, 9, 9, 10, 18, 24, 16, 9, 8, 9, 12, 20, 24, 20, 14, 8, 5,
];

const BANKS: [&str; 8] = [
    "OTHERS",
    "CMB_DEBIT",
    "ICBC_DEBIT",
    "CCB_DEBIT",
    "ABC_DEBIT",
    "CMB_CREDIT",
    "SPDB_CREDIT",
    "BOC_DEBIT",
];

const ALPHANUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const OPENID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A bound value of a generated row.
#[derive(Debug, Clone)]
enum V {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

/// Inserts `rows` (each `columns.len()` values) into `table` in as few statements as the
/// bind limit allows; with `returning`, the rows it names are returned as `(i64, String)`.
async fn insert_rows(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<V>>,
    returning: Option<&str>,
) -> Result<Vec<(i64, String)>, CoreError> {
    let mut out = Vec::new();
    let per_statement = (MAX_BINDS / columns.len()).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<V>> = rows.by_ref().take(per_statement).collect();
        let mut sql = format!("insert into {table} ({}) values ", columns.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 0..columns.len() {
                n += 1;
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${n}"));
            }
            sql.push(')');
        }
        if let Some(r) = returning {
            sql.push_str(" returning ");
            sql.push_str(r);
        }
        let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    V::Int(x) => q.bind(x),
                    V::OptInt(x) => q.bind(x),
                    V::Text(x) => q.bind(x),
                    V::OptText(x) => q.bind(x),
                };
            }
        }
        // Without `returning` the statement yields no rows.
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

fn random_text(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

fn compact(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(wxpay::wxtime::format_compact)
        .unwrap_or_default()
}

/// A creation time in the last `days` days before `now`, following [`HOURLY_WEIGHT`].
fn order_time(rng: &mut StdRng, now: i64, days: u32) -> i64 {
    let total: u32 = HOURLY_WEIGHT.iter().sum();
    let today = crate::time::shanghai_day_start(now);
    loop {
        let day = i64::from(rng.gen_range(0..days.max(1)));
        let mut pick = rng.gen_range(0..total);
        let mut hour = 0;
        for (h, w) in HOURLY_WEIGHT.iter().enumerate() {
            if pick < *w {
                hour = h as i64;
                break;
            }
            pick -= w;
        }
        let at = today - day * DAY_MS + hour * HOUR_MS + rng.gen_range(0..HOUR_MS);
        if at < now && at >= now - i64::from(days) * DAY_MS {
            return at;
        }
    }
}

/// A customer index, skewed so a few regulars order often and most customers rarely.
fn pick_customer(rng: &mut StdRng, customers: usize) -> usize {
    let u: f64 = rng.gen();
    ((u * u * u) * customers as f64) as usize % customers
}

/// Fills the database with fake history (see the module docs). `progress` is called with the
/// number of orders written after each transaction.
pub async fn seed(
    db: &Db,
    options: SeedOptions,
    mut progress: impl FnMut(u64),
) -> Result<SeedReport, CoreError> {
    let mut rng = match options.rng_seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    };
    let mut report = SeedReport::default();
    products::seed_demo(db).await?;
    let mut catalogue: Vec<(i64, String, i64)> = products::list_active(db)
        .await?
        .into_iter()
        .map(|p| (p.id, p.name, p.price_fen))
        .collect();
    if catalogue.is_empty() {
        catalogue = products::list_all(db)
            .await?
            .into_iter()
            .map(|p| (p.id, p.name, p.price_fen))
            .collect();
    }
    let now = now_ms();
    let n = options.orders;
    let customer_count = (n / 6).clamp(1, 2_000_000) as usize;
    // Regular openids share the app's prefix, like WeChat's do (28 characters).
    let app_prefix = format!("o{}", random_text(&mut rng, OPENID_CHARS, 5));
    let openids: Vec<String> = (0..customer_count)
        .map(|_| format!("{app_prefix}{}", random_text(&mut rng, OPENID_CHARS, 22)))
        .collect();
    let mut seen: Vec<Option<(i64, i64)>> = vec![None; customer_count];

    let mut times: Vec<i64> = (0..n)
        .map(|_| order_time(&mut rng, now, options.days))
        .collect();
    times.sort_unstable();

    let mut written = 0u64;
    let mut tx = db.writer().begin().await?;
    for batch in times.chunks(ORDER_BATCH) {
        let mut orders = Vec::with_capacity(batch.len());
        let mut details = Vec::with_capacity(batch.len());
        for &created_at in batch {
            let c = pick_customer(&mut rng, customer_count);
            seen[c] = Some(match seen[c] {
                Some((first, last)) => (first.min(created_at), last.max(created_at)),
                None => (created_at, created_at),
            });
            let lines: Vec<(i64, String, i64, i64)> = (0..rng.gen_range(1..=3))
                .map(|_| {
                    let (id, name, price) = &catalogue[rng.gen_range(0..catalogue.len())];
                    let qty = if rng.gen_bool(0.8) { 1 } else { 2 };
                    (*id, name.clone(), *price, qty)
                })
                .collect();
            let total: i64 = lines.iter().map(|l| l.2 * l.3).sum();
            let count: i64 = lines.iter().map(|l| l.3).sum();
            let description = if count == 1 {
                lines[0].1.clone()
            } else {
                format!("{} 等{count}件", lines[0].1)
            };
            let recent = created_at > now - HOUR_MS / 2;
            // A refund is asked for, decided and paid out after the payment: only orders an
            // hour old have the room for one before now.
            let refundable = created_at < now - HOUR_MS;
            let roll: f64 = rng.gen();
            let status = if recent && roll < 0.3 {
                OrderStatus::NotPay
            } else if roll < 0.06 {
                OrderStatus::Closed
            } else if roll < 0.075 {
                OrderStatus::PayError
            } else if refundable && roll < 0.095 {
                OrderStatus::Refunded
            } else if refundable && roll < 0.11 {
                OrderStatus::PartiallyRefunded
            } else {
                OrderStatus::Paid
            };
            let no = format!(
                "PD{}{}",
                compact(created_at),
                random_text(&mut rng, ALPHANUM, 12)
            );
            // Paid within 90 s of ordering, and never after now.
            let paid_at = status.was_paid().then(|| {
                let latest = (now - created_at).clamp(1, 90_000);
                created_at + rng.gen_range(latest.min(4_000) - 1..latest)
            });
            // 28 digits, as WeChat's are (docs/wechatpay-v2.md §10.1).
            let transaction_id = paid_at.map(|p| {
                format!(
                    "4200{:06}{}{:010}",
                    rng.gen_range(100_000..300_000),
                    &compact(p)[..8],
                    rng.gen_range(0..10_000_000_000u64)
                )
            });
            let expires_at = created_at + 30 * 60_000;
            let updated_at = match status {
                OrderStatus::NotPay => created_at,
                OrderStatus::Closed => expires_at,
                _ => paid_at.unwrap_or(created_at + 20_000),
            };
            orders.push(vec![
                V::Text(no.clone()),
                V::Text(openids[c].clone()),
                V::Text(description),
                V::Int(total),
                V::Text(status.as_str().into()),
                V::Text("MD5".into()),
                V::Text(format!(
                    "wx{}{}",
                    &compact(created_at)[2..],
                    random_text(&mut rng, ALPHANUM, 18).to_lowercase()
                )),
                V::Int(created_at + 2 * HOUR_MS),
                V::OptText(transaction_id.clone()),
                V::OptText(paid_at.map(|_| BANKS[rng.gen_range(0..BANKS.len())].into())),
                V::OptInt(paid_at),
                V::Text(format!(
                    "{}.{}.{}.{}",
                    rng.gen_range(36..223),
                    rng.gen_range(0..255),
                    rng.gen_range(0..255),
                    rng.gen_range(1..255)
                )),
                V::Int(expires_at),
                V::OptInt((status == OrderStatus::NotPay).then_some(created_at + 60_000)),
                V::Int(created_at),
                V::Int(updated_at),
            ]);
            details.push(Detail {
                no,
                openid: c,
                total,
                status,
                paid_at,
                transaction_id,
                lines,
                created_at,
            });
        }
        let ids = insert_rows(
            &mut tx,
            "orders",
            &[
                "out_trade_no",
                "openid",
                "description",
                "total_fee",
                "status",
                "sign_type",
                "prepay_id",
                "prepay_expires_at",
                "transaction_id",
                "bank_type",
                "paid_at",
                "client_ip",
                "expires_at",
                "next_sync_at",
                "created_at",
                "updated_at",
            ],
            orders,
            Some("id, out_trade_no"),
        )
        .await?;
        let ids: std::collections::HashMap<String, i64> =
            ids.into_iter().map(|(id, no)| (no, id)).collect();
        let mut rows = Rows::default();
        for d in &details {
            let id = *ids
                .get(&d.no)
                .ok_or_else(|| anyhow::anyhow!("inserted order {} not returned", d.no))?;
            d.related_rows(id, &openids[d.openid], now, &mut rng, &mut rows);
        }
        report.items += rows.items.len() as u64;
        report.refunds += rows.refunds.len() as u64;
        report.notifications += rows.notifications.len() as u64;
        rows.insert(&mut tx).await?;
        written += batch.len() as u64;
        if written.is_multiple_of(COMMIT_EVERY) {
            tx.commit().await?;
            progress(written);
            tx = db.writer().begin().await?;
        }
    }
    report.orders = written;

    // Customers last: their first and last visits come from their orders.
    let customers: Vec<Vec<V>> = openids
        .iter()
        .zip(&seen)
        .filter_map(|(openid, seen)| {
            let (first, last) = (*seen)?;
            Some(vec![
                V::Text(openid.clone()),
                V::Int(first),
                V::Int(last),
                V::Int(first),
                V::Int(last),
            ])
        })
        .collect();
    report.customers = customers.len() as u64;
    insert_rows(
        &mut tx,
        "customers",
        &[
            "openid",
            "first_seen",
            "last_seen",
            "created_at",
            "updated_at",
        ],
        customers,
        None,
    )
    .await?;
    tx.commit().await?;
    // PostgreSQL: fold the running totals' log (two rows per order here) now rather than
    // leave it to the first server's job.
    crate::orders::totals::fold(db).await?;
    progress(written);
    Ok(report)
}

/// What one generated order needs beyond its own row.
struct Detail {
    no: String,
    openid: usize,
    total: i64,
    status: OrderStatus,
    paid_at: Option<i64>,
    transaction_id: Option<String>,
    lines: Vec<(i64, String, i64, i64)>,
    created_at: i64,
}

/// The rows that hang off one batch of orders.
#[derive(Default)]
struct Rows {
    items: Vec<Vec<V>>,
    refunds: Vec<Vec<V>>,
    notifications: Vec<Vec<V>>,
}

const NOTIFICATION_COLUMNS: [&str; 16] = [
    "kind",
    "received_at",
    "peer",
    "raw_body",
    "out_trade_no",
    "transaction_id",
    "total_fee",
    "verdict",
    "detail",
    "reply",
    "duration_us",
    "order_id",
    "created_at",
    "updated_at",
    "out_refund_no",
    "refund_fee",
];

impl Rows {
    async fn insert(self, tx: &mut Transaction<'static, Any>) -> Result<(), CoreError> {
        insert_rows(
            tx,
            "order_items",
            &[
                "order_id",
                "product_id",
                "name",
                "unit_price_fen",
                "quantity",
                "created_at",
                "updated_at",
            ],
            self.items,
            None,
        )
        .await?;
        insert_rows(
            tx,
            "refunds",
            &[
                "out_refund_no",
                "order_id",
                "amount_fen",
                "reason",
                "requester_kind",
                "requester",
                "status",
                "decided_by",
                "decided_at",
                "decision_reason",
                "refund_id",
                "attempts",
                "succeeded_at",
                "accepted_at",
                "refund_recv_accout",
                "created_at",
                "updated_at",
            ],
            self.refunds,
            None,
        )
        .await?;
        insert_rows(
            tx,
            "notifications",
            &NOTIFICATION_COLUMNS,
            self.notifications,
            None,
        )
        .await?;
        Ok(())
    }
}

/// WeChat Pay's callback addresses are in a few known ranges.
fn peer(rng: &mut StdRng) -> String {
    let prefix = ["101.226.103", "101.226.62", "183.3.234", "58.251.80"][rng.gen_range(0..4)];
    format!(
        "{prefix}.{}:{}",
        rng.gen_range(1..255),
        rng.gen_range(20000..60000)
    )
}

impl Detail {
    /// Nothing is dated after `now`.
    fn related_rows(&self, id: i64, openid: &str, now: i64, rng: &mut StdRng, rows: &mut Rows) {
        for (product_id, name, price, qty) in &self.lines {
            rows.items.push(vec![
                V::Int(id),
                V::Int(*product_id),
                V::Text(name.clone()),
                V::Int(*price),
                V::Int(*qty),
                V::Int(self.created_at),
                V::Int(self.created_at),
            ]);
        }
        let (Some(paid_at), Some(txid)) = (self.paid_at, &self.transaction_id) else {
            return;
        };
        let body = payment_body(rng, openid, &self.no, txid, self.total, paid_at);
        let received = (paid_at + rng.gen_range(200..3_000)).min(now);
        let notification = |at: i64, verdict: &str, detail: &str, reply: &str, order: bool| {
            vec![
                V::Text("payment".into()),
                V::Int(at),
                V::Text(String::new()),
                V::Text(body.clone()),
                V::Text(self.no.clone()),
                V::Text(txid.clone()),
                V::Int(self.total),
                V::Text(verdict.into()),
                V::Text(detail.into()),
                V::Text(reply.into()),
                V::Int(0),
                V::OptInt(order.then_some(id)),
                V::Int(at),
                V::Int(at),
                V::OptText(None),
                V::OptInt(None),
            ]
        };
        let mut push = |mut row: Vec<V>, rng: &mut StdRng| {
            row[2] = V::Text(peer(rng));
            row[10] = V::Int(rng.gen_range(700..6_000));
            rows.notifications.push(row);
        };
        // A tampered copy that arrived first, refused (WeChat's own retry then applied).
        let roll: f64 = rng.gen();
        if roll < 0.003 {
            push(
                notification(
                    received - 1_000,
                    "bad_signature",
                    "signature mismatch (MD5): the message was changed or signed with another key",
                    "FAIL",
                    false,
                ),
                rng,
            );
        } else if roll < 0.004 {
            push(
                notification(
                    received - 1_000,
                    "amount_mismatch",
                    "total_fee differs from the order's",
                    "FAIL",
                    true,
                ),
                rng,
            );
        }
        push(
            notification(received, "applied", "NOTPAY → PAID", "SUCCESS", true),
            rng,
        );
        // WeChat repeats a notification it did not see answered in time.
        if rng.gen_bool(0.03) {
            push(
                notification(
                    (received + rng.gen_range(15_000..300_000)).min(now),
                    "duplicate",
                    "already PAID: nothing changed",
                    "SUCCESS",
                    true,
                ),
                rng,
            );
        }
        // A few of the last two days' shoppers asked for their money back and wait for a
        // manager (the Refunds page has something to decide).
        if self.status == OrderStatus::Paid && paid_at > now - 2 * DAY_MS && rng.gen_bool(0.03) {
            let asked = paid_at + rng.gen_range(0..=(now - paid_at) / 2);
            let reason = ["不想要了", "拍错了", "重复下单"][rng.gen_range(0..3)];
            rows.refunds.push(vec![
                V::Text(format!(
                    "RF{}{}",
                    compact(asked),
                    random_text(rng, ALPHANUM, 10)
                )),
                V::Int(id),
                V::Int(self.total),
                V::Text(reason.into()),
                V::Text("customer".into()),
                V::Text(format!("customer {openid}")),
                V::Text("PENDING_APPROVAL".into()),
                V::OptText(None),
                V::OptInt(None),
                V::OptText(None),
                V::OptText(None),
                V::Int(0),
                V::OptInt(None),
                V::OptInt(None),
                V::OptText(None),
                V::Int(asked),
                V::Int(asked),
            ]);
            return;
        }
        let refund = match self.status {
            OrderStatus::Refunded => self.total,
            OrderStatus::PartiallyRefunded if self.total > 1 => rng.gen_range(1..self.total),
            _ => return,
        };
        // Asked for within three days of paying, decided within four hours, paid out within
        // two minutes, and notified 1.5 s later: each step fits in what is left before now
        // (a refunded order is at least an hour old).
        let later = |rng: &mut StdRng, from: i64, min: i64, max: i64| {
            let room = (now - 2_000 - from) / 3;
            from + rng.gen_range(min.min(room / 2).max(0)..=max.min(room).max(0))
        };
        let asked = later(rng, paid_at, 10 * 60_000, 3 * DAY_MS);
        let decided = later(rng, asked, 60_000, 4 * HOUR_MS);
        let succeeded = later(rng, decided, 5_000, 120_000);
        let out_refund_no = format!("RF{}{}", compact(asked), random_text(rng, ALPHANUM, 10));
        let refund_id = format!(
            "5030{:04}{}{:013}",
            rng.gen_range(1000..3000),
            &compact(succeeded)[..8],
            rng.gen_range(0..10_000_000_000_000u64)
        );
        let reason =
            ["不想要了", "拍错了", "商品缺货", "重复下单", "口味不满意"][rng.gen_range(0..5)];
        rows.refunds.push(vec![
            V::Text(out_refund_no.clone()),
            V::Int(id),
            V::Int(refund),
            V::Text(reason.into()),
            V::Text("customer".into()),
            V::Text(format!("customer {openid}")),
            V::Text("SUCCESS".into()),
            V::Text("manager".into()),
            V::Int(decided),
            V::Text("同意退款".into()),
            V::Text(refund_id),
            V::Int(1),
            V::Int(succeeded),
            // Sent and accepted as soon as it was decided.
            V::Int(decided),
            V::Text("支付用户零钱".into()),
            V::Int(asked),
            V::Int(succeeded),
        ]);
        let mut req_info = vec![0u8; 480];
        rng.fill(&mut req_info[..]);
        use base64::Engine as _;
        let encrypted = base64::engine::general_purpose::STANDARD.encode(&req_info);
        rows.notifications.push(vec![
            V::Text("refund".into()),
            V::Int(succeeded + 1_500),
            V::Text(peer(rng)),
            V::Text(format!(
                "<xml><return_code>SUCCESS</return_code><appid><![CDATA[{APPID}]]></appid>\
                 <mch_id><![CDATA[{MCH_ID}]]></mch_id><nonce_str><![CDATA[{}]]></nonce_str>\
                 <req_info><![CDATA[{encrypted}]]></req_info></xml>",
                random_text(rng, ALPHANUM, 32)
            )),
            V::Text(self.no.clone()),
            V::Text(txid.clone()),
            V::Int(self.total),
            V::Text("applied".into()),
            V::Text("refund SUCCESS".into()),
            V::Text("SUCCESS".into()),
            V::Int(rng.gen_range(900..7_000)),
            V::Int(id),
            V::Int(succeeded + 1_500),
            V::Int(succeeded + 1_500),
            V::Text(out_refund_no),
            V::Int(refund),
        ]);
    }
}

/// The simulator's default merchant, so seeded bodies look like the sandbox's own.
const APPID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";

/// A payment notification body as WeChat Pay sends it (docs/wechatpay-v2.md §8.8), with a placeholder sign.
fn payment_body(
    rng: &mut StdRng,
    openid: &str,
    out_trade_no: &str,
    transaction_id: &str,
    total: i64,
    paid_at: i64,
) -> String {
    format!(
        "<xml><appid><![CDATA[{APPID}]]></appid><bank_type><![CDATA[CMB_DEBIT]]></bank_type>\
         <cash_fee><![CDATA[{total}]]></cash_fee><fee_type><![CDATA[CNY]]></fee_type>\
         <is_subscribe><![CDATA[N]]></is_subscribe><mch_id><![CDATA[{MCH_ID}]]></mch_id>\
         <nonce_str><![CDATA[{}]]></nonce_str><openid><![CDATA[{openid}]]></openid>\
         <out_trade_no><![CDATA[{out_trade_no}]]></out_trade_no>\
         <result_code><![CDATA[SUCCESS]]></result_code><return_code><![CDATA[SUCCESS]]></return_code>\
         <sign><![CDATA[{}]]></sign><time_end><![CDATA[{}]]></time_end>\
         <total_fee>{total}</total_fee><trade_type><![CDATA[JSAPI]]></trade_type>\
         <transaction_id><![CDATA[{transaction_id}]]></transaction_id></xml>",
        random_text(rng, ALPHANUM, 32),
        random_text(rng, b"0123456789ABCDEF", 32),
        compact(paid_at),
    )
}
