//! The exceptions inbox (异常, support and up): one queue of everything that needs a person —
//! reconciliation differences, paid-amount mismatches, payments after close, second
//! payments, refunds stuck or failed, alerts that gave up, carts paid twice — each with its
//! cause and what to do in plain words, the order, and its age; oldest first. Items clear
//! themselves when their condition goes away; the rest are closed with a note (an
//! `ActionForm`, works before hydration). Refetched live when the inbox changes.

use leptos::prelude::*;
use paydesk_types::{format_shanghai, Fen};

use crate::components::form::{result_line, OkBanner};
use crate::components::live::use_live;
use crate::components::page::{Loaded, PageHeader};
use crate::components::status::{Badge, Tone};
use crate::dto::{ExceptionRow, ExceptionsView};
use crate::i18n::{age_text, use_lang, Lang};
use crate::server::exceptions::{list_exceptions, CloseException};

crate::messages! {
/// The exceptions page's words.
pub enum ExceptionsMsg {
    Title => "异常", "Exceptions";
    Intro => "所有需要人工处理的事项，最早的在前。条件消除后自动关闭（如订单已补单、退款已成功），其余处理后填写说明关闭。", "Everything that needs a person, oldest first. Items close themselves when their condition clears (the order got paid, the refund succeeded); close the rest with a note once handled.";
    Open => "待处理", "Open";
    Done => "最近关闭", "Recently closed";
    NoneOpen => "没有待处理的异常。", "Nothing needs a person.";
    NoneDone => "还没有关闭的异常。", "Nothing closed yet.";
    Cause => "原因与处理", "Cause and what to do";
    Order => "订单", "Order";
    Amounts => "金额", "Amounts";
    Age => "已持续", "Age";
    Close => "关闭", "Close";
    Note => "处理说明", "How it was handled";
    Closed => "已关闭：", "Closed: ";
    Cleared => "已自动消除", "cleared by itself";
    ClosedBy => "关闭", "closed";
    Other => "对方", "other";
    Handle => "去对账页处理", "Handle on the Reconciliation page";
}
}

/// `/exceptions`.
#[component]
pub fn ExceptionsPage() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    let close = ServerAction::<CloseException>::new();
    let data = Resource::new(
        move || (close.version().get(), live.exceptions.get()),
        |_| list_exceptions(),
    );
    let show = move |v: ExceptionsView| view! { <Inbox v close/> };
    view! {
        <PageHeader title=ExceptionsMsg::Title.text(lang) intro=ExceptionsMsg::Intro.text(lang)/>
        {move || result_line(close.value().get(), |no| view! {
            <OkBanner testid="exception-closed">{ExceptionsMsg::Closed.text(lang)} <span class="mono">{no}</span></OkBanner>
        }.into_any())}
        <Loaded resource=data render=show/>
    }
}

#[component]
fn Inbox(v: ExceptionsView, close: ServerAction<CloseException>) -> impl IntoView {
    let lang = use_lang();
    let open = if v.open.is_empty() {
        view! { <p class="empty" data-testid="no-exceptions">{ExceptionsMsg::NoneOpen.text(lang)}</p> }
            .into_any()
    } else {
        let rows = v
            .open
            .into_iter()
            .map(|r| view! { <Item r close=Some(close)/> })
            .collect_view();
        view! { <Items rows=rows.into_any()/> }.into_any()
    };
    let done = if v.done.is_empty() {
        view! { <p class="muted">{ExceptionsMsg::NoneDone.text(lang)}</p> }.into_any()
    } else {
        let rows = v
            .done
            .into_iter()
            .map(|r| view! { <Item r close=None/> })
            .collect_view();
        view! { <Items rows=rows.into_any()/> }.into_any()
    };
    view! {
        <section class="card" data-testid="exceptions-open">
            <h2 class="card__title">{ExceptionsMsg::Open.text(lang)}</h2>
            {open}
        </section>
        <section class="card" data-testid="exceptions-done">
            <h2 class="card__title">{ExceptionsMsg::Done.text(lang)}</h2>
            {done}
        </section>
    }
}

#[component]
fn Items(rows: AnyView) -> impl IntoView {
    let lang = use_lang();
    view! {
        <table class="table exceptions">
            <thead><tr>
                <th>{ExceptionsMsg::Cause.text(lang)}</th>
                <th>{ExceptionsMsg::Order.text(lang)}</th>
                <th>{ExceptionsMsg::Amounts.text(lang)}</th>
                <th>{ExceptionsMsg::Age.text(lang)}</th>
                <th></th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

#[component]
fn Item(r: ExceptionRow, close: Option<ServerAction<CloseException>>) -> impl IntoView {
    let lang = use_lang();
    let explain = match lang {
        Lang::Zh => r.explain.0.clone(),
        Lang::En => r.explain.1.clone(),
    };
    let yuan = |f: i64| Fen(f).display_yuan();
    let amounts = match (r.amount_fen, r.other_fen) {
        (Some(a), Some(o)) if a != o => {
            format!(
                "{} · {} {}",
                yuan(a),
                ExceptionsMsg::Other.text(lang),
                yuan(o)
            )
        }
        (Some(a), _) => yuan(a),
        (None, Some(o)) => yuan(o),
        (None, None) => "—".into(),
    };
    let order = r.out_trade_no.clone().map(|no| {
        let href = format!("/orders/{no}");
        view! { <a class="mono" href=href data-testid="exception-order">{no}</a> }
    });
    let refund_no = r.out_refund_no.clone();
    let id = r.id.to_string();
    let outcome = match (r.state.as_str(), r.note.clone()) {
        ("cleared", _) => Some(ExceptionsMsg::Cleared.text(lang).to_owned()),
        (_, Some(note)) => Some(format!(
            "{} {} · {}",
            r.closed_by.clone().unwrap_or_default(),
            ExceptionsMsg::ClosedBy.text(lang),
            note
        )),
        _ => None,
    };
    let when = r.closed_at.map(format_shanghai);
    let tone = if r.state == "open" {
        Tone::Bad
    } else {
        Tone::Off
    };
    let label = match lang {
        Lang::Zh => r.label.0.clone(),
        Lang::En => r.label.1.clone(),
    };
    let link = r.link.clone().map(|href| {
        view! { <br/><a href=href data-testid="exception-link">{ExceptionsMsg::Handle.text(lang)} " →"</a> }
    });
    view! {
        <tr data-testid="exception" data-kind=r.kind.clone() data-state=r.state.clone()>
            <td>
                <Badge tone>{label}</Badge>
                <br/><span>{explain}</span>
                {r.detail.clone().map(|d| view! { <br/><span class="muted mono">{d}</span> })}
                {outcome.map(|o| view! { <br/><span class="muted">{o}</span> })}
            </td>
            <td>{order}{refund_no.map(|n| view! { <br/><span class="mono muted">{n}</span> })}{link}</td>
            <td>{amounts}</td>
            <td title=format_shanghai(r.raised_at)>{age_text(r.age_ms, lang)}{when.map(|w| view! { <br/><span class="muted">{w}</span> })}</td>
            <td>
                {close.map(|close| view! {
                    <ActionForm action=close attr:class="recon-resolve" attr:data-testid="exception-close-form">
                        <input type="hidden" name="id" value=id/>
                        <input type="text" name="note" required maxlength="500" placeholder=ExceptionsMsg::Note.text(lang) aria-label=ExceptionsMsg::Note.text(lang)/>
                        <button type="submit" class="button button--small">{ExceptionsMsg::Close.text(lang)}</button>
                    </ActionForm>
                })}
            </td>
        </tr>
    }
}
