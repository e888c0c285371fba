//! `pgopt optimize`: the five phases in order (analyze, indexes, maintenance, settings,
//! performance), each ending done, skipped or failed, and the report of the run.
//!
//! [`model`] is the report's data (what `report.json` holds, versioned); the reports render
//! it (`crate::report::optimize`). [`run`](mod@run) talks to the server (I/O orchestration
//! only); [`phases`] holds the pure parts (report rows from each phase's advice, which phase
//! depends on which, the benchmark's workload), tested without a server.

pub mod model;
pub mod phases;
pub mod run;

pub use run::{run, Options};
