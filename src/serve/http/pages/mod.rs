//! The dashboard's pages, rendered on the server (fleet, server, statement, alerts) from
//! what the daemon holds: the fleet's current state, the history store and the config.
//!
//! Reads only: no page changes a server or runs SQL; where something should be done, the
//! page shows the pgopt command that does it. Every value that comes from a server or the
//! config (target names, statement texts, errors) is escaped; charts are SVG drawn here;
//! the one script and the style sheet are embedded in the binary and served under
//! `/static/` (the Content-Security-Policy allows nothing inline and nothing remote).

mod alerts;
pub(crate) mod assets;
mod fleet;
pub mod history;
mod layout;
mod series;
mod server;
mod statement;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Duration;

use super::auth::{logout_form, SessionInfo};
use super::AppState;
use crate::report::html::esc;
use crate::serve::store::StoreError;

/// The pages' routes; the HTTP layer mounts them behind authentication.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(fleet_page))
        .route("/alerts", get(alerts_page))
        .route("/targets/{name}", get(server_page))
        .route("/targets/{name}/statements/{queryid}", get(statement_page))
}

/// The time range a page shows (`?range=1h|6h|24h|7d|30d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    SixHours,
    Day,
    Week,
    Month,
}

impl Range {
    pub const ALL: [Range; 5] = [
        Range::Hour,
        Range::SixHours,
        Range::Day,
        Range::Week,
        Range::Month,
    ];

    pub fn parse(s: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::SixHours => "6h",
            Range::Day => "24h",
            Range::Week => "7d",
            Range::Month => "30d",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Range::Hour => Duration::hours(1),
            Range::SixHours => Duration::hours(6),
            Range::Day => Duration::hours(24),
            Range::Week => Duration::days(7),
            Range::Month => Duration::days(30),
        }
    }
}

/// The query string the pages take: only `range`; anything else is ignored.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PageQuery {
    range: Option<String>,
}

impl PageQuery {
    /// The range asked for, `default` when none; an unknown one is a 400.
    fn range(&self, default: Range) -> Result<Range, PageError> {
        match self.range.as_deref() {
            None | Some("") => Ok(default),
            Some(r) => Range::parse(r).ok_or_else(|| {
                PageError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unknown range {r:?}: use one of {}",
                        Range::ALL.map(Range::as_str).join(", ")
                    ),
                )
            }),
        }
    }
}

/// A page that could not be shown: its status and a sentence saying why and what to do.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the history store could not be read ({e}); the daemon goes on collecting: \
                 reload the page later, and see the daemon's log"
            ),
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        let body = format!(
            "<p class=\"error\">{}</p>\n<p><a href=\"/\">Back to the fleet</a></p>\n",
            esc(&self.message)
        );
        (self.status, Html(layout::page(&title, &body, None))).into_response()
    }
}

/// The session a page was asked with (a login by the form; none with a bearer token or
/// without auth): its logout button goes in the page's header.
type Session = Option<Extension<SessionInfo>>;

/// Runs a page's rendering (store reads: blocking) off the async workers, and puts the
/// session's logout button in its header.
async fn render(
    session: Session,
    f: impl FnOnce() -> Result<String, PageError> + Send + 'static,
) -> Result<Html<String>, PageError> {
    let logout = logout_form(session.as_ref().map(|Extension(s)| s));
    tokio::task::spawn_blocking(move || f().map(|page| layout::with_header_item(page, &logout)))
        .await
        .map_err(|e| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("rendering the page failed ({e}); see the daemon's log"),
            )
        })?
        .map(Html)
}

async fn fleet_page(
    State(app): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    render(session, move || fleet::render(&app)).await
}

async fn alerts_page(
    State(app): State<AppState>,
    session: Session,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let range = q.range(Range::Day)?;
    render(session, move || alerts::render(&app, range)).await
}

async fn server_page(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let range = q.range(Range::SixHours)?;
    render(session, move || server::render(&app, &name, range)).await
}

async fn statement_page(
    State(app): State<AppState>,
    session: Session,
    Path((name, queryid)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, PageError> {
    let range = q.range(Range::SixHours)?;
    let queryid: i64 = queryid.parse().map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "{queryid:?} is not a queryid (a 64-bit integer, as pg_stat_statements \
                 shows it): follow a statement's link on its server's page"
            ),
        )
    })?;
    render(session, move || {
        statement::render(&app, &name, queryid, range)
    })
    .await
}

/// The view of target `name`, or a 404.
fn target(app: &AppState, name: &str) -> Result<crate::serve::state::TargetView, PageError> {
    app.fleet
        .views()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| {
            PageError::not_found(format!(
                "no target is called {name:?}: the fleet page lists the targets this daemon \
                 watches"
            ))
        })
}

/// A path segment with everything but unreserved characters percent-encoded (RFC 3986),
/// so that any target name makes a link to its own page.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The link to a target's page (escaped for an attribute).
pub(crate) fn target_href(name: &str) -> String {
    format!("/targets/{}", path_segment(name))
}

#[cfg(test)]
mod tests;
