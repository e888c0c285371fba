//! Query regressions: a statement whose mean time over the last window is well above its
//! own baseline.
//!
//! For each queryid of a target, from the store's `statement_mean_seconds` and
//! `statement_calls_per_second`:
//!
//! - **after**: the mean over the last `window`, weighted by calls (a point's calls are its
//!   rate times the time since the series' previous point; a gap — the target was down, the
//!   statement left the top N — counts as one typical step, not the whole gap);
//! - **before**, the baseline, the first of these that there is history for:
//!   1. the median of the same window at the same hour of day on the previous days (up to
//!      7; at least 2 days with calls) — it follows a daily cycle;
//!   2. the median of the windows of the previous day (the 24 h before the window), when
//!      the statement has a day of history but fewer than 2 same-hour days;
//!   3. the median of the windows of the hours before the window, when the statement has
//!      less than a day of history (at least 2 windows with calls; with less it is not
//!      judged).
//!
//! It fires when after / before >= `factor`, after - before >= `min_increase` (a statement
//! going from 5 µs to 15 µs per call is 3x slower and of no consequence), and the window
//! had at least `min_calls` calls. pgopt's own statements (they carry
//! [`crate::collect::OWN_STATEMENT_MARK`]) are never judged: the daemon's reads are not the
//! workload it watches.
//! Reads the store only; the plan to look at is [`super::plan`]'s, kept apart (it needs a
//! connection).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use serde::Serialize;

use crate::serve::config::Regressions;
use crate::serve::model::{m, Ts};
use crate::serve::store::{Query, Resolution, Row, Store, StoreError};

/// The rule name regressions fire under.
pub const RULE: &str = "query_regression";

/// Same-hour days needed before they make the baseline.
const MIN_SAME_HOUR_DAYS: usize = 2;
/// Windows with calls needed for a previous-day or preceding-hours baseline.
const MIN_WINDOWS: usize = 2;
/// How many previous days the same-hour baseline looks at.
const MAX_DAYS: i64 = 7;
/// The step assumed for a series with a single point (the default sample interval).
const DEFAULT_STEP_SECONDS: f64 = 10.0;

/// What the baseline was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Baseline {
    /// The median of the same window on `days` previous days.
    SameHour { days: u32 },
    /// The median of the windows of the previous 24 hours.
    PreviousDay,
    /// The median of the windows of the `hours` of history before the window (less than a
    /// day of it).
    PrecedingHours { hours: u32 },
}

impl Baseline {
    pub fn describe(self) -> String {
        match self {
            Baseline::SameHour { days } => {
                format!("the median of the same hour on the previous {days} days")
            }
            Baseline::PreviousDay => "the median of the previous day".to_string(),
            Baseline::PrecedingHours { hours } => {
                format!("the median of the preceding {hours} h (less than a day of history)")
            }
        }
    }
}

/// A statement slower than its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Regression {
    pub queryid: i64,
    /// The normalized text, if the store has it.
    pub text: Option<String>,
    /// The baseline's mean seconds per call.
    pub before: f64,
    /// The last window's mean seconds per call.
    pub after: f64,
    /// after / before.
    pub ratio: f64,
    /// Calls in the last window.
    pub calls: f64,
    pub baseline: Baseline,
    /// The configured factor it was judged against.
    pub factor: f64,
    /// The window's length.
    pub window_seconds: i64,
}

impl Regression {
    /// One sentence: the statement, before and after, calls, the baseline.
    pub fn message(&self, target: &str) -> String {
        let text = match &self.text {
            Some(t) => {
                let one_line = t.split_whitespace().collect::<Vec<_>>().join(" ");
                let cut: String = one_line.chars().take(160).collect();
                if cut.len() < one_line.len() {
                    format!(": {cut}…")
                } else {
                    format!(": {cut}")
                }
            }
            None => String::new(),
        };
        format!(
            "statement {} on {target} is {:.1}x slower: {} ms per call in the last {} over {} \
             calls, against {} ms ({}){text}",
            self.queryid,
            self.ratio,
            ms(self.after),
            super::evaluator::duration(Duration::seconds(self.window_seconds)),
            self.calls.round(),
            ms(self.before),
            self.baseline.describe()
        )
    }
}

fn ms(seconds: f64) -> String {
    super::evaluator::num(seconds * 1000.0)
}

/// One point of a statement: its mean and the calls it stands for.
#[derive(Debug, Clone, Copy)]
struct Obs {
    at: Ts,
    mean: f64,
    calls: f64,
}

/// Finds the regressed statements of `target` at `now`.
pub fn detect(
    store: &dyn Store,
    target: &str,
    now: Ts,
    cfg: &Regressions,
) -> Result<Vec<Regression>, StoreError> {
    Ok(judge(store, target, now, cfg)?.0)
}

/// [`detect`], and the queryids of every statement judged in the window (enough calls and a
/// baseline), regressed or not: only a judged statement can be said to be back near its
/// baseline; one with too few calls in the window (or no baseline) says nothing.
pub fn judge(
    store: &dyn Store,
    target: &str,
    now: Ts,
    cfg: &Regressions,
) -> Result<(Vec<Regression>, BTreeSet<i64>), StoreError> {
    let window = Duration::from_std(cfg.window)
        .ok()
        .filter(|w| *w > Duration::zero())
        .unwrap_or_else(|| Duration::minutes(15));
    let end = now + Duration::milliseconds(1);
    // The window and one more before it (at least 5 minutes) at the finest resolution...
    let raw_from = raw_from(now, window);
    let recent = read(store, target, raw_from, end, Resolution::Raw)?;
    // ...and the history before that in 5-minute buckets. `raw_from` is on a bucket's
    // start, so no bucket reaches into the raw samples (a bucket whose samples run into the
    // window would put the slow calls into the baseline they are judged against).
    let history_from = now - Duration::days(MAX_DAYS) - window * 2;
    let mut history = read(
        store,
        target,
        history_from,
        raw_from,
        Resolution::FiveMinutes,
    )?;
    for (key, obs) in &recent {
        history
            .entry(key.clone())
            .or_default()
            .extend(obs.iter().filter(|o| o.at <= now - window));
    }
    let mut out = Vec::new();
    let mut judged = BTreeSet::new();
    for (key, recent_obs) in &recent {
        let Some((after, calls)) = weighted(recent_obs, now - window, now) else {
            continue;
        };
        if calls < cfg.min_calls as f64 {
            continue;
        }
        let Some(past) = history.get(key) else {
            continue;
        };
        let Some((before, baseline)) = baseline(past, now, window) else {
            continue;
        };
        if before <= 0.0 {
            continue;
        }
        let Ok(queryid) = key.parse::<i64>() else {
            continue;
        };
        let text = store.statement(target, queryid)?;
        if text
            .as_deref()
            .is_some_and(crate::collect::is_own_statement)
        {
            continue;
        }
        judged.insert(queryid);
        let ratio = after / before;
        if ratio < cfg.factor || after - before < cfg.min_increase.as_secs_f64() {
            continue;
        }
        out.push(Regression {
            queryid,
            text,
            before,
            after,
            ratio,
            calls,
            baseline,
            factor: cfg.factor,
            window_seconds: window.num_seconds(),
        });
    }
    out.sort_by(|a, b| b.ratio.total_cmp(&a.ratio));
    Ok((out, judged))
}

/// Where the raw samples the judgement reads begin: a window (at least 5 minutes) before
/// the window, on the start of a 5-minute bucket.
fn raw_from(now: Ts, window: Duration) -> Ts {
    use chrono::DurationRound;
    let before = now - window - window.max(Duration::minutes(5));
    before
        .duration_trunc(Duration::minutes(5))
        .unwrap_or(before)
}

/// The baseline mean of one statement from its history before the window.
fn baseline(past: &[Obs], now: Ts, window: Duration) -> Option<(f64, Baseline)> {
    let same_hour: Vec<f64> = (1..=MAX_DAYS)
        .filter_map(|d| {
            let end = now - Duration::days(d);
            weighted(past, end - window, end).map(|(mean, _)| mean)
        })
        .collect();
    if same_hour.len() >= MIN_SAME_HOUR_DAYS {
        return Some((
            median(same_hour.clone())?,
            Baseline::SameHour {
                days: same_hour.len() as u32,
            },
        ));
    }
    let window_end = now - window;
    let earliest = past.iter().filter(|o| o.calls > 0.0).map(|o| o.at).min()?;
    let day = Duration::days(1);
    let n = (day.num_seconds() / window.num_seconds().max(1)).max(1) as i32;
    let windows: Vec<f64> = (0..n)
        .filter_map(|k| {
            let end = window_end - window * k;
            weighted(past, end - window, end).map(|(mean, _)| mean)
        })
        .collect();
    if windows.len() < MIN_WINDOWS {
        return None;
    }
    let kind = if window_end - earliest >= day - window {
        Baseline::PreviousDay
    } else {
        let hours = (window_end - earliest).num_minutes() as f64 / 60.0;
        Baseline::PrecedingHours {
            hours: hours.ceil().max(1.0) as u32,
        }
    };
    Some((median(windows)?, kind))
}

/// The calls-weighted mean and the calls of the points in `(from, to]`.
fn weighted(obs: &[Obs], from: Ts, to: Ts) -> Option<(f64, f64)> {
    let (mut sum, mut calls) = (0.0, 0.0);
    for o in obs.iter().filter(|o| o.at > from && o.at <= to) {
        sum += o.mean * o.calls;
        calls += o.calls;
    }
    (calls > 0.0).then(|| (sum / calls, calls))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Every statement's points in `[from, to)`: mean and calls joined by time.
fn read(
    store: &dyn Store,
    target: &str,
    from: Ts,
    to: Ts,
    resolution: Resolution,
) -> Result<BTreeMap<String, Vec<Obs>>, StoreError> {
    let q = |metric: &str| Query {
        target: target.to_string(),
        metric: metric.to_string(),
        key: None,
        from,
        to,
        resolution: Some(resolution),
    };
    let means = store.query(&q(m::STATEMENT_MEAN_SECONDS))?;
    let rates = store.query(&q(m::STATEMENT_CALLS_PER_SECOND))?;
    Ok(join(&means, &rates))
}

fn join(means: &[Row], rates: &[Row]) -> BTreeMap<String, Vec<Obs>> {
    /// Mean and calls rate at one time.
    type Pair = (Option<f64>, Option<f64>);
    let mut by_key: BTreeMap<&str, BTreeMap<Ts, Pair>> = BTreeMap::new();
    for r in means {
        by_key.entry(&r.key).or_default().entry(r.at).or_default().0 = Some(r.value);
    }
    for r in rates {
        by_key.entry(&r.key).or_default().entry(r.at).or_default().1 = Some(r.value);
    }
    let mut out = BTreeMap::new();
    for (key, points) in by_key {
        let times: Vec<Ts> = points.keys().copied().collect();
        let gaps: Vec<f64> = times
            .windows(2)
            .map(|w| (w[1] - w[0]).num_milliseconds() as f64 / 1000.0)
            .collect();
        let typical = median(gaps).unwrap_or(DEFAULT_STEP_SECONDS);
        let mut obs = Vec::new();
        let mut prev: Option<Ts> = None;
        for (at, (mean, rate)) in points {
            let step = match prev {
                Some(p) => {
                    let g = (at - p).num_milliseconds() as f64 / 1000.0;
                    if g > 3.0 * typical {
                        typical
                    } else {
                        g
                    }
                }
                None => typical,
            };
            prev = Some(at);
            if let (Some(mean), Some(rate)) = (mean, rate) {
                if mean.is_finite() && rate.is_finite() && rate >= 0.0 {
                    obs.push(Obs {
                        at,
                        mean,
                        calls: rate * step,
                    });
                }
            }
        }
        out.insert(key.to_string(), obs);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::model::Point;
    use crate::serve::store::memory::MemoryStore;
    use chrono::{TimeZone, Utc};

    fn now() -> Ts {
        Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
    }

    /// Points every 5 minutes over `history` before now: `mean(at)` seconds per call at
    /// `rate(at)` calls per second.
    fn generate(
        store: &MemoryStore,
        queryid: i64,
        history: Duration,
        mean: impl Fn(Ts) -> f64,
        rate: impl Fn(Ts) -> f64,
    ) {
        let mut points = Vec::new();
        let mut at = now() - history;
        while at <= now() {
            for (metric, value) in [
                (m::STATEMENT_MEAN_SECONDS, mean(at)),
                (m::STATEMENT_CALLS_PER_SECOND, rate(at)),
            ] {
                points.push(Point {
                    target: "db1".into(),
                    metric: metric.into(),
                    key: queryid.to_string(),
                    at,
                    value,
                });
            }
            at += Duration::minutes(5);
        }
        store.write(&points).unwrap();
        store
            .put_statements(
                "db1",
                &[(queryid, format!("SELECT * FROM t{queryid} WHERE id = $1"))],
            )
            .unwrap();
    }

    /// 10 ms normally, `slow` seconds in the last 15 minutes.
    fn slow_lately(slow: f64) -> impl Fn(Ts) -> f64 {
        move |at| {
            if at > now() - Duration::minutes(15) {
                slow
            } else {
                0.010
            }
        }
    }

    fn cfg() -> Regressions {
        Regressions {
            factor: 2.0,
            min_calls: 50,
            min_increase: std::time::Duration::from_millis(1),
            window: std::time::Duration::from_secs(15 * 60),
        }
    }

    #[test]
    fn a_statement_slower_than_the_same_hour_on_previous_days_fires() {
        let store = MemoryStore::new();
        // A daily cycle: slower around noon every day, so the same hour is the right baseline.
        let daily = |at: Ts| {
            use chrono::Timelike;
            if at > now() - Duration::minutes(15) {
                0.100
            } else if at.hour() == 11 || at.hour() == 12 {
                0.030
            } else {
                0.010
            }
        };
        generate(&store, 1, Duration::days(8), daily, |_| 1.0);
        let found = detect(&store, "db1", now(), &cfg()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let r = &found[0];
        assert_eq!(r.queryid, 1);
        assert_eq!(r.baseline, Baseline::SameHour { days: 7 });
        assert!((r.before - 0.030).abs() < 1e-9, "{r:?}");
        assert!((r.after - 0.100).abs() < 1e-9, "{r:?}");
        assert!((r.calls - 900.0).abs() < 1e-6, "{r:?}");
        assert_eq!(r.text.as_deref(), Some("SELECT * FROM t1 WHERE id = $1"));
        let msg = r.message("db1");
        assert!(msg.contains("statement 1 on db1 is 3.3x slower: 100 ms per call in the last 15m over 900 calls, against 30 ms (the median of the same hour on the previous 7 days): SELECT"), "{msg}");
    }

    #[test]
    fn too_few_calls_in_the_window_is_not_judged() {
        let store = MemoryStore::new();
        // 0.05 calls per second: 45 calls in 15 minutes, under min_calls = 50.
        generate(&store, 2, Duration::days(3), slow_lately(0.100), |_| 0.05);
        assert!(detect(&store, "db1", now(), &cfg()).unwrap().is_empty());
        let mut lower = cfg();
        lower.min_calls = 40;
        assert_eq!(detect(&store, "db1", now(), &lower).unwrap().len(), 1);
    }

    #[test]
    fn slower_by_less_than_the_factor_does_not_fire() {
        let store = MemoryStore::new();
        generate(&store, 3, Duration::days(3), slow_lately(0.019), |_| 1.0);
        assert!(detect(&store, "db1", now(), &cfg()).unwrap().is_empty());
        generate(&store, 4, Duration::days(3), slow_lately(0.021), |_| 1.0);
        let found = detect(&store, "db1", now(), &cfg()).unwrap();
        assert_eq!(found.iter().map(|r| r.queryid).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn one_previous_day_makes_a_previous_day_baseline() {
        let store = MemoryStore::new();
        generate(&store, 5, Duration::hours(30), slow_lately(0.050), |_| 1.0);
        let found = detect(&store, "db1", now(), &cfg()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].baseline, Baseline::PreviousDay);
        assert!((found[0].ratio - 5.0).abs() < 1e-9);
    }

    #[test]
    fn less_than_a_day_of_history_uses_the_preceding_hours() {
        let store = MemoryStore::new();
        generate(&store, 6, Duration::hours(6), slow_lately(0.050), |_| 1.0);
        let found = detect(&store, "db1", now(), &cfg()).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].baseline, Baseline::PrecedingHours { hours: 6 });
        // Half an hour of history: under two windows before this one, not judged.
        let store = MemoryStore::new();
        generate(&store, 7, Duration::minutes(25), slow_lately(0.050), |_| {
            1.0
        });
        assert!(detect(&store, "db1", now(), &cfg()).unwrap().is_empty());
    }

    #[test]
    fn a_rise_under_min_increase_per_call_is_judged_but_does_not_fire() {
        let store = MemoryStore::new();
        // 0.2 ms -> 0.9 ms: 4.5x, but 0.7 ms more per call, under the 1 ms minimum.
        let small = |at: Ts| {
            if at > now() - Duration::minutes(15) {
                0.0009
            } else {
                0.0002
            }
        };
        generate(&store, 8, Duration::days(3), small, |_| 1.0);
        let (found, judged) = judge(&store, "db1", now(), &cfg()).unwrap();
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(judged.into_iter().collect::<Vec<_>>(), vec![8]);
        // The near miss: 0.2 ms -> 1.3 ms is 1.1 ms more per call, and fires.
        let store = MemoryStore::new();
        let over = |at: Ts| {
            if at > now() - Duration::minutes(15) {
                0.0013
            } else {
                0.0002
            }
        };
        generate(&store, 9, Duration::days(3), over, |_| 1.0);
        let found = detect(&store, "db1", now(), &cfg()).unwrap();
        assert_eq!(found.iter().map(|r| r.queryid).collect::<Vec<_>>(), vec![9]);
        // With the minimum at zero the first one fires too.
        let store = MemoryStore::new();
        generate(&store, 8, Duration::days(3), small, |_| 1.0);
        let zero = Regressions {
            min_increase: std::time::Duration::ZERO,
            ..cfg()
        };
        assert_eq!(detect(&store, "db1", now(), &zero).unwrap().len(), 1);
    }

    #[test]
    fn pgopts_own_statements_are_never_judged() {
        let store = MemoryStore::new();
        generate(&store, 10, Duration::days(3), slow_lately(0.100), |_| 1.0);
        store
            .put_statements(
                "db1",
                &[(
                    10,
                    "/* pgopt: the sessions by state */ SELECT 1".to_string(),
                )],
            )
            .unwrap();
        let (found, judged) = judge(&store, "db1", now(), &cfg()).unwrap();
        assert!(
            found.is_empty() && judged.is_empty(),
            "{found:?} {judged:?}"
        );
        // The near miss: a user's statement with a comment of its own is judged and fires.
        store
            .put_statements("db1", &[(10, "/* job */ SELECT 1".to_string())])
            .unwrap();
        assert_eq!(detect(&store, "db1", now(), &cfg()).unwrap().len(), 1);
    }

    /// A daemon started minutes ago, in the SQLite store: 2-second samples for 3 minutes,
    /// the statement 10x slower for the last 40 s, a 1-minute window. The baseline comes
    /// from the raw samples before the window; read from 5-minute buckets it was one
    /// bucket (not judged), or a bucket that already held the slow samples.
    #[test]
    fn minutes_of_history_in_the_sqlite_store_make_a_baseline_from_the_raw_samples() {
        use crate::serve::store::sqlite::SqliteStore;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 12, 4, 0).unwrap();
        let mut points = Vec::new();
        let mut at = now - Duration::minutes(3);
        while at <= now {
            let mean = if at > now - Duration::seconds(40) {
                0.1
            } else {
                0.01
            };
            for (metric, value) in [
                (m::STATEMENT_MEAN_SECONDS, mean),
                (m::STATEMENT_CALLS_PER_SECOND, 1.0),
            ] {
                points.push(Point {
                    target: "db1".into(),
                    metric: metric.into(),
                    key: "11".into(),
                    at,
                    value,
                });
            }
            at += Duration::seconds(2);
        }
        store.write(&points).unwrap();
        let cfg = Regressions {
            min_calls: 20,
            window: std::time::Duration::from_secs(60),
            ..cfg()
        };
        let found = detect(&store, "db1", now, &cfg).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let r = &found[0];
        assert_eq!(r.baseline, Baseline::PrecedingHours { hours: 1 });
        assert!((r.before - 0.01).abs() < 1e-9, "{r:?}");
        assert!(r.ratio > 6.0, "{r:?}");
    }

    #[test]
    fn raw_samples_begin_a_window_before_the_window_on_a_bucket_start() {
        let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
        assert_eq!(raw_from(at(12, 4), Duration::minutes(1)), at(11, 55));
        assert_eq!(raw_from(at(12, 20), Duration::minutes(15)), at(11, 50));
        assert_eq!(raw_from(at(12, 12), Duration::minutes(15)), at(11, 40));
    }

    #[test]
    fn a_gap_in_the_series_counts_as_one_step_of_calls() {
        let at = |min: i64| now() - Duration::minutes(min);
        let row = |min, value| Row {
            key: "1".into(),
            at: at(min),
            value,
            max: value,
        };
        // Every 5 minutes, then a 2-hour hole before the last point.
        let means = [row(135, 0.01), row(130, 0.01), row(125, 0.01), row(0, 0.01)];
        let rates = [row(135, 1.0), row(130, 1.0), row(125, 1.0), row(0, 1.0)];
        let obs = &join(&means, &rates)["1"];
        let calls: Vec<f64> = obs.iter().map(|o| o.calls).collect();
        assert_eq!(calls, vec![300.0, 300.0, 300.0, 300.0]);
    }
}
