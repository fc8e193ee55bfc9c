//! The audit log (admin): who did what, to what, when and from where, newest first, filtered
//! by action, actor and days, fifty to a page. The filter is a plain GET form, so the page's
//! URL is the query (shareable, and it works before the WebAssembly has loaded).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use paydesk_types::format_shanghai;

use crate::dto::AuditList;
use crate::error::Refused;
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::admin::list_audit;

crate::messages! {
    /// The audit page's words.
    pub enum AuditMsg {
        Title => "审计日志", "Audit log";
        Intro => "所有登录、账户变更、商品修改、退款审批与导出，按时间倒序。", "Every sign-in, account change, product edit, refund decision and export, newest first.";
        Action => "操作", "Action";
        AnyAction => "全部操作", "All actions";
        Actor => "操作人", "Actor";
        ActorHint => "用户名、cli 或 system", "username, cli or system";
        From => "开始日期", "From";
        To => "结束日期（含）", "To (inclusive)";
        Filter => "筛选", "Filter";
        Clear => "清除", "Clear";
        Target => "对象", "Target";
        Detail => "详情", "Detail";
        Ip => "IP 地址", "IP address";
        Time => "时间", "Time";
        Empty => "没有符合条件的记录。", "No entries match.";
        Older => "更早的记录 →", "Older entries →";
        Newest => "← 回到最新", "← Newest";
        LoginSuccess => "登录成功", "Signed in";
        LoginFailure => "登录失败", "Failed sign-in";
        LoginThrottled => "登录被限流", "Sign-in throttled";
        Logout => "退出登录", "Signed out";
        UserCreate => "创建用户", "Created a user";
        UserRole => "修改角色", "Changed a role";
        UserDisable => "停用用户", "Disabled a user";
        UserEnable => "启用用户", "Enabled a user";
        UserPasswordReset => "重置密码", "Reset a password";
        AccountPasswordChange => "修改自己的密码", "Changed own password";
        AccountOpenidAdd => "登记自己的 openid", "Recorded an own openid";
        AccountOpenidRemove => "删除自己的 openid", "Removed an own openid";
        ProductCreate => "新增商品", "Added a product";
        ProductUpdate => "修改商品", "Changed a product";
        RefundRequest => "申请退款", "Requested a refund";
        RefundApprove => "批准退款", "Approved a refund";
        RefundReject => "拒绝退款", "Rejected a refund";
        OrderExport => "导出订单", "Exported orders";
    }
}

/// Every action the filter offers, stored name first.
const ACTIONS: [(&str, AuditMsg); 18] = [
    ("login.success", AuditMsg::LoginSuccess),
    ("login.failure", AuditMsg::LoginFailure),
    ("login.throttled", AuditMsg::LoginThrottled),
    ("logout", AuditMsg::Logout),
    ("user.create", AuditMsg::UserCreate),
    ("user.role", AuditMsg::UserRole),
    ("user.disable", AuditMsg::UserDisable),
    ("user.enable", AuditMsg::UserEnable),
    ("user.password_reset", AuditMsg::UserPasswordReset),
    ("account.password_change", AuditMsg::AccountPasswordChange),
    ("account.openid_add", AuditMsg::AccountOpenidAdd),
    ("account.openid_remove", AuditMsg::AccountOpenidRemove),
    ("product.create", AuditMsg::ProductCreate),
    ("product.update", AuditMsg::ProductUpdate),
    ("refund.request", AuditMsg::RefundRequest),
    ("refund.approve", AuditMsg::RefundApprove),
    ("refund.reject", AuditMsg::RefundReject),
    ("order.export", AuditMsg::OrderExport),
];

/// An action in words (the stored name itself if it is one this build does not know).
pub fn action_words(action: &str, lang: Lang) -> String {
    ACTIONS
        .iter()
        .find(|(name, _)| *name == action)
        .map(|(_, msg)| msg.text(lang).to_owned())
        .unwrap_or_else(|| action.to_owned())
}

/// The query string for these filters (and a cursor).
fn query_string(fields: &[(&str, String)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", crate::components::shell::urlencode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `/audit`.
#[component]
pub fn AuditPage() -> impl IntoView {
    let lang = use_lang();
    let query = use_query_map();
    let field = move |name: &str| query.with(|q| q.get(name).unwrap_or_default());
    let entries = Resource::new(
        move || {
            (
                field("action"),
                field("actor"),
                field("from"),
                field("to"),
                field("after"),
            )
        },
        |(action, actor, from, to, after)| {
            let some = |s: String| (!s.is_empty()).then_some(s);
            list_audit(some(action), some(actor), some(from), some(to), some(after))
        },
    );
    view! {
        <Title text=format!("{} · paydesk", AuditMsg::Title.text(lang))/>
        <h1 class="page__title">{AuditMsg::Title.text(lang)}</h1>
        <p class="page__intro">{AuditMsg::Intro.text(lang)}</p>
        <form method="get" action="/audit" class="form form--row filters" data-testid="audit-filter">
            <label class="form__field">
                <span>{AuditMsg::Action.text(lang)}</span>
                <select name="action">
                    <option value="" selected=move || field("action").is_empty()>{AuditMsg::AnyAction.text(lang)}</option>
                    {ACTIONS.iter().map(|(name, msg)| {
                        let name = *name;
                        view! { <option value=name selected=move || field("action") == name>{msg.text(lang)}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="form__field">
                <span>{AuditMsg::Actor.text(lang)}</span>
                <input name="actor" value=move || field("actor") placeholder=AuditMsg::ActorHint.text(lang) autocomplete="off"/>
            </label>
            <label class="form__field">
                <span>{AuditMsg::From.text(lang)}</span>
                <input name="from" type="date" value=move || field("from")/>
            </label>
            <label class="form__field">
                <span>{AuditMsg::To.text(lang)}</span>
                <input name="to" type="date" value=move || field("to")/>
            </label>
            <button type="submit" class="button button--primary">{AuditMsg::Filter.text(lang)}</button>
            <a class="button button--quiet" href="/audit">{AuditMsg::Clear.text(lang)}</a>
        </form>
        <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
            {move || Suspend::new(async move {
                match entries.await {
                    Ok(page) => {
                        let filters = vec![
                            ("action", field("action")),
                            ("actor", field("actor")),
                            ("from", field("from")),
                            ("to", field("to")),
                        ];
                        let paged = !field("after").is_empty();
                        view! { <AuditTable page filters paged lang/> }.into_any()
                    }
                    Err(error) => view! { <Refused error/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn AuditTable(
    page: AuditList,
    filters: Vec<(&'static str, String)>,
    paged: bool,
    lang: Lang,
) -> impl IntoView {
    let newest = paged.then(|| {
        let href = format!("/audit{}", query_string(&filters));
        view! { <a class="button" href=href data-testid="audit-newest">{AuditMsg::Newest.text(lang)}</a> }
    });
    let older = page.next.clone().map(|cursor| {
        let mut fields = filters.clone();
        fields.push(("after", cursor));
        let href = format!("/audit{}", query_string(&fields));
        view! { <a class="button" href=href data-testid="audit-older">{AuditMsg::Older.text(lang)}</a> }
    });
    if page.entries.is_empty() {
        return view! {
            <p class="empty" data-testid="audit-empty">{AuditMsg::Empty.text(lang)}</p>
            <div class="pager">{newest}</div>
        }
        .into_any();
    }
    let rows = page
        .entries
        .into_iter()
        .map(|e| {
            view! {
                <tr class="table__row" data-action=e.action.clone()>
                    <td class="table__time">{format_shanghai(e.created_at)}</td>
                    <td>{e.actor}</td>
                    <td title=e.action.clone()>{action_words(&e.action, lang)}</td>
                    <td class="mono">{e.target.unwrap_or_default()}</td>
                    <td class="audit__detail">{e.detail.unwrap_or_default()}</td>
                    <td class="mono">{e.ip.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="table" data-testid="audit-table">
            <thead>
                <tr>
                    <th>{AuditMsg::Time.text(lang)}</th>
                    <th>{AuditMsg::Actor.text(lang)}</th>
                    <th>{AuditMsg::Action.text(lang)}</th>
                    <th>{AuditMsg::Target.text(lang)}</th>
                    <th>{AuditMsg::Detail.text(lang)}</th>
                    <th>{AuditMsg::Ip.text(lang)}</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <div class="pager">{newest}{older}</div>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}
