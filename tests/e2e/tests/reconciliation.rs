//! Reconciliation in a real browser: shoppers pay through the mini-program API and the
//! simulator; one payment's notification never arrives (掉单) and WeChat Pay's bill shows
//! another at a different amount. A manager reconciles the day from the page, sees it red
//! with both differences, follows one to the order's page, comes back, syncs the lost payment
//! from WeChat (补单) and resolves the other with a note; the day then has nothing open. The
//! two differences also wait in the exceptions inbox (counted in the top bar) until then.

use paydesk_e2e::{http_json, Browser, Server, Shopper};
use serde_json::json;

/// Today in Asia/Shanghai (UTC+8 all year), `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = i64::try_from((secs + 8 * 3600) / 86_400).unwrap_or(0);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[tokio::test]
async fn a_manager_opens_a_red_day_follows_a_difference_to_its_order_and_resolves_it(
) -> anyhow::Result<()> {
    // Arrange: the sync job would find the lost payment on its own; this test wants the
    // reconciliation to.
    let server = Server::start_with(&[
        ("PAYDESK_DEMO_HISTORY", "off"),
        ("PAYDESK_DEMO_SHOPPERS", "off"),
        ("PAYDESK_SYNC__ENABLED", "off"),
        ("PAYDESK_RECONCILIATION__ENABLED", "off"),
        ("PAYDESK_EXCEPTIONS__SCAN_SECONDS", "1"),
    ])?;
    server.cli(
        &[
            "user",
            "add",
            "manager1",
            "--role",
            "manager",
            "--password-stdin",
        ],
        "manager password 1\n",
    )?;
    let sim = server.sim_base()?;
    let paid = Shopper::login(&server, "e2e-recon-1")?;
    let ok = paid.order(1, 1, "e2e-recon-ok")?;
    paid.pay_and_wait(&ok)?;
    let changed = paid.order(2, 1, "e2e-recon-changed")?;
    paid.pay_and_wait(&changed)?;
    // A payment whose notification never comes.
    let lost = Shopper::login(&server, "e2e-recon-2")?.order(1, 2, "e2e-recon-lost")?;
    let (status, body) = http_json(
        "POST",
        &format!("{sim}/sim/orders/{lost}/pay"),
        None,
        Some(&json!({ "result": "SUCCESS", "notify": false })),
    )?;
    anyhow::ensure!(status == 200, "pay: {status} {body}");
    // WeChat Pay's bill has another amount for one order, and today's bill is ready.
    let (status, body) = http_json(
        "POST",
        &format!("{sim}/sim/faults"),
        None,
        Some(&json!({ "bills": [{ "fault": "amount", "out_trade_no": changed, "delta_fen": 1 }] })),
    )?;
    anyhow::ensure!(status == 200, "faults: {status} {body}");
    let (status, body) = http_json(
        "POST",
        &format!("{sim}/sim/clock/advance"),
        None,
        Some(&json!({ "seconds": 36 * 3600 })),
    )?;
    anyhow::ensure!(status == 200, "clock: {status} {body}");
    let browser = Browser::start().await?;
    let b = &browser;
    let day = today();
    let page = format!("/reconciliation?day={day}");

    // Act: the manager reconciles the day from the page
    b.sign_in(&server, "manager1", "manager password 1", "/reconciliation")
        .await?;
    b.wait_for_text("[data-testid=recon-calendar]", "").await?;
    b.client.goto(&server.url(&page)).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=recon-day]", "未对账").await?;
    b.click("form[data-testid=recon-run-form] button[type=submit]")
        .await?;
    b.wait_for_text("[data-testid=recon-run-result]", "有差异")
        .await?;

    // Assert: the day is red with both differences, each explained
    let lost_row = "tr[data-testid=recon-difference][data-class=paid_there_only]";
    let text = b.wait_for_text(lost_row, &lost).await?;
    assert!(text.contains("掉单"), "{text}");
    let amount_row = "tr[data-testid=recon-difference][data-class=amount_differs]";
    let text = b.wait_for_text(amount_row, &changed).await?;
    assert!(text.contains("金额不一致"), "{text}");
    b.wait_for_text("[data-testid=recon-day]", "有差异").await?;
    b.client.execute("window.scrollTo(0, 0);", vec![]).await?;
    b.screenshot("reconciliation").await?;

    // Both are in the exceptions inbox too, counted in the top bar
    b.wait_for_text("[data-testid=exceptions-count][data-open='2']", "2")
        .await?;
    b.click("[data-testid=exceptions-count]").await?;
    b.wait_for_path("/exceptions").await?;
    b.wait_for_hydration().await?;
    let item = b
        .wait_for_text("tr[data-testid=exception][data-kind=reconciliation]", &lost)
        .await?;
    assert!(item.contains("对账差异"), "{item}");
    b.wait_for_text(
        "tr[data-testid=exception][data-kind=reconciliation]",
        &changed,
    )
    .await?;
    b.screenshot("exceptions").await?;
    // Each links to its reconciliation day
    b.click("tr[data-testid=exception][data-kind=reconciliation] a[data-testid=exception-link]")
        .await?;
    b.wait_for_path("/reconciliation").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=recon-day]", &day).await?;

    // The manager follows the amount difference to its order and comes back
    b.click(&format!("{amount_row} a[data-testid=recon-order-link]"))
        .await?;
    b.wait_for_path(&format!("/orders/{changed}")).await?;
    b.wait_for_text("[data-testid=order-status]", "已支付")
        .await?;
    b.client.goto(&server.url(&page)).await?;
    b.wait_for_hydration().await?;

    // 补单 for the lost payment: the order is paid, the difference clears
    b.click(&format!(
        "{lost_row} form[data-testid=recon-sync-form] button"
    ))
    .await?;
    b.wait_for_text("[data-testid=recon-sync-result]", "已消除")
        .await?;

    // The amount difference is resolved with a note (once the payment's toast, which
    // covers the table's last column, has gone)
    b.wait_for_none("[data-testid=toast-paid]").await?;
    b.client
        .execute(
            "document.querySelector('[data-testid=recon-differences]').scrollIntoView();",
            vec![],
        )
        .await?;
    b.screenshot("reconciliation-differences").await?;
    b.fill(
        &format!("{amount_row} input[name=note]"),
        "微信侧优惠立减 1 分，已核对",
    )
    .await?;
    b.click(&format!(
        "{amount_row} form[data-testid=recon-resolve-form] button"
    ))
    .await?;
    b.wait_for_text("[data-testid=recon-resolve-result]", &changed)
        .await?;
    let text = b
        .wait_for_text(
            "tr[data-testid=recon-difference][data-state=resolved]",
            "微信侧优惠立减 1 分，已核对",
        )
        .await?;
    assert!(text.contains("manager1"), "{text}");
    b.wait_for_text("[data-testid=recon-day]", "已平账").await?;
    // The inbox empties itself: both differences are gone
    b.wait_for_text("[data-testid=exceptions-count][data-open='0']", "0")
        .await?;

    // The order the lost payment belonged to is paid now, seen from its page
    b.client
        .goto(&server.url(&format!("/orders/{lost}")))
        .await?;
    b.wait_for_text("[data-testid=order-status]", "已支付")
        .await?;
    browser.close().await;
    Ok(())
}
