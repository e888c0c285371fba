//! The static files the pages use, embedded in the binary: the one script (the
//! auto-refresh) and the style sheet, served by the HTTP layer under `/static/` (its
//! `STATIC_FILES`). Nothing is loaded from anywhere else.

pub(crate) const SCRIPT: &str = include_str!("static/pgopt.js");
pub(crate) const STYLE: &str = include_str!("static/pgopt.css");
