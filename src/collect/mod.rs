//! Collecting: the server's catalogs and statistics -> typed rows -> one [`Snapshot`].
//!
//! Everything is read in one `REPEATABLE READ READ ONLY` transaction, so the sections agree
//! with each other, under a `lock_timeout` of its own. Each section runs inside a savepoint:
//! one that fails (no privilege, a view missing, a lock or statement timeout) is rolled back
//! and recorded in [`Snapshot::sections`] with the reason and the next step, and the others
//! still come back. A lost connection ends the whole collect with that error.
//!
//! This module only reads. It writes nothing to the server and decides nothing: findings are
//! the advisors' job, over the snapshot it returns.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::snapshot::{SectionState, SectionStatus, Snapshot, TargetInfo};

mod activity;
mod bloat;
mod checkpoints;
mod databases;
mod extensions;
mod foreign_keys;
pub(crate) mod host;
pub(crate) mod indexes;
mod prepared_xacts;
mod privileges;
mod replication;
pub(crate) mod security;
mod sequences;
mod server;
mod settings;
mod sizes;
mod statements;
pub(crate) mod storage;
mod tables;
mod triggers;
mod wal;

const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const SAVEPOINT: &str = "SAVEPOINT pgopt_section";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT pgopt_section";
const RELEASE: &str = "RELEASE SAVEPOINT pgopt_section";
const COLLECT_START_SQL: &str = include_str!("../sql/collect_start.sql");
pub(crate) const SET_LOCAL_SQL: &str = include_str!("../sql/set_local.sql");

/// How every statement pgopt sends from its SQL files begins (a comment saying what it
/// reads), so that a DBA can tell pgopt's own statements apart in pg_stat_statements,
/// pg_stat_activity and the server log, and `pgopt serve` leaves them out of its query
/// regressions.
pub const OWN_STATEMENT_MARK: &str = "/* pgopt: ";

/// Whether a statement's text (as pg_stat_statements keeps it) is one of pgopt's own.
pub fn is_own_statement(text: &str) -> bool {
    text.trim_start().starts_with(OWN_STATEMENT_MARK)
}

/// What to collect and how much.
#[derive(Debug, Clone)]
pub struct CollectOptions {
    /// Statements kept from pg_stat_statements: the top N by total time and the top N by mean
    /// time (the two lists merged).
    pub top_statements: usize,
    /// Query texts (statements and sessions) are cut to this many characters.
    pub max_query_chars: usize,
    /// Leave pg_stat_statements alone (`--skip-statements`).
    pub skip_statements: bool,
    /// Read CPU, memory and disk of this machine when the server runs on it.
    pub include_host: bool,
    /// How long any catalog read may wait for a lock before its section gives up.
    pub lock_timeout: Duration,
    /// Tables and indexes smaller than this many pages are not judged for bloat (a rewrite of
    /// a small relation gains nothing).
    pub bloat_min_pages: i64,
    /// With pgstattuple installed: at most this many tables, and as many indexes, measured.
    pub bloat_measure_max_relations: usize,
    /// ... of at most this many bytes in all (they are read).
    pub bloat_measure_max_bytes: i64,
    /// ... each call under this statement_timeout ...
    pub bloat_measure_timeout: Duration,
    /// ... and all of them within this time.
    pub bloat_measure_total: Duration,
    /// The exact pass measures this many of the largest tables and of the largest indexes
    /// (by their pg_class estimate); every other size is an estimate (see [`sizes`]).
    pub exact_sizes_top: usize,
    /// When set, the advisors run on the estimates before the exact pass, and the tables and
    /// indexes their findings are about are measured too (so a finding states measured sizes).
    pub thresholds: Option<crate::advise::Thresholds>,
}

impl Default for CollectOptions {
    fn default() -> Self {
        CollectOptions {
            top_statements: 50,
            max_query_chars: 2000,
            skip_statements: false,
            include_host: true,
            lock_timeout: Duration::from_secs(2),
            bloat_min_pages: 128,
            bloat_measure_max_relations: 10,
            bloat_measure_max_bytes: 8 * 1024 * 1024 * 1024,
            bloat_measure_timeout: Duration::from_secs(10),
            bloat_measure_total: Duration::from_secs(30),
            exact_sizes_top: 500,
            thresholds: None,
        }
    }
}

/// What a section brings back: its data, or the reason it was not collected.
pub(crate) enum Outcome<T> {
    Collected(T),
    Skipped { reason: String, next_step: String },
}

impl<T> Outcome<T> {
    pub(crate) fn skipped(reason: impl Into<String>, next_step: impl Into<String>) -> Self {
        Outcome::Skipped {
            reason: reason.into(),
            next_step: next_step.into(),
        }
    }
}

/// Collects one snapshot of the server behind `conn`.
///
/// Fails only when the transaction cannot be opened or the connection is lost; anything
/// else a section meets is recorded in `sections`.
pub async fn collect(conn: &Conn, target: TargetInfo, opts: &CollectOptions) -> Result<Snapshot> {
    conn.batch("starting the collecting transaction", BEGIN)
        .await?;
    match collect_in_transaction(conn, target, opts).await {
        Ok(snapshot) => {
            conn.batch("ending the collecting transaction", "COMMIT")
                .await?;
            Ok(snapshot)
        }
        Err(e) => {
            if !e.is_connection_lost() {
                // Best effort: leave the connection usable for the caller.
                let _ = conn
                    .batch("ending the collecting transaction", "ROLLBACK")
                    .await;
            }
            Err(e)
        }
    }
}

async fn collect_in_transaction(
    conn: &Conn,
    target: TargetInfo,
    opts: &CollectOptions,
) -> Result<Snapshot> {
    let lock_timeout = format!("{}ms", opts.lock_timeout.as_millis().max(1));
    conn.query_one(
        "setting lock_timeout",
        SET_LOCAL_SQL,
        &[&"lock_timeout", &lock_timeout],
    )
    .await?;
    // Catalog queries name pg_catalog themselves; this keeps any user object from shadowing
    // an unqualified function or operator.
    conn.query_one(
        "setting search_path",
        SET_LOCAL_SQL,
        &[&"search_path", &"pg_catalog, pg_temp"],
    )
    .await?;
    // Catalog queries with many subplans cross jit_above_cost on big catalogs, and compiling
    // them costs far more than running them (1.2 s of 1.4 s at 2,000 indexes).
    conn.query_one("turning off JIT", SET_LOCAL_SQL, &[&"jit", &"off"])
        .await?;
    let row = conn
        .query_one("reading the server clock", COLLECT_START_SQL, &[])
        .await?;
    let collected_at = get(&row, "collect", "collected_at")?;
    let mut snap = Snapshot::new(target, collected_at);
    let mut run = Runner {
        conn,
        sections: Vec::new(),
    };

    snap.privileges = run.section("privileges", privileges::collect(conn)).await?;
    snap.server = run.section("server", server::collect(conn)).await?;
    snap.settings = run
        .section("settings", settings::collect(conn))
        .await?
        .unwrap_or_default();
    let data_directory = snap.server.as_ref().and_then(|s| s.data_directory.clone());
    snap.host = run
        .local_section(
            "host",
            host::collect(&conn.host, data_directory.clone(), opts.include_host),
        )
        .await;
    snap.data_storage = run
        .local_section(
            "data_storage",
            storage::collect(
                opts.include_host,
                host::is_local(&conn.host),
                data_directory,
                &conn.user,
            ),
        )
        .await;
    snap.setting_domains = run
        .section("setting_domains", settings::collect_domains(conn))
        .await?;
    snap.role_settings = run
        .section("role_settings", settings::collect_role_settings(conn))
        .await?;
    snap.databases = run
        .section("databases", databases::collect(conn))
        .await?
        .unwrap_or_default();
    snap.stats_window = settings::stats_window(&snap);
    snap.activity = run
        .section("activity", activity::collect(conn, opts.max_query_chars))
        .await?;
    snap.prepared_xacts = run
        .section("prepared_xacts", prepared_xacts::collect(conn))
        .await?;
    // Relations under an ACCESS EXCLUSIVE lock, read once: the next three sections measure
    // and deparse everything else and leave these be.
    let locked = run
        .section("locks", tables::locked_relations(conn))
        .await?
        .unwrap_or_default();
    let (tables, unmeasured) = run
        .section("tables", tables::collect(conn, &locked))
        .await?
        .unwrap_or_default();
    snap.tables = tables;
    snap.indexes = run
        .section("indexes", indexes::collect(conn, &locked))
        .await?
        .unwrap_or_default();
    tables::add_index_sizes(&mut snap.tables, &snap.indexes);
    snap.foreign_keys = run
        .section("foreign_keys", foreign_keys::collect(conn))
        .await?
        .unwrap_or_default();
    snap.sequences = run
        .section("sequences", sequences::collect(conn, &locked))
        .await?
        .unwrap_or_default();
    snap.extensions = run
        .section("extensions", extensions::collect(conn))
        .await?
        .unwrap_or_default();
    if let Some(libs) = run
        .section("preloaded_libraries", extensions::collect_preloaded(conn))
        .await?
    {
        snap.extensions.preloaded = libs;
    }
    let block_size = snap.setting_f64("block_size").map_or(8192, |b| b as i64);
    snap.bloat = run
        .section(
            "bloat",
            bloat::estimate(conn, &locked, block_size, opts.bloat_min_pages),
        )
        .await?;
    let extensions_read = run
        .sections
        .iter()
        .any(|s| s.section == "extensions" && s.state == SectionState::Collected);
    if let Some(measured) = run
        .section(
            "bloat_measured",
            bloat::measure(
                conn,
                snap.bloat.as_ref(),
                extensions_read.then_some(&snap.extensions),
                opts,
            ),
        )
        .await?
    {
        if let Some(b) = snap.bloat.as_mut() {
            bloat::apply(b, measured);
        }
    }
    snap.statements = run
        .section("statements", statements::collect(conn, opts))
        .await?;
    snap.replication = run
        .section("replication", replication::collect(conn))
        .await?;
    snap.hba_rules = run
        .section("hba_rules", security::collect_hba(conn))
        .await?;
    snap.roles = run.section("roles", security::collect_roles(conn)).await?;
    if let Some(roles) = snap.roles.as_mut() {
        if let Some(kinds) = run
            .section("role_passwords", security::collect_passwords(conn))
            .await?
        {
            for role in roles {
                role.password = kinds.get(&role.name).copied();
            }
        }
    }
    snap.checkpoints = run
        .section("checkpoints", checkpoints::collect(conn))
        .await?;
    if conn.server_version_num >= 150000 {
        snap.wal_compression_lz4 = run
            .section("wal_compression_lz4", settings::accepts_lz4(conn))
            .await?;
    }

    snap.wal_directory = run
        .section("wal_directory", wal::collect_directory(conn))
        .await?;
    snap.archiver = run.section("archiver", wal::collect_archiver(conn)).await?;
    if let Some(archiver) = snap.archiver.as_mut() {
        if let Some((ready, oldest)) = run
            .section("archive_status", wal::collect_ready(conn))
            .await?
        {
            archiver.ready_files = Some(ready);
            archiver.oldest_ready_time = oldest;
        }
    }
    snap.triggers = run.section("triggers", triggers::collect(conn)).await?;

    // The exact pass, last: it needs the estimates of every section above, and the findings
    // they give when thresholds are set.
    let about: Vec<String> = match &opts.thresholds {
        Some(th) => crate::advise::advise(&snap, th)
            .into_iter()
            .map(|f| f.object)
            .collect(),
        None => Vec::new(),
    };
    let oids = sizes::candidates(&snap, &unmeasured, opts.exact_sizes_top, &about);
    if let Some(measured) = run
        .section("sizes", sizes::measure(conn, &oids, &locked))
        .await?
    {
        sizes::apply(&mut snap, &measured);
    }

    snap.sections = run.sections;
    Ok(snap)
}

/// Runs sections in savepoints and records what each did.
struct Runner<'a> {
    conn: &'a Conn,
    sections: Vec<SectionStatus>,
}

impl Runner<'_> {
    /// Runs `work` inside a savepoint. Always rolls back to it afterwards (the transaction is
    /// read-only, so nothing is lost, and a section's SET LOCAL does not leak into the next).
    async fn section<T>(
        &mut self,
        name: &str,
        work: impl Future<Output = Result<Outcome<T>>>,
    ) -> Result<Option<T>> {
        let started = Instant::now();
        self.conn.batch(name, SAVEPOINT).await?;
        let result = work.await;
        if let Err(e) = &result {
            if e.is_connection_lost() {
                return Err(clone_lost(e, name));
            }
        }
        self.conn.batch(name, ROLLBACK_TO).await?;
        self.conn.batch(name, RELEASE).await?;
        Ok(self.record(name, started, result))
    }

    /// A section that reads this machine, not the server: no savepoint.
    async fn local_section<T>(
        &mut self,
        name: &str,
        work: impl Future<Output = Result<Outcome<T>>>,
    ) -> Option<T> {
        let started = Instant::now();
        let result = work.await;
        self.record(name, started, result)
    }

    fn record<T>(&mut self, name: &str, started: Instant, result: Result<Outcome<T>>) -> Option<T> {
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (state, reason, next_step, value) = match result {
            Ok(Outcome::Collected(v)) => (SectionState::Collected, None, None, Some(v)),
            Ok(Outcome::Skipped { reason, next_step }) => {
                (SectionState::Skipped, Some(reason), Some(next_step), None)
            }
            Err(e) => {
                let (state, next) = classify(&e);
                (state, Some(e.to_string()), Some(next), None)
            }
        };
        tracing::debug!(
            section = name,
            state = ?state,
            elapsed_ms,
            reason = reason.as_deref().unwrap_or(""),
            "collected section"
        );
        self.sections.push(SectionStatus {
            section: name.to_string(),
            state,
            reason,
            next_step,
            elapsed_ms,
        });
        value
    }
}

/// Skipped when the server lacks something we cannot supply (a privilege, a view, a loaded
/// module); Failed when the read itself went wrong (a lock or statement timeout, a bug).
fn classify(e: &Error) -> (SectionState, String) {
    let own_next = match e {
        Error::Query { next_step, .. } | Error::Timeout { next_step, .. } => next_step.clone(),
        _ => None,
    };
    let code = e.sqlstate();
    let skipped = code.is_some_and(|c| {
        *c == SqlState::INSUFFICIENT_PRIVILEGE
            || *c == SqlState::UNDEFINED_TABLE
            || *c == SqlState::UNDEFINED_FUNCTION
            || *c == SqlState::UNDEFINED_COLUMN
            || *c == SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE
            || *c == SqlState::FEATURE_NOT_SUPPORTED
    });
    let state = if skipped {
        SectionState::Skipped
    } else {
        SectionState::Failed
    };
    let next = own_next.unwrap_or_else(|| {
        if skipped {
            "connect as a role with pg_monitor on PostgreSQL 13 or newer".to_string()
        } else {
            "run again; if it keeps failing, report it with the message above".to_string()
        }
    });
    (state, next)
}

/// A lost-connection error, re-made so the caller sees it (errors are not Clone).
fn clone_lost(e: &Error, section: &str) -> Error {
    match e {
        Error::ConnectionLost { context, message } => Error::ConnectionLost {
            context: context.clone(),
            message: message.clone(),
        },
        other => Error::ConnectionLost {
            context: format!("collecting {section}"),
            message: other.to_string(),
        },
    }
}

/// One typed column of a row; a mismatch names the section and the column.
pub(crate) fn get<'r, T: FromSql<'r>>(row: &'r Row, section: &str, column: &str) -> Result<T> {
    row.try_get::<_, T>(column)
        .map_err(|e| Error::Internal(format!("{section}: reading column {column}: {e}")))
}

/// A text column as a [`Name`](crate::snapshot::Name), stored inline when short.
pub(crate) fn get_name(row: &Row, section: &str, column: &str) -> Result<crate::snapshot::Name> {
    get::<&str>(row, section, column).map(Into::into)
}

/// A nullable text column as a [`Name`](crate::snapshot::Name).
pub(crate) fn get_opt_name(
    row: &Row,
    section: &str,
    column: &str,
) -> Result<Option<crate::snapshot::Name>> {
    get::<Option<&str>>(row, section, column).map(|v| v.map(Into::into))
}

/// A text[] column as [`Names`](crate::snapshot::Names).
pub(crate) fn get_names(row: &Row, section: &str, column: &str) -> Result<crate::snapshot::Names> {
    get::<Vec<&str>>(row, section, column).map(|v| v.into_iter().map(Into::into).collect())
}

/// An array column as a small vector (inline up to its capacity).
pub(crate) fn get_small<'r, T, const N: usize>(
    row: &'r Row,
    section: &str,
    column: &str,
) -> Result<crate::snapshot::SmallVec<[T; N]>>
where
    T: FromSql<'r>,
{
    get::<Vec<T>>(row, section, column).map(crate::snapshot::SmallVec::from_vec)
}

/// Cuts `text` to at most `max` characters, on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_file_carries_pgopts_mark() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sql");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sql") {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(is_own_statement(&text), "{} lacks the mark", path.display());
                seen += 1;
            }
        }
        assert!(seen > 50, "{seen}");
        assert!(is_own_statement(COLLECT_START_SQL));
        assert!(!is_own_statement("/* job */ SELECT 1"));
        assert!(!is_own_statement("SELECT '/* pgopt: x */'"));
    }

    #[test]
    fn cut_keeps_whole_characters() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn privilege_errors_skip_and_lock_timeouts_fail() {
        let denied = Error::Query {
            context: "x".into(),
            code: Some(SqlState::INSUFFICIENT_PRIVILEGE),
            message: "permission denied".into(),
            next_step: Some("grant pg_monitor".into()),
        };
        assert_eq!(
            classify(&denied),
            (SectionState::Skipped, "grant pg_monitor".to_string())
        );
        let lock = Error::Query {
            context: "x".into(),
            code: Some(SqlState::LOCK_NOT_AVAILABLE),
            message: "canceling statement due to lock timeout".into(),
            next_step: None,
        };
        assert_eq!(classify(&lock).0, SectionState::Failed);
    }
}
