//! `paydesk-sim`: the WeChat Pay v2 simulator as a standalone binary (docs/design.md Contract).
//! Flags (and `PAYDESK_SIM_*` environment variables) map one to one onto
//! [`paydesk_sim::SimConfig`]; with no flags it runs with the demo credentials.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use paydesk_sim::{SimConfig, DEFAULT_API_KEY, DEFAULT_APPID, DEFAULT_APP_SECRET, DEFAULT_MCH_ID};
use tracing_subscriber::EnvFilter;

/// A faithful local WeChat Pay API v2 simulator (unifiedorder, orderquery, closeorder,
/// refund over mutual TLS, refundquery, downloadbill, jscode2session) with payment and
/// refund notifications, WeChat's retry schedule, and fault injection.
#[derive(Debug, Parser)]
#[command(name = "paydesk-sim", version)]
struct Cli {
    /// Plain HTTP listener: WeChat Pay API paths, /sns/jscode2session and the /sim/ control API.
    #[arg(long, env = "PAYDESK_SIM_LISTEN", default_value = "127.0.0.1:8480")]
    listen: SocketAddr,
    /// Mutual-TLS listener for /secapi/pay/refund (client certificate required).
    #[arg(long, env = "PAYDESK_SIM_TLS_LISTEN", default_value = "127.0.0.1:8443")]
    tls_listen: SocketAddr,
    /// The backup host's plain listener (like api2.mch.weixin.qq.com): the same paths and
    /// the same orders as --listen, for testing a client's failover (off when unset).
    #[arg(long, env = "PAYDESK_SIM_BACKUP_LISTEN")]
    backup_listen: Option<SocketAddr>,
    /// The backup host's mutual-TLS listener for the refund (needs --backup-listen).
    #[arg(
        long,
        env = "PAYDESK_SIM_BACKUP_TLS_LISTEN",
        requires = "backup_listen"
    )]
    backup_tls_listen: Option<SocketAddr>,
    /// Directory of the generated CA, server and merchant certificates (created on first start).
    #[arg(long, env = "PAYDESK_SIM_CERT_DIR", default_value = "./sim-certs")]
    cert_dir: PathBuf,
    /// Merchant appid.
    #[arg(long, env = "PAYDESK_SIM_APPID", default_value = DEFAULT_APPID)]
    appid: String,
    /// Merchant number (also the PKCS#12 password).
    #[arg(long, env = "PAYDESK_SIM_MCH_ID", default_value = DEFAULT_MCH_ID)]
    mch_id: String,
    /// API v2 key, 32 characters (default: the public documentation key).
    #[arg(long, env = "PAYDESK_SIM_API_KEY", default_value = DEFAULT_API_KEY, hide_default_value = true)]
    api_key: String,
    /// Mini Program AppSecret checked by /sns/jscode2session.
    #[arg(long, env = "PAYDESK_SIM_APP_SECRET", default_value = DEFAULT_APP_SECRET, hide_default_value = true)]
    app_secret: String,
    /// How many times faster than real time the notification retry schedule and refund
    /// processing run (1 = real time, 1000 = the 15 s first retry after 15 ms).
    #[arg(long, env = "PAYDESK_SIM_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Simulated seconds a refund stays PROCESSING before it succeeds on its own.
    #[arg(long, env = "PAYDESK_SIM_REFUND_DELAY_SECS", default_value_t = 60)]
    refund_delay_secs: u64,
    /// Include sign_type in payment notifications (WeChat often omits it).
    #[arg(long, env = "PAYDESK_SIM_NOTIFY_SIGN_TYPE")]
    notify_include_sign_type: bool,
    /// Refund notification URL for refunds requested without notify_url.
    #[arg(long, env = "PAYDESK_SIM_REFUND_NOTIFY_URL")]
    refund_notify_url: Option<String>,
    /// Accept http:// and loopback/private notify URLs, for a paydesk on this machine
    /// (WeChat Pay itself takes only public https:// URLs; so does the simulator without
    /// this flag).
    #[arg(long, env = "PAYDESK_SIM_ALLOW_INSECURE_NOTIFY_URLS")]
    allow_insecure_notify_urls: bool,
    /// Refundable merchant balance in fen (default unlimited); refunds above it get NOTENOUGH.
    #[arg(long, env = "PAYDESK_SIM_BALANCE_FEN")]
    balance_fen: Option<i64>,
    /// Answer business refusals (result_code=FAIL) without sign, as WeChat Pay sometimes does.
    #[arg(long, env = "PAYDESK_SIM_UNSIGNED_BUSINESS_ERRORS")]
    unsigned_business_errors: bool,
}

fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    let tail: String = secret.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{tail} ({n} chars)", "*".repeat(n.saturating_sub(4)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let config = SimConfig {
        listen: cli.listen,
        tls_listen: cli.tls_listen,
        backup_listen: cli.backup_listen,
        backup_tls_listen: cli.backup_tls_listen,
        cert_dir: cli.cert_dir,
        appid: cli.appid,
        mch_id: cli.mch_id,
        api_key: wxpay::ApiKey::new(cli.api_key.clone()),
        app_secret: wxpay::AppSecret::new(cli.app_secret.clone()),
        time_scale: cli.time_scale,
        refund_delay: Duration::from_secs(cli.refund_delay_secs),
        notify_include_sign_type: cli.notify_include_sign_type,
        default_refund_notify_url: cli.refund_notify_url,
        merchant_balance_fen: cli.balance_fen,
        unsigned_business_errors: cli.unsigned_business_errors,
        allow_insecure_notify_urls: cli.allow_insecure_notify_urls,
        ..SimConfig::default()
    };
    if config.allow_insecure_notify_urls {
        // Said by the binary only: the in-process sandbox and the tests opt in by design.
        tracing::warn!("--allow-insecure-notify-urls: http:// and loopback notify URLs are accepted, which WeChat Pay refuses; for a paydesk on this machine only");
    }
    let sim = paydesk_sim::start(config).await?;
    let paths = sim.cert_paths();
    // The one place the credentials are shown: the startup banner, secrets masked.
    println!("paydesk-sim: WeChat Pay v2 simulator");
    println!("  API (http)        {}", sim.http_base_url());
    println!(
        "  refund (mTLS)     {}/secapi/pay/refund",
        sim.tls_base_url()
    );
    if let Some(backup) = sim.backup_http_base_url() {
        println!("  backup API (http) {backup}");
    }
    if let Some(backup) = sim.backup_tls_base_url() {
        println!("  backup refund     {backup}/secapi/pay/refund");
    }
    println!("  control API       {}/sim/", sim.http_base_url());
    println!(
        "  jscode2session    {}/sns/jscode2session",
        sim.http_base_url()
    );
    println!("  appid             {}", sim.appid());
    println!("  mch_id            {}", sim.mch_id());
    println!("  api_key           {}", mask(sim.api_key().expose()));
    println!("  app_secret        {}", mask(sim.app_secret()));
    println!("  time scale        {}x", sim.config().time_scale);
    println!("  CA                {}", paths.ca.display());
    println!("  server cert       {}", paths.server_cert.display());
    println!("  merchant cert     {}", paths.client_cert.display());
    println!("  merchant key      {}", paths.client_key.display());
    println!(
        "  merchant p12      {} (password = mch_id)",
        paths.client_p12.display()
    );
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}
