//! The daemon's configuration: `pgopt.toml` for a fleet, or one TARGET on the command
//! line. This file holds the model; parsing and validation (errors that name the line)
//! build it.
//!
//! ```toml
//! listen = "127.0.0.1:8432"
//! data_dir = "/var/lib/pgopt"            # the SQLite store lives here
//! # store = "postgresql://pgopt@history/pgopt"   # or a PostgreSQL store
//!
//! [auth]                                  # required when listen is not loopback
//! token_file = "/etc/pgopt/token"         # bearer token / login password, one line
//!
//! [intervals]
//! sample = "10s"
//! snapshot = "15m"
//! timeout = "5s"                          # per target and collection
//!
//! [retention]
//! raw = "48h"
//! five_minutes = "30d"
//! hourly = "365d"
//!
//! [[target]]
//! name = "governance-primary"
//! dsn = "host=db1 dbname=acgs user=pgopt"  # passwords: here, PG*, .pgpass or password_file
//! groups = ["acgs", "prod"]
//! labels = { region = "eu-west-1" }
//! maintenance = { apply = true }
//!
//! [[alert]]
//! name = "cache"
//! when = "cache_hit_ratio < 0.99 for 10m"
//! severity = "warning"
//!
//! [regressions]
//! factor = 2.0
//! min_calls = 50
//! min_increase_ms = 1.0
//! window = "15m"
//!
//! [[notify.webhook]]
//! url = "https://hooks.example.com/pgopt"
//! timeout = "5s"
//! retries = 3
//!
//! [[maintenance.window]]
//! cron = "0 2 * * 6"
//! duration = "3h"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::secret::Secret;
use crate::maintain::window::Window;

use super::store::Retention;

mod parse;
pub use parse::{
    check_name, check_webhook_url, default_data_dir, human, parse, parse_listen, parse_store,
    parse_unchecked, read_token, tls_pair, MAX_NAME_LEN,
};

/// The default address: loopback only, so no auth is needed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8432";

/// The whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Where the SQLite store (and nothing else) is kept.
    pub data_dir: PathBuf,
    /// A PostgreSQL store's conninfo instead of SQLite (holds a password perhaps: never
    /// printed).
    pub store: Option<Secret>,
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
    pub intervals: Intervals,
    pub retention: Retention,
    pub targets: Vec<TargetConfig>,
    pub alerts: Vec<AlertRule>,
    pub regressions: Regressions,
    pub webhooks: Vec<Webhook>,
    /// Maintenance windows for every target with `maintenance.apply = true`.
    pub windows: Vec<Window>,
}

impl Config {
    /// One target from the command line (`pgopt serve TARGET`), everything else at its
    /// default. The target follows the usual rules (PG* variables, .pgpass; an empty `dsn`
    /// is psql's default connection); its name is `dbname@host:port` unless given.
    pub fn single(
        dsn: &str,
        name: Option<&str>,
        listen: SocketAddr,
        data_dir: PathBuf,
    ) -> Result<Config, String> {
        let target = crate::db::Target::parse(dsn)
            .map_err(|e| format!("TARGET: {e} (the value is not shown: it may hold a password)"))?;
        let name = match name {
            Some(n) => n.to_string(),
            None => default_target_name(&target),
        };
        check_name(&name, "target")?;
        let config = Config {
            listen,
            data_dir,
            store: None,
            auth: None,
            tls: None,
            intervals: Intervals::default(),
            retention: Retention::default(),
            targets: vec![TargetConfig {
                name,
                dsn: Secret::new(dsn),
                password_file: None,
                groups: Vec::new(),
                labels: BTreeMap::new(),
                maintenance_apply: false,
                line: 0,
            }],
            alerts: Vec::new(),
            regressions: Regressions::default(),
            webhooks: Vec::new(),
            windows: Vec::new(),
        };
        config.check_exposure()?;
        Ok(config)
    }

    /// Refuses an address other than loopback without auth: the pages and `/metrics` would
    /// be open to the network.
    pub fn check_exposure(&self) -> Result<(), String> {
        if !self.listen.ip().is_loopback() && self.auth.is_none() {
            return Err(format!(
                "listen {} is not a loopback address and no auth is set: anyone on the network \
                 could read the pages and metrics. Add a token (`openssl rand -hex 32 > \
                 /etc/pgopt/token`, then `[auth] token_file = \"/etc/pgopt/token\"` in the \
                 configuration or --token-file /etc/pgopt/token), or listen on 127.0.0.1",
                self.listen
            ));
        }
        Ok(())
    }
}

/// `dbname@host:port` of the first host (`dbname@local:port` for a unix socket).
fn default_target_name(t: &crate::db::Target) -> String {
    let name = match t.hosts.first() {
        Some(h) if h.is_unix() => format!("{}@local:{}", t.dbname, h.port),
        Some(h) => format!("{}@{}", t.dbname, h.label()),
        None => t.dbname.clone(),
    };
    name.chars().take(MAX_NAME_LEN).collect()
}

/// How clients prove who they are.
#[derive(Debug, Clone)]
pub struct Auth {
    /// The token (bearer header) that is also the login form's password.
    pub token: Secret,
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub sample: Duration,
    pub snapshot: Duration,
    /// The bound on one collection from one target (connect included).
    pub timeout: Duration,
    /// How many targets are collected at once.
    pub concurrency: usize,
    /// How many top statements (by total time) each sample keeps.
    pub top_statements: usize,
}

impl Default for Intervals {
    fn default() -> Self {
        Self {
            sample: Duration::from_secs(10),
            snapshot: Duration::from_secs(15 * 60),
            timeout: Duration::from_secs(5),
            concurrency: 8,
            top_statements: 50,
        }
    }
}

/// One watched server.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Unique; the label on every metric and the name on every page (never the DSN).
    pub name: String,
    /// The conninfo or URI, as every pgopt command takes it (holds a password perhaps).
    pub dsn: Secret,
    /// A file whose first line is the password, if not in the DSN, PG* or .pgpass.
    pub password_file: Option<PathBuf>,
    pub groups: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Run maintenance in the windows (`maintenance = { apply = true }`).
    pub maintenance_apply: bool,
    /// The line of `[[target]]` in the file, for messages.
    pub line: usize,
}

/// One alert rule: `when` is a condition (`cache_hit_ratio < 0.99 for 10m`,
/// `finding:xid_wraparound >= warning`).
#[derive(Debug, Clone)]
pub struct AlertRule {
    pub name: String,
    pub when: String,
    pub severity: String,
    /// Only targets in these groups (empty: all).
    pub groups: Vec<String>,
    pub line: usize,
}

/// Query-regression detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regressions {
    /// The last window's mean over the baseline's that fires.
    pub factor: f64,
    /// Calls in the window below which a statement is not judged.
    pub min_calls: u64,
    /// The smallest rise in mean time per call that fires (a statement going from 5 µs to
    /// 15 µs is 3x slower and of no consequence).
    pub min_increase: Duration,
    pub window: Duration,
}

impl Default for Regressions {
    fn default() -> Self {
        Self {
            factor: 2.0,
            min_calls: 50,
            min_increase: Duration::from_millis(1),
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl Regressions {
    /// How many checks a window gets at least (a short window is checked more often).
    pub const CHECKS_PER_WINDOW: u32 = 4;
    /// The longest time between two checks.
    pub const MAX_EVERY: Duration = Duration::from_secs(60);

    /// How often the daemon looks for regressions: every minute, or a quarter of the
    /// window when that is shorter (a 1-minute window is checked every 15 s), so that a
    /// regression is seen within about a window of its start whatever the window.
    pub fn every(&self) -> Duration {
        Self::MAX_EVERY
            .min(self.window / Self::CHECKS_PER_WINDOW)
            .max(Duration::from_secs(1))
    }
}

/// A webhook notified of firing and resolved alerts (JSON POST).
#[derive(Debug, Clone)]
pub struct Webhook {
    /// May hold a token in its query string: shown only as scheme://host.
    pub url: Secret,
    pub timeout: Duration,
    pub retries: u32,
}

impl TargetConfig {
    /// The connection settings: the DSN resolved as every command resolves it (PG*
    /// variables, .pgpass), and the password file's first line when the DSN, the
    /// environment and .pgpass give no password.
    pub fn target(&self) -> crate::error::Result<crate::db::Target> {
        let mut target = crate::db::Target::parse(self.dsn.expose())?;
        if target.password.is_none() {
            if let Some(file) = &self.password_file {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| crate::error::Error::input_file(file, &e))?;
                let first = text.lines().next().unwrap_or_default().to_string();
                if !first.is_empty() {
                    target.password = Some(Secret::new(first));
                }
            }
        }
        Ok(target)
    }
}
