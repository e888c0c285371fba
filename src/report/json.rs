//! JSON: the whole snapshot and the findings, for programs.

use crate::advise::Finding;
use crate::snapshot::Snapshot;

#[derive(serde::Serialize)]
struct Analysis<'a> {
    snapshot: &'a Snapshot,
    findings: &'a [Finding],
}

pub fn render(snap: &Snapshot, findings: &[Finding]) -> String {
    serde_json::to_string_pretty(&Analysis {
        snapshot: snap,
        findings,
    })
    .expect("snapshot and findings serialise")
}
