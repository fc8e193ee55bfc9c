//! Home: today's takings and success rate, what is waiting for someone, 14 days of revenue
//! as a server-rendered SVG chart, and the latest payments. Updates in place when a payment
//! arrives, a callback is refused or a refund changes (the live stream), without a reload.

use leptos::prelude::*;
use paydesk_types::{format_shanghai, format_shanghai_date, Fen, PaidOrder, Role};

use crate::components::live::use_live;
use crate::components::page::{Loaded, PageHeader};
use crate::components::status::StatusBadge;
use crate::components::table::{Column, Table};
use crate::dto::HomeStats;
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::home::get_home_stats;

crate::messages! {
    /// The home page's words.
    pub enum HomeMsg {
        Title => "概览", "Home";
        Intro => "今天的收款与待处理事项，随新支付实时更新。", "Today's takings and what needs attention, updated live as payments arrive.";
        TodayPaid => "今日收款", "Paid today";
        GrossNote => "按支付时间（北京时间今日 0 点起）统计，未扣除退款。", "By time paid, since 00:00 today China time; before refunds.";
        SuccessRate => "今日支付成功率", "Payment success rate today";
        SuccessDefinition => "今日创建且已结束的订单中，已支付的比例：已支付 ÷（已支付 + 已关闭 + 支付失败）；待支付的订单不计入。", "Of today's orders that have ended, the share paid: paid ÷ (paid + closed + payment failed); orders still awaiting payment are not counted.";
        NoEndedOrders => "今日尚无已结束的订单", "No order has ended today yet";
        PendingRefunds => "待审批退款", "Refunds awaiting approval";
        ToRefunds => "去审批", "Review";
        ForSupport => "由客服及以上角色处理", "Handled by support and above";
        Failures => "24 小时验签失败", "Verification failures, last 24 h";
        FailuresNote => "被拒绝的回调（应答 FAIL）", "Callbacks refused (answered FAIL)";
        ToFailures => "查看原因", "See why";
        Reconciliation => "昨日对账", "Yesterday's reconciliation";
        ReconMatched => "✓ 已平账", "✓ Matched";
        ReconOpen => "项差异待处理", "differences to resolve";
        ReconPending => "待次日账单", "waiting for the next bill";
        ReconWaiting => "账单未就绪", "bill not ready yet";
        ReconFailed => "对账失败", "failed";
        ReconNotRun => "尚未对账", "not reconciled yet";
        ToReconciliation => "查看对账", "Open reconciliation";
        Chart => "近 14 天收款", "Revenue, last 14 days";
        ChartNote => "按北京时间自然日，未扣除退款；悬停查看每天的金额与笔数。", "Per China-time day, before refunds; hover a bar for its amount and count.";
        Latest => "最新支付", "Latest payments";
        NoPayments => "还没有已支付的订单。", "No paid orders yet.";
        PaidAt => "支付时间", "Paid at";
        OrderNo => "商户订单号", "Order number";
        Item => "商品", "Item";
        Amount => "金额", "Amount";
        Status => "状态", "Status";
    }
}

/// `/`.
#[component]
pub fn HomePage() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    // Each payment, closed order, refused callback or refund change refetches in place; the
    // `<Transition>` keeps the old numbers on screen while the new ones load.
    let stats = Resource::new(
        move || {
            (
                live.paid.get(),
                live.closed.get(),
                live.rejected.get(),
                live.refunds.get(),
            )
        },
        |_| get_home_stats(),
    );
    view! {
        <PageHeader title=HomeMsg::Title.text(lang) intro=HomeMsg::Intro.text(lang)/>
        <Loaded resource=stats render=move |s| view! { <Home s lang/> }/>
    }
}

#[component]
fn Home(s: HomeStats, lang: Lang) -> impl IntoView {
    let rate = match s.success_permille {
        Some(p) => format!("{}.{}%", p / 10, p % 10),
        None => "—".to_owned(),
    };
    let rate_detail = match s.success_permille {
        Some(_) => format!(
            "{} / {}",
            s.today_created_paid,
            s.today_created_paid + s.today_created_unpaid
        ),
        None => HomeMsg::NoEndedOrders.text(lang).to_owned(),
    };
    // Staff cannot open the refunds or failures pages: no links to a refusal.
    let support = s.viewer_role.includes(Role::Support);
    let to = move |href: &'static str, label: HomeMsg| {
        if support {
            view! { <a href=href>{label.text(lang)} " →"</a> }.into_any()
        } else {
            view! { <span class="stat__muted">{HomeMsg::ForSupport.text(lang)}</span> }.into_any()
        }
    };
    view! {
        <div class="stats" data-testid="home-stats">
            <section class="stat">
                <h2 class="stat__label">{HomeMsg::TodayPaid.text(lang)}</h2>
                <p class="stat__value" data-testid="today-paid">{Fen(s.today_paid_fen).display_yuan()}</p>
                <p class="stat__sub"><span data-testid="today-count">{s.today_paid_count}</span> " " {payments_word(s.today_paid_count, lang)}</p>
                <p class="stat__note">{HomeMsg::GrossNote.text(lang)}</p>
            </section>
            <section class="stat">
                <h2 class="stat__label">{HomeMsg::SuccessRate.text(lang)}</h2>
                <p class="stat__value" data-testid="success-rate">{rate}</p>
                <p class="stat__sub">{rate_detail}</p>
                <p class="stat__note">{HomeMsg::SuccessDefinition.text(lang)}</p>
            </section>
            <section class="stat" class:stat--attention={s.refunds_pending > 0}>
                <h2 class="stat__label">{HomeMsg::PendingRefunds.text(lang)}</h2>
                <p class="stat__value" data-testid="pending-refunds">{s.refunds_pending}</p>
                <p class="stat__sub">{to("/refunds", HomeMsg::ToRefunds)}</p>
            </section>
            <section class="stat" class:stat--alarm={s.failures_24h > 0}>
                <h2 class="stat__label">{HomeMsg::Failures.text(lang)}</h2>
                <p class="stat__value" data-testid="failures-24h">{s.failures_24h}</p>
                <p class="stat__sub">{to("/failures", HomeMsg::ToFailures)}</p>
                <p class="stat__note">{HomeMsg::FailuresNote.text(lang)}</p>
            </section>
            {s.reconciliation.clone().map(|r| view! { <ReconCard r lang/> })}
        </div>
        <section class="card">
            <h2 class="card__title">{HomeMsg::Chart.text(lang)}</h2>
            <RevenueChart days=s.days.clone() lang/>
            <p class="page__note">{HomeMsg::ChartNote.text(lang)}</p>
        </section>
        <section class="card">
            <h2 class="card__title">{HomeMsg::Latest.text(lang)}</h2>
            <LatestPaid rows=s.latest_paid lang/>
        </section>
    }
}

/// Yesterday's reconciliation (managers and admins).
#[component]
fn ReconCard(r: crate::dto::ReconYesterday, lang: Lang) -> impl IntoView {
    let (value, sub) = match r.status.as_deref() {
        Some("matched") => (HomeMsg::ReconMatched.text(lang).to_owned(), String::new()),
        Some("differences") => (r.open.to_string(), HomeMsg::ReconOpen.text(lang).to_owned()),
        Some("pending") => (
            r.pending.to_string(),
            HomeMsg::ReconPending.text(lang).to_owned(),
        ),
        Some("waiting") => ("◷".to_owned(), HomeMsg::ReconWaiting.text(lang).to_owned()),
        Some(_) => ("!".to_owned(), HomeMsg::ReconFailed.text(lang).to_owned()),
        None => ("—".to_owned(), HomeMsg::ReconNotRun.text(lang).to_owned()),
    };
    let alarm = matches!(r.status.as_deref(), Some("differences" | "failed"));
    view! {
        <section class="stat" class:stat--alarm=alarm data-testid="home-reconciliation">
            <h2 class="stat__label">{HomeMsg::Reconciliation.text(lang)} " · " {r.date.clone()}</h2>
            <p class="stat__value">{value}</p>
            <p class="stat__sub">{sub} " " <a href=format!("/reconciliation?day={}", r.date)>{HomeMsg::ToReconciliation.text(lang)} " →"</a></p>
        </section>
    }
}

/// "笔", "payment" or "payments" after a count.
fn payments_word(n: i64, lang: Lang) -> &'static str {
    match (lang, n) {
        (Lang::Zh, _) => "笔",
        (Lang::En, 1) => "payment",
        (Lang::En, _) => "payments",
    }
}

/// The chart's geometry (SVG user units).
const W: f64 = 960.0;
const H: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

/// The smallest 1, 2 or 5 × 10ⁿ fen step such that four steps cover `max` (at least ¥1).
fn axis_step(max_fen: i64) -> i64 {
    let mut magnitude = 100i64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if step * 4 >= max_fen {
                return step;
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// An axis label: whole yuan, with 万 (or k) for large amounts.
fn axis_label(fen: i64, lang: Lang) -> String {
    let yuan = fen / 100;
    match lang {
        Lang::Zh if yuan >= 10_000 && yuan % 10_000 == 0 => format!("¥{}万", yuan / 10_000),
        Lang::Zh if yuan >= 10_000 => format!("¥{:.1}万", yuan as f64 / 10_000.0),
        Lang::En if yuan >= 1_000 && yuan % 1_000 == 0 => format!("¥{}k", yuan / 1_000),
        Lang::En if yuan >= 1_000 => format!("¥{:.1}k", yuan as f64 / 1_000.0),
        _ => format!("¥{yuan}"),
    }
}

/// Fourteen bars, one per Shanghai day, with the y axis in yuan and the date under each;
/// each bar's `<title>` (shown on hover) gives the day, amount and count. A day without
/// payments is a flat mark on the axis, so gaps are visible as days.
#[component]
fn RevenueChart(days: Vec<(i64, i64, i64)>, lang: Lang) -> impl IntoView {
    let max = days.iter().map(|d| d.2).max().unwrap_or(0);
    let step = axis_step(max);
    let top_value = step * 4;
    let plot_h = H - TOP - BOTTOM;
    let plot_w = W - LEFT - RIGHT;
    let y = move |fen: i64| TOP + plot_h - plot_h * fen as f64 / top_value as f64;
    let slot = plot_w / days.len().max(1) as f64;
    let grid = (0..=4)
        .map(|i| {
            let v = step * i;
            let gy = y(v);
            view! {
                <line class="chart__grid" x1=LEFT x2=W - RIGHT y1=gy y2=gy/>
                <text class="chart__axis" x=LEFT - 8.0 y=gy + 4.0 text-anchor="end">{axis_label(v, lang)}</text>
            }
        })
        .collect_view();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, &(day_start, count, fen))| {
            let x = LEFT + slot * i as f64 + slot * 0.18;
            let bw = slot * 0.64;
            let date = format_shanghai_date(day_start);
            let label = date.get(5..).unwrap_or(&date).to_owned();
            let title = format!("{date} · {} · {count} {}", Fen(fen).display_yuan(), payments_word(count, lang));
            let (by, bh) = if fen > 0 {
                let by = y(fen);
                (by, (TOP + plot_h - by).max(1.0))
            } else {
                (TOP + plot_h - 2.0, 2.0)
            };
            let class = if fen > 0 { "chart__bar" } else { "chart__bar chart__bar--zero" };
            view! {
                <g class="chart__day" data-day=date.clone() data-fen=fen data-count=count>
                    <title>{title}</title>
                    // A full-height transparent target, so even an empty day shows its title.
                    <rect class="chart__hit" x=LEFT + slot * i as f64 y=TOP width=slot height=plot_h/>
                    <rect class=class x=x y=by width=bw height=bh rx=2/>
                    <text class="chart__axis" x=x + bw / 2.0 y=H - 10.0 text-anchor="middle">{label}</text>
                </g>
            }
        })
        .collect_view();
    let summary = format!(
        "{}: {}",
        HomeMsg::Chart.text(lang),
        days.iter()
            .map(|d| format!("{} {}", format_shanghai_date(d.0), Fen(d.2).display_yuan()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    view! {
        <svg class="chart" viewBox=format!("0 0 {W} {H}") role="img" aria-label=summary data-testid="revenue-chart"
            preserveAspectRatio="xMidYMid meet">
            {grid}
            <line class="chart__baseline" x1=LEFT x2=W - RIGHT y1=TOP + plot_h y2=TOP + plot_h/>
            {bars}
        </svg>
    }
}

#[component]
fn LatestPaid(rows: Vec<PaidOrder>, lang: Lang) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="empty" data-testid="no-payments">{HomeMsg::NoPayments.text(lang)}</p> }.into_any();
    }
    let body = rows
        .into_iter()
        .map(|o| {
            let href = format!("/orders/{}", o.out_trade_no);
            view! {
                <tr class="table__row" data-order=o.out_trade_no.clone()>
                    <td class="table__time">{format_shanghai(o.paid_at)}</td>
                    <td class="mono"><a href=href>{o.out_trade_no.clone()}</a></td>
                    <td>{o.description}</td>
                    <td class="table__money">{Fen(o.total_fee).display_yuan()}</td>
                    <td><StatusBadge status=o.status/></td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Column::new(HomeMsg::PaidAt.text(lang)),
        Column::new(HomeMsg::OrderNo.text(lang)),
        Column::new(HomeMsg::Item.text(lang)),
        Column::money(HomeMsg::Amount.text(lang)),
        Column::new(HomeMsg::Status.text(lang)),
    ];
    view! {
        <Table columns testid="latest-paid">{body}</Table>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_covers_the_largest_day_in_round_steps() {
        assert_eq!(axis_step(0), 100);
        assert_eq!(axis_step(350), 100);
        assert_eq!(axis_step(401), 200);
        assert_eq!(axis_step(1_234_567), 500_000);
        assert!(axis_step(987_654_321) * 4 >= 987_654_321);
    }

    #[test]
    fn axis_labels_are_whole_yuan_with_wan_in_chinese() {
        assert_eq!(axis_label(50_000, Lang::Zh), "¥500");
        assert_eq!(axis_label(2_000_000, Lang::Zh), "¥2万");
        assert_eq!(axis_label(2_500_000, Lang::Zh), "¥2.5万");
        assert_eq!(axis_label(2_000_000, Lang::En), "¥20k");
    }
}
