//! Rendering the index advisor's [`Advice`]: a table that fits an 80-column terminal (one
//! line per suggestion; with `verbose` the statements each one helps, the candidates dropped
//! and the statements left alone, each with its reason in words), markdown, and JSON for
//! programs. Pure: no I/O.

use serde_json::{json, Value};

use super::markdown_cell as cell;
use super::term::{self, fit};
use crate::indexes::model::{Advice, Candidate, Helped, KeyExpr, PatternLimit, Reason, Suggestion};

/// The width the table view fits.
pub const WIDTH: usize = 80;

/// The table view, at most [`WIDTH`] characters a line.
pub fn table(advice: &Advice, verbose: bool) -> String {
    table_of_width(advice, verbose, WIDTH)
}

/// The table view at most `width` characters a line (at least 60).
pub fn table_of_width(advice: &Advice, verbose: bool, width: usize) -> String {
    let width = width.max(60);
    let mut out = String::new();
    if advice.suggestions.is_empty() {
        out.push_str("No index to suggest.\n");
    } else {
        let rows: Vec<[String; 4]> = advice
            .suggestions
            .iter()
            .enumerate()
            .map(|(i, s)| {
                [
                    (i + 1).to_string(),
                    s.ddl.clone(),
                    gain_text(&s.helps),
                    super::bytes(s.size_bytes),
                ]
            })
            .collect();
        let header = ["#", "Index", "Gain", "Size"];
        let col = |c: usize| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        };
        // Borders and padding of four columns: `│ a │ b │ c │ d │`.
        let fixed = 13 + col(0) + col(2) + col(3);
        let room = width.saturating_sub(fixed).max(10);
        let mut t = term::table_of_width(width);
        t.set_header(header);
        for r in rows {
            t.add_row([r[0].clone(), fit(&r[1], room), r[2].clone(), r[3].clone()]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out.push_str(&fit(&summary(advice), width));
    out.push('\n');
    out.push_str(&drops_table(advice, width));
    if !verbose {
        if !advice.left_alone.is_empty() || !advice.dropped.is_empty() {
            out.push_str(&fit(
                &format!(
                    "{} left alone, {} dropped: --verbose says why.",
                    count(advice.left_alone.len(), "statement", "statements"),
                    count(advice.dropped.len(), "candidate", "candidates")
                ),
                width,
            ));
            out.push('\n');
        }
        return out;
    }
    for (i, s) in advice.suggestions.iter().enumerate() {
        out.push('\n');
        out.push_str(&wrap(&format!("{}. {};", i + 1, s.ddl), width, ""));
        out.push_str("   ");
        out.push_str(&fit(
            &format!(
                "{} · benefit {} · {}",
                super::bytes(s.size_bytes),
                number(s.benefit),
                count(s.helps.len(), "statement helped", "statements helped")
            ),
            width - 3,
        ));
        out.push('\n');
        for h in &s.helps {
            let head = format!(
                "   {:>6} × {} → {}  ",
                calls(h.calls),
                number(h.cost_before),
                number(h.cost_after)
            );
            let room = width.saturating_sub(head.chars().count()).max(10);
            out.push_str(&head);
            out.push_str(&fit(&h.text, room));
            out.push('\n');
        }
    }
    if !advice.dropped.is_empty() {
        out.push_str("\nCandidates dropped:\n");
        for d in &advice.dropped {
            out.push_str("  ");
            out.push_str(&fit(
                &format!(
                    "{} ON {}",
                    columns(&d.candidate).join(", "),
                    d.candidate.table_name()
                ),
                width - 2,
            ));
            out.push('\n');
            out.push_str(&wrap(&reason_text(&d.reason), width, "      "));
        }
    }
    if !advice.left_alone.is_empty() {
        out.push_str("\nStatements left alone:\n");
        for l in &advice.left_alone {
            let head = format!("  {:>6} × ", calls(l.calls));
            let room = width.saturating_sub(head.chars().count()).max(10);
            out.push_str(&head);
            out.push_str(&fit(&l.text, room));
            out.push('\n');
            out.push_str(&wrap(&reason_text(&l.reason), width, "      "));
        }
    }
    out
}

/// `text` wrapped at spaces to `width` (each line after `indent`), a word longer than a line
/// (a long quoted name) cut into pieces: no line is ever wider.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    for line in term::wrap(text, width, indent).lines() {
        let chars: Vec<char> = line.chars().collect();
        if chars.len() <= width {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let room = width.saturating_sub(indent.chars().count()).max(1);
        let body = &chars[indent.chars().count().min(chars.len())..];
        for piece in body.chunks(room) {
            out.push_str(indent);
            out.extend(piece);
            out.push('\n');
        }
    }
    out
}

/// The workload's weighted cost before and after, with the indexes' count and total size.
fn summary(advice: &Advice) -> String {
    let total: i64 = advice.suggestions.iter().map(|s| s.size_bytes).sum();
    format!(
        "Workload cost {} → {} ({}) with {}, {}.",
        number(advice.workload_cost_before),
        number(advice.workload_cost_after),
        percent_change(advice.workload_cost_before, advice.workload_cost_after),
        count(advice.suggestions.len(), "index", "indexes"),
        super::bytes(total)
    )
}

/// How much cheaper the helped statements get, weighted by their calls: `-87%`.
fn gain_text(helps: &[Helped]) -> String {
    let before: f64 = helps
        .iter()
        .map(|h| h.cost_before * h.calls.max(1) as f64)
        .sum();
    let after: f64 = helps
        .iter()
        .map(|h| h.cost_after * h.calls.max(1) as f64)
        .sum();
    percent_change(before, after)
}

fn percent_change(before: f64, after: f64) -> String {
    if before <= 0.0 {
        return "n/a".to_string();
    }
    let p = (after - before) / before * 100.0;
    if p.abs() < 0.5 {
        "0%".to_string()
    } else {
        format!("{p:+.0}%").replace('-', "−")
    }
}

/// A cost: whole above 100, one decimal under, thousands grouped.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return "?".to_string();
    }
    if x.abs() < 100.0 {
        return format!("{x:.1}");
    }
    let s = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

fn calls(n: i64) -> String {
    if n >= 10_000_000 {
        format!("{:.0}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The keys of a candidate as people read them: `a`, `b DESC`, `lower(email)`,
/// `name text_pattern_ops`.
pub fn columns(c: &Candidate) -> Vec<String> {
    c.keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut s = match &k.key {
                KeyExpr::Column { name } => name.to_string(),
                KeyExpr::Expression { sql, .. } => sql.clone(),
            };
            if let Some(opclass) = c.opclass(i) {
                s.push(' ');
                s.push_str(opclass);
            }
            s.push_str(k.order_sql());
            s
        })
        .collect()
}

/// The reason's code, as JSON names it (`low_selectivity`).
pub fn reason_code(r: &Reason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

/// Why, in words.
pub fn reason_text(r: &Reason) -> String {
    match r {
        Reason::NotParseable { error } => format!("not parseable: {error}"),
        Reason::NotIndexable => "not a statement an index can help".to_string(),
        Reason::UnknownTable { table } => format!("table {table} does not exist"),
        Reason::ExplainFailed { error } => format!("EXPLAIN failed: {error}"),
        Reason::TinyTable { table, rows, pages } => format!(
            "table {table} is too small for an index to matter ({rows:.0} rows, {pages} pages)"
        ),
        Reason::AlreadyIndexed { index } => format!("already served by index {index}"),
        Reason::LowInitialCost { cost } => {
            format!(
                "already cheap (plan cost {}), not worth an index",
                number(*cost)
            )
        }
        Reason::LowSelectivity {
            column,
            rows_per_value,
        } => format!(
            "{column} is not selective enough ({} rows per value)",
            number(*rows_per_value)
        ),
        Reason::GainBelowThreshold { gain, relative } => format!(
            "the gain is below the threshold ({} of cost, {:.0}%)",
            number(*gain),
            relative * 100.0
        ),
        Reason::OverBudget => {
            "over the budget (--max-indexes, --max-size): spent on bigger gains".to_string()
        }
        Reason::WriteCost { writes_per_second } => format!(
            "the table's writes ({} rows/s) would cost more than the index saves",
            number(*writes_per_second)
        ),
        Reason::NothingToIndex => "no condition, join key or sort an index could serve".to_string(),
        Reason::UnsearchablePattern { column, why } => format!(
            "no btree searches {column}'s pattern: {}",
            match why {
                PatternLimit::CaseInsensitive =>
                    "ILIKE is case-insensitive (index lower(column) and compare lower() with LIKE)",
                PatternLimit::Parameter =>
                    "the pattern is a parameter, its prefix unknown to a generic plan",
                PatternLimit::NoPatternOpclass =>
                    "its collation is not C and its type has no pattern operator class",
            }
        ),
    }
}

fn candidate_json(c: &Candidate) -> Value {
    json!({
        "schema": c.schema.as_str(),
        "table": c.table.as_str(),
        "columns": columns(c),
        "include": c.include.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        "where": c.predicate,
        "method": c.method.as_str(),
    })
}

fn suggestion_json(s: &Suggestion) -> Value {
    let mut v = candidate_json(&s.candidate);
    let o = v.as_object_mut().expect("an object");
    o.insert("ddl".into(), json!(s.ddl));
    o.insert("name".into(), json!(s.name));
    o.insert("size_bytes".into(), json!(s.size_bytes));
    o.insert("benefit".into(), json!(s.benefit));
    o.insert(
        "statements".into(),
        Value::Array(
            s.helps
                .iter()
                .map(|h| {
                    json!({
                        "fingerprint": h.fingerprint,
                        "text": h.text,
                        "calls": h.calls,
                        "cost_before": h.cost_before,
                        "cost_after": h.cost_after,
                    })
                })
                .collect(),
        ),
    );
    v
}

/// The advice for programs: suggestions (table, columns in order with DESC, include, where,
/// method, ddl, name, size, benefit, the statements helped), the statements left alone and
/// the candidates dropped with their reason (a code and the words), and the workload's cost
/// before and after.
pub fn json(advice: &Advice) -> Value {
    json!({
        "suggestions": advice.suggestions.iter().map(suggestion_json).collect::<Vec<_>>(),
        "left_alone": advice.left_alone.iter().map(|l| json!({
            "fingerprint": l.fingerprint,
            "text": l.text,
            "calls": l.calls,
            "reason": reason_code(&l.reason),
            "detail": reason_text(&l.reason),
        })).collect::<Vec<_>>(),
        "dropped": advice.dropped.iter().map(|d| {
            let mut v = candidate_json(&d.candidate);
            let o = v.as_object_mut().expect("an object");
            o.insert("reason".into(), json!(reason_code(&d.reason)));
            o.insert("detail".into(), json!(reason_text(&d.reason)));
            v
        }).collect::<Vec<_>>(),
        "drops": advice.drops.iter().map(|d| json!({
            "index": d.index,
            "rule": d.rule,
            "message": d.message,
            "size_bytes": d.size_bytes,
            "ddl": d.ddl,
        })).collect::<Vec<_>>(),
        "workload_cost_before": advice.workload_cost_before,
        "workload_cost_after": advice.workload_cost_after,
    })
}

/// The advice as markdown: the summary, one row per suggestion with its DDL whole, the
/// statements each helps, then the statements left alone and the candidates dropped.
pub fn markdown(advice: &Advice) -> String {
    let mut out = String::from("# pgopt indexes\n\n");
    out.push_str(&summary(advice));
    out.push('\n');
    if !advice.suggestions.is_empty() {
        out.push_str("\n## Suggested indexes\n\n| # | index | gain | size | statements |\n|---|---|---|---|---|\n");
        for (i, s) in advice.suggestions.iter().enumerate() {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} |\n",
                i + 1,
                cell(&s.ddl).replace('`', "\\`"),
                gain_text(&s.helps),
                super::bytes(s.size_bytes),
                s.helps.len()
            ));
        }
        for (i, s) in advice.suggestions.iter().enumerate() {
            out.push_str(&format!(
                "\n### {}. {}\n\n```sql\n{};\n```\n\n| calls | cost before | cost after | statement |\n|---|---|---|---|\n",
                i + 1,
                cell(&s.name),
                s.ddl
            ));
            for h in &s.helps {
                out.push_str(&format!(
                    "| {} | {} | {} | {} |\n",
                    h.calls,
                    number(h.cost_before),
                    number(h.cost_after),
                    cell(&fit(&h.text, 200))
                ));
            }
        }
    }
    if !advice.drops.is_empty() {
        out.push_str("\n## Indexes to drop (`--apply --drop`)\n\n| index | why | returns | DDL |\n|---|---|---|---|\n");
        for d in &advice.drops {
            out.push_str(&format!(
                "| {} | {} | {} | `{}` |\n",
                cell(&d.index),
                cell(&d.message),
                super::bytes(d.size_bytes),
                cell(&d.ddl)
            ));
        }
    }
    if !advice.left_alone.is_empty() {
        out.push_str("\n## Statements left alone\n\n| calls | statement | why |\n|---|---|---|\n");
        for l in &advice.left_alone {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                l.calls,
                cell(&fit(&l.text, 200)),
                cell(&reason_text(&l.reason))
            ));
        }
    }
    if !advice.dropped.is_empty() {
        out.push_str("\n## Candidates dropped\n\n| table | columns | why |\n|---|---|---|\n");
        for d in &advice.dropped {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&d.candidate.table_name().to_string()),
                cell(&columns(&d.candidate).join(", ")),
                cell(&reason_text(&d.reason))
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indexes::model::{Dropped, LeftAlone, SortKey, Timing};

    fn key(name: &str, desc: bool) -> SortKey {
        SortKey {
            key: KeyExpr::column(name),
            desc,
            nulls_first: None,
        }
    }

    fn advice() -> Advice {
        let long = "a_very_long_column_name_that_goes_on_and_on_for_quite_a_while";
        let mut c = Candidate::btree(
            "s".repeat(63),
            format!("governance_workflow_transitions_history{}", "x".repeat(24)),
            vec![key(long, false), key("created_at", true)],
        );
        c.include.push("status".into());
        c.predicate = Some("\"deleted_at\" IS NULL".into());
        let name = c.index_name();
        let small = Candidate::btree("public", "orders", vec![key("customer_id", false)]);
        let helped = |text: &str, calls: i64, before: f64, after: f64| Helped {
            fingerprint: "abc123".into(),
            text: text.into(),
            calls,
            cost_before: before,
            cost_after: after,
        };
        Advice {
            drops: vec![crate::indexes::model::DropSuggestion {
                index: "\"app\".\"orders_total_dup\"".into(),
                rule: "duplicate_index".into(),
                message: "orders_total_dup duplicates orders_total".into(),
                size_bytes: 2 * 1024 * 1024,
                ddl: "DROP INDEX CONCURRENTLY \"app\".\"orders_total_dup\"".into(),
            }],
            suggestions: vec![
                Suggestion {
                    ddl: c.ddl(&name, true),
                    name,
                    candidate: c.clone(),
                    size_bytes: 123 * 1024 * 1024,
                    benefit: 1_234_567.0,
                    helps: vec![
                        helped(
                            &format!("SELECT * FROM governance_workflow_transitions_history WHERE {long} = $1 AND deleted_at IS NULL ORDER BY created_at DESC LIMIT 10"),
                            120_000,
                            25_000.0,
                            12.5,
                        ),
                        helped("SELECT 1 FROM t", 3, 100.0, 50.0),
                    ],
                },
                Suggestion {
                    ddl: small.ddl("orders_customer_id_idx", true),
                    name: "orders_customer_id_idx".into(),
                    candidate: small.clone(),
                    size_bytes: 8192,
                    benefit: 10.0,
                    helps: vec![helped("SELECT * FROM orders WHERE customer_id = 7", 1, 20.0, 8.0)],
                },
            ],
            dropped: vec![Dropped {
                candidate: Candidate::btree("public", "orders", vec![key("status", false)]),
                reason: Reason::LowSelectivity {
                    column: "status".into(),
                    rows_per_value: 250_000.0,
                },
            }],
            left_alone: vec![
                LeftAlone {
                    fingerprint: String::new(),
                    text: "SELEC broken".into(),
                    calls: 1,
                    reason: Reason::NotParseable {
                        error: "syntax error at or near \"SELEC\"".into(),
                    },
                },
                LeftAlone {
                    fingerprint: "f00".into(),
                    text: format!("SELECT * FROM tiny WHERE {long} = 1 AND {long} = 2 AND {long} = 3"),
                    calls: 5_000_000,
                    reason: Reason::TinyTable {
                        table: "public.tiny".into(),
                        rows: 12.0,
                        pages: 1,
                    },
                },
            ],
            workload_cost_before: 3_000_000_000.0,
            workload_cost_after: 1_500_000.0,
        }
    }

    #[test]
    fn every_line_of_the_table_view_fits_80_columns_with_long_names() {
        for verbose in [false, true] {
            let text = table(&advice(), verbose);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= 80,
                    "{} chars: {line}\n{text}",
                    line.chars().count()
                );
            }
            let rows: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("CREATE INDEX"))
                .collect();
            assert!(rows[0].contains('…'), "the long DDL is cut: {text}");
            assert!(
                rows[0].contains("−100%") && rows[0].contains("123.0 MB"),
                "{text}"
            );
            assert!(rows.iter().any(|r| r.contains("−60%")), "{text}");
            assert!(text.contains("Workload cost 3,000,000,000 → 1,500,000 (−100%) with 2 indexes"));
        }
    }

    #[test]
    fn verbose_table_shows_helped_statements_dropped_candidates_and_reasons() {
        let text = table(&advice(), true);
        assert!(text.contains("120k × 25,000 → 12.5"), "{text}");
        assert!(
            text.contains("status is not selective enough (250,000 rows per value)"),
            "{text}"
        );
        assert!(text.contains("not parseable: syntax error"), "{text}");
        assert!(text.contains("too small for an index to matter"), "{text}");
        // The long DDL is whole, wrapped.
        assert!(text.contains("WHERE \"deleted_at\" IS NULL;"), "{text}");
        let short = table(&advice(), false);
        assert!(
            short.contains("2 statements left alone, 1 candidate dropped"),
            "{short}"
        );
        assert!(!short.contains("not parseable"));
    }

    #[test]
    fn drop_advice_is_in_every_format_with_the_space_it_returns() {
        let a = advice();
        let text = table(&a, false);
        assert!(text.contains("orders_total_dup"), "{text}");
        assert!(text.contains("duplicate index"), "{text}");
        assert!(text.contains("1 index to drop, returning 2.0 MB"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= WIDTH), "{text}");
        let v = json(&a);
        let d = &v["drops"][0];
        for field in ["index", "rule", "message", "size_bytes", "ddl"] {
            assert!(!d[field].is_null(), "{field} in {v:#}");
        }
        let md = markdown(&a);
        assert!(md.contains("## Indexes to drop"), "{md}");
        assert!(md.contains("DROP INDEX CONCURRENTLY"), "{md}");
    }

    #[test]
    fn json_names_the_fields_programs_read() {
        let v = json(&advice());
        let s = &v["suggestions"][0];
        for field in [
            "schema",
            "table",
            "columns",
            "include",
            "where",
            "method",
            "ddl",
            "name",
            "size_bytes",
            "benefit",
            "statements",
        ] {
            assert!(s.get(field).is_some(), "suggestion lacks {field}: {s}");
        }
        assert_eq!(s["columns"][1], "created_at DESC");
        assert_eq!(s["include"], json!(["status"]));
        assert_eq!(s["where"], "\"deleted_at\" IS NULL");
        assert_eq!(s["method"], "btree");
        assert_eq!(v["suggestions"][1]["where"], Value::Null);
        let st = &s["statements"][0];
        for field in ["fingerprint", "text", "calls", "cost_before", "cost_after"] {
            assert!(st.get(field).is_some(), "statement lacks {field}");
        }
        assert_eq!(st["calls"], 120_000);
        let l = &v["left_alone"][0];
        assert_eq!(l["reason"], "not_parseable");
        assert!(l["detail"].as_str().unwrap().starts_with("not parseable"));
        assert_eq!(l["fingerprint"], "");
        assert_eq!(v["dropped"][0]["reason"], "low_selectivity");
        assert_eq!(v["dropped"][0]["columns"], json!(["status"]));
        assert_eq!(v["workload_cost_before"], 3_000_000_000.0);
        assert_eq!(v["workload_cost_after"], 1_500_000.0);
    }

    #[test]
    fn markdown_has_each_ddl_whole_and_escapes_cells() {
        let md = markdown(&advice());
        assert!(md.starts_with("# pgopt indexes\n"));
        assert!(md.contains("## Suggested indexes"));
        assert!(md.contains("```sql\nCREATE INDEX CONCURRENTLY"));
        assert!(md.contains("WHERE \"deleted_at\" IS NULL;\n```"));
        assert!(md.contains("## Statements left alone"));
        assert!(md.contains("## Candidates dropped"));
        let mut a = advice();
        a.left_alone[0].text = "SELECT a | b FROM t".into();
        assert!(markdown(&a).contains("SELECT a \\| b FROM t"));
    }

    #[test]
    fn measured_times_show_the_parameter_values_within_80_columns() {
        let advice = advice();
        let query = |text: &str| crate::indexes::model::Query {
            fingerprint: "abc123".into(),
            text: text.into(),
            calls: 1,
            mean_ms: None,
            source: crate::indexes::model::Source::Argument,
        };
        let queries = vec![
            query(&advice.suggestions[0].helps[0].text),
            query("SELECT 1 FROM t"),
        ];
        let timing = |q, ms, values: &[&str], note: Option<&str>| Timing {
            query: q,
            ms,
            note: note.map(str::to_string),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let values = [
            "$1 = 'a rather long representative value'",
            "$2 = 10",
            "$3 = '2024-01-01 00:00:00+00'",
        ];
        let before = [
            timing(0, Some(120.5), &values, None),
            timing(1, None, &[], Some("$1 (t.a) has no statistics: not run")),
        ];
        let after = [
            timing(0, Some(0.25), &values, None),
            timing(1, None, &[], Some("$1 (t.a) has no statistics: not run")),
        ];
        let text = measured(&advice, &queries, &before, &after);
        assert!(text.contains("120.50→0.25"), "{text}");
        assert!(text.contains("governance_workflow_t…: run with"), "{text}");
        assert!(
            text.contains("$1 = 'a rather long representative value', $2 = 10"),
            "{text}"
        );
        // Every value is shown, on a continuation line where the first one is full.
        assert!(text.contains("$3 = '2024-01-01 00:00:00+00'"), "{text}");
        assert!(
            text.contains("SELECT 1 FROM t: $1 (t.a) has no statistics"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= WIDTH, "{line:?} in\n{text}");
        }
    }

    #[test]
    fn no_suggestion_says_so() {
        let text = table(&Advice::default(), false);
        assert!(text.starts_with("No index to suggest."), "{text}");
        assert!(json(&Advice::default())["suggestions"]
            .as_array()
            .unwrap()
            .is_empty());
    }
}

/// The existing indexes to drop, one line each (index, why, space), and the total; empty
/// when there are none.
fn drops_table(advice: &Advice, width: usize) -> String {
    if advice.drops.is_empty() {
        return String::new();
    }
    let mut t = term::table_of_width(width);
    t.set_header(["Drop (--apply --drop)", "Why", "Returns"]);
    for d in &advice.drops {
        t.add_row([
            fit(&d.index, 34),
            d.rule.replace('_', " "),
            super::bytes(d.size_bytes),
        ]);
    }
    let total: i64 = advice.drops.iter().map(|d| d.size_bytes).sum();
    format!(
        "{t}\n{}\n",
        fit(
            &format!(
                "{} to drop, returning {} (analyze's findings say why).",
                count(advice.drops.len(), "index", "indexes"),
                super::bytes(total)
            ),
            width
        )
    )
}

/// One step of an `--apply` run, as the command line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRow {
    pub what: String,
    pub outcome: String,
    pub seconds: f64,
}

/// What `--apply` did, one line per step, fitting [`WIDTH`].
pub fn applied(rows: &[AppliedRow]) -> String {
    let mut t = term::table_of_width(WIDTH);
    t.set_header(["Step", "Outcome", "Seconds"]);
    let fixed = 10
        + rows
            .iter()
            .map(|r| r.outcome.chars().count())
            .chain(["Outcome".len()])
            .max()
            .unwrap_or(0)
        + 7;
    let room = WIDTH.saturating_sub(fixed).max(20);
    for r in rows {
        t.add_row([
            fit(&r.what, room),
            r.outcome.clone(),
            format!("{:.2}", r.seconds),
        ]);
    }
    format!("{t}\n")
}

/// The helped statements' measured time before and after the build, beside the estimated
/// plan cost before and after: one line each, fitting [`WIDTH`]; below, the representative
/// values a statement's `$n` parameters ran with, and why a statement has no time.
pub fn measured(
    advice: &Advice,
    queries: &[crate::indexes::model::Query],
    before: &[crate::indexes::model::Timing],
    after: &[crate::indexes::model::Timing],
) -> String {
    let mut t = term::table_of_width(WIDTH);
    t.set_header(["Statement", "Cost before→after", "ms before→after"]);
    let ms = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut notes = Vec::new();
    for b in before {
        let Some(q) = queries.get(b.query) else {
            continue;
        };
        let a = after.iter().find(|a| a.query == b.query);
        let costs = advice
            .suggestions
            .iter()
            .flat_map(|s| s.helps.iter())
            .filter(|h| h.fingerprint == q.fingerprint && h.text == q.text)
            .fold(None, |acc: Option<(f64, f64)>, h| {
                Some(match acc {
                    None => (h.cost_before, h.cost_after),
                    Some((cb, ca)) => (cb.max(h.cost_before), ca.min(h.cost_after)),
                })
            });
        let cost = costs.map_or("-".to_string(), |(cb, ca)| format!("{cb:.0}→{ca:.0}"));
        t.add_row([
            fit(&one_line(&q.text), 36),
            cost,
            format!("{}→{}", ms(b.ms), ms(a.and_then(|a| a.ms))),
        ]);
        if !b.values.is_empty() {
            let head = format!("{}: run with", fit(&one_line(&q.text), 36));
            notes.extend(wrapped(&head, &b.values, WIDTH));
        }
        if let Some(n) = b.note.as_ref().or(a.and_then(|a| a.note.as_ref())) {
            notes.push(format!("{}: {n}", fit(&one_line(&q.text), 36)));
        }
    }
    let mut out = format!("{t}\n");
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

/// `head` followed by `items` separated by commas, wrapped into lines of at most `width`
/// (continuation lines indented); an item too long for a line of its own is cut.
fn wrapped(head: &str, items: &[String], width: usize) -> Vec<String> {
    const INDENT: &str = "   ";
    let mut lines = Vec::new();
    let mut line = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let sep = if i + 1 < items.len() { "," } else { "" };
        let piece = format!(" {item}{sep}");
        if line.chars().count() + piece.chars().count() > width {
            lines.push(line);
            line = INDENT.to_string();
        }
        line.push_str(&piece);
    }
    lines.push(line);
    lines
        .into_iter()
        .map(|l| {
            if l.chars().count() <= width {
                return l;
            }
            let mut cut: String = l.chars().take(width.saturating_sub(1)).collect();
            cut.push('…');
            cut
        })
        .collect()
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
