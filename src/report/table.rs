//! Terminal tables: headline figures first, then gaps, then findings grouped by severity.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, ContentArrangement, Table};

use super::{by_severity, evidence_line, gaps, headline, severity_label};
use crate::advise::Finding;
use crate::snapshot::Snapshot;

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // Wrap to the terminal when there is one, to a readable width otherwise.
    if t.width().is_none() {
        t.set_width(140);
    }
    t
}

pub fn render(snap: &Snapshot, findings: &[Finding]) -> String {
    let mut out = String::new();
    let mut head = new_table();
    for (label, value) in headline(snap, findings) {
        head.add_row(vec![Cell::new(label), Cell::new(value)]);
    }
    out.push_str(&head.to_string());
    out.push('\n');

    let gaps = gaps(snap);
    if !gaps.is_empty() {
        out.push_str("\nNot collected\n");
        let mut t = new_table();
        t.set_header(vec!["section", "state", "why", "next step"]);
        for (section, state, why, next) in gaps {
            t.add_row(vec![section, state.to_string(), why, next]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
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
            "\n{} ({})\n",
            severity_label(severity),
            group.len()
        ));
        let mut t = new_table();
        t.set_header(vec!["rule", "object", "finding", "next step"]);
        for f in group {
            let mut finding = f.message.clone();
            let ev = evidence_line(f);
            if !ev.is_empty() {
                finding.push_str(&format!("\n[{ev}]"));
            }
            let mut next = f.next_step.clone();
            if let Some(sql) = &f.sql {
                next.push_str(&format!("\n{sql}"));
            }
            t.add_row(vec![f.rule.clone(), f.object.clone(), finding, next]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out
}
