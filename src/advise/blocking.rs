//! Lock waits from pg_blocking_pids(): one finding per blocked session naming its blockers, and
//! one per root blocker (a blocker not itself blocked) with how many sessions wait behind it.

use crate::plan::Step;
use std::collections::{BTreeMap, BTreeSet};

use super::{duration, long_running::who, num, Finding, Severity, Thresholds};
use crate::snapshot::{Session, Snapshot};

pub const BLOCKED_RULE: &str = "blocked_session";
pub const BLOCKING_RULE: &str = "blocking_session";
const DOCS: &str = "https://www.postgresql.org/docs/current/explicit-locking.html";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(act) = &snap.activity else {
        return Vec::new();
    };
    let by_pid: BTreeMap<i32, &Session> = act.sessions.iter().map(|s| (s.pid, s)).collect();
    let blocked: Vec<&Session> = act
        .sessions
        .iter()
        .filter(|s| !s.blocked_by.is_empty())
        .collect();
    let mut out = Vec::new();

    // Roots: pids that block someone and are not blocked themselves (or that we know nothing of).
    let roots: BTreeSet<i32> = blocked
        .iter()
        .flat_map(|s| s.blocked_by.iter().copied())
        .filter(|pid| by_pid.get(pid).is_none_or(|b| b.blocked_by.is_empty()))
        .collect();

    // A wait cycle has no root: then there is no blocking_session finding to point to.
    let see_root = if roots.is_empty() {
        "The sessions wait on each other in a cycle (the deadlock detector ends one after deadlock_timeout); if it persists, end one of them with pg_cancel_backend"
    } else {
        "See the blocking_session finding for the session at the root of the chain"
    };
    for s in &blocked {
        let blockers: Vec<String> = s.blocked_by.iter().map(|p| p.to_string()).collect();
        let waited = s.state_age_seconds.or(s.query_age_seconds);
        let mut message = format!(
            "session pid {} ({}) is waiting for a lock held by pid {}",
            s.pid,
            who(s),
            blockers.join(", pid ")
        );
        if let Some(w) = waited {
            message.push_str(&format!(" (waiting {})", duration(w)));
        }
        out.push(
            Finding::new(BLOCKED_RULE, Severity::Warning, format!("pid {}", s.pid), message)
                .evidence("pid", s.pid)
                .evidence("blocked_by", s.blocked_by.clone())
                .evidence("wait_seconds", waited.map(num))
                .evidence("wait_event_type", s.wait_event_type.clone())
                .evidence("wait_event", s.wait_event.clone())
                .evidence("query", s.query.clone())
                .next_step(format!(
                    "{see_root}; set lock_timeout on migrations so they give up instead of queueing everyone behind them"
                ))
                .docs(DOCS),
        );
    }

    for root in roots {
        let direct = blocked
            .iter()
            .filter(|s| s.blocked_by.contains(&root))
            .count();
        let total = waiters_behind(root, &blocked);
        let severity = if total as u64 >= th.blocking_critical_sessions {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let session = by_pid.get(&root);
        let idle_in_xact = session.is_some_and(|s| {
            matches!(
                s.state.as_deref(),
                Some("idle in transaction") | Some("idle in transaction (aborted)")
            )
        });
        let described = match session {
            Some(s) => format!(
                "pid {} ({}, {})",
                root,
                who(s),
                s.state.as_deref().unwrap_or("unknown state")
            ),
            None => format!("pid {root}"),
        };
        let (step, sql) = if idle_in_xact || session.is_none() {
            (
                "This session holds locks others wait for; end it if it is stuck, and fix the application so it does not keep transactions open",
                format!("SELECT pg_terminate_backend({root})"),
            )
        } else {
            (
                "This session holds locks others wait for; cancel its query if it can be retried, or wait for it to finish",
                format!("SELECT pg_cancel_backend({root})"),
            )
        };
        out.push(
            Finding::new(
                BLOCKING_RULE,
                severity,
                format!("pid {root}"),
                format!(
                    "{described} blocks {} ({direct} directly)",
                    super::count(total, "session", "sessions")
                ),
            )
            .evidence("pid", root)
            .evidence("blocked_sessions", total as u64)
            .evidence("directly_blocked_sessions", direct as u64)
            .evidence("threshold_critical_sessions", th.blocking_critical_sessions)
            .evidence(
                "xact_age_seconds",
                session.and_then(|s| s.xact_age_seconds).map(num),
            )
            .evidence("query", session.and_then(|s| s.query.clone()))
            .next_step(step)
            .fix(Step::call(sql))
            .docs(DOCS),
        );
    }
    out
}

/// How many blocked sessions wait on `root`, directly or through a chain (cycles counted once).
fn waiters_behind(root: i32, blocked: &[&Session]) -> usize {
    let mut seen: BTreeSet<i32> = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(pid) = frontier.pop() {
        for s in blocked.iter().filter(|s| s.blocked_by.contains(&pid)) {
            if s.pid != root && seen.insert(s.pid) {
                frontier.push(s.pid);
            }
        }
    }
    seen.len()
}
