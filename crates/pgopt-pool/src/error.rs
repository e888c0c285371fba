//! The library's one error type.
//!
//! Every variant says what went wrong and, where there is one, what to do next. Server errors
//! keep their SQLSTATE so callers match on codes, never on message text. No variant may carry
//! a password: connection errors name host, port, user and database only.

use std::path::Path;
use std::time::Duration;

use tokio_postgres::error::SqlState;

/// The library's result: [`Error`] unless another error type is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, each variant with its own message and, where there is one,
/// the next step. [`Error::is_bad_input`] tells the user's mistakes from failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user's input is wrong (a DSN that does not parse, a bad flag value).
    #[error("{0}")]
    BadInput(String),

    /// A saved snapshot that cannot be read.
    #[error("cannot read snapshot {path}: {reason}")]
    SnapshotFile {
        /// The file as the user named it.
        path: String,
        /// Why it cannot be read, with what to do.
        reason: String,
    },

    /// No host of the target could be connected to with the wanted role.
    #[error("{0}")]
    Connect(String),

    /// The server refused our credentials. Never retried on the next host (libpq does the same).
    #[error("authentication failed for user \"{user}\" at {host}:{port}: {message}. Check the password (PGPASSWORD, ~/.pgpass or the DSN) and pg_hba.conf")]
    Auth {
        /// The host that refused.
        host: String,
        /// Its port.
        port: u16,
        /// The user that was refused.
        user: String,
        /// The server's message (never the password).
        message: String,
    },

    /// The server does not let this role in (SQLSTATE 28000: the role does not exist, or
    /// pg_hba.conf has no line for it). Not a password problem: that is [`Error::Auth`].
    #[error("the server at {host}:{port} refused user \"{user}\": {message}. Check the user name (user= in the target, or PGUSER; without them the OS user is used), create the role, or add a pg_hba.conf line for it")]
    NotAuthorized {
        /// The host that refused.
        host: String,
        /// Its port.
        port: u16,
        /// The role that was refused.
        user: String,
        /// The server's message.
        message: String,
    },

    /// An input file that cannot be read (missing, unreadable): the user's to fix.
    #[error("cannot read {path}: {reason}")]
    InputFile {
        /// The file as the user named it.
        path: String,
        /// Why it cannot be read (not found, permission denied, ...).
        reason: String,
    },

    /// A wait ran out.
    #[error("{what} timed out after {:.1}s{}", .after.as_secs_f64(), hint(.next_step))]
    Timeout {
        /// What was waited for (`connecting to db1:5432`, a statement's context).
        what: String,
        /// How long it was waited for.
        after: Duration,
        /// What to do about it, when there is something.
        next_step: Option<String>,
    },

    /// A statement failed on the server.
    #[error("{context}: {message}{}", hint(.next_step))]
    Query {
        /// What was being done (the operation or statement name).
        context: String,
        /// The server's SQLSTATE; `None` when the error did not come from the server.
        code: Option<SqlState>,
        /// The server's (or the driver's) message.
        message: String,
        /// What to do about it, when the SQLSTATE says.
        next_step: Option<String>,
    },

    /// The connection dropped (server shut down, network gone).
    #[error("lost the connection to the server during {context}: {message}. Check that the server is up and run again")]
    ConnectionLost {
        /// What was being done when it dropped.
        context: String,
        /// The driver's message.
        message: String,
    },

    /// A file of ours (not the user's input) that could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// An embedded cluster could not be made or started.
    #[error("embedded PostgreSQL: {0}")]
    Embedded(String),

    /// Restarting a server (pg_ctl restart) failed or it did not come back.
    #[error("restarting the server: {0}")]
    Restart(String),

    /// A bug or an impossible state: not the user's to fix.
    #[error("internal error: {0}")]
    Internal(String),
}

fn hint(next: &Option<String>) -> String {
    match next {
        Some(n) => format!(". {n}"),
        None => String::new(),
    }
}

impl Error {
    /// An I/O error on `path` (a file of ours, not the user's input: see [`Error::input_file`]).
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// An input file (snapshot, journal, workload, result) that cannot be read: bad input.
    pub fn input_file(path: &Path, source: &std::io::Error) -> Self {
        Error::InputFile {
            path: path.display().to_string(),
            reason: io_reason(source),
        }
    }

    /// Wraps a tokio-postgres error from running a statement, keeping its SQLSTATE.
    pub fn query(context: impl Into<String>, err: tokio_postgres::Error) -> Self {
        let context = context.into();
        if let Some(db) = err.as_db_error() {
            let code = db.code().clone();
            let next_step = next_step_for(&code);
            return Error::Query {
                context,
                message: db.message().to_string(),
                code: Some(code),
                next_step,
            };
        }
        if crate::broken::Broken::from_error(&err).is_some_and(|b| b.connection_gone()) {
            return Error::ConnectionLost {
                context,
                message: err.to_string(),
            };
        }
        Error::Query {
            context,
            code: None,
            message: err.to_string(),
            next_step: None,
        }
    }

    /// The server's SQLSTATE, for a [`Error::Query`] that came from the server; `None` otherwise.
    pub fn sqlstate(&self) -> Option<&SqlState> {
        match self {
            Error::Query { code, .. } => code.as_ref(),
            _ => None,
        }
    }

    /// True when the error is the user's to fix (exit code 2), not a failure of ours or the server's.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::BadInput(_) | Error::SnapshotFile { .. } | Error::InputFile { .. }
        )
    }

    /// True when the connection is gone and further statements on it are pointless.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Error::ConnectionLost { .. } => true,
            Error::Query { code: Some(c), .. } => {
                crate::broken::Broken::from_sqlstate(c.code(), false)
                    .is_some_and(|b| b.connection_gone())
            }
            _ => false,
        }
    }
}

/// An I/O error in words, without Rust's "(os error 2)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a directory".to_string(),
        _ => e.to_string(),
    }
}

/// The next step for the SQLSTATEs a monitoring tool meets most.
pub fn next_step_for(code: &SqlState) -> Option<String> {
    let text = if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        "grant the role pg_monitor (GRANT pg_monitor TO <role>) or connect as a superuser"
    } else if *code == SqlState::QUERY_CANCELED {
        "the statement was cancelled by statement_timeout or by pgopt's own timeout; raise --statement-timeout"
    } else if *code == SqlState::LOCK_NOT_AVAILABLE {
        "another session holds a lock on the object; retry later or raise --lock-timeout"
    } else if *code == SqlState::UNDEFINED_FILE {
        "a library or extension is missing on the server; install it (e.g. postgresql-contrib)"
    } else if *code == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE {
        "a required module is not loaded; see shared_preload_libraries"
    } else {
        return None;
    };
    Some(text.to_string())
}
