//! Operation timers: how long each named operation of a service takes, from checkout to
//! result, what went wrong, and which runs were slow.
//!
//! - one HdrHistogram per operation (1 µs .. 1 h, 3 significant digits): p50, p90, p99,
//!   p99.9 and max in [`Timers::snapshot`];
//! - runs that ended in an error, by SQLSTATE;
//! - a slow-operation log: a run at or over the threshold is logged (`tracing`, warn) with
//!   its operation, duration and the last statement it ran, and kept in a bounded ring
//!   ([`Timers::slow_log`]);
//! - Prometheus metrics read from the same figures at scrape time ([`Timers::register`]).
//!
//! The statement of a run is what the work last passed to a statement method of
//! [`Conn`](crate::Conn) (a [`PooledConn`] derefs to one; each notes its SQL before it
//! runs), to [`PooledConn::prepare_cached`] or to [`note_statement`]. Only the SQL text is kept, never the bind parameters: with
//! parameters bound, no value reaches the log.
//!
//! Timers never touch the server and never block on anything but their own short locks.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

use crate::error::Result;
use crate::failover::{PgPool, PooledConn, Retry, Work};

/// Slow runs kept by [`Timers::new`] (the oldest goes first).
pub const SLOW_LOG_CAPACITY: usize = 100;

/// A statement longer than this is cut (at a character boundary) in the slow log.
pub const SLOW_STATEMENT_MAX_CHARS: usize = 2000;

/// Upper bounds (seconds) of the Prometheus histogram's buckets: from a primary-key lookup
/// on a warm cache (~0.5 ms) to a statement near a 30 s statement_timeout.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

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
    /// Runs at or over the slow threshold (added by the timers engineer).
    pub slow: u64,
    /// The sum of every run's duration (for a mean, or Prometheus's `_sum`).
    pub total: Duration,
}

/// One run at or over the slow threshold, as [`Timers::slow_log`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowOp {
    /// The operation's name.
    pub name: String,
    /// How long it took (checkout to result).
    pub took: Duration,
    /// The last statement the run noted (SQL text only, no parameter values; cut at
    /// [`SLOW_STATEMENT_MAX_CHARS`]); `None` when the work ran none through the
    /// [`Conn`](crate::Conn) statement methods, [`PooledConn::prepare_cached`] or
    /// [`note_statement`].
    pub statement: Option<String>,
    /// The SQLSTATE of the error the run ended with (`"none"` for an error without one);
    /// `None` for a success.
    pub error: Option<String>,
    /// When the run ended (wall clock).
    pub at: SystemTime,
}

struct Entry {
    hist: Histogram<u64>,
    count: u64,
    total_ns: u64,
    slow: u64,
    errors: BTreeMap<String, u64>,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            // 1 µs .. 1 hour at 3 significant digits (a longer run saturates at 1 hour).
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds"),
            count: 0,
            total_ns: 0,
            slow: 0,
            errors: BTreeMap::new(),
        }
    }
}

/// The timers of a pool (or of a service): one histogram per operation, errors by
/// SQLSTATE, a slow-operation log, and Prometheus metrics.
///
/// Every [`PgPool`] has its own ([`PgPool::timers`]); [`PgPool::op`] records in it.
///
/// ```
/// use std::time::Duration;
/// use pgopt_pool::Timers;
///
/// let timers = Timers::new(Duration::from_millis(100));
/// timers.record("authenticate_by_email", Duration::from_millis(3), None);
/// timers.record("authenticate_by_email", Duration::from_millis(250), Some(Some("57014")));
/// let ops = timers.snapshot();
/// assert_eq!(ops[0].count, 2);
/// assert_eq!(ops[0].errors["57014"], 1);
/// assert_eq!(timers.slow_log()[0].took, Duration::from_millis(250));
/// ```
pub struct Timers {
    slow_ns: AtomicU64,
    ops: Mutex<HashMap<String, Entry>>,
    slow_log: Mutex<VecDeque<SlowOp>>,
    slow_capacity: usize,
}

impl fmt::Debug for Timers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("slow_threshold", &self.slow_threshold())
            .field("slow_capacity", &self.slow_capacity)
            .finish_non_exhaustive()
    }
}

impl Timers {
    /// Timers whose slow-operation log takes runs at or over `slow` and keeps the last
    /// [`SLOW_LOG_CAPACITY`] of them.
    pub fn new(slow: Duration) -> Timers {
        Timers::with_slow_log(slow, SLOW_LOG_CAPACITY)
    }

    /// Timers whose slow-operation log keeps the last `capacity` slow runs (0: slow runs
    /// are counted and logged through `tracing`, none kept).
    pub fn with_slow_log(slow: Duration, capacity: usize) -> Timers {
        Timers {
            slow_ns: AtomicU64::new(duration_ns(slow)),
            ops: Mutex::new(HashMap::new()),
            slow_log: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            slow_capacity: capacity,
        }
    }

    /// The slow-operation threshold.
    pub fn slow_threshold(&self) -> Duration {
        Duration::from_nanos(self.slow_ns.load(Ordering::Relaxed))
    }

    /// Changes the slow-operation threshold for the runs recorded from now on (a pool's
    /// timers start at 500 ms).
    pub fn set_slow_threshold(&self, slow: Duration) {
        self.slow_ns.store(duration_ns(slow), Ordering::Relaxed);
    }

    /// Records one run of `name`: its duration and, for an error, its SQLSTATE
    /// (`Some(None)`: an error without one, such as a lost connection or a timeout).
    pub fn record(&self, name: &str, took: Duration, error: Option<Option<&str>>) {
        self.record_with_statement(name, took, error, None);
    }

    /// [`Timers::record`] with the statement the run ran, kept in the slow log when the
    /// run is slow.
    pub fn record_with_statement(
        &self,
        name: &str,
        took: Duration,
        error: Option<Option<&str>>,
        statement: Option<&str>,
    ) {
        let ns = duration_ns(took);
        let slow = ns >= self.slow_ns.load(Ordering::Relaxed);
        {
            let mut ops = lock(&self.ops);
            // Look up first: the name is copied only the first time it is seen.
            let entry = match ops.get_mut(name) {
                Some(e) => e,
                None => ops.entry(name.to_string()).or_insert_with(Entry::new),
            };
            entry.count += 1;
            entry.total_ns = entry.total_ns.saturating_add(ns);
            entry.hist.saturating_record((ns / 1000).max(1));
            if slow {
                entry.slow += 1;
            }
            if let Some(code) = error {
                let code = code.unwrap_or("none");
                match entry.errors.get_mut(code) {
                    Some(n) => *n += 1,
                    None => {
                        entry.errors.insert(code.to_string(), 1);
                    }
                }
            }
        }
        if slow {
            self.log_slow(name, took, error, statement);
        }
    }

    fn log_slow(
        &self,
        name: &str,
        took: Duration,
        error: Option<Option<&str>>,
        statement: Option<&str>,
    ) {
        let statement = statement.map(cut_statement);
        let error = error.map(|c| c.unwrap_or("none").to_string());
        tracing::warn!(
            operation = name,
            took_ms = took.as_secs_f64() * 1e3,
            threshold_ms = self.slow_threshold().as_secs_f64() * 1e3,
            sqlstate = error.as_deref().unwrap_or(""),
            statement = statement.as_deref().unwrap_or("(none noted)"),
            "slow operation"
        );
        if self.slow_capacity == 0 {
            return;
        }
        let mut log = lock(&self.slow_log);
        while log.len() >= self.slow_capacity {
            log.pop_front();
        }
        log.push_back(SlowOp {
            name: name.to_string(),
            took,
            statement,
            error,
            at: SystemTime::now(),
        });
    }

    /// Every operation's figures, by name.
    pub fn snapshot(&self) -> Vec<OpStats> {
        let ops = lock(&self.ops);
        let us = Duration::from_micros;
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
                slow: e.slow,
                total: Duration::from_nanos(e.total_ns),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The slow runs kept, oldest first (at most the capacity given at creation).
    pub fn slow_log(&self) -> Vec<SlowOp> {
        lock(&self.slow_log).iter().cloned().collect()
    }

    /// Registers these timers in `registry`; each scrape reads the figures as they are
    /// then. The families (their names take the registry's prefix, e.g. `pgopt_`):
    ///
    /// - `pool_operation_duration_seconds` (histogram, label `operation`, buckets
    ///   [`DURATION_BUCKETS`]): `_count` is the runs, `_sum` their total time, and
    ///   `histogram_quantile()` gives percentiles aggregated over instances;
    /// - `pool_operation_errors_total` (counter, labels `operation`, `sqlstate`);
    /// - `pool_operation_slow_total` (counter, label `operation`): runs at or over the
    ///   slow threshold.
    ///
    /// Register one `Timers` per registry (a second one would repeat the families); for
    /// several pools, use a registry each, or [`Registry::sub_registry_with_prefix`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use prometheus_client::registry::Registry;
    /// use pgopt_pool::Timers;
    ///
    /// let timers = Arc::new(Timers::new(Duration::from_millis(500)));
    /// let mut registry = Registry::with_prefix("pgopt");
    /// timers.clone().register(&mut registry);
    /// timers.record("login_by_username", Duration::from_millis(2), None);
    /// let mut text = String::new();
    /// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    /// assert!(text.contains(
    ///     "pgopt_pool_operation_duration_seconds_count{operation=\"login_by_username\"} 1"
    /// ));
    /// ```
    pub fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.register_collector(Box::new(self));
    }

    /// The histogram buckets of every operation (non-cumulative counts per bound of
    /// [`DURATION_BUCKETS`], then +Inf), with errors and slow counts, for a scrape.
    fn scrape(&self) -> Vec<Scraped> {
        let ops = lock(&self.ops);
        let mut out: Vec<Scraped> = ops
            .iter()
            .map(|(name, e)| {
                let mut buckets: Vec<(f64, u64)> = DURATION_BUCKETS
                    .iter()
                    .map(|b| (*b, 0))
                    .chain([(f64::INFINITY, 0)])
                    .collect();
                for v in e.hist.iter_recorded() {
                    // The histogram's value is µs at 3 significant digits.
                    let secs = e.hist.highest_equivalent(v.value_iterated_to()) as f64 / 1e6;
                    let i = DURATION_BUCKETS
                        .iter()
                        .position(|b| secs <= *b)
                        .unwrap_or(DURATION_BUCKETS.len());
                    buckets[i].1 += v.count_at_value();
                }
                Scraped {
                    name: name.clone(),
                    count: e.count,
                    sum_seconds: e.total_ns as f64 / 1e9,
                    buckets,
                    errors: e.errors.clone(),
                    slow: e.slow,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

struct Scraped {
    name: String,
    count: u64,
    sum_seconds: f64,
    buckets: Vec<(f64, u64)>,
    errors: BTreeMap<String, u64>,
    slow: u64,
}

impl Collector for Timers {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let ops = self.scrape();
        let mut family = enc.encode_descriptor(
            "pool_operation_duration",
            "Time of each pool operation, from checkout to result.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for op in &ops {
            family
                .encode_family(&[("operation", op.name.as_str())])?
                .encode_histogram::<NoLabelSet>(op.sum_seconds, op.count, &op.buckets, None)?;
        }
        let mut family = enc.encode_descriptor(
            "pool_operation_errors",
            "Pool operations that ended in an error, by SQLSTATE (\"none\": no SQLSTATE, \
             e.g. a lost connection or a timeout).",
            None,
            MetricType::Counter,
        )?;
        for op in &ops {
            for (code, n) in &op.errors {
                ConstCounter::new(*n).encode(family.encode_family(&[
                    ("operation", op.name.as_str()),
                    ("sqlstate", code.as_str()),
                ])?)?;
            }
        }
        let mut family = enc.encode_descriptor(
            "pool_operation_slow",
            "Pool operations that took at least the slow-operation threshold.",
            None,
            MetricType::Counter,
        )?;
        for op in &ops {
            ConstCounter::new(op.slow)
                .encode(family.encode_family(&[("operation", op.name.as_str())])?)?;
        }
        Ok(())
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A poisoned lock still holds consistent figures (every update is a few plain writes).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cut_statement(sql: &str) -> String {
    let sql = sql.trim();
    match sql.char_indices().nth(SLOW_STATEMENT_MAX_CHARS) {
        Some((at, _)) => format!("{}…", &sql[..at]),
        None => sql.to_string(),
    }
}

tokio::task_local! {
    /// The last statement noted by the operation running in this task ([`Op::run`]).
    static STATEMENT: RefCell<Option<String>>;
}

/// Notes `sql` as the statement the current operation runs, for the slow log. A no-op
/// outside [`Op::run`]. Every statement method of [`Conn`](crate::Conn) calls it (a
/// [`PooledConn`] derefs to one); call it yourself before running a statement through
/// [`Conn::client`](crate::Conn::client) directly.
pub fn note_statement(sql: &str) {
    let _ = STATEMENT.try_with(|s| {
        let mut s = s.borrow_mut();
        match &mut *s {
            // The buffer is reused: no allocation after an operation's first statement.
            Some(buf) => {
                buf.clear();
                buf.push_str(sql);
            }
            None => *s = Some(sql.to_string()),
        }
    });
}

/// One named operation on a pool, timed from checkout to result ([`PgPool::op`]).
///
/// ```no_run
/// # async fn demo(pool: pgopt_pool::PgPool) -> pgopt_pool::Result<()> {
/// use pgopt_pool::Retry;
///
/// let email = "user00042@acgs.example".to_string();
/// let id: Option<i32> = pool
///     .op("authenticate_by_email")
///     .run(Retry::Once, |c| {
///         let email = email.clone();
///         Box::pin(async move {
///             let row = c
///                 .query_opt(
///                     "authenticating by e-mail",
///                     "SELECT id FROM governance.users WHERE email = $1 AND is_active",
///                     &[&email],
///                 )
///                 .await?;
///             Ok(row.map(|r| r.get(0)))
///         })
///     })
///     .await?;
/// # Ok(())
/// # }
/// ```
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

    /// Runs `work` through [`PgPool::run`] and records the run in the pool's timers: its
    /// duration (checkout included), its error's SQLSTATE, and for a slow run the last
    /// statement the work noted.
    pub async fn run<T, F>(self, retry: Retry, work: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c PooledConn) -> Work<'c, T>,
    {
        let started = Instant::now();
        let (result, statement) = STATEMENT
            .scope(RefCell::new(None), async {
                let result = self.pool.run(retry, work).await;
                (result, STATEMENT.with(|s| s.borrow_mut().take()))
            })
            .await;
        let took = started.elapsed();
        let code = result
            .as_ref()
            .err()
            .map(|e| e.sqlstate().map(|c| c.code()));
        self.pool
            .timers()
            .record_with_statement(&self.name, took, code, statement.as_deref());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_count_and_max_follow_the_recorded_runs() {
        let t = Timers::new(ms(10_000));
        for _ in 0..90 {
            t.record("op", ms(50), None);
        }
        for _ in 0..10 {
            t.record("op", ms(200), None);
        }
        let s = &t.snapshot()[0];
        assert_eq!(s.count, 100);
        // 3 significant digits: within 0.1 %.
        assert!(s.p50.abs_diff(ms(50)) <= ms(1), "{s:?}");
        assert!(s.p90.abs_diff(ms(50)) <= ms(1), "{s:?}");
        assert!(s.p99.abs_diff(ms(200)) <= ms(1), "{s:?}");
        assert!(s.max.abs_diff(ms(200)) <= ms(1), "{s:?}");
        assert_eq!(s.total, ms(90 * 50 + 10 * 200));
        assert_eq!(s.slow, 0);
    }

    #[test]
    fn errors_are_counted_by_sqlstate_and_none_for_errors_without_one() {
        let t = Timers::new(ms(10_000));
        t.record("op", ms(1), Some(Some("22012")));
        t.record("op", ms(1), Some(Some("22012")));
        t.record("op", ms(1), Some(None));
        t.record("op", ms(1), None);
        let s = &t.snapshot()[0];
        assert_eq!(s.count, 4);
        assert_eq!(s.errors.get("22012"), Some(&2));
        assert_eq!(s.errors.get("none"), Some(&1));
        assert_eq!(s.errors.len(), 2);
    }

    #[test]
    fn operations_are_kept_apart_and_listed_by_name() {
        let t = Timers::new(ms(10_000));
        t.record("b", ms(1), None);
        t.record("a", ms(1), None);
        t.record("a", ms(1), None);
        let names: Vec<(String, u64)> = t
            .snapshot()
            .into_iter()
            .map(|s| (s.name, s.count))
            .collect();
        assert_eq!(names, vec![("a".into(), 2), ("b".into(), 1)]);
    }

    #[test]
    fn a_run_at_the_threshold_is_slow_and_one_under_it_is_not() {
        let t = Timers::new(ms(100));
        t.record_with_statement("op", ms(99), None, Some("SELECT 1"));
        t.record_with_statement(
            "op",
            ms(100),
            Some(Some("57014")),
            Some("SELECT pg_sleep($1)"),
        );
        let log = t.slow_log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].name, "op");
        assert_eq!(log[0].took, ms(100));
        assert_eq!(log[0].statement.as_deref(), Some("SELECT pg_sleep($1)"));
        assert_eq!(log[0].error.as_deref(), Some("57014"));
        assert_eq!(t.snapshot()[0].slow, 1);
    }

    #[test]
    fn the_slow_log_keeps_only_the_newest_runs_up_to_its_capacity() {
        let t = Timers::with_slow_log(ms(1), 3);
        for i in 1..=5u64 {
            t.record("op", ms(i), None);
        }
        let took: Vec<Duration> = t.slow_log().iter().map(|s| s.took).collect();
        assert_eq!(took, vec![ms(3), ms(4), ms(5)]);
        assert_eq!(t.snapshot()[0].slow, 5);
        let none = Timers::with_slow_log(ms(1), 0);
        none.record("op", ms(5), None);
        assert!(none.slow_log().is_empty());
        assert_eq!(none.snapshot()[0].slow, 1);
    }

    #[test]
    fn a_changed_threshold_applies_to_later_runs() {
        let t = Timers::new(ms(1000));
        t.record("op", ms(50), None);
        t.set_slow_threshold(ms(10));
        assert_eq!(t.slow_threshold(), ms(10));
        t.record("op", ms(50), None);
        assert_eq!(t.slow_log().len(), 1);
    }

    #[test]
    fn a_long_statement_is_cut_in_the_slow_log() {
        let t = Timers::new(ms(1));
        let long = format!("SELECT '{}'", "é".repeat(3 * SLOW_STATEMENT_MAX_CHARS));
        t.record_with_statement("op", ms(5), None, Some(&long));
        let kept = t.slow_log()[0].statement.clone().unwrap();
        assert_eq!(kept.chars().count(), SLOW_STATEMENT_MAX_CHARS + 1);
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn a_run_longer_than_an_hour_saturates_instead_of_being_lost() {
        let t = Timers::new(Duration::MAX);
        t.record("op", Duration::from_secs(7200), None);
        let s = &t.snapshot()[0];
        assert_eq!(s.count, 1);
        assert!(s.max >= Duration::from_secs(3599), "{s:?}");
    }

    #[tokio::test]
    async fn a_statement_noted_outside_an_operation_is_ignored() {
        note_statement("SELECT 1");
        let inside = STATEMENT
            .scope(RefCell::new(None), async {
                note_statement("SELECT 1");
                note_statement("SELECT 2");
                STATEMENT.with(|s| s.borrow().clone())
            })
            .await;
        assert_eq!(inside.as_deref(), Some("SELECT 2"));
    }

    fn exposition(t: Arc<Timers>) -> String {
        let mut registry = Registry::with_prefix("pgopt");
        t.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn the_prometheus_histogram_has_cumulative_buckets_sum_and_count() {
        let t = Arc::new(Timers::new(ms(100)));
        t.record("auth", ms(3), None);
        t.record("auth", ms(40), None);
        t.record("auth", ms(40), Some(Some("22012")));
        t.record("auth", Duration::from_secs(60), Some(None));
        let text = exposition(t);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        has("# TYPE pgopt_pool_operation_duration_seconds histogram");
        has("# UNIT pgopt_pool_operation_duration_seconds seconds");
        has("pgopt_pool_operation_duration_seconds_count{operation=\"auth\"} 4");
        has("pgopt_pool_operation_duration_seconds_sum{operation=\"auth\"} 60.083");
        has("pgopt_pool_operation_duration_seconds_bucket{le=\"0.0025\",operation=\"auth\"} 0");
        has("pgopt_pool_operation_duration_seconds_bucket{le=\"0.005\",operation=\"auth\"} 1");
        has("pgopt_pool_operation_duration_seconds_bucket{le=\"0.05\",operation=\"auth\"} 3");
        has("pgopt_pool_operation_duration_seconds_bucket{le=\"30.0\",operation=\"auth\"} 3");
        has("pgopt_pool_operation_duration_seconds_bucket{le=\"+Inf\",operation=\"auth\"} 4");
        has("pgopt_pool_operation_errors_total{operation=\"auth\",sqlstate=\"22012\"} 1");
        has("pgopt_pool_operation_errors_total{operation=\"auth\",sqlstate=\"none\"} 1");
        has("pgopt_pool_operation_slow_total{operation=\"auth\"} 1");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn an_operation_name_with_quotes_is_escaped_in_the_labels() {
        let t = Arc::new(Timers::new(ms(100)));
        t.record("a\"b\\c\nd", ms(1), None);
        let text = exposition(t);
        assert!(
            text.contains(r#"_count{operation="a\"b\\c\nd"} 1"#),
            "{text}"
        );
    }
}
