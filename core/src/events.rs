//! The in-process event stream (issue "pay end to end": live events). Whatever changes an
//! order's money state or rejects a callback publishes here; the dashboard's SSE stream and
//! the merchant alerts subscribe.
//!
//! It is a `tokio::sync::broadcast` channel: publishing never blocks and never fails (with
//! no subscriber the event is simply dropped), and a subscriber that falls more than
//! [`CAPACITY`] events behind is told how many it missed (`RecvError::Lagged`) instead of
//! slowing the publisher. Events are facts after the commit, never before.

use serde::Serialize;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it starts losing them.
pub const CAPACITY: usize = 1024;

/// How an order came to be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaidVia {
    /// A verified payment notification.
    Notification,
    /// An orderquery by the sync job or the mini program's status call.
    Query,
}

/// Something that happened, published after it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
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
        /// When it was paid (UTC ms).
        paid_at: i64,
        /// How we learnt it.
        via: PaidVia,
    },
    /// An order ended unpaid (`CLOSED` or `PAYERROR`).
    OrderClosed {
        /// Row id.
        order_id: i64,
        /// The merchant order number.
        out_trade_no: String,
        /// The new status.
        status: String,
    },
    /// A callback was refused (any verdict but applied/duplicate).
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

impl Event {
    /// The event's type name, as in its JSON `type` (the SSE `event:` field).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::OrderPaid { .. } => "order_paid",
            Event::OrderClosed { .. } => "order_closed",
            Event::NotificationRejected { .. } => "notification_rejected",
            Event::RefundChanged { .. } => "refund_changed",
        }
    }
}

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
