//! What-if costing: the plan cost of each statement with no new index and with sets of
//! candidate indexes, collected once so that the selection after it is pure.
//!
//! Two ways to make an index exist for the planner only:
//! - [`Mode::Hypothetical`] (the default): HypoPG's hypothetical indexes, which only a plain
//!   `EXPLAIN` in the creating session sees. The session is made read-only
//!   (`default_transaction_read_only`): EXPLAIN of INSERT, UPDATE and DELETE, PREPARE and
//!   HypoPG's functions all work there, and nothing the workload's text says can write.
//! - [`Mode::TrialReal`]: a real index built inside a transaction that is always rolled back
//!   (`BEGIN; CREATE INDEX ..; EXPLAIN ..; ROLLBACK`), for servers without HypoPG (embedded
//!   clusters, `--trial-real-indexes`). The build holds a SHARE lock on the table until the
//!   rollback: writers of that table wait (bounded by `lock_timeout`).
//!
//! For each statement with candidates: its base cost; with each of its candidates alone; with
//! all of them at once (the candidates that plan used are recorded); and, when that plan used
//! several (a join, a BitmapOr over an OR), with the set it used and each pair of it. Each
//! (statement, set) is planned once. A statement with `$n` parameters is planned with a generic
//! plan: `PREPARE`, then `EXPLAIN EXECUTE name(NULL, ..)` under `plan_cache_mode =
//! force_generic_plan`, prepared again for every index set because a cached generic plan does
//! not see hypothetical indexes made after it.
//!
//! HypoPG 1.3.1 (the one Debian ships for PostgreSQL 15) has no `hypopg_hide_index` (1.4
//! added it), so a candidate that must not take part in a set is dropped
//! (`hypopg_drop_index`) and made again when a later set needs it. It takes its OIDs from the
//! unused ones below FirstNormalObjectId (16384): at most `16384 - (max(pg_class.oid below
//! 16384) + 1)` hypothetical indexes (about 2,500-2,800 on PostgreSQL 15) exist at once in a
//! session, and after that many have been made the search for a free OID slows down until
//! `hypopg_reset()`. This module keeps far fewer at once and works in batches: after
//! [`WhatIfOptions::batch`] creations (1,000 by default), or when half the OID range would be
//! in use, it calls `hypopg_reset()` and makes again what the next plan needs.
//!
//! An EXPLAIN that fails or runs past its timeout is recorded in `Costs::failed` and the rest
//! goes on; a lost connection ends the run with an error.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::{Ident, QualifiedName};
use crate::indexes::model::{
    Candidate, CandidateId, CandidateSet, Costed, Costs, Query, QueryId, Reason,
};
use crate::progress::{Event, Kind, Progress, Unit};
use tokio_postgres::types::Type;

/// PostgreSQL's FirstNormalObjectId: HypoPG's fake OIDs are the free ones below it.
const FIRST_NORMAL_OBJECT_ID: i64 = 16384;

/// Hypothetical indexes made in a session before `hypopg_reset()` starts HypoPG's OID search
/// afresh (well below the ~2,500 it can hand out before the search slows down).
pub const DEFAULT_BATCH: usize = 1000;

/// How a candidate is made to exist for the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// HypoPG hypothetical indexes (no write, no lock beyond EXPLAIN's).
    #[default]
    Hypothetical,
    /// Real indexes built in a transaction that is rolled back.
    TrialReal,
}

/// How the costing runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatIfOptions {
    /// Bound of every EXPLAIN (and of every trial index build); never longer than the
    /// connection's own statement_timeout.
    pub statement_timeout: Duration,
    pub mode: Mode,
    /// `lock_timeout` of a trial index build ([`Mode::TrialReal`]): how long it may wait for
    /// writers of the table to finish.
    pub lock_timeout: Duration,
    /// Hypothetical indexes made between two `hypopg_reset()` calls ([`DEFAULT_BATCH`]).
    pub batch: usize,
}

impl Default for WhatIfOptions {
    fn default() -> Self {
        WhatIfOptions {
            statement_timeout: Duration::from_secs(10),
            mode: Mode::Hypothetical,
            lock_timeout: Duration::from_secs(5),
            batch: DEFAULT_BATCH,
        }
    }
}

/// Whether HypoPG can be used in the connected database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HypoPg {
    /// `CREATE EXTENSION hypopg` was run in this database: its schema and version.
    Installed { schema: String, version: String },
    /// The server has it, but this database has not created it.
    Available { version: String },
    /// The server has no HypoPG.
    Missing,
}

/// Whether HypoPG is installed, available or missing in the connected database.
pub async fn hypopg_status(conn: &Conn) -> Result<HypoPg> {
    let decode = |e| Error::query("reading the extension catalogs", e);
    let installed = conn
        .query_opt(
            "checking for HypoPG",
            "SELECT e.extversion, n.nspname::text FROM pg_catalog.pg_extension e \
             JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'",
            &[],
        )
        .await?;
    if let Some(r) = installed {
        return Ok(HypoPg::Installed {
            version: r.try_get(0).map_err(decode)?,
            schema: r.try_get(1).map_err(decode)?,
        });
    }
    let available = conn
        .query_opt(
            "checking for HypoPG",
            "SELECT default_version FROM pg_catalog.pg_available_extensions WHERE name = 'hypopg'",
            &[],
        )
        .await?;
    Ok(match available {
        Some(r) => HypoPg::Available {
            version: r.try_get(0).map_err(decode)?,
        },
        None => HypoPg::Missing,
    })
}

/// Ok when HypoPG is installed in the connected database; else an error that says how to get
/// it (`CREATE EXTENSION hypopg;`, or the package to install) and that
/// `--trial-real-indexes` costs without it.
pub async fn check_hypopg(conn: &Conn) -> Result<()> {
    match hypopg_status(conn).await? {
        HypoPg::Installed { .. } => Ok(()),
        HypoPg::Available { version } => Err(not_created_error(&conn.database, &version)),
        HypoPg::Missing => Err(missing_error(conn.server_version_num / 10000)),
    }
}

/// The error for a server that has HypoPG where this database has not created it.
pub fn not_created_error(database: &str, version: &str) -> Error {
    // Bad input (exit 2): the user has something to do before pgopt can cost anything.
    Error::BadInput(format!(
        "costing candidate indexes: the hypopg extension ({version}) is available but not \
         created in database {}: run `CREATE EXTENSION hypopg;` in that database (it needs the \
         CREATE privilege on the database), or pass --trial-real-indexes to cost with real \
         indexes built in a rolled-back transaction",
        Ident::new(database)
    ))
}

/// The error for a server without HypoPG, for PostgreSQL `major`.
pub fn missing_error(major: i32) -> Error {
    Error::BadInput(format!(
        "costing candidate indexes: the hypopg extension is not installed on the server: \
         install it on the server (Debian/Ubuntu: `apt-get install postgresql-{major}-hypopg`; \
             RHEL: the hypopg_{major} package from the PGDG repository; or build it from source: \
             https://github.com/HypoPG/hypopg, `make && make install` with pg_config on the PATH), \
             then run `CREATE EXTENSION hypopg;` in the database; or pass --trial-real-indexes \
             to cost with real indexes built in a rolled-back transaction (they hold a SHARE \
             lock on the table while they are built)"
    ))
}

/// Plans every statement of `queries` with the candidate sets described in the module
/// header. `set.per_query[q]` lists the candidates of query `q`.
pub async fn cost(
    conn: &Conn,
    queries: &[Query],
    set: &CandidateSet,
    opts: &WhatIfOptions,
    progress: &dyn Progress,
) -> Result<Costs> {
    let hypopg_schema = match opts.mode {
        Mode::Hypothetical => match hypopg_status(conn).await? {
            HypoPg::Installed { schema, .. } => Some(Ident::new(schema)),
            HypoPg::Available { version } => {
                return Err(not_created_error(&conn.database, &version))
            }
            HypoPg::Missing => return Err(missing_error(conn.server_version_num / 10000)),
        },
        Mode::TrialReal => {
            if conn.transaction_read_only || conn.in_recovery {
                return Err(Error::BadInput(
                    "--trial-real-indexes builds indexes (rolled back after each plan) and \
                     needs a writable primary; this session is read-only. Install HypoPG \
                     instead (hypothetical indexes work on a read-only session and a standby)"
                        .to_string(),
                ));
            }
            None
        }
    };
    let timeout = opts.statement_timeout.min(conn.statement_timeout());
    let saved = Settings::save(conn).await?;
    let mut session = Session {
        conn,
        mode: opts.mode,
        hypopg: hypopg_schema,
        lock_timeout: opts.lock_timeout,
        batch: opts.batch.max(1),
        present: BTreeMap::new(),
        made_since_reset: 0,
        limit: 0,
        prepared: 0,
        parameters: None,
        undeallocated: Vec::new(),
        candidates: &set.candidates,
        costs: Costs {
            base: vec![None; queries.len()],
            ..Costs::default()
        },
    };
    let run = async {
        session.setup(timeout).await?;
        let total = queries.len() as u64;
        for (q, query) in queries.iter().enumerate() {
            progress.event(
                Event::update("costing", Unit::Steps, q as u64, Some(total))
                    .step(format!("statement {} of {total}", q + 1)),
            );
            // What cannot be planned at all is not asked; the rest gets at least its base
            // cost (the workload's cost counts every statement).
            let unplannable = set.left_alone.iter().any(|(x, r)| {
                *x == q
                    && matches!(
                        r,
                        Reason::NotParseable { .. }
                            | Reason::NotIndexable
                            | Reason::UnknownTable { .. }
                    )
            });
            if unplannable {
                continue;
            }
            let ids = set.per_query.get(q).cloned().unwrap_or_default();
            session.cost_query(q, query, &ids).await?;
        }
        progress
            .event(Event::update("costing", Unit::Steps, total, Some(total)).kind(Kind::Finish));
        session.reset().await
    };
    let result = run.await;
    // Put the session back as it was, unless the connection is gone.
    match result {
        Ok(()) => {
            saved.restore(conn).await?;
            Ok(session.costs)
        }
        Err(e) => {
            if !e.is_connection_lost() {
                let _ = saved.restore(conn).await;
            }
            Err(e)
        }
    }
}

/// The session settings the costing changes, as they were before.
struct Settings {
    statement_timeout: String,
    read_only: String,
    plan_cache_mode: String,
}

impl Settings {
    async fn save(conn: &Conn) -> Result<Settings> {
        let row = conn
            .query_one(
                "reading session settings",
                "SELECT current_setting('statement_timeout'), \
                 current_setting('default_transaction_read_only'), \
                 current_setting('plan_cache_mode')",
                &[],
            )
            .await?;
        let get = |i: usize| -> Result<String> {
            row.try_get(i)
                .map_err(|e| Error::query("reading session settings", e))
        };
        Ok(Settings {
            statement_timeout: get(0)?,
            read_only: get(1)?,
            plan_cache_mode: get(2)?,
        })
    }

    async fn restore(&self, conn: &Conn) -> Result<()> {
        set(conn, "statement_timeout", &self.statement_timeout).await?;
        set(conn, "default_transaction_read_only", &self.read_only).await?;
        set(conn, "plan_cache_mode", &self.plan_cache_mode).await
    }
}

/// `set_config(name, value, false)`: the value as a bind parameter.
async fn set(conn: &Conn, name: &str, value: &str) -> Result<()> {
    conn.query_one(
        "setting a session parameter for costing",
        "SELECT set_config($1, $2, false)",
        &[&name, &value],
    )
    .await
    .map(|_| ())
}

/// One hypothetical index that exists in the session now.
struct Present {
    oid: u32,
    name: String,
}

/// The costing session's state.
struct Session<'a> {
    conn: &'a Conn,
    mode: Mode,
    /// Schema of the hypopg functions (Hypothetical mode).
    hypopg: Option<Ident>,
    lock_timeout: Duration,
    /// Hypothetical indexes that exist now, by candidate.
    present: BTreeMap<CandidateId, Present>,
    made_since_reset: usize,
    /// Creations between two resets.
    batch: usize,
    /// How many hypothetical indexes HypoPG can hold at once in this session.
    limit: usize,
    /// Prepared statements made so far (for unique names).
    prepared: u64,
    /// The number of `$n` parameters of the statement being costed, once known.
    parameters: Option<i32>,
    /// Prepared statements whose DEALLOCATE failed in an aborted transaction.
    undeallocated: Vec<Ident>,
    candidates: &'a [Candidate],
    costs: Costs,
}

/// A failed plan: the statement's own problem (recorded), or the connection's (the end).
enum Failure {
    Statement(String),
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        if e.is_connection_lost() {
            Failure::Fatal(e)
        } else {
            Failure::Statement(e.to_string())
        }
    }
}

/// One plan: its total cost and the names of the indexes it scans.
struct Plan {
    cost: f64,
    index_names: BTreeSet<String>,
}

impl<'a> Session<'a> {
    fn hypopg_fn(&self, name: &str) -> String {
        match &self.hypopg {
            Some(schema) => format!("{schema}.{}", Ident::new(name)),
            None => Ident::new(name).to_string(),
        }
    }

    async fn setup(&mut self, timeout: Duration) -> Result<()> {
        let ms = timeout.as_millis().to_string();
        set(self.conn, "statement_timeout", &ms).await?;
        set(self.conn, "plan_cache_mode", "force_generic_plan").await?;
        if self.mode == Mode::Hypothetical {
            set(self.conn, "default_transaction_read_only", "on").await?;
            let row = self
                .conn
                .query_one(
                    "reading HypoPG's OID range",
                    "SELECT $1::int8 - (max(oid::int8) + 1) FROM pg_catalog.pg_class \
                     WHERE oid::int8 < $1::int8",
                    &[&FIRST_NORMAL_OBJECT_ID],
                )
                .await?;
            let free: Option<i64> = row
                .try_get(0)
                .map_err(|e| Error::query("reading HypoPG's OID range", e))?;
            self.limit = free.unwrap_or(0).max(2) as usize;
            self.reset().await?;
        }
        Ok(())
    }

    /// Drops every hypothetical index of the session.
    async fn reset(&mut self) -> Result<()> {
        if self.mode == Mode::Hypothetical {
            let sql = format!("SELECT {}()", self.hypopg_fn("hypopg_reset"));
            self.conn.query("resetting HypoPG", &sql, &[]).await?;
            self.present.clear();
            self.made_since_reset = 0;
        }
        Ok(())
    }

    async fn cost_query(&mut self, q: QueryId, query: &Query, ids: &[CandidateId]) -> Result<()> {
        let mut ids: Vec<CandidateId> = ids
            .iter()
            .copied()
            .filter(|c| *c < self.candidates.len())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let text = statement_text(&query.text);
        self.parameters = None;

        // The base plan first: a statement that cannot be planned is not costed further.
        if let Err(e) = self.cost_set(q, text, query.has_parameters(), &[]).await {
            return match e {
                Failure::Fatal(e) => Err(e),
                Failure::Statement(msg) => {
                    self.costs.failed.insert(q, msg);
                    Ok(())
                }
            };
        }
        let mut sets: Vec<Vec<CandidateId>> = ids.iter().map(|c| vec![*c]).collect();
        if ids.len() > 1 {
            sets.push(ids.clone());
        }
        let mut i = 0;
        while i < sets.len() {
            let s = sets[i].clone();
            i += 1;
            if s.iter()
                .any(|c| self.costs.candidate_failed.contains_key(c))
            {
                continue;
            }
            match self.cost_set(q, text, query.has_parameters(), &s).await {
                Ok(costed) => {
                    // The all-at-once plan used several: cost what it used, and each pair.
                    if s.len() > 1 && s == ids && costed.used.len() > 1 {
                        let used = costed.used.clone();
                        if used != s {
                            sets.push(used.clone());
                        }
                        for (a, x) in used.iter().enumerate() {
                            for y in &used[a + 1..] {
                                let pair = vec![*x, *y];
                                if pair != used {
                                    sets.push(pair);
                                }
                            }
                        }
                    }
                }
                Err(Failure::Fatal(e)) => return Err(e),
                // One set that fails to plan (a timeout with more indexes) is left out; the
                // statement keeps its other costs.
                Err(Failure::Statement(msg)) => {
                    tracing::debug!("costing statement {q} with {s:?}: {msg}");
                }
            }
        }
        Ok(())
    }

    /// The plan of query `q` with exactly the candidates `set` (sorted) added, cached.
    async fn cost_set(
        &mut self,
        q: QueryId,
        text: &str,
        parameters: bool,
        set: &[CandidateId],
    ) -> std::result::Result<Costed, Failure> {
        if set.is_empty() {
            if let Some(Some(cost)) = self.costs.base.get(q) {
                return Ok(Costed {
                    cost: *cost,
                    used: Vec::new(),
                });
            }
        } else if let Some(c) = self.costs.with.get(&(q, set.to_vec())) {
            return Ok(c.clone());
        }
        let costed = match self.mode {
            Mode::Hypothetical => self.plan_hypothetical(text, parameters, set).await?,
            Mode::TrialReal => self.plan_trial(text, parameters, set).await?,
        };
        if set.is_empty() {
            self.costs.base[q] = Some(costed.cost);
        } else {
            self.costs.with.insert((q, set.to_vec()), costed.clone());
        }
        Ok(costed)
    }

    async fn plan_hypothetical(
        &mut self,
        text: &str,
        parameters: bool,
        set: &[CandidateId],
    ) -> std::result::Result<Costed, Failure> {
        // Hide (drop) the present candidates on the tables of this set's statement that are
        // not in the set; make the missing ones.
        let mut hide: Vec<CandidateId> = self
            .present
            .keys()
            .copied()
            .filter(|c| !set.contains(c))
            .collect();
        // Candidates on other tables may stay: a plan that does not use an index costs the
        // same without it. One that the plan uses is dropped and the plan made again below.
        hide.retain(|c| self.is_near(*c, set));
        self.drop_hypothetical(&hide)
            .await
            .map_err(Failure::Fatal)?;
        self.make_hypothetical(set).await?;
        loop {
            let plan = self.explain(text, parameters).await?;
            let mut used = Vec::new();
            let mut stray = Vec::new();
            for (c, p) in &self.present {
                if plan.index_names.contains(&p.name) {
                    if set.contains(c) {
                        used.push(*c);
                    } else {
                        stray.push(*c);
                    }
                }
            }
            if stray.is_empty() {
                return Ok(Costed {
                    cost: plan.cost,
                    used,
                });
            }
            self.drop_hypothetical(&stray)
                .await
                .map_err(Failure::Fatal)?;
        }
    }

    /// Whether present candidate `c` must go before planning `set`: it is on a table of a
    /// candidate of the set (with an empty set every present one goes: the base plan is
    /// planned once per statement).
    fn is_near(&self, c: CandidateId, set: &[CandidateId]) -> bool {
        if set.is_empty() {
            return true;
        }
        let cand = &self.candidates[c];
        set.iter().any(|s| {
            let other = &self.candidates[*s];
            other.schema == cand.schema && other.table == cand.table
        })
    }

    async fn drop_hypothetical(&mut self, ids: &[CandidateId]) -> Result<()> {
        let oids: Vec<u32> = ids
            .iter()
            .filter_map(|c| self.present.get(c).map(|p| p.oid))
            .collect();
        if oids.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT {}(o) FROM unnest($1::oid[]) AS o",
            self.hypopg_fn("hypopg_drop_index")
        );
        self.conn
            .query_typed(
                "dropping hypothetical indexes",
                &sql,
                &[(&oids, Type::OID_ARRAY)],
            )
            .await?;
        for c in ids {
            self.present.remove(c);
        }
        Ok(())
    }

    /// Makes the hypothetical indexes of `set` that do not exist yet, in one statement; when
    /// it fails, one at a time, so that the candidate HypoPG refuses is known (and recorded in
    /// `candidate_failed`).
    async fn make_hypothetical(&mut self, set: &[CandidateId]) -> std::result::Result<(), Failure> {
        let missing: Vec<CandidateId> = set
            .iter()
            .copied()
            .filter(|c| !self.present.contains_key(c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let room = (self.limit / 2).min(self.batch);
        if self.present.len() + missing.len() > self.limit / 2
            || self.made_since_reset + missing.len() > self.batch
        {
            if missing.len() > room {
                return Err(Failure::Statement(format!(
                    "{} candidate indexes at once exceed what HypoPG holds in a session here \
                     ({room})",
                    missing.len()
                )));
            }
            self.reset().await.map_err(Failure::Fatal)?;
            return Box::pin(self.make_hypothetical(set)).await;
        }
        match self.create_hypothetical(&missing).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_connection_lost() => Err(Failure::Fatal(e)),
            Err(_) if missing.len() > 1 => {
                // The indexes made before the failing one stay in HypoPG (its state is not
                // transactional) without being known here: start again from nothing, then
                // one at a time.
                self.reset().await.map_err(Failure::Fatal)?;
                let missing: Vec<CandidateId> = set.to_vec();
                let mut first = None;
                for c in &missing {
                    match self.create_hypothetical(&[*c]).await {
                        Ok(()) => {}
                        Err(e) if e.is_connection_lost() => return Err(Failure::Fatal(e)),
                        Err(e) => {
                            first.get_or_insert_with(|| e.to_string());
                            self.costs.candidate_failed.insert(*c, e.to_string());
                        }
                    }
                }
                match first {
                    Some(msg) => Err(Failure::Statement(msg)),
                    None => Ok(()),
                }
            }
            Err(e) => {
                self.costs
                    .candidate_failed
                    .insert(missing[0], e.to_string());
                Err(Failure::Statement(e.to_string()))
            }
        }
    }

    async fn create_hypothetical(&mut self, ids: &[CandidateId]) -> Result<()> {
        let ddls: Vec<String> = ids
            .iter()
            .map(|c| {
                let cand = &self.candidates[*c];
                cand.ddl(&cand.index_name(), false)
            })
            .collect();
        let sql = format!(
            "SELECT d.n, h.indexrelid, h.indexname, {size}(h.indexrelid) \
             FROM unnest($1::text[]) WITH ORDINALITY AS d(ddl, n) \
             CROSS JOIN LATERAL {create}(d.ddl) AS h ORDER BY d.n",
            size = self.hypopg_fn("hypopg_relation_size"),
            create = self.hypopg_fn("hypopg_create_index"),
        );
        let rows = self
            .conn
            .query_typed(
                "creating hypothetical indexes",
                &sql,
                &[(&ddls, Type::TEXT_ARRAY)],
            )
            .await?;
        if rows.len() != ids.len() {
            return Err(Error::Internal(format!(
                "hypopg_create_index made {} indexes for {} statements",
                rows.len(),
                ids.len()
            )));
        }
        let decode = |e| Error::query("reading hypopg_create_index", e);
        for row in rows {
            let n: i64 = row.try_get(0).map_err(decode)?;
            let oid: u32 = row.try_get(1).map_err(decode)?;
            let name: String = row.try_get(2).map_err(decode)?;
            let size: i64 = row.try_get(3).map_err(decode)?;
            let c = ids[(n - 1) as usize];
            self.costs.size_bytes.entry(c).or_insert(size);
            self.present.insert(c, Present { oid, name });
            self.made_since_reset += 1;
        }
        Ok(())
    }

    /// `BEGIN; CREATE INDEX ..; EXPLAIN ..; ROLLBACK` with the candidates of `set`.
    async fn plan_trial(
        &mut self,
        text: &str,
        parameters: bool,
        set: &[CandidateId],
    ) -> std::result::Result<Costed, Failure> {
        if set.is_empty() {
            let plan = self.explain(text, parameters).await?;
            return Ok(Costed {
                cost: plan.cost,
                used: Vec::new(),
            });
        }
        self.conn
            .batch("starting a trial-index transaction", "BEGIN")
            .await
            .map_err(Failure::Fatal)?;
        let result = self.plan_trial_in_transaction(text, parameters, set).await;
        // Always rolled back: nothing of a trial stays.
        self.conn
            .batch("rolling back a trial-index transaction", "ROLLBACK")
            .await
            .map_err(Failure::Fatal)?;
        self.deallocate_leftovers().await.map_err(Failure::Fatal)?;
        result
    }

    async fn plan_trial_in_transaction(
        &mut self,
        text: &str,
        parameters: bool,
        set: &[CandidateId],
    ) -> std::result::Result<Costed, Failure> {
        let ms = self.lock_timeout.as_millis().to_string();
        self.conn
            .query_one(
                "setting lock_timeout for a trial index",
                "SELECT set_config('lock_timeout', $1, true)",
                &[&ms],
            )
            .await?;
        let mut names = BTreeMap::new();
        for c in set {
            let cand = &self.candidates[*c];
            let name = format!("pgopt_trial_{}_{c}", std::process::id());
            let ddl = cand.ddl(&name, false);
            if let Err(e) = self.conn.batch("building a trial index", &ddl).await {
                if e.is_connection_lost() {
                    return Err(Failure::Fatal(e));
                }
                self.costs.candidate_failed.insert(*c, e.to_string());
                return Err(Failure::Statement(e.to_string()));
            }
            if !self.costs.size_bytes.contains_key(c) {
                let qualified = QualifiedName::new(&cand.schema, &name).to_string();
                let row = self
                    .conn
                    .query_one(
                        "measuring a trial index",
                        "SELECT pg_catalog.pg_relation_size($1::text::regclass)",
                        &[&qualified],
                    )
                    .await?;
                let size: i64 = row
                    .try_get(0)
                    .map_err(|e| Error::query("reading pg_relation_size", e))?;
                self.costs.size_bytes.insert(*c, size);
            }
            names.insert(name, *c);
        }
        let plan = self.explain(text, parameters).await?;
        let used = names
            .iter()
            .filter(|(n, _)| plan.index_names.contains(*n))
            .map(|(_, c)| *c)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        Ok(Costed {
            cost: plan.cost,
            used,
        })
    }

    /// EXPLAIN (FORMAT JSON) of the statement; with `$n` parameters a generic plan of a
    /// statement prepared for this one plan.
    async fn explain(
        &mut self,
        text: &str,
        parameters: bool,
    ) -> std::result::Result<Plan, Failure> {
        if !parameters {
            let sql = format!("EXPLAIN (FORMAT JSON) {text}");
            // The extended protocol: one statement only, whatever the text holds.
            let rows = self
                .conn
                .query_typed("planning a statement", &sql, &[])
                .await?;
            return parse_plan(&rows).map_err(Failure::Statement);
        }
        self.prepared += 1;
        let name = Ident::new(format!("pgopt_whatif_{}", self.prepared));
        self.conn
            .query_typed(
                "preparing a statement for its generic plan",
                &format!("PREPARE {name} AS {text}"),
                &[],
            )
            .await?;
        let result = self.explain_prepared(&name).await;
        // In a trial transaction that the failed plan aborted, DEALLOCATE fails too (and a
        // prepared statement outlives a rollback): it is done again after the rollback.
        if let Err(e) = self.deallocate(&name).await {
            if e.is_connection_lost() {
                return Err(Failure::Fatal(e));
            }
            self.undeallocated.push(name);
        }
        result
    }

    async fn deallocate(&self, name: &Ident) -> Result<()> {
        self.conn
            .batch(
                "deallocating a prepared statement",
                &format!("DEALLOCATE {name}"),
            )
            .await
    }

    /// DEALLOCATE what could not be deallocated in an aborted transaction.
    async fn deallocate_leftovers(&mut self) -> Result<()> {
        for name in std::mem::take(&mut self.undeallocated) {
            self.deallocate(&name).await?;
        }
        Ok(())
    }

    async fn explain_prepared(&mut self, name: &Ident) -> std::result::Result<Plan, Failure> {
        // The number of parameters, asked once per statement (the same text each time).
        let n = match self.parameters {
            Some(n) => n,
            None => {
                let rows = self
                    .conn
                    .query_typed(
                        "counting a prepared statement's parameters",
                        "SELECT coalesce(cardinality(parameter_types), 0) \
                         FROM pg_catalog.pg_prepared_statements WHERE name = $1",
                        &[(&name.as_str(), Type::TEXT)],
                    )
                    .await?;
                let n: i32 = rows
                    .first()
                    .ok_or_else(|| Failure::Statement("the prepared statement is gone".into()))?
                    .try_get(0)
                    .map_err(|e| Error::query("reading pg_prepared_statements", e))?;
                self.parameters = Some(n);
                n
            }
        };
        let args = vec!["NULL"; n.max(0) as usize].join(", ");
        let sql = if args.is_empty() {
            format!("EXPLAIN (FORMAT JSON) EXECUTE {name}")
        } else {
            format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({args})")
        };
        let rows = self
            .conn
            .query_typed("planning a statement's generic plan", &sql, &[])
            .await?;
        parse_plan(&rows).map_err(Failure::Statement)
    }
}

/// The statement as EXPLAIN takes it: without surrounding blanks and trailing semicolons.
fn statement_text(text: &str) -> &str {
    text.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

/// The total cost and the index names of an `EXPLAIN (FORMAT JSON)` result.
fn parse_plan(rows: &[tokio_postgres::Row]) -> std::result::Result<Plan, String> {
    let row = rows.first().ok_or("EXPLAIN returned no row")?;
    let json: serde_json::Value = row
        .try_get(0)
        .map_err(|e| format!("reading EXPLAIN's JSON: {e}"))?;
    plan_of_json(&json)
}

fn plan_of_json(json: &serde_json::Value) -> std::result::Result<Plan, String> {
    let plan = json
        .get(0)
        .and_then(|p| p.get("Plan"))
        .ok_or("EXPLAIN's JSON has no Plan")?;
    let cost = plan
        .get("Total Cost")
        .and_then(|c| c.as_f64())
        .ok_or("EXPLAIN's plan has no Total Cost")?;
    let mut index_names = BTreeSet::new();
    collect_index_names(plan, &mut index_names);
    Ok(Plan { cost, index_names })
}

/// Every "Index Name" of a plan node and its children (Index Scan, Index Only Scan, Bitmap
/// Index Scan; init plans and subplans are children too).
fn collect_index_names(node: &serde_json::Value, out: &mut BTreeSet<String>) {
    if let Some(name) = node.get("Index Name").and_then(|n| n.as_str()) {
        out.insert(name.to_string());
    }
    if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
        for child in children {
            collect_index_names(child, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_json_gives_the_cost_and_every_index_name_of_the_tree() {
        let json = serde_json::json!([{
            "Plan": {
                "Node Type": "Bitmap Heap Scan",
                "Total Cost": 42.5,
                "Plans": [{
                    "Node Type": "BitmapOr",
                    "Plans": [
                        {"Node Type": "Bitmap Index Scan", "Index Name": "<13999>btree_t_a"},
                        {"Node Type": "Bitmap Index Scan", "Index Name": "<13998>btree_t_b"}
                    ]
                }, {
                    "Node Type": "Index Only Scan", "Index Name": "t_pkey",
                    "Parent Relationship": "SubPlan"
                }]
            }
        }]);
        let plan = plan_of_json(&json).unwrap();
        assert_eq!(plan.cost, 42.5);
        assert_eq!(
            plan.index_names.into_iter().collect::<Vec<_>>(),
            vec!["<13998>btree_t_b", "<13999>btree_t_a", "t_pkey"]
        );
        assert!(plan_of_json(&serde_json::json!([])).is_err());
    }

    #[test]
    fn statement_text_drops_trailing_semicolons_and_blanks() {
        assert_eq!(statement_text("  SELECT 1 ;; \n"), "SELECT 1");
        assert_eq!(statement_text("SELECT ';'"), "SELECT ';'");
    }

    #[test]
    fn missing_hypopg_says_which_package_and_the_trial_option() {
        let msg = missing_error(15).to_string();
        assert!(msg.contains("postgresql-15-hypopg"), "{msg}");
        assert!(msg.contains("build it from source"), "{msg}");
        assert!(msg.contains("CREATE EXTENSION hypopg;"), "{msg}");
        assert!(msg.contains("--trial-real-indexes"), "{msg}");
        let msg = not_created_error("app", "1.3.1").to_string();
        assert!(msg.contains("CREATE EXTENSION hypopg;"), "{msg}");
        assert!(msg.contains("--trial-real-indexes"), "{msg}");
    }
}
