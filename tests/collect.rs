//! The collector against real embedded clusters: contents of every section, privileges,
//! missing extensions, hostile names, locks held elsewhere, and a server dying mid-collect.

use std::time::{Duration, Instant};

use pgopt::collect::{collect, CollectOptions};
use pgopt::db::{connect, Conn, Target};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::snapshot::{SectionState, Snapshot, TargetInfo};

const ALL_SECTIONS: &[&str] = &[
    "privileges",
    "server",
    "settings",
    "host",
    "data_storage",
    "setting_domains",
    "role_settings",
    "databases",
    "activity",
    "prepared_xacts",
    "locks",
    "tables",
    "indexes",
    "foreign_keys",
    "sequences",
    "extensions",
    "preloaded_libraries",
    "bloat",
    "bloat_measured",
    "statements",
    "replication",
    "hba_rules",
    "roles",
    "role_passwords",
    "checkpoints",
    "wal_compression_lz4",
    "wal_directory",
    "archiver",
    "archive_status",
    "triggers",
    "sizes",
];

/// Every section but bloat_measured, which is skipped where pgstattuple is not installed.
fn all_but_measured() -> Vec<&'static str> {
    ALL_SECTIONS
        .iter()
        .copied()
        .filter(|s| *s != "bloat_measured")
        .collect()
}

const SCHEMA: &str = "
CREATE EXTENSION pgstattuple;
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, name text);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id int NOT NULL REFERENCES users (id),
    amount numeric,
    created_at timestamptz DEFAULT now()
);
CREATE INDEX orders_created_at_idx ON orders (created_at);
CREATE INDEX users_lower_email_idx ON users (lower(email)) INCLUDE (name) WHERE name IS NOT NULL;
CREATE SEQUENCE ticket_seq;
CREATE TABLE tickets (n int DEFAULT nextval('ticket_seq'), note text);
INSERT INTO users (email, name) SELECT 'u' || g || '@example.org', 'n' || g FROM generate_series(1, 100) g;
INSERT INTO orders (user_id, amount) SELECT 1 + g % 100, g FROM generate_series(1, 500) g;
SELECT count(*) FROM orders WHERE user_id = 5;
SELECT count(*) FROM orders WHERE user_id = 6;
SELECT pg_stat_force_next_flush();
";

async fn connect_dsn(dsn: &str) -> Conn {
    let target = Target::parse(dsn).expect("dsn parses");
    connect(&target).await.expect("connects")
}

fn target_of(conn: &Conn) -> TargetInfo {
    TargetInfo {
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
    }
}

async fn collect_default(conn: &Conn) -> Snapshot {
    collect(conn, target_of(conn), &CollectOptions::default())
        .await
        .expect("collect succeeds")
}

fn state(snap: &Snapshot, name: &str) -> SectionState {
    snap.section(name)
        .unwrap_or_else(|| panic!("section {name} not recorded: {:?}", snap.sections))
        .state
}

fn assert_collected(snap: &Snapshot, names: &[&str]) {
    for name in names {
        let s = snap.section(name).expect("section recorded");
        assert_eq!(
            s.state,
            SectionState::Collected,
            "section {name}: {:?} {:?}",
            s.reason,
            s.next_step
        );
    }
}

fn assert_all_recorded(snap: &Snapshot) {
    let names: Vec<&str> = snap.sections.iter().map(|s| s.section.as_str()).collect();
    assert_eq!(names, ALL_SECTIONS);
    for s in &snap.sections {
        assert!(s.elapsed_ms >= 0.0);
        if s.state != SectionState::Collected {
            assert!(s.reason.is_some() && s.next_step.is_some(), "{s:?}");
        }
    }
}

#[tokio::test]
async fn full_collect_fills_every_section() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", SCHEMA).unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_default(&conn).await;

    assert_all_recorded(&snap);
    assert_collected(&snap, ALL_SECTIONS);
    // No prepared transaction: collected as an empty list, not as "not collected".
    assert_eq!(snap.prepared_xacts.as_deref(), Some(&[][..]));

    // wal_compression = lz4 was tried and the answer is the server's own, with nothing left
    // set: the session still has the server's value.
    let accepts = c.psql("postgres", "SET wal_compression = lz4").is_ok();
    assert_eq!(snap.wal_compression_lz4, Some(accepts));
    let row = conn
        .query_one("reading", "SELECT current_setting('wal_compression')", &[])
        .await
        .unwrap();
    let now: String = row.get(0);
    assert_ne!(now, "lz4", "the trial SET leaked into the session");

    // security: the superuser reads pg_hba.conf and how passwords are stored
    // checkpoints and WAL: counters and pg_stat_wal (15 here)
    let cp = snap.checkpoints.as_ref().expect("checkpoints collected");
    assert!(cp.timed >= 0 && cp.requested >= 0, "{cp:?}");
    assert!(cp.wal_bytes.is_some_and(|b| b > 0), "{cp:?}");
    // roles: their own settings
    let roles = snap.roles.as_ref().expect("roles collected");
    assert!(
        roles.iter().any(|r| r.bootstrap && r.superuser),
        "{roles:?}"
    );

    let hba = snap.hba_rules.as_ref().expect("hba rules collected");
    assert!(
        hba.iter()
            .any(|r| r.conn_type == "local" && r.auth_method.as_deref() == Some("trust")),
        "{hba:?}"
    );
    assert!(hba
        .iter()
        .filter(|r| r.is_host())
        .all(|r| r.is_loopback_only()));
    let roles = snap.roles.as_ref().expect("roles collected");
    let boot = roles.iter().find(|r| r.name == "postgres").unwrap();
    assert!(boot.bootstrap && boot.superuser && boot.can_login);
    assert_eq!(boot.password, Some(pgopt::snapshot::PasswordKind::Missing));
    assert!(roles.iter().all(|r| !r.name.starts_with("pg_")));

    // tables
    let users = snap
        .tables
        .iter()
        .find(|t| t.schema == "public" && t.name == "users")
        .expect("users collected");
    assert_eq!(users.kind, "r");
    assert_eq!(users.n_live_tup, 100);
    assert!(users.heap_bytes > 0 && users.indexes_bytes > 0);
    assert_eq!(
        users.total_bytes,
        users.heap_bytes + users.indexes_bytes + users.toast_bytes
    );
    assert!(users.frozenxid_age > 0 && users.frozenxid_age < 1_000_000);
    assert!(!users.locked);
    let orders = snap.tables.iter().find(|t| t.name == "orders").unwrap();
    assert_eq!(orders.n_live_tup, 500);
    assert!(orders.seq_scan >= 2, "the two counts scanned orders");

    // indexes
    let created = snap
        .indexes
        .iter()
        .find(|i| i.name == "orders_created_at_idx")
        .expect("secondary index collected");
    assert_eq!(created.table, "orders");
    assert_eq!(created.access_method, "btree");
    assert_eq!(created.key_columns[..], ["created_at"]);
    assert_eq!(created.key_attnums[..], [4]);
    assert_eq!(created.opclasses[..], ["timestamptz_ops"]);
    assert_eq!(created.idx_scan, 0, "the unused index has no scans");
    assert!(created.definition.contains("USING btree (created_at)"));
    assert!(!created.is_unique && created.constraint_name.is_none());
    let expr = snap
        .indexes
        .iter()
        .find(|i| i.name == "users_lower_email_idx")
        .unwrap();
    assert_eq!(expr.key_columns[..], ["lower(email)"]);
    assert_eq!(expr.key_attnums[..], [0]);
    assert_eq!(expr.include_columns[..], ["name"]);
    assert_eq!(expr.expressions.as_deref(), Some("lower(email)"));
    assert_eq!(expr.predicate.as_deref(), Some("(name IS NOT NULL)"));
    assert_eq!(expr.collations[..], [100], "default collation");
    let pkey = snap
        .indexes
        .iter()
        .find(|i| i.name == "users_pkey")
        .unwrap();
    assert!(pkey.is_primary && pkey.is_unique && pkey.is_valid && pkey.is_ready && pkey.is_live);
    assert_eq!(pkey.constraint_name.as_deref(), Some("users_pkey"));
    assert_eq!(pkey.key_columns[..], ["id"]);
    assert_eq!(pkey.collations[..], [0], "int is not collatable");

    // foreign keys
    let fk = snap
        .foreign_keys
        .iter()
        .find(|f| f.table == "orders")
        .expect("fk collected");
    assert_eq!(fk.name, "orders_user_id_fkey");
    assert_eq!(fk.columns, vec!["user_id"]);
    assert_eq!(fk.attnums, vec![2]);
    assert_eq!(
        (fk.ref_schema.as_str(), fk.ref_table.as_str()),
        ("public", "users")
    );
    assert_eq!(fk.ref_columns, vec!["id"]);

    // sequences
    let seq = snap
        .sequences
        .iter()
        .find(|s| s.name == "users_id_seq")
        .unwrap();
    assert_eq!(seq.data_type, "integer");
    assert_eq!(seq.last_value, Some(100));
    assert_eq!(seq.max_value, i32::MAX as i64);
    let col = seq.column.as_ref().expect("serial column found");
    assert_eq!(
        (
            col.table.as_str(),
            col.column.as_str(),
            col.data_type.as_str()
        ),
        ("users", "id", "integer")
    );
    let big = snap
        .sequences
        .iter()
        .find(|s| s.name == "orders_id_seq")
        .unwrap();
    assert_eq!(big.data_type, "bigint");
    assert_eq!(big.column.as_ref().unwrap().data_type, "bigint");
    let ticket = snap
        .sequences
        .iter()
        .find(|s| s.name == "ticket_seq")
        .unwrap();
    assert_eq!(ticket.last_value, None, "never used");
    let col = ticket.column.as_ref().expect("nextval() default found");
    assert_eq!((col.table.as_str(), col.column.as_str()), ("tickets", "n"));

    // statements
    let st = snap.statements.as_ref().expect("statements collected");
    assert!(st.tracked > 0 && st.total_exec_time_ms > 0.0);
    assert!(st.stats_reset.is_some());
    let ours = st
        .top
        .iter()
        .find(|s| s.query.contains("FROM orders WHERE user_id ="))
        .expect("our query is among the top statements");
    assert_eq!(ours.calls, 2, "both literals normalise to one statement");
    assert_eq!(ours.database.as_deref(), Some("postgres"));
    assert!(st.top.iter().all(|s| s.query.chars().count() <= 2000));

    // settings, privileges, host, databases, server, activity, extensions, replication
    assert_eq!(snap.setting("max_connections").unwrap().setting, "200");
    assert_eq!(snap.setting_f64("max_connections"), Some(200.0));
    let p = snap.privileges.as_ref().unwrap();
    assert!(p.is_superuser && p.sees_all_stats());
    assert_eq!(p.role, "postgres");
    let host = snap.host.as_ref().expect("server is local");
    assert!(host.cpus > 0 && host.memory_bytes > 0);
    let disk = host.data_disk.as_ref().expect("data directory's disk");
    assert!(disk.total_bytes > 0);
    let db = snap.current_database().expect("stats of the connected db");
    assert!(db.xact_commit > 0 && db.blks_hit > 0);
    assert!(db.frozenxid_age > 0);
    let server = snap.server.as_ref().unwrap();
    assert!(server.version.starts_with("PostgreSQL"));
    assert!(server.version_num >= 130000);
    assert!(!server.in_recovery && server.uptime_seconds >= 0.0);
    assert!(server.data_directory.as_deref().unwrap().ends_with("data"));
    assert!(server
        .database_sizes
        .iter()
        .any(|d| d.name == "postgres" && d.size_bytes > 0));
    let act = snap.activity.as_ref().unwrap();
    assert_eq!(act.max_connections, 200);
    assert!(act.total_connections >= 1);
    assert!(act.by_state.iter().map(|s| s.count).sum::<i64>() >= 1);
    assert!(snap.extensions.is_installed("pg_stat_statements"));
    assert!(snap.extensions.is_preloaded("pg_stat_statements"));
    assert!(snap.extensions.is_preloaded("auto_explain"));
    assert!(snap
        .extensions
        .available
        .iter()
        .any(|a| a == "pg_stat_statements"));
    let repl = snap.replication.as_ref().unwrap();
    assert!(!repl.in_recovery && repl.standby.is_none());

    // The collect's transaction is closed: the connection is usable again.
    conn.query_one("after collect", "SELECT 1", &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn snapshot_round_trips_through_a_file() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", SCHEMA).unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_default(&conn).await;
    assert!(!snap.tables.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.json");
    snap.save(&path).unwrap();
    let back = Snapshot::load(&path).unwrap();
    assert_eq!(back, snap);
}

#[tokio::test]
async fn role_without_pg_monitor_still_collects() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE ROLE plain LOGIN; CREATE TABLE secret (id serial PRIMARY KEY); \
         CREATE TABLE mine (id int); ALTER TABLE mine OWNER TO plain",
    )
    .unwrap();
    // A superuser session idle in a transaction: another role's activity.
    let other = connect_dsn(&c.dsn("postgres")).await;
    other.batch("open", "BEGIN").await.unwrap();
    other
        .query_one("open", "SELECT count(*) FROM secret", &[])
        .await
        .unwrap();

    let dsn = c
        .socket_dsn("postgres")
        .replace("user=postgres", "user=plain");
    let conn = connect_dsn(&dsn).await;
    let snap = collect_default(&conn).await;
    assert_all_recorded(&snap);

    let p = snap.privileges.as_ref().unwrap();
    assert_eq!(p.role, "plain");
    assert!(!p.is_superuser && !p.pg_monitor && !p.pg_read_all_stats);
    assert!(!p.sees_all_stats());

    // Another role's session shows up, without its state or text.
    let act = snap.activity.as_ref().expect("activity collected");
    let s = act
        .sessions
        .iter()
        .find(|s| {
            s.user.as_deref() == Some("postgres") && s.database.as_deref() == Some("postgres")
        })
        .unwrap_or_else(|| panic!("superuser session listed: {:?}", act.sessions));
    assert_eq!((s.state.as_deref(), s.query.as_deref()), (None, None));
    assert!(act.sessions.iter().all(|s| s.query.is_none()));

    // Without pg_read_all_settings the data directory and the preload list are not readable:
    // recorded, not guessed.
    assert_eq!(snap.server.as_ref().unwrap().data_directory, None);
    assert_eq!(state(&snap, "preloaded_libraries"), SectionState::Skipped);
    let pre = snap.section("preloaded_libraries").unwrap();
    assert!(pre
        .next_step
        .as_deref()
        .unwrap()
        .contains("pg_read_all_settings"));
    // The host is still described (the socket is local), only the disk is unknown.
    let host = snap.host.as_ref().expect("host collected");
    assert!(host.cpus > 0 && host.data_disk.is_none());
    // Catalog sections see all tables; sequences this role may not read have no last_value.
    assert_collected(
        &snap,
        &["tables", "indexes", "sequences", "databases", "statements"],
    );
    assert!(snap.tables.iter().any(|t| t.name == "secret"));
    // pg_hba_file_rules is superuser-only: skipped with the grant to make; the roles are
    // listed without how their passwords are stored.
    assert_eq!(state(&snap, "hba_rules"), SectionState::Skipped);
    assert!(snap.hba_rules.is_none());
    let hba = snap.section("hba_rules").unwrap();
    assert!(hba
        .next_step
        .as_deref()
        .unwrap()
        .contains("GRANT SELECT ON pg_catalog.pg_hba_file_rules TO \"plain\""));
    assert_collected(&snap, &["roles", "prepared_xacts"]);
    assert_eq!(state(&snap, "role_passwords"), SectionState::Skipped);
    // wal_compression is superuser-only: whether lz4 is accepted is not tried.
    assert_eq!(state(&snap, "wal_compression_lz4"), SectionState::Skipped);
    assert_eq!(snap.wal_compression_lz4, None);
    // pg_ls_waldir and pg_ls_archive_statusdir need pg_monitor: skipped, the archiver's
    // counters (readable by all) still come back, without the waiting segments.
    assert_eq!(state(&snap, "wal_directory"), SectionState::Skipped);
    assert!(snap.wal_directory.is_none());
    assert_eq!(state(&snap, "archive_status"), SectionState::Skipped);
    let archiver = snap
        .archiver
        .as_ref()
        .expect("pg_stat_archiver is readable by all");
    assert_eq!(archiver.ready_files, None);
    let roles = snap.roles.as_ref().unwrap();
    assert!(roles.iter().any(|r| r.name == "plain" && !r.superuser));
    assert!(roles.iter().all(|r| r.password.is_none()), "{roles:?}");
    let seq = snap
        .sequences
        .iter()
        .find(|s| s.name == "secret_id_seq")
        .unwrap();
    assert_eq!(seq.last_value, None);
    // Statements of other roles are left out, never shown with a hidden text.
    let st = snap.statements.as_ref().unwrap();
    assert!(st
        .top
        .iter()
        .all(|s| s.user.as_deref() == Some("plain") && !s.query.contains("insufficient")));
    drop(other);
}

#[tokio::test]
async fn missing_extension_skips_statements_with_create_extension() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", "DROP EXTENSION pg_stat_statements")
        .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_default(&conn).await;
    assert!(snap.statements.is_none());
    let s = snap.section("statements").unwrap();
    assert_eq!(s.state, SectionState::Skipped);
    assert!(s.next_step.as_deref().unwrap().contains("CREATE EXTENSION"));
    assert_collected(&snap, &["tables", "indexes", "settings", "replication"]);
}

#[tokio::test]
async fn extension_not_preloaded_skips_statements_with_preload_step() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("shared_preload_libraries".into(), "''".into())],
        ..Default::default()
    })
    .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_default(&conn).await;
    assert!(snap.statements.is_none());
    let s = snap.section("statements").unwrap();
    assert_eq!(s.state, SectionState::Skipped, "{s:?}");
    assert!(s
        .next_step
        .as_deref()
        .unwrap()
        .contains("shared_preload_libraries"));
    // The extension is there, just not loaded; the rest of the transaction is unharmed.
    assert!(snap.extensions.is_installed("pg_stat_statements"));
    assert!(!snap.extensions.is_preloaded("pg_stat_statements"));
    assert_collected(&snap, &["preloaded_libraries", "replication"]);
}

#[tokio::test]
async fn skip_statements_option_is_recorded() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let opts = CollectOptions {
        skip_statements: true,
        include_host: false,
        ..Default::default()
    };
    let snap = collect(&conn, target_of(&conn), &opts).await.unwrap();
    assert!(snap.statements.is_none() && snap.host.is_none());
    assert_eq!(
        snap.section("statements").unwrap().reason.as_deref(),
        Some("--skip-statements given")
    );
    assert_eq!(state(&snap, "host"), SectionState::Skipped);
}

#[tokio::test]
async fn hostile_table_name_is_collected_verbatim() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let hostile = r#"x"; DROP TABLE users; --"#;
    c.psql(
        "postgres",
        r#"CREATE TABLE users (id int PRIMARY KEY);
           CREATE TABLE "x""; DROP TABLE users; --" (id serial PRIMARY KEY, user_id int REFERENCES users (id));
           CREATE INDEX ON "x""; DROP TABLE users; --" (user_id);
           INSERT INTO users VALUES (1);
           INSERT INTO "x""; DROP TABLE users; --" (user_id) VALUES (1);"#,
    )
    .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_default(&conn).await;
    assert_collected(&snap, &all_but_measured());
    assert_eq!(state(&snap, "bloat_measured"), SectionState::Skipped);
    let t = snap
        .tables
        .iter()
        .find(|t| t.name == hostile)
        .expect("hostile table collected with its exact name");
    assert!(t.heap_bytes > 0);
    assert!(snap.indexes.iter().any(|i| i.table == hostile));
    assert!(snap.foreign_keys.iter().any(|f| f.table == hostile));
    let seq = snap
        .sequences
        .iter()
        .find(|s| s.column.as_ref().is_some_and(|c| c.table == hostile))
        .expect("its serial sequence");
    assert_eq!(seq.last_value, Some(1));
    assert_eq!(
        c.psql("postgres", "SELECT count(*) FROM users").unwrap(),
        "1",
        "users still exists"
    );
}

#[tokio::test]
async fn access_exclusive_lock_elsewhere_does_not_block_collect() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE busy (id serial PRIMARY KEY, body text);
         INSERT INTO busy (body) SELECT repeat('x', 100) FROM generate_series(1, 2000);
         ANALYZE busy;",
    )
    .unwrap();
    let locker = connect_dsn(&c.dsn("postgres")).await;
    locker.batch("lock", "BEGIN").await.unwrap();
    locker
        .batch("lock", "LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let conn = connect_dsn(&c.dsn("postgres")).await;
    let started = Instant::now();
    let snap = collect_default(&conn).await;
    let took = started.elapsed();
    // A lock wait would have cost lock_timeout (2 s) and failed a section.
    assert_collected(&snap, &all_but_measured());
    assert!(took < Duration::from_secs(10), "collect took {took:?}");
    let busy = snap
        .tables
        .iter()
        .find(|t| t.name == "busy")
        .expect("locked table still listed");
    assert!(busy.locked && busy.relpages > 0);
    assert_eq!(busy.heap_bytes, busy.relpages * 8192, "sized from relpages");
    let pkey = snap.indexes.iter().find(|i| i.name == "busy_pkey").unwrap();
    assert!(pkey.locked && pkey.size_bytes > 0);
    // Plain key columns come from pg_attribute, which needs no lock; deparsing would.
    assert_eq!(pkey.key_columns[..], ["id"]);
    assert_eq!(pkey.definition, "");
    // Tables nobody locks are measured as usual.
    assert!(snap
        .tables
        .iter()
        .filter(|t| t.name != "busy")
        .all(|t| !t.locked));
    // The lock is still held: the collect did not wait for it to go away.
    locker
        .query_one("still locked", "SELECT 1", &[])
        .await
        .unwrap();
    locker.batch("unlock", "COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dying_mid_collect_is_an_error_not_a_hang() {
    let mut c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", SCHEMA).unwrap();
    // Hold a catalog the indexes section reads, so the collect is parked mid-way.
    let locker = connect_dsn(&c.dsn("postgres")).await;
    locker.batch("lock", "BEGIN").await.unwrap();
    locker
        .batch(
            "lock",
            "LOCK TABLE pg_catalog.pg_constraint IN ACCESS EXCLUSIVE MODE",
        )
        .await
        .unwrap();

    let conn = connect_dsn(&c.dsn("postgres")).await;
    let target = target_of(&conn);
    let opts = CollectOptions {
        lock_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let task = tokio::spawn(async move { collect(&conn, target, &opts).await });

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = locker
            .query_one(
                "waiting",
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgopt' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "collect never reached the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed_at = Instant::now();
    c.kill();

    let result = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("collect returned within a bounded time")
        .expect("collect did not panic");
    let err = result.expect_err("a dead server is an error");
    // The backend dies with the server: the socket closes, nothing waits for a timeout.
    assert!(err.is_connection_lost(), "unexpected error: {err}");
    assert!(killed_at.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_section_that_times_out_is_recorded_and_the_rest_still_come_back() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql("postgres", SCHEMA).unwrap();
    // pg_sequence is read by the sequences section only.
    let locker = connect_dsn(&c.dsn("postgres")).await;
    locker.batch("lock", "BEGIN").await.unwrap();
    locker
        .batch(
            "lock",
            "LOCK TABLE pg_catalog.pg_sequence IN ACCESS EXCLUSIVE MODE",
        )
        .await
        .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let opts = CollectOptions {
        lock_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let snap = collect(&conn, target_of(&conn), &opts).await.unwrap();
    assert_all_recorded(&snap);
    let s = snap.section("sequences").unwrap();
    assert_eq!(s.state, SectionState::Failed, "{s:?}");
    assert!(
        s.reason.as_deref().unwrap().contains("lock timeout"),
        "{s:?}"
    );
    assert!(s.next_step.as_deref().unwrap().contains("lock"), "{s:?}");
    assert!(snap.sequences.is_empty());
    // Sections before and after the failed one ran in the same, still healthy transaction.
    assert_collected(
        &snap,
        &[
            "tables",
            "indexes",
            "foreign_keys",
            "extensions",
            "statements",
            "replication",
        ],
    );
    assert!(snap.tables.iter().any(|t| t.name == "orders"));
    locker.batch("unlock", "COMMIT").await.unwrap();
}

#[tokio::test]
async fn standby_reports_its_replay_state() {
    let primary = Cluster::start(ClusterOptions::default()).unwrap();
    primary
        .psql(
            "postgres",
            "CREATE TABLE t (id serial PRIMARY KEY); INSERT INTO t DEFAULT VALUES;",
        )
        .unwrap();
    let standby = primary.standby().unwrap();
    let conn = connect_dsn(&standby.dsn("postgres")).await;
    let snap = collect_default(&conn).await;
    assert_collected(&snap, &["server", "tables", "replication", "sequences"]);
    assert!(snap.server.as_ref().unwrap().in_recovery);
    let repl = snap.replication.as_ref().unwrap();
    assert!(repl.in_recovery);
    let st = repl.standby.as_ref().expect("standby status");
    assert!(st.replay_gap_bytes.is_some_and(|b| b >= 0));
    assert!(snap.tables.iter().any(|t| t.name == "t"));

    // The primary sees the standby's WAL sender, with a replay gap in bytes (once the
    // standby has reported a replay position).
    let deadline = Instant::now() + Duration::from_secs(20);
    while primary
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_replication WHERE replay_lsn IS NOT NULL",
        )
        .unwrap()
        != "1"
    {
        assert!(Instant::now() < deadline, "standby never reported replay");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pconn = connect_dsn(&primary.dsn("postgres")).await;
    let psnap = collect_default(&pconn).await;
    let senders = &psnap.replication.as_ref().unwrap().senders;
    assert_eq!(senders.len(), 1, "{senders:?}");
    assert!(senders[0].replay_lag_bytes.is_some_and(|b| b >= 0));
}

// ---------- sizes at catalog scale: estimates, and the exact pass ----------

async fn collect_with(conn: &Conn, opts: CollectOptions) -> Snapshot {
    collect(conn, target_of(conn), &opts)
        .await
        .expect("collect succeeds")
}

#[tokio::test]
async fn only_the_largest_relations_are_measured_the_others_are_estimates() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE big (id int PRIMARY KEY, body text);
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
         CREATE TABLE small (id int PRIMARY KEY, body text);
         INSERT INTO small SELECT g, 'y' FROM generate_series(1, 500) g;",
    )
    .unwrap();
    c.psql("postgres", "VACUUM ANALYZE big; VACUUM ANALYZE small")
        .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_with(
        &conn,
        CollectOptions {
            exact_sizes_top: 1,
            ..CollectOptions::default()
        },
    )
    .await;
    assert_eq!(state(&snap, "sizes"), SectionState::Collected);
    let table = |n: &str| snap.tables.iter().find(|t| t.name == n).unwrap();
    let index = |n: &str| snap.indexes.iter().find(|i| i.name == n).unwrap();
    // The largest table and the largest index: measured, with the index's definition.
    let big = table("big");
    assert!(!big.size_estimated);
    let measured: i64 = c
        .psql(
            "postgres",
            "SELECT pg_table_size('big') - pg_total_relation_size(reltoastrelid) FROM pg_class WHERE relname = 'big'",
        )
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(big.heap_bytes, measured);
    let big_pkey = index("big_pkey");
    assert!(!big_pkey.size_estimated);
    assert!(big_pkey.definition.contains("CREATE UNIQUE INDEX big_pkey"));
    // The rest: relpages x block size, marked, no definition deparsed.
    let small = table("small");
    assert!(small.size_estimated);
    assert_eq!(small.heap_bytes, small.relpages * 8192);
    let small_pkey = index("small_pkey");
    assert!(small_pkey.size_estimated && small_pkey.definition.is_empty());
    assert_eq!(
        big.total_bytes,
        big.heap_bytes + big.toast_bytes + big.indexes_bytes
    );
}

#[tokio::test]
async fn a_table_loaded_and_never_analyzed_is_measured_not_estimated_empty() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![("autovacuum".into(), "off".into())],
        ..Default::default()
    })
    .unwrap();
    // Loaded in a session of its own, which flushes its counters when it ends: pg_class
    // still says 0 pages, the statistics count the rows.
    c.psql(
        "postgres",
        "CREATE TABLE loaded (id int, body text);
         INSERT INTO loaded SELECT g, repeat('z', 100) FROM generate_series(1, 10000) g;",
    )
    .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_with(
        &conn,
        CollectOptions {
            exact_sizes_top: 0,
            ..CollectOptions::default()
        },
    )
    .await;
    let loaded = snap.tables.iter().find(|t| t.name == "loaded").unwrap();
    assert_eq!(loaded.relpages, 0, "never vacuumed or analyzed");
    assert!(!loaded.size_estimated, "{loaded:#?}");
    assert!(loaded.heap_bytes > 1_000_000, "{loaded:#?}");
}

#[tokio::test]
async fn the_relations_findings_are_about_are_measured() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    c.psql(
        "postgres",
        "CREATE TABLE t (id int PRIMARY KEY, a int);
         INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;
         CREATE INDEX t_a_idx ON t (a);
         CREATE INDEX t_a_idx2 ON t (a);",
    )
    .unwrap();
    c.psql("postgres", "VACUUM ANALYZE t").unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let opts = |thresholds| CollectOptions {
        exact_sizes_top: 0,
        thresholds,
        ..CollectOptions::default()
    };
    // Without thresholds nothing is measured (nothing is large, nothing unmeasurable).
    let snap = collect_with(&conn, opts(None)).await;
    assert!(snap.indexes.iter().all(|i| i.size_estimated));
    // With them, the duplicate pair's finding names one index: its table's indexes are
    // measured and deparsed, so the finding states measured sizes and both definitions.
    let th = pgopt::advise::Thresholds::default();
    let snap = collect_with(&conn, opts(Some(th.clone()))).await;
    let findings = pgopt::advise::advise(&snap, &th);
    let dup = findings
        .iter()
        .find(|f| f.rule == "duplicate_index")
        .expect("duplicate pair found");
    assert_eq!(dup.evidence["size_estimated"], false, "{dup:#?}");
    for i in snap.indexes.iter().filter(|i| i.table == "t") {
        assert!(!i.size_estimated && !i.definition.is_empty(), "{i:#?}");
    }
    assert!(!dup.message.contains("estimated"), "{}", dup.message);
}

#[tokio::test]
async fn statements_stay_bounded_at_fifty_thousand_tracked() {
    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("pg_stat_statements.max".into(), "50000".into()),
            ("pg_stat_statements.track".into(), "all".into()),
        ],
        ..Default::default()
    })
    .unwrap();
    // 50,000 distinct statements: 100 tables x 500 shapes (1 to 500 columns in the select
    // list: a different query tree, so each is its own entry), run from a DO block
    // (track = all records nested statements).
    c.psql(
        "postgres",
        "DO $$ BEGIN
           FOR t IN 1..100 LOOP
             EXECUTE format('CREATE TABLE s_%s (a int, b int)', t);
           END LOOP;
           FOR t IN 1..100 LOOP
             FOR k IN 1..500 LOOP
               EXECUTE format('SELECT %s b FROM s_%s', repeat('a, ', k), t);
             END LOOP;
           END LOOP;
         END $$;",
    )
    .unwrap();
    let conn = connect_dsn(&c.dsn("postgres")).await;
    let snap = collect_with(&conn, CollectOptions::default()).await;
    assert_eq!(state(&snap, "statements"), SectionState::Collected);
    let st = snap.statements.as_ref().unwrap();
    assert!(st.tracked >= 40_000, "tracked {}", st.tracked);
    let keep = CollectOptions::default().top_statements;
    // The top N by total time and the top N by mean time, merged: at most 2N rows kept,
    // each with its text.
    assert!(st.top.len() <= 2 * keep, "{} kept", st.top.len());
    assert!(st.top.len() >= keep);
    assert!(st.top.iter().all(|s| !s.query.is_empty()));
}
