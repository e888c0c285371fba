//! Who may read the dashboard: a bearer token, or a session from the login form.
//!
//! - Without `[auth]` the daemon must listen on loopback ([`check_exposure`]); then every
//!   route is open, as for any local tool.
//! - With `[auth]`, every route but `/healthz`, `/readyz` and `/login` needs
//!   `Authorization: Bearer TOKEN` (Prometheus' `authorization` config) or the session
//!   cookie the login form sets (password = the token). Comparisons are constant-time.
//! - Sessions live in memory, server-side: a random id in an HttpOnly, SameSite=Strict
//!   cookie (Secure under TLS) that expires; logout deletes the session.
//! - State-changing requests (POST /login, POST /logout) need a CSRF token compared in
//!   constant time (double-submit cookie for the login form, the session's token after)
//!   and a same-origin Origin or Referer (checked for every unsafe method in
//!   [`super::guard`]).
//!
//! Refusals are logged with the method and path, never with the token or the cookie.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use chrono::Duration;
use rand::RngCore;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::Web;
use crate::error::{Error, Result};
use crate::serve::config::Config;
use crate::serve::model::Ts;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pgopt_session";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "pgopt_login_csrf";
/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";
/// How long a session lasts after login.
pub const SESSION_HOURS: i64 = 12;
/// Sessions kept at most (the oldest go first): a flood of logins cannot fill memory.
const MAX_SESSIONS: usize = 10_000;
/// The shortest token accepted: a guessable token on a network is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// Refuses a configuration that would show the fleet to the network without auth, or
/// with a token too short to protect it.
pub fn check_exposure(config: &Config) -> Result<()> {
    match &config.auth {
        None if !config.listen.ip().is_loopback() => Err(Error::BadInput(format!(
            "refusing to listen on {} without auth: anyone who reaches that address would \
             see the fleet. Add a token to pgopt.toml:\n\n  [auth]\n  token_file = \
             \"/etc/pgopt/token\"   # one line, e.g. from `openssl rand -hex 32`\n\nor \
             listen on loopback (--listen 127.0.0.1:8432)",
            config.listen
        ))),
        Some(auth) if auth.token.expose().trim().len() < MIN_TOKEN_LEN => {
            Err(Error::BadInput(format!(
                "the auth token is shorter than {MIN_TOKEN_LEN} characters: make a longer one \
                 (e.g. `openssl rand -hex 32`) and put it in the token file"
            )))
        }
        _ => Ok(()),
    }
}

/// A random value for a session id or a CSRF token: 32 bytes from the OS, as hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two secrets (the length may show, not the content).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// One logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    csrf: String,
    expires: Ts,
}

/// The session a request came with, for handlers and pages: its CSRF token goes in every
/// form (`<input type="hidden" name="csrf" value="...">`, see [`logout_form`]).
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub csrf: String,
    id: String,
}

/// The sessions, server-side.
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Opens a session; returns its id and CSRF token.
    fn open(&self, now: Ts) -> (String, String) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone())
            {
                map.remove(&oldest);
            }
        }
        let id = random_token();
        let csrf = random_token();
        map.insert(
            id.clone(),
            Session {
                csrf: csrf.clone(),
                expires: now + Duration::hours(SESSION_HOURS),
            },
        );
        (id, csrf)
    }

    /// The live session `id`, if there is one.
    fn get(&self, id: &str, now: Ts) -> Option<SessionInfo> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(s) if s.expires > now => Some(SessionInfo {
                csrf: s.csrf.clone(),
                id: id.to_string(),
            }),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    fn close(&self, id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Live sessions (for tests and the log).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in the request's Cookie headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A Set-Cookie value with the flags every cookie of ours has.
fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The bearer token of the request, if it sent one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A browser asking for a page (sent to the login form rather than given a 401).
fn wants_page(req: &Request) -> bool {
    req.method() == Method::GET
        && req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"))
}

/// The middleware in front of every protected route.
pub async fn require_auth(State(web): State<Web>, mut req: Request, next: Next) -> Response {
    let Some(auth) = &web.app.config.auth else {
        return next.run(req).await;
    };
    let now = web.app.clock.now();
    let refusal = if let Some(token) = bearer(req.headers()) {
        if same_secret(token, auth.token.expose().trim()) {
            return next.run(req).await;
        }
        "a wrong bearer token"
    } else if let Some(id) = cookie(req.headers(), SESSION_COOKIE) {
        if let Some(session) = web.sessions.get(id, now) {
            req.extensions_mut().insert(session);
            return next.run(req).await;
        }
        "an unknown or expired session"
    } else {
        "no credentials"
    };
    tracing::warn!(
        method = %req.method(),
        path = req.uri().path(),
        "refused a request with {refusal} (401)"
    );
    if wants_page(&req) {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", "Bearer realm=\"pgopt\"")],
        "authentication needed: send Authorization: Bearer TOKEN (the token of [auth] in \
         pgopt.toml) or log in at /login\n",
    )
        .into_response()
}

fn forbidden(why: &str, req_path: &str) -> Response {
    tracing::warn!(path = req_path, "refused a request: {why} (403)");
    (
        StatusCode::FORBIDDEN,
        format!("forbidden: {why}. Reload the page and try again\n"),
    )
        .into_response()
}

/// The login page. Without `[auth]` there is nothing to log in to: back to the fleet.
pub async fn login_form(State(web): State<Web>) -> Response {
    if web.app.config.auth.is_none() {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    }
    login_page(&web, StatusCode::OK, None)
}

fn login_page(web: &Web, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = random_token();
    let error = error
        .map(|e| format!("<p class=\"error\">{e}</p>"))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pgopt: log in</title>\
         <link rel=\"stylesheet\" href=\"/static/login.css\"></head>\
         <body><main><h1>pgopt</h1>{error}\
         <form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{csrf}\">\
         <label>Token <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus></label>\
         <button type=\"submit\">Log in</button></form></main></body></html>\n"
    );
    (
        status,
        [(
            SET_COOKIE,
            set_cookie(LOGIN_CSRF_COOKIE, &csrf, 600, web.tls),
        )],
        Html(body),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// POST /login: the token as password → a session cookie.
pub async fn login(
    State(web): State<Web>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(auth) = &web.app.config.auth else {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || form.csrf.is_empty() || !same_secret(&form.csrf, expected) {
        return forbidden("the login form's CSRF token is missing or wrong", "/login");
    }
    if !same_secret(form.password.trim(), auth.token.expose().trim()) {
        tracing::warn!(path = "/login", "refused a login with a wrong token (401)");
        return login_page(&web, StatusCode::UNAUTHORIZED, Some("Wrong token."));
    }
    let (id, _csrf) = web.sessions.open(web.app.clock.now());
    tracing::info!("a session was opened by the login form");
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    let h = response.headers_mut();
    h.append(
        SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, SESSION_HOURS * 3600, web.tls),
    );
    h.append(SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", 0, web.tls));
    response
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// POST /logout: deletes the session (its CSRF token in the form).
pub async fn logout(
    State(web): State<Web>,
    session: Option<Extension<SessionInfo>>,
    Form(form): Form<LogoutForm>,
) -> Response {
    if web.app.config.auth.is_none() {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    }
    let Some(Extension(session)) = session else {
        return (
            StatusCode::BAD_REQUEST,
            "no session to log out of: the request carried a bearer token, not a session cookie\n",
        )
            .into_response();
    };
    if form.csrf.is_empty() || !same_secret(&form.csrf, &session.csrf) {
        return forbidden("the CSRF token is missing or wrong", "/logout");
    }
    web.sessions.close(&session.id);
    tracing::info!("a session was closed by logout");
    let mut response = (StatusCode::SEE_OTHER, [(LOCATION, "/login")]).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, web.tls));
    response
}

/// GET /logout: a page with the logout button (for browsers; the pages carry the same
/// button, [`logout_form`]).
pub async fn logout_page(
    State(web): State<Web>,
    session: Option<Extension<SessionInfo>>,
) -> Response {
    if web.app.config.auth.is_none() {
        return (StatusCode::SEE_OTHER, [(LOCATION, "/")]).into_response();
    }
    let Some(Extension(session)) = session else {
        return (
            StatusCode::BAD_REQUEST,
            "no session to log out of: the request carried a bearer token, not a session cookie\n",
        )
            .into_response();
    };
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>pgopt: log out</title>\
         <link rel=\"stylesheet\" href=\"/static/login.css\"></head>\
         <body><main><h1>pgopt</h1>{}</main></body></html>\n",
        logout_form(Some(&session))
    ))
    .into_response()
}

/// The logout button for the pages: a form carrying the session's CSRF token. Empty
/// without a session (no auth, or a bearer token).
pub fn logout_form(session: Option<&SessionInfo>) -> String {
    match session {
        Some(s) => format!(
            "<form method=\"post\" action=\"/logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">\
             <button type=\"submit\">Log out</button></form>",
            s.csrf
        ),
        None => String::new(),
    }
}

/// Whether an unsafe request comes from our own pages: its Origin (or, without one, its
/// Referer) must be this server's scheme and Host. Missing both → not same-origin.
pub fn same_origin(headers: &HeaderMap, tls: bool) -> bool {
    let Some(host) = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let ours = format!("{}://{host}", if tls { "https" } else { "http" });
    if let Some(origin) = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    {
        return origin.eq_ignore_ascii_case(&ours);
    }
    if let Some(referer) = headers
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
    {
        return referer
            .get(..ours.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(&ours))
            && matches!(referer.as_bytes().get(ours.len()), None | Some(b'/'));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_needs_the_origin_or_referer_of_this_host() {
        let host = ("host", "127.0.0.1:8432");
        assert!(same_origin(
            &headers(&[host, ("origin", "http://127.0.0.1:8432")]),
            false
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "https://127.0.0.1:8432")]),
            false
        ));
        assert!(same_origin(
            &headers(&[host, ("origin", "https://127.0.0.1:8432")]),
            true
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "http://evil.example")]),
            false
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), false));
        assert!(same_origin(
            &headers(&[host, ("referer", "http://127.0.0.1:8432/login")]),
            false
        ));
        assert!(!same_origin(
            &headers(&[host, ("referer", "http://127.0.0.1:84321/login")]),
            false
        ));
        assert!(!same_origin(&headers(&[host]), false));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let h = headers(&[("cookie", "a=1; pgopt_session=abc; b=2")]);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn sessions_expire_and_close() {
        let t0 = chrono::Utc::now();
        let s = Sessions::default();
        let (id, csrf) = s.open(t0);
        assert_eq!(s.get(&id, t0).unwrap().csrf, csrf);
        assert!(s
            .get(&id, t0 + Duration::hours(SESSION_HOURS + 1))
            .is_none());
        let (id, _) = s.open(t0);
        s.close(&id);
        assert!(s.get(&id, t0).is_none());
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 64);
    }
}
