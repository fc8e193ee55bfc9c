//! Settings (admin): the merchant configuration as this server runs it — read-only, since
//! it comes from `paydesk.toml` and `PAYDESK_*` variables. Secrets arrive already masked
//! from the server (`SettingsSummary`): the API key as its last four characters and
//! length, the AppSecret as set or not, the alert webhook as its host. Above them, the
//! pre-flight check of that configuration ([`doctor`]).

mod doctor;

use leptos::prelude::*;
use paydesk_types::format_shanghai;

use crate::components::page::{Loaded, PageHeader};
use crate::components::table::{Column, Table};
use crate::dto::{PayEnvironment, RetentionSummary, SettingsSummary};
use crate::i18n::{use_lang, Lang};
use crate::server::admin::get_settings;

crate::messages! {
    /// The settings page's words.
    pub enum SettingsMsg {
        Title => "系统设置", "Settings";
        Intro => "paydesk 当前运行所用的商户配置（只读）。修改请编辑 paydesk.toml 或 PAYDESK_* 环境变量并重启。密钥只显示末四位。", "The merchant configuration paydesk is running with (read-only). To change it, edit paydesk.toml or the PAYDESK_* variables and restart. Secrets show only their last four characters.";
        Environment => "运行环境", "Environment";
        EnvSimulator => "模拟器（内置 WeChat Pay 模拟器，不涉及真实资金）", "Simulator (built-in WeChat Pay simulator, no real money)";
        EnvSandbox => "沙箱 / 测试地址（非微信支付生产环境）", "Sandbox / test endpoint (not WeChat Pay production)";
        EnvProduction => "生产环境（微信支付）", "Production (WeChat Pay)";
        Database => "数据库", "Database";
        Merchant => "商户", "Merchant";
        ApiKey => "API 密钥", "API key";
        Characters => "个字符", "characters";
        AppSecret => "小程序 AppSecret", "Mini program AppSecret";
        Set => "已设置（不显示）", "set (not shown)";
        NotSet => "未设置", "not set";
        SignType => "签名方式（新订单）", "Sign type (new orders)";
        Endpoints => "接口地址", "Endpoints";
        BaseUrl => "API 地址", "API base URL";
        RefundBaseUrl => "退款接口（双向 TLS）", "Refund endpoint (mutual TLS)";
        BackupBaseUrl => "备用域名（故障转移）", "Backup host (failover)";
        RefundBackupBaseUrl => "退款备用域名", "Refund backup host";
        FailoverOff => "关闭（不切换备用域名）", "off (no failover)";
        SandboxSignKey => "沙箱：签名使用 getsignkey 获取的沙箱密钥（不显示），不使用 API 密钥", "Sandbox: messages are signed with the sandbox key from getsignkey (not shown), not the API key";
        LoginBaseUrl => "登录接口（jscode2session）", "Login (jscode2session)";
        NotifyUrl => "支付回调地址", "Payment notify URL";
        RefundNotifyUrl => "退款回调地址", "Refund notify URL";
        Certificate => "商户证书", "Merchant certificate";
        Subject => "主题", "Subject";
        Issuer => "颁发者", "Issuer";
        Serial => "序列号", "Serial";
        ValidFrom => "生效时间", "Valid from";
        ValidUntil => "到期时间", "Valid until";
        NoCertificate => "未配置商户证书：退款无法执行。", "No merchant certificate configured: refunds cannot be executed.";
        UnreadableCertificate => "已配置商户证书，但无法读取：退款将失败，请检查文件。", "A merchant certificate is configured but cannot be read: refunds will fail. Check the files.";
        ExpiresSoonPrefix => "证书将在 ", "The certificate expires in ";
        ExpiresSoonSuffix => " 天后到期，请尽快更换，否则退款将失败。", " days. Renew it soon: refunds stop working when it does.";
        Expired => "证书已过期：退款将失败，请立即更换。", "The certificate has expired: refunds will fail. Renew it now.";
        Alerts => "商户告警", "Merchant alerts";
        WebhookHost => "Webhook 主机", "Webhook host";
        NoAlerts => "未配置（不发送告警）", "not configured (no alerts)";
        Format => "格式", "Format";
        Jobs => "订单与后台任务", "Orders and background jobs";
        OrderExpiry => "订单支付时限", "Order payment window";
        Minutes => "分钟", "minutes";
        SyncJob => "订单同步任务（orderquery / closeorder）", "Order sync job (orderquery / closeorder)";
        RefundJob => "退款任务", "Refund job";
        On => "开启", "on";
        Off => "关闭", "off";
        FirstDelay => "首次查询延迟", "First query after";
        MaxDelay => "最长查询间隔", "Longest wait between queries";
        Tick => "检查间隔", "Checks every";
        RetryBase => "首次重试等待", "First retry after";
        QueryDelay => "首次 refundquery 延迟", "First refundquery after";
        Lease => "租约", "Lease";
        Seconds => "秒", "s";
        Millis => "毫秒", "ms";
        Retention => "数据保留策略", "Retention policy";
        RetentionIntro => "每日任务按下列期限删除过期数据；未列期限的表永久保留（原因见右）。命令 paydesk prune --dry-run 可预览将删除的内容。", "A daily job deletes what has aged out, line by line; tables without an age are kept for good (the reason is given). The command paydesk prune --dry-run shows what would go.";
        RetentionJob => "每日清理任务", "Daily pruning job";
        RunAt => "运行时间（北京时间）", "Runs at (Asia/Shanghai)";
        Line => "数据", "Data";
        Age => "保留期限", "Kept for";
        Days => "天", "days";
        KeptForGood => "永久保留", "kept for good";
        LastRun => "上次运行", "Last run";
        NeverRun => "尚未运行", "not run yet";
        Rows => "行", "rows";
    }
}

/// How a badge names the environment.
pub fn environment_words(env: PayEnvironment, lang: Lang) -> &'static str {
    match env {
        PayEnvironment::Simulator => SettingsMsg::EnvSimulator.text(lang),
        PayEnvironment::Sandbox => SettingsMsg::EnvSandbox.text(lang),
        PayEnvironment::Production => SettingsMsg::EnvProduction.text(lang),
    }
}

/// `/settings`.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let lang = use_lang();
    let settings = Resource::new(|| (), |_| get_settings());
    view! {
        <PageHeader title=SettingsMsg::Title.text(lang) intro=SettingsMsg::Intro.text(lang)/>
        <Loaded resource=settings render=move |s| view! { <SettingsView s lang/> }/>
    }
}

#[component]
fn SettingsView(s: SettingsSummary, lang: Lang) -> impl IntoView {
    let t = |m: SettingsMsg| m.text(lang);
    let on_off = move |on: bool| {
        if on {
            t(SettingsMsg::On)
        } else {
            t(SettingsMsg::Off)
        }
    };
    let env_class = match s.environment {
        PayEnvironment::Production => "badge badge--production",
        _ => "badge badge--sandbox",
    };
    let certificate = match (&s.certificate, s.certificate_configured) {
        (Some(c), _) => {
            let warning = match s.certificate_days_left {
                Some(days) if days < 0 => Some(t(SettingsMsg::Expired).to_owned()),
                Some(days_left) if days_left < 30 => Some(format!(
                    "{}{days_left}{}",
                    t(SettingsMsg::ExpiresSoonPrefix),
                    t(SettingsMsg::ExpiresSoonSuffix)
                )),
                _ => None,
            };
            view! {
                {warning.map(|w| view! { <p class="banner banner--error" data-testid="cert-warning">{w}</p> })}
                <dl class="facts">
                    <dt>{t(SettingsMsg::Subject)}</dt><dd class="mono" data-testid="cert-subject">{c.subject.clone()}</dd>
                    <dt>{t(SettingsMsg::Issuer)}</dt><dd class="mono">{c.issuer.clone()}</dd>
                    <dt>{t(SettingsMsg::Serial)}</dt><dd class="mono" data-testid="cert-serial">{c.serial.clone()}</dd>
                    <dt>{t(SettingsMsg::ValidFrom)}</dt><dd>{format_shanghai(c.not_before)}</dd>
                    <dt>{t(SettingsMsg::ValidUntil)}</dt><dd data-testid="cert-expiry">{format_shanghai(c.not_after)}</dd>
                </dl>
            }
            .into_any()
        }
        (None, true) => {
            view! { <p class="banner banner--error">{t(SettingsMsg::UnreadableCertificate)}</p> }
                .into_any()
        }
        (None, false) => {
            view! { <p class="banner banner--error">{t(SettingsMsg::NoCertificate)}</p> }.into_any()
        }
    };
    let secs = t(SettingsMsg::Seconds);
    let millis = t(SettingsMsg::Millis);
    view! {
        <div class="cards cards--wide" data-testid="settings">
            <doctor::DoctorCard lang/>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Environment)}</h2>
                <p><span class=env_class data-testid="settings-environment">{environment_words(s.environment, lang)}</span></p>
                <dl class="facts">
                    <dt>{t(SettingsMsg::Database)}</dt><dd>{if s.database == "postgres" { "PostgreSQL" } else { "SQLite" }}</dd>
                </dl>
            </section>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Merchant)}</h2>
                <dl class="facts">
                    <dt>"AppID"</dt><dd class="mono" data-testid="settings-appid">{s.appid.clone()}</dd>
                    <dt>"mch_id"</dt><dd class="mono" data-testid="settings-mch-id">{s.mch_id.clone()}</dd>
                    <dt>{t(SettingsMsg::ApiKey)}</dt>
                    <dd><span class="mono" data-testid="settings-api-key">{s.api_key_masked.clone()}</span>
                        <span class="muted">" (" {s.api_key_len} " " {t(SettingsMsg::Characters)} ")"</span></dd>
                    <dt>{t(SettingsMsg::AppSecret)}</dt>
                    <dd>{if s.app_secret_set { t(SettingsMsg::Set) } else { t(SettingsMsg::NotSet) }}</dd>
                    <dt>{t(SettingsMsg::SignType)}</dt><dd class="mono">{s.sign_type.clone()}</dd>
                </dl>
                {s.sandbox_signkey.then(|| view! { <p class="muted" data-testid="settings-sandbox-key">{t(SettingsMsg::SandboxSignKey)}</p> })}
            </section>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Endpoints)}</h2>
                <dl class="facts">
                    <dt>{t(SettingsMsg::BaseUrl)}</dt><dd class="mono">{s.base_url.clone()}</dd>
                    <dt>{t(SettingsMsg::RefundBaseUrl)}</dt><dd class="mono">{s.refund_base_url.clone()}</dd>
                    <dt>{t(SettingsMsg::BackupBaseUrl)}</dt>
                    <dd class="mono" data-testid="settings-backup">{s.backup_base_url.clone().unwrap_or_else(|| t(SettingsMsg::FailoverOff).to_owned())}</dd>
                    <dt>{t(SettingsMsg::RefundBackupBaseUrl)}</dt>
                    <dd class="mono" data-testid="settings-refund-backup">{s.refund_backup_base_url.clone().unwrap_or_else(|| t(SettingsMsg::FailoverOff).to_owned())}</dd>
                    <dt>{t(SettingsMsg::LoginBaseUrl)}</dt><dd class="mono">{s.login_base_url.clone()}</dd>
                    <dt>{t(SettingsMsg::NotifyUrl)}</dt><dd class="mono" data-testid="settings-notify-url">{s.notify_url.clone()}</dd>
                    <dt>{t(SettingsMsg::RefundNotifyUrl)}</dt><dd class="mono">{s.refund_notify_url.clone()}</dd>
                </dl>
            </section>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Certificate)}</h2>
                {certificate}
            </section>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Alerts)}</h2>
                <dl class="facts">
                    <dt>{t(SettingsMsg::WebhookHost)}</dt>
                    <dd class="mono">{s.alerts_webhook_host.clone().unwrap_or_else(|| t(SettingsMsg::NoAlerts).to_owned())}</dd>
                    <dt>{t(SettingsMsg::Format)}</dt><dd class="mono">{s.alerts_format.clone()}</dd>
                </dl>
            </section>
            <section class="card">
                <h2 class="card__title">{t(SettingsMsg::Jobs)}</h2>
                <dl class="facts">
                    <dt>{t(SettingsMsg::OrderExpiry)}</dt><dd>{s.order_expire_minutes} " " {t(SettingsMsg::Minutes)}</dd>
                    <dt>{t(SettingsMsg::SyncJob)}</dt><dd>{on_off(s.sync_enabled)}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::FirstDelay)}</dt><dd>{s.sync_first_delay_seconds} " " {secs}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::MaxDelay)}</dt><dd>{s.sync_max_delay_seconds} " " {secs}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::Tick)}</dt><dd>{s.sync_tick_millis} " " {millis}</dd>
                    <dt>{t(SettingsMsg::RefundJob)}</dt><dd>{on_off(s.refunds_enabled)}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::Tick)}</dt><dd>{s.refunds_tick_millis} " " {millis}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::RetryBase)}</dt><dd>{s.refunds_retry_base_millis} " " {millis}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::QueryDelay)}</dt><dd>{s.refunds_query_delay_seconds} " " {secs}</dd>
                    <dt class="facts__sub">{t(SettingsMsg::Lease)}</dt><dd>{s.refunds_lease_seconds} " " {secs}</dd>
                </dl>
            </section>
            <RetentionCard r=s.retention.clone() lang/>
        </div>
    }
}

/// The retention policy, line by line, and what its last run did.
#[component]
fn RetentionCard(r: RetentionSummary, lang: Lang) -> impl IntoView {
    let t = |m: SettingsMsg| m.text(lang);
    let words = move |zh: &str, en: &str| match lang {
        Lang::Zh => zh.to_owned(),
        Lang::En => en.to_owned(),
    };
    let lines = r
        .lines
        .iter()
        .map(|l| {
            let age = match l.days {
                Some(days) => format!("{days} {}", t(SettingsMsg::Days)),
                None => t(SettingsMsg::KeptForGood).to_owned(),
            };
            view! {
                <tr data-testid="retention-line" data-name=l.name.clone()>
                    <td class="mono">{l.name.clone()}</td>
                    <td>{words(&l.zh, &l.en)}</td>
                    <td>{age}</td>
                </tr>
            }
        })
        .collect_view();
    let last_run = match &r.last_run {
        Some(run) => {
            let rows = run
                .rows
                .iter()
                .map(|(name, n)| format!("{name} {n} {}", t(SettingsMsg::Rows)))
                .collect::<Vec<_>>()
                .join(" · ");
            format!("{} — {rows}", format_shanghai(run.finished_at))
        }
        None => t(SettingsMsg::NeverRun).to_owned(),
    };
    view! {
        <section class="card card--span" data-testid="retention">
            <h2 class="card__title">{t(SettingsMsg::Retention)}</h2>
            <p class="muted">{t(SettingsMsg::RetentionIntro)}</p>
            <dl class="facts">
                <dt>{t(SettingsMsg::RetentionJob)}</dt>
                <dd>{if r.enabled { t(SettingsMsg::On) } else { t(SettingsMsg::Off) }}</dd>
                <dt class="facts__sub">{t(SettingsMsg::RunAt)}</dt><dd class="mono">{r.run_at.clone()}</dd>
                <dt>{t(SettingsMsg::LastRun)}</dt><dd data-testid="retention-last-run">{last_run}</dd>
            </dl>
            <Table columns={[t(SettingsMsg::Line), "", t(SettingsMsg::Age)].map(Column::new)}>{lines}</Table>
        </section>
    }
}
