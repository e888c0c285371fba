//! `pgopt analyze`: snapshot (live or from a file) -> findings -> report.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::progress::collect_with_progress;
use super::{exit_code, TargetArgs, EXIT_OK};
use crate::advise::{self, Severity, Thresholds};
use crate::collect::CollectOptions;
use crate::error::Error;
use crate::report::{self, Format};
use crate::snapshot::Snapshot;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Write the snapshot to this file (JSON) for later `--from`.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Analyze a saved snapshot instead of a live server.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dsn", "discover"])]
    pub from: Option<PathBuf>,
    /// Exit with 1 when a finding of this severity or worse is found [default: findings do
    /// not change the exit code].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Override a threshold, e.g. `--threshold cache_hit_ratio_warning=0.98` (repeatable;
    /// `--threshold list` prints them all).
    #[arg(long = "threshold", value_name = "NAME=VALUE")]
    pub thresholds: Vec<String>,
    /// Statements to keep from pg_stat_statements (top by total time, and by mean time).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub top_statements: usize,
    /// Do not read pg_stat_statements.
    #[arg(long)]
    pub skip_statements: bool,
    /// Do not read CPU, memory and disk of this machine (read only when the server is local).
    #[arg(long)]
    pub no_host: bool,
}

/// `verbose`: the table form shows each finding's evidence, next step and SQL.
pub async fn run(args: AnalyzeArgs, verbose: bool) -> anyhow::Result<u8> {
    if args.thresholds.iter().any(|t| t == "list") {
        print!("{}", thresholds_help());
        return Ok(EXIT_OK);
    }
    let thresholds = parse_thresholds(&args.thresholds)?;
    let snap = match &args.from {
        Some(path) => Snapshot::load(path)?,
        None => {
            let (_, conn) = args.target.connect().await?;
            let opts = CollectOptions {
                top_statements: args.top_statements,
                skip_statements: args.skip_statements,
                include_host: !args.no_host,
                // The findings' tables and indexes are measured, not estimated.
                thresholds: Some(thresholds.clone()),
                ..CollectOptions::default()
            };
            collect_with_progress(&conn, &opts).await?
        }
    };
    if let Some(path) = &args.save {
        snap.save(path)
            .with_context(|| format!("saving the snapshot to {}", path.display()))?;
        eprintln!("snapshot saved to {}", path.display());
    }
    let findings = advise::advise(&snap, &thresholds);
    let text = report::TextOptions {
        verbose,
        ..report::TextOptions::detect()
    };
    if args.format == report::Format::Json {
        // Streamed: the JSON of a large catalog is too big to build as one string first.
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        report::write_json(&mut out, &snap, &findings)
            .and_then(|()| std::io::Write::flush(&mut out))
            .context("writing the JSON report to standard output")?;
    } else {
        println!(
            "{}",
            report::render_with(&snap, &findings, args.format, &text)
        );
    }
    Ok(exit_code(&findings, args.fail_on))
}

pub fn parse_thresholds(items: &[String]) -> Result<Thresholds, Error> {
    Thresholds::with_overrides(items)
}

fn thresholds_help() -> String {
    crate::report::thresholds::list()
}
