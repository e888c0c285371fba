//! `cargo bench --bench serve`: the figures `pgopt serve` is judged by, from one run.
//!
//! 1. Overhead on a watched server: pgbench's TPC-B-like load (`-s 10`, 4 clients) on one
//!    embedded cluster, unwatched and watched by `pgopt serve` at the default intervals, in
//!    four pairs of `PGOPT_SERVE_PGBENCH_SECONDS` (default 30) each in ABBA order, the
//!    watched runs 30 s after the daemon's start (past its first full snapshot); prints the
//!    mean ratio watched / unwatched between snapshots, the full snapshot's time (`pgopt
//!    analyze` on the same server) and the ratio amortized over the 15 min interval (goal
//!    >= 0.98).
//! 2. Alert latency: a rule `connections_used_ratio > 0.5` with a webhook to a receiver
//!    in this process; the bench opens connections past half of max_connections and
//!    prints the seconds from the moment they are all open to the webhook's POST (the
//!    default 10 s sample interval bounds it).
//! 3. The daemon watching 10 targets (10 embedded clusters) at the default intervals for
//!    `PGOPT_SERVE_BENCH_MINUTES` (default 10): its CPU seconds (utime + stime from
//!    /proc), peak resident memory (VmHWM), and the SQLite store's growth extrapolated to
//!    bytes per target per day.
//! 4. Dashboard page time: a store filled with 7 days of generated history for one target
//!    at the default retention; the median of 10 GETs of the server page (range 7d) and of
//!    the fleet page.
//!
//! Environment: `PGOPT_SERVE_BENCH_MINUTES` (10), `PGOPT_SERVE_PGBENCH_SECONDS` (30),
//! `PGOPT_SERVE_BENCH_ONLY` (a comma list of overhead,alert,fleet,dashboard; default all).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::serve::http::pages::history;
use pgopt::serve::store::sqlite::SqliteStore;
use pgopt::serve::store::{Retention, Store};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn wanted(part: &str) -> bool {
    std::env::var("PGOPT_SERVE_BENCH_ONLY")
        .map(|v| v.split(',').any(|p| p.trim() == part))
        .unwrap_or(true)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<(u16, usize)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(120))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut r = Vec::new();
    s.read_to_end(&mut r).ok()?;
    let text = String::from_utf8_lossy(&r);
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, r.len()))
}

fn wait_ready(port: u16) {
    let start = Instant::now();
    while get(port, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the daemon never got ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

struct Daemon {
    child: Child,
    data: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, targets: &[(String, String)], extra: &str) -> Daemon {
        let port = free_port();
        let data = dir.join(format!("data-{port}"));
        let mut toml = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}\n",
            data.display()
        );
        for (name, dsn) in targets {
            toml.push_str(&format!(
                "\n[[target]]\nname = \"{name}\"\ndsn = \"{dsn}\"\n"
            ));
        }
        let config = dir.join(format!("pgopt-{port}.toml"));
        std::fs::write(&config, toml).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pgopt"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("PGOPT_LOG", "pgopt=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgopt serve");
        wait_ready(port);
        Daemon { child, data }
    }

    /// CPU seconds (user + system) and peak resident bytes so far.
    fn usage(&self) -> (f64, u64) {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let cpu = (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / ticks;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let hwm = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        (cpu, hwm * 1024)
    }

    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn store_bytes(data: &Path) -> u64 {
    ["history.sqlite3", "history.sqlite3-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn pgbench_tps(c: &Cluster, seconds: u64) -> f64 {
    let out = Command::new(c.installation().bin.program("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &c.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-c", "4", "-j", "4", "-T", &seconds.to_string(), "postgres"])
        .output()
        .expect("run pgbench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .expect("pgbench's tps line")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Seconds the watched runs wait after the daemon is ready: its first full snapshot comes
/// about 5 s (jittered) after the start, and is then 15 min away; the runs measure the
/// steady state, the snapshot's cost is measured on its own and amortized over its interval.
const SETTLE_SECONDS: u64 = 30;

fn overhead(dir: &Path) {
    let seconds = env_u64("PGOPT_SERVE_PGBENCH_SECONDS", 30);
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let init = Command::new(c.installation().bin.program("pgbench"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &c.port().to_string(),
            "-U",
            "postgres",
        ])
        .args(["-i", "-s", "10", "-q", "postgres"])
        .output()
        .unwrap();
    assert!(init.status.success());
    let targets = vec![("bench".to_string(), c.dsn("postgres"))];
    let mut ratios = Vec::new();
    println!(
        "overhead: pgbench TPC-B-like, 4 clients, {seconds} s per run, 4 pairs in ABBA order \
         (unwatched first, then watched first, ...: a drift over the runs cancels out)"
    );
    for pair in 1..=4 {
        let watched_first = pair % 2 == 0;
        let watched_run = || {
            let d = Daemon::start(dir, &targets, "");
            std::thread::sleep(Duration::from_secs(SETTLE_SECONDS));
            let tps = pgbench_tps(&c, seconds);
            d.stop();
            tps
        };
        let (alone, watched) = if watched_first {
            let w = watched_run();
            (pgbench_tps(&c, seconds), w)
        } else {
            let a = pgbench_tps(&c, seconds);
            (a, watched_run())
        };
        println!(
            "  pair {pair} ({} first): unwatched {alone:.0} tps, watched {watched:.0} tps, \
             ratio {:.3}",
            if watched_first {
                "watched"
            } else {
                "unwatched"
            },
            watched / alone
        );
        ratios.push(watched / alone);
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!("overhead: watched / unwatched TPS between snapshots, mean of 4 pairs: {mean:.3}");
    // The full snapshot, every 15 min by default: the same collect + advise as `pgopt
    // analyze`, timed here on the same server, idle.
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_pgopt"))
            .args(["analyze", &c.dsn("postgres"), "--format", "json"])
            .output()
            .expect("run pgopt analyze");
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "pgopt analyze: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        took.push(started.elapsed().as_secs_f64());
    }
    let snapshot = median(took);
    let share = snapshot / 900.0;
    println!(
        "overhead: a full snapshot takes {snapshot:.2} s (pgopt analyze, median of 3), once per \
         15 min: at most {:.2} % of the interval; amortized ratio ~ {:.3} (goal >= 0.98)",
        share * 100.0,
        mean * (1.0 - share)
    );
}

#[derive(Default)]
struct Hooked(Mutex<Vec<Instant>>);

async fn hook(State(h): State<Arc<Hooked>>, body: String) -> StatusCode {
    if body.contains("\"status\":\"firing\"") {
        h.0.lock().unwrap().push(Instant::now());
    }
    StatusCode::OK
}

fn alert_latency(dir: &Path) {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hooked = Arc::new(Hooked::default());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let hook_port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(hooked.clone());
    rt.spawn(async move { axum::serve(listener, app).await });
    let extra = format!(
        "[[alert]]\nname = \"busy\"\nwhen = \"connections > 20\"\n\n[[notify.webhook]]\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n"
    );
    let d = Daemon::start(dir, &[("alerting".to_string(), c.dsn("postgres"))], &extra);
    std::thread::sleep(Duration::from_secs(12));
    let mut latencies = Vec::new();
    for round in 1..=3 {
        let held: Vec<_> = rt.block_on(async {
            let mut held = Vec::new();
            for _ in 0..25 {
                let (client, conn) =
                    tokio_postgres::connect(&c.dsn("postgres"), tokio_postgres::NoTls)
                        .await
                        .unwrap();
                tokio::spawn(conn);
                held.push(client);
            }
            held
        });
        let opened = Instant::now();
        let before = hooked.0.lock().unwrap().len();
        while hooked.0.lock().unwrap().len() == before {
            assert!(opened.elapsed() < Duration::from_secs(120), "no webhook");
            std::thread::sleep(Duration::from_millis(20));
        }
        let at = *hooked.0.lock().unwrap().last().unwrap();
        let latency = at.duration_since(opened).as_secs_f64();
        println!("  round {round}: condition met -> webhook {latency:.2} s");
        latencies.push(latency);
        drop(held);
        // Let it resolve before the next round (the next samples see few connections).
        std::thread::sleep(Duration::from_secs(25));
    }
    d.stop();
    println!(
        "alert latency (10 s sample interval): median {:.2} s",
        median(latencies)
    );
}

fn fleet(dir: &Path) {
    let minutes = env_u64("PGOPT_SERVE_BENCH_MINUTES", 10);
    let clusters: Vec<Cluster> = (0..10)
        .map(|_| std::thread::spawn(|| Cluster::start(ClusterOptions::default()).unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    for c in &clusters {
        c.psql(
            "postgres",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        )
        .unwrap();
    }
    let targets: Vec<(String, String)> = clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("db{i}"), c.dsn("postgres")))
        .collect();
    let d = Daemon::start(dir, &targets, "");
    let size_at_start = store_bytes(&d.data);
    let (cpu0, _) = d.usage();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(minutes * 60));
    let (cpu1, hwm) = d.usage();
    let wall = start.elapsed().as_secs_f64();
    let size = store_bytes(&d.data).saturating_sub(size_at_start);
    let data = d.data.clone();
    d.stop();
    let size_after = store_bytes(&data);
    println!("fleet: 10 targets at the default intervals for {minutes} min");
    println!(
        "  daemon CPU {:.1} s in {:.0} s wall = {:.2} % of one core; peak RSS {:.1} MiB",
        cpu1 - cpu0,
        wall,
        100.0 * (cpu1 - cpu0) / wall,
        hwm as f64 / 1048576.0
    );
    println!(
        "  store grew {size} bytes ({size_after} after the stop): {:.1} MB per target per day",
        size as f64 / 10.0 / wall * 86400.0 / 1e6
    );
}

fn dashboard(dir: &Path) {
    let data = dir.join("dash");
    let store = Arc::new(SqliteStore::open(&data).unwrap());
    let spec = history::Spec::default();
    let now = chrono::Utc::now();
    let t = Instant::now();
    let filled = history::fill(store.as_ref(), &spec, now).unwrap();
    let stats = store.maintain(now, &Retention::default()).unwrap();
    println!(
        "dashboard: 7 days of history for one target: {} points generated in {:.1} s, {} rolled up, {} raw deleted",
        filled.points,
        t.elapsed().as_secs_f64(),
        stats.rolled_up,
        stats.deleted
    );
    let app = history::app(&spec, now, store, data, "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = pgopt::serve::http::router(app);
    rt.spawn(async move { axum::serve(listener, router).await });
    let name = &spec.targets[0];
    for (label, path) in [
        ("fleet page", "/".to_string()),
        ("server page, 6h", format!("/targets/{name}?range=6h")),
        ("server page, 7d", format!("/targets/{name}?range=7d")),
        (
            "statement page, 7d",
            format!(
                "/targets/{name}/statements/{}?range=7d",
                spec.statements[0].0
            ),
        ),
    ] {
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..10 {
            let t = Instant::now();
            let (code, n) = get(port, &path).expect("a response");
            assert_eq!(code, 200, "{path}");
            bytes = n;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "  {label}: median {:.0} ms of 10 ({} kB)",
            median(times),
            bytes / 1024
        );
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    if wanted("dashboard") {
        dashboard(dir.path());
    }
    if wanted("alert") {
        alert_latency(dir.path());
    }
    if wanted("overhead") {
        overhead(dir.path());
    }
    if wanted("fleet") {
        fleet(dir.path());
    }
}
