//! The runner: N client tasks over M connections, each execution timed into a per-operation
//! HdrHistogram, failures counted by SQLSTATE.
//!
//! - Set-up: single connects timed alone, the median taken ([`probe`], which also checks that
//!   M more connections fit), then all M connects started at one instant (pool set-up time,
//!   connects only), then every operation prepared once on each.
//! - N == M: each client owns its connection, no pool in the way, and runs on a thread of its
//!   own whose current-thread runtime also drives the connection (like pgbench's `-j N`). N >
//!   M: client tasks on the caller's runtime, where a FIFO semaphore hands out free
//!   connections; the wait is bounded and counted as `pool_timeout` when it runs out.
//! - No timer per execution: a watchdog sends a cancel request for any execution running
//!   longer than statement_timeout plus slack (the server's own statement_timeout fires
//!   first; this covers a server that stopped answering).
//! - Latency counts from the moment a client wants to run an operation (its scheduled start
//!   under `--rate`) until the server answered, pool wait included.
//! - A failed statement is counted and the client goes on. A broken connection is replaced
//!   once; when that fails it is dropped, and when none is left the run ends as failed with
//!   the partial result.
//! - The hot loop takes no shared lock but its own statistics shard's (uncontended when N ==
//!   M) and allocates only the parameters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use super::options::{BenchOptions, StopAt};
use super::result::{BenchResult, Latency, OperationResult, Outcome, RESULT_SCHEMA_VERSION};
use super::workload::Workload;
use crate::db::{self, Conn, Target};
use crate::error::{Error, Result};

const CAPACITY_SQL: &str = include_str!("../sql/bench_capacity.sql");

/// Client-side slack over statement_timeout before an execution is cancelled.
const CLIENT_SLACK: Duration = Duration::from_secs(2);

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

/// One connection with every operation prepared on it.
struct Slot {
    conn: Conn,
    stmts: Vec<Statement>,
    /// When the running execution started, in µs since [`Shared::epoch`] plus 1; 0 = idle.
    /// Read by the watchdog, which cancels executions over the limit.
    busy_since: AtomicU64,
    /// The watchdog sent a cancel request for the running execution.
    cancelled: AtomicBool,
}

async fn prepare_all(conn: Conn, workload: &Workload) -> Result<Arc<Slot>> {
    let limit = conn.statement_timeout() + CLIENT_SLACK;
    let mut stmts = Vec::with_capacity(workload.ops.len());
    for op in &workload.ops {
        let prepared =
            tokio::time::timeout(limit, conn.client().prepare_typed(&op.sql, &op.param_types))
                .await
                .map_err(|_| Error::Timeout {
                    what: format!("preparing operation {}", op.name),
                    after: limit,
                    next_step: None,
                })?;
        match prepared {
            Ok(s) => stmts.push(s),
            Err(e) => {
                let err = Error::query(format!("preparing operation {}", op.name), e);
                // Syntax errors, unknown tables and columns: the workload is wrong.
                if err.sqlstate().is_some_and(|c| c.code().starts_with("42")) {
                    return Err(Error::BadInput(format!(
                        "{err}. Check the statement of {} against the database:\n  {}",
                        op.name, op.sql
                    )));
                }
                return Err(err);
            }
        }
    }
    Ok(Arc::new(Slot {
        conn,
        stmts,
        busy_since: AtomicU64::new(0),
        cancelled: AtomicBool::new(false),
    }))
}

async fn open_slot(target: &Target, workload: &Workload) -> Result<Arc<Slot>> {
    let conn = db::connect(target).await?;
    prepare_all(conn, workload).await
}

/// Per-operation statistics of a group of clients.
struct Shard {
    hists: Vec<Histogram<u64>>,
    errors: Vec<BTreeMap<String, u64>>,
}

impl Shard {
    fn new(ops: usize) -> Self {
        Shard {
            hists: (0..ops).map(|_| new_histogram()).collect(),
            errors: vec![BTreeMap::new(); ops],
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits: memory grows with the largest latency seen.
    Histogram::new(3).expect("3 significant digits is valid")
}

/// Connections shared by more clients than there are connections.
struct Pool {
    free: Mutex<Vec<Arc<Slot>>>,
    permits: Semaphore,
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
    checkout_limit: Duration,
    pool: Option<Pool>,
    live: AtomicUsize,
    lost: AtomicU64,
    failure: Mutex<Option<String>>,
    /// Every open connection, for the watchdog.
    watched: Mutex<Vec<std::sync::Weak<Slot>>>,
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
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    fn measure_start(&self) -> Instant {
        *self.measure_start.get().expect("set before clients start")
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
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
                pool.permits.close();
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

fn classify(e: &tokio_postgres::Error, closed: bool) -> Failure {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let broken = closed
            || code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW;
        return Failure {
            code: code.code().to_string(),
            broken,
            message: format!("{}: {}", code.code(), db.message()),
        };
    }
    let broken = closed || e.is_closed();
    Failure {
        // 08006 connection_failure: the connection went away without a server message.
        code: if broken { "08006" } else { "client_error" }.to_string(),
        broken,
        message: e.to_string(),
    }
}

/// Runs one operation on `slot`. No timer per execution: the watchdog cancels executions
/// that run over the client-side limit.
async fn execute(
    shared: &Shared,
    slot: &Slot,
    idx: usize,
    params: &[super::workload::Param],
) -> std::result::Result<(), Failure> {
    let args = params.iter().map(|p| &**p as &(dyn ToSql + Sync));
    slot.busy_since.store(shared.now_us(), Ordering::Relaxed);
    let r = slot.conn.client().execute_raw(&slot.stmts[idx], args).await;
    slot.busy_since.store(0, Ordering::Relaxed);
    let cancelled = slot.cancelled.swap(false, Ordering::Relaxed);
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut f = classify(&e, slot.conn.is_closed());
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

/// Every 250 ms: sends a cancel request for each execution running longer than the limit
/// (the server's statement_timeout plus slack), once per execution.
fn spawn_watchdog(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let limit_us = shared.exec_limit.as_micros() as u64;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
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
                    tokio::spawn(async move { slot.conn.cancel_running().await });
                }
            }
        }
    })
}

/// Replaces a broken connection, or gives it up. Returns the new one.
async fn replace(shared: &Shared, why: String) -> Option<Arc<Slot>> {
    if shared.stopped() {
        shared.lost.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    match open_slot(&shared.target, &shared.workload).await {
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

async fn client(shared: Arc<Shared>, id: usize, mut own: Option<Arc<Slot>>) {
    let mut rng = SmallRng::seed_from_u64(shared.seed.wrapping_add(id as u64));
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
        let idx = shared.workload.pick(&mut rng);
        let params = (shared.workload.ops[idx].params)(&mut rng);

        let outcome = if pooled {
            let pool = shared.pool.as_ref().expect("pooled clients have a pool");
            let permit =
                match tokio::time::timeout(shared.checkout_limit, pool.permits.acquire()).await {
                    Ok(Ok(p)) => p,
                    // Closed: no connection left.
                    Ok(Err(_)) => break,
                    Err(_) => {
                        if measured {
                            let mut s = shard.lock().expect("not poisoned");
                            *s.errors[idx].entry("pool_timeout".into()).or_insert(0) += 1;
                        }
                        continue;
                    }
                };
            let slot = pool.free.lock().expect("not poisoned").pop();
            let Some(slot) = slot else {
                // Cannot happen: a permit means a free slot. Give the permit back.
                drop(permit);
                continue;
            };
            let outcome = execute(&shared, &slot, idx, &params).await;
            let slot = match &outcome {
                Err(f) if f.broken => replace(&shared, f.message.clone()).await,
                _ => Some(slot),
            };
            match slot {
                Some(slot) => {
                    pool.free.lock().expect("not poisoned").push(slot);
                    drop(permit);
                }
                None => permit.forget(),
            }
            outcome
        } else {
            let Some(slot) = own.as_ref() else { break };
            let outcome = execute(&shared, slot, idx, &params).await;
            if let Err(f) = &outcome {
                if f.broken {
                    own = replace(&shared, f.message.clone()).await;
                }
            }
            outcome
        };
        if measured {
            let mut s = shard.lock().expect("not poisoned");
            match outcome {
                Ok(()) => {
                    let us = start.elapsed().as_micros().max(1) as u64;
                    let _ = s.hists[idx].record(us);
                }
                Err(f) => *s.errors[idx].entry(f.code).or_insert(0) += 1,
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
) -> Result<BenchResult> {
    opts.validate()?;
    let workload = Arc::new(workload);
    let exec_limit = target.statement_timeout + CLIENT_SLACK;
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let dedicated = opts.clients == opts.connections;
    let shared = Arc::new(Shared {
        target: target.clone(),
        shards: (0..opts.clients.min(MAX_SHARDS))
            .map(|_| Mutex::new(Shard::new(workload.ops.len())))
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
        checkout_limit: exec_limit + Duration::from_secs(1),
        pool: (!dedicated).then(|| Pool {
            permits: Semaphore::new(opts.connections),
            free: Mutex::new(Vec::new()),
        }),
        live: AtomicUsize::new(opts.connections),
        lost: AtomicU64::new(0),
        failure: Mutex::new(None),
        watched: Mutex::new(Vec::new()),
        epoch: std::time::Instant::now(),
    });

    // Pool set-up: every connection at once; the time until the last one is connected.
    let mut clients = if dedicated {
        Clients::threads(&shared, opts.connections).await?
    } else {
        Clients::tasks(&shared, opts).await?
    };
    let pool_setup = clients.pool_setup;

    let measure_start = Instant::now() + opts.warmup;
    shared.measure_start.set(measure_start).expect("set once");
    clients.go();
    let progress = opts.progress.then(|| spawn_progress(shared.clone()));
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
                        let conn = match db::connect(&shared.target).await {
                            Ok(c) => c,
                            Err(e) => return send(Setup::Failed(e)),
                        };
                        send(Setup::Connected(Instant::now()));
                        let slot = match prepare_all(conn, &shared.workload).await {
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
        shared
            .pool
            .as_ref()
            .expect("shared connections have a pool")
            .free
            .lock()
            .expect("not poisoned")
            .extend(slots);
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
    let ops = &shared.workload.ops;
    let mut hists: Vec<Histogram<u64>> = (0..ops.len()).map(|_| new_histogram()).collect();
    let mut errors: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); ops.len()];
    for shard in &shared.shards {
        let s = shard.lock().unwrap_or_else(|p| p.into_inner());
        for (i, h) in s.hists.iter().enumerate() {
            let _ = hists[i].add(h);
        }
        for (i, e) in s.errors.iter().enumerate() {
            for (code, n) in e {
                *errors[i].entry(code.clone()).or_insert(0) += n;
            }
        }
    }
    let secs = duration.as_secs_f64();
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let mut total = new_histogram();
    let mut operations = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let _ = total.add(&hists[i]);
        operations.push(OperationResult {
            name: op.name.clone(),
            count: hists[i].len(),
            errors: std::mem::take(&mut errors[i]),
            throughput_tps: per_sec(hists[i].len()),
            latency: Latency::from_histogram(&hists[i]),
        });
    }
    let transactions = total.len();
    let error_count = operations.iter().map(|o| o.error_count()).sum();
    BenchResult {
        schema_version: RESULT_SCHEMA_VERSION,
        pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: shared.workload.name.clone(),
        server_version: facts.server_version.clone(),
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
        operations,
    }
}

/// A line on stderr every second: throughput of the last second, p99 so far, errors. Hidden
/// when stderr is not a terminal.
fn spawn_progress(shared: Arc<Shared>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new_spinner();
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        // Cleared however the task ends (finished or aborted).
        struct Clear(indicatif::ProgressBar);
        impl Drop for Clear {
            fn drop(&mut self) {
                self.0.finish_and_clear();
            }
        }
        let bar = Clear(bar);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), 0u64);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let Some(&measure_start) = shared.measure_start.get() else {
                continue;
            };
            if now < measure_start {
                let left = measure_start - now;
                bar.0
                    .set_message(format!("warming up, {:.0}s left", left.as_secs_f64()));
                continue;
            }
            let mut total = new_histogram();
            let mut errors = 0u64;
            for shard in &shared.shards {
                let s = shard.lock().expect("not poisoned");
                for h in &s.hists {
                    let _ = total.add(h);
                }
                errors += s.errors.iter().flat_map(|e| e.values()).sum::<u64>();
            }
            let count = total.len();
            if last.0 < measure_start {
                last = (measure_start, 0);
            }
            let dt = now.duration_since(last.0).as_secs_f64();
            if dt < 0.2 {
                // A tick right after the warm-up ended: too short to be a rate.
                continue;
            }
            let tps = count.saturating_sub(last.1) as f64 / dt;
            last = (now, count);
            bar.0.set_message(format!(
                "{:>4.0}s  {:>9.0} tps  p99 {:.2} ms  {} done  {} errors",
                now.duration_since(measure_start).as_secs_f64(),
                tps,
                total.value_at_quantile(0.99) as f64 / 1000.0,
                count,
                errors
            ));
            bar.0.tick();
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connect_is_the_median_so_one_cold_or_disturbed_connect_does_not_set_it() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut [ms(9), ms(2), ms(3)]), ms(3));
        assert_eq!(median(&mut [ms(1), ms(2), ms(30)]), ms(2));
        assert_eq!(median(&mut [ms(4)]), ms(4));
    }
}
