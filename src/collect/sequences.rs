//! Sequences, their limits and the column each feeds, for the exhaustion rule.
//!
//! last_value is read only where has_sequence_privilege allows it (the test pg_sequences
//! itself makes), so a sequence this role may not read gives NULL instead of failing the
//! whole section.

use super::{get, Outcome};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{Sequence, SequenceColumn};

const SQL: &str = include_str!("../sql/sequences.sql");
const S: &str = "sequences";

pub(crate) async fn collect(conn: &Conn, locked: &[u32]) -> Result<Outcome<Vec<Sequence>>> {
    let rows = conn.query("reading sequences", SQL, &[&locked]).await?;
    rows.iter()
        .map(|r| {
            let table: Option<String> = get(r, S, "column_table")?;
            let column = match table {
                Some(table) => Some(SequenceColumn {
                    schema: get(r, S, "column_schema")?,
                    table,
                    column: get(r, S, "column_name")?,
                    data_type: get(r, S, "column_type")?,
                }),
                None => None,
            };
            Ok(Sequence {
                schema: get(r, S, "schema")?,
                name: get(r, S, "name")?,
                data_type: get(r, S, "data_type")?,
                last_value: get(r, S, "last_value")?,
                min_value: get(r, S, "min_value")?,
                max_value: get(r, S, "max_value")?,
                increment_by: get(r, S, "increment_by")?,
                cycle: get(r, S, "cycle")?,
                column,
            })
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}
