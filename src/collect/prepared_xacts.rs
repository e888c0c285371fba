//! Prepared transactions (two-phase commit): each keeps its XID, holding back the xmin
//! horizon, and its locks until someone runs COMMIT PREPARED or ROLLBACK PREPARED, even across
//! a restart. pg_prepared_xacts lists those of every database; their locks show in pg_locks
//! under a dummy backend with no pid.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::PreparedXact;

const SQL: &str = include_str!("../sql/prepared_xacts.sql");
const S: &str = "prepared_xacts";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<PreparedXact>>> {
    conn.query("reading pg_prepared_xacts", SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(PreparedXact {
                gid: get(r, S, "gid")?,
                owner: get(r, S, "owner")?,
                database: get(r, S, "database")?,
                age_seconds: get(r, S, "age_seconds")?,
                xid_age: get(r, S, "xid_age")?,
                locks: get(r, S, "locks")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Outcome::Collected)
}
