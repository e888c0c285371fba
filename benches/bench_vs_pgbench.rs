//! `cargo bench --bench bench_vs_pgbench`: pgopt bench side by side with pgbench, in one run on
//! one embedded cluster.
//!
//! `pgbench -i -s 10`, then for 2 clients / 2 connections and 8 / 8, each for 10 s:
//! - select-only: pgbench's built-in `-S` script against `pgopt bench` with the same script as
//!   a workload file (`\set aid random(1, 100000 * 10)` + the SELECT);
//! - select1: `pgbench -f` of `SELECT 1;` against `pgopt bench --workload select1`.
//!
//! Both use the extended protocol with prepared statements (`pgbench -M prepared`: Bind,
//! Execute, Sync per transaction, as tokio-postgres does with a prepared statement), both over
//! TCP to 127.0.0.1, and pgbench runs with one thread per client (`-j N`). pgbench's latency
//! percentiles come from its per-transaction log (`-l`), pgopt's from its histograms; the
//! means (pgbench's "latency average") are the like-for-like latency figure, because pgbench
//! reads its clock lazily and logs many sub-10 µs transactions as 0 µs.
//!
//! Goal (issue 3): pgopt throughput / pgbench throughput >= 0.95 in every row.
//! Each side runs twice for half the time, in the order pgbench, pgopt, pgopt, pgbench, and
//! reports the mean, so that drift of a shared machine hits both alike.
//! `PGOPT_VS_PGBENCH_SECONDS` sets the time per side and pair (default 10).

use std::path::Path;
use std::process::Command;

use pgopt::bench::BenchResult;
use pgopt::embedded::{Cluster, ClusterOptions};

struct Figures {
    tps: f64,
    mean_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let seconds: u64 = std::env::var("PGOPT_VS_PGBENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let c = Cluster::start(ClusterOptions {
        settings: vec![("shared_buffers".into(), "'512MB'".into())],
        ..Default::default()
    })
    .expect("cluster");
    let pgbench = c.installation().bin.program("pgbench");
    let dir = tempfile::tempdir().expect("tempdir");
    let conn_args = [
        "-h".to_string(),
        "127.0.0.1".to_string(),
        "-p".to_string(),
        c.port().to_string(),
        "-U".to_string(),
        "postgres".to_string(),
    ];

    let t = std::time::Instant::now();
    let init = Command::new(&pgbench)
        .args(&conn_args)
        .args(["-i", "-s", "10", "-q", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // Warm the caches the same for both: one pass over the table and its index.
    c.psql(
        "postgres",
        "SELECT count(*) FROM pgbench_accounts; \
         SET enable_seqscan = off; SELECT count(abalance) FROM pgbench_accounts WHERE aid > 0;",
    )
    .expect("warm-up");
    println!(
        "pgbench -i -s 10 and warm-up in {:.1} s; {} s per run, TCP to 127.0.0.1, prepared statements",
        t.elapsed().as_secs_f64(),
        seconds
    );

    let select_only = dir.path().join("select_only.sql");
    std::fs::write(
        &select_only,
        "\\set aid random(1, 100000 * 10)\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n",
    )
    .unwrap();
    let select1 = dir.path().join("select1.sql");
    std::fs::write(&select1, "SELECT 1;\n").unwrap();

    let mut rows = Vec::new();
    for n in [2usize, 8] {
        for (label, pgbench_script, pgopt_workload) in [
            ("select-only", None, select_only.display().to_string()),
            ("select1", Some(&select1), "select1".to_string()),
        ] {
            // pgbench, pgopt, pgopt, pgbench: drift of the machine during the pair cancels
            // out; each figure is the mean of its two runs.
            let half = seconds.div_ceil(2);
            let mut pb_runs = Vec::new();
            let mut po_runs = Vec::new();
            for round in 0..2 {
                let log_dir = dir.path().join(format!("log-{label}-{n}-{round}"));
                std::fs::create_dir_all(&log_dir).unwrap();
                let script = pgbench_script.map(|p| p.as_path());
                if round == 0 {
                    pb_runs.push(run_pgbench(&pgbench, &conn_args, script, n, half, &log_dir));
                    po_runs.push(run_pgopt(&c.dsn("postgres"), &pgopt_workload, n, half));
                } else {
                    po_runs.push(run_pgopt(&c.dsn("postgres"), &pgopt_workload, n, half));
                    pb_runs.push(run_pgbench(&pgbench, &conn_args, script, n, half, &log_dir));
                }
            }
            let (pb, po) = (mean(&pb_runs), mean(&po_runs));
            println!(
                "{label:<11} {n}/{n}: pgbench {:>8.0} tps, pgopt {:>8.0} tps, ratio {:.3}",
                pb.tps,
                po.tps,
                po.tps / pb.tps
            );
            rows.push((label, n, pb, po));
        }
    }

    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "workload",
        "clients/conns",
        "pgbench tx/s",
        "pgopt tx/s",
        "tx/s pgopt/pgbench",
        "pgbench mean ms",
        "pgopt mean ms",
        "pgbench p50 ms",
        "pgopt p50 ms",
        "p50 pgopt/pgbench",
        "pgbench p99 ms",
        "pgopt p99 ms",
        "p99 pgopt/pgbench",
    ]);
    let mut worst = f64::INFINITY;
    for (label, n, pb, po) in &rows {
        let ratio = po.tps / pb.tps;
        worst = worst.min(ratio);
        t.add_row(vec![
            label.to_string(),
            format!("{n}/{n}"),
            format!("{:.0}", pb.tps),
            format!("{:.0}", po.tps),
            format!("{ratio:.3}"),
            format!("{:.4}", pb.mean_ms),
            format!("{:.4}", po.mean_ms),
            format!("{:.3}", pb.p50_ms),
            format!("{:.3}", po.p50_ms),
            ratio_text(po.p50_ms, pb.p50_ms),
            format!("{:.3}", pb.p99_ms),
            format!("{:.3}", po.p99_ms),
            ratio_text(po.p99_ms, pb.p99_ms),
        ]);
    }
    println!("{t}");
    println!(
        "pgbench's mean is its \"latency average\" (run time x clients / transactions). Its \
         percentiles come from its -l log, whose clock is read lazily: a transaction whose \
         answer is already there when it looks is logged with the previous one's end time \
         (often 0 us), so its p50/p99 are lower bounds at these speeds; compare the means."
    );
    println!(
        "lowest throughput ratio pgopt/pgbench: {worst:.3} (goal >= 0.95: {})",
        if worst >= 0.95 { "met" } else { "NOT met" }
    );
}

/// `a / b`, or "-" when b is zero (pgbench logs many fast transactions as 0 µs).
fn ratio_text(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".to_string()
    }
}

fn mean(runs: &[Figures]) -> Figures {
    let n = runs.len() as f64;
    Figures {
        tps: runs.iter().map(|r| r.tps).sum::<f64>() / n,
        mean_ms: runs.iter().map(|r| r.mean_ms).sum::<f64>() / n,
        p50_ms: runs.iter().map(|r| r.p50_ms).sum::<f64>() / n,
        p99_ms: runs.iter().map(|r| r.p99_ms).sum::<f64>() / n,
    }
}

fn run_pgbench(
    pgbench: &Path,
    conn_args: &[String],
    script: Option<&Path>,
    n: usize,
    seconds: u64,
    log_dir: &Path,
) -> Figures {
    let mut cmd = Command::new(pgbench);
    cmd.args(conn_args)
        .args(["-n", "-M", "prepared", "-T", &seconds.to_string()])
        .args(["-c", &n.to_string(), "-j", &n.to_string(), "-l"])
        .arg(format!("--log-prefix={}", log_dir.join("tx").display()));
    match script {
        Some(f) => cmd.arg("-f").arg(f),
        None => cmd.arg("-S"),
    };
    cmd.arg("postgres");
    let out = cmd.output().expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no tps line in pgbench output:\n{text}"));
    let mean_ms = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("latency average = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or_else(|| panic!("no latency average in pgbench output:\n{text}"));
    // Log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
    let mut latencies: Vec<u64> = Vec::new();
    for entry in std::fs::read_dir(log_dir).unwrap() {
        let body = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        latencies.extend(
            body.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .filter_map(|v| v.parse::<u64>().ok()),
        );
    }
    latencies.sort_unstable();
    assert!(!latencies.is_empty(), "pgbench wrote no transaction log");
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    Figures {
        tps,
        mean_ms,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

fn run_pgopt(dsn: &str, workload: &str, n: usize, seconds: u64) -> Figures {
    let out = Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args(["bench", dsn, "--workload", workload])
        .args(["--clients", &n.to_string(), "--connections", &n.to_string()])
        .args(["--duration", &format!("{seconds}s"), "--format", "json"])
        .output()
        .expect("run pgopt bench");
    assert!(
        out.status.success(),
        "pgopt bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: BenchResult = serde_json::from_slice(&out.stdout).expect("pgopt bench JSON");
    assert_eq!(r.errors, 0, "pgopt bench errors: {:?}", r.errors_by_code());
    Figures {
        tps: r.throughput_tps,
        mean_ms: r.latency.mean_ms,
        p50_ms: r.latency.p50_ms,
        p99_ms: r.latency.p99_ms,
    }
}
