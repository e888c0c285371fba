//! The result of a run: plain serde data, saved as JSON and compared later.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

/// Bumped when a field changes meaning or goes away.
///
/// - 1: one row per statement (`operations`), each execution counted as a transaction.
/// - 2: one row per script (`scripts`), one execution of a script = one transaction, with
///   per-statement figures; latency split into `wait` and `exec`; `host`, `scale`.
pub const RESULT_SCHEMA_VERSION: u32 = 2;

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

/// One statement of a script (as `pgbench -r`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatementResult {
    pub name: String,
    /// The SQL as run (`$n` for the variables).
    pub sql: String,
    /// Line in the script file (0 when not from a file).
    pub line: usize,
    /// Successful executions.
    pub count: u64,
    /// Failed executions by SQLSTATE.
    pub errors: BTreeMap<String, u64>,
    pub mean_ms: f64,
    pub p99_ms: f64,
}

impl StatementResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One script's figures: one execution of the script is one transaction.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScriptResult {
    pub name: String,
    pub weight: u32,
    /// Successful transactions (runs of the script).
    pub count: u64,
    /// Failed transactions by SQLSTATE (or a client-side kind: `pool_timeout`).
    pub errors: BTreeMap<String, u64>,
    /// Successful transactions per second over the measured duration.
    pub throughput_tps: f64,
    /// From the wanted start to the end of the script, waiting for a connection included.
    pub latency: Latency,
    pub statements: Vec<StatementResult>,
}

impl ScriptResult {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// `0`, or the errors by code: `22012: 2, 57014: 1`.
    pub fn errors_text(&self) -> String {
        errors_text(&self.errors)
    }
}

/// `0`, or the errors by code: `22012: 2, 57014: 1`.
pub fn errors_text(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "0".to_string();
    }
    errors
        .iter()
        .map(|(c, n)| format!("{c}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BenchResult {
    pub schema_version: u32,
    pub pgopt_version: String,
    /// The scripts and their weights (`tpcb-like@1 + my.sql@3`).
    pub workload: String,
    pub server_version: String,
    /// The server's host and port as given (no credentials).
    #[serde(default)]
    pub host: Option<String>,
    /// `:scale` of the scripts.
    pub scale: i64,
    pub clients: usize,
    pub connections: usize,
    /// Target rate (tx/s) when `--rate` was given.
    pub rate: Option<f64>,
    pub warmup_s: f64,
    /// Measured time, warm-up excluded.
    pub duration_s: f64,
    /// Successful transactions (runs of a script).
    pub transactions: u64,
    /// Failed transactions.
    pub errors: u64,
    /// Successful transactions per second.
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
    /// Transaction latency, all scripts together: from the moment the client wanted to
    /// start (its scheduled start under --rate) to the end of the script.
    pub latency: Latency,
    /// The part of it spent waiting for a free connection (zero with one connection per
    /// client).
    pub wait: Latency,
    /// The part from holding a connection to the end of the script.
    pub exec: Latency,
    pub scripts: Vec<ScriptResult>,
}

impl BenchResult {
    /// Reads a result saved with `--format json`; one of an older schema is refused with
    /// what to do.
    pub fn load(path: &std::path::Path) -> crate::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::Error::BadInput(format!("cannot read {}: {e}", path.display())))?;
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("schema_version").and_then(|s| s.as_u64()));
        if let Some(v) = version.filter(|v| *v != RESULT_SCHEMA_VERSION as u64) {
            return Err(crate::Error::BadInput(format!(
                "{} is a result of schema {v}; this pgopt reads schema {RESULT_SCHEMA_VERSION} \
                 (schema 1 counted each statement as a transaction, schema 2 counts each run \
                 of a script). Run that benchmark again with this pgopt to compare it",
                path.display()
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            crate::Error::BadInput(format!(
                "{} is not a pgopt bench result (save one with --format json): {e}",
                path.display()
            ))
        })
    }

    /// Errors by SQLSTATE over every script.
    pub fn errors_by_code(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        for op in &self.scripts {
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

    pub(crate) fn sample(scripts: Vec<ScriptResult>) -> BenchResult {
        BenchResult {
            schema_version: RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "w".into(),
            server_version: "15".into(),
            host: None,
            scale: 1,
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
            wait: Latency::default(),
            exec: Latency::default(),
            scripts,
        }
    }

    pub(crate) fn script(name: &str, errors: &[(&str, u64)]) -> ScriptResult {
        ScriptResult {
            name: name.into(),
            weight: 1,
            count: 1,
            errors: errors.iter().map(|(c, n)| (c.to_string(), *n)).collect(),
            throughput_tps: 1.0,
            latency: Latency::default(),
            statements: vec![],
        }
    }

    #[test]
    fn errors_by_code_add_up_over_scripts() {
        let r = sample(vec![
            script("a", &[("22012", 2), ("57014", 1)]),
            script("b", &[("22012", 3)]),
        ]);
        let all = r.errors_by_code();
        assert_eq!(all.get("22012"), Some(&5));
        assert_eq!(all.get("57014"), Some(&1));
        let back: BenchResult = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_result_of_the_older_schema_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.json");
        std::fs::write(&path, r#"{"schema_version": 1, "operations": []}"#).unwrap();
        let e = BenchResult::load(&path).unwrap_err().to_string();
        assert!(e.contains("schema 1") && e.contains("again"), "{e}");
        let path = dir.path().join("new.json");
        std::fs::write(&path, serde_json::to_string(&sample(vec![])).unwrap()).unwrap();
        assert_eq!(BenchResult::load(&path).unwrap(), sample(vec![]));
    }
}
