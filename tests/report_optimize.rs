//! optimize's reports from fixtures, with no server: report.md and report.html of a full
//! run, a dry run and an empty one (expected rows, hostile strings escaped, no chart without
//! a benchmark), the terminal summary, writing the files, the writable-directory check, the
//! saved version-1 report.json, and the schema document against the model.

mod report_fixture;

use std::collections::BTreeSet;
use std::path::Path;

use pgopt::optimize::model::{Report, SCHEMA_VERSION};
use pgopt::report::optimize::{check_writable, html, markdown, summary, write, Written};
use report_fixture::{dry_run, empty, full, OPERATIONS};

const V1_FIXTURE: &str = "tests/fixtures/optimize_report_v1.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The bars of chart `name` on an HTML page (its `<figure data-chart=…>`).
fn bars(page: &str, name: &str) -> usize {
    let open = format!("<figure class=\"chart\" data-chart=\"{name}\">");
    let Some(start) = page.find(&open) else {
        return 0;
    };
    let end = start + page[start..].find("</figure>").expect("figure closed");
    page[start..end].matches("<rect data-bar=").count()
}

#[test]
fn markdown_of_a_full_run_has_every_table_and_its_rows() {
    let md = markdown(&full());
    for expected in [
        "# pgopt optimize: acgs&lt;&amp;&gt; on db.example:5432",
        "## Phases: 4/5 phases done",
        "| phase | status | seconds | summary / reason |",
        "| analyze | done | 1.5 | 12 findings |",
        "| maintenance | failed | 1.5 | permission denied for table &lt;audit_logs&gt;: grant MAINTAIN |",
        "| target | before | after | change |",
        "| all operations: throughput (tx/s) | 800 | 2400 | ×3.00 (better) |",
        "| audit_trail: p50 (ms) | 25.00 | 6.25 | ×0.25 (better) |",
        "| audit_trail: p99 (ms) | 125 | 31.25 | ×0.25 (better) |",
        "| setting | current | recommended | outcome | why |",
        "| work_mem | 4MB | 16MB | done | sorts spill to disk |",
        "| shared_buffers | 128MB | 2GB | skipped: waits for a restart (needs a restart) | 25 % of RAM |",
        "| DDL | size | cost before → after | measured before → after (ms) | outcome |",
        "| 2.0 MB | 1840 → 8 | 3.80 → 0.050 | done |",
        "| kind | object | reason | outcome | seconds |",
        "| vacuum | public.audit_logs | dead tuples past the autovacuum threshold | failed: permission denied | 0.1 |",
        "### CRITICAL (1)",
        "### WARNING (1)",
        "### INFO (1)",
        "| indexes | pgopt-journal-indexes.json | pgopt indexes --rollback pgopt-journal-indexes.json |",
        "| public.idx_old | 8.0 MB | unused since the statistics reset |",
        "| 4/5 phases done |",
        "| interrupted | settings: after step 2 of 3 (Ctrl-C) |",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
    }
    for name in OPERATIONS
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !n.contains('<'))
    {
        assert!(md.contains(&format!("| {name}: p50 (ms) |")), "{name}");
    }
}

#[test]
fn markdown_escapes_hostile_names_and_statements() {
    let md = markdown(&full());
    assert!(!md.contains("<script"), "{md}");
    assert!(!md.contains("<op>"), "{md}");
    assert!(md.contains("&lt;script&gt;alert('x')&lt;/script&gt; \"q\" &amp; \\| \\`b\\` \\*e\\*"));
    assert!(md.contains("| &lt;op&gt; &amp; \"policy\": p50 (ms) | 0.350 | 0.087 |"));
    // A pipe in a cell would split it: every table row keeps its column count.
    for line in md.lines().filter(|l| l.starts_with('|')) {
        let cells = line.replace("\\|", "").matches('|').count();
        assert!((3..=6).contains(&cells), "{line}");
    }
}

#[test]
fn markdown_of_a_dry_run_says_why_there_is_no_benchmark() {
    let md = markdown(&dry_run());
    assert!(md.contains("No benchmark in this run: a dry run changes nothing to measure."));
    assert!(!md.contains("| target | before | after | change |"), "{md}");
    assert!(md.contains("| planned |"), "{md}");
    assert!(md.contains("Nothing was changed, so there is nothing to roll back."));
    assert!(md.contains("No findings."));
}

#[test]
fn html_of_a_full_run_has_its_charts_and_tables() {
    let page = html(&full());
    let ops = OPERATIONS.len();
    // p50, p90, p99, each before and after, per operation.
    assert_eq!(bars(&page, "latency"), ops * 6);
    // before and after, for all operations and each.
    assert_eq!(bars(&page, "throughput"), (ops + 1) * 2);
    assert_eq!(bars(&page, "statements"), 3);
    // The two indexes created, not the skipped one.
    assert_eq!(bars(&page, "indexes"), 2);
    assert_eq!(page.matches("<svg").count(), 4);
    for expected in [
        "<h2>Phases: 4/5 phases done</h2>",
        "<td class=\"failed\">failed</td>",
        "latency percentiles per operation, before and after",
        "latency (ms), log scale",
        "throughput (transactions/s)",
        "total execution time (ms)",
        "estimated size (MB)",
        "indexes created and their estimated sizes",
        "<td class=\"text\">work_mem</td><td>4MB</td><td>16MB</td><td>no</td><td class=\"done\">done</td>",
        "2 of 3 changed.",
        "pgopt indexes --rollback pgopt-journal-indexes.json",
        "idx_users_email_active on public.users",
        "data-bar=\"p50 before\"",
        "data-bar=\"p99 after\"",
    ] {
        assert!(page.contains(expected), "missing {expected:?}");
    }
}

#[test]
fn html_escapes_every_hostile_value() {
    let page = html(&full());
    assert!(!page.contains("<script"), "a script element on the page");
    assert!(!page.contains("<op>") && !page.contains("<audit"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;q&quot; &amp;"));
    assert!(page.contains("<title>pgopt optimize: acgs&lt;&amp;&gt; on db.example:5432"));
    // In the charts too: bar attributes and tooltips, axis labels drawn by plotters.
    assert!(page.contains("data-row=\"&lt;op&gt; &amp; &quot;policy&quot;\""));
    // Nothing to fetch: no script, no external reference of any kind.
    for banned in [
        "src=", "href=", "url(", "@import", "<link", "<img", "<iframe",
    ] {
        assert!(!page.contains(banned), "{banned} on the page");
    }
}

#[test]
fn html_without_a_benchmark_says_so_and_draws_no_empty_chart() {
    let page = html(&dry_run());
    assert!(page.contains(
        "data-note=\"no-benchmark\">No benchmark in this run: a dry run changes nothing to measure.</p>"
    ));
    assert_eq!(bars(&page, "latency"), 0);
    assert!(!page.contains("data-chart=\"latency\""));
    assert!(!page.contains("data-chart=\"throughput\""));
    assert!(!page.contains("data-chart=\"statements\""));
    // Nothing created: the suggestions are charted, and the title says none was created.
    assert_eq!(bars(&page, "indexes"), 3);
    assert!(page.contains("indexes suggested (none created)"));
}

#[test]
fn only_a_benchmark_before_is_charted_alone_and_the_after_is_explained() {
    let mut r = full();
    r.bench_after = None;
    r.phases[4].reason = Some("stopped by Ctrl-C".into());
    let page = html(&r);
    assert_eq!(bars(&page, "latency"), OPERATIONS.len() * 3);
    assert!(!page.contains("data-bar=\"p50 after\""));
    assert!(page.contains("Only the benchmark before the changes: stopped by Ctrl-C."));
    let md = markdown(&r);
    assert!(
        md.contains("| all operations: throughput (tx/s) | 800 | - | - |"),
        "{md}"
    );
}

#[test]
fn an_empty_report_renders_everywhere() {
    let r = empty();
    let md = markdown(&r);
    assert!(md.contains("## Phases: 0/0 phases done"));
    assert!(md.contains("No setting to change."));
    assert!(md.contains("No index suggested."));
    let page = html(&r);
    assert_eq!(page.matches("<svg").count(), 0);
    assert!(page.contains("data-note=\"no-indexes\""));
    let s = summary(&r, &Written::in_dir(Path::new("out")));
    assert!(s.contains("0/0 phases done"), "{s}");
}

#[test]
fn the_summary_has_the_headline_figures_in_80_columns() {
    let s = summary(&full(), &Written::in_dir(Path::new("reports")));
    for expected in [
        "pgopt optimize (apply): 4/5 phases done in 2 min",
        "  maintenance  failed   permission denied for table <audit_logs>: grant MAINTAIN",
        "throughput   800 → 2400 tx/s (×3.00)",
        "slowest op   audit_trail: p50 25.00 → 6.25 ms, p99 125 → 31.25 ms",
        "indexes      2 built (26.0 MB), 3 suggested",
        "settings     2 changed of 3 recommended, 1 wait for a restart",
        "maintenance  0 done of 1 advised",
        "interrupted  settings: after step 2 of 3 (Ctrl-C)",
        "reports in   reports\n",
        "report.html, report.md, report.json",
    ] {
        assert!(s.contains(expected), "missing {expected:?} in:\n{s}");
    }
    for line in s.lines() {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let dry = summary(&dry_run(), &Written::in_dir(Path::new("reports")));
    assert!(
        dry.contains("benchmark    No benchmark in this run"),
        "{dry}"
    );
    assert!(
        dry.contains("indexes      none built, 3 suggested"),
        "{dry}"
    );
}

#[test]
fn write_puts_the_three_reports_in_the_directory_and_leaves_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new").join("reports");
    let report = full();
    let w = write(&dir, &report).unwrap();
    assert_eq!(w, Written::in_dir(&dir));
    let back: Report = serde_json::from_str(&std::fs::read_to_string(&w.json).unwrap()).unwrap();
    assert_eq!(back, report);
    assert_eq!(
        std::fs::read_to_string(&w.markdown).unwrap(),
        markdown(&report)
    );
    assert_eq!(std::fs::read_to_string(&w.html).unwrap(), html(&report));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["report.html", "report.json", "report.md"]);
    // Again over the old ones.
    write(&dir, &dry_run()).unwrap();
    assert!(std::fs::read_to_string(&w.markdown)
        .unwrap()
        .contains("No benchmark in this run"));
}

#[test]
fn a_report_directory_that_cannot_be_written_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let dir = file.join("reports");
    let err = check_writable(&dir).unwrap_err();
    assert!(err.is_bad_input(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("--report DIR"), "{msg}");
    assert!(write(&dir, &full()).is_err());
    // A good one is created, and the probe file is gone afterwards.
    let good = tmp.path().join("ok");
    check_writable(&good).unwrap();
    assert_eq!(std::fs::read_dir(&good).unwrap().count(), 0);
}

#[test]
fn the_v1_report_fixture_still_loads_and_renders() {
    let text = std::fs::read_to_string(root().join(V1_FIXTURE)).unwrap();
    let r: Report = serde_json::from_str(&text).expect("a version-1 report.json must load");
    assert_eq!(r.schema_version, 1);
    assert_eq!(r.phases.len(), 5);
    assert_eq!(r.success_rate(), (4, 5));
    assert!(r.bench_after.is_some());
    assert!(markdown(&r).contains("4/5 phases done"));
    assert_eq!(bars(&html(&r), "latency"), OPERATIONS.len() * 6);
}

/// Every key of `v` (objects in arrays too), without their paths.
fn keys(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

/// The fields the schema document lists: the first cell of its table rows, in backticks.
fn documented(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_schema_document_names_every_field_of_the_report_and_no_other() {
    let doc = std::fs::read_to_string(root().join("docs/report-schema.md")).unwrap();
    let json = serde_json::to_value(full()).unwrap();
    let mut written = BTreeSet::new();
    keys(&json, &mut written);
    assert!(
        written.len() > 60,
        "the fixture fills the model: {written:?}"
    );
    let listed = documented(&doc);
    let missing: Vec<_> = written.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "docs/report-schema.md does not document {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&written).collect();
    assert!(
        stale.is_empty(),
        "docs/report-schema.md documents {stale:?}, which the report no longer has"
    );
    // No list of the fixture is empty, so no field of its items hides.
    fn no_empty_list(v: &serde_json::Value, path: &str) {
        match v {
            serde_json::Value::Array(a) => {
                assert!(!a.is_empty(), "{path} is empty in the full fixture");
                a.iter()
                    .for_each(|v| no_empty_list(v, &format!("{path}[]")));
            }
            serde_json::Value::Object(m) => m
                .iter()
                .for_each(|(k, v)| no_empty_list(v, &format!("{path}.{k}"))),
            _ => {}
        }
    }
    no_empty_list(&json, "report");
    // The enums' values too.
    for value in [
        "`dry_run`",
        "`apply`",
        "`quick`",
        "`done`",
        "`skipped`",
        "`failed`",
        "`analyze`",
        "`indexes`",
        "`maintenance`",
        "`settings`",
        "`performance`",
    ] {
        assert!(doc.contains(value), "{value} not in the schema document");
    }
    assert!(doc.contains(&format!(
        "`schema_version` is `{SCHEMA_VERSION}` for this document"
    )));
}
