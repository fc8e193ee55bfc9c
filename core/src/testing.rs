//! Fresh, migrated databases for tests: a new SQLite file per test, and — when
//! `PAYDESK_TEST_POSTGRES_URL` points at a server (the test script starts one) — a new
//! PostgreSQL database per test. Tests loop over [`databases`] so every repository test
//! runs on both engines.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Context as _;
use sqlx::{Connection, Executor};

use crate::db::PoolSizes;
use crate::Db;

/// The environment variable naming the PostgreSQL server for tests (an admin URL whose user
/// may create databases).
pub const POSTGRES_ENV: &str = "PAYDESK_TEST_POSTGRES_URL";
/// When set to `1`, a missing [`POSTGRES_ENV`] fails the tests instead of skipping
/// PostgreSQL (the full test command sets it, so CI cannot silently skip a backend).
pub const REQUIRE_POSTGRES_ENV: &str = "PAYDESK_TEST_REQUIRE_POSTGRES";

/// A test database and what keeps it alive.
pub struct TestDb {
    /// The migrated database.
    pub db: Db,
    /// Its URL (for starting a server process on it).
    pub url: String,
    /// `sqlite` or `postgres`, for assertion messages.
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh migrated SQLite database in a temp folder.
pub async fn sqlite() -> anyhow::Result<TestDb> {
    sqlite_with(PoolSizes::default()).await
}

/// [`sqlite`] with other pool sizes or write-ahead log limits.
pub async fn sqlite_with(sizes: PoolSizes) -> anyhow::Result<TestDb> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/paydesk.db", dir.path().display());
    let db = Db::connect(&url, sizes).await?;
    db.migrate().await?;
    Ok(TestDb {
        db,
        url,
        label: "sqlite",
        _dir: Some(dir),
    })
}

/// A fresh migrated PostgreSQL database, or `None` when no server is configured.
pub async fn postgres() -> anyhow::Result<Option<TestDb>> {
    let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
        if std::env::var(REQUIRE_POSTGRES_ENV).as_deref() == Ok("1") {
            anyhow::bail!("{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_ENV} is not set");
        }
        return Ok(None);
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "t_{}_{}_{}",
        std::process::id(),
        crate::now_ms(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .context("connecting to the test PostgreSQL")?;
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::Relaxed) {
        drop_stale_databases(&mut admin).await;
    }
    admin
        .execute(format!(r#"create database "{name}""#).as_str())
        .await?;
    admin.close().await?;
    let url = replace_db_name(&admin_url, &name);
    let db = Db::connect(
        &url,
        PoolSizes {
            max_connections: 4,
            ..PoolSizes::default()
        },
    )
    .await?;
    db.migrate().await?;
    Ok(Some(TestDb {
        db,
        url,
        label: "postgres",
        _dir: None,
    }))
}

/// How old a test database must be before a later test run drops it: older than any run.
const STALE_AFTER_MS: i64 = 6 * 3600 * 1000;

/// Drops the databases earlier test runs left on the server (`t_<pid>_<ms>_<n>`, made more
/// than [`STALE_AFTER_MS`] ago), once per process: the script's throwaway server goes with
/// them anyway, but a developer's own server would otherwise collect one per test. One still
/// in use (connections open) is left; errors only skip the sweep.
async fn drop_stale_databases(admin: &mut sqlx::AnyConnection) {
    let names: Vec<String> = match sqlx::query_scalar(
        r"select datname::text from pg_database where datname like 't\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    {
        Ok(names) => names,
        Err(_) => return,
    };
    let cutoff = crate::now_ms() - STALE_AFTER_MS;
    for name in names {
        let made_at = name.split('_').nth(2).and_then(|ms| ms.parse::<i64>().ok());
        if made_at.is_some_and(|ms| ms < cutoff)
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            let _ = admin
                .execute(format!(r#"drop database if exists "{name}""#).as_str())
                .await;
        }
    }
}

/// Every configured backend: SQLite always, PostgreSQL when configured.
pub async fn databases() -> Vec<TestDb> {
    let mut out = vec![sqlite().await.expect("creating a SQLite test database")];
    if let Some(pg) = postgres()
        .await
        .expect("creating a PostgreSQL test database")
    {
        out.push(pg);
    }
    out
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let host_part = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// A one-line order for `no` (`fee` fen of tea, MD5-signed, no expiry) for
/// [`crate::orders::create_order`]; a test changes the fields it is about.
pub fn new_order(no: &str, fee: i64) -> crate::orders::NewOrder {
    use crate::orders::{NewOrder, NewOrderItem, OutTradeNo};
    NewOrder {
        out_trade_no: OutTradeNo::parse(no).expect("a valid out_trade_no"),
        openid: "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
        description: "paydesk test".into(),
        items: vec![NewOrderItem {
            product_id: None,
            name: "tea".into(),
            unit_price_fen: fee,
            quantity: 1,
        }],
        sign_type: wxpay::SignType::Md5,
        client_ip: Some("127.0.0.1".into()),
        idempotency_key: None,
        expires_at: None,
        next_sync_at: None,
    }
}

/// The API key of [`merchant`].
pub const MERCHANT_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// The merchant of the spec's examples (appid `wx2421b1c4370ec43b`, mch_id `10000100`, key
/// [`MERCHANT_KEY`]).
pub fn merchant() -> crate::notify::MerchantCredentials {
    crate::notify::MerchantCredentials {
        appid: "wx2421b1c4370ec43b".into(),
        mch_id: "10000100".into(),
        api_key: wxpay::ApiKey::new(MERCHANT_KEY),
    }
}

/// The fields of a successful payment notification from [`merchant`] for `no` and `fee`
/// fen (docs/wechatpay-v2.md §8.8), unsigned: a test changes or adds the fields it is about, then
/// [`signed`] makes the body.
pub fn notification_params(no: &str, fee: i64) -> wxpay::Params {
    let m = merchant();
    let mut p = wxpay::Params::new();
    for (k, v) in [
        ("return_code", "SUCCESS"),
        ("appid", m.appid.as_str()),
        ("mch_id", m.mch_id.as_str()),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("result_code", "SUCCESS"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("trade_type", "JSAPI"),
        ("bank_type", "CMB_CREDIT"),
        ("out_trade_no", no),
        ("time_end", "20261122180000"),
    ] {
        p.insert(k.into(), v.into());
    }
    // Unique per order, as WeChat Pay's are (`orders.transaction_id` is unique).
    p.insert("transaction_id".into(), format!("4200000{no}"));
    p.insert("total_fee".into(), fee.to_string());
    p
}

/// The notification body of `p`, signed with `key` by `sign_type` (a `sign` already in `p`
/// is replaced).
pub fn signed(mut p: wxpay::Params, key: &str, sign_type: wxpay::SignType) -> Vec<u8> {
    p.remove("sign");
    let sign = wxpay::sign(&p, &wxpay::ApiKey::new(key), sign_type);
    p.insert("sign".into(), sign);
    wxpay::xml::write(&p).into_bytes()
}

/// A successful payment notification from [`merchant`] for `no` and `fee` fen, MD5-signed
/// (docs/wechatpay-v2.md §8.8).
pub fn paid_notification(no: &str, fee: i64) -> Vec<u8> {
    signed(
        notification_params(no, fee),
        MERCHANT_KEY,
        wxpay::SignType::Md5,
    )
}

/// [`new_order`] stored.
pub async fn create_order(db: &Db, no: &str, fee: i64) -> crate::orders::Order {
    crate::orders::create_order(db, new_order(no, fee))
        .await
        .expect("creating a test order")
}

/// Moves order `no`'s creation `by` into the past (and returns it as stored): an order
/// old enough for closeorder (WeChat Pay takes it only 5 minutes after creation).
pub async fn backdate(db: &Db, no: &str, by: std::time::Duration) -> crate::orders::Order {
    sqlx::query("update orders set created_at = created_at - $1 where out_trade_no = $2")
        .bind(crate::time::duration_ms(by))
        .bind(no)
        .execute(db.writer())
        .await
        .expect("backdating a test order");
    stored_order(db, no).await
}

/// How far [`backdate`] moves an order that a test closes: past WeChat Pay's 5 minutes.
pub const OLD_ENOUGH_TO_CLOSE: std::time::Duration =
    std::time::Duration::from_secs(wxpay::CLOSE_AFTER.as_secs() + 60);

/// The order `no` as stored now (a test that asks knows it exists).
pub async fn stored_order(db: &Db, no: &str) -> crate::orders::Order {
    crate::orders::find_by_out_trade_no(db, no)
        .await
        .expect("reading a test order")
        .unwrap_or_else(|| panic!("order {no} is stored"))
}

/// [`new_order`] stored and marked paid (without a payment's fields).
pub async fn paid_order(db: &Db, no: &str, fee: i64) -> crate::orders::Order {
    let order = create_order(db, no, fee).await;
    crate::orders::transition(db, order.id, crate::orders::OrderStatus::Paid)
        .await
        .expect("paying a test order")
}

/// The forms of `NOTPAY → PAID` in `orders::transitions`, for a test that runs one payment
/// through each (the notification and orderquery paths run through their public functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayPath {
    /// One conditional update (a notification applied alone, orderquery).
    Single,
    /// The group commit's multi-row update.
    Batched,
    /// The group commit's statement through SQLite's C API (SQLite only).
    RawSqlite,
}

/// Pays order `id` through `path` in a transaction of its own; true when it moved the order
/// (false: it was no longer `NOTPAY`).
pub async fn pay_via(
    db: &Db,
    path: PayPath,
    id: i64,
    transaction_id: &str,
    bank_type: Option<&str>,
    paid_at: i64,
) -> anyhow::Result<bool> {
    use crate::orders::transitions::{self, Payment};
    let payment = Payment {
        transaction_id,
        bank_type,
        paid_at,
    };
    let now = crate::now_ms();
    Ok(match path {
        PayPath::Single => transitions::pay(db.writer(), id, &payment, now).await?,
        PayPath::Batched => {
            let mut tx = db.writer().begin().await?;
            let moved = transitions::batched::pay(&mut *tx, &[(id, payment)], now).await?;
            tx.commit().await?;
            moved.contains(&id)
        }
        PayPath::RawSqlite => {
            let file = db.sqlite_file().context("the raw path is SQLite's")?;
            let mut handle = crate::sqlite_raw::Handle::open(file, "pragma busy_timeout = 5000;")?;
            let pay = transitions::raw_sqlite::Pay::prepare(&mut handle)?;
            let begin = handle.prepare("begin immediate")?;
            let commit = handle.prepare("commit")?;
            handle.step(begin, &[], |_| ())?;
            let moved = pay.run(&handle, id, &payment, now)?;
            handle.step(commit, &[], |_| ())?;
            moved
        }
    })
}

/// Asserts that `err` refuses the input in `field` ([`crate::CoreError::Invalid`]); `label`
/// names the database for the failure message.
#[track_caller]
pub fn assert_invalid(err: &crate::CoreError, field: &str, label: &str) {
    assert!(
        matches!(err, crate::CoreError::Invalid { field: f, .. } if *f == field),
        "{label}: expected invalid {field}, got {err:?}"
    );
}

/// A user `name` with `password` and `role`, added by the command line as `paydesk user add`
/// does (the password really hashed, for tests that sign in).
pub async fn user(db: &Db, name: &str, password: &str, role: crate::Role) -> crate::users::User {
    crate::users::create(
        db,
        &crate::audit::Actor::cli(),
        &crate::Username::parse(name).expect("a valid username"),
        secrecy::SecretString::from(password.to_owned()),
        role,
    )
    .await
    .expect("creating a test user")
}

/// A manager inserted directly (hashing a password is not what such tests are about), as
/// the [`crate::audit::Actor`] their actions are recorded under.
pub async fn manager(db: &Db, name: &str) -> crate::audit::Actor {
    let now = crate::now_ms();
    let id: i64 = sqlx::query_scalar(
        r#"insert into users (username, password_hash, role, password_changed_at, created_at, updated_at)
           values ($1, 'x', 'manager', $2, $2, $2) returning id"#,
    )
    .bind(name)
    .bind(now)
    .fetch_one(db.writer())
    .await
    .expect("inserting a test manager");
    crate::audit::Actor {
        user_id: Some(id),
        name: name.into(),
        ip: None,
    }
}

/// The most recent notifications, newest first, optionally only those claiming
/// `out_trade_no` (what a test checks was recorded; the dashboard reads `notify::log`).
pub async fn recent_notifications(
    db: &Db,
    out_trade_no: Option<&str>,
    limit: i64,
) -> Result<Vec<crate::notify::Notification>, crate::CoreError> {
    use crate::notify::log::{StoredRow, NOTIFICATION_COLUMNS};
    use crate::notify::Notification;
    let rows = match out_trade_no {
        Some(no) => {
            sqlx::query_as::<_, StoredRow>(&format!(
                r#"select {NOTIFICATION_COLUMNS} from notifications
                   where out_trade_no = $1
                   order by id desc
                   limit $2"#
            ))
            .bind(no)
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
        None => {
            sqlx::query_as::<_, StoredRow>(&format!(
                r#"select {NOTIFICATION_COLUMNS} from notifications
                   order by id desc
                   limit $1"#
            ))
            .bind(limit)
            .fetch_all(db.reader())
            .await?
        }
    };
    rows.into_iter().map(Notification::try_from).collect()
}

/// The two statements the SQLite notification committer prepares for every payment: its
/// conditional update of the order and its `notifications` insert (for tests of how SQLite
/// runs them, core/tests/schema.rs).
pub fn sqlite_committer_statements() -> [&'static str; 2] {
    [
        crate::orders::transitions::raw_sqlite::UPDATE,
        crate::notify::SQLITE_INSERT,
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced_keeping_host_and_query() {
        assert_eq!(
            super::replace_db_name(
                "postgres://u:p@127.0.0.1:5433/postgres?sslmode=disable",
                "t1"
            ),
            "postgres://u:p@127.0.0.1:5433/t1?sslmode=disable"
        );
        assert_eq!(
            super::replace_db_name("postgres://u@h:1", "t2"),
            "postgres://u@h:1/t2"
        );
    }
}
