//! Several instances on PostgreSQL behind Debian's nginx, proven (issue 20): the cluster of
//! `scripts/cluster.sh` (three instances configured from `deploy/paydesk.service`, the proxy
//! from `deploy/nginx.conf.template`, the standalone simulator standing in for WeChat Pay)
//! under shoppers ordering and paying through the proxy, while one instance is killed with
//! SIGKILL and later started again, and then every instance is restarted gracefully
//! (SIGTERM), one after the other.
//!
//! Afterwards every order the simulator saw paid is paid in paydesk exactly once, with the
//! simulator's transaction, and every approved refund was made exactly once at the
//! simulator. A request may fail only if it was in flight when the instance was killed (the
//! simulator resends its callback; a shopper retries); none may fail during the rolling
//! restart, pages included (a signed-in browser fetches a dashboard page through the proxy
//! all along). A browser whose live stream is held by one instance (reached directly) shows
//! the toast of a payment another instance applied, and a browser signed in stays signed
//! in when the instance that served it dies.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context as _};
use paydesk_e2e::{http_json, workspace_root, Browser};
use serde_json::json;

const ADMIN_PASSWORD: &str = "cluster admin password 1";
/// In flight at the SIGKILL: started before it (or within this much after it, on a
/// keep-alive connection nginx had not yet seen closed) and ended after it.
const KILL_GRACE_MS: i64 = 250;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `scripts/cluster.sh up`, running; stopped (`cluster.sh stop`) when dropped.
struct Cluster {
    up: Child,
    state_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn script() -> PathBuf {
        workspace_root().join("scripts/cluster.sh")
    }

    /// Starts the cluster and waits until every instance and the proxy answer.
    fn up() -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let state_file = dir.path().join("cluster.state");
        // A test's settings beside the unit's: faster job ticks, and room in the
        // mini-program throttles for a few shoppers ordering as fast as they can from one
        // address (the throttles have their own tests).
        let env_file = dir.path().join("test.env");
        std::fs::write(
            &env_file,
            "PAYDESK_REFUNDS__TICK_MILLIS=200\n\
             PAYDESK_MP_LIMITS__PER_TOKEN_PER_MINUTE=100000\n\
             PAYDESK_MP_LIMITS__PER_TOKEN_BURST=10000\n\
             PAYDESK_MP_LIMITS__PER_ADDRESS_PER_MINUTE=100000\n\
             PAYDESK_MP_LIMITS__PER_ADDRESS_BURST=10000\n",
        )?;
        let log = std::fs::File::create(dir.path().join("cluster.log"))?;
        let mut cmd = Command::new(Self::script());
        cmd.args(["--state", &state_file.to_string_lossy(), "up"])
            .env("PAYDESK_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PAYDESK_CLUSTER_ENV_FILE", &env_file)
            // WeChat Pay's resends (15 s, 15 s, 30 s, …) and a refund's minute of
            // PROCESSING, a hundred times faster.
            .env("PAYDESK_SIM_TIME_SCALE", "100")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let up = cmd.spawn().context("starting scripts/cluster.sh")?;
        let mut cluster = Cluster {
            up,
            state_file,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if cluster.state().get("CLUSTER_READY").map(String::as_str) == Some("1") {
                return Ok(cluster);
            }
            if let Some(status) = cluster.up.try_wait()? {
                bail!(
                    "scripts/cluster.sh exited ({status}) before the cluster was ready:\n{}",
                    cluster.log_tail()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "the cluster was not ready in 300 s:\n{}",
                cluster.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let log = self
            .state_file
            .parent()
            .map(|d| d.join("cluster.log"))
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The state file's `KEY='value'` lines.
    fn state(&self) -> HashMap<String, String> {
        let text = std::fs::read_to_string(&self.state_file).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (k, v) = line.split_once('=')?;
                let v = v.strip_prefix('\'')?.strip_suffix('\'')?;
                Some((k.to_owned(), v.replace("'\\''", "'")))
            })
            .collect()
    }

    fn get(&self, key: &str) -> anyhow::Result<String> {
        self.state()
            .get(key)
            .cloned()
            .with_context(|| format!("{key} is not in the cluster's state"))
    }

    /// `scripts/cluster.sh <args>` on this cluster; its exit status.
    fn ctl(&self, args: &[&str]) -> anyhow::Result<i32> {
        let out = Command::new(Self::script())
            .args(["--state", &self.state_file.to_string_lossy()])
            .args(args)
            .output()?;
        let code = out.status.code().unwrap_or(-1);
        eprintln!(
            "cluster.sh {}: exit {code}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
        Ok(code)
    }

    /// The last lines of each instance's log and of nginx's error log (for a failure).
    fn diagnose(&self) {
        let state = self.state();
        let mut logs: Vec<(String, String)> = state
            .iter()
            .filter(|(k, _)| k.ends_with("_LOG") || k.as_str() == "PROXY_ERROR_LOG")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        logs.sort();
        for (name, path) in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "---- {name} ({path}), last lines ----\n{}",
                lines[lines.len().saturating_sub(25)..].join("\n")
            );
        }
    }

    /// `psql -At -c sql` on the cluster's database: one line per row, `|` between columns.
    fn sql(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                &self.get("DATABASE_URL")?,
                "-c",
            ])
            .arg(sql)
            .output()
            .context("running psql")?;
        ensure!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        if !matches!(self.up.try_wait(), Ok(Some(_))) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.up.id())])
                .status();
            let _ = self.up.wait();
        }
    }
}

/// What one shopper request came to.
#[derive(Debug, Clone)]
struct Outcome {
    what: String,
    started: i64,
    ended: i64,
    error: Option<String>,
}

/// A shopper of the mini program, through the proxy.
struct Shopper {
    proxy: String,
    sim: String,
    token: String,
}

impl Shopper {
    fn login(proxy: &str, sim: &str, code: &str) -> anyhow::Result<Shopper> {
        let (status, login) = http_json(
            "POST",
            &format!("{proxy}/api/mp/login"),
            None,
            Some(&json!({ "code": code })),
        )?;
        ensure!(status == 200, "login: {status} {login}");
        Ok(Shopper {
            proxy: proxy.to_owned(),
            sim: sim.to_owned(),
            token: login["token"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// Orders `product` and has the simulator pay it; the order number once ordered.
    fn order_and_pay(&self, product: i64, key: &str, record: &dyn Fn(Outcome)) -> Option<String> {
        let started = now_ms();
        let ordered = http_json(
            "POST",
            &format!("{}/api/mp/orders", self.proxy),
            Some(&self.token),
            Some(&json!({
                "items": [{ "product_id": product, "quantity": 1 }],
                "idempotency_key": key,
            })),
        );
        let (no, error) = match ordered {
            Ok((201, order)) => (order["out_trade_no"].as_str().map(str::to_owned), None),
            Ok((status, body)) => (None, Some(format!("{status} {body}"))),
            Err(e) => (None, Some(format!("{e:#}"))),
        };
        record(Outcome {
            what: format!("order {key}"),
            started,
            ended: now_ms(),
            error,
        });
        let no = no?;
        let started = now_ms();
        let paid = http_json(
            "POST",
            &format!("{}/sim/orders/{no}/pay", self.sim),
            None,
            Some(&json!({ "result": "SUCCESS" })),
        );
        let error = match paid {
            Ok((200, _)) => None,
            Ok((status, body)) => Some(format!("{status} {body}")),
            Err(e) => Some(format!("{e:#}")),
        };
        record(Outcome {
            what: format!("pay {no}"),
            started,
            ended: now_ms(),
            error,
        });
        Some(no)
    }

    fn request_refund(&self, no: &str) -> anyhow::Result<String> {
        let (status, refund) = http_json(
            "POST",
            &format!("{}/api/mp/orders/{no}/refund-requests", self.proxy),
            Some(&self.token),
            Some(&json!({ "reason": "集群测试退款" })),
        )?;
        ensure!(status == 201, "refund request for {no}: {status} {refund}");
        Ok(refund["out_refund_no"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

/// `GET url` over a fresh connection; its status (the body is read and dropped).
fn status_of(url: &str) -> anyhow::Result<u16> {
    let rest = url.strip_prefix("http://").context("http:// only")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 16];
    stream.read_exact(&mut head)?;
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")
}

/// The JavaScript page fetcher in the signed-in browser: `/orders` through the proxy every
/// 100 ms until `window.__stopPages` is set; each answer's start, end and status (0: the
/// request failed) in `window.__pages`.
const PAGE_FETCHER: &str = r#"
window.__pages = [];
window.__stopPages = false;
(async () => {
  while (!window.__stopPages) {
    const started = Date.now();
    let status = 0;
    try {
      const r = await fetch('/orders', { redirect: 'manual', cache: 'no-store' });
      await r.text();
      status = r.status;
    } catch (e) { status = 0; }
    window.__pages.push([started, Date.now(), status]);
    await new Promise(r => setTimeout(r, 100));
  }
})();
"#;

/// A new browser with the admin signed in through the proxy at `proxy`, on `path`.
async fn signed_in_through(proxy: &str, path: &str) -> anyhow::Result<Browser> {
    let b = Browser::start().await?;
    b.client.goto(&format!("{proxy}/login?next={path}")).await?;
    b.wait_for_hydration().await?;
    b.fill("input[name=username]", "admin").await?;
    b.fill("input[name=password]", ADMIN_PASSWORD).await?;
    b.click("form[data-testid=login-form] button[type=submit]")
        .await?;
    b.wait_for_path(path).await?;
    b.wait_for_hydration().await?;
    Ok(b)
}

/// The path the browser shows once `url` has loaded.
async fn path_after(b: &Browser, url: &str) -> anyhow::Result<String> {
    b.client.goto(url).await?;
    let now = b.client.current_url().await?;
    Ok(now.path().to_owned())
}

#[tokio::test]
async fn three_instances_behind_nginx_survive_a_kill_and_a_rolling_restart() -> anyhow::Result<()> {
    let cluster = Cluster::up()?;
    let result = scenario(&cluster).await;
    if result.is_err() {
        cluster.diagnose();
    }
    result
}

async fn scenario(cluster: &Cluster) -> anyhow::Result<()> {
    let proxy = cluster.get("PROXY_URL")?;
    let sim = cluster.get("SIM_URL")?;
    let third = cluster.get("INSTANCE_3_URL")?;
    let access_log = cluster.get("PROXY_ACCESS_LOG")?;
    for n in 1..=3 {
        let url = cluster.get(&format!("INSTANCE_{n}_URL"))?;
        ensure!(status_of(&format!("{url}/readyz"))? == 200, "instance {n}");
    }
    ensure!(status_of(&format!("{proxy}/readyz"))? == 200, "the proxy");

    // Arrange: the admin signs in through the proxy and adds the product shoppers buy.
    let admin = signed_in_through(&proxy, "/products").await?;
    admin
        .wait_for_text("form[data-testid=add-product-form]", "")
        .await?;
    admin
        .fill(
            "form[data-testid=add-product-form] input[name=name]",
            "集群拿铁",
        )
        .await?;
    admin
        .fill(
            "form[data-testid=add-product-form] input[name=price]",
            "12.00",
        )
        .await?;
    admin
        .click("form[data-testid=add-product-form] button[type=submit]")
        .await?;
    admin.wait_for_text(".banner--ok", "集群拿铁").await?;
    let (_, catalogue) = http_json("GET", &format!("{proxy}/api/mp/products"), None, None)?;
    let product = catalogue["products"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "集群拿铁"))
        .and_then(|p| p["id"].as_i64())
        .with_context(|| format!("the new product is not sold: {catalogue}"))?;

    // A second browser, signed in through the proxy (the session is the database's), watches
    // the home page live on the third instance, reached directly.
    let watcher = signed_in_through(&proxy, "/").await?;
    watcher.client.goto(&format!("{third}/")).await?;
    watcher.wait_for_hydration().await?;
    ensure!(
        watcher.client.current_url().await?.path() == "/",
        "the session signed in through the proxy is not signed in on the third instance"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Act 1 (no disruption yet): payments through the proxy, each shown by the watcher's
    // stream; nginx spreads the callbacks, so some were applied by another instance.
    let log_before = std::fs::read_to_string(&access_log)?.len();
    let shopper = Shopper::login(&proxy, &sim, "cluster-shopper-0")?;
    let record_nothing = |o: Outcome| {
        if let Some(e) = o.error {
            panic!("{}: {e}", o.what);
        }
    };
    let mut first_paid = Vec::new();
    for k in 0..4 {
        let no = shopper
            .order_and_pay(product, &format!("warm-{k}"), &record_nothing)
            .context("a warm-up order")?;
        watcher
            .wait_for_text("[data-testid=toast-paid]", &no)
            .await
            .with_context(|| format!("the watcher on instance 3 never showed {no}"))?;
        first_paid.push(no);
    }
    let third_port = third.rsplit(':').next().unwrap_or_default().to_owned();
    let callbacks_elsewhere = std::fs::read_to_string(&access_log)?[log_before..]
        .lines()
        .filter(|l| l.contains("/wxpay/notify/payment") && !l.contains(&format!(":{third_port} ")))
        .count();
    ensure!(
        callbacks_elsewhere > 0,
        "every warm-up callback went to instance 3: nothing shows the stream across instances"
    );

    // Refund requests on the warm-up orders, approved just before the SIGKILL below, so
    // refunds are being made while an instance dies.
    let mut refund_nos = Vec::new();
    for no in &first_paid {
        refund_nos.push(shopper.request_refund(no)?);
    }

    // Act 2: shoppers order and pay through the proxy as fast as they can; the admin's
    // browser fetches a dashboard page through the proxy every 100 ms.
    admin.client.execute(PAGE_FETCHER, vec![]).await?;
    let outcomes: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut shoppers = Vec::new();
    for s in 0..4 {
        let (proxy, sim, outcomes, stop) =
            (proxy.clone(), sim.clone(), outcomes.clone(), stop.clone());
        shoppers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            let shopper = Shopper::login(&proxy, &sim, &format!("cluster-shopper-{}", s + 1))?;
            let record = |o: Outcome| outcomes.lock().unwrap().push(o);
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                shopper.order_and_pay(product, &format!("s{s}-{k}"), &record);
                k += 1;
                // Busy, not flat out: the other browser tests share these cores.
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;

    // The refunds approved by the admin (in the browser, through the proxy), then instance 3
    // (the one the watcher's page came from) killed outright.
    // The refund numbers as a SQL list (paydesk's own numbers: no quotes in them).
    let refund_list = refund_nos
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let ids = cluster.sql(&format!(
        "select id from refunds where out_refund_no in ({refund_list})"
    ))?;
    for row in &ids {
        let status = admin
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/api/refunds/approve', { method: 'POST',
                   headers: { 'content-type': 'application/x-www-form-urlencoded' },
                   body: 'id=' + arguments[0] + '&reason=' + encodeURIComponent('集群测试：同意') })
                   .then(r => done(r.status), () => done(0));",
                vec![json!(row[0])],
            )
            .await?;
        ensure!(
            status.as_u64() == Some(200),
            "approving refund {}: {status}",
            row[0]
        );
    }
    let killed_at = now_ms();
    ensure!(cluster.ctl(&["kill", "3"])? == 0, "kill 3");
    tokio::time::sleep(Duration::from_secs(4)).await;

    // The watcher's instance is gone: its session still stands, on whichever instance the
    // proxy picks.
    let path = path_after(&watcher, &format!("{proxy}/orders")).await?;
    ensure!(
        path == "/orders",
        "signed out when its instance died: at {path}"
    );

    // Instance 3 back, then every instance restarted gracefully in turn (SIGTERM, drained,
    // started again, ready before the next) under the same load: a rolling restart.
    ensure!(
        cluster.ctl(&["start-instance", "3"])? == 0,
        "start-instance 3"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restart_from = now_ms();
    for n in ["2", "1", "3"] {
        let code = cluster.ctl(&["restart", n])?;
        ensure!(
            code == 0,
            "restart {n} exited {code} (3: it had to be killed)"
        );
        // nginx counts a refused connection against an instance for fail_timeout (2 s,
        // scripts/nginx-conf.py): the next one goes down after that, as an operator does.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let restart_to = now_ms();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for s in shoppers {
        s.join().expect("a shopper thread panicked")?;
    }
    admin
        .client
        .execute("window.__stopPages = true;", vec![])
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pages = admin
        .client
        .execute("return window.__pages;", vec![])
        .await?;

    // Assert: requests failed only when in flight at the SIGKILL, never in the restart.
    let in_flight_at_kill =
        |started: i64, ended: i64| started <= killed_at + KILL_GRACE_MS && ended >= killed_at;
    let outcomes = outcomes.lock().unwrap().clone();
    let ordered = outcomes
        .iter()
        .filter(|o| o.what.starts_with("order"))
        .count();
    ensure!(ordered > 50, "the shoppers ordered only {ordered} times");
    let failed_at_kill = outcomes.iter().filter(|o| o.error.is_some()).count();
    let bad: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.error.is_some() && !in_flight_at_kill(o.started, o.ended))
        .collect();
    ensure!(
        bad.is_empty(),
        "shopper requests failed outside the SIGKILL (restart {restart_from}..{restart_to}, kill {killed_at}): {bad:?}"
    );
    let pages: Vec<(i64, i64, i64)> = pages
        .as_array()
        .context("the page fetcher's results")?
        .iter()
        .filter_map(|p| Some((p[0].as_i64()?, p[1].as_i64()?, p[2].as_i64()?)))
        .collect();
    ensure!(
        pages.len() > 50,
        "the browser fetched only {} pages",
        pages.len()
    );
    let bad_pages: Vec<&(i64, i64, i64)> = pages
        .iter()
        .filter(|(s, e, status)| *status != 200 && !in_flight_at_kill(*s, *e))
        .collect();
    ensure!(
        bad_pages.is_empty(),
        "dashboard pages failed outside the SIGKILL (restart {restart_from}..{restart_to}): {bad_pages:?}"
    );

    // Assert: every order the simulator saw paid is paid once, with its transaction (the
    // simulator resends callbacks that failed; wait for the last ones).
    let deadline = Instant::now() + Duration::from_secs(90);
    let (paid_at_sim, missing) = loop {
        let (_, orders) = http_json("GET", &format!("{sim}/sim/orders"), None, None)?;
        let paid_at_sim: BTreeMap<String, String> = orders
            .as_array()
            .context("the simulator's orders")?
            .iter()
            .filter(|o| o["state"] == "SUCCESS" || o["state"] == "REFUND")
            .filter_map(|o| {
                Some((
                    o["out_trade_no"].as_str()?.to_owned(),
                    o["transaction_id"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let ours: BTreeMap<String, (String, String)> = cluster
            .sql("select out_trade_no, status, coalesce(transaction_id, '') from orders")?
            .into_iter()
            .map(|r| (r[0].clone(), (r[1].clone(), r[2].clone())))
            .collect();
        let missing: Vec<String> = paid_at_sim
            .iter()
            .filter(|(no, tid)| {
                !ours.get(*no).is_some_and(|(status, t)| {
                    ["PAID", "PARTIALLY_REFUNDED", "REFUNDED"].contains(&status.as_str())
                        && t == *tid
                })
            })
            .map(|(no, _)| no.clone())
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (paid_at_sim, missing);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    ensure!(
        missing.is_empty(),
        "paid at the simulator but not in paydesk: {missing:?}"
    );
    ensure!(
        paid_at_sim.len() > 50,
        "only {} paid orders",
        paid_at_sim.len()
    );
    let applied_twice = cluster.sql(
        "select out_trade_no, count(*) from notifications \
         where kind = 'payment' and verdict = 'applied' \
         group by out_trade_no having count(*) > 1",
    )?;
    ensure!(
        applied_twice.is_empty(),
        "payments applied more than once: {applied_twice:?}"
    );
    let totals = cluster.sql(
        "select count(*), coalesce(sum(total_fee), 0) from orders where paid_at is not null",
    )?;
    ensure!(
        totals[0][0] == paid_at_sim.len().to_string(),
        "paid orders in paydesk {} against {} at the simulator",
        totals[0][0],
        paid_at_sim.len()
    );

    // Assert: each approved refund was made once at the simulator and ended SUCCESS here.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = cluster.sql(&format!(
            "select out_refund_no, status from refunds where out_refund_no in ({refund_list})"
        ))?;
        if done.iter().all(|r| r[1] == "SUCCESS") && done.len() == refund_nos.len() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "approved refunds did not all succeed: {done:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, sim_refunds) = http_json("GET", &format!("{sim}/sim/refunds"), None, None)?;
    let sim_refunds = sim_refunds.as_array().context("the simulator's refunds")?;
    for no in &refund_nos {
        let made = sim_refunds
            .iter()
            .filter(|r| r["out_refund_no"] == no.as_str())
            .count();
        ensure!(
            made == 1,
            "refund {no} was made {made} times at the simulator"
        );
    }
    ensure!(
        sim_refunds.len() == refund_nos.len(),
        "the simulator made {} refunds for {} approved",
        sim_refunds.len(),
        refund_nos.len()
    );
    for no in &first_paid {
        let refunded: i64 = sim_refunds
            .iter()
            .filter(|r| r["out_trade_no"] == no.as_str())
            .filter_map(|r| r["refund_fee"].as_i64())
            .sum();
        ensure!(
            refunded == 1200,
            "{no} refunded {refunded} fen at the simulator"
        );
    }
    eprintln!(
        "cluster: {} shopper requests ({failed_at_kill} failed, all in flight at the SIGKILL), \
         {} pages fetched ({} failed at the SIGKILL), {} orders paid at the simulator and in \
         paydesk, {} refunds made once, {callbacks_elsewhere} warm-up callbacks applied \
         elsewhere than the watcher's instance",
        outcomes.len(),
        pages.len(),
        pages.iter().filter(|p| p.2 != 200).count(),
        paid_at_sim.len(),
        refund_nos.len()
    );
    watcher.close().await;
    admin.close().await;
    Ok(())
}
