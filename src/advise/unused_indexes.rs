//! Indexes never scanned since the statistics were reset.
//!
//! Unique, primary-key, exclusion and replica-identity indexes do work without being scanned
//! and are never reported; neither is an index that is the only one covering a foreign key
//! (dropping it would trade this finding for fk_missing_index). The counters are per server:
//! an index unused here may serve queries on a replica, so stats_reset goes in the evidence.

use std::collections::HashMap;

use super::{bytes, fk_indexes, time_value, Finding, Severity, Thresholds};
use crate::db::QualifiedName;
use crate::snapshot::{ForeignKey, Index, Snapshot};

pub const RULE: &str = "unused_index";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-INDEXES-VIEW";

/// Indexes that enforce something: never suggest dropping them.
pub(crate) fn is_protected(idx: &Index) -> bool {
    idx.is_unique || idx.is_primary || idx.is_exclusion || idx.is_replica_identity
}

/// Whether `idx` is the only index covering some foreign key (`same_table`: the indexes of
/// its table, `fks`: the foreign keys of its table).
fn sole_fk_cover(idx: &Index, same_table: &[&Index], fks: &[&ForeignKey]) -> bool {
    fks.iter().any(|fk| {
        fk_indexes::covers(idx, fk)
            && !same_table
                .iter()
                .any(|other| !std::ptr::eq(*other, idx) && fk_indexes::covers(other, fk))
    })
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let stats_reset = snap.current_database().and_then(|d| d.stats_reset);
    let by_table = super::indexes_by_table(snap);
    let mut fks_by_table: HashMap<(&str, &str), Vec<&ForeignKey>> = HashMap::new();
    for fk in &snap.foreign_keys {
        fks_by_table
            .entry((fk.schema.as_str(), fk.table.as_str()))
            .or_default()
            .push(fk);
    }
    snap.indexes
        .iter()
        .filter(|idx| {
            idx.idx_scan == 0
                && idx.is_valid
                && !is_protected(idx)
                && idx.constraint_name.is_none()
                && idx.size_bytes >= th.unused_index_min_bytes as i64
                && !fks_by_table
                    .get(&(idx.schema.as_str(), idx.table.as_str()))
                    .is_some_and(|fks| {
                        let same_table = &by_table[&(idx.schema.as_str(), idx.table.as_str())];
                        sole_fk_cover(idx, same_table, fks)
                    })
        })
        .map(|idx| {
            let since = match stats_reset {
                Some(t) => format!("since the statistics reset at {}", t.to_rfc3339()),
                None => "since statistics collection began".to_string(),
            };
            Finding::new(
                RULE,
                Severity::Warning,
                idx.qualified_name(),
                format!(
                    "index {} on {} ({}) has not been scanned {since} (reported from {})",
                    idx.qualified_name(),
                    idx.table_qualified_name(),
                    bytes(idx.size_bytes),
                    bytes(th.unused_index_min_bytes as i64)
                ),
            )
            .evidence("size_bytes", idx.size_bytes)
            .evidence("idx_scan", idx.idx_scan)
            .evidence("threshold_size_bytes", th.unused_index_min_bytes)
            .evidence("table", idx.table_qualified_name())
            .evidence("definition", idx.definition.clone())
            .evidence("stats_reset", time_value(stats_reset))
            .next_step(
                "Check that replicas do not use it either (the counters are per server) and that the statistics have covered a full business cycle, then drop it",
            )
            .sql(format!(
                "DROP INDEX CONCURRENTLY {};",
                QualifiedName::new(&idx.schema, &idx.name)
            ))
            .docs(DOCS)
        })
        .collect()
}
