//! `pgopt serve`'s maintenance in windows, on real clusters: inside an open window the plan
//! runs once per opening and a Maintenance event names its journal; outside a window, with
//! `apply = false` or without any window nothing runs; a window closing mid-run stops it,
//! cancels the step in flight (a VACUUM waiting for its lock, a REINDEX CONCURRENTLY waiting
//! for an old snapshot) with no invalid index left, and the journal says what happened to
//! every step.
//!
//! Time is a ManualClock: the windows open and close when the test says. The waits on
//! events are bounds, not measurements.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use pgopt::advise::Thresholds;
use pgopt::db::Secret;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::maintain::window;
use pgopt::serve::clock::{Clock, ManualClock};
use pgopt::serve::config::{Config, Intervals, Regressions, TargetConfig};
use pgopt::serve::maintenance::{self, Options};
use pgopt::serve::model::{Collected, Event, EventKind};
use pgopt::serve::state::Fleet;
use tokio::sync::{mpsc, watch};

/// Saturdays 02:00-05:00 UTC.
const SATURDAY_2AM: &str = "[[maintenance.window]]\ncron = \"0 2 * * 6\"\nduration = \"3h\"\n";

/// How long a test waits for a run's event at most (a bound, not a measurement).
const RUN_WITHIN: Duration = Duration::from_secs(180);
/// How long a test watches for something that must not happen.
const OBSERVE: Duration = Duration::from_secs(3);

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn one(c: &Cluster, sql: &str) -> String {
    c.psql("postgres", sql).unwrap().trim().to_string()
}

/// Tables with half their rows dead and autovacuum off on them, so only pgopt vacuums them.
/// Each statement in its own session: a session's statistics are flushed when it ends.
fn plant_dead_rows(c: &Cluster, tables: &[&str]) {
    for t in tables {
        c.psql(
            "postgres",
            &format!(
                "CREATE TABLE {t} (id int, pad text) WITH (autovacuum_enabled = false);
                 INSERT INTO {t} SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;"
            ),
        )
        .unwrap();
        c.psql("postgres", &format!("DELETE FROM {t} WHERE id % 2 = 0;"))
            .unwrap();
    }
}

fn vacuumed(c: &Cluster, table: &str) -> bool {
    one(
        c,
        &format!(
            "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = '{table}'"
        ),
    ) == "t"
}

fn config(dsn: &str, data_dir: &Path, apply: bool, windows: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        store: None,
        auth: None,
        tls: None,
        intervals: Intervals::default(),
        retention: Default::default(),
        targets: vec![TargetConfig {
            name: "db1".into(),
            dsn: Secret::new(dsn),
            password_file: None,
            groups: vec![],
            labels: BTreeMap::new(),
            maintenance_apply: apply,
            line: 1,
        }],
        alerts: vec![],
        regressions: Regressions::default(),
        webhooks: vec![],
        windows: window::parse(windows, "pgopt.toml").unwrap().windows,
    }
}

/// The maintenance loop running on a runtime of its own.
struct Running {
    rt: tokio::runtime::Runtime,
    events: mpsc::Receiver<Collected>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(config: Config, clock: Arc<ManualClock>, opts: Options) -> Running {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (tx, events) = mpsc::channel(16);
        let (shutdown, rx) = watch::channel(false);
        let clock: Arc<dyn Clock> = clock;
        let task = rt.spawn(maintenance::run_with(
            Arc::new(config),
            Arc::new(Fleet::new(vec![])),
            clock,
            tx,
            rx,
            opts,
        ));
        Running {
            rt,
            events,
            shutdown,
            task: Some(task),
        }
    }

    /// The next event, waiting at most `within`.
    fn next_event(&mut self, within: Duration) -> Option<Event> {
        let events = &mut self.events;
        self.rt.block_on(async {
            match tokio::time::timeout(within, events.recv()).await {
                Ok(Some(Collected::Event(e))) => Some(e),
                Ok(Some(other)) => panic!("maintenance sends events only: {other:?}"),
                Ok(None) | Err(_) => None,
            }
        })
    }

    /// Shuts the loop down; it must return (bounded). Events sent meanwhile stay readable.
    fn shut_down(&mut self) {
        self.shutdown.send(true).unwrap();
        let task = self.task.take().unwrap();
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await })
            .expect("maintenance returns after shutdown")
            .unwrap();
    }

    fn stop(mut self) {
        self.shut_down();
    }
}

fn quick() -> Options {
    Options {
        poll: Duration::from_millis(100),
        ..Options::default()
    }
}

fn journal(e: &Event) -> serde_json::Value {
    let path = e.details["journal"]
        .as_str()
        .unwrap_or_else(|| panic!("{e:?}"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn states(j: &serde_json::Value) -> Vec<String> {
    j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_open_window_runs_the_plan_once_per_opening_and_sends_an_event_with_the_journal() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c, &["big"]);
    assert!(!vacuumed(&c, "big"));
    let data = tempfile::tempdir().unwrap();
    // Saturday 03:00: the window is open until 05:00.
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 3, 0, 0)));
    let mut running = Running::start(
        config(&c.dsn("postgres"), data.path(), true, SATURDAY_2AM),
        clock.clone(),
        quick(),
    );
    let e = running.next_event(RUN_WITHIN).expect("a maintenance run");
    assert_eq!(e.kind, EventKind::Maintenance);
    assert_eq!(e.target, "db1");
    assert!(e.message.contains("done"), "{}", e.message);
    assert!(e.details["done"].as_u64().unwrap() >= 1, "{e:?}");
    assert_eq!(e.details["left"], 0, "{e:?}");
    assert_eq!(e.details["failed"], 0, "{e:?}");
    let path = e.details["journal"].as_str().unwrap();
    assert!(
        Path::new(path).starts_with(data.path().join("journals").join("db1")),
        "{path}"
    );
    assert!(e.message.contains(path), "{}", e.message);
    let j = journal(&e);
    assert!(states(&j).iter().all(|s| s == "done"), "{j:#}");
    assert!(
        j["steps"]
            .to_string()
            .contains(r#"VACUUM (ANALYZE) \"public\".\"big\""#),
        "{j:#}"
    );
    assert!(vacuumed(&c, "big"), "the plan ran on the server");

    // Later in the same opening: no second run.
    clock.advance(chrono::Duration::minutes(30));
    assert!(
        running.next_event(OBSERVE).is_none(),
        "one run per window opening"
    );
    // The next Saturday's opening runs again (nothing left to do now).
    clock.set(at(2026, 12, 12, 2, 10, 0));
    let again = running
        .next_event(RUN_WITHIN)
        .expect("a run in the next opening");
    assert_eq!(again.kind, EventKind::Maintenance);
    assert_eq!(
        again.details["window_opens"],
        at(2026, 12, 12, 2, 0, 0).to_rfc3339()
    );
    running.stop();
}

#[test]
fn no_window_open_runs_nothing() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c, &["big"]);
    let data = tempfile::tempdir().unwrap();
    // Friday 03:00: the next window opens tomorrow at 02:00.
    let clock = Arc::new(ManualClock::new(at(2026, 12, 4, 3, 0, 0)));
    let mut running = Running::start(
        config(&c.dsn("postgres"), data.path(), true, SATURDAY_2AM),
        clock.clone(),
        quick(),
    );
    assert!(running.next_event(OBSERVE).is_none());
    // Up to a second before it opens: still nothing.
    clock.set(at(2026, 12, 5, 1, 59, 59));
    assert!(running.next_event(OBSERVE).is_none());
    running.stop();
    assert!(!vacuumed(&c, "big"), "nothing ran outside a window");
    assert!(!data.path().join("journals").exists(), "no journal written");
}

#[test]
fn apply_false_never_runs_even_in_an_open_window() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c, &["big"]);
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 3, 0, 0)));
    let mut running = Running::start(
        config(&c.dsn("postgres"), data.path(), false, SATURDAY_2AM),
        clock,
        quick(),
    );
    assert!(running.next_event(OBSERVE).is_none());
    running.stop();
    assert!(!vacuumed(&c, "big"));
    assert!(!data.path().join("journals").exists());
}

#[test]
fn apply_without_any_window_runs_nothing() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c, &["big"]);
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 3, 0, 0)));
    let mut running = Running::start(
        config(&c.dsn("postgres"), data.path(), true, ""),
        clock,
        quick(),
    );
    assert!(running.next_event(OBSERVE).is_none());
    running.stop();
    assert!(!vacuumed(&c, "big"));
}

/// Holds a lock or a snapshot in a session of its own until dropped.
fn hold(rt: &tokio::runtime::Runtime, dsn: &str, sql: &str) -> pgopt::db::Conn {
    rt.block_on(async {
        let conn = pgopt::db::connect(&pgopt::db::Target::parse(dsn).unwrap())
            .await
            .unwrap();
        conn.batch("holding", sql).await.unwrap();
        conn
    })
}

#[test]
fn the_window_closing_mid_run_stops_it_lists_the_steps_left_and_completes_the_journal() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    let tables = ["t1", "t2", "t3", "t4", "t5"];
    plant_dead_rows(&c, &tables);
    let dsn = c.dsn("postgres");
    // Every table locked: whichever VACUUM comes first waits for its lock until the window
    // closes (its lock_timeout is longer than the window).
    let side = tokio::runtime::Runtime::new().unwrap();
    let holder = hold(
        &side,
        &dsn,
        "BEGIN; LOCK TABLE t1, t2, t3, t4, t5 IN SHARE UPDATE EXCLUSIVE MODE",
    );
    let data = tempfile::tempdir().unwrap();
    // 8 seconds before the window closes at 05:00 (the clock stands still: the run's budget
    // is those 8 seconds of real time).
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 4, 59, 52)));
    let mut running = Running::start(
        config(&dsn, data.path(), true, SATURDAY_2AM),
        clock,
        Options {
            lock_timeout: Duration::from_secs(600),
            ..quick()
        },
    );
    let e = running.next_event(RUN_WITHIN).expect("a maintenance run");
    assert_eq!(e.kind, EventKind::Maintenance);
    let steps = e.details["steps"].as_array().unwrap().len() as u64;
    assert!(steps >= tables.len() as u64, "{e:?}");
    assert_eq!(e.details["done"], 0, "{e:?}");
    let left = e.details["left"].as_u64().unwrap();
    assert!(
        left >= steps - 1,
        "the steps after the first are left: {e:?}"
    );
    assert!(e.message.contains(&format!("{left} left")), "{}", e.message);
    assert!(e.message.contains("the window closed"), "{}", e.message);
    assert_eq!(e.details["interrupted"], true, "{e:?}");
    // The journal says what happened to every step: none pending, none left started.
    let j = journal(&e);
    let st = states(&j);
    assert!(st.iter().all(|s| s == "skipped" || s == "failed"), "{j:#}");
    let cancelled: Vec<&serde_json::Value> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "failed")
        .collect();
    assert!(cancelled.len() <= 1, "{j:#}");
    for s in cancelled {
        assert!(
            s["reason"].as_str().unwrap().starts_with("interrupted"),
            "{s:#}"
        );
        assert!(e.message.contains("cancelled"), "{}", e.message);
    }
    assert!(j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "skipped")
        .all(|s| s["reason"].as_str().unwrap().starts_with("not started:")));
    for t in tables {
        assert!(
            !vacuumed(&c, t),
            "{t} was not vacuumed after the window closed"
        );
    }
    running.stop();
    drop(holder);
}

/// The index of `refilled` keeps a quarter of its old leaves (the planting of tests/bloat.rs).
const PLANT_INDEX_BLOAT: &[&str] = &[
    "CREATE TABLE refilled (id int PRIMARY KEY, payload text NOT NULL);
     INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, 300000) g;
     DELETE FROM refilled WHERE id % 4 <> 0;",
    "VACUUM refilled;",
    "INSERT INTO refilled SELECT g, repeat(md5(g::text), 2) FROM generate_series(300001, 525000) g;",
    "VACUUM ANALYZE refilled;",
];

#[test]
fn the_window_closing_mid_reindex_cancels_it_and_leaves_no_invalid_index() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    for step in PLANT_INDEX_BLOAT {
        c.psql("postgres", step).unwrap();
    }
    let dsn = c.dsn("postgres");
    // An old snapshot in the same database: REINDEX CONCURRENTLY builds its copy, then waits
    // for that snapshot before it may swap, until the window closes.
    let side = tokio::runtime::Runtime::new().unwrap();
    let holder = hold(
        &side,
        &dsn,
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1",
    );
    let data = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 4, 59, 50)));
    let mut running = Running::start(
        config(&dsn, data.path(), true, SATURDAY_2AM),
        clock,
        Options {
            lock_timeout: Duration::from_secs(600),
            thresholds: Thresholds::with_overrides(&[
                "index_bloat_min_wasted_bytes=1048576".to_string()
            ])
            .unwrap(),
            ..quick()
        },
    );
    let e = running.next_event(RUN_WITHIN).expect("a maintenance run");
    assert_eq!(e.kind, EventKind::Maintenance);
    let j = journal(&e);
    let reindex = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            s["step"]["action"]["sql"]
                .as_str()
                .is_some_and(|q| q.starts_with("REINDEX INDEX CONCURRENTLY"))
        })
        .unwrap_or_else(|| panic!("a REINDEX step: {j:#}"));
    assert_eq!(reindex["state"], "failed", "{j:#}");
    let reason = reindex["reason"].as_str().unwrap();
    assert!(reason.starts_with("interrupted"), "{reason}");
    assert!(
        reason.contains("_ccnew") && reason.contains("dropped"),
        "{reason}"
    );
    assert!(e.message.contains("cancelled"), "{}", e.message);
    drop(holder);
    assert_eq!(
        one(&c, "SELECT count(*) FROM pg_index WHERE NOT indisvalid"),
        "0",
        "no invalid index left"
    );
    assert_eq!(
        one(
            &c,
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'refilled_pkey'::regclass"
        ),
        "t"
    );
    running.stop();
}

#[test]
fn shutdown_mid_run_cancels_the_step_in_flight_and_completes_the_journal() {
    let c = Cluster::start(ClusterOptions::default()).unwrap();
    plant_dead_rows(&c, &["t1", "t2"]);
    let dsn = c.dsn("postgres");
    let side = tokio::runtime::Runtime::new().unwrap();
    let holder = hold(
        &side,
        &dsn,
        "BEGIN; LOCK TABLE t1, t2 IN SHARE UPDATE EXCLUSIVE MODE",
    );
    let data = tempfile::tempdir().unwrap();
    // Two hours of window left: only the shutdown stops the VACUUM waiting for its lock.
    let clock = Arc::new(ManualClock::new(at(2026, 12, 5, 3, 0, 0)));
    let mut running = Running::start(
        config(&dsn, data.path(), true, SATURDAY_2AM),
        clock,
        Options {
            lock_timeout: Duration::from_secs(600),
            ..quick()
        },
    );
    // Wait (bounded) until a VACUUM of ours waits for its lock on the server.
    let waiting = || {
        one(
            &c,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM%' \
             AND wait_event_type = 'Lock'",
        ) == "1"
    };
    let mut tries = 0;
    while !waiting() {
        tries += 1;
        assert!(tries < 600, "a VACUUM waiting for its lock");
        std::thread::sleep(Duration::from_millis(200));
    }
    running.shut_down();
    let e = running.next_event(RUN_WITHIN).expect("the run's event");
    assert!(e.message.contains("the daemon shut down"), "{}", e.message);
    assert!(e.message.contains("cancelled"), "{}", e.message);
    let j = journal(&e);
    let st = states(&j);
    assert_eq!(st.iter().filter(|s| *s == "failed").count(), 1, "{j:#}");
    assert!(st.iter().all(|s| s == "failed" || s == "skipped"), "{j:#}");
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'VACUUM%' AND state = 'active'"
        ),
        "0",
        "the VACUUM was cancelled on the server"
    );
    drop(holder);
    assert!(!vacuumed(&c, "t1") && !vacuumed(&c, "t2"));
}
