//! pg_settings, every row this role may read.

use super::{get, Outcome};
use tokio_postgres::error::SqlState;

use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{RoleSetting, Setting, SettingDomain, Snapshot, StatsWindow};

const SQL: &str = include_str!("../sql/settings.sql");
const DOMAINS_SQL: &str = include_str!("../sql/setting_domains.sql");
const ROLE_SETTINGS_SQL: &str = include_str!("../sql/role_settings.sql");
const S: &str = "settings";

/// pg_db_role_setting, names resolved (readable by every role).
pub(crate) async fn collect_role_settings(conn: &Conn) -> Result<Outcome<Vec<RoleSetting>>> {
    let rows = conn
        .query("reading pg_db_role_setting", ROLE_SETTINGS_SQL, &[])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(RoleSetting {
                database: get(r, "role_settings", "database")?,
                role: get(r, "role_settings", "role")?,
                config: get(r, "role_settings", "config")?,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}

/// How long the connected database's statistics have counted: since its stats_reset, else
/// since the server started. Derived from sections already read (no I/O).
pub(crate) fn stats_window(snap: &Snapshot) -> Option<StatsWindow> {
    let db = snap.current_database()?;
    let (seconds, since) = match db.stats_reset {
        Some(r) => (
            (snap.collected_at - r).num_milliseconds() as f64 / 1000.0,
            "stats_reset",
        ),
        None => (snap.server.as_ref()?.uptime_seconds, "server start"),
    };
    Some(StatsWindow {
        seconds: seconds.max(0.0),
        since: since.to_string(),
    })
}

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

/// The range, enum values and source file of every pg_settings row this role may read.
pub(crate) async fn collect_domains(conn: &Conn) -> Result<Outcome<Vec<SettingDomain>>> {
    const D: &str = "setting_domains";
    let rows = conn
        .query("reading pg_settings ranges", DOMAINS_SQL, &[])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SettingDomain {
                name: get(r, D, "name")?,
                min_val: get(r, D, "min_val")?,
                max_val: get(r, D, "max_val")?,
                enumvals: get(r, D, "enumvals")?,
                sourcefile: get(r, D, "sourcefile")?,
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
