//! The security review: how clients get in (pg_hba.conf, listen_addresses, ssl) and who they
//! get in as (superusers, passwords and how they are stored).
//!
//! Scoped so that a default local-only server stays quiet: trust on unix-socket lines and on
//! loopback host lines (127.0.0.0/8, ::1) is what initdb writes and only this machine's users
//! reach it; the bootstrap superuser is not a finding; ssl off is only reported when the
//! server listens beyond loopback. Rules that need a section which was not collected (hba
//! rules, roles, password kinds) say nothing rather than guess.

use super::{Finding, Severity, Thresholds};
use crate::ident::{quote_literal, Ident};
use crate::plan::{Lock, Step};
use crate::snapshot::{HbaRule, PasswordKind, Snapshot};

/// Why the hba section is skipped and what grants it, for people (also used by reports of
/// snapshots where the section is missing).
pub(crate) const HBA_SKIPPED_REASON: &str = "pg_hba_file_rules is readable by superusers only (pg_monitor and pg_read_all_settings do not include it)";
/// The grants that let `role` read pg_hba_file_rules (both: the view calls the function with
/// the reader's privileges).
pub(crate) fn hba_grant(role: &str) -> String {
    let role = Ident::new(role);
    format!(
        "connect as a superuser, or have a superuser run GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {role}; GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {role};"
    )
}
/// Why the password kinds are skipped and what allows them.
pub(crate) const PASSWORDS_SKIPPED_REASON: &str =
    "how passwords are stored is in pg_authid, readable by superusers only";
pub(crate) const PASSWORDS_GRANT: &str = "run pgopt as a superuser for this part (granting SELECT on pg_authid would expose the password hashes to the role: do not)";

pub const SSL_OFF_RULE: &str = "ssl_off";
pub const PASSWORD_ENCRYPTION_RULE: &str = "password_encryption_weak";
pub const HBA_TRUST_RULE: &str = "hba_trust";
pub const HBA_WEAK_METHOD_RULE: &str = "hba_weak_password_method";
pub const HBA_OPEN_RULE: &str = "hba_open_to_all";
pub const LISTEN_ALL_RULE: &str = "listen_all_addresses";
pub const SUPERUSER_RULE: &str = "superuser_roles";
pub const NO_PASSWORD_RULE: &str = "login_without_password";
pub const MD5_PASSWORDS_RULE: &str = "md5_passwords";

const HBA_DOCS: &str = "https://www.postgresql.org/docs/current/auth-pg-hba-conf.html";
const SSL_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-SSL";
const LISTEN_DOCS: &str =
    "https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-LISTEN-ADDRESSES";
const PASSWORD_DOCS: &str = "https://www.postgresql.org/docs/current/auth-password.html";
const ROLE_DOCS: &str = "https://www.postgresql.org/docs/current/role-attributes.html";

pub fn check(snap: &Snapshot, _th: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    ssl_off(snap, &mut out);
    password_encryption(snap, &mut out);
    listen_all(snap, &mut out);
    hba(snap, &mut out);
    superusers(snap, &mut out);
    login_without_password(snap, &mut out);
    md5_passwords(snap, &mut out);
    out
}

// ---- listen_addresses ----

/// The entries of listen_addresses, trimmed; None when the setting was not collected.
fn listen_entries(snap: &Snapshot) -> Option<Vec<String>> {
    let s = snap.setting("listen_addresses")?;
    Some(
        s.setting
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
    )
}

fn is_loopback_entry(entry: &str) -> bool {
    entry == "localhost"
        || entry
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_wildcard_entry(entry: &str) -> bool {
    matches!(entry, "*" | "0.0.0.0" | "::")
}

/// Whether the server accepts TCP connections from beyond this machine (None: unknown).
fn listens_beyond_loopback(snap: &Snapshot) -> Option<bool> {
    listen_entries(snap).map(|entries| entries.iter().any(|e| !is_loopback_entry(e)))
}

fn ssl_off(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(ssl) = snap.setting("ssl") else {
        return;
    };
    if ssl.setting != "off" || listens_beyond_loopback(snap) != Some(true) {
        return;
    }
    let listen = snap
        .setting("listen_addresses")
        .map(|s| s.setting.clone())
        .unwrap_or_default();
    out.push(
        Finding::new(
            SSL_OFF_RULE,
            Severity::Warning,
            "server",
            format!(
                "ssl is off while the server listens on {listen:?}: passwords and data cross the network in clear text"
            ),
        )
        .evidence("ssl", ssl.setting.clone())
        .evidence("listen_addresses", listen)
        .next_step(
            "Install a server certificate and key (ssl_cert_file, ssl_key_file), turn ssl on and reload; then make remote pg_hba.conf lines hostssl so clients cannot fall back to clear text",
        )
        .fixes(set_and_reload("ALTER SYSTEM SET ssl = 'on'", None))
        .docs(SSL_DOCS),
    );
}

fn password_encryption(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(s) = snap.setting("password_encryption") else {
        return;
    };
    if s.setting == "scram-sha-256" {
        return;
    }
    out.push(
        Finding::new(
            PASSWORD_ENCRYPTION_RULE,
            Severity::Warning,
            "server",
            format!(
                "password_encryption is {:?}: new passwords are stored as MD5 hashes, which are deprecated and can be replayed by anyone who reads them",
                s.setting
            ),
        )
        .evidence("password_encryption", s.setting.clone())
        .evidence("recommended", "scram-sha-256")
        .next_step(
            "Store new passwords as SCRAM-SHA-256 (clients need libpq 10 or newer), then set each role's password again so it is re-hashed",
        )
        .fixes(set_and_reload("ALTER SYSTEM SET password_encryption = 'scram-sha-256'", None))
        .docs(PASSWORD_DOCS),
    );
}

fn listen_all(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(entries) = listen_entries(snap) else {
        return;
    };
    if !entries.iter().any(|e| is_wildcard_entry(e)) {
        return;
    }
    let open_lines: Vec<i32> = snap
        .hba_rules
        .iter()
        .flatten()
        .filter(|r| r.is_host() && r.is_open_to_all() && !rejects(r))
        .map(|r| r.line_number)
        .collect();
    // Listening everywhere is common behind a firewall; it matters most when pg_hba.conf
    // also admits every address.
    let severity = if open_lines.is_empty() {
        Severity::Info
    } else {
        Severity::Warning
    };
    out.push(
        Finding::new(
            LISTEN_ALL_RULE,
            severity,
            "server",
            format!(
                "listen_addresses is {:?}: the server accepts TCP connections on every network interface{}",
                entries.join(","),
                if open_lines.is_empty() {
                    String::new()
                } else {
                    format!(" and pg_hba.conf lines {open_lines:?} admit every address")
                }
            ),
        )
        .evidence("listen_addresses", entries.join(","))
        .evidence("hba_lines_open_to_all", open_lines)
        .next_step(
            "List only the interfaces clients use (e.g. 'localhost,10.0.0.5'); listen_addresses needs a restart",
        )
        .fix(alter_system("ALTER SYSTEM SET listen_addresses = 'localhost'").with_note("add the interfaces clients use; restart"))
        .docs(LISTEN_DOCS),
    );
}

// ---- pg_hba.conf ----

fn rejects(r: &HbaRule) -> bool {
    r.auth_method.as_deref() == Some("reject")
}

fn describe(r: &HbaRule) -> String {
    let mut parts = vec![
        r.conn_type.clone(),
        r.databases.join(","),
        r.users.join(","),
    ];
    if let Some(a) = &r.address {
        parts.push(match &r.netmask {
            Some(m) => format!("{a} {m}"),
            None => a.clone(),
        });
    }
    parts.push(r.auth_method.clone().unwrap_or_default());
    parts.join(" ")
}

fn hba_finding(rule: &str, severity: Severity, r: &HbaRule, message: String) -> Finding {
    Finding::new(
        rule,
        severity,
        format!("pg_hba.conf line {}", r.line_number),
        message,
    )
    .evidence("line_number", r.line_number)
    .evidence("type", r.conn_type.clone())
    .evidence("databases", r.databases.clone())
    .evidence("users", r.users.clone())
    .evidence("address", r.address.clone())
    .evidence("netmask", r.netmask.clone())
    .evidence("auth_method", r.auth_method.clone())
    .docs(HBA_DOCS)
}

fn hba(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(rules) = &snap.hba_rules else {
        return;
    };
    for r in rules.iter().filter(|r| r.error.is_none()) {
        let method = r.auth_method.as_deref().unwrap_or("");
        let remote = r.is_host() && !r.is_loopback_only();
        if method == "trust" && remote {
            out.push(
                hba_finding(
                    HBA_TRUST_RULE,
                    Severity::Critical,
                    r,
                    format!(
                        "pg_hba.conf line {} ({}) lets anyone who reaches the server from {} connect as any listed role without a password",
                        r.line_number,
                        describe(r),
                        r.address.as_deref().unwrap_or("the network")
                    ),
                )
                .next_step(
                    "Change the method of this line to scram-sha-256 (after giving the roles SCRAM passwords) or cert, narrow the address to the clients that need it, then reload",
                )
                .fix(Step::call("SELECT pg_reload_conf()").with_note("after editing pg_hba.conf")),
            );
        }
        if matches!(method, "md5" | "password") {
            let why = if method == "password" {
                "sends the password in clear text"
            } else {
                "accepts MD5 password hashes, deprecated and replayable"
            };
            out.push(
                hba_finding(
                    HBA_WEAK_METHOD_RULE,
                    Severity::Warning,
                    r,
                    format!(
                        "pg_hba.conf line {} ({}) uses {method}, which {why}",
                        r.line_number,
                        describe(r)
                    ),
                )
                .next_step(
                    "Set password_encryption = 'scram-sha-256', set the passwords of the roles using this line again, then change the method to scram-sha-256 and reload",
                )
                .fixes(set_and_reload("ALTER SYSTEM SET password_encryption = 'scram-sha-256'", Some("then re-set passwords and edit pg_hba.conf"))),
            );
        }
        if r.is_host() && r.is_open_to_all() && !rejects(r) {
            let severity = if method == "trust" {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(
                hba_finding(
                    HBA_OPEN_RULE,
                    severity,
                    r,
                    format!(
                        "pg_hba.conf line {} ({}) admits connections from every address{}",
                        r.line_number,
                        describe(r),
                        if method == "trust" {
                            ", without a password"
                        } else {
                            ""
                        }
                    ),
                )
                .next_step(
                    "Replace the address with the networks the clients are in (e.g. 10.0.1.0/24), use hostssl, then reload",
                )
                .fix(Step::call("SELECT pg_reload_conf()").with_note("after editing pg_hba.conf")),
            );
        }
    }
}

/// Whether some TCP line beyond loopback authenticates by password.
fn remote_password_auth(snap: &Snapshot) -> bool {
    snap.hba_rules.iter().flatten().any(|r| {
        r.error.is_none()
            && r.is_host()
            && !r.is_loopback_only()
            && matches!(
                r.auth_method.as_deref(),
                Some("md5" | "password" | "scram-sha-256")
            )
    })
}

// ---- roles ----

fn superusers(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(roles) = &snap.roles else {
        return;
    };
    let extra: Vec<&str> = roles
        .iter()
        .filter(|r| r.superuser && !r.bootstrap)
        .map(|r| r.name.as_str())
        .collect();
    if extra.is_empty() {
        return;
    }
    let sql: Vec<Step> = extra
        .iter()
        .map(|n| Step::call(format!("ALTER ROLE {} NOSUPERUSER", Ident::new(*n))))
        .collect();
    out.push(
        Finding::new(
            SUPERUSER_RULE,
            Severity::Warning,
            "server",
            format!(
                "{} besides the bootstrap superuser {} and {} every permission check: {}",
                super::count(extra.len(), "role", "roles"),
                if extra.len() == 1 { "is a superuser" } else { "are superusers" },
                if extra.len() == 1 { "bypasses" } else { "bypass" },
                extra.join(", ")
            ),
        )
        .evidence("superusers", extra.clone())
        .evidence("count", extra.len())
        .next_step(
            "Keep one superuser for administration; give the others only what they need (pg_monitor, pg_read_all_data, CREATEROLE, ownership of their databases)",
        )
        .fixes(sql)
        .docs(ROLE_DOCS),
    );
}

fn login_without_password(snap: &Snapshot, out: &mut Vec<Finding>) {
    let Some(roles) = &snap.roles else {
        return;
    };
    // Without password authentication in pg_hba.conf a role logs in by trust, peer or a
    // certificate, and a missing password is by design.
    if !remote_password_auth(snap) {
        return;
    }
    let names: Vec<&str> = roles
        .iter()
        .filter(|r| r.can_login && r.password == Some(PasswordKind::Missing))
        .map(|r| r.name.as_str())
        .collect();
    if names.is_empty() {
        return;
    }
    let sql: Vec<Step> = names
        .iter()
        .map(|n| {
            Step::call(format!(
                "ALTER ROLE {} PASSWORD {}",
                Ident::new(*n),
                quote_literal("a new strong password")
            ))
            .with_note("or NOLOGIN if nobody logs in as it")
        })
        .collect();
    out.push(
        Finding::new(
            NO_PASSWORD_RULE,
            Severity::Warning,
            "server",
            format!(
                "{} no password while pg_hba.conf asks remote clients for one: {}",
                super::count(names.len(), "login role has", "login roles have"),
                names.join(", ")
            ),
        )
        .evidence("roles", names.clone())
        .evidence("count", names.len())
        .next_step(
            "Give each role a password (psql's \\password sends it hashed), or make it NOLOGIN; check that no trust or peer line is how it gets in",
        )
        .fixes(sql)
        .docs(PASSWORD_DOCS),
    );
}

fn md5_passwords(snap: &Snapshot, out: &mut Vec<Finding>) {
    for r in snap.roles.iter().flatten() {
        if r.password != Some(PasswordKind::Md5) {
            continue;
        }
        let name = Ident::new(r.name.as_str());
        out.push(
            Finding::new(
                MD5_PASSWORDS_RULE,
                Severity::Warning,
                format!("role {}", r.name),
                format!(
                    "role {} has its password stored as an MD5 hash: deprecated, and the hash alone is enough to log in",
                    r.name
                ),
            )
            .evidence("role", r.name.clone())
            .evidence("password_kind", "md5")
            .evidence("can_login", r.can_login)
            .next_step(
                "With password_encryption = 'scram-sha-256', set the password again (psql: \\password ROLE) so it is stored as SCRAM",
            )
            .fixes(vec![
                Step::call("SET password_encryption = 'scram-sha-256'"),
                Step::call(format!(
                    "ALTER ROLE {name} PASSWORD {}",
                    quote_literal("the same or a new password")
                )),
            ])
            .docs(PASSWORD_DOCS),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_entries_are_classified() {
        assert!(is_loopback_entry("localhost"));
        assert!(is_loopback_entry("127.0.0.1"));
        assert!(is_loopback_entry("::1"));
        assert!(!is_loopback_entry("10.0.0.5"));
        assert!(!is_loopback_entry("*"));
        assert!(is_wildcard_entry("*") && is_wildcard_entry("0.0.0.0") && is_wildcard_entry("::"));
    }
}

// ---- what the review read ----

/// One part of the security review and whether its data was read. Nothing is called sound
/// unless it was read: a part not read is reported as not checked, with what would allow it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewPart {
    /// What the part covers, for people: `pg_hba.conf rules`.
    pub part: &'static str,
    pub checked: bool,
    /// When not checked: why.
    pub reason: Option<String>,
    /// When not checked: the grant or connection that would allow it.
    pub next_step: Option<String>,
}

/// The parts of the security review and whether each was read, in a fixed order.
pub fn review_coverage(snap: &Snapshot) -> Vec<ReviewPart> {
    let section = |name: &str, reason: &str, step: String| {
        let s = snap.section(name);
        (
            s.and_then(|s| s.reason.clone())
                .unwrap_or_else(|| reason.to_string()),
            s.and_then(|s| s.next_step.clone()).unwrap_or(step),
        )
    };
    let part = |part, checked: bool, why: (String, String)| ReviewPart {
        part,
        checked,
        reason: (!checked).then(|| why.0.clone()),
        next_step: (!checked).then_some(why.1),
    };
    let settings_read = ["ssl", "password_encryption", "listen_addresses"]
        .iter()
        .all(|n| snap.setting(n).is_some());
    // Snapshots from before the role_passwords section: read when some kind is known.
    let passwords_read = match snap.section("role_passwords") {
        Some(s) => s.state == crate::snapshot::SectionState::Collected,
        None => snap
            .roles
            .as_ref()
            .is_some_and(|r| r.iter().any(|r| r.password.is_some())),
    };
    vec![
        part(
            "ssl, password_encryption and listen_addresses",
            settings_read,
            (
                "the settings were not collected".to_string(),
                "check the settings section of the snapshot".to_string(),
            ),
        ),
        part(
            "pg_hba.conf rules",
            snap.hba_rules.is_some(),
            section(
                "hba_rules",
                HBA_SKIPPED_REASON,
                hba_grant(&snap.target.user),
            ),
        ),
        part(
            "roles (superusers, logins without a password)",
            snap.roles.is_some(),
            section(
                "roles",
                "pg_roles was not read",
                "check the roles section of the snapshot".to_string(),
            ),
        ),
        part(
            "how role passwords are stored (MD5 or SCRAM)",
            passwords_read,
            section(
                "role_passwords",
                PASSWORDS_SKIPPED_REASON,
                PASSWORDS_GRANT.to_string(),
            ),
        ),
    ]
}

/// The security review's closing lines: what was read and found sound (only when nothing was
/// found in it), and one `NOT CHECKED` line per part not read, with what would allow it.
pub fn review_coverage_text(parts: &[ReviewPart], no_findings: bool) -> String {
    let mut out = String::new();
    let checked: Vec<&str> = parts.iter().filter(|p| p.checked).map(|p| p.part).collect();
    if no_findings {
        if checked.is_empty() {
            out.push_str(
                "Nothing was checked: none of the security review's data could be read.\n",
            );
        } else {
            out.push_str(&format!(
                "Nothing to report in what was read: {}.\n",
                checked.join("; ")
            ));
        }
    }
    for p in parts.iter().filter(|p| !p.checked) {
        out.push_str(&format!(
            "NOT CHECKED: {}: {}. To check it: {}\n",
            p.part,
            p.reason.as_deref().unwrap_or("not collected"),
            p.next_step.as_deref().unwrap_or("")
        ));
    }
    out
}

/// An ALTER SYSTEM statement as written for people (the name as PostgreSQL spells it).
fn alter_system(sql: &str) -> Step {
    Step::sql(sql, Lock::None, false)
}

/// ALTER SYSTEM, then pg_reload_conf() (with `note` after it).
fn set_and_reload(sql: &str, note: Option<&str>) -> Vec<Step> {
    let reload = Step::call("SELECT pg_reload_conf()");
    vec![
        alter_system(sql),
        match note {
            Some(n) => reload.with_note(n),
            None => reload,
        },
    ]
}
