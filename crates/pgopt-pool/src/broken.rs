//! One answer to "can this connection still be used?".
//!
//! Every place that must decide whether to keep a connection after an error asks here: the
//! bench runner (both client paths), the pool ([`super::pool`]), the library error
//! ([`crate::Error::is_connection_lost`]) and the executor. The decision is made from the
//! SQLSTATE (never from message text), from a FATAL or PANIC severity (the server ends the
//! session after sending it), and from a socket that closed or failed without a message.
//!
//! Codes: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.

use tokio_postgres::error::{DbError, Severity};

/// Why a connection is no longer worth using. `None` from the classifiers: keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The socket closed or failed without a server message (reported as SQLSTATE 08006).
    Closed,
    /// A connection exception from the server: SQLSTATE class 08.
    ConnectionException,
    /// The server is going away or not yet accepting work: 57P01 admin_shutdown,
    /// 57P02 crash_shutdown, 57P03 cannot_connect_now.
    Shutdown,
    /// The server ended the session with a FATAL or PANIC error (an idle-in-transaction
    /// timeout, a dropped database, ...): the socket closes right after.
    Fatal,
    /// 25006 read_only_sql_transaction: the server that took writes is a standby now (after
    /// a failover). The socket works, but it leads to the wrong server: reconnect through the
    /// target (`target_session_attrs`) to reach the new primary.
    ReadOnly,
}

impl Broken {
    /// The SQLSTATE reported when a connection went away without a server message.
    pub const CLOSED_SQLSTATE: &'static str = "08006";

    /// Classifies a server error by its SQLSTATE and whether it was FATAL (or PANIC).
    pub fn from_sqlstate(code: &str, fatal: bool) -> Option<Broken> {
        if code.starts_with("08") {
            Some(Broken::ConnectionException)
        } else if matches!(code, "57P01" | "57P02" | "57P03") {
            Some(Broken::Shutdown)
        } else if code == "25006" {
            Some(Broken::ReadOnly)
        } else if fatal {
            Some(Broken::Fatal)
        } else {
            None
        }
    }

    /// Classifies a server error message.
    pub fn from_db_error(db: &DbError) -> Option<Broken> {
        let fatal = matches!(
            db.parsed_severity(),
            Some(Severity::Fatal) | Some(Severity::Panic)
        );
        Broken::from_sqlstate(db.code().code(), fatal)
    }

    /// Classifies a tokio-postgres error: a server error by its code and severity, else a
    /// closed connection or an I/O error underneath as [`Broken::Closed`]; anything else
    /// (a value that cannot be converted, a row that does not decode) leaves the connection
    /// usable.
    pub fn from_error(err: &tokio_postgres::Error) -> Option<Broken> {
        if let Some(db) = err.as_db_error() {
            return Broken::from_db_error(db);
        }
        (err.is_closed() || has_io_source(err)).then_some(Broken::Closed)
    }

    /// The connection itself is gone (or going): every variant but [`Broken::ReadOnly`],
    /// whose socket still answers.
    pub fn connection_gone(self) -> bool {
        !matches!(self, Broken::ReadOnly)
    }
}

fn has_io_source(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_exceptions_class_08_are_broken() {
        for code in [
            "08000", "08001", "08003", "08004", "08006", "08007", "08P01",
        ] {
            assert_eq!(
                Broken::from_sqlstate(code, false),
                Some(Broken::ConnectionException),
                "{code}"
            );
        }
    }

    #[test]
    fn shutdowns_57p01_57p02_57p03_are_broken() {
        for code in ["57P01", "57P02", "57P03"] {
            assert_eq!(
                Broken::from_sqlstate(code, false),
                Some(Broken::Shutdown),
                "{code}"
            );
            assert!(Broken::Shutdown.connection_gone());
        }
    }

    #[test]
    fn read_only_25006_is_broken_but_the_socket_is_not_gone() {
        assert_eq!(
            Broken::from_sqlstate("25006", false),
            Some(Broken::ReadOnly)
        );
        assert!(!Broken::ReadOnly.connection_gone());
    }

    #[test]
    fn fatal_errors_are_broken_whatever_their_code() {
        // 25P03 idle_in_transaction_session_timeout and 57P04 database_dropped come as FATAL.
        assert_eq!(Broken::from_sqlstate("25P03", true), Some(Broken::Fatal));
        assert_eq!(Broken::from_sqlstate("57P04", true), Some(Broken::Fatal));
        assert_eq!(Broken::from_sqlstate("25P03", false), None);
        assert!(Broken::Fatal.connection_gone());
    }

    #[test]
    fn ordinary_errors_keep_the_connection() {
        // syntax, division by zero, cancel (57014), serialization (40001), deadlock, lock
        // timeout, unique violation, a read-only-transaction relative that is not 25006.
        for code in [
            "42601", "22012", "57014", "40001", "40P01", "55P03", "23505", "25001", "57P04",
        ] {
            assert_eq!(Broken::from_sqlstate(code, false), None, "{code}");
        }
    }

    #[test]
    fn closed_sqlstate_is_a_connection_exception() {
        assert_eq!(
            Broken::from_sqlstate(Broken::CLOSED_SQLSTATE, false),
            Some(Broken::ConnectionException)
        );
        assert!(Broken::Closed.connection_gone());
    }
}
