use paydesk_core::orders::{self, NewOrder};
use paydesk_core::testing::{self, TestDb};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use server::config::Settings;
use server::{AppState, Application};
use wxpay::UnifiedOrderRequest;

pub const ADMIN_PASSWORD: &str = "admin password for tests";

/// The orders list's form with every filter unset, first page (`orders/list`).
pub const ORDERS_LIST_FORM: &[(&str, &str)] = &[
    ("q", ""),
    ("status", ""),
    ("from", ""),
    ("to", ""),
    ("min", ""),
    ("max", ""),
    ("openid", ""),
    ("after", ""),
];

/// The notification log's form with every filter unset (`logs/notifications`).
pub const NOTIFICATIONS_LIST_FORM: &[(&str, &str)] = &[
    ("kind", ""),
    ("verdict", ""),
    ("from", ""),
    ("to", ""),
    ("after", ""),
];

/// The API call log's form with every filter unset (`logs/api_calls`).
pub const API_CALLS_LIST_FORM: &[(&str, &str)] = &[
    ("endpoint", ""),
    ("outcome", ""),
    ("from", ""),
    ("to", ""),
    ("after", ""),
];

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    /// The application's own database handle (closing it makes the app unready).
    pub app_db: paydesk_core::Db,
    /// The merchant credentials the app verifies callbacks with.
    pub merchant: std::sync::Arc<paydesk_core::notify::MerchantCredentials>,
    /// The app's in-process WeChat Pay simulator (sandbox mode, the default).
    pub sim: Option<std::sync::Arc<paydesk_sim::RunningSim>>,
    /// The application's shared state (its WeChat Pay client, event bus, call recorder).
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // On PostgreSQL the simulator's certificates go to a folder of the temp dir named
        // after the database, which is this test's alone: without this every test run
        // left one folder per PostgreSQL test behind (thousands in /tmp).
        if self.db.label == "postgres" {
            let _ = std::fs::remove_dir_all(self.state.settings.sim_config().cert_dir);
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Makes order `no` older than WeChat Pay's 5 minutes before closeorder, at both ends:
    /// created 6 minutes earlier here, and the simulator's clock 6 minutes on.
    pub async fn age_order(&self, no: &str) -> paydesk_core::orders::Order {
        self.simulator().advance_clock(testing::OLD_ENOUGH_TO_CLOSE);
        testing::backdate(&self.db.db, no, testing::OLD_ENOUGH_TO_CLOSE).await
    }

    /// The app's in-process WeChat Pay simulator (sandbox mode starts it).
    pub fn simulator(&self) -> &paydesk_sim::RunningSim {
        self.sim
            .as_deref()
            .expect("sandbox mode starts the simulator")
    }

    /// Stores `order` and sends it to unifiedorder through the app's own client with the
    /// app's notify_url, as `POST /api/mp/orders` does; the stored order.
    pub async fn placed_at_wechat(&self, order: NewOrder) -> orders::Order {
        let order = orders::create_order(&self.db.db, order).await.unwrap();
        self.state
            .wxpay
            .unified_order(&UnifiedOrderRequest::jsapi(
                order.description.clone(),
                order.out_trade_no.clone(),
                order.total_fee,
                "127.0.0.1",
                self.state.pay.notify_url.clone(),
                order.openid.clone(),
            ))
            .await
            .unwrap();
        order
    }

    /// The order `no` as stored now (it must exist).
    pub async fn stored_order(&self, no: &str) -> orders::Order {
        testing::stored_order(&self.db.db, no).await
    }

    /// A shopper's bearer token: `/api/mp/login` with `code` (asserted 200).
    pub async fn shopper_token(&self, code: &str) -> String {
        let (status, body) = mp_login(&self.base, code, None).await;
        assert_eq!(status, 200, "{}: {body}", self.db.label);
        body["token"].as_str().unwrap().to_owned()
    }

    /// A browser-like client with its own cookie jar that does not follow redirects.
    /// Every request gives up after a minute, so a request that never gets an answer
    /// fails its test where it was sent instead of hanging the suite (rarely, with
    /// PostgreSQL, a page's server-side render never finishes its response; the cause is
    /// not known yet).
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// The server-rendered HTML of `path` for `client` (asserted 200).
    pub async fn html(&self, client: &Client, path: &str) -> String {
        let res = client
            .get(self.url(path))
            .headers(html_headers())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} on {}: {e}", self.db.label));
        assert_eq!(res.status(), 200, "{path} on {}", self.db.label);
        res.text().await.unwrap()
    }

    /// Calls a server function the way the hydrated page does (form-encoded, JSON back).
    pub async fn call(&self, client: &Client, endpoint: &str, form: &[(&str, &str)]) -> Response {
        client
            .post(self.url(&format!("/api/{endpoint}")))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// [`Self::call`], asserting the answer's status (with its body when it is another).
    pub async fn call_expect(
        &self,
        client: &Client,
        endpoint: &str,
        form: &[(&str, &str)],
        status: u16,
    ) -> Response {
        let res = self.call(client, endpoint, form).await;
        let got = res.status();
        if got != status {
            let body = res.text().await.unwrap_or_default();
            panic!(
                "{endpoint} on {}: {got}, not {status}: {body}",
                self.db.label
            );
        }
        res
    }

    /// A client signed in as `username`.
    pub async fn signed_in(&self, username: &str, password: &str) -> Client {
        let client = self.client();
        self.call_expect(
            &client,
            "auth/login",
            &[("username", username), ("password", password)],
            200,
        )
        .await;
        client
    }

    pub async fn add_user(&self, admin: &Client, username: &str, password: &str, role: &str) {
        self.call_expect(
            admin,
            "users/add",
            &[
                ("username", username),
                ("password", password),
                ("role", role),
            ],
            200,
        )
        .await;
    }

    /// Adds `name` with `role` (password `"{name} password"`) and signs them in.
    pub async fn new_user_signed_in(&self, admin: &Client, name: &str, role: &str) -> Client {
        let password = format!("{name} password");
        self.add_user(admin, name, &password, role).await;
        self.signed_in(name, &password).await
    }

    /// Signs the admin in, adds `clerk` (staff, password `clerk password 1`) and signs the
    /// clerk in on two devices: `(admin, laptop, phone)`.
    pub async fn clerk_on_two_devices(&self) -> (Client, Client, Client) {
        let admin = self.signed_in("admin", ADMIN_PASSWORD).await;
        self.add_user(&admin, "clerk", "clerk password 1", "staff")
            .await;
        let laptop = self.signed_in("clerk", "clerk password 1").await;
        let phone = self.signed_in("clerk", "clerk password 1").await;
        (admin, laptop, phone)
    }

    /// Changes the signed-in user's own password (new and confirmation alike).
    pub async fn change_password(&self, client: &Client, current: &str, new: &str) {
        self.call_expect(
            client,
            "account/change_password",
            &[("current", current), ("new", new), ("confirm", new)],
            200,
        )
        .await;
    }
}

async fn spawn(db: TestDb) -> TestApp {
    spawn_with(db, serde_json::Value::Null).await
}

/// Merges `extra` into `base`: objects key by key (recursively), anything else replaces.
fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(base), serde_json::Value::Object(extra)) => {
            for (key, value) in extra {
                merge(base.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (_, serde_json::Value::Null) => {}
        (base, extra) => *base = extra,
    }
}

/// Merchant mode against a simulator on loopback (`allow_insecure_notify_urls` on, no
/// notify URL given): the app listens on a port picked here and its notify URLs point at
/// it, as an operator of such a setup would configure them.
fn own_notify_urls(json: &mut serde_json::Value) {
    let wxpay = &json["wxpay"];
    let relaxed = matches!(
        wxpay["allow_insecure_notify_urls"].as_str(),
        Some("on" | "true")
    );
    if json["simulator"] != "off" || !relaxed || !wxpay["notify_url"].is_null() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    json["listen"] = format!("127.0.0.1:{port}").into();
    json["wxpay"]["notify_url"] = format!("http://127.0.0.1:{port}/wxpay/notify/payment").into();
    json["wxpay"]["refund_notify_url"] =
        format!("http://127.0.0.1:{port}/wxpay/notify/refund").into();
}

/// Builds and starts the app on `database_url` with `extra` merged into the settings;
/// returns its port, its state, and the sender that stops it.
async fn launch(
    database_url: &str,
    extra: serde_json::Value,
) -> (u16, AppState, tokio::sync::oneshot::Sender<()>) {
    let mut json = serde_json::json!({
        "listen": "127.0.0.1:0",
        "database_url": database_url,
        "admin_password": ADMIN_PASSWORD,
        "site_root": concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site"),
        // The sandbox's demo (on by default) would add orders and payments of its own; a
        // test that wants it turns it on.
        "demo_history": "off",
        "demo_shoppers": "off",
        // The low-disk warning compares the machine's free space with 1 GiB by default; a
        // CI machine with less would change what every page and the doctor say. The
        // warning has its own tests (retention.rs), which set the threshold themselves.
        "disk": {"low_free_mib": 1},
        // The daily reconciliation would fetch bills (API calls of its own) from 10:30 on,
        // whatever a test counts; its tests turn it on.
        "reconciliation": {"enabled": "off"},
        // The exceptions scan would publish events of its own; its tests turn it on.
        "exceptions": {"enabled": "off"},
    });
    merge(&mut json, extra);
    own_notify_urls(&mut json);
    let settings: Settings = serde_json::from_value(json).unwrap();
    settings.validate().unwrap();
    let (app, _bootstrap) = Application::build(settings)
        .await
        .expect("building the app");
    let port = app.port();
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    RUNNING.lock().unwrap().insert(port, running);
    (port, state, tx)
}

/// Each launched app's serving task, by port ([`SiblingApp::stop`] waits for one).
static RUNNING: std::sync::Mutex<
    std::collections::BTreeMap<u16, tokio::task::JoinHandle<anyhow::Result<()>>>,
> = std::sync::Mutex::new(std::collections::BTreeMap::new());

async fn spawn_with(db: TestDb, extra: serde_json::Value) -> TestApp {
    let (port, state, shutdown) = launch(&db.url, extra).await;
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        db,
        app_db: state.db.clone(),
        merchant: state.merchant.clone(),
        sim: state.simulator.clone(),
        state,
        shutdown: Some(shutdown),
    }
}

/// One running app per configured database backend.
pub async fn spawn_apps() -> Vec<TestApp> {
    let mut apps = vec![spawn(testing::sqlite().await.unwrap()).await];
    if let Some(pg) = testing::postgres().await.unwrap() {
        apps.push(spawn(pg).await);
    }
    apps
}

/// One running app per configured database backend, with `extra` merged into the settings
/// (e.g. `{"sync": {"first_delay_seconds": 0, "tick_millis": 50}}`).
pub async fn spawn_apps_with(extra: serde_json::Value) -> Vec<TestApp> {
    let mut apps = vec![spawn_with(testing::sqlite().await.unwrap(), extra.clone()).await];
    if let Some(pg) = testing::postgres().await.unwrap() {
        apps.push(spawn_with(pg, extra).await);
    }
    apps
}

/// A second instance on `first`'s database (same SQLite file or PostgreSQL database), with
/// `extra` merged into its settings: for tests of what several instances do at once.
pub async fn spawn_sibling(first: &TestApp, extra: serde_json::Value) -> SiblingApp {
    let (port, state, shutdown) = launch(&first.db.url, extra).await;
    SiblingApp {
        base: format!("http://127.0.0.1:{port}"),
        state,
        shutdown: Some(shutdown),
    }
}

impl SiblingApp {
    /// Begins its shutdown, as SIGTERM does; the task that completes when it has exited.
    pub fn stop(mut self) -> tokio::task::JoinHandle<anyhow::Result<()>> {
        let port: u16 = self.base.rsplit(':').next().unwrap().parse().unwrap();
        let _ = self.shutdown.take().unwrap().send(());
        RUNNING.lock().unwrap().remove(&port).unwrap()
    }
}

/// Another instance sharing a [`TestApp`]'s database; stops when dropped.
pub struct SiblingApp {
    /// Its own base URL.
    pub base: String,
    /// Its own state (its WeChat Pay client, call recorder).
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for SiblingApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// One call to the mini-program API at `base` + `path`, from the client `forwarded_for` when
/// set (for apps that trust 127.0.0.1 as a proxy): status, `Retry-After`, JSON body (`null`
/// when empty; anything else that is not JSON fails the test).
pub async fn mp_call(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    forwarded_for: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Option<u64>, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let text = res.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, retry_after, value)
}

/// Sets `sim`'s fault plan from its JSON form (the simulator's `/sim/faults`).
pub fn set_faults(sim: &paydesk_sim::RunningSim, plan: Value) {
    sim.set_faults(serde_json::from_value(plan).unwrap());
}

/// `/api/mp/login` with `code` at `base`, from the client `forwarded_for` when set.
pub async fn mp_login(base: &str, code: &str, forwarded_for: Option<&str>) -> (StatusCode, Value) {
    let body = Some(json!({ "code": code }));
    let (status, _, body) = mp_call(
        base,
        Method::POST,
        "/api/mp/login",
        None,
        forwarded_for,
        body,
    )
    .await;
    (status, body)
}

/// The value of `res`'s header `name` as text (empty when it has none).
pub fn header(res: &Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn html_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml"),
    );
    h
}

/// A simulator of a test's own (certificates in `dir`), taking the loopback notify URLs of
/// the apps it talks to, with `configure` applied to its configuration.
pub async fn standalone_sim(
    dir: &tempfile::TempDir,
    configure: impl FnOnce(&mut paydesk_sim::SimConfig),
) -> paydesk_sim::RunningSim {
    let mut config = paydesk_sim::SimConfig {
        cert_dir: dir.path().to_path_buf(),
        allow_insecure_notify_urls: true,
        ..paydesk_sim::SimConfig::default()
    };
    configure(&mut config);
    paydesk_sim::start(config).await.unwrap()
}

/// Settings for merchant mode against a standalone `sim`: its credentials, its API and
/// mutual-TLS listeners, its CA and merchant certificate, and the explicit loopback
/// relaxation (the app's notify URLs then point at the app itself). Tests change or remove
/// what they are about.
pub fn merchant_against(sim: &paydesk_sim::RunningSim) -> Value {
    let certs = sim.cert_paths();
    json!({
        "simulator": "off",
        "wxpay": {
            "appid": sim.appid(),
            "mch_id": sim.mch_id(),
            "api_key": sim.api_key().expose(),
            "base_url": sim.http_base_url(),
            "refund_base_url": sim.tls_base_url(),
            "ca_pem": certs.ca,
            "cert_pem": certs.client_cert,
            "key_pem": certs.client_key,
            "allow_insecure_notify_urls": "on",
        },
    })
}

/// A `paydesk` process in merchant mode against `sim`: its credentials, its API and
/// mutual-TLS listeners, its CA and merchant certificate (`paydesk doctor`, crash tests).
pub fn paydesk_against(sim: &paydesk_sim::RunningSim, database_url: &str) -> std::process::Command {
    let certs = sim.cert_paths();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paydesk"));
    cmd.env("PAYDESK_DATABASE_URL", database_url)
        .env("PAYDESK_SIMULATOR", "off")
        .env("PAYDESK_WXPAY__APPID", sim.appid())
        .env("PAYDESK_WXPAY__MCH_ID", sim.mch_id())
        .env("PAYDESK_WXPAY__API_KEY", sim.api_key().expose())
        .env("PAYDESK_WXPAY__BASE_URL", sim.http_base_url())
        .env("PAYDESK_WXPAY__REFUND_BASE_URL", sim.tls_base_url())
        .env("PAYDESK_WXPAY__CA_PEM", &certs.ca)
        .env("PAYDESK_WXPAY__CERT_PEM", &certs.client_cert)
        .env("PAYDESK_WXPAY__KEY_PEM", &certs.client_key)
        // The doctor's disk line against the machine's free space would fail on a machine
        // with less than the default 1 GiB free; the low-disk line has its own tests.
        .env("PAYDESK_DISK__LOW_FREE_MIB", "1")
        // The daily reconciliation would fetch bills on its own from 10:30 on; its tests
        // turn it on.
        .env("PAYDESK_RECONCILIATION__ENABLED", "off")
        .env("PAYDESK_EXCEPTIONS__ENABLED", "off");
    cmd
}

/// Polls until `done` holds (15 s at most).
pub async fn wait_until<F, Fut>(app: &TestApp, what: &str, done: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: waited in vain for {what}",
            app.db.label
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}
