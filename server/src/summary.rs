//! The Settings page's view of this server's configuration ([`app::dto::SettingsSummary`]),
//! built once at start from the settings and the WeChat Pay client as they are actually
//! used, with every secret masked here — the app crate never receives a key, a secret or a
//! private key, only their length and last characters.

use app::dto::{mask_secret, CertificateSummary, PayEnvironment, SettingsSummary};
use secrecy::ExposeSecret as _;

use crate::config::Settings;
use crate::state::PayConfig;

/// Builds the summary. `simulator`: the in-process simulator is in use.
pub fn settings_summary(
    settings: &Settings,
    client: &wxpay::ClientConfig,
    pay: &PayConfig,
    certificate: Option<&wxpay::CertificateInfo>,
    simulator: bool,
    backend: paydesk_core::Backend,
) -> SettingsSummary {
    let ms = paydesk_types::unix_ms;
    SettingsSummary {
        environment: environment(simulator, &client.base_url),
        database: match backend {
            paydesk_core::Backend::Sqlite => "sqlite",
            paydesk_core::Backend::Postgres => "postgres",
        }
        .to_owned(),
        appid: client.appid.clone(),
        mch_id: client.mch_id.clone(),
        api_key_masked: mask_secret(client.api_key.expose()),
        api_key_len: client.api_key.len(),
        app_secret_set: client.app_secret.is_some(),
        sign_type: client.sign_type.as_str().to_owned(),
        base_url: client.base_url.clone(),
        refund_base_url: client
            .refund_base_url
            .clone()
            .unwrap_or_else(|| client.base_url.clone()),
        backup_base_url: client.backup_base_url.clone(),
        // Without its own base the refund shares the API's backup (wxpay::ClientConfig).
        refund_backup_base_url: match &client.refund_base_url {
            Some(_) => client.refund_backup_base_url.clone(),
            None => client.backup_base_url.clone(),
        },
        sandbox_signkey: wxpay::sandbox::SandboxPrefix::of(&client.base_url).is_some(),
        login_base_url: client.login_base_url.clone(),
        notify_url: pay.notify_url.clone(),
        refund_notify_url: pay.refund_notify_url.clone(),
        certificate: certificate.map(|c| CertificateSummary {
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            not_before: ms(c.not_before),
            not_after: ms(c.not_after),
        }),
        // Filled in per request by the settings server function.
        certificate_days_left: None,
        certificate_configured: client.identity.is_some(),
        alerts_webhook_host: settings
            .alerts
            .webhook_url
            .as_ref()
            .and_then(|u| wxpay::url_host(u.expose_secret())),
        alerts_format: settings
            .alerts
            .format
            .clone()
            .unwrap_or_else(|| "wecom".to_owned()),
        order_expire_minutes: settings.order_expire_minutes,
        sync_enabled: settings.sync.enabled,
        sync_first_delay_seconds: settings.sync.first_delay_seconds,
        sync_max_delay_seconds: settings.sync.max_delay_seconds,
        sync_tick_millis: settings.sync.tick_millis,
        refunds_enabled: settings.refunds.enabled,
        refunds_tick_millis: settings.refunds.tick_millis,
        refunds_retry_base_millis: settings.refunds.retry_base_millis,
        refunds_query_delay_seconds: settings.refunds.query_delay_seconds,
        refunds_lease_seconds: settings.refunds.lease_seconds,
        retention: app::dto::RetentionSummary {
            enabled: settings.retention.enabled,
            run_at: settings.retention.run_at.clone(),
            lines: paydesk_core::retention::rules()
                .into_iter()
                .map(|rule| app::dto::RetentionLine {
                    days: rule.days(&settings.retention.policy()),
                    name: rule.name.into(),
                    zh: rule.zh.into(),
                    en: rule.en.into(),
                })
                .collect(),
            last_run: None,
        },
    }
}

/// Simulator when it runs in-process; production only on WeChat Pay's own hosts without
/// the `/sandboxnew` prefix; anything else (the sandbox, a standalone simulator) is a
/// sandbox.
fn environment(simulator: bool, base_url: &str) -> PayEnvironment {
    let base = base_url.trim_end_matches('/');
    if simulator {
        PayEnvironment::Simulator
    } else if base == wxpay::PRODUCTION_BASE_URL || base == wxpay::BACKUP_BASE_URL {
        PayEnvironment::Production
    } else {
        PayEnvironment::Sandbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wechat_production_hosts_are_production() {
        assert_eq!(
            environment(false, "https://api.mch.weixin.qq.com"),
            PayEnvironment::Production
        );
        assert_eq!(
            environment(false, "https://api2.mch.weixin.qq.com/"),
            PayEnvironment::Production
        );
        assert_eq!(
            environment(false, "https://api.mch.weixin.qq.com/sandboxnew"),
            PayEnvironment::Sandbox
        );
        assert_eq!(
            environment(false, "http://127.0.0.1:9000"),
            PayEnvironment::Sandbox
        );
        assert_eq!(
            environment(true, "http://127.0.0.1:9000"),
            PayEnvironment::Simulator
        );
    }

    #[test]
    fn webhook_urls_keep_only_their_host() {
        assert_eq!(
            wxpay::url_host("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secret-key")
                .as_deref(),
            Some("qyapi.weixin.qq.com")
        );
        assert_eq!(
            wxpay::url_host("http://user:pw@hooks.example:8080?k=1").as_deref(),
            Some("hooks.example:8080")
        );
        assert_eq!(wxpay::url_host("not a url"), None);
    }

    #[test]
    fn secrets_are_masked_to_their_last_four_characters() {
        assert_eq!(
            mask_secret("192006250b4c09247ec02edce69f6a2d"),
            "••••••••6a2d"
        );
        assert_eq!(mask_secret("short"), "••••••••");
    }
}
