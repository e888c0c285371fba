//! The light sample: a handful of cheap catalog reads over one kept connection, every
//! `intervals.sample`. It reads, it never writes, and it never reads query texts except for
//! the few statements it has not named yet.
//!
//! Each read is one round trip (`query_typed`, no prepare). The database sizes stat every
//! file of every database, so they are read only every [`SIZES_EVERY`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::Row;

use super::raw::{DbCounters, Identity, Raw, StatementCounters, StatementsRaw};
use crate::collect::{cut, get};
use crate::db::Conn;
use crate::error::Result;
use crate::ident::Ident;
use crate::serve::model::{m, StatementDelta, Ts};

const SERVER_SQL: &str = include_str!("../../sql/serve_server.sql");
const ACTIVITY_SQL: &str = include_str!("../../sql/serve_activity.sql");
const DATABASES_SQL: &str = include_str!("../../sql/serve_databases.sql");
const SIZES_SQL: &str = include_str!("../../sql/serve_database_sizes.sql");
const STATEMENTS_SQL: &str = include_str!("../../sql/serve_statements.sql");
const STATEMENTS_INFO_SQL: &str = include_str!("../../sql/serve_statements_info.sql");
const SEARCH_PATH_SQL: &str = include_str!("../../sql/serve_search_path.sql");
const EXTENSION_SQL: &str = include_str!("../../sql/statements_extension.sql");
const TEXTS_SQL: &str = include_str!("../../sql/statements_texts.sql");

/// How often the database sizes are read (pg_database_size stats every file).
pub const SIZES_EVERY: Duration = Duration::from_secs(5 * 60);
/// Query texts kept per target are cut to this many characters.
pub const MAX_QUERY_CHARS: usize = 2000;
const S: &str = "light sample";

/// What one kept connection has learned: the search_path it set for pg_stat_statements,
/// and the texts of the statements it has named. Dropped with the connection.
#[derive(Debug, Default)]
pub struct Session {
    /// The schema of pg_stat_statements put on search_path (after pg_catalog).
    search_path_schema: Option<String>,
    texts: HashMap<i64, String>,
}

/// Reads one sample's raw values. `at`: the daemon's time of it; `with_sizes`: also read
/// the database sizes.
pub async fn read(conn: &Conn, session: &mut Session, at: Ts, with_sizes: bool) -> Result<Raw> {
    let server = conn
        .query_typed("reading the server's state", SERVER_SQL, &[])
        .await?;
    let server = server
        .first()
        .ok_or_else(|| crate::error::Error::Internal(format!("{S}: no row")))?;
    let mut values: BTreeMap<String, f64> = BTreeMap::new();
    let mut keyed: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();

    let activity = conn
        .query_typed("reading the sessions by state", ACTIVITY_SQL, &[])
        .await?;
    let mut connections = 0.0;
    let by_state = keyed
        .entry(m::CONNECTIONS_BY_STATE.to_string())
        .or_default();
    let mut waiting: BTreeMap<String, f64> = BTreeMap::new();
    for r in &activity {
        let state: String = get(r, S, "state")?;
        let wait: Option<String> = get(r, S, "wait_event_type")?;
        let n: f64 = get(r, S, "count")?;
        connections += n;
        *by_state.entry(state.clone()).or_default() += n;
        if let (true, Some(wait)) = (state == "active", wait) {
            *waiting.entry(wait).or_default() += n;
        }
    }
    keyed.insert(m::CONNECTIONS_WAITING_BY_EVENT.to_string(), waiting);
    values.insert(m::CONNECTIONS.to_string(), connections);
    let max: f64 = get(server, S, "max_connections")?;
    let reserved: f64 = get(server, S, "reserved_connections")?;
    values.insert(m::MAX_CONNECTIONS.to_string(), max);
    if max - reserved > 0.0 {
        values.insert(
            m::CONNECTIONS_USED_RATIO.to_string(),
            connections / (max - reserved),
        );
    }
    values.insert(
        m::LOCKS_WAITING.to_string(),
        get::<f64>(server, S, "locks_waiting")?,
    );
    for (metric, column) in [
        (m::OLDEST_XACT_SECONDS, "oldest_xact_seconds"),
        (m::REPLICATION_LAG_SECONDS, "replication_lag_seconds"),
    ] {
        if let Some(v) = get::<Option<f64>>(server, S, column)? {
            values.insert(metric.to_string(), v.max(0.0));
        }
    }

    let databases = conn
        .query_typed("reading pg_stat_database", DATABASES_SQL, &[])
        .await?
        .iter()
        .map(|r| Ok((get::<i64>(r, S, "datid")?, db_counters(r)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;

    if with_sizes {
        let row = conn
            .query_typed("reading the database sizes", SIZES_SQL, &[])
            .await?;
        if let Some(r) = row.first() {
            values.insert(m::DATABASE_SIZE_BYTES.to_string(), get(r, S, "bytes")?);
        }
    }

    let statements = read_statements(conn, session).await?;

    Ok(Raw {
        at,
        server_now: get(server, S, "server_now")?,
        identity: Identity {
            postmaster_start: get(server, S, "postmaster_start")?,
            in_recovery: get(server, S, "in_recovery")?,
            timeline: get(server, S, "timeline")?,
            system_identifier: get(server, S, "system_identifier")?,
            version: get(server, S, "version")?,
        },
        values,
        keyed,
        databases,
        wal_bytes: get(server, S, "wal_bytes")?,
        block_size: get(server, S, "block_size")?,
        statements,
    })
}

fn db_counters(r: &Row) -> Result<DbCounters> {
    Ok(DbCounters {
        xact_commit: get(r, S, "xact_commit")?,
        xact_rollback: get(r, S, "xact_rollback")?,
        blks_read: get(r, S, "blks_read")?,
        blks_hit: get(r, S, "blks_hit")?,
        tup_returned: get(r, S, "tup_returned")?,
        tup_inserted: get(r, S, "tup_inserted")?,
        tup_updated: get(r, S, "tup_updated")?,
        tup_deleted: get(r, S, "tup_deleted")?,
        deadlocks: get(r, S, "deadlocks")?,
        temp_bytes: get(r, S, "temp_bytes")?,
        stats_reset: get(r, S, "stats_reset")?,
    })
}

/// pg_stat_statements' counters when the extension is installed in this database and
/// loaded; None otherwise (the sample goes on without statements).
async fn read_statements(conn: &Conn, session: &mut Session) -> Result<Option<StatementsRaw>> {
    let ext = conn
        .query_typed("looking for pg_stat_statements", EXTENSION_SQL, &[])
        .await?;
    let Some(ext) = ext.first() else {
        return Ok(None);
    };
    let version: String = get(ext, S, "version")?;
    let schema: String = get(ext, S, "schema")?;
    let (major, minor) = parse_version(&version);
    if (major, minor) < (1, 8) {
        return Ok(None);
    }
    if session.search_path_schema.as_deref() != Some(schema.as_str()) {
        // pg_catalog first: nothing in the extension's schema can shadow a catalog function.
        let path = format!("pg_catalog, {}", Ident::new(&schema));
        conn.query_typed(
            "setting search_path for pg_stat_statements",
            SEARCH_PATH_SQL,
            &[(&path, Type::TEXT)],
        )
        .await?;
        session.search_path_schema = Some(schema);
    }
    let rows = match conn
        .query_typed("reading pg_stat_statements", STATEMENTS_SQL, &[])
        .await
    {
        Ok(rows) => rows,
        // Installed but not in shared_preload_libraries.
        Err(e) if e.sqlstate() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut entries = HashMap::with_capacity(rows.len());
    for r in &rows {
        entries.insert(
            get::<i64>(r, S, "queryid")?,
            StatementCounters {
                calls: get(r, S, "calls")?,
                total_exec_ms: get(r, S, "total_exec_ms")?,
                rows: get(r, S, "rows")?,
                temp_blks_written: get(r, S, "temp_blks_written")?,
            },
        );
    }
    let (mut stats_reset, mut dealloc) = (None, None);
    if (major, minor) >= (1, 9) {
        let info = conn
            .query_typed("reading pg_stat_statements_info", STATEMENTS_INFO_SQL, &[])
            .await?;
        if let Some(r) = info.first() {
            stats_reset = get(r, S, "stats_reset")?;
            dealloc = get(r, S, "dealloc")?;
        }
    }
    Ok(Some(StatementsRaw {
        stats_reset,
        dealloc,
        entries,
    }))
}

/// Gives each statement its text: from what this session already knows, else read once
/// for all the new ones (pg_stat_statements(true) reads the whole text file, so only
/// then). The cache is emptied when it outgrows `keep` texts.
pub async fn name_statements(
    conn: &Conn,
    session: &mut Session,
    statements: &mut [StatementDelta],
    keep: usize,
) -> Result<()> {
    let mut missing: Vec<i64> = statements
        .iter()
        .map(|s| s.queryid)
        .filter(|id| !session.texts.contains_key(id))
        .collect();
    if !missing.is_empty() {
        if session.texts.len() + missing.len() > keep.max(missing.len()) {
            session.texts.clear();
        }
        missing.sort_unstable();
        let rows = conn
            .query_typed(
                "reading the new top statements' texts",
                TEXTS_SQL,
                &[(&missing, Type::INT8_ARRAY)],
            )
            .await?;
        for r in &rows {
            let id: i64 = get(r, S, "queryid")?;
            if let Some(text) = get::<Option<String>>(r, S, "query")? {
                session
                    .texts
                    .entry(id)
                    .or_insert_with(|| cut(&text, MAX_QUERY_CHARS));
            }
        }
    }
    for s in statements {
        if let Some(t) = session.texts.get(&s.queryid) {
            s.query = t.clone();
        }
    }
    Ok(())
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}
