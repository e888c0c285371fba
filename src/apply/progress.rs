//! What the executor tells a [`Progress`] sink while it runs, and how it watches an index
//! build from a second session (I/O).
//!
//! A run reports, in phase [`PHASE`], a start with its number of steps, one update when each
//! step begins and one when it ends (its description as message), and a finish. While a step
//! builds an index (CREATE INDEX [CONCURRENTLY], REINDEX), [`watch_index_build`] opens a
//! second connection through the run's [`Reconnect`] and reads
//! `pg_stat_progress_create_index` for the building backend about once a second, reporting
//! phase [`INDEX_PHASE`]: the build's own phase name, blocks or tuples done of total. The
//! watcher is best effort: when it cannot connect or read, it says so in the log and stops
//! watching; the step goes on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::db::{Conn, Target};
use crate::error::Result;
use crate::progress::{Event, Kind, Progress, Unit};

/// The phase of the executor's step events.
pub const PHASE: &str = "apply";
/// The phase of an index build's events.
pub const INDEX_PHASE: &str = "index build";

/// How long the watcher waits before its first look (a short build needs none).
const FIRST_LOOK: Duration = Duration::from_millis(300);
/// How often it looks again.
const EVERY: Duration = Duration::from_secs(1);

/// Opens another session to the server a run changes: for watching an index build, and
/// for taking the run up again after a restart. Every connect is bounded by the target's
/// connect timeout.
pub trait Reconnect: Send + Sync {
    fn connect(&self) -> Pin<Box<dyn Future<Output = Result<Conn>> + Send + '_>>;
}

impl Reconnect for Target {
    fn connect(&self) -> Pin<Box<dyn Future<Output = Result<Conn>> + Send + '_>> {
        Box::pin(crate::db::connect(self))
    }
}

/// The run's start: `total` steps.
pub(crate) fn started(sink: &dyn Progress, total: usize) {
    sink.event(
        Event::update(PHASE, Unit::Steps, 0, Some(total as u64))
            .message(format!("{total} steps to run")),
    );
}

/// Step `index` (from 0) of `total` begins (`ended` false) or ends.
pub(crate) fn step(sink: &dyn Progress, index: usize, total: usize, what: &str, ended: bool) {
    let done = index + usize::from(ended);
    sink.event(Event::update(PHASE, Unit::Steps, done as u64, Some(total as u64)).message(what));
}

/// The run is over, `done` steps of `total` ended.
pub(crate) fn finished(sink: &dyn Progress, done: usize, total: usize) {
    sink.event(
        Event::update(PHASE, Unit::Steps, done as u64, Some(total as u64)).kind(Kind::Finish),
    );
}

/// One reading of `pg_stat_progress_create_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBuild {
    pub phase: String,
    pub blocks_done: u64,
    pub blocks_total: u64,
    pub tuples_done: u64,
    pub tuples_total: u64,
}

impl IndexBuild {
    /// The event for this reading: blocks while the build scans them, else tuples.
    pub fn event(&self, index: &str) -> Event {
        let (unit, done, total) = if self.blocks_total > 0 {
            (Unit::Blocks, self.blocks_done, self.blocks_total)
        } else {
            (Unit::Tuples, self.tuples_done, self.tuples_total)
        };
        Event::update(INDEX_PHASE, unit, done, (total > 0).then_some(total))
            .step(self.phase.clone())
            .message(format!(
                "{index}: {}, blocks {} of {}, tuples {} of {}",
                self.phase,
                self.blocks_done,
                self.blocks_total,
                self.tuples_done,
                self.tuples_total
            ))
    }
}

const PROGRESS_SQL: &str = "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total \
     FROM pg_catalog.pg_stat_progress_create_index WHERE pid = $1";

/// Reads the build of backend `pid`; None when it builds nothing (yet, or any more).
async fn read(conn: &Conn, pid: i32) -> Result<Option<IndexBuild>> {
    let row = conn
        .query_opt(
            "reading pg_stat_progress_create_index",
            PROGRESS_SQL,
            &[&pid],
        )
        .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(row.map(|r| IndexBuild {
        phase: r.get(0),
        blocks_done: n(r.get(1)),
        blocks_total: n(r.get(2)),
        tuples_done: n(r.get(3)),
        tuples_total: n(r.get(4)),
    }))
}

/// Watches the index build of backend `pid` from a second session and reports each reading
/// to `sink`. Never ends by itself: the executor drops it when the step ends. A failure to
/// connect or read stops the watching only.
pub(crate) async fn watch_index_build(
    reconnect: &dyn Reconnect,
    sink: &dyn Progress,
    pid: i32,
    what: &str,
) -> Infallible {
    tokio::time::sleep(FIRST_LOOK).await;
    let conn = match reconnect.connect().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("not watching the index build: {e}");
            return std::future::pending().await;
        }
    };
    let mut last = None;
    loop {
        match read(&conn, pid).await {
            Ok(Some(b)) => {
                if last.as_ref() != Some(&b) {
                    sink.event(b.event(what));
                    last = Some(b);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("stopped watching the index build: {e}");
                return std::future::pending().await;
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Runs `work` while watching its index build, when it builds one and the run has both a
/// sink and a way to reconnect; then ends the index build's display.
pub(crate) async fn with_index_watch<T>(
    sink: Option<&Arc<dyn Progress>>,
    reconnect: Option<&Arc<dyn Reconnect>>,
    pid: Option<i32>,
    what: &str,
    work: impl Future<Output = T>,
) -> T {
    let (Some(sink), Some(reconnect), Some(pid)) = (sink, reconnect, pid) else {
        return work.await;
    };
    let out = tokio::select! {
        out = work => out,
        never = watch_index_build(reconnect.as_ref(), sink.as_ref(), pid, what) => match never {},
    };
    sink.event(Event::update(INDEX_PHASE, Unit::Blocks, 0, None).kind(Kind::Finish));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_build_reports_blocks_while_scanning_and_tuples_after() {
        let mut b = IndexBuild {
            phase: "building index: scanning table".into(),
            blocks_done: 10,
            blocks_total: 100,
            tuples_done: 0,
            tuples_total: 0,
        };
        let e = b.event("i");
        assert_eq!((e.unit, e.done, e.total), (Unit::Blocks, 10, Some(100)));
        assert_eq!(e.phase, INDEX_PHASE);
        assert_eq!(e.step.as_deref(), Some("building index: scanning table"));
        b.blocks_total = 0;
        b.tuples_done = 5;
        b.tuples_total = 50;
        let e = b.event("i");
        assert_eq!((e.unit, e.done, e.total), (Unit::Tuples, 5, Some(50)));
        assert!(e.message.unwrap().starts_with("i: building index"));
    }
}
