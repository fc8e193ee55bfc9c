//! Orders in a real browser: shoppers pay through the mini-program API and the simulator; a
//! support user types a transaction_id into the Orders search box, lands on the order and
//! reads its timeline (unifiedorder, the applied notification), and files a refund there; a
//! manager approves it and sees it in the timeline, and downloads the CSV export of a
//! filtered list, which holds exactly the rows the page lists.

use std::time::{Duration, Instant};

use paydesk_e2e::{http_json, Browser, Server, Shopper};
use serde_json::json;

/// A shopper's paid order, the payment applied by its notification: returns
/// `(out_trade_no, transaction_id)`.
fn paid_order(server: &Server, shopper: &str, quantity: u32) -> anyhow::Result<(String, String)> {
    let shopper_ = Shopper::login(server, shopper)?;
    let no = shopper_.order(1, quantity, &format!("{shopper}-order"))?;
    let transaction_id = shopper_.pay_and_wait(&no)?;
    Ok((no, transaction_id))
}

/// Runs `script` (which ends by calling `done(value)`) in the page and returns the value.
async fn in_page(b: &Browser, script: &str) -> anyhow::Result<serde_json::Value> {
    Ok(b.client
        .execute_async(
            &format!("const done = arguments[arguments.length - 1]; {script}"),
            vec![],
        )
        .await?)
}

#[tokio::test]
async fn support_finds_an_order_by_transaction_id_and_a_manager_exports_the_filtered_rows(
) -> anyhow::Result<()> {
    // Arrange: three paid orders and an unpaid one
    let server = Server::start()?;
    for (user, role, password) in [
        ("support1", "support", "support password 1\n"),
        ("manager1", "manager", "manager password 1\n"),
    ] {
        server.cli(
            &["user", "add", user, "--role", role, "--password-stdin"],
            password,
        )?;
    }
    let (no, transaction_id) = paid_order(&server, "e2e-orders-shopper-1", 2)?;
    paid_order(&server, "e2e-orders-shopper-2", 1)?;
    paid_order(&server, "e2e-orders-shopper-3", 3)?;
    let unpaid = Shopper::login(&server, "e2e-orders-undecided")?.order(
        2,
        1,
        "e2e-orders-undecided-order",
    )?;
    let browser = Browser::start().await?;
    let b = &browser;

    // Act: support types the transaction_id into the search box
    b.sign_in(&server, "support1", "support password 1", "/orders")
        .await?;
    b.wait_for_text("[data-testid=orders-table]", &no).await?;
    b.fill("#order-search-q", &transaction_id).await?;
    b.click("form[data-testid=order-search] button[type=submit]")
        .await?;

    // Assert: the order's page, its fields and its timeline
    b.wait_for_path(&format!("/orders/{no}")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=transaction-id]", &transaction_id)
        .await?;
    b.wait_for_text("[data-testid=order-status]", "已支付")
        .await?;
    let unifiedorder = b
        .wait_for_text(
            "li[data-kind=api_call][data-marker='/pay/unifiedorder']",
            "统一下单",
        )
        .await?;
    assert!(unifiedorder.contains("SUCCESS"), "{unifiedorder}");
    let note = b
        .wait_for_text(
            "li[data-kind=notification][data-marker=applied]",
            "支付结果通知",
        )
        .await?;
    assert!(note.contains("已处理"), "{note}");
    let order_of_kinds = in_page(
        b,
        "done([...document.querySelectorAll('[data-testid=timeline] li')].map(li => li.dataset.kind));",
    )
    .await?;
    let kinds: Vec<&str> = order_of_kinds
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let pos = |k: &str| kinds.iter().position(|x| *x == k);
    assert!(
        pos("created") < pos("api_call") && pos("api_call") < pos("notification"),
        "oldest first: {kinds:?}"
    );

    // Support files a refund of ¥10 for the customer from the order's page
    b.fill(
        "form[data-testid=order-refund-form] input[name=amount]",
        "10",
    )
    .await?;
    b.fill(
        "form[data-testid=order-refund-form] input[name=reason]",
        "顾客来电：少发一件",
    )
    .await?;
    b.click("form[data-testid=order-refund-form] button[type=submit]")
        .await?;
    b.wait_for_text("[data-testid=refund-filed]", "等待经理审批")
        .await?;
    let out_refund_no = in_page(
        b,
        "done(document.querySelector('[data-testid=refund-filed] .mono').textContent);",
    )
    .await?
    .as_str()
    .unwrap_or_default()
    .to_owned();
    assert!(out_refund_no.starts_with("RF"), "{out_refund_no}");
    b.wait_for_text("li[data-kind=refund_requested]", "顾客来电")
        .await?;
    let (status, planned) = http_json(
        "POST",
        &format!("{}/sim/refunds/{out_refund_no}/outcome", server.sim_base()?),
        None,
        Some(&json!({ "outcome": "SUCCESS", "delay_ms": 300 })),
    )?;
    assert_eq!(status, 202, "{planned}");

    // A manager approves it; the timeline shows the execution and the result
    b.click(".topbar__logout button").await?;
    b.wait_for_path("/login").await?;
    b.sign_in(&server, "manager1", "manager password 1", "/orders")
        .await?;
    let refunds = in_page(
        b,
        "fetch('/api/refunds/list', { method: 'POST' }).then(r => r.json()).then(done);",
    )
    .await?;
    let refund_id = refunds
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["out_refund_no"] == out_refund_no.as_str())
        })
        .and_then(|r| r["id"].as_i64())
        .expect("the filed refund is listed");
    let approved = in_page(
        b,
        &format!(
            "fetch('/api/refunds/approve', {{ method: 'POST', headers: {{ 'content-type': 'application/x-www-form-urlencoded' }}, body: 'id={refund_id}&reason=' + encodeURIComponent('核实无误') }}).then(r => done(r.status));"
        ),
    )
    .await?;
    assert_eq!(approved.as_u64(), Some(200));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        b.client.goto(&server.url(&format!("/orders/{no}"))).await?;
        b.wait_for_hydration().await?;
        let kinds = in_page(
            b,
            "done([...document.querySelectorAll('li[data-kind=refund_outcome]')].map(li => li.textContent).join('|'));",
        )
        .await?;
        if kinds.as_str().is_some_and(|t| t.contains("退款成功")) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the refund never succeeded");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    b.wait_for_text("[data-testid=refunded]", "¥10.00").await?;
    b.wait_for_text("li[data-kind=api_call]", "申请退款")
        .await?;
    // A tall window so the screenshot holds the fields and the whole timeline.
    b.client.set_window_size(1280, 2000).await?;
    b.screenshot("order-detail").await?;
    b.client.set_window_size(1280, 860).await?;

    // The manager's list: every order and the sum; then only the paid ones, exported
    b.client.goto(&server.url("/orders")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=orders-table]", &unpaid)
        .await?;
    b.wait_for_text("[data-testid=order-count]", "4").await?;
    b.screenshot("orders").await?;
    b.click("form[data-testid=order-filter] input[value=PAID]")
        .await?;
    b.click("form[data-testid=order-filter] button[type=submit]")
        .await?;
    b.wait_for_text("[data-testid=order-count]", "2").await?;
    let listed = in_page(
        b,
        "done([...document.querySelectorAll('[data-testid=orders-table] tr[data-order]')].map(tr => tr.dataset.order));",
    )
    .await?;
    let listed: Vec<String> = serde_json::from_value(listed)?;
    assert_eq!(
        listed.len(),
        2,
        "two orders are still PAID (one is partly refunded)"
    );
    assert!(!listed.contains(&no) && !listed.contains(&unpaid));
    let csv = in_page(
        b,
        "const a = document.querySelector('[data-testid=export-csv]');
         fetch(a.href).then(r => r.text().then(t => done({ status: r.status, href: a.getAttribute('href'), disposition: r.headers.get('content-disposition'), body: t })));",
    )
    .await?;
    assert_eq!(csv["status"], 200, "{csv}");
    // The page opened on the last seven days; the export carries exactly that filter.
    let href = csv["href"].as_str().unwrap_or_default();
    assert!(
        href.starts_with("/orders/export.csv?status=PAID&from=") && href.contains("&to="),
        "{href}"
    );
    assert!(csv["disposition"]
        .as_str()
        .is_some_and(|d| d.starts_with("attachment; filename=\"orders-")));
    let body = csv["body"].as_str().unwrap_or_default();
    let exported: Vec<String> = body
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        exported, listed,
        "the CSV holds exactly the listed rows, in order"
    );

    // And the list in English
    b.client.goto(&server.url("/lang/en?next=/orders")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("h1", "Orders").await?;
    b.wait_for_text("[data-testid=order-summary]", "orders")
        .await?;
    b.screenshot("orders-en").await?;
    browser.close().await;
    Ok(())
}
