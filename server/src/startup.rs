//! Builds the application: database, WeChat Pay client (or the in-process simulator),
//! [`AppState`], [`router`], listener; then serves it with the [`crate::jobs`] beside it.
//! Tests call [`Application::build`] with their own settings and port 0, exactly as
//! `paydesk serve` does (docs/style.md §2).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use paydesk_core::api_calls::ApiCallRecorder;
use paydesk_core::db::PoolSizes;
use paydesk_core::disk::DiskMonitor;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{Intake, MerchantCredentials};
use paydesk_core::Db;
use paydesk_sim::RunningSim;
use tokio::net::TcpListener;

use crate::config::{PayMode, Settings};
use crate::metrics::Metrics;
use crate::router::router;
use crate::state::AppState;

/// A built application, bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    port: u16,
    /// PostgreSQL: the event relay to the other instances (stops when dropped).
    _relay: Option<paydesk_core::events::Relay>,
    /// Begins the shutdown (`state.stopping`).
    stop: tokio::sync::watch::Sender<bool>,
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
        // An instance with a webhook keeps the alert outbox on (its alert job renews it);
        // one without changes nothing, but says whether another keeps alerts on.
        match &settings.alerts.webhook_url {
            Some(url) => {
                let target =
                    crate::jobs::alerts::target_host(secrecy::ExposeSecret::expose_secret(url));
                paydesk_core::alerts::configure(&db, Some(&target))
                    .await
                    .context("turning merchant alerts on")?;
            }
            None => {
                if let Some(target) = paydesk_core::alerts::configured_target(&db).await? {
                    tracing::warn!(%target, "merchant alerts are on in the database (another instance has a webhook), but PAYDESK_ALERTS__WEBHOOK_URL is not set here: this instance sends none");
                }
            }
        }
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding PAYDESK_LISTEN (listen) {}", settings.listen))?;
        let local = listener.local_addr()?;
        let leptos_options = settings.leptos_options(local);
        let (merchant, simulator, client_config) = merchant_and_simulator(&settings).await?;
        let pay = settings.pay_config(local)?;
        if let Some(sim) = &simulator {
            let fresh = !matches!(bootstrap, Bootstrap::Existing);
            crate::sandbox::prepare(&db, sim, &pay, fresh, settings.fills_demo_history()).await?;
        }
        let certificate = certificate_report(&client_config);
        let api_calls = ApiCallRecorder::start(db.clone());
        let wxpay = wxpay::Client::new(client_config)
            .context("setting up the WeChat Pay client")?
            .with_observer(api_calls.clone());
        let merchant = Arc::new(sandbox_merchant(merchant, &wxpay).await?);
        let events = EventBus::new();
        // Several instances share PostgreSQL: each one's events reach every dashboard.
        let relay = (db.backend() == paydesk_core::Backend::Postgres)
            .then(|| events.relay_postgres(&settings.database_url, db.writer().clone()));
        let intake = Intake::with_policy(
            db.clone(),
            merchant.clone(),
            events.clone(),
            settings.callbacks.policy(),
        );
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
        let doctor = Arc::new(paydesk_core::doctor::Doctor::new(
            crate::doctor::server_setup(&settings, &pay),
        ));
        let (stop, stopping) = crate::jobs::Stop::channel();
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
            doctor,
            stopping,
        };
        let router = router(state.clone());
        Ok((
            Application {
                listener,
                router,
                state,
                port: local.port(),
                _relay: relay,
                stop,
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
    /// background jobs and closes the database.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
            _relay: relay,
            stop,
            ..
        } = self;
        let jobs = crate::jobs::Jobs::start(&state);
        // On the signal: live streams end (the browser reconnects to another instance), the
        // jobs give back what they claimed but did not start, /readyz says 503 and every
        // answer closes its connection; after the drain time no new connections, idle ones
        // closed, requests in flight (the callbacks among them) answered.
        let stop = Arc::new(stop);
        let drain = std::time::Duration::from_millis(state.settings.shutdown_drain_ms);
        let begin = {
            let stop = stop.clone();
            async move {
                shutdown.await;
                let _ = stop.send(true);
                tracing::info!(drain_ms = drain.as_millis() as u64, "stopping: draining");
                tokio::time::sleep(drain).await;
            }
        };
        let router = router.layer(axum::middleware::map_response_with_state(
            state.stopping.clone(),
            close_when_stopping,
        ));
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(begin)
        .await;
        let _ = stop.send(true);
        jobs.stop(std::time::Duration::from_secs(10)).await;
        drop(relay);
        state.api_calls.flush().await;
        state.db.close().await;
        served.context("serving HTTP")
    }
}

/// While the instance stops, every answer closes its connection, so a proxy opens its next
/// request on another instance instead of a connection about to be closed under it.
async fn close_when_stopping(
    axum::extract::State(stopping): axum::extract::State<crate::jobs::Stop>,
    mut res: axum::response::Response,
) -> axum::response::Response {
    if stopping.is_set() {
        res.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    res
}

/// Our merchant credentials and WeChat Pay client configuration: in sandbox mode the
/// in-process simulator is started (both listeners on free loopback ports, real-time retry
/// schedule, certificates beside the SQLite file or in the temp folder) and its credentials
/// are used; otherwise the configured ones (checked present by `Settings::validate`).
pub(crate) async fn merchant_and_simulator(
    settings: &Settings,
) -> anyhow::Result<(MerchantCredentials, Option<RunningSim>, wxpay::ClientConfig)> {
    let sign_type = settings.sign_type()?;
    match settings.pay_mode() {
        PayMode::Simulator => {
            let sim = paydesk_sim::start(settings.sim_config())
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
            if let Some(identity) = settings.wxpay.identity(sim.mch_id())? {
                client.identity = Some(identity);
            }
            Ok((merchant, Some(sim), client))
        }
        PayMode::Merchant => {
            if settings.wxpay.allow_insecure_notify_urls {
                tracing::warn!("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS=on: http:// and loopback notify URLs are accepted; the real WeChat Pay cannot reach them (for a simulator on this machine only)");
            }
            let (merchant, client) = settings.merchant_client()?;
            Ok((merchant, None, client))
        }
    }
}

/// In WeChat Pay's sandbox (a base URL with a sandbox prefix) everything is signed with the
/// sandbox key, payment notifications and the refund notification's `req_info` included
/// (docs/wechatpay-v2.md §3, §8.11): fetched here, once, before serving, so the callbacks
/// are verified with it from the first one on (a notification for an order of an earlier
/// run can come before any call of ours), and failing the start with a clear message when
/// getsignkey fails. The client keeps the key and signs its calls with it; it is never
/// logged. Elsewhere the merchant stays as configured.
pub(crate) async fn sandbox_merchant(
    mut merchant: MerchantCredentials,
    client: &wxpay::Client,
) -> anyhow::Result<MerchantCredentials> {
    if let Some(prefix) = client.sandbox() {
        merchant.api_key = client.signing_key().await.with_context(|| {
            format!(
                "fetching the sandbox key (getsignkey) for PAYDESK_WXPAY__BASE_URL, which ends with the sandbox prefix {}",
                prefix.as_str()
            )
        })?;
    }
    Ok(merchant)
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
