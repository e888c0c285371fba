//! The PostgreSQL store, for teams running several daemons: the same tables and the same
//! statements as the SQLite store (see `sql.rs`), in a schema of their own
//! (`pgopt_history` by default, made if missing), reached with the conninfo rules of every
//! pgopt command (PG* variables, .pgpass, multi-host).
//!
//! The [`Store`] trait is synchronous: the store keeps a handle on the runtime it was
//! connected in and blocks on each call, so it must be called from a blocking thread
//! (`spawn_blocking`), as the daemon does. Every statement is bounded by the target's
//! statement_timeout; a lost connection is made again on the next call.

use std::sync::{Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio_postgres::types::{ToSql, Type};

use super::sql::{self, Db, Found, SeriesCache, Val};
use super::StoreError;
use crate::db::{Conn, Secret, Target};
use crate::ident::Ident;

/// The schema the store's tables live in unless told otherwise.
pub const DEFAULT_SCHEMA: &str = "pgopt_history";

/// Each schema version's DDL: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: &[&str] = &[include_str!("sql/postgres_v1.sql")];

/// Points per INSERT (arrays through unnest).
const CHUNK: usize = 10_000;

struct Inner {
    conn: Option<Conn>,
    cache: SeriesCache,
}

/// See the module's documentation.
pub struct PgStore {
    target: Target,
    schema: Ident,
    handle: Handle,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target.display_safe())
            .field("schema", &self.schema.as_str())
            .finish_non_exhaustive()
    }
}

fn io(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!(
        "{what}: {e} (points are kept in memory until the store can write again)"
    ))
}

/// Connects and points search_path at the store's schema.
async fn open_conn(target: &Target, schema: &Ident) -> Result<Conn, StoreError> {
    let conn = crate::db::connect(target)
        .await
        .map_err(|e| io("cannot connect to the PostgreSQL store", e))?;
    conn.batch(
        "setting the store's search_path",
        &format!("SET search_path TO {schema}"),
    )
    .await
    .map_err(|e| io("cannot use the PostgreSQL store", e))?;
    Ok(conn)
}

impl PgStore {
    /// Connects to the store at `dsn`, in the schema `pgopt_history`.
    pub async fn connect(dsn: &Secret) -> Result<Self, StoreError> {
        Self::connect_in(dsn, DEFAULT_SCHEMA).await
    }

    /// Connects to the store at `dsn` in `schema`: made if missing; a schema that holds
    /// other tables, or a store of a newer pgopt, is refused with nothing written.
    pub async fn connect_in(dsn: &Secret, schema: &str) -> Result<Self, StoreError> {
        let mut target = Target::parse(dsn.expose()).map_err(|e| {
            StoreError::Io(format!("the PostgreSQL store's connection string: {e}"))
        })?;
        target.application_name = "pgopt serve (store)".into();
        let schema = Ident::new(schema);
        let conn = open_conn(&target, &schema).await?;
        let handle = Handle::current();
        let label = format!("{} schema {}", target.display_safe(), schema);
        let (conn, schema) = tokio::task::spawn_blocking(move || {
            let res = set_up(&handle, &conn, &schema, &label);
            if res.is_err() {
                let _ = handle.block_on(conn.batch("rolling back", "ROLLBACK"));
            }
            res.map(|()| (conn, schema))
        })
        .await
        .map_err(|e| StoreError::Io(format!("setting up the PostgreSQL store: {e}")))??;
        Ok(Self {
            target,
            schema,
            handle: Handle::current(),
            inner: Mutex::new(Inner {
                conn: Some(conn),
                cache: SeriesCache::default(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one transaction on the store's connection (made again if lost).
    /// Blocks: call it from a blocking thread.
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db, &mut SeriesCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let h = &self.handle;
        let mut guard = self.lock();
        let Inner { conn, cache } = &mut *guard;
        if conn.as_ref().is_none_or(Conn::is_closed) {
            *conn = None;
            *conn = Some(h.block_on(open_conn(&self.target, &self.schema))?);
        }
        let begin = |c: &Conn| h.block_on(c.batch("beginning a store transaction", "BEGIN"));
        if let Err(e) = begin(conn.as_ref().expect("connected above")) {
            // A connection the server dropped (a restart, a failover) is noticed here,
            // before any work: connect again once, at once, rather than fail this batch.
            let gone = e.is_connection_lost() || conn.as_ref().is_some_and(Conn::is_closed);
            *conn = None;
            if !gone {
                return Err(io("the PostgreSQL store", e));
            }
            let fresh = h.block_on(open_conn(&self.target, &self.schema))?;
            begin(&fresh).map_err(|e| io("the PostgreSQL store", e))?;
            *conn = Some(fresh);
        }
        let c = conn.as_ref().expect("connected above");
        let res = f(&mut PgTx { conn: c, handle: h }, cache).and_then(|out| {
            h.block_on(c.batch("committing to the store", "COMMIT"))
                .map_err(|e| io("the PostgreSQL store", e))
                .map(|()| out)
        });
        if res.is_err() {
            let rolled_back = h.block_on(c.batch("rolling back", "ROLLBACK")).is_ok();
            if !rolled_back || c.is_closed() {
                *conn = None;
            }
        }
        res
    }
}

/// Creates the schema and tables, or checks and migrates them, in one transaction under
/// an advisory lock (two daemons starting at once).
fn set_up(h: &Handle, conn: &Conn, schema: &Ident, label: &str) -> Result<(), StoreError> {
    let err = |e| io("cannot set up the PostgreSQL store", e);
    h.block_on(conn.batch("set-up", "BEGIN")).map_err(err)?;
    h.block_on(conn.query(
        "locking the store's set-up",
        "SELECT pg_advisory_xact_lock(hashtext('pgopt history ' || $1::text))",
        &[&schema.as_str()],
    ))
    .map_err(err)?;
    let row = h
        .block_on(conn.query_one(
            "reading the store's schema",
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                    EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                            WHERE n.nspname = $1 AND c.relname = 'meta' AND c.relkind IN ('r', 'p')), \
                    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))",
            &[&schema.as_str()],
        ))
        .map_err(err)?;
    let (has_schema, has_meta, relations): (bool, bool, i64) = (row.get(0), row.get(1), row.get(2));
    let not_a_store = |why: &str| {
        StoreError::NotAStore(format!(
            "{label} is not a pgopt history store ({why}); nothing was written to it. Pass another schema or database"
        ))
    };
    let mut db = PgTx { conn, handle: h };
    let version = if has_meta {
        match sql::read_meta(&mut db)? {
            Found::Foreign(why) => return Err(not_a_store(&why)),
            Found::Store(v) if v > sql::VERSION => {
                return Err(StoreError::TooNew(format!(
                    "{label} was written by a newer pgopt (store version {v}, this pgopt knows up to {}); nothing was written to it. Upgrade pgopt or use another schema",
                    sql::VERSION
                )))
            }
            Found::Store(v) => v,
        }
    } else if relations > 0 {
        return Err(not_a_store("it holds tables but no pgopt meta table"));
    } else {
        0
    };
    if !has_schema {
        h.block_on(conn.batch(
            "creating the store's schema",
            &format!("CREATE SCHEMA {schema}"),
        ))
        .map_err(err)?;
    }
    if version < sql::VERSION {
        for ddl in &MIGRATIONS[usize::try_from(version).unwrap_or(0)..] {
            h.block_on(conn.batch("creating the store's tables", ddl))
                .map_err(err)?;
        }
        sql::write_meta(&mut db, sql::VERSION)?;
    }
    h.block_on(conn.batch("set-up", "COMMIT")).map_err(err)
}

/// The statements of one transaction; blocking on the runtime for each.
struct PgTx<'a> {
    conn: &'a Conn,
    handle: &'a Handle,
}

fn boxed(params: &[Val]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Val::Null => Box::new(None::<i64>),
                Val::I(i) => Box::new(*i),
                Val::F(f) => Box::new(*f),
                Val::T(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

fn value(row: &tokio_postgres::Row, i: usize) -> Result<Val, StoreError> {
    let ty = row.columns()[i].type_();
    let bad = |e: tokio_postgres::Error| io("reading the PostgreSQL store", e);
    Ok(if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)
            .map_err(bad)?
            .map_or(Val::Null, Val::I)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)
            .map_err(bad)?
            .map_or(Val::Null, |v| Val::I(v.into()))
    } else if *ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)
            .map_err(bad)?
            .map_or(Val::Null, Val::F)
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)
            .map_err(bad)?
            .map_or(Val::Null, |b| Val::I(b.into()))
    } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
        row.try_get::<_, Option<String>>(i)
            .map_err(bad)?
            .map_or(Val::Null, Val::T)
    } else {
        return Err(StoreError::Io(format!(
            "internal: the store read a column of type {ty}"
        )));
    })
}

impl PgTx<'_> {
    async fn exec_async(&self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let b = boxed(params);
        let refs: Vec<&(dyn ToSql + Sync)> = b.iter().map(|v| v.as_ref() as _).collect();
        self.conn
            .execute("writing to the store", sql, &refs)
            .await
            .map_err(|e| io("cannot write the PostgreSQL store", e))
    }

    async fn rows_async(&self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        let b = boxed(params);
        let refs: Vec<&(dyn ToSql + Sync)> = b.iter().map(|v| v.as_ref() as _).collect();
        let rows = self
            .conn
            .query("reading the store", sql, &refs)
            .await
            .map_err(|e| io("cannot read the PostgreSQL store", e))?;
        rows.iter()
            .map(|r| (0..r.len()).map(|i| value(r, i)).collect())
            .collect()
    }
}

impl Db for PgTx<'_> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        self.handle.block_on(self.exec_async(sql, params))
    }

    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Vec<Val>>, StoreError> {
        self.handle.block_on(self.rows_async(sql, params))
    }

    fn insert_points(&mut self, points: &[(i64, i64, f64)]) -> Result<(), StoreError> {
        for chunk in points.chunks(CHUNK) {
            let series: Vec<i64> = chunk.iter().map(|p| p.0).collect();
            let at: Vec<i64> = chunk.iter().map(|p| p.1).collect();
            let value: Vec<f64> = chunk.iter().map(|p| p.2).collect();
            self.handle
                .block_on(self.conn.execute(
                    "writing points to the store",
                    "INSERT INTO points (series, at, value) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::float8[]) \
                 ON CONFLICT (series, at) DO UPDATE SET value = excluded.value",
                    &[&series, &at, &value],
                ))
                .map_err(|e| io("cannot write the PostgreSQL store", e))?;
        }
        Ok(())
    }
}

impl sql::Backend for PgStore {
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db, &mut SeriesCache) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        PgStore::tx(self, f)
    }

    fn with_cache(&self, f: &mut dyn FnMut(&mut SeriesCache)) {
        f(&mut self.lock().cache)
    }

    /// One maintenance at a time when several daemons share the store.
    fn before_maintain(&self, db: &mut dyn Db) -> Result<(), StoreError> {
        db.rows("SELECT id FROM rollup_state WHERE id = 1 FOR UPDATE", &[])?;
        Ok(())
    }

    fn size(&self) -> Result<u64, StoreError> {
        let schema = self.schema.as_str().to_string();
        self.tx(|db, _| {
            let rows = db.rows(
                "SELECT CAST(COALESCE(sum(pg_total_relation_size(c.oid)), 0) AS bigint) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relkind = 'r'",
                &[Val::T(schema.clone())],
            )?;
            Ok(rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| match v {
                    Val::I(i) => u64::try_from(*i).ok(),
                    _ => None,
                })
                .unwrap_or(0))
        })
    }
}
