//! (b) Connections near max_connections, or far fewer used: a note about a pooler.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (b) connections near the server's max_connections, or max_connections far above what is
/// used → a note (pooler), no change.
pub(super) fn connections(b: &mut Builder, snap: &Snapshot, th: &Thresholds) {
    let Some(observed) = snap.activity.as_ref().map(|a| a.total_connections) else {
        return;
    };
    let Some(max) = b.get("max_connections").and_then(|v| v.parse::<i64>().ok()) else {
        return;
    };
    // Near the server's own limit now: more connections will be refused.
    let server_max = snap.activity.as_ref().map_or(0, |a| a.max_connections);
    let reserved = snap
        .activity
        .as_ref()
        .map_or(0, |a| a.superuser_reserved_connections);
    if server_max > 0
        && observed as f64 >= th.tune_near_max_connections_ratio * (server_max - reserved) as f64
    {
        b.out.notes.push(format!(
            "{} of max_connections {server_max} ({reserved} reserved for superusers) were open \
             when the snapshot was taken: put a pooler (PgBouncer in transaction mode) in front \
             rather than raising max_connections; every connection is a process with its own \
             work_mem, and the work_mem budget here is planned for {}",
            count(observed, "connection", "connections"),
            count(
                observed.max(th.tune_connection_floor as i64),
                "connection",
                "connections"
            )
        ));
        return;
    }
    if max as f64 >= th.tune_max_connections_unused_factor * observed.max(1) as f64 {
        // One momentary count, not a peak: say so.
        b.out.notes.push(format!(
            "max_connections {max} is {}x the {} open when the snapshot was taken (a single \
             count, not a peak); the work_mem budget is planned for {} x 2; if that count is \
             typical, consider a lower max_connections or a pooler (PgBouncer)",
            max / observed.max(1),
            count(observed, "connection", "connections"),
            count(
                observed.max(th.tune_connection_floor as i64),
                "connection",
                "connections"
            )
        ));
    }
}
