//! Background jobs started with the server (docs/style.md §2: they live beside the router and
//! stop with it). Each job is a loop that ends when [`Stop`] fires, which is when the server
//! begins to shut down (SIGTERM), while the HTTP side drains: work a job claimed but has not
//! started goes back to the other instances at once. [`Jobs::stop`] waits for them to finish
//! what they are doing, then aborts any that take too long.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::AppState;

pub mod alerts;
mod backlog;
mod demo;
mod disk;
mod exceptions;
mod reconcile;
pub mod refunds;
mod retention;
mod sessions;
mod sync;
mod totals;

/// A job's (or a live stream's) view of the shutdown signal.
#[derive(Clone, Debug)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    /// A signal and its view: sending `true` begins the shutdown.
    pub fn channel() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(rx))
    }

    /// Completes when shutdown begins (or its sender is gone).
    pub async fn begun(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    /// Whether shutdown has begun.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Sleeps for `d`, or less if shutdown begins; returns `true` when it is time to stop.
    pub async fn sleep(&mut self, d: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => self.is_set(),
            _ = self.0.changed() => true,
        }
    }
}

/// The running jobs.
pub struct Jobs {
    handles: Vec<(&'static str, JoinHandle<()>)>,
    /// Stops the jobs that must outlive the HTTP drain ([`Jobs::stop`]).
    after_drain: watch::Sender<bool>,
}

impl Jobs {
    /// Starts every job the settings ask for; they stop when `state.stopping` fires, but
    /// the notification backlog, which keeps what the callbacks still in flight leave in
    /// memory, only when [`Jobs::stop`] is called (after the drain).
    pub fn start(state: &AppState) -> Jobs {
        let (after_drain, last) = Stop::channel();
        let mut jobs = Jobs {
            handles: Vec::new(),
            after_drain,
        };
        let stop = state.stopping.clone();
        jobs.add(
            "expired-sessions",
            sessions::run(state.db.clone(), stop.clone()),
        );
        jobs.add(
            "notification-backlog",
            backlog::run(state.intake.clone(), last),
        );
        if state.db.backend() == paydesk_core::Backend::Postgres {
            jobs.add("order-totals", totals::run(state.db.clone(), stop.clone()));
        }
        if state.db.backend() == paydesk_core::Backend::Sqlite {
            jobs.add(
                "disk-space",
                disk::run(
                    state.disk.clone(),
                    Duration::from_secs(state.settings.disk.check_seconds),
                    stop.clone(),
                ),
            );
        }
        if state.settings.retention.enabled {
            jobs.add("retention", retention::run(state.clone(), stop.clone()));
        }
        if state.settings.exceptions.enabled {
            jobs.add("exceptions", exceptions::run(state.clone(), stop.clone()));
        }
        if state.settings.reconciliation.enabled {
            jobs.add(
                "reconciliation",
                reconcile::run(state.clone(), stop.clone()),
            );
        }
        if state.settings.sync.enabled {
            jobs.add("order-sync", sync::run(state.clone(), stop.clone()));
        }
        if state.settings.refunds.enabled {
            jobs.add("refunds", refunds::run(state.clone(), stop.clone()));
        }
        if let Some(url) = &state.settings.alerts.webhook_url {
            let format = match state.settings.alerts.format.as_deref() {
                Some("json") => alerts::Format::Json,
                _ => alerts::Format::WeCom,
            };
            jobs.add(
                "merchant-alerts",
                alerts::run(state.clone(), url.clone(), format, stop.clone()),
            );
        }
        if state.settings.runs_demo_shoppers() {
            if let Some(sim) = &state.simulator {
                jobs.add(
                    "demo-shoppers",
                    demo::run(
                        state.pay.self_url.clone(),
                        sim.clone(),
                        state.settings.demo_shoppers_per_minute,
                        stop.clone(),
                    ),
                );
            }
        }
        jobs
    }

    fn add(
        &mut self,
        name: &'static str,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        tracing::debug!(job = name, "job started");
        self.handles.push((name, tokio::spawn(fut)));
    }

    /// Stops the jobs left running (the backlog: its last flush), then waits up to `grace`
    /// in all for every job, and aborts those still running.
    pub async fn stop(self, grace: Duration) {
        let _ = self.after_drain.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut handle) in self.handles {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                tracing::warn!(job = name, "job did not stop in time; aborted");
                handle.abort();
            }
        }
    }
}
