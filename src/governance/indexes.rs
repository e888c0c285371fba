//! The five indexes ACGS named for its access paths: the known-good reference set that
//! benchmarks compare the index advisor's advice against.
//!
//! Each is a CREATE INDEX CONCURRENTLY step of a [`Plan`] run by the one executor
//! ([`crate::apply`]): under the pgopt advisory lock, one statement at a time outside any
//! transaction, under a lock_timeout (retried once on a lock timeout), re-checked absent
//! before it runs (an invalid leftover of a failed or interrupted build is dropped first) and
//! checked valid in pg_index after. A build that fails or is interrupted leaves no invalid
//! index behind.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::apply::{self, OnFailure, Reconnect, StepState};
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;
use crate::plan::{Plan, Step};
use crate::progress::Progress;

use super::qualified;

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
    /// The CREATE INDEX CONCURRENTLY step for `schema`, every name quoted.
    pub fn step(&self, schema: &str) -> Step {
        let predicate = self.partial_on.map(|c| Ident::new(c).to_string());
        Step::create_index(
            schema,
            self.name,
            self.table,
            self.columns,
            predicate.as_deref(),
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
#[derive(Clone)]
pub struct IndexOptions {
    /// How long a build may wait for its lock before giving up (and being retried once).
    pub lock_timeout: Duration,
    /// How long one build may run.
    pub build_timeout: Duration,
    /// How long to wait for another pgopt run changing the server.
    pub lock_wait: Duration,
    /// Becomes true on Ctrl-C: the running build is cancelled and its leftover dropped.
    pub interrupt: Option<watch::Receiver<bool>>,
    /// Where the builds' progress goes (steps, and each build's phase, blocks and tuples).
    pub progress: Option<Arc<dyn Progress>>,
    /// Opens the second session that watches a build's progress.
    pub reconnect: Option<Arc<dyn Reconnect>>,
}

impl std::fmt::Debug for IndexOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexOptions")
            .field("lock_timeout", &self.lock_timeout)
            .field("build_timeout", &self.build_timeout)
            .field("lock_wait", &self.lock_wait)
            .field("interrupt", &self.interrupt.is_some())
            .field("progress", &self.progress.is_some())
            .field("reconnect", &self.reconnect.is_some())
            .finish()
    }
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            lock_timeout: Duration::from_secs(5),
            build_timeout: Duration::from_secs(30 * 60),
            lock_wait: Duration::from_secs(10),
            interrupt: None,
            progress: None,
            reconnect: None,
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
    /// Ctrl-C cancelled its build; nothing of it is left. The indexes after it were not
    /// started.
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct IndexOutcome {
    pub name: &'static str,
    pub table: &'static str,
    pub status: IndexStatus,
    pub elapsed: Duration,
}

/// The plan that builds the five ACGS indexes in `schema`.
pub fn plan(schema: &str) -> Plan {
    let mut p = Plan::new();
    for spec in ACGS_INDEXES {
        p.push(spec.step(schema));
    }
    p
}

/// Builds the five ACGS indexes in `schema` on the executor. The session's lock_timeout and
/// statement_timeout are set for each build and restored afterwards. A failed build stops
/// the run; the indexes already built stay (a rerun skips them).
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
    let exec = apply::Options {
        lock_wait: opts.lock_wait,
        lock_timeout: opts.lock_timeout,
        statement_timeout: opts.build_timeout,
        lock_retries: 1,
        on_failure: OnFailure::Stop,
        interrupt: opts.interrupt.clone(),
        rollback_command: "pgopt tune --rollback".into(),
        progress: opts.progress.clone(),
        reconnect: opts.reconnect.clone(),
        restart: None,
        budget: None,
    };
    let report = apply::run(conn, &plan(schema), None, &exec)
        .await
        .map_err(|e| {
            Error::BadInput(format!(
                "{e}. Check for long transactions holding locks on the tables \
                 (pg_stat_activity) and run `pgopt governance indexes` again"
            ))
        })?;
    Ok(report
        .steps
        .iter()
        .map(|s| {
            let spec = &ACGS_INDEXES[s.index];
            IndexOutcome {
                name: spec.name,
                table: spec.table,
                status: match s.state {
                    StepState::Done if s.dropped_leftover => IndexStatus::Rebuilt,
                    StepState::Done => IndexStatus::Created,
                    StepState::Failed => IndexStatus::Interrupted,
                    _ => IndexStatus::AlreadyValid,
                },
                elapsed: s.elapsed,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_quote_every_name() {
        let s = ACGS_INDEXES[0].step(r#"x"y"#);
        assert_eq!(
            s.action.sql().unwrap(),
            r#"CREATE INDEX CONCURRENTLY "idx_users_email_active" ON "x""y"."users" ("email") WHERE "is_active""#
        );
        assert!(!s.transactional);
        assert_eq!(
            ACGS_INDEXES[3].step("governance").action.sql().unwrap(),
            r#"CREATE INDEX CONCURRENTLY "idx_audit_logs_resource_action" ON "governance"."audit_logs" ("resource_type", "resource_id", "action", "occurred_at")"#
        );
    }
}
