//! `pgopt optimize` and `pgopt demo` through the binary, on embedded clusters holding the
//! governance database: the dry run changes nothing (catalog, settings, table statistics),
//! `--apply` builds indexes, runs maintenance, sets settings and benchmarks before and after;
//! a missing HypoPG, a read-only role and an unwritable report directory. Scales and
//! durations are kept small: these test behaviour, not speed.

mod cli_support;

use std::path::Path;
use std::time::Duration;

use cli_support::{pgopt, stderr, stdout};
use pgopt::embedded::{Cluster, ClusterOptions};
use serde_json::Value;

/// A cluster with autovacuum off, so that no background vacuum or analyze moves the
/// statistics the tests compare.
fn cluster() -> Cluster {
    Cluster::start(ClusterOptions {
        settings: vec![("autovacuum".into(), "off".into())],
        ..ClusterOptions::default()
    })
    .expect("cluster")
}

/// The governance database in `db` of `c`, owned by `owner` (connecting as it), seeded at
/// `scale`, its workload run to fill pg_stat_statements.
fn governance(c: &Cluster, db: &str, user: &str, scale: &str) {
    let dsn = dsn(c, user, db);
    for args in [
        vec!["governance", "deploy", &dsn],
        vec![
            "governance",
            "seed",
            &dsn,
            "--scale",
            scale,
            "--no-progress",
        ],
    ] {
        let out = pgopt(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // One window for the statements and the tables' write counts (the seed is no workload),
    // once the seed's session has reported its writes.
    table_stats(c, db);
    c.psql(
        db,
        "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();",
    )
    .expect("reset");
    let out = pgopt(&[
        "bench",
        &dsn,
        "--workload",
        "governance",
        "--clients",
        "2",
        "--transactions",
        "2000",
    ]);
    assert!(out.status.success(), "bench: {}", stderr(&out));
}

fn dsn(c: &Cluster, user: &str, db: &str) -> String {
    format!(
        "postgresql://{user}@127.0.0.1:{}/{db}?sslmode=disable",
        c.port()
    )
}

fn extensions(c: &Cluster, db: &str, hypopg: bool) {
    c.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .expect("pg_stat_statements");
    if hypopg {
        c.psql(db, "CREATE EXTENSION IF NOT EXISTS hypopg")
            .expect("hypopg");
    }
}

/// What a run must not change, as text: the indexes, every setting, postgresql.auto.conf.
fn catalog_state(c: &Cluster, db: &str) -> String {
    c.psql(
        db,
        "SELECT string_agg(schemaname || '.' || indexname || ' ' || indexdef, E'\\n' \
         ORDER BY schemaname, indexname) FROM pg_indexes \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema'); \
         SELECT string_agg(name || '=' || setting || ' ' || source, E'\\n' ORDER BY name) \
         FROM pg_settings; \
         SELECT pg_read_file('postgresql.auto.conf');",
    )
    .expect("catalog state")
}

/// The user tables' statistics counters, once they have stopped moving (the backends of an
/// earlier run report theirs as they exit).
fn table_stats(c: &Cluster, db: &str) -> String {
    let read = || {
        c.psql(
            db,
            "SELECT string_agg(concat_ws(' ', relname, seq_scan, seq_tup_read, idx_scan, \
             idx_tup_fetch, n_tup_ins, n_tup_upd, n_tup_del, n_live_tup, n_dead_tup, \
             n_mod_since_analyze, vacuum_count, analyze_count), E'\\n' ORDER BY relname) \
             FROM pg_stat_user_tables",
        )
        .expect("table stats")
    };
    let mut last = read();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        let now = read();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the table statistics kept moving for 20 s: {last}");
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn phase<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no phase {name}: {r:#}"))
}

#[test]
fn optimize_dry_run_and_quick_change_no_catalog_setting_or_table_statistic() {
    let c = cluster();
    extensions(&c, "postgres", true);
    governance(&c, "postgres", "postgres", "0.05");
    let dsn = c.dsn("postgres");
    let catalog = catalog_state(&c, "postgres");
    let stats = table_stats(&c, "postgres");
    let dir = tempfile::tempdir().unwrap();

    let out = pgopt(&[
        "optimize",
        &dsn,
        "--report",
        dir.path().to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("nothing was changed"),
        "{}",
        stdout(&out)
    );
    let r = report(dir.path());
    assert_eq!(r["mode"], "dry_run");
    assert_eq!(phase(&r, "performance")["status"], "skipped");
    assert!(phase(&r, "performance")["reason"]
        .as_str()
        .unwrap()
        .contains("a benchmark changes the statistics"));
    // The plan was made: indexes costed with hypothetical indexes, settings compared.
    let indexes = r["indexes"].as_array().unwrap();
    assert!(!indexes.is_empty(), "{r:#}");
    assert!(indexes.iter().all(|i| i["outcome"] == "planned"), "{r:#}");
    assert!(!r["settings"].as_array().unwrap().is_empty(), "{r:#}");
    assert!(r["bench_before"].is_null() && r["journals"].as_array().unwrap().is_empty());

    assert_eq!(catalog_state(&c, "postgres"), catalog);
    // The what-if planning (EXPLAIN, never run) reads the ends of btree indexes for its
    // estimates, which PostgreSQL counts as index scans; nothing else moves.
    let without_index_reads = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                format!("{} {} {} {}", f[0], f[1], f[2], f[5..].join(" "))
            })
            .collect()
    };
    let after_dry_run = table_stats(&c, "postgres");
    assert_eq!(
        without_index_reads(&after_dry_run),
        without_index_reads(&stats)
    );

    // --quick plans nothing: not even the index reads move.
    let out = pgopt(&["optimize", &dsn, "--quick", "--no-progress"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("no what-if"), "{}", stdout(&out));
    assert_eq!(catalog_state(&c, "postgres"), catalog);
    assert_eq!(table_stats(&c, "postgres"), after_dry_run);
}

#[test]
fn optimize_apply_builds_indexes_runs_maintenance_sets_settings_and_benchmarks_twice() {
    let c = cluster();
    extensions(&c, "postgres", true);
    governance(&c, "postgres", "postgres", "0.05");
    // Statistics behind: every user touched since the seed's ANALYZE.
    c.psql(
        "postgres",
        "UPDATE governance.users SET last_login_at = now()",
    )
    .expect("update");
    let dir = tempfile::tempdir().unwrap();
    let out = pgopt(&[
        "optimize",
        &c.dsn("postgres"),
        "--apply",
        "--report",
        dir.path().to_str().unwrap(),
        "--bench-duration",
        "2s",
        "--clients",
        "2",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("5/5 phases done"), "{}", stdout(&out));
    let r = report(dir.path());
    assert_eq!(r["mode"], "apply");
    for p in r["phases"].as_array().unwrap() {
        assert_eq!(p["status"], "done", "{p:#}");
    }

    // Indexes: the security events and audit trail access paths, built and valid.
    let built: Vec<&str> = r["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "done")
        .map(|i| i["table"].as_str().unwrap())
        .collect();
    for table in ["governance.security_events", "governance.audit_logs"] {
        assert!(built.contains(&table), "{table}: {r:#}");
    }
    let valid = c
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'governance' AND i.indisvalid AND NOT i.indisprimary",
        )
        .unwrap();
    assert_eq!(valid.parse::<usize>().unwrap(), built.len(), "{r:#}");

    // Maintenance: the users' statistics analyzed.
    let users = r["maintenance"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["object"] == "governance.users")
        .unwrap_or_else(|| panic!("no maintenance of governance.users: {r:#}"));
    assert_eq!(users["outcome"], "done", "{users:#}");
    assert_eq!(
        c.psql(
            "postgres",
            "SELECT analyze_count > 0 FROM pg_stat_user_tables \
             WHERE schemaname = 'governance' AND relname = 'users'"
        )
        .unwrap(),
        "t"
    );

    // Settings: reload ones in effect, restart-only ones left for pgopt tune --restart.
    let settings = r["settings"].as_array().unwrap();
    let done: Vec<&Value> = settings.iter().filter(|s| s["outcome"] == "done").collect();
    assert!(!done.is_empty(), "{r:#}");
    for s in settings.iter().filter(|s| s["needs_restart"] == true) {
        assert!(
            s["outcome"]
                .as_str()
                .unwrap()
                .contains("pgopt tune --apply --restart"),
            "{s:#}"
        );
    }
    let from_auto_conf = c
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_settings WHERE sourcefile LIKE '%postgresql.auto.conf' \
             AND NOT pending_restart",
        )
        .unwrap();
    assert_eq!(
        from_auto_conf.parse::<usize>().unwrap(),
        done.len(),
        "{r:#}"
    );

    // The benchmark before and after, and a journal per changing phase.
    for b in ["bench_before", "bench_after"] {
        assert!(r[b]["transactions"].as_u64().unwrap() > 0, "{b}: {r:#}");
        assert!(r[b]["workload"].as_str().unwrap().starts_with("governance"));
    }
    let journals = r["journals"].as_array().unwrap();
    for p in ["indexes", "maintenance", "settings"] {
        let j = journals
            .iter()
            .find(|j| j["phase"] == p)
            .unwrap_or_else(|| panic!("no {p} journal: {r:#}"));
        assert!(Path::new(j["path"].as_str().unwrap()).exists(), "{j:#}");
    }
}

#[test]
fn optimize_without_hypopg_fails_the_indexes_phase_and_completes_the_others() {
    let c = cluster();
    // A role that owns its database and tables and may set the settings, but may not create
    // HypoPG (an untrusted extension): the database has none.
    c.psql(
        "postgres",
        "CREATE ROLE app LOGIN; GRANT pg_monitor TO app; CREATE DATABASE appdb OWNER app; \
         DO $$ DECLARE r record; BEGIN FOR r IN SELECT name FROM pg_settings LOOP \
         EXECUTE format('GRANT ALTER SYSTEM ON PARAMETER %I TO app', r.name); END LOOP; END $$;",
    )
    .expect("role");
    // Function privileges are per database.
    c.psql("appdb", "GRANT EXECUTE ON FUNCTION pg_reload_conf() TO app")
        .expect("grant");
    extensions(&c, "appdb", false);
    governance(&c, "appdb", "app", "0.02");
    let dir = tempfile::tempdir().unwrap();
    let out = pgopt(&[
        "optimize",
        &dsn(&c, "app", "appdb"),
        "--apply",
        "--report",
        dir.path().to_str().unwrap(),
        "--bench-duration",
        "1s",
        "--clients",
        "2",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stdout(&out).contains("4/5 phases done"), "{}", stdout(&out));
    let r = report(dir.path());
    let indexes = phase(&r, "indexes");
    assert_eq!(indexes["status"], "failed");
    assert!(
        indexes["reason"]
            .as_str()
            .unwrap()
            .contains("CREATE EXTENSION hypopg"),
        "{indexes:#}"
    );
    for p in ["analyze", "maintenance", "settings", "performance"] {
        assert_eq!(phase(&r, p)["status"], "done", "{p}: {r:#}");
    }
    assert!(r["bench_after"]["transactions"].as_u64().unwrap() > 0);
}

#[test]
fn optimize_apply_as_a_read_only_role_changes_nothing_and_names_the_missing_privileges() {
    let c = cluster();
    extensions(&c, "postgres", true);
    governance(&c, "postgres", "postgres", "0.05");
    c.psql(
        "postgres",
        "CREATE ROLE reader LOGIN; GRANT pg_read_all_data, pg_monitor TO reader;",
    )
    .expect("role");
    let catalog = catalog_state(&c, "postgres");
    let dir = tempfile::tempdir().unwrap();
    let out = pgopt(&[
        "optimize",
        &dsn(&c, "reader", "postgres"),
        "--apply",
        "--report",
        dir.path().to_str().unwrap(),
        "--bench-duration",
        "1s",
        "--clients",
        "2",
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let r = report(dir.path());
    assert_eq!(phase(&r, "analyze")["status"], "done");
    assert_eq!(phase(&r, "indexes")["status"], "failed", "{r:#}");
    let settings = phase(&r, "settings");
    assert_eq!(settings["status"], "failed", "{r:#}");
    assert!(
        settings["reason"].as_str().unwrap().contains("may not"),
        "{settings:#}"
    );
    // The benchmark only reads: the round-trip floor instead of the governance writes.
    let perf = phase(&r, "performance");
    assert_eq!(perf["status"], "done", "{perf:#}");
    assert_eq!(r["bench_before"]["workload"], "select1", "{r:#}");
    assert!(r["journals"].as_array().unwrap().is_empty(), "{r:#}");
    assert_eq!(catalog_state(&c, "postgres"), catalog);
}

#[test]
fn optimize_refuses_a_report_directory_it_cannot_write_before_any_change() {
    let c = cluster();
    extensions(&c, "postgres", true);
    let catalog = catalog_state(&c, "postgres");
    // A directory below a regular file cannot be created, even by root.
    let file = tempfile::NamedTempFile::new().unwrap();
    let dir = file.path().join("reports");
    let out = pgopt(&[
        "optimize",
        &c.dsn("postgres"),
        "--apply",
        "--report",
        dir.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot write the report in"), "{err}");
    assert!(err.contains("--report DIR"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!err.contains("analyze:"), "it started: {err}");
    assert_eq!(catalog_state(&c, "postgres"), catalog);
}

#[test]
fn demo_runs_optimize_end_to_end_and_reports_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let out = pgopt(&[
        "demo",
        "--scale",
        "0.05",
        "--workload-duration",
        "2s",
        "--bench-duration",
        "2s",
        "--clients",
        "2",
        "--report",
        dir.path().to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("5/5 phases done"), "{text}");
    assert!(text.contains("report.json"), "{text}");
    let r = report(dir.path());
    assert_eq!(r["mode"], "apply");
    assert!(r["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["outcome"] == "done"));
    for b in ["bench_before", "bench_after"] {
        assert!(r[b]["throughput_tps"].as_f64().unwrap() > 0.0, "{b}: {r:#}");
    }
    assert!(stderr(&out).contains("stopping the cluster"));
}

/// Ctrl-C through the real binary during `optimize --apply`: an index build on audit_logs
/// waits on another session's SHARE UPDATE EXCLUSIVE lock (writes go on, so the benchmark
/// before does too); SIGINT arrives once the indexes journal shows a step started. pgopt
/// exits 130, the journal has no step left started, no invalid index is left behind, the
/// report is still written and names where the run stopped, and no later phase ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_optimize_apply_exits_130_with_a_complete_journal_and_report() {
    use pgopt::apply::{Journal, StepState};
    use pgopt::db::{connect, Target};
    use std::process::Stdio;
    use std::time::Instant;

    let c = cluster();
    extensions(&c, "postgres", true);
    governance(&c, "postgres", "postgres", "0.05");
    let settings_before = c
        .psql(
            "postgres",
            "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings",
        )
        .unwrap();
    let holder = connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    holder.batch("test", "BEGIN").await.unwrap();
    holder
        .batch(
            "test",
            "LOCK TABLE governance.audit_logs IN SHARE UPDATE EXCLUSIVE MODE",
        )
        .await
        .unwrap();
    let reports = tempfile::tempdir().unwrap();
    let journals = tempfile::tempdir().unwrap();
    let mut child = cli_support::pgopt_cmd(&[
        "optimize",
        &c.dsn("postgres"),
        "--apply",
        "--report",
        reports.path().to_str().unwrap(),
        "--journal-dir",
        journals.path().to_str().unwrap(),
        "--bench-duration",
        "2s",
        "--clients",
        "2",
        "--no-progress",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let started_journal = || -> Option<std::path::PathBuf> {
        std::fs::read_dir(journals.path())
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().contains("-indexes-"))
            .find(|p| {
                Journal::load(p)
                    .map(|j| j.steps.iter().any(|s| s.state == StepState::Started))
                    .unwrap_or(false)
            })
    };
    let start = Instant::now();
    let journal = loop {
        if let Some(j) = started_journal() {
            break j;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "pgopt ended ({status}) before an index build started: {}\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "no index build started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT sent");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("pgopt did not end within 90 s of SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    holder.batch("test", "ROLLBACK").await.unwrap();

    let j = Journal::load(&journal).unwrap();
    assert!(
        j.steps.iter().all(|s| s.state != StepState::Started),
        "every step in a final state: {:?}",
        j.steps.iter().map(|s| s.state).collect::<Vec<_>>()
    );
    let invalid = c
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'governance' AND NOT i.indisvalid",
        )
        .unwrap();
    assert_eq!(invalid.trim(), "0", "an invalid index was left behind");
    let r = report(reports.path());
    let stopped = r["interrupted"].as_str().unwrap_or_default();
    assert!(stopped.contains("indexes"), "{r:#}");
    for name in ["maintenance", "settings"] {
        assert_ne!(phase(&r, name)["status"], "done", "{r:#}");
    }
    // The settings phase never ran: the server's settings are as they were.
    let settings_after = c
        .psql(
            "postgres",
            "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings",
        )
        .unwrap();
    assert_eq!(settings_after, settings_before);
}
