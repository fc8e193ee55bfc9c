//! The audit log (admin): who did what, to what, when and from where, newest first, filtered
//! by action, actor and days, fifty to a page. The filter is a plain GET form, so the page's
//! URL is the query (shareable, and it works before the WebAssembly has loaded).

use leptos::prelude::*;
use paydesk_types::format_shanghai;

use crate::components::filtered_list::{query_param, ChoiceFilter, FilteredList};
use crate::components::form::Field;
use crate::components::pager::Pager;
use crate::components::table::{Column, Table};
use crate::dto::AuditList;
use crate::i18n::{use_lang, Lang, Msg};
use crate::server::admin::list_audit;

crate::messages! {
    /// The audit page's words.
    pub enum AuditMsg {
        Title => "审计日志", "Audit log";
        Intro => "所有登录、账户变更、商品修改、退款审批、导出与上线前自检，按时间倒序。", "Every sign-in, account change, product edit, refund decision, export and pre-flight check, newest first.";
        Action => "操作", "Action";
        AnyAction => "全部操作", "All actions";
        Actor => "操作人", "Actor";
        ActorHint => "用户名、cli 或 system", "username, cli or system";
        Target => "对象", "Target";
        Detail => "详情", "Detail";
        Ip => "IP 地址", "IP address";
        Time => "时间", "Time";
        Empty => "没有符合条件的记录。", "No entries match.";
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
        DoctorRun => "运行上线前自检", "Ran the pre-flight check";
        OrderSync => "立即向微信查单", "Asked WeChat Pay about an order";
        OrderClose => "关闭订单", "Closed an order";
        RetentionPrune => "按保留期限清理", "Pruned by the retention policy";
        ReconcileRun => "对账", "Reconciled a day with WeChat Pay's bill";
        ReconcileResolve => "处理对账差异", "Resolved a reconciliation difference";
        ReconcileSync => "对账补单", "Synced a payment from WeChat (reconciliation)";
        ExceptionClose => "关闭异常", "Closed an exception";
    }
}

/// Every action the filter offers, stored name first.
const ACTIONS: [(&str, AuditMsg); 26] = [
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
    ("order.sync", AuditMsg::OrderSync),
    ("order.close", AuditMsg::OrderClose),
    ("retention.prune", AuditMsg::RetentionPrune),
    ("reconcile.run", AuditMsg::ReconcileRun),
    ("reconcile.resolve", AuditMsg::ReconcileResolve),
    ("reconcile.sync", AuditMsg::ReconcileSync),
    ("exception.close", AuditMsg::ExceptionClose),
    ("doctor.run", AuditMsg::DoctorRun),
];

/// An action in words (the stored name itself if it is one this build does not know).
pub fn action_words(action: &str, lang: Lang) -> String {
    ACTIONS
        .iter()
        .find(|(name, _)| *name == action)
        .map(|(_, msg)| msg.text(lang).to_owned())
        .unwrap_or_else(|| action.to_owned())
}

/// `/audit`.
#[component]
pub fn AuditPage() -> impl IntoView {
    let lang = use_lang();
    let (action, actor) = (query_param("action"), query_param("actor"));
    let fetch = |[action, actor]: [String; 2], from: String, to: String, after: String| {
        let some = |s: String| (!s.is_empty()).then_some(s);
        list_audit(some(action), some(actor), some(from), some(to), some(after))
    };
    let render = move |page: AuditList, filters, paged| {
        view! { <AuditTable page filters paged lang/> }.into_any()
    };
    view! {
        <FilteredList
            path="/audit"
            title=AuditMsg::Title.text(lang)
            intro=AuditMsg::Intro.text(lang)
            form_testid="audit-filter"
            filters=["action", "actor"]
            fetch
            render
        >
            <ChoiceFilter
                label=AuditMsg::Action.text(lang)
                name="action"
                current=action
                all=AuditMsg::AnyAction.text(lang)
                options=ACTIONS.iter().map(|(name, msg)| (*name, msg.text(lang).to_owned())).collect()
            />
            <Field label=AuditMsg::Actor.text(lang)>
                <input name="actor" value=move || actor.get() placeholder=AuditMsg::ActorHint.text(lang) autocomplete="off"/>
            </Field>
        </FilteredList>
    }
}

#[component]
fn AuditTable(
    page: AuditList,
    filters: Vec<(&'static str, String)>,
    paged: bool,
    lang: Lang,
) -> impl IntoView {
    if page.entries.is_empty() {
        return view! {
            <p class="empty" data-testid="audit-empty">{AuditMsg::Empty.text(lang)}</p>
            <Pager path="/audit" params=filters paged next=None/>
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
    let columns = [
        AuditMsg::Time,
        AuditMsg::Actor,
        AuditMsg::Action,
        AuditMsg::Target,
        AuditMsg::Detail,
        AuditMsg::Ip,
    ]
    .map(|m| Column::new(m.text(lang)));
    view! {
        <Table columns testid="audit-table">{rows}</Table>
        <Pager path="/audit" params=filters paged next=page.next/>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    /// The filter offers every action the server records (core's list, which the server
    /// function checks a filter against), and nothing else.
    #[test]
    fn the_filter_offers_exactly_the_actions_the_server_records() {
        let mut offered: Vec<&str> = super::ACTIONS.iter().map(|(name, _)| *name).collect();
        let mut recorded = paydesk_core::audit::ACTIONS.to_vec();
        offered.sort_unstable();
        recorded.sort_unstable();
        assert_eq!(offered, recorded);
    }
}
