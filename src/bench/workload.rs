//! What a benchmark runs: named operations, each one parameterised statement with its own
//! parameter generator, picked by weight.
//!
//! The governance workload (src/governance/workload.rs), `select1` and pgbench-style SQL files
//! all become a [`Workload`]; the runner (src/bench/) prepares each operation's statement once
//! per connection and calls its generator before every execution.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::Rng;
use tokio_postgres::types::{ToSql, Type};

/// One bind parameter value.
pub type Param = Box<dyn ToSql + Send + Sync>;

/// Makes the parameters of one execution.
pub type ParamGen = Arc<dyn Fn(&mut SmallRng) -> Vec<Param> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Read,
    Write,
}

#[derive(Clone)]
pub struct Operation {
    /// Stable name, e.g. `authenticate_by_email`; results are reported per name.
    pub name: String,
    pub kind: OpKind,
    /// One statement with `$1`, `$2`, ... placeholders.
    pub sql: String,
    /// The types of the placeholders, when they must be fixed at prepare time (empty: let the
    /// server infer them).
    pub param_types: Vec<Type>,
    /// Relative frequency within the workload (0 = never picked).
    pub weight: u32,
    pub params: ParamGen,
}

impl std::fmt::Debug for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operation")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("weight", &self.weight)
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

/// A set of operations picked by weight.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub ops: Vec<Operation>,
    /// Running sum of the weights, for picking.
    cumulative: Vec<u64>,
}

impl Workload {
    /// Fails when there is no operation or every weight is zero.
    pub fn new(name: impl Into<String>, ops: Vec<Operation>) -> crate::Result<Self> {
        let mut total = 0u64;
        let cumulative = ops
            .iter()
            .map(|o| {
                total += o.weight as u64;
                total
            })
            .collect();
        if total == 0 {
            return Err(crate::Error::BadInput(
                "the workload has no operation with a weight above zero".into(),
            ));
        }
        Ok(Workload {
            name: name.into(),
            ops,
            cumulative,
        })
    }

    /// Picks an operation index in proportion to the weights.
    pub fn pick(&self, rng: &mut SmallRng) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let x = rng.gen_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn op(name: &str, weight: u32) -> Operation {
        Operation {
            name: name.into(),
            kind: OpKind::Read,
            sql: "SELECT 1".into(),
            param_types: vec![],
            weight,
            params: Arc::new(|_| Vec::new()),
        }
    }

    #[test]
    fn picks_follow_the_weights() {
        let w = Workload::new("t", vec![op("a", 9), op("never", 0), op("b", 1)]).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut counts = [0usize; 3];
        for _ in 0..100_000 {
            counts[w.pick(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[0] as f64 / 100_000.0;
        assert!((share - 0.9).abs() < 0.01, "{counts:?}");
    }

    #[test]
    fn a_workload_without_weight_is_refused() {
        assert!(Workload::new("t", vec![op("a", 0)]).is_err());
        assert!(Workload::new("t", vec![]).is_err());
    }
}
