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
    /// in what it leaves out.
    #[arg(value_name = "TARGET")]
    pub dsn: Option<String>,
    /// Probe a port range on one host, list what answers, and use the primary
    /// (e.g. `localhost:5432-5440`).
    #[arg(long, value_name = "HOST:FROM-TO")]
    pub discover: Option<String>,
    /// Which server of a multi-host target to use.
    #[arg(long, value_enum)]
    pub target_role: Option<RoleArg>,
    /// Seconds allowed for the whole connect to one host (TCP, TLS, authentication, role check).
    #[arg(long, value_name = "SECONDS")]
    pub connect_timeout: Option<u64>,
    /// Seconds allowed for each statement (server statement_timeout; cancelled client-side too).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
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

impl TargetArgs {
    /// Resolves the arguments, the environment and ~/.pgpass into a target.
    pub fn resolve(&self) -> Result<Target> {
        if self.dsn.is_none()
            && self.discover.is_none()
            && !TARGET_ENV.iter().any(|v| std::env::var_os(v).is_some())
        {
            return Err(Error::BadInput(
                "no target given. Pass a connection string \
                 (pgopt analyze 'postgresql://user@host:5432/db' or 'host=... dbname=...'), \
                 set PGHOST/PGPORT/PGDATABASE/PGUSER, or probe ports with \
                 --discover localhost:5432-5440. No server at hand? `pgopt embedded start` \
                 runs a local one and prints its connection string, and `pgopt demo` shows \
                 everything on a throw-away cluster"
                    .into(),
            ));
        }
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
