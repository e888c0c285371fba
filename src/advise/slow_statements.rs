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

fn base(
    rule: &str,
    severity: Severity,
    s: &Statement,
    share: f64,
    total: f64,
    message: String,
) -> Finding {
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
        .next_step(
            "EXPLAIN (ANALYZE, BUFFERS) it with typical parameters; run `pgopt indexes` for index suggestions on the tables it reads",
        )
        .docs(DOCS)
}
