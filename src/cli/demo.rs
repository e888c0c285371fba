//! `pgopt demo`: the whole job on a throw-away cluster, in seconds.

use std::time::Instant;

use clap::Args;

use super::exit_code;
use super::progress::collect_with_progress;
use crate::advise::{self, Thresholds};
use crate::collect::CollectOptions;
use crate::db;
use crate::embedded::{Cluster, ClusterOptions, Detached};
use crate::report::{self, Format};
use crate::tune;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Leave the cluster running afterwards (in a data directory of its own) and print its
    /// connection string; `pgopt embedded stop --data-dir DIR` stops it and keeps its data,
    /// `pgopt embedded remove --data-dir DIR` stops it and deletes the directory.
    #[arg(long)]
    pub keep: bool,
    /// Output format of the analysis.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `verbose`: the table form shows each finding's evidence, next step and SQL.
pub async fn run(args: DemoArgs, verbose: bool) -> anyhow::Result<u8> {
    let started = Instant::now();
    let progress = |msg: &str| eprintln!("[{:>5.1}s] {msg}", started.elapsed().as_secs_f64());

    progress("starting a throw-away PostgreSQL cluster");
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
    let dsn = |db: &str| format!("postgresql://postgres@127.0.0.1:{port}/{db}?sslmode=disable");

    let admin = db::connect(&crate::embedded::local_target(port, "postgres")?).await?;
    admin
        .batch(
            "creating the demo database",
            &format!(
                "CREATE DATABASE {}",
                crate::ident::Ident::new(crate::demo::DATABASE)
            ),
        )
        .await?;
    drop(admin);

    progress("loading a sample governance database and planting problems");
    let conn = db::connect(&crate::embedded::local_target(port, crate::demo::DATABASE)?).await?;
    crate::demo::prepare(&conn).await?;

    progress("collecting a snapshot and analyzing it");
    let snap = collect_with_progress(&conn, &CollectOptions::default()).await?;
    let findings = advise::advise(&snap, &Thresholds::default());
    let text = report::TextOptions {
        verbose,
        ..report::TextOptions::detect()
    };
    println!(
        "{}",
        report::render_with(&snap, &findings, args.format, &text)
    );
    if args.format != Format::Json {
        progress("advising settings from the same snapshot (pgopt tune, dry run)");
        let (input, detected) = tune::advice::inputs(&snap, tune::RawInput::default())?;
        let advice = tune::advise(&snap, &input, &Thresholds::default());
        let settings = report::tune::settings(&advice, &detected.storage_source(), args.format);
        println!("{settings}");
        print!(
            "{}",
            report::term::wrap(
                "nothing was changed; apply with: pgopt tune TARGET --apply (a journal undoes \
                 it: pgopt tune --rollback JOURNAL)",
                text.width,
                ""
            )
        );
    }

    match (&cluster, &detached) {
        (_, Some(d)) => {
            progress("done; the cluster keeps running");
            println!("connection: {}", dsn(crate::demo::DATABASE));
            print!(
                "{}",
                report::term::wrap(
                    &format!(
                        "stop it with: pgopt embedded stop --data-dir {dir} (the data stays; \
                         pgopt embedded remove --data-dir {dir} deletes it)",
                        dir = d.data_dir.display()
                    ),
                    text.width,
                    ""
                )
            );
        }
        _ => progress("done; stopping the cluster"),
    }
    drop(conn);
    drop(cluster);
    Ok(exit_code(&findings, None))
}
