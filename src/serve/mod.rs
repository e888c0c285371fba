//! `pgopt serve`: the daemon that watches one server or a fleet.
//!
//! ```text
//! config (pgopt.toml | one TARGET)          config.rs      pure: parse + validate, errors name the line
//!   -> scheduler: per target, bounded        collector/     I/O: light sample every 10 s, full snapshot
//!      concurrency, timeouts, backoff                         every 15 min (collect::collect + advise)
//!   -> Sample (rates, with counter resets)   model.rs       data
//!   -> Fleet (the latest state, in memory)   state.rs       shared by the pages and /metrics
//!   -> writer: batches into a Store          store/         SQLite (default) | PostgreSQL, one trait
//!   -> alerts + query regressions            alerts/        pure rules + a state machine; webhooks I/O
//!   -> HTTP: pages, /metrics, health         http/          axum; reads only, auth, CSRF, headers, TLS
//!   -> maintenance in windows                maintenance.rs maintain::plan through the executor
//! ```
//!
//! Time comes from a [`clock::Clock`] so that retention, rollups and alert timing are
//! tested with a clock the test moves.

pub mod alerts;
pub mod clock;
pub mod collector;
pub mod config;
pub mod daemon;
pub mod http;
pub mod maintenance;
pub mod model;
pub mod state;
pub mod store;
pub mod wire;
