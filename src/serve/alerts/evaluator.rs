//! The alert state machine: per rule × target × key, pending → firing → resolved.
//!
//! - A condition that starts to hold makes the alert *pending*; once it has held for the
//!   rule's `for` it *fires* (`for 0`: at once). A pending alert whose condition stops
//!   holding goes back to nothing: a value that flaps across the threshold faster than
//!   `for` never fires.
//! - A firing alert *resolves* only once its condition has not held for `for` as well
//!   (hysteresis): one good sample in a bad period does not resolve it.
//! - A missing value (the target is down, a statement left the top N) neither fires nor
//!   resolves a metric alert; only `up` rules see a target that went down (as `up = 0`).
//! - A finding rule holds per object while the last full snapshot has the finding; the
//!   next snapshot without it resolves it.
//!
//! Pure: time comes in as `now`, nothing is sent from here ([`super::Notifier`] does).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;

use super::condition::{severity_rank, Condition};
use super::regress::{self, Regression};
use super::{Status, Transition};
use crate::advise::Finding;
use crate::serve::config::{AlertRule, TargetConfig};
use crate::serve::model::{m, Collected, EventKind, Sample, Ts};
use crate::serve::state::{AlertState, AlertStatus};

/// The severities a rule may have.
const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    severity: String,
    groups: Vec<String>,
    condition: Condition,
    text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Firing,
}

#[derive(Debug, Clone)]
struct Alert {
    phase: Phase,
    /// When the condition started to hold (pending) or the alert fired (firing).
    since: Ts,
    /// While firing: since when the condition has not held.
    clear_since: Option<Ts>,
    value: f64,
    message: String,
}

/// One observation of one alert's condition.
#[derive(Debug, Clone, Copy)]
struct Seen<'a> {
    holds: bool,
    value: f64,
    /// A finding's own sentence, for the message.
    detail: Option<&'a str>,
}

impl<'a> Seen<'a> {
    fn new(holds: bool, value: f64, detail: Option<&'a str>) -> Self {
        Self {
            holds,
            value,
            detail,
        }
    }
}

/// See the module's documentation.
#[derive(Debug, Clone, Default)]
pub struct Evaluator {
    rules: Vec<Rule>,
    /// Each target's groups (for rules limited to groups).
    groups: BTreeMap<String, BTreeSet<String>>,
    /// (rule index, target, key) → alert.
    alerts: BTreeMap<(usize, String, String), Alert>,
    /// (target, queryid) → the firing regression.
    regressions: BTreeMap<(String, String), Alert>,
}

impl Evaluator {
    /// Compiles the rules; the error names the rule, its line and what is wrong.
    pub fn new(rules: &[AlertRule]) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut names = BTreeSet::new();
        for r in rules {
            let at = if r.line > 0 {
                format!("alert {:?} (line {})", r.name, r.line)
            } else {
                format!("alert {:?}", r.name)
            };
            if r.name.trim().is_empty() {
                return Err(format!("{at}: give the alert a name"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(format!("{at}: another alert has this name; rename one"));
            }
            let condition = Condition::parse(&r.when).map_err(|e| format!("{at}: {e}"))?;
            let severity = if r.severity.trim().is_empty() {
                "warning".to_string()
            } else if SEVERITIES.contains(&r.severity.as_str()) {
                r.severity.clone()
            } else {
                return Err(format!(
                    "{at}: severity {:?} is not one of info, warning, critical",
                    r.severity
                ));
            };
            out.push(Rule {
                name: r.name.clone(),
                severity,
                groups: r.groups.clone(),
                text: r.when.trim().to_string(),
                condition,
            });
        }
        Ok(Self {
            rules: out,
            ..Self::default()
        })
    }

    /// Tells the evaluator each target's groups: a rule with `groups` applies only to
    /// targets in one of them (and to none the evaluator was not told about).
    pub fn set_targets(&mut self, targets: &[TargetConfig]) {
        self.groups = targets
            .iter()
            .map(|t| (t.name.clone(), t.groups.iter().cloned().collect()))
            .collect();
    }

    fn applies(&self, rule: &Rule, target: &str) -> bool {
        rule.groups.is_empty()
            || self
                .groups
                .get(target)
                .is_some_and(|g| rule.groups.iter().any(|r| g.contains(r)))
    }

    /// Judges what was collected; returns the alerts that fired or resolved.
    pub fn observe(&mut self, collected: &Collected, now: Ts) -> Vec<Transition> {
        match collected {
            Collected::Sample(s) => self.observe_sample(s, now),
            Collected::Findings {
                target, findings, ..
            } => self.observe_findings(target, findings, now),
            Collected::Event(e) => {
                // A target going down is `up = 0` for `up` rules; nothing else is judged
                // without values.
                let up = match e.kind {
                    EventKind::Down => 0.0,
                    EventKind::Up => 1.0,
                    _ => return Vec::new(),
                };
                let mut values = BTreeMap::new();
                values.insert(m::UP.to_string(), up);
                self.observe_values(&e.target, &values, &BTreeMap::new(), now, Some(m::UP))
            }
        }
    }

    fn observe_sample(&mut self, s: &Sample, now: Ts) -> Vec<Transition> {
        let mut values = s.values.clone();
        // A sample is a successful collection.
        values.entry(m::UP.to_string()).or_insert(1.0);
        let mut keyed = s.keyed.clone();
        for p in s.points() {
            if !p.key.is_empty() {
                keyed
                    .entry(p.metric)
                    .or_default()
                    .entry(p.key)
                    .or_insert(p.value);
            }
        }
        self.observe_values(&s.target, &values, &keyed, now, None)
    }

    fn observe_values(
        &mut self,
        target: &str,
        values: &BTreeMap<String, f64>,
        keyed: &BTreeMap<String, BTreeMap<String, f64>>,
        now: Ts,
        only: Option<&str>,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            let Condition::Metric {
                metric,
                op,
                threshold,
                ..
            } = rule.condition
            else {
                continue;
            };
            if only.is_some_and(|o| o != metric) || !self.applies(rule, target) {
                continue;
            }
            let observed: Vec<(String, f64)> = match keyed.get(metric) {
                Some(keys) => keys.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                None => values
                    .get(metric)
                    .map(|v| vec![(String::new(), *v)])
                    .unwrap_or_default(),
            };
            for (key, value) in observed {
                if !value.is_finite() {
                    continue;
                }
                let holds = op.holds(value, threshold);
                out.extend(self.step(i, target, &key, Seen::new(holds, value, None), now));
            }
        }
        out
    }

    fn observe_findings(&mut self, target: &str, findings: &[Finding], now: Ts) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            let Condition::Finding {
                rule: id,
                op,
                severity,
            } = rule.condition
            else {
                continue;
            };
            if !self.applies(rule, target) {
                continue;
            }
            let mut holding: BTreeMap<String, (f64, String)> = BTreeMap::new();
            for f in findings.iter().filter(|f| f.rule == id) {
                let rank = severity_rank(f.severity);
                if op.holds(rank, severity_rank(severity)) {
                    let e = holding
                        .entry(f.object.clone())
                        .or_insert((rank, f.message.clone()));
                    if rank > e.0 {
                        *e = (rank, f.message.clone());
                    }
                }
            }
            let known: Vec<String> = self
                .alerts
                .keys()
                .filter(|(r, t, _)| *r == i && t == target)
                .map(|(_, _, k)| k.clone())
                .collect();
            for key in known {
                if !holding.contains_key(&key) {
                    out.extend(self.step(i, target, &key, Seen::new(false, 0.0, None), now));
                }
            }
            for (key, (rank, message)) in holding {
                out.extend(self.step(i, target, &key, Seen::new(true, rank, Some(&message)), now));
            }
        }
        out
    }

    /// One observation of one alert.
    fn step(
        &mut self,
        i: usize,
        target: &str,
        key: &str,
        seen: Seen<'_>,
        now: Ts,
    ) -> Option<Transition> {
        let Seen {
            holds,
            value,
            detail,
        } = seen;
        let hold = self.rules[i].condition.hold();
        let id = (i, target.to_string(), key.to_string());
        match (self.alerts.get_mut(&id), holds) {
            (None, false) => None,
            (None, true) => {
                let phase = if hold.is_zero() {
                    Phase::Firing
                } else {
                    Phase::Pending
                };
                let mut alert = Alert {
                    phase,
                    since: now,
                    clear_since: None,
                    value,
                    message: String::new(),
                };
                alert.message = self.message(i, target, key, value, Status::Firing, detail);
                self.alerts.insert(id, alert);
                (phase == Phase::Firing)
                    .then(|| self.transition(i, target, key, Status::Firing, now))
            }
            (Some(a), true) => {
                a.value = value;
                a.clear_since = None;
                if a.phase == Phase::Pending && now - a.since >= hold {
                    a.phase = Phase::Firing;
                    a.since = now;
                    let msg = self.message(i, target, key, value, Status::Firing, detail);
                    if let Some(a) = self.alerts.get_mut(&id) {
                        a.message = msg;
                    }
                    return Some(self.transition(i, target, key, Status::Firing, now));
                }
                None
            }
            (Some(a), false) => {
                if a.phase == Phase::Pending {
                    self.alerts.remove(&id);
                    return None;
                }
                a.value = value;
                let clear = *a.clear_since.get_or_insert(now);
                if now - clear >= hold {
                    let t = self.transition(i, target, key, Status::Resolved, now);
                    self.alerts.remove(&id);
                    return Some(t);
                }
                None
            }
        }
    }

    fn message(
        &self,
        i: usize,
        target: &str,
        key: &str,
        value: f64,
        status: Status,
        detail: Option<&str>,
    ) -> String {
        let rule = &self.rules[i];
        let hold = rule.condition.hold();
        match &rule.condition {
            Condition::Metric {
                metric,
                op,
                threshold,
                ..
            } => {
                let of = if key.is_empty() {
                    format!("{metric} of {target}")
                } else {
                    let what = crate::serve::model::metric(metric)
                        .and_then(|m| m.key)
                        .unwrap_or("key");
                    format!("{metric} of {target} ({what} {key})")
                };
                match status {
                    Status::Firing if hold.is_zero() => {
                        format!("{of} is {}, {} {}", num(value), op.words(), num(*threshold))
                    }
                    Status::Firing => format!(
                        "{of} is {}, {} {} for {}",
                        num(value),
                        op.words(),
                        num(*threshold),
                        duration(hold)
                    ),
                    Status::Resolved => format!(
                        "{of} is {}, no longer {} {}",
                        num(value),
                        op.words(),
                        num(*threshold)
                    ),
                }
            }
            Condition::Finding { rule: id, .. } => match status {
                Status::Firing => {
                    let severity = match value as i64 {
                        3 => "critical",
                        2 => "warning",
                        _ => "info",
                    };
                    match detail {
                        Some(d) => format!("{id} on {target}: {key} ({severity}): {d}"),
                        None => format!("{id} on {target}: {key} ({severity})"),
                    }
                }
                Status::Resolved => {
                    format!("{id} on {target}: {key} is no longer found by the last snapshot")
                }
            },
        }
    }

    fn transition(&self, i: usize, target: &str, key: &str, status: Status, now: Ts) -> Transition {
        let rule = &self.rules[i];
        let a = &self.alerts[&(i, target.to_string(), key.to_string())];
        let message = match status {
            Status::Firing => a.message.clone(),
            Status::Resolved => self.message(i, target, key, a.value, status, None),
        };
        Transition {
            id: Transition::make_id(&rule.name, target, key, a.since, status),
            status,
            rule: rule.name.clone(),
            severity: rule.severity.clone(),
            condition: rule.condition.to_string(),
            target: target.to_string(),
            key: key.to_string(),
            value: a.value,
            threshold: rule.condition.threshold(),
            message,
            started_at: a.since,
            resolved_at: (status == Status::Resolved).then_some(now),
        }
    }

    /// Turns the regressions [`regress::judge`] found for `target` into transitions: a new
    /// one fires; a firing one resolves only when its statement was `judged` in the window
    /// and found near its baseline. A statement too seldom called in the window to be
    /// judged (or gone) keeps its state: nothing says it is back.
    pub fn regressions(
        &mut self,
        target: &str,
        found: &[Regression],
        judged: &BTreeSet<i64>,
        now: Ts,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let current: BTreeMap<String, &Regression> =
            found.iter().map(|r| (r.queryid.to_string(), r)).collect();
        let gone: Vec<(String, String)> = self
            .regressions
            .keys()
            .filter(|(t, k)| {
                t == target
                    && !current.contains_key(k)
                    && k.parse::<i64>().is_ok_and(|q| judged.contains(&q))
            })
            .cloned()
            .collect();
        for id in gone {
            if let Some(a) = self.regressions.remove(&id) {
                let message = format!("statement {} on {target} is back near its baseline", id.1);
                out.push(regression_transition(
                    target,
                    &id.1,
                    &a,
                    message,
                    Status::Resolved,
                    Some(now),
                    0.0,
                ));
            }
        }
        for (key, r) in current {
            let id = (target.to_string(), key.clone());
            match self.regressions.get_mut(&id) {
                Some(a) => {
                    a.value = r.ratio;
                    a.message = r.message(target);
                }
                None => {
                    let a = Alert {
                        phase: Phase::Firing,
                        since: now,
                        clear_since: None,
                        value: r.ratio,
                        message: r.message(target),
                    };
                    out.push(regression_transition(
                        target,
                        &key,
                        &a,
                        a.message.clone(),
                        Status::Firing,
                        None,
                        r.factor,
                    ));
                    self.regressions.insert(id, a);
                }
            }
        }
        out
    }

    /// Every pending and firing alert, regressions included.
    pub fn statuses(&self) -> Vec<AlertStatus> {
        let mut out: Vec<AlertStatus> = self
            .alerts
            .iter()
            .map(|((i, target, key), a)| AlertStatus {
                rule: self.rules[*i].name.clone(),
                target: target.clone(),
                key: key.clone(),
                state: match a.phase {
                    Phase::Pending => AlertState::Pending,
                    Phase::Firing => AlertState::Firing,
                },
                since: a.since,
                value: a.value,
                message: a.message.clone(),
            })
            .collect();
        out.extend(
            self.regressions
                .iter()
                .map(|((target, key), a)| AlertStatus {
                    rule: regress::RULE.to_string(),
                    target: target.clone(),
                    key: key.clone(),
                    state: AlertState::Firing,
                    since: a.since,
                    value: a.value,
                    message: a.message.clone(),
                }),
        );
        out
    }

    /// The rules' conditions as written, by rule name (for the alerts page).
    pub fn rules(&self) -> Vec<(String, String)> {
        self.rules
            .iter()
            .map(|r| (r.name.clone(), r.text.clone()))
            .collect()
    }
}

fn regression_transition(
    target: &str,
    key: &str,
    a: &Alert,
    message: String,
    status: Status,
    resolved_at: Option<Ts>,
    factor: f64,
) -> Transition {
    Transition {
        id: Transition::make_id(regress::RULE, target, key, a.since, status),
        status,
        rule: regress::RULE.to_string(),
        severity: "warning".to_string(),
        condition: "statement mean time over its baseline".to_string(),
        target: target.to_string(),
        key: key.to_string(),
        value: a.value,
        threshold: factor,
        message,
        started_at: a.since,
        resolved_at,
    }
}

/// A number for people: at most 4 decimals, no trailing zeros.
pub(crate) fn num(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// A duration as rules write it: 90s, 10m, 1h30m.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.num_seconds();
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if sec > 0 || out.is_empty() {
        out += &format!("{sec}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advise::Severity;
    use crate::serve::clock::{Clock, ManualClock};
    use crate::serve::model::{Event, StatementDelta};
    use chrono::{TimeZone, Utc};

    fn rule(name: &str, when: &str) -> AlertRule {
        AlertRule {
            name: name.into(),
            when: when.into(),
            severity: "warning".into(),
            groups: vec![],
            line: 0,
        }
    }

    fn t0() -> Ts {
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
    }

    fn sample(target: &str, at: Ts, metric: &str, value: f64) -> Collected {
        Collected::Sample(Sample {
            target: target.into(),
            at,
            interval_seconds: 10.0,
            values: BTreeMap::from([(metric.to_string(), value)]),
            keyed: BTreeMap::new(),
            statements: vec![],
            resets: vec![],
        })
    }

    /// Feeds `values`, one every 10 s on the clock; returns the transitions with the
    /// second at which each came.
    fn feed(
        ev: &mut Evaluator,
        clock: &ManualClock,
        metric: &str,
        values: &[f64],
    ) -> Vec<(i64, Transition)> {
        let mut out = Vec::new();
        for v in values {
            let now = clock.now();
            for t in ev.observe(&sample("db1", now, metric, *v), now) {
                out.push(((now - t0()).num_seconds(), t));
            }
            clock.advance(Duration::seconds(10));
        }
        out
    }

    #[test]
    fn fires_only_after_the_condition_held_for_its_duration() {
        let mut ev =
            Evaluator::new(&[rule("conn", "connections_used_ratio > 0.8 for 30s")]).unwrap();
        let clock = ManualClock::new(t0());
        let got = feed(
            &mut ev,
            &clock,
            m::CONNECTIONS_USED_RATIO,
            &[0.5, 0.9, 0.9, 0.9],
        );
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(ev.statuses()[0].state, AlertState::Pending);
        let got = feed(&mut ev, &clock, m::CONNECTIONS_USED_RATIO, &[0.95]);
        assert_eq!(got.len(), 1);
        let (at, t) = &got[0];
        assert_eq!((*at, t.status), (40, Status::Firing));
        assert_eq!(t.value, 0.95);
        assert_eq!(t.threshold, 0.8);
        assert_eq!(
            t.message,
            "connections_used_ratio of db1 is 0.95, above 0.8 for 30s"
        );
        assert_eq!(
            t.id,
            Transition::make_id(
                "conn",
                "db1",
                "",
                t0() + Duration::seconds(40),
                Status::Firing
            )
        );
        assert_eq!(ev.statuses()[0].state, AlertState::Firing);
        // Still holding: nothing new.
        assert!(feed(&mut ev, &clock, m::CONNECTIONS_USED_RATIO, &[0.9, 0.99]).is_empty());
    }

    #[test]
    fn a_zero_duration_fires_at_once() {
        let mut ev = Evaluator::new(&[rule("conn", "connections_used_ratio > 0.8")]).unwrap();
        let clock = ManualClock::new(t0());
        let got = feed(&mut ev, &clock, m::CONNECTIONS_USED_RATIO, &[0.9]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.status, Status::Firing);
        let got = feed(&mut ev, &clock, m::CONNECTIONS_USED_RATIO, &[0.1]);
        assert_eq!(got[0].1.status, Status::Resolved);
    }

    #[test]
    fn a_value_flapping_across_the_threshold_does_not_fire() {
        let mut ev = Evaluator::new(&[rule("cache", "cache_hit_ratio < 0.99 for 30s")]).unwrap();
        let clock = ManualClock::new(t0());
        let flap: Vec<f64> = (0..30)
            .map(|i| if i % 3 == 2 { 0.999 } else { 0.9 })
            .collect();
        let got = feed(&mut ev, &clock, m::CACHE_HIT_RATIO, &flap);
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn resolves_only_after_the_condition_stopped_holding_for_its_duration() {
        let mut ev = Evaluator::new(&[rule("cache", "cache_hit_ratio < 0.99 for 30s")]).unwrap();
        let clock = ManualClock::new(t0());
        let got = feed(&mut ev, &clock, m::CACHE_HIT_RATIO, &[0.9, 0.9, 0.9, 0.9]);
        assert_eq!(got.len(), 1, "{got:?}");
        let fired = got[0].1.started_at;
        // A flap back above the threshold does not resolve; a bad sample restarts the wait.
        let got = feed(
            &mut ev,
            &clock,
            m::CACHE_HIT_RATIO,
            &[0.999, 0.999, 0.9, 0.999, 0.999, 0.999],
        );
        assert!(got.is_empty(), "{got:?}");
        let got = feed(&mut ev, &clock, m::CACHE_HIT_RATIO, &[0.999]);
        assert_eq!(got.len(), 1, "{got:?}");
        let (at, t) = &got[0];
        assert_eq!((*at, t.status), (100, Status::Resolved));
        assert_eq!(t.started_at, fired);
        assert_eq!(t.resolved_at, Some(t0() + Duration::seconds(100)));
        assert_eq!(
            t.message,
            "cache_hit_ratio of db1 is 0.999, no longer below 0.99"
        );
        assert_ne!(t.id, got_id_firing(fired));
        assert!(ev.statuses().is_empty());
    }

    fn got_id_firing(fired: Ts) -> String {
        Transition::make_id("cache", "db1", "", fired, Status::Firing)
    }

    #[test]
    fn a_target_down_neither_fires_nor_resolves_a_metric_alert_but_fires_up_rules() {
        let mut ev = Evaluator::new(&[
            rule("cache", "cache_hit_ratio < 0.99 for 20s"),
            rule("down", "up == 0 for 20s"),
        ])
        .unwrap();
        let clock = ManualClock::new(t0());
        assert_eq!(
            feed(&mut ev, &clock, m::CACHE_HIT_RATIO, &[0.9, 0.9, 0.9]).len(),
            1
        );
        // Down for a minute: events only, no samples.
        let mut got = Vec::new();
        for _ in 0..6 {
            let now = clock.now();
            let down = Collected::Event(Event {
                target: "db1".into(),
                at: now,
                kind: EventKind::Down,
                message: "connection refused".into(),
                details: BTreeMap::new(),
            });
            got.extend(ev.observe(&down, now));
            clock.advance(Duration::seconds(10));
        }
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].rule.as_str(), got[0].status),
            ("down", Status::Firing)
        );
        let cache = ev
            .statuses()
            .into_iter()
            .find(|s| s.rule == "cache")
            .unwrap();
        assert_eq!(cache.state, AlertState::Firing);
        // Back: up resolves after 20 s of samples; cache keeps firing while still bad.
        let got = feed(&mut ev, &clock, m::CACHE_HIT_RATIO, &[0.9, 0.9, 0.9]);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].1.rule.as_str(), got[0].1.status),
            ("down", Status::Resolved)
        );
    }

    #[test]
    fn statement_rules_fire_per_queryid() {
        let mut ev = Evaluator::new(&[rule("slow", "statement_mean_seconds > 0.5")]).unwrap();
        let stmt = |queryid, total_seconds| StatementDelta {
            queryid,
            query: "select".into(),
            calls: 10.0,
            total_seconds,
            rows: 10.0,
            temp_bytes_written: 0.0,
        };
        let s = Collected::Sample(Sample {
            target: "db1".into(),
            at: t0(),
            interval_seconds: 10.0,
            values: BTreeMap::new(),
            keyed: BTreeMap::new(),
            statements: vec![stmt(1, 1.0), stmt(2, 8.0), stmt(3, 20.0)],
            resets: vec![],
        });
        let got = ev.observe(&s, t0());
        let keys: Vec<&str> = got.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, vec!["2", "3"]);
        assert!(
            got[0].message.contains("(queryid 2) is 0.8, above 0.5"),
            "{}",
            got[0].message
        );
    }

    #[test]
    fn finding_rules_fire_per_object_and_resolve_when_the_snapshot_lacks_them() {
        let mut ev = Evaluator::new(&[rule("wrap", "finding:xid_wraparound >= warning")]).unwrap();
        let finding = |object: &str, severity| {
            Finding::new(
                "xid_wraparound",
                severity,
                object.to_string(),
                "age near the limit",
            )
        };
        let snap = |findings: Vec<Finding>| Collected::Findings {
            target: "db1".into(),
            at: t0(),
            findings,
        };
        let got = ev.observe(
            &snap(vec![
                finding("database a", Severity::Critical),
                finding("database b", Severity::Info),
            ]),
            t0(),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].key.as_str(), got[0].value, got[0].threshold),
            ("database a", 3.0, 2.0)
        );
        assert!(
            got[0].message.contains("age near the limit"),
            "{}",
            got[0].message
        );
        assert!(ev
            .observe(&snap(vec![finding("database a", Severity::Warning)]), t0())
            .is_empty());
        let got = ev.observe(&snap(vec![]), t0() + Duration::minutes(15));
        assert_eq!((got.len(), got[0].status), (1, Status::Resolved));
    }

    #[test]
    fn rules_limited_to_groups_apply_to_their_targets_only() {
        let mut r = rule("conn", "connections_used_ratio > 0.8");
        r.groups = vec!["prod".into()];
        let mut ev = Evaluator::new(&[r]).unwrap();
        let target = |name: &str, groups: &[&str]| TargetConfig {
            name: name.into(),
            dsn: crate::db::secret::Secret::new("host=x"),
            password_file: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            labels: BTreeMap::new(),
            maintenance_apply: false,
            line: 0,
        };
        ev.set_targets(&[target("db1", &["prod"]), target("db2", &["dev"])]);
        assert_eq!(
            ev.observe(&sample("db1", t0(), m::CONNECTIONS_USED_RATIO, 0.9), t0())
                .len(),
            1
        );
        assert!(ev
            .observe(&sample("db2", t0(), m::CONNECTIONS_USED_RATIO, 0.9), t0())
            .is_empty());
    }

    #[test]
    fn bad_rules_are_refused_with_their_name_and_line() {
        let mut r = rule("cache", "cache_hit < 0.99");
        r.line = 12;
        let e = Evaluator::new(&[r]).unwrap_err();
        assert!(e.starts_with("alert \"cache\" (line 12): no metric"), "{e}");
        let mut r = rule("cache", "cache_hit_ratio < 0.99");
        r.severity = "page".into();
        assert!(Evaluator::new(&[r])
            .unwrap_err()
            .contains("not one of info, warning, critical"));
        let e = Evaluator::new(&[rule("a", "up == 0"), rule("a", "up == 0")]).unwrap_err();
        assert!(e.contains("another alert has this name"), "{e}");
    }

    #[test]
    fn numbers_and_durations_read_as_rules_write_them() {
        assert_eq!(num(0.95), "0.95");
        assert_eq!(num(30.0), "30");
        assert_eq!(num(1.0 / 3.0), "0.3333");
        assert_eq!(duration(Duration::seconds(5400)), "1h30m");
        assert_eq!(duration(Duration::seconds(45)), "45s");
    }
}
