//! Reconciliation (对账, managers and admins): a calendar of the last 90 days, each marked
//! ✓ matched, ✗ with its open differences, pending, waiting for the bill, or failed; and the
//! chosen day (`?day=YYYY-MM-DD`, yesterday by default) with both sides' figures, its differences (each linking to
//! the order), and the actions: reconcile again from WeChat Pay, 补单, resolve with a note,
//! and the differences as CSV. The forms are `ActionForm`s (they work before hydration).

use leptos::prelude::*;
use paydesk_types::{format_shanghai, Fen};

use crate::components::filtered_list::query_param;
use crate::components::form::{result_line, OkBanner};
use crate::components::page::{Loaded, PageHeader};
use crate::components::status::{Badge, Tone};
use crate::dto::{ReconCalendar, ReconDayCell, ReconDaySummary, ReconDayView, ReconDifferenceRow};
use crate::i18n::{use_lang, Lang};
use crate::server::reconcile::{
    reconciliation_calendar, reconciliation_day, ResolveDifference, RunReconciliation,
    SyncDifference,
};

crate::messages! {
/// The reconciliation page's words.
pub enum ReconMsg {
    Title => "对账", "Reconciliation";
    Intro => "每天 10:30 起自动下载微信支付前一日的交易账单，与本系统的订单和退款逐笔核对（按商户订单号、退款单号，精确到分）。", "From 10:30 each day WeChat Pay's bill of the day before is fetched and checked against our orders and refunds, one by one (by order and refund number, to the fen).";
    Calendar => "最近 90 天", "The last 90 days";
    Matched => "已平账", "Matched";
    Differences => "有差异", "Differences";
    Pending => "待次日账单", "Waiting for the next bill";
    Waiting => "账单未就绪", "Bill not ready";
    Failed => "对账失败", "Failed";
    NotRun => "未对账", "Not reconciled";
    DayTitle => "对账明细", "Reconciliation of";
    NeverRun => "这一天还没有对账。", "This day has not been reconciled yet.";
    Run => "从微信下载账单并对账", "Fetch the bill from WeChat Pay and reconcile";
    RunHint => "重新下载这一天的账单并重新核对；已处理的差异及其说明会保留。", "Downloads the day's bill again and compares again; resolved differences keep their notes.";
    RunDone => "对账完成，结果：", "Reconciled. Result: ";
    Figures => "双方合计", "Both sides";
    Ours => "本系统", "paydesk";
    Theirs => "微信支付账单", "WeChat Pay's bill";
    Payments => "收款", "Payments";
    Refunds => "退款", "Refunds";
    Fees => "手续费", "Fees";
    Net => "应结算金额（扣除退款和手续费）", "Net settlement (after refunds and fees)";
    Settlement => "应结订单总金额", "Settlement total";
    NotOurs => "同一商户号下其他 appid 的交易（不计入）", "Trades of other appids on the merchant number (not ours)";
    NoBill => "微信支付：这一天没有交易（No Bill Exist）", "WeChat Pay: no trades that day (No Bill Exist)";
    Count => "笔", "×";
    Diffs => "差异", "Differences";
    NoDiffs => "没有差异。", "No differences.";
    Class => "差异", "Difference";
    Number => "单号", "Number";
    OurSide => "我方", "Ours";
    TheirSide => "微信", "WeChat";
    State => "状态", "State";
    Action => "处理", "Action";
    StateOpen => "待处理", "open";
    StatePending => "待次日账单", "pending";
    StateCleared => "已消除", "cleared";
    StateResolved => "已处理", "resolved";
    Sync => "补单（向微信查询并入账）", "Sync from WeChat (补单)";
    SyncDone => "已补单，差异状态：", "Synced. The difference is now ";
    Note => "处理说明", "How it was resolved";
    Resolve => "标记已处理", "Resolve";
    ResolveDone => "已处理：", "Resolved: ";
    Csv => "导出差异 CSV", "Differences as CSV";
    Back => "← 日历", "← Calendar";
    ReconciledAt => "对账时间", "Reconciled at";
}
}

fn status_word(status: Option<&str>, lang: Lang) -> &'static str {
    match status {
        Some("matched") => ReconMsg::Matched.text(lang),
        Some("differences") => ReconMsg::Differences.text(lang),
        Some("pending") => ReconMsg::Pending.text(lang),
        Some("waiting") => ReconMsg::Waiting.text(lang),
        Some("failed") => ReconMsg::Failed.text(lang),
        _ => ReconMsg::NotRun.text(lang),
    }
}

fn status_tone(status: Option<&str>) -> Tone {
    match status {
        Some("matched") => Tone::Ok,
        Some("differences" | "failed") => Tone::Bad,
        Some("pending" | "waiting") => Tone::Warn,
        _ => Tone::Off,
    }
}

/// `/reconciliation`.
#[component]
pub fn ReconciliationPage() -> impl IntoView {
    let lang = use_lang();
    let day = query_param("day");
    let run = ServerAction::<RunReconciliation>::new();
    let sync = ServerAction::<SyncDifference>::new();
    let resolve = ServerAction::<ResolveDifference>::new();
    let changed = move || {
        (
            run.version().get(),
            sync.version().get(),
            resolve.version().get(),
        )
    };
    let calendar = Resource::new(changed, |_| reconciliation_calendar());
    // Without `?day=`, yesterday: what the daily run reconciled last.
    let detail = Resource::new(
        move || (day.get(), changed()),
        |(day, _)| reconciliation_day(day),
    );
    let show_day = move |d: ReconDayView| view! { <DayDetail d run sync resolve/> };
    let show_calendar = move |c| view! { <Calendar c selected=day.get_untracked()/> };
    // The calendar beside the chosen day's figures; its differences below, full width.
    view! {
        <PageHeader title=ReconMsg::Title.text(lang) intro=ReconMsg::Intro.text(lang)/>
        <div class="recon-layout">
            <section class="card recon-layout__calendar">
                <h2 class="card__title">{ReconMsg::Calendar.text(lang)}</h2>
                <Loaded resource=calendar render=show_calendar/>
            </section>
            <Loaded resource=detail render=show_day/>
        </div>
    }
}

#[component]
fn Calendar(c: ReconCalendar, selected: String) -> impl IntoView {
    let lang = use_lang();
    let heads = match lang {
        Lang::Zh => ["一", "二", "三", "四", "五", "六", "日"],
        Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    };
    // No day chosen: the detail shows yesterday, the calendar's last day.
    let selected = if selected.is_empty() {
        c.days.last().map(|d| d.date.clone()).unwrap_or_default()
    } else {
        selected
    };
    let blanks = (0..c.first_weekday).map(|_| view! { <span class="recon-cal__blank"></span> });
    let cells = c
        .days
        .into_iter()
        .map(|cell| view! { <DayCell cell selected=selected.clone()/> })
        .collect_view();
    view! {
        <div class="recon-cal" data-testid="recon-calendar">
            {heads.map(|h| view! { <span class="recon-cal__head">{h}</span> }).collect_view()}
            {blanks.collect_view()}
            {cells}
        </div>
        <p class="recon-cal__legend">
            <span class="recon-cal__mark recon-cal__mark--matched">"✓"</span> {ReconMsg::Matched.text(lang)}
            <span class="recon-cal__mark recon-cal__mark--differences">"✗"</span> {ReconMsg::Differences.text(lang)}
            <span class="recon-cal__mark recon-cal__mark--pending">"…"</span> {ReconMsg::Pending.text(lang)}
            <span class="recon-cal__mark recon-cal__mark--waiting">"◷"</span> {ReconMsg::Waiting.text(lang)}
        </p>
    }
}

#[component]
fn DayCell(cell: ReconDayCell, selected: String) -> impl IntoView {
    let lang = use_lang();
    let status = cell.status.clone().unwrap_or_else(|| "none".into());
    let mark = match status.as_str() {
        "matched" => "✓".to_owned(),
        "differences" => format!("✗ {}", cell.open),
        "pending" => "…".to_owned(),
        "waiting" => "◷".to_owned(),
        "failed" => "!".to_owned(),
        _ => String::new(),
    };
    // "12-06": the month shows where it changes, and the day always.
    let label = cell.date.get(5..).unwrap_or(&cell.date).to_owned();
    let class = format!(
        "recon-cal__day recon-cal__day--{status}{}",
        if cell.date == selected {
            " recon-cal__day--selected"
        } else {
            ""
        }
    );
    let title = format!(
        "{} · {}",
        cell.date,
        status_word(cell.status.as_deref(), lang)
    );
    view! {
        <a class=class href=format!("/reconciliation?day={}", cell.date) title=title data-date=cell.date.clone() data-status=status>
            <span class="recon-cal__date">{label}</span>
            <span class="recon-cal__mark">{mark}</span>
        </a>
    }
}

#[component]
fn DayDetail(
    d: ReconDayView,
    run: ServerAction<RunReconciliation>,
    sync: ServerAction<SyncDifference>,
    resolve: ServerAction<ResolveDifference>,
) -> impl IntoView {
    let lang = use_lang();
    let status = d.day.as_ref().map(|s| s.status.clone());
    let tone = status_tone(status.as_deref());
    let word = status_word(status.as_deref(), lang);
    let status_attr = status.unwrap_or_default();
    let date = d.date.clone();
    let csv = format!("/reconciliation/differences.csv?day={date}");
    view! {
        <section class="card" data-testid="recon-day" data-status=status_attr>
            <h2 class="card__title">
                {ReconMsg::DayTitle.text(lang)} " " {d.date.clone()} " "
                <Badge tone>{word}</Badge>
            </h2>
            {move || result_line(run.value().get(), |s| view! {
                <OkBanner testid="recon-run-result">{ReconMsg::RunDone.text(lang)} {status_word(Some(&s), lang)}</OkBanner>
            }.into_any())}
            <ActionForm action=run attr:class="order-action" attr:data-testid="recon-run-form">
                <input type="hidden" name="day" value=date/>
                <button type="submit" class="button">{ReconMsg::Run.text(lang)}</button>
                <p class="muted">{ReconMsg::RunHint.text(lang)}</p>
            </ActionForm>
            {match d.day {
                Some(s) => view! { <Figures s/> }.into_any(),
                None => view! { <p class="muted">{ReconMsg::NeverRun.text(lang)}</p> }.into_any(),
            }}
        </section>
        <section class="card recon-layout__wide">
            <h2 class="card__title">
                {ReconMsg::Diffs.text(lang)} " "
                <a class="button button--small" href=csv data-testid="recon-csv">{ReconMsg::Csv.text(lang)}</a>
            </h2>
            {move || result_line(sync.value().get(), |s| view! {
                <OkBanner testid="recon-sync-result">{ReconMsg::SyncDone.text(lang)} {state_word(&s, lang)}</OkBanner>
            }.into_any())}
            {move || result_line(resolve.value().get(), |no| view! {
                <OkBanner testid="recon-resolve-result">{ReconMsg::ResolveDone.text(lang)} <span class="mono">{no}</span></OkBanner>
            }.into_any())}
            <Differences rows=d.differences sync resolve/>
        </section>
    }
}

#[component]
fn Figures(s: ReconDaySummary) -> impl IntoView {
    let lang = use_lang();
    let yuan = |f: i64| Fen(f).display_yuan();
    let opt = move |f: Option<i64>| f.map(yuan).unwrap_or_else(|| "—".into());
    let count = |(n, f): (i64, i64)| format!("{n} {} · {}", ReconMsg::Count.text(lang), yuan(f));
    let same = |a: (i64, i64), b: (i64, i64)| if a == b { "" } else { "recon-fig--differs" };
    view! {
        {s.error.clone().map(|e| view! { <p class="banner banner--error" data-testid="recon-error">{e}</p> })}
        {(s.bill == "none").then(|| view! { <p class="muted">{ReconMsg::NoBill.text(lang)}</p> })}
        <table class="table table--plain recon-figures" data-testid="recon-figures">
            <thead><tr><th></th><th>{ReconMsg::Ours.text(lang)}</th><th>{ReconMsg::Theirs.text(lang)}</th></tr></thead>
            <tbody>
                <tr class=same(s.our_paid, s.bill_paid)>
                    <th>{ReconMsg::Payments.text(lang)}</th><td>{count(s.our_paid)}</td><td>{count(s.bill_paid)}</td>
                </tr>
                <tr class=same(s.our_refunds, s.bill_refunds)>
                    <th>{ReconMsg::Refunds.text(lang)}</th><td>{count(s.our_refunds)}</td><td>{count(s.bill_refunds)}</td>
                </tr>
                <tr><th>{ReconMsg::Settlement.text(lang)}</th><td>"—"</td><td>{opt(s.settlement_fen)}</td></tr>
                <tr><th>{ReconMsg::Fees.text(lang)}</th><td>"—"</td><td>{opt(s.fee_fen)}</td></tr>
                <tr><th>{ReconMsg::Net.text(lang)}</th><td>"—"</td><td>{opt(s.net_fen)}</td></tr>
                <tr><th>{ReconMsg::NotOurs.text(lang)}</th><td>"—"</td><td>{count(s.not_ours)}</td></tr>
            </tbody>
        </table>
        {s.reconciled_at.map(|t| view! {
            <p class="page__note">{ReconMsg::ReconciledAt.text(lang)} " " {format_shanghai(t)}</p>
        })}
    }
}

fn state_word(state: &str, lang: Lang) -> &'static str {
    match state {
        "open" => ReconMsg::StateOpen.text(lang),
        "pending" => ReconMsg::StatePending.text(lang),
        "cleared" => ReconMsg::StateCleared.text(lang),
        _ => ReconMsg::StateResolved.text(lang),
    }
}

#[component]
fn Differences(
    rows: Vec<ReconDifferenceRow>,
    sync: ServerAction<SyncDifference>,
    resolve: ServerAction<ResolveDifference>,
) -> impl IntoView {
    let lang = use_lang();
    if rows.is_empty() {
        return view! { <p class="empty" data-testid="recon-no-differences">{ReconMsg::NoDiffs.text(lang)}</p> }
            .into_any();
    }
    let amount = |f: Option<i64>| {
        f.map(|f| Fen(f).display_yuan())
            .unwrap_or_else(|| "—".into())
    };
    let rows = rows
        .into_iter()
        .map(|r| {
            let explain = match lang {
                Lang::Zh => r.explain.0.clone(),
                Lang::En => r.explain.1.clone(),
            };
            let tone = match r.state.as_str() {
                "open" => Tone::Bad,
                "pending" => Tone::Warn,
                _ => Tone::Off,
            };
            let number = match &r.out_trade_no {
                Some(no) => view! {
                    <a class="mono" href=format!("/orders/{no}") data-testid="recon-order-link">{r.ref_no.clone()}</a>
                }
                .into_any(),
                None => view! { <span class="mono">{r.ref_no.clone()}</span> }.into_any(),
            };
            let actionable = matches!(r.state.as_str(), "open" | "pending");
            let (sync_id, resolve_id) = (r.id.to_string(), r.id.to_string());
            let state_text = state_word(&r.state, lang);
            let refund_no = r.out_refund_no.clone().filter(|n| *n != r.ref_no);
            let resolution = r
                .note
                .clone()
                .map(|n| format!("{n} — {}", r.resolved_by.clone().unwrap_or_default()));
            view! {
                <tr data-testid="recon-difference" data-class=r.class.clone() data-state=r.state.clone() class:recon-difference--done=!actionable>
                    <td><span class="mono recon-class">{r.class.clone()}</span><br/><span class="muted">{explain}</span></td>
                    <td>{number}{refund_no.map(|n| view! { <br/><span class="mono muted">{n}</span> })}</td>
                    <td>{amount(r.our_fen)}<br/><span class="muted">{r.our_status.clone().unwrap_or_default()}</span></td>
                    <td>{amount(r.their_fen)}<br/><span class="muted">{r.their_status.clone().unwrap_or_default()}</span></td>
                    <td>
                        <Badge tone>{state_text}</Badge>
                        {resolution.map(|n| view! { <br/><span class="muted">{n}</span> })}
                    </td>
                    <td class="recon-actions">
                        {r.can_sync.then(|| view! {
                            <ActionForm action=sync attr:data-testid="recon-sync-form">
                                <input type="hidden" name="id" value=sync_id/>
                                <button type="submit" class="button button--small">{ReconMsg::Sync.text(lang)}</button>
                            </ActionForm>
                        })}
                        {actionable.then(|| view! {
                            <ActionForm action=resolve attr:class="recon-resolve" attr:data-testid="recon-resolve-form">
                                <input type="hidden" name="id" value=resolve_id/>
                                <input type="text" name="note" required maxlength="500" placeholder=ReconMsg::Note.text(lang) aria-label=ReconMsg::Note.text(lang)/>
                                <button type="submit" class="button button--small">{ReconMsg::Resolve.text(lang)}</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table recon-differences" data-testid="recon-differences">
            <thead><tr>
                <th>{ReconMsg::Class.text(lang)}</th>
                <th>{ReconMsg::Number.text(lang)}</th>
                <th>{ReconMsg::OurSide.text(lang)}</th>
                <th>{ReconMsg::TheirSide.text(lang)}</th>
                <th>{ReconMsg::State.text(lang)}</th>
                <th>{ReconMsg::Action.text(lang)}</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
