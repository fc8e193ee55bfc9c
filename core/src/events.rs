//! The event stream (issue "pay end to end": live events). Whatever changes an order's
//! money state or rejects a callback publishes here; the dashboard's SSE stream and the
//! background jobs subscribe.
//!
//! In one process it is a `tokio::sync::broadcast` channel: publishing never blocks and
//! never fails (with no subscriber the event is simply dropped), and a subscriber that falls
//! more than [`CAPACITY`] events behind is told how many it missed (`RecvError::Lagged`)
//! instead of slowing the publisher. Events are facts after the commit, never before.
//!
//! With several instances on PostgreSQL, [`EventBus::relay_postgres`] carries every event
//! to every instance with `LISTEN/NOTIFY`: what one instance publishes reaches the other
//! instances' subscribers as it reaches its own. Whatever the relay could not carry (its
//! connection was lost and re-made, or it fell behind) is announced to this instance's
//! subscribers through [`EventBus::missed`], so the dashboards refetch instead of trusting
//! a stream with a hole in it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::Executor as _;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// How many events a slow subscriber may fall behind before it starts losing them.
pub const CAPACITY: usize = 1024;

/// The PostgreSQL channel the relay notifies and listens on.
pub const CHANNEL: &str = "paydesk_events";

/// How many events may wait for the relay's connection before newer ones are dropped (and
/// announced as missed).
const RELAY_QUEUE: usize = 8192;

/// A NOTIFY payload must stay under PostgreSQL's 8,000 bytes; events are packed up to this.
const PAYLOAD_BYTES: usize = 7000;

/// How long the relay waits before connecting again after its connection failed.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

pub use paydesk_types::{Event, PaidVia};

/// The publisher side, cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Counts the times events from other instances may have been missed.
    missed: Arc<watch::Sender<u64>>,
    /// The relay's queue, once [`EventBus::relay_postgres`] started it.
    relay: Arc<OnceLock<Outbound>>,
}

#[derive(Debug)]
struct Outbound {
    tx: mpsc::Sender<Event>,
    /// An event could not be queued: the next message tells the others they missed some.
    overflowed: AtomicBool,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

/// One NOTIFY payload: events from the instance `from` (its subscribers had them already),
/// and whether it had to drop some before them. Events are read one by one
/// ([`receive`]): one this version does not know (an instance of a newer one, during a
/// rolling upgrade) costs a refetch, not the events beside it.
#[derive(Debug, Serialize, Deserialize)]
struct Message<E = Event> {
    from: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    missed: bool,
    events: Vec<E>,
}

impl EventBus {
    /// A bus with room for [`CAPACITY`] unread events per subscriber.
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CAPACITY);
        EventBus {
            tx,
            missed: Arc::new(watch::channel(0).0),
            relay: Arc::new(OnceLock::new()),
        }
    }

    /// Publishes an event to every current subscriber, here and (with a relay) on every
    /// other instance.
    pub fn publish(&self, event: Event) {
        tracing::debug!(event = event.kind(), "event");
        if let Some(out) = self.relay.get() {
            if out.tx.try_send(event.clone()).is_err()
                && !out.overflowed.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "the event relay fell behind; other instances' dashboards will refetch"
                );
            }
        }
        let _ = self.tx.send(event);
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Changes each time events from other instances may have been missed (the relay's
    /// connection was re-made, or another instance's relay fell behind): a subscriber that
    /// shows state refetches it then.
    pub fn missed(&self) -> watch::Receiver<u64> {
        self.missed.subscribe()
    }

    fn announce_missed(&self) {
        self.missed.send_modify(|n| *n += 1);
    }

    /// Starts carrying events between the instances on the PostgreSQL database at `url`:
    /// this instance's events are sent with `pg_notify` over `pool` (batched, off the
    /// publisher's path), and every other instance's are received on a `LISTEN` connection
    /// of its own, re-made whenever it is lost. The tasks end when the returned [`Relay`]
    /// is dropped.
    pub fn relay_postgres(&self, url: &str, pool: sqlx::AnyPool) -> Relay {
        let from = instance_id();
        let (tx, rx) = mpsc::channel(RELAY_QUEUE);
        let outbound = Outbound {
            tx,
            overflowed: AtomicBool::new(false),
        };
        if self.relay.set(outbound).is_err() {
            tracing::error!("the event relay was started twice; the second is ignored");
            return Relay { tasks: Vec::new() };
        }
        let sender = tokio::spawn(send_loop(self.clone(), pool, from.clone(), rx));
        let listener = tokio::spawn(listen_loop(self.clone(), url.to_owned(), from));
        Relay {
            tasks: vec![sender, listener],
        }
    }
}

/// The relay's tasks; dropping it stops them.
#[derive(Debug)]
pub struct Relay {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A name for this process among the instances, never reused.
fn instance_id() -> String {
    use rand::Rng as _;
    let n: u64 = rand::thread_rng().gen();
    format!("{}-{n:016x}", std::process::id())
}

/// Sends what this instance published, as few NOTIFYs as the payload limit allows.
async fn send_loop(
    bus: EventBus,
    pool: sqlx::AnyPool,
    from: String,
    mut rx: mpsc::Receiver<Event>,
) {
    let mut events = Vec::new();
    while rx.recv_many(&mut events, 512).await > 0 {
        let missed = bus
            .relay
            .get()
            .is_some_and(|o| o.overflowed.swap(false, Ordering::Relaxed));
        let payloads = pack(&from, missed, std::mem::take(&mut events));
        if let Err(e) = notify(&pool, &payloads).await {
            // The others missed these: tell them as soon as the database takes a message
            // again, not only with the next event (which may be long in coming).
            tracing::warn!(error = %e, "relaying events to the other instances failed; they will be told to refetch");
            let missed = pack(&from, true, Vec::new());
            while let Err(e) = notify(&pool, &missed).await {
                tracing::debug!(error = %e, "the event relay still cannot notify");
                tokio::time::sleep(RECONNECT_AFTER).await;
            }
        }
    }
}

/// The events as NOTIFY payloads of at most [`PAYLOAD_BYTES`] each (an event too large for
/// one on its own is left out, and the message says some were missed).
fn pack(from: &str, mut missed: bool, events: Vec<Event>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = Message {
        from: from.to_owned(),
        missed,
        events: Vec::new(),
    };
    let mut size = 0;
    for event in events {
        let Ok(json) = serde_json::to_string(&event) else {
            continue;
        };
        if json.len() + 200 > PAYLOAD_BYTES {
            tracing::warn!(
                event = event.kind(),
                bytes = json.len(),
                "an event too large to relay"
            );
            missed = true;
            current.missed = true;
            continue;
        }
        if size + json.len() + 200 > PAYLOAD_BYTES && !current.events.is_empty() {
            out.extend(serde_json::to_string(&current).ok());
            current.events.clear();
            current.missed = false;
            size = 0;
        }
        size += json.len() + 1;
        current.events.push(event);
    }
    if !current.events.is_empty() || missed {
        out.extend(serde_json::to_string(&current).ok());
    }
    out
}

/// One statement, one NOTIFY per payload.
async fn notify(pool: &sqlx::AnyPool, payloads: &[String]) -> Result<(), sqlx::Error> {
    if payloads.is_empty() {
        return Ok(());
    }
    let calls: Vec<String> = (1..=payloads.len())
        .map(|i| format!("pg_notify('{CHANNEL}', ${i})"))
        .collect();
    let sql = format!("select {}", calls.join(", "));
    let mut q = sqlx::query(&sql);
    for p in payloads {
        q = q.bind(p.as_str());
    }
    pool.execute(q).await?;
    Ok(())
}

/// Receives the other instances' events and publishes them here; a lost connection is made
/// again, and then the subscribers are told they may have missed some.
async fn listen_loop(bus: EventBus, url: String, from: String) {
    let mut first = true;
    loop {
        let mut listener = match listen(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "the event relay cannot listen; trying again");
                tokio::time::sleep(RECONNECT_AFTER).await;
                continue;
            }
        };
        if !first {
            tracing::info!("the event relay is listening again; dashboards refetch");
            bus.announce_missed();
        }
        first = false;
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => receive(&bus, &from, n.payload()),
                Ok(None) => {
                    tracing::warn!("the event relay lost its connection; connecting again");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the event relay's connection failed; connecting again");
                    tokio::time::sleep(RECONNECT_AFTER).await;
                    break;
                }
            }
        }
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Publishes another instance's events to this instance's subscribers (not to the relay:
/// they came from it).
fn receive(bus: &EventBus, from: &str, payload: &str) {
    let message: Message<serde_json::Value> = match serde_json::from_str(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "an unreadable message on the event channel; dashboards refetch");
            bus.announce_missed();
            return;
        }
    };
    if message.from == from {
        return;
    }
    let mut missed = message.missed;
    for event in message.events {
        match serde_json::from_value::<Event>(event) {
            Ok(event) => {
                let _ = bus.tx.send(event);
            }
            Err(e) => {
                tracing::debug!(error = %e, "an event this version does not know");
                missed = true;
            }
        }
    }
    if missed {
        bus.announce_missed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_published_after_they_subscribed() {
        let bus = EventBus::new();
        bus.publish(Event::OrderClosed {
            order_id: 1,
            out_trade_no: "before".into(),
            status: "CLOSED".into(),
        });
        let mut rx = bus.subscribe();
        let paid = Event::OrderPaid {
            order_id: 2,
            out_trade_no: "P2".into(),
            total_fee: 1234,
            transaction_id: Some("4200".into()),
            paid_at: 1,
            via: PaidVia::Notification,
        };
        bus.publish(paid.clone());
        assert_eq!(rx.recv().await.unwrap(), paid);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn events_serialize_with_their_type() {
        let e = Event::NotificationRejected {
            notification_id: Some(7),
            kind: "payment".into(),
            verdict: "bad_signature".into(),
            out_trade_no: None,
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], e.kind());
        assert_eq!(json["verdict"], "bad_signature");
    }
}
