//! Starting and stopping a simulator: the plain HTTP listener (WeChat paths, jscode2session,
//! `/sim/` control API) with axum, the mutual-TLS listener (refund) with tokio-rustls +
//! hyper, and [`RunningSim`], the in-process handle.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{any, get};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use wxpay::{ApiKey, AppSecret, ClientConfig, MerchantIdentity};

use crate::certs::{self, CertPaths};
use crate::hosts::{self, Host, HostMode};
use crate::notify::PayRequest;
use crate::wechat::{self, Endpoint, Route};
use crate::{
    login, notify, ActiveFaults, Clock, DeliveryAttempt, FaultPlan, Order, Refund, RefundState,
    Sim, SimConfig, SimError,
};

/// Sandbox prefixes served next to the production paths (§2.1, §10.3).
const SANDBOX_PREFIXES: [&str; 2] = ["/sandboxnew", "/xdc/apiv2sandbox"];

/// The future of a WeChat API handler.
type ApiFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// An axum handler for one endpoint reached by `route` (all share [`wechat::handle`]).
fn api_handler(
    ep: Endpoint,
    route: Route,
) -> impl Fn(State<Arc<Sim>>, Method, Bytes) -> ApiFuture + Clone + Send + Sync + 'static {
    move |State(sim): State<Arc<Sim>>, method: Method, body: Bytes| -> ApiFuture {
        Box::pin(wechat::handle(sim, ep, route, method, body))
    }
}

/// The WeChat Pay API routes of a plain listener (without the refund), on `host`, under a
/// sandbox prefix or not.
fn wechat_routes(host: Host, sandbox: bool) -> Router<Arc<Sim>> {
    let route = Route { host, sandbox };
    let mut router = Router::new();
    for ep in [
        Endpoint::UnifiedOrder,
        Endpoint::OrderQuery,
        Endpoint::CloseOrder,
        Endpoint::RefundQuery,
        Endpoint::DownloadBill,
    ] {
        router = router.route(ep.path(), any(api_handler(ep, route)));
    }
    router
        // Without a client certificate the gateway answers an HTML 400 (§2.3).
        .route("/secapi/pay/refund", any(refund_without_certificate))
}

async fn refund_without_certificate() -> Response {
    wechat::html_page(
        StatusCode::BAD_REQUEST,
        "No required SSL certificate was sent",
    )
}

async fn get_jscode2session(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    Json(login::jscode2session(&sim, &q))
}

/// A host's plain listener: the WeChat paths (also under the sandbox prefixes, where the
/// sandbox key signs), getsignkey (signed with the production key, §8.11), jscode2session
/// and the control API. Both hosts serve the same state.
fn http_router(sim: Arc<Sim>, host: Host) -> Router {
    let getsignkey = Route {
        host,
        sandbox: false,
    };
    let mut router = wechat_routes(host, false)
        .route("/sns/jscode2session", get(get_jscode2session))
        .route(
            "/sandboxnew/pay/getsignkey",
            any(api_handler(Endpoint::GetSignKey, getsignkey)),
        )
        .route(
            "/xdc/apiv2getsignkey/sign/getsignkey",
            any(api_handler(Endpoint::GetSignKey, getsignkey)),
        )
        .nest("/sim", crate::control::router());
    for prefix in SANDBOX_PREFIXES {
        router = router.nest(prefix, wechat_routes(host, true));
    }
    router.with_state(sim)
}

/// A host's mutual-TLS listener: the refund, also under the sandbox prefixes (both
/// `/sandboxnew/secapi/pay/refund` and gopay's `/sandboxnew/pay/refund`, §2.2).
fn tls_router(sim: Arc<Sim>, host: Host) -> Router {
    let production = Route {
        host,
        sandbox: false,
    };
    let sandbox = Route {
        host,
        sandbox: true,
    };
    let mut router = Router::new().route(
        "/secapi/pay/refund",
        any(api_handler(Endpoint::Refund, production)),
    );
    for prefix in SANDBOX_PREFIXES {
        router = router
            .route(
                &format!("{prefix}/secapi/pay/refund"),
                any(api_handler(Endpoint::Refund, sandbox)),
            )
            .route(
                &format!("{prefix}/pay/refund"),
                any(api_handler(Endpoint::Refund, sandbox)),
            );
    }
    router.with_state(sim)
}

/// The listeners of one host, bound.
struct HostListeners {
    host: Host,
    http: TcpListener,
    tls: Option<TcpListener>,
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what})"))
}

/// Start a simulator: certificates (generated on first start), both listeners, the
/// notification sender. Returns once both listeners are bound.
pub async fn start(config: SimConfig) -> anyhow::Result<RunningSim> {
    if config.api_key.len() != 32 {
        bail!(
            "the API key must have 32 characters (it has {})",
            config.api_key.len()
        );
    }
    if config.appid.is_empty() || config.mch_id.is_empty() {
        bail!("appid and mch_id are required");
    }
    if !config.mch_id.bytes().all(|b| b.is_ascii_digit()) {
        bail!("mch_id must be digits");
    }
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        bail!("time_scale must be a positive number");
    }
    if let Some(url) = &config.default_refund_notify_url {
        wxpay::check_notify_url(url, config.notify_url_rules())
            .map_err(|e| anyhow::anyhow!("the refund notify URL {e}"))?;
    }
    let dir = config.cert_dir.clone();
    let mch_id = config.mch_id.clone();
    let cert_paths = tokio::task::spawn_blocking(move || certs::ensure(&dir, &mch_id))
        .await
        .context("certificate task")??;
    let acceptor = TlsAcceptor::from(certs::mtls_server_config(&cert_paths)?);
    let mut bound = vec![HostListeners {
        host: Host::Primary,
        http: bind(config.listen, "listen").await?,
        tls: Some(bind(config.tls_listen, "tls_listen").await?),
    }];
    if let Some(addr) = config.backup_listen {
        bound.push(HostListeners {
            host: Host::Backup,
            http: bind(addr, "backup_listen").await?,
            tls: match config.backup_tls_listen {
                Some(tls) => Some(bind(tls, "backup_tls_listen").await?),
                None => None,
            },
        });
    } else if config.backup_tls_listen.is_some() {
        bail!("backup_tls_listen needs backup_listen: the backup host's plain listener");
    }
    let http_addr = bound[0].http.local_addr()?;
    let tls_addr = bound[0]
        .tls
        .as_ref()
        .map_or(Ok(http_addr), |l| l.local_addr())?;
    let backup_http_addr = bound.get(1).map(|b| b.http.local_addr()).transpose()?;
    let backup_tls_addr = bound
        .get(1)
        .and_then(|b| b.tls.as_ref())
        .map(TcpListener::local_addr)
        .transpose()?;

    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent("Mozilla/4.0 (paydesk-sim notification sender)")
        .build()
        .context("notification HTTP client")?;
    let sim = Arc::new(Sim {
        clock: Clock::new(config.time_scale),
        store: Mutex::new(crate::store::Store {
            balance: config.merchant_balance_fen,
            ..Default::default()
        }),
        faults: Mutex::default(),
        attempts: Mutex::default(),
        reorder: Mutex::default(),
        notify_seq: AtomicU64::new(0),
        attempt_seq: AtomicU64::new(0),
        api_calls: Mutex::default(),
        api_call_seq: AtomicU64::new(0),
        http,
        tasks: Mutex::default(),
        info: OnceLock::new(),
        hosts: crate::hosts::Hosts::default(),
        sandbox_key: crate::sandbox_sign_key(&config.mch_id, &config.api_key),
        config,
    });
    let http_base_url = base_url("http", http_addr);
    let tls_base_url = base_url("https", tls_addr);
    let backup_http_base_url = backup_http_addr.map(|a| base_url("http", a));
    let backup_tls_base_url = backup_tls_addr.map(|a| base_url("https", a));
    let _ = sim.info.set(json!({
        "appid": sim.config.appid,
        "mch_id": sim.config.mch_id,
        "http_base_url": http_base_url,
        "tls_base_url": tls_base_url,
        "backup_http_base_url": backup_http_base_url,
        "backup_tls_base_url": backup_tls_base_url,
        "time_scale": sim.config.time_scale,
        "cert_paths": cert_paths,
    }));

    let (shutdown, rx) = watch::channel(false);
    let mut servers = Vec::new();
    for listeners in bound {
        let host = listeners.host;
        servers.push(tokio::spawn(serve_http(
            sim.clone(),
            host,
            listeners.http,
            rx.clone(),
        )));
        if let Some(tls) = listeners.tls {
            servers.push(tokio::spawn(serve_tls(
                sim.clone(),
                host,
                tls,
                acceptor.clone(),
                rx.clone(),
            )));
        }
    }
    tracing::info!(%http_base_url, %tls_base_url, backup = ?backup_http_base_url, "WeChat Pay simulator listening");
    Ok(RunningSim {
        sim,
        http_addr,
        tls_addr,
        backup_http_addr,
        backup_tls_addr,
        cert_paths,
        shutdown,
        servers,
    })
}

/// Bind `addr` again after the host refused connections, retrying briefly while the old
/// socket is released. `None` when asked to stop meanwhile.
async fn rebind(
    addr: SocketAddr,
    stop: &mut watch::Receiver<bool>,
) -> Option<anyhow::Result<TcpListener>> {
    for _ in 0..50 {
        if *stop.borrow() {
            return None;
        }
        match TcpListener::bind(addr).await {
            Ok(l) => return Some(Ok(l)),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Some(bind(addr, "rebinding after refuse").await)
}

/// Serve a host's plain listener until stopped. When the host is told to refuse, the
/// listener is closed (axum's graceful shutdown drops it first, then lets the open
/// connections finish their request and closes them), and bound again when it may accept.
async fn serve_http(
    sim: Arc<Sim>,
    host: Host,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let app = http_router(sim.clone(), host);
    let mut modes = sim.hosts.watch(host);
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "simulator HTTP listener has no address");
            return;
        }
    };
    let mut listener = Some(listener);
    loop {
        if *modes.borrow() == HostMode::Refuse {
            // Told to refuse before serving (or between two modes): close it now.
            listener = None;
        }
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            () = hosts::accepting(&mut modes) => {},
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match rebind(addr, &mut stop).await {
                None => return,
                Some(Ok(l)) => l,
                Some(Err(e)) => {
                    tracing::error!(error = %e, host = host.as_str(), "simulator HTTP listener cannot come back");
                    return;
                }
            },
        };
        let (mut stop1, mut modes1) = (stop.clone(), modes.clone());
        let serve = axum::serve(l, app.clone()).with_graceful_shutdown(async move {
            tokio::select! {
                _ = stop1.wait_for(|stop| *stop) => {},
                () = hosts::refused(&mut modes1) => {},
            }
        });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "simulator HTTP listener stopped");
        }
        if *stop.borrow() {
            return;
        }
        tracing::info!(
            host = host.as_str(),
            %addr,
            "host refuses connections: listener closed"
        );
    }
}

fn base_url(scheme: &str, addr: SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// Accept TCP, require the client certificate in the handshake, serve HTTP/1.1 with the
/// refund router. Handshake failures (no or foreign certificate) close the connection.
/// When the host is told to refuse, the listener is closed and open connections are shut
/// down once idle; it is bound again when the host may accept.
async fn serve_tls(
    sim: Arc<Sim>,
    host: Host,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    let router = tls_router(sim.clone(), host);
    let mut modes = sim.hosts.watch(host);
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let mut listener = Some(listener);
    loop {
        let Some(l) = listener.as_ref() else {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                () = hosts::accepting(&mut modes) => {},
            }
            match rebind(addr, &mut stop).await {
                None => return,
                Some(Ok(l)) => listener = Some(l),
                Some(Err(e)) => {
                    tracing::error!(error = %e, host = host.as_str(), "simulator TLS listener cannot come back");
                    return;
                }
            }
            continue;
        };
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = hosts::refused(&mut modes) => None,
            r = l.accept() => Some(r),
        };
        let Some(accepted) = accepted else {
            listener = None;
            tracing::info!(host = host.as_str(), %addr, "host refuses connections: TLS listener closed");
            continue;
        };
        let (tcp, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a TLS connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let mut modes = modes.clone();
        sim.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "mutual-TLS handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
            let service = TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service);
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => r,
                () = hosts::refused(&mut modes) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "TLS connection ended with an error");
            }
        });
    }
}

/// A running simulator (in-process handle). Dropping it stops it; [`RunningSim::shutdown`]
/// also waits for the listeners to close.
pub struct RunningSim {
    sim: Arc<Sim>,
    http_addr: SocketAddr,
    tls_addr: SocketAddr,
    backup_http_addr: Option<SocketAddr>,
    backup_tls_addr: Option<SocketAddr>,
    cert_paths: CertPaths,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("http_addr", &self.http_addr)
            .field("tls_addr", &self.tls_addr)
            .field("backup_http_addr", &self.backup_http_addr)
            .field("backup_tls_addr", &self.backup_tls_addr)
            .field("cert_dir", &self.cert_paths.dir)
            .finish()
    }
}

impl RunningSim {
    /// `http://HOST:PORT` of the plain listener: every WeChat path except the refund, the
    /// `/sim/` control API and `/sns/jscode2session`.
    pub fn http_base_url(&self) -> String {
        base_url("http", self.http_addr)
    }

    /// `https://HOST:PORT` of the mutual-TLS listener: `/secapi/pay/refund` (the refund host).
    pub fn tls_base_url(&self) -> String {
        base_url("https", self.tls_addr)
    }

    /// Bound address of the plain listener.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Bound address of the mutual-TLS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr
    }

    /// `http://HOST:PORT` of the backup host's plain listener (`backup_listen`), serving
    /// the same state as [`RunningSim::http_base_url`]; `None` without a backup host.
    pub fn backup_http_base_url(&self) -> Option<String> {
        self.backup_http_addr.map(|a| base_url("http", a))
    }

    /// `https://HOST:PORT` of the backup host's mutual-TLS listener (`backup_tls_listen`);
    /// `None` without one.
    pub fn backup_tls_base_url(&self) -> Option<String> {
        self.backup_tls_addr.map(|a| base_url("https", a))
    }

    /// Bound address of the backup host's plain listener.
    pub fn backup_http_addr(&self) -> Option<SocketAddr> {
        self.backup_http_addr
    }

    /// Bound address of the backup host's mutual-TLS listener.
    pub fn backup_tls_addr(&self) -> Option<SocketAddr> {
        self.backup_tls_addr
    }

    /// Make `host` serve normally, refuse connections, or answer 503 (`POST
    /// /sim/hosts/{host}`). Returns once the change is handed to its listeners: a listener
    /// told to refuse closes within milliseconds, and [`HostMode::Up`] binds it again.
    pub fn set_host_mode(&self, host: Host, mode: HostMode) {
        self.sim.hosts.set(host, mode);
    }

    /// How `host` answers now (`GET /sim/hosts`).
    pub fn host_mode(&self, host: Host) -> HostMode {
        self.sim.hosts.mode(host)
    }

    /// The sandbox key getsignkey hands out (§8.11): derived from the merchant's API key,
    /// different from it, and required for every call under a sandbox prefix.
    pub fn sandbox_key(&self) -> &ApiKey {
        &self.sim.sandbox_key
    }

    /// The generated certificate files.
    pub fn cert_paths(&self) -> &CertPaths {
        &self.cert_paths
    }

    /// The merchant's appid.
    pub fn appid(&self) -> &str {
        &self.sim.config.appid
    }

    /// The merchant number.
    pub fn mch_id(&self) -> &str {
        &self.sim.config.mch_id
    }

    /// The API v2 key.
    pub fn api_key(&self) -> &ApiKey {
        &self.sim.config.api_key
    }

    /// The Mini Program AppSecret for jscode2session.
    pub fn app_secret(&self) -> &str {
        self.sim.config.app_secret.expose()
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.sim.config
    }

    /// A wxpay client configuration that talks to this simulator: `base_url` = the plain
    /// listener, `refund_base_url` = the mutual-TLS listener (and with a backup host, its
    /// listeners as `backup_base_url` / `refund_backup_base_url`), the simulator CA as extra
    /// root, the generated merchant certificate, `login_base_url` + AppSecret for
    /// jscode2session.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let mut c = ClientConfig::new(self.appid(), self.mch_id(), self.sim.config.api_key.clone());
        c.base_url = self.http_base_url();
        c.refund_base_url = Some(self.tls_base_url());
        c.backup_base_url = self.backup_http_base_url();
        c.refund_backup_base_url = self.backup_tls_base_url();
        c.login_base_url = self.http_base_url();
        c.app_secret = Some(AppSecret::new(self.app_secret()));
        c.extra_root_ca_pem = Some(
            std::fs::read(&self.cert_paths.ca)
                .with_context(|| format!("cannot read {}", self.cert_paths.ca.display()))?,
        );
        c.identity = Some(MerchantIdentity::from_pem_files(
            &self.cert_paths.client_cert,
            &self.cert_paths.client_key,
        )?);
        Ok(c)
    }

    /// All orders, oldest first (`GET /sim/orders`).
    pub fn orders(&self) -> Vec<Order> {
        let mut store = self.sim.store();
        store.expire_all(self.sim.clock.now());
        store.orders_sorted()
    }

    /// One order.
    pub fn order(&self, out_trade_no: &str) -> Option<Order> {
        let mut store = self.sim.store();
        store.expire(out_trade_no, self.sim.clock.now());
        store.orders.get(out_trade_no).cloned()
    }

    /// All refunds, oldest first (`GET /sim/refunds`).
    pub fn refunds(&self) -> Vec<Refund> {
        self.sim.store().refunds_sorted()
    }

    /// One refund.
    pub fn refund(&self, out_refund_no: &str) -> Option<Refund> {
        self.sim.store().refunds.get(out_refund_no).cloned()
    }

    /// The shopper pays (`POST /sim/orders/{out_trade_no}/pay`).
    pub fn pay_order(&self, out_trade_no: &str, req: &PayRequest) -> Result<Order, SimError> {
        notify::pay_order(&self.sim, out_trade_no, req)
    }

    /// The Mini Program calls `wx.requestPayment` with what the merchant backend produced
    /// (`POST /sim/request-payment`): `paySign`, `signType` and the prepay_id are checked,
    /// then the order is paid as `req` says.
    pub fn request_payment(
        &self,
        params: &wxpay::JsapiPayParams,
        req: &PayRequest,
    ) -> Result<Order, SimError> {
        notify::request_payment(&self.sim, params, req)
    }

    /// The merchant refunds `refund_fee` fen of a paid order by hand in WeChat's merchant
    /// platform (`POST /sim/orders/{out_trade_no}/refund-outside`): accepted under the refund
    /// API's rules (paid order, within what remains refundable, 50 refunds, balance), with a
    /// `refund_id` and the PROCESSING → SUCCESS lifecycle (or a chosen outcome) like an API
    /// refund, but never notified: refundquery and the bill show it, the merchant's system
    /// never heard of it. Without `out_refund_no` the `refund_id` is used. Errors: unknown
    /// order ([`SimError::NotFound`]), refused by the ledger or `out_refund_no` already used
    /// ([`SimError::Conflict`], with the API's `err_code` and text), `refund_fee` ≤ 0 or a
    /// malformed `out_refund_no` ([`SimError::Invalid`]).
    pub fn refund_outside(
        &self,
        out_trade_no: &str,
        out_refund_no: Option<&str>,
        refund_fee: i64,
    ) -> Result<Refund, SimError> {
        crate::refunds::refund_outside(&self.sim, out_trade_no, out_refund_no, refund_fee)
    }

    /// Choose a refund's outcome and delay (`POST /sim/refunds/{out_refund_no}/outcome`).
    /// `Ok(None)`: the refund does not exist yet; the outcome is applied when it does.
    pub fn set_refund_outcome(
        &self,
        out_refund_no: &str,
        outcome: RefundState,
        delay: Option<Duration>,
    ) -> Result<Option<Refund>, SimError> {
        let delay_ms = delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        notify::set_refund_outcome(&self.sim, out_refund_no, outcome, delay_ms)
    }

    /// Add a fault plan (`POST /sim/faults`); returns what is active. A plan the control
    /// API would refuse (see [`RunningSim::try_set_faults`]) is logged and not applied.
    pub fn set_faults(&self, plan: FaultPlan) -> ActiveFaults {
        self.try_set_faults(plan).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "fault plan refused");
            self.sim.faults().active()
        })
    }

    /// Add a fault plan (`POST /sim/faults`) and return what is active, or refuse it as a
    /// whole like the control API (400): a bill `amount` fault leaving an order the simulator
    /// knows without a positive amount, a bill `lag` over 92 days.
    pub fn try_set_faults(&self, plan: FaultPlan) -> Result<ActiveFaults, SimError> {
        crate::faults::apply_plan(&self.sim, plan)
    }

    /// Remove every active fault (`DELETE /sim/faults`).
    pub fn clear_faults(&self) {
        self.sim.faults().clear();
    }

    /// Every notification delivery attempt so far (`GET /sim/notifications`).
    pub fn notifications(&self) -> Vec<DeliveryAttempt> {
        self.sim
            .attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every call to the WeChat Pay endpoints so far (`GET /sim/api-calls`).
    pub fn api_calls(&self) -> Vec<crate::ApiCall> {
        self.sim
            .api_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wait (polling) until `done` holds for the attempts, or `timeout` passes; returns the
    /// attempts either way.
    pub async fn wait_for_notifications(
        &self,
        timeout: Duration,
        done: impl Fn(&[DeliveryAttempt]) -> bool,
    ) -> Vec<DeliveryAttempt> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempts = self.notifications();
            if done(&attempts) || Instant::now() >= deadline {
                return attempts;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Adds what the merchant already holds (orders, then their accepted refunds) to this
    /// simulator's memory, so that queries, refunds and bills agree with the merchant's
    /// records after a restart or a seed. Orders the simulator knows already are kept as
    /// they are; `PROCESSING` refunds finish after the configured refund delay.
    pub fn restore(
        &self,
        orders: Vec<crate::KnownOrder>,
        refunds: Vec<crate::KnownRefund>,
    ) -> crate::RestoreReport {
        crate::restore::restore(&self.sim, orders, refunds)
    }

    /// Move the simulator clock forward (`POST /sim/clock/advance`): order expiry, prepay
    /// validity and bill readiness follow it.
    pub fn advance_clock(&self, by: Duration) {
        self.sim.clock.advance(by);
    }

    /// The simulator clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.sim.clock.now()
    }

    /// Set the refundable merchant balance in fen (`None` = unlimited) (`POST
    /// /sim/merchant/balance`).
    pub fn set_merchant_balance(&self, balance_fen: Option<i64>) {
        self.sim.store().balance = balance_fen;
    }

    /// Make a jscode2session code log in as `openid` (`POST /sim/jscode`).
    pub fn register_code(&self, code: &str, openid: &str, unionid: Option<&str>) {
        self.sim.store().codes.insert(
            code.to_owned(),
            crate::CodeMapping {
                openid: openid.to_owned(),
                unionid: unionid.map(str::to_owned),
            },
        );
    }

    /// Stop both listeners and every background task (notifications, refund timers), and
    /// wait for the listeners to close.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.sim.abort_all();
        // Give in-flight requests a moment; idle keep-alive connections are not waited for.
        for mut server in std::mem::take(&mut self.servers) {
            if tokio::time::timeout(Duration::from_secs(1), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.sim.abort_all();
        for server in &self.servers {
            server.abort();
        }
    }
}
