//! pg_stat_statements missing: without it pgopt cannot say which statements cost the most.
//!
//! Not preloaded (shared_preload_libraries) needs a restart; preloaded but not created in this
//! database needs CREATE EXTENSION. When the statements section was collected the extension
//! is evidently there, and nothing is reported.

use super::{Finding, Severity, Thresholds};
use crate::ident::quote_literal;
use crate::plan::{Lock, Step};
use crate::snapshot::{SectionState, Snapshot};

pub const NOT_PRELOADED_RULE: &str = "pg_stat_statements_not_preloaded";
pub const NOT_INSTALLED_RULE: &str = "pg_stat_statements_not_installed";
const DOCS: &str = "https://www.postgresql.org/docs/current/pgstatstatements.html";
const EXT: &str = "pg_stat_statements";

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    if snap.statements.is_some() {
        return Vec::new();
    }
    // Without extension data (that section failed) we cannot tell: say nothing.
    if snap
        .section("extensions")
        .is_some_and(|s| s.state != SectionState::Collected)
    {
        return Vec::new();
    }
    let skipped = snap
        .section("statements")
        .filter(|s| s.state != SectionState::Collected)
        .and_then(|s| s.reason.clone());

    let from_setting: Vec<String> = snap
        .setting("shared_preload_libraries")
        .map(|s| {
            s.setting
                .split(',')
                .map(|l| l.trim().trim_matches('"').to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let preloaded = snap.extensions.is_preloaded(EXT) || from_setting.iter().any(|l| l == EXT);
    let installed = snap.extensions.is_installed(EXT);

    let current: Vec<String> = if snap.extensions.preloaded.is_empty() {
        from_setting
    } else {
        snap.extensions.preloaded.clone()
    };
    let mut out = Vec::new();
    if !preloaded {
        let mut libs = current.clone();
        libs.push(EXT.to_string());
        out.push(
            Finding::new(
                NOT_PRELOADED_RULE,
                Severity::Warning,
                "server",
                "pg_stat_statements is not in shared_preload_libraries: per-statement timings are not recorded",
            )
            .evidence("shared_preload_libraries", current)
            .evidence("statements_section_reason", skipped.clone())
            .next_step(
                "Add pg_stat_statements to shared_preload_libraries and restart the server, then CREATE EXTENSION pg_stat_statements in this database",
            )
            .fix(Step::sql(
                format!(
                    "ALTER SYSTEM SET shared_preload_libraries = {}",
                    quote_literal(&libs.join(", "))
                ),
                Lock::None,
                false,
            ))
            .docs(DOCS),
        );
    }
    if !installed {
        out.push(
            Finding::new(
                NOT_INSTALLED_RULE,
                Severity::Warning,
                format!("database {}", snap.target.database),
                format!(
                    "the pg_stat_statements extension is not created in database {}",
                    snap.target.database
                ),
            )
            .evidence("installed", false)
            .evidence("preloaded", preloaded)
            .evidence("statements_section_reason", skipped)
            .next_step(if preloaded {
                "Run CREATE EXTENSION pg_stat_statements in this database"
            } else {
                "After preloading it (see pg_stat_statements_not_preloaded), run CREATE EXTENSION pg_stat_statements in this database"
            })
            .fix(Step::sql(
                "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
                Lock::None,
                true,
            ))
            .docs(DOCS),
        );
    }
    out
}
