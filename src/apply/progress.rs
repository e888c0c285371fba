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
//! watching; the step goes on. VACUUM and ANALYZE steps are watched the same way, in
//! `pg_stat_progress_vacuum` (phase, heap blocks scanned of total) and
//! `pg_stat_progress_analyze` (phase, sample blocks scanned of total), as phase
//! [`VACUUM_PHASE`].

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

/// The phase of a VACUUM's or ANALYZE's events.
pub const VACUUM_PHASE: &str = "vacuum";

/// What a step does that a second session can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// CREATE INDEX, REINDEX: pg_stat_progress_create_index.
    IndexBuild,
    /// VACUUM, ANALYZE: pg_stat_progress_vacuum and pg_stat_progress_analyze.
    Vacuum,
}

impl Watched {
    pub fn of(action: &crate::plan::Action) -> Option<Watched> {
        if action.builds_index() {
            return Some(Watched::IndexBuild);
        }
        let sql = action.sql()?;
        let first = sql.split_whitespace().next()?.to_ascii_uppercase();
        matches!(first.as_str(), "VACUUM" | "ANALYZE").then_some(Watched::Vacuum)
    }

    fn phase(self) -> &'static str {
        match self {
            Watched::IndexBuild => INDEX_PHASE,
            Watched::Vacuum => VACUUM_PHASE,
        }
    }
}

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

/// One reading of `pg_stat_progress_vacuum` or `pg_stat_progress_analyze`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VacuumRun {
    /// `vacuum: scanning heap`, `analyze: acquiring sample rows`, ...
    pub phase: String,
    pub blocks_done: u64,
    pub blocks_total: u64,
}

impl VacuumRun {
    pub fn event(&self, what: &str) -> Event {
        Event::update(
            VACUUM_PHASE,
            Unit::Blocks,
            self.blocks_done,
            (self.blocks_total > 0).then_some(self.blocks_total),
        )
        .step(self.phase.clone())
        .message(format!(
            "{what}: {}, blocks {} of {}",
            self.phase, self.blocks_done, self.blocks_total
        ))
    }
}

const VACUUM_PROGRESS_SQL: &str = "SELECT 'vacuum: ' || phase, heap_blks_scanned, heap_blks_total \
     FROM pg_catalog.pg_stat_progress_vacuum WHERE pid = $1 \
     UNION ALL SELECT 'analyze: ' || phase, sample_blks_scanned, sample_blks_total \
     FROM pg_catalog.pg_stat_progress_analyze WHERE pid = $1";

async fn read_vacuum(conn: &Conn, pid: i32) -> Result<Option<VacuumRun>> {
    let row = conn
        .query_opt(
            "reading pg_stat_progress_vacuum",
            VACUUM_PROGRESS_SQL,
            &[&pid],
        )
        .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok(row.map(|r| VacuumRun {
        phase: r.get(0),
        blocks_done: n(r.get(1)),
        blocks_total: n(r.get(2)),
    }))
}

/// Watches what backend `pid` does (an index build, a vacuum) from a second session and
/// reports each reading to `sink`. Never ends by itself: the executor drops it when the step ends. A failure to
/// connect or read stops the watching only.
pub(crate) async fn watch(
    reconnect: &dyn Reconnect,
    sink: &dyn Progress,
    pid: i32,
    watched: Watched,
    what: &str,
) -> Infallible {
    tokio::time::sleep(FIRST_LOOK).await;
    let conn = match reconnect.connect().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("not watching the progress of {what}: {e}");
            return std::future::pending().await;
        }
    };
    let mut last = None;
    loop {
        let reading = match watched {
            Watched::IndexBuild => read(&conn, pid).await.map(|b| b.map(|b| b.event(what))),
            Watched::Vacuum => read_vacuum(&conn, pid)
                .await
                .map(|v| v.map(|v| v.event(what))),
        };
        match reading {
            Ok(Some(e)) => {
                if last.as_ref() != Some(&e) {
                    sink.event(e.clone());
                    last = Some(e);
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("stopped watching the progress of {what}: {e}");
                return std::future::pending().await;
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Runs `work` while watching its progress (an index build, a vacuum) from a second
/// session, when it does something watchable and the run has both a sink and a way to
/// reconnect; then ends that display.
pub(crate) async fn with_watch<T>(
    sink: Option<&Arc<dyn Progress>>,
    reconnect: Option<&Arc<dyn Reconnect>>,
    watched: Option<(i32, Watched)>,
    what: &str,
    work: impl Future<Output = T>,
) -> T {
    let (Some(sink), Some(reconnect), Some((pid, watched))) = (sink, reconnect, watched) else {
        return work.await;
    };
    let out = tokio::select! {
        out = work => out,
        never = watch(reconnect.as_ref(), sink.as_ref(), pid, watched, what) => match never {},
    };
    sink.event(Event::update(watched.phase(), Unit::Blocks, 0, None).kind(Kind::Finish));
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

    #[test]
    fn vacuum_and_analyze_steps_are_watched_index_builds_too() {
        use crate::ident::QualifiedName;
        use crate::plan::Step;
        let t = QualifiedName::new("public", "t");
        assert_eq!(
            Watched::of(&Step::vacuum(&t, "ANALYZE").action),
            Some(Watched::Vacuum)
        );
        assert_eq!(
            Watched::of(&Step::analyze(&t).action),
            Some(Watched::Vacuum)
        );
        assert_eq!(
            Watched::of(&Step::reindex(&t).action),
            Some(Watched::IndexBuild)
        );
        assert_eq!(Watched::of(&Step::call("SELECT 1").action), None);
        let e = VacuumRun {
            phase: "vacuum: scanning heap".into(),
            blocks_done: 5,
            blocks_total: 10,
        }
        .event("VACUUM t");
        assert_eq!((e.phase, e.done, e.total), (VACUUM_PHASE, 5, Some(10)));
    }
}
