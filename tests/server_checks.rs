//! The server checks a DBA expects beside the performance findings: replication slots and the
//! WAL they keep, the WAL directory's size, failing archiving, autovacuum or track_counts off,
//! disabled triggers and free disk space. Each rule on snapshots built in code (its case and
//! its near miss), then planted on real clusters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pgopt::advise::{advise, Finding, Severity, Thresholds};
use pgopt::collect::CollectOptions;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::*;

const GIB: i64 = 1024 * MIB;

fn slot(name: &str, active: bool, retained: i64, wal_status: &str) -> ReplicationSlot {
    ReplicationSlot {
        name: name.to_string(),
        slot_type: "physical".to_string(),
        active,
        xmin_age: None,
        catalog_xmin_age: None,
        retained_bytes: Some(retained),
        wal_status: Some(wal_status.to_string()),
        safe_wal_size_bytes: None,
    }
}

fn slots_mut(snap: &mut Snapshot) -> &mut Vec<ReplicationSlot> {
    &mut snap.replication.as_mut().unwrap().slots
}

fn set_size(snap: &mut Snapshot, name: &str, value: &str) {
    set_setting(snap, name, value);
    snap.settings.last_mut().unwrap().unit = Some("MB".to_string());
    snap.settings.last_mut().unwrap().vartype = "integer".to_string();
}

fn disk(mount: &str, total: u64, available: u64) -> DiskInfo {
    DiskInfo {
        mount_point: mount.to_string(),
        total_bytes: total,
        available_bytes: available,
    }
}

fn local_host(data: Option<DiskInfo>, wal: Option<DiskInfo>) -> HostInfo {
    HostInfo {
        cpus: 8,
        memory_bytes: 32 << 30,
        cgroup_memory_limit_bytes: None,
        data_disk: data,
        wal_directory: wal.as_ref().map(|_| "/wal/pg_wal".to_string()),
        wal_disk: wal,
        huge_pages: None,
    }
}

fn findings_of(snap: &Snapshot, rule: &str) -> Vec<Finding> {
    run(snap).into_iter().filter(|f| f.rule == rule).collect()
}

// ---- replication slots ----

#[test]
fn inactive_slot_retaining_wal_is_a_warning_with_a_quoted_drop() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_slot_wal_keep_size", "-1");
    let mut s = slot("it's gone", false, 3 * GIB, "extended");
    s.xmin_age = Some(1_000);
    slots_mut(&mut snap).push(s);
    snap.host = Some(local_host(
        Some(disk("/", 1000 * GIB as u64, 400 * GIB as u64)),
        None,
    ));
    let f = single(&snap, "replication_slot_retaining_wal");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(ev_i64(&f, "retained_bytes"), 3 * GIB);
    assert_eq!(ev_i64(&f, "xmin_age"), 1_000, "xmin age is evidence");
    assert!(f.message.contains("inactive"), "{}", f.message);
    assert!(
        f.message.contains("max_slot_wal_keep_size = -1"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("disk holding pg_wal is full"),
        "{}",
        f.message
    );
    assert!(f.message.contains("400.0 GB free"), "{}", f.message);
    let sql = f.sql.as_deref().unwrap();
    assert!(
        sql.contains("SELECT pg_drop_replication_slot('it''s gone');"),
        "{sql}"
    );
    assert!(
        sql.contains("ALTER SYSTEM SET max_slot_wal_keep_size = '201GB'"),
        "{sql}"
    );
    // No horizon advice: that is the wraparound and horizon rules' business.
    assert!(!f.next_step.contains("xmin"), "{}", f.next_step);
    assert_consistent(&run(&snap));
}

#[test]
fn active_slot_with_little_retained_and_a_fresh_inactive_slot_are_silent() {
    let mut snap = clean_snapshot();
    // clean_snapshot already has an active slot retaining 16 MB.
    slots_mut(&mut snap).push(slot("fresh", false, 200 * MIB, "reserved"));
    assert_silent(&snap, "replication_slot_retaining_wal");
    assert_silent(&snap, "replication_slot_lost");
}

#[test]
fn lost_slot_is_critical_and_says_to_reseed() {
    let mut snap = clean_snapshot();
    let mut s = slot("standby2", false, 0, "lost");
    s.retained_bytes = None;
    slots_mut(&mut snap).push(s);
    let f = single(&snap, "replication_slot_lost");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.next_step.contains("pg_basebackup"), "{}", f.next_step);
    assert_eq!(
        f.sql.as_deref(),
        Some("SELECT pg_drop_replication_slot('standby2');")
    );
    assert_silent(&snap, "replication_slot_retaining_wal");
}

#[test]
fn slot_close_to_max_slot_wal_keep_size_is_critical() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_slot_wal_keep_size", "10240"); // 10 GB
    let mut s = slot("lagging", true, 9 * GIB, "extended");
    s.safe_wal_size_bytes = Some(GIB); // 10 % of the cap left
    slots_mut(&mut snap).push(s);
    let f = single(&snap, "replication_slot_retaining_wal");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.message.contains("connected but behind"), "{}", f.message);
    assert!(
        f.message.contains("1.0 GB more WAL and the slot is lost"),
        "{}",
        f.message
    );
    assert_eq!(f.sql, None, "an active slot is not dropped, the cap is set");
    // With a third of the cap left it is a warning.
    slots_mut(&mut snap).last_mut().unwrap().safe_wal_size_bytes = Some(3 * GIB);
    let f = single(&snap, "replication_slot_retaining_wal");
    assert_eq!(f.severity, Severity::Warning);
}

#[test]
fn unreserved_slot_is_critical_even_when_it_retains_little() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_slot_wal_keep_size", "256");
    let mut s = slot("edge", false, 300 * MIB, "unreserved");
    s.safe_wal_size_bytes = Some(-44 * MIB);
    slots_mut(&mut snap).push(s);
    let f = single(&snap, "replication_slot_retaining_wal");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f.message.contains("unreserved"), "{}", f.message);
}

// ---- WAL directory ----

fn wal_dir(size: i64) -> WalDirectory {
    WalDirectory {
        size_bytes: size,
        file_count: size / (16 * MIB),
        segment_bytes: 16 * MIB,
    }
}

#[test]
fn wal_directory_beyond_twice_max_wal_size_names_the_slot() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_wal_size", "1024");
    snap.wal_directory = Some(wal_dir(5 * GIB));
    slots_mut(&mut snap).push(slot("forgotten", false, 4 * GIB, "extended"));
    let f = single(&snap, "wal_directory_large");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(ev_i64(&f, "size_bytes"), 5 * GIB);
    assert!(
        f.message
            .contains("replication slot forgotten (inactive) retains 4.0 GB"),
        "{}",
        f.message
    );
    assert!((ev_f64(&f, "ratio_of_base") - 5.0).abs() < 1e-9);
    assert_consistent(&run(&snap));
}

#[test]
fn wal_directory_names_failing_archiving_or_says_nothing_explains_it() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_wal_size", "1024");
    snap.wal_directory = Some(wal_dir(3 * GIB));
    let f = single(&snap, "wal_directory_large");
    assert!(f
        .message
        .contains("no slot, archiving or wal_keep_size explains it"));
    set_setting(&mut snap, "archive_mode", "on");
    snap.archiver = Some(Archiver {
        failed_count: 12,
        last_failed_time: ago(60),
        ready_files: Some(120),
        ..Default::default()
    });
    let f = single(&snap, "wal_directory_large");
    assert!(
        f.message
            .contains("120 segments wait for archiving, which is failing"),
        "{}",
        f.message
    );
}

#[test]
fn wal_directory_within_its_settings_is_silent() {
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_wal_size", "1024");
    snap.wal_directory = Some(wal_dir(2 * GIB - MIB));
    assert_silent(&snap, "wal_directory_large");
    // wal_keep_size larger than max_wal_size raises what is expected.
    set_size(&mut snap, "wal_keep_size", "4096");
    snap.wal_directory = Some(wal_dir(5 * GIB));
    assert_silent(&snap, "wal_directory_large");
}

// ---- archiving ----

fn archiving_on(snap: &mut Snapshot, command: &str) {
    set_setting(snap, "archive_mode", "on");
    set_setting(snap, "archive_command", command);
}

#[test]
fn recently_failing_archiving_is_a_warning_and_keeps_the_command_secret() {
    let mut snap = clean_snapshot();
    archiving_on(
        &mut snap,
        "aws s3 cp %p s3://bucket/%f --secret-key HUNTER2",
    );
    snap.archiver = Some(Archiver {
        archived_count: 500,
        last_archived_wal: Some("000000010000000000000010".into()),
        last_archived_time: ago(600),
        failed_count: 3,
        last_failed_wal: Some("000000010000000000000011".into()),
        last_failed_time: ago(30),
        ready_files: Some(2),
        oldest_ready_time: ago(590),
        ..Default::default()
    });
    let f = single(&snap, "archiving_failing");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("3 failures"), "{}", f.message);
    assert!(
        f.message.contains("000000010000000000000011"),
        "{}",
        f.message
    );
    assert!(f.message.contains("2 segments wait"), "{}", f.message);
    let all = serde_json::to_string(&f).unwrap();
    assert!(!all.contains("HUNTER2"), "{all}");
    assert_eq!(f.evidence["archive_command_set"], true);
}

#[test]
fn archiving_failing_for_long_or_with_many_segments_waiting_is_critical() {
    let mut snap = clean_snapshot();
    archiving_on(&mut snap, "cp %p /archive/%f");
    snap.archiver = Some(Archiver {
        archived_count: 500,
        last_archived_time: ago(2 * 3600),
        failed_count: 300,
        last_failed_time: ago(10),
        ready_files: Some(5),
        ..Default::default()
    });
    assert_eq!(
        single(&snap, "archiving_failing").severity,
        Severity::Critical
    );
    let a = snap.archiver.as_mut().unwrap();
    a.last_archived_time = ago(60);
    a.ready_files = Some(64);
    assert_eq!(
        single(&snap, "archiving_failing").severity,
        Severity::Critical
    );
}

#[test]
fn archiving_recovered_or_off_is_silent() {
    let mut snap = clean_snapshot();
    archiving_on(&mut snap, "cp %p /archive/%f");
    snap.archiver = Some(Archiver {
        archived_count: 500,
        last_archived_time: ago(5),
        failed_count: 3,
        last_failed_time: ago(60),
        ready_files: Some(0),
        ..Default::default()
    });
    assert_silent(&snap, "archiving_failing");
    assert_silent(&snap, "archiving_behind");
    // Failing, but archive_mode is off: nothing waits for the archiver.
    set_setting(&mut snap, "archive_mode", "off");
    snap.archiver.as_mut().unwrap().last_failed_time = ago(1);
    assert_silent(&snap, "archiving_failing");
}

#[test]
fn archive_mode_on_without_a_command_is_failing() {
    let mut snap = clean_snapshot();
    archiving_on(&mut snap, "");
    snap.archiver = Some(Archiver {
        ready_files: Some(3),
        oldest_ready_time: ago(120),
        ..Default::default()
    });
    let f = single(&snap, "archiving_failing");
    assert!(f
        .message
        .contains("neither archive_command nor archive_library"));
    assert!(f.sql.as_deref().unwrap().contains("pg_reload_conf()"));
}

#[test]
fn segments_piling_up_without_failures_is_archiving_behind() {
    let mut snap = clean_snapshot();
    archiving_on(&mut snap, "cp %p /archive/%f");
    snap.archiver = Some(Archiver {
        archived_count: 500,
        last_archived_time: ago(1),
        ready_files: Some(40),
        oldest_ready_time: ago(900),
        ..Default::default()
    });
    let f = single(&snap, "archiving_behind");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("40 segments wait"), "{}", f.message);
    snap.archiver.as_mut().unwrap().ready_files = Some(15);
    assert_silent(&snap, "archiving_behind");
}

// ---- autovacuum and track_counts ----

#[test]
fn autovacuum_off_is_a_warning_and_critical_past_the_xid_warning_age() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "autovacuum", "off");
    let f = single(&snap, "autovacuum_off");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.sql.as_deref(),
        Some("ALTER SYSTEM SET autovacuum = on;\nSELECT pg_reload_conf();")
    );
    assert_silent(&snap, "track_counts_off");
    // 0.9 × 200M = 180M: a table at 185M makes it critical.
    table_mut(&mut snap, "orders").frozenxid_age = 185_000_000;
    let f = single(&snap, "autovacuum_off");
    assert_eq!(f.severity, Severity::Critical);
    assert!(f
        .message
        .contains("public.orders is already at XID age 185000000"));
    assert_eq!(ev_i64(&f, "oldest_frozenxid_age"), 185_000_000);
    assert_consistent(&run(&snap));
}

#[test]
fn track_counts_off_is_a_finding_of_its_own() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "track_counts", "off");
    snap.settings.last_mut().unwrap().source = "command line".to_string();
    let f = single(&snap, "track_counts_off");
    assert!(
        f.message.contains("autovacuum has no counters"),
        "{}",
        f.message
    );
    assert!(
        f.next_step.contains("ALTER SYSTEM does not"),
        "{}",
        f.next_step
    );
    assert_silent(&snap, "autovacuum_off");
}

#[test]
fn autovacuum_and_track_counts_on_are_silent() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "track_counts", "on");
    assert_silent(&snap, "autovacuum_off");
    assert_silent(&snap, "track_counts_off");
}

// ---- triggers ----

fn trigger(table: &str, name: &str, enabled: &str) -> Trigger {
    Trigger {
        schema: "public".to_string(),
        table: table.to_string(),
        name: name.to_string(),
        enabled: enabled.to_string(),
        function: "public.audit_row".to_string(),
        is_constraint: false,
    }
}

#[test]
fn disabled_trigger_is_a_warning_with_replica_modes_as_evidence() {
    let mut snap = clean_snapshot();
    snap.triggers = Some(vec![
        trigger("orders", "orders_audit\"; DROP", "D"),
        trigger("orders", "orders_sync", "R"),
        trigger("orders", "orders_always", "A"),
        trigger("users", "users_audit", "O"),
    ]);
    let f = single(&snap, "trigger_disabled");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("public.audit_row()"), "{}", f.message);
    assert!(f.next_step.contains("deliberate"), "{}", f.next_step);
    assert_eq!(
        f.sql.as_deref(),
        Some("ALTER TABLE \"public\".\"orders\" ENABLE TRIGGER \"orders_audit\"\"; DROP\";")
    );
    let special = f.evidence["replica_or_always_triggers_on_table"]
        .as_array()
        .unwrap();
    assert_eq!(special.len(), 2, "{special:?}");
}

#[test]
fn enabled_replica_and_always_triggers_are_silent() {
    let mut snap = clean_snapshot();
    snap.triggers = Some(vec![
        trigger("orders", "orders_sync", "R"),
        trigger("orders", "orders_always", "A"),
        trigger("users", "users_audit", "O"),
    ]);
    assert_silent(&snap, "trigger_disabled");
}

// ---- disk space ----

#[test]
fn disk_free_space_levels() {
    let tb = 1u64 << 40;
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_wal_size", "1024");
    let level = |snap: &mut Snapshot, available: u64| {
        snap.host = Some(local_host(Some(disk("/srv", tb, available)), None));
        findings_of(snap, "disk_space_low")
    };
    assert!(level(&mut snap, tb / 2).is_empty(), "50 % free is fine");
    assert!(
        level(&mut snap, tb * 16 / 100).is_empty(),
        "16 % free: near miss"
    );
    let f = level(&mut snap, tb / 10);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[0].object, "disk /srv");
    assert!(
        f[0].evidence["growth_history"]
            .as_str()
            .unwrap()
            .starts_with("none"),
        "no growth rate is invented"
    );
    assert!(!f[0].evidence.contains_key("days_left"));
    let f = level(&mut snap, tb * 3 / 100);
    assert_eq!(f[0].severity, Severity::Critical);
}

#[test]
fn wal_disk_of_its_own_is_checked_and_critical_below_max_wal_size() {
    let gib = 1u64 << 30;
    let mut snap = clean_snapshot();
    set_size(&mut snap, "max_wal_size", "4096"); // 4 GB
                                                 // A 20 GB WAL disk with 3 GB free (15 % free: not below the ratios) on its own mount.
    snap.host = Some(local_host(
        Some(disk("/srv", 1000 * gib, 500 * gib)),
        Some(disk("/wal", 20 * gib, 3 * gib)),
    ));
    let f = findings_of(&snap, "disk_space_low");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].object, "disk /wal");
    assert_eq!(f[0].severity, Severity::Critical);
    assert!(
        f[0].message.contains("less than max_wal_size"),
        "{}",
        f[0].message
    );
    assert!(f[0].message.contains("server stops"), "{}", f[0].message);
    // The same filesystem for both: one finding, naming both.
    snap.host = Some(local_host(
        Some(disk("/srv", 100 * gib, 10 * gib)),
        Some(disk("/srv", 100 * gib, 10 * gib)),
    ));
    let f = findings_of(&snap, "disk_space_low");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].evidence["holds"], "data directory and WAL directory");
    // Not on this machine: nothing is known, nothing said.
    snap.host = None;
    assert!(findings_of(&snap, "disk_space_low").is_empty());
}

// ---- live ----

async fn snapshot(c: &Cluster) -> Snapshot {
    common::live_snapshot(&c.dsn("postgres"), &CollectOptions::default()).await
}

/// Writes a little WAL and switches to a new segment, `n` times.
fn switch_wal(c: &Cluster, n: usize) {
    c.psql("postgres", "CREATE TABLE IF NOT EXISTS walfill (x int)")
        .unwrap();
    for _ in 0..n {
        c.psql(
            "postgres",
            "INSERT INTO walfill VALUES (1); SELECT pg_switch_wal();",
        )
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inactive_slot_retaining_wal_is_found_and_a_fresh_slot_is_not() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("max_wal_size".into(), "'32MB'".into()),
            ("min_wal_size".into(), "'32MB'".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    c.psql(
        "postgres",
        "SELECT pg_create_physical_replication_slot('forgotten', true)",
    )
    .unwrap();
    switch_wal(&c, 8);
    c.psql("postgres", "CHECKPOINT").unwrap();
    // Created after the switches: it retains next to nothing.
    c.psql(
        "postgres",
        "SELECT pg_create_physical_replication_slot('fresh', true)",
    )
    .unwrap();
    let snap = snapshot(&c).await;
    let slots = &snap.replication.as_ref().unwrap().slots;
    let forgotten = slots.iter().find(|s| s.name == "forgotten").unwrap();
    assert!(
        forgotten.retained_bytes.unwrap() >= 7 * 16 * MIB,
        "{forgotten:?}"
    );
    assert_eq!(forgotten.wal_status.as_deref(), Some("extended"));
    assert_eq!(
        forgotten.safe_wal_size_bytes, None,
        "unlimited: no safe size"
    );

    let findings = advise(
        &snap,
        &common::thresholds_with(&[("slot_retained_warning_bytes", "67108864")]),
    );
    let hits = common::of_rule(&findings, "replication_slot_retaining_wal");
    assert_eq!(hits.len(), 1, "{findings:#?}");
    assert_eq!(hits[0].object, "replication slot forgotten");
    assert_eq!(hits[0].severity, Severity::Warning);
    assert!(hits[0].message.contains("max_slot_wal_keep_size = -1"));
    assert!(hits[0]
        .sql
        .as_deref()
        .unwrap()
        .contains("pg_drop_replication_slot('forgotten')"));

    // pg_wal is well beyond 2 × 32 MB, and the slot is named as the reason.
    let dir = snap.wal_directory.as_ref().expect("pg_ls_waldir read");
    assert!(dir.size_bytes > 64 * MIB, "{dir:?}");
    let wal = common::of_rule(&findings, "wal_directory_large");
    assert_eq!(wal.len(), 1, "{findings:#?}");
    assert!(
        wal[0].message.contains("replication slot forgotten"),
        "{}",
        wal[0].message
    );
    // archive_mode is off here: nothing about archiving.
    assert!(common::of_rule(&findings, "archiving_failing").is_empty());

    // With the default threshold (1 GB) the 128 MB it keeps is not yet worth a finding.
    let findings = advise(&snap, &Thresholds::default());
    assert!(common::of_rule(&findings, "replication_slot_retaining_wal").is_empty());

    // Dropping it per the advice lets the next checkpoint recycle the WAL.
    c.psql(
        "postgres",
        hits[0].sql.as_deref().unwrap().lines().next().unwrap(),
    )
    .unwrap();
    assert!(!c
        .psql("postgres", "SELECT slot_name FROM pg_replication_slots")
        .unwrap()
        .contains("forgotten"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_archive_command_is_found_and_archive_mode_off_is_silent() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("archive_mode".into(), "on".into()),
            ("archive_command".into(), "'false'".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    switch_wal(&c, 1);
    // The archiver tries at once; wait (bounded) until pg_stat_archiver shows the failure.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c
            .psql("postgres", "SELECT failed_count FROM pg_stat_archiver")
            .unwrap();
        if out.trim().parse::<i64>().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "archiver never failed: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let snap = snapshot(&c).await;
    let a = snap.archiver.as_ref().expect("archiver collected");
    assert!(
        a.failed_count > 0 && a.last_archived_time.is_none(),
        "{a:?}"
    );
    assert!(a.ready_files.is_some_and(|r| r >= 1), "{a:?}");
    let findings = advise(&snap, &Thresholds::default());
    let hits = common::of_rule(&findings, "archiving_failing");
    assert_eq!(hits.len(), 1, "{findings:#?}");
    assert_eq!(hits[0].severity, Severity::Warning);
    assert!(hits[0].message.contains("WAL archiving is failing"));
    assert_eq!(hits[0].evidence["archive_mode"], "on");

    // The same WAL switch with archive_mode off: silent.
    let off = Cluster::start(ClusterOptions::default()).unwrap();
    switch_wal(&off, 1);
    let snap = snapshot(&off).await;
    assert_eq!(snap.archiver.as_ref().unwrap().failed_count, 0);
    let findings = advise(&snap, &Thresholds::default());
    assert!(common::of_rule(&findings, "archiving_failing").is_empty());
    assert!(common::of_rule(&findings, "archiving_behind").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autovacuum_off_is_found_and_on_is_silent() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("autovacuum".into(), "off".into())],
        ..Default::default()
    })
    .unwrap();
    let findings = advise(&snapshot(&c).await, &Thresholds::default());
    let hits = common::of_rule(&findings, "autovacuum_off");
    assert_eq!(hits.len(), 1, "{findings:#?}");
    assert_eq!(hits[0].severity, Severity::Warning, "young XIDs: a warning");
    assert_eq!(hits[0].evidence["source"], "configuration file");
    // The advice works: after it, autovacuum is on.
    c.psql("postgres", hits[0].sql.as_deref().unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.psql("postgres", "SHOW autovacuum").unwrap().trim() != "on" {
        assert!(
            Instant::now() < deadline,
            "reload did not turn autovacuum on"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let findings = advise(&snapshot(&c).await, &Thresholds::default());
    assert!(
        common::of_rule(&findings, "autovacuum_off").is_empty(),
        "{findings:#?}"
    );
    assert!(common::of_rule(&findings, "track_counts_off").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_trigger_is_found_and_enabled_one_is_not() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE accounts (id int PRIMARY KEY, balance int);
         CREATE TABLE \"Audit Log\" (id int REFERENCES accounts (id), at timestamptz);
         CREATE FUNCTION note_change() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN RETURN NEW; END$$;
         CREATE TRIGGER accounts_audit AFTER UPDATE ON accounts
           FOR EACH ROW EXECUTE FUNCTION note_change();
         CREATE TRIGGER \"Stamp it\" BEFORE INSERT ON \"Audit Log\"
           FOR EACH ROW EXECUTE FUNCTION note_change();
         CREATE TRIGGER audit_sync BEFORE UPDATE ON \"Audit Log\"
           FOR EACH ROW EXECUTE FUNCTION note_change();
         ALTER TABLE \"Audit Log\" DISABLE TRIGGER \"Stamp it\";
         ALTER TABLE \"Audit Log\" ENABLE REPLICA TRIGGER audit_sync;
         CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
         CREATE TRIGGER events_audit AFTER INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION note_change();
         ALTER TABLE events DISABLE TRIGGER events_audit;",
    )
    .unwrap();
    let snap = snapshot(&c).await;
    let triggers = snap.triggers.as_ref().expect("triggers collected");
    // The foreign key's internal triggers are left out.
    assert!(
        triggers
            .iter()
            .all(|t| t.table != "accounts" || t.name == "accounts_audit"),
        "{triggers:?}"
    );
    let findings = advise(&snap, &Thresholds::default());
    let mut objects: Vec<&str> = common::of_rule(&findings, "trigger_disabled")
        .iter()
        .map(|f| f.object.as_str())
        .collect();
    objects.sort_unstable();
    // One finding for the partitioned table, none per partition.
    assert_eq!(
        objects,
        [
            "trigger Stamp it on public.Audit Log",
            "trigger events_audit on public.events"
        ],
        "{findings:#?}"
    );
    let f = common::of_rule(&findings, "trigger_disabled")
        .into_iter()
        .find(|f| f.object.contains("Stamp it"))
        .unwrap();
    assert_eq!(f.evidence["function"], "public.note_change");
    assert_eq!(
        f.evidence["replica_or_always_triggers_on_table"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The SQL it gives runs, and the trigger is then enabled.
    c.psql("postgres", f.sql.as_deref().unwrap()).unwrap();
    let findings = advise(&snapshot(&c).await, &Thresholds::default());
    let left = common::of_rule(&findings, "trigger_disabled");
    assert_eq!(left.len(), 1, "{findings:#?}");
    assert_eq!(left[0].object, "trigger events_audit on public.events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_wal_disks_are_collected_on_a_local_cluster() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let snap = snapshot(&c).await;
    let host = snap.host.as_ref().expect("the cluster is on this machine");
    let data = host.data_disk.as_ref().expect("data directory's disk");
    let wal = host.wal_disk.as_ref().expect("WAL directory's disk");
    assert!(data.total_bytes > 0 && data.available_bytes <= data.total_bytes);
    assert!(wal.total_bytes > 0 && wal.available_bytes <= wal.total_bytes);
    let wal_dir = host.wal_directory.as_deref().unwrap();
    let expected = std::fs::canonicalize(c.data_dir().join("pg_wal")).unwrap();
    assert_eq!(wal_dir, expected.display().to_string());
    // pg_wal is not a symlink here: both are the same filesystem.
    assert_eq!(data.mount_point, wal.mount_point);
    let dir = snap.wal_directory.as_ref().expect("pg_ls_waldir read");
    assert!(
        dir.file_count >= 1 && dir.size_bytes >= dir.segment_bytes,
        "{dir:?}"
    );
    assert_eq!(dir.segment_bytes, 16 * MIB);
}

/// Polls `sql` on `c` until it prints `want`, for at most 30 s.
async fn wait_for(c: &Cluster, sql: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = c.psql("postgres", sql).unwrap();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_slot_of_a_streaming_standby_retaining_little_is_silent() {
    let primary = Cluster::start(ClusterOptions::default()).unwrap();
    primary
        .psql(
            "postgres",
            "SELECT pg_create_physical_replication_slot('standby_slot', true)",
        )
        .unwrap();
    let mut standby = primary.standby().unwrap();
    {
        use std::io::Write;
        let conf = standby.data_dir().join("postgresql.auto.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .unwrap();
        writeln!(f, "primary_slot_name = 'standby_slot'").unwrap();
    }
    standby.restart().unwrap();
    wait_for(
        &primary,
        "SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_slot'",
        "t",
    )
    .await;
    switch_wal(&primary, 4);
    // The standby confirms what it flushed: the slot then retains less than a segment.
    wait_for(
        &primary,
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) < 16 * 1024 * 1024 \
         FROM pg_replication_slots WHERE slot_name = 'standby_slot'",
        "t",
    )
    .await;
    let snap = snapshot(&primary).await;
    let slot = &snap.replication.as_ref().unwrap().slots[0];
    assert!(
        slot.active && slot.retained_bytes.unwrap() < 16 * MIB,
        "{slot:?}"
    );
    let findings = advise(
        &snap,
        &common::thresholds_with(&[("slot_retained_warning_bytes", "67108864")]),
    );
    assert!(
        common::of_rule(&findings, "replication_slot_retaining_wal").is_empty(),
        "{findings:#?}"
    );
    assert!(common::of_rule(&findings, "wal_directory_large").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_disk_follows_a_symlinked_pg_wal_to_its_own_filesystem() {
    use std::os::unix::fs::MetadataExt;
    // Declared first so that it outlives the cluster: the server stops before it is removed.
    let elsewhere = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    let data = c.data_dir();
    let owner = std::fs::metadata(&data).unwrap();
    std::os::unix::fs::chown(elsewhere.path(), Some(owner.uid()), Some(owner.gid())).unwrap();
    let target = elsewhere.path().join("pg_wal");
    // Move pg_wal while the server is down, as an administrator would.
    c.kill();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(data.join("pg_wal"))
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir_all(data.join("pg_wal")).unwrap();
    std::os::unix::fs::symlink(&target, data.join("pg_wal")).unwrap();
    c.restart().unwrap();
    switch_wal(&c, 1);

    let snap = snapshot(&c).await;
    let host = snap.host.as_ref().expect("the cluster is on this machine");
    let resolved = std::fs::canonicalize(&target).unwrap();
    assert_eq!(
        host.wal_directory.as_deref(),
        Some(resolved.display().to_string().as_str())
    );
    let data_disk = host.data_disk.as_ref().expect("data disk");
    let wal_disk = host.wal_disk.as_ref().expect("WAL disk");
    let same_fs =
        std::fs::metadata(&data).unwrap().dev() == std::fs::metadata(&resolved).unwrap().dev();
    if !same_fs {
        assert_ne!(data_disk.mount_point, wal_disk.mount_point, "{host:?}");
    }
    // The server writes WAL through the link: pg_ls_waldir sees it.
    assert!(snap.wal_directory.as_ref().unwrap().file_count >= 1);
}
