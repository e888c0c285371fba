//! The session advisory lock every pgopt change to a server runs under, so that two runs
//! (two `tune --apply`, a rollback and an index build, ...) never change one server at once.
//! The second waits a bounded time, then refuses naming the holder.

use std::time::{Duration, Instant};

use crate::db::Conn;
use crate::error::{Error, Result};

/// The lock's two keys (pg_advisory_lock(int, int)): "pgop" and 1. Fixed, so that the
/// holder can be found in pg_locks.
const KEY: (i32, i32) = (0x7067_6f70, 1);

/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(100);

/// Takes the lock, waiting up to `wait`. Refused (bad input, exit code 2) naming the pid and
/// application_name of the session that holds it.
pub async fn acquire(conn: &Conn, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let got: bool = conn
            .query_one(
                "taking the pgopt advisory lock",
                "SELECT pg_try_advisory_lock($1, $2)",
                &[&KEY.0, &KEY.1],
            )
            .await?
            .get(0);
        if got {
            return Ok(());
        }
        if start.elapsed() >= wait {
            return Err(refused(conn, wait).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn refused(conn: &Conn, wait: Duration) -> Error {
    let holder = conn
        .query_opt(
            "finding who holds the pgopt advisory lock",
            "SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
             coalesce(a.client_addr::text, 'local') \
             FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid \
             AND l.objid = $2::int::oid AND l.objsubid = 2 LIMIT 1",
            &[&KEY.0, &KEY.1],
        )
        .await;
    let who = match holder {
        Ok(Some(r)) => {
            let (pid, app, user, addr): (i32, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            format!("pid {pid}, application_name '{app}', user {user}, from {addr}")
        }
        Ok(None) => "a session that has just released it".to_string(),
        Err(e) => format!("a session pgopt could not name ({e})"),
    };
    Error::BadInput(format!(
        "another pgopt run is changing this server ({who}); waited {} s for it; nothing was \
         changed. Let it finish and run again (or end that session if it is stuck: SELECT \
         pg_terminate_backend(PID))",
        wait.as_secs_f64().round()
    ))
}

/// Releases the lock; a failure is only logged (the session's end releases it anyway).
pub async fn release(conn: &Conn) {
    let r = conn
        .query_one(
            "releasing the pgopt advisory lock",
            "SELECT pg_advisory_unlock($1, $2)",
            &[&KEY.0, &KEY.1],
        )
        .await;
    if let Err(e) = r {
        tracing::warn!("{e}");
    }
}
