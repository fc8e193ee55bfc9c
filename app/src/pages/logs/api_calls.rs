//! `/api-calls` — every request we sent to WeChat Pay, filterable by API, outcome and dates,
//! newest first — and `/api-calls/{id}` with both bodies laid out.

use leptos::prelude::*;
use leptos_meta::Title;
use paydesk_types::format_shanghai;

use super::{id_param, LogsMsg, ENDPOINTS};
use crate::components::body::BodyBlock;
use crate::components::filtered_list::{query_param, ChoiceFilter, FilteredList};
use crate::components::page::Loaded;
use crate::components::pager::Pager;
use crate::components::status::Tone;
use crate::components::table::{Column, Table};
use crate::dto::{ApiCallDetail, ApiCallPage, ApiCallRow};
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::logs::{get_api_call, list_api_calls};

fn endpoint_label(endpoint: &str, lang: Lang) -> &'static str {
    ENDPOINTS
        .iter()
        .find(|(path, _)| *path == endpoint)
        .map_or("", |(_, label)| label.text(lang))
}

fn outcome_label(outcome: &str, lang: Lang) -> (&'static str, Tone) {
    match outcome {
        "ok" => (LogsMsg::OutcomeOk.text(lang), Tone::Ok),
        "business" => (LogsMsg::OutcomeBusiness.text(lang), Tone::Warn),
        _ => (LogsMsg::OutcomeTransport.text(lang), Tone::Bad),
    }
}

/// `return_code / result_code / err_code`, the codes present.
fn codes(r: &ApiCallRow) -> String {
    [&r.return_code, &r.result_code, &r.err_code]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The host called, marked when it is the backup host (wxpay's failover, attempt 2).
#[component]
fn HostCell(host: Option<String>, attempt: i64) -> impl IntoView {
    let lang = use_lang();
    let backup = (attempt >= 2).then(|| {
        view! {
            <span class=Tone::Info.class() data-testid="backup-host" title=LogsMsg::BackupHostNote.text(lang)>
                {LogsMsg::BackupHost.text(lang)}
            </span>
            " "
        }
    });
    view! { {backup} <span class="mono">{host.unwrap_or_else(|| "—".into())}</span> }
}

fn attempt_label(attempt: i64, lang: Lang) -> &'static str {
    match attempt {
        0 => LogsMsg::ProbeAttempt.text(lang),
        1 => LogsMsg::FirstAttempt.text(lang),
        _ => LogsMsg::SecondAttempt.text(lang),
    }
}

/// `/api-calls`.
#[component]
pub fn ApiCallsPage() -> impl IntoView {
    let lang = use_lang();
    let (endpoint, outcome) = (query_param("endpoint"), query_param("outcome"));
    let fetch = |[endpoint, outcome]: [String; 2], from: String, to: String, after: String| {
        list_api_calls(endpoint, outcome, from, to, after)
    };
    let render =
        |page: ApiCallPage, params, paged| view! { <CallTable page params paged/> }.into_any();
    view! {
        <FilteredList
            path="/api-calls"
            title=Msg::NavApiCalls.text(lang)
            intro=LogsMsg::ApiCallsIntro.text(lang)
            form_testid="api-call-filters"
            filters=["endpoint", "outcome"]
            live=true
            fetch
            render
        >
            <ChoiceFilter
                label=LogsMsg::Endpoint.text(lang)
                name="endpoint"
                current=endpoint
                all=LogsMsg::All.text(lang)
                options=ENDPOINTS.into_iter().map(|(path, label)| (path, format!("{} {path}", label.text(lang)))).collect()
            />
            <ChoiceFilter
                label=LogsMsg::Outcome.text(lang)
                name="outcome"
                current=outcome
                all=LogsMsg::All.text(lang)
                options=["ok", "business", "transport"].into_iter().map(|o| (o, outcome_label(o, lang).0.to_owned())).collect()
            />
        </FilteredList>
    }
}

#[component]
fn CallTable(page: ApiCallPage, params: Vec<(&'static str, String)>, paged: bool) -> impl IntoView {
    let lang = use_lang();
    if page.rows.is_empty() {
        return view! {
            <p class="empty" data-testid="no-api-calls">{LogsMsg::NoApiCalls.text(lang)}</p>
            <Pager path="/api-calls" params paged next=None/>
        }
        .into_any();
    }
    let rows = page
        .rows
        .into_iter()
        .map(|r| {
            let (label, tone) = outcome_label(&r.outcome, lang);
            let href = format!("/api-calls/{}", r.id);
            let codes = codes(&r);
            view! {
                <tr class="table__row" data-call=r.id data-outcome=r.outcome.clone() data-attempt=r.attempt>
                    <td class="table__time">{format_shanghai(r.created_at)}</td>
                    <td>{endpoint_label(&r.endpoint, lang)} <div class="muted mono">{r.endpoint.clone()}</div></td>
                    <td><HostCell host=r.host.clone() attempt=r.attempt/></td>
                    <td class="mono">
                        {r.out_trade_no.clone().unwrap_or_default()}
                        {r.out_refund_no.clone().map(|n| view! { <div class="muted mono">{n}</div> })}
                    </td>
                    <td>
                        <span class=tone.class()>{label}</span>
                        <div class="muted mono">{codes}</div>
                    </td>
                    <td class="table__num">{r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())}</td>
                    <td class="table__num">{r.latency_ms} " ms"</td>
                    <td><a href=href>{LogsMsg::Detail.text(lang)}</a></td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Column::new(LogsMsg::CalledAt.text(lang)),
        Column::new(LogsMsg::Endpoint.text(lang)),
        Column::new(LogsMsg::Host.text(lang)),
        Column::new(LogsMsg::OrderNo.text(lang)),
        Column::new(LogsMsg::Outcome.text(lang)),
        Column::num("HTTP"),
        Column::num(LogsMsg::Latency.text(lang)),
        Column::new(""),
    ];
    view! {
        <Table columns testid="api-calls-table">{rows}</Table>
        <Pager path="/api-calls" params paged next=page.next/>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

/// `/api-calls/{id}`.
#[component]
pub fn ApiCallDetailPage() -> impl IntoView {
    let lang = use_lang();
    let id = id_param();
    let detail = Resource::new(move || id.get(), get_api_call);
    view! {
        <Title text=format!("{} #{} · paydesk", LogsMsg::ApiCallTitle.text(lang), id.get_untracked())/>
        <p><a href="/api-calls">"← " {Msg::NavApiCalls.text(lang)}</a></p>
        <Loaded resource=detail render=|d| view! { <CallDetail d/> }/>
    }
}

#[component]
fn CallDetail(d: ApiCallDetail) -> impl IntoView {
    let lang = use_lang();
    let r = d.row;
    let (label, tone) = outcome_label(&r.outcome, lang);
    let order = r.out_trade_no.clone().map(|no| {
        view! {
            <dt>{LogsMsg::OrderNo.text(lang)}</dt>
            <dd><a class="mono" href=format!("/orders/{no}")>{no.clone()}</a></dd>
        }
    });
    view! {
        <h1 class="page__title">
            {LogsMsg::ApiCallTitle.text(lang)} " #" {r.id} " "
            <span class=tone.class() data-testid="outcome">{label}</span>
        </h1>
        <section class="card">
            <dl class="facts">
                <dt>{LogsMsg::Endpoint.text(lang)}</dt>
                <dd>{endpoint_label(&r.endpoint, lang)} " " <code>{r.endpoint.clone()}</code></dd>
                <dt>{LogsMsg::CalledAt.text(lang)}</dt>
                <dd>{format_shanghai(r.created_at)}</dd>
                <dt>{LogsMsg::Host.text(lang)}</dt>
                <dd data-testid="call-host"><HostCell host=r.host.clone() attempt=r.attempt/>
                    {d.url.clone().map(|u| view! { <div class="muted mono">{u}</div> })}</dd>
                <dt>{LogsMsg::Attempt.text(lang)}</dt>
                <dd data-testid="call-attempt">{attempt_label(r.attempt, lang)}</dd>
                {order}
                {r.out_refund_no.clone().map(|n| view! { <dt>{LogsMsg::RefundNo.text(lang)}</dt><dd class="mono">{n}</dd> })}
                {d.transaction_id.clone().map(|t| view! { <dt>{LogsMsg::TransactionId.text(lang)}</dt><dd class="mono">{t}</dd> })}
                <dt>"HTTP"</dt>
                <dd>{r.http_status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())}</dd>
                <dt>"return_code / result_code / err_code"</dt>
                <dd class="mono">{codes(&r)}</dd>
                <dt>{LogsMsg::Latency.text(lang)}</dt>
                <dd>{r.latency_ms} " ms"</dd>
                {r.error.clone().map(|e| view! { <dt>{LogsMsg::Error.text(lang)}</dt><dd class="mono" data-testid="call-error">{e}</dd> })}
            </dl>
            <p class="muted">{LogsMsg::KeyNeverStored.text(lang)}</p>
        </section>
        <BodyBlock title=LogsMsg::Request.text(lang) body=d.request copy_label=LogsMsg::Copy.text(lang) testid="request-body"/>
        <BodyBlock title=LogsMsg::Response.text(lang) body=d.response copy_label=LogsMsg::Copy.text(lang) testid="response-body"/>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}
