//! The database handle: one type over SQLite and PostgreSQL.
//!
//! SQLite gets a single-connection writer pool beside a reader pool. SQLite allows one
//! writer at a time anyway; funnelling writes through one connection turns lock contention
//! (`SQLITE_BUSY`, and the unretryable busy-snapshot error when a read transaction upgrades
//! to a write) into an orderly queue. PostgreSQL uses one pool for both.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::notify::GroupCommitSlot;
use crate::orders::keys::{KeyReaders, OrderKeys};
use crate::password::HashSlots;
use crate::wal::{self, Wal, WalLimits, WalStats};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database engine a [`Db`] talks to: the one named dialect switch of docs/style.md §7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (the default).
    Sqlite,
    /// A PostgreSQL server (for more than one paydesk instance).
    Postgres,
}

impl Backend {
    /// The backend a `database_url` names, or an error naming what was expected.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!(
                "database_url must start with sqlite:// or postgres:// (got {:?})",
                scheme_of(url)
            )
        }
    }
}

fn scheme_of(url: &str) -> &str {
    url.split_once(':').map(|(s, _)| s).unwrap_or(url)
}

/// A connected database: cheap to clone, shared by every request and job.
#[derive(Clone, Debug)]
pub struct Db {
    writer: AnyPool,
    reader: AnyPool,
    backend: Backend,
    /// SQLite: the database file (the notification group commit opens its own connection
    /// to it, see notify/group_commit/sqlite.rs).
    sqlite_file: Option<Arc<PathBuf>>,
    /// The payment-notification apply queue, started on first use (notify.rs, group
    /// commit). Shared by the clones, so one queue and one committing task per database.
    group_commit: Arc<GroupCommitSlot>,
    /// The immutable part of orders (id, sign_type, total_fee by out_trade_no), so that a
    /// notification need not read its order (order_keys.rs). Shared by the clones.
    order_keys: Arc<OrderKeys>,
    /// SQLite: direct reads for order-key misses (order_keys.rs).
    key_readers: Option<Arc<KeyReaders>>,
    /// SQLite: the write-ahead log's limits and state, shared with the background
    /// checkpointer and the notification committer (wal.rs).
    wal: Option<Arc<Wal>>,
    /// SQLite: [`PoolSizes::max_pages`], for connections opened later (group commit's).
    max_pages: Option<u64>,
    /// SQLite: while any clone holds this, a task checkpoints the WAL in the background.
    #[expect(
        dead_code,
        reason = "held, never read: dropping the last clone stops the checkpointer"
    )]
    checkpointer: Option<Arc<mpsc::Sender<()>>>,
    /// The bound on concurrent password hashing for everything using this database
    /// (password.rs). Shared by the clones: one bound per server.
    hash_slots: Arc<HashSlots>,
}

/// How large the pools, and SQLite's write-ahead log, may grow.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    /// Reader connections (SQLite) or all connections (PostgreSQL).
    pub max_connections: u32,
    /// SQLite: when the write-ahead log is restarted (wal.rs).
    pub wal: WalLimits,
    /// SQLite: the most pages the database file may hold (`pragma max_page_count` on every
    /// connection; SQLite never lowers it below the file's size when the connection
    /// opens). A write that needs more fails with `SQLITE_FULL`, exactly as on a full disk:
    /// tests exercise that path with the real engine this way. `None`: SQLite's default.
    pub max_pages: Option<u64>,
    /// SQLite: commits that do not wait for the disk (`synchronous = off`), for a tool that
    /// loads data before any server starts and can start over after a power cut (the
    /// notification benchmark's preparation). Never for a server: its commits must be
    /// durable before SUCCESS is answered. `false` by default.
    pub unsynced_bulk_load: bool,
}

impl Default for PoolSizes {
    fn default() -> Self {
        PoolSizes {
            max_connections: 8,
            wal: WalLimits::default(),
            max_pages: None,
            unsynced_bulk_load: false,
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). For SQLite the file and its
    /// folder are created when missing, and every connection runs in WAL mode with foreign
    /// keys on and a busy timeout.
    pub async fn connect(url: &str, sizes: PoolSizes) -> anyhow::Result<Db> {
        Db::open(url, sizes, true).await
    }

    /// [`Db::connect`] for a tool that works beside a running server on the same database
    /// (the benchmarks): no background WAL checkpoints from this process, since the
    /// server's checkpointer does that work and a second one would only compete with it.
    pub async fn connect_beside_server(url: &str, sizes: PoolSizes) -> anyhow::Result<Db> {
        Db::open(url, sizes, false).await
    }

    async fn open(url: &str, sizes: PoolSizes, checkpoints: bool) -> anyhow::Result<Db> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        match backend {
            Backend::Sqlite => {
                crate::sqlite_raw::configure_once();
                let url = sqlite_url_with_create(url)?;
                let options = AnyConnectOptions::from_str(&url)
                    .with_context(|| format!("invalid database_url {url:?}"))?;
                let sqlite_file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
                    .with_context(|| format!("invalid database_url {url:?}"))?
                    .get_filename()
                    .to_owned();
                let writer = sqlite_pool(1, sizes)
                    .connect_with(options.clone())
                    .await
                    .context("opening the SQLite database")?;
                let reader = sqlite_pool(sizes.max_connections, sizes)
                    .connect_with(options)
                    .await
                    .context("opening the SQLite database")?;
                let wal = checkpoints.then(|| Arc::new(Wal::new(sizes.wal, &sqlite_file)));
                let checkpointer = wal
                    .as_ref()
                    .map(|wal| Arc::new(wal::start_checkpointer(reader.clone(), wal.clone())));
                Ok(Db {
                    writer,
                    reader,
                    backend,
                    key_readers: Some(Arc::new(KeyReaders::new(sqlite_file.clone()))),
                    sqlite_file: Some(Arc::new(sqlite_file)),
                    group_commit: Arc::default(),
                    order_keys: Arc::default(),
                    wal,
                    max_pages: sizes.max_pages,
                    checkpointer,
                    hash_slots: Arc::new(HashSlots::for_this_machine()),
                })
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url).context("invalid database_url")?;
                let pool = AnyPoolOptions::new()
                    .max_connections(sizes.max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .context("connecting to PostgreSQL")?;
                Ok(Db {
                    writer: pool.clone(),
                    reader: pool,
                    backend,
                    sqlite_file: None,
                    group_commit: Arc::default(),
                    order_keys: Arc::default(),
                    key_readers: None,
                    wal: None,
                    max_pages: None,
                    checkpointer: None,
                    hash_slots: Arc::new(HashSlots::for_this_machine()),
                })
            }
        }
    }

    /// Applies the migrations for this backend (`migrations/sqlite` or `migrations/postgres`).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.writer)
            .await
            .context("applying database migrations")?;
        Ok(())
    }

    /// The bound on concurrent password hashing (password.rs).
    pub fn hash_slots(&self) -> &HashSlots {
        &self.hash_slots
    }

    /// The pool for statements that write (and transactions that read then write).
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }

    /// A write transaction. On SQLite it is `BEGIN IMMEDIATE`, taking the write lock up
    /// front: a deferred transaction that reads before it writes fails at once with
    /// "database is locked" (not after the busy timeout) when another connection to the same
    /// file — `paydesk user …` beside the server, a second process, a test's own pool —
    /// committed in between. On PostgreSQL a plain `BEGIN`.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
    }

    /// Whether this database takes writes now (`paydesk doctor`): a table is created in a
    /// write transaction that is then rolled back, so nothing remains.
    pub async fn probe_writable(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.begin_write().await?;
        sqlx::query("create table paydesk_doctor_probe (x integer)")
            .execute(&mut *tx)
            .await?;
        tx.rollback().await
    }

    /// The pool for read-only statements.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// SQLite: the database file.
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref().map(PathBuf::as_path)
    }

    /// SQLite: the write-ahead log's state, when this process checkpoints it.
    pub(crate) fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.as_ref()
    }

    /// SQLite: the page limit every connection gets ([`PoolSizes::max_pages`]).
    pub(crate) fn max_pages(&self) -> Option<u64> {
        self.max_pages
    }

    /// SQLite: what the write-ahead log has done since this database was opened (`None` on
    /// PostgreSQL, and beside a server, which checkpoints it instead).
    pub fn wal_stats(&self) -> Option<WalStats> {
        self.wal.as_deref().map(Wal::stats)
    }

    /// Where the notification apply queue lives.
    pub(crate) fn group_commit(&self) -> &GroupCommitSlot {
        &self.group_commit
    }

    /// The order keys held in memory.
    pub(crate) fn order_keys(&self) -> &OrderKeys {
        &self.order_keys
    }

    /// SQLite: the direct order-key reads.
    pub(crate) fn key_readers(&self) -> Option<&KeyReaders> {
        self.key_readers.as_deref()
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.reader)
            .await
            .map(|_| ())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Every SQLite connection's settings, in order: the pools' (db.rs) and the notification
/// committer's own (notify/group_commit/sqlite.rs) alike, so that no write path runs with
/// weaker durability than another. `busy_timeout_ms`: how long a statement waits for
/// another connection's lock inside SQLite (the committer waits itself, so 0 there).
/// `journal_size_limit`: what the log file is cut back to at a restart (wal.rs).
/// `max_pages`: the database's page limit (`PoolSizes::max_pages`).
pub(crate) fn sqlite_pragmas(
    busy_timeout_ms: u64,
    journal_size_limit: Option<i64>,
    max_pages: Option<u64>,
) -> Vec<String> {
    sqlite_pragmas_with(busy_timeout_ms, journal_size_limit, max_pages, false)
}

/// [`sqlite_pragmas`], with `synchronous = off` when `unsynced` ([`PoolSizes::unsynced_bulk_load`]).
fn sqlite_pragmas_with(
    busy_timeout_ms: u64,
    journal_size_limit: Option<i64>,
    max_pages: Option<u64>,
    unsynced: bool,
) -> Vec<String> {
    let mut pragmas: Vec<String> = [
        "pragma journal_mode = wal",
        // Durable commits: WeChat Pay never resends a notification we answered SUCCESS, so
        // the commit before that answer must survive a power cut, not only a crash. In WAL
        // mode `normal` syncs only at checkpoints (the last commits can vanish); `full`
        // syncs the log at every commit, which the notification committer makes one per
        // batch.
        if unsynced {
            "pragma synchronous = off"
        } else {
            "pragma synchronous = full"
        },
        "pragma foreign_keys = on",
        // Checkpoints run in the background (wal.rs), not in the commit that happens to
        // cross the threshold.
        "pragma wal_autocheckpoint = 0",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    pragmas.push(format!("pragma busy_timeout = {busy_timeout_ms}"));
    if let Some(limit) = journal_size_limit {
        pragmas.push(format!("pragma journal_size_limit = {limit}"));
    }
    if let Some(pages) = max_pages {
        pragmas.push(format!("pragma max_page_count = {pages}"));
    }
    pragmas
}

fn sqlite_pool(max: u32, sizes: PoolSizes) -> AnyPoolOptions {
    let pragmas = Arc::new(sqlite_pragmas_with(
        5000,
        Some(sizes.wal.journal_size_limit()),
        sizes.max_pages,
        sizes.unsynced_bulk_load,
    ));
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        // No ping on every checkout: a SQLite connection is a file handle on a worker
        // thread, and the ping is one more round trip to that thread per use (a broken
        // connection still fails its statement, and is still pinged when returned).
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let pragmas = Arc::clone(&pragmas);
            Box::pin(async move {
                for pragma in pragmas.iter() {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
}

/// Makes sure the SQLite file's folder exists and asks sqlx to create the file.
fn sqlite_url_with_create(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("database_url: an in-memory SQLite database would lose every order at restart; give a file path");
    }
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the database folder {}", parent.display()))?;
        }
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_url_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://data/x.db").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://h/db").unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
    }

    #[test]
    fn sqlite_urls_get_create_mode_and_memory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/x.db");
        let url = sqlite_url_with_create(&format!("sqlite://{}", file.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"));
        assert!(file.parent().unwrap().is_dir());
        assert!(sqlite_url_with_create("sqlite::memory:").is_err());
    }
}
