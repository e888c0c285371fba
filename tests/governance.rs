//! The ACGS governance database on real clusters: deploy (idempotent, keys only), seed (row
//! counts, determinism, distributions, refusal of non-empty tables), the five reference
//! indexes, every workload operation with its generated parameters, drop, and a hostile
//! schema name.

use std::collections::HashMap;

use pgopt::bench::{OpKind, Workload};
use pgopt::db::{self, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::governance::{
    self, create_indexes, deploy, drop_schema, governance_workload, indexes::IndexStatus,
    seed::RowCounts, IndexOptions, Mix, ACGS_INDEXES, TABLES,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use tokio_postgres::types::ToSql;

const HOSTILE: &str = r#"x"; DROP TABLE users; --"#;

async fn start() -> (Cluster, Conn) {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let conn = connect(&c).await;
    (c, conn)
}

async fn connect(c: &Cluster) -> Conn {
    db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .expect("connect")
}

async fn scalar_i64(conn: &Conn, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
    conn.query_one("test", sql, params).await.unwrap().get(0)
}

async fn scalar_f64(conn: &Conn, sql: &str) -> f64 {
    conn.query_one("test", sql, &[]).await.unwrap().get(0)
}

async fn deployed_and_seeded(schema: &str, scale: f64, seed: u64) -> (Cluster, Conn) {
    let (c, conn) = start().await;
    deploy(&conn, schema).await.unwrap();
    governance::seed(&conn, schema, scale, seed, &pgopt::progress::NoProgress)
        .await
        .unwrap();
    (c, conn)
}

/// md5 over every row of every table, in id order.
async fn checksums(conn: &Conn, schema: &str) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        let q = governance::qualified(schema, t);
        let row = conn
            .query_one(
                "checksum",
                &format!("SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {q} t"),
                &[],
            )
            .await
            .unwrap();
        out.push(row.get::<_, String>(0));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_twice_gives_seven_tables_with_keys_and_no_secondary_index() {
    let (_c, conn) = start().await;
    deploy(&conn, "governance").await.unwrap();
    deploy(&conn, "governance").await.unwrap();

    let rows = conn
        .query(
            "test",
            "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'governance' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    names.sort();
    let mut expected: Vec<String> = TABLES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(names, expected);

    let pks = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_constraint WHERE contype = 'p' \
         AND connamespace = 'governance'::regnamespace",
        &[],
    )
    .await;
    assert_eq!(pks, 7);
    let fks = conn
        .query(
            "test",
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = 'governance'::regnamespace ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let fks: Vec<(String, String)> = fks.iter().map(|r| (r.get(0), r.get(1))).collect();
    let want = [
        ("audit_logs", "users"),
        ("compliance_checks", "governance_workflows"),
        ("compliance_checks", "policy_rules"),
        ("governance_workflows", "policy_rules"),
        ("governance_workflows", "users"),
        ("policy_rules", "constitutional_principles"),
        ("policy_rules", "users"),
        ("security_events", "users"),
    ]
    .map(|(a, b)| (format!("governance.{a}"), format!("governance.{b}")));
    assert_eq!(fks, want.to_vec());

    let secondary = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
         WHERE t.relnamespace = 'governance'::regnamespace AND NOT i.indisprimary",
        &[],
    )
    .await;
    assert_eq!(
        secondary, 0,
        "the schema must ship without secondary indexes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_loads_the_scaled_counts_with_realistic_distributions() {
    let scale = 0.01;
    let (_c, conn) = start().await;
    deploy(&conn, "governance").await.unwrap();
    let report = governance::seed(&conn, "governance", scale, 7, &pgopt::progress::NoProgress)
        .await
        .unwrap();
    let counts = RowCounts::for_scale(scale).unwrap();
    assert_eq!(report.total_rows(), counts.total());
    for (table, n) in counts.by_table() {
        let q = governance::qualified("governance", table);
        let got = scalar_i64(&conn, &format!("SELECT count(*) FROM {q}"), &[]).await;
        assert_eq!(got as u64, n, "{table}");
        assert!(report.tables.contains(&(table.to_string(), n)));
    }
    assert_eq!(counts.users, 100);
    assert_eq!(counts.constitutional_principles, 50);
    assert!(report.rows_per_second() > 0.0);

    let active_users = scalar_f64(
        &conn,
        "SELECT avg(is_active::int)::float8 FROM governance.users",
    )
    .await;
    assert!((0.80..=0.97).contains(&active_users), "{active_users}");
    let active_rules = scalar_f64(
        &conn,
        "SELECT avg(is_active::int)::float8 FROM governance.policy_rules",
    )
    .await;
    assert!((0.70..=0.95).contains(&active_rules), "{active_rules}");

    let critical = scalar_f64(
        &conn,
        "SELECT avg((severity = 'critical')::int)::float8 FROM governance.security_events",
    )
    .await;
    assert!(critical > 0.0 && critical < 0.015, "{critical}");
    let low = scalar_f64(
        &conn,
        "SELECT avg((severity = 'low')::int)::float8 FROM governance.security_events",
    )
    .await;
    assert!(low > 0.6, "{low}");

    // The top 1 % of users (1 of 100) produce far more than 1 % of the events.
    let top_share = scalar_f64(
        &conn,
        "WITH per AS (SELECT user_id, count(*) AS n FROM governance.security_events GROUP BY 1), \
              ranked AS (SELECT n, row_number() OVER (ORDER BY n DESC) AS r FROM per) \
         SELECT (sum(n) FILTER (WHERE r <= greatest(1, (SELECT count(*) FROM governance.users) / 100)))::float8 \
                / sum(n) FROM ranked",
    )
    .await;
    assert!(top_share > 0.10, "top 1 % share {top_share}");
    let top10_share = scalar_f64(
        &conn,
        "WITH per AS (SELECT user_id, count(*) AS n FROM governance.security_events GROUP BY 1), \
              ranked AS (SELECT n, row_number() OVER (ORDER BY n DESC) AS r FROM per) \
         SELECT (sum(n) FILTER (WHERE r <= 10))::float8 / sum(n) FROM ranked",
    )
    .await;
    assert!(top10_share > 0.4, "top 10 % share {top10_share}");
    // ... and a few resources get most of the audit trail.
    let hot_resources = scalar_f64(
        &conn,
        "WITH per AS (SELECT resource_type, resource_id, count(*) AS n FROM governance.audit_logs GROUP BY 1, 2), \
              ranked AS (SELECT n, row_number() OVER (ORDER BY n DESC) AS r, count(*) OVER () AS k FROM per) \
         SELECT (sum(n) FILTER (WHERE r <= k / 10))::float8 / sum(n) FROM ranked",
    )
    .await;
    assert!(hot_resources > 0.4, "top 10 % of resources {hot_resources}");

    // About a year of events, busier in working hours and on weekdays.
    let span_days = scalar_f64(
        &conn,
        "SELECT extract(epoch FROM max(occurred_at) - min(occurred_at))::float8 / 86400 \
         FROM governance.security_events",
    )
    .await;
    assert!((355.0..=366.0).contains(&span_days), "{span_days}");
    let working_hours = scalar_f64(
        &conn,
        "SELECT avg((extract(hour FROM occurred_at AT TIME ZONE 'UTC') BETWEEN 8 AND 17)::int)::float8 \
         FROM governance.audit_logs",
    )
    .await;
    assert!(working_hours > 0.6, "{working_hours}");
    let weekend = scalar_f64(
        &conn,
        "SELECT avg((extract(isodow FROM occurred_at AT TIME ZONE 'UTC') >= 6)::int)::float8 \
         FROM governance.audit_logs",
    )
    .await;
    assert!(weekend < 0.2, "{weekend}");
    // Ids follow time, like an append-only log.
    let out_of_order = scalar_i64(
        &conn,
        "SELECT count(*) FROM (SELECT occurred_at < lag(occurred_at) OVER (ORDER BY id) AS back \
         FROM governance.security_events) s WHERE back",
        &[],
    )
    .await;
    assert_eq!(out_of_order, 0);

    // The statistics are there: ANALYZE ran on every table.
    let analyzed = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = 'governance' \
         AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)",
        &[],
    )
    .await;
    assert_eq!(analyzed, 7);
    // The foreign keys dropped for the load are back, validated, under their names.
    let fks = conn
        .query(
            "test",
            "SELECT conname::text, convalidated FROM pg_constraint \
             WHERE contype = 'f' AND connamespace = 'governance'::regnamespace ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(fks.len(), 8);
    assert!(fks.iter().all(|r| r.get::<_, bool>(1)));
    assert!(fks
        .iter()
        .any(|r| r.get::<_, String>(0) == "security_events_user_id_fkey"));
    // Identities moved past the seeded ids.
    let next_id = scalar_i64(
        &conn,
        "INSERT INTO governance.users (username, email, display_name) \
         VALUES ('new', 'new@acgs.example', 'New') RETURNING id::bigint",
        &[],
    )
    .await;
    assert_eq!(next_id, 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_tables_that_hold_rows_is_refused() {
    let (_c, conn) = deployed_and_seeded("governance", 0.001, 1).await;
    let err = governance::seed(&conn, "governance", 0.001, 1, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("already holds rows"), "{msg}");
    assert!(msg.contains("pgopt governance drop"), "{msg}");

    // Not deployed at all: the message says to deploy.
    let err = governance::seed(&conn, "elsewhere", 0.001, 1, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("governance deploy"), "{err}");
    // A bad scale is bad input before anything happens.
    let err = governance::seed(&conn, "governance", 0.0, 1, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(err.is_bad_input(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_rows_in_two_clusters_and_another_seed_differs() {
    let (_a, conn_a) = deployed_and_seeded("governance", 0.002, 42).await;
    let (_b, conn_b) = deployed_and_seeded("governance", 0.002, 42).await;
    let sums_a = checksums(&conn_a, "governance").await;
    assert_eq!(sums_a, checksums(&conn_b, "governance").await);

    drop_schema(&conn_b, "governance").await.unwrap();
    deploy(&conn_b, "governance").await.unwrap();
    governance::seed(
        &conn_b,
        "governance",
        0.002,
        43,
        &pgopt::progress::NoProgress,
    )
    .await
    .unwrap();
    let sums_c = checksums(&conn_b, "governance").await;
    // Every table but the fixed principles' text depends on the seed.
    let differing = sums_a.iter().zip(&sums_c).filter(|(a, c)| a != c).count();
    assert!(differing >= 6, "{sums_a:?} vs {sums_c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_builds_the_five_acgs_indexes_valid_and_rebuilds_an_invalid_leftover() {
    let (_c, conn) = deployed_and_seeded("governance", 0.002, 1).await;
    let out = create_indexes(&conn, "governance", &IndexOptions::default())
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|o| o.status == IndexStatus::Created));

    let rows = conn
        .query(
            "test",
            "SELECT c.relname::text, i.indisvalid, i.indpred IS NOT NULL, \
                    pg_get_indexdef(i.indexrelid) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relnamespace = 'governance'::regnamespace AND NOT i.indisprimary",
            &[],
        )
        .await
        .unwrap();
    let found: HashMap<String, (bool, bool, String)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    assert_eq!(found.len(), 5, "{found:?}");
    for spec in ACGS_INDEXES {
        let (valid, partial, def) = &found[spec.name];
        assert!(*valid, "{}", spec.name);
        assert_eq!(*partial, spec.partial_on.is_some(), "{def}");
        assert_eq!(*partial, spec.name.ends_with("_active"), "{def}");
    }
    assert!(found["idx_audit_logs_resource_action"]
        .2
        .contains("(resource_type, resource_id, action, occurred_at)"));
    assert!(found["idx_users_email_active"]
        .2
        .ends_with("(email) WHERE is_active"));

    // Rerun: nothing to do.
    let again = create_indexes(&conn, "governance", &IndexOptions::default())
        .await
        .unwrap();
    assert!(again.iter().all(|o| o.status == IndexStatus::AlreadyValid));

    // An interrupted build leaves an invalid index with the right name: it is rebuilt.
    conn.batch("test", "DROP INDEX governance.idx_users_username_active")
        .await
        .unwrap();
    let failed = conn
        .batch(
            "test",
            "CREATE UNIQUE INDEX CONCURRENTLY idx_users_username_active ON governance.users (role)",
        )
        .await;
    assert!(failed.is_err());
    let valid: bool = conn
        .query_one(
            "test",
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'governance.idx_users_username_active'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!valid);
    let fixed = create_indexes(&conn, "governance", &IndexOptions::default())
        .await
        .unwrap();
    let st: HashMap<&str, IndexStatus> = fixed.iter().map(|o| (o.name, o.status)).collect();
    assert_eq!(st["idx_users_username_active"], IndexStatus::Rebuilt);
    let def: String = conn
        .query_one(
            "test",
            "SELECT pg_get_indexdef('governance.idx_users_username_active'::regclass) \
             FROM pg_index WHERE indexrelid = 'governance.idx_users_username_active'::regclass AND indisvalid",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(def.ends_with("(username) WHERE is_active"), "{def}");
}

/// Prepares every operation and runs it 20 times with generated parameters; returns, per
/// read, how many executions returned rows.
async fn run_every_operation(conn: &Conn, w: &Workload) -> HashMap<String, usize> {
    let mut rng = SmallRng::seed_from_u64(11);
    let mut hits = HashMap::new();
    for op in &w.ops() {
        let stmt = conn
            .client()
            .prepare_typed(&op.sql, &op.param_types)
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}\n{}", op.name, op.sql));
        let mut with_rows = 0;
        for _ in 0..20 {
            let params = (op.params)(&mut rng);
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = conn
                .client()
                .query(&stmt, &refs)
                .await
                .unwrap_or_else(|e| panic!("{}: {e:?}", op.name));
            if !rows.is_empty() {
                with_rows += 1;
            }
        }
        hits.insert(op.name.clone(), with_rows);
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_workload_operation_runs_with_its_parameters_and_reads_find_rows() {
    let (_c, conn) = deployed_and_seeded("governance", 0.005, 3).await;
    for mix in [Mix::ReadHeavy, Mix::WriteHeavy] {
        let w = governance_workload(&conn, "governance", mix).await.unwrap();
        assert_eq!(w.ops().len(), 12);
        let hits = run_every_operation(&conn, &w).await;
        eprintln!("{mix}: {hits:?}");
        for op in &w.ops() {
            let h = hits[&op.name];
            let min = match op.name.as_str() {
                // About 90 % of users and 85 % of rules are active.
                "authenticate_by_email" | "login_by_username" | "policy_rule_by_name" => 12,
                "user_security_events" | "compliance_report" | "workflow_dashboard" => 12,
                "resource_audit_trail" => 10,
                "start_workflow" => 20,
                _ => 0,
            };
            assert!(h >= min, "{mix} {}: rows in {h} of 20 runs", op.name);
            if op.kind == OpKind::Read {
                assert!(op.sql.contains(r#""governance"."#), "{}", op.sql);
            }
        }
    }
    // A known active user authenticates.
    let id: i32 = conn
        .query_one(
            "test",
            "SELECT id FROM governance.users WHERE is_active ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let w = governance_workload(&conn, "governance", Mix::ReadHeavy)
        .await
        .unwrap();
    let auth = w
        .ops()
        .into_iter()
        .find(|o| o.name == "authenticate_by_email")
        .unwrap();
    let email = governance::dist::email(id);
    let row = conn.query_one("test", &auth.sql, &[&email]).await.unwrap();
    assert_eq!(row.get::<_, i32>("id"), id);
    // The writes landed.
    let bench_workflows = scalar_i64(
        &conn,
        "SELECT count(*) FROM governance.governance_workflows WHERE title LIKE '%(bench)'",
        &[],
    )
    .await;
    assert_eq!(bench_workflows, 40);
    for (what, sql) in [
        (
            "logins updated",
            "SELECT count(*) FROM governance.users WHERE last_login_at > '2026-01-01Z'",
        ),
        (
            "workflows advanced",
            "SELECT count(*) FROM governance.governance_workflows \
             WHERE updated_at > '2026-01-01Z' AND title NOT LIKE '%(bench)'",
        ),
        (
            "events recorded",
            "SELECT count(*) FROM governance.security_events WHERE occurred_at > '2026-01-01Z'",
        ),
        (
            "audit rows appended",
            "SELECT count(*) FROM governance.audit_logs WHERE occurred_at > '2026-01-01Z'",
        ),
    ] {
        assert!(scalar_i64(&conn, sql, &[]).await > 0, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_removes_the_schema_and_refuses_what_is_not_ours() {
    let (_c, conn) = deployed_and_seeded("governance", 0.001, 1).await;
    let dropped = drop_schema(&conn, "governance").await.unwrap();
    assert_eq!(dropped.len(), 7);
    let left = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'governance'",
        &[],
    )
    .await;
    assert_eq!(left, 0);
    let again = drop_schema(&conn, "governance").await.unwrap_err();
    assert!(again.is_bad_input(), "{again}");

    conn.batch(
        "test",
        "CREATE SCHEMA billing; CREATE TABLE billing.users (id int); CREATE TABLE billing.invoices (id int)",
    )
    .await
    .unwrap();
    let refused = drop_schema(&conn, "billing").await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("does not look like a governance schema"),
        "{refused}"
    );
    let still = scalar_i64(&conn, "SELECT count(*) FROM billing.invoices", &[]).await;
    assert_eq!(still, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_schema_name_deploys_seeds_indexes_runs_and_drops_safely() {
    let (_c, conn) = start().await;
    // A canary the injection would hit.
    conn.batch("test", "CREATE TABLE public.users (id int)")
        .await
        .unwrap();
    deploy(&conn, HOSTILE).await.unwrap();
    deploy(&conn, HOSTILE).await.unwrap();
    governance::seed(&conn, HOSTILE, 0.001, 5, &pgopt::progress::NoProgress)
        .await
        .unwrap();
    let out = create_indexes(&conn, HOSTILE, &IndexOptions::default())
        .await
        .unwrap();
    assert_eq!(out.len(), 5);
    let w = governance_workload(&conn, HOSTILE, Mix::WriteHeavy)
        .await
        .unwrap();
    run_every_operation(&conn, &w).await;
    let tables = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind = 'r'",
        &[&HOSTILE],
    )
    .await;
    assert_eq!(tables, 7);
    drop_schema(&conn, HOSTILE).await.unwrap();
    let left = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
        &[&HOSTILE],
    )
    .await;
    assert_eq!(left, 0);
    let canary = scalar_i64(&conn, "SELECT count(*) FROM public.users", &[]).await;
    assert_eq!(canary, 0, "public.users must survive");
}

/// The commands as a user runs them: deploy, seed, bench the workload, indexes, drop.
#[test]
fn governance_commands_and_the_governance_bench_work_end_to_end() {
    use std::process::Command;
    let c = pgopt::embedded::Cluster::start(pgopt::embedded::ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let pgopt = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_pgopt"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "pgopt {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    pgopt(&["governance", "deploy", &dsn]);
    let seeded = pgopt(&[
        "governance",
        "seed",
        &dsn,
        "--scale",
        "0.002",
        "--no-progress",
    ]);
    assert!(seeded.contains("security_events"), "{seeded}");
    for mix in ["read-heavy", "write-heavy"] {
        let out = pgopt(&[
            "bench",
            &dsn,
            "--workload",
            "governance",
            "--mix",
            mix,
            "--clients",
            "20",
            "--connections",
            "4",
            "--transactions",
            "400",
            "--format",
            "json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["transactions"], 400, "{out}");
        assert_eq!(v["errors"], 0, "{out}");
        let ops: Vec<&str> = v["scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert!(ops.contains(&"authenticate_by_email"), "{ops:?}");
        assert!(ops.contains(&"record_security_event"), "{ops:?}");
    }
    let built = pgopt(&["governance", "indexes", &dsn]);
    assert!(built.contains("idx_users_email_active"), "{built}");
    let preview = pgopt(&["governance", "drop", &dsn]);
    assert!(preview.contains("would drop"), "{preview}");
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'governance'"
        )
        .unwrap(),
        "1",
        "drop without --yes must change nothing"
    );
    pgopt(&["governance", "drop", &dsn, "--yes"]);
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'governance'"
        )
        .unwrap(),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_reports_progress_events_per_table_up_to_the_total_rows() {
    use pgopt::progress::{Collect, Kind, Unit};
    let scale = 0.002;
    let (_c, conn) = start().await;
    deploy(&conn, "governance").await.unwrap();
    let sink = Collect::new();
    let report = governance::seed(&conn, "governance", scale, 3, &sink)
        .await
        .unwrap();
    let events = sink.events();
    let total = RowCounts::for_scale(scale).unwrap().total();
    assert!(events.iter().all(|e| e.phase == governance::seed::PHASE));
    assert!(events
        .iter()
        .all(|e| e.unit == Unit::Rows && e.total == Some(total)));
    // Every table is a step, in load order, and the counts only grow.
    for (table, _) in RowCounts::for_scale(scale).unwrap().by_table() {
        assert!(
            events.iter().any(|e| e.step.as_deref() == Some(table)),
            "a step for {table}"
        );
    }
    assert!(events.windows(2).all(|w| w[0].done <= w[1].done));
    let last = events.last().expect("events");
    assert_eq!(last.kind, Kind::Finish);
    assert_eq!(last.done, total);
    assert_eq!(report.total_rows(), total);
    assert!(
        events.iter().filter(|e| e.kind == Kind::Finish).count() == 1,
        "one finish"
    );
}
