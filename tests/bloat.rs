//! Table and btree index bloat planted on a real cluster: found by the row-width estimate in
//! the collecting transaction, then measured once pgstattuple is installed; fresh relations
//! stay silent.

use pgopt::advise::{advise, Finding, Severity, Thresholds};
use pgopt::collect::{collect, CollectOptions};
use pgopt::db::{self, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::{RelationBloat, SectionState, Snapshot, TargetInfo};

/// Three tables of 300,000 rows (id, 65-byte text), each with its primary key:
/// - emptied: 75 % deleted, then VACUUM: the heap and its index keep their size;
/// - refilled: the same, then as many new (higher) ids inserted: the heap reuses its free
///   space, the index's old leaves stay a quarter full;
/// - fresh: loaded, vacuumed, analyzed and its index rebuilt.
///
/// Run one after the other, each in its own session: a session's pending statistics are
/// flushed when it ends, so the DELETEs' dead tuples are counted before VACUUM clears them.
const PLANT: &[&str] = &[
    "CREATE TABLE emptied (id int PRIMARY KEY, payload text NOT NULL);
     CREATE TABLE refilled (id int PRIMARY KEY, payload text NOT NULL);
     CREATE TABLE fresh (id int PRIMARY KEY, payload text NOT NULL);
     INSERT INTO emptied SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
     INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
     INSERT INTO fresh SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
     DELETE FROM emptied WHERE id % 4 <> 0;
     DELETE FROM refilled WHERE id % 4 <> 0;",
    "VACUUM emptied;
     VACUUM refilled;",
    "INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(300001, 525000) g;",
    "VACUUM ANALYZE emptied;
     VACUUM ANALYZE refilled;
     VACUUM ANALYZE fresh;
     REINDEX INDEX fresh_pkey;",
];

async fn snapshot(c: &Cluster) -> Snapshot {
    let conn = db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    let target = TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    let opts = CollectOptions {
        include_host: false,
        ..CollectOptions::default()
    };
    collect(&conn, target, &opts).await.unwrap()
}

/// The planted relations are 6 to 30 MB: judge them with small floors.
fn small_floors() -> Thresholds {
    let mut th = Thresholds::default();
    th.set("table_bloat_min_wasted_bytes", "1048576").unwrap();
    th.set("index_bloat_min_wasted_bytes", "1048576").unwrap();
    th
}

fn of<'a>(findings: &'a [Finding], rule: &str, object: &str) -> Option<&'a Finding> {
    findings
        .iter()
        .find(|f| f.rule == rule && f.object == object)
}

fn table<'a>(snap: &'a Snapshot, name: &str) -> &'a RelationBloat {
    snap.bloat
        .as_ref()
        .expect("bloat collected")
        .tables
        .iter()
        .find(|r| r.table == name)
        .unwrap_or_else(|| panic!("{name} in the bloat list"))
}

fn index<'a>(snap: &'a Snapshot, name: &str) -> &'a RelationBloat {
    snap.bloat
        .as_ref()
        .expect("bloat collected")
        .indexes
        .iter()
        .find(|r| r.index.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("{name} in the bloat list"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_bloat_is_estimated_then_measured_and_fresh_relations_stay_silent() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    for step in PLANT {
        c.psql("postgres", step).unwrap();
    }
    let th = small_floors();

    // ---- estimate only: pgstattuple not installed ----
    let snap = snapshot(&c).await;
    assert_eq!(
        snap.section("bloat").unwrap().state,
        SectionState::Collected
    );
    let measured = snap.section("bloat_measured").unwrap();
    assert_eq!(measured.state, SectionState::Skipped);
    assert!(
        measured
            .next_step
            .as_deref()
            .unwrap()
            .contains("CREATE EXTENSION pgstattuple"),
        "{measured:?}"
    );
    let findings = advise(&snap, &th);

    let t = of(&findings, "table_bloat", "public.emptied").expect("emptied table reported");
    assert_eq!(t.severity, Severity::Warning, "{t:#?}");
    assert_eq!(t.evidence["method"], "estimate");
    let est = t.evidence["wasted_ratio"].as_f64().unwrap();
    assert!((0.65..0.85).contains(&est), "estimated {est}");
    assert!(t
        .sql
        .as_deref()
        .unwrap()
        .contains(r#"VACUUM (FULL, ANALYZE) "public"."emptied";"#));

    let i = of(&findings, "index_bloat", "public.refilled_pkey").expect("refilled index reported");
    assert_eq!(i.severity, Severity::Warning, "{i:#?}");
    assert_eq!(i.evidence["method"], "estimate");
    assert_eq!(
        i.sql.as_deref(),
        Some(r#"REINDEX INDEX CONCURRENTLY "public"."refilled_pkey";"#)
    );
    // The emptied table's index is bloated too, and its table's rewrite rebuilds it.
    let e = of(&findings, "index_bloat", "public.emptied_pkey").expect("emptied index reported");
    assert_eq!(e.severity, Severity::Info, "{e:#?}");

    for (rule, object) in [
        ("table_bloat", "public.fresh"),
        ("index_bloat", "public.fresh_pkey"),
        ("table_bloat", "public.refilled"),
    ] {
        assert!(
            of(&findings, rule, object).is_none(),
            "{rule} {object} should be silent: {findings:#?}"
        );
    }
    assert!(
        table(&snap, "fresh")
            .estimate
            .as_ref()
            .unwrap()
            .wasted_ratio
            < 0.05
    );
    assert!(
        index(&snap, "fresh_pkey")
            .estimate
            .as_ref()
            .unwrap()
            .wasted_ratio
            < 0.1
    );

    // ---- measured: pgstattuple installed ----
    c.psql("postgres", "CREATE EXTENSION pgstattuple").unwrap();
    let snap = snapshot(&c).await;
    let measured = snap.section("bloat_measured").unwrap();
    assert_eq!(measured.state, SectionState::Collected, "{measured:?}");
    let findings = advise(&snap, &th);

    let t = of(&findings, "table_bloat", "public.emptied").expect("emptied table reported");
    assert_eq!(t.evidence["method"], "pgstattuple_approx");
    assert!(
        t.message.contains("measured with pgstattuple_approx"),
        "{}",
        t.message
    );
    let meas = t.evidence["wasted_ratio"].as_f64().unwrap();
    let est = t.evidence["estimated_wasted_ratio"].as_f64().unwrap();
    assert!(
        (meas - est).abs() < 0.05,
        "estimate {est} should be within 5 points of pgstattuple's {meas}"
    );

    let i = of(&findings, "index_bloat", "public.refilled_pkey").expect("refilled index reported");
    assert_eq!(i.evidence["method"], "pgstatindex");
    let meas = i.evidence["wasted_ratio"].as_f64().unwrap();
    let est = i.evidence["estimated_wasted_ratio"].as_f64().unwrap();
    assert!(
        (meas - est).abs() < 0.10,
        "index estimate {est} should be within 10 points of pgstatindex's {meas}"
    );

    for (rule, object) in [
        ("table_bloat", "public.fresh"),
        ("index_bloat", "public.fresh_pkey"),
        ("table_bloat", "public.refilled"),
    ] {
        assert!(
            of(&findings, rule, object).is_none(),
            "{rule} {object} should be silent once measured: {findings:#?}"
        );
    }
    // Fresh relations are not even candidates for measuring (estimated waste under 10 %);
    // pgstattuple, asked directly, agrees there is nothing to give back.
    let fresh = table(&snap, "fresh");
    assert!(fresh.measured.is_none(), "{fresh:?}");
    let free: f64 = c
        .psql(
            "postgres",
            "SELECT approx_free_percent FROM pgstattuple_approx('fresh')",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(free < 10.0, "fresh table has {free} % free");
    let density: f64 = c
        .psql(
            "postgres",
            "SELECT avg_leaf_density FROM pgstatindex('fresh_pkey')",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(density > 85.0, "fresh index leaf density {density} %");
    eprintln!(
        "emptied: estimated {:.3}, measured {:.3}; refilled_pkey: estimated {:.3}, measured {:.3}; fresh: {free} % free, fresh_pkey density {density} %",
        table(&snap, "emptied").estimate.as_ref().unwrap().wasted_ratio,
        table(&snap, "emptied").measured.as_ref().unwrap().wasted_ratio,
        index(&snap, "refilled_pkey").estimate.as_ref().unwrap().wasted_ratio,
        index(&snap, "refilled_pkey").measured.as_ref().unwrap().wasted_ratio,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_analyzed_table_and_expression_index_get_no_number_and_locked_ones_are_left_out() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "ALTER SYSTEM SET autovacuum = off;
         SELECT pg_reload_conf();
         CREATE TABLE raw (id int, body text);
         INSERT INTO raw SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
         CREATE INDEX raw_lower_idx ON raw (lower(body));
         CREATE TABLE busy (id int PRIMARY KEY, body text);
         INSERT INTO busy SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
         VACUUM ANALYZE busy;",
    )
    .unwrap();
    let conn = db::connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    conn.batch("lock", "BEGIN").await.unwrap();
    conn.batch("lock", "LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let snap = snapshot(&c).await;
    let raw = table(&snap, "raw");
    assert!(raw.estimate.is_none(), "{raw:?}");
    assert!(
        raw.untrusted.as_deref().unwrap().contains("pg_stats"),
        "{raw:?}"
    );
    let expr = index(&snap, "raw_lower_idx");
    assert!(expr.estimate.is_none());
    assert!(expr.untrusted.as_deref().unwrap().contains("expression"));
    let b = snap.bloat.as_ref().unwrap();
    assert!(
        b.tables.iter().all(|r| r.table != "busy") && b.indexes.iter().all(|r| r.table != "busy"),
        "a relation under an ACCESS EXCLUSIVE lock is left out: {b:?}"
    );

    let findings = advise(&snap, &small_floors());
    let f = of(&findings, "table_bloat", "public.raw").expect("raw said unknown");
    assert_eq!(f.severity, Severity::Info);
    assert!(!f.evidence.contains_key("wasted_bytes"), "{f:#?}");
    let f = of(&findings, "index_bloat", "public.raw_lower_idx").expect("index said unknown");
    assert!(!f.evidence.contains_key("wasted_bytes"), "{f:#?}");
    conn.batch("unlock", "ROLLBACK").await.unwrap();
}
