//! Builds the application: state, router, listener. Tests call [`Application::build`] with
//! their own settings and port 0, exactly as `paydesk serve` does (style.md §2).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use app::{shell, App};
use axum::body::Body;
use axum::extract::{FromRef, MatchedPath, Request};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use paydesk_core::api_calls::ApiCallRecorder;
use paydesk_core::db::PoolSizes;
use paydesk_core::disk::DiskMonitor;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{Intake, MerchantCredentials};
use paydesk_core::sessions::DbSessionStore;
use paydesk_core::Db;
use paydesk_sim::{RunningSim, SimConfig};
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::client_ip::{self, TrustedProxies};
use crate::config::{PayMode, Settings};
use crate::metrics::{self, Metrics};
use crate::routes;

/// Everything a request handler or server function may need (style.md §3).
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
    /// The reverse proxies whose `X-Forwarded-For` is believed (`crate::client_ip`).
    pub trusted_proxies: Arc<TrustedProxies>,
    /// Free space on the SQLite database's disk, as last checked (`/readyz`, the banner).
    pub disk: Arc<DiskMonitor>,
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

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "paydesk_session";

/// The dashboard's routes, worked out once per process.
///
/// `generate_route_list` renders the whole app once with resource loading suppressed, and
/// that switch is process-wide (`leptos_server`'s `SuppressResourceLoad`): a page render
/// anywhere in the process whose first resource poll falls inside that window waits
/// forever (leptos-rs/leptos#4773). A server builds its router once, before it listens,
/// so there it cannot happen; but tests build many apps in one process while others are
/// rendering pages, and one page render in a few hundred never finished. The routes
/// depend only on the `App` component, so the first list serves every later router, and
/// no route list is generated once any app could be serving.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The complete router: operations endpoints, preferences, server functions, dashboard
/// pages and static assets, with sessions, metrics and request tracing around them.
pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let session_layer = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(state.settings.cookie_secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::minutes(
            state.settings.session_idle_minutes,
        )));

    let options = state.leptos_options.clone();

    let dashboard = Router::new()
        .merge(routes::ops::router())
        .merge(routes::prefs::router())
        .merge(routes::mp::router(&state.settings.mp_limits))
        .merge(routes::events::router())
        .merge(routes::orders::router())
        // Registers every server function under /api/… as well as the pages.
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(session_layer)
        // Server functions find what they need on the request (see `app::server::ssr`).
        .layer(axum::Extension(state.db.clone()))
        .layer(axum::Extension(state.events.clone()))
        .layer(axum::Extension(state.wxpay.clone()))
        .layer(axum::Extension(state.summary.clone()))
        .layer(axum::Extension(state.disk.clone()))
        .layer(axum::Extension(state.settings.session_lifetime()))
        .layer(middleware::from_fn_with_state(
            SameOrigin::new(state.settings.public_url.as_deref()),
            refuse_cross_site,
        ))
        // Who the client is, behind a trusted reverse proxy too (audit, throttling,
        // spbill_create_ip).
        .layer(middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            client_ip::resolve,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str)
                    .unwrap_or("-");
                // The path only, never the query string: it may carry ids or tokens.
                tracing::info_span!("http", method = %req.method(), route, path = req.uri().path())
            }),
        );

    // WeChat Pay's callbacks are authenticated by their signature, not by a session: they
    // skip the dashboard's layers above (session, request extensions, the cross-site check,
    // the `http` span — the receiver opens its own span with the peer) and their handlers
    // get only the intake, not a clone of the whole state. Each of those was paid by every
    // callback (callgrind, docs/benchmarks.md).
    Router::new()
        .merge(routes::wxpay::router(
            state.intake.clone(),
            state.trusted_proxies.clone(),
        ))
        .merge(dashboard)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Where the dashboard's own requests come from: the configured public URL
/// (`PAYDESK_PUBLIC_URL`), or else whatever `Host` each request names.
#[derive(Debug, Clone)]
struct SameOrigin(Option<Arc<reqwest::Url>>);

impl SameOrigin {
    /// From `PAYDESK_PUBLIC_URL` (checked by `Settings::validate`; an unparsable value here
    /// falls back to `Host`, never to accepting everything).
    fn new(public_url: Option<&str>) -> Self {
        SameOrigin(
            public_url
                .and_then(|u| reqwest::Url::parse(u.trim()).ok())
                .map(Arc::new),
        )
    }
}

/// CSRF defence in depth for the dashboard's server functions (everything under `/api/`
/// except the mini-program API, which authenticates with a bearer token, not a cookie), on
/// top of `SameSite=Strict` cookies: a mutation whose `Sec-Fetch-Site` says another site
/// sent it, or whose `Origin` is not the dashboard's, is refused before it reaches the
/// function.
async fn refuse_cross_site(
    axum::extract::State(own): axum::extract::State<SameOrigin>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let cookie_authenticated = path.starts_with("/api/") && !path.starts_with("/api/mp/");
    let method = req.method();
    if cookie_authenticated
        && method != Method::GET
        && method != Method::HEAD
        && is_cross_site(req.headers(), &own)
    {
        tracing::warn!("cross-site request to a server function refused");
        return (StatusCode::FORBIDDEN, "cross-site request refused\n").into_response();
    }
    next.run(req).await
}

/// With a public URL configured, `Origin` must be its origin (scheme, host and port; the
/// `Host` header is not consulted, so a proxy may rewrite it). Without one, the origin's
/// host must equal `Host`. A request without `Origin` is judged by `Sec-Fetch-Site` alone.
fn is_cross_site(headers: &HeaderMap, own: &SameOrigin) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    match &own.0 {
        Some(public) => !reqwest::Url::parse(origin).is_ok_and(|o| o.origin() == public.origin()),
        None => {
            let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
                return false;
            };
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            origin == "null" || origin_host != host
        }
    }
}

/// A built application, bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    port: u16,
}

/// What `Application::build` did on an empty database.
#[derive(Debug)]
pub enum Bootstrap {
    /// Accounts existed already.
    Existing,
    /// `admin` was created with `PAYDESK_ADMIN_PASSWORD`.
    AdminFromConfig,
    /// `admin` was created with this generated password, to be printed once.
    AdminGenerated(secrecy::SecretString),
}

impl Application {
    /// Connects the database, applies migrations, creates the first admin on an empty
    /// database, and binds the listener (`settings.listen`, port 0 allowed).
    pub async fn build(settings: Settings) -> anyhow::Result<(Application, Bootstrap)> {
        let db = Db::connect(&settings.database_url, PoolSizes::default()).await?;
        db.migrate().await?;
        let bootstrap =
            match paydesk_core::users::ensure_first_admin(&db, settings.admin_password.clone())
                .await?
            {
                paydesk_core::users::FirstAdmin::AlreadySetUp => Bootstrap::Existing,
                paydesk_core::users::FirstAdmin::FromConfig => Bootstrap::AdminFromConfig,
                paydesk_core::users::FirstAdmin::Generated(p) => Bootstrap::AdminGenerated(p),
            };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding PAYDESK_LISTEN (listen) {}", settings.listen))?;
        let local = listener.local_addr()?;
        let leptos_options = leptos_options(&settings, local);
        let (merchant, simulator, client_config) = merchant_and_simulator(&settings).await?;
        if simulator.is_some() {
            let added = paydesk_core::products::seed_demo(&db).await?;
            if added > 0 {
                tracing::info!(
                    products = added,
                    "demo catalogue added (sandbox mode, empty catalogue)"
                );
            }
        }
        let merchant = Arc::new(merchant);
        let certificate = certificate_report(&client_config);
        let api_calls = ApiCallRecorder::start(db.clone());
        let wxpay = wxpay::Client::new(client_config)
            .context("setting up the WeChat Pay client")?
            .with_observer(api_calls.clone());
        let events = EventBus::new();
        let intake = Intake::with_policy(
            db.clone(),
            merchant.clone(),
            events.clone(),
            settings.callbacks.policy(),
        );
        let pay = pay_config(&settings, local)?;
        let trusted_proxies = Arc::new(settings.trusted_proxies()?);
        let disk = Arc::new(DiskMonitor::new(
            &db,
            settings.disk.low_free_mib.saturating_mul(1024 * 1024),
        ));
        // Checked once before serving, so the first /readyz already knows.
        disk.check();
        let summary = crate::summary::settings_summary(
            &settings,
            wxpay.config(),
            &pay,
            certificate.as_ref(),
            simulator.is_some(),
            db.backend(),
        );
        let state = AppState {
            leptos_options,
            db,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            merchant,
            simulator: simulator.map(Arc::new),
            wxpay: Arc::new(wxpay),
            api_calls,
            events,
            intake,
            pay: Arc::new(pay),
            certificate: certificate.map(Arc::new),
            summary: Arc::new(summary),
            trusted_proxies,
            disk,
        };
        let router = router(state.clone());
        Ok((
            Application {
                listener,
                router,
                state,
                port: local.port(),
            },
            bootstrap,
        ))
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests use its database).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests, stops the
    /// session cleanup job and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use tower_sessions::session_store::ExpiredDeletion as _;
        let store = DbSessionStore::new(self.state.db.clone());
        let cleanup = tokio::spawn(async move {
            let mut every = tokio::time::interval(tokio::time::Duration::from_secs(600));
            loop {
                every.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "deleting expired sessions failed; will retry");
                }
            }
        });
        let jobs = crate::jobs::Jobs::start(&self.state);
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        cleanup.abort();
        jobs.stop(std::time::Duration::from_secs(10)).await;
        self.state.api_calls.flush().await;
        self.state.db.close().await;
        served.context("serving HTTP")
    }
}

/// Our merchant credentials and WeChat Pay client configuration: in sandbox mode the
/// in-process simulator is started (both listeners on free loopback ports, real-time retry
/// schedule, certificates beside the SQLite file or in the temp folder) and its credentials
/// are used; otherwise the configured ones (checked present by `Settings::validate`).
async fn merchant_and_simulator(
    settings: &Settings,
) -> anyhow::Result<(MerchantCredentials, Option<RunningSim>, wxpay::ClientConfig)> {
    let sign_type = sign_type(settings)?;
    match settings.pay_mode() {
        PayMode::Simulator => {
            let config = SimConfig {
                cert_dir: sim_cert_dir(&settings.database_url),
                ..SimConfig::default()
            };
            let sim = paydesk_sim::start(config)
                .await
                .context("starting the WeChat Pay simulator (PAYDESK_SIMULATOR)")?;
            let merchant = MerchantCredentials {
                appid: sim.appid().to_owned(),
                mch_id: sim.mch_id().to_owned(),
                api_key: sim.api_key().clone(),
            };
            let mut client = sim.client_config()?;
            client.sign_type = sign_type;
            // A configured certificate replaces the simulator's own (to try another one
            // against the simulator's mutual TLS).
            if let Some(identity) = configured_identity(&settings.wxpay, sim.mch_id())? {
                client.identity = Some(identity);
            }
            Ok((merchant, Some(sim), client))
        }
        PayMode::Merchant => {
            let w = &settings.wxpay;
            let (Some(appid), Some(mch_id), Some(api_key)) = (&w.appid, &w.mch_id, &w.api_key)
            else {
                anyhow::bail!("PAYDESK_WXPAY__APPID, __MCH_ID and __API_KEY are required unless PAYDESK_SIMULATOR=on");
            };
            let api_key = wxpay::ApiKey::new(api_key.expose_secret());
            let mut client = wxpay::ClientConfig::new(appid, mch_id, api_key.clone());
            client.sign_type = sign_type;
            if let Some(base) = &w.base_url {
                client.base_url = base.trim_end_matches('/').to_owned();
            }
            if let Some(refund) = &w.refund_base_url {
                client.refund_base_url = Some(refund.trim_end_matches('/').to_owned());
            }
            if let Some(ca) = &w.ca_pem {
                client.extra_root_ca_pem =
                    Some(std::fs::read(ca).with_context(|| {
                        format!("PAYDESK_WXPAY__CA_PEM: reading {}", ca.display())
                    })?);
            }
            client.identity = configured_identity(w, mch_id)?;
            if let Some(login) = &settings.mp.login_base_url {
                client.login_base_url = login.trim_end_matches('/').to_owned();
            }
            client.app_secret = settings
                .mp
                .app_secret
                .as_ref()
                .map(|s| wxpay::AppSecret::new(s.expose_secret()));
            Ok((
                MerchantCredentials {
                    appid: appid.clone(),
                    mch_id: mch_id.clone(),
                    api_key,
                },
                None,
                client,
            ))
        }
    }
}

/// The merchant client certificate from `PAYDESK_WXPAY__CERT_PEM` + `__KEY_PEM` or `__P12`
/// (password = mch_id), if configured.
fn configured_identity(
    w: &crate::config::WxpaySettings,
    mch_id: &str,
) -> anyhow::Result<Option<wxpay::MerchantIdentity>> {
    Ok(match (&w.cert_pem, &w.key_pem, &w.p12) {
        (Some(cert), Some(key), _) => Some(
            wxpay::MerchantIdentity::from_pem_files(cert, key)
                .context("PAYDESK_WXPAY__CERT_PEM / __KEY_PEM")?,
        ),
        (None, None, Some(p12)) => Some(
            wxpay::MerchantIdentity::from_pkcs12_file(p12, mch_id)
                .context("PAYDESK_WXPAY__P12 (the password is the mch_id)")?,
        ),
        (None, None, None) => None,
        _ => anyhow::bail!("PAYDESK_WXPAY__CERT_PEM and PAYDESK_WXPAY__KEY_PEM go together"),
    })
}

fn sign_type(settings: &Settings) -> anyhow::Result<wxpay::SignType> {
    match settings.wxpay.sign_type.as_deref() {
        None => Ok(wxpay::SignType::Md5),
        Some(t) => t
            .parse()
            .map_err(|_| anyhow::anyhow!("PAYDESK_WXPAY__SIGN_TYPE (wxpay.sign_type): {t:?}")),
    }
}

/// The callback URLs (configured, or this server's own address: fine for the in-process
/// simulator, never for WeChat Pay, which needs a public HTTPS URL) and order settings.
fn pay_config(settings: &Settings, local: SocketAddr) -> anyhow::Result<PayConfig> {
    let mut own = local;
    if own.ip().is_unspecified() {
        own.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let notify_url = settings
        .wxpay
        .notify_url
        .clone()
        .unwrap_or_else(|| format!("http://{own}{}", routes::wxpay::notify::PAYMENT_PATH));
    let refund_notify_url = settings
        .wxpay
        .refund_notify_url
        .clone()
        .unwrap_or_else(|| format!("http://{own}{}", routes::wxpay::notify::REFUND_PATH));
    Ok(PayConfig {
        notify_url,
        refund_notify_url,
        order_expire: std::time::Duration::from_secs(
            u64::try_from(settings.order_expire_minutes).unwrap_or(30) * 60,
        ),
        sign_type: sign_type(settings)?,
        self_url: format!("http://{own}"),
    })
}

/// Reads the merchant certificate's subject and expiry and logs them, with a warning from
/// 30 days before it expires (refunds stop working when it does). An unreadable
/// certificate is logged as an error; the server still starts (payments do not need it).
fn certificate_report(config: &wxpay::ClientConfig) -> Option<wxpay::CertificateInfo> {
    let identity = config.identity.as_ref()?;
    match identity.certificate_info() {
        Ok(info) => {
            let now = time::OffsetDateTime::now_utc();
            let days = info.days_left(now);
            if info.expires_within(30, now) {
                tracing::warn!(subject = %info.subject, not_after = %info.not_after, days_left = days, "the merchant certificate expires soon: renew it, refunds stop working when it does");
            } else {
                tracing::info!(subject = %info.subject, not_after = %info.not_after, days_left = days, "merchant certificate for refunds");
            }
            Some(info)
        }
        Err(e) => {
            tracing::error!(error = %e, "the merchant certificate cannot be read: refunds will fail");
            None
        }
    }
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

fn leptos_options(settings: &Settings, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("paydesk")
        .site_root(settings.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
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
    fn cross_site_mutations_are_recognised() {
        let by_host = SameOrigin::new(None);
        let is_cross_site = |h: &HeaderMap| is_cross_site(h, &by_host);
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:3000")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "null")
        ])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn with_a_public_url_only_its_origin_passes_whatever_the_host() {
        let own = SameOrigin::new(Some("https://pay.example.com"));
        let check = |origin: &str, host: &str| {
            is_cross_site(&headers(&[("host", host), ("origin", origin)]), &own)
        };
        // A proxy rewrote Host to the upstream address: still our origin.
        assert!(!check("https://pay.example.com", "127.0.0.1:3000"));
        assert!(!check("https://PAY.example.com:443", "127.0.0.1:3000"));
        // Equal to Host, but not the public URL: refused.
        assert!(check("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(check("http://pay.example.com", "pay.example.com"));
        assert!(check(
            "https://pay.example.com:8443",
            "pay.example.com:8443"
        ));
        assert!(check("null", "pay.example.com"));
    }
}
