//! `--method pgopt`: each evidence rule fires on a planted condition, with its reason and
//! evidence, and stays silent on the healthy snapshot; the bounds hold.

mod common;

use common::*;
use pgopt::snapshot::Snapshot;
use pgopt::tune::evidence::{pgopt_method, PgoptOutput};
use pgopt::tune::pgtune::pgtune;
use pgopt::tune::{Profile, RawInput, Storage, TuneInput};

const OBSERVABILITY: [&str; 6] = [
    "track_io_timing",
    "log_min_duration_statement",
    "log_lock_waits",
    "log_autovacuum_min_duration",
    "log_temp_files",
    "shared_preload_libraries",
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
    assert_eq!(out.output.settings.len(), base.settings.len() + 6);
    assert_eq!(
        out.value("shared_preload_libraries"),
        Some("pg_stat_statements")
    );
    assert_eq!(out.value("log_min_duration_statement"), Some("1000"));
    assert!(out.output.notes.is_empty(), "{:?}", out.output.notes);
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
        Some("pg_stat_statements")
    );
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
fn autovacuum_falling_behind_is_tuned() {
    let mut snap = clean_snapshot();
    {
        let t = table_mut(&mut snap, "orders");
        t.n_dead_tup = 2_000_000;
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
            c.reason.contains("public.orders (2000000 dead)"),
            "{}",
            c.reason
        );
    }
    // Recently autovacuumed: silent.
    table_mut(&mut snap, "orders").last_autovacuum = ago(3600);
    assert!(run(&snap).change("autovacuum_naptime").is_none());
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
    use pgopt::tune::apply::set_value_sql;
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
