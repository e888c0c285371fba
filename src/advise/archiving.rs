//! WAL archiving that fails or falls behind. With archive_mode on, a segment is removed only
//! after it was archived: while archive_command (or archive_library) fails, segments pile up
//! in pg_wal until its disk is full and the server stops. archive_mode off: silent. A standby
//! archives only with archive_mode = always.

use crate::plan::{Lock, Step};
use chrono::{DateTime, Utc};

use super::{count, duration, num, time_value, Finding, Severity, Thresholds};
use crate::snapshot::{Archiver, Snapshot};

pub const FAILING_RULE: &str = "archiving_failing";
pub const BEHIND_RULE: &str = "archiving_behind";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/continuous-archiving.html#BACKUP-ARCHIVING-WAL";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(a) = &snap.archiver else {
        return Vec::new();
    };
    let mode = snap
        .setting("archive_mode")
        .map(|s| s.setting.as_str())
        .unwrap_or("off");
    let in_recovery = snap.server.as_ref().is_some_and(|s| s.in_recovery);
    if mode == "off" || (in_recovery && mode != "always") {
        return Vec::new();
    }
    // None: the role may not read it; Some(""): not set.
    let command = snap.setting("archive_command").map(|s| s.setting.trim());
    let library = snap.setting("archive_library").map(|s| s.setting.trim());
    let unconfigured = command == Some("") && library.is_none_or(|l| l.is_empty());
    let failing = a.failed_count > 0
        && a.last_failed_time.is_some()
        && a.last_failed_time > a.last_archived_time;
    let ready = a.ready_files;
    // How long nothing was archived: since the last success, else since the oldest waiting
    // segment.
    let stalled_since = a.last_archived_time.or(a.oldest_ready_time);
    let stalled_s = stalled_since.map(|t| (snap.collected_at - t).num_seconds().max(0) as f64);

    if failing || unconfigured {
        let critical = ready.is_some_and(|r| r as f64 >= th.archive_ready_critical_files as f64)
            || stalled_s.is_some_and(|s| s >= th.archive_failing_critical_seconds);
        let severity = if critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let what = if unconfigured && !failing {
            "archive_mode is on but neither archive_command nor archive_library is set: no \
             segment can be archived"
                .to_string()
        } else {
            format!(
                "WAL archiving is failing: {} since {}, the last one {} ({}){}",
                count(a.failed_count, "failure", "failures"),
                reset_text(a.stats_reset),
                ago_text(snap.collected_at, a.last_failed_time),
                a.last_failed_wal.as_deref().unwrap_or("unknown segment"),
                match a.last_archived_time {
                    Some(t) => format!(
                        "; the last success {}",
                        ago_text(snap.collected_at, Some(t))
                    ),
                    None => "; no segment was archived since then".to_string(),
                }
            )
        };
        let message = format!(
            "{what}; {}, kept in pg_wal until archived: pg_wal grows until its disk is full \
             and the server stops",
            waiting_text(ready)
        );
        let step = if unconfigured && !failing {
            "Set archive_command (or archive_library) to what copies WAL to your archive, then \
             reload; if nothing should be archived, set archive_mode = off (needs a restart)"
        } else {
            "Read the server log for archive_command's error (a full or unreachable archive, \
             permissions, a changed path), fix it and watch pg_stat_archiver's archived_count \
             rise; do not delete files from pg_wal by hand"
        };
        let mut f = Finding::new(FAILING_RULE, severity, "archiver", message).next_step(step);
        if unconfigured {
            f = f.fixes(vec![
                Step::sql(
                    "ALTER SYSTEM SET archive_command = '...'",
                    Lock::None,
                    false,
                )
                .with_note("what copies %p to your archive"),
                Step::call("SELECT pg_reload_conf()"),
            ]);
        }
        return vec![evidence(f, a, mode, command, stalled_s, th).docs(DOCS)];
    }
    if ready.is_some_and(|r| r as f64 >= th.archive_ready_warning_files as f64) {
        let message = format!(
            "WAL archiving is falling behind: {} (warning from {}), with no failure since the \
             last success{}",
            waiting_text(ready),
            th.archive_ready_warning_files,
            a.oldest_ready_time
                .map(|t| format!(
                    "; the oldest waits for {}",
                    duration((snap.collected_at - t).num_seconds().max(0) as f64)
                ))
                .unwrap_or_default()
        );
        let f = Finding::new(BEHIND_RULE, Severity::Warning, "archiver", message).next_step(
            "Make archiving faster than WAL comes in: a quicker archive_command (no fsync of \
             the whole target, compression off the critical path) or an archive library that \
             archives in parallel; check the archive's disk and network",
        );
        return vec![evidence(f, a, mode, command, stalled_s, th).docs(DOCS)];
    }
    Vec::new()
}

fn evidence(
    f: Finding,
    a: &Archiver,
    mode: &str,
    command: Option<&str>,
    stalled_s: Option<f64>,
    th: &Thresholds,
) -> Finding {
    f.evidence("archive_mode", mode)
        // Whether it is set, never its text: it may carry credentials for the archive.
        .evidence("archive_command_set", command.map(|c| !c.is_empty()))
        .evidence("archived_count", a.archived_count)
        .evidence("failed_count", a.failed_count)
        .evidence("last_archived_wal", a.last_archived_wal.as_deref())
        .evidence("last_archived_time", time_value(a.last_archived_time))
        .evidence("last_failed_wal", a.last_failed_wal.as_deref())
        .evidence("last_failed_time", time_value(a.last_failed_time))
        .evidence("stats_reset", time_value(a.stats_reset))
        .evidence("ready_files", a.ready_files)
        .evidence("oldest_ready_time", time_value(a.oldest_ready_time))
        .evidence("without_archiving_seconds", stalled_s.map(num))
        .evidence("critical_ready_files", th.archive_ready_critical_files)
        .evidence(
            "critical_without_archiving_seconds",
            num(th.archive_failing_critical_seconds),
        )
}

fn waiting_text(ready: Option<i64>) -> String {
    match ready {
        Some(r) => count(r, "segment waits", "segments wait"),
        None => "segments wait (how many is unknown: pg_ls_archive_statusdir needs pg_monitor)"
            .to_string(),
    }
}

fn ago_text(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!("{} ago", duration((now - t).num_seconds().max(0) as f64)),
        None => "at an unknown time".to_string(),
    }
}

fn reset_text(reset: Option<DateTime<Utc>>) -> String {
    match reset {
        Some(t) => format!("the statistics reset ({})", t.format("%Y-%m-%d %H:%M UTC")),
        None => "the server started".to_string(),
    }
}
