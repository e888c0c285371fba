//! `tune::advise` over a snapshot, with no server: thresholds decide the advice and are
//! overridable, the temp-file rate respects its statistics floor, an older snapshot loads and
//! says what it lacks, and the rules stay pure.

mod common;

use std::path::Path;

use common::*;
use pgopt::advise::Thresholds;
use pgopt::snapshot::{Snapshot, StatsWindow, Storage, StorageSource};
use pgopt::tune::{self, advice, Profile, RawInput, TuneInput};

fn input() -> TuneInput {
    TuneInput::validate(&RawInput {
        memory: Some("16GB".into()),
        cpus: Some(4),
        profile: Some(Profile::Web),
        storage: Some(Storage::Ssd),
        ..RawInput::default()
    })
    .unwrap()
}

/// A 100 GB database read at a 98.5 % cache hit ratio.
fn hit_ratio_985() -> Snapshot {
    let mut snap = clean_snapshot();
    snap.server.as_mut().unwrap().database_sizes[0].size_bytes = 100 * 1024 * MIB;
    let db = db_mut(&mut snap, "app");
    db.blks_hit = 98_500_000;
    db.blks_read = 1_500_000;
    snap
}

#[test]
fn threshold_override_changes_tunes_advice() {
    let snap = hit_ratio_985();
    let default = tune::advise(&snap, &input(), &Thresholds::default());
    let c = default
        .pgopt
        .changes
        .iter()
        .find(|c| c.name == "shared_buffers")
        .expect("98.5% is under the default 99%");
    assert!(c.reason.contains("(< 99%)"), "{}", c.reason);

    let th = Thresholds::with_overrides(&["tune_cache_hit_ratio=0.98".to_string()]).unwrap();
    let lowered = tune::advise(&snap, &input(), &th);
    assert!(
        lowered
            .pgopt
            .changes
            .iter()
            .all(|c| c.name != "shared_buffers"),
        "98.5% is above an overridden 98%: {:?}",
        lowered.pgopt.changes
    );
    assert_eq!(
        lowered.pgopt.output.value("shared_buffers"),
        Some("4GB"),
        "PGTune's baseline stays"
    );
}

#[test]
fn tune_thresholds_are_listed_and_bad_overrides_name_the_list() {
    let names: Vec<&str> = Thresholds::names().iter().map(|n| n.0).collect();
    for name in [
        "tune_cache_hit_ratio",
        "tune_temp_rate_min_window_seconds",
        "tune_checkpoints_requested_ratio",
        "tune_connection_floor",
        "tune_near_max_connections_ratio",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let e = Thresholds::with_overrides(&["tune_cache_hit_ratio".to_string()]).unwrap_err();
    assert!(
        e.is_bad_input() && e.to_string().contains("--threshold list"),
        "{e}"
    );
}

/// 30 temp files over a window of `seconds` (30/h: a pattern if a rate is stated), no
/// statement seen spilling.
fn temp_files_over(seconds: i64) -> Snapshot {
    let mut snap = clean_snapshot();
    let db = db_mut(&mut snap, "app");
    db.temp_files = 30;
    db.temp_bytes = 30 * 64 * MIB;
    db.stats_reset = ago(seconds);
    for s in &mut snap.statements.as_mut().unwrap().top {
        s.temp_blks_written = 0;
    }
    snap
}

#[test]
fn temp_file_rate_near_miss_below_the_floor_states_no_rate() {
    let th = Thresholds::default();
    let floor = th.tune_temp_rate_min_window_seconds as i64;
    // One second short of the floor: no rate, and nothing seen spilling, so no change.
    let below = tune::advise(&temp_files_over(floor - 1), &input(), &th);
    assert!(
        below.pgopt.changes.iter().all(|c| c.name != "work_mem"),
        "{:?}",
        below.pgopt.changes
    );
    // At the floor the rate is stated (720/day over 1 hour), not extrapolated from less.
    let at = tune::advise(&temp_files_over(floor), &input(), &th);
    let c = at
        .pgopt
        .changes
        .iter()
        .find(|c| c.name == "work_mem")
        .expect("30 files in an hour is a pattern");
    assert!(c.reason.contains("720.0/day over 60.0 min"), "{}", c.reason);
    // The window the snapshot recorded wins over one derived from stats_reset.
    let mut recorded = temp_files_over(floor);
    recorded.stats_window = Some(StatsWindow {
        seconds: (floor - 1) as f64,
        since: "stats_reset".into(),
    });
    let out = tune::advise(&recorded, &input(), &th);
    assert!(out.pgopt.changes.iter().all(|c| c.name != "work_mem"));
    // The floor is a threshold: lowered, the short window gives a rate.
    let th = Thresholds::with_overrides(&["tune_temp_rate_min_window_seconds=60".into()]).unwrap();
    let out = tune::advise(&temp_files_over(floor - 1), &input(), &th);
    assert!(out.pgopt.changes.iter().any(|c| c.name == "work_mem"));
}

#[test]
fn schema_v1_snapshot_loads_and_says_what_tune_lacks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot_schema_v1.json");
    let snap = Snapshot::load(&path).expect("a schema 1 snapshot still loads");
    assert_eq!(snap.schema_version, 1);
    assert!(snap.data_storage.is_none() && snap.setting_domains.is_none());
    let lacks = snap.lacks_for_tune();
    for what in [
        "storage under the data directory",
        "pg_db_role_setting",
        "statistics window",
        "ranges and enum values",
    ] {
        assert!(
            lacks
                .iter()
                .any(|l| l.contains(what) && l.contains("schema version 1")),
            "{what}: {lacks:?}"
        );
    }
    // Storage falls back to the default, saying why.
    let d = advice::detected(&snap, false);
    match d.storage {
        Some(StorageSource::NotDetected { reason }) => {
            assert!(reason.contains("schema version 1"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // The advice is still given, and carries the same notes.
    let raw = RawInput {
        memory: Some("16GB".into()),
        cpus: Some(4),
        ..RawInput::default()
    };
    let (input, _) = advice::inputs(&snap, raw).unwrap();
    assert_eq!(input.storage, Storage::Ssd);
    let a = tune::advise(&snap, &input, &Thresholds::default());
    assert_eq!(a.lacks, lacks);
    assert!(!a.pgopt.rows.is_empty());
}

#[test]
fn a_current_snapshot_lacks_nothing_tune_reads() {
    let mut snap = clean_snapshot();
    snap.data_storage = Some(StorageSource::NotDetected {
        reason: "the server is not on this machine".into(),
    });
    snap.setting_domains = Some(Vec::new());
    snap.role_settings = Some(Vec::new());
    snap.stats_window = Some(StatsWindow {
        seconds: 86_400.0,
        since: "stats_reset".into(),
    });
    assert_eq!(snap.lacks_for_tune(), Vec::<String>::new());
}

#[test]
fn tune_rules_and_advice_use_no_database_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tune");
    let mut files: Vec<_> = std::fs::read_dir(root.join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("advice.rs"));
    files.push(root.join("evidence.rs"));
    assert!(files.len() > 8, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for forbidden in [
            "crate::db::Conn",
            "crate::db::{",
            "crate::collect",
            "tokio",
            "clap",
        ] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}",
                f.display()
            );
        }
    }
}

#[test]
fn governance_reads_role_settings_of_the_connected_database() {
    use pgopt::snapshot::RoleSetting;
    let mut snap = clean_snapshot();
    snap.roles = Some(vec![
        bootstrap_role(),
        role("acgs_app", false, None),
        role("audit", false, None),
        role("reports", false, None),
    ]);
    let setting = |database: Option<&str>, role: Option<&str>, value: &str| RoleSetting {
        database: database.map(str::to_string),
        role: role.map(str::to_string),
        config: vec![format!("statement_timeout={value}")],
    };
    snap.role_settings = Some(vec![
        // ALTER ROLE acgs_app IN DATABASE app SET statement_timeout = '10s': covered.
        setting(Some("app"), Some("acgs_app"), "10s"),
        // In another database only: audit still needs one here.
        setting(Some("other"), Some("audit"), "10s"),
    ]);
    let governance = TuneInput {
        profile: Profile::Governance,
        ..input()
    };
    let roles = |snap: &Snapshot| -> Vec<String> {
        tune::advise(snap, &governance, &Thresholds::default())
            .pgopt
            .objects
            .iter()
            .map(|o| o.object.clone())
            .collect()
    };
    assert_eq!(roles(&snap), vec!["audit", "reports"]);
    // ALTER DATABASE app SET statement_timeout: every role has one here.
    snap.role_settings
        .as_mut()
        .unwrap()
        .push(setting(Some("app"), None, "1min"));
    assert!(roles(&snap).is_empty());
}

#[test]
fn a_skipped_storage_section_is_named_as_not_collected_with_its_reason() {
    use pgopt::snapshot::{SectionState, SectionStatus};
    let mut snap = clean_snapshot();
    snap.sections.push(SectionStatus {
        section: "data_storage".into(),
        state: SectionState::Skipped,
        reason: Some("host facts were not asked for".into()),
        next_step: Some("leave out --no-host".into()),
        elapsed_ms: 0.0,
    });
    match advice::detected(&snap, false).storage {
        Some(StorageSource::NotDetected { reason }) => assert_eq!(
            reason,
            "it was not collected (host facts were not asked for)"
        ),
        other => panic!("{other:?}"),
    }
    assert!(
        snap.lacks_for_tune()
            .iter()
            .any(|l| l.contains("storage under the data directory") && l.ends_with("not collected")),
        "{:?}",
        snap.lacks_for_tune()
    );
    // --storage given: the snapshot's storage is not used, and the source is the flag.
    let d = advice::detected(&snap, true);
    assert_eq!(d.storage_source(), StorageSource::Flag);
}
