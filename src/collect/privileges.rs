//! The connected role and the predefined roles that decide what it may see.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Privileges;

const SQL: &str = include_str!("../sql/privileges.sql");
const S: &str = "privileges";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Privileges>> {
    let row = conn
        .query_one("reading the role's privileges", SQL, &[])
        .await?;
    Ok(Outcome::Collected(Privileges {
        role: get(&row, S, "role")?,
        is_superuser: get(&row, S, "is_superuser")?,
        pg_monitor: get(&row, S, "pg_monitor")?,
        pg_read_all_stats: get(&row, S, "pg_read_all_stats")?,
        pg_read_all_settings: get(&row, S, "pg_read_all_settings")?,
    }))
}
