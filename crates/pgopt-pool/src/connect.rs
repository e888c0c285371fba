//! Connecting, host by host, the way libpq does it, with every wait bounded.
//!
//! Hosts are tried in order. The whole connect to one host (TCP, TLS, authentication, the
//! role check) is bounded by `connect_timeout`. An authentication failure stops at once
//! without trying the next host (as libpq); any other failure moves on. The role
//! (`target_session_attrs`) is decided after connecting, from `pg_is_in_recovery()` and
//! `transaction_read_only`. Each connection gets `application_name` and the target's
//! `statement_timeout` (as a bind parameter).

use std::error::Error as _;

use tokio_postgres::error::SqlState;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conn::{Conn, ConnParts};
use super::target::{HostSpec, SslMode, Target, TargetRole};
use super::tls;
use crate::error::{Error, Result};

/// The one round trip after authentication: the role check (`pg_is_in_recovery()`,
/// `transaction_read_only`), the server version, and `statement_timeout` set from `$1` (text,
/// in milliseconds). Shared with the bench's lean connection so that both set up a session alike.
pub const SESSION_SETUP_SQL: &str =
    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), \
     current_setting('server_version_num')::int, \
     set_config('statement_timeout', $1, false)";

/// Why one host could not be used.
#[derive(Debug)]
pub(crate) enum HostFailure {
    /// The server refused our credentials (a wrong password: [`Error::Auth`]) or our role
    /// (it does not exist, or pg_hba.conf rejects it: [`Error::NotAuthorized`]): stop, do not
    /// try other hosts.
    Auth(Error),
    /// The host name does not resolve.
    NoSuchHost(String),
    /// Something answered, but not in PostgreSQL's protocol (a web server, another service).
    NotPostgres(String),
    /// Nothing listens there (connection refused).
    Refused(String),
    /// The server answered with an error (database does not exist, too many connections).
    Server(String),
    /// Anything else (DNS, TLS, lost connection).
    Other(String),
}

/// Connects to the first host of `target` that answers with the wanted role.
pub async fn connect(target: &Target) -> Result<Conn> {
    if target.hosts.is_empty() {
        return Err(Error::BadInput("the target names no host".into()));
    }
    let tls = tls::make_connector(target)?;
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut timeouts = 0usize;
    let mut wrong_role = 0usize;
    let mut server_errors = 0usize;
    let mut explained = 0usize;
    let mut fallback: Option<Conn> = None;
    for host in &target.hosts {
        let label = host.label();
        let attempt = tokio::time::timeout(
            target.connect_timeout,
            connect_host(target, host, tls.as_ref()),
        )
        .await;
        let conn = match attempt {
            Err(_) => {
                timeouts += 1;
                failures.push((
                    label,
                    format!(
                        "no answer within {:.1}s (connect_timeout)",
                        target.connect_timeout.as_secs_f64()
                    ),
                ));
                continue;
            }
            Ok(Err(HostFailure::Auth(e))) => return Err(e),
            Ok(Err(HostFailure::Server(m))) => {
                server_errors += 1;
                failures.push((label, m));
                continue;
            }
            Ok(Err(HostFailure::NoSuchHost(m) | HostFailure::NotPostgres(m))) => {
                explained += 1;
                failures.push((label, m));
                continue;
            }
            Ok(Err(HostFailure::Refused(m) | HostFailure::Other(m))) => {
                failures.push((label, m));
                continue;
            }
            Ok(Ok(conn)) => conn,
        };
        let is_primary = !conn.in_recovery && !conn.transaction_read_only;
        match target.role {
            TargetRole::Any => return Ok(conn),
            TargetRole::Primary if is_primary => return Ok(conn),
            TargetRole::Standby | TargetRole::PreferStandby if conn.in_recovery => return Ok(conn),
            TargetRole::PreferStandby => {
                tracing::debug!("{label} is not a standby; keeping it in case none is");
                if fallback.is_none() {
                    fallback = Some(conn);
                }
            }
            TargetRole::Primary | TargetRole::Standby => {
                wrong_role += 1;
                failures.push((
                    label,
                    format!(
                        "{}, wanted a {}",
                        describe_role(&conn),
                        if target.role == TargetRole::Primary {
                            "primary"
                        } else {
                            "standby"
                        }
                    ),
                ));
            }
        }
    }
    if let Some(conn) = fallback {
        return Ok(conn);
    }
    let hosts = target
        .hosts
        .iter()
        .map(HostSpec::label)
        .collect::<Vec<_>>()
        .join(", ");
    if timeouts == failures.len() {
        return Err(Error::Timeout {
            what: format!("connecting to {hosts}"),
            after: target.connect_timeout,
            next_step: Some(
                "the server accepted the connection but did not answer (or the network dropped \
                 it); check host and port, that it is PostgreSQL, or raise connect_timeout"
                    .into(),
            ),
        });
    }
    let mut msg = format!(
        "cannot connect to {} (target_session_attrs={}):",
        target.display_safe(),
        target.role.as_str()
    );
    for (label, why) in &failures {
        msg.push_str(&format!("\n  - {label}: {why}"));
    }
    let tls_trouble = failures
        .iter()
        .any(|(_, why)| why.contains("certificate") || why.contains("TLS"));
    if wrong_role > 0 {
        msg.push_str(&format!(
            "\nNo host has the role {}: check the host list or target_session_attrs (--target-role).",
            target.role.as_str()
        ));
    }
    if tls_trouble {
        msg.push_str(
            "\nTLS failed: check sslmode and sslrootcert (verify-full needs the host name in the \
             server certificate).",
        );
    }
    if server_errors > 0 {
        msg.push_str(
            "\nThe server answered with an error: fix what it names (the database, the user, \
             max_connections) or choose another dbname/user.",
        );
    }
    if wrong_role + server_errors + explained < failures.len() {
        msg.push_str(
            "\nIs the server running? Check host and port; for a local embedded cluster run \
             `pgopt embedded start`.",
        );
    }
    Err(Error::Connect(msg))
}

fn describe_role(conn: &Conn) -> &'static str {
    match (conn.in_recovery, conn.transaction_read_only) {
        (true, _) => "is a standby (in recovery)",
        (false, true) => "is a primary but read-only (transaction_read_only = on)",
        (false, false) => "is a primary",
    }
}

/// True when the error chain holds a refused TCP connection.
fn is_refused(err: &tokio_postgres::Error) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// The error and all its causes (tokio-postgres's Display shows only the outermost).
fn full_message(err: &tokio_postgres::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Sorts a failed connect: authentication, refused, or something else.
fn classify(target: &Target, host: &HostSpec, err: tokio_postgres::Error) -> HostFailure {
    if let Some(db) = err.as_db_error() {
        if *db.code() == SqlState::INVALID_AUTHORIZATION_SPECIFICATION {
            return HostFailure::Auth(Error::NotAuthorized {
                host: host.host.clone(),
                port: host.port,
                user: target.user.clone(),
                message: db.message().to_string(),
            });
        }
        if *db.code() == SqlState::INVALID_PASSWORD {
            return HostFailure::Auth(Error::Auth {
                host: host.host.clone(),
                port: host.port,
                user: target.user.clone(),
                message: db.message().to_string(),
            });
        }
        return HostFailure::Server(format!(
            "server error {}: {}",
            db.code().code(),
            db.message()
        ));
    }
    let text = full_message(&err);
    if text.contains("password missing") {
        return HostFailure::Auth(Error::Auth {
            host: host.host.clone(),
            port: host.port,
            user: target.user.clone(),
            message: "the server asked for a password and none was given".into(),
        });
    }
    if err.to_string() == "authentication error" {
        return HostFailure::Auth(Error::Auth {
            host: host.host.clone(),
            port: host.port,
            user: target.user.clone(),
            message: text,
        });
    }
    if is_refused(&err) {
        return HostFailure::Refused(format!("nothing listens there ({text})"));
    }
    if speaks_another_protocol(&err) {
        return HostFailure::NotPostgres(format!(
            "something answers on port {}, but it is not a PostgreSQL server ({text}); \
             check the port (PostgreSQL's default is 5432)",
            host.port
        ));
    }
    HostFailure::Other(text)
}

/// True when the start-up exchange failed on what came back rather than on the network or
/// TLS: an answer that does not parse as the PostgreSQL protocol (tokio-postgres's
/// unexpected-message and parse errors, or an I/O error carrying no OS error code, such as
/// the codec's left-over bytes at end of stream).
fn speaks_another_protocol(err: &tokio_postgres::Error) -> bool {
    if err.is_closed() || err.as_db_error().is_some() {
        return false;
    }
    let mut source = err.source();
    let mut saw_io = false;
    while let Some(s) = source {
        if s.is::<rustls::Error>() {
            return false;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.raw_os_error().is_some()
                || io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return false;
            }
            saw_io = true;
        }
        source = s.source();
    }
    // No cause at all: tokio-postgres's own "unexpected message from server".
    saw_io || err.source().is_none()
}

/// Resolves a host name before connecting, so that a name that does not resolve is said in
/// so many words (tokio-postgres reports it as a generic I/O error).
async fn check_resolves(host: &HostSpec) -> std::result::Result<(), HostFailure> {
    if host.is_unix() || host.hostaddr.is_some() || host.host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    match tokio::net::lookup_host((host.host.as_str(), host.port))
        .await
        .map(|mut addrs| addrs.next())
    {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(HostFailure::NoSuchHost(format!(
            "the host name \"{}\" resolves to no address; check its spelling or DNS",
            host.host
        ))),
        Err(e) => Err(HostFailure::NoSuchHost(format!(
            "the host name \"{}\" does not resolve ({e}); check its spelling or DNS",
            host.host
        ))),
    }
}

async fn open<T>(
    cfg: &tokio_postgres::Config,
    tls: T,
) -> std::result::Result<Client, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket> + 'static,
    T::Stream: Send + 'static,
{
    let (client, connection) = cfg.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection ended: {e}");
        }
    });
    Ok(client)
}

/// Connects to one host (unbounded: the caller bounds it), checks its role, sets
/// statement_timeout. Does not judge the role.
pub(crate) async fn connect_host(
    target: &Target,
    host: &HostSpec,
    tls: Option<&MakeRustlsConnect>,
) -> std::result::Result<Conn, HostFailure> {
    check_resolves(host).await?;
    let mut cfg = tokio_postgres::Config::new();
    match host.hostaddr {
        // libpq connects to hostaddr and uses host only as a name; a socket path is no name.
        Some(addr) if host.host.starts_with('/') => {
            cfg.host(addr.to_string());
        }
        Some(addr) => {
            cfg.host(&host.host).hostaddr(addr);
        }
        None if host.is_unix() => {
            cfg.host_path(&host.host);
        }
        None => {
            cfg.host(&host.host);
        }
    }
    cfg.port(host.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(&target.application_name)
        .connect_timeout(target.connect_timeout);
    if let Some(o) = &target.options {
        cfg.options(o);
    }
    if let Some(p) = target.password_for(host) {
        cfg.password(p.expose());
    }
    // Unix sockets never use TLS (PostgreSQL does not offer it there).
    let tls = match tls {
        Some(t) if !host.is_unix() => Some(t.clone()),
        _ => None,
    };
    let client = match &tls {
        Some(t) => {
            cfg.ssl_mode(match tls::effective_mode(target) {
                SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                _ => tokio_postgres::config::SslMode::Require,
            });
            open(&cfg, t.clone()).await
        }
        None => {
            cfg.ssl_mode(tokio_postgres::config::SslMode::Disable);
            open(&cfg, NoTls).await
        }
    }
    .map_err(|e| classify(target, host, e))?;

    let query_failed = |what: &str, e: tokio_postgres::Error| {
        HostFailure::Other(Error::query(what, e).to_string())
    };
    // One round trip: the role check and statement_timeout (a bind parameter) together,
    // typed up front so that no separate prepare is needed. Connects are what a pool's
    // set-up time is made of.
    let ms = target.statement_timeout.as_millis().to_string();
    let row = client
        .query_typed_one(
            SESSION_SETUP_SQL,
            &[(&ms, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .map_err(|e| query_failed("checking the server role and setting statement_timeout", e))?;
    let in_recovery: bool = row.get(0);
    let read_only: String = row.get(1);
    let server_version_num: i32 = row.get(2);
    Ok(Conn::new(ConnParts {
        client,
        host: host.host.clone(),
        port: host.port,
        database: target.dbname.clone(),
        user: target.user.clone(),
        server_version_num,
        in_recovery,
        transaction_read_only: read_only == "on",
        statement_timeout: target.statement_timeout,
        tls,
    }))
}
