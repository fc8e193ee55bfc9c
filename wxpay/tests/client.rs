//! The client against real local servers: HTTPS with client-certificate verification
//! (rcgen-generated CA, server and client certificates, tokio-rustls), plain HTTP for the
//! other endpoints, failover, timeouts and the observer hook.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;
use wxpay::{
    xml, ApiKey, CallObserver, CallRecord, Client, ClientConfig, Error, MerchantIdentity,
    OrderQuery, OrderRef, Params, RefundRequest, SignType, UnifiedOrderRequest,
};

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const APPID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";

struct Ca {
    cert: Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ca {
        cert: params.self_signed(&key).unwrap(),
        key,
    }
}

fn leaf(
    ca: &Ca,
    cn: &str,
    sans: Vec<String>,
    eku: ExtendedKeyUsagePurpose,
) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(sans).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![eku];
    (params.signed_by(&key, &ca.cert, &ca.key).unwrap(), key)
}

fn pem_identity(cert: &Certificate, key: &KeyPair) -> MerchantIdentity {
    MerchantIdentity::Pem {
        cert_pem: cert.pem().into_bytes(),
        key_pem: key.serialize_pem().into_bytes().into(),
    }
}

fn p12_identity(
    cert: &Certificate,
    key: &KeyPair,
    password: &str,
    legacy: bool,
) -> MerchantIdentity {
    use p12_keystore::{EncryptionAlgorithm, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let chain = PrivateKeyChain::new(
        "1".as_bytes(),
        PrivateKey::from_der(&key.serialize_der()).unwrap(),
        [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
    );
    let mut store = KeyStore::new();
    store.add_entry("apiclient", KeyStoreEntry::PrivateKeyChain(chain));
    let mut writer = store.writer(password);
    if legacy {
        writer = writer.encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc);
    }
    MerchantIdentity::Pkcs12 {
        der: writer.write().unwrap(),
        password: password.to_owned().into(),
    }
}

/// What the fake WeChat answers: (HTTP status, body) for (path, request body).
type Handler = Arc<dyn Fn(&str, &[u8]) -> (u16, Vec<u8>) + Send + Sync>;

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let target = head.split_whitespace().nth(1)?.to_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>())
        })
        .and_then(Result::ok)
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((target, buf[header_end..header_end + len].to_vec()))
}

async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, handler: Handler) {
    if let Some((target, body)) = read_request(&mut stream).await {
        let (status, resp) = handler(&target, &body);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            resp.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&resp).await;
        let _ = stream.shutdown().await;
    }
}

/// Start a server on 127.0.0.1:0; with `tls`, it requires a client certificate from `client_ca`.
async fn start(tls: Option<(&Ca, &Ca)>, handler: Handler) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls.map(|(server_ca, client_ca)| {
        let (cert, key) = leaf(
            server_ca,
            "localhost",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(client_ca.cert.der().to_vec()))
            .unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    });
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_one(tls, handler).await;
                        }
                    }
                    None => serve_one(tcp, handler).await,
                }
            });
        }
    });
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if tls.is_some() {
        "localhost"
    } else {
        "127.0.0.1"
    };
    format!("{scheme}://{host}:{port}")
}

/// A fake WeChat Pay: verifies the request's signature and answers signed with the request's
/// sign type, like the real service (§5.2, §6).
fn wechat(answer: fn(&str, &Params) -> Params) -> Handler {
    Arc::new(move |target: &str, body: &[u8]| {
        let key = ApiKey::new(KEY);
        let path = target.split('?').next().unwrap_or("").to_owned();
        let (req, t) = match wxpay::verify_request(body, &key) {
            Ok(v) => v,
            Err(_) => {
                return (200, xml::write(&return_fail("签名错误")).into_bytes());
            }
        };
        let mut resp = answer(&path, &req);
        if resp.get("return_code").map(String::as_str) == Some("SUCCESS") {
            resp.insert("appid".into(), APPID.into());
            resp.insert("mch_id".into(), MCH_ID.into());
            resp.insert("nonce_str".into(), wxpay::nonce_str());
            let s = wxpay::sign(&resp, &key, t);
            resp.insert("sign".into(), s);
        }
        (200, xml::write(&resp).into_bytes())
    })
}

fn ok(pairs: &[(&str, &str)]) -> Params {
    let mut p: Params = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    p.insert("return_code".into(), "SUCCESS".into());
    p.insert("result_code".into(), "SUCCESS".into());
    p
}

/// A communication failure (`return_code` FAIL) with its message (§6).
fn return_fail(msg: &str) -> Params {
    Params::from([
        ("return_code".to_owned(), "FAIL".to_owned()),
        ("return_msg".to_owned(), msg.to_owned()),
    ])
}

fn refund_answer(path: &str, req: &Params) -> Params {
    if path != "/secapi/pay/refund" {
        return return_fail("wrong path");
    }
    let Some(out_refund_no) = req.get("out_refund_no") else {
        return return_fail("缺少参数out_refund_no");
    };
    ok(&[
        ("out_refund_no", out_refund_no),
        (
            "out_trade_no",
            req.get("out_trade_no").map(String::as_str).unwrap_or(""),
        ),
        ("refund_id", "50000404922017112502468056157"),
        ("refund_fee", req["refund_fee"].as_str()),
        ("total_fee", req["total_fee"].as_str()),
        ("transaction_id", "4200000015201711256947025404"),
    ])
}

#[derive(Default)]
struct Recorder(Mutex<Vec<CallRecord>>);

impl CallObserver for Recorder {
    fn on_call(&self, record: &CallRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

fn config(base: &str, ca: Option<&Ca>, identity: Option<MerchantIdentity>) -> ClientConfig {
    let mut c = ClientConfig::new(APPID, MCH_ID, ApiKey::new(KEY));
    c.base_url = base.to_owned();
    c.identity = identity;
    c.extra_root_ca_pem = ca.map(|ca| ca.cert.pem().into_bytes());
    c.connect_timeout = Duration::from_secs(5);
    c.timeout = Duration::from_secs(5);
    c
}

/// A client that records every call it makes.
fn recorded(config: ClientConfig) -> (Client, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = Client::new(config).unwrap().with_observer(recorder.clone());
    (client, recorder)
}

/// The refund host: HTTPS under `server_ca`, asking for a client certificate from
/// `merchant_ca`, answering refunds like WeChat Pay.
struct RefundHost {
    server_ca: Ca,
    merchant_ca: Ca,
    base: String,
}

impl RefundHost {
    fn config(&self, identity: Option<MerchantIdentity>) -> ClientConfig {
        config(&self.base, Some(&self.server_ca), identity)
    }

    /// A recorded client presenting a merchant certificate issued by `issuer`.
    fn client_certified_by(&self, issuer: &Ca) -> (Client, Arc<Recorder>) {
        let (cert, key) = merchant_certificate(issuer);
        recorded(self.config(Some(pem_identity(&cert, &key))))
    }
}

async fn refund_host() -> RefundHost {
    let server_ca = ca("server CA");
    let merchant_ca = ca("merchant CA");
    let base = start(Some((&server_ca, &merchant_ca)), wechat(refund_answer)).await;
    RefundHost {
        server_ca,
        merchant_ca,
        base,
    }
}

/// A merchant's client certificate (CN = mch_id, as WeChat Pay issues them) signed by `ca`.
fn merchant_certificate(ca: &Ca) -> (Certificate, KeyPair) {
    leaf(ca, MCH_ID, vec![], ExtendedKeyUsagePurpose::ClientAuth)
}

fn refund_request() -> RefundRequest {
    RefundRequest::new(
        OrderRef::OutTradeNo("20150806125346".into()),
        "R20150806125346",
        100,
        30,
    )
}

#[tokio::test]
async fn refund_succeeds_with_the_merchant_certificate() {
    // Arrange
    let host = refund_host().await;
    let (client, recorder) = host.client_certified_by(&host.merchant_ca);

    // Act
    let resp = client.refund(&refund_request()).await.unwrap();

    // Assert
    assert_eq!(resp.out_refund_no, "R20150806125346");
    assert_eq!(resp.refund_fee, 30);
    assert_eq!(resp.refund_id, "50000404922017112502468056157");
    let records = recorder.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.endpoint, "/secapi/pay/refund");
    assert_eq!(r.out_refund_no.as_deref(), Some("R20150806125346"));
    assert_eq!(r.out_trade_no.as_deref(), Some("20150806125346"));
    assert_eq!(r.return_code.as_deref(), Some("SUCCESS"));
    assert_eq!(r.http_status, Some(200));
    assert!(r.request_body.contains("<sign>"));
    assert!(!r.request_body.contains(KEY) && !r.response_body.contains(KEY));
    assert!(r.error.is_none());
}

#[tokio::test]
async fn refund_succeeds_with_a_pkcs12_identity_modern_and_legacy() {
    let host = refund_host().await;
    let (cert, key) = merchant_certificate(&host.merchant_ca);
    for legacy in [false, true] {
        let identity = p12_identity(&cert, &key, MCH_ID, legacy);
        let info = identity.certificate_info().unwrap();
        assert!(info.subject.contains(MCH_ID), "{}", info.subject);
        let client = Client::new(host.config(Some(identity))).unwrap();
        let resp = client.refund(&refund_request()).await.unwrap();
        assert_eq!(resp.refund_fee, 30, "legacy={legacy}");
    }
    let wrong_password = p12_identity(&cert, &key, "not-the-mch-id", false);
    let MerchantIdentity::Pkcs12 { der, .. } = wrong_password else {
        unreachable!()
    };
    let bad = MerchantIdentity::Pkcs12 {
        der,
        password: MCH_ID.to_owned().into(),
    };
    assert!(matches!(
        Client::new(host.config(Some(bad))),
        Err(Error::Identity { .. })
    ));
}

#[tokio::test]
async fn refund_fails_without_or_with_a_foreign_certificate() {
    let host = refund_host().await;

    // No identity configured: refused before anything is sent.
    let client = Client::new(host.config(None)).unwrap();
    assert!(matches!(
        client.refund(&refund_request()).await,
        Err(Error::NoIdentity)
    ));
    assert!(matches!(
        client.check_refund_channel().await,
        Err(Error::NoIdentity)
    ));

    // The server itself refuses a connection without a client certificate.
    let bare = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(
            reqwest::Certificate::from_pem(host.server_ca.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    assert!(bare
        .post(format!("{}/secapi/pay/refund", host.base))
        .body("<xml/>")
        .send()
        .await
        .is_err());

    // A certificate from another CA is refused in the handshake.
    let (client, recorder) = host.client_certified_by(&ca("foreign CA"));
    let err = client.refund(&refund_request()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(err.retry_safe());
    let records = recorder.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].error.is_some() && records[0].http_status.is_none());
}

#[tokio::test]
async fn refund_channel_check_proves_the_handshake_without_a_refund() {
    let host = refund_host().await;
    let (cert, key) = merchant_certificate(&host.merchant_ca);
    let identity = pem_identity(&cert, &key);
    let info = identity.certificate_info().unwrap();
    assert!(info.subject.contains(MCH_ID));
    let now = time::OffsetDateTime::now_utc();
    assert!(info.not_after > now && !info.expires_within(30, now) && info.days_left(now) > 30);
    let client = Client::new(host.config(Some(identity))).unwrap();
    let status = client.check_refund_channel().await.unwrap();
    assert_eq!(status.http_status, 200);
    assert_eq!(status.return_code.as_deref(), Some("FAIL"));
    assert!(status.return_msg.unwrap().contains("out_refund_no"));
}

fn order_answer(path: &str, req: &Params) -> Params {
    match path {
        "/pay/unifiedorder" => ok(&[
            ("prepay_id", "wx201411101639507cbf6ffd8b0779950874"),
            ("trade_type", "JSAPI"),
        ]),
        "/pay/orderquery" => ok(&[
            ("trade_state", "SUCCESS"),
            (
                "out_trade_no",
                req.get("out_trade_no").map(String::as_str).unwrap_or(""),
            ),
            ("total_fee", "100"),
            ("time_end", "20240101120000"),
        ]),
        "/pay/closeorder" => {
            let mut p = ok(&[]);
            p.insert("result_code".into(), "FAIL".into());
            p.insert("err_code".into(), "ORDERPAID".into());
            p.insert("err_code_des".into(), "订单已支付".into());
            p
        }
        _ => Params::from([("return_code".to_owned(), "FAIL".to_owned())]),
    }
}

fn order() -> UnifiedOrderRequest {
    UnifiedOrderRequest::jsapi(
        "JSAPI-test",
        "20150806125346",
        100,
        "123.12.12.123",
        "https://example.com/wxpay/notify",
        "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
    )
}

#[tokio::test]
async fn endpoints_evaluate_and_verify_responses_for_both_sign_types() {
    let base = start(None, wechat(order_answer)).await;
    for t in [SignType::Md5, SignType::HmacSha256] {
        let mut c = config(&base, None, None);
        c.sign_type = t;
        let client = Client::new(c).unwrap();
        let resp = client.unified_order(&order()).await.unwrap();
        assert_eq!(resp.prepay_id, "wx201411101639507cbf6ffd8b0779950874");
        let q = client
            .order_query(OrderQuery::ByOutTradeNo("20150806125346".into()))
            .await
            .unwrap();
        assert!(q.is_paid());
        assert_eq!(q.total_fee, Some(100));
        let err = client.close_order("20150806125346").await.unwrap_err();
        assert_eq!(err.err_code(), Some("ORDERPAID"));
        assert!(!err.retry_safe());
        let pay = client.jsapi_pay_params(&resp.prepay_id);
        assert_eq!(pay.sign_type, t);
        assert!(pay.verify(APPID, &ApiKey::new(KEY)).is_ok());
    }
}

#[tokio::test]
async fn bad_signatures_and_foreign_merchants_are_refused() {
    let handler: Handler = Arc::new(|_: &str, _: &[u8]| {
        let mut p = ok(&[("prepay_id", "wx1"), ("appid", APPID), ("mch_id", MCH_ID)]);
        p.insert("sign".into(), "0".repeat(32));
        (200, xml::write(&p).into_bytes())
    });
    let base = start(None, handler).await;
    let client = Client::new(config(&base, None, None)).unwrap();
    assert!(matches!(
        client.unified_order(&order()).await,
        Err(Error::BadSignature)
    ));

    let handler: Handler = Arc::new(|_: &str, _: &[u8]| {
        let mut p = ok(&[
            ("prepay_id", "wx1"),
            ("appid", "wx0000000000000000"),
            ("mch_id", MCH_ID),
        ]);
        let s = wxpay::sign(&p, &ApiKey::new(KEY), SignType::Md5);
        p.insert("sign".into(), s);
        (200, xml::write(&p).into_bytes())
    });
    let base = start(None, handler).await;
    let client = Client::new(config(&base, None, None)).unwrap();
    assert!(matches!(
        client.unified_order(&order()).await,
        Err(Error::AppIdMismatch { .. })
    ));
}

#[tokio::test]
async fn failover_to_the_backup_host_on_connect_error_and_5xx() {
    let backup = start(None, wechat(order_answer)).await;
    // A port that was just free: connection refused.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut c = config(&closed, None, None);
    c.backup_base_url = Some(backup.clone());
    let (client, recorder) = recorded(c);
    assert!(client.unified_order(&order()).await.is_ok());
    {
        let records = recorder.0.lock().unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].attempt, 1);
        assert!(records[0].error.is_some());
        assert_eq!(records[1].attempt, 2);
        assert!(records[1].error.is_none());
    }

    let failing: Handler =
        Arc::new(|_: &str, _: &[u8]| (502, b"<html>Bad Gateway</html>".to_vec()));
    let primary = start(None, failing).await;
    let mut c = config(&primary, None, None);
    c.backup_base_url = Some(backup);
    assert!(Client::new(c)
        .unwrap()
        .unified_order(&order())
        .await
        .is_ok());

    // Without a backup, the 5xx surfaces as a retry-safe HttpStatus.
    let client = Client::new(config(&primary, None, None)).unwrap();
    let err = client.unified_order(&order()).await.unwrap_err();
    assert!(matches!(err, Error::HttpStatus { status: 502, .. }) && err.retry_safe());
}

#[tokio::test]
async fn html_bodies_and_timeouts_are_unknown_outcomes() {
    let html: Handler =
        Arc::new(|_: &str, _: &[u8]| (200, b"<html><body>gateway</body></html>".to_vec()));
    let base = start(None, html).await;
    let err = Client::new(config(&base, None, None))
        .unwrap()
        .unified_order(&order())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotXml { .. }) && err.is_unknown_outcome());

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut c = config(&format!("http://127.0.0.1:{port}"), None, None);
    c.timeout = Duration::from_millis(300);
    let err = Client::new(c)
        .unwrap()
        .unified_order(&order())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.retry_safe());
}

#[tokio::test]
async fn download_bill_parses_text_and_reports_the_failure_envelope() {
    let bill: Handler = Arc::new(|_: &str, body: &[u8]| {
        let req = xml::parse(body).unwrap();
        if req["bill_date"] == "20240101" {
            (200, "交易时间,商户订单号,订单金额,手续费\n`2024-01-01 12:00:00,`A1,`3.05,`0.01830\n总交易单数,订单总金额,手续费总金额\n`1,`3.05,`0.01830\n".as_bytes().to_vec())
        } else {
            (200, "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[No Bill Exist]]></return_msg><error_code><![CDATA[20002]]></error_code></xml>".as_bytes().to_vec())
        }
    });
    let base = start(None, bill).await;
    let client = Client::new(config(&base, None, None)).unwrap();
    let date = wxpay::wxtime::parse_date("20240101").unwrap();
    let bill = client
        .download_bill(date, wxpay::BillType::All)
        .await
        .unwrap();
    let rec = &bill.records().unwrap()[0];
    assert_eq!(rec.total_fee, Some(305));
    assert_eq!(rec.poundage_millifen, Some(1830));
    let err = client
        .download_bill(
            wxpay::wxtime::parse_date("20240102").unwrap(),
            wxpay::BillType::All,
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::BillFail { return_msg, .. } if return_msg == "No Bill Exist"));
    assert_eq!(err.err_code(), Some("20002"));
}

#[tokio::test]
async fn jscode2session_keeps_secrets_out_of_the_record() {
    let login: Handler = Arc::new(|target: &str, _: &[u8]| {
        if target.contains("js_code=used") {
            (
                200,
                br#"{"errcode":40029,"errmsg":"invalid code"}"#.to_vec(),
            )
        } else if target.starts_with("/sns/jscode2session?") && target.contains("secret=s3cr3t") {
            (
                200,
                br#"{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o","session_key":"SESSIONKEY=="}"#
                    .to_vec(),
            )
        } else {
            (
                200,
                br#"{"errcode":40013,"errmsg":"invalid appid"}"#.to_vec(),
            )
        }
    });
    let base = start(None, login).await;
    let mut c = config(&base, None, None);
    c.login_base_url = base.clone();
    c.app_secret = Some(wxpay::AppSecret::new("s3cr3t"));
    let (client, recorder) = recorded(c);
    let session = client.jscode2session("code123").await.unwrap();
    assert_eq!(session.openid, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o");
    assert_eq!(session.session_key.expose(), "SESSIONKEY==");
    assert!(!format!("{session:?}").contains("SESSIONKEY"));
    let err = client.jscode2session("used").await.unwrap_err();
    assert!(matches!(err, Error::Login { errcode: 40029, .. }) && !err.retry_safe());
    let records = recorder.0.lock().unwrap();
    for r in records.iter() {
        let all = format!("{r:?}");
        assert!(
            !all.contains("s3cr3t") && !all.contains("SESSIONKEY") && !all.contains("code123"),
            "{all}"
        );
    }
}

#[test]
fn configuration_is_validated() {
    let mut c = ClientConfig::new(APPID, MCH_ID, ApiKey::new("short"));
    assert!(matches!(Client::new(c.clone()), Err(Error::Config { .. })));
    c.api_key = ApiKey::new(KEY);
    c.base_url = "ftp://example.com".into();
    assert!(matches!(Client::new(c.clone()), Err(Error::Config { .. })));
    c.base_url = "https://api.mch.weixin.qq.com/sandboxnew/".into();
    let client = Client::new(c).unwrap();
    assert!(!format!("{client:?}").contains(KEY));
}
