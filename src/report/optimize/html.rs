//! report.html: one self-contained page (inline CSS, inline SVG, no script, nothing fetched)
//! with report.md's tables and the charts: latency percentiles per operation before and
//! after, throughput, top statements by total time, the indexes and their sizes. Every
//! value on the page is escaped: statement texts and object names are hostile input.

use plotters::style::RGBColor;

use super::markdown::{by_severity, duration_text, headline};
use super::{
    comparison, index_name, missing_benchmark, num, operation_names, outcome_is, phases_done,
    status_label,
};
use crate::optimize::model::{BenchSummary, Latency, Report};
use crate::report::bytes;
use crate::report::chart::{ms, palette, Bars, Scale, Series};
use crate::report::html::{esc, page};

/// One percentile of a latency.
type Percentile = fn(&Latency) -> f64;

/// The top statements charted (the table lists them all).
const TOP_CHARTED: usize = 10;

fn table(out: &mut String, head: &[&str], rows: impl IntoIterator<Item = Vec<Cell>>) {
    out.push_str("<table>\n<tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            out.push_str(&c.html());
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

/// A table cell: its text (escaped when written) and an optional class.
struct Cell {
    text: String,
    class: Option<&'static str>,
}

impl Cell {
    fn html(&self) -> String {
        match self.class {
            Some(c) => format!("<td class=\"{c}\">{}</td>", esc(&self.text)),
            None => format!("<td>{}</td>", esc(&self.text)),
        }
    }
}

/// A figure, right-aligned.
fn n(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: None,
    }
}

/// Prose or code, left-aligned and wrapped.
fn t(text: impl Into<String>) -> Cell {
    Cell {
        text: text.into(),
        class: Some("text"),
    }
}

fn classed(text: impl Into<String>, class: &'static str) -> Cell {
    Cell {
        text: text.into(),
        class: Some(class),
    }
}

fn outcome_cell(outcome: &str) -> Cell {
    let class = ["done", "skipped", "failed"]
        .into_iter()
        .find(|w| outcome_is(outcome, w))
        .unwrap_or("text");
    classed(outcome, class)
}

fn note(out: &mut String, kind: &str, text: &str) {
    out.push_str(&format!(
        "<p class=\"note\" data-note=\"{kind}\">{}</p>\n",
        esc(text)
    ));
}

/// The chart in a `<figure data-chart=NAME>`, or a note saying why it could not be drawn.
fn figure(out: &mut String, name: &str, chart: Bars<'_>) {
    match chart.svg() {
        Ok(svg) => out.push_str(&format!(
            "<figure class=\"chart\" data-chart=\"{name}\">\n{svg}</figure>\n"
        )),
        Err(e) => note(out, "chart-error", &format!("chart not drawn: {e}")),
    }
}

/// A colour halfway to white: the "before" shade of a series.
fn light(c: RGBColor) -> RGBColor {
    let mix = |v: u8| ((v as u16 + 255) / 2) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

pub fn html(r: &Report) -> String {
    let mut out = String::new();
    out.push_str("<table>\n");
    for (k, v) in headline(r) {
        out.push_str(&format!(
            "<tr><th>{}</th><td class=\"text\">{}</td></tr>\n",
            esc(k),
            esc(&v)
        ));
    }
    out.push_str("</table>\n");

    out.push_str(&format!("<h2>Phases: {}</h2>\n", esc(&phases_done(r))));
    table(
        &mut out,
        &["phase", "status", "seconds", "summary / reason"],
        r.phases.iter().map(|p| {
            let status = status_label(p.status);
            let what = match &p.reason {
                Some(reason) if p.summary.is_empty() => reason.clone(),
                Some(reason) => format!("{}: {reason}", p.summary),
                None => p.summary.clone(),
            };
            vec![
                t(p.name.as_str()),
                classed(status, status),
                n(format!("{:.1}", p.seconds)),
                t(what),
            ]
        }),
    );

    benchmark(&mut out, r);
    statements(&mut out, r);
    indexes(&mut out, r);
    settings(&mut out, r);
    maintenance(&mut out, r);

    if !r.steps.is_empty() {
        out.push_str("<h2>Steps applied</h2>\n");
        table(
            &mut out,
            &["phase", "step", "state", "seconds", "reason"],
            r.steps.iter().map(|s| {
                vec![
                    t(s.phase.as_str()),
                    t(s.what.clone()),
                    outcome_cell(&s.state),
                    n(format!("{:.1}", s.seconds)),
                    t(s.reason.clone().unwrap_or_default()),
                ]
            }),
        );
    }

    out.push_str("<h2>Findings</h2>\n");
    if r.findings.is_empty() {
        note(&mut out, "no-findings", "No findings.");
    }
    for (severity, group) in by_severity(r) {
        out.push_str(&format!(
            "<h3>{} ({})</h3>\n",
            esc(&severity.to_uppercase()),
            group.len()
        ));
        table(
            &mut out,
            &["rule", "object", "finding"],
            group
                .iter()
                .map(|f| vec![t(f.rule.clone()), t(f.object.clone()), t(f.message.clone())]),
        );
    }

    out.push_str("<h2>Journals</h2>\n");
    if r.journals.is_empty() {
        note(
            &mut out,
            "no-journal",
            "Nothing was changed, so there is nothing to roll back.",
        );
    } else {
        table(
            &mut out,
            &["phase", "journal", "undo with"],
            r.journals.iter().map(|j| {
                vec![
                    t(j.phase.as_str()),
                    t(j.path.clone()),
                    t(j.rollback.clone()),
                ]
            }),
        );
    }

    page(
        &format!(
            "pgopt optimize: {} on {}:{} ({})",
            r.target.database,
            r.target.host,
            r.target.port,
            duration_text(super::took(r))
        ),
        &out,
    )
}

fn run_line(label: &str, b: &BenchSummary) -> String {
    format!(
        "{label}: {}, {} clients, {:.1} s, {} transactions, {} errors, {:.1} tx/s",
        b.workload, b.clients, b.duration_s, b.transactions, b.errors, b.throughput_tps
    )
}

fn benchmark(out: &mut String, r: &Report) {
    out.push_str("<h2>Benchmark</h2>\n");
    if let Some(why) = missing_benchmark(r) {
        note(out, "no-benchmark", &why);
    }
    let rows = comparison(r);
    if rows.is_empty() {
        return;
    }
    out.push_str("<ul>\n");
    for (label, b) in [("before", &r.bench_before), ("after", &r.bench_after)] {
        if let Some(b) = b {
            out.push_str(&format!("<li>{}</li>\n", esc(&run_line(label, b))));
        }
    }
    out.push_str("</ul>\n");
    table(
        out,
        &["target", "before", "after", "change"],
        rows.iter().map(|c| {
            let change = match c.better() {
                Some(true) => classed(c.change(), "better"),
                Some(false) => classed(c.change(), "worse"),
                None => n(c.change()),
            };
            vec![
                t(c.target.clone()),
                n(num(c.before)),
                n(num(c.after)),
                change,
            ]
        }),
    );

    let sides: Vec<(&str, &BenchSummary)> =
        [("before", &r.bench_before), ("after", &r.bench_after)]
            .into_iter()
            .filter_map(|(l, b)| b.as_ref().map(|b| (l, b)))
            .collect();
    let names = operation_names(r);
    let pick: [(&str, Percentile); 3] = [
        ("p50", |l| l.p50_ms),
        ("p90", |l| l.p90_ms),
        ("p99", |l| l.p99_ms),
    ];
    let mut series = Vec::new();
    for (i, (p, _)) in pick.iter().enumerate() {
        for (side, _) in &sides {
            let color = if *side == "before" && sides.len() == 2 {
                light(palette(i))
            } else {
                palette(i)
            };
            series.push(Series {
                label: format!("{p} {side}"),
                color,
            });
        }
    }
    let latency_rows = names
        .iter()
        .map(|name| {
            let mut values = Vec::new();
            for (_, f) in &pick {
                for (_, b) in &sides {
                    values.push(
                        b.operations
                            .iter()
                            .find(|o| &o.name == name)
                            .map(|o| f(&o.latency)),
                    );
                }
            }
            (name.clone(), values)
        })
        .collect();
    figure(
        out,
        "latency",
        Bars {
            title: "latency percentiles per operation, before and after",
            axis: "latency (ms)",
            series,
            rows: latency_rows,
            scale: Scale::Auto,
            format: ms,
        },
    );

    let mut throughput_rows = vec![(
        "all operations".to_string(),
        sides.iter().map(|(_, b)| Some(b.throughput_tps)).collect(),
    )];
    for name in &names {
        throughput_rows.push((
            name.clone(),
            sides
                .iter()
                .map(|(_, b)| {
                    b.operations
                        .iter()
                        .find(|o| &o.name == name)
                        .map(|o| o.throughput_tps)
                })
                .collect(),
        ));
    }
    figure(
        out,
        "throughput",
        Bars {
            title: "throughput, before and after",
            axis: "throughput (transactions/s)",
            series: sides
                .iter()
                .enumerate()
                .map(|(i, (side, _))| Series {
                    label: side.to_string(),
                    color: palette(i + 3),
                })
                .collect(),
            rows: throughput_rows,
            scale: Scale::Auto,
            format: |v| format!("{v:.0}"),
        },
    );
}

fn statements(out: &mut String, r: &Report) {
    out.push_str("<h2>Top statements by total time (before the changes)</h2>\n");
    if r.top_statements.is_empty() {
        note(
            out,
            "no-statements",
            "No statement statistics (pg_stat_statements) in this run.",
        );
        return;
    }
    let mut top: Vec<_> = r.top_statements.iter().collect();
    top.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    figure(
        out,
        "statements",
        Bars {
            title: "top statements by total execution time",
            axis: "total execution time (ms)",
            series: vec![Series {
                label: "total time".into(),
                color: palette(5),
            }],
            rows: top
                .iter()
                .take(TOP_CHARTED)
                .map(|s| (s.query.clone(), vec![Some(s.total_ms)]))
                .collect(),
            scale: Scale::Auto,
            format: ms,
        },
    );
    table(
        out,
        &["statement", "calls", "total ms", "mean ms"],
        top.iter().map(|s| {
            vec![
                t(s.query.clone()),
                n(s.calls.to_string()),
                n(ms(s.total_ms)),
                n(ms(s.mean_ms)),
            ]
        }),
    );
}

/// Bytes in the unit that suits the largest: (divisor, unit).
fn size_unit(max: i64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut div = 1.0;
    let mut unit = 0;
    while max as f64 / div >= 1024.0 && unit < UNITS.len() - 1 {
        div *= 1024.0;
        unit += 1;
    }
    (div, UNITS[unit])
}

fn indexes(out: &mut String, r: &Report) {
    out.push_str("<h2>Indexes</h2>\n");
    if r.indexes.is_empty() {
        note(out, "no-indexes", "No index suggested.");
    } else {
        let created: Vec<_> = r
            .indexes
            .iter()
            .filter(|i| outcome_is(&i.outcome, "done"))
            .collect();
        let (charted, title) = if created.is_empty() {
            (
                r.indexes.iter().collect::<Vec<_>>(),
                "indexes suggested (none created) and their estimated sizes",
            )
        } else {
            (created, "indexes created and their estimated sizes")
        };
        let (div, unit) = size_unit(charted.iter().map(|i| i.size_bytes).max().unwrap_or(0));
        let axis = format!("estimated size ({unit})");
        figure(
            out,
            "indexes",
            Bars {
                title,
                axis: &axis,
                series: vec![Series {
                    label: "size".into(),
                    color: palette(6),
                }],
                rows: charted
                    .iter()
                    .map(|i| {
                        (
                            format!("{} on {}", index_name(&i.ddl), i.table),
                            vec![Some(i.size_bytes as f64 / div)],
                        )
                    })
                    .collect(),
                scale: Scale::Linear,
                format: ms,
            },
        );
        table(
            out,
            &[
                "DDL",
                "size",
                "cost before → after",
                "measured before → after (ms)",
                "outcome",
            ],
            r.indexes.iter().map(|i| {
                vec![
                    t(i.ddl.clone()),
                    n(bytes(i.size_bytes)),
                    n(format!("{:.0} → {:.0}", i.cost_before, i.cost_after)),
                    n(match (i.measured_before_ms, i.measured_after_ms) {
                        (None, None) => "-".into(),
                        (b, a) => format!("{} → {}", num(b), num(a)),
                    }),
                    outcome_cell(&i.outcome),
                ]
            }),
        );
    }
    if !r.index_drops.is_empty() {
        out.push_str("<h3>Advised to drop (optimize never drops an index)</h3>\n");
        table(
            out,
            &["index", "size", "reason"],
            r.index_drops.iter().map(|d| {
                vec![
                    t(d.index.clone()),
                    n(bytes(d.size_bytes)),
                    t(d.reason.clone()),
                ]
            }),
        );
    }
}

fn settings(out: &mut String, r: &Report) {
    out.push_str("<h2>Settings</h2>\n");
    if r.settings.is_empty() {
        note(out, "no-settings", "No setting to change.");
        return;
    }
    let changed = r
        .settings
        .iter()
        .filter(|s| outcome_is(&s.outcome, "done"))
        .count();
    out.push_str(&format!(
        "<p>{changed} of {} changed.</p>\n",
        r.settings.len()
    ));
    table(
        out,
        &[
            "setting",
            "current",
            "recommended",
            "restart",
            "outcome",
            "why",
        ],
        r.settings.iter().map(|s| {
            vec![
                t(s.name.clone()),
                n(s.current.clone()),
                n(s.recommended.clone()),
                n(if s.needs_restart { "needed" } else { "no" }),
                outcome_cell(&s.outcome),
                t(s.why.clone()),
            ]
        }),
    );
}

fn maintenance(out: &mut String, r: &Report) {
    out.push_str("<h2>Maintenance</h2>\n");
    if r.maintenance.is_empty() {
        note(out, "no-maintenance", "No maintenance needed.");
        return;
    }
    table(
        out,
        &["kind", "object", "reason", "SQL", "outcome", "seconds"],
        r.maintenance.iter().map(|m| {
            vec![
                t(m.kind.clone()),
                t(m.object.clone()),
                t(m.reason.clone()),
                t(m.sql.clone()),
                outcome_cell(&m.outcome),
                n(m.seconds.map(|s| format!("{s:.1}")).unwrap_or("-".into())),
            ]
        }),
    );
}
