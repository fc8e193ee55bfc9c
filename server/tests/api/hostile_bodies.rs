//! Hostile stored input, end to end: the worst shapes we can think of arrive the way they
//! really would (POSTed to both callback URLs; API call bodies through the call recorder;
//! audit details through `audit::record`), and then a signed-in admin opens every page
//! that shows them. Each page must answer 200 with a size bounded by a small multiple of
//! what was stored plus a constant (the display caps of `paydesk_core::bodies` and the
//! signature debugger's caps in `wxpay::explain`).
//!
//! The shapes whose layout used to be quadratic (deep nesting) are kept small enough that
//! without the caps the pages come to tens of megabytes, not gigabytes: the size
//! assertion fails, the machine survives.

use std::time::Duration;

use paydesk_core::audit::{self, Actor, Entry};
use wxpay::{CallObserver, CallRecord, Params, SignType};

use crate::callbacks::{create_order, fields};
use crate::helpers::{spawn_apps, TestApp, ADMIN_PASSWORD};

const KIB: usize = 1024;

/// What a detail page may add on top of `PER_BYTE` × the stored text it shows: the page
/// itself and the laid-out first 64 KiB of each body shown (in the HTML and again in the
/// data the page hydrates from).
const DETAIL_ALLOWANCE: usize = 4 * 1024 * KIB;

/// What a page that shows no body (a list, the failures view, the timeline) may weigh on
/// top of the short fields it shows.
const LIST_ALLOWANCE: usize = 512 * KIB;

/// Bytes of page per byte of stored text shown: the whole body goes to the browser for the
/// copy buttons, unmasked and masked, in the data the page hydrates from, where JSON and
/// then JavaScript escaping make one `<` seven bytes, and that data is written twice (the
/// detail pages' resource is serialized twice by the server-side render today). A body of
/// nothing but `<` comes to 28 bytes a byte; the laid-out part is in the allowance.
const PER_BYTE: usize = 32;

/// `n` levels of `<a>` and their closes.
fn nested_xml(bytes: usize) -> String {
    let n = bytes / 7;
    format!("<xml>{}{}</xml>", "<a>".repeat(n), "</a>".repeat(n))
}

/// JSON nested as deep as serde_json accepts, with many tiny elements at the bottom:
/// each element used to be indented by 240 spaces.
fn deep_json(bytes: usize) -> String {
    format!(
        "{}{}1{}",
        "[".repeat(120),
        "1,".repeat(bytes / 2),
        "]".repeat(120)
    )
}

/// A flat message the strict parser accepts, with a wrong signature, an enormous claimed
/// order number and thousands of fields whose values are a single space (each one used to
/// become a whitespace warning in the signature debugger, six times its size).
fn many_fields(app: &TestApp, fields_n: usize, claimed: usize) -> String {
    let mut p: Params = fields(app, "HB-UNUSED", 1);
    p.insert("out_trade_no".into(), "<".repeat(claimed));
    p.insert("sign".into(), "0".repeat(32));
    for i in 0..fields_n {
        p.insert(format!("f{i:x}"), " ".into());
    }
    wxpay::xml::write(&p)
}

/// Every byte value, invalid UTF-8, NUL and control characters included.
fn binary_junk(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i * 7 % 256) as u8).collect()
}

async fn post(app: &TestApp, path: &str, body: Vec<u8>) {
    let res = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "text/xml")
        .timeout(Duration::from_secs(60))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path} {}", app.db.label);
}

/// GETs `path` as `who` and checks it answers 200 within `limit` bytes.
async fn open(app: &TestApp, who: &reqwest::Client, path: &str, limit: usize) -> String {
    let res = who.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path} {}", app.db.label);
    let page = res.text().await.unwrap();
    assert!(
        page.len() <= limit,
        "{path} on {}: {} bytes, more than the {limit} allowed",
        app.db.label,
        page.len()
    );
    page
}

/// Opens a detail page that shows `stored` bytes of stored text.
async fn open_detail(app: &TestApp, who: &reqwest::Client, path: &str, stored: usize) {
    open(app, who, path, PER_BYTE * stored + DETAIL_ALLOWANCE).await;
}

fn call_record(request_body: String, response_body: String) -> CallRecord {
    CallRecord {
        endpoint: "/pay/orderquery".into(),
        url: "https://api.mch.weixin.qq.com/pay/orderquery".into(),
        attempt: 1,
        out_trade_no: Some("HB-CALL".into()),
        out_refund_no: None,
        transaction_id: None,
        return_code: Some("SUCCESS".into()),
        result_code: Some("SUCCESS".into()),
        err_code: None,
        http_status: Some(200),
        latency: Duration::from_millis(12),
        request_body,
        response_body,
        error: None,
    }
}

#[tokio::test]
async fn every_page_showing_stored_input_stays_small_whatever_its_shape() {
    for app in spawn_apps().await {
        let admin = app.signed_in("admin", ADMIN_PASSWORD).await;
        create_order(&app, "HB-ORDER", 100, SignType::Md5).await;

        // Arrange: the callbacks, as anyone on the internet can send them
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("/wxpay/notify/payment", nested_xml(16 * KIB).into_bytes()),
            ("/wxpay/notify/refund", nested_xml(16 * KIB).into_bytes()),
            ("/wxpay/notify/payment", deep_json(64 * KIB).into_bytes()),
            ("/wxpay/notify/payment", "x".repeat(900 * KIB).into_bytes()),
            (
                "/wxpay/notify/payment",
                "<a/>".repeat(200 * KIB).into_bytes(),
            ),
            (
                "/wxpay/notify/refund",
                "<sign>".repeat(100 * KIB).into_bytes(),
            ),
            ("/wxpay/notify/payment", binary_junk(256 * KIB)),
            (
                "/wxpay/notify/payment",
                many_fields(&app, 24_000, 200 * KIB).into_bytes(),
            ),
            (
                "/wxpay/notify/payment",
                many_fields(&app, 24_000, 200 * KIB).into_bytes(),
            ),
            // One naming our order, so it is on the order's timeline too.
            (
                "/wxpay/notify/payment",
                format!(
                    "<xml><out_trade_no>HB-ORDER</out_trade_no><sign>{}</sign>{}</xml>",
                    "0".repeat(32),
                    "<a>".repeat(4 * KIB)
                )
                .into_bytes(),
            ),
        ];
        for (path, body) in bodies {
            post(&app, path, body).await;
        }
        // Outbound call bodies, as the WeChat Pay client reports them
        app.state
            .api_calls
            .on_call(&call_record(nested_xml(16 * KIB), deep_json(64 * KIB)));
        app.state.api_calls.flush().await;
        // Audit details, as the functions that write them do
        let details = [
            "<".repeat(200 * KIB),
            String::from_utf8_lossy(&binary_junk(200 * KIB)).into_owned(),
            "\u{202e}".repeat(60 * KIB),
        ];
        for detail in &details {
            audit::record(
                app.db.db.writer(),
                Entry {
                    actor: &Actor::system(),
                    action: audit::action::LOGIN_FAILURE,
                    target: Some("hostile"),
                    detail: Some(detail),
                },
            )
            .await
            .unwrap();
        }

        // Act and assert: each notification's detail page
        let stored = paydesk_core::testing::recent_notifications(&app.db.db, None, 100)
            .await
            .unwrap();
        assert!(
            stored.len() >= 10,
            "{}: {} rows",
            app.db.label,
            stored.len()
        );
        for n in &stored {
            let size = n.raw_body.len() + n.out_trade_no.as_ref().map_or(0, String::len);
            open_detail(&app, &admin, &format!("/notifications/{}", n.id), size).await;
        }
        // The lists and the failures view show no bodies, only the short fields
        let claimed: usize = stored
            .iter()
            .map(|n| n.out_trade_no.as_ref().map_or(0, String::len))
            .sum();
        open(&app, &admin, "/notifications", claimed + LIST_ALLOWANCE).await;
        for window in ["24h", "30d"] {
            open(
                &app,
                &admin,
                &format!("/failures?window={window}"),
                claimed + LIST_ALLOWANCE,
            )
            .await;
        }
        let page = open(&app, &admin, "/orders/HB-ORDER", LIST_ALLOWANCE).await;
        assert!(page.contains("HB-ORDER"), "{}", app.db.label);
        // The API call's detail page
        let call = &paydesk_core::api_calls::recent(&app.db.db, Some("HB-CALL"), 1)
            .await
            .unwrap()[0];
        let size = call.request_body.as_ref().map_or(0, String::len)
            + call.response_body.as_ref().map_or(0, String::len);
        open_detail(&app, &admin, &format!("/api-calls/{}", call.id), size).await;
        open(&app, &admin, "/api-calls", LIST_ALLOWANCE).await;
        // The audit log: the details are shown, cut to a line each
        let shown: usize = details.iter().map(String::len).sum();
        open(&app, &admin, "/audit", shown / 4 + LIST_ALLOWANCE).await;
    }
}
