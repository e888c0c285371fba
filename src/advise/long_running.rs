//! Long-running queries (active, by query age) and long transactions (by transaction age).
//!
//! Only client backends: autovacuum workers and walsenders run long by design. A session
//! already reported as a long query or as idle in transaction is not reported again as a
//! long transaction. Whether a long transaction holds back vacuum is [`Horizon`]'s call: it
//! may hold the horizon, only follow another holder, or hold nothing at all.

use super::horizon::{Horizon, SessionRole};
use super::{duration, idle_in_transaction, num, Finding, Severity, Thresholds};
use crate::plan::Step;
use crate::snapshot::{Session, Snapshot};

pub const QUERY_RULE: &str = "long_running_query";
pub const XACT_RULE: &str = "long_transaction";
const QUERY_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT";
const XACT_DOCS: &str =
    "https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY";

/// `user@database, application` for messages.
pub(crate) fn who(s: &Session) -> String {
    let mut out = format!(
        "{}@{}",
        s.user.as_deref().unwrap_or("?"),
        s.database.as_deref().unwrap_or("?")
    );
    if let Some(app) = s.application_name.as_deref().filter(|a| !a.is_empty()) {
        out.push_str(", ");
        out.push_str(app);
    }
    out
}

/// What session `pid` does to vacuum, as a clause for messages, and its role as evidence
/// (`holds_horizon`, `holds_back`, `follows`, `free`).
pub(crate) fn horizon_note(horizon: &Horizon, pid: i32) -> (String, &'static str) {
    match horizon.session(pid) {
        SessionRole::Cause {
            holder,
            at_horizon: true,
        } => (
            format!(
                "it holds the xmin horizon ({}): VACUUM cannot remove or freeze rows past it",
                holder.what.split(", ").next().unwrap_or_default()
            ),
            "holds_horizon",
        ),
        SessionRole::Cause { holder, .. } => (
            format!(
                "it holds back vacuum ({}), though older holders keep the horizon further back",
                holder.what.split(", ").next().unwrap_or_default()
            ),
            "holds_back",
        ),
        SessionRole::Victim(v) => (
            format!(
                "its snapshot (xmin age {}) only follows {}, which holds the horizon: ending this session frees nothing for vacuum",
                v.age, v.follows
            ),
            "follows",
        ),
        SessionRole::Free => (
            "it holds no XID and no snapshot now, so it does not hold back vacuum (its locks stay)"
                .to_string(),
            "free",
        ),
    }
}

pub(crate) fn is_client_backend(s: &Session) -> bool {
    s.backend_type
        .as_deref()
        .is_none_or(|t| t == "client backend")
}

fn query_severity(s: &Session, th: &Thresholds) -> Option<(Severity, f64, f64)> {
    if !is_client_backend(s) || s.state.as_deref() != Some("active") {
        return None;
    }
    let age = s.query_age_seconds?;
    if age >= th.long_query_critical_seconds {
        Some((Severity::Critical, age, th.long_query_critical_seconds))
    } else if age >= th.long_query_warning_seconds {
        Some((Severity::Warning, age, th.long_query_warning_seconds))
    } else {
        None
    }
}

fn xact_severity(s: &Session, th: &Thresholds) -> Option<(Severity, f64, f64)> {
    if !is_client_backend(s) {
        return None;
    }
    let age = s.xact_age_seconds?;
    if age >= th.long_transaction_critical_seconds {
        Some((
            Severity::Critical,
            age,
            th.long_transaction_critical_seconds,
        ))
    } else if age >= th.long_transaction_warning_seconds {
        Some((Severity::Warning, age, th.long_transaction_warning_seconds))
    } else {
        None
    }
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(act) = &snap.activity else {
        return Vec::new();
    };
    let horizon = Horizon::of(snap);
    let mut out = Vec::new();
    for s in &act.sessions {
        let long_query = query_severity(s, th);
        if let Some((severity, age, limit)) = long_query {
            let mut message = format!(
                "query of pid {} ({}) has been running for {} (threshold {})",
                s.pid,
                who(s),
                duration(age),
                duration(limit)
            );
            let f = Finding::new(QUERY_RULE, severity, format!("pid {}", s.pid), "")
                .evidence("pid", s.pid)
                .evidence("query_age_seconds", num(age))
                .evidence("threshold_seconds", num(limit))
                .evidence("xact_age_seconds", s.xact_age_seconds.map(num))
                .evidence("wait_event_type", s.wait_event_type.clone())
                .evidence("wait_event", s.wait_event.clone())
                .evidence("blocked_by", s.blocked_by.clone())
                .evidence("query", s.query.clone())
                .docs(QUERY_DOCS);
            // Waiting for another session's lock, it is a victim: the blocked_session finding
            // names what holds it up, and cancelling it would only throw its work away.
            let f = if s.blocked_by.is_empty() {
                f.next_step(
                    "Look at the plan of this query (EXPLAIN) and whether it waits on a lock; cancel it if it is not meant to run this long, and set statement_timeout for the role that runs it",
                )
                .fix(Step::call(format!("SELECT pg_cancel_backend({})", s.pid)))
            } else {
                let holders: Vec<String> =
                    s.blocked_by.iter().map(|p| format!("pid {p}")).collect();
                message.push_str(&format!(
                    ", and is waiting for a lock held by {}",
                    holders.join(", ")
                ));
                f.next_step(format!(
                    "It waits for a lock: deal with what holds it ({}) rather than cancelling this query, which would only throw its work away",
                    holders.join(", ")
                ))
            };
            out.push(Finding { message, ..f });
        }
        if long_query.is_some() || idle_in_transaction::severity_of(s, th).is_some() {
            continue;
        }
        if let Some((severity, age, limit)) = xact_severity(s, th) {
            let (vacuum, role) = horizon_note(&horizon, s.pid);
            out.push(
                Finding::new(
                    XACT_RULE,
                    severity,
                    format!("pid {}", s.pid),
                    format!(
                        "transaction of pid {} ({}) has been open for {} (threshold {}); {vacuum}",
                        s.pid,
                        who(s),
                        duration(age),
                        duration(limit)
                    ),
                )
                .evidence("pid", s.pid)
                .evidence("xact_age_seconds", num(age))
                .evidence("threshold_seconds", num(limit))
                .evidence("state", s.state.clone())
                .evidence("backend_xmin_age", s.backend_xmin_age)
                .evidence("backend_xid_age", s.backend_xid_age)
                .evidence("horizon", role)
                .evidence("query", s.query.clone())
                .next_step(
                    "Find why the application keeps this transaction open (batch jobs should commit in chunks); end it if it is stuck",
                )
                .fix(Step::call(format!("SELECT pg_terminate_backend({})", s.pid)))
                .docs(XACT_DOCS),
            );
        }
    }
    out
}
