//! The in-process event stream (issue "pay end to end": live events). Whatever changes an
//! order's money state or rejects a callback publishes here; the dashboard's SSE stream and
//! the merchant alerts subscribe.
//!
//! It is a `tokio::sync::broadcast` channel: publishing never blocks and never fails (with
//! no subscriber the event is simply dropped), and a subscriber that falls more than
//! [`CAPACITY`] events behind is told how many it missed (`RecvError::Lagged`) instead of
//! slowing the publisher. Events are facts after the commit, never before.

use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it starts losing them.
pub const CAPACITY: usize = 1024;

pub use paydesk_types::{Event, PaidVia};

/// The publisher side, cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    /// A bus with room for [`CAPACITY`] unread events per subscriber.
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(CAPACITY);
        EventBus { tx }
    }

    /// Publishes an event to every current subscriber.
    pub fn publish(&self, event: Event) {
        tracing::debug!(event = event.kind(), "event");
        let _ = self.tx.send(event);
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
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
