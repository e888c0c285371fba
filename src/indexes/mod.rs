//! `pgopt indexes`: workload-driven index advice.
//!
//! The stages, in order (see [`model`] for the data they pass on):
//! - `sources`: the workload as [`model::Query`]s, grouped by fingerprint (pg_stat_statements,
//!   `--query`, `--file`, server logs);
//! - `shape`: pg_query's parse of each statement against the [`model::Catalog`] (pure);
//! - `candidates`: the indexes worth costing, and what is skipped structurally (pure);
//! - `whatif`: plan costs with hypothetical indexes (HypoPG, I/O) into [`model::Costs`];
//! - `select`: the greedy choice over the whole workload (pure), giving [`model::Advice`].
//!
//! After `--apply`, `measure` times the helped statements before and after the build, with
//! representative values for their `$n` parameters from `params` (pure).
//!
//! What is proposed becomes plan steps (`CREATE INDEX CONCURRENTLY`) run by `apply`.

pub mod advisor;
pub mod candidates;
pub mod catalog;
pub mod measure;
pub mod model;
pub mod params;
pub mod select;
pub mod shape;
pub mod sources;
pub mod steps;
pub mod whatif;
