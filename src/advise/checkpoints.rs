//! Requested checkpoints: checkpoints that came early because WAL filled max_wal_size (or a
//! CHECKPOINT command, a base backup) rather than on checkpoint_timeout. Each one writes every
//! dirty buffer and makes the next writes of each page full-page images in WAL.

use super::{bytes, num, time_value, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const RULE: &str = "checkpoints_requested";
const DOCS: &str = "https://www.postgresql.org/docs/current/wal-configuration.html";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(c) = &snap.checkpoints else {
        return Vec::new();
    };
    let total = c.timed + c.requested;
    if total <= 0
        || (c.requested as u64) < th.checkpoints_requested_min
        || (c.requested as f64) < th.checkpoints_requested_ratio * total as f64
    {
        return Vec::new();
    }
    let share = c.requested as f64 / total as f64;
    let max_wal_mb = snap.setting_f64("max_wal_size");
    let timeout_s = snap.setting_f64("checkpoint_timeout");
    let window_s = c
        .stats_reset
        .map(|r| (snap.collected_at - r).num_seconds().max(1) as f64);
    vec![Finding::new(
        RULE,
        Severity::Warning,
        "checkpoints".to_string(),
        format!(
            "{} of {total} checkpoints ({:.0} %) were requested rather than timed{}: WAL fills \
             max_wal_size{} before checkpoint_timeout{}",
            c.requested,
            share * 100.0,
            match (window_s, c.wal_bytes) {
                (Some(w), Some(b)) => format!(
                    " ({} of WAL in {:.1} h since the statistics reset)",
                    bytes(b),
                    w / 3600.0
                ),
                _ => String::new(),
            },
            max_wal_mb
                .map(|m| format!(" ({} MB)", m as i64))
                .unwrap_or_default(),
            timeout_s
                .map(|t| format!(" ({} s)", t as i64))
                .unwrap_or_default()
        ),
    )
    .evidence("checkpoints_timed", c.timed)
    .evidence("checkpoints_requested", c.requested)
    .evidence("requested_share", num(share))
    .evidence("wal_bytes", c.wal_bytes)
    .evidence("max_wal_size_mb", max_wal_mb.map(num))
    .evidence("checkpoint_timeout_s", timeout_s.map(num))
    .evidence("stats_reset", time_value(c.stats_reset))
    .next_step(
        "Raise max_wal_size so one checkpoint_timeout of WAL fits (pgopt tune computes it from \
         the WAL rate); turn on log_checkpoints to tell WAL-driven checkpoints from CHECKPOINT \
         commands and base backups",
    )
    .docs(DOCS)]
}
