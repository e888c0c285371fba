//! Talking to PostgreSQL: the pool library's modules, under the name every pgopt module
//! uses (`crate::db::…`). The library (`crates/pgopt-pool`) holds targets, bounded
//! connections, the broken-connection classification and the pool; see its docs.
//!
//! Quoting of names lives outside this layer, in [`crate::ident`]: pure code quotes names too.

// `connect` and `discover` are each a module and its function.
pub use pgopt_pool::{broken, conn, connect, discover, pgpass, pool, secret, target, tls};

pub use broken::Broken;
pub use conn::{Conn, ConnParts};
pub use discover::{parse_discover_spec, pick_primary, Probe, ProbeOutcome};
pub use pool::{ConnPool, Pool, PoolError, PoolOptions};
pub use secret::Secret;
pub use target::{HostSpec, SslMode, SystemDefaults, Target, TargetRole};
