//! `pgopt bench`: run a workload against a server and report latency and throughput;
//! `pgopt bench compare A.json B.json`: two saved results side by side.
//!
//! Everything the user can get wrong is checked before connecting (counts, durations, the
//! workload file), then the first connection checks that the pool fits under max_connections.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};

use super::{TargetArgs, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK};
use crate::bench::options::parse_positive;
use crate::bench::{self, BenchOptions, BenchResult, Mix, Outcome, StopAt, Workload};
use crate::report::bench as render;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    group(ArgGroup::new("stop").required(true).args(["duration", "transactions"])),
    after_help = "Exit codes: 0 completed, 2 bad input (nothing was run), 3 failed (the server \
                  went away mid-run: the partial result is printed and the error goes to \
                  stderr), 130 interrupted by Ctrl-C (the partial result is printed).\n\
                  Latency counts from the moment a client wants to run an operation (its \
                  scheduled start under --rate) to the answer, waiting for a connection included."
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// `select1` (round-trip floor), `governance` (the ACGS operations), or a pgbench-style
    /// SQL file (`\set aid random(1, 100000)` lines, then statements with `:aid` parameters).
    #[arg(long, value_name = "select1|governance|FILE", required = true)]
    pub workload: Option<String>,
    /// Operation mix of the governance workload.
    #[arg(long, value_enum, default_value = "read-heavy")]
    pub mix: Mix,
    /// Schema of the governance tables.
    #[arg(long, value_name = "NAME", default_value = crate::governance::DEFAULT_SCHEMA)]
    pub schema: String,
    /// Client tasks, each running one operation at a time.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_positive, allow_hyphen_values = true)]
    pub clients: usize,
    /// Connections the clients share, all opened at start (default: one per client).
    #[arg(long, value_name = "M", value_parser = parse_positive, allow_hyphen_values = true)]
    pub connections: Option<usize>,
    /// How long to measure: 30s, 1m, 1m30s, 500ms.
    #[arg(long, value_name = "D", value_parser = bench::parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// How many executions to measure in total (failed ones included).
    #[arg(long, value_name = "T", value_parser = parse_positive, allow_hyphen_values = true)]
    pub transactions: Option<usize>,
    /// Target total rate in transactions per second (schedule-based, like pgbench -R).
    #[arg(long, value_name = "TPS", allow_hyphen_values = true)]
    pub rate: Option<f64>,
    /// Run this long first and discard the figures.
    #[arg(long, value_name = "D", value_parser = bench::parse_duration, allow_hyphen_values = true)]
    pub warmup: Option<Duration>,
    /// Mix `SELECT 1` into the workload as operation `select1`, so that each operation's
    /// latency can be set against the round-trip floor measured under the same conditions.
    #[arg(long)]
    pub floor: bool,
    /// Seed of the parameter generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output format (json can be saved for `pgopt bench compare`).
    #[arg(long, value_enum, default_value = "table")]
    pub format: BenchFormat,
    /// Also write an HTML report (tables and a latency chart) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Compare two saved results (`--format json`): p50, p99 and throughput per operation,
    /// with the ratio B/A.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline result.
    #[arg(value_name = "A.json")]
    pub a: PathBuf,
    /// The result compared against it.
    #[arg(value_name = "B.json")]
    pub b: PathBuf,
    #[arg(long, value_enum, default_value = "table")]
    pub format: BenchFormat,
    /// Also write an HTML report (the comparison, p50 and p99 of A beside B, and each side's
    /// latency distribution as charts) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Where the operations come from, decided before connecting.
enum Source {
    Select1,
    Governance,
    File(Workload),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<u8> {
    if let Some(BenchCommand::Compare(c)) = &args.command {
        return compare(c);
    }
    let opts = BenchOptions {
        clients: args.clients,
        connections: args.connections.unwrap_or(args.clients),
        stop: match (args.duration, args.transactions) {
            (Some(d), None) => StopAt::Duration(d),
            (None, Some(t)) => StopAt::Transactions(t as u64),
            _ => {
                return Err(crate::Error::BadInput(
                    "give exactly one of --duration and --transactions".into(),
                )
                .into())
            }
        },
        rate: args.rate,
        warmup: args.warmup.unwrap_or(Duration::ZERO),
        progress: true,
        seed: args.seed,
    };
    opts.validate()?;
    let source = match args.workload.as_deref() {
        Some("select1") => Source::Select1,
        Some("governance") => Source::Governance,
        Some(path) => Source::File(bench::file::load(std::path::Path::new(path))?),
        None => {
            return Err(crate::Error::BadInput(
                "--workload is required: select1, governance or a SQL file".into(),
            )
            .into())
        }
    };

    // Ctrl-C from here on stops the run and prints what was measured.
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = interrupt_tx.send(true);
        }
    });

    let target = if args.target.discover.is_some() {
        args.target.connect().await?.0
    } else {
        args.target.resolve()?
    };
    let (conn, facts) = bench::probe(&target, opts.connections).await?;
    let workload = match source {
        Source::Select1 => bench::select1(),
        Source::File(w) => w,
        Source::Governance => bench::governance_workload(&conn, &args.schema, args.mix).await?,
    };
    let workload = if args.floor {
        bench::with_floor(workload)?
    } else {
        workload
    };
    // The probe connection would take a slot from the pool.
    bench::close_probe(conn).await;

    let result = bench::run(&target, workload, &opts, &facts, Some(interrupt_rx)).await?;
    print_result(&result, args.format);
    if let Some(path) = &args.html {
        write_html(path, &crate::report::bench_html::result_html(&result)?)?;
    }
    Ok(match result.outcome {
        Outcome::Completed => EXIT_OK,
        Outcome::Interrupted => {
            eprintln!(
                "interrupted: the result above covers the {:.1} s that ran",
                result.duration_s
            );
            EXIT_INTERRUPTED
        }
        Outcome::Failed => {
            eprintln!(
                "error: the run failed after {:.1} s (partial result above): {}",
                result.duration_s,
                result.error.as_deref().unwrap_or("unknown failure")
            );
            EXIT_FAILED
        }
    })
}

/// Writes an HTML report atomically and says where.
fn write_html(path: &std::path::Path, html: &str) -> crate::Result<()> {
    crate::files::write_atomically(path, html)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn print_result(r: &BenchResult, format: BenchFormat) {
    match format {
        BenchFormat::Table => print!("{}", render::render_result_table(r)),
        BenchFormat::Json => println!("{}", render::render_result_json(r)),
    }
}

fn compare(c: &CompareArgs) -> anyhow::Result<u8> {
    let a = BenchResult::load(&c.a)?;
    let b = BenchResult::load(&c.b)?;
    let cmp = bench::compare(&a, &b);
    match c.format {
        BenchFormat::Table => print!("{}", render::render_comparison_table(&cmp)),
        BenchFormat::Json => println!("{}", render::render_comparison_json(&cmp)),
    }
    if let Some(path) = &c.html {
        let label = |p: &std::path::Path| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string())
        };
        let (la, lb) = (label(&c.a), label(&c.b));
        let (la, lb) = if la == lb {
            ("A".to_string(), "B".to_string())
        } else {
            (la, lb)
        };
        let html = crate::report::bench_html::compare_html(&a, &b, &cmp, (&la, &lb))?;
        write_html(path, &html)?;
    }
    Ok(EXIT_OK)
}
