//! `cargo bench --bench indexes`: the figures of the index advisor's issue, in one run.
//!
//! 1. The governance check, side by side on one embedded cluster (scale `PGOPT_BENCH_SCALE`,
//!    default 1): the ACGS database with no secondary index, its read-heavy workload run
//!    long enough to fill pg_stat_statements; then
//!    - A: the five ACGS indexes (`pgopt governance indexes`), the workload measured with 8
//!      clients; the five dropped again;
//!    - B: `pgopt indexes --apply` with advice from pg_stat_statements alone, the same
//!      measurement. Printed: throughput B / A (goal >= 2.5), the workload cost before and
//!      after (the advisor's estimate) and the p50 of every operation in A and B.
//! 2. Advisor run time for 100, 1,000 and 5,000 distinct statements (`--file`, costing with
//!    HypoPG; goal under 5 s at 1,000).
//!
//! Everything runs through the release `pgopt` binary, as a user would run it.

mod common;

use std::fmt::Write as _;

use common::run_measured;
use pgopt::embedded::{Cluster, ClusterOptions};
use serde_json::Value;

const CLIENTS: &str = "8";

fn main() {
    common::measuring_helper();
    let bin = env!("CARGO_BIN_EXE_pgopt");
    let scale = std::env::var("PGOPT_BENCH_SCALE").unwrap_or_else(|_| "1".into());
    let duration = std::env::var("PGOPT_BENCH_DURATION").unwrap_or_else(|_| "30s".into());
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            (
                "shared_preload_libraries".into(),
                "pg_stat_statements".into(),
            ),
            ("pg_stat_statements.max".into(), "10000".into()),
        ],
        ..Default::default()
    })
    .expect("cluster");
    let dsn = c.dsn("postgres");
    psql(&c, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
    psql(&c, "CREATE EXTENSION IF NOT EXISTS hypopg");
    run(bin, &["governance", "deploy", &dsn]);
    run(
        bin,
        &[
            "governance",
            "seed",
            &dsn,
            "--scale",
            &scale,
            "--no-progress",
        ],
    );

    // The workload with no secondary index, long enough for pg_stat_statements to see every
    // operation many times.
    // The statements and the tables' write counts over one window (the seed's COPY is no
    // part of the workload): the write-cost model compares them.
    psql(&c, "SELECT pg_stat_statements_reset()");
    psql(&c, "SELECT pg_stat_reset()");
    let none = bench(bin, &dsn, "20s");
    report("no secondary index", &none);

    // A: the five ACGS indexes.
    run(bin, &["governance", "indexes", &dsn]);
    let a = bench(bin, &dsn, &duration);
    report("A: the five ACGS indexes", &a);
    for spec in pgopt::governance::indexes::ACGS_INDEXES {
        psql(
            &c,
            &format!(
                "DROP INDEX governance.{}",
                pgopt::ident::Ident::new(spec.name)
            ),
        );
    }

    // B: the advisor's indexes, from pg_stat_statements alone.
    let (wall, _, out) = run_measured(bin, &["indexes", &dsn, "--format", "json", "--no-progress"]);
    let advice: Value = serde_json::from_str(&out).expect("advice JSON");
    println!(
        "advice from pg_stat_statements in {:.1} s: {} indexes, workload cost {:.0} -> {:.0} (estimate, ratio {:.3})",
        wall.as_secs_f64(),
        advice["suggestions"].as_array().map_or(0, Vec::len),
        advice["workload_cost_before"].as_f64().unwrap_or(0.0),
        advice["workload_cost_after"].as_f64().unwrap_or(0.0),
        advice["workload_cost_after"].as_f64().unwrap_or(0.0)
            / advice["workload_cost_before"].as_f64().unwrap_or(1.0)
    );
    for s in advice["suggestions"].as_array().into_iter().flatten() {
        println!("  {}", s["ddl"].as_str().unwrap_or("?"));
    }
    let journal =
        std::env::temp_dir().join(format!("pgopt-bench-indexes-{}.json", std::process::id()));
    let (wall, _, out) = run_measured(
        bin,
        &[
            "indexes",
            &dsn,
            "--apply",
            "--no-progress",
            "--journal",
            journal.to_str().unwrap(),
        ],
    );
    println!("--apply in {:.1} s:\n{out}", wall.as_secs_f64());
    let _ = std::fs::remove_file(&journal);
    let b = bench(bin, &dsn, &duration);
    report("B: the advisor's indexes", &b);
    let (ta, tb) = (
        a["throughput_tps"].as_f64().unwrap(),
        b["throughput_tps"].as_f64().unwrap(),
    );
    println!(
        "governance read-heavy, {CLIENTS} clients, scale {scale}: A (ACGS five) {ta:.0} tx/s, B (advisor) {tb:.0} tx/s, ratio B/A {:.2} (goal >= 2.5)",
        tb / ta
    );

    for n in [100usize, 1000, 5000] {
        let file = std::env::temp_dir().join(format!("pgopt-bench-statements-{n}.sql"));
        std::fs::write(&file, distinct_statements(n)).expect("statements file");
        let (wall, _, out) = run_measured(
            bin,
            &[
                "indexes",
                &dsn,
                "--file",
                file.to_str().unwrap(),
                "--format",
                "json",
                "--no-progress",
            ],
        );
        let v: Value = serde_json::from_str(&out).expect("advice JSON");
        println!(
            "advisor on {n} distinct statements: {:.2} s ({} suggestions){}",
            wall.as_secs_f64(),
            v["suggestions"].as_array().map_or(0, Vec::len),
            if n == 1000 {
                format!(" (goal < 5 s: ratio {:.2})", wall.as_secs_f64() / 5.0)
            } else {
                String::new()
            }
        );
        let _ = std::fs::remove_file(&file);
    }
}

/// `n` statements over the governance tables, each of its own fingerprint: every
/// combination of a select list, an equality column, a range column and a sort, in turn.
fn distinct_statements(n: usize) -> String {
    const TABLES: &[(&str, &[&str])] = &[
        (
            "governance.security_events",
            &[
                "user_id",
                "event_type",
                "severity",
                "source_ip",
                "occurred_at",
            ],
        ),
        (
            "governance.audit_logs",
            &[
                "actor_id",
                "resource_type",
                "resource_id",
                "action",
                "occurred_at",
            ],
        ),
        (
            "governance.compliance_checks",
            &["policy_rule_id", "result", "score", "checked_at"],
        ),
        (
            "governance.governance_workflows",
            &["kind", "status", "title", "updated_at"],
        ),
    ];
    // Every combination per table, then taken round-robin so each table gets its share.
    let per_table: Vec<Vec<String>> = TABLES
        .iter()
        .map(|(table, cols)| {
            let mut all = Vec::new();
            for limit in ["", " LIMIT 10"] {
                for desc in ["", " DESC"] {
                    for range in cols.iter() {
                        for eq in cols.iter() {
                            for mask in 1u32..(1 << cols.len()) {
                                let pick: Vec<&str> = cols
                                    .iter()
                                    .enumerate()
                                    .filter(|(b, _)| mask & (1 << b) != 0)
                                    .map(|(_, c)| *c)
                                    .collect();
                                all.push(format!(
                                    "SELECT {} FROM {table} WHERE {eq} = $1 AND {range} >= $2 \
                                     ORDER BY {range}{desc}{limit};",
                                    pick.join(", ")
                                ));
                            }
                        }
                    }
                }
            }
            all
        })
        .collect();
    let mut out = String::new();
    let mut taken = 0;
    for k in 0.. {
        let before = taken;
        for stmts in &per_table {
            if taken < n {
                if let Some(s) = stmts.get(k) {
                    let _ = writeln!(out, "{s}");
                    taken += 1;
                }
            }
        }
        if taken == n || taken == before {
            break;
        }
    }
    out
}

fn bench(bin: &str, dsn: &str, duration: &str) -> Value {
    let (_, _, out) = run_measured(
        bin,
        &[
            "bench",
            dsn,
            "--format",
            "json",
            "--workload",
            "governance",
            "--schema",
            "governance",
            "--clients",
            CLIENTS,
            "--duration",
            duration,
        ],
    );
    serde_json::from_str(&out).expect("bench JSON")
}

fn report(when: &str, r: &Value) {
    println!(
        "{when}: {:.0} tx/s, p50 {:.2} ms",
        r["throughput_tps"].as_f64().unwrap(),
        r["latency"]["p50_ms"].as_f64().unwrap()
    );
    for op in r["scripts"].as_array().unwrap() {
        println!(
            "  {:<24} {:>7} calls  p50 {:>8.2} ms",
            op["name"].as_str().unwrap(),
            op["count"],
            op["latency"]["p50_ms"].as_f64().unwrap()
        );
    }
}

fn psql(c: &Cluster, sql: &str) {
    c.psql("postgres", sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn run(bin: &str, args: &[&str]) {
    run_measured(bin, args);
}
