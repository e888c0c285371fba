//! The daemon's HTTP side (axum): the pages, `/metrics`, `/healthz`, `/readyz`, login.
//! Reads only: no endpoint changes a server or runs SQL from a request.
//!
//! ```text
//! request -> security headers (every response) -> guard: path traversal 404, query
//!   string bounded (414) and well-formed (400), same-origin for unsafe methods (403)
//!   -> route: /healthz /readyz /login /static/*        open
//!             /metrics /logout + the pages              behind auth::require_auth
//!             anything else                             404
//! ```

pub mod auth;
pub mod metrics;
pub mod pages;
pub mod tls;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

use super::clock::Clock;
use super::config::Config;
use super::state::{Fleet, Health};
use super::store::Store;
use crate::error::{Error, Result};

/// What every handler reads.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub fleet: Arc<Fleet>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
}

/// The longest query string served (longer: 414).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The largest request body read (the login and logout forms are tiny).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long open connections may finish their requests after shutdown is asked.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The Content-Security-Policy of every response: scripts and styles from this server
/// only (no inline script), no framing, forms post only here.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The state of the HTTP layer's own handlers: the app, the sessions, the metrics registry.
#[derive(Clone)]
pub struct Web {
    pub app: AppState,
    pub sessions: Arc<auth::Sessions>,
    pub metrics: Arc<Registry>,
    /// Served over TLS (cookies get `Secure`, the same-origin check wants https).
    pub tls: bool,
}

/// Files under `/static/`, embedded in the binary: (name, content type, body).
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "login.css",
        "text/css; charset=utf-8",
        include_str!("static/login.css"),
    ),
    (
        "pgopt.js",
        "text/javascript; charset=utf-8",
        pages::assets::SCRIPT,
    ),
    ("pgopt.css", "text/css; charset=utf-8", pages::assets::STYLE),
];

/// Every route of the daemon.
pub fn router(app: AppState) -> Router {
    let web = Web {
        tls: app.config.tls.is_some(),
        sessions: Arc::new(auth::Sessions::default()),
        metrics: Arc::new(metrics::registry(app.clone())),
        app: app.clone(),
    };
    let protected = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/logout", get(auth::logout_page).post(auth::logout))
        .with_state(web.clone())
        .merge(pages::router().with_state(app))
        .route_layer(middleware::from_fn_with_state(
            web.clone(),
            auth::require_auth,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/static/{*file}", get(static_file))
        .with_state(web.clone())
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(web, guard))
        .layer(middleware::from_fn(security_headers))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found\n").into_response()
}

/// `/healthz`: the process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `/readyz`: the store is open (the state holds it) and every target was tried once.
async fn readyz(State(web): State<Web>) -> Response {
    let waiting: Vec<String> = web
        .app
        .fleet
        .views()
        .into_iter()
        .filter(|v| v.health == Health::Unknown)
        .map(|v| v.name)
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: not collected from yet: {}\n",
                waiting.join(", ")
            ),
        )
            .into_response()
    }
}

async fn metrics_handler(State(web): State<Web>) -> Response {
    match metrics::encode(&web.metrics) {
        Ok(text) => ([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "could not encode the metrics\n",
        )
            .into_response(),
    }
}

/// Only the embedded files, by exact name: nothing else of the disk can be reached.
async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (CONTENT_TYPE, *content_type),
                (CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => not_found().await,
    }
}

/// Decodes `%XX` escapes; `None` for a `%` not followed by two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Whether a path tries to leave its directory: a `.` or `..` segment, or a separator
/// or NUL hidden in an escape (`%2e%2e`, `%2f`, `%5c`, `%00`).
pub fn is_traversal(path: &str) -> bool {
    path.split('/').any(|seg| match percent_decode(seg) {
        None => true,
        Some(d) => d == b"." || d == b".." || d.iter().any(|c| matches!(c, b'/' | b'\\' | 0)),
    })
}

/// Why a query string is refused: too long (414) or malformed (400: a broken escape,
/// not UTF-8 once decoded, or a control character).
pub fn check_query(query: &str) -> std::result::Result<(), (StatusCode, &'static str)> {
    if query.len() > MAX_QUERY_BYTES {
        return Err((StatusCode::URI_TOO_LONG, "query string too long\n"));
    }
    for pair in query.split('&') {
        let decoded = percent_decode(&pair.replace('+', " ")).ok_or((
            StatusCode::BAD_REQUEST,
            "malformed query string: a bad %-escape\n",
        ))?;
        let text = String::from_utf8(decoded).map_err(|_| {
            (
                StatusCode::BAD_REQUEST,
                "malformed query string: not UTF-8\n",
            )
        })?;
        if text.chars().any(char::is_control) {
            return Err((
                StatusCode::BAD_REQUEST,
                "malformed query string: a control character\n",
            ));
        }
    }
    Ok(())
}

/// Refuses what no route should see: traversal, oversized or malformed query strings,
/// cross-origin state changes.
async fn guard(State(web): State<Web>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if is_traversal(&path) {
        tracing::warn!(path, "refused a path that leaves its directory (404)");
        return not_found().await;
    }
    if let Some(query) = req.uri().query() {
        if let Err((status, why)) = check_query(query) {
            tracing::warn!(path, status = status.as_u16(), "refused a query string");
            return (status, why).into_response();
        }
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && !auth::same_origin(req.headers(), web.tls) {
        tracing::warn!(
            method = %req.method(),
            path,
            "refused a state-changing request without a same-origin Origin or Referer (403)"
        );
        return (
            StatusCode::FORBIDDEN,
            "forbidden: cross-origin request (Origin or Referer is missing or not this server)\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// The security headers, on every response (errors and 404 included).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // `same-origin`, not `no-referrer`: under `no-referrer` a browser sends `Origin: null`
    // with the pages' own form POSTs (login, logout), which the same-origin check must
    // then refuse. Nothing goes to another origin either way.
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Binds `config.listen` and serves until `shutdown` completes.
pub async fn serve(
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    auth::check_exposure(&app.config)?;
    let addr = app.config.listen;
    let listener = bind(addr)?;
    serve_on(app, listener, shutdown).await
}

/// Binds `addr` with a message that says what to do when it cannot.
pub fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
        std::io::ErrorKind::AddrInUse => Error::BadInput(format!(
            "cannot listen on {addr}: the address is in use (another pgopt serve, or another \
             program). Stop it, or choose another address with --listen ADDR:PORT"
        )),
        std::io::ErrorKind::PermissionDenied => Error::BadInput(format!(
            "cannot listen on {addr}: permission denied (ports below 1024 need privileges). \
             Choose another port with --listen ADDR:PORT"
        )),
        _ => Error::BadInput(format!(
            "cannot listen on {addr}: {e}. Check the address given with --listen or `listen` \
             in pgopt.toml"
        )),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Internal(format!("listener on {addr}: {e}")))?;
    Ok(listener)
}

/// Serves the router on an already bound listener (TLS when `app.config.tls` is set) until
/// `shutdown` completes; open connections then get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve_on(
    app: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    auth::check_exposure(&app.config)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener address: {e}")))?;
    let tls = app
        .config
        .tls
        .as_ref()
        .map(tls::server_config)
        .transpose()?;
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::<SocketAddr>::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let served = match tls {
        Some(config) => {
            tracing::info!("serving https://{addr}");
            let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
            axum_server::from_tcp_rustls(listener, config)
                .map_err(|e| Error::Internal(format!("listener on {addr}: {e}")))?
                .handle(handle)
                .serve(service)
                .await
        }
        None => {
            tracing::info!("serving http://{addr}");
            axum_server::from_tcp(listener)
                .map_err(|e| Error::Internal(format!("listener on {addr}: {e}")))?
                .handle(handle)
                .serve(service)
                .await
        }
    };
    served.map_err(|e| Error::Internal(format!("serving on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_is_seen_plain_and_encoded() {
        assert!(is_traversal("/static/../x"));
        assert!(is_traversal("/static/%2e%2e/x"));
        assert!(is_traversal("/static/%2E%2e%2fetc"));
        assert!(is_traversal("/static/a%5c..%5cb"));
        assert!(is_traversal("/static/%zz"));
        assert!(!is_traversal("/static/login.css"));
        assert!(!is_traversal("/server/governance-primary"));
    }

    #[test]
    fn query_strings_are_bounded_and_well_formed() {
        assert!(check_query("range=24h&target=a%20b+c").is_ok());
        assert_eq!(
            check_query(&"a".repeat(MAX_QUERY_BYTES + 1)).unwrap_err().0,
            StatusCode::URI_TOO_LONG
        );
        assert_eq!(check_query("a=%zz").unwrap_err().0, StatusCode::BAD_REQUEST);
        assert_eq!(
            check_query("a=%ff%fe").unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(check_query("a=%00").unwrap_err().0, StatusCode::BAD_REQUEST);
    }
}
