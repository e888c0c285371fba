//! Talking to PostgreSQL: targets, bounded connections, what a broken connection is.
//!
//! - [`target`]: what to connect to (conninfo or URI, PG* variables, ~/.pgpass, multi-host,
//!   target role, TLS mode). The password is a [`secret::Secret`] that never prints.
//! - [`connect`](mod@connect): the whole connect bounded by one timeout per host, role checked after
//!   connecting, `application_name = pgopt`, `statement_timeout` set.
//! - [`discover`](mod@discover): probe a port range on one host and pick the primary.
//! - [`tls`]: rustls verifiers for libpq's sslmodes.
//! - [`pgpass`]: the password file.
//! - [`broken`]: whether a connection is still usable after an error (the one classification).
//! - [`conn`]: a connection whose every statement is bounded and cancelled on timeout.
//! - [`pool`]: a bounded pool: checkout wait, health check after idle, broken ones replaced.
//! - [`secret`]: a password that never prints.
//!
//! Quoting of names lives outside this layer, in [`crate::ident`]: pure code quotes names too.

pub mod broken;
pub mod conn;
pub mod connect;
pub mod discover;
pub mod pgpass;
pub mod pool;
pub mod secret;
pub mod target;
pub mod tls;

pub use broken::Broken;
pub use conn::{Conn, ConnParts};
pub use connect::connect;
pub use discover::{discover, parse_discover_spec, pick_primary, Probe, ProbeOutcome};
pub use pool::{ConnPool, Pool, PoolError, PoolOptions};
pub use secret::Secret;
pub use target::{HostSpec, SslMode, SystemDefaults, Target, TargetRole};
