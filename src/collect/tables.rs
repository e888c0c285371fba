//! Tables, partitioned tables and materialized views: sizes, statistics counters, vacuum
//! history and wraparound ages.
//!
//! Size functions take a lock on the relation they measure; for relations under a granted
//! AccessExclusiveLock the SQL uses relpages × block_size instead, so a long ALTER TABLE
//! elsewhere never makes the collector wait.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Table;

const SQL: &str = include_str!("../sql/tables.sql");
const S: &str = "tables";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<Table>>> {
    let rows = conn.query("reading tables", SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(Table {
                oid: get(r, S, "oid")?,
                schema: get(r, S, "schema")?,
                name: get(r, S, "name")?,
                kind: get(r, S, "kind")?,
                heap_bytes: get(r, S, "heap_bytes")?,
                indexes_bytes: get(r, S, "indexes_bytes")?,
                toast_bytes: get(r, S, "toast_bytes")?,
                total_bytes: get(r, S, "total_bytes")?,
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
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}
