//! Representative values for the `$n` parameters of a statement from pg_stat_statements, so
//! that `--apply` can time it with EXPLAIN ANALYZE before and after the build (pure).
//!
//! A parameter's value comes from the pg_stats of the column the statement compares it
//! with ([`Shape::params`](super::model::Shape::params)), as PostgreSQL's planner itself
//! reads them ([the planner's statistics](https://www.postgresql.org/docs/current/planner-stats-details.html)):
//!
//! - equality (`=`, `<>`, IN elements, `= ANY`): the most common value (most_common_vals is
//!   sorted by frequency, highest first), the next ones for further IN elements; a column
//!   without common values takes the middle histogram bound. A boolean column takes `true`.
//! - a range takes the histogram bound that keeps about a tenth of the rows, a typical
//!   selective range: the bound at [`LOWER_BOUND_AT`] (90 %) for `>`/`>=`, at
//!   [`UPPER_BOUND_AT`] (10 %) for `<`/`<=`, and [`BETWEEN_AT`] (45 % .. 55 %) for BETWEEN.
//!   Without a histogram (every value is a common one) it takes the most common value.
//! - a LIKE pattern: the equality value, its wildcards escaped, followed by `%` (a prefix
//!   search that finds at least that value).
//! - `LIMIT $n` is [`REPRESENTATIVE_LIMIT`], `OFFSET $n` is 0.
//!
//! Values are typed literals (`'active'::text`) of the column's own type, quoted by
//! [`quote_literal`]; [`substitute`] puts them in place of the `$n` tokens PostgreSQL's own
//! lexer (pg_query's scanner) finds, so a `$1` inside a string literal, a quoted identifier,
//! a comment or a dollar-quoted string is never touched. A parameter with no usable value
//! (no statistics, compared with an expression, used outside a comparison) leaves the
//! statement untimed, with a note naming the parameter.

use pg_query::protobuf as pb;

use super::model::{Catalog, ColumnStats, KeyExpr, ParamKey, ParamRole, ParamUse, Shape};
use crate::ident::quote_literal;

/// Where in the histogram a lower bound (`>`, `>=`) is taken: 90 % of the rows lie below
/// it, so the range keeps about a tenth.
pub const LOWER_BOUND_AT: f64 = 0.9;
/// Where in the histogram an upper bound (`<`, `<=`) is taken: about a tenth of the rows
/// lie below it.
pub const UPPER_BOUND_AT: f64 = 0.1;
/// Where BETWEEN's two bounds are taken: about a tenth of the rows lie between them.
pub const BETWEEN_AT: (f64, f64) = (0.45, 0.55);
/// `LIMIT $n`: a page of results, as applications ask for.
pub const REPRESENTATIVE_LIMIT: i64 = 10;
/// How many values an array parameter (`= ANY($n)`) gets.
const ARRAY_VALUES: usize = 3;
/// How much of a value the report shows (a quoted timestamp with time zone fits).
const SHOWN_CHARS: usize = 34;

/// The value one parameter is run with.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub number: u32,
    /// The SQL that replaces `$n`: a typed literal (`'active'::text`), or a number.
    pub sql: String,
    /// What the report shows: `$1 = 'active'`.
    pub shown: String,
}

/// A value for every parameter of `sql`, in parameter order, or why there is none (the
/// note names the parameter). A statement without parameters gets an empty list.
pub fn representative(sql: &str, shape: &Shape, catalog: &Catalog) -> Result<Vec<Binding>, String> {
    let mut numbers: Vec<u32> = param_tokens(sql)?.into_iter().map(|t| t.2).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        let uses: Vec<&ParamUse> = shape.params.iter().filter(|u| u.number == n).collect();
        let mut why = format!(
            "${n} is compared with no table column (it is in the select list, or inside an \
             expression), so it has no representative value"
        );
        let mut found = None;
        for u in uses {
            match value_for(u, catalog) {
                Ok(b) => {
                    found = Some(b);
                    break;
                }
                Err(e) => why = e,
            }
        }
        out.push(found.ok_or(why)?);
    }
    Ok(out)
}

/// The value of one use of a parameter, or why it has none.
pub fn value_for(u: &ParamUse, catalog: &Catalog) -> Result<Binding, String> {
    let n = u.number;
    let Some(key) = &u.key else {
        let value = match u.role {
            ParamRole::Offset => 0,
            _ => REPRESENTATIVE_LIMIT,
        };
        return Ok(Binding {
            number: n,
            sql: value.to_string(),
            shown: format!("${n} = {value}"),
        });
    };
    let ParamKey { schema, table, key } = key;
    let column = match key {
        KeyExpr::Column { name } => name,
        KeyExpr::Expression { sql, .. } => {
            return Err(format!(
                "${n} is compared with the expression {sql} of {table}, which pg_stats has no \
                 values for: no representative value"
            ))
        }
    };
    let Some(col) = catalog.table(schema, table).and_then(|t| t.column(column)) else {
        return Err(format!(
            "${n}: the column {table}.{column} is not in the catalog"
        ));
    };
    if col.type_name == "boolean" && !matches!(u.role, ParamRole::AnyArray) {
        return Ok(Binding {
            number: n,
            sql: "true".into(),
            shown: format!("${n} = true"),
        });
    }
    let Some(stats) = &col.stats else {
        return Err(format!(
            "${n} ({table}.{column}) has no statistics in pg_stats: ANALYZE {table} to time it"
        ));
    };
    let missing = || {
        format!(
            "${n} ({table}.{column}): pg_stats has neither common values nor a histogram for it"
        )
    };
    let typed = |v: &str, ty: &str| format!("{}::{ty}", quote_literal(v));
    let (sql, shown) = match u.role {
        ParamRole::AnyArray => {
            let values: Vec<&str> = equality_values(stats).take(ARRAY_VALUES).collect();
            if values.is_empty() {
                return Err(missing());
            }
            let literal = array_literal(&values);
            (
                typed(&literal, &format!("{}[]", col.type_name)),
                quote_literal(&literal),
            )
        }
        ParamRole::Pattern => {
            let v = pick(stats, u.role).ok_or_else(missing)?;
            let pattern = format!("{}%", escape_like(v));
            (typed(&pattern, "text"), quote_literal(&pattern))
        }
        role => {
            let v = pick(stats, role).ok_or_else(missing)?;
            (typed(v, &col.type_name), quote_literal(v))
        }
    };
    Ok(Binding {
        number: n,
        sql,
        shown: format!("${n} = {}", shorten(&shown)),
    })
}

/// The value (as pg_stats' text) a role takes from a column's statistics.
fn pick(stats: &ColumnStats, role: ParamRole) -> Option<&str> {
    let at = match role {
        ParamRole::Lower => Some(LOWER_BOUND_AT),
        ParamRole::Upper => Some(UPPER_BOUND_AT),
        ParamRole::BetweenLow => Some(BETWEEN_AT.0),
        ParamRole::BetweenHigh => Some(BETWEEN_AT.1),
        _ => None,
    };
    if let Some(at) = at {
        if let Some(v) = bound_at(&stats.histogram_bounds, at) {
            return Some(v);
        }
    }
    let position = match role {
        ParamRole::InItem { position } => position,
        _ => 0,
    };
    let values: Vec<&str> = equality_values(stats).collect();
    (!values.is_empty()).then(|| values[position % values.len()])
}

/// The values an equality takes, best first: the most common values by frequency, then the
/// histogram bounds from the middle outwards.
fn equality_values(stats: &ColumnStats) -> impl Iterator<Item = &str> {
    let mut mcv: Vec<(&str, f64)> = stats
        .most_common_vals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let freq = stats.most_common_freqs.get(i).copied().unwrap_or(0.0);
            (v.as_str(), freq)
        })
        .collect();
    // pg_stats lists them by frequency already; a stable sort keeps that order on ties.
    mcv.sort_by(|a, b| b.1.total_cmp(&a.1));
    let h = &stats.histogram_bounds;
    let mid = h.len() / 2;
    let outwards = (0..h.len()).filter_map(move |i| {
        // mid, mid-1, mid+1, mid-2, ...
        let step = i.div_ceil(2);
        let idx = if i % 2 == 1 {
            mid.checked_sub(step)?
        } else {
            mid + step
        };
        h.get(idx).map(String::as_str)
    });
    mcv.into_iter().map(|(v, _)| v).chain(outwards)
}

/// The histogram bound at a fraction of the rows (0.0 the first bound, 1.0 the last).
fn bound_at(bounds: &[String], at: f64) -> Option<&str> {
    if bounds.is_empty() {
        return None;
    }
    let idx = (at.clamp(0.0, 1.0) * (bounds.len() - 1) as f64).round() as usize;
    bounds.get(idx).map(String::as_str)
}

/// A shown value cut to [`SHOWN_CHARS`] characters, ended with `…` when cut.
fn shorten(shown: &str) -> String {
    if shown.chars().count() <= SHOWN_CHARS {
        return shown.to_string();
    }
    let mut out: String = shown.chars().take(SHOWN_CHARS - 1).collect();
    out.push('…');
    out
}

/// A PostgreSQL array literal of text elements (`{"a","b \"c\""}`).
fn array_literal(values: &[&str]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|v| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// A value as a LIKE pattern matching itself: `%`, `_` and the escape `\` escaped.
fn escape_like(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `$n` tokens of `sql` as PostgreSQL's lexer finds them: (start, end, n).
fn param_tokens(sql: &str) -> Result<Vec<(usize, usize, u32)>, String> {
    let scanned = pg_query::scan(sql).map_err(|e| format!("the statement does not scan: {e}"))?;
    let mut out = Vec::new();
    for t in &scanned.tokens {
        if t.token != pb::Token::Param as i32 {
            continue;
        }
        let (start, end) = (t.start as usize, t.end as usize);
        let n = sql
            .get(start + 1..end)
            .and_then(|d| d.parse::<u32>().ok())
            .ok_or_else(|| format!("a parameter token at byte {start} is not $n"))?;
        out.push((start, end, n));
    }
    Ok(out)
}

/// `sql` with each `$n` the lexer finds replaced by its binding's SQL (in parentheses); the
/// rest of the text as it was. Errors when a parameter has no binding, or the result does
/// not parse or has another number of statements.
pub fn substitute(sql: &str, bindings: &[Binding]) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len() + 16 * bindings.len());
    let mut at = 0;
    for (start, end, n) in param_tokens(sql)? {
        let b = bindings
            .iter()
            .find(|b| b.number == n)
            .ok_or_else(|| format!("${n} has no value"))?;
        out.push_str(&sql[at..start]);
        out.push('(');
        out.push_str(&b.sql);
        out.push(')');
        at = end;
    }
    out.push_str(&sql[at..]);
    let parsed = pg_query::parse(&out)
        .map_err(|e| format!("the statement with its values does not parse: {e}"))?;
    let statements = pg_query::parse(sql).map(|p| p.protobuf.stmts.len()).ok();
    if statements.is_some_and(|n| n != parsed.protobuf.stmts.len()) {
        return Err("the statement with its values is not one statement as it was".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::model::{Column, Table};

    fn stats(mcv: &[(&str, f64)], hist: &[&str]) -> Option<ColumnStats> {
        Some(ColumnStats {
            n_distinct: 100.0,
            most_common_vals: mcv.iter().map(|(v, _)| v.to_string()).collect(),
            most_common_freqs: mcv.iter().map(|(_, f)| *f).collect(),
            histogram_bounds: hist.iter().map(|h| h.to_string()).collect(),
            ..ColumnStats::default()
        })
    }

    fn catalog() -> Catalog {
        let col = |name: &str, ty: &str, stats: Option<ColumnStats>| Column {
            name: name.into(),
            type_name: ty.into(),
            stats,
            ..Column::default()
        };
        let hist: Vec<String> = (0..=100).map(|i| (i * 10).to_string()).collect();
        let hist: Vec<&str> = hist.iter().map(String::as_str).collect();
        Catalog {
            tables: vec![Table {
                schema: "public".into(),
                name: "orders".into(),
                columns: vec![
                    col(
                        "status",
                        "text",
                        stats(&[("shipped", 0.2), ("active", 0.7), ("it's", 0.05)], &[]),
                    ),
                    col("total", "integer", stats(&[], &hist)),
                    col("paid", "boolean", stats(&[("false", 0.9)], &[])),
                    col("note", "text", None),
                    col("empty", "text", stats(&[], &[])),
                    col(
                        "hostile",
                        "text",
                        stats(&[("'); DROP TABLE x; --", 1.0)], &[]),
                    ),
                ],
                ..Table::default()
            }],
            search_path: vec!["public".into()],
            ..Catalog::default()
        }
    }

    fn on(number: u32, role: ParamRole, column: &str) -> ParamUse {
        ParamUse {
            number,
            role,
            key: Some(ParamKey {
                schema: "public".into(),
                table: "orders".into(),
                key: KeyExpr::column(column),
            }),
        }
    }

    fn value(role: ParamRole, column: &str) -> Result<String, String> {
        value_for(&on(1, role, column), &catalog()).map(|b| b.sql)
    }

    #[test]
    fn equality_takes_the_most_common_value_by_frequency() {
        assert_eq!(value(ParamRole::Eq, "status").unwrap(), "'active'::text");
        let b = value_for(&on(1, ParamRole::Eq, "status"), &catalog()).unwrap();
        assert_eq!(b.shown, "$1 = 'active'");
    }

    #[test]
    fn equality_without_common_values_takes_the_middle_histogram_bound() {
        assert_eq!(value(ParamRole::Eq, "total").unwrap(), "'500'::integer");
    }

    #[test]
    fn ranges_take_the_bound_that_keeps_about_a_tenth() {
        assert_eq!(value(ParamRole::Lower, "total").unwrap(), "'900'::integer");
        assert_eq!(value(ParamRole::Upper, "total").unwrap(), "'100'::integer");
        assert_eq!(
            value(ParamRole::BetweenLow, "total").unwrap(),
            "'450'::integer"
        );
        assert_eq!(
            value(ParamRole::BetweenHigh, "total").unwrap(),
            "'550'::integer"
        );
        // No histogram: the most common value.
        assert_eq!(value(ParamRole::Lower, "status").unwrap(), "'active'::text");
    }

    #[test]
    fn booleans_take_true_whatever_is_common() {
        assert_eq!(value(ParamRole::Eq, "paid").unwrap(), "true");
    }

    #[test]
    fn in_list_elements_each_take_their_own_value() {
        let got: Vec<String> = (0..4)
            .map(|position| value(ParamRole::InItem { position }, "status").unwrap())
            .collect();
        assert_eq!(
            got,
            [
                "'active'::text",
                "'shipped'::text",
                "'it''s'::text",
                "'active'::text"
            ]
        );
        let got: Vec<String> = (0..3)
            .map(|position| value(ParamRole::InItem { position }, "total").unwrap())
            .collect();
        assert_eq!(got, ["'500'::integer", "'490'::integer", "'510'::integer"]);
        assert_eq!(
            value(ParamRole::AnyArray, "status").unwrap(),
            r#"'{"active","shipped","it''s"}'::text[]"#
        );
    }

    #[test]
    fn patterns_escape_wildcards_and_search_a_prefix() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
        assert_eq!(
            value(ParamRole::Pattern, "status").unwrap(),
            "'active%'::text"
        );
    }

    #[test]
    fn limit_and_offset_take_a_page() {
        let limit = ParamUse {
            number: 2,
            role: ParamRole::Limit,
            key: None,
        };
        let offset = ParamUse {
            role: ParamRole::Offset,
            ..limit.clone()
        };
        assert_eq!(value_for(&limit, &catalog()).unwrap().sql, "10");
        assert_eq!(value_for(&offset, &catalog()).unwrap().shown, "$2 = 0");
    }

    #[test]
    fn missing_statistics_leave_a_note_naming_the_parameter() {
        let e = value(ParamRole::Eq, "note").unwrap_err();
        assert!(e.starts_with("$1 (orders.note) has no statistics"), "{e}");
        let e = value(ParamRole::Eq, "empty").unwrap_err();
        assert!(e.contains("$1 (orders.empty)"), "{e}");
        let e = value(ParamRole::Eq, "nope").unwrap_err();
        assert!(e.contains("orders.nope"), "{e}");
        let expr = ParamUse {
            key: Some(ParamKey {
                schema: "public".into(),
                table: "orders".into(),
                key: KeyExpr::Expression {
                    sql: "lower(status)".into(),
                    columns: vec!["status".into()],
                },
            }),
            ..on(3, ParamRole::Eq, "status")
        };
        let e = value_for(&expr, &catalog()).unwrap_err();
        assert!(
            e.starts_with("$3 is compared with the expression lower(status)"),
            "{e}"
        );
    }

    #[test]
    fn representative_needs_a_value_for_every_parameter() {
        let shape = Shape {
            params: vec![
                on(1, ParamRole::Eq, "status"),
                on(2, ParamRole::Lower, "total"),
            ],
            ..Shape::default()
        };
        let sql = "SELECT * FROM orders WHERE status = $1 AND total > $2";
        let got = representative(sql, &shape, &catalog()).unwrap();
        let shown: Vec<&str> = got.iter().map(|b| b.shown.as_str()).collect();
        assert_eq!(shown, ["$1 = 'active'", "$2 = '900'"]);
        // $3 in the select list is compared with nothing.
        let sql = "SELECT $3, * FROM orders WHERE status = $1 AND total > $2";
        let e = representative(sql, &shape, &catalog()).unwrap_err();
        assert!(e.starts_with("$3 is compared with no table column"), "{e}");
        // A use without a value, and a later one with a value: the later one serves.
        let shape = Shape {
            params: vec![on(1, ParamRole::Eq, "note"), on(1, ParamRole::Eq, "status")],
            ..Shape::default()
        };
        let got = representative(
            "SELECT 1 FROM orders WHERE note = $1 OR status = $1",
            &shape,
            &catalog(),
        );
        assert_eq!(got.unwrap()[0].sql, "'active'::text");
    }

    #[test]
    fn substitution_replaces_parameters_not_text_that_looks_like_them() {
        let bindings = vec![
            Binding {
                number: 1,
                sql: "'active'::text".into(),
                shown: String::new(),
            },
            Binding {
                number: 10,
                sql: "10".into(),
                shown: String::new(),
            },
        ];
        let sql = "SELECT '$1', \"$1\", $$ $1 $$ /* $1 */ FROM orders -- $1\n\
                   WHERE status = $1 AND note <> E'\\'$1' LIMIT $10";
        let got = substitute(sql, &bindings).unwrap();
        assert_eq!(
            got,
            "SELECT '$1', \"$1\", $$ $1 $$ /* $1 */ FROM orders -- $1\n\
             WHERE status = ('active'::text) AND note <> E'\\'$1' LIMIT (10)"
        );
        let e = substitute("SELECT $2", &bindings).unwrap_err();
        assert_eq!(e, "$2 has no value");
    }

    #[test]
    fn a_hostile_value_stays_one_quoted_literal() {
        let b = value_for(&on(1, ParamRole::Eq, "hostile"), &catalog()).unwrap();
        assert_eq!(b.sql, "'''); DROP TABLE x; --'::text");
        let got = substitute("SELECT 1 FROM orders WHERE hostile = $1", &[b]).unwrap();
        let parsed = pg_query::parse(&got).unwrap();
        assert_eq!(parsed.protobuf.stmts.len(), 1, "{got}");
        assert_eq!(parsed.statement_types(), ["SelectStmt"]);
        assert!(
            got.ends_with("hostile = ('''); DROP TABLE x; --'::text)"),
            "{got}"
        );
        // Should a binding ever carry unquoted SQL, the extra statement is refused.
        let raw = Binding {
            number: 1,
            sql: "1); DROP TABLE x; SELECT (1".into(),
            shown: String::new(),
        };
        let e = substitute("SELECT 1 FROM orders WHERE total = $1", &[raw]).unwrap_err();
        assert!(e.contains("not one statement"), "{e}");
    }
}
