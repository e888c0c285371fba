//! Duplicate indexes (identical definitions) and redundant ones (keys a strict left prefix of
//! another index's keys).
//!
//! Compared from catalog columns, never from pg_get_indexdef text. Identical means same table,
//! access method, key columns, operator classes, collations, expressions, predicate and INCLUDE
//! columns. Redundant means a valid non-unique btree index whose keys, opclasses and collations
//! are a strict prefix of another valid btree index's on the same table, with the same
//! expressions and predicate, and whose INCLUDE columns the longer index also holds. Unique,
//! primary-key, exclusion and replica-identity indexes are never proposed for dropping.
//!
//! A pair is advised once, one side only: [`pairs`] is shared with the unused-index rule, which
//! leaves both sides of a pair alone, except for a wider index nobody scans whose prefix is in
//! use: then dropping the prefix would be the wrong way round, and the unused rule advises
//! dropping the wide one instead (see [`Pair::drop_covering`]).

use crate::plan::Step;
use std::collections::BTreeMap;

use super::{unused_indexes::is_protected, Finding, Severity, Thresholds};
use crate::snapshot::{Index, Snapshot};

pub const DUPLICATE_RULE: &str = "duplicate_index";
pub const REDUNDANT_RULE: &str = "redundant_index";
const DOCS: &str = "https://www.postgresql.org/docs/current/indexes-multicolumn.html";

type Signature<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [i16],
    &'a [crate::snapshot::Name],
    &'a [u32],
    Option<&'a str>,
    Option<&'a str>,
    Vec<&'a str>,
);

fn signature(idx: &Index) -> Signature<'_> {
    let mut include: Vec<&str> = idx.include_columns.iter().map(|c| c.as_str()).collect();
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

/// Two indexes of one table where one makes the other unnecessary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    /// `DUPLICATE_RULE` or `REDUNDANT_RULE`.
    pub rule: &'static str,
    /// The index that can go: a copy, or the left prefix.
    pub covered: &'a Index,
    /// The index that serves the same lookups and stays.
    pub covering: &'a Index,
}

impl Pair<'_> {
    /// The wider index has never been scanned while its prefix has: queries use the prefix,
    /// the wide one is dead weight. A DBA keeps the prefix and drops the wide one (once the
    /// statistics window says "never" means never) rather than the other way round.
    pub fn drop_covering(&self) -> bool {
        self.rule == REDUNDANT_RULE && wide_and_unscanned(self.covering, self.covered)
    }
}

fn wide_and_unscanned(covering: &Index, covered: &Index) -> bool {
    covering.idx_scan == 0
        && covered.idx_scan > 0
        && !is_protected(covering)
        && covering.constraint_name.is_none()
}

/// Whether another valid index of the table (`same_table`) is identical to `idx` or has its
/// keys as a strict left prefix: dropping `idx` is a pair's decision, never the unused rule's.
pub(crate) fn is_covered(idx: &Index, same_table: &[&Index]) -> bool {
    !idx.locked
        && same_table.iter().any(|b| {
            !std::ptr::eq(*b, idx)
                && b.is_valid
                && !b.locked
                && (signature(b) == signature(idx) || is_prefix_of(idx, b))
        })
}

/// The duplicate and redundant pairs of every table, one pair per covered index.
pub(crate) fn pairs(snap: &Snapshot) -> Vec<Pair<'_>> {
    let mut out = Vec::new();
    let by_table = super::indexes_by_table(snap);
    for indexes in by_table.groups() {
        let valid: Vec<&Index> = indexes
            .iter()
            .copied()
            .filter(|i| i.is_valid && !i.locked)
            .collect();
        // Prefixes first: an index some wider index serves goes, whichever copy it is (two
        // identical prefixes of a wider index both go, the wider one stays).
        let red = redundant(&valid);
        let prefix_goes = |i: &Index| {
            red.iter()
                .any(|p| std::ptr::eq(p.covered, i) && !p.drop_covering())
        };
        let rest: Vec<&Index> = valid.iter().copied().filter(|i| !prefix_goes(i)).collect();
        let dups = duplicates(&rest);
        let copy_goes = |i: &Index| dups.iter().any(|p| std::ptr::eq(p.covered, i));
        // A dropped copy is not also the prefix that keeps a wide unscanned index's lookups:
        // the kept copy is.
        out.extend(
            red.into_iter()
                .filter(|p| !(p.drop_covering() && copy_goes(p.covered))),
        );
        out.extend(dups);
    }
    out
}

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    pairs(snap)
        .into_iter()
        .filter_map(|p| match p.rule {
            DUPLICATE_RULE => Some(duplicate_finding(p.covered, p.covering)),
            _ if p.drop_covering() => None,
            _ => Some(redundant_finding(p.covered, p.covering)),
        })
        .collect()
}

/// Identical indexes among the valid indexes of one table.
fn duplicates<'a>(valid: &[&'a Index]) -> Vec<Pair<'a>> {
    let mut groups: BTreeMap<Signature<'a>, Vec<&'a Index>> = BTreeMap::new();
    for idx in valid {
        groups.entry(signature(idx)).or_default().push(idx);
    }
    let mut out = Vec::new();
    for mut group in groups.into_values().filter(|g| g.len() > 1) {
        // Keep the one that enforces the most, then the one queries use.
        group.sort_by(|a, b| {
            keep_rank(a)
                .cmp(&keep_rank(b))
                .then(b.idx_scan.cmp(&a.idx_scan))
                .then(a.name.cmp(&b.name))
        });
        let keep = group[0];
        out.extend(group[1..].iter().map(|dup| Pair {
            rule: DUPLICATE_RULE,
            covered: dup,
            covering: keep,
        }));
    }
    out
}

fn duplicate_finding(dup: &Index, keep: &Index) -> Finding {
    // Two identical unique indexes: dropping one loses nothing, the kept one enforces
    // the same. An index backing a constraint or the replica identity stays.
    let droppable = !dup.is_primary
        && !dup.is_exclusion
        && !dup.is_replica_identity
        && dup.constraint_name.is_none()
        && (!dup.is_unique || keep.is_unique);
    let f = Finding::new(
        DUPLICATE_RULE,
        Severity::Warning,
        dup.qualified_name(),
        format!(
            "index {} on {} is identical to {} ({} wasted)",
            dup.qualified_name(),
            dup.table_qualified_name(),
            keep.qualified_name(),
            super::size(dup.size_bytes, dup.size_estimated)
        ),
    )
    .evidence("size_bytes", dup.size_bytes)
    .evidence("size_estimated", dup.size_estimated)
    .evidence("idx_scan", dup.idx_scan)
    .evidence("duplicate_of", keep.qualified_name())
    .evidence("duplicate_of_idx_scan", keep.idx_scan)
    .evidence("definition", dup.definition.as_str())
    .evidence("duplicate_of_definition", keep.definition.as_str())
    .docs(DOCS);
    if droppable {
        f.next_step(format!(
            "Drop it and keep {}, which serves the same queries",
            keep.qualified_name()
        ))
        .fix(Step::drop_index(&dup.schema, &dup.name))
    } else {
        f.next_step(format!(
            "Both indexes enforce something (constraint or replica identity); drop the constraint that {} backs if it repeats another one",
            dup.qualified_name()
        ))
    }
}

/// Whether `b` serves every lookup `a` serves: `a`'s keys are a strict left prefix of `b`'s
/// (same opclasses and collations), same expressions and predicate, and `b` holds `a`'s
/// INCLUDE columns.
fn is_prefix_of(a: &Index, b: &Index) -> bool {
    let n = a.key_attnums.len();
    !std::ptr::eq(a, b)
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
}

/// Left-prefix indexes among the valid indexes of one table.
fn redundant<'a>(valid: &[&'a Index]) -> Vec<Pair<'a>> {
    let mut out = Vec::new();
    for a in valid {
        if a.access_method != "btree" || is_protected(a) || a.constraint_name.is_some() {
            continue;
        }
        let mut covering: Vec<&Index> = valid
            .iter()
            .copied()
            .filter(|b| is_prefix_of(a, b))
            .collect();
        // The cover named must itself stay: an index some other index covers is a candidate
        // for dropping, and so is a wide index nobody scans whose own prefix is in use. Among
        // the rest, the widest (it covers the most), then by name.
        let stays = |b: &Index| {
            let dropped_as_prefix = b.access_method == "btree"
                && !is_protected(b)
                && b.constraint_name.is_none()
                && valid.iter().any(|c| is_prefix_of(b, c));
            let dropped_as_dead_wide = valid
                .iter()
                .any(|c| is_prefix_of(c, b) && wide_and_unscanned(b, c));
            !dropped_as_prefix && !dropped_as_dead_wide
        };
        covering.retain(|b| stays(b) || wide_and_unscanned(b, a));
        covering.sort_by(|x, y| {
            stays(y)
                .cmp(&stays(x))
                .then(y.key_attnums.len().cmp(&x.key_attnums.len()))
                .then(x.name.cmp(&y.name))
        });
        if let Some(b) = covering.first() {
            out.push(Pair {
                rule: REDUNDANT_RULE,
                covered: a,
                covering: b,
            });
        }
    }
    out
}

fn redundant_finding(a: &Index, b: &Index) -> Finding {
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
            super::size(a.size_bytes, a.size_estimated)
        ),
    )
    .evidence("size_bytes", a.size_bytes)
    .evidence("size_estimated", a.size_estimated)
    .evidence("idx_scan", a.idx_scan)
    .evidence("covered_by", b.qualified_name())
    .evidence("covered_by_idx_scan", b.idx_scan)
    .evidence("key_columns", names(&a.key_columns))
    .evidence("covered_by_key_columns", names(&b.key_columns))
    .next_step(format!(
        "Drop it and keep {}, which serves the same lookups (it is somewhat larger, so check the hottest queries with EXPLAIN first)",
        b.qualified_name()
    ))
    .fix(Step::drop_index(&a.schema, &a.name))
    .docs(DOCS)
}

/// Column names as evidence (a JSON array of strings).
fn names(columns: &[crate::snapshot::Name]) -> Vec<&str> {
    columns.iter().map(|c| c.as_str()).collect()
}
