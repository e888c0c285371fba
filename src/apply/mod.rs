//! The one executor of [`Plan`]s: the only place pgopt changes a server (I/O).
//!
//! A run takes the pgopt advisory lock (bounded wait, then refuses naming the holder), writes
//! the journal, and then for each step, one statement at a time and never in a transaction
//! block: re-checks its precondition under the lock (not holding: skipped with the reason),
//! records its undo, marks it started in the journal, runs it under its own lock_timeout and
//! statement_timeout (retrying a bounded number of times on a lock timeout, 55P03), verifies
//! it and marks it done. On failure the step is cleaned up (an invalid index left by a failed
//! or cancelled CREATE INDEX CONCURRENTLY is dropped) and, as asked, this run's steps are
//! undone newest first, or the run stops and says what is left. An interrupt (Ctrl-C) cancels
//! the running step on the server, cleans it up, completes the journal and ends the run.
//! A restart step ([`Action::Restart`], run when an earlier step of the run waits for one)
//! restarts the server through the plan [`restart::plan`] made and the command confirmed,
//! connects again through [`Options::reconnect`], takes the advisory lock again on the new
//! session and verifies the settings that waited; the rest of the run uses that session.
//! [`rollback`] replays any journal, of this run or an old one.

pub mod checks;
pub mod journal;
pub mod lock;
pub mod objects;
pub mod progress;
pub mod restart;
pub mod settings;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_postgres::error::SqlState;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::plan::{Action, Plan, Precondition, Step, Verify};
use crate::progress::Progress;

use checks::{Holds, Verified};
pub use journal::{Journal, JournalStep, ServerId, StepState};
pub use progress::Reconnect;

/// Extra time the client waits beyond a step's statement_timeout before cancelling it itself.
const CLIENT_SLACK: Duration = Duration::from_secs(5);
/// How long a reload may take to reach this session.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

/// What to do when a step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Undo this run's done steps, newest first.
    Undo,
    /// Keep them and say what is left (steps that are harmless to keep, like index builds a
    /// rerun continues).
    Stop,
    /// Record the failure and go on with the next steps (independent maintenance steps:
    /// one table's lock timeout does not stop the others' VACUUM).
    Continue,
}

/// Bounds and behaviour of a run.
#[derive(Clone)]
pub struct Options {
    /// How long to wait for another pgopt run on the server to finish.
    pub lock_wait: Duration,
    /// lock_timeout of each step.
    pub lock_timeout: Duration,
    /// statement_timeout of each step.
    pub statement_timeout: Duration,
    /// How many times a step that hit its lock_timeout is tried again.
    pub lock_retries: u32,
    pub on_failure: OnFailure,
    /// Becomes true on an interrupt (Ctrl-C): the running step is cancelled and cleaned up.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// The command that replays the journal, for messages (`pgopt tune --rollback`).
    pub rollback_command: String,
    /// Where the run's progress goes: its steps, and the progress of index builds.
    pub progress: Option<Arc<dyn Progress>>,
    /// Opens a second session to the same server (watching an index build, reconnecting
    /// after a restart). None: index builds are not watched.
    pub reconnect: Option<Arc<dyn Reconnect>>,
    /// How the server is restarted, checked (and confirmed by the command) before the run:
    /// needed by a plan with a restart step, and by a rollback that should restart.
    pub restart: Option<restart::Plan>,
    /// No step starts once this much time has passed since the run began; the steps left
    /// are recorded as skipped with the reason. None: no limit.
    pub budget: Option<Duration>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("lock_wait", &self.lock_wait)
            .field("lock_timeout", &self.lock_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("lock_retries", &self.lock_retries)
            .field("on_failure", &self.on_failure)
            .field("interrupt", &self.interrupt.is_some())
            .field("rollback_command", &self.rollback_command)
            .field("progress", &self.progress.is_some())
            .field("reconnect", &self.reconnect.is_some())
            .field("restart", &self.restart)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_wait: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30 * 60),
            lock_retries: 2,
            on_failure: OnFailure::Undo,
            interrupt: None,
            rollback_command: "pgopt tune --rollback".to_string(),
            progress: None,
            reconnect: None,
            restart: None,
            budget: None,
        }
    }
}

/// How one step ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub index: usize,
    /// The statement, or what is done instead.
    pub what: String,
    pub state: StepState,
    pub reason: Option<String>,
    /// Written; takes effect at the next restart.
    pub pending_restart: bool,
    /// An invalid leftover of an earlier build was dropped before it ran.
    pub dropped_leftover: bool,
    pub elapsed: Duration,
}

/// What a run or a rollback did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    pub steps: Vec<StepReport>,
    /// Ended by an interrupt: the journal is complete, the command exits 130.
    pub interrupted: bool,
    /// The server was restarted and the settings that waited for it are in effect. The
    /// connection the run was given is closed then: connect again.
    pub restarted: bool,
    pub journal: Option<PathBuf>,
}

impl Report {
    pub fn with_state(&self, state: StepState) -> Vec<&StepReport> {
        self.steps.iter().filter(|s| s.state == state).collect()
    }
}

/// A journal kept in memory, and on disk when a path is given.
struct Recorder<'a> {
    journal: Journal,
    path: Option<&'a Path>,
}

impl Recorder<'_> {
    fn mark(&mut self, i: usize, state: StepState, reason: Option<String>) -> Result<()> {
        self.journal.mark(i, state, reason);
        self.save()
    }

    /// Records step `sr.index` as skipped for `why`, in the journal and in `report`.
    fn skip(&mut self, report: &mut Report, mut sr: StepReport, why: String) -> Result<()> {
        self.mark(sr.index, StepState::Skipped, Some(why.clone()))?;
        sr.state = StepState::Skipped;
        sr.reason = Some(why);
        report.steps.push(sr);
        Ok(())
    }

    fn save(&mut self) -> Result<()> {
        match self.path {
            Some(p) => self.journal.save(p),
            None => Ok(()),
        }
    }
}

/// Runs `plan` on the server behind `conn`, journaled to `journal_path` (never overwritten;
/// None: the journal is kept in memory only, for steps a rerun repairs). Returns what each
/// step did; a failed step is an error that says what was undone or what is left.
pub async fn run(
    conn: &Conn,
    plan: &Plan,
    journal_path: Option<&Path>,
    opts: &Options,
) -> Result<Report> {
    if let Some(p) = journal_path {
        if p.exists() {
            return Err(Error::BadInput(format!(
                "{} already exists: a journal is never overwritten (it may be the only record \
                 of earlier values); give another journal path; nothing was changed",
                p.display()
            )));
        }
    }
    if let Some(s) = plan
        .steps
        .iter()
        .find(|s| s.action.sql().is_none() && s.action != Action::Restart)
    {
        return Err(Error::Internal(format!(
            "the executor runs statements and restarts only, not: {}; nothing was changed",
            s.action.describe()
        )));
    }
    let restarts = plan.steps.iter().any(|s| s.action == Action::Restart);
    if restarts && (opts.restart.is_none() || opts.reconnect.is_none()) {
        return Err(Error::Internal(
            "a plan with a restart needs the restart checked beforehand and a way to connect \
             again (Options::restart, Options::reconnect); nothing was changed"
                .into(),
        ));
    }
    let result = under_lock(conn, opts, run_locked(conn, plan, journal_path, opts)).await;
    if let Some(sink) = &opts.progress {
        let ended = result.as_ref().map_or(0, |r| r.steps.len());
        progress::finished(sink.as_ref(), ended, plan.steps.len());
    }
    result
}

/// Runs `work` (not started until then) under the pgopt advisory lock, and puts the
/// session's lock_timeout and statement_timeout back afterwards: each step sets its own.
async fn under_lock<T>(
    conn: &Conn,
    opts: &Options,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    lock::acquire(conn, opts.lock_wait).await?;
    let (lock_before, statement_before) = match session_timeouts(conn).await {
        Ok(v) => v,
        Err(e) => {
            lock::release(conn).await;
            return Err(e);
        }
    };
    let result = work.await;
    // After a restart this session is gone, and with it the lock.
    if !conn.is_closed() {
        let _ = set_session(conn, "lock_timeout", &lock_before).await;
        let _ = set_session(conn, "statement_timeout", &statement_before).await;
        lock::release(conn).await;
    }
    result
}

async fn run_locked(
    conn: &Conn,
    plan: &Plan,
    journal_path: Option<&Path>,
    opts: &Options,
) -> Result<Report> {
    let server = checks::server_id(conn).await?;
    let mut rec = Recorder {
        journal: Journal::new(server, &plan.steps),
        path: journal_path,
    };
    rec.save()?;
    let mut report = Report {
        journal: journal_path.map(Path::to_path_buf),
        ..Report::default()
    };
    let total = plan.steps.len();
    let sink = opts.progress.as_deref();
    if let Some(sink) = sink {
        progress::started(sink, total);
    }
    let step_event = |i: usize, ended: bool| {
        if let Some(sink) = sink {
            progress::step(sink, i, total, &plan.steps[i].action.describe(), ended);
        }
    };
    let run_started = Instant::now();
    // The session after a restart (holding the lock again); dropped, it releases the lock.
    let mut fresh: Option<Conn> = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let conn = fresh.as_ref().unwrap_or(conn);
        let started = Instant::now();
        let mut sr = StepReport {
            index: i,
            what: step.action.describe(),
            state: StepState::Pending,
            reason: None,
            pending_restart: false,
            dropped_leftover: false,
            elapsed: Duration::ZERO,
        };
        if interrupted(opts) {
            report.interrupted = true;
            break;
        }
        if let Some(budget) = opts.budget {
            let spent = run_started.elapsed();
            if spent >= budget {
                let why = format!(
                    "not started: the time budget of {} was spent ({} since the run began)",
                    seconds_text(budget),
                    seconds_text(spent)
                );
                rec.skip(&mut report, sr, why)?;
                step_event(i, true);
                continue;
            }
        }
        let missing = plan.after[i]
            .iter()
            .find(|d| rec.journal.steps[**d].state != StepState::Done);
        if let Some(d) = missing {
            let why = format!(
                "step {} ({}) did not run",
                d + 1,
                plan.steps[*d].action.describe()
            );
            rec.skip(&mut report, sr, why)?;
            step_event(i, true);
            continue;
        }
        step_event(i, false);
        if step.action == Action::Restart {
            let pending: Vec<Verify> = report
                .steps
                .iter()
                .filter(|s| s.state == StepState::Done && s.pending_restart)
                .filter_map(|s| plan.steps[s.index].verify.clone())
                .collect();
            if pending.is_empty() {
                let why = "no step of this run waits for a restart".to_string();
                rec.skip(&mut report, sr, why)?;
                step_event(i, true);
                continue;
            }
            rec.mark(i, StepState::Started, None)?;
            let undo = match journal_path {
                Some(j) => format!(
                    "The new values are in postgresql.auto.conf; the journal {j} undoes them: \
                     {} {j} (with --restart once the server runs)",
                    opts.rollback_command,
                    j = j.display()
                ),
                None => "The new values are in postgresql.auto.conf".to_string(),
            };
            match restart_and_verify(&pending, opts, &undo).await {
                Ok(new) => {
                    rec.mark(i, StepState::Done, None)?;
                    sr.state = StepState::Done;
                    sr.elapsed = started.elapsed();
                    report.steps.push(sr);
                    report.restarted = true;
                    step_event(i, true);
                    fresh = Some(new);
                    continue;
                }
                Err(e) => {
                    // Nothing is undone: that would need another restart. The error says
                    // what is left and how to take it back.
                    rec.mark(i, StepState::Failed, Some(e.to_string()))?;
                    sr.state = StepState::Failed;
                    sr.reason = Some(e.to_string());
                    report.steps.push(sr);
                    step_event(i, true);
                    return Err(e);
                }
            }
        }
        if let Some(p) = &step.precondition {
            match checks::precondition(conn, p).await? {
                Holds::Yes => {}
                Holds::AfterDroppingLeftover => {
                    if let Some(index) = p.index_to_create() {
                        let drop = format!("DROP INDEX CONCURRENTLY IF EXISTS {index}");
                        set_step_timeouts(conn, opts).await?;
                        execute_sql(conn, &drop, opts, None).await?;
                        sr.dropped_leftover = true;
                    }
                }
                Holds::No(why) => {
                    rec.skip(&mut report, sr, why)?;
                    step_event(i, true);
                    continue;
                }
            }
        }
        rec.journal.steps[i].undo = undo_for(conn, step).await?;
        rec.mark(i, StepState::Started, None)?;
        let outcome = run_step(conn, step, opts).await;
        let failure = match outcome {
            StepOutcome::Done { pending_restart } => {
                rec.mark(i, StepState::Done, None)?;
                sr.state = StepState::Done;
                sr.pending_restart = pending_restart;
                sr.elapsed = started.elapsed();
                report.steps.push(sr);
                step_event(i, true);
                continue;
            }
            StepOutcome::Skipped(why) => {
                rec.skip(&mut report, sr, why)?;
                step_event(i, true);
                continue;
            }
            StepOutcome::Interrupted => {
                report.interrupted = true;
                "interrupted (cancelled on the server)".to_string()
            }
            StepOutcome::Failed(e) => e.to_string(),
        };
        let cleanup = clean_up(conn, step, opts).await;
        let reason = match &cleanup {
            Ok(None) => failure.clone(),
            Ok(Some(what)) => format!("{failure}; {what}"),
            Err(e) => format!("{failure}; cleaning up failed too ({e})"),
        };
        rec.mark(i, StepState::Failed, Some(reason.clone()))?;
        sr.state = StepState::Failed;
        sr.reason = Some(reason.clone());
        sr.elapsed = started.elapsed();
        report.steps.push(sr);
        step_event(i, true);
        if report.interrupted {
            break;
        }
        let what = step.action.describe();
        let msg = match opts.on_failure {
            OnFailure::Undo => {
                let left = undo_done(conn, &mut rec, opts).await;
                format!(
                    "step {} ({what}) failed: {reason}. {}",
                    i + 1,
                    after_undo(&left, journal_path, opts)
                )
            }
            OnFailure::Stop => format!(
                "step {} ({what}) failed: {reason}. {}",
                i + 1,
                left_as_is(&rec.journal, journal_path, opts)
            ),
            OnFailure::Continue => continue,
        };
        return Err(Error::BadInput(msg));
    }
    Ok(report)
}

/// Restarts the server as `opts.restart` says, connects again (taking the advisory lock on
/// the new session) and checks that each of `pending` is in effect now. Returns the new
/// session. `undo` says how to go back, for the errors.
async fn restart_and_verify(pending: &[Verify], opts: &Options, undo: &str) -> Result<Conn> {
    let (Some(plan), Some(reconnect)) = (&opts.restart, &opts.reconnect) else {
        return Err(Error::Internal(
            "a restart without its plan or a way to connect again".into(),
        ));
    };
    if let Some(sink) = &opts.progress {
        sink.event(
            crate::progress::Event::update(progress::PHASE, crate::progress::Unit::Steps, 0, None)
                .kind(crate::progress::Kind::Line)
                .message(format!(
                    "restarting the server at {} (data directory {}): pg_ctl restart -m fast",
                    plan.target(),
                    plan.data_dir.display()
                )),
        );
    }
    let conn =
        restart::restart_and_reconnect(plan, reconnect.as_ref(), opts.lock_wait, undo).await?;
    let mut failed = Vec::new();
    for v in pending {
        match checks::verify(&conn, v).await? {
            Verified::Yes => {}
            Verified::PendingRestart => {
                let name = match v {
                    Verify::Setting { name, .. } => name.as_str(),
                    _ => "a setting",
                };
                failed.push(format!("{name} still waits for a restart"));
            }
            Verified::No(why) => failed.push(why),
        }
    }
    if failed.is_empty() {
        Ok(conn)
    } else {
        Err(Error::Restart(format!(
            "after the restart {}; check the server log and pg_file_settings. {undo}",
            failed.join("; ")
        )))
    }
}

/// What a run stopped with changed, and how to take it back.
fn left_as_is(j: &Journal, path: Option<&Path>, opts: &Options) -> String {
    let done: Vec<String> = j
        .steps
        .iter()
        .filter(|s| s.state == StepState::Done)
        .map(|s| s.step.action.describe())
        .collect();
    if done.is_empty() {
        return "Nothing was left changed".to_string();
    }
    let how = match path {
        Some(p) => format!(
            "; {} {} takes them back",
            opts.rollback_command,
            p.display()
        ),
        None => "; run the command again to finish".to_string(),
    };
    format!("Kept as done: {}{how}", done.join("; "))
}

fn after_undo(left: &[String], path: Option<&Path>, opts: &Options) -> String {
    if left.is_empty() {
        return "The steps done before were put back (rolled back): nothing was left changed"
            .to_string();
    }
    let how = match path {
        Some(p) => format!(
            "fix the cause and run {} {} to finish",
            opts.rollback_command,
            p.display()
        ),
        None => "undo them by hand".to_string(),
    };
    format!(
        "Undoing the steps done before failed for: {}; {how}",
        left.join("; ")
    )
}

/// Undoes the journal's done steps newest first; returns what could not be undone.
async fn undo_done(conn: &Conn, rec: &mut Recorder<'_>, opts: &Options) -> Vec<String> {
    let mut left = Vec::new();
    for i in rec.journal.to_undo() {
        let step = rec.journal.steps[i].clone();
        match undo_one(conn, &step, opts).await {
            Ok(()) => {
                if let Err(e) = rec.mark(i, StepState::Undone, None) {
                    left.push(format!("{} (journal: {e})", step.step.action.describe()));
                }
            }
            Err(e) => left.push(format!("{} ({e})", step.step.action.describe())),
        }
    }
    left
}

/// Runs one step's undo and checks it.
async fn undo_one(conn: &Conn, s: &JournalStep, opts: &Options) -> Result<()> {
    let Some(undo) = &s.undo else {
        return Err(Error::BadInput(format!(
            "{} cannot be undone",
            s.step.action.describe()
        )));
    };
    set_step_timeouts(conn, opts).await?;
    match execute(conn, undo, opts, None).await {
        StepOutcome::Done { .. } => {}
        StepOutcome::Failed(e) => return Err(e),
        StepOutcome::Skipped(why) => return Err(Error::BadInput(why)),
        StepOutcome::Interrupted => return Err(Error::BadInput("interrupted".into())),
    }
    let check = match undo {
        Action::SetSystem { name, value } => Some(Verify::Setting {
            name: name.clone(),
            value: value.clone(),
        }),
        Action::SetObject {
            object,
            name,
            value,
        } => Some(Verify::ObjectSetting {
            object: object.clone(),
            name: name.clone(),
            value: value.clone(),
        }),
        _ => match &s.step.verify {
            Some(Verify::IndexValid { index }) => Some(Verify::IndexAbsent {
                index: index.clone(),
            }),
            _ => None,
        },
    };
    if let Some(v) = check {
        // A RESET restores what the files say, which a verification by value cannot know.
        let lenient = matches!(undo, Action::SetSystem { value: None, .. });
        if let Verified::No(why) = checks::verify(conn, &v).await? {
            if !lenient {
                return Err(Error::BadInput(format!("not restored: {why}")));
            }
        }
    }
    Ok(())
}

/// The undo as known when the step starts: for ALTER SYSTEM, the value postgresql.auto.conf
/// holds now (None: not set there, so RESET).
async fn undo_for(conn: &Conn, step: &Step) -> Result<Option<Action>> {
    match &step.action {
        Action::SetSystem { name, .. } => Ok(Some(Action::SetSystem {
            name: name.clone(),
            value: settings::auto_conf_value(conn, name).await?,
        })),
        _ => Ok(step.undo.clone()),
    }
}

enum StepOutcome {
    Done { pending_restart: bool },
    Skipped(String),
    Failed(Error),
    Interrupted,
}

/// Runs a step (retrying on lock timeouts) and verifies it.
async fn run_step(conn: &Conn, step: &Step, opts: &Options) -> StepOutcome {
    if let Err(e) = set_step_timeouts(conn, opts).await {
        return StepOutcome::Failed(e);
    }
    // The backend that builds an index, for watching its progress from a second session.
    let watched = progress::Watched::of(&step.action);
    let builder = match (&opts.progress, &opts.reconnect) {
        (Some(_), Some(_)) if watched.is_some() => backend_pid(conn).await,
        _ => None,
    };
    let what = step.action.describe();
    let mut attempt = 0;
    loop {
        let work = execute(conn, &step.action, opts, opts.interrupt.clone());
        let outcome = progress::with_watch(
            opts.progress.as_ref(),
            opts.reconnect.as_ref(),
            builder.zip(watched),
            &what,
            work,
        )
        .await;
        match outcome {
            StepOutcome::Failed(e)
                if e.sqlstate() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                    && attempt < opts.lock_retries =>
            {
                attempt += 1;
                tracing::warn!(
                    "{} hit its lock_timeout; trying again ({attempt} of {})",
                    step.action.describe(),
                    opts.lock_retries
                );
                if let Err(e) = clean_up(conn, step, opts).await {
                    return StepOutcome::Failed(e);
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            StepOutcome::Failed(e) if e.sqlstate() == Some(&SqlState::DUPLICATE_TABLE) => {
                // Someone created the object between the precondition and the statement.
                if step
                    .precondition
                    .as_ref()
                    .is_some_and(|p| p.index_to_create().is_some())
                {
                    return StepOutcome::Skipped(format!(
                        "created meanwhile by another session ({e})"
                    ));
                }
                return StepOutcome::Failed(e);
            }
            StepOutcome::Done { .. } => break,
            other => return other,
        }
    }
    let Some(v) = &step.verify else {
        return StepOutcome::Done {
            pending_restart: false,
        };
    };
    match checks::verify(conn, v).await {
        Ok(Verified::Yes) => StepOutcome::Done {
            pending_restart: false,
        },
        Ok(Verified::PendingRestart) => StepOutcome::Done {
            pending_restart: true,
        },
        Ok(Verified::No(why)) => {
            StepOutcome::Failed(Error::BadInput(format!("not verified: {why}")))
        }
        Err(e) => StepOutcome::Failed(e),
    }
}

/// This session's backend pid; None (and the build goes unwatched) when it cannot be read.
async fn backend_pid(conn: &Conn) -> Option<i32> {
    match conn
        .query_one("reading pg_backend_pid()", "SELECT pg_backend_pid()", &[])
        .await
    {
        Ok(r) => Some(r.get(0)),
        Err(e) => {
            tracing::warn!("not watching the index build: {e}");
            None
        }
    }
}

/// Runs one action: its statement alone, then for ALTER SYSTEM a check of the configuration
/// files and a reload.
async fn execute(
    conn: &Conn,
    action: &Action,
    opts: &Options,
    interrupt: Option<watch::Receiver<bool>>,
) -> StepOutcome {
    let Some(sql) = action.sql() else {
        return StepOutcome::Failed(Error::Internal(
            "a restart is not run by the executor".into(),
        ));
    };
    match execute_sql(conn, &sql, opts, interrupt).await {
        Ok(true) => {}
        Ok(false) => return StepOutcome::Interrupted,
        Err(e) => return StepOutcome::Failed(e),
    }
    if let Action::SetSystem { name, .. } = action {
        match settings::file_setting_errors(conn, &[name.as_str()]).await {
            Ok(Some(errors)) if !errors.is_empty() => {
                return StepOutcome::Failed(Error::BadInput(format!(
                    "postgresql.auto.conf has errors after ALTER SYSTEM: {}",
                    errors.join("; ")
                )))
            }
            Ok(_) => {}
            Err(e) => return StepOutcome::Failed(e),
        }
        if let Err(e) = reload(conn).await {
            return StepOutcome::Failed(e);
        }
    }
    StepOutcome::Done {
        pending_restart: false,
    }
}

/// Runs `sql` alone (simple protocol, no transaction block), bounded by the step's
/// statement_timeout plus slack. Ok(false): interrupted, and cancelled on the server.
async fn execute_sql(
    conn: &Conn,
    sql: &str,
    opts: &Options,
    interrupt: Option<watch::Receiver<bool>>,
) -> Result<bool> {
    let limit = opts.statement_timeout + CLIENT_SLACK;
    let work = tokio::time::timeout(limit, conn.client().batch_execute(sql));
    tokio::pin!(work);
    tokio::select! {
        r = &mut work => match r {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(Error::query(format!("running {}", first_words(sql)), e)),
            Err(_) => {
                conn.cancel_running().await;
                Err(Error::Timeout {
                    what: format!("running {}", first_words(sql)),
                    after: limit,
                    next_step: Some("raise the step's statement timeout or run it off-peak".into()),
                })
            }
        },
        _ = wait_interrupt(interrupt) => {
            conn.cancel_running().await;
            // The statement ends (cancelled, or done just before): wait for it, bounded. Done
            // before the cancel reached it, it ran: the step is verified and journaled as done,
            // and the run stops before the next one.
            match tokio::time::timeout(CLIENT_SLACK * 2, &mut work).await {
                Ok(Ok(Ok(()))) => Ok(true),
                _ => Ok(false),
            }
        }
    }
}

/// `1h 2m 3s` for budget messages.
fn seconds_text(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

/// `CREATE INDEX` words for messages, never values.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

async fn wait_interrupt(rx: Option<watch::Receiver<bool>>) {
    let Some(mut rx) = rx else {
        return std::future::pending().await;
    };
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

fn interrupted(opts: &Options) -> bool {
    opts.interrupt.as_ref().is_some_and(|rx| *rx.borrow())
}

/// A statement cancelled by a cancel request meant for the one before it (57014 on a
/// statement nobody cancelled).
fn is_stale_cancel(e: &crate::Error) -> bool {
    e.sqlstate() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
}

/// After a failed or cancelled step: drops the invalid index a CREATE INDEX CONCURRENTLY of
/// ours left behind, or the invalid copies (`_ccnew`, `_ccold`) of a REINDEX INDEX
/// CONCURRENTLY. Ok(Some(what)) when something was cleaned.
async fn clean_up(conn: &Conn, step: &Step, opts: &Options) -> Result<Option<String>> {
    if let Some(index) = reindexed_concurrently(step) {
        let left = match checks::reindex_leftovers(conn, index).await {
            // The cancel request sent for the step can reach the server after the step
            // ended and cancel the next statement on the session, this look-up: once more.
            Err(e) if is_stale_cancel(&e) => checks::reindex_leftovers(conn, index).await?,
            other => other?,
        };
        if left.is_empty() {
            return Ok(None);
        }
        set_step_timeouts(conn, opts).await?;
        for copy in &left {
            execute_sql(
                conn,
                &format!("DROP INDEX CONCURRENTLY IF EXISTS {copy}"),
                opts,
                None,
            )
            .await?;
        }
        let names: Vec<String> = left.iter().map(ToString::to_string).collect();
        return Ok(Some(format!(
            "the invalid copy it left ({}) was dropped",
            names.join(", ")
        )));
    }
    let (Some(index), Some(Verify::IndexValid { .. })) = (
        step.precondition
            .as_ref()
            .and_then(Precondition::index_to_create),
        &step.verify,
    ) else {
        return Ok(None);
    };
    let state = match checks::index_state(conn, index).await {
        Err(e) if is_stale_cancel(&e) => checks::index_state(conn, index).await?,
        other => other?,
    };
    if state != Some(false) {
        return Ok(None);
    }
    set_step_timeouts(conn, opts).await?;
    execute_sql(
        conn,
        &format!("DROP INDEX CONCURRENTLY IF EXISTS {index}"),
        opts,
        None,
    )
    .await?;
    Ok(Some(format!(
        "the invalid index {index} it left was dropped"
    )))
}

/// The index a `REINDEX INDEX CONCURRENTLY` step rebuilds.
fn reindexed_concurrently(step: &Step) -> Option<&crate::ident::QualifiedName> {
    let sql = step.action.sql()?;
    let words: Vec<String> = sql
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    if words != ["REINDEX", "INDEX", "CONCURRENTLY"] {
        return None;
    }
    match &step.precondition {
        Some(Precondition::IndexExists { index }) => Some(index),
        _ => None,
    }
}

/// pg_reload_conf(), then waits (bounded) until this session has re-read the files.
async fn reload(conn: &Conn) -> Result<()> {
    const LOAD_TIME: &str = "SELECT pg_conf_load_time()::text";
    let before: String = conn
        .query_one("reading pg_conf_load_time()", LOAD_TIME, &[])
        .await?
        .get(0);
    conn.query_one("pg_reload_conf()", "SELECT pg_reload_conf()", &[])
        .await?;
    let start = Instant::now();
    while start.elapsed() < RELOAD_WITHIN {
        let now: String = conn
            .query_one("reading pg_conf_load_time()", LOAD_TIME, &[])
            .await?
            .get(0);
        if now != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn session_timeouts(conn: &Conn) -> Result<(String, String)> {
    let r = conn
        .query_one(
            "reading the session timeouts",
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')",
            &[],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}

async fn set_step_timeouts(conn: &Conn, opts: &Options) -> Result<()> {
    set_session(conn, "lock_timeout", &ms(opts.lock_timeout)).await?;
    set_session(conn, "statement_timeout", &ms(opts.statement_timeout)).await
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

async fn set_session(conn: &Conn, name: &str, value: &str) -> Result<()> {
    conn.query(
        "setting a session parameter",
        "SELECT set_config($1, $2, false)",
        &[&name, &value],
    )
    .await?;
    Ok(())
}

/// Takes back what `journal` (at `path`, updated as steps are undone) records as done or
/// started, newest first, on the server behind `conn`. Refused, with nothing changed, when
/// the journal is of another server or an old value would be rejected by this one.
pub async fn rollback(
    conn: &Conn,
    journal: Journal,
    path: Option<&Path>,
    opts: &Options,
) -> Result<Report> {
    let here = checks::server_id(conn).await?;
    same_server(&journal.server, &here)?;
    under_lock(conn, opts, rollback_locked(conn, journal, path, opts)).await
}

/// Refuses a journal whose server is not `here` (system identifier, then the server's port).
pub fn same_server(journal: &ServerId, here: &ServerId) -> Result<()> {
    let differs = |what: &str, j: &str, h: &str| {
        Error::BadInput(format!(
            "the journal is of another server: its {what} is {j}, this server's is {h}; \
             nothing was changed. Connect to the server the journal names ({}:{}, database {})",
            journal.host, journal.port, journal.database
        ))
    };
    if let (Some(j), Some(h)) = (&journal.system_identifier, &here.system_identifier) {
        if j != h {
            return Err(differs("system identifier", j, h));
        }
    }
    if let (Some(j), Some(h)) = (journal.server_port, here.server_port) {
        if j != h {
            return Err(differs("port", &j.to_string(), &h.to_string()));
        }
    }
    Ok(())
}

async fn rollback_locked(
    conn: &Conn,
    journal: Journal,
    path: Option<&Path>,
    opts: &Options,
) -> Result<Report> {
    let todo = journal.to_undo();
    // Every old value must be one this server takes before anything is changed.
    let settings = settings::read_settings(conn).await?;
    let mut problems = Vec::new();
    for i in &todo {
        if let Some(Action::SetSystem {
            name,
            value: Some(v),
        }) = &journal.steps[*i].undo
        {
            match settings.iter().find(|s| s.name == *name) {
                None => problems.push(format!("{name}: unknown to this server")),
                Some(s) => {
                    if let Err(e) = crate::tune::compare::validate_value(s, v) {
                        problems.push(e);
                    }
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::BadInput(format!(
            "this server would reject the journal's old values, so nothing was changed: {}. \
             Set them by hand to values it takes",
            problems.join("; ")
        )));
    }
    let mut rec = Recorder { journal, path };
    let mut report = Report {
        journal: path.map(Path::to_path_buf),
        ..Report::default()
    };
    for i in todo {
        let s = rec.journal.steps[i].clone();
        if s.step.action == Action::Restart {
            // Done already; the settings it brought into effect are restored below.
            continue;
        }
        let started = Instant::now();
        let mut sr = StepReport {
            index: i,
            what: s
                .undo
                .as_ref()
                .map(Action::describe)
                .unwrap_or_else(|| s.step.action.describe()),
            state: StepState::Undone,
            reason: None,
            pending_restart: false,
            dropped_leftover: false,
            elapsed: Duration::ZERO,
        };
        if s.undo.is_none() {
            // Nothing takes it back (VACUUM, ANALYZE): leave it recorded as it was.
            sr.state = s.state;
            sr.reason = Some("cannot be undone; left as it is".into());
            report.steps.push(sr);
            continue;
        }
        if let Err(e) = undo_one(conn, &s, opts).await {
            let left: Vec<String> = rec
                .journal
                .to_undo()
                .iter()
                .map(|j| rec.journal.steps[*j].step.action.describe())
                .collect();
            return Err(Error::BadInput(format!(
                "undoing step {} ({}) failed: {e}. Still to undo: {}; fix the cause and run \
                 the rollback again",
                i + 1,
                s.step.action.describe(),
                left.join("; ")
            )));
        }
        rec.mark(i, StepState::Undone, None)?;
        if let Some(Action::SetSystem { name, value }) = &s.undo {
            sr.pending_restart = pending_restart(conn, name).await?;
            if sr.pending_restart && value.is_none() && !from_a_file(conn, name).await? {
                clear_pending_restart(conn, name, opts).await?;
                sr.pending_restart = pending_restart(conn, name).await?;
            }
        }
        sr.elapsed = started.elapsed();
        report.steps.push(sr);
    }
    if opts.restart.is_some() {
        // The restored settings that wait for a restart: (name, the value restored; None for
        // a RESET, whose value the files decide).
        let pending: Vec<Verify> = report
            .steps
            .iter()
            .filter(|s| s.pending_restart)
            .filter_map(|s| match &rec.journal.steps[s.index].undo {
                Some(Action::SetSystem { name, value }) => Some(Verify::Setting {
                    name: name.clone(),
                    value: value.clone(),
                }),
                _ => None,
            })
            .collect();
        if !pending.is_empty() {
            let undo = format!(
                "postgresql.auto.conf holds the old values again; once the server runs, {}{} \
                 --restart finishes the job",
                opts.rollback_command,
                path.map(|p| format!(" {}", p.display()))
                    .unwrap_or_default()
            );
            restart_and_verify(&pending, opts, &undo).await?;
            report.restarted = true;
        }
    }
    Ok(report)
}

async fn pending_restart(conn: &Conn, name: &str) -> Result<bool> {
    Ok(matches!(
        checks::verify(
            conn,
            &Verify::Setting {
                name: name.to_string(),
                value: None
            }
        )
        .await?,
        Verified::PendingRestart
    ))
}

/// Whether the running value of `name` was read from a configuration file (at the last start
/// or reload).
async fn from_a_file(conn: &Conn, name: &str) -> Result<bool> {
    let settings = settings::read_settings(conn).await?;
    Ok(settings
        .iter()
        .any(|s| s.name == name && s.source == "configuration file"))
}

/// A postmaster setting that came from no file keeps pending_restart after ALTER SYSTEM RESET
/// (the server never re-reads a value no file holds). Writing the running value makes the
/// server see "no change" and clear the flag; resetting it afterwards changes nothing more.
async fn clear_pending_restart(conn: &Conn, name: &str, opts: &Options) -> Result<()> {
    let settings = settings::read_settings(conn).await?;
    let Some(running) = settings.iter().find(|s| s.name == name) else {
        return Ok(());
    };
    let set = Action::SetSystem {
        name: name.to_string(),
        value: Some(running.setting.clone()),
    };
    let reset = Action::SetSystem {
        name: name.to_string(),
        value: None,
    };
    set_step_timeouts(conn, opts).await?;
    for (k, action) in [set, reset].iter().enumerate() {
        match execute(conn, action, opts, None).await {
            StepOutcome::Done { .. } => {}
            StepOutcome::Failed(e) => return Err(e),
            StepOutcome::Skipped(why) => return Err(Error::BadInput(why)),
            StepOutcome::Interrupted => return Err(Error::BadInput("interrupted".into())),
        }
        if k == 0 {
            let start = Instant::now();
            while pending_restart(conn, name).await? && start.elapsed() < RELOAD_WITHIN {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Ok(())
}
