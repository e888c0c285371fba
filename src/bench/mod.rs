//! Load generation: `pgopt bench`.
//!
//! - [`workload`]: the model (weighted operations with parameter generators);
//! - [`file`](mod@file): pgbench-style SQL files as workloads; [`select1`]: the round-trip floor;
//! - [`run`](mod@run): N clients over M connections, latency histograms, errors by SQLSTATE;
//! - [`wire`]: the lean connection of the hot loop (postgres-protocol, no background task);
//! - [`result`]: the serde result, saved as JSON; [`compare`](mod@compare): two results side
//!   by side.
//!
//! This is an I/O edge: rendering lives in `report::bench`.

pub mod compare;
pub mod file;
pub mod options;
pub mod result;
pub mod run;
pub mod wire;
pub mod workload;

use std::sync::Arc;

pub use compare::{compare, Comparison};
pub use options::{parse_duration, BenchOptions, StopAt};
pub use result::{BenchResult, Latency, OperationResult, Outcome};
pub use run::{close_probe, probe, run, ServerFacts};
pub use workload::{OpKind, Operation, Param, ParamGen, Workload};

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

/// `workload` with `select1` mixed in at the weight of an average operation: the round-trip
/// floor measured in the same run, under the same load, as the operations it is compared to.
pub fn with_floor(workload: Workload) -> crate::Result<Workload> {
    let mut ops = workload.ops;
    if ops.iter().any(|o| o.name == "select1") {
        return Err(crate::Error::BadInput(
            "--floor: the workload already has an operation named select1".into(),
        ));
    }
    let total: u64 = ops.iter().map(|o| o.weight as u64).sum();
    let weight = (total / ops.len().max(1) as u64).max(1) as u32;
    let mut floor = select1().ops.remove(0);
    floor.weight = weight;
    ops.push(floor);
    Workload::new(workload.name, ops)
}

pub use crate::governance::Mix;

/// The governance workload, built from the seeded data in `schema`.
pub async fn governance_workload(
    conn: &crate::db::Conn,
    schema: &str,
    mix: Mix,
) -> crate::Result<Workload> {
    crate::governance::governance_workload(conn, schema, mix).await
}
