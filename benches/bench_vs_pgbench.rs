//! `cargo bench --bench bench_vs_pgbench`: the SAME script files through pgbench and through
//! `pgopt bench`, on one embedded cluster.
//!
//! Cases, each at 2 clients / 2 connections and 8 / 8:
//! - select-only: pgbench's select-only script as a file (`pgbench -i -s 10`, `:scale` 10);
//! - select1: `SELECT 1;`;
//! - tpcb-like: pgbench's TPC-B-like script as a file (BEGIN, 5 statements, END);
//! - governance: benches/scripts/governance.sql, three reads against the governance schema
//!   (`pgopt governance deploy` + `seed --scale 0.01`).
//!
//! Both tools run the file unchanged, with the extended protocol and prepared statements
//! (`pgbench -M prepared`), over TCP to 127.0.0.1, pgbench with one thread per client
//! (`-j N`). Each case runs three interleaved pairs (pgbench, pgopt, pgbench, pgopt, ...) of
//! `PGOPT_VS_PGBENCH_SECONDS` seconds each (default 5), and prints the median of the three
//! pairs' throughput ratios pgopt/pgbench, so that drift of a shared machine hits both alike.
//!
//! Statements per transaction, per tool: the server's count of executed statements
//! (pg_stat_statements `calls`) over the run divided by the transactions the tool reports
//! (failed ones included). Both tools must show the same number: 1 for select-only and
//! select1, 3 for governance, 5 for tpcb-like (its BEGIN and END, sent as prepared
//! statements by both tools, do not appear in pg_stat_statements here): the proof that pgopt
//! runs a file as pgbench does. pgopt's own few set-up queries per connection are in its
//! count (a few hundredths at these rates).

use std::path::Path;
use std::process::Command;

use pgopt::bench::BenchResult;
use pgopt::embedded::{Cluster, ClusterOptions};

const SCALE: u32 = 10;

struct Run {
    tps: f64,
    transactions: f64,
    statements: f64,
}

fn main() {
    let seconds: u64 = std::env::var("PGOPT_VS_PGBENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
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
    let dsn = c.dsn("postgres");

    let t = std::time::Instant::now();
    let init = Command::new(&pgbench)
        .args(&conn_args)
        .args(["-i", "-s", &SCALE.to_string(), "-q", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    pgopt(&["governance", "deploy", &dsn]);
    pgopt(&[
        "governance",
        "seed",
        &dsn,
        "--scale",
        "0.01",
        "--no-progress",
    ]);
    c.psql(
        "postgres",
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; \
         SELECT count(*) FROM pgbench_accounts; \
         SET enable_seqscan = off; SELECT count(abalance) FROM pgbench_accounts WHERE aid > 0;",
    )
    .expect("warm-up");
    println!(
        "pgbench -i -s {SCALE}, governance seed 0.01 and warm-up in {:.1} s; {seconds} s per \
         run, 3 interleaved pairs per row, TCP to 127.0.0.1, prepared statements",
        t.elapsed().as_secs_f64()
    );

    let builtin = |name: &str| {
        pgopt::bench::file::BUILTINS
            .iter()
            .find(|b| b.0 == name)
            .expect("built-in")
            .1
    };
    let files = [
        ("select-only", builtin("select-only").to_string()),
        ("select1", "SELECT 1;\n".to_string()),
        ("tpcb-like", builtin("tpcb-like").to_string()),
        (
            "governance",
            include_str!("scripts/governance.sql").to_string(),
        ),
    ];

    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "script",
        "clients/conns",
        "pgbench tx/s (median)",
        "pgopt tx/s (median)",
        "median ratio pgopt/pgbench",
        "ratios of the 3 pairs",
        "statements/tx pgbench",
        "statements/tx pgopt",
    ]);
    for n in [2usize, 8] {
        for (label, text) in &files {
            let file = dir.path().join(format!("{label}.sql"));
            std::fs::write(&file, text).unwrap();
            let mut pb = Vec::new();
            let mut po = Vec::new();
            for pair in 0..3 {
                // p, o, o, p, p, o: each tool goes first as often as second.
                if pair % 2 == 0 {
                    pb.push(run_pgbench(&c, &pgbench, &conn_args, &file, n, seconds));
                    po.push(run_pgopt(&c, &dsn, &file, n, seconds));
                } else {
                    po.push(run_pgopt(&c, &dsn, &file, n, seconds));
                    pb.push(run_pgbench(&c, &pgbench, &conn_args, &file, n, seconds));
                }
            }
            let mut ratios: Vec<f64> = pb.iter().zip(&po).map(|(b, o)| o.tps / b.tps).collect();
            let ratios_text = ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(" ");
            let per_tx = |runs: &[Run]| {
                runs.iter().map(|r| r.statements).sum::<f64>()
                    / runs.iter().map(|r| r.transactions).sum::<f64>()
            };
            let row = vec![
                label.to_string(),
                format!("{n}/{n}"),
                format!("{:.0}", median(pb.iter().map(|r| r.tps).collect())),
                format!("{:.0}", median(po.iter().map(|r| r.tps).collect())),
                format!("{:.3}", median(std::mem::take(&mut ratios))),
                ratios_text,
                format!("{:.2}", per_tx(&pb)),
                format!("{:.2}", per_tx(&po)),
            ];
            println!("{}", row.join("  "));
            t.add_row(row);
        }
    }
    println!("{t}");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn pgopt(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args(args)
        .output()
        .expect("run pgopt");
    assert!(
        out.status.success(),
        "pgopt {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Statements the server executed so far (pg_stat_statements calls, its own reads excluded).
fn server_statements(c: &Cluster) -> f64 {
    c.psql(
        "postgres",
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements \
         WHERE query NOT LIKE '%pg_stat_statements%'",
    )
    .expect("read pg_stat_statements")
    .trim()
    .parse()
    .expect("a number")
}

fn run_pgbench(
    c: &Cluster,
    pgbench: &Path,
    conn_args: &[String],
    file: &Path,
    n: usize,
    seconds: u64,
) -> Run {
    let before = server_statements(c);
    let out = Command::new(pgbench)
        .args(conn_args)
        .args(["-n", "-M", "prepared", "-T", &seconds.to_string()])
        .args(["-c", &n.to_string(), "-j", &n.to_string()])
        .args(["-s", &SCALE.to_string()])
        .arg("-f")
        .arg(file)
        .arg("postgres")
        .output()
        .expect("run pgbench");
    let statements = server_statements(c) - before;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let number_after = |prefix: &str| {
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .unwrap_or_else(|| panic!("no {prefix:?} line in pgbench output:\n{text}"))
    };
    Run {
        tps: number_after("tps = "),
        transactions: number_after("number of transactions actually processed: "),
        statements,
    }
}

fn run_pgopt(c: &Cluster, dsn: &str, file: &Path, n: usize, seconds: u64) -> Run {
    let before = server_statements(c);
    let out = Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args(["bench", dsn, "--workload"])
        .arg(file)
        .args(["--scale", &SCALE.to_string()])
        .args(["--clients", &n.to_string(), "--connections", &n.to_string()])
        .args(["--duration", &format!("{seconds}s"), "--format", "json"])
        .output()
        .expect("run pgopt bench");
    let statements = server_statements(c) - before;
    assert!(
        out.status.success(),
        "pgopt bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: BenchResult = serde_json::from_slice(&out.stdout).expect("pgopt bench JSON");
    Run {
        tps: r.throughput_tps,
        transactions: (r.transactions + r.errors) as f64,
        statements,
    }
}
