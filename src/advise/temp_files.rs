//! Temporary-file spills: sorts and hashes that did not fit in work_mem.
//!
//! For the connected database from pg_stat_database (temp_bytes since the stats reset), and
//! for the top statements of pg_stat_statements that wrote temporary blocks.
//!
//! The two figures count different things and are not comparable: pg_stat_database's
//! temp_bytes adds each temporary file's size once, when the file is removed, since the
//! database's statistics reset; pg_stat_statements' temp_blks_written counts every block
//! written, so a sort that rewrites its blocks across merge passes counts them again, since
//! pg_stat_statements' own reset. A statement can therefore show more than its whole
//! database: when it does, both findings say why, so the statement never looks bigger than
//! its database without a reason given.

use super::{bytes, num, time_value, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const DATABASE_RULE: &str = "temp_file_spills";
pub const STATEMENT_RULE: &str = "statement_temp_spill";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM";
const MAINTENANCE_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAINTENANCE-WORK-MEM";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    let work_mem_kb = snap.setting_f64("work_mem");
    let spilling_statements = snap
        .statements
        .as_ref()
        .is_some_and(|st| st.top.iter().any(|s| s.temp_blks_written > 0));
    // Cite the statement findings only when there are some to read.
    let find_them = if spilling_statements {
        "the statement_temp_spill findings below, or log_temp_files"
    } else {
        "set log_temp_files = 0 to log them, or install pg_stat_statements"
    };
    let block_size = snap.setting_f64("block_size").unwrap_or(8192.0) as i64;
    let statements_reset = snap.statements.as_ref().and_then(|st| st.stats_reset);
    // Statements of a database that show more temporary bytes than the database itself.
    let bigger_than_database = |db: &crate::snapshot::DatabaseStats| {
        snap.statements.as_ref().is_some_and(|st| {
            st.top.iter().any(|s| {
                s.database.as_deref() == Some(db.name.as_str())
                    && s.temp_blks_written.saturating_mul(block_size) > db.temp_bytes
            })
        })
    };
    if let Some(db) = snap.current_database() {
        if db.temp_bytes >= th.temp_bytes_warning as i64 && db.temp_bytes > 0 {
            out.push(
                Finding::new(
                    DATABASE_RULE,
                    Severity::Warning,
                    format!("database {}", db.name),
                    format!(
                        "database {} wrote {} to {} since the statistics reset (threshold {})",
                        db.name,
                        bytes(db.temp_bytes),
                        super::count(db.temp_files, "temporary file", "temporary files"),
                        bytes(th.temp_bytes_warning as i64)
                    ) + &if bigger_than_database(db) {
                        format!("; {}", not_comparable(db.stats_reset, statements_reset))
                    } else {
                        String::new()
                    },
                )
                .evidence("temp_bytes", db.temp_bytes)
                .evidence("temp_files", db.temp_files)
                .evidence("threshold_bytes", th.temp_bytes_warning)
                .evidence("work_mem_kb", work_mem_kb.map(num))
                .evidence("stats_reset", time_value(db.stats_reset))
                .next_step(format!(
                    "Find the statements that spill ({find_them}) and raise work_mem for them (SET work_mem in their session or ALTER ROLE ... SET work_mem) rather than globally: work_mem is per sort/hash node per backend"
                ))
                .docs(DOCS),
            );
        }
    }
    if let Some(st) = &snap.statements {
        for s in st.top.iter().filter(|s| s.temp_blks_written > 0) {
            let written = s.temp_blks_written.saturating_mul(block_size);
            let database = s
                .database
                .as_deref()
                .and_then(|name| snap.databases.iter().find(|d| d.name == name));
            let in_database = s
                .database
                .as_deref()
                .map(|d| format!(" in database {d}"))
                .unwrap_or_default();
            let mut message = format!(
                "statement {}{in_database} wrote {} of temporary blocks over {}",
                s.queryid,
                bytes(written),
                super::count(s.calls, "call", "calls")
            );
            if let Some(db) = database.filter(|db| written > db.temp_bytes) {
                message.push_str(&format!(
                    ", more than the {} database {} counts; {}",
                    bytes(db.temp_bytes),
                    db.name,
                    not_comparable(db.stats_reset, st.stats_reset)
                ));
            }
            let f = Finding::new(
                STATEMENT_RULE,
                Severity::Info,
                format!("queryid {}", s.queryid),
                message,
            )
            .evidence("database", s.database.clone())
            .evidence("database_temp_bytes", database.map(|d| d.temp_bytes))
            .evidence("statements_stats_reset", time_value(st.stats_reset))
            .evidence("temp_blks_written", s.temp_blks_written)
            .evidence("temp_bytes_written", written)
            .evidence("calls", s.calls)
            .evidence("mean_exec_time_ms", num(s.mean_exec_time_ms))
            .evidence("work_mem_kb", work_mem_kb.map(num))
            .evidence("query", s.query.clone());
            // CREATE INDEX, REINDEX and CLUSTER sort within maintenance_work_mem: work_mem is
            // not theirs to raise, and EXPLAIN does not apply to them.
            let f = match super::slow_statements::maintenance_command(&s.query) {
                Some(command @ ("CREATE INDEX" | "REINDEX" | "CLUSTER")) => f
                    .evidence(
                        "maintenance_work_mem_kb",
                        snap.setting_f64("maintenance_work_mem").map(num),
                    )
                    .next_step(format!(
                        "This is maintenance ({command}): its sort is sized by maintenance_work_mem, not work_mem. If the spill makes it too slow, raise maintenance_work_mem in the session that runs it (SET maintenance_work_mem = ...) before it runs"
                    ))
                    .docs(MAINTENANCE_DOCS),
                _ => f
                    .next_step(
                        "EXPLAIN (ANALYZE, BUFFERS) it to find the sort or hash that spills, and raise work_mem for this query's session or role (or add an index that avoids the sort)",
                    )
                    .docs(DOCS),
            };
            out.push(f);
        }
    }
    out
}

/// Why a statement's temporary blocks can exceed its database's temporary bytes.
fn not_comparable(
    database_reset: Option<chrono::DateTime<chrono::Utc>>,
    statements_reset: Option<chrono::DateTime<chrono::Utc>>,
) -> String {
    let since = |t: Option<chrono::DateTime<chrono::Utc>>, what: &str| match t {
        Some(t) => format!("since {}", t.format("%Y-%m-%d %H:%M UTC")),
        None => format!("since {what}"),
    };
    format!(
        "the two are not comparable: pg_stat_statements counts every temporary block written \
         (blocks a sort rewrites count again) {}, while pg_stat_database counts each \
         temporary file's size once {}",
        since(statements_reset, "its last reset"),
        since(database_reset, "the statistics reset")
    )
}
