//! One embedded server with many real problems planted at once, the way a DBA meets them:
//! shared by tests/planted.rs (every finding on it held against the others, each planted
//! problem caught by its rule) and benches/analyze_planted.rs (analyze's time on it).
//!
//! What is planted, in an order that keeps each problem what it claims to be (the bulk work
//! and its VACUUM run before any session holds back the xmin horizon):
//! - indexes: a duplicate pair, a redundant prefix, one never scanned, an invalid one left by
//!   a failed CREATE UNIQUE INDEX CONCURRENTLY, a foreign key without an index;
//! - tables: one read by large sequential scans, one with dead rows never vacuumed
//!   (autovacuum off), one never analyzed, one whose rows were mostly deleted then vacuumed
//!   (free space left in the file: table and index bloat);
//! - an integer sequence near its limit, a disabled trigger, temporary-file spills
//!   (work_mem 64kB), slow statements;
//! - server-wide: autovacuum off, a low autovacuum_freeze_max_age with transaction IDs burned
//!   past it (wraparound), an inactive replication slot retaining WAL, archiving that fails
//!   (archive_command = false), small shared_buffers (a poor cache hit ratio);
//! - sessions: a prepared transaction, an idle-in-transaction writer holding an XID, a
//!   session waiting for the writer's row lock, a long-running query.

#![allow(dead_code)]

use std::time::Duration;

use pgopt::embedded::{Cluster, ClusterOptions};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

/// The planted server and the sessions that keep its live problems alive. Dropping it ends
/// them and stops the cluster.
pub struct Planted {
    pub cluster: Cluster,
    /// Process ids of the planted sessions.
    pub writer_pid: i32,
    pub waiter_pid: i32,
    pub long_query_pid: i32,
    /// The prepared transaction's global id.
    pub gid: &'static str,
    clients: Vec<Client>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Planted {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Every planted problem: a short name and the (rule, object substring) findings that catch
/// it. The rules of analyze that exist name the problem; a problem with no rule yet is listed
/// with an empty slice, so the figure "which planted problems each rule catches" shows it.
pub const PROBLEMS: &[(&str, &[(&str, &str)])] = &[
    (
        "duplicate index pair",
        &[("duplicate_index", "users_email_idx")],
    ),
    (
        "redundant prefix index",
        &[("redundant_index", "orders_status_idx")],
    ),
    (
        "index never scanned",
        &[("unused_index", "orders_total_idx")],
    ),
    ("invalid index", &[("invalid_index", "dupes_v_key")]),
    (
        "foreign key without index",
        &[("fk_missing_index", "orders")],
    ),
    (
        "large sequential scans",
        &[("seq_scan_heavy_table", "public.orders")],
    ),
    (
        "dead rows never vacuumed",
        &[("autovacuum_behind", "public.events")],
    ),
    (
        "table never analyzed",
        &[("stale_statistics", "public.imports")],
    ),
    (
        "sequence near its limit",
        &[("sequence_exhaustion", "tickets_id_seq")],
    ),
    (
        "temporary-file spills",
        &[("statement_temp_spill", "queryid")],
    ),
    (
        "slow statements",
        &[("slow_statement_mean_time", "queryid")],
    ),
    ("xid wraparound", &[("xid_wraparound", "database postgres")]),
    ("idle-in-transaction writer", &[("idle_in_transaction", "")]),
    ("session waiting on a row lock", &[("blocked_session", "")]),
    ("long-running query", &[("long_running_query", "")]),
    ("poor cache hit ratio", &[("cache_hit_ratio", "")]),
    (
        "prepared transaction",
        &[("prepared_transaction", "planted_gid")],
    ),
    (
        "inactive replication slot",
        &[("replication_slot_retaining_wal", "gone_standby")],
    ),
    ("archiving fails", &[("archiving_failing", "")]),
    ("autovacuum off server-wide", &[("autovacuum_off", "")]),
    ("disabled trigger", &[("trigger_disabled", "orders_audit")]),
    ("table bloat", &[("table_bloat", "public.history")]),
    ("index bloat", &[("index_bloat", "history_id_idx")]),
];

async fn client(c: &Cluster) -> Client {
    let (client, conn) = tokio_postgres::connect(&c.dsn("postgres"), NoTls)
        .await
        .expect("connect to the planted server");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

async fn pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0)
}

/// Starts a cluster and plants every problem of [`PROBLEMS`]. Takes ~20 s on a quiet machine
/// (most of it burning transaction IDs).
pub async fn plant() -> Planted {
    let cluster = Cluster::start(ClusterOptions {
        settings: vec![
            ("autovacuum".into(), "off".into()),
            ("autovacuum_freeze_max_age".into(), "100000".into()),
            ("max_prepared_transactions".into(), "5".into()),
            ("archive_mode".into(), "on".into()),
            ("archive_command".into(), "'false'".into()),
            ("shared_buffers".into(), "'1MB'".into()),
            ("work_mem".into(), "'64kB'".into()),
        ],
        ..Default::default()
    })
    .expect("start the planted cluster");
    let c = &cluster;
    c.psql(
        "postgres",
        "CREATE TABLE users (id int PRIMARY KEY, email text, created_at timestamptz);
         INSERT INTO users SELECT g, 'u' || g || '@example.org', now() FROM generate_series(1, 20000) g;
         CREATE INDEX users_email_idx ON users (email);
         CREATE INDEX users_email_idx2 ON users (email);
         CREATE TABLE orders (id bigint PRIMARY KEY, user_id int REFERENCES users (id),
                              status text, total numeric);
         INSERT INTO orders SELECT g, 1 + g % 20000, (ARRAY['new','paid','sent'])[1 + g % 3], g % 997
           FROM generate_series(1, 300000) g;
         CREATE INDEX orders_status_idx ON orders (status);
         CREATE INDEX orders_status_total_idx ON orders (status, total);
         CREATE INDEX orders_total_idx ON orders (total);
         CREATE FUNCTION orders_audit() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER orders_audit AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_audit();
         ALTER TABLE orders DISABLE TRIGGER orders_audit;
         CREATE TABLE events (id int, payload text) WITH (autovacuum_enabled = false);
         INSERT INTO events SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
         ANALYZE events;
         DELETE FROM events WHERE id % 10 < 6;
         CREATE TABLE imports (id int, line text);
         INSERT INTO imports SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
         CREATE TABLE history (id int, note text);
         INSERT INTO history SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
         CREATE INDEX history_id_idx ON history (id);
         DELETE FROM history WHERE id % 4 <> 0;
         CREATE TABLE tickets (id serial PRIMARY KEY);
         SELECT setval('tickets_id_seq', 2000000000);
         CREATE TABLE dupes (v int);
         INSERT INTO dupes VALUES (1), (1);",
    )
    .expect("plant tables");
    // VACUUM cannot run in a transaction block: its own calls.
    c.psql("postgres", "VACUUM ANALYZE history")
        .expect("vacuum history");
    c.psql(
        "postgres",
        "VACUUM ANALYZE users; VACUUM ANALYZE orders; ANALYZE tickets; ANALYZE dupes",
    )
    .expect("vacuum the rest");
    // Fails on the duplicate value and leaves the index behind, invalid.
    assert!(c
        .psql(
            "postgres",
            "CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v)"
        )
        .is_err());
    // An inactive slot that reserved WAL at creation, then WAL past it.
    c.psql(
        "postgres",
        "SELECT pg_create_physical_replication_slot('gone_standby', true)",
    )
    .expect("create slot");
    for _ in 0..3 {
        c.psql(
            "postgres",
            "INSERT INTO imports SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
             SELECT pg_switch_wal();",
        )
        .expect("switch WAL");
    }

    let work = client(c).await;
    // Large sequential scans; the duplicate index's twin, the prefix index's cover and the
    // bloated index scanned once each so they are not merely unused; the spill and the slow
    // statement.
    for _ in 0..60 {
        work.query("SELECT count(*) FROM orders WHERE total + 0 > 500", &[])
            .await
            .expect("seq scan");
    }
    work.batch_execute(
        "SET enable_seqscan = off;
         SELECT count(*) FROM users WHERE email = 'u1@example.org';
         SELECT count(*) FROM orders WHERE status = 'new' AND total = 3;
         SELECT count(*) FROM history WHERE id = 4;
         RESET enable_seqscan;",
    )
    .await
    .expect("index scans");
    for _ in 0..3 {
        work.query(
            "SELECT id FROM orders ORDER BY user_id DESC, id LIMIT 100000",
            &[],
        )
        .await
        .expect("spill");
        work.query("SELECT pg_sleep(0.25)", &[])
            .await
            .expect("slow statement");
    }
    // A poor hit ratio: the 20 MB orders table through 1 MB of shared buffers, already read
    // above; read it a few more times.
    for _ in 0..5 {
        work.query("SELECT sum(total) FROM orders", &[])
            .await
            .expect("read orders");
    }

    // The horizon holders: a prepared transaction and an idle writer holding an XID.
    let prepared = client(c).await;
    prepared
        .batch_execute(
            "BEGIN; INSERT INTO users VALUES (900001, 'prepared@example.org', now());
             PREPARE TRANSACTION 'planted_gid'",
        )
        .await
        .expect("prepare");
    let writer = client(c).await;
    writer
        .batch_execute("BEGIN; UPDATE users SET email = 'w@example.org' WHERE id = 1")
        .await
        .expect("writer");
    let writer_pid = pid(&writer).await;
    // Transaction IDs burned past 90 % of autovacuum_freeze_max_age (100,000).
    c.psql(
        "postgres",
        "DO $$ BEGIN FOR i IN 1..92000 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$;",
    )
    .expect("burn xids");
    // The waiter: its xmin is the writer's XID; it is a victim, never the cause.
    let waiter = client(c).await;
    let waiter_pid = pid(&waiter).await;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(async move {
        let _ = waiter
            .query("UPDATE users SET email = 'v@example.org' WHERE id = 1", &[])
            .await;
    }));
    let long = client(c).await;
    let long_query_pid = pid(&long).await;
    tasks.push(tokio::spawn(async move {
        let _ = long.query("SELECT pg_sleep(600)", &[]).await;
    }));
    work.batch_execute("SELECT pg_stat_force_next_flush(); SELECT pg_switch_wal()")
        .await
        .expect("flush");
    // Let the sessions age past a one-second threshold and the archiver fail at least once.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    Planted {
        cluster,
        writer_pid,
        waiter_pid,
        long_query_pid,
        gid: "planted_gid",
        clients: vec![work, prepared, writer],
        tasks,
    }
}
