//! pg_settings, every row this role may read.

use super::{get, Outcome};
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
