//! The dashboard's pages, rendered on the server (fleet, server, statement, alerts).

use axum::Router;

use super::AppState;

/// The pages' routes; the HTTP layer mounts them behind authentication.
pub fn router() -> Router<AppState> {
    Router::new()
}
