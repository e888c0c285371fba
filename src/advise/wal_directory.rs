//! The WAL directory well beyond what the settings let it hold. Checkpoints recycle WAL down
//! to about max_wal_size (or wal_keep_size when larger); more than a multiple of that means
//! something keeps old segments: a replication slot, failing archiving, wal_keep_size, or a
//! checkpoint that takes too long (or a burst of WAL bigger than max_wal_size). The causes
//! the snapshot can see are named.

use super::{bytes, count, num, setting_bytes, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const RULE: &str = "wal_directory_large";
const DOCS: &str = "https://www.postgresql.org/docs/current/wal-configuration.html";
/// max_wal_size when it cannot be read: the default, 1 GB.
const DEFAULT_MAX_WAL_SIZE: f64 = 1024.0 * 1024.0 * 1024.0;

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(dir) = &snap.wal_directory else {
        return Vec::new();
    };
    let max_wal = setting_bytes(snap, "max_wal_size").unwrap_or(DEFAULT_MAX_WAL_SIZE);
    let keep = setting_bytes(snap, "wal_keep_size").unwrap_or(0.0).max(0.0);
    let base = max_wal.max(keep);
    let limit = th.wal_directory_max_wal_size_ratio * base;
    if (dir.size_bytes as f64) <= limit {
        return Vec::new();
    }
    let mut causes: Vec<String> = Vec::new();
    let mut steps: Vec<&str> = Vec::new();
    if let Some(rep) = &snap.replication {
        let mut slots: Vec<_> = rep
            .slots
            .iter()
            .filter(|s| s.retained_bytes.is_some_and(|r| r as f64 > max_wal))
            .collect();
        slots.sort_by_key(|s| std::cmp::Reverse(s.retained_bytes));
        for s in &slots {
            causes.push(format!(
                "replication slot {} ({}) retains {}",
                s.name,
                if s.active { "active" } else { "inactive" },
                bytes(s.retained_bytes.unwrap_or(0))
            ));
        }
        if !slots.is_empty() {
            steps.push(
                "drop the slots named above if nobody consumes them, or bring their consumers \
                 back",
            );
        }
    }
    if let Some(a) = &snap.archiver {
        let failing = a.failed_count > 0
            && a.last_failed_time.is_some()
            && a.last_failed_time > a.last_archived_time;
        let waiting = a.ready_files.unwrap_or(0);
        if failing || waiting > 1 {
            causes.push(format!(
                "{} archiving{}",
                count(waiting, "segment waits for", "segments wait for"),
                if failing { ", which is failing" } else { "" }
            ));
            steps.push(
                "get archiving working again (the server log and pg_stat_archiver's \
                 last_failed_wal say why it fails)",
            );
        }
    }
    if keep > 0.0 && keep >= max_wal {
        causes.push(format!("wal_keep_size keeps {}", bytes(keep as i64)));
        steps.push("lower wal_keep_size if standbys can use replication slots instead");
    }
    if causes.is_empty() {
        causes.push(
            "no slot, archiving or wal_keep_size explains it: a checkpoint that takes too long \
             or is stuck, or a burst of WAL larger than max_wal_size"
                .to_string(),
        );
        steps.push(
            "turn on log_checkpoints and look for long or failing checkpoints in the server \
             log; if WAL comes in bursts, raise max_wal_size so the directory's size is planned",
        );
    }
    let ratio = dir.size_bytes as f64 / base;
    let base_name = if keep > max_wal {
        "wal_keep_size"
    } else {
        "max_wal_size"
    };
    let message = format!(
        "pg_wal holds {} in {} ({ratio:.1} × {base_name} {}, warning above {:.1} ×); {}: {}",
        bytes(dir.size_bytes),
        count(dir.file_count, "file", "files"),
        bytes(base as i64),
        th.wal_directory_max_wal_size_ratio,
        if causes.len() == 1 {
            "likely cause"
        } else {
            "likely causes"
        },
        causes.join("; ")
    );
    let mut step = steps.join("; ");
    if let Some(first) = step.get(..1) {
        step = first.to_uppercase() + &step[1..];
    }
    step.push_str(". Keep an eye on the free space of the WAL disk meanwhile: when it fills, the server stops");
    vec![Finding::new(RULE, Severity::Warning, "pg_wal", message)
        .evidence("size_bytes", dir.size_bytes)
        .evidence("file_count", dir.file_count)
        .evidence("segment_bytes", dir.segment_bytes)
        .evidence("max_wal_size_bytes", max_wal as i64)
        .evidence("wal_keep_size_bytes", keep as i64)
        .evidence("warning_above_bytes", limit as i64)
        .evidence("ratio_of_base", num(ratio))
        .evidence("likely_causes", causes)
        .next_step(step)
        .docs(DOCS)]
}
