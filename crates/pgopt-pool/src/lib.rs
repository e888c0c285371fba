//! Talking to PostgreSQL the way every pgopt command does, as a library a service can link
//! without the rest of pgopt (no CLI, no reports): targets, bounded connections, what a
//! broken connection is, and a bounded pool.
//!
//! - [`target`]: what to connect to (conninfo or URI, PG* variables, ~/.pgpass, multi-host,
//!   target role, TLS mode). The password is a [`secret::Secret`] that never prints.
//! - [`connect`](mod@connect): the whole connect bounded by one timeout per host, role
//!   checked after connecting, `application_name` and `statement_timeout` set.
//! - [`discover`](mod@discover): probe a port range on one host and pick the primary.
//! - [`tls`]: rustls verifiers for libpq's sslmodes.
//! - [`pgpass`]: the password file.
//! - [`broken`]: whether a connection is still usable after an error (the one
//!   classification).
//! - [`conn`]: a connection whose every statement is bounded and cancelled on timeout.
//! - [`pool`]: a bounded pool: checkout wait, health check after idle, broken ones replaced.
//! - [`failover`]: the failover-aware pool services link ([`PgPool`]).
//! - [`timers`]: operation timers (per-operation histograms, errors by SQLSTATE).
//! - [`secret`]: a password that never prints.
//! - [`error`]: the one error type; every variant says what to do next.
//!
//! ```no_run
//! # async fn demo() -> pgopt_pool::Result<()> {
//! use pgopt_pool::{ConnPool, PoolOptions, Target};
//!
//! // PG* variables and ~/.pgpass fill in what the string leaves out, as libpq does.
//! let target = Target::parse("host=db1,db2 dbname=acgs target_session_attrs=read-write")?;
//! let pool = ConnPool::connect(&target, 5, PoolOptions::default()).await?;
//! let lease = pool.checkout().await?;
//! let row = lease.query_one("one", "SELECT 1", &[]).await?;
//! assert_eq!(row.get::<_, i32>(0), 1);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod broken;
pub mod conn;
pub mod connect;
pub mod discover;
pub mod error;
pub mod failover;
pub mod pgpass;
pub mod pool;
pub mod secret;
mod stmt_cache;
pub mod target;
pub mod timers;
pub mod tls;

pub use broken::Broken;
pub use conn::{Conn, ConnParts};
pub use connect::connect;
pub use discover::{discover, parse_discover_spec, pick_primary, Probe, ProbeOutcome};
pub use error::{Error, Result};
pub use failover::{PgPool, PgPoolOptions, PoolStats, PooledConn, Retry, Role, Work};
pub use pool::{ConnPool, Pool, PoolError, PoolOptions};
pub use secret::Secret;
pub use target::{HostSpec, SslMode, SystemDefaults, Target, TargetRole};
pub use timers::{note_statement, Op, OpStats, SlowOp, Timers};
