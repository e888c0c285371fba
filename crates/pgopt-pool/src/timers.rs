//! Operation timers: how long each named operation of a service takes, from checkout to
//! result.
//!
//! SKELETON (the lead's, for the engineers building #13 in parallel): the public API below
//! is fixed; the body is a simple first version. The timers engineer completes it: the
//! slow-operation log with its statement, errors by SQLSTATE, Prometheus metrics in a
//! registry the service exports, the measured overhead.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::error::Result;
use crate::failover::{PgPool, PooledConn, Retry, Work};

/// The figures of one operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpStats {
    /// The operation's name, as given to [`PgPool::op`].
    pub name: String,
    /// Runs recorded (successes and errors).
    pub count: u64,
    /// Runs that ended in an error, by SQLSTATE (`"none"` for errors without one).
    pub errors: BTreeMap<String, u64>,
    /// Percentiles of the duration (checkout to result).
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// 99.9th percentile.
    pub p999: Duration,
    /// The longest run.
    pub max: Duration,
}

struct Entry {
    hist: Histogram<u64>,
    count: u64,
    errors: BTreeMap<String, u64>,
}

/// The timers of a pool (or of a service): one histogram per operation.
pub struct Timers {
    slow: Duration,
    ops: Mutex<HashMap<String, Entry>>,
}

impl Timers {
    /// Timers whose slow-operation log takes runs at or over `slow`.
    pub fn new(slow: Duration) -> Timers {
        Timers {
            slow,
            ops: Mutex::new(HashMap::new()),
        }
    }

    /// The slow-operation threshold.
    pub fn slow_threshold(&self) -> Duration {
        self.slow
    }

    /// Records one run of `name`: its duration and, for an error, its SQLSTATE.
    pub fn record(&self, name: &str, took: Duration, error: Option<Option<&str>>) {
        let mut ops = self.ops.lock().unwrap();
        let entry = ops.entry(name.to_string()).or_insert_with(|| Entry {
            // 1 µs .. 1 hour at 3 significant digits.
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
            count: 0,
            errors: BTreeMap::new(),
        });
        entry.count += 1;
        let _ = entry.hist.record((took.as_micros() as u64).max(1));
        if let Some(code) = error {
            *entry
                .errors
                .entry(code.unwrap_or("none").to_string())
                .or_default() += 1;
        }
    }

    /// Every operation's figures, by name.
    pub fn snapshot(&self) -> Vec<OpStats> {
        let ops = self.ops.lock().unwrap();
        let us = |v: u64| Duration::from_micros(v);
        let mut out: Vec<OpStats> = ops
            .iter()
            .map(|(name, e)| OpStats {
                name: name.clone(),
                count: e.count,
                errors: e.errors.clone(),
                p50: us(e.hist.value_at_quantile(0.5)),
                p90: us(e.hist.value_at_quantile(0.9)),
                p99: us(e.hist.value_at_quantile(0.99)),
                p999: us(e.hist.value_at_quantile(0.999)),
                max: us(e.hist.max()),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// One named operation on a pool, timed from checkout to result ([`PgPool::op`]).
pub struct Op<'p> {
    pool: &'p PgPool,
    name: String,
}

impl<'p> Op<'p> {
    pub(crate) fn new(pool: &'p PgPool, name: &str) -> Op<'p> {
        Op {
            pool,
            name: name.to_string(),
        }
    }

    /// Runs `work` through [`PgPool::run`] and records the run in the pool's timers.
    pub async fn run<T, F>(self, retry: Retry, work: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c PooledConn) -> Work<'c, T>,
    {
        let started = Instant::now();
        let result = self.pool.run(retry, work).await;
        let took = started.elapsed();
        let code = result
            .as_ref()
            .err()
            .map(|e| e.sqlstate().map(|c| c.code()));
        self.pool.timers().record(&self.name, took, code);
        result
    }
}
