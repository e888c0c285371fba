//! Talking to PostgreSQL: targets, bounded connections, quoting.
//!
//! - [`target`]: what to connect to (conninfo or URI, PG* variables, ~/.pgpass, multi-host,
//!   target role, TLS mode). The password is a [`target::Secret`] that never prints.
//! - [`connect`]: the whole connect bounded by one timeout per host, role checked after
//!   connecting, `application_name = pgopt`, `statement_timeout` set.
//! - [`conn`]: a connection whose every statement is bounded and cancelled on timeout.
//! - [`ident`]: the only way a name reaches SQL text.

pub mod conn;
pub mod connect;
pub mod ident;
pub mod target;

pub use conn::Conn;
pub use connect::connect;
pub use ident::{Ident, QualifiedName};
pub use target::{Target, TargetRole};
