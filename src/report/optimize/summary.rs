//! The terminal's short summary of a run: the phases with their status, the headline figures
//! and where the reports are. Every line fits 80 columns (a report directory longer than
//! that is printed whole: a path cut short is no use).

use super::markdown::duration_text;
use super::{missing_benchmark, mode_label, num, outcome_is, phases_done, ratio, Written};
use crate::optimize::model::{BenchSummary, Operation, Report};
use crate::report::bytes;
use crate::report::term::fit;

const WIDTH: usize = 80;

/// `label` in a column of 12, then `value` cut to what is left of the line.
fn line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<12} {}\n", fit(value, WIDTH - 13)));
}

fn arrow(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => format!("{} → {}", num(Some(b)), num(Some(a))),
        (b, a) => num(b.or(a)),
    }
}

fn find<'a>(b: &'a Option<BenchSummary>, name: &str) -> Option<&'a Operation> {
    b.as_ref()?.operations.iter().find(|o| o.name == name)
}

pub fn summary(r: &Report, written: &Written) -> String {
    let mut out = String::new();
    let mode = mode_label(r.mode)
        .split(" (")
        .next()
        .unwrap_or_default()
        .to_string();
    out.push_str(&fit(
        &format!(
            "pgopt optimize ({mode}): {} in {}",
            phases_done(r),
            duration_text(super::took(r))
        ),
        WIDTH,
    ));
    out.push('\n');
    for p in &r.phases {
        let what = match &p.reason {
            Some(reason) => reason.as_str(),
            None => p.summary.as_str(),
        };
        out.push_str(&format!(
            "  {:<12} {:<8} {}\n",
            p.name.as_str(),
            super::status_label(p.status),
            fit(what, WIDTH - 24)
        ));
    }
    if let Some(stop) = &r.interrupted {
        line(&mut out, "interrupted", stop);
    }

    let (b, a) = (&r.bench_before, &r.bench_after);
    match missing_benchmark(r) {
        Some(why) if b.is_none() => line(&mut out, "benchmark", &why),
        _ => {
            let before = b.as_ref().map(|s| s.throughput_tps);
            let after = a.as_ref().map(|s| s.throughput_tps);
            let x = ratio(before, after)
                .map(|x| format!(" (×{x:.2})"))
                .unwrap_or_default();
            line(
                &mut out,
                "throughput",
                &format!("{} tx/s{x}", arrow(before, after)),
            );
            // The slowest operation: the highest p50 before (after, without a before).
            let slowest = b
                .as_ref()
                .or(a.as_ref())
                .and_then(|s| {
                    s.operations
                        .iter()
                        .max_by(|x, y| x.latency.p50_ms.total_cmp(&y.latency.p50_ms))
                })
                .map(|o| o.name.clone());
            if let Some(name) = slowest {
                let (ob, oa) = (find(b, &name), find(a, &name));
                line(
                    &mut out,
                    "slowest op",
                    &format!(
                        "{name}: p50 {} ms, p99 {} ms",
                        arrow(ob.map(|o| o.latency.p50_ms), oa.map(|o| o.latency.p50_ms)),
                        arrow(ob.map(|o| o.latency.p99_ms), oa.map(|o| o.latency.p99_ms)),
                    ),
                );
            }
            if let Some(why) = missing_benchmark(r) {
                line(&mut out, "", &why);
            }
        }
    }

    let built: Vec<_> = r
        .indexes
        .iter()
        .filter(|i| outcome_is(&i.outcome, "done"))
        .collect();
    let built_bytes: i64 = built.iter().map(|i| i.size_bytes).sum();
    line(
        &mut out,
        "indexes",
        &if built.is_empty() {
            format!("none built, {} suggested", r.indexes.len())
        } else {
            format!(
                "{} built ({}), {} suggested",
                built.len(),
                bytes(built_bytes),
                r.indexes.len()
            )
        },
    );
    let changed = r
        .settings
        .iter()
        .filter(|s| outcome_is(&s.outcome, "done"))
        .count();
    let restart = r
        .settings
        .iter()
        .filter(|s| s.needs_restart && !outcome_is(&s.outcome, "done"))
        .count();
    line(
        &mut out,
        "settings",
        &format!(
            "{changed} changed of {} recommended{}",
            r.settings.len(),
            if restart > 0 {
                format!(", {restart} wait for a restart")
            } else {
                String::new()
            }
        ),
    );
    let done = r
        .maintenance
        .iter()
        .filter(|m| outcome_is(&m.outcome, "done"))
        .count();
    line(
        &mut out,
        "maintenance",
        &format!("{done} done of {} advised", r.maintenance.len()),
    );

    let dir = written
        .html
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    out.push_str(&format!("{:<12} {dir}\n", "reports in"));
    let name = |p: &std::path::Path| {
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    line(
        &mut out,
        "",
        &format!(
            "{}, {}, {}",
            name(&written.html),
            name(&written.markdown),
            name(&written.json)
        ),
    );
    out
}
