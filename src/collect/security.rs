//! What the security review needs beyond the settings: pg_hba_file_rules and the roles.
//!
//! pg_hba_file_rules is readable by superusers only unless granted (on PostgreSQL 15 and later
//! pg_read_all_settings and pg_monitor do not include it): for other roles its section is
//! recorded as skipped with the grants to make. The roles come from pg_roles, which everyone
//! reads; how each password is stored comes from pg_authid (superusers only), a section of its
//! own (`role_passwords`) so that a report can say it was not checked. Only the kind of the
//! stored password is kept, never the hash.

use std::collections::HashMap;

use super::{get, Outcome};
use crate::advise::security::{
    hba_grant, HBA_SKIPPED_REASON, PASSWORDS_GRANT, PASSWORDS_SKIPPED_REASON,
};
use crate::db::Conn;
use crate::error::Result;
use crate::snapshot::{HbaRule, PasswordKind, Role};

const HBA_PRIVILEGE_SQL: &str = include_str!("../sql/hba_privilege.sql");
const HBA_SQL: &str = include_str!("../sql/hba_rules.sql");
const ROLES_SQL: &str = include_str!("../sql/roles.sql");
const PASSWORDS_SQL: &str = include_str!("../sql/role_passwords.sql");
const AUTHID_PRIVILEGE_SQL: &str = include_str!("../sql/authid_privilege.sql");

pub(crate) async fn collect_hba(conn: &Conn) -> Result<Outcome<Vec<HbaRule>>> {
    const S: &str = "hba_rules";
    let row = conn
        .query_one(
            "checking access to pg_hba_file_rules",
            HBA_PRIVILEGE_SQL,
            &[],
        )
        .await?;
    let allowed: bool = get(&row, S, "allowed")?;
    if !allowed {
        return Ok(Outcome::skipped(HBA_SKIPPED_REASON, hba_grant(&conn.user)));
    }
    conn.query("reading pg_hba_file_rules", HBA_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(HbaRule {
                line_number: get::<Option<i32>>(r, S, "line_number")?.unwrap_or(0),
                conn_type: get::<Option<String>>(r, S, "conn_type")?.unwrap_or_default(),
                databases: get(r, S, "databases")?,
                users: get(r, S, "users")?,
                address: get(r, S, "address")?,
                netmask: get(r, S, "netmask")?,
                auth_method: get(r, S, "auth_method")?,
                error: get(r, S, "error")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Outcome::Collected)
}

pub(crate) async fn collect_roles(conn: &Conn) -> Result<Outcome<Vec<Role>>> {
    const S: &str = "roles";
    let rows = conn.query("reading roles", ROLES_SQL, &[]).await?;
    rows.iter()
        .map(|r| {
            Ok(Role {
                name: get(r, S, "name")?,
                superuser: get(r, S, "superuser")?,
                can_login: get(r, S, "can_login")?,
                valid_until: get(r, S, "valid_until")?,
                bootstrap: get(r, S, "bootstrap")?,
                password: None,
                config: get(r, S, "config")?,
                replication: get(r, S, "replication")?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Outcome::Collected)
}

/// How each role's password is stored, by role name; skipped when pg_authid is not readable.
pub(crate) async fn collect_passwords(
    conn: &Conn,
) -> Result<Outcome<HashMap<String, PasswordKind>>> {
    const S: &str = "role_passwords";
    let row = conn
        .query_one("checking access to pg_authid", AUTHID_PRIVILEGE_SQL, &[])
        .await?;
    let allowed: bool = get(&row, S, "allowed")?;
    if !allowed {
        return Ok(Outcome::skipped(PASSWORDS_SKIPPED_REASON, PASSWORDS_GRANT));
    }
    conn.query("reading how role passwords are stored", PASSWORDS_SQL, &[])
        .await?
        .iter()
        .map(|r| {
            let name: String = get(r, S, "name")?;
            let kind: String = get(r, S, "password_kind")?;
            Ok((name, password_kind(&kind)))
        })
        .collect::<Result<_>>()
        .map(Outcome::Collected)
}

fn password_kind(kind: &str) -> PasswordKind {
    match kind {
        "missing" => PasswordKind::Missing,
        "md5" => PasswordKind::Md5,
        "scram_sha256" => PasswordKind::ScramSha256,
        _ => PasswordKind::Other,
    }
}
