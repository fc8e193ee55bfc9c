//! `/failures` — the callbacks we refused, grouped by cause with counts and first and last
//! seen in a window; each group opens (a `<details>`, no script needed) to its failures,
//! each explained in plain words with the signature debugger's findings. Refetched in place
//! when a callback is rejected.

use leptos::prelude::*;
use paydesk_types::format_shanghai;

use super::{cause_label, verdict_explanation, LogsMsg};
use crate::components::filtered_list::query_param;
use crate::components::live::use_live;
use crate::components::page::{Loaded, PageHeader};
use crate::components::table::{Column, Table};
use crate::dto::{CountedRow, FailureGroup, FailureRow, FailuresView, SignatureDebug};
use crate::i18n::{use_lang, Msg};
use crate::server::logs::list_failures;

/// `/failures`.
#[component]
pub fn FailuresPage() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    let window = query_param("window");
    let view_data = Resource::new(
        move || (window.get(), live.rejected.get()),
        |(window, _)| list_failures(window),
    );
    view! {
        <PageHeader title=Msg::NavFailures.text(lang) intro=LogsMsg::FailuresIntro.text(lang)/>
        <Loaded resource=view_data render=|v| view! { <Failures v/> }/>
    }
}

#[component]
fn Failures(v: FailuresView) -> impl IntoView {
    let lang = use_lang();
    let windows = [
        ("24h", LogsMsg::Last24h),
        ("7d", LogsMsg::Last7d),
        ("30d", LogsMsg::Last30d),
    ]
    .into_iter()
    .map(|(w, label)| {
        let current = v.window == w;
        view! {
            <a href=format!("/failures?window={w}") class="tabs__tab" class:tabs__tab--on=current
                aria-current=current.then_some("page")>{label.text(lang)}</a>
        }
    })
    .collect_view();
    let counted = (!v.counted.is_empty()).then(|| view! { <Counted rows=v.counted/> });
    let body = if v.groups.is_empty() {
        view! { <p class="empty" data-testid="no-failures">{LogsMsg::NoFailures.text(lang)}</p> }
            .into_any()
    } else {
        v.groups
            .into_iter()
            .map(|g| view! { <Group g/> })
            .collect_view()
            .into_any()
    };
    view! {
        <nav class="tabs" aria-label="window">{windows}</nav>
        <div class="groups" data-testid="failure-groups">{body}</div>
        {counted}
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}

/// The refusals counted and not stored, per sender and cause.
#[component]
fn Counted(rows: Vec<CountedRow>) -> impl IntoView {
    let lang = use_lang();
    let rows = rows
        .into_iter()
        .map(|c| {
            let (label, tone) = cause_label(&c.cause, lang);
            let sender = c.sender.clone();
            view! {
                <tr data-sender=c.sender data-cause=c.cause>
                    <td class="mono">{sender}</td>
                    <td><span class=tone.class()>{label}</span></td>
                    <td class="table__num" data-testid="counted-count">{c.count}</td>
                    <td class="table__time">{format_shanghai(c.first_seen)}</td>
                    <td class="table__time">{format_shanghai(c.last_seen)}</td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Column::new(LogsMsg::Sender.text(lang)),
        Column::new(LogsMsg::Cause.text(lang)),
        Column::num(LogsMsg::Count.text(lang)),
        Column::new(LogsMsg::FirstSeen.text(lang)),
        Column::new(LogsMsg::LastSeen.text(lang)),
    ];
    view! {
        <section class="card" data-testid="counted-refusals">
            <h2 class="card__title">{LogsMsg::CountedTitle.text(lang)}</h2>
            <p class="muted">{LogsMsg::CountedIntro.text(lang)}</p>
            <Table columns>{rows}</Table>
        </section>
    }
}

#[component]
fn Group(g: FailureGroup) -> impl IntoView {
    let lang = use_lang();
    let (label, tone) = cause_label(&g.cause, lang);
    let shown = g.failures.len() as i64;
    let more = (g.count > shown).then(|| {
        view! { <p class="muted">{LogsMsg::ShowingNewest.text(lang)} " " {shown} " / " {g.count}</p> }
    });
    let failures = g
        .failures
        .into_iter()
        .map(|f| view! { <Failure f/> }.into_any())
        .collect_view();
    view! {
        <details class="group" data-cause=g.cause.clone()>
            <summary class="group__summary">
                <span class=tone.class()>{label}</span>
                <span class="group__count" data-testid="group-count">{g.count}</span>
                <span class="muted">{LogsMsg::FirstSeen.text(lang)} " " {format_shanghai(g.first_seen)}</span>
                <span class="muted">{LogsMsg::LastSeen.text(lang)} " " {format_shanghai(g.last_seen)}</span>
            </summary>
            <div class="group__body">
                <p class="explain"><strong>{LogsMsg::WhatToCheck.text(lang)} ": "</strong>{verdict_explanation(&g.cause, lang)}</p>
                {more}
                {failures}
            </div>
        </details>
    }
}

#[component]
fn Failure(f: FailureRow) -> impl IntoView {
    let lang = use_lang();
    let kind = if f.kind == "refund" {
        LogsMsg::KindRefund
    } else {
        LogsMsg::KindPayment
    };
    view! {
        <article class="failure" data-notification=f.id>
            <div class="failure__head">
                <span class="table__time">{format_shanghai(f.received_at)}</span>
                <span>{kind.text(lang)}</span>
                <span class="mono">{f.out_trade_no.clone().unwrap_or_else(|| "—".into())}</span>
                <span class="mono muted">{f.peer.clone().unwrap_or_default()}</span>
                <a href=format!("/notifications/{}", f.id)>{LogsMsg::Detail.text(lang)} " →"</a>
            </div>
            <p class="mono muted failure__detail">{f.detail.clone()}</p>
            {f.raw_length.map(|n| view! {
                <p class="muted" data-testid="body-cut">{LogsMsg::BodyCut.text(lang)} " " {n} " " {LogsMsg::Bytes.text(lang)}</p>
            })}
            {f.debugger.map(|d| view! { <Debugger d/> }.into_any())}
        </article>
    }
}

#[component]
fn Debugger(d: SignatureDebug) -> impl IntoView {
    let lang = use_lang();
    let source = d.sign_type_source.as_deref().map(|s| match s {
        "field" => LogsMsg::SourceField.text(lang),
        "expected" => LogsMsg::SourceExpected.text(lang),
        _ => LogsMsg::SourceLength.text(lang),
    });
    let sign_type = d.sign_type.clone().map(|t| match source {
        Some(s) => format!("{t} ({s})"),
        None => t,
    });
    let fact = |label: LogsMsg, value: Option<String>, testid: &'static str| {
        value.map(|v| {
            view! {
                <dt>{label.text(lang)}</dt>
                <dd class="mono" data-testid=testid>{v}</dd>
            }
        })
    };
    let skipped = (!d.skipped.is_empty()).then(|| {
        let items = d
            .skipped
            .iter()
            .map(|(name, why)| view! { <li><code>{name.clone()}</code> " — " {why.clone()}</li> })
            .collect_view();
        view! { <dt>{LogsMsg::Skipped.text(lang)}</dt><dd><ul class="plain">{items}</ul></dd> }
    });
    let warnings = (!d.warnings.is_empty()).then(|| {
        let items = d
            .warnings
            .iter()
            .map(|w| view! { <li>{w.clone()}</li> })
            .collect_view();
        view! { <dt>{LogsMsg::Warnings.text(lang)}</dt><dd><ul class="plain">{items}</ul></dd> }
    });
    view! {
        <div class="debugger" data-testid="debugger">
            <h3 class="debugger__title">{LogsMsg::Debugger.text(lang)}</h3>
            <dl class="facts">
                <dt>{LogsMsg::Diagnosis.text(lang)}</dt>
                <dd data-testid="diagnosis"><strong>{d.diagnosis.clone()}</strong></dd>
                {fact(LogsMsg::SignTypeUsed, sign_type, "sign-type")}
                {fact(LogsMsg::OrderSignType, d.expected_sign_type.clone(), "order-sign-type")}
                {fact(LogsMsg::ReceivedSign, d.received_sign.clone(), "received-sign")}
                {fact(LogsMsg::ExpectedMd5, d.expected_md5.clone(), "expected-md5")}
                {fact(LogsMsg::ExpectedHmac, d.expected_hmac_sha256.clone(), "expected-hmac")}
                {d.canonical_string.clone().map(|c| view! {
                    <dt>{LogsMsg::CanonicalString.text(lang)}</dt>
                    <dd><pre class="body body--inline" data-testid="canonical-string">{c}</pre></dd>
                })}
                {fact(LogsMsg::Error, d.refused.clone(), "refused")}
                {skipped}
                {warnings}
                <dt>{LogsMsg::KeyLength.text(lang)}</dt>
                <dd>{d.key_len}</dd>
            </dl>
        </div>
    }
}
