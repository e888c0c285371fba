//! `cargo bench --bench analyze_planted`: `pgopt analyze` on the planted server of
//! tests/planted/mod.rs (20-odd real problems, live sessions holding the xmin horizon), timed.
//!
//! Runs `pgopt analyze --format json` RUNS times (default 7, `PGOPT_PLANTED_RUNS`) and prints
//! the median wall time and the collect time of each snapshot section (from the snapshot's
//! own section timings, last run). With `PGOPT_BEFORE_BIN=/path/to/an/older/pgopt` it runs
//! that binary too, interleaved with this one (before, after, before, after, ...), and prints
//! the ratio after/before of the medians: the figure issue #14 asks for (the new checks must
//! not slow analyze beyond 1.5×).

#[path = "../tests/planted/mod.rs"]
mod planted;

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::var("PGOPT_PLANTED_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let before = std::env::var("PGOPT_BEFORE_BIN").ok();
    let after = env!("CARGO_BIN_EXE_pgopt").to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let t = Instant::now();
        let p = planted::plant().await;
        println!(
            "planted server ready in {:.1} s ({} problems)",
            t.elapsed().as_secs_f64(),
            planted::PROBLEMS.len()
        );
        let dsn = p.cluster.dsn("postgres");
        let mut bins = vec![("after", after.as_str())];
        if let Some(b) = before.as_deref() {
            bins.insert(0, ("before", b));
        }
        // One warm-up run each.
        for (_, bin) in &bins {
            analyze(bin, &dsn);
        }
        let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); bins.len()];
        let mut last = String::new();
        for _ in 0..runs {
            for (i, (_, bin)) in bins.iter().enumerate() {
                let (wall, out) = analyze(bin, &dsn);
                walls[i].push(wall);
                last = out;
            }
        }
        let medians: Vec<f64> = walls
            .iter_mut()
            .map(|w| {
                w.sort();
                w[w.len() / 2].as_secs_f64() * 1000.0
            })
            .collect();
        for ((name, _), m) in bins.iter().zip(&medians) {
            println!("pgopt analyze ({name}): median wall {m:.0} ms over {runs} runs");
        }
        if medians.len() == 2 {
            println!(
                "after / before: {:.2}x (goal: at most 1.50x)",
                medians[1] / medians[0]
            );
        }
        print_sections(&last);
        drop(p);
    });
}

/// One `pgopt analyze --format json` run: wall time and stdout. Exit codes 0, 3 and 4 mean
/// "ran" (no findings, warnings, critical findings).
fn analyze(bin: &str, dsn: &str) -> (Duration, String) {
    let t = Instant::now();
    let out = Command::new(bin)
        .args(["analyze", "--format", "json", dsn])
        .output()
        .expect("run pgopt analyze");
    let wall = t.elapsed();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        matches!(code, 0 | 3 | 4),
        "{bin} analyze failed ({code}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (wall, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The collect time of each section, slowest first, from the JSON report.
fn print_sections(json: &str) {
    let v: serde_json::Value = serde_json::from_str(json).expect("analyze JSON");
    let sections = v
        .pointer("/snapshot/sections")
        .or_else(|| v.get("sections"))
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    let mut rows: Vec<(String, f64, String)> = sections
        .iter()
        .map(|s| {
            (
                s["section"].as_str().unwrap_or("?").to_string(),
                s["elapsed_ms"].as_f64().unwrap_or(0.0),
                s["state"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = rows.iter().map(|r| r.1).sum();
    println!("collect sections (last run, after), {total:.0} ms in all:");
    for (name, ms, state) in rows {
        println!("  {name:<24} {ms:>8.1} ms  {state}");
    }
}
