//! autovacuum turned off server-wide, and track_counts off (which silently stops autovacuum:
//! it has no counters to act on). With either, dead rows pile up, statistics go stale, and
//! only the forced anti-wraparound vacuums still run. Critical once any database or table of
//! the snapshot is past the XID age the wraparound rule warns at (xid_age_warning_ratio ×
//! autovacuum_freeze_max_age); warning otherwise. autovacuum on: silent.

use super::{num, Finding, Severity, Thresholds};
use crate::plan::{Lock, Step};
use crate::snapshot::Snapshot;

pub const AUTOVACUUM_RULE: &str = "autovacuum_off";
pub const TRACK_COUNTS_RULE: &str = "track_counts_off";
const DOCS: &str = "https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM";
const TRACK_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-statistics.html#GUC-TRACK-COUNTS";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let max_age = snap
        .setting_f64("autovacuum_freeze_max_age")
        .unwrap_or(200_000_000.0);
    let warn_age = th.xid_age_warning_ratio * max_age;
    // The oldest database or table of the snapshot.
    let oldest = snap
        .databases
        .iter()
        .map(|d| (d.frozenxid_age, format!("database {}", d.name)))
        .chain(
            snap.tables
                .iter()
                .map(|t| (t.frozenxid_age, t.qualified_name())),
        )
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    let mut out = Vec::new();
    for (setting, rule, docs) in [
        ("autovacuum", AUTOVACUUM_RULE, DOCS),
        ("track_counts", TRACK_COUNTS_RULE, TRACK_DOCS),
    ] {
        let Some(s) = snap.setting(setting) else {
            continue;
        };
        if s.setting != "off" {
            continue;
        }
        let old = oldest.as_ref().filter(|(age, _)| *age as f64 >= warn_age);
        let severity = if old.is_some() {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let effect = if setting == "autovacuum" {
            "autovacuum is off server-wide (autovacuum = off)"
        } else {
            "track_counts is off: autovacuum has no counters to act on, so it does nothing even \
             with autovacuum = on, and pg_stat_user_tables stays empty"
        };
        let mut message = format!(
            "{effect}: dead rows pile up, planner statistics go stale, and only the forced \
             anti-wraparound vacuums past autovacuum_freeze_max_age still run"
        );
        if let Some((age, what)) = old {
            message.push_str(&format!(
                "; {what} is already at XID age {age} (warning from {warn_age:.0})"
            ));
        }
        let mut step = format!(
            "Turn {setting} back on; it takes effect on reload. If it was turned off for a bulk \
             load, VACUUM ANALYZE the loaded tables once it is on"
        );
        if matches!(
            s.source.as_str(),
            "command line" | "environment variable" | "override"
        ) {
            step.push_str(&format!(
                ". It is set on the server's {} (source: {}), which ALTER SYSTEM does not \
                 override: remove it there and restart",
                if s.source == "environment variable" {
                    "environment"
                } else {
                    "command line"
                },
                s.source
            ));
        }
        out.push(
            Finding::new(rule, severity, format!("setting {setting}"), message)
                .evidence(setting, s.setting.as_str())
                .evidence("source", s.source.as_str())
                .evidence("oldest_frozenxid_age", oldest.as_ref().map(|o| o.0))
                .evidence(
                    "oldest_frozenxid_object",
                    oldest.as_ref().map(|o| o.1.as_str()),
                )
                .evidence("xid_warning_age", num(warn_age))
                .evidence("autovacuum_freeze_max_age", num(max_age))
                .next_step(step)
                .fixes(vec![
                    Step::sql(
                        format!("ALTER SYSTEM SET {setting} = on"),
                        Lock::None,
                        false,
                    ),
                    Step::call("SELECT pg_reload_conf()"),
                ])
                .docs(docs),
        );
    }
    out
}
