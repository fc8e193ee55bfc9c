//! The event relay between instances on PostgreSQL (`EventBus::relay_postgres`): what one
//! instance publishes reaches every other instance's subscribers exactly as published,
//! once, and never comes back to its own; a lost LISTEN connection is made again and
//! announced as missed events, so the dashboards refetch.

use std::time::Duration;

use paydesk_core::events::{Event, EventBus, PaidVia};
use paydesk_core::testing::databases;
use paydesk_core::Backend;
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

fn paid(n: i64) -> Event {
    Event::OrderPaid {
        order_id: n,
        out_trade_no: format!("EV-{n}"),
        total_fee: 100 + n,
        transaction_id: Some(format!("4200{n:08}")),
        paid_at: 1_796_551_200_000 + n,
        via: PaidVia::Notification,
    }
}

/// Publishes probes on `from` until `to` hears one (its LISTEN is in place), then drains
/// both subscriptions.
async fn wait_until_listening(
    from: &EventBus,
    to: &mut Receiver<Event>,
    own: &mut Receiver<Event>,
) {
    let probe = Event::ExceptionsChanged { open: -1 };
    for _ in 0..100 {
        from.publish(probe.clone());
        if let Ok(Ok(_)) = timeout(Duration::from_millis(100), to.recv()).await {
            tokio::time::sleep(Duration::from_millis(200)).await;
            while to.try_recv().is_ok() {}
            while own.try_recv().is_ok() {}
            return;
        }
    }
    panic!("the relay never started listening");
}

/// The events `rx` gets (late probes of [`wait_until_listening`] left out) until `n` came,
/// waiting up to 20 s for them, then 300 ms more for any extra one.
async fn received(rx: &mut Receiver<Event>, n: usize) -> Vec<Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(Event::ExceptionsChanged { open: -1 })) => {}
            Ok(Ok(e)) => out.push(e),
            _ => break,
        }
    }
    while let Ok(Ok(e)) = timeout(Duration::from_millis(300), rx.recv()).await {
        if e != (Event::ExceptionsChanged { open: -1 }) {
            out.push(e);
        }
    }
    out
}

#[tokio::test]
async fn events_reach_the_other_instance_once_and_a_lost_connection_is_announced() {
    for t in databases().await {
        if t.db.backend() != Backend::Postgres {
            continue;
        }
        // Arrange: two instances' buses on one database
        let (a, b) = (EventBus::new(), EventBus::new());
        let _ra = a.relay_postgres(&t.url, t.db.writer().clone());
        let _rb = b.relay_postgres(&t.url, t.db.writer().clone());
        let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
        wait_until_listening(&a, &mut on_b, &mut on_a).await;
        wait_until_listening(&b, &mut on_a, &mut on_b).await;
        let mut missed = b.missed();
        missed.mark_unchanged();

        // Act: 300 events on a (several NOTIFY payloads' worth), one on b
        let sent: Vec<Event> = (0..300).map(paid).collect();
        for e in &sent {
            a.publish(e.clone());
        }
        b.publish(paid(1000));

        // Assert: b's subscribers get a's events in order and their own once; a's get
        // their own once and b's
        let mut expected_on_b = sent.clone();
        expected_on_b.insert(0, paid(1000));
        let got_b = received(&mut on_b, 301).await;
        assert_eq!(got_b.len(), 301, "no event lost or doubled on b");
        assert_eq!(got_b[0], paid(1000), "b's own event reaches b at once");
        assert_eq!(&got_b[1..], &sent[..], "a's events on b, as published");
        let got_a = received(&mut on_a, 301).await;
        assert_eq!(got_a.len(), 301, "no event lost or doubled on a");
        assert_eq!(&got_a[..300], &sent[..]);
        assert_eq!(got_a[300], paid(1000));
        assert!(!missed.has_changed().unwrap());

        // Act 2: the database drops every LISTEN connection
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity \
             where query ilike 'listen%' and pid <> pg_backend_pid() \
             and datname = current_database()",
        )
        .execute(t.db.writer())
        .await
        .unwrap();

        // Assert 2: b says it may have missed events once it listens again, and then hears
        // a again
        timeout(Duration::from_secs(20), missed.changed())
            .await
            .expect("b never announced the reconnect")
            .unwrap();
        wait_until_listening(&a, &mut on_b, &mut on_a).await;
        a.publish(paid(2000));
        assert_eq!(received(&mut on_b, 1).await, vec![paid(2000)]);
    }
}
