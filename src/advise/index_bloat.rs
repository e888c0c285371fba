//! Btree indexes much larger than their entries need: low leaf density after deletes and
//! updates (VACUUM empties entries but rarely gives whole pages back).
//!
//! Fires when the wasted bytes reach `index_bloat_min_wasted_bytes` AND the wasted share
//! reaches `index_bloat_min_wasted_ratio`, from pgstatindex when measured, else from the
//! btree estimate (the leaves are built 90 % full by default; that share is not waste).
//! Partial and expression indexes have no estimate: an info finding says so. With dead
//! tuples still to vacuum on the table, VACUUM comes first; when the table itself is
//! advised a rewrite, that rebuilds the index too. An index another rule advises to drop
//! (unused, duplicate, redundant) gets no bloat finding: the drop frees all of it.

use super::table_bloat::{
    dead_tuples_to_vacuum, figure, judged, rewrite_advised, unknown, Judged, Unknown,
};
use super::{bytes, num, pct, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::{Lock, Step};
use crate::snapshot::{RelationBloat, Snapshot};

pub const RULE: &str = "index_bloat";
const DOCS: &str = "https://www.postgresql.org/docs/current/sql-reindex.html";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(b) = &snap.bloat else {
        return Vec::new();
    };
    let dropped = dropped_indexes(snap, th);
    b.indexes
        .iter()
        .filter(|r| !dropped.contains(&r.qualified_name()))
        .filter_map(|r| finding(snap, th, r))
        .collect()
}

/// Indexes another rule advises to drop (unused, duplicate, redundant): dropping one frees
/// all of it, so its bloat is not advised on (a rebuild of an index being dropped would be
/// opposite advice).
fn dropped_indexes(snap: &Snapshot, th: &Thresholds) -> std::collections::HashSet<String> {
    super::unused_indexes::check(snap, th)
        .into_iter()
        .chain(super::duplicate_indexes::check(snap, th))
        .filter(|f| {
            f.sql
                .as_deref()
                .is_some_and(|s| s.trim_start().to_ascii_uppercase().starts_with("DROP "))
        })
        .map(|f| f.object)
        .collect()
}

fn finding(snap: &Snapshot, th: &Thresholds, r: &RelationBloat) -> Option<Finding> {
    let index = r.index.as_deref()?;
    let name = QualifiedName::new(&r.schema, index);
    let table = QualifiedName::new(&r.schema, &r.table);
    let object = r.qualified_name();
    let Some((f, method)) = figure(r, "pgstatindex") else {
        return unknown(Unknown {
            rule: RULE,
            docs: DOCS,
            kind: "btree index",
            object: &object,
            r,
            min_bytes: th.index_bloat_min_wasted_bytes,
            next_step: "CREATE EXTENSION pgstattuple so pgopt measures it with pgstatindex (it reads the whole index); for a plain index, ANALYZE its table",
        });
    };
    let (mut finding, how) = judged(
        snap,
        Judged {
            rule: RULE,
            docs: DOCS,
            object: &object,
            r,
            f,
            method,
            min_bytes: th.index_bloat_min_wasted_bytes,
            min_ratio: th.index_bloat_min_wasted_ratio,
            analyze_what:
                "the last ANALYZE of its table, so this one may be far off: ANALYZE the table",
        },
    )?;
    let waste = format!(
        "btree index {object} on {}.{} wastes {}, {} of its {} ({how})",
        r.schema,
        r.table,
        bytes(f.wasted_bytes),
        pct(f.wasted_ratio),
        bytes(r.size_bytes)
    );
    if let Some((dead, threshold)) = dead_tuples_to_vacuum(snap, &r.schema, &r.table) {
        finding.severity = Severity::Info;
        finding.message = format!(
            "{waste}; but its table has {dead} dead tuples still to vacuum (past its autovacuum threshold of {threshold:.0}), whose entries are part of it: no rebuild advised before a VACUUM"
        );
        return Some(
            finding
                .evidence("n_dead_tup", dead)
                .evidence("dead_tuples_threshold", num(threshold))
                .next_step("VACUUM the table first, then look at the index's bloat again")
                .fix(Step::vacuum(&table, "ANALYZE")),
        );
    }
    if rewrite_advised(snap, th, &r.schema, &r.table) {
        finding.severity = Severity::Info;
        finding.message = format!(
            "{waste}; its table is advised a rewrite (table_bloat), which rebuilds this index too"
        );
        return Some(finding.next_step(
            "Rewrite the table as the table_bloat finding says; rebuild this index on its own only if the table is left as it is",
        ).fix(Step::reindex(&name)));
    }
    let concurrently = snap
        .server
        .as_ref()
        .is_none_or(|s| s.version_num >= 120_000);
    finding.message = format!(
        "{waste} (at least {} and {} are reported)",
        bytes(th.index_bloat_min_wasted_bytes as i64),
        pct(th.index_bloat_min_wasted_ratio)
    );
    Some(if concurrently {
        finding
            .next_step(
                "Rebuild it with REINDEX INDEX CONCURRENTLY (PostgreSQL 12+): it builds a new copy without blocking reads or writes, then swaps them under a brief lock; it needs free disk for the new index, cannot run inside a transaction block, and if it fails leaves an invalid copy (its name ending in _ccnew) to drop",
            )
            .fix(Step::reindex(&name))
    } else {
        finding
            .next_step(
                "Before PostgreSQL 12 there is no REINDEX CONCURRENTLY: REINDEX INDEX blocks writes to the table (and reads through the index) for the whole rebuild; instead CREATE INDEX CONCURRENTLY a copy with the same definition, then DROP INDEX CONCURRENTLY the old one (a constraint's index needs ALTER TABLE ... USING INDEX)",
            )
            .fix(
                Step::sql(format!("REINDEX INDEX {name}"), Lock::Share, true)
                    .with_caution(format!("blocks writes to {table} for the whole rebuild")),
            )
    })
}
