//! What to connect to. (Placeholder: the full libpq-compatible parser lands next.)

use std::time::Duration;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetRole {
    #[default]
    Any,
    Primary,
    Standby,
    PreferStandby,
}

/// A password that never shows in Debug or Display.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub hosts: Vec<(String, u16)>,
    pub dbname: String,
    pub user: String,
    pub password: Option<Secret>,
    pub role: TargetRole,
    pub connect_timeout: Duration,
    pub statement_timeout: Duration,
}

impl Target {
    pub fn parse(dsn: &str) -> Result<Self> {
        let cfg: tokio_postgres::Config = dsn
            .parse()
            .map_err(|e| Error::BadInput(format!("cannot parse the connection string: {e}")))?;
        let ports = cfg.get_ports();
        let hosts = cfg
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                };
                (
                    host,
                    ports.get(i).or(ports.first()).copied().unwrap_or(5432),
                )
            })
            .collect();
        Ok(Target {
            hosts,
            dbname: cfg.get_dbname().unwrap_or("postgres").to_string(),
            user: cfg.get_user().unwrap_or("postgres").to_string(),
            password: cfg
                .get_password()
                .map(|p| Secret::new(String::from_utf8_lossy(p).to_string())),
            role: TargetRole::Any,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
        })
    }
}
