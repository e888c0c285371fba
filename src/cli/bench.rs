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
use crate::bench::{self, BenchOptions, BenchResult, Outcome, StopAt, Workload};
use crate::governance::{self, Mix};
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
                  Latency counts from the moment a client wants to run a script (its \
                  scheduled start under --rate) to the end of the script: wait (for a free \
                  connection; 0 with one connection per client) plus exec."
)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// A script, repeatable, each with an optional weight `@W` (default 1): a pgbench script
    /// file (one run of it = one transaction), a pgbench built-in (`tpcb-like`,
    /// `simple-update`, `select-only`), `select1` (round-trip floor) or `governance` (the ACGS
    /// operations), e.g. `--workload a.sql@3 --workload select-only@1`.
    #[arg(long, value_name = "SCRIPT[@W]", required = true)]
    pub workload: Vec<String>,
    /// `:scale` of the scripts (default: pgbench's rule: the row count of pgbench_branches
    /// when a pgbench built-in runs, else 1).
    #[arg(long, value_name = "N", value_parser = parse_scale, allow_hyphen_values = true)]
    pub scale: Option<i64>,
    /// Define a script variable, as pgbench -D (repeatable): `-D limit=10`.
    #[arg(long = "define", short = 'D', value_name = "NAME=VALUE")]
    pub define: Vec<String>,
    /// Print throughput, latency (mean, stddev) and failures every N seconds on stderr (as
    /// pgbench -P).
    #[arg(long, value_name = "N", value_parser = parse_positive, allow_hyphen_values = true)]
    pub progress: Option<usize>,
    /// Operation mix of the governance workload.
    #[arg(long, value_enum, default_value = "read-heavy")]
    pub mix: Mix,
    /// Schema of the governance tables.
    #[arg(long, value_name = "NAME", default_value = crate::governance::DEFAULT_SCHEMA)]
    pub schema: String,
    /// Clients, each running one script at a time.
    #[arg(long, value_name = "N", default_value = "1", value_parser = parse_positive, allow_hyphen_values = true)]
    pub clients: usize,
    /// Connections the clients share, all opened at start (default: one per client).
    #[arg(long, value_name = "M", value_parser = parse_positive, allow_hyphen_values = true)]
    pub connections: Option<usize>,
    /// How long to measure: 30s, 1m, 1m30s, 500ms.
    #[arg(long, value_name = "D", value_parser = bench::parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,
    /// How many transactions (runs of a script) to measure in total (failed ones included).
    #[arg(long, value_name = "T", value_parser = parse_positive, allow_hyphen_values = true)]
    pub transactions: Option<usize>,
    /// Target total rate in transactions per second (schedule-based, like pgbench -R).
    #[arg(long, value_name = "TPS", allow_hyphen_values = true)]
    pub rate: Option<f64>,
    /// Run this long first and discard the figures.
    #[arg(long, value_name = "D", value_parser = bench::parse_duration, allow_hyphen_values = true)]
    pub warmup: Option<Duration>,
    /// Mix `SELECT 1` into the workload as script `select1`, so that each script's
    /// latency can be set against the round-trip floor measured under the same conditions.
    #[arg(long)]
    pub floor: bool,
    /// Seed of the parameter generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What runs the statements when each client owns its connection: `lean` (pgopt's own
    /// protocol path; tokio-postgres where it cannot be used: TLS, several hosts) or
    /// `standard` (tokio-postgres always), to compare the two.
    #[arg(long, value_name = "PATH", default_value = "lean", value_parser = ["lean", "standard"], hide = true)]
    pub client_path: String,
    /// Output format (json can be saved for `pgopt bench compare`).
    #[arg(long, value_enum, default_value = "table")]
    pub format: BenchFormat,
    /// Also write an HTML report (tables and a latency chart) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Compare two saved results (`--format json`): p50, p99 and throughput per script,
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
    /// Compare even when the runs differ in scripts, clients or connections.
    #[arg(long)]
    pub force: bool,
    /// Also write an HTML report (the comparison, p50 and p99 of A beside B, and each side's
    /// latency distribution as charts) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `--scale`: a whole number of at least 1.
fn parse_scale(text: &str) -> std::result::Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "bad scale {text:?}: give a whole number of at least 1 (pgbench -i -s N made N)"
        )),
    }
}

/// One `--workload`, resolved before connecting.
enum Source {
    Select1,
    Governance,
    Ready(Workload),
}

const KNOWN_SCRIPTS: &str = "tpcb-like, simple-update, select-only, select1, governance";

/// Resolves every `--workload` (files read and parsed) and the `--define`s.
fn sources(args: &BenchArgs) -> crate::Result<Vec<(Source, u32)>> {
    let mut defines = Vec::new();
    for d in &args.define {
        let (name, value) = d.split_once('=').ok_or_else(|| {
            crate::Error::BadInput(format!("--define {d}: write it as NAME=VALUE"))
        })?;
        defines.push((name.to_string(), bench::expr::Value::from_text(value)));
    }
    let mut out = Vec::new();
    for spec in &args.workload {
        let (name, weight) = bench::file::split_weight(spec)?;
        let source = match name {
            "select1" => Source::Select1,
            "governance" => Source::Governance,
            other if bench::file::BUILTINS.iter().any(|b| b.0 == other) => {
                Source::Ready(bench::file::builtin(other, &defines).expect("a built-in name")?)
            }
            other if std::path::Path::new(other).exists() || other.contains(['/', '.']) => {
                Source::Ready(bench::file::load(std::path::Path::new(other), &defines)?)
            }
            // A unique prefix of a built-in, as pgbench -b.
            other => match bench::file::builtin(other, &defines) {
                Some(w) => Source::Ready(w?),
                None => {
                    return Err(crate::Error::BadInput(format!(
                        "--workload {other}: no such built-in script ({KNOWN_SCRIPTS}) and no \
                         such file; give a built-in name or the path of a SQL file"
                    )))
                }
            },
        };
        out.push((source, weight));
    }
    if out.is_empty() {
        return Err(crate::Error::BadInput(format!(
            "--workload is required: {KNOWN_SCRIPTS} or a SQL file"
        )));
    }
    if out.iter().all(|(_, w)| *w == 0) {
        return Err(crate::Error::BadInput(
            "every --workload has weight 0: give one a weight above zero".into(),
        ));
    }
    Ok(out)
}

const SCALE_SQL: &str = include_str!("../sql/bench_scale.sql");

/// pgbench's `:scale` for its built-ins: the rows of pgbench_branches.
async fn detect_scale(conn: &crate::db::Conn) -> crate::Result<i64> {
    let row = conn
        .query_one("reading the scale from pgbench_branches", SCALE_SQL, &[])
        .await
        .map_err(|e| match e.sqlstate() {
            Some(c) if c.code().starts_with("42") => crate::Error::BadInput(format!(
                "{e}. The pgbench built-in scripts need pgbench's tables: run pgbench -i first \
                 (or give --scale N with tables of your own)"
            )),
            _ => e,
        })?;
    let n: i64 = row.get("n");
    if n < 1 {
        return Err(crate::Error::BadInput(
            "pgbench_branches is empty, so the scale is unknown: run pgbench -i again or \
             give --scale N"
                .into(),
        ));
    }
    Ok(n)
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
        progress_every: args.progress.map(|n| Duration::from_secs(n as u64)),
        seed: args.seed,
        client_path: match args.client_path.as_str() {
            "standard" => bench::ClientPath::Standard,
            _ => bench::ClientPath::Lean,
        },
    };
    opts.validate()?;
    let sources = sources(&args)?;

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
    let mut parts = Vec::with_capacity(sources.len());
    for (source, weight) in sources {
        let w = match source {
            Source::Select1 => bench::select1(),
            Source::Ready(w) => w,
            Source::Governance => {
                governance::governance_workload(&conn, &args.schema, args.mix).await?
            }
        };
        parts.push((w, weight));
    }
    let mut workload = Workload::combine(parts)?;
    let scale = match args.scale {
        Some(n) => n,
        None if workload.detects_scale() => detect_scale(&conn).await?,
        None => 1,
    };
    workload.set_scale(scale);
    let workload = if args.floor {
        bench::with_floor(workload)?
    } else {
        workload
    };
    // The probe connection would take a slot from the pool.
    bench::close_probe(conn).await;

    let result = bench::run(
        &target,
        workload,
        &opts,
        &facts,
        Some(interrupt_rx),
        std::sync::Arc::new(super::progress::Bars::stderr()),
    )
    .await?;
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
    let mut cmp = bench::compare(&a, &b);
    cmp.a_file = c.a.display().to_string();
    cmp.b_file = c.b.display().to_string();
    eprintln!("A: {} ({})", cmp.a_file, a.workload);
    eprintln!("B: {} ({})", cmp.b_file, b.workload);
    for d in &cmp.differences {
        eprintln!("warning: {d}");
    }
    let blocking: Vec<&str> = cmp
        .differences
        .iter()
        .filter(|d| d.blocking)
        .map(|d| d.what.as_str())
        .collect();
    if !blocking.is_empty() && !c.force {
        return Err(crate::Error::BadInput(format!(
            "A and B are not comparable: they differ in {}. Run both with the same scripts, \
             --clients and --connections, or pass --force to compare anyway",
            blocking.join(", ")
        ))
        .into());
    }
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
