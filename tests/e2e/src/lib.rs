//! Harness for paydesk's browser tests: starts the already-built `paydesk` binary on a free
//! loopback port with its own SQLite file, and headless Chromium through Debian's
//! chromedriver (nothing is downloaded). Both processes are killed when the handles drop.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use fantoccini::{Client, ClientBuilder, Locator};

/// The environment variable that asks the browser tests to save their screenshots into
/// `docs/screenshots/` (`PAYDESK_SCREENSHOTS=1`, as `scripts/screenshots.sh` sets it).
pub const SCREENSHOTS_ENV: &str = "PAYDESK_SCREENSHOTS";

/// Whether this run saves screenshots: [`SCREENSHOTS_ENV`] is `1`.
pub fn screenshots_wanted() -> bool {
    std::env::var(SCREENSHOTS_ENV).is_ok_and(|v| v == "1")
}

/// The workspace root (this crate lives in `tests/e2e`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn kill_group(child: &mut Child) {
    // The whole process group: killing chromedriver alone leaves Chromium running
    // (docs/build.md). `kill(1)` keeps this crate free of `unsafe`.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn new_process_group(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    cmd.process_group(0);
}

/// A minimal HTTP/1.1 JSON call over loopback (no TLS, no client crate: the browser tests
/// keep one rustls set-up, fantoccini's). Returns the status and the JSON body (`Null` when
/// empty).
pub fn http_json(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    use std::io::{Read as _, Write as _};
    let rest = url
        .strip_prefix("http://")
        .context("http_json takes http:// URLs")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    if let Some(token) = bearer {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&payload);
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let value = if body.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&body).with_context(|| format!("{method} {url}: not JSON: {body}"))?
    };
    Ok((status, value))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A running paydesk server.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The first admin's password as printed on the console.
    pub admin_password: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    bin: PathBuf,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `target/debug/paydesk serve` (or `PAYDESK_BIN`) on an empty database and reads
    /// the admin password it prints. The sandbox's demo history and shoppers are off, and so
    /// are the daily reconciliation (from 10:30 it would fetch a bill on its own) and the
    /// exceptions scan: the tests count what they create.
    pub fn start() -> anyhow::Result<Server> {
        Server::start_with(&[
            ("PAYDESK_DEMO_HISTORY", "off"),
            ("PAYDESK_DEMO_SHOPPERS", "off"),
            ("PAYDESK_RECONCILIATION__ENABLED", "off"),
            ("PAYDESK_EXCEPTIONS__ENABLED", "off"),
        ])
    }

    /// Starts paydesk as `scripts/run.sh` does on a fresh machine: sandbox defaults, demo
    /// history and shoppers included.
    pub fn start_as_newcomer() -> anyhow::Result<Server> {
        Server::start_with(&[])
    }

    /// Starts paydesk on an empty database with these extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> anyhow::Result<Server> {
        let root = workspace_root();
        let bin = std::env::var("PAYDESK_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target/debug/paydesk"));
        if !bin.is_file() {
            bail!("{} is missing: run scripts/build.sh first", bin.display());
        }
        let site = root.join("target/site");
        if !site.join("pkg/paydesk.wasm").is_file() {
            bail!(
                "{} has no pkg/paydesk.wasm: run scripts/build.sh first",
                site.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let database_url = format!("sqlite://{}/paydesk.db", dir.path().display());
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .current_dir(dir.path())
            .env("PAYDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PAYDESK_DATABASE_URL", &database_url)
            .env("PAYDESK_SITE_ROOT", &site)
            .envs(env.iter().copied())
            .env_remove("PAYDESK_ADMIN_PASSWORD")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        new_process_group(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("server stdout")?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("[paydesk] {line}");
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut password = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    kill_group(&mut child);
                    bail!("paydesk did not report that it is listening within 60 s");
                }
            };
            if let Some(p) = line.trim().strip_prefix("password: ") {
                password = Some(p.trim().to_owned());
            }
            if line.contains("listening on") {
                break;
            }
        }
        let Some(admin_password) = password else {
            kill_group(&mut child);
            bail!("paydesk did not print the first admin's password");
        };
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            admin_password,
            lines,
            bin,
            database_url,
            _dir: dir,
        })
    }

    /// The in-process simulator's base URL, as printed at start.
    pub fn sim_base(&self) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .find_map(|l| {
                    let rest = l.split("WeChat Pay simulator at ").nth(1)?;
                    Some(rest.split_whitespace().next()?.to_owned())
                });
            if let Some(url) = found {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("paydesk did not print the simulator's address");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `paydesk ARGS` against this server's database (e.g. `user add`), feeding
    /// `stdin`; fails unless it exits 0.
    pub fn cli(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        use std::io::Write as _;
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("PAYDESK_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        child
            .stdin
            .take()
            .context("cli stdin")?
            .write_all(stdin.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("paydesk {args:?} failed: {}", out.status);
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Sends SIGTERM to the server alone and waits for it to exit; returns its exit code
    /// and everything it printed.
    pub fn terminate(&mut self) -> anyhow::Result<(Option<i32>, Vec<String>)> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                bail!("paydesk did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Let the reader thread drain the last lines.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok((status.code(), lines))
    }

    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A shopper of the mini program, signed in through `POST /api/mp/login` on a [`Server`].
pub struct Shopper<'a> {
    server: &'a Server,
    /// The bearer token paydesk issued.
    pub token: String,
}

impl<'a> Shopper<'a> {
    /// Signs in with the wx.login `code` (the simulator accepts any).
    pub fn login(server: &'a Server, code: &str) -> anyhow::Result<Shopper<'a>> {
        let (status, login) = http_json(
            "POST",
            &server.url("/api/mp/login"),
            None,
            Some(&serde_json::json!({ "code": code })),
        )?;
        anyhow::ensure!(status == 200, "login: {status} {login}");
        let token = login["token"].as_str().unwrap_or_default().to_owned();
        Ok(Shopper { server, token })
    }

    /// Places an order of `quantity` × product `product_id` (NOTPAY); returns its number.
    pub fn order(&self, product_id: i64, quantity: u32, key: &str) -> anyhow::Result<String> {
        let (status, order) = http_json(
            "POST",
            &self.server.url("/api/mp/orders"),
            Some(&self.token),
            Some(&serde_json::json!({
                "items": [{ "product_id": product_id, "quantity": quantity }],
                "idempotency_key": key,
            })),
        )?;
        anyhow::ensure!(status == 201, "order: {status} {order}");
        Ok(order["out_trade_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Has the simulator pay order `no`; its payment notification then reaches paydesk.
    pub fn pay(&self, no: &str) -> anyhow::Result<()> {
        let (status, paid) = http_json(
            "POST",
            &format!("{}/sim/orders/{no}/pay", self.server.sim_base()?),
            None,
            Some(&serde_json::json!({ "result": "SUCCESS" })),
        )?;
        anyhow::ensure!(status == 200, "pay: {status} {paid}");
        Ok(())
    }

    /// Pays order `no` and waits until paydesk has applied the payment notification,
    /// that is until the simulator got paydesk's SUCCESS reply (sent only after the commit).
    /// Waiting on the simulator rather than on `GET /api/mp/orders/{no}` matters: that call
    /// asks orderquery while the order is NOTPAY, and on a slow machine the query can mark
    /// the order paid first, which turns the notification into a duplicate. Returns the
    /// order's transaction_id.
    pub fn pay_and_wait(&self, no: &str) -> anyhow::Result<String> {
        self.pay(no)?;
        let sim = self.server.sim_base()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, attempts) = http_json(
                "GET",
                &format!("{sim}/sim/notifications?out_trade_no={no}"),
                None,
                None,
            )?;
            let acknowledged = attempts.as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["kind"] == "payment" && x["success"] == true)
            });
            if acknowledged {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "paydesk never acknowledged the payment notification of {no}: {attempts}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (status, shown) = http_json(
            "GET",
            &self.server.url(&format!("/api/mp/orders/{no}")),
            Some(&self.token),
            None,
        )?;
        anyhow::ensure!(
            status == 200 && shown["status"] == "PAID",
            "acknowledged but not PAID: {status} {shown}"
        );
        let tx = shown["transaction_id"].as_str().unwrap_or_default();
        anyhow::ensure!(!tx.is_empty(), "paid without transaction_id: {shown}");
        Ok(tx.to_owned())
    }
}

/// Headless Chromium driven through chromedriver.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a fresh headless Chromium session.
    pub async fn start() -> anyhow::Result<Browser> {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        new_process_group(&mut cmd);
        let mut driver = cmd
            .spawn()
            .context("starting chromedriver (scripts/setup.sh test installs it)")?;
        // canonicalize: a profile path with `..` makes Chromium hang (docs/build.md).
        let profile = tempfile::tempdir()?;
        let profile_path = profile.path().canonicalize()?;
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,860", "--lang=zh-CN",
                    format!("--user-data-dir={}", profile_path.display()),
                ]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()?
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    kill_group(&mut driver);
                    return Err(e).context("connecting to chromedriver");
                }
            }
        };
        Ok(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    /// Waits until `css` matches an element whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for el in elements {
                    if let Ok(t) = el.text().await {
                        if t.contains(text) {
                            return Ok(t);
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                // What a person would see, not the markup: the head alone is kilobytes.
                let shown = self
                    .client
                    .execute("return document.body.innerText;", vec![])
                    .await
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let matched = self
                    .client
                    .find_all(Locator::Css(css))
                    .await
                    .map(|e| e.len())
                    .unwrap_or(0);
                let cut: String = shown.chars().take(1500).collect();
                bail!(
                    "no `{css}` containing {text:?} at {url} within 15 s \
                     ({matched} element(s) match `{css}`); the page shows:\n{cut}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until nothing matches `css` (a toast that went away, say).
    pub async fn wait_for_none(&self, css: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match self.client.find_all(Locator::Css(css)).await {
                Ok(found) if found.is_empty() => return Ok(()),
                _ if Instant::now() > deadline => bail!("`{css}` still shown after 15 s"),
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until the current path is `path`.
    pub async fn wait_for_path(&self, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let url = self.client.current_url().await?;
            if url.path() == path {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("expected path {path}, still at {url}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page has hydrated (the wasm module ran and took over the DOM), so
    /// clicks are handled by the app rather than by a plain form post. A page that does not
    /// hydrate fails the test (no reload: a mismatch is a bug, see `app::server::ssr`).
    pub async fn wait_for_hydration(&self) -> anyhow::Result<()> {
        if self.hydrated_within(Duration::from_secs(30)).await? {
            return Ok(());
        }
        let url = self.client.current_url().await?;
        bail!("{url} did not hydrate within 30 s (a hydration mismatch: see the browser console)");
    }

    async fn hydrated_within(&self, limit: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + limit;
        loop {
            let ready = self
                .client
                .execute(
                    "return document.documentElement.dataset.hydrated === 'true'",
                    vec![],
                )
                .await?
                .as_bool()
                .unwrap_or(false);
            if ready {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many requests to a URL containing `fragment` the page has completed (from the
    /// browser's resource timing entries).
    pub async fn completed_requests(&self, fragment: &str) -> anyhow::Result<u64> {
        let script = "return performance.getEntriesByType('resource').filter(e => e.name.includes(arguments[0])).length";
        let n = self
            .client
            .execute(script, vec![serde_json::json!(fragment)])
            .await?;
        Ok(n.as_u64().unwrap_or(0))
    }

    /// Waits until at least `n` requests to `fragment` have completed.
    pub async fn wait_for_requests(&self, fragment: &str, n: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.completed_requests(fragment).await? < n {
            if Instant::now() > deadline {
                bail!("fewer than {n} requests to {fragment} completed within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Types into the input matching `css`, replacing its content.
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let el = self
            .client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))?;
        el.clear().await?;
        el.send_keys(value).await?;
        Ok(())
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding {css}"))?
            .click()
            .await?;
        Ok(())
    }

    /// Signs in through the login form with `next={path}` and waits until `path` has
    /// hydrated.
    pub async fn sign_in(
        &self,
        server: &Server,
        user: &str,
        password: &str,
        path: &str,
    ) -> anyhow::Result<()> {
        self.client
            .goto(&server.url(&format!("/login?next={path}")))
            .await?;
        self.wait_for_hydration().await?;
        self.fill("input[name=username]", user).await?;
        self.fill("input[name=password]", password).await?;
        self.click("form[data-testid=login-form] button[type=submit]")
            .await?;
        self.wait_for_path(path).await?;
        self.wait_for_hydration().await?;
        Ok(())
    }

    /// Saves a PNG screenshot as `docs/screenshots/{name}.png` when this run asks for
    /// screenshots ([`screenshots_wanted`]) and says where; otherwise does nothing. The
    /// README shows these files and git tracks them, so an ordinary test run must not
    /// rewrite them: `scripts/screenshots.sh` refreshes them on purpose.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<Option<PathBuf>> {
        if !screenshots_wanted() {
            return Ok(None);
        }
        let dir = workspace_root().join("docs/screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(Some(path))
    }

    /// Ends the session and stops chromedriver and Chromium.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        kill_group(&mut self.driver);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
