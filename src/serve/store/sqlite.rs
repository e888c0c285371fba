//! The embedded store: one SQLite file, `history.sqlite3`, in the daemon's data directory.
//!
//! WAL with `synchronous = NORMAL` (set on every open: it is per connection): a crash of
//! the daemon loses no committed batch and never corrupts the file; an OS crash may lose
//! the last batches. The file carries pgopt's `application_id` and a `meta` table; a file
//! that is not a pgopt store, or one written by a newer pgopt, is refused before anything
//! is written to it. One connection behind a mutex: the daemon is the only writer.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{params_from_iter, Connection, ErrorCode, OpenFlags, Transaction};

use super::sql::{self, Db, Found, SeriesCache, Val};
use super::StoreError;

/// The store's file name inside the data directory.
pub const FILE: &str = "history.sqlite3";
/// SQLite's `application_id` of a pgopt store ("pgop").
pub const APPLICATION_ID: i32 = 0x7067_6f70;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Each schema version's DDL: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: &[&str] = &[include_str!("sql/sqlite_v1.sql")];

struct Inner {
    conn: Connection,
    cache: SeriesCache,
}

/// See the module's documentation.
pub struct SqliteStore {
    path: PathBuf,
    /// The file's (device, inode) when opened: a file moved or removed under the daemon
    /// is an error, not writes into a file nobody will read.
    identity: (u64, u64),
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sqlite_error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    let next = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "free disk space",
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) => {
            "check the permissions of the file and its directory"
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            "another program holds the file locked; only one pgopt serve may use a data directory"
        }
        _ => "check the file and the disk",
    };
    StoreError::Io(format!(
        "{what} {}: {e}; {next} (points are kept in memory until the store can write again)",
        path.display()
    ))
}

impl SqliteStore {
    /// Opens (or creates) `dir/history.sqlite3`; `dir` is made with mode 0700 if missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::Io(format!(
                        "cannot create the data directory {}: {e}; create it or pass another --data-dir",
                        dir.display()
                    ))
                })?;
        }
        let path = dir.join(FILE);
        let existed = std::fs::metadata(&path).is_ok_and(|m| m.len() > 0);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sqlite_error(&path, "cannot open the history store", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite_error(&path, "cannot open the history store", e))?;
        let version = if existed { check(&conn, &path)? } else { 0 };

        // From here on the file is ours (or new): writing is allowed.
        let err = |e| sqlite_error(&path, "cannot set up the history store", e);
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!(
                "{}: SQLite would not use WAL (journal_mode stays {mode}); put the data directory on a local file system",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut conn = conn;
        if version < sql::VERSION {
            migrate(&mut conn, version).map_err(|e| match e {
                StoreError::Io(m) => StoreError::Io(format!(
                    "cannot create or migrate the history store {}: {m}",
                    path.display()
                )),
                other => other,
            })?;
        }
        let meta = std::fs::metadata(&path)
            .map_err(|e| StoreError::Io(format!("cannot stat {}: {e}", path.display())))?;
        Ok(Self {
            identity: (meta.dev(), meta.ino()),
            path,
            inner: Mutex::new(Inner {
                conn,
                cache: SeriesCache::default(),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction (committed when it returns Ok).
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db, &mut SeriesCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match std::fs::metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.identity => {}
            Ok(_) => {
                return Err(StoreError::Io(format!(
                    "{} was replaced by another file while pgopt serve used it; put the store back or restart the daemon",
                    self.path.display()
                )))
            }
            Err(e) => {
                return Err(StoreError::Io(format!(
                    "the history store {} is gone ({e}); put it back or restart the daemon (points are kept in memory meanwhile)",
                    self.path.display()
                )))
            }
        }
        let mut guard = self.lock();
        let Inner { conn, cache } = &mut *guard;
        let tx = conn
            .transaction()
            .map_err(|e| sqlite_error(&self.path, "cannot use the history store", e))?;
        let mut db = Tx {
            tx: &tx,
            path: &self.path,
        };
        let out = f(&mut db, cache)?;
        tx.commit()
            .map_err(|e| sqlite_error(&self.path, "cannot write the history store", e))?;
        Ok(out)
    }
}

/// Whether an existing file is a pgopt store, and its version. Reads only.
fn check(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let not_a_store = |why: String| {
        StoreError::NotAStore(format!(
            "{} is not a pgopt history store ({why}); nothing was written to it. Move it away or pass another --data-dir",
            path.display()
        ))
    };
    let app: i32 = match conn.query_row("PRAGMA application_id", [], |r| r.get(0)) {
        Ok(v) => v,
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => {
            return Err(not_a_store("not a SQLite database".into()))
        }
        Err(e) => return Err(sqlite_error(path, "cannot read the history store", e)),
    };
    if app != APPLICATION_ID {
        return Err(not_a_store(format!(
            "a SQLite database of another program, application_id {app:#x}"
        )));
    }
    let has_meta: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| sqlite_error(path, "cannot read the history store", e))?;
    if !has_meta {
        return Err(not_a_store("no meta table".into()));
    }
    // A read transaction only: `check` writes nothing.
    let mut db = ReadOnly { conn, path };
    match sql::read_meta(&mut db)? {
        Found::Foreign(why) => Err(not_a_store(why)),
        Found::Store(v) if v > sql::VERSION => Err(StoreError::TooNew(format!(
            "{} was written by a newer pgopt (store version {v}, this pgopt knows up to {}); nothing was written to it. Upgrade pgopt or pass another --data-dir",
            path.display(),
            sql::VERSION
        ))),
        Found::Store(v) => Ok(v),
    }
}

/// Creates the schema or brings it from `from` to the current version, in one transaction.
fn migrate(conn: &mut Connection, from: i64) -> Result<(), StoreError> {
    let tx = conn
        .transaction()
        .map_err(|e| StoreError::Io(e.to_string()))?;
    for ddl in &MIGRATIONS[usize::try_from(from).unwrap_or(0)..] {
        tx.execute_batch(ddl)
            .map_err(|e| StoreError::Io(e.to_string()))?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(|e| StoreError::Io(e.to_string()))?;
    let path = PathBuf::new();
    sql::write_meta(
        &mut Tx {
            tx: &tx,
            path: &path,
        },
        sql::VERSION,
    )?;
    tx.commit().map_err(|e| StoreError::Io(e.to_string()))
}

fn to_value(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::I(i) => Value::Integer(*i),
        Val::F(f) => Value::Real(*f),
        Val::T(s) => Value::Text(s.clone()),
    }
}

fn from_ref(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::I(i),
        ValueRef::Real(f) => Val::F(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::T(String::from_utf8_lossy(t).into_owned()),
    }
}

/// `$1` → `?1`: the shared SQL is written for PostgreSQL's placeholders.
fn placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

fn run_rows(
    conn: &Connection,
    path: &Path,
    sql: &str,
    params: &[Val],
) -> Result<Vec<Vec<Val>>, StoreError> {
    let err = |e| sqlite_error(path, "cannot read the history store", e);
    let mut st = conn.prepare_cached(&placeholders(sql)).map_err(err)?;
    let n = st.column_count();
    let mut rows = st
        .query(params_from_iter(params.iter().map(to_value)))
        .map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        let mut row = Vec::with_capacity(n);
        for i in 0..n {
            row.push(from_ref(r.get_ref(i).map_err(err)?));
        }
        out.push(row);
    }
    Ok(out)
}

struct Tx<'a> {
    tx: &'a Transaction<'a>,
    path: &'a Path,
}

impl Db for Tx<'_> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let err = |e| sqlite_error(self.path, "cannot write the history store", e);
        let mut st = self.tx.prepare_cached(&placeholders(sql)).map_err(err)?;
        Ok(st
            .execute(params_from_iter(params.iter().map(to_value)))
            .map_err(err)? as u64)
    }

    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        run_rows(self.tx, self.path, sql, params)
    }

    fn insert_points(&mut self, points: &[(i64, i64, f64)]) -> Result<(), StoreError> {
        let err = |e| sqlite_error(self.path, "cannot write the history store", e);
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO points (series, at, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (series, at) DO UPDATE SET value = excluded.value",
            )
            .map_err(err)?;
        for (series, at, value) in points {
            st.execute((series, at, value)).map_err(err)?;
        }
        Ok(())
    }
}

/// Reads outside a transaction, for [`check`] (which must not write).
struct ReadOnly<'a> {
    conn: &'a Connection,
    path: &'a Path,
}

impl Db for ReadOnly<'_> {
    fn exec(&mut self, _: &str, _: &[Val]) -> Result<u64, StoreError> {
        Err(StoreError::Io(
            "internal: a write while checking the store".into(),
        ))
    }
    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        run_rows(self.conn, self.path, sql, params)
    }
    fn insert_points(&mut self, _: &[(i64, i64, f64)]) -> Result<(), StoreError> {
        Err(StoreError::Io(
            "internal: a write while checking the store".into(),
        ))
    }
}

impl sql::Backend for SqliteStore {
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db, &mut SeriesCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        SqliteStore::tx(self, f)
    }

    fn with_cache(&self, f: &mut dyn FnMut(&mut SeriesCache)) {
        f(&mut self.lock().cache)
    }

    fn size(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            if let Ok(m) = std::fs::metadata(&p) {
                total += m.len();
            }
        }
        Ok(total)
    }
}
