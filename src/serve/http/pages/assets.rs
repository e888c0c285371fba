//! The static files the pages use, embedded in the binary: the one script (the
//! auto-refresh) and the style sheet. Nothing is loaded from anywhere else.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

const SCRIPT: &str = include_str!("static/pgopt.js");
const STYLE: &str = include_str!("static/pgopt.css");

/// `GET /static/{file}`: one of the embedded files, else 404 (no file system behind it).
pub async fn file(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "pgopt.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "pgopt.css" => (STYLE, "text/css; charset=utf-8"),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "no such file: the pages use pgopt.js and pgopt.css",
            )
                .into_response()
        }
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
