//! Measured time of the statements an index is meant to help, before and after it is built
//! (I/O): `EXPLAIN (ANALYZE)` of each read-only statement inside a READ ONLY transaction that
//! is rolled back, under a statement_timeout. A statement with `$n` parameters (from
//! pg_stat_statements) runs with representative values from pg_stats ([`super::params`]),
//! picked once by [`prepare`] so that before and after run the same statement. A statement
//! that writes, or has a parameter with no usable value, is not run: its note says why.

use std::time::Duration;

use crate::db::Conn;
use crate::error::Result;

use super::model::{Advice, Catalog, Query, QueryId, Reason, Shape, Timing};
use super::params;

/// A helped statement ready to be timed: the SQL to run (its parameters replaced by
/// representative values), or why it is not run.
#[derive(Debug, Clone, PartialEq)]
pub struct Runnable {
    pub query: QueryId,
    pub sql: std::result::Result<String, String>,
    /// The values the parameters take (`$1 = 'active'`), in parameter order.
    pub values: Vec<String>,
}

/// The statements the advice says it helps, by position in `queries`, each once.
pub fn helped(advice: &Advice, queries: &[Query]) -> Vec<QueryId> {
    let mut ids: Vec<QueryId> = advice
        .suggestions
        .iter()
        .flat_map(|s| s.helps.iter())
        .filter_map(|h| {
            queries
                .iter()
                .position(|q| q.fingerprint == h.fingerprint && q.text == h.text)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The SQL each statement of `ids` is timed with, computed once for before and after:
/// `shapes` and `catalog` are the advisor run's (by [`QueryId`]).
pub fn prepare(
    queries: &[Query],
    shapes: &[std::result::Result<Shape, Reason>],
    catalog: &Catalog,
    ids: &[QueryId],
) -> Vec<Runnable> {
    ids.iter()
        .map(|&id| {
            let q = &queries[id];
            let prepared = match (not_runnable(q), shapes.get(id)) {
                (Some(why), _) => Err(why.to_string()),
                _ if !q.has_parameters() => Ok((q.text.clone(), Vec::new())),
                (None, Some(Ok(shape))) => with_values(&q.text, shape, catalog),
                (None, _) => Err(
                    "has $n parameters and no analysis to find values for them: \
                                  not run"
                        .to_string(),
                ),
            };
            match prepared {
                Ok((sql, values)) => Runnable {
                    query: id,
                    sql: Ok(sql),
                    values,
                },
                Err(why) => Runnable {
                    query: id,
                    sql: Err(why),
                    values: Vec::new(),
                },
            }
        })
        .collect()
}

/// The statement with representative values in place of its parameters, and the values.
fn with_values(
    text: &str,
    shape: &Shape,
    catalog: &Catalog,
) -> std::result::Result<(String, Vec<String>), String> {
    let not_run = |why: String| format!("{why}: not run");
    let bindings = params::representative(text, shape, catalog).map_err(not_run)?;
    let sql = params::substitute(text, &bindings).map_err(not_run)?;
    Ok((sql, bindings.into_iter().map(|b| b.shown).collect()))
}

/// Why a statement is not run for its time, if it is not (it changes data).
pub fn not_runnable(q: &Query) -> Option<&'static str> {
    let first = q
        .text
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if first != "select" && first != "with" && first != "table" && first != "values" {
        return Some("changes data: not run");
    }
    None
}

/// Runs each statement `runs` times (the first warms the cache) and keeps the best time.
pub async fn time_statements(
    conn: &Conn,
    statements: &[Runnable],
    runs: usize,
    timeout: Duration,
) -> Result<Vec<Timing>> {
    let mut out = Vec::with_capacity(statements.len());
    for r in statements {
        let sql = match &r.sql {
            Ok(sql) => sql,
            Err(why) => {
                out.push(Timing {
                    query: r.query,
                    ms: None,
                    note: Some(why.clone()),
                    values: Vec::new(),
                });
                continue;
            }
        };
        let mut best: Option<f64> = None;
        let mut note = None;
        for _ in 0..runs.max(1) {
            match time_once(conn, sql, timeout).await? {
                Ok(ms) => best = Some(best.map_or(ms, |b: f64| b.min(ms))),
                Err(e) => {
                    note = Some(e);
                    break;
                }
            }
        }
        out.push(Timing {
            query: r.query,
            ms: best,
            note,
            values: r.values.clone(),
        });
    }
    Ok(out)
}

/// One EXPLAIN ANALYZE in a rolled-back READ ONLY transaction: Ok(Ok(ms)), or Ok(Err(why))
/// when the statement failed (the session stays usable); Err only for a broken connection.
async fn time_once(
    conn: &Conn,
    sql: &str,
    timeout: Duration,
) -> Result<std::result::Result<f64, String>> {
    conn.batch("starting a read-only transaction", "BEGIN READ ONLY")
        .await?;
    let ms = timeout.as_millis().max(1).to_string();
    let outcome = async {
        conn.execute(
            "setting the statement timeout",
            "SELECT set_config('statement_timeout', $1, true)",
            &[&ms],
        )
        .await?;
        let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}");
        conn.query_one("timing a statement", &explain, &[]).await
    }
    .await;
    let rollback = conn
        .batch("ending the read-only transaction", "ROLLBACK")
        .await;
    let row = match outcome {
        Ok(row) => row,
        Err(e) if conn.is_closed() => return Err(e),
        Err(e) => {
            rollback?;
            return Ok(Err(e.to_string()));
        }
    };
    rollback?;
    let plan: serde_json::Value = row
        .try_get(0)
        .map_err(|e| crate::error::Error::Internal(format!("reading EXPLAIN's JSON: {e}")))?;
    Ok(plan
        .get(0)
        .and_then(|p| p.get("Execution Time"))
        .and_then(|v| v.as_f64())
        .ok_or_else(|| "EXPLAIN ANALYZE gave no execution time".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::model::{Column, ColumnStats, Source, Table};
    use crate::indexes::shape;

    fn q(text: &str) -> Query {
        Query {
            fingerprint: "f".into(),
            text: text.into(),
            calls: 1,
            mean_ms: None,
            source: Source::Argument,
        }
    }

    #[test]
    fn only_reads_are_run() {
        assert_eq!(not_runnable(&q("select 1 from t where a = 2")), None);
        assert_eq!(
            not_runnable(&q("  WITH x AS (select 1) select * from x")),
            None
        );
        assert_eq!(not_runnable(&q("select * from t where a = $1")), None);
        assert!(not_runnable(&q("update t set a = 1")).is_some());
        assert!(not_runnable(&q("delete from t")).is_some());
    }

    fn catalog() -> Catalog {
        Catalog {
            tables: vec![Table {
                schema: "public".into(),
                name: "t".into(),
                columns: vec![
                    Column {
                        name: "a".into(),
                        type_name: "text".into(),
                        stats: Some(ColumnStats {
                            most_common_vals: vec!["x'y".into()],
                            most_common_freqs: vec![0.5],
                            ..ColumnStats::default()
                        }),
                        ..Column::default()
                    },
                    Column {
                        name: "b".into(),
                        type_name: "integer".into(),
                        ..Column::default()
                    },
                ],
                ..Table::default()
            }],
            search_path: vec!["public".into()],
            ..Catalog::default()
        }
    }

    #[test]
    fn parameters_get_values_once_and_writes_or_missing_stats_are_not_run() {
        let cat = catalog();
        let texts = [
            "select * from t where a = $1 and '$2' <> b::text limit $2",
            "select * from t where b = $1",
            "update t set b = 1 where a = $1",
            "select * from t where a = 'z'",
        ];
        let queries: Vec<Query> = texts.iter().map(|t| q(t)).collect();
        let shapes: Vec<_> = texts.iter().map(|t| shape::shape(t, &cat)).collect();
        let got = prepare(&queries, &shapes, &cat, &[0, 1, 2, 3]);
        assert_eq!(
            got[0].sql.as_deref(),
            Ok("select * from t where a = ('x''y'::text) and '$2' <> b::text limit (10)")
        );
        assert_eq!(got[0].values, ["$1 = 'x''y'", "$2 = 10"]);
        let why = got[1].sql.as_ref().unwrap_err();
        assert!(
            why.starts_with("$1 (t.b) has no statistics in pg_stats") && why.ends_with("not run"),
            "{why}"
        );
        assert_eq!(got[2].sql, Err("changes data: not run".to_string()));
        assert_eq!(got[3].sql.as_deref(), Ok(texts[3]));
        assert!(got[3].values.is_empty());
    }
}
