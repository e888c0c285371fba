//! Triggers written by users on user tables, with whether each fires (pg_trigger.tgenabled)
//! and the function it runs. Internal triggers (foreign keys, deferred uniqueness) are left
//! out: they belong to their constraints.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::Trigger;

const SQL: &str = include_str!("../sql/triggers.sql");
const S: &str = "triggers";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<Trigger>>> {
    conn.query("reading pg_trigger", SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(Trigger {
                schema: get(r, S, "schema")?,
                table: get(r, S, "table")?,
                name: get(r, S, "name")?,
                enabled: get(r, S, "enabled")?,
                function: get(r, S, "function")?,
                is_constraint: get(r, S, "is_constraint")?,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}
