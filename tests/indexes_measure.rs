//! `pgopt indexes --apply` times the statements it helps before and after the build, on an
//! embedded cluster: statements read from pg_stat_statements carry `$n` parameters, and
//! run with representative values drawn from pg_stats; the report says which.

mod cli_support;

use cli_support::{pgopt, stderr, stdout};
use pgopt::embedded::{Cluster, ClusterOptions};

/// The measured table's `ms before→after` of the row whose statement starts with `text`.
fn measured_ms(report: &str, text: &str) -> Option<(f64, f64)> {
    let line = report
        .lines()
        .find(|l| l.contains(text) && l.matches('→').count() == 2)?;
    let ms = line
        .split(|c: char| c.is_whitespace() || c == '│' || c == '|')
        .rfind(|cell| cell.contains('→'))?;
    let (before, after) = ms.split_once('→')?;
    Some((before.parse().ok()?, after.parse().ok()?))
}

#[test]
fn parameterized_statements_from_pg_stat_statements_are_timed_before_and_after_apply() {
    let c = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dsn = c.dsn("postgres");
    c.psql(
        "postgres",
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE EXTENSION IF NOT EXISTS hypopg;
         CREATE TABLE public.t (id bigint PRIMARY KEY, c int NOT NULL, total int, note text);
         INSERT INTO public.t SELECT g, g % 20000, g % 100, 'note ' || g
           FROM generate_series(1, 200000) g;
         ANALYZE public.t;",
    )
    .expect("schema");
    // One window for the statements and the table's write counts (the load is no workload).
    c.psql(
        "postgres",
        "SELECT pg_stat_statements_reset(); SELECT pg_stat_reset();",
    )
    .expect("reset");
    // pg_stat_statements keeps these as `c = $1`, `c IN ($1, $2, $3)` and
    // `c = $1 AND note <> $2 || $3`: the last one's $2 and $3 are compared with no column.
    c.psql(
        "postgres",
        "SELECT total FROM t WHERE c = 77;
         SELECT total FROM t WHERE c = 78;
         SELECT id FROM t WHERE c IN (5, 6, 7);
         SELECT note FROM t WHERE c = 9 AND note <> 'x' || 'y';",
    )
    .expect("workload");
    let texts = c
        .psql(
            "postgres",
            "SELECT string_agg(query, E'\\n') FROM pg_stat_statements WHERE query LIKE '%FROM t %'",
        )
        .expect("statements");
    assert!(texts.contains("WHERE c = $1"), "{texts}");

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("idx.json");
    let out = pgopt(&[
        "indexes",
        &dsn,
        "--apply",
        "--journal",
        journal.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = stdout(&out);
    // One index on c is built, and each statement it helps was timed before and after.
    assert!(report.contains("done"), "{report}");
    let (before, after) = measured_ms(&report, "SELECT total FROM t WHERE c = $1")
        .unwrap_or_else(|| panic!("no measured time for the equality:\n{report}"));
    assert!(before > 0.0 && after > 0.0, "{report}");
    assert!(
        measured_ms(&report, "SELECT id FROM t WHERE c IN").is_some(),
        "no measured time for the IN list:\n{report}"
    );
    // c has no common values (20,000 of them, evenly): the middle histogram bound, typed.
    let with: Vec<&str> = report
        .lines()
        .filter(|l| l.contains(": run with "))
        .collect();
    assert!(
        with.iter()
            .any(|l| l.starts_with("SELECT total FROM t WHERE c = $1: run with $1 = '")),
        "{report}"
    );
    // The IN list's three parameters each got a value (the line may wrap after a value).
    let notes = &report[report.find(": run with ").unwrap()..];
    let in_list = &notes[notes
        .find("SELECT id FROM t WHERE c IN")
        .expect("IN list values")..];
    let in_list = &in_list[..in_list.find("\nSELECT").unwrap_or(in_list.len())];
    for n in 1..=3 {
        assert!(in_list.contains(&format!("${n} = '")), "{report}");
    }
    // A parameter with no value leaves its statement untimed, with a note naming it.
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("SELECT note FROM t WHERE c = $1")
                && l.contains("$2 is compared with no table column")),
        "{report}"
    );
    // Nothing of the timing stayed behind: the read-only transactions were rolled back and
    // the table holds what it did.
    let rows = c
        .psql("postgres", "SELECT count(*) FROM public.t")
        .expect("count");
    assert_eq!(rows.trim(), "200000");
}
