//! The Reconciliation page (对账, managers and admins): the calendar, one day's figures and
//! differences, and the actions — reconcile the day again, 补单 a lost payment, resolve a
//! difference with a note. Each is one call into `paydesk_core::reconcile`, which audits it.

use leptos::prelude::*;

use crate::dto::{ReconCalendar, ReconDayView};
use crate::error::AppError;

/// How many days the calendar shows, up to yesterday.
pub const CALENDAR_DAYS: i64 = 90;

#[cfg(feature = "ssr")]
mod convert {
    use paydesk_core::reconcile::{self, Day, Difference, DifferenceState};

    use crate::dto::{ReconDayCell, ReconDaySummary, ReconDifferenceRow};

    pub fn cell(day: i64, stored: Option<&Day>) -> ReconDayCell {
        ReconDayCell {
            date: reconcile::day_text(day),
            status: stored.map(|d| d.status.as_str().to_owned()),
            open: stored.map_or(0, |d| d.open_count),
            pending: stored.map_or(0, |d| d.pending_count),
        }
    }

    pub fn summary(d: &Day) -> ReconDaySummary {
        ReconDaySummary {
            status: d.status.as_str().to_owned(),
            bill: d.bill.clone(),
            our_paid: (d.our_paid_count, d.our_paid_fen),
            our_refunds: (d.our_refund_count, d.our_refund_fen),
            bill_paid: (d.bill_paid_count, d.bill_paid_fen),
            bill_refunds: (d.bill_refund_count, d.bill_refund_fen_ours),
            settlement_fen: d.bill_settlement_fen,
            fee_fen: d.fee_fen(),
            net_fen: d.net_settlement_fen(),
            not_ours: (d.not_ours_count, d.not_ours_fen),
            open: d.open_count,
            pending: d.pending_count,
            error: d.error.clone(),
            reconciled_at: d.reconciled_at,
        }
    }

    pub fn difference(d: Difference) -> ReconDifferenceRow {
        ReconDifferenceRow {
            id: d.id,
            class: d.class.as_str().to_owned(),
            explain: (d.class.zh().to_owned(), d.class.en().to_owned()),
            can_sync: d.class.offers_sync() && d.state == DifferenceState::Open,
            ref_no: d.ref_no,
            out_trade_no: d.out_trade_no,
            out_refund_no: d.out_refund_no,
            our_fen: d.our_fen,
            their_fen: d.their_fen,
            our_status: d.our_status,
            their_status: d.their_status,
            their_time: d.their_time,
            state: d.state.as_str().to_owned(),
            note: d.note,
            resolved_by: d.resolved_by,
        }
    }
}

/// The Shanghai day number of `YYYY-MM-DD`, refused unless it is within the calendar or
/// today.
#[cfg(feature = "ssr")]
fn parse_day(text: &str) -> Result<i64, AppError> {
    let (start, _) = paydesk_core::time::shanghai_day(text)
        .ok_or_else(|| AppError::invalid("day", "a day is YYYY-MM-DD"))?;
    let day = paydesk_core::time::day_number(start);
    let today = paydesk_core::time::day_number(paydesk_core::now_ms());
    if day > today || day < today - paydesk_core::reconcile::MAX_DAYS_BACK {
        return Err(AppError::invalid(
            "day",
            "a day of the last 90 days, up to today",
        ));
    }
    Ok(day)
}

#[cfg(feature = "ssr")]
fn reconciler(server: &super::ssr::ServerContext) -> paydesk_core::reconcile::Reconciler<'_> {
    paydesk_core::reconcile::Reconciler {
        db: &server.db,
        api: server.wxpay.as_ref(),
        events: &server.events,
        appid: &server.appid,
        refund_policy: &server.refund_policy,
    }
}

/// The last [`CALENDAR_DAYS`] days up to yesterday with where each stands (manager and up).
#[server(endpoint = "reconciliation/calendar")]
pub async fn reconciliation_calendar() -> Result<ReconCalendar, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |viewer| async move {
        use paydesk_core::reconcile;
        let yesterday = paydesk_core::time::day_number(paydesk_core::now_ms()) - 1;
        let first = yesterday - CALENDAR_DAYS + 1;
        let stored = reconcile::days_between(&viewer.server.db, first, yesterday).await?;
        let days = (first..=yesterday)
            .map(|day| convert::cell(day, stored.iter().find(|d| d.day == day)))
            .collect();
        let first_weekday =
            reconcile::date_of(first).map_or(0, |d| d.weekday().number_days_from_monday());
        Ok(ReconCalendar {
            days,
            first_weekday,
        })
    })
    .await
}

/// One day (`YYYY-MM-DD`; empty: yesterday, the day the daily run reconciles): its figures
/// and differences (manager and up).
#[server(endpoint = "reconciliation/day")]
pub async fn reconciliation_day(day: String) -> Result<ReconDayView, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |viewer| async move {
        use paydesk_core::reconcile;
        let n = if day.trim().is_empty() {
            paydesk_core::time::day_number(paydesk_core::now_ms()) - 1
        } else {
            parse_day(&day)?
        };
        let db = &viewer.server.db;
        let (stored, differences) =
            tokio::try_join!(reconcile::day_of(db, n), reconcile::differences(db, n))?;
        Ok(ReconDayView {
            date: reconcile::day_text(n),
            day: stored.as_ref().map(convert::summary),
            differences: differences.into_iter().map(convert::difference).collect(),
        })
    })
    .await
}

/// Fetches the day's bill from WeChat Pay now and compares it again (manager and up;
/// audited). Returns the day's status afterwards.
#[server(endpoint = "reconciliation/run")]
pub async fn run_reconciliation(day: String) -> Result<String, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |manager| async move {
        let n = parse_day(&day)?;
        let actor = manager.actor().await;
        let report =
            paydesk_core::reconcile::reconcile_day_as(&reconciler(&manager.server), n, &actor)
                .await?;
        Ok(report.day.status.as_str().to_owned())
    })
    .await
}

/// 补单: asks WeChat Pay about the order of a "paid there only" difference and applies the
/// payment through the normal path (manager and up; audited). Returns the difference's
/// state afterwards.
#[server(endpoint = "reconciliation/sync")]
pub async fn sync_difference(id: i64) -> Result<String, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |manager| async move {
        let actor = manager.actor().await;
        let d = paydesk_core::reconcile::sync_from_wechat(&reconciler(&manager.server), id, &actor)
            .await?;
        Ok(d.state.as_str().to_owned())
    })
    .await
}

/// Closes a difference with a note (manager and up; audited). Returns its number.
#[server(endpoint = "reconciliation/resolve")]
pub async fn resolve_difference(id: i64, note: String) -> Result<String, AppError> {
    super::ssr::as_role(paydesk_types::Role::Manager, |manager| async move {
        let actor = manager.actor().await;
        let d = paydesk_core::reconcile::resolve(&manager.server.db, id, &note, &actor).await?;
        Ok(d.ref_no)
    })
    .await
}
