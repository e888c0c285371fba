//! Planner statistics never gathered, or far behind the table's changes.
//!
//! Stale when a table with rows was never analyzed, or when n_mod_since_analyze exceeds
//! `stale_stats_factor` × the autoanalyze threshold (autovacuum_analyze_threshold +
//! autovacuum_analyze_scale_factor × reltuples, reloptions winning): autoanalyze fires at 1×,
//! so past 2× it is behind.

use super::{dead_tuples::autovacuum_param, has_own_storage, num, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::Step;
use crate::snapshot::Snapshot;

pub const RULE: &str = "stale_statistics";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    snap.tables
        .iter()
        .filter(|t| has_own_storage(&t.kind))
        .filter_map(|t| {
            let (base, _) = autovacuum_param(snap, t, "autovacuum_analyze_threshold", 50.0);
            let (scale, scale_src) =
                autovacuum_param(snap, t, "autovacuum_analyze_scale_factor", 0.1);
            let threshold = base + scale * t.reltuples.max(0.0);
            let limit = th.stale_stats_factor * threshold;
            let never = t.last_any_analyze().is_none();
            let message = if never && t.n_live_tup > 0 {
                format!(
                    "table {} has {} live rows and has never been analyzed: the planner guesses its statistics",
                    t.qualified_name(),
                    t.n_live_tup
                )
            } else if never && (t.n_mod_since_analyze as f64) > limit {
                // No analyze to count from: say so, with what the table holds now (after a
                // TRUNCATE or a purge the modified rows are gone).
                format!(
                    "table {} has never been analyzed; it has {} and {} modified since its statistics were last reset",
                    t.qualified_name(),
                    super::count(t.n_live_tup, "live row", "live rows"),
                    super::count(t.n_mod_since_analyze, "row", "rows")
                )
            } else if (t.n_mod_since_analyze as f64) > limit {
                format!(
                    "table {} has {} rows modified since its last analyze, over {:.0} ({}× its autoanalyze threshold of {:.0})",
                    t.qualified_name(),
                    t.n_mod_since_analyze,
                    limit,
                    th.stale_stats_factor,
                    threshold
                )
            } else {
                return None;
            };
            Some(
                Finding::new(RULE, Severity::Warning, t.qualified_name(), message)
                    .evidence("n_live_tup", t.n_live_tup)
                    .evidence("n_mod_since_analyze", t.n_mod_since_analyze)
                    .evidence("reltuples", num(t.reltuples))
                    .evidence("autoanalyze_threshold_tuples", num(threshold))
                    .evidence("stale_threshold_tuples", num(limit))
                    .evidence("autovacuum_analyze_scale_factor", num(scale))
                    .evidence("autovacuum_analyze_scale_factor_source", scale_src)
                    .evidence("never_analyzed", never)
                    .evidence("last_analyze", super::time_value(t.last_any_analyze()))
                    .next_step(
                        "Analyze it now; if autoanalyze keeps falling behind, lower the table's autovacuum_analyze_scale_factor or look for what blocks autovacuum",
                    )
                    .fix(Step::analyze(&QualifiedName::new(&t.schema, &t.name)))
                    .docs(DOCS),
            )
        })
        .collect()
}
