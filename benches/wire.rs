//! `cargo bench --bench wire`: the client's own cost per transaction, without the runner.
//!
//! On one embedded cluster (`pgbench -i -s 5` first), for 2 and 8 clients, each on a thread
//! of its own with a current-thread runtime and one connection (pgbench's `-c N -j N`), for
//! `SELECT 1` and pgbench's select-only transaction, each run `PGOPT_WIRE_SECONDS` (default
//! 5) seconds:
//! - `tokio-postgres`: a prepared statement and an `execute_raw` loop (what the runner does);
//! - `wire`: the same loop on `bench::wire::WireConn` (text parameters, as pgbench);
//! - `pgbench -M prepared -c N -j N`.
//!
//! All over TCP to 127.0.0.1. The order is pgbench, tokio-postgres, wire for every row; the
//! ratios are to pgbench. Each run is announced on stderr with the process id first, so that
//! `perf stat -e instructions:u -p PID` can count the clients' own instructions meanwhile
//! (the server and pgbench are other processes).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use pgopt::bench::wire::{Value, WireConn};
use pgopt::db::{SystemDefaults, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::types::ToSql;

const SCALE: i64 = 5;
const SELECT_ONLY: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

#[derive(Clone, Copy, PartialEq)]
enum Load {
    Select1,
    SelectOnly,
}

#[derive(Clone, Copy)]
enum Client {
    TokioPostgres,
    Wire,
}

fn main() {
    let seconds: u64 = std::env::var("PGOPT_WIRE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let c = Cluster::start(ClusterOptions {
        settings: vec![("shared_buffers".into(), "'256MB'".into())],
        ..Default::default()
    })
    .expect("cluster");
    let pgbench = c.installation().bin.program("pgbench");
    let conn_args = [
        "-h".to_string(),
        "127.0.0.1".to_string(),
        "-p".to_string(),
        c.port().to_string(),
        "-U".to_string(),
        "postgres".to_string(),
    ];
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
    c.psql("postgres", "SELECT count(abalance) FROM pgbench_accounts;")
        .expect("warm-up");
    let dir = tempfile::tempdir().expect("tempdir");
    let select1 = dir.path().join("select1.sql");
    std::fs::write(&select1, "SELECT 1;\n").unwrap();
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some("postgres".into()),
        home: None,
    };
    let target = Target::resolve_with(Some(&c.dsn("postgres")), &|_| None, &defaults).unwrap();
    println!("pgbench -i -s {SCALE}; {seconds} s per run, TCP to 127.0.0.1, prepared statements");

    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "workload",
        "clients",
        "pgbench tx/s",
        "tokio-postgres tx/s",
        "wire tx/s",
        "tokio-postgres/pgbench",
        "wire/pgbench",
    ]);
    for n in [2usize, 8] {
        for load in [Load::Select1, Load::SelectOnly] {
            let script = (load == Load::Select1).then_some(select1.as_path());
            let pb = run_pgbench(&pgbench, &conn_args, script, n, seconds);
            let tp = run_clients(&target, Client::TokioPostgres, load, n, seconds);
            let wi = run_clients(&target, Client::Wire, load, n, seconds);
            let label = match load {
                Load::Select1 => "SELECT 1",
                Load::SelectOnly => "select-only",
            };
            println!(
                "{label:<11} {n}: pgbench {pb:>8.0}  tokio-postgres {tp:>8.0} ({:.3})  wire {wi:>8.0} ({:.3})",
                tp / pb,
                wi / pb
            );
            table.add_row(vec![
                label.to_string(),
                format!("{n}/{n}"),
                format!("{pb:.0}"),
                format!("{tp:.0}"),
                format!("{wi:.0}"),
                format!("{:.3}", tp / pb),
                format!("{:.3}", wi / pb),
            ]);
        }
    }
    println!("{table}");
}

/// N threads, each with a current-thread runtime and its own connection, looping until told
/// to stop; returns transactions per second.
fn run_clients(target: &Target, client: Client, load: Load, n: usize, seconds: u64) -> f64 {
    let name = match client {
        Client::TokioPostgres => "tokio-postgres",
        Client::Wire => "wire",
    };
    let ready = Arc::new(Barrier::new(n + 1));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..n)
        .map(|id| {
            let (target, ready, stop, done) =
                (target.clone(), ready.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let mut rng = SmallRng::seed_from_u64(id as u64);
                    // As a task, as the runner runs its clients.
                    let count = tokio::spawn(async move {
                        match client {
                            Client::TokioPostgres => {
                                tokio_postgres_loop(&target, load, &ready, &stop, &mut rng).await
                            }
                            Client::Wire => wire_loop(&target, load, &ready, &stop, &mut rng).await,
                        }
                    })
                    .await
                    .unwrap();
                    done.fetch_add(count, Ordering::Relaxed);
                })
            })
        })
        .collect();
    ready.wait();
    eprintln!("pid {} running {name} n={n}", std::process::id());
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn aid(rng: &mut SmallRng) -> i32 {
    rng.gen_range(1..=100_000 * SCALE as i32)
}

async fn tokio_postgres_loop(
    target: &Target,
    load: Load,
    ready: &Barrier,
    stop: &AtomicBool,
    rng: &mut SmallRng,
) -> u64 {
    let conn = pgopt::db::connect(target).await.expect("connect");
    let client = conn.client();
    let sql = match load {
        Load::Select1 => "SELECT 1",
        Load::SelectOnly => SELECT_ONLY,
    };
    let stmt = client.prepare(sql).await.expect("prepare");
    ready.wait();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let r = match load {
            Load::Select1 => {
                client
                    .execute_raw(&stmt, std::iter::empty::<&(dyn ToSql + Sync)>())
                    .await
            }
            Load::SelectOnly => {
                let aid = aid(rng);
                client
                    .execute_raw(&stmt, [&aid as &(dyn ToSql + Sync)])
                    .await
            }
        };
        r.expect("execute");
        n += 1;
    }
    n
}

async fn wire_loop(
    target: &Target,
    load: Load,
    ready: &Barrier,
    stop: &AtomicBool,
    rng: &mut SmallRng,
) -> u64 {
    let mut conn = WireConn::connect(target, &target.hosts[0])
        .await
        .expect("connect");
    let sql = match load {
        Load::Select1 => "SELECT 1",
        Load::SelectOnly => SELECT_ONLY,
    };
    let stmt = conn.prepare(sql).await.expect("prepare");
    ready.wait();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        match load {
            Load::Select1 => conn.execute(&stmt, &[]).await,
            Load::SelectOnly => conn.execute(&stmt, &[Value::Int(aid(rng).into())]).await,
        }
        .expect("execute");
        n += 1;
    }
    n
}

/// `pgbench -M prepared -c N -j N -T seconds`: its tps (without initial connection time).
fn run_pgbench(
    pgbench: &Path,
    conn_args: &[String],
    script: Option<&Path>,
    n: usize,
    seconds: u64,
) -> f64 {
    let mut cmd = Command::new(pgbench);
    cmd.args(conn_args).args([
        "-n",
        "-M",
        "prepared",
        "-c",
        &n.to_string(),
        "-j",
        &n.to_string(),
        "-T",
        &seconds.to_string(),
    ]);
    match script {
        Some(s) => cmd.arg("-f").arg(s),
        None => cmd.arg("-S"),
    };
    let out = cmd.arg("postgres").output().expect("run pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or_else(|| panic!("no tps in pgbench's output:\n{text}"))
}
