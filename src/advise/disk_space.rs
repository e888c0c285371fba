//! Free space on the disks of the data directory and of the WAL directory (pg_wal resolved
//! through its symlink, which may lead to another filesystem), when the server runs on this
//! machine. A full WAL disk stops the server (PANIC); a full data disk fails every write.
//!
//! Levels: warning below `disk_free_warning_ratio` free (15 %), critical below
//! `disk_free_critical_ratio` (5 %); the WAL disk is also critical with less free than
//! max_wal_size, the WAL one checkpoint cycle may write before anything is recycled.
//!
//! No "days left": `pgopt analyze` takes one snapshot and keeps no history, so there is no
//! observed growth rate, and none is invented. The evidence says so.

use super::{bytes, num, pct, setting_bytes, Finding, Severity, Thresholds};
use crate::snapshot::{DiskInfo, Snapshot};

pub const RULE: &str = "disk_space_low";
const DOCS: &str = "https://www.postgresql.org/docs/current/disk-full.html";
const NO_HISTORY: &str = "none: pgopt analyze keeps no history of disk use, so no growth rate \
                          and no days-left estimate";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(host) = &snap.host else {
        return Vec::new();
    };
    let max_wal = setting_bytes(snap, "max_wal_size").filter(|b| *b > 0.0);
    // (disk, what it holds, whether pg_wal is on it)
    let mut disks: Vec<(&DiskInfo, &str, bool)> = Vec::new();
    match (&host.data_disk, &host.wal_disk) {
        (Some(d), Some(w)) if d.mount_point == w.mount_point => {
            disks.push((d, "data directory and WAL directory", true))
        }
        (d, w) => {
            if let Some(d) = d {
                // pg_wal unresolved: it is most likely on the data disk, as by default.
                disks.push((d, "data directory", w.is_none()));
            }
            if let Some(w) = w {
                disks.push((w, "WAL directory", true));
            }
        }
    }
    disks
        .into_iter()
        .filter_map(|(disk, holds, has_wal)| {
            let f = finding(disk, holds, has_wal, max_wal, th)?;
            Some(f.evidence(
                "wal_directory",
                host.wal_directory.clone().unwrap_or_else(|| {
                    "not resolved (pgopt may not enter the data directory): assumed on the \
                     data disk"
                        .to_string()
                }),
            ))
        })
        .collect()
}

fn finding(
    disk: &DiskInfo,
    holds: &str,
    has_wal: bool,
    max_wal: Option<f64>,
    th: &Thresholds,
) -> Option<Finding> {
    if disk.total_bytes == 0 {
        return None;
    }
    let free = disk.available_bytes as f64 / disk.total_bytes as f64;
    let below_wal = has_wal && max_wal.is_some_and(|m| (disk.available_bytes as f64) < m);
    let severity = if free < th.disk_free_critical_ratio || below_wal {
        Severity::Critical
    } else if free < th.disk_free_warning_ratio {
        Severity::Warning
    } else {
        return None;
    };
    let mut message = format!(
        "the disk at {} holding the {holds} has {} free of {} ({}; warning below {}, \
         critical below {})",
        disk.mount_point,
        bytes(disk.available_bytes as i64),
        bytes(disk.total_bytes as i64),
        pct(free),
        pct(th.disk_free_warning_ratio),
        pct(th.disk_free_critical_ratio)
    );
    if below_wal {
        message.push_str(&format!(
            "; less than max_wal_size ({}), the WAL one checkpoint cycle may need",
            bytes(max_wal.unwrap_or(0.0) as i64)
        ));
    }
    let effect = if has_wal {
        "when it fills the server stops (PANIC on a WAL write)"
    } else {
        "when it fills every write fails"
    };
    message.push_str(&format!("; {effect}"));
    Some(
        Finding::new(
            RULE,
            severity,
            format!("disk {}", disk.mount_point),
            message,
        )
        .evidence("mount_point", disk.mount_point.as_str())
        .evidence("holds", holds)
        .evidence("total_bytes", disk.total_bytes)
        .evidence("available_bytes", disk.available_bytes)
        .evidence("free_ratio", num(free))
        .evidence("warning_ratio", num(th.disk_free_warning_ratio))
        .evidence("critical_ratio", num(th.disk_free_critical_ratio))
        .evidence(
            "max_wal_size_bytes",
            max_wal.filter(|_| has_wal).map(|b| b as i64),
        )
        .evidence("growth_history", NO_HISTORY)
        .next_step(
            "Free space or grow the filesystem before it fills. Look at what grows first: \
                 pg_wal (replication slots, failing archiving), the largest tables and indexes \
                 (bloat), temporary files and server logs. pgopt analyze has no history of disk \
                 use, so it cannot say how many days are left: compare the free space over a \
                 few days",
        )
        .docs(DOCS),
    )
}
