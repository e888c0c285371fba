//! `pgopt serve`: watch one server (`pgopt serve TARGET`) or a fleet (`--config
//! pgopt.toml`). Flags override the file; `--check-config` validates and prints a summary
//! that holds no DSN, password or token.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::EXIT_OK;
use crate::error::Error;
use crate::serve::clock::{Clock, SystemClock};
use crate::serve::config::{self, human, Auth, Config};
use crate::serve::daemon::Daemon;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The one server to watch: `host=... dbname=...` or `postgresql://user@host:port/db`;
    /// PG* variables and ~/.pgpass fill in what it leaves out, as for every command. Leave
    /// it out with --config.
    #[arg(value_name = "TARGET", conflicts_with = "config")]
    pub target: Option<String>,
    /// A fleet's configuration file (TOML: targets, intervals, retention, alerts, webhooks,
    /// maintenance windows, listen address and auth).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The name the one TARGET is shown under [default: dbname@host:port].
    #[arg(long, value_name = "NAME", requires = "target")]
    pub name: Option<String>,
    /// Where the pages and /metrics listen [default: the file's listen, else 127.0.0.1:8432].
    /// Any address other than loopback needs --token-file (or [auth] in the file).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Where the history (a SQLite file) and the lock file are kept [default: the file's
    /// data_dir, else the user's state directory + /pgopt].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the history in a PostgreSQL database instead (a connection string).
    #[arg(long, value_name = "DSN")]
    pub store: Option<String>,
    /// Validate the configuration, print a summary (no secret) and exit: 0 valid, 2 not.
    #[arg(long)]
    pub check_config: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// A file whose first line is the bearer token (and the login form's password).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Log lines as text or as JSON objects (one per line), on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs for a daemon: info by default (start, stop, targets going down and up, alerts),
/// `PGOPT_LOG` overrides; JSON lines with `--log-format json`.
pub fn init_logging(verbose: u8, format: LogFormat) {
    let default = if verbose >= 3 {
        "pgopt=debug"
    } else {
        "pgopt=info"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGOPT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(crate::report::term::color_stderr())
            .try_init(),
    };
}

pub async fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let config = resolve(&args).map_err(Error::BadInput)?;
    if args.check_config {
        print!("{}", summary(&config, args.config.is_some()));
        return Ok(EXIT_OK);
    }
    let config = Arc::new(config);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let daemon = Daemon::start(config.clone(), clock)?;
    let fleet = Arc::new(crate::serve::wire::fleet_of(&config));
    eprintln!(
        "pgopt serve: watching {} target(s) on {}://{}, data in {} (stop with Ctrl-C or SIGTERM)",
        config.targets.len(),
        if config.tls.is_some() {
            "https"
        } else {
            "http"
        },
        config.listen,
        config.data_dir.display()
    );
    crate::serve::wire::run(daemon, fleet).await?;
    Ok(EXIT_OK)
}

/// The configuration from the file or the one TARGET, with the flags applied over it.
fn resolve(args: &ServeArgs) -> Result<Config, String> {
    let listen = match &args.listen {
        Some(l) => Some(config::parse_listen(l).map_err(|e| format!("--listen: {e}"))?),
        None => None,
    };
    let mut file_listen_at = None;
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!(
                    "cannot read the configuration {}: {e}; give an existing file to --config",
                    path.display()
                )
            })?;
            let origin = path.display().to_string();
            // The exposure check comes after the flags, which may add a token or change the
            // address.
            let (c, listen_at) = config::parse_unchecked(&text, &origin)?;
            file_listen_at = Some(listen_at);
            c
        }
        None => {
            let data_dir = match &args.data_dir {
                Some(d) => d.clone(),
                None => config::default_data_dir()?,
            };
            let dsn = args.target.as_deref().unwrap_or("");
            Config::single(
                dsn,
                args.name.as_deref(),
                crate::serve::config::DEFAULT_LISTEN
                    .parse()
                    .expect("the default address parses"),
                data_dir,
            )?
        }
    };
    if let Some(l) = listen {
        config.listen = l;
    }
    apply_flags(&mut config, args)?;
    config
        .check_exposure()
        .map_err(|e| match (&args.listen, file_listen_at) {
            (Some(_), _) => format!("--listen: {e}"),
            (None, Some(at)) => format!("{at}: {e}"),
            (None, None) => e,
        })?;
    Ok(config)
}

/// --data-dir, --store, --tls-cert/--tls-key and --token-file over the file's values.
fn apply_flags(config: &mut Config, args: &ServeArgs) -> Result<(), String> {
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    if let Some(s) = &args.store {
        config.store = Some(config::parse_store(s).map_err(|e| format!("--store: {e}"))?);
    }
    if args.tls_cert.is_some() || args.tls_key.is_some() {
        config.tls = config::tls_pair(args.tls_cert.clone(), args.tls_key.clone())?;
    }
    if let Some(f) = &args.token_file {
        let token = config::read_token(f).map_err(|e| format!("--token-file: {e}"))?;
        config.auth = Some(Auth { token });
    }
    Ok(())
}

/// What `--check-config` prints: names, intervals, counts; never a DSN, password, token or
/// webhook URL beyond its host.
pub fn summary(config: &Config, from_file: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration is valid{}",
        if from_file { "" } else { " (one target)" }
    );
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let _ = writeln!(
        out,
        "listen:     {scheme}://{} ({})",
        config.listen,
        if config.auth.is_some() {
            "token required"
        } else {
            "no auth: loopback only"
        }
    );
    let _ = writeln!(out, "data dir:   {}", config.data_dir.display());
    let _ = writeln!(
        out,
        "store:      {}",
        match &config.store {
            None => "SQLite in the data dir",
            Some(s) if s.expose() == "memory" => "memory (history lost on restart)",
            Some(_) => "PostgreSQL",
        }
    );
    let iv = &config.intervals;
    let _ = writeln!(
        out,
        "intervals:  sample every {}, full snapshot every {}, timeout {}, {} at once, top {} \
         statements",
        human(iv.sample),
        human(iv.snapshot),
        human(iv.timeout),
        iv.concurrency,
        iv.top_statements
    );
    let r = &config.retention;
    let _ = writeln!(
        out,
        "retention:  raw {}, 5-minute rollups {}, hourly rollups {}",
        human(r.raw),
        human(r.five_minutes),
        human(r.hourly)
    );
    let _ = writeln!(out, "targets:    {}", config.targets.len());
    for t in &config.targets {
        let mut extra = Vec::new();
        if !t.groups.is_empty() {
            extra.push(format!("groups {}", t.groups.join(", ")));
        }
        if !t.labels.is_empty() {
            extra.push(format!(
                "labels {}",
                t.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if t.maintenance_apply {
            extra.push("maintenance applied in windows".into());
        }
        let _ = writeln!(
            out,
            "  - {}{}",
            t.name,
            if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join("; "))
            }
        );
    }
    let _ = writeln!(out, "alerts:     {}", config.alerts.len());
    for a in &config.alerts {
        let _ = writeln!(out, "  - {} [{}]: {}", a.name, a.severity, a.when);
    }
    let rg = &config.regressions;
    let _ = writeln!(
        out,
        "regressions: mean over {} above {}x its baseline, at least {} calls, checked every {}",
        human(rg.window),
        rg.factor,
        rg.min_calls,
        human(rg.every())
    );
    let _ = writeln!(out, "webhooks:   {}", config.webhooks.len());
    for w in &config.webhooks {
        let shown = reqwest::Url::parse(w.url.expose())
            .ok()
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  - {shown} (timeout {}, {} retries)",
            human(w.timeout),
            w.retries
        );
    }
    let _ = writeln!(out, "maintenance windows: {}", config.windows.len());
    for w in &config.windows {
        let _ = writeln!(
            out,
            "  - \"{}\" for {} ({})",
            w.cron_text,
            crate::maintain::window::duration_text(w.duration),
            w.timezone
        );
    }
    out
}
