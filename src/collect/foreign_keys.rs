//! Foreign keys with their columns in key order, for the unindexed-FK rule.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::ForeignKey;

const SQL: &str = include_str!("../sql/foreign_keys.sql");
const S: &str = "foreign_keys";

pub(crate) async fn collect(conn: &Conn) -> Result<Outcome<Vec<ForeignKey>>> {
    let rows = conn.query("reading foreign keys", SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(ForeignKey {
                schema: get(r, S, "schema")?,
                table: get(r, S, "table")?,
                name: get(r, S, "name")?,
                columns: get(r, S, "columns")?,
                attnums: get(r, S, "attnums")?,
                ref_schema: get(r, S, "ref_schema")?,
                ref_table: get(r, S, "ref_table")?,
                ref_columns: get(r, S, "ref_columns")?,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}
