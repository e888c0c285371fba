//! Cache hit ratio of the connected database (pg_stat_database blks_hit / blks_hit + blks_read).
//!
//! The counters are cumulative since the last stats reset, so the ratio is judged only after
//! enough blocks to mean something.

use super::{num, pct_beside, time_value, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const RULE: &str = "cache_hit_ratio";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(db) = snap.current_database() else {
        return Vec::new();
    };
    let Some(ratio) = db.cache_hit_ratio() else {
        return Vec::new();
    };
    let blocks = db.blks_hit.saturating_add(db.blks_read);
    if blocks < th.cache_hit_min_blocks as i64 {
        return Vec::new();
    }
    let (severity, limit) = if ratio < th.cache_hit_ratio_critical {
        (Severity::Critical, th.cache_hit_ratio_critical)
    } else if ratio < th.cache_hit_ratio_warning {
        (Severity::Warning, th.cache_hit_ratio_warning)
    } else {
        return Vec::new();
    };
    let (shown, shown_limit) = pct_beside(ratio, limit);
    vec![Finding::new(
        RULE,
        severity,
        format!("database {}", db.name),
        format!(
            "cache hit ratio of database {} is {} (below {}): {} of {} blocks came from outside shared_buffers",
            db.name,
            shown,
            shown_limit,
            db.blks_read,
            blocks
        ),
    )
    .evidence("ratio", num(ratio))
    .evidence("threshold_ratio", num(limit))
    .evidence("blks_hit", db.blks_hit)
    .evidence("blks_read", db.blks_read)
    .evidence("stats_reset", time_value(db.stats_reset))
    .next_step(
        "Check whether shared_buffers fits the working set (`pgopt tune`) and which statements read the most blocks (shared_blks_read in pg_stat_statements); large sequential scans also lower the ratio",
    )
    .docs(DOCS)]
}
