//! Maintenance in windows: for each target with `maintenance = { apply = true }`, the
//! daemon runs `pgopt maintain`'s plan through the one executor, only inside the
//! configured maintenance windows, once per window opening (I/O).
//!
//! ```text
//! wait (bounded sleeps, wakes on shutdown) until a window is open
//!   -> connect, a fresh snapshot, analyze's findings   collect + advise
//!   -> maintain::advise + maintain::plan               pure
//!   -> apply::run, one step at a time                  budget = the time left in the window;
//!                                                      an interrupt at the window's end (or at
//!                                                      shutdown) cancels the step in flight,
//!                                                      which the executor cleans up
//!   -> the journal completed (steps never reached: skipped, with why)
//!   -> an Event of kind Maintenance on `events`        done / skipped / failed / left, journal
//! ```
//!
//! Time comes from the [`Clock`]: the time to the next window is computed from
//! `clock.now()` and waited in sleeps of at most [`Options::poll`], so a test moves a
//! [`super::clock::ManualClock`] and the loop sees it within one poll. Nothing runs outside a
//! window; a target with apply but no window configured is warned about once and left alone.
//! The journals are kept in `data_dir/journals/<target>/maintain-<time>.json`, one per run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::clock::Clock;
use super::config::{Config, TargetConfig};
use super::model::{Collected, Event, EventKind, Ts};
use super::state::Fleet;
use crate::advise::Thresholds;
use crate::apply::{self, Journal, OnFailure, StepState};
use crate::collect::CollectOptions;
use crate::db::{Conn, Target};
use crate::error::{Error, Result};
use crate::maintain::{self, window};

/// The reason recorded in the journal for steps a run never reached because the window
/// closed (the executor's own budget message starts the same way).
const NOT_STARTED: &str = "not started:";

/// How long a Maintenance event may wait for room on the channel before it is dropped (and
/// logged): the daemon's loop is never stuck for long.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// The longest connecting and taking the snapshot may take (and never past the window).
const PREPARE_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Bounds of the maintenance runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The longest single sleep while waiting for a window: the clock is read again after
    /// each (a moved clock, a suspended machine).
    pub poll: Duration,
    /// lock_timeout of each step (retried twice on a lock timeout).
    pub lock_timeout: Duration,
    /// statement_timeout of each step, also bounded by the time left in the window.
    pub step_timeout: Duration,
    /// The thresholds of the findings the plan is made from.
    pub thresholds: Thresholds,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(5),
            step_timeout: Duration::from_secs(3 * 3600),
            thresholds: Thresholds::default(),
        }
    }
}

/// Runs maintenance in the windows of `config` for every target with
/// `maintenance_apply`, until `shutdown` turns true (returns soon after: a step in flight
/// is cancelled and cleaned up, its journal completed).
pub async fn run(
    config: Arc<Config>,
    fleet: Arc<Fleet>,
    clock: Arc<dyn Clock>,
    events: mpsc::Sender<Collected>,
    shutdown: watch::Receiver<bool>,
) {
    run_with(config, fleet, clock, events, shutdown, Options::default()).await;
}

/// [`run`] with its bounds given.
pub async fn run_with(
    config: Arc<Config>,
    _fleet: Arc<Fleet>,
    clock: Arc<dyn Clock>,
    events: mpsc::Sender<Collected>,
    mut shutdown: watch::Receiver<bool>,
    opts: Options,
) {
    let windows = Arc::new(window::Config {
        windows: config.windows.clone(),
    });
    let mut tasks = JoinSet::new();
    for target in config.targets.iter().filter(|t| t.maintenance_apply) {
        if windows.windows.is_empty() {
            tracing::warn!(
                target = %target.name,
                "maintenance.apply is true but no [[maintenance.window]] is configured: no \
                 maintenance runs; add a window (e.g. cron = \"0 2 * * 6\", duration = \"3h\")"
            );
            continue;
        }
        let job = TargetJob {
            target: target.clone(),
            data_dir: config.data_dir.clone(),
            windows: windows.clone(),
            clock: clock.clone(),
            events: events.clone(),
            shutdown: shutdown.clone(),
            opts: opts.clone(),
        };
        tasks.spawn(job.run());
    }
    if tasks.is_empty() {
        wait_shutdown(&mut shutdown).await;
        return;
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!("a maintenance task ended abnormally: {e}");
        }
    }
}

/// Until `shutdown` is true (or its sender is gone).
async fn wait_shutdown(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Sleeps `d` or until shutdown; true when shutting down.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = wait_shutdown(shutdown) => true,
    }
}

/// One target's loop: wait for a window, run once in it, wait for the next.
struct TargetJob {
    target: TargetConfig,
    data_dir: PathBuf,
    windows: Arc<window::Config>,
    clock: Arc<dyn Clock>,
    events: mpsc::Sender<Collected>,
    shutdown: watch::Receiver<bool>,
    opts: Options,
}

impl TargetJob {
    async fn run(mut self) {
        // The opening last run in: one run per window opening.
        let mut last_run: Option<Ts> = None;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let now = self.clock.now();
            let Some(o) = window::next_window(&self.windows, now) else {
                // A pattern that never matches again (validated away, but be bounded).
                if sleep_or_shutdown(self.opts.poll, &mut self.shutdown).await {
                    return;
                }
                continue;
            };
            if o.open_now && last_run != Some(o.opens) {
                last_run = Some(o.opens);
                tracing::info!(
                    target = %self.target.name,
                    "{}: running maintenance",
                    window::describe(&self.windows, &o)
                );
                if let Some(event) = self.run_in_window(o.opens, o.closes).await {
                    self.send(event).await;
                }
                continue;
            }
            // Closed, or already run in this opening: until it opens, or closes.
            let until = if o.open_now { o.closes } else { o.opens };
            let wait = (until - now).to_std().unwrap_or(Duration::ZERO);
            let wait = wait.clamp(Duration::from_millis(10), self.opts.poll);
            if sleep_or_shutdown(wait, &mut self.shutdown).await {
                return;
            }
        }
    }

    async fn send(&self, event: Event) {
        let kind = event.kind;
        match tokio::time::timeout(SEND_WITHIN, self.events.send(Collected::Event(event))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                tracing::warn!("maintenance event not delivered: the daemon's loop is gone")
            }
            Err(_) => tracing::warn!(
                "maintenance event ({}) dropped: the daemon's loop took none for {}s",
                kind.as_str(),
                SEND_WITHIN.as_secs()
            ),
        }
    }

    fn event(&self, message: String, details: serde_json::Value) -> Event {
        let details = match details {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            _ => Default::default(),
        };
        Event {
            target: self.target.name.clone(),
            at: self.clock.now(),
            kind: EventKind::Maintenance,
            message,
            details,
        }
    }

    /// One run in the window open from `opens` to `closes`; the event that says how it went
    /// (None: the daemon shut down before anything ran).
    async fn run_in_window(&self, opens: Ts, closes: Ts) -> Option<Event> {
        let window = json!({
            "window_opens": opens.to_rfc3339(),
            "window_closes": closes.to_rfc3339(),
        });
        let with = |mut extra: serde_json::Value| {
            if let (Some(e), Some(w)) = (extra.as_object_mut(), window.as_object()) {
                e.extend(w.clone());
            }
            extra
        };
        let mut shutdown = self.shutdown.clone();
        let prepared = tokio::select! {
            p = self.prepare(closes) => p,
            _ = wait_shutdown(&mut shutdown) => return None,
        };
        Some(match prepared {
            Err(e) => self.event(
                format!(
                    "maintenance not run in this window: {e}; it is tried again in the next window"
                ),
                with(json!({ "error": e.to_string() })),
            ),
            Ok(Prepared::Standby) => self.event(
                "maintenance not run: the target is a standby (in recovery); maintenance runs on \
                 the primary"
                    .into(),
                with(json!({})),
            ),
            Ok(Prepared::NothingToDo { notes }) => self.event(
                "maintenance: nothing to do".into(),
                with(json!({ "done": 0, "skipped": 0, "failed": 0, "left": 0, "notes": notes })),
            ),
            Ok(Prepared::Plan {
                conn,
                target,
                advice,
            }) => {
                let ran = self.execute(&conn, *target, &advice, closes).await;
                let (summary, details) = ran;
                self.event(summary, with(details))
            }
        })
    }

    /// Connects, takes a fresh snapshot and makes the plan, all before the window closes.
    async fn prepare(&self, closes: Ts) -> Result<Prepared> {
        let left = time_left(self.clock.now(), closes).min(PREPARE_WITHIN);
        let target = self.target.target()?;
        let work = async {
            let conn = crate::db::connect(&target).await?;
            let info = crate::snapshot::TargetInfo {
                host: conn.host.clone(),
                port: conn.port,
                database: conn.database.clone(),
                user: conn.user.clone(),
            };
            let collect = CollectOptions {
                include_host: false,
                skip_statements: true,
                thresholds: Some(self.opts.thresholds.clone()),
                ..CollectOptions::default()
            };
            let snap = crate::collect::collect(&conn, info, &collect).await?;
            Ok::<_, Error>((conn, snap))
        };
        let (conn, snap) =
            tokio::time::timeout(left, work)
                .await
                .map_err(|_| {
                    Error::Timeout {
                    what: "connecting and taking a snapshot for maintenance".into(),
                    after: left,
                    next_step: Some(
                        "check the target's health (its page and `pgopt analyze TARGET`); the next \
                     window tries again"
                            .into(),
                    ),
                }
                })??;
        if snap.server.as_ref().is_some_and(|s| s.in_recovery) {
            return Ok(Prepared::Standby);
        }
        let findings = crate::advise::advise(&snap, &self.opts.thresholds);
        let advice = maintain::advise(
            &snap,
            &findings,
            &maintain::Options {
                thresholds: self.opts.thresholds.clone(),
                ..maintain::Options::default()
            },
        );
        if advice.tasks.is_empty() {
            return Ok(Prepared::NothingToDo {
                notes: advice.notes,
            });
        }
        Ok(Prepared::Plan {
            conn: Box::new(conn),
            target: Box::new(target),
            advice,
        })
    }

    /// Runs the plan until the window closes; (the event's message, its details).
    async fn execute(
        &self,
        conn: &Conn,
        target: Target,
        advice: &maintain::Advice,
        closes: Ts,
    ) -> (String, serde_json::Value) {
        let plan = maintain::plan(advice);
        let budget = time_left(self.clock.now(), closes);
        let journal = match journal_path(&self.data_dir, &self.target.name, self.clock.now()) {
            Ok(p) => p,
            Err(e) => {
                return (
                    format!("maintenance not run: {e}"),
                    json!({ "error": e.to_string(), "left": plan.steps.len() }),
                )
            }
        };
        // The interrupt: at the window's end (by the clock, or by the budget measured from
        // now) or at shutdown. The executor cancels the step in flight and cleans it up.
        let (interrupt_tx, interrupt) = watch::channel(false);
        let closer = tokio::spawn(close_at(
            closes,
            Instant::now() + budget,
            self.clock.clone(),
            self.shutdown.clone(),
            self.opts.poll,
            interrupt_tx,
        ));
        let exec = apply::Options {
            lock_timeout: self.opts.lock_timeout,
            statement_timeout: self
                .opts
                .step_timeout
                .min(budget)
                .max(Duration::from_secs(1)),
            lock_retries: 2,
            on_failure: OnFailure::Continue,
            interrupt: Some(interrupt),
            rollback_command: "pgopt maintain --rollback".into(),
            progress: None,
            reconnect: Some(Arc::new(target)),
            budget: Some(budget),
            ..apply::Options::default()
        };
        let outcome = apply::run(conn, &plan, Some(&journal), &exec).await;
        closer.abort();
        let shutting_down = *self.shutdown.borrow();
        let why = if shutting_down {
            format!("{NOT_STARTED} the daemon shut down")
        } else {
            format!(
                "{NOT_STARTED} the maintenance window closed at {}",
                closes.format("%Y-%m-%d %H:%M UTC")
            )
        };
        let journal_state = complete_journal(&journal, &why);
        let task_of = maintain::task_of_steps(advice);
        let mut details = json!({ "journal": journal.display().to_string() });
        let (steps, error) = match (&outcome, journal_state) {
            (Err(e), _) => (None, Some(e.to_string())),
            (Ok(_), Err(e)) => (
                None,
                Some(format!("the journal could not be completed: {e}")),
            ),
            (Ok(_), Ok(j)) => (Some(j), None),
        };
        let Some(j) = steps else {
            let e = error.unwrap_or_default();
            details["error"] = json!(e);
            let journal_note = if journal.exists() {
                format!("; the journal {} says what ran", journal.display())
            } else {
                String::new()
            };
            return (format!("maintenance failed: {e}{journal_note}"), details);
        };
        let count =
            |f: &dyn Fn(&apply::JournalStep) -> bool| j.steps.iter().filter(|s| f(s)).count();
        let left_step = |s: &apply::JournalStep| {
            s.state == StepState::Skipped
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with(NOT_STARTED))
        };
        let done = count(&|s| s.state == StepState::Done);
        let failed = count(&|s| s.state == StepState::Failed);
        let left = count(&left_step);
        let skipped = count(&|s| s.state == StepState::Skipped && !left_step(s));
        let cancelled = j.steps.iter().find(|s| {
            s.state == StepState::Failed
                && s.reason
                    .as_deref()
                    .is_some_and(|r| r.starts_with("interrupted"))
        });
        let interrupted = outcome.as_ref().is_ok_and(|r| r.interrupted);
        let list: Vec<serde_json::Value> = j
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "task": task_of.get(i).map_or(0, |t| t + 1),
                    "what": s.step.action.describe(),
                    "state": s.state,
                    "reason": s.reason,
                })
            })
            .collect();
        details["done"] = json!(done);
        details["skipped"] = json!(skipped);
        details["failed"] = json!(failed);
        details["left"] = json!(left);
        details["interrupted"] = json!(interrupted);
        details["steps"] = json!(list);
        let mut message = format!(
            "maintenance: {} done, {skipped} skipped, {failed} failed, {left} left",
            crate::advise::count(done, "step", "steps")
        );
        if left > 0 || cancelled.is_some() {
            message.push_str(if shutting_down {
                " (the daemon shut down"
            } else {
                " (the window closed"
            });
            if let Some(c) = cancelled {
                message.push_str(&format!(
                    "; the step in flight was cancelled and cleaned up: {}",
                    c.step.action.describe()
                ));
            }
            message.push_str("; the next window takes up the rest)");
        }
        message.push_str(&format!("; journal {}", journal.display()));
        (message, details)
    }
}

/// What [`TargetJob::prepare`] found.
enum Prepared {
    Standby,
    NothingToDo {
        notes: Vec<String>,
    },
    Plan {
        conn: Box<Conn>,
        target: Box<Target>,
        advice: maintain::Advice,
    },
}

/// Sets `interrupt` when the window closes (the clock passes `closes`, or the real time
/// passes `deadline`) or at shutdown. Bounded sleeps of at most `poll`.
async fn close_at(
    closes: Ts,
    deadline: Instant,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
    poll: Duration,
    interrupt: watch::Sender<bool>,
) {
    loop {
        let now = Instant::now();
        if clock.now() >= closes || now >= deadline || *shutdown.borrow() {
            let _ = interrupt.send(true);
            return;
        }
        let nap = (deadline - now).min(poll);
        if sleep_or_shutdown(nap, &mut shutdown).await {
            let _ = interrupt.send(true);
            return;
        }
    }
}

/// The time from `now` to `closes` (zero when past).
fn time_left(now: DateTime<Utc>, closes: DateTime<Utc>) -> Duration {
    (closes - now).to_std().unwrap_or(Duration::ZERO)
}

/// `data_dir/journals/<target>/maintain-<time>.json`, a name not taken yet; the directory
/// created. The target's name is made safe for a path (no separator, no `..`).
pub fn journal_path(data_dir: &Path, target: &str, at: Ts) -> Result<PathBuf> {
    let dir = data_dir.join("journals").join(path_safe(target));
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::BadInput(format!(
            "cannot create the journal directory {} ({e}); check the data directory's \
             permissions and free space",
            dir.display()
        ))
    })?;
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    for n in 0..1000 {
        let name = if n == 0 {
            format!("maintain-{stamp}.json")
        } else {
            format!("maintain-{stamp}-{n}.json")
        };
        let p = dir.join(name);
        if !p.exists() {
            return Ok(p);
        }
    }
    Err(Error::BadInput(format!(
        "{} holds 1000 journals of the same second; clear it",
        dir.display()
    )))
}

/// A target name as one path component: letters, digits, `-`, `_` and `.` kept, anything
/// else `_`; never empty, `.` or `..`.
pub fn path_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Marks the steps the run never reached (still pending) as skipped with `why`, so that
/// the journal says what happened to every step; returns the completed journal.
fn complete_journal(path: &Path, why: &str) -> Result<Journal> {
    let mut j = Journal::load(path)?;
    let pending: Vec<usize> = (0..j.steps.len())
        .filter(|i| j.steps[*i].state == StepState::Pending)
        .collect();
    if !pending.is_empty() {
        for i in pending {
            j.mark(i, StepState::Skipped, Some(why.to_string()));
        }
        j.save(path)?;
    }
    Ok(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_become_one_safe_path_component() {
        assert_eq!(path_safe("governance-primary"), "governance-primary");
        assert_eq!(path_safe("../etc/passwd"), ".._etc_passwd");
        assert_eq!(path_safe(".."), "_..");
        assert_eq!(path_safe(""), "_");
        assert_eq!(path_safe("a b/c"), "a_b_c");
    }

    #[test]
    fn journal_paths_are_per_target_and_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let at = DateTime::parse_from_rfc3339("2026-12-05T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let a = journal_path(dir.path(), "db1", at).unwrap();
        assert_eq!(
            a,
            dir.path()
                .join("journals/db1/maintain-20261205T020000Z.json")
        );
        std::fs::write(&a, "{}").unwrap();
        let b = journal_path(dir.path(), "db1", at).unwrap();
        assert_ne!(a, b);
        assert!(b.starts_with(dir.path().join("journals/db1")));
    }

    #[test]
    fn time_left_is_zero_once_the_window_closed() {
        let t = Utc::now();
        assert_eq!(
            time_left(t, t - chrono::Duration::seconds(5)),
            Duration::ZERO
        );
        assert_eq!(
            time_left(t, t + chrono::Duration::seconds(5)),
            Duration::from_secs(5)
        );
    }
}
