//! optimize reports built in code: one with every field filled (and hostile names and
//! statement texts: markup, quotes, `&`, pipes, newlines), and the dry run's, with no
//! benchmark and nothing applied. A field added to the model must be added here (the struct
//! literals do not compile otherwise), which keeps the schema document's test complete.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use pgopt::optimize::model::*;

pub const HOSTILE: &str = "<script>alert('x')</script> \"q\" & | `b` *e*";

pub fn latency(p50: f64) -> Latency {
    Latency {
        p50_ms: p50,
        p90_ms: p50 * 2.0,
        p99_ms: p50 * 5.0,
        p999_ms: p50 * 9.0,
        max_ms: p50 * 20.0,
        mean_ms: p50 * 1.3,
    }
}

/// The operations of the fixture's benchmark and their p50 before the changes.
pub const OPERATIONS: [(&str, f64); 5] = [
    ("authenticate_by_email", 4.2),
    ("login_by_username", 3.9),
    ("security_events_window", 12.5),
    ("audit_trail", 25.0),
    ("<op> & \"policy\"", 0.35),
];

pub fn bench(speedup: f64, tps: f64) -> BenchSummary {
    BenchSummary {
        workload: "governance".into(),
        clients: 8,
        duration_s: 20.0,
        transactions: (tps * 20.0) as u64,
        errors: 0,
        throughput_tps: tps,
        latency: latency(3.0 / speedup),
        operations: OPERATIONS
            .iter()
            .map(|(name, p50)| Operation {
                name: name.to_string(),
                count: (tps * 4.0) as u64,
                errors: 0,
                throughput_tps: tps / 5.0,
                latency: latency(p50 / speedup),
            })
            .collect(),
    }
}

fn phase(name: PhaseName, status: Status, reason: Option<&str>, summary: &str) -> Phase {
    Phase {
        name,
        status,
        reason: reason.map(str::to_string),
        summary: summary.to_string(),
        seconds: 1.5,
    }
}

/// Every field filled, every option Some, every list non-empty.
pub fn full() -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        pgopt_version: "0.1.0".into(),
        started_at: Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap(),
        finished_at: Utc.with_ymd_and_hms(2026, 1, 15, 12, 2, 5).unwrap(),
        target: Target {
            host: "db.example".into(),
            port: 5432,
            database: "acgs<&>".into(),
            user: "pgopt".into(),
            server_version: Some("15.8".into()),
        },
        mode: Mode::Apply,
        phases: vec![
            phase(PhaseName::Analyze, Status::Done, None, "12 findings"),
            phase(
                PhaseName::Indexes,
                Status::Done,
                None,
                "3 suggested, 2 built",
            ),
            phase(
                PhaseName::Maintenance,
                Status::Failed,
                Some("permission denied for table <audit_logs>: grant MAINTAIN"),
                "",
            ),
            phase(
                PhaseName::Settings,
                Status::Done,
                None,
                "2 changed, 1 waits for a restart",
            ),
            phase(
                PhaseName::Performance,
                Status::Done,
                None,
                "before and after",
            ),
        ],
        snapshot: Some(SnapshotSummary {
            collected_at: Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 1).unwrap(),
            database_size_bytes: Some(512 * 1024 * 1024),
            tables: 7,
            indexes: 12,
            cache_hit_ratio: Some(0.987),
            connections: Some(9),
            max_connections: Some(100),
        }),
        findings: vec![
            FindingRow {
                rule: "wraparound".into(),
                severity: "critical".into(),
                object: "public.\"<users>\"".into(),
                message: format!("xid age high {HOSTILE}"),
            },
            FindingRow {
                rule: "unused_index".into(),
                severity: "warning".into(),
                object: "public.idx_old".into(),
                message: "never scanned".into(),
            },
            FindingRow {
                rule: "cache_hit".into(),
                severity: "info".into(),
                object: "acgs".into(),
                message: "cache hit ratio 98.7 %".into(),
            },
        ],
        indexes: vec![
            IndexRow {
                table: "public.users".into(),
                ddl: "CREATE INDEX CONCURRENTLY idx_users_email_active ON public.users \
                      (email) WHERE is_active"
                    .into(),
                size_bytes: 2 * 1024 * 1024,
                cost_before: 1840.0,
                cost_after: 8.3,
                outcome: "done".into(),
                measured_before_ms: Some(3.8),
                measured_after_ms: Some(0.05),
            },
            IndexRow {
                table: "public.audit_logs".into(),
                ddl: "CREATE INDEX CONCURRENTLY \"idx_<audit>&\"\"x\"\"\" ON public.audit_logs \
                      (resource_type, resource_id, action)"
                    .into(),
                size_bytes: 24 * 1024 * 1024,
                cost_before: 52000.0,
                cost_after: 12.0,
                outcome: "done".into(),
                measured_before_ms: Some(22.0),
                measured_after_ms: Some(0.4),
            },
            IndexRow {
                table: "public.policy_rules".into(),
                ddl: "CREATE INDEX CONCURRENTLY idx_policy_rules_name_active ON \
                      public.policy_rules (name) WHERE is_active"
                    .into(),
                size_bytes: 64 * 1024,
                cost_before: 30.0,
                cost_after: 8.0,
                outcome: "skipped: gain below the threshold".into(),
                measured_before_ms: Some(0.3),
                measured_after_ms: Some(0.2),
            },
        ],
        index_drops: vec![DropRow {
            index: "public.idx_old".into(),
            reason: "unused since the statistics reset".into(),
            size_bytes: 8 * 1024 * 1024,
        }],
        maintenance: vec![MaintenanceRow {
            kind: "vacuum".into(),
            object: "public.audit_logs".into(),
            reason: "dead tuples past the autovacuum threshold".into(),
            sql: "VACUUM (ANALYZE) public.audit_logs".into(),
            outcome: "failed: permission denied".into(),
            seconds: Some(0.1),
        }],
        settings: vec![
            SettingRow {
                name: "work_mem".into(),
                current: "4MB".into(),
                recommended: "16MB".into(),
                why: "sorts spill to disk".into(),
                needs_restart: false,
                outcome: "done".into(),
            },
            SettingRow {
                name: "random_page_cost".into(),
                current: "4".into(),
                recommended: "1.1".into(),
                why: "SSD storage".into(),
                needs_restart: false,
                outcome: "done".into(),
            },
            SettingRow {
                name: "shared_buffers".into(),
                current: "128MB".into(),
                recommended: "2GB".into(),
                why: "25 % of RAM".into(),
                needs_restart: true,
                outcome: "skipped: waits for a restart".into(),
            },
        ],
        steps: vec![StepRow {
            phase: PhaseName::Indexes,
            what: "CREATE INDEX CONCURRENTLY idx_users_email_active".into(),
            state: "done".into(),
            reason: Some("verified: indisvalid".into()),
            seconds: 0.8,
        }],
        journals: vec![JournalRef {
            phase: PhaseName::Indexes,
            path: "pgopt-journal-indexes.json".into(),
            rollback: "pgopt indexes --rollback pgopt-journal-indexes.json".into(),
        }],
        top_statements: vec![
            StatementRow {
                query: format!("SELECT * FROM audit_logs WHERE resource_type = $1 /* {HOSTILE} */"),
                calls: 12000,
                total_ms: 264000.0,
                mean_ms: 22.0,
            },
            StatementRow {
                query: "SELECT * FROM users WHERE email = $1 AND is_active".into(),
                calls: 50000,
                total_ms: 190000.0,
                mean_ms: 3.8,
            },
            StatementRow {
                query: "SELECT 1".into(),
                calls: 90000,
                total_ms: 900.0,
                mean_ms: 0.01,
            },
        ],
        bench_before: Some(bench(1.0, 800.0)),
        bench_after: Some(bench(4.0, 2400.0)),
        interrupted: Some("settings: after step 2 of 3 (Ctrl-C)".into()),
    }
}

/// A dry run: planned, nothing applied, no benchmark, no statements.
pub fn dry_run() -> Report {
    let mut r = full();
    r.mode = Mode::DryRun;
    r.phases[4] = phase(
        PhaseName::Performance,
        Status::Skipped,
        Some("a dry run changes nothing to measure"),
        "",
    );
    for i in &mut r.indexes {
        i.outcome = "planned".into();
    }
    for s in &mut r.settings {
        s.outcome = "planned".into();
    }
    r.maintenance.clear();
    r.steps.clear();
    r.journals.clear();
    r.top_statements.clear();
    r.findings.clear();
    r.bench_before = None;
    r.bench_after = None;
    r.interrupted = None;
    r
}

/// The least a report can be: no phase ran.
pub fn empty() -> Report {
    let mut r = dry_run();
    r.phases.clear();
    r.snapshot = None;
    r.indexes.clear();
    r.index_drops.clear();
    r.settings.clear();
    r.target.server_version = None;
    r
}
