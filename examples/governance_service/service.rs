//! The governance service's routes: the ACGS operations on the governance database, each
//! one named operation on a [`PgPool`] ([`PgPool::op`]) so that `/metrics` shows its
//! latency, count and errors by SQLSTATE.
//!
//! Every value reaches SQL as a bind parameter; every input is checked first, and a bad
//! one gets a 4xx with a JSON body `{"error": "..."}` saying what is wrong. Database
//! failures answer 503 (unavailable: retry) or 500, with the detail in the service's log,
//! not in the answer.
//!
//! The tables are the `governance` schema that `pgopt governance deploy` creates and
//! `pgopt governance seed` fills.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use pgopt_pool::{PgPool, Retry};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_postgres::Row;

/// The event types and severities the schema accepts (its CHECK constraints).
const EVENT_TYPES: &[&str] = &[
    "login",
    "logout",
    "login_failed",
    "password_change",
    "mfa_challenge",
    "mfa_failure",
    "permission_denied",
    "token_refresh",
    "session_expired",
];
const SEVERITIES: &[&str] = &["low", "medium", "high", "critical"];
const RESOURCE_TYPES: &[&str] = &[
    "policy_rule",
    "workflow",
    "user",
    "principle",
    "compliance_check",
];
const ACTIONS: &[&str] = &["create", "read", "update", "delete", "approve", "reject"];

/// Most events one request returns.
const MAX_EVENTS: i64 = 1000;

const AUTHENTICATE_BY_EMAIL: &str = "SELECT id, username, role, last_login_at \
     FROM governance.users WHERE email = $1 AND is_active";
const LOGIN_BY_USERNAME: &str = "UPDATE governance.users SET last_login_at = now() \
     WHERE username = $1 AND is_active RETURNING id, email, role, last_login_at";
const RECORD_SECURITY_EVENT: &str = "INSERT INTO governance.security_events \
     (user_id, event_type, severity, source_ip, details) VALUES ($1, $2, $3, $4, $5) \
     RETURNING id, occurred_at";
const USER_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM governance.users WHERE id = $1)";
const USER_SECURITY_EVENTS: &str =
    "SELECT id, event_type, severity, source_ip, occurred_at, details \
     FROM governance.security_events \
     WHERE user_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
     ORDER BY occurred_at DESC, id DESC LIMIT $4";
const RESOURCE_AUDIT_TRAIL: &str = "SELECT id, actor_id, action, occurred_at, payload \
     FROM governance.audit_logs \
     WHERE resource_type = $1 AND resource_id = $2 AND ($3::text IS NULL OR action = $3) \
     ORDER BY occurred_at DESC, id DESC LIMIT 50";
const ACTIVE_POLICY_RULE: &str = "SELECT id, name, version, enforcement, principle_id, rule_body \
     FROM governance.policy_rules WHERE name = $1 AND is_active \
     ORDER BY version DESC LIMIT 1";

/// What every handler shares: the pool (with its timers) and the registry `/metrics` encodes.
pub struct Service {
    pool: PgPool,
    registry: Registry,
}

/// The service's routes over `pool`; its timers are registered for `/metrics` (names
/// prefixed `pgopt_`).
pub fn router(pool: PgPool) -> Router {
    let mut registry = Registry::with_prefix("pgopt");
    Arc::clone(pool.timers()).register(&mut registry);
    let service = Arc::new(Service { pool, registry });
    Router::new()
        .route("/auth/email", post(authenticate_by_email))
        .route("/auth/login", post(login_by_username))
        .route("/security-events", post(record_security_event))
        .route("/users/{id}/security-events", get(user_security_events))
        .route(
            "/audit/{resource_type}/{resource_id}",
            get(resource_audit_trail),
        )
        .route("/policy-rules/{name}", get(active_policy_rule))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(service)
}

type App = State<Arc<Service>>;

/// A failed request: its status and the message the client reads.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the request is wrong; the message says how.
    BadInput(String),
    /// 404: nothing matches.
    NotFound(String),
    /// 503: the database did not answer in time; retry later.
    Unavailable,
    /// 500: anything else (the detail is in the service's log).
    Internal,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadInput(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; retry in a moment".to_string(),
            ),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error; the service's log has the detail".to_string(),
            ),
        };
        json_response(status, &json!({ "error": message }))
    }
}

impl From<pgopt_pool::Error> for ApiError {
    fn from(e: pgopt_pool::Error) -> Self {
        tracing::error!("database error: {e}");
        if matches!(e, pgopt_pool::Error::Timeout { .. })
            || pgopt_pool::failover::failover_error(&e)
        {
            ApiError::Unavailable
        } else {
            ApiError::Internal
        }
    }
}

type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

/// The request's JSON body as a `T`, or a 400 saying what is wrong with it.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadInput(format!("the request body is not the JSON expected: {e}")))
}

fn one_of(what: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::BadInput(format!(
            "{what} must be one of {}",
            allowed.join(", ")
        )))
    }
}

/// A plausible e-mail address: one `@`, a name before it, a dotted domain after it, no
/// spaces or control characters, at most 254 characters.
fn check_email(email: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::BadInput(
            "malformed e-mail address: expected name@domain.example (at most 254 characters)"
                .into(),
        )
    };
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    match email.split_once('@') {
        Some((name, domain))
            if !name.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// A user name as the schema allows it: 3 to 64 characters, no control characters.
fn check_username(username: &str) -> Result<(), ApiError> {
    let n = username.chars().count();
    if !(3..=64).contains(&n) || username.chars().any(char::is_control) {
        return Err(ApiError::BadInput(
            "a user name has 3 to 64 characters and no control characters".into(),
        ));
    }
    Ok(())
}

fn parse_id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::BadInput(format!("{what} must be a whole number, not {raw:?}")))
}

fn parse_time(what: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::BadInput(format!(
                "{what} must be an RFC 3339 time such as 2025-12-01T00:00:00Z, not {raw:?}"
            ))
        })
}

#[derive(Deserialize)]
struct EmailRequest {
    email: String,
}

/// `POST /auth/email {"email": ...}`: the active user with that e-mail address.
async fn authenticate_by_email(State(app): App, bytes: Bytes) -> ApiResult {
    let EmailRequest { email } = body(&bytes)?;
    check_email(&email)?;
    let row = app
        .pool
        .op("authenticate_by_email")
        .run(Retry::Once, |c| {
            let email = email.clone();
            Box::pin(async move {
                c.query_opt("authenticating by e-mail", AUTHENTICATE_BY_EMAIL, &[&email])
                    .await
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no active user has that e-mail address".into()))?;
    ok(json!({
        "id": row.get::<_, i32>("id"),
        "username": row.get::<_, String>("username"),
        "role": row.get::<_, String>("role"),
        "last_login_at": row.get::<_, Option<DateTime<Utc>>>("last_login_at"),
    }))
}

#[derive(Deserialize)]
struct LoginRequest {
    username: String,
}

/// `POST /auth/login {"username": ...}`: logs the active user in (sets `last_login_at`).
async fn login_by_username(State(app): App, bytes: Bytes) -> ApiResult {
    let LoginRequest { username } = body(&bytes)?;
    check_username(&username)?;
    let row = app
        .pool
        .op("login_by_username")
        // Setting last_login_at to now() twice does no harm: safe to retry.
        .run(Retry::Once, |c| {
            let username = username.clone();
            Box::pin(async move {
                c.query_opt("logging in by user name", LOGIN_BY_USERNAME, &[&username])
                    .await
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no active user has that user name".into()))?;
    ok(json!({
        "id": row.get::<_, i32>("id"),
        "email": row.get::<_, String>("email"),
        "role": row.get::<_, String>("role"),
        "last_login_at": row.get::<_, Option<DateTime<Utc>>>("last_login_at"),
    }))
}

#[derive(Deserialize)]
struct EventRequest {
    user_id: i32,
    event_type: String,
    severity: String,
    source_ip: String,
    #[serde(default)]
    details: Option<Value>,
}

/// `POST /security-events {"user_id", "event_type", "severity", "source_ip", "details"?}`:
/// records one event; answers its id and time (201).
async fn record_security_event(State(app): App, bytes: Bytes) -> ApiResult {
    let req: EventRequest = body(&bytes)?;
    one_of("event_type", &req.event_type, EVENT_TYPES)?;
    one_of("severity", &req.severity, SEVERITIES)?;
    let ip: IpAddr = req.source_ip.parse().map_err(|_| {
        ApiError::BadInput(format!(
            "source_ip must be an IP address, not {:?}",
            req.source_ip
        ))
    })?;
    let details = req.details.unwrap_or_else(|| json!({}));
    if !details.is_object() {
        return Err(ApiError::BadInput("details must be a JSON object".into()));
    }
    let result = app
        .pool
        .op("record_security_event")
        // A write that must not run twice: no retry, the client decides.
        .run(Retry::Never, |c| {
            let (event_type, severity, details) = (
                req.event_type.clone(),
                req.severity.clone(),
                details.clone(),
            );
            let user_id = req.user_id;
            Box::pin(async move {
                c.query_one(
                    "recording a security event",
                    RECORD_SECURITY_EVENT,
                    &[&user_id, &event_type, &severity, &ip, &details],
                )
                .await
            })
        })
        .await;
    let row = match result {
        Ok(row) => row,
        Err(e) if e.sqlstate().map(|c| c.code()) == Some("23503") => {
            return Err(ApiError::NotFound(format!(
                "no user has id {}",
                req.user_id
            )))
        }
        Err(e) => return Err(e.into()),
    };
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "id": row.get::<_, i64>("id"),
            "occurred_at": row.get::<_, DateTime<Utc>>("occurred_at"),
        }),
    ))
}

#[derive(Deserialize)]
struct Window {
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
}

/// `GET /users/{id}/security-events?since=...&until=...&limit=...`: the user's events in
/// [since, until) (until defaults to now), newest first, at most `limit` (100; at most
/// 1000).
async fn user_security_events(
    State(app): App,
    Path(id): Path<String>,
    Query(window): Query<Window>,
) -> ApiResult {
    let user_id: i32 = parse_id("the user id", &id)?;
    let since = parse_time(
        "since",
        window
            .since
            .as_deref()
            .ok_or_else(|| ApiError::BadInput("since is required (an RFC 3339 time)".into()))?,
    )?;
    let until = match window.until.as_deref() {
        Some(raw) => parse_time("until", raw)?,
        None => Utc::now(),
    };
    if since >= until {
        return Err(ApiError::BadInput("since must be before until".into()));
    }
    let limit: i64 = match window.limit.as_deref() {
        Some(raw) => parse_id("limit", raw)?,
        None => 100,
    };
    if !(1..=MAX_EVENTS).contains(&limit) {
        return Err(ApiError::BadInput(format!(
            "limit must be between 1 and {MAX_EVENTS}"
        )));
    }
    let rows: Option<Vec<Row>> = app
        .pool
        .op("user_security_events")
        .run(Retry::Once, |c| {
            Box::pin(async move {
                let exists: bool = c
                    .query_one("looking up the user", USER_EXISTS, &[&user_id])
                    .await?
                    .get(0);
                if !exists {
                    return Ok(None);
                }
                c.query(
                    "reading a user's security events",
                    USER_SECURITY_EVENTS,
                    &[&user_id, &since, &until, &limit],
                )
                .await
                .map(Some)
            })
        })
        .await?;
    let rows = rows.ok_or_else(|| ApiError::NotFound(format!("no user has id {user_id}")))?;
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i64>("id"),
                "event_type": r.get::<_, String>("event_type"),
                "severity": r.get::<_, String>("severity"),
                "source_ip": r.get::<_, IpAddr>("source_ip").to_string(),
                "occurred_at": r.get::<_, DateTime<Utc>>("occurred_at"),
                "details": r.get::<_, Value>("details"),
            })
        })
        .collect();
    ok(json!({ "user_id": user_id, "events": events }))
}

#[derive(Deserialize)]
struct AuditFilter {
    action: Option<String>,
}

/// `GET /audit/{resource_type}/{resource_id}?action=...`: the last 50 audit rows of one
/// resource, newest first, optionally of one action.
async fn resource_audit_trail(
    State(app): App,
    Path((resource_type, resource_id)): Path<(String, String)>,
    Query(filter): Query<AuditFilter>,
) -> ApiResult {
    one_of("the resource type", &resource_type, RESOURCE_TYPES)?;
    let resource_id: i64 = parse_id("the resource id", &resource_id)?;
    if let Some(action) = &filter.action {
        one_of("action", action, ACTIONS)?;
    }
    let rows = app
        .pool
        .op("resource_audit_trail")
        .run(Retry::Once, |c| {
            let (resource_type, action) = (resource_type.clone(), filter.action.clone());
            Box::pin(async move {
                c.query(
                    "reading a resource's audit trail",
                    RESOURCE_AUDIT_TRAIL,
                    &[&resource_type, &resource_id, &action],
                )
                .await
            })
        })
        .await?;
    let entries: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, i64>("id"),
                "actor_id": r.get::<_, i32>("actor_id"),
                "action": r.get::<_, String>("action"),
                "occurred_at": r.get::<_, DateTime<Utc>>("occurred_at"),
                "payload": r.get::<_, Value>("payload"),
            })
        })
        .collect();
    ok(json!({
        "resource_type": resource_type,
        "resource_id": resource_id,
        "entries": entries,
    }))
}

/// `GET /policy-rules/{name}`: the newest active version of the rule.
async fn active_policy_rule(State(app): App, Path(name): Path<String>) -> ApiResult {
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadInput(
            "a rule name has 1 to 200 characters and no control characters".into(),
        ));
    }
    let row = app
        .pool
        .op("policy_rule_by_name")
        .run(Retry::Once, |c| {
            let name = name.clone();
            Box::pin(async move {
                c.query_opt("looking up a policy rule", ACTIVE_POLICY_RULE, &[&name])
                    .await
            })
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no active policy rule has that name".into()))?;
    ok(json!({
        "id": row.get::<_, i32>("id"),
        "name": row.get::<_, String>("name"),
        "version": row.get::<_, i32>("version"),
        "enforcement": row.get::<_, String>("enforcement"),
        "principle_id": row.get::<_, i32>("principle_id"),
        "rule_body": row.get::<_, String>("rule_body"),
    }))
}

/// `GET /metrics`: the operations' timers in the OpenMetrics text format.
async fn metrics(State(app): App) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &app.registry) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::Internal.into_response(),
    }
}

/// `GET /healthz`: 200 when the pool reaches the database (`SELECT 1`), else 503.
async fn healthz(State(app): App) -> ApiResult {
    app.pool
        .run(Retry::Once, |c| {
            Box::pin(async move { c.query_one("health check", "SELECT 1", &[]).await })
        })
        .await
        .map_err(|e| {
            tracing::warn!("health check failed: {e}");
            ApiError::Unavailable
        })?;
    ok(json!({ "status": "ok" }))
}
