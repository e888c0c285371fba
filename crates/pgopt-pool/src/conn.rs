//! A connected session with every statement bounded.
//!
//! Each statement runs under the server's `statement_timeout` (set once at connect) and under
//! a client-side timeout a little longer than it; when the client-side one fires, a cancel
//! request is sent so the server stops working too. Errors keep their SQLSTATE.
//!
//! A statement whose future is dropped before it finished (the caller's own timeout, a
//! cancelled task) leaves the session busy until the server is done with it; the connection
//! remembers it ([`Conn::interrupted`]) so that a pool does not hand it out as if it were free.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{CancelToken, Client, NoTls, Row, Statement};

use crate::error::{Error, Result};

/// Client-side slack over statement_timeout before pgopt cancels on its own.
const CLIENT_SLACK: Duration = Duration::from_secs(2);

/// An open connection to one server, with the facts learned while connecting.
pub struct Conn {
    client: Client,
    cancel: CancelToken,
    /// Host (or socket directory) actually connected to.
    pub host: String,
    /// Port actually connected to.
    pub port: u16,
    /// The database of the session.
    pub database: String,
    /// The role the session logged in as.
    pub user: String,
    /// `server_version_num` of the server (150004 for 15.4).
    pub server_version_num: i32,
    /// `pg_is_in_recovery()` when connecting: the server was a standby.
    pub in_recovery: bool,
    /// `transaction_read_only` when connecting (a read-only primary or a standby).
    pub transaction_read_only: bool,
    statement_timeout: Duration,
    /// Sends the cancel request over TLS when the connection used it.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// A statement's future was dropped before it finished (see the module comment).
    interrupted: AtomicBool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("server_version_num", &self.server_version_num)
            .field("in_recovery", &self.in_recovery)
            .finish_non_exhaustive()
    }
}

/// What a connect learned, handed to [`Conn::new`].
pub struct ConnParts {
    /// The connected client (its connection task already spawned).
    pub client: Client,
    /// Host (or socket directory) connected to.
    pub host: String,
    /// Port connected to.
    pub port: u16,
    /// The database of the session.
    pub database: String,
    /// The role the session logged in as.
    pub user: String,
    /// `server_version_num` of the server.
    pub server_version_num: i32,
    /// `pg_is_in_recovery()` when connecting.
    pub in_recovery: bool,
    /// `transaction_read_only` when connecting.
    pub transaction_read_only: bool,
    /// The session's statement_timeout (every statement is also bounded client-side by it
    /// plus a little slack).
    pub statement_timeout: Duration,
    /// The TLS connector the connection used (for cancel requests), if any.
    pub tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Conn {
    /// A connection from what a connect learned.
    pub fn new(parts: ConnParts) -> Self {
        let cancel = parts.client.cancel_token();
        Conn {
            client: parts.client,
            cancel,
            host: parts.host,
            port: parts.port,
            database: parts.database,
            user: parts.user,
            server_version_num: parts.server_version_num,
            in_recovery: parts.in_recovery,
            transaction_read_only: parts.transaction_read_only,
            statement_timeout: parts.statement_timeout,
            tls: parts.tls,
            interrupted: AtomicBool::new(false),
        }
    }

    /// The target this connection reached, quoted for a command line a hint prints
    /// (`'host=... port=... user=... dbname=...'`); never a password.
    pub fn target_for_hints(&self) -> String {
        let quote = |v: &str| {
            if !v.is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
            {
                v.to_string()
            } else {
                format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        };
        let conninfo = format!(
            "host={} port={} user={} dbname={}",
            quote(&self.host),
            self.port,
            quote(&self.user),
            quote(&self.database)
        );
        // For the shell: single quotes around the whole, each inner one closed and reopened.
        format!("'{}'", conninfo.replace('\'', "'\\''"))
    }

    /// The underlying client, for what this wrapper does not cover (copy, transactions).
    /// Statements run through it directly are not bounded and not tracked by
    /// [`Conn::interrupted`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The session's statement_timeout.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// True when a statement's future was dropped before it finished (by the caller or by the
    /// client-side timeout): the server may still be working on it, and the next statement
    /// would wait behind it. A pool cancels it and waits for the session to be quiet before
    /// handing the connection out again.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Forgets an interruption once the session is known to be quiet again.
    pub(crate) fn clear_interrupted(&self) {
        self.interrupted.store(false, Ordering::Relaxed);
    }

    /// Prepares `sql` (bounded like every statement); `context` names it in errors.
    pub async fn prepare(&self, context: &str, sql: &str) -> Result<Statement> {
        self.bounded(context, sql, self.client.prepare(sql)).await
    }

    /// Runs `sql` with bind parameters; `context` names it in errors.
    pub async fn query(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.bounded(context, sql, self.client.query(sql, params))
            .await
    }

    /// [`Conn::query`] with each row turned into a `T` as it arrives, so that the rows of a
    /// large result are never all held at once (at 100,000 tables they are hundreds of MB).
    /// Bounded like every query; an error from `each` ends it.
    pub async fn query_each<T>(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(&Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        use futures_util::TryStreamExt;
        let work = async {
            let stream = self.client.query_raw(sql, params.iter().copied()).await?;
            futures_util::pin_mut!(stream);
            let mut out = Vec::new();
            while let Some(row) = stream.try_next().await? {
                match each(&row) {
                    Ok(v) => out.push(v),
                    // Stop reading: the rest of the result is dropped with the stream.
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(Ok(out))
        };
        self.bounded(context, sql, work).await?
    }

    /// [`Conn::query`] in one round trip: with the parameters' types given, the statement is
    /// parsed, bound and run at once instead of prepared first (still one statement only).
    pub async fn query_typed(
        &self,
        context: &str,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), tokio_postgres::types::Type)],
    ) -> Result<Vec<Row>> {
        self.bounded(context, sql, self.client.query_typed(sql, params))
            .await
    }

    /// [`Conn::query`] for exactly one row (an error for none or several).
    pub async fn query_one(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        self.bounded(context, sql, self.client.query_one(sql, params))
            .await
    }

    /// [`Conn::query`] for at most one row (an error for several).
    pub async fn query_opt(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.bounded(context, sql, self.client.query_opt(sql, params))
            .await
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(
        &self,
        context: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.bounded(context, sql, self.client.execute(sql, params))
            .await
    }

    /// Runs one statement without parameters through the simple protocol (needed for
    /// statements that take none, like BEGIN, SET, VACUUM or CREATE INDEX CONCURRENTLY).
    /// Send one statement at a time: several in one string run as one implicit transaction.
    pub async fn batch(&self, context: &str, sql: &str) -> Result<()> {
        self.bounded(context, sql, self.client.batch_execute(sql))
            .await
    }

    /// Bounds `fut` by statement_timeout plus slack; on expiry cancels it on the server.
    /// `sql` is noted for the slow-operation log of the operation running it, if any
    /// ([`crate::timers::note_statement`]).
    async fn bounded<T>(
        &self,
        context: &str,
        sql: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        crate::timers::note_statement(sql);
        let limit = self.statement_timeout + CLIENT_SLACK;
        // Marks the session interrupted unless the statement ran to its end (also when this
        // future itself is dropped half-way).
        struct Running<'a>(&'a AtomicBool, bool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
        }
        let mut running = Running(&self.interrupted, false);
        let outcome = tokio::time::timeout(limit, fut).await;
        running.1 = outcome.is_ok();
        drop(running);
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::query(context, e)),
            Err(_) => {
                self.cancel_running().await;
                Err(Error::Timeout {
                    what: context.to_string(),
                    after: limit,
                    next_step: Some(
                        "the server did not answer; check it is not overloaded or raise --statement-timeout"
                            .to_string(),
                    ),
                })
            }
        }
    }

    /// Asks the server to cancel whatever this connection runs; bounded, best effort.
    pub async fn cancel_running(&self) {
        let cancel = async {
            match &self.tls {
                Some(tls) => self.cancel.cancel_query(tls.clone()).await,
                None => self.cancel.cancel_query(NoTls).await,
            }
        };
        if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), cancel).await {
            tracing::warn!("cancel request failed: {e}");
        }
    }

    /// The socket is known to be closed (no round trip).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}
