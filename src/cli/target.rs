//! Target arguments shared by every command that talks to a server, and the one place they
//! become a connection.

use std::time::Duration;

use clap::Args;

use crate::db::{self, Conn, Target, TargetRole};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Connection string: `host=... dbname=...` or `postgresql://user@host:port/db`
    /// (several hosts: `postgresql://h1:5432,h2:5432/db`). PG* variables and ~/.pgpass fill
    /// in what it leaves out [default: as psql: PGHOST or the local socket, the OS user, the
    /// database named after the user].
    #[arg(value_name = "TARGET")]
    pub dsn: Option<String>,
    /// Probe a port range on one host, list what answers, and use the primary
    /// (e.g. `localhost:5432-5440`).
    #[arg(long, help_heading = "Connection", value_name = "HOST:FROM-TO")]
    pub discover: Option<String>,
    /// Which server of a multi-host target to use [default: target_session_attrs of the
    /// target, else any].
    #[arg(long, help_heading = "Connection", value_enum)]
    pub target_role: Option<RoleArg>,
    /// Seconds allowed for the whole connect to one host (TCP, TLS, authentication, role
    /// check) [default: connect_timeout of the target or PGCONNECT_TIMEOUT, else 10].
    #[arg(long, help_heading = "Connection", value_name = "SECONDS")]
    pub connect_timeout: Option<u64>,
    /// Seconds allowed for each statement (server statement_timeout; cancelled client-side too).
    #[arg(
        long,
        help_heading = "Connection",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub statement_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Any,
    Primary,
    Standby,
    PreferStandby,
}

impl From<RoleArg> for TargetRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Any => TargetRole::Any,
            RoleArg::Primary => TargetRole::Primary,
            RoleArg::Standby => TargetRole::Standby,
            RoleArg::PreferStandby => TargetRole::PreferStandby,
        }
    }
}

/// The PG* variables that name a target on their own.
const TARGET_ENV: &[&str] = &["PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE"];

/// What the default connection (no target given) tried, set once by [`TargetArgs::resolve`]
/// so that a failed connect can say so, naming the command the user ran.
static DEFAULT_TRIED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The hint printed under a connection error when no target was given: what was tried and
/// how to give a target, in the words of the command that ran (`pgopt bench`, ...).
pub(super) fn default_target_hint(e: &anyhow::Error, command: &str) -> Option<String> {
    let tried = DEFAULT_TRIED.get()?;
    let connecting = matches!(
        e.downcast_ref::<Error>(),
        Some(
            Error::Connect(_)
                | Error::Auth { .. }
                | Error::NotAuthorized { .. }
                | Error::Timeout { .. }
        )
    );
    if !connecting {
        return None;
    }
    let mut hint = format!(
        "No target was given, so pgopt connected as psql would (PG* variables, then the \
         defaults): {tried}.\n\
         Give one: {command} 'postgresql://user@host:5432/db' (or 'host=... dbname=...'), set \
         PGHOST/PGPORT/PGUSER/PGDATABASE, or probe ports with --discover localhost:5432-5440.\n\
         No server at hand? `pgopt embedded start` runs a local one and prints its connection \
         string; `pgopt demo` shows everything on a throw-away cluster."
    );
    if command == "pgopt tune" {
        hint.push_str(
            "\nWithout a server, `pgopt tune --method pgtune --memory 16GB --cpus 8` gives \
             PGTune's settings for the hardware you name.",
        );
    }
    Some(hint)
}

impl TargetArgs {
    /// True when neither a connection string, --discover nor a PG* variable names a target:
    /// the connection then goes where psql's would (socket directory, the OS user, the
    /// database of the same name).
    pub fn is_default(&self) -> bool {
        self.dsn.is_none()
            && self.discover.is_none()
            && !TARGET_ENV.iter().any(|v| std::env::var_os(v).is_some())
    }

    /// Resolves the arguments, the environment and ~/.pgpass into a target. With no target
    /// at all this is psql's default connection (see [`TargetArgs::is_default`]).
    pub fn resolve(&self) -> Result<Target> {
        let env = |name: &str| std::env::var(name).ok();
        let mut target = Target::resolve(self.dsn.as_deref(), &env)?;
        if let Some(role) = self.target_role {
            target.role = role.into();
        }
        if let Some(secs) = self.connect_timeout {
            if secs == 0 {
                return Err(Error::BadInput(
                    "--connect-timeout must be at least 1 second".into(),
                ));
            }
            target.connect_timeout = Duration::from_secs(secs);
        }
        if self.statement_timeout == 0 {
            return Err(Error::BadInput(
                "--statement-timeout must be at least 1 second".into(),
            ));
        }
        target.statement_timeout = Duration::from_secs(self.statement_timeout);
        if self.dsn.is_none() && self.discover.is_none() {
            let hosts = target
                .hosts
                .iter()
                .map(|h| {
                    if h.is_unix() {
                        format!("the socket in {} (port {})", h.host, h.port)
                    } else {
                        h.label()
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let _ = DEFAULT_TRIED.set(format!(
                "{hosts} as user \"{}\", database \"{}\"",
                target.user, target.dbname
            ));
        }
        Ok(target)
    }

    /// Connects, after port discovery when asked for.
    pub async fn connect(&self) -> Result<(Target, Conn)> {
        let mut target = self.resolve()?;
        if let Some(spec) = &self.discover {
            let (host, ports) = db::discover::parse_discover_spec(spec)?;
            let probes = db::discover::discover(&host, ports, &target).await;
            for p in &probes {
                tracing::info!("discover {host}:{}: {:?}", p.port, p.outcome);
            }
            eprintln!("{}", db::discover::render_probes(&host, &probes));
            let port = db::discover::pick_primary(&probes).ok_or_else(|| {
                Error::Connect(format!(
                    "no primary answered on {spec}; check the range or give the target directly"
                ))
            })?;
            target.set_single_host(&host, port);
        }
        let conn = db::connect(&target).await?;
        Ok((target, conn))
    }
}
