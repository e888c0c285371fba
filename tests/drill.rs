//! `pgopt drill failover` against embedded clusters (a primary and a synchronous standby,
//! started by the drill or handed to it as your own servers):
//! in every mode no acknowledged write is lost and writes come back within a bound. The
//! bounds are generous (they prove that every wait ends, not that it ends fast).

use std::time::Duration;

use pgopt::drill::{failover, Commands, DrillOptions, DrillReport, Mode, Servers};
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

mod hermetic;

/// The hermetic target of an embedded server.
fn local(port: u16) -> pgopt::db::Target {
    hermetic::target(&format!(
        "host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable connect_timeout=2"
    ))
}

/// The drill's own primary and synchronous standby, started here and handed to it as your
/// servers once the primary reports the standby `sync` (bounded).
async fn synced_pair() -> (pgopt::embedded::Cluster, pgopt::embedded::Cluster) {
    tokio::task::spawn_blocking(|| {
        let (primary, standby) = pgopt::drill::start_pair().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while primary
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
            )
            .unwrap()
            != "1"
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no synchronous standby"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        (primary, standby)
    })
    .await
    .unwrap()
}

/// Your own servers (here embedded ones, handed over by DSN): the drill kills the primary
/// with the given command, promotes the standby with pg_promote(), and finds every
/// acknowledged write on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_given_servers_the_kill_command_and_pg_promote_lose_no_acknowledged_write() {
    let (primary, standby) = synced_pair().await;
    let servers = Servers::Given {
        primary: local(primary.port()),
        standby: local(standby.port()),
        commands: Commands {
            // SIGQUIT to the postmaster: an immediate shutdown.
            kill: Some(format!(
                "kill -QUIT $(head -1 '{}/postmaster.pid')",
                primary.data_dir().display()
            )),
            ..Commands::default()
        },
    };
    let r = failover(&short(Mode::Kill), &servers, &pgopt::progress::NoProgress)
        .await
        .unwrap();
    assert!(!r.embedded, "{r:?}");
    assert_no_loss_and_bounded(&r);
    assert!(r.writes_resumed_after_promote_s.is_some(), "{r:?}");
    assert_eq!(r.verified_on, format!("127.0.0.1:{}", standby.port()));
    assert_eq!(
        standby
            .psql("postgres", "SELECT pg_is_in_recovery()")
            .unwrap(),
        "f",
        "the standby was promoted"
    );
    drop(primary);
}

/// Partition on your own servers: the drill's proxy sits in front of the given primary
/// (its name kept, the proxy's address used), cuts it, and the standby is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_given_servers_partition_cuts_through_the_proxy_and_loses_nothing() {
    let (primary, standby) = synced_pair().await;
    let servers = Servers::Given {
        primary: local(primary.port()),
        standby: local(standby.port()),
        commands: Commands::default(),
    };
    let r = failover(
        &short(Mode::Partition),
        &servers,
        &pgopt::progress::NoProgress,
    )
    .await
    .unwrap();
    assert_no_loss_and_bounded(&r);
    assert!(r.pool_failovers >= 1, "{r:?}");
    assert_eq!(r.verified_on, format!("127.0.0.1:{}", standby.port()));
}

/// Given servers of the wrong role are refused before any load, naming the flag; a failing
/// command stops the drill with its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_servers_of_the_wrong_role_or_a_failing_command_are_clear_errors() {
    let (primary, standby) = tokio::task::spawn_blocking(pgopt::drill::start_pair)
        .await
        .unwrap()
        .unwrap();
    let swapped = Servers::Given {
        primary: local(standby.port()),
        standby: local(primary.port()),
        commands: Commands {
            kill: Some("true".into()),
            ..Commands::default()
        },
    };
    let e = failover(&short(Mode::Kill), &swapped, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(e.to_string().contains("--primary"), "{e}");
    assert!(e.to_string().contains("in recovery"), "{e}");

    let failing = Servers::Given {
        primary: local(primary.port()),
        standby: local(standby.port()),
        commands: Commands {
            kill: Some("echo no route to db1 >&2; exit 3".into()),
            ..Commands::default()
        },
    };
    let e = failover(&short(Mode::Kill), &failing, &pgopt::progress::NoProgress)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("--kill-command failed"), "{msg}");
    assert!(msg.contains("no route to db1"), "{msg}");
    // Nothing was promoted.
    assert_eq!(
        standby
            .psql("postgres", "SELECT pg_is_in_recovery()")
            .unwrap(),
        "t"
    );
}

/// Without --yes, `pgopt drill failover --primary ... --standby ...` prints its plan and
/// touches nothing; a DSN that does not parse is refused naming the flag.
#[test]
fn on_given_servers_the_command_line_prints_the_plan_without_yes() {
    let pgopt = env!("CARGO_BIN_EXE_pgopt");
    let out = std::process::Command::new(pgopt)
        .args([
            "drill",
            "failover",
            "--primary",
            "host=db1.invalid port=5432 user=app password=s3cret",
            "--standby",
            "host=db2.invalid port=5432 user=app",
            "--kill-command",
            "ssh db1 pg_ctl stop -m immediate",
        ])
        .env_remove("PGPASSWORD")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("add --yes to run it"), "{text}");
    assert!(
        text.contains("kill the primary: sh -c 'ssh db1 pg_ctl stop -m immediate'"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");

    let out = std::process::Command::new(pgopt)
        .args([
            "drill",
            "failover",
            "--primary",
            "postgresql://h:notaport/db",
            "--standby",
            "host=b",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--primary"), "{err}");
    assert!(err.contains("invalid port"), "{err}");

    // Kill mode without --kill-command: refused, naming the flag.
    let out = std::process::Command::new(pgopt)
        .args([
            "drill",
            "failover",
            "--primary",
            "host=db1.invalid",
            "--standby",
            "host=db2.invalid",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--kill-command"), "{err}");
}
