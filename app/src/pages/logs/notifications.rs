//! `/notifications` — every callback, filterable by kind, verdict and dates, newest first,
//! refetched in place on each live event — and `/notifications/{id}`: the verdict in plain
//! words, the matched order, the reply, and the raw body with copy and sanitized copy.

use leptos::prelude::*;
use leptos_meta::Title;
use paydesk_types::{format_shanghai, Fen, Verdict};

use super::{duration_text, id_param, verdict_explanation, LogsMsg};
use crate::components::body::BodyBlock;
use crate::components::filtered_list::{query_param, ChoiceFilter, FilteredList};
use crate::components::page::Loaded;
use crate::components::pager::Pager;
use crate::components::status::{Badge, Status, StatusBadge, Tone};
use crate::components::table::{Column, Table};
use crate::dto::{NotificationDetail, NotificationPage, NotificationRow};
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::logs::{get_notification, list_notifications};

fn kind_label(kind: &str, lang: Lang) -> &'static str {
    match kind {
        "refund" => LogsMsg::KindRefund.text(lang),
        _ => LogsMsg::KindPayment.text(lang),
    }
}

/// `/notifications`.
#[component]
pub fn NotificationsPage() -> impl IntoView {
    let lang = use_lang();
    let (kind, verdict) = (query_param("kind"), query_param("verdict"));
    let fetch = |[kind, verdict]: [String; 2], from: String, to: String, after: String| {
        list_notifications(kind, verdict, from, to, after)
    };
    let render = |page: NotificationPage, params, paged| {
        view! { <NotificationTable page params paged/> }.into_any()
    };
    view! {
        <FilteredList
            path="/notifications"
            title=Msg::NavNotifications.text(lang)
            intro=LogsMsg::NotificationsIntro.text(lang)
            form_testid="notification-filters"
            filters=["kind", "verdict"]
            live=true
            fetch
            render
        >
            <ChoiceFilter
                label=LogsMsg::Kind.text(lang)
                name="kind"
                current=kind
                all=LogsMsg::All.text(lang)
                options=["payment", "refund"].into_iter().map(|k| (k, kind_label(k, lang).to_owned())).collect()
            />
            <ChoiceFilter
                label=LogsMsg::Verdict.text(lang)
                name="verdict"
                current=verdict
                all=LogsMsg::All.text(lang)
                options=Verdict::ALL.into_iter().map(|v| (v.as_str(), Status::from(v).label(lang).to_owned())).collect()
            />
        </FilteredList>
    }
}

#[component]
fn NotificationTable(
    page: NotificationPage,
    params: Vec<(&'static str, String)>,
    paged: bool,
) -> impl IntoView {
    let lang = use_lang();
    if page.rows.is_empty() {
        return view! {
            <p class="empty" data-testid="no-notifications">{LogsMsg::NoNotifications.text(lang)}</p>
            <Pager path="/notifications" params paged next=None/>
        }
        .into_any();
    }
    let rows = page
        .rows
        .into_iter()
        .map(|r| view! { <NotificationLine r/> })
        .collect_view();
    let columns = [
        Column::new(LogsMsg::Received.text(lang)),
        Column::new(LogsMsg::Kind.text(lang)),
        Column::new(LogsMsg::Verdict.text(lang)),
        Column::new(LogsMsg::OrderNo.text(lang)),
        Column::money(LogsMsg::Amount.text(lang)),
        Column::new(LogsMsg::Peer.text(lang)),
        Column::new(LogsMsg::Reply.text(lang)),
        Column::new(""),
    ];
    view! {
        <Table columns testid="notifications-table">{rows}</Table>
        <Pager path="/notifications" params paged next=page.next/>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

#[component]
fn NotificationLine(r: NotificationRow) -> impl IntoView {
    let lang = use_lang();
    let href = format!("/notifications/{}", r.id);
    view! {
        <tr class="table__row" data-notification=r.id data-verdict=r.verdict.as_str()>
            <td class="table__time">{format_shanghai(r.received_at)}</td>
            <td>{kind_label(&r.kind, lang)}</td>
            <td><StatusBadge status=r.verdict title=r.detail.clone()/></td>
            <td class="mono">
                {r.out_trade_no.clone().unwrap_or_else(|| "—".into())}
                {r.out_refund_no.clone().map(|n| view! { <div class="muted mono">{n}</div> })}
            </td>
            <td class="table__money">{r.amount_fen.map(|f| Fen(f).display_yuan()).unwrap_or_default()}</td>
            <td class="mono muted">{r.peer.clone().unwrap_or_default()}</td>
            <td><Badge tone=Tone::of(r.reply == "SUCCESS")>{r.reply.clone()}</Badge></td>
            <td><a href=href>{LogsMsg::Detail.text(lang)}</a></td>
        </tr>
    }
}

/// `/notifications/{id}`.
#[component]
pub fn NotificationDetailPage() -> impl IntoView {
    let lang = use_lang();
    let id = id_param();
    let detail = Resource::new(move || id.get(), get_notification);
    view! {
        <Title text=format!("{} #{} · paydesk", LogsMsg::NotificationTitle.text(lang), id.get_untracked())/>
        <p><a href="/notifications">"← " {Msg::NavNotifications.text(lang)}</a></p>
        <Loaded resource=detail render=|d| view! { <Detail d/> }/>
    }
}

#[component]
fn Detail(d: NotificationDetail) -> impl IntoView {
    let lang = use_lang();
    let r = d.row;
    let matched = match (&d.matched_out_trade_no, &r.out_trade_no) {
        (Some(no), _) => view! {
            <a class="mono" href=format!("/orders/{no}") data-testid="matched-order">{no.clone()}</a>
        }
        .into_any(),
        (None, Some(claimed)) => view! {
            <span>{LogsMsg::NotMatched.text(lang)}</span>
            <span class="muted">" (" {LogsMsg::Claimed.text(lang)} ": " <span class="mono">{claimed.clone()}</span> ")"</span>
        }
        .into_any(),
        (None, None) => view! { <span>{LogsMsg::NotMatched.text(lang)}</span> }.into_any(),
    };
    view! {
        <h1 class="page__title">
            {LogsMsg::NotificationTitle.text(lang)} " #" {r.id} " "
            <StatusBadge status=r.verdict testid="verdict"/>
        </h1>
        <p class="explain" data-testid="verdict-explanation">{verdict_explanation(r.verdict.as_str(), lang)}</p>
        <section class="card">
            <dl class="facts">
                <dt>{LogsMsg::Kind.text(lang)}</dt>
                <dd>{kind_label(&r.kind, lang)}</dd>
                <dt>{LogsMsg::Received.text(lang)}</dt>
                <dd>{format_shanghai(r.received_at)}</dd>
                <dt>{LogsMsg::Peer.text(lang)}</dt>
                <dd class="mono">{r.peer.clone().unwrap_or_else(|| "—".into())}</dd>
                <dt>{LogsMsg::MatchedOrder.text(lang)}</dt>
                <dd>{matched}</dd>
                {d.transaction_id.clone().map(|t| view! {
                    <dt>{LogsMsg::TransactionId.text(lang)}</dt>
                    <dd class="mono">{t}</dd>
                })}
                {r.out_refund_no.clone().map(|n| view! {
                    <dt>{LogsMsg::RefundNo.text(lang)}</dt>
                    <dd class="mono">{n}</dd>
                })}
                {r.amount_fen.map(|f| view! {
                    <dt>{LogsMsg::Amount.text(lang)}</dt>
                    <dd>{Fen(f).display_yuan()}</dd>
                })}
                <dt>{LogsMsg::Duration.text(lang)}</dt>
                <dd>{duration_text(d.duration_us)}</dd>
                <dt>{LogsMsg::TechnicalDetail.text(lang)}</dt>
                <dd class="mono" data-testid="technical-detail">{r.detail.clone()}</dd>
                <dt>{LogsMsg::Reply.text(lang)}</dt>
                <dd>
                    <Badge tone=Tone::of(r.reply == "SUCCESS")>{r.reply.clone()}</Badge>
                    <pre class="body body--inline" data-testid="reply-body">{d.reply_body.clone()}</pre>
                </dd>
            </dl>
        </section>
        <BodyBlock title=LogsMsg::RawBody.text(lang) body=d.body copy_label=LogsMsg::Copy.text(lang) testid="raw-body"/>
        <BodyBlock title=LogsMsg::SanitizedBody.text(lang) body=d.sanitized copy_label=LogsMsg::CopySanitized.text(lang) testid="sanitized-body"/>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
}
