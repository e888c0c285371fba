//! Transaction-ID and multixact-ID wraparound.
//!
//! Per database (age(datfrozenxid), mxid_age(datminmxid)) and per table of the connected
//! database (TOAST included). Warning at `*_warning_ratio` × autovacuum_freeze_max_age (or
//! autovacuum_multixact_freeze_max_age); critical from `*_critical` (PostgreSQL stops assigning
//! IDs a little before 2^31). What holds back the xmin horizon comes from [`Horizon`]: only
//! its causes are named (a session whose old snapshot merely follows another holder's XID is
//! not), each with the statement that releases it.

use super::horizon::{Holder, Horizon};
use super::{num, pct, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::Step;
use crate::snapshot::Snapshot;

pub const XID_RULE: &str = "xid_wraparound";
pub const MULTIXACT_RULE: &str = "multixact_wraparound";
const XID_DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND";
const MULTIXACT_DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-MULTIXACT-WRAPAROUND";

/// 2^31: the distance at which IDs wrap around.
const WRAP_LIMIT: i64 = 1 << 31;

struct Kind {
    rule: &'static str,
    docs: &'static str,
    what: &'static str,
    setting: &'static str,
    default_max_age: f64,
    warning_ratio: f64,
    critical_age: i64,
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let xid = Kind {
        rule: XID_RULE,
        docs: XID_DOCS,
        what: "transaction ID",
        setting: "autovacuum_freeze_max_age",
        default_max_age: 200_000_000.0,
        warning_ratio: th.xid_age_warning_ratio,
        critical_age: th.xid_age_critical as i64,
    };
    let mxid = Kind {
        rule: MULTIXACT_RULE,
        docs: MULTIXACT_DOCS,
        what: "multixact ID",
        setting: "autovacuum_multixact_freeze_max_age",
        default_max_age: 400_000_000.0,
        warning_ratio: th.multixact_age_warning_ratio,
        critical_age: th.multixact_age_critical as i64,
    };
    let horizon = Horizon::of(snap);
    let mut out = Vec::new();
    for (kind, is_xid) in [(xid, true), (mxid, false)] {
        let max_age = snap
            .setting_f64(kind.setting)
            .unwrap_or(kind.default_max_age);
        let warn_age = kind.warning_ratio * max_age;
        // Half the warning age: a holder younger than that cannot keep an object past the
        // warning once it is vacuumed. For multixacts the same XID holders are named, since
        // the oldest running transaction also bounds how far multixacts can be frozen.
        let min_age = (warn_age / 2.0) as i64;
        let blockers: Vec<&Holder> = horizon.named_older_than(min_age).collect();
        let followers: Vec<String> = horizon
            .victims
            .iter()
            .filter(|v| v.age >= min_age)
            .map(|v| {
                format!(
                    "{} (xmin age {}) only follows {}: ending it frees nothing",
                    v.name, v.age, v.follows
                )
            })
            .collect();
        // Tables first: the database findings say whether they name any.
        let mut table_findings = Vec::new();
        for t in &snap.tables {
            let age = if is_xid {
                t.frozenxid_age
            } else {
                t.minmxid_age
            };
            if let Some(f) = finding(
                &kind,
                &t.qualified_name(),
                age,
                max_age,
                warn_age,
                &blockers,
                &followers,
            ) {
                table_findings.push(
                    f.next_step(capitalized(format!(
                        "{}vacuum the table with FREEZE and check that autovacuum can keep up with it",
                        blockers_first(&blockers)
                    )))
                    .fix(Step::vacuum(
                        &QualifiedName::new(&t.schema, &t.name),
                        "FREEZE, VERBOSE",
                    )),
                );
            }
        }
        for db in &snap.databases {
            let age = if is_xid {
                db.frozenxid_age
            } else {
                db.minmxid_age
            };
            if let Some(f) = finding(
                &kind,
                &format!("database {}", db.name),
                age,
                max_age,
                warn_age,
                &blockers,
                &followers,
            ) {
                let connected = snap.target.database == db.name;
                let step = database_step(
                    snap,
                    &db.name,
                    db.allow_connections,
                    connected,
                    !table_findings.is_empty(),
                );
                out.push(f.next_step(capitalized(format!("{}{step}", blockers_first(&blockers)))));
            }
        }
        out.extend(table_findings);
    }
    out
}

/// What to do about an old database: it depends on whether anyone may connect to it
/// (template0 may not), whether autovacuum runs, and whether the per-table findings name its
/// oldest tables (they do only for the connected database, and only for user tables).
fn database_step(
    snap: &Snapshot,
    name: &str,
    allow_connections: bool,
    connected: bool,
    tables_named: bool,
) -> String {
    let on = |setting: &str| snap.setting(setting).is_none_or(|s| s.setting == "on");
    let autovacuum_runs = on("autovacuum") && on("track_counts");
    if !allow_connections {
        return if autovacuum_runs {
            format!(
                "database {name} accepts no connections (datallowconn = false, like template0): \
                 autovacuum freezes it on its own, so check that autovacuum workers are free \
                 and that nothing holds back the xmin horizon"
            )
        } else {
            format!(
                "autovacuum is off (autovacuum or track_counts), and database {name} accepts no \
                 connections (datallowconn = false): only the forced anti-wraparound vacuum \
                 that PostgreSQL starts past autovacuum_freeze_max_age freezes it. Turn \
                 both on (ALTER SYSTEM SET autovacuum = on; ALTER SYSTEM SET track_counts = \
                 on; SELECT pg_reload_conf()); \
                 if that cannot be done, allow connections for a moment (ALTER DATABASE ... \
                 ALLOW_CONNECTIONS true), run VACUUM (FREEZE) in it and disallow them again"
            )
        };
    }
    if connected && tables_named {
        return format!(
            "vacuum the oldest tables of database {name} (VACUUM (FREEZE) or `vacuumdb \
             --freeze`); the per-table findings name them"
        );
    }
    if connected {
        return format!(
            "vacuum database {name} with FREEZE (`vacuumdb --freeze -d {name}`): its oldest \
             tables are not among the user tables pgopt reports (system catalogs or TOAST)"
        );
    }
    format!(
        "connect to database {name} and vacuum it with FREEZE (`vacuumdb --freeze -d {name}`); \
         `pgopt analyze` on that database names its oldest tables"
    )
}

/// The start of a next step: release what holds back the horizon first, when anything does.
fn blockers_first(blockers: &[&Holder]) -> String {
    if blockers.is_empty() {
        String::new()
    } else {
        let each: Vec<String> = blockers
            .iter()
            .map(|h| format!("{}: {}", h.name, h.release))
            .collect();
        format!(
            "Release what holds back the xmin horizon first, or VACUUM cannot freeze past it — {} — then ",
            each.join("; ")
        )
    }
}

fn capitalized(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

fn finding(
    kind: &Kind,
    object: &str,
    age: i64,
    max_age: f64,
    warn_age: f64,
    blockers: &[&Holder],
    followers: &[String],
) -> Option<Finding> {
    let (severity, limit_text) = if age >= kind.critical_age {
        (
            Severity::Critical,
            format!("critical from {}", kind.critical_age),
        )
    } else if age as f64 >= warn_age {
        (
            Severity::Warning,
            format!(
                "warning from {:.0}, {} of {} {:.0}",
                warn_age,
                pct(kind.warning_ratio),
                kind.setting,
                max_age
            ),
        )
    } else {
        return None;
    };
    let mut message = format!(
        "{object} has {} age {age} ({limit_text}); {} IDs are left before wraparound",
        kind.what,
        WRAP_LIMIT - age
    );
    let labels: Vec<String> = blockers.iter().map(|h| h.label()).collect();
    if !labels.is_empty() {
        message.push_str(&format!(
            "; the xmin horizon is held back by {}",
            labels.join(", ")
        ));
    }
    Some(
        Finding::new(kind.rule, severity, object, message)
            .evidence("age", age)
            .evidence(kind.setting, num(max_age))
            .evidence("ratio_of_freeze_max_age", num(age as f64 / max_age))
            .evidence("warning_age", num(warn_age))
            .evidence("critical_age", kind.critical_age)
            .evidence("ids_left_to_wraparound", WRAP_LIMIT - age)
            .evidence("held_back_by", labels)
            .evidence("not_holding_back", followers.to_vec())
            .docs(kind.docs),
    )
}
