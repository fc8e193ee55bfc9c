//! The logs in a real browser: support watches the failures view while the simulator sends
//! a payment callback with a tampered signature; it appears in place (no reload) under "bad
//! signature" with the signature debugger, and the key masked. Then the notification log,
//! one notification with its sanitized body, the lookup and the API call log.

use paydesk_e2e::{http_json, Browser, Server, Shopper};
use serde_json::json;

/// A shopper's order for ¥56.00 (not yet paid). Returns its number.
fn place_order(server: &Server) -> anyhow::Result<String> {
    Shopper::login(server, "e2e-logs-shopper")?.order(3, 2, "e2e-logs-1")
}

async fn open(b: &Browser, server: &Server, path: &str) -> anyhow::Result<()> {
    b.client.goto(&server.url(path)).await?;
    b.wait_for_hydration().await
}

#[tokio::test]
async fn a_tampered_callback_shows_up_in_failures_with_the_debugger_and_in_the_logs(
) -> anyhow::Result<()> {
    // Arrange
    let server = Server::start()?;
    server.cli(
        &[
            "user",
            "add",
            "support1",
            "--role",
            "support",
            "--password-stdin",
        ],
        "support password 1\n",
    )?;
    let no = place_order(&server)?;
    let browser = Browser::start().await?;
    let b = &browser;
    b.sign_in(&server, "support1", "support password 1", "/failures")
        .await?;
    b.wait_for_text("[data-testid=no-failures]", "没有验证失败")
        .await?;
    b.wait_for_text("[data-testid=live-status]", "实时更新中")
        .await?;

    // Act: the simulator's next callback carries a changed signature
    let sim = server.sim_base()?;
    let (status, plan) = http_json(
        "POST",
        &format!("{sim}/sim/faults"),
        None,
        Some(
            &json!({ "notifications": [{ "fault": "tamper_sign", "count": 1, "kind": "payment" }] }),
        ),
    )?;
    anyhow::ensure!(status == 200, "fault plan: {status} {plan}");
    let (status, paid) = http_json(
        "POST",
        &format!("{sim}/sim/orders/{no}/pay"),
        None,
        Some(&json!({ "result": "SUCCESS" })),
    )?;
    anyhow::ensure!(status == 200, "pay: {status} {paid}");

    // Assert: in place, under "签名错误", with the debugger and the key masked
    let group = "details[data-cause=bad_signature]";
    let summary = b
        .wait_for_text(&format!("{group} summary"), "签名错误")
        .await?;
    assert!(summary.contains('1'), "{summary}");
    b.click(&format!("{group} summary")).await?;
    b.wait_for_text(&format!("{group} [data-testid=diagnosis]"), "key mismatch")
        .await?;
    let canonical = b
        .wait_for_text(&format!("{group} [data-testid=canonical-string]"), &no)
        .await?;
    assert!(
        canonical.ends_with("&key=[API key, 32 chars]"),
        "{canonical}"
    );
    b.wait_for_text(&format!("{group} .explain"), "API 密钥")
        .await?;
    let source = b.client.source().await?;
    assert!(
        !source.contains("192006250b4c09247ec02edce69f6a2d"),
        "the simulator's API key is on the page"
    );
    b.screenshot("failures").await?;

    // The notification log lists it; its detail explains it and masks openid and sign
    open(b, &server, "/notifications").await?;
    b.wait_for_text("tr[data-verdict=bad_signature]", &no)
        .await?;
    b.screenshot("notifications").await?;
    open(
        b,
        &server,
        "/notifications?verdict=bad_signature&kind=payment",
    )
    .await?;
    b.click("tr[data-verdict=bad_signature] a").await?;
    b.wait_for_text("[data-testid=verdict]", "签名错误").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=verdict-explanation]", "API 密钥")
        .await?;
    let raw = b.wait_for_text("[data-testid=raw-body]", &no).await?;
    let clean = b
        .wait_for_text(
            "[data-testid=sanitized-body]",
            "<sign><![CDATA[***]]></sign>",
        )
        .await?;
    assert!(raw.contains("\n  <openid>"), "indented XML: {raw}");
    assert!(
        !clean.contains("<openid><![CDATA[o"),
        "openid masked: {clean}"
    );
    b.screenshot("notification-detail").await?;
    b.click("[data-testid=sanitized-body-copy]").await?;
    b.wait_for_text("[data-testid=sanitized-body-copy]", "已复制")
        .await?;

    // Lookup by amount and a rough time
    open(b, &server, "/lookup").await?;
    b.fill("input[name=q]", "56 今天").await?;
    b.click("form[data-testid=lookup-form] button[type=submit]")
        .await?;
    let sentence = b
        .wait_for_text("[data-testid=lookup-sentence]", "¥56.00")
        .await?;
    b.wait_for_text("[data-testid=lookup-results]", &no).await?;
    assert!(
        sentence.starts_with("已支付") || sentence.starts_with("未支付"),
        "{sentence}"
    );
    b.screenshot("lookup").await?;

    // The API call log: the unifiedorder that created the order, and its bodies
    open(b, &server, "/api-calls?endpoint=/pay/unifiedorder").await?;
    b.wait_for_text("tr[data-call]", &no).await?;
    b.screenshot("api-calls").await?;
    b.click("tr[data-call] a").await?;
    b.wait_for_text("[data-testid=request-body]", "<sign>")
        .await?;
    b.wait_for_text("[data-testid=response-body]", "prepay_id")
        .await?;
    b.screenshot("api-call-detail").await?;

    browser.close().await;
    Ok(())
}
