//! The demo's sample database: a small governance schema with realistic data, a few
//! problems planted in it, and a short workload so that pg_stat_statements has something to
//! say. Used by `pgopt demo` and by the integration tests that check every planted problem
//! is found.

use tokio_postgres::error::SqlState;

use crate::db::Conn;
use crate::error::{Error, Result};

const SCHEMA: &str = include_str!("sql/demo/schema.sql");
const PROBLEMS: &str = include_str!("sql/demo/problems.sql");

/// The database the demo creates.
pub const DATABASE: &str = "pgopt_demo";

/// What [`prepare`] planted, for people and for tests: (rule id, object).
pub const PLANTED: &[(&str, &str)] = &[
    ("fk_missing_index", "public.security_events"),
    // Of the two identical indexes on users.email the workload scans users_email_lookup:
    // that one stays, the unscanned copy goes.
    ("duplicate_index", "public.users_email_idx"),
    ("redundant_index", "public.audit_logs_resource_type_idx"),
    // audit_logs_occurred_at_idx is never scanned, but the demo's statistics are minutes old:
    // pgopt says so and waits (unused_index needs a week of statistics) instead of advising
    // a drop.
    ("unused_index_window_short", "database "),
    ("invalid_index", "public.users_role_key"),
    ("sequence_exhaustion", "public.policy_rules_id_seq"),
    ("autovacuum_behind", "public.security_events"),
    ("stale_statistics", "public.security_events"),
    ("seq_scan_heavy_table", "public.audit_logs"),
    ("statement_temp_spill", "queryid"),
    ("slow_statement_total_time", "queryid"),
];

/// Creates the schema and data, plants the problems and runs the workload.
pub async fn prepare(conn: &Conn) -> Result<()> {
    conn.batch("creating the demo schema", SCHEMA).await?;
    conn.batch("planting the demo's problems", PROBLEMS).await?;
    plant_invalid_index(conn).await?;
    // Start the statistics from the workload, not from the set-up.
    conn.query(
        "resetting pg_stat_statements",
        "SELECT pg_stat_statements_reset()",
        &[],
    )
    .await?;
    workload(conn).await?;
    if conn.server_version_num >= 150000 {
        // Statistics reach the shared views asynchronously; flush ours now (PG 15+).
        conn.query(
            "flushing statistics",
            "SELECT pg_stat_force_next_flush()",
            &[],
        )
        .await?;
    }
    Ok(())
}

/// A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an INVALID index behind: the classic
/// leftover of an interrupted migration.
async fn plant_invalid_index(conn: &Conn) -> Result<()> {
    match conn
        .batch(
            "planting an invalid index",
            "CREATE UNIQUE INDEX CONCURRENTLY users_role_key ON users (role)",
        )
        .await
    {
        Err(e) if e.sqlstate() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(()),
        Err(e) => Err(e),
        Ok(()) => Err(Error::Internal(
            "the demo's duplicate roles were expected to make the unique index fail".into(),
        )),
    }
}

/// A short mixed workload: lookups through the duplicate index, scans of an unindexed
/// column, sorts that spill to disk, and writes.
async fn workload(conn: &Conn) -> Result<()> {
    let c = conn.client();
    let by_email = c
        .prepare("SELECT id, username FROM users WHERE email = $1")
        .await
        .map_err(|e| Error::query("preparing the demo workload", e))?;
    let by_actor = c
        .prepare(
            "SELECT id, action, occurred_at FROM audit_logs WHERE actor_id = $1 \
             ORDER BY occurred_at DESC LIMIT 20",
        )
        .await
        .map_err(|e| Error::query("preparing the demo workload", e))?;
    let by_user = c
        .prepare("SELECT count(*) FROM security_events WHERE user_id = $1")
        .await
        .map_err(|e| Error::query("preparing the demo workload", e))?;
    let record = c
        .prepare(
            "INSERT INTO security_events (user_id, event_type, severity, occurred_at) \
             VALUES ($1, 'login', 'low', now())",
        )
        .await
        .map_err(|e| Error::query("preparing the demo workload", e))?;
    for i in 0..200i32 {
        let email = format!("user{}@example.org", 1 + (i * 37) % 5000);
        c.query(&by_email, &[&email])
            .await
            .map_err(|e| Error::query("demo workload", e))?;
        c.execute(&record, &[&(1 + (i * 13) % 5000)])
            .await
            .map_err(|e| Error::query("demo workload", e))?;
    }
    for i in 0..100i32 {
        c.query(&by_actor, &[&(1 + i * 191)])
            .await
            .map_err(|e| Error::query("demo workload", e))?;
        c.query(&by_user, &[&(1 + i * 173)])
            .await
            .map_err(|e| Error::query("demo workload", e))?;
    }
    // A report sorted in too little memory: temp files.
    conn.batch("demo workload", "SET work_mem = '64kB'").await?;
    for _ in 0..2 {
        conn.query(
            "demo workload",
            "SELECT count(DISTINCT payload->>'note') FROM audit_logs",
            &[],
        )
        .await?;
    }
    conn.batch("demo workload", "RESET work_mem").await?;
    Ok(())
}
