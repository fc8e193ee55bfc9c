//! The Settings page's pre-flight check (admin): the checks of `paydesk doctor` run on the
//! server by a button, shown as a checklist with failures first. In sandbox mode they run
//! against the built-in simulator, and the panel says so above the result.

use leptos::prelude::*;
use paydesk_types::doctor::{CheckVerdict, DoctorReport, DoctorTarget};
use paydesk_types::format_shanghai;

use crate::components::table::{Column, Table};
use crate::error::ErrorBanner;
use crate::i18n::doctor::{check_name, finding_words, verdict_words};
use crate::i18n::Lang;
use crate::server::admin::RunDoctor;

crate::messages! {
    /// The panel's words.
    pub enum DoctorPanelMsg {
        Title => "上线前自检", "Pre-flight check";
        Intro => "用当前配置向微信支付发起几次不涉及资金的调用：查询一笔不存在的订单（验证 AppID、商户号、API 密钥与签名方式），对它申请退款（验证商户证书与双向 TLS），并对比时钟；同时检查配置、数据库、磁盘与回调地址。每次运行记入审计日志，调用记入接口调用日志。", "A few calls to WeChat Pay with the current configuration, none of which moves money: a query for an order that cannot exist (AppID, mch_id, API key, sign type), a refund of it (merchant certificate, mutual TLS), and a clock comparison; plus the configuration, database, disk and notify URLs. Each run is in the audit log, its calls in the API call log.";
        Run => "运行自检", "Run check";
        Running => "自检运行中…", "Checking…";
        Simulator => "沙箱模式：本次检查的是 paydesk 内置的微信支付模拟器，而不是微信支付。结果说明 paydesk 与模拟器之间一切正常，不代表任何商户配置已可用于生产。", "Sandbox mode: this checked paydesk's built-in WeChat Pay simulator, not WeChat Pay. It shows paydesk works with the simulator; it says nothing about a merchant configuration for production.";
        AllPassed => "全部通过：所有适用的检查项均已通过。", "Passed: every check that applies passed.";
        FailedPrefix => "未通过：", "Failed: ";
        FailedSuffix => " 项检查未通过，请按详情修改配置后重新运行。", " check(s) failed. Change what the details name, then run it again.";
        RanAt => "运行时间", "Ran at";
        Shanghai => "（北京时间）", " (Asia/Shanghai)";
        Check => "检查项", "Check";
        Verdict => "结果", "Verdict";
        Detail => "详情", "Detail";
    }
}

/// The card: the button, any refusal of the last click, and the last report.
#[component]
pub fn DoctorCard(lang: Lang) -> impl IntoView {
    let t = move |m: DoctorPanelMsg| m.text(lang);
    let run = ServerAction::<RunDoctor>::new();
    let pending = run.pending();
    // The last report stays on screen while the next run is under way or is refused.
    let report = RwSignal::new(None::<DoctorReport>);
    Effect::new(move |_| {
        if let Some(Ok(r)) = run.value().get() {
            report.set(Some(r));
        }
    });
    let refusal = move || match run.value().get() {
        Some(Err(error)) => Some(view! { <ErrorBanner error/> }),
        _ => None,
    };
    view! {
        <section class="card card--span doctor" data-testid="doctor">
            <div class="doctor__head">
                <h2 class="card__title">{t(DoctorPanelMsg::Title)}</h2>
                <ActionForm action=run attr:data-testid="doctor-form">
                    <button
                        type="submit"
                        class="button button--primary"
                        data-testid="doctor-run"
                        disabled=move || pending.get()
                    >
                        {move || {
                            if pending.get() { t(DoctorPanelMsg::Running) } else { t(DoctorPanelMsg::Run) }
                        }}
                    </button>
                </ActionForm>
            </div>
            <p class="muted">{t(DoctorPanelMsg::Intro)}</p>
            {refusal}
            {move || report.get().map(|report| view! { <DoctorChecklist report lang/> })}
        </section>
    }
    // Its own type, so the settings page's view type stays within the compiler's limits.
    .into_any()
}

/// One report: the simulator notice, the verdict, when it ran, and the lines, failures first.
#[component]
fn DoctorChecklist(report: DoctorReport, lang: Lang) -> impl IntoView {
    let t = move |m: DoctorPanelMsg| m.text(lang);
    let simulator = (report.target == DoctorTarget::Simulator).then(|| {
        view! { <p class="banner banner--warn" data-testid="doctor-simulator">{t(DoctorPanelMsg::Simulator)}</p> }
    });
    let (verdict_class, verdict) = match report.verdict {
        CheckVerdict::Fail => (
            "banner banner--error",
            format!(
                "{}{}{}",
                t(DoctorPanelMsg::FailedPrefix),
                report.failed(),
                t(DoctorPanelMsg::FailedSuffix)
            ),
        ),
        CheckVerdict::Pass | CheckVerdict::Skip => {
            ("banner banner--ok", t(DoctorPanelMsg::AllPassed).to_owned())
        }
    };
    let mut lines = report.lines;
    // Failures first; otherwise the order the checks ran in.
    lines.sort_by_key(|l| l.verdict != CheckVerdict::Fail);
    let rows = lines
        .into_iter()
        .map(|line| {
            let (row, badge, code) = match line.verdict {
                CheckVerdict::Pass => ("doctor__row--pass", "status-badge status-badge--ok", "pass"),
                CheckVerdict::Fail => ("doctor__row--fail", "status-badge status-badge--bad", "fail"),
                CheckVerdict::Skip => ("doctor__row--skip", "status-badge status-badge--off", "skip"),
            };
            view! {
                <tr
                    class=format!("table__row {row}")
                    data-testid="doctor-line"
                    data-check=line.check.label()
                    data-verdict=code
                >
                    <td class="doctor__check">{check_name(line.check, lang)}</td>
                    <td class="doctor__verdict"><span class=badge>{verdict_words(line.verdict, lang)}</span></td>
                    <td class="doctor__detail">{finding_words(&line.finding, lang)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        {simulator}
        <p class=verdict_class role="status" data-testid="doctor-verdict">{verdict}</p>
        <p class="muted" data-testid="doctor-ran-at">
            {t(DoctorPanelMsg::RanAt)} " " {format_shanghai(report.ran_at)} {t(DoctorPanelMsg::Shanghai)}
        </p>
        <Table
            columns=[DoctorPanelMsg::Check, DoctorPanelMsg::Verdict, DoctorPanelMsg::Detail]
                .map(|m| Column::new(t(m)))
            testid="doctor-lines"
            class="doctor__table"
        >
            {rows}
        </Table>
    }
}
