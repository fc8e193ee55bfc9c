//! Typed settings: built-in defaults, then a TOML file (`--config FILE`, else
//! `./paydesk.toml` if present), then `PAYDESK_*` environment variables (`__` between
//! levels), exactly as docs/design.md's Contract names them. Secrets are `SecretString`s that
//! never print. A bad value stops the start with a message naming its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use paydesk_core::notify::MerchantCredentials;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::middleware::client_ip::TrustedProxies;
use crate::routes;
use crate::state::PayConfig;

/// Everything paydesk can be configured with.
#[derive(Debug, Deserialize)]
pub struct Settings {
    /// Address the server binds. `PAYDESK_LISTEN`, default `127.0.0.1:3000`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`. `PAYDESK_DATABASE_URL`, default `sqlite://data/paydesk.db`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// Password for the first admin on an empty database. `PAYDESK_ADMIN_PASSWORD`; random
    /// and printed once when unset.
    #[serde(default)]
    pub admin_password: Option<SecretString>,
    /// `on`: start the WeChat Pay simulator in-process and point at it. `PAYDESK_SIMULATOR`,
    /// default `on` when no merchant id is configured.
    #[serde(default, deserialize_with = "on_off::option")]
    pub simulator: Option<bool>,
    /// Mark the session cookie `Secure` (set this when serving over HTTPS).
    /// `PAYDESK_COOKIE_SECURE`, default `false` (the default listen address is plain HTTP on
    /// loopback).
    #[serde(default)]
    pub cookie_secure: bool,
    /// Idle time after which a dashboard session ends, in minutes.
    /// `PAYDESK_SESSION_IDLE_MINUTES`, default 480 (a working day).
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: i64,
    /// The longest a dashboard session lives, active or not, in hours from sign-in.
    /// `PAYDESK_SESSION_MAX_HOURS`, default 12: a working day with overtime, so everyone
    /// signs in once a day and a stolen session cookie is worth at most that.
    #[serde(default = "default_session_max_hours")]
    pub session_max_hours: i64,
    /// The dashboard's public URL as browsers reach it, e.g. `https://pay.example.com`
    /// (scheme and host, optionally a port; no path): cookie-authenticated mutations must
    /// come from this origin. Set it behind a reverse proxy that rewrites `Host`.
    /// `PAYDESK_PUBLIC_URL`, default unset (the request's `Host` is compared instead).
    #[serde(default)]
    pub public_url: Option<String>,
    /// The bearer token `/metrics` requires (`Authorization: Bearer …`).
    /// `PAYDESK_METRICS_TOKEN`; unset, `/metrics` answers 404.
    #[serde(default)]
    pub metrics_token: Option<SecretString>,
    /// After SIGTERM, how long the instance still serves — `/readyz` 503, every answer with
    /// `Connection: close` — before it stops accepting: a proxy's kept-alive connections
    /// are closed by an answer, or by the proxy itself when idle (nginx's upstream
    /// `keepalive_timeout`, 2 s in deploy/nginx.conf.template, must be shorter), not under
    /// a request it is sending. `PAYDESK_SHUTDOWN_DRAIN_MS`, default 3000.
    #[serde(default = "default_shutdown_drain_ms")]
    pub shutdown_drain_ms: u64,
    /// Where the built dashboard assets (`pkg/paydesk.js`, `.wasm`, `.css`) are.
    /// `PAYDESK_SITE_ROOT`, default `target/site` (what `scripts/build.sh` writes).
    #[serde(default = "default_site_root")]
    pub site_root: PathBuf,
    /// Log format: `pretty` (default) or `json`. `PAYDESK_LOG_FORMAT`.
    #[serde(default)]
    pub log_format: Option<String>,
    /// WeChat Pay merchant settings (`PAYDESK_WXPAY__…`).
    #[serde(default)]
    pub wxpay: WxpaySettings,
    /// Mini program settings (`PAYDESK_MP__…`).
    #[serde(default)]
    pub mp: MpSettings,
    /// How long a new order can be paid, in minutes (`time_expire`).
    /// `PAYDESK_ORDER_EXPIRE_MINUTES`, default 30, 5 to 21600 (WeChat Pay refuses `time_expire` within 5 minutes).
    #[serde(default = "default_order_expire_minutes")]
    pub order_expire_minutes: i64,
    /// The order sync job (`PAYDESK_SYNC__…`).
    #[serde(default)]
    pub sync: SyncSettings,
    /// Merchant alerts for paid orders (`PAYDESK_ALERTS__…`).
    #[serde(default)]
    pub alerts: AlertSettings,
    /// The refund job (`PAYDESK_REFUNDS__…`).
    #[serde(default)]
    pub refunds: RefundSettings,
    /// What a refused WeChat Pay callback may cost (`PAYDESK_CALLBACKS__…`).
    #[serde(default)]
    pub callbacks: CallbackSettings,
    /// The retention policy and its daily job (`PAYDESK_RETENTION__…`).
    #[serde(default)]
    pub retention: RetentionSettings,
    /// The exceptions inbox's scan (`PAYDESK_EXCEPTIONS__…`).
    #[serde(default)]
    pub exceptions: ExceptionsSettings,
    /// Reconciliation's daily job (`PAYDESK_RECONCILIATION__…`).
    #[serde(default)]
    pub reconciliation: ReconciliationSettings,
    /// The free-space check on the SQLite database's filesystem (`PAYDESK_DISK__…`).
    #[serde(default)]
    pub disk: DiskSettings,
    /// `on`: simulated shoppers log in, order and pay through `/api/mp` (sandbox mode only).
    /// `PAYDESK_DEMO_SHOPPERS` or `paydesk serve --demo-shoppers`; default `on` in sandbox
    /// mode, never in merchant mode (see [`Settings::runs_demo_shoppers`]).
    #[serde(default, deserialize_with = "on_off::option")]
    pub demo_shoppers: Option<bool>,
    /// `on`: the first start of an empty sandbox database fills three weeks of realistic
    /// history (`crate::sandbox`). `PAYDESK_DEMO_HISTORY`; default `on` in sandbox mode,
    /// never in merchant mode (see [`Settings::fills_demo_history`]).
    #[serde(default, deserialize_with = "on_off::option")]
    pub demo_history: Option<bool>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`middleware::client_ip`): a
    /// comma-separated list of addresses and CIDR ranges, e.g. `127.0.0.1, 10.0.0.0/8`.
    /// `PAYDESK_TRUSTED_PROXIES`, default none (the TCP peer is the client).
    #[serde(default)]
    pub trusted_proxies: Option<String>,
    /// How many demo orders per minute. `PAYDESK_DEMO_SHOPPERS_PER_MINUTE`, default 6.
    #[serde(default = "default_demo_per_minute")]
    pub demo_shoppers_per_minute: u32,
    /// Throttles on the mini-program API (`PAYDESK_MP_LIMITS__…`).
    #[serde(default)]
    pub mp_limits: MpLimitSettings,
}

/// Throttles on the mini-program API (`routes::mp::limits`). Rates are requests per minute,
/// refilled evenly; the burst is how many may come at once after a quiet spell. Limits are
/// held in each instance's memory (a shopper's calls mostly reach one instance; N instances
/// allow at most N times the rate), the orderquery interval in the database.
#[derive(Debug, Deserialize)]
pub struct MpLimitSettings {
    /// Requests per minute with one bearer token (one shopper's mini program).
    /// `PAYDESK_MP_LIMITS__PER_TOKEN_PER_MINUTE`, default 60.
    #[serde(default = "default_per_token_per_minute")]
    pub per_token_per_minute: u32,
    /// Burst per token. `PAYDESK_MP_LIMITS__PER_TOKEN_BURST`, default 30.
    #[serde(default = "default_per_token_burst")]
    pub per_token_burst: u32,
    /// Requests per minute from one client address (after the trusted-proxy rule; an IPv6
    /// client counts by its /64). Generous: shoppers share carrier NAT addresses.
    /// `PAYDESK_MP_LIMITS__PER_ADDRESS_PER_MINUTE`, default 1200.
    #[serde(default = "default_per_address_per_minute")]
    pub per_address_per_minute: u32,
    /// Burst per address. `PAYDESK_MP_LIMITS__PER_ADDRESS_BURST`, default 300.
    #[serde(default = "default_per_address_burst")]
    pub per_address_burst: u32,
    /// Logins (`POST /api/mp/login`, one jscode2session each) per minute from one address.
    /// `PAYDESK_MP_LIMITS__LOGIN_PER_ADDRESS_PER_MINUTE`, default 30.
    #[serde(default = "default_login_per_address_per_minute")]
    pub login_per_address_per_minute: u32,
    /// Burst of logins per address. `PAYDESK_MP_LIMITS__LOGIN_BURST`, default 10.
    #[serde(default = "default_login_burst")]
    pub login_burst: u32,
    /// The least time between two orderquery calls for one order caused by the shopper's
    /// status call, in seconds, across all instances; a poll in between is answered from
    /// the database. `PAYDESK_MP_LIMITS__ORDER_QUERY_INTERVAL_SECONDS`, default 5 (0: ask
    /// every time).
    #[serde(default = "default_order_query_interval")]
    pub order_query_interval_seconds: u64,
}

impl Default for MpLimitSettings {
    fn default() -> Self {
        MpLimitSettings {
            per_token_per_minute: default_per_token_per_minute(),
            per_token_burst: default_per_token_burst(),
            per_address_per_minute: default_per_address_per_minute(),
            per_address_burst: default_per_address_burst(),
            login_per_address_per_minute: default_login_per_address_per_minute(),
            login_burst: default_login_burst(),
            order_query_interval_seconds: default_order_query_interval(),
        }
    }
}

impl MpLimitSettings {
    fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("PER_TOKEN_PER_MINUTE", self.per_token_per_minute),
            ("PER_TOKEN_BURST", self.per_token_burst),
            ("PER_ADDRESS_PER_MINUTE", self.per_address_per_minute),
            ("PER_ADDRESS_BURST", self.per_address_burst),
            (
                "LOGIN_PER_ADDRESS_PER_MINUTE",
                self.login_per_address_per_minute,
            ),
            ("LOGIN_BURST", self.login_burst),
        ] {
            if !(1..=1_000_000).contains(&value) {
                bail!(
                    "PAYDESK_MP_LIMITS__{name} (mp_limits.{}) must be 1 to 1000000, got {value}",
                    name.to_ascii_lowercase()
                );
            }
        }
        if self.order_query_interval_seconds > 3600 {
            bail!("PAYDESK_MP_LIMITS__ORDER_QUERY_INTERVAL_SECONDS (mp_limits.order_query_interval_seconds) must be 0 to 3600");
        }
        Ok(())
    }
}

fn default_per_token_per_minute() -> u32 {
    60
}
fn default_per_token_burst() -> u32 {
    30
}
fn default_per_address_per_minute() -> u32 {
    1200
}
fn default_per_address_burst() -> u32 {
    300
}
fn default_login_per_address_per_minute() -> u32 {
    30
}
fn default_login_burst() -> u32 {
    10
}
fn default_order_query_interval() -> u64 {
    5
}

/// The order sync job: asks orderquery about orders still `NOTPAY`, closes expired ones.
#[derive(Debug, Deserialize)]
pub struct SyncSettings {
    /// `off` stops the job (for instances that only serve the dashboard).
    /// `PAYDESK_SYNC__ENABLED`, default `on`.
    #[serde(default = "default_on", deserialize_with = "on_off::required")]
    pub enabled: bool,
    /// How long after creation an unpaid order is first queried, in seconds.
    /// `PAYDESK_SYNC__FIRST_DELAY_SECONDS`, default 60.
    #[serde(default = "default_sync_first_delay")]
    pub first_delay_seconds: u64,
    /// The longest wait between two queries of one order (the backoff cap), in seconds.
    /// `PAYDESK_SYNC__MAX_DELAY_SECONDS`, default 600.
    #[serde(default = "default_sync_max_delay")]
    pub max_delay_seconds: u64,
    /// How often the job looks for due orders, in milliseconds.
    /// `PAYDESK_SYNC__TICK_MILLIS`, default 2000.
    #[serde(default = "default_sync_tick")]
    pub tick_millis: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            enabled: default_on(),
            first_delay_seconds: default_sync_first_delay(),
            max_delay_seconds: default_sync_max_delay(),
            tick_millis: default_sync_tick(),
        }
    }
}

/// The refund job: executes approved refunds and settles those in flight with refundquery.
#[derive(Debug, Deserialize)]
pub struct RefundSettings {
    /// `off` stops the job on this instance. `PAYDESK_REFUNDS__ENABLED`, default `on`.
    #[serde(default = "default_on", deserialize_with = "on_off::required")]
    pub enabled: bool,
    /// How often the job looks for due refunds (an approval wakes it at once), in
    /// milliseconds. `PAYDESK_REFUNDS__TICK_MILLIS`, default 2000.
    #[serde(default = "default_sync_tick")]
    pub tick_millis: u64,
    /// The wait before the first retry after a timeout or `SYSTEMERROR`, doubled per attempt
    /// up to 10 minutes, in milliseconds. `PAYDESK_REFUNDS__RETRY_BASE_MILLIS`, default 5000.
    #[serde(default = "default_refund_retry_base")]
    pub retry_base_millis: u64,
    /// The wait before a `PROCESSING` refund is first asked about with refundquery, in
    /// seconds (later waits grow with its age, up to an hour).
    /// `PAYDESK_REFUNDS__QUERY_DELAY_SECONDS`, default 60.
    #[serde(default = "default_sync_first_delay")]
    pub query_delay_seconds: u64,
    /// How long a claimed refund is kept from other instances, in seconds; must outlast a
    /// refund call with its timeouts (15 s). `PAYDESK_REFUNDS__LEASE_SECONDS`, default 60.
    #[serde(default = "default_sync_first_delay")]
    pub lease_seconds: u64,
}

impl Default for RefundSettings {
    fn default() -> Self {
        RefundSettings {
            enabled: default_on(),
            tick_millis: default_sync_tick(),
            retry_base_millis: default_refund_retry_base(),
            query_delay_seconds: default_sync_first_delay(),
            lease_seconds: default_sync_first_delay(),
        }
    }
}

/// The retention policy (`paydesk_core::retention`) and the daily job that applies it.
#[derive(Debug, Deserialize)]
pub struct RetentionSettings {
    /// `off` stops the daily job on this instance (`paydesk prune` still works).
    /// `PAYDESK_RETENTION__ENABLED`, default `on`.
    #[serde(default = "default_on", deserialize_with = "on_off::required")]
    pub enabled: bool,
    /// When the job runs each day, `HH:MM` in Asia/Shanghai (or as soon after as an
    /// instance is up). `PAYDESK_RETENTION__RUN_AT`, default `04:00`.
    #[serde(default = "default_retention_run_at")]
    pub run_at: String,
    /// Refused callbacks that matched none of our orders are deleted after this many days.
    /// `PAYDESK_RETENTION__REFUSED_NOTIFICATIONS_DAYS`, default 90.
    #[serde(default = "default_refused_notifications_days")]
    pub refused_notifications_days: u32,
    /// Request and response bodies of WeChat Pay calls are removed after this many days (the
    /// rows stay). `PAYDESK_RETENTION__API_CALL_BODIES_DAYS`, default 30.
    #[serde(default = "default_api_call_bodies_days")]
    pub api_call_bodies_days: u32,
    /// Dashboard sessions and mini-program tokens are deleted this many days after they
    /// expire. `PAYDESK_RETENTION__EXPIRED_SESSIONS_DAYS`, default 1.
    #[serde(default = "default_expired_sessions_days")]
    pub expired_sessions_days: u32,
    /// Merchant alert deliveries that ended (delivered or failed) are deleted this many days
    /// after their last attempt. `PAYDESK_RETENTION__ALERT_DELIVERIES_DAYS`, default 30.
    #[serde(default = "default_alert_deliveries_days")]
    pub alert_deliveries_days: u32,
    /// WeChat Pay's daily bills (as they came, and their rows) are deleted this many days
    /// after they were fetched; each day's reconciliation outcome and differences stay.
    /// `PAYDESK_RETENTION__RECONCILIATION_BILLS_DAYS`, default 400.
    #[serde(default = "default_reconciliation_bills_days")]
    pub reconciliation_bills_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            enabled: default_on(),
            run_at: default_retention_run_at(),
            refused_notifications_days: default_refused_notifications_days(),
            api_call_bodies_days: default_api_call_bodies_days(),
            expired_sessions_days: default_expired_sessions_days(),
            alert_deliveries_days: default_alert_deliveries_days(),
            reconciliation_bills_days: default_reconciliation_bills_days(),
        }
    }
}

impl RetentionSettings {
    /// The policy these settings describe.
    pub fn policy(&self) -> paydesk_core::retention::Policy {
        paydesk_core::retention::Policy {
            refused_notifications_days: self.refused_notifications_days,
            api_call_bodies_days: self.api_call_bodies_days,
            expired_sessions_days: self.expired_sessions_days,
            alert_deliveries_days: self.alert_deliveries_days,
            reconciliation_bills_days: self.reconciliation_bills_days,
        }
    }

    /// `run_at` as minutes after midnight, or an error naming the key.
    pub fn run_at_minute(&self) -> anyhow::Result<i64> {
        hh_mm_minute(&self.run_at, "PAYDESK_RETENTION__RUN_AT (retention.run_at)")
    }
}

/// A daily job's `HH:MM` (Asia/Shanghai) as minutes after midnight, or an error naming `key`.
fn hh_mm_minute(value: &str, key: &str) -> anyhow::Result<i64> {
    let parsed = value.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m) && value.len() == 5).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| {
        anyhow::anyhow!("{key} must be HH:MM (00:00 to 23:59, Asia/Shanghai), got {value:?}")
    })
}

/// The exceptions inbox's scan (`paydesk_core::exceptions`).
#[derive(Debug, Deserialize)]
pub struct ExceptionsSettings {
    /// `off` stops the scan on this instance (another instance's scan fills the shared
    /// inbox). `PAYDESK_EXCEPTIONS__ENABLED`, default `on`.
    #[serde(default = "default_on", deserialize_with = "on_off::required")]
    pub enabled: bool,
    /// How often the inbox is brought up to date, in seconds (1 to 3600).
    /// `PAYDESK_EXCEPTIONS__SCAN_SECONDS`, default 60.
    #[serde(default = "default_exceptions_scan_seconds")]
    pub scan_seconds: u64,
}

impl Default for ExceptionsSettings {
    fn default() -> Self {
        ExceptionsSettings {
            enabled: default_on(),
            scan_seconds: default_exceptions_scan_seconds(),
        }
    }
}

fn default_exceptions_scan_seconds() -> u64 {
    60
}

/// Reconciliation's daily job (`paydesk_core::reconcile`): yesterday's bill, fetched and
/// compared once a day on one instance among several.
#[derive(Debug, Deserialize)]
pub struct ReconciliationSettings {
    /// `off` stops the daily job on this instance (`paydesk reconcile` and the page still
    /// work). `PAYDESK_RECONCILIATION__ENABLED`, default `on`.
    #[serde(default = "default_on", deserialize_with = "on_off::required")]
    pub enabled: bool,
    /// From when each day yesterday's bill is fetched, `HH:MM` in Asia/Shanghai (WeChat Pay
    /// has it ready after 10:00; until it is, the job tries again every
    /// `retry_minutes`). `PAYDESK_RECONCILIATION__RUN_AT`, default `10:30`.
    #[serde(default = "default_reconciliation_run_at")]
    pub run_at: String,
    /// The wait before another try when the bill was not ready or the fetch failed.
    /// `PAYDESK_RECONCILIATION__RETRY_MINUTES`, default 30, at least 1.
    #[serde(default = "default_reconciliation_retry_minutes")]
    pub retry_minutes: u32,
}

impl Default for ReconciliationSettings {
    fn default() -> Self {
        ReconciliationSettings {
            enabled: default_on(),
            run_at: default_reconciliation_run_at(),
            retry_minutes: default_reconciliation_retry_minutes(),
        }
    }
}

impl ReconciliationSettings {
    /// `run_at` as minutes after midnight, or an error naming the key.
    pub fn run_at_minute(&self) -> anyhow::Result<i64> {
        hh_mm_minute(
            &self.run_at,
            "PAYDESK_RECONCILIATION__RUN_AT (reconciliation.run_at)",
        )
    }
}

fn default_reconciliation_run_at() -> String {
    "10:30".to_owned()
}
fn default_reconciliation_retry_minutes() -> u32 {
    30
}

fn default_retention_run_at() -> String {
    "04:00".to_owned()
}
fn default_refused_notifications_days() -> u32 {
    paydesk_core::retention::Policy::default().refused_notifications_days
}
fn default_api_call_bodies_days() -> u32 {
    paydesk_core::retention::Policy::default().api_call_bodies_days
}
fn default_expired_sessions_days() -> u32 {
    paydesk_core::retention::Policy::default().expired_sessions_days
}
fn default_alert_deliveries_days() -> u32 {
    paydesk_core::retention::Policy::default().alert_deliveries_days
}
fn default_reconciliation_bills_days() -> u32 {
    paydesk_core::retention::Policy::default().reconciliation_bills_days
}

/// The free-space check on the filesystem that holds the SQLite database (PostgreSQL's disk
/// is the database server's: not checked here).
#[derive(Debug, Deserialize)]
pub struct DiskSettings {
    /// Below this much free space (MiB) `/readyz` and the dashboard say so.
    /// `PAYDESK_DISK__LOW_FREE_MIB`, default 1024.
    #[serde(default = "default_low_free_mib")]
    pub low_free_mib: u64,
    /// How often free space is checked, in seconds (never per request).
    /// `PAYDESK_DISK__CHECK_SECONDS`, default 60.
    #[serde(default = "default_sync_first_delay")]
    pub check_seconds: u64,
}

impl Default for DiskSettings {
    fn default() -> Self {
        DiskSettings {
            low_free_mib: default_low_free_mib(),
            check_seconds: default_sync_first_delay(),
        }
    }
}

/// The beginnings of `PAYDESK_…` variables that other tools read (lower case, as the
/// configuration sees them): never warned about as unknown keys.
const TOOLING_KEYS: [&str; 4] = ["test", "pg_", "sim_", "screenshots"];

fn is_tooling_key(key: &str) -> bool {
    TOOLING_KEYS.iter().any(|prefix| key.starts_with(prefix))
}

fn default_low_free_mib() -> u64 {
    1024
}

fn default_refund_retry_base() -> u64 {
    5000
}

/// What a callback that nothing verified may cost (paydesk_core::notify's flood.rs): a
/// caller who is not WeChat Pay can post as fast as the network allows.
#[derive(Debug, Deserialize)]
pub struct CallbackSettings {
    /// Refused callbacks stored per sender address per minute, across all instances;
    /// beyond it they are only counted (per sender, cause and minute).
    /// `PAYDESK_CALLBACKS__REFUSED_PER_MINUTE`, default 60.
    #[serde(default = "default_refused_per_minute")]
    pub refused_per_minute: u32,
    /// How much of a refused body is stored, in bytes (its full length is recorded).
    /// `PAYDESK_CALLBACKS__REFUSED_BODY_BYTES`, default 8192.
    #[serde(default = "default_refused_body_bytes")]
    pub refused_body_bytes: usize,
    /// How many bytes of callback rows are kept in memory while the database refuses
    /// writes; refused ones are let go (and counted) before verified ones.
    /// `PAYDESK_CALLBACKS__BACKLOG_BYTES`, default 67108864 (64 MiB).
    #[serde(default = "default_backlog_bytes")]
    pub backlog_bytes: usize,
    /// How long the answer to a refused callback that was only counted (its sender is over
    /// its allowance) is held back, in milliseconds; 0 answers at once. A flood that waits
    /// for its answers then costs a request per connection per hold.
    /// `PAYDESK_CALLBACKS__HOLD_MS`, default 1000.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            refused_per_minute: default_refused_per_minute(),
            refused_body_bytes: default_refused_body_bytes(),
            backlog_bytes: default_backlog_bytes(),
            hold_ms: default_hold_ms(),
        }
    }
}

impl CallbackSettings {
    /// The limits as the intake takes them.
    pub fn policy(&self) -> paydesk_core::notify::FloodPolicy {
        paydesk_core::notify::FloodPolicy {
            refused_per_minute: self.refused_per_minute,
            refused_body_bytes: self.refused_body_bytes,
            backlog_bytes: self.backlog_bytes,
            hold_ms: self.hold_ms,
        }
    }
}

fn default_refused_per_minute() -> u32 {
    paydesk_core::notify::DEFAULT_REFUSED_PER_MINUTE
}

fn default_refused_body_bytes() -> usize {
    paydesk_core::notify::DEFAULT_REFUSED_BODY_BYTES
}

fn default_backlog_bytes() -> usize {
    paydesk_core::notify::DEFAULT_BACKLOG_BYTES
}

/// The longest [`CallbackSettings::hold_ms`] accepted.
const MAX_HOLD_MS: u64 = 3000;

fn default_hold_ms() -> u64 {
    paydesk_core::notify::DEFAULT_HOLD_MS
}

/// Merchant alerts: a POST to a webhook for each paid order.
#[derive(Debug, Default, Deserialize)]
pub struct AlertSettings {
    /// The webhook URL, e.g. a WeCom group robot's
    /// `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…` (secret: it carries the key).
    /// `PAYDESK_ALERTS__WEBHOOK_URL`; no alerts when unset.
    pub webhook_url: Option<SecretString>,
    /// `wecom` (a markdown message for a WeCom robot, default) or `json` (the order as JSON).
    /// `PAYDESK_ALERTS__FORMAT`.
    pub format: Option<String>,
}

/// WeChat Pay merchant settings.
#[derive(Debug, Default, Deserialize)]
pub struct WxpaySettings {
    /// Mini Program AppID bound to the merchant. `PAYDESK_WXPAY__APPID`.
    pub appid: Option<String>,
    /// Merchant number (8–10 digits). `PAYDESK_WXPAY__MCH_ID`.
    pub mch_id: Option<String>,
    /// The 32-character API v2 key. `PAYDESK_WXPAY__API_KEY`.
    pub api_key: Option<SecretString>,
    /// `MD5` or `HMAC-SHA256` for new orders. `PAYDESK_WXPAY__SIGN_TYPE`, default `MD5`.
    pub sign_type: Option<String>,
    /// WeChat Pay API base URL. `PAYDESK_WXPAY__BASE_URL`, default production.
    pub base_url: Option<String>,
    /// Merchant client certificate (PEM) for refunds. `PAYDESK_WXPAY__CERT_PEM`.
    pub cert_pem: Option<PathBuf>,
    /// Its private key (PEM). `PAYDESK_WXPAY__KEY_PEM`.
    pub key_pem: Option<PathBuf>,
    /// Or the PKCS#12 bundle (password = mch_id). `PAYDESK_WXPAY__P12`.
    pub p12: Option<PathBuf>,
    /// Public payment notification URL: absolute `https://`, reachable from the internet,
    /// no query string; required in merchant mode. `PAYDESK_WXPAY__NOTIFY_URL`.
    pub notify_url: Option<String>,
    /// Public refund notification URL, the same rules. `PAYDESK_WXPAY__REFUND_NOTIFY_URL`.
    pub refund_notify_url: Option<String>,
    /// `on`: accept `http://` and loopback/private notify URLs in merchant mode, for a
    /// WeChat Pay simulator on this machine (tests, benchmarks, a local cluster; the
    /// simulator needs `--allow-insecure-notify-urls` too). Never for the real WeChat Pay,
    /// which cannot reach them. `PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS`, default `off`.
    #[serde(default, deserialize_with = "on_off::required")]
    pub allow_insecure_notify_urls: bool,
    /// Base URL for `/secapi/pay/refund` when it is not `base_url` (a simulator's mutual-TLS
    /// listener). `PAYDESK_WXPAY__REFUND_BASE_URL`, default `base_url`.
    pub refund_base_url: Option<String>,
    /// Where merchant mode fails over after a connect error or HTTP 5xx (§2.1): an absolute
    /// URL, or `off`. `PAYDESK_WXPAY__BACKUP_BASE_URL`; default
    /// `https://api2.mch.weixin.qq.com` when `base_url` is the production default, none for
    /// any other base (a sandbox prefix, a simulator). See [`WxpaySettings::backups`].
    pub backup_base_url: Option<String>,
    /// The refund's backup when `refund_base_url` is set (a simulator's second mutual-TLS
    /// listener): an absolute URL, or `off`. `PAYDESK_WXPAY__REFUND_BACKUP_BASE_URL`;
    /// default api2 when `refund_base_url` is the production default, none otherwise.
    /// Without `refund_base_url` the refund shares `base_url` and its backup.
    pub refund_backup_base_url: Option<String>,
    /// An extra trusted root CA (PEM file) for WeChat Pay's server certificate, e.g. a
    /// standalone simulator's `ca.pem`; the public roots stay trusted.
    /// `PAYDESK_WXPAY__CA_PEM`.
    pub ca_pem: Option<PathBuf>,
}

/// A backup setting's value that turns failover off.
const BACKUP_OFF: &str = "off";

impl WxpaySettings {
    /// The backup hosts (API, refund) merchant mode fails over to, per
    /// `PAYDESK_WXPAY__BACKUP_BASE_URL` and `__REFUND_BACKUP_BASE_URL`: unset → the default
    /// for the base ([`wxpay::default_backup_base_url`]: api2 for the production base,
    /// nothing otherwise); `off` → none; anything else must be an absolute `http(s)://` URL,
    /// else an error naming the variable. The refund's backup only applies with its own
    /// `refund_base_url`; without one the refund shares the API's base and backup (in the
    /// wxpay client), and a refund backup set alone is refused as a mistake.
    pub fn backups(&self) -> anyhow::Result<(Option<String>, Option<String>)> {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or(wxpay::PRODUCTION_BASE_URL);
        let api = backup(
            self.backup_base_url.as_deref(),
            base,
            "PAYDESK_WXPAY__BACKUP_BASE_URL (wxpay.backup_base_url)",
        )?;
        let refund = match &self.refund_base_url {
            Some(refund_base) => backup(
                self.refund_backup_base_url.as_deref(),
                refund_base,
                "PAYDESK_WXPAY__REFUND_BACKUP_BASE_URL (wxpay.refund_backup_base_url)",
            )?,
            None if self.refund_backup_base_url.is_some() => bail!(
                "PAYDESK_WXPAY__REFUND_BACKUP_BASE_URL (wxpay.refund_backup_base_url) needs PAYDESK_WXPAY__REFUND_BASE_URL: without it the refund uses PAYDESK_WXPAY__BASE_URL and its backup"
            ),
            None => None,
        };
        Ok((api, refund))
    }

    /// The rules the notify URLs are checked against: WeChat Pay's own, unless relaxed.
    pub fn notify_url_rules(&self) -> wxpay::NotifyUrlRules {
        wxpay::NotifyUrlRules::allowing_insecure(self.allow_insecure_notify_urls)
    }

    /// Merchant mode's (payment, refund) notify URLs: both set and such that WeChat Pay
    /// takes them and can reach them (`wxpay::check_notify_url`), else an error that names
    /// the variable. Host names are not resolved; only literal addresses are judged.
    pub fn notify_urls(&self) -> anyhow::Result<(String, String)> {
        let check = |url: &Option<String>, name: &str| -> anyhow::Result<String> {
            let Some(url) = url else {
                bail!("{name} is required when the simulator is off: the public https:// URL WeChat Pay sends its notifications to");
            };
            wxpay::check_notify_url(url, self.notify_url_rules()).map_err(|e| {
                let hint = match e {
                    wxpay::NotifyUrlError::NotHttps | wxpay::NotifyUrlError::NotPublic(_) => " (for a simulator on this machine only: PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on)",
                    _ => "",
                };
                anyhow::anyhow!("{name} {e}{hint}: {url:?}")
            })?;
            Ok(url.clone())
        };
        Ok((
            check(
                &self.notify_url,
                "PAYDESK_WXPAY__NOTIFY_URL (wxpay.notify_url)",
            )?,
            check(
                &self.refund_notify_url,
                "PAYDESK_WXPAY__REFUND_NOTIFY_URL (wxpay.refund_notify_url)",
            )?,
        ))
    }
    /// The merchant client certificate from `PAYDESK_WXPAY__CERT_PEM` + `__KEY_PEM` or
    /// `__P12` (password = mch_id), if configured.
    pub fn identity(&self, mch_id: &str) -> anyhow::Result<Option<wxpay::MerchantIdentity>> {
        Ok(match (&self.cert_pem, &self.key_pem, &self.p12) {
            (Some(cert), Some(key), _) => Some(
                wxpay::MerchantIdentity::from_pem_files(cert, key)
                    .context("PAYDESK_WXPAY__CERT_PEM / __KEY_PEM")?,
            ),
            (None, None, Some(p12)) => Some(
                wxpay::MerchantIdentity::from_pkcs12_file(p12, mch_id)
                    .context("PAYDESK_WXPAY__P12 (the password is the mch_id)")?,
            ),
            (None, None, None) => None,
            _ => bail!("PAYDESK_WXPAY__CERT_PEM and PAYDESK_WXPAY__KEY_PEM go together"),
        })
    }
}

/// One backup setting read: unset → the default for `base`, `off` → none, else a checked
/// absolute URL.
fn backup(value: Option<&str>, base: &str, name: &str) -> anyhow::Result<Option<String>> {
    let Some(value) = value.map(str::trim) else {
        return Ok(wxpay::default_backup_base_url(base).map(str::to_owned));
    };
    if value.eq_ignore_ascii_case(BACKUP_OFF) {
        return Ok(None);
    }
    let url = reqwest::Url::parse(value).map_err(|e| {
        anyhow::anyhow!("{name} must be an absolute http(s):// URL or `off`, got {value:?} ({e})")
    })?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        bail!("{name} must be an absolute http(s):// URL without query or fragment, or `off`, got {value:?}");
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// Mini program settings.
#[derive(Debug, Default, Deserialize)]
pub struct MpSettings {
    /// AppSecret for `jscode2session`. `PAYDESK_MP__APP_SECRET`.
    pub app_secret: Option<SecretString>,
    /// Base URL of `jscode2session`. `PAYDESK_MP__LOGIN_BASE_URL`.
    pub login_base_url: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_database_url() -> String {
    "sqlite://data/paydesk.db".to_owned()
}
fn default_site_root() -> PathBuf {
    PathBuf::from("target/site")
}
fn default_session_idle_minutes() -> i64 {
    480
}
fn default_session_max_hours() -> i64 {
    12
}
fn default_order_expire_minutes() -> i64 {
    30
}
fn default_demo_per_minute() -> u32 {
    6
}
fn default_on() -> bool {
    true
}
fn default_sync_first_delay() -> u64 {
    60
}
fn default_sync_max_delay() -> u64 {
    600
}
fn default_shutdown_drain_ms() -> u64 {
    3000
}
fn default_sync_tick() -> u64 {
    2000
}

/// `sim-certs` beside a SQLite database file, else `$TMPDIR/paydesk-sim-certs`.
fn sim_cert_dir(database_url: &str) -> std::path::PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest));
    match file.and_then(|f| std::path::Path::new(f).parent()) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("sim-certs"),
        Some(_) => std::path::PathBuf::from("sim-certs"),
        // One folder per database, so two servers (or two tests) on different PostgreSQL
        // databases never write the same certificate files at once; the name is stable, so
        // a restart finds its certificates again.
        None => {
            std::env::temp_dir().join(format!("paydesk-sim-certs-{:016x}", fnv1a(database_url)))
        }
    }
}

/// FNV-1a, 64 bit: a stable (not per-process seeded) hash for a folder name.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// On/off settings are `bool`s. The contract spells them `on`/`off` (`PAYDESK_SYNC__ENABLED=off`),
/// environment variables arrive as strings, and a TOML file may write `true`/`false`: all
/// of these are accepted, anything else names the accepted words (and the config crate
/// adds the key).
mod on_off {
    use serde::de::{self, Deserializer, Visitor};

    struct OnOff;

    impl Visitor<'_> for OnOff {
        type Value = bool;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("`on` or `off` (or `true`/`false`)")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim() {
                "on" | "true" => Ok(true),
                "off" | "false" => Ok(false),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }

    /// A setting that is on or off.
    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(OnOff)
    }

    /// A setting that is on, off, or left to a default worked out elsewhere.
    pub fn option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        required(d).map(Some)
    }
}

/// Whether WeChat Pay is the real service or the in-process simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayMode {
    /// The built-in simulator ("sandbox mode").
    Simulator,
    /// The configured WeChat Pay endpoint.
    Merchant,
}

impl Settings {
    /// Loads settings from defaults, the TOML file and the environment.
    ///
    /// `file`: `--config FILE` (must exist); without it `./paydesk.toml` is read if present.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let settings = Settings::load_unchecked(file)?;
        settings.validate()?;
        Ok(settings)
    }

    /// [`Settings::load`] without [`Settings::validate`]: for `paydesk doctor`, which reports
    /// what validation finds as one line among its checks.
    pub fn load_unchecked(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                if !path.is_file() {
                    bail!("--config {}: no such file", path.display());
                }
                builder =
                    builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                let default = Path::new("paydesk.toml");
                if default.is_file() {
                    builder = builder
                        .add_source(config::File::from(default).format(config::FileFormat::Toml));
                }
            }
        }
        let raw = builder
            .add_source(
                config::Environment::with_prefix("PAYDESK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(false),
            )
            .build()
            .context("reading the configuration")?;
        let mut unknown = Vec::new();
        let settings: Settings =
            serde_ignored::deserialize(raw, |path| unknown.push(path.to_string()))
                .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        for key in unknown {
            // PAYDESK_TEST_*, PAYDESK_PG_* and PAYDESK_SCREENSHOTS belong to the test
            // tooling (scripts/), not to paydesk; PAYDESK_SIM_* configures the standalone
            // simulator binary.
            if !is_tooling_key(&key) {
                eprintln!("paydesk: warning: unknown configuration key `{key}` is ignored");
            }
        }
        Ok(settings)
    }

    /// Checks what serde cannot, with messages that name the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        paydesk_core::Backend::from_url(&self.database_url)
            .map_err(|e| anyhow::anyhow!("PAYDESK_DATABASE_URL (database_url): {e}"))?;
        self.trusted_proxies()?;
        if let Some(t) = &self.wxpay.sign_type {
            if !matches!(t.as_str(), "MD5" | "HMAC-SHA256") {
                bail!("PAYDESK_WXPAY__SIGN_TYPE (wxpay.sign_type) must be `MD5` or `HMAC-SHA256` (exact case), got {t:?}");
            }
        }
        if let Some(mch_id) = &self.wxpay.mch_id {
            if !(mch_id.len() >= 8
                && mch_id.len() <= 10
                && mch_id.bytes().all(|b| b.is_ascii_digit()))
            {
                bail!(
                    "PAYDESK_WXPAY__MCH_ID (wxpay.mch_id) must be 8 to 10 digits, got {mch_id:?}"
                );
            }
        }
        if let Some(key) = &self.wxpay.api_key {
            if key.expose_secret().len() != 32 {
                bail!("PAYDESK_WXPAY__API_KEY (wxpay.api_key) must be exactly 32 characters (it has {})", key.expose_secret().len());
            }
        }
        if self.pay_mode() == PayMode::Merchant {
            for (name, present) in [
                (
                    "PAYDESK_WXPAY__APPID (wxpay.appid)",
                    self.wxpay.appid.is_some(),
                ),
                (
                    "PAYDESK_WXPAY__API_KEY (wxpay.api_key)",
                    self.wxpay.api_key.is_some(),
                ),
            ] {
                if !present {
                    bail!("{name} is required when the simulator is off");
                }
            }
            self.wxpay.notify_urls()?;
            self.wxpay.backups()?;
        }
        if self.session_idle_minutes < 5 {
            bail!("PAYDESK_SESSION_IDLE_MINUTES (session_idle_minutes) must be at least 5");
        }
        if !(1..=24 * 30).contains(&self.session_max_hours)
            || self.session_max_hours * 60 < self.session_idle_minutes
        {
            bail!("PAYDESK_SESSION_MAX_HOURS (session_max_hours) must be 1 to 720 hours and no shorter than PAYDESK_SESSION_IDLE_MINUTES");
        }
        self.public_url()?;
        if let Some(token) = &self.metrics_token {
            let t = token.expose_secret();
            if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("PAYDESK_METRICS_TOKEN (metrics_token) must be non-empty, without spaces");
            }
        }
        if !(5..=21_600).contains(&self.order_expire_minutes) {
            bail!(
                "PAYDESK_ORDER_EXPIRE_MINUTES (order_expire_minutes) must be 5 to 21600 (15 days): WeChat Pay refuses an order that expires within 5 minutes"
            );
        }
        if self.refunds.tick_millis == 0 || self.refunds.lease_seconds == 0 {
            bail!(
                "PAYDESK_REFUNDS__TICK_MILLIS and PAYDESK_REFUNDS__LEASE_SECONDS must be positive"
            );
        }
        if !(256..=paydesk_core::notify::MAX_BODY).contains(&self.callbacks.refused_body_bytes) {
            bail!(
                "PAYDESK_CALLBACKS__REFUSED_BODY_BYTES (callbacks.refused_body_bytes) must be 256 to {}",
                paydesk_core::notify::MAX_BODY
            );
        }
        if self.callbacks.backlog_bytes < 2 * paydesk_core::notify::MAX_BODY {
            bail!(
                "PAYDESK_CALLBACKS__BACKLOG_BYTES (callbacks.backlog_bytes) must be at least {} (two of the largest callbacks)",
                2 * paydesk_core::notify::MAX_BODY
            );
        }
        if self.callbacks.hold_ms > MAX_HOLD_MS {
            bail!(
                "PAYDESK_CALLBACKS__HOLD_MS (callbacks.hold_ms) must be at most {MAX_HOLD_MS} (WeChat Pay waits only a few seconds for an answer)"
            );
        }
        if self.shutdown_drain_ms > 20_000 {
            bail!("PAYDESK_SHUTDOWN_DRAIN_MS (shutdown_drain_ms) must be at most 20000 (the unit gives a stop 30 s)");
        }
        if self.sync.tick_millis == 0 || self.sync.max_delay_seconds == 0 {
            bail!("PAYDESK_SYNC__TICK_MILLIS and PAYDESK_SYNC__MAX_DELAY_SECONDS must be positive");
        }
        self.retention.run_at_minute()?;
        self.reconciliation.run_at_minute()?;
        if !(1..=3600).contains(&self.exceptions.scan_seconds) {
            bail!("PAYDESK_EXCEPTIONS__SCAN_SECONDS (exceptions.scan_seconds) must be 1 to 3600");
        }
        if self.reconciliation.retry_minutes == 0 {
            bail!("PAYDESK_RECONCILIATION__RETRY_MINUTES (reconciliation.retry_minutes) must be at least 1");
        }
        for (name, days) in [
            (
                "PAYDESK_RETENTION__REFUSED_NOTIFICATIONS_DAYS (retention.refused_notifications_days)",
                self.retention.refused_notifications_days,
            ),
            (
                "PAYDESK_RETENTION__API_CALL_BODIES_DAYS (retention.api_call_bodies_days)",
                self.retention.api_call_bodies_days,
            ),
            (
                "PAYDESK_RETENTION__EXPIRED_SESSIONS_DAYS (retention.expired_sessions_days)",
                self.retention.expired_sessions_days,
            ),
            (
                "PAYDESK_RETENTION__ALERT_DELIVERIES_DAYS (retention.alert_deliveries_days)",
                self.retention.alert_deliveries_days,
            ),
            (
                "PAYDESK_RETENTION__RECONCILIATION_BILLS_DAYS (retention.reconciliation_bills_days)",
                self.retention.reconciliation_bills_days,
            ),
        ] {
            if !(1..=36_500).contains(&days) {
                bail!("{name} must be 1 to 36500 days, got {days}");
            }
        }
        if self.disk.check_seconds == 0 || self.disk.check_seconds > 3600 {
            bail!("PAYDESK_DISK__CHECK_SECONDS (disk.check_seconds) must be 1 to 3600");
        }
        if let Some(f) = &self.alerts.format {
            if !matches!(f.as_str(), "wecom" | "json") {
                bail!(
                    "PAYDESK_ALERTS__FORMAT (alerts.format) must be `wecom` or `json`, got {f:?}"
                );
            }
        }
        if let Some(url) = &self.alerts.webhook_url {
            let u = url.expose_secret();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                bail!("PAYDESK_ALERTS__WEBHOOK_URL (alerts.webhook_url) must be an http(s) URL");
            }
        }
        if self.pay_mode() != PayMode::Simulator {
            if self.demo_shoppers == Some(true) {
                bail!("PAYDESK_DEMO_SHOPPERS=on needs the simulator (PAYDESK_SIMULATOR=on): demo shoppers never pay real money");
            }
            if self.demo_history == Some(true) {
                bail!("PAYDESK_DEMO_HISTORY=on needs the simulator (PAYDESK_SIMULATOR=on): a merchant's database never gets made-up history");
            }
        }
        self.mp_limits.validate()?;
        if let Some(f) = &self.log_format {
            if !matches!(f.as_str(), "pretty" | "json") {
                bail!("PAYDESK_LOG_FORMAT (log_format) must be `pretty` or `json`, got {f:?}");
            }
        }
        Ok(())
    }

    /// `PAYDESK_PUBLIC_URL` parsed: an `http`/`https` URL with a host and no path, query,
    /// fragment or credentials (only its origin is used).
    pub fn public_url(&self) -> anyhow::Result<Option<reqwest::Url>> {
        let Some(raw) = &self.public_url else {
            return Ok(None);
        };
        let bad = |why: &str| anyhow::anyhow!("PAYDESK_PUBLIC_URL (public_url) {why}, got {raw:?}");
        let url =
            reqwest::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("must be http:// or https:// with a host"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "must be only scheme, host and port (no path beyond `/`)",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        Ok(Some(url))
    }

    /// The session lifetime server functions see (`app::server::ssr::SessionLifetime`).
    pub fn session_lifetime(&self) -> app::server::ssr::SessionLifetime {
        app::server::ssr::SessionLifetime {
            max: std::time::Duration::from_secs(
                u64::try_from(self.session_max_hours).unwrap_or(12) * 3600,
            ),
        }
    }

    /// The reverse proxies to believe, parsed.
    pub fn trusted_proxies(&self) -> anyhow::Result<TrustedProxies> {
        TrustedProxies::parse(self.trusted_proxies.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("PAYDESK_TRUSTED_PROXIES (trusted_proxies): {e}"))
    }

    /// `wxpay.sign_type` parsed: the algorithm for new orders (MD5 when unset).
    pub fn sign_type(&self) -> anyhow::Result<wxpay::SignType> {
        match self.wxpay.sign_type.as_deref() {
            None => Ok(wxpay::SignType::Md5),
            Some(t) => t
                .parse()
                .map_err(|_| anyhow::anyhow!("PAYDESK_WXPAY__SIGN_TYPE (wxpay.sign_type): {t:?}")),
        }
    }

    /// The pay flow's settings for a server listening on `local`: the callback URLs and the
    /// order settings. Merchant mode takes the configured URLs, checked
    /// ([`WxpaySettings::notify_urls`]); the sandbox defaults to this server's own address,
    /// which its in-process simulator (and only it) accepts.
    pub fn pay_config(&self, local: SocketAddr) -> anyhow::Result<PayConfig> {
        let mut own = local;
        if own.ip().is_unspecified() {
            own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let own_url = |path: &str| format!("http://{own}{path}");
        let (notify_url, refund_notify_url) = match self.pay_mode() {
            PayMode::Merchant => self.wxpay.notify_urls()?,
            PayMode::Simulator => (
                self.wxpay
                    .notify_url
                    .clone()
                    .unwrap_or_else(|| own_url(routes::wxpay::notify::PAYMENT_PATH)),
                self.wxpay
                    .refund_notify_url
                    .clone()
                    .unwrap_or_else(|| own_url(routes::wxpay::notify::REFUND_PATH)),
            ),
        };
        Ok(PayConfig {
            notify_url,
            refund_notify_url,
            order_expire: std::time::Duration::from_secs(
                u64::try_from(self.order_expire_minutes).unwrap_or(30) * 60,
            ),
            sign_type: self.sign_type()?,
            self_url: own_url(""),
        })
    }

    /// The configured merchant (`PayMode::Merchant`): our credentials for verifying
    /// callbacks and the WeChat Pay client's configuration (endpoints, extra CA, client
    /// certificate, mini-program login), as zero2prod's settings build their clients.
    pub fn merchant_client(&self) -> anyhow::Result<(MerchantCredentials, wxpay::ClientConfig)> {
        let w = &self.wxpay;
        let (Some(appid), Some(mch_id), Some(api_key)) = (&w.appid, &w.mch_id, &w.api_key) else {
            bail!("PAYDESK_WXPAY__APPID, __MCH_ID and __API_KEY are required unless PAYDESK_SIMULATOR=on");
        };
        let api_key = wxpay::ApiKey::new(api_key.expose_secret());
        let mut client = wxpay::ClientConfig::new(appid, mch_id, api_key.clone());
        client.sign_type = self.sign_type()?;
        if let Some(base) = &w.base_url {
            client.base_url = base.trim_end_matches('/').to_owned();
        }
        if let Some(refund) = &w.refund_base_url {
            client.refund_base_url = Some(refund.trim_end_matches('/').to_owned());
        }
        (client.backup_base_url, client.refund_backup_base_url) = w.backups()?;
        if let Some(ca) = &w.ca_pem {
            client.extra_root_ca_pem = Some(
                std::fs::read(ca)
                    .with_context(|| format!("PAYDESK_WXPAY__CA_PEM: reading {}", ca.display()))?,
            );
        }
        client.identity = w.identity(mch_id)?;
        if let Some(login) = &self.mp.login_base_url {
            client.login_base_url = login.trim_end_matches('/').to_owned();
        }
        client.app_secret = self
            .mp
            .app_secret
            .as_ref()
            .map(|s| wxpay::AppSecret::new(s.expose_secret()));
        let merchant = MerchantCredentials {
            appid: appid.clone(),
            mch_id: mch_id.clone(),
            api_key,
        };
        Ok((merchant, client))
    }

    /// The in-process simulator's configuration (sandbox mode): its certificates go beside
    /// the SQLite file, else into a temp folder named after the database.
    pub fn sim_config(&self) -> paydesk_sim::SimConfig {
        paydesk_sim::SimConfig {
            cert_dir: sim_cert_dir(&self.database_url),
            // The sandbox's callbacks come to this server on loopback.
            allow_insecure_notify_urls: true,
            ..paydesk_sim::SimConfig::default()
        }
    }

    /// Leptos' rendering options for a server listening on `addr`.
    pub fn leptos_options(&self, addr: SocketAddr) -> leptos::config::LeptosOptions {
        leptos::config::LeptosOptions::builder()
            .output_name("paydesk")
            .site_root(self.site_root.to_string_lossy().into_owned())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            // A release build names its files after their content and says so in
            // `hash.txt` beside the binary (routes::assets); a debug build does not.
            .hash_files(crate::routes::assets::hash_file_beside_binary().is_some())
            .hash_file(crate::routes::assets::HASH_FILE.into())
            .build()
    }

    /// Simulator when `simulator = on`, or when unset and no merchant id is configured.
    pub fn pay_mode(&self) -> PayMode {
        match self.simulator {
            Some(true) => PayMode::Simulator,
            Some(false) => PayMode::Merchant,
            None if self.wxpay.mch_id.is_none() => PayMode::Simulator,
            None => PayMode::Merchant,
        }
    }

    /// Whether demo shoppers run: sandbox mode unless `PAYDESK_DEMO_SHOPPERS=off`; never in
    /// merchant mode (an explicit `on` there is refused by [`Settings::validate`]).
    pub fn runs_demo_shoppers(&self) -> bool {
        self.pay_mode() == PayMode::Simulator && self.demo_shoppers.unwrap_or(true)
    }

    /// Whether the first start of an empty database fills demo history: sandbox mode unless
    /// `PAYDESK_DEMO_HISTORY=off`; never in merchant mode.
    pub fn fills_demo_history(&self) -> bool {
        self.pay_mode() == PayMode::Simulator && self.demo_history.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        serde_json::from_str("{}").unwrap()
    }

    #[test]
    fn the_test_tools_variables_are_not_unknown_keys() {
        for key in [
            "test_postgres_url",
            "pg_durable",
            "sim_listen",
            "screenshots",
        ] {
            assert!(is_tooling_key(key), "{key}");
        }
        for key in ["listne", "wxpay", "screen"] {
            assert!(!is_tooling_key(key), "{key}");
        }
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = base();
        assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(s.database_url, "sqlite://data/paydesk.db");
        assert_eq!(s.pay_mode(), PayMode::Simulator);
        s.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = base();
        s.wxpay.sign_type = Some("md5".into());
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("PAYDESK_WXPAY__SIGN_TYPE"));

        let mut s = base();
        s.database_url = "mysql://x".into();
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("PAYDESK_DATABASE_URL"));

        let mut s = base();
        s.wxpay.mch_id = Some("1900000109".into());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("PAYDESK_WXPAY__APPID"), "{err}");
    }

    #[test]
    fn the_public_url_is_an_origin_only() {
        for good in [
            "https://pay.example.com",
            "https://pay.example.com/",
            "http://127.0.0.1:3000",
        ] {
            let mut s = base();
            s.public_url = Some(good.into());
            s.validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "pay.example.com",
            "ftp://pay.example.com",
            "https://pay.example.com/dashboard",
            "https://pay.example.com/?x=1",
            "https://user:pw@pay.example.com",
            "https://",
        ] {
            let mut s = base();
            s.public_url = Some(bad.into());
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains("PAYDESK_PUBLIC_URL"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_session_may_not_end_before_it_could_go_idle() {
        let mut s = base();
        assert_eq!(s.session_max_hours, 12);
        s.session_max_hours = 2;
        s.session_idle_minutes = 180;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("PAYDESK_SESSION_MAX_HOURS"), "{err}");
    }

    #[test]
    fn mp_limits_have_defaults_and_refuse_zero() {
        let s = base();
        assert_eq!(s.mp_limits.per_token_per_minute, 60);
        assert_eq!(s.mp_limits.per_address_per_minute, 1200);
        assert_eq!(s.mp_limits.login_per_address_per_minute, 30);
        assert_eq!(s.mp_limits.order_query_interval_seconds, 5);

        let mut s = base();
        s.mp_limits.per_address_burst = 0;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("PAYDESK_MP_LIMITS__PER_ADDRESS_BURST"),
            "{err}"
        );

        let mut s = base();
        s.mp_limits.order_query_interval_seconds = 3601;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("ORDER_QUERY_INTERVAL_SECONDS"), "{err}");
    }

    #[test]
    fn retention_and_disk_settings_are_checked() {
        let s = base();
        assert_eq!(s.retention.run_at_minute().unwrap(), 4 * 60);
        assert_eq!(
            s.retention.policy(),
            paydesk_core::retention::Policy::default()
        );
        assert_eq!(s.disk.low_free_mib, 1024);
        for bad in ["4:00", "24:00", "04:60", "noon"] {
            let mut s = base();
            s.retention.run_at = bad.into();
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains("PAYDESK_RETENTION__RUN_AT"), "{bad}: {err}");
        }
        let mut s = base();
        s.retention.api_call_bodies_days = 0;
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("PAYDESK_RETENTION__API_CALL_BODIES_DAYS"),
            "{err}"
        );
    }

    fn merchant(urls: serde_json::Value) -> Settings {
        let mut v = serde_json::json!({"simulator": "off", "wxpay": {
            "appid": "wx2421b1c4370ec43b", "mch_id": "10000100",
            "api_key": "192006250b4c09247ec02edce69f6a2d",
        }});
        for (k, x) in urls.as_object().unwrap() {
            v["wxpay"][k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn merchant_mode_fails_over_to_api2_only_from_the_production_base_unless_told_otherwise() {
        let backups = |v: serde_json::Value| merchant(v).wxpay.backups();
        let api2 = Some(wxpay::BACKUP_BASE_URL.to_owned());
        let sim = "http://127.0.0.1:8480";

        assert_eq!(
            backups(serde_json::json!({})).unwrap(),
            (api2.clone(), None)
        );
        assert_eq!(
            backups(serde_json::json!({"base_url": "https://api.mch.weixin.qq.com/", "refund_base_url": "https://api.mch.weixin.qq.com"})).unwrap(),
            (api2.clone(), api2.clone())
        );
        assert_eq!(
            backups(serde_json::json!({"base_url": sim})).unwrap(),
            (None, None)
        );
        assert_eq!(
            backups(serde_json::json!({"backup_base_url": "OFF"})).unwrap(),
            (None, None)
        );
        assert_eq!(
            backups(serde_json::json!({"base_url": sim, "backup_base_url": "http://127.0.0.1:8481/",
                "refund_base_url": "https://127.0.0.1:8443", "refund_backup_base_url": "https://127.0.0.1:8444"})).unwrap(),
            (Some("http://127.0.0.1:8481".into()), Some("https://127.0.0.1:8444".into()))
        );
        for (bad, name) in [
            (
                serde_json::json!({"backup_base_url": "api2.mch.weixin.qq.com"}),
                "PAYDESK_WXPAY__BACKUP_BASE_URL",
            ),
            (
                serde_json::json!({"backup_base_url": "ftp://x.example"}),
                "PAYDESK_WXPAY__BACKUP_BASE_URL",
            ),
            (
                serde_json::json!({"refund_base_url": sim, "refund_backup_base_url": "no"}),
                "PAYDESK_WXPAY__REFUND_BACKUP_BASE_URL",
            ),
            (
                serde_json::json!({"refund_backup_base_url": "https://127.0.0.1:8444"}),
                "PAYDESK_WXPAY__REFUND_BACKUP_BASE_URL",
            ),
        ] {
            let err = backups(bad).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        let (_, client) = merchant(serde_json::json!({})).merchant_client().unwrap();
        assert_eq!(client.backup_base_url, api2);
    }

    #[test]
    fn orders_live_at_least_the_five_minutes_wechat_pay_requires() {
        let mut s = base();
        s.order_expire_minutes = 5;
        s.validate().unwrap();
        s.order_expire_minutes = 4;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("PAYDESK_ORDER_EXPIRE_MINUTES"), "{err}");
    }

    #[test]
    fn merchant_mode_needs_both_notify_urls_public_https_and_without_parameters() {
        let ok = "https://pay.example.com/wxpay/notify/payment";
        let refund_ok = "https://pay.example.com/wxpay/notify/refund";
        let s = merchant(serde_json::json!({"notify_url": ok, "refund_notify_url": refund_ok}));
        s.validate().unwrap();
        let pay = s.pay_config("127.0.0.1:3000".parse().unwrap()).unwrap();
        assert_eq!(
            (pay.notify_url.as_str(), pay.refund_notify_url.as_str()),
            (ok, refund_ok)
        );

        for (urls, names, says) in [
            (
                serde_json::json!({"refund_notify_url": refund_ok}),
                "PAYDESK_WXPAY__NOTIFY_URL",
                "is required",
            ),
            (
                serde_json::json!({"notify_url": ok}),
                "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
                "is required",
            ),
            (
                serde_json::json!({"notify_url": "http://pay.example.com/n", "refund_notify_url": refund_ok}),
                "PAYDESK_WXPAY__NOTIFY_URL",
                "https://",
            ),
            (
                serde_json::json!({"notify_url": "https://127.0.0.1:3000/n", "refund_notify_url": refund_ok}),
                "PAYDESK_WXPAY__NOTIFY_URL",
                "cannot reach",
            ),
            (
                serde_json::json!({"notify_url": ok, "refund_notify_url": "https://10.0.0.8/r"}),
                "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
                "cannot reach",
            ),
            (
                serde_json::json!({"notify_url": format!("{ok}?shop=1"), "refund_notify_url": refund_ok}),
                "PAYDESK_WXPAY__NOTIFY_URL",
                "query string",
            ),
        ] {
            let err = merchant(urls.clone()).validate().unwrap_err().to_string();
            assert!(err.contains(names) && err.contains(says), "{urls}: {err}");
        }

        // The explicit relaxation for a simulator on this machine: loopback http passes,
        // parameters still do not.
        let local = "http://127.0.0.1:3000/wxpay/notify/payment";
        let s = merchant(
            serde_json::json!({"notify_url": local, "refund_notify_url": local,
            "allow_insecure_notify_urls": "on"}),
        );
        s.validate().unwrap();
        let s = merchant(serde_json::json!({"notify_url": format!("{local}?x=1"),
            "refund_notify_url": local, "allow_insecure_notify_urls": "on"}));
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("query string"));

        // The sandbox defaults to this server's own address.
        let pay = base()
            .pay_config("127.0.0.1:3000".parse().unwrap())
            .unwrap();
        assert_eq!(pay.notify_url, "http://127.0.0.1:3000/wxpay/notify/payment");
    }

    #[test]
    fn the_demo_runs_in_the_sandbox_by_default_and_never_for_a_merchant() {
        let sandbox = base();
        assert_eq!(sandbox.pay_mode(), PayMode::Simulator);
        assert!(sandbox.runs_demo_shoppers() && sandbox.fills_demo_history());

        let quiet: Settings = serde_json::from_value(serde_json::json!({
            "demo_shoppers": "off",
            "demo_history": "off",
        }))
        .unwrap();
        assert!(!quiet.runs_demo_shoppers() && !quiet.fills_demo_history());

        let off: Settings =
            serde_json::from_value(serde_json::json!({ "simulator": "off" })).unwrap();
        assert!(!off.runs_demo_shoppers() && !off.fills_demo_history());
        for key in ["demo_shoppers", "demo_history"] {
            let mut explicit = merchant(serde_json::json!({
                "notify_url": "https://pay.example.com/wxpay/notify/payment",
                "refund_notify_url": "https://pay.example.com/wxpay/notify/refund",
            }));
            explicit.validate().unwrap();
            match key {
                "demo_shoppers" => explicit.demo_shoppers = Some(true),
                _ => explicit.demo_history = Some(true),
            }
            let err = explicit.validate().unwrap_err().to_string();
            assert!(
                err.contains(&format!("PAYDESK_{}=on", key.to_uppercase())),
                "{err}"
            );
        }
    }

    #[test]
    fn on_off_settings_are_bools_spelled_on_off_or_true_false() {
        let s: Settings = serde_json::from_value(serde_json::json!({
            "simulator": "off",
            "sync": {"enabled": "off"},
            "refunds": {"enabled": false},
            "retention": {"enabled": "true"},
            "demo_shoppers": "on",
        }))
        .unwrap();
        assert_eq!(s.simulator, Some(false));
        assert!(!s.sync.enabled && !s.refunds.enabled && s.retention.enabled);
        assert_eq!(s.demo_shoppers, Some(true));
        let d = base();
        assert_eq!(d.simulator, None);
        assert!(d.sync.enabled && d.refunds.enabled && d.retention.enabled);

        // Through the config crate (what env vars and the TOML file go through) a bad word
        // is refused with its key.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("paydesk.toml");
        std::fs::write(&file, "[sync]\nenabled = \"maybe\"\n").unwrap();
        let err = format!("{:#}", Settings::load(Some(&file)).unwrap_err());
        assert!(
            err.contains("sync.enabled") && err.contains("`on` or `off`"),
            "{err}"
        );
        std::fs::write(&file, "simulator = \"on\"\n[refunds]\nenabled = false\n").unwrap();
        let s = Settings::load(Some(&file)).unwrap();
        assert_eq!(
            (s.pay_mode(), s.refunds.enabled),
            (PayMode::Simulator, false)
        );
    }

    #[test]
    fn simulator_certificates_go_beside_the_sqlite_file() {
        assert_eq!(
            sim_cert_dir("sqlite://data/paydesk.db?mode=rwc"),
            std::path::PathBuf::from("data/sim-certs")
        );
        assert_eq!(
            sim_cert_dir("sqlite:paydesk.db"),
            std::path::PathBuf::from("sim-certs")
        );
        assert_eq!(
            sim_cert_dir("postgres://u@h/db"),
            sim_cert_dir("postgres://u@h/db"),
            "stable across restarts"
        );
        assert_ne!(
            sim_cert_dir("postgres://u@h/db1"),
            sim_cert_dir("postgres://u@h/db2"),
            "one folder per database"
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let mut s = base();
        s.wxpay.api_key = Some(SecretString::from("0123456789abcdef0123456789abcdef"));
        s.admin_password = Some(SecretString::from("hunter2hunter2"));
        s.metrics_token = Some(SecretString::from("scrape-me-secretly"));
        let printed = format!("{s:?}");
        assert!(!printed.contains("0123456789abcdef"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("scrape-me"), "{printed}");
    }
}
