//! `pgopt serve` through the binary, with every part plugged in: a fleet of two real
//! clusters and one target nothing answers; readiness, `/metrics` and the fleet page; an
//! alert that fires and resolves with a webhook receiving exactly one of each; SIGTERM →
//! exit 0; a restart on the same data directory keeps the history. A query regression: the
//! index a statement uses is dropped, the webhook receives `query_regression` with the
//! before and after and auto_explain's plan, and rebuilding the index resolves it.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::serve::store::sqlite::SqliteStore;
use pgopt::serve::store::{Query, Store};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET over HTTP/1.0 (no chunked body): the status code and the body; bounded.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// Polls `f` until it is true, at most `within`.
fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The value of the series `name{target="t"}` in an OpenMetrics text.
fn series(metrics: &str, name: &str, target: &str) -> Option<f64> {
    let prefix = format!("{name}{{target=\"{target}\"");
    metrics
        .lines()
        .find(|l| l.starts_with(&prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[derive(Default)]
struct Hooked(Mutex<Vec<Value>>);

async fn hook(State(h): State<Arc<Hooked>>, body: String) -> StatusCode {
    h.0.lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    StatusCode::OK
}

fn start_daemon(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pgopt"))
        .args(["serve", "--config"])
        .arg(config)
        .env("PGOPT_LOG", "pgopt=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgopt serve")
}

/// SIGTERM, then the exit status within the daemon's 10 s bound (and some slack).
fn terminate(mut child: Child) -> (std::process::ExitStatus, Duration, String) {
    let start = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, start.elapsed(), err);
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("pgopt serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_daemon_watches_a_fleet_alerts_once_each_way_stops_on_sigterm_and_keeps_its_history() {
    let clusters: Vec<Cluster> = (0..2)
        .map(|_| std::thread::spawn(|| Cluster::start(ClusterOptions::default()).unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hooked = Arc::new(Hooked::default());
    let hook_port = {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(hooked.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        port
    };
    let dead = free_port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("pgopt.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"

[intervals]
sample = "2s"
timeout = "1s"

[[target]]
name = "alpha"
dsn = "{a}"

[[target]]
name = "beta"
dsn = "{b}"

[[target]]
name = "gone"
dsn = "host=127.0.0.1 port={dead} user=postgres dbname=postgres connect_timeout=1"

[[alert]]
name = "busy"
when = "connections > 15 for 2s"
severity = "warning"

[[notify.webhook]]
url = "http://127.0.0.1:{hook_port}/hook"
timeout = "2s"
retries = 2
"#,
            data = data.display(),
            a = clusters[0].dsn("postgres"),
            b = clusters[1].dsn("postgres"),
        ),
    )
    .unwrap();

    let daemon = start_daemon(&config);
    wait_for("/readyz", Duration::from_secs(60), || {
        get(port, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    wait_for(
        "alpha and beta up, gone down",
        Duration::from_secs(60),
        || {
            let Some((200, m)) = get(port, "/metrics") else {
                return false;
            };
            series(&m, "pgopt_up", "alpha") == Some(1.0)
                && series(&m, "pgopt_up", "beta") == Some(1.0)
                && series(&m, "pgopt_up", "gone") == Some(0.0)
        },
    );
    let (code, page) = get(port, "/").unwrap();
    assert_eq!(code, 200);
    for name in ["alpha", "beta", "gone"] {
        assert!(page.contains(name), "the fleet page names {name}");
    }

    // Hold 20 connections on alpha: the alert fires once; release them: it resolves once.
    let held: Vec<_> = rt.block_on(async {
        let mut held = Vec::new();
        for _ in 0..20 {
            let (client, conn) =
                tokio_postgres::connect(&clusters[0].dsn("postgres"), tokio_postgres::NoTls)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            held.push(client);
        }
        held
    });
    let hooked_for = |status: &str| {
        hooked
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["rule"] == "busy" && v["status"] == status)
            .cloned()
            .collect::<Vec<_>>()
    };
    wait_for("the firing webhook", Duration::from_secs(60), || {
        !hooked_for("firing").is_empty()
    });
    drop(held);
    wait_for("the resolved webhook", Duration::from_secs(60), || {
        !hooked_for("resolved").is_empty()
    });
    // A few more samples: nothing more is sent.
    std::thread::sleep(Duration::from_secs(3));
    let firing = hooked_for("firing");
    let resolved = hooked_for("resolved");
    assert_eq!(
        (firing.len(), resolved.len()),
        (1, 1),
        "{firing:?} {resolved:?}"
    );
    assert_eq!(firing[0]["target"], "alpha");
    assert!(hooked
        .0
        .lock()
        .unwrap()
        .iter()
        .all(|v| v["target"] == "alpha"));

    let (status, took, log) = terminate(daemon);
    assert!(status.success(), "exit {status:?}: {log}");
    assert!(took < Duration::from_secs(11), "stopped in {took:?}");
    assert!(!log.contains("password"), "{log}");
    let stopped_at = chrono::Utc::now();

    // A restart on the same data directory resumes with its history.
    let daemon = start_daemon(&config);
    wait_for("/readyz after the restart", Duration::from_secs(60), || {
        get(port, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    std::thread::sleep(Duration::from_secs(4));
    let (status, _, log) = terminate(daemon);
    assert!(status.success(), "exit {status:?}: {log}");
    let store = SqliteStore::open(&data).unwrap();
    let rows = store
        .query(&Query {
            target: "alpha".into(),
            metric: "connections".into(),
            key: Some(String::new()),
            from: stopped_at - chrono::Duration::hours(1),
            to: chrono::Utc::now() + chrono::Duration::minutes(1),
            resolution: None,
        })
        .unwrap();
    assert!(
        rows.iter().any(|r| r.at < stopped_at),
        "points from the first run"
    );
    assert!(
        rows.iter().any(|r| r.at > stopped_at),
        "points from the second run"
    );
    assert!(
        rows.iter().any(|r| r.value >= 20.0),
        "the held connections are in the history"
    );
    let events = store
        .events(
            Some("alpha"),
            stopped_at - chrono::Duration::hours(1),
            chrono::Utc::now(),
            100,
        )
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == pgopt::serve::model::EventKind::AlertFiring),
        "{events:?}"
    );
}

/// The statement the regression test runs in a loop; `events_kind` serves it.
const REGRESSED: &str = "SELECT count(*) FROM events WHERE kind = $1";

/// The number between `before` and `after` in `text`.
fn number_between(text: &str, before: &str, after: &str) -> Option<f64> {
    let rest = &text[text.find(before)? + before.len()..];
    rest[..rest.find(after)?].trim().parse().ok()
}

#[test]
fn dropping_the_index_a_statement_uses_fires_a_query_regression_through_the_daemon_and_rebuilding_it_resolves(
) {
    let cluster = Cluster::start(ClusterOptions {
        settings: vec![
            ("logging_collector".into(), "on".into()),
            ("auto_explain.log_min_duration".into(), "0".into()),
        ],
        ..ClusterOptions::default()
    })
    .expect("an embedded cluster");
    cluster
        .psql(
            "postgres",
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
             CREATE TABLE events (id int, kind int, pad text);
             INSERT INTO events
               SELECT g, g % 1000, repeat('x', 100) FROM generate_series(1, 200000) g;
             CREATE INDEX events_kind ON events (kind);
             ANALYZE events;",
        )
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hooked = Arc::new(Hooked::default());
    let hook_port = {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(hooked.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        port
    };

    // The statement in a loop, as an application would run it, until the end of the test.
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let workload = {
        let dsn = cluster.dsn("postgres");
        let running = running.clone();
        rt.spawn(async move {
            let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut i = 0i32;
            let mut calls = 0u64;
            while running.load(std::sync::atomic::Ordering::Relaxed) {
                client.query(REGRESSED, &[&(i % 1000)]).await.unwrap();
                calls += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            calls
        })
    };
    let queryid: i64 = {
        let mut id = None;
        wait_for(
            "the statement in pg_stat_statements",
            Duration::from_secs(30),
            || {
                id = cluster
                    .psql(
                        "postgres",
                        "SELECT queryid FROM pg_stat_statements \
                         WHERE query = 'SELECT count(*) FROM events WHERE kind = $1'",
                    )
                    .ok()
                    .and_then(|out| out.trim().lines().next().map(str::to_string))
                    .and_then(|l| l.trim().parse().ok());
                id.is_some()
            },
        );
        id.unwrap()
    };

    // The shortest window the configuration takes (1 minute), checked every 15 s.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("pgopt.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"

[intervals]
sample = "2s"
timeout = "1s"

[regressions]
factor = 2.0
min_calls = 20
window = "1m"

[[target]]
name = "db"
dsn = "{dsn}"

[[notify.webhook]]
url = "http://127.0.0.1:{hook_port}/hook"
timeout = "2s"
retries = 2
"#,
            data = data.display(),
            dsn = cluster.dsn("postgres"),
        ),
    )
    .unwrap();
    let started = Instant::now();
    let daemon = start_daemon(&config);
    wait_for("/readyz", Duration::from_secs(60), || {
        get(port, "/readyz").is_some_and(|(code, _)| code == 200)
    });
    let key = queryid.to_string();
    let regressions = |status: &str| {
        hooked
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|v| {
                v["rule"] == "query_regression"
                    && v["key"].as_str() == Some(key.as_str())
                    && v["status"] == status
            })
            .cloned()
            .collect::<Vec<_>>()
    };

    // A baseline: two windows with calls before the last one, plus some slack.
    let baseline_from = Instant::now();
    while baseline_from.elapsed() < Duration::from_secs(140) {
        std::thread::sleep(Duration::from_secs(1));
    }
    // None at all: not this statement, and not the daemon's own sub-millisecond reads.
    let any_regression = || {
        hooked
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["rule"] == "query_regression")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        any_regression().is_empty(),
        "no regression while the index is there: {:?}",
        hooked.0.lock().unwrap()
    );

    // The index goes: the statement reads the whole table; the daemon says so.
    cluster.psql("postgres", "DROP INDEX events_kind").unwrap();
    let dropped = Instant::now();
    let within = Duration::from_secs(240);
    while regressions("firing").is_empty() {
        assert!(
            dropped.elapsed() < within,
            "no query_regression webhook within {within:?} of the drop; received: {:?}; the \
             alerts page: {:?}",
            hooked.0.lock().unwrap(),
            get(port, "/alerts")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let fired_after = dropped.elapsed();
    let firing = regressions("firing");
    let alert = &firing[0];
    assert_eq!(alert["target"], "db");
    let message = alert["message"].as_str().unwrap();
    assert!(message.contains(&queryid.to_string()), "{message}");
    assert!(
        message.contains(REGRESSED),
        "the statement's text: {message}"
    );
    let after = number_between(message, "slower: ", " ms per call").expect(message);
    let before = number_between(message, "against ", " ms (").expect(message);
    assert!(before > 0.0 && after >= 2.0 * before, "{message}");
    assert!(alert["value"].as_f64().unwrap() >= 2.0, "{alert}");
    assert_eq!(alert["threshold"].as_f64(), Some(2.0), "{alert}");
    // The plan to look at: auto_explain's entry, a sequential scan now.
    assert!(
        message.contains("The plan auto_explain logged:"),
        "{message}"
    );
    assert!(message.contains("Seq Scan on events"), "{message}");

    // Firing on /metrics and on the alerts page.
    let (code, metrics) = get(port, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        series(&metrics, "pgopt_alerts_firing", "db").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    let (code, page) = get(port, "/alerts").unwrap();
    assert_eq!(code, 200);
    let now_row = "<tr><td class=\"firing\">firing</td><td>query_regression</td>";
    assert!(page.contains(now_row), "{page}");
    assert!(
        page.contains(&format!("/targets/db/statements/{queryid}")),
        "{page}"
    );

    // The index is back: the statement is fast again and the regression resolves.
    cluster
        .psql("postgres", "CREATE INDEX events_kind ON events (kind)")
        .unwrap();
    let rebuilt = Instant::now();
    wait_for(
        "the resolved query_regression webhook",
        Duration::from_secs(240),
        || !regressions("resolved").is_empty(),
    );
    let resolved_after = rebuilt.elapsed();
    let resolved = regressions("resolved");
    assert_eq!(
        (regressions("firing").len(), resolved.len()),
        (1, 1),
        "{:?}",
        hooked.0.lock().unwrap()
    );
    assert_eq!(resolved[0]["started_at"], alert["started_at"]);
    assert_eq!(
        any_regression().len(),
        2,
        "this statement's firing and resolved, nothing else: {:?}",
        any_regression()
    );
    let (_, page) = get(port, "/alerts").unwrap();
    assert!(!page.contains(now_row), "{page}");

    running.store(false, std::sync::atomic::Ordering::Relaxed);
    let calls = rt.block_on(workload).unwrap();
    let (status, _, log) = terminate(daemon);
    assert!(status.success(), "exit {status:?}: {log}");
    eprintln!(
        "{calls} calls; fired {fired_after:?} after the drop, resolved {resolved_after:?} \
         after the rebuild; {:?} from the daemon's start",
        started.elapsed()
    );
}
