//! Invalid indexes: left behind by a failed CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY or
//! DROP INDEX CONCURRENTLY. None serves reads; what else it costs depends on its state
//! (indisready: maintained on writes; indislive: not being dropped), and the message says which.
//!
//! The rebuild statement reuses pg_get_indexdef() text: the server wrote it, with every name
//! already quoted, so it is SQL rather than a raw name.

use super::{Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::{Lock, Step};
use crate::snapshot::Snapshot;

pub const RULE: &str = "invalid_index";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY";

/// pg_get_indexdef() text (already quoted by the server) rewritten to build concurrently.
pub(crate) fn concurrent_definition(def: &str) -> String {
    for prefix in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = def.strip_prefix(prefix) {
            return format!("{prefix}CONCURRENTLY {rest}");
        }
    }
    def.to_string()
}

/// What an invalid index costs, by its pg_index flags (indisready: maintained on writes;
/// indislive: not being dropped).
fn state(is_ready: bool, is_live: bool) -> &'static str {
    match (is_ready, is_live) {
        (_, false) => "it is being dropped, or a DROP INDEX CONCURRENTLY of it stopped half-way; it serves no reads",
        (true, true) => "it is maintained on every write and serves no reads",
        (false, true) => {
            "it is not yet maintained on writes and serves no reads (a CREATE INDEX CONCURRENTLY still in its first phase, or one that failed there); it takes a name and catalog space"
        }
    }
}

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    snap.indexes
        .iter()
        .filter(|idx| !idx.is_valid)
        .map(|idx| {
            let name = QualifiedName::new(&idx.schema, &idx.name);
            let concurrent_reindex = snap
                .server
                .as_ref()
                .is_none_or(|s| s.version_num >= 120_000);
            let (step, sql) = if !idx.is_live {
                (
                    "A DROP INDEX CONCURRENTLY of it was started and did not finish: unless it is still running, finish the drop",
                    vec![Step::sql(
                        format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"),
                        Lock::ShareUpdateExclusive,
                        false,
                    )],
                )
            } else if idx.constraint_name.is_some() && concurrent_reindex {
                (
                    "It backs a constraint, so rebuild it in place, unless a REINDEX CONCURRENTLY of it is still running",
                    vec![Step::reindex(&name)],
                )
            } else if idx.constraint_name.is_some() {
                (
                    "It backs a constraint, so rebuild it in place; before PostgreSQL 12 REINDEX locks out writes to the table, so run it in a quiet window",
                    vec![Step::sql(format!("REINDEX INDEX {name}"), Lock::Share, true)],
                )
            } else {
                (
                    "Unless a CREATE INDEX CONCURRENTLY of it is still running, drop it and build it again",
                    vec![
                        Step::drop_index(&idx.schema, &idx.name),
                        Step::sql(
                            concurrent_definition(idx.definition.trim_end_matches(';')),
                            Lock::ShareUpdateExclusive,
                            false,
                        ),
                    ],
                )
            };
            Finding::new(
                RULE,
                Severity::Warning,
                idx.qualified_name(),
                format!(
                    "index {} on {} is invalid ({}): {}",
                    idx.qualified_name(),
                    idx.table_qualified_name(),
                    super::size(idx.size_bytes, idx.size_estimated),
                    state(idx.is_ready, idx.is_live)
                ),
            )
            .evidence("size_bytes", idx.size_bytes)
            .evidence("size_estimated", idx.size_estimated)
            .evidence("is_valid", idx.is_valid)
            .evidence("is_ready", idx.is_ready)
            .evidence("is_live", idx.is_live)
            .evidence("definition", idx.definition.as_str())
            .next_step(step)
            .fixes(sql)
            .docs(DOCS)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::concurrent_definition;

    #[test]
    fn definitions_become_concurrent() {
        assert_eq!(
            concurrent_definition("CREATE INDEX i ON public.t USING btree (a)"),
            "CREATE INDEX CONCURRENTLY i ON public.t USING btree (a)"
        );
        assert_eq!(
            concurrent_definition("CREATE UNIQUE INDEX i ON public.t USING btree (a)"),
            "CREATE UNIQUE INDEX CONCURRENTLY i ON public.t USING btree (a)"
        );
    }
}
