//! The maintenance phase (pure): which tables and indexes need VACUUM, ANALYZE, a freeze or a
//! REINDEX, from the snapshot, biggest need first, as steps of the one executor.
//!
//! The tasks come from the same findings `pgopt analyze` reports (autovacuum behind, stale
//! statistics, wraparound, index bloat), so the two never disagree about an object; a
//! finding whose fix is not maintenance (VACUUM FULL, a manual step) is left to analyze.

use serde::{Deserialize, Serialize};

use crate::advise::{Finding, Severity};
use crate::plan::{Action, Plan, Step};
use crate::snapshot::Snapshot;

/// Which objects the advice covers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only these tables (`schema.table`, or `table` in any schema); empty: all.
    pub tables: Vec<String>,
    /// Never these tables (same forms).
    pub exclude: Vec<String>,
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// VACUUM (FREEZE, ANALYZE): transaction-ID or multixact age.
    Freeze,
    /// VACUUM (ANALYZE): dead rows past the autovacuum threshold.
    Vacuum,
    /// ANALYZE: statistics missing or stale.
    Analyze,
    /// REINDEX INDEX CONCURRENTLY: a bloated index.
    Reindex,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Freeze => "freeze",
            Kind::Vacuum => "vacuum",
            Kind::Analyze => "analyze",
            Kind::Reindex => "reindex",
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
    /// The analyze rule behind it.
    pub rule: String,
    pub severity: Severity,
    /// Why, with the numbers (the finding's message).
    pub reason: String,
    /// Bytes the step reads (the table or index size), for ordering and time estimates.
    pub bytes: i64,
    /// The statements, in order.
    pub steps: Vec<Step>,
}

/// The maintenance advice for one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    /// Biggest need first: severity, then size.
    pub tasks: Vec<Task>,
}

const RULES: &[(&str, Kind)] = &[
    ("xid_wraparound", Kind::Freeze),
    ("multixact_wraparound", Kind::Freeze),
    ("autovacuum_behind", Kind::Vacuum),
    ("stale_statistics", Kind::Analyze),
    ("index_bloat", Kind::Reindex),
];

/// The tasks the findings of `snap` call for, one per object and kind, biggest need first.
pub fn advise(snap: &Snapshot, findings: &[Finding], opts: &Options) -> Advice {
    let mut tasks: Vec<Task> = Vec::new();
    for f in findings {
        let Some(&(_, kind)) = RULES.iter().find(|(r, _)| *r == f.rule) else {
            continue;
        };
        let steps: Vec<Step> = f
            .fix
            .iter()
            .filter(|s| is_maintenance(s))
            .cloned()
            .collect();
        if steps.is_empty() {
            continue;
        }
        let (table, bytes) = match kind {
            Kind::Reindex => match snap
                .indexes
                .iter()
                .find(|i| format!("{}.{}", i.schema, i.name) == f.object)
            {
                Some(i) => (format!("{}.{}", i.schema, i.table), i.size_bytes),
                None => continue,
            },
            _ => match snap.tables.iter().find(|t| t.qualified_name() == f.object) {
                Some(t) => (t.qualified_name(), t.total_bytes),
                None => continue,
            },
        };
        if !selected(&table, opts) {
            continue;
        }
        if tasks.iter().any(|t| t.object == f.object && t.kind == kind) {
            continue;
        }
        tasks.push(Task {
            kind,
            object: f.object.clone(),
            table,
            rule: f.rule.clone(),
            severity: f.severity,
            reason: f.message.clone(),
            bytes,
            steps,
        });
    }
    tasks.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(b.bytes.cmp(&a.bytes))
            .then(a.object.cmp(&b.object))
    });
    Advice { tasks }
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

/// VACUUM (not FULL), ANALYZE and REINDEX CONCURRENTLY: what runs beside the workload.
fn is_maintenance(step: &Step) -> bool {
    let Action::Sql { sql } = &step.action else {
        return false;
    };
    let upper = sql.to_ascii_uppercase();
    (upper.starts_with("VACUUM (") && !upper.contains("FULL"))
        || upper.starts_with("ANALYZE ")
        || upper.starts_with("REINDEX INDEX CONCURRENTLY ")
}

fn selected(table: &str, opts: &Options) -> bool {
    let matches = |pattern: &String| {
        pattern == table
            || (!pattern.contains('.')
                && table.rsplit_once('.').map(|(_, n)| n) == Some(pattern.as_str()))
    };
    (opts.tables.is_empty() || opts.tables.iter().any(matches)) && !opts.exclude.iter().any(matches)
}
