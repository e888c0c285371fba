//! `pgopt maintain` on real clusters: a dry run changes nothing; `--apply` vacuums a table with
//! dead rows (a hostile name included), rebuilds a bloated index concurrently (valid and
//! smaller after), measures with pgstattuple under `--exact`, and starts no step once
//! `--budget` is spent.

mod cli_support;

use cli_support::{pgopt, stderr, stdout};
use pgopt::embedded::{Cluster, ClusterOptions};

/// A name with quotes, spaces and an injection attempt.
const HOSTILE: &str = r#"we"ird; DROP TABLE victim; --"#;
const HOSTILE_SQL: &str = r#""we""ird; DROP TABLE victim; --""#;

fn one(c: &Cluster, sql: &str) -> String {
    c.psql("postgres", sql).unwrap().trim().to_string()
}

/// Two tables with dead rows and autovacuum off on them (so only pgopt vacuums them), plus a
/// bystander that must survive. Each statement in its own session: a session's statistics
/// are flushed when it ends.
fn plant_dead_rows(c: &Cluster) {
    c.psql(
        "postgres",
        &format!(
            "CREATE TABLE victim (id int);
             CREATE TABLE big (id int, pad text) WITH (autovacuum_enabled = false);
             CREATE TABLE {HOSTILE_SQL} (id int, pad text) WITH (autovacuum_enabled = false);
             INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g;
             INSERT INTO {HOSTILE_SQL} SELECT g, 'y' FROM generate_series(1, 2000) g;"
        ),
    )
    .unwrap();
    c.psql(
        "postgres",
        &format!("DELETE FROM big WHERE id % 2 = 0; DELETE FROM {HOSTILE_SQL} WHERE id % 2 = 0;"),
    )
    .unwrap();
}

fn stats(c: &Cluster, table: &str) -> (i64, bool) {
    let lit = table.replace('\'', "''");
    let row = one(
        c,
        &format!(
            "SELECT n_dead_tup || '|' || (last_vacuum IS NOT NULL) FROM pg_stat_user_tables \
             WHERE relname = '{lit}'"
        ),
    );
    let (dead, vacuumed) = row
        .split_once('|')
        .unwrap_or_else(|| panic!("{table}: {row:?}"));
    (dead.parse().unwrap(), vacuumed == "true")
}

#[test]
fn dry_run_changes_nothing_and_apply_vacuums_tables_with_dead_rows_hostile_names_too() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c);
    let dsn = c.dsn("postgres");
    let before_big = stats(&c, "big");
    assert!(before_big.0 >= 20_000 && !before_big.1, "{before_big:?}");

    // Dry run: the tasks and the SQL, nothing changed.
    let out = pgopt(&["maintain", &dsn, "--no-progress"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("vacuum") && text.contains("public.big"),
        "{text}"
    );
    assert!(
        text.contains(r#"VACUUM (ANALYZE) "public"."big";"#),
        "{text}"
    );
    assert!(
        text.contains(r#"VACUUM (ANALYZE) "public"."we""ird; DROP TABLE victim; --";"#),
        "{text}"
    );
    assert!(stderr(&out).contains("dry run: nothing was changed"));
    assert_eq!(stats(&c, "big"), before_big, "a dry run vacuums nothing");
    assert!(!stats(&c, HOSTILE).1);

    // --apply: both vacuumed, the bystander untouched.
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let out = pgopt(&[
        "maintain",
        &dsn,
        "--apply",
        "--no-progress",
        "--journal",
        journal.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(text.contains("applied:"), "{text}");
    assert!(text.contains(" 0 failed"), "{text}");
    let (dead, vacuumed) = stats(&c, "big");
    assert!(
        vacuumed,
        "last_vacuum set on big: {text} {}",
        one(
            &c,
            "SELECT row_to_json(s) FROM pg_stat_user_tables s WHERE relname = 'big'"
        )
    );
    assert_eq!(dead, 0, "n_dead_tup after VACUUM");
    let (dead, vacuumed) = stats(&c, HOSTILE);
    assert!(vacuumed && dead == 0, "the hostile table was vacuumed");
    assert_eq!(
        one(&c, "SELECT count(*) FROM victim"),
        "0",
        "victim still exists"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert!(
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "done"),
        "{j:#}"
    );

    // Nothing left to do now.
    let out = pgopt(&["maintain", &dsn, "--no-progress", "--tables", "big"]);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

/// The index of `refilled` keeps a quarter of its old leaves (the planting of tests/bloat.rs).
const PLANT_INDEX_BLOAT: &[&str] = &[
    "CREATE TABLE refilled (id int PRIMARY KEY, payload text NOT NULL);
     INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
     DELETE FROM refilled WHERE id % 4 <> 0;",
    "VACUUM refilled;",
    "INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(300001, 525000) g;",
    "VACUUM ANALYZE refilled;",
];

#[test]
fn exact_measures_with_pgstattuple_and_apply_reindexes_a_bloated_index_concurrently() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    for step in PLANT_INDEX_BLOAT {
        c.psql("postgres", step).unwrap();
    }
    let dsn = c.dsn("postgres");
    let floor = "--threshold=index_bloat_min_wasted_bytes=1048576";
    let size = || -> i64 {
        one(&c, "SELECT pg_relation_size('refilled_pkey')")
            .parse()
            .unwrap()
    };
    let before = size();

    // --exact on a dry run creates nothing: it says how to measure and keeps the estimates.
    let exact = || {
        pgopt(&[
            "maintain",
            &dsn,
            "--no-progress",
            "--exact",
            floor,
            "--format",
            "json",
        ])
    };
    let out = exact();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let notes = v["notes"].to_string();
    assert!(notes.contains("CREATE EXTENSION pgstattuple"), "{notes}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'"
        ),
        "0",
        "a dry run created the extension"
    );
    // With the extension there, --exact measures the index.
    c.psql("postgres", "CREATE EXTENSION pgstattuple").unwrap();
    let out = exact();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let task = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "reindex")
        .unwrap_or_else(|| panic!("a reindex task: {v:#}"));
    assert_eq!(task["object"], "public.refilled_pkey");
    assert!(
        task["reason"]
            .as_str()
            .unwrap()
            .contains("measured with pgstatindex"),
        "{task:#}"
    );
    assert_eq!(
        task["sql"],
        r#"REINDEX INDEX CONCURRENTLY "public"."refilled_pkey";"#
    );
    assert_eq!(size(), before, "a dry run rebuilds nothing");

    let out = pgopt(&[
        "maintain",
        &dsn,
        "--apply",
        "--no-progress",
        floor,
        "--tables",
        "refilled",
        "--format",
        "json",
        "--journal",
        tempfile::tempdir()
            .unwrap()
            .path()
            .join("j.json")
            .to_str()
            .unwrap(),
    ]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let applied = v["applied"].as_array().unwrap();
    assert!(
        applied.iter().any(|a| a["state"] == "done"
            && a["what"]
                .as_str()
                .unwrap()
                .contains("REINDEX INDEX CONCURRENTLY")),
        "{v:#}"
    );
    assert_eq!(
        one(
            &c,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'refilled_pkey'::regclass"
        ),
        "t"
    );
    let after = size();
    assert!(after < before, "the index shrank: {before} -> {after}");
}

#[test]
fn budget_spent_starts_no_new_step_and_lists_the_rest_as_not_started() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c);
    let dsn = c.dsn("postgres");
    // `big` comes first (the larger); a lock held on it makes its VACUUM wait out its
    // lock_timeout three times, well past the budget.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let holder = rt.block_on(async {
        let conn = pgopt::db::connect(&pgopt::db::Target::parse(&dsn).unwrap())
            .await
            .unwrap();
        conn.batch(
            "holding a lock",
            "BEGIN; LOCK TABLE big IN SHARE UPDATE EXCLUSIVE MODE",
        )
        .await
        .unwrap();
        conn
    });
    let out = pgopt(&[
        "maintain",
        &dsn,
        "--apply",
        "--no-progress",
        "--budget",
        "1s",
        "--lock-timeout",
        "1",
        "--journal",
        tempfile::tempdir()
            .unwrap()
            .path()
            .join("j.json")
            .to_str()
            .unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a step failed: {text}\n{}",
        stderr(&out)
    );
    assert!(text.contains("failed"), "{text}");
    assert!(
        text.contains("not started: the time budget of 1s was spent"),
        "{text}"
    );
    assert!(!stats(&c, HOSTILE).1, "no step started after the budget");
    drop(holder);
}
