//! `pgopt governance`: deploy, seed, index and drop the ACGS governance database.

use clap::{Args, Subcommand};
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::CellAlignment;

use super::{TargetArgs, EXIT_OK};
use crate::governance::{self, indexes::IndexStatus, IndexOptions, DEFAULT_SCHEMA};
use crate::ident::Ident;

#[derive(Debug, Args)]
pub struct GovernanceArgs {
    #[command(subcommand)]
    command: GovernanceCommand,
}

#[derive(Debug, Subcommand)]
enum GovernanceCommand {
    /// Create the schema and its seven tables (primary and foreign keys only); safe to rerun.
    Deploy(SchemaArgs),
    /// Fill the empty tables with deterministic, realistic data (binary COPY), then ANALYZE.
    Seed(SeedArgs),
    /// Build the five indexes ACGS named, with CREATE INDEX CONCURRENTLY.
    Indexes(IndexesArgs),
    /// Drop the schema and everything in it (prints what it would drop unless --yes).
    Drop(DropArgs),
}

#[derive(Debug, Args)]
struct SchemaArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The schema that holds the governance tables.
    #[arg(long, default_value = DEFAULT_SCHEMA)]
    schema: String,
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[command(flatten)]
    common: SchemaArgs,
    /// 1 is about 3.6 million rows (10k users, 1M security events, 2M audit rows, ...);
    /// fractions are fine (0.01).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    scale: f64,
    /// The same seed and scale give the same rows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Args)]
struct IndexesArgs {
    #[command(flatten)]
    common: SchemaArgs,
    /// Seconds a build may wait for its table lock before it gives up (it is retried once).
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    lock_timeout: u64,
}

#[derive(Debug, Args)]
struct DropArgs {
    #[command(flatten)]
    common: SchemaArgs,
    /// Really drop; without it, only print what would be dropped.
    #[arg(long)]
    yes: bool,
}

pub async fn run(args: GovernanceArgs) -> anyhow::Result<u8> {
    match args.command {
        GovernanceCommand::Deploy(a) => {
            let (_, conn) = a.target.connect().await?;
            governance::deploy(&conn, &a.schema).await?;
            println!(
                "schema {} deployed: {} tables with primary and foreign keys, no secondary index",
                Ident::new(&a.schema),
                governance::TABLES.len()
            );
        }
        GovernanceCommand::Seed(a) => {
            // A bad scale is refused before connecting.
            governance::seed::RowCounts::for_scale(a.scale)?;
            let (_, conn) = a.common.target.connect().await?;
            let bars;
            let progress: &dyn crate::progress::Progress = if a.no_progress {
                &crate::progress::NoProgress
            } else {
                bars = super::progress::Bars::stderr();
                &bars
            };
            let report =
                governance::seed(&conn, &a.common.schema, a.scale, a.seed, progress).await?;
            let mut t = crate::report::term::table();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_header(vec!["table", "rows"]);
            for (name, rows) in &report.tables {
                t.add_row(vec![name.clone(), rows.to_string()]);
            }
            t.add_row(vec!["total".to_string(), report.total_rows().to_string()]);
            if let Some(c) = t.column_mut(1) {
                c.set_cell_alignment(CellAlignment::Right);
            }
            crate::report::term::keep_words(&mut t);
            println!("{t}");
            println!(
                "scale {} seed {}: {:.1}s, {:.0} rows/s (COPY alone {:.1}s, {:.0} rows/s)",
                report.scale,
                report.seed,
                report.elapsed.as_secs_f64(),
                report.rows_per_second(),
                report.load_elapsed.as_secs_f64(),
                report.load_rows_per_second()
            );
        }
        GovernanceCommand::Indexes(a) => {
            if a.lock_timeout == 0 {
                return Err(crate::Error::BadInput(
                    "--lock-timeout must be at least 1 second".into(),
                )
                .into());
            }
            let (target, conn) = a.common.target.connect().await?;
            let (interrupt, watcher) = super::interrupt_on_ctrl_c();
            let opts = IndexOptions {
                lock_timeout: std::time::Duration::from_secs(a.lock_timeout),
                interrupt: Some(interrupt),
                progress: Some(std::sync::Arc::new(super::progress::Bars::stderr())),
                reconnect: Some(std::sync::Arc::new(target)),
                ..IndexOptions::default()
            };
            let outcomes = governance::create_indexes(&conn, &a.common.schema, &opts).await;
            watcher.abort();
            let outcomes = outcomes?;
            let interrupted = outcomes
                .iter()
                .any(|o| o.status == IndexStatus::Interrupted);
            let mut t = crate::report::term::table();
            t.load_preset(UTF8_FULL_CONDENSED)
                .set_header(vec!["index", "table", "status", "seconds"]);
            for o in outcomes {
                let status = match o.status {
                    IndexStatus::Created => "created",
                    IndexStatus::AlreadyValid => "already valid",
                    IndexStatus::Rebuilt => "invalid leftover rebuilt",
                    IndexStatus::Interrupted => "interrupted, nothing left",
                };
                t.add_row(vec![
                    o.name.to_string(),
                    o.table.to_string(),
                    status.to_string(),
                    format!("{:.2}", o.elapsed.as_secs_f64()),
                ]);
            }
            crate::report::term::keep_words(&mut t);
            println!("{t}");
            if interrupted {
                eprintln!("interrupted: run `pgopt governance indexes` again to build the rest");
                return Ok(super::EXIT_INTERRUPTED);
            }
        }
        GovernanceCommand::Drop(a) => {
            let (_, conn) = a.common.target.connect().await?;
            let schema = Ident::new(&a.common.schema);
            if !a.yes {
                let tables = governance::describe(&conn, &a.common.schema).await?;
                println!(
                    "would drop schema {schema} CASCADE with {} tables:",
                    tables.len()
                );
                for t in &tables {
                    println!(
                        "  {} (~{} rows, {} bytes)",
                        t.name,
                        t.estimated_rows.max(0.0) as u64,
                        t.total_bytes
                    );
                }
                println!("nothing dropped; pass --yes to drop it");
                return Ok(EXIT_OK);
            }
            let dropped = governance::drop_schema(&conn, &a.common.schema).await?;
            println!(
                "dropped schema {schema} with {} tables: {}",
                dropped.len(),
                dropped
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(EXIT_OK)
}
