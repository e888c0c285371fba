//! `pgopt serve` through the binary, with every part plugged in: a fleet of two real
//! clusters and one target nothing answers; readiness, `/metrics` and the fleet page; an
//! alert that fires and resolves with a webhook receiving exactly one of each; SIGTERM →
//! exit 0; a restart on the same data directory keeps the history.

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
