//! pg_settings, every row this role may read.

use super::{get, Outcome};
use tokio_postgres::error::SqlState;

use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Setting;

const SQL: &str = include_str!("../sql/settings.sql");
const S: &str = "settings";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<Setting>>> {
    let rows = conn.query("reading pg_settings", SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(Setting {
                name: get(r, S, "name")?,
                setting: get(r, S, "setting")?,
                unit: get(r, S, "unit")?,
                vartype: get(r, S, "vartype")?,
                source: get(r, S, "source")?,
                context: get(r, S, "context")?,
                boot_val: get(r, S, "boot_val")?,
                reset_val: get(r, S, "reset_val")?,
                pending_restart: get(r, S, "pending_restart")?,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}

/// Whether the server accepts `wal_compression = lz4` (PostgreSQL 15+, built with lz4): tried
/// with SET LOCAL, which the section's savepoint rolls back at once. Skipped when the role may
/// not set wal_compression (superusers, or GRANT SET ON PARAMETER).
pub(crate) async fn accepts_lz4(conn: &Conn) -> Result<Outcome<bool>> {
    match conn
        .batch(
            "trying wal_compression = lz4",
            "SET LOCAL wal_compression = lz4",
        )
        .await
    {
        Ok(()) => Ok(Outcome::Collected(true)),
        Err(e) if e.sqlstate() == Some(&SqlState::INVALID_PARAMETER_VALUE) => {
            Ok(Outcome::Collected(false))
        }
        Err(e) if e.sqlstate() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => Ok(Outcome::skipped(
            "wal_compression may be set by superusers only, so whether the server takes lz4 was not tried",
            "connect as a superuser, or have one run GRANT SET ON PARAMETER wal_compression TO the role pgopt connects as",
        )),
        Err(e) => Err(e),
    }
}
