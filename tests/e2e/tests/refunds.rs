//! Refunds in a real browser: a shopper pays through the mini-program API and asks for a
//! refund; a manager approves it on the Refunds page and watches it reach SUCCESS at the
//! simulator (over mutual TLS); a staff member's approve call is refused by the server.

use std::time::{Duration, Instant};

use paydesk_e2e::{http_json, Browser, Server, Shopper};
use serde_json::json;

/// A paid order with a pending refund request filed by its shopper. Returns the order
/// number.
fn paid_order_with_refund_request(server: &Server) -> anyhow::Result<String> {
    let shopper = Shopper::login(server, "e2e-refund-shopper")?;
    let no = shopper.order(3, 2, "e2e-refund-1")?;
    shopper.pay_and_wait(&no)?;
    let token = &shopper.token;
    let sim = server.sim_base()?;
    let (status, refund) = http_json(
        "POST",
        &server.url(&format!("/api/mp/orders/{no}/refund-requests")),
        Some(token),
        Some(&json!({ "reason": "买多了一杯" })),
    )?;
    anyhow::ensure!(status == 201, "refund request: {status} {refund}");
    // The simulator settles it half a second after accepting it (instead of its default
    // minute of PROCESSING).
    let out_refund_no = refund["out_refund_no"].as_str().unwrap_or_default();
    let (status, planned) = http_json(
        "POST",
        &format!("{sim}/sim/refunds/{out_refund_no}/outcome"),
        None,
        Some(&json!({ "outcome": "SUCCESS", "delay_ms": 500 })),
    )?;
    anyhow::ensure!(status == 202, "planned outcome: {status} {planned}");
    Ok(no)
}

#[tokio::test]
async fn a_manager_approves_a_refund_and_sees_it_succeed_while_staff_are_refused(
) -> anyhow::Result<()> {
    // Arrange
    let server = Server::start()?;
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
    server.cli(
        &[
            "user",
            "add",
            "clerk1",
            "--role",
            "staff",
            "--password-stdin",
        ],
        "clerk password 1\n",
    )?;
    let no = paid_order_with_refund_request(&server)?;
    let browser = Browser::start().await?;
    let b = &browser;

    // Act: the manager opens the Refunds page and approves the pending request
    b.sign_in(&server, "manager1", "manager password 1", "/refunds")
        .await?;
    let pending = "tr[data-status=PENDING_APPROVAL]";
    let row = b.wait_for_text(pending, &no).await?;
    assert!(row.contains("¥56.00"), "amount shown in yuan: {row}");
    b.screenshot("refunds").await?;
    b.fill(
        &format!("{pending} form.decide-form input[name=reason]"),
        "顾客确认多买，同意退款",
    )
    .await?;
    b.click(&format!("{pending} form.decide-form button[type=submit]"))
        .await?;
    b.wait_for_text(".banner--ok", "已批准退款").await?;

    // Assert: executed over mutual TLS, settled by the simulator's notification or refundquery
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        b.client.goto(&server.url("/refunds")).await?;
        b.wait_for_hydration().await?;
        if b.wait_for_text("tr[data-refund]", &no)
            .await?
            .contains("退款成功")
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the refund never reached SUCCESS"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.wait_for_text("tr[data-status=SUCCESS]", "顾客确认多买")
        .await?;
    b.screenshot("refunds-success").await?;

    // A staff member sees the page refused, and a direct approve call is refused on the server
    b.click(".topbar__logout button").await?;
    b.wait_for_path("/login").await?;
    b.sign_in(&server, "clerk1", "clerk password 1", "/account")
        .await?;
    b.client.goto(&server.url("/refunds")).await?;
    b.wait_for_text("[data-testid=refused]", "无权访问").await?;
    let status = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/refunds/approve', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'id=1&reason=x' })
               .then(r => done(r.status));",
            vec![],
        )
        .await?;
    assert_eq!(
        status.as_u64(),
        Some(403),
        "staff approve must be refused by the server"
    );
    b.screenshot("refunds-refused-for-staff").await?;
    browser.close().await;
    Ok(())
}
