//! The Settings page's pre-flight check in a real browser: the admin runs it against the
//! sandbox's built-in simulator and reads the checklist in Chinese; a second click moments
//! later is told to wait.

use paydesk_e2e::{Browser, Server};

#[tokio::test]
async fn admin_runs_the_pre_flight_check_and_reads_the_checklist_in_chinese() -> anyhow::Result<()>
{
    // Arrange
    let server = Server::start()?;
    let browser = Browser::start().await?;
    let b = &browser;
    b.sign_in(&server, "admin", &server.admin_password, "/settings")
        .await?;
    b.wait_for_text("[data-testid=doctor]", "上线前自检")
        .await?;

    // Act
    b.click("[data-testid=doctor-run]").await?;

    // Assert: a real run against the simulator, said so above the checklist
    b.wait_for_text("[data-testid=doctor-verdict]", "全部通过")
        .await?;
    b.wait_for_text("[data-testid=doctor-simulator]", "内置的微信支付模拟器")
        .await?;
    let credentials = b
        .wait_for_text("tr[data-check=credentials][data-verdict=pass]", "商户凭据")
        .await?;
    assert!(credentials.contains("✓ 通过"), "{credentials}");
    assert!(credentials.contains("ORDERNOTEXIST"), "{credentials}");
    b.wait_for_text(
        "tr[data-check='refund channel'][data-verdict=pass]",
        "双向 TLS 接受了我方证书",
    )
    .await?;
    b.wait_for_text("[data-testid=doctor-ran-at]", "北京时间")
        .await?;
    b.screenshot("settings-doctor").await?;

    // Act + Assert: again at once — refused with the wait, the checklist kept
    b.click("[data-testid=doctor-run]").await?;
    b.wait_for_text("[data-testid=doctor] [role=alert]", "操作过于频繁")
        .await?;
    b.wait_for_text("[data-testid=doctor-verdict]", "全部通过")
        .await?;
    browser.close().await;
    Ok(())
}
