//! The command line as a user meets it: exit codes, messages for bad input, saved snapshots.

mod cli_support;

use cli_support::*;
use std::time::{Duration, Instant};

use pgopt::embedded::{Cluster, ClusterOptions};

/// The OS user, as psql would take it for the role and the database.
fn os_user() -> String {
    let o = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `pgopt ARGS` with no target and PGPORT on a port nothing listens on: the default
/// connection (socket directory, OS user) fails without depending on this machine's server.
fn with_no_server(args: &[&str]) -> std::process::Output {
    let port = pgopt::embedded::free_port().unwrap();
    pgopt_cmd(args)
        .env("PGPORT", port.to_string())
        .env("PGCONNECT_TIMEOUT", "2")
        .output()
        .unwrap()
}

#[test]
fn no_target_connects_as_psql_would_and_the_hint_names_the_command() {
    for (args, command) in [
        (&["analyze"][..], "pgopt analyze"),
        (
            &["bench", "--workload", "select1", "--transactions", "1"][..],
            "pgopt bench",
        ),
        (&["governance", "deploy"][..], "pgopt governance deploy"),
        (&["tune"][..], "pgopt tune"),
    ] {
        let o = with_no_server(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("No target was given"), "{args:?}: {err}");
        assert!(err.contains(&format!("as user \"{}\"", os_user())), "{err}");
        assert!(err.contains(&format!("Give one: {command} '")), "{err}");
        assert!(
            !err.contains("pgopt analyze '") || command == "pgopt analyze",
            "{err}"
        );
        assert!(err.contains("pgopt embedded start"), "{err}");
        assert!(err.contains("pgopt demo"), "{err}");
    }
}

#[test]
fn default_target_uses_pghost_and_the_os_user_and_its_database() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let user = os_user();
    let ident = format!("\"{}\"", user.replace('"', "\"\""));
    c.psql("postgres", &format!("CREATE ROLE {ident} LOGIN SUPERUSER"))
        .unwrap();
    c.psql(
        "postgres",
        &format!("CREATE DATABASE {ident} OWNER {ident}"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.json");
    // As written in the README: no target, PGHOST pointing at the socket directory.
    let o = pgopt_cmd(&[
        "analyze",
        "--save",
        snap.to_str().unwrap(),
        "--format",
        "json",
    ])
    .env("PGHOST", c.socket_dir())
    .env("PGPORT", c.port().to_string())
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["snapshot"]["target"]["user"], user.as_str());
    assert_eq!(v["snapshot"]["target"]["database"], user.as_str());
    assert!(snap.is_file());
}

#[test]
fn a_missing_role_says_the_role_does_not_exist_not_the_password() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = format!(
        "postgresql://nosuchrole@127.0.0.1:{}/postgres?sslmode=disable",
        c.port()
    );
    let o = pgopt(&["analyze", &dsn]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("role \"nosuchrole\" does not exist"), "{err}");
    assert!(!err.to_lowercase().contains("password"), "{err}");

    // --discover says the same for that port.
    let o = pgopt(&[
        "analyze",
        "--discover",
        &format!("127.0.0.1:{}", c.port()),
        "--connect-timeout",
        "5",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("refused the user"), "{err}");
    assert!(!err.contains("password authentication"), "{err}");
}

#[test]
fn a_missing_input_file_is_bad_input_for_every_command_and_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let m = missing.to_str().unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, "{}").unwrap();
    for args in [
        vec!["analyze", "--from", m],
        vec!["tune", "--rollback", m],
        vec!["bench", "compare", m, other.to_str().unwrap()],
        vec!["bench", "--workload", m, "--transactions", "1"],
    ] {
        let o = pgopt(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(m), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one message: {err}");
        assert!(err.matches("os error").count() <= 1, "{args:?}: {err}");
        let lower = err.to_lowercase();
        assert_eq!(
            lower.matches("no such file").count(),
            1,
            "{args:?}: said once: {err}"
        );
    }
}

#[test]
fn a_negative_scale_is_refused_as_a_bad_scale() {
    let o = pgopt(&["governance", "seed", "--scale", "-1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--scale must be a number above 0"), "{err}");
    assert!(!err.contains("-- -1"), "{err}");
}

#[test]
fn demo_help_and_demo_agree_on_how_to_stop_a_kept_cluster() {
    let o = pgopt(&["demo", "--help"]);
    let help = stdout(&o);
    assert!(
        help.contains("pgopt embedded stop --data-dir DIR"),
        "{help}"
    );
    assert!(
        help.contains("pgopt embedded remove --data-dir DIR"),
        "{help}"
    );
}

#[test]
fn a_dsn_that_does_not_parse_is_bad_input_and_hides_the_password() {
    let o = pgopt(&["analyze", "host=localhost password=sekrit-pw bogus_key=1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sekrit-pw"), "{}", stderr(&o));
    let o = pgopt(&["analyze", "postgresql://u:sekrit-pw@host:notaport/db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("sekrit-pw"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_host_fails_within_the_timeout_with_a_next_step() {
    // A port nothing listens on.
    let port = pgopt::embedded::free_port().unwrap();
    let t = Instant::now();
    let o = pgopt(&[
        "analyze",
        &format!("postgresql://postgres:sekrit-pw@127.0.0.1:{port}/postgres?sslmode=disable"),
        "--connect-timeout",
        "2",
    ]);
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&port.to_string()), "{err}");
    assert!(!err.contains("sekrit-pw"), "{err}");
}

#[test]
fn bad_threshold_and_bad_severity_are_bad_input() {
    let o = pgopt(&[
        "analyze",
        "--from",
        "x.json",
        "--threshold",
        "no_such_threshold=1",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = pgopt(&["analyze", "--from", "x.json", "--fail-on", "catastrophic"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn truncated_and_future_snapshot_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let full = dir.path().join("snap.json");
    let o = pgopt(&[
        "analyze",
        &c.dsn("postgres"),
        "--save",
        full.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&full).unwrap();

    // The saved file analyses offline, with no server, to the same findings.
    drop(c);
    let offline = pgopt(&[
        "analyze",
        "--from",
        full.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(offline.status.code(), Some(0), "{}", stderr(&offline));
    let live: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let again: serde_json::Value = serde_json::from_str(&stdout(&offline)).unwrap();
    assert_eq!(live["findings"], again["findings"]);
    assert_eq!(live["snapshot"], again["snapshot"]);

    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let o = pgopt(&["analyze", "--from", truncated.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut short"), "{}", stderr(&o));

    let mut future: serde_json::Value = serde_json::from_str(&text).unwrap();
    future["schema_version"] = serde_json::json!(pgopt::snapshot::SCHEMA_VERSION + 1);
    let future_path = dir.path().join("future.json");
    std::fs::write(&future_path, future.to_string()).unwrap();
    let o = pgopt(&["analyze", "--from", future_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("upgrade pgopt"), "{}", stderr(&o));

    let missing = pgopt(&["analyze", "--from", "does-not-exist.json"]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
}

#[test]
fn fail_on_sets_the_exit_code_and_formats_render() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    // An FK without an index: a warning.
    c.psql(
        "postgres",
        "CREATE TABLE parent (id int PRIMARY KEY); \
         CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id));",
    )
    .unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt(&["analyze", &dsn, "--fail-on", "warning", "-v"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("fk_missing_index"), "{}", stdout(&o));
    let o = pgopt(&["analyze", &dsn, "--fail-on", "critical"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = pgopt(&["analyze", &dsn, "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("| `fk_missing_index` |"),
        "{}",
        stdout(&o)
    );
    let o = pgopt(&["analyze", &dsn, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "fk_missing_index" && f["object"] == "public.child"));
    assert_eq!(
        v["snapshot"]["schema_version"],
        pgopt::snapshot::SCHEMA_VERSION
    );
}

#[test]
fn threshold_list_prints_every_threshold() {
    let o = pgopt(&["analyze", "--threshold", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("default"));
}

/// pgopt tune on the demo's planted database (`pgopt::demo::prepare`): the planted spill is
/// evidence for work_mem, and the table autovacuum may not touch gets a note, not a global
/// change.
#[test]
fn tune_advises_settings_from_the_planted_database() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let db = pgopt::demo::DATABASE;
    c.psql("postgres", &format!("CREATE DATABASE {db}"))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let target = pgopt::embedded::local_target(c.port(), db).unwrap();
        let conn = pgopt::db::connect(&target).await.unwrap();
        pgopt::demo::prepare(&conn).await.unwrap();
    });
    let o = pgopt(&["tune", &c.dsn(db), "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
            .to_string()
    };
    assert!(row("work_mem").contains("temp files spill"), "{out}");
    // The planted table has autovacuum turned off: a note, not a global change.
    assert!(
        out.contains("autovacuum is turned off on public.security_events"),
        "{out}"
    );
    assert!(!out.contains("| autovacuum_naptime |"), "{out}");
}

/// A cluster with one table whose foreign key has no index: one warning to render.
fn cluster_with_a_finding() -> Cluster {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE parent_with_a_rather_long_name_for_wrapping (id int PRIMARY KEY); \
         CREATE TABLE child_with_a_rather_long_name_for_wrapping (id int PRIMARY KEY, \
         parent_id int REFERENCES parent_with_a_rather_long_name_for_wrapping (id));",
    )
    .unwrap();
    c
}

#[test]
fn output_through_a_pipe_has_no_escape_codes_and_fits_the_fixed_width() {
    let c = cluster_with_a_finding();
    let dsn = c.dsn("postgres");
    for (no_color, verbose) in [(false, false), (true, false), (false, true)] {
        let mut cmd = pgopt_cmd(&["analyze", &dsn]);
        cmd.env_remove("COLUMNS");
        if verbose {
            cmd.arg("-v");
        }
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let o = cmd.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let (out, err) = (stdout(&o), stderr(&o));
        assert!(!out.contains('\x1b'), "escape codes in a pipe: {out:?}");
        assert!(!err.contains('\x1b'), "escape codes in a pipe: {err:?}");
        for line in out.lines() {
            assert!(
                line.chars().count() <= pgopt::report::term::PIPE_WIDTH,
                "wider than {}: {line}",
                pgopt::report::term::PIPE_WIDTH
            );
        }
    }
    // COLUMNS, when set, is the width.
    let o = pgopt_cmd(&["analyze", &dsn])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    for line in stdout(&o).lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line}");
    }
}

#[test]
fn one_line_per_finding_by_default_and_the_evidence_with_verbose() {
    let c = cluster_with_a_finding();
    let dsn = c.dsn("postgres");
    let o = pgopt_cmd(&["analyze", &dsn])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let out = stdout(&o);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("public.child_with"))
        .collect();
    assert_eq!(lines.len(), 1, "one line for the finding: {out}");
    assert!(
        lines[0].contains(" → "),
        "message and fix on one line: {out}"
    );
    assert!(!out.contains("evidence:"), "{out}");
    assert!(!out.contains("CREATE INDEX"), "{out}");

    let o = pgopt_cmd(&["analyze", &dsn, "--verbose"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("(fk_missing_index)"), "{out}");
    assert!(out.contains("evidence: "), "{out}");
    assert!(out.contains("CREATE INDEX CONCURRENTLY"), "{out}");
    assert!(out.contains("next step: "), "{out}");
}

#[test]
fn help_has_one_layout_global_options_in_one_place_and_defaults() {
    for args in [
        &["analyze", "--help"][..],
        &["tune", "--help"],
        &["bench", "--help"],
        &["demo", "--help"],
        &["governance", "seed", "--help"],
        &["embedded", "start", "--help"],
    ] {
        let o = pgopt(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let help = stdout(&o);
        assert_eq!(
            help.matches("Global options:").count(),
            1,
            "{args:?}: {help}"
        );
        assert_eq!(help.matches("--verbose").count(), 1, "{args:?}: {help}");
        // One layout: every option's text on the line after its name.
        assert!(
            help.contains("  -h, --help\n          Print help"),
            "{args:?}: {help}"
        );
    }
    let help = stdout(&pgopt(&["analyze", "--help"]));
    assert!(help.contains("Connection:"), "{help}");
    let timeout = help
        .split("--connect-timeout")
        .nth(1)
        .and_then(|rest| rest.split("\n      --").next())
        .unwrap();
    assert!(
        timeout.contains("[default:") && timeout.contains("10"),
        "{help}"
    );
    let help = stdout(&pgopt(&["embedded", "--help"]));
    assert!(help.contains("/dev/shm"), "{help}");
    assert!(help.contains("3 stopped"), "{help}");
}

#[test]
fn the_seed_rerun_hint_keeps_the_target() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let o = pgopt(&["governance", "deploy", &dsn]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let seed = [
        "governance",
        "seed",
        &dsn,
        "--scale",
        "0.0001",
        "--no-progress",
    ];
    let o = pgopt(&seed);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = pgopt(&seed);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let target = format!(
        "'host=127.0.0.1 port={} user=postgres dbname=postgres'",
        c.port()
    );
    assert!(
        err.contains(&format!("pgopt governance drop {target} --schema")),
        "{err}"
    );
    assert!(
        err.contains(&format!("pgopt governance deploy {target} --schema")),
        "{err}"
    );
}

/// The demo talks to the cluster it started: PG* variables pointing elsewhere (another user,
/// host, database, a read-only default, a bad connect timeout) change nothing.
#[test]
fn demo_ignores_pg_variables_that_point_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let o = pgopt_cmd(&[
        "demo",
        "--scale",
        "0.01",
        "--workload-duration",
        "1s",
        "--bench-duration",
        "1s",
        "--clients",
        "1",
        "--report",
        dir.path().to_str().unwrap(),
        "--no-progress",
    ])
    .env("PGUSER", "no_such_user_junk")
    .env("PGHOST", "/nonexistent/junk")
    .env("PGPORT", "1")
    .env("PGDATABASE", "junk")
    .env("PGPASSWORD", "junk")
    .env("PGPASSFILE", "/nonexistent/junk")
    .env("PGCONNECT_TIMEOUT", "junk")
    .env("PGOPTIONS", "-c default_transaction_read_only=on")
    .output()
    .expect("run pgopt");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert!(!v["findings"].as_array().unwrap().is_empty());
    assert_eq!(v["target"]["user"], "postgres");
}
