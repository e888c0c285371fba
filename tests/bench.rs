//! `pgopt bench` against real embedded clusters: many clients over few connections, JSON and
//! compare, failing statements, Ctrl-C, a server that dies mid-run, and bad input.
//!
//! Behaviour only: the one time bound in each test is a generous "does not hang".

mod cli_support;

use cli_support::*;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use pgopt::bench::result::*;
use pgopt::embedded::{Cluster, ClusterOptions};

fn parse_result(o: &Output) -> BenchResult {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not a bench result ({e}):\nstdout: {}\nstderr: {}",
            stdout(o),
            stderr(o)
        )
    })
}

/// A DSN where nothing listens: bad input must be refused before any connect.
fn nowhere() -> String {
    let port = pgopt::embedded::free_port().unwrap();
    format!("postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable")
}

fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Spawns pgopt with piped output; stdout and stderr are read on threads so a full pipe never
/// blocks it.
struct Running {
    child: Child,
    out: std::thread::JoinHandle<Vec<u8>>,
    err: std::thread::JoinHandle<Vec<u8>>,
}

fn spawn(args: &[&str]) -> Running {
    let mut child = pgopt_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pgopt");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    Running {
        child,
        out: std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = so.read_to_end(&mut b);
            b
        }),
        err: std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = se.read_to_end(&mut b);
            b
        }),
    }
}

impl Running {
    /// Waits at most `bound`; kills the process and fails the test when it hangs.
    fn wait(mut self, bound: Duration) -> (Output, Duration) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let out = Output {
                    status,
                    stdout: self.out.join().unwrap(),
                    stderr: self.err.join().unwrap(),
                };
                return (out, start.elapsed());
            }
            if start.elapsed() > bound {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "pgopt did not end within {bound:?}; stderr: {}",
                    String::from_utf8_lossy(&self.err.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn two_hundred_clients_over_four_connections_complete_every_transaction_without_errors() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt(&[
        "bench",
        &dsn,
        "--workload",
        "select1",
        "--clients",
        "200",
        "--connections",
        "4",
        "--transactions",
        "2000",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.transactions, 2000);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_code());
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!((r.clients, r.connections), (200, 4));
    assert_eq!(r.workload, "select1");
    assert_eq!(r.scripts.len(), 1);
    assert_eq!(r.scripts[0].name, "select1");
    assert_eq!(r.scripts[0].count, 2000);
    assert_eq!(r.scripts[0].statements[0].count, 2000);
    assert!(
        r.server_version.starts_with(char::is_numeric),
        "{}",
        r.server_version
    );
    assert!(r.pool_setup_ms > 0.0 && r.one_connect_ms > 0.0);
    assert!(r.throughput_tps > 0.0 && r.duration_s > 0.0);
    let l = r.latency;
    assert!(l.p50_ms > 0.0 && l.p50_ms <= l.p90_ms && l.p90_ms <= l.p99_ms);
    assert!(l.p99_ms <= l.p999_ms && l.p999_ms <= l.max_ms && l.mean_ms > 0.0);

    // Every field is in the JSON, by name.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in [
        "schema_version",
        "workload",
        "server_version",
        "clients",
        "connections",
        "duration_s",
        "transactions",
        "errors",
        "throughput_tps",
        "pool_setup_ms",
        "one_connect_ms",
        "outcome",
        "latency",
        "scripts",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    let op = &v["scripts"][0];
    for key in ["name", "count", "errors", "throughput_tps", "latency"] {
        assert!(op.get(key).is_some(), "{key} missing in {op}");
    }
    for key in ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"] {
        assert!(op["latency"][key].is_number(), "{key} missing in {op}");
    }
}

#[test]
fn a_file_workload_on_a_pgbench_like_table_runs_with_rate_and_warmup_and_prints_a_table_and_a_page()
{
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE accounts (aid int PRIMARY KEY, abalance int NOT NULL);\n\
         INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 10000) g;",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "accounts.sql",
        "\\set aid random(1, 10000)\n\
         \\set delta random(-5000, 5000)\n\
         -- name: balance\n\
         SELECT abalance FROM accounts WHERE aid = :aid;\n\
         -- name: deposit\n\
         UPDATE accounts SET abalance = abalance + :delta WHERE aid = :aid;\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--clients",
        "8",
        "--connections",
        "2",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--rate",
        "200",
        "--html",
        dir.path().join("run.html").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // --html: the same figures as a page with the latency chart.
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert!(page.contains("<td>accounts</td>"), "{page}");
    assert!(page.contains("latency percentiles by script") && page.contains("<svg"));
    assert!(page.contains("<td>balance</td>") && page.contains("<td>deposit</td>"));
    let out = stdout(&o);
    for needle in [
        "balance",
        "deposit",
        "throughput",
        "p99 ms",
        "accounts",
        "target rate 200",
    ] {
        assert!(out.contains(needle), "{needle} missing in:\n{out}");
    }
    // The rate holds executions near 200/s over 2 s (generous: scheduling is Poisson).
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--clients",
        "8",
        "--connections",
        "2",
        "--duration",
        "2s",
        "--rate",
        "200",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.errors, 0, "{:?}", r.errors_by_code());
    assert!(
        (100..=800).contains(&r.transactions),
        "{} transactions at --rate 200 for 2 s",
        r.transactions
    );
    // One script of two statements: each run of it is one transaction of both.
    assert_eq!(r.scripts.len(), 1);
    let names: Vec<_> = r.scripts[0]
        .statements
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["balance", "deposit"]);
    assert!(r.scripts[0]
        .statements
        .iter()
        .all(|st| st.count == r.transactions));
}

#[test]
fn a_failing_statement_is_counted_under_its_sqlstate_and_the_run_goes_on() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Divides by zero for even x: about half fail with 22012.
    let file = write_file(
        dir.path(),
        "div.sql",
        "\\set x random(1, 10)\nSELECT 10 / (:x % 2);\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--clients",
        "4",
        "--connections",
        "2",
        "--transactions",
        "400",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    let op = &r.scripts[0];
    let div = op.errors.get("22012").copied().unwrap_or(0);
    assert!(div > 0, "{:?}", op.errors);
    assert_eq!(op.errors.len(), 1, "only division by zero: {:?}", op.errors);
    assert!(op.count > 0, "the run went on after the failures");
    assert_eq!(op.count + div, 400);
    assert_eq!(r.errors, div);
    assert_eq!(r.connections_lost, 0);
}

#[test]
fn a_statement_over_the_statement_timeout_is_counted_as_cancelled_and_the_run_goes_on() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Half of the executions sleep 3 s, over the 1 s limit.
    let file = write_file(
        dir.path(),
        "sleepy.sql",
        "\\set s random(0, 1)\nSELECT pg_sleep(:s * 3);\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--clients",
        "4",
        "--transactions",
        "12",
        "--statement-timeout",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    let cancelled = r.errors_by_code().get("57014").copied().unwrap_or(0);
    assert!(cancelled > 0, "{:?}", r.errors_by_code());
    assert!(r.transactions > 0);
    assert_eq!(r.transactions + cancelled, 12);
}

#[test]
fn compare_reports_b_over_a_per_script_and_marks_missing_ones_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let op = |name: &str, p50: f64, p99: f64, tps: f64| ScriptResult {
        name: name.into(),
        weight: 1,
        statements: vec![],
        count: 1000,
        errors: Default::default(),
        throughput_tps: tps,
        latency: Latency {
            p50_ms: p50,
            p90_ms: p50,
            p99_ms: p99,
            p999_ms: p99,
            max_ms: p99,
            mean_ms: p50,
        },
    };
    let result = |ops: Vec<ScriptResult>, tps: f64, p50: f64| BenchResult {
        schema_version: RESULT_SCHEMA_VERSION,
        pgopt_version: "0.1.0".into(),
        workload: "w".into(),
        server_version: "15.8".into(),
        host: None,
        scale: 1,
        clients: 4,
        connections: 4,
        rate: None,
        warmup_s: 0.0,
        duration_s: 10.0,
        transactions: 1000,
        errors: 0,
        throughput_tps: tps,
        pool_setup_ms: 5.0,
        one_connect_ms: 3.0,
        connections_lost: 0,
        outcome: Outcome::Completed,
        error: None,
        latency: Latency {
            p50_ms: p50,
            p99_ms: 2.0,
            ..Default::default()
        },
        wait: Latency::default(),
        exec: Latency::default(),
        scripts: ops,
    };
    let a = result(
        vec![op("login", 0.4, 2.0, 800.0), op("old_only", 1.0, 1.0, 10.0)],
        1000.0,
        0.5,
    );
    let b = result(
        vec![
            op("login", 0.2, 3.0, 1200.0),
            op("new_only", 1.0, 1.0, 10.0),
        ],
        1500.0,
        0.25,
    );
    let pa = dir.path().join("a.json");
    let pb = dir.path().join("b.json");
    std::fs::write(&pa, serde_json::to_string(&a).unwrap()).unwrap();
    std::fs::write(&pb, serde_json::to_string(&b).unwrap()).unwrap();
    let (pa, pb) = (pa.display().to_string(), pb.display().to_string());

    // Different scripts: not comparable without --force.
    let o = pgopt(&["bench", "compare", &pa, &pb]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("differ in scripts"), "{}", stderr(&o));

    let o = pgopt(&["bench", "compare", &pa, &pb, "--force", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let login = &v["scripts"][0];
    assert_eq!(login["name"], "login");
    let close = |x: &serde_json::Value, want: f64| {
        let got = x.as_f64().unwrap_or_else(|| panic!("not a number: {x}"));
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    };
    close(&login["p50_ms"]["ratio"], 0.5);
    close(&login["p99_ms"]["ratio"], 1.5);
    close(&login["throughput_tps"]["ratio"], 1.5);
    assert_eq!(v["scripts"][1]["present"], "only_a");
    assert!(v["scripts"][1]["p50_ms"]["ratio"].is_null());
    assert_eq!(v["scripts"][2]["present"], "only_b");
    close(&v["total"]["throughput_tps"]["ratio"], 1.5);
    close(&v["total"]["p50_ms"]["ratio"], 0.5);

    let o = pgopt(&["bench", "compare", &pa, &pb, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    assert!(
        t.contains("login") && t.contains("1.50") && t.contains("0.50"),
        "{t}"
    );
    assert!(t.contains("missing") && t.contains("total"), "{t}");

    // The HTML report: the comparison table with its ratios, A beside B as charts, and
    // each side's latency distribution; names escaped.
    let html = dir.path().join("cmp.html");
    let o = pgopt(&[
        "bench",
        "compare",
        &pa,
        &pb,
        "--force",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert_eq!(
        page.matches("<svg").count(),
        4,
        "p50, p99 and two distributions"
    );
    assert!(page.contains("<td>login</td>"), "{page}");
    assert!(page.contains("p50 by script") && page.contains("p99 by script"));
    // login: p50 0.400 -> 0.200 (0.50, better), tx/s 800.0 -> 1200.0 (1.50, better).
    assert!(
        page.contains("<td>0.400</td><td>0.200</td><td class=\"better\">0.50</td>"),
        "{page}"
    );
    assert!(
        page.contains("<td>800.0</td><td>1200.0</td><td class=\"better\">1.50</td>"),
        "{page}"
    );
    // labelled by the file names
    assert!(
        page.contains("<h2>A: a</h2>") && page.contains("<h2>B: b</h2>"),
        "{page}"
    );

    // Not a result file: bad input.
    let junk = write_file(dir.path(), "junk.json", "{\"x\": 1}");
    let o = pgopt(&["bench", "compare", &pa, &junk, "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a pgopt bench result"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_workload_file_with_a_syntax_error_names_its_line_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let dsn = nowhere();
    let cases = [
        (
            "unknown.sql",
            "SELECT 1;\n\\gset\n",
            ":2:",
            "\\gset is not supported",
        ),
        (
            "random.sql",
            "\\set a 1\n\n\\set b random(5)\nSELECT :b;\n",
            ":3:",
            "random() takes 2",
        ),
        (
            "undefined.sql",
            "\\set aid random(1, 10)\nSELECT 1\n  FROM t WHERE id = :bid;\n",
            ":3:",
            ":bid",
        ),
    ];
    for (name, text, line, what) in cases {
        let file = write_file(dir.path(), name, text);
        let o = pgopt(&["bench", &dsn, "--workload", &file, "--transactions", "10"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("{name}{line}")), "{name}: {err}");
        assert!(err.contains(what), "{name}: {err}");
    }
    let o = pgopt(&[
        "bench",
        &dsn,
        "--workload",
        "/nonexistent/w.sql",
        "--transactions",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot read the workload file"));
}

#[test]
fn bad_counts_and_durations_are_refused_before_connecting() {
    let dsn = nowhere();
    let base = ["bench", dsn.as_str(), "--workload", "select1"];
    let cases: &[(&[&str], &str)] = &[
        (&["--clients", "0", "--duration", "1s"], "--clients"),
        (&["--connections", "0", "--duration", "1s"], "--connections"),
        (&["--duration", "-5s"], "negative"),
        (&["--duration", "0s"], "zero"),
        (&["--duration", "soon"], "not a duration"),
        (&["--transactions", "0"], "--transactions"),
        (
            &["--duration", "1s", "--transactions", "5"],
            "cannot be used with",
        ),
        (&[], "--duration"),
        (
            &["--clients", "2", "--connections", "3", "--duration", "1s"],
            "more than --clients",
        ),
        (&["--rate", "-10", "--duration", "1s"], "--rate"),
    ];
    for (extra, want) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        let t = Instant::now();
        let o = pgopt(&args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert!(
            !err.contains("127.0.0.1"),
            "{extra:?} tried to connect: {err}"
        );
        assert!(t.elapsed() < Duration::from_secs(10), "{extra:?}");
    }
}

#[test]
fn more_connections_than_the_server_allows_are_refused_with_the_numbers() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("max_connections".into(), "20".into())],
        ..Default::default()
    })
    .unwrap();
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "select1",
        "--clients",
        "50",
        "--connections",
        "50",
        "--duration",
        "5s",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for needle in [
        "--connections 50",
        "max_connections 20",
        "superuser_reserved_connections 3",
        "available",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
    // And what fits runs: 50 clients over the 10 connections that fit.
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "select1",
        "--clients",
        "50",
        "--connections",
        "10",
        "--transactions",
        "500",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(parse_result(&o).transactions, 500);

    // The governance workload on a database where it was never deployed: what to do next.
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "governance",
        "--transactions",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("pgopt governance deploy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn ctrl_c_stops_the_run_and_prints_the_partial_result() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let run = spawn(&[
        "bench",
        &dsn,
        "--workload",
        "select1",
        "--clients",
        "2",
        "--connections",
        "2",
        "--duration",
        "60s",
        "--format",
        "json",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: signals our own child by its pid.
    unsafe {
        libc::kill(run.child.id() as i32, libc::SIGINT);
    }
    let (o, took) = run.wait(Duration::from_secs(20));
    assert!(took < Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.outcome, Outcome::Interrupted);
    assert!(r.transactions > 0);
    assert!(r.duration_s < 30.0, "{}", r.duration_s);
}

/// Starts a 60 s run of `clients` over `connections`, kills the server after 2 s.
fn server_dies_mid_run(clients: &str, connections: &str) {
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let run = spawn(&[
        "bench",
        &dsn,
        "--workload",
        "select1",
        "--clients",
        clients,
        "--connections",
        connections,
        "--duration",
        "60s",
        "--connect-timeout",
        "2",
        "--format",
        "json",
    ]);
    std::thread::sleep(Duration::from_secs(2));
    c.kill();
    let (o, _) = run.wait(Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("lost every connection"), "{err}");
    assert!(err.contains("partial result"), "{err}");
    let r = parse_result(&o);
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r
        .error
        .as_deref()
        .unwrap_or("")
        .contains("lost every connection"));
    assert!(
        r.transactions > 0,
        "the part before the server died is kept"
    );
    assert_eq!(r.connections_lost, connections.parse::<u64>().unwrap());
}

#[test]
fn a_server_that_dies_under_shared_connections_ends_the_run_with_exit_3_and_the_partial_result() {
    server_dies_mid_run("8", "4");
}

#[test]
fn a_server_that_dies_under_one_connection_per_client_ends_the_run_with_exit_3_and_the_partial_result(
) {
    server_dies_mid_run("3", "3");
}

#[test]
fn floor_mixes_select1_into_the_same_run() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "two.sql",
        "\\set x random(1, 10)\n-- name: plus\nSELECT :x + 1;\n-- name: times\nSELECT :x * 2;\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--floor",
        "--transactions",
        "900",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    let names: Vec<&str> = r.scripts.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["two", "select1"]);
    // At the weight of an average script: about half of the transactions.
    let floor = r.scripts.iter().find(|o| o.name == "select1").unwrap();
    assert!(floor.count > 300 && floor.count < 600, "{}", floor.count);
    assert_eq!(r.transactions, 900);
    // select1 plus --floor would measure the floor against itself.
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "select1",
        "--floor",
        "--transactions",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--floor"), "{}", stderr(&o));
}

/// `pgbench -i -s scale` on the cluster's postgres database.
fn pgbench_init(c: &Cluster, scale: u32) {
    let out = std::process::Command::new(c.installation().bin.program("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &c.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-i", "-s", &scale.to_string(), "-q", "postgres"])
        .output()
        .expect("run pgbench -i");
    assert!(
        out.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count(c: &Cluster, sql: &str) -> u64 {
    c.psql("postgres", sql).unwrap().trim().parse().unwrap()
}

#[test]
fn pgbench_tpcb_like_as_a_file_is_one_transaction_of_seven_statements_and_one_history_row() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    pgbench_init(&c, 1);
    let dir = tempfile::tempdir().unwrap();
    let text = pgopt::bench::file::BUILTINS
        .iter()
        .find(|b| b.0 == "tpcb-like")
        .unwrap()
        .1;
    let file = write_file(dir.path(), "tpcb.sql", text);
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--clients",
        "4",
        "--connections",
        "2",
        "--transactions",
        "300",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.scripts.len(), 1);
    let s = &r.scripts[0];
    // Concurrent updates of one branch can deadlock or not; every run is counted once.
    assert_eq!(r.transactions + r.errors, 300, "{:?}", r.errors_by_code());
    assert_eq!(s.statements.len(), 7, "BEGIN, 5 statements, END");
    let sql: Vec<&str> = s.statements.iter().map(|st| st.sql.as_str()).collect();
    assert_eq!(sql[0], "BEGIN");
    assert_eq!(sql[6], "END");
    if r.errors == 0 {
        for st in &s.statements {
            assert_eq!(st.count, r.transactions, "{}", st.sql);
        }
    }
    assert_eq!(s.statements[6].count, r.transactions, "one END per commit");
    // One history row per committed transaction, nothing of the failed ones.
    assert_eq!(
        count(&c, "SELECT count(*) FROM pgbench_history"),
        r.transactions
    );
    assert_eq!(
        r.scale, 1,
        "a custom script without --scale runs at scale 1"
    );
}

#[test]
fn builtins_run_by_name_with_the_scale_read_from_pgbench_branches() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    pgbench_init(&c, 2);
    for (name, statements) in [
        ("select-only", 1),
        ("simple-update", 5),
        ("tpcb-like", 7),
        ("simple", 5),
    ] {
        let o = pgopt(&[
            "bench",
            &c.dsn("postgres"),
            "--workload",
            name,
            "--transactions",
            "50",
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let r = parse_result(&o);
        assert_eq!(r.scale, 2, "{name}");
        assert_eq!(r.transactions, 50, "{name}: {:?}", r.errors_by_code());
        assert_eq!(r.scripts[0].statements.len(), statements, "{name}");
    }
    // --scale wins over the table.
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "select-only",
        "--scale",
        "1",
        "--transactions",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(parse_result(&o).scale, 1);
    // Without pgbench's tables: what to do.
    let o = pgopt(&[
        "bench",
        &c.dsn("template1"),
        "--workload",
        "select-only",
        "--transactions",
        "10",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("pgbench -i"), "{}", stderr(&o));
}

#[test]
fn a_transaction_failing_in_its_middle_leaves_nothing_and_the_connection_is_reused_cleanly() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "CREATE TABLE t (x int);").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "fails.sql",
        "BEGIN;\nINSERT INTO t VALUES (1);\nSELECT 1 / 0;\nINSERT INTO t VALUES (2);\nEND;\n",
    );
    // Shared connections (4 clients over 1) and one connection per client.
    for (clients, connections) in [("4", "1"), ("2", "2")] {
        let o = pgopt(&[
            "bench",
            &c.dsn("postgres"),
            "--workload",
            &file,
            "--clients",
            clients,
            "--connections",
            connections,
            "--transactions",
            "60",
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let r = parse_result(&o);
        assert_eq!(r.transactions, 0);
        // Only division by zero: a connection left in the aborted block would fail the next
        // BEGIN's INSERT with 25P02 instead.
        let s = &r.scripts[0];
        assert_eq!(s.errors.get("22012"), Some(&60), "{:?}", s.errors);
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert_eq!(s.statements[1].count, 60);
        assert_eq!(s.statements[2].errors.get("22012"), Some(&60));
        assert_eq!(
            s.statements[3].count, 0,
            "the rest of the script is skipped"
        );
        assert_eq!(r.connections_lost, 0);
        assert_eq!(count(&c, "SELECT count(*) FROM t"), 0, "nothing stays");
    }
}

#[test]
fn two_scripts_at_weights_three_and_one_split_about_three_to_one() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = write_file(dir.path(), "a.sql", "SELECT 1;\n");
    let b = write_file(dir.path(), "b.sql", "SELECT 2;\n");
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &format!("{a}@3"),
        "--workload",
        &format!("{b}@1"),
        "--clients",
        "2",
        "--transactions",
        "2000",
        "--seed",
        "42",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.workload, "a@3 + b@1");
    let share = r.scripts[0].count as f64 / r.transactions as f64;
    assert!((0.70..0.80).contains(&share), "a's share {share}");
    assert_eq!(r.scripts[0].weight, 3);
    assert_eq!(r.scripts[1].weight, 1);
}

#[test]
fn unknown_builtins_unsupported_meta_commands_and_bad_scales_are_refused_before_connecting() {
    let dsn = nowhere();
    let dir = tempfile::tempdir().unwrap();
    let o = pgopt(&["bench", &dsn, "--workload", "tpcc", "--transactions", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("no such built-in script") && e.contains("tpcb-like"),
        "{e}"
    );
    let file = write_file(
        dir.path(),
        "shell.sql",
        "\\set a 1\n\\setshell x echo 1\nSELECT 1;\n",
    );
    let o = pgopt(&["bench", &dsn, "--workload", &file, "--transactions", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("shell.sql:2:") && e.contains("\\setshell is not supported"),
        "{e}"
    );
    assert!(e.contains("\\set") && e.contains("\\sleep"), "{e}");
    for bad in ["-1", "0", "x"] {
        let o = pgopt(&[
            "bench",
            &dsn,
            "--workload",
            "select-only",
            "--scale",
            bad,
            "--transactions",
            "1",
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains("bad scale"), "{bad}: {e}");
        assert!(!e.contains("-- -1"), "{bad}: {e}");
    }
}

#[test]
fn variables_are_typed_by_the_server_and_a_value_that_does_not_fit_names_the_variable() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE k (id int4 PRIMARY KEY, name text, price numeric, ratio float4);\n\
         INSERT INTO k SELECT g, 'n' || g, g * 1.5, g / 2.0 FROM generate_series(1, 100) g;",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // int8 variables against int4, a double against numeric and float4, an integer against
    // text, a --define.
    let ok = write_file(
        dir.path(),
        "typed.sql",
        "\\set id random(1, 100)\n\\set half :id / 2.0\n\
         SELECT * FROM k WHERE id = :id AND name <> :id AND price > :half AND ratio >= :half \
         AND id <= :top;\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &ok,
        "-D",
        "top=1000",
        "--transactions",
        "50",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.transactions, 50, "{:?}", r.errors_by_code());
    // A double for an int4 column: a clear error naming the variable and the statement.
    let bad = write_file(
        dir.path(),
        "bad.sql",
        "\\set x 2.5\n-- name: by_id\nSELECT * FROM k WHERE id = :x;\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &bad,
        "--transactions",
        "5",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(":x") && e.contains("by_id") && e.contains("int4") && e.contains("$1"),
        "{e}"
    );
}

#[test]
fn sleep_holds_the_connection_inside_the_transaction_time() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "nap.sql",
        "\\set n 20\n\\sleep :n ms\nSELECT 1;\n",
    );
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        &file,
        "--transactions",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = parse_result(&o);
    assert_eq!(r.transactions, 10);
    // A sleep lasts at least its time: every transaction is at least 20 ms.
    assert!(r.latency.p50_ms >= 20.0, "{:?}", r.latency);
    assert!(r.exec.p50_ms >= 20.0, "{:?}", r.exec);
}

#[test]
fn progress_prints_a_line_every_second_into_a_pipe() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let o = pgopt(&[
        "bench",
        &c.dsn("postgres"),
        "--workload",
        "select1",
        "--duration",
        "2500ms",
        "--progress",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert!(lines.len() >= 2, "{e}");
    assert!(
        lines[0].contains(" tps, lat ")
            && lines[0].contains("stddev")
            && lines[0].contains("failed"),
        "{e}"
    );
}

#[test]
fn waiting_for_a_shared_connection_is_reported_apart_from_execution() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let run = |clients: &str, connections: &str| {
        let o = pgopt(&[
            "bench",
            &c.dsn("postgres"),
            "--workload",
            "select1",
            "--clients",
            clients,
            "--connections",
            connections,
            "--transactions",
            "2000",
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        parse_result(&o)
    };
    let shared = run("20", "2");
    assert!(shared.wait.mean_ms > 0.0, "{:?}", shared.wait);
    assert!(shared.exec.mean_ms > 0.0, "{:?}", shared.exec);
    let own = run("2", "2");
    assert_eq!(own.wait.max_ms, 0.0, "{:?}", own.wait);
    assert!(own.exec.mean_ms > 0.0);
}

#[test]
fn compare_refuses_other_clients_without_force_warns_on_duration_and_names_a_and_b() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let run = |clients: &str, duration: &str, name: &str| {
        let o = pgopt(&[
            "bench",
            &c.dsn("postgres"),
            "--workload",
            "select1",
            "--clients",
            clients,
            "--duration",
            duration,
            "--format",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let p = dir.path().join(name);
        std::fs::write(&p, &o.stdout).unwrap();
        p.display().to_string()
    };
    let a = run("1", "1s", "a.json");
    let b = run("2", "1s", "b.json");
    let o = pgopt(&["bench", "compare", &a, &b]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("A: {a}")) && e.contains(&format!("B: {b}")),
        "{e}"
    );
    assert!(
        e.contains("clients differs: A 1, B 2") && e.contains("--force"),
        "{e}"
    );
    let o = pgopt(&["bench", "compare", &a, &b, "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("A: {a}")), "{}", stdout(&o));
    // Same clients, a longer run: a warning, no refusal.
    let d = run("1", "2s", "d.json");
    let o = pgopt(&["bench", "compare", &a, &d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: duration"), "{}", stderr(&o));
}
