//! Reconciliation (对账) through the real simulator, on both databases: the simulator's bill
//! is computed from its own trades and refunds, and its fault plans plant each kind of
//! difference. Each is found exactly once; a re-run finds the same ones (a resolution and its
//! note survive it); 补单 applies a lost payment exactly once even when the late notification
//! arrives at the same moment; `paydesk reconcile --day` prints them and keeps its exit codes.

use std::collections::BTreeSet;
use std::time::Duration;

use paydesk_core::audit::Actor;
use paydesk_core::events::Event;
use paydesk_core::orders::OrderStatus;
use paydesk_core::reconcile::{self, Class, DayStatus, DifferenceState, Reconciler};
use paydesk_core::refunds::RefundPolicy;
use paydesk_core::testing;
use paydesk_sim::PayRequest;
use serde_json::json;

use crate::helpers::{
    merchant_against, paydesk_against, set_faults, spawn_apps_with, spawn_sibling, wait_until,
    TestApp,
};

fn pay(notify: bool) -> PayRequest {
    serde_json::from_value(json!({ "notify": notify })).unwrap()
}

/// Orders `no` at WeChat Pay (stored here too) and pays it there; with `notify`, waits
/// until the notification made it `PAID` here.
async fn paid(app: &TestApp, no: &str, fee: i64, notify: bool) {
    app.placed_at_wechat(testing::new_order(no, fee)).await;
    app.simulator().pay_order(no, &pay(notify)).unwrap();
    if notify {
        for _ in 0..200 {
            if app.stored_order(no).await.status == OrderStatus::Paid {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{}: {no} was not paid here", app.db.label);
    }
}

/// The notification WeChat Pay sends for the order `no` it paid, signed as it signs it.
fn late_notification(app: &TestApp, no: &str) -> Vec<u8> {
    let o = app.simulator().order(no).unwrap();
    let mut p = testing::notification_params(no, o.total_fee);
    p.insert("appid".into(), app.simulator().appid().into());
    p.insert("mch_id".into(), app.simulator().mch_id().into());
    p.insert("openid".into(), o.openid.clone().unwrap_or_default());
    p.insert(
        "transaction_id".into(),
        o.transaction_id.clone().unwrap_or_default(),
    );
    p.insert(
        "time_end".into(),
        wxpay::wxtime::format_compact(o.time_end.unwrap()),
    );
    testing::signed(p, app.simulator().api_key().expose(), wxpay::SignType::Md5)
}

/// `paydesk reconcile …` in merchant mode against the app's simulator and database, with
/// the app's notify URLs (what a merchant's configuration holds).
/// Awaited, not blocking: the simulator answers from this test's runtime.
async fn reconcile_cli(app: &TestApp, day: &str) -> std::process::Output {
    let mut cmd = paydesk_against(app.simulator(), &app.db.url);
    cmd.env("PAYDESK_WXPAY__NOTIFY_URL", &app.state.pay.notify_url)
        .env(
            "PAYDESK_WXPAY__REFUND_NOTIFY_URL",
            &app.state.pay.refund_notify_url,
        )
        .env("PAYDESK_WXPAY__ALLOW_INSECURE_NOTIFY_URLS", "on")
        .args(["reconcile", "--day", day]);
    tokio::process::Command::from(cmd).output().await.unwrap()
}

fn reconciler<'a>(app: &'a TestApp, policy: &'a RefundPolicy) -> Reconciler<'a> {
    Reconciler {
        db: &app.app_db,
        api: &*app.state.wxpay,
        events: &app.state.events,
        appid: &app.merchant.appid,
        refund_policy: policy,
    }
}

fn open_set(report: &reconcile::Report) -> BTreeSet<(Class, String)> {
    report.open().map(|d| (d.class, d.ref_no.clone())).collect()
}

#[tokio::test]
async fn every_planted_difference_is_found_once_and_a_rerun_changes_nothing() {
    let apps = spawn_apps_with(json!({ "sync": { "enabled": "off" } })).await;
    for app in apps {
        let l = app.db.label;
        let sim = app.simulator();
        let stamp = format!("{}", paydesk_core::now_ms() % 100_000_000);
        let no = |tag: &str| format!("RC{tag}{stamp}");
        let (ok, lost, amount, omitted, closed, unknown) = (
            no("OK"),
            no("LOST"),
            no("AMT"),
            no("OMIT"),
            no("CLOSED"),
            no("UNKNOWN"),
        );

        paid(&app, &ok, 1_000, true).await;
        paid(&app, &amount, 2_000, true).await;
        paid(&app, &omitted, 3_000, true).await;
        // A lost notification (掉单): WeChat Pay has the payment, we never heard of it.
        paid(&app, &lost, 4_000, false).await;
        // Paid at WeChat Pay, closed here.
        paid(&app, &closed, 5_000, false).await;
        sqlx::query("update orders set status = 'CLOSED' where out_trade_no = $1")
            .bind(&closed)
            .execute(app.app_db.writer())
            .await
            .unwrap();
        // A payment of our appid for an order number we do not have.
        app.state
            .wxpay
            .unified_order(&wxpay::UnifiedOrderRequest::jsapi(
                "paydesk test".to_owned(),
                unknown.clone(),
                600,
                "127.0.0.1",
                app.state.pay.notify_url.clone(),
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".to_owned(),
            ))
            .await
            .unwrap();
        sim.pay_order(&unknown, &pay(false)).unwrap();
        // A refund made in the merchant platform, which paydesk never made.
        let outside = format!("RO{stamp}");
        sim.refund_outside(&ok, Some(&outside), 100).unwrap();
        // Paid on both sides, but our record holds another transaction id.
        let other_tx = no("TX");
        paid(&app, &other_tx, 6_000, true).await;
        sqlx::query("update orders set transaction_id = $1 where out_trade_no = $2")
            .bind(format!("4200OTHER{stamp}"))
            .bind(&other_tx)
            .execute(app.app_db.writer())
            .await
            .unwrap();
        // Refunds of the `ok` order in our books: one WeChat Pay never got (refundquery does
        // not find it either), one it made for another amount, one it closed while ours
        // says it succeeded.
        let (here_only, other_amount, other_state) = (
            format!("RH{stamp}"),
            format!("RA{stamp}"),
            format!("RS{stamp}"),
        );
        sim.refund_outside(&ok, Some(&other_amount), 100).unwrap();
        sim.refund_outside(&ok, Some(&other_state), 100).unwrap();
        sim.set_refund_outcome(&other_state, paydesk_sim::RefundState::Refundclose, None)
            .unwrap();
        // The simulator closes it on its own task: the bill must be built after that.
        wait_until(&app, "the simulator to close the refund", || async {
            sim.refund(&other_state)
                .is_some_and(|r| r.status == paydesk_sim::RefundState::Refundclose)
        })
        .await;
        let order_id = app.stored_order(&ok).await.id;
        for (number, amount, status) in [
            (&here_only, 100, "PROCESSING"),
            (&other_amount, 150, "SUCCESS"),
            (&other_state, 100, "SUCCESS"),
        ] {
            sqlx::query(
                "insert into refunds (out_refund_no, order_id, amount_fen, reason, \
                 requester_kind, requester, status, refund_id, attempts, accepted_at, \
                 created_at, updated_at) \
                 values ($1, $2, $3, 'test', 'staff', 'tester', $4, $5, 1, $6, $6, $6)",
            )
            .bind(number)
            .bind(order_id)
            .bind(amount)
            .bind(status)
            .bind(format!("W{number}"))
            .bind(paydesk_core::now_ms())
            .execute(app.app_db.writer())
            .await
            .unwrap();
        }
        // WeChat Pay's bill: one amount changed there, one payment missing.
        set_faults(
            sim,
            json!({ "bills": [
                { "fault": "amount", "out_trade_no": amount, "delta_fen": 1 },
                { "fault": "omit", "out_trade_no": omitted },
            ] }),
        );
        // Today's bill is ready tomorrow at 10:00 on the simulator's clock.
        sim.advance_clock(Duration::from_secs(36 * 3600));

        let today = paydesk_core::time::day_number(paydesk_core::now_ms());
        let policy = RefundPolicy::default();
        let r = reconciler(&app, &policy);
        let report = reconcile::reconcile_day(&r, today)
            .await
            .unwrap_or_else(|e| panic!("{l}: {e}"));
        let expected: BTreeSet<(Class, String)> = [
            (Class::PaidThereOnly, lost.clone()),
            (Class::StatusDiffers, closed.clone()),
            (Class::UnknownOrder, unknown.clone()),
            (Class::AmountDiffers, amount.clone()),
            (Class::PaidHereOnly, omitted.clone()),
            (Class::RefundThereOnly, outside.clone()),
            (Class::TransactionDiffers, other_tx.clone()),
            (Class::RefundHereOnly, here_only.clone()),
            (Class::RefundAmountDiffers, other_amount.clone()),
            (Class::RefundStatusDiffers, other_state.clone()),
        ]
        .into();
        assert_eq!(open_set(&report), expected, "{l}");
        assert_eq!(
            report.differences.len(),
            Class::ALL.len(),
            "{l}: each class once, nothing else"
        );
        assert_eq!(report.day.status, DayStatus::Differences, "{l}");
        assert_eq!(report.day.open_count, 10, "{l}");
        assert_eq!(report.day.bill, "present", "{l}");
        // Ours: the four paid through notifications; theirs: all but the omitted, the
        // amount with its extra fen.
        assert_eq!(
            (report.day.our_paid_count, report.day.our_paid_fen),
            (4, 12_000),
            "{l}"
        );
        assert_eq!(
            (report.day.bill_paid_count, report.day.bill_paid_fen),
            (6, 1_000 + 2_001 + 4_000 + 5_000 + 600 + 6_000),
            "{l}"
        );
        assert_eq!(
            (
                report.day.bill_refund_count,
                report.day.bill_refund_fen_ours
            ),
            (3, 300),
            "{l}"
        );
        // Refunds were re-checked with refundquery before being raised: the one WeChat
        // Pay closed is still SUCCESS here (a success is final), and the bill says FAIL.
        let state = report
            .differences
            .iter()
            .find(|d| d.class == Class::RefundStatusDiffers)
            .unwrap();
        assert_eq!(
            (state.our_status.as_deref(), state.their_status.as_deref()),
            (Some("SUCCESS"), Some("FAIL")),
            "{l}"
        );
        let amount_row = report
            .differences
            .iter()
            .find(|d| d.class == Class::AmountDiffers)
            .unwrap();
        assert_eq!(
            (amount_row.our_fen, amount_row.their_fen),
            (Some(2_000), Some(2_001)),
            "{l}"
        );

        // A re-run finds the same differences: the same rows, none added.
        let again = reconcile::reconcile_day(&r, today).await.unwrap();
        let ids = |rep: &reconcile::Report| {
            rep.differences
                .iter()
                .map(|d| d.id)
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(ids(&again), ids(&report), "{l}");
        assert_eq!(open_set(&again), expected, "{l}");

        // A resolution with its note survives a re-run.
        let unknown_row = again
            .differences
            .iter()
            .find(|d| d.class == Class::UnknownOrder)
            .unwrap();
        let manager = testing::manager(&app.app_db, "boss").await;
        reconcile::resolve(&app.app_db, unknown_row.id, "另一家门店的测试单", &manager)
            .await
            .unwrap();
        assert!(
            reconcile::resolve(&app.app_db, unknown_row.id, "again", &manager)
                .await
                .is_err(),
            "{l}: resolved twice"
        );
        let third = reconcile::reconcile_day(&r, today).await.unwrap();
        let kept = third
            .differences
            .iter()
            .find(|d| d.id == unknown_row.id)
            .unwrap();
        assert_eq!(kept.state, DifferenceState::Resolved, "{l}");
        assert_eq!(kept.note.as_deref(), Some("另一家门店的测试单"), "{l}");
        assert_eq!(third.day.open_count, 9, "{l}");

        // 补单 while the late notification arrives at the same moment: paid exactly once.
        let lost_row = third
            .differences
            .iter()
            .find(|d| d.class == Class::PaidThereOnly)
            .unwrap()
            .id;
        let mut events = app.state.events.subscribe();
        let body = late_notification(&app, &lost);
        let client = reqwest::Client::new();
        let notify_url = app.url("/wxpay/notify/payment");
        let cli = Actor::cli();
        let (synced, delivered) = tokio::join!(
            reconcile::sync_from_wechat(&r, lost_row, &cli),
            client.post(&notify_url).body(body).send()
        );
        let synced = synced.unwrap_or_else(|e| panic!("{l}: 补单: {e}"));
        let delivered = delivered.unwrap();
        assert_eq!(delivered.status(), 200, "{l}");
        assert!(delivered.text().await.unwrap().contains("SUCCESS"), "{l}");
        assert_eq!(synced.state, DifferenceState::Cleared, "{l}");
        let order = app.stored_order(&lost).await;
        assert_eq!(order.status, OrderStatus::Paid, "{l}");
        assert_eq!(
            order.transaction_id,
            sim.order(&lost).unwrap().transaction_id,
            "{l}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut paid_events = 0;
        while let Ok(e) = events.try_recv() {
            if matches!(&e, Event::OrderPaid { out_trade_no, .. } if *out_trade_no == lost) {
                paid_events += 1;
            }
        }
        assert_eq!(paid_events, 1, "{l}: the payment was applied once");
        let audited = paydesk_core::audit::list(
            &app.app_db,
            None,
            Some(paydesk_core::audit::action::RECONCILE_SYNC),
            10,
        )
        .await
        .unwrap();
        assert_eq!(audited.len(), 1, "{l}");

        // The command line: every open difference on its own line; exit 1 while one is open.
        let day_text = reconcile::date_of(today).unwrap().to_string();
        let out = reconcile_cli(&app, &day_text).await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{l}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (class, number) in [
            ("status_differs", format!("out_trade_no={closed}")),
            ("amount_differs", format!("out_trade_no={amount}")),
            ("paid_here_only", format!("out_trade_no={omitted}")),
            ("refund_there_only", format!("out_refund_no={outside}")),
        ] {
            assert!(
                stdout
                    .lines()
                    .any(|line| line.starts_with(class) && line.contains(&number)),
                "{l}: {class} {number} in\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(!stdout.contains(&lost), "{l}: 补单 cleared it\n{stdout}");
        assert!(!stdout.contains(&unknown), "{l}: resolved\n{stdout}");

        // Everything resolved: exit 0.
        for d in reconcile::differences(&app.app_db, today).await.unwrap() {
            if d.state == DifferenceState::Open {
                reconcile::resolve(&app.app_db, d.id, "已核对", &manager)
                    .await
                    .unwrap();
            }
        }
        let out = reconcile_cli(&app, &day_text).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{l}: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        // A day it cannot reconcile: exit 2.
        for day in ["2001-01-01", "yesterday"] {
            let out = reconcile_cli(&app, day).await;
            assert_eq!(
                out.status.code(),
                Some(2),
                "{l}: {day}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// The `bill_date` of each downloadbill call recorded in `api_calls`.
async fn bill_dates_fetched(app: &TestApp) -> Vec<String> {
    let bodies: Vec<String> = sqlx::query_scalar(
        "select request_body from api_calls where endpoint = '/pay/downloadbill' order by id",
    )
    .fetch_all(app.app_db.reader())
    .await
    .unwrap();
    bodies
        .iter()
        .filter_map(|b| {
            let from = b.find("<bill_date>")? + "<bill_date>".len();
            Some(b[from..from + 8].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn two_instances_on_one_database_fetch_each_days_bill_once() {
    for app in spawn_apps_with(json!({ "sync": { "enabled": "off" } })).await {
        // Arrange: the first order three days ago, so the catch-up has the two days before
        // yesterday and the daily run yesterday; two instances whose run is due at once.
        // WeChat Pay's clock a day and a half on: yesterday's bill is ready, whatever the hour.
        let l = app.db.label;
        app.simulator()
            .advance_clock(Duration::from_secs(36 * 3600));
        let now = paydesk_core::now_ms();
        let today = paydesk_core::time::day_number(now);
        let no = format!("RC2I{}", now % 100_000_000);
        testing::create_order(&app.app_db, &no, 700).await;
        sqlx::query("update orders set created_at = $1 where out_trade_no = $2")
            .bind(now - 3 * 86_400_000)
            .bind(&no)
            .execute(app.app_db.writer())
            .await
            .unwrap();
        let mut due = merchant_against(app.simulator());
        due["reconciliation"] = json!({ "enabled": "on", "run_at": "00:00" });
        due["sync"] = json!({ "enabled": "off" });

        // Act: both start together
        let (_b, _c) = tokio::join!(
            spawn_sibling(&app, due.clone()),
            spawn_sibling(&app, due.clone())
        );
        let mut days = Vec::new();
        for _ in 0..200 {
            days = reconcile::days_between(&app.app_db, today - 3, today - 1)
                .await
                .unwrap();
            if days.len() == 3 && days.iter().all(|d| d.reconciled_at.is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for a second fetch, were a lease not to hold (calls are recorded in batches).
        tokio::time::sleep(Duration::from_millis(1_500)).await;

        // Assert: each day compared, its bill fetched once among the instances
        assert_eq!(days.len(), 3, "{l}: {days:?}");
        for d in &days {
            assert_eq!(d.status, DayStatus::Matched, "{l}: {d:?}");
        }
        let mut fetched = bill_dates_fetched(&app).await;
        fetched.sort();
        let expected: Vec<String> = (today - 3..today)
            .map(|d| reconcile::day_text(d).replace('-', ""))
            .collect();
        assert_eq!(fetched, expected, "{l}: one downloadbill per day");
        let received = app
            .simulator()
            .api_calls()
            .iter()
            .filter(|c| c.endpoint == "/pay/downloadbill")
            .count();
        assert_eq!(received, 3, "{l}: downloadbill calls WeChat Pay received");
    }
}

#[tokio::test]
async fn a_day_without_a_bill_is_matched_only_when_we_have_no_trade_either() {
    for app in spawn_apps_with(json!({ "sync": { "enabled": "off" } })).await {
        let l = app.db.label;
        let sim = app.simulator();
        sim.advance_clock(Duration::from_secs(36 * 3600));
        let today = paydesk_core::time::day_number(paydesk_core::now_ms());
        let policy = RefundPolicy::default();
        let r = reconciler(&app, &policy);
        // Nothing anywhere: "No Bill Exist", matched.
        let report = reconcile::reconcile_day(&r, today).await.unwrap();
        assert_eq!(report.day.bill, "none", "{l}");
        assert_eq!(report.day.status, DayStatus::Matched, "{l}");

        // A payment here that WeChat Pay has no bill for: a difference.
        let no = format!("RCNB{}", paydesk_core::now_ms() % 100_000_000);
        testing::paid_order(&app.app_db, &no, 800).await;
        sqlx::query("update orders set paid_at = $1 where out_trade_no = $2")
            .bind(paydesk_core::now_ms())
            .bind(&no)
            .execute(app.app_db.writer())
            .await
            .unwrap();
        let report = reconcile::reconcile_day(&r, today).await.unwrap();
        assert_eq!(report.day.bill, "none", "{l}");
        assert_eq!(
            open_set(&report),
            [(Class::PaidHereOnly, no.clone())].into(),
            "{l}"
        );

        // Tomorrow is not a day with a bill yet.
        assert!(
            reconcile::reconcile_day(&r, today + 1).await.is_err(),
            "{l}"
        );
    }
}

#[tokio::test]
async fn the_sandbox_history_is_caught_up_and_reconciles_but_for_the_planted_day() {
    let apps = spawn_apps_with(json!({
        "demo_history": "on",
        "reconciliation": { "enabled": "on" },
        "sync": { "enabled": "off" },
    }))
    .await;
    for app in apps {
        let l = app.db.label;
        let today = paydesk_core::time::day_number(paydesk_core::now_ms());
        let first_order: i64 = sqlx::query_scalar("select min(created_at) from orders")
            .fetch_one(app.app_db.reader())
            .await
            .unwrap();
        let first = paydesk_core::time::day_number(first_order);
        assert!(
            first >= today - i64::from(server::sandbox::HISTORY_DAYS) - 1,
            "{l}"
        );
        // The job's catch-up runs at start, whatever the time of day.
        let mut days = Vec::new();
        for _ in 0..600 {
            days = reconcile::days_between(&app.app_db, first, today - 2)
                .await
                .unwrap();
            // A day's row appears when its bill is kept, then its comparison finishes it.
            let compared = days.iter().all(|d| d.reconciled_at.is_some());
            if days.len() as i64 >= today - 1 - first && compared {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            days.len() as i64,
            today - 1 - first,
            "{l}: every day of the history before yesterday"
        );
        let planted = today - 3;
        for d in &days {
            let differences = reconcile::differences(&app.app_db, d.day).await.unwrap();
            if d.day == planted {
                assert_eq!(d.status, DayStatus::Differences, "{l}: the planted day");
                let classes: Vec<Class> = differences.iter().map(|x| x.class).collect();
                assert_eq!(classes, [Class::AmountDiffers], "{l}");
                assert_eq!(
                    differences[0].their_fen.unwrap() - differences[0].our_fen.unwrap(),
                    100,
                    "{l}"
                );
            } else {
                assert_eq!(
                    d.status,
                    DayStatus::Matched,
                    "{l}: {} {:?} {:?}",
                    reconcile::day_text(d.day),
                    d.error,
                    differences
                );
                assert!(
                    d.our_paid_count > 0,
                    "{l}: a day of the history has payments"
                );
                assert_eq!(d.our_paid_fen, d.bill_paid_fen, "{l}");
                assert_eq!(d.our_refund_fen, d.bill_refund_fen_ours, "{l}");
            }
        }
        // No day before the first order is asked about: nothing there is ours to explain.
        assert!(
            reconcile::days_between(&app.app_db, first - 40, first - 1)
                .await
                .unwrap()
                .is_empty(),
            "{l}"
        );
    }
}
