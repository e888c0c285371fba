//! The top statements of pg_stat_statements, read the cheap way.
//!
//! Reading the view with query texts loads the whole text file (tens of MB on busy
//! servers), so the statistics are read with `pg_stat_statements(false)`, the top N by total
//! and by mean time are kept, and only then are the texts of the kept queryids fetched.

use std::collections::HashMap;

use tokio_postgres::error::SqlState;

use super::{cut, get, CollectOptions, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::ident::Ident;
use crate::snapshot::{Statement, Statements};

const EXTENSION_SQL: &str = include_str!("../sql/statements_extension.sql");
const TOTALS_SQL: &str = include_str!("../sql/statements_totals.sql");
const TOP_SQL: &str = include_str!("../sql/statements_top.sql");
const TEXTS_SQL: &str = include_str!("../sql/statements_texts.sql");
const INFO_SQL: &str = include_str!("../sql/statements_info.sql");
const SET_LOCAL_SQL: &str = include_str!("../sql/set_local.sql");
const S: &str = "statements";

/// Shown in place of a text that was evicted between the two reads.
const NO_TEXT: &str = "<query text no longer tracked>";

pub(crate) async fn collect(conn: &Conn, opts: &CollectOptions) -> Result<Outcome<Statements>> {
    if opts.skip_statements {
        return Ok(Outcome::skipped(
            "--skip-statements given",
            "leave out --skip-statements to read the workload from pg_stat_statements",
        ));
    }
    let Some(ext) = conn
        .query_opt("looking for pg_stat_statements", EXTENSION_SQL, &[])
        .await?
    else {
        return Ok(Outcome::skipped(
            "pg_stat_statements is not installed in this database",
            "CREATE EXTENSION pg_stat_statements (it must also be in shared_preload_libraries)",
        ));
    };
    let version: String = get(&ext, S, "version")?;
    let schema: String = get(&ext, S, "schema")?;
    let parsed = parse_version(&version);
    if parsed < (1, 8) {
        return Ok(Outcome::skipped(
            format!("pg_stat_statements {version} is older than 1.8 (total_exec_time)"),
            "ALTER EXTENSION pg_stat_statements UPDATE",
        ));
    }
    // The functions live in the extension's schema: put it on this savepoint's search_path
    // (a value, quoted as an identifier; the section's savepoint rollback undoes it).
    let search_path = format!("{}, pg_catalog", Ident::new(&schema));
    conn.query_one(
        "setting search_path for pg_stat_statements",
        SET_LOCAL_SQL,
        &[&"search_path", &search_path],
    )
    .await?;

    let totals = match conn
        .query_one("reading pg_stat_statements totals", TOTALS_SQL, &[])
        .await
    {
        Ok(row) => row,
        Err(e) if e.sqlstate() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
            return Ok(Outcome::skipped(
                format!("pg_stat_statements is installed but not loaded: {e}"),
                "add pg_stat_statements to shared_preload_libraries and restart, or pass --skip-statements",
            ));
        }
        Err(e) => return Err(e),
    };
    let limit = i64::try_from(opts.top_statements).unwrap_or(i64::MAX);
    let rows = conn
        .query("reading the top statements", TOP_SQL, &[&limit])
        .await?;
    let mut top = rows
        .iter()
        .map(|r| {
            Ok(Statement {
                queryid: get(r, S, "queryid")?,
                user: get(r, S, "user")?,
                database: get(r, S, "database")?,
                query: String::new(),
                calls: get(r, S, "calls")?,
                total_exec_time_ms: get(r, S, "total_exec_time_ms")?,
                mean_exec_time_ms: get(r, S, "mean_exec_time_ms")?,
                stddev_exec_time_ms: get(r, S, "stddev_exec_time_ms")?,
                rows: get(r, S, "rows")?,
                shared_blks_hit: get(r, S, "shared_blks_hit")?,
                shared_blks_read: get(r, S, "shared_blks_read")?,
                temp_blks_read: get(r, S, "temp_blks_read")?,
                temp_blks_written: get(r, S, "temp_blks_written")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut ids: Vec<i64> = top.iter().map(|s| s.queryid).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut texts: HashMap<i64, String> = HashMap::new();
    if !ids.is_empty() {
        for r in conn
            .query("reading the top statements' texts", TEXTS_SQL, &[&ids])
            .await?
        {
            let id: i64 = get(&r, S, "queryid")?;
            let text: Option<String> = get(&r, S, "query")?;
            if let Some(text) = text {
                texts
                    .entry(id)
                    .or_insert_with(|| cut(&text, opts.max_query_chars));
            }
        }
    }
    for s in &mut top {
        s.query = texts
            .get(&s.queryid)
            .cloned()
            .unwrap_or_else(|| NO_TEXT.to_string());
    }

    // pg_stat_statements_info came with 1.9 (PostgreSQL 14).
    let stats_reset = if parsed >= (1, 9) && conn.server_version_num >= 140000 {
        let row = conn
            .query_one("reading pg_stat_statements_info", INFO_SQL, &[])
            .await?;
        get(&row, S, "stats_reset")?
    } else {
        None
    };

    Ok(Outcome::Collected(Statements {
        extension_version: version,
        tracked: get(&totals, S, "tracked")?,
        total_exec_time_ms: get(&totals, S, "total_exec_time_ms")?,
        top,
        stats_reset,
    }))
}

/// "1.10" -> (1, 10); anything unreadable sorts first.
fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_versions_compare_numerically() {
        assert!(parse_version("1.10") > parse_version("1.9"));
        assert!(parse_version("1.7") < (1, 8));
        assert_eq!(parse_version("1.8"), (1, 8));
    }
}
