//! `pgopt drill failover` against embedded clusters (a primary and a synchronous standby):
//! in every mode no acknowledged write is lost and writes come back within a bound. The
//! bounds are generous (they prove that every wait ends, not that it ends fast).

use std::time::Duration;

use pgopt::drill::{failover, DrillOptions, DrillReport, Mode, Servers};
use pgopt::progress::Collect;

/// A bound that proves recovery is bounded; not a speed claim.
const RECOVERY_BOUND_S: f64 = 60.0;

fn short(mode: Mode) -> DrillOptions {
    DrillOptions {
        mode,
        clients: 3,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        promote_after: Duration::from_secs(1),
        ..DrillOptions::default()
    }
}

async fn drill(mode: Mode) -> DrillReport {
    let progress = Collect::new();
    let report = failover(&short(mode), &Servers::Embedded, &progress)
        .await
        .unwrap();
    assert!(
        !progress.events().is_empty(),
        "the drill reports progress as events"
    );
    report
}

fn assert_no_loss_and_bounded(r: &DrillReport) {
    let shown = serde_json::to_string_pretty(r).unwrap();
    assert_eq!(r.standby_sync_state.as_deref(), Some("sync"), "{shown}");
    assert!(r.acknowledged_writes > 0, "{shown}");
    assert_eq!(r.acknowledged_writes_lost, 0, "{shown}");
    assert_eq!(r.reads_missing, 0, "{shown}");
    assert_eq!(r.errors_before_event, 0, "{shown}");
    let after_event = r
        .writes_resumed_after_kill_s
        .expect("writes came back after the event");
    assert!(after_event < RECOVERY_BOUND_S, "{shown}");
    assert!(r.passed(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_mode_loses_no_acknowledged_write_and_writes_resume_on_the_promoted_standby() {
    let r = drill(Mode::Kill).await;
    assert_no_loss_and_bounded(&r);
    let after_promote = r
        .writes_resumed_after_promote_s
        .expect("writes came back after the promotion");
    assert!(after_promote < RECOVERY_BOUND_S, "{r:?}");
    // The pool saw the kill. Clients may see no error at all: one with no statement in
    // flight at the kill gets a connection to the promoted standby (CI saw that run).
    assert!(r.pool_failovers >= 1, "{r:?}");
    // The JSON a tool reads has the fields the issue names.
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "acknowledged_writes",
        "acknowledged_writes_lost",
        "writes_resumed_after_kill_s",
        "writes_resumed_after_promote_s",
        "errors_by_sqlstate",
    ] {
        assert!(v.get(key).is_some_and(|x| !x.is_null()), "{key} in {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mode_loses_no_acknowledged_write_and_clients_resume_on_the_same_primary() {
    let r = drill(Mode::Restart).await;
    assert_no_loss_and_bounded(&r);
    assert!(r.promote_after_s.is_none(), "{r:?}");
    assert!(r.writes_resumed_after_promote_s.is_none(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_mode_every_wait_ends_and_clients_recover_through_the_standby() {
    let r = drill(Mode::Partition).await;
    assert_no_loss_and_bounded(&r);
    assert!(r.writes_resumed_after_promote_s.is_some(), "{r:?}");
    // A hang shows as client-side timeouts (no SQLSTATE), never as a stuck client.
    assert!(r.errors_by_sqlstate.contains_key("timeout"), "{r:?}");
}

#[tokio::test]
async fn zero_clients_is_refused_with_a_clear_error_before_anything_starts() {
    let opts = DrillOptions {
        clients: 0,
        ..DrillOptions::default()
    };
    let e = failover(&opts, &Servers::Embedded, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("--clients"), "{e}");
}

#[tokio::test]
async fn a_dsn_that_does_not_parse_is_refused_naming_the_flag() {
    let servers = Servers::Given {
        primary: "postgresql://h:notaport/db".into(),
        standby: "host=b".into(),
    };
    let e = failover(
        &DrillOptions::default(),
        &servers,
        &pgopt::progress::NoProgress,
    )
    .await
    .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("--primary"), "{e}");
    assert!(e.to_string().contains("invalid port"), "{e}");
}

#[tokio::test]
async fn given_servers_are_refused_saying_the_drill_only_breaks_its_own() {
    let servers = Servers::Given {
        primary: "host=db1 dbname=app".into(),
        standby: "host=db2 dbname=app".into(),
    };
    let e = failover(
        &DrillOptions::default(),
        &servers,
        &pgopt::progress::NoProgress,
    )
    .await
    .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("without --primary/--standby"), "{e}");
}
