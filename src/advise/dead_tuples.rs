//! Dead tuples past the autovacuum threshold while vacuum is overdue: autovacuum is behind.
//!
//! Threshold = autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor × reltuples, the
//! table's reloptions winning over the server settings. A table past its threshold that was
//! vacuumed recently is just waiting for its turn; one never vacuumed, or not for longer than
//! `vacuum_overdue_seconds`, is not getting vacuumed. When something has held back the xmin
//! horizon for long ([`Horizon`]), VACUUM cannot remove the rows that died after it: those
//! holders are named first, with how to release them.

use super::horizon::{Holder, Horizon};
use super::{duration, has_own_storage, num, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::Step;
use crate::snapshot::{Snapshot, Table};

pub const RULE: &str = "autovacuum_behind";
const DOCS: &str = "https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM";

/// An autovacuum parameter for `table`: its reloption, else the server setting, else the
/// PostgreSQL default. Returns the value and where it came from ("table", "server", "default").
pub(crate) fn autovacuum_param(
    snap: &Snapshot,
    table: &Table,
    name: &str,
    default: f64,
) -> (f64, &'static str) {
    if let Some(v) = table.reloption(name).and_then(|v| v.parse::<f64>().ok()) {
        return (v, "table");
    }
    match snap.setting_f64(name) {
        Some(v) => (v, "server"),
        None => (default, "default"),
    }
}

/// Whether autovacuum is switched off for this table or for the whole server.
pub(crate) fn autovacuum_disabled(snap: &Snapshot, table: &Table) -> Option<&'static str> {
    if table
        .reloption("autovacuum_enabled")
        .is_some_and(|v| matches!(v, "false" | "off" | "0" | "no"))
    {
        return Some("autovacuum_enabled = false is set on this table");
    }
    if snap
        .setting("autovacuum")
        .is_some_and(|s| s.setting == "off")
    {
        return Some("autovacuum is off for the whole server");
    }
    None
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let horizon = Horizon::of(snap);
    let holders: Vec<&Holder> = horizon
        .at_horizon()
        .filter(|h| h.is_long_held(th))
        .collect();
    let labels: Vec<String> = holders.iter().map(|h| h.label()).collect();
    let releases: Vec<String> = holders
        .iter()
        .map(|h| format!("{}: {}", h.name, h.release))
        .collect();
    snap.tables
        .iter()
        .filter(|t| has_own_storage(&t.kind))
        .filter_map(|t| {
            let (base, base_src) = autovacuum_param(snap, t, "autovacuum_vacuum_threshold", 50.0);
            let (scale, scale_src) =
                autovacuum_param(snap, t, "autovacuum_vacuum_scale_factor", 0.2);
            let reltuples = t.reltuples.max(0.0);
            let threshold = base + scale * reltuples;
            if (t.n_dead_tup as f64) <= threshold {
                return None;
            }
            let last = t.last_any_vacuum();
            let since = last.map(|l| (snap.collected_at - l).num_milliseconds() as f64 / 1000.0);
            if since.is_some_and(|s| s < th.vacuum_overdue_seconds) {
                return None;
            }
            let when = match since {
                Some(s) => format!("last vacuumed {} ago", duration(s)),
                None => "never vacuumed".to_string(),
            };
            let mut message = format!(
                "table {} has {} dead tuples, past its autovacuum threshold of {:.0}, and was {when} (overdue after {})",
                t.qualified_name(),
                t.n_dead_tup,
                threshold,
                duration(th.vacuum_overdue_seconds)
            );
            let disabled = autovacuum_disabled(snap, t);
            if let Some(why) = disabled {
                message.push_str(&format!("; {why}"));
            }
            if !labels.is_empty() {
                message.push_str(&format!(
                    "; VACUUM cannot remove rows that died after the xmin horizon, held back by {}",
                    labels.join(", ")
                ));
            }
            let first = if releases.is_empty() {
                String::new()
            } else {
                format!(
                    "Release what holds back the xmin horizon first — {} — then vacuum",
                    releases.join("; ")
                )
            };
            Some(
                Finding::new(RULE, Severity::Warning, t.qualified_name(), message)
                    .evidence("n_dead_tup", t.n_dead_tup)
                    .evidence("n_live_tup", t.n_live_tup)
                    .evidence("reltuples", num(t.reltuples))
                    .evidence("threshold_tuples", num(threshold))
                    .evidence("autovacuum_vacuum_threshold", num(base))
                    .evidence("autovacuum_vacuum_threshold_source", base_src)
                    .evidence("autovacuum_vacuum_scale_factor", num(scale))
                    .evidence("autovacuum_vacuum_scale_factor_source", scale_src)
                    .evidence("last_vacuum_age_seconds", since.map(num))
                    .evidence("overdue_threshold_seconds", num(th.vacuum_overdue_seconds))
                    .evidence("autovacuum_disabled", disabled.is_some())
                    .evidence("held_back_by", labels.clone())
                    .next_step(if first.is_empty() && snap.activity.is_none() {
                        // Sessions were not collected: the horizon is unknown.
                        "Vacuum it now; then find why autovacuum does not keep up: long transactions holding the xmin horizon, too few autovacuum_max_workers, or a cost limit too low (autovacuum_vacuum_cost_limit); lower the table's autovacuum_vacuum_scale_factor if it is large".to_string()
                    } else if first.is_empty() {
                        "Vacuum it now; then find why autovacuum does not keep up: too few autovacuum_max_workers, or a cost limit too low (autovacuum_vacuum_cost_limit); lower the table's autovacuum_vacuum_scale_factor if it is large".to_string()
                    } else {
                        format!("{first}; then find why autovacuum does not keep up: too few autovacuum_max_workers, or a cost limit too low (autovacuum_vacuum_cost_limit)")
                    })
                    .fix(Step::vacuum(&QualifiedName::new(&t.schema, &t.name), "ANALYZE"))
                    .docs(DOCS),
            )
        })
        .collect()
}
