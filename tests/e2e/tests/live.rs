//! Live updates in a real browser: a payment made in the simulator appears on the home page
//! with a toast, without a reload, and a callback the simulator tampers with raises a
//! "callback rejected" toast and the failure count. Also looks at the admin's audit and
//! settings pages (screenshots `home`, `home-en`, `audit`, `settings`).

use std::time::{Duration, Instant};

use paydesk_e2e::{http_json, Browser, Server, Shopper};
use serde_json::json;

/// The text of the element matching `css`, or "" when there is none.
async fn text_of(b: &Browser, css: &str) -> String {
    match b.client.find(fantoccini::Locator::Css(css)).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits up to `within` until the (trimmed) text of the element matching `css` satisfies
/// `ok`; `expected` says what was awaited when it never does.
async fn wait_until_text(
    b: &Browser,
    css: &str,
    within: Duration,
    expected: &str,
    ok: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let got = text_of(b, css).await;
        if ok(got.trim()) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "`{css}` reads {got:?}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the element matching `css` reads exactly `want`.
async fn wait_for_exact(b: &Browser, css: &str, want: &str) -> anyhow::Result<()> {
    wait_until_text(
        b,
        css,
        Duration::from_secs(20),
        &format!("{want:?}"),
        |got| got == want,
    )
    .await
}

/// The page is still the document we loaded: the marker set on its `window` survives only
/// if nothing reloaded or navigated.
async fn same_document(b: &Browser) -> anyhow::Result<bool> {
    Ok(b.client
        .execute("return window.__paydeskLiveMarker === 'kept'", vec![])
        .await?
        .as_bool()
        .unwrap_or(false))
}

#[tokio::test]
async fn a_simulator_payment_appears_live_on_home_with_a_toast_and_a_tampered_callback_is_announced(
) -> anyhow::Result<()> {
    // Arrange: the admin on the home page, hydrated, the live stream connected
    let server = Server::start()?;
    let shopper = Shopper::login(&server, "e2e-live-shopper")?;
    let browser = Browser::start().await?;
    let b = &browser;
    b.sign_in(&server, "admin", &server.admin_password, "/")
        .await?;
    b.wait_for_text("[data-testid=home-stats]", "今日收款")
        .await?;
    b.wait_for_text(".topbar__live--on", "").await?;
    wait_for_exact(b, "[data-testid=today-count]", "0").await?;
    b.wait_for_text("[data-testid=sandbox-badge]", "沙箱")
        .await?;
    b.client
        .execute("window.__paydeskLiveMarker = 'kept'", vec![])
        .await?;

    // Act: a shopper pays in the simulator
    let no = shopper.order(1, 1, "e2e-live-1")?;
    shopper.pay(&no)?;

    // Assert: a toast, and the home page's numbers change in place
    let toast = b.wait_for_text("[data-testid=toast-paid]", &no).await?;
    assert!(toast.contains('¥'), "the toast shows the amount: {toast}");
    wait_for_exact(b, "[data-testid=today-count]", "1").await?;
    b.wait_for_text("[data-testid=latest-paid]", &no).await?;
    let paid = text_of(b, "[data-testid=today-paid]").await;
    assert!(
        paid.starts_with('¥') && paid != "¥0.00",
        "today's takings: {paid}"
    );
    wait_for_exact(b, "[data-testid=success-rate]", "100.0%").await?;
    let bars = b
        .client
        .find_all(fantoccini::Locator::Css(
            "[data-testid=revenue-chart] .chart__day",
        ))
        .await?;
    assert_eq!(bars.len(), 14, "fourteen days in the chart");
    assert!(same_document(b).await?, "the page was not reloaded");
    assert_eq!(b.client.current_url().await?.path(), "/");
    b.screenshot("home").await?;

    // Act: the simulator tampers with the next payment notification's signature
    let (status, plan) = http_json(
        "POST",
        &format!("{}/sim/faults", server.sim_base()?),
        None,
        Some(&json!({ "notifications": [{ "fault": "tamper_sign", "kind": "payment" }] })),
    )?;
    anyhow::ensure!(status < 300, "fault plan: {status} {plan}");
    let tampered = shopper.order(1, 1, "e2e-live-2")?;
    shopper.pay(&tampered)?;

    // Assert: the refusal is announced and counted, still without a reload
    let toast = b
        .wait_for_text("[data-testid=toast-rejected]", &tampered)
        .await?;
    // The verdict in words, never its stored code.
    assert!(
        (toast.contains("签名错误") || toast.contains("Bad signature"))
            && !toast.contains("bad_signature"),
        "the verdict: {toast}"
    );
    wait_for_exact(b, "[data-testid=failures-24h]", "1").await?;
    assert!(same_document(b).await?, "the page was not reloaded");

    // The admin's other pages, and the home page in English
    b.client.goto(&server.url("/audit")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=audit-table]", "登录成功")
        .await?;
    b.screenshot("audit").await?;
    // The filter is the URL: only product additions, by paydesk itself.
    b.client
        .goto(&server.url("/audit?action=product.create&actor=system"))
        .await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=audit-table]", "新增商品")
        .await?;
    let rows = b
        .client
        .find_all(fantoccini::Locator::Css(
            "[data-testid=audit-table] tbody tr",
        ))
        .await?;
    assert!(!rows.is_empty());
    for row in rows {
        assert_eq!(
            row.attr("data-action").await?.as_deref(),
            Some("product.create")
        );
    }
    b.client.goto(&server.url("/settings")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=settings-environment]", "模拟器")
        .await?;
    let key = text_of(b, "[data-testid=settings-api-key]").await;
    assert!(
        key.starts_with("••••••••") && key.chars().count() == 12,
        "{key}"
    );
    b.screenshot("settings").await?;
    // The retention policy: a line per table that only grows, with its age or why it is kept.
    b.wait_for_text("[data-testid=retention]", "api_calls")
        .await?;
    b.client
        .execute(
            "document.querySelector('[data-testid=retention]').scrollIntoView()",
            vec![],
        )
        .await?;
    b.screenshot("settings-retention").await?;
    b.client.goto(&server.url("/lang/en?next=/")).await?;
    b.wait_for_path("/").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=home-stats]", "Paid today")
        .await?;
    b.screenshot("home-en").await?;

    browser.close().await;
    Ok(())
}

#[tokio::test]
async fn a_newcomers_sandbox_opens_on_weeks_of_history_and_live_demo_shoppers() -> anyhow::Result<()>
{
    // Arrange: paydesk as `scripts/run.sh` starts it on a fresh machine
    let server = Server::start_as_newcomer()?;
    let browser = Browser::start().await?;
    let b = &browser;

    // Act: the admin signs in
    b.sign_in(&server, "admin", &server.admin_password, "/")
        .await?;

    // Assert: the home page charts the last days' takings instead of an empty shop…
    b.wait_for_text("[data-testid=home-stats]", "今日收款")
        .await?;
    b.wait_for_text("[data-testid=revenue-chart]", "").await?;
    anyhow::ensure!(
        text_of(b, "[data-testid=no-payments]").await.is_empty(),
        "the home page says there are no payments"
    );
    b.screenshot("home-newcomer").await?;

    // …the orders page lists weeks of them…
    b.client.goto(&server.url("/orders?all")).await?;
    b.wait_for_hydration().await?;
    let count = b.wait_for_text("[data-testid=order-count]", "").await?;
    let count: u64 = count.trim().replace(',', "").parse()?;
    anyhow::ensure!(count >= 2_000, "{count} orders in a new sandbox");

    // …the history is reconciled with the simulator's bills (the job catches up at start):
    // every day ✓ but the one the demo planted a difference on…
    let mut matched = 0;
    for _ in 0..60 {
        b.client.goto(&server.url("/reconciliation")).await?;
        b.wait_for_text("[data-testid=recon-calendar]", "").await?;
        let statuses = b
            .client
            .execute(
                "return [...document.querySelectorAll('.recon-cal__day')].map(a => a.dataset.status);",
                vec![],
            )
            .await?;
        let statuses: Vec<String> = serde_json::from_value(statuses)?;
        matched = statuses.iter().filter(|s| *s == "matched").count();
        let red = statuses.iter().filter(|s| *s == "differences").count();
        if matched >= 15 && red == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::ensure!(matched >= 15, "{matched} days of the history reconciled ✓");
    b.wait_for_text("a.recon-cal__day[data-status=differences]", "✗ 1")
        .await?;
    b.screenshot("reconciliation-newcomer").await?;

    // …and the demo shoppers pay for new ones while we watch: today's count goes up.
    b.client.goto(&server.url("/")).await?;
    b.wait_for_hydration().await?;
    let before: u64 = text_of(b, "[data-testid=today-count]")
        .await
        .trim()
        .parse()?;
    wait_until_text(
        b,
        "[data-testid=today-count]",
        Duration::from_secs(90),
        &format!("more than {before} (a demo payment)"),
        |got| got.parse::<u64>().is_ok_and(|now| now > before),
    )
    .await?;

    browser.close().await;
    Ok(())
}
