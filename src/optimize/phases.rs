//! The pure parts of `pgopt optimize`: what each phase's advice looks like in the report, how
//! an executor step's end reads, which phases depend on which, and which benchmark runs.
//! No I/O: [`super::run`] does the talking to the server and hands the answers in here.

use crate::advise::Finding;
use crate::apply::{StepReport, StepState};
use crate::indexes::model::{Advice as IndexAdvice, DropSuggestion};
use crate::maintain::Advice as MaintenanceAdvice;
use crate::snapshot::Snapshot;
use crate::tune::advice::Recommendation;

use super::model::{
    DropRow, FindingRow, IndexRow, MaintenanceRow, PhaseName, SettingRow, SnapshotSummary,
    StatementRow, Status,
};

/// The reason the performance phase gives in a dry run.
pub const BENCH_NEEDS_APPLY: &str = "a benchmark changes the statistics; run with --apply";
/// The reason of the phases `--quick` leaves out.
pub const QUICK_SKIPS: &str = "--quick: no maintenance advice, what-if costing or benchmark";
/// What a setting that waits for a restart says instead of being applied.
pub const WAITS_FOR_RESTART: &str = "waits for a restart: pgopt tune --apply --restart";

/// How many statements of pg_stat_statements the report lists.
pub const TOP_STATEMENTS: usize = 10;

/// The server as the snapshot saw it, in a few figures.
pub fn snapshot_summary(snap: &Snapshot) -> SnapshotSummary {
    let db = snap
        .databases
        .iter()
        .find(|d| d.name == snap.target.database);
    let cache_hit_ratio = db.and_then(|d| {
        let total = d.blks_hit + d.blks_read;
        (total > 0).then(|| d.blks_hit as f64 / total as f64)
    });
    let database_size_bytes = snap.server.as_ref().and_then(|s| {
        s.database_sizes
            .iter()
            .find(|d| d.name == snap.target.database)
            .map(|d| d.size_bytes)
    });
    SnapshotSummary {
        collected_at: snap.collected_at,
        database_size_bytes,
        tables: snap.tables.len(),
        indexes: snap.indexes.len(),
        cache_hit_ratio,
        connections: snap.activity.as_ref().map(|a| a.total_connections),
        max_connections: snap.activity.as_ref().map(|a| a.max_connections),
    }
}

pub fn finding_rows(findings: &[Finding]) -> Vec<FindingRow> {
    findings
        .iter()
        .map(|f| FindingRow {
            rule: f.rule.clone(),
            severity: f.severity.as_str().to_string(),
            object: f.object.clone(),
            message: f.message.clone(),
        })
        .collect()
}

/// One line for the analyze phase: `12 findings: 1 critical, 3 warnings, 8 info`.
pub fn findings_summary(findings: &[Finding]) -> String {
    use crate::advise::Severity;
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    format!(
        "{} findings: {} critical, {} warnings, {} info",
        findings.len(),
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    )
}

/// The statements with the most total time, most first.
pub fn top_statements(snap: &Snapshot, n: usize) -> Vec<StatementRow> {
    let Some(st) = &snap.statements else {
        return Vec::new();
    };
    let mut top: Vec<_> = st.top.iter().collect();
    top.sort_by(|a, b| b.total_exec_time_ms.total_cmp(&a.total_exec_time_ms));
    top.into_iter()
        .take(n)
        .map(|s| StatementRow {
            query: s.query.clone(),
            calls: s.calls,
            total_ms: s.total_exec_time_ms,
            mean_ms: s.mean_exec_time_ms,
        })
        .collect()
}

/// The suggested indexes, each `planned`, with the estimated cost of the statements it helps.
pub fn index_rows(advice: &IndexAdvice) -> Vec<IndexRow> {
    advice
        .suggestions
        .iter()
        .map(|s| IndexRow {
            table: format!("{}.{}", s.candidate.schema, s.candidate.table),
            ddl: s.ddl.clone(),
            size_bytes: s.size_bytes,
            cost_before: s.helps.iter().map(|h| h.cost_before * h.calls as f64).sum(),
            cost_after: s.helps.iter().map(|h| h.cost_after * h.calls as f64).sum(),
            outcome: "planned".to_string(),
            measured_before_ms: None,
            measured_after_ms: None,
        })
        .collect()
}

pub fn drop_rows(drops: &[DropSuggestion]) -> Vec<DropRow> {
    drops
        .iter()
        .map(|d| DropRow {
            index: d.index.clone(),
            reason: d.message.clone(),
            size_bytes: d.size_bytes,
        })
        .collect()
}

/// The maintenance tasks, each `planned`, with its statements.
pub fn maintenance_rows(advice: &MaintenanceAdvice) -> Vec<MaintenanceRow> {
    advice
        .tasks
        .iter()
        .map(|t| MaintenanceRow {
            kind: t.kind.as_str().to_string(),
            object: t.object.clone(),
            reason: t.reason.clone(),
            sql: crate::plan::script(&t.steps).trim_end().to_string(),
            outcome: "planned".to_string(),
            seconds: None,
        })
        .collect()
}

/// The settings to change, current against recommended: `planned`, or (restart-only ones)
/// why optimize leaves them; settings the server does not know are left out.
pub fn setting_rows(rec: &Recommendation) -> Vec<SettingRow> {
    rec.rows
        .iter()
        .filter(|r| r.change)
        .map(|r| SettingRow {
            name: r.name.clone(),
            current: r.current.clone().unwrap_or_default(),
            recommended: r.recommended_display.clone(),
            why: r.reason.clone(),
            needs_restart: r.needs_restart,
            outcome: if r.needs_restart {
                WAITS_FOR_RESTART.to_string()
            } else {
                "planned".to_string()
            },
        })
        .collect()
}

/// (name, value) of the settings optimize applies: those that differ and take effect on a
/// reload, never one that waits for a restart.
pub fn reload_changes(rec: &Recommendation) -> Vec<(&str, &str)> {
    rec.rows
        .iter()
        .filter(|r| r.change && !r.needs_restart && r.current.is_some())
        .map(|r| (r.name.as_str(), r.recommended.as_str()))
        .collect()
}

/// How one executor step ended, for a report row: `done`, `skipped: why`, `failed: why`.
pub fn step_outcome(s: &StepReport) -> String {
    let state = match s.state {
        StepState::Done => "done",
        StepState::Skipped => "skipped",
        StepState::Failed => "failed",
        StepState::Undone => "undone",
        StepState::Started => "interrupted",
        StepState::Pending => "not run",
    };
    match &s.reason {
        Some(r) => format!("{state}: {r}"),
        None => state.to_string(),
    }
}

/// Why `phase` cannot run given the analyze phase's status: maintenance and settings are
/// advised from analyze's snapshot; indexes and performance read the server themselves.
pub fn blocked_by(phase: PhaseName, analyze: Status) -> Option<String> {
    match phase {
        PhaseName::Maintenance | PhaseName::Settings if analyze != Status::Done => Some(
            "needs the analyze phase's snapshot, which failed: fix that error and run again"
                .to_string(),
        ),
        _ => None,
    }
}

/// Which workload the performance phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchChoice {
    /// The ACGS governance operations (the governance schema is there and writable).
    Governance,
    /// `SELECT 1`: no governance schema (or no right to write it); read-only, touches no table.
    Select1,
}

pub fn bench_choice(governance_tables: bool, may_write: bool) -> (BenchChoice, Option<String>) {
    match (governance_tables, may_write) {
        (true, true) => (BenchChoice::Governance, None),
        (true, false) => (
            BenchChoice::Select1,
            Some(
                "the role may not write the governance tables: the round-trip floor (SELECT 1) \
                 was measured instead"
                    .to_string(),
            ),
        ),
        (false, _) => (
            BenchChoice::Select1,
            Some(
                "no governance schema: the round-trip floor (SELECT 1) was measured; bench your \
                 own workload with pgopt bench --workload FILE.sql"
                    .to_string(),
            ),
        ),
    }
}

/// `pgopt-optimize-indexes-20261205T061500.123Z.json`.
pub fn journal_name(phase: PhaseName, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "pgopt-optimize-{}-{}.json",
        phase.as_str(),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// The command that undoes a phase's journal.
pub fn rollback_command(phase: PhaseName, journal: &str) -> String {
    match phase {
        PhaseName::Indexes => format!("pgopt indexes --rollback {journal}"),
        PhaseName::Settings => format!("pgopt tune --rollback {journal}"),
        _ => "nothing to undo: VACUUM, ANALYZE and REINDEX change no definition".to_string(),
    }
}

/// `1.85x` (after / before), or `-` when before is zero; a ratio under 0.1 keeps two
/// significant digits (`0.0044x`, not `0.00x`).
pub fn ratio(after: f64, before: f64) -> String {
    if before > 0.0 && after.is_finite() {
        let r = after / before;
        if r >= 0.1 || r == 0.0 {
            format!("{r:.2}x")
        } else {
            let decimals = (1.0 - r.log10().floor()) as usize;
            format!("{r:.decimals$}x")
        }
    } else {
        "-".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn step(state: StepState, reason: Option<&str>) -> StepReport {
        StepReport {
            index: 0,
            what: "CREATE INDEX".into(),
            state,
            reason: reason.map(str::to_string),
            pending_restart: false,
            dropped_leftover: false,
            elapsed: Duration::from_millis(5),
        }
    }

    #[test]
    fn step_outcomes_keep_their_reason() {
        assert_eq!(step_outcome(&step(StepState::Done, None)), "done");
        assert_eq!(
            step_outcome(&step(
                StepState::Skipped,
                Some("an equivalent index exists")
            )),
            "skipped: an equivalent index exists"
        );
        assert_eq!(step_outcome(&step(StepState::Started, None)), "interrupted");
    }

    #[test]
    fn maintenance_and_settings_depend_on_analyze_and_the_others_do_not() {
        for p in PhaseName::ALL {
            let blocked = blocked_by(p, Status::Failed).is_some();
            assert_eq!(
                blocked,
                matches!(p, PhaseName::Maintenance | PhaseName::Settings),
                "{p:?}"
            );
            assert!(blocked_by(p, Status::Done).is_none());
        }
    }

    #[test]
    fn the_benchmark_writes_only_where_the_governance_tables_are_writable() {
        assert_eq!(bench_choice(true, true), (BenchChoice::Governance, None));
        let (c, why) = bench_choice(true, false);
        assert_eq!(c, BenchChoice::Select1);
        assert!(why.unwrap().contains("may not write"));
        let (c, why) = bench_choice(false, true);
        assert_eq!(c, BenchChoice::Select1);
        assert!(why.unwrap().contains("no governance schema"));
    }

    #[test]
    fn restart_only_settings_are_listed_not_applied() {
        use crate::tune::compare::Comparison;
        let row = |name: &str, change: bool, restart: bool, current: Option<&str>| Comparison {
            name: name.into(),
            current: current.map(str::to_string),
            recommended: "1".into(),
            recommended_display: "1".into(),
            change,
            needs_restart: restart,
            reason: "why".into(),
        };
        let rec = Recommendation {
            method: crate::tune::Method::Pgopt,
            output: crate::tune::pgtune::pgtune(
                &crate::tune::TuneInput::validate(&crate::tune::RawInput {
                    memory: Some("4GB".into()),
                    cpus: Some(2),
                    ..Default::default()
                })
                .unwrap(),
            ),
            changes: Vec::new(),
            objects: Vec::new(),
            rows: vec![
                row("shared_buffers", true, true, Some("128MB")),
                row("work_mem", true, false, Some("4MB")),
                row("random_page_cost", false, false, Some("1.1")),
                row("no_such_setting", false, false, None),
            ],
        };
        assert_eq!(reload_changes(&rec), vec![("work_mem", "1")]);
        let rows = setting_rows(&rec);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["shared_buffers", "work_mem"]);
        assert_eq!(rows[0].outcome, WAITS_FOR_RESTART);
        assert_eq!(rows[1].outcome, "planned");
    }

    #[test]
    fn journals_are_named_per_phase_and_undone_by_their_command() {
        let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 5, 6, 15, 0).unwrap();
        assert_eq!(
            journal_name(PhaseName::Indexes, at),
            "pgopt-optimize-indexes-20261205T061500.000Z.json"
        );
        assert_eq!(
            rollback_command(PhaseName::Settings, "j.json"),
            "pgopt tune --rollback j.json"
        );
        assert!(rollback_command(PhaseName::Maintenance, "j.json").starts_with("nothing"));
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(3.0, 0.0), "-");
        assert_eq!(ratio(0.199, 44.767), "0.0044x");
        assert_eq!(ratio(0.5, 10.0), "0.050x");
    }
}
