//! `cargo bench --bench governance`: the figures of issue 3 on an embedded cluster, in one run.
//!
//! - seeding rate at scale 1 (rows/s; goal >= 200k/s) and the seeder's peak memory;
//! - pool of 5 set-up time / one connect (goal <= 2: connections open in parallel);
//! - p50 of each basic governance operation / the select1 p50, before and after the five ACGS
//!   indexes (goal after: <= 1.5);
//! - 1000 clients over 20 connections for 30 s on the governance workload: errors (goal 0)
//!   and p99.
//!
//! Everything runs through the release `pgopt` binary, as a user would run it.

mod common;

use common::run_measured;
use pgopt::embedded::{Cluster, ClusterOptions};
use serde_json::Value;

const BASIC: &[&str] = &[
    "authenticate_by_email",
    "login_by_username",
    "policy_rule_by_name",
];

fn main() {
    common::measuring_helper();
    let bin = env!("CARGO_BIN_EXE_pgopt");
    let scale = std::env::var("PGOPT_BENCH_SCALE").unwrap_or_else(|_| "1".into());
    let c = Cluster::start(ClusterOptions {
        settings: vec![("max_connections".into(), "100".into())],
        ..Default::default()
    })
    .expect("cluster");
    let dsn = c.dsn("postgres");

    run(bin, &["governance", "deploy", &dsn]);
    let (wall, rss_kb, _) = run_measured(
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
    let rows: f64 = c
        .psql(
            "postgres",
            "SELECT sum(n_live_tup) FROM pg_stat_user_tables WHERE schemaname = 'governance'",
        )
        .expect("count")
        .parse()
        .unwrap_or(0.0);
    let rate = rows / wall.as_secs_f64();
    println!(
        "seed scale {scale}: {rows:.0} rows in {:.1} s = {:.0} rows/s (goal 200000: ratio {:.2}), peak memory {:.1} MB",
        wall.as_secs_f64(),
        rate,
        rate / 200_000.0,
        rss_kb as f64 / 1024.0
    );

    // Both numbers are a few milliseconds, so one sample is mostly noise: the median of 11.
    let mut pools: Vec<(f64, f64)> = (0..11)
        .map(|_| {
            let r = bench(
                bin,
                &dsn,
                &[
                    "--workload",
                    "select1",
                    "--clients",
                    "5",
                    "--connections",
                    "5",
                    "--transactions",
                    "500",
                ],
            );
            (
                r["pool_setup_ms"].as_f64().unwrap(),
                r["one_connect_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    pools.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
    let (setup, one) = pools[5];
    println!(
        "pool of 5 (median of 11 runs): set-up {setup:.2} ms, one connect {one:.2} ms, ratio {:.2} (goal <= 2); range of ratios {:.2}..{:.2}",
        setup / one,
        pools[0].0 / pools[0].1,
        pools[10].0 / pools[10].1
    );

    let before = basic_ratios(bin, &dsn, "before the ACGS indexes");
    run(bin, &["governance", "indexes", &dsn]);
    let after = basic_ratios(bin, &dsn, "after the ACGS indexes");
    for ((op, b), (_, a)) in before.iter().zip(after.iter()) {
        println!("{op}: p50/select1 p50 before {b:.2}, after {a:.2} (goal after <= 1.5)");
    }

    let many = bench(
        bin,
        &dsn,
        &[
            "--workload",
            "governance",
            "--schema",
            "governance",
            "--clients",
            "1000",
            "--connections",
            "20",
            "--duration",
            "30s",
        ],
    );
    println!(
        "1000 clients over 20 connections, 30 s, governance read-heavy: {} transactions, {:.0} tx/s, errors {} (goal 0), p99 {:.1} ms, p50 {:.1} ms",
        many["transactions"],
        many["throughput_tps"].as_f64().unwrap(),
        many["errors"],
        many["latency"]["p99_ms"].as_f64().unwrap(),
        many["latency"]["p50_ms"].as_f64().unwrap()
    );
    for op in many["scripts"].as_array().unwrap() {
        println!(
            "  {:<24} {:>7} calls  p50 {:>8.1} ms  p99 {:>8.1} ms",
            op["name"].as_str().unwrap(),
            op["count"],
            op["latency"]["p50_ms"].as_f64().unwrap(),
            op["latency"]["p99_ms"].as_f64().unwrap()
        );
    }
}

/// p50 of each basic operation over the p50 of `select1` mixed into the same run (`--floor`):
/// one client, the same conditions for both (separate runs differ several-fold here, with the
/// scheduler placing client and server on the same core or not).
fn basic_ratios(bin: &str, dsn: &str, when: &str) -> Vec<(String, f64)> {
    let gov = bench(
        bin,
        dsn,
        &[
            "--workload",
            "governance",
            "--schema",
            "governance",
            "--floor",
            "--duration",
            "15s",
        ],
    );
    let p50 = |name: &str| -> (f64, Value) {
        let op = gov["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("operation {name} missing"));
        (
            op["latency"]["p50_ms"].as_f64().unwrap(),
            op["count"].clone(),
        )
    };
    let (floor_p50, floor_n) = p50("select1");
    println!("{when}: select1 p50 {floor_p50:.3} ms over {floor_n} calls");
    BASIC
        .iter()
        .map(|name| {
            let (p, n) = p50(name);
            println!("  {name}: p50 {p:.3} ms over {n} calls");
            (name.to_string(), p / floor_p50)
        })
        .collect()
}

fn bench(bin: &str, dsn: &str, args: &[&str]) -> Value {
    let mut all = vec!["bench", dsn, "--format", "json"];
    all.extend_from_slice(args);
    let (_, _, out) = run_measured(bin, &all);
    serde_json::from_str(&out).expect("bench JSON")
}

fn run(bin: &str, args: &[&str]) {
    run_measured(bin, args);
}
