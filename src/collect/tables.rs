//! Tables, partitioned tables and materialized views: sizes, statistics counters, vacuum
//! history and wraparound ages.
//!
//! Sizes here are estimates from pg_class (no size function: each one opens the relation on
//! the server, which at catalog scale is most of the time a snapshot takes); the exact pass
//! in [`super::sizes`] measures the relations that need it.

use super::{get, get_name, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Table;

const SQL: &str = include_str!("../sql/tables.sql");
const LOCKED_SQL: &str = include_str!("../sql/locked_relations.sql");
const S: &str = "tables";

/// The tables with sizes estimated from pg_class, and the oids of those pg_class cannot size
/// (no pages recorded, rows counted by the statistics) for the exact pass.
pub(crate) async fn collect(
    conn: &Conn,
    locked: &[u32],
) -> Result<Outcome<(Vec<Table>, Vec<u32>)>> {
    let mut unmeasured = Vec::new();
    // Typed as they arrive: the rows are never all held at once.
    let tables = conn
        .query_each("reading tables", SQL, &[&locked], |r| {
            if get::<bool>(r, S, "unmeasured")? {
                unmeasured.push(get(r, S, "oid")?);
            }
            Ok(Table {
                oid: get(r, S, "oid")?,
                schema: get_name(r, S, "schema")?,
                name: get_name(r, S, "name")?,
                kind: get_name(r, S, "kind")?,
                heap_bytes: get(r, S, "heap_bytes")?,
                // Filled in by add_index_sizes once the indexes are collected.
                indexes_bytes: 0,
                toast_bytes: get(r, S, "toast_bytes")?,
                total_bytes: get::<i64>(r, S, "heap_bytes")? + get::<i64>(r, S, "toast_bytes")?,
                reltuples: get(r, S, "reltuples")?,
                relpages: get(r, S, "relpages")?,
                seq_scan: get(r, S, "seq_scan")?,
                seq_tup_read: get(r, S, "seq_tup_read")?,
                idx_scan: get(r, S, "idx_scan")?,
                idx_tup_fetch: get(r, S, "idx_tup_fetch")?,
                n_live_tup: get(r, S, "n_live_tup")?,
                n_dead_tup: get(r, S, "n_dead_tup")?,
                n_mod_since_analyze: get(r, S, "n_mod_since_analyze")?,
                n_ins_since_vacuum: get(r, S, "n_ins_since_vacuum")?,
                last_vacuum: get(r, S, "last_vacuum")?,
                last_autovacuum: get(r, S, "last_autovacuum")?,
                last_analyze: get(r, S, "last_analyze")?,
                last_autoanalyze: get(r, S, "last_autoanalyze")?,
                frozenxid_age: get(r, S, "frozenxid_age")?,
                minmxid_age: get(r, S, "minmxid_age")?,
                reloptions: get(r, S, "reloptions")?,
                locked: get(r, S, "locked")?,
                size_estimated: true,
            })
        })
        .await?;
    Ok(Outcome::Collected((tables, unmeasured)))
}

/// Adds each table's index sizes (measured once, by the indexes section) to its total.
pub(crate) fn add_index_sizes(tables: &mut [Table], indexes: &[crate::snapshot::Index]) {
    let mut by_table: std::collections::HashMap<(&str, &str), i64> =
        std::collections::HashMap::new();
    for idx in indexes {
        *by_table
            .entry((idx.schema.as_str(), idx.table.as_str()))
            .or_default() += idx.size_bytes;
    }
    for t in tables {
        let bytes = by_table
            .get(&(t.schema.as_str(), t.name.as_str()))
            .copied()
            .unwrap_or(0);
        t.indexes_bytes = bytes;
        t.total_bytes = t.heap_bytes + t.toast_bytes + bytes;
    }
}

/// OIDs of the relations under a granted AccessExclusiveLock in this database.
pub(crate) async fn locked_relations(conn: &Conn) -> Result<Outcome<Vec<u32>>> {
    let row = conn
        .query_one("reading locked relations", LOCKED_SQL, &[])
        .await?;
    Ok(Outcome::Collected(get(&row, "locks", "relations")?))
}
