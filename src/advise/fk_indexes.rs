//! Foreign keys without a supporting index on the referencing columns.
//!
//! Without one, every DELETE or key UPDATE on the referenced table scans the referencing
//! table, and a cascading delete does so per row. An FK is covered when some valid, non-partial
//! btree (or single-column hash) index's leading key columns, as a set, are the FK's columns.

use crate::plan::{Lock, Step};
use std::collections::BTreeSet;

use super::{Finding, Severity, Thresholds};
use crate::ident::{Ident, QualifiedName};
use crate::snapshot::{ForeignKey, Index, Snapshot};

pub const RULE: &str = "fk_missing_index";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK";

/// Whether `idx` can serve lookups on the columns of `fk`.
pub(crate) fn covers(idx: &Index, fk: &ForeignKey) -> bool {
    if idx.schema != fk.schema || idx.table != fk.table || !idx.is_valid || idx.predicate.is_some()
    {
        return false;
    }
    let n = fk.attnums.len();
    if n == 0 || idx.key_attnums.len() < n {
        return false;
    }
    let usable_am = match idx.access_method.as_str() {
        "btree" => true,
        "hash" => n == 1,
        _ => false,
    };
    if !usable_am {
        return false;
    }
    let leading: BTreeSet<i16> = idx.key_attnums[..n].iter().copied().collect();
    let wanted: BTreeSet<i16> = fk.attnums.iter().copied().collect();
    leading == wanted
}

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    let by_table = super::indexes_by_table(snap);
    snap.foreign_keys
        .iter()
        .filter(|fk| {
            !by_table
                .get(&fk.schema, &fk.table)
                .iter()
                .any(|idx| covers(idx, fk))
        })
        .map(|fk| {
            let table = QualifiedName::new(&fk.schema, &fk.table);
            let columns: Vec<String> = fk.columns.iter().map(|c| Ident::new(c).to_string()).collect();
            let size = snap
                .tables
                .iter()
                .find(|t| t.schema == fk.schema && t.name == fk.table)
                .map(|t| t.total_bytes);
            Finding::new(
                RULE,
                Severity::Warning,
                format!("{}.{}", fk.schema, fk.table),
                format!(
                    "foreign key {} on {}.{} ({}) referencing {}.{} has no index on its columns",
                    fk.name,
                    fk.schema,
                    fk.table,
                    fk.columns.join(", "),
                    fk.ref_schema,
                    fk.ref_table
                ),
            )
            .evidence("constraint", fk.name.clone())
            .evidence("columns", fk.columns.clone())
            .evidence("referenced_table", format!("{}.{}", fk.ref_schema, fk.ref_table))
            .evidence("table_total_bytes", size)
            .next_step(
                "Create an index on the referencing columns so deletes and key updates on the referenced table need not scan this table",
            )
            .fix(Step::sql(
                format!("CREATE INDEX CONCURRENTLY ON {table} ({})", columns.join(", ")),
                Lock::ShareUpdateExclusive,
                false,
            ))
            .docs(DOCS)
        })
        .collect()
}
