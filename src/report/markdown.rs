//! Markdown: the same content as the table output, for issues and wikis.

use super::{by_severity, evidence_line, gaps, headline, severity_label};
use crate::advise::Finding;
use crate::snapshot::Snapshot;

/// Escapes what would break a pipe-table cell.
/// Text for one markdown table cell: `|` escaped, line breaks as `<br>`.
pub(crate) fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', "<br>")
}

pub fn render(snap: &Snapshot, findings: &[Finding]) -> String {
    let mut out = String::from("# pgopt analyze\n\n| | |\n|---|---|\n");
    for (label, value) in headline(snap, findings) {
        out.push_str(&format!("| {label} | {} |\n", cell(&value)));
    }
    let gaps = gaps(snap);
    if !gaps.is_empty() {
        out.push_str(
            "\n## Not collected\n\n| section | state | why | next step |\n|---|---|---|---|\n",
        );
        for (section, state, why, next) in gaps {
            out.push_str(&format!(
                "| {} | {state} | {} | {} |\n",
                cell(&section),
                cell(&why),
                cell(&next)
            ));
        }
    }
    if findings.is_empty() {
        out.push_str("\nNo findings: nothing crossed a threshold.\n");
        return out;
    }
    out.push_str(&render_findings(findings));
    out
}

/// The findings alone, grouped by severity (also used by `pgopt tune`'s security review).
pub fn render_findings(findings: &[Finding]) -> String {
    let mut out = String::new();
    for (severity, group) in by_severity(findings) {
        out.push_str(&format!(
            "\n## {} ({})\n\n| rule | object | finding | evidence | next step |\n|---|---|---|---|---|\n",
            severity_label(severity),
            group.len()
        ));
        for f in group {
            let mut next = cell(&f.next_step);
            if let Some(sql) = &f.sql {
                for line in sql.lines() {
                    next.push_str(&format!(
                        "<br>`{}`",
                        line.replace('`', "'").replace('|', "\\|")
                    ));
                }
            }
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {next} |\n",
                f.rule,
                cell(&f.object),
                cell(&f.message),
                cell(&evidence_line(f)),
            ));
        }
    }
    out
}
