//! pg_stat_database joined with pg_database: counters and wraparound ages per database.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::DatabaseStats;

const SQL: &str = include_str!("../sql/databases.sql");
const S: &str = "databases";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<DatabaseStats>>> {
    let rows = conn.query("reading pg_stat_database", SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(DatabaseStats {
                name: get(r, S, "name")?,
                numbackends: get(r, S, "numbackends")?,
                xact_commit: get(r, S, "xact_commit")?,
                xact_rollback: get(r, S, "xact_rollback")?,
                blks_read: get(r, S, "blks_read")?,
                blks_hit: get(r, S, "blks_hit")?,
                temp_files: get(r, S, "temp_files")?,
                temp_bytes: get(r, S, "temp_bytes")?,
                deadlocks: get(r, S, "deadlocks")?,
                conflicts: get(r, S, "conflicts")?,
                stats_reset: get(r, S, "stats_reset")?,
                frozenxid_age: get(r, S, "frozenxid_age")?,
                minmxid_age: get(r, S, "minmxid_age")?,
                allow_connections: get(r, S, "allow_connections")?,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}
