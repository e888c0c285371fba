//! Generated history for the dashboard's tests and benchmarks: samples of a plausible
//! server (a daily cycle, a little noise, top statements, one of them regressing), written
//! to a store the way the daemon writes them — raw samples for the raw retention, then one
//! point per 5 minutes (what the default retention keeps as rollups) further back — with
//! events (alerts, a regression, maintenance runs), a fleet state and a config around it.
//! Deterministic: the same spec and `now` give the same history.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Duration;

use crate::advise::{Finding, Severity};
use crate::db::secret::Secret;
use crate::serve::clock::ManualClock;
use crate::serve::config::{Config, Intervals, Regressions, TargetConfig};
use crate::serve::http::AppState;
use crate::serve::model::{m, Event, EventKind, Sample, StatementDelta, Ts};
use crate::serve::state::{AlertState, AlertStatus, Fleet, Health, TargetView};
use crate::serve::store::{Retention, Store, StoreError};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The targets; the first is up and has findings, the others: the second is down.
    pub targets: Vec<String>,
    /// How far back the history goes.
    pub span: Duration,
    /// Seconds between raw samples (the daemon's default: 10).
    pub sample_seconds: i64,
    /// How far back raw samples go; older history is one point per `rollup_seconds`.
    pub raw: Duration,
    pub rollup_seconds: i64,
    /// The top statements: (queryid, text). The first one regresses in the last two hours.
    pub statements: Vec<(i64, String)>,
    /// A collection gap (no sample) of the first target: (start before now, length).
    pub gap: Option<(Duration, Duration)>,
}

impl Default for Spec {
    /// One target, seven days at the default resolution (10 s samples for 48 h, 5-minute
    /// points before), five statements.
    fn default() -> Self {
        let raw = Duration::from_std(Retention::default().raw).unwrap_or(Duration::hours(48));
        Self {
            targets: vec!["primary".into()],
            span: Duration::days(7),
            sample_seconds: 10,
            raw,
            rollup_seconds: 300,
            statements: default_statements(),
            gap: Some((Duration::hours(3), Duration::minutes(20))),
        }
    }
}

/// Five statements of an ordinary application.
pub fn default_statements() -> Vec<(i64, String)> {
    [
        "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2",
        "UPDATE accounts SET balance = balance + $1 WHERE id = $2",
        "INSERT INTO events (kind, payload, at) VALUES ($1, $2, now())",
        "SELECT count(*) FROM sessions WHERE expires_at > now()",
        "DELETE FROM jobs WHERE finished_at < $1",
    ]
    .iter()
    .enumerate()
    .map(|(i, q)| {
        (
            -4_611_686_018_427_387_000 + i as i64 * 1_234_567_891,
            q.to_string(),
        )
    })
    .collect()
}

/// What [`fill`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filled {
    pub samples: usize,
    pub points: usize,
    pub events: usize,
}

/// A number in [0, 1) from `(t, salt)`: splitmix64.
fn noise(t: i64, salt: u64) -> f64 {
    let mut z = (t as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The sample of `target` at `at` covering the `interval` seconds before it.
pub fn sample(spec: &Spec, target: &str, at: Ts, interval: i64, now: Ts) -> Sample {
    let t = at.timestamp();
    let salt = target
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let day = (t.rem_euclid(86_400) as f64 / 86_400.0) * std::f64::consts::TAU;
    let load = 1.0 + 0.5 * (day - 1.5).sin();
    let n = |k: u64| noise(t, salt.wrapping_add(k));
    let tps = 400.0 * load * (0.9 + 0.2 * n(1));
    let rollbacks = tps * 0.01 * n(2);
    let active = (4.0 * load + 3.0 * n(3)).round();
    let idle = (30.0 + 10.0 * n(4)).round();
    let idle_tx = (2.0 * n(5)).round();
    let connections = active + idle + idle_tx;
    let values = BTreeMap::from(
        [
            (m::UP, 1.0),
            (m::COLLECT_SECONDS, 0.02 + 0.03 * n(6)),
            (m::CONNECTIONS, connections),
            (m::MAX_CONNECTIONS, 100.0),
            (m::CONNECTIONS_USED_RATIO, connections / 97.0),
            (m::LOCKS_WAITING, (n(7) * 2.0).floor()),
            (m::TPS, tps),
            (m::COMMITS_PER_SECOND, tps - rollbacks),
            (m::ROLLBACKS_PER_SECOND, rollbacks),
            (m::CACHE_HIT_RATIO, 0.995 - 0.01 * n(8) * load),
            (m::BLOCKS_READ_PER_SECOND, 50.0 * load * n(9)),
            (m::TUPLES_RETURNED_PER_SECOND, tps * 40.0),
            (m::TUPLES_WRITTEN_PER_SECOND, tps * 3.0),
            (m::DEADLOCKS_PER_SECOND, 0.0),
            (m::TEMP_BYTES_PER_SECOND, 1e5 * n(10)),
            (m::WAL_BYTES_PER_SECOND, 2e6 * load * (0.8 + 0.4 * n(11))),
            (m::REPLICATION_LAG_SECONDS, 0.2 + 2.0 * n(12) * load),
            (m::OLDEST_XACT_SECONDS, 5.0 * n(13)),
            (m::DATABASE_SIZE_BYTES, 5e10 + (t as f64) * 10.0),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let keyed = BTreeMap::from([
        (
            m::CONNECTIONS_BY_STATE.to_string(),
            BTreeMap::from(
                [
                    ("active", active),
                    ("idle", idle),
                    ("idle in transaction", idle_tx),
                ]
                .map(|(k, v)| (k.to_string(), v)),
            ),
        ),
        (
            m::CONNECTIONS_WAITING_BY_EVENT.to_string(),
            BTreeMap::from([("Lock".to_string(), (n(14) * 2.0).floor())]),
        ),
    ]);
    let regressing = now - at < Duration::hours(2);
    let statements = spec
        .statements
        .iter()
        .enumerate()
        .map(|(i, (queryid, query))| {
            let calls = interval as f64 * tps / (2.0 + i as f64 * 3.0);
            let mut mean = 0.0005 * (1.0 + i as f64) * (0.9 + 0.2 * n(20 + i as u64));
            if i == 0 && regressing {
                mean *= 4.0;
            }
            StatementDelta {
                queryid: *queryid,
                query: query.clone(),
                calls,
                total_seconds: calls * mean,
                rows: calls * (1.0 + i as f64),
                temp_bytes_written: if i == 3 { calls * 8192.0 * n(30) } else { 0.0 },
            }
        })
        .collect();
    Sample {
        target: target.to_string(),
        at,
        interval_seconds: interval as f64,
        values,
        keyed,
        statements,
        resets: vec![],
    }
}

/// Writes the history of every target of `spec` up to `now` into `store`, in batches.
pub fn fill(store: &dyn Store, spec: &Spec, now: Ts) -> Result<Filled, StoreError> {
    const BATCH: usize = 50_000;
    let mut filled = Filled::default();
    let start = now - spec.span;
    let raw_from = now - spec.raw;
    for (ti, target) in spec.targets.iter().enumerate() {
        store.put_statements(target, &spec.statements)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut at = start;
        while at <= now {
            let step = if at < raw_from {
                spec.rollup_seconds
            } else {
                spec.sample_seconds
            }
            .max(1);
            let in_gap = ti == 0
                && spec
                    .gap
                    .is_some_and(|(before, len)| at >= now - before && at < now - before + len);
            if !in_gap {
                batch.extend(sample(spec, target, at, step, now).points());
                filled.samples += 1;
            }
            if batch.len() >= BATCH {
                filled.points += batch.len();
                store.write(&batch)?;
                batch.clear();
            }
            at += Duration::seconds(step);
        }
        filled.points += batch.len();
        store.write(&batch)?;
        let events = events(spec, target, ti, now);
        filled.events += events.len();
        store.put_events(&events)?;
    }
    Ok(filled)
}

fn event(
    target: &str,
    at: Ts,
    kind: EventKind,
    message: &str,
    details: &[(&str, serde_json::Value)],
) -> Event {
    Event {
        target: target.to_string(),
        at,
        kind,
        message: message.to_string(),
        details: details
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// The events of target number `ti`: alerts fired and resolved, a maintenance run every
/// night, the first statement's regression (first target), the gap's down and up.
fn events(spec: &Spec, target: &str, ti: usize, now: Ts) -> Vec<Event> {
    let mut out = Vec::new();
    let mut day = Duration::zero();
    while day < spec.span {
        let at = now - day - Duration::hours(5);
        out.push(event(
            target,
            at,
            EventKind::AlertFiring,
            &format!("cache on {target}: cache_hit_ratio 0.981 < 0.99 for 10m"),
            &[("rule", "cache".into()), ("value", 0.981.into())],
        ));
        out.push(event(
            target,
            at + Duration::minutes(25),
            EventKind::AlertResolved,
            &format!("cache on {target}: cache_hit_ratio back at 0.996"),
            &[("rule", "cache".into()), ("value", 0.996.into())],
        ));
        out.push(event(
            target,
            now - day - Duration::hours(9),
            EventKind::Maintenance,
            "maintenance window: VACUUM (ANALYZE) public.orders, ANALYZE public.events (2 steps done)",
            &[("steps_done", 2.into()), ("window", "0 2 * * *".into())],
        ));
        day += Duration::days(1);
    }
    if ti == 0 {
        if let Some((queryid, query)) = spec.statements.first() {
            out.push(event(
                target,
                now - Duration::minutes(100),
                EventKind::Regression,
                &format!("statement {queryid} regressed: mean 2.0 ms, baseline 0.5 ms (4.0x) over 1200 calls"),
                &[
                    ("queryid", (*queryid).into()),
                    ("query", query.clone().into()),
                    ("before_ms", 0.5.into()),
                    ("after_ms", 2.0.into()),
                    ("plan", "Seq Scan on orders  (cost=0.00..4310.00 rows=12 width=96)\n  Filter: (customer_id = 42)".into()),
                ],
            ));
        }
        if let Some((before, len)) = spec.gap {
            out.push(event(
                target,
                now - before,
                EventKind::Down,
                "connection refused",
                &[],
            ));
            out.push(event(
                target,
                now - before + len,
                EventKind::Up,
                "answers again",
                &[],
            ));
        }
    }
    out
}

fn finding(
    rule: &str,
    severity: Severity,
    object: &str,
    message: &str,
    next: &str,
    sql: Option<&str>,
) -> Finding {
    Finding {
        rule: rule.to_string(),
        severity,
        object: object.to_string(),
        message: message.to_string(),
        evidence: BTreeMap::new(),
        next_step: next.to_string(),
        fix: Vec::new(),
        sql: sql.map(str::to_string),
        docs: None,
    }
}

/// Findings of one of each kind of advice the server page shows.
pub fn findings() -> Vec<Finding> {
    vec![
        finding(
            "autovacuum_behind",
            Severity::Warning,
            "public.orders",
            "public.orders has 2.1M dead rows (18 % of its rows), past autovacuum's threshold",
            "VACUUM it, then check autovacuum_vacuum_scale_factor for this table",
            Some("VACUUM (ANALYZE) public.orders;"),
        ),
        finding(
            "unused_index",
            Severity::Info,
            "public.orders_status_idx",
            "public.orders_status_idx (120 MB) was not scanned since the stats reset 30 days ago",
            "Drop it if no standby or rare job uses it",
            Some("DROP INDEX CONCURRENTLY public.orders_status_idx;"),
        ),
        finding(
            "cache_hit_ratio",
            Severity::Warning,
            "database app",
            "cache hit ratio 0.981 is under 0.99",
            "Raise shared_buffers (pgopt tune shows by how much)",
            None,
        ),
        finding(
            "xid_wraparound",
            Severity::Critical,
            "public.events",
            "public.events is 1.6 billion transactions old, past the 1.2 billion warning",
            "VACUUM (FREEZE) it now",
            Some("VACUUM (FREEZE) public.events;"),
        ),
        finding(
            "long_transaction",
            Severity::Warning,
            "pid 4242",
            "a transaction open for 2 h holds back vacuum",
            "Find its application and end it",
            None,
        ),
    ]
}

/// The fleet's state at `now`: the first target up (its last sample, findings, a firing
/// and a pending alert), the second down with `error`, any others up without findings.
pub fn fleet(spec: &Spec, now: Ts, error: &str) -> Fleet {
    let views = spec
        .targets
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut v = TargetView::new(name, BTreeMap::new());
            if i == 1 {
                v.health = Health::Down {
                    since: now - Duration::minutes(7),
                    error: error.to_string(),
                    attempts: 12,
                };
            } else {
                v.health = Health::Up {
                    since: now - spec.span,
                };
                v.last_sample = Some(sample(spec, name, now, spec.sample_seconds, now));
                v.server = Some("PostgreSQL 15.10, primary".into());
                v.snapshot_at = Some(now - Duration::minutes(4));
                if i == 0 {
                    v.findings = findings();
                }
            }
            v
        })
        .collect();
    let fleet = Fleet::new(views);
    if let Some(first) = spec.targets.first() {
        let key = spec
            .statements
            .first()
            .map(|s| s.0.to_string())
            .unwrap_or_default();
        *fleet.alerts.write().unwrap_or_else(|p| p.into_inner()) = vec![
            AlertStatus {
                rule: "regression".into(),
                target: first.clone(),
                key,
                state: AlertState::Firing,
                since: now - Duration::minutes(100),
                value: 4.0,
                message: "mean time 4.0x its baseline".into(),
            },
            AlertStatus {
                rule: "connections".into(),
                target: first.clone(),
                key: String::new(),
                state: AlertState::Pending,
                since: now - Duration::minutes(2),
                value: 0.41,
                message: "connections_used_ratio 0.41 > 0.4 for 5m".into(),
            },
        ];
    }
    fleet
}

/// A config naming the spec's targets (the DSNs are placeholders: nothing connects).
pub fn config(spec: &Spec, data_dir: std::path::PathBuf) -> Config {
    Config {
        listen: crate::serve::config::DEFAULT_LISTEN
            .parse()
            .expect("the default address parses"),
        data_dir,
        store: None,
        auth: None,
        tls: None,
        intervals: Intervals::default(),
        retention: Retention::default(),
        targets: spec
            .targets
            .iter()
            .enumerate()
            .map(|(i, name)| TargetConfig {
                name: name.clone(),
                dsn: Secret::new(format!("host=db{i}.invalid dbname=app password=hunter2")),
                password_file: None,
                groups: vec![],
                labels: BTreeMap::new(),
                maintenance_apply: false,
                line: i + 1,
            })
            .collect(),
        alerts: vec![],
        regressions: Regressions::default(),
        webhooks: vec![],
        windows: vec![],
    }
}

/// The whole state a page reads: `store` filled by [`fill`] (by the caller), the fleet of
/// [`fleet`], the config of [`config`], a clock stopped at `now`.
pub fn app(
    spec: &Spec,
    now: Ts,
    store: Arc<dyn Store>,
    data_dir: std::path::PathBuf,
    error: &str,
) -> AppState {
    AppState {
        config: Arc::new(config(spec, data_dir)),
        fleet: Arc::new(fleet(spec, now, error)),
        store,
        clock: Arc::new(ManualClock::new(now)),
    }
}
