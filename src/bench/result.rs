//! The result of a run: plain serde data, saved as JSON and compared later.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Bumped when a field changes meaning or goes away.
pub const RESULT_SCHEMA_VERSION: u32 = 1;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The duration or the transaction count was reached.
    Completed,
    /// Stopped by Ctrl-C: the figures cover the part that ran.
    Interrupted,
    /// Ended early by a failure (every connection lost); `error` says why.
    Failed,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One operation's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OperationResult {
    pub name: String,
    /// Successful executions.
    pub count: u64,
    /// Failed executions by SQLSTATE (or a client-side kind: `pool_timeout`).
    pub errors: BTreeMap<String, u64>,
    /// Successful executions per second over the measured duration.
    pub throughput_tps: f64,
    pub latency: Latency,
}

impl OperationResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `0`, or the errors by code: `22012: 2, 57014: 1`.
    pub fn errors_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".to_string();
        }
        self.errors
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub schema_version: u32,
    pub pgopt_version: String,
    pub workload: String,
    pub server_version: String,
    pub clients: usize,
    pub connections: usize,
    /// Target rate (tx/s) when `--rate` was given.
    pub rate: Option<f64>,
    pub warmup_s: f64,
    /// Measured time, warm-up excluded.
    pub duration_s: f64,
    /// Successful executions.
    pub transactions: u64,
    pub errors: u64,
    /// Successful executions per second.
    pub throughput_tps: f64,
    /// Time until all connections of the pool were open (opened concurrently).
    pub pool_setup_ms: f64,
    /// Time of one connect, measured alone before the pool.
    pub one_connect_ms: f64,
    /// Connections that broke and could not be replaced.
    pub connections_lost: u64,
    pub outcome: Outcome,
    /// Why the run failed, when it did.
    pub error: Option<String>,
    /// All operations together.
    pub latency: Latency,
    pub operations: Vec<OperationResult>,
}

impl BenchResult {
    /// Reads a result saved with `--format json`.
    pub fn load(path: &std::path::Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            crate::Error::BadInput(format!(
                "{} is not a pgopt bench result (save one with --format json): {e}",
                path.display()
            ))
        })
    }

    /// Errors by SQLSTATE over every operation.
    pub fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for op in &self.operations {
            for (code, n) in &op.errors {
                *all.entry(code.clone()).or_insert(0) += n;
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_read_from_a_histogram_of_microseconds_in_milliseconds() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap(); // 10 µs .. 10 ms
        }
        let l = Latency::from_histogram(&h);
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.002;
        assert!(near(l.p50_ms, 5.0), "{l:?}");
        assert!(near(l.p90_ms, 9.0), "{l:?}");
        assert!(near(l.p99_ms, 9.9), "{l:?}");
        assert!(near(l.max_ms, 10.0), "{l:?}");
        assert!(near(l.mean_ms, 5.005), "{l:?}");
        assert_eq!(
            Latency::from_histogram(&Histogram::new(3).unwrap()),
            Latency::default()
        );
    }

    #[test]
    fn errors_by_code_add_up_over_operations() {
        let op = |errors: &[(&str, u64)]| OperationResult {
            name: "x".into(),
            count: 1,
            errors: errors.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            throughput_tps: 1.0,
            latency: Latency::default(),
        };
        let r = BenchResult {
            schema_version: RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "w".into(),
            server_version: "15".into(),
            clients: 1,
            connections: 1,
            rate: None,
            warmup_s: 0.0,
            duration_s: 1.0,
            transactions: 2,
            errors: 6,
            throughput_tps: 2.0,
            pool_setup_ms: 1.0,
            one_connect_ms: 1.0,
            connections_lost: 0,
            outcome: Outcome::Completed,
            error: None,
            latency: Latency::default(),
            operations: vec![op(&[("22012", 2), ("57014", 1)]), op(&[("22012", 3)])],
        };
        let all = r.errors_by_code();
        assert_eq!(all.get("22012"), Some(&5));
        assert_eq!(all.get("57014"), Some(&1));
        let back: BenchResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
