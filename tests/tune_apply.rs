//! `pgopt tune TARGET` on real embedded clusters: current against recommended with detected
//! inputs, dry run by default, --apply with its journal and --rollback restoring pg_settings
//! and postgresql.auto.conf exactly, refusal of a role without ALTER SYSTEM, rollback of a
//! half-done apply when the server rejects a value, a corrupt journal, and the binary under
//! Ctrl-C (exit 130, a complete journal).

mod cli_support;

use cli_support::{pgopt_tune, stderr, stdout};
use std::path::Path;
use std::time::{Duration, Instant};

use pgopt::apply::settings::apply_settings;
use pgopt::apply::{Journal, StepState};
use pgopt::db::{connect, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::plan::Action;

const SETTINGS: &str =
    "SELECT name, setting, source, pending_restart FROM pg_settings ORDER BY name";
const AUTO_CONF: &str = "SELECT pg_read_file('postgresql.auto.conf')";

/// Polls until `sql`'s output (from new sessions) equals `want`: a reload reaches each backend
/// in its own time.
fn wait_for(c: &Cluster, sql: &str, want: &str) {
    let start = Instant::now();
    loop {
        let now = c.psql("postgres", sql).unwrap();
        if now == want {
            return;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let diff: Vec<String> = want
                .lines()
                .zip(now.lines())
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("before {a} / after {b}"))
                .collect();
            panic!("not restored: {diff:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

const DETERMINISTIC: &[&str] = &["--method", "pgtune", "--memory", "4GB", "--cpus", "4"];

fn args<'a>(dsn: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![dsn];
    v.extend_from_slice(DETERMINISTIC);
    v.extend_from_slice(extra);
    v
}

#[test]
fn target_mode_shows_current_against_recommended_with_detected_version() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let major: u32 = c
        .psql("postgres", "SHOW server_version_num")
        .unwrap()
        .trim()
        .parse::<u32>()
        .unwrap()
        / 10000;

    let o = pgopt_tune(&args(&dsn, &["--format", "json"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["input"]["pg_version"], major);
    assert_eq!(major, 15, "the test clusters are PostgreSQL 15");
    let rows = j["comparison"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap().clone();
    let sb = row("shared_buffers");
    assert_eq!(sb["current"], "128MB");
    assert_eq!(sb["recommended"], "1GB");
    assert_eq!(sb["change"], true);
    assert_eq!(sb["needs_restart"], true);
    let wm = row("work_mem");
    assert_eq!(wm["current"], "4MB");
    assert_eq!(wm["needs_restart"], false);
    let cct = row("checkpoint_completion_target");
    assert_eq!(cct["current"], "0.9");
    assert_eq!(cct["change"], false, "0.9 is already PGTune's value");

    let o = pgopt_tune(&args(&dsn, &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let t = stdout(&o);
    for h in [
        "current",
        "recommended",
        "change",
        // "needs restart" may wrap between its words at the output width.
        "needs",
        "restart",
        "128MB",
        "1GB",
    ] {
        assert!(t.contains(h), "{h} in {t}");
    }
    let o = pgopt_tune(&args(&dsn, &["--format", "markdown"]));
    assert!(stdout(&o).contains("| shared_buffers | 128MB | 1GB | yes | yes |"));

    // Memory and CPUs detected from this machine (the server is local).
    let o = pgopt_tune(&[&dsn, "--method", "pgtune", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(j["input"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(j["input"]["os"], "linux");

    // Storage: detected from the data directory's disk, or the default with the reason
    // (test clusters live in /dev/shm, which has no disk); a flag wins.
    let src = &j["storage_source"];
    match src["source"].as_str().unwrap() {
        "detected" => assert_eq!(src["storage"], j["input"]["storage"]),
        "not_detected" => {
            assert_eq!(j["input"]["storage"], "ssd");
            assert!(!src["reason"].as_str().unwrap().is_empty(), "{src}");
        }
        other => panic!("storage source {other}"),
    }
    let o = pgopt_tune(&[&dsn, "--method", "pgtune"]);
    let second = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert!(second.starts_with("storage: "), "{}", stdout(&o));
    let o = pgopt_tune(&args(&dsn, &["--storage", "hdd"]));
    assert_eq!(stdout(&o).lines().nth(1), Some("storage: hdd (--storage)"));
    let o = pgopt_tune(&args(&dsn, &["--storage", "hdd", "--format", "json"]));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(
        (&j["storage_source"]["source"], &j["input"]["storage"]),
        (&serde_json::json!("flag"), &serde_json::json!("hdd"))
    );
}

#[test]
fn dry_run_changes_nothing() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let q = "SELECT name, setting, source FROM pg_settings ORDER BY name";
    let before = c.psql("postgres", q).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    let o = pgopt_tune(&args(&c.dsn("postgres"), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dry run: nothing was changed"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--apply would"), "{}", stderr(&o));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.psql("postgres", q).unwrap(), before);
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
}

#[test]
fn apply_verifies_and_rollback_restores_exactly() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    // One setting already in postgresql.auto.conf: rollback must SET it back, not RESET it.
    c.psql("postgres", "ALTER SYSTEM SET random_page_cost = '3'")
        .unwrap();
    c.psql("postgres", "SELECT pg_reload_conf()").unwrap();
    wait_for(&c, "SHOW random_page_cost", "3");
    let before = c.psql("postgres", SETTINGS).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let journal_s = journal.to_str().unwrap();
    let dsn = c.dsn("postgres");

    let o = pgopt_tune(&args(&dsn, &["--apply", "--journal", journal_s]));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("shared_buffers = 1GB: waits for a restart"),
        "{text}"
    );
    assert!(text.contains("random_page_cost = 1.1: in effect"), "{text}");
    assert!(stderr(&o).contains("restart the server"), "{}", stderr(&o));

    // A version-2 journal of the executor: one ALTER SYSTEM step per setting, each with
    // its undo (the old postgresql.auto.conf value, or RESET when it had none).
    let j = Journal::load(&journal).unwrap();
    assert_eq!(j.journal_version, 2);
    let undo_of = |name: &str| {
        j.steps
            .iter()
            .find_map(|s| match (&s.step.action, &s.undo) {
                (
                    Action::SetSystem {
                        name: n,
                        value: Some(new),
                    },
                    Some(Action::SetSystem { value: old, .. }),
                ) if n == name => {
                    assert_eq!(s.state, StepState::Done, "{name}");
                    Some((old.clone(), new.clone()))
                }
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(undo_of("random_page_cost").0.as_deref(), Some("3"));
    let (wm_old, wm_new) = undo_of("work_mem");
    assert_eq!(wm_old, None);
    wait_for(&c, "SHOW work_mem", &wm_new);
    wait_for(
        &c,
        "SELECT pending_restart FROM pg_settings WHERE name = 'shared_buffers'",
        "t",
    );
    assert!(c
        .psql("postgres", AUTO_CONF)
        .unwrap()
        .contains("shared_buffers = '1GB'"));

    let o = pgopt_tune(&["--rollback", journal_s, &dsn]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("restored"), "{}", stdout(&o));
    wait_for(&c, SETTINGS, &before);
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);

    // The journal's own target is used when none is given.
    let o = pgopt_tune(&["--rollback", journal_s]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    wait_for(&c, SETTINGS, &before);
}

#[test]
fn role_without_alter_system_is_refused_before_any_change() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "CREATE ROLE tuner LOGIN").unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let dsn = format!(
        "host={} port={} user=tuner dbname=postgres",
        c.socket_dir().display(),
        c.port()
    );
    let o = pgopt_tune(&args(
        &dsn,
        &["--apply", "--journal", journal.to_str().unwrap()],
    ));
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("GRANT ALTER SYSTEM ON PARAMETER shared_buffers TO"),
        "{e}"
    );
    assert!(e.contains("nothing was changed"), "{e}");
    assert!(!journal.exists(), "refused before the journal");
    assert_eq!(c.psql("postgres", SETTINGS).unwrap(), before);
}

#[tokio::test]
async fn rejected_value_leaves_nothing_applied() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    let conn = connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let e = apply_settings(
        &conn,
        &[("maintenance_work_mem", "300MB"), ("work_mem", "-5")],
        &journal,
    )
    .await
    .unwrap_err();
    let msg = e.to_string();
    assert!(e.is_bad_input(), "{msg}");
    assert!(msg.contains("work_mem"), "{msg}");
    assert!(msg.contains("rolled back"), "{msg}");
    assert!(journal.exists(), "the journal was written first");
    let e = apply_settings(&conn, &[("work_mem", "8MB")], &journal)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("never overwritten"), "{e}");
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
    wait_for(&c, SETTINGS, &before);
}

#[test]
fn corrupt_journal_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{ not a journal").unwrap();
    let o = pgopt_tune(&["--rollback", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a pgopt tune journal"),
        "{}",
        stderr(&o)
    );
    let missing = Path::new("no-such-journal.json");
    let o = pgopt_tune(&["--rollback", missing.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn granted_role_applies_and_rolls_back_and_needs_read_all_settings() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt_tune(&args(&dsn, &["--format", "json"]));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let changed: Vec<String> = j["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["change"] == true)
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    assert!(changed.len() >= 5, "{changed:?}");
    let mut grants = String::from(
        "CREATE ROLE tuner LOGIN; GRANT EXECUTE ON FUNCTION pg_reload_conf() TO tuner;",
    );
    for n in &changed {
        grants.push_str(&format!("GRANT ALTER SYSTEM ON PARAMETER {n} TO tuner;"));
    }
    c.psql("postgres", &grants).unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let journal_s = journal.to_str().unwrap();
    let tuner = format!(
        "host={} port={} user=tuner dbname=postgres",
        c.socket_dir().display(),
        c.port()
    );

    // Without pg_read_all_settings it cannot tell postgresql.conf from postgresql.auto.conf.
    let o = pgopt_tune(&args(&tuner, &["--apply", "--journal", journal_s]));
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("GRANT pg_read_all_settings TO"),
        "{}",
        stderr(&o)
    );
    assert!(!journal.exists());
    assert_eq!(c.psql("postgres", SETTINGS).unwrap(), before);

    c.psql("postgres", "GRANT pg_read_all_settings TO tuner")
        .unwrap();
    let o = pgopt_tune(&args(&tuner, &["--apply", "--journal", journal_s]));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("shared_buffers = 1GB: waits for a restart"));
    assert!(
        stderr(&o).contains("pg_file_settings is not readable"),
        "{}",
        stderr(&o)
    );
    let o = pgopt_tune(&["--rollback", journal_s, &tuner]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    wait_for(&c, SETTINGS, &before);
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
}

#[test]
fn shared_buffers_larger_than_the_host_is_refused() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kb: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    // PGTune gives a quarter of --memory to shared_buffers: make that exceed this machine.
    let memory = format!("{}GB", total_kb * 4 / (1024 * 1024) + 8);
    let before = c.psql("postgres", SETTINGS).unwrap();
    let o = pgopt_tune(&[
        &c.dsn("postgres"),
        "--method",
        "pgtune",
        "--memory",
        &memory,
        "--cpus",
        "4",
        "--apply",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("does not fit in the server's memory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(c.psql("postgres", SETTINGS).unwrap(), before);
}

#[test]
fn method_pgopt_raises_work_mem_when_sorts_spill_to_temp_files() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    for _ in 0..3 {
        c.psql(
            "postgres",
            "SET work_mem = '64kB'; \
             SELECT count(*) FROM (SELECT g FROM generate_series(1, 300000) g \
             ORDER BY g DESC) s; \
             SELECT pg_stat_force_next_flush();",
        )
        .unwrap();
    }
    let base = pgopt_tune(&[
        &dsn, "--method", "pgtune", "--memory", "4GB", "--cpus", "2", "--format", "json",
    ]);
    assert_eq!(base.status.code(), Some(0), "{}", stderr(&base));
    let base: serde_json::Value = serde_json::from_str(&stdout(&base)).unwrap();
    let o = pgopt_tune(&[&dsn, "--memory", "4GB", "--cpus", "2", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["method"], "pgopt");
    let value = |j: &serde_json::Value, name: &str| -> String {
        j["comparison"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {j}"))["recommended"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let kb = |v: &str| pgopt::tune::compare::value_kb(v, 1.0).unwrap();
    let (was, now) = (value(&base, "work_mem"), value(&j, "work_mem"));
    assert!(
        kb(&now) > kb(&was),
        "work_mem {now} not above PGTune's {was}"
    );
    let change = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "work_mem")
        .expect("a work_mem change")
        .clone();
    assert!(
        change["reason"].as_str().unwrap().contains("temp files"),
        "{change}"
    );
    assert!(
        change["evidence"]["temp_files"].as_i64().unwrap() >= 3,
        "{change}"
    );
    assert_eq!(value(&j, "hash_mem_multiplier"), "2");
    assert_eq!(value(&j, "log_temp_files"), "0");
    // Dry run: nothing changed.
    assert_eq!(c.psql("postgres", "SHOW work_mem").unwrap().trim(), "4MB");
}

/// The default method's settings (observability, a shared_preload_libraries list, the
/// governance profile's timeouts) go through --apply and --rollback on a real server too.
#[test]
fn method_pgopt_applies_and_rolls_back_exactly() {
    // pg_stat_statements missing from the preload list: pgopt appends it.
    let c = Cluster::start(ClusterOptions {
        settings: vec![("shared_preload_libraries".into(), "'auto_explain'".into())],
        ..Default::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let journal_s = journal.to_str().unwrap();
    // An application role (gets a statement_timeout of its own) and a large table autovacuum
    // has not reached (gets scale factors of its own; autovacuum is off so it stays behind).
    c.psql(
        "postgres",
        "ALTER SYSTEM SET autovacuum = off; SELECT pg_reload_conf(); \
         CREATE ROLE acgs_app LOGIN; \
         CREATE TABLE \"Audit Log\" (id int, note text); \
         INSERT INTO \"Audit Log\" SELECT g, 'x' FROM generate_series(1, 1400000) g; \
         DELETE FROM \"Audit Log\" WHERE id % 4 = 0; \
         SELECT pg_stat_force_next_flush();",
    )
    .unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    const OBJECTS: &str = "SELECT (SELECT rolconfig FROM pg_roles WHERE rolname = 'acgs_app'), \
         (SELECT reloptions FROM pg_class WHERE relname = 'Audit Log')";
    let objects_before = c.psql("postgres", OBJECTS).unwrap();
    let dsn = c.dsn("postgres");
    // --emit sql prints the per-object statements; --emit conf only as comments.
    let emit = |what: &str| {
        let o = pgopt_tune(&[
            &dsn,
            "--profile",
            "governance",
            "--memory",
            "4GB",
            "--cpus",
            "4",
            "--emit",
            what,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stdout(&o)
    };
    let sql = emit("sql");
    assert!(
        sql.contains(r#"ALTER ROLE "acgs_app" SET "statement_timeout" = '30s';"#)
            && sql.contains(r#"ALTER TABLE "public"."Audit Log" SET ("autovacuum_vacuum_scale_factor" = '0.05');"#),
        "{sql}"
    );
    let conf = emit("conf");
    assert!(
        conf.contains(r#"# ALTER ROLE "acgs_app" SET "statement_timeout" = '30s';"#)
            && !conf.lines().any(|l| l.starts_with("ALTER")),
        "{conf}"
    );
    let o = pgopt_tune(&[
        &dsn,
        "--method",
        "pgopt",
        "--profile",
        "governance",
        "--memory",
        "4GB",
        "--cpus",
        "4",
        "--apply",
        "--journal",
        journal_s,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    wait_for(&c, "SHOW track_io_timing", "on");
    wait_for(&c, "SHOW idle_in_transaction_session_timeout", "1min");
    wait_for(&c, "SHOW auto_explain.log_min_duration", "3s");
    let objects = c.psql("postgres", OBJECTS).unwrap();
    assert!(objects.contains("statement_timeout=30s"), "{objects}");
    // 100,000 / 1,050,000 live rows = 0.095, capped at 0.05; analyze at half.
    assert!(
        objects.contains("autovacuum_vacuum_scale_factor=0.05")
            && objects.contains("autovacuum_analyze_scale_factor=0.025"),
        "{objects}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    // Version 2: the three per-object settings are steps of the one journal.
    let object_steps = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"]["action"]["kind"] == "set_object")
        .count();
    assert_eq!(object_steps, 3, "{j}");
    // The library list stays a list of libraries, not one library named "a,b".
    let auto = c.psql("postgres", AUTO_CONF).unwrap();
    assert!(
        auto.contains("shared_preload_libraries = 'auto_explain, pg_stat_statements'"),
        "{auto}"
    );
    wait_for(
        &c,
        "SELECT pending_restart FROM pg_settings WHERE name = 'shared_preload_libraries'",
        "t",
    );
    let o = pgopt_tune(&["--rollback", journal_s, &dsn]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    wait_for(&c, SETTINGS, &before);
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
    assert_eq!(c.psql("postgres", OBJECTS).unwrap(), objects_before);
}

/// A workload that fills a small max_wal_size over and over forces requested checkpoints;
/// `--method pgopt` raises max_wal_size with that evidence. CHECKPOINT commands with little
/// WAL are requested checkpoints too, and only get a note.
#[tokio::test]
async fn requested_checkpoints_raise_max_wal_size() {
    use pgopt::collect::{collect, CollectOptions};
    use pgopt::tune::evidence::pgopt_method;
    use pgopt::tune::pgtune::pgtune;
    use pgopt::tune::{RawInput, TuneInput};

    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("max_wal_size".into(), "'32MB'".into()),
            ("min_wal_size".into(), "'32MB'".into()),
            ("checkpoint_timeout".into(), "'1h'".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    let input = TuneInput::validate(&RawInput {
        memory: Some("4GB".into()),
        cpus: Some(2),
        ..RawInput::default()
    })
    .unwrap();
    let snapshot = |c: &Cluster| {
        let dsn = c.dsn("postgres");
        async move {
            let target = Target::parse(&dsn).unwrap();
            let conn = connect(&target).await.unwrap();
            let info = pgopt::snapshot::TargetInfo {
                host: conn.host.clone(),
                port: conn.port,
                database: conn.database.clone(),
                user: conn.user.clone(),
            };
            let opts = CollectOptions {
                include_host: false,
                ..CollectOptions::default()
            };
            collect(&conn, info, &opts).await.unwrap()
        }
    };
    let requested = |c: &Cluster| -> i64 {
        c.psql("postgres", "SELECT checkpoints_req FROM pg_stat_bgwriter")
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    c.psql(
        "postgres",
        "SELECT pg_stat_reset_shared('bgwriter'); SELECT pg_stat_reset_shared('wal'); \
         CREATE TABLE w (id int, pad text); \
         INSERT INTO w SELECT g, repeat('x', 200) FROM generate_series(1, 600000) g;",
    )
    .unwrap();
    let start = Instant::now();
    while requested(&c) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no requested checkpoints"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The counters were reset seconds ago: no WAL rate is stated from such a window.
    let mut snap = snapshot(&c).await;
    let cp = snap.checkpoints.clone().expect("checkpoints collected");
    assert!(cp.requested >= 3, "{cp:?}");
    assert!(cp.wal_bytes.unwrap() > 100 * 1024 * 1024, "{cp:?}");
    let out = pgopt_method(&pgtune(&input), &input, &snap);
    assert!(out.change("max_wal_size").is_none(), "{:?}", out.changes);
    let notes = out.output.notes.join("\n");
    assert!(notes.contains("too short to state a WAL rate"), "{notes}");
    // The same counters over a two-minute window (the resets moved back rather than the test
    // waiting): the WAL rate is real and raises max_wal_size.
    let aged = |snap: &mut pgopt::snapshot::Snapshot| {
        let cp = snap.checkpoints.as_mut().unwrap();
        let start = snap.collected_at - chrono::Duration::seconds(120);
        cp.stats_reset = Some(start);
        cp.wal_stats_reset = Some(start);
    };
    aged(&mut snap);
    let out = pgopt_method(&pgtune(&input), &input, &snap);
    let change = out.change("max_wal_size").expect("max_wal_size raised");
    assert_eq!(change.rule, "checkpoints");
    assert_eq!(change.baseline.as_deref(), Some("4GB"));
    let kb = |v: &str| pgopt::tune::compare::value_kb(v, 1.0).unwrap();
    assert!(kb(&change.value) > kb("4GB"), "{change:?}");
    assert_eq!(change.evidence["checkpoints_requested"], cp.requested);
    assert!(
        change.reason.contains("checkpoint_timeout 3600 s"),
        "{}",
        change.reason
    );
    // pgopt analyze reports them too.
    let findings = pgopt::advise::advise(&snap, &pgopt::advise::Thresholds::default());
    assert!(
        findings.iter().any(|f| f.rule == "checkpoints_requested"),
        "{findings:#?}"
    );

    // CHECKPOINT commands: requested, but no WAL volume behind them.
    c.psql(
        "postgres",
        "SELECT pg_stat_reset_shared('bgwriter'); SELECT pg_stat_reset_shared('wal');",
    )
    .unwrap();
    for _ in 0..4 {
        c.psql("postgres", "CHECKPOINT").unwrap();
    }
    let start = Instant::now();
    while requested(&c) < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "CHECKPOINT not counted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut snap = snapshot(&c).await;
    aged(&mut snap);
    let out = pgopt_method(&pgtune(&input), &input, &snap);
    assert!(out.change("max_wal_size").is_none());
    let notes = out.output.notes.join("\n");
    assert!(notes.contains("log_checkpoints"), "{notes}");
}

/// Per-object settings: a role that does not own the table and lacks CREATEROLE is refused
/// before anything changes; a value the server rejects puts back the ones already set.
#[tokio::test]
async fn object_settings_are_checked_first_and_put_back_on_failure() {
    use pgopt::apply::objects;
    use pgopt::tune::evidence::{ObjectKind, ObjectSetting};

    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE \"Policy Rules\" (id int); CREATE ROLE app LOGIN; \
         CREATE ROLE tuner LOGIN; GRANT pg_read_all_settings TO tuner;",
    )
    .unwrap();
    let setting = |kind, schema: Option<&str>, object: &str, name, value: &str| ObjectSetting {
        rule: "test",
        kind,
        schema: schema.map(str::to_string),
        object: object.to_string(),
        name,
        value: value.to_string(),
        current: None,
        reason: String::new(),
        evidence: Default::default(),
    };
    let table = setting(
        ObjectKind::Table,
        Some("public"),
        "Policy Rules",
        "autovacuum_vacuum_scale_factor",
        "0.01",
    );
    let role = setting(ObjectKind::Role, None, "app", "statement_timeout", "30s");
    const OBJECTS: &str = "SELECT (SELECT rolconfig FROM pg_roles WHERE rolname = 'app'), \
         (SELECT reloptions FROM pg_class WHERE relname = 'Policy Rules')";
    let before = c.psql("postgres", OBJECTS).unwrap();

    let dsn = c.dsn("postgres").replacen("postgres@", "tuner@", 1);
    let tuner = connect(&Target::parse(&dsn).unwrap()).await.unwrap();
    let e = objects::check_privileges(&tuner, &[table.clone(), role.clone()])
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(e.is_bad_input(), "{msg}");
    assert!(
        msg.contains("table public.Policy Rules (only its owner")
            && msg.contains("role app (needs CREATEROLE"),
        "{msg}"
    );

    let conn = connect(&Target::parse(&c.dsn("postgres")).unwrap())
        .await
        .unwrap();
    objects::check_privileges(&conn, &[table.clone(), role.clone()])
        .await
        .unwrap();
    let bad = setting(
        ObjectKind::Table,
        Some("public"),
        "Policy Rules",
        "fillfactor",
        "5",
    );
    let entries = objects::journal_entries(&conn, &[role.clone(), table.clone(), bad])
        .await
        .unwrap();
    assert!(entries.iter().all(|e| e.old.is_none()), "{entries:?}");
    let e = objects::apply(&conn, &entries).await.unwrap_err();
    assert!(e.to_string().contains("put back"), "{e}");
    assert_eq!(c.psql("postgres", OBJECTS).unwrap(), before);

    // Applied, then rolled back exactly.
    let entries = objects::journal_entries(&conn, &[role, table])
        .await
        .unwrap();
    let done = objects::apply(&conn, &entries).await.unwrap();
    assert!(done.iter().all(|o| o.verified), "{done:?}");
    assert_ne!(c.psql("postgres", OBJECTS).unwrap(), before);
    let undone = objects::rollback(&conn, &entries).await.unwrap();
    assert!(undone.iter().all(|o| o.verified), "{undone:?}");
    assert_eq!(c.psql("postgres", OBJECTS).unwrap(), before);
}

/// After an apply and a restart, rolling back a postmaster setting RESETs it and waits for
/// the next restart: the report names the value it restores (postgresql.conf's), not the
/// undone one still running.
#[test]
fn rollback_reports_the_value_it_restores() {
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let journal_s = journal.to_str().unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt_tune(&args(&dsn, &["--apply", "--journal", journal_s]));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("shared_buffers = 1GB"),
        "{}",
        stdout(&o)
    );
    c.restart().unwrap();
    wait_for(&c, "SHOW shared_buffers", "1GB");
    let o = pgopt_tune(&["--rollback", journal_s, &dsn]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("restored shared_buffers = 128MB: waits for a restart"),
        "{text}"
    );
    assert!(!text.contains("shared_buffers = 1GB"), "{text}");
}

/// Ctrl-C during `tune --apply` (the interrupt the command wires to Ctrl-C): the step waiting
/// on a table lock is cancelled on the server, the run ends interrupted with the journal
/// complete (the settings done, the object step failed, nothing after it run), and the
/// journal rolls the settings back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_tune_apply_cancels_the_step_and_completes_the_journal() {
    use pgopt::tune::evidence::ObjectKind;
    use pgopt::tune::objects::ObjectEntry;
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "CREATE TABLE t (a int)").unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let target = Target::parse(&c.dsn("postgres")).unwrap();
    let conn = connect(&target).await.unwrap();
    let holder = connect(&target).await.unwrap();
    let watcher = connect(&target).await.unwrap();
    holder
        .batch("test", "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let entry = |name: &str| ObjectEntry {
        kind: ObjectKind::Table,
        schema: Some("public".into()),
        object: "t".into(),
        name: name.into(),
        old: None,
        new: "0.05".into(),
    };
    let objects = vec![
        entry("autovacuum_vacuum_scale_factor"),
        entry("autovacuum_analyze_scale_factor"),
    ];
    let (stop, interrupt) = tokio::sync::watch::channel(false);
    let j = journal.clone();
    let run = tokio::spawn(async move {
        let r = pgopt::apply::settings::apply_plan(
            &conn,
            &[("work_mem", "8MB")],
            &objects,
            &j,
            pgopt::apply::Options {
                interrupt: Some(interrupt),
                ..pgopt::apply::Options::default()
            },
        )
        .await;
        (r, conn)
    });
    let start = Instant::now();
    loop {
        let waiting = watcher
            .query_opt(
                "test",
                "SELECT pid FROM pg_stat_activity WHERE query LIKE 'ALTER TABLE%' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if waiting.is_some() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never waited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    let (r, conn) = run.await.unwrap();
    let run = r.unwrap();
    assert!(run.interrupted);
    assert_eq!(
        run.report.settings[0].outcome,
        pgopt::apply::settings::Outcome::Applied
    );
    assert!(run.objects.iter().all(|o| !o.verified), "{:?}", run.objects);
    holder.batch("test", "COMMIT").await.unwrap();
    let states: Vec<StepState> = Journal::load(&journal)
        .unwrap()
        .steps
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        vec![StepState::Done, StepState::Failed, StepState::Pending]
    );
    let report = pgopt::apply::rollback(
        &conn,
        Journal::load(&journal).unwrap(),
        Some(&journal),
        &pgopt::apply::Options::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.steps.len(), 1, "only the setting is undone");
    wait_for(&c, SETTINGS, &before);
}

/// The real binary under Ctrl-C: `pgopt tune --apply` whose per-role step waits on a lock
/// (another session holds pg_db_role_setting against writes) gets SIGINT once the journal
/// shows that step started: it exits 130, every step of the journal ended in a final state,
/// the role is unchanged, and the journal's rollback restores the server exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_tune_apply_exits_130_with_a_complete_journal() {
    use std::process::Stdio;

    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "CREATE ROLE acgs_app LOGIN").unwrap();
    let before = c.psql("postgres", SETTINGS).unwrap();
    let auto_before = c.psql("postgres", AUTO_CONF).unwrap();
    const ROLE: &str = "SELECT coalesce(rolconfig::text, '') FROM pg_roles \
         WHERE rolname = 'acgs_app'";
    let role_before = c.psql("postgres", ROLE).unwrap();
    let dsn = c.dsn("postgres");
    // Reads of the catalog go on (the snapshot reads it); ALTER ROLE ... SET waits.
    let holder = connect(&Target::parse(&dsn).unwrap()).await.unwrap();
    holder
        .batch("test", "BEGIN")
        .await
        .and(
            holder
                .batch(
                    "test",
                    "LOCK TABLE pg_catalog.pg_db_role_setting IN EXCLUSIVE MODE",
                )
                .await,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.json");
    let mut child = cli_support::pgopt_cmd(&[
        "tune",
        &dsn,
        "--method",
        "pgopt",
        "--profile",
        "governance",
        "--memory",
        "4GB",
        "--cpus",
        "4",
        "--apply",
        "--journal",
        journal.to_str().unwrap(),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let role_step_started = |j: &Journal| {
        j.steps.iter().any(|s| {
            matches!(s.step.action, Action::SetObject { .. }) && s.state == StepState::Started
        })
    };
    let start = Instant::now();
    loop {
        if let Ok(j) = Journal::load(&journal) {
            if role_step_started(&j) {
                break;
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "pgopt ended ({status}) before the role step started: {}\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the role step never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SAFETY: kill sends a signal to the child we started; no memory is involved.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(sent, 0, "SIGINT sent");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("pgopt did not end within 60 s of SIGINT");
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
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    let j = Journal::load(&journal).unwrap();
    assert!(
        j.steps.iter().all(|s| s.state != StepState::Started),
        "every step in a final state: {:?}",
        j.steps.iter().map(|s| s.state).collect::<Vec<_>>()
    );
    assert!(
        j.steps.iter().any(|s| {
            matches!(s.step.action, Action::SetObject { .. }) && s.state == StepState::Failed
        }),
        "the interrupted step is recorded as failed"
    );
    assert_eq!(
        c.psql("postgres", ROLE).unwrap(),
        role_before,
        "the role is unchanged"
    );
    holder.batch("test", "COMMIT").await.unwrap();

    // What was done before the interrupt is taken back by the journal, exactly.
    let o = pgopt_tune(&["--rollback", journal.to_str().unwrap(), &dsn]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(c.psql("postgres", AUTO_CONF).unwrap(), auto_before);
    wait_for(&c, SETTINGS, &before);
}
