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
//! Only servers the drill started itself are killed, restarted or promoted: against given
//! servers it refuses with an error that says so ([`Servers::Given`]).
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
#[derive(Debug, Clone, Default)]
pub enum Servers {
    /// A primary and a synchronous standby the drill starts and removes (the default).
    #[default]
    Embedded,
    /// Your own primary and standby (DSNs). The drill cannot kill, restart or promote a
    /// server it did not start, so [`failover`] refuses these after checking they parse.
    Given {
        /// The primary's DSN.
        primary: String,
        /// The standby's DSN.
        standby: String,
    },
}

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

/// Checks the given servers: DSNs that parse, and then the refusal (see [`Servers::Given`]).
fn check_servers(servers: &Servers) -> Result<()> {
    let Servers::Given { primary, standby } = servers else {
        return Ok(());
    };
    for (flag, dsn) in [("--primary", primary), ("--standby", standby)] {
        Target::parse(dsn).map_err(|e| Error::BadInput(format!("{flag}: {e}")))?;
    }
    Err(Error::BadInput(
        "the drill kills, restarts and promotes only servers it started itself: against a \
         given primary and standby it cannot stop or promote them. Run `pgopt drill failover` \
         without --primary/--standby (embedded clusters), or rehearse on your staging \
         servers with your own tooling"
            .into(),
    ))
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

/// The embedded primary (synchronous_standby_names naming the standby) and its standby.
fn start_pair() -> Result<(Cluster, Cluster)> {
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
/// Bad input (no clients, zero duration, given servers: see [`Servers::Given`]) is an
/// [`Error::BadInput`] before anything starts. Every wait is bounded: the pool's checkout
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
    check_servers(servers)?;
    let say = |m: String| {
        progress.event(Event::update("drill", Unit::Rows, 0, None).message(m));
    };
    say("starting a primary and a synchronous standby".into());
    let (primary, standby) = blocking(start_pair).await??;
    let sync_state = wait_sync(primary.port()).await?;

    let proxy = match opts.mode {
        Mode::Partition => {
            Some(proxy::Proxy::start(SocketAddr::from(([127, 0, 0, 1], primary.port()))).await?)
        }
        _ => None,
    };
    let first_port = proxy.as_ref().map_or(primary.port(), |p| p.port());
    let target = local_multi_host(&[first_port, standby.port()], TargetRole::Primary)?;
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
    let (primary, proxy) = match opts.mode {
        Mode::Kill => {
            let mut p = primary;
            (
                blocking(move || {
                    p.kill();
                    p
                })
                .await?,
                proxy,
            )
        }
        Mode::Restart => {
            let mut p = primary;
            let (p, restarted) = blocking(move || {
                let r = p.restart();
                (p, r)
            })
            .await?;
            restarted?;
            (p, proxy)
        }
        Mode::Partition => {
            if let Some(p) = &proxy {
                p.cut();
            }
            (primary, proxy)
        }
    };

    let (mut promote_at, mut promotion_took) = (None, None);
    let standby = if opts.mode.promotes() {
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
        let (s, promoted) = blocking(move || {
            let r = standby.promote();
            (standby, r)
        })
        .await?;
        promoted?;
        promote_at = Some(at);
        promotion_took = Some(at.elapsed());
        s
    } else {
        standby
    };
    // The promoted standby, or the primary itself (restarted, or behind a healed proxy).
    let new_primary_port = if promote_at.is_some() {
        standby.port()
    } else {
        primary.port()
    };
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
            new_primary_port,
            sync_state,
            progress,
        },
        (primary, standby, proxy),
    )
    .await
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
    new_primary_port: u16,
    sync_state: String,
    progress: &'a dyn Progress,
}

/// Keeps the load on until the end (and until writes came back, bounded), stops the
/// clients, checks every acknowledged id on the new primary and builds the report. The
/// servers (and the proxy) live until it returns.
async fn finish(
    opts: &DrillOptions,
    a: FinishArgs<'_>,
    _servers: (Cluster, Cluster, Option<proxy::Proxy>),
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
    let mut target = crate::embedded::local_target(a.new_primary_port, "postgres")?;
    target.role = TargetRole::Primary;
    target.application_name = "pgopt-drill".into();
    let conn = pgopt_pool::connect(&target).await?;
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
        embedded: true,
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
        verified_on: format!("127.0.0.1:{}", a.new_primary_port),
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

    #[test]
    fn given_servers_are_refused_after_their_dsns_parse() {
        let bad = Servers::Given {
            primary: "host=a port=notaport".into(),
            standby: "host=b".into(),
        };
        let e = check_servers(&bad).unwrap_err();
        assert!(e.is_bad_input());
        assert!(e.to_string().contains("--primary"), "{e}");
        let good = Servers::Given {
            primary: "host=a".into(),
            standby: "host=b".into(),
        };
        let e = check_servers(&good).unwrap_err();
        assert!(
            e.to_string().contains("only servers it started itself"),
            "{e}"
        );
    }
}
