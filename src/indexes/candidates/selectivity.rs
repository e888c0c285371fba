//! The share of a table's rows a condition keeps, from pg_stats as the planner reads them
//! (<https://www.postgresql.org/docs/current/planner-stats-details.html>), and the partial
//! index predicate a rare constant condition makes.

use crate::indexes::model::{ColumnStats, KeyExpr, Predicate, PredicateOp, Table};

/// How many values an `= ANY($1)` array parameter is assumed to hold.
const ASSUMED_ARRAY_VALUES: f64 = 10.0;

/// The statistics of the key's column (none for an expression or an unanalyzed table).
fn stats<'t>(key: &KeyExpr, table: &'t Table) -> Option<&'t ColumnStats> {
    table.column(key.as_column()?)?.stats.as_ref()
}

/// The share of rows an equality with a parameter keeps: what a generic plan assumes,
/// (1 - null_frac) / n_distinct.
pub(super) fn parameter_share(s: &ColumnStats, rows: f64) -> f64 {
    ((1.0 - s.null_frac) / s.distinct(rows)).clamp(0.0, 1.0)
}

/// The share of rows `key = constant` keeps: the constant's frequency among the most
/// common values, else the planner's estimate for the other values.
fn constant_share(s: &ColumnStats, rows: f64, constant: &str) -> f64 {
    s.frequency_of(&unquote(constant))
        .unwrap_or_else(|| s.equality_selectivity(rows))
}

/// The share of rows a condition keeps, when the statistics tell it.
pub(super) fn share(p: &Predicate, table: &Table) -> Option<f64> {
    let s = stats(&p.key, table)?;
    let rows = table.reltuples.max(1.0);
    let one = |c: &Option<String>| match c {
        Some(c) => constant_share(s, rows, c),
        None => parameter_share(s, rows),
    };
    let share = match &p.op {
        PredicateOp::Eq => one(&p.constant),
        PredicateOp::In { values } => {
            let n = values.map_or(ASSUMED_ARRAY_VALUES, |n| n as f64);
            n * parameter_share(s, rows)
        }
        PredicateOp::Bool { value } => bool_share(s, *value)?,
        PredicateOp::IsNull => s.null_frac,
        PredicateOp::IsNotNull => 1.0 - s.null_frac,
        _ => return None,
    };
    Some(share.clamp(0.0, 1.0))
}

/// The share of rows where a boolean column is `value` (pg_stats shows booleans as t/f).
fn bool_share(s: &ColumnStats, value: bool) -> Option<f64> {
    let (this, other) = if value { ("t", "f") } else { ("f", "t") };
    s.frequency_of(this)
        .or_else(|| s.frequency_of(other).map(|f| 1.0 - f - s.null_frac))
}

/// The text of a constant as pg_stats shows it (`'pending'` -> `pending`; casts dropped).
fn unquote(constant: &str) -> String {
    let Some(body) = constant.strip_prefix('\'') else {
        return constant.split("::").next().unwrap_or(constant).to_string();
    };
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
            } else {
                break;
            }
        }
        out.push(c);
    }
    out
}

/// A constant condition fit to be a partial index's WHERE, with the share it keeps.
pub(super) struct Partial {
    pub key: KeyExpr,
    pub sql: String,
    pub share: f64,
}

/// The rarest constant condition (a boolean, IS NULL, a common value of an enum-like
/// column) keeping at most `max_share` of the rows.
pub(super) fn partial(
    preds: &[Predicate],
    table: &Table,
    max_share: f64,
    max_distinct: f64,
) -> Option<Partial> {
    preds
        .iter()
        .filter_map(|p| {
            let share = share(p, table)?;
            let sql = partial_sql(p, table, max_distinct)?;
            (share <= max_share).then(|| Partial {
                key: p.key.clone(),
                sql,
                share,
            })
        })
        .min_by(|a, b| a.share.total_cmp(&b.share))
}

/// The WHERE text of a partial index on this condition (names quoted), when it is one.
fn partial_sql(p: &Predicate, table: &Table, max_distinct: f64) -> Option<String> {
    let key = match &p.key {
        KeyExpr::Column { .. } => p.key.sql(),
        KeyExpr::Expression { .. } => return None,
    };
    match &p.op {
        PredicateOp::Bool { value: true } => Some(key),
        PredicateOp::Bool { value: false } => Some(format!("NOT {key}")),
        PredicateOp::IsNull => Some(format!("{key} IS NULL")),
        PredicateOp::Eq => {
            let constant = p.constant.as_ref()?;
            let s = stats(&p.key, table)?;
            (s.distinct(table.reltuples.max(1.0)) <= max_distinct)
                .then(|| format!("{key} = {constant}"))
        }
        _ => None,
    }
}
