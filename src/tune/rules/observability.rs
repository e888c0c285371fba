//! (e) Observability: I/O timing, slow-statement and lock-wait logging, auto_explain.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (e) observability, always.
pub(super) fn observability(b: &mut Builder, snap: &Snapshot) {
    let why = "observability: pgopt's analysis needs it";
    for (name, value, reason) in [
        (
            "track_io_timing",
            "on",
            "I/O timings in pg_stat_statements and EXPLAIN",
        ),
        (
            "log_min_duration_statement",
            "1000",
            "log statements slower than 1 s",
        ),
        (
            "log_lock_waits",
            "on",
            "log lock waits longer than deadlock_timeout",
        ),
        (
            "log_autovacuum_min_duration",
            "10000",
            "log autovacuum runs longer than 10 s",
        ),
        ("log_temp_files", "0", "log every temp file (spills)"),
    ] {
        b.set(
            "observability",
            name,
            value.into(),
            format!("{why}: {reason}"),
            BTreeMap::new(),
        );
    }
    let current = snap
        .setting("shared_preload_libraries")
        .map_or("", |s| s.setting.as_str());
    let mut libs: Vec<&str> = current
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut added = Vec::new();
    if !libs.contains(&"pg_stat_statements") {
        libs.push("pg_stat_statements");
        added.push("pg_stat_statements");
    }
    // auto_explain ships in contrib beside pg_stat_statements: when that one is available,
    // so is this.
    let contrib = snap
        .extensions
        .available
        .iter()
        .any(|e| e == "pg_stat_statements")
        || snap.extensions.is_preloaded("auto_explain");
    if contrib && !libs.contains(&"auto_explain") {
        libs.push("auto_explain");
        added.push("auto_explain");
    }
    b.set(
        "observability",
        "shared_preload_libraries",
        libs.join(","),
        if added.is_empty() {
            format!("{why}: pg_stat_statements and auto_explain already loaded (kept)")
        } else {
            format!("{why}: load {}, keeping {current:?}", added.join(" and "))
        },
        ev(&[("current", json!(current))]),
    );
    if libs.contains(&"auto_explain") {
        b.set(
            "observability",
            "auto_explain.log_min_duration",
            AUTO_EXPLAIN_MS.into(),
            format!(
                "{why}: log the plan of statements slower than {} s (value in ms; takes \
                 effect once auto_explain is loaded)",
                AUTO_EXPLAIN_MS.parse::<u64>().unwrap_or(0) / 1000
            ),
            BTreeMap::new(),
        );
    }
}
