//! Slow statements from pg_stat_statements: the top by share of total execution time, and the
//! top by mean time (those not already reported by total time).

use std::collections::BTreeSet;

use super::{num, pct, Finding, Severity, Thresholds};
use crate::snapshot::{Snapshot, Statement};

pub const TOTAL_RULE: &str = "slow_statement_total_time";
pub const MEAN_RULE: &str = "slow_statement_mean_time";
const DOCS: &str = "https://www.postgresql.org/docs/current/pgstatstatements.html";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(st) = &snap.statements else {
        return Vec::new();
    };
    let total = st.total_exec_time_ms;
    let share = |s: &Statement| {
        if total > 0.0 {
            s.total_exec_time_ms / total
        } else {
            0.0
        }
    };
    let mut by_total: Vec<&Statement> = st
        .top
        .iter()
        .filter(|s| {
            total > 0.0
                && share(s) >= th.slow_statement_min_total_share
                && s.mean_exec_time_ms >= th.slow_statement_total_min_mean_ms
                && s.total_exec_time_ms >= th.slow_statement_total_min_ms
        })
        .collect();
    by_total.sort_by(|a, b| b.total_exec_time_ms.total_cmp(&a.total_exec_time_ms));
    by_total.truncate(th.slow_statement_limit);
    let reported: BTreeSet<i64> = by_total.iter().map(|s| s.queryid).collect();

    let mut by_mean: Vec<&Statement> = st
        .top
        .iter()
        .filter(|s| {
            !reported.contains(&s.queryid) && s.mean_exec_time_ms >= th.slow_statement_min_mean_ms
        })
        .collect();
    by_mean.sort_by(|a, b| b.mean_exec_time_ms.total_cmp(&a.mean_exec_time_ms));
    by_mean.truncate(th.slow_statement_limit);

    let mut out = Vec::new();
    for s in by_total {
        out.push(
            base(TOTAL_RULE, Severity::Warning, s, share(s), total, format!(
                "statement {} takes {} of all execution time ({:.0} ms over {}, {:.1} ms mean; threshold {})",
                s.queryid,
                pct(share(s)),
                s.total_exec_time_ms,
                super::count(s.calls, "call", "calls"),
                s.mean_exec_time_ms,
                pct(th.slow_statement_min_total_share)
            )),
        );
    }
    for s in by_mean {
        out.push(base(
            MEAN_RULE,
            Severity::Info,
            s,
            share(s),
            total,
            format!(
                "statement {} takes {:.1} ms per call on average (threshold {:.0} ms) over {}",
                s.queryid,
                s.mean_exec_time_ms,
                th.slow_statement_min_mean_ms,
                super::count(s.calls, "call", "calls")
            ),
        ));
    }
    out
}

/// The maintenance command a statement's text starts with (ANALYZE, VACUUM, CREATE INDEX, ...),
/// after leading comments: such a statement is maintenance cost, not a query to index.
pub(crate) fn maintenance_command(query: &str) -> Option<&'static str> {
    let mut rest = query.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let words: Vec<String> = rest
        .split_whitespace()
        .take(4)
        .map(|w| w.to_ascii_uppercase())
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    Some(match w(0) {
        "ANALYZE" | "ANALYSE" => "ANALYZE",
        "VACUUM" => "VACUUM",
        "REINDEX" => "REINDEX",
        "CLUSTER" => "CLUSTER",
        "CHECKPOINT" => "CHECKPOINT",
        "COPY" => "COPY",
        "REFRESH" if w(1) == "MATERIALIZED" => "REFRESH MATERIALIZED VIEW",
        "CREATE" if w(1) == "INDEX" || (w(1) == "UNIQUE" && w(2) == "INDEX") => "CREATE INDEX",
        _ => return None,
    })
}

fn base(
    rule: &str,
    severity: Severity,
    s: &Statement,
    share: f64,
    total: f64,
    message: String,
) -> Finding {
    let next_step = match maintenance_command(&s.query) {
        Some(command) => format!(
            "This is maintenance ({command}), not a query to index: its cost is the work it does. \
             Schedule it off-peak, or let autovacuum do it where it can"
        ),
        None => "EXPLAIN (ANALYZE, BUFFERS) it with typical parameters; run `pgopt indexes` for \
                 index suggestions on the tables it reads"
            .to_string(),
    };
    let message = match maintenance_command(&s.query) {
        Some(command) => format!("{message}; it is maintenance ({command})"),
        None => message,
    };
    Finding::new(rule, severity, format!("queryid {}", s.queryid), message)
        .evidence("queryid", s.queryid)
        .evidence("calls", s.calls)
        .evidence("mean_exec_time_ms", num(s.mean_exec_time_ms))
        .evidence("total_exec_time_ms", num(s.total_exec_time_ms))
        .evidence("all_statements_exec_time_ms", num(total))
        .evidence("total_time_share_ratio", num(share))
        .evidence("rows", s.rows)
        .evidence("shared_blks_read", s.shared_blks_read)
        .evidence("user", s.user.clone())
        .evidence("database", s.database.clone())
        .evidence("query", s.query.clone())
        .next_step(next_step)
        .docs(DOCS)
}

#[cfg(test)]
mod tests {
    use super::maintenance_command;

    #[test]
    fn maintenance_commands_are_told_from_queries_by_their_first_words() {
        for (query, command) in [
            ("ANALYZE t", Some("ANALYZE")),
            ("  vacuum (verbose) t", Some("VACUUM")),
            ("-- nightly\nVACUUM ANALYZE t", Some("VACUUM")),
            (
                "/* job */ create unique index concurrently i on t (a)",
                Some("CREATE INDEX"),
            ),
            ("CREATE INDEX i ON t (a)", Some("CREATE INDEX")),
            (
                "REFRESH MATERIALIZED VIEW CONCURRENTLY v",
                Some("REFRESH MATERIALIZED VIEW"),
            ),
            ("COPY t FROM STDIN", Some("COPY")),
            ("SELECT analyze_me FROM t", None),
            ("CREATE TABLE t (a int)", None),
            ("WITH x AS (SELECT 1) SELECT * FROM x", None),
        ] {
            assert_eq!(maintenance_command(query), command, "{query}");
        }
    }
}
