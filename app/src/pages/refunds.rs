//! Refunds: pending requests first with everything a manager needs to decide (order,
//! customer, amount, what is still refundable, earlier refunds, age, who asked), approve and
//! reject forms that work before hydration, the execution's progress, failures in plain
//! words, a form for support to file a request, and the refund-channel check.

use leptos::prelude::*;
use paydesk_types::{format_shanghai, Fen, RefundStatus};

use crate::components::form::{reset_on_success, result_line, Field, OkBanner};
use crate::components::page::{Loaded, PageHeader};
use crate::components::status::StatusBadge;
use crate::components::table::{Column, Table};
use crate::dto::{ChannelCheck, RefundRow};
use crate::error::{AppError, ErrorBanner};
use crate::i18n::{age_text, use_lang, Lang, Msg};
use crate::server::refunds::{
    list_refunds, ApproveRefund, CheckRefundChannel, RejectRefund, RequestRefund,
};

/// `/refunds`.
#[component]
pub fn RefundsPage() -> impl IntoView {
    let lang = use_lang();
    let request = ServerAction::<RequestRefund>::new();
    let approve = ServerAction::<ApproveRefund>::new();
    let reject = ServerAction::<RejectRefund>::new();
    let check = ServerAction::<CheckRefundChannel>::new();
    let refunds = Resource::new(
        move || {
            (
                request.version().get(),
                approve.version().get(),
                reject.version().get(),
            )
        },
        |_| list_refunds(),
    );
    view! {
        <PageHeader title=Msg::RefundsTitle.text(lang) intro=Msg::RefundsIntro.text(lang)/>
        <Loaded
            resource=refunds
            render=move |list| view! {
                <DecisionResults approve reject/>
                <RefundTable list approve reject/>
                <div class="cards">
                    <RequestForm request/>
                    <ChannelCard check/>
                </div>
            }
        />
    }
}

#[component]
fn DecisionResults(
    approve: ServerAction<ApproveRefund>,
    reject: ServerAction<RejectRefund>,
) -> impl IntoView {
    let lang = use_lang();
    let shown = move |r: Option<Result<String, AppError>>, done: Msg| {
        result_line(r, |no| {
            view! { <OkBanner>{done.text(lang)} " " {no}</OkBanner> }.into_any()
        })
    };
    view! {
        {move || shown(approve.value().get(), Msg::RefundApproved)}
        {move || shown(reject.value().get(), Msg::RefundRejected)}
    }
}

/// What a failure means and what to do, in plain words.
pub fn explain_failure(code: Option<&str>, lang: Lang) -> Option<&'static str> {
    let msg = match code? {
        "NOTENOUGH" => Msg::FailNotEnough,
        "NO_CERTIFICATE" | "CERTIFICATE_REFUSED" => Msg::FailCertificate,
        "USER_ACCOUNT_ABNORMAL" => Msg::FailAccount,
        "INVALID_REQ_TOO_MUCH" | "FREQUENCY_LIMITED" => Msg::FailTooOften,
        "TRADE_OVERDUE" => Msg::FailOverdue,
        "INVALID_TRANSACTIONID"
        | "PARAM_ERROR"
        | "INVALID_REQUEST"
        | "REFUND_FEE_MISMATCH"
        | "ORDERNOTEXIST" => Msg::FailInvalid,
        "TIMEOUT" | "TRANSPORT" | "HTTP_STATUS" | "RETURN_FAIL" => Msg::FailRetrying,
        "SIGNERROR" | "NOAUTH" | "APPID_NOT_EXIST" | "MCHID_NOT_EXIST" => Msg::FailMerchantConfig,
        "BIZERR_NEED_RETRY" | "SYSTEMERROR" => Msg::FailRetrying,
        _ => return None,
    };
    Some(msg.text(lang))
}

fn short_openid(openid: &str) -> String {
    if openid.chars().count() > 12 {
        let head: String = openid.chars().take(6).collect();
        let tail: String = openid
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{head}…{tail}")
    } else {
        openid.to_owned()
    }
}

#[component]
fn RefundTable(
    list: Vec<RefundRow>,
    approve: ServerAction<ApproveRefund>,
    reject: ServerAction<RejectRefund>,
) -> impl IntoView {
    let lang = use_lang();
    if list.is_empty() {
        return view! { <p class="empty" data-testid="no-refunds">{Msg::NoRefunds.text(lang)}</p> }
            .into_any();
    }
    let rows = list
        .into_iter()
        .map(|r| {
            let asked = if r.requester_kind == "customer" {
                format!("{} · {}", Msg::Customer.text(lang), short_openid(&r.requester))
            } else {
                r.requester.clone()
            };
            let explanation = explain_failure(r.last_error_code.as_deref(), lang);
            let detail = match r.status {
                RefundStatus::PendingApproval => None,
                RefundStatus::Failed | RefundStatus::Change | RefundStatus::RefundClose => Some(
                    explanation
                        .map(str::to_owned)
                        .or_else(|| r.last_error.clone())
                        .unwrap_or_default(),
                ),
                _ => r
                    .decision_reason
                    .clone()
                    .map(|d| format!("{} {}: {d}", r.decided_by.clone().unwrap_or_default(), Msg::Said.text(lang))),
            };
            let retrying = (r.status == RefundStatus::Submitted && r.last_error.is_some()).then(|| {
                format!("{} ({} {})", Msg::Retrying.text(lang), r.attempts, Msg::Attempts.text(lang))
            });
            view! {
                <tr class="table__row" data-refund=r.out_refund_no.clone() data-status=r.status.as_str()>
                    <td>
                        <div class="mono">{r.out_trade_no.clone()}</div>
                        <div class="muted mono">{r.out_refund_no.clone()}</div>
                    </td>
                    <td class="mono" title=r.openid.clone()>{short_openid(&r.openid)}</td>
                    <td class="table__money">
                        <strong>{Fen(r.amount_fen).display_yuan()}</strong>
                        <div class="muted">{Msg::OfTotal.text(lang)} " " {Fen(r.order_total_fee).display_yuan()}</div>
                    </td>
                    <td class="table__money">{Fen(r.refundable_left).display_yuan()}</td>
                    <td class="table__num">{r.earlier_refunds}</td>
                    <td class="table__time" title=format_shanghai(r.created_at)>{age_text(r.age_ms, lang)}</td>
                    <td>{asked}<div class="muted">{r.reason.clone()}</div></td>
                    <td>
                        <StatusBadge status=r.status/>
                        {r.refund_id.clone().map(|id| view! { <div class="muted mono">{id}</div> })}
                        {retrying.map(|t| view! { <div class="muted">{t}</div> })}
                        {detail.map(|d| view! { <div class="refund__detail" data-testid="refund-detail">{d}</div> })}
                    </td>
                    <td class="table__actions">
                        {(r.can_decide && r.paid_by_you).then(|| view! {
                            <p class="muted" data-testid="paid-by-you">{Msg::PaidByYouNote.text(lang)}</p>
                        })}
                        {r.can_decide.then(|| view! {
                            {(!r.paid_by_you).then(|| view! {
                                <ActionForm action=approve attr:class="decide-form">
                                    <input type="hidden" name="id" value=r.id/>
                                    <input name="reason" required maxlength="200" placeholder=Msg::DecisionReason.text(lang) aria-label=Msg::DecisionReason.text(lang)/>
                                    <button type="submit" class="button button--small button--primary">{Msg::Approve.text(lang)}</button>
                                </ActionForm>
                            })}
                            <ActionForm action=reject attr:class="decide-form">
                                <input type="hidden" name="id" value=r.id/>
                                <input name="reason" required maxlength="200" placeholder=Msg::DecisionReason.text(lang) aria-label=Msg::DecisionReason.text(lang)/>
                                <button type="submit" class="button button--small">{Msg::Reject.text(lang)}</button>
                            </ActionForm>
                        })}
                    </td>
                </tr>
            }
        })
        .collect_view();
    let columns = [
        Msg::OrderNo,
        Msg::Customer,
        Msg::Amount,
        Msg::RefundableLeft,
        Msg::EarlierRefunds,
        Msg::Waiting,
        Msg::AskedBy,
        Msg::Status,
        Msg::Actions,
    ]
    .map(|m| Column::new(m.text(lang)));
    view! {
        <Table columns testid="refunds-table">{rows}</Table>
        <p class="page__note">{Msg::TimesNote.text(lang)}</p>
    }
    .into_any()
}

#[component]
fn RequestForm(request: ServerAction<RequestRefund>) -> impl IntoView {
    let lang = use_lang();
    let form = reset_on_success(request);
    view! {
        <section class="card">
            <h2 class="card__title">{Msg::FileRefund.text(lang)}</h2>
            {move || result_line(request.value().get(), |row| view! {
                <OkBanner>{Msg::RefundFiled.text(lang)} " " {row.out_refund_no} " " {Fen(row.amount_fen).display_yuan()}</OkBanner>
            }.into_any())}
            <ActionForm action=request node_ref=form attr:class="form" attr:data-testid="refund-request-form">
                <Field label=Msg::OrderNo.text(lang)>
                    <input name="out_trade_no" required maxlength="32" autocomplete="off" class="mono"/>
                </Field>
                <RefundAmountAndReason/>
                <button type="submit" class="button button--primary">{Msg::FileRefund.text(lang)}</button>
            </ActionForm>
        </section>
    }
}

/// The amount (empty: everything still refundable) and reason fields of a refund request,
/// here and on an order's page.
#[component]
pub fn RefundAmountAndReason() -> impl IntoView {
    let lang = use_lang();
    view! {
        <Field label=Msg::RefundAmountYuan.text(lang)>
            <input name="amount" inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" placeholder=Msg::AllRefundable.text(lang)/>
        </Field>
        <Field label=Msg::RefundReason.text(lang)>
            <input name="reason" required maxlength="200"/>
        </Field>
    }
}

#[component]
fn ChannelCard(check: ServerAction<CheckRefundChannel>) -> impl IntoView {
    let lang = use_lang();
    let result = move |r: Option<Result<ChannelCheck, AppError>>| {
        r.map(|r| match r {
            Ok(c) => {
                let cert = match (c.subject, c.not_after) {
                    (Some(s), Some(t)) => format!("{s} · {} {}", Msg::ValidUntil.text(lang), format_shanghai(t)),
                    _ => Msg::NoCertificate.text(lang).to_owned(),
                };
                view! {
                    <div class=if c.ok { "banner banner--ok" } else { "banner banner--error" } data-testid="channel-result">
                        <strong>{if c.ok { Msg::ChannelOk.text(lang) } else { Msg::ChannelBroken.text(lang) }}</strong>
                        <div>{c.detail} " · " {c.latency_ms} " ms"</div>
                        <div class="muted">{cert}</div>
                    </div>
                }
                .into_any()
            }
            Err(error) => view! { <ErrorBanner error/> }.into_any(),
        })
    };
    view! {
        <section class="card">
            <h2 class="card__title">{Msg::RefundChannel.text(lang)}</h2>
            <p class="muted">{Msg::RefundChannelIntro.text(lang)}</p>
            {move || result(check.value().get())}
            <ActionForm action=check attr:data-testid="channel-check-form">
                <button type="submit" class="button">{Msg::CheckChannel.text(lang)}</button>
            </ActionForm>
        </section>
    }
}
