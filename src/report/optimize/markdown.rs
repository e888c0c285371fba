//! report.md: the run for people, as tables (phases; benchmark target, before, after,
//! change; settings current against recommended; indexes; maintenance; findings; journals
//! with their rollback commands).

use super::{comparison, missing_benchmark, mode_label, num, phases_done, status_label, took};
use crate::optimize::model::Report;
use crate::report::{bytes, duration, millis};

/// Text for a table cell: one line; `|`, `\`, backticks, `*` and brackets escaped (`_` is
/// left alone: inside a word it is no emphasis, and names are full of it), and `<`, `>`, `&`
/// as entities, so a hostile name renders as text and never as HTML.
pub(crate) fn text(s: &str) -> String {
    let one = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(one.len());
    for c in one.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
}

/// The run's headline as (label, value), shared by the markdown and the HTML.
pub(crate) fn headline(r: &Report) -> Vec<(&'static str, String)> {
    let t = &r.target;
    let mut rows = vec![
        (
            "target",
            format!("{}@{}:{}/{}", t.user, t.host, t.port, t.database),
        ),
        (
            "server",
            t.server_version.clone().unwrap_or_else(|| "-".into()),
        ),
        ("mode", mode_label(r.mode).to_string()),
        (
            "started",
            r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        ("took", duration_text(took(r))),
        ("phases", phases_done(r)),
        ("pgopt", r.pgopt_version.clone()),
        ("report schema", format!("v{}", r.schema_version)),
    ];
    if let Some(stop) = &r.interrupted {
        rows.push(("interrupted", stop.clone()));
    }
    if let Some(s) = &r.snapshot {
        if let Some(size) = s.database_size_bytes {
            rows.push(("database size", bytes(size)));
        }
        rows.push(("tables / indexes", format!("{} / {}", s.tables, s.indexes)));
        if let Some(ratio) = s.cache_hit_ratio {
            rows.push(("cache hit ratio", format!("{:.2} %", ratio * 100.0)));
        }
        if let (Some(c), Some(m)) = (s.connections, s.max_connections) {
            rows.push(("connections", format!("{c} of {m}")));
        }
    }
    rows
}

/// Seconds for people: `42.0 s` under a minute, else as [`duration`].
pub(crate) fn duration_text(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        duration(s)
    }
}

pub fn markdown(r: &Report) -> String {
    let mut out = format!(
        "# pgopt optimize: {} on {}:{}\n\n",
        text(&r.target.database),
        text(&r.target.host),
        r.target.port
    );
    table(
        &mut out,
        &["", ""],
        headline(r)
            .into_iter()
            .map(|(k, v)| vec![k.to_string(), text(&v)]),
    );

    out.push_str(&format!("\n## Phases: {}\n\n", phases_done(r)));
    table(
        &mut out,
        &["phase", "status", "seconds", "summary / reason"],
        r.phases.iter().map(|p| {
            let mut what = text(&p.summary);
            if let Some(reason) = &p.reason {
                what = if what.is_empty() {
                    text(reason)
                } else {
                    format!("{what}: {}", text(reason))
                };
            }
            vec![
                p.name.as_str().to_string(),
                status_label(p.status).to_string(),
                format!("{:.1}", p.seconds),
                what,
            ]
        }),
    );

    out.push_str("\n## Benchmark\n\n");
    if let Some(why) = missing_benchmark(r) {
        out.push_str(&format!("{}\n\n", text(&why)));
    }
    let rows = comparison(r);
    if !rows.is_empty() {
        for (label, b) in [("before", &r.bench_before), ("after", &r.bench_after)] {
            if let Some(b) = b {
                out.push_str(&format!(
                    "- {label}: {}, {} clients, {:.1} s, {} transactions, {} errors\n",
                    text(&b.workload),
                    b.clients,
                    b.duration_s,
                    b.transactions,
                    b.errors
                ));
            }
        }
        out.push('\n');
        table(
            &mut out,
            &["target", "before", "after", "change"],
            rows.iter()
                .map(|c| vec![text(&c.target), num(c.before), num(c.after), c.change()]),
        );
    }

    out.push_str("\n## Settings\n\n");
    if r.settings.is_empty() {
        out.push_str("No setting to change.\n");
    } else {
        table(
            &mut out,
            &["setting", "current", "recommended", "outcome", "why"],
            r.settings.iter().map(|s| {
                let restart = if s.needs_restart {
                    " (needs a restart)"
                } else {
                    ""
                };
                vec![
                    text(&s.name),
                    text(&s.current),
                    text(&s.recommended),
                    format!("{}{restart}", text(&s.outcome)),
                    text(&s.why),
                ]
            }),
        );
    }

    out.push_str("\n## Indexes\n\n");
    if r.indexes.is_empty() {
        out.push_str("No index suggested.\n");
    } else {
        table(
            &mut out,
            &[
                "DDL",
                "size",
                "cost before → after",
                "measured before → after (ms)",
                "outcome",
            ],
            r.indexes.iter().map(|i| {
                vec![
                    text(&i.ddl),
                    bytes(i.size_bytes),
                    format!("{:.0} → {:.0}", i.cost_before, i.cost_after),
                    match (i.measured_before_ms, i.measured_after_ms) {
                        (None, None) => "-".into(),
                        (b, a) => format!("{} → {}", num(b), num(a)),
                    },
                    text(&i.outcome),
                ]
            }),
        );
    }
    if !r.index_drops.is_empty() {
        out.push_str("\nAdvised to drop (optimize never drops an index):\n\n");
        table(
            &mut out,
            &["index", "size", "reason"],
            r.index_drops
                .iter()
                .map(|d| vec![text(&d.index), bytes(d.size_bytes), text(&d.reason)]),
        );
    }

    out.push_str("\n## Maintenance\n\n");
    if r.maintenance.is_empty() {
        out.push_str("No maintenance needed.\n");
    } else {
        table(
            &mut out,
            &["kind", "object", "reason", "outcome", "seconds"],
            r.maintenance.iter().map(|m| {
                vec![
                    text(&m.kind),
                    text(&m.object),
                    text(&m.reason),
                    text(&m.outcome),
                    m.seconds.map(|s| format!("{s:.1}")).unwrap_or("-".into()),
                ]
            }),
        );
    }

    if !r.steps.is_empty() {
        out.push_str("\n## Steps applied\n\n");
        table(
            &mut out,
            &["phase", "step", "state", "seconds", "reason"],
            r.steps.iter().map(|s| {
                vec![
                    s.phase.as_str().to_string(),
                    text(&s.what),
                    text(&s.state),
                    format!("{:.1}", s.seconds),
                    text(s.reason.as_deref().unwrap_or("")),
                ]
            }),
        );
    }

    if !r.top_statements.is_empty() {
        out.push_str("\n## Top statements by total time (before)\n\n");
        table(
            &mut out,
            &["statement", "calls", "total", "mean (ms)"],
            r.top_statements.iter().map(|s| {
                vec![
                    text(&s.query),
                    s.calls.to_string(),
                    millis(s.total_ms),
                    num(Some(s.mean_ms)),
                ]
            }),
        );
    }

    out.push_str("\n## Findings\n\n");
    if r.findings.is_empty() {
        out.push_str("No findings.\n");
    }
    for (i, (severity, group)) in by_severity(r).into_iter().enumerate() {
        out.push_str(&format!(
            "{}### {} ({})\n\n",
            if i == 0 { "" } else { "\n" },
            severity.to_uppercase(),
            group.len()
        ));
        table(
            &mut out,
            &["rule", "object", "finding"],
            group
                .iter()
                .map(|f| vec![text(&f.rule), text(&f.object), text(&f.message)]),
        );
    }

    out.push_str("\n## Journals\n\n");
    if r.journals.is_empty() {
        out.push_str("Nothing was changed, so there is nothing to roll back.\n");
    } else {
        table(
            &mut out,
            &["phase", "journal", "undo with"],
            r.journals.iter().map(|j| {
                vec![
                    j.phase.as_str().to_string(),
                    text(&j.path),
                    text(&j.rollback),
                ]
            }),
        );
    }
    out
}

/// The findings grouped by severity, most severe first (unknown severities last, as given).
pub(crate) fn by_severity(r: &Report) -> Vec<(String, Vec<&crate::optimize::model::FindingRow>)> {
    let mut order: Vec<String> = ["critical", "warning", "info"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for f in &r.findings {
        let s = f.severity.to_lowercase();
        if !order.contains(&s) {
            order.push(s);
        }
    }
    order
        .into_iter()
        .map(|s| {
            let group: Vec<_> = r
                .findings
                .iter()
                .filter(|f| f.severity.to_lowercase() == s)
                .collect();
            (s, group)
        })
        .filter(|(_, g)| !g.is_empty())
        .collect()
}
