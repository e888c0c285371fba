//! User triggers left disabled (`ALTER TABLE ... DISABLE TRIGGER`, pg_trigger.tgenabled = 'D'):
//! whatever they maintain (audit rows, denormalised columns, checks) silently stops. Disabling
//! can be deliberate (a bulk load, a migration, logical replication set-up), so the advice is
//! to find out why before enabling. Triggers set to fire on replicas only ('R') or always
//! ('A') are not findings; they are listed in the evidence of the table's findings.

use crate::plan::{Lock, Step};
use std::collections::BTreeMap;

use super::{Finding, Severity, Thresholds};
use crate::ident::{Ident, QualifiedName};
use crate::snapshot::{Snapshot, Trigger};

pub const RULE: &str = "trigger_disabled";
const DOCS: &str = "https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-DISABLE-ENABLE-TRIGGER";

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    let Some(triggers) = &snap.triggers else {
        return Vec::new();
    };
    let mut by_table: BTreeMap<(&str, &str), Vec<&Trigger>> = BTreeMap::new();
    for t in triggers {
        by_table
            .entry((t.schema.as_str(), t.table.as_str()))
            .or_default()
            .push(t);
    }
    let mut out = Vec::new();
    for ((schema, table), list) in by_table {
        let special: Vec<String> = list
            .iter()
            .filter(|t| t.enabled == "R" || t.enabled == "A")
            .map(|t| {
                format!(
                    "{} ({})",
                    t.name,
                    if t.enabled == "R" {
                        "ENABLE REPLICA: fires only when session_replication_role = replica"
                    } else {
                        "ENABLE ALWAYS: fires in every replication role"
                    }
                )
            })
            .collect();
        for t in list.iter().filter(|t| t.enabled == "D") {
            let kind = if t.is_constraint {
                "constraint trigger"
            } else {
                "trigger"
            };
            let message = format!(
                "{kind} {} on {schema}.{table} is disabled: it does not run {}() on any change \
                 to the table",
                t.name, t.function
            );
            out.push(
                Finding::new(
                    RULE,
                    Severity::Warning,
                    format!("trigger {} on {schema}.{table}", t.name),
                    message,
                )
                .evidence("trigger", t.name.as_str())
                .evidence("table", format!("{schema}.{table}"))
                .evidence("function", t.function.as_str())
                .evidence("tgenabled", t.enabled.as_str())
                .evidence("is_constraint_trigger", t.is_constraint)
                .evidence("replica_or_always_triggers_on_table", special.clone())
                .next_step(
                    "Disabling may be deliberate (a bulk load, a migration, a replication \
                     set-up): find out why it was disabled first. If it should run, enable it; \
                     rows changed while it was off were not processed by it, so check whether \
                     they need to be fixed by hand",
                )
                .fix(Step::sql(
                    format!(
                        "ALTER TABLE {} ENABLE TRIGGER {}",
                        QualifiedName::new(schema, table),
                        Ident::new(&t.name)
                    ),
                    Lock::ShareRowExclusive,
                    true,
                ))
                .docs(DOCS),
            );
        }
    }
    out
}
