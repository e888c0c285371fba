//! Wires the parts of `pgopt serve` into the daemon's life cycle ([`super::daemon`]):
//! the store writer, the alert evaluator and its notifier, the regression check and the
//! store's rollups are the main loop's [`Hooks`]; the collector, maintenance in windows
//! and the HTTP server are its tasks.

use std::sync::Arc;
use std::time::Duration;

use super::alerts::{plan, regress, Evaluator, Notifier, Status, Transition};
use super::clock::Clock;
use super::config::Config;
use super::daemon::{until_shutdown, BoxFuture, Daemon, Hooks, StopReason, Task};
use super::http::AppState;
use super::model::{Collected, Ts};
use super::state::{Fleet, TargetView};
use super::store::writer::Writer;
use super::store::Store;
use crate::error::{Error, Result};

/// Points held in memory while the store fails (about an hour of 10 targets' samples).
const MAX_PENDING: usize = 1_000_000;
/// The bound on looking up a regressed statement's plan in the server log.
const PLAN_LOOKUP_WITHIN: Duration = Duration::from_secs(5);

/// The main loop's parts.
pub struct Parts {
    config: Arc<Config>,
    fleet: Arc<Fleet>,
    store: Arc<dyn Store>,
    writer: Writer,
    evaluator: Evaluator,
    notifier: Arc<Notifier>,
    /// When the store alert fired, while it fires.
    store_alert: Option<Ts>,
}

impl Parts {
    pub fn new(config: Arc<Config>, fleet: Arc<Fleet>, store: Arc<dyn Store>) -> Result<Self> {
        let mut evaluator = Evaluator::new(&config.alerts).map_err(Error::BadInput)?;
        evaluator.set_targets(&config.targets);
        let notifier = Arc::new(Notifier::new(&config.webhooks).map_err(Error::BadInput)?);
        Ok(Self {
            writer: Writer::new(store.clone(), fleet.clone(), MAX_PENDING),
            config,
            fleet,
            store,
            evaluator,
            notifier,
            store_alert: None,
        })
    }

    /// Stores, publishes and sends what fired or resolved.
    async fn transitions(&mut self, ts: Vec<Transition>) {
        if ts.is_empty() {
            return;
        }
        for t in &ts {
            self.writer.push(Vec::new(), Vec::new(), vec![t.event()]);
            self.notifier.send(t).await;
        }
        *self.fleet.alerts.write().unwrap_or_else(|p| p.into_inner()) = self.evaluator.statuses();
    }
}

/// The rule name of the alert a failing store raises.
pub const STORE_RULE: &str = "store";

impl Parts {
    /// A store that fails raises the `store` alert once per failure streak, and resolves
    /// it when a write succeeds again.
    async fn store_result(&mut self, failed: Option<String>, now: Ts) {
        match (failed, self.store_alert.take()) {
            (Some(error), None) => {
                let t = store_transition(Status::Firing, now, now, &error);
                self.store_alert = Some(now);
                self.transitions(vec![t]).await;
            }
            (Some(_), Some(since)) => self.store_alert = Some(since),
            (None, Some(since)) => {
                let t = store_transition(Status::Resolved, since, now, "the store writes again");
                self.transitions(vec![t]).await;
            }
            (None, None) => {}
        }
    }

    /// Adds, to a regression that fired, the plan auto_explain logged for the statement
    /// (bounded; without one, why not).
    async fn with_plan(&self, mut t: Transition) -> Transition {
        if t.status != Status::Firing || t.rule != regress::RULE {
            return t;
        }
        let Ok(queryid) = t.key.parse::<i64>() else {
            return t;
        };
        let Some(target) = self.config.targets.iter().find(|c| c.name == t.target) else {
            return t;
        };
        let store = self.store.clone();
        let name = t.target.clone();
        let text = tokio::task::spawn_blocking(move || store.statement(&name, queryid))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten();
        let Some(text) = text else {
            return t;
        };
        let lookup = async {
            let mut conn_target = target.target()?;
            conn_target.connect_timeout = conn_target.connect_timeout.min(PLAN_LOOKUP_WITHIN);
            conn_target.statement_timeout = PLAN_LOOKUP_WITHIN;
            let conn = crate::db::connect(&conn_target).await?;
            plan::latest_plan(&conn, &text).await
        };
        let note = match tokio::time::timeout(PLAN_LOOKUP_WITHIN, lookup).await {
            Ok(Ok(plan::PlanLookup::Found(entry))) => {
                t.message = format!("{}\n\nThe plan auto_explain logged:\n{entry}", t.message);
                return t;
            }
            Ok(Ok(plan::PlanLookup::NotFound(why))) => why,
            Ok(Err(e)) => format!("the plan could not be read: {e}"),
            Err(_) => format!(
                "the plan look-up did not end within {}s",
                PLAN_LOOKUP_WITHIN.as_secs()
            ),
        };
        t.message = format!("{} (no plan: {note})", t.message);
        t
    }
}

fn store_transition(status: Status, since: Ts, now: Ts, message: &str) -> Transition {
    Transition {
        id: Transition::make_id(STORE_RULE, "", "", since, status),
        status,
        rule: STORE_RULE.into(),
        severity: "critical".into(),
        condition: "the history store accepts writes".into(),
        target: String::new(),
        key: String::new(),
        value: if status == Status::Firing { 1.0 } else { 0.0 },
        threshold: 0.0,
        message: match status {
            Status::Firing => {
                format!("the history store cannot write ({message}); collection goes on in memory")
            }
            Status::Resolved => format!("the history store writes again ({message})"),
        },
        started_at: since,
        resolved_at: (status == Status::Resolved).then_some(now),
    }
}

impl Hooks for Parts {
    fn collected(&mut self, item: Collected, now: Ts) -> BoxFuture<'_> {
        Box::pin(async move {
            self.writer.push_collected(&item);
            let ts = self.evaluator.observe(&item, now);
            self.transitions(ts).await;
        })
    }

    fn flush(&mut self, now: Ts) -> BoxFuture<'_> {
        Box::pin(async move {
            let failed = self.writer.flush().await.err().map(|e| e.to_string());
            self.store_result(failed, now).await;
        })
    }

    fn regressions(&mut self, now: Ts) -> BoxFuture<'_> {
        Box::pin(async move {
            let names: Vec<String> = self.config.targets.iter().map(|t| t.name.clone()).collect();
            for name in names {
                let store = self.store.clone();
                let cfg = self.config.regressions;
                let target = name.clone();
                let found = tokio::task::spawn_blocking(move || {
                    regress::judge(store.as_ref(), &target, now, &cfg)
                })
                .await;
                let (found, judged) = match found {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => {
                        tracing::warn!(target = %name, "query regressions not checked: {e}");
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(target = %name, "query regressions not checked: {e}");
                        continue;
                    }
                };
                let mut ts = Vec::new();
                for t in self.evaluator.regressions(&name, &found, &judged, now) {
                    ts.push(self.with_plan(t).await);
                }
                self.transitions(ts).await;
            }
        })
    }

    fn maintain_store(&mut self, now: Ts) -> BoxFuture<'_> {
        Box::pin(async move {
            let store = self.store.clone();
            let retention = self.config.retention;
            match tokio::task::spawn_blocking(move || store.maintain(now, &retention)).await {
                Ok(Ok(stats)) => tracing::debug!(
                    rolled_up = stats.rolled_up,
                    deleted = stats.deleted,
                    "store rollups and retention"
                ),
                Ok(Err(e)) => tracing::warn!("store rollups and retention failed: {e}"),
                Err(e) => tracing::warn!("store rollups and retention failed: {e}"),
            }
        })
    }

    fn finish(&mut self, now: Ts) -> BoxFuture<'_> {
        Box::pin(async move {
            let failed = self.writer.flush().await.err().map(|e| e.to_string());
            if let Some(e) = &failed {
                tracing::error!(
                    pending = self.writer.pending(),
                    "the last flush failed ({e}): these points are lost"
                );
            }
            self.store_result(failed, now).await;
            if !self.notifier.flush(Duration::from_secs(3)).await {
                tracing::warn!("some webhook notifications were not delivered before the stop");
            }
        })
    }
}

/// The fleet's views, one per configured target.
pub fn fleet_of(config: &Config) -> Fleet {
    Fleet::new(
        config
            .targets
            .iter()
            .map(|t| {
                let mut labels = t.labels.clone();
                if !t.groups.is_empty() {
                    labels.insert("groups".into(), t.groups.join(","));
                }
                TargetView::new(&t.name, labels)
            })
            .collect(),
    )
}

/// Opens the store and runs the daemon until SIGTERM, Ctrl-C or its stopper: the
/// collector, maintenance in windows and the HTTP server as tasks, the writer, the alerts
/// and the regression check in the main loop.
pub async fn run(daemon: Daemon, fleet: Arc<Fleet>) -> Result<StopReason> {
    let config = daemon.config.clone();
    let clock: Arc<dyn Clock> = daemon.clock.clone();
    let store = super::store::open(&config)
        .await
        .map_err(|e| Error::BadInput(format!("the history store cannot be opened: {e}")))?;
    let parts = Parts::new(config.clone(), fleet.clone(), store.clone())?;
    let (tx, rx) = Daemon::channel();
    let app = AppState {
        config: config.clone(),
        fleet: fleet.clone(),
        store,
        clock: clock.clone(),
    };
    let tasks = vec![
        {
            let (config, fleet, clock, tx) =
                (config.clone(), fleet.clone(), clock.clone(), tx.clone());
            Task::new("collector", move |shutdown| async move {
                super::collector::run(config, fleet, clock, tx, shutdown).await;
                Ok(())
            })
        },
        {
            let (config, fleet, clock, tx) = (config.clone(), fleet.clone(), clock.clone(), tx);
            Task::new("maintenance", move |shutdown| async move {
                super::maintenance::run(config, fleet, clock, tx, shutdown).await;
                Ok(())
            })
        },
        Task::new("http", move |shutdown| async move {
            super::http::serve(app, until_shutdown(shutdown)).await
        }),
    ];
    daemon.run(Box::new(parts), tasks, rx).await
}
