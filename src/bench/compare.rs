//! Two results side by side: per operation p50, p99 and throughput of A and B with B/A. Pure.

use super::result::BenchResult;

/// One figure of A and B and their ratio B/A (None when a side is missing or A is zero).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pair {
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub ratio: Option<f64>,
}

impl Pair {
    pub fn new(a: Option<f64>, b: Option<f64>) -> Self {
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a != 0.0 => Some(b / a),
            _ => None,
        };
        Pair { a, b, ratio }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OperationDiff {
    pub name: String,
    /// `both`, `only_a` or `only_b`.
    pub present: String,
    pub p50_ms: Pair,
    pub p99_ms: Pair,
    pub throughput_tps: Pair,
    pub errors: Pair,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    pub a_workload: String,
    pub b_workload: String,
    pub operations: Vec<OperationDiff>,
    /// All operations together.
    pub total: OperationDiff,
}

/// Compares B against A: operations in A's order, then those only in B.
pub fn compare(a: &BenchResult, b: &BenchResult) -> Comparison {
    let mut operations = Vec::new();
    for op_a in &a.operations {
        let op_b = b.operations.iter().find(|o| o.name == op_a.name);
        operations.push(OperationDiff {
            name: op_a.name.clone(),
            present: if op_b.is_some() { "both" } else { "only_a" }.to_string(),
            p50_ms: Pair::new(Some(op_a.latency.p50_ms), op_b.map(|o| o.latency.p50_ms)),
            p99_ms: Pair::new(Some(op_a.latency.p99_ms), op_b.map(|o| o.latency.p99_ms)),
            throughput_tps: Pair::new(Some(op_a.throughput_tps), op_b.map(|o| o.throughput_tps)),
            errors: Pair::new(
                Some(op_a.error_count() as f64),
                op_b.map(|o| o.error_count() as f64),
            ),
        });
    }
    for op_b in &b.operations {
        if a.operations.iter().any(|o| o.name == op_b.name) {
            continue;
        }
        operations.push(OperationDiff {
            name: op_b.name.clone(),
            present: "only_b".to_string(),
            p50_ms: Pair::new(None, Some(op_b.latency.p50_ms)),
            p99_ms: Pair::new(None, Some(op_b.latency.p99_ms)),
            throughput_tps: Pair::new(None, Some(op_b.throughput_tps)),
            errors: Pair::new(None, Some(op_b.error_count() as f64)),
        });
    }
    let total = OperationDiff {
        name: "total".to_string(),
        present: "both".to_string(),
        p50_ms: Pair::new(Some(a.latency.p50_ms), Some(b.latency.p50_ms)),
        p99_ms: Pair::new(Some(a.latency.p99_ms), Some(b.latency.p99_ms)),
        throughput_tps: Pair::new(Some(a.throughput_tps), Some(b.throughput_tps)),
        errors: Pair::new(Some(a.errors as f64), Some(b.errors as f64)),
    };
    Comparison {
        a_workload: a.workload.clone(),
        b_workload: b.workload.clone(),
        operations,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::*;

    fn op(name: &str, p50: f64, p99: f64, tps: f64) -> OperationResult {
        OperationResult {
            name: name.into(),
            count: 100,
            errors: Default::default(),
            throughput_tps: tps,
            latency: Latency {
                p50_ms: p50,
                p99_ms: p99,
                ..Default::default()
            },
        }
    }

    fn result(ops: Vec<OperationResult>, tps: f64) -> BenchResult {
        BenchResult {
            schema_version: RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "w".into(),
            server_version: "15".into(),
            clients: 1,
            connections: 1,
            rate: None,
            warmup_s: 0.0,
            duration_s: 1.0,
            transactions: 100,
            errors: 0,
            throughput_tps: tps,
            pool_setup_ms: 1.0,
            one_connect_ms: 1.0,
            connections_lost: 0,
            outcome: Outcome::Completed,
            error: None,
            latency: Latency {
                p50_ms: 1.0,
                p99_ms: 4.0,
                ..Default::default()
            },
            operations: ops,
        }
    }

    #[test]
    fn ratios_are_b_over_a_and_missing_operations_are_marked() {
        let a = result(
            vec![op("x", 1.0, 2.0, 100.0), op("gone", 1.0, 1.0, 1.0)],
            200.0,
        );
        let b = result(
            vec![op("x", 0.5, 3.0, 150.0), op("new", 1.0, 1.0, 1.0)],
            100.0,
        );
        let c = compare(&a, &b);
        assert_eq!(c.operations.len(), 3);
        let x = &c.operations[0];
        assert_eq!(x.p50_ms.ratio, Some(0.5));
        assert_eq!(x.p99_ms.ratio, Some(1.5));
        assert_eq!(x.throughput_tps.ratio, Some(1.5));
        assert_eq!(c.operations[1].present, "only_a");
        assert_eq!(c.operations[1].p50_ms.ratio, None);
        assert_eq!(c.operations[2].present, "only_b");
        assert_eq!(c.total.throughput_tps.ratio, Some(0.5));
        assert_eq!(c.total.p99_ms.ratio, Some(1.0));
    }
}
