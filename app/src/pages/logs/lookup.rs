//! `/lookup` — support pastes whatever the customer said (an id, or an amount and a rough
//! time) and reads each matching order's status as one sentence, linking to the order.

use leptos::prelude::*;
use paydesk_types::{format_shanghai, Fen, OrderStatus};

use super::LogsMsg;
use crate::components::filtered_list::query_param;
use crate::components::page::PageHeader;
use crate::dto::{LookupResult, LookupRow};
use crate::error::Refused;
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::logs::lookup;

/// `11月20日 15:02` / `Nov 20, 15:02` (Asia/Shanghai).
pub fn short_time(ms: i64, lang: Lang) -> String {
    let full = format_shanghai(ms); // 2026-11-20 15:02:33
    let month: usize = full.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(0);
    let day: u32 = full.get(8..10).and_then(|d| d.parse().ok()).unwrap_or(0);
    let hm = full.get(11..16).unwrap_or("");
    match lang {
        Lang::Zh => format!("{month}月{day}日 {hm}"),
        Lang::En => {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let name = MONTHS.get(month.wrapping_sub(1)).copied().unwrap_or("?");
            format!("{name} {day}, {hm}")
        }
    }
}

/// The order's status as one sentence a support agent can read out.
pub fn status_sentence(r: &LookupRow, lang: Lang) -> String {
    let amount = Fen(r.total_fee).display_yuan();
    let created = short_time(r.created_at, lang);
    let paid = r.paid_at.map(|t| short_time(t, lang));
    let tid = r.transaction_id.clone().unwrap_or_default();
    let paid_part = |zh: &str, en: &str| match (lang, &paid) {
        (Lang::Zh, Some(p)) => format!("{zh}，{amount}，{p} 支付，微信支付单号 {tid}"),
        (Lang::Zh, None) => format!("{zh}，{amount}，{created} 下单"),
        (Lang::En, Some(p)) => format!("{en} {amount} on {p}, WeChat Pay transaction {tid}"),
        (Lang::En, None) => format!("{en} {amount}, ordered {created}"),
    };
    match (r.status, lang) {
        (OrderStatus::Paid, _) => paid_part("已支付", "Paid"),
        (OrderStatus::PartiallyRefunded, _) => {
            paid_part("已支付，部分已退款", "Partly refunded: paid")
        }
        (OrderStatus::Refunded, _) => paid_part("已全额退款", "Refunded in full: paid"),
        (OrderStatus::NotPay, Lang::Zh) => {
            format!("未支付，{amount}，{created} 下单，顾客尚未付款")
        }
        (OrderStatus::NotPay, Lang::En) => {
            format!("Not paid: {amount}, ordered {created}, still awaiting payment")
        }
        (OrderStatus::Closed, Lang::Zh) => format!("已关闭（未付款），{amount}，{created} 下单"),
        (OrderStatus::Closed, Lang::En) => format!("Closed unpaid: {amount}, ordered {created}"),
        (OrderStatus::PayError, Lang::Zh) => {
            format!("支付失败，{amount}，{created} 下单，顾客需重新下单")
        }
        (OrderStatus::PayError, Lang::En) => {
            format!("Payment failed: {amount}, ordered {created}; the customer must order again")
        }
    }
}

/// `/lookup`.
#[component]
pub fn LookupPage() -> impl IntoView {
    let lang = use_lang();
    let q = query_param("q");
    let found = Resource::new(
        move || q.get(),
        // Asked even for an empty box: the server decides who may use this page, and a
        // refusal shows before anything is typed.
        |text| async move {
            let asked = !text.trim().is_empty();
            lookup(text).await.map(|r| asked.then_some(r))
        },
    );
    view! {
        <PageHeader title=Msg::NavLookup.text(lang) intro=LogsMsg::LookupIntro.text(lang)/>
        <form method="get" action="/lookup" class="form form--row lookup-form" data-testid="lookup-form">
            <input name="q" class="lookup-form__input" value=move || q.get() autofocus
                placeholder=LogsMsg::LookupPlaceholder.text(lang) aria-label=LogsMsg::LookupPlaceholder.text(lang) maxlength="100"/>
            <button type="submit" class="button button--primary">{LogsMsg::Search.text(lang)}</button>
        </form>
        <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
            {move || Suspend::new(async move {
                match found.await {
                    Ok(None) => ().into_any(),
                    Ok(Some(r)) => view! { <Results r/> }.into_any(),
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Results(r: LookupResult) -> impl IntoView {
    let lang = use_lang();
    let understood = r.amount_fen.map(|fen| {
        let range = r
            .range
            .map(|(from, to)| {
                format!(
                    "，{} {} – {}",
                    LogsMsg::Between.text(lang),
                    short_time(from, lang),
                    short_time(to, lang)
                )
            })
            .unwrap_or_default();
        view! {
            <p class="muted" data-testid="lookup-understood">
                {LogsMsg::SearchedAmount.text(lang)} " " {Fen(fen).display_yuan()} {range}
            </p>
        }
    });
    if r.rows.is_empty() {
        return view! {
            {understood}
            <p class="empty" data-testid="lookup-nothing">{LogsMsg::NothingFound.text(lang)}</p>
        }
        .into_any();
    }
    let rows = r
        .rows
        .iter()
        .map(|o| {
            let class = match o.status {
                OrderStatus::Paid => "lookup__item lookup__item--ok",
                OrderStatus::NotPay => "lookup__item lookup__item--wait",
                _ => "lookup__item",
            };
            view! {
                <li class=class data-order=o.out_trade_no.clone()>
                    <a class="mono lookup__no" href=format!("/orders/{}", o.out_trade_no)>{o.out_trade_no.clone()}</a>
                    <span class="lookup__sentence" data-testid="lookup-sentence">{status_sentence(o, lang)}</span>
                    <span class="muted">{o.description.clone()}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        {understood}
        <ul class="lookup" data-testid="lookup-results">{rows}</ul>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: OrderStatus, paid: bool) -> LookupRow {
        LookupRow {
            out_trade_no: "PD1".into(),
            status,
            total_fee: 1234,
            description: "拿铁".into(),
            created_at: 1_795_148_400_000, // 2026-11-20 12:20 +08
            paid_at: paid.then_some(1_795_157_520_000), // 2026-11-20 14:52 +08
            transaction_id: paid.then(|| "4200000001202611201234567890".into()),
        }
    }

    #[test]
    fn statuses_read_as_sentences() {
        assert_eq!(
            status_sentence(&row(OrderStatus::Paid, true), Lang::Zh),
            "已支付，¥12.34，11月20日 14:52 支付，微信支付单号 4200000001202611201234567890"
        );
        assert_eq!(
            status_sentence(&row(OrderStatus::Paid, true), Lang::En),
            "Paid ¥12.34 on Nov 20, 14:52, WeChat Pay transaction 4200000001202611201234567890"
        );
        assert_eq!(
            status_sentence(&row(OrderStatus::NotPay, false), Lang::Zh),
            "未支付，¥12.34，11月20日 12:20 下单，顾客尚未付款"
        );
        assert!(
            status_sentence(&row(OrderStatus::Refunded, true), Lang::Zh).starts_with("已全额退款")
        );
    }
}
