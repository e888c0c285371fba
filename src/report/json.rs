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

/// [`render`] written straight to `out` (with a final newline), without holding the whole
/// text in memory: at 100,000 tables the text is hundreds of MB.
pub fn write(
    out: &mut impl std::io::Write,
    snap: &Snapshot,
    findings: &[Finding],
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(
        &mut *out,
        &Analysis {
            snapshot: snap,
            findings,
        },
    )
    .map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_carries_its_fix_as_steps_beside_the_sql_text() {
        let target = crate::snapshot::TargetInfo {
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            user: "u".into(),
        };
        let snap = Snapshot::new(target, chrono::Utc::now());
        let f = Finding::new(
            "unused_index",
            crate::advise::Severity::Warning,
            "s.i",
            "unused",
        )
        .fix(crate::plan::Step::drop_index("s", "i"));
        let v: serde_json::Value = serde_json::from_str(&render(&snap, &[f])).unwrap();
        let finding = &v["findings"][0];
        assert_eq!(finding["sql"], r#"DROP INDEX CONCURRENTLY "s"."i";"#);
        let step = &finding["fix"][0];
        assert_eq!(step["action"]["sql"], r#"DROP INDEX CONCURRENTLY "s"."i""#);
        assert_eq!(step["transactional"], false);
        assert_eq!(step["lock"], "share_update_exclusive");
        assert_eq!(step["precondition"]["kind"], "index_exists");
    }

    #[test]
    fn written_json_is_the_rendered_json_and_a_newline() {
        let target = crate::snapshot::TargetInfo {
            host: "h".into(),
            port: 5432,
            database: "d".into(),
            user: "u".into(),
        };
        let snap = Snapshot::new(target, chrono::Utc::now());
        let mut out = Vec::new();
        write(&mut out, &snap, &[]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{}\n", render(&snap, &[]))
        );
    }
}
