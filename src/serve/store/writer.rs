//! The writer between the collector and the store: batches what comes in and writes it
//! in one go at each flush (the daemon flushes every few seconds, and at shutdown).
//!
//! When the store fails (disk full, a file moved, a PostgreSQL store down) everything
//! stays in memory, bounded by `max_pending` points (the oldest are dropped first, and
//! counted), the error is shown in [`Fleet::store`] and logged once per failure streak,
//! and the next flush that succeeds writes it all, with an event saying what happened.
//! Collection never waits for the store.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;

use super::{Batch, Store, StoreError};
use crate::serve::model::{Collected, Event, EventKind, Point};
use crate::serve::state::Fleet;

/// A failure streak: since when, and how much was dropped meanwhile.
#[derive(Debug, Clone)]
struct Streak {
    since: chrono::DateTime<Utc>,
    error: String,
    dropped_at_start: u64,
}

/// See the module's documentation.
pub struct Writer {
    store: Arc<dyn Store>,
    fleet: Arc<Fleet>,
    max_pending: usize,
    points: VecDeque<Point>,
    statements: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, String>>,
    events: VecDeque<Event>,
    dropped: u64,
    streak: Option<Streak>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pending", &self.points.len())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// A writer holding at most `max_pending` points (at least 1) while the store fails.
    pub fn new(store: Arc<dyn Store>, fleet: Arc<Fleet>, max_pending: usize) -> Self {
        Self {
            store,
            fleet,
            max_pending: max_pending.max(1),
            points: VecDeque::new(),
            statements: Default::default(),
            events: VecDeque::new(),
            dropped: 0,
            streak: None,
        }
    }

    /// Queues points, statement texts (per target: queryid, text) and events.
    pub fn push(
        &mut self,
        points: Vec<Point>,
        statements: Vec<(String, Vec<(i64, String)>)>,
        events: Vec<Event>,
    ) {
        self.points.extend(points);
        for (target, texts) in statements {
            self.statements.entry(target).or_default().extend(texts);
        }
        self.events.extend(events);
        self.bound();
        self.publish(None);
    }

    /// Queues what the collector handed the daemon: a sample's points and statement
    /// texts, or an event (findings are not stored).
    pub fn push_collected(&mut self, c: &Collected) {
        match c {
            Collected::Sample(s) => {
                let texts = s
                    .statements
                    .iter()
                    .map(|d| (d.queryid, d.query.clone()))
                    .collect::<Vec<_>>();
                let statements = if texts.is_empty() {
                    Vec::new()
                } else {
                    vec![(s.target.clone(), texts)]
                };
                self.push(s.points(), statements, Vec::new());
            }
            Collected::Event(e) => self.push(Vec::new(), Vec::new(), vec![e.clone()]),
            Collected::Findings { .. } => {}
        }
    }

    /// Points waiting for the store.
    pub fn pending(&self) -> usize {
        self.points.len()
    }

    /// Points dropped since the start because the store failed for too long.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn bound(&mut self) {
        while self.points.len() > self.max_pending {
            self.points.pop_front();
            self.dropped += 1;
        }
        while self.events.len() > self.max_pending {
            self.events.pop_front();
        }
    }

    fn publish(&self, wrote: Option<chrono::DateTime<Utc>>) {
        let mut h = self.fleet.store.write().unwrap_or_else(|p| p.into_inner());
        h.pending_points = self.points.len();
        h.error = self.streak.as_ref().map(|s| s.error.clone());
        if wrote.is_some() {
            h.last_write = wrote;
        }
    }

    /// Writes everything queued in one batch (on a blocking thread). Returns the points
    /// written. On error everything stays queued for the next flush.
    pub async fn flush(&mut self) -> Result<usize, StoreError> {
        if let Some(s) = &self.streak {
            // The next successful write says what happened, in the store too.
            let dropped = self.dropped - s.dropped_at_start;
            let message = format!(
                "the history store failed from {} ({}); {} point(s) were dropped while it could not write",
                s.since.format("%Y-%m-%d %H:%M:%S UTC"),
                s.error,
                dropped
            );
            let note = Event {
                target: String::new(),
                at: Utc::now(),
                kind: EventKind::StoreError,
                message,
                details: Default::default(),
            };
            // Replaced at each attempt, so that a long streak leaves one note, not many.
            if self
                .events
                .back()
                .is_some_and(|e| e.kind == EventKind::StoreError && e.target.is_empty())
            {
                self.events.pop_back();
            }
            self.events.push_back(note);
        }
        let batch = Batch {
            points: self.points.drain(..).collect(),
            statements: std::mem::take(&mut self.statements),
            events: self.events.drain(..).collect(),
        };
        if batch.is_empty() {
            self.publish(None);
            return Ok(0);
        }
        let store = Arc::clone(&self.store);
        let (batch, res) = tokio::task::spawn_blocking(move || {
            let res = store.write_batch(&batch);
            (batch, res)
        })
        .await
        .map_err(|e| StoreError::Io(format!("the store's writer thread failed: {e}")))?;
        match res {
            Ok(()) => {
                let n = batch.points.len();
                if let Some(s) = self.streak.take() {
                    tracing::info!(
                        points = n,
                        dropped = self.dropped - s.dropped_at_start,
                        "the history store writes again; the points held in memory are written"
                    );
                }
                self.publish(Some(Utc::now()));
                Ok(n)
            }
            Err(e) => {
                // Back in front of whatever came meanwhile (nothing: flush holds &mut self).
                self.points = batch.points.into();
                self.statements = batch.statements;
                self.events = batch.events.into();
                let text = e.to_string();
                match &mut self.streak {
                    None => {
                        tracing::error!(
                            error = %text,
                            pending = self.points.len(),
                            "cannot write to the history store; collection goes on and points are kept in memory"
                        );
                        self.streak = Some(Streak {
                            since: Utc::now(),
                            error: text,
                            dropped_at_start: self.dropped,
                        });
                    }
                    Some(s) => s.error = text,
                }
                self.publish(None);
                Err(e)
            }
        }
    }
}
