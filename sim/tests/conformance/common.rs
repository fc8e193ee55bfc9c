//! Shared helpers: a simulator per test, wxpay clients, a notification receiver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use paydesk_sim::{PayRequest, RunningSim, SimConfig};
use wxpay::{Client, SignType, UnifiedOrderRequest, UnifiedOrderResponse};

pub const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

/// A simulator with its own certificate directory (removed when dropped).
pub struct TestSim {
    pub sim: RunningSim,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestSim {
    type Target = RunningSim;
    fn deref(&self) -> &RunningSim {
        &self.sim
    }
}

pub async fn start_sim_with(f: impl FnOnce(&mut SimConfig)) -> TestSim {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SimConfig {
        cert_dir: dir.path().to_owned(),
        time_scale: 20_000.0,
        // The tests' notification receivers listen on loopback.
        allow_insecure_notify_urls: true,
        ..SimConfig::default()
    };
    f(&mut config);
    let sim = paydesk_sim::start(config).await.unwrap();
    TestSim { sim, _dir: dir }
}

pub async fn start_sim() -> TestSim {
    start_sim_with(|_| {}).await
}

/// A simulator, its MD5 client, and a receiver that accepts every notification.
pub async fn sim_with_receiver() -> (TestSim, Client, Receiver) {
    let sim = start_sim().await;
    let client = client(&sim);
    (sim, client, Receiver::always_success().await)
}

pub fn client_with(sim: &RunningSim, sign_type: SignType) -> Client {
    let mut config = sim.client_config().unwrap();
    config.sign_type = sign_type;
    config.timeout = Duration::from_secs(5);
    Client::new(config).unwrap()
}

pub fn client(sim: &RunningSim) -> Client {
    client_with(sim, SignType::Md5)
}

pub fn order(out_trade_no: &str, total_fee: i64, notify_url: &str) -> UnifiedOrderRequest {
    UnifiedOrderRequest::jsapi(
        "paydesk-测试商品",
        out_trade_no,
        total_fee,
        "127.0.0.1",
        notify_url,
        OPENID,
    )
}

pub const NO_NOTIFY: &str = "http://127.0.0.1:9/notify";

/// Place an order (unifiedorder), unpaid, that notifies `notify_url` once paid.
pub async fn placed_order(
    client: &Client,
    out_trade_no: &str,
    total_fee: i64,
    notify_url: &str,
) -> UnifiedOrderResponse {
    client
        .unified_order(&order(out_trade_no, total_fee, notify_url))
        .await
        .unwrap()
}

/// Create and pay an order, without a notification.
pub async fn paid_order(
    sim: &RunningSim,
    client: &Client,
    out_trade_no: &str,
    total_fee: i64,
) -> paydesk_sim::Order {
    placed_order(client, out_trade_no, total_fee, NO_NOTIFY).await;
    sim.pay_order(
        out_trade_no,
        &PayRequest {
            result: "SUCCESS".into(),
            notify: Some(false),
            ..PayRequest::default()
        },
    )
    .unwrap()
}

pub fn pay() -> PayRequest {
    PayRequest {
        result: "SUCCESS".into(),
        ..PayRequest::default()
    }
}

/// What the receiver answers to the n-th (0-based) notification.
pub type Policy = Arc<dyn Fn(usize) -> (StatusCode, String) + Send + Sync>;

/// A notify_url endpoint recording every body it receives.
pub struct Receiver {
    pub url: String,
    pub bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    pub async fn start(policy: Policy) -> Receiver {
        let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let recorded = bodies.clone();
        let app = Router::new().route(
            "/notify",
            post(move |body: Bytes| {
                let recorded = recorded.clone();
                let policy = policy.clone();
                async move {
                    let n = {
                        let mut b = recorded.lock().unwrap();
                        b.push(body.to_vec());
                        b.len() - 1
                    };
                    policy(n)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/notify", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, bodies }
    }

    pub async fn always_success() -> Receiver {
        Receiver::start(Arc::new(|_| {
            (StatusCode::OK, wxpay::REPLY_SUCCESS.to_owned())
        }))
        .await
    }

    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let b = self.bodies();
            if b.len() >= n || std::time::Instant::now() > deadline {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Every call a wxpay client reports (its `CallObserver`).
#[derive(Default)]
pub struct Calls(pub Mutex<Vec<wxpay::CallRecord>>);

impl wxpay::CallObserver for Calls {
    fn on_call(&self, record: &wxpay::CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

/// Sets the simulator's fault plan from its JSON form (the control API's `/sim/faults`).
pub fn set_faults(sim: &RunningSim, plan: serde_json::Value) {
    sim.set_faults(serde_json::from_value(plan).unwrap());
}

/// The simulator's control API over HTTP (`/sim/…`, docs/design.md Contract).
pub struct Control {
    http: reqwest::Client,
    base: String,
}

impl Control {
    pub fn of(sim: &RunningSim) -> Control {
        Control {
            http: reqwest::Client::new(),
            base: sim.http_base_url(),
        }
    }

    /// GET `path` and read its JSON answer.
    pub async fn get(&self, path: &str) -> serde_json::Value {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await;
        resp.unwrap().json().await.unwrap()
    }

    /// POST to `path`, with a JSON body when one is given.
    pub async fn post(&self, path: &str, json: Option<serde_json::Value>) -> reqwest::Response {
        let req = self.http.post(format!("{}{path}", self.base));
        let req = match json {
            Some(json) => req.json(&json),
            None => req,
        };
        req.send().await.unwrap()
    }
}

/// POST a raw body to a path of the plain listener.
pub async fn raw_post(sim: &RunningSim, path: &str, body: Vec<u8>) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", sim.http_base_url()))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// A signed request body with the simulator's credentials.
pub fn signed(sim: &RunningSim, pairs: &[(&str, &str)], sign_type: Option<&str>) -> Vec<u8> {
    let mut p: wxpay::Params = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    p.insert("appid".into(), sim.appid().into());
    p.insert("mch_id".into(), sim.mch_id().into());
    p.insert("nonce_str".into(), wxpay::nonce_str());
    let t = match sign_type {
        Some(t) => {
            p.insert("sign_type".into(), t.into());
            t.parse().unwrap_or(SignType::Md5)
        }
        None => SignType::Md5,
    };
    let s = wxpay::sign(&p, sim.api_key(), t);
    p.insert("sign".into(), s);
    wxpay::xml::write(&p).into_bytes()
}
