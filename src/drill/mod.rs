//! `pgopt drill failover`: proves the failover-aware pool's claims with a drill anyone can run.
//!
//! It starts a primary and a synchronous standby (embedded clusters: pg_basebackup,
//! `synchronous_standby_names` naming the standby, `synchronous_commit = on`), runs N
//! clients through [`pgopt_pool::PgPool`] (a write pool over both servers,
//! `target_session_attrs=read-write`), then breaks the primary one of three ways
//! ([`Mode`]) while the clients keep running, and reports how long writes and reads took to
//! come back, the errors the clients saw meanwhile, and whether every write acknowledged to
//! a client is on the new primary ([`DrillReport`]).
//!
//! It also runs against your own primary and standby ([`Servers::Given`]): it breaks the
//! primary with your command (`--kill-command`, `--restart-command`) or through its proxy
//! (`partition`), and promotes the standby with `pg_promote()` or your `--promote-command`.
//! [`plan`] says what it would do; the command line runs it only with `--yes`.
//!
//! - [`workload`]: the clients and what they record.
//! - [`proxy`]: the TCP proxy that cuts the network to the primary (`partition`).
//! - [`report`]: the report as data and as a table (pure).
//!
//! This module reports progress as [`crate::progress::Event`]s and draws nothing.

pub mod proxy;
pub mod report;
pub mod workload;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use pgopt_pool::{PgPool, PgPoolOptions, Role};

use crate::db::{SystemDefaults, Target, TargetRole};
use crate::embedded::{Cluster, ClusterOptions, StandbyOptions, SUPERUSER};
use crate::error::{Error, Result};
use crate::progress::{Event, Kind, Progress, Unit};

pub use report::DrillReport;
use workload::Recorder;

/// The application_name the embedded standby streams under: what the primary's
/// `synchronous_standby_names` names.
pub const STANDBY_NAME: &str = "pgopt_drill_standby";

/// The most clients a drill runs (each holds at most one connection).
pub const MAX_CLIENTS: usize = 200;

/// What happens to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Immediate shutdown of the primary, the standby promoted `promote_after` later.
    Kill,
    /// A fast restart of the primary, no promotion: clients come back to it.
    Restart,
    /// The network to the primary cut (a proxy that stops forwarding without closing: a
    /// hang), the standby promoted `promote_after` later.
    Partition,
}

impl Mode {
    /// `kill`, `restart` or `partition`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Kill => "kill",
            Mode::Restart => "restart",
            Mode::Partition => "partition",
        }
    }

    fn promotes(self) -> bool {
        self != Mode::Restart
    }

    fn event(self) -> &'static str {
        match self {
            Mode::Kill => "killed (immediate)",
            Mode::Restart => "restarted (fast)",
            Mode::Partition => "network cut (proxy stops forwarding)",
        }
    }
}

/// Which servers the drill works on.
// Made once per run: the size of two targets in the enum costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum Servers {
    /// A primary and a synchronous standby the drill starts and removes (the default).
    #[default]
    Embedded,
    /// Your own primary and standby. The drill connects to both, checks their roles, runs
    /// its clients through a pool over both, breaks the primary with your command (or its
    /// proxy for `partition`) and promotes the standby. It leaves the old primary as the
    /// event left it: rebuilding it as a standby is yours to do.
    Given {
        /// The primary (resolved like every pgopt target).
        primary: Target,
        /// Its standby, which the drill promotes (`kill`, `partition`).
        standby: Target,
        /// How to break and promote them.
        commands: Commands,
    },
}

/// The commands that act on servers the drill did not start, each run with `sh -c` on this
/// machine (bounded by [`COMMAND_TIMEOUT`]; an exit other than 0 stops the drill).
#[derive(Debug, Clone, Default)]
pub struct Commands {
    /// Stops the primary at once (`kill`), e.g. `ssh db1 sudo -u postgres pg_ctl stop -m
    /// immediate -D /var/lib/postgresql/15/main`.
    pub kill: Option<String>,
    /// Restarts the primary (`restart`).
    pub restart: Option<String>,
    /// Promotes the standby; none: `SELECT pg_promote(true, 60)` on it (a superuser, or a
    /// role granted EXECUTE on pg_promote).
    pub promote: Option<String>,
}

/// The longest one of the user's commands may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// How a drill runs. [`Default`]: `kill`, 4 clients, 2 s of load before the kill, the
/// standby promoted 2 s after it, 10 s of load after it.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// What happens to the primary.
    pub mode: Mode,
    /// Client tasks (1..=[`MAX_CLIENTS`]).
    pub clients: usize,
    /// Load before the event.
    pub warmup: Duration,
    /// Load after the event. The run goes on past it (up to `recovery_bound` after the
    /// promotion, or after the event without one) until writes have come back.
    pub duration: Duration,
    /// From the event to the promotion (`kill`, `partition`).
    pub promote_after: Duration,
    /// The pool's statement_timeout (the client-side bound is a little longer).
    pub statement_timeout: Duration,
    /// The longest the drill waits for writes to come back before it reports that they
    /// did not.
    pub recovery_bound: Duration,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            mode: Mode::Kill,
            clients: 4,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(10),
            promote_after: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(3),
            recovery_bound: Duration::from_secs(60),
        }
    }
}

impl DrillOptions {
    /// Checks the options; the error names the flag and what to give instead.
    pub fn validate(&self) -> Result<()> {
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return Err(Error::BadInput(format!(
                "--clients {}: give 1 to {MAX_CLIENTS} clients",
                self.clients
            )));
        }
        if self.duration.is_zero() {
            return Err(Error::BadInput(
                "--duration 0: give the seconds of load after the event (e.g. --duration 10)"
                    .into(),
            ));
        }
        if self.statement_timeout < Duration::from_millis(100) {
            return Err(Error::BadInput(
                "the statement timeout must be at least 100 ms".into(),
            ));
        }
        Ok(())
    }
}

/// Checks what given servers need before anything connects: the command the mode runs, and
/// for `partition` a TCP primary (the proxy sits in front of it).
fn check_servers(opts: &DrillOptions, servers: &Servers) -> Result<()> {
    let Servers::Given {
        primary, commands, ..
    } = servers
    else {
        return Ok(());
    };
    let missing = |flag: &str, example: &str| {
        Error::BadInput(format!(
            "--mode {} on your own servers needs {flag}: the command that does it, run with \
             sh -c on this machine (e.g. {flag} '{example}')",
            opts.mode.as_str()
        ))
    };
    match opts.mode {
        Mode::Kill if commands.kill.is_none() => Err(missing(
            "--kill-command",
            "ssh db1 sudo -u postgres pg_ctl stop -m immediate -D /var/lib/postgresql/15/main",
        )),
        Mode::Restart if commands.restart.is_none() => Err(missing(
            "--restart-command",
            "ssh db1 sudo systemctl restart postgresql",
        )),
        Mode::Partition if primary.hosts.first().is_none_or(|h| h.is_unix()) => {
            Err(Error::BadInput(
                "--mode partition puts a TCP proxy in front of the primary: give --primary a \
                 TCP host (host=NAME port=PORT), not a socket directory"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

/// What the drill will do, step by step, in words: what `pgopt drill failover` prints
/// without `--yes` for given servers. Checks the options and the servers first.
pub fn plan(opts: &DrillOptions, servers: &Servers) -> Result<Vec<String>> {
    opts.validate()?;
    check_servers(opts, servers)?;
    let (p, s, commands) = match servers {
        Servers::Embedded => {
            return Ok(vec![
                "start an embedded primary and a synchronous standby (removed after)".into(),
            ])
        }
        Servers::Given {
            primary,
            standby,
            commands,
        } => (primary.display_safe(), standby.display_safe(), commands),
    };
    let mut steps = vec![
        format!(
            "connect to the primary {p} and the standby {s}; check their roles and the \
             standby's sync_state"
        ),
        format!(
            "create the table {} on the primary if missing (kept: rows of each run carry \
             their run id)",
            workload::table()
        ),
        format!(
            "run {} clients writing and reading through a pool over both for {:.0} s",
            opts.clients,
            opts.warmup.as_secs_f64()
        ),
    ];
    let cmd = |c: &Option<String>| c.clone().unwrap_or_default();
    steps.push(match opts.mode {
        Mode::Kill => format!("kill the primary: sh -c '{}'", cmd(&commands.kill)),
        Mode::Restart => format!("restart the primary: sh -c '{}'", cmd(&commands.restart)),
        Mode::Partition => {
            "cut the network to the primary: the clients reach it through the drill's proxy, \
             which stops forwarding"
                .into()
        }
    });
    if opts.mode.promotes() {
        steps.push(format!(
            "{:.0} s later, promote the standby: {}",
            opts.promote_after.as_secs_f64(),
            match &commands.promote {
                Some(c) => format!("sh -c '{c}'"),
                None => "SELECT pg_promote(true, 60) on it".into(),
            }
        ));
    }
    steps.push(format!(
        "keep the load on for {:.0} s (longer until writes come back, at most {:.0} s), then \
         check every acknowledged write on the new primary",
        opts.duration.as_secs_f64(),
        opts.recovery_bound.as_secs_f64()
    ));
    if opts.mode.promotes() {
        steps.push(format!(
            "leave the old primary as the event left it: make it a standby of {s} yourself"
        ));
    }
    Ok(steps)
}

/// Runs one of the user's commands with `sh -c`, bounded by [`COMMAND_TIMEOUT`].
async fn run_command(flag: &str, cmd: &str) -> Result<()> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(COMMAND_TIMEOUT, c.output())
        .await
        .map_err(|_| {
            Error::BadInput(format!(
                "{flag} did not finish within {} s: make it return once it has acted",
                COMMAND_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| Error::BadInput(format!("{flag}: cannot run sh: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: String = err
            .trim()
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(Error::BadInput(format!(
            "{flag} failed ({}): {tail}",
            out.status
        )));
    }
    Ok(())
}

/// Connects to a given server; returns the connection and whether it is in recovery.
async fn in_recovery(flag: &str, target: &Target) -> Result<(pgopt_pool::Conn, bool)> {
    let conn = pgopt_pool::connect(target)
        .await
        .map_err(|e| Error::Connect(format!("{flag} {}: {e}", target.display_safe())))?;
    let recovering = conn
        .query_one(
            "asking the server's role",
            "SELECT pg_is_in_recovery()",
            &[],
        )
        .await?
        .get(0);
    Ok((conn, recovering))
}

/// Checks the given primary is a primary and the standby a standby; returns the standby
/// sync_state the primary reports (`sync`, `quorum`, `async`, or `none` when no standby
/// streams from it).
async fn check_given(primary: &Target, standby: &Target) -> Result<String> {
    let (conn, recovering) = in_recovery("--primary", primary).await?;
    if recovering {
        return Err(Error::BadInput(format!(
            "--primary {} is in recovery (a standby): give the primary",
            primary.display_safe()
        )));
    }
    if !in_recovery("--standby", standby).await?.1 {
        return Err(Error::BadInput(format!(
            "--standby {} is not in recovery (not a standby): give a standby of --primary",
            standby.display_safe()
        )));
    }
    let state: String = conn
        .query_one(
            "reading the standbys' sync_state",
            "SELECT coalesce((SELECT sync_state FROM pg_catalog.pg_stat_replication \
             ORDER BY sync_state = 'sync' DESC, sync_state = 'quorum' DESC LIMIT 1), 'none')",
            &[],
        )
        .await?
        .get(0);
    Ok(state)
}

/// Promotes a given standby: the user's command, or `pg_promote(true, 60)` on it.
async fn promote_given(standby: &Target, commands: &Commands) -> Result<()> {
    if let Some(cmd) = &commands.promote {
        return run_command("--promote-command", cmd).await;
    }
    let mut t = standby.clone();
    t.statement_timeout = Duration::from_secs(90);
    let conn = pgopt_pool::connect(&t).await?;
    let promoted: bool = conn
        .query_one(
            "promoting the standby",
            "SELECT pg_catalog.pg_promote(true, 60)",
            &[],
        )
        .await?
        .get(0);
    if !promoted {
        return Err(Error::Connect(format!(
            "pg_promote on {} did not finish within 60 s: look at the standby's log",
            standby.display_safe()
        )));
    }
    Ok(())
}

/// A target over the given local ports in order, `target_session_attrs=read-write`, built
/// from the ports alone (no PG* variables, no password file).
fn local_multi_host(ports: &[u16], role: TargetRole) -> Result<Target> {
    let hosts = vec!["127.0.0.1"; ports.len()].join(",");
    let ports = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let dsn = format!(
        "host={hosts} port={ports} user={SUPERUSER} dbname=postgres sslmode=disable \
         connect_timeout=2 target_session_attrs={}",
        role.as_str()
    );
    let defaults = SystemDefaults {
        socket_dir: None,
        os_user: Some(SUPERUSER.to_string()),
        home: None,
    };
    Target::resolve_with(Some(&dsn), &|_| None, &defaults)
}

/// Runs `f` on a blocking thread (the embedded clusters' calls sleep and wait on processes).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("a drill step panicked: {e}")))
}

/// The embedded primary (synchronous_standby_names naming the standby) and its standby:
/// what the drill starts, and what a test can hand it as given servers.
pub fn start_pair() -> Result<(Cluster, Cluster)> {
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    let primary = Cluster::start(ClusterOptions {
        settings: vec![
            s("synchronous_standby_names", &format!("'{STANDBY_NAME}'")),
            s("synchronous_commit", "on"),
        ],
        ..ClusterOptions::default()
    })?;
    let standby = primary.standby_with(&StandbyOptions {
        application_name: Some(STANDBY_NAME.to_string()),
        settings: vec![
            // Once promoted it stands alone: waiting for a standby of its own would hang
            // every commit.
            s("synchronous_standby_names", "''"),
            // Reconnect soon after the primary restarts (the default waits 5 s).
            s("wal_retrieve_retry_interval", "'200ms'"),
        ],
    })?;
    Ok((primary, standby))
}

/// Waits (bounded) until the primary reports the standby as `sync`; returns its sync_state.
async fn wait_sync(primary_port: u16) -> Result<String> {
    let mut target = crate::embedded::local_target(primary_port, "postgres")?;
    target.application_name = "pgopt-drill".into();
    let conn = pgopt_pool::connect(&target).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Option<String> = conn
            .query_opt(
                "the standby's sync_state",
                "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
                &[&STANDBY_NAME],
            )
            .await?
            .map(|r| r.get(0));
        if state.as_deref() == Some("sync") {
            return Ok("sync".into());
        }
        if Instant::now() > deadline {
            return Err(Error::Embedded(format!(
                "the standby did not become synchronous within 30 s (sync_state {state:?}): \
                 check the primary's synchronous_standby_names and the standby's log"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the failover drill and reports what the clients saw.
///
/// Bad input (no clients, zero duration, a given server of the wrong role, a mode whose
/// command was not given) is an [`Error::BadInput`] before the load starts. Every wait is bounded: the pool's checkout
/// and failover waits, each statement, the promotion (60 s), the wait for writes to come
/// back (`recovery_bound`).
///
/// ```no_run
/// # async fn f() -> pgopt::Result<()> {
/// use pgopt::drill::{failover, DrillOptions, Mode, Servers};
/// let opts = DrillOptions { mode: Mode::Partition, ..DrillOptions::default() };
/// let report = failover(&opts, &Servers::Embedded, &pgopt::progress::NoProgress).await?;
/// assert_eq!(report.acknowledged_writes_lost, 0);
/// # Ok(()) }
/// ```
pub async fn failover(
    opts: &DrillOptions,
    servers: &Servers,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    opts.validate()?;
    check_servers(opts, servers)?;
    let say = |m: String| {
        progress.event(Event::update("drill", Unit::Rows, 0, None).message(m));
    };
    let (pair, sync_state) = match servers {
        Servers::Embedded => {
            say("starting a primary and a synchronous standby".into());
            let (primary, standby) = blocking(start_pair).await??;
            let sync_state = wait_sync(primary.port()).await?;
            (Pair::Embedded { primary, standby }, sync_state)
        }
        Servers::Given {
            primary,
            standby,
            commands,
        } => {
            say("checking the primary and the standby".into());
            let sync_state = check_given(primary, standby).await?;
            let pair = Pair::Given {
                primary: primary.clone(),
                standby: standby.clone(),
                commands: commands.clone(),
            };
            (pair, sync_state)
        }
    };

    let proxy = match opts.mode {
        Mode::Partition => Some(proxy::Proxy::start(pair.primary_addr().await?).await?),
        _ => None,
    };
    let target = pair.pool_target(proxy.as_ref().map(|p| p.port()))?;
    let pool = PgPool::connect(
        &target,
        PgPoolOptions {
            min_size: 1,
            max_size: opts.clients,
            checkout_wait: Duration::from_secs(5),
            statement_timeout: opts.statement_timeout,
            application_name: "pgopt-drill".into(),
            failover_wait: Duration::from_secs(30),
            role: Role::Write,
            ..PgPoolOptions::default()
        },
    )
    .await?;
    {
        let conn = pool.get().await?;
        conn.batch("creating the drill's table", &workload::create_table_sql())
            .await?;
    }
    let run_id: i64 = rand::random::<i64>() & i64::MAX;

    let rec = Arc::new(Recorder::default());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            tokio::spawn(workload::client(
                pool.clone(),
                i as u32,
                run_id,
                rec.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let start = Instant::now();
    let tick = |what: &str| {
        say(format!(
            "{:>5.1} s: {} writes acknowledged, {} errors; {what}",
            start.elapsed().as_secs_f64(),
            rec.acked.load(Ordering::Relaxed),
            rec.errors.load(Ordering::Relaxed),
        ))
    };
    let wait_until = |until: Instant, what: String| {
        let tick = &tick;
        async move {
            while Instant::now() < until {
                tick(&what);
                tokio::time::sleep_until(until.min(Instant::now() + Duration::from_millis(250)))
                    .await;
            }
        }
    };
    wait_until(start + opts.warmup, "load before the event".into()).await;

    // The event.
    let event_at = Instant::now();
    let _ = rec.event_at.set(event_at);
    tick(&format!("primary {}", opts.mode.event()));
    let pair = match (opts.mode, pair) {
        (Mode::Kill, Pair::Embedded { primary, standby }) => {
            let mut p = primary;
            let primary = blocking(move || {
                p.kill();
                p
            })
            .await?;
            Pair::Embedded { primary, standby }
        }
        (Mode::Restart, Pair::Embedded { primary, standby }) => {
            let mut p = primary;
            let (primary, restarted) = blocking(move || {
                let r = p.restart();
                (p, r)
            })
            .await?;
            restarted?;
            Pair::Embedded { primary, standby }
        }
        (Mode::Kill | Mode::Restart, pair @ Pair::Given { .. }) => {
            if let Pair::Given { commands, .. } = &pair {
                let (flag, cmd) = match opts.mode {
                    Mode::Kill => ("--kill-command", &commands.kill),
                    _ => ("--restart-command", &commands.restart),
                };
                // check_servers made sure it is there.
                run_command(flag, cmd.as_deref().unwrap_or("false")).await?;
            }
            pair
        }
        (Mode::Partition, pair) => {
            if let Some(p) = &proxy {
                p.cut();
            }
            pair
        }
    };

    let (mut promote_at, mut promotion_took) = (None, None);
    let pair = if opts.mode.promotes() {
        wait_until(
            event_at + opts.promote_after,
            format!(
                "primary {}; promoting the standby at {:.1} s",
                opts.mode.event(),
                (event_at + opts.promote_after - start).as_secs_f64()
            ),
        )
        .await;
        let at = Instant::now();
        let _ = rec.promote_at.set(at);
        tick("promoting the standby");
        let pair = match pair {
            Pair::Embedded { primary, standby } => {
                let (standby, promoted) = blocking(move || {
                    let r = standby.promote();
                    (standby, r)
                })
                .await?;
                promoted?;
                Pair::Embedded { primary, standby }
            }
            Pair::Given {
                primary,
                standby,
                commands,
            } => {
                promote_given(&standby, &commands).await?;
                Pair::Given {
                    primary,
                    standby,
                    commands,
                }
            }
        };
        promote_at = Some(at);
        promotion_took = Some(at.elapsed());
        pair
    } else {
        pair
    };
    // The promoted standby, or the primary itself (restarted).
    let verify = pair.new_primary(promote_at.is_some())?;
    let embedded = matches!(pair, Pair::Embedded { .. });
    finish(
        opts,
        FinishArgs {
            rec,
            stop,
            tasks,
            pool,
            run_id,
            start,
            event_at,
            promote_at,
            promotion_took,
            verify,
            embedded,
            sync_state,
            progress,
        },
        (pair, proxy),
    )
    .await
}

/// The primary and the standby the drill works on.
enum Pair {
    Embedded {
        primary: Cluster,
        standby: Cluster,
    },
    Given {
        primary: Target,
        standby: Target,
        commands: Commands,
    },
}

impl Pair {
    /// Where the proxy forwards to (`partition`): the primary's first host.
    async fn primary_addr(&self) -> Result<SocketAddr> {
        match self {
            Pair::Embedded { primary, .. } => {
                Ok(SocketAddr::from(([127, 0, 0, 1], primary.port())))
            }
            Pair::Given { primary, .. } => {
                let h = primary
                    .hosts
                    .first()
                    .ok_or_else(|| Error::BadInput("--primary names no host".into()))?;
                if let Some(ip) = h.hostaddr {
                    return Ok(SocketAddr::new(ip, h.port));
                }
                tokio::net::lookup_host((h.host.as_str(), h.port))
                    .await
                    .ok()
                    .and_then(|mut a| a.next())
                    .ok_or_else(|| {
                        Error::Connect(format!(
                            "--primary {}: the host name does not resolve",
                            h.label()
                        ))
                    })
            }
        }
    }

    /// The pool's target: the primary (or the proxy in front of it), then the standby,
    /// `target_session_attrs=read-write`.
    fn pool_target(&self, proxy_port: Option<u16>) -> Result<Target> {
        match self {
            Pair::Embedded { primary, standby } => local_multi_host(
                &[proxy_port.unwrap_or(primary.port()), standby.port()],
                TargetRole::Primary,
            ),
            Pair::Given {
                primary, standby, ..
            } => {
                let mut t = primary.clone();
                if let Some(port) = proxy_port {
                    // The primary's name stays (TLS verifies it); the address is the proxy's.
                    let first = &primary.hosts[0];
                    t.hosts = vec![crate::db::HostSpec {
                        host: first.host.clone(),
                        hostaddr: Some(std::net::IpAddr::from([127, 0, 0, 1])),
                        port,
                    }];
                }
                t.hosts.extend(standby.hosts.iter().cloned());
                t.role = TargetRole::Primary;
                t.application_name = "pgopt-drill".into();
                Ok(t)
            }
        }
    }

    /// Where the acknowledged writes are checked: the promoted standby, or the primary.
    fn new_primary(&self, promoted: bool) -> Result<Target> {
        let mut t = match self {
            Pair::Embedded { primary, standby } => {
                let port = if promoted {
                    standby.port()
                } else {
                    primary.port()
                };
                crate::embedded::local_target(port, "postgres")?
            }
            Pair::Given {
                primary, standby, ..
            } => {
                if promoted {
                    standby.clone()
                } else {
                    primary.clone()
                }
            }
        };
        t.role = TargetRole::Primary;
        t.application_name = "pgopt-drill".into();
        Ok(t)
    }
}

struct FinishArgs<'a> {
    rec: Arc<Recorder>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pool: PgPool,
    run_id: i64,
    start: Instant,
    event_at: Instant,
    promote_at: Option<Instant>,
    promotion_took: Option<Duration>,
    /// Where the acknowledged writes are checked.
    verify: Target,
    embedded: bool,
    sync_state: String,
    progress: &'a dyn Progress,
}

/// Keeps the load on until the end (and until writes came back, bounded), stops the
/// clients, checks every acknowledged id on the new primary and builds the report. The
/// servers (and the proxy) live until it returns.
async fn finish(
    opts: &DrillOptions,
    a: FinishArgs<'_>,
    _servers: (Pair, Option<proxy::Proxy>),
) -> Result<DrillReport> {
    let say = |m: String| {
        a.progress
            .event(Event::update("drill", Unit::Rows, 0, None).message(m));
    };
    let end = a.event_at + opts.duration;
    let give_up = a.promote_at.unwrap_or(a.event_at) + opts.recovery_bound;
    loop {
        let now = Instant::now();
        let resumed = match a.promote_at {
            Some(_) => a.rec.writes().after_promote.is_some(),
            None => a.rec.writes().after_event.is_some(),
        };
        if (now >= end && resumed) || now >= give_up.max(end) {
            break;
        }
        say(format!(
            "{:>5.1} s: {} writes acknowledged, {} errors; {}",
            a.start.elapsed().as_secs_f64(),
            a.rec.acked.load(Ordering::Relaxed),
            a.rec.errors.load(Ordering::Relaxed),
            if resumed {
                "writes resumed"
            } else {
                "waiting for writes to resume"
            }
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let load = a.start.elapsed();
    let _ = a.stop.send(true);
    say("stopping the clients".into());
    // Each client's operation is bounded (checkout, failover wait, statement): this is a
    // backstop, not the bound.
    let deadline = Instant::now() + Duration::from_secs(60);
    for t in a.tasks {
        let abort = t.abort_handle();
        if tokio::time::timeout_at(deadline, t).await.is_err() {
            abort.abort();
        }
    }
    let pool_failovers = a.pool.stats().failovers;
    a.pool.close();

    say("checking every acknowledged write on the new primary".into());
    let acked = a.rec.acked_ids();
    let conn = pgopt_pool::connect(&a.verify).await?;
    let found: std::collections::HashSet<i64> = conn
        .query(
            "checking the acknowledged writes",
            &workload::verify_sql(),
            &[&a.run_id, &acked],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect();
    let lost: Vec<i64> = acked
        .iter()
        .copied()
        .filter(|id| !found.contains(id))
        .collect();
    a.progress
        .event(Event::update("drill", Unit::Rows, acked.len() as u64, None).kind(Kind::Finish));

    let since = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(f), Some(t)) => Some(t.saturating_duration_since(f).as_secs_f64()),
        _ => None,
    };
    let writes = a.rec.writes();
    let reads = a.rec.reads();
    Ok(DrillReport {
        mode: opts.mode,
        event: opts.mode.event().to_string(),
        clients: opts.clients,
        embedded: a.embedded,
        standby_sync_state: Some(a.sync_state),
        warmup_s: opts.warmup.as_secs_f64(),
        load_s: load.as_secs_f64(),
        promote_after_s: a
            .promote_at
            .map(|p| p.saturating_duration_since(a.event_at).as_secs_f64()),
        promotion_took_s: a.promotion_took.map(|d| d.as_secs_f64()),
        acknowledged_writes: acked.len() as u64,
        acknowledged_writes_lost: lost.len() as u64,
        lost_ids_sample: lost.into_iter().take(20).collect(),
        reads: a.rec.reads_ok.load(Ordering::Relaxed),
        reads_missing: a.rec.reads_missing.load(Ordering::Relaxed),
        writes_resumed_after_kill_s: since(Some(a.event_at), writes.after_event),
        writes_resumed_after_promote_s: since(a.promote_at, writes.after_promote),
        reads_resumed_after_kill_s: since(Some(a.event_at), reads.after_event),
        reads_resumed_after_promote_s: since(a.promote_at, reads.after_promote),
        errors_by_sqlstate: a.rec.errors_after_event(),
        errors_before_event: a.rec.errors_before_event(),
        pool_failovers,
        verified_on: a
            .verify
            .hosts
            .iter()
            .map(|h| h.label())
            .collect::<Vec<_>>()
            .join(","),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_clients_is_bad_input_naming_the_flag() {
        let e = DrillOptions {
            clients: 0,
            ..DrillOptions::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.is_bad_input());
        assert!(e.to_string().contains("--clients"), "{e}");
    }

    fn given(mode_cmds: Commands) -> Servers {
        let t = |dsn: &str| {
            Target::resolve_with(
                Some(dsn),
                &|_| None,
                &SystemDefaults {
                    socket_dir: None,
                    os_user: Some("postgres".into()),
                    home: None,
                },
            )
            .unwrap()
        };
        Servers::Given {
            primary: t("host=db1 port=5432 user=postgres password=s3cret"),
            standby: t("host=db2 port=5432 user=postgres password=s3cret"),
            commands: mode_cmds,
        }
    }

    #[test]
    fn given_servers_need_the_command_their_mode_runs_naming_the_flag() {
        for (mode, flag) in [
            (Mode::Kill, "--kill-command"),
            (Mode::Restart, "--restart-command"),
        ] {
            let opts = DrillOptions {
                mode,
                ..DrillOptions::default()
            };
            let e = plan(&opts, &given(Commands::default())).unwrap_err();
            assert!(e.is_bad_input());
            assert!(e.to_string().contains(flag), "{e}");
        }
        // Partition needs none: the proxy cuts the network.
        let opts = DrillOptions {
            mode: Mode::Partition,
            ..DrillOptions::default()
        };
        assert!(plan(&opts, &given(Commands::default())).is_ok());
    }

    #[test]
    fn the_plan_for_given_servers_names_each_step_and_no_password() {
        let servers = given(Commands {
            kill: Some("ssh db1 pg_ctl stop -m immediate".into()),
            ..Commands::default()
        });
        let steps = plan(&DrillOptions::default(), &servers).unwrap();
        let text = steps.join("\n");
        assert!(text.contains("postgres@db1:5432/postgres"), "{text}");
        assert!(
            text.contains("kill the primary: sh -c 'ssh db1 pg_ctl stop -m immediate'"),
            "{text}"
        );
        assert!(text.contains("SELECT pg_promote(true, 60)"), "{text}");
        assert!(text.contains("make it a standby of"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
