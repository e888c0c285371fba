//! Snapshots built in code for the advisor tests: a realistic, healthy server on which no rule
//! fires. Tests plant one problem at a time on a copy of it.

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use pgopt::advise::{advise, Finding, Thresholds};
use pgopt::snapshot::*;

pub const MIB: i64 = 1024 * 1024;

pub fn collected_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

pub fn ago(seconds: i64) -> Option<DateTime<Utc>> {
    Some(collected_at() - Duration::seconds(seconds))
}

pub fn setting(name: &str, value: &str, unit: Option<&str>, vartype: &str) -> Setting {
    Setting {
        name: name.to_string(),
        setting: value.to_string(),
        unit: unit.map(str::to_string),
        vartype: vartype.to_string(),
        source: "configuration file".to_string(),
        context: "sighup".to_string(),
        boot_val: None,
        reset_val: Some(value.to_string()),
        pending_restart: false,
    }
}

pub fn table(schema: &str, name: &str, heap_bytes: i64, rows: f64) -> Table {
    Table {
        oid: 0,
        schema: schema.into(),
        name: name.into(),
        kind: "r".into(),
        locked: false,
        size_estimated: false,
        heap_bytes,
        indexes_bytes: heap_bytes / 4,
        toast_bytes: 0,
        total_bytes: heap_bytes + heap_bytes / 4,
        reltuples: rows,
        relpages: heap_bytes / 8192,
        seq_scan: 12,
        seq_tup_read: 12 * rows as i64,
        idx_scan: Some(5_000_000),
        idx_tup_fetch: Some(6_000_000),
        n_live_tup: rows as i64,
        n_dead_tup: (rows * 0.01) as i64,
        n_mod_since_analyze: (rows * 0.02) as i64,
        n_ins_since_vacuum: (rows * 0.01) as i64,
        last_vacuum: None,
        last_autovacuum: ago(2 * 3600),
        last_analyze: None,
        last_autoanalyze: ago(3600),
        frozenxid_age: 40_000_000,
        minmxid_age: 20_000,
        reloptions: Vec::new(),
    }
}

/// A btree index on `columns` (given with their attnums).
pub fn index(schema: &str, table: &str, name: &str, columns: &[(&str, i16)]) -> Index {
    let cols: Vec<String> = columns.iter().map(|c| c.0.to_string()).collect();
    Index {
        oid: 0,
        locked: false,
        size_estimated: false,
        schema: schema.into(),
        table: table.into(),
        name: name.into(),
        definition: format!(
            "CREATE INDEX {name} ON {schema}.{table} USING btree ({})",
            cols.join(", ")
        )
        .into(),
        access_method: "btree".into(),
        key_columns: cols.iter().map(|c| c.into()).collect(),
        key_attnums: columns.iter().map(|c| c.1).collect(),
        include_columns: Default::default(),
        opclasses: columns.iter().map(|_| "int8_ops".into()).collect(),
        collations: columns.iter().map(|_| 0).collect(),
        expressions: None,
        predicate: None,
        size_bytes: 20 * MIB,
        idx_scan: 100_000,
        idx_tup_read: 200_000,
        idx_tup_fetch: 150_000,
        is_valid: true,
        is_ready: true,
        is_live: true,
        is_unique: false,
        is_primary: false,
        is_exclusion: false,
        is_replica_identity: false,
        constraint_name: None,
    }
}

pub fn primary(schema: &str, table: &str, name: &str, columns: &[(&str, i16)]) -> Index {
    let mut i = index(schema, table, name, columns);
    i.definition = i
        .definition
        .replace("CREATE INDEX", "CREATE UNIQUE INDEX")
        .into();
    i.is_unique = true;
    i.is_primary = true;
    i.constraint_name = Some(name.into());
    i
}

pub fn fk(
    schema: &str,
    table: &str,
    name: &str,
    columns: &[(&str, i16)],
    ref_table: &str,
) -> ForeignKey {
    ForeignKey {
        schema: schema.to_string(),
        table: table.to_string(),
        name: name.to_string(),
        columns: columns.iter().map(|c| c.0.to_string()).collect(),
        attnums: columns.iter().map(|c| c.1).collect(),
        ref_schema: schema.to_string(),
        ref_table: ref_table.to_string(),
        ref_columns: vec!["id".to_string()],
    }
}

pub fn session(pid: i32, state: &str) -> Session {
    Session {
        pid,
        database: Some("app".to_string()),
        user: Some("app_user".to_string()),
        application_name: Some("web".to_string()),
        client_addr: Some("10.0.0.5".to_string()),
        backend_type: Some("client backend".to_string()),
        state: Some(state.to_string()),
        wait_event_type: None,
        wait_event: None,
        xact_age_seconds: Some(0.4),
        query_age_seconds: Some(0.3),
        state_age_seconds: Some(0.3),
        backend_xmin_age: Some(12),
        backend_xid_age: None,
        blocked_by: Vec::new(),
        query: Some("SELECT * FROM orders WHERE id = $1".to_string()),
    }
}

pub fn statement(queryid: i64, total_ms: f64, calls: i64) -> Statement {
    Statement {
        queryid,
        user: Some("app_user".to_string()),
        database: Some("app".to_string()),
        query: format!("SELECT /* {queryid} */ * FROM orders WHERE user_id = $1"),
        calls,
        total_exec_time_ms: total_ms,
        mean_exec_time_ms: total_ms / calls as f64,
        stddev_exec_time_ms: 0.5,
        rows: calls,
        shared_blks_hit: calls * 10,
        shared_blks_read: calls / 100,
        temp_blks_read: 0,
        temp_blks_written: 0,
    }
}

fn section(name: &str) -> SectionStatus {
    SectionStatus {
        section: name.to_string(),
        state: SectionState::Collected,
        reason: None,
        next_step: None,
        elapsed_ms: 3.0,
    }
}

/// A healthy PostgreSQL 16 server: autovacuum defaults, pg_stat_statements loaded and created,
/// foreign keys indexed, caches warm. `advise` finds nothing on it.
pub fn clean_snapshot() -> Snapshot {
    let target = TargetInfo {
        host: "db.example.com".to_string(),
        port: 5432,
        database: "app".to_string(),
        user: "pgopt".to_string(),
    };
    let mut snap = Snapshot::new(target, collected_at());
    snap.pgopt_version = "0.1.0".to_string();
    snap.server = Some(ServerInfo {
        version: "PostgreSQL 16.4 on x86_64-pc-linux-gnu".to_string(),
        version_num: 160004,
        started_at: collected_at() - Duration::days(30),
        uptime_seconds: 30.0 * 86_400.0,
        in_recovery: false,
        data_directory: None,
        database_sizes: vec![
            DatabaseSize {
                name: "app".to_string(),
                size_bytes: 900 * MIB,
            },
            DatabaseSize {
                name: "postgres".to_string(),
                size_bytes: 8 * MIB,
            },
        ],
    });
    snap.settings = vec![
        setting("autovacuum", "on", None, "bool"),
        setting("autovacuum_vacuum_threshold", "50", None, "integer"),
        setting("autovacuum_vacuum_scale_factor", "0.2", None, "real"),
        setting("autovacuum_analyze_threshold", "50", None, "integer"),
        setting("autovacuum_analyze_scale_factor", "0.1", None, "real"),
        setting("autovacuum_freeze_max_age", "200000000", None, "integer"),
        setting(
            "autovacuum_multixact_freeze_max_age",
            "400000000",
            None,
            "integer",
        ),
        setting("max_connections", "100", None, "integer"),
        setting("superuser_reserved_connections", "3", None, "integer"),
        setting("reserved_connections", "0", None, "integer"),
        setting(
            "shared_preload_libraries",
            "pg_stat_statements",
            None,
            "string",
        ),
        setting("shared_buffers", "131072", Some("8kB"), "integer"),
        setting("work_mem", "4096", Some("kB"), "integer"),
        setting("block_size", "8192", None, "integer"),
    ];
    snap.databases = vec![
        DatabaseStats {
            name: "app".to_string(),
            numbackends: 20,
            xact_commit: 50_000_000,
            xact_rollback: 2_000,
            blks_read: 150_000,
            blks_hit: 99_850_000,
            temp_files: 40,
            temp_bytes: 100 * MIB,
            deadlocks: 0,
            conflicts: 0,
            stats_reset: Some(collected_at() - Duration::days(30)),
            frozenxid_age: 60_000_000,
            minmxid_age: 30_000,
            allow_connections: true,
        },
        DatabaseStats {
            name: "postgres".to_string(),
            numbackends: 1,
            xact_commit: 10_000,
            blks_read: 100,
            blks_hit: 50_000,
            frozenxid_age: 60_000_000,
            minmxid_age: 30_000,
            allow_connections: true,
            ..Default::default()
        },
    ];
    let mut idle = session(102, "idle in transaction");
    idle.state_age_seconds = Some(2.0);
    idle.xact_age_seconds = Some(2.5);
    snap.activity = Some(Activity {
        max_connections: 100,
        superuser_reserved_connections: 3,
        total_connections: 24,
        by_state: vec![
            StateCount {
                state: "idle".to_string(),
                count: 21,
                ..Default::default()
            },
            StateCount {
                state: "active".to_string(),
                count: 2,
                ..Default::default()
            },
            StateCount {
                state: "idle in transaction".to_string(),
                count: 1,
                ..Default::default()
            },
        ],
        sessions: vec![session(101, "active"), idle],
    });

    let mut products = table("public", "products", 2 * MIB, 20_000.0);
    products.seq_scan = 90_000; // small tables are fine to scan
    products.seq_tup_read = 90_000 * 20_000;
    products.idx_scan = Some(1_000);
    snap.tables = vec![
        table("public", "users", 120 * MIB, 1_000_000.0),
        table("public", "orders", 400 * MIB, 5_000_000.0),
        table("public", "order_items", 300 * MIB, 12_000_000.0),
        products,
    ];

    let mut email = index("public", "users", "users_email_key", &[("email", 3)]);
    email.definition =
        "CREATE UNIQUE INDEX users_email_key ON public.users USING btree (email)".into();
    email.opclasses = ["text_ops".into()].into_iter().collect();
    email.collations = [100].into_iter().collect();
    email.is_unique = true;
    email.constraint_name = Some("users_email_key".into());
    email.idx_scan = 0; // unique: enforces something even when never scanned
    let mut tiny = index("public", "products", "products_sku_idx", &[("sku", 4)]);
    tiny.size_bytes = 16 * 1024;
    tiny.idx_scan = 0; // too small to matter
    snap.indexes = vec![
        primary("public", "users", "users_pkey", &[("id", 1)]),
        email,
        primary("public", "orders", "orders_pkey", &[("id", 1)]),
        index("public", "orders", "orders_user_id_idx", &[("user_id", 2)]),
        index(
            "public",
            "orders",
            "orders_created_at_idx",
            &[("created_at", 4)],
        ),
        primary(
            "public",
            "order_items",
            "order_items_pkey",
            &[("order_id", 1), ("line_no", 2)],
        ),
        index(
            "public",
            "order_items",
            "order_items_product_id_idx",
            &[("product_id", 3)],
        ),
        primary("public", "products", "products_pkey", &[("id", 1)]),
        tiny,
    ];
    snap.foreign_keys = vec![
        fk(
            "public",
            "orders",
            "orders_user_id_fkey",
            &[("user_id", 2)],
            "users",
        ),
        fk(
            "public",
            "order_items",
            "order_items_order_id_fkey",
            &[("order_id", 1)],
            "orders",
        ),
        fk(
            "public",
            "order_items",
            "order_items_product_id_fkey",
            &[("product_id", 3)],
            "products",
        ),
    ];
    snap.sequences = vec![
        Sequence {
            schema: "public".to_string(),
            name: "users_id_seq".to_string(),
            data_type: "bigint".to_string(),
            last_value: Some(1_000_000),
            min_value: 1,
            max_value: i64::MAX,
            increment_by: 1,
            cycle: false,
            column: Some(SequenceColumn {
                schema: "public".to_string(),
                table: "users".to_string(),
                column: "id".to_string(),
                data_type: "bigint".to_string(),
            }),
        },
        Sequence {
            schema: "public".to_string(),
            name: "orders_id_seq".to_string(),
            data_type: "integer".to_string(),
            last_value: Some(5_000_000),
            min_value: 1,
            max_value: i32::MAX as i64,
            increment_by: 1,
            cycle: false,
            column: Some(SequenceColumn {
                schema: "public".to_string(),
                table: "orders".to_string(),
                column: "id".to_string(),
                data_type: "integer".to_string(),
            }),
        },
        Sequence {
            schema: "public".to_string(),
            name: "unused_seq".to_string(),
            data_type: "bigint".to_string(),
            last_value: None,
            min_value: 1,
            max_value: i64::MAX,
            increment_by: 1,
            cycle: false,
            column: None,
        },
    ];
    snap.statements = Some(Statements {
        extension_version: "1.10".to_string(),
        tracked: 800,
        total_exec_time_ms: 2_000_000.0,
        top: vec![
            statement(1001, 150_000.0, 300_000),
            statement(1002, 120_000.0, 2_000_000),
            statement(1003, 90_000.0, 9_000),
        ],
        stats_reset: Some(collected_at() - Duration::days(30)),
    });
    snap.replication = Some(Replication {
        in_recovery: false,
        senders: Vec::new(),
        slots: vec![ReplicationSlot {
            name: "standby1".to_string(),
            slot_type: "physical".to_string(),
            active: true,
            xmin_age: Some(40),
            catalog_xmin_age: None,
            retained_bytes: Some(16 * MIB),
            ..Default::default()
        }],
        standby: None,
    });
    snap.extensions = Extensions {
        installed: vec![
            InstalledExtension {
                name: "plpgsql".to_string(),
                version: "1.0".to_string(),
                schema: "pg_catalog".to_string(),
            },
            InstalledExtension {
                name: "pg_stat_statements".to_string(),
                version: "1.10".to_string(),
                schema: "public".to_string(),
            },
        ],
        available: vec!["pg_stat_statements".to_string(), "pgstattuple".to_string()],
        preloaded: vec!["pg_stat_statements".to_string()],
    };
    snap.privileges = Some(Privileges {
        role: "pgopt".to_string(),
        is_superuser: false,
        pg_monitor: true,
        pg_read_all_stats: true,
        pg_read_all_settings: true,
    });
    snap.sections = [
        "server",
        "settings",
        "databases",
        "activity",
        "tables",
        "indexes",
        "foreign_keys",
        "sequences",
        "statements",
        "replication",
        "extensions",
        "privileges",
    ]
    .iter()
    .map(|s| section(s))
    .collect();
    snap
}

/// One parsed pg_hba.conf line; `address` may be CIDR (`10.0.0.0/8`), split as the server does.
pub fn hba_rule(line: i32, conn_type: &str, address: Option<&str>, method: &str) -> HbaRule {
    let (address, netmask) = match address {
        Some(a) => match a.split_once('/') {
            Some((ip, len)) => {
                let len: u32 = len.parse().unwrap();
                let mask = if ip.contains(':') {
                    std::net::IpAddr::from(std::net::Ipv6Addr::from(
                        u128::MAX.checked_shl(128 - len).unwrap_or(0),
                    ))
                } else {
                    std::net::IpAddr::from(std::net::Ipv4Addr::from(
                        u32::MAX.checked_shl(32 - len).unwrap_or(0),
                    ))
                };
                (Some(ip.to_string()), Some(mask.to_string()))
            }
            None => (Some(a.to_string()), None),
        },
        None => (None, None),
    };
    HbaRule {
        line_number: line,
        conn_type: conn_type.to_string(),
        databases: vec!["all".to_string()],
        users: vec!["all".to_string()],
        address,
        netmask,
        auth_method: Some(method.to_string()),
        error: None,
    }
}

/// What initdb writes: trust on the socket and on loopback.
pub fn default_hba() -> Vec<HbaRule> {
    vec![
        hba_rule(1, "local", None, "trust"),
        hba_rule(2, "host", Some("127.0.0.1/32"), "trust"),
        hba_rule(3, "host", Some("::1/128"), "trust"),
        hba_rule(4, "local", None, "trust"),
    ]
}

pub fn role(name: &str, superuser: bool, password: Option<PasswordKind>) -> Role {
    Role {
        name: name.to_string(),
        superuser,
        can_login: true,
        valid_until: None,
        bootstrap: false,
        password,
        config: Vec::new(),
        replication: false,
    }
}

/// The bootstrap superuser, as initdb makes it: no password.
pub fn bootstrap_role() -> Role {
    Role {
        bootstrap: true,
        ..role("postgres", true, Some(PasswordKind::Missing))
    }
}

pub fn set_setting(snap: &mut Snapshot, name: &str, value: &str) {
    snap.settings.retain(|s| s.name != name);
    snap.settings.push(setting(name, value, None, "string"));
}

/// Plants every security problem: ssl off while listening on '*', md5 password_encryption,
/// trust open to 0.0.0.0/0, md5 for 10.0.0.0/8, a second superuser, a login role without a
/// password and one with an MD5 password.
pub fn plant_insecure(snap: &mut Snapshot) {
    set_setting(snap, "ssl", "off");
    set_setting(snap, "listen_addresses", "*");
    set_setting(snap, "password_encryption", "md5");
    let mut hba = default_hba();
    hba.push(hba_rule(5, "host", Some("0.0.0.0/0"), "trust"));
    hba.push(hba_rule(6, "host", Some("10.0.0.0/8"), "md5"));
    snap.hba_rules = Some(hba);
    snap.roles = Some(vec![
        bootstrap_role(),
        role("admin2", true, Some(PasswordKind::ScramSha256)),
        role("nopass", false, Some(PasswordKind::Missing)),
        role("legacy", false, Some(PasswordKind::Md5)),
    ]);
}

pub fn run(snap: &Snapshot) -> Vec<Finding> {
    advise(snap, &Thresholds::default())
}

/// The findings of one rule.
pub fn of_rule<'a>(findings: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.rule == rule).collect()
}

/// The one finding of `rule`, failing with every finding listed when there is not exactly one.
pub fn single(snap: &Snapshot, rule: &str) -> Finding {
    let all = run(snap);
    let hits = of_rule(&all, rule);
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one {rule} finding, got: {all:#?}"
    );
    hits[0].clone()
}

/// Asserts that `rule` does not fire on `snap`.
pub fn assert_silent(snap: &Snapshot, rule: &str) {
    let all = run(snap);
    let hits = of_rule(&all, rule);
    assert!(hits.is_empty(), "{rule} should not fire, got: {hits:#?}");
}

pub fn table_mut<'a>(snap: &'a mut Snapshot, name: &str) -> &'a mut Table {
    snap.tables.iter_mut().find(|t| t.name == name).unwrap()
}

pub fn index_mut<'a>(snap: &'a mut Snapshot, name: &str) -> &'a mut Index {
    snap.indexes.iter_mut().find(|i| i.name == name).unwrap()
}

pub fn db_mut<'a>(snap: &'a mut Snapshot, name: &str) -> &'a mut DatabaseStats {
    snap.databases.iter_mut().find(|d| d.name == name).unwrap()
}

pub fn sessions_mut(snap: &mut Snapshot) -> &mut Vec<Session> {
    &mut snap.activity.as_mut().unwrap().sessions
}

pub fn ev_i64(f: &Finding, key: &str) -> i64 {
    f.evidence
        .get(key)
        .and_then(|v| v.as_i64())
        .unwrap_or_else(|| panic!("evidence {key} missing or not an integer in {f:#?}"))
}

pub fn ev_f64(f: &Finding, key: &str) -> f64 {
    f.evidence
        .get(key)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("evidence {key} missing or not a number in {f:#?}"))
}

/// Evidence keys naming an index a finding keeps (the one that serves the same lookups).
const KEEP_KEYS: &[&str] = &["duplicate_of", "covered_by", "kept_prefix"];

/// Whether `text` names `id` as a whole word (so `unused_index` is not found in
/// `unused_index_window_short`).
fn names_word(text: &str, id: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == id)
}

/// Asserts that a set of findings does not contradict itself, for any rule set (new rules
/// are covered as long as they follow the conventions):
/// - no object is advised to be dropped twice (a pair is advised once);
/// - no object is both dropped and kept (kept: named under `duplicate_of`, `covered_by` or
///   `kept_prefix` by another finding, the one "covering" it);
/// - no finding cites another rule's findings (by rule id, in its message or next step) when
///   no finding of that rule is there;
/// - no object is rewritten (VACUUM FULL, pg_repack, REINDEX, CLUSTER in a finding's SQL) that
///   another finding drops, and no table is rewritten while autovacuum_behind says to vacuum
///   its dead rows first.
pub fn assert_consistent(findings: &[Finding]) {
    use std::collections::BTreeMap;
    let mut dropped: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut kept: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for f in findings {
        let who = format!("{} {}", f.rule, f.object);
        if f.sql
            .as_deref()
            .is_some_and(|s| s.trim_start().to_ascii_uppercase().starts_with("DROP "))
        {
            dropped
                .entry(f.object.as_str())
                .or_default()
                .push(who.clone());
        }
        for key in KEEP_KEYS {
            if let Some(v) = f.evidence.get(*key).and_then(|v| v.as_str()) {
                kept.entry(v).or_default().push(who.clone());
            }
        }
        for rule in pgopt::advise::RULES {
            if rule.id != f.rule
                && (names_word(&f.message, rule.id) || names_word(&f.next_step, rule.id))
            {
                assert!(
                    findings.iter().any(|g| g.rule == rule.id),
                    "{who} cites {} findings but there are none: {f:#?}",
                    rule.id
                );
            }
        }
    }
    // Rewrites (VACUUM FULL, pg_repack, REINDEX, CLUSTER) of an object that another finding
    // drops, or of a table whose dead rows are still to be vacuumed, contradict that advice.
    for f in findings {
        let Some(sql) = f.sql.as_deref().map(str::to_ascii_uppercase) else {
            continue;
        };
        let rewrite = [
            "VACUUM (FULL",
            "VACUUM FULL",
            "PG_REPACK",
            "REINDEX",
            "CLUSTER ",
        ]
        .iter()
        .any(|w| sql.contains(w));
        if !rewrite {
            continue;
        }
        if let Some(by) = dropped.get(f.object.as_str()) {
            panic!(
                "{} {} rewrites {} which {by:?} drops",
                f.rule, f.object, f.object
            );
        }
        if let Some(g) = findings
            .iter()
            .find(|g| g.rule == "autovacuum_behind" && g.object == f.object)
        {
            panic!(
                "{} {} rewrites a table whose dead rows are still to be vacuumed ({} {})",
                f.rule, f.object, g.rule, g.object
            );
        }
    }
    for (object, by) in &dropped {
        assert_eq!(
            by.len(),
            1,
            "{object} is advised to be dropped more than once: {by:?}"
        );
        if let Some(keepers) = kept.get(object) {
            panic!("{object} is dropped by {by:?} and kept by {keepers:?}");
        }
    }
}

/// The index problems `pgopt demo` plants, on the clean snapshot: an audit_logs table with a
/// redundant pair that nobody scans (resource_type is a left prefix of resource_type,
/// action), an index nobody scans, a duplicate pair on users, and statistics that started
/// `stats_age_seconds` before the snapshot.
pub fn demo_like_snapshot(stats_age_seconds: i64) -> Snapshot {
    let mut snap = clean_snapshot();
    db_mut(&mut snap, "app").stats_reset = ago(stats_age_seconds);
    snap.tables
        .push(table("public", "audit_logs", 200 * MIB, 2_000_000.0));
    snap.indexes.push(primary(
        "public",
        "audit_logs",
        "audit_logs_pkey",
        &[("id", 1)],
    ));
    for (name, cols) in [
        ("audit_logs_resource_type_idx", &[("resource_type", 3)][..]),
        (
            "audit_logs_resource_type_action_idx",
            &[("resource_type", 3), ("action", 5)][..],
        ),
        ("audit_logs_occurred_at_idx", &[("occurred_at", 6)][..]),
    ] {
        let mut i = index("public", "audit_logs", name, cols);
        i.idx_scan = 0;
        snap.indexes.push(i);
    }
    let mut lookup = index("public", "users", "users_email_lookup", &[("email", 3)]);
    lookup.idx_scan = 4_000;
    snap.indexes.push(lookup);
    let mut copy = index("public", "users", "users_email_lookup2", &[("email", 3)]);
    copy.idx_scan = 0;
    snap.indexes.push(copy);
    snap
}

/// A snapshot of the live server behind `dsn`, collected with `opts`.
pub async fn live_snapshot(dsn: &str, opts: &pgopt::collect::CollectOptions) -> Snapshot {
    let conn = pgopt::db::connect(&pgopt::db::Target::parse(dsn).unwrap())
        .await
        .unwrap();
    let target = TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    };
    pgopt::collect::collect(&conn, target, opts).await.unwrap()
}

/// The default thresholds with `pairs` (name, value) overridden.
pub fn thresholds_with(pairs: &[(&str, &str)]) -> Thresholds {
    let mut th = Thresholds::default();
    for (k, v) in pairs {
        th.set(k, v).unwrap();
    }
    th
}
