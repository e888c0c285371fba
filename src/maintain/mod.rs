//! The maintenance phase (pure): which tables and indexes need VACUUM, ANALYZE, a freeze, a
//! REINDEX CONCURRENTLY or autovacuum settings of their own, from the snapshot, biggest need
//! first, as steps of the one executor.
//!
//! The tasks come from the same findings `pgopt analyze` reports (autovacuum behind, inserts
//! since vacuum, stale statistics, wraparound, index bloat) and the per-table autovacuum
//! settings `pgopt tune` advises, so none of them disagrees about an object; a finding whose
//! fix is not maintenance (VACUUM FULL, a manual step) is left to analyze and listed as a
//! note. Nothing here blocks writes: VACUUM, ANALYZE and REINDEX CONCURRENTLY take SHARE
//! UPDATE EXCLUSIVE locks; VACUUM FULL is never run by maintain.

mod select;
pub mod urgency;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::advise::{Finding, Severity, Thresholds};
use crate::plan::{Action, Object, Plan, Step};
use crate::snapshot::Snapshot;

pub use select::{glob_match, selected};
pub use urgency::Urgency;

/// Which objects the advice covers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these tables (`schema.table`, or `table` in any schema; `*` and `?` glob, e.g.
    /// `audit_*`); empty: all.
    pub tables: Vec<String>,
    /// Never these tables (same forms).
    pub exclude: Vec<String>,
    /// The thresholds the findings were made with (for the per-table autovacuum settings,
    /// which come from the tune rule).
    pub thresholds: Thresholds,
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// VACUUM (FREEZE): transaction-ID or multixact age.
    Freeze,
    /// VACUUM (ANALYZE): dead rows past the autovacuum threshold, or rows inserted since the
    /// last vacuum.
    Vacuum,
    /// ANALYZE: statistics missing or stale.
    Analyze,
    /// REINDEX INDEX CONCURRENTLY: a bloated btree index.
    Reindex,
    /// ALTER TABLE .. SET (autovacuum_*_scale_factor): a large table autovacuum falls behind on.
    Autovacuum,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Freeze => "freeze",
            Kind::Vacuum => "vacuum",
            Kind::Analyze => "analyze",
            Kind::Reindex => "reindex",
            Kind::Autovacuum => "autovacuum",
        }
    }

    /// The lock the task's statements take, and what it blocks, for people.
    pub fn lock_text(self) -> &'static str {
        match self {
            Kind::Reindex => {
                "SHARE UPDATE EXCLUSIVE on the table: reads and writes go on; a brief lock to swap"
            }
            Kind::Autovacuum => "SHARE UPDATE EXCLUSIVE, a moment: reads and writes go on",
            _ => "SHARE UPDATE EXCLUSIVE: reads and writes go on; DDL waits",
        }
    }
}

/// One thing to run on one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub kind: Kind,
    /// The table, or for a REINDEX the index (`schema.name`).
    pub object: String,
    /// The table it works on (`schema.table`).
    pub table: String,
    /// The rule behind it (an analyze rule, or `autovacuum` of tune).
    pub rule: String,
    pub severity: Severity,
    /// Why, with the numbers (the finding's message).
    pub reason: String,
    /// Bytes the step reads (the table or index size), for ordering and time estimates.
    pub bytes: i64,
    /// The statements, in order.
    pub steps: Vec<Step>,
    /// For a freeze: how close the object is to wraparound, by the documentation's limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// Other findings this task also answers (an ANALYZE folded into a VACUUM (ANALYZE)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<String>,
}

/// The maintenance advice for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    /// Biggest need first: freezes by urgency, then severity, then size.
    pub tasks: Vec<Task>,
    /// What maintenance saw and leaves to others, with why (a table to rewrite, bloat that
    /// cannot be estimated, ...).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The rules maintenance acts on.
const RULES: &[&str] = &[
    "xid_wraparound",
    "multixact_wraparound",
    "autovacuum_behind",
    "vacuum_after_inserts",
    "stale_statistics",
    "index_bloat",
];

/// The tasks the findings of `snap` call for, one per object and kind, biggest need first.
pub fn advise(snap: &Snapshot, findings: &[Finding], opts: &Options) -> Advice {
    let mut advice = Advice::default();
    for f in findings {
        // A rewrite advised (a warning; the info findings ask for a VACUUM or an ANALYZE
        // that other rules' tasks already carry).
        if f.rule == "table_bloat" {
            if let Some(table) = snap.tables.iter().find(|t| t.qualified_name() == f.object) {
                if selected(&table.qualified_name(), opts) && f.severity >= Severity::Warning {
                    advice.notes.push(format!(
                        "{}: {} — a rewrite (VACUUM FULL, pg_repack) is not run by maintain; see `pgopt analyze`",
                        f.object, f.message
                    ));
                }
            }
            continue;
        }
        if !RULES.contains(&f.rule.as_str()) {
            continue;
        }
        // A whole database near wraparound (its oldest relations are catalogs, or it is
        // another database): vacuumdb's job, said as analyze says it.
        if f.object.starts_with("database ") && opts.tables.is_empty() {
            advice
                .notes
                .push(format!("{}: {} — {}", f.object, f.message, f.next_step));
            continue;
        }
        for step in f.fix.iter().filter(|s| is_maintenance(s)) {
            let Some(kind) = kind_of(step) else { continue };
            let task = match kind {
                Kind::Reindex => {
                    let Some(i) = snap
                        .indexes
                        .iter()
                        .find(|i| format!("{}.{}", i.schema, i.name) == f.object)
                    else {
                        continue;
                    };
                    (
                        f.object.clone(),
                        format!("{}.{}", i.schema, i.table),
                        i.size_bytes,
                    )
                }
                _ => {
                    // The table the statement works on: the finding's object, or for an
                    // index finding its table.
                    let table = snap
                        .tables
                        .iter()
                        .find(|t| t.qualified_name() == f.object)
                        .or_else(|| {
                            let i = snap
                                .indexes
                                .iter()
                                .find(|i| format!("{}.{}", i.schema, i.name) == f.object)?;
                            snap.tables
                                .iter()
                                .find(|t| t.schema == i.schema && t.name == i.table)
                        });
                    let Some(t) = table else { continue };
                    (t.qualified_name(), t.qualified_name(), t.total_bytes)
                }
            };
            let (object, table, bytes) = task;
            if !selected(&table, opts) {
                continue;
            }
            if let Some(t) = advice
                .tasks
                .iter_mut()
                .find(|t| t.object == object && t.kind == kind)
            {
                if t.rule != f.rule && !t.also.contains(&f.rule) {
                    t.also.push(f.rule.clone());
                    t.severity = t.severity.max(f.severity);
                }
                continue;
            }
            advice.tasks.push(Task {
                kind,
                object,
                table,
                rule: f.rule.clone(),
                severity: f.severity,
                reason: f.message.clone(),
                bytes,
                steps: vec![step.clone()],
                urgency: (kind == Kind::Freeze)
                    .then(|| urgency::of(snap, f))
                    .flatten(),
                also: Vec::new(),
            });
        }
    }
    fold_analyze_into_vacuum(&mut advice.tasks);
    advice.tasks.extend(autovacuum_settings(snap, opts));
    advice.tasks.sort_by(|a, b| {
        let freeze_rank = |t: &Task| match (&t.urgency, t.kind) {
            (Some(u), Kind::Freeze) => (0, u.ids_left),
            (None, Kind::Freeze) => (0, i64::MAX),
            _ => (1, 0),
        };
        freeze_rank(a)
            .cmp(&freeze_rank(b))
            .then(b.severity.cmp(&a.severity))
            .then(a.kind.cmp(&b.kind))
            .then(b.bytes.cmp(&a.bytes))
            .then(a.object.cmp(&b.object))
    });
    advice
}

/// An ANALYZE of a table that is vacuumed with ANALYZE anyway is dropped; its finding is
/// named on the VACUUM.
fn fold_analyze_into_vacuum(tasks: &mut Vec<Task>) {
    let folded: Vec<(String, String)> = tasks
        .iter()
        .filter(|t| t.kind == Kind::Analyze)
        .filter(|t| {
            tasks.iter().any(|v| {
                v.kind == Kind::Vacuum
                    && v.table == t.table
                    && v.steps.iter().any(|s| {
                        s.action
                            .sql()
                            .is_some_and(|q| q.to_ascii_uppercase().contains("ANALYZE"))
                    })
            })
        })
        .map(|t| (t.table.clone(), t.rule.clone()))
        .collect();
    for (table, rule) in folded {
        tasks.retain(|t| !(t.kind == Kind::Analyze && t.table == table));
        if let Some(v) = tasks
            .iter_mut()
            .find(|v| v.kind == Kind::Vacuum && v.table == table)
        {
            if !v.also.contains(&rule) {
                v.also.push(rule);
            }
        }
    }
}

/// The per-table autovacuum settings `pgopt tune` advises (the same rule), as tasks.
fn autovacuum_settings(snap: &Snapshot, opts: &Options) -> Vec<Task> {
    let mut out: Vec<Task> = Vec::new();
    for s in crate::tune::table_scale_factors(snap, &opts.thresholds) {
        let table = format!("{}.{}", s.schema.as_deref().unwrap_or("public"), s.object);
        if !selected(&table, opts) {
            continue;
        }
        let step = Step::set_object(
            Object::Table {
                schema: s.schema.clone(),
                name: s.object.clone(),
            },
            s.name,
            &s.value,
            s.current.as_deref(),
        );
        if let Some(t) = out.iter_mut().find(|t| t.table == table) {
            t.steps.push(step);
            continue;
        }
        let bytes = snap
            .tables
            .iter()
            .find(|t| t.qualified_name() == table)
            .map_or(0, |t| t.total_bytes);
        out.push(Task {
            kind: Kind::Autovacuum,
            object: table.clone(),
            table,
            rule: s.rule.to_string(),
            severity: Severity::Info,
            reason: format!(
                "large table autovacuum falls behind on: {} (the setting `pgopt tune` advises)",
                s.reason
            ),
            bytes,
            steps: vec![step],
            urgency: None,
            also: Vec::new(),
        });
    }
    out
}

/// The tasks as one plan, in the advice's order.
pub fn plan(advice: &Advice) -> Plan {
    let mut plan = Plan::new();
    for t in &advice.tasks {
        for s in &t.steps {
            plan.push(s.clone());
        }
    }
    plan
}

/// The task each step of [`plan`] belongs to, by step index.
pub fn task_of_steps(advice: &Advice) -> Vec<usize> {
    advice
        .tasks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| std::iter::repeat_n(i, t.steps.len()))
        .collect()
}

/// VACUUM (not FULL), ANALYZE and REINDEX CONCURRENTLY: what runs beside the workload.
fn is_maintenance(step: &Step) -> bool {
    let Action::Sql { sql } = &step.action else {
        return false;
    };
    let upper = sql.to_ascii_uppercase();
    (upper.starts_with("VACUUM (") && !options_of(&upper).contains("FULL"))
        || upper.starts_with("ANALYZE ")
        || upper.starts_with("REINDEX INDEX CONCURRENTLY ")
}

/// The option list of `VACUUM (...)`.
fn options_of(upper: &str) -> &str {
    upper
        .strip_prefix("VACUUM (")
        .and_then(|rest| rest.split_once(')'))
        .map_or("", |(opts, _)| opts)
}

fn kind_of(step: &Step) -> Option<Kind> {
    let sql = step.action.sql()?.to_ascii_uppercase();
    if sql.starts_with("VACUUM (") {
        Some(if options_of(&sql).contains("FREEZE") {
            Kind::Freeze
        } else {
            Kind::Vacuum
        })
    } else if sql.starts_with("ANALYZE ") {
        Some(Kind::Analyze)
    } else if sql.starts_with("REINDEX ") {
        Some(Kind::Reindex)
    } else {
        None
    }
}
