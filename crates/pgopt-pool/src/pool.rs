//! A small pool of connections shared by more users than there are connections.
//!
//! What it guarantees:
//! - **A bounded checkout.** A checkout waits at most [`PoolOptions::checkout_wait`]; then it
//!   fails with [`PoolError::Exhausted`], which says how long it waited and that every
//!   connection was in use.
//! - **A health check after idle.** A connection that sat unused for
//!   [`PoolOptions::check_after_idle`] or more is checked ([`Manage::check`], bounded) before
//!   it is handed out; one that fails the check, or whose socket is closed, is replaced.
//! - **Broken connections never come back.** Whether a connection is broken is decided by the
//!   one classification, [`Broken`]: a lease told so ([`Lease::broken`],
//!   [`Lease::note_error`]) leaves a vacant place that the next checkout fills with a new
//!   connection; [`Lease::replace`] reconnects at once. A place whose reconnect fails is given
//!   up: the pool shrinks, and with no place left it closes.
//!
//! The pool does not know what a connection is: a [`Manage`] opens and checks them (a plain
//! [`Conn`] through [`Connector`]; the bench keeps its prepared statements with each one).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::broken::Broken;
use super::{Conn, Target};
use crate::error::{Error, Result};

/// Opens and checks the connections of a [`Pool`].
pub trait Manage: Send + Sync {
    /// The connection type the pool hands out.
    type Conn: Send;

    /// Opens one connection (bounded: the connect timeout of the target).
    fn open(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Whether an idle connection still answers; bounded.
    fn check(&self, conn: &Self::Conn) -> impl Future<Output = Result<()>> + Send;

    /// The connection's socket is known to be closed (no round trip).
    fn is_closed(&self, conn: &Self::Conn) -> bool;
}

/// How a pool behaves.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    /// The longest a checkout waits for a free connection.
    pub checkout_wait: Duration,
    /// A connection idle this long is checked before it is handed out.
    pub check_after_idle: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            checkout_wait: Duration::from_secs(30),
            check_after_idle: Duration::from_secs(30),
        }
    }
}

/// Why a checkout gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every connection stayed in use for the whole wait.
    #[error("waited {:.1}s for a free connection: the pool is exhausted (all {size} in use)", .waited.as_secs_f64())]
    Exhausted {
        /// How long the checkout waited.
        waited: Duration,
        /// Places in the pool (all in use).
        size: usize,
    },
    /// No connection is left (each broke and could not be replaced), or the pool was closed.
    #[error("the pool is closed: no connection is left")]
    Closed,
    /// A vacant or unhealthy place could not be filled with a new connection: the pool
    /// shrank by one.
    #[error("replacing a pooled connection failed: {0}")]
    Reconnect(Error),
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Exhausted { waited, size } => Error::Timeout {
                what: format!(
                    "waiting for a free connection (the pool is exhausted: all {size} in use)"
                ),
                after: waited,
                next_step: Some(
                    "give the pool more connections, or have fewer users at once".to_string(),
                ),
            },
            PoolError::Closed => Error::ConnectionLost {
                context: "checking out a pooled connection".to_string(),
                message: "no connection is left in the pool".to_string(),
            },
            PoolError::Reconnect(e) => e,
        }
    }
}

/// One place of the pool: a connection and since when it is idle, or vacant (its connection
/// broke; the next checkout opens a new one).
enum Place<C> {
    Idle(C, Instant),
    Vacant,
}

/// A bounded pool; see the module documentation.
pub struct Pool<M: Manage> {
    manager: M,
    opts: PoolOptions,
    /// Free places; a permit is held for each place checked out.
    free: Mutex<Vec<Place<M::Conn>>>,
    permits: Semaphore,
    /// Places in the pool (free or checked out).
    size: AtomicUsize,
    replaced: AtomicU64,
}

impl<M: Manage> Pool<M> {
    /// An empty pool: give it connections with [`Pool::add`] or [`Pool::fill`].
    pub fn new(manager: M, opts: PoolOptions) -> Self {
        Pool {
            manager,
            opts,
            free: Mutex::new(Vec::new()),
            permits: Semaphore::new(0),
            size: AtomicUsize::new(0),
            replaced: AtomicU64::new(0),
        }
    }

    /// The manager that opens and checks the connections.
    pub fn manager(&self) -> &M {
        &self.manager
    }

    /// Opens `n` connections at once and adds them; the first error fails it all.
    pub async fn fill(&self, n: usize) -> Result<()> {
        let opened = futures_util::future::join_all((0..n).map(|_| self.manager.open())).await;
        let mut conns = Vec::with_capacity(n);
        for c in opened {
            conns.push(c?);
        }
        for c in conns {
            self.add(c);
        }
        Ok(())
    }

    /// Adds an open connection as a new place.
    pub fn add(&self, conn: M::Conn) {
        self.free
            .lock()
            .expect("not poisoned")
            .push(Place::Idle(conn, Instant::now()));
        self.size.fetch_add(1, Ordering::AcqRel);
        self.permits.add_permits(1);
    }

    /// Places in the pool, free or checked out.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::Acquire)
    }

    /// Connections replaced so far (broken, closed or unhealthy ones).
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Relaxed)
    }

    /// Closes the pool: waiting and later checkouts fail with [`PoolError::Closed`].
    pub fn close(&self) {
        self.permits.close();
    }

    /// Whether [`Pool::close`] was called (or every place was given up).
    pub fn is_closed(&self) -> bool {
        self.permits.is_closed()
    }

    /// A connection, waiting at most [`PoolOptions::checkout_wait`] for one to be free. An
    /// idle one past [`PoolOptions::check_after_idle`] is checked first; a closed, unhealthy
    /// or vacant place gets a new connection.
    pub async fn checkout(&self) -> std::result::Result<Lease<'_, M>, PoolError> {
        let start = Instant::now();
        let permit =
            match tokio::time::timeout(self.opts.checkout_wait, self.permits.acquire()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) => return Err(PoolError::Closed),
                Err(_) => {
                    return Err(PoolError::Exhausted {
                        waited: start.elapsed(),
                        size: self.size(),
                    })
                }
            };
        let place = self.free.lock().expect("not poisoned").pop();
        // A permit means a free place; without one (cannot happen) the place is vacant.
        let usable = match place {
            Some(Place::Idle(conn, since)) => {
                if self.manager.is_closed(&conn) {
                    None
                } else if since.elapsed() >= self.opts.check_after_idle {
                    match self.manager.check(&conn).await {
                        Ok(()) => Some(conn),
                        Err(e) => {
                            tracing::info!("a pooled connection failed its health check: {e}");
                            None
                        }
                    }
                } else {
                    Some(conn)
                }
            }
            Some(Place::Vacant) | None => None,
        };
        let conn = match usable {
            Some(c) => c,
            None => match self.manager.open().await {
                Ok(c) => {
                    self.replaced.fetch_add(1, Ordering::Relaxed);
                    c
                }
                Err(e) => {
                    self.give_up(permit);
                    return Err(PoolError::Reconnect(e));
                }
            },
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            permit: Some(permit),
            broken: None,
        })
    }

    /// A place is gone for good: the pool shrinks; with none left it closes.
    fn give_up(&self, permit: SemaphorePermit<'_>) {
        permit.forget();
        if self.size.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

/// A checked-out connection. Dropping it gives the connection back, or leaves its place
/// vacant when it is broken (told so, or its socket closed).
pub struct Lease<'a, M: Manage> {
    pool: &'a Pool<M>,
    conn: Option<M::Conn>,
    permit: Option<SemaphorePermit<'a>>,
    broken: Option<Broken>,
}

impl<M: Manage> Lease<'_, M> {
    /// Marks the connection broken: it is not given back.
    pub fn broken(&mut self, why: Broken) {
        self.broken = Some(why);
    }

    /// Marks the connection broken when the error says so ([`Broken::from_error`]).
    pub fn note_error(&mut self, err: &tokio_postgres::Error) {
        if let Some(b) = Broken::from_error(err) {
            self.broken = Some(b);
        }
    }

    /// Whether the lease is marked broken.
    pub fn is_broken(&self) -> Option<Broken> {
        self.broken
    }

    /// Replaces the connection with a new one now. When that fails the place is given up
    /// (the pool shrinks) and the error says why.
    pub async fn replace(mut self) -> Result<()> {
        drop(self.conn.take());
        match self.pool.manager.open().await {
            Ok(c) => {
                self.pool.replaced.fetch_add(1, Ordering::Relaxed);
                self.conn = Some(c);
                self.broken = None;
                Ok(())
            }
            Err(e) => {
                if let Some(p) = self.permit.take() {
                    self.pool.give_up(p);
                }
                Err(e)
            }
        }
    }

    /// Gives the place up without reconnecting: the pool shrinks by one.
    pub fn discard(mut self) {
        drop(self.conn.take());
        if let Some(p) = self.permit.take() {
            self.pool.give_up(p);
        }
    }
}

impl<M: Manage> std::ops::Deref for Lease<'_, M> {
    type Target = M::Conn;
    fn deref(&self) -> &M::Conn {
        self.conn.as_ref().expect("present until the lease ends")
    }
}

impl<M: Manage> std::ops::DerefMut for Lease<'_, M> {
    fn deref_mut(&mut self) -> &mut M::Conn {
        self.conn.as_mut().expect("present until the lease ends")
    }
}

impl<M: Manage> Drop for Lease<'_, M> {
    fn drop(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let place = match self.conn.take() {
            Some(c) if self.broken.is_none() && !self.pool.manager.is_closed(&c) => {
                Place::Idle(c, Instant::now())
            }
            _ => Place::Vacant,
        };
        // The place goes back before the permit, so a permit always finds a place.
        self.pool.free.lock().expect("not poisoned").push(place);
        drop(permit);
    }
}

/// Plain [`Conn`]s to one target: opened with [`connect()`](crate::connect()), checked with `SELECT 1`.
pub struct Connector {
    /// What the connections go to.
    pub target: Target,
}

impl Manage for Connector {
    type Conn = Conn;

    fn open(&self) -> impl Future<Output = Result<Conn>> + Send {
        super::connect(&self.target)
    }

    async fn check(&self, conn: &Conn) -> Result<()> {
        conn.batch("checking a pooled connection", "SELECT 1").await
    }

    fn is_closed(&self, conn: &Conn) -> bool {
        conn.is_closed()
    }
}

/// A pool of plain connections.
pub type ConnPool = Pool<Connector>;

impl ConnPool {
    /// A pool of `size` connections to `target`, opened at once.
    pub async fn connect(target: &Target, size: usize, opts: PoolOptions) -> Result<ConnPool> {
        let pool = Pool::new(
            Connector {
                target: target.clone(),
            },
            opts,
        );
        pool.fill(size).await?;
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections that are numbers; `check` fails for odd ones, opening fails when told.
    struct Numbers {
        next: AtomicUsize,
        refuse: std::sync::atomic::AtomicBool,
    }

    impl Manage for Numbers {
        type Conn = usize;
        async fn open(&self) -> Result<usize> {
            if self.refuse.load(Ordering::Relaxed) {
                return Err(Error::Connect("refused".into()));
            }
            Ok(self.next.fetch_add(1, Ordering::Relaxed))
        }
        async fn check(&self, conn: &usize) -> Result<()> {
            if conn % 2 == 1 {
                Err(Error::Connect("unhealthy".into()))
            } else {
                Ok(())
            }
        }
        fn is_closed(&self, _: &usize) -> bool {
            false
        }
    }

    fn pool(check_after_idle: Duration) -> Pool<Numbers> {
        Pool::new(
            Numbers {
                next: AtomicUsize::new(0),
                refuse: false.into(),
            },
            PoolOptions {
                checkout_wait: Duration::from_millis(50),
                check_after_idle,
            },
        )
    }

    #[tokio::test]
    async fn an_exhausted_pool_says_so_and_how_long_it_waited() {
        let p = pool(Duration::from_secs(60));
        p.fill(1).await.unwrap();
        let _held = p.checkout().await.unwrap();
        let err = p.checkout().await.err().expect("exhausted");
        assert!(matches!(err, PoolError::Exhausted { size: 1, .. }), "{err}");
        let text = Error::from(err).to_string();
        assert!(text.contains("the pool is exhausted"), "{text}");
        assert!(text.contains("timed out after"), "{text}");
    }

    #[tokio::test]
    async fn a_broken_lease_leaves_a_vacant_place_that_the_next_checkout_fills() {
        let p = pool(Duration::from_secs(60));
        p.fill(1).await.unwrap();
        let mut l = p.checkout().await.unwrap();
        assert_eq!(*l, 0);
        l.broken(Broken::Shutdown);
        drop(l);
        let l = p.checkout().await.unwrap();
        assert_eq!(*l, 1, "a new connection");
        assert_eq!(p.replaced(), 1);
        drop(l);
        assert_eq!(
            *p.checkout().await.unwrap(),
            1,
            "the healthy one comes back"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_failing_its_check_is_replaced() {
        let p = pool(Duration::ZERO);
        p.fill(2).await.unwrap(); // 0 and 1; 1 is on top and unhealthy
        let l = p.checkout().await.unwrap();
        assert_eq!(*l, 2, "1 failed its check and was replaced");
        assert_eq!(p.replaced(), 1);
    }

    #[tokio::test]
    async fn a_place_that_cannot_reconnect_is_given_up_and_the_last_one_closes_the_pool() {
        let p = pool(Duration::from_secs(60));
        p.fill(1).await.unwrap();
        p.manager().refuse.store(true, Ordering::Relaxed);
        let l = p.checkout().await.unwrap();
        assert!(l.replace().await.is_err());
        assert_eq!(p.size(), 0);
        assert!(matches!(p.checkout().await, Err(PoolError::Closed)));
    }
}
