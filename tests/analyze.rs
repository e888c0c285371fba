//! Live conditions planted on real clusters are found by collect + advise; a clean database
//! gives no finding at all.

mod common;

use std::time::Duration;

use pgopt::advise::{advise, Severity, Thresholds};
use pgopt::collect::CollectOptions;
use pgopt::db::{self, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::Snapshot;
use tokio_postgres::{Client, NoTls};

async fn client(c: &Cluster) -> Client {
    let (client, conn) = tokio_postgres::connect(&c.dsn("postgres"), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn snapshot(c: &Cluster) -> Snapshot {
    common::live_snapshot(&c.dsn("postgres"), &CollectOptions::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_database_has_no_findings() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE principles (id serial PRIMARY KEY, title text NOT NULL);
         CREATE TABLE rules (id serial PRIMARY KEY, principle_id int NOT NULL REFERENCES principles (id),
                             name text NOT NULL UNIQUE, is_active boolean NOT NULL DEFAULT true);
         CREATE INDEX rules_principle_id_idx ON rules (principle_id);
         INSERT INTO principles (title) SELECT 'p' || g FROM generate_series(1, 50) g;
         INSERT INTO rules (principle_id, name) SELECT 1 + g % 50, 'rule-' || g FROM generate_series(1, 2000) g;",
    )
    .unwrap();
    // In a session of its own: the loading session's counters are flushed when it ends.
    c.psql(
        "postgres",
        "VACUUM ANALYZE principles; VACUUM ANALYZE rules;",
    )
    .unwrap();
    let cl = client(&c).await;
    for i in 0..50 {
        cl.query(
            "SELECT id FROM rules WHERE name = $1",
            &[&format!("rule-{i}")],
        )
        .await
        .unwrap();
        cl.query(
            "SELECT count(*) FROM rules WHERE principle_id = $1",
            &[&(i % 50 + 1)],
        )
        .await
        .unwrap();
    }
    cl.batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .unwrap();
    let snap = snapshot(&c).await;
    let findings = advise(&snap, &Thresholds::default());
    assert!(findings.is_empty(), "{findings:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_locks_connections_and_cache_problems_are_found() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("max_connections".into(), "20".into()),
            ("shared_buffers".into(), "'128kB'".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    // A 20 MB table read over and over through 128 kB of shared buffers: a poor hit ratio.
    c.psql(
        "postgres",
        "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, md5((g * 2)::text) AS b
           FROM generate_series(1, 200000) g;
         CREATE TABLE locked (id int PRIMARY KEY);",
    )
    .unwrap();
    let reader = client(&c).await;
    for _ in 0..8 {
        reader.query("SELECT count(*) FROM big", &[]).await.unwrap();
    }

    // A holds a lock and sits idle in its transaction; B waits for it; L runs a long query.
    let a = client(&c).await;
    a.batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let a_pid: i32 = a
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let b = client(&c).await;
    let b_pid: i32 = b
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let blocked = tokio::spawn(async move { b.query("SELECT * FROM locked", &[]).await });
    let l = client(&c).await;
    let l_pid: i32 = l
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let long = tokio::spawn(async move { l.query("SELECT pg_sleep(60)", &[]).await });
    // More clients, to come near max_connections (20 - 3 reserved = 17).
    let mut extra = Vec::new();
    for _ in 0..9 {
        extra.push(client(&c).await);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let snap = snapshot(&c).await;
    let th = common::thresholds_with(&[
        ("idle_in_transaction_warning_seconds", "1"),
        ("long_query_warning_seconds", "1"),
        ("long_transaction_warning_seconds", "1"),
        ("cache_hit_min_blocks", "1000"),
    ]);
    let findings = advise(&snap, &th);

    let idle = common::of_rule(&findings, "idle_in_transaction");
    assert!(
        idle.iter().any(|f| f.object.contains(&a_pid.to_string())),
        "{findings:#?}"
    );
    let long_q = common::of_rule(&findings, "long_running_query");
    assert!(
        long_q.iter().any(|f| f.object == format!("pid {l_pid}")),
        "{long_q:#?}"
    );
    let blocked_f = common::of_rule(&findings, "blocked_session");
    assert!(
        blocked_f
            .iter()
            .any(|f| f.object.contains(&b_pid.to_string())),
        "{findings:#?}"
    );
    let blocking = common::of_rule(&findings, "blocking_session");
    assert!(
        blocking
            .iter()
            .any(|f| f.object.contains(&a_pid.to_string())),
        "{findings:#?}"
    );
    let conns = common::of_rule(&findings, "connections_near_max");
    assert_eq!(conns.len(), 1, "{findings:#?}");
    assert!(conns[0].severity >= Severity::Warning);
    let cache = common::of_rule(&findings, "cache_hit_ratio");
    assert_eq!(cache.len(), 1, "{findings:#?}");

    a.batch_execute("ROLLBACK").await.unwrap();
    assert!(blocked.await.unwrap().is_ok());
    long.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_id_and_multixact_ages_are_found() {
    // The smallest ages the server allows, so a test can get near them.
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("autovacuum".into(), "off".into()),
            ("autovacuum_freeze_max_age".into(), "100000".into()),
            ("autovacuum_multixact_freeze_max_age".into(), "10000".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE old_rows (id int PRIMARY KEY); INSERT INTO old_rows VALUES (1);",
    )
    .unwrap();
    // 92,000 transaction IDs: past 90 % of autovacuum_freeze_max_age, short of forcing a vacuum.
    c.psql(
        "postgres",
        "DO $$ BEGIN FOR i IN 1..92000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;",
    )
    .unwrap();
    // Two sessions share-locking the same row make a multixact, each round a new one.
    let x = client(&c).await;
    let y = client(&c).await;
    for _ in 0..20 {
        x.batch_execute("BEGIN; SELECT * FROM old_rows FOR SHARE")
            .await
            .unwrap();
        y.batch_execute("BEGIN; SELECT * FROM old_rows FOR SHARE")
            .await
            .unwrap();
        x.batch_execute("COMMIT").await.unwrap();
        y.batch_execute("COMMIT").await.unwrap();
    }
    let snap = snapshot(&c).await;
    let xid = common::of_rule(&advise(&snap, &Thresholds::default()), "xid_wraparound")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert!(
        xid.iter().any(|f| f.object.contains("old_rows")),
        "{xid:#?}"
    );
    assert!(
        xid.iter().any(|f| f.object.contains("postgres")),
        "{xid:#?}"
    );
    // 20 multixacts: over a threshold of 0.1 % of autovacuum_multixact_freeze_max_age.
    let th = common::thresholds_with(&[("multixact_age_warning_ratio", "0.001")]);
    let multi = advise(&snap, &th);
    let multi = common::of_rule(&multi, "multixact_wraparound");
    assert!(
        multi.iter().any(|f| f.object.contains("old_rows")),
        "{multi:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_database_shows_every_planted_problem() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let conn = db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    pgopt::demo::prepare(&conn).await.unwrap();
    let snap = snapshot(&c).await;
    let findings = advise(&snap, &Thresholds::default());
    for (rule, object) in pgopt::demo::PLANTED {
        assert!(
            findings
                .iter()
                .any(|f| f.rule == *rule && f.object.contains(object)),
            "planted {rule} on {object} not found in {findings:#?}"
        );
    }
    // The planted index pair is advised once: the prefix goes, its cover stays and is not
    // "unused"; the unscanned index waits for a week of statistics.
    common::assert_consistent(&findings);
    let window = common::of_rule(&findings, "unused_index_window_short");
    assert!(
        window[0].evidence["unscanned_indexes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "public.audit_logs_occurred_at_idx"),
        "{window:#?}"
    );
    assert!(
        common::of_rule(&findings, "unused_index").is_empty(),
        "{findings:#?}"
    );
    let redundant = common::of_rule(&findings, "redundant_index");
    assert_eq!(redundant.len(), 1, "{redundant:#?}");
    assert_eq!(
        redundant[0].evidence["covered_by"],
        "public.audit_logs_resource_type_action_idx"
    );
    // The demo spills a few MB: over a lowered database-wide temp-file threshold.
    let th = common::thresholds_with(&[("temp_bytes_warning", "1048576")]);
    let spills = advise(&snap, &th);
    let spills = common::of_rule(&spills, "temp_file_spills");
    assert_eq!(spills.len(), 1);
    assert_eq!(spills[0].object, "database postgres");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_stat_statements_not_loaded_or_not_installed_is_found() {
    let not_loaded = Cluster::start(ClusterOptions {
        settings: vec![("shared_preload_libraries".into(), "''".into())],
        ..Default::default()
    })
    .unwrap();
    let snap = snapshot(&not_loaded).await;
    let findings = advise(&snap, &Thresholds::default());
    let f = common::of_rule(&findings, "pg_stat_statements_not_preloaded");
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert!(f[0].next_step.contains("shared_preload_libraries"));
    assert!(common::of_rule(&findings, "pg_stat_statements_not_installed").is_empty());

    let not_installed = Cluster::start(ClusterOptions::default()).unwrap();
    not_installed
        .psql("postgres", "DROP EXTENSION pg_stat_statements")
        .unwrap();
    let snap = snapshot(&not_installed).await;
    let findings = advise(&snap, &Thresholds::default());
    let f = common::of_rule(&findings, "pg_stat_statements_not_installed");
    assert_eq!(f.len(), 1, "{findings:#?}");
    assert!(f[0]
        .sql
        .as_deref()
        .unwrap_or_default()
        .contains("CREATE EXTENSION"));
    assert!(common::of_rule(&findings, "pg_stat_statements_not_preloaded").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_open_transaction_is_found() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "CREATE TABLE t (id int)").unwrap();
    let holder = client(&c).await;
    holder
        .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let pid: i32 = holder
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // Busy, not idle, so that it is reported as a long transaction rather than idle in one.
    let busy = tokio::spawn(async move {
        holder.query("SELECT pg_sleep(1.5)", &[]).await.unwrap();
        holder
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let snap = snapshot(&c).await;
    let th = common::thresholds_with(&[
        ("long_transaction_warning_seconds", "1"),
        ("long_query_warning_seconds", "100"),
    ]);
    let findings = advise(&snap, &th);
    let f = common::of_rule(&findings, "long_transaction");
    assert!(
        f.iter().any(|f| f.object == format!("pid {pid}")),
        "{findings:#?}"
    );
    busy.await.unwrap();
}
