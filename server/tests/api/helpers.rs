use paydesk_core::testing::{self, TestDb};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Client, Response};
use server::config::Settings;
use server::Application;

pub const ADMIN_PASSWORD: &str = "admin password for tests";

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    /// The application's own database handle (closing it makes the app unready).
    pub app_db: paydesk_core::Db,
    /// The merchant credentials the app verifies callbacks with.
    pub merchant: std::sync::Arc<paydesk_core::notify::MerchantCredentials>,
    /// The app's in-process WeChat Pay simulator (sandbox mode, the default).
    pub sim: Option<std::sync::Arc<paydesk_sim::RunningSim>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client with its own cookie jar that does not follow redirects.
    pub fn client(&self) -> Client {
        Client::builder()
            .cookie_store(true)
            .redirect(Policy::none())
            .build()
            .unwrap()
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

    /// A client signed in as `username`.
    pub async fn signed_in(&self, username: &str, password: &str) -> Client {
        let client = self.client();
        let res = self
            .call(
                &client,
                "auth/login",
                &[("username", username), ("password", password)],
            )
            .await;
        assert_eq!(
            res.status(),
            200,
            "sign-in as {username} failed: {}",
            res.text().await.unwrap()
        );
        client
    }

    pub async fn add_user(&self, admin: &Client, username: &str, password: &str, role: &str) {
        let res = self
            .call(
                admin,
                "users/add",
                &[
                    ("username", username),
                    ("password", password),
                    ("role", role),
                ],
            )
            .await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

async fn spawn(db: TestDb) -> TestApp {
    let settings: Settings = serde_json::from_value(serde_json::json!({
        "listen": "127.0.0.1:0",
        "database_url": db.url,
        "admin_password": ADMIN_PASSWORD,
        "site_root": concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site"),
    }))
    .unwrap();
    settings.validate().unwrap();
    let (app, _bootstrap) = Application::build(settings)
        .await
        .expect("building the app");
    let base = format!("http://127.0.0.1:{}", app.port());
    let app_db = app.state().db.clone();
    let merchant = app.state().merchant.clone();
    let sim = app.state().simulator.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        base,
        db,
        app_db,
        merchant,
        sim,
        shutdown: Some(tx),
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

pub fn html_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("text/html,application/xhtml+xml"),
    );
    h
}
