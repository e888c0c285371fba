//! `cargo bench --bench analyze`: wall time and peak memory of `pgopt analyze` on databases of
//! 1,000, 10,000 and 100,000 tables (two indexes each; `PGOPT_ANALYZE_TABLES=1000,10000` picks
//! the sizes) with 5,000 distinct statements tracked, beside the floor any tool that lists
//! every table pays (psql reading pg_class, pg_stat_user_tables and pg_stat_user_indexes in
//! full) in the same run, their ratio, the growth between sizes, and the start time of an
//! embedded cluster from its template.
//!
//! Goals (issue #15): analyze at most 2 x the psql floor at 10,000 and 100,000 tables, peak
//! memory under 150 MB at 100,000, growth linear or better.

mod common;

use std::time::{Duration, Instant};

use common::run_measured;
use pgopt::embedded::{Cluster, ClusterOptions};

const STATEMENTS: usize = 5_000;

fn main() {
    common::measuring_helper();
    let bin = env!("CARGO_BIN_EXE_pgopt");

    // Embedded start from the template (the template itself is built by the first start).
    drop(Cluster::start(ClusterOptions::default()).expect("cluster"));
    let mut starts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let c = Cluster::start(ClusterOptions::default()).expect("cluster");
        starts.push(t.elapsed());
        drop(c);
    }
    starts.sort();
    println!(
        "embedded cluster start from template: median {:.0} ms (min {:.0}, max {:.0}) over 5",
        ms(starts[2]),
        ms(starts[0]),
        ms(starts[4])
    );

    let counts: Vec<usize> = std::env::var("PGOPT_ANALYZE_TABLES")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("PGOPT_ANALYZE_TABLES: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let mut results = Vec::new();
    for &tables in &counts {
        let c = Cluster::start(ClusterOptions::default()).expect("cluster");
        let t = Instant::now();
        populate(&c, tables);
        println!(
            "populated {tables} tables and {STATEMENTS} statements in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // One warm-up run each, then the measured ones, interleaved: floor, pgopt, ...
        floor(&c);
        run_analyze(bin, &c);
        let mut walls = Vec::new();
        let mut floors = Vec::new();
        let mut rss = 0;
        for _ in 0..3 {
            floors.push(floor(&c));
            let (wall, rss_kb) = run_analyze(bin, &c);
            walls.push(wall);
            rss = rss.max(rss_kb);
        }
        walls.sort();
        floors.sort();
        let (wall, fl) = (walls[1], floors[1]);
        println!(
            "{tables:>7} tables: pgopt analyze {:>7.0} ms, psql floor {:>7.0} ms, ratio {:.2}, peak memory {:>6.1} MB",
            ms(wall),
            ms(fl),
            wall.as_secs_f64() / fl.as_secs_f64(),
            rss as f64 / 1024.0
        );
        results.push((tables, wall, fl, rss));
    }
    println!();
    println!("| tables | pgopt analyze (ms) | psql floor (ms) | ratio | peak memory (MB) |");
    println!("|---:|---:|---:|---:|---:|");
    for (tables, wall, fl, rss) in &results {
        println!(
            "| {tables} | {:.0} | {:.0} | {:.2} | {:.1} |",
            ms(*wall),
            ms(*fl),
            wall.as_secs_f64() / fl.as_secs_f64(),
            *rss as f64 / 1024.0
        );
    }
    for pair in results.windows(2) {
        let (t1, w1, _, m1) = pair[0];
        let (t2, w2, _, m2) = pair[1];
        println!(
            "growth {}x tables ({t1} -> {t2}): wall x{:.2}, peak memory x{:.2} (linear would be x{})",
            t2 / t1,
            w2.as_secs_f64() / w1.as_secs_f64(),
            m2 as f64 / m1 as f64,
            t2 / t1
        );
    }
}

/// The floor any tool that lists every table pays: psql reading pg_class,
/// pg_stat_user_tables and pg_stat_user_indexes in full (output discarded), median of one
/// run (the caller takes the median over runs).
fn floor(c: &Cluster) -> Duration {
    let psql = c.installation().bin.program("psql");
    let t = Instant::now();
    let out = std::process::Command::new(psql)
        .args([
            "-X",
            "-q",
            "-d",
            &c.dsn("postgres"),
            "-c",
            "SELECT * FROM pg_catalog.pg_class",
            "-c",
            "SELECT * FROM pg_catalog.pg_stat_user_tables",
            "-c",
            "SELECT * FROM pg_catalog.pg_stat_user_indexes",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run psql");
    let wall = t.elapsed();
    assert!(out.success(), "psql floor failed");
    wall
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `tables` tables with a primary key and one secondary index each, committed in batches so
/// the lock table does not overflow, then 5,000 distinct statements.
fn populate(c: &Cluster, tables: usize) {
    c.psql(
        "postgres",
        &format!(
            "DO $$ BEGIN FOR i IN 1..{tables} LOOP \
               EXECUTE format('CREATE TABLE bench_%s (id int PRIMARY KEY, a int, b text)', i); \
               EXECUTE format('CREATE INDEX ON bench_%s (a)', i); \
               IF i % 250 = 0 THEN COMMIT; END IF; \
             END LOOP; END $$;"
        ),
    )
    .expect("create tables");
    c.psql("postgres", "SELECT pg_stat_statements_reset()")
        .expect("reset");
    let mut sql = String::new();
    for i in 1..=STATEMENTS {
        let t = 1 + (i - 1) % tables;
        // Different shapes per i, so each is its own pg_stat_statements entry.
        sql.push_str(&format!(
            "SELECT count(*) FROM bench_{t} WHERE a > {i} AND b <> 'x{}';\n",
            i / tables
        ));
    }
    c.psql("postgres", &sql).expect("statements");
}

/// Runs `pgopt analyze` and returns its wall time and peak RSS (kB) from wait4's rusage.
fn run_analyze(bin: &str, c: &Cluster) -> (Duration, i64) {
    let dsn = c.dsn("postgres");
    let (wall, rss_kb, _) = run_measured(bin, &["analyze", &dsn, "--format", "json"]);
    (wall, rss_kb)
}
