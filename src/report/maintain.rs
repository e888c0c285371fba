//! `pgopt maintain` for people and programs: the tasks one line each (80 columns), why each
//! is needed with the snapshot's numbers, what it costs, and the SQL; after `--apply`, how
//! each step ended. Pure.

use serde_json::{json, Value};

use crate::advise::bytes;
use crate::maintain::{Advice, Kind, Task};

/// The report's width: one line per task fits in it.
pub const WIDTH: usize = 80;

/// The version of the JSON form.
pub const JSON_SCHEMA: &str = "pgopt.maintain/1";

/// How one step of `--apply` ended, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedRow {
    /// 1-based task number.
    pub task: usize,
    pub what: String,
    /// `done`, `skipped`, `failed`, `not run`.
    pub state: String,
    pub reason: Option<String>,
    pub seconds: f64,
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Words of `text` wrapped to `width`, each line after the first indented by `indent`.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width - indent {
            out.push_str(&line);
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out
}

/// The total bytes the tasks read.
fn total_bytes(advice: &Advice) -> i64 {
    advice
        .tasks
        .iter()
        .filter(|t| t.kind != Kind::Autovacuum)
        .map(|t| t.bytes.max(0))
        .sum()
}

fn headline(advice: &Advice) -> String {
    if advice.tasks.is_empty() {
        return "maintenance: nothing to do — no table or index is past a maintenance threshold"
            .to_string();
    }
    let mut kinds: Vec<(Kind, usize)> = Vec::new();
    for t in &advice.tasks {
        match kinds.iter_mut().find(|(k, _)| *k == t.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((t.kind, 1)),
        }
    }
    kinds.sort();
    let list: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect();
    format!(
        "maintenance: {} ({}), {} to read; none blocks writes",
        crate::advise::count(advice.tasks.len(), "task", "tasks"),
        list.join(", "),
        bytes(total_bytes(advice))
    )
}

/// What a task's need is, short: its urgency for a freeze, else its severity.
fn need(t: &Task) -> String {
    t.severity.as_str().to_string()
}

/// The task line: `#  task  need  size  object`, at most [`WIDTH`] columns.
fn line(i: usize, t: &Task) -> String {
    let size = if t.kind == Kind::Autovacuum {
        "-".to_string()
    } else {
        bytes(t.bytes)
    };
    let head = format!(
        "{:>3}  {:<10} {:<8} {:>10}  ",
        i + 1,
        t.kind.as_str(),
        need(t),
        size
    );
    let room = WIDTH.saturating_sub(head.chars().count());
    format!("{head}{}", cut(&t.object, room))
}

/// The table form: headline, one line per task, then why and what each costs, the SQL, and
/// the notes.
pub fn table(advice: &Advice) -> String {
    let mut out = format!("{}\n", headline(advice));
    if advice.tasks.is_empty() {
        for n in &advice.notes {
            out.push_str(&format!("note: {}\n", wrap(n, WIDTH, 6)));
        }
        return out;
    }
    out.push_str(&format!(
        "\n{:>3}  {:<10} {:<8} {:>10}  {}\n",
        "#", "task", "need", "size", "object"
    ));
    for (i, t) in advice.tasks.iter().enumerate() {
        out.push_str(&line(i, t));
        out.push('\n');
    }
    out.push_str("\nwhy, and what it costs:\n");
    for (i, t) in advice.tasks.iter().enumerate() {
        let mut why = t.reason.clone();
        if let Some(u) = &t.urgency {
            why.push_str(&format!(" [{}: {}]", u.what, u.text));
        }
        if !t.also.is_empty() {
            why.push_str(&format!(" (also answers: {})", t.also.join(", ")));
        }
        out.push_str(&format!("{:>3}  {}\n", i + 1, wrap(&why, WIDTH, 5)));
        out.push_str(&format!("     {}\n", wrap(&cost(t), WIDTH, 5)));
    }
    out.push_str("\nSQL, in order (VACUUM and REINDEX CONCURRENTLY run outside a transaction):\n");
    for t in &advice.tasks {
        for s in &t.steps {
            out.push_str(&s.display_sql());
            out.push('\n');
        }
    }
    for n in &advice.notes {
        out.push_str(&format!("note: {}\n", wrap(n, WIDTH, 6)));
    }
    out
}

/// What a task costs: what it reads and the lock it takes.
pub fn cost(t: &Task) -> String {
    match t.kind {
        Kind::Autovacuum => format!("cost: a catalog update; lock {}", t.kind.lock_text()),
        Kind::Reindex => format!(
            "cost: reads its table and writes a new index of up to {} (free disk needed); lock {}",
            bytes(t.bytes),
            t.kind.lock_text()
        ),
        Kind::Analyze => format!(
            "cost: reads a sample of {} (at most 300 × default_statistics_target rows); lock {}",
            bytes(t.bytes),
            t.kind.lock_text()
        ),
        _ => format!(
            "cost: reads up to {} (the pages not all-visible); lock {}",
            bytes(t.bytes),
            t.kind.lock_text()
        ),
    }
}

/// The markdown form: one table row per task, the SQL as a block, the notes.
pub fn markdown(advice: &Advice) -> String {
    let cell = crate::report::markdown_cell;
    let mut out = format!("## Maintenance\n\n{}\n\n", headline(advice));
    if !advice.tasks.is_empty() {
        out.push_str("| # | task | need | size | object | why | cost |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for (i, t) in advice.tasks.iter().enumerate() {
            let mut why = t.reason.clone();
            if let Some(u) = &t.urgency {
                why.push_str(&format!(" [{}: {}]", u.what, u.text));
            }
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                i + 1,
                t.kind.as_str(),
                need(t),
                if t.kind == Kind::Autovacuum {
                    "-".to_string()
                } else {
                    bytes(t.bytes)
                },
                cell(&t.object),
                cell(&why),
                cell(&cost(t))
            ));
        }
        out.push_str("\n```sql\n");
        for t in &advice.tasks {
            for s in &t.steps {
                out.push_str(&s.display_sql());
                out.push('\n');
            }
        }
        out.push_str("```\n");
    }
    if !advice.notes.is_empty() {
        out.push('\n');
        for n in &advice.notes {
            out.push_str(&format!("- {}\n", cell(n)));
        }
    }
    out
}

/// The JSON form (schema [`JSON_SCHEMA`]): the advice, the SQL script, and after `--apply`
/// the steps' outcomes.
pub fn json(advice: &Advice, applied: Option<&[AppliedRow]>) -> Value {
    let tasks: Vec<Value> = advice
        .tasks
        .iter()
        .map(|t| {
            let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("cost".into(), json!(cost(t)));
                o.insert(
                    "sql".into(),
                    json!(crate::plan::script(&t.steps).to_string()),
                );
            }
            v
        })
        .collect();
    let mut out = json!({
        "schema": JSON_SCHEMA,
        "tasks": tasks,
        "notes": advice.notes,
        "bytes_to_read": total_bytes(advice),
    });
    if let Some(rows) = applied {
        out["applied"] = rows
            .iter()
            .map(|r| {
                json!({
                    "task": r.task,
                    "what": r.what,
                    "state": r.state,
                    "reason": r.reason,
                    "seconds": r.seconds,
                })
            })
            .collect();
    }
    out
}

/// After `--apply`: one line per step, how it ended.
pub fn applied(rows: &[AppliedRow]) -> String {
    let mut out = String::from("\napplied:\n");
    for r in rows {
        let head = format!("{:>3}  {:<8} {:>7.1}s  ", r.task, r.state, r.seconds);
        let room = WIDTH.saturating_sub(head.chars().count());
        out.push_str(&format!("{head}{}\n", cut(&r.what, room)));
        if let Some(reason) = &r.reason {
            out.push_str(&format!("     {}\n", wrap(reason, WIDTH, 5)));
        }
    }
    let count = |s: &str| rows.iter().filter(|r| r.state == s).count();
    out.push_str(&format!(
        "{} done, {} skipped, {} failed, {} not run\n",
        count("done"),
        count("skipped"),
        count("failed"),
        count("not run")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advise::Severity;
    use crate::ident::QualifiedName;
    use crate::plan::Step;

    fn task(kind: Kind, object: &str) -> Task {
        Task {
            kind,
            object: object.into(),
            table: object.into(),
            rule: "autovacuum_behind".into(),
            severity: Severity::Warning,
            reason: "table has 5000 dead tuples, past its autovacuum threshold of 70".into(),
            bytes: 3 * 1024 * 1024,
            steps: vec![Step::vacuum(
                &QualifiedName::new("public", object),
                "ANALYZE",
            )],
            urgency: None,
            also: Vec::new(),
        }
    }

    #[test]
    fn each_task_is_one_line_of_at_most_80_columns() {
        let long = "a_table_with_a_name_long_enough_to_overflow_eighty_columns_by_itself_xxxxxxxx";
        let advice = Advice {
            tasks: vec![task(Kind::Vacuum, "t"), task(Kind::Vacuum, long)],
            notes: vec![],
        };
        let text = table(&advice);
        for l in text.lines() {
            if l.contains("VACUUM (") {
                continue; // SQL is printed whole
            }
            assert!(l.chars().count() <= WIDTH, "{l:?} is wider than {WIDTH}");
        }
        assert!(
            text.contains("  1  vacuum     warning      3.0 MB  t\n"),
            "{text}"
        );
        assert!(
            text.contains("VACUUM (ANALYZE) \"public\".\"t\";"),
            "{text}"
        );
        assert!(text.contains("dead tuples"), "{text}");
        assert!(text.contains("none blocks writes"), "{text}");
    }

    #[test]
    fn nothing_to_do_says_so() {
        let text = table(&Advice::default());
        assert!(text.contains("nothing to do"), "{text}");
        let v = json(&Advice::default(), None);
        assert_eq!(v["schema"], JSON_SCHEMA);
        assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    }
}
