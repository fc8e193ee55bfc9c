//! The command line (docs/design.md Contract "CLI").
//!
//! ```text
//! paydesk [--config FILE] [serve [--demo-shoppers]]
//! paydesk migrate
//! paydesk user add USERNAME [--role ROLE] [--password-stdin]
//! paydesk user passwd USERNAME [--password-stdin]
//! paydesk user role USERNAME ROLE
//! paydesk user disable USERNAME [--enable]
//! paydesk wxpay explain --key-file F [--sign-type T] < message.xml
//! paydesk seed --orders N [--days D] [--yes-this-is-not-production]
//! paydesk prune [--dry-run]
//! paydesk doctor
//! paydesk reconcile --day YYYY-MM-DD
//! ```

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use paydesk_core::audit::Actor;
use paydesk_core::db::PoolSizes;
use paydesk_core::{users, CoreError, Db, Role, Username};
use secrecy::{ExposeSecret as _, SecretString};

use crate::config::{PayMode, Settings};
use crate::startup::{shutdown_signal, Application, Bootstrap};

/// paydesk: the WeChat Pay merchant back office.
#[derive(Debug, Parser)]
#[command(name = "paydesk", version, about)]
pub struct Cli {
    /// TOML configuration file (default: ./paydesk.toml if present). PAYDESK_* environment
    /// variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// A paydesk command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve {
        /// Simulated shoppers order and pay through /api/mp (sandbox mode only, where they
        /// run by default unless PAYDESK_DEMO_SHOPPERS=off; this flag turns them on anyway).
        #[arg(long)]
        demo_shoppers: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage staff accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// WeChat Pay tools.
    #[command(subcommand)]
    Wxpay(WxpayCommand),
    /// Fill the database with realistic fake order history (customers, orders, refunds,
    /// notifications) without calling WeChat Pay. Sandbox mode only, unless told otherwise.
    Seed {
        /// How many orders.
        #[arg(long, value_name = "N")]
        orders: u64,
        /// Spread over this many days back from now.
        #[arg(long, value_name = "D", default_value_t = 90)]
        days: u32,
        /// Seed even though the simulator is off (the database then looks like a merchant's:
        /// only for a throwaway database).
        #[arg(long)]
        yes_this_is_not_production: bool,
    },
    /// Check the merchant configuration against WeChat Pay without moving money: credentials,
    /// sign type, refund certificate and channel, notify URLs, clock, database, disk.
    /// Exit 0 = every check that applies passed, 1 = one failed, 2 = could not run.
    Doctor,
    /// Reconcile a day with WeChat Pay's trade bill (对账): fetch it, compare it with our
    /// orders and refunds, record the differences, and print each on its own line with its
    /// class and order or refund number. Exit 0 = no unresolved difference remains, 1 = one
    /// does, 2 = the day could not be reconciled (bill not ready, damaged, refused, or an
    /// error). Trades waiting for the next day's bill are listed as pending and do not count.
    Reconcile {
        /// The day, `YYYY-MM-DD` (Asia/Shanghai): any day whose bill WeChat Pay serves (the
        /// last 90 days).
        #[arg(long, value_name = "YYYY-MM-DD")]
        day: String,
    },
    /// Apply the retention policy now (PAYDESK_RETENTION__*): delete what has aged out, per
    /// table. With --dry-run, only print what would go. Exit 0 = done, 1 = error.
    Prune {
        /// Print per table how many rows (and bytes of bodies) would go; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `paydesk wxpay …`.
#[derive(Debug, Subcommand)]
pub enum WxpayCommand {
    /// Explain a message's signature: reads the XML on stdin, prints the diagnosis.
    /// Exit 0 = signature valid, 1 = invalid, 2 = refused as malformed or forbidden XML.
    Explain {
        /// File holding the 32-character API key (never passed on the command line, where
        /// it would land in shell history and `ps`).
        #[arg(long, value_name = "F")]
        key_file: PathBuf,
        /// The sign type the order was created with (MD5 or HMAC-SHA256), when known.
        #[arg(long, value_name = "T")]
        sign_type: Option<String>,
    },
}

/// `paydesk user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a random password is printed once.
    Add {
        /// Username (2–32 of a-z 0-9 _ . -).
        username: String,
        /// staff, support, manager or admin.
        #[arg(long, default_value = "staff")]
        role: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password. Without --password-stdin a random password is printed once.
    Passwd {
        /// Username.
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change an account's role.
    Role {
        /// Username.
        username: String,
        /// staff, support, manager or admin.
        role: String,
    },
    /// Disable an account (or re-enable it with --enable).
    Disable {
        /// Username.
        username: String,
        /// Re-enable instead.
        #[arg(long)]
        enable: bool,
    },
}

/// Parses the command line, runs the command, and turns errors into a message and exit 1.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("paydesk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("paydesk: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    // The signature debugger needs no configuration, database or logging.
    if let Some(Command::Wxpay(WxpayCommand::Explain {
        key_file,
        sign_type,
    })) = &cli.command
    {
        return explain(key_file, sign_type.as_deref());
    }
    if let Some(Command::Doctor) = &cli.command {
        return doctor(cli.config.as_deref()).await;
    }
    let mut settings = Settings::load(cli.config.as_deref())?;
    let one_shot = !matches!(cli.command, None | Some(Command::Serve { .. }));
    crate::telemetry::init(settings.log_format.as_deref() == Some("json"), one_shot);
    match cli.command.unwrap_or(Command::Serve {
        demo_shoppers: false,
    }) {
        Command::Serve { demo_shoppers } => {
            if demo_shoppers {
                settings.demo_shoppers = Some(true);
                settings.validate()?;
            }
            serve(settings).await
        }
        Command::Migrate => {
            let db = connect(&settings).await?;
            println!(
                "paydesk: migrations applied to {}",
                redact_url(&settings.database_url)
            );
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wxpay(WxpayCommand::Explain {
            key_file,
            sign_type,
        }) => explain(&key_file, sign_type.as_deref()),
        Command::User(cmd) => {
            let db = connect(&settings).await?;
            let result = user_command(&db, cmd).await;
            db.close().await;
            result
        }
        Command::Seed {
            orders,
            days,
            yes_this_is_not_production,
        } => seed(&settings, orders, days, yes_this_is_not_production).await,
        Command::Doctor => doctor(cli.config.as_deref()).await,
        Command::Reconcile { day } => match reconcile(&settings, &day).await {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("paydesk reconcile: could not reconcile {day}: {e:#}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Prune { dry_run } => {
            let db = connect(&settings).await?;
            let result = prune(&db, &settings, dry_run).await;
            db.close().await;
            result
        }
    }
}

/// `paydesk doctor`: the checklist on stdout; exit 2 (with the reason on stderr) when it
/// could not run.
async fn doctor(config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let settings = match Settings::load_unchecked(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("paydesk doctor: cannot run: {e:#}");
            return Ok(ExitCode::from(2));
        }
    };
    match crate::doctor::run(&settings).await {
        Ok(lines) => Ok(crate::doctor::report(
            &lines,
            &mut std::io::stdout().lock(),
        )?),
        Err(e) => {
            eprintln!("paydesk doctor: cannot run: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// `paydesk reconcile --day D` (see [`Command::Reconcile`] for the exit codes). In sandbox
/// mode the in-process simulator is started and told what the database holds, as at a
/// server start.
async fn reconcile(settings: &Settings, day_text: &str) -> anyhow::Result<ExitCode> {
    use paydesk_core::reconcile::{self, DayStatus, DifferenceState, Reconciler};
    let (start, _) = paydesk_core::time::shanghai_day(day_text)
        .ok_or_else(|| anyhow::anyhow!("--day must be YYYY-MM-DD, got {day_text:?}"))?;
    let day = paydesk_core::time::day_number(start);
    let db = connect(settings).await?;
    let (merchant, sim, client_config) = crate::startup::merchant_and_simulator(settings).await?;
    let pay = settings.pay_config(settings.listen)?;
    if let Some(sim) = &sim {
        crate::sandbox::restore_simulator(&db, sim, &pay).await?;
    }
    let api_calls = paydesk_core::api_calls::ApiCallRecorder::start(db.clone());
    let client = wxpay::Client::new(client_config)?.with_observer(api_calls.clone());
    let merchant = crate::startup::sandbox_merchant(merchant, &client).await?;
    let events = paydesk_core::events::EventBus::new();
    let policy = crate::jobs::refunds::policy_from(settings, &pay);
    let r = Reconciler {
        db: &db,
        api: &client,
        events: &events,
        appid: &merchant.appid,
        refund_policy: &policy,
    };
    let result = reconcile::reconcile_day_as(&r, day, &Actor::cli()).await;
    api_calls.flush().await;
    db.close().await;
    let report = result.map_err(domain)?;
    let d = &report.day;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "paydesk: reconciliation of {day_text} (Asia/Shanghai): {}, {} open, {} pending",
        d.status.as_str(),
        d.open_count,
        d.pending_count
    )?;
    if let Some(error) = &d.error {
        writeln!(out, "  {error}")?;
    }
    let yuan = |fen: i64| paydesk_types::Fen(fen).to_string();
    writeln!(
        out,
        "  ours:   {} payments {}, {} refunds {}",
        d.our_paid_count,
        yuan(d.our_paid_fen),
        d.our_refund_count,
        yuan(d.our_refund_fen)
    )?;
    if d.bill == "present" || d.bill == "none" {
        writeln!(
            out,
            "  WeChat: {} payments {}, {} refunds {} (our appid); fees {}, net {}; other appids: {} rows {}",
            d.bill_paid_count,
            yuan(d.bill_paid_fen),
            d.bill_refund_count,
            yuan(d.bill_refund_fen_ours),
            d.fee_fen().map_or_else(|| "-".to_owned(), yuan),
            d.net_settlement_fen().map_or_else(|| "-".to_owned(), yuan),
            d.not_ours_count,
            yuan(d.not_ours_fen)
        )?;
    }
    for x in report
        .differences
        .iter()
        .filter(|x| matches!(x.state, DifferenceState::Open | DifferenceState::Pending))
    {
        let number = if x.class.is_refund() {
            format!("out_refund_no={}", x.ref_no)
        } else {
            format!("out_trade_no={}", x.ref_no)
        };
        let amounts = match (x.our_fen, x.their_fen) {
            (Some(o), Some(t)) => format!(" ours {} theirs {}", yuan(o), yuan(t)),
            (Some(o), None) => format!(" ours {}", yuan(o)),
            (None, Some(t)) => format!(" theirs {}", yuan(t)),
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "{} {number} {}{amounts}: {}",
            x.class.as_str(),
            x.state.as_str(),
            x.class.en()
        )?;
    }
    Ok(match d.status {
        DayStatus::Waiting | DayStatus::Failed => ExitCode::from(2),
        _ if d.open_count > 0 => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

/// `paydesk prune [--dry-run]`: the retention policy applied now (or, dry, counted), one line
/// per table; kept tables are listed with their reason.
async fn prune(db: &Db, settings: &Settings, dry_run: bool) -> anyhow::Result<ExitCode> {
    use paydesk_core::retention;
    let policy = settings.retention.policy();
    let now = paydesk_core::now_ms();
    let report = if dry_run {
        retention::preview(db, &policy, now).await?
    } else {
        retention::run(db, &policy, &Actor::cli(), None).await?
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "paydesk: retention {} at {} (Asia/Shanghai){}",
        if dry_run { "dry run" } else { "run" },
        paydesk_types::format_shanghai(now),
        if dry_run { ": nothing was changed" } else { "" }
    )?;
    let verb = if dry_run { "would go" } else { "gone" };
    for rule in retention::rules() {
        match rule.days(&policy) {
            Some(days) => {
                let line = report.lines.iter().find(|l| l.name == rule.name);
                let rows = line.map_or(0, |l| l.rows);
                let bytes = line
                    .and_then(|l| l.bytes)
                    .map(|b| format!(", {b} bytes"))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  {:<24} {rows} rows {verb}{bytes}  ({}; after {days} days)",
                    rule.name, rule.en
                )?;
            }
            None => writeln!(out, "  {:<24} {}", rule.name, rule.en)?,
        }
    }
    writeln!(out, "paydesk: {} rows in all", report.total_rows())?;
    Ok(ExitCode::SUCCESS)
}

/// `paydesk seed`: fake history into the configured database. Refused unless the server
/// would run against the simulator (sandbox mode), because fake orders in a merchant's
/// database would be indistinguishable from real ones; `--yes-this-is-not-production`
/// overrides that for a throwaway database (the benchmark's).
async fn seed(
    settings: &Settings,
    orders: u64,
    days: u32,
    yes_this_is_not_production: bool,
) -> anyhow::Result<ExitCode> {
    if settings.pay_mode() != PayMode::Simulator && !yes_this_is_not_production {
        anyhow::bail!(
            "refusing to seed: the simulator is off, so this may be a merchant's database. \
             Seed a sandbox (PAYDESK_SIMULATOR=on), or add --yes-this-is-not-production for a \
             throwaway database"
        );
    }
    if days == 0 {
        anyhow::bail!("--days must be at least 1");
    }
    let db = connect(settings).await?;
    let started = std::time::Instant::now();
    eprintln!(
        "paydesk: seeding {orders} orders over {days} days into {}",
        redact_url(&settings.database_url)
    );
    let options = paydesk_core::seed::SeedOptions {
        orders,
        days,
        rng_seed: None,
    };
    let report = paydesk_core::seed::seed(&db, options, |done| {
        if done % 100_000 == 0 || done == orders {
            eprintln!(
                "paydesk: {done} orders ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    })
    .await;
    db.close().await;
    let report = report?;
    println!(
        "paydesk: seeded {} orders ({} lines), {} customers, {} refunds, {} notifications in {:.1} s",
        report.orders,
        report.items,
        report.customers,
        report.refunds,
        report.notifications,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(
        &settings.database_url,
        PoolSizes {
            max_connections: 2,
            ..PoolSizes::default()
        },
    )
    .await?;
    db.migrate().await?;
    Ok(db)
}

async fn serve(settings: Settings) -> anyhow::Result<ExitCode> {
    let mode = settings.pay_mode();
    let db_url = redact_url(&settings.database_url);
    let (app, bootstrap) = Application::build(settings).await?;
    let addr = format!("http://127.0.0.1:{}", app.port());
    match bootstrap {
        Bootstrap::AdminGenerated(password) => {
            // Printed once, to the console only: never through tracing (docs/style.md §15).
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "============================================================"
            )?;
            writeln!(
                out,
                " paydesk: first start — created the administrator account"
            )?;
            writeln!(out, "   username: admin")?;
            writeln!(out, "   password: {}", password.expose_secret())?;
            writeln!(
                out,
                " This password is shown only once. Change it under 我的账户 (My account)."
            )?;
            writeln!(
                out,
                "============================================================"
            )?;
            out.flush()?;
        }
        Bootstrap::AdminFromConfig => {
            println!("paydesk: first start — created `admin` with the password from PAYDESK_ADMIN_PASSWORD");
        }
        Bootstrap::Existing => {}
    }
    let mode_text = match mode {
        PayMode::Simulator => "WeChat Pay simulator (sandbox mode)",
        PayMode::Merchant => "WeChat Pay merchant API",
    };
    println!("paydesk: listening on {addr}  database: {db_url}  payments: {mode_text}");
    if let Some(sim) = &app.state().simulator {
        println!(
            "paydesk: WeChat Pay simulator at {} (refunds: {})",
            sim.http_base_url(),
            sim.tls_base_url()
        );
    }
    if let Some(cert) = &app.state().certificate {
        let days = cert.days_left(time::OffsetDateTime::now_utc());
        println!(
            "paydesk: merchant certificate {} valid until {} ({days} days){}",
            cert.subject,
            cert.not_after.date(),
            if days < 30 {
                "  WARNING: renew it soon, refunds stop when it expires"
            } else {
                ""
            }
        );
    }
    tracing::info!(port = app.port(), "paydesk started");
    app.run_until(shutdown_signal()).await?;
    println!("paydesk: stopped");
    Ok(ExitCode::SUCCESS)
}

fn explain(key_file: &std::path::Path, sign_type: Option<&str>) -> anyhow::Result<ExitCode> {
    use std::io::Read as _;
    let key = wxpay::ApiKey::from_file(key_file)
        .with_context(|| format!("reading the API key from {}", key_file.display()))?;
    let expected = sign_type
        .map(|t| {
            t.parse::<wxpay::SignType>()
                .map_err(|e| anyhow::anyhow!("--sign-type: {e}"))
        })
        .transpose()?;
    let mut body = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut body)
        .context("reading the message from stdin")?;
    let explanation = wxpay::explain(&body, &key, expected);
    println!("{explanation}");
    Ok(ExitCode::from(
        u8::try_from(explanation.exit_code()).unwrap_or(2),
    ))
}

fn parse_username(s: &str) -> anyhow::Result<Username> {
    Username::parse(s).map_err(|e| anyhow::anyhow!("username {s:?}: {e}"))
}

fn parse_role(s: &str) -> anyhow::Result<Role> {
    s.parse::<Role>().map_err(|e| anyhow::anyhow!("{e}"))
}

fn read_password(from_stdin: bool) -> anyhow::Result<(SecretString, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        Ok((SecretString::from(line), false))
    } else {
        Ok((
            SecretString::from(paydesk_core::password::generate(16)),
            true,
        ))
    }
}

async fn find_user(db: &Db, username: &str) -> anyhow::Result<users::User> {
    let name = parse_username(username)?;
    users::find(db, &name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {name}"))
}

fn domain(e: CoreError) -> anyhow::Error {
    match e {
        CoreError::Invalid { field, message, .. } => anyhow::anyhow!("{field}: {message}"),
        CoreError::Forbidden(reason) => anyhow::anyhow!("refused: {reason}"),
        CoreError::Conflict(reason) => anyhow::anyhow!("refused: {reason}"),
        CoreError::NotFound => anyhow::anyhow!("not found"),
        other => anyhow::Error::new(other),
    }
}

async fn user_command(db: &Db, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::cli();
    match cmd {
        UserCommand::Add {
            username,
            role,
            password_stdin,
        } => {
            let name = parse_username(&username)?;
            let role = parse_role(&role)?;
            let (password, generated) = read_password(password_stdin)?;
            let shown = generated.then(|| password.expose_secret().to_owned());
            users::create(db, &actor, &name, password, role)
                .await
                .map_err(domain)?;
            println!("created {name} ({role})");
            if let Some(p) = shown {
                println!("password (shown once): {p}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let user = find_user(db, &username).await?;
            let (password, generated) = read_password(password_stdin)?;
            let shown = generated.then(|| password.expose_secret().to_owned());
            users::reset_password(db, &actor, user.id, password)
                .await
                .map_err(domain)?;
            println!("password changed for {}", user.username);
            if let Some(p) = shown {
                println!("password (shown once): {p}");
            }
        }
        UserCommand::Role { username, role } => {
            let user = find_user(db, &username).await?;
            let role = parse_role(&role)?;
            let user = users::set_role(db, &actor, user.id, role)
                .await
                .map_err(domain)?;
            println!("{} is now {}", user.username, user.role);
        }
        UserCommand::Disable { username, enable } => {
            let user = find_user(db, &username).await?;
            let user = users::set_disabled(db, &actor, user.id, !enable)
                .await
                .map_err(domain)?;
            println!(
                "{} is now {}",
                user.username,
                if user.is_active() {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A database URL without its password, for printing.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_printed() {
        assert_eq!(
            redact_url("postgres://pay:s3cret@db:5432/paydesk"),
            "postgres://pay:***@db:5432/paydesk"
        );
        assert_eq!(
            redact_url("sqlite://data/paydesk.db"),
            "sqlite://data/paydesk.db"
        );
    }

    #[test]
    fn cli_parses_the_contract_commands() {
        let cli =
            Cli::try_parse_from(["paydesk", "user", "add", "alice", "--role", "manager"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::User(UserCommand::Add { .. }))
        ));
        let cli = Cli::try_parse_from(["paydesk"]).unwrap();
        assert!(cli.command.is_none());
        assert!(Cli::try_parse_from(["paydesk", "user", "disable", "bob", "--enable"]).is_ok());
    }
}
