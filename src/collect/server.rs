//! Version, uptime, recovery state, data directory and database sizes.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{DatabaseSize, ServerInfo};

const SQL: &str = include_str!("../sql/server.sql");
const SIZES_SQL: &str = include_str!("../sql/database_sizes.sql");
const S: &str = "server";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<ServerInfo>> {
    let row = conn.query_one("reading the server facts", SQL, &[]).await?;
    let database_sizes = conn
        .query("reading database sizes", SIZES_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(DatabaseSize {
                name: get(r, S, "name")?,
                size_bytes: get(r, S, "size_bytes")?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Outcome::Collected(ServerInfo {
        version: get(&row, S, "version")?,
        version_num: get(&row, S, "version_num")?,
        started_at: get(&row, S, "started_at")?,
        uptime_seconds: get(&row, S, "uptime_seconds")?,
        in_recovery: get(&row, S, "in_recovery")?,
        data_directory: get(&row, S, "data_directory")?,
        database_sizes,
    }))
}
