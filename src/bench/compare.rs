//! Two results side by side: per script p50, p99 and throughput of A and B with B/A, and
//! whether the two runs are comparable at all ([`differences`]). Pure.

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

/// Something that differs between the two runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Difference {
    /// What differs: `workload`, `clients`, `connections`, `duration`, ...
    pub what: String,
    pub a: String,
    pub b: String,
    /// The figures measure different things: comparing them needs `--force`.
    pub blocking: bool,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} differs: A {}, B {}", self.what, self.a, self.b)
    }
}

/// Durations further apart than this (relative to the longer) are reported.
pub const DURATION_TOLERANCE: f64 = 0.10;

/// What makes A and B not comparable: different scripts, clients or connections (blocking),
/// durations more than 10 % apart, another server version, host, scale or rate (warnings).
pub fn differences(a: &BenchResult, b: &BenchResult) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut add = |what: &str, x: String, y: String, blocking: bool| {
        if x != y {
            out.push(Difference {
                what: what.into(),
                a: x,
                b: y,
                blocking,
            });
        }
    };
    let scripts = |r: &BenchResult| {
        r.scripts
            .iter()
            .map(|s| format!("{}@{}", s.name, s.weight))
            .collect::<Vec<_>>()
            .join(", ")
    };
    add("workload", a.workload.clone(), b.workload.clone(), true);
    if a.workload == b.workload {
        add("scripts", scripts(a), scripts(b), true);
    }
    add(
        "clients",
        a.clients.to_string(),
        b.clients.to_string(),
        true,
    );
    add(
        "connections",
        a.connections.to_string(),
        b.connections.to_string(),
        true,
    );
    let longer = a.duration_s.max(b.duration_s);
    if longer > 0.0 && (a.duration_s - b.duration_s).abs() / longer > DURATION_TOLERANCE {
        add(
            "duration (more than 10 %)",
            format!("{:.1} s", a.duration_s),
            format!("{:.1} s", b.duration_s),
            false,
        );
    }
    add(
        "server version",
        a.server_version.clone(),
        b.server_version.clone(),
        false,
    );
    if let (Some(x), Some(y)) = (&a.host, &b.host) {
        add("host", x.clone(), y.clone(), false);
    }
    add("scale", a.scale.to_string(), b.scale.to_string(), false);
    let rate = |r: &BenchResult| r.rate.map_or("none".to_string(), |x| format!("{x} tx/s"));
    add("rate", rate(a), rate(b), false);
    out
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// The files A and B were read from (set by the caller).
    #[serde(default)]
    pub a_file: String,
    #[serde(default)]
    pub b_file: String,
    pub differences: Vec<Difference>,
    pub a_workload: String,
    pub b_workload: String,
    pub scripts: Vec<OperationDiff>,
    /// All operations together.
    pub total: OperationDiff,
}

/// Compares B against A: operations in A's order, then those only in B.
pub fn compare(a: &BenchResult, b: &BenchResult) -> Comparison {
    let mut operations = Vec::new();
    for op_a in &a.scripts {
        let op_b = b.scripts.iter().find(|o| o.name == op_a.name);
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
    for op_b in &b.scripts {
        if a.scripts.iter().any(|o| o.name == op_b.name) {
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
        a_file: String::new(),
        b_file: String::new(),
        differences: differences(a, b),
        a_workload: a.workload.clone(),
        b_workload: b.workload.clone(),
        scripts: operations,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::result::*;

    fn op(name: &str, p50: f64, p99: f64, tps: f64) -> ScriptResult {
        ScriptResult {
            name: name.into(),
            weight: 1,
            statements: vec![],
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

    fn result(ops: Vec<ScriptResult>, tps: f64) -> BenchResult {
        BenchResult {
            schema_version: RESULT_SCHEMA_VERSION,
            pgopt_version: "0".into(),
            workload: "w".into(),
            server_version: "15".into(),
            host: Some("db1:5432".into()),
            scale: 1,
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
            wait: Latency::default(),
            exec: Latency::default(),
            scripts: ops,
        }
    }

    #[test]
    fn runs_with_other_clients_or_scripts_block_and_a_longer_run_warns() {
        let a = result(vec![op("x", 1.0, 2.0, 100.0)], 100.0);
        assert!(differences(&a, &a.clone()).is_empty());
        let mut b = a.clone();
        b.clients = 8;
        b.duration_s = 1.2;
        b.host = Some("db2:5432".into());
        let d = differences(&a, &b);
        let what: Vec<(&str, bool)> = d.iter().map(|d| (d.what.as_str(), d.blocking)).collect();
        assert_eq!(
            what,
            [
                ("clients", true),
                ("duration (more than 10 %)", false),
                ("host", false)
            ]
        );
        assert_eq!(d[0].to_string(), "clients differs: A 1, B 8");
        let mut c = a.clone();
        c.duration_s = 1.05;
        assert!(differences(&a, &c).is_empty(), "within 10 %");
        let mut d2 = a.clone();
        d2.scripts[0].weight = 3;
        assert_eq!(differences(&a, &d2)[0].what, "scripts");
        assert!(differences(&a, &d2)[0].blocking);
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
        assert_eq!(c.scripts.len(), 3);
        let x = &c.scripts[0];
        assert_eq!(x.p50_ms.ratio, Some(0.5));
        assert_eq!(x.p99_ms.ratio, Some(1.5));
        assert_eq!(x.throughput_tps.ratio, Some(1.5));
        assert_eq!(c.scripts[1].present, "only_a");
        assert_eq!(c.scripts[1].p50_ms.ratio, None);
        assert_eq!(c.scripts[2].present, "only_b");
        assert_eq!(c.total.throughput_tps.ratio, Some(0.5));
        assert_eq!(c.total.p99_ms.ratio, Some(1.0));
    }
}
