//! pgopt: makes a PostgreSQL database fast, proves it with measurements, keeps it fast.
//!
//! The flow (ARCHITECTURE.md at the repository's root says more):
//!
//! ```text
//! target (db::Target: conninfo, PG* variables, .pgpass)
//!   -> db (connect, Conn, pool, the one classification of broken connections)   I/O
//!   -> collect (one REPEATABLE READ READ ONLY transaction)                         I/O
//!   -> Snapshot (versioned serde: --save / --from)                                data
//!   -> advise, tune (pure: &Snapshot, &Thresholds -> findings, settings advice)   pure
//!   -> plan (pure: a finding's or an advice's fix as Steps in a Plan)             pure
//!   -> apply (the one executor: advisory lock, preconditions, journal, undo)      I/O
//!   -> report (pure: table | json | markdown | html)                              pure
//! ```
//!
//! Long work (seeding, bench runs, the executor) reports [`progress::Event`]s to a
//! [`progress::Progress`] sink it is given: the CLI draws them (indicatif, in `cli/` only),
//! tests collect them, the daemon will publish them. Names reach SQL only through
//! [`ident`]; values only as bind parameters or [`ident::quote_literal`] where PostgreSQL
//! takes none.
//!
//! I/O lives only at the edges (`db`, `collect`, `apply`, `embedded`, `bench`'s runner);
//! advisors, plans and rendering are pure functions over data, tested on saved snapshots
//! without a server. `cli` is argument parsing and wiring; the library works without it.

pub mod advise;
pub mod apply;
pub mod bench;
pub mod cli;
pub mod collect;
pub mod db;
pub mod demo;
pub mod drill;
pub mod embedded;
/// The one error type, shared with the pool library.
pub use pgopt_pool::error;
pub mod files;
pub mod governance;
pub mod hash;
pub mod ident;
pub mod indexes;
pub mod maintain;
pub mod optimize;
pub mod plan;
pub mod progress;
pub mod report;
pub mod serve;
pub mod snapshot;
pub mod tune;

pub use error::{Error, Result};
pub use snapshot::Snapshot;
