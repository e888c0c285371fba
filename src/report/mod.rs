//! Rendering an analysis for people (table, markdown) and programs (json). Pure: no I/O
//! (the JSON can also be written to a writer the caller gives).

pub mod bench;
pub mod bench_html;
pub(crate) mod chart;
pub(crate) mod html;
pub mod indexes;
mod json;
pub mod maintain;
mod markdown;
pub mod optimize;
pub(crate) use markdown::cell as markdown_cell;
mod table;
pub mod term;
pub mod thresholds;
pub mod tune;

pub use json::write as write_json;
pub use term::TextOptions;

use crate::advise::{Finding, Severity};
use crate::snapshot::{SectionState, Snapshot};

/// How a report is written (the CLI's `--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// Renders the snapshot's headline figures and the findings in `format`; the table form laid
/// out for standard output (see [`term`]), one line per finding.
pub fn render(snap: &Snapshot, findings: &[Finding], format: Format) -> String {
    render_with(snap, findings, format, &TextOptions::detect())
}

/// As [`render`], with the table form's layout given (width, colour, verbose).
pub fn render_with(
    snap: &Snapshot,
    findings: &[Finding],
    format: Format,
    text: &TextOptions,
) -> String {
    match format {
        Format::Table => table::render(snap, findings, text),
        Format::Markdown => markdown::render(snap, findings),
        Format::Json => json::render(snap, findings),
    }
}

/// Findings alone, grouped by severity, each in full with its rule, evidence, next step and
/// SQL (as `-v` shows them), or markdown (json: the findings array).
pub fn render_findings(findings: &[Finding], format: Format) -> String {
    match format {
        // A short list (tune's security review): each finding whole, rule id included.
        Format::Table => table::render_findings(
            findings,
            &TextOptions {
                verbose: true,
                ..TextOptions::detect()
            },
        ),
        Format::Markdown => markdown::render_findings(findings),
        Format::Json => serde_json::to_string_pretty(findings).expect("findings serialise"),
    }
}

/// The figures shown first, as (label, value) pairs.
pub(crate) fn headline(snap: &Snapshot, findings: &[Finding]) -> Vec<(&'static str, String)> {
    let mut rows = Vec::new();
    rows.push((
        "target",
        format!(
            "{}@{}:{}/{}",
            snap.target.user, snap.target.host, snap.target.port, snap.target.database
        ),
    ));
    if let Some(server) = &snap.server {
        let short = server
            .version
            .split(" on ")
            .next()
            .unwrap_or(&server.version)
            .to_string();
        rows.push(("server", short));
        rows.push((
            "role",
            if server.in_recovery {
                "standby"
            } else {
                "primary"
            }
            .to_string(),
        ));
        rows.push(("uptime", duration(server.uptime_seconds)));
        if let Some(size) = server
            .database_sizes
            .iter()
            .find(|d| d.name == snap.target.database)
        {
            rows.push(("database size", bytes(size.size_bytes)));
        }
    }
    if let Some(ratio) = snap.current_database().and_then(|d| d.cache_hit_ratio()) {
        rows.push(("cache hit ratio", format!("{:.2} %", ratio * 100.0)));
    }
    if let Some(act) = &snap.activity {
        rows.push((
            "connections",
            format!("{} of {}", act.total_connections, act.max_connections),
        ));
    }
    let table_bytes: i64 = snap.tables.iter().map(|t| t.total_bytes).sum();
    let estimated = snap.tables.iter().filter(|t| t.size_estimated).count();
    rows.push((
        "tables",
        if estimated == 0 {
            format!("{} ({})", snap.tables.len(), bytes(table_bytes))
        } else {
            format!(
                "{} ({}; {estimated} of them sized from pg_class estimates, the largest measured)",
                snap.tables.len(),
                bytes(table_bytes)
            )
        },
    ));
    rows.push(("indexes", snap.indexes.len().to_string()));
    if let Some(st) = &snap.statements {
        rows.push((
            "statements tracked",
            format!("{} ({} total)", st.tracked, millis(st.total_exec_time_ms)),
        ));
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    rows.push((
        "findings",
        format!(
            "{} critical, {} warning, {} info",
            count(Severity::Critical),
            count(Severity::Warning),
            count(Severity::Info)
        ),
    ));
    rows
}

/// Sections that were not collected, as (section, state, reason, next step).
pub(crate) fn gaps(snap: &Snapshot) -> Vec<(String, &'static str, String, String)> {
    snap.sections
        .iter()
        .filter(|s| s.state != SectionState::Collected)
        .map(|s| {
            (
                s.section.clone(),
                match s.state {
                    SectionState::Skipped => "skipped",
                    SectionState::Failed => "failed",
                    SectionState::Collected => "collected",
                },
                s.reason.clone().unwrap_or_default(),
                s.next_step.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// `key=value, key=value` with sizes and ratios made readable.
pub(crate) fn evidence_line(f: &Finding) -> String {
    f.evidence
        .iter()
        .map(|(k, v)| format!("{k}={}", evidence_value(k, v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The evidence as (key, value) for people: sizes, durations and ratios in human units, texts
/// whole on one line (the terminal's verbose form).
pub(crate) fn evidence_pairs(f: &Finding) -> Vec<(String, String)> {
    f.evidence
        .iter()
        .map(|(k, v)| {
            let human = match v.as_f64() {
                Some(x) if k.ends_with("_seconds") => Some(duration(x)),
                Some(x) if k.ends_with("_ms") => Some(millis(x)),
                _ => None,
            };
            let text = match (human, v) {
                (Some(h), _) => h,
                (None, serde_json::Value::String(s)) => {
                    s.split_whitespace().collect::<Vec<_>>().join(" ")
                }
                (None, _) => evidence_value(k, v),
            };
            (k.clone(), text)
        })
        .collect()
}

fn evidence_value(key: &str, v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if key.ends_with("_bytes") => {
            n.as_i64().map(bytes).unwrap_or_else(|| n.to_string())
        }
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(0.0);
            if x.abs() >= 100.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.4}")
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            }
        }
        serde_json::Value::String(s) => short_text(s, 80),
        other => other.to_string(),
    }
}

/// Whitespace collapsed and cut to `max` characters: query texts and definitions stay
/// readable in a table cell (the JSON output keeps them whole).
fn short_text(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

pub(crate) fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

/// Findings grouped by severity, most severe first.
pub(crate) fn by_severity(findings: &[Finding]) -> Vec<(Severity, Vec<&Finding>)> {
    [Severity::Critical, Severity::Warning, Severity::Info]
        .into_iter()
        .map(|s| {
            (
                s,
                findings
                    .iter()
                    .filter(|f| f.severity == s)
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", UNITS[unit])
    }
}

pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.0} s")
    } else if s < 3600.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86400.0)
    }
}

pub fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        duration(ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 kB");
        assert_eq!(bytes(10 * 1024 * 1024 * 1024), "10.0 GB");
        assert_eq!(duration(30.0), "30 s");
        assert_eq!(duration(7200.0), "2.0 h");
        assert_eq!(millis(12.34), "12.3 ms");
        assert_eq!(short_text("SELECT  *\n  FROM t", 80), "SELECT * FROM t");
        assert_eq!(short_text("abcdef", 4), "abc…");
    }
}
