//! `cargo bench --bench analyze`: wall time and peak memory of `pgopt analyze` on databases of
//! 1,000 and 10,000 tables (two indexes each) with 5,000 distinct statements tracked, how they
//! grow between the two, and the start time of an embedded cluster from its template.
//!
//! Goal (issue 2): under 2 s and 150 MB at 10,000 tables, growing linearly.
//!
//! `PGOPT_BASELINE_BIN=/path/to/an/older/pgopt` also runs that binary on the same planted
//! servers, alternating with this one, and prints the ratio of the medians: the cost of the
//! checks added since. The bloat estimate's two catalog queries are also timed on their own
//! with every relation judged (no size floor), since the bench's tables are empty and the
//! collect's own floor (128 pages) leaves them out.

mod common;

use std::time::{Duration, Instant};

use common::run_measured;
use pgopt::embedded::{Cluster, ClusterOptions};

const STATEMENTS: usize = 5_000;

fn main() {
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

    let mut results = Vec::new();
    for tables in [1_000usize, 10_000] {
        let c = Cluster::start(ClusterOptions::default()).expect("cluster");
        let t = Instant::now();
        populate(&c, tables);
        println!(
            "populated {tables} tables and {STATEMENTS} statements in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        // One warm-up run, then the measured one.
        run_analyze(bin, &c);
        let (wall, rss_kb) = run_analyze(bin, &c);
        println!(
            "pgopt analyze, {tables:>6} tables: wall {:>7.0} ms, peak memory {:>6.1} MB",
            ms(wall),
            rss_kb as f64 / 1024.0
        );
        results.push((tables, wall, rss_kb));
        if let Ok(baseline) = std::env::var("PGOPT_BASELINE_BIN") {
            compare_with_baseline(bin, &baseline, &c, tables);
        }
        time_bloat_queries(&c, tables);
    }
    let (t1, w1, m1) = results[0];
    let (t2, w2, m2) = results[1];
    println!(
        "growth {}x tables: wall x{:.2}, peak memory x{:.2} (linear would be x{})",
        t2 / t1,
        w2.as_secs_f64() / w1.as_secs_f64(),
        m2 as f64 / m1 as f64,
        t2 / t1
    );
    println!(
        "goal at 10,000 tables: wall {:.2} of 2 s, memory {:.2} of 150 MB",
        w2.as_secs_f64() / 2.0,
        m2 as f64 / 1024.0 / 150.0
    );
}

/// Five runs of each binary, alternating, on the same server; the medians and their ratio.
fn compare_with_baseline(bin: &str, baseline: &str, c: &Cluster, tables: usize) {
    run_analyze(baseline, c);
    let (mut now, mut before) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        before.push(run_analyze(baseline, c).0);
        now.push(run_analyze(bin, c).0);
    }
    now.sort();
    before.sort();
    println!(
        "{tables:>6} tables: median wall {:.0} ms now, {:.0} ms baseline: x{:.2}",
        ms(now[2]),
        ms(before[2]),
        now[2].as_secs_f64() / before[2].as_secs_f64()
    );
}

/// The bloat estimate's catalog queries with no size floor, timed by EXPLAIN ANALYZE.
fn time_bloat_queries(c: &Cluster, tables: usize) {
    for (what, sql) in [
        ("tables", include_str!("../src/sql/bloat_tables.sql")),
        ("indexes", include_str!("../src/sql/bloat_indexes.sql")),
    ] {
        let out = c
            .psql(
                "postgres",
                &format!(
                    "SET jit = off;\nPREPARE q(oid[], int) AS {sql};\n\
                     EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) EXECUTE q('{{}}', 0);"
                ),
            )
            .expect("explain");
        let json: serde_json::Value = serde_json::from_str(out.trim()).expect("plan json");
        let exec = json[0]["Execution Time"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{tables:>6} tables: bloat estimate query over every {what}, no size floor: {exec:.0} ms"
        );
    }
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
