//! Large tables read mostly by sequential scans: a sign of a missing index (or of reporting
//! queries that really want the whole table).

use super::{has_own_storage, num, pct, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const RULE: &str = "seq_scan_heavy_table";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    snap.tables
        .iter()
        .filter(|t| has_own_storage(&t.kind))
        .filter_map(|t| {
            if t.heap_bytes < th.seq_scan_min_table_bytes as i64
                || t.seq_scan <= 0
                || (t.seq_scan as u64) < th.seq_scan_min_scans
            {
                return None;
            }
            let idx_scan = t.idx_scan.unwrap_or(0).max(0);
            let share = t.seq_scan as f64 / (t.seq_scan + idx_scan) as f64;
            let rows_per_scan = t.seq_tup_read as f64 / t.seq_scan as f64;
            if share <= th.seq_scan_min_share || rows_per_scan < th.seq_scan_min_rows_per_scan {
                return None;
            }
            Some(
                Finding::new(
                    RULE,
                    Severity::Warning,
                    t.qualified_name(),
                    format!(
                        "table {} ({}) is read by sequential scans {} of the time (threshold {}), {:.0} rows per scan on average",
                        t.qualified_name(),
                        super::size(t.heap_bytes, t.size_estimated),
                        pct(share),
                        pct(th.seq_scan_min_share),
                        rows_per_scan
                    ),
                )
                .evidence("heap_bytes", t.heap_bytes)
                .evidence("size_estimated", t.size_estimated)
                .evidence("seq_scan", t.seq_scan)
                .evidence("idx_scan", t.idx_scan)
                .evidence("seq_tup_read", t.seq_tup_read)
                .evidence("seq_scan_share_ratio", num(share))
                .evidence("rows_per_seq_scan", num(rows_per_scan))
                .evidence("threshold_share_ratio", num(th.seq_scan_min_share))
                .next_step(format!(
                    "Run `pgopt indexes` for index suggestions and look at the slow statements `pgopt analyze` lists that read {}; EXPLAIN them to see which filter lacks an index",
                    t.qualified_name()
                ))
                .docs(DOCS),
            )
        })
        .collect()
}
