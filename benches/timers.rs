//! `cargo bench --bench timers`: what timing one operation costs.
//!
//! 1. `Timers::record` alone, on one thread: ns per call (one operation name, then twelve
//!    names in turn, as a service records), and `record_with_statement`.
//! 2. On one embedded cluster, over TCP to 127.0.0.1, a pool of one connection on a
//!    current-thread runtime: `SELECT 1` through `PgPool::run` (untimed) and through
//!    `PgPool::op(..).run` (timed: the task-local statement note, the clock, the record),
//!    in 16 ABBA rounds of `PGOPT_TIMERS_ITERS` (default 10000) runs each. Prints the median
//!    round's ns per run for both, the difference and the ratio timed / untimed.
//!
//! The difference in part 2 is a few hundred ns at most on a run of tens of µs, within the
//! noise of a shared machine; part 1 is the figure to quote for the cost itself.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pgopt::db::{SystemDefaults, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt_pool::{PgPool, PgPoolOptions, PooledConn, Retry, Timers, Work};

const NAMES: [&str; 12] = [
    "authenticate_by_email",
    "login_by_username",
    "policy_rule_by_name",
    "user_security_events",
    "resource_audit_trail",
    "compliance_report",
    "workflow_dashboard",
    "record_security_event",
    "append_audit_log",
    "update_last_login",
    "start_workflow",
    "advance_workflow",
];

fn per_call(n: u64, f: impl Fn(u64)) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        f(i);
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn record_alone() {
    let n = 2_000_000u64;
    let timers = Timers::new(Duration::from_secs(3600));
    let took = |i: u64| Duration::from_micros(200 + (i * 7919) % 5000);
    per_call(n / 10, |i| timers.record(NAMES[0], took(i), None)); // warm-up
    let one = per_call(n, |i| timers.record(black_box(NAMES[0]), took(i), None));
    let twelve = per_call(n, |i| {
        timers.record(black_box(NAMES[(i % 12) as usize]), took(i), None)
    });
    let with_error = per_call(n, |i| {
        timers.record(black_box(NAMES[0]), took(i), Some(Some("57014")))
    });
    let with_statement = per_call(n, |i| {
        timers.record_with_statement(
            black_box(NAMES[0]),
            took(i),
            None,
            Some(black_box(
                "SELECT id FROM governance.users WHERE email = $1",
            )),
        )
    });
    println!("Timers::record, one thread, {n} calls each:");
    println!("  one operation name           {one:8.1} ns/call");
    println!("  twelve names in turn         {twelve:8.1} ns/call");
    println!("  with an error (SQLSTATE)     {with_error:8.1} ns/call");
    println!("  record_with_statement        {with_statement:8.1} ns/call");
}

/// `SELECT 1` on a pooled connection (a fn item: it has the signature `run` wants for every
/// borrow of the connection).
fn select_1_work(c: &PooledConn) -> Work<'_, i32> {
    Box::pin(async move { Ok(c.query_one("select 1", "SELECT 1", &[]).await?.get(0)) })
}

async fn select_1(pool: &PgPool, timed: bool, n: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        let v = if timed {
            pool.op("select_1").run(Retry::Once, select_1_work).await
        } else {
            pool.run(Retry::Once, select_1_work).await
        };
        assert_eq!(v.expect("SELECT 1"), 1);
    }
    started.elapsed().as_nanos() as f64 / n as f64
}

fn on_a_pool(iters: u64) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some("postgres".into()),
        home: None,
    };
    let target =
        Target::resolve_with(Some(&cluster.dsn("postgres")), &|_| None, &defaults).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pool = PgPool::connect(
            &target,
            PgPoolOptions {
                min_size: 1,
                max_size: 1,
                ..PgPoolOptions::default()
            },
        )
        .await
        .expect("pool");
        select_1(&pool, false, iters / 4).await; // warm-up
        let (mut untimed, mut timed) = (Vec::new(), Vec::new());
        // ABBA ABBA: drift in the machine's load falls on both sides alike.
        for timed_first in [false, true, true, false].repeat(4) {
            let ns = select_1(&pool, timed_first, iters).await;
            if timed_first {
                timed.push(ns)
            } else {
                untimed.push(ns)
            }
        }
        // The median round: one round slowed by a neighbour's compile does not move it.
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        let (u, t) = (median(&mut untimed), median(&mut timed));
        println!(
            "SELECT 1 on a pool of one connection (TCP, current-thread runtime), \
             {} rounds of {iters} runs each side:",
            untimed.len()
        );
        println!(
            "  PgPool::run (untimed)        {u:8.0} ns/run (median round; sorted {untimed:.0?})"
        );
        println!(
            "  PgPool::op(..).run (timed)   {t:8.0} ns/run (median round; sorted {timed:.0?})"
        );
        println!(
            "  difference {:+.0} ns/run, ratio timed / untimed {:.4}",
            t - u,
            t / u
        );
        let s = &pool.timers().snapshot()[0];
        println!(
            "  (the timers saw {} runs: p50 {:?} p99 {:?} max {:?})",
            s.count, s.p50, s.p99, s.max
        );
    });
}

fn main() {
    let iters: u64 = std::env::var("PGOPT_TIMERS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    record_alone();
    on_a_pool(iters);
}
