//! Rows inserted since the last VACUUM far past the insert threshold: the visibility map and
//! the freeze work lag behind (a bulk load, an append-only table).
//!
//! Since PostgreSQL 13 autovacuum also vacuums for inserts, from
//! autovacuum_vacuum_insert_threshold + autovacuum_vacuum_insert_scale_factor × reltuples
//! (reloptions winning; a threshold of -1 turns it off). Without that vacuum, pages are not
//! marked all-visible (index-only scans fetch from the heap) and the rows are frozen later,
//! all at once, by an anti-wraparound vacuum. Reported when n_ins_since_vacuum exceeds
//! `vacuum_inserts_factor` × that threshold and the last vacuum is older than
//! `vacuum_overdue_seconds` (or never happened). A table whose dead tuples are already past
//! their threshold is left to `autovacuum_behind`, which advises the same VACUUM.

use super::dead_tuples::autovacuum_param;
use super::table_bloat::dead_tuples_to_vacuum;
use super::{duration, has_own_storage, num, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::Step;
use crate::snapshot::Snapshot;

pub const RULE: &str = "vacuum_after_inserts";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-VISIBILITY-MAP";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    // The insert threshold exists from PostgreSQL 13 on.
    if snap
        .server
        .as_ref()
        .is_some_and(|s| s.version_num < 130_000)
    {
        return Vec::new();
    }
    snap.tables
        .iter()
        .filter(|t| has_own_storage(&t.kind) && t.kind != "p")
        .filter_map(|t| {
            let (base, _) =
                autovacuum_param(snap, t, "autovacuum_vacuum_insert_threshold", 1000.0);
            if base < 0.0 {
                return None;
            }
            let (scale, scale_src) =
                autovacuum_param(snap, t, "autovacuum_vacuum_insert_scale_factor", 0.2);
            let threshold = base + scale * t.reltuples.max(0.0);
            let limit = th.vacuum_inserts_factor * threshold;
            if (t.n_ins_since_vacuum as f64) <= limit {
                return None;
            }
            if dead_tuples_to_vacuum(snap, &t.schema, &t.name).is_some() {
                return None;
            }
            let since = t
                .last_any_vacuum()
                .map(|l| (snap.collected_at - l).num_milliseconds() as f64 / 1000.0);
            if since.is_some_and(|s| s < th.vacuum_overdue_seconds) {
                return None;
            }
            let when = match since {
                Some(s) => format!("last vacuumed {} ago", duration(s)),
                None => "never vacuumed".to_string(),
            };
            let message = format!(
                "table {} has {} rows inserted since its last vacuum, over {:.0} ({}× its insert \
                 vacuum threshold of {:.0}), and was {when}: its pages are not marked \
                 all-visible (index-only scans read the heap) and its rows wait to be frozen",
                t.qualified_name(),
                t.n_ins_since_vacuum,
                limit,
                th.vacuum_inserts_factor,
                threshold
            );
            Some(
                Finding::new(RULE, Severity::Info, t.qualified_name(), message)
                    .evidence("n_ins_since_vacuum", t.n_ins_since_vacuum)
                    .evidence("n_live_tup", t.n_live_tup)
                    .evidence("reltuples", num(t.reltuples))
                    .evidence("insert_threshold_tuples", num(threshold))
                    .evidence("limit_tuples", num(limit))
                    .evidence("autovacuum_vacuum_insert_scale_factor", num(scale))
                    .evidence("autovacuum_vacuum_insert_scale_factor_source", scale_src)
                    .evidence("last_vacuum_age_seconds", since.map(num))
                    .next_step(
                        "Vacuum it now (after a bulk load, VACUUM (ANALYZE) sets the visibility map and the statistics at once); if it keeps falling behind, lower the table's autovacuum_vacuum_insert_scale_factor",
                    )
                    .fix(Step::vacuum(&QualifiedName::new(&t.schema, &t.name), "ANALYZE"))
                    .docs(DOCS),
            )
        })
        .collect()
}
