//! `cargo bench --bench pool`: the failover-aware pool (`pgopt_pool::PgPool`) against the
//! reference, deadpool-postgres, on one embedded cluster, in one run.
//!
//! - checkout + `SELECT 1` throughput: the same max size, the same number of client tasks,
//!   the same prepared statement (each pool's per-connection cache), rounds interleaved
//!   (ours, deadpool, ours, ...) so that a noisy neighbour hits both alike; the median of
//!   each and the ratio ours / deadpool (goal >= 1.0);
//! - set-up of a pool of 5 against 5 × one `pgopt_pool::connect` (median of several runs;
//!   the pool opens its connections in parallel).
//!
//! `PGOPT_POOL_SECONDS` (default 3) per round, `PGOPT_POOL_ROUNDS` (default 3),
//! `PGOPT_POOL_CLIENTS` (default 16), `PGOPT_POOL_SIZE` (default 8).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgopt::embedded::{local_target, Cluster, ClusterOptions};
use pgopt_pool::{PgPool, PgPoolOptions, Target};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `clients` tasks doing `one` in a loop for `secs`; returns operations per second.
async fn throughput<F, Fut>(clients: u64, secs: u64, one: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (one, stop, done) = (one.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    one().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn deadpool(port: u16, size: usize) -> deadpool_postgres::Pool {
    let mut cfg = deadpool_postgres::Config::new();
    cfg.host = Some("127.0.0.1".into());
    cfg.port = Some(port);
    cfg.user = Some("postgres".into());
    cfg.dbname = Some("postgres".into());
    cfg.manager = Some(deadpool_postgres::ManagerConfig {
        recycling_method: deadpool_postgres::RecyclingMethod::Fast,
    });
    cfg.pool = Some(deadpool_postgres::PoolConfig::new(size));
    cfg.create_pool(
        Some(deadpool_postgres::Runtime::Tokio1),
        tokio_postgres::NoTls,
    )
    .expect("deadpool")
}

fn main() {
    let secs = env_or("PGOPT_POOL_SECONDS", 3);
    let rounds = env_or("PGOPT_POOL_ROUNDS", 3);
    let clients = env_or("PGOPT_POOL_CLIENTS", 16);
    let size = env_or("PGOPT_POOL_SIZE", 8) as usize;
    let c = Cluster::start(ClusterOptions {
        settings: vec![("max_connections".into(), "100".into())],
        ..Default::default()
    })
    .expect("cluster");
    let target: Target = local_target(c.port(), "postgres").expect("target");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ours = PgPool::connect(
            &target,
            PgPoolOptions {
                min_size: size,
                max_size: size,
                ..PgPoolOptions::default()
            },
        )
        .await
        .expect("our pool");
        let theirs = deadpool(c.port(), size);
        // Warm both: every connection open, the statement prepared on each.
        for _ in 0..2 {
            throughput(clients, 1, {
                let p = ours.clone();
                move || one_ours(p.clone())
            })
            .await;
            throughput(clients, 1, {
                let p = theirs.clone();
                move || one_deadpool(p.clone())
            })
            .await;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let x = throughput(clients, secs, {
                let p = ours.clone();
                move || one_ours(p.clone())
            })
            .await;
            let y = throughput(clients, secs, {
                let p = theirs.clone();
                move || one_deadpool(p.clone())
            })
            .await;
            println!(
                "round {}: pgopt-pool {x:.0}/s, deadpool-postgres {y:.0}/s, ratio {:.3}",
                round + 1,
                x / y
            );
            a.push(x);
            b.push(y);
        }
        let (x, y) = (median(a), median(b));
        println!(
            "checkout + SELECT 1, {clients} clients, max size {size}, {rounds} interleaved rounds \
             of {secs} s (median): pgopt-pool {x:.0}/s, deadpool-postgres {y:.0}/s, \
             ratio {:.3} (goal >= 1.0)",
            x / y
        );
        let stats = ours.stats();
        println!(
            "pgopt-pool stats: open {}, connects {}, waits {}, exhausted {}, cache hits {}",
            stats.open, stats.connects, stats.waits, stats.exhausted, stats.statement_cache_hits
        );
        ours.close();
        drop(theirs);

        // Set-up: a pool of 5 against 5 connects one after the other.
        let (mut setup, mut five) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            let t = Instant::now();
            let p = PgPool::connect(
                &target,
                PgPoolOptions {
                    min_size: 5,
                    max_size: 5,
                    ..PgPoolOptions::default()
                },
            )
            .await
            .expect("pool of 5");
            setup.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(p.stats().open, 5);
            p.close();
            let t = Instant::now();
            let mut conns = Vec::new();
            for _ in 0..5 {
                conns.push(pgopt_pool::connect(&target).await.expect("connect"));
            }
            five.push(t.elapsed().as_secs_f64() * 1000.0);
            drop(conns);
        }
        let (s, f) = (median(setup), median(five));
        println!(
            "set-up (median of 7): pool of 5 {s:.2} ms, 5 x one connect {f:.2} ms, \
             ratio {:.2} (ACGS claimed 77 ms for its pool of 5)",
            s / f
        );
    });
}

async fn one_ours(pool: PgPool) {
    let conn = pool.get().await.expect("checkout");
    let stmt = conn.prepare_cached("SELECT 1").await.expect("prepare");
    let row = conn.client().query_one(&stmt, &[]).await.expect("SELECT 1");
    assert_eq!(row.get::<_, i32>(0), 1);
}

async fn one_deadpool(pool: deadpool_postgres::Pool) {
    let conn = pool.get().await.expect("checkout");
    let stmt = conn.prepare_cached("SELECT 1").await.expect("prepare");
    let row = conn.query_one(&stmt, &[]).await.expect("SELECT 1");
    assert_eq!(row.get::<_, i32>(0), 1);
}
