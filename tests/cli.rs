//! The command line as a user meets it: exit codes, messages for bad input, saved snapshots.

mod cli_support;

use cli_support::*;
use std::time::{Duration, Instant};

use pgopt::embedded::{Cluster, ClusterOptions};

#[test]
fn no_target_explains_how_to_give_one_and_mentions_the_embedded_cluster() {
    let o = pgopt(&["analyze"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("no target given"), "{err}");
    assert!(err.contains("pgopt embedded start"), "{err}");
    assert!(err.contains("PGHOST"), "{err}");
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
    let o = pgopt(&["analyze", &dsn, "--fail-on", "warning"]);
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

#[test]
fn demo_runs_and_finds_what_it_planted() {
    let o = pgopt(&["demo", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let findings = v["findings"].as_array().unwrap();
    for (rule, object) in pgopt::demo::PLANTED {
        assert!(
            findings
                .iter()
                .any(|f| f["rule"] == *rule && f["object"].as_str().unwrap().contains(object)),
            "demo finding {rule} on {object} missing"
        );
    }
}

/// The table form of the demo goes on to the settings phase: pgopt tune's dry run on the same
/// snapshot, with the planted spill as evidence and a note for the table autovacuum may not touch.
#[test]
fn demo_advises_settings_from_the_same_snapshot() {
    let o = pgopt(&["demo", "--format", "markdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("pgopt tune --method pgopt"), "{out}");
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
    assert!(out.contains("nothing was changed"), "{out}");
}
