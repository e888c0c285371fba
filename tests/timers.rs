//! Operation timers (`pgopt_pool::Timers` through `PgPool::op`) against an embedded
//! cluster: percentiles of known delays (`pg_sleep`), errors by SQLSTATE, the slow log
//! holding the statement, and the Prometheus exposition parsed back into series.
//!
//! The delay bounds are about correctness (a run is never shorter than the sleep it ran,
//! and the median of mostly-50 ms runs is not a 200 ms run), not speed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt_pool::{PgPool, PgPoolOptions, Retry};
use prometheus_client::registry::Registry;

mod hermetic;
use hermetic::target;

async fn pool(cluster: &Cluster) -> PgPool {
    PgPool::connect(
        &target(&cluster.dsn("postgres")),
        PgPoolOptions {
            min_size: 1,
            max_size: 2,
            ..PgPoolOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Runs `sql` (no parameters, no rows wanted) as operation `name`.
async fn run(pool: &PgPool, name: &str, sql: &'static str) -> pgopt_pool::Result<u64> {
    pool.op(name)
        .run(Retry::Never, |c| {
            Box::pin(async move { c.execute("test statement", sql, &[]).await })
        })
        .await
}

const SLEEP_THEN_DIVIDE: &str = "SELECT 1 / length(pg_sleep(0.15)::text)";

const MS: fn(u64) -> Duration = Duration::from_millis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percentiles_follow_known_pg_sleep_delays() {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let pool = pool(&cluster).await;
    pool.timers().set_slow_threshold(Duration::from_secs(3600));
    for _ in 0..20 {
        run(&pool, "sleep", "SELECT pg_sleep(0.05)").await.unwrap();
    }
    for _ in 0..3 {
        run(&pool, "sleep", "SELECT pg_sleep(0.2)").await.unwrap();
    }
    let ops = pool.timers().snapshot();
    assert_eq!(ops.len(), 1, "{ops:?}");
    let s = &ops[0];
    assert_eq!(s.name, "sleep");
    assert_eq!(s.count, 23);
    assert!(s.errors.is_empty(), "{s:?}");
    // 20 of 23 runs slept 50 ms: the median slept 50 ms, and is not one of the 200 ms runs.
    assert!(s.p50 >= MS(50) && s.p50 < MS(200), "{s:?}");
    assert!(s.p90 >= MS(50), "{s:?}");
    // The three 200 ms runs are the top 13 %: p99, p99.9 and max are among them.
    assert!(
        s.p99 >= MS(200) && s.p999 >= MS(200) && s.max >= MS(200),
        "{s:?}"
    );
    assert!(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max);
    assert!(s.total >= MS(20 * 50 + 3 * 200), "{s:?}");
    assert_eq!(s.slow, 0);
    assert!(pool.timers().slow_log().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_sqlstate() {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let pool = pool(&cluster).await;
    let err = run(&pool, "divide", "SELECT 1/0").await.unwrap_err();
    assert_eq!(err.sqlstate().map(|c| c.code()), Some("22012"), "{err}");
    run(&pool, "divide", "SELECT 1/0").await.unwrap_err();
    run(&pool, "divide", "SELECT 1/1").await.unwrap();
    let err = run(&pool, "missing", "SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    assert_eq!(err.sqlstate().map(|c| c.code()), Some("42P01"), "{err}");

    let ops = pool.timers().snapshot();
    let divide = ops.iter().find(|s| s.name == "divide").unwrap();
    assert_eq!(divide.count, 3);
    assert_eq!(divide.errors.get("22012"), Some(&2), "{divide:?}");
    assert_eq!(divide.errors.len(), 1, "{divide:?}");
    let missing = ops.iter().find(|s| s.name == "missing").unwrap();
    assert_eq!(missing.errors.get("42P01"), Some(&1), "{missing:?}");
    // A statement error leaves the connection usable: it went back to the pool.
    assert_eq!(pool.stats().failovers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slow_log_holds_the_statement_of_a_slow_run_and_not_of_a_fast_one() {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let pool = pool(&cluster).await;
    pool.timers().set_slow_threshold(MS(100));
    run(&pool, "fast", "SELECT 1").await.unwrap();
    let secs = 0.15f64;
    pool.op("slow_lookup")
        .run(Retry::Once, |c| {
            Box::pin(async move {
                c.query_one("a lookup", "SELECT 1 AS one", &[]).await?;
                // The last statement is the one the log keeps.
                c.query_one("a slow lookup", "SELECT pg_sleep($1)::text", &[&secs])
                    .await
            })
        })
        .await
        .unwrap();
    // pg_sleep is volatile: the division runs after the sleep (a constant 1/0 would fail
    // at planning, before it).
    run(&pool, "slow_error", SLEEP_THEN_DIVIDE)
        .await
        .unwrap_err();

    let log = pool.timers().slow_log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0].name, "slow_lookup");
    assert_eq!(
        log[0].statement.as_deref(),
        Some("SELECT pg_sleep($1)::text")
    );
    assert!(log[0].took >= MS(150), "{log:?}");
    assert_eq!(log[0].error, None);
    assert_eq!(log[1].name, "slow_error");
    assert_eq!(log[1].statement.as_deref(), Some(SLEEP_THEN_DIVIDE));
    assert_eq!(log[1].error.as_deref(), Some("22012"));
    let ops = pool.timers().snapshot();
    let fast = ops.iter().find(|s| s.name == "fast").unwrap();
    assert_eq!((fast.count, fast.slow), (1, 0));
}

/// The exposition text as `series -> value` (`name{labels}` as written).
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_text_carries_durations_counts_and_errors_by_sqlstate() {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let pool = pool(&cluster).await;
    let mut registry = Registry::with_prefix("pgopt");
    Arc::clone(pool.timers()).register(&mut registry);
    for _ in 0..4 {
        run(&pool, "sleep", "SELECT pg_sleep(0.05)").await.unwrap();
    }
    run(&pool, "divide", "SELECT 1/0").await.unwrap_err();

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE pgopt_pool_operation_duration_seconds histogram"));
    let series = parse_exposition(&text);
    let get = |s: &str| {
        *series
            .get(s)
            .unwrap_or_else(|| panic!("no series {s} in\n{text}"))
    };
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_count{operation="sleep"}"#),
        4.0
    );
    assert!(get(r#"pgopt_pool_operation_duration_seconds_sum{operation="sleep"}"#) >= 0.2);
    // No run is shorter than its 50 ms sleep: none falls in a bucket below 0.05 s.
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_bucket{le="0.025",operation="sleep"}"#),
        0.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_bucket{le="+Inf",operation="sleep"}"#),
        4.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_errors_total{operation="divide",sqlstate="22012"}"#),
        1.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_count{operation="divide"}"#),
        1.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_slow_total{operation="sleep"}"#),
        0.0
    );
}
