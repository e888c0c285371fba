//! `pgopt serve`'s HTTP side: health, security (auth, sessions, CSRF, same-origin, headers,
//! traversal, query strings), TLS, `/metrics`, and a real Prometheus scraping it.
//!
//! Handler tests run the router with `tower::ServiceExt::oneshot`; TLS, binding and
//! Prometheus use a real listener. The fleet is filled by hand: what is tested here is
//! what HTTP makes of it.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use chrono::{DateTime, Utc};
use pgopt::advise::{Finding, Severity};
use pgopt::db::secret::Secret;
use pgopt::serve::clock::ManualClock;
use pgopt::serve::config::{Auth, Config, Intervals, Regressions, TargetConfig, Tls};
use pgopt::serve::http::{self, AppState};
use pgopt::serve::model::{m, Sample, StatementDelta};
use pgopt::serve::state::{AlertState, AlertStatus, Fleet, Health, StoreHealth, TargetView};
use pgopt::serve::store::memory::MemoryStore;
use pgopt::serve::store::Retention;
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789abcdef";
const HOST: &str = "127.0.0.1:8432";
const ORIGIN: &str = "http://127.0.0.1:8432";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn config(auth: Option<&str>, tls: Option<Tls>) -> Config {
    let target = |name: &str, line| TargetConfig {
        name: name.to_string(),
        dsn: Secret::new(format!("host=db-{name} user=watcher password=dsn-s3cret")),
        password_file: None,
        groups: vec![],
        labels: BTreeMap::new(),
        maintenance_apply: false,
        line,
    };
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: PathBuf::from("."),
        store: None,
        auth: auth.map(|t| Auth {
            token: Secret::new(t),
        }),
        tls,
        intervals: Intervals::default(),
        retention: Retention::default(),
        targets: vec![target("alpha", 1), target("beta", 7)],
        alerts: vec![],
        regressions: Regressions::default(),
        webhooks: vec![],
        windows: vec![],
    }
}

fn finding(severity: Severity) -> Finding {
    Finding {
        rule: "unused_index".into(),
        severity,
        object: "public.t".into(),
        message: "m".into(),
        evidence: BTreeMap::new(),
        next_step: "n".into(),
        fix: vec![],
        sql: None,
        docs: None,
    }
}

/// alpha is up with a sample (25 statements), beta is down.
fn fleet() -> Fleet {
    let mut alpha = TargetView::new("alpha", BTreeMap::new());
    alpha.health = Health::Up { since: t0() };
    alpha.last_sample = Some(Sample {
        target: "alpha".into(),
        at: t0(),
        interval_seconds: 10.0,
        values: BTreeMap::from([
            (m::UP.to_string(), 1.0),
            (m::TPS.to_string(), 123.5),
            (m::CONNECTIONS.to_string(), 7.0),
            (m::CACHE_HIT_RATIO.to_string(), 0.995),
        ]),
        keyed: BTreeMap::from([(
            m::CONNECTIONS_BY_STATE.to_string(),
            BTreeMap::from([
                ("active".to_string(), 3.0),
                ("idle in transaction".to_string(), 4.0),
            ]),
        )]),
        statements: (1..=25)
            .map(|i| StatementDelta {
                queryid: i,
                query: format!("select {i}"),
                calls: 10.0,
                total_seconds: i as f64,
                rows: 10.0,
                temp_bytes_written: 0.0,
            })
            .collect(),
        resets: vec![],
    });
    alpha.findings = vec![
        finding(Severity::Warning),
        finding(Severity::Warning),
        finding(Severity::Critical),
    ];
    let mut beta = TargetView::new("beta", BTreeMap::new());
    beta.health = Health::Down {
        since: t0(),
        error: "connection refused".into(),
        attempts: 3,
    };
    let fleet = Fleet::new(vec![alpha, beta]);
    fleet.count_error("beta");
    fleet.count_error("beta");
    *fleet.alerts.write().unwrap() = vec![AlertStatus {
        rule: "cache".into(),
        target: "alpha".into(),
        key: String::new(),
        state: AlertState::Firing,
        since: t0(),
        value: 0.9,
        message: "cache hit ratio low".into(),
    }];
    *fleet.store.write().unwrap() = StoreHealth {
        error: None,
        pending_points: 12,
        last_write: Some(t0() - chrono::Duration::seconds(30)),
    };
    fleet
}

/// The state and the router made of it once (its clones share the sessions, as the
/// daemon's one router does).
struct TestApp {
    state: AppState,
    router: axum::Router,
}

fn app_with(config: Config, clock: Arc<ManualClock>) -> TestApp {
    let state = AppState {
        config: Arc::new(config),
        fleet: Arc::new(fleet()),
        store: Arc::new(MemoryStore::new()),
        clock,
    };
    TestApp {
        router: http::router(state.clone()),
        state,
    }
}

fn app(auth: Option<&str>) -> TestApp {
    app_with(config(auth, None), Arc::new(ManualClock::new(t0())))
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap()
}

fn post_form(uri: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::post(uri)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::from(body.to_string())).unwrap()
}

async fn send(app: &TestApp, req: Request<Body>) -> Response<Body> {
    app.router.clone().oneshot(req).await.unwrap()
}

async fn text(resp: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookies(resp: &Response<Body>) -> Vec<String> {
    resp.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value of cookie `name` among Set-Cookie headers.
fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The value of the hidden `csrf` field of a form.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// A bounded await (every wait in these tests is bounded).
async fn within<T>(what: &str, secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs}s"))
}

#[tokio::test]
async fn healthz_answers_and_readyz_waits_for_every_target_to_be_tried() {
    let app = app(Some(TOKEN));
    assert_eq!(send(&app, get("/healthz")).await.status(), StatusCode::OK);
    assert_eq!(send(&app, get("/readyz")).await.status(), StatusCode::OK);

    app.state
        .fleet
        .targets
        .write()
        .unwrap()
        .push(TargetView::new("gamma", BTreeMap::new()));
    let resp = send(&app, get("/readyz")).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text(resp).await.contains("gamma"));

    app.state.fleet.update("gamma", |v| {
        v.health = Health::Down {
            since: t0(),
            error: "refused".into(),
            attempts: 1,
        }
    });
    assert_eq!(send(&app, get("/readyz")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_path_traversal_are_404() {
    let app = app(None);
    for uri in [
        "/no/such/page",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
        "/static/%2E%2E%2FCargo.toml",
        "/static/..%5cCargo.toml",
        "/static/nothing.js",
        "/../etc/passwd",
    ] {
        let resp = send(&app, get(uri)).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{uri}");
    }
    let css = send(&app, get("/static/login.css")).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
}

#[tokio::test]
async fn huge_query_string_is_414_and_malformed_is_400() {
    let app = app(None);
    let huge = format!("/metrics?x={}", "a".repeat(9 * 1024));
    assert_eq!(
        send(&app, get(&huge)).await.status(),
        StatusCode::URI_TOO_LONG
    );
    for bad in ["/metrics?x=%zz", "/metrics?x=%ff%fe", "/healthz?a=%00"] {
        assert_eq!(
            send(&app, get(bad)).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        send(&app, get("/metrics?range=24h")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_request_body_over_the_bound_is_refused() {
    let app = app(Some(TOKEN));
    let body = format!("password={}&csrf=x", "a".repeat(64 * 1024));
    let resp = send(&app, post_form("/login", &body, Some("pgopt_login_csrf=x"))).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = app(Some(TOKEN));
    for uri in ["/healthz", "/login", "/metrics", "/nowhere", "/static/../x"] {
        let resp = send(&app, get(uri)).await;
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{uri}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{uri}");
        let script = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap();
        assert!(!script.contains("unsafe-inline"), "{uri}: {script}");
        assert_eq!(h["x-frame-options"], "DENY", "{uri}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        assert_eq!(h["referrer-policy"], "same-origin", "{uri}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{uri}");
    }
}

#[tokio::test]
async fn without_credentials_api_gets_401_and_a_browser_is_sent_to_login() {
    let app = app(Some(TOKEN));
    let resp = send(&app, get("/metrics")).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key(header::WWW_AUTHENTICATE));

    let browser = Request::get("/metrics")
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .body(Body::empty())
        .unwrap();
    let resp = send(&app, browser).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/login");

    // Health, readiness and the login form stay open.
    for open in ["/healthz", "/readyz", "/login", "/static/login.css"] {
        assert_eq!(
            send(&app, get(open)).await.status(),
            StatusCode::OK,
            "{open}"
        );
    }
}

fn bearer(uri: &str, token: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn metrics_take_the_bearer_token_and_refuse_a_wrong_one() {
    let app = app(Some(TOKEN));
    assert_eq!(
        send(&app, bearer("/metrics", TOKEN)).await.status(),
        StatusCode::OK
    );
    for wrong in ["test-token-0123456789abcdeX", "test", ""] {
        assert_eq!(
            send(&app, bearer("/metrics", wrong)).await.status(),
            StatusCode::UNAUTHORIZED,
            "{wrong:?}"
        );
    }
    // A forged or stale session cookie is no credential either.
    let forged = Request::get("/metrics")
        .header(header::COOKIE, "pgopt_session=0123")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&app, forged).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_read_from_a_file_with_its_newline_still_matches() {
    let app = app(Some(&format!("{TOKEN}\n")));
    assert_eq!(
        send(&app, bearer("/metrics", TOKEN)).await.status(),
        StatusCode::OK
    );
    log_in(&app).await;
}

/// Logs in through the form; returns the session cookie's value.
async fn log_in(app: &TestApp) -> String {
    let form = send(app, get("/login")).await;
    assert_eq!(form.status(), StatusCode::OK);
    let cookies = set_cookies(&form);
    let login_csrf = cookie_value(&cookies, "pgopt_login_csrf").unwrap();
    let html = text(form).await;
    assert_eq!(csrf_field(&html), login_csrf);
    let resp = send(
        app,
        post_form(
            "/login",
            &format!("password={TOKEN}&csrf={login_csrf}"),
            Some(&format!("pgopt_login_csrf={login_csrf}")),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/");
    let cookies = set_cookies(&resp);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("pgopt_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(flag), "{session} lacks {flag}");
    }
    assert!(!session.contains("Secure"), "no TLS, no Secure: {session}");
    cookie_value(&cookies, "pgopt_session").unwrap()
}

fn with_cookie(uri: &str, session: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::COOKIE, format!("pgopt_session={session}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn login_sets_a_session_cookie_that_opens_pages_until_logout() {
    let app = app(Some(TOKEN));
    let session = log_in(&app).await;
    assert_eq!(
        send(&app, with_cookie("/metrics", &session)).await.status(),
        StatusCode::OK
    );

    let page = send(&app, with_cookie("/logout", &session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_field(&text(page).await);
    let cookie = format!("pgopt_session={session}");

    // Wrong or missing CSRF token: 403, and the session lives on.
    for body in ["csrf=0000", "csrf=", ""] {
        let resp = send(&app, post_form("/logout", body, Some(&cookie))).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{body:?}");
    }
    assert_eq!(
        send(&app, with_cookie("/metrics", &session)).await.status(),
        StatusCode::OK
    );

    let resp = send(
        &app,
        post_form("/logout", &format!("csrf={csrf}"), Some(&cookie)),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookies(&resp);
    assert!(cleared
        .iter()
        .any(|c| c.starts_with("pgopt_session=;") && c.contains("Max-Age=0")));
    assert_eq!(
        send(&app, with_cookie("/metrics", &session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_expires() {
    let clock = Arc::new(ManualClock::new(t0()));
    let app = app_with(config(Some(TOKEN), None), clock.clone());
    let session = log_in(&app).await;
    clock.advance(chrono::Duration::hours(11));
    assert_eq!(
        send(&app, with_cookie("/metrics", &session)).await.status(),
        StatusCode::OK
    );
    clock.advance(chrono::Duration::hours(2));
    assert_eq!(
        send(&app, with_cookie("/metrics", &session)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn login_without_or_with_a_wrong_csrf_token_is_403_and_a_wrong_password_401() {
    let app = app(Some(TOKEN));
    let cases = [
        (format!("password={TOKEN}"), Some("pgopt_login_csrf=abc")),
        (format!("password={TOKEN}&csrf=abc"), None),
        (
            format!("password={TOKEN}&csrf=abd"),
            Some("pgopt_login_csrf=abc"),
        ),
        (format!("password={TOKEN}&csrf="), Some("pgopt_login_csrf=")),
    ];
    for (body, cookie) in &cases {
        let resp = send(&app, post_form("/login", body, *cookie)).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{body} {cookie:?}");
        assert!(set_cookies(&resp)
            .iter()
            .all(|c| !c.starts_with("pgopt_session=")));
    }
    let resp = send(
        &app,
        post_form(
            "/login",
            "password=wrong&csrf=abc",
            Some("pgopt_login_csrf=abc"),
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookies(&resp)
        .iter()
        .all(|c| !c.starts_with("pgopt_session=")));
}

#[tokio::test]
async fn a_state_change_from_another_origin_or_none_is_403() {
    let app = app(Some(TOKEN));
    let body = format!("password={TOKEN}&csrf=abc");
    let make = |origin: Option<&str>, referer: Option<&str>| {
        let mut r = Request::post("/login")
            .header(header::HOST, HOST)
            .header(header::COOKIE, "pgopt_login_csrf=abc")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        if let Some(rf) = referer {
            r = r.header(header::REFERER, rf);
        }
        r.body(Body::from(body.clone())).unwrap()
    };
    for (origin, referer) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (None, Some("http://evil.example/login")),
        (None, None),
    ] {
        let resp = send(&app, make(origin, referer)).await;
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "{origin:?} {referer:?}"
        );
    }
    // The same request from our own login page passes (Referer only, as some browsers send).
    let resp = send(&app, make(None, Some("http://127.0.0.1:8432/login"))).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn refuses_a_non_loopback_address_without_auth_or_with_a_short_token() {
    let mut cfg = config(None, None);
    cfg.listen = "0.0.0.0:0".parse().unwrap();
    let app = app_with(cfg.clone(), Arc::new(ManualClock::new(t0())));
    let err = http::serve(app.state, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("without auth"), "{err}");
    assert!(
        err.contains("[auth]") && err.contains("token_file"),
        "{err}"
    );

    cfg.auth = Some(Auth {
        token: Secret::new("short"),
    });
    let app = app_with(cfg, Arc::new(ManualClock::new(t0())));
    let err = http::serve(app.state, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("shorter than"), "{err}");
    assert!(
        !err.contains("short\n") && !err.contains("\"short\""),
        "{err}"
    );
}

#[tokio::test]
async fn an_address_in_use_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = config(None, None);
    cfg.listen = taken.local_addr().unwrap();
    let app = app_with(cfg, Arc::new(ManualClock::new(t0())));
    let err = within("serve", 10, http::serve(app.state, async {}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use") && err.contains("--listen"), "{err}");
}

/// A `MakeWriter` into a shared buffer, to read what was logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn refusals_are_logged_without_the_token_or_the_cookie() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = app(Some(TOKEN));
    let near = "test-token-0123456789abcdeZ";
    assert_eq!(
        send(&app, bearer("/metrics", near)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app, bearer("/metrics", TOKEN)).await.status(),
        StatusCode::OK
    );
    let session = log_in(&app).await;
    let wrong = send(
        &app,
        post_form(
            &format!("/login?next={near}"),
            &format!("password={near}&csrf=abc"),
            Some("pgopt_login_csrf=abc"),
        ),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let stale = with_cookie("/metrics", "stale-session-id-42");
    assert_eq!(send(&app, stale).await.status(), StatusCode::UNAUTHORIZED);

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("refused a request with a wrong bearer token"),
        "{logged}"
    );
    assert!(
        logged.contains("refused a login with a wrong token"),
        "{logged}"
    );
    assert!(logged.contains("unknown or expired session"), "{logged}");
    for secret in [
        TOKEN,
        near,
        session.as_str(),
        "stale-session-id-42",
        "dsn-s3cret",
    ] {
        assert!(!logged.contains(secret), "{secret} in the log:\n{logged}");
    }
}

/// Prometheus' rules: `[a-zA-Z_:][a-zA-Z0-9_:]*` for names (we use no colon), labels
/// `[a-zA-Z_][a-zA-Z0-9_]*` not starting with `__`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks every line of an OpenMetrics text; returns the samples as (name, labels, value).
fn parse_openmetrics(body: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    assert!(body.ends_with("# EOF\n"), "no # EOF at the end");
    let mut samples = Vec::new();
    for line in body.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let kind = parts.next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "{line}");
            let name = parts.next().unwrap();
            assert!(valid_name(name) && name.starts_with("pgopt_"), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        assert!(valid_name(name) && name.starts_with("pgopt_"), "{line}");
        let mut map = BTreeMap::new();
        if !labels.is_empty() {
            for pair in labels.split("\",") {
                let (k, v) = pair.split_once("=\"").unwrap();
                assert!(valid_name(k) && !k.starts_with("__"), "{line}");
                map.insert(k.to_string(), v.trim_end_matches('"').to_string());
            }
        }
        samples.push((name.to_string(), map, value));
    }
    samples
}

#[tokio::test]
async fn metrics_are_openmetrics_with_target_labels_and_bounded_statements() {
    let app = app(Some(TOKEN));
    let resp = send(&app, bearer("/metrics", TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let body = text(resp).await;
    assert!(
        !body.contains("dsn-s3cret") && !body.contains("host="),
        "a DSN leaked"
    );
    let samples = parse_openmetrics(&body);
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name
                    && l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    };
    assert_eq!(value("pgopt_up", &[("target", "alpha")]), Some(1.0));
    assert_eq!(value("pgopt_up", &[("target", "beta")]), Some(0.0));
    assert_eq!(
        value("pgopt_transactions_per_second", &[("target", "alpha")]),
        Some(123.5)
    );
    assert_eq!(
        value("pgopt_connections", &[("target", "alpha")]),
        Some(7.0)
    );
    // A down target's last values are not exported as if current.
    assert_eq!(value("pgopt_connections", &[("target", "beta")]), None);
    assert_eq!(
        value(
            "pgopt_connections_by_state",
            &[("target", "alpha"), ("state", "idle in transaction")]
        ),
        Some(4.0)
    );
    // The top 20 statements by time of 25: queryids 6..=25.
    let means: Vec<_> = samples
        .iter()
        .filter(|(n, _, _)| n == "pgopt_statement_mean_seconds")
        .collect();
    assert_eq!(means.len(), 20);
    assert!(means
        .iter()
        .all(|(_, l, _)| l["queryid"].parse::<i64>().unwrap() >= 6));
    assert_eq!(
        value(
            "pgopt_statement_mean_seconds",
            &[("target", "alpha"), ("queryid", "25")]
        ),
        Some(2.5)
    );
    assert_eq!(
        value(
            "pgopt_findings",
            &[("target", "alpha"), ("severity", "warning")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            "pgopt_findings",
            &[("target", "beta"), ("severity", "critical")]
        ),
        Some(0.0)
    );
    assert_eq!(
        value("pgopt_alerts_firing", &[("target", "alpha")]),
        Some(1.0)
    );
    assert_eq!(
        value("pgopt_alerts_firing", &[("target", "beta")]),
        Some(0.0)
    );
    assert_eq!(
        value("pgopt_collection_errors_total", &[("target", "beta")]),
        Some(2.0)
    );
    assert_eq!(value("pgopt_store_up", &[]), Some(1.0));
    assert_eq!(value("pgopt_store_pending_points", &[]), Some(12.0));
    assert_eq!(value("pgopt_store_last_write_age_seconds", &[]), Some(30.0));
    assert!(samples.iter().any(|(n, l, v)| n == "pgopt_build_info"
        && l.get("version").map(String::as_str) == Some(env!("CARGO_PKG_VERSION"))
        && *v == 1.0));
}

/// A self-signed certificate for localhost, written as PEM files; and a client trusting it.
fn self_signed(dir: &std::path::Path) -> (Tls, reqwest::Client) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    (Tls { cert, key }, client(roots))
}

fn client(roots: rustls::RootCertStore) -> reqwest::Client {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Serves `app` on a free loopback port; returns the address and the shutdown trigger.
fn start(
    app: AppState,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<pgopt::Result<()>>,
) {
    let listener = http::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(http::serve_on(app, listener, async move {
        let _ = rx.await;
    }));
    (addr, tx, task)
}

#[tokio::test]
async fn tls_serves_https_with_secure_cookies_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (tls, https) = self_signed(dir.path());
    let app = app_with(
        config(Some(TOKEN), Some(tls)),
        Arc::new(ManualClock::new(t0())),
    );
    let (addr, stop, task) = start(app.state);
    let base = format!("https://localhost:{}", addr.port());

    let resp = within(
        "GET /healthz",
        10,
        https.get(format!("{base}/healthz")).send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = within("GET /login", 10, https.get(format!("{base}/login")).send())
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let resp = within(
        "GET /metrics",
        10,
        https
            .get(format!("{base}/metrics"))
            .bearer_auth(TOKEN)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().ends_with("# EOF\n"));

    // Plain HTTP on the TLS port gets no page.
    let plain = client(rustls::RootCertStore::empty());
    let answer = within(
        "plain GET",
        10,
        plain
            .get(format!("http://127.0.0.1:{}/healthz", addr.port()))
            .send(),
    )
    .await;
    assert!(answer.map(|r| r.status() != 200).unwrap_or(true));

    stop.send(()).unwrap();
    within("shutdown", 15, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_bad_certificate_or_key_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (good, _) = self_signed(dir.path());
    let missing = Tls {
        cert: dir.path().join("nope.pem"),
        key: good.key.clone(),
    };
    let not_a_key = Tls {
        cert: good.cert.clone(),
        key: good.cert.clone(),
    };
    for (tls, expect) in [
        (missing, "cannot read the TLS certificate"),
        (not_a_key, "holds no private key"),
    ] {
        let app = app_with(config(None, Some(tls)), Arc::new(ManualClock::new(t0())));
        let listener = http::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = within(
            "serve_on",
            10,
            http::serve_on(app.state, listener, async {}),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(expect) && err.contains("--tls-"), "{err}");
    }
}

/// Stops Prometheus when the test ends, even on a failed assertion.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `url` until `check` accepts its body, at most `secs` seconds.
async fn poll(
    client: &reqwest::Client,
    url: &str,
    secs: u64,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(resp) = client.get(url).send().await {
            last = resp.text().await.unwrap_or_default();
            if check(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{url}: not as wanted within {secs}s; last answer: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_daemon_with_the_bearer_token() {
    let Some(prometheus) = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        panic!("prometheus is not installed: apt-get install prometheus (.ci/run does)");
    };
    let app = app(Some(TOKEN));
    let (addr, stop, task) = start(app.state);

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: pgopt\n    \
         authorization:\n      type: Bearer\n      credentials: {TOKEN}\n    static_configs:\n      \
         - targets: ['{addr}']\n"
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Child(
        std::process::Command::new(prometheus)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let api = format!("http://127.0.0.1:{port}");
    let http = client(rustls::RootCertStore::empty());
    poll(&http, &format!("{api}/-/ready"), 60, |b| !b.is_empty()).await;
    poll(&http, &format!("{api}/api/v1/targets"), 60, |b| {
        b.contains("\"health\":\"up\"")
    })
    .await;

    let query = |q: &str| format!("{api}/api/v1/query?query={}", q.replace('"', "%22"));
    let up = poll(&http, &query("pgopt_up{target=\"alpha\"}"), 30, |b| {
        b.contains("\"result\":[{")
    })
    .await;
    assert!(up.contains("\"1\"]"), "{up}");
    let down = poll(&http, &query("pgopt_up{target=\"beta\"}"), 30, |b| {
        b.contains("\"result\":[{")
    })
    .await;
    assert!(down.contains("\"0\"]"), "{down}");
    let tps = poll(
        &http,
        &query("pgopt_transactions_per_second{target=\"alpha\"}"),
        30,
        |b| b.contains("\"result\":[{"),
    )
    .await;
    assert!(tps.contains("\"123.5\"]"), "{tps}");
    let conns = poll(
        &http,
        &query("pgopt_connections{target=\"alpha\"}"),
        30,
        |b| b.contains("\"result\":[{"),
    )
    .await;
    assert!(conns.contains("\"7\"]"), "{conns}");

    // SIGTERM, and Prometheus exits by itself.
    let pid = child.0.id() as i32;
    // SAFETY: kill(2) on the pid of the child this test started and still owns.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut child = child;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "prometheus exited with {status}");

    stop.send(()).unwrap();
    within("shutdown", 15, task).await.unwrap().unwrap();
}

/// The HTTP layer reads the fleet and the store only: no database client, no SQL text from
/// a request (PgHero's CVE-2023-22626 was an EXPLAIN of user-typed SQL).
#[test]
fn no_http_module_reaches_a_database() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/serve/http");
    let mut files = vec![dir];
    let mut checked = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "tokio_postgres",
            "crate::db::connect",
            "crate::db::pool",
            "simple_query",
            "batch_execute",
            "rusqlite",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} files checked");
}
