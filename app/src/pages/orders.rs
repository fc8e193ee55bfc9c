//! Orders: one search box for any id a customer can read out (jumps to the order on an
//! exact match), filters for status, Asia/Shanghai days and amount in yuan, the count and sum
//! of the filtered set, keyset pages, and the CSV export for managers. Everything lives in
//! the URL query, so a filtered view is a link and the forms are plain GET forms that work
//! without JavaScript. The list refetches in place on live payments, closures and refunds.

use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;
use paydesk_types::{format_shanghai, Fen, OrderStatus};

use crate::components::filtered_list::DateRange;
use crate::components::form::Field;
use crate::components::live::use_live;
use crate::components::page::PageHeader;
use crate::components::pager::{PageLinks, PagerMsg};
use crate::components::status::{Status, StatusBadge};
use crate::components::table::{Column, Table};
use crate::dto::orders::{OrderListItem, OrdersView};
use crate::error::Refused;
use crate::i18n::{use_lang, Msg};
use crate::server::orders::{list_orders, RECENT};

crate::messages! {
/// The Orders pages' words.
pub enum OrdersMsg {
    Title => "订单", "Orders";
    Intro => "输入顾客报出的任何编号直接打开订单，或按状态、日期与金额筛选。默认显示最近 7 天。", "Type any id a customer reads out to open the order, or filter by status, day and amount. The last seven days are shown first.";
    SearchLabel => "查找订单", "Find an order";
    SearchPlaceholder => "商户订单号、微信支付单号、退款单号、微信退款单号或 openid", "out_trade_no, transaction_id, out_refund_no, refund_id or openid";
    Search => "查找", "Find";
    NothingFound => "没有完全匹配的订单：", "No exact match for ";
    Statuses => "状态", "Status";
    MinYuan => "最低金额（元）", "Min (yuan)";
    MaxYuan => "最高金额（元）", "Max (yuan)";
    CustomerOnly => "仅此顾客", "Only this customer";
    Apply => "筛选", "Apply";
    Clear => "清除筛选（全部时间）", "Clear filters (all time)";
    CountUnit => "笔订单", "orders";
    Total => "合计", "total";
    Export => "导出 CSV", "Export CSV";
    NoOrders => "没有符合条件的订单。", "No orders match.";
    OutTradeNo => "商户订单号", "Merchant order no.";
    TransactionId => "微信支付单号", "WeChat Pay transaction no.";
    Openid => "顾客 openid", "Customer openid";
    CreatedAt => "下单时间", "Created";
    PaidAt => "支付时间", "Paid";
    DaysNote => "日期按北京时间（Asia/Shanghai）自然日计算，含首尾两天；金额含上下限。", "Days are Asia/Shanghai calendar days, both ends included; amounts include both limits.";
}
}

/// Every order status, in the order the filter shows them.
const FILTER_ORDER: [OrderStatus; 6] = [
    OrderStatus::NotPay,
    OrderStatus::Paid,
    OrderStatus::PartiallyRefunded,
    OrderStatus::Refunded,
    OrderStatus::Closed,
    OrderStatus::PayError,
];

/// `oUpF8u…WeS6o`: enough to recognise, short enough for a table cell.
pub fn short_openid(openid: &str) -> String {
    let chars: Vec<char> = openid.chars().collect();
    if chars.len() > 12 {
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        openid.to_owned()
    }
}

/// The most earlier cursors a page link carries for "previous" (older ones are dropped:
/// "previous" from deeper than this goes back to the first page).
const MAX_PREV: usize = 100;

/// The URL of a page of the list: the filter, the page's cursor and the cursors of the pages
/// before it (so "previous" is a plain link too; keyset cursors only go forward).
fn page_url(filter_query: &str, after: Option<&str>, prev: &[String]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !filter_query.is_empty() {
        parts.push(filter_query.to_owned());
    }
    if let Some(after) = after {
        parts.push(format!("after={after}"));
        if !prev.is_empty() {
            parts.push(format!("prev={}", prev.join(".")));
        }
    }
    if parts.is_empty() {
        "/orders".to_owned()
    } else {
        format!("/orders?{}", parts.join("&"))
    }
}

/// `/orders`.
#[component]
pub fn OrdersPage() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    let query = use_query_map();
    let field = move |key: &str| query.read().get(key).unwrap_or_default();
    let args = move || {
        let statuses = query.read().get_all("status").unwrap_or_default().join(",");
        // No query at all: ask for the default view (the last seven days).
        let bare = query.read().latest_values().next().is_none();
        (
            field("q"),
            statuses,
            if bare {
                RECENT.to_owned()
            } else {
                field("from")
            },
            field("to"),
            field("min"),
            field("max"),
            field("openid"),
            field("after"),
        )
    };
    let view_data = Resource::new(
        move || {
            (
                args(),
                live.paid.get(),
                live.closed.get(),
                live.refunds.get(),
            )
        },
        |((q, status, from, to, min, max, openid, after), ..)| {
            list_orders(q, status, from, to, min, max, openid, after)
        },
    );
    view! {
        <PageHeader title=OrdersMsg::Title.text(lang) intro=OrdersMsg::Intro.text(lang)/>
        <form method="get" action="/orders" class="order-search" data-testid="order-search">
            <label class="order-search__label" for="order-search-q">{OrdersMsg::SearchLabel.text(lang)}</label>
            <input id="order-search-q" name="q" class="order-search__input mono" autocomplete="off" spellcheck="false"
                maxlength="64" placeholder=OrdersMsg::SearchPlaceholder.text(lang) value=move || field("q")/>
            <button type="submit" class="button button--primary">{OrdersMsg::Search.text(lang)}</button>
        </form>
        <FilterForm/>
        <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
            {move || Suspend::new(async move {
                match view_data.await {
                    Ok(OrdersView { jump: Some(path), .. }) => view! { <Redirect path/> }.into_any(),
                    Ok(data) => {
                        let after = field("after");
                        let prev: Vec<String> = field("prev")
                            .split('.')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect();
                        view! { <OrdersResult data after prev/> }.into_any()
                    }
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn FilterForm() -> impl IntoView {
    let lang = use_lang();
    let query = use_query_map();
    let field = move |key: &str| query.read().get(key).unwrap_or_default();
    let checked = move |status: &str| {
        query
            .read()
            .get_all("status")
            .unwrap_or_default()
            .iter()
            .flat_map(|v| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .any(|s| s == status)
    };
    let chips = FILTER_ORDER
        .into_iter()
        .map(|status| {
            let name = status.as_str();
            view! {
                <label class="chip">
                    <input type="checkbox" name="status" value=name checked=move || checked(name)/>
                    <span>{Status::from(status).label(lang)}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <form method="get" action="/orders" class="order-filter" data-testid="order-filter">
            <fieldset class="order-filter__statuses">
                <legend>{OrdersMsg::Statuses.text(lang)}</legend>
                {chips}
            </fieldset>
            <div class="order-filter__row">
                <DateRange from=Signal::derive(move || field("from")) to=Signal::derive(move || field("to"))/>
                <Field label=OrdersMsg::MinYuan.text(lang)>
                    <input name="min" inputmode="decimal" class="money-input" value=move || field("min")/>
                </Field>
                <Field label=OrdersMsg::MaxYuan.text(lang)>
                    <input name="max" inputmode="decimal" class="money-input" value=move || field("max")/>
                </Field>
                {move || {
                    let openid = field("openid");
                    (!openid.is_empty()).then(|| view! {
                        <label class="chip chip--customer">
                            <input type="checkbox" name="openid" value=openid.clone() checked=true/>
                            <span>{OrdersMsg::CustomerOnly.text(lang)} " " <span class="mono">{short_openid(&openid)}</span></span>
                        </label>
                    })
                }}
                <button type="submit" class="button">{OrdersMsg::Apply.text(lang)}</button>
                <a class="button button--quiet" href="/orders?all" data-testid="orders-all-time">{OrdersMsg::Clear.text(lang)}</a>
            </div>
        </form>
    }
}

#[component]
fn OrdersResult(data: OrdersView, after: String, prev: Vec<String>) -> impl IntoView {
    let lang = use_lang();
    let fq = data.filter_query.clone();
    let next_href = data.next.as_ref().map(|next| {
        let mut stack = prev.clone();
        if !after.is_empty() {
            stack.push(after.clone());
        }
        let start = stack.len().saturating_sub(MAX_PREV);
        page_url(&fq, Some(next), &stack[start..])
    });
    let prev_href = (!after.is_empty()).then(|| {
        let mut stack = prev.clone();
        let back = stack.pop();
        page_url(&fq, back.as_deref(), &stack)
    });
    let export_href = data.can_export.then(|| {
        if fq.is_empty() {
            "/orders/export.csv".to_owned()
        } else {
            format!("/orders/export.csv?{fq}")
        }
    });
    view! {
        {data.not_found.map(|q| view! {
            <p class="banner banner--error" role="status" data-testid="search-miss">
                {OrdersMsg::NothingFound.text(lang)} <span class="mono">{q}</span>
            </p>
        })}
        <div class="order-summary" data-testid="order-summary">
            <span>
                <strong data-testid="order-count">{data.count}</strong> " " {OrdersMsg::CountUnit.text(lang)}
                " · " {OrdersMsg::Total.text(lang)} " "
                <strong data-testid="order-sum">{Fen(data.sum_fen).display_yuan()}</strong>
            </span>
            {export_href.map(|href| view! {
                <a class="button button--small" href=href rel="external" download="" data-testid="export-csv">
                    {OrdersMsg::Export.text(lang)}
                </a>
            })}
        </div>
        <OrderTable orders=data.orders/>
        <PageLinks back=prev_href back_label=PagerMsg::Previous next=next_href next_label=PagerMsg::Next/>
        <p class="page__note">{OrdersMsg::DaysNote.text(lang)} " " {Msg::TimesNote.text(lang)}</p>
    }
}

#[component]
fn OrderTable(orders: Vec<OrderListItem>) -> impl IntoView {
    let lang = use_lang();
    if orders.is_empty() {
        return view! { <p class="empty" data-testid="no-orders">{OrdersMsg::NoOrders.text(lang)}</p> }
            .into_any();
    }
    let rows = orders
        .into_iter()
        .map(|o| {
            let href = format!("/orders/{}", o.out_trade_no);
            view! {
                <tr class="table__row" data-order=o.out_trade_no.clone() data-status=o.status.as_str()>
                    <td class="mono"><a href=href>{o.out_trade_no.clone()}</a></td>
                    <td class="mono">{o.transaction_id.clone().unwrap_or_else(|| "—".into())}</td>
                    <td class="mono" title=o.openid.clone()>{short_openid(&o.openid)}</td>
                    <td class="table__money">{Fen(o.total_fee).display_yuan()}</td>
                    <td><StatusBadge status=o.status/></td>
                    <td class="table__time">{format_shanghai(o.created_at)}</td>
                    <td class="table__time">{o.paid_at.map(format_shanghai).unwrap_or_else(|| "—".into())}</td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        OrdersMsg::OutTradeNo.text(lang),
        OrdersMsg::TransactionId.text(lang),
        OrdersMsg::Openid.text(lang),
        Msg::Amount.text(lang),
        Msg::Status.text(lang),
        OrdersMsg::CreatedAt.text(lang),
        OrdersMsg::PaidAt.text(lang),
    ]
    .map(Column::new);
    view! {
        <Table columns testid="orders-table" class="order-table">{rows}</Table>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_carry_the_filter_and_the_cursors_before() {
        assert_eq!(page_url("", None, &[]), "/orders");
        assert_eq!(
            page_url("status=PAID", Some("C2"), &["C1".into()]),
            "/orders?status=PAID&after=C2&prev=C1"
        );
        assert_eq!(
            page_url("status=PAID", None, &["C1".into()]),
            "/orders?status=PAID"
        );
    }

    #[test]
    fn long_openids_are_shortened() {
        assert_eq!(short_openid("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"), "oUpF8u…eS6o");
        assert_eq!(short_openid("short"), "short");
    }
}
