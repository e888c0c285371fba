//! (f) The governance profile: its own settings and a statement_timeout for application roles.
//!
//! A rule of `--method pgopt` (see [`super`]): pure, over the snapshot; its thresholds are
//! fields of [`Thresholds`].

use super::*;

/// Whether a `name=value` list sets statement_timeout.
fn sets_timeout(config: &[String]) -> bool {
    config.iter().any(|c| c.starts_with("statement_timeout="))
}

/// Whether `role` already gets a statement_timeout in the connected database from
/// pg_db_role_setting: `ALTER ROLE role IN DATABASE db SET ...` or `ALTER DATABASE db SET ...`
/// (`ALTER ROLE role SET ...` is the role's own config, read from pg_roles).
fn timeout_in_database(snap: &Snapshot, role: &str) -> bool {
    let db = snap.target.database.as_str();
    snap.role_settings.iter().flatten().any(|s| {
        s.database.as_deref() == Some(db)
            && s.role.as_deref().is_none_or(|r| r == role)
            && sets_timeout(&s.config)
    })
}

/// (f) the governance profile's own settings, and a statement_timeout for the application
/// roles (roles that log in and are neither superusers nor replication roles) that have none,
/// neither their own nor in the connected database.
pub(super) fn governance(b: &mut Builder, snap: &Snapshot) {
    for r in snap.roles.iter().flatten() {
        if !r.can_login || r.superuser || r.replication || r.bootstrap {
            continue;
        }
        if sets_timeout(&r.config) || timeout_in_database(snap, &r.name) {
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
