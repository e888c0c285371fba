//! Tables holding much more space than their rows need: free space VACUUM made reusable but
//! did not give back (after a mass DELETE the file keeps its size).
//!
//! Fires when the wasted bytes reach `table_bloat_min_wasted_bytes` AND the wasted share
//! reaches `table_bloat_min_wasted_ratio`. The figure is pgstattuple's when it was measured,
//! else the row-width estimate (within a few points of pgstattuple on fresh statistics, far
//! off on stale ones); the finding says which. An estimate that cannot be trusted gives no
//! number: an info finding says why and how to get one. A table with dead tuples still to
//! vacuum (past its autovacuum threshold) is never advised a rewrite: VACUUM first, as
//! the dead tuples finding says, then measure again.

use super::dead_tuples::autovacuum_param;
use super::{bytes, num, pct, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::{Lock, Step};
use crate::snapshot::{BloatFigure, RelationBloat, Snapshot};

pub const RULE: &str = "table_bloat";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY";

/// The accuracy the finding states for an estimate.
pub(crate) const ESTIMATE_NOTE: &str = "estimated from the planner statistics (row widths in pg_stats): within a few points of pgstattuple when ANALYZE is recent, tens of points off when it is stale";

/// The figure a rule judges: measured when there is one, else the trustworthy estimate; with
/// how it was obtained.
pub(crate) fn figure<'a>(
    rel: &'a RelationBloat,
    measured_with: &'static str,
) -> Option<(&'a BloatFigure, &'static str)> {
    match (&rel.measured, &rel.estimate) {
        (Some(m), _) => Some((m, measured_with)),
        (None, Some(e)) => Some((e, "estimate")),
        (None, None) => None,
    }
}

/// Dead tuples of `schema.table` past its autovacuum threshold: (n_dead_tup, threshold).
pub(crate) fn dead_tuples_to_vacuum(
    snap: &Snapshot,
    schema: &str,
    table: &str,
) -> Option<(i64, f64)> {
    let t = snap
        .tables
        .iter()
        .find(|t| t.schema == schema && t.name == table)?;
    let (base, _) = autovacuum_param(snap, t, "autovacuum_vacuum_threshold", 50.0);
    let (scale, _) = autovacuum_param(snap, t, "autovacuum_vacuum_scale_factor", 0.2);
    let threshold = base + scale * t.reltuples.max(0.0);
    ((t.n_dead_tup as f64) > threshold).then_some((t.n_dead_tup, threshold))
}

/// Rows changed since the table's last ANALYZE when they are over a fifth of it: the
/// statistics an estimate rests on are stale.
pub(crate) fn stale_changes(snap: &Snapshot, schema: &str, table: &str) -> Option<i64> {
    let t = snap
        .tables
        .iter()
        .find(|t| t.schema == schema && t.name == table)?;
    (t.n_mod_since_analyze as f64 > 0.2 * t.reltuples.max(0.0)).then_some(t.n_mod_since_analyze)
}

fn over(f: &BloatFigure, min_bytes: u64, min_ratio: f64) -> bool {
    f.wasted_bytes as f64 >= min_bytes as f64 && f.wasted_ratio >= min_ratio
}

/// What both bloat rules judge a figure by, and how their findings start.
pub(crate) struct Judged<'a> {
    pub rule: &'static str,
    pub docs: &'static str,
    pub object: &'a str,
    pub r: &'a RelationBloat,
    pub f: &'a BloatFigure,
    /// `estimate`, or the pgstattuple function that measured it.
    pub method: &'a str,
    pub min_bytes: u64,
    pub min_ratio: f64,
    /// What changed rows make stale and what to ANALYZE, in the stale-estimate note.
    pub analyze_what: &'a str,
}

/// A figure at or over both thresholds: the warning with the evidence both rules give, and
/// how the figure was obtained (for the message). None under a threshold.
pub(crate) fn judged(snap: &Snapshot, j: Judged<'_>) -> Option<(Finding, String)> {
    let Judged {
        rule,
        docs,
        object,
        r,
        f,
        method,
        min_bytes,
        min_ratio,
        analyze_what,
    } = j;
    if !over(f, min_bytes, min_ratio) {
        return None;
    }
    let mut how = if method == "estimate" {
        ESTIMATE_NOTE.to_string()
    } else {
        format!("measured with {method}")
    };
    let stale = (method == "estimate")
        .then(|| stale_changes(snap, &r.schema, &r.table))
        .flatten();
    if let Some(changes) = stale {
        how.push_str(&format!(
            "; {changes} rows changed since {analyze_what} and look again"
        ));
    }
    let mut finding = Finding::new(rule, Severity::Warning, object, String::new())
        .evidence("size_bytes", r.size_bytes)
        .evidence("wasted_bytes", f.wasted_bytes)
        .evidence("wasted_ratio", num(f.wasted_ratio))
        .evidence("method", method)
        .evidence("fillfactor", r.fillfactor)
        .evidence("rows_changed_since_analyze", stale)
        .evidence("min_wasted_bytes", serde_json::Value::from(min_bytes))
        .evidence("min_wasted_ratio", num(min_ratio))
        .docs(docs);
    if let Some(e) = &r.estimate {
        finding = finding
            .evidence("estimated_wasted_bytes", e.wasted_bytes)
            .evidence("estimated_wasted_ratio", num(e.wasted_ratio));
    }
    Some((finding, how))
}

/// Whether this rule advises rewriting `schema.table` (the index rule defers to it).
pub(crate) fn rewrite_advised(snap: &Snapshot, th: &Thresholds, schema: &str, table: &str) -> bool {
    let Some(b) = &snap.bloat else {
        return false;
    };
    b.tables
        .iter()
        .filter(|r| r.schema == schema && r.table == table)
        .any(|r| {
            figure(r, "pgstattuple_approx").is_some_and(|(f, _)| {
                over(
                    f,
                    th.table_bloat_min_wasted_bytes,
                    th.table_bloat_min_wasted_ratio,
                )
            }) && dead_tuples_to_vacuum(snap, schema, table).is_none()
        })
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(b) = &snap.bloat else {
        return Vec::new();
    };
    b.tables
        .iter()
        .filter_map(|r| finding(snap, th, r))
        .collect()
}

/// What a relation whose bloat has no figure is reported with.
pub(crate) struct Unknown<'a> {
    pub rule: &'static str,
    pub docs: &'static str,
    /// `table` or `btree index`, for the message.
    pub kind: &'static str,
    pub object: &'a str,
    pub r: &'a RelationBloat,
    /// Smaller relations are not worth a finding without a figure.
    pub min_bytes: u64,
    pub next_step: &'static str,
}

/// The info finding for a relation big enough to matter whose estimate cannot be trusted and
/// that was not measured: it says why and claims no figure.
pub(crate) fn unknown(u: Unknown<'_>) -> Option<Finding> {
    if (u.r.size_bytes as f64) < u.min_bytes as f64 {
        return None;
    }
    let why = u.r.untrusted.as_deref().unwrap_or("no estimate");
    Some(
        Finding::new(
            u.rule,
            Severity::Info,
            u.object,
            format!(
                "bloat of {} {} ({}) is not known: its estimate cannot be trusted ({why}), and it was not measured; no figure is claimed",
                u.kind,
                u.object,
                bytes(u.r.size_bytes)
            ),
        )
        .evidence("size_bytes", u.r.size_bytes)
        .evidence("estimate_trusted", false)
        .evidence("untrusted_reason", why)
        .next_step(u.next_step)
        .docs(u.docs),
    )
}

fn finding(snap: &Snapshot, th: &Thresholds, r: &RelationBloat) -> Option<Finding> {
    let name = QualifiedName::new(&r.schema, &r.table);
    let object = r.qualified_name();
    let Some((f, method)) = figure(r, "pgstattuple_approx") else {
        // No number to judge: say so when the table is big enough to matter.
        return unknown(
            Unknown {
                rule: RULE,
                docs: DOCS,
                kind: "table",
                object: &object,
                r,
                min_bytes: th.table_bloat_min_wasted_bytes,
                next_step: "ANALYZE it (the estimate needs a pg_stats row for every column, readable by the role pgopt connects as), or CREATE EXTENSION pgstattuple so pgopt measures it",
            },
        )
        .map(|f| f.fix(Step::analyze(&name)));
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
            min_bytes: th.table_bloat_min_wasted_bytes,
            min_ratio: th.table_bloat_min_wasted_ratio,
            analyze_what: "its last ANALYZE, so this one may be far off: ANALYZE it",
        },
    )?;
    let waste = format!(
        "table {object} wastes {}, {} of its {} ({how})",
        bytes(f.wasted_bytes),
        pct(f.wasted_ratio),
        bytes(r.size_bytes)
    );
    if let Some((dead, threshold)) = dead_tuples_to_vacuum(snap, &r.schema, &r.table) {
        finding.severity = Severity::Info;
        finding.message = format!(
            "{waste}; but {dead} dead tuples are still to vacuum (past its autovacuum threshold of {threshold:.0}), and part of that space is theirs: no rewrite advised before a VACUUM"
        );
        return Some(
            finding
                .evidence("n_dead_tup", dead)
                .evidence("dead_tuples_threshold", num(threshold))
                .next_step(
                    "VACUUM it first (it makes the dead tuples' space reusable without any lock that blocks reads or writes), then look at its bloat again",
                )
                .fix(Step::vacuum(&name, "ANALYZE")),
        );
    }
    finding.message = format!(
        "{waste}: free space VACUUM made reusable but does not give back (at least {} and {} are reported)",
        bytes(th.table_bloat_min_wasted_bytes as i64),
        pct(th.table_bloat_min_wasted_ratio)
    );
    Some(
        finding
            .next_step(format!(
                "If new rows will not refill it soon, rewrite the table to give the space back: pg_repack (`pg_repack --table {name}`) rebuilds it online, holding an ACCESS EXCLUSIVE lock only briefly at the start and the end; it needs the pg_repack extension, a primary key or unique index, and free disk of the table's size plus its indexes. VACUUM FULL needs nothing installed but holds an ACCESS EXCLUSIVE lock for the whole rewrite (no reads, no writes) and also needs free disk of the table's size plus its indexes; both rebuild the table's indexes"
            ))
            .fixes(vec![
                Step::call("SET lock_timeout = '5s'").with_caution(
                    "ACCESS EXCLUSIVE lock for the whole rewrite: run it in a maintenance window",
                ),
                Step {
                    lock: Lock::AccessExclusive,
                    ..Step::vacuum(&name, "FULL, ANALYZE")
                },
            ]),
    )
}
