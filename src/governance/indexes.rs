//! The five indexes ACGS named for its access paths: the known-good reference set that
//! benchmarks compare the index advisor's advice against.
//!
//! Each is built with CREATE INDEX CONCURRENTLY (one statement at a time, outside any
//! transaction, under a lock_timeout), then checked in pg_index: an invalid leftover of a
//! failed or interrupted build is dropped and built again, once.

use std::time::{Duration, Instant};

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;

use super::qualified;

const INDEX_STATE_SQL: &str = include_str!("sql/index_state.sql");

/// One index of the reference set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
    /// A boolean column: the index covers only the rows where it is true.
    pub partial_on: Option<&'static str>,
}

impl IndexSpec {
    /// The CREATE INDEX CONCURRENTLY statement for `schema`, every name quoted.
    pub fn create_sql(&self, schema: &str) -> String {
        let cols = self
            .columns
            .iter()
            .map(|c| Ident::new(*c).to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let predicate = self
            .partial_on
            .map(|c| format!(" WHERE {}", Ident::new(c)))
            .unwrap_or_default();
        format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({cols}){predicate}",
            Ident::new(self.name),
            qualified(schema, self.table)
        )
    }

    fn drop_sql(&self, schema: &str) -> String {
        format!(
            "DROP INDEX CONCURRENTLY IF EXISTS {}",
            qualified(schema, self.name)
        )
    }
}

/// The ACGS reference set (shared/DESIGN.md, the governance domain).
pub const ACGS_INDEXES: &[IndexSpec] = &[
    IndexSpec {
        name: "idx_users_email_active",
        table: "users",
        columns: &["email"],
        partial_on: Some("is_active"),
    },
    IndexSpec {
        name: "idx_users_username_active",
        table: "users",
        columns: &["username"],
        partial_on: Some("is_active"),
    },
    IndexSpec {
        name: "idx_security_events_user_timestamp",
        table: "security_events",
        columns: &["user_id", "occurred_at"],
        partial_on: None,
    },
    // Equality on the first three, then occurred_at read backwards: "newest first" needs no sort.
    IndexSpec {
        name: "idx_audit_logs_resource_action",
        table: "audit_logs",
        columns: &["resource_type", "resource_id", "action", "occurred_at"],
        partial_on: None,
    },
    IndexSpec {
        name: "idx_policy_rules_name_active",
        table: "policy_rules",
        columns: &["name"],
        partial_on: Some("is_active"),
    },
];

/// Bounds of the index builds.
#[derive(Debug, Clone, Copy)]
pub struct IndexOptions {
    /// How long a build may wait for its lock before giving up (and being retried once).
    pub lock_timeout: Duration,
    /// How long one build may run.
    pub build_timeout: Duration,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            lock_timeout: Duration::from_secs(5),
            build_timeout: Duration::from_secs(30 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexStatus {
    /// Built now.
    Created,
    /// It was there and valid; nothing done.
    AlreadyValid,
    /// An invalid leftover was dropped and the index built again.
    Rebuilt,
}

#[derive(Debug, Clone)]
pub struct IndexOutcome {
    pub name: &'static str,
    pub table: &'static str,
    pub status: IndexStatus,
    pub elapsed: Duration,
}

/// Builds the five ACGS indexes in `schema`. The session's lock_timeout and
/// statement_timeout are set for the builds and restored afterwards.
pub async fn create_indexes(
    conn: &Conn,
    schema: &str,
    opts: &IndexOptions,
) -> Result<Vec<IndexOutcome>> {
    for spec in ACGS_INDEXES {
        let found: Option<String> = conn
            .query_one(
                "looking for the governance tables",
                "SELECT to_regclass($1)::text",
                &[&qualified(schema, spec.table).to_string()],
            )
            .await?
            .get(0);
        if found.is_none() {
            return Err(Error::BadInput(format!(
                "table {} does not exist; run `pgopt governance deploy --schema {schema}` first",
                qualified(schema, spec.table)
            )));
        }
    }
    let before = conn
        .query_one(
            "reading the session timeouts",
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')",
            &[],
        )
        .await?;
    let (lock_before, statement_before): (String, String) = (before.get(0), before.get(1));
    set_session(conn, "lock_timeout", &ms(opts.lock_timeout)).await?;
    set_session(conn, "statement_timeout", &ms(opts.build_timeout)).await?;

    let mut outcomes = Vec::new();
    let mut result = Ok(());
    for spec in ACGS_INDEXES {
        match create_one(conn, schema, spec, opts).await {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    let restored = async {
        set_session(conn, "lock_timeout", &lock_before).await?;
        set_session(conn, "statement_timeout", &statement_before).await
    }
    .await;
    result?;
    restored?;
    Ok(outcomes)
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

async fn set_session(conn: &Conn, name: &str, value: &str) -> Result<()> {
    conn.query(
        "setting a session parameter",
        "SELECT set_config($1, $2, false)",
        &[&name, &value],
    )
    .await?;
    Ok(())
}

/// Some(valid) when the index exists.
async fn index_state(conn: &Conn, schema: &str, name: &str) -> Result<Option<bool>> {
    Ok(conn
        .query_opt("checking the index", INDEX_STATE_SQL, &[&schema, &name])
        .await?
        .map(|r| r.get(0)))
}

async fn create_one(
    conn: &Conn,
    schema: &str,
    spec: &IndexSpec,
    opts: &IndexOptions,
) -> Result<IndexOutcome> {
    let started = Instant::now();
    let mut rebuilt = false;
    match index_state(conn, schema, spec.name).await? {
        Some(true) => {
            return Ok(IndexOutcome {
                name: spec.name,
                table: spec.table,
                status: IndexStatus::AlreadyValid,
                elapsed: started.elapsed(),
            })
        }
        Some(false) => {
            tracing::info!("dropping the invalid leftover {}", spec.name);
            run_alone(conn, &spec.drop_sql(schema), opts).await?;
            rebuilt = true;
        }
        None => {}
    }
    let mut last_error = None;
    for attempt in 1..=2 {
        let built = run_alone(conn, &spec.create_sql(schema), opts).await;
        match (built, index_state(conn, schema, spec.name).await?) {
            (Ok(()), Some(true)) => {
                return Ok(IndexOutcome {
                    name: spec.name,
                    table: spec.table,
                    status: if rebuilt {
                        IndexStatus::Rebuilt
                    } else {
                        IndexStatus::Created
                    },
                    elapsed: started.elapsed(),
                })
            }
            (outcome, state) => {
                tracing::warn!(
                    "building {} (attempt {attempt}) left it {state:?}: {:?}",
                    spec.name,
                    outcome.as_ref().err()
                );
                if state == Some(false) {
                    run_alone(conn, &spec.drop_sql(schema), opts).await?;
                    rebuilt = true;
                }
                last_error = Some(match outcome {
                    Err(e) => e,
                    Ok(()) => Error::Internal(format!(
                        "{} was built but is not valid in pg_index",
                        spec.name
                    )),
                });
            }
        }
    }
    let e = last_error.expect("two failed attempts");
    Err(Error::Internal(format!(
        "could not build {} on {} after a retry: {e}. Check for long transactions holding \
         locks on the table (pg_stat_activity) and run `pgopt governance indexes` again",
        spec.name,
        qualified(schema, spec.table)
    )))
}

/// Runs one statement alone (never inside a transaction), bounded by the build timeout.
async fn run_alone(conn: &Conn, sql: &str, opts: &IndexOptions) -> Result<()> {
    let limit = opts.build_timeout + Duration::from_secs(5);
    match tokio::time::timeout(limit, conn.client().batch_execute(sql)).await {
        Ok(r) => r.map_err(|e| Error::query("building an ACGS index", e)),
        Err(_) => {
            conn.cancel_running().await;
            Err(Error::Timeout {
                what: "building an ACGS index".into(),
                after: limit,
                next_step: Some("raise the build timeout or build it off-peak".into()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_every_name() {
        let s = ACGS_INDEXES[0].create_sql(r#"x"y"#);
        assert_eq!(
            s,
            r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_users_email_active" ON "x""y"."users" ("email") WHERE "is_active""#
        );
        assert_eq!(
            ACGS_INDEXES[3].create_sql("governance"),
            r#"CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_audit_logs_resource_action" ON "governance"."audit_logs" ("resource_type", "resource_id", "action", "occurred_at")"#
        );
    }
}
