//! Live updates: one `EventSource` on `/api/events` per page, shared through context.
//!
//! Pages that show changing data read [`Live`]'s counters inside their resources' sources,
//! so a payment, a rejected callback or a refund change refetches them in place; the
//! [`Toasts`] in the shell announce each payment and each rejected callback. On the server
//! the counters never move (no stream there); the stream starts after hydration.

use leptos::prelude::*;
use paydesk_types::Fen;
use serde::Deserialize;

use crate::i18n::{use_lang, Lang};

/// One event from `/api/events` (the JSON of `paydesk_core::events::Event`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// An order became `PAID`.
    OrderPaid {
        /// Row id.
        order_id: i64,
        /// The merchant order number.
        out_trade_no: String,
        /// The amount in fen.
        total_fee: i64,
        /// WeChat's transaction id.
        transaction_id: Option<String>,
        /// When (UTC ms).
        paid_at: i64,
    },
    /// An order ended unpaid.
    OrderClosed {
        /// Row id.
        order_id: i64,
        /// The merchant order number.
        out_trade_no: String,
        /// The new status.
        status: String,
    },
    /// A callback was refused.
    NotificationRejected {
        /// The `notifications` row.
        notification_id: Option<i64>,
        /// `payment` or `refund`.
        kind: String,
        /// The verdict's stored name.
        verdict: String,
        /// The order number it claimed, unverified.
        out_trade_no: Option<String>,
    },
    /// A refund changed status.
    RefundChanged {
        /// Row id of the refund.
        refund_id: i64,
        /// Its number.
        out_refund_no: String,
        /// The order it belongs to.
        order_id: i64,
        /// The new status.
        status: String,
    },
}

/// The live counters: each goes up by one per event of its kind. Read them (`.get()`) in a
/// resource's source to refetch on change.
#[derive(Debug, Clone, Copy)]
pub struct Live {
    /// Orders paid.
    pub paid: RwSignal<u64>,
    /// Orders closed or failed.
    pub closed: RwSignal<u64>,
    /// Callbacks rejected.
    pub rejected: RwSignal<u64>,
    /// Refunds changed.
    pub refunds: RwSignal<u64>,
    /// Any of the above (and `lagged`: events were missed, so everything may be stale).
    pub any: RwSignal<u64>,
    /// The most recent event.
    pub last: RwSignal<Option<LiveEvent>>,
    /// Whether the stream is connected (false on the server and while reconnecting).
    pub connected: RwSignal<bool>,
}

impl Live {
    /// Creates the counters, provides them and (in the browser) opens the stream.
    pub fn provide() -> Live {
        let live = Live {
            paid: RwSignal::new(0),
            closed: RwSignal::new(0),
            rejected: RwSignal::new(0),
            refunds: RwSignal::new(0),
            any: RwSignal::new(0),
            last: RwSignal::new(None),
            connected: RwSignal::new(false),
        };
        provide_context(live);
        #[cfg(feature = "hydrate")]
        live.connect();
        live
    }

    /// Counts one event.
    pub fn record(&self, event: LiveEvent) {
        let counter = match &event {
            LiveEvent::OrderPaid { .. } => self.paid,
            LiveEvent::OrderClosed { .. } => self.closed,
            LiveEvent::NotificationRejected { .. } => self.rejected,
            LiveEvent::RefundChanged { .. } => self.refunds,
        };
        counter.update(|n| *n += 1);
        self.any.update(|n| *n += 1);
        self.last.set(Some(event));
    }

    /// Events were missed: bump every counter so every live view refetches.
    pub fn lagged(&self) {
        for counter in [
            self.paid,
            self.closed,
            self.rejected,
            self.refunds,
            self.any,
        ] {
            counter.update(|n| *n += 1);
        }
    }

    #[cfg(feature = "hydrate")]
    fn connect(self) {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;

        let Ok(source) = web_sys::EventSource::new("/api/events") else {
            return;
        };
        let on_event =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(data) = e.data().as_string() {
                    if let Ok(event) = serde_json::from_str::<LiveEvent>(&data) {
                        self.record(event);
                    }
                }
            });
        for kind in [
            "order_paid",
            "order_closed",
            "notification_rejected",
            "refund_changed",
        ] {
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        }
        let on_lagged = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_| self.lagged());
        let _ =
            source.add_event_listener_with_callback("lagged", on_lagged.as_ref().unchecked_ref());
        let on_open = Closure::<dyn Fn(web_sys::Event)>::new(move |_| self.connected.set(true));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        // The browser reconnects by itself after an error; while it does, say so.
        let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |_| self.connected.set(false));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The stream lives as long as the page: the closures are handed to JavaScript.
        on_event.forget();
        on_lagged.forget();
        on_open.forget();
        on_error.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
}

/// The live counters of this page (provided by the shell).
pub fn use_live() -> Live {
    use_context::<Live>().expect("Live is provided by the dashboard shell")
}

/// One toast on screen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Toast {
    id: u64,
    event: LiveEvent,
}

/// How long a toast stays (ms).
const TOAST_MS: u64 = 8_000;
/// At most this many toasts at once; older ones make room.
const MAX_TOASTS: usize = 5;

/// Announces each payment and each rejected callback, bottom right, for a few seconds.
#[component]
pub fn Toasts() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    let toasts = RwSignal::new(Vec::<Toast>::new());
    let next_id = StoredValue::new(0u64);
    Effect::new(move |_| {
        let Some(event) = live.last.get() else { return };
        if !matches!(
            event,
            LiveEvent::OrderPaid { .. } | LiveEvent::NotificationRejected { .. }
        ) {
            return;
        }
        let id = next_id.get_value();
        next_id.set_value(id + 1);
        toasts.update(|list| {
            list.push(Toast { id, event });
            if list.len() > MAX_TOASTS {
                list.remove(0);
            }
        });
        set_timeout(
            move || toasts.update(|list| list.retain(|t| t.id != id)),
            std::time::Duration::from_millis(TOAST_MS),
        );
    });
    view! {
        <div class="toasts" aria-live="polite" data-testid="toasts">
            <For each=move || toasts.get() key=|t| t.id let:toast>
                {toast_view(toast.event, lang)}
            </For>
        </div>
    }
}

fn toast_view(event: LiveEvent, lang: Lang) -> AnyView {
    match event {
        LiveEvent::OrderPaid {
            out_trade_no,
            total_fee,
            ..
        } => {
            let href = format!("/orders/{out_trade_no}");
            let title = match lang {
                Lang::Zh => "收到新支付",
                Lang::En => "New payment",
            };
            view! {
                <a class="toast toast--paid" href=href data-testid="toast-paid">
                    <strong>{title}</strong>
                    <span class="toast__amount">{Fen(total_fee).display_yuan()}</span>
                    <span class="toast__ref">{out_trade_no}</span>
                </a>
            }
            .into_any()
        }
        LiveEvent::NotificationRejected {
            verdict,
            kind,
            out_trade_no,
            ..
        } => {
            let title = match lang {
                Lang::Zh => "回调被拒绝",
                Lang::En => "Callback rejected",
            };
            view! {
                <a class="toast toast--rejected" href="/failures" data-testid="toast-rejected">
                    <strong>{title}</strong>
                    <span class="toast__verdict">{verdict}</span>
                    <span class="toast__ref">{kind} " " {out_trade_no.unwrap_or_default()}</span>
                </a>
            }
            .into_any()
        }
        _ => ().into_any(),
    }
}
