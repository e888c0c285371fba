//! (d) Autovacuum falling behind: per-table scale factors, global settings, workers.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// The tables autovacuum falls behind on: many dead tuples (over `tune_dead_tuples` and
/// `tune_dead_tuples_live_share` of the live ones) and no autovacuum for
/// `vacuum_overdue_seconds` (a day).
pub(super) fn behind_tables<'a>(snap: &'a Snapshot, th: &Thresholds) -> Vec<&'a Table> {
    let day_ago =
        snap.collected_at - Duration::milliseconds((th.vacuum_overdue_seconds * 1000.0) as i64);
    snap.tables
        .iter()
        .filter(|t| {
            // A partitioned table has no rows of its own (its partitions are listed).
            t.kind != "p"
                && t.n_dead_tup > (th.tune_dead_tuples as i64)
                && t.n_dead_tup as f64 > th.tune_dead_tuples_live_share * t.n_live_tup.max(0) as f64
                && t.last_autovacuum.is_none_or(|v| v < day_ago)
        })
        .collect()
}

/// (d) autovacuum falling behind: scale factors of their own for a few large tables; the
/// global settings when more tables, or small ones, fall behind; more workers when every
/// worker is busy.
pub(super) fn autovacuum(b: &mut Builder, input: &TuneInput, snap: &Snapshot, th: &Thresholds) {
    // Tables with autovacuum turned off on them: no autovacuum setting reaches them.
    let (off, behind): (Vec<&Table>, Vec<&Table>) =
        behind_tables(snap, th).into_iter().partition(|t| {
            t.reloption("autovacuum_enabled").is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no" | "0"
                )
            })
        });
    for t in off {
        b.out.notes.push(format!(
            "autovacuum is turned off on {}.{} (autovacuum_enabled = false) and it has {} dead \
             tuples: no autovacuum setting reaches it; ALTER TABLE {} RESET \
             (autovacuum_enabled), or VACUUM it on a schedule",
            t.schema,
            t.name,
            t.n_dead_tup,
            table_name(Some(&t.schema), &t.name)
        ));
    }
    if behind.is_empty() {
        return;
    }
    let large = behind
        .iter()
        .filter(|t| t.n_live_tup >= (th.tune_large_table_rows as i64))
        .count();
    let per_table = large <= th.tune_per_table_max;
    b.objects.extend(table_scale_factors(snap, th));
    let small = behind.len() - large;
    let names: Vec<String> = behind
        .iter()
        .map(|t| format!("{}.{} ({} dead)", t.schema, t.name, t.n_dead_tup))
        .collect();
    let evidence = ev(&[("tables", json!(names))]);
    let list = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if small > 0 || !per_table {
        let why = format!(
            "autovacuum falls behind: {} with over {} dead tuples (>10% of \
             live) not autovacuumed for over a day: {list}",
            count(behind.len(), "table", "tables"),
            th.tune_dead_tuples
        );
        for (name, value) in [
            ("autovacuum_vacuum_cost_limit", "2000"),
            ("autovacuum_naptime", "15"),
            ("autovacuum_vacuum_scale_factor", "0.05"),
        ] {
            b.set(
                "autovacuum",
                name,
                value.into(),
                why.clone(),
                evidence.clone(),
            );
        }
    }
    // Every worker busy and more tables waiting than workers: more workers, and a cost limit
    // to match (it is shared among the running workers).
    let max_workers = snap
        .setting_f64("autovacuum_max_workers")
        .map(|v| v as i64)
        .unwrap_or(3);
    let running = snap
        .activity
        .as_ref()
        .map(|a| {
            a.sessions
                .iter()
                .filter(|s| s.backend_type.as_deref() == Some("autovacuum worker"))
                .count() as i64
        })
        .unwrap_or(0);
    if running >= max_workers && behind.len() as i64 > max_workers {
        let cpus = input.cpus.map_or(max_workers * 2, i64::from);
        let workers = (max_workers * 2).min(cpus.max(max_workers + 1));
        if workers > max_workers {
            let why = format!(
                "all {max_workers} autovacuum workers were busy with {} falling behind \
                 ({list}); the cost limit is shared among workers, so it rises with them",
                count(behind.len(), "table", "tables")
            );
            let ev_workers = ev(&[
                ("autovacuum_workers_running", json!(running)),
                ("autovacuum_max_workers", json!(max_workers)),
                ("tables", json!(names)),
            ]);
            b.set(
                "autovacuum",
                "autovacuum_max_workers",
                workers.to_string(),
                why.clone(),
                ev_workers.clone(),
            );
            b.set(
                "autovacuum",
                "autovacuum_vacuum_cost_limit",
                (2000 * workers / max_workers).to_string(),
                why,
                ev_workers,
            );
        }
    }
}

/// Autovacuum scale factors of their own (`ALTER TABLE .. SET (autovacuum_vacuum_scale_factor
/// = .., autovacuum_analyze_scale_factor = ..)`) for the large tables autovacuum falls behind
/// on, when they are few (`tune_per_table_max`; more, and the global settings change
/// instead). One rule for `pgopt tune` and `pgopt maintain`, so the two never disagree.
pub(crate) fn table_scale_factors(snap: &Snapshot, th: &Thresholds) -> Vec<ObjectSetting> {
    let behind: Vec<&Table> = behind_tables(snap, th)
        .into_iter()
        .filter(|t| {
            !t.reloption("autovacuum_enabled").is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "false" | "off" | "no" | "0"
                )
            })
        })
        .collect();
    let mut out = Vec::new();
    let global_sf = snap
        .setting_f64("autovacuum_vacuum_scale_factor")
        .unwrap_or(0.2);
    let large: Vec<&Table> = behind
        .iter()
        .copied()
        .filter(|t| t.n_live_tup >= (th.tune_large_table_rows as i64))
        .collect();
    let per_table = large.len() <= th.tune_per_table_max;
    if per_table {
        for t in &large {
            let sf = ((th.tune_target_dead_rows / t.n_live_tup as f64).clamp(0.001, 0.05) * 1000.0)
                .round()
                / 1000.0;
            let own = t
                .reloption("autovacuum_vacuum_scale_factor")
                .and_then(|v| v.parse::<f64>().ok());
            if own.is_some_and(|v| v <= sf) {
                continue;
            }
            let now_sf = own.unwrap_or(global_sf);
            let evidence = ev(&[
                ("n_live_tup", json!(t.n_live_tup)),
                ("n_dead_tup", json!(t.n_dead_tup)),
                ("last_autovacuum", json!(t.last_autovacuum)),
                ("scale_factor_now", json!(now_sf)),
            ]);
            let reason = format!(
                "{} dead tuples ({:.0}% of {} live), no autovacuum for over a day: with scale \
                 factor {now_sf} autovacuum waits for about {} dead tuples; {sf} starts it at \
                 about {}",
                t.n_dead_tup,
                100.0 * t.n_dead_tup as f64 / t.n_live_tup.max(1) as f64,
                t.n_live_tup,
                (now_sf * t.n_live_tup as f64).round() as i64,
                (sf * t.n_live_tup as f64).round() as i64
            );
            for (name, value) in [
                ("autovacuum_vacuum_scale_factor", sf),
                ("autovacuum_analyze_scale_factor", (sf / 2.0).max(0.001)),
            ] {
                out.push(ObjectSetting {
                    rule: "autovacuum",
                    kind: ObjectKind::Table,
                    schema: Some(t.schema.to_string()),
                    object: t.name.to_string(),
                    name,
                    value: format!("{value}"),
                    current: t.reloption(name).map(str::to_string),
                    reason: reason.clone(),
                    evidence: evidence.clone(),
                });
            }
        }
    }
    out
}
