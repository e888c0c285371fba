//! The ACGS governance database: the schema pgopt exists to make fast, a deterministic data
//! generator, and the named operations that `pgopt bench` runs against it.
//!
//! - [`deploy`] / [`drop_schema`]: the seven tables (primary and foreign keys only) in one schema;
//! - [`indexes`](mod@indexes): the five indexes ACGS named, the reference set the index
//!   advisor is compared against;
//! - [`seed`](mod@seed): realistic data at any scale, loaded with binary COPY;
//! - [`workload`](mod@workload): the governance operations with their parameter generators.
//!
//! The schema name reaches SQL only as an [`Ident`]: the DDL in `sql/schema.sql` is
//! unqualified and runs with `search_path` set (as a bind parameter) inside the deploy
//! transaction.

pub mod dist;
pub mod indexes;
pub mod seed;
pub mod workload;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::{Ident, QualifiedName};

pub use indexes::{create_indexes, IndexOptions, IndexOutcome, IndexSpec, ACGS_INDEXES};
pub use seed::{seed, SeedReport};
pub use workload::{governance_workload, Mix};

const SCHEMA_SQL: &str = include_str!("sql/schema.sql");
const TABLES_SQL: &str = include_str!("sql/tables.sql");

/// The schema used when none is given.
pub const DEFAULT_SCHEMA: &str = "governance";

/// The tables, parents before children (the order of loading).
pub const TABLES: &[&str] = &[
    "users",
    "constitutional_principles",
    "policy_rules",
    "governance_workflows",
    "security_events",
    "audit_logs",
    "compliance_checks",
];

/// Bound on every lock wait of deploy, seed and drop (set by [`in_transaction`]).
const DDL_LOCK_TIMEOUT: &str = "5s";

/// `schema.table`, quoted.
pub fn qualified(schema: &str, table: &str) -> QualifiedName {
    QualifiedName::new(schema, table)
}

/// Creates the schema and its tables when missing, in one transaction. Running it again
/// changes nothing.
pub async fn deploy(conn: &Conn, schema: &str) -> Result<()> {
    in_transaction(conn, "deploying the governance schema", async {
        conn.batch(
            "creating the governance schema",
            &format!("CREATE SCHEMA IF NOT EXISTS {}", Ident::new(schema)),
        )
        .await?;
        // search_path takes a list of identifiers: the quoted form keeps any name one entry.
        let path = Ident::new(schema).to_string();
        conn.query(
            "setting search_path",
            "SELECT set_config('search_path', $1, true)",
            &[&path],
        )
        .await?;
        conn.batch("creating the governance tables", SCHEMA_SQL)
            .await
    })
    .await
}

/// One table of a deployed schema, as [`describe`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableInfo {
    pub name: String,
    /// The planner's estimate (pg_class.reltuples; -1 before the first ANALYZE).
    pub estimated_rows: f64,
    pub total_bytes: i64,
}

/// The tables of `schema` (any table, not only ours), for printing what a drop removes.
pub async fn describe(conn: &Conn, schema: &str) -> Result<Vec<TableInfo>> {
    let rows = conn
        .query("listing the governance tables", TABLES_SQL, &[&schema])
        .await?;
    rows.iter()
        .map(|r| {
            Ok(TableInfo {
                name: r.try_get("name").map_err(|e| row_error("name", e))?,
                estimated_rows: r
                    .try_get::<_, f32>("reltuples")
                    .map_err(|e| row_error("reltuples", e))? as f64,
                total_bytes: r
                    .try_get("total_bytes")
                    .map_err(|e| row_error("total_bytes", e))?,
            })
        })
        .collect()
}

fn row_error(column: &str, e: tokio_postgres::Error) -> Error {
    Error::Internal(format!("reading column {column}: {e}"))
}

/// Drops `schema` with everything in it. Refuses a schema that does not exist or does not
/// look like a governance schema (no users or audit_logs table), so a typo cannot drop
/// someone else's data. Returns the tables that were dropped.
pub async fn drop_schema(conn: &Conn, schema: &str) -> Result<Vec<TableInfo>> {
    let tables = describe(conn, schema).await?;
    let exists: bool = conn
        .query_one(
            "looking for the schema",
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&schema],
        )
        .await?
        .get(0);
    if !exists {
        return Err(Error::BadInput(format!(
            "schema {} does not exist; nothing to drop",
            Ident::new(schema)
        )));
    }
    let has = |t: &str| tables.iter().any(|i| i.name == t);
    if !has("users") || !has("audit_logs") {
        return Err(Error::BadInput(format!(
            "schema {} does not look like a governance schema (it has no users and audit_logs \
             tables); refusing to drop it. Check --schema",
            Ident::new(schema)
        )));
    }
    in_transaction(conn, "dropping the governance schema", async {
        conn.batch(
            "dropping the governance schema",
            &format!("DROP SCHEMA {} CASCADE", Ident::new(schema)),
        )
        .await
    })
    .await?;
    Ok(tables)
}

/// `SET LOCAL name = value`, the value a bind parameter.
pub(crate) async fn set_local(conn: &Conn, name: &str, value: &str) -> Result<()> {
    conn.query(
        "setting a transaction parameter",
        "SELECT set_config($1, $2, true)",
        &[&name, &value],
    )
    .await?;
    Ok(())
}

/// Runs `body` between BEGIN and COMMIT, every lock wait bounded by [`DDL_LOCK_TIMEOUT`];
/// rolls back when it fails.
pub(crate) async fn in_transaction<T>(
    conn: &Conn,
    context: &str,
    body: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    conn.batch(context, "BEGIN").await?;
    let body = async {
        set_local(conn, "lock_timeout", DDL_LOCK_TIMEOUT).await?;
        body.await
    };
    match body.await {
        Ok(v) => {
            conn.batch(context, "COMMIT").await?;
            Ok(v)
        }
        Err(e) => {
            if let Err(rb) = conn.batch(context, "ROLLBACK").await {
                tracing::warn!("rollback after a failed {context}: {rb}");
            }
            Err(e)
        }
    }
}
