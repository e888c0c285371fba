//! The failover-aware pool the governance services link: [`PgPool`].
//!
//! What it guarantees:
//! - **Every wait is bounded.** A checkout waits at most `checkout_wait` for a place, then at
//!   most `failover_wait` (plus the probe under way, itself bounded by the target's
//!   `connect_timeout`) for a server of the wanted role. Each connect, probe and health check
//!   is bounded by `connect_timeout`, so a host that accepts TCP and never answers delays
//!   nothing beyond it.
//! - **It follows the primary.** After a connection-level error, a shutdown (57P01, 57P02,
//!   57P03) or, in a write pool, a read-only server (25006) — the one classification of
//!   [`crate::broken`] — it drops that connection and every idle one to the same host, and
//!   probes **all** hosts at once (`pg_is_in_recovery()`, `transaction_read_only`) to find the
//!   primary again. One probe round runs at a time; checkouts that need it wait for its result.
//!   Write checkouts are held (bounded) until a primary answers. A demoted primary still
//!   answers `SELECT 1`, so a write pool's health check asks for the role instead.
//! - **Reads prefer standbys.** A [`Role::Read`] pool goes to standbys and falls back to the
//!   primary when none answers (and looks for standbys again now and then).
//! - **A connection never goes back busy.** A statement whose future was dropped half-way
//!   ([`Conn::interrupted`], or [`PgPool::run`]'s work dropped) is cancelled on the server, and
//!   the connection stays counted in use until the session is quiet again (or is closed).
//! - **Sizes hold.** At most `max_size` connections are open; `min_size` are kept open (a
//!   background task refills after losses); idle ones over `idle_timeout` are closed down to
//!   `min_size`; none outlives `max_lifetime`.
//!
//! It must not: classify errors on its own (it asks [`Broken`]), hold a lock across an await,
//! or let one checkout's probe of a dead host stall the others.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tokio_postgres::Statement;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::broken::Broken;
use crate::connect::{connect_host, HostFailure};
use crate::error::{Error, Result};
use crate::stmt_cache::StmtCache;
use crate::target::{Target, TargetRole};
use crate::timers::{Op, Timers};
use crate::Conn;

/// The pause between two probe rounds while no server of the wanted role answers.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How often a read pool that fell back to the primary looks for a standby again.
const LOOK_FOR_STANDBYS_EVERY: Duration = Duration::from_secs(5);

/// Which servers a pool's connections go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The primary (`target_session_attrs=read-write`): every write goes here.
    #[default]
    Write,
    /// A standby when one answers, the primary otherwise (`prefer-standby`).
    Read,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Write => "write",
            Role::Read => "read",
        }
    }
}

/// How a [`PgPool`] behaves. [`Default`] gives sizes 1..=10 and bounded waits.
#[derive(Debug, Clone)]
pub struct PgPoolOptions {
    /// Connections opened at start and kept open (refilled in the background after losses).
    pub min_size: usize,
    /// Connections open at most (at least 1 and at least `min_size`, else
    /// [`PgPool::connect`] refuses the options).
    pub max_size: usize,
    /// The longest a checkout waits for a free connection (then [`Error::Timeout`] naming
    /// the pool as exhausted, its size and the wait).
    pub checkout_wait: Duration,
    /// A connection older than this is closed when it comes back or is found idle (none:
    /// kept).
    pub max_lifetime: Option<Duration>,
    /// A connection idle longer than this is closed (down to `min_size`; none: kept).
    pub idle_timeout: Option<Duration>,
    /// A connection idle this long is checked (bounded by the target's connect_timeout)
    /// before it is handed out: `SELECT 1` in a read pool, the server's role in a write pool.
    pub check_after_idle: Duration,
    /// The session's statement_timeout (every statement is also bounded client-side).
    pub statement_timeout: Duration,
    /// The session's application_name.
    pub application_name: String,
    /// Prepared statements kept per connection by [`PooledConn::prepare_cached`] (0: none).
    pub statement_cache: usize,
    /// How long checkouts are held while no server of the wanted role answers (after a
    /// failover, or at [`PgPool::connect`]); then an error naming each host and why.
    pub failover_wait: Duration,
    /// Which servers the connections go to.
    pub role: Role,
}

impl Default for PgPoolOptions {
    fn default() -> Self {
        PgPoolOptions {
            min_size: 1,
            max_size: 10,
            checkout_wait: Duration::from_secs(5),
            max_lifetime: Some(Duration::from_secs(30 * 60)),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            check_after_idle: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(30),
            application_name: "pgopt-pool".to_string(),
            statement_cache: 64,
            failover_wait: Duration::from_secs(30),
            role: Role::Write,
        }
    }
}

/// Whether [`PgPool::run`] may run the caller's work a second time after a failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read, or a statement the caller marks idempotent: retried once on a new
    /// connection after a connection-level error, a shutdown (57P01/57P02/57P03) or a
    /// read-only server (25006).
    Once,
    /// A write that must not run twice: the error is returned and the caller decides.
    Never,
}

/// What a pool holds and has seen, for a stats endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle + in use + being opened).
    pub open: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Connections checked out (including interrupted ones being made quiet).
    pub in_use: usize,
    /// Failovers seen (a connection-level error, a shutdown, a failed connect or a read-only
    /// primary that made the pool drop a host's connections and look for the primary again).
    pub failovers: u64,
    /// Checkouts that ran out of `checkout_wait`.
    pub exhausted: u64,
    /// Checkouts that found every connection in use and had to wait.
    pub waits: u64,
    /// Probe rounds over all hosts (one at a start, one per failover at least).
    pub resolutions: u64,
    /// Connections opened (probes kept as connections included).
    pub connects: u64,
    /// Idle connections that failed their health check.
    pub health_check_failures: u64,
    /// Connections closed for `idle_timeout`.
    pub closed_idle: u64,
    /// Connections closed for `max_lifetime`.
    pub closed_expired: u64,
    /// Connections that came back with a statement still running (a dropped future).
    pub interrupted: u64,
    /// [`PooledConn::prepare_cached`] calls answered from the cache.
    pub statement_cache_hits: u64,
    /// [`PooledConn::prepare_cached`] calls that prepared on the server.
    pub statement_cache_misses: u64,
}

/// The boxed future [`PgPool::run`]'s work returns: it borrows the connection.
pub type Work<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// One connection with what the pool knows of it.
struct Slot {
    conn: Conn,
    /// Index in the target's host list.
    host: usize,
    /// The host's epoch when the connection was made: older ones are dropped.
    epoch: u64,
    born: Instant,
    /// Idle since (when in the idle list).
    since: Instant,
    cache: Mutex<StmtCache<Statement>>,
}

/// What the last probe round found out about one host, for error messages.
#[derive(Debug, Clone)]
struct HostReport {
    label: String,
    what: String,
    answered: bool,
}

struct State {
    /// Most recently returned last (taken from the back; the front ages out).
    idle: VecDeque<Slot>,
    /// Idle + in use + being opened.
    open: usize,
    closed: bool,
    /// Per host: bumped at each failover of the host.
    epochs: Vec<u64>,
    primary: Option<usize>,
    standbys: Vec<usize>,
    next_standby: usize,
    resolutions: u64,
    resolved_at: Option<Instant>,
    report: Vec<HostReport>,
    /// The last probe round met an authentication failure: no point in waiting.
    auth_failure: Option<String>,
}

#[derive(Default)]
struct Counters {
    in_use: AtomicUsize,
    failovers: AtomicU64,
    exhausted: AtomicU64,
    waits: AtomicU64,
    connects: AtomicU64,
    health_check_failures: AtomicU64,
    closed_idle: AtomicU64,
    closed_expired: AtomicU64,
    interrupted: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

struct Inner {
    target: Target,
    tls: Option<MakeRustlsConnect>,
    opts: PgPoolOptions,
    /// One permit per checked-out connection (and per background connect under way).
    slots: Arc<Semaphore>,
    state: Mutex<State>,
    /// One probe round at a time.
    resolving: tokio::sync::Mutex<()>,
    /// Wakes the background task to refill after a loss.
    refill: Notify,
    counters: Counters,
    timers: Arc<Timers>,
}

/// A failover-aware pool of connections to one target. Cheap to clone (shared).
///
/// ```no_run
/// # async fn demo() -> pgopt_pool::Result<()> {
/// use pgopt_pool::{PgPool, PgPoolOptions, Retry, Role, Target};
///
/// let target = Target::parse("host=db1,db2 port=5432 dbname=acgs user=app")?;
/// let writes = PgPool::connect(&target, PgPoolOptions::default()).await?;
/// let reads = PgPool::connect(
///     &target,
///     PgPoolOptions { role: Role::Read, ..PgPoolOptions::default() },
/// )
/// .await?;
/// // A write that must not run twice: after a failover the error comes back.
/// writes
///     .op("record_security_event")
///     .run(Retry::Never, |c| {
///         Box::pin(async move {
///             c.execute("insert", "INSERT INTO events(kind) VALUES ($1)", &[&"login"])
///                 .await
///         })
///     })
///     .await?;
/// // A read: retried once on a new connection after a failover.
/// let n: i64 = reads
///     .run(Retry::Once, |c| {
///         Box::pin(async move {
///             let stmt = c.prepare_cached("SELECT count(*) FROM events").await?;
///             let row = c.client().query_one(&stmt, &[]).await
///                 .map_err(|e| pgopt_pool::Error::query("count events", e))?;
///             Ok(row.get(0))
///         })
///     })
///     .await?;
/// # let _ = n;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

/// A connection checked out of a [`PgPool`]; it goes back when dropped (closed instead
/// when it broke or outlived `max_lifetime`; made quiet first when a statement was left
/// running). Derefs to [`Conn`], whose statements are bounded.
pub struct PooledConn {
    slot: Option<Slot>,
    broken: Option<Broken>,
    /// [`PgPool::run`]'s work was under way (dropped half-way if still set at drop).
    in_flight: bool,
    pool: Arc<Inner>,
    permit: Option<OwnedSemaphorePermit>,
}

fn closed_error() -> Error {
    Error::BadInput("the pool was closed: make a new one (PgPool::connect)".into())
}

/// Whether a connection dropped for `why` means its host must be looked at again.
fn starts_failover(why: Broken, role: Role) -> bool {
    match why {
        Broken::Closed | Broken::ConnectionException | Broken::Shutdown => true,
        Broken::ReadOnly => role == Role::Write,
        Broken::Fatal => false,
    }
}

/// The classification of an error the pool saw on a connection.
fn broken_of(e: &Error) -> Broken {
    e.sqlstate()
        .and_then(|c| Broken::from_sqlstate(c.code(), false))
        .unwrap_or(Broken::Closed)
}

fn failure_text(f: HostFailure) -> (String, bool) {
    match f {
        HostFailure::Auth(e) => (e.to_string(), true),
        HostFailure::NoSuchHost(m)
        | HostFailure::NotPostgres(m)
        | HostFailure::Refused(m)
        | HostFailure::Server(m)
        | HostFailure::Other(m) => (m, false),
    }
}

fn role_text(conn: &Conn) -> &'static str {
    match (conn.in_recovery, conn.transaction_read_only) {
        (true, _) => "is a standby (in recovery)",
        (false, true) => "is a primary but read-only (transaction_read_only = on)",
        (false, false) => "is the primary",
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a connection to a server in this state suits the pool.
    fn suits(&self, conn: &Conn) -> bool {
        match self.opts.role {
            Role::Write => !conn.in_recovery && !conn.transaction_read_only,
            Role::Read => true,
        }
    }

    /// The host a new connection should go to, with its epoch; none while the pool must look
    /// for one.
    fn plan(&self) -> Option<(usize, u64)> {
        let mut st = self.lock();
        let host = match self.opts.role {
            Role::Write => st.primary?,
            Role::Read if !st.standbys.is_empty() => {
                st.next_standby = st.next_standby.wrapping_add(1);
                st.standbys[st.next_standby % st.standbys.len()]
            }
            Role::Read => st.primary?,
        };
        Some((host, st.epochs[host]))
    }

    /// Takes one more place among the open connections, if there is room.
    fn reserve(&self) -> bool {
        let mut st = self.lock();
        if st.open < self.opts.max_size && !st.closed {
            st.open += 1;
            true
        } else {
            false
        }
    }

    fn unreserve(&self) {
        self.lock().open -= 1;
        self.refill.notify_one();
    }

    /// Closes a connection (dropped outside the lock); when `why` says so, the host fails over.
    fn discard(&self, slot: Slot, why: Option<Broken>) {
        let (host, epoch) = (slot.host, slot.epoch);
        self.lock().open -= 1;
        drop(slot);
        if let Some(why) = why {
            if starts_failover(why, self.opts.role) {
                self.note_failover(host, epoch);
            }
        }
        self.refill.notify_one();
    }

    /// The host failed: every idle connection to it goes, it is no longer the primary nor a
    /// standby, and the next checkout that needs it looks again. Once per host epoch.
    fn note_failover(&self, host: usize, epoch: u64) {
        let dropped: Vec<Slot> = {
            let mut st = self.lock();
            if st.epochs[host] != epoch {
                return;
            }
            st.epochs[host] += 1;
            if st.primary == Some(host) {
                st.primary = None;
            }
            st.standbys.retain(|&h| h != host);
            let (gone, kept): (VecDeque<Slot>, VecDeque<Slot>) = std::mem::take(&mut st.idle)
                .into_iter()
                .partition(|s| s.host == host);
            st.idle = kept;
            st.open -= gone.len();
            gone.into_iter().collect()
        };
        self.counters.failovers.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            host = %self.target.hosts[host].label(),
            dropped_idle = dropped.len(),
            "pool: connection-level failure; looking for the {} server again",
            if self.opts.role == Role::Write { "primary" } else { "read" }
        );
        drop(dropped);
        self.refill.notify_one();
    }

    /// Puts a connection (already counted open) back among the idle ones, unless it must go.
    fn give_back(&self, mut slot: Slot) {
        let expired = self
            .opts
            .max_lifetime
            .is_some_and(|l| slot.born.elapsed() >= l);
        // Read the clock before taking the lock (the lock is every checkout's).
        slot.since = Instant::now();
        let mut st = self.lock();
        let wrong_host = self.opts.role == Role::Write && st.primary != Some(slot.host);
        if st.closed || expired || wrong_host || st.epochs[slot.host] != slot.epoch {
            st.open -= 1;
            drop(st);
            if expired {
                self.counters.closed_expired.fetch_add(1, Ordering::Relaxed);
            }
            drop(slot);
            self.refill.notify_one();
            return;
        }
        st.idle.push_back(slot);
    }

    /// Opens one connection to host `host` (bounded by connect_timeout); not counted here.
    async fn open_slot(&self, host: usize, epoch: u64) -> std::result::Result<Slot, String> {
        let spec = &self.target.hosts[host];
        let limit = self.target.connect_timeout;
        match tokio::time::timeout(limit, connect_host(&self.target, spec, self.tls.as_ref())).await
        {
            Ok(Ok(conn)) => {
                self.counters.connects.fetch_add(1, Ordering::Relaxed);
                Ok(self.new_slot(conn, host, epoch))
            }
            Ok(Err(f)) => Err(failure_text(f).0),
            Err(_) => Err(format!(
                "no answer within {:.1}s (connect_timeout)",
                limit.as_secs_f64()
            )),
        }
    }

    fn new_slot(&self, conn: Conn, host: usize, epoch: u64) -> Slot {
        let now = Instant::now();
        Slot {
            conn,
            host,
            epoch,
            born: now,
            since: now,
            cache: Mutex::new(StmtCache::new(self.opts.statement_cache)),
        }
    }

    /// A probe round: every host at once, each bounded by connect_timeout; stops as soon as
    /// a server of the wanted role answers (a hung host delays no one). One round at a time:
    /// a caller that waited for another's round takes its result.
    async fn resolve(&self) {
        let seen = self.lock().resolutions;
        let _one = self.resolving.lock().await;
        if self.lock().resolutions != seen {
            return;
        }
        let limit = self.target.connect_timeout;
        let epochs = self.lock().epochs.clone();
        let mut probes: FuturesUnordered<_> = self
            .target
            .hosts
            .iter()
            .enumerate()
            .map(|(i, spec)| async move {
                let r = tokio::time::timeout(
                    limit,
                    connect_host(&self.target, spec, self.tls.as_ref()),
                )
                .await;
                (i, r)
            })
            .collect();
        let mut report: Vec<HostReport> = self
            .target
            .hosts
            .iter()
            .map(|h| HostReport {
                label: h.label(),
                what: "not probed to the end (another host answered first)".into(),
                answered: false,
            })
            .collect();
        let (mut primary, mut standbys, mut found) = (None, Vec::new(), Vec::new());
        let mut auth_failure = None;
        while let Some((i, r)) = probes.next().await {
            match r {
                Err(_) => {
                    report[i].what = format!(
                        "no answer within {:.1}s (connect_timeout)",
                        limit.as_secs_f64()
                    )
                }
                Ok(Err(f)) => {
                    let (text, auth) = failure_text(f);
                    if auth {
                        auth_failure = Some(text.clone());
                    }
                    report[i].what = text;
                }
                Ok(Ok(conn)) => {
                    report[i].what = role_text(&conn).into();
                    report[i].answered = true;
                    let is_primary = !conn.in_recovery && !conn.transaction_read_only;
                    let is_standby = conn.in_recovery;
                    if is_primary {
                        primary = Some(i);
                    } else if is_standby {
                        standbys.push(i);
                    }
                    self.counters.connects.fetch_add(1, Ordering::Relaxed);
                    found.push(self.new_slot(conn, i, epochs[i]));
                    let done = match self.opts.role {
                        Role::Write => is_primary,
                        Role::Read => is_standby,
                    };
                    if done {
                        break;
                    }
                }
            }
        }
        drop(probes);
        let mut surplus = Vec::new();
        {
            let mut st = self.lock();
            st.resolutions += 1;
            st.resolved_at = Some(Instant::now());
            st.report = report;
            st.auth_failure = auth_failure;
            st.primary = primary;
            st.standbys = standbys;
            if self.opts.role == Role::Write {
                // Idle connections to a server that is no longer the primary go.
                let (gone, kept): (VecDeque<Slot>, VecDeque<Slot>) = std::mem::take(&mut st.idle)
                    .into_iter()
                    .partition(|s| Some(s.host) != st.primary);
                st.idle = kept;
                st.open -= gone.len();
                surplus.extend(gone);
            }
            // The probes of servers the pool can use become its connections, room allowing.
            for slot in found {
                let usable = match self.opts.role {
                    Role::Write => Some(slot.host) == st.primary,
                    Role::Read => {
                        st.standbys.contains(&slot.host)
                            || (st.standbys.is_empty() && Some(slot.host) == st.primary)
                    }
                };
                if usable
                    && !st.closed
                    && st.open < self.opts.max_size
                    && st.epochs[slot.host] == slot.epoch
                {
                    st.open += 1;
                    st.idle.push_back(slot);
                } else {
                    surplus.push(slot);
                }
            }
        }
        drop(surplus);
        self.refill.notify_one();
    }

    /// The error when no server of the wanted role answered within the wait.
    fn no_server_error(&self, waited: Duration) -> Error {
        let st = self.lock();
        let hosts: String = st
            .report
            .iter()
            .map(|h| format!("\n  - {}: {}", h.label, h.what))
            .collect();
        if let Some(auth) = &st.auth_failure {
            return Error::Connect(format!(
                "the pool cannot log in: {auth}{hosts}\nFix the credentials; the pool does \
                 not retry an authentication failure"
            ));
        }
        let all_down = st.report.iter().all(|h| !h.answered);
        let msg = if all_down {
            format!(
                "every host of the {} pool is down (waited {:.1}s for one to answer):{hosts}\n\
                 Start the server or fix the host list (host=, port=); raise failover_wait to \
                 wait longer during a failover",
                self.opts.role.as_str(),
                waited.as_secs_f64()
            )
        } else {
            match self.opts.role {
                Role::Write => format!(
                    "no primary was found among the write pool's hosts (waited {:.1}s for one \
                     to answer as read-write):{hosts}\nPromote a standby (pg_ctl promote) or add \
                     the primary to the host list; raise failover_wait to wait longer during a \
                     failover",
                    waited.as_secs_f64()
                ),
                Role::Read => format!(
                    "no server for the read pool answered (waited {:.1}s):{hosts}\nCheck the \
                     host list and that the servers are up",
                    waited.as_secs_f64()
                ),
            }
        };
        Error::Connect(msg)
    }

    /// A place among the checked-out connections, waiting at most `checkout_wait`.
    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        match self.slots.clone().try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(TryAcquireError::Closed) => return Err(closed_error()),
            Err(TryAcquireError::NoPermits) => {}
        }
        self.counters.waits.fetch_add(1, Ordering::Relaxed);
        let wait = self.opts.checkout_wait;
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(closed_error()),
            Err(_) => {
                self.counters.exhausted.fetch_add(1, Ordering::Relaxed);
                Err(Error::Timeout {
                    what: format!(
                        "a checkout from the {} pool: the pool is exhausted (all {} connections \
                         in use for the whole wait of {:.1}s)",
                        self.opts.role.as_str(),
                        self.opts.max_size,
                        wait.as_secs_f64()
                    ),
                    after: wait,
                    next_step: Some(
                        "raise the pool's max_size or checkout_wait, or hold connections \
                         for less time"
                            .into(),
                    ),
                })
            }
        }
    }

    /// Whether an idle connection may be handed out: not closed, not too old, and (after
    /// `check_after_idle`) answering, with the right role for a write pool. `Err` says why
    /// not (`None`: just too old).
    async fn check(&self, slot: &Slot) -> std::result::Result<(), Option<Broken>> {
        if slot.conn.is_closed() {
            return Err(Some(Broken::Closed));
        }
        if self
            .opts
            .max_lifetime
            .is_some_and(|l| slot.born.elapsed() >= l)
        {
            self.counters.closed_expired.fetch_add(1, Ordering::Relaxed);
            return Err(None);
        }
        if slot.since.elapsed() < self.opts.check_after_idle {
            return Ok(());
        }
        // A demoted primary still answers SELECT 1: a write pool asks for the role.
        let sql = match self.opts.role {
            Role::Write => {
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
            }
            Role::Read => "SELECT false",
        };
        let answer = tokio::time::timeout(
            self.target.connect_timeout,
            slot.conn.client().simple_query(sql),
        )
        .await;
        let outcome = match answer {
            Err(_) => Err(Some(Broken::Closed)),
            Ok(Err(e)) => Err(Some(Broken::from_error(&e).unwrap_or(Broken::Closed))),
            Ok(Ok(msgs)) => {
                let read_only = msgs.iter().any(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0) == Some("t"),
                    _ => false,
                });
                if read_only {
                    Err(Some(Broken::ReadOnly))
                } else {
                    Ok(())
                }
            }
        };
        if outcome.is_err() {
            self.counters
                .health_check_failures
                .fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Opens connections until `min_size` are open (in parallel), if a server is known.
    async fn fill_to_min(self: &Arc<Self>) {
        let mut opening = Vec::new();
        while let Some((host, epoch)) = self.plan() {
            let Ok(permit) = self.slots.clone().try_acquire_owned() else {
                break;
            };
            {
                let mut st = self.lock();
                if st.closed || st.open >= self.opts.min_size {
                    break;
                }
                st.open += 1;
            }
            opening.push(async move {
                let r = self.open_slot(host, epoch).await;
                (permit, host, epoch, r)
            });
        }
        for (permit, host, epoch, r) in futures_util::future::join_all(opening).await {
            match r {
                Ok(slot) if self.suits(&slot.conn) => self.give_back(slot),
                Ok(slot) => self.discard(slot, Some(Broken::ReadOnly)),
                Err(why) => {
                    tracing::debug!("pool: refilling failed: {why}");
                    self.unreserve();
                    self.note_failover(host, epoch);
                }
            }
            drop(permit);
        }
    }

    /// Closes idle connections over `max_lifetime`, closed ones, and those idle over
    /// `idle_timeout` while more than `min_size` are open.
    fn reap(&self) {
        let mut gone = Vec::new();
        {
            let mut st = self.lock();
            let idle = std::mem::take(&mut st.idle);
            for slot in idle {
                let expired = self
                    .opts
                    .max_lifetime
                    .is_some_and(|l| slot.born.elapsed() >= l);
                if expired || slot.conn.is_closed() {
                    if expired {
                        self.counters.closed_expired.fetch_add(1, Ordering::Relaxed);
                    }
                    gone.push(slot);
                } else {
                    st.idle.push_back(slot);
                }
            }
            st.open -= gone.len();
            if let Some(limit) = self.opts.idle_timeout {
                while st.open > self.opts.min_size
                    && st.idle.front().is_some_and(|s| s.since.elapsed() >= limit)
                {
                    let slot = st.idle.pop_front().expect("checked");
                    st.open -= 1;
                    self.counters.closed_idle.fetch_add(1, Ordering::Relaxed);
                    gone.push(slot);
                }
            }
        }
        drop(gone);
    }

    /// The background task's round: reap, look again for the servers when needed, refill.
    async fn maintain(self: &Arc<Self>) {
        self.reap();
        let resolve = {
            let st = self.lock();
            let stale = st
                .resolved_at
                .is_none_or(|t| t.elapsed() >= LOOK_FOR_STANDBYS_EVERY);
            match self.opts.role {
                Role::Write => st.primary.is_none(),
                Role::Read => st.standbys.is_empty() && stale,
            }
        };
        if resolve {
            self.resolve().await;
        }
        self.fill_to_min().await;
    }

    /// How often the background task runs when nothing wakes it.
    fn tick(&self) -> Duration {
        [self.opts.idle_timeout, self.opts.max_lifetime]
            .into_iter()
            .flatten()
            .map(|d| d / 2)
            .fold(Duration::from_secs(1), Duration::min)
            .max(Duration::from_millis(50))
    }
}

/// The background task: reaps and refills until the pool is closed or dropped.
fn spawn_maintenance(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let tick = inner.tick();
    tokio::spawn(async move {
        loop {
            // The pool outlives its last handle by one tick at most.
            let Some(inner) = weak.upgrade() else { return };
            if inner.lock().closed {
                return;
            }
            tokio::select! {
                _ = inner.refill.notified() => {}
                _ = tokio::time::sleep(tick) => {}
            }
            inner.maintain().await;
        }
    });
}

impl PgPool {
    /// [`PgPool::connect`] with port discovery: `spec` is `HOST:FROM-TO` (as pgopt's
    /// `--discover` takes it, e.g. `db1:5432-5440`), and the pool's hosts are every port of
    /// the range on that host, with `base`'s user, database, password and TLS. It probes them
    /// all at once for a server of its role at the start and after every failover, so a
    /// primary that comes back on another port of the range is followed. A port where
    /// nothing listens costs a refused connect.
    ///
    /// Bad input: a spec that is not `HOST:FROM-TO`, or spans more than
    /// [`crate::discover::MAX_PORTS`] ports ([`Error::BadInput`]); then as
    /// [`PgPool::connect`].
    ///
    /// ```no_run
    /// # async fn example(base: pgopt_pool::Target) -> pgopt_pool::Result<()> {
    /// use pgopt_pool::{PgPool, PgPoolOptions};
    /// let pool = PgPool::connect_discover(&base, "db1:5432-5440", PgPoolOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_discover(
        base: &Target,
        spec: &str,
        opts: PgPoolOptions,
    ) -> Result<PgPool> {
        let (host, ports) = crate::discover::parse_discover_spec(spec)?;
        let mut target = base.clone();
        target.set_port_range(&host, ports);
        Self::connect(&target, opts).await
    }

    /// Opens a pool on `target` (its host list, TLS, .pgpass) with the role,
    /// statement_timeout and application_name of `opts`: probes every host at once for a
    /// server of the wanted role (holding up to `failover_wait` while none answers), then
    /// opens `min_size` connections in parallel and starts the background task that refills
    /// and reaps. Needs a tokio runtime.
    ///
    /// Bad input: an empty host list or sizes out of order ([`Error::BadInput`]); no server
    /// of the role within `failover_wait` ([`Error::Connect`] naming each host and why, e.g.
    /// "no primary was found" with each host's role when only standbys answer).
    pub async fn connect(target: &Target, opts: PgPoolOptions) -> Result<PgPool> {
        if opts.max_size == 0 || opts.min_size > opts.max_size {
            return Err(Error::BadInput(format!(
                "pool sizes min {} max {}: max must be at least 1 and at least min",
                opts.min_size, opts.max_size
            )));
        }
        if target.hosts.is_empty() {
            return Err(Error::BadInput(
                "the pool's target names no host: give host= (a comma-separated list for \
                 failover) and port="
                    .into(),
            ));
        }
        let mut target = target.clone();
        target.role = match opts.role {
            Role::Write => TargetRole::Primary,
            Role::Read => TargetRole::PreferStandby,
        };
        target.statement_timeout = opts.statement_timeout;
        target.application_name = opts.application_name.clone();
        let tls = crate::tls::make_connector(&target)?;
        let report = target
            .hosts
            .iter()
            .map(|h| HostReport {
                label: h.label(),
                what: "not probed yet".into(),
                answered: false,
            })
            .collect();
        let pool = PgPool {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(opts.max_size)),
                state: Mutex::new(State {
                    idle: VecDeque::new(),
                    open: 0,
                    closed: false,
                    epochs: vec![0; target.hosts.len()],
                    primary: None,
                    standbys: Vec::new(),
                    next_standby: 0,
                    resolutions: 0,
                    resolved_at: None,
                    report,
                    auth_failure: None,
                }),
                resolving: tokio::sync::Mutex::new(()),
                refill: Notify::new(),
                counters: Counters::default(),
                timers: Arc::new(Timers::new(Duration::from_millis(500))),
                tls,
                target,
                opts,
            }),
        };
        // The first checkout finds the server (and keeps its probe as a connection).
        drop(pool.get().await?);
        pool.inner.fill_to_min().await;
        spawn_maintenance(&pool.inner);
        Ok(pool)
    }

    /// A connection: waits at most `checkout_wait` for a free place (then
    /// [`Error::Timeout`]: the pool is exhausted), then hands out an idle connection
    /// (checked when idle over `check_after_idle`) or opens one to the current primary (a
    /// standby for a read pool). While no server of the role answers, it probes all hosts
    /// (one round at a time, shared) for at most `failover_wait`, then fails naming each host
    /// and why. After [`PgPool::close`]: [`Error::BadInput`].
    pub async fn get(&self) -> Result<PooledConn> {
        let inner = &self.inner;
        // Closing the pool closes its semaphore too: a checkout after close fails here.
        let permit = inner.acquire().await?;
        let started = Instant::now();
        let deadline = started + inner.opts.failover_wait;
        loop {
            loop {
                // One lock for the closed flag and the idle connection (the fast path).
                let slot = {
                    let mut st = inner.lock();
                    if st.closed {
                        return Err(closed_error());
                    }
                    st.idle.pop_back()
                };
                let Some(slot) = slot else {
                    break;
                };
                match inner.check(&slot).await {
                    Ok(()) => return Ok(self.hand_out(slot, permit)),
                    Err(why) => inner.discard(slot, why),
                }
            }
            let mut pause = false;
            match inner.plan() {
                Some((host, epoch)) if inner.reserve() => {
                    match inner.open_slot(host, epoch).await {
                        Ok(slot) if inner.suits(&slot.conn) => {
                            return Ok(self.hand_out(slot, permit))
                        }
                        Ok(slot) => inner.discard(slot, Some(Broken::ReadOnly)),
                        Err(why) => {
                            tracing::debug!(
                                "pool: connecting to {} failed: {why}",
                                inner.target.hosts[host].label()
                            );
                            inner.unreserve();
                            inner.note_failover(host, epoch);
                        }
                    }
                }
                Some(_) => pause = true,
                None => {
                    if Instant::now() >= deadline {
                        return Err(inner.no_server_error(started.elapsed()));
                    }
                    inner.resolve().await;
                    if inner.lock().auth_failure.is_some() {
                        return Err(inner.no_server_error(started.elapsed()));
                    }
                    pause = inner.plan().is_none();
                }
            }
            if Instant::now() >= deadline && (pause || inner.plan().is_none()) {
                return Err(inner.no_server_error(started.elapsed()));
            }
            if pause {
                tokio::time::sleep_until((Instant::now() + RETRY_PAUSE).min(deadline)).await;
            }
        }
    }

    fn hand_out(&self, slot: Slot, permit: OwnedSemaphorePermit) -> PooledConn {
        self.inner.counters.in_use.fetch_add(1, Ordering::Relaxed);
        PooledConn {
            slot: Some(slot),
            broken: None,
            in_flight: false,
            pool: self.inner.clone(),
            permit: Some(permit),
        }
    }

    /// Runs `work` on a pooled connection. After a connection-level error, a shutdown
    /// (57P01/57P02/57P03) or, in a write pool, a read-only server (25006), the connection
    /// and every idle one to its host are dropped and the pool looks for the primary again;
    /// with [`Retry::Once`] the work runs once more on a new connection (held until a
    /// primary answers, within `failover_wait`), with [`Retry::Never`] the error is returned.
    /// If this future is dropped while the work runs, the statement under way is cancelled
    /// and the connection is made quiet before anyone else gets it.
    pub async fn run<T, F>(&self, retry: Retry, mut work: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c PooledConn) -> Work<'c, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.get().await?;
            conn.in_flight = true;
            let result = work(&conn).await;
            conn.in_flight = false;
            match result {
                Err(e) if self.is_failover(&e) => {
                    conn.broken = Some(broken_of(&e));
                    drop(conn);
                    if retry == Retry::Once && attempt == 1 {
                        tracing::info!("pool: retrying once after a failover: {e}");
                        continue;
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// [`failover_error`] for this pool: a read pool takes a 25006 for the caller's mistake
    /// (a write sent to a read pool), not for a failover.
    fn is_failover(&self, e: &Error) -> bool {
        failover_error(e)
            && !(self.inner.opts.role == Role::Read && broken_of(e) == Broken::ReadOnly)
    }

    /// Times one named operation (checkout to result) in this pool's [`Timers`].
    pub fn op(&self, name: &str) -> Op<'_> {
        Op::new(self, name)
    }

    /// The operation timers (stats snapshot, Prometheus registration).
    pub fn timers(&self) -> &Arc<Timers> {
        &self.inner.timers
    }

    /// What the pool holds now and what it has seen.
    pub fn stats(&self) -> PoolStats {
        let c = &self.inner.counters;
        let (open, idle, resolutions) = {
            let st = self.inner.lock();
            (st.open, st.idle.len(), st.resolutions)
        };
        PoolStats {
            open,
            idle,
            in_use: c.in_use.load(Ordering::Relaxed),
            failovers: c.failovers.load(Ordering::Relaxed),
            exhausted: c.exhausted.load(Ordering::Relaxed),
            waits: c.waits.load(Ordering::Relaxed),
            resolutions,
            connects: c.connects.load(Ordering::Relaxed),
            health_check_failures: c.health_check_failures.load(Ordering::Relaxed),
            closed_idle: c.closed_idle.load(Ordering::Relaxed),
            closed_expired: c.closed_expired.load(Ordering::Relaxed),
            interrupted: c.interrupted.load(Ordering::Relaxed),
            statement_cache_hits: c.cache_hits.load(Ordering::Relaxed),
            statement_cache_misses: c.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// Closes the pool: idle connections are closed now, checked-out ones when they come
    /// back; waiting and later checkouts fail with [`Error::BadInput`] ("the pool was
    /// closed"). Idempotent.
    pub fn close(&self) {
        let idle = {
            let mut st = self.inner.lock();
            st.closed = true;
            let idle = std::mem::take(&mut st.idle);
            st.open -= idle.len();
            idle
        };
        self.inner.slots.close();
        drop(idle);
        self.inner.refill.notify_one();
    }
}

/// An error after which the pool drops the connection and looks for the primary again: a
/// lost connection, or a SQLSTATE that [`Broken::from_sqlstate`] calls a connection
/// exception (class 08), a shutdown (57P01/57P02/57P03) or a read-only server (25006). A
/// statement that ran out of its client-side bound ([`Error::Timeout`]: the server did not
/// even answer its own statement_timeout) counts too: the host or the network hangs, and a
/// connection handed out again would hang its next user.
pub fn failover_error(e: &Error) -> bool {
    if e.is_connection_lost() || matches!(e, Error::Timeout { .. }) {
        return true;
    }
    e.sqlstate().is_some_and(|c| {
        matches!(
            Broken::from_sqlstate(c.code(), false),
            Some(Broken::ReadOnly | Broken::Shutdown | Broken::ConnectionException)
        )
    })
}

impl PooledConn {
    /// Marks the connection broken: it is closed instead of going back, and when `why` is a
    /// connection-level failure (or a read-only server in a write pool) the pool drops
    /// every idle connection to the same host and looks for the primary again.
    pub fn set_broken(&mut self, why: Broken) {
        self.broken = Some(why);
    }

    fn slot(&self) -> &Slot {
        self.slot
            .as_ref()
            .expect("a pooled connection until dropped")
    }

    /// The prepared statement for `sql` on this connection: from the connection's cache
    /// (the `statement_cache` most recently used, by SQL text) or prepared now (bounded like
    /// every statement) and kept. The cache goes with the connection. Errors are the
    /// server's (a syntax error keeps its SQLSTATE).
    pub async fn prepare_cached(&self, sql: &str) -> Result<Statement> {
        // Noted on a cache hit too: the statement is about to run (for the slow log).
        crate::timers::note_statement(sql);
        let slot = self.slot();
        let counters = &self.pool.counters;
        let hit = slot
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sql);
        if let Some(stmt) = hit {
            counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(stmt);
        }
        counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        let stmt = slot.conn.prepare("preparing a statement", sql).await?;
        slot.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, stmt.clone());
        Ok(stmt)
    }
}

impl std::ops::Deref for PooledConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.slot().conn
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let pool = &self.pool;
        if let Some(why) = self.broken {
            pool.counters.in_use.fetch_sub(1, Ordering::Relaxed);
            pool.discard(slot, Some(why));
            return;
        }
        if slot.conn.is_closed() {
            pool.counters.in_use.fetch_sub(1, Ordering::Relaxed);
            pool.discard(slot, None);
            return;
        }
        if self.in_flight || slot.conn.interrupted() {
            pool.counters.interrupted.fetch_add(1, Ordering::Relaxed);
            // Still in use (its place held) until the server is done with the statement.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let permit = self.permit.take();
                let pool = pool.clone();
                rt.spawn(async move {
                    slot.conn.cancel_running().await;
                    let quiet = tokio::time::timeout(
                        pool.target.connect_timeout + slot.conn.statement_timeout(),
                        slot.conn.client().simple_query("SELECT 1"),
                    )
                    .await;
                    pool.counters.in_use.fetch_sub(1, Ordering::Relaxed);
                    if matches!(quiet, Ok(Ok(_))) {
                        slot.conn.clear_interrupted();
                        pool.give_back(slot);
                    } else {
                        pool.discard(slot, None);
                    }
                    drop(permit);
                });
                return;
            }
            pool.counters.in_use.fetch_sub(1, Ordering::Relaxed);
            pool.discard(slot, None);
            return;
        }
        pool.counters.in_use.fetch_sub(1, Ordering::Relaxed);
        pool.give_back(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::error::SqlState;

    fn query_error(code: SqlState) -> Error {
        Error::Query {
            context: "test".into(),
            code: Some(code),
            message: "m".into(),
            next_step: None,
        }
    }

    #[test]
    fn failover_errors_are_lost_connections_shutdowns_class_08_and_read_only() {
        for code in [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::CONNECTION_FAILURE,
            SqlState::CONNECTION_EXCEPTION,
        ] {
            assert!(failover_error(&query_error(code.clone())), "{code:?}");
        }
        assert!(failover_error(&Error::ConnectionLost {
            context: "c".into(),
            message: "m".into()
        }));
    }

    #[test]
    fn ordinary_errors_are_not_failovers() {
        for code in [
            SqlState::SYNTAX_ERROR,
            SqlState::QUERY_CANCELED,
            SqlState::UNIQUE_VIOLATION,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ] {
            assert!(!failover_error(&query_error(code.clone())), "{code:?}");
        }
        assert!(!failover_error(&Error::BadInput("x".into())));
    }

    #[test]
    fn a_statement_past_its_client_side_bound_is_a_failover() {
        // The server did not answer even its own statement_timeout: the host or the
        // network hangs (the drill's partition mode).
        assert!(failover_error(&Error::Timeout {
            what: "a statement".into(),
            after: std::time::Duration::from_secs(5),
            next_step: None,
        }));
    }

    #[test]
    fn a_read_only_server_fails_over_a_write_pool_only() {
        assert!(starts_failover(Broken::ReadOnly, Role::Write));
        assert!(!starts_failover(Broken::ReadOnly, Role::Read));
        for why in [
            Broken::Closed,
            Broken::ConnectionException,
            Broken::Shutdown,
        ] {
            assert!(starts_failover(why, Role::Read), "{why:?}");
            assert!(starts_failover(why, Role::Write), "{why:?}");
        }
        // A FATAL for one session (an idle-in-transaction timeout) closes only that one.
        assert!(!starts_failover(Broken::Fatal, Role::Write));
    }

    #[test]
    fn an_error_without_a_sqlstate_counts_as_a_closed_connection() {
        assert_eq!(
            broken_of(&Error::ConnectionLost {
                context: "c".into(),
                message: "m".into()
            }),
            Broken::Closed
        );
        assert_eq!(
            broken_of(&query_error(SqlState::ADMIN_SHUTDOWN)),
            Broken::Shutdown
        );
    }
}
