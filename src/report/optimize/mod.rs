//! The reports of one `pgopt optimize` run, all from its [`Report`]: `report.json` (the model
//! itself; docs/report-schema.md), `report.md` ([`markdown`]), `report.html` ([`html`]: the
//! same tables with SVG charts, one self-contained page) and the terminal's short
//! [`summary`]. Rendering is pure; [`check_writable`] and [`write`] are the only I/O, and
//! optimize calls [`check_writable`] before it changes anything.

mod html;
mod markdown;
mod summary;

use std::path::{Path, PathBuf};

pub use html::html;
pub use markdown::markdown;
pub use summary::summary;

use crate::error::{Error, Result};
use crate::optimize::model::{BenchSummary, Mode, PhaseName, Report, Status};

/// The files [`write`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
}

impl Written {
    /// The three paths in `dir`, named as [`write`] names them.
    pub fn in_dir(dir: &Path) -> Written {
        Written {
            json: dir.join("report.json"),
            markdown: dir.join("report.md"),
            html: dir.join("report.html"),
        }
    }
}

/// Creates `dir` if needed and proves a file can be written in it (then removes the file), so
/// a report that could not be saved is known before anything is changed.
pub fn check_writable(dir: &Path) -> Result<()> {
    let fail = |e: std::io::Error| {
        Error::BadInput(format!(
            "cannot write the report in {}: {}. Choose another directory with --report DIR, or \
             create it and make it writable for this user",
            dir.display(),
            e
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut probe = tempfile::Builder::new()
        .prefix(".pgopt-write-check-")
        .tempfile_in(dir)
        .map_err(fail)?;
    std::io::Write::write_all(&mut probe, b"pgopt").map_err(fail)?;
    probe.close().map_err(fail)
}

/// Writes report.json (the report, pretty), report.md and report.html into `dir` (created if
/// needed), each atomically: a reader sees the old file or the new one, never half of one.
pub fn write(dir: &Path, report: &Report) -> Result<Written> {
    check_writable(dir)?;
    let written = Written::in_dir(dir);
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| Error::Internal(format!("serialising the report: {e}")))?;
    crate::files::write_atomically(&written.json, &(json + "\n"))?;
    crate::files::write_atomically(&written.markdown, &markdown(report))?;
    crate::files::write_atomically(&written.html, &html(report))?;
    Ok(written)
}

pub(crate) fn mode_label(m: Mode) -> &'static str {
    match m {
        Mode::DryRun => "dry run (planned, changed nothing)",
        Mode::Apply => "apply",
        Mode::Quick => "quick (analysis, index diagnostics and settings; changed nothing)",
    }
}

pub(crate) fn status_label(s: Status) -> &'static str {
    match s {
        Status::Done => "done",
        Status::Skipped => "skipped",
        Status::Failed => "failed",
    }
}

/// `4/5 phases done`.
pub(crate) fn phases_done(r: &Report) -> String {
    let (done, total) = r.success_rate();
    format!("{done}/{total} phases done")
}

/// The run's wall time in seconds.
pub(crate) fn took(r: &Report) -> f64 {
    (r.finished_at - r.started_at).num_milliseconds().max(0) as f64 / 1000.0
}

/// An outcome text (`done`, `skipped: waits for a restart`, …) is of kind `word`.
pub(crate) fn outcome_is(outcome: &str, word: &str) -> bool {
    outcome
        .trim_start()
        .get(..word.len())
        .is_some_and(|w| w.eq_ignore_ascii_case(word))
}

/// Why the report has no benchmark (both None), or only the one before (after None): from
/// the performance phase's reason when it gives one, else from the mode.
pub(crate) fn missing_benchmark(r: &Report) -> Option<String> {
    if r.bench_after.is_some() {
        return None;
    }
    let phase_reason = r
        .phases
        .iter()
        .find(|p| p.name == PhaseName::Performance)
        .and_then(|p| p.reason.clone());
    let why = phase_reason.unwrap_or_else(|| {
        match r.mode {
            Mode::Quick => "--quick runs no benchmark",
            Mode::DryRun => "a dry run changes nothing, so there is no after to measure",
            Mode::Apply => "the run recorded no benchmark after the changes",
        }
        .to_string()
    });
    Some(if r.bench_before.is_some() {
        format!("Only the benchmark before the changes: {why}.")
    } else {
        format!("No benchmark in this run: {why}.")
    })
}

/// after / before, when both are there and before is not zero.
pub(crate) fn ratio(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// One line of the benchmark comparison: a figure before and after.
pub(crate) struct Compared {
    pub target: String,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub lower_is_better: bool,
}

impl Compared {
    /// `×0.42 (faster)` style: after / before, and which way is good.
    pub(crate) fn change(&self) -> String {
        match ratio(self.before, self.after) {
            Some(x) => {
                let word = if (x - 1.0).abs() < 0.05 {
                    "same"
                } else if (x < 1.0) == self.lower_is_better {
                    "better"
                } else {
                    "worse"
                };
                format!("×{x:.2} ({word})")
            }
            None => "-".to_string(),
        }
    }

    pub(crate) fn better(&self) -> Option<bool> {
        let x = ratio(self.before, self.after)?;
        if (x - 1.0).abs() < 0.05 {
            None
        } else {
            Some((x < 1.0) == self.lower_is_better)
        }
    }
}

/// The operations of the benchmarks, in the order of the one before (then any only after).
pub(crate) fn operation_names(r: &Report) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for b in [&r.bench_before, &r.bench_after].into_iter().flatten() {
        for op in &b.operations {
            if !names.contains(&op.name) {
                names.push(op.name.clone());
            }
        }
    }
    names
}

fn op_figure(
    b: &Option<BenchSummary>,
    name: &str,
    f: fn(&crate::optimize::model::Operation) -> f64,
) -> Option<f64> {
    b.as_ref()?
        .operations
        .iter()
        .find(|o| o.name == name)
        .map(f)
}

/// The benchmark before against after: throughput and p50/p99 of the whole workload, then per
/// operation its p50, p99 and throughput. Empty without a benchmark.
pub(crate) fn comparison(r: &Report) -> Vec<Compared> {
    let (b, a) = (&r.bench_before, &r.bench_after);
    if b.is_none() && a.is_none() {
        return Vec::new();
    }
    let whole = |f: fn(&BenchSummary) -> f64| (b.as_ref().map(f), a.as_ref().map(f));
    let mut rows = Vec::new();
    let mut push = |target: String, (before, after): (Option<f64>, Option<f64>), lower| {
        rows.push(Compared {
            target,
            before,
            after,
            lower_is_better: lower,
        })
    };
    push(
        "all operations: throughput (tx/s)".into(),
        whole(|s| s.throughput_tps),
        false,
    );
    push(
        "all operations: p50 (ms)".into(),
        whole(|s| s.latency.p50_ms),
        true,
    );
    push(
        "all operations: p99 (ms)".into(),
        whole(|s| s.latency.p99_ms),
        true,
    );
    for name in operation_names(r) {
        let both = |f| (op_figure(b, &name, f), op_figure(a, &name, f));
        push(
            format!("{name}: p50 (ms)"),
            both(|o| o.latency.p50_ms),
            true,
        );
        push(
            format!("{name}: p99 (ms)"),
            both(|o| o.latency.p99_ms),
            true,
        );
        push(
            format!("{name}: throughput (tx/s)"),
            both(|o| o.throughput_tps),
            false,
        );
    }
    rows
}

/// The index's name in its DDL (`CREATE INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON …`), or
/// the DDL itself when it has none.
pub(crate) fn index_name(ddl: &str) -> String {
    let words = sql_words(ddl);
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let Some(at) = upper.iter().position(|w| w == "INDEX") else {
        return ddl.to_string();
    };
    let mut i = at + 1;
    for skip in ["CONCURRENTLY", "IF", "NOT", "EXISTS"] {
        if upper.get(i).is_some_and(|w| w == skip) {
            i += 1;
        }
    }
    match (words.get(i), upper.get(i)) {
        (Some(w), Some(u)) if u != "ON" => w.clone(),
        _ => ddl.to_string(),
    }
}

/// Words split at whitespace outside double quotes (a quoted name is one word, quotes kept).
fn sql_words(sql: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in sql.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A figure with the digits that matter, or `-`.
pub(crate) fn num(v: Option<f64>) -> String {
    v.map(super::chart::ms).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_name_is_read_from_the_ddl() {
        assert_eq!(
            index_name("CREATE INDEX CONCURRENTLY idx_a ON public.t (a)"),
            "idx_a"
        );
        assert_eq!(
            index_name("create unique index if not exists \"x \"\" y\" on t (a)"),
            "\"x \"\" y\""
        );
        assert_eq!(index_name("CREATE INDEX ON t (a)"), "CREATE INDEX ON t (a)");
        assert_eq!(index_name("VACUUM t"), "VACUUM t");
    }

    #[test]
    fn outcome_kinds_ignore_the_reason() {
        assert!(outcome_is("done", "done"));
        assert!(outcome_is("Skipped: waits for a restart", "skipped"));
        assert!(!outcome_is("planned", "done"));
        assert!(!outcome_is("do", "done"));
    }

    #[test]
    fn a_change_says_which_way_is_better() {
        let c = |before, after, lower_is_better| Compared {
            target: String::new(),
            before: Some(before),
            after: Some(after),
            lower_is_better,
        };
        assert_eq!(c(10.0, 5.0, true).change(), "×0.50 (better)");
        assert_eq!(c(10.0, 5.0, false).change(), "×0.50 (worse)");
        assert_eq!(c(10.0, 10.2, true).change(), "×1.02 (same)");
        assert_eq!(c(0.0, 1.0, true).change(), "-");
    }
}
