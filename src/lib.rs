//! pgopt: makes a PostgreSQL database fast, proves it with measurements, keeps it fast.
//!
//! The flow (shared/DESIGN.md):
//!
//! ```text
//! target -> db::connect -> collect (one REPEATABLE READ READ ONLY transaction)
//!        -> Snapshot (versioned serde; --save / --from)
//!        -> advise (pure: &Snapshot, &Thresholds -> Vec<Finding>)
//!        -> report (pure: table | json | markdown)
//! ```
//!
//! I/O lives only at the edges (`db`, `collect`, `embedded`); advisors and rendering are
//! pure functions over data, tested on saved snapshots without a server.

pub mod advise;
pub mod apply;
pub mod bench;
pub mod cli;
pub mod collect;
pub mod db;
pub mod demo;
pub mod embedded;
pub mod error;
pub mod files;
pub mod governance;
pub mod ident;
pub mod plan;
pub mod progress;
pub mod report;
pub mod snapshot;
pub mod tune;

pub use error::{Error, Result};
pub use snapshot::Snapshot;
