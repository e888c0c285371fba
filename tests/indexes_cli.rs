//! `pgopt indexes` as a user runs it, on an embedded cluster: advice in JSON for a statement
//! on a table with a hostile name, `--apply` building it (valid, journaled, helped statement
//! timed), a second `--apply` building nothing twice, `--rollback` dropping it; a statement
//! that does not parse left alone with its reason; a database without HypoPG refused with
//! how to install it.

mod cli_support;

use cli_support::{pgopt, stderr, stdout};
use pgopt::embedded::{Cluster, ClusterOptions};
use serde_json::Value;

const TABLE: &str = r#""Or""ders; --""#;

fn cluster() -> Cluster {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    c.psql(
        "postgres",
        &format!(
            "CREATE EXTENSION IF NOT EXISTS hypopg;
             CREATE TABLE public.{TABLE} (id bigint PRIMARY KEY, customer int NOT NULL, total int);
             INSERT INTO public.{TABLE} SELECT g, g % 20000, g % 100 FROM generate_series(1, 100000) g;
             ANALYZE public.{TABLE};"
        ),
    )
    .expect("schema");
    c
}

fn valid_indexes(c: &Cluster) -> String {
    c.psql(
        "postgres",
        "SELECT coalesce(string_agg(indexrelid::regclass::text || ':' || indisvalid, ',' ORDER BY 1), '') \
         FROM pg_index WHERE indrelid = 'public.\"Or\"\"ders; --\"'::regclass AND NOT indisprimary",
    )
    .expect("indexes")
}

#[test]
fn advice_apply_and_rollback_through_the_binary() {
    let c = cluster();
    let dsn = c.dsn("postgres");
    let query = format!("SELECT total FROM public.{TABLE} WHERE customer = 77");
    let bad = "SELEC nothing FROM";
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--query",
        bad,
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let advice: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let s = &advice["suggestions"][0];
    assert_eq!(s["table"], r#"Or"ders; --"#, "{advice:#}");
    assert_eq!(s["columns"][0], "customer", "{advice:#}");
    assert!(
        s["ddl"]
            .as_str()
            .unwrap()
            .contains(r#"ON "public"."Or""ders; --""#),
        "{advice:#}"
    );
    assert!(s["size_bytes"].as_i64().unwrap() > 0);
    let helped = &s["statements"][0];
    assert!(helped["cost_after"].as_f64().unwrap() < helped["cost_before"].as_f64().unwrap());
    let left = advice["left_alone"].as_array().unwrap();
    assert!(
        left.iter()
            .any(|l| l["text"] == bad && l["reason"] == "not_parseable"),
        "{advice:#}"
    );
    // A dry run changed nothing.
    assert_eq!(valid_indexes(&c), "");

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("idx.json");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--apply",
        "--journal",
        journal.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("done"), "{text}");
    // The helped statement was timed before and after.
    assert!(text.contains("ms before→after"), "{text}");
    let built = valid_indexes(&c);
    assert!(built.ends_with(":true"), "{built}");
    assert_eq!(built.matches(':').count(), 1, "{built}");

    // Again: the index exists, nothing is proposed or built twice.
    let journal2 = dir.path().join("idx2.json");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--apply",
        "--journal",
        journal2.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(valid_indexes(&c), built);

    let out = pgopt(&[
        "indexes",
        &dsn,
        "--rollback",
        journal.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(valid_indexes(&c), "");
}

#[test]
fn a_database_without_hypopg_is_refused_with_how_to_install_it() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    c.psql("postgres", "CREATE DATABASE plain").expect("db");
    c.psql("plain", "CREATE TABLE t (a int)").expect("table");
    let out = pgopt(&[
        "indexes",
        &c.dsn("plain"),
        "--query",
        "SELECT * FROM t WHERE a = 1",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("CREATE EXTENSION hypopg"), "{err}");
    assert!(err.contains("--trial-real-indexes"), "{err}");
}

#[test]
fn trial_real_indexes_need_no_hypopg_and_leave_nothing_behind() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    c.psql("postgres", "CREATE DATABASE plain").expect("db");
    c.psql(
        "plain",
        "CREATE TABLE t (a int, b text); \
         INSERT INTO t SELECT g, 'x' FROM generate_series(1, 50000) g; ANALYZE t;",
    )
    .expect("table");
    let out = pgopt(&[
        "indexes",
        &c.dsn("plain"),
        "--query",
        "SELECT * FROM t WHERE a = 1",
        "--trial-real-indexes",
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let advice: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(advice["suggestions"][0]["columns"][0], "a", "{advice:#}");
    let left = c
        .psql(
            "plain",
            "SELECT count(*) FROM pg_indexes WHERE tablename = 't'",
        )
        .unwrap();
    assert_eq!(left.trim(), "0");
}

#[test]
fn drop_advice_is_shown_and_only_applied_with_drop() {
    let c = cluster();
    c.psql(
        "postgres",
        &format!(
            "CREATE INDEX total_a ON public.{TABLE} (total); \
             CREATE INDEX total_b ON public.{TABLE} (total);"
        ),
    )
    .expect("duplicates");
    let dsn = c.dsn("postgres");
    let query = format!("SELECT total FROM public.{TABLE} WHERE customer = 77");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let advice: Value = serde_json::from_str(&stdout(&out)).expect("json");
    let drops = advice["drops"].as_array().unwrap();
    assert_eq!(drops.len(), 1, "one side of the pair only: {advice:#}");
    assert_eq!(drops[0]["rule"], "duplicate_index", "{advice:#}");
    assert!(drops[0]["ddl"]
        .as_str()
        .unwrap()
        .starts_with("DROP INDEX CONCURRENTLY"));
    let count = || {
        c.psql(
            "postgres",
            "SELECT count(*) FROM pg_indexes WHERE indexname IN ('total_a', 'total_b')",
        )
        .unwrap()
    };
    assert_eq!(count().trim(), "2", "a dry run drops nothing");

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--apply",
        "--journal",
        journal.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count().trim(), "2", "--apply without --drop drops nothing");
    let journal2 = dir.path().join("j2.json");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--query",
        &query,
        "--apply",
        "--drop",
        "--journal",
        journal2.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count().trim(), "1", "--apply --drop drops the duplicate");
}

/// `--log` keeps the target database's statements of a log that holds two databases' (and
/// `--log-database` picks another); a stderr log without %d in its prefix is read whole and
/// pgopt says so on stderr.
#[test]
fn log_is_filtered_to_the_target_database_through_the_binary() {
    let c = cluster();
    let dsn = c.dsn("postgres");
    let dir = tempfile::tempdir().unwrap();
    let mine = format!("SELECT total FROM public.{TABLE} WHERE customer = 77");
    let theirs = format!("SELECT total FROM public.{TABLE} WHERE total = 5");
    let json_line = |db: &str, sql: &str| {
        serde_json::json!({
            "dbname": db,
            "error_severity": "LOG",
            "message": format!("duration: 9.000 ms  statement: {sql}"),
        })
        .to_string()
    };
    let log = dir.path().join("pg.json");
    std::fs::write(
        &log,
        format!(
            "{}\n{}\n",
            json_line("postgres", &mine),
            json_line("crm", &theirs)
        ),
    )
    .unwrap();
    let statements = |extra: &[&str]| -> Vec<String> {
        let log = log.to_str().unwrap();
        let mut args = vec![
            "indexes",
            &dsn,
            "--log",
            log,
            "--format",
            "json",
            "--no-progress",
        ];
        args.extend_from_slice(extra);
        let out = pgopt(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let advice: Value = serde_json::from_str(&stdout(&out)).expect("json");
        let mut texts: Vec<String> = advice["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["statements"].as_array().unwrap().clone())
            .chain(advice["left_alone"].as_array().unwrap().clone())
            .map(|s| s["text"].as_str().unwrap().to_string())
            .collect();
        texts.sort();
        texts.dedup();
        texts
    };
    assert_eq!(statements(&[]), vec![mine.clone()]);
    assert_eq!(statements(&["--log-database", "crm"]), vec![theirs.clone()]);

    let plain = dir.path().join("pg.log");
    std::fs::write(
        &plain,
        format!("2026-01-02 10:00:00 UTC [1] LOG:  duration: 9.000 ms  statement: {theirs}\n"),
    )
    .unwrap();
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--log",
        plain.to_str().unwrap(),
        "--format",
        "json",
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("statements of every database are read").count(),
        1,
        "{err}"
    );
}
