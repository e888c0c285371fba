//! Applying settings to a live server (I/O): what `pgopt tune --apply` reads and checks
//! before it hands its plan to the executor ([`crate::apply::run`]), and what its rollback
//! reads to show the restored values.
//!
//! The role's privileges and whether postgresql.auto.conf can be read are checked before any
//! change and before the journal; then each setting is one ALTER SYSTEM step of a
//! [`crate::plan::Plan`] (precondition: the value read now; verification: pg_settings value or
//! pending_restart; undo: the old postgresql.auto.conf value, or RESET), with the per-object
//! settings after them, run and journaled (version 2) by [`crate::apply::run`]. When the
//! server rejects a value, what was already done is rolled back. `--rollback` replays the
//! journal through [`crate::apply::rollback`]; the version 1 journal
//! ([`super::journal::JournalV1`]) is only converted.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::StepState;
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;
use crate::tune::compare::{same_value, ServerSetting};
use crate::tune::objects::{ObjectEntry, ObjectOutcome};

/// How long to wait for a reload to reach this session before reporting a value unverified.
const VERIFY_WITHIN: Duration = Duration::from_secs(10);
/// pg_file_settings' error for a postmaster setting changed in the file: it waits for a restart.
const WAITS_FOR_RESTART: &str = "setting could not be applied";

const SETTINGS_SQL: &str = "SELECT name, setting, unit, vartype, context, source, sourcefile, \
     min_val, max_val, enumvals, pending_restart FROM pg_settings ORDER BY name";

/// Reads pg_settings.
pub async fn read_settings(conn: &Conn) -> Result<Vec<ServerSetting>> {
    let rows = conn.query("reading pg_settings", SETTINGS_SQL, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| ServerSetting {
            name: r.get(0),
            setting: r.get(1),
            unit: r.get(2),
            vartype: r.get(3),
            context: r.get(4),
            source: r.get(5),
            sourcefile: r.get(6),
            min_val: r.get(7),
            max_val: r.get(8),
            enumvals: r.get(9),
            pending_restart: r.get(10),
        })
        .collect())
}

/// server_version_num, e.g. 150008.
pub async fn server_version_num(conn: &Conn) -> Result<i32> {
    let row = conn
        .query_one(
            "reading server_version_num",
            "SELECT current_setting('server_version_num')::int",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The server's data directory; None when this role may not see it (pg_settings hides it
/// without superuser or pg_read_all_settings).
pub async fn data_directory(conn: &Conn) -> Result<Option<String>> {
    let row = conn
        .query_opt(
            "reading data_directory",
            "SELECT setting FROM pg_settings WHERE name = 'data_directory'",
            &[],
        )
        .await?;
    Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
}

/// Refuses, naming the missing grant, unless the role may ALTER SYSTEM every one of `names`.
pub async fn check_alter_system_privilege(conn: &Conn, names: &[&str]) -> Result<()> {
    let row = conn
        .query_one(
            "checking the role's privileges",
            "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (role, superuser): (String, bool) = (row.get(0), row.get(1));
    if superuser {
        return Ok(());
    }
    let version = server_version_num(conn).await?;
    if version < 150000 {
        return Err(Error::BadInput(format!(
            "role {role} may not ALTER SYSTEM: before PostgreSQL 15 only a superuser may. \
             Connect as a superuser, or apply the settings by hand (pgopt tune ... --emit sql)"
        )));
    }
    let mut missing = Vec::new();
    let mut grants = Vec::new();
    let reload = conn
        .query_one(
            "checking EXECUTE on pg_reload_conf()",
            "SELECT has_function_privilege('pg_reload_conf()', 'EXECUTE')",
            &[],
        )
        .await?;
    if !reload.get::<_, bool>(0) {
        missing.push("pg_reload_conf()");
        grants.push(format!(
            "GRANT EXECUTE ON FUNCTION pg_reload_conf() TO {}",
            Ident::new(&role)
        ));
    }
    for name in names {
        let row = conn
            .query_one(
                "checking ALTER SYSTEM privilege",
                "SELECT has_parameter_privilege(current_user, $1, 'ALTER SYSTEM')",
                &[name],
            )
            .await?;
        if !row.get::<_, bool>(0) {
            missing.push(*name);
            grants.push(format!(
                "GRANT ALTER SYSTEM ON PARAMETER {name} TO {}",
                Ident::new(&role)
            ));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::BadInput(format!(
        "role {role} may not change {}; nothing was changed. As a superuser, run: {}",
        missing.join(", "),
        grants.join("; ")
    )))
}

/// The value of `name` in postgresql.auto.conf now: from pg_file_settings when readable,
/// else from pg_settings.sourcefile (superuser or pg_read_all_settings); else unknown, taken
/// as not set.
pub async fn auto_conf_value(conn: &Conn, name: &str) -> Result<Option<String>> {
    let from_file = conn
        .query(
            "reading pg_file_settings",
            "SELECT setting FROM pg_file_settings WHERE name = $1 \
             AND sourcefile LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
            &[&name],
        )
        .await;
    match from_file {
        Ok(rows) => return Ok(rows.first().map(|r| r.get(0))),
        Err(e) if e.is_connection_lost() => return Err(e),
        Err(_) => {}
    }
    let row = conn
        .query_opt(
            "reading pg_settings",
            "SELECT setting, source, sourcefile FROM pg_settings WHERE name = $1",
            &[&name],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let (setting, source, sourcefile): (String, String, Option<String>) =
        (row.get(0), row.get(1), row.get(2));
    match sourcefile {
        Some(f) if f.ends_with("postgresql.auto.conf") => Ok(Some(setting)),
        Some(_) => Ok(None),
        None if source == "configuration file" => Err(Error::BadInput(format!(
            "{name} is set in a configuration file this role may not see, so a rollback could \
             not tell whether to restore or reset it; nothing was changed. As a superuser, run: \
             GRANT pg_read_all_settings TO {}",
            Ident::new(&conn.user)
        ))),
        None => Ok(None),
    }
}

/// Errors pg_file_settings reports for `names` (a value that failed to parse), other than a
/// postmaster setting waiting for a restart. None when pg_file_settings is not readable.
pub async fn file_setting_errors(conn: &Conn, names: &[&str]) -> Result<Option<Vec<String>>> {
    let rows = match conn
        .query(
            "reading pg_file_settings",
            "SELECT coalesce(name, ''), coalesce(sourcefile, ''), coalesce(sourceline, 0), error \
             FROM pg_file_settings WHERE error IS NOT NULL",
            &[],
        )
        .await
    {
        Ok(rows) => rows,
        Err(e) if e.is_connection_lost() => return Err(e),
        Err(_) => return Ok(None),
    };
    Ok(Some(
        rows.iter()
            .filter(|r| {
                let name: String = r.get(0);
                let error: String = r.get(3);
                !waits_for_restart(&error) && (name.is_empty() || names.contains(&name.as_str()))
            })
            .map(|r| {
                let (name, file, line, error): (String, String, i32, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                format!("{file}:{line}: {name}: {error}")
            })
            .collect(),
    ))
}

/// A postmaster setting changed in the file (or reset back to another file's value) waits for
/// a restart: pg_file_settings reports it on the line or, after a restart, with no line.
fn waits_for_restart(error: &str) -> bool {
    error == WAITS_FOR_RESTART || error.ends_with("cannot be changed without restarting the server")
}

/// How one setting ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// In effect now.
    Applied,
    /// Written, waits for a server restart (pending_restart).
    PendingRestart,
    /// The reload did not show the value in time.
    Unverified,
    /// Not run: its precondition no longer held (the value changed meanwhile).
    Skipped,
    /// Not run, or failed and rolled back (an interrupt, a failure).
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingOutcome {
    pub name: String,
    pub value: String,
    pub outcome: Outcome,
    /// Why it was skipped or not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What apply or rollback did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplyReport {
    pub settings: Vec<SettingOutcome>,
    /// Anything worth saying (pg_file_settings not readable, ...).
    pub notes: Vec<String>,
}

impl ApplyReport {
    pub fn waiting_for_restart(&self) -> Vec<&str> {
        self.with(Outcome::PendingRestart)
    }

    pub fn unverified(&self) -> Vec<&str> {
        self.with(Outcome::Unverified)
    }

    fn with(&self, o: Outcome) -> Vec<&str> {
        self.settings
            .iter()
            .filter(|s| s.outcome == o)
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// Waits for the reload to reach this session and checks each (name, expected value): equal
/// now, or (postmaster context) pending a restart. `expected` None: only pending_restart is
/// looked at (a RESET, whose value comes from elsewhere). After a restart, what is still
/// pending did not take.
pub async fn verify(conn: &Conn, expected: &[(&str, Option<&str>)]) -> Result<Vec<SettingOutcome>> {
    let start = Instant::now();
    loop {
        let settings = read_settings(conn).await?;
        let outcomes: Vec<SettingOutcome> = expected
            .iter()
            .map(|(name, value)| {
                let s = settings.iter().find(|s| s.name == *name);
                let outcome = match (s, value) {
                    (Some(s), _) if s.pending_restart => Outcome::PendingRestart,
                    (Some(s), Some(v)) if same_value(s, v) => Outcome::Applied,
                    (Some(_), None) => Outcome::Applied,
                    _ => Outcome::Unverified,
                };
                SettingOutcome {
                    name: name.to_string(),
                    value: value
                        .map(str::to_string)
                        .or_else(|| s.map(|s| s.display_value()))
                        .unwrap_or_default(),
                    outcome,
                    reason: None,
                }
            })
            .collect();
        let settled = outcomes.iter().all(|o| o.outcome != Outcome::Unverified);
        if settled || start.elapsed() > VERIFY_WITHIN {
            return Ok(outcomes);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What `pgopt tune --apply` did: the settings, the per-object settings, and whether an
/// interrupt (Ctrl-C) ended the run (the journal is complete; the command exits 130).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsRun {
    pub report: ApplyReport,
    pub objects: Vec<ObjectOutcome>,
    pub interrupted: bool,
    /// The server was restarted after the settings (`opts.restart`, when one waited for it)
    /// and those that waited are in effect now.
    pub restarted: bool,
}

/// Applies `changes` (name, value) to the server behind `conn` on the executor
/// ([`crate::apply::run`]); see [`apply_plan`].
pub async fn apply_settings(
    conn: &Conn,
    changes: &[(&str, &str)],
    journal_path: &Path,
) -> Result<ApplyReport> {
    Ok(
        apply_plan(conn, changes, &[], journal_path, Default::default())
            .await?
            .report,
    )
}

/// Applies `changes` (name, value) and then the per-object settings `objects` as one plan on
/// the executor, run with `opts` (interrupt, progress, reconnect; its rollback command is
/// tune's; with `opts.restart`, a restart step comes last, run when a setting waits for it,
/// after which `conn` is closed): checks the role may ALTER SYSTEM each setting and that it can tell what
/// postgresql.auto.conf holds (refusing before any change and before the journal), then one
/// step per setting (precondition: the value is still the one read now; verification:
/// pg_settings value or pending_restart; undo: the old postgresql.auto.conf value, or RESET),
/// journaled to `journal_path` (version 2). When a step fails, what was done is rolled back.
///
/// Values are not validated here against pg_settings or the host: see
/// [`crate::tune::compare::validate_value`], which the command runs first.
pub async fn apply_plan(
    conn: &Conn,
    changes: &[(&str, &str)],
    objects: &[ObjectEntry],
    journal_path: &Path,
    opts: crate::apply::Options,
) -> Result<SettingsRun> {
    if journal_path.exists() {
        return Err(Error::BadInput(format!(
            "{} already exists: a journal is never overwritten (it may be the only record of \
             earlier values); give another --journal; nothing was changed",
            journal_path.display()
        )));
    }
    let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
    if !names.is_empty() {
        check_alter_system_privilege(conn, &names).await?;
    }
    let settings = read_settings(conn).await?;
    let mut plan = crate::plan::Plan::new();
    for (name, value) in changes {
        // Refuses now, not mid-run, when the undo could not be known.
        auto_conf_value(conn, name).await?;
        let s = settings.iter().find(|s| s.name == *name);
        let old = s.map(|s| s.setting.clone());
        let restart = s.is_some_and(|s| s.context == "postmaster");
        plan.push(crate::plan::Step::set_system(
            name,
            value,
            old.as_deref(),
            restart,
        ));
    }
    for e in objects {
        plan.push(crate::plan::Step::set_object(
            e.plan_object(),
            &e.name,
            &e.new,
            e.old.as_deref(),
        ));
    }
    if opts.restart.is_some() {
        plan.push(crate::plan::Step::restart());
    }
    let opts = crate::apply::Options {
        rollback_command: "pgopt tune --rollback".to_string(),
        ..opts
    };
    // Read before the run: after a restart step, `conn` is closed.
    let mut notes = Vec::new();
    if !names.is_empty() && file_setting_errors(conn, &[]).await?.is_none() {
        notes.push(
            "pg_file_settings is not readable by this role: configuration-file errors were \
             not checked"
                .to_string(),
        );
    }
    let run = crate::apply::run(conn, &plan, Some(journal_path), &opts).await?;
    let step = |i: usize| run.steps.iter().find(|s| s.index == i);
    let mut out = Vec::with_capacity(changes.len());
    for (i, (name, value)) in changes.iter().enumerate() {
        let (outcome, reason) = match step(i) {
            Some(s) if s.state == StepState::Done && s.pending_restart => {
                (Outcome::PendingRestart, None)
            }
            Some(s) if s.state == StepState::Done => (Outcome::Applied, None),
            Some(s) if s.state == StepState::Skipped => (Outcome::Skipped, s.reason.clone()),
            Some(s) => (Outcome::NotRun, s.reason.clone()),
            None => (Outcome::NotRun, Some("not reached".to_string())),
        };
        out.push(SettingOutcome {
            name: name.to_string(),
            value: value.to_string(),
            outcome,
            reason,
        });
    }
    let objects = objects
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let done = step(changes.len() + k).is_some_and(|s| s.state == StepState::Done);
            ObjectOutcome {
                object: e.label(),
                name: e.name.clone(),
                verified: done,
                value: Some(e.new.clone()),
            }
        })
        .collect();
    Ok(SettingsRun {
        report: ApplyReport {
            settings: out,
            notes,
        },
        objects,
        interrupted: run.interrupted,
        restarted: run.restarted,
    })
}

/// The value `name` takes once postgresql.auto.conf no longer sets it: the last line of the
/// other configuration files (pg_file_settings, when readable), else the built-in default
/// (boot_val), in the setting's display units. None when neither can be read.
pub async fn restored_value(
    conn: &Conn,
    running: &[ServerSetting],
    name: &str,
) -> Result<Option<String>> {
    let from_file = conn
        .query(
            "reading pg_file_settings",
            "SELECT setting FROM pg_file_settings WHERE name = $1 AND error IS NULL \
             AND sourcefile NOT LIKE '%postgresql.auto.conf' ORDER BY seqno DESC LIMIT 1",
            &[&name],
        )
        .await;
    let file_value = match from_file {
        Ok(rows) => rows.first().map(|r| r.get::<_, String>(0)),
        Err(e) if e.is_connection_lost() => return Err(e),
        Err(_) => return Ok(None),
    };
    let Some(s) = running.iter().find(|s| s.name == name) else {
        return Ok(file_value);
    };
    let in_units = match file_value {
        Some(v) => match s.unit_kb() {
            // A file value may carry its own unit (`128MB`): back to the setting's unit.
            Some(k) => crate::tune::compare::value_kb(&v, k).map(|kb| (kb / k).round().to_string()),
            None => Some(v),
        },
        None => conn
            .query_opt(
                "reading pg_settings",
                "SELECT boot_val FROM pg_settings WHERE name = $1",
                &[&name],
            )
            .await?
            .and_then(|r| r.get::<_, Option<String>>(0)),
    };
    Ok(in_units.map(|v| {
        ServerSetting {
            setting: v,
            ..s.clone()
        }
        .display_value()
    }))
}
