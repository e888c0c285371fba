//! Alerts: rules on metrics and findings, a pending → firing → resolved state machine with
//! hysteresis, query regressions, and the notifications they send.
//!
//! ```text
//! Collected (samples, findings, events) ─┐
//! regress::detect (from the store)  ─────┴─> Evaluator (pure) ─> Transition ─> Notifier
//!                                                                               ├ the log (tracing)
//!                                                                               └ webhooks (JSON POST)
//! ```
//!
//! [`Condition`] and [`Evaluator`] are pure: time comes in as an argument. The
//! [`Notifier`] is the only I/O here besides [`regress::detect`]'s store reads and
//! [`plan::latest_plan`]'s look into the server log.

pub mod condition;
pub mod evaluator;
pub mod notify;
pub mod plan;
pub mod regress;

use serde::Serialize;

use super::model::Ts;

pub use condition::{Condition, Op};
pub use evaluator::Evaluator;
pub use notify::{Notifier, NotifierStats};
pub use regress::{Baseline, Regression};

/// Whether an alert started or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// An alert that fired or resolved: what the log and the webhooks receive. Serialized as
/// the webhook's JSON body:
///
/// ```json
/// {"id": "cache/db1//2026-01-15T12:10:00Z/firing", "status": "firing",
///  "rule": "cache", "severity": "warning", "condition": "cache_hit_ratio < 0.99 for 600s",
///  "target": "db1", "key": "", "value": 0.95, "threshold": 0.99,
///  "message": "cache_hit_ratio of db1 is 0.95, below 0.99 for 10m",
///  "started_at": "2026-01-15T12:10:00Z", "resolved_at": null}
/// ```
///
/// `key` is the queryid of statement rules and regressions, the state of
/// `connections_by_state` rules, the object of finding rules, else "". A finding rule's
/// value and threshold are severity ranks (info 1, warning 2, critical 3); a regression's
/// value is the ratio of the means and its threshold the configured factor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// The same for the same (rule, target, key, fired-at, status): what deduplicates.
    pub id: String,
    pub status: Status,
    pub rule: String,
    pub severity: String,
    pub condition: String,
    pub target: String,
    pub key: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    /// When the alert fired.
    pub started_at: Ts,
    pub resolved_at: Option<Ts>,
}

impl Transition {
    /// The id of the transition of an alert that fired at `fired_at`.
    pub fn make_id(rule: &str, target: &str, key: &str, fired_at: Ts, status: Status) -> String {
        format!(
            "{rule}/{target}/{key}/{}/{}",
            fired_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            status.as_str()
        )
    }

    /// The transition as a stored event.
    pub fn event(&self) -> super::model::Event {
        use super::model::{Event, EventKind};
        let kind = match (self.status, self.rule.as_str()) {
            (Status::Firing, regress::RULE) => EventKind::Regression,
            (Status::Firing, _) => EventKind::AlertFiring,
            (Status::Resolved, _) => EventKind::AlertResolved,
        };
        let details = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
            _ => Default::default(),
        };
        Event {
            target: self.target.clone(),
            at: self.resolved_at.unwrap_or(self.started_at),
            kind,
            message: self.message.clone(),
            details,
        }
    }
}
