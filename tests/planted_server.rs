//! The planted server (tests/planted/mod.rs): every planted problem is caught by its rule,
//! and the findings on one server hold against each other.
//!
//! `cargo test --release --test planted_server -- --nocapture` prints which planted problems each
//! rule catches.

mod common;
mod planted;

use pgopt::advise::{advise, Finding, Thresholds};
use pgopt::collect::CollectOptions;
use pgopt::snapshot::Snapshot;

/// A snapshot as `pgopt analyze` takes it (the findings' relations measured) with
/// `exact_sizes_top` of the largest relations measured too.
async fn snapshot(dsn: &str, exact_sizes_top: usize) -> Snapshot {
    let opts = CollectOptions {
        exact_sizes_top,
        thresholds: Some(thresholds()),
        ..CollectOptions::default()
    };
    common::live_snapshot(dsn, &opts).await
}

/// The planted sessions are seconds old and the statistics minutes: thresholds scaled down
/// to match, everything else at its default.
fn thresholds() -> Thresholds {
    common::thresholds_with(&[
        ("idle_in_transaction_warning_seconds", "1"),
        ("long_query_warning_seconds", "1"),
        ("long_transaction_warning_seconds", "1"),
        ("unused_index_min_stats_seconds", "0"),
        ("cache_hit_min_blocks", "1000"),
        ("slow_statement_min_mean_ms", "200"),
        ("prepared_transaction_warning_seconds", "1"),
        ("slot_retained_warning_bytes", "16777216"),
        ("table_bloat_min_wasted_bytes", "4194304"),
        ("index_bloat_min_wasted_bytes", "1048576"),
    ])
}

fn caught<'a>(findings: &'a [Finding], rule: &str, object: &str) -> Vec<&'a Finding> {
    findings
        .iter()
        .filter(|f| f.rule == rule && f.object.contains(object))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_planted_problem_is_caught_and_no_finding_contradicts_another() {
    let p = planted::plant().await;
    // Sizes estimated from pg_class except the findings' relations, against every size
    // measured: the same findings (no rule loses one because a size became an estimate).
    let measured = advise(
        &snapshot(&p.cluster.dsn("postgres"), usize::MAX).await,
        &thresholds(),
    );
    let snap = snapshot(&p.cluster.dsn("postgres"), 0).await;
    let findings = advise(&snap, &thresholds());
    // Statement findings left out: the first collect's own queries (work_mem is 64kB here)
    // join pg_stat_statements before the second.
    let keys = |fs: &[Finding]| {
        fs.iter()
            .filter(|f| !f.object.starts_with("queryid"))
            .map(|f| format!("{} {}", f.rule, f.object))
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(keys(&findings), keys(&measured));

    println!("planted problem                  caught by");
    let mut missed = Vec::new();
    for (problem, expected) in planted::PROBLEMS {
        let mut by: Vec<String> = Vec::new();
        for (rule, object) in *expected {
            let hits = caught(&findings, rule, object);
            if hits.is_empty() {
                missed.push(format!("{problem}: {rule} on {object:?}"));
            } else {
                by.push(format!("{rule} ({})", hits.len()));
            }
        }
        let by = if expected.is_empty() {
            "(no rule yet)".to_string()
        } else {
            by.join(", ")
        };
        println!("{problem:<32} {by}");
    }
    println!("\n{} findings:", findings.len());
    for f in &findings {
        println!("{:<8} {:<28} {}", f.severity, f.rule, f.message);
    }
    assert!(
        missed.is_empty(),
        "planted problems not caught: {missed:#?}\nfindings: {findings:#?}"
    );

    // The sessions by pid: the writer idles in its transaction and blocks the waiter.
    let idle = caught(&findings, "idle_in_transaction", &p.writer_pid.to_string());
    assert_eq!(idle.len(), 1, "{findings:#?}");
    let blocked = caught(&findings, "blocked_session", &p.waiter_pid.to_string());
    assert_eq!(blocked.len(), 1, "{findings:#?}");
    let long = caught(
        &findings,
        "long_running_query",
        &p.long_query_pid.to_string(),
    );
    assert_eq!(long.len(), 1, "{findings:#?}");

    // The xmin horizon: the prepared transaction and the idle writer hold it; the waiter's
    // snapshot only follows the writer's XID and is never named as a cause (its own
    // blocked_session and long_running_query findings are about it, and may name it).
    let waiter = format!("pid {}", p.waiter_pid);
    let terminate_waiter = format!("pg_terminate_backend({})", p.waiter_pid);
    for f in findings.iter().filter(|f| !f.object.contains(&waiter)) {
        assert!(
            !f.message.contains(&waiter)
                && !f.next_step.contains(&waiter)
                && !f.sql.as_deref().unwrap_or("").contains(&terminate_waiter),
            "{} {} names the waiter {waiter}: {f:#?}",
            f.rule,
            f.object
        );
    }
    let waiting = caught(&findings, "long_running_query", &waiter);
    assert!(
        waiting.iter().all(|f| f.sql.is_none()),
        "a waiter is not told to be cancelled: {waiting:#?}"
    );
    let xid = caught(&findings, "xid_wraparound", "database postgres");
    let held_by = xid[0].evidence["held_back_by"].to_string();
    assert!(held_by.contains(p.gid), "{xid:#?}");
    assert!(held_by.contains(&p.writer_pid.to_string()), "{xid:#?}");

    common::assert_consistent(&findings);
}
