//! Alert conditions, as rules write them in `pgopt.toml`:
//!
//! ```text
//! METRIC OP NUMBER [for DURATION]       cache_hit_ratio < 0.99 for 10m
//!                                       statement_mean_seconds > 0.5 for 5m   (per queryid)
//!                                       up == 0 for 1m
//! finding:RULE OP SEVERITY              finding:xid_wraparound >= warning
//! ```
//!
//! METRIC is a name of [`model::METRICS`]; a keyed metric (`statement_*` by queryid,
//! `connections_by_state` by state) is judged per key. OP is one of `< <= > >= == !=`
//! (`>= > ==` for findings, whose severities are ordered info < warning < critical).
//! DURATION is written as maintenance windows write theirs (`90s`, `10m`, `1h30m`).
//! Pure: parsing only.

use std::fmt;

use chrono::Duration;

use crate::advise::{Severity, RULES};
use crate::serve::model::{self, MetricInfo};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    const ALL: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Whether `value OP threshold` holds (never for NaN).
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Eq => value == threshold,
            Op::Ne => !value.is_nan() && value != threshold,
        }
    }

    /// Words for messages: "above", "at or below", ...
    pub fn words(self) -> &'static str {
        match self {
            Op::Lt => "below",
            Op::Le => "at or below",
            Op::Gt => "above",
            Op::Ge => "at or above",
            Op::Eq => "equal to",
            Op::Ne => "not equal to",
        }
    }
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// A metric compared with a number; it must hold for `hold` before the alert fires.
    Metric {
        /// A name of [`model::METRICS`].
        metric: &'static str,
        op: Op,
        threshold: f64,
        hold: Duration,
    },
    /// A finding of `rule` whose severity compares with `severity`, per object.
    Finding {
        rule: &'static str,
        op: Op,
        severity: Severity,
    },
}

/// A severity as a number, for the threshold and value of a finding alert (info 1,
/// warning 2, critical 3).
pub fn severity_rank(s: Severity) -> f64 {
    match s {
        Severity::Info => 1.0,
        Severity::Warning => 2.0,
        Severity::Critical => 3.0,
    }
}

impl Condition {
    /// Parses `text`; the error says what is wrong and what is allowed.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(
                "the condition is empty: write METRIC OP NUMBER [for DURATION] \
                 (e.g. cache_hit_ratio < 0.99 for 10m) or finding:RULE >= SEVERITY"
                    .into(),
            );
        }
        let (subject, op, rest) = split_op(t)?;
        if let Some(rule) = subject.strip_prefix("finding:") {
            return parse_finding(t, rule.trim(), op, rest);
        }
        let metric = model::metric(subject).ok_or_else(|| unknown_metric(subject))?;
        let (number, hold) = match split_for(rest) {
            Some((n, d)) => {
                let d = d.trim();
                if d.is_empty() {
                    return Err(format!(
                        "{t:?}: `for` needs a duration (e.g. for 30s, for 10m, for 1h30m)"
                    ));
                }
                (n.trim(), crate::maintain::window::parse_duration(d)?)
            }
            None => (rest.trim(), Duration::zero()),
        };
        if number.is_empty() {
            return Err(format!(
                "{t:?}: a number is missing after {} (e.g. {subject} {} 0.8)",
                op.as_str(),
                op.as_str()
            ));
        }
        let threshold: f64 = number.parse().map_err(|_| {
            format!(
                "{t:?}: {number:?} is not a number: write the threshold as 0.99, 30 or 1e6, \
                 then optionally `for DURATION`"
            )
        })?;
        if !threshold.is_finite() {
            return Err(format!("{t:?}: the threshold must be a finite number"));
        }
        Ok(Condition::Metric {
            metric: metric.name,
            op,
            threshold,
            hold,
        })
    }

    /// How long the condition must hold before firing (and not hold before resolving).
    pub fn hold(&self) -> Duration {
        match self {
            Condition::Metric { hold, .. } => *hold,
            Condition::Finding { .. } => Duration::zero(),
        }
    }

    /// The metric's description, for a metric condition.
    pub fn metric(&self) -> Option<&'static MetricInfo> {
        match self {
            Condition::Metric { metric, .. } => model::metric(metric),
            Condition::Finding { .. } => None,
        }
    }

    /// The threshold as a number (a finding's: its severity's rank).
    pub fn threshold(&self) -> f64 {
        match self {
            Condition::Metric { threshold, .. } => *threshold,
            Condition::Finding { severity, .. } => severity_rank(*severity),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Metric {
                metric,
                op,
                threshold,
                hold,
            } => {
                write!(f, "{metric} {} {threshold}", op.as_str())?;
                if !hold.is_zero() {
                    write!(f, " for {}s", hold.num_seconds())?;
                }
                Ok(())
            }
            Condition::Finding { rule, op, severity } => {
                write!(f, "finding:{rule} {} {severity}", op.as_str())
            }
        }
    }
}

/// Splits at the first comparison operator: (subject, op, rest).
fn split_op(t: &str) -> Result<(&str, Op, &str), String> {
    let pos = t.find(['<', '>', '=', '!']).ok_or_else(|| {
        format!(
            "{t:?} has no comparison: write METRIC OP NUMBER with OP one of < <= > >= == != \
             (e.g. connections_used_ratio > 0.8)"
        )
    })?;
    let (subject, tail) = t.split_at(pos);
    let (op, rest) = Op::ALL
        .iter()
        .find_map(|(s, op)| tail.strip_prefix(s).map(|rest| (*op, rest)))
        .ok_or_else(|| {
            format!(
                "{t:?}: {:?} is not a comparison: use one of < <= > >= == != (a single = is not one)",
                &tail[..tail.chars().next().map_or(0, char::len_utf8)]
            )
        })?;
    if rest.trim_start().starts_with(['<', '>', '=', '!']) {
        return Err(format!(
            "{t:?}: one comparison only, one of < <= > >= == !="
        ));
    }
    let subject = subject.trim();
    if subject.is_empty() {
        return Err(format!(
            "{t:?}: the metric is missing before {} (e.g. cache_hit_ratio < 0.99)",
            op.as_str()
        ));
    }
    Ok((subject, op, rest))
}

/// Splits `NUMBER for DURATION` at the word `for`.
fn split_for(rest: &str) -> Option<(&str, &str)> {
    let words: Vec<(usize, &str)> = rest
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - rest.as_ptr() as usize, w))
        .collect();
    words
        .iter()
        .find(|(_, w)| w.eq_ignore_ascii_case("for"))
        .map(|(at, _)| (&rest[..*at], &rest[at + 3..]))
}

fn parse_finding(t: &str, rule: &str, op: Op, rest: &str) -> Result<Condition, String> {
    let info = RULES.iter().find(|r| r.id == rule).ok_or_else(|| {
        let ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        let close = close_names(rule, &ids);
        if close.is_empty() {
            format!(
                "{t:?}: no finding rule is called {rule:?}; the rules are: {}",
                ids.join(", ")
            )
        } else {
            format!(
                "{t:?}: no finding rule is called {rule:?}; did you mean {}? \
                 (`pgopt analyze --list-rules` lists them all)",
                close.join(", ")
            )
        }
    })?;
    if !matches!(op, Op::Ge | Op::Gt | Op::Eq) {
        return Err(format!(
            "{t:?}: a finding compares its severity with >=, > or == \
             (e.g. finding:{rule} >= warning)"
        ));
    }
    let word = rest.trim();
    if split_for(rest).is_some() {
        return Err(format!(
            "{t:?}: a finding condition takes no `for` (it holds while the last full snapshot \
             has the finding)"
        ));
    }
    let severity = match word {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        "critical" => Severity::Critical,
        other => {
            return Err(format!(
                "{t:?}: {other:?} is not a severity: write info, warning or critical"
            ))
        }
    };
    Ok(Condition::Finding {
        rule: info.id,
        op,
        severity,
    })
}

/// Names at a small edit distance from `name`, or containing it, best first (at most 3).
pub(crate) fn close_names<'a>(name: &str, names: &[&'a str]) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &str)> = names
        .iter()
        .filter_map(|n| {
            let d = strsim::levenshtein(name, n);
            let near = d <= 3.max(name.len() / 3);
            let part = name.len() >= 3 && (n.contains(name) || name.contains(n));
            (near || part).then_some((d, *n))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

fn unknown_metric(name: &str) -> String {
    let names: Vec<&str> = model::METRICS.iter().map(|m| m.name).collect();
    let close = close_names(name, &names);
    if close.is_empty() {
        format!(
            "no metric is called {name:?}; the metrics are: {}",
            names.join(", ")
        )
    } else {
        format!(
            "no metric is called {name:?}; did you mean {}? (the metrics are: {})",
            close.join(", "),
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::model::m;

    fn metric(c: &Condition) -> (&'static str, Op, f64, i64) {
        match c {
            Condition::Metric {
                metric,
                op,
                threshold,
                hold,
            } => (*metric, *op, *threshold, hold.num_seconds()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_each_operator_with_and_without_for() {
        let cases = [
            (
                "cache_hit_ratio < 0.99 for 10m",
                m::CACHE_HIT_RATIO,
                Op::Lt,
                0.99,
                600,
            ),
            (
                "connections_used_ratio > 0.8",
                m::CONNECTIONS_USED_RATIO,
                Op::Gt,
                0.8,
                0,
            ),
            (
                "replication_lag_seconds>=30",
                m::REPLICATION_LAG_SECONDS,
                Op::Ge,
                30.0,
                0,
            ),
            (
                "locks_waiting <= 5 for 1h30m",
                m::LOCKS_WAITING,
                Op::Le,
                5.0,
                5400,
            ),
            ("up == 0 for 1m", m::UP, Op::Eq, 0.0, 60),
            ("up != 1", m::UP, Op::Ne, 1.0, 0),
            (
                "  statement_mean_seconds  >  0.5  FOR 5m ",
                m::STATEMENT_MEAN_SECONDS,
                Op::Gt,
                0.5,
                300,
            ),
            (
                "database_size_bytes > 1e9",
                m::DATABASE_SIZE_BYTES,
                Op::Gt,
                1e9,
                0,
            ),
        ];
        for (text, name, op, threshold, secs) in cases {
            let c = Condition::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(metric(&c), (name, op, threshold, secs), "{text}");
        }
    }

    #[test]
    fn parses_a_finding_condition() {
        let c = Condition::parse("finding:xid_wraparound >= warning").unwrap();
        assert_eq!(
            c,
            Condition::Finding {
                rule: "xid_wraparound",
                op: Op::Ge,
                severity: Severity::Warning
            }
        );
        assert_eq!(c.threshold(), 2.0);
        assert!(Condition::parse("finding:cache_hit_ratio == critical").is_ok());
    }

    #[test]
    fn an_unknown_metric_names_close_ones() {
        let e = Condition::parse("cache_hit_ration < 0.99").unwrap_err();
        assert!(
            e.contains("no metric is called \"cache_hit_ration\""),
            "{e}"
        );
        assert!(e.contains("did you mean cache_hit_ratio"), "{e}");
        let e = Condition::parse("zzzz > 1").unwrap_err();
        assert!(e.contains("the metrics are:") && e.contains("tps"), "{e}");
    }

    #[test]
    fn bad_inputs_say_what_is_wrong_and_what_is_allowed() {
        let cases = [
            ("", "empty"),
            ("cache_hit_ratio 0.99", "no comparison"),
            ("cache_hit_ratio = 0.99", "a single = is not one"),
            ("cache_hit_ratio =< 0.99", "not a comparison"),
            ("cache_hit_ratio <> 0.99", "one comparison only"),
            ("< 0.99", "the metric is missing"),
            ("cache_hit_ratio <", "a number is missing"),
            ("cache_hit_ratio < lots", "is not a number"),
            ("cache_hit_ratio < inf", "finite"),
            ("cache_hit_ratio < 0.99 for", "`for` needs a duration"),
            (
                "cache_hit_ratio < 0.99 for ten minutes",
                "is not a duration",
            ),
            ("cache_hit_ratio < 0.99 for 10m extra", "is not a duration"),
            (
                "finding:xid_wraparond >= warning",
                "did you mean xid_wraparound",
            ),
            ("finding:nothing_like_it_at_all >= warning", "the rules are"),
            (
                "finding:xid_wraparound >= severe",
                "write info, warning or critical",
            ),
            ("finding:xid_wraparound < critical", "with >=, > or =="),
            ("finding:xid_wraparound >= warning for 5m", "takes no `for`"),
        ];
        for (text, want) in cases {
            let e = Condition::parse(text).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn operators_never_hold_for_nan() {
        for (_, op) in Op::ALL {
            assert!(!op.holds(f64::NAN, 1.0), "{op:?}");
        }
        assert!(Op::Ne.holds(2.0, 1.0) && !Op::Ne.holds(1.0, 1.0));
    }
}
