//! Rendering `pgopt bench` results and comparisons. Pure: no I/O.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use crate::bench::compare::{Comparison, OperationDiff, Pair};
use crate::bench::{BenchResult, Outcome};

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if t.width().is_none() {
        t.set_width(160);
    }
    t
}

fn right_align(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The headline, then one row per operation.
pub fn render_result_table(r: &BenchResult) -> String {
    let mut head = new_table();
    let outcome = match r.outcome {
        Outcome::Completed => "completed".to_string(),
        Outcome::Interrupted => "interrupted (Ctrl-C): partial result".to_string(),
        Outcome::Failed => "failed: partial result".to_string(),
    };
    let rate = r
        .rate
        .map(|x| format!(", target rate {x:.0} tx/s"))
        .unwrap_or_default();
    let rows: Vec<(&str, String)> = vec![
        ("workload", format!("{} (scale {})", r.workload, r.scale)),
        ("server", format!("PostgreSQL {}", r.server_version)),
        (
            "clients / connections",
            format!("{} / {}{rate}", r.clients, r.connections),
        ),
        ("outcome", outcome),
        (
            "duration",
            format!(
                "{:.2} s (warm-up {:.1} s excluded)",
                r.duration_s, r.warmup_s
            ),
        ),
        (
            "transactions",
            format!(
                "{} ok, {} failed (one run of a script = one transaction)",
                r.transactions, r.errors
            ),
        ),
        ("throughput", format!("{:.1} tx/s", r.throughput_tps)),
        (
            "latency (ms)",
            format!(
                "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
                ms(r.latency.p50_ms),
                ms(r.latency.p90_ms),
                ms(r.latency.p99_ms),
                ms(r.latency.p999_ms),
                ms(r.latency.max_ms),
                ms(r.latency.mean_ms)
            ),
        ),
        (
            "latency split (ms)",
            format!(
                "wait for a connection: mean {} p99 {}; exec: mean {} p99 {}",
                ms(r.wait.mean_ms),
                ms(r.wait.p99_ms),
                ms(r.exec.mean_ms),
                ms(r.exec.p99_ms)
            ),
        ),
        (
            "connect",
            format!(
                "one connect {:.1} ms; pool of {} set up in {:.1} ms ({:.2}x one connect)",
                r.one_connect_ms,
                r.connections,
                r.pool_setup_ms,
                if r.one_connect_ms > 0.0 {
                    r.pool_setup_ms / r.one_connect_ms
                } else {
                    0.0
                }
            ),
        ),
    ];
    for (label, value) in rows {
        head.add_row(vec![label.to_string(), value]);
    }
    if r.connections_lost > 0 {
        head.add_row(vec![
            "connections lost".to_string(),
            r.connections_lost.to_string(),
        ]);
    }
    if let Some(e) = &r.error {
        head.add_row(vec!["error".to_string(), e.clone()]);
    }
    let mut out = head.to_string();
    out.push('\n');

    let mut t = new_table();
    t.set_header(vec![
        "script", "count", "tx/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms",
        "errors",
    ]);
    for op in &r.scripts {
        let errors = op.errors_text();
        t.add_row(vec![
            op.name.clone(),
            op.count.to_string(),
            format!("{:.1}", op.throughput_tps),
            ms(op.latency.p50_ms),
            ms(op.latency.p90_ms),
            ms(op.latency.p99_ms),
            ms(op.latency.p999_ms),
            ms(op.latency.max_ms),
            ms(op.latency.mean_ms),
            errors,
        ]);
    }
    right_align(&mut t, 1);
    out.push_str(&t.to_string());
    out.push('\n');
    out.push_str(&statements_table(r));
    out
}

/// Per statement of each script, as `pgbench -r`: count, mean and p99 latency, failures.
fn statements_table(r: &BenchResult) -> String {
    let mut t = new_table();
    t.set_header(vec![
        "script",
        "line",
        "name",
        "statement",
        "count",
        "mean ms",
        "p99 ms",
        "failures",
    ]);
    for s in &r.scripts {
        for st in &s.statements {
            let sql: String = st.sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let sql = if sql.chars().count() > 50 {
                format!("{}...", sql.chars().take(47).collect::<String>())
            } else {
                sql
            };
            t.add_row(vec![
                s.name.clone(),
                if st.line > 0 {
                    st.line.to_string()
                } else {
                    "-".into()
                },
                st.name.clone(),
                sql,
                st.count.to_string(),
                ms(st.mean_ms),
                ms(st.p99_ms),
                crate::bench::result::errors_text(&st.errors),
            ]);
        }
    }
    right_align(&mut t, 4);
    format!("{t}\n")
}

pub fn render_result_json(r: &BenchResult) -> String {
    serde_json::to_string_pretty(r).expect("a bench result serialises")
}

fn cell(v: Option<f64>, fmt: fn(f64) -> String) -> String {
    v.map(fmt).unwrap_or_else(|| "missing".to_string())
}

fn ratio(p: &Pair) -> String {
    p.ratio
        .map(|r| format!("{r:.2}"))
        .unwrap_or_else(|| "-".to_string())
}

fn diff_row(d: &OperationDiff) -> Vec<String> {
    let tps = |v: f64| format!("{v:.1}");
    vec![
        d.name.clone(),
        cell(d.p50_ms.a, ms),
        cell(d.p50_ms.b, ms),
        ratio(&d.p50_ms),
        cell(d.p99_ms.a, ms),
        cell(d.p99_ms.b, ms),
        ratio(&d.p99_ms),
        cell(d.throughput_tps.a, tps),
        cell(d.throughput_tps.b, tps),
        ratio(&d.throughput_tps),
        cell(d.errors.a, |v| format!("{v:.0}")),
        cell(d.errors.b, |v| format!("{v:.0}")),
    ]
}

pub fn render_comparison_table(c: &Comparison) -> String {
    let mut t = new_table();
    t.set_header(vec![
        "script", "p50 A", "p50 B", "B/A", "p99 A", "p99 B", "B/A", "tx/s A", "tx/s B", "B/A",
        "errors A", "errors B",
    ]);
    for d in &c.scripts {
        t.add_row(diff_row(d));
    }
    t.add_row(diff_row(&c.total));
    right_align(&mut t, 1);
    let label = |file: &str, workload: &str| {
        if file.is_empty() {
            workload.to_string()
        } else {
            format!("{file} ({workload})")
        }
    };
    let mut out = format!(
        "A: {}\nB: {}\n(latency in ms; B/A below 1 means B is faster for latency, above 1 \
         means B has more throughput)\n",
        label(&c.a_file, &c.a_workload),
        label(&c.b_file, &c.b_workload)
    );
    for d in &c.differences {
        out.push_str(&format!(
            "{}: {d}\n",
            if d.blocking { "NOT COMPARABLE" } else { "note" }
        ));
    }
    out.push_str(&format!("{t}\n"));
    out
}

pub fn render_comparison_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("a comparison serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::{Latency, ScriptResult, RESULT_SCHEMA_VERSION};

    fn result(outcome: Outcome, ops: &[&str]) -> BenchResult {
        BenchResult {
            schema_version: RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "wl".into(),
            server_version: "15.8".into(),
            host: None,
            scale: 1,
            clients: 200,
            connections: 4,
            rate: None,
            warmup_s: 0.0,
            duration_s: 2.0,
            transactions: 10,
            errors: 1,
            throughput_tps: 5.0,
            pool_setup_ms: 4.0,
            one_connect_ms: 2.0,
            connections_lost: 0,
            outcome,
            error: (outcome == Outcome::Failed).then(|| "lost every connection".to_string()),
            latency: Latency::default(),
            wait: Latency::default(),
            exec: Latency::default(),
            scripts: ops
                .iter()
                .map(|n| ScriptResult {
                    name: n.to_string(),
                    weight: 1,
                    count: 5,
                    errors: [("22012".to_string(), 1)].into_iter().collect(),
                    throughput_tps: 2.5,
                    latency: Latency::default(),
                    statements: vec![crate::bench::StatementResult {
                        name: format!("{n}:1"),
                        sql: format!("SELECT {n}_stmt FROM t WHERE id = $1"),
                        line: 3,
                        count: 5,
                        errors: [("22012".to_string(), 1)].into_iter().collect(),
                        mean_ms: 1.5,
                        p99_ms: 2.5,
                    }],
                })
                .collect(),
        }
    }

    #[test]
    fn the_result_table_shows_outcome_operations_and_errors_by_sqlstate() {
        let t = render_result_table(&result(Outcome::Failed, &["login", "audit"]));
        for needle in [
            "wl",
            "200 / 4",
            "failed: partial result",
            "lost every connection",
            "login",
            "audit",
            "22012: 1",
            "2.00x one connect",
            "login_stmt FROM t WHERE id = $1",
            "login:1",
            "wait for a connection",
        ] {
            assert!(t.contains(needle), "{needle} missing in\n{t}");
        }
        let t = render_result_table(&result(Outcome::Interrupted, &["x"]));
        assert!(t.contains("interrupted"), "{t}");
    }

    #[test]
    fn the_comparison_table_marks_operations_missing_on_one_side() {
        let a = result(Outcome::Completed, &["login", "gone"]);
        let b = result(Outcome::Completed, &["login", "new"]);
        let t = render_comparison_table(&crate::bench::compare(&a, &b));
        for needle in ["login", "gone", "new", "missing", "total", "1.00"] {
            assert!(t.contains(needle), "{needle} missing in\n{t}");
        }
    }
}
