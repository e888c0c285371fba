//! `pgopt maintain`: snapshot -> analyze's maintenance findings -> tasks (VACUUM, ANALYZE,
//! VACUUM (FREEZE), REINDEX INDEX CONCURRENTLY, per-table autovacuum settings), biggest need
//! first. Dry run by default; `--apply` runs them one at a time through the executor
//! (journaled, lock_timeout and a timeout per step, within `--budget`, Ctrl-C cancels the
//! step in flight); `--next-window` says when the configured maintenance window opens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::progress::collect_with_progress;
use super::{TargetArgs, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::advise::Thresholds;
use crate::apply::{self, OnFailure, StepState};
use crate::collect::CollectOptions;
use crate::db::Conn;
use crate::error::Error;
use crate::maintain::{self, window};
use crate::progress::Progress;
use crate::report::maintain::{self as report, AppliedRow};
use crate::report::Format;

#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Only these tables: `table`, `schema.table`, or a glob such as `audit_*`
    /// (repeatable, or comma-separated) [default: all].
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// Never these tables (same forms as --tables).
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Measure bloat with pgstattuple (pgstattuple_approx for tables, pgstatindex for
    /// indexes) instead of estimating it: this READS the candidates (I/O on the server).
    /// Uses the extension when installed; with --apply creates it when it is available and
    /// the role may (a dry run creates nothing); otherwise says so and keeps the estimates.
    #[arg(long)]
    pub exact: bool,
    /// Run the tasks: one statement at a time under the pgopt advisory lock, journaled,
    /// biggest need first. Without it nothing is changed.
    #[arg(long, conflicts_with_all = ["rollback", "next_window"])]
    pub apply: bool,
    /// With --apply: start no new step after this long, e.g. 30m, 2h, 1h30m; the steps
    /// left are reported as not run.
    #[arg(long, value_name = "DURATION", requires = "apply")]
    pub budget: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Where --apply writes its journal [default: pgopt-maintain-journal-<timestamp>.json].
    #[arg(long, value_name = "FILE", requires = "apply")]
    pub journal: Option<PathBuf>,
    /// Seconds a step may wait for its lock before it is retried (twice), then given up.
    #[arg(long, value_name = "S", default_value_t = 5)]
    pub lock_timeout: u64,
    /// Seconds one step may run (its statement_timeout) before it is cancelled.
    #[arg(long, value_name = "S", default_value_t = 3 * 3600)]
    pub step_timeout: u64,
    /// Override a threshold, e.g. `--threshold index_bloat_min_wasted_bytes=10485760`
    /// (repeatable; `--threshold list` prints them all).
    #[arg(long = "threshold", value_name = "NAME=VALUE")]
    pub thresholds: Vec<String>,
    /// Print when the next maintenance window of the config file opens and closes (or that
    /// one is open now); needs no server.
    #[arg(long, conflicts_with = "rollback")]
    pub next_window: bool,
    /// The configuration file with `[[maintenance.window]]` entries.
    #[arg(long, value_name = "FILE", default_value = "pgopt.toml")]
    pub config: PathBuf,
    /// Put back what a journal of --apply changed that can be (per-table autovacuum
    /// settings; a VACUUM or REINDEX has nothing to undo).
    #[arg(long, value_name = "JOURNAL")]
    pub rollback: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(args: MaintainArgs) -> anyhow::Result<u8> {
    if args.thresholds.iter().any(|t| t == "list") {
        print!("{}", crate::report::thresholds::list());
        return Ok(EXIT_OK);
    }
    if args.next_window {
        return next_window(&args);
    }
    let thresholds = Thresholds::with_overrides(&args.thresholds)?;
    if args.lock_timeout == 0 || args.step_timeout == 0 {
        return Err(Error::BadInput(
            "--lock-timeout and --step-timeout must be at least 1 second".into(),
        )
        .into());
    }
    let budget = args
        .budget
        .as_deref()
        .map(|b| {
            window::parse_duration(b)
                .map_err(|e| Error::BadInput(format!("--budget: {e}")))
                .and_then(|d| {
                    d.to_std()
                        .map_err(|_| Error::BadInput(format!("--budget {b:?} is out of range")))
                })
        })
        .transpose()?;
    let (target, conn) = args.target.connect().await?;
    if let Some(path) = &args.rollback {
        return rollback(&conn, path).await;
    }
    let mut notes = Vec::new();
    let mut collect = CollectOptions {
        include_host: false,
        skip_statements: true,
        thresholds: Some(thresholds.clone()),
        ..CollectOptions::default()
    };
    if args.exact {
        if let Some(note) = ensure_pgstattuple(&conn, args.apply).await? {
            notes.push(note);
        }
        collect.bloat_measure_max_relations = 200;
        collect.bloat_measure_max_bytes = i64::MAX;
        collect.bloat_measure_timeout = Duration::from_secs(args.step_timeout);
        collect.bloat_measure_total = Duration::from_secs(args.step_timeout);
    }
    let snap = collect_with_progress(&conn, &collect).await?;
    if let Some(b) = &snap.bloat {
        let tables = b.tables.iter().filter(|r| r.measured.is_some()).count();
        let indexes = b.indexes.iter().filter(|r| r.measured.is_some()).count();
        if args.exact || tables + indexes > 0 {
            notes.push(format!(
                "bloat: {} and {} measured with pgstattuple; the other figures are estimates \
                 from the planner statistics",
                crate::advise::count(tables, "table", "tables"),
                crate::advise::count(indexes, "btree index", "btree indexes")
            ));
        }
        notes.extend(b.measure_notes.iter().cloned());
    }
    if let Some(s) = snap
        .sections
        .iter()
        .find(|s| s.section == "bloat_measured" && s.reason.is_some())
    {
        if args.exact {
            notes.push(format!(
                "bloat not measured: {}",
                s.reason.as_deref().unwrap_or_default()
            ));
        }
    }
    let findings = crate::advise::advise(&snap, &thresholds);
    let opts = maintain::Options {
        tables: args.tables.clone(),
        exclude: args.exclude.clone(),
        thresholds,
    };
    let mut advice = maintain::advise(&snap, &findings, &opts);
    advice.notes.extend(notes);
    if !args.apply {
        print_advice(&advice, args.format, None)?;
        if !advice.tasks.is_empty() {
            eprintln!(
                "dry run: nothing was changed; --apply runs these {} (--budget limits how long)",
                crate::advise::count(advice.tasks.len(), "task", "tasks")
            );
        }
        return Ok(EXIT_OK);
    }
    if advice.tasks.is_empty() {
        print_advice(&advice, args.format, None)?;
        return Ok(EXIT_OK);
    }
    if args.format != Format::Json {
        print_advice(&advice, args.format, None)?;
    }
    let progress: Arc<dyn Progress> = if args.no_progress {
        Arc::new(crate::progress::NoProgress)
    } else {
        Arc::new(super::progress::Bars::stderr())
    };
    let plan = maintain::plan(&advice);
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| super::default_journal("maintain"));
    let (interrupt, watcher) = super::interrupt_on_ctrl_c();
    let exec = apply::Options {
        lock_timeout: Duration::from_secs(args.lock_timeout),
        statement_timeout: Duration::from_secs(args.step_timeout),
        lock_retries: 2,
        on_failure: OnFailure::Continue,
        interrupt: Some(interrupt),
        rollback_command: "pgopt maintain --rollback".into(),
        progress: Some(progress),
        reconnect: Some(Arc::new(target)),
        budget,
        ..apply::Options::default()
    };
    let outcome = apply::run(&conn, &plan, Some(&journal), &exec).await;
    watcher.abort();
    let ran = outcome.with_context(|| {
        format!(
            "running the maintenance tasks; the journal {} says what ran",
            journal.display()
        )
    })?;
    let task_of = maintain::task_of_steps(&advice);
    let mut rows: Vec<AppliedRow> = ran
        .steps
        .iter()
        .map(|s| AppliedRow {
            task: task_of.get(s.index).map_or(0, |t| t + 1),
            what: s.what.clone(),
            state: match s.state {
                StepState::Done => "done",
                StepState::Skipped => "skipped",
                StepState::Failed => "failed",
                _ => "not run",
            }
            .to_string(),
            reason: s.reason.clone(),
            seconds: s.elapsed.as_secs_f64(),
        })
        .collect();
    for (i, step) in plan.steps.iter().enumerate() {
        if !ran.steps.iter().any(|s| s.index == i) {
            rows.push(AppliedRow {
                task: task_of.get(i).map_or(0, |t| t + 1),
                what: step.action.describe(),
                state: "not run".into(),
                reason: Some(if ran.interrupted {
                    "not started: interrupted".into()
                } else {
                    "not started".into()
                }),
                seconds: 0.0,
            });
        }
    }
    if args.format == Format::Json {
        print_advice(&advice, args.format, Some(&rows))?;
    } else {
        print!("{}", report::applied(&rows));
    }
    eprintln!("journal written to {}", journal.display());
    if ran.interrupted {
        eprintln!(
            "interrupted: the step in flight was cancelled; the journal is complete; run again \
             to do the rest"
        );
        return Ok(EXIT_INTERRUPTED);
    }
    if rows.iter().any(|r| r.state == "failed") {
        return Ok(EXIT_FAILED);
    }
    Ok(EXIT_OK)
}

fn print_advice(
    advice: &maintain::Advice,
    format: Format,
    applied: Option<&[AppliedRow]>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::json(advice, applied))?
        ),
        Format::Markdown => print!("{}", report::markdown(advice)),
        Format::Table => print!("{}", report::table(advice)),
    }
    Ok(())
}

/// `--exact`: pgstattuple installed, or (with `--apply` only: a dry run changes nothing)
/// created when available and allowed. Some(note) says what was done or why the estimates
/// stay.
async fn ensure_pgstattuple(conn: &Conn, apply: bool) -> crate::error::Result<Option<String>> {
    let row = conn
        .query_one(
            "looking for pgstattuple",
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgstattuple'), \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pgstattuple')",
            &[],
        )
        .await?;
    let (installed, available): (bool, bool) = (row.get(0), row.get(1));
    if installed {
        return Ok(None);
    }
    if !available {
        return Ok(Some(
            "--exact: pgstattuple is not available on this server (install PostgreSQL's contrib \
             package, e.g. postgresql-contrib): bloat figures stay estimates"
                .into(),
        ));
    }
    if !apply {
        return Ok(Some(
            "--exact: pgstattuple is not installed in this database and a dry run changes              nothing: bloat figures stay estimates; run CREATE EXTENSION pgstattuple (or add              --apply, which creates it) to measure"
                .into(),
        ));
    }
    match conn
        .batch(
            "creating extension pgstattuple",
            "CREATE EXTENSION IF NOT EXISTS pgstattuple",
        )
        .await
    {
        Ok(()) => Ok(Some(
            "--exact: created extension pgstattuple in this database (DROP EXTENSION \
             pgstattuple removes it)"
                .into(),
        )),
        Err(e) if e.is_connection_lost() => Err(e),
        Err(e) => Ok(Some(format!(
            "--exact: pgstattuple could not be created ({e}): bloat figures stay estimates; \
             ask a superuser to run CREATE EXTENSION pgstattuple"
        ))),
    }
}

/// `--next-window`: reads the config file and prints the next (or current) window.
fn next_window(args: &MaintainArgs) -> anyhow::Result<u8> {
    let origin = args.config.display().to_string();
    let text = std::fs::read_to_string(&args.config).map_err(|e| {
        Error::BadInput(format!(
            "cannot read {origin} ({e}); give the file with --config FILE, containing e.g.\n\
             [[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"3h\"\ntimezone = \"UTC\""
        ))
    })?;
    let config = window::parse(&text, &origin).map_err(Error::BadInput)?;
    match window::next_window(&config, chrono::Utc::now()) {
        Some(o) => println!("{}", window::describe(&config, &o)),
        None => {
            return Err(Error::BadInput(format!(
                "{origin} has no [[maintenance.window]] entry; add one, e.g. cron = \"0 2 * * 6\", \
                 duration = \"3h\""
            ))
            .into())
        }
    }
    Ok(EXIT_OK)
}

/// `--rollback JOURNAL`: puts back what the journal's done steps changed, newest first.
async fn rollback(conn: &Conn, path: &std::path::Path) -> anyhow::Result<u8> {
    let journal = apply::Journal::load(path)?;
    let opts = apply::Options {
        rollback_command: "pgopt maintain --rollback".into(),
        ..apply::Options::default()
    };
    let ran = apply::rollback(conn, journal, Some(path), &opts).await?;
    if ran.steps.is_empty() {
        eprintln!("nothing to roll back: no step of the journal changes a setting");
    }
    for s in &ran.steps {
        println!(
            "{}: {}",
            s.what,
            s.reason.as_deref().unwrap_or(match s.state {
                StepState::Undone => "undone",
                _ => "left as it is",
            })
        );
    }
    Ok(EXIT_OK)
}
