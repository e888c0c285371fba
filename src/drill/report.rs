//! What a drill found, as data ([`DrillReport`], serde) and as a table for people. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Mode;

/// The outcome of one `pgopt drill failover` run.
///
/// `*_after_kill_s` count from the event of the mode: the kill (`kill`), the start of the
/// restart (`restart`) or the cut (`partition`); the field names keep `kill` because that is
/// the drill's main case and what tools read. `null` means it did not happen within the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    /// kill, restart or partition.
    pub mode: Mode,
    /// What happened to the primary at the event: "killed (immediate)", "restarted (fast)",
    /// "network cut (proxy stops forwarding)".
    pub event: String,
    /// Client tasks.
    pub clients: usize,
    /// Whether the drill started its own (embedded) primary and standby.
    pub embedded: bool,
    /// The standby's sync_state on the primary before the load (`sync` for a synchronous
    /// standby).
    pub standby_sync_state: Option<String>,
    /// Seconds of load before the event.
    pub warmup_s: f64,
    /// Seconds of load in all.
    pub load_s: f64,
    /// Seconds from the event to the start of the promotion (none: no promotion).
    pub promote_after_s: Option<f64>,
    /// How long `pg_ctl promote -w` took.
    pub promotion_took_s: Option<f64>,
    /// INSERTs that returned Ok to a client.
    pub acknowledged_writes: u64,
    /// Acknowledged ids not on the new primary after the run.
    pub acknowledged_writes_lost: u64,
    /// Up to 20 of the lost ids (client in the high 32 bits, sequence in the low).
    pub lost_ids_sample: Vec<i64>,
    /// Reads (of an acknowledged id) that came back.
    pub reads: u64,
    /// Reads of an acknowledged id that found no row.
    pub reads_missing: u64,
    /// From the event to the first successful write started after it.
    pub writes_resumed_after_kill_s: Option<f64>,
    /// From the start of the promotion to the first successful write after it.
    pub writes_resumed_after_promote_s: Option<f64>,
    /// From the event to the first successful read started after it.
    pub reads_resumed_after_kill_s: Option<f64>,
    /// From the start of the promotion to the first successful read after it.
    pub reads_resumed_after_promote_s: Option<f64>,
    /// Errors the clients saw from the event on, by SQLSTATE; errors without one under
    /// `connection_lost`, `timeout` (a client-side bound ran out), `no_primary` (no host
    /// answered as a primary within the pool's wait), `query_no_sqlstate`, `other`.
    pub errors_by_sqlstate: BTreeMap<String, u64>,
    /// Errors before the event (a healthy set-up has none).
    pub errors_before_event: u64,
    /// Failovers the pool noticed (connections dropped and the primary looked for again).
    pub pool_failovers: u64,
    /// host:port of the server the acknowledged ids were checked on (the new primary).
    pub verified_on: String,
}

impl DrillReport {
    /// True when no acknowledged write was lost and writes came back after the event.
    pub fn passed(&self) -> bool {
        self.acknowledged_writes_lost == 0 && self.writes_resumed_after_kill_s.is_some()
    }
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "did not happen".to_string(), |s| format!("{s:.2} s"))
}

/// The report as a table (comfy-table) with the errors below it.
pub fn render_table(r: &DrillReport) -> String {
    let mut t = crate::report::term::table();
    t.set_header(vec!["failover drill", ""]);
    let mut rows: Vec<(&str, String)> = vec![
        ("mode", format!("{} — primary {}", r.mode.as_str(), r.event)),
        (
            "servers",
            if r.embedded {
                "embedded primary + synchronous standby".to_string()
            } else {
                "given".to_string()
            },
        ),
        (
            "standby sync_state",
            r.standby_sync_state
                .clone()
                .unwrap_or_else(|| "unknown".into()),
        ),
        ("clients", r.clients.to_string()),
        (
            "load",
            format!("{:.1} s ({:.1} s before the event)", r.load_s, r.warmup_s),
        ),
    ];
    if let Some(p) = r.promote_after_s {
        let took = r
            .promotion_took_s
            .map(|t| format!(", took {t:.2} s"))
            .unwrap_or_default();
        rows.push(("promotion", format!("{p:.1} s after the event{took}")));
    }
    rows.extend([
        ("acknowledged writes", r.acknowledged_writes.to_string()),
        (
            "acknowledged writes lost",
            format!(
                "{} (checked on {})",
                r.acknowledged_writes_lost, r.verified_on
            ),
        ),
        (
            "reads (missing)",
            format!("{} ({})", r.reads, r.reads_missing),
        ),
        (
            "writes resumed after the event",
            secs(r.writes_resumed_after_kill_s),
        ),
        (
            "reads resumed after the event",
            secs(r.reads_resumed_after_kill_s),
        ),
    ]);
    if r.promote_after_s.is_some() {
        rows.push((
            "writes resumed after promotion",
            secs(r.writes_resumed_after_promote_s),
        ));
        rows.push((
            "reads resumed after promotion",
            secs(r.reads_resumed_after_promote_s),
        ));
    }
    rows.push(("pool failovers", r.pool_failovers.to_string()));
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    let mut out = t.to_string();
    out.push('\n');
    if r.errors_by_sqlstate.is_empty() {
        out.push_str("No client saw an error after the event.\n");
    } else {
        let mut e = crate::report::term::table();
        e.set_header(vec!["errors after the event", "count"]);
        for (code, n) in &r.errors_by_sqlstate {
            e.add_row(vec![code.clone(), n.to_string()]);
        }
        out.push_str(&e.to_string());
        out.push('\n');
    }
    if r.errors_before_event > 0 {
        out.push_str(&format!(
            "{} errors before the event: the set-up was not healthy.\n",
            r.errors_before_event
        ));
    }
    if r.acknowledged_writes_lost > 0 {
        out.push_str(&format!(
            "LOST: {} acknowledged writes are not on the new primary (ids {:?}…): was the \
             standby synchronous (synchronous_standby_names, synchronous_commit = on)?\n",
            r.acknowledged_writes_lost, r.lost_ids_sample
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> DrillReport {
        DrillReport {
            mode: Mode::Kill,
            event: "killed (immediate)".into(),
            clients: 4,
            embedded: true,
            standby_sync_state: Some("sync".into()),
            warmup_s: 2.0,
            load_s: 10.0,
            promote_after_s: Some(2.0),
            promotion_took_s: Some(0.3),
            acknowledged_writes: 1000,
            acknowledged_writes_lost: 0,
            lost_ids_sample: vec![],
            reads: 250,
            reads_missing: 0,
            writes_resumed_after_kill_s: Some(2.6),
            writes_resumed_after_promote_s: Some(0.6),
            reads_resumed_after_kill_s: Some(2.7),
            reads_resumed_after_promote_s: Some(0.7),
            errors_by_sqlstate: BTreeMap::from([("57P01".into(), 4), ("no_primary".into(), 8)]),
            errors_before_event: 0,
            pool_failovers: 4,
            verified_on: "127.0.0.1:5433".into(),
        }
    }

    #[test]
    fn the_json_has_the_fields_the_issue_names() {
        let v = serde_json::to_value(report()).unwrap();
        for key in [
            "acknowledged_writes",
            "acknowledged_writes_lost",
            "writes_resumed_after_kill_s",
            "writes_resumed_after_promote_s",
            "errors_by_sqlstate",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert_eq!(v["mode"], "kill");
        assert_eq!(v["errors_by_sqlstate"]["57P01"], 4);
    }

    #[test]
    fn the_table_names_losses_and_errors() {
        let text = render_table(&report());
        assert!(text.contains("acknowledged writes lost"), "{text}");
        assert!(text.contains("57P01"), "{text}");
        assert!(!text.contains("LOST"), "{text}");
        let mut lost = report();
        lost.acknowledged_writes_lost = 2;
        lost.lost_ids_sample = vec![4294967297, 4294967298];
        assert!(!lost.passed());
        assert!(render_table(&lost).contains("LOST: 2"));
    }
}
