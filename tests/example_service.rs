//! The example service (examples/governance_service) end to end, in process: its router
//! over a real pool on a deployed and seeded governance database. Each endpoint answers the
//! rows the database holds (checked against the same question asked directly), bad input
//! gets a 4xx with a clear message, and /metrics counts the operations.

#[path = "../examples/governance_service/service.rs"]
#[allow(dead_code)]
mod service;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use pgopt::db::{self, Conn};
use pgopt::embedded::{Cluster, ClusterOptions};
use pgopt::governance;
use pgopt_pool::{PgPool, PgPoolOptions};
use serde_json::{json, Value};
use tower::ServiceExt;

mod hermetic;
use hermetic::target;

const HOSTILE: &str = r#"x'; DROP TABLE governance.users; --"#;

struct Env {
    _cluster: Cluster,
    conn: Conn,
    app: Router,
}

async fn seeded() -> Env {
    let cluster = Cluster::start(ClusterOptions::default()).unwrap();
    let t = target(&cluster.dsn("postgres"));
    let conn = db::connect(&t).await.unwrap();
    governance::deploy(&conn, "governance").await.unwrap();
    governance::seed(&conn, "governance", 0.005, 7, &pgopt::progress::NoProgress)
        .await
        .unwrap();
    let pool = PgPool::connect(&t, PgPoolOptions::default()).await.unwrap();
    Env {
        _cluster: cluster,
        conn,
        app: service::router(pool),
    }
}

/// Sends one request; answers the status and the body (JSON when it parses, else a string).
async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"))
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

async fn count_of(conn: &Conn, sql: &str) -> i64 {
    conn.query_one("test", sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_the_rows_the_database_holds() {
    let env = seeded().await;
    let (conn, app) = (&env.conn, &env.app);

    // Authenticate by e-mail and log in by user name: the first active user.
    let user = conn
        .query_one(
            "test",
            "SELECT id, username, email, role FROM governance.users WHERE is_active ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (id, username, email, role): (i32, String, String, String) =
        (user.get(0), user.get(1), user.get(2), user.get(3));
    let (status, v) = call(app, "POST", "/auth/email", Some(json!({ "email": email }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["username"], json!(username));
    assert_eq!(v["role"], json!(role));

    let (status, v) = call(
        app,
        "POST",
        "/auth/login",
        Some(json!({ "username": username })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(id));
    assert_eq!(v["email"], json!(email));
    assert!(v["last_login_at"].is_string(), "{v}");
    let logged_in: bool = conn
        .query_one(
            "test",
            "SELECT last_login_at > now() - interval '1 hour' FROM governance.users WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(logged_in, "the login set last_login_at");

    // A user's security events in a window: the user with the most events, the whole span.
    let busiest: i32 = conn
        .query_one(
            "test",
            "SELECT user_id FROM governance.security_events GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (since, until) = ("2024-12-01T00:00:00Z", "2026-01-02T00:00:00Z");
    let expected: Vec<i64> = conn
        .query(
            "test",
            "SELECT id FROM governance.security_events WHERE user_id = $1 \
             AND occurred_at >= $2::text::timestamptz AND occurred_at < $3::text::timestamptz \
             ORDER BY occurred_at DESC, id DESC LIMIT 1000",
            &[&busiest, &since, &until],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(expected.len() > 1, "the busiest user has events");
    let uri = format!("/users/{busiest}/security-events?since={since}&until={until}&limit=1000");
    let (status, v) = call(app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ids(&v["events"]), expected);

    // Record a security event: it is there, and inside the user's window from now.
    let (status, v) = call(
        app,
        "POST",
        "/security-events",
        Some(json!({
            "user_id": busiest, "event_type": "login_failed", "severity": "high",
            "source_ip": "203.0.113.7", "details": {"reason": "bad password"}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let new_id = v["id"].as_i64().unwrap();
    let stored = conn
        .query_one(
            "test",
            "SELECT user_id, event_type, severity, host(source_ip), details->>'reason' \
             FROM governance.security_events WHERE id = $1",
            &[&new_id],
        )
        .await
        .unwrap();
    assert_eq!(stored.get::<_, i32>(0), busiest);
    assert_eq!(stored.get::<_, String>(1), "login_failed");
    assert_eq!(stored.get::<_, String>(2), "high");
    assert_eq!(stored.get::<_, String>(3), "203.0.113.7");
    assert_eq!(stored.get::<_, String>(4), "bad password");
    let uri = format!("/users/{busiest}/security-events?since=2026-01-02T00:00:00Z&limit=10");
    let (status, v) = call(app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ids(&v["events"]), vec![new_id]);
    assert_eq!(v["events"][0]["source_ip"], json!("203.0.113.7"));

    // The audit trail of the resource with the most audit rows.
    let top = conn
        .query_one(
            "test",
            "SELECT resource_type, resource_id FROM governance.audit_logs \
             GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (rtype, rid): (String, i64) = (top.get(0), top.get(1));
    let expected: Vec<i64> = conn
        .query(
            "test",
            "SELECT id FROM governance.audit_logs WHERE resource_type = $1 AND resource_id = $2 \
             ORDER BY occurred_at DESC, id DESC LIMIT 50",
            &[&rtype, &rid],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (status, v) = call(app, "GET", &format!("/audit/{rtype}/{rid}"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ids(&v["entries"]), expected);
    let action = v["entries"][0]["action"].as_str().unwrap().to_string();
    let (status, v) = call(
        app,
        "GET",
        &format!("/audit/{rtype}/{rid}?action={action}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let entries = v["entries"].as_array().unwrap();
    assert!(
        !entries.is_empty() && entries.iter().all(|e| e["action"] == json!(action)),
        "{v}"
    );

    // An active policy rule by name: the newest active version.
    let rule = conn
        .query_one(
            "test",
            "SELECT id, name, version FROM governance.policy_rules WHERE is_active \
             ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let name: String = rule.get(1);
    let newest: i32 = conn
        .query_one(
            "test",
            "SELECT id FROM governance.policy_rules WHERE name = $1 AND is_active \
             ORDER BY version DESC LIMIT 1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    let (status, v) = call(app, "GET", &format!("/policy-rules/{name}"), None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], json!(newest));
    assert_eq!(v["name"], json!(name));

    let (status, v) = call(app, "GET", "/healthz", None).await;
    assert_eq!((status, v["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_clear_message_and_changes_nothing() {
    let env = seeded().await;
    let (conn, app) = (&env.conn, &env.app);
    let users = count_of(conn, "SELECT count(*) FROM governance.users").await;
    let events = count_of(conn, "SELECT count(*) FROM governance.security_events").await;

    let cases: Vec<(&str, String, Option<Value>, StatusCode, &str)> = vec![
        (
            "POST",
            "/auth/email".into(),
            Some(json!({"email": "nobody@acgs.example"})),
            StatusCode::NOT_FOUND,
            "no active user has that e-mail",
        ),
        (
            "POST",
            "/auth/email".into(),
            Some(json!({"email": "not-an-email"})),
            StatusCode::BAD_REQUEST,
            "malformed e-mail address",
        ),
        (
            "POST",
            "/auth/email".into(),
            Some(json!({"email": format!("{HOSTILE}@x.example")})),
            StatusCode::BAD_REQUEST,
            "malformed e-mail address",
        ),
        (
            "POST",
            "/auth/email".into(),
            Some(json!({"mail": "a@b.example"})),
            StatusCode::BAD_REQUEST,
            "missing field `email`",
        ),
        (
            "POST",
            "/auth/login".into(),
            Some(json!({"username": "nobody-here"})),
            StatusCode::NOT_FOUND,
            "no active user has that user name",
        ),
        (
            "POST",
            "/auth/login".into(),
            Some(json!({"username": HOSTILE})),
            StatusCode::NOT_FOUND,
            "no active user has that user name",
        ),
        (
            "POST",
            "/auth/login".into(),
            Some(json!({"username": "ab"})),
            StatusCode::BAD_REQUEST,
            "3 to 64 characters",
        ),
        (
            "POST",
            "/security-events".into(),
            Some(
                json!({"user_id": 999_999_999, "event_type": "login", "severity": "low",
                     "source_ip": "10.0.0.1"}),
            ),
            StatusCode::NOT_FOUND,
            "no user has id 999999999",
        ),
        (
            "POST",
            "/security-events".into(),
            Some(
                json!({"user_id": 1, "event_type": HOSTILE, "severity": "low",
                     "source_ip": "10.0.0.1"}),
            ),
            StatusCode::BAD_REQUEST,
            "event_type must be one of login, logout",
        ),
        (
            "POST",
            "/security-events".into(),
            Some(
                json!({"user_id": 1, "event_type": "login", "severity": "low",
                     "source_ip": "10.0.0.300"}),
            ),
            StatusCode::BAD_REQUEST,
            "source_ip must be an IP address",
        ),
        (
            "GET",
            "/users/abc/security-events?since=2025-01-01T00:00:00Z".into(),
            None,
            StatusCode::BAD_REQUEST,
            "the user id must be a whole number",
        ),
        (
            "GET",
            "/users/999999/security-events?since=2025-01-01T00:00:00Z".into(),
            None,
            StatusCode::NOT_FOUND,
            "no user has id 999999",
        ),
        (
            "GET",
            "/users/1/security-events".into(),
            None,
            StatusCode::BAD_REQUEST,
            "since is required",
        ),
        (
            "GET",
            "/users/1/security-events?since=yesterday".into(),
            None,
            StatusCode::BAD_REQUEST,
            "since must be an RFC 3339 time",
        ),
        (
            "GET",
            "/users/1/security-events?since=2025-01-01T00:00:00Z&limit=5000".into(),
            None,
            StatusCode::BAD_REQUEST,
            "limit must be between 1 and 1000",
        ),
        (
            "GET",
            "/audit/table/1".into(),
            None,
            StatusCode::BAD_REQUEST,
            "the resource type must be one of",
        ),
        (
            "GET",
            "/audit/user/1?action=drop".into(),
            None,
            StatusCode::BAD_REQUEST,
            "action must be one of",
        ),
        (
            "GET",
            "/policy-rules/x'%3B%20DROP%20TABLE%20governance.users%3B%20--".into(),
            None,
            StatusCode::NOT_FOUND,
            "no active policy rule has that name",
        ),
    ];
    for (method, uri, body, want, message) in cases {
        let (status, v) = call(app, method, &uri, body.clone()).await;
        assert_eq!(status, want, "{method} {uri} {body:?}: {v}");
        assert!(error_of(&v).contains(message), "{method} {uri}: {v}");
    }
    let (status, v) = call(app, "POST", "/auth/email", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(error_of(&v).contains("not the JSON expected"), "{v}");

    // Nothing was dropped or written.
    assert_eq!(
        count_of(conn, "SELECT count(*) FROM governance.users").await,
        users
    );
    assert_eq!(
        count_of(conn, "SELECT count(*) FROM governance.security_events").await,
        events
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_each_operation_that_reached_the_database() {
    let env = seeded().await;
    let app = &env.app;
    for _ in 0..3 {
        let (status, _) = call(
            app,
            "POST",
            "/auth/email",
            Some(json!({"email": "user00001@acgs.example"})),
        )
        .await;
        assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND);
    }
    // Refused before the database: not an operation.
    call(app, "POST", "/auth/email", Some(json!({"email": "bad"}))).await;
    call(
        app,
        "POST",
        "/security-events",
        Some(
            json!({"user_id": 999_999_999, "event_type": "login", "severity": "low",
                     "source_ip": "10.0.0.1"}),
        ),
    )
    .await;
    call(app, "GET", "/policy-rules/no-such-rule", None).await;

    let req = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let series: HashMap<&str, f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(s, v)| (s, v.parse().unwrap()))
        .collect();
    let get = |s: &str| {
        series
            .get(s)
            .copied()
            .unwrap_or_else(|| panic!("no {s} in\n{text}"))
    };
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_count{operation="authenticate_by_email"}"#),
        3.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_count{operation="record_security_event"}"#),
        1.0
    );
    assert_eq!(
        get(
            r#"pgopt_pool_operation_errors_total{operation="record_security_event",sqlstate="23503"}"#
        ),
        1.0
    );
    assert_eq!(
        get(r#"pgopt_pool_operation_duration_seconds_count{operation="policy_rule_by_name"}"#),
        1.0
    );
    assert!(!text.contains("operation=\"healthz\""));
}
