//! Sequences close to exhaustion.
//!
//! The limit is the tighter of the sequence's own bound and the bound of the column it feeds:
//! a bigint sequence feeding an integer column fails at 2147483647, not at 2^63 − 1. For a
//! negative increment the lower bounds count. A cycling sequence only matters when the column
//! type, not the sequence, is the binding limit (it would fail before cycling).

use super::{num, pct, Finding, Severity, Thresholds};
use crate::ident::QualifiedName;
use crate::plan::{Lock, Step};
use crate::snapshot::{Sequence, Snapshot};

pub const RULE: &str = "sequence_exhaustion";
const DOCS: &str = "https://www.postgresql.org/docs/current/datatype-numeric.html#DATATYPE-INT";

/// (min, max) of an integer type by name, or None for numeric and others without a bound.
fn type_bounds(type_name: &str) -> Option<(i64, i64)> {
    match type_name.trim().to_ascii_lowercase().as_str() {
        "smallint" | "int2" | "smallserial" => Some((i16::MIN as i64, i16::MAX as i64)),
        "integer" | "int" | "int4" | "serial" => Some((i32::MIN as i64, i32::MAX as i64)),
        "bigint" | "int8" | "bigserial" => Some((i64::MIN, i64::MAX)),
        _ => None,
    }
}

struct Usage {
    limit: i64,
    ratio: f64,
    column_binds: bool,
}

fn usage(seq: &Sequence, last: i64) -> Usage {
    let column = seq.column.as_ref().and_then(|c| type_bounds(&c.data_type));
    if seq.increment_by >= 0 {
        let col_max = column.map_or(i64::MAX, |b| b.1);
        let limit = seq.max_value.min(col_max);
        Usage {
            limit,
            ratio: if last <= 0 || limit <= 0 {
                0.0
            } else {
                last as f64 / limit as f64
            },
            column_binds: col_max < seq.max_value,
        }
    } else {
        let col_min = column.map_or(i64::MIN, |b| b.0);
        let limit = seq.min_value.max(col_min);
        Usage {
            limit,
            ratio: if last >= 0 || limit >= 0 {
                0.0
            } else {
                last as f64 / limit as f64
            },
            column_binds: col_min > seq.min_value,
        }
    }
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    snap.sequences
        .iter()
        .filter_map(|seq| {
            let last = seq.last_value?;
            let u = usage(seq, last);
            if seq.cycle && !u.column_binds {
                return None;
            }
            let (severity, threshold) = if u.ratio >= th.sequence_critical_ratio {
                (Severity::Critical, th.sequence_critical_ratio)
            } else if u.ratio >= th.sequence_warning_ratio {
                (Severity::Warning, th.sequence_warning_ratio)
            } else {
                return None;
            };
            let seq_name = QualifiedName::new(&seq.schema, &seq.name);
            let object = format!("{}.{}", seq.schema, seq.name);
            let (bound_by, step, sql) = match &seq.column {
                Some(col) if u.column_binds || seq.data_type != "bigint" => {
                    let table = QualifiedName::new(&col.schema, &col.table);
                    let column = crate::ident::Ident::new(&col.column);
                    let mut sql = Vec::new();
                    if type_bounds(&col.data_type).is_some_and(|b| b.1 < i64::MAX) {
                        sql.push(Step::sql(
                            format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE bigint"),
                            Lock::AccessExclusive,
                            true,
                        ));
                    }
                    if seq.data_type != "bigint" {
                        sql.push(Step::sql(
                            format!("ALTER SEQUENCE {seq_name} AS bigint"),
                            Lock::None,
                            true,
                        ));
                    }
                    let bound_by = if u.column_binds {
                        format!("column {}.{}.{} ({})", col.schema, col.table, col.column, col.data_type)
                    } else {
                        format!("sequence type {}", seq.data_type)
                    };
                    (
                        bound_by,
                        format!(
                            "Move {}.{}.{} and the sequence to bigint before it runs out (ALTER COLUMN ... TYPE rewrites the table under an ACCESS EXCLUSIVE lock: plan a window or migrate through a new column)",
                            col.schema, col.table, col.column
                        ),
                        (!sql.is_empty()).then_some(sql),
                    )
                }
                _ if seq.data_type != "bigint" => (
                    format!("sequence type {}", seq.data_type),
                    "Move the sequence to bigint before it runs out".to_string(),
                    Some(vec![Step::sql(
                        format!("ALTER SEQUENCE {seq_name} AS bigint"),
                        Lock::None,
                        true,
                    )]),
                ),
                _ => (
                    "the sequence's own bound".to_string(),
                    "Raise the sequence's bound (ALTER SEQUENCE ... MAXVALUE/MINVALUE) or plan new keys before it runs out".to_string(),
                    None,
                ),
            };
            let mut f = Finding::new(
                RULE,
                severity,
                object.clone(),
                format!(
                    "sequence {object} is at {last}, {} of its limit {} set by {bound_by} (threshold {})",
                    pct(u.ratio),
                    u.limit,
                    pct(threshold)
                ),
            )
            .evidence("last_value", last)
            .evidence("limit", u.limit)
            .evidence("used_ratio", num(u.ratio))
            .evidence("percent", num(u.ratio * 100.0))
            .evidence("increment_by", seq.increment_by)
            .evidence("sequence_type", seq.data_type.clone())
            .evidence("column_type", seq.column.as_ref().map(|c| c.data_type.clone()))
            .evidence("cycle", seq.cycle)
            .next_step(step)
            .docs(DOCS);
            if let Some(sql) = sql {
                f = f.fixes(sql);
            }
            Some(f)
        })
        .collect()
}
