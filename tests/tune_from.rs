//! `pgopt tune --from FILE`: advice from a saved snapshot, offline. On a real embedded
//! cluster it gives the advice of the live run; on an older snapshot it says what it lacks;
//! `--threshold` changes what it advises.

mod cli_support;
mod common;

use cli_support::{pgopt, pgopt_tune, stderr, stdout};
use pgopt::embedded::{Cluster, ClusterOptions};
use serde_json::Value;

fn json(o: &std::process::Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// What decides the advice: the inputs, where storage came from, each recommended setting
/// with its current value, and each change pgopt made to the baseline (rule, setting, value).
fn advice_of(v: &Value) -> Value {
    let rows: Vec<Value> = v["comparison"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["name"], r["current"], r["recommended"], r["change"]]))
        .collect();
    let changes: Vec<Value> = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| serde_json::json!([c["rule"], c["name"], c["value"]]))
        .collect();
    serde_json::json!({
        "input": v["input"],
        "storage_source": v["storage_source"],
        "rows": rows,
        "changes": changes,
        "objects": v["objects"],
    })
}

#[test]
fn tune_from_a_saved_snapshot_gives_the_advice_of_the_live_run() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let dsn = c.dsn("postgres");
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("snap.json");
    let saved = saved.to_str().unwrap();
    let o = pgopt(&["analyze", &dsn, "--save", saved, "--format", "json"]);
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", stderr(&o));

    let live = json(&pgopt_tune(&[&dsn, "--format", "json"]));
    let offline = json(&pgopt_tune(&["--from", saved, "--format", "json"]));
    assert_eq!(advice_of(&offline), advice_of(&live));
    // The embedded cluster is on this machine: inputs and storage came from the snapshot.
    assert_ne!(offline["storage_source"]["source"], "flag");
    assert!(offline["input"]["memory"]["amount"].as_u64().unwrap() > 0);
    assert!(offline.get("snapshot_lacks").is_none(), "{offline}");

    // --from needs no server: the cluster is gone and the advice stays the same.
    drop(c);
    let again = json(&pgopt_tune(&["--from", saved, "--format", "json"]));
    assert_eq!(advice_of(&again), advice_of(&live));
}

#[test]
fn tune_from_a_schema_1_snapshot_notes_what_it_lacks() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/snapshot_schema_v1.json"
    );
    // The snapshot's server is remote: memory and CPUs must be given.
    let o = pgopt_tune(&["--from", path]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));

    let o = pgopt_tune(&["--from", path, "--memory", "16GB", "--cpus", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("note: the snapshot lacks the storage under the data directory")
            && err.contains("schema version 1"),
        "{err}"
    );
    let out = stdout(&o);
    assert!(out.contains("pgopt tune --method pgopt"), "{out}");
    assert!(
        out.contains("storage: ssd (default; not detected: this snapshot (schema version 1)"),
        "{out}"
    );
    assert!(err.contains("dry run: nothing was changed"), "{err}");
}

#[test]
fn threshold_override_changes_tune_advice_from_the_command_line() {
    let mut snap = common::clean_snapshot();
    snap.server.as_mut().unwrap().database_sizes[0].size_bytes = 100 * 1024 * common::MIB;
    {
        let db = common::db_mut(&mut snap, "app");
        db.blks_hit = 98_500_000;
        db.blks_read = 1_500_000;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.json");
    snap.save(&path).unwrap();
    let path = path.to_str().unwrap();
    let base = [
        "--from", path, "--memory", "16GB", "--cpus", "4", "--format", "json",
    ];
    let changed = |v: &Value| -> Vec<String> {
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let default = json(&pgopt_tune(&base));
    assert!(changed(&default).contains(&"shared_buffers".to_string()));
    let overridden = json(&pgopt_tune(
        &[&base[..], &["--threshold", "tune_cache_hit_ratio=0.98"]].concat(),
    ));
    assert!(
        !changed(&overridden).contains(&"shared_buffers".to_string()),
        "{:?}",
        changed(&overridden)
    );

    let o = pgopt_tune(&[&base[..], &["--threshold", "tune_nothing=1"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("unknown threshold"), "{}", stderr(&o));

    let o = pgopt_tune(&["--threshold", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("tune_cache_hit_ratio"),
        "{}",
        stdout(&o)
    );
    let o = pgopt(&["analyze", "--threshold", "list"]);
    assert!(stdout(&o).contains("tune_temp_rate_min_window_seconds"));
}

#[test]
fn from_conflicts_with_apply_and_a_target() {
    let o = pgopt_tune(&["--from", "x.json", "--apply"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = pgopt_tune(&["postgresql://u@localhost/db", "--from", "x.json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
