//! `pgopt optimize`: the five phases in order (analyze, indexes, maintenance, settings,
//! performance), each ending done, skipped or failed, and the report of the run.
//!
//! [`model`] is the report's data (what `report.json` holds, versioned); the reports render
//! it (`crate::report::optimize`).

pub mod model;
