//! Duplicate indexes (identical definitions) and redundant ones (keys a strict left prefix of
//! another index's keys).
//!
//! Compared from catalog columns, never from pg_get_indexdef text. Identical means same table,
//! access method, key columns, operator classes, collations, expressions, predicate and INCLUDE
//! columns. Redundant means a valid non-unique btree index whose keys, opclasses and collations
//! are a strict prefix of another valid btree index's on the same table, with the same
//! expressions and predicate, and whose INCLUDE columns the longer index also holds. Unique,
//! primary-key, exclusion and replica-identity indexes are never proposed for dropping.

use std::collections::BTreeMap;

use super::{bytes, unused_indexes::is_protected, Finding, Severity, Thresholds};
use crate::db::QualifiedName;
use crate::snapshot::{Index, Snapshot};

pub const DUPLICATE_RULE: &str = "duplicate_index";
pub const REDUNDANT_RULE: &str = "redundant_index";
const DOCS: &str = "https://www.postgresql.org/docs/current/indexes-multicolumn.html";

type Signature<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [i16],
    &'a [String],
    &'a [u32],
    Option<&'a str>,
    Option<&'a str>,
    Vec<&'a str>,
);

fn signature(idx: &Index) -> Signature<'_> {
    let mut include: Vec<&str> = idx.include_columns.iter().map(String::as_str).collect();
    include.sort_unstable();
    (
        &idx.schema,
        &idx.table,
        &idx.access_method,
        &idx.key_attnums,
        &idx.opclasses,
        &idx.collations,
        idx.expressions.as_deref(),
        idx.predicate.as_deref(),
        include,
    )
}

/// Lower keeps first: the index that enforces the most is the one to keep.
fn keep_rank(idx: &Index) -> u8 {
    if idx.is_primary {
        0
    } else if idx.is_replica_identity {
        1
    } else if idx.is_exclusion {
        2
    } else if idx.constraint_name.is_some() {
        3
    } else if idx.is_unique {
        4
    } else {
        5
    }
}

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut tables: Vec<_> = super::indexes_by_table(snap).into_iter().collect();
    tables.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    for (_, indexes) in tables {
        let valid: Vec<&Index> = indexes
            .into_iter()
            .filter(|i| i.is_valid && !i.locked)
            .collect();
        out.extend(duplicates(&valid));
        out.extend(redundant(&valid));
    }
    out
}

/// Identical indexes among the valid indexes of one table.
fn duplicates(valid: &[&Index]) -> Vec<Finding> {
    let mut groups: BTreeMap<Signature<'_>, Vec<&Index>> = BTreeMap::new();
    for idx in valid {
        groups.entry(signature(idx)).or_default().push(idx);
    }
    let mut out = Vec::new();
    for mut group in groups.into_values().filter(|g| g.len() > 1) {
        group.sort_by(|a, b| keep_rank(a).cmp(&keep_rank(b)).then(a.name.cmp(&b.name)));
        let keep = group[0];
        for dup in &group[1..] {
            // Two identical unique indexes: dropping one loses nothing, the kept one enforces
            // the same. An index backing a constraint or the replica identity stays.
            let droppable = !dup.is_primary
                && !dup.is_exclusion
                && !dup.is_replica_identity
                && dup.constraint_name.is_none()
                && (!dup.is_unique || keep.is_unique);
            let mut f = Finding::new(
                DUPLICATE_RULE,
                Severity::Warning,
                dup.qualified_name(),
                format!(
                    "index {} on {} is identical to {} ({} wasted)",
                    dup.qualified_name(),
                    dup.table_qualified_name(),
                    keep.qualified_name(),
                    bytes(dup.size_bytes)
                ),
            )
            .evidence("size_bytes", dup.size_bytes)
            .evidence("idx_scan", dup.idx_scan)
            .evidence("duplicate_of", keep.qualified_name())
            .evidence("definition", dup.definition.clone())
            .evidence("duplicate_of_definition", keep.definition.clone())
            .docs(DOCS);
            if droppable {
                f = f
                    .next_step(format!(
                        "Drop it; {} serves the same queries",
                        keep.qualified_name()
                    ))
                    .sql(format!(
                        "DROP INDEX CONCURRENTLY {};",
                        QualifiedName::new(&dup.schema, &dup.name)
                    ));
            } else {
                f = f.next_step(format!(
                    "Both indexes enforce something (constraint or replica identity); drop the constraint that {} backs if it repeats another one",
                    dup.qualified_name()
                ));
            }
            out.push(f);
        }
    }
    out
}

/// Left-prefix indexes among the valid indexes of one table.
fn redundant(valid: &[&Index]) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in valid {
        if a.access_method != "btree" || is_protected(a) || a.constraint_name.is_some() {
            continue;
        }
        let n = a.key_attnums.len();
        let mut covering: Vec<&&Index> = valid
            .iter()
            .filter(|b| {
                !std::ptr::eq(**b, *a)
                    && b.schema == a.schema
                    && b.table == a.table
                    && b.access_method == a.access_method
                    && b.expressions == a.expressions
                    && b.predicate == a.predicate
                    && n > 0
                    && b.key_attnums.len() > n
                    && b.key_attnums[..n] == a.key_attnums[..]
                    && b.opclasses.get(..n) == Some(&a.opclasses[..])
                    && b.collations.get(..n) == Some(&a.collations[..])
                    && a.include_columns
                        .iter()
                        .all(|c| b.key_columns.contains(c) || b.include_columns.contains(c))
            })
            .collect();
        covering.sort_by(|x, y| x.name.cmp(&y.name));
        let Some(b) = covering.first() else {
            continue;
        };
        out.push(
            Finding::new(
                REDUNDANT_RULE,
                Severity::Warning,
                a.qualified_name(),
                format!(
                    "index {} on {} ({}) is a left prefix of {} ({}) and is redundant ({} to save)",
                    a.qualified_name(),
                    a.table_qualified_name(),
                    a.key_columns.join(", "),
                    b.qualified_name(),
                    b.key_columns.join(", "),
                    bytes(a.size_bytes)
                ),
            )
            .evidence("size_bytes", a.size_bytes)
            .evidence("idx_scan", a.idx_scan)
            .evidence("covered_by", b.qualified_name())
            .evidence("key_columns", a.key_columns.clone())
            .evidence("covered_by_key_columns", b.key_columns.clone())
            .next_step(format!(
                "Drop it; {} serves the same lookups (it is somewhat larger, so check the hottest queries with EXPLAIN first)",
                b.qualified_name()
            ))
            .sql(format!(
                "DROP INDEX CONCURRENTLY {};",
                QualifiedName::new(&a.schema, &a.name)
            ))
            .docs(DOCS),
        );
    }
    out
}
