//! The catalogue in a real browser: the admin sees the demo products, adds one with a yuan
//! price, reprices and withdraws it; every change goes through the server and back.

use paydesk_e2e::{Browser, Server};

/// The current value of the form field matching `css`.
async fn value(b: &Browser, css: &str) -> anyhow::Result<String> {
    let v = b
        .client
        .execute(
            "return document.querySelector(arguments[0]).value",
            vec![css.into()],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn admin_adds_reprices_and_withdraws_a_product() -> anyhow::Result<()> {
    // Arrange: signed in as the printed admin
    let server = Server::start()?;
    let browser = Browser::start().await?;
    let b = &browser;
    b.client.goto(&server.url("/products")).await?;
    b.wait_for_path("/login").await?;
    b.wait_for_hydration().await?;
    b.fill("input[name=username]", "admin").await?;
    b.fill("input[name=password]", &server.admin_password)
        .await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    b.wait_for_path("/products").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("tr[data-product='3']", "3").await?;
    assert_eq!(
        value(b, "tr[data-product='3'] input[name=name]").await?,
        "燕麦拿铁"
    );
    assert_eq!(
        value(b, "tr[data-product='3'] input[name=price]").await?,
        "28.00"
    );

    // Act: add a product at ¥19.90
    b.fill(
        "form[data-testid=add-product-form] input[name=name]",
        "桂花拿铁",
    )
    .await?;
    b.fill(
        "form[data-testid=add-product-form] input[name=price]",
        "19.90",
    )
    .await?;
    b.click("form[data-testid=add-product-form] button[type=submit]")
        .await?;
    b.wait_for_text(".banner--ok", "桂花拿铁 ¥19.90").await?;
    b.wait_for_text("tr[data-product='7']", "7").await?;
    assert_eq!(
        value(b, "tr[data-product='7'] input[name=price]").await?,
        "19.90"
    );
    b.screenshot("products").await?;

    // Act: reprice it to ¥21.50 and take it off sale (the new row is id 7)
    b.fill("tr[data-product='7'] input[name=price]", "21.5")
        .await?;
    b.click("tr[data-product='7'] select[name=active] option[value=false]")
        .await?;
    b.click("tr[data-product='7'] button[type=submit]").await?;

    // Assert
    b.wait_for_text(".banner--ok", "¥21.50").await?;
    b.wait_for_text("tr[data-product='7'].table__row--disabled", "")
        .await?;
    b.screenshot("products-withdrawn").await?;
    // What the mini program now sells (the browser reads the JSON API).
    b.client.goto(&server.url("/api/mp/products")).await?;
    let text = b.wait_for_text("body", "products").await?;
    let catalogue: serde_json::Value = serde_json::from_str(&text)?;
    let ids: Vec<i64> = catalogue["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert!(
        !ids.contains(&7),
        "the mini program no longer sells it: {ids:?}"
    );
    browser.close().await;
    Ok(())
}
