//! `pgopt indexes`: the workload's statements -> candidates -> what-if costs -> advice; with
//! `--apply`, the suggested indexes built by the executor (CREATE INDEX CONCURRENTLY,
//! journaled), timed before and after; `--rollback JOURNAL` drops what a run built.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{TargetArgs, EXIT_INTERRUPTED, EXIT_OK};
use crate::apply::{self, OnFailure};
use crate::error::Error;
use crate::indexes::advisor::{self, AdviseOptions, Workload};
use crate::indexes::measure;
use crate::indexes::select::Budget;
use crate::indexes::sources::StatOptions;
use crate::indexes::steps;
use crate::indexes::whatif::{self, Mode, WhatIfOptions};
use crate::progress::Progress;
use crate::report::{self, Format};

#[derive(Debug, Args)]
pub struct IndexesArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// A statement to advise on (repeatable). With --query, --file or --log,
    /// pg_stat_statements is read only when --stat-statements is given too.
    #[arg(long = "query", value_name = "SQL")]
    pub queries: Vec<String>,
    /// A file of SQL statements separated by semicolons (repeatable).
    #[arg(long = "file", value_name = "FILE.sql")]
    pub files: Vec<PathBuf>,
    /// A server log with log_min_duration_statement or auto_explain output: stderr, csvlog
    /// or jsonlog (repeatable).
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,
    /// The database whose statements --log reads [default: the target's database]. csvlog and
    /// jsonlog name each entry's database; stderr only with %d in log_line_prefix, written as
    /// db=%d (or database=, dbname=) or as %u@%d ending the prefix; a log that names none is
    /// read whole, and pgopt says so.
    #[arg(long, value_name = "NAME", requires = "logs")]
    pub log_database: Option<String>,
    /// Read pg_stat_statements as well as the statements given.
    #[arg(long)]
    pub stat_statements: bool,
    /// Statements to take from pg_stat_statements, the costliest by total time.
    #[arg(long, value_name = "N", default_value_t = 500)]
    pub top: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Propose at most this many indexes.
    #[arg(long, value_name = "N")]
    pub max_indexes: Option<usize>,
    /// Propose at most this much index space in all, e.g. 500MB or 2GB.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Override a threshold, e.g. `--threshold index_min_gain_ratio=0.3` (repeatable;
    /// `--threshold list` prints them all).
    #[arg(long = "threshold", value_name = "NAME=VALUE")]
    pub thresholds: Vec<String>,
    /// Cost candidates by building each real index inside a transaction that is rolled back,
    /// when HypoPG is not installed. Each build holds a SHARE lock on its table (writes
    /// wait): for test and embedded servers.
    #[arg(long)]
    pub trial_real_indexes: bool,
    /// Seconds one EXPLAIN may take before its statement is skipped.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub explain_timeout: u64,
    /// Build the suggested indexes: CREATE INDEX CONCURRENTLY one at a time under the pgopt
    /// advisory lock, journaled; then ANALYZE and time the helped statements again.
    /// Without it nothing is changed.
    #[arg(long, conflicts_with = "rollback")]
    pub apply: bool,
    /// With --apply: also drop the unused, duplicate, redundant and invalid indexes analyze
    /// names (DROP INDEX CONCURRENTLY, journaled).
    #[arg(long, requires = "apply")]
    pub drop: bool,
    /// Where --apply writes its journal [default: pgopt-indexes-journal-<timestamp>.json].
    #[arg(long, value_name = "FILE", requires = "apply")]
    pub journal: Option<PathBuf>,
    /// Drop the indexes a journal of --apply records as built (and recreate the ones it
    /// dropped).
    #[arg(long, value_name = "JOURNAL")]
    pub rollback: Option<PathBuf>,
    /// Seconds a build may wait for its table lock before it is retried (twice), then given up.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub lock_timeout: u64,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(args: IndexesArgs, verbose: bool) -> anyhow::Result<u8> {
    if args.thresholds.iter().any(|t| t == "list") {
        print!("{}", report::thresholds::list());
        return Ok(EXIT_OK);
    }
    let thresholds = crate::advise::Thresholds::with_overrides(&args.thresholds)?;
    let budget = Budget {
        max_indexes: args.max_indexes,
        max_size_bytes: args.max_size.as_deref().map(parse_size).transpose()?,
    };
    if args.lock_timeout == 0 || args.explain_timeout == 0 {
        return Err(Error::BadInput(
            "--lock-timeout and --explain-timeout must be at least 1 second".into(),
        )
        .into());
    }
    let (target, conn) = args.target.connect().await?;
    if let Some(path) = &args.rollback {
        return rollback(&conn, path).await;
    }
    let progress: Arc<dyn Progress> = if args.no_progress {
        Arc::new(crate::progress::NoProgress)
    } else {
        Arc::new(super::progress::Bars::stderr())
    };
    let mode = if args.trial_real_indexes {
        Mode::TrialReal
    } else {
        whatif::check_hypopg(&conn).await?;
        Mode::Hypothetical
    };
    let given = !(args.queries.is_empty() && args.files.is_empty() && args.logs.is_empty());
    let workload = Workload {
        stat_statements: args.stat_statements || !given,
        stat: StatOptions {
            limit: args.top,
            ..StatOptions::default()
        },
        queries: args.queries.clone(),
        files: args.files.clone(),
        logs: args.logs.clone(),
        log_database: args.log_database.clone(),
    };
    let queries = advisor::workload(&conn, &workload).await?;
    let opts = AdviseOptions {
        whatif: WhatIfOptions {
            statement_timeout: Duration::from_secs(args.explain_timeout),
            mode,
            ..WhatIfOptions::default()
        },
        budget,
        thresholds,
    };
    let mut run = advisor::advise(&conn, queries, &opts, progress.as_ref()).await?;
    // Drop advice: analyze's unused, duplicate, redundant and invalid index findings.
    let snap = super::progress::collect_with_progress(
        &conn,
        &crate::collect::CollectOptions {
            skip_statements: true,
            include_host: false,
            thresholds: Some(opts.thresholds.clone()),
            ..crate::collect::CollectOptions::default()
        },
    )
    .await?;
    let findings = crate::advise::advise(&snap, &opts.thresholds);
    run.advice.drops = steps::drop_suggestions(&findings, &snap);
    let drops = steps::drop_plan(&findings, &snap);
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::indexes::json(&run.advice))?
        ),
        Format::Markdown => print!("{}", report::indexes::markdown(&run.advice)),
        Format::Table => print!("{}", report::indexes::table(&run.advice, verbose)),
    }
    if !args.apply {
        if !run.advice.suggestions.is_empty() || !run.advice.drops.is_empty() {
            eprintln!(
                "dry run: nothing was changed; --apply builds the suggested indexes (--apply \
                 --drop also drops the ones listed to drop)"
            );
        }
        return Ok(EXIT_OK);
    }
    apply_advice(&args, &conn, target, &run, drops, progress).await
}

/// `--apply`: times the helped statements, builds (and with --drop drops) through the
/// executor, ANALYZEs, times them again and prints both beside the estimate.
async fn apply_advice(
    args: &IndexesArgs,
    conn: &crate::db::Conn,
    target: crate::db::Target,
    run: &advisor::Run,
    drops: crate::plan::Plan,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<u8> {
    let mut plan = steps::create_plan(&run.advice);
    if args.drop {
        plan.append(drops);
    }
    if plan.steps.is_empty() {
        eprintln!("nothing to apply");
        return Ok(EXIT_OK);
    }
    let timeout = Duration::from_secs(args.explain_timeout);
    let helped = measure::helped(&run.advice, &run.queries);
    let helped = measure::prepare(&run.queries, &run.shapes, &run.catalog, &helped);
    let before = measure::time_statements(conn, &helped, 3, timeout).await?;
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| super::default_journal("indexes"));
    let (interrupt, watcher) = super::interrupt_on_ctrl_c();
    let exec = apply::Options {
        lock_timeout: Duration::from_secs(args.lock_timeout),
        statement_timeout: Duration::from_secs(6 * 3600),
        lock_retries: 2,
        on_failure: OnFailure::Stop,
        interrupt: Some(interrupt.clone()),
        rollback_command: "pgopt indexes --rollback".into(),
        progress: Some(progress),
        reconnect: Some(Arc::new(target)),
        ..apply::Options::default()
    };
    let outcome = apply::run(conn, &plan, Some(&journal), &exec).await;
    watcher.abort();
    let report = outcome.with_context(|| {
        format!(
            "building the indexes; the journal {} says what was built (pgopt indexes \
             --rollback {} drops it)",
            journal.display(),
            journal.display()
        )
    })?;
    eprintln!(
        "journal written to {} (undo with: pgopt indexes --rollback {})",
        journal.display(),
        journal.display()
    );
    let rows: Vec<report::indexes::AppliedRow> = report
        .steps
        .iter()
        .map(|s| report::indexes::AppliedRow {
            what: s.what.clone(),
            outcome: match (s.state, &s.reason) {
                (_, Some(r)) => r.clone(),
                (apply::StepState::Done, None) if s.dropped_leftover => {
                    "done (an invalid leftover was dropped first)".into()
                }
                (apply::StepState::Done, None) => "done".into(),
                (apply::StepState::Skipped, None) => "skipped".into(),
                (state, None) => format!("{state:?}").to_lowercase(),
            },
            seconds: s.elapsed.as_secs_f64(),
        })
        .collect();
    print!("{}", report::indexes::applied(&rows));
    if report.interrupted {
        eprintln!("interrupted: the journal is complete; run again to build the rest");
        return Ok(EXIT_INTERRUPTED);
    }
    let after = measure::time_statements(conn, &helped, 3, timeout).await?;
    print!(
        "{}",
        report::indexes::measured(&run.advice, &run.queries, &before, &after)
    );
    Ok(EXIT_OK)
}

/// `--rollback JOURNAL`: undoes what the journal records, newest first.
async fn rollback(conn: &crate::db::Conn, path: &std::path::Path) -> anyhow::Result<u8> {
    let journal = apply::Journal::load(path)?;
    let opts = apply::Options {
        rollback_command: "pgopt indexes --rollback".into(),
        ..apply::Options::default()
    };
    let report = apply::rollback(conn, journal, Some(path), &opts).await?;
    if report.steps.is_empty() {
        eprintln!("nothing to roll back: every step of the journal is undone or never ran");
    }
    for s in &report.steps {
        println!(
            "{}: {}",
            s.what,
            s.reason.as_deref().unwrap_or(match s.state {
                apply::StepState::Undone => "undone",
                _ => "left as it is",
            })
        );
    }
    Ok(EXIT_OK)
}

/// `--max-size`: bytes, or a number with kB, MB, GB or TB (1024-based, as PostgreSQL's
/// units), e.g. `500MB`.
fn parse_size(text: &str) -> crate::error::Result<i64> {
    let bad = || {
        Error::BadInput(format!(
            "--max-size {text:?}: give a size such as 500MB, 2GB or 1048576 (bytes)"
        ))
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1024.0,
        "mb" => 1024.0 * 1024.0,
        "gb" => 1024.0 * 1024.0 * 1024.0,
        "tb" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes < 1.0 || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_units_and_refuse_garbage() {
        assert_eq!(parse_size("500MB").unwrap(), 500 * 1024 * 1024);
        assert_eq!(parse_size("1.5 GB").unwrap(), 3 * 512 * 1024 * 1024);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("-1GB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }
}
