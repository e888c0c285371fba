//! `--method pgopt`: each evidence rule fires on a planted condition, with its reason and
//! evidence, and stays silent on the healthy snapshot; the bounds hold.

mod common;

use common::*;
use pgopt::snapshot::Snapshot;
use pgopt::tune::evidence::{pgopt_method, PgoptOutput};
use pgopt::tune::pgtune::pgtune;
use pgopt::tune::{Profile, RawInput, Storage, TuneInput};

const OBSERVABILITY: [&str; 7] = [
    "track_io_timing",
    "log_min_duration_statement",
    "log_lock_waits",
    "log_autovacuum_min_duration",
    "log_temp_files",
    "shared_preload_libraries",
    "auto_explain.log_min_duration",
];

fn input(memory: &str, profile: Profile, storage: Storage) -> TuneInput {
    TuneInput::validate(&RawInput {
        memory: Some(memory.into()),
        cpus: Some(4),
        profile: Some(profile),
        storage: Some(storage),
        ..RawInput::default()
    })
    .unwrap()
}

fn run_on(snap: &Snapshot, input: &TuneInput) -> PgoptOutput {
    pgopt_method(&pgtune(input), input, snap)
}

fn run(snap: &Snapshot) -> PgoptOutput {
    run_on(snap, &input("16GB", Profile::Web, Storage::Ssd))
}

fn kb(v: &str) -> u64 {
    pgopt::tune::compare::value_kb(v, 1.0).unwrap() as u64
}

fn changed(out: &PgoptOutput) -> Vec<&str> {
    out.changes.iter().map(|c| c.name).collect()
}

#[test]
fn clean_snapshot_gives_the_baseline_plus_observability() {
    let i = input("16GB", Profile::Web, Storage::Ssd);
    let base = pgtune(&i);
    let out = run_on(&clean_snapshot(), &i);
    assert_eq!(changed(&out), OBSERVABILITY.to_vec());
    for s in &base.settings {
        assert_eq!(out.value(s.name), Some(s.value.as_str()), "{}", s.name);
    }
    assert_eq!(out.output.settings.len(), base.settings.len() + 7);
    assert_eq!(
        out.value("shared_preload_libraries"),
        Some("pg_stat_statements,auto_explain")
    );
    assert_eq!(out.value("log_min_duration_statement"), Some("1000"));
    assert_eq!(out.value("auto_explain.log_min_duration"), Some("3000"));
    // The one note: how many huge pages PGTune's huge_pages = try needs on a remote server.
    assert_eq!(out.output.notes.len(), 1, "{:?}", out.output.notes);
    assert!(out.output.notes[0].contains("vm.nr_hugepages=2183"));
    assert!(out.objects.is_empty(), "{:?}", out.objects);
}

#[test]
fn shared_preload_libraries_keeps_existing_entries() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "shared_preload_libraries", "auto_explain");
    let out = run(&snap);
    assert_eq!(
        out.value("shared_preload_libraries"),
        Some("auto_explain,pg_stat_statements")
    );
    set_setting(&mut snap, "shared_preload_libraries", "");
    assert_eq!(
        run(&snap).value("shared_preload_libraries"),
        Some("pg_stat_statements,auto_explain")
    );
    // Without contrib (pg_stat_statements not even available) auto_explain is not added:
    // a library missing from shared_preload_libraries would stop the server from starting.
    snap.extensions.available.clear();
    let out = run(&snap);
    assert_eq!(
        out.value("shared_preload_libraries"),
        Some("pg_stat_statements")
    );
    assert_eq!(out.value("auto_explain.log_min_duration"), None);
}

#[test]
fn temp_spills_raise_work_mem_within_the_budget() {
    let mut snap = clean_snapshot();
    {
        let db = db_mut(&mut snap, "app");
        db.temp_files = 30_000; // 1000/day over 30 days
        db.temp_bytes = 30_000 * 64 * MIB;
    }
    snap.statements.as_mut().unwrap().top[0].temp_blks_written = 5_000_000;
    let i = input("16GB", Profile::Web, Storage::Ssd);
    let base = kb(pgtune(&i)
        .pairs()
        .iter()
        .find(|p| p.0 == "work_mem")
        .unwrap()
        .1);
    let out = run_on(&snap, &i);
    let wm = kb(out.value("work_mem").unwrap());
    // 16GB * 25% / (24 connections * 2)
    let budget = 16 * 1024 * 1024 / 4 / 48;
    assert!(
        wm > base && wm <= budget,
        "{wm} vs base {base}, budget {budget}"
    );
    let c = out.change("work_mem").unwrap();
    assert_eq!(c.rule, "temp_spills");
    assert!(
        c.reason.contains("temp files") && c.reason.contains("30000"),
        "{}",
        c.reason
    );
    assert_eq!(c.evidence["temp_files"], 30_000);
    assert_eq!(c.evidence["statements_spilling"], 1);
    assert_eq!(c.evidence["connections_planned"], 24);
    assert_eq!(out.value("hash_mem_multiplier"), Some("2"));
}

#[test]
fn work_mem_budget_uses_the_connection_floor_and_never_exceeds_it() {
    for (conns, memory) in [(1, "1GB"), (5, "4GB"), (500, "64GB"), (3000, "2GB")] {
        let mut snap = clean_snapshot();
        snap.activity.as_mut().unwrap().total_connections = conns;
        {
            let db = db_mut(&mut snap, "app");
            db.temp_files = 100_000;
            db.temp_bytes = 100_000 * 1024 * MIB;
        }
        let i = input(memory, Profile::Web, Storage::Ssd);
        let out = run_on(&snap, &i);
        let budget = i.memory.kb() / 4 / (2 * conns.max(20) as u64);
        let wm = kb(out.value("work_mem").unwrap());
        if out.change("work_mem").is_some() {
            assert!(wm <= budget, "{conns} {memory}: {wm} > {budget}");
        } else {
            assert!(out
                .output
                .notes
                .iter()
                .any(|n| n.contains("cannot be raised")));
        }
    }
}

#[test]
fn many_idle_max_connections_are_noted_not_changed() {
    let mut snap = clean_snapshot();
    snap.activity.as_mut().unwrap().total_connections = 5;
    let out = run(&snap);
    assert_eq!(changed(&out), OBSERVABILITY.to_vec());
    let note = out.output.notes.join("\n");
    assert!(
        note.contains("max_connections 200") && note.contains("pooler"),
        "{note}"
    );
}

#[test]
fn connections_near_the_limit_urge_a_pooler() {
    let mut snap = clean_snapshot();
    let a = snap.activity.as_mut().unwrap();
    a.max_connections = 100;
    a.superuser_reserved_connections = 3;
    a.total_connections = 90;
    let out = run(&snap);
    let note = out.output.notes.join("\n");
    assert!(
        note.contains("90 connections of max_connections 100") && note.contains("PgBouncer"),
        "{note}"
    );
    // 70 of 97: not near.
    snap.activity.as_mut().unwrap().total_connections = 70;
    let note = run(&snap).output.notes.join("\n");
    assert!(!note.contains("connections of max_connections"), "{note}");
}

#[test]
fn database_in_memory_lowers_random_page_cost_on_hdd() {
    let i = input("16GB", Profile::Web, Storage::Hdd);
    let out = run_on(&clean_snapshot(), &i);
    let c = out.change("random_page_cost").expect("fires");
    assert_eq!(
        (c.rule, c.value.as_str(), c.baseline.as_deref()),
        ("cache", "1.1", Some("4"))
    );
    assert!(c.reason.contains("908 MB"), "{}", c.reason);
    // Not when the data does not fit.
    let mut snap = clean_snapshot();
    snap.server.as_mut().unwrap().database_sizes[0].size_bytes = 100 * 1024 * MIB;
    assert!(run_on(&snap, &i).change("random_page_cost").is_none());
}

#[test]
fn low_hit_ratio_raises_shared_buffers_bounded() {
    let mut snap = clean_snapshot();
    snap.server.as_mut().unwrap().database_sizes[0].size_bytes = 100 * 1024 * MIB;
    {
        let db = db_mut(&mut snap, "app");
        db.blks_hit = 90_000_000;
        db.blks_read = 10_000_000;
    }
    let out = run(&snap);
    let c = out.change("shared_buffers").expect("fires");
    assert_eq!(c.baseline.as_deref(), Some("4GB"));
    assert!(kb(&c.value) <= 16 * 1024 * 1024 * 2 / 5, "{}", c.value);
    assert!(kb(&c.value) > 4 * 1024 * 1024);
    assert!(c.reason.contains("90.00%"), "{}", c.reason);
    // A small database caps it at its size.
    snap.server.as_mut().unwrap().database_sizes[0].size_bytes = 5 * 1024 * MIB;
    let out = run(&snap);
    assert!(kb(out.value("shared_buffers").unwrap()) <= 5 * 1024 * 1024 + 8 * 1024);
}

#[test]
fn autovacuum_behind_on_a_large_table_gets_its_own_scale_factors() {
    use pgopt::tune::evidence::ObjectKind;
    let mut snap = clean_snapshot();
    {
        let t = table_mut(&mut snap, "orders");
        t.n_dead_tup = 2_000_000;
        t.last_autovacuum = ago(3 * 86_400);
    }
    let out = run(&snap);
    // One large table: per table, the server-wide settings stay.
    assert!(out.change("autovacuum_naptime").is_none());
    let objs: Vec<(&str, &str)> = out
        .objects
        .iter()
        .map(|o| (o.name, o.value.as_str()))
        .collect();
    // 100,000 / 5,000,000 rows = 0.02; analyze at half.
    assert_eq!(
        objs,
        vec![
            ("autovacuum_vacuum_scale_factor", "0.02"),
            ("autovacuum_analyze_scale_factor", "0.01")
        ]
    );
    let o = &out.objects[0];
    assert_eq!(o.kind, ObjectKind::Table);
    assert_eq!(
        (o.schema.as_deref(), o.object.as_str()),
        (Some("public"), "orders")
    );
    assert!(
        o.reason.contains("2000000 dead tuples") && o.reason.contains("1000000"),
        "{}",
        o.reason
    );
    assert_eq!(
        o.set_sql(),
        r#"ALTER TABLE "public"."orders" SET ("autovacuum_vacuum_scale_factor" = '0.02')"#
    );
    // Its own scale factor already low enough: nothing more.
    table_mut(&mut snap, "orders").reloptions = vec!["autovacuum_vacuum_scale_factor=0.01".into()];
    assert!(run(&snap).objects.is_empty());
    // Recently autovacuumed: silent.
    table_mut(&mut snap, "orders").reloptions.clear();
    table_mut(&mut snap, "orders").last_autovacuum = ago(3600);
    let out = run(&snap);
    assert!(out.objects.is_empty() && out.change("autovacuum_naptime").is_none());
}

#[test]
fn autovacuum_behind_on_small_tables_is_tuned_globally() {
    let mut snap = clean_snapshot();
    {
        let t = table_mut(&mut snap, "products");
        t.n_live_tup = 50_000;
        t.n_dead_tup = 40_000;
        t.last_autovacuum = ago(3 * 86_400);
    }
    let out = run(&snap);
    for (n, v) in [
        ("autovacuum_vacuum_cost_limit", "2000"),
        ("autovacuum_naptime", "15"),
        ("autovacuum_vacuum_scale_factor", "0.05"),
    ] {
        let c = out.change(n).unwrap();
        assert_eq!(c.value, v);
        assert!(
            c.reason.contains("public.products (40000 dead)"),
            "{}",
            c.reason
        );
    }
    assert!(out.objects.is_empty());
    // Autovacuum turned off on the table: a note, no setting.
    table_mut(&mut snap, "products").reloptions = vec!["autovacuum_enabled=false".into()];
    let out = run(&snap);
    assert!(out.change("autovacuum_naptime").is_none());
    let notes = out.output.notes.join("\n");
    assert!(
        notes.contains(r#"ALTER TABLE "public"."products" RESET (autovacuum_enabled)"#),
        "{notes}"
    );
}

#[test]
fn busy_autovacuum_workers_get_company() {
    let mut snap = clean_snapshot();
    for name in ["users", "orders", "order_items", "products"] {
        let t = table_mut(&mut snap, name);
        t.n_dead_tup = t.n_live_tup.max(100_000);
        t.last_autovacuum = None;
    }
    set_setting(&mut snap, "autovacuum_max_workers", "3");
    let a = snap.activity.as_mut().unwrap();
    for pid in 0..3 {
        a.sessions.push(pgopt::snapshot::Session {
            pid: 900 + pid,
            backend_type: Some("autovacuum worker".into()),
            ..Default::default()
        });
    }
    let out = run(&snap);
    let c = out.change("autovacuum_max_workers").expect("fires");
    // 4 CPUs: min(2 x 3, max(4, 3 + 1)) = 4.
    assert_eq!(c.value, "4");
    assert_eq!(c.evidence["autovacuum_workers_running"], 3);
    assert_eq!(out.value("autovacuum_vacuum_cost_limit"), Some("2666"));
    // Two of the three busy: no change.
    snap.activity.as_mut().unwrap().sessions.pop();
    assert!(run(&snap).change("autovacuum_max_workers").is_none());
}

#[test]
fn requested_checkpoints_raise_max_wal_size() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "max_wal_size", "1024");
    snap.settings.last_mut().unwrap().unit = Some("MB".into());
    set_setting(&mut snap, "checkpoint_timeout", "300");
    set_setting(&mut snap, "checkpoint_completion_target", "0.9");
    // A day: 48 timed, 240 requested, 2000 GB of WAL.
    snap.checkpoints = Some(pgopt::snapshot::Checkpoints {
        timed: 48,
        requested: 240,
        stats_reset: ago(86_400),
        wal_bytes: Some(2000 * 1024 * 1024 * 1024),
        wal_stats_reset: ago(86_400),
        ..Default::default()
    });
    // 23.7 MB/s x 300 s x 1.9 x 1.25 = 16.5 GB needed -> 17GB (PGTune's web: 4GB).
    let out = run(&snap);
    let c = out.change("max_wal_size").expect("fires");
    assert_eq!(c.rule, "checkpoints");
    assert_eq!(c.baseline.as_deref(), Some("4GB"));
    assert_eq!(c.value, "17GB");
    assert!(c.reason.contains("240 of 288 checkpoints"), "{}", c.reason);
    assert_eq!(c.evidence["checkpoints_requested"], 240);
    // A disk with 20 GB free caps it at a quarter: 5GB.
    snap.host = Some(pgopt::snapshot::HostInfo {
        cpus: 4,
        memory_bytes: 16 << 30,
        cgroup_memory_limit_bytes: None,
        data_disk: Some(pgopt::snapshot::DiskInfo {
            mount_point: "/".into(),
            total_bytes: 100 << 30,
            available_bytes: 20 << 30,
        }),
        wal_directory: None,
        wal_disk: None,
        huge_pages: None,
    });
    let c = run(&snap).change("max_wal_size").cloned().expect("fires");
    assert_eq!(c.value, "5GB");
    assert!(c.reason.contains("capped"), "{}", c.reason);
    // Mostly timed checkpoints: silent.
    snap.checkpoints = Some(pgopt::snapshot::Checkpoints {
        timed: 280,
        requested: 8,
        stats_reset: ago(86_400),
        ..Default::default()
    });
    assert!(run(&snap).change("max_wal_size").is_none());
}

#[test]
fn requested_checkpoints_within_the_baseline_are_a_note() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "max_wal_size", "1024");
    snap.settings.last_mut().unwrap().unit = Some("MB".into());
    set_setting(&mut snap, "checkpoint_timeout", "300");
    snap.checkpoints = Some(pgopt::snapshot::Checkpoints {
        timed: 48,
        requested: 240,
        stats_reset: ago(86_400),
        wal_bytes: Some(200 * 1024 * 1024 * 1024),
        wal_stats_reset: ago(86_400),
        ..Default::default()
    });
    let out = run(&snap);
    assert!(out.change("max_wal_size").is_none());
    let notes = out.output.notes.join("\n");
    assert!(notes.contains("240 of 288 checkpoints"), "{notes}");
    // Little WAL: the requested ones are not from volume.
    snap.checkpoints.as_mut().unwrap().requested = 10;
    snap.checkpoints.as_mut().unwrap().timed = 10;
    snap.checkpoints.as_mut().unwrap().wal_bytes = Some(1024 * 1024);
    let notes = run(&snap).output.notes.join("\n");
    assert!(notes.contains("log_checkpoints"), "{notes}");
}

#[test]
fn huge_pages_are_sized_from_shared_buffers() {
    let mut snap = clean_snapshot();
    let host = |total| pgopt::snapshot::HostInfo {
        cpus: 4,
        memory_bytes: 16 << 30,
        cgroup_memory_limit_bytes: None,
        data_disk: None,
        wal_directory: None,
        wal_disk: None,
        huge_pages: Some(pgopt::snapshot::HugePages {
            total,
            free: total,
            page_size_kb: 2048,
        }),
    };
    // PGTune at 4GB: shared_buffers 1GB, huge_pages off. 1GB + 5% + 64MB = 1139.2 MB
    // -> 570 pages of 2 MB.
    let small = input("4GB", Profile::Web, Storage::Ssd);
    snap.host = Some(host(600));
    let out = run_on(&snap, &small);
    let c = out.change("huge_pages").expect("fires");
    assert_eq!(c.baseline.as_deref(), Some("off"));
    assert_eq!(c.value, "try");
    assert_eq!(c.evidence["huge_pages_needed"], 570);
    // Too few: a note with the sysctl, no change.
    snap.host = Some(host(100));
    let out = run_on(&snap, &small);
    assert!(out.change("huge_pages").is_none());
    let notes = out.output.notes.join("\n");
    assert!(notes.contains("vm.nr_hugepages=570"), "{notes}");
    // The server's own shared_memory_size gives the overhead when known: 1GB + 200MB.
    set_setting(&mut snap, "shared_memory_size", "328");
    snap.settings.last_mut().unwrap().unit = Some("MB".into());
    set_setting(&mut snap, "shared_buffers", "16384");
    snap.settings.last_mut().unwrap().unit = Some("8kB".into());
    let notes = run_on(&snap, &small).output.notes.join("\n");
    assert!(notes.contains("vm.nr_hugepages=612"), "{notes}");
    // 64GB: PGTune says try; a remote server gets the count to set.
    snap.host = None;
    let out = run_on(&snap, &input("64GB", Profile::Web, Storage::Ssd));
    assert_eq!(out.value("huge_pages"), Some("try"));
    assert!(out.output.notes.join("\n").contains("vm.nr_hugepages="));
}

#[test]
fn governance_gives_application_roles_a_statement_timeout() {
    use pgopt::tune::evidence::ObjectKind;
    let mut snap = clean_snapshot();
    let mut app = role("acgs_app", false, None);
    let mut timed = role("reporting", false, None);
    timed.config = vec!["statement_timeout=5min".into()];
    let mut repl = role("replicator", false, None);
    repl.replication = true;
    let mut nologin = role("owner", false, None);
    nologin.can_login = false;
    app.config = vec!["search_path=acgs".into()];
    snap.roles = Some(vec![
        bootstrap_role(),
        role("admin", true, None),
        app,
        timed,
        repl,
        nologin,
    ]);
    let i = input("16GB", Profile::Governance, Storage::Ssd);
    let out = run_on(&snap, &i);
    let roles: Vec<(&str, &str)> = out
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Role)
        .map(|o| (o.object.as_str(), o.value.as_str()))
        .collect();
    assert_eq!(roles, vec![("acgs_app", "30s")]);
    assert_eq!(
        out.objects[0].set_sql(),
        r#"ALTER ROLE "acgs_app" SET "statement_timeout" = '30s'"#
    );
    // Not in the web profile.
    assert!(run(&snap).objects.is_empty());
}

#[test]
fn governance_profile_adds_its_settings() {
    let i = input("16GB", Profile::Governance, Storage::Ssd);
    let out = run_on(&clean_snapshot(), &i);
    for (n, v) in [
        ("synchronous_commit", "on"),
        ("wal_level", "replica"),
        ("max_wal_senders", "10"),
        ("idle_in_transaction_session_timeout", "60000"),
    ] {
        assert_eq!(out.value(n), Some(v), "{n}");
        assert_eq!(out.change(n).unwrap().rule, "governance");
    }
    assert!(run(&clean_snapshot()).change("wal_level").is_none());
}

#[test]
fn library_lists_are_quoted_per_element_for_alter_system() {
    use pgopt::plan::setting_value_sql as set_value_sql;
    assert_eq!(
        set_value_sql(
            "shared_preload_libraries",
            "auto_explain,pg_stat_statements"
        ),
        "'auto_explain', 'pg_stat_statements'"
    );
    assert_eq!(
        set_value_sql("shared_preload_libraries", "pg_stat_statements"),
        "'pg_stat_statements'"
    );
    assert_eq!(set_value_sql("shared_preload_libraries", ""), "''");
    assert_eq!(set_value_sql("work_mem", "16MB"), "'16MB'");
}

#[test]
fn one_open_connection_is_named_as_a_momentary_count_not_a_peak() {
    let mut snap = clean_snapshot();
    snap.activity.as_mut().unwrap().total_connections = 1;
    let note = run(&snap).output.notes.join("\n");
    assert!(
        note.contains(
            "the 1 connection open when the snapshot was taken (a single count, not a peak)"
        ),
        "{note}"
    );
    assert!(
        !note.contains("peak x2") && !note.contains("connections seen"),
        "{note}"
    );
    assert!(note.contains("planned for 20 connections x 2"), "{note}");
}

#[test]
fn no_temp_file_rate_from_a_window_below_its_floor() {
    let mut snap = clean_snapshot();
    {
        let db = db_mut(&mut snap, "app");
        db.temp_files = 9;
        db.temp_bytes = 9 * 64 * MIB;
        db.stats_reset = ago(60); // one minute: 9 files would be "12960/day"
    }
    for s in &mut snap.statements.as_mut().unwrap().top {
        s.temp_blks_written = 0;
    }
    let out = run(&snap);
    assert!(out.change("work_mem").is_none(), "{:?}", out.changes);
    // Statements seen spilling are evidence without a rate; the reason says why no rate.
    snap.statements.as_mut().unwrap().top[0].temp_blks_written = 50_000;
    let out = run(&snap);
    let c = out
        .change("work_mem")
        .expect("spilling statements raise work_mem");
    assert!(
        c.reason.contains("9 temp files")
            && c.reason
                .contains("the statistics cover only 60 s, too short for a daily rate")
            && c.reason.contains("1 statement wrote"),
        "{}",
        c.reason
    );
    assert!(!c.reason.contains("/day"), "{}", c.reason);
    assert_eq!(c.evidence["temp_files_per_day"], serde_json::Value::Null);
}

#[test]
fn no_wal_rate_from_a_checkpoint_window_below_its_floor() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "max_wal_size", "1024");
    snap.settings.last_mut().unwrap().unit = Some("MB".into());
    set_setting(&mut snap, "checkpoint_timeout", "300");
    snap.checkpoints = Some(pgopt::snapshot::Checkpoints {
        timed: 1,
        requested: 5,
        stats_reset: ago(20),
        wal_bytes: Some(1024 * MIB),
        wal_stats_reset: ago(20),
        ..Default::default()
    });
    let out = run(&snap);
    assert!(out.change("max_wal_size").is_none(), "{:?}", out.changes);
    let note = out.output.notes.join("\n");
    assert!(
        note.contains("5 of 6 checkpoints were requested, but the checkpoint statistics cover 20 s: too short to state a WAL rate"),
        "{note}"
    );
    assert!(!note.contains("MB/s"), "{note}");
}

#[test]
fn wal_compression_lz4_follows_what_the_server_accepted() {
    let mut snap = clean_snapshot();
    let lz4_warning = |o: &PgoptOutput| {
        o.output
            .warnings
            .iter()
            .any(|w| w.starts_with("wal_compression = lz4 needs"))
    };
    // Not tried (the role may not set it): PGTune's value and its warning stay.
    let out = run(&snap);
    assert_eq!(out.value("wal_compression"), Some("lz4"));
    assert!(lz4_warning(&out), "{:?}", out.output.warnings);
    // Accepted: no warning, a note saying it was checked.
    snap.wal_compression_lz4 = Some(true);
    let out = run(&snap);
    assert_eq!(out.value("wal_compression"), Some("lz4"));
    assert!(!lz4_warning(&out), "{:?}", out.output.warnings);
    assert!(out
        .output
        .notes
        .iter()
        .any(|n| n.contains("this server accepts it")));
    // Rejected: pglz, and why.
    snap.wal_compression_lz4 = Some(false);
    let out = run(&snap);
    assert_eq!(out.value("wal_compression"), Some("pglz"));
    assert!(!lz4_warning(&out));
    assert!(
        out.output
            .warnings
            .iter()
            .any(|w| w.contains("this server rejects wal_compression = lz4")),
        "{:?}",
        out.output.warnings
    );
}
