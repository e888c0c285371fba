//! The part of the catalog the index advisor judges candidates by: the tables the workload
//! names (size, write rates, columns with their pg_stats and what they sort by), their
//! existing indexes and the session's search path.
//!
//! [`referenced_tables`] is pure (pg_query); [`collect`] reads the server in one read-only
//! transaction with bind parameters only, every statement bounded by the connection's
//! statement_timeout and a lock_timeout of its own. A table that does not exist is simply
//! absent from the [`Catalog`]: the advisor reports the statements naming it.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use super::model::{Catalog, Column, ColumnStats, Table};
use crate::collect::indexes::index_from_row;
use crate::db::Conn;
use crate::error::{Error, Result};

const STATS_WINDOW_SQL: &str = include_str!("../sql/indexes_catalog_stats_window.sql");
const TABLES_SQL: &str = include_str!("../sql/indexes_catalog_tables.sql");
const COLUMNS_SQL: &str = include_str!("../sql/indexes_catalog_columns.sql");
const INDEXES_SQL: &str = include_str!("../sql/indexes_catalog_indexes.sql");
const SET_LOCAL_SQL: &str = include_str!("../sql/set_local.sql");

/// How long a catalog read waits for a lock (an index or table being altered) before it
/// fails instead of waiting on.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The tables the statements name, as (schema when qualified, name), deduplicated and
/// sorted; CTE names are not tables. Statements that do not parse are skipped.
pub fn referenced_tables(sqls: &[&str]) -> Vec<(Option<String>, String)> {
    let mut out: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    for sql in sqls {
        let Ok(parsed) = pg_query::parse(sql) else {
            continue;
        };
        let nodes = parsed.protobuf.nodes();
        let ctes: BTreeSet<&str> = nodes
            .iter()
            .filter_map(|(n, ..)| match n {
                pg_query::NodeRef::CommonTableExpr(c) => Some(c.ctename.as_str()),
                _ => None,
            })
            .collect();
        for (n, ..) in &nodes {
            let pg_query::NodeRef::RangeVar(v) = n else {
                continue;
            };
            if v.relname.is_empty() {
                continue;
            }
            let schema = (!v.schemaname.is_empty()).then(|| v.schemaname.clone());
            if schema.is_none() && ctes.contains(v.relname.as_str()) {
                continue;
            }
            out.insert((schema, v.relname.clone()));
        }
    }
    out.into_iter().collect()
}

/// Reads the catalog for `tables` (qualified, or looked up in every schema of the session's
/// search path) in one read-only transaction.
pub async fn collect(conn: &Conn, tables: &[(Option<String>, String)]) -> Result<Catalog> {
    conn.batch(
        "starting the catalog read",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    )
    .await?;
    let result = collect_in_transaction(conn, tables).await;
    match &result {
        Ok(_) => {
            conn.batch("ending the catalog read", "COMMIT").await?;
        }
        Err(e) if !e.is_connection_lost() => {
            // Best effort: leave the connection usable for the caller.
            let _ = conn.batch("ending the catalog read", "ROLLBACK").await;
        }
        Err(_) => {}
    }
    result
}

async fn collect_in_transaction(
    conn: &Conn,
    tables: &[(Option<String>, String)],
) -> Result<Catalog> {
    // The search path as the session has it, before this transaction changes its own.
    let row = conn
        .query_one(
            "reading the statistics window and search path",
            STATS_WINDOW_SQL,
            &[],
        )
        .await?;
    let window: Option<f64> = row.get("window_seconds");
    let search_path: Vec<String> = row.get("search_path");
    let lock_timeout = format!("{}ms", LOCK_TIMEOUT.as_millis());
    for (name, value) in [
        ("lock_timeout", lock_timeout.as_str()),
        ("search_path", "pg_catalog, pg_temp"),
        ("jit", "off"),
    ] {
        conn.query_one(
            "setting up the catalog read",
            SET_LOCAL_SQL,
            &[&name, &value],
        )
        .await?;
    }
    let mut catalog = Catalog {
        search_path: search_path.iter().map(Into::into).collect(),
        ..Catalog::default()
    };
    if tables.is_empty() {
        return Ok(catalog);
    }
    let schemas: Vec<Option<&str>> = tables.iter().map(|(s, _)| s.as_deref()).collect();
    let names: Vec<&str> = tables.iter().map(|(_, n)| n.as_str()).collect();
    let rows = conn
        .query(
            "reading the workload's tables",
            TABLES_SQL,
            &[&schemas, &names, &search_path],
        )
        .await?;
    let mut oids: Vec<u32> = Vec::with_capacity(rows.len());
    let mut at: HashMap<u32, usize> = HashMap::new();
    for r in &rows {
        let oid: u32 = r.get("oid");
        at.insert(oid, catalog.tables.len());
        oids.push(oid);
        catalog.tables.push(Table {
            schema: r.get::<_, &str>("schema").into(),
            name: r.get::<_, &str>("name").into(),
            reltuples: r.get("reltuples"),
            relpages: r.get("relpages"),
            total_bytes: r.get("total_bytes"),
            n_tup_ins: r.get("n_tup_ins"),
            n_tup_upd: r.get("n_tup_upd"),
            n_tup_hot_upd: r.get("n_tup_hot_upd"),
            n_tup_del: r.get("n_tup_del"),
            stats_window_seconds: window,
            columns: Vec::new(),
        });
    }
    if oids.is_empty() {
        return Ok(catalog);
    }
    for r in conn
        .query("reading the tables' columns", COLUMNS_SQL, &[&oids])
        .await?
    {
        let oid: u32 = r.get("table_oid");
        let Some(&i) = at.get(&oid) else { continue };
        let has_stats: bool = r.get("has_stats");
        let stats = has_stats.then(|| ColumnStats {
            null_frac: r.get::<_, Option<f64>>("null_frac").unwrap_or(0.0),
            avg_width: r.get::<_, Option<i32>>("avg_width").unwrap_or(0),
            n_distinct: r.get::<_, Option<f64>>("n_distinct").unwrap_or(0.0),
            most_common_vals: r
                .get::<_, Option<Vec<Option<String>>>>("most_common_vals")
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.unwrap_or_default())
                .collect(),
            most_common_freqs: r
                .get::<_, Option<Vec<f64>>>("most_common_freqs")
                .unwrap_or_default(),
            correlation: r.get("correlation"),
            histogram_bounds: r
                .get::<_, Option<Vec<Option<String>>>>("histogram_bounds")
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
        });
        catalog.tables[i].columns.push(Column {
            name: r.get::<_, &str>("name").into(),
            attnum: r.get("attnum"),
            type_name: r.get("type_name"),
            not_null: r.get("not_null"),
            stats,
            collation: r.get("collation"),
        });
    }
    catalog.indexes = conn
        .query_each("reading the tables' indexes", INDEXES_SQL, &[&oids], |r| {
            let mut idx = index_from_row(r)?;
            idx.size_estimated = false;
            Ok(idx)
        })
        .await
        .map_err(|e| match e {
            Error::Query { code, message, .. }
                if code == Some(tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) =>
            {
                Error::Query {
                    context: "reading the tables' indexes".into(),
                    code,
                    message,
                    next_step: Some(
                        "an index of these tables is locked by a DDL statement; run again \
                         once it is done"
                            .into(),
                    ),
                }
            }
            other => other,
        })?;
    Ok(catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(schema: Option<&str>, name: &str) -> (Option<String>, String) {
        (schema.map(str::to_string), name.to_string())
    }

    #[test]
    fn referenced_tables_dedups_skips_ctes_and_unparseable_statements() {
        let got = referenced_tables(&[
            "WITH recent AS (SELECT * FROM orders WHERE created_at > now()) \
             SELECT * FROM recent r JOIN app.\"Cust.omers\" c ON c.id = r.customer_id",
            "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM items i WHERE i.order_id = o.id)",
            "UPDATE app.items SET qty = 1 WHERE id = $1",
            "SELEC broken FROM nowhere",
        ]);
        assert_eq!(
            got,
            vec![
                t(None, "items"),
                t(None, "orders"),
                t(Some("app"), "Cust.omers"),
                t(Some("app"), "items"),
            ]
        );
    }
}
