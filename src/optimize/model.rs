//! What one `pgopt optimize` run found, planned, changed and measured: the data behind
//! `report.json` (this structure, serialized), `report.md` and `report.html`.
//!
//! Versioned: [`SCHEMA_VERSION`] changes when a field is renamed or removed or its meaning
//! changes; fields added later carry `#[serde(default)]` so older reports still load.
//! docs/report-schema.md documents every field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The version of this structure as written to report.json.
pub const SCHEMA_VERSION: u32 = 1;

/// One optimize run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub pgopt_version: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Where it ran: host, port, database, role (never a password or a whole DSN).
    pub target: Target,
    pub mode: Mode,
    /// The five phases, in the order they ran.
    pub phases: Vec<Phase>,
    /// The server as the first snapshot saw it.
    #[serde(default)]
    pub snapshot: Option<SnapshotSummary>,
    /// analyze's findings (the first snapshot).
    #[serde(default)]
    pub findings: Vec<FindingRow>,
    /// Indexes suggested, and what became of them.
    #[serde(default)]
    pub indexes: Vec<IndexRow>,
    /// Indexes advised to drop (never dropped by optimize).
    #[serde(default)]
    pub index_drops: Vec<DropRow>,
    /// Maintenance tasks, and what became of them.
    #[serde(default)]
    pub maintenance: Vec<MaintenanceRow>,
    /// Settings: current against recommended, and what became of them.
    #[serde(default)]
    pub settings: Vec<SettingRow>,
    /// Every step the executor ran (apply only), in order, over all phases.
    #[serde(default)]
    pub steps: Vec<StepRow>,
    /// The journals the steps were written to (one per phase that changed something); each
    /// undoes its phase with `pgopt tune --rollback FILE` / `pgopt indexes --rollback FILE`.
    #[serde(default)]
    pub journals: Vec<JournalRef>,
    /// Top statements by total time (pg_stat_statements), before the changes.
    #[serde(default)]
    pub top_statements: Vec<StatementRow>,
    /// The benchmark before the changes, and after them (apply only).
    #[serde(default)]
    pub bench_before: Option<BenchSummary>,
    #[serde(default)]
    pub bench_after: Option<BenchSummary>,
    /// Set when the run was interrupted (Ctrl-C): the phase and step it stopped at.
    #[serde(default)]
    pub interrupted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub server_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Plans, changes nothing.
    DryRun,
    /// Plans and applies.
    Apply,
    /// `--quick`: analysis, index diagnostics and settings only; no what-if costing, no
    /// benchmark; changes nothing.
    Quick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseName {
    Analyze,
    Indexes,
    Maintenance,
    Settings,
    Performance,
}

impl PhaseName {
    pub const ALL: [PhaseName; 5] = [
        PhaseName::Analyze,
        PhaseName::Indexes,
        PhaseName::Maintenance,
        PhaseName::Settings,
        PhaseName::Performance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Analyze => "analyze",
            PhaseName::Indexes => "indexes",
            PhaseName::Maintenance => "maintenance",
            PhaseName::Settings => "settings",
            PhaseName::Performance => "performance",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Done,
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: PhaseName,
    pub status: Status,
    /// Skipped: why. Failed: the error and what to do.
    #[serde(default)]
    pub reason: Option<String>,
    /// One line: what it found or did (`3 indexes suggested, 3 built`).
    pub summary: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub collected_at: DateTime<Utc>,
    pub database_size_bytes: Option<i64>,
    pub tables: usize,
    pub indexes: usize,
    /// Shared buffers hits / (hits + reads), this database; None when nothing was read.
    pub cache_hit_ratio: Option<f64>,
    pub connections: Option<i64>,
    pub max_connections: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRow {
    pub rule: String,
    /// info, warning or critical.
    pub severity: String,
    pub object: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRow {
    pub table: String,
    pub ddl: String,
    /// Estimated size.
    pub size_bytes: i64,
    /// Workload cost (planner units) of the statements it helps, before and after.
    pub cost_before: f64,
    pub cost_after: f64,
    /// planned, done, skipped or failed.
    pub outcome: String,
    /// Measured (EXPLAIN ANALYZE, ms) time of the statements it helps, where measured.
    #[serde(default)]
    pub measured_before_ms: Option<f64>,
    #[serde(default)]
    pub measured_after_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropRow {
    pub index: String,
    pub reason: String,
    pub size_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceRow {
    /// vacuum, analyze, freeze or reindex.
    pub kind: String,
    pub object: String,
    pub reason: String,
    pub sql: String,
    /// planned, done, skipped or failed (with the reason).
    pub outcome: String,
    #[serde(default)]
    pub seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingRow {
    pub name: String,
    pub current: String,
    pub recommended: String,
    pub why: String,
    pub needs_restart: bool,
    /// planned, done, skipped (and why, e.g. waits for a restart) or failed.
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub phase: PhaseName,
    pub what: String,
    /// done, skipped, failed, undone, or started (interrupted).
    pub state: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRef {
    pub phase: PhaseName,
    pub path: String,
    /// The command that undoes it.
    pub rollback: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementRow {
    pub query: String,
    pub calls: i64,
    pub total_ms: f64,
    pub mean_ms: f64,
}

/// One benchmark run, summarized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSummary {
    pub workload: String,
    pub clients: usize,
    pub duration_s: f64,
    pub transactions: u64,
    pub errors: u64,
    pub throughput_tps: f64,
    pub latency: Latency,
    /// Per operation (script), in the workload's order.
    pub operations: Vec<Operation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    pub throughput_tps: f64,
    pub latency: Latency,
}

/// Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl From<&crate::bench::result::Latency> for Latency {
    fn from(l: &crate::bench::result::Latency) -> Self {
        Latency {
            p50_ms: l.p50_ms,
            p90_ms: l.p90_ms,
            p99_ms: l.p99_ms,
            p999_ms: l.p999_ms,
            max_ms: l.max_ms,
            mean_ms: l.mean_ms,
        }
    }
}

impl From<&crate::bench::result::BenchResult> for BenchSummary {
    fn from(r: &crate::bench::result::BenchResult) -> Self {
        BenchSummary {
            workload: r.workload.clone(),
            clients: r.clients,
            duration_s: r.duration_s,
            transactions: r.transactions,
            errors: r.errors,
            throughput_tps: r.throughput_tps,
            latency: (&r.latency).into(),
            operations: r
                .scripts
                .iter()
                .map(|s| Operation {
                    name: s.name.clone(),
                    count: s.count,
                    errors: s.errors.values().sum(),
                    throughput_tps: s.throughput_tps,
                    latency: (&s.latency).into(),
                })
                .collect(),
        }
    }
}

impl Report {
    /// `done/total` phases, as ACGS reported "4/5 phases".
    pub fn success_rate(&self) -> (usize, usize) {
        let done = self
            .phases
            .iter()
            .filter(|p| p.status == Status::Done)
            .count();
        (done, self.phases.len())
    }
}
