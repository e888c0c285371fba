//! (a) Temp-file spills: work_mem raised within a memory budget.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (a) temp-file spills → raise work_mem within the budget, hash_mem_multiplier = 2.
pub(super) fn temp_spills(b: &mut Builder, mem_kb: u64, snap: &Snapshot, th: &Thresholds) {
    let Some(db) = snap
        .databases
        .iter()
        .find(|d| d.name == snap.target.database)
    else {
        return;
    };
    // The window the snapshot recorded; for an older snapshot, derived the same way.
    let window_secs = snap
        .stats_window
        .as_ref()
        .map(|w| w.seconds)
        .or_else(|| stats_window(snap, db.stats_reset));
    // A daily rate only over a window long enough to mean one.
    let per_day = window_secs
        .filter(|w| *w >= th.tune_temp_rate_min_window_seconds)
        .map(|w| db.temp_files as f64 / (w / 86_400.0));
    let spilling: Vec<&crate::snapshot::Statement> = snap
        .statements
        .as_ref()
        .map(|s| s.top.iter().filter(|s| s.temp_blks_written > 0).collect())
        .unwrap_or_default();
    let pattern = match per_day {
        Some(rate) => rate >= th.tune_temp_files_per_day,
        // Too short for a rate: statements seen spilling are evidence enough.
        None => !spilling.is_empty(),
    };
    if db.temp_files <= 0 || !pattern {
        return;
    }
    let Some(base_kb) = b.get("work_mem").and_then(kb) else {
        return;
    };
    let (active, observed) = active_connections(snap, th);
    let budget_kb = (mem_kb as f64 * th.tune_work_mem_memory_share / (active as f64 * 2.0)) as u64;
    let avg_file_kb = (db.temp_bytes.max(0) as u64 / db.temp_files as u64) / 1024;
    let wanted = (base_kb * 2).max(avg_file_kb.next_power_of_two());
    let target = round_kb(wanted.min(budget_kb));
    let stmt_blocks: i64 = spilling.iter().map(|s| s.temp_blks_written).sum();
    let files = count(db.temp_files, "temp file", "temp files");
    let over = match (per_day, window_secs) {
        (Some(rate), Some(w)) => format!("{rate:.1}/day over {}", duration(w)),
        (None, Some(w)) => format!(
            "the statistics cover only {}, too short for a daily rate",
            duration(w)
        ),
        _ => "since an unknown time, so no daily rate".to_string(),
    };
    let evidence = ev(&[
        ("database", json!(db.name)),
        ("temp_files", json!(db.temp_files)),
        ("temp_bytes", json!(db.temp_bytes)),
        (
            "window_days",
            json!(window_secs.map(|w| (w / 86_400.0 * 100.0).round() / 100.0)),
        ),
        (
            "temp_files_per_day",
            json!(per_day.map(|r| (r * 10.0).round() / 10.0)),
        ),
        ("avg_temp_file_kb", json!(avg_file_kb)),
        ("statements_spilling", json!(spilling.len())),
        ("statement_temp_blks_written", json!(stmt_blocks)),
        ("connections_observed", json!(observed)),
        ("connections_planned", json!(active)),
        ("work_mem_budget_kb", json!(budget_kb)),
        ("baseline_kb", json!(base_kb)),
    ]);
    let planned = count(active, "connection", "connections");
    if target <= base_kb {
        b.out.notes.push(format!(
            "temp files spill ({files}, {} MB; {over}) but work_mem cannot be raised above {} \
             within 25% of memory for {planned}",
            db.temp_bytes / (1024 * 1024),
            format_kb(base_kb)
        ));
        return;
    }
    let reason = format!(
        "temp files spill: {files} ({} MB, {over}, avg {} kB each) in {}{}; raised from {} \
         within the budget 25% of memory / ({planned} x 2) = {} kB",
        db.temp_bytes / (1024 * 1024),
        avg_file_kb,
        db.name,
        if spilling.is_empty() {
            String::new()
        } else {
            format!(
                ", {} wrote {stmt_blocks} temp blocks",
                count(spilling.len(), "statement", "statements")
            )
        },
        format_kb(base_kb),
        budget_kb
    );
    b.set(
        "temp_spills",
        "work_mem",
        format_kb(target),
        reason,
        evidence.clone(),
    );
    b.set(
        "temp_spills",
        "hash_mem_multiplier",
        "2".into(),
        format!("work_mem raised for temp-file spills ({files}): hash tables get 2x work_mem"),
        evidence,
    );
}
