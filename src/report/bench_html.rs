//! HTML reports of runs: the figures people compare as tables, and the pictures that say more
//! (the latency distribution of each operation; before against after) as SVG charts drawn
//! with plotters. Pure: results in, one self-contained HTML page out.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::chart::{chart_error, ms, palette, positive_range, Bars, Scale, Series, WIDTH};
use super::html::{esc, page};
use crate::bench::compare::{Comparison, Pair};
use crate::bench::{BenchResult, Latency, ScriptResult};
use crate::error::Result;

const HEIGHT: u32 = 480;
const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

fn latency_values(l: &Latency) -> [f64; 5] {
    [l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms]
}

/// The latency percentiles of each operation as lines over p50 .. max (log scale).
fn percentile_chart(title: &str, series: &[(String, [f64; 5])]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        draw_percentiles(&root, title, series)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

fn draw_percentiles(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    series: &[(String, [f64; 5])],
) -> Result<()> {
    let range = positive_range(series.iter().flat_map(|(_, v)| v.iter().copied()));
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(-0.2f64..4.2f64, range.log_scale())
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && (0.0..=4.0).contains(&i) {
                PERCENTILES[i as usize].to_string()
            } else {
                String::new()
            }
        })
        .y_desc("latency (ms, log scale)")
        .y_label_formatter(&|y| ms(*y))
        .draw()
        .map_err(chart_error)?;
    for (i, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(x, v)| (x as f64, *v))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(chart_error)?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(chart_error)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)?;
    Ok(())
}

/// One figure of every operation, A beside B, as horizontal bars (log scale), the first
/// operation on top.
fn before_after_chart(
    title: &str,
    labels: (&str, &str),
    rows: &[(String, Option<f64>, Option<f64>)],
) -> Result<String> {
    Bars {
        title,
        axis: "latency (ms)",
        series: [labels.0, labels.1]
            .into_iter()
            .enumerate()
            .map(|(i, label)| Series {
                label: label.to_string(),
                color: palette(i),
            })
            .collect(),
        rows: rows
            .iter()
            .map(|(name, a, b)| (name.clone(), vec![*a, *b]))
            .collect(),
        scale: Scale::Log,
        format: ms,
    }
    .svg()
}

fn run_summary(r: &BenchResult) -> String {
    let mut rows = vec![
        ("workload", r.workload.clone()),
        ("server", r.server_version.clone()),
        (
            "clients / connections",
            format!("{} / {}", r.clients, r.connections),
        ),
        ("measured", format!("{:.1} s", r.duration_s)),
        ("transactions", r.transactions.to_string()),
        ("throughput", format!("{:.1} tx/s", r.throughput_tps)),
        ("errors", r.errors.to_string()),
        (
            "latency split",
            format!(
                "wait for a connection: mean {} ms, p99 {} ms; exec: mean {} ms, p99 {} ms",
                ms(r.wait.mean_ms),
                ms(r.wait.p99_ms),
                ms(r.exec.mean_ms),
                ms(r.exec.p99_ms)
            ),
        ),
        ("pool set-up", format!("{:.2} ms", r.pool_setup_ms)),
        ("one connect", format!("{:.2} ms", r.one_connect_ms)),
        ("outcome", format!("{:?}", r.outcome).to_lowercase()),
    ];
    if let Some(rate) = r.rate {
        rows.insert(4, ("target rate", format!("{rate:.1} tx/s")));
    }
    if let Some(e) = &r.error {
        rows.push(("error", e.clone()));
    }
    let mut out = String::from("<table>\n");
    for (k, v) in rows {
        out.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            esc(k),
            esc(&v)
        ));
    }
    out.push_str("</table>\n");
    out
}

fn operations_table(ops: &[&ScriptResult], total: Option<&BenchResult>) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>script</th><th>count</th><th>tx/s</th><th>p50 ms</th>\
         <th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>mean ms</th>\
         <th>errors</th></tr>\n",
    );
    let row = |name: &str, count: u64, tps: f64, l: &Latency, errors: String| {
        format!(
            "<tr><td>{}</td><td>{count}</td><td>{tps:.1}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(name),
            ms(l.p50_ms),
            ms(l.p90_ms),
            ms(l.p99_ms),
            ms(l.p999_ms),
            ms(l.max_ms),
            ms(l.mean_ms),
            esc(&errors)
        )
    };
    for op in ops {
        let errors = op.errors_text();
        out.push_str(&row(
            &op.name,
            op.count,
            op.throughput_tps,
            &op.latency,
            errors,
        ));
    }
    if let Some(r) = total {
        out.push_str(&row(
            "all scripts",
            r.transactions,
            r.throughput_tps,
            &r.latency,
            r.errors.to_string(),
        ));
    }
    out.push_str("</table>\n");
    out
}

/// Per statement of each script (as `pgbench -r`).
fn statements_table(r: &BenchResult) -> String {
    let mut out = String::from(
        "<table>\n<tr><th>script</th><th>line</th><th>name</th><th>statement</th>\
         <th>count</th><th>mean ms</th><th>p99 ms</th><th>failures</th></tr>\n",
    );
    for s in &r.scripts {
        for st in &s.statements {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&s.name),
                st.line,
                esc(&st.name),
                esc(&st.sql),
                st.count,
                ms(st.mean_ms),
                ms(st.p99_ms),
                esc(&crate::bench::result::errors_text(&st.errors))
            ));
        }
    }
    out.push_str("</table>\n");
    out
}

/// One run: its summary, the scripts' and statements' figures, and the latency
/// distributions.
pub fn result_html(r: &BenchResult) -> Result<String> {
    let ops: Vec<&ScriptResult> = r.scripts.iter().collect();
    let series: Vec<(String, [f64; 5])> = r
        .scripts
        .iter()
        .filter(|o| o.count > 0)
        .map(|o| (o.name.clone(), latency_values(&o.latency)))
        .collect();
    let mut body = run_summary(r);
    body.push_str("<h2>Scripts (one run = one transaction)</h2>\n");
    body.push_str(&operations_table(&ops, Some(r)));
    body.push_str("<h2>Statements</h2>\n");
    body.push_str(&statements_table(r));
    body.push_str("<h2>Latency distribution</h2>\n");
    body.push_str(&percentile_chart("latency percentiles by script", &series)?);
    Ok(page(&format!("pgopt bench: {}", r.workload), &body))
}

fn pair_cells(p: &Pair, lower_is_better: bool, fmt: fn(f64) -> String) -> String {
    let v = |x: Option<f64>| x.map(fmt).unwrap_or_else(|| "-".into());
    let ratio = match p.ratio {
        Some(r) => {
            let class = match (r < 1.0, lower_is_better) {
                _ if (r - 1.0).abs() < 0.05 => "",
                (true, true) | (false, false) => " class=\"better\"",
                _ => " class=\"worse\"",
            };
            format!("<td{class}>{r:.2}</td>")
        }
        None => "<td>-</td>".into(),
    };
    format!("<td>{}</td><td>{}</td>{ratio}", v(p.a), v(p.b))
}

/// Two runs: their summaries, per-operation A, B and B/A, and A beside B as charts (p50,
/// p99), then each side's latency distribution.
pub fn compare_html(
    a: &BenchResult,
    b: &BenchResult,
    cmp: &Comparison,
    labels: (&str, &str),
) -> Result<String> {
    let mut body = String::new();
    body.push_str(&format!(
        "<h2>A: {}</h2>\n{}<h2>B: {}</h2>\n{}",
        esc(labels.0),
        run_summary(a),
        esc(labels.1),
        run_summary(b)
    ));
    body.push_str(
        "<h2>B against A</h2>\n<table>\n<tr><th>script</th><th>p50 A</th><th>p50 B</th>\
         <th>B/A</th><th>p99 A</th><th>p99 B</th><th>B/A</th><th>tx/s A</th><th>tx/s B</th>\
         <th>B/A</th><th>errors A</th><th>errors B</th></tr>\n",
    );
    let tps = |x: f64| format!("{x:.1}");
    let count = |x: f64| format!("{x:.0}");
    for op in cmp.scripts.iter().chain(std::iter::once(&cmp.total)) {
        let errors = format!(
            "<td>{}</td><td>{}</td>",
            op.errors.a.map(count).unwrap_or_else(|| "-".into()),
            op.errors.b.map(count).unwrap_or_else(|| "-".into())
        );
        body.push_str(&format!(
            "<tr><td>{}</td>{}{}{}{errors}</tr>\n",
            esc(if op.name == "total" {
                "all scripts"
            } else {
                &op.name
            }),
            pair_cells(&op.p50_ms, true, ms),
            pair_cells(&op.p99_ms, true, ms),
            pair_cells(&op.throughput_tps, false, tps),
        ));
    }
    body.push_str("</table>\n");
    for (title, pick) in [("p50 by script", 0usize), ("p99 by script", 1usize)] {
        let rows: Vec<(String, Option<f64>, Option<f64>)> = cmp
            .scripts
            .iter()
            .map(|o| {
                let p = if pick == 0 { &o.p50_ms } else { &o.p99_ms };
                (o.name.clone(), p.a, p.b)
            })
            .collect();
        body.push_str(&before_after_chart(title, labels, &rows)?);
        body.push('\n');
    }
    body.push_str("<h2>Latency distributions</h2>\n");
    for (label, r) in [(labels.0, a), (labels.1, b)] {
        let series: Vec<(String, [f64; 5])> = r
            .scripts
            .iter()
            .filter(|o| o.count > 0)
            .map(|o| (o.name.clone(), latency_values(&o.latency)))
            .collect();
        body.push_str(&percentile_chart(
            &format!("{label}: latency percentiles"),
            &series,
        )?);
        body.push('\n');
    }
    Ok(page(
        &format!("pgopt bench compare: {} against {}", labels.1, labels.0),
        &body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{Latency, Outcome, ScriptResult};

    fn result(name: &str) -> BenchResult {
        BenchResult {
            schema_version: crate::bench::result::RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "file <x>.sql".into(),
            server_version: "15".into(),
            host: None,
            scale: 1,
            clients: 2,
            connections: 2,
            rate: None,
            warmup_s: 0.0,
            duration_s: 1.0,
            transactions: 10,
            errors: 1,
            throughput_tps: 10.0,
            pool_setup_ms: 1.0,
            one_connect_ms: 1.0,
            connections_lost: 0,
            outcome: Outcome::Completed,
            error: None,
            latency: Latency::default(),
            wait: Latency::default(),
            exec: Latency::default(),
            scripts: vec![ScriptResult {
                name: name.into(),
                weight: 1,
                statements: vec![],
                count: 10,
                errors: [("22012".to_string(), 1)].into_iter().collect(),
                throughput_tps: 10.0,
                latency: Latency {
                    p50_ms: 0.5,
                    p90_ms: 1.0,
                    p99_ms: 2.0,
                    p999_ms: 4.0,
                    max_ms: 8.0,
                    mean_ms: 0.7,
                },
            }],
        }
    }

    #[test]
    fn a_run_page_has_its_table_and_chart_with_names_escaped() {
        let page = result_html(&result("<script>alert(1)</script>")).unwrap();
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<title>pgopt bench: file &lt;x&gt;.sql</title>"));
        assert!(page.contains("<td>0.500</td><td>1.00</td><td>2.00</td><td>4.00</td><td>8.00</td>"));
        assert!(page.contains("22012: 1"));
        assert_eq!(page.matches("<svg").count(), 1);
    }

    #[test]
    fn an_empty_run_still_draws() {
        let mut r = result("x");
        r.scripts[0].count = 0;
        r.scripts[0].latency = Latency::default();
        let page = result_html(&r).unwrap();
        assert_eq!(page.matches("<svg").count(), 1);
    }
}
