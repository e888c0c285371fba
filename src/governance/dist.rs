//! The shapes of the governance data, shared by the generator and the workload so that the
//! workload draws parameters the seeded data can answer: names derived from ids, power-law
//! popularity of users and resources, weighted categories, and the time span of the data.
//!
//! Pure functions and samplers; no I/O.

use chrono::{DateTime, TimeZone, Utc};
use rand::Rng;

/// The end of the seeded time span. Fixed, so a seed gives the same rows on any day; the
/// workload reads the time of the newest seeded row instead of assuming `now()`.
pub fn data_end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// Days of history the events, audit rows, workflows and checks span.
pub const HISTORY_DAYS: i64 = 365;

pub fn username(id: i32) -> String {
    format!("user{id:05}")
}

pub fn email(id: i32) -> String {
    format!("user{id:05}@acgs.example")
}

pub fn rule_name(id: i32) -> String {
    format!("policy-rule-{id:05}")
}

pub const SEVERITIES: &[(&str, u32)] =
    &[("low", 700), ("medium", 220), ("high", 75), ("critical", 5)];

pub const EVENT_TYPES: &[(&str, u32)] = &[
    ("login", 40),
    ("logout", 25),
    ("token_refresh", 15),
    ("login_failed", 6),
    ("mfa_challenge", 5),
    ("session_expired", 4),
    ("permission_denied", 3),
    ("mfa_failure", 1),
    ("password_change", 1),
];

pub const RESOURCE_TYPES: &[(&str, u32)] = &[
    ("policy_rule", 35),
    ("workflow", 30),
    ("user", 15),
    ("compliance_check", 15),
    ("principle", 5),
];

pub const ACTIONS: &[(&str, u32)] = &[
    ("read", 55),
    ("update", 20),
    ("create", 10),
    ("approve", 7),
    ("reject", 3),
    ("delete", 5),
];

pub const WORKFLOW_KINDS: &[(&str, u32)] = &[
    ("access_request", 35),
    ("policy_amendment", 25),
    ("policy_proposal", 20),
    ("incident_review", 15),
    ("principle_review", 5),
];

pub const WORKFLOW_STATUSES: &[(&str, u32)] = &[
    ("draft", 10),
    ("review", 15),
    ("approved", 50),
    ("rejected", 15),
    ("archived", 10),
];

pub const CHECK_RESULTS: &[(&str, u32)] =
    &[("pass", 80), ("warning", 10), ("fail", 8), ("error", 2)];

pub const ROLES: &[(&str, u32)] = &[
    ("citizen", 80),
    ("reviewer", 12),
    ("auditor", 5),
    ("admin", 3),
];

pub const ENFORCEMENTS: &[(&str, u32)] = &[("advisory", 50), ("blocking", 30), ("audit_only", 20)];

pub const PRINCIPLE_CATEGORIES: &[&str] = &[
    "rights",
    "accountability",
    "transparency",
    "safety",
    "fairness",
];

/// Share of users that are active.
pub const ACTIVE_USERS: f64 = 0.90;
/// Share of policy rules that are active.
pub const ACTIVE_RULES: f64 = 0.85;

/// Picks from `(value, weight)` pairs in proportion to the weights.
pub fn weighted<'a>(rng: &mut impl Rng, table: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (v, w) in table {
        if x < *w {
            return v;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// How strongly activity concentrates on a few users (1.0: the top 1 % of 10,000 users
/// produce about half of all events).
pub const USER_SKEW: f64 = 1.0;
/// The same for the resources of the audit log (a few policies and workflows are hot).
pub const RESOURCE_SKEW: f64 = 1.0;
/// How compliance checks and workflows concentrate on a few policy rules.
pub const RULE_SKEW: f64 = 0.8;

/// Ids 1..=n drawn with Zipf-like popularity (density of rank r proportional to 1 / r^s, the
/// continuous power law sampled by inversion, so no table is kept whatever n is), the ranks
/// scattered over the ids so that the popular ones are not simply the oldest.
#[derive(Debug, Clone, Copy)]
pub struct Popularity {
    n: u64,
    s: f64,
    stride: u64,
}

impl Popularity {
    /// `n` ids (at least 1) with exponent `s` (>= 0).
    pub fn new(n: u64, s: f64) -> Self {
        let n = n.max(1);
        Popularity {
            n,
            s,
            stride: coprime_stride(n),
        }
    }

    pub fn len(&self) -> u64 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// An id in 1..=n.
    pub fn sample(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.gen();
        let top = (self.n + 1) as f64;
        let r = if (self.s - 1.0).abs() < 1e-9 {
            top.powf(u)
        } else {
            let a = 1.0 - self.s;
            (1.0 + u * (top.powf(a) - 1.0)).powf(1.0 / a)
        };
        let rank = (r.floor() as u64).saturating_sub(1).min(self.n - 1);
        self.id_of_rank(rank)
    }

    /// The id of the `rank`-th most popular (0-based).
    pub fn id_of_rank(&self, rank: u64) -> u64 {
        (rank % self.n) * self.stride % self.n + 1
    }
}

/// What an audit-log row points at: a type drawn by [`RESOURCE_TYPES`], then an id of that
/// kind with [`RESOURCE_SKEW`] popularity (a few policies and workflows are hot). The seed
/// and the workload draw alike, so the workload asks for what the data holds.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    users: Popularity,
    rules: Popularity,
    workflows: Popularity,
    principles: Popularity,
    checks: Popularity,
}

impl Resources {
    pub fn new(users: u64, rules: u64, workflows: u64, principles: u64, checks: u64) -> Self {
        let p = |n| Popularity::new(n, RESOURCE_SKEW);
        Resources {
            users: p(users),
            rules: p(rules),
            workflows: p(workflows),
            principles: p(principles),
            checks: p(checks),
        }
    }

    /// A resource type and an id of that type.
    pub fn sample(&self, rng: &mut impl Rng) -> (&'static str, i64) {
        let kind = weighted(rng, RESOURCE_TYPES);
        let id = match kind {
            "policy_rule" => self.rules.sample(rng),
            "workflow" => self.workflows.sample(rng),
            "user" => self.users.sample(rng),
            "principle" => self.principles.sample(rng),
            _ => self.checks.sample(rng),
        };
        (kind, id as i64)
    }
}

/// A stride near n * 0.618 that shares no factor with n, so rank -> id is a permutation.
fn coprime_stride(n: u64) -> u64 {
    if n <= 2 {
        return 1;
    }
    let mut s = (n as f64 * 0.618) as u64 | 1;
    while gcd(s, n) != 1 {
        s += 1;
    }
    s
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Relative activity by hour of day (UTC): busy in working hours, quiet at night.
pub const HOUR_WEIGHTS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 19, 18, 14, 17, 19, 18, 15, 11, 7, 5, 4, 3, 3, 2,
];

/// Relative activity of a day `d` days after the start of the span: weekends at 40 %, and
/// 30 % growth over the year.
fn day_weight(start: DateTime<Utc>, d: i64) -> f64 {
    use chrono::Datelike;
    let day = start + chrono::Duration::days(d);
    let weekend = matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun);
    let base = if weekend { 0.4 } else { 1.0 };
    base * (1.0 + 0.3 * d as f64 / HISTORY_DAYS as f64)
}

/// Timestamps of `n` rows over the history span, yielded in time order (so ids follow time,
/// like an append-only log), one day's worth in memory at a time.
pub struct Timeline {
    start: DateTime<Utc>,
    /// Cumulative row count at the end of each day.
    day_ends: Vec<u64>,
    day: usize,
    emitted: u64,
    today: Vec<i64>,
    next_in_day: usize,
}

impl Timeline {
    pub fn new(n: u64) -> Self {
        let start = data_end() - chrono::Duration::days(HISTORY_DAYS);
        let weights: Vec<f64> = (0..HISTORY_DAYS).map(|d| day_weight(start, d)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let day_ends = weights
            .iter()
            .map(|w| {
                acc += w;
                ((acc / total) * n as f64).round() as u64
            })
            .collect::<Vec<_>>();
        Timeline {
            start,
            day_ends,
            day: 0,
            emitted: 0,
            today: Vec::new(),
            next_in_day: 0,
        }
    }

    /// The next timestamp (microseconds since the start of the span, sorted), or None after n.
    pub fn next(&mut self, rng: &mut impl Rng) -> Option<DateTime<Utc>> {
        while self.next_in_day >= self.today.len() {
            if self.day >= self.day_ends.len() {
                return None;
            }
            let count = self.day_ends[self.day] - self.emitted;
            self.emitted = self.day_ends[self.day];
            self.today.clear();
            self.next_in_day = 0;
            let hour_total: u32 = HOUR_WEIGHTS.iter().sum();
            let day_us = self.day as i64 * 86_400_000_000;
            for _ in 0..count {
                let mut x = rng.gen_range(0..hour_total);
                let mut hour = 0;
                while x >= HOUR_WEIGHTS[hour] {
                    x -= HOUR_WEIGHTS[hour];
                    hour += 1;
                }
                let us = rng.gen_range(0..3_600_000_000i64);
                self.today.push(day_us + hour as i64 * 3_600_000_000 + us);
            }
            self.today.sort_unstable();
            self.day += 1;
        }
        let us = self.today[self.next_in_day];
        self.next_in_day += 1;
        Some(self.start + chrono::Duration::microseconds(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn popularity_is_a_permutation_and_skewed() {
        let p = Popularity::new(1000, 1.0);
        let mut ids: Vec<u64> = (0..1000).map(|r| p.id_of_rank(r)).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=1000).collect::<Vec<_>>());
        let mut rng = SmallRng::seed_from_u64(1);
        let top: std::collections::HashSet<u64> = (0..10).map(|r| p.id_of_rank(r)).collect();
        let hits = (0..10_000)
            .filter(|_| top.contains(&p.sample(&mut rng)))
            .count();
        // Top 1 % of ids take far more than 1 % of draws (about 35 % for s = 1, n = 1000).
        assert!(hits > 3000, "{hits}");
    }

    #[test]
    fn timeline_is_sorted_complete_and_within_the_span() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut t = Timeline::new(5000);
        let mut prev = None;
        let mut n = 0;
        while let Some(ts) = t.next(&mut rng) {
            assert!(ts < data_end());
            assert!(ts >= data_end() - chrono::Duration::days(HISTORY_DAYS));
            if let Some(p) = prev {
                assert!(ts >= p);
            }
            prev = Some(ts);
            n += 1;
        }
        assert_eq!(n, 5000);
    }

    #[test]
    fn names_derive_from_ids() {
        assert_eq!(username(42), "user00042");
        assert_eq!(email(42), "user00042@acgs.example");
        assert_eq!(rule_name(42), "policy-rule-00042");
    }
}
