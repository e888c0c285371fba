//! The runner: N clients over M connections, each running weighted scripts; one run of a
//! script is one transaction, timed into the script's HdrHistograms (total, wait, exec) and
//! each statement's; failures counted by SQLSTATE on the script and the statement.
//!
//! - Set-up: single connects timed alone, the median taken ([`probe`], which also checks that
//!   M more connections fit), then all M connects started at one instant (pool set-up time,
//!   connects only), then every statement of every script prepared once on each, without
//!   parameter types (the server infers them; values go as text, src/bench/bind.rs).
//! - N == M: each client owns its connection, no pool in the way, and runs on a thread of its
//!   own whose current-thread runtime also drives the connection (like pgbench's `-j N`). N >
//!   M: client tasks on the caller's runtime, where a FIFO semaphore hands out free
//!   connections, each held for a whole run of a script; the wait is bounded and counted as
//!   `pool_timeout` when it runs out.
//! - A script's commands run in order ([`run_script`]): `\set` evaluates, `\sleep` sleeps
//!   holding the connection, SQL goes through [`run_statement`], the one seam where a
//!   statement meets the connection (a leaner protocol path can replace its body).
//! - No timer per execution: a watchdog sends a cancel request for any execution running
//!   longer than statement_timeout plus slack (the server's own statement_timeout fires
//!   first; this covers a server that stopped answering).
//! - Latency counts from the moment a client wants to run a script (its scheduled start under
//!   `--rate`) until its last command ended; wait is the time until a connection was held,
//!   exec the rest.
//! - A failed statement is counted, the rest of that run of the script skipped, a transaction
//!   block left open rolled back, and the client goes on. An expression error or a value
//!   that does not fit its parameter stops the run (pgbench aborts the client). A broken
//!   connection is replaced once; when that fails it is dropped, and when none is left the
//!   run ends as failed with the partial result.
//! - The hot loop takes no shared lock but its own statistics shard's (uncontended when N ==
//!   M) and allocates only the parameters.
//! - N == M runs on the lean path ([`super::wire`]: the client's own thread reads and writes
//!   the socket, no connection task, and waits for each answer on the socket itself, not
//!   through its runtime; such a wait is bounded by the watchdog's limit plus the cancel's
//!   grace, after which the connection is given up and replaced) unless `--client-path
//!   standard` is given, the target lists several hosts, or it needs TLS; then, and for
//!   shared connections, tokio-postgres.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Statement;

use super::bind;
use super::expr::{Env, Value};
use super::options::{BenchOptions, ClientPath, StopAt};
use super::result::{
    BenchResult, Latency, Outcome, ScriptResult, StatementResult, RESULT_SCHEMA_VERSION,
};
use super::wire::{CancelHandle, ConnectError, Prepared, WireConn, WireError};
use super::workload::{
    Binds, Block, Command, SleepFor, Workload, SLOT_CLIENT_ID, SLOT_DEFAULT_SEED, SLOT_RANDOM_SEED,
    SLOT_SCALE,
};
use crate::db::{self, Conn, Target};
use crate::error::{Error, Result};
use crate::progress::{Event, Kind, Progress, Unit};

const CAPACITY_SQL: &str = include_str!("../sql/bench_capacity.sql");

/// Client-side slack over statement_timeout before an execution is cancelled.
const CLIENT_SLACK: Duration = Duration::from_secs(2);

/// How long a health check of a lean connection may wait for its answer.
const HEALTH_CHECK_WAIT: Duration = Duration::from_secs(10);

/// How often the watchdog looks for executions over the limit.
const WATCHDOG_TICK: Duration = Duration::from_millis(250);

/// The most statistics shards (client i writes to shard i % shards).
const MAX_SHARDS: usize = 64;

/// How many single connects [`probe`] times; the figure is their median.
const SINGLE_CONNECTS: usize = 3;

/// The pause after closing a connection before the next connect is timed: the closed
/// connection's backend exits meanwhile, and its exit should not be measured as part of the
/// next connect. A heuristic: the client cannot see when the backend has gone.
const SETTLE: Duration = Duration::from_millis(20);

/// What the probe learned.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub server_version: String,
    /// The median time of [`SINGLE_CONNECTS`] single connects, one after the other, each
    /// alone on the server: the yardstick of the pool set-up time.
    pub one_connect: Duration,
}

/// Times [`SINGLE_CONNECTS`] single connects, reads the server version and checks that
/// `connections` more connections fit under max_connections. Returns the last connection
/// for workload set-up; close it before [`run`] so that it does not take a slot.
///
/// Each connect is what a pool connect is ([`db::connect`]: TCP, start-up, authentication,
/// one round trip for the role check and statement_timeout), without preparing statements.
pub async fn probe(target: &Target, connections: usize) -> Result<(Conn, ServerFacts)> {
    let mut times = Vec::with_capacity(SINGLE_CONNECTS);
    let mut conn = None;
    for _ in 0..SINGLE_CONNECTS {
        if let Some(previous) = conn.take() {
            drop(previous);
            tokio::time::sleep(SETTLE).await;
        }
        let start = std::time::Instant::now();
        conn = Some(db::connect(target).await?);
        times.push(start.elapsed());
    }
    let conn = conn.expect("at least one connect");
    let one_connect = median(&mut times);
    let row = conn
        .query_one("reading max_connections", CAPACITY_SQL, &[])
        .await?;
    let server_version: String = row.get("server_version");
    let max: i64 = row.get("max_connections");
    let su_reserved: i64 = row.get("superuser_reserved_connections");
    let reserved: i64 = row.get("reserved_connections");
    let others: i64 = row.get("other_connections");
    let available = max - su_reserved - reserved - others;
    if connections as i64 > available {
        let reserved_part = if reserved > 0 {
            format!(" - reserved_connections {reserved}")
        } else {
            String::new()
        };
        return Err(Error::BadInput(format!(
            "--connections {connections} is more than the server allows: max_connections {max} \
             - superuser_reserved_connections {su_reserved}{reserved_part} - {others} other \
             connections in use = {} available. Lower --connections (the clients share them) \
             or raise max_connections",
            available.max(0)
        )));
    }
    Ok((
        conn,
        ServerFacts {
            server_version,
            one_connect,
        },
    ))
}

/// Closes the probe's connection and waits [`SETTLE`], so that the pool set-up that follows
/// does not share the server with that backend's exit.
pub async fn close_probe(conn: Conn) {
    drop(conn);
    tokio::time::sleep(SETTLE).await;
}

/// The median of `times` (the upper one of the middle two for an even count).
fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

/// One connection with every statement of every script prepared on it.
struct Slot {
    link: Link,
    /// When the running execution started, in µs since [`Shared::epoch`] plus 1; 0 = idle.
    /// Read by the watchdog, which cancels executions over the limit.
    busy_since: AtomicU64,
    /// The watchdog sent a cancel request for the running execution.
    cancelled: AtomicBool,
}

/// A slot's connection and its statements (`stmts[script][statement]`).
// One per connection, behind an Arc: the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Link {
    /// tokio-postgres.
    Standard {
        conn: Conn,
        stmts: Vec<Vec<Statement>>,
    },
    /// [`WireConn`], driven by the client's own thread: its requests wait for the server on
    /// that thread (`blocking_*`), past the thread's runtime. The lock is never contended
    /// (one client per connection) and never held across an await; the watchdog cancels
    /// through `cancel`, without it.
    Lean {
        conn: Mutex<WireConn>,
        stmts: Vec<Vec<Prepared>>,
        cancel: CancelHandle,
    },
}

impl Slot {
    fn new(link: Link) -> Arc<Slot> {
        Arc::new(Slot {
            link,
            busy_since: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
        })
    }

    /// The parameter types of statement `stmt` of script `script`, as the server inferred them.
    fn params(&self, script: usize, stmt: usize) -> &[Type] {
        match &self.link {
            Link::Standard { stmts, .. } => stmts[script][stmt].params(),
            Link::Lean { stmts, .. } => stmts[script][stmt].params(),
        }
    }

    /// Asks the server to cancel what this connection runs; bounded, best effort.
    async fn cancel_running(&self) {
        match &self.link {
            Link::Standard { conn, .. } => conn.cancel_running().await,
            Link::Lean { cancel, .. } => {
                if let Err(e) = cancel.cancel().await {
                    tracing::warn!("cancel request failed: {e}");
                }
            }
        }
    }
}

/// A connection just opened, on either path (one per connect, moved once).
#[allow(clippy::large_enum_variant)]
enum Opened {
    Standard(Conn),
    Lean(WireConn),
}

/// Opens a connection for a client that owns it: on the lean path when the run uses it
/// (tokio-postgres when the target needs TLS), else on the standard one.
async fn connect_client(shared: &Shared) -> Result<Opened> {
    if shared.lean.load(Ordering::Relaxed) {
        let host = &shared.target.hosts[0];
        match WireConn::connect(&shared.target, host).await {
            Ok(w) => return Ok(Opened::Lean(w)),
            Err(ConnectError::NeedsTls(why)) => {
                if shared.lean.swap(false, Ordering::Relaxed) {
                    tracing::info!("{why}: the clients use tokio-postgres");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Opened::Standard(db::connect(&shared.target).await?))
}

/// The error for a statement of the workload that does not prepare: the script is wrong
/// (syntax, unknown tables and columns, parameter types the server cannot infer: 42xxx).
fn prepare_error(
    err: Error,
    script: &super::workload::Script,
    st: &super::workload::Statement,
) -> Error {
    if err.sqlstate().is_some_and(|c| c.code().starts_with("42")) {
        let at = if st.line > 0 {
            format!(" (line {})", st.line)
        } else {
            String::new()
        };
        return Error::BadInput(format!(
            "{err}. Check statement {}{at} of script {} against the database:\n  {}",
            st.name, script.name, st.sql
        ));
    }
    err
}

async fn prepare_opened(opened: Opened, workload: &Workload) -> Result<Arc<Slot>> {
    match opened {
        Opened::Standard(conn) => prepare_all(conn, workload).await,
        Opened::Lean(conn) => prepare_lean(conn, workload).await,
    }
}

/// [`prepare_all`] on the lean path (each prepare bounded by statement_timeout plus slack).
async fn prepare_lean(mut conn: WireConn, workload: &Workload) -> Result<Arc<Slot>> {
    let mut stmts = Vec::with_capacity(workload.scripts.len());
    for script in &workload.scripts {
        let mut prepared_script = Vec::with_capacity(script.statements.len());
        for st in &script.statements {
            let types: Vec<u32> = st.param_types.iter().map(Type::oid).collect();
            match conn.prepare_typed(&st.sql, &types).await {
                Ok(p) => prepared_script.push(p),
                Err(e) => {
                    let err = e.into_error(format!("preparing statement {}", st.name));
                    return Err(prepare_error(err, script, st));
                }
            }
        }
        stmts.push(prepared_script);
    }
    let cancel = conn.cancel_handle();
    Ok(Slot::new(Link::Lean {
        conn: Mutex::new(conn),
        stmts,
        cancel,
    }))
}

async fn prepare_all(conn: Conn, workload: &Workload) -> Result<Arc<Slot>> {
    let limit = conn.statement_timeout() + CLIENT_SLACK;
    let mut stmts = Vec::with_capacity(workload.scripts.len());
    for script in &workload.scripts {
        let mut prepared_script = Vec::with_capacity(script.statements.len());
        for st in &script.statements {
            let prepared =
                tokio::time::timeout(limit, conn.client().prepare_typed(&st.sql, &st.param_types))
                    .await
                    .map_err(|_| Error::Timeout {
                        what: format!("preparing statement {}", st.name),
                        after: limit,
                        next_step: None,
                    })?;
            match prepared {
                Ok(s) => prepared_script.push(s),
                Err(e) => {
                    let err = Error::query(format!("preparing statement {}", st.name), e);
                    return Err(prepare_error(err, script, st));
                }
            }
        }
        stmts.push(prepared_script);
    }
    Ok(Slot::new(Link::Standard { conn, stmts }))
}

/// A new connection for a client (a replacement): the lean path when the run uses it.
async fn open_slot(shared: &Shared) -> Result<Arc<Slot>> {
    prepare_opened(connect_client(shared).await?, &shared.workload).await
}

/// One statement's statistics.
struct StatementStats {
    hist: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

/// One script's statistics.
struct ScriptStats {
    /// Transaction latency: wanted start to end.
    total: Histogram<u64>,
    /// Waiting for a connection.
    wait: Histogram<u64>,
    /// Holding a connection.
    exec: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    statements: Vec<StatementStats>,
}

/// Running sums for `--progress` (deltas between two reports).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    count: u64,
    sum_us: f64,
    sum_sq_us: f64,
    failed: u64,
}

/// Per-script statistics of a group of clients.
struct Shard {
    scripts: Vec<ScriptStats>,
    moments: Moments,
}

impl Shard {
    fn new(workload: &Workload) -> Self {
        Shard {
            scripts: workload
                .scripts
                .iter()
                .map(|s| ScriptStats {
                    total: new_histogram(),
                    wait: new_histogram(),
                    exec: new_histogram(),
                    errors: BTreeMap::new(),
                    statements: s
                        .statements
                        .iter()
                        .map(|_| StatementStats {
                            hist: new_histogram(),
                            errors: BTreeMap::new(),
                        })
                        .collect(),
                })
                .collect(),
            moments: Moments::default(),
        }
    }

    fn failed(&mut self, script: usize, code: &str) {
        *self.scripts[script]
            .errors
            .entry(code.to_string())
            .or_insert(0) += 1;
        self.moments.failed += 1;
    }
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits: memory grows with the largest latency seen.
    Histogram::new(3).expect("3 significant digits is valid")
}

/// Opens the connections of the pool (connections shared by more clients than there are
/// connections): each with every statement prepared, and watched.
struct Slots {
    target: Target,
    workload: Arc<Workload>,
    watched: Arc<Mutex<Vec<std::sync::Weak<Slot>>>>,
}

impl db::pool::Manage for Slots {
    type Conn = Arc<Slot>;

    async fn open(&self) -> Result<Arc<Slot>> {
        let slot = prepare_all(db::connect(&self.target).await?, &self.workload).await?;
        self.watched
            .lock()
            .expect("not poisoned")
            .push(Arc::downgrade(&slot));
        Ok(slot)
    }

    async fn check(&self, slot: &Arc<Slot>) -> Result<()> {
        match &slot.link {
            Link::Standard { conn, .. } => {
                conn.batch("checking a pooled connection", "SELECT 1").await
            }
            // The client's own thread waits on the socket, bounded (see blocking_simple_query).
            Link::Lean { conn, .. } => conn
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .blocking_simple_query("SELECT 1", HEALTH_CHECK_WAIT)
                .map(|_| ())
                .map_err(|e| e.into_error("checking a pooled connection")),
        }
    }

    fn is_closed(&self, slot: &Arc<Slot>) -> bool {
        match &slot.link {
            Link::Standard { conn, .. } => conn.is_closed(),
            Link::Lean { conn, .. } => conn.try_lock().is_ok_and(|c| c.is_broken()),
        }
    }
}

struct Shared {
    target: Target,
    workload: Arc<Workload>,
    shards: Vec<Mutex<Shard>>,
    stop: AtomicBool,
    stop_tx: watch::Sender<bool>,
    /// Set once every connection is ready, before any client starts.
    measure_start: OnceLock<Instant>,
    issued: AtomicU64,
    limit: Option<u64>,
    rate_per_client: Option<f64>,
    seed: u64,
    exec_limit: Duration,
    pool: Option<db::Pool<Slots>>,
    live: AtomicUsize,
    lost: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Clients that own their connection use the lean path ([`super::wire`]); turned off
    /// when the target turns out to need TLS.
    lean: AtomicBool,
    /// Every open connection, for the watchdog.
    watched: Arc<Mutex<Vec<std::sync::Weak<Slot>>>>,
    epoch: std::time::Instant,
}

impl Shared {
    fn stop_all(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stop_tx.send_replace(true);
    }

    fn watch(&self, slot: &Arc<Slot>) {
        self.watched
            .lock()
            .expect("not poisoned")
            .push(Arc::downgrade(slot));
    }

    fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    /// Microseconds from the epoch to `t`, never 0 (0 means "not busy").
    fn us_at(&self, t: Instant) -> u64 {
        t.into_std()
            .saturating_duration_since(self.epoch)
            .as_micros() as u64
            + 1
    }

    /// How long a lean client waits for an answer before it gives the connection up: past
    /// the limit at which the watchdog cancels (one tick late at most), the cancel's grace.
    fn lean_wait(&self) -> Duration {
        self.exec_limit + WATCHDOG_TICK + super::wire::CANCEL_GRACE
    }

    fn measure_start(&self) -> Instant {
        *self.measure_start.get().expect("set before clients start")
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// A script cannot go on (an expression error, a value that does not fit its
    /// parameter): the run stops and fails with this message, as pgbench aborts the client.
    fn fatal(&self, why: String) {
        self.failure
            .lock()
            .expect("not poisoned")
            .get_or_insert(why);
        if let Some(pool) = &self.pool {
            pool.close();
        }
        self.stop_all();
    }

    /// A connection broke and could not be replaced; with none left the run fails.
    fn connection_lost(&self, why: String) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        let left = self.live.fetch_sub(1, Ordering::AcqRel) - 1;
        tracing::warn!("lost a connection ({left} left): {why}");
        if left == 0 {
            *self.failure.lock().expect("not poisoned") = Some(format!(
                "lost every connection to the server; the last error: {why}. \
                 Check that the server is up and run again"
            ));
            if let Some(pool) = &self.pool {
                pool.close();
            }
            self.stop_all();
        }
    }
}

/// Why one execution failed.
struct Failure {
    code: String,
    broken: bool,
    message: String,
}

/// The lean path classifies as [`classify`] does (tests/bench_wire.rs holds them together).
impl From<WireError> for Failure {
    fn from(e: WireError) -> Self {
        Failure {
            code: e.code,
            broken: e.broken,
            message: e.message,
        }
    }
}

fn classify(e: &tokio_postgres::Error, closed: bool) -> Failure {
    let broken = closed || db::Broken::from_error(e).is_some();
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        return Failure {
            code: code.code().to_string(),
            broken,
            message: format!("{}: {}", code.code(), db.message()),
        };
    }
    Failure {
        // The connection went away without a server message.
        code: if broken {
            db::Broken::CLOSED_SQLSTATE
        } else {
            "client_error"
        }
        .to_string(),
        broken,
        message: e.to_string(),
    }
}

/// The one place a statement runs: statement `stmt` of script `script` with these parameter
/// values on the connection of `slot`; the rows affected, or a classified failure.
///
/// No timer per execution: the watchdog cancels executions that run over the client-side
/// limit. A leaner protocol path can replace the body for one-connection-per-client runs.
async fn run_statement(
    shared: &Shared,
    slot: &Slot,
    script: usize,
    stmt: usize,
    params: &[&(dyn ToSql + Sync)],
    started: Instant,
) -> std::result::Result<u64, Failure> {
    let r = match &slot.link {
        Link::Standard { conn, stmts } => {
            slot.busy_since
                .store(shared.us_at(started), Ordering::Relaxed);
            let r = conn
                .client()
                .execute_raw(&stmts[script][stmt], params.iter().copied())
                .await;
            slot.busy_since.store(0, Ordering::Relaxed);
            r.map_err(|e| classify(&e, conn.is_closed()))
        }
        Link::Lean { conn, stmts, .. } => {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            slot.busy_since
                .store(shared.us_at(started), Ordering::Relaxed);
            let r = conn.blocking_execute_params(&stmts[script][stmt], params, shared.lean_wait());
            slot.busy_since.store(0, Ordering::Relaxed);
            r.map_err(Failure::from)
        }
    };
    let cancelled = slot.cancelled.swap(false, Ordering::Relaxed);
    match r {
        Ok(n) => Ok(n),
        Err(mut f) => {
            if cancelled {
                f.message = format!(
                    "no answer within {:.0}s, cancelled by pgopt: {}",
                    shared.exec_limit.as_secs_f64(),
                    f.message
                );
            }
            Err(f)
        }
    }
}

/// After a failure inside a transaction block: ROLLBACK, so that nothing of the failed
/// transaction stays and the connection is clean for the next script. False when the
/// connection could not be cleaned (it is then replaced).
async fn roll_back(shared: &Shared, slot: &Slot) -> bool {
    match &slot.link {
        Link::Standard { conn, .. } => matches!(
            tokio::time::timeout(shared.exec_limit, conn.client().batch_execute("ROLLBACK")).await,
            Ok(Ok(()))
        ),
        // Watched as an execution (cancelled past the same limit), given up after the grace.
        Link::Lean { conn, .. } => {
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            slot.busy_since.store(shared.now_us(), Ordering::Relaxed);
            let r = conn.blocking_simple_query("ROLLBACK", shared.lean_wait());
            slot.busy_since.store(0, Ordering::Relaxed);
            slot.cancelled.store(false, Ordering::Relaxed);
            r.is_ok()
        }
    }
}

/// Every 250 ms: sends a cancel request for each execution running longer than the limit
/// (the server's statement_timeout plus slack), once per execution.
fn spawn_watchdog(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let limit_us = shared.exec_limit.as_micros() as u64;
        let mut tick = tokio::time::interval(WATCHDOG_TICK);
        loop {
            tick.tick().await;
            let now = shared.now_us();
            let slots: Vec<Arc<Slot>> = {
                let mut watched = shared.watched.lock().expect("not poisoned");
                watched.retain(|w| w.strong_count() > 0);
                watched.iter().filter_map(|w| w.upgrade()).collect()
            };
            for slot in slots {
                let since = slot.busy_since.load(Ordering::Relaxed);
                if since != 0
                    && now.saturating_sub(since) > limit_us
                    && !slot.cancelled.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(
                        "an execution ran over {:?}; cancelling it",
                        shared.exec_limit
                    );
                    tokio::spawn(async move { slot.cancel_running().await });
                }
            }
        }
    })
}

/// Replaces a broken connection of the pool, or gives its place up.
async fn replace_pooled(shared: &Shared, lease: db::pool::Lease<'_, Slots>, why: String) {
    if shared.stopped() {
        shared.lost.fetch_add(1, Ordering::Relaxed);
        lease.discard();
        return;
    }
    match lease.replace().await {
        Ok(()) => tracing::info!("replaced a broken connection ({why})"),
        Err(e) => shared.connection_lost(format!("{why}; reconnecting failed: {e}")),
    }
}

/// Replaces a broken connection, or gives it up. Returns the new one.
async fn replace(shared: &Shared, why: String) -> Option<Arc<Slot>> {
    if shared.stopped() {
        shared.lost.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    match open_slot(shared).await {
        Ok(slot) => {
            shared.watch(&slot);
            tracing::info!("replaced a broken connection ({why})");
            Some(slot)
        }
        Err(e) => {
            shared.connection_lost(format!("{why}; reconnecting failed: {e}"));
            None
        }
    }
}

/// The client's variables of every script, pgbench's automatic ones set.
fn client_vars(workload: &Workload, id: usize, seed: u64) -> Vec<Vec<Value>> {
    workload
        .scripts
        .iter()
        .map(|s| {
            let mut v = s.initial.clone();
            v[SLOT_CLIENT_ID] = Value::Int(id as i64);
            v[SLOT_DEFAULT_SEED] = Value::Int(seed as i64);
            v[SLOT_RANDOM_SEED] = Value::Int(seed as i64);
            v
        })
        .collect()
}

/// How one run of a script ended.
enum ScriptEnd {
    Done,
    Failed(Failure),
    /// The run is stopping (or a script error stopped it): nothing to count.
    Abandoned,
}

/// Runs script `s` once on `slot`: its commands in order, statement latencies recorded into
/// `shard` when `measured`. After a failure inside a transaction block the connection is
/// rolled back (a failure that leaves it unusable is returned as broken).
#[allow(clippy::too_many_arguments)]
async fn run_script(
    shared: &Shared,
    slot: &Slot,
    s: usize,
    vars: &mut [Value],
    rng: &mut SmallRng,
    shard: &Mutex<Shard>,
    measured: bool,
    stop_rx: &mut watch::Receiver<bool>,
    clock: &mut Instant,
) -> ScriptEnd {
    let script = &shared.workload.scripts[s];
    let default_seed = shared.seed as i64;
    let mut in_block = false;
    // `clock` is the last time read: a statement that follows it directly (nothing but its
    // binds in between) starts at it, and a statement's end is the next one's start and the
    // script's end. Two clock reads per statement at most, as few as pgbench makes.
    let mut fresh = true;
    for command in &script.commands {
        match command {
            Command::Set(slot_no, expr) => {
                fresh = false;
                let value = expr.eval(&mut Env {
                    vars,
                    rng,
                    default_seed,
                });
                match value {
                    Ok(v) => vars[*slot_no] = v,
                    Err(m) => {
                        shared.fatal(format!(
                            "script {}: \\set {}: {m}",
                            script.name, script.vars[*slot_no]
                        ));
                        if in_block {
                            roll_back(shared, slot).await;
                        }
                        return ScriptEnd::Abandoned;
                    }
                }
            }
            Command::Sleep(sleep) => {
                fresh = false;
                let us = match sleep {
                    SleepFor::Micros(us) => *us,
                    SleepFor::Var(v, unit) => match &vars[*v] {
                        Value::Int(n) if *n >= 0 => (*n as u64).saturating_mul(*unit),
                        other => {
                            shared.fatal(format!(
                                "script {}: \\sleep :{}: {other:?} is not a whole number \
                                 of at least 0",
                                script.name, script.vars[*v]
                            ));
                            return ScriptEnd::Abandoned;
                        }
                    },
                };
                // The connection stays held, inside the transaction's time, as in pgbench.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_micros(us)) => {}
                    _ = stop_rx.wait_for(|v| *v) => return ScriptEnd::Abandoned,
                }
            }
            Command::Sql(i) => {
                let st = &script.statements[*i];
                let generated;
                let mut refs: Vec<&(dyn ToSql + Sync)> = Vec::new();
                match &st.binds {
                    Binds::Vars(slots) => {
                        let types = slot.params(s, *i);
                        for (n, v) in slots.iter().enumerate() {
                            if let Err(why) = bind::check(&vars[*v], &types[n]) {
                                shared.fatal(bind::misfit(
                                    &why,
                                    &script.vars[*v],
                                    n + 1,
                                    &types[n],
                                    &st.name,
                                    st.line,
                                ));
                                if in_block {
                                    roll_back(shared, slot).await;
                                }
                                return ScriptEnd::Abandoned;
                            }
                            refs.push(&vars[*v]);
                        }
                    }
                    Binds::Generated(gen) => {
                        generated = gen(rng);
                        refs.extend(generated.iter().map(|p| &**p as &(dyn ToSql + Sync)));
                    }
                }
                let t0 = if fresh { *clock } else { Instant::now() };
                let r = run_statement(shared, slot, s, *i, &refs, t0).await;
                *clock = Instant::now();
                fresh = true;
                match st.block {
                    Block::Opens if r.is_ok() => in_block = true,
                    Block::Closes => in_block = false,
                    _ => {}
                }
                match r {
                    Ok(_) => {
                        if measured {
                            let us = clock.duration_since(t0).as_micros().max(1) as u64;
                            let mut sh = shard.lock().expect("not poisoned");
                            let _ = sh.scripts[s].statements[*i].hist.record(us);
                        }
                    }
                    Err(mut f) => {
                        if measured {
                            let mut sh = shard.lock().expect("not poisoned");
                            *sh.scripts[s].statements[*i]
                                .errors
                                .entry(f.code.clone())
                                .or_insert(0) += 1;
                        }
                        if in_block && !f.broken && !roll_back(shared, slot).await {
                            f.broken = true;
                            f.message = format!("{}; the ROLLBACK after it failed", f.message);
                        }
                        return ScriptEnd::Failed(f);
                    }
                }
            }
        }
    }
    if !fresh {
        *clock = Instant::now();
    }
    ScriptEnd::Done
}

async fn client(shared: Arc<Shared>, id: usize, mut own: Option<Arc<Slot>>) {
    let mut rng = SmallRng::seed_from_u64(shared.seed.wrapping_add(id as u64));
    let mut vars = client_vars(&shared.workload, id, shared.seed);
    let shard = &shared.shards[id % shared.shards.len()];
    let mut stop_rx = shared.stop_tx.subscribe();
    let mut next_start = Instant::now();
    let pooled = own.is_none();
    let measure_start = shared.measure_start();
    loop {
        if shared.stopped() {
            break;
        }
        let start = match shared.rate_per_client {
            Some(rate) => {
                let u: f64 = rng.gen();
                next_start += Duration::from_secs_f64(-(1.0 - u).ln() / rate);
                if next_start > Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next_start) => {}
                        _ = stop_rx.wait_for(|s| *s) => break,
                    }
                }
                next_start
            }
            None => Instant::now(),
        };
        let measured = start >= measure_start;
        if measured {
            if let Some(limit) = shared.limit {
                if shared.issued.fetch_add(1, Ordering::Relaxed) >= limit {
                    shared.stop_all();
                    break;
                }
            }
        }
        let s = shared.workload.pick(&mut rng);
        // After the schedule: from here on, a wait is a wait for a connection. Without a
        // rate there is no schedule, and the start is now.
        let began = if shared.rate_per_client.is_some() {
            Instant::now()
        } else {
            start
        };

        let (end, acquired, now) = if pooled {
            let pool = shared.pool.as_ref().expect("pooled clients have a pool");
            let lease = match pool.checkout().await {
                Ok(l) => l,
                // Closed: no connection left.
                Err(db::PoolError::Closed) => break,
                Err(db::PoolError::Exhausted { .. }) => {
                    if measured {
                        shard
                            .lock()
                            .expect("not poisoned")
                            .failed(s, "pool_timeout");
                    }
                    continue;
                }
                Err(db::PoolError::Reconnect(e)) => {
                    shared.connection_lost(format!(
                        "a pooled connection failed its health check; reconnecting failed: {e}"
                    ));
                    continue;
                }
            };
            let acquired = Instant::now();
            let mut clock = acquired;
            let end = run_script(
                &shared,
                &lease,
                s,
                &mut vars[s],
                &mut rng,
                shard,
                measured,
                &mut stop_rx,
                &mut clock,
            )
            .await;
            if let ScriptEnd::Failed(f) = &end {
                if f.broken {
                    replace_pooled(&shared, lease, f.message.clone()).await;
                }
            }
            (end, acquired, clock)
        } else {
            let Some(slot) = own.as_ref() else { break };
            let acquired = began;
            let mut clock = acquired;
            let end = run_script(
                &shared,
                slot,
                s,
                &mut vars[s],
                &mut rng,
                shard,
                measured,
                &mut stop_rx,
                &mut clock,
            )
            .await;
            if let ScriptEnd::Failed(f) = &end {
                if f.broken {
                    own = replace(&shared, f.message.clone()).await;
                }
            }
            (end, acquired, clock)
        };
        if measured {
            let mut sh = shard.lock().expect("not poisoned");
            match end {
                ScriptEnd::Done => {
                    let total = now.duration_since(start).as_micros().max(1) as u64;
                    let wait = acquired.duration_since(began).as_micros() as u64;
                    let exec = now.duration_since(acquired).as_micros().max(1) as u64;
                    let st = &mut sh.scripts[s];
                    let _ = st.total.record(total);
                    let _ = st.wait.record(wait);
                    let _ = st.exec.record(exec);
                    let m = &mut sh.moments;
                    m.count += 1;
                    m.sum_us += total as f64;
                    m.sum_sq_us += (total as f64) * (total as f64);
                }
                ScriptEnd::Failed(f) => sh.failed(s, &f.code),
                ScriptEnd::Abandoned => {}
            }
        }
        if own.is_none() && !pooled {
            break;
        }
    }
}

/// Opens the connections, runs the workload and returns the result, partial when the run was
/// interrupted (`interrupt` turned true) or failed (every connection lost:
/// `outcome == Failed` and `error` says why). Set-up failures are errors.
///
/// With one connection per client, each client runs on its own thread with a current-thread
/// runtime that also drives its connection (as pgbench runs `-j N` threads): no task hops
/// between threads per execution. Shared connections are served from the caller's runtime.
pub async fn run(
    target: &Target,
    workload: Workload,
    opts: &BenchOptions,
    facts: &ServerFacts,
    interrupt: Option<watch::Receiver<bool>>,
    progress: Arc<dyn Progress>,
) -> Result<BenchResult> {
    opts.validate()?;
    let workload = Arc::new(workload);
    let exec_limit = target.statement_timeout + CLIENT_SLACK;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let dedicated = opts.clients == opts.connections;
    let watched = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Shared {
        target: target.clone(),
        shards: (0..opts.clients.min(MAX_SHARDS))
            .map(|_| Mutex::new(Shard::new(&workload)))
            .collect(),
        workload: workload.clone(),
        stop: AtomicBool::new(false),
        stop_tx,
        measure_start: OnceLock::new(),
        issued: AtomicU64::new(0),
        limit: match opts.stop {
            StopAt::Transactions(t) => Some(t),
            StopAt::Duration(_) => None,
        },
        rate_per_client: opts.rate.map(|r| r / opts.clients as f64),
        seed: opts.seed,
        exec_limit,
        pool: (!dedicated).then(|| {
            db::Pool::new(
                Slots {
                    target: target.clone(),
                    workload: workload.clone(),
                    watched: watched.clone(),
                },
                db::PoolOptions {
                    checkout_wait: exec_limit + Duration::from_secs(1),
                    ..db::PoolOptions::default()
                },
            )
        }),
        live: AtomicUsize::new(opts.connections),
        lost: AtomicU64::new(0),
        failure: Mutex::new(None),
        lean: AtomicBool::new(
            dedicated && opts.client_path == ClientPath::Lean && target.hosts.len() == 1,
        ),
        watched,
        epoch: std::time::Instant::now(),
    });

    // Pool set-up: every connection at once; the time until the last one is connected.
    let mut clients = if dedicated {
        Clients::threads(&shared, opts.connections).await?
    } else {
        Clients::tasks(&shared, opts).await?
    };
    let pool_setup = clients.pool_setup;
    if dedicated {
        if shared.lean.load(Ordering::Relaxed) {
            tracing::info!(
                "each client runs its statements on the lean protocol path (bench::wire)"
            );
        } else {
            tracing::info!("each client runs its statements on tokio-postgres");
        }
    }

    let measure_start = Instant::now() + opts.warmup;
    shared.measure_start.set(measure_start).expect("set once");
    clients.go();
    let progress = (opts.progress || opts.progress_every.is_some())
        .then(|| spawn_progress(shared.clone(), opts.progress_every, progress));
    let watchdog = spawn_watchdog(shared.clone());

    let deadline = match opts.stop {
        StopAt::Duration(d) => Some(measure_start + d),
        StopAt::Transactions(_) => None,
    };
    let mut interrupt = interrupt;
    let interrupted = tokio::select! {
        _ = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        } => false,
        _ = async {
            match interrupt.as_mut() {
                Some(rx) => { let _ = rx.wait_for(|v| *v).await; }
                None => std::future::pending().await,
            }
        } => true,
        _ = stop_rx.wait_for(|v| *v) => false,
    };
    shared.stop_all();

    // In-flight executions finish (bounded by their own limit); stragglers are abandoned.
    let bound = exec_limit + target.connect_timeout + Duration::from_secs(5);
    if !clients.join(bound).await {
        tracing::warn!("some clients did not stop within {bound:?}; abandoning them");
    }
    let end = Instant::now();
    watchdog.abort();
    if let Some(p) = progress {
        p.abort();
        let _ = p.await;
    }

    let failure = shared.failure.lock().expect("not poisoned").clone();
    let outcome = if interrupted {
        Outcome::Interrupted
    } else if failure.is_some() {
        Outcome::Failed
    } else {
        Outcome::Completed
    };
    let duration = end.saturating_duration_since(measure_start);
    Ok(summarise(
        &shared, opts, facts, pool_setup, duration, outcome, failure,
    ))
}

/// Names a set-up failure of connection `i` (bad input stays bad input).
fn setup_error(e: Error, i: usize, of: usize) -> Error {
    match e {
        Error::BadInput(_) => e,
        other => Error::Connect(format!(
            "opening connection {} of {of} for the pool: {other}",
            i + 1
        )),
    }
}

/// What a client thread reports while it sets up.
enum Setup {
    /// Its runtime is up; it waits for the start of the connects.
    Waiting,
    Connected(Instant),
    Prepared,
    Failed(Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Go {
    Wait,
    Run,
    Abort,
}

/// The running clients: OS threads (one connection each) or tasks over the pool.
enum Running {
    Threads {
        go: watch::Sender<Go>,
        /// Closed when every thread has ended.
        done: tokio::sync::mpsc::UnboundedReceiver<()>,
    },
    Tasks {
        set: JoinSet<()>,
        pending: Vec<usize>,
        shared: Arc<Shared>,
    },
}

struct Clients {
    running: Running,
    pool_setup: Duration,
}

impl Clients {
    /// One thread per client, each connecting, preparing and then waiting for [`Clients::go`].
    ///
    /// The pool set-up time is that of the connects alone, all started at one instant: the
    /// threads and their runtimes are made first, and preparing comes after (it is timed
    /// with the run's set-up, not as a connect).
    async fn threads(shared: &Arc<Shared>, n: usize) -> Result<Self> {
        let (event_tx, mut event_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Setup)>();
        let (start_tx, start_rx) = watch::channel(Go::Wait);
        let (go_tx, go_rx) = watch::channel(Go::Wait);
        let (done_tx, done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        for id in 0..n {
            let shared = shared.clone();
            let event_tx = event_tx.clone();
            let mut start_rx = start_rx.clone();
            let mut go_rx = go_rx.clone();
            let done_tx = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pgopt-bench-{id}"))
                .spawn(move || {
                    let _done = done_tx;
                    let send = move |e: Setup| {
                        let _ = event_tx.send((id, e));
                    };
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            send(Setup::Failed(Error::Internal(format!(
                                "cannot start a runtime: {e}"
                            ))));
                            return;
                        }
                    };
                    rt.block_on(async move {
                        send(Setup::Waiting);
                        match start_rx.wait_for(|g| *g != Go::Wait).await {
                            Ok(g) if *g == Go::Run => {}
                            _ => return,
                        }
                        // On this thread: its runtime drives the connection.
                        let conn = match connect_client(&shared).await {
                            Ok(c) => c,
                            Err(e) => return send(Setup::Failed(e)),
                        };
                        send(Setup::Connected(Instant::now()));
                        let slot = match prepare_opened(conn, &shared.workload).await {
                            Ok(s) => s,
                            Err(e) => return send(Setup::Failed(e)),
                        };
                        shared.watch(&slot);
                        send(Setup::Prepared);
                        drop(send);
                        match go_rx.wait_for(|g| *g != Go::Wait).await {
                            Ok(g) if *g == Go::Run => {}
                            _ => return,
                        }
                        // As a task, not the block_on future itself: task-to-task wake-ups
                        // stay in the local run queue, with no extra poll of the I/O driver.
                        let _ = tokio::spawn(client(shared, id, Some(slot))).await;
                    });
                });
            if let Err(e) = spawned {
                let _ = start_tx.send(Go::Abort);
                let _ = go_tx.send(Go::Abort);
                return Err(Error::Internal(format!(
                    "cannot start a client thread: {e}"
                )));
            }
        }
        drop(event_tx);
        drop(done_tx);

        // Every thread waits at the start line (or failed); then all connect at once.
        let mut first_error: Option<Error> = None;
        let mut waiting = 0;
        while waiting < n {
            match event_rx.recv().await {
                Some((_, Setup::Waiting)) => waiting += 1,
                Some((id, Setup::Failed(e))) => {
                    first_error.get_or_insert(setup_error(e, id, n));
                    break;
                }
                // Cannot happen before the start; every thread gone without a word.
                Some(_) | None => break,
            }
        }
        if waiting < n {
            let _ = start_tx.send(Go::Abort);
            let _ = go_tx.send(Go::Abort);
            return Err(first_error.unwrap_or_else(|| {
                Error::Internal("a client thread ended before connecting".into())
            }));
        }
        let setup_start = Instant::now();
        let _ = start_tx.send(Go::Run);
        let mut last_connected = setup_start;
        while let Some((id, event)) = event_rx.recv().await {
            match event {
                Setup::Connected(at) => last_connected = last_connected.max(at),
                Setup::Failed(e) => {
                    first_error.get_or_insert(setup_error(e, id, n));
                }
                Setup::Waiting | Setup::Prepared => {}
            }
        }
        if let Some(e) = first_error {
            let _ = go_tx.send(Go::Abort);
            return Err(e);
        }
        Ok(Clients {
            running: Running::Threads {
                go: go_tx,
                done: done_rx,
            },
            pool_setup: last_connected - setup_start,
        })
    }

    /// The pool's connections opened at once on this runtime, prepared, then `clients` tasks.
    async fn tasks(shared: &Arc<Shared>, opts: &BenchOptions) -> Result<Self> {
        let setup_start = Instant::now();
        let opened = futures_util::future::join_all(
            (0..opts.connections).map(|_| db::connect(&shared.target)),
        )
        .await;
        let pool_setup = setup_start.elapsed();
        let mut conns = Vec::with_capacity(opened.len());
        for (i, c) in opened.into_iter().enumerate() {
            conns.push(c.map_err(|e| setup_error(e, i, opts.connections))?);
        }
        let prepared = futures_util::future::join_all(
            conns.into_iter().map(|c| prepare_all(c, &shared.workload)),
        )
        .await;
        let mut slots = Vec::with_capacity(prepared.len());
        for s in prepared {
            let slot = s?;
            shared.watch(&slot);
            slots.push(slot);
        }
        let pool = shared
            .pool
            .as_ref()
            .expect("shared connections have a pool");
        for slot in slots {
            pool.add(slot);
        }
        Ok(Clients {
            running: Running::Tasks {
                set: JoinSet::new(),
                pending: (0..opts.clients).collect(),
                shared: shared.clone(),
            },
            pool_setup,
        })
    }

    fn go(&mut self) {
        match &mut self.running {
            Running::Threads { go, .. } => {
                let _ = go.send(Go::Run);
            }
            Running::Tasks {
                set,
                pending,
                shared,
            } => {
                for id in pending.drain(..) {
                    set.spawn(client(shared.clone(), id, None));
                }
            }
        }
    }

    /// Waits for every client to end, at most `bound`; false when some were abandoned.
    async fn join(&mut self, bound: Duration) -> bool {
        match &mut self.running {
            Running::Threads { done, .. } => {
                tokio::time::timeout(bound, async { while done.recv().await.is_some() {} })
                    .await
                    .is_ok()
            }
            Running::Tasks { set, .. } => {
                let drained =
                    tokio::time::timeout(bound, async { while set.join_next().await.is_some() {} })
                        .await
                        .is_ok();
                if !drained {
                    set.abort_all();
                }
                drained
            }
        }
    }
}

fn summarise(
    shared: &Shared,
    opts: &BenchOptions,
    facts: &ServerFacts,
    pool_setup: Duration,
    duration: Duration,
    outcome: Outcome,
    error: Option<String>,
) -> BenchResult {
    let workload = &shared.workload;
    let mut merged = Shard::new(workload);
    for shard in &shared.shards {
        let sh = shard.lock().unwrap_or_else(|p| p.into_inner());
        for (m, s) in merged.scripts.iter_mut().zip(&sh.scripts) {
            let _ = m.total.add(&s.total);
            let _ = m.wait.add(&s.wait);
            let _ = m.exec.add(&s.exec);
            add_errors(&mut m.errors, &s.errors);
            for (ms, ss) in m.statements.iter_mut().zip(&s.statements) {
                let _ = ms.hist.add(&ss.hist);
                add_errors(&mut ms.errors, &ss.errors);
            }
        }
    }
    let secs = duration.as_secs_f64();
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let (mut total, mut wait, mut exec) = (new_histogram(), new_histogram(), new_histogram());
    let mut scripts = Vec::with_capacity(workload.scripts.len());
    for (script, m) in workload.scripts.iter().zip(merged.scripts) {
        let _ = total.add(&m.total);
        let _ = wait.add(&m.wait);
        let _ = exec.add(&m.exec);
        let statements = script
            .statements
            .iter()
            .zip(m.statements)
            .map(|(st, ms)| StatementResult {
                name: st.name.clone(),
                sql: st.sql.clone(),
                line: st.line,
                count: ms.hist.len(),
                errors: ms.errors,
                mean_ms: if ms.hist.is_empty() {
                    0.0
                } else {
                    ms.hist.mean() / 1000.0
                },
                p99_ms: ms.hist.value_at_quantile(0.99) as f64 / 1000.0,
            })
            .collect();
        scripts.push(ScriptResult {
            name: script.name.clone(),
            weight: script.weight,
            count: m.total.len(),
            errors: m.errors,
            throughput_tps: per_sec(m.total.len()),
            latency: Latency::from_histogram(&m.total),
            statements,
        });
    }
    let transactions = total.len();
    let error_count = scripts.iter().map(|s| s.error_count()).sum();
    let scale = match workload.scripts.first().map(|s| &s.initial[SLOT_SCALE]) {
        Some(Value::Int(n)) => *n,
        _ => 1,
    };
    BenchResult {
        schema_version: RESULT_SCHEMA_VERSION,
        pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: workload.name.clone(),
        server_version: facts.server_version.clone(),
        host: shared.target.hosts.first().map(|h| h.label()),
        scale,
        clients: opts.clients,
        connections: opts.connections,
        rate: opts.rate,
        warmup_s: opts.warmup.as_secs_f64(),
        duration_s: secs,
        transactions,
        errors: error_count,
        throughput_tps: per_sec(transactions),
        pool_setup_ms: pool_setup.as_secs_f64() * 1000.0,
        one_connect_ms: facts.one_connect.as_secs_f64() * 1000.0,
        connections_lost: shared.lost.load(Ordering::Relaxed),
        outcome,
        error,
        latency: Latency::from_histogram(&total),
        wait: Latency::from_histogram(&wait),
        exec: Latency::from_histogram(&exec),
        scripts,
    }
}

fn add_errors(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (code, n) in from {
        *into.entry(code.clone()).or_insert(0) += n;
    }
}

fn moments(shared: &Shared) -> Moments {
    let mut all = Moments::default();
    for shard in &shared.shards {
        let m = shard.lock().expect("not poisoned").moments;
        all.count += m.count;
        all.sum_us += m.sum_us;
        all.sum_sq_us += m.sum_sq_us;
        all.failed += m.failed;
    }
    all
}

/// One `--progress` line: throughput, latency mean and standard deviation, and failures of
/// the transactions that ended since the last line (as `pgbench -P`).
fn progress_line(at: Duration, dt: Duration, then: Moments, now: Moments) -> String {
    let n = now.count - then.count;
    let tps = n as f64 / dt.as_secs_f64().max(1e-9);
    let (mean, stddev) = if n == 0 {
        (0.0, 0.0)
    } else {
        let mean = (now.sum_us - then.sum_us) / n as f64;
        let var = ((now.sum_sq_us - then.sum_sq_us) / n as f64 - mean * mean).max(0.0);
        (mean / 1000.0, var.sqrt() / 1000.0)
    };
    format!(
        "progress: {:.1} s, {tps:.1} tps, lat {mean:.3} ms stddev {stddev:.3}, {} failed",
        at.as_secs_f64(),
        now.failed - then.failed
    )
}

/// The phase of the bench's progress events.
pub const PHASE: &str = "bench";

/// `--progress N`: a [`Kind::Line`] event every N seconds of the measured part (shown on a
/// terminal and in a pipe alike). Without it, an [`Kind::Update`] every second (a live line
/// where there is a terminal), and [`Kind::Finish`] when the task ends.
fn spawn_progress(
    shared: Arc<Shared>,
    every: Option<Duration>,
    sink: Arc<dyn Progress>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let measure_start = shared.measure_start();
        if let Some(every) = every {
            let mut last = (measure_start, Moments::default());
            let mut next = measure_start + every;
            loop {
                tokio::time::sleep_until(next).await;
                let now = moments(&shared);
                sink.event(
                    Event::update(PHASE, Unit::Transactions, now.count, None)
                        .kind(Kind::Line)
                        .message(progress_line(
                            next - measure_start,
                            next - last.0,
                            last.1,
                            now,
                        )),
                );
                last = (next, now);
                next += every;
            }
        }
        // Finished however the task ends (done or aborted).
        struct Clear(Arc<dyn Progress>);
        impl Drop for Clear {
            fn drop(&mut self) {
                self.0
                    .event(Event::update(PHASE, Unit::Transactions, 0, None).kind(Kind::Finish));
            }
        }
        let bar = Clear(sink);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), Moments::default());
        loop {
            tick.tick().await;
            let now = Instant::now();
            if now < measure_start {
                let left = measure_start - now;
                bar.0.event(
                    Event::update(PHASE, Unit::Transactions, 0, None)
                        .message(format!("warming up, {:.0}s left", left.as_secs_f64())),
                );
                continue;
            }
            if last.0 < measure_start {
                last = (measure_start, Moments::default());
            }
            let dt = now.duration_since(last.0);
            if dt.as_secs_f64() < 0.2 {
                // A tick right after the warm-up ended: too short to be a rate.
                continue;
            }
            let m = moments(&shared);
            bar.0.event(
                Event::update(PHASE, Unit::Transactions, m.count, None).message(progress_line(
                    now.duration_since(measure_start),
                    dt,
                    last.1,
                    m,
                )),
            );
            last = (now, m);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_has_the_rate_latency_and_failures_of_its_interval() {
        let then = Moments {
            count: 100,
            sum_us: 100_000.0,
            sum_sq_us: 100_000_000.0,
            failed: 1,
        };
        // 10 more transactions of 2 ms and 4 ms (mean 3, stddev 1), 2 more failures.
        let now = Moments {
            count: 110,
            sum_us: 100_000.0 + 5.0 * 2000.0 + 5.0 * 4000.0,
            sum_sq_us: 100_000_000.0 + 5.0 * 4e6 + 5.0 * 16e6,
            failed: 3,
        };
        let line = progress_line(Duration::from_secs(5), Duration::from_secs(2), then, now);
        assert_eq!(
            line,
            "progress: 5.0 s, 5.0 tps, lat 3.000 ms stddev 1.000, 2 failed"
        );
    }

    #[test]
    fn one_connect_is_the_median_so_one_cold_or_disturbed_connect_does_not_set_it() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(9), ms(2), ms(3)]), ms(3));
        assert_eq!(median(&mut [ms(1), ms(2), ms(30)]), ms(2));
        assert_eq!(median(&mut [ms(4)]), ms(4));
    }
}
