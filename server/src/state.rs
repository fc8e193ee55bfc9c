//! The state every handler and job shares (docs/style.md §3), and the pay flow's resolved
//! settings. Its own module so that routes and jobs depend on it, not on `startup`, which
//! builds it.

use std::sync::Arc;

use app::server::ssr::ServerContext;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use paydesk_core::api_calls::ApiCallRecorder;
use paydesk_core::disk::DiskMonitor;
use paydesk_core::doctor::Doctor;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{Intake, MerchantCredentials};
use paydesk_core::Db;
use paydesk_sim::RunningSim;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::middleware::client_ip::TrustedProxies;

/// Everything a request handler or server function may need (docs/style.md §3).
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Leptos' rendering options (output name, site root).
    pub leptos_options: LeptosOptions,
    /// The database.
    pub db: Db,
    /// The settings this process started with.
    pub settings: Arc<Settings>,
    /// The metrics registry.
    pub metrics: Arc<Metrics>,
    /// Our merchant identity for verifying WeChat Pay's callbacks: the configured one, or
    /// the in-process simulator's.
    pub merchant: Arc<MerchantCredentials>,
    /// The in-process WeChat Pay simulator in sandbox mode (`PAYDESK_SIMULATOR=on`).
    pub simulator: Option<Arc<RunningSim>>,
    /// The WeChat Pay client (every call recorded in `api_calls`).
    pub wxpay: Arc<wxpay::Client>,
    /// The recorder behind the client's call log.
    pub api_calls: Arc<ApiCallRecorder>,
    /// What happened, for live views and alerts.
    pub events: EventBus,
    /// Where notifications are received, published and (if the database is down) kept.
    pub intake: Intake,
    /// The pay flow's settings, resolved.
    pub pay: Arc<PayConfig>,
    /// The merchant certificate used for refunds, when one is configured.
    pub certificate: Option<Arc<wxpay::CertificateInfo>>,
    /// What the Settings page shows of all this, secrets masked (`crate::summary`).
    pub summary: Arc<app::dto::SettingsSummary>,
    /// The reverse proxies whose `X-Forwarded-For` is believed (`crate::middleware::client_ip`).
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Free space on the SQLite database's disk, as last checked (`/readyz`, the banner).
    pub disk: Arc<DiskMonitor>,
    /// The pre-flight checks of the Settings page (`crate::doctor::server_setup`).
    pub doctor: Arc<Doctor>,
    /// Fires when the server begins to shut down: jobs stop, live streams end.
    pub stopping: crate::jobs::Stop,
}

/// The pay flow's settings, resolved at start.
#[derive(Debug, Clone)]
pub struct PayConfig {
    /// The `notify_url` sent with every unifiedorder.
    pub notify_url: String,
    /// The refund `notify_url`.
    pub refund_notify_url: String,
    /// How long a new order can be paid.
    pub order_expire: std::time::Duration,
    /// The algorithm for new orders.
    pub sign_type: wxpay::SignType,
    /// This server's own base URL on loopback (the demo shoppers call it).
    pub self_url: String,
}

impl AppState {
    /// What server functions find on every dashboard request (`app::server::ssr::context`).
    pub fn server_context(&self) -> ServerContext {
        ServerContext {
            db: self.db.clone(),
            events: self.events.clone(),
            wxpay: self.wxpay.clone(),
            summary: self.summary.clone(),
            disk: self.disk.clone(),
            doctor: self.doctor.clone(),
            session_lifetime: self.settings.session_lifetime(),
            appid: self.merchant.appid.clone(),
            refund_policy: crate::jobs::refunds::policy(self),
        }
    }
}
