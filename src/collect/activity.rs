//! Connections and the sessions worth a look (active, idle in transaction, waiting, or
//! holding an XID or an xmin, with the ages of both for the xmin horizon).
//!
//! Ages are computed on the server (`now() - x`), so client and server clocks never mix.
//! pgopt's own backend, autovacuum workers and walsenders are left out of the session list;
//! sessions of roles whose activity this role may not see are listed without state or text.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{Activity, Session, StateCount};

const CONNECTIONS_SQL: &str = include_str!("../sql/connections.sql");
const STATES_SQL: &str = include_str!("../sql/activity_states.sql");
const SESSIONS_SQL: &str = include_str!("../sql/activity_sessions.sql");
const S: &str = "activity";

pub(crate) async fn collect(conn: &Conn, max_query_chars: usize) -> Result<Outcome<Activity>> {
    let row = conn
        .query_one("reading connection counts", CONNECTIONS_SQL, &[])
        .await?;
    let by_state = conn
        .query("counting sessions by state", STATES_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(StateCount {
                state: get(r, S, "state")?,
                wait_event_type: get(r, S, "wait_event_type")?,
                wait_event: get(r, S, "wait_event")?,
                count: get(r, S, "count")?,
            })
        })
        .collect::<Result<_>>()?;
    let max = i32::try_from(max_query_chars).unwrap_or(i32::MAX);
    let sessions = conn
        .query("reading sessions", SESSIONS_SQL, &[&max])
        .await?
        .iter()
        .map(|r| {
            Ok(Session {
                pid: get(r, S, "pid")?,
                database: get(r, S, "database")?,
                user: get(r, S, "user")?,
                application_name: get(r, S, "application_name")?,
                client_addr: get(r, S, "client_addr")?,
                backend_type: get(r, S, "backend_type")?,
                state: get(r, S, "state")?,
                wait_event_type: get(r, S, "wait_event_type")?,
                wait_event: get(r, S, "wait_event")?,
                xact_age_seconds: get(r, S, "xact_age_seconds")?,
                query_age_seconds: get(r, S, "query_age_seconds")?,
                state_age_seconds: get(r, S, "state_age_seconds")?,
                backend_xmin_age: get(r, S, "backend_xmin_age")?,
                backend_xid_age: get(r, S, "backend_xid_age")?,
                blocked_by: get(r, S, "blocked_by")?,
                query: get(r, S, "query")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Outcome::Collected(Activity {
        max_connections: get(&row, S, "max_connections")?,
        superuser_reserved_connections: get(&row, S, "superuser_reserved_connections")?,
        total_connections: get(&row, S, "total_connections")?,
        by_state,
        sessions,
    }))
}
