//! The collector of `pgopt serve` on real clusters: a fleet of three where one is stopped and
//! started again (its Down event, its gap, its Up event; the others go on), a target that
//! accepts TCP and never answers (down, the other proceeds), counter resets (pg_stat_reset,
//! pg_stat_statements_reset, a restart) as Reset events with no negative rate, and the
//! calls of a statement counted exactly by its deltas.
//!
//! Waits are bounded by generous deadlines (the machine is shared); nothing asserts speed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pgopt::db::Secret;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::serve::clock::SystemClock;
use pgopt::serve::collector;
use pgopt::serve::config::{Config, Intervals, Regressions, TargetConfig};
use pgopt::serve::model::{m, Collected, EventKind, Sample};
use pgopt::serve::state::{Fleet, Health, TargetView};
use pgopt::serve::store::Retention;

/// The bound on every wait of these tests: far above what any step needs.
const DEADLINE: Duration = Duration::from_secs(120);

fn config(targets: &[(&str, String)], intervals: Intervals) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: std::env::temp_dir(),
        store: None,
        auth: None,
        tls: None,
        intervals,
        retention: Retention::default(),
        targets: targets
            .iter()
            .enumerate()
            .map(|(i, (name, dsn))| TargetConfig {
                name: name.to_string(),
                dsn: Secret::new(dsn.clone()),
                password_file: None,
                groups: Vec::new(),
                labels: BTreeMap::new(),
                maintenance_apply: false,
                line: i + 1,
            })
            .collect(),
        alerts: Vec::new(),
        regressions: Regressions::default(),
        webhooks: Vec::new(),
        windows: Vec::new(),
    }
}

/// Samples every second, a generous timeout, no full snapshot but the first.
fn fast() -> Intervals {
    Intervals {
        sample: Duration::from_secs(1),
        snapshot: Duration::from_secs(3600),
        timeout: Duration::from_secs(5),
        concurrency: 8,
        top_statements: 50,
    }
}

/// A running collector and everything it sent.
struct Harness {
    got: Arc<Mutex<Vec<Collected>>>,
    fleet: Arc<Fleet>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    sink: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start(cfg: Config) -> Harness {
        let views = cfg
            .targets
            .iter()
            .map(|t| TargetView::new(&t.name, BTreeMap::new()))
            .collect();
        let fleet = Arc::new(Fleet::new(views));
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let sink = tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                sink.lock().unwrap().push(c);
            }
        });
        let task = tokio::spawn(collector::run(
            Arc::new(cfg),
            fleet.clone(),
            Arc::new(SystemClock),
            tx,
            shutdown,
        ));
        Harness {
            got,
            fleet,
            stop,
            task,
            sink,
        }
    }

    fn all(&self) -> Vec<Collected> {
        self.got.lock().unwrap().clone()
    }

    /// Samples of `target` with `up` = 1 (real ones, not the gap's `up` = 0).
    fn samples(&self, target: &str) -> Vec<Sample> {
        self.all()
            .into_iter()
            .filter_map(|c| match c {
                Collected::Sample(s) if s.target == target && s.values.get(m::UP) == Some(&1.0) => {
                    Some(s)
                }
                _ => None,
            })
            .collect()
    }

    fn events(&self, target: &str, kind: EventKind) -> Vec<pgopt::serve::model::Event> {
        self.all()
            .into_iter()
            .filter_map(|c| match c {
                Collected::Event(e) if e.target == target && e.kind == kind => Some(e),
                _ => None,
            })
            .collect()
    }

    async fn wait_for(&self, what: &str, mut done: impl FnMut(&Harness) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < DEADLINE,
                "waited {}s for {what}; got {:#?}",
                DEADLINE.as_secs(),
                self.fleet
                    .views()
                    .iter()
                    .map(|v| (&v.name, &v.health))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) -> Vec<Collected> {
        self.stop.send(true).unwrap();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the collector returns after shutdown")
            .unwrap();
        // Every sender is gone with the collector: the sink drains and ends.
        tokio::time::timeout(DEADLINE, self.sink)
            .await
            .expect("the output channel closes")
            .unwrap();
        let got = self.got.lock().unwrap().clone();
        got
    }
}

/// No sample holds a negative rate, ratio or statement delta.
fn assert_no_negative(all: &[Collected]) {
    for c in all {
        if let Collected::Sample(s) = c {
            for (k, v) in &s.values {
                assert!(*v >= 0.0, "{}: {k} = {v}", s.target);
            }
            for st in &s.statements {
                assert!(
                    st.calls >= 0.0 && st.total_seconds >= 0.0 && st.rows >= 0.0,
                    "{}: {st:?}",
                    s.target
                );
            }
        }
    }
}

fn start_clusters(n: usize) -> Vec<Cluster> {
    let handles: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(|| Cluster::start(ClusterOptions::default()).unwrap()))
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_three_one_stopped_then_started_shows_its_gap_and_the_others_go_on() {
    let mut clusters = start_clusters(3);
    let names = ["a", "b", "c"];
    let targets: Vec<(&str, String)> = names
        .iter()
        .zip(&clusters)
        .map(|(n, c)| (*n, c.dsn("postgres")))
        .collect();
    let h = Harness::start(config(&targets, fast()));
    h.wait_for("two samples of each target", |h| {
        names.iter().all(|n| h.samples(n).len() >= 2)
    })
    .await;
    let second = h.samples("a")[1].clone();
    assert!(second.interval_seconds > 0.0);
    for metric in [m::TPS, m::CONNECTIONS, m::MAX_CONNECTIONS, m::LOCKS_WAITING] {
        assert!(second.values.contains_key(metric), "{metric}: {second:#?}");
    }
    assert!(second.values.contains_key(m::WAL_BYTES_PER_SECOND));
    assert!(second.values.contains_key(m::CONNECTIONS_USED_RATIO));

    tokio::task::block_in_place(|| clusters[1].kill());
    h.wait_for("b's Down event", |h| {
        !h.events("b", EventKind::Down).is_empty()
    })
    .await;
    let down = h.events("b", EventKind::Down)[0].clone();
    assert!(matches!(
        h.fleet.views()[1].health,
        Health::Down { attempts, .. } if attempts >= 1
    ));
    let (a0, c0) = (h.samples("a").len(), h.samples("c").len());
    h.wait_for("three more samples of a and c while b is down", |h| {
        h.samples("a").len() >= a0 + 3 && h.samples("c").len() >= c0 + 3
    })
    .await;
    assert!(
        h.events("b", EventKind::Up).is_empty(),
        "b is still stopped"
    );

    tokio::task::block_in_place(|| clusters[1].restart().unwrap());
    h.wait_for("b's Up event", |h| !h.events("b", EventKind::Up).is_empty())
        .await;
    let up = h.events("b", EventKind::Up)[0].clone();
    assert!(up.at > down.at);
    // The gap: no real sample of b between its Down and Up; a and c sampled within it.
    let b = h.samples("b");
    assert!(b.iter().all(|s| s.at <= down.at || s.at >= up.at), "{b:#?}");
    for other in ["a", "c"] {
        let inside = h
            .samples(other)
            .iter()
            .filter(|s| s.at > down.at && s.at < up.at)
            .count();
        assert!(inside >= 3, "{other}: {inside} samples during b's gap");
    }
    h.wait_for("b's restart as a Reset event", |h| {
        !h.events("b", EventKind::Reset).is_empty()
    })
    .await;
    // The first full snapshot of each target came soon after the start, with findings.
    h.wait_for("a full snapshot of each target", |h| {
        h.fleet.views().iter().all(|v| v.snapshot_at.is_some())
    })
    .await;
    let views = h.fleet.views();
    assert!(views.iter().all(|v| matches!(v.health, Health::Up { .. })));
    assert!(views[0].server.as_deref().unwrap().contains("primary"));
    let all = h.stop().await;
    let findings = all
        .iter()
        .filter(|c| matches!(c, Collected::Findings { .. }))
        .count();
    assert!(findings >= 3, "{findings} findings batches");
    assert_eq!(
        all.iter()
            .filter(
                |c| matches!(c, Collected::Event(e) if e.target == "b" && e.kind == EventKind::Down)
            )
            .count(),
        1,
        "one Down event per transition"
    );
    // a and c ran on undisturbed: no reset seen there.
    for other in ["a", "c"] {
        assert!(
            !all.iter().any(|c| matches!(c, Collected::Event(e) if e.target == other && e.kind == EventKind::Reset)),
            "{other} saw a reset"
        );
    }
    // b's gap is shown as up = 0 samples.
    assert!(all.iter().any(
        |c| matches!(c, Collected::Sample(s) if s.target == "b" && s.values.get(m::UP) == Some(&0.0))
    ));
    assert_no_negative(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_accepts_tcp_and_never_answers_stays_down_while_another_proceeds() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts every connection and never reads nor writes a byte.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let c = start_clusters(1).pop().unwrap();
    let mut iv = fast();
    iv.timeout = Duration::from_secs(2);
    let h = Harness::start(config(
        &[
            (
                "silent",
                format!(
                    "postgresql://postgres:not-a-real-pw@127.0.0.1:{port}/postgres?sslmode=disable"
                ),
            ),
            ("real", c.dsn("postgres")),
        ],
        iv,
    ));
    h.wait_for("the silent target down", |h| {
        !h.events("silent", EventKind::Down).is_empty()
    })
    .await;
    let n = h.samples("real").len();
    h.wait_for("five more samples of the real target", |h| {
        h.samples("real").len() >= n + 5
    })
    .await;
    let views = h.fleet.views();
    match &views[0].health {
        Health::Down { error, .. } => {
            assert!(!error.contains("not-a-real-pw"), "{error}");
            assert!(!error.is_empty());
        }
        other => panic!("silent is {other:?}"),
    }
    assert!(matches!(views[1].health, Health::Up { .. }));
    let all = h.stop().await;
    assert!(
        all.iter()
            .all(|c| !matches!(c, Collected::Sample(s) if s.target == "silent" && s.values.get(m::UP) == Some(&1.0)))
    );
    for c in &all {
        if let Collected::Event(e) = c {
            assert!(!e.message.contains("not-a-real-pw"), "{}", e.message);
        }
    }
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_resets_on_a_real_server_are_reset_events_and_never_negative_rates() {
    let mut c = start_clusters(1).pop().unwrap();
    let h = Harness::start(config(&[("r", c.dsn("postgres"))], fast()));
    h.wait_for("two samples", |h| h.samples("r").len() >= 2)
        .await;
    let reset_named = |h: &Harness, name: &str| {
        h.events("r", EventKind::Reset)
            .iter()
            .any(|e| e.details.get("reset") == Some(&serde_json::json!(name)))
    };

    tokio::task::block_in_place(|| {
        c.psql("postgres", "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 1000); SELECT pg_stat_reset();")
            .unwrap()
    });
    h.wait_for("a database_stats Reset event", |h| {
        reset_named(h, "database_stats")
    })
    .await;

    tokio::task::block_in_place(|| {
        c.psql("postgres", "SELECT pg_stat_statements_reset();")
            .unwrap()
    });
    h.wait_for("a statements Reset event", |h| reset_named(h, "statements"))
        .await;

    tokio::task::block_in_place(|| c.restart().unwrap());
    h.wait_for("a restart Reset event", |h| reset_named(h, "restart"))
        .await;
    // Rates again after the restart.
    h.wait_for("a sample with rates after the restart", |h| {
        let restart_at = h
            .events("r", EventKind::Reset)
            .iter()
            .find(|e| e.details.get("reset") == Some(&serde_json::json!("restart")))
            .map(|e| e.at)
            .unwrap();
        h.samples("r")
            .iter()
            .any(|s| s.at > restart_at && s.values.contains_key(m::TPS))
    })
    .await;
    let all = h.stop().await;
    // The samples that carry a reset of the database counters (or of everything) have no
    // database rate; a pg_stat_statements reset spoils the statement deltas only.
    for c in &all {
        if let Collected::Sample(s) = c {
            if s.resets
                .iter()
                .any(|r| *r != pgopt::serve::model::Reset::Statements)
            {
                assert!(!s.values.contains_key(m::TPS), "{s:#?}");
                assert!(!s.values.contains_key(m::CACHE_HIT_RATIO), "{s:#?}");
            }
            if s.resets
                .iter()
                .any(|r| *r != pgopt::serve::model::Reset::DatabaseStats)
            {
                assert!(s.statements.is_empty(), "{s:#?}");
            }
        }
    }
    assert_no_negative(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_deltas_count_every_call_run_between_samples() {
    const N: usize = 37;
    let c = start_clusters(1).pop().unwrap();
    c.psql("postgres", "CREATE TABLE serve_probe (i int)")
        .unwrap();
    let h = Harness::start(config(&[("s", c.dsn("postgres"))], fast()));
    h.wait_for("one sample", |h| !h.samples("s").is_empty())
        .await;
    let script = "SELECT count(*) FROM serve_probe WHERE i = 5;\n".repeat(N);
    tokio::task::block_in_place(|| c.psql("postgres", &script).unwrap());
    // The calls may fall into one interval or two: their deltas add up to N either way.
    let probe_calls = |h: &Harness| -> f64 {
        h.samples("s")
            .iter()
            .flat_map(|s| s.statements.clone())
            .filter(|st| st.query.contains("serve_probe") && st.query.contains("count"))
            .map(|st| st.calls)
            .sum()
    };
    h.wait_for("the probe's calls in the deltas", |h| {
        probe_calls(h) >= N as f64
    })
    .await;
    // One more sample: nothing more is counted once the calls stopped.
    let n = h.samples("s").len();
    h.wait_for("two more samples", |h| h.samples("s").len() >= n + 2)
        .await;
    assert_eq!(probe_calls(&h), N as f64);
    let with_probe = h
        .samples("s")
        .into_iter()
        .find(|s| {
            s.statements
                .iter()
                .any(|st| st.query.contains("serve_probe"))
        })
        .unwrap();
    assert!(with_probe.interval_seconds > 0.0);
    let points = with_probe.points();
    assert!(points
        .iter()
        .any(|p| p.metric == m::STATEMENT_CALLS_PER_SECOND));
    let all = h.stop().await;
    assert_no_negative(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_is_one_failover_reset_and_shows_its_replay_lag_before() {
    let primary = start_clusters(1).pop().unwrap();
    let standby = tokio::task::block_in_place(|| primary.standby().unwrap());
    let h = Harness::start(config(
        &[
            ("p", primary.dsn("postgres")),
            ("s", standby.dsn("postgres")),
        ],
        fast(),
    ));
    h.wait_for("two samples of each", |h| {
        h.samples("p").len() >= 2 && h.samples("s").len() >= 2
    })
    .await;
    let s = h.samples("s").pop().unwrap();
    assert!(s.values.contains_key(m::REPLICATION_LAG_SECONDS), "{s:#?}");
    assert!(!s.values.contains_key(m::WAL_BYTES_PER_SECOND));
    assert!(h.fleet.views()[1]
        .server
        .as_deref()
        .unwrap()
        .contains("standby"));

    tokio::task::block_in_place(|| standby.promote().unwrap());
    h.wait_for("the promotion as a Reset event", |h| {
        !h.events("s", EventKind::Reset).is_empty()
    })
    .await;
    let n = h.samples("s").len();
    h.wait_for("three more samples of the promoted server", |h| {
        h.samples("s").len() >= n + 3
            && h.fleet.views()[1]
                .server
                .as_deref()
                .is_some_and(|s| s.contains("primary"))
    })
    .await;
    let all = h.stop().await;
    let resets: Vec<_> = all
        .iter()
        .filter_map(|c| match c {
            Collected::Event(e) if e.target == "s" && e.kind == EventKind::Reset => {
                Some(e.details["reset"].clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        resets,
        vec![serde_json::json!("failover")],
        "one failover, not a second one when the end-of-recovery checkpoint moves the timeline"
    );
    assert!(
        !all.iter().any(
            |c| matches!(c, Collected::Event(e) if e.target == "p" && e.kind == EventKind::Reset)
        ),
        "the primary saw no reset"
    );
    assert_no_negative(&all);
}
