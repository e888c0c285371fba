//! `pgopt serve`'s alerts end to end: transitions from the evaluator delivered to a real
//! local webhook receiver (axum) — exactly once each, retried after a 500, not after a 404,
//! given up on a receiver that hangs without holding the evaluator — and an alert on a real
//! server: connections filled until `connections_used_ratio` fires, released until it
//! resolves, with the webhook receiving one firing and one resolved.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use chrono::{TimeZone, Utc};
use pgopt::db::secret::Secret;
use pgopt::serve::alerts::notify::NotifierOptions;
use pgopt::serve::alerts::{Evaluator, Notifier, Status, Transition};
use pgopt::serve::clock::{Clock, ManualClock};
use pgopt::serve::config::{AlertRule, Webhook};
use pgopt::serve::model::{m, Collected, Sample, Ts};
use serde_json::Value;

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Mode {
    Ok,
    /// 500 for the first n requests, then 200.
    FailFirst(usize),
    /// 404 always.
    NotFound,
    /// Never answers (within the test).
    Hang,
}

struct Receiver {
    mode: Mode,
    hits: AtomicUsize,
    /// The bodies answered with 200.
    accepted: Mutex<Vec<Value>>,
}

async fn hook(State(r): State<Arc<Receiver>>, body: String) -> StatusCode {
    let n = r.hits.fetch_add(1, Ordering::SeqCst);
    match r.mode {
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            StatusCode::OK
        }
        Mode::NotFound => StatusCode::NOT_FOUND,
        Mode::FailFirst(k) if n < k => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Ok | Mode::FailFirst(_) => {
            let v: Value = serde_json::from_str(&body).expect("a JSON body");
            r.accepted.lock().unwrap().push(v);
            StatusCode::OK
        }
    }
}

/// Starts a receiver on a free port; the URL carries userinfo and a token that must never
/// be logged.
async fn receiver(mode: Mode) -> (Arc<Receiver>, String) {
    let r = Arc::new(Receiver {
        mode,
        hits: AtomicUsize::new(0),
        accepted: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (
        r,
        format!("http://alice:pa55word@127.0.0.1:{port}/hook?token=s3cr3t-t0ken"),
    )
}

fn webhook(url: &str, timeout: Duration, retries: u32) -> Webhook {
    Webhook {
        url: Secret::new(url),
        timeout,
        retries,
    }
}

fn fast() -> NotifierOptions {
    NotifierOptions {
        backoff: Duration::from_millis(50),
        ..NotifierOptions::default()
    }
}

/// Log lines written while the guard lives (the tests run on one thread, so the notifier's
/// workers log here too).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn t0() -> Ts {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

fn rule(when: &str) -> AlertRule {
    AlertRule {
        name: "connections".into(),
        when: when.into(),
        severity: "critical".into(),
        groups: vec![],
        line: 0,
    }
}

fn sample(at: Ts, connections: f64, max: f64) -> Collected {
    Collected::Sample(Sample {
        target: "db1".into(),
        at,
        interval_seconds: 10.0,
        values: BTreeMap::from([
            (m::CONNECTIONS.to_string(), connections),
            (m::MAX_CONNECTIONS.to_string(), max),
            (m::CONNECTIONS_USED_RATIO.to_string(), connections / max),
        ]),
        keyed: BTreeMap::new(),
        statements: vec![],
        resets: vec![],
    })
}

/// A firing and a resolved transition, from the evaluator.
fn fire_and_resolve() -> Vec<Transition> {
    let mut ev = Evaluator::new(&[rule("connections_used_ratio > 0.8 for 20s")]).unwrap();
    let clock = ManualClock::new(t0());
    let mut out = Vec::new();
    for used in [10.0, 90.0, 90.0, 95.0, 90.0, 10.0, 10.0, 10.0, 10.0] {
        out.extend(ev.observe(&sample(clock.now(), used, 100.0), clock.now()));
        clock.advance(chrono::Duration::seconds(10));
    }
    assert_eq!(
        out.iter().map(|t| t.status).collect::<Vec<_>>(),
        vec![Status::Firing, Status::Resolved]
    );
    out
}

#[tokio::test]
async fn a_webhook_receives_one_firing_and_one_resolved_even_when_each_is_sent_twice() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let (r, url) = receiver(Mode::Ok).await;
    let notifier =
        Notifier::with_options(&[webhook(&url, Duration::from_secs(5), 2)], fast()).unwrap();
    let transitions = fire_and_resolve();
    for t in transitions.iter().chain(transitions.iter()) {
        notifier.send(t).await;
    }
    assert!(notifier.flush(Duration::from_secs(30)).await);
    let got = r.accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(r.hits.load(Ordering::SeqCst), 2);
    let (firing, resolved) = (&got[0], &got[1]);
    assert_eq!(firing["status"], "firing");
    assert_eq!(resolved["status"], "resolved");
    for body in &got {
        for field in [
            "id",
            "status",
            "rule",
            "severity",
            "target",
            "key",
            "value",
            "threshold",
            "message",
            "started_at",
            "resolved_at",
        ] {
            assert!(body.get(field).is_some(), "{field} missing in {body}");
        }
        assert_eq!(body["rule"], "connections");
        assert_eq!(body["target"], "db1");
        assert_eq!(body["threshold"], 0.8);
    }
    assert_eq!(firing["value"], 0.95);
    assert_eq!(firing["resolved_at"], Value::Null);
    assert!(resolved["resolved_at"].is_string());
    assert_eq!(firing["started_at"], resolved["started_at"]);
    assert_ne!(firing["id"], resolved["id"]);
    let stats = notifier.stats();
    assert_eq!((stats.delivered, stats.duplicates, stats.failed), (2, 2, 0));
    let text = logs.text();
    assert!(
        text.contains("connections_used_ratio of db1 is 0.95, above 0.8 for 20s"),
        "{text}"
    );
    assert!(
        !text.contains("s3cr3t") && !text.contains("pa55word"),
        "{text}"
    );
}

#[tokio::test]
async fn a_receiver_answering_500_then_200_gets_the_notification_once_after_a_retry() {
    let (r, url) = receiver(Mode::FailFirst(1)).await;
    let notifier =
        Notifier::with_options(&[webhook(&url, Duration::from_secs(5), 3)], fast()).unwrap();
    let firing = fire_and_resolve().remove(0);
    notifier.send(&firing).await;
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(r.hits.load(Ordering::SeqCst), 2);
    assert_eq!(r.accepted.lock().unwrap().len(), 1);
    let stats = notifier.stats();
    assert_eq!((stats.attempts, stats.delivered, stats.failed), (2, 1, 0));
}

#[tokio::test]
async fn a_receiver_answering_404_is_not_retried() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let (r, url) = receiver(Mode::NotFound).await;
    let notifier =
        Notifier::with_options(&[webhook(&url, Duration::from_secs(5), 3)], fast()).unwrap();
    notifier.send(&fire_and_resolve().remove(0)).await;
    assert!(notifier.flush(Duration::from_secs(30)).await);
    assert_eq!(r.hits.load(Ordering::SeqCst), 1);
    let stats = notifier.stats();
    assert_eq!((stats.attempts, stats.delivered, stats.failed), (1, 0, 1));
    let text = logs.text();
    assert!(text.contains("HTTP 404 Not Found; not retried"), "{text}");
    assert!(
        !text.contains("s3cr3t") && !text.contains("pa55word"),
        "{text}"
    );
}

#[tokio::test]
async fn a_hanging_receiver_is_given_up_after_its_retries_and_never_holds_the_evaluator() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let (r, url) = receiver(Mode::Hang).await;
    let timeout = Duration::from_millis(400);
    let notifier = Notifier::with_options(&[webhook(&url, timeout, 2)], fast()).unwrap();
    let mut ev = Evaluator::new(&[rule("connections_used_ratio > 0.8")]).unwrap();
    let clock = ManualClock::new(t0());
    let mut sent = 0;
    // The evaluator goes on while the receiver hangs: each send returns without waiting.
    for used in [90.0, 90.0, 10.0, 10.0] {
        for t in ev.observe(&sample(clock.now(), used, 100.0), clock.now()) {
            tokio::time::timeout(Duration::from_secs(5), notifier.send(&t))
                .await
                .expect("send returns while the receiver hangs");
            sent += 1;
        }
        clock.advance(chrono::Duration::seconds(10));
    }
    assert_eq!(sent, 2);
    // Two deliveries, each 3 tries of at most 400 ms plus backoff: bounded well within this.
    assert!(
        notifier.flush(Duration::from_secs(60)).await,
        "given up in time"
    );
    let stats = notifier.stats();
    assert_eq!((stats.attempts, stats.delivered, stats.failed), (6, 0, 2));
    assert_eq!(r.hits.load(Ordering::SeqCst), 6);
    let text = logs.text();
    assert!(text.contains("given up after 3 attempts"), "{text}");
    assert!(text.contains("http://127.0.0.1:"), "{text}");
    assert!(
        !text.contains("s3cr3t") && !text.contains("pa55word"),
        "{text}"
    );
}

/// A sample of the real server as the collector would make it: client backends over
/// max_connections less the superuser's reserve.
async fn server_sample(conn: &pgopt::db::Conn, at: Ts) -> Collected {
    let row = conn
        .query_one(
            "connections",
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::float8, \
                    current_setting('max_connections')::float8 \
                    - current_setting('superuser_reserved_connections')::float8",
            &[],
        )
        .await
        .unwrap();
    let (used, max): (f64, f64) = (row.get(0), row.get(1));
    sample(at, used, max)
}

async fn client_backends(conn: &pgopt::db::Conn) -> i64 {
    conn.query_one(
        "count",
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test]
async fn filling_connections_on_a_real_server_fires_and_releasing_them_resolves_once_each() {
    use pgopt::embedded::{local_target, Cluster, ClusterOptions};
    let c = Cluster::start(ClusterOptions::default()).expect("an embedded cluster");
    let target = local_target(c.port(), "postgres").unwrap();
    let watch = pgopt::db::connect(&target).await.unwrap();
    let (r, url) = receiver(Mode::Ok).await;
    let notifier =
        Notifier::with_options(&[webhook(&url, Duration::from_secs(5), 2)], fast()).unwrap();
    let mut ev = Evaluator::new(&[rule("connections_used_ratio > 0.15 for 20s")]).unwrap();
    let clock = ManualClock::new(t0());
    let mut transitions = Vec::new();
    let mut observe = async |ev: &mut Evaluator, n: usize| {
        for _ in 0..n {
            let s = server_sample(&watch, clock.now()).await;
            for t in ev.observe(&s, clock.now()) {
                notifier.send(&t).await;
                transitions.push(t);
            }
            clock.advance(chrono::Duration::seconds(10));
        }
    };
    observe(&mut ev, 2).await;
    assert!(ev.statuses().is_empty());

    // 40 more connections of 197: a ratio above 0.2.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(pgopt::db::connect(&target).await.unwrap());
    }
    observe(&mut ev, 4).await;
    drop(held);
    // Backends leave a moment after their clients hang up.
    for _ in 0..200 {
        if client_backends(&watch).await <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    observe(&mut ev, 5).await;
    assert!(notifier.flush(Duration::from_secs(30)).await);

    let statuses: Vec<Status> = transitions.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        vec![Status::Firing, Status::Resolved],
        "{transitions:#?}"
    );
    assert!(transitions[0].value > 0.15, "{:?}", transitions[0]);
    assert!(transitions[1].value < 0.15, "{:?}", transitions[1]);
    let got = r.accepted.lock().unwrap().clone();
    let got: Vec<&str> = got.iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(got, vec!["firing", "resolved"]);
}

/// pg_stat_statements' counters of the one statement whose text starts with `prefix`:
/// (queryid, text, calls, total seconds).
async fn statement(conn: &pgopt::db::Conn, prefix: &str) -> (i64, String, f64, f64) {
    let row = conn
        .query_one(
            "statement",
            "SELECT queryid, query, calls::float8, total_exec_time / 1000 \
               FROM pg_stat_statements WHERE starts_with(query, $1)",
            &[&prefix],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2), row.get(3))
}

const QUERY: &str = "SELECT count(*) FROM events WHERE kind = $1";

/// Runs QUERY `n` times and returns its delta as the collector would: a sample of
/// `interval` seconds ending at `at`.
async fn run_and_sample(conn: &pgopt::db::Conn, n: i32, at: Ts, interval: f64) -> Sample {
    let (_, _, calls0, total0) = statement(conn, "SELECT count(*) FROM events").await;
    for i in 0..n {
        conn.query("query", QUERY, &[&(i % 1000)]).await.unwrap();
    }
    let (queryid, text, calls1, total1) = statement(conn, "SELECT count(*) FROM events").await;
    Sample {
        target: "db1".into(),
        at,
        interval_seconds: interval,
        values: BTreeMap::new(),
        keyed: BTreeMap::new(),
        statements: vec![pgopt::serve::model::StatementDelta {
            queryid,
            query: text,
            calls: calls1 - calls0,
            total_seconds: total1 - total0,
            rows: calls1 - calls0,
            temp_bytes_written: 0.0,
        }],
        resets: vec![],
    }
}

#[tokio::test]
async fn dropping_the_index_a_statement_uses_fires_a_regression_with_its_plan_and_rebuilding_it_resolves(
) {
    use pgopt::embedded::{local_target, Cluster, ClusterOptions};
    use pgopt::serve::alerts::plan::{latest_plan, PlanLookup};
    use pgopt::serve::alerts::{regress, Baseline};
    use pgopt::serve::config::Regressions;
    use pgopt::serve::store::{memory::MemoryStore, Store};

    let c = Cluster::start(ClusterOptions {
        settings: vec![
            ("logging_collector".into(), "on".into()),
            ("auto_explain.log_min_duration".into(), "0".into()),
        ],
        ..ClusterOptions::default()
    })
    .expect("an embedded cluster");
    c.psql(
        "postgres",
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
         CREATE TABLE events (id int, kind int, pad text);
         INSERT INTO events SELECT g, g % 1000, repeat('x', 100) FROM generate_series(1, 200000) g;
         CREATE INDEX events_kind ON events (kind);
         ANALYZE events;",
    )
    .unwrap();
    let conn = pgopt::db::connect(&local_target(c.port(), "postgres").unwrap())
        .await
        .unwrap();
    conn.query("warm up", QUERY, &[&1i32]).await.unwrap();

    // Six hours of history at the indexed speed: measured once, stored every 5 minutes.
    let store = MemoryStore::new();
    let now = t0();
    let indexed = run_and_sample(&conn, 100, now, 300.0).await;
    let queryid = indexed.statements[0].queryid;
    store
        .put_statements("db1", &[(queryid, indexed.statements[0].query.clone())])
        .unwrap();
    let mut at = now - chrono::Duration::hours(6);
    while at <= now - chrono::Duration::minutes(15) {
        let mut s = indexed.clone();
        s.at = at;
        store.write(&s.points()).unwrap();
        at += chrono::Duration::minutes(5);
    }
    let cfg = Regressions {
        factor: 2.0,
        min_calls: 50,
        min_increase: Duration::from_millis(1),
        window: Duration::from_secs(15 * 60),
    };
    assert!(regress::detect(&store, "db1", now, &cfg)
        .unwrap()
        .is_empty());

    // The index is dropped: three real samples of the last window.
    c.psql("postgres", "DROP INDEX events_kind").unwrap();
    for minutes in [10, 5, 0] {
        let s = run_and_sample(&conn, 40, now - chrono::Duration::minutes(minutes), 300.0).await;
        store.write(&s.points()).unwrap();
    }
    let (found, judged) = regress::judge(&store, "db1", now, &cfg).unwrap();
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(judged.contains(&queryid), "{judged:?}");
    let r = &found[0];
    assert_eq!(r.queryid, queryid);
    assert_eq!(r.baseline, Baseline::PrecedingHours { hours: 6 });
    assert!(r.ratio >= 2.0 && r.after > r.before, "{r:?}");
    assert!((r.calls - 120.0).abs() < 1e-6, "{r:?}");
    assert_eq!(r.text.as_deref(), Some(QUERY));

    let mut ev = Evaluator::new(&[]).unwrap();
    let fired = ev.regressions("db1", &found, &judged, now);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].status, Status::Firing);
    assert_eq!(fired[0].key, queryid.to_string());
    assert!(fired[0].message.contains(QUERY), "{}", fired[0].message);
    assert!(
        ev.regressions("db1", &found, &judged, now).is_empty(),
        "fires once"
    );
    // Not found in a window where the statement was too seldom called to be judged: it
    // stays firing (nothing says it is back).
    assert!(
        ev.regressions("db1", &[], &Default::default(), now)
            .is_empty(),
        "an unjudged statement keeps its state"
    );

    // A plan to look at: auto_explain's entry for it in the server log.
    let mut plan = None;
    for _ in 0..100 {
        match latest_plan(&conn, QUERY).await.unwrap() {
            PlanLookup::Found(p) => {
                plan = Some(p);
                break;
            }
            PlanLookup::NotFound(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let plan = plan.expect("auto_explain's plan in the log");
    assert!(plan.contains("Seq Scan on events"), "{plan}");

    // The index is back and the statement with it: the regression resolves.
    c.psql("postgres", "CREATE INDEX events_kind ON events (kind)")
        .unwrap();
    let later = now + chrono::Duration::minutes(30);
    for minutes in [10, 5, 0] {
        let s = run_and_sample(&conn, 40, later - chrono::Duration::minutes(minutes), 300.0).await;
        store.write(&s.points()).unwrap();
    }
    let (found, judged) = regress::judge(&store, "db1", later, &cfg).unwrap();
    assert!(found.is_empty(), "{found:#?}");
    assert!(
        judged.contains(&queryid),
        "judged and near its baseline: {judged:?}"
    );
    let resolved = ev.regressions("db1", &found, &judged, later);
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, Status::Resolved);
    assert_eq!(resolved[0].started_at, fired[0].started_at);
}

#[tokio::test]
async fn without_logging_collector_the_plan_look_up_says_why_there_is_none() {
    use pgopt::embedded::{local_target, Cluster, ClusterOptions};
    use pgopt::serve::alerts::plan::{latest_plan, PlanLookup};
    let c = Cluster::start(ClusterOptions::default()).expect("an embedded cluster");
    let conn = pgopt::db::connect(&local_target(c.port(), "postgres").unwrap())
        .await
        .unwrap();
    match latest_plan(&conn, "SELECT 1").await.unwrap() {
        PlanLookup::NotFound(why) => assert!(why.contains("logging_collector"), "{why}"),
        other => panic!("{other:?}"),
    }
}
