//! `pgopt demo`: the whole job on a throw-away cluster, in about a minute: the ACGS governance
//! database deployed and seeded, its workload run to fill pg_stat_statements, then
//! `pgopt optimize --apply` (analyze, indexes, maintenance, settings, a benchmark before and
//! after), the summary and the reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::optimize::{run_on, Settings};
use crate::bench::options::parse_positive;
use crate::bench::{self, BenchOptions, StopAt};
use crate::db;
use crate::embedded::{Cluster, ClusterOptions, Detached};
use crate::governance::{self, Mix, DEFAULT_SCHEMA};
use crate::ident::Ident;
use crate::indexes::whatif::{self, HypoPg};
use crate::optimize::model::Mode;
use crate::progress::{NoProgress, Progress};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the cluster running afterwards (in a data directory of its own) and print its
    /// connection string; `pgopt embedded stop --data-dir DIR` stops it and keeps its data,
    /// `pgopt embedded remove --data-dir DIR` stops it and deletes the directory.
    #[arg(long)]
    pub keep: bool,
    /// Size of the governance database: 1 is about 3.6 million rows; the default, 0.1, about
    /// 360,000 (10,000 users' worth of events at 1).
    #[arg(long, default_value_t = 0.1, allow_hyphen_values = true)]
    pub scale: f64,
    /// Where the reports (report.json, report.md, report.html) and the journals go.
    #[arg(long, value_name = "DIR", default_value = "pgopt-demo-report")]
    pub report: PathBuf,
    /// How long the workload runs first, to fill pg_stat_statements.
    #[arg(long, value_name = "D", default_value = "5s", value_parser = bench::parse_duration)]
    pub workload_duration: Duration,
    /// How long each benchmark of optimize (before and after) measures.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = bench::parse_duration)]
    pub bench_duration: Duration,
    /// Clients of the workload and the benchmarks.
    #[arg(long, value_name = "N", default_value = "4", value_parser = parse_positive)]
    pub clients: usize,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let say = |msg: &str| eprintln!("[{:>5.1}s] {msg}", started.elapsed().as_secs_f64());
    // Bad input before anything starts.
    governance::seed::RowCounts::for_scale(args.scale)?;
    let settings = Settings {
        mode: Mode::Apply,
        profile: None,
        report: Some(args.report.clone()),
        bench_duration: args.bench_duration,
        clients: args.clients,
        journal_dir: args.report.clone(),
        schema: DEFAULT_SCHEMA.to_string(),
        no_progress: args.no_progress,
    };
    settings.check_dirs()?;

    say("starting a throw-away PostgreSQL cluster");
    // A kept cluster must outlive this process, so it runs detached (pg_ctl) instead.
    let (cluster, detached, port) = if args.keep {
        let dir = tempfile::Builder::new()
            .prefix("pgopt-demo-")
            .tempdir()?
            .keep();
        std::fs::remove_dir(&dir)?;
        let d = Detached::new(Some(dir))?;
        let st = d.start()?;
        let port = st
            .port
            .ok_or_else(|| anyhow::anyhow!("the kept cluster has no port"))?;
        (None, Some(d), port)
    } else {
        let c = Cluster::start(ClusterOptions::default())?;
        let port = c.port();
        (Some(c), None, port)
    };
    let database = crate::demo::DATABASE;
    // The cluster it started, never what PG* variables point at.
    let target = crate::embedded::local_target(port, database)?;

    let admin = db::connect(&crate::embedded::local_target(port, "postgres")?).await?;
    admin
        .batch(
            "creating the demo database",
            &format!("CREATE DATABASE {}", Ident::new(database)),
        )
        .await?;
    drop(admin);
    let conn = db::connect(&target).await?;
    conn.batch(
        "creating pg_stat_statements",
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
    )
    .await?;
    match whatif::hypopg_status(&conn).await? {
        HypoPg::Installed { .. } => {}
        HypoPg::Available { .. } => {
            conn.batch("creating hypopg", "CREATE EXTENSION hypopg")
                .await?
        }
        HypoPg::Missing => say(
            "note: HypoPG is not installed here, so the indexes phase cannot cost indexes; it \
             will say how to install it",
        ),
    }

    say(&format!(
        "deploying and seeding the governance database (scale {})",
        args.scale
    ));
    let bars;
    let progress: &dyn Progress = if args.no_progress {
        &NoProgress
    } else {
        bars = super::progress::Bars::stderr();
        &bars
    };
    governance::deploy(&conn, DEFAULT_SCHEMA).await?;
    let seeded = governance::seed(&conn, DEFAULT_SCHEMA, args.scale, 1, progress).await?;
    say(&format!(
        "{} rows loaded; running the governance workload for {:.0}s to fill pg_stat_statements",
        seeded.total_rows(),
        args.workload_duration.as_secs_f64()
    ));
    // One window for the statements and the tables' write counts: the seed is no workload
    // (its rows would count as writes against every index). Its counters are flushed first.
    conn.query(
        "flushing statistics",
        "SELECT pg_stat_force_next_flush()",
        &[],
    )
    .await?;
    conn.query(
        "resetting the statistics",
        "SELECT pg_stat_statements_reset(), pg_stat_reset()",
        &[],
    )
    .await?;
    // The reset forgets when the seed analyzed the tables: record it again.
    for table in governance::TABLES {
        conn.batch(
            "analyzing the seeded tables",
            &format!("ANALYZE {}", governance::qualified(DEFAULT_SCHEMA, table)),
        )
        .await?;
    }
    fill(&target, &conn, &args).await?;

    say("pgopt optimize --apply");
    let (_, code) = run_on(&target, &conn, &settings).await?;
    drop(conn);
    match &detached {
        Some(d) => {
            say("done; the cluster keeps running");
            println!(
                "connection: postgresql://postgres@127.0.0.1:{port}/{database}?sslmode=disable"
            );
            println!(
                "stop it with: pgopt embedded stop --data-dir {dir} (the data stays; pgopt \
                 embedded remove --data-dir {dir} deletes it)",
                dir = d.data_dir.display()
            );
        }
        None => say("done; stopping the cluster"),
    }
    drop(cluster);
    println!(
        "demo took {:.0}s; reports in {}",
        started.elapsed().as_secs_f64(),
        args.report.display()
    );
    Ok(code)
}

/// The governance workload for `--workload-duration`, so that pg_stat_statements has the
/// statements the index advisor reads.
async fn fill(target: &db::Target, conn: &db::Conn, args: &DemoArgs) -> anyhow::Result<()> {
    let opts = BenchOptions {
        clients: args.clients,
        connections: args.clients,
        stop: StopAt::Duration(args.workload_duration),
        ..BenchOptions::default()
    };
    let workload = governance::governance_workload(conn, DEFAULT_SCHEMA, Mix::ReadHeavy).await?;
    let (probe, facts) = bench::probe(target, opts.connections).await?;
    bench::close_probe(probe).await;
    let progress: Arc<dyn Progress> = Arc::new(NoProgress);
    let result = bench::run(target, workload, &opts, &facts, None, progress).await?;
    if let Some(e) = result.error {
        anyhow::bail!("the governance workload failed: {e}");
    }
    Ok(())
}
