//! `pgopt maintain`'s advice on snapshots built in code (no server): each task on its planted
//! case and silent on the near miss; freezes first by how close they are to wraparound;
//! `--tables`/`--exclude`; and never a task that contradicts an analyze finding or the tune
//! setting on the same object.

mod common;

use common::*;
use pgopt::advise::{advise, Finding, Severity, Thresholds};
use pgopt::maintain::{self, urgency::Level, Advice, Kind, Options};
use pgopt::snapshot::{Bloat, BloatFigure, RelationBloat, Snapshot};

fn maintain_with(snap: &Snapshot, opts: &Options) -> (Vec<Finding>, Advice) {
    let findings = advise(snap, &opts.thresholds);
    let advice = maintain::advise(snap, &findings, opts);
    assert_no_contradiction(snap, &findings, &advice, &opts.thresholds);
    (findings, advice)
}

fn maintain(snap: &Snapshot) -> Advice {
    maintain_with(snap, &Options::default()).1
}

/// The tasks that read or rebuild something (not the autovacuum settings).
fn work(advice: &Advice) -> Vec<&maintain::Task> {
    advice
        .tasks
        .iter()
        .filter(|t| t.kind != Kind::Autovacuum)
        .collect()
}

fn sql(advice: &Advice) -> String {
    maintain::plan(advice).script()
}

/// Every task's statements are the fix an analyze finding on the same object gives (or,
/// for autovacuum settings, the values `pgopt tune` advises); nothing is VACUUM FULL.
fn assert_no_contradiction(
    snap: &Snapshot,
    findings: &[Finding],
    advice: &Advice,
    th: &Thresholds,
) {
    let input = pgopt::tune::TuneInput::validate(&pgopt::tune::RawInput {
        memory: Some("16GB".into()),
        cpus: Some(8),
        ..pgopt::tune::RawInput::default()
    })
    .unwrap();
    let tune = pgopt::tune::advise(snap, &input, th);
    let objects = &tune.pgopt.objects;
    for t in &advice.tasks {
        for s in &t.steps {
            let text = s.display_sql();
            assert!(
                !text.contains("FULL"),
                "maintain never runs VACUUM FULL: {text}"
            );
            if t.kind == Kind::Autovacuum {
                let pgopt::plan::Action::SetObject { name, value, .. } = &s.action else {
                    panic!("an autovacuum task sets table options: {s:?}");
                };
                assert!(
                    objects.iter().any(|o| o.name == name.as_str()
                        && Some(&o.value) == value.as_ref()
                        && t.table.ends_with(&format!(".{}", o.object))),
                    "tune advises the same {name} for {}: {:?}",
                    t.table,
                    objects
                );
                continue;
            }
            let about_it = findings.iter().any(|f| {
                f.fix.contains(s)
                    && (f.object == t.object || f.object == t.table || t.also.contains(&f.rule))
            });
            assert!(about_it, "no analyze finding gives {text} for {}", t.object);
        }
    }
}

fn with_bloat(indexes: Vec<RelationBloat>, tables: Vec<RelationBloat>) -> Snapshot {
    let mut snap = clean_snapshot();
    snap.bloat = Some(Bloat {
        tables,
        indexes,
        block_size: 8192,
        measure_notes: Vec::new(),
    });
    snap
}

fn bloated(table: &str, index: Option<&str>, size: i64, ratio: f64) -> RelationBloat {
    RelationBloat {
        oid: 0,
        schema: "public".into(),
        table: table.into(),
        index: index.map(str::to_string),
        size_bytes: size,
        fillfactor: if index.is_some() { 90 } else { 100 },
        estimate: Some(BloatFigure {
            wasted_bytes: (size as f64 * ratio) as i64,
            wasted_ratio: ratio,
        }),
        untrusted: None,
        measured: None,
    }
}

#[test]
fn clean_snapshot_needs_no_maintenance() {
    let advice = maintain(&clean_snapshot());
    assert!(advice.tasks.is_empty(), "{advice:#?}");
    let text = pgopt::report::maintain::table(&advice);
    assert!(text.contains("nothing to do"), "{text}");
}

#[test]
fn dead_tuples_past_the_threshold_are_vacuumed_and_a_recent_vacuum_is_a_near_miss() {
    let mut snap = clean_snapshot();
    let t = table_mut(&mut snap, "orders");
    t.n_dead_tup = 2_000_000;
    t.last_autovacuum = ago(3 * 86_400);
    let advice = maintain(&snap);
    // The vacuum, then (a large table falling behind) the settings tune advises for it.
    let kinds: Vec<Kind> = advice.tasks.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, vec![Kind::Vacuum, Kind::Autovacuum], "{advice:#?}");
    let task = &advice.tasks[0];
    assert_eq!(task.object, "public.orders");
    assert!(
        task.reason.contains("2000000 dead tuples"),
        "{}",
        task.reason
    );
    assert!(sql(&advice).starts_with("VACUUM (ANALYZE) \"public\".\"orders\";\nALTER TABLE"));
    // Vacuumed an hour ago: autovacuum is on it, nothing to do.
    table_mut(&mut snap, "orders").last_autovacuum = ago(3600);
    assert!(maintain(&snap).tasks.is_empty());
}

#[test]
fn never_analyzed_table_with_rows_is_analyzed_and_folded_into_its_vacuum() {
    let mut snap = clean_snapshot();
    let t = table_mut(&mut snap, "users");
    t.last_autoanalyze = None;
    let advice = maintain(&snap);
    assert_eq!(advice.tasks.len(), 1, "{advice:#?}");
    assert_eq!(advice.tasks[0].kind, Kind::Analyze);
    assert_eq!(sql(&advice), r#"ANALYZE "public"."users";"#);
    assert!(advice.tasks[0].reason.contains("never been analyzed"));
    // Vacuumed with ANALYZE anyway: one VACUUM (ANALYZE), naming the stale statistics too.
    let t = table_mut(&mut snap, "users");
    t.n_dead_tup = 500_000;
    t.last_autovacuum = None;
    let advice = maintain(&snap);
    assert_eq!(work(&advice).len(), 1, "{advice:#?}");
    assert_eq!(advice.tasks[0].kind, Kind::Vacuum);
    assert_eq!(advice.tasks[0].also, vec!["stale_statistics".to_string()]);
    // Statistics a little behind (under 2× the autoanalyze threshold): nothing.
    let mut near = clean_snapshot();
    table_mut(&mut near, "users").n_mod_since_analyze = 150_000;
    assert!(maintain(&near).tasks.is_empty());
}

#[test]
fn bulk_loaded_table_is_vacuumed_for_its_visibility_map_and_a_small_load_is_a_near_miss() {
    let mut snap = clean_snapshot();
    let t = table_mut(&mut snap, "order_items");
    t.n_ins_since_vacuum = 6_000_000; // over 2 × (1000 + 0.2 × 12 M)
    t.last_autovacuum = ago(2 * 86_400);
    let findings = advise(&snap, &Thresholds::default());
    assert_eq!(
        of_rule(&findings, "vacuum_after_inserts").len(),
        1,
        "{findings:#?}"
    );
    let advice = maintain(&snap);
    assert_eq!(advice.tasks.len(), 1, "{advice:#?}");
    assert_eq!(advice.tasks[0].kind, Kind::Vacuum);
    assert_eq!(advice.tasks[0].rule, "vacuum_after_inserts");
    assert!(advice.tasks[0].reason.contains("all-visible"));
    // 4 M inserted: under twice the insert threshold.
    table_mut(&mut snap, "order_items").n_ins_since_vacuum = 4_000_000;
    assert!(maintain(&snap).tasks.is_empty());
}

#[test]
fn wraparound_freezes_come_first_closest_to_the_limit_first() {
    let mut snap = clean_snapshot();
    set_setting(&mut snap, "vacuum_failsafe_age", "1600000000");
    table_mut(&mut snap, "products").frozenxid_age = 1_700_000_000; // small, past the failsafe
    table_mut(&mut snap, "orders").frozenxid_age = 190_000_000; // big, 95 % of max age
    let t = table_mut(&mut snap, "order_items");
    t.n_dead_tup = 5_000_000;
    t.last_autovacuum = ago(3 * 86_400);
    let advice = maintain(&snap);
    let order: Vec<(Kind, &str)> = advice
        .tasks
        .iter()
        .map(|t| (t.kind, t.object.as_str()))
        .collect();
    assert_eq!(
        order,
        vec![
            (Kind::Freeze, "public.products"),
            (Kind::Freeze, "public.orders"),
            (Kind::Vacuum, "public.order_items"),
            (Kind::Autovacuum, "public.order_items"),
        ],
        "{advice:#?}"
    );
    let u = advice.tasks[0].urgency.as_ref().unwrap();
    assert_eq!(u.level, Level::Failsafe);
    assert!(u.text.contains("vacuum_failsafe_age"), "{}", u.text);
    assert_eq!(
        advice.tasks[1].urgency.as_ref().unwrap().level,
        Level::Approaching
    );
    assert!(sql(&advice).starts_with(r#"VACUUM (FREEZE, VERBOSE) "public"."products";"#));
    // Under 90 % of autovacuum_freeze_max_age: a near miss.
    let mut near = clean_snapshot();
    table_mut(&mut near, "orders").frozenxid_age = 170_000_000;
    assert!(maintain(&near).tasks.is_empty());
    // A database past the warning age with no table to freeze: a note with analyze's step.
    let mut db = clean_snapshot();
    db_mut(&mut db, "app").frozenxid_age = 190_000_000;
    let advice = maintain(&db);
    assert!(advice.tasks.is_empty(), "{advice:#?}");
    assert_eq!(advice.notes.len(), 1, "{advice:#?}");
    assert!(
        advice.notes[0].starts_with("database app: "),
        "{}",
        advice.notes[0]
    );
    assert!(advice.notes[0].contains("FREEZE"), "{}", advice.notes[0]);
}

#[test]
fn bloated_btree_index_is_reindexed_concurrently_and_a_small_waste_is_a_near_miss() {
    let snap = with_bloat(
        vec![bloated(
            "orders",
            Some("orders_user_id_idx"),
            200 * MIB,
            0.5,
        )],
        Vec::new(),
    );
    let advice = maintain(&snap);
    assert_eq!(advice.tasks.len(), 1, "{advice:#?}");
    let t = &advice.tasks[0];
    assert_eq!(
        (t.kind, t.object.as_str(), t.table.as_str()),
        (Kind::Reindex, "public.orders_user_id_idx", "public.orders")
    );
    assert_eq!(
        sql(&advice),
        r#"REINDEX INDEX CONCURRENTLY "public"."orders_user_id_idx";"#
    );
    let cost = pgopt::report::maintain::cost(t);
    assert!(cost.contains("reads and writes go on"), "{cost}");
    // 40 MB wasted: under the 50 MB floor.
    let near = with_bloat(
        vec![bloated("orders", Some("orders_user_id_idx"), 80 * MIB, 0.5)],
        Vec::new(),
    );
    assert!(maintain(&near).tasks.is_empty());
}

#[test]
fn a_bloated_index_on_a_table_with_dead_tuples_gets_the_vacuum_not_a_rebuild() {
    let mut snap = with_bloat(
        vec![bloated(
            "orders",
            Some("orders_user_id_idx"),
            200 * MIB,
            0.5,
        )],
        Vec::new(),
    );
    let t = table_mut(&mut snap, "orders");
    t.n_dead_tup = 3_000_000;
    t.last_autovacuum = ago(3 * 86_400);
    let advice = maintain(&snap);
    assert_eq!(work(&advice).len(), 1, "{advice:#?}");
    assert_eq!(advice.tasks[0].kind, Kind::Vacuum);
    assert_eq!(advice.tasks[0].object, "public.orders");
    assert!(!sql(&advice).contains("REINDEX"));
}

#[test]
fn a_table_to_rewrite_is_a_note_never_a_vacuum_full() {
    let snap = with_bloat(Vec::new(), vec![bloated("orders", None, 400 * MIB, 0.6)]);
    let advice = maintain(&snap);
    assert!(advice.tasks.is_empty(), "{advice:#?}");
    assert_eq!(advice.notes.len(), 1);
    assert!(
        advice.notes[0].contains("not run by maintain"),
        "{}",
        advice.notes[0]
    );
}

#[test]
fn large_busy_tables_get_the_autovacuum_settings_tune_advises() {
    let mut snap = clean_snapshot();
    let t = table_mut(&mut snap, "order_items");
    t.n_dead_tup = 3_000_000;
    t.last_autovacuum = ago(3 * 86_400);
    let advice = maintain(&snap);
    let settings: Vec<_> = advice
        .tasks
        .iter()
        .filter(|t| t.kind == Kind::Autovacuum)
        .collect();
    assert_eq!(settings.len(), 1, "{advice:#?}");
    let script = pgopt::plan::script(&settings[0].steps);
    assert!(
        script.contains(
            r#"ALTER TABLE "public"."order_items" SET ("autovacuum_vacuum_scale_factor" = '0.008')"#
        ),
        "{script}"
    );
    assert!(
        script.contains("autovacuum_analyze_scale_factor"),
        "{script}"
    );
    // A small table falling behind: no table settings (tune changes the global ones).
    let mut small = clean_snapshot();
    let t = table_mut(&mut small, "products");
    t.n_dead_tup = 15_000;
    t.last_autovacuum = ago(3 * 86_400);
    assert!(maintain(&small)
        .tasks
        .iter()
        .all(|t| t.kind != Kind::Autovacuum));
}

#[test]
fn tables_and_exclude_take_names_and_globs() {
    let mut snap = clean_snapshot();
    for name in ["orders", "users"] {
        let t = table_mut(&mut snap, name);
        t.n_dead_tup = 3_000_000;
        t.last_autovacuum = ago(3 * 86_400);
    }
    let objects = |opts: Options| -> Vec<String> {
        maintain_with(&snap, &opts)
            .1
            .tasks
            .iter()
            .filter(|t| t.kind == Kind::Vacuum)
            .map(|t| t.object.clone())
            .collect()
    };
    assert_eq!(objects(Options::default()).len(), 2);
    assert_eq!(
        objects(Options {
            tables: vec!["ord*".into()],
            ..Options::default()
        }),
        vec!["public.orders".to_string()]
    );
    assert_eq!(
        objects(Options {
            exclude: vec!["public.orders".into()],
            ..Options::default()
        }),
        vec!["public.users".to_string()]
    );
    assert!(objects(Options {
        tables: vec!["audit_*".into()],
        ..Options::default()
    })
    .is_empty());
}

#[test]
fn severity_orders_the_rest_and_the_json_is_versioned() {
    let mut snap = clean_snapshot();
    let t = table_mut(&mut snap, "users");
    t.n_dead_tup = 3_000_000;
    t.last_autovacuum = ago(3 * 86_400);
    table_mut(&mut snap, "orders").last_autoanalyze = None;
    let advice = maintain(&snap);
    assert_eq!(advice.tasks[0].kind, Kind::Vacuum);
    assert!(advice.tasks.iter().all(|t| t.severity >= Severity::Info));
    let v = pgopt::report::maintain::json(&advice, None);
    assert_eq!(v["schema"], "pgopt.maintain/1");
    assert_eq!(v["tasks"][0]["kind"], "vacuum");
    assert!(v["tasks"][0]["sql"].as_str().unwrap().starts_with("VACUUM"));
}
