//! Deterministic governance data at any scale, loaded with binary COPY.
//!
//! Scale 1 is about 10k users, 1M security events, 2M audit log rows, 5k policy rules, 50
//! constitutional principles (always 50), 100k workflows and 500k compliance checks. The same
//! (scale, seed) gives the same rows: every table draws from its own `SmallRng` seeded from
//! the seed and the table, and timestamps end at the fixed [`dist::data_end`].
//!
//! Rows are generated while they are sent (memory stays at one day of timestamps), table by
//! table in foreign-key order, all in one transaction so a failed seed leaves nothing behind;
//! then every table is analyzed. Seeding refuses tables that already hold rows.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::dist::{self, Popularity, Timeline};
use super::{in_transaction, qualified, set_local, TABLES};
use crate::db::Conn;
use crate::error::{Error, Result};
use crate::ident::Ident;
use crate::progress::{Event, Kind, Progress, Unit};

const FOREIGN_KEYS_SQL: &str = include_str!("sql/foreign_keys.sql");

/// Rows per table at scale 1.
const BASE_USERS: f64 = 10_000.0;
const BASE_EVENTS: f64 = 1_000_000.0;
const BASE_AUDIT: f64 = 2_000_000.0;
const BASE_RULES: f64 = 5_000.0;
const BASE_WORKFLOWS: f64 = 100_000.0;
const BASE_CHECKS: f64 = 500_000.0;
/// The constitution does not grow with the data.
pub const PRINCIPLES: u64 = 50;

/// Largest scale accepted (about 3.6 billion rows; beyond that a typo is likelier than intent).
pub const MAX_SCALE: f64 = 1000.0;

/// How many rows each table gets at a scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    pub users: u64,
    pub constitutional_principles: u64,
    pub policy_rules: u64,
    pub governance_workflows: u64,
    pub security_events: u64,
    pub audit_logs: u64,
    pub compliance_checks: u64,
}

impl RowCounts {
    /// At least one row per table, always 50 principles.
    pub fn for_scale(scale: f64) -> Result<Self> {
        if !scale.is_finite() || scale <= 0.0 || scale > MAX_SCALE {
            return Err(Error::BadInput(format!(
                "--scale must be a number above 0 and at most {MAX_SCALE} (1 is about 3.6 million \
                 rows; 0.01 about 36 thousand), not {scale}"
            )));
        }
        let n = |base: f64| ((base * scale).round() as u64).max(1);
        Ok(RowCounts {
            users: n(BASE_USERS),
            constitutional_principles: PRINCIPLES,
            policy_rules: n(BASE_RULES),
            governance_workflows: n(BASE_WORKFLOWS),
            security_events: n(BASE_EVENTS),
            audit_logs: n(BASE_AUDIT),
            compliance_checks: n(BASE_CHECKS),
        })
    }

    /// (table, rows) in loading order.
    pub fn by_table(&self) -> [(&'static str, u64); 7] {
        [
            ("users", self.users),
            ("constitutional_principles", self.constitutional_principles),
            ("policy_rules", self.policy_rules),
            ("governance_workflows", self.governance_workflows),
            ("security_events", self.security_events),
            ("audit_logs", self.audit_logs),
            ("compliance_checks", self.compliance_checks),
        ]
    }

    pub fn total(&self) -> u64 {
        self.by_table().iter().map(|(_, n)| n).sum()
    }
}

/// What a seed loaded and how fast.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub scale: f64,
    pub seed: u64,
    /// (table, rows loaded) in loading order.
    pub tables: Vec<(String, u64)>,
    /// Time spent loading (COPY), without ANALYZE.
    pub load_elapsed: Duration,
    /// Everything: checks, COPY, sequences, ANALYZE.
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }

    /// Rows per second of the whole seed (ANALYZE included).
    pub fn rows_per_second(&self) -> f64 {
        self.total_rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Rows per second of the COPY phase alone.
    pub fn load_rows_per_second(&self) -> f64 {
        self.total_rows() as f64 / self.load_elapsed.as_secs_f64().max(1e-9)
    }
}

/// Fills the deployed, empty governance tables of `schema` with data for (scale, seed);
/// progress goes to `progress` as `seeding` events counting rows (the step is the table).
pub async fn seed(
    conn: &Conn,
    schema: &str,
    scale: f64,
    seed: u64,
    progress: &dyn Progress,
) -> Result<SeedReport> {
    let started = Instant::now();
    let counts = RowCounts::for_scale(scale)?;
    check_deployed_and_empty(conn, schema).await?;

    let bar = Tally {
        sink: progress,
        total: counts.total(),
        done: AtomicU64::new(0),
    };

    // Generous bounds that still end a stuck load: 10k rows/s is 20x slower than expected.
    let load_timeout = Duration::from_secs(60 + counts.total() / 10_000);
    let load_started = Instant::now();
    let tables = in_transaction(conn, "seeding the governance tables", async {
        set_local(conn, "statement_timeout", &millis(load_timeout)).await?;
        let foreign_keys = drop_foreign_keys(conn, schema).await?;
        let mut loaded = Vec::new();
        for (table, n) in counts.by_table() {
            bar.inc(table, 0);
            let mut rng = SmallRng::seed_from_u64(table_seed(seed, table));
            let copied = load_table(conn, schema, table, n, &counts, &mut rng, &bar).await?;
            if copied != n {
                return Err(Error::Internal(format!(
                    "COPY into {table} reported {copied} rows, {n} were sent"
                )));
            }
            // Ids were given explicitly: move the identity on so inserts do not collide.
            conn.query(
                "moving the identity sequence past the seeded ids",
                "SELECT setval(pg_get_serial_sequence($1, 'id'), $2)",
                &[&qualified(schema, table).to_string(), &(n as i64)],
            )
            .await?;
            loaded.push((table.to_string(), copied));
        }
        bar.inc("checking foreign keys", 0);
        restore_foreign_keys(conn, schema, &foreign_keys, load_timeout).await?;
        Ok(loaded)
    })
    .await;
    bar.finish();
    let tables = tables?;
    let load_elapsed = load_started.elapsed();

    let analyze_timeout = Duration::from_secs(60 + counts.total() / 50_000);
    for table in TABLES {
        in_transaction(conn, "analyzing the seeded tables", async {
            set_local(conn, "statement_timeout", &millis(analyze_timeout)).await?;
            conn.batch(
                "analyzing the seeded tables",
                &format!("ANALYZE {}", qualified(schema, table)),
            )
            .await
        })
        .await?;
    }
    Ok(SeedReport {
        scale,
        seed,
        tables,
        load_elapsed,
        elapsed: started.elapsed(),
    })
}

/// A foreign key dropped for the load: (table, constraint, definition).
type ForeignKey = (String, String, String);

/// Checking each COPY'd row against its parent costs twice the load itself (measured at scale
/// 1: 26 s with the keys in place, 9 s without). Like pg_dump, the seed drops the foreign keys
/// inside its transaction and adds them back after the load, where each is validated with one
/// join: <https://www.postgresql.org/docs/current/populate.html#POPULATE-RM-FKEYS>.
async fn drop_foreign_keys(conn: &Conn, schema: &str) -> Result<Vec<ForeignKey>> {
    let rows = conn
        .query("reading the foreign keys", FOREIGN_KEYS_SQL, &[&schema])
        .await?;
    let mut keys = Vec::new();
    for r in rows {
        let key: ForeignKey = (r.get(0), r.get(1), r.get(2));
        conn.batch(
            "dropping a foreign key for the load",
            &format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                qualified(schema, &key.0),
                Ident::new(&key.1)
            ),
        )
        .await?;
        keys.push(key);
    }
    Ok(keys)
}

/// Adds the keys back, validating every loaded row. The definition is the server's own
/// (`pg_get_constraintdef`, with every name it contains quoted by the server).
async fn restore_foreign_keys(
    conn: &Conn,
    schema: &str,
    keys: &[ForeignKey],
    limit: Duration,
) -> Result<()> {
    for (table, name, definition) in keys {
        let sql = format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {definition}",
            qualified(schema, table),
            Ident::new(name)
        );
        // Validation scans the table: bounded by the load's own statement_timeout (set
        // locally on the server) rather than the connection's shorter client-side one.
        let validate = conn.client().batch_execute(&sql);
        match tokio::time::timeout(limit, validate).await {
            Ok(r) => r.map_err(|e| Error::query("adding a foreign key back after the load", e))?,
            Err(_) => {
                conn.cancel_running().await;
                return Err(Error::Timeout {
                    what: format!("validating foreign key {name} of {table}"),
                    after: limit,
                    next_step: None,
                });
            }
        }
    }
    Ok(())
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Each table has its own random stream, so changing one table's generator leaves the others'
/// rows as they were.
fn table_seed(seed: u64, table: &str) -> u64 {
    // FNV-1a of the table name, mixed with the seed.
    crate::hash::fnv1a64(table.as_bytes()) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

async fn check_deployed_and_empty(conn: &Conn, schema: &str) -> Result<()> {
    for table in TABLES {
        let q = qualified(schema, table);
        let found: Option<String> = conn
            .query_one(
                "looking for the governance tables",
                "SELECT to_regclass($1)::text",
                &[&q.to_string()],
            )
            .await?
            .get(0);
        if found.is_none() {
            return Err(Error::BadInput(format!(
                "table {q} does not exist; run `pgopt governance deploy {} --schema {schema}` \
                 first",
                conn.target_for_hints()
            )));
        }
    }
    for table in TABLES {
        let q = qualified(schema, table);
        let has_rows: bool = conn
            .query_one(
                "checking the governance tables are empty",
                &format!("SELECT EXISTS (SELECT 1 FROM {q})"),
                &[],
            )
            .await?
            .get(0);
        if has_rows {
            let target = conn.target_for_hints();
            return Err(Error::BadInput(format!(
                "table {q} already holds rows; seeding only fills empty tables. Start over with \
                 `pgopt governance drop {target} --schema {schema} --yes` then \
                 `pgopt governance deploy {target} --schema {schema}`"
            )));
        }
    }
    Ok(())
}

/// A jsonb value already written as JSON text (sent as binary jsonb: version 1, then the text).
#[derive(Debug)]
struct RawJsonb<'a>(&'a str);

impl ToSql for RawJsonb<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
}

type Writer = Pin<Box<BinaryCopyInWriter>>;

async fn open_copy(
    conn: &Conn,
    schema: &str,
    table: &str,
    columns: &[(&str, Type)],
) -> Result<Writer> {
    let cols = columns
        .iter()
        .map(|(c, _)| Ident::new(*c).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "COPY {} ({cols}) FROM STDIN (FORMAT binary)",
        qualified(schema, table)
    );
    let sink = conn
        .client()
        .copy_in(&sql)
        .await
        .map_err(|e| Error::query(format!("starting COPY into {table}"), e))?;
    let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
    Ok(Box::pin(BinaryCopyInWriter::new(sink, &types)))
}

fn copy_error(table: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::query(format!("COPY into {table}"), e)
}

/// Progress is counted in batches to keep the reporting off the hot path.
const TICK: u64 = 4096;

/// The seeded rows so far, reported to the progress sink.
struct Tally<'a> {
    sink: &'a dyn Progress,
    total: u64,
    done: AtomicU64,
}

impl Tally<'_> {
    /// `n` more rows, while `step` runs.
    fn inc(&self, step: &str, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.sink
            .event(Event::update(PHASE, Unit::Rows, done, Some(self.total)).step(step));
    }

    fn finish(&self) {
        let done = self.done.load(Ordering::Relaxed);
        self.sink
            .event(Event::update(PHASE, Unit::Rows, done, Some(self.total)).kind(Kind::Finish));
    }
}

/// The phase of the progress events of seeding.
pub const PHASE: &str = "seeding";

/// Loads `n` rows into `table` with one COPY: the table's own generator writes its rows (the
/// same rows for the same seed), progress counted in [`TICK`]s.
async fn load_table(
    conn: &Conn,
    schema: &str,
    table: &str,
    n: u64,
    counts: &RowCounts,
    rng: &mut SmallRng,
    bar: &Tally<'_>,
) -> Result<u64> {
    let mut w = open_copy(conn, schema, table, &columns(table)?).await?;
    let end = dist::data_end();
    let c = Ctx {
        table,
        n,
        counts,
        bar,
        users: Popularity::new(counts.users, dist::USER_SKEW),
        rules: Popularity::new(counts.policy_rules, dist::RULE_SKEW),
        end,
        history_start: end - chrono::Duration::days(dist::HISTORY_DAYS),
    };
    match table {
        "users" => users(&mut w, &c, rng).await?,
        "constitutional_principles" => constitutional_principles(&mut w, &c, rng).await?,
        "policy_rules" => policy_rules(&mut w, &c, rng).await?,
        "governance_workflows" => governance_workflows(&mut w, &c, rng).await?,
        "security_events" => security_events(&mut w, &c, rng).await?,
        "audit_logs" => audit_logs(&mut w, &c, rng).await?,
        "compliance_checks" => compliance_checks(&mut w, &c, rng).await?,
        other => return Err(Error::Internal(format!("no generator for table {other}"))),
    }
    bar.inc(table, n % TICK);
    w.as_mut().finish().await.map_err(copy_error(table))
}

/// The COPY columns of each table, in the order its generator writes them.
fn columns(table: &str) -> Result<Vec<(&'static str, Type)>> {
    Ok(match table {
        "users" => vec![
            ("id", Type::INT4),
            ("username", Type::TEXT),
            ("email", Type::TEXT),
            ("display_name", Type::TEXT),
            ("role", Type::TEXT),
            ("is_active", Type::BOOL),
            ("created_at", Type::TIMESTAMPTZ),
            ("last_login_at", Type::TIMESTAMPTZ),
        ],
        "constitutional_principles" => vec![
            ("id", Type::INT4),
            ("code", Type::TEXT),
            ("title", Type::TEXT),
            ("description", Type::TEXT),
            ("category", Type::TEXT),
            ("priority", Type::INT2),
            ("adopted_at", Type::TIMESTAMPTZ),
        ],
        "policy_rules" => vec![
            ("id", Type::INT4),
            ("name", Type::TEXT),
            ("version", Type::INT4),
            ("is_active", Type::BOOL),
            ("principle_id", Type::INT4),
            ("enforcement", Type::TEXT),
            ("rule_body", Type::TEXT),
            ("created_by", Type::INT4),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
        ],
        "governance_workflows" => vec![
            ("id", Type::INT8),
            ("kind", Type::TEXT),
            ("title", Type::TEXT),
            ("status", Type::TEXT),
            ("initiator_id", Type::INT4),
            ("policy_rule_id", Type::INT4),
            ("created_at", Type::TIMESTAMPTZ),
            ("updated_at", Type::TIMESTAMPTZ),
            ("payload", Type::JSONB),
        ],
        "security_events" => vec![
            ("id", Type::INT8),
            ("user_id", Type::INT4),
            ("event_type", Type::TEXT),
            ("severity", Type::TEXT),
            ("source_ip", Type::INET),
            ("occurred_at", Type::TIMESTAMPTZ),
            ("details", Type::JSONB),
        ],
        "audit_logs" => vec![
            ("id", Type::INT8),
            ("actor_id", Type::INT4),
            ("resource_type", Type::TEXT),
            ("resource_id", Type::INT8),
            ("action", Type::TEXT),
            ("occurred_at", Type::TIMESTAMPTZ),
            ("payload", Type::JSONB),
        ],
        "compliance_checks" => vec![
            ("id", Type::INT8),
            ("policy_rule_id", Type::INT4),
            ("workflow_id", Type::INT8),
            ("result", Type::TEXT),
            ("score", Type::FLOAT8),
            ("checked_at", Type::TIMESTAMPTZ),
            ("details", Type::JSONB),
        ],
        other => return Err(Error::Internal(format!("no generator for table {other}"))),
    })
}

/// What every table's generator shares.
struct Ctx<'a> {
    table: &'a str,
    /// Rows to write.
    n: u64,
    counts: &'a RowCounts,
    bar: &'a Tally<'a>,
    /// Who acts: a few users do most.
    users: Popularity,
    /// Which rules are checked: a few most often.
    rules: Popularity,
    /// The newest time in the data.
    end: DateTime<Utc>,
    /// The oldest time of the history tables.
    history_start: DateTime<Utc>,
}

impl Ctx<'_> {
    /// Counts row `i` towards the progress.
    fn tick(&self, i: u64) {
        if i.is_multiple_of(TICK) {
            self.bar.inc(self.table, TICK);
        }
    }
}

/// Users: sign-ups spread over three years in id order, most logged in recently.
async fn users(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let end = c.end;
    let err = copy_error(c.table);
    for i in 1..=n {
        let id = i as i32;
        // Sign-ups spread over three years, in id order.
        let span = chrono::Duration::days(3 * 365).num_seconds() as f64;
        let created = end - chrono::Duration::days(3 * 365)
            + chrono::Duration::seconds((span * (i - 1) as f64 / n as f64) as i64)
            + chrono::Duration::seconds(rng.gen_range(0..3600));
        let last_login: Option<DateTime<Utc>> = if rng.gen_bool(0.05) {
            None
        } else {
            // Most users logged in recently; a tail did not for months.
            let days_ago = rng.gen::<f64>().powi(3) * 180.0;
            let t = end - chrono::Duration::seconds((days_ago * 86_400.0) as i64);
            Some(t.max(created))
        };
        let display = format!("User {id}");
        w.as_mut()
            .write(&[
                &id,
                &dist::username(id),
                &dist::email(id),
                &display,
                &dist::weighted(rng, dist::ROLES),
                &rng.gen_bool(dist::ACTIVE_USERS),
                &created,
                &last_login,
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// The constitutional principles: a fixed list of themes and aspects.
async fn constitutional_principles(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let end = c.end;
    let err = copy_error(c.table);
    let mut text = String::with_capacity(512);
    for i in 1..=n {
        let id = i as i32;
        let (theme, aspect) = principle_title(i as usize - 1);
        let title = format!("{theme}: {aspect}");
        text.clear();
        let _ = write!(
            text,
            "Governance decisions must uphold {} with respect to {}.",
            theme.to_lowercase(),
            aspect.to_lowercase()
        );
        let category = dist::PRINCIPLE_CATEGORIES[(i as usize - 1) % 5];
        let priority = rng.gen_range(1..=5i16);
        let adopted =
            end - chrono::Duration::days(4 * 365) + chrono::Duration::days(rng.gen_range(0..365));
        w.as_mut()
            .write(&[
                &id,
                &format!("P{i:02}"),
                &title,
                &text,
                &category,
                &priority,
                &adopted,
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// Policy rules: Rego bodies, versions, the principle each serves.
async fn policy_rules(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let users = &c.users;
    let end = c.end;
    let history_start = c.history_start;
    let err = copy_error(c.table);
    let mut text = String::with_capacity(512);
    for i in 1..=n {
        let id = i as i32;
        let principles = Popularity::new(PRINCIPLES, 0.8);
        let version = 1 + (rng.gen::<f64>().powi(2) * 5.0) as i32;
        let created = history_start
            + chrono::Duration::seconds(rng.gen_range(0..dist::HISTORY_DAYS * 86_400));
        let updated = created
            + chrono::Duration::seconds(
                (rng.gen::<f64>() * (end - created).num_seconds() as f64) as i64,
            );
        let name = dist::rule_name(id);
        text.clear();
        let role = dist::weighted(rng, dist::ROLES);
        let _ = write!(
            text,
            "package acgs.{}\n\ndefault allow := false\n\nallow if {{\n    input.user.is_active\n    \
             input.user.role == \"{role}\"\n    input.action in {{\"read\", \"update\"}}\n    \
             count(input.violations) < {}\n}}\n",
            name.replace('-', "_"),
            rng.gen_range(1..10)
        );
        w.as_mut()
            .write(&[
                &id,
                &name,
                &version,
                &rng.gen_bool(dist::ACTIVE_RULES),
                &(principles.sample(rng) as i32),
                &dist::weighted(rng, dist::ENFORCEMENTS),
                &text,
                &(users.sample(rng) as i32),
                &created,
                &updated,
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// Governance workflows, in time order.
async fn governance_workflows(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let users = &c.users;
    let rules = &c.rules;
    let end = c.end;
    let err = copy_error(c.table);
    let mut json = String::with_capacity(256);
    let mut timeline = Timeline::new(n);
    let mut i: u64 = 0;
    while let Some(at) = timeline.next(rng) {
        i += 1;
        json.clear();
        let kind = dist::weighted(rng, dist::WORKFLOW_KINDS);
        let title = format!("{} #{i}", kind.replace('_', " "));
        let status = dist::weighted(rng, dist::WORKFLOW_STATUSES);
        let rule: Option<i32> = kind.starts_with("policy").then(|| rules.sample(rng) as i32);
        let room = (end - at).num_seconds().clamp(0, 30 * 86_400);
        let updated = at + chrono::Duration::seconds(rng.gen_range(0..=room));
        let priority = if rng.gen_bool(0.2) { "high" } else { "normal" };
        let _ = write!(
            json,
            r#"{{"priority": "{priority}", "reviewers": {}, "comments": {}}}"#,
            rng.gen_range(1..6),
            rng.gen_range(0..40)
        );
        w.as_mut()
            .write(&[
                &(i as i64),
                &kind,
                &title,
                &status,
                &(users.sample(rng) as i32),
                &rule,
                &at,
                &updated,
                &RawJsonb(&json),
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// Security events, in time order, from the users' addresses.
async fn security_events(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let users = &c.users;
    let err = copy_error(c.table);
    let mut json = String::with_capacity(256);
    let mut timeline = Timeline::new(n);
    let mut i: u64 = 0;
    while let Some(at) = timeline.next(rng) {
        i += 1;
        json.clear();
        let user = users.sample(rng) as u32;
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            (user >> 8) as u8,
            user as u8,
            rng.gen_range(1..=254),
        ));
        let _ = write!(
            json,
            r#"{{"session": "{:016x}", "user_agent": "{}", "mfa": {}}}"#,
            rng.gen::<u64>(),
            USER_AGENTS[rng.gen_range(0..USER_AGENTS.len())],
            rng.gen_bool(0.7)
        );
        w.as_mut()
            .write(&[
                &(i as i64),
                &(user as i32),
                &dist::weighted(rng, dist::EVENT_TYPES),
                &dist::weighted(rng, dist::SEVERITIES),
                &ip,
                &at,
                &RawJsonb(&json),
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// Audit log entries, in time order, on every kind of resource.
async fn audit_logs(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let users = &c.users;
    let err = copy_error(c.table);
    let mut json = String::with_capacity(256);
    let resources = dist::Resources::new(
        c.counts.users,
        c.counts.policy_rules,
        c.counts.governance_workflows,
        PRINCIPLES,
        c.counts.compliance_checks,
    );
    let mut timeline = Timeline::new(n);
    let mut i: u64 = 0;
    while let Some(at) = timeline.next(rng) {
        i += 1;
        json.clear();
        let (resource_type, resource_id) = resources.sample(rng);
        let _ = write!(
            json,
            r#"{{"request_id": "{:016x}", "client": "{}", "changed_fields": {}}}"#,
            rng.gen::<u64>(),
            ["api", "web", "cli"][rng.gen_range(0..3)],
            rng.gen_range(0..8)
        );
        w.as_mut()
            .write(&[
                &(i as i64),
                &(users.sample(rng) as i32),
                &resource_type,
                &resource_id,
                &dist::weighted(rng, dist::ACTIONS),
                &at,
                &RawJsonb(&json),
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

/// Compliance checks, in time order: a result and its score.
async fn compliance_checks(w: &mut Writer, c: &Ctx<'_>, rng: &mut SmallRng) -> Result<()> {
    let n = c.n;
    let counts = c.counts;
    let rules = &c.rules;
    let err = copy_error(c.table);
    let mut json = String::with_capacity(256);
    let mut timeline = Timeline::new(n);
    let mut i: u64 = 0;
    while let Some(at) = timeline.next(rng) {
        i += 1;
        json.clear();
        let result = dist::weighted(rng, dist::CHECK_RESULTS);
        let score = match result {
            "pass" => rng.gen_range(80.0..=100.0),
            "warning" => rng.gen_range(60.0..80.0),
            "fail" => rng.gen_range(0.0..60.0),
            _ => 0.0f64,
        };
        let score = (score * 100.0f64).round() / 100.0;
        let workflow: Option<i64> = rng
            .gen_bool(0.3)
            .then(|| rng.gen_range(1..=counts.governance_workflows) as i64);
        let _ = write!(
            json,
            r#"{{"evaluator": "opa", "duration_ms": {}, "violations": {}}}"#,
            rng.gen_range(1..250),
            if result == "pass" {
                0
            } else {
                rng.gen_range(1..6)
            }
        );
        w.as_mut()
            .write(&[
                &(i as i64),
                &(rules.sample(rng) as i32),
                &workflow,
                &result,
                &score,
                &at,
                &RawJsonb(&json),
            ])
            .await
            .map_err(&err)?;
        c.tick(i);
    }
    Ok(())
}

const USER_AGENTS: &[&str] = &[
    "acgs-web/2.4 (Firefox)",
    "acgs-web/2.4 (Chrome)",
    "acgs-cli/1.9",
    "acgs-mobile/3.1 (Android)",
    "acgs-mobile/3.1 (iOS)",
    "acgs-gateway/1.2",
];

const THEMES: &[&str] = &[
    "Human dignity",
    "Due process",
    "Transparency",
    "Accountability",
    "Proportionality",
    "Non-discrimination",
    "Privacy",
    "Safety",
    "Participation",
    "Reversibility",
];

const ASPECTS: &[&str] = &[
    "automated decisions",
    "data access",
    "policy changes",
    "appeals",
    "emergency powers",
];

/// The title of principle `i` (0-based, 50 distinct).
fn principle_title(i: usize) -> (&'static str, &'static str) {
    (
        THEMES[i % THEMES.len()],
        ASPECTS[(i / THEMES.len()) % ASPECTS.len()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_scale_with_at_least_one_row_and_fifty_principles() {
        let one = RowCounts::for_scale(1.0).unwrap();
        assert_eq!(one.users, 10_000);
        assert_eq!(one.security_events, 1_000_000);
        assert_eq!(one.audit_logs, 2_000_000);
        assert_eq!(one.total(), 3_615_050);
        let tiny = RowCounts::for_scale(0.00001).unwrap();
        assert_eq!(tiny.users, 1);
        assert_eq!(tiny.policy_rules, 1);
        assert_eq!(tiny.constitutional_principles, 50);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e6] {
            assert!(RowCounts::for_scale(bad).unwrap_err().is_bad_input());
        }
    }

    #[test]
    fn table_streams_differ_by_table_and_seed() {
        assert_ne!(table_seed(1, "users"), table_seed(1, "audit_logs"));
        assert_ne!(table_seed(1, "users"), table_seed(2, "users"));
    }
}
