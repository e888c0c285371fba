//! The command line: clap arguments, turned into resolved settings once, one file per command.
//!
//! Exit codes (shared by every command):
//! 0 done, no finding at or above `--fail-on`; 1 findings at or above `--fail-on`;
//! 2 bad input (a DSN that does not parse, a bad flag, an unreadable snapshot file);
//! 3 failed (the server could not be reached, collection failed, an internal error);
//! 130 interrupted by Ctrl-C (`pgopt bench`: the partial result was printed).

mod analyze;
mod bench;
mod demo;
mod drill;
mod embedded;
mod governance;
mod indexes;
mod maintain;
mod optimize;
mod progress;
mod serve;
mod target;
mod tune;
mod values;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;

pub use target::TargetArgs;

pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_FAILED: u8 = 3;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "pgopt",
    version,
    about = "PostgreSQL performance optimizer: analyze, indexes, maintenance, settings, performance",
    after_help = "Exit codes: 0 ok, 1 findings at or above --fail-on, 2 bad input, 3 failed, \
                  130 interrupted.\n\
                  With no target, try `pgopt demo` or `pgopt embedded start`."
)]
#[command(next_line_help = true)]
pub struct Cli {
    /// More detail: -v shows each finding's evidence, whole next step and SQL (analyze,
    /// demo); -vv adds info logs and -vvv debug logs on stderr (PGOPT_LOG overrides).
    #[arg(
        short,
        long,
        action = clap::ArgAction::Count,
        global = true,
        help_heading = "Global options"
    )]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Collect one consistent snapshot and report what is wrong, with evidence and next steps.
    Analyze(analyze::AnalyzeArgs),
    /// Load-test a server: latency percentiles, throughput, errors by SQLSTATE; `bench compare`
    /// puts two saved results side by side.
    Bench(bench::BenchArgs),
    /// Start a throw-away cluster, deploy and seed the governance database, run its workload,
    /// then `optimize --apply` with a benchmark before and after; print the summary and the
    /// report paths, stop.
    Demo(demo::DemoArgs),
    /// Failover drill: a primary and a synchronous standby, writing clients through the
    /// failover-aware pool, the primary killed (restarted, cut off); proves no acknowledged
    /// write is lost and reports how fast writes came back.
    Drill(drill::DrillArgs),
    /// Keep an embedded PostgreSQL cluster running for interactive use.
    Embedded(embedded::EmbeddedArgs),
    /// Deploy, seed, index or drop the ACGS governance database (the benchmark workload).
    Governance(governance::GovernanceArgs),
    /// Advise indexes from the workload (pg_stat_statements, --query, --file, --log), each
    /// costed with hypothetical indexes (HypoPG) and explained; `--apply` builds them with
    /// CREATE INDEX CONCURRENTLY (journaled), `--rollback JOURNAL` drops them again.
    Indexes(indexes::IndexesArgs),
    /// Maintenance from the snapshot: VACUUM, ANALYZE, VACUUM (FREEZE) and REINDEX INDEX
    /// CONCURRENTLY where analyze's thresholds say so, biggest need first; `--apply` runs them
    /// (journaled, within `--budget`); `--next-window` reads the maintenance windows.
    Maintain(maintain::MaintainArgs),
    /// The five phases in one run: analyze, indexes, maintenance, settings and a benchmark
    /// before and after; the plan by default, `--apply` applies what is safe (journaled),
    /// `--report DIR` writes report.json, report.md and report.html.
    Optimize(optimize::OptimizeArgs),
    /// Watch one server (TARGET) or a fleet (--config pgopt.toml): history, alerts, query
    /// regressions, Prometheus /metrics and a dashboard; `--check-config` validates only.
    Serve(serve::ServeArgs),
    /// Recommend settings: `--method pgtune` gives exactly PGTune's numbers for the given
    /// hardware (`--memory 16GB --cpus 8`), as a report, a conf file or ALTER SYSTEM; with a
    /// TARGET, current against recommended, `--apply` (journaled) and `--rollback JOURNAL`.
    Tune(tune::TuneArgs),
}

/// Ctrl-C while a command changes a server: the receiver turns true at the first Ctrl-C and
/// the executor then finishes or rolls back the step in flight. Abort the handle when done.
pub(crate) fn interrupt_on_ctrl_c() -> (
    tokio::sync::watch::Receiver<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, interrupt) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: finishing or rolling back the step in flight");
            let _ = stop.send(true);
        }
    });
    (interrupt, watcher)
}

/// `pgopt-<command>-journal-<UTC timestamp>.json`, where `--journal` is not given.
pub(crate) fn default_journal(command: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!(
        "pgopt-{command}-journal-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    ))
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code.
pub fn run() -> ExitCode {
    let parsed = <Cli as clap::CommandFactory>::command()
        .try_get_matches()
        .and_then(|m| {
            let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&m)?;
            Ok((cli, command_path(&m)))
        });
    let (cli, command_path) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    EXIT_OK
                }
                _ => EXIT_BAD_INPUT,
            });
        }
    };
    match &cli.command {
        Command::Serve(args) => serve::init_logging(cli.verbose, args.log_format),
        _ => init_tracing(cli.verbose),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Analyze(args) => analyze::run(args, cli.verbose > 0).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Drill(args) => drill::run(args).await,
            Command::Embedded(args) => embedded::run(args),
            Command::Governance(args) => governance::run(args).await,
            Command::Indexes(args) => indexes::run(args, cli.verbose > 0).await,
            Command::Maintain(args) => maintain::run(args).await,
            Command::Optimize(args) => optimize::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Tune(args) => tune::run(args).await,
        }
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            if let Some(hint) = target::default_target_hint(&e, &command_path) {
                eprintln!("{hint}");
            }
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// The error and its causes in one line, each cause once: a cause whose text the message
/// already holds (thiserror's `{source}` beside `#[source]`, anyhow context) is not repeated.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
    }
    text
}

/// `pgopt analyze`, `pgopt governance seed`: the command as the user typed it, for hints.
fn command_path(matches: &clap::ArgMatches) -> String {
    let mut path = String::from("pgopt");
    let mut m = matches;
    while let Some((name, sub)) = m.subcommand() {
        path.push(' ');
        path.push_str(name);
        m = sub;
    }
    path
}

fn exit_code_for(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>() {
        Some(err) if err.is_bad_input() => EXIT_BAD_INPUT,
        _ => EXIT_FAILED,
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
        2 => "pgopt=info",
        _ => "pgopt=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGOPT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(crate::report::term::color_stderr())
        .try_init();
}

/// 1 when a finding at or above `fail_on` exists, else 0.
pub fn exit_code(
    findings: &[crate::advise::Finding],
    fail_on: Option<crate::advise::Severity>,
) -> u8 {
    match fail_on {
        Some(level) if findings.iter().any(|f| f.severity >= level) => EXIT_FINDINGS,
        _ => EXIT_OK,
    }
}
