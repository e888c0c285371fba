//! `pgopt optimize`: the five phases (analyze, indexes, maintenance, settings, performance) in
//! one run; the plan without `--apply`, the changes and the benchmark before and after with
//! it; the reports in `--report DIR`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{TargetArgs, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::bench::options::parse_positive;
use crate::optimize::model::{Mode, Report, Status};
use crate::optimize::{self, phases};

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Apply what is safe: build the suggested indexes (CREATE INDEX CONCURRENTLY), run the
    /// maintenance (VACUUM, ANALYZE, REINDEX CONCURRENTLY), set the settings that take effect
    /// on a reload, each journaled, with a benchmark before and after. Without it nothing is
    /// changed.
    #[arg(long, conflicts_with = "quick")]
    pub apply: bool,
    /// Analysis, index diagnostics and settings only: no what-if costing, no maintenance
    /// advice, no benchmark; changes nothing.
    #[arg(long)]
    pub quick: bool,
    /// Workload profile of the settings advice, as pgopt tune --profile: web, oltp, dw,
    /// desktop, mixed or governance [default: web].
    #[arg(long, value_name = "PROFILE", value_parser = parse_profile)]
    pub profile: Option<crate::tune::Profile>,
    /// Write report.json, report.md and report.html to this directory (checked before
    /// anything is changed).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// How long each benchmark (before and after the changes) measures: 15s, 1m, 500ms.
    #[arg(long, value_name = "D", default_value = "15s", value_parser = crate::bench::parse_duration)]
    pub bench_duration: Duration,
    /// Benchmark clients, each with its own connection.
    #[arg(long, value_name = "N", default_value = "4", value_parser = parse_positive)]
    pub clients: usize,
    /// Where --apply writes its journals, one per phase that changed something [default: the
    /// --report directory, else the current directory].
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// The schema of the governance tables (benchmarked when it is there).
    #[arg(long, value_name = "NAME", default_value = crate::governance::DEFAULT_SCHEMA)]
    pub schema: String,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(args: OptimizeArgs) -> anyhow::Result<u8> {
    let settings = Settings::from(&args);
    settings.check_dirs()?;
    let (target, conn) = args.target.connect().await?;
    Ok(run_on(&target, &conn, &settings).await?.1)
}

/// What a run is asked to do, resolved from the flags (`pgopt demo` fills it itself).
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub profile: Option<crate::tune::Profile>,
    pub report: Option<PathBuf>,
    pub bench_duration: Duration,
    pub clients: usize,
    pub journal_dir: PathBuf,
    pub schema: String,
    pub no_progress: bool,
}

impl From<&OptimizeArgs> for Settings {
    fn from(args: &OptimizeArgs) -> Self {
        Settings {
            mode: match (args.apply, args.quick) {
                (true, _) => Mode::Apply,
                (_, true) => Mode::Quick,
                _ => Mode::DryRun,
            },
            profile: args.profile,
            report: args.report.clone(),
            bench_duration: args.bench_duration,
            clients: args.clients,
            journal_dir: args
                .journal_dir
                .clone()
                .or_else(|| args.report.clone())
                .unwrap_or_else(|| PathBuf::from(".")),
            schema: args.schema.clone(),
            no_progress: args.no_progress,
        }
    }
}

impl Settings {
    /// Before connecting, before any change: the report and journal directories can be
    /// written.
    pub fn check_dirs(&self) -> crate::Result<()> {
        if let Some(dir) = &self.report {
            crate::report::optimize::check_writable(dir).map_err(|e| {
                crate::Error::BadInput(format!(
                    "{}; nothing was changed",
                    e.to_string().trim_end_matches('.')
                ))
            })?;
        }
        if self.mode == Mode::Apply {
            crate::report::optimize::check_writable(&self.journal_dir).map_err(|_| {
                crate::Error::BadInput(format!(
                    "the journal directory {} cannot be written; give another --journal-dir; \
                     nothing was changed",
                    self.journal_dir.display()
                ))
            })?;
        }
        Ok(())
    }
}

/// Runs optimize on the server behind `conn` and prints the plan, the outcome and the summary.
/// Returns the report and the exit code (0 every phase done or skipped, 3 a phase failed, 130
/// interrupted). Call [`Settings::check_dirs`] first.
pub async fn run_on(
    target: &crate::db::Target,
    conn: &crate::db::Conn,
    settings: &Settings,
) -> anyhow::Result<(Report, u8)> {
    let progress: Arc<dyn crate::progress::Progress> = if settings.no_progress {
        Arc::new(crate::progress::NoProgress)
    } else {
        Arc::new(super::progress::Bars::stderr())
    };
    // Ctrl-C while changing: the step in flight finishes or is rolled back, the journal is
    // completed and the report says where it stopped. A dry run changes nothing: Ctrl-C ends it.
    let (interrupt, watcher) = if settings.mode == Mode::Apply {
        let (rx, watcher) = super::interrupt_on_ctrl_c();
        (Some(rx), Some(watcher))
    } else {
        (None, None)
    };
    let started = std::time::Instant::now();
    let opts = optimize::Options {
        mode: settings.mode,
        profile: settings.profile,
        bench_duration: settings.bench_duration,
        clients: settings.clients,
        journal_dir: settings.journal_dir.clone(),
        schema: settings.schema.clone(),
        interrupt,
        progress,
        say: Arc::new(move |line: &str| {
            eprintln!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64())
        }),
        ..optimize::Options::default()
    };
    let report = optimize::run(target, conn, &opts).await;
    if let Some(w) = watcher {
        w.abort();
    }
    print!("{}", plan_text(&report));
    match &settings.report {
        Some(dir) => {
            let written = crate::report::optimize::write(dir, &report)?;
            print!("{}", crate::report::optimize::summary(&report, &written));
        }
        None => print!("{}", phase_lines(&report)),
    }
    if report.mode != Mode::Apply {
        println!("nothing was changed; run with --apply to apply what is safe");
    }
    let code = exit_code(&report);
    Ok((report, code))
}

/// `--profile`: the library's names (`pgopt tune --profile` takes the same).
fn parse_profile(text: &str) -> Result<crate::tune::Profile, String> {
    text.parse().map_err(|e: crate::Error| e.to_string())
}

fn exit_code(report: &Report) -> u8 {
    if report.interrupted.is_some() {
        EXIT_INTERRUPTED
    } else if report.phases.iter().any(|p| p.status == Status::Failed) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Each phase's plan (dry run) or outcome (--apply), for the terminal.
fn plan_text(r: &Report) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let warnings: Vec<_> = r.findings.iter().filter(|f| f.severity != "info").collect();
    line(format!(
        "analyze: {} findings ({} warnings or worse)",
        r.findings.len(),
        warnings.len()
    ));
    for f in warnings.iter().take(10) {
        line(format!("  [{}] {}: {}", f.severity, f.rule, f.message));
    }
    line(format!("indexes: {} suggested", r.indexes.len()));
    for i in &r.indexes {
        line(format!("  {}  -- {}", i.ddl, i.outcome));
    }
    for d in &r.index_drops {
        line(format!(
            "  advised to drop (never dropped by optimize): {} ({})",
            d.index, d.reason
        ));
    }
    line(format!("maintenance: {} tasks", r.maintenance.len()));
    for m in &r.maintenance {
        line(format!("  {}  -- {}; {}", m.sql, m.reason, m.outcome));
    }
    line(format!("settings: {} to change", r.settings.len()));
    for s in &r.settings {
        line(format!(
            "  {}: {} -> {}  -- {}",
            s.name, s.current, s.recommended, s.outcome
        ));
    }
    if let (Some(b), Some(a)) = (&r.bench_before, &r.bench_after) {
        line(format!(
            "performance: {} with {} clients for {:.0}s each",
            b.workload, b.clients, b.duration_s
        ));
        for (ob, oa) in b.operations.iter().zip(&a.operations) {
            line(format!(
                "  {:<28} p50 {:>8.3} -> {:>8.3} ms ({})  p99 {:>8.3} -> {:>8.3} ms ({})",
                ob.name,
                ob.latency.p50_ms,
                oa.latency.p50_ms,
                phases::ratio(oa.latency.p50_ms, ob.latency.p50_ms),
                ob.latency.p99_ms,
                oa.latency.p99_ms,
                phases::ratio(oa.latency.p99_ms, ob.latency.p99_ms),
            ));
        }
    }
    out
}

/// The phases and their status, when no report directory was given.
fn phase_lines(r: &Report) -> String {
    let (done, total) = r.success_rate();
    let mut out = format!("optimize: {done}/{total} phases done\n");
    for p in &r.phases {
        let status = match p.status {
            Status::Done => "done",
            Status::Skipped => "skipped",
            Status::Failed => "FAILED",
        };
        out.push_str(&format!(
            "  {:<12} {:<8} {}",
            p.name.as_str(),
            status,
            p.summary
        ));
        if let Some(reason) = &p.reason {
            out.push_str(&format!(" ({reason})"));
        }
        out.push('\n');
    }
    if let Some(at) = &r.interrupted {
        out.push_str(&format!("  interrupted: {at}\n"));
    }
    for j in &r.journals {
        out.push_str(&format!(
            "  journal ({}): {} (undo: {})\n",
            j.phase.as_str(),
            j.path,
            j.rollback
        ));
    }
    out
}
