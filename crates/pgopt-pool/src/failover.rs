//! The failover-aware pool the governance services link: [`PgPool`].
//!
//! SKELETON (the lead's, for the engineers building #13 in parallel): the public API is
//! fixed here; the body below is a simple, working first version (connections from
//! [`crate::connect()`], which already walks the host list for the wanted role; a broken
//! connection is dropped with every idle one; a write checkout reconnects until a primary
//! answers or `failover_wait` runs out). The pool engineer replaces the body with the full
//! design of the issue (concurrent probing of every host, writes held while no primary
//! answers, idle timeout, max lifetime, statement cache, read pool with fallback, stats).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::broken::Broken;
use crate::error::{Error, Result};
use crate::target::{Target, TargetRole};
use crate::timers::{Op, Timers};
use crate::Conn;

/// Which servers a pool's connections go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The primary (`target_session_attrs=read-write`): every write goes here.
    #[default]
    Write,
    /// A standby when one answers, the primary otherwise (`prefer-standby`).
    Read,
}

/// How a [`PgPool`] behaves. [`Default`] gives sizes 1..=10 and bounded waits.
#[derive(Debug, Clone)]
pub struct PgPoolOptions {
    /// Connections opened at start and kept open.
    pub min_size: usize,
    /// Connections open at most.
    pub max_size: usize,
    /// The longest a checkout waits for a free connection (then [`Error::Timeout`] naming
    /// the pool as exhausted and the wait).
    pub checkout_wait: Duration,
    /// A connection older than this is closed when it comes back (none: kept).
    pub max_lifetime: Option<Duration>,
    /// A connection idle longer than this is closed (down to `min_size`).
    pub idle_timeout: Option<Duration>,
    /// A connection idle this long is checked (`SELECT 1`, bounded) before it is handed out.
    pub check_after_idle: Duration,
    /// The session's statement_timeout.
    pub statement_timeout: Duration,
    /// The session's application_name.
    pub application_name: String,
    /// Prepared statements kept per connection (0: none).
    pub statement_cache: usize,
    /// How long write checkouts are held after a failover while no primary answers.
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

/// What a pool holds, for a stats endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (idle + in use).
    pub open: usize,
    /// Connections idle in the pool.
    pub idle: usize,
    /// Failovers seen (a connection-level error or a read-only primary that made the
    /// pool drop its connections and look for the primary again).
    pub failovers: u64,
    /// Checkouts that ran out of `checkout_wait`.
    pub exhausted: u64,
}

/// The boxed future [`PgPool::run`]'s work returns: it borrows the connection.
pub type Work<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

struct Idle {
    conn: Conn,
    since: Instant,
    born: Instant,
}

struct Inner {
    target: Target,
    opts: PgPoolOptions,
    slots: Arc<Semaphore>,
    idle: Mutex<VecDeque<Idle>>,
    open: std::sync::atomic::AtomicUsize,
    failovers: std::sync::atomic::AtomicU64,
    exhausted: std::sync::atomic::AtomicU64,
    closed: std::sync::atomic::AtomicBool,
    timers: Arc<Timers>,
}

/// A failover-aware pool of connections to one target. Cheap to clone (shared).
#[derive(Clone)]
pub struct PgPool {
    inner: Arc<Inner>,
}

/// A connection checked out of a [`PgPool`]; it goes back when dropped (closed instead
/// when it broke). Derefs to [`Conn`], whose statements are bounded.
pub struct PooledConn {
    conn: Option<Conn>,
    born: Instant,
    broken: Option<Broken>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl PgPool {
    /// Opens `opts.min_size` connections to `target` (its host list, TLS, .pgpass), with
    /// the role, statement_timeout and application_name of `opts`.
    pub async fn connect(target: &Target, opts: PgPoolOptions) -> Result<PgPool> {
        if opts.max_size == 0 || opts.min_size > opts.max_size {
            return Err(Error::BadInput(format!(
                "pool sizes min {} max {}: max must be at least 1 and at least min",
                opts.min_size, opts.max_size
            )));
        }
        let mut target = target.clone();
        target.role = match opts.role {
            Role::Write => TargetRole::Primary,
            Role::Read => TargetRole::PreferStandby,
        };
        target.statement_timeout = opts.statement_timeout;
        target.application_name = opts.application_name.clone();
        let pool = PgPool {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(opts.max_size)),
                idle: Mutex::new(VecDeque::new()),
                open: Default::default(),
                failovers: Default::default(),
                exhausted: Default::default(),
                closed: Default::default(),
                timers: Arc::new(Timers::new(Duration::from_millis(500))),
                target,
                opts,
            }),
        };
        for _ in 0..pool.inner.opts.min_size {
            let conn = crate::connect(&pool.inner.target).await?;
            pool.inner
                .open
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let now = Instant::now();
            pool.inner.idle.lock().unwrap().push_back(Idle {
                conn,
                since: now,
                born: now,
            });
        }
        Ok(pool)
    }

    /// A connection, waiting at most `checkout_wait` for a free place; a write pool
    /// reconnects until a primary answers or `failover_wait` runs out.
    pub async fn get(&self) -> Result<PooledConn> {
        use std::sync::atomic::Ordering;
        let inner = &self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(Error::BadInput(
                "the pool was closed: make a new one (PgPool::connect)".into(),
            ));
        }
        let wait = inner.opts.checkout_wait;
        let permit = match tokio::time::timeout(wait, inner.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(Error::BadInput(
                    "the pool was closed: make a new one (PgPool::connect)".into(),
                ))
            }
            Err(_) => {
                inner.exhausted.fetch_add(1, Ordering::Relaxed);
                return Err(Error::Timeout {
                    what: format!(
                        "a checkout: the pool is exhausted (all {} connections in use)",
                        inner.opts.max_size
                    ),
                    after: wait,
                    next_step: Some(
                        "raise the pool's max_size or checkout_wait, or hold connections \
                         for less time"
                            .into(),
                    ),
                });
            }
        };
        loop {
            let Some(idle) = inner.idle.lock().unwrap().pop_front() else {
                break;
            };
            if idle.conn.is_closed() {
                inner.open.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            if idle.since.elapsed() >= inner.opts.check_after_idle
                && idle
                    .conn
                    .query("pool health check", "SELECT 1", &[])
                    .await
                    .is_err()
            {
                inner.open.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            return Ok(PooledConn {
                conn: Some(idle.conn),
                born: idle.born,
                broken: None,
                pool: inner.clone(),
                _permit: permit,
            });
        }
        let started = Instant::now();
        let conn = loop {
            match crate::connect(&inner.target).await {
                Ok(c) => break c,
                Err(e) if started.elapsed() < inner.opts.failover_wait => {
                    tracing::debug!("no server for the pool yet: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        inner.open.fetch_add(1, Ordering::Relaxed);
        Ok(PooledConn {
            conn: Some(conn),
            born: Instant::now(),
            broken: None,
            pool: inner.clone(),
            _permit: permit,
        })
    }

    /// Runs `work` on a pooled connection. After a connection-level error, a shutdown
    /// (57P01/57P02/57P03) or a read-only server (25006), the connection and every idle
    /// one are dropped; with [`Retry::Once`] the work runs once more on a new connection.
    pub async fn run<T, F>(&self, retry: Retry, mut work: F) -> Result<T>
    where
        F: for<'c> FnMut(&'c PooledConn) -> Work<'c, T>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.get().await?;
            let result = work(&conn).await;
            match result {
                Err(e) if failover_error(&e) => {
                    conn.broken = Some(Broken::ConnectionException);
                    drop(conn);
                    self.note_failover();
                    if retry == Retry::Once && attempt == 1 {
                        continue;
                    }
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// Times one named operation (checkout to result) in this pool's [`Timers`].
    pub fn op(&self, name: &str) -> Op<'_> {
        Op::new(self, name)
    }

    /// The operation timers (stats snapshot, Prometheus registration).
    pub fn timers(&self) -> &Arc<Timers> {
        &self.inner.timers
    }

    /// What the pool holds now.
    pub fn stats(&self) -> PoolStats {
        use std::sync::atomic::Ordering;
        PoolStats {
            open: self.inner.open.load(Ordering::Relaxed),
            idle: self.inner.idle.lock().unwrap().len(),
            failovers: self.inner.failovers.load(Ordering::Relaxed),
            exhausted: self.inner.exhausted.load(Ordering::Relaxed),
        }
    }

    /// Closes the pool: idle connections are closed now, checked-out ones when they come
    /// back; later checkouts fail.
    pub fn close(&self) {
        self.inner
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.inner.slots.close();
        self.inner.idle.lock().unwrap().clear();
    }

    fn note_failover(&self) {
        self.inner
            .failovers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dropped = std::mem::take(&mut *self.inner.idle.lock().unwrap());
        self.inner
            .open
            .fetch_sub(dropped.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// An error after which the pool drops the connection and looks for the primary again.
/// A statement that ran out of its client-side bound ([`Error::Timeout`]: the server did not
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
    /// Marks the connection broken: it is closed instead of going back.
    pub fn set_broken(&mut self, why: Broken) {
        self.broken = Some(why);
    }
}

impl std::ops::Deref for PooledConn {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a pooled connection until dropped")
    }
}

impl Drop for PooledConn {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let Some(conn) = self.conn.take() else {
            return;
        };
        let expired = self
            .pool
            .opts
            .max_lifetime
            .is_some_and(|l| self.born.elapsed() >= l);
        if self.broken.is_some()
            || conn.is_closed()
            || expired
            || self.pool.closed.load(Ordering::Relaxed)
        {
            self.pool.open.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.pool.idle.lock().unwrap().push_back(Idle {
            conn,
            since: Instant::now(),
            born: self.born,
        });
    }
}
