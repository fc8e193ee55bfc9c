//! The home page's numbers: one call into `paydesk_core::stats` (staff and up).

use leptos::prelude::*;

use crate::dto::HomeStats;
use crate::error::AppError;

/// Today's takings, the success rate, what is waiting, 14 days of revenue and the latest
/// payments (staff and up).
#[server(endpoint = "home/stats")]
pub async fn get_home_stats() -> Result<HomeStats, AppError> {
    super::ssr::as_role(paydesk_types::Role::Staff, |viewer| async move {
        let now = paydesk_core::now_ms();
        let d = paydesk_core::stats::dashboard(&viewer.server.db, now).await?;
        // Yesterday's reconciliation, for those who may open its page.
        let reconciliation = if viewer.user.role.includes(paydesk_types::Role::Manager) {
            use paydesk_core::reconcile;
            let yesterday = paydesk_core::time::day_number(now) - 1;
            let day = reconcile::day_of(&viewer.server.db, yesterday).await?;
            Some(crate::dto::ReconYesterday {
                date: reconcile::day_text(yesterday),
                status: day.as_ref().map(|d| d.status.as_str().to_owned()),
                open: day.as_ref().map_or(0, |d| d.open_count),
                pending: day.as_ref().map_or(0, |d| d.pending_count),
            })
        } else {
            None
        };
        Ok(HomeStats {
            today_start: d.today_start,
            today_paid_count: d.today_paid_count,
            today_paid_fen: d.today_paid_fen,
            today_created_paid: d.today_created_paid,
            today_created_unpaid: d.today_created_unpaid,
            success_permille: d.success_permille(),
            refunds_pending: d.refunds_pending,
            failures_24h: d.failures_24h,
            days: d
                .days
                .iter()
                .map(|day| (day.day_start, day.count, day.amount_fen))
                .collect(),
            latest_paid: d.latest_paid,
            viewer_role: viewer.user.role,
            reconciliation,
        })
    })
    .await
}
