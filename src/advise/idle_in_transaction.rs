//! Sessions idle in transaction: they keep their locks, and their XID or snapshot when they
//! have one. Whether that holds back vacuum is [`Horizon`]'s call, not a guess from the state.

use super::horizon::Horizon;
use super::{duration, num, Finding, Severity, Thresholds};
use crate::plan::Step;
use crate::snapshot::{Session, Snapshot};

pub const RULE: &str = "idle_in_transaction";
const DOCS: &str = "https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT";

pub(crate) fn is_idle_in_transaction(s: &Session) -> bool {
    matches!(
        s.state.as_deref(),
        Some("idle in transaction") | Some("idle in transaction (aborted)")
    )
}

/// The severity this rule gives a session, if any (shared with the long-transaction rule so
/// that one session is not reported twice).
pub(crate) fn severity_of(s: &Session, th: &Thresholds) -> Option<Severity> {
    if !is_idle_in_transaction(s) {
        return None;
    }
    let age = s.state_age_seconds?;
    if age >= th.idle_in_transaction_critical_seconds {
        Some(Severity::Critical)
    } else if age >= th.idle_in_transaction_warning_seconds {
        Some(Severity::Warning)
    } else {
        None
    }
}

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(act) = &snap.activity else {
        return Vec::new();
    };
    let horizon = Horizon::of(snap);
    act.sessions
        .iter()
        .filter_map(|s| {
            let severity = severity_of(s, th)?;
            let age = s.state_age_seconds?;
            let limit = if severity == Severity::Critical {
                th.idle_in_transaction_critical_seconds
            } else {
                th.idle_in_transaction_warning_seconds
            };
            let state = s.state.as_deref().unwrap_or_default();
            let (vacuum, role) = super::long_running::horizon_note(&horizon, s.pid);
            Some(
                Finding::new(
                    RULE,
                    severity,
                    format!("pid {}", s.pid),
                    format!(
                        "session pid {} ({}) has been {} for {} (threshold {}); {vacuum}",
                        s.pid,
                        super::long_running::who(s),
                        state,
                        duration(age),
                        duration(limit)
                    ),
                )
                .evidence("horizon", role)
                .evidence("pid", s.pid)
                .evidence("state", state)
                .evidence("state_age_seconds", num(age))
                .evidence("threshold_seconds", num(limit))
                .evidence("xact_age_seconds", s.xact_age_seconds.map(num))
                .evidence("backend_xmin_age", s.backend_xmin_age)
                .evidence("backend_xid_age", s.backend_xid_age)
                .evidence("last_query", s.query.clone())
                .next_step(
                    "Fix the application so it commits or rolls back promptly, and set idle_in_transaction_session_timeout (e.g. ALTER ROLE ... SET idle_in_transaction_session_timeout = '5min'); end this session if it is stuck",
                )
                .fix(Step::call(format!("SELECT pg_terminate_backend({})", s.pid)))
                .docs(DOCS),
            )
        })
        .collect()
}
