#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod bill;
pub mod certs;
mod control;
mod faults;
mod hosts;
mod login;
mod notify;
mod refunds;
mod restore;
mod server;
mod store;
mod wechat;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::task::AbortHandle;
use wxpay::ApiKey;

pub use certs::CertPaths;
pub use faults::{
    ActiveFaults, ApiFault, ApiFaultKind, BillFault, FaultPlan, NotifyFault, NotifyFaultKind,
};
pub use hosts::{Host, HostMode};
pub use login::default_openid;
pub use notify::{DeliveryAttempt, NotificationKind, PayRequest, RETRY_SCHEDULE_SECS};
pub use restore::{KnownOrder, KnownRefund, RestoreReport};
pub use server::{start, RunningSim};
pub use store::{
    CodeMapping, Order, OrderState, PlannedOutcome, Refund, RefundSource, RefundState,
};
pub use wechat::ApiCall;

/// Demo appid (WeChat's documentation example), used when none is configured.
pub const DEFAULT_APPID: &str = "wx2421b1c4370ec43b";
/// Demo merchant number (WeChat's documentation example).
pub const DEFAULT_MCH_ID: &str = "10000100";
/// Demo API v2 key (WeChat's documentation example, 32 characters). Public: never use it
/// anywhere but against the simulator.
pub const DEFAULT_API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// Demo Mini Program AppSecret for jscode2session.
pub const DEFAULT_APP_SECRET: &str = "5f0c3a7e9b1d4c2a8e6f0b3d7a9c1e5f";

/// Configuration of a simulator (see the crate docs for the meaning of each knob).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Plain HTTP listener: the WeChat Pay API paths, jscode2session and the `/sim/` control
    /// API (default `127.0.0.1:0`, a free port).
    pub listen: SocketAddr,
    /// Mutual-TLS listener for `/secapi/pay/refund` (default `127.0.0.1:0`).
    pub tls_listen: SocketAddr,
    /// The backup host's plain listener (`api2.mch.weixin.qq.com`, §2.1): the same paths
    /// and the same state as `listen`, so a client's failover can be tested; `None` (the
    /// default): no backup host. See [`Host`] and [`HostMode`].
    pub backup_listen: Option<SocketAddr>,
    /// The backup host's mutual-TLS listener for the refund (needs `backup_listen`).
    pub backup_tls_listen: Option<SocketAddr>,
    /// Where the certificates are generated on first start and read afterwards (default
    /// `$TMPDIR/paydesk-sim-certs`).
    pub cert_dir: PathBuf,
    /// The merchant's appid.
    pub appid: String,
    /// The merchant number (also the PKCS#12 password).
    pub mch_id: String,
    /// The API v2 key (32 characters).
    pub api_key: ApiKey,
    /// The Mini Program AppSecret checked by jscode2session.
    pub app_secret: wxpay::AppSecret,
    /// How many times faster than real time the notification retry schedule and the refund
    /// processing delay run (1 = real time; 1000 turns the 15 s first retry into 15 ms).
    pub time_scale: f64,
    /// Simulated time a refund stays PROCESSING before it succeeds on its own (default 60 s,
    /// divided by `time_scale`). A control-API outcome overrides it.
    pub refund_delay: Duration,
    /// How long an order can be paid when unifiedorder has no `time_expire` (default 2 h).
    pub order_lifetime: Duration,
    /// Put `sign_type` into payment notifications (default false: WeChat often omits it, the
    /// harder case for the receiver, §5.2).
    pub notify_include_sign_type: bool,
    /// Answer a changed unifiedorder re-entry with `INVALID_REQUEST` "201 商户订单号重复"
    /// (default true: the form the real service commonly answers with, §7, §8.1) rather than
    /// `OUT_TRADE_NO_USED` (false; also observed).
    pub reentry_invalid_request: bool,
    /// Refundable merchant balance in fen (`None` = unlimited); a refund above it is refused
    /// with `NOTENOUGH`. Payments add their cash amount to it.
    pub merchant_balance_fen: Option<i64>,
    /// Refund notification URL when the refund request has no `notify_url` (the "merchant
    /// platform setting").
    pub default_refund_notify_url: Option<String>,
    /// How long the sender waits for a notification reply (real time, default 5 s).
    pub notify_timeout: Duration,
    /// Refuse closeorder on orders younger than this with `TRADE_STATE_ERROR` (WeChat asks
    /// for 5 minutes, §8.4). Default 5 minutes (`wxpay::CLOSE_AFTER`), the strict reading;
    /// `None` accepts at once.
    pub close_min_age: Option<Duration>,
    /// Answer every business refusal (`result_code=FAIL`) without `sign` (default false:
    /// signed). WeChat Pay sometimes leaves it out (§6); a client must still reach the
    /// `err_code`, and must never accept a `SUCCESS` without a valid sign. The
    /// `unsigned_errors` API fault does the same for chosen calls.
    pub unsigned_business_errors: bool,
    /// Accept `http://` and loopback/private notify URLs (default false: like WeChat Pay,
    /// only public `https://` URLs without a query string, docs/wechatpay-v2.md §8.1). The
    /// relaxation a simulator on the merchant's own machine needs (the in-process sandbox,
    /// tests, benchmarks, a local cluster); `--allow-insecure-notify-urls`.
    pub allow_insecure_notify_urls: bool,
    /// Accept a request `sign` in lowercase hex (default false: refused with `签名错误`,
    /// §5.3 — whether WeChat accepts it is unconfirmed).
    pub accept_lowercase_sign: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        SimConfig {
            listen: loopback,
            tls_listen: loopback,
            backup_listen: None,
            backup_tls_listen: None,
            cert_dir: std::env::temp_dir().join("paydesk-sim-certs"),
            appid: DEFAULT_APPID.into(),
            mch_id: DEFAULT_MCH_ID.into(),
            api_key: ApiKey::new(DEFAULT_API_KEY),
            app_secret: wxpay::AppSecret::new(DEFAULT_APP_SECRET),
            time_scale: 1.0,
            refund_delay: Duration::from_secs(60),
            order_lifetime: Duration::from_secs(2 * 3600),
            notify_include_sign_type: false,
            reentry_invalid_request: true,
            merchant_balance_fen: None,
            default_refund_notify_url: None,
            notify_timeout: Duration::from_secs(5),
            close_min_age: Some(wxpay::CLOSE_AFTER),
            unsigned_business_errors: false,
            accept_lowercase_sign: false,
            allow_insecure_notify_urls: false,
        }
    }
}

impl SimConfig {
    /// The notify URLs this simulator takes: WeChat Pay's own rule, unless relaxed.
    pub fn notify_url_rules(&self) -> wxpay::NotifyUrlRules {
        wxpay::NotifyUrlRules::allowing_insecure(self.allow_insecure_notify_urls)
    }
}

/// Errors of the control operations (the `/sim/` API answers them as JSON with 404 / 409 /
/// 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// No such order or refund.
    #[error("{0} not found")]
    NotFound(String),
    /// The operation does not fit the current state (e.g. paying a closed order).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// The simulator's clock: wall time plus what `advance` added. Time-scaling applies to the
/// waits (retry schedule, refund delay), not to this clock.
#[derive(Debug)]
pub(crate) struct Clock {
    base_wall: OffsetDateTime,
    base: Instant,
    offset: Mutex<Duration>,
    scale: f64,
}

impl Clock {
    fn new(scale: f64) -> Self {
        Clock {
            base_wall: OffsetDateTime::now_utc(),
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
            scale,
        }
    }

    /// Simulated now.
    pub fn now(&self) -> OffsetDateTime {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        self.base_wall + self.base.elapsed() + offset
    }

    /// Jump forward (order expiry, prepay validity, bill readiness).
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// Real time to wait for a simulated duration.
    pub fn real(&self, simulated: Duration) -> Duration {
        simulated.div_f64(self.scale)
    }
}

/// Everything the handlers share.
pub(crate) struct Sim {
    pub config: SimConfig,
    pub clock: Clock,
    pub store: Mutex<store::Store>,
    pub faults: Mutex<faults::Faults>,
    pub attempts: Mutex<Vec<DeliveryAttempt>>,
    pub reorder: Mutex<notify::ReorderGroups>,
    pub notify_seq: AtomicU64,
    pub attempt_seq: AtomicU64,
    pub api_calls: Mutex<Vec<wechat::ApiCall>>,
    pub api_call_seq: AtomicU64,
    pub http: reqwest::Client,
    pub tasks: Mutex<Vec<AbortHandle>>,
    /// What `GET /sim/health` reports (set once at start).
    pub info: std::sync::OnceLock<serde_json::Value>,
    /// How each host answers (hosts.rs).
    pub hosts: hosts::Hosts,
    /// The key of the sandbox prefixes ([`sandbox_sign_key`]).
    pub sandbox_key: ApiKey,
}

/// The sandbox key getsignkey hands out for a merchant (§8.11): like WeChat's, 32 lowercase
/// hex characters and different from the API key; deterministic (MD5 of a label, the
/// mch_id and the API key), so a restarted simulator hands out the same one.
pub(crate) fn sandbox_sign_key(mch_id: &str, api_key: &ApiKey) -> ApiKey {
    use md5::Digest as _;
    let mut h = md5::Md5::new();
    h.update(b"paydesk-sim sandbox_signkey\n");
    h.update(mch_id.as_bytes());
    h.update(b"\n");
    h.update(api_key.expose().as_bytes());
    ApiKey::new(hex_lower(&h.finalize()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sim {
    /// The key that signs and verifies everything on a sandbox prefix (`sandbox`) or on the
    /// production paths (§3: the sandbox key replaces the API key there).
    pub fn key(&self, sandbox: bool) -> &ApiKey {
        if sandbox {
            &self.sandbox_key
        } else {
            &self.config.api_key
        }
    }
}

impl Sim {
    pub fn store(&self) -> MutexGuard<'_, store::Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, faults::Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Spawn a background task that `shutdown` aborts.
    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut).abort_handle();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub fn abort_all(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            t.abort();
        }
    }
}
