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
    assert_eq!(r.operations.len(), 1);
    assert_eq!(r.operations[0].name, "select1");
    assert_eq!(r.operations[0].count, 2000);
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
        "operations",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    let op = &v["operations"][0];
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
    assert!(
        page.contains("<td>balance</td>") && page.contains("<td>deposit</td>"),
        "{page}"
    );
    assert!(page.contains("latency percentiles by operation") && page.contains("<svg"));
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
    let names: Vec<_> = r.operations.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["balance", "deposit"]);
    assert!(r.operations.iter().all(|o| o.count > 0));
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
    let op = &r.operations[0];
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
fn compare_reports_b_over_a_per_operation_and_marks_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let op = |name: &str, p50: f64, p99: f64, tps: f64| OperationResult {
        name: name.into(),
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
    let result = |ops: Vec<OperationResult>, tps: f64, p50: f64| BenchResult {
        schema_version: RESULT_SCHEMA_VERSION,
        pgopt_version: "0.1.0".into(),
        workload: "w".into(),
        server_version: "15.8".into(),
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
        operations: ops,
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

    let o = pgopt(&["bench", "compare", &pa, &pb, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let login = &v["operations"][0];
    assert_eq!(login["name"], "login");
    let close = |x: &serde_json::Value, want: f64| {
        let got = x.as_f64().unwrap_or_else(|| panic!("not a number: {x}"));
        assert!((got - want).abs() < 1e-9, "{got} != {want}");
    };
    close(&login["p50_ms"]["ratio"], 0.5);
    close(&login["p99_ms"]["ratio"], 1.5);
    close(&login["throughput_tps"]["ratio"], 1.5);
    assert_eq!(v["operations"][1]["present"], "only_a");
    assert!(v["operations"][1]["p50_ms"]["ratio"].is_null());
    assert_eq!(v["operations"][2]["present"], "only_b");
    close(&v["total"]["throughput_tps"]["ratio"], 1.5);
    close(&v["total"]["p50_ms"]["ratio"], 0.5);

    let o = pgopt(&["bench", "compare", &pa, &pb]);
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
    assert!(page.contains("p50 by operation") && page.contains("p99 by operation"));
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
    let o = pgopt(&["bench", "compare", &pa, &junk]);
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
        ("unknown.sql", "SELECT 1;\n\\sleep 1 ms\n", ":2:", "\\sleep"),
        (
            "random.sql",
            "\\set a 1\n\n\\set b random(5)\nSELECT :b;\n",
            ":3:",
            "random()",
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
    let names: Vec<&str> = r.operations.iter().map(|o| o.name.as_str()).collect();
    assert!(names.contains(&"select1"), "{names:?}");
    // At the weight of an average operation: about a third of the executions.
    let floor = r.operations.iter().find(|o| o.name == "select1").unwrap();
    assert!(floor.count > 150 && floor.count < 450, "{}", floor.count);
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
