//! The terminal form of an analysis: headline figures first, then what was not collected,
//! then the findings grouped by severity, ONE line each (object, message, the fix's first
//! line) cut to the width with an ellipsis between words; `verbose` adds each finding's
//! evidence, full next step and SQL. The json and markdown forms keep everything.

use comfy_table::Cell;

use super::term::{self, fit, paint, wrap, TextOptions};
use super::{by_severity, evidence_pairs, gaps, headline, severity_label};
use crate::advise::{Finding, Severity};
use crate::snapshot::Snapshot;

/// The widest the object column gets before objects are cut (and never more than a third
/// of the width).
const OBJECT_MAX: usize = 32;
/// Indent of a finding line under its severity.
const INDENT: &str = "  ";
/// Indent of a verbose finding's details.
const DETAIL: &str = "      ";

pub fn render(snap: &Snapshot, findings: &[Finding], opts: &TextOptions) -> String {
    let mut out = String::new();
    let mut head = term::table_of_width(opts.width);
    for (label, value) in headline(snap, findings) {
        head.add_row(vec![Cell::new(label), Cell::new(value)]);
    }
    term::keep_words(&mut head);
    out.push_str(&head.to_string());
    out.push('\n');

    let gaps = gaps(snap);
    if !gaps.is_empty() {
        out.push_str("\nNot collected\n");
        for (section, state, why, next) in gaps {
            let line = format!("{section} {state}: {why}");
            if opts.verbose {
                out.push_str(&wrap(&line, opts.width, INDENT));
                if !next.is_empty() {
                    out.push_str(&wrap(&format!("next step: {next}"), opts.width, DETAIL));
                }
            } else {
                out.push_str(&two_parts(
                    &line,
                    &next,
                    opts.width.saturating_sub(INDENT.len()),
                ));
            }
        }
    }

    if findings.is_empty() {
        out.push_str("\nNo findings: nothing crossed a threshold.\n");
        return out;
    }
    out.push_str(&render_findings(findings, opts));
    if !opts.verbose {
        out.push('\n');
        out.push_str(&fit(
            "One line per finding: -v (--verbose) adds the evidence, the whole next step and \
             the SQL; --format markdown or json keeps everything.",
            opts.width,
        ));
        out.push('\n');
    }
    out
}

/// The findings alone, grouped by severity (also used by `pgopt tune`'s security review).
pub fn render_findings(findings: &[Finding], opts: &TextOptions) -> String {
    let mut out = String::new();
    for (severity, group) in by_severity(findings) {
        let colour = match severity {
            Severity::Critical => 31,
            Severity::Warning => 33,
            Severity::Info => 36,
        };
        out.push_str(&format!(
            "\n{} ({})\n",
            paint(severity_label(severity), colour, opts.color),
            group.len()
        ));
        if opts.verbose {
            for f in group {
                out.push_str(&verbose_finding(f, opts.width));
            }
            continue;
        }
        let object_width = group
            .iter()
            .map(|f| f.object.chars().count())
            .max()
            .unwrap_or(0)
            .min(OBJECT_MAX)
            .min(opts.width / 3);
        for f in group {
            out.push_str(&finding_line(f, object_width, opts.width));
        }
    }
    out
}

/// `  object  message → fix`, fitted to `width`.
fn finding_line(f: &Finding, object_width: usize, width: usize) -> String {
    let object = fit(&f.object, object_width);
    let pad = object_width.saturating_sub(object.chars().count());
    let used = INDENT.len() + object_width + 2;
    let room = width.saturating_sub(used);
    format!(
        "{INDENT}{object}{}  {}",
        " ".repeat(pad),
        two_parts(
            without_object(&f.message, &f.object),
            first_line(&f.next_step),
            room
        )
    )
}

/// The message without its opening "<kind> <object>" (`table public.t has ...` -> `has ...`):
/// on a finding's line the object stands just before it.
fn without_object<'a>(message: &'a str, object: &str) -> &'a str {
    let last = object.rsplit(' ').next().unwrap_or(object);
    let mut words = message.splitn(3, ' ');
    let (first, second, rest) = (words.next(), words.next(), words.next());
    match (first, second, rest) {
        (Some(a), Some(_), Some(_)) if a == object => &message[a.len() + 1..],
        (Some(a), Some(b), Some(rest)) if b == object || b == last => {
            debug_assert!(a.len() + b.len() + 2 <= message.len());
            rest
        }
        _ => message,
    }
}

/// `first → second` in `room` characters: the first part keeps at least half the room when
/// both are long, each is cut between words.
fn two_parts(first: &str, second: &str, room: usize) -> String {
    const ARROW: &str = " → ";
    let first_len = first
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .count();
    let second_len = second
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .count();
    if second_len == 0 {
        return format!("{}\n", fit(first, room));
    }
    let arrow = ARROW.chars().count();
    let first_room = if first_len + arrow + second_len <= room {
        first_len
    } else {
        // The message first: at least 65 % of the room, more when the fix is short.
        let floor = room * 65 / 100;
        first_len.min(floor.max(room.saturating_sub(arrow + second_len)))
    };
    let second_room = room.saturating_sub(first_room + arrow);
    if second_room < 8 {
        return format!("{}\n", fit(first, room));
    }
    format!(
        "{}{ARROW}{}\n",
        fit(first, first_room),
        fit(second, second_room)
    )
}

/// One SQL statement wrapped to `width` at spaces outside quotes (literals and quoted names
/// stay whole, so the text still runs as written); continuation lines are indented further.
fn wrap_sql(line: &str, width: usize, indent: &str) -> String {
    let room = width.saturating_sub(indent.chars().count() + 2).max(20);
    let mut pieces: Vec<String> = vec![String::new()];
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (None, ' ') => pieces.push(String::new()),
            (None, '\'' | '"') => {
                quote = Some(c);
                pieces.last_mut().expect("one piece").push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                pieces.last_mut().expect("one piece").push(c);
            }
            _ => pieces.last_mut().expect("one piece").push(c),
        }
    }
    let mut out = String::new();
    let mut current = String::new();
    for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
        if !current.is_empty() && current.chars().count() + 1 + piece.chars().count() > room {
            let lead = if out.is_empty() { "" } else { "  " };
            out.push_str(&format!("{indent}{lead}{current}\n"));
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&piece);
    }
    let lead = if out.is_empty() { "" } else { "  " };
    out.push_str(&format!("{indent}{lead}{current}\n"));
    out
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The whole finding: message, rule, evidence (`key=value`, in human units),
/// next step and SQL, wrapped to `width`.
fn verbose_finding(f: &Finding, width: usize) -> String {
    let mut out = format!("{INDENT}{} ({})\n", f.object, f.rule);
    out.push_str(&wrap(&f.message, width, DETAIL));
    let evidence = evidence_pairs(f);
    if !evidence.is_empty() {
        let pairs = evidence
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&wrap(&format!("evidence: {pairs}"), width, DETAIL));
    }
    if !f.next_step.is_empty() {
        out.push_str(&wrap(&format!("next step: {}", f.next_step), width, DETAIL));
    }
    if let Some(sql) = &f.sql {
        out.push_str(&format!("{DETAIL}sql:\n"));
        for line in sql.lines() {
            out.push_str(&wrap_sql(line, width, &format!("{DETAIL}  ")));
        }
    }
    if let Some(docs) = &f.docs {
        out.push_str(&format!("{DETAIL}docs: {docs}\n"));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(object: &str, message: &str, next: &str) -> Finding {
        Finding {
            rule: "seq_scan_heavy".into(),
            severity: Severity::Warning,
            object: object.into(),
            message: message.into(),
            evidence: [
                ("table_bytes".to_string(), serde_json::json!(123_456_789)),
                ("seq_scan".to_string(), serde_json::json!(4_000_000_123i64)),
                ("age_seconds".to_string(), serde_json::json!(7200.0)),
            ]
            .into_iter()
            .collect(),
            next_step: next.into(),
            fix: Vec::new(),
            sql: Some("CREATE INDEX CONCURRENTLY ON \"public\".\"t\" (a);".into()),
            docs: None,
        }
    }

    #[test]
    fn one_line_per_finding_within_the_width_and_no_number_cut() {
        let f = finding(
            "public.security_events_with_a_very_long_name",
            "table public.security_events is read by 4000000123 sequential scans, 99.9 % of \
             its reads, and holds 1200000 rows",
            "Find the queries that scan it in pg_stat_statements and index their filters\n\
             second line",
        );
        for width in [80, 100, 140] {
            let text = render_findings(std::slice::from_ref(&f), &TextOptions::fixed(width, false));
            let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
            assert_eq!(lines.len(), 2, "{text}");
            for line in &lines {
                assert!(line.chars().count() <= width, "{width}: {line}");
            }
            // The number is whole or gone, never cut.
            assert!(
                !lines[1].contains("400000…") && !lines[1].contains(" 4000…"),
                "{text}"
            );
            assert!(!text.contains("second line"), "{text}");
            assert!(!text.contains("CREATE INDEX"), "{text}");
        }
    }

    #[test]
    fn sql_wraps_outside_quotes_only() {
        let sql = "CREATE INDEX CONCURRENTLY ON \"public\".\"a name with spaces\" (\"parent_id\") \
                   WHERE note = 'two  spaces';";
        let text = wrap_sql(sql, 40, "  ");
        assert!(text.contains("\"a name with spaces\""), "{text}");
        assert!(text.contains("'two  spaces'"), "{text}");
        assert!(text.lines().count() > 1, "{text}");
    }

    #[test]
    fn the_line_does_not_repeat_the_object() {
        assert_eq!(
            without_object("table public.t has 5 dead tuples", "public.t"),
            "has 5 dead tuples"
        );
        assert_eq!(
            without_object("statement -42 took 5 s", "queryid -42"),
            "took 5 s"
        );
        assert_eq!(
            without_object("foreign key fk on public.t has no index", "public.t"),
            "foreign key fk on public.t has no index"
        );
    }

    #[test]
    fn verbose_adds_evidence_in_human_units_next_step_and_sql() {
        let f = finding("public.t", "a message", "step one\nstep two");
        let text = render_findings(&[f], &TextOptions::fixed(100, true));
        assert!(text.contains("table_bytes=117.7 MB"), "{text}");
        assert!(text.contains("seq_scan=4000000123"), "{text}");
        assert!(text.contains("age_seconds=2.0 h"), "{text}");
        assert!(text.contains("step two"), "{text}");
        assert!(text.contains("CREATE INDEX CONCURRENTLY"), "{text}");
        assert!(text.contains("(seq_scan_heavy)"), "{text}");
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}
