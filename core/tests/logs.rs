//! Repository tests for the dashboard's logs, on SQLite and (when configured) PostgreSQL:
//! the notification log's filters and keyset pages, one notification with its matched
//! order, verification failures grouped by cause (with the causes pinned to what the real
//! receivers write) and explained without the key, and the API call log.

use std::time::Duration;

use paydesk_core::api_calls::{self, ApiCallRecorder, CallFilter, Outcome};
use paydesk_core::notify::log::{self, Cause, NotificationFilter};
use paydesk_core::notify::{self, Verdict};
use paydesk_core::orders::{self, NewOrder};
use paydesk_core::sql::Cursor;
use paydesk_core::testing::{self, databases, merchant};
use paydesk_core::{now_ms, Db};
use wxpay::{ApiKey, CallObserver, CallRecord, SignType};

const KEY: &str = testing::MERCHANT_KEY;

async fn new_order(db: &Db, no: &str, fee: i64, sign_type: SignType) -> orders::Order {
    let order = NewOrder {
        sign_type,
        ..testing::new_order(no, fee)
    };
    orders::create_order(db, order).await.unwrap()
}

/// A paid notification for `no`, signed with `sign_type` (`None`: unsigned).
fn notification(no: &str, fee: i64, sign_type: Option<SignType>) -> Vec<u8> {
    let mut p = testing::notification_params(no, fee);
    match sign_type {
        Some(t) => {
            p.insert("sign_type".into(), t.to_string());
            testing::signed(p, KEY, t)
        }
        None => wxpay::xml::write(&p).into_bytes(),
    }
}

/// One notification of each interesting cause, through the real receivers. Returns the
/// order numbers (applied, tampered).
async fn received(db: &Db) {
    let m = merchant();
    let peer = || Some("203.0.113.9".to_owned());
    new_order(db, "LOG-OK", 100, SignType::Md5).await;
    new_order(db, "LOG-HMAC", 100, SignType::HmacSha256).await;
    let ok = notification("LOG-OK", 100, Some(SignType::Md5));
    let out = notify::receive_payment_notification(db, &m, peer(), &ok).await;
    assert_eq!(out.verdict, Verdict::Applied);
    let out = notify::receive_payment_notification(db, &m, peer(), &ok).await;
    assert_eq!(out.verdict, Verdict::Duplicate);
    // One character of the signature changed.
    let tampered = String::from_utf8(ok.clone())
        .unwrap()
        .replace("<total_fee>100</total_fee>", "<total_fee>1</total_fee>");
    let out = notify::receive_payment_notification(db, &m, peer(), tampered.as_bytes()).await;
    assert_eq!(out.verdict, Verdict::BadSignature);
    // MD5 for an order made with HMAC-SHA256: a downgrade.
    let downgrade = notification("LOG-HMAC", 100, Some(SignType::Md5));
    let out = notify::receive_payment_notification(db, &m, peer(), &downgrade).await;
    assert_eq!(out.verdict, Verdict::BadSignature);
    let unsigned = notification("LOG-OK", 100, None);
    let out = notify::receive_payment_notification(db, &m, peer(), &unsigned).await;
    assert_eq!(out.verdict, Verdict::BadSignature);
    let out = notify::receive_oversize(db, "payment", peer(), b"<xml>").await;
    assert_eq!(out.verdict, Verdict::Malformed);
    let out = notify::receive_payment_notification(db, &m, peer(), b"hello").await;
    assert_eq!(out.verdict, Verdict::Malformed);
    let unknown = notification("LOG-NOPE", 100, Some(SignType::Md5));
    let out = notify::receive_payment_notification(db, &m, peer(), &unknown).await;
    assert_eq!(out.verdict, Verdict::UnknownOrder);
    let out = notify::receive_refund_notification(db, &m, peer(), b"<xml><a>1</a></xml>").await;
    assert_eq!(out.verdict, Verdict::Malformed);
}

#[tokio::test]
async fn failures_are_grouped_by_cause_and_explained_without_the_key() {
    for t in databases().await {
        // Arrange
        let since = now_ms() - 1000;
        received(&t.db).await;
        let key = ApiKey::new(KEY);

        // Act
        let groups = log::failure_groups(&t.db, since).await.unwrap();

        // Assert: every failure in exactly one group, sub-causes split out
        let count = |cause: Cause| {
            groups
                .iter()
                .find(|g| g.cause == cause)
                .map_or(0, |g| g.count)
        };
        assert_eq!(count(Cause::BadSignature), 1, "{} {groups:?}", t.label);
        assert_eq!(count(Cause::SignTypeMismatch), 1, "{}", t.label);
        assert_eq!(count(Cause::MissingSign), 1, "{}", t.label);
        assert_eq!(count(Cause::Oversize), 1, "{}", t.label);
        assert_eq!(count(Cause::Malformed), 2, "{}", t.label);
        assert_eq!(count(Cause::UnknownOrder), 1, "{}", t.label);
        assert_eq!(groups.iter().map(|g| g.count).sum::<i64>(), 7);
        assert!(groups.windows(2).all(|w| w[0].last_seen >= w[1].last_seen));
        assert!(groups.iter().all(|g| g.first_seen <= g.last_seen));
        // Nothing before the window.
        let later = log::failure_groups(&t.db, now_ms() + 1000).await.unwrap();
        assert!(later.is_empty(), "{later:?}");

        let bad = log::failures(&t.db, Cause::BadSignature, since, &key, 10)
            .await
            .unwrap();
        assert_eq!(bad.len(), 1);
        let explained = bad[0].explanation.as_ref().expect("debugger output");
        assert!(!explained.is_valid());
        assert_eq!(bad[0].expected_sign_type, Some(SignType::Md5));
        let canonical = explained.canonical_string.as_deref().unwrap();
        assert!(canonical.contains("total_fee=1&"), "{canonical}");
        assert!(
            canonical.ends_with("&key=[API key, 32 chars]"),
            "{canonical}"
        );
        assert!(!format!("{explained:?}").contains(KEY));
        let downgrade = log::failures(&t.db, Cause::SignTypeMismatch, since, &key, 10)
            .await
            .unwrap();
        assert_eq!(downgrade[0].expected_sign_type, Some(SignType::HmacSha256));
        assert_eq!(
            downgrade[0].notification.out_trade_no.as_deref(),
            Some("LOG-HMAC")
        );
        // No debugger for causes it cannot help with.
        let unknown = log::failures(&t.db, Cause::UnknownOrder, since, &key, 10)
            .await
            .unwrap();
        assert!(unknown[0].explanation.is_none());
        let malformed = log::failures(&t.db, Cause::Malformed, since, &key, 1)
            .await
            .unwrap();
        assert_eq!(malformed.len(), 1, "limit");
        assert_eq!(malformed[0].notification.kind, "refund", "newest first");
    }
}

#[tokio::test]
async fn the_notification_log_filters_and_pages_newest_first() {
    for t in databases().await {
        // Arrange
        let start = now_ms();
        received(&t.db).await;
        let all = log::list(&t.db, &NotificationFilter::default(), None, 200)
            .await
            .unwrap();
        assert_eq!(all.entries.len(), 9, "{}", t.label);
        assert!(all.next.is_none());
        assert!(all
            .entries
            .windows(2)
            .all(|w| (w[0].received_at, w[0].id) > (w[1].received_at, w[1].id)));

        // Act / Assert: pages of 2 cover the log exactly once, in order
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = log::list(&t.db, &NotificationFilter::default(), after.as_ref(), 2)
                .await
                .unwrap();
            assert!(page.entries.len() <= 2);
            seen.extend(page.entries.iter().map(|e| e.id));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(
            seen,
            all.entries.iter().map(|e| e.id).collect::<Vec<_>>(),
            "{}",
            t.label
        );

        // Filters: kind, verdict, both, time
        let filter = |kind: Option<&str>, verdict: Option<Verdict>| NotificationFilter {
            kind: kind.map(str::to_owned),
            verdict,
            ..NotificationFilter::default()
        };
        let refunds = log::list(&t.db, &filter(Some("refund"), None), None, 50)
            .await
            .unwrap();
        assert_eq!(refunds.entries.len(), 1);
        assert_eq!(refunds.entries[0].kind, "refund");
        let bad = log::list(&t.db, &filter(None, Some(Verdict::BadSignature)), None, 50)
            .await
            .unwrap();
        assert_eq!(bad.entries.len(), 3);
        let both = log::list(
            &t.db,
            &filter(Some("payment"), Some(Verdict::Malformed)),
            None,
            50,
        )
        .await
        .unwrap();
        assert_eq!(both.entries.len(), 2, "oversize and not-XML");
        let none = log::list(
            &t.db,
            &NotificationFilter {
                from: Some(start - 60_000),
                to: Some(start - 1),
                ..NotificationFilter::default()
            },
            None,
            50,
        )
        .await
        .unwrap();
        assert!(none.entries.is_empty());
        let newest = all.entries[0].received_at;
        let from_newest = log::list(
            &t.db,
            &NotificationFilter {
                from: Some(newest),
                ..NotificationFilter::default()
            },
            None,
            50,
        )
        .await
        .unwrap();
        assert!(from_newest.entries.iter().all(|e| e.received_at >= newest));
        assert!(!from_newest.entries.is_empty());
        assert!(
            log::list(&t.db, &filter(Some("bogus"), None), None, 50)
                .await
                .is_err(),
            "an unknown kind is refused"
        );

        // One notification: the order it was matched to, its reply and body
        let applied = all
            .entries
            .iter()
            .find(|e| e.verdict == Verdict::Applied)
            .unwrap();
        let detail = log::get(&t.db, applied.id).await.unwrap().unwrap();
        assert_eq!(detail.matched_out_trade_no.as_deref(), Some("LOG-OK"));
        assert_eq!(detail.notification.reply, "SUCCESS");
        assert_eq!(detail.notification.peer.as_deref(), Some("203.0.113.9"));
        assert!(detail.notification.raw_body.contains("<out_trade_no>"));
        let unknown = all
            .entries
            .iter()
            .find(|e| e.verdict == Verdict::UnknownOrder)
            .unwrap();
        let detail = log::get(&t.db, unknown.id).await.unwrap().unwrap();
        assert_eq!(detail.matched_out_trade_no, None, "claimed, never matched");
        // Acknowledged (a resend cannot help), yet a failure for a person.
        assert_eq!(detail.notification.reply, "SUCCESS");
        assert!(log::get(&t.db, 999_999).await.unwrap().is_none());
    }
}

fn call(endpoint: &str, error: Option<&str>, return_code: Option<&str>) -> CallRecord {
    CallRecord {
        endpoint: endpoint.into(),
        url: format!("https://api.mch.weixin.qq.com{endpoint}"),
        attempt: 1,
        out_trade_no: Some("LOG-CALL".into()),
        out_refund_no: None,
        transaction_id: None,
        return_code: return_code.map(str::to_owned),
        result_code: return_code.map(str::to_owned),
        err_code: None,
        http_status: return_code.map(|_| 200),
        latency: Duration::from_millis(12),
        request_body: "<xml><sign>ABC</sign></xml>".into(),
        response_body: "<xml><return_code>SUCCESS</return_code></xml>".into(),
        error: error.map(str::to_owned),
    }
}

#[tokio::test]
async fn the_api_call_log_filters_by_endpoint_and_outcome_and_pages() {
    for t in databases().await {
        // Arrange
        let recorder = ApiCallRecorder::start(t.db.clone());
        recorder.on_call(&call("/pay/unifiedorder", None, Some("SUCCESS")));
        recorder.on_call(&call(
            "/pay/orderquery",
            Some("ORDERNOTEXIST"),
            Some("FAIL"),
        ));
        recorder.on_call(&call("/pay/orderquery", Some("timed out"), None));
        recorder.on_call(&call("/pay/orderquery", None, Some("SUCCESS")));
        recorder.flush().await;

        // Act / Assert
        let all = api_calls::list(&t.db, &CallFilter::default(), None, 50)
            .await
            .unwrap();
        assert_eq!(all.calls.len(), 4, "{}", t.label);
        assert!(all.calls.iter().all(|c| c.request_body.is_none()));
        let by = |endpoint: Option<&str>, outcome: Option<Outcome>| CallFilter {
            endpoint: endpoint.map(str::to_owned),
            outcome,
            ..CallFilter::default()
        };
        for (filter, n) in [
            (by(Some("/pay/orderquery"), None), 3),
            (by(None, Some(Outcome::Ok)), 2),
            (by(None, Some(Outcome::Business)), 1),
            (by(None, Some(Outcome::Transport)), 1),
            (by(Some("/pay/unifiedorder"), Some(Outcome::Transport)), 0),
        ] {
            let page = api_calls::list(&t.db, &filter, None, 50).await.unwrap();
            assert_eq!(page.calls.len(), n, "{filter:?} {}", t.label);
            for c in &page.calls {
                if let Some(o) = filter.outcome {
                    assert_eq!(Outcome::of(c), o);
                }
            }
        }
        let first = api_calls::list(&t.db, &CallFilter::default(), None, 3)
            .await
            .unwrap();
        let rest = api_calls::list(&t.db, &CallFilter::default(), first.next.as_ref(), 3)
            .await
            .unwrap();
        assert_eq!(first.calls.len() + rest.calls.len(), 4);
        assert!(rest.next.is_none());
        let ids: Vec<i64> = first
            .calls
            .iter()
            .chain(&rest.calls)
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, all.calls.iter().map(|c| c.id).collect::<Vec<_>>());

        let one = api_calls::get(&t.db, all.calls[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            one.request_body.as_deref(),
            Some("<xml><sign>ABC</sign></xml>")
        );
        assert_eq!(one.latency_ms, 12);
        assert!(api_calls::get(&t.db, 999_999).await.unwrap().is_none());
    }
}
