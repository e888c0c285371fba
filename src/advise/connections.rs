//! Client connections close to max_connections.
//!
//! Available slots are max_connections minus superuser_reserved_connections (and, from
//! PostgreSQL 16, reserved_connections): ordinary roles are refused past that.

use super::{num, pct, Finding, Severity, Thresholds};
use crate::snapshot::Snapshot;

pub const RULE: &str = "connections_near_max";
const DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS";

pub fn check(snap: &Snapshot, th: &Thresholds) -> Vec<Finding> {
    let Some(act) = &snap.activity else {
        return Vec::new();
    };
    let reserved_extra = snap.setting_f64("reserved_connections").unwrap_or(0.0) as i64;
    let available = act.max_connections - act.superuser_reserved_connections - reserved_extra;
    if available <= 0 {
        return Vec::new();
    }
    let ratio = act.total_connections as f64 / available as f64;
    let (severity, limit) = if ratio >= th.connections_critical_ratio {
        (Severity::Critical, th.connections_critical_ratio)
    } else if ratio >= th.connections_warning_ratio {
        (Severity::Warning, th.connections_warning_ratio)
    } else {
        return Vec::new();
    };
    vec![Finding::new(
        RULE,
        severity,
        "server",
        format!(
            "{} client connections use {} of the {} available slots (threshold {})",
            act.total_connections,
            pct(ratio),
            available,
            pct(limit)
        ),
    )
    .evidence("total_connections", act.total_connections)
    .evidence("max_connections", act.max_connections)
    .evidence("superuser_reserved_connections", act.superuser_reserved_connections)
    .evidence("reserved_connections", reserved_extra)
    .evidence("available_connections", available)
    .evidence("ratio", num(ratio))
    .evidence("threshold_ratio", num(limit))
    .next_step(
        "Put a connection pooler (PgBouncer in transaction mode) in front of the server or shrink the applications' pools; raise max_connections only with memory to spare, it needs a restart",
    )
    .docs(DOCS)]
}
