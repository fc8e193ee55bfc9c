//! The HTTP client (docs/wechatpay-v2.md §2, §6, §8): built once with its timeouts, holding one plain HTTPS
//! client and, when a merchant identity is configured, one mutual-TLS client for
//! `/secapi/pay/refund`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::Date;
use zeroize::Zeroizing;

use crate::api::{
    evaluate_response, looks_like_xml, parse_code2session, path, snippet, BillType,
    CloseOrderResponse, Code2Session, OrderQuery, OrderQueryResponse, RefundQueryRequest,
    RefundQueryResponse, RefundRequest, RefundResponse, UnifiedOrderRequest, UnifiedOrderResponse,
};
use crate::identity::MerchantIdentity;
use crate::sandbox::{self, SandboxPrefix};
use crate::{
    bill::{Bill, GzippedBill},
    nonce_str, sign, wxtime, xml, ApiKey, Error, JsapiPayParams, Params, SignType,
};

/// Production API base (§2.1).
pub const PRODUCTION_BASE_URL: &str = "https://api.mch.weixin.qq.com";
/// Production backup ("cross-city disaster recovery") base; serves every v2 method (§2.1).
pub const BACKUP_BASE_URL: &str = "https://api2.mch.weixin.qq.com";
/// Legacy sandbox base: production host + `/sandboxnew` (§2.1, MD5 only, §5.2).
pub const SANDBOX_BASE_URL: &str = "https://api.mch.weixin.qq.com/sandboxnew";

/// The backup host a base URL fails over to unless configured otherwise (§2.1): WeChat
/// Pay's "cross-city disaster recovery" host [`BACKUP_BASE_URL`] for the production base
/// [`PRODUCTION_BASE_URL`] (a trailing `/` ignored), nothing for any other base — a sandbox
/// prefix, another access point or a simulator has no backup of its own.
pub fn default_backup_base_url(base_url: &str) -> Option<&'static str> {
    (base_url.trim_end_matches('/') == PRODUCTION_BASE_URL).then_some(BACKUP_BASE_URL)
}
/// Mini Program login host for jscode2session (§2.1, §8.10).
pub const LOGIN_BASE_URL: &str = "https://api.weixin.qq.com";

/// Largest bill body read (§8.7 bills are plain text; big merchants have big days).
const MAX_BILL_BODY: usize = 256 * 1024 * 1024;
/// Largest bill text a `tar_type=GZIP` body may inflate to.
const MAX_BILL_TEXT: usize = 512 * 1024 * 1024;
/// How much of a bill body a [`CallRecord`] keeps.
const RECORDED_BILL_BODY: usize = 64 * 1024;

/// The Mini Program AppSecret (§3, §8.10): a secret, `Debug` prints `[redacted]`.
#[derive(Clone)]
pub struct AppSecret(Zeroizing<String>);

impl AppSecret {
    /// Wrap a secret.
    pub fn new(v: impl Into<String>) -> Self {
        AppSecret(Zeroizing::new(v.into()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret([redacted])")
    }
}

/// Client configuration (§2.1, §3). `Debug` is safe to log: secrets print `[redacted]`.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Mini Program appid.
    pub appid: String,
    /// Merchant number.
    pub mch_id: String,
    /// API v2 key (32 characters).
    pub api_key: ApiKey,
    /// Sign type of every request; responses are verified with it (§5.2).
    pub sign_type: SignType,
    /// Scheme + host + optional prefix: [`PRODUCTION_BASE_URL`], [`SANDBOX_BASE_URL`], or the
    /// simulator (§2.1).
    pub base_url: String,
    /// Where to retry once after a connect error or HTTP 5xx from `base_url` (§2.1), e.g.
    /// [`BACKUP_BASE_URL`] ([`default_backup_base_url`] gives the usual choice). `None`: no
    /// failover.
    pub backup_base_url: Option<String>,
    /// Base for `/secapi/pay/refund` when it differs from `base_url` (the simulator serves
    /// mutual TLS on its own listener). Defaults to `base_url`, with the same backup
    /// (`backup_base_url`).
    pub refund_base_url: Option<String>,
    /// The refund's backup when `refund_base_url` is set (a simulator's second mutual-TLS
    /// listener); ignored without it, when the refund shares `backup_base_url`.
    pub refund_backup_base_url: Option<String>,
    /// Client certificate for refunds (§3).
    pub identity: Option<MerchantIdentity>,
    /// TCP + TLS connect timeout (default 10 s, §12).
    pub connect_timeout: Duration,
    /// Whole-request timeout (default 15 s, §12).
    pub timeout: Duration,
    /// Extra trusted root CA (PEM), e.g. the local simulator's CA. The public roots stay
    /// trusted; server verification is never disabled (§2.3).
    pub extra_root_ca_pem: Option<Vec<u8>>,
    /// Base of jscode2session (default [`LOGIN_BASE_URL`], §8.10).
    pub login_base_url: String,
    /// AppSecret for jscode2session (§8.10).
    pub app_secret: Option<AppSecret>,
}

impl ClientConfig {
    /// A configuration for production with default timeouts and MD5 (§2.1).
    pub fn new(appid: impl Into<String>, mch_id: impl Into<String>, api_key: ApiKey) -> Self {
        ClientConfig {
            appid: appid.into(),
            mch_id: mch_id.into(),
            api_key,
            sign_type: SignType::Md5,
            base_url: PRODUCTION_BASE_URL.into(),
            backup_base_url: None,
            refund_base_url: None,
            refund_backup_base_url: None,
            identity: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(15),
            extra_root_ca_pem: None,
            login_base_url: LOGIN_BASE_URL.into(),
            app_secret: None,
        }
    }
}

/// One outbound HTTP call, as handed to a [`CallObserver`] (design: `api_calls`).
///
/// Bodies contain `sign` but never the API key (the key is not part of any message). For
/// jscode2session the `secret` and `js_code` in the URL and the `session_key` in the body are
/// replaced by `[redacted]`; bill bodies are cut at 64 KiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Endpoint path, e.g. `/pay/unifiedorder`.
    pub endpoint: String,
    /// Full URL called (secrets redacted).
    pub url: String,
    /// 1 for the first attempt (the configured base), 2 for the backup host after the first
    /// failed (§2.1). 0 for the refund-channel probe, which never fails over.
    pub attempt: u32,
    /// `out_trade_no` of the request or response.
    pub out_trade_no: Option<String>,
    /// `out_refund_no` of the request or response.
    pub out_refund_no: Option<String>,
    /// `transaction_id` of the request or response.
    pub transaction_id: Option<String>,
    /// `return_code` of the response.
    pub return_code: Option<String>,
    /// `result_code` of the response.
    pub result_code: Option<String>,
    /// `err_code` of the response.
    pub err_code: Option<String>,
    /// HTTP status, if a response arrived.
    pub http_status: Option<u16>,
    /// Time from sending to the evaluated result.
    pub latency: Duration,
    /// Request body.
    pub request_body: String,
    /// Response body (lossy UTF-8).
    pub response_body: String,
    /// The error, if the call failed.
    pub error: Option<String>,
}

impl CallRecord {
    /// The host that was called (`api2.mch.weixin.qq.com`), see [`url_host`].
    pub fn host(&self) -> Option<String> {
        url_host(&self.url)
    }
}

/// The host of a URL, with its port when it has one (`api2.mch.weixin.qq.com`,
/// `127.0.0.1:8481`): never its path, query or credentials, which may carry secrets.
/// `None` when it is not an absolute URL with a host.
pub fn url_host(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Hook to record every call (design: `api_calls`). Called synchronously after each attempt:
/// keep it fast (e.g. push to a channel).
pub trait CallObserver: Send + Sync {
    /// One call finished.
    fn on_call(&self, record: &CallRecord);
}

/// Result of [`Client::check_refund_channel`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundChannelStatus {
    /// URL probed.
    pub url: String,
    /// HTTP status of the answer.
    pub http_status: u16,
    /// `return_code` of the answer (expected `FAIL`: the probe carries no refund).
    pub return_code: Option<String>,
    /// `return_msg`, e.g. a missing-parameter message (or `签名错误` when the key is wrong).
    pub return_msg: Option<String>,
    /// Round trip time.
    pub latency: Duration,
}

/// The WeChat Pay v2 client (§2, §6, §8). Cheap to share behind an `Arc`.
pub struct Client {
    config: ClientConfig,
    base_url: String,
    backup_base_url: Option<String>,
    refund_base_url: String,
    refund_backup_base_url: Option<String>,
    login_base_url: String,
    /// The sandbox prefix of `base_url`, if it has one (§2.1).
    sandbox: Option<SandboxPrefix>,
    /// The sandbox key once fetched (sandbox.rs: once, lazily, for the client's lifetime).
    sandbox_key: tokio::sync::OnceCell<ApiKey>,
    http: reqwest::Client,
    mtls: Option<reqwest::Client>,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("sandbox", &self.sandbox)
            .field("mtls", &self.mtls.is_some())
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

fn config_err(reason: impl Into<String>) -> Error {
    Error::Config {
        reason: reason.into(),
    }
}

fn normalise_base(name: &str, url: &str) -> Result<String, Error> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| config_err(format!("{name} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(config_err(format!(
            "{name} {url:?}: expected an http(s) URL"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(config_err(format!(
            "{name} {url:?}: no query or fragment allowed"
        )));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Ids a call is about, for the [`CallRecord`].
#[derive(Default)]
struct Ids {
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    transaction_id: Option<String>,
}

impl Ids {
    fn from_params(p: &Params) -> Self {
        let get = |k: &str| p.get(k).filter(|v| !v.is_empty()).cloned();
        Ids {
            out_trade_no: get("out_trade_no"),
            out_refund_no: get("out_refund_no"),
            transaction_id: get("transaction_id"),
        }
    }
}

/// A raw HTTP outcome before evaluation.
struct Raw {
    status: u16,
    body: Vec<u8>,
}

fn transport(endpoint: &str, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout {
            endpoint: endpoint.to_owned(),
        }
    } else {
        Error::Transport {
            endpoint: endpoint.to_owned(),
            source: e.without_url(),
        }
    }
}

/// Whether an attempt may be repeated on the backup host (§2.1: "switch to it when the
/// primary fails (network error / 5xx)").
///
/// Failing over never submits anything twice that WeChat Pay would carry out twice:
/// - **connect errors** (refused, unreachable, DNS, TCP or TLS handshake): the request was
///   never sent, so it cannot have been processed;
/// - **HTTP 5xx**: the gateway failed and the request may or may not have reached the
///   service, but every v2 call is idempotent when resent with the same business
///   parameters, which the backup receives byte for byte (the same signed body): unifiedorder
///   re-entry with identical parameters is allowed and answers the same order (§8.1, §10.1);
///   refund with the same `out_refund_no` "⇒ at most one refund" (§8.5); closeorder on an
///   order the first attempt closed answers `ORDERCLOSED`, which the caller reads as closed
///   (§8.4); orderquery, refundquery and downloadbill only read (§8.3, §8.6, §8.7). The two
///   hosts share their orders (§2.1), so the backup sees what the primary did.
///
/// A **timeout after the request was sent**, or a connection lost while the answer was read,
/// is not failed over: the primary may still be processing it, and §6 step 1 / §7 make it
/// an unknown outcome for the caller, who queries or resends the same request
/// ([`Error::is_unknown_outcome`]) — on the primary, which by then has either finished or is
/// down (and then the resend fails over as a connect error).
fn failover_worthy(result: &Result<Raw, (Error, bool)>) -> bool {
    match result {
        Ok(raw) => raw.status >= 500,
        Err((_, connect)) => *connect,
    }
}

/// An attempt's outcome as (HTTP status, body, result): no answer → its transport error; a
/// status other than 200 → [`Error::HttpStatus`]; otherwise what `interpret` makes of it.
fn read_answer<T>(
    endpoint: &str,
    raw: Result<Raw, (Error, bool)>,
    interpret: impl FnOnce(&Raw) -> Result<T, Error>,
) -> (Option<u16>, Vec<u8>, Result<T, Error>) {
    match raw {
        Err((e, _)) => (None, Vec::new(), Err(e)),
        Ok(raw) if raw.status != 200 => {
            let e = Error::HttpStatus {
                endpoint: endpoint.to_owned(),
                status: raw.status,
                body: snippet(&raw.body),
            };
            (Some(raw.status), raw.body, Err(e))
        }
        Ok(raw) => {
            let r = interpret(&raw);
            (Some(raw.status), raw.body, r)
        }
    }
}

async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            body.extend_from_slice(&chunk[..limit.saturating_sub(body.len())]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl Client {
    /// Build the client once (§2, house style §11): validates the configuration, builds the
    /// plain client and, with an identity, the mutual-TLS one.
    ///
    /// The API key must have exactly 32 characters (§3); a different length means the
    /// AppSecret or the APIv3 key was configured by mistake.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        if config.appid.is_empty() || config.mch_id.is_empty() {
            return Err(config_err("appid and mch_id are required"));
        }
        if config.api_key.len() != 32 {
            return Err(config_err(format!(
                "the API v2 key must have 32 characters, this one has {} (AppSecret or APIv3 key configured?)",
                config.api_key.len()
            )));
        }
        let base_url = normalise_base("base_url", &config.base_url)?;
        let backup_base_url = config
            .backup_base_url
            .as_deref()
            .map(|u| normalise_base("backup_base_url", u))
            .transpose()?;
        let (refund_base_url, refund_backup_base_url) = match &config.refund_base_url {
            Some(u) => (
                normalise_base("refund_base_url", u)?,
                config
                    .refund_backup_base_url
                    .as_deref()
                    .map(|u| normalise_base("refund_backup_base_url", u))
                    .transpose()?,
            ),
            None => (base_url.clone(), backup_base_url.clone()),
        };
        let login_base_url = normalise_base("login_base_url", &config.login_base_url)?;
        let sandbox = SandboxPrefix::of(&base_url);
        if let Some(prefix) = sandbox {
            if config.sign_type != SignType::Md5 {
                return Err(config_err(format!(
                    "the sandbox ({}) signs with MD5 only (§5.2): set the sign type to MD5",
                    prefix.as_str()
                )));
            }
        }
        for other in [Some(&refund_base_url), backup_base_url.as_ref()]
            .into_iter()
            .chain([refund_backup_base_url.as_ref()])
            .flatten()
        {
            if SandboxPrefix::of(other) != sandbox {
                return Err(config_err(format!(
                    "{other:?} and base_url {base_url:?} must both be the sandbox or both not: the sandbox has its own key and its own orders"
                )));
            }
        }

        let builder = || -> Result<reqwest::ClientBuilder, Error> {
            let mut b = reqwest::Client::builder()
                .use_rustls_tls()
                .connect_timeout(config.connect_timeout)
                .timeout(config.timeout)
                .user_agent(concat!("paydesk-wxpay/", env!("CARGO_PKG_VERSION")));
            if let Some(pem) = &config.extra_root_ca_pem {
                let certs = reqwest::Certificate::from_pem_bundle(pem)
                    .map_err(|e| config_err(format!("extra_root_ca_pem: {}", e.without_url())))?;
                if certs.is_empty() {
                    return Err(config_err("extra_root_ca_pem holds no certificate"));
                }
                for cert in certs {
                    b = b.add_root_certificate(cert);
                }
            }
            Ok(b)
        };
        let http = builder()?
            .build()
            .map_err(|e| config_err(format!("HTTP client: {}", e.without_url())))?;
        let mtls = match &config.identity {
            Some(identity) => Some(
                builder()?
                    .identity(identity.to_reqwest()?)
                    .build()
                    .map_err(|e| config_err(format!("mutual-TLS client: {}", e.without_url())))?,
            ),
            None => None,
        };
        Ok(Client {
            config,
            base_url,
            backup_base_url,
            refund_base_url,
            refund_backup_base_url,
            login_base_url,
            sandbox,
            sandbox_key: tokio::sync::OnceCell::new(),
            http,
            mtls,
            observer: None,
        })
    }

    /// Record every call through `observer` (design: `api_calls`).
    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The sign type of requests (store it with each order, §5.2).
    pub fn sign_type(&self) -> SignType {
        self.config.sign_type
    }

    /// `wx.requestPayment` parameters for a `prepay_id`, signed with this client's appid, key
    /// and sign type (§5.5). In the sandbox the key is the sandbox key, which the
    /// unifiedorder that gave the `prepay_id` has fetched (§3).
    pub fn jsapi_pay_params(&self, prepay_id: &str) -> JsapiPayParams {
        let key = self.sandbox_key.get().unwrap_or(&self.config.api_key);
        JsapiPayParams::new(&self.config.appid, prepay_id, self.config.sign_type, key)
    }

    /// The sandbox prefix of the base URL, when this client talks to WeChat Pay's sandbox
    /// (§2.1): then every message is signed with the sandbox key, see [`Client::signing_key`].
    pub fn sandbox(&self) -> Option<SandboxPrefix> {
        self.sandbox
    }

    /// The key every message is signed and verified with (§3): the API key, or in the
    /// sandbox the `sandbox_signkey` that getsignkey gives (§8.11). The sandbox key is
    /// fetched on the first call that needs it (this one or any API call), once for the
    /// client's lifetime, so notifications and `paySign` agree with the requests; a failed
    /// fetch is not kept and the next call tries again. The key is never logged or recorded.
    pub async fn signing_key(&self) -> Result<ApiKey, Error> {
        let Some(prefix) = self.sandbox else {
            return Ok(self.config.api_key.clone());
        };
        self.sandbox_key
            .get_or_try_init(|| self.fetch_sandbox_key(prefix))
            .await
            .cloned()
    }

    /// getsignkey (§8.11): signed MD5 with the production key, recorded without the answer's
    /// key.
    async fn fetch_sandbox_key(&self, prefix: SandboxPrefix) -> Result<ApiKey, Error> {
        let endpoint = sandbox::SIGN_KEY_ENDPOINT;
        let url = prefix.sign_key_url(&self.base_url);
        let body = xml::write(&sandbox::sign_key_request(
            &self.config.mch_id,
            &self.config.api_key,
        ));
        let started = Instant::now();
        let raw = self
            .post_once(&self.http, &url, endpoint, &body, xml::MAX_BODY + 1)
            .await;
        let (status, resp_body, result) = read_answer(endpoint, raw, |raw| {
            sandbox::parse_sign_key_answer(&raw.body, &self.config.mch_id)
        });
        if let Some(o) = &self.observer {
            let error = result.as_ref().err().map(ToString::to_string);
            let parsed = xml::parse(&resp_body).ok();
            let get = |k: &str| parsed.as_ref().and_then(|p| p.get(k)).cloned();
            o.on_call(&CallRecord {
                endpoint: endpoint.to_owned(),
                url,
                attempt: 1,
                out_trade_no: None,
                out_refund_no: None,
                transaction_id: None,
                return_code: get("return_code").or_else(|| get("retcode")),
                result_code: None,
                err_code: None,
                http_status: status,
                latency: started.elapsed(),
                request_body: body,
                response_body: sandbox::redact_sign_key_answer(&resp_body),
                error,
            });
        }
        if result.is_ok() {
            tracing::info!(
                sandbox = prefix.as_str(),
                "fetched the sandbox sign key (getsignkey)"
            );
        }
        result
    }

    /// Add the common fields (§8) and sign with `key` ([`Client::signing_key`]).
    fn signed_body(&self, mut params: Params, key: &ApiKey) -> String {
        params.insert("appid".into(), self.config.appid.clone());
        params.insert("mch_id".into(), self.config.mch_id.clone());
        params.insert("nonce_str".into(), nonce_str());
        params.insert("sign_type".into(), self.config.sign_type.as_str().into());
        let s = sign(&params, key, self.config.sign_type);
        params.insert("sign".into(), s);
        xml::write(&params)
    }

    fn observe(&self, record: CallRecord) {
        if let Some(o) = &self.observer {
            o.on_call(&record);
        }
    }

    /// One POST; the bool in the error says whether it was a connect error (failover-worthy).
    async fn post_once(
        &self,
        client: &reqwest::Client,
        url: &str,
        endpoint: &str,
        body: &str,
        limit: usize,
    ) -> Result<Raw, (Error, bool)> {
        let resp = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| {
                let connect = e.is_connect();
                (transport(endpoint, e), connect)
            })?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, limit)
            .await
            .map_err(|e| (transport(endpoint, e), false))?;
        Ok(Raw { status, body })
    }

    /// POST a signed body with backup failover ([`failover_worthy`] says when, and why that
    /// never carries out a request twice), evaluate per §6, record each attempt.
    async fn call(
        &self,
        endpoint: &'static str,
        params: Params,
        mtls: bool,
    ) -> Result<Params, Error> {
        let ids = Ids::from_params(&params);
        let key = self.signing_key().await?;
        let body = self.signed_body(params, &key);
        let (client, bases) = self.route(mtls)?;
        let mut last = None;
        for (attempt, base) in bases.iter().enumerate() {
            let url = format!("{base}{endpoint}");
            let started = Instant::now();
            let raw = self
                .post_once(client, &url, endpoint, &body, xml::MAX_BODY + 1)
                .await;
            let retry_elsewhere = failover_worthy(&raw) && attempt + 1 < bases.len();
            let (status, resp_body, result) = read_answer(endpoint, raw, |raw| {
                evaluate_response(
                    endpoint,
                    &raw.body,
                    &key,
                    self.config.sign_type,
                    &self.config.appid,
                    &self.config.mch_id,
                )
            });
            let error = result.as_ref().err().map(ToString::to_string);
            self.record(
                endpoint, &url, attempt, &ids, status, &resp_body, &body, started, error,
            );
            if let Err(e) = &result {
                tracing::debug!(wxpay.endpoint = endpoint, attempt = attempt + 1, error = %e, "WeChat Pay call failed");
            }
            if !retry_elsewhere {
                return result;
            }
            tracing::warn!(
                wxpay.endpoint = endpoint,
                wxpay.failed_url = %url,
                "primary WeChat Pay host failed; trying the backup host"
            );
            last = Some(result);
        }
        last.unwrap_or_else(|| Err(config_err("no base URL")))
    }

    fn route(&self, mtls: bool) -> Result<(&reqwest::Client, Vec<&str>), Error> {
        if mtls {
            let client = self.mtls.as_ref().ok_or(Error::NoIdentity)?;
            let mut bases = vec![self.refund_base_url.as_str()];
            bases.extend(self.refund_backup_base_url.as_deref());
            Ok((client, bases))
        } else {
            let mut bases = vec![self.base_url.as_str()];
            bases.extend(self.backup_base_url.as_deref());
            Ok((&self.http, bases))
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "internal helper assembling one record from the pieces of a call"
    )]
    fn record(
        &self,
        endpoint: &str,
        url: &str,
        attempt: usize,
        ids: &Ids,
        status: Option<u16>,
        resp_body: &[u8],
        req_body: &str,
        started: Instant,
        error: Option<String>,
    ) {
        if self.observer.is_none() {
            return;
        }
        let parsed = if looks_like_xml(resp_body) {
            xml::parse(resp_body).ok()
        } else {
            None
        };
        let get = |k: &str| {
            parsed
                .as_ref()
                .and_then(|p| p.get(k))
                .filter(|v| !v.is_empty())
                .cloned()
        };
        self.observe(CallRecord {
            endpoint: endpoint.to_owned(),
            url: url.to_owned(),
            attempt: u32::try_from(attempt + 1).unwrap_or(u32::MAX),
            out_trade_no: ids.out_trade_no.clone().or_else(|| get("out_trade_no")),
            out_refund_no: ids.out_refund_no.clone().or_else(|| get("out_refund_no")),
            transaction_id: ids.transaction_id.clone().or_else(|| get("transaction_id")),
            return_code: get("return_code"),
            result_code: get("result_code"),
            err_code: get("err_code").or_else(|| get("error_code")),
            http_status: status,
            latency: started.elapsed(),
            request_body: req_body.to_owned(),
            response_body: String::from_utf8_lossy(resp_body).into_owned(),
            error,
        });
    }

    /// `unifiedorder` (§8.1): create the order, get a `prepay_id`.
    #[tracing::instrument(skip_all, fields(order.out_trade_no = %req.out_trade_no))]
    pub async fn unified_order(
        &self,
        req: &UnifiedOrderRequest,
    ) -> Result<UnifiedOrderResponse, Error> {
        let params = self
            .call(path::UNIFIED_ORDER, req.to_params()?, false)
            .await?;
        UnifiedOrderResponse::from_params(params)
    }

    /// `orderquery` (§8.3). Only `trade_state` says whether the order is paid.
    #[tracing::instrument(skip_all)]
    pub async fn order_query(&self, query: OrderQuery) -> Result<OrderQueryResponse, Error> {
        let params = self
            .call(path::ORDER_QUERY, query.to_params()?, false)
            .await?;
        OrderQueryResponse::from_params(params)
    }

    /// `closeorder` (§8.4). `ORDERPAID` / `ORDERCLOSED` come back as [`Error::ResultFail`].
    #[tracing::instrument(skip_all, fields(order.out_trade_no = %out_trade_no))]
    pub async fn close_order(&self, out_trade_no: &str) -> Result<CloseOrderResponse, Error> {
        crate::api::check_out_trade_no(out_trade_no)?;
        let params = Params::from([("out_trade_no".to_owned(), out_trade_no.to_owned())]);
        let params = self.call(path::CLOSE_ORDER, params, false).await?;
        Ok(CloseOrderResponse::from_params(params))
    }

    /// `refund` over mutual TLS (§8.5). [`Error::NoIdentity`] without a certificate. On any
    /// retry-safe error, call again with the **same** request (same `out_refund_no`).
    #[tracing::instrument(skip_all, fields(refund.out_refund_no = %req.out_refund_no))]
    pub async fn refund(&self, req: &RefundRequest) -> Result<RefundResponse, Error> {
        let params = req.to_params()?;
        if self.mtls.is_none() {
            return Err(Error::NoIdentity);
        }
        let params = self.call(path::REFUND, params, true).await?;
        RefundResponse::from_params(params)
    }

    /// `refundquery` (§8.6), with `offset` paging and the per-refund items `_$n`.
    #[tracing::instrument(skip_all)]
    pub async fn refund_query(
        &self,
        req: impl Into<RefundQueryRequest>,
    ) -> Result<RefundQueryResponse, Error> {
        let req = req.into();
        let params = self
            .call(path::REFUND_QUERY, req.to_params()?, false)
            .await?;
        RefundQueryResponse::from_params(params)
    }

    /// `downloadbill` (§8.7) for a Beijing date. The success body is the bill text itself
    /// (unsigned); a body starting with `<` is the XML failure envelope → [`Error::BillFail`].
    #[tracing::instrument(skip_all, fields(bill.date = %wxtime::format_date(date), bill.bill_type = %bill_type))]
    pub async fn download_bill(&self, date: Date, bill_type: BillType) -> Result<Bill, Error> {
        self.fetch_bill(date, bill_type, false, interpret_bill)
            .await
    }

    /// `downloadbill` (§8.7) with `tar_type=GZIP`: the bill as WeChat Pay compressed it (to
    /// keep as it came) and parsed. The text is read up to [`MAX_BILL_TEXT`]; a longer one
    /// is refused as [`Error::Bill`], whatever the compressed size.
    #[tracing::instrument(skip_all, fields(bill.date = %wxtime::format_date(date), bill.bill_type = %bill_type))]
    pub async fn download_bill_gzip(
        &self,
        date: Date,
        bill_type: BillType,
    ) -> Result<GzippedBill, Error> {
        self.fetch_bill(date, bill_type, true, |body| {
            let bill = interpret_gzipped_bill(body)?;
            Ok(GzippedBill {
                gzip: body.to_vec(),
                bill,
            })
        })
        .await
    }

    async fn fetch_bill<T>(
        &self,
        date: Date,
        bill_type: BillType,
        gzip: bool,
        interpret: impl Fn(&[u8]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let endpoint = path::DOWNLOAD_BILL;
        let mut params = Params::from([
            ("bill_date".to_owned(), wxtime::format_date(date)),
            ("bill_type".to_owned(), bill_type.as_str().to_owned()),
        ]);
        if gzip {
            params.insert("tar_type".to_owned(), "GZIP".to_owned());
        }
        let key = self.signing_key().await?;
        let body = self.signed_body(params, &key);
        let ids = Ids::default();
        let (client, bases) = self.route(false)?;
        let mut last = None;
        for (attempt, base) in bases.iter().enumerate() {
            let url = format!("{base}{endpoint}");
            let started = Instant::now();
            let raw = self
                .post_once(client, &url, endpoint, &body, MAX_BILL_BODY)
                .await;
            let retry_elsewhere = failover_worthy(&raw) && attempt + 1 < bases.len();
            let (status, resp_body, result) =
                read_answer(endpoint, raw, |raw| interpret(&raw.body));
            // A compressed bill is recorded as its size only: the bytes mean nothing to a
            // person reading the call log, and the stored bill keeps them.
            let recorded = if gzip && result.is_ok() {
                format!("[gzip bill, {} bytes]", resp_body.len()).into_bytes()
            } else {
                resp_body[..resp_body.len().min(RECORDED_BILL_BODY)].to_vec()
            };
            let error = result.as_ref().err().map(ToString::to_string);
            self.record(
                endpoint, &url, attempt, &ids, status, &recorded, &body, started, error,
            );
            if !retry_elsewhere {
                return result;
            }
            last = Some(result);
        }
        last.unwrap_or_else(|| Err(config_err("no base URL")))
    }

    /// `jscode2session` (§8.10): exchange a `wx.login` code for the openid. Needs
    /// `app_secret`. The `session_key` is returned as a secret and never recorded.
    #[tracing::instrument(skip_all)]
    pub async fn jscode2session(&self, js_code: &str) -> Result<Code2Session, Error> {
        let endpoint = path::JSCODE2SESSION;
        let secret = self
            .config
            .app_secret
            .as_ref()
            .ok_or_else(|| config_err("app_secret is required for jscode2session"))?;
        let url = format!("{}{endpoint}", self.login_base_url);
        let shown_url = format!(
            "{url}?appid={}&secret=[redacted]&js_code=[redacted]&grant_type=authorization_code",
            self.config.appid
        );
        let started = Instant::now();
        let sent = self
            .http
            .get(&url)
            .query(&[
                ("appid", self.config.appid.as_str()),
                ("secret", secret.expose()),
                ("js_code", js_code),
                ("grant_type", "authorization_code"),
            ])
            .send()
            .await;
        let (status, body, result) = match sent {
            Err(e) => (None, Vec::new(), Err(transport(endpoint, e))),
            Ok(resp) => {
                let status = resp.status().as_u16();
                match read_limited(resp, xml::MAX_BODY).await {
                    Err(e) => (Some(status), Vec::new(), Err(transport(endpoint, e))),
                    Ok(body) if status != 200 => {
                        let e = Error::HttpStatus {
                            endpoint: endpoint.to_owned(),
                            status,
                            body: snippet(&body),
                        };
                        (Some(status), body, Err(e))
                    }
                    Ok(body) => {
                        let r = parse_code2session(&body);
                        (Some(status), body, r)
                    }
                }
            }
        };
        if let Some(o) = &self.observer {
            o.on_call(&CallRecord {
                endpoint: endpoint.to_owned(),
                url: shown_url,
                attempt: 1,
                out_trade_no: None,
                out_refund_no: None,
                transaction_id: None,
                return_code: None,
                result_code: None,
                err_code: match &result {
                    Err(Error::Login { errcode, .. }) => Some(errcode.to_string()),
                    _ => None,
                },
                http_status: status,
                latency: started.elapsed(),
                request_body: String::new(),
                response_body: redact_session_key(&body),
                error: result.as_ref().err().map(ToString::to_string),
            });
        }
        result
    }

    /// WeChat Pay's clock, as the HTTP `Date` header of a `GET` of the API base states it
    /// (the answer's status does not matter). WeChat refuses requests whose times are far
    /// off, so `paydesk doctor` compares it with ours. `None` when the answer has no
    /// readable `Date`.
    pub async fn server_time(&self) -> Result<Option<time::OffsetDateTime>, Error> {
        let resp = self
            .http
            .get(&self.base_url)
            .send()
            .await
            .map_err(|e| transport("/", e))?;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(date.as_deref().and_then(parse_http_date))
    }

    /// Probe the refund channel without moving money (§8.5): a signed request to
    /// `/secapi/pay/refund` over mutual TLS with only the common fields. The server refuses it
    /// for the missing refund fields; getting that XML answer proves the TLS handshake with
    /// our certificate and the route work (a `签名错误` `return_msg` also reveals a wrong key).
    /// Missing or rejected certificates surface as [`Error::Transport`] or
    /// [`Error::HttpStatus`] 400 (the gateway's HTML page).
    #[tracing::instrument(skip_all)]
    pub async fn check_refund_channel(&self) -> Result<RefundChannelStatus, Error> {
        let endpoint = path::REFUND;
        let client = self.mtls.as_ref().ok_or(Error::NoIdentity)?;
        let url = format!("{}{endpoint}", self.refund_base_url);
        let key = self.signing_key().await?;
        let body = self.signed_body(Params::new(), &key);
        let started = Instant::now();
        let raw = self
            .post_once(client, &url, endpoint, &body, xml::MAX_BODY + 1)
            .await;
        let latency = started.elapsed();
        let (status, resp_body, result) = read_answer(endpoint, raw, |raw| {
            crate::api::parse_response_xml(endpoint, &raw.body).map(|p| RefundChannelStatus {
                url: url.clone(),
                http_status: raw.status,
                return_code: p.get("return_code").cloned(),
                return_msg: p.get("return_msg").cloned(),
                latency,
            })
        });
        let error = result.as_ref().err().map(ToString::to_string);
        self.record(
            endpoint,
            &url,
            0,
            &Ids::default(),
            status,
            &resp_body,
            &body,
            started,
            error,
        );
        result
    }
}

/// An HTTP `Date` (RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
fn parse_http_date(text: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &fmt)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Sniff a downloadbill body (§8.7): XML → failure envelope; otherwise UTF-8 bill text.
fn interpret_bill(body: &[u8]) -> Result<Bill, Error> {
    if looks_like_xml(body) {
        let params = xml::parse(body)?;
        let return_msg = params.get("return_msg").cloned().unwrap_or_default();
        return Err(Error::BillFail {
            return_msg,
            error_code: params.get("error_code").filter(|v| !v.is_empty()).cloned(),
        });
    }
    let text = std::str::from_utf8(body).map_err(|e| Error::Bill {
        line: 0,
        reason: format!("bill is not UTF-8: {e}"),
    })?;
    Bill::parse(text)
}

/// Sniff a `tar_type=GZIP` downloadbill body (§8.7): XML → failure envelope; otherwise gzip
/// of UTF-8 bill text, inflated up to [`MAX_BILL_TEXT`].
fn interpret_gzipped_bill(body: &[u8]) -> Result<Bill, Error> {
    use std::io::Read as _;
    if looks_like_xml(body) {
        return interpret_bill(body);
    }
    let mut text = Vec::new();
    let limit = u64::try_from(MAX_BILL_TEXT).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(body)
        .take(limit + 1)
        .read_to_end(&mut text)
        .map_err(|e| Error::Bill {
            line: 0,
            reason: format!("the gzip bill does not inflate: {e}"),
        })?;
    if text.len() > MAX_BILL_TEXT {
        return Err(Error::Bill {
            line: 0,
            reason: format!("the bill inflates past {MAX_BILL_TEXT} bytes"),
        });
    }
    interpret_bill(&text)
}

/// Replace `session_key` in a jscode2session body before recording it (§8.10).
fn redact_session_key(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            if map.contains_key("session_key") {
                map.insert(
                    "session_key".into(),
                    serde_json::Value::String("[redacted]".into()),
                );
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            if text.contains("session_key") {
                "[unparsable body containing session_key redacted]".into()
            } else {
                text.into_owned()
            }
        }
    }
}

/// The endpoint calls of [`Client`] as a trait, so domain code can be unit-tested with a
/// fake (house style §11). With the `mock` feature, `MockApi` is generated by mockall.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait Api: Send + Sync {
    /// See [`Client::unified_order`] (§8.1).
    async fn unified_order(&self, req: &UnifiedOrderRequest)
        -> Result<UnifiedOrderResponse, Error>;
    /// See [`Client::order_query`] (§8.3).
    async fn order_query(&self, query: OrderQuery) -> Result<OrderQueryResponse, Error>;
    /// See [`Client::close_order`] (§8.4).
    async fn close_order(&self, out_trade_no: &str) -> Result<CloseOrderResponse, Error>;
    /// See [`Client::refund`] (§8.5).
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResponse, Error>;
    /// See [`Client::refund_query`] (§8.6).
    async fn refund_query(&self, req: RefundQueryRequest) -> Result<RefundQueryResponse, Error>;
    /// See [`Client::download_bill`] (§8.7).
    async fn download_bill(&self, date: Date, bill_type: BillType) -> Result<Bill, Error>;
    /// See [`Client::download_bill_gzip`] (§8.7).
    async fn download_bill_gzip(
        &self,
        date: Date,
        bill_type: BillType,
    ) -> Result<GzippedBill, Error>;
    /// See [`Client::jscode2session`] (§8.10).
    async fn jscode2session(&self, js_code: &str) -> Result<Code2Session, Error>;
    /// See [`Client::check_refund_channel`] (§8.5).
    async fn check_refund_channel(&self) -> Result<RefundChannelStatus, Error>;
    /// See [`Client::jsapi_pay_params`] (§5.5).
    fn jsapi_pay_params(&self, prepay_id: &str) -> JsapiPayParams;
    /// See [`Client::sign_type`] (§5.2).
    fn sign_type(&self) -> SignType;
}

#[async_trait::async_trait]
impl Api for Client {
    async fn unified_order(
        &self,
        req: &UnifiedOrderRequest,
    ) -> Result<UnifiedOrderResponse, Error> {
        Client::unified_order(self, req).await
    }
    async fn order_query(&self, query: OrderQuery) -> Result<OrderQueryResponse, Error> {
        Client::order_query(self, query).await
    }
    async fn close_order(&self, out_trade_no: &str) -> Result<CloseOrderResponse, Error> {
        Client::close_order(self, out_trade_no).await
    }
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResponse, Error> {
        Client::refund(self, req).await
    }
    async fn refund_query(&self, req: RefundQueryRequest) -> Result<RefundQueryResponse, Error> {
        Client::refund_query(self, req).await
    }
    async fn download_bill(&self, date: Date, bill_type: BillType) -> Result<Bill, Error> {
        Client::download_bill(self, date, bill_type).await
    }
    async fn download_bill_gzip(
        &self,
        date: Date,
        bill_type: BillType,
    ) -> Result<GzippedBill, Error> {
        Client::download_bill_gzip(self, date, bill_type).await
    }
    async fn jscode2session(&self, js_code: &str) -> Result<Code2Session, Error> {
        Client::jscode2session(self, js_code).await
    }
    async fn check_refund_channel(&self) -> Result<RefundChannelStatus, Error> {
        Client::check_refund_channel(self).await
    }
    fn jsapi_pay_params(&self, prepay_id: &str) -> JsapiPayParams {
        Client::jsapi_pay_params(self, prepay_id)
    }
    fn sign_type(&self) -> SignType {
        Client::sign_type(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_production_base_fails_over_to_api2_by_default() {
        assert_eq!(
            default_backup_base_url("https://api.mch.weixin.qq.com/"),
            Some(BACKUP_BASE_URL)
        );
        assert_eq!(default_backup_base_url(SANDBOX_BASE_URL), None);
        assert_eq!(default_backup_base_url(BACKUP_BASE_URL), None);
        assert_eq!(
            default_backup_base_url("https://apihk.mch.weixin.qq.com"),
            None
        );
        assert_eq!(default_backup_base_url("http://127.0.0.1:8480"), None);
    }

    fn config(base: &str) -> ClientConfig {
        let mut c = ClientConfig::new(
            "wxd930ea5d5a258f4f",
            "10000100",
            ApiKey::new("192006250b4c09247ec02edce69f6a2d"),
        );
        c.base_url = base.into();
        c
    }

    #[test]
    fn a_sandbox_client_is_md5_only_and_never_mixes_the_sandbox_with_production() {
        let mut hmac = config(SANDBOX_BASE_URL);
        hmac.sign_type = SignType::HmacSha256;
        let mut mixed_refund = config(SANDBOX_BASE_URL);
        mixed_refund.refund_base_url = Some("https://127.0.0.1:8443".into());
        let mut mixed_backup = config(SANDBOX_BASE_URL);
        mixed_backup.backup_base_url = Some(BACKUP_BASE_URL.into());

        for bad in [hmac, mixed_refund, mixed_backup] {
            assert!(matches!(Client::new(bad), Err(Error::Config { .. })));
        }
        let sandbox = Client::new(config(SANDBOX_BASE_URL)).unwrap();
        assert_eq!(sandbox.sandbox(), Some(SandboxPrefix::Legacy));
        assert_eq!(
            Client::new(config(PRODUCTION_BASE_URL)).unwrap().sandbox(),
            None
        );
    }

    #[test]
    fn the_refund_fails_over_to_its_own_backup_or_shares_the_api_one() {
        let mut own = config("http://127.0.0.1:1");
        own.backup_base_url = Some("http://127.0.0.1:2".into());
        own.refund_base_url = Some("https://127.0.0.1:3".into());
        own.refund_backup_base_url = Some("https://127.0.0.1:4/".into());
        let own = Client::new(own).unwrap();
        let mut shared = config(PRODUCTION_BASE_URL);
        shared.backup_base_url = Some(BACKUP_BASE_URL.into());
        let shared = Client::new(shared).unwrap();

        assert_eq!(
            (
                own.refund_base_url.as_str(),
                own.refund_backup_base_url.as_deref()
            ),
            ("https://127.0.0.1:3", Some("https://127.0.0.1:4"))
        );
        assert_eq!(
            shared.refund_backup_base_url.as_deref(),
            Some(BACKUP_BASE_URL)
        );
    }

    #[test]
    fn http_dates_are_read_as_utc_and_anything_else_is_none() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.unix_timestamp(), 784_111_777);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date(""), None);
    }
}
