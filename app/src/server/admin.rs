//! The admin's pages: the audit log, the merchant settings as this server runs them, and the
//! pre-flight check of those settings (admin only).

use leptos::prelude::*;
use paydesk_types::doctor::DoctorReport;

use crate::dto::{AuditList, SettingsSummary};
use crate::error::AppError;

/// Entries per audit page.
pub const AUDIT_PAGE_SIZE: i64 = 50;

/// One page of the audit log, newest first (admin only). Every filter is optional text as
/// it comes from the page's form: `action` a stored action name, `actor` a username,
/// `from`/`to` Shanghai dates (`YYYY-MM-DD`, `to` inclusive), `after` the previous page's
/// cursor.
#[server(endpoint = "audit/list")]
pub async fn list_audit(
    action: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
) -> Result<AuditList, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        use crate::dto::AuditRow;
        use paydesk_core::audit::{self, AuditCursor, AuditFilter};
        use paydesk_core::bodies::clip;

        let non_empty =
            |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let action = non_empty(action);
        if let Some(a) = &action {
            if !audit::ACTIONS.contains(&a.as_str()) {
                return Err(AppError::invalid("action", "unknown action"));
            }
        }
        let day = |field: &str, s: Option<String>| -> Result<Option<i64>, AppError> {
            non_empty(s)
                .map(|d| {
                    paydesk_types::shanghai_date_to_ms(&d)
                        .ok_or_else(|| AppError::invalid(field, "a date as YYYY-MM-DD"))
                })
                .transpose()
        };
        let filter = AuditFilter {
            action,
            actor: non_empty(actor),
            from: day("from", from)?,
            // `to` names the last day shown: up to the start of the next one.
            to: day("to", to)?.map(|t| t + 24 * 3_600_000),
        };
        let after = non_empty(after)
            .map(|c| {
                AuditCursor::decode(&c)
                    .ok_or_else(|| AppError::invalid("after", "not a page cursor"))
            })
            .transpose()?;
        let page = audit::search(&admin.server.db, &filter, after, AUDIT_PAGE_SIZE).await?;
        Ok(AuditList {
            entries: page
                .entries
                .into_iter()
                // Actor, target and detail can hold what a caller typed: one line each.
                .map(|e| AuditRow {
                    id: e.id,
                    created_at: e.created_at,
                    actor: clip(&e.actor),
                    action: e.action,
                    target: e.target.as_deref().map(clip),
                    detail: e.detail.as_deref().map(clip),
                    ip: e.ip,
                })
                .collect(),
            next: page.next.map(|c| c.encode()),
        })
    })
    .await
}

/// The merchant configuration as this server runs it, secrets masked (admin only).
#[server(endpoint = "settings/get")]
pub async fn get_settings() -> Result<SettingsSummary, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let mut summary = admin.server.summary.as_ref().clone();
        let now = paydesk_core::now_ms();
        summary.certificate_days_left = summary
            .certificate
            .as_ref()
            .map(|c| (c.not_after - now).div_euclid(24 * 3_600_000));
        summary.retention.last_run = paydesk_core::retention::last_run(&admin.server.db)
            .await?
            .map(|(finished_at, report)| crate::dto::RetentionRun {
                finished_at,
                rows: report.lines.into_iter().map(|l| (l.name, l.rows)).collect(),
            });
        Ok(summary)
    })
    .await
}

/// Runs the pre-flight checks of `paydesk doctor` from the Settings page (admin only): the
/// merchant configuration against WeChat Pay — in sandbox mode against the built-in
/// simulator, which the report says — moving no money. Its calls go through the server's
/// client, so they are in the outbound-call log. Audited (`doctor.run`); one run at a time
/// (409 while one is under way) and a pause between runs (429 with the seconds to wait).
#[server(endpoint = "settings/doctor")]
pub async fn run_doctor() -> Result<DoctorReport, AppError> {
    super::ssr::as_role(paydesk_types::Role::Admin, |admin| async move {
        let actor = admin.actor().await;
        let server = &admin.server;
        Ok(server.doctor.run(&server.db, &server.wxpay, &actor).await?)
    })
    .await
}
