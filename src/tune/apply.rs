//! Applying settings to a live server and rolling them back (I/O).
//!
//! The house rules: one ALTER SYSTEM statement at a time (it cannot run in a transaction),
//! the name through [`Ident`] and the value through [`quote_literal`] (ALTER SYSTEM takes no
//! bind parameters), a journal of the old values written before the first change, errors in
//! pg_file_settings checked, pg_reload_conf(), each value verified. When the server rejects a
//! value, what was already done is rolled back from the journal: nothing is left half-applied.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::compare::{same_value, ServerSetting};
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;

const JOURNAL_VERSION: u32 = 1;
/// How long to wait for another pgopt run changing the server.
const LOCK_WAIT: Duration = Duration::from_secs(10);
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

/// One setting in the journal: its value in postgresql.auto.conf before the change (None when
/// it was not set there, so rollback RESETs it) and the value applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub name: String,
    pub old_auto_conf: Option<String>,
    pub new: String,
}

/// The journal `--rollback` replays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub journal_version: u32,
    pub pgopt_version: String,
    pub created_at: String,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub entries: Vec<JournalEntry>,
    /// Settings of single tables and roles, applied after `entries`.
    #[serde(default)]
    pub objects: Vec<super::objects::ObjectEntry>,
}

impl Journal {
    /// Reads a journal; anything that does not parse is bad input.
    pub fn load(path: &Path) -> Result<Journal> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input_file(path, &e))?;
        let j: Journal = serde_json::from_str(&text).map_err(|e| {
            Error::BadInput(format!(
                "{}: not a pgopt tune journal ({e}); give the file --apply wrote",
                path.display()
            ))
        })?;
        if j.journal_version != JOURNAL_VERSION {
            return Err(Error::BadInput(format!(
                "{}: journal version {} is not one this pgopt reads ({JOURNAL_VERSION})",
                path.display(),
                j.journal_version
            )));
        }
        Ok(j)
    }

    /// Writes the journal atomically (a temporary file renamed over `path`), synced.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("journal: {e}")))?;
        crate::files::write_atomically(path, &text)
    }
}

/// The default journal name: `pgopt-tune-journal-<UTC timestamp>.json`.
pub fn default_journal_name() -> String {
    format!(
        "pgopt-tune-journal-{}.json",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// The value of `name` in postgresql.auto.conf now: from pg_file_settings when readable,
/// else from pg_settings.sourcefile (superuser or pg_read_all_settings); else unknown, taken
/// as not set.
pub(crate) async fn auto_conf_value(conn: &Conn, name: &str) -> Result<Option<String>> {
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

/// The right-hand side of `ALTER SYSTEM SET name = ...` (see [`crate::plan::setting_value_sql`]).
pub fn set_value_sql(name: &str, value: &str) -> String {
    crate::plan::setting_value_sql(name, value)
}

/// The ALTER SYSTEM statement, rendered by the plan's step.
fn system_sql(name: &str, value: Option<&str>) -> String {
    crate::plan::Action::SetSystem {
        name: name.to_string(),
        value: value.map(str::to_string),
    }
    .sql()
    .expect("ALTER SYSTEM is a statement")
}

/// Runs `ALTER SYSTEM SET name = 'value'` alone.
async fn alter_set(conn: &Conn, name: &str, value: &str) -> Result<()> {
    let sql = system_sql(name, Some(value));
    conn.batch(&format!("ALTER SYSTEM SET {name} = {value:?}"), &sql)
        .await
}

/// Runs `ALTER SYSTEM RESET name` alone.
async fn alter_reset(conn: &Conn, name: &str) -> Result<()> {
    let sql = system_sql(name, None);
    conn.batch(&format!("ALTER SYSTEM RESET {name}"), &sql)
        .await
}

/// pg_reload_conf(), then waits (up to [`VERIFY_WITHIN`]) until this session has re-read the
/// files: the postmaster passes the signal on in its own time, and a setting read before then
/// still shows the old state (a RESET would look done, with no restart pending).
async fn reload(conn: &Conn) -> Result<()> {
    const LOAD_TIME: &str = "SELECT pg_conf_load_time()::text";
    let before: String = conn
        .query_one("reading pg_conf_load_time()", LOAD_TIME, &[])
        .await?
        .get(0);
    conn.query_one("pg_reload_conf()", "SELECT pg_reload_conf()", &[])
        .await?;
    let start = Instant::now();
    while start.elapsed() < VERIFY_WITHIN {
        let now: String = conn
            .query_one("reading pg_conf_load_time()", LOAD_TIME, &[])
            .await?
            .get(0);
        if now != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Errors pg_file_settings reports for `names` (a value that failed to parse), other than a
/// postmaster setting waiting for a restart. None when pg_file_settings is not readable.
pub(crate) async fn file_setting_errors(
    conn: &Conn,
    names: &[&str],
) -> Result<Option<Vec<String>>> {
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
                error != WAITS_FOR_RESTART && (name.is_empty() || names.contains(&name.as_str()))
            })
            .map(|r| {
                let (name, file, line, error): (String, String, i32, String) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                format!("{file}:{line}: {name}: {error}")
            })
            .collect(),
    ))
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettingOutcome {
    pub name: String,
    pub value: String,
    pub outcome: Outcome,
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

/// Applies `changes` (name, value) to the server behind `conn`: checks the role may ALTER
/// SYSTEM each one (refusing before any change), writes the journal to `journal_path`, runs
/// one ALTER SYSTEM per setting, checks pg_file_settings, reloads and verifies. When the
/// server rejects a value, what was done is rolled back and the error returned.
///
/// Values are not validated here against pg_settings or the host: see
/// [`super::compare::validate_value`], which the command runs first.
pub async fn apply_settings(
    conn: &Conn,
    changes: &[(&str, &str)],
    journal_path: &Path,
) -> Result<ApplyReport> {
    if journal_path.exists() {
        return Err(Error::BadInput(format!(
            "{} already exists: a journal is never overwritten (it may be the only record of \
             earlier values); give another --journal; nothing was changed",
            journal_path.display()
        )));
    }
    let names: Vec<&str> = changes.iter().map(|(n, _)| *n).collect();
    check_alter_system_privilege(conn, &names).await?;
    lock(conn).await?;
    let result = apply_locked(conn, changes, &names, journal_path).await;
    unlock(conn).await;
    result
}

/// The pgopt advisory lock every change to a server takes ([`crate::apply::lock`]), held
/// while applying or rolling back, so that two runs never interleave.
async fn lock(conn: &Conn) -> Result<()> {
    crate::apply::lock::acquire(conn, LOCK_WAIT).await
}

async fn unlock(conn: &Conn) {
    crate::apply::lock::release(conn).await
}

async fn apply_locked(
    conn: &Conn,
    changes: &[(&str, &str)],
    names: &[&str],
    journal_path: &Path,
) -> Result<ApplyReport> {
    let mut entries = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        entries.push(JournalEntry {
            name: name.to_string(),
            old_auto_conf: auto_conf_value(conn, name).await?,
            new: value.to_string(),
        });
    }
    let journal = Journal {
        journal_version: JOURNAL_VERSION,
        pgopt_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now().to_rfc3339(),
        host: conn.host.clone(),
        port: conn.port,
        database: conn.database.clone(),
        user: conn.user.clone(),
        entries,
        objects: Vec::new(),
    };
    journal.save(journal_path)?;

    for (done, (name, value)) in changes.iter().enumerate() {
        if let Err(e) = alter_set(conn, name, value).await {
            let undo = undo(conn, &journal.entries[..done]).await;
            return Err(failed_with_rollback(e, done, undo, journal_path));
        }
    }
    let mut notes = Vec::new();
    match file_setting_errors(conn, names).await? {
        Some(errors) if !errors.is_empty() => {
            let undo = undo(conn, &journal.entries).await;
            let e = Error::BadInput(format!(
                "postgresql.auto.conf has errors after ALTER SYSTEM: {}",
                errors.join("; ")
            ));
            return Err(failed_with_rollback(e, changes.len(), undo, journal_path));
        }
        Some(_) => {}
        None => notes.push(
            "pg_file_settings is not readable by this role: configuration-file errors were \
             not checked"
                .to_string(),
        ),
    }
    reload(conn).await?;
    let expected: Vec<(&str, Option<&str>)> = changes.iter().map(|(n, v)| (*n, Some(*v))).collect();
    let settings = verify(conn, &expected).await?;
    Ok(ApplyReport { settings, notes })
}

/// Restores `entries` (SET back or RESET), in reverse order, then reloads.
async fn undo(conn: &Conn, entries: &[JournalEntry]) -> Result<()> {
    let mut first_error = None;
    for e in entries.iter().rev() {
        let r = match &e.old_auto_conf {
            Some(old) => alter_set(conn, &e.name, old).await,
            None => alter_reset(conn, &e.name).await,
        };
        if let Err(err) = r {
            first_error.get_or_insert(err);
        }
    }
    let reloaded = reload(conn).await;
    match first_error {
        Some(e) => Err(e),
        None => reloaded,
    }
}

fn failed_with_rollback(e: Error, done: usize, undo: Result<()>, journal: &Path) -> Error {
    let what = match undo {
        Ok(()) => {
            format!(
                "{} already written rolled back; nothing was left changed",
                crate::advise::count(done, "setting was", "settings were")
            )
        }
        Err(u) => format!(
            "rolling back the {} already written failed too ({u}); run \
             pgopt tune --rollback {} to finish",
            crate::advise::count(done, "setting", "settings"),
            journal.display()
        ),
    };
    let msg = format!("{e}. {what}");
    match e {
        Error::Query { .. } | Error::BadInput(_) => Error::BadInput(msg),
        _ => Error::Internal(msg),
    }
}

/// Replays a journal: for each entry ALTER SYSTEM SET the old value, or RESET when it was not
/// set; reload; verify.
pub async fn rollback(conn: &Conn, journal: &Journal) -> Result<ApplyReport> {
    let names: Vec<&str> = journal.entries.iter().map(|e| e.name.as_str()).collect();
    check_alter_system_privilege(conn, &names).await?;
    lock(conn).await?;
    let result = rollback_locked(conn, journal).await;
    unlock(conn).await;
    result
}

async fn rollback_locked(conn: &Conn, journal: &Journal) -> Result<ApplyReport> {
    for e in journal.entries.iter().rev() {
        match &e.old_auto_conf {
            Some(old) => alter_set(conn, &e.name, old).await?,
            None => alter_reset(conn, &e.name).await?,
        }
    }
    reload(conn).await?;
    let expected: Vec<(&str, Option<&str>)> = journal
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.old_auto_conf.as_deref()))
        .collect();
    let mut settings = verify(conn, &expected).await?;
    // Only a value that never came from a file is stuck; one the server read from
    // postgresql.auto.conf at its last start (the apply was followed by a restart) really
    // waits for the next restart to go back to its default.
    let running = read_settings(conn).await?;
    let from_file = |name: &str| {
        running
            .iter()
            .any(|s| s.name == name && s.source == "configuration file")
    };
    let stuck: Vec<&str> = settings
        .iter()
        .filter(|s| s.outcome == Outcome::PendingRestart)
        .filter(|s| {
            journal
                .entries
                .iter()
                .any(|e| e.name == s.name && e.old_auto_conf.is_none())
        })
        .filter(|s| !from_file(&s.name))
        .map(|s| s.name.as_str())
        .collect();
    let mut notes = Vec::new();
    if !stuck.is_empty() {
        let stuck: Vec<String> = stuck.into_iter().map(str::to_string).collect();
        clear_pending_restart(conn, &stuck).await?;
        settings = verify(conn, &expected).await?;
        notes.push(format!(
            "{} came from no configuration file: set to the running value and reset again \
             so that no restart is pending",
            stuck.join(", ")
        ));
    }
    // A RESET restores what the configuration files or the built-in default say, which a
    // setting waiting for a restart does not show yet: report that value, not the undone one.
    for s in &mut settings {
        if journal
            .entries
            .iter()
            .any(|e| e.name == s.name && e.old_auto_conf.is_none())
        {
            if let Some(v) = restored_value(conn, &running, &s.name).await? {
                s.value = v;
            }
        }
    }
    Ok(ApplyReport { settings, notes })
}

/// The value `name` takes once postgresql.auto.conf no longer sets it: the last line of the
/// other configuration files (pg_file_settings, when readable), else the built-in default
/// (boot_val), in the setting's display units. None when neither can be read.
async fn restored_value(
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
            Some(k) => super::compare::value_kb(&v, k).map(|kb| (kb / k).round().to_string()),
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

/// A postmaster setting that came from no file keeps pending_restart after ALTER SYSTEM RESET
/// (the server never re-reads a value no file holds). Writing the running value makes the
/// server see "no change" and clear the flag; resetting it afterwards changes nothing more.
async fn clear_pending_restart(conn: &Conn, names: &[String]) -> Result<()> {
    let settings = read_settings(conn).await?;
    let running: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| {
            settings
                .iter()
                .find(|s| &s.name == n)
                .map(|s| (s.name.as_str(), s.setting.as_str()))
        })
        .collect();
    for (name, value) in &running {
        alter_set(conn, name, value).await?;
    }
    reload(conn).await?;
    let expected: Vec<(&str, Option<&str>)> = running.iter().map(|(n, _)| (*n, None)).collect();
    let start = Instant::now();
    while verify(conn, &expected)
        .await?
        .iter()
        .any(|o| o.outcome == Outcome::PendingRestart)
        && start.elapsed() < VERIFY_WITHIN
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, _) in &running {
        alter_reset(conn, name).await?;
    }
    reload(conn).await
}
