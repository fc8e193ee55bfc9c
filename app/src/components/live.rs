//! Live updates: one `EventSource` on `/api/events` per page, shared through context.
//!
//! Pages that show changing data read [`Live`]'s counters inside their resources' sources,
//! so a payment, a rejected callback or a refund change refetches them in place; the
//! [`Toasts`] in the shell announce each payment and each rejected callback. On the server
//! the counters never move (no stream there); the stream starts after hydration.
//!
//! Events reach the counters through a [`Throttle`]: at most one delivery per
//! [`REFETCH_INTERVAL_MS`], so each view refetches at most once a second however fast
//! events come (a flood of junk callbacks must not turn every open dashboard into a
//! refetch loop against the server), and the events of a busy second are delivered
//! together when it ends, so the last one is never lost.

use leptos::prelude::*;
use paydesk_types::{Event, Fen, OrderStatus, Verdict};

use crate::components::status::{Status, StatusMsg};
use crate::i18n::{use_lang, Lang};

/// How often the live counters move at most: once a second, so a view refetches at most
/// once a second whatever the event rate. A person reading a page does not see a
/// difference; a flood of a thousand events a second costs each open page one request a
/// second instead of a thousand.
pub const REFETCH_INTERVAL_MS: u64 = 1_000;

/// At most this many events are kept for one delivery (the newest). Five toasts show at
/// once; a view that picks out its own events (an order's page) refetches anyway when
/// some were dropped ([`Batch::dropped`]).
pub const MAX_BATCH: usize = 32;

/// The events of one delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Orders paid.
    pub paid: u64,
    /// Orders closed or failed.
    pub closed: u64,
    /// Callbacks rejected.
    pub rejected: u64,
    /// Refunds changed.
    pub refunds: u64,
    /// The exceptions inbox changed.
    pub exceptions: u64,
    /// The stream lagged (events were missed): everything may be stale.
    pub lagged: bool,
    /// More than [`MAX_BATCH`] events came: the oldest are not in `events`.
    pub dropped: bool,
    /// The newest events, oldest first.
    pub events: Vec<Event>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        !self.lagged && self.events.is_empty()
    }

    fn add(&mut self, event: Option<Event>) {
        let Some(event) = event else {
            self.lagged = true;
            return;
        };
        match &event {
            Event::OrderPaid { .. } => self.paid += 1,
            Event::OrderClosed { .. } => self.closed += 1,
            Event::NotificationRejected { .. } => self.rejected += 1,
            Event::RefundChanged { .. } => self.refunds += 1,
            Event::ExceptionsChanged { .. } => self.exceptions += 1,
        }
        if self.events.len() == MAX_BATCH {
            self.events.remove(0);
            self.dropped = true;
        }
        self.events.push(event);
    }

    /// Whether a view that cares about some events only should refetch: one of them is
    /// here, or events were missed or dropped.
    pub fn any(&self, concerns: impl Fn(&Event) -> bool) -> bool {
        self.lagged || self.dropped || self.events.iter().any(concerns)
    }
}

/// The refetch throttle: an event after a quiet interval is delivered at once (leading
/// edge); events during the interval that follows are gathered and delivered together
/// when it ends (trailing edge), and that starts another interval. So deliveries are at
/// least an interval apart and every event is delivered at most an interval late. Pure
/// state: the caller runs the timer ([`Throttle::push`] says when to start it,
/// [`Throttle::tick`] is called when it fires).
#[derive(Debug, Default)]
pub struct Throttle {
    /// An interval is running (the timer is set).
    cooling: bool,
    pending: Batch,
}

impl Throttle {
    /// An event arrived (`None`: the stream lagged). Returns the batch to deliver now, if
    /// the throttle was idle; the caller then starts the timer.
    pub fn push(&mut self, event: Option<Event>) -> Option<Batch> {
        self.pending.add(event);
        if self.cooling {
            return None;
        }
        self.cooling = true;
        Some(std::mem::take(&mut self.pending))
    }

    /// The timer fired. Returns the batch gathered meanwhile, if any; the caller then
    /// starts the timer again. With nothing gathered the throttle goes idle.
    pub fn tick(&mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            self.cooling = false;
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }
}

/// The live counters: each goes up once per delivery with events of its kind (at most
/// once per [`REFETCH_INTERVAL_MS`]). Read them (`.get()`) in a resource's source to
/// refetch on change.
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
    /// The exceptions inbox changed.
    pub exceptions: RwSignal<u64>,
    /// Any of the above (and `lagged`: events were missed, so everything may be stale).
    pub any: RwSignal<u64>,
    /// The most recent event.
    pub last: RwSignal<Option<Event>>,
    /// The latest delivery, for views that pick out their own events.
    pub delivered: RwSignal<Batch>,
    /// Whether the stream is connected (false on the server and while reconnecting).
    pub connected: RwSignal<bool>,
    throttle: StoredValue<Throttle>,
}

impl Live {
    /// Creates the counters, provides them and (in the browser) opens the stream.
    pub fn provide() -> Live {
        let live = Live {
            paid: RwSignal::new(0),
            closed: RwSignal::new(0),
            rejected: RwSignal::new(0),
            refunds: RwSignal::new(0),
            exceptions: RwSignal::new(0),
            any: RwSignal::new(0),
            last: RwSignal::new(None),
            delivered: RwSignal::new(Batch::default()),
            connected: RwSignal::new(false),
            throttle: StoredValue::new(Throttle::default()),
        };
        provide_context(live);
        #[cfg(feature = "hydrate")]
        live.connect();
        live
    }

    /// Counts one event (through the throttle).
    pub fn record(&self, event: Event) {
        self.arrive(Some(event));
    }

    /// Events were missed: every live view refetches (through the throttle).
    pub fn lagged(&self) {
        self.arrive(None);
    }

    fn arrive(self, event: Option<Event>) {
        if let Some(batch) = self.throttle.try_update_value(|t| t.push(event)).flatten() {
            self.deliver(batch);
            self.wait();
        }
    }

    /// Delivers what the interval gathered when it ends, and starts another if it did.
    fn wait(self) {
        set_timeout(
            move || {
                if let Some(batch) = self.throttle.try_update_value(Throttle::tick).flatten() {
                    self.deliver(batch);
                    self.wait();
                }
            },
            std::time::Duration::from_millis(REFETCH_INTERVAL_MS),
        );
    }

    /// Moves each counter the batch has events for (all of them when it lagged), once.
    fn deliver(&self, batch: Batch) {
        for (counter, n) in [
            (self.paid, batch.paid),
            (self.closed, batch.closed),
            (self.rejected, batch.rejected),
            (self.refunds, batch.refunds),
            (self.exceptions, batch.exceptions),
        ] {
            if n > 0 || batch.lagged {
                counter.update(|c| *c += 1);
            }
        }
        self.any.update(|c| *c += 1);
        if let Some(event) = batch.events.last() {
            self.last.set(Some(event.clone()));
        }
        self.delivered.set(batch);
    }

    /// Opens the page's stream, and keeps it to the page's visible life: it is closed when
    /// the page is hidden by a navigation (`pagehide`) and opened again if the browser
    /// brings the page back from its back/forward cache (`pageshow` with `persisted`). A
    /// page kept in that cache with its stream open would hold one of the six HTTP/1.1
    /// connections a browser allows per site: six such pages and every further request of
    /// the site (a page's wasm chunk, a server function) waits forever. Both listeners go
    /// with the shell that provided these counters (sign-in and sign-out rebuild it).
    #[cfg(feature = "hydrate")]
    fn connect(self) {
        use wasm_bindgen::JsCast;

        let slot = StreamSlot::default();
        self.open(&slot, true);
        let on_hide = leptos::prelude::window_event_listener_untyped("pagehide", {
            let slot = std::rc::Rc::clone(&slot);
            move |_| {
                close(&slot);
                self.connected.set(false);
            }
        });
        let on_show = leptos::prelude::window_event_listener_untyped("pageshow", {
            let slot = std::rc::Rc::clone(&slot);
            move |e| {
                let restored = e
                    .dyn_ref::<web_sys::PageTransitionEvent>()
                    .is_some_and(web_sys::PageTransitionEvent::persisted);
                if restored && !is_live(&slot) {
                    self.open(&slot, false);
                }
            }
        });
        let slot = send_wrapper::SendWrapper::new(slot);
        on_cleanup(move || {
            on_hide.remove();
            on_show.remove();
            close(&slot);
        });
    }

    /// Opens a new `EventSource` on `/api/events` into `slot`, wired to this page's
    /// counters.
    ///
    /// - Whenever a stream opens after an error, or opens for a page restored from the
    ///   back/forward cache (`fresh` false), events may have been missed: every live view
    ///   refetches.
    /// - The browser retries a network error by itself, but an HTTP error (a proxy's 502
    ///   during a deploy, a 500) closes the stream for good: a new one is opened 5 s later,
    ///   unless the page was hidden or the shell went meanwhile (the slot is then empty).
    #[cfg(feature = "hydrate")]
    fn open(self, slot: &StreamSlot, fresh: bool) {
        use std::cell::Cell;
        use std::rc::Rc;
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;

        let Ok(source) = web_sys::EventSource::new("/api/events") else {
            return;
        };
        let on_event =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                if let Some(data) = e.data().as_string() {
                    if let Ok(event) = serde_json::from_str::<Event>(&data) {
                        self.record(event);
                    }
                }
            });
        for kind in [
            "order_paid",
            "order_closed",
            "notification_rejected",
            "refund_changed",
            "exceptions_changed",
        ] {
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        }
        let on_lagged = Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |_| self.lagged());
        let _ =
            source.add_event_listener_with_callback("lagged", on_lagged.as_ref().unchecked_ref());
        let first_open = Rc::new(Cell::new(fresh));
        let on_open = Closure::<dyn Fn(web_sys::Event)>::new({
            let first_open = Rc::clone(&first_open);
            move |_| {
                self.connected.set(true);
                if !first_open.replace(false) {
                    self.lagged();
                }
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let weak = Rc::downgrade(slot);
        let on_error = Closure::<dyn Fn(web_sys::Event)>::new(move |_| {
            self.connected.set(false);
            first_open.set(false);
            let Some(slot) = weak.upgrade() else {
                return;
            };
            if closed_by_error(&slot) {
                let weak = weak.clone();
                set_timeout(
                    move || {
                        if let Some(slot) = weak.upgrade() {
                            if closed_by_error(&slot) {
                                self.open(&slot, false);
                            }
                        }
                    },
                    std::time::Duration::from_secs(5),
                );
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        // The stream's closures are handed to JavaScript (one set per stream opened).
        on_event.forget();
        on_lagged.forget();
        on_open.forget();
        on_error.forget();
        *slot.borrow_mut() = Some(source);
    }
}

/// The page's one stream, if open (none while the page is hidden or after the shell went).
#[cfg(feature = "hydrate")]
type StreamSlot = std::rc::Rc<std::cell::RefCell<Option<web_sys::EventSource>>>;

/// Whether the slot holds a stream that is open or that the browser is still retrying.
#[cfg(feature = "hydrate")]
fn is_live(slot: &StreamSlot) -> bool {
    slot.borrow()
        .as_ref()
        .is_some_and(|s| s.ready_state() != web_sys::EventSource::CLOSED)
}

/// Whether the slot holds a stream the browser gave up on (not one the page closed: that
/// empties the slot).
#[cfg(feature = "hydrate")]
fn closed_by_error(slot: &StreamSlot) -> bool {
    slot.borrow().is_some() && !is_live(slot)
}

/// Closes the slot's stream, if any, and empties it.
#[cfg(feature = "hydrate")]
fn close(slot: &StreamSlot) {
    if let Some(source) = slot.borrow_mut().take() {
        source.close();
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
    event: Event,
}

/// How long a toast stays (ms).
const TOAST_MS: u64 = 8_000;
/// At most this many toasts at once; older ones make room.
const MAX_TOASTS: usize = 5;

/// Whether an event gets a toast: a payment, a payment that failed at the bank (an order
/// marked `PAYERROR`: news about an order, not a refused callback), and a callback that
/// needs a person.
fn announced(event: &Event) -> bool {
    match event {
        Event::OrderPaid { .. } | Event::NotificationRejected { .. } => true,
        Event::OrderClosed { status, .. } => status == OrderStatus::PayError.as_str(),
        Event::RefundChanged { .. } | Event::ExceptionsChanged { .. } => false,
    }
}

/// Announces each payment, each failed payment and each callback that needs a person,
/// bottom right, for a few seconds.
#[component]
pub fn Toasts() -> impl IntoView {
    let lang = use_lang();
    let live = use_live();
    let toasts = RwSignal::new(Vec::<Toast>::new());
    let next_id = StoredValue::new(0u64);
    Effect::new(move |_| {
        let batch = live.delivered.get();
        let announced: Vec<Event> = batch.events.into_iter().filter(announced).collect();
        // Only the newest fit on screen.
        for event in announced.into_iter().rev().take(MAX_TOASTS).rev() {
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
        }
    });
    view! {
        <div class="toasts" aria-live="polite" data-testid="toasts">
            <For each=move || toasts.get() key=|t| t.id let:toast>
                {toast_view(toast.event, lang)}
            </For>
        </div>
    }
}

fn toast_view(event: Event, lang: Lang) -> AnyView {
    match event {
        Event::OrderPaid {
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
        Event::OrderClosed { out_trade_no, .. } => {
            // Only PAYERROR is announced (see `announced`): the bank refused the payment.
            let href = format!("/orders/{out_trade_no}");
            view! {
                <a class="toast toast--rejected" href=href data-testid="toast-payment-failed">
                    <strong>{StatusMsg::PayError.text(lang)}</strong>
                    <span class="toast__ref">{out_trade_no}</span>
                </a>
            }
            .into_any()
        }
        Event::NotificationRejected {
            verdict,
            kind,
            out_trade_no,
            ..
        } => {
            // The verdict in words, never its stored code.
            let verdict = verdict.parse::<Verdict>().ok();
            let title = match (verdict.is_some_and(Verdict::acknowledged), lang) {
                // Acknowledged yet raised (an order we do not have): not refused.
                (true, Lang::Zh) => "回调需要处理",
                (true, Lang::En) => "Callback needs attention",
                (false, Lang::Zh) => "回调被拒绝",
                (false, Lang::En) => "Callback rejected",
            };
            let words = match (verdict, lang) {
                (Some(v), _) => Status::from(v).label(lang),
                (None, Lang::Zh) => "未知",
                (None, Lang::En) => "Unknown",
            };
            view! {
                <a class="toast toast--rejected" href="/failures" data-testid="toast-rejected">
                    <strong>{title}</strong>
                    <span class="toast__verdict">{words}</span>
                    <span class="toast__ref">{kind} " " {out_trade_no.unwrap_or_default()}</span>
                </a>
            }
            .into_any()
        }
        _ => ().into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_failed_at_the_bank_is_announced_and_a_closed_order_is_not() {
        let closed = |status: OrderStatus| Event::OrderClosed {
            order_id: 1,
            out_trade_no: "T1".into(),
            status: status.as_str().into(),
        };
        assert!(announced(&closed(OrderStatus::PayError)));
        assert!(!announced(&closed(OrderStatus::Closed)));
        assert!(announced(&paid(1)));
    }

    fn paid(n: i64) -> Event {
        Event::OrderPaid {
            order_id: n,
            out_trade_no: format!("T{n}"),
            total_fee: 1,
            transaction_id: None,
            paid_at: n,
            via: paydesk_types::PaidVia::Notification,
        }
    }

    /// Runs the throttle over events at the given times (ms) with a timer that fires
    /// `REFETCH_INTERVAL_MS` after it is started; returns each delivery with its time.
    fn simulate(times: &[u64]) -> Vec<(u64, Batch)> {
        let mut throttle = Throttle::default();
        let mut timer: Option<u64> = None;
        let mut delivered = Vec::new();
        let mut events = times.iter().enumerate().peekable();
        loop {
            let next_event = events.peek().map(|(_, &t)| t);
            match (next_event, timer) {
                (Some(e), Some(t)) if t <= e => {
                    timer = None;
                    if let Some(b) = throttle.tick() {
                        delivered.push((t, b));
                        timer = Some(t + REFETCH_INTERVAL_MS);
                    }
                }
                (Some(e), _) => {
                    let (i, _) = events.next().unwrap();
                    if let Some(b) = throttle.push(Some(paid(i as i64))) {
                        assert!(timer.is_none(), "delivered at once while cooling");
                        delivered.push((e, b));
                        timer = Some(e + REFETCH_INTERVAL_MS);
                    }
                }
                (None, Some(t)) => {
                    timer = None;
                    if let Some(b) = throttle.tick() {
                        delivered.push((t, b));
                        timer = Some(t + REFETCH_INTERVAL_MS);
                    }
                }
                (None, None) => return delivered,
            }
        }
    }

    #[test]
    fn a_flood_is_delivered_once_a_second_and_the_last_event_is_not_lost() {
        // 5,000 events a second for three seconds, then one more after a pause.
        let mut times: Vec<u64> = (0..15_000).map(|i| i / 5).collect();
        times.push(3_500);
        let delivered = simulate(&times);
        for pair in delivered.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= REFETCH_INTERVAL_MS,
                "{:?}",
                (pair[0].0, pair[1].0)
            );
        }
        assert!(delivered.len() <= 5, "{} deliveries", delivered.len());
        let counted: u64 = delivered.iter().map(|(_, b)| b.paid).sum();
        assert_eq!(counted, times.len() as u64);
        // The last event is delivered within an interval of its arrival.
        let (at, last) = delivered.last().unwrap();
        assert!(*at >= 3_500 && *at <= 3_500 + REFETCH_INTERVAL_MS, "{at}");
        assert_eq!(last.events.last(), Some(&paid(15_000)));
        // A batch keeps the newest events and says it dropped the others.
        assert!(delivered.iter().all(|(_, b)| b.events.len() <= MAX_BATCH));
        assert!(delivered.iter().any(|(_, b)| b.dropped && b.any(|_| false)));
    }

    #[test]
    fn a_quiet_event_is_delivered_at_once() {
        let delivered = simulate(&[0, 5_000]);
        assert_eq!(
            delivered.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            [0, 5_000]
        );
        let mut throttle = Throttle::default();
        let batch = throttle.push(None).unwrap();
        assert!(batch.lagged && batch.any(|_| false));
        assert_eq!(throttle.tick(), None);
    }
}
