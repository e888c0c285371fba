//! What the daemon collects and keeps: samples, the points they become, statements,
//! events. Plain data shared by the collector, the store, the alerts, `/metrics` and the
//! pages.
//!
//! A metric has one name everywhere: in the store, in alert rules
//! (`cache_hit_ratio < 0.99 for 10m`) and on the pages; `/metrics` exports it as
//! `pgopt_` + [`MetricInfo::prometheus`] with a `target` label. Names carry their unit
//! (`_seconds`, `_bytes`, `_ratio`, `_per_second`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A timestamp (UTC).
pub type Ts = DateTime<Utc>;

/// How a metric behaves, for `/metrics` and for rollups (every stored value is a gauge or
/// a rate already: counters are turned into per-second rates by the collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A level: connections, lag, a ratio.
    Gauge,
    /// A per-second rate over the sample's interval (from a counter's delta).
    Rate,
}

/// One metric the daemon knows.
#[derive(Debug, Clone, Copy)]
pub struct MetricInfo {
    /// The name in the store, alert rules and pages.
    pub name: &'static str,
    /// The Prometheus family name without the `pgopt_` prefix.
    pub prometheus: &'static str,
    pub kind: Kind,
    /// What the key of a keyed metric is (`state`, `queryid`); `None`: one series per target.
    pub key: Option<&'static str>,
    pub help: &'static str,
}

/// Metric names (constants, so that a typo is a compile error).
pub mod m {
    pub const UP: &str = "up";
    pub const COLLECT_SECONDS: &str = "collect_seconds";
    pub const CONNECTIONS: &str = "connections";
    pub const CONNECTIONS_BY_STATE: &str = "connections_by_state";
    pub const CONNECTIONS_WAITING_BY_EVENT: &str = "connections_waiting_by_event";
    pub const MAX_CONNECTIONS: &str = "max_connections";
    pub const CONNECTIONS_USED_RATIO: &str = "connections_used_ratio";
    pub const LOCKS_WAITING: &str = "locks_waiting";
    pub const TPS: &str = "tps";
    pub const COMMITS_PER_SECOND: &str = "commits_per_second";
    pub const ROLLBACKS_PER_SECOND: &str = "rollbacks_per_second";
    pub const CACHE_HIT_RATIO: &str = "cache_hit_ratio";
    pub const BLOCKS_READ_PER_SECOND: &str = "blocks_read_per_second";
    pub const TUPLES_RETURNED_PER_SECOND: &str = "tuples_returned_per_second";
    pub const TUPLES_WRITTEN_PER_SECOND: &str = "tuples_written_per_second";
    pub const DEADLOCKS_PER_SECOND: &str = "deadlocks_per_second";
    pub const TEMP_BYTES_PER_SECOND: &str = "temp_bytes_per_second";
    pub const WAL_BYTES_PER_SECOND: &str = "wal_bytes_per_second";
    pub const REPLICATION_LAG_SECONDS: &str = "replication_lag_seconds";
    pub const OLDEST_XACT_SECONDS: &str = "oldest_xact_seconds";
    pub const DATABASE_SIZE_BYTES: &str = "database_size_bytes";
    pub const STATEMENT_CALLS_PER_SECOND: &str = "statement_calls_per_second";
    pub const STATEMENT_MEAN_SECONDS: &str = "statement_mean_seconds";
    pub const STATEMENT_TIME_RATIO: &str = "statement_time_ratio";
    pub const STATEMENT_ROWS_PER_SECOND: &str = "statement_rows_per_second";
    pub const STATEMENT_TEMP_BYTES_PER_SECOND: &str = "statement_temp_bytes_per_second";
}

/// Every metric the daemon stores, with its Prometheus name and help.
pub const METRICS: &[MetricInfo] = &[
    MetricInfo { name: m::UP, prometheus: "up", kind: Kind::Gauge, key: None, help: "1 when the last collection from the target succeeded, else 0." },
    MetricInfo { name: m::COLLECT_SECONDS, prometheus: "collect_seconds", kind: Kind::Gauge, key: None, help: "How long the last light sample took." },
    MetricInfo { name: m::CONNECTIONS, prometheus: "connections", kind: Kind::Gauge, key: None, help: "Client backends connected." },
    MetricInfo { name: m::CONNECTIONS_BY_STATE, prometheus: "connections_by_state", kind: Kind::Gauge, key: Some("state"), help: "Client backends by state (active, idle, idle in transaction, ...)." },
    MetricInfo { name: m::CONNECTIONS_WAITING_BY_EVENT, prometheus: "connections_waiting_by_event", kind: Kind::Gauge, key: Some("wait_event_type"), help: "Active backends waiting, by wait event type." },
    MetricInfo { name: m::MAX_CONNECTIONS, prometheus: "max_connections", kind: Kind::Gauge, key: None, help: "The server's max_connections." },
    MetricInfo { name: m::CONNECTIONS_USED_RATIO, prometheus: "connections_used_ratio", kind: Kind::Gauge, key: None, help: "Connections over max_connections less superuser_reserved_connections." },
    MetricInfo { name: m::LOCKS_WAITING, prometheus: "locks_waiting", kind: Kind::Gauge, key: None, help: "Lock requests not granted." },
    MetricInfo { name: m::TPS, prometheus: "transactions_per_second", kind: Kind::Rate, key: None, help: "Commits and rollbacks per second, all databases." },
    MetricInfo { name: m::COMMITS_PER_SECOND, prometheus: "commits_per_second", kind: Kind::Rate, key: None, help: "Commits per second, all databases." },
    MetricInfo { name: m::ROLLBACKS_PER_SECOND, prometheus: "rollbacks_per_second", kind: Kind::Rate, key: None, help: "Rollbacks per second, all databases." },
    MetricInfo { name: m::CACHE_HIT_RATIO, prometheus: "cache_hit_ratio", kind: Kind::Gauge, key: None, help: "Shared-buffer hits over hits and reads during the interval." },
    MetricInfo { name: m::BLOCKS_READ_PER_SECOND, prometheus: "blocks_read_per_second", kind: Kind::Rate, key: None, help: "Blocks read outside shared buffers per second." },
    MetricInfo { name: m::TUPLES_RETURNED_PER_SECOND, prometheus: "tuples_returned_per_second", kind: Kind::Rate, key: None, help: "Rows returned per second." },
    MetricInfo { name: m::TUPLES_WRITTEN_PER_SECOND, prometheus: "tuples_written_per_second", kind: Kind::Rate, key: None, help: "Rows inserted, updated and deleted per second." },
    MetricInfo { name: m::DEADLOCKS_PER_SECOND, prometheus: "deadlocks_per_second", kind: Kind::Rate, key: None, help: "Deadlocks detected per second." },
    MetricInfo { name: m::TEMP_BYTES_PER_SECOND, prometheus: "temp_bytes_per_second", kind: Kind::Rate, key: None, help: "Bytes written to temporary files per second." },
    MetricInfo { name: m::WAL_BYTES_PER_SECOND, prometheus: "wal_bytes_per_second", kind: Kind::Rate, key: None, help: "WAL bytes generated per second (a primary's insert position)." },
    MetricInfo { name: m::REPLICATION_LAG_SECONDS, prometheus: "replication_lag_seconds", kind: Kind::Gauge, key: None, help: "On a primary the largest replay lag of its standbys; on a standby its own replay delay." },
    MetricInfo { name: m::OLDEST_XACT_SECONDS, prometheus: "oldest_transaction_seconds", kind: Kind::Gauge, key: None, help: "Age of the oldest open transaction." },
    MetricInfo { name: m::DATABASE_SIZE_BYTES, prometheus: "database_size_bytes", kind: Kind::Gauge, key: None, help: "Size of all databases." },
    MetricInfo { name: m::STATEMENT_CALLS_PER_SECOND, prometheus: "statement_calls_per_second", kind: Kind::Rate, key: Some("queryid"), help: "Calls per second of a top statement." },
    MetricInfo { name: m::STATEMENT_MEAN_SECONDS, prometheus: "statement_mean_seconds", kind: Kind::Gauge, key: Some("queryid"), help: "Mean execution time of a top statement's calls in the interval." },
    MetricInfo { name: m::STATEMENT_TIME_RATIO, prometheus: "statement_time_ratio", kind: Kind::Gauge, key: Some("queryid"), help: "Execution seconds per second of a top statement." },
    MetricInfo { name: m::STATEMENT_ROWS_PER_SECOND, prometheus: "statement_rows_per_second", kind: Kind::Rate, key: Some("queryid"), help: "Rows per second of a top statement." },
    MetricInfo { name: m::STATEMENT_TEMP_BYTES_PER_SECOND, prometheus: "statement_temp_bytes_per_second", kind: Kind::Rate, key: Some("queryid"), help: "Temporary bytes written per second by a top statement." },
];

/// The metric called `name`, if the daemon knows it.
pub fn metric(name: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.name == name)
}

/// One stored value: `metric` of `target` (for keyed metrics, of `key`: a state, a
/// queryid) at `at`. Server-wide metrics have `key == ""`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub target: String,
    pub metric: String,
    #[serde(default)]
    pub key: String,
    pub at: Ts,
    pub value: f64,
}

/// What reset between two samples, so that no negative rate is made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reset {
    /// `pg_postmaster_start_time()` moved: a restart (or crash recovery).
    Restart,
    /// `pg_is_in_recovery()` flipped or the timeline rose: a promotion or failover.
    Failover,
    /// A new system identifier: the name now points at another cluster.
    OtherCluster,
    /// `pg_stat_database.stats_reset` moved (pg_stat_reset()).
    DatabaseStats,
    /// pg_stat_statements was reset (pg_stat_statements_info.stats_reset moved, or every
    /// entry's counters went down).
    Statements,
}

/// One statement's activity in the interval between two samples (pg_stat_statements
/// deltas). Only the top statements by total time are kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementDelta {
    pub queryid: i64,
    /// The normalized text, capped (the full text stays on the server).
    pub query: String,
    pub calls: f64,
    pub total_seconds: f64,
    pub rows: f64,
    pub temp_bytes_written: f64,
}

/// One light sample of one target: gauges now, rates over the interval since the
/// previous sample. The first sample after a start or a reset has gauges only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub target: String,
    pub at: Ts,
    /// Seconds since the previous sample (the rates' denominator); 0 for the first.
    pub interval_seconds: f64,
    /// Server-wide values by metric name ([`m`]).
    pub values: BTreeMap<String, f64>,
    /// Keyed values: metric name → key → value (connections by state, ...).
    pub keyed: BTreeMap<String, BTreeMap<String, f64>>,
    pub statements: Vec<StatementDelta>,
    /// Resets seen since the previous sample (their rates were not computed).
    pub resets: Vec<Reset>,
}

impl Sample {
    /// The sample as stored points (statements as keyed `statement_*` metrics by queryid).
    pub fn points(&self) -> Vec<Point> {
        let mut out = Vec::new();
        let mut push = |metric: &str, key: String, value: f64| {
            if value.is_finite() {
                out.push(Point {
                    target: self.target.clone(),
                    metric: metric.to_string(),
                    key,
                    at: self.at,
                    value,
                });
            }
        };
        for (metric, value) in &self.values {
            push(metric, String::new(), *value);
        }
        for (metric, keys) in &self.keyed {
            for (key, value) in keys {
                push(metric, key.clone(), *value);
            }
        }
        if self.interval_seconds > 0.0 {
            let per = self.interval_seconds;
            for s in &self.statements {
                let key = s.queryid.to_string();
                push(m::STATEMENT_CALLS_PER_SECOND, key.clone(), s.calls / per);
                push(m::STATEMENT_TIME_RATIO, key.clone(), s.total_seconds / per);
                push(m::STATEMENT_ROWS_PER_SECOND, key.clone(), s.rows / per);
                push(
                    m::STATEMENT_TEMP_BYTES_PER_SECOND,
                    key.clone(),
                    s.temp_bytes_written / per,
                );
                if s.calls > 0.0 {
                    push(m::STATEMENT_MEAN_SECONDS, key, s.total_seconds / s.calls);
                }
            }
        }
        out
    }
}

/// Something that happened, kept in the store beside the points: a target went down or
/// came back, an alert fired or resolved, a maintenance run, a reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub target: String,
    pub at: Ts,
    pub kind: EventKind,
    /// One sentence for people (no secret: errors are already redacted).
    pub message: String,
    /// Details for the pages (alert name, values, the journal's path).
    #[serde(default)]
    pub details: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Down,
    Up,
    Reset,
    AlertFiring,
    AlertResolved,
    Regression,
    Maintenance,
    StoreError,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Down => "down",
            EventKind::Up => "up",
            EventKind::Reset => "reset",
            EventKind::AlertFiring => "alert_firing",
            EventKind::AlertResolved => "alert_resolved",
            EventKind::Regression => "regression",
            EventKind::Maintenance => "maintenance",
            EventKind::StoreError => "store_error",
        }
    }
}

/// What the collector hands the daemon's loop: each goes to the store and the alerts.
#[derive(Debug, Clone)]
pub enum Collected {
    Sample(Sample),
    /// The findings of a full snapshot (`pgopt analyze`'s rules) of `target` at `at`.
    Findings {
        target: String,
        at: Ts,
        findings: Vec<crate::advise::Finding>,
    },
    Event(Event),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_unique_and_prometheus_safe() {
        let mut seen = std::collections::BTreeSet::new();
        for info in METRICS {
            assert!(seen.insert(info.name), "{} twice", info.name);
            let p = info.prometheus;
            assert!(p
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            assert!(
                !p.ends_with("_total"),
                "{p}: stored values are gauges or rates"
            );
        }
        assert!(metric(m::TPS).is_some());
        assert!(metric("no_such").is_none());
    }

    #[test]
    fn a_first_sample_stores_no_statement_rates() {
        let mut s = Sample {
            target: "a".into(),
            at: Utc::now(),
            interval_seconds: 0.0,
            values: BTreeMap::from([(m::CONNECTIONS.to_string(), 3.0)]),
            keyed: BTreeMap::new(),
            statements: vec![StatementDelta {
                queryid: 7,
                query: "select 1".into(),
                calls: 10.0,
                total_seconds: 1.0,
                rows: 10.0,
                temp_bytes_written: 0.0,
            }],
            resets: vec![],
        };
        assert_eq!(s.points().len(), 1);
        s.interval_seconds = 10.0;
        let points = s.points();
        let mean = points
            .iter()
            .find(|p| p.metric == m::STATEMENT_MEAN_SECONDS)
            .unwrap();
        assert_eq!((mean.key.as_str(), mean.value), ("7", 0.1));
        let calls = points
            .iter()
            .find(|p| p.metric == m::STATEMENT_CALLS_PER_SECOND)
            .unwrap();
        assert_eq!(calls.value, 1.0);
    }
}
