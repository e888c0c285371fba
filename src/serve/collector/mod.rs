//! The collector of `pgopt serve`: a light sample of every target every `intervals.sample`
//! (the [`sample`] reads, turned into rates by [`delta`]), and a full snapshot with its
//! findings every `intervals.snapshot` ([`crate::collect::collect`] + [`crate::advise`], as
//! `pgopt analyze`).
//!
//! Each target has its own task and timer, so one dead, slow or hanging target never
//! delays another: at most `intervals.concurrency` light samples run at once (snapshots
//! have a smaller bound of their own), each one (connect included) bounded by
//! `intervals.timeout`. A failing target is retried with exponential backoff and jitter
//! ([`backoff`]), shown down with its (redacted) error, and `Down`/`Up` events mark the
//! transitions. The connection is kept between samples and dropped on any error.
//!
//! It only reads the servers, and it decides nothing: the samples, findings and events go
//! to the daemon's loop (`out`), the latest state to the [`Fleet`].

pub mod backoff;
pub mod delta;
pub mod raw;
pub mod sample;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use self::raw::Raw;
use super::clock::Clock;
use super::config::{Config, Intervals, TargetConfig};
use super::model::{m, Collected, Event, EventKind, Reset, Sample, Ts};
use super::state::{Fleet, Health};
use crate::db::{Conn, Target};
use crate::error::{Error, Result};

/// The longest a sample, finding or event waits for room in `out` before it is dropped
/// (with a warning): a stuck daemon loop must not stop the collection.
const SEND_BOUND: Duration = Duration::from_secs(5);
/// The first full snapshot of a target comes this long (jittered) after the start, so that
/// the first light samples of the whole fleet go first.
const FIRST_SNAPSHOT_AFTER: Duration = Duration::from_secs(5);
/// A full snapshot is bounded by this, or by its interval when that is shorter.
const SNAPSHOT_BOUND: Duration = Duration::from_secs(120);
/// After a failed snapshot, the next try (or the interval, when shorter).
const SNAPSHOT_RETRY: Duration = Duration::from_secs(60);

/// Collects every target of `config` until `shutdown` turns true; then finishes the light
/// samples in flight (each bounded by `intervals.timeout`), drops the snapshots in flight,
/// and returns.
pub async fn run(
    config: Arc<Config>,
    fleet: Arc<Fleet>,
    clock: Arc<dyn Clock>,
    out: mpsc::Sender<Collected>,
    shutdown: watch::Receiver<bool>,
) {
    let iv = config.intervals;
    let light = Arc::new(Semaphore::new(iv.concurrency.max(1)));
    let heavy = Arc::new(Semaphore::new((iv.concurrency / 4).max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for target in &config.targets {
        let ctx = Ctx {
            target: target.clone(),
            intervals: iv,
            fleet: fleet.clone(),
            clock: clock.clone(),
            out: out.clone(),
        };
        tasks.spawn(sample_loop(ctx.clone(), light.clone(), shutdown.clone()));
        tasks.spawn(snapshot_loop(ctx, heavy.clone(), shutdown.clone()));
    }
    drop(out);
    while tasks.join_next().await.is_some() {}
}

/// Returns once `shutdown` is true, or its sender is gone (nobody can stop us then: stop).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // wait_for checks the current value first, then every change; Err: the sender is gone.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What every task of one target shares.
#[derive(Clone)]
struct Ctx {
    target: TargetConfig,
    intervals: Intervals,
    fleet: Arc<Fleet>,
    clock: Arc<dyn Clock>,
    out: mpsc::Sender<Collected>,
}

impl Ctx {
    async fn send(&self, item: Collected) {
        match tokio::time::timeout(SEND_BOUND, self.out.send(item)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => tracing::debug!(target = %self.target.name, "collector output closed"),
            Err(_) => tracing::warn!(
                target = %self.target.name,
                "the daemon did not take a collection within {}s; dropped",
                SEND_BOUND.as_secs()
            ),
        }
    }

    async fn event(&self, kind: EventKind, at: Ts, message: String, details: Details) {
        self.send(Collected::Event(Event {
            target: self.target.name.clone(),
            at,
            kind,
            message,
            details,
        }))
        .await;
    }

    /// `message` with the target's secrets (its conninfo, its password) replaced.
    fn redact(&self, message: &str, target: Option<&Target>) -> String {
        let password = target.and_then(|t| t.password.as_ref().map(|p| p.expose().to_string()));
        let mut secrets = vec![self.target.dsn.expose()];
        if let Some(p) = &password {
            secrets.push(p);
        }
        backoff::redact(message, &secrets)
    }

    /// The target resolved from its conninfo (PG* variables and .pgpass as every command),
    /// with its password file read and the daemon's bounds applied.
    async fn resolve(&self, statement_timeout: Duration) -> Result<Target> {
        let mut target = self.target.target()?;
        target.statement_timeout = statement_timeout;
        target.connect_timeout = target.connect_timeout.min(self.intervals.timeout);
        Ok(target)
    }
}

type Details = BTreeMap<String, serde_json::Value>;

/// One target's light-sample state between samples.
struct Light {
    conn: Option<Conn>,
    session: sample::Session,
    prev: Option<Raw>,
    sizes_at: Option<Instant>,
    failures: u32,
}

async fn sample_loop(ctx: Ctx, permits: Arc<Semaphore>, mut shutdown: watch::Receiver<bool>) {
    let iv = ctx.intervals.sample.max(Duration::from_millis(100));
    let mut rng = rand::rngs::SmallRng::from_entropy();
    let mut state = Light {
        conn: None,
        session: sample::Session::default(),
        prev: None,
        sizes_at: None,
        failures: 0,
    };
    // Spread the fleet's first samples over a tenth of the interval.
    let mut next = Instant::now() + iv.mul_f64(rng.gen_range(0.0..0.1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopping(&mut shutdown) => return,
        }
        if *shutdown.borrow() || ctx.out.is_closed() {
            return;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p,
            _ = stopping(&mut shutdown) => return,
        };
        let started = Instant::now();
        // Once started, a sample is finished even on shutdown: it is bounded.
        let result = tokio::time::timeout(ctx.intervals.timeout, collect_once(&ctx, &mut state))
            .await
            .unwrap_or_else(|_| {
                let e = Error::Timeout {
                    what: format!("collecting from {}", ctx.target.name),
                    after: ctx.intervals.timeout,
                    next_step: Some(
                        "the server did not answer in time: check it is up and not overloaded, \
                         or raise intervals.timeout"
                            .into(),
                    ),
                };
                Err(ctx.redact(&e.to_string(), None))
            });
        drop(permit);
        let wait = match result {
            Ok((sample, target_version)) => {
                succeeded(&ctx, &mut state, sample, target_version, started).await;
                next = started + iv;
                if next < Instant::now() {
                    next = Instant::now();
                }
                continue;
            }
            Err(error) => {
                failed(&ctx, &mut state, error).await;
                backoff::backoff(iv, state.failures, rng.gen_range(0.0..1.0))
            }
        };
        next = Instant::now() + wait;
    }
}

/// Connects when there is no usable connection, reads, and turns the reading into a sample.
/// On an error, the connection is dropped and the error returned redacted.
async fn collect_once(
    ctx: &Ctx,
    state: &mut Light,
) -> std::result::Result<(Sample, String), String> {
    let target = ctx
        .resolve(ctx.intervals.timeout)
        .await
        .map_err(|e| ctx.redact(&e.to_string(), None))?;
    let result = async {
        if state.conn.as_ref().is_none_or(Conn::is_closed) {
            state.conn = None;
            state.session = sample::Session::default();
            state.conn = Some(crate::db::connect(&target).await?);
        }
        let conn = state.conn.as_ref().expect("connected above");
        let with_sizes = state
            .sizes_at
            .is_none_or(|t| t.elapsed() >= sample::SIZES_EVERY.min(ctx.intervals.snapshot));
        let raw = sample::read(conn, &mut state.session, ctx.clock.now(), with_sizes).await?;
        if with_sizes {
            state.sizes_at = Some(Instant::now());
        }
        let mut s = delta::sample(
            &ctx.target.name,
            state.prev.as_ref(),
            &raw,
            ctx.intervals.top_statements,
        );
        sample::name_statements(
            conn,
            &mut state.session,
            &mut s.statements,
            ctx.intervals.top_statements.saturating_mul(10),
        )
        .await?;
        let version = format!(
            "PostgreSQL {}, {}",
            raw.identity.version,
            if raw.identity.in_recovery {
                "standby"
            } else {
                "primary"
            }
        );
        state.prev = Some(raw);
        Ok((s, version))
    }
    .await;
    result.map_err(|e: Error| {
        state.conn = None;
        ctx.redact(&e.to_string(), Some(&target))
    })
}

async fn succeeded(ctx: &Ctx, state: &mut Light, mut s: Sample, server: String, started: Instant) {
    let now = s.at;
    s.values.insert(m::UP.to_string(), 1.0);
    s.values.insert(
        m::COLLECT_SECONDS.to_string(),
        started.elapsed().as_secs_f64(),
    );
    let was = ctx
        .fleet
        .update(&ctx.target.name, |v| {
            let was = v.health.clone();
            if !matches!(v.health, Health::Up { .. }) {
                v.health = Health::Up { since: now };
            }
            v.last_sample = Some(s.clone());
            v.server = Some(server);
            was
        })
        .unwrap_or(Health::Unknown);
    let failures = std::mem::take(&mut state.failures);
    if let Health::Down { since, .. } = was {
        let down = (now - since).num_milliseconds() as f64 / 1000.0;
        tracing::info!(target = %ctx.target.name, "up again after {down:.1}s");
        let details = Details::from([
            ("down_seconds".into(), serde_json::json!(down)),
            ("attempts".into(), serde_json::json!(failures)),
        ]);
        ctx.event(
            EventKind::Up,
            now,
            format!("{} answers again (down {down:.0}s)", ctx.target.name),
            details,
        )
        .await;
    }
    for reset in &s.resets {
        let (name, what) = describe_reset(*reset);
        tracing::info!(target = %ctx.target.name, "counter reset: {what}");
        ctx.event(
            EventKind::Reset,
            now,
            format!("{}: {what}; no rate computed across it", ctx.target.name),
            Details::from([("reset".into(), serde_json::json!(name))]),
        )
        .await;
    }
    ctx.send(Collected::Sample(s)).await;
}

/// `error` is redacted already.
async fn failed(ctx: &Ctx, state: &mut Light, error: String) {
    state.conn = None;
    state.failures = state.failures.saturating_add(1);
    let now = ctx.clock.now();
    let attempts = state.failures;
    ctx.fleet.count_error(&ctx.target.name);
    let was_down = ctx
        .fleet
        .update(&ctx.target.name, |v| {
            let (since, was_down) = match &v.health {
                Health::Down { since, .. } => (*since, true),
                _ => (now, false),
            };
            v.health = Health::Down {
                since,
                error: error.clone(),
                attempts,
            };
            was_down
        })
        .unwrap_or(false);
    tracing::warn!(target = %ctx.target.name, attempts, "collection failed: {error}");
    if !was_down {
        ctx.event(
            EventKind::Down,
            now,
            format!("{} is down: {error}", ctx.target.name),
            Details::from([("error".into(), serde_json::json!(error))]),
        )
        .await;
    }
    // The `up` series shows the gap as 0; every other metric is simply missing.
    ctx.send(Collected::Sample(Sample {
        target: ctx.target.name.clone(),
        at: now,
        interval_seconds: 0.0,
        values: BTreeMap::from([(m::UP.to_string(), 0.0)]),
        keyed: BTreeMap::new(),
        statements: Vec::new(),
        resets: Vec::new(),
    }))
    .await;
}

/// The reset's name in event details, and a sentence.
pub fn describe_reset(reset: Reset) -> (&'static str, &'static str) {
    match reset {
        Reset::Restart => ("restart", "the server restarted"),
        Reset::Failover => (
            "failover",
            "a promotion or failover (recovery state or timeline changed)",
        ),
        Reset::OtherCluster => (
            "other_cluster",
            "another cluster answers under this name (system identifier changed)",
        ),
        Reset::DatabaseStats => (
            "database_stats",
            "database statistics were reset (pg_stat_reset)",
        ),
        Reset::Statements => ("statements", "pg_stat_statements was reset"),
    }
}

async fn snapshot_loop(ctx: Ctx, permits: Arc<Semaphore>, mut shutdown: watch::Receiver<bool>) {
    let every = ctx.intervals.snapshot.max(Duration::from_secs(1));
    let mut rng = rand::rngs::SmallRng::from_entropy();
    let first = FIRST_SNAPSHOT_AFTER
        .min(every)
        .mul_f64(rng.gen_range(1.0..2.0));
    let mut next = Instant::now() + first;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stopping(&mut shutdown) => return,
        }
        if *shutdown.borrow() || ctx.out.is_closed() {
            return;
        }
        let started = Instant::now();
        let bound = SNAPSHOT_BOUND.min(every).max(ctx.intervals.timeout);
        // A snapshot in flight at shutdown is dropped: it only brings findings.
        let result = tokio::select! {
            r = async {
                let _permit = permits.acquire().await;
                tokio::time::timeout(bound, snapshot_once(&ctx)).await
            } => r,
            _ = stopping(&mut shutdown) => return,
        };
        next = match result {
            Ok(Ok(())) => started + every,
            Ok(Err(e)) => {
                tracing::warn!(target = %ctx.target.name, "full snapshot failed: {e}");
                Instant::now() + SNAPSHOT_RETRY.min(every)
            }
            Err(_) => {
                tracing::warn!(
                    target = %ctx.target.name,
                    "full snapshot did not finish within {}s",
                    bound.as_secs()
                );
                Instant::now() + SNAPSHOT_RETRY.min(every)
            }
        };
        if next < Instant::now() {
            next = Instant::now();
        }
    }
}

/// One full snapshot on a connection of its own (so the light samples go on meanwhile),
/// and its findings.
async fn snapshot_once(ctx: &Ctx) -> std::result::Result<(), String> {
    let target = ctx
        .resolve(crate::db::target::DEFAULT_STATEMENT_TIMEOUT)
        .await
        .map_err(|e| ctx.redact(&e.to_string(), None))?;
    let work = async {
        let conn = crate::db::connect(&target).await?;
        let info = crate::snapshot::TargetInfo {
            host: conn.host.clone(),
            port: conn.port,
            database: conn.database.clone(),
            user: conn.user.clone(),
        };
        let opts = crate::collect::CollectOptions {
            top_statements: ctx.intervals.top_statements,
            // The daemon's machine is not the server's: no CPU, memory or disk of it.
            include_host: false,
            ..crate::collect::CollectOptions::default()
        };
        let snap = crate::collect::collect(&conn, info, &opts).await?;
        let findings = tokio::task::spawn_blocking(move || {
            crate::advise::advise(&snap, &crate::advise::Thresholds::default())
        })
        .await
        .map_err(|e| Error::Internal(format!("the advisors failed: {e}")))?;
        Ok::<_, Error>(findings)
    };
    let findings = work
        .await
        .map_err(|e| ctx.redact(&e.to_string(), Some(&target)))?;
    let at = ctx.clock.now();
    ctx.fleet.update(&ctx.target.name, |v| {
        v.findings = findings.clone();
        v.snapshot_at = Some(at);
    });
    ctx.send(Collected::Findings {
        target: ctx.target.name.clone(),
        at,
        findings,
    })
    .await;
    Ok(())
}
