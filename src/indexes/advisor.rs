//! One advisor run against a live server: the workload's sources, the catalog, the pure
//! stages, the what-if costs and the selection, in order (I/O orchestration only; each
//! stage's logic lives in its own module).

use std::path::PathBuf;

use crate::advise::Thresholds;
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::progress::Progress;

use super::model::{Advice, CandidateSet, Catalog, Costs, Query, Reason, Shape};
use super::select::Budget;
use super::sources::StatOptions;
use super::whatif::WhatIfOptions;
use super::{candidates, catalog, select, shape, sources, whatif};

/// Where the workload comes from.
#[derive(Debug, Clone, Default)]
pub struct Workload {
    /// Read pg_stat_statements (the default when no other source is given).
    pub stat_statements: bool,
    pub stat: StatOptions,
    /// `--query SQL`.
    pub queries: Vec<String>,
    /// `--file FILE.sql`.
    pub files: Vec<PathBuf>,
    /// `--log FILE` (stderr, csvlog or jsonlog; log_min_duration_statement or auto_explain).
    pub logs: Vec<PathBuf>,
    /// The database whose log entries are read (`--log-database`; None: the one connected
    /// to). Entries that do not say their database are all read.
    pub log_database: Option<String>,
}

/// How the advice is costed and chosen.
#[derive(Debug, Clone, Default)]
pub struct AdviseOptions {
    pub whatif: WhatIfOptions,
    pub budget: Budget,
    pub thresholds: Thresholds,
}

/// Everything one run found, for the report and for `--apply`.
#[derive(Debug, Clone)]
pub struct Run {
    pub queries: Vec<Query>,
    pub catalog: Catalog,
    pub shapes: Vec<std::result::Result<Shape, Reason>>,
    pub set: CandidateSet,
    pub costs: Costs,
    pub advice: Advice,
}

/// Reads the workload from its sources, grouped by fingerprint.
pub async fn workload(conn: &Conn, w: &Workload) -> Result<Vec<Query>> {
    let mut raw = Vec::new();
    if w.stat_statements {
        raw.extend(sources::stat_statements(conn, &w.stat).await?);
    }
    raw.extend(sources::from_queries(&w.queries));
    for f in &w.files {
        raw.extend(sources::from_file(f)?);
    }
    if !w.logs.is_empty() {
        let database = w.log_database.as_deref().unwrap_or(&conn.database);
        let read = sources::from_logs(&w.logs, database)?;
        if let Some(note) = read.note(database) {
            tracing::warn!("{note}");
        }
        raw.extend(read.queries);
    }
    let queries = sources::group(raw);
    if queries.is_empty() {
        return Err(Error::BadInput(
            "no statements to advise on: pg_stat_statements has none for this database yet (let \
             the application run, or reset it with pg_stat_statements_reset() before a \
             representative period), or give them with --query SQL, --file FILE.sql or --log \
             FILE"
                .into(),
        ));
    }
    Ok(queries)
}

/// The advice for `queries` on the server behind `conn`; changes nothing on it.
pub async fn advise(
    conn: &Conn,
    queries: Vec<Query>,
    opts: &AdviseOptions,
    progress: &dyn Progress,
) -> Result<Run> {
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let tables = catalog::referenced_tables(&texts);
    let catalog = catalog::collect(conn, &tables).await?;
    let shapes: Vec<_> = queries
        .iter()
        .map(|q| shape::shape(&q.text, &catalog))
        .collect();
    let set = candidates::generate(&queries, &shapes, &catalog, &opts.thresholds);
    let costs = whatif::cost(conn, &queries, &set, &opts.whatif, progress).await?;
    let advice = select::select(
        &queries,
        &set,
        &costs,
        &catalog,
        &opts.thresholds,
        &opts.budget,
    );
    Ok(Run {
        queries,
        catalog,
        shapes,
        set,
        costs,
        advice,
    })
}
