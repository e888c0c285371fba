//! Settings of single tables and roles on a live server (I/O): the old value of each, read
//! before anything changes and kept in the journal; whether the role may change them; and
//! setting and putting them back on the executor. Every statement names its object through
//! `Ident`/`QualifiedName` and its value as a literal (ALTER takes no bind parameters); each
//! new value is read back. When one fails, the ones already done are put back.

use super::OnFailure;
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::plan::{Plan, Step};
use crate::tune::evidence::{ObjectKind, ObjectSetting};
use crate::tune::objects::{ObjectEntry, ObjectOutcome};

/// The object's own value of `name` now (a storage parameter of the table, or the role's
/// database-independent setting). Errors when the object is gone.
async fn current_value(
    conn: &Conn,
    kind: ObjectKind,
    schema: Option<&str>,
    object: &str,
    name: &str,
) -> Result<Option<String>> {
    let row = match kind {
        ObjectKind::Table => {
            conn.query_opt(
                "reading a table's storage parameters",
                "SELECT coalesce(c.reloptions, '{}')::text[] FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2",
                &[&schema.unwrap_or("public"), &object],
            )
            .await?
        }
        ObjectKind::Role => {
            conn.query_opt(
                "reading a role's settings",
                "SELECT coalesce(rolconfig, '{}')::text[] FROM pg_catalog.pg_roles \
                 WHERE rolname = $1",
                &[&object],
            )
            .await?
        }
    };
    let Some(row) = row else {
        return Err(Error::BadInput(format!(
            "{} {}{object} no longer exists; run pgopt tune again",
            match kind {
                ObjectKind::Table => "table",
                ObjectKind::Role => "role",
            },
            schema.map(|s| format!("{s}.")).unwrap_or_default()
        )));
    };
    let options: Vec<String> = row.get(0);
    Ok(options.iter().find_map(|o| {
        let (k, v) = o.split_once('=')?;
        (k == name).then(|| v.to_string())
    }))
}

/// Refuses, naming what is missing, unless the role may alter every table (owner) and role
/// (superuser or CREATEROLE) in `objects`. Nothing is changed either way.
pub async fn check_privileges(conn: &Conn, objects: &[ObjectSetting]) -> Result<()> {
    let mut missing = Vec::new();
    for o in objects {
        let allowed: bool = match o.kind {
            ObjectKind::Table => conn
                .query_one(
                    "checking table ownership",
                    "SELECT coalesce((SELECT pg_catalog.pg_has_role(current_user, c.relowner, \
                     'USAGE') FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
                     ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2), false)",
                    &[&o.schema.as_deref().unwrap_or("public"), &o.object],
                )
                .await?
                .get(0),
            ObjectKind::Role => conn
                .query_one(
                    "checking CREATEROLE",
                    "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles \
                     WHERE rolname = current_user",
                    &[],
                )
                .await?
                .get(0),
        };
        if !allowed {
            missing.push(match o.kind {
                ObjectKind::Table => format!("{} (only its owner may ALTER it)", o.label()),
                ObjectKind::Role => format!("{} (needs CREATEROLE or a superuser)", o.label()),
            });
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "role {} may not change {}; nothing was changed. Connect as the owner or a superuser, \
         or run the statements of --emit sql by hand",
        conn.user,
        missing.join(", ")
    )))
}

/// The journal entries for `objects`: each with its value now.
pub async fn journal_entries(conn: &Conn, objects: &[ObjectSetting]) -> Result<Vec<ObjectEntry>> {
    let mut entries = Vec::with_capacity(objects.len());
    for o in objects {
        entries.push(ObjectEntry {
            kind: o.kind,
            schema: o.schema.clone(),
            object: o.object.clone(),
            name: o.name.to_string(),
            old: current_value(conn, o.kind, o.schema.as_deref(), &o.object, o.name).await?,
            new: o.value.clone(),
        });
    }
    Ok(entries)
}

/// Sets each entry's new value on the executor ([`super::run`]): one statement at a time
/// under the pgopt advisory lock, each only while the object still has the old value the
/// journal recorded, each read back. When one fails, the ones already set are put back and
/// the error says so.
pub async fn apply(conn: &Conn, entries: &[ObjectEntry]) -> Result<Vec<ObjectOutcome>> {
    let mut plan = Plan::new();
    for e in entries {
        plan.push(Step::set_object(
            e.plan_object(),
            &e.name,
            &e.new,
            e.old.as_deref(),
        ));
    }
    super::run(conn, &plan, None, &executor_options(OnFailure::Undo)).await?;
    verify(conn, entries, false).await
}

/// Puts back the old values (SET or RESET) on the executor, newest first, and reads them
/// back.
pub async fn rollback(conn: &Conn, entries: &[ObjectEntry]) -> Result<Vec<ObjectOutcome>> {
    let mut plan = Plan::new();
    for e in entries.iter().rev() {
        plan.push(Step::restore_object(
            e.plan_object(),
            &e.name,
            e.old.as_deref(),
        ));
    }
    super::run(conn, &plan, None, &executor_options(OnFailure::Stop)).await?;
    verify(conn, entries, true).await
}

fn executor_options(on_failure: OnFailure) -> super::Options {
    super::Options {
        on_failure,
        ..super::Options::default()
    }
}

async fn verify(conn: &Conn, entries: &[ObjectEntry], old: bool) -> Result<Vec<ObjectOutcome>> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let want = if old {
            e.old.clone()
        } else {
            Some(e.new.clone())
        };
        let now = current_value(conn, e.kind, e.schema.as_deref(), &e.object, &e.name).await?;
        out.push(ObjectOutcome {
            object: e.label(),
            name: e.name.clone(),
            verified: now == want,
            value: now,
        });
    }
    Ok(out)
}
