//! The foundation in a real browser: sign in as the printed admin, see the Chinese UI,
//! switch to English, add a staff user, sign in as that user and see the Users page refused
//! by the server; a wrong password shows the generic error and, after the limit, the
//! throttle message. An inline script injected into a signed-in page does not run.

use paydesk_e2e::{Browser, Server};

#[tokio::test]
async fn admin_signs_in_adds_staff_and_staff_is_refused_then_throttled() -> anyhow::Result<()> {
    // Arrange
    let server = Server::start()?;
    let browser = Browser::start().await?;
    let b = &browser;

    // Signed out: any page sends us to the sign-in page, in Chinese.
    b.client.goto(&server.url("/users")).await?;
    b.wait_for_path("/login").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("h1", "登录 paydesk").await?;
    b.screenshot("login").await?;

    // A wrong password: the generic message.
    b.fill("input[name=username]", "admin").await?;
    b.fill("input[name=password]", "definitely wrong").await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    b.wait_for_text(".banner--error", "用户名或密码错误")
        .await?;

    // The printed password works and we land where we were going.
    b.fill("input[name=password]", &server.admin_password)
        .await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    b.wait_for_path("/users").await?;
    b.wait_for_text("h1", "用户管理").await?;
    b.wait_for_text(".nav", "我的账户").await?;
    b.screenshot("users").await?;

    // The page's security policy: its own inline scripts carry its nonce and ran (it
    // hydrated); one injected without the nonce does not run.
    b.wait_for_hydration().await?;
    let injected_ran = b
        .client
        .execute(
            "const s = document.createElement('script'); \
             s.textContent = 'window.__injected = 1'; document.head.appendChild(s); \
             return window.__injected === 1;",
            vec![],
        )
        .await?;
    assert_eq!(
        injected_ran.as_bool(),
        Some(false),
        "an injected inline script ran"
    );

    // Switch to English.
    b.click("a[data-testid=lang-switch]").await?;
    b.wait_for_text("h1", "Users").await?;
    b.wait_for_hydration().await?;
    b.wait_for_text(".topbar", "Sign out").await?;

    // Add a staff user.
    b.fill(
        "form[data-testid=add-user-form] input[name=username]",
        "clerk",
    )
    .await?;
    b.fill(
        "form[data-testid=add-user-form] input[name=password]",
        "clerk password 1",
    )
    .await?;
    b.click("form[data-testid=add-user-form] button[type=submit]")
        .await?;
    b.wait_for_text(".banner--ok", "User added: clerk").await?;
    b.wait_for_text(
        "table[data-testid=users-table] tr[data-username=clerk]",
        "Staff",
    )
    .await?;
    b.screenshot("users-en").await?;

    // Sign out, sign in as the staff user.
    b.click(".topbar__logout button").await?;
    b.wait_for_path("/login").await?;
    b.wait_for_hydration().await?;
    b.fill("input[name=username]", "clerk").await?;
    b.fill("input[name=password]", "clerk password 1").await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    // Signing in without `next` lands on the home page, which staff may see.
    b.wait_for_path("/").await?;
    b.wait_for_text("[data-testid=home-stats]", "Paid today")
        .await?;
    // Staff cannot open the refunds or failures pages: the cards link to neither.
    b.wait_for_hydration().await?;
    let stats = b
        .wait_for_text("[data-testid=home-stats]", "Handled by support and above")
        .await?;
    assert!(
        !stats.contains("Review"),
        "staff offered the refunds page: {stats}"
    );
    b.screenshot("home-staff-en").await?;
    b.client.goto(&server.url("/account")).await?;
    b.wait_for_hydration().await?;
    b.wait_for_text("[data-testid=my-username]", "clerk")
        .await?;
    let nav = b.wait_for_text(".nav", "My account").await?;
    assert!(
        !nav.contains("Users"),
        "staff must not be offered the Users page: {nav}"
    );
    b.screenshot("account-en").await?;

    // Going to /users anyway: the server refuses the data.
    b.client.goto(&server.url("/users")).await?;
    b.wait_for_text("[data-testid=refused]", "the server refused this request")
        .await?;
    b.screenshot("users-refused-for-staff").await?;

    // Sign out; five wrong passwords for clerk, then the throttle message.
    b.click(".topbar__logout button").await?;
    b.wait_for_path("/login").await?;
    b.wait_for_hydration().await?;
    let before = b.completed_requests("/api/auth/login").await?;
    for i in 1..=5 {
        b.fill("input[name=username]", "clerk").await?;
        b.fill("input[name=password]", "wrong password").await?;
        b.click("form[data-testid=login-form] button[type=submit]")
            .await?;
        // Each attempt must reach the server before the next one is typed.
        b.wait_for_requests("/api/auth/login", before + i).await?;
        b.wait_for_text(".banner--error", "Invalid username or password")
            .await?;
    }
    b.fill("input[name=username]", "clerk").await?;
    b.fill("input[name=password]", "clerk password 1").await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    b.wait_for_text(".banner--error", "Too many failed sign-ins. Try again in")
        .await?;
    b.screenshot("login-throttled").await?;

    browser.close().await;
    Ok(())
}
