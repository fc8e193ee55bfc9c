//! One order: every field, one timeline of everything that happened to it (each entry
//! linking to its raw record), and the actions support may take — ask WeChat Pay now, close
//! an unpaid order, file a refund request. The forms are `ActionForm`s (they work before
//! hydration); the page refetches after each action and on live events about this order.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use paydesk_types::{
    format_shanghai, Event, Fen, NotificationSummary, OrderStatus, RefundStatus, Verdict,
};

use crate::components::form::{result_line, OkBanner};
use crate::components::live::use_live;
use crate::components::status::{Badge, Status, StatusBadge, Tone};
use crate::dto::orders::{OrderDetail, TimelineCall, TimelineItem, TimelineWhat};
use crate::error::{AppError, Refused};
use crate::i18n::{use_lang, Lang, Msg};
use crate::pages::orders::OrdersMsg;
use crate::pages::refunds::RefundAmountAndReason;
use crate::server::orders::{get_order, CloseOrder, SyncOrder};
use crate::server::refunds::RequestRefund;

crate::messages! {
/// The order page's words.
pub enum DetailMsg {
    Back => "← 全部订单", "← All orders";
    NotFoundTitle => "订单不存在", "Order not found";
    NotFoundText => "没有这个商户订单号的订单。请检查编号，或在订单页用任意编号查找。", "There is no order with this merchant order number. Check the number, or search for any id on the Orders page.";
    Fields => "订单信息", "Order";
    Items => "商品", "Items";
    Description => "商品描述", "Description";
    Amount => "订单金额", "Amount";
    Refunded => "已退款", "Refunded";
    Refundable => "可退金额", "Refundable";
    Openid => "顾客 openid", "Customer openid";
    PrepayId => "预支付交易会话标识 prepay_id", "prepay_id";
    PrepayExpires => "prepay_id 有效期至", "prepay_id valid until";
    SignType => "签名类型", "Sign type";
    TradeType => "交易类型", "Trade type";
    Bank => "付款银行", "Bank";
    ClientIp => "下单 IP", "Client IP";
    Expires => "支付截止", "Payable until";
    Updated => "最后更新", "Last updated";
    SyncAttempts => "自动查询次数", "Automatic queries";
    Timeline => "订单时间线", "Timeline";
    Actions => "操作", "Actions";
    SyncNow => "向微信支付查询", "Sync from WeChat Pay";
    SyncHint => "立即调用 orderquery 查询这笔未支付订单的状态（已支付订单无需查询）。", "Call orderquery now for this unpaid order (a paid order needs no query).";
    Close => "关闭订单", "Close order";
    CloseHint => "调用 closeorder 关闭这笔未支付订单，顾客将无法再支付。", "Call closeorder: the customer can no longer pay this order.";
    Synced => "已同步，订单状态：", "Synced. The order is now ";
    ClosedDone => "已处理，订单状态：", "Done. The order is now ";
    FileRefund => "提交退款申请", "File a refund request";
    RefundHint => "退款申请需经理审批后执行。", "A manager approves the request before it is executed.";
    RefundFiled => "已提交退款申请，等待经理审批：", "Refund request filed, waiting for a manager: ";
    Created => "订单创建", "Order created";
    Paid => "支付成功", "Paid";
    PaymentNote => "支付结果通知", "Payment notification";
    RefundNote => "退款结果通知", "Refund notification";
    Applied => "已处理", "applied";
    Duplicate => "重复通知", "duplicate";
    Refused => "已拒绝", "refused";
    Reply => "应答", "answered";
    RefundRequested => "退款申请", "Refund requested";
    By => "申请人", "by";
    CustomerAsked => "顾客", "customer";
    Approved => "经理批准退款", "Refund approved";
    Rejected => "经理拒绝退款", "Refund rejected";
    RefundSuccess => "退款成功", "Refund succeeded";
    RefundFailed => "退款失败", "Refund failed";
    RefundClosed => "退款关闭", "Refund closed";
    RefundAbnormal => "退款异常", "Refund abnormal";
    StaffSync => "员工手动查询", "Staff synced";
    StaffClose => "员工手动关单", "Staff closed the order";
    StaffAction => "员工操作", "Staff action";
    RawRecord => "原始记录", "raw record";
    AuditEntry => "审计日志", "audit log";
    UnifiedOrder => "统一下单", "unifiedorder";
    OrderQuery => "查询订单", "orderquery";
    CloseOrder => "关闭订单", "closeorder";
    Refund => "申请退款", "refund";
    RefundQuery => "查询退款", "refundquery";
}
}

/// `/orders/{out_trade_no}`.
#[component]
pub fn OrderDetailPage() -> impl IntoView {
    let lang = use_lang();
    let params = use_params_map();
    let no = move || params.read().get("out_trade_no").unwrap_or_default();
    let sync = ServerAction::<SyncOrder>::new();
    let close = ServerAction::<CloseOrder>::new();
    let request = ServerAction::<RequestRefund>::new();
    // Live events about this order (by number, or by id for refunds) refetch the page.
    let live = use_live();
    let order_id = RwSignal::new(None::<i64>);
    let touched = RwSignal::new(0u64);
    // Each delivery of live events (at most one a second) is looked through at once.
    Effect::new(move |_| {
        let batch = live.delivered.get();
        let mine = no();
        let concerns = batch.any(|event| match event {
            Event::OrderPaid { out_trade_no, .. } | Event::OrderClosed { out_trade_no, .. } => {
                *out_trade_no == mine
            }
            Event::NotificationRejected { out_trade_no, .. } => {
                out_trade_no.as_deref() == Some(mine.as_str())
            }
            Event::RefundChanged { order_id: id, .. } => order_id.get_untracked() == Some(*id),
            Event::ExceptionsChanged { .. } => false,
        });
        if concerns {
            touched.update(|n| *n += 1);
        }
    });
    let data = Resource::new(
        move || {
            (
                no(),
                sync.version().get(),
                close.version().get(),
                request.version().get(),
                touched.get(),
            )
        },
        |(no, ..)| get_order(no),
    );
    #[cfg(feature = "ssr")]
    let response = use_context::<leptos_axum::ResponseOptions>();
    view! {
        <Title text=move || format!("{} · paydesk", no())/>
        <p><a href="/orders" class="back-link">{DetailMsg::Back.text(lang)}</a></p>
        <Transition fallback=move || view! { <p>{Msg::Loading.text(lang)}</p> }>
            {move || {
                #[cfg(feature = "ssr")]
                let response = response.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(order) => {
                            order_id.set(Some(order.id));
                            view! { <Detail order sync close request/> }.into_any()
                        }
                        Err(AppError::NotFound) => {
                            #[cfg(feature = "ssr")]
                            if let Some(r) = &response {
                                r.set_status(http::StatusCode::NOT_FOUND);
                            }
                            view! {
                                <section class="card" data-testid="order-not-found">
                                    <h1 class="page__title">{DetailMsg::NotFoundTitle.text(lang)}</h1>
                                    <p class="mono">{no()}</p>
                                    <p>{DetailMsg::NotFoundText.text(lang)}</p>
                                </section>
                            }
                            .into_any()
                        }
                        Err(error) => view! { <Refused error/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

fn opt(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".into())
}

fn time_opt(ms: Option<i64>) -> String {
    ms.map(format_shanghai).unwrap_or_else(|| "—".into())
}

#[component]
fn Detail(
    order: OrderDetail,
    sync: ServerAction<SyncOrder>,
    close: ServerAction<CloseOrder>,
    request: ServerAction<RequestRefund>,
) -> impl IntoView {
    let lang = use_lang();
    let item_rows = order
        .items
        .iter()
        .map(|i| {
            view! {
                <tr>
                    <td>{i.name.clone()}</td>
                    <td class="table__money">{Fen(i.unit_price_fen).display_yuan()}</td>
                    <td class="table__num">"× " {i.quantity}</td>
                    <td class="table__money">{Fen(i.unit_price_fen * i.quantity).display_yuan()}</td>
                </tr>
            }
        })
        .collect_view();
    let entries = order.timeline.clone();
    let can_act = order.can_act;
    let unpaid = order.status.awaits_payment();
    let refundable = matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::PartiallyRefunded
    ) && order.refundable_fen > 0;
    // Each section is type-erased: one nested view type for the whole page overflows the
    // compiler's query depth in the wasm build.
    let fields = view! {
                <section class="card">
                    <h2 class="card__title">{DetailMsg::Fields.text(lang)}</h2>
                    <dl class="facts" data-testid="order-fields">
                        <dt>{OrdersMsg::OutTradeNo.text(lang)}</dt><dd class="mono">{order.out_trade_no.clone()}</dd>
                        <dt>{OrdersMsg::TransactionId.text(lang)}</dt><dd class="mono" data-testid="transaction-id">{opt(order.transaction_id.clone())}</dd>
                        <dt>{DetailMsg::Amount.text(lang)}</dt><dd>{Fen(order.total_fee).display_yuan()}</dd>
                        <dt>{DetailMsg::Refunded.text(lang)}</dt><dd data-testid="refunded">{Fen(order.refunded_fen).display_yuan()}</dd>
                        <dt>{DetailMsg::Refundable.text(lang)}</dt><dd>{Fen(order.refundable_fen).display_yuan()}</dd>
                        <dt>{Msg::Status.text(lang)}</dt><dd><StatusBadge status=order.status/> " " <span class="muted mono">{order.status.as_str()}</span></dd>
                        <dt>{DetailMsg::Description.text(lang)}</dt><dd>{order.description.clone()}</dd>
                        <dt>{DetailMsg::Openid.text(lang)}</dt><dd class="mono">{order.openid.clone()}</dd>
                        <dt>{DetailMsg::PrepayId.text(lang)}</dt><dd class="mono">{opt(order.prepay_id.clone())}</dd>
                        <dt>{DetailMsg::PrepayExpires.text(lang)}</dt><dd>{time_opt(order.prepay_expires_at)}</dd>
                        <dt>{DetailMsg::SignType.text(lang)}</dt><dd class="mono">{order.sign_type.clone()}</dd>
                        <dt>{DetailMsg::TradeType.text(lang)}</dt><dd class="mono">{opt(order.trade_type.clone())}</dd>
                        <dt>{DetailMsg::Bank.text(lang)}</dt><dd class="mono">{opt(order.bank_type.clone())}</dd>
                        <dt>{DetailMsg::ClientIp.text(lang)}</dt><dd class="mono">{opt(order.client_ip.clone())}</dd>
                        <dt>{OrdersMsg::CreatedAt.text(lang)}</dt><dd>{format_shanghai(order.created_at)}</dd>
                        <dt>{OrdersMsg::PaidAt.text(lang)}</dt><dd>{time_opt(order.paid_at)}</dd>
                        <dt>{DetailMsg::Expires.text(lang)}</dt><dd>{time_opt(order.expires_at)}</dd>
                        <dt>{DetailMsg::Updated.text(lang)}</dt><dd>{format_shanghai(order.updated_at)}</dd>
                        <dt>{DetailMsg::SyncAttempts.text(lang)}</dt><dd>{order.sync_attempts}</dd>
                    </dl>
                </section>
    }
    .into_any();
    let items = view! {
                <section class="card">
                    <h2 class="card__title">{DetailMsg::Items.text(lang)}</h2>
                    <table class="table table--plain"><tbody>{item_rows}</tbody></table>
                </section>
    }
    .into_any();
    let timeline = view! {
                <section class="card">
                    <h2 class="card__title">{DetailMsg::Timeline.text(lang)}</h2>
                    <Timeline entries=entries/>
                    <p class="page__note">{Msg::TimesNote.text(lang)}</p>
                </section>
    }
    .into_any();
    view! {
        <header class="order-head">
            <h1 class="page__title mono" data-testid="order-no">{order.out_trade_no.clone()}</h1>
            <StatusBadge status=order.status testid="order-status"/>
            <strong class="order-head__amount">{Fen(order.total_fee).display_yuan()}</strong>
        </header>
        <div class="order-layout">
            <div class="order-layout__main">
                {fields}
                {items}
                {timeline}
            </div>
            {can_act.then(|| view! {
                <aside class="order-layout__side">
                    <Actions out_trade_no=order.out_trade_no.clone() unpaid refundable sync close request/>
                </aside>
            }.into_any())}
        </div>
    }
}

#[component]
fn Actions(
    out_trade_no: String,
    unpaid: bool,
    refundable: bool,
    sync: ServerAction<SyncOrder>,
    close: ServerAction<CloseOrder>,
    request: ServerAction<RequestRefund>,
) -> impl IntoView {
    let lang = use_lang();
    let status_result = move |r: Option<Result<OrderStatus, AppError>>, done: DetailMsg| {
        result_line(r, |status| {
            let label = Status::from(status).label(lang);
            view! { <OkBanner testid="action-result">{done.text(lang)} {label}</OkBanner> }
                .into_any()
        })
    };
    let no_sync = out_trade_no.clone();
    let no_close = out_trade_no.clone();
    let no_refund = out_trade_no;
    view! {
        <section class="card" data-testid="order-actions">
            <h2 class="card__title">{DetailMsg::Actions.text(lang)}</h2>
            {move || status_result(sync.value().get(), DetailMsg::Synced)}
            {move || status_result(close.value().get(), DetailMsg::ClosedDone)}
            <ActionForm action=sync attr:class="order-action" attr:data-testid="sync-form">
                <input type="hidden" name="out_trade_no" value=no_sync/>
                <button type="submit" class="button">{DetailMsg::SyncNow.text(lang)}</button>
                <p class="muted">{DetailMsg::SyncHint.text(lang)}</p>
            </ActionForm>
            {unpaid.then(|| view! {
                <ActionForm action=close attr:class="order-action" attr:data-testid="close-form">
                    <input type="hidden" name="out_trade_no" value=no_close/>
                    <button type="submit" class="button">{DetailMsg::Close.text(lang)}</button>
                    <p class="muted">{DetailMsg::CloseHint.text(lang)}</p>
                </ActionForm>
            })}
        </section>
        {refundable.then(|| view! {
            <section class="card">
                <h2 class="card__title">{DetailMsg::FileRefund.text(lang)}</h2>
                <p class="muted">{DetailMsg::RefundHint.text(lang)}</p>
                {move || result_line(request.value().get(), |row| view! {
                    <OkBanner testid="refund-filed">
                        {DetailMsg::RefundFiled.text(lang)} <span class="mono">{row.out_refund_no}</span> " " {Fen(row.amount_fen).display_yuan()}
                    </OkBanner>
                }.into_any())}
                <ActionForm action=request attr:class="form" attr:data-testid="order-refund-form">
                    <input type="hidden" name="out_trade_no" value=no_refund/>
                    <RefundAmountAndReason/>
                    <button type="submit" class="button button--primary">{DetailMsg::FileRefund.text(lang)}</button>
                </ActionForm>
            </section>
        })}
    }
}

fn endpoint_name(endpoint: &str, lang: Lang) -> String {
    let msg = match endpoint {
        "/pay/unifiedorder" => DetailMsg::UnifiedOrder,
        "/pay/orderquery" => DetailMsg::OrderQuery,
        "/pay/closeorder" => DetailMsg::CloseOrder,
        "/secapi/pay/refund" => DetailMsg::Refund,
        "/pay/refundquery" => DetailMsg::RefundQuery,
        other => return other.to_owned(),
    };
    msg.text(lang).to_owned()
}

/// One entry: its kind (for styling and tests), title, badge, lines and raw-record link.
struct Shown {
    kind: &'static str,
    title: String,
    badge: Option<(String, Tone)>,
    lines: Vec<String>,
    link: Option<(String, String)>,
    marker: Option<String>,
}

fn shown(what: TimelineWhat, lang: Lang) -> Shown {
    let mut s = Shown {
        kind: "",
        title: String::new(),
        badge: None,
        lines: Vec::new(),
        link: None,
        marker: None,
    };
    match what {
        TimelineWhat::Created { total_fee } => {
            s.kind = "created";
            s.title = format!(
                "{} · {}",
                DetailMsg::Created.text(lang),
                Fen(total_fee).display_yuan()
            );
        }
        TimelineWhat::ApiCall(TimelineCall {
            id,
            endpoint,
            ok,
            outcome,
            out_refund_no,
            latency_ms,
        }) => {
            s.kind = "api_call";
            s.title = format!("{} · {endpoint}", endpoint_name(&endpoint, lang));
            s.badge = Some((
                outcome.unwrap_or_else(|| if ok { "SUCCESS".into() } else { "FAIL".into() }),
                Tone::of(ok),
            ));
            s.lines.push(format!("{latency_ms} ms"));
            s.lines.extend(out_refund_no);
            s.link = Some((
                format!("/api-calls/{id}"),
                format!("{} #{id}", DetailMsg::RawRecord.text(lang)),
            ));
            s.marker = Some(endpoint);
        }
        TimelineWhat::Notification(NotificationSummary {
            id,
            kind,
            verdict,
            detail,
            reply,
            out_refund_no,
        }) => {
            s.kind = "notification";
            s.title = if kind == "refund" {
                DetailMsg::RefundNote
            } else {
                DetailMsg::PaymentNote
            }
            .text(lang)
            .to_owned();
            let word = match verdict {
                Verdict::Applied => DetailMsg::Applied,
                Verdict::Duplicate => DetailMsg::Duplicate,
                _ => DetailMsg::Refused,
            };
            let tone = match verdict {
                Verdict::Applied | Verdict::Duplicate => Status::from(verdict).tone(),
                _ => Tone::Bad,
            };
            s.badge = Some((format!("{} · {verdict}", word.text(lang)), tone));
            s.lines.push(detail);
            s.lines
                .push(format!("{} {reply}", DetailMsg::Reply.text(lang)));
            s.lines.extend(out_refund_no);
            s.link = Some((
                format!("/notifications/{id}"),
                format!("{} #{id}", DetailMsg::RawRecord.text(lang)),
            ));
            s.marker = Some(verdict.as_str().to_owned());
        }
        TimelineWhat::Paid { transaction_id } => {
            s.kind = "paid";
            s.title = DetailMsg::Paid.text(lang).to_owned();
            s.lines.extend(transaction_id);
        }
        TimelineWhat::RefundRequested {
            out_refund_no,
            amount_fen,
            reason,
            requester_kind,
            requester,
        } => {
            s.kind = "refund_requested";
            s.title = format!(
                "{} · {}",
                DetailMsg::RefundRequested.text(lang),
                Fen(amount_fen).display_yuan()
            );
            let who = if requester_kind == "customer" {
                format!("{} {requester}", DetailMsg::CustomerAsked.text(lang))
            } else {
                requester
            };
            s.lines
                .push(format!("{} {who}: {reason}", DetailMsg::By.text(lang)));
            s.lines.push(out_refund_no);
        }
        TimelineWhat::RefundDecided {
            out_refund_no,
            approved,
            by,
            reason,
        } => {
            s.kind = if approved {
                "refund_approved"
            } else {
                "refund_rejected"
            };
            s.title = if approved {
                DetailMsg::Approved
            } else {
                DetailMsg::Rejected
            }
            .text(lang)
            .to_owned();
            s.lines.push(match reason {
                Some(r) if !r.is_empty() => format!("{by}: {r}"),
                _ => by,
            });
            s.lines.push(out_refund_no);
        }
        TimelineWhat::RefundOutcome {
            out_refund_no,
            status,
            amount_fen,
            refund_id,
            last_error,
        } => {
            s.kind = "refund_outcome";
            let word = match status {
                RefundStatus::Success => DetailMsg::RefundSuccess,
                RefundStatus::RefundClose => DetailMsg::RefundClosed,
                RefundStatus::Change => DetailMsg::RefundAbnormal,
                _ => DetailMsg::RefundFailed,
            };
            // An outcome is SUCCESS, or one of the failed ones.
            let tone = Status::from(status).tone();
            s.title = format!("{} · {}", word.text(lang), Fen(amount_fen).display_yuan());
            s.badge = Some((status.as_str().to_owned(), tone));
            s.lines.push(out_refund_no);
            s.lines.extend(refund_id);
            s.lines.extend(last_error);
            s.marker = Some(status.as_str().to_owned());
        }
        TimelineWhat::Staff {
            audit_id,
            actor,
            action,
            detail,
        } => {
            s.kind = "staff";
            s.title = match action.as_str() {
                "order.sync" => DetailMsg::StaffSync,
                "order.close" => DetailMsg::StaffClose,
                _ => DetailMsg::StaffAction,
            }
            .text(lang)
            .to_owned();
            s.lines.push(format!("{actor} · {action}"));
            s.lines.extend(detail);
            s.lines
                .push(format!("{} #{audit_id}", DetailMsg::AuditEntry.text(lang)));
            s.marker = Some(action);
        }
    }
    s
}

#[component]
fn Timeline(entries: Vec<TimelineItem>) -> impl IntoView {
    let lang = use_lang();
    let items = entries
        .into_iter()
        .map(|e| {
            let s = shown(e.what, lang);
            view! {
                <li class=format!("timeline__item timeline__item--{}", s.kind) data-kind=s.kind data-marker=s.marker>
                    <time class="timeline__time">{format_shanghai(e.at)}</time>
                    <div class="timeline__body">
                        <div class="timeline__title">
                            <strong>{s.title}</strong>
                            {s.badge.map(|(text, tone)| view! { " " <Badge tone>{text}</Badge> })}
                        </div>
                        {s.lines.into_iter().map(|l| view! { <div class="timeline__line">{l}</div> }).collect_view()}
                        {s.link.map(|(href, text)| view! { <a class="timeline__link" href=href rel="external">{text}</a> })}
                    </div>
                </li>
            }
        })
        .collect_view();
    view! { <ol class="timeline" data-testid="timeline">{items}</ol> }
}
