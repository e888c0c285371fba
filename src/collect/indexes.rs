//! Indexes from the catalog (pg_index, pg_class, pg_am, pg_stat_user_indexes).
//!
//! Key columns, opclasses and collations come from the catalog arrays, not from parsing
//! pg_get_indexdef text: the duplicate and redundant-index rules compare them directly.

use super::{get, get_name, get_names, get_opt_name, get_small, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Index;
use tokio_postgres::Row;

const SQL: &str = include_str!("../sql/indexes.sql");
const S: &str = "indexes";

pub(crate) async fn collect(conn: &Conn, locked: &[u32]) -> Result<Outcome<Vec<Index>>> {
    // Typed as they arrive: the rows are never all held at once.
    conn.query_each("reading indexes", SQL, &[&locked], index_from_row)
        .await
        .map(Outcome::Collected)
}

/// One row of indexes.sql (or of a query with the same columns) as an [`Index`]; the size is
/// marked estimated, as indexes.sql's is.
pub(crate) fn index_from_row(r: &Row) -> Result<Index> {
    Ok(Index {
        oid: get(r, S, "oid")?,
        schema: get_name(r, S, "schema")?,
        table: get_name(r, S, "table")?,
        name: get_name(r, S, "name")?,
        definition: get_name(r, S, "definition")?,
        access_method: get_name(r, S, "access_method")?,
        key_columns: get_names(r, S, "key_columns")?,
        key_attnums: get_small(r, S, "key_attnums")?,
        include_columns: get_names(r, S, "include_columns")?,
        opclasses: get_names(r, S, "opclasses")?,
        collations: get_small(r, S, "collations")?,
        expressions: get(r, S, "expressions")?,
        predicate: get(r, S, "predicate")?,
        size_bytes: get(r, S, "size_bytes")?,
        idx_scan: get(r, S, "idx_scan")?,
        idx_tup_read: get(r, S, "idx_tup_read")?,
        idx_tup_fetch: get(r, S, "idx_tup_fetch")?,
        is_valid: get(r, S, "is_valid")?,
        is_ready: get(r, S, "is_ready")?,
        is_live: get(r, S, "is_live")?,
        is_unique: get(r, S, "is_unique")?,
        is_primary: get(r, S, "is_primary")?,
        is_exclusion: get(r, S, "is_exclusion")?,
        is_replica_identity: get(r, S, "is_replica_identity")?,
        constraint_name: get_opt_name(r, S, "constraint_name")?,
        locked: get(r, S, "locked")?,
        size_estimated: true,
    })
}
