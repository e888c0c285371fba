//! (f) The governance profile: its own settings and a statement_timeout for application roles.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// (f) the governance profile's own settings, and a statement_timeout for the application
/// roles (roles that log in and are neither superusers nor replication roles).
pub(super) fn governance(b: &mut Builder, snap: &Snapshot) {
    for r in snap.roles.iter().flatten() {
        if !r.can_login || r.superuser || r.replication || r.bootstrap {
            continue;
        }
        if r.config.iter().any(|c| c.starts_with("statement_timeout=")) {
            continue;
        }
        b.objects.push(ObjectSetting {
            rule: "governance",
            kind: ObjectKind::Role,
            schema: None,
            object: r.name.clone(),
            name: "statement_timeout",
            value: APP_STATEMENT_TIMEOUT.into(),
            current: None,
            reason: format!(
                "governance profile: application role {} (logs in, not a superuser) has no \
                 statement_timeout: a runaway query is cancelled after {APP_STATEMENT_TIMEOUT} \
                 instead of holding locks and a connection",
                r.name
            ),
            evidence: ev(&[("role", json!(r.name)), ("config", json!(r.config))]),
        });
    }
    for (name, value, reason) in [
        (
            "synchronous_commit",
            "on",
            "a committed decision must survive a crash",
        ),
        (
            "wal_level",
            "replica",
            "WAL for a standby and point-in-time recovery",
        ),
        (
            "max_wal_senders",
            "10",
            "room for standbys and base backups",
        ),
        (
            "idle_in_transaction_session_timeout",
            "60000",
            "end sessions idle in a transaction for 60 s (value in ms)",
        ),
    ] {
        b.set(
            "governance",
            name,
            value.into(),
            format!("governance profile: {reason}"),
            ev(&[("profile", json!("governance"))]),
        );
    }
}
