//! Measured time of the statements an index is meant to help, before and after it is built
//! (I/O): `EXPLAIN (ANALYZE)` of each read-only statement inside a READ ONLY transaction that
//! is rolled back, under a statement_timeout. A statement that writes, or has `$n`
//! parameters pgopt has no values for, is not run: its note says why.

use std::time::Duration;

use crate::db::Conn;
use crate::error::Result;

use super::model::{Advice, Query, QueryId, Timing};

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

/// Why a statement is not run for its time, if it is not.
pub fn not_runnable(q: &Query) -> Option<&'static str> {
    if q.has_parameters() {
        return Some("has $n parameters and pgopt has no values for them: not run");
    }
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
    queries: &[Query],
    ids: &[QueryId],
    runs: usize,
    timeout: Duration,
) -> Result<Vec<Timing>> {
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let q = &queries[id];
        if let Some(why) = not_runnable(q) {
            out.push(Timing {
                query: id,
                ms: None,
                note: Some(why.to_string()),
            });
            continue;
        }
        let mut best: Option<f64> = None;
        let mut note = None;
        for _ in 0..runs.max(1) {
            match time_once(conn, &q.text, timeout).await? {
                Ok(ms) => best = Some(best.map_or(ms, |b: f64| b.min(ms))),
                Err(e) => {
                    note = Some(e);
                    break;
                }
            }
        }
        out.push(Timing {
            query: id,
            ms: best,
            note,
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
    use crate::indexes::model::Source;

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
    fn only_reads_without_parameters_are_run() {
        assert_eq!(not_runnable(&q("select 1 from t where a = 2")), None);
        assert_eq!(
            not_runnable(&q("  WITH x AS (select 1) select * from x")),
            None
        );
        assert!(not_runnable(&q("select * from t where a = $1")).is_some());
        assert!(not_runnable(&q("update t set a = 1")).is_some());
        assert!(not_runnable(&q("delete from t")).is_some());
    }
}
