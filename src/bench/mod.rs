//! Load generation: `pgopt bench`.

pub mod workload;

pub use workload::{OpKind, Operation, Param, ParamGen, Workload};
