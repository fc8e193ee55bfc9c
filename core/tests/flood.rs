//! Repository tests for the callback flood (issue 15), on SQLite and (when configured)
//! PostgreSQL: refused bodies stored cut with their full length, the per-sender allowance
//! beyond which refusals are counted, never a valid signature limited, callbacks naming
//! our orders stored beyond it (within their own bound), and two instances sharing one
//! allowance and one count.

use std::sync::Arc;
use std::time::Duration;

use paydesk_core::db::PoolSizes;
use paydesk_core::events::EventBus;
use paydesk_core::notify::{self, FloodPolicy, Intake, Notification, Verdict, PER_ORDER_PER_DAY};
use paydesk_core::testing::{self, databases, merchant};
use paydesk_core::{now_ms, Db};
use wxpay::SignType;

const APPID: &str = "wx2421b1c4370ec43b";
const MCH_ID: &str = "10000100";

fn intake(db: &Db, refused_per_minute: u32) -> Intake {
    Intake::with_policy(
        db.clone(),
        Arc::new(merchant()),
        EventBus::new(),
        FloodPolicy {
            refused_per_minute,
            ..FloodPolicy::default()
        },
    )
}

async fn new_order(db: &Db, no: &str, fee: i64) {
    testing::create_order(db, no, fee).await;
}

/// A paid notification for `no`, with `attach` of `attach_len` bytes, signed with our key
/// (`signed`) or with another one.
fn notification(no: &str, fee: i64, attach_len: usize, signed: bool) -> Vec<u8> {
    let mut p = testing::notification_params(no, fee);
    p.insert("sign_type".into(), "MD5".into());
    if attach_len > 0 {
        p.insert("attach".into(), "a".repeat(attach_len));
    }
    let key = if signed {
        testing::MERCHANT_KEY
    } else {
        "00000000000000000000000000000000"
    };
    testing::signed(p, key, SignType::Md5)
}

/// A refund envelope (docs/wechatpay-v2.md §8.9) for `mch_id` whose `req_info` is not ours to decrypt.
fn refund_envelope(mch_id: &str) -> Vec<u8> {
    format!(
        "<xml><return_code>SUCCESS</return_code><appid>{APPID}</appid>\
         <mch_id>{mch_id}</mch_id><nonce_str>abc</nonce_str>\
         <req_info>bm90IG91cnMgdG8gZGVjcnlwdCBhdCBhbGwgLi4uLi4uLi4=</req_info></xml>"
    )
    .into_bytes()
}

const JUNK: &[u8] = b"GET / HTTP/1.1 this is not xml";

/// Waits for a fresh minute when this one is nearly over, so that one test's callbacks
/// fall in one minute (the allowance is per minute).
async fn fresh_minute() {
    let into = now_ms().rem_euclid(60_000);
    if into > 45_000 {
        tokio::time::sleep(Duration::from_millis((60_000 - into + 50) as u64)).await;
    }
}

async fn rows_from(db: &Db, address: &str) -> Vec<Notification> {
    paydesk_core::testing::recent_notifications(db, None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| {
            n.peer
                .as_deref()
                .is_some_and(|p| p.split(':').next() == Some(address))
        })
        .collect()
}

/// The counted (not stored) refusals of `sender` for `cause` in the last hour.
async fn counted(db: &Db, sender: &str, cause: Verdict) -> i64 {
    notify::counted_since(db, now_ms() - 3_600_000, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.sender == sender && c.cause == cause)
        .map(|c| c.count)
        .sum()
}

#[tokio::test]
async fn a_refused_body_is_stored_cut_to_its_start_with_its_full_length_and_a_verified_one_whole() {
    for t in databases().await {
        // Arrange
        new_order(&t.db, "CUT-OK", 100).await;
        let m = merchant();
        let junk = [b"<xml><a>".as_slice(), &[b'x'; 20_000], &[0xff, 0x00]].concat();
        let forged = notification("CUT-OK", 100, 9_000, false);
        let verified = notification("CUT-OK", 100, 9_000, true);

        // Act
        let junk_out = notify::receive_payment_notification(&t.db, &m, None, &junk).await;
        let forged_out = notify::receive_payment_notification(&t.db, &m, None, &forged).await;
        let verified_out = notify::receive_payment_notification(&t.db, &m, None, &verified).await;

        // Assert
        let rows = paydesk_core::testing::recent_notifications(&t.db, None, 10)
            .await
            .unwrap();
        let row = |id: Option<i64>| rows.iter().find(|r| Some(r.id) == id).unwrap();
        let junk_row = row(junk_out.notification_id);
        assert_eq!(junk_row.verdict, Verdict::Malformed, "{}", t.label);
        assert_eq!(junk_row.raw_body.len(), 8192, "{}", t.label);
        assert_eq!(junk_row.raw_length, Some(junk.len() as i64), "{}", t.label);
        let forged_row = row(forged_out.notification_id);
        assert_eq!(forged_row.verdict, Verdict::BadSignature, "{}", t.label);
        assert!(forged_row.raw_body.len() <= 8192, "{}", t.label);
        assert_eq!(forged_row.raw_length, Some(forged.len() as i64));
        let verified_row = row(verified_out.notification_id);
        assert_eq!(verified_row.verdict, Verdict::Applied, "{}", t.label);
        assert_eq!(verified_row.raw_body.as_bytes(), verified.as_slice());
        assert_eq!(verified_row.raw_length, None);
    }
}

#[tokio::test]
async fn beyond_the_allowance_refused_callbacks_are_counted_per_sender_not_stored() {
    for t in databases().await {
        // Arrange
        fresh_minute().await;
        let intake = intake(&t.db, 3);

        // Act: ten junk callbacks from one address (each from another port), two from another
        for k in 0..10 {
            let out = intake
                .payment(Some(format!("198.51.100.1:{}", 4000 + k)), JUNK)
                .await;
            assert_eq!(out.verdict, Verdict::Malformed);
            assert!(out.reply_body.contains("FAIL"));
        }
        for k in 0..2 {
            intake
                .payment(Some(format!("198.51.100.2:{}", 4000 + k)), JUNK)
                .await;
        }
        intake.flush_counts().await.unwrap();

        // Assert: three stored for the first, the rest counted; the second within its own
        assert_eq!(
            rows_from(&t.db, "198.51.100.1").await.len(),
            3,
            "{}",
            t.label
        );
        assert_eq!(
            rows_from(&t.db, "198.51.100.2").await.len(),
            2,
            "{}",
            t.label
        );
        assert_eq!(
            counted(&t.db, "198.51.100.1", Verdict::Malformed).await,
            7,
            "{}",
            t.label
        );
        assert_eq!(counted(&t.db, "198.51.100.2", Verdict::Malformed).await, 0);
        assert!(!intake.has_counts());
    }
}

#[tokio::test]
async fn many_senders_together_store_at_most_the_all_senders_cap_a_minute() {
    for t in databases().await {
        // Arrange: 2 a minute per sender, so all senders together store 2 × the factor
        fresh_minute().await;
        let intake = intake(&t.db, 2);
        let cap = 2 * paydesk_core::notify::ALL_SENDERS_FACTOR;
        let senders = cap + 4;

        // Act: every sender within its own allowance (an attacker rotating addresses)
        for k in 0..senders {
            for _ in 0..2 {
                intake
                    .payment(Some(format!("198.51.100.{}:4000", 100 + k)), JUNK)
                    .await;
            }
        }
        intake.flush_counts().await.unwrap();

        // Assert: the cap stored, the rest counted, nothing lost
        let stored: i64 =
            sqlx::query_scalar("select count(*) from notifications where peer like '198.51.100.%'")
                .fetch_one(t.db.reader())
                .await
                .unwrap();
        let counted: i64 = sqlx::query_scalar(
            "select cast(coalesce(sum(count), 0) as bigint) from refused_callback_counts",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(stored, cap, "{}", t.label);
        assert_eq!(stored + counted, 2 * senders, "{}", t.label);
    }
}

#[tokio::test]
async fn a_valid_signature_is_never_limited_even_from_a_flooding_sender() {
    for t in databases().await {
        // Arrange: the sender has used its allowance and more
        fresh_minute().await;
        let intake = intake(&t.db, 2);
        let sender = || Some("198.51.100.7:9999".to_owned());
        for _ in 0..5 {
            intake.payment(sender(), JUNK).await;
        }
        for k in 0..4 {
            new_order(&t.db, &format!("VALID-{k}"), 300).await;
        }

        // Act
        let mut outcomes = Vec::new();
        for k in 0..4 {
            let body = notification(&format!("VALID-{k}"), 300, 0, true);
            outcomes.push(intake.payment(sender(), &body).await);
        }

        // Assert: every one applied and stored
        for out in &outcomes {
            assert_eq!(out.verdict, Verdict::Applied, "{}", t.label);
            assert!(out.notification_id.is_some(), "{}", t.label);
        }
        let rows = rows_from(&t.db, "198.51.100.7").await;
        let applied = rows
            .iter()
            .filter(|r| r.verdict == Verdict::Applied)
            .count();
        assert_eq!(applied, 4, "{}", t.label);
    }
}

#[tokio::test]
async fn a_notification_naming_our_order_is_stored_beyond_the_allowance_within_its_own_bound() {
    for t in databases().await {
        // Arrange: a sender over its allowance (one a minute)
        fresh_minute().await;
        new_order(&t.db, "OURS-1", 500).await;
        let intake = intake(&t.db, 1);
        let sender = || Some("198.51.100.9:1".to_owned());
        for _ in 0..3 {
            intake.payment(sender(), JUNK).await;
        }

        // Act: what a wrong merchant key makes of real callbacks, and forgeries
        let ours = intake
            .payment(sender(), &notification("OURS-1", 500, 0, false))
            .await;
        let not_ours = intake
            .payment(sender(), &notification("NOT-OURS-1", 500, 0, false))
            .await;
        let our_refund = intake.refund(sender(), &refund_envelope(MCH_ID)).await;
        let other_refund = intake.refund(sender(), &refund_envelope("10000999")).await;
        let mut more = Vec::new();
        for _ in 0..PER_ORDER_PER_DAY + 3 {
            let out = intake
                .payment(sender(), &notification("OURS-1", 500, 0, false))
                .await;
            more.push(out.notification_id.is_some());
        }
        intake.flush_counts().await.unwrap();

        // Assert: ours stored, the rest counted; one order's rows bounded a day
        assert_eq!(ours.verdict, Verdict::BadSignature, "{}", t.label);
        assert!(ours.notification_id.is_some(), "{}", t.label);
        assert!(not_ours.notification_id.is_none(), "{}", t.label);
        assert_eq!(our_refund.verdict, Verdict::DecryptFailed, "{}", t.label);
        assert!(our_refund.notification_id.is_some(), "{}", t.label);
        assert_eq!(other_refund.verdict, Verdict::WrongMchId, "{}", t.label);
        assert!(other_refund.notification_id.is_none(), "{}", t.label);
        let stored_for_order =
            paydesk_core::testing::recent_notifications(&t.db, Some("OURS-1"), 1000)
                .await
                .unwrap()
                .len() as i64;
        assert_eq!(stored_for_order, PER_ORDER_PER_DAY, "{}", t.label);
        assert_eq!(more.iter().filter(|s| !**s).count(), 4, "{}", t.label);
        assert_eq!(
            counted(&t.db, "198.51.100.9", Verdict::BadSignature).await,
            5,
            "{}",
            t.label
        );
    }
}

#[tokio::test]
async fn two_instances_on_one_database_share_one_allowance_and_add_to_the_same_count() {
    for t in databases().await {
        // Arrange: two instances, each with its own connection to the same database
        fresh_minute().await;
        let other_db = Db::connect_beside_server(&t.url, PoolSizes::default())
            .await
            .unwrap();
        let first = intake(&t.db, 3);
        let second = intake(&other_db, 3);
        let sender = || Some("198.51.100.20:5".to_owned());

        // Act: the first uses the allowance, then both go on
        for _ in 0..3 {
            first.payment(sender(), JUNK).await;
        }
        for _ in 0..4 {
            second.payment(sender(), JUNK).await;
            first.payment(sender(), JUNK).await;
        }
        first.flush_counts().await.unwrap();
        second.flush_counts().await.unwrap();

        // Assert: three stored in all, the eight others counted in one row
        assert_eq!(
            rows_from(&t.db, "198.51.100.20").await.len(),
            3,
            "{}",
            t.label
        );
        assert_eq!(
            counted(&t.db, "198.51.100.20", Verdict::Malformed).await,
            8,
            "{}",
            t.label
        );
        let rows: i64 = sqlx::query_scalar(
            "select count(*) from refused_callback_counts where sender = '198.51.100.20'",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(rows, 1, "{}", t.label);
        other_db.close().await;
    }
}
