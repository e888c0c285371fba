//! Indexes never scanned since the statistics were reset.
//!
//! Unique, primary-key, exclusion and replica-identity indexes do work without being scanned
//! and are never reported; neither is an index that is the only one covering a foreign key
//! (dropping it would trade this finding for fk_missing_index). The counters are per server:
//! an index unused here may serve queries on a replica, so stats_reset goes in the evidence.
//!
//! "Never scanned" means something only over a long enough window: until the statistics have
//! counted for `unused_index_min_stats_seconds` (since the database's stats_reset, or the
//! server start when never reset), the rule gives one info finding saying how long they have
//! run, and no advice to drop. An index that is one side of a duplicate or redundant pair is
//! that rule's business ([`duplicate_indexes::pairs`]), except a wide index nobody scans whose
//! prefix is in use: that one is reported here, and the prefix kept.

use crate::plan::Step;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    bytes, count, duplicate_indexes, duration, fk_indexes, time_value, Finding, Severity,
    Thresholds,
};
use crate::snapshot::{ForeignKey, Index, Snapshot};

pub const RULE: &str = "unused_index";
pub const WINDOW_RULE: &str = "unused_index_window_short";
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

/// When the statistics the scan counters come from started, and what started them.
pub(crate) fn stats_window(snap: &Snapshot) -> Option<(DateTime<Utc>, &'static str)> {
    match snap.current_database().and_then(|d| d.stats_reset) {
        Some(t) => Some((t, "the statistics reset")),
        None => snap
            .server
            .as_ref()
            .map(|s| (s.started_at, "the server start")),
    }
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
    let pairs = duplicate_indexes::pairs(snap);
    // Wide indexes nobody scans whose prefix is in use: reported here, naming the prefix.
    let dead_wide: HashMap<*const Index, &Index> = pairs
        .iter()
        .filter(|p| p.drop_covering())
        .map(|p| (p.covering as *const Index, p.covered))
        .collect();
    let in_a_pair = |idx: &Index| {
        pairs
            .iter()
            .any(|p| std::ptr::eq(p.covered, idx) || std::ptr::eq(p.covering, idx))
            || duplicate_indexes::is_covered(idx, by_table.get(&idx.schema, &idx.table))
    };
    let candidates: Vec<&Index> = snap
        .indexes
        .iter()
        .filter(|idx| {
            idx.idx_scan == 0
                && idx.is_valid
                && !is_protected(idx)
                && idx.constraint_name.is_none()
                && idx.size_bytes >= th.unused_index_min_bytes as i64
                && (dead_wide.contains_key(&(*idx as *const Index)) || !in_a_pair(idx))
                && !fks_by_table
                    .get(&(idx.schema.as_str(), idx.table.as_str()))
                    .is_some_and(|fks| {
                        let same_table = by_table.get(&idx.schema, &idx.table);
                        sole_fk_cover(idx, same_table, fks)
                    })
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let window = stats_window(snap);
    let window_seconds = window.map(|(t, _)| (snap.collected_at - t).num_seconds() as f64);
    if !window_seconds.is_some_and(|s| s >= th.unused_index_min_stats_seconds) {
        return vec![window_too_short(
            snap,
            th,
            window,
            window_seconds,
            &candidates,
        )];
    }
    let (start, started_by) = window.expect("window known past the check above");
    let since = format!("since {started_by} at {}", start.to_rfc3339());
    candidates
        .into_iter()
        .map(|idx| {
            let prefix = dead_wide.get(&(idx as *const Index)).copied();
            let mut f = Finding::new(
                RULE,
                Severity::Warning,
                idx.qualified_name(),
                format!(
                    "index {} on {} ({}) has not been scanned {since}, {} (reported from {})",
                    idx.qualified_name(),
                    idx.table_qualified_name(),
                    super::size(idx.size_bytes, idx.size_estimated),
                    duration(window_seconds.unwrap_or_default()),
                    bytes(th.unused_index_min_bytes as i64)
                ),
            )
            .evidence("size_bytes", idx.size_bytes)
            .evidence("size_estimated", idx.size_estimated)
            .evidence("idx_scan", idx.idx_scan)
            .evidence("threshold_size_bytes", th.unused_index_min_bytes)
            .evidence("table", idx.table_qualified_name())
            .evidence("definition", idx.definition.as_str())
            .evidence("stats_reset", time_value(stats_reset))
            .evidence("stats_window_seconds", super::num(window_seconds.unwrap_or_default()))
            .fix(Step::drop_index(&idx.schema, &idx.name))
            .docs(DOCS);
            f = match prefix {
                Some(p) => f
                    .evidence("kept_prefix", p.qualified_name())
                    .evidence("kept_prefix_idx_scan", p.idx_scan)
                    .next_step(format!(
                        "Keep {} (a left prefix of this index, scanned {}): queries use it, not this one. Check that replicas do not use this index either (the counters are per server), then drop this one, not the prefix",
                        p.qualified_name(),
                        super::count(p.idx_scan, "time", "times")
                    )),
                None => f.next_step(
                    "Check that replicas do not use it either (the counters are per server) and that the statistics have covered a full business cycle, then drop it",
                ),
            };
            f
        })
        .collect()
}

/// The info finding given instead of unused-index advice while the window is too short.
fn window_too_short(
    snap: &Snapshot,
    th: &Thresholds,
    window: Option<(DateTime<Utc>, &'static str)>,
    window_seconds: Option<f64>,
    candidates: &[&Index],
) -> Finding {
    let needed = duration(th.unused_index_min_stats_seconds);
    let n = candidates.len();
    let counted = match (window, window_seconds) {
        (Some((start, by)), Some(secs)) => format!(
            "the statistics have run for only {} (since {by} at {})",
            duration(secs.max(0.0)),
            start.to_rfc3339()
        ),
        _ => "when the statistics started is unknown (no stats_reset and no server start time in the snapshot)".to_string(),
    };
    Finding::new(
        WINDOW_RULE,
        Severity::Info,
        format!("database {}", snap.target.database),
        format!(
            "{} not been scanned yet, but {counted}; unused-index advice waits until they cover {needed}",
            count(n, "index has", "indexes have"),
        ),
    )
    .evidence("unscanned_indexes", candidates.iter().map(|i| i.qualified_name()).collect::<Vec<_>>())
    .evidence("stats_window_seconds", window_seconds.map(super::num).unwrap_or(serde_json::Value::Null))
    .evidence("stats_window_start", time_value(window.map(|w| w.0)))
    .evidence("threshold_stats_seconds", super::num(th.unused_index_min_stats_seconds))
    .next_step(format!(
        "Nothing to drop yet: run pgopt again once the statistics cover {needed} (do not reset them in between)"
    ))
    .docs(DOCS)
}
