//! Load generation: `pgopt bench`.
//!
//! - [`workload`]: the model (weighted scripts; one run of a script is one transaction);
//! - [`file`](mod@file): pgbench scripts (files and built-ins); [`expr`]: pgbench's
//!   expression language; [`bind`]: variables as bind parameters; [`select1`]: the
//!   round-trip floor;
//! - [`run`](mod@run): N clients over M connections, latency histograms, errors by SQLSTATE;
//! - [`wire`]: the lean connection of the hot loop (postgres-protocol, no background task);
//! - [`result`]: the serde result, saved as JSON; [`compare`](mod@compare): two results side
//!   by side.
//!
//! This is an I/O edge: rendering lives in `report::bench`.

pub mod bind;
pub mod compare;
pub mod expr;
pub mod file;
pub mod options;
pub mod result;
pub mod run;
pub mod wire;
pub mod workload;

use std::sync::Arc;

pub use compare::{compare, Comparison};
pub use options::{parse_duration, BenchOptions, ClientPath, StopAt};
pub use result::{BenchResult, Latency, Outcome, ScriptResult, StatementResult};
pub use run::{close_probe, probe, run, ServerFacts};
pub use workload::{OpKind, Operation, Param, ParamGen, Script, Workload};

/// `SELECT 1`: one operation, no parameters, the round-trip floor of a connection.
pub fn select1() -> Workload {
    Workload::new(
        "select1",
        vec![Operation {
            name: "select1".into(),
            kind: OpKind::Read,
            sql: "SELECT 1".into(),
            param_types: Vec::new(),
            weight: 1,
            params: Arc::new(|_| Vec::new()),
        }],
    )
    .expect("one weighted operation")
}

/// `workload` with `select1` mixed in at the weight of an average script: the round-trip
/// floor measured in the same run, under the same load, as the scripts it is compared to.
pub fn with_floor(workload: Workload) -> crate::Result<Workload> {
    let mut scripts = workload.scripts;
    if scripts.iter().any(|s| s.name == "select1") {
        return Err(crate::Error::BadInput(
            "--floor: the workload already has a script named select1".into(),
        ));
    }
    let total: u64 = scripts.iter().map(|s| s.weight as u64).sum();
    let weight = (total / scripts.len().max(1) as u64).max(1) as u32;
    let mut floor = select1().scripts.remove(0);
    floor.weight = weight;
    scripts.push(floor);
    Workload::from_scripts(workload.name, scripts)
}
