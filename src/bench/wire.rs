//! A lean connection for `pgopt bench`'s hot loop, on `postgres-protocol` (the message codec
//! tokio-postgres itself uses) over a tokio `TcpStream` or `UnixStream`.
//!
//! Why: a load generator must not take from the server it measures the CPU it measures with.
//! tokio-postgres spends most of a `SELECT 1`'s client-side instructions on its machinery (a
//! background connection task, a response channel per request); a [`WireConn`] has no
//! background task: the client task that owns it writes a request and reads the answer itself,
//! with one read and one write buffer reused across requests. Nothing is allocated per request
//! beyond the caller's values.
//!
//! What it must not do: be used anywhere but bench's hot loop. Every other part of pgopt stays
//! on tokio-postgres ([`crate::db`]). It speaks no TLS: when the target needs TLS, [`WireConn::
//! connect`] says so ([`ConnectError::NeedsTls`]) and the caller takes the standard path.
//!
//! The session is set up as [`crate::db::connect`] sets it up: the same address (host, hostaddr
//! or unix socket), user, database, options, `application_name`, password (given or from the
//! password file), the same role check and `statement_timeout`, in the same one round trip
//! ([`crate::db::connect`] picks the host of a multi-host target; this connects to the host it
//! is given and checks that it still has the wanted role).
//!
//! A `WireConn` is driven by the runtime it was made on (its socket is registered there):
//! connect it on the thread whose runtime runs it. The `blocking_*` requests (the runner's hot
//! path: a client on a thread and runtime of its own) wait on that thread instead (`send`,
//! `poll`, `recv` on the socket, as pgbench waits): three syscalls and no runtime turn per
//! request. Async and blocking requests mix freely on one connection.
//!
//! Bounds:
//! - the whole connect (TCP, start-up, authentication, session set-up) by the target's
//!   `connect_timeout`;
//! - [`WireConn::prepare`], [`WireConn::simple_query`] and [`WireConn::query_rows`] by the
//!   connection's `statement_timeout` plus [`CLIENT_SLACK`]: the server's statement_timeout
//!   fires first; when the client-side bound runs out, a cancel request goes to the server and
//!   the answer is awaited [`CANCEL_GRACE`] more, after which the connection is given up
//!   (broken);
//! - [`WireConn::execute_within`] likewise by the caller's limit;
//! - the `blocking_*` requests by the caller's limit, after which the connection is given up
//!   (broken); they send no cancel themselves (the caller's watchdog has, before that limit);
//! - [`WireConn::execute`], the hot path, by no timer of its own: the server's
//!   statement_timeout bounds the statement, and the caller runs a watchdog that sends a
//!   cancel ([`CancelHandle`]) for an execution that runs over the limit, as the tokio-postgres
//!   runner does (a timer per execution costs more than the rest of the client's work);
//! - a cancel request by [`CANCEL_TIMEOUT`].
//!
//! Errors are classified as the runner classifies tokio-postgres's: the SQLSTATE, `broken` for
//! 08xxx, 57P01, 57P02, 57P03, a FATAL error or a lost connection (then `08006`), and the
//! message `CODE: message`.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::backend::{Header, Message};
use postgres_protocol::message::frontend;
use postgres_protocol::{IsNull, Oid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::types::{Kind, ToSql, Type};

use crate::db::connect::SESSION_SETUP_SQL;
use crate::db::{tls, HostSpec, SslMode, Target, TargetRole};
use crate::error::Error;

/// Client-side slack over statement_timeout before pgopt cancels on its own (as the runner).
pub const CLIENT_SLACK: Duration = Duration::from_secs(2);
/// How long a cancel request may take (connect, send, the server closing).
pub const CANCEL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the answer is awaited after a cancel request before the connection is given up.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Spare room kept in the read buffer, so one read takes in a whole answer.
const READ_CHUNK: usize = 8 * 1024;
/// The OID of `text`, for the session set-up's parameter.
const TEXT_OID: Oid = 25;
/// An empty list of format codes: text for every parameter and every result column.
const NO_FORMATS: [i16; 0] = [];

/// One bind parameter, sent in text format (as pgbench sends them): the server converts it to
/// the parameter's type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
}

impl Value<'_> {
    /// Appends the text form (PostgreSQL's spelling of the special floats).
    fn write_text(&self, buf: &mut BytesMut) -> IsNull {
        match *self {
            Value::Null => return IsNull::Yes,
            Value::Int(i) => {
                let _ = write!(buf, "{i}");
            }
            Value::Float(f) if f.is_nan() => buf.extend_from_slice(b"NaN"),
            Value::Float(f) if f.is_infinite() => {
                buf.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" })
            }
            Value::Float(f) => {
                let _ = write!(buf, "{f:?}");
            }
            Value::Text(s) => buf.extend_from_slice(s.as_bytes()),
        }
        IsNull::No
    }
}

/// Why one request failed, classified as the runner classifies tokio-postgres's errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The SQLSTATE; `08006` when the connection went away without a server message;
    /// `client_error` for a value that cannot be sent.
    pub code: String,
    /// The connection is unusable: replace it.
    pub broken: bool,
    /// `CODE: message`.
    pub message: String,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for WireError {}

impl WireError {
    /// A server error: broken for connection exceptions, shutdowns and FATAL errors (after
    /// which the server closes the connection).
    fn server(code: &str, message: &str, fatal: bool) -> Self {
        let broken = crate::db::Broken::from_sqlstate(code, fatal).is_some();
        WireError {
            code: code.to_string(),
            broken,
            message: format!("{code}: {message}"),
        }
    }

    /// The connection went away (or its protocol state is lost).
    fn closed(why: impl std::fmt::Display) -> Self {
        WireError {
            code: "08006".into(),
            broken: true,
            message: format!("connection closed: {why}"),
        }
    }

    /// The library error for a failed set-up request (`context` names it), as
    /// [`Error::query`] makes it from a tokio-postgres error: the SQLSTATE kept, a lost
    /// connection as such.
    pub fn into_error(self, context: impl Into<String>) -> Error {
        let context = context.into();
        if self.code == "08006" && self.broken {
            return Error::ConnectionLost {
                context,
                message: self.message,
            };
        }
        if self.code == "client_error" {
            return Error::Query {
                context,
                code: None,
                message: self.message,
                next_step: None,
            };
        }
        let code = tokio_postgres::error::SqlState::from_code(&self.code);
        let prefix = format!("{}: ", self.code);
        let message = match self.message.strip_prefix(&prefix) {
            Some(m) => m.to_string(),
            None => self.message,
        };
        Error::Query {
            context,
            next_step: crate::error::next_step_for(&code),
            code: Some(code),
            message,
        }
    }

    fn client(why: impl std::fmt::Display) -> Self {
        WireError {
            code: "client_error".into(),
            broken: false,
            message: why.to_string(),
        }
    }
}

/// Why [`WireConn::connect`] did not give a connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The target needs TLS (sslmode require/verify-*, or prefer and the server offers it):
    /// the lean path does not speak it; use the standard (tokio-postgres) path.
    #[error("TLS: use the standard path ({0})")]
    NeedsTls(String),
    /// The connect failed; `code` is the server's SQLSTATE when it answered with an error
    /// (28P01 wrong password, 28000 no such role or no pg_hba.conf entry, ...).
    #[error("{error}")]
    Failed { code: Option<String>, error: Error },
}

impl ConnectError {
    fn failed(error: Error) -> Self {
        ConnectError::Failed { code: None, error }
    }

    /// The server's SQLSTATE, when the failure is a server error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ConnectError::Failed { code, .. } => code.as_deref(),
            ConnectError::NeedsTls(_) => None,
        }
    }
}

impl From<ConnectError> for Error {
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::NeedsTls(why) => {
                Error::Connect(format!("TLS: use the standard path ({why})"))
            }
            ConnectError::Failed { error, .. } => error,
        }
    }
}

/// The transaction status of the last ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InBlock,
    /// `E`: in a failed transaction block: only ROLLBACK is accepted.
    Failed,
}

/// A statement prepared (named) on one [`WireConn`].
#[derive(Debug, Clone)]
pub struct Prepared {
    name: String,
    /// The parameter types the server decided on.
    pub param_types: Vec<Oid>,
    /// True when the statement returns rows (a RowDescription, not NoData).
    pub returns_rows: bool,
    /// `param_types` as tokio-postgres types, for [`WireConn::execute_params`] (a type that
    /// is not built in gets a placeholder with its OID, as its values go in text).
    types: Vec<Type>,
}

impl Prepared {
    /// The parameter types, as tokio-postgres's `Statement::params`.
    pub fn params(&self) -> &[Type] {
        &self.types
    }
}

/// Where a connection went: a cancel request goes to the same place.
#[derive(Debug, Clone)]
enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    async fn open(addr: &Addr) -> io::Result<Stream> {
        Ok(match addr {
            Addr::Tcp(a) => {
                let s = TcpStream::connect(a).await?;
                s.set_nodelay(true)?;
                Stream::Tcp(s)
            }
            Addr::Unix(p) => Stream::Unix(UnixStream::connect(p).await?),
        })
    }

    async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read_buf(buf).await,
            Stream::Unix(s) => s.read_buf(buf).await,
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.write_all(data).await,
            Stream::Unix(s) => s.write_all(data).await,
        }
    }

    /// Writes without waiting, best effort (for Terminate on drop).
    fn try_write(&self, data: &[u8]) {
        let _ = match self {
            Stream::Tcp(s) => s.try_write(data),
            Stream::Unix(s) => s.try_write(data),
        };
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// The blocking side of the socket, for [`WireConn`]'s `blocking_*` requests: plain
/// `send`/`recv` on the (non-blocking) descriptor and `poll` to wait, past the runtime.
///
/// The runtime's idea of the socket's readiness goes stale meanwhile; that costs the async
/// requests that follow at most one spurious wake-up (tokio re-checks readiness with the read
/// itself), never a lost one: data that arrives raises a new edge in the runtime's epoll set.
mod blocking {
    use std::io;
    use std::os::fd::RawFd;
    use std::time::{Duration, Instant};

    /// One `recv` into `buf` (0: the peer closed); `WouldBlock` when nothing is there.
    pub(super) fn recv(fd: RawFd, buf: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is valid for writes of buf.len() bytes; recv writes at most that
            // many and the caller treats only the returned count as initialised.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// One `send` of (a prefix of) `data`; `WouldBlock` when the socket buffer is full. No
    /// SIGPIPE for a peer that went away: the error says so.
    pub(super) fn send(fd: RawFd, data: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: data is valid for reads of data.len() bytes.
            let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// The bound of one request's waits: `limit` from the first wait on (the clock is read
    /// only when a wait is needed, and then once per wait).
    pub(super) struct Bound {
        pub(super) limit: Duration,
        deadline: Option<Instant>,
    }

    impl Bound {
        pub(super) fn new(limit: Duration) -> Self {
            Bound {
                limit,
                deadline: None,
            }
        }

        /// Waits until `fd` is ready for `events` (or has an error or hang-up to report);
        /// false when the bound ran out first.
        pub(super) fn wait(&mut self, fd: RawFd, events: libc::c_short) -> io::Result<bool> {
            loop {
                let now = Instant::now();
                let left = match self.deadline {
                    Some(d) => d.saturating_duration_since(now),
                    None => {
                        // Saturating far in the future.
                        self.deadline = Some(
                            now.checked_add(self.limit)
                                .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365)),
                        );
                        self.limit
                    }
                };
                if left.is_zero() {
                    return Ok(false);
                }
                // Rounded up, so that a wait never ends before the deadline.
                let ms = left
                    .as_millis()
                    .saturating_add(u128::from(left.subsec_nanos() % 1_000_000 != 0))
                    .min(i32::MAX as u128) as libc::c_int;
                let mut p = libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                };
                // SAFETY: p is one valid pollfd and the count says one.
                match unsafe { libc::poll(&mut p, 1, ms) } {
                    n if n > 0 => return Ok(true),
                    0 => {}
                    _ => {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}

/// Sends a cancel request for whatever one [`WireConn`] runs. Cheap to clone; usable from any
/// task or thread (the runner's watchdog).
#[derive(Clone)]
pub struct CancelHandle(Arc<CancelKey>);

struct CancelKey {
    addr: Addr,
    process_id: i32,
    secret_key: i32,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret key stays out of logs.
        f.debug_struct("CancelHandle")
            .field("addr", &self.0.addr)
            .field("process_id", &self.0.process_id)
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    /// Opens a new connection to the same address and sends CancelRequest; waits (at most
    /// [`CANCEL_TIMEOUT`]) until the server has read it and closed. Best effort: the server
    /// cancels only if the statement still runs.
    pub async fn cancel(&self) -> io::Result<()> {
        let send = async {
            let mut stream = Stream::open(&self.0.addr).await?;
            let mut buf = BytesMut::with_capacity(16);
            frontend::cancel_request(self.0.process_id, self.0.secret_key, &mut buf);
            stream.write_all(&buf).await?;
            // The server answers nothing and closes once it has acted on the request.
            buf.clear();
            while stream.read_buf(&mut buf).await? > 0 {
                buf.clear();
            }
            Ok(())
        };
        match tokio::time::timeout(CANCEL_TIMEOUT, send).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the cancel request got no answer within {}s",
                    CANCEL_TIMEOUT.as_secs()
                ),
            )),
        }
    }
}

/// One connection driven directly by the task that owns it. See the module documentation.
pub struct WireConn {
    stream: Stream,
    rbuf: BytesMut,
    wbuf: BytesMut,
    cancel: CancelHandle,
    status: TxStatus,
    broken: bool,
    next_stmt: u32,
    statement_timeout: Duration,
    server_version_num: i32,
    in_recovery: bool,
}

impl std::fmt::Debug for WireConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireConn")
            .field("cancel", &self.cancel)
            .field("status", &self.status)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Drop for WireConn {
    fn drop(&mut self) {
        // Terminate, so that the server ends the session cleanly instead of logging an
        // unexpected EOF. Never waits.
        if !self.broken {
            let mut buf = BytesMut::with_capacity(5);
            frontend::terminate(&mut buf);
            self.stream.try_write(&buf);
        }
    }
}

impl WireConn {
    /// Connects to `host` of `target` (see the module documentation), bounded by the target's
    /// connect_timeout.
    pub async fn connect(target: &Target, host: &HostSpec) -> Result<WireConn, ConnectError> {
        let mode = tls::effective_mode(target);
        if !host.is_unix()
            && matches!(
                mode,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
            )
        {
            return Err(ConnectError::NeedsTls(format!(
                "sslmode={} needs TLS",
                mode.as_str()
            )));
        }
        match tokio::time::timeout(target.connect_timeout, connect_host(target, host, mode)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::failed(Error::Timeout {
                what: format!("connecting to {}", host.label()),
                after: target.connect_timeout,
                next_step: Some(
                    "the server accepted the connection but did not answer; check host and \
                     port, that it is PostgreSQL, or raise connect_timeout"
                        .into(),
                ),
            })),
        }
    }

    /// The handle that cancels what this connection runs.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// The transaction status the server reported last.
    pub fn transaction_status(&self) -> TxStatus {
        self.status
    }

    /// True once the connection is unusable (lost, FATAL error, a request given up).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    pub fn server_version_num(&self) -> i32 {
        self.server_version_num
    }

    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }

    /// The client-side bound of the non-hot requests: statement_timeout plus slack.
    fn limit(&self) -> Duration {
        self.statement_timeout + CLIENT_SLACK
    }

    /// Parse (named), Describe, Sync, letting the server infer the parameter types.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared, WireError> {
        self.prepare_typed(sql, &[]).await
    }

    /// Parse (named) with the given parameter types (0 or missing: inferred), Describe, Sync.
    pub async fn prepare_typed(&mut self, sql: &str, types: &[Oid]) -> Result<Prepared, WireError> {
        let name = format!("pgopt_w{}", self.next_stmt);
        self.next_stmt += 1;
        let limit = self.limit();
        let cancel = self.cancel.clone();
        let r = bounded(self.prepare_inner(name, sql, types), limit, &cancel).await;
        self.note(r)
    }

    async fn prepare_inner(
        &mut self,
        name: String,
        sql: &str,
        types: &[Oid],
    ) -> Result<Prepared, WireError> {
        self.usable()?;
        self.wbuf.clear();
        frontend::parse(&name, sql, types.iter().copied(), &mut self.wbuf)
            .map_err(WireError::client)?;
        frontend::describe(b'S', &name, &mut self.wbuf).map_err(WireError::client)?;
        frontend::sync(&mut self.wbuf);
        self.send().await?;
        let mut got = Collected::default();
        self.read_collecting(&mut got).await?;
        let types = got
            .param_types
            .iter()
            .map(|&oid| {
                Type::from_oid(oid).unwrap_or_else(|| {
                    Type::new(format!("oid{oid}"), oid, Kind::Simple, String::new())
                })
            })
            .collect();
        Ok(Prepared {
            name,
            param_types: got.param_types,
            returns_rows: got.returns_rows,
            types,
        })
    }

    /// The hot path: Bind (text parameters) the prepared statement, Execute, Sync; reads to
    /// ReadyForQuery. Returns the rows affected or returned (from the command tag, as
    /// tokio-postgres's `execute`). No timer: see the module documentation on bounds.
    pub async fn execute(
        &mut self,
        stmt: &Prepared,
        params: &[Value<'_>],
    ) -> Result<u64, WireError> {
        self.bind_values(stmt, params)?;
        self.execute_bound().await
    }

    /// [`WireConn::execute`] waiting on this thread (see [`WireConn::blocking_execute_params`]).
    pub fn blocking_execute(
        &mut self,
        stmt: &Prepared,
        params: &[Value<'_>],
        limit: Duration,
    ) -> Result<u64, WireError> {
        self.bind_values(stmt, params)?;
        self.blocking_execute_bound(limit)
    }

    /// Bind of `stmt` with text values into the write buffer.
    fn bind_values(&mut self, stmt: &Prepared, params: &[Value<'_>]) -> Result<(), WireError> {
        self.usable()?;
        self.wbuf.clear();
        frontend::bind(
            "",
            &stmt.name,
            // No format codes: every parameter in text.
            NO_FORMATS,
            params,
            |v, buf| Ok(v.write_text(buf)),
            // Every result column in text.
            NO_FORMATS,
            &mut self.wbuf,
        )
        .map_err(|e| match e {
            frontend::BindError::Conversion(e) => WireError::client(e),
            frontend::BindError::Serialization(e) => WireError::client(e),
        })
    }

    /// [`WireConn::execute`] with tokio-postgres parameters, encoded as tokio-postgres encodes
    /// them (each in the format its `ToSql` chooses for the statement's parameter type), so
    /// that the same values can go through either path. Results stay in text.
    pub async fn execute_params(
        &mut self,
        stmt: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, WireError> {
        self.bind_params(stmt, params)?;
        self.execute_bound().await
    }

    /// The hot path of a client that has a thread (and runtime) of its own:
    /// [`WireConn::execute_params`], but the request is written and its answer awaited on
    /// this thread (`send`, then `poll` and `recv` on the socket), not through the runtime.
    /// A runtime's turn per request (its timer wheel, its epoll, its scheduler) costs more
    /// client CPU than the rest of the request; pgbench waits the same way.
    ///
    /// It blocks the thread: call it only where nothing else needs this thread meanwhile.
    /// Bounded by `limit`: when the answer is not in by then, the connection is given up
    /// (broken). It sends no cancel request itself: give a limit beyond the one at which the
    /// caller's watchdog cancels (as the runner does), so that the server gets to answer.
    pub fn blocking_execute_params(
        &mut self,
        stmt: &Prepared,
        params: &[&(dyn ToSql + Sync)],
        limit: Duration,
    ) -> Result<u64, WireError> {
        self.bind_params(stmt, params)?;
        self.blocking_execute_bound(limit)
    }

    /// One statement without parameters through the simple protocol (ROLLBACK), waiting on
    /// this thread as [`WireConn::blocking_execute_params`] does, bounded by `limit` alike.
    pub fn blocking_simple_query(&mut self, sql: &str, limit: Duration) -> Result<u64, WireError> {
        self.usable()?;
        self.wbuf.clear();
        frontend::query(sql, &mut self.wbuf).map_err(WireError::client)?;
        let r = self.blocking_round_trip(limit);
        self.note(r)
    }

    /// Bind of `stmt` with tokio-postgres values into the write buffer.
    fn bind_params(
        &mut self,
        stmt: &Prepared,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(), WireError> {
        self.usable()?;
        if params.len() != stmt.types.len() {
            return Err(WireError::client(format!(
                "expected {} parameters but got {}",
                stmt.types.len(),
                params.len()
            )));
        }
        self.wbuf.clear();
        let pairs = || params.iter().zip(stmt.types.iter());
        frontend::bind(
            "",
            &stmt.name,
            pairs().map(|(p, t)| p.encode_format(t) as i16),
            pairs(),
            |(p, t), buf| match p.to_sql_checked(t, buf) {
                Ok(tokio_postgres::types::IsNull::No) => Ok(IsNull::No),
                Ok(tokio_postgres::types::IsNull::Yes) => Ok(IsNull::Yes),
                Err(e) => Err(e),
            },
            NO_FORMATS,
            &mut self.wbuf,
        )
        .map_err(|e| match e {
            frontend::BindError::Conversion(e) => {
                WireError::client(format!("error serializing a parameter: {e}"))
            }
            frontend::BindError::Serialization(e) => WireError::client(e),
        })
    }

    /// After a Bind in the write buffer: Execute, Sync, send, and read the answer (marking
    /// the connection broken when the failure says so). Shared by both execute forms.
    async fn execute_bound(&mut self) -> Result<u64, WireError> {
        frontend::execute("", 0, &mut self.wbuf).map_err(WireError::client)?;
        frontend::sync(&mut self.wbuf);
        self.send().await?;
        let r = self.read_fast().await;
        self.note(r)
    }

    /// [`WireConn::execute_bound`] waiting on this thread, bounded by `limit`.
    fn blocking_execute_bound(&mut self, limit: Duration) -> Result<u64, WireError> {
        frontend::execute("", 0, &mut self.wbuf).map_err(WireError::client)?;
        frontend::sync(&mut self.wbuf);
        let r = self.blocking_round_trip(limit);
        self.note(r)
    }

    /// Sends the write buffer and reads the answer up to ReadyForQuery as [`WireConn::
    /// read_fast`] does, waiting on this thread; past `limit` the connection is given up.
    fn blocking_round_trip(&mut self, limit: Duration) -> Result<u64, WireError> {
        let mut bound = blocking::Bound::new(limit);
        let fd = self.stream.fd();
        let mut sent = 0;
        while sent < self.wbuf.len() {
            match blocking::send(fd, &self.wbuf[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocking_wait(fd, libc::POLLOUT, &mut bound)?;
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
        let mut st = FastRead::default();
        // Right after the request the answer is rarely in yet: wait first, then read (one
        // syscall fewer than a read that finds nothing); later reads are tried first.
        let mut wait_first = true;
        loop {
            let (tag, len) = loop {
                if let Some(m) = self.whole_message()? {
                    break m;
                }
                self.make_room();
                if std::mem::take(&mut wait_first) {
                    self.blocking_wait(fd, libc::POLLIN, &mut bound)?;
                }
                match blocking::recv(fd, self.rbuf.spare_capacity_mut()) {
                    Ok(0) => return Err(self.lost("the server closed the connection")),
                    Ok(n) => {
                        let filled = self.rbuf.len() + n;
                        // SAFETY: recv initialised the n bytes after the old length, within
                        // the capacity.
                        unsafe { self.rbuf.set_len(filled) };
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.blocking_wait(fd, libc::POLLIN, &mut bound)?;
                    }
                    Err(e) => return Err(self.lost(e)),
                }
            };
            if let Some(r) = self.fast_message(tag, len, &mut st) {
                return r;
            }
        }
    }

    /// Waits for `events` on the socket within `bound`; past it the connection is given up.
    fn blocking_wait(
        &mut self,
        fd: RawFd,
        events: libc::c_short,
        bound: &mut blocking::Bound,
    ) -> Result<(), WireError> {
        match bound.wait(fd, events) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lost(format!(
                "no answer within {:.1}s; the connection is given up",
                bound.limit.as_secs_f64()
            ))),
            Err(e) => Err(self.lost(e)),
        }
    }

    /// The connection is lost (marked broken), for `why`.
    fn lost(&mut self, why: impl std::fmt::Display) -> WireError {
        self.broken = true;
        WireError::closed(why)
    }

    /// [`WireConn::execute`] bounded by `limit`: on expiry a cancel request, then
    /// [`CANCEL_GRACE`] for the answer, then the connection is given up.
    pub async fn execute_within(
        &mut self,
        stmt: &Prepared,
        params: &[Value<'_>],
        limit: Duration,
    ) -> Result<u64, WireError> {
        let cancel = self.cancel.clone();
        let r = bounded(self.execute(stmt, params), limit, &cancel).await;
        self.note(r)
    }

    /// One statement without parameters through the simple protocol (BEGIN, ROLLBACK, SET).
    /// Returns the rows of the last command's tag.
    pub async fn simple_query(&mut self, sql: &str) -> Result<u64, WireError> {
        let limit = self.limit();
        let cancel = self.cancel.clone();
        let r = bounded(self.simple_inner(sql), limit, &cancel).await;
        self.note(r)
    }

    async fn simple_inner(&mut self, sql: &str) -> Result<u64, WireError> {
        self.usable()?;
        self.wbuf.clear();
        frontend::query(sql, &mut self.wbuf).map_err(WireError::client)?;
        self.send().await?;
        let mut got = Collected::default();
        self.read_collecting(&mut got).await?;
        Ok(got.affected)
    }

    /// An unnamed statement with text parameters, returning its rows as text (NULL = None).
    /// Not for the hot loop: it allocates every value.
    pub async fn query_rows(
        &mut self,
        sql: &str,
        types: &[Oid],
        params: &[Value<'_>],
    ) -> Result<Vec<Vec<Option<String>>>, WireError> {
        let limit = self.limit();
        let cancel = self.cancel.clone();
        let r = bounded(self.query_inner(sql, types, params), limit, &cancel).await;
        self.note(r)
    }

    async fn query_inner(
        &mut self,
        sql: &str,
        types: &[Oid],
        params: &[Value<'_>],
    ) -> Result<Vec<Vec<Option<String>>>, WireError> {
        self.usable()?;
        self.wbuf.clear();
        frontend::parse("", sql, types.iter().copied(), &mut self.wbuf)
            .map_err(WireError::client)?;
        frontend::bind(
            "",
            "",
            NO_FORMATS,
            params,
            |v, buf| Ok(v.write_text(buf)),
            NO_FORMATS,
            &mut self.wbuf,
        )
        .map_err(|_| WireError::client("a parameter cannot be sent"))?;
        frontend::execute("", 0, &mut self.wbuf).map_err(WireError::client)?;
        frontend::sync(&mut self.wbuf);
        self.send().await?;
        let mut got = Collected {
            rows: Some(Vec::new()),
            ..Default::default()
        };
        self.read_collecting(&mut got).await?;
        Ok(got.rows.unwrap_or_default())
    }

    /// Sends Terminate and closes the connection (bounded by [`CLIENT_SLACK`]).
    pub async fn close(mut self) {
        if !self.broken {
            self.wbuf.clear();
            frontend::terminate(&mut self.wbuf);
            let _ = tokio::time::timeout(CLIENT_SLACK, self.stream.write_all(&self.wbuf)).await;
            self.broken = true; // nothing more to send on drop
        }
    }

    /// Marks the connection broken when `r` says so.
    fn note<T>(&mut self, r: Result<T, WireError>) -> Result<T, WireError> {
        if let Err(e) = &r {
            self.broken |= e.broken;
        }
        r
    }

    fn usable(&self) -> Result<(), WireError> {
        if self.broken {
            return Err(WireError::closed("the connection was given up earlier"));
        }
        Ok(())
    }

    async fn send(&mut self) -> Result<(), WireError> {
        if let Err(e) = self.stream.write_all(&self.wbuf).await {
            self.broken = true;
            return Err(WireError::closed(e));
        }
        Ok(())
    }

    /// Reads until one whole message is in the buffer; returns its tag and total length.
    async fn next_message(&mut self) -> Result<(u8, usize), WireError> {
        loop {
            if let Some(m) = self.whole_message()? {
                return Ok(m);
            }
            self.make_room();
            match self.stream.read_buf(&mut self.rbuf).await {
                Ok(0) => {
                    self.broken = true;
                    return Err(WireError::closed("the server closed the connection"));
                }
                Ok(_) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(WireError::closed(e));
                }
            }
        }
    }

    /// The tag and total length of the message at the front of the buffer when all of it is
    /// there; else None, with room reserved for the rest of a message whose header is in.
    fn whole_message(&mut self) -> Result<Option<(u8, usize)>, WireError> {
        match Header::parse(&self.rbuf) {
            Ok(Some(h)) => {
                let total = h.len() as usize + 1;
                if self.rbuf.len() >= total {
                    return Ok(Some((h.tag(), total)));
                }
                self.rbuf.reserve(total - self.rbuf.len());
                Ok(None)
            }
            Ok(None) => Ok(None),
            Err(e) => Err(self.lost(e)),
        }
    }

    /// Keeps at least half a [`READ_CHUNK`] free, so that one read takes in a whole answer.
    fn make_room(&mut self) {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
            self.rbuf.reserve(READ_CHUNK);
        }
    }

    /// Takes the ErrorResponse at the front of the buffer.
    fn take_error(&mut self) -> WireError {
        match Message::parse(&mut self.rbuf) {
            Ok(Some(Message::ErrorResponse(body))) => {
                let mut code = String::new();
                let mut message = String::new();
                let mut fatal = false;
                let mut fields = body.fields();
                while let Ok(Some(f)) = fields.next() {
                    match f.type_() {
                        b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
                        b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
                        // Non-localised severity (9.6+); S is the localised one.
                        b'V' => fatal = matches!(f.value_bytes(), b"FATAL" | b"PANIC"),
                        _ => {}
                    }
                }
                let e = WireError::server(&code, &message, fatal);
                self.broken |= e.broken;
                e
            }
            _ => {
                self.broken = true;
                WireError::closed("an unreadable error message from the server")
            }
        }
    }

    /// Records ReadyForQuery's status.
    fn ready(&mut self, status: u8) {
        self.status = match status {
            b'T' => TxStatus::InBlock,
            b'E' => TxStatus::Failed,
            _ => TxStatus::Idle,
        };
    }

    /// The hot reader: looks at headers only; the first error is kept and returned once
    /// ReadyForQuery arrives (at once when it broke the connection).
    async fn read_fast(&mut self) -> Result<u64, WireError> {
        let mut st = FastRead::default();
        loop {
            let (tag, len) = self.next_message().await?;
            if let Some(r) = self.fast_message(tag, len, &mut st) {
                return r;
            }
        }
    }

    /// The hot reader's step: takes the whole message at the front of the buffer (tag, total
    /// length); the answer once it is complete (ReadyForQuery, or an error that broke the
    /// connection), else None.
    fn fast_message(
        &mut self,
        tag: u8,
        len: usize,
        st: &mut FastRead,
    ) -> Option<Result<u64, WireError>> {
        match tag {
            b'C' => st.affected = rows_of_tag(&self.rbuf[5..len]),
            b'E' => {
                let e = self.take_error(); // consumes the message
                if e.broken {
                    return Some(Err(e));
                }
                st.error.get_or_insert(e);
                return None;
            }
            b'Z' => {
                let status = self.rbuf[5];
                self.rbuf.advance(len);
                self.ready(status);
                return Some(match st.error.take() {
                    Some(e) => Err(e),
                    None => Ok(st.affected),
                });
            }
            // BindComplete, DataRow, EmptyQuery, notices, parameter status, notifications.
            _ => {}
        }
        self.rbuf.advance(len);
        None
    }

    /// The reader of the cold requests: parses every message into `got`.
    async fn read_collecting(&mut self, got: &mut Collected) -> Result<(), WireError> {
        let mut error: Option<WireError> = None;
        loop {
            let (tag, _) = self.next_message().await?;
            if tag == b'E' {
                let e = self.take_error();
                if e.broken {
                    return Err(e);
                }
                error.get_or_insert(e);
                continue;
            }
            let msg = match Message::parse(&mut self.rbuf) {
                Ok(Some(m)) => m,
                Ok(None) => unreachable!("next_message saw the whole message"),
                Err(e) => {
                    self.broken = true;
                    return Err(WireError::closed(e));
                }
            };
            match msg {
                Message::CommandComplete(body) => {
                    got.affected = body.tag().map(|t| rows_of_tag(t.as_bytes())).unwrap_or(0)
                }
                Message::ParameterDescription(body) => {
                    got.param_types = body.parameters().collect().unwrap_or_default();
                }
                Message::RowDescription(_) => got.returns_rows = true,
                Message::NoData => got.returns_rows = false,
                Message::DataRow(body) => {
                    if let Some(rows) = &mut got.rows {
                        let buf = body.buffer();
                        let row = body
                            .ranges()
                            .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned())))
                            .collect()
                            .map_err(WireError::closed)?;
                        rows.push(row);
                    }
                }
                Message::ReadyForQuery(body) => {
                    self.ready(body.status());
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(()),
                    };
                }
                _ => {}
            }
        }
    }
}

/// What the hot reader keeps between messages: the command tag's count, the first error.
#[derive(Default)]
struct FastRead {
    affected: u64,
    error: Option<WireError>,
}

/// What the cold reader collects.
#[derive(Default)]
struct Collected {
    affected: u64,
    param_types: Vec<Oid>,
    returns_rows: bool,
    /// Rows are kept only when this is Some.
    rows: Option<Vec<Vec<Option<String>>>>,
}

/// The row count of a command tag (`SELECT 1`, `INSERT 0 5`, `UPDATE 3`): its last word, 0
/// when there is none (`BEGIN`), as tokio-postgres reads it.
fn rows_of_tag(tag: &[u8]) -> u64 {
    let tag = tag.strip_suffix(&[0]).unwrap_or(tag);
    let last = tag.rsplit(|b| *b == b' ').next().unwrap_or(&[]);
    // Digits only (on the hot path: no UTF-8 check, no generic parse); 0 for anything else.
    if last.is_empty() || !last.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    last.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(0)
}

/// Runs `fut` under `limit`; on expiry sends a cancel request and waits [`CANCEL_GRACE`] more
/// for the server's answer (then the error says pgopt cancelled it); with no answer even then,
/// the request (and the connection) is given up.
async fn bounded<T>(
    fut: impl std::future::Future<Output = Result<T, WireError>>,
    limit: Duration,
    cancel: &CancelHandle,
) -> Result<T, WireError> {
    tokio::pin!(fut);
    if let Ok(r) = tokio::time::timeout(limit, &mut fut).await {
        return r;
    }
    if let Err(e) = cancel.cancel().await {
        tracing::warn!("cancel request failed: {e}");
    }
    let secs = limit.as_secs_f64();
    match tokio::time::timeout(CANCEL_GRACE, &mut fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(mut e)) => {
            e.message = format!(
                "no answer within {secs:.0}s, cancelled by pgopt: {}",
                e.message
            );
            Err(e)
        }
        Err(_) => Err(WireError::closed(format!(
            "no answer within {secs:.0}s, nor to a cancel request; the connection is given up"
        ))),
    }
}

/// The addresses to try for `host`: hostaddr, the unix socket, or what the name resolves to.
async fn addresses(host: &HostSpec) -> io::Result<Vec<Addr>> {
    if let Some(ip) = host.hostaddr {
        return Ok(vec![Addr::Tcp(SocketAddr::new(ip, host.port))]);
    }
    if host.is_unix() {
        let path = PathBuf::from(&host.host).join(format!(".s.PGSQL.{}", host.port));
        return Ok(vec![Addr::Unix(path)]);
    }
    Ok(tokio::net::lookup_host((host.host.as_str(), host.port))
        .await?
        .map(Addr::Tcp)
        .collect())
}

fn auth_error(
    target: &Target,
    host: &HostSpec,
    code: Option<String>,
    message: String,
) -> ConnectError {
    ConnectError::Failed {
        code,
        error: Error::Auth {
            host: host.host.clone(),
            port: host.port,
            user: target.user.clone(),
            message,
        },
    }
}

/// Everything of one connect but the overall bound.
async fn connect_host(
    target: &Target,
    host: &HostSpec,
    mode: SslMode,
) -> Result<WireConn, ConnectError> {
    let label = host.label();
    let cannot = |why: String| {
        ConnectError::failed(Error::Connect(format!(
            "cannot connect to {label}: {why}. Is the server running? Check host and port"
        )))
    };
    let addrs = addresses(host)
        .await
        .map_err(|e| cannot(format!("cannot resolve the host name ({e})")))?;
    let mut last_error = None;
    let mut opened = None;
    for addr in addrs {
        match Stream::open(&addr).await {
            Ok(s) => {
                opened = Some((s, addr));
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some((stream, addr)) = opened else {
        return Err(cannot(match last_error {
            Some(e) => e.to_string(),
            None => "the host name resolves to no address".into(),
        }));
    };
    let mut conn = WireConn {
        stream,
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(1024),
        cancel: CancelHandle(Arc::new(CancelKey {
            addr: addr.clone(),
            process_id: 0,
            secret_key: 0,
        })),
        status: TxStatus::Idle,
        broken: false,
        next_stmt: 0,
        statement_timeout: target.statement_timeout,
        server_version_num: 0,
        in_recovery: false,
    };
    let lost = |e: WireError| {
        ConnectError::failed(Error::Connect(format!(
            "cannot connect to {label}: {}",
            e.message
        )))
    };

    // TLS when the server offers it is the standard path's business.
    if matches!(addr, Addr::Tcp(_)) && matches!(mode, SslMode::Prefer | SslMode::Allow) {
        conn.wbuf.clear();
        frontend::ssl_request(&mut conn.wbuf);
        conn.send().await.map_err(lost)?;
        let mut answer = [0u8; 1];
        let read = match &mut conn.stream {
            Stream::Tcp(s) => s.read_exact(&mut answer).await,
            Stream::Unix(s) => s.read_exact(&mut answer).await,
        };
        read.map_err(|e| lost(WireError::closed(e)))?;
        match answer[0] {
            b'N' => {}
            b'S' => {
                conn.broken = true; // nothing to send on drop
                return Err(ConnectError::NeedsTls(format!(
                    "{label} offers TLS and sslmode={} takes it",
                    mode.as_str()
                )));
            }
            other => {
                conn.broken = true;
                return Err(cannot(format!(
                    "unexpected answer {other:#x} to the TLS request: is it PostgreSQL?"
                )));
            }
        }
    }

    let mut params: Vec<(&str, &str)> = vec![
        ("client_encoding", "UTF8"),
        ("user", &target.user),
        ("database", &target.dbname),
        ("application_name", &target.application_name),
    ];
    if let Some(o) = &target.options {
        params.push(("options", o));
    }
    conn.wbuf.clear();
    frontend::startup_message(params, &mut conn.wbuf)
        .map_err(|e| cannot(format!("cannot write the start-up message ({e})")))?;
    conn.send().await.map_err(lost)?;

    // Authentication, then the session's parameters up to ReadyForQuery.
    let mut scram: Option<sasl::ScramSha256> = None;
    let mut key = (0, 0);
    loop {
        let (tag, _) = conn.next_message().await.map_err(lost)?;
        if tag == b'E' {
            let e = conn.take_error();
            conn.broken = true;
            let message = e
                .message
                .strip_prefix(&format!("{}: ", e.code))
                .unwrap_or(&e.message)
                .to_string();
            if e.code == "28P01" || e.code == "28000" {
                return Err(auth_error(target, host, Some(e.code), message));
            }
            return Err(ConnectError::Failed {
                error: Error::Connect(format!(
                    "cannot connect to {label}: server error {}. Fix what it names (the \
                     database, the user, max_connections) or choose another dbname/user",
                    e.message
                )),
                code: Some(e.code),
            });
        }
        let msg = match Message::parse(&mut conn.rbuf) {
            Ok(Some(m)) => m,
            Ok(None) => unreachable!("next_message saw the whole message"),
            Err(e) => return Err(lost(WireError::closed(e))),
        };
        let password = || {
            target.password_for(host).ok_or_else(|| {
                auth_error(
                    target,
                    host,
                    None,
                    "the server asked for a password and none was given".into(),
                )
            })
        };
        conn.wbuf.clear();
        match msg {
            Message::AuthenticationOk => continue,
            Message::AuthenticationCleartextPassword => {
                let pw = password()?;
                frontend::password_message(pw.expose().as_bytes(), &mut conn.wbuf)
                    .map_err(|e| cannot(e.to_string()))?;
            }
            Message::AuthenticationMd5Password(body) => {
                let pw = password()?;
                let hash = md5_hash(target.user.as_bytes(), pw.expose().as_bytes(), body.salt());
                frontend::password_message(hash.as_bytes(), &mut conn.wbuf)
                    .map_err(|e| cannot(e.to_string()))?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Ok(Some(m)) = mechanisms.next() {
                    offered |= m == sasl::SCRAM_SHA_256;
                }
                if !offered {
                    return Err(auth_error(
                        target,
                        host,
                        None,
                        "the server offers no SASL mechanism pgopt speaks (SCRAM-SHA-256)".into(),
                    ));
                }
                let pw = password()?;
                // No TLS, so no channel binding.
                let s = sasl::ScramSha256::new(
                    pw.expose().as_bytes(),
                    sasl::ChannelBinding::unsupported(),
                );
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, s.message(), &mut conn.wbuf)
                    .map_err(|e| cannot(e.to_string()))?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| cannot("SASL continue without a start".into()))?;
                s.update(body.data()).map_err(|e| {
                    auth_error(target, host, None, format!("SCRAM exchange failed: {e}"))
                })?;
                frontend::sasl_response(s.message(), &mut conn.wbuf)
                    .map_err(|e| cannot(e.to_string()))?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram
                    .as_mut()
                    .ok_or_else(|| cannot("SASL final without a start".into()))?;
                s.finish(body.data()).map_err(|e| {
                    auth_error(
                        target,
                        host,
                        None,
                        format!("the server's SCRAM signature does not verify: {e}"),
                    )
                })?;
                continue;
            }
            Message::BackendKeyData(body) => {
                key = (body.process_id(), body.secret_key());
                continue;
            }
            Message::ReadyForQuery(body) => {
                conn.ready(body.status());
                break;
            }
            Message::AuthenticationKerberosV5
            | Message::AuthenticationScmCredential
            | Message::AuthenticationGss
            | Message::AuthenticationSspi
            | Message::AuthenticationGssContinue(_) => {
                return Err(auth_error(
                    target,
                    host,
                    None,
                    "the server asks for an authentication method pgopt does not speak \
                     (GSS/SSPI/Kerberos); use password, md5 or scram-sha-256 in pg_hba.conf"
                        .into(),
                ));
            }
            _ => continue, // ParameterStatus, notices
        }
        conn.send().await.map_err(lost)?;
    }
    conn.cancel = CancelHandle(Arc::new(CancelKey {
        addr,
        process_id: key.0,
        secret_key: key.1,
    }));

    // The role check and statement_timeout in one round trip, as db::connect.
    let ms = target.statement_timeout.as_millis().to_string();
    let rows = conn
        .query_inner(SESSION_SETUP_SQL, &[TEXT_OID], &[Value::Text(&ms)])
        .await
        .map_err(|e| {
            ConnectError::failed(Error::Connect(format!(
                "cannot connect to {label}: checking the server role and setting \
                 statement_timeout failed: {}",
                e.message
            )))
        })?;
    let row = rows.first().map(Vec::as_slice).unwrap_or_default();
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    conn.in_recovery = text(0) == "t";
    let read_only = text(1) == "on";
    conn.server_version_num = text(2).parse().unwrap_or(0);
    let wrong = match target.role {
        TargetRole::Primary if conn.in_recovery || read_only => Some("a primary"),
        TargetRole::Standby if !conn.in_recovery => Some("a standby"),
        _ => None,
    };
    if let Some(wanted) = wrong {
        return Err(ConnectError::failed(Error::Connect(format!(
            "{label} is no longer {wanted} (target_session_attrs={}): connect again so that \
             the host is chosen anew",
            target.role.as_str()
        ))));
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_counts_come_from_the_last_word_of_the_command_tag() {
        assert_eq!(rows_of_tag(b"SELECT 1\0"), 1);
        assert_eq!(rows_of_tag(b"INSERT 0 5"), 5);
        assert_eq!(rows_of_tag(b"UPDATE 3"), 3);
        assert_eq!(rows_of_tag(b"BEGIN"), 0);
        assert_eq!(rows_of_tag(b""), 0);
        assert_eq!(rows_of_tag(b"SELECT 18446744073709551615"), u64::MAX);
        assert_eq!(rows_of_tag(b"SELECT 18446744073709551616"), 0);
        assert_eq!(rows_of_tag(b"SELECT -1"), 0);
        assert_eq!(rows_of_tag(b"SELECT +1"), 0);
    }

    #[test]
    fn values_are_sent_as_postgresql_reads_them() {
        let text = |v: Value| {
            let mut b = BytesMut::new();
            let null = matches!(v.write_text(&mut b), IsNull::Yes);
            (null, String::from_utf8(b.to_vec()).unwrap())
        };
        assert_eq!(text(Value::Null), (true, String::new()));
        assert_eq!(text(Value::Int(-42)), (false, "-42".into()));
        assert_eq!(text(Value::Float(0.1)), (false, "0.1".into()));
        assert_eq!(text(Value::Float(1e300)), (false, "1e300".into()));
        assert_eq!(text(Value::Float(f64::NAN)), (false, "NaN".into()));
        assert_eq!(
            text(Value::Float(f64::NEG_INFINITY)),
            (false, "-Infinity".into())
        );
        assert_eq!(text(Value::Text("a'b")), (false, "a'b".into()));
    }

    #[test]
    fn broken_follows_the_runners_classification() {
        for (code, fatal, broken) in [
            ("42601", false, false),
            ("22012", false, false),
            ("57014", false, false),
            ("08006", false, true),
            ("08P01", false, true),
            ("57P01", false, true),
            ("57P02", false, true),
            ("57P03", false, true),
            ("25P03", true, true),
        ] {
            let e = WireError::server(code, "m", fatal);
            assert_eq!(e.broken, broken, "{code}");
            assert_eq!(e.message, format!("{code}: m"));
        }
        assert!(WireError::closed("x").broken);
        let e = WireError::server("42601", "syntax error at or near \"SELEC\"", false)
            .into_error("preparing statement s");
        assert_eq!(e.sqlstate().map(|c| c.code()), Some("42601"));
        assert_eq!(
            e.to_string(),
            "preparing statement s: syntax error at or near \"SELEC\""
        );
        let e = WireError::closed("gone").into_error("preparing statement s");
        assert!(e.is_connection_lost());
        assert_eq!(WireError::closed("x").code, "08006");
    }
}
